//! What the dashboard knows about one run (live, or read from disk): its state, progress,
//! loss and eval histories, probe histograms and sample grids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::store::SampleGrid;
use crate::tui::series::History;

/// What a run is doing, as shown in the status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Starting,
    Running,
    Paused,
    /// Sampling / evaluating between steps (requested, not yet answered).
    Evaluating,
    Checkpointing,
    Stopping,
    Finished,
    Stopped,
    Failed,
    /// A run read from disk (`ayt view`, or opened from the launcher).
    Viewing,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Evaluating => "sampling",
            RunState::Checkpointing => "checkpointing",
            RunState::Stopping => "stopping",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Viewing => "read-only",
        }
    }
    /// The engine is working on this run (a quit must ask first).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunState::Starting | RunState::Running | RunState::Paused | RunState::Evaluating | RunState::Checkpointing | RunState::Stopping
        )
    }
}

/// One probe histogram (latest row), e.g. `tangent/mfd/rho` or `tangent/l2/toward_t1`.
///
/// Names follow `tangent/<loss>/<metric>[_t<k>]` (see `metrics::probe`); the panel shows one
/// metric (rho, toward, oscillation) and one t range at a time, the losses side by side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistRow {
    pub step: u64,
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    /// The exact mean of the values (the probe's), when known; else the bin centres give one.
    pub mean: Option<f64>,
}

impl HistRow {
    /// The probe's exact mean, else the mean of the bin centres (NaN for an empty row).
    pub fn mean_value(&self) -> f64 {
        if let Some(m) = self.mean {
            return m;
        }
        let total: u64 = self.counts.iter().sum();
        if total == 0 || self.edges.len() != self.counts.len() + 1 {
            return f64::NAN;
        }
        self.counts.iter().enumerate().map(|(i, &c)| c as f64 * 0.5 * (self.edges[i] + self.edges[i + 1])).sum::<f64>() / total as f64
    }
}

/// A histogram probe result: one histogram of an `Event::Probe` (the live run), or the latest
/// row of one in `run.h5`'s `/hist` (what `ayt view` reads).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeHist {
    pub name: String,
    pub row: HistRow,
}

/// `(loss, metric, t range)` of a histogram name `tangent/<loss>/<metric>[_t<k>]`; the range is
/// "all" or the label of `metrics::probe::T_RANGES[k]`.
pub fn hist_key(name: &str) -> (String, String, String) {
    let rest = name.strip_prefix("tangent/").unwrap_or(name);
    let (loss, metric) = rest.split_once('/').unwrap_or((rest, ""));
    let (m, k) = crate::metrics::probe::split_t_range(metric);
    let range = k.map_or("all", |k| crate::metrics::probe::T_RANGES[k].2);
    (loss.to_string(), m.to_string(), range.to_string())
}

/// EMA sample grids kept per run for stepping back through them.
pub const SAMPLE_HISTORY: usize = 200;

/// Probes kept per histogram for the heat map.
pub const HIST_HISTORY: usize = 1000;

/// The metric shown when none is selected.
pub const DEFAULT_HIST_METRIC: &str = "rho";

#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub step: u64,
    pub grid: SampleGrid,
}

#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub step: u64,
    pub start_step: u64,
    pub total: u64,
    pub kimg: f64,
    pub wall_s: f64,
    pub img_per_s: f64,
    pub stage: u64,
    /// Smoothed steps per second (from the events' wall clock), for the ETA.
    pub steps_per_s: f64,
    last: Option<(u64, f64)>,
}

impl Progress {
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.step as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }
    /// Seconds left, if the rate is known.
    pub fn eta_s(&self) -> Option<f64> {
        (self.steps_per_s > 0.0).then(|| self.total.saturating_sub(self.step) as f64 / self.steps_per_s)
    }
    /// A step reported at `wall_s`: the new position, and the rate for the ETA.
    pub(super) fn advance(&mut self, step: u64, total: u64, kimg: f64, wall_s: f64, img_per_s: f64, stage: u64) {
        self.observe(step, wall_s);
        self.step = step;
        self.total = total;
        self.kimg = kimg;
        self.wall_s = wall_s;
        self.img_per_s = img_per_s;
        self.stage = stage;
    }
    fn observe(&mut self, step: u64, wall_s: f64) {
        if let Some((s0, w0)) = self.last {
            let (ds, dw) = (step.saturating_sub(s0) as f64, wall_s - w0);
            if ds > 0.0 && dw > 0.0 {
                let rate = ds / dw;
                self.steps_per_s = if self.steps_per_s > 0.0 { 0.8 * self.steps_per_s + 0.2 * rate } else { rate };
            }
        }
        self.last = Some((step, wall_s));
    }
}

/// Everything known about one run.
#[derive(Clone, Debug)]
pub struct RunData {
    pub name: String,
    pub dir: Option<PathBuf>,
    pub state: RunState,
    pub progress: Progress,
    pub params: usize,
    pub loss: History,
    /// Evaluation metrics (FD, ...) by name, drawn on their own axis.
    pub evals: BTreeMap<String, History>,
    pub hists: BTreeMap<String, HistRow>,
    /// Every probe's row of each histogram, oldest first (the heat map over training), at most
    /// [`HIST_HISTORY`] per name (the oldest dropped).
    pub hist_history: BTreeMap<String, Vec<HistRow>>,
    pub samples_ema: Option<Grid>,
    /// Earlier EMA sample grids, oldest first, the latest included (`,` and `.` step through
    /// them), at most [`SAMPLE_HISTORY`].
    pub sample_history: Vec<Grid>,
    pub samples_raw: Option<Grid>,
    pub error: Option<String>,
    /// A sweep member's swept `(field, value)` pairs, as text (empty for a lone run).
    pub swept: Vec<(String, String)>,
}

impl RunData {
    pub fn new(name: impl Into<String>, dir: Option<PathBuf>, state: RunState) -> RunData {
        RunData {
            name: name.into(),
            dir,
            state,
            progress: Progress::default(),
            params: 0,
            loss: History::default(),
            evals: BTreeMap::new(),
            hists: BTreeMap::new(),
            hist_history: BTreeMap::new(),
            samples_ema: None,
            sample_history: Vec::new(),
            samples_raw: None,
            error: None,
            swept: Vec::new(),
        }
    }

    /// The sweep setting this run belongs to: its swept values other than the seed, e.g.
    /// `batch_size=8 loss=mfd` (`None` for a lone run: it is its own group).
    pub fn group(&self) -> Option<String> {
        let parts: Vec<String> =
            self.swept.iter().filter(|(k, _)| k != "seed").map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k))).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// A new EMA sample grid: the latest, and the newest of the history.
    pub fn record_samples(&mut self, grid: Grid) {
        if self.sample_history.len() == SAMPLE_HISTORY {
            self.sample_history.remove(0);
        }
        self.sample_history.push(grid.clone());
        self.samples_ema = Some(grid);
    }

    /// A training step's loss; a run that was starting is running.
    pub(super) fn on_step(&mut self, step: u64, kimg: f64, wall_s: f64, loss: f64) {
        self.loss.push(step as f64, kimg, wall_s, loss);
        if self.state == RunState::Starting {
            self.state = RunState::Running;
        }
    }

    /// A probe's histogram row: the latest, and appended to the history (a row for the same
    /// step replaces the last one).
    pub fn record_hist(&mut self, name: String, row: HistRow) {
        let history = self.hist_history.entry(name.clone()).or_default();
        if history.last().is_some_and(|last| last.step == row.step) {
            history.pop();
        }
        history.push(row.clone());
        if history.len() > HIST_HISTORY {
            history.remove(0);
        }
        self.hists.insert(name, row);
    }

    /// Metrics with histograms, sorted, and the t ranges seen.
    pub fn hist_axes(&self) -> (Vec<String>, Vec<String>) {
        let mut metrics = BTreeSet::new();
        let mut ranges = BTreeSet::new();
        for name in self.hists.keys() {
            let (_, m, r) = hist_key(name);
            metrics.insert(m);
            ranges.insert(r);
        }
        (metrics.into_iter().collect(), ranges.into_iter().collect())
    }
}
