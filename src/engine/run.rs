//! One run from start (or resume) to finish: run folder, training loop, logging, checkpoints,
//! samples, and the commands that steer it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use crossbeam_channel::{Receiver, TryRecvError};

use super::eval::TrainingEval;
use super::probe::Prober;
use super::{losses, Command, Emitter, Event, RunRequest};
use crate::config::{Mode, OnNonFinite, Preset};
use crate::data::OpenedData;
use crate::paths::{Paths, RunDir};
use crate::store::{Flushed, RunLogWriter, RunMeta};
use crate::train::{checkpoint, StepStats, TrainState, Trainer};
use crate::{Error, Result};

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

/// A run being trained: its folder, its preset (the cadence of logs, samples, probes and
/// checkpoints is read here, not from the trainer), and what it writes to.
struct Run {
    dir: RunDir,
    preset: Preset,
    trainer: Trainer,
    writer: RunLogWriter,
    prober: Prober,
    eval: Option<TrainingEval>,
    /// Rollbacks from non-finite steps so far (`train.on_nonfinite = "rollback"`).
    rollbacks: u64,
}

/// The trainer of `preset` on `data`, with the frozen network its loss needs.
fn build_trainer(preset: &Preset, data: &OpenedData, paths: &Paths, device: &Device) -> Result<Trainer> {
    let shape = data.source.shape();
    let distance = losses::training_distance(preset, paths, &data.sha256, shape, device)?;
    Trainer::new(preset, data.source.clone(), distance, device)
}

fn prepare_new(
    paths: &Paths,
    device: &Device,
    preset: &Preset,
    preset_dir: Option<&Path>,
    out: Option<PathBuf>,
    emitter: &Emitter,
) -> Result<Run> {
    let dir = out.map(RunDir::new).unwrap_or_else(|| RunDir::new_default(paths, &preset.name));
    if dir.holds_run() {
        return Err(Error::file(dir.path(), "already holds a run; use `ayt resume` to continue it, or choose another --out"));
    }
    let data = preset.open_data(paths)?;
    let mut trainer = build_trainer(preset, &data, paths, device)?;
    if let Some(init) = preset.resolve_init(preset_dir, &paths.runs()) {
        trainer.init_from(&init)?;
    }
    // Before the run folder exists: a bad [eval] setting leaves nothing behind.
    let eval = TrainingEval::new(preset, paths, device, emitter)?;
    std::fs::create_dir_all(dir.samples_dir())?;
    let toml = preset.to_toml();
    std::fs::write(dir.preset_file(), &toml)?;
    let meta = RunMeta::new(toml, preset.seed, data.name, data.sha256);
    let prober = Prober::new(preset, paths, &meta.dataset_sha256, trainer.shape(), device)?;
    let writer = RunLogWriter::create(dir.log_file(), &meta)?;
    Ok(Run { dir, preset: preset.clone(), trainer, writer, prober, eval, rollbacks: 0 })
}

fn prepare_resume(paths: &Paths, device: &Device, dir: &Path, emitter: &Emitter) -> Result<Run> {
    let dir = RunDir::new(dir);
    let preset = Preset::load(&dir.preset_file(), &[])?;
    let checkpoint::NewestValid { step, passed_over: skipped } = checkpoint::newest_valid::<TrainState>(&dir)?;
    for (s, why) in &skipped {
        emitter.emit(Event::Log(format!("warning: passing over the checkpoint at step {s}, which does not load: {why}")));
    }
    let step = step.ok_or_else(|| {
        let why = if skipped.is_empty() { "ckpt/ is empty".to_string() } else { format!("none of the {} in ckpt/ loads", skipped.len()) };
        Error::file(dir.path(), format!("no checkpoint to resume from ({why})"))
    })?;
    let data = preset.open_data(paths)?;
    let mut trainer = build_trainer(&preset, &data, paths, device)?;
    for name in trainer.restore(&dir, step)? {
        emitter.emit(Event::Log(format!(
            "warning: the checkpoint at step {step} has no weights of EMA profile {name:?} (added to the preset after it was written): \
             it starts from that checkpoint's default EMA"
        )));
    }
    let prober = Prober::new(&preset, paths, &data.sha256, trainer.shape(), device)?;
    let eval = TrainingEval::new(&preset, paths, device, emitter)?;
    let writer = RunLogWriter::open_append(dir.log_file(), step as i64)?;
    Ok(Run { dir, preset, trainer, writer, prober, eval, rollbacks: 0 })
}

/// Runs one request to its end (finished, stopped, or failed).
pub fn execute(paths: &Paths, device: &Device, request: RunRequest, ctl: &mut Control) -> Result<()> {
    let mut run = match &request {
        RunRequest::New { preset, preset_dir, out } => prepare_new(paths, device, preset, preset_dir.as_deref(), out.clone(), ctl.emitter)?,
        RunRequest::Resume { run_dir } => prepare_resume(paths, device, run_dir, ctl.emitter)?,
    };
    ctl.emitter.emit(Event::Started {
        run_dir: run.dir.path().to_path_buf(),
        name: run.preset.name.clone(),
        start_step: run.trainer.steps_done(),
        total_steps: run.preset.train.iterations,
        params: run.trainer.model().param_count(),
    });
    let tuned_from_init = matches!(&request, RunRequest::New { preset, .. } if preset.train.init.is_some());
    let result = run.start_eval(tuned_from_init, paths, ctl).and_then(|()| run.train_loop(ctl));
    // Whatever happened, keep what was logged.
    let closed = run.writer.close();
    let (stopped_early, final_loss) = result?;
    closed?;
    let (step, wall_s) = (run.trainer.steps_done(), run.trainer.wall_s());
    ctl.emitter.emit(Event::Finished { run_dir: run.dir.path().to_path_buf(), step, stopped_early, final_loss, wall_s });
    Ok(())
}

/// Images per second over windows of about a second.
struct Throughput {
    window: (Instant, u64),
    img_per_s: f64,
}

/// What the loop has reported so far: the last checked loss, and the images per second.
struct Reported {
    last_loss: f64,
    throughput: Throughput,
}

impl Throughput {
    fn new(images_seen: u64) -> Throughput {
        Throughput { window: (Instant::now(), images_seen), img_per_s: 0.0 }
    }

    fn observe(&mut self, images_seen: u64) -> f64 {
        let elapsed = self.window.0.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            self.img_per_s = (images_seen - self.window.1) as f64 / elapsed;
            self.window = (Instant::now(), images_seen);
        } else if self.img_per_s == 0.0 && elapsed > 0.0 {
            self.img_per_s = (images_seen - self.window.1) as f64 / elapsed;
        }
        self.img_per_s
    }
}

impl Run {
    /// A new run tuned from `train.init` with evaluation on: the starting weights at kimg 0.
    fn start_eval(&mut self, tuned_from_init: bool, paths: &Paths, ctl: &Control) -> Result<()> {
        match self.eval.as_mut() {
            Some(ev) if tuned_from_init && self.trainer.steps_done() == 0 => ev.run_start(&self.trainer, &self.writer, ctl.emitter, paths),
            _ => Ok(()),
        }
    }

    /// Steps to the end (or a stop); returns whether it stopped early and the last loss. With
    /// `train.readback_every = N > 1` the steps' losses are read back every N steps and before
    /// anything reads the weights or writes the log (an action, a periodic task, a stop, the
    /// end), so the final checkpoint holds only checked steps.
    fn train_loop(&mut self, ctl: &mut Control) -> Result<(bool, f64)> {
        let mut reported = Reported { last_loss: f64::NAN, throughput: Throughput::new(self.trainer.images_seen()) };
        let mut actions = Vec::new();
        let mut stopped = false;
        loop {
            if self.trainer.done() {
                // a non-finite step found now rolls back, and the run trains on from there
                match self.check_queued(&mut reported, ctl)? {
                    true => continue,
                    false => break,
                }
            }
            if let Next::Stop = ctl.poll(self.trainer.steps_done(), &mut actions) {
                self.check_queued(&mut reported, ctl)?;
                stopped = true;
                break;
            }
            if !actions.is_empty() {
                self.check_queued(&mut reported, ctl)?;
            }
            for action in actions.drain(..) {
                match action {
                    Action::Checkpoint => self.checkpoint_now(ctl)?,
                    Action::Sample => self.samples_now(ctl)?,
                    Action::Probe => self.prober.run(&self.trainer, &self.writer, &self.dir, ctl.emitter)?,
                }
            }
            let kimg_before = self.trainer.kimg();
            match self.trainer.advance() {
                Ok(Some(stats)) => self.report(&stats, &mut reported, ctl)?,
                Ok(None) => {}
                Err(Error::NonFinite { step, what, value }) => {
                    self.roll_back_or_stop(step, what, value, ctl)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            if self.trainer.flush_due() && self.check_queued(&mut reported, ctl)? {
                continue;
            }
            let step = self.trainer.steps_done();
            if step != self.preset.train.iterations {
                self.periodic(step, kimg_before, &mut reported, ctl)?;
            }
        }
        self.finish(stopped, ctl)?;
        Ok((stopped, reported.last_loss))
    }

    /// Reads back the steps the trainer has queued (one host transfer; none when nothing is
    /// queued), logs and emits each finite one, and rolls back or stops at the first non-finite
    /// one. Returns whether it rolled back.
    fn check_queued(&mut self, reported: &mut Reported, ctl: &Control) -> Result<bool> {
        let checked = self.trainer.flush()?;
        for stats in &checked.steps {
            self.report(stats, reported, ctl)?;
        }
        match checked.failed {
            None => Ok(false),
            Some(Error::NonFinite { step, what, value }) => self.roll_back_or_stop(step, what, value, ctl).map(|()| true),
            Some(e) => Err(e),
        }
    }

    /// A checked step: logged (when due) and emitted.
    fn report(&self, stats: &StepStats, reported: &mut Reported, ctl: &Control) -> Result<()> {
        reported.last_loss = stats.loss;
        let img_per_s = reported.throughput.observe(stats.images_seen);
        self.log_step(stats, img_per_s)?;
        let (step, loss, stage, kimg, wall_s) = (stats.step, stats.loss, stats.stage, stats.kimg(), stats.wall_s);
        ctl.emitter.emit(Event::Step { step, total_steps: self.preset.train.iterations, kimg, wall_s, loss, stage, img_per_s });
        Ok(())
    }

    /// A NaN or an infinity at `step`: with `train.on_nonfinite = "rollback"` (and rollbacks and
    /// a checkpoint left) back to the last checkpoint, that batch passed over, the log cut to the
    /// checkpoint; otherwise the run stops with an error naming the step, the value and the last
    /// good checkpoint (what is buffered is written on the way out).
    fn roll_back_or_stop(&mut self, step: u64, what: &str, value: f64, ctl: &Control) -> Result<()> {
        let t = &self.preset.train;
        let last = self.dir.latest_checkpoint()?;
        let rollback = t.on_nonfinite == OnNonFinite::Rollback;
        let (Some(at), true, true) = (last, rollback, self.rollbacks < t.max_rollbacks) else {
            let after = if rollback {
                format!(" after {} rollbacks (train.max_rollbacks = {})", self.rollbacks, t.max_rollbacks)
            } else {
                String::new()
            };
            let resume = match last {
                Some(s) => {
                    format!("the last good checkpoint is step {s} ({}; `ayt resume` continues from it)", self.dir.tensors_path(s).display())
                }
                None => "no checkpoint was written yet".to_string(),
            };
            return Err(Error::msg(format!("step {step}: the {what} is {value}{after}; {resume}. Lower train.lr or check the data")));
        };
        self.rollbacks += 1;
        self.trainer.restore(&self.dir, at)?;
        self.trainer.skip_batch_at(step);
        self.writer.truncate_after(at as i64)?;
        ctl.emitter.emit(Event::Log(format!(
            "warning: step {step}: the {what} is {value}; rolled back to the checkpoint at step {at}, passing over that batch (rollback {} of {})",
            self.rollbacks, t.max_rollbacks
        )));
        Ok(())
    }

    fn log_step(&self, stats: &StepStats, img_per_s: f64) -> Result<()> {
        let step = stats.step;
        if !(step.is_multiple_of(self.preset.log.every) || step == 1 || step == self.preset.train.iterations) {
            return Ok(());
        }
        let (s, kimg, wall) = (step as i64, stats.kimg(), stats.wall_s);
        let w = &self.writer;
        w.scalar("loss", s, kimg, wall, stats.loss)?;
        w.scalar("stage", s, kimg, wall, stats.stage as f64)?;
        w.scalar("lr", s, kimg, wall, stats.lr)?;
        w.scalar("img_per_s", s, kimg, wall, img_per_s)?;
        if self.preset.train.mode == Mode::Ect {
            w.scalar("mean_gap", s, kimg, wall, stats.mean_gap)?;
        }
        Ok(())
    }

    /// Samples, probes, evaluations and checkpoints due after `step` (not the last one); the
    /// queued steps are checked first (a rollback then drops them).
    fn periodic(&mut self, step: u64, kimg_before: f64, reported: &mut Reported, ctl: &Control) -> Result<()> {
        let (log, probe_every) = (&self.preset.log, self.preset.probe.every);
        let due = |every: u64| every > 0 && step.is_multiple_of(every);
        let (sample_due, probe_due, checkpoint_due) = (due(log.sample_every), due(probe_every), due(log.checkpoint_every));
        let kimg = self.trainer.kimg();
        let eval_due = self.eval.as_ref().is_some_and(|ev| ev.due(kimg_before, kimg));
        if !(sample_due || probe_due || eval_due || checkpoint_due) || self.check_queued(reported, ctl)? {
            return Ok(());
        }
        if sample_due {
            self.samples_now(ctl)?;
        }
        if probe_due {
            self.prober.run(&self.trainer, &self.writer, &self.dir, ctl.emitter)?;
        }
        if let Some(ev) = self.eval.as_mut().filter(|_| eval_due) {
            ev.run(&self.trainer, &self.writer, ctl.emitter)?;
        }
        if checkpoint_due {
            self.checkpoint_now(ctl)?;
        }
        Ok(())
    }

    /// The end of a run: samples, a last probe, the final evaluation (skipped when stopped), and
    /// a checkpoint.
    fn finish(&mut self, stopped: bool, ctl: &Control) -> Result<()> {
        self.samples_now(ctl)?;
        if self.preset.probe.every > 0 {
            self.prober.run(&self.trainer, &self.writer, &self.dir, ctl.emitter)?;
        }
        // A stopped run skips the (possibly long) final evaluation; `ayt eval` can score it later.
        match &mut self.eval {
            Some(ev) if !stopped => ev.run(&self.trainer, &self.writer, ctl.emitter)?,
            Some(_) => ctl.emitter.emit(Event::Log(format!("stopped: no final evaluation (run `ayt eval {}`)", self.dir.path().display()))),
            None => {}
        }
        self.checkpoint_now(ctl)
    }

    fn checkpoint_now(&self, ctl: &Control) -> Result<()> {
        let path = self.trainer.save_checkpoint(&self.dir)?;
        // The log rows up to this checkpoint; a file that cannot be written now keeps them in
        // memory for the next burst (the run goes on).
        if let Flushed::Deferred(why) = self.writer.flush()? {
            ctl.emitter.emit(Event::Log(format!("warning: {why}")));
        }
        prune_checkpoints(&self.dir, self.preset.log.keep_checkpoints)?;
        ctl.emitter.emit(Event::Checkpointed { step: self.trainer.steps_done(), path });
        Ok(())
    }

    fn samples_now(&self, ctl: &Control) -> Result<()> {
        let log = &self.preset.log;
        if log.sample_count == 0 {
            return Ok(());
        }
        let step = self.trainer.steps_done();
        let x = self.trainer.preview(true, log.sample_count)?;
        std::fs::create_dir_all(self.dir.samples_dir())?;
        let path = self.dir.sample_grid(step);
        crate::sample::write_grid(&x, &path)?;
        let (images, n, h, w, c) = crate::sample::to_u8_nhwc(&x)?;
        self.writer.samples(step as i64, images.clone(), n, h, w, c)?;
        ctl.emitter.emit(Event::Samples { step, path, images, n, h, w, c });
        Ok(())
    }
}

/// Keeps the newest `keep` checkpoints (0 keeps all).
fn prune_checkpoints(dir: &RunDir, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let steps = dir.checkpoints()?;
    for step in steps.iter().take(steps.len().saturating_sub(keep)) {
        // The json goes first: a checkpoint without it is not listed, never half-loaded.
        std::fs::remove_file(dir.state_path(*step))?;
        std::fs::remove_file(dir.tensors_path(*step))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
