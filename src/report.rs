//! Headless reporting of engine events: a progress bar on a terminal, plain periodic lines when
//! piped (for batch jobs and logs).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{EngineHandle, Event};
use crate::{Error, Result};

/// How a headless run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_dir: PathBuf,
    pub step: u64,
    pub final_loss: f64,
    pub wall_s: f64,
    pub stopped_early: bool,
}

/// A progress display for long work: a bar on a terminal, a plain line every `line_every` when
/// piped (batch jobs, log files).
pub struct Progress {
    bar: Option<ProgressBar>,
    line_every: Duration,
    last_line: Instant,
    label: String,
}

impl Progress {
    pub fn new(label: &str, start: u64, total: u64, line_every: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total).with_position(start);
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, line_every, last_line: Instant::now() - line_every, label: label.to_string() }
    }

    /// Reports `pos` of `total` with a status message (shown on the bar, or as a paced line).
    pub fn update(&mut self, pos: u64, total: u64, msg: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position(pos);
                b.set_message(msg.to_string());
            }
            None if self.last_line.elapsed() >= self.line_every || pos == total => {
                self.last_line = Instant::now();
                eprintln!("{} step {pos}/{total} {msg}", self.label);
            }
            None => {}
        }
    }

    /// A line that does not disturb the bar.
    pub fn println(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.println(msg.as_ref()),
            None => eprintln!("{}", msg.as_ref()),
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    pub fn abandon(&mut self) {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
    }
}

/// Consumes events until the run finishes or fails. `line_every` paces the plain lines.
pub fn follow(handle: &EngineHandle, line_every: Duration) -> Result<Outcome> {
    let mut progress: Option<Progress> = None;
    let say = |p: &Option<Progress>, msg: String| match p {
        Some(p) => p.println(msg),
        None => eprintln!("{msg}"),
    };
    for event in handle.events.iter() {
        match event {
            Event::Started { run_dir, name, start_step, total_steps, params } => {
                eprintln!("run {name}: {} ({params} parameters), steps {start_step}..{total_steps}", run_dir.display());
                progress = Some(Progress::new(&name, start_step, total_steps, line_every));
            }
            Event::Step { step, total_steps, kimg, loss, img_per_s, stage, .. } => {
                if let Some(p) = &mut progress {
                    p.update(step, total_steps, &format!("loss {loss:.5} | {img_per_s:.1} img/s | {kimg:.2} kimg | stage {stage}"));
                }
            }
            Event::Samples { step, path, .. } => say(&progress, format!("samples at step {step}: {}", path.display())),
            Event::Checkpointed { step, path } => say(&progress, format!("checkpoint at step {step}: {}", path.display())),
            Event::Eval { step, values, .. } => {
                let parts: Vec<String> = values.iter().map(|(n, v)| format!("{n}={v:.4}")).collect();
                say(&progress, format!("eval at step {step}: {}", parts.join(" ")));
            }
            Event::Paused { step } => say(&progress, format!("paused at step {step}")),
            Event::Resumed { step } => say(&progress, format!("resumed at step {step}")),
            Event::Log(line) => say(&progress, line),
            Event::Probe { step, hists } => {
                let means: Vec<String> = hists
                    .iter()
                    .filter(|(n, _, _)| !n.contains("_t"))
                    .map(|(n, _, s)| format!("{}={:.3}", n.trim_start_matches("tangent/"), s.mean))
                    .collect();
                say(&progress, format!("probe at step {step}: {}", means.join(" ")));
            }
            Event::Finished { run_dir, step, stopped_early, final_loss, wall_s } => {
                if let Some(p) = &mut progress {
                    p.finish();
                }
                return Ok(Outcome { run_dir, step, final_loss, wall_s, stopped_early });
            }
            Event::Failed { error, .. } => {
                if let Some(p) = &mut progress {
                    p.abandon();
                }
                return Err(Error::msg(error));
            }
        }
    }
    Err(Error::msg("the training thread ended without finishing the run"))
}
