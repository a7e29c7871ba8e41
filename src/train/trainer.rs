//! One training run's state and its step: EDM pre-training or ECT consistency training (the
//! objectives are `edm.rs` and `ect.rs`). The run's random streams, data order and optimiser
//! state go into its checkpoints, so a resumed run takes the same steps as an uninterrupted one.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, TrainState};
use super::loss::StepInput;
use super::readback::{self, Checked, Readback, StepStats};
use super::{ect, edm, schedule, Ema, RAdam, RAdamConfig};
use crate::config::{EmaProfile, Mode, Preset};
use crate::data::batch::DataSource;
use crate::model::{Denoiser, FeatureDistance};
use crate::nn::Ctx;
use crate::paths::RunDir;
use crate::{Error, Result};

pub struct Trainer {
    preset: Preset,
    model: Denoiser,
    /// One average of the weights per EMA profile (`train.ema`), the default first.
    emas: Vec<(EmaProfile, Denoiser)>,
    opt: RAdam,
    source: DataSource,
    noise_rng: ChaCha8Rng,
    dropout_rng: ChaCha8Rng,
    step: u64,
    images_seen: u64,
    /// Training seconds before the current process (accumulated across resumes).
    wall_before_s: f64,
    started: std::time::Instant,
    shape: (usize, usize, usize),
    device: Device,
    /// The frozen network of a feature-space loss (LPIPS, MFD); `None` for the pixel losses.
    feature_distance: Option<Box<dyn FeatureDistance>>,
    /// Steps whose batch is passed over (after a rollback from a non-finite step).
    skip_batch_at: std::collections::BTreeSet<u64>,
    /// The step's host reads (`train.readback_every`): counted, and queued when N > 1.
    readback: Readback,
}

impl Trainer {
    /// A fresh run of `preset` on `source`. `feature_distance` is the frozen network the loss
    /// differentiates through when `train.loss` is a feature-space loss (see the engine's loss
    /// factory), `None` for L2 and pseudo-Huber.
    pub fn new(preset: &Preset, source: DataSource, feature_distance: Option<Box<dyn FeatureDistance>>, device: &Device) -> Result<Self> {
        let (c, h, w) = source.shape();
        preset.model.check_image_size(h.min(w)).map_err(Error::msg)?;
        let sd = preset.sampling.sigma_data;
        let model = Denoiser::new(&preset.model, c, sd, preset.seed, device)?;
        let emas = (preset.train.ema_profiles().into_iter())
            .map(|p| Ok((p, Denoiser::new(&preset.model, c, sd, preset.seed, device)?)))
            .collect::<Result<Vec<_>>>()?;
        let t = &preset.train;
        let cfg = RAdamConfig { lr: t.lr, beta1: t.beta1, beta2: t.beta2, weight_decay: t.weight_decay, ..RAdamConfig::default() };
        let opt = RAdam::new(model.named_vars(), cfg)?;
        Ok(Trainer {
            preset: preset.clone(),
            model,
            emas,
            opt,
            source,
            noise_rng: crate::rng::stream(preset.seed, "noise"),
            dropout_rng: crate::rng::stream(preset.seed, "dropout"),
            step: 0,
            images_seen: 0,
            wall_before_s: 0.0,
            started: std::time::Instant::now(),
            shape: (c, h, w),
            device: device.clone(),
            feature_distance,
            skip_batch_at: Default::default(),
            readback: Readback::new(preset.train.readback_every),
        })
    }

    /// Optimiser steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    pub fn images_seen(&self) -> u64 {
        self.images_seen
    }

    pub fn kimg(&self) -> f64 {
        self.images_seen as f64 / 1000.0
    }

    pub fn wall_s(&self) -> f64 {
        self.wall_before_s + self.started.elapsed().as_secs_f64()
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        self.opt.lr()
    }

    /// The online weights.
    pub fn model(&self) -> &Denoiser {
        &self.model
    }

    /// The default EMA profile's weights (what samples and evaluations during training use).
    pub fn ema(&self) -> &Denoiser {
        &self.emas[0].1
    }

    /// Every EMA profile with its weights, the default first.
    pub fn emas(&self) -> &[(EmaProfile, Denoiser)] {
        &self.emas
    }

    /// The training data (probes draw their fixed batch from a fresh copy of it).
    pub fn source(&self) -> &DataSource {
        &self.source
    }

    /// Image shape (C, H, W).
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    pub fn stage(&self) -> u64 {
        match self.preset.train.mode {
            Mode::Edm => 0,
            Mode::Ect => schedule::ect_stage(self.step, self.preset.train.iterations, self.preset.ect.n_stages),
        }
    }

    pub fn done(&self) -> bool {
        self.step >= self.preset.train.iterations
    }

    /// Passes over the batch step `step` would draw (the data source moves one batch further):
    /// a rollback from a non-finite step does not meet the same batch again.
    pub fn skip_batch_at(&mut self, step: u64) {
        self.skip_batch_at.insert(step);
    }

    /// One optimiser step, its loss and gradient norm read and checked before it returns: a NaN
    /// or an infinity is `Error::NonFinite`. With `train.readback_every = 1` that is before any
    /// weight changes; with N > 1 this flushes what is queued (see [`Trainer::advance`]).
    pub fn step(&mut self) -> Result<StepStats> {
        if let Some(stats) = self.advance()? {
            return Ok(stats);
        }
        let mut checked = self.flush()?;
        match (checked.failed, checked.steps.pop()) {
            (Some(e), _) => Err(e),
            (None, Some(stats)) => Ok(stats),
            (None, None) => Err(Error::msg("internal: a queued step was not read back")),
        }
    }

    /// One optimiser step. With `train.readback_every = 1` it reads the loss (before backward)
    /// and the gradient norm (after it), two host reads, and a NaN or an infinity in either is
    /// `Error::NonFinite` before any weight changes; it returns the step's report. With N > 1 it
    /// reads nothing: both stay queued on the device, the weights are updated, and it returns
    /// `None`; [`Trainer::flush`] reads and checks them (the engine does every N steps, see
    /// [`Trainer::flush_due`], and before anything reads the weights or writes the log).
    pub fn advance(&mut self) -> Result<Option<StepStats>> {
        let b = self.preset.train.batch_size;
        let stage = self.stage();
        if self.skip_batch_at.remove(&(self.step + 1)) {
            self.source.next_batch(b);
        }
        let batch = self.source.next_batch(b);
        let (c, h, w) = self.shape;
        let x0 = Tensor::from_vec(batch.x, (b, c, h, w), &self.device)?;
        let eps = Tensor::from_vec(crate::rng::normal_vec(&mut self.noise_rng, b * c * h * w), (b, c, h, w), &self.device)?;
        let input = StepInput { model: &self.model, x0: &x0, eps: &eps, ctx: Ctx::train(self.dropout_rng.next_u64()) };
        // the forward passes under train.precision (bf16's casts are on the graph)
        let objective = crate::nn::precision::with_compute(self.preset.train.precision, || match self.preset.train.mode {
            Mode::Edm => edm::objective(&input, &self.preset.edm, &self.preset.sampling, &mut self.noise_rng),
            Mode::Ect => {
                let distance = self.feature_distance.as_deref();
                ect::objective(&input, &self.preset, stage, self.step, distance, &mut self.noise_rng)
            }
        })?;
        let step = self.step + 1;
        let immediate = self.readback.immediate();
        // N > 1: the loss is filled in when the queue is read back
        let loss = if immediate { readback::finite(step, "loss", self.readback.scalar(&objective.value)?)? } else { f64::NAN };
        // TF32 on CUDA is cuBLAS's mode: the backward's GEMMs need it on too
        let grads = crate::nn::precision::with_compute(self.preset.train.precision, || objective.loss.backward())?;
        let sq_norm = sq_grad_norm(&grads, &self.model, &self.device)?;
        if immediate {
            readback::finite(step, "gradient norm", self.readback.scalar(&sq_norm)?.sqrt())?;
        }
        self.opt.step(&grads)?;
        self.update_emas(b)?;
        self.step += 1;
        self.images_seen += b as u64;
        let (images_seen, lr, wall_s) = (self.images_seen, self.opt.lr(), self.wall_s());
        let stats = StepStats { step, loss, stage, mean_gap: objective.mean_gap, images_seen, lr, wall_s };
        if immediate {
            return Ok(Some(stats));
        }
        self.readback.push(stats, objective.value, sq_norm);
        Ok(None)
    }

    /// Reads the queued steps' losses and gradient norms in one host transfer and checks them:
    /// the finite steps in order, then the first non-finite one, if any (the weights already
    /// carry it and the steps after it: roll back). Nothing queued: no read.
    pub fn flush(&mut self) -> Result<Checked> {
        self.readback.flush()
    }

    /// Whether `train.readback_every` steps are queued.
    pub fn flush_due(&self) -> bool {
        self.readback.due()
    }

    /// Steps taken but not yet read back and checked.
    pub fn unchecked_steps(&self) -> usize {
        self.readback.pending()
    }

    /// Host reads the step path has made (loss, gradient norm, flushes).
    pub fn host_reads(&self) -> u64 {
        self.readback.reads()
    }

    /// `n` steps as the engine takes them: flushed every `train.readback_every` steps and at the
    /// end; the first non-finite step is an error.
    pub fn steps(&mut self, n: u64) -> Result<Vec<StepStats>> {
        let mut out = Vec::new();
        for i in 1..=n {
            match self.advance()? {
                Some(stats) => out.push(stats),
                None if self.flush_due() || i == n => {
                    let checked = self.flush()?;
                    out.extend(checked.steps);
                    if let Some(e) = checked.failed {
                        return Err(e);
                    }
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// Every profile's `ema = decay * ema + (1 - decay) * model` (its decay at the images seen
    /// before this step); the first step of a fresh run copies the weights instead.
    fn update_emas(&self, batch: usize) -> Result<()> {
        let vars: Vec<_> = self.model.named_vars().into_iter().map(|(_, v)| v).collect();
        for (profile, ema) in &self.emas {
            let ema_vars: Vec<_> = ema.named_vars().into_iter().map(|(_, v)| v).collect();
            if self.step == 0 && self.preset.train.init.is_none() {
                super::ema::copy_from(&ema_vars, &vars)?;
            } else {
                Ema::new(profile.decay_at(batch, self.images_seen))?.update(&ema_vars, &vars)?;
            }
        }
        Ok(())
    }

    fn state(&self) -> TrainState {
        TrainState {
            step: self.step,
            stage: self.stage(),
            images_seen: self.images_seen,
            wall_s: self.wall_s(),
            opt_steps: self.opt.step_count,
            noise_rng: self.noise_rng.clone(),
            dropout_rng: self.dropout_rng.clone(),
            source: self.source.state(),
            shape: self.shape,
        }
    }

    /// Writes `ckpt/step-<n>` (model, every EMA profile, optimiser moments, RNG and data state).
    /// Refused while steps are unchecked ([`Trainer::flush`] first): a checkpoint holds only
    /// weights whose every step was finite, so a rollback to it is to good weights.
    pub fn save_checkpoint(&self, run: &RunDir) -> Result<PathBuf> {
        let unchecked = self.unchecked_steps() as u64;
        if unchecked > 0 {
            let first = self.step + 1 - unchecked;
            return Err(Error::msg(format!(
                "internal: a checkpoint at step {} with steps {first}..={} not yet read back",
                self.step, self.step
            )));
        }
        let mut tensors = checkpoint::vars_to_named(&self.model.varmap, "model.")?;
        for (i, (profile, ema)) in self.emas.iter().enumerate() {
            tensors.extend(checkpoint::vars_to_named(&ema.varmap, &super::ema::tensor_prefix(&profile.name, i == 0))?);
        }
        tensors.extend(self.opt.state_tensors());
        checkpoint::save(run, self.step, &tensors, &self.state())
    }

    /// Restores everything a checkpoint holds, so the next steps equal an uninterrupted run's.
    /// Returns the EMA profiles the checkpoint has no weights of (written before they were added
    /// to the run's preset): each starts from the checkpoint's default EMA.
    pub fn restore(&mut self, run: &RunDir, step: u64) -> Result<Vec<String>> {
        let (tensors, state): (_, TrainState) = checkpoint::load(run, step)?;
        let file = run.tensors_path(step);
        let tensors = checkpoint::to_device(tensors, &self.device)?;
        checkpoint::load_into_varmap(&self.model.varmap, &tensors, "model.", &file)?;
        let mut absent = Vec::new();
        for (i, (profile, ema)) in self.emas.iter().enumerate() {
            let prefix = super::ema::tensor_prefix(&profile.name, i == 0);
            if i > 0 && !tensors.keys().any(|k| k.starts_with(&prefix)) {
                checkpoint::load_into_varmap(&ema.varmap, &tensors, "ema.", &file)?;
                absent.push(profile.name.clone());
            } else {
                checkpoint::load_into_varmap(&ema.varmap, &tensors, &prefix, &file)?;
            }
        }
        self.opt.load_state(&tensors, state.opt_steps)?;
        self.source.restore(&state.source)?;
        self.noise_rng = state.noise_rng;
        self.dropout_rng = state.dropout_rng;
        self.step = state.step;
        self.images_seen = state.images_seen;
        self.wall_before_s = state.wall_s;
        self.started = std::time::Instant::now();
        self.readback.discard();
        Ok(absent)
    }

    /// Initialises model and every EMA profile from another run's weights (its default EMA), e.g.
    /// ECT from an EDM run.
    pub fn init_from(&mut self, path: &Path) -> Result<()> {
        let file = RunDir::resolve_checkpoint(path)?;
        let tensors = checkpoint::to_device(checkpoint::load_tensors(&file)?, &self.device)?;
        let prefix = if tensors.keys().any(|k| k.starts_with("ema.")) { "ema." } else { "model." };
        checkpoint::load_into_varmap(&self.model.varmap, &tensors, prefix, &file)?;
        for (_, ema) in &self.emas {
            checkpoint::load_into_varmap(&ema.varmap, &tensors, prefix, &file)?;
        }
        Ok(())
    }

    /// Samples from fixed preview noise (stream "preview"), so grids are comparable across steps
    /// and drawing them does not disturb the run's own random streams.
    /// With the run's sampler: Heun for EDM runs, `log.sample_steps` consistency steps otherwise.
    pub fn preview(&self, use_ema: bool, n: usize) -> Result<Tensor> {
        let mut rng = crate::rng::stream(self.preset.seed, "preview");
        let model = if use_ema { self.ema() } else { &self.model };
        let sampler = crate::sample::Sampler::for_run(&self.preset, None, None)?;
        crate::sample::generate(model, n, self.shape, sampler, &self.preset.sampling, &mut rng)
    }
}

/// The squared L2 norm of the gradients of `model`'s parameters: a 0-d f64 tensor on `device`
/// (in f64, so a large but finite gradient does not overflow to infinity), read by no one here.
fn sq_grad_norm(grads: &candle_core::backprop::GradStore, model: &Denoiser, device: &Device) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for (_, v) in model.named_vars() {
        if let Some(g) = grads.get(v.as_tensor()) {
            let s = g.to_dtype(candle_core::DType::F64)?.sqr()?.sum_all()?;
            total = Some(match total {
                Some(t) => (t + s)?,
                None => s,
            });
        }
    }
    Ok(total.map_or_else(|| Tensor::zeros((), candle_core::DType::F64, device), Ok)?)
}

/// The losses of steps `at + 1 ..= steps` of `preset` on `device`, twice: uninterrupted, and
/// after a checkpoint at step `at` (written to `scratch`) restored into a fresh trainer. Steps
/// are taken as the engine takes them ([`Trainer::steps`]: read back every
/// `train.readback_every`). Bit-exact resume means the two are equal; the tests check it on each
/// device.
pub fn resume_replay(
    preset: &Preset,
    source: impl Fn() -> Result<DataSource>,
    device: &Device,
    (at, steps): (u64, u64),
    scratch: &RunDir,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let losses = |stats: Vec<StepStats>| stats.into_iter().filter(|s| s.step > at).map(|s| s.loss).collect::<Vec<f64>>();
    let uninterrupted = losses(Trainer::new(preset, source()?, None, device)?.steps(steps)?);
    let mut first = Trainer::new(preset, source()?, None, device)?;
    first.steps(at)?;
    first.save_checkpoint(scratch)?;
    drop(first);
    let mut resumed = Trainer::new(preset, source()?, None, device)?;
    resumed.restore(scratch, at)?;
    let replayed = losses(resumed.steps(steps - at)?);
    Ok((uninterrupted, replayed))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::disks::DisksConfig;

    pub fn tiny_preset(mode: &str, iterations: u64) -> Preset {
        let text = format!(
            r#"
name = "tiny"
seed = 3
[data]
dataset = "disks"
[data.disks]
size = 8
radius_min = 1.5
radius_max = 3.0
[model]
channels = [8, 16]
blocks_per_level = 1
emb_dim = 16
noise_freqs = 4
groups = 4
dropout = 0.1
[train]
mode = "{mode}"
batch_size = 8
iterations = {iterations}
lr = 2e-3
ema_decay = 0.9
[ect]
q = 2
n_stages = 2
"#
        );
        Preset::parse(&text, Path::new("tiny.toml"), &[]).unwrap()
    }

    fn trainer(p: &Preset) -> Trainer {
        let src = DataSource::disks(p.data.disks.clone(), p.seed).unwrap();
        Trainer::new(p, src, None, &Device::Cpu).unwrap()
    }

    #[test]
    fn resume_gives_the_same_losses_bit_for_bit() {
        let p = tiny_preset("ect", 8);
        let dir = tempfile::tempdir().unwrap();
        let source = || DataSource::disks(p.data.disks.clone(), p.seed);
        let (full, resumed) = resume_replay(&p, source, &Device::Cpu, (3, 6), &RunDir::new(dir.path())).unwrap();
        assert_eq!(full.len(), 3);
        assert_eq!(full, resumed, "resumed losses differ from the uninterrupted run");
        let mut c = trainer(&p);
        c.restore(&RunDir::new(dir.path()), 3).unwrap();
        for _ in 0..3 {
            c.step().unwrap();
        }
        assert_eq!(c.images_seen(), 6 * 8);
    }

    /// What a step reports, bit for bit (its wall time aside).
    fn bits(s: &StepStats) -> (u64, u64, u64, u64, u64, u64) {
        (s.step, s.loss.to_bits(), s.stage, s.mean_gap.to_bits(), s.images_seen, s.lr.to_bits())
    }

    fn weights(t: &Trainer) -> Vec<Vec<u32>> {
        let flat = |v: &candle_core::Var| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let all = t.model().named_vars().into_iter().chain(t.ema().named_vars());
        all.map(|(_, v)| flat(&v).into_iter().map(f32::to_bits).collect()).collect()
    }

    #[test]
    fn readback_every_4_reports_the_same_steps_bit_for_bit_in_2_reads_where_1_takes_16() {
        for mode in ["ect", "edm"] {
            let p = tiny_preset(mode, 8);
            let mut q = p.clone();
            q.train.readback_every = 4;
            let (mut every, mut batched) = (trainer(&p), trainer(&q));
            let (a, b) = (every.steps(8).unwrap(), batched.steps(8).unwrap());
            assert_eq!(a.iter().map(bits).collect::<Vec<_>>(), b.iter().map(bits).collect::<Vec<_>>(), "{mode}");
            assert_eq!(a.iter().map(|s| s.step).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
            assert!(a.iter().all(|s| s.loss.is_finite()), "{a:?}");
            assert_eq!(weights(&every), weights(&batched), "{mode}: the same weights");
            // 1: the loss and the gradient norm every step; 4: one read at steps 4 and 8
            assert_eq!((every.host_reads(), batched.host_reads()), (16, 2), "{mode}");
        }
        // a lone step() with N > 1 reads what it queued (one read), and an empty flush reads nothing
        let mut q = tiny_preset("ect", 8);
        q.train.readback_every = 4;
        let mut t = trainer(&q);
        assert_eq!(bits(&t.step().unwrap()), bits(&trainer(&tiny_preset("ect", 8)).step().unwrap()));
        assert!(t.flush().unwrap().steps.is_empty());
        assert_eq!(t.host_reads(), 1);
    }

    #[test]
    fn a_checkpoint_is_refused_while_steps_are_unchecked_and_resume_is_bit_exact_with_readback_every_4() {
        let mut p = tiny_preset("ect", 8);
        p.train.readback_every = 4;
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut t = trainer(&p);
        for _ in 0..3 {
            assert_eq!(t.advance().unwrap(), None);
        }
        assert_eq!((t.unchecked_steps(), t.host_reads()), (3, 0));
        let e = t.save_checkpoint(&run).unwrap_err().to_string();
        assert!(e.contains("steps 1..=3 not yet read back"), "{e}");
        assert_eq!(t.flush().unwrap().steps.len(), 3);
        t.save_checkpoint(&run).unwrap();
        let source = || DataSource::disks(p.data.disks.clone(), p.seed);
        let (full, resumed) = resume_replay(&p, source, &Device::Cpu, (3, 8), &RunDir::new(dir.path().join("r"))).unwrap();
        assert_eq!(full.len(), 5);
        assert_eq!(full, resumed, "resumed losses differ from the uninterrupted run");
    }

    #[test]
    fn a_passed_over_batch_is_the_next_one() {
        let p = tiny_preset("ect", 4);
        let (mut a, mut b) = (trainer(&p), trainer(&p));
        b.skip_batch_at(1);
        assert_ne!(a.step().unwrap().loss, b.step().unwrap().loss, "step 1 of b draws the second batch");
        let mut c = trainer(&p);
        c.skip_batch_at(3);
        assert_eq!(trainer(&p).step().unwrap().loss, c.step().unwrap().loss, "other steps are untouched");
    }

    #[test]
    fn same_seed_same_losses_different_seed_different() {
        let p = tiny_preset("edm", 4);
        let run = |p: &Preset| -> Vec<f64> {
            let mut t = trainer(p);
            (0..3).map(|_| t.step().unwrap().loss).collect()
        };
        assert_eq!(run(&p), run(&p));
        let mut q = p.clone();
        q.seed = 4;
        assert_ne!(run(&p), run(&q));
    }

    #[test]
    fn ect_stage_zero_with_q2_is_denoising_at_small_t() {
        // with q = 2 and stage 0, r = 0 wherever t < ~2.4, so the target there is x0 itself
        let e = crate::config::EctConfig { q: 2.0, ..Default::default() };
        assert_eq!(schedule::ect_r(0.5, 0, &e), 0.0);
        let _ = DisksConfig::default();
    }
}
