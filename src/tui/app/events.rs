//! Engine events applied to the [`App`]: one method per kind of event, each a pure update.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{App, Grid, HistRow, ProbeHist, RunData, RunState, Screen};
use crate::engine::Event;
use crate::metrics::probe::ProbeHists;
use crate::store::SampleGrid;

impl App {
    /// Applies an engine event.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Started { run_dir, name, start_step, total_steps, params } => {
                self.on_started(run_dir, name, start_step, total_steps, params)
            }
            Event::Step { step, total_steps, kimg, wall_s, loss, stage, img_per_s } => {
                if let Some(run) = self.live_mut() {
                    run.progress.advance(step, total_steps, kimg, wall_s, img_per_s, stage);
                    run.on_step(step, kimg, wall_s, loss);
                    self.watch_step(step, loss, Instant::now());
                }
            }
            Event::Samples { step, path, images, n, h, w, c } => {
                self.on_samples(Grid { step, grid: SampleGrid { n, h, w, c, images } }, &path)
            }
            Event::Checkpointed { step, path } => self.on_checkpointed(step, &path),
            Event::Eval { step, kimg, values } => self.on_eval(step, kimg, &values),
            Event::Paused { step } => self.on_pause(step, true),
            Event::Resumed { step } => self.on_pause(step, false),
            Event::Finished { run_dir, step, stopped_early, final_loss, wall_s } => {
                self.on_finished(&run_dir, step, stopped_early, final_loss, wall_s)
            }
            Event::Failed { run_dir, error } => self.on_failed(run_dir, error),
            Event::Log(line) => self.on_log(line),
            Event::Probe { step, hists } => self.on_probe_hists(step, hists),
        }
    }

    fn on_started(&mut self, run_dir: PathBuf, name: String, start_step: u64, total_steps: u64, params: usize) {
        self.queue.pop_front();
        let mut run = RunData::new(name.clone(), Some(run_dir.clone()), RunState::Running);
        run.params = params;
        run.progress.step = start_step;
        run.progress.start_step = start_step;
        run.progress.total = total_steps;
        run.loss.set_smoothing(self.smoothing);
        // A new live run replaces the previous live one (finished runs stay overlaid).
        let idx = self.runs.len();
        self.runs.push(run);
        self.live = Some(idx);
        self.selected = idx;
        self.screen = Screen::Dashboard;
        self.watch_new_run(Instant::now());
        self.push_log(format!("started {name}: {} ({params} parameters), steps {start_step}..{total_steps}", run_dir.display()));
    }

    fn on_samples(&mut self, grid: Grid, path: &Path) {
        let step = grid.step;
        if let Some(run) = self.live_mut() {
            run.record_samples(grid);
            if run.state == RunState::Evaluating {
                run.state = RunState::Running;
            }
        }
        self.push_log(format!("samples at step {step}: {}", path.display()));
    }

    fn on_checkpointed(&mut self, step: u64, path: &Path) {
        if let Some(run) = self.live_mut() {
            if run.state == RunState::Checkpointing {
                run.state = RunState::Running;
            }
        }
        self.push_log(format!("checkpoint at step {step}: {}", path.display()));
    }

    fn on_eval(&mut self, step: u64, kimg: f64, values: &[(String, f64)]) {
        if let Some(run) = self.live_mut() {
            for (name, value) in values {
                let wall = run.loss.wall_at(step as f64);
                run.evals.entry(name.clone()).or_default().push(step as f64, kimg, wall, *value);
            }
        }
        self.push_log(format!("eval at step {step}: {} values", values.len()));
    }

    /// `Paused` (`paused`) or `Resumed`.
    fn on_pause(&mut self, step: u64, paused: bool) {
        if let Some(run) = self.live_mut() {
            run.state = if paused { RunState::Paused } else { RunState::Running };
        }
        self.push_log(format!("{} at step {step}", if paused { "paused" } else { "resumed" }));
    }

    fn on_finished(&mut self, run_dir: &Path, step: u64, stopped_early: bool, final_loss: f64, wall_s: f64) {
        let mut name = String::new();
        if let Some(run) = self.live_mut() {
            run.state = if stopped_early { RunState::Stopped } else { RunState::Finished };
            run.progress.step = step;
            name = run.name.clone();
        }
        self.alert(format!("{name} {} at step {step}", if stopped_early { "stopped" } else { "finished" }), false);
        self.push_log(format!(
            "{} {}: step {step}, final loss {final_loss:.5}, {wall_s:.1} s of training",
            if stopped_early { "stopped" } else { "finished" },
            run_dir.display()
        ));
        self.exit_if_quitting();
    }

    fn on_failed(&mut self, run_dir: Option<PathBuf>, error: String) {
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
        self.alert(format!("FAILED: {}", error.lines().next().unwrap_or("")), true);
        self.exit_if_quitting();
    }

    /// An engine log line; a rollback after a non-finite step alerts.
    fn on_log(&mut self, line: String) {
        let nonfinite = line.contains("rolled back to the checkpoint");
        self.push_log(line.clone());
        if nonfinite {
            self.alert(line.lines().next().unwrap_or("").to_string(), true);
        }
    }

    fn on_probe_hists(&mut self, step: u64, hists: ProbeHists) {
        for (name, h, summary) in hists {
            let counts = h.counts.iter().map(|c| (*c).max(0) as u64).collect();
            let mean = Some(summary.mean).filter(|m| m.is_finite());
            self.on_probe(ProbeHist { name, row: HistRow { step, edges: h.edges, counts, mean } });
        }
        self.push_log(format!("probe at step {step}"));
    }

    /// Applies a probe histogram to the live run (or the shown one when viewing).
    pub fn on_probe(&mut self, probe: ProbeHist) {
        let idx = self.live.unwrap_or(self.selected);
        if let Some(run) = self.runs.get_mut(idx) {
            run.record_hist(probe.name, probe.row);
        }
    }

    /// The engine thread is gone (it ended or panicked).
    pub fn on_engine_gone(&mut self) {
        if let Some(run) = self.live_mut() {
            if run.state.is_active() {
                run.state = RunState::Failed;
            }
        }
        self.exit_if_quitting();
    }

    /// A quit waits for the run to end (finished, failed, or the engine gone): it has.
    fn exit_if_quitting(&mut self) {
        if self.quitting {
            self.exit = true;
        }
    }
}
