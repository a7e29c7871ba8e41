//! One run from start (or resume) to finish: run folder, training loop, logging, checkpoints,
//! samples, and the commands that steer it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use crossbeam_channel::{Receiver, TryRecvError};

use super::eval::TrainingEval;
use super::probe::Prober;
use super::{dataset, Command, Emitter, Event, RunRequest};
use crate::config::Preset;
use crate::paths::Paths;
use crate::store::{RunLogWriter, RunMeta};
use crate::train::{checkpoint, Trainer};
use crate::{Error, Result};

pub const PRESET_FILE: &str = "preset.toml";
pub const LOG_FILE: &str = "run.h5";

/// The engine's side of a running run: commands in, events out, the queue for later runs.
pub struct Control<'a> {
    pub commands: &'a Receiver<Command>,
    pub queue: &'a mut VecDeque<RunRequest>,
    pub emitter: &'a Emitter,
    /// Set when the engine should end after this run.
    pub quit: bool,
}

enum Next {
    Continue,
    Stop,
}

/// What the loop does between steps.
enum Action {
    Checkpoint,
    Sample,
    Probe,
}

impl Control<'_> {
    /// Drains pending commands; blocks while paused. Returns what to do before the next step.
    fn poll(&mut self, step: u64, actions: &mut Vec<Action>) -> Next {
        let mut paused = false;
        loop {
            let cmd = if paused {
                match self.commands.recv() {
                    Ok(c) => c,
                    Err(_) => return Next::Continue,
                }
            } else {
                match self.commands.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return Next::Continue,
                }
            };
            match cmd {
                Command::Start(r) => {
                    self.emitter.emit(Event::Log(format!("queued: {}", describe(&r))));
                    self.queue.push_back(r);
                }
                Command::Pause => {
                    if !paused {
                        paused = true;
                        self.emitter.emit(Event::Paused { step });
                    }
                }
                Command::Resume => {
                    if paused {
                        paused = false;
                        self.emitter.emit(Event::Resumed { step });
                    }
                }
                Command::Stop => return Next::Stop,
                Command::Quit => {
                    self.quit = true;
                    return Next::Stop;
                }
                Command::Checkpoint => actions.push(Action::Checkpoint),
                Command::SampleNow => actions.push(Action::Sample),
                Command::Probe => actions.push(Action::Probe),
            }
        }
    }
}

pub fn describe(r: &RunRequest) -> String {
    match r {
        RunRequest::New { preset, .. } => format!("new run of preset {}", preset.name),
        RunRequest::Resume { run_dir } => format!("resume {}", run_dir.display()),
    }
}

/// A run folder's default name: `<preset name>-<UTC time>`.
pub fn default_run_dir(paths: &Paths, name: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace([':', '-'], "").replace('T', "-");
    paths.runs().join(format!("{name}-{}", stamp.trim_end_matches('Z')))
}

struct Prepared {
    run_dir: PathBuf,
    trainer: Trainer,
    writer: RunLogWriter,
    prober: Prober,
    eval: Option<TrainingEval>,
}

fn prepare_new(
    paths: &Paths,
    device: &Device,
    preset: &Preset,
    preset_dir: Option<&Path>,
    out: Option<PathBuf>,
    emitter: &Emitter,
) -> Result<Prepared> {
    let run_dir = out.unwrap_or_else(|| default_run_dir(paths, &preset.name));
    if run_dir.join(LOG_FILE).exists() || run_dir.join(PRESET_FILE).exists() {
        return Err(Error::file(&run_dir, "already holds a run; use `ayt resume` to continue it, or choose another --out"));
    }
    let data = dataset::open(preset, paths)?;
    let mut trainer = Trainer::new(preset, data.source, device)?;
    attach_feature_loss(&mut trainer, paths, &data.sha256, device)?;
    if let Some(init) = preset.resolve_init(preset_dir, &paths.runs()) {
        trainer.init_from(&init)?;
    }
    // Before the run folder exists: a bad [eval] setting leaves nothing behind.
    let eval = TrainingEval::new(&trainer, paths, device, emitter)?;
    std::fs::create_dir_all(run_dir.join("samples"))?;
    let toml = preset.to_toml();
    std::fs::write(run_dir.join(PRESET_FILE), &toml)?;
    let meta = RunMeta::new(toml, preset.seed, data.name, data.sha256);
    let prober = Prober::new(preset, paths, &meta.dataset_sha256, trainer.shape, device)?;
    let writer = RunLogWriter::create(run_dir.join(LOG_FILE), &meta)?;
    Ok(Prepared { run_dir, trainer, writer, prober, eval })
}

fn prepare_resume(paths: &Paths, device: &Device, run_dir: &Path, emitter: &Emitter) -> Result<Prepared> {
    let preset = Preset::load(&run_dir.join(PRESET_FILE), &[])?;
    let step = checkpoint::latest(run_dir)?.ok_or_else(|| Error::file(run_dir, "no checkpoint to resume from (ckpt/ is empty)"))?;
    let data = dataset::open(&preset, paths)?;
    let mut trainer = Trainer::new(&preset, data.source, device)?;
    attach_feature_loss(&mut trainer, paths, &data.sha256, device)?;
    trainer.restore(run_dir, step)?;
    let prober = Prober::new(&preset, paths, &data.sha256, trainer.shape, device)?;
    let eval = TrainingEval::new(&trainer, paths, device, emitter)?;
    let writer = RunLogWriter::open_append(run_dir.join(LOG_FILE), step as i64)?;
    Ok(Prepared { run_dir: run_dir.to_path_buf(), trainer, writer, prober, eval })
}

/// Loads the frozen network a feature-space loss needs (phi for MFD), trained on this data set.
fn attach_feature_loss(trainer: &mut Trainer, paths: &Paths, dataset_sha256: &str, device: &Device) -> Result<()> {
    if trainer.preset.train.loss == crate::config::LossKind::Mfd {
        let m = &trainer.preset.mfd;
        let phi = crate::features::load_phi(paths, &m.features, dataset_sha256, device)?.frozen();
        let eps = m.eps;
        trainer.set_feature_distance(Box::new(crate::features::MfdDistance { phi, eps }));
    }
    Ok(())
}

/// Runs one request to its end (finished, stopped, or failed).
pub fn execute(paths: &Paths, device: &Device, request: RunRequest, ctl: &mut Control) -> Result<()> {
    let Prepared { run_dir, mut trainer, writer, mut prober, mut eval } = match &request {
        RunRequest::New { preset, preset_dir, out } => prepare_new(paths, device, preset, preset_dir.as_deref(), out.clone(), ctl.emitter)?,
        RunRequest::Resume { run_dir } => prepare_resume(paths, device, run_dir, ctl.emitter)?,
    };
    let p = trainer.preset.clone();
    let total = p.train.iterations;
    ctl.emitter.emit(Event::Started {
        run_dir: run_dir.clone(),
        name: p.name.clone(),
        start_step: trainer.step,
        total_steps: total,
        params: trainer.model.param_count(),
    });
    let result = train_loop(&run_dir, &mut trainer, &writer, &mut prober, eval.as_mut(), ctl);
    // Whatever happened, keep what was logged.
    let closed = writer.close();
    let (stopped_early, final_loss) = result?;
    closed?;
    ctl.emitter.emit(Event::Finished { run_dir, step: trainer.step, stopped_early, final_loss, wall_s: trainer.wall_s() });
    Ok(())
}

fn train_loop(
    run_dir: &Path,
    trainer: &mut Trainer,
    writer: &RunLogWriter,
    prober: &mut Prober,
    mut eval: Option<&mut TrainingEval>,
    ctl: &mut Control,
) -> Result<(bool, f64)> {
    let p = trainer.preset.clone();
    let total = p.train.iterations;
    let mut last_loss = f64::NAN;
    let mut window = (Instant::now(), trainer.images_seen);
    let mut img_per_s = 0.0;
    let mut actions = Vec::new();
    let mut stopped = false;
    while !trainer.done() {
        if let Next::Stop = ctl.poll(trainer.step, &mut actions) {
            stopped = true;
            break;
        }
        for action in actions.drain(..) {
            match action {
                Action::Checkpoint => checkpoint_now(run_dir, trainer, writer, ctl)?,
                Action::Sample => samples_now(run_dir, trainer, writer, ctl)?,
                Action::Probe => prober.run(trainer, writer, ctl.emitter)?,
            }
        }
        let kimg_before = trainer.kimg();
        let stats = trainer.step()?;
        last_loss = stats.loss;
        let step = stats.step;
        let (kimg, wall) = (trainer.kimg(), trainer.wall_s());
        let elapsed = window.0.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            img_per_s = (trainer.images_seen - window.1) as f64 / elapsed;
            window = (Instant::now(), trainer.images_seen);
        } else if img_per_s == 0.0 && elapsed > 0.0 {
            img_per_s = (trainer.images_seen - window.1) as f64 / elapsed;
        }
        if step % p.log.every == 0 || step == 1 || step == total {
            let s = step as i64;
            writer.scalar("loss", s, kimg, wall, stats.loss)?;
            writer.scalar("stage", s, kimg, wall, stats.stage as f64)?;
            writer.scalar("lr", s, kimg, wall, trainer.opt.lr())?;
            writer.scalar("img_per_s", s, kimg, wall, img_per_s)?;
            if p.train.mode == crate::config::Mode::Ect {
                writer.scalar("mean_gap", s, kimg, wall, stats.mean_gap)?;
            }
        }
        ctl.emitter.emit(Event::Step { step, total_steps: total, kimg, wall_s: wall, loss: stats.loss, stage: stats.stage, img_per_s });
        if p.log.sample_every > 0 && step % p.log.sample_every == 0 && step != total {
            samples_now(run_dir, trainer, writer, ctl)?;
        }
        if p.probe.every > 0 && step % p.probe.every == 0 && step != total {
            prober.run(trainer, writer, ctl.emitter)?;
        }
        if let Some(ev) = eval.as_deref_mut().filter(|ev| step != total && ev.due(kimg_before, kimg)) {
            ev.run(trainer, writer, ctl.emitter)?;
        }
        if p.log.checkpoint_every > 0 && step % p.log.checkpoint_every == 0 && step != total {
            checkpoint_now(run_dir, trainer, writer, ctl)?;
        }
    }
    samples_now(run_dir, trainer, writer, ctl)?;
    if p.probe.every > 0 {
        prober.run(trainer, writer, ctl.emitter)?;
    }
    // A stopped run skips the (possibly long) final evaluation; `ayt eval` can score it later.
    match eval {
        Some(ev) if !stopped => ev.run(trainer, writer, ctl.emitter)?,
        Some(_) => ctl.emitter.emit(Event::Log(format!("stopped: no final evaluation (run `ayt eval {}`)", run_dir.display()))),
        None => {}
    }
    checkpoint_now(run_dir, trainer, writer, ctl)?;
    Ok((stopped, last_loss))
}

fn checkpoint_now(run_dir: &Path, trainer: &Trainer, writer: &RunLogWriter, ctl: &Control) -> Result<()> {
    let path = trainer.save_checkpoint(run_dir)?;
    writer.flush()?;
    prune_checkpoints(run_dir, trainer.preset.log.keep_checkpoints)?;
    ctl.emitter.emit(Event::Checkpointed { step: trainer.step, path });
    Ok(())
}

/// Keeps the newest `keep` checkpoints (0 keeps all).
fn prune_checkpoints(run_dir: &Path, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let steps = checkpoint::list(run_dir)?;
    for step in steps.iter().take(steps.len().saturating_sub(keep)) {
        // The json goes first: a checkpoint without it is not listed, never half-loaded.
        std::fs::remove_file(checkpoint::state_path(run_dir, *step))?;
        std::fs::remove_file(checkpoint::tensors_path(run_dir, *step))?;
    }
    Ok(())
}

fn samples_now(run_dir: &Path, trainer: &Trainer, writer: &RunLogWriter, ctl: &Control) -> Result<()> {
    let log = &trainer.preset.log;
    if log.sample_count == 0 {
        return Ok(());
    }
    let x = trainer.preview(true, log.sample_count, log.sample_steps)?;
    let dir = run_dir.join("samples");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("step-{}.png", trainer.step));
    crate::sample::write_grid(&x, &path)?;
    let (images, n, h, w, c) = crate::sample::to_u8_nhwc(&x)?;
    writer.samples(trainer.step as i64, images.clone(), n, h, w, c)?;
    ctl.emitter.emit(Event::Samples { step: trainer.step, path, images, n, h, w, c });
    Ok(())
}
