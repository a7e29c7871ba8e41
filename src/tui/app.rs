//! The UI's state and its pure updates: engine events, probe histograms and log lines come in,
//! nothing goes out (key handling, in `keys`, returns the effects for the event loop to carry
//! out). Every render function reads an [`App`] and nothing else.
//!
//! - this file: screens, panels, overlays and the [`App`] itself;
//! - `events`: engine events applied to the app, one method per kind;
//! - `alerts`: what rings the bell and shows in the header;
//! - `compare`: filter, smoothing, grouping and the summary table of compared runs;
//! - `run_data`: what is known about one run ([`RunData`]);
//! - `launcher`: the launcher's presets and run folders ([`Launcher`]).

mod alerts;
mod compare;
mod events;
mod launcher;
mod run_data;

use std::collections::VecDeque;

use crate::engine::RunRequest;

use super::series::XAxis;

pub use alerts::{Alert, Alerts, STALL_AFTER};
pub use compare::{matches, TableView};
pub use launcher::{Launcher, LauncherTab, PresetEntry, RunEntry};
pub use run_data::{hist_key, Grid, HistRow, ProbeHist, Progress, RunData, RunState, DEFAULT_HIST_METRIC, HIST_HISTORY, SAMPLE_HISTORY};

/// Lines kept in the log pane.
pub const LOG_LINES: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Launcher,
    Dashboard,
    /// The summary table of the runs (`T`): swept fields, FD, alignment; sortable.
    Table,
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

/// A sample grid drawn by render: which run's which grid, and the cells it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageSlot {
    pub run: usize,
    /// The raw-weight grid (else the EMA one).
    pub raw: bool,
    pub step: u64,
    pub area: ratatui::layout::Rect,
}

/// Histogram panel display options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistView {
    /// `None`: all metrics; otherwise the one metric shown.
    pub metric: Option<String>,
    /// The t range shown ("all" when `None`).
    pub t_range: Option<String>,
    pub overlay: bool,
    /// Each loss's histograms over training (x: probes, y: the metric's bins).
    pub heatmap: bool,
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
    pub alerts: Alerts,
    /// Strength of the loss curves' EMA (`[` / `]`).
    pub smoothing: f64,
    /// Sweep members drawn per setting: mean and min-max band over seeds (`g`).
    pub grouped: bool,
    /// Only runs matching every word are shown (`/`; see [`matches`]).
    pub filter: String,
    /// The filter is being typed.
    pub filter_editing: bool,
    pub table: TableView,
    /// How many sample grids back from the latest the samples panel shows (`,` / `.`).
    pub sample_back: usize,
    /// Sample tiles are drawn as images by a graphics protocol: render records where
    /// ([`ImageSlot`]) for the event loop to draw them.
    pub graphics: bool,
    pub image_slots: std::cell::RefCell<Vec<ImageSlot>>,
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
            alerts: Alerts::default(),
            smoothing: super::series::SMOOTHING,
            grouped: true,
            filter: String::new(),
            filter_editing: false,
            table: TableView::default(),
            sample_back: 0,
            graphics: false,
            image_slots: Default::default(),
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

    /// The EMA grid the samples panel shows for `run`: the latest, or [`App::sample_back`]
    /// grids before it.
    pub fn shown_ema<'a>(&self, run: &'a RunData) -> Option<&'a Grid> {
        match run.sample_history.len() {
            0 => run.samples_ema.as_ref(),
            n => run.sample_history.get(n - 1 - self.sample_back.min(n - 1)),
        }
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
        let mut run = run;
        run.loss.set_smoothing(self.smoothing);
        match self.runs.iter().enumerate().position(|(i, r)| Some(i) != live && r.dir.is_some() && r.dir == run.dir) {
            Some(i) => {
                // a re-read run folder keeps what its sweep said about it
                if run.swept.is_empty() {
                    run.swept = std::mem::take(&mut self.runs[i].swept);
                }
                self.runs[i] = run
            }
            None => self.runs.push(run),
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
mod tests;
