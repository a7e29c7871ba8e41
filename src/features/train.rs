//! Trains phi from scratch to regress the parameters of random augmentations (method.md 6):
//! MSE on the labels, RAdam. Logs to its own run folder, reports R^2 per label and per group on
//! held-out augmented images, and stores the network in the feature store.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};

use super::{store, FeaturesPreset};
use crate::augment::Augmenter;
use crate::data::batch::DataSource;
use crate::data::{open_data, DataConfig};
use crate::model::phi::Phi;
use crate::paths::{Paths, RunDir};
use crate::progress::Progress;
use crate::store::{Flushed, RunLogWriter, RunMeta};
use crate::train::{RAdam, RAdamConfig};
use crate::Result;

/// R^2 of one label or one group of labels.
#[derive(Clone, Debug, PartialEq)]
pub struct R2 {
    pub name: String,
    pub value: f64,
}

/// Phi's losses not yet read to the host. On a GPU a read waits for the device's queue, so the
/// loop keeps each step's loss there and reads those since the last read together, at log and
/// evaluation steps (one transfer each).
#[derive(Default)]
struct PendingLosses {
    first_step: u64,
    losses: Vec<Tensor>,
}

impl PendingLosses {
    fn push(&mut self, step: u64, loss: Tensor) {
        if self.losses.is_empty() {
            self.first_step = step;
        }
        self.losses.push(loss);
    }

    /// The last pending loss (`None`: nothing pending), or the first non-finite one as an error
    /// naming its step.
    fn read(&mut self) -> Result<Option<f64>> {
        if self.losses.is_empty() {
            return Ok(None);
        }
        let losses = std::mem::take(&mut self.losses);
        let values = crate::train::readback::read_together(&losses.iter().collect::<Vec<_>>())?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(crate::Error::msg(format!("step {}: the phi loss is {v}; lower train.lr", self.first_step + i as u64)));
        }
        Ok(values.last().copied())
    }
}

/// The latest network of a run with `train.eval_every`, in its run folder.
pub const SNAPSHOT_FILE: &str = "phi-snapshot.h5";

pub struct FeaturesOutcome {
    pub run_dir: PathBuf,
    pub phi_path: PathBuf,
    pub final_loss: f64,
    pub r2_labels: Vec<R2>,
    pub r2_groups: Vec<R2>,
    pub wall_s: f64,
}

/// `1 - SS_res / SS_tot` over the given columns of row-major `[n, L]` predictions and targets.
pub fn r_squared(pred: &[f32], target: &[f32], n_labels: usize, cols: std::ops::Range<usize>) -> f64 {
    let n = target.len() / n_labels.max(1);
    let (mut ss_res, mut ss_tot) = (0.0f64, 0.0f64);
    for col in cols {
        let mean = (0..n).map(|i| target[i * n_labels + col] as f64).sum::<f64>() / n.max(1) as f64;
        for i in 0..n {
            let t = target[i * n_labels + col] as f64;
            ss_res += (t - pred[i * n_labels + col] as f64).powi(2);
            ss_tot += (t - mean).powi(2);
        }
    }
    if ss_tot == 0.0 {
        f64::NAN
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// Held-out data: `holdout` from the store, `<dataset>-test` when it exists, or fresh disks.
fn holdout_source(preset: &FeaturesPreset, paths: &Paths) -> Result<DataSource> {
    let seed = preset.seed ^ 0x005e_ed0f_4e1d;
    let name = match &preset.holdout {
        Some(h) => h.clone(),
        None if preset.data.dataset == "disks" => "disks".into(),
        None => format!("{}-test", preset.data.dataset),
    };
    let data = DataConfig { dataset: name, disks: preset.data.disks.clone() };
    Ok(open_data(&data, seed, paths)?.source)
}

/// R^2 per label and per group of phi's predictions (inference mode: batch norm's running
/// statistics) on held-out images augmented at the full firing probability of training. The
/// images and their augmentations are the same at every call (fresh source and RNG), so values
/// from different steps of one run compare like for like.
fn heldout_r2(phi: &Phi, augmenter: &Augmenter, preset: &FeaturesPreset, paths: &Paths) -> Result<(Vec<R2>, Vec<R2>)> {
    let mut holdout = holdout_source(preset, paths)?;
    let (c, h, w) = holdout.shape();
    let n_labels = augmenter.n_labels();
    let mut eval_rng = crate::rng::stream(preset.seed, "augment-eval");
    let (mut preds, mut targets) = (Vec::new(), Vec::new());
    let mut remaining = preset.train.eval_images;
    while remaining > 0 {
        let n = remaining.min(256);
        let batch = holdout.next_batch(n);
        let (x, labels) = augmenter.apply(&batch.x, n, c, h, w, u64::MAX, &mut eval_rng);
        let x = Tensor::from_vec(x, (n, c, h, w), &phi.device())?;
        preds.extend(phi.predict(&x)?.flatten_all()?.to_vec1::<f32>()?);
        targets.extend(labels);
        remaining -= n;
    }
    let r2_labels = augmenter
        .label_names()
        .iter()
        .enumerate()
        .map(|(i, n)| R2 { name: n.clone(), value: r_squared(&preds, &targets, n_labels, i..i + 1) })
        .collect();
    let r2_groups =
        augmenter.label_groups().into_iter().map(|(g, r)| R2 { name: g, value: r_squared(&preds, &targets, n_labels, r) }).collect();
    Ok((r2_labels, r2_groups))
}

/// `geometric 0.678 color 0.899 ...`
pub fn format_r2(values: &[R2]) -> String {
    values.iter().map(|r| format!("{} {:.3}", r.name, r.value)).collect::<Vec<_>>().join("  ")
}

/// A new run folder for phi's training: its resolved preset (returned as TOML too) and an open log.
fn create_run(
    preset: &FeaturesPreset,
    paths: &Paths,
    out: Option<PathBuf>,
    (name, sha256): (&str, &str),
) -> Result<(RunDir, String, RunLogWriter)> {
    let run = out.map(RunDir::new).unwrap_or_else(|| RunDir::new_default(paths, &preset.name));
    if run.log_file().exists() {
        return Err(crate::Error::file(run.path(), "already holds a run; choose another --out"));
    }
    std::fs::create_dir_all(run.path())?;
    let toml = preset.to_toml();
    std::fs::write(run.preset_file(), &toml)?;
    let writer = RunLogWriter::create(run.log_file(), &RunMeta::new(&toml, preset.seed, name, sha256))?;
    Ok((run, toml, writer))
}

/// Logs R^2 per label and per group as `r2/<name>` at `step`.
fn log_r2(writer: &RunLogWriter, labels: &[R2], groups: &[R2], step: u64, kimg: f64, wall_s: f64) -> Result<()> {
    for r in labels.iter().chain(groups) {
        writer.scalar(&format!("r2/{}", r.name), step as i64, kimg, wall_s, r.value)?;
    }
    Ok(())
}

/// Trains phi (`preset`) in a run folder (`out`, else a new one under `<home>/runs`) and stores
/// it in the feature store.
pub fn train(preset: &FeaturesPreset, paths: &Paths, out: Option<PathBuf>, device: &Device) -> Result<FeaturesOutcome> {
    let started = Instant::now();
    let data = open_data(&preset.data, preset.seed, paths)?;
    let mut source = data.source;
    let (c, h, w) = source.shape();
    preset.phi.check_image_size(h.min(w)).map_err(crate::Error::msg)?;
    let augmenter = Augmenter::new(preset.augment.clone(), c)?;
    let n_labels = augmenter.n_labels();
    let phi = Phi::new(&preset.phi, c, n_labels, preset.seed, device)?;
    let init = preset.train.init.as_ref().map(|i| store::resolve_init(paths, i, &data.sha256)).transpose()?;
    if let Some(init) = &init {
        store::init_from_file(&phi, init, &augmenter.label_names())?;
    }
    let params = crate::model::precond::named_vars(&phi.varmap);
    let mut opt = RAdam::new(params, RAdamConfig { lr: preset.train.lr, ..RAdamConfig::default() })?;
    let mut rng = crate::rng::stream(preset.seed, "augment");

    let (run, toml, writer) = create_run(preset, paths, out, (&data.name, &data.sha256))?;
    let (b, total) = (preset.train.batch_size, preset.train.iterations);
    let mut progress = Progress::new(&preset.name, 0, total, Duration::from_secs(10));
    progress.println(format!(
        "training phi {} on {} ({n_labels} labels: {}) -> {}",
        preset.phi.describe(),
        data.name,
        augmenter.label_names().join(" "),
        run.path().display()
    ));
    if let Some(init) = &init {
        progress.println(format!("starting from the weights in {}", init.display()));
    }
    let (mut last_loss, mut pending) = (f64::NAN, PendingLosses::default());
    for it in 0..total {
        opt.set_lr(preset.train.lr_schedule.at(preset.train.lr, it, total));
        let batch = source.next_batch(b);
        let (x, labels) = augmenter.apply(&batch.x, b, c, h, w, it, &mut rng);
        let x = Tensor::from_vec(x, (b, c, h, w), device)?;
        let y = Tensor::from_vec(labels, (b, n_labels), device)?;
        let loss = (phi.predict_train(&x)? - y)?.sqr()?.mean_all()?;
        opt.step(&loss.backward()?)?;
        pending.push(it + 1, loss.detach());
        let step = it + 1;
        let kimg = (step * b as u64) as f64 / 1000.0;
        let (log_due, every) = (step % preset.train.log_every == 0 || step == 1 || step == total, preset.train.eval_every);
        let eval_due = every > 0 && step % every == 0 && step < total;
        if log_due || eval_due {
            last_loss = pending.read().inspect_err(|_| progress.abandon())?.unwrap_or(last_loss);
        }
        if log_due {
            writer.scalar("loss", step as i64, kimg, started.elapsed().as_secs_f64(), last_loss)?;
        }
        progress.update(step, total, &format!("loss {last_loss:.5}"));
        if eval_due {
            // A snapshot with its R^2: a long run stopped early still leaves a measured network.
            let (labels, groups) = heldout_r2(&phi, &augmenter, preset, paths)?;
            log_r2(&writer, &labels, &groups, step, kimg, started.elapsed().as_secs_f64())?;
            if let Flushed::Deferred(why) = writer.flush()? {
                progress.println(format!("warning: {why}"));
            }
            store::save_phi(&run.path().join(SNAPSHOT_FILE), &phi, &toml, &data.sha256, &augmenter.label_names())?;
            progress.println(format!("step {step}: held-out R^2 {}", format_r2(&groups)));
        }
    }
    progress.finish();

    let (r2_labels, r2_groups) = heldout_r2(&phi, &augmenter, preset, paths)?;
    log_r2(&writer, &r2_labels, &r2_groups, total, (total * b as u64) as f64 / 1000.0, started.elapsed().as_secs_f64())?;
    writer.close()?;

    let phi_path = store::phi_path(paths, &preset.name, &data.sha256);
    store::save_phi(&phi_path, &phi, &toml, &data.sha256, &augmenter.label_names())?;
    Ok(FeaturesOutcome {
        run_dir: run.path().to_path_buf(),
        phi_path,
        final_loss: last_loss,
        r2_labels,
        r2_groups,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_losses_are_read_together_and_name_the_first_non_finite_step() {
        let mut p = PendingLosses::default();
        assert_eq!(p.read().unwrap(), None);
        let t = |v: f32| Tensor::new(v, &Device::Cpu).unwrap();
        for (step, v) in [(11, 0.5), (12, 0.25)] {
            p.push(step, t(v));
        }
        assert_eq!(p.read().unwrap(), Some(0.25));
        for (step, v) in [(13, 0.5), (14, f32::NAN), (15, f32::INFINITY)] {
            p.push(step, t(v));
        }
        let e = p.read().unwrap_err().to_string();
        assert!(e.contains("step 14: the phi loss is NaN"), "{e}");
        assert_eq!(p.read().unwrap(), None, "a read empties the queue");
    }

    #[test]
    fn r_squared_values() {
        // perfect prediction: 1; predicting the mean: 0
        let t = [1.0f32, 2.0, 3.0, 4.0];
        assert_eq!(r_squared(&t, &t, 1, 0..1), 1.0);
        assert!((r_squared(&[2.5; 4], &t, 1, 0..1)).abs() < 1e-12);
        // two labels, the group pools both columns
        let pred = [1.0f32, 0.0, 2.0, 0.0];
        let target = [1.0f32, 1.0, 2.0, -1.0];
        assert_eq!(r_squared(&pred, &target, 2, 0..1), 1.0);
        assert!((r_squared(&pred, &target, 2, 0..2) - (1.0 - 2.0 / 2.5)).abs() < 1e-12);
    }

    #[test]
    fn a_few_steps_lower_the_loss_of_a_vgg16_bn_phi_and_move_its_running_statistics() {
        use crate::model::phi::{PhiArch, PhiConfig};
        let device = Device::Cpu;
        // four random 32x32 RGB images, every op of the 15 firing
        let augmenter = Augmenter::new(crate::augment::AugmentConfig { p: 1.0, ..Default::default() }, 3).unwrap();
        assert_eq!(augmenter.n_labels(), 15);
        let (b, c, s) = (4, 3, 32);
        let mut rng = crate::rng::stream(1, "images");
        let images: Vec<f32> = crate::rng::normal_vec(&mut rng, b * c * s * s).iter().map(|v| v.clamp(-1.0, 1.0)).collect();
        let (x, labels) = augmenter.apply(&images, b, c, s, s, u64::MAX, &mut crate::rng::stream(2, "augment"));
        let x = Tensor::from_vec(x, (b, c, s, s), &device).unwrap();
        let y = Tensor::from_vec(labels, (b, 15), &device).unwrap();

        let phi = Phi::new(&PhiConfig { arch: PhiArch::Vgg16Bn, ..PhiConfig::default() }, c, 15, 3, &device).unwrap();
        let params = crate::model::precond::named_vars(&phi.varmap);
        assert!(params.iter().all(|(n, _)| !n.contains("running")), "running statistics must not reach the optimizer");
        let mut opt = RAdam::new(params, RAdamConfig { lr: 1e-3, ..RAdamConfig::default() }).unwrap();
        let stats = || -> Vec<f32> { phi.buffer_vars().iter().flat_map(|(_, v)| v.as_tensor().to_vec1::<f32>().unwrap()).collect() };
        let start = stats();
        let mut losses = Vec::new();
        for _ in 0..6 {
            let loss = (phi.predict_train(&x).unwrap() - &y).unwrap().sqr().unwrap().mean_all().unwrap();
            losses.push(loss.to_scalar::<f32>().unwrap());
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let last = losses[losses.len() - 1];
        assert!(last < 0.25 * losses[0], "the loss did not fall: {losses:?}");
        let moved = stats();
        assert_eq!(moved.len(), start.len());
        assert!(moved.iter().zip(&start).filter(|(a, b)| a != b).count() > moved.len() * 9 / 10, "running statistics did not move");
    }
}
