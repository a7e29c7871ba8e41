//! Periodic and on-demand tangent-alignment probes of a training run (method.md 9), and the
//! probe of a checkpoint on disk (`ayt probe`).

use std::collections::BTreeMap;

use candle_core::Device;

use super::losses::{self, NamedDistance};
use super::{Emitter, Event};
use crate::config::Preset;
use crate::metrics::probe::{self, ProbeBatch, ProbeHists};
use crate::model::FeatureDistance;
use crate::paths::{Paths, RunDir};
use crate::store::RunLogWriter;
use crate::train::{checkpoint, Trainer};
use crate::Result;

fn borrowed(losses: &[NamedDistance]) -> Vec<(String, Option<&dyn FeatureDistance>)> {
    losses.iter().map(|(n, d)| (n.clone(), d.as_deref())).collect()
}

/// Recomputes a probe on a run's checkpoint (`step`, or the latest), online weights, on
/// `device`. `mfd_features` adds (or replaces) the feature network MFD is probed with.
pub fn probe_checkpoint(
    paths: &Paths,
    run: &RunDir,
    step: Option<u64>,
    mfd_features: Option<&str>,
    device: &Device,
) -> Result<(u64, ProbeHists)> {
    let step = run.checkpoint_step(step)?;
    let (model, mut preset, _) = checkpoint::load_denoiser(run, Some(step), false, device)?;
    if let Some(f) = mfd_features {
        preset.mfd.features = f.to_string();
    }
    let data = preset.open_data(paths)?;
    let losses = losses::probe_distances(&preset, paths, &data.sha256, data.source.shape(), device)?;
    let train_images = data.source.all_images_f32();
    let cache = Some((paths, data.sha256.as_str()));
    let batch = ProbeBatch::new(&preset, &data.source, train_images.as_deref(), &preset.probe, cache, device)?;
    let probes = probe::probe(&model, &preset, &batch, step, &borrowed(&losses), &BTreeMap::new())?;
    Ok((step, probe::histograms(&probes, &batch.t, preset.probe.bins)))
}

/// A run's probes: the fixed batch (drawn at the first probe), the compared losses, and each
/// loss's previous directions (for the oscillation metric).
pub struct Prober {
    preset: Preset,
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
        let losses = losses::probe_distances(preset, paths, dataset_sha256, shape, device)?;
        Ok(Prober {
            preset: preset.clone(),
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
        let cfg = &self.preset.probe;
        if self.batch.is_none() {
            let train_images = trainer.source().all_images_f32();
            let cache = Some((&self.paths, self.dataset_sha256.as_str()));
            self.batch = Some(ProbeBatch::new(&self.preset, trainer.source(), train_images.as_deref(), cfg, cache, &self.device)?);
        }
        let Some(batch) = &self.batch else { return Ok(()) };
        let step = trainer.steps_done();
        let probes = probe::probe(trainer.model(), &self.preset, batch, step, &borrowed(&self.losses), &self.previous)?;
        let hists = probe::histograms(&probes, &batch.t, cfg.bins);
        let (kimg, wall) = (trainer.kimg(), trainer.wall_s());
        for (name, h, s) in &hists {
            writer.hist(name, step as i64, h.edges.clone(), h.counts.clone())?;
            if s.n > 0 {
                writer.scalar(&format!("{name}_mean"), step as i64, kimg, wall, s.mean)?;
            }
        }
        for p in probes {
            self.previous.insert(p.loss, p.directions);
        }
        emitter.emit(Event::Probe { step, hists });
        Ok(())
    }
}
