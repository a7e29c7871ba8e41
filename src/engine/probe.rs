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

/// The panels of a probe PNG, top to bottom: (metric, what it measures).
pub const PNG_METRICS: [(&str, &str); 3] =
    [("toward", "toward-data cosine"), ("rho", "normal-energy fraction rho"), ("toward_manifold", "toward-manifold cosine")];

/// Writes the probe figure to `path` (PNG, and SVG beside it): per metric of [`PNG_METRICS`]
/// each loss's histogram over all `t`, random directions among them, and the chance value's
/// closed form dashed.
pub fn write_probe_figure(hists: &probe::ProbeHists, expected: &BTreeMap<String, f64>, title: &str, path: &std::path::Path) -> Result<()> {
    let panels: Vec<crate::plot::HistPanel> = PNG_METRICS
        .iter()
        .filter_map(|(m, what)| {
            let series = probe::panels_by_metric(hists, &[m]).pop()?;
            let reference = expected.get(&format!("tangent/{}/{m}", probe::CHANCE)).copied();
            Some(crate::plot::HistPanel { title: what.to_string(), x_label: m.to_string(), series, reference })
        })
        .collect();
    crate::plot::overlaid_histograms(title, &panels, path)
}

fn borrowed(losses: &[NamedDistance]) -> Vec<(String, Option<&dyn FeatureDistance>)> {
    losses.iter().map(|(n, d)| (n.clone(), d.as_deref())).collect()
}

/// A probe of a checkpoint on disk: the histograms at the preset's `k`, `m`, the closed-form
/// chance means (named like the `chance` histograms) and, per extra `(k, m)`, the local-PCA
/// metrics' histograms again (the same directions, another tangent space).
pub struct CheckpointProbe {
    pub step: u64,
    pub hists: ProbeHists,
    pub expected: BTreeMap<String, f64>,
    /// Values per image and the preset's `(k, m)`, or `None` when the tangent space is exact.
    pub dim: usize,
    pub local_pca: Option<(usize, usize)>,
    pub sensitivity: Vec<LocalPcaProbe>,
}

/// The probe's histograms and chance means under another local-PCA `(K, m)`.
pub struct LocalPcaProbe {
    pub k: usize,
    pub m: usize,
    pub hists: ProbeHists,
    pub expected: BTreeMap<String, f64>,
}

/// Recomputes a probe on a run's checkpoint (`step`, or the latest), online weights, on
/// `device`. `mfd_features` adds (or replaces) the feature network MFD is probed with; `grid`
/// lists further local-PCA `(k, m)` to compare (image data only).
pub fn probe_checkpoint(
    paths: &Paths,
    run: &RunDir,
    step: Option<u64>,
    mfd_features: Option<&str>,
    grid: &[(usize, usize)],
    device: &Device,
) -> Result<CheckpointProbe> {
    let step = run.checkpoint_step(step)?;
    let (model, mut preset, _) = checkpoint::load_denoiser(run, Some(step), checkpoint::Weights::Online, device)?;
    if let Some(f) = mfd_features {
        preset.mfd.features = f.to_string();
    }
    let data = preset.open_data(paths)?;
    let train_images = data.source.all_images_f32();
    if !grid.is_empty() && train_images.is_none() {
        return Err(crate::Error::msg(format!(
            "--k / --m set the local PCA of image data; {} has an exact tangent space (data set {})",
            run.path().display(),
            preset.data.dataset
        )));
    }
    let losses = losses::probe_distances(&preset, paths, &data.sha256, data.source.shape(), device)?;
    let cache = Some((paths, data.sha256.as_str()));
    let batch = ProbeBatch::new(&preset, &data.source, train_images.as_deref(), &preset.probe, cache, device)?;
    let dirs = probe::directions(&model, &preset, &batch, step, &borrowed(&losses))?;
    let result = probe::metrics(&dirs, &batch, &BTreeMap::new());
    let mut sensitivity = Vec::new();
    for &(k, m) in grid {
        let cfg = crate::config::ProbeConfig { k, m, ..preset.probe.clone() };
        let other = ProbeBatch::new(&preset, &data.source, train_images.as_deref(), &cfg, cache, device)?;
        let r = probe::metrics(&dirs, &other, &BTreeMap::new());
        sensitivity.push(LocalPcaProbe {
            k,
            m,
            hists: probe::histograms(&r, &other.t, preset.probe.bins),
            expected: probe::expected_means(&r, &other.t),
        });
    }
    Ok(CheckpointProbe {
        step,
        hists: probe::histograms(&result, &batch.t, preset.probe.bins),
        expected: probe::expected_means(&result, &batch.t),
        dim: batch.dim(),
        local_pca: train_images.is_some().then_some((preset.probe.k, preset.probe.m)),
        sensitivity,
    })
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
    /// Said once, at the first probe: why a loss is not probed.
    note: Option<String>,
}

impl Prober {
    /// The compared losses: L2, LPIPS and, when the preset names a phi, MFD. A run that does
    /// not train with MFD still runs when that phi is missing: it is probed without MFD and says
    /// why at the first probe.
    pub fn new(preset: &Preset, paths: &Paths, dataset_sha256: &str, shape: (usize, usize, usize), device: &Device) -> Result<Prober> {
        let (losses, note) = match losses::probe_distances(preset, paths, dataset_sha256, shape, device) {
            Err(e) if preset.train.loss != crate::config::LossKind::Mfd && !preset.mfd.features.trim().is_empty() => {
                let mut without = preset.clone();
                without.mfd.features.clear();
                let note = format!("probes compare L2 and LPIPS only: mfd.features = {:?} is not available ({e})", preset.mfd.features);
                (losses::probe_distances(&without, paths, dataset_sha256, shape, device)?, Some(note))
            }
            other => (other?, None),
        };
        Ok(Prober {
            preset: preset.clone(),
            batch: None,
            previous: BTreeMap::new(),
            losses,
            device: device.clone(),
            paths: paths.clone(),
            dataset_sha256: dataset_sha256.to_string(),
            note,
        })
    }

    /// Probes the online weights, logs histograms and means, draws them to `<run>/probe.png`
    /// (the latest probe), and emits them.
    pub fn run(&mut self, trainer: &Trainer, writer: &RunLogWriter, dir: &RunDir, emitter: &Emitter) -> Result<()> {
        if let Some(note) = self.note.take() {
            emitter.emit(Event::Log(format!("warning: {note}")));
        }
        let cfg = &self.preset.probe;
        if self.batch.is_none() {
            let train_images = trainer.source().all_images_f32();
            let cache = Some((&self.paths, self.dataset_sha256.as_str()));
            self.batch = Some(ProbeBatch::new(&self.preset, trainer.source(), train_images.as_deref(), cfg, cache, &self.device)?);
        }
        let Some(batch) = &self.batch else { return Ok(()) };
        let step = trainer.steps_done();
        let result = probe::probe(trainer.model(), &self.preset, batch, step, &borrowed(&self.losses), &self.previous)?;
        let hists = probe::histograms(&result, &batch.t, cfg.bins);
        let (kimg, wall) = (trainer.kimg(), trainer.wall_s());
        for (name, h, s) in &hists {
            writer.hist(name, step as i64, h.edges.clone(), h.counts.clone())?;
            if s.n > 0 {
                writer.scalar(&format!("{name}_mean"), step as i64, kimg, wall, s.mean)?;
            }
            // the interval over all t (per range it would triple the log for little use)
            if s.n > 0 && probe::t_range_of(name).is_none() {
                writer.scalar(&format!("{name}_lo95"), step as i64, kimg, wall, s.lo95)?;
                writer.scalar(&format!("{name}_hi95"), step as i64, kimg, wall, s.hi95)?;
            }
        }
        let expected = probe::expected_means(&result, &batch.t);
        for p in result.losses {
            self.previous.insert(p.loss, p.directions);
        }
        let title = format!("{}: tangent alignment at step {step} (all t)", self.preset.name);
        write_probe_figure(&hists, &expected, &title, &dir.probe_png())?;
        emitter.emit(Event::Probe { step, hists });
        Ok(())
    }
}
