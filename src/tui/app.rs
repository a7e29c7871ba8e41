//! The UI's state and its pure updates: engine events, probe histograms and log lines come in,
//! nothing goes out (key handling, in `keys`, returns the effects for the event loop to carry
//! out). Every render function reads an [`App`] and nothing else.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use crate::config::Preset;
use crate::engine::{Event, RunRequest};
use crate::store::SampleGrid;

use super::series::{History, XAxis};

/// Lines kept in the log pane.
pub const LOG_LINES: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Launcher,
    Dashboard,
}

/// Dashboard panels, in focus order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Curves,
    Samples,
    Hist,
    Log,
}

pub const PANELS: [Panel; 4] = [Panel::Curves, Panel::Samples, Panel::Hist, Panel::Log];

impl Panel {
    pub fn title(self) -> &'static str {
        match self {
            Panel::Curves => "Loss",
            Panel::Samples => "Samples",
            Panel::Hist => "Tangent alignment",
            Panel::Log => "Log",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Quit, stopping (and checkpointing) the running job.
    Quit,
    /// Stop the running job (with a checkpoint); the queue goes on.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Confirm(Confirm),
}

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
#[derive(Clone, Debug, PartialEq)]
pub struct HistRow {
    pub step: u64,
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
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
    let ranges = crate::metrics::probe::T_RANGES;
    match metric.rsplit_once("_t").and_then(|(m, k)| Some((m, ranges.get(k.parse::<usize>().ok()?)?.2))) {
        Some((m, label)) => (loss.to_string(), m.to_string(), label.to_string()),
        None => (loss.to_string(), metric.to_string(), "all".into()),
    }
}

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
    pub samples_ema: Option<Grid>,
    pub samples_raw: Option<Grid>,
    pub error: Option<String>,
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
            samples_ema: None,
            samples_raw: None,
            error: None,
        }
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

/// A preset the launcher offers: its file, and the resolved preset or why it does not load.
#[derive(Clone, Debug)]
pub struct PresetEntry {
    pub path: PathBuf,
    pub name: String,
    pub preset: Result<Preset, String>,
}

impl PresetEntry {
    pub fn load(path: PathBuf) -> PresetEntry {
        let fallback = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let preset = Preset::load(&path, &[]).map_err(|e| e.to_string());
        let name = preset.as_ref().map(|p| p.name.clone()).unwrap_or(fallback);
        PresetEntry { path, name, preset }
    }
    /// The resolved preset as TOML (what the run will record), or the error.
    pub fn preview(&self) -> String {
        match &self.preset {
            Ok(p) => p.to_toml(),
            Err(e) => format!("cannot load this preset:\n\n{e}"),
        }
    }
}

/// A run folder the launcher offers.
#[derive(Clone, Debug)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub name: String,
    /// A few lines: preset name, last checkpoint, ...
    pub summary: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LauncherTab {
    Presets,
    Runs,
}

#[derive(Clone, Debug)]
pub struct Launcher {
    pub tab: LauncherTab,
    pub presets: Vec<PresetEntry>,
    pub runs: Vec<RunEntry>,
    pub selected_preset: usize,
    pub selected_run: usize,
    pub preview_scroll: u16,
}

impl Launcher {
    pub fn new(presets: Vec<PresetEntry>, runs: Vec<RunEntry>) -> Launcher {
        Launcher { tab: LauncherTab::Presets, presets, runs, selected_preset: 0, selected_run: 0, preview_scroll: 0 }
    }
    pub fn current_preset(&self) -> Option<&PresetEntry> {
        self.presets.get(self.selected_preset)
    }
    pub fn current_run(&self) -> Option<&RunEntry> {
        self.runs.get(self.selected_run)
    }
    pub fn move_by(&mut self, d: isize) {
        let (sel, len) = match self.tab {
            LauncherTab::Presets => (&mut self.selected_preset, self.presets.len()),
            LauncherTab::Runs => (&mut self.selected_run, self.runs.len()),
        };
        if len > 0 {
            *sel = (*sel as isize + d).clamp(0, len as isize - 1) as usize;
        }
        self.preview_scroll = 0;
    }
}

/// Histogram panel display options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistView {
    /// `None`: all metrics; otherwise the one metric shown.
    pub metric: Option<String>,
    /// The t range shown ("all" when `None`).
    pub t_range: Option<String>,
    pub overlay: bool,
}

/// The whole UI state.
#[derive(Clone, Debug)]
pub struct App {
    pub screen: Screen,
    pub overlay: Overlay,
    pub focus: Panel,
    pub zoom: bool,
    /// Read-only (`ayt view`): run controls do nothing.
    pub read_only: bool,
    pub launcher: Launcher,
    /// Runs on the dashboard; curves overlay them all.
    pub runs: Vec<RunData>,
    /// Index in `runs` of the engine's current run.
    pub live: Option<usize>,
    /// The run whose samples and histograms are shown.
    pub selected: usize,
    /// Requests sent to the engine and not yet started (the first may be starting).
    pub queue: VecDeque<String>,
    pub log: VecDeque<String>,
    /// Lines ever pushed to the log (for the log file).
    pub log_total: u64,
    pub log_scroll: usize,
    pub log_y: bool,
    pub x_axis: XAxis,
    pub hist: HistView,
    /// The user asked to quit; waiting for the engine to stop the run.
    pub quitting: bool,
    /// The event loop should end now.
    pub exit: bool,
    /// Sample previews in 24-bit colour (else the 256-colour palette).
    pub truecolor: bool,
}

impl App {
    pub fn new(launcher: Launcher) -> App {
        App {
            screen: Screen::Launcher,
            overlay: Overlay::None,
            focus: Panel::Curves,
            zoom: false,
            read_only: false,
            launcher,
            runs: Vec::new(),
            live: None,
            selected: 0,
            queue: VecDeque::new(),
            log: VecDeque::new(),
            log_total: 0,
            log_scroll: 0,
            log_y: false,
            x_axis: XAxis::Step,
            hist: HistView::default(),
            quitting: false,
            exit: false,
            truecolor: true,
        }
    }

    /// A read-only dashboard over runs read from disk.
    pub fn viewer(runs: Vec<RunData>) -> App {
        let mut app = App::new(Launcher::new(Vec::new(), Vec::new()));
        app.screen = Screen::Dashboard;
        app.read_only = true;
        app.runs = runs;
        app
    }

    pub fn live_run(&self) -> Option<&RunData> {
        self.live.and_then(|i| self.runs.get(i))
    }

    fn live_mut(&mut self) -> Option<&mut RunData> {
        self.live.and_then(|i| self.runs.get_mut(i))
    }

    /// The run whose samples and histograms are shown.
    pub fn shown_run(&self) -> Option<&RunData> {
        self.runs.get(self.selected).or_else(|| self.runs.first())
    }

    /// Whether the engine is working on a run (quitting must ask first).
    pub fn job_active(&self) -> bool {
        self.live_run().is_some_and(|r| r.state.is_active())
    }

    pub fn push_log(&mut self, line: impl Into<String>) {
        let line = line.into();
        for l in line.lines() {
            if self.log.len() == LOG_LINES {
                self.log.pop_front();
            }
            self.log.push_back(l.to_string());
            self.log_total += 1;
        }
    }

    /// Records a request sent to the engine (shown in the queue until it starts).
    pub fn enqueue(&mut self, request: &RunRequest) {
        self.queue.push_back(crate::engine::run::describe(request));
    }

    /// Adds a run read from disk (or replaces the one from the same folder).
    pub fn add_view_run(&mut self, run: RunData) {
        let live = self.live;
        match self.runs.iter().enumerate().position(|(i, r)| Some(i) != live && r.dir.is_some() && r.dir == run.dir) {
            Some(i) => self.runs[i] = run,
            None => self.runs.push(run),
        }
    }

    /// Applies an engine event.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Started { run_dir, name, start_step, total_steps, params } => {
                self.queue.pop_front();
                let mut run = RunData::new(name.clone(), Some(run_dir.clone()), RunState::Running);
                run.params = params;
                run.progress.step = start_step;
                run.progress.start_step = start_step;
                run.progress.total = total_steps;
                // A new live run replaces the previous live one (finished runs stay overlaid).
                let idx = self.runs.len();
                self.runs.push(run);
                self.live = Some(idx);
                self.selected = idx;
                self.screen = Screen::Dashboard;
                self.push_log(format!("started {name}: {} ({params} parameters), steps {start_step}..{total_steps}", run_dir.display()));
            }
            Event::Step { step, total_steps, kimg, wall_s, loss, stage, img_per_s } => {
                if let Some(run) = self.live_mut() {
                    let p = &mut run.progress;
                    p.observe(step, wall_s);
                    p.step = step;
                    p.total = total_steps;
                    p.kimg = kimg;
                    p.wall_s = wall_s;
                    p.img_per_s = img_per_s;
                    p.stage = stage;
                    run.loss.push(step as f64, kimg, loss);
                    if run.state == RunState::Starting {
                        run.state = RunState::Running;
                    }
                }
            }
            Event::Samples { step, images, n, h, w, c, path } => {
                if let Some(run) = self.live_mut() {
                    run.samples_ema = Some(Grid { step, grid: SampleGrid { n, h, w, c, images } });
                    if run.state == RunState::Evaluating {
                        run.state = RunState::Running;
                    }
                }
                self.push_log(format!("samples at step {step}: {}", path.display()));
            }
            Event::Checkpointed { step, path } => {
                if let Some(run) = self.live_mut() {
                    if run.state == RunState::Checkpointing {
                        run.state = RunState::Running;
                    }
                }
                self.push_log(format!("checkpoint at step {step}: {}", path.display()));
            }
            Event::Eval { step, kimg, values } => {
                if let Some(run) = self.live_mut() {
                    for (name, value) in &values {
                        run.evals.entry(name.clone()).or_default().push(step as f64, kimg, *value);
                    }
                }
                self.push_log(format!("eval at step {step}: {} values", values.len()));
            }
            Event::Paused { step } => {
                if let Some(run) = self.live_mut() {
                    run.state = RunState::Paused;
                }
                self.push_log(format!("paused at step {step}"));
            }
            Event::Resumed { step } => {
                if let Some(run) = self.live_mut() {
                    run.state = RunState::Running;
                }
                self.push_log(format!("resumed at step {step}"));
            }
            Event::Finished { run_dir, step, stopped_early, final_loss, wall_s } => {
                if let Some(run) = self.live_mut() {
                    run.state = if stopped_early { RunState::Stopped } else { RunState::Finished };
                    run.progress.step = step;
                }
                self.push_log(format!(
                    "{} {}: step {step}, final loss {final_loss:.5}, {wall_s:.1} s of training",
                    if stopped_early { "stopped" } else { "finished" },
                    run_dir.display()
                ));
                if self.quitting {
                    self.exit = true;
                }
            }
            Event::Failed { run_dir, error } => {
                let started = self.live_run().is_some_and(|r| r.state.is_active());
                if started {
                    if let Some(run) = self.live_mut() {
                        run.state = RunState::Failed;
                        run.error = Some(error.clone());
                    }
                } else {
                    // It failed before starting: it was the head of the queue.
                    self.queue.pop_front();
                }
                let at = run_dir.map(|d| format!(" ({})", d.display())).unwrap_or_default();
                self.push_log(format!("FAILED{at}: {error}"));
                if self.quitting {
                    self.exit = true;
                }
            }
            Event::Log(line) => self.push_log(line),
            Event::Probe { step, hists } => {
                for (name, h, _) in hists {
                    let counts = h.counts.iter().map(|c| (*c).max(0) as u64).collect();
                    self.on_probe(ProbeHist { name, row: HistRow { step, edges: h.edges, counts } });
                }
                self.push_log(format!("probe at step {step}"));
            }
        }
    }

    /// Applies a probe histogram to the live run (or the shown one when viewing).
    pub fn on_probe(&mut self, probe: ProbeHist) {
        let idx = self.live.unwrap_or(self.selected);
        if let Some(run) = self.runs.get_mut(idx) {
            run.hists.insert(probe.name, probe.row);
        }
    }

    /// The engine thread is gone (it ended or panicked).
    pub fn on_engine_gone(&mut self) {
        if let Some(run) = self.live_mut() {
            if run.state.is_active() {
                run.state = RunState::Failed;
            }
        }
        if self.quitting {
            self.exit = true;
        }
    }

    /// Marks the live run as waiting for an answer to a command.
    pub fn set_live_state(&mut self, state: RunState) {
        if let Some(run) = self.live_mut() {
            if matches!(run.state, RunState::Running | RunState::Paused | RunState::Evaluating | RunState::Checkpointing) {
                run.state = state;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(app: &mut App) {
        app.on_event(Event::Started { run_dir: "/r/a".into(), name: "a".into(), start_step: 0, total_steps: 100, params: 1234 });
    }

    fn step(app: &mut App, s: u64, loss: f64) {
        app.on_event(Event::Step {
            step: s,
            total_steps: 100,
            kimg: s as f64 * 0.032,
            wall_s: s as f64 * 0.5,
            loss,
            stage: 0,
            img_per_s: 64.0,
        });
    }

    #[test]
    fn a_run_goes_from_started_to_finished() {
        let mut app = App::new(Launcher::new(vec![], vec![]));
        app.queue.push_back("new run of preset a".into());
        started(&mut app);
        assert!(app.queue.is_empty(), "starting pops the queue");
        assert_eq!(app.screen, Screen::Dashboard);
        assert!(app.job_active());
        for s in 1..=10 {
            step(&mut app, s, 1.0 / s as f64);
        }
        let run = app.live_run().unwrap();
        assert_eq!(run.loss.len(), 10);
        assert_eq!(run.progress.step, 10);
        assert!((run.progress.steps_per_s - 2.0).abs() < 1e-9, "2 steps per wall second");
        assert!((run.progress.eta_s().unwrap() - 45.0).abs() < 1e-6);
        app.on_event(Event::Paused { step: 10 });
        assert_eq!(app.live_run().unwrap().state, RunState::Paused);
        app.on_event(Event::Resumed { step: 10 });
        assert_eq!(app.live_run().unwrap().state, RunState::Running);
        app.on_event(Event::Samples { step: 10, path: "/r/a/s.png".into(), images: vec![0; 4 * 3], n: 3, h: 2, w: 2, c: 1 });
        assert_eq!(app.live_run().unwrap().samples_ema.as_ref().unwrap().grid.n, 3);
        app.on_event(Event::Finished { run_dir: "/r/a".into(), step: 100, stopped_early: false, final_loss: 0.1, wall_s: 50.0 });
        assert_eq!(app.live_run().unwrap().state, RunState::Finished);
        assert!(!app.job_active());
        assert!(!app.exit);
        assert!(app.log.iter().any(|l| l.contains("finished")));
    }

    #[test]
    fn eval_events_feed_the_eval_axis_of_the_live_run() {
        let mut app = App::new(Launcher::new(vec![], vec![]));
        started(&mut app);
        app.on_event(Event::Eval {
            step: 10,
            kimg: 0.64,
            values: vec![("fd_evalnet_1step".into(), 12.5), ("disk_in_range_1step".into(), 0.9)],
        });
        app.on_event(Event::Eval { step: 20, kimg: 1.28, values: vec![("fd_evalnet_1step".into(), 8.0)] });
        let evals = &app.live_run().unwrap().evals;
        assert_eq!(evals["fd_evalnet_1step"].raw, vec![12.5, 8.0]);
        assert_eq!(evals["fd_evalnet_1step"].kimg, vec![0.64, 1.28]);
        assert_eq!(evals["disk_in_range_1step"].step, vec![10.0]);
        assert!(app.log.back().unwrap().contains("eval at step 20"));
    }

    #[test]
    fn probe_and_eval_events_reach_the_live_run_not_the_shown_one() {
        use crate::metrics::hist::{Histogram, Summary};
        let mut app = App::new(Launcher::new(vec![], vec![]));
        started(&mut app);
        // A run opened from disk beside it, and shown.
        app.add_view_run(RunData::new("old", Some("/r/old".into()), RunState::Viewing));
        app.selected = 1;
        let hist = |counts: Vec<i64>| Histogram { edges: vec![0.0, 0.5, 1.0], counts };
        app.on_event(Event::Probe {
            step: 7,
            hists: vec![
                ("tangent/mfd/rho".into(), hist(vec![2, 1]), Summary::of(&[0.1, 0.2, 0.7])),
                ("tangent/l2/toward_t1".into(), hist(vec![-1, 4]), Summary::of(&[0.6, 0.8])),
            ],
        });
        app.on_event(Event::Eval { step: 7, kimg: 0.2, values: vec![("fd_evalnet_1step".into(), 3.5)] });
        let live = app.live_run().unwrap();
        assert_eq!(live.hists["tangent/mfd/rho"], HistRow { step: 7, edges: vec![0.0, 0.5, 1.0], counts: vec![2, 1] });
        assert_eq!(live.hists["tangent/l2/toward_t1"].counts, vec![0, 4], "negative counts clamp to 0");
        assert_eq!(live.evals["fd_evalnet_1step"].raw, vec![3.5]);
        assert!(app.runs[1].hists.is_empty() && app.runs[1].evals.is_empty(), "the shown run read from disk is untouched");
        assert!(app.log.iter().any(|l| l == "probe at step 7"));
    }

    #[test]
    fn quitting_ends_when_the_run_finishes_or_fails() {
        let mut app = App::new(Launcher::new(vec![], vec![]));
        started(&mut app);
        app.quitting = true;
        app.on_event(Event::Finished { run_dir: "/r/a".into(), step: 5, stopped_early: true, final_loss: 0.1, wall_s: 1.0 });
        assert!(app.exit);
        assert_eq!(app.live_run().unwrap().state, RunState::Stopped);

        let mut app = App::new(Launcher::new(vec![], vec![]));
        app.queue.push_back("x".into());
        app.on_event(Event::Failed { run_dir: None, error: "bad preset".into() });
        assert!(app.queue.is_empty(), "a request that failed to start leaves the queue");
        assert!(app.log.back().unwrap().contains("bad preset"));
    }

    #[test]
    fn log_is_bounded_and_splits_lines() {
        let mut app = App::new(Launcher::new(vec![], vec![]));
        app.push_log("a\nb");
        assert_eq!(app.log.len(), 2);
        for i in 0..2 * LOG_LINES {
            app.push_log(format!("{i}"));
        }
        assert_eq!(app.log.len(), LOG_LINES);
        assert_eq!(app.log.back().unwrap(), &format!("{}", 2 * LOG_LINES - 1));
    }

    #[test]
    fn probes_are_grouped_by_metric_and_t_range() {
        let key = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(hist_key("tangent/mfd/rho"), key("mfd", "rho", "all"));
        assert_eq!(hist_key("tangent/lpips/toward_t1"), key("lpips", "toward", "t0.1-1"));
        assert_eq!(hist_key("tangent/l2/oscillation_t3"), key("l2", "oscillation", "t>10"));
        let mut app = App::new(Launcher::new(vec![], vec![]));
        started(&mut app);
        for name in ["tangent/mfd/rho", "tangent/l2/toward", "tangent/l2/rho_t0"] {
            app.on_probe(ProbeHist { name: name.into(), row: HistRow { step: 3, edges: vec![0.0, 0.5, 1.0], counts: vec![1, 2] } });
        }
        let (metrics, ranges) = app.live_run().unwrap().hist_axes();
        assert_eq!(metrics, vec!["rho", "toward"]);
        assert_eq!(ranges, vec!["all", "t<0.1"]);
    }

    #[test]
    fn steps_without_a_run_are_ignored() {
        let mut app = App::new(Launcher::new(vec![], vec![]));
        step(&mut app, 1, 1.0);
        assert!(app.runs.is_empty());
        app.on_engine_gone();
        assert!(!app.exit);
    }
}
