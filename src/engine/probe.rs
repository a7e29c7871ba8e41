//! Periodic and on-demand tangent-alignment probes of a training run (method.md 9).

use std::collections::BTreeMap;

use candle_core::Device;

use super::{Emitter, Event};
use crate::config::Preset;
use crate::metrics::probe::{self, ProbeBatch, ProbeHists};

/// A probed loss: its name and its frozen distance (`None` for L2).
pub type NamedDistance = (String, Option<Box<dyn FeatureDistance>>);
use crate::paths::Paths;
use crate::store::RunLogWriter;
use crate::train::tangent::FeatureDistance;
use crate::train::Trainer;
use crate::Result;

/// The frozen distances of the losses to compare: L2 (`None`) and LPIPS always, MFD where the
/// preset names a feature network. `shape` is the images' (C, H, W).
pub fn probe_losses(
    preset: &Preset,
    paths: &Paths,
    dataset_sha256: &str,
    shape: (usize, usize, usize),
    device: &Device,
) -> Result<Vec<NamedDistance>> {
    let mut losses: Vec<NamedDistance> = vec![("l2".into(), None)];
    let m = &preset.mfd;
    if !m.features.trim().is_empty() {
        let phi = crate::features::load_phi(paths, &m.features, dataset_sha256, device)?.frozen();
        losses.push(("mfd".into(), Some(Box::new(crate::features::MfdDistance { phi, eps: m.eps }))));
    }
    // LPIPS with the run's [lpips] settings; images too small for the net are resized to 64.
    let (_, h, w) = shape;
    let mut cfg = preset.lpips.clone();
    if cfg.check_image_size(h, w).is_err() {
        cfg.resize = 64;
    }
    losses.push(("lpips".into(), Some(Box::new(crate::model::lpips::Lpips::from_config(&cfg, candle_core::DType::F32, device)?))));
    Ok(losses)
}

/// Recomputes a probe on a run's checkpoint (`step`, or the latest), online weights.
/// `mfd_features` adds (or replaces) the feature network MFD is probed with.
pub fn probe_checkpoint(
    paths: &Paths,
    run_dir: &std::path::Path,
    step: Option<u64>,
    mfd_features: Option<&str>,
) -> Result<(u64, ProbeHists)> {
    let step = match step {
        Some(s) => s,
        None => crate::train::latest(run_dir)?.ok_or_else(|| crate::Error::file(run_dir, "no checkpoint in this run folder"))?,
    };
    let (model, mut preset, _) = crate::sample::load_denoiser(run_dir, Some(step), false)?;
    if let Some(f) = mfd_features {
        preset.mfd.features = f.to_string();
    }
    let data = super::dataset::open(&preset, paths)?;
    let device = Device::Cpu;
    let losses = probe_losses(&preset, paths, &data.sha256, data.source.shape(), &device)?;
    let refs: Vec<(String, Option<&dyn FeatureDistance>)> = losses.iter().map(|(n, d)| (n.clone(), d.as_deref())).collect();
    let train_images = data.source.all_images_f32();
    let cache = Some((paths, data.sha256.as_str()));
    let batch = ProbeBatch::new(&preset, &data.source, train_images.as_deref(), &preset.probe, cache, &device)?;
    let probes = probe::probe(&model, &preset, &batch, step, &refs, &BTreeMap::new())?;
    Ok((step, probe::histograms(&probes, &batch.t, preset.probe.bins)))
}

/// The losses whose directions are compared: L2 always, MFD where the preset names a feature
/// network (whichever loss trains the run).
pub struct Prober {
    batch: Option<ProbeBatch>,
    previous: BTreeMap<String, Vec<Vec<f32>>>,
    losses: Vec<NamedDistance>,
    device: Device,
    /// For the local-PCA cache.
    paths: Paths,
    dataset_sha256: String,
}

impl Prober {
    pub fn new(preset: &Preset, paths: &Paths, dataset_sha256: &str, shape: (usize, usize, usize), device: &Device) -> Result<Prober> {
        let losses = probe_losses(preset, paths, dataset_sha256, shape, device)?;
        Ok(Prober {
            batch: None,
            previous: BTreeMap::new(),
            losses,
            device: device.clone(),
            paths: paths.clone(),
            dataset_sha256: dataset_sha256.to_string(),
        })
    }

    /// Probes the online weights, logs histograms and means, and emits them.
    pub fn run(&mut self, trainer: &Trainer, writer: &RunLogWriter, emitter: &Emitter) -> Result<()> {
        let cfg = &trainer.preset.probe;
        if self.batch.is_none() {
            let train_images = trainer.source.all_images_f32();
            let cache = Some((&self.paths, self.dataset_sha256.as_str()));
            self.batch = Some(ProbeBatch::new(&trainer.preset, &trainer.source, train_images.as_deref(), cfg, cache, &self.device)?);
        }
        let Some(batch) = &self.batch else { return Ok(()) };
        let losses: Vec<(String, Option<&dyn FeatureDistance>)> = self.losses.iter().map(|(n, d)| (n.clone(), d.as_deref())).collect();
        let probes = probe::probe(&trainer.model, &trainer.preset, batch, trainer.step, &losses, &self.previous)?;
        let hists = probe::histograms(&probes, &batch.t, cfg.bins);
        let (step, kimg, wall) = (trainer.step as i64, trainer.kimg(), trainer.wall_s());
        for (name, h, s) in &hists {
            writer.hist(name, step, h.edges.clone(), h.counts.clone())?;
            if s.n > 0 {
                writer.scalar(&format!("{name}_mean"), step, kimg, wall, s.mean)?;
            }
        }
        for p in probes {
            self.previous.insert(p.loss, p.directions);
        }
        emitter.emit(Event::Probe { step: trainer.step, hists });
        Ok(())
    }
}
