//! Headless reporting of engine events: a progress bar on a terminal, plain periodic lines when
//! piped (for batch jobs and logs).

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::{EngineHandle, Event};
use crate::progress::Progress;
use crate::{Error, Result};

/// Probe metrics on the periodic lines (the rest is in the log and `ayt probe`).
const HEADLINE: [&str; 3] = ["toward", "rho", "toward_manifold"];

/// How a headless run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_dir: PathBuf,
    pub step: u64,
    pub final_loss: f64,
    pub wall_s: f64,
    pub stopped_early: bool,
    /// The last sample grid written, if any.
    pub samples: Option<PathBuf>,
}

/// Consumes events until the run finishes or fails. `line_every` paces the plain lines.
pub fn follow(handle: &EngineHandle, line_every: Duration) -> Result<Outcome> {
    let mut progress: Option<Progress> = None;
    let mut samples = None;
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
            Event::Samples { step, path, .. } => {
                say(&progress, format!("samples at step {step}: {}", path.display()));
                samples = Some(path);
            }
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
                    .filter(|(n, _, _)| {
                        crate::metrics::probe::t_range_of(n).is_none() && HEADLINE.iter().any(|m| n.ends_with(&format!("/{m}")))
                    })
                    .map(|(n, _, s)| format!("{}={:.3}", n.trim_start_matches("tangent/"), s.mean))
                    .collect();
                say(&progress, format!("probe at step {step}: {}", means.join(" ")));
            }
            Event::Finished { run_dir, step, stopped_early, final_loss, wall_s } => {
                if let Some(p) = &mut progress {
                    p.finish();
                }
                return Ok(Outcome { run_dir, step, final_loss, wall_s, stopped_early, samples });
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
