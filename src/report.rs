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

/// Consumes events until the run finishes or fails. `line_every` paces the plain lines.
pub fn follow(handle: &EngineHandle, line_every: Duration) -> Result<Outcome> {
    let tty = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut last_line = Instant::now() - line_every;
    let mut name = String::new();
    let say = |bar: &Option<ProgressBar>, msg: String| match bar {
        Some(b) => b.println(msg),
        None => eprintln!("{msg}"),
    };
    for event in handle.events.iter() {
        match event {
            Event::Started { run_dir, name: n, start_step, total_steps, params } => {
                name = n;
                eprintln!("run {name}: {} ({params} parameters), steps {start_step}..{total_steps}", run_dir.display());
                if tty {
                    let b = ProgressBar::new(total_steps).with_position(start_step);
                    b.set_style(
                        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    b.enable_steady_tick(Duration::from_millis(200));
                    bar = Some(b);
                }
            }
            Event::Step { step, total_steps, kimg, loss, img_per_s, stage, .. } => {
                if let Some(b) = &bar {
                    b.set_position(step);
                    b.set_message(format!("loss {loss:.4} | {img_per_s:.0} img/s | {kimg:.1} kimg | stage {stage}"));
                } else if last_line.elapsed() >= line_every || step == total_steps {
                    last_line = Instant::now();
                    eprintln!("{name} step {step}/{total_steps} loss {loss:.5} kimg {kimg:.2} img/s {img_per_s:.1} stage {stage}");
                }
            }
            Event::Samples { step, path, .. } => say(&bar, format!("samples at step {step}: {}", path.display())),
            Event::Checkpointed { step, path } => say(&bar, format!("checkpoint at step {step}: {}", path.display())),
            Event::Paused { step } => say(&bar, format!("paused at step {step}")),
            Event::Resumed { step } => say(&bar, format!("resumed at step {step}")),
            Event::Log(line) => say(&bar, line),
            Event::Finished { run_dir, step, stopped_early, final_loss, wall_s } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                return Ok(Outcome { run_dir, step, final_loss, wall_s, stopped_early });
            }
            Event::Failed { error, .. } => {
                if let Some(b) = bar.take() {
                    b.abandon();
                }
                return Err(Error::msg(error));
            }
        }
    }
    Err(Error::msg("the training thread ended without finishing the run"))
}
