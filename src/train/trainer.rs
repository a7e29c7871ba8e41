//! One training run's state and its step: EDM pre-training or ECT consistency training.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::tangent::{self, FeatureDistance};
use super::{checkpoint, loss, schedule, Ema, RAdam, RAdamConfig};
use crate::config::{LossKind, Mode, Preset};
use crate::data::batch::{DataSource, SourceState};
use crate::model::lpips::Lpips;
use crate::model::Denoiser;
use crate::nn::Ctx;
use crate::{Error, Result};

/// Everything besides tensors that a checkpoint needs for a bit-exact resume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub step: u64,
    pub stage: u64,
    pub images_seen: u64,
    pub wall_s: f64,
    pub opt_steps: u64,
    pub noise_rng: ChaCha8Rng,
    pub dropout_rng: ChaCha8Rng,
    pub source: SourceState,
    /// Image shape (C, H, W) the model was built for.
    pub shape: (usize, usize, usize),
}

/// What one step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The step just completed (1-based: the number of optimiser steps taken).
    pub step: u64,
    pub loss: f64,
    pub stage: u64,
    /// Mean `t - r` over the batch (ECT), or 0 (EDM).
    pub mean_gap: f64,
}

pub struct Trainer {
    pub preset: Preset,
    pub model: Denoiser,
    pub ema: Denoiser,
    pub opt: RAdam,
    ema_update: Ema,
    pub source: DataSource,
    noise_rng: ChaCha8Rng,
    dropout_rng: ChaCha8Rng,
    pub step: u64,
    pub images_seen: u64,
    /// Training seconds before the current process (accumulated across resumes).
    pub wall_before_s: f64,
    started: std::time::Instant,
    pub shape: (usize, usize, usize),
    device: Device,
    /// The frozen network of a feature-space loss (MFD), set by `set_feature_distance`.
    feature_distance: Option<Box<dyn FeatureDistance>>,
}

impl Trainer {
    pub fn new(preset: &Preset, source: DataSource, device: &Device) -> Result<Self> {
        let (c, h, w) = source.shape();
        preset.model.check_image_size(h.min(w)).map_err(Error::msg)?;
        let sd = preset.sampling.sigma_data;
        let model = Denoiser::new(&preset.model, c, sd, preset.seed, device)?;
        let ema = Denoiser::new(&preset.model, c, sd, preset.seed, device)?;
        let t = &preset.train;
        let cfg = RAdamConfig { lr: t.lr, beta1: t.beta1, beta2: t.beta2, weight_decay: t.weight_decay, ..RAdamConfig::default() };
        let opt = RAdam::new(model.named_vars(), cfg)?;
        let feature_loss: Option<Box<dyn FeatureDistance>> = match (preset.train.mode, preset.train.loss) {
            (Mode::Ect, LossKind::Lpips) => {
                preset.lpips.check_image_size(h, w).map_err(Error::msg)?;
                Some(Box::new(Lpips::from_config(&preset.lpips, candle_core::DType::F32, device)?))
            }
            _ => None,
        };
        Ok(Trainer {
            preset: preset.clone(),
            model,
            ema,
            opt,
            ema_update: Ema::new(t.ema_decay)?,
            source,
            noise_rng: crate::rng::stream(preset.seed, "noise"),
            dropout_rng: crate::rng::stream(preset.seed, "dropout"),
            step: 0,
            images_seen: 0,
            wall_before_s: 0.0,
            started: std::time::Instant::now(),
            shape: (c, h, w),
            device: device.clone(),
            feature_distance: feature_loss,
        })
    }

    /// The frozen distance a feature-space loss (`train.loss = "mfd"`) differentiates through.
    pub fn set_feature_distance(&mut self, d: Box<dyn FeatureDistance>) {
        self.feature_distance = Some(d);
    }

    pub fn kimg(&self) -> f64 {
        self.images_seen as f64 / 1000.0
    }

    pub fn wall_s(&self) -> f64 {
        self.wall_before_s + self.started.elapsed().as_secs_f64()
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

    /// One optimiser step.
    pub fn step(&mut self) -> Result<StepStats> {
        let b = self.preset.train.batch_size;
        let stage = self.stage();
        let batch = self.source.next_batch(b);
        let (c, h, w) = self.shape;
        let x0 = Tensor::from_vec(batch.x, (b, c, h, w), &self.device)?;
        let eps = Tensor::from_vec(crate::rng::normal_vec(&mut self.noise_rng, b * c * h * w), (b, c, h, w), &self.device)?;
        let s = &self.preset.sampling;
        let ((loss, loss_value), mean_gap) = match self.preset.train.mode {
            Mode::Edm => {
                let e = &self.preset.edm;
                let t: Vec<f64> = (0..b).map(|_| schedule::lognormal(&mut self.noise_rng, e.p_mean, e.p_std)).collect();
                let lambda: Vec<f32> = t.iter().map(|&t| schedule::edm_weight(t, s.sigma_data) as f32).collect();
                let ctx = Ctx::train(self.dropout_rng.next_u64());
                let x_t = (&x0 + eps.broadcast_mul(&column(&t, &self.device)?)?)?;
                let d = self.model.forward(&x_t, &to_f32(&t), &ctx)?;
                let l = loss::edm(&d, &x0, &Tensor::from_vec(lambda, b, &self.device)?)?;
                let v = l.to_scalar::<f32>()? as f64;
                ((l, v), 0.0)
            }
            Mode::Ect => {
                let e = &self.preset.ect;
                let t: Vec<f64> =
                    (0..b).map(|_| schedule::lognormal(&mut self.noise_rng, e.p_mean, e.p_std).clamp(s.sigma_min, s.sigma_max)).collect();
                let r: Vec<f64> = t.iter().map(|&t| schedule::ect_r(t, stage, e)).collect();
                let ctx = Ctx::train(self.dropout_rng.next_u64());
                let x_t = (&x0 + eps.broadcast_mul(&column(&t, &self.device)?)?)?;
                let d_t = self.model.forward(&x_t, &to_f32(&t), &ctx)?;
                let d_r = self.target_at_r(&x0, &eps, &r, &ctx)?;
                let weight: Vec<f32> = t.iter().zip(&r).map(|(t, r)| (1.0 / (t - r)) as f32).collect();
                let huber_c = match self.preset.train.loss {
                    LossKind::L2 | LossKind::Lpips => 0.0,
                    // the pixel term of a hybrid MFD loss is pseudo-Huber too
                    LossKind::PseudoHuber | LossKind::Mfd => self.preset.train.c_mult * ((c * h * w) as f64).sqrt(),
                };
                let gap = t.iter().zip(&r).map(|(t, r)| t - r).sum::<f64>() / b as f64;
                let weight = Tensor::from_vec(weight, b, &self.device)?;
                (self.ect_loss(&d_t, &d_r, &weight, huber_c)?, gap)
            }
        };
        if !loss_value.is_finite() {
            return Err(Error::msg(format!("step {}: the loss is {loss_value}; lower train.lr or check the data", self.step + 1)));
        }
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        let vars: Vec<_> = self.model.named_vars().into_iter().map(|(_, v)| v).collect();
        let ema_vars: Vec<_> = self.ema.named_vars().into_iter().map(|(_, v)| v).collect();
        if self.step == 0 && self.preset.train.init.is_none() {
            super::ema::copy_from(&ema_vars, &vars)?;
        } else {
            self.ema_update.update(&ema_vars, &vars)?;
        }
        self.step += 1;
        self.images_seen += b as u64;
        Ok(StepStats { step: self.step, loss: loss_value, stage, mean_gap })
    }

    /// The ECT loss on `(D_t, D_r)` with per-sample weights `w = 1 / (t - r)`: the tensor to
    /// differentiate, and the value to report (they differ for the normalised-tangent form).
    fn ect_loss(&self, d_t: &Tensor, d_r: &Tensor, w: &Tensor, huber_c: f64) -> Result<(Tensor, f64)> {
        let value = |t: &Tensor| -> Result<f64> { Ok(t.to_scalar::<f32>()? as f64) };
        match self.preset.train.loss {
            LossKind::L2 | LossKind::PseudoHuber => {
                let l = loss::consistency(d_t, d_r, w, huber_c)?;
                let v = value(&l)?;
                Ok((l, v))
            }
            LossKind::Lpips => {
                let dist = self.feature_distance.as_deref().ok_or_else(|| Error::msg("train.loss = \"lpips\" but LPIPS was not loaded"))?;
                let tl = tangent::tangent_loss(dist, d_t, d_r, w)?;
                let reported = value(&tl.weighted_distance)?;
                Ok((tl.surrogate, reported))
            }
            LossKind::Mfd => {
                let dist =
                    self.feature_distance.as_deref().ok_or_else(|| Error::msg("train.loss = \"mfd\" but no feature network was loaded"))?;
                let tl = tangent::tangent_loss(dist, d_t, d_r, w)?;
                let reported = value(&tl.weighted_distance)?;
                match self.preset.mfd.lambda {
                    None => Ok((tl.surrogate, reported)),
                    Some(lambda) => {
                        let ramp = match self.preset.mfd.n_rampup {
                            0 => 1.0,
                            n => ((self.step + 1) as f64 / n as f64).min(1.0),
                        };
                        let pixel = loss::consistency(d_t, d_r, w, huber_c)?;
                        let pixel_value = value(&pixel)?;
                        Ok(((pixel + (tl.surrogate * (lambda * ramp))?)?, pixel_value + lambda * ramp * reported))
                    }
                }
            }
        }
    }

    /// `stopgrad(D(x0 + r eps, r))`, and `x0` where `r <= 0`; the pass uses the same dropout mask.
    fn target_at_r(&self, x0: &Tensor, eps: &Tensor, r: &[f64], ctx: &Ctx) -> Result<Tensor> {
        if r.iter().all(|&r| r <= 0.0) {
            return Ok(x0.clone());
        }
        let sigma_min = self.preset.sampling.sigma_min;
        let r_eval: Vec<f64> = r.iter().map(|&r| r.max(sigma_min)).collect();
        let x_r = (x0 + eps.broadcast_mul(&column(r, &self.device)?)?)?;
        let d_r = self.model.forward(&x_r, &to_f32(&r_eval), ctx)?.detach();
        let keep: Vec<f64> = r.iter().map(|&r| if r > 0.0 { 1.0 } else { 0.0 }).collect();
        let keep = column(&keep, &self.device)?;
        Ok((d_r.broadcast_mul(&keep)? + x0.broadcast_mul(&(1.0 - keep)?)?)?)
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

    /// Writes `ckpt/step-<n>` (model, EMA, optimiser moments, RNG and data state).
    pub fn save_checkpoint(&self, run_dir: &Path) -> Result<PathBuf> {
        let mut tensors = checkpoint::vars_to_named(&self.model.varmap, "model.")?;
        tensors.extend(checkpoint::vars_to_named(&self.ema.varmap, "ema.")?);
        tensors.extend(self.opt.state_tensors());
        checkpoint::save(run_dir, self.step, &tensors, &self.state())
    }

    /// Restores everything a checkpoint holds, so the next steps equal an uninterrupted run's.
    pub fn restore(&mut self, run_dir: &Path, step: u64) -> Result<()> {
        let (tensors, state): (_, TrainState) = checkpoint::load(run_dir, step)?;
        let file = checkpoint::tensors_path(run_dir, step);
        let tensors = to_device(tensors, &self.device)?;
        checkpoint::load_into_varmap(&self.model.varmap, &tensors, "model.", &file)?;
        checkpoint::load_into_varmap(&self.ema.varmap, &tensors, "ema.", &file)?;
        self.opt.load_state(&tensors, state.opt_steps)?;
        self.source.restore(&state.source)?;
        self.noise_rng = state.noise_rng;
        self.dropout_rng = state.dropout_rng;
        self.step = state.step;
        self.images_seen = state.images_seen;
        self.wall_before_s = state.wall_s;
        self.started = std::time::Instant::now();
        Ok(())
    }

    /// Initialises model and EMA from another run's weights (its EMA), e.g. ECT from an EDM run.
    pub fn init_from(&mut self, path: &Path) -> Result<()> {
        let file = resolve_checkpoint(path)?;
        let tensors = to_device(checkpoint::load_tensors(&file)?, &self.device)?;
        let prefix = if tensors.keys().any(|k| k.starts_with("ema.")) { "ema." } else { "model." };
        checkpoint::load_into_varmap(&self.model.varmap, &tensors, prefix, &file)?;
        checkpoint::load_into_varmap(&self.ema.varmap, &tensors, prefix, &file)?;
        Ok(())
    }

    /// Samples from fixed preview noise (stream "preview"), so grids are comparable across steps
    /// and drawing them does not disturb the run's own random streams.
    pub fn preview(&self, use_ema: bool, n: usize, steps: usize) -> Result<Tensor> {
        let mut rng = crate::rng::stream(self.preset.seed, "preview");
        let model = if use_ema { &self.ema } else { &self.model };
        crate::sample::generate(model, n, self.shape, steps, &self.preset.sampling, &mut rng)
    }
}

/// A run folder (its latest checkpoint) or a `.safetensors` file.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let step =
            checkpoint::latest(path)?.ok_or_else(|| Error::file(path, "no checkpoint in this run folder (ckpt/step-<n>.safetensors)"))?;
        Ok(checkpoint::tensors_path(path, step))
    } else if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(Error::file(path, "no such checkpoint file or run folder"))
    }
}

fn to_device(tensors: std::collections::HashMap<String, Tensor>, device: &Device) -> Result<std::collections::HashMap<String, Tensor>> {
    tensors.into_iter().map(|(k, v)| Ok((k, v.to_device(device)?))).collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// A [B,1,1,1] column from per-sample values.
fn column(v: &[f64], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_vec(to_f32(v), (v.len(), 1, 1, 1), device)
}

#[cfg(test)]
mod tests {
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
        Trainer::new(p, src, &Device::Cpu).unwrap()
    }

    #[test]
    fn resume_gives_the_same_losses_bit_for_bit() {
        let p = tiny_preset("ect", 8);
        let mut a = trainer(&p);
        let full: Vec<f64> = (0..6).map(|_| a.step().unwrap().loss).collect();

        let dir = tempfile::tempdir().unwrap();
        let mut b = trainer(&p);
        for _ in 0..3 {
            b.step().unwrap();
        }
        b.save_checkpoint(dir.path()).unwrap();
        drop(b);
        let mut c = trainer(&p);
        c.restore(dir.path(), 3).unwrap();
        let resumed: Vec<f64> = (0..3).map(|_| c.step().unwrap().loss).collect();
        assert_eq!(&full[3..], &resumed[..], "resumed losses differ from the uninterrupted run");
        assert_eq!(c.images_seen, 6 * 8);
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
    fn ect_with_the_lpips_loss_trains_and_resumes_bit_for_bit() {
        let mut p = tiny_preset("ect", 4);
        p.data.disks.size = 16;
        p.train.loss = LossKind::Lpips;
        p.lpips = crate::model::lpips::LpipsConfig { net: crate::model::lpips::LpipsNet::Vgg, resize: 0 };
        let mut a = trainer(&p);
        let full: Vec<f64> = (0..3).map(|_| a.step().unwrap().loss).collect();
        assert!(full.iter().all(|l| l.is_finite()), "{full:?}");
        let dir = tempfile::tempdir().unwrap();
        let mut b = trainer(&p);
        b.step().unwrap();
        b.save_checkpoint(dir.path()).unwrap();
        let mut c = trainer(&p);
        c.restore(dir.path(), 1).unwrap();
        let resumed: Vec<f64> = (0..2).map(|_| c.step().unwrap().loss).collect();
        assert_eq!(&full[1..], &resumed[..]);
        // AlexNet on 16x16 images without a resize is refused, naming the key
        p.lpips.net = crate::model::lpips::LpipsNet::Alex;
        let src = DataSource::disks(p.data.disks.clone(), p.seed).unwrap();
        let e = Trainer::new(&p, src, &Device::Cpu).err().unwrap().to_string();
        assert!(e.contains("lpips.resize"), "{e}");
    }

    #[test]
    fn ect_stage_zero_with_q2_is_denoising_at_small_t() {
        // with q = 2 and stage 0, r = 0 wherever t < ~2.4, so the target there is x0 itself
        let e = crate::config::EctConfig { q: 2.0, ..Default::default() };
        assert_eq!(schedule::ect_r(0.5, 0, &e), 0.0);
        let _ = DisksConfig::default();
    }
}
