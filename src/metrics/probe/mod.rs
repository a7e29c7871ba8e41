//! Tangent alignment (method.md 9): at one model state and a fixed probe batch, the unit update
//! direction of each loss, and per sample its metrics:
//!
//! | metric | what | chance (random direction) |
//! |---|---|---|
//! | `toward` | `cos(u, x0 - D_t)`: toward this sample's own clean image | 0 |
//! | `rho` | `1 - ||U^T u||^2`, `U` the tangent space at `x0` (normal-energy fraction) | `1 - m/d` |
//! | `excess` | `(1 - rho) / (m/d)`: tangential energy in units of chance | 1 |
//! | `toward_manifold` | `cos(u, P(D_t) - D_t)`, `P` the nearest manifold point | 0 |
//! | `tangential` | `||U_P^T u||^2`, tangent space at `P(D_t)` | `m_P/d` |
//! | `normal_toward`, `normal_away` | `<u, unit(P - D_t)>^2` when positive / negative | `1/(2d)` each |
//! | `oscillation` | `cos(u, u_previous probe)` | 0 |
//!
//! Every metric is also measured on isotropic random directions (the pseudo-loss `chance`), and
//! its closed-form chance value is known ([`chance::expected`]).

use std::collections::BTreeMap;

use candle_core::{Tensor, D};

use super::hist::{Histogram, Summary};
use crate::config::Preset;
use crate::model::Denoiser;
use crate::model::FeatureDistance;
use crate::nn::Ctx;
use crate::train::loss::{column, to_f32};
use crate::train::tangent::unit_directions;
use crate::train::{ect, schedule};
use crate::Result;

mod batch;
pub mod chance;
pub mod geometry;

pub use batch::ProbeBatch;
pub use chance::CHANCE;
use geometry::{cosine, normal_energy, Split};

/// Named histograms of one probe with their summaries (`tangent/<loss>/<metric>[_t<k>]`).
pub type ProbeHists = Vec<(String, Histogram, Summary)>;

/// Noise-level ranges the histograms are split by.
pub const T_RANGES: [(f64, f64, &str); 4] =
    [(0.0, 0.1, "t<0.1"), (0.1, 1.0, "t0.1-1"), (1.0, 10.0, "t1-10"), (10.0, f64::INFINITY, "t>10")];

/// The metrics in display order.
pub const METRICS: [&str; 8] = ["toward", "rho", "excess", "toward_manifold", "tangential", "normal_toward", "normal_away", "oscillation"];

/// Metrics that need a tangent space from local PCA on image data (what `ayt probe --m` varies).
pub const LOCAL_PCA_METRICS: [&str; 6] = ["rho", "excess", "toward_manifold", "tangential", "normal_toward", "normal_away"];

/// The histogram range of `metric`; `excess` runs up to `d / m` (a direction inside the tangent
/// space) for the smallest tangent dimension `m_min` of the batch.
pub fn metric_range(metric: &str, d: usize, m_min: usize) -> (f64, f64) {
    match metric {
        "toward" | "toward_manifold" | "oscillation" => (-1.0, 1.0),
        "excess" => (0.0, d as f64 / m_min.max(1) as f64),
        _ => (0.0, 1.0),
    }
}

/// The unit update direction `u = -unit(g)` of each loss (and of `chance`) at one model state.
pub struct Directions {
    /// `D_t` per sample (flattened).
    pub d_t: Vec<Vec<f32>>,
    /// `x0 - D_t` per sample.
    pub to_data: Vec<Vec<f32>>,
    /// `(loss, [B][C*H*W])`, the losses in the order given, then `chance`.
    pub losses: Vec<(String, Vec<Vec<f32>>)>,
}

/// One loss's per-sample metrics at one probe, in [`METRICS`] order (`oscillation` only with a
/// previous probe).
#[derive(Clone, Debug)]
pub struct LossProbe {
    pub loss: String,
    /// Unit update directions [B, C*H*W], kept for the next oscillation.
    pub directions: Vec<Vec<f32>>,
    pub values: Vec<(&'static str, Vec<f64>)>,
}

impl LossProbe {
    pub fn metric(&self, name: &str) -> Option<&[f64]> {
        self.values.iter().find(|(m, _)| *m == name).map(|(_, v)| v.as_slice())
    }
}

/// A whole probe: per loss, and per sample the closed-form chance value of each metric.
pub struct Probe {
    pub losses: Vec<LossProbe>,
    pub expected: Vec<(&'static str, Vec<f64>)>,
    /// Values per image, and the smallest tangent dimension (for the `excess` range).
    pub dim: usize,
    pub m_min: usize,
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.flatten_from(1)?.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?)
}

/// The update directions of `model` (usually the online weights) for each named loss (`None`
/// is L2) and for `chance`: random directions from stream "probe-chance" of the run's seed,
/// a new draw at every step (so that their oscillation is chance too).
pub fn directions(
    model: &Denoiser,
    preset: &Preset,
    batch: &ProbeBatch,
    step: u64,
    losses: &[(String, Option<&dyn FeatureDistance>)],
) -> Result<Directions> {
    let n = batch.t.len();
    let stage = schedule::ect_stage(step, preset.train.iterations, preset.ect.n_stages);
    let r: Vec<f64> = batch.t.iter().map(|&t| schedule::ect_r(t, stage, &preset.ect)).collect();
    let dev = batch.x0.device();
    let x_t = (&batch.x0 + batch.eps.broadcast_mul(&column(&batch.t, dev)?)?)?;
    let d_t = model.forward(&x_t, &to_f32(&batch.t), &Ctx::eval())?.detach();
    let d_r = ect::target_at_r(model, &batch.x0, &batch.eps, &r, preset.sampling.sigma_min, &Ctx::eval())?;
    let mut out = Vec::new();
    for (name, dist) in losses {
        // u = -unit(g): for L2, g is along D_t - D_r
        let g_unit = match dist {
            None => {
                let diff = (&d_t - &d_r)?;
                let norm = diff.sqr()?.flatten_from(1)?.sum(D::Minus1)?.sqrt()?.maximum(1e-12)?;
                diff.broadcast_div(&norm.reshape((n, 1, 1, 1))?)?
            }
            Some(dist) => unit_directions(*dist, &d_t, &d_r)?,
        };
        out.push((name.clone(), rows(&g_unit.neg()?)?));
    }
    let mut rng = crate::rng::substream(preset.seed, "probe-chance", step);
    out.push((CHANCE.to_string(), chance::random_directions(&mut rng, n, batch.dim())));
    Ok(Directions { to_data: rows(&(&batch.x0 - &d_t)?)?, d_t: rows(&d_t)?, losses: out })
}

/// The metrics of `dirs` against the batch's geometry; `previous` holds each loss's directions
/// at the previous probe (for `oscillation`).
pub fn metrics(dirs: &Directions, batch: &ProbeBatch, previous: &BTreeMap<String, Vec<Vec<f32>>>) -> Probe {
    let d = batch.dim();
    let feet: Vec<_> = dirs.d_t.iter().enumerate().map(|(i, dt)| batch.manifold.foot(i, dt, &batch.bases[i])).collect();
    let losses = dirs
        .losses
        .iter()
        .map(|(name, us)| {
            let per = |f: &dyn Fn(usize, &[f32]) -> f64| us.iter().enumerate().map(|(i, u)| f(i, u)).collect::<Vec<f64>>();
            let splits: Vec<Split> =
                us.iter().enumerate().map(|(i, u)| feet[i].as_ref().map(|f| Split::of(u, &dirs.d_t[i], f)).unwrap_or(Split::NAN)).collect();
            let rho = per(&|i, u| normal_energy(&batch.bases[i], u));
            let excess = rho.iter().enumerate().map(|(i, r)| (1.0 - r) * d as f64 / batch.bases[i].len() as f64).collect();
            let mut values = vec![
                ("toward", per(&|i, u| cosine(u, &dirs.to_data[i]))),
                ("rho", rho),
                ("excess", excess),
                ("toward_manifold", splits.iter().map(|s| s.toward_manifold).collect()),
                ("tangential", splits.iter().map(|s| s.tangential).collect()),
                ("normal_toward", splits.iter().map(|s| s.normal_toward).collect()),
                ("normal_away", splits.iter().map(|s| s.normal_away).collect()),
            ];
            if let Some(prev) = previous.get(name) {
                values.push(("oscillation", per(&|i, u| prev.get(i).map(|p| cosine(u, p)).unwrap_or(f64::NAN))));
            }
            LossProbe { loss: name.clone(), directions: us.clone(), values }
        })
        .collect();
    let m: Vec<usize> = batch.bases.iter().map(|b| b.len()).collect();
    let m_foot: Vec<usize> = feet.iter().map(|f| f.as_ref().map_or(0, |f| f.basis.len())).collect();
    let expected = METRICS
        .iter()
        .map(|metric| {
            let v = (0..m.len())
                .map(|i| {
                    let known = if *metric == "tangential" { m_foot[i] > 0 } else { m[i] > 0 || !LOCAL_PCA_METRICS.contains(metric) };
                    if known {
                        chance::expected(metric, d, m[i], m_foot[i]).unwrap_or(f64::NAN)
                    } else {
                        f64::NAN
                    }
                })
                .collect();
            (*metric, v)
        })
        .collect();
    Probe { losses, expected, dim: d, m_min: m.iter().copied().filter(|&m| m > 0).min().unwrap_or(1) }
}

/// Probes `model` with each named loss (and `chance`): [`directions`], then [`metrics`].
pub fn probe(
    model: &Denoiser,
    preset: &Preset,
    batch: &ProbeBatch,
    step: u64,
    losses: &[(String, Option<&dyn FeatureDistance>)],
    previous: &BTreeMap<String, Vec<Vec<f32>>>,
) -> Result<Probe> {
    Ok(metrics(&directions(model, preset, batch, step, losses)?, batch, previous))
}

/// Indices of the samples whose `t` falls in range `k` of [`T_RANGES`] (`None`: all).
fn in_range(t: &[f64], k: Option<usize>) -> Vec<usize> {
    (0..t.len()).filter(|&i| k.is_none_or(|k| t[i] >= T_RANGES[k].0 && t[i] < T_RANGES[k].1)).collect()
}

/// `None` (all `t`), then each range of [`T_RANGES`].
fn all_then_each_range() -> impl Iterator<Item = Option<usize>> {
    std::iter::once(None).chain((0..T_RANGES.len()).map(Some))
}

fn suffix(k: Option<usize>) -> String {
    k.map(|k| format!("_t{k}")).unwrap_or_default()
}

/// A histogram name (or metric) split into what comes before its `_t<k>` suffix and the `t`
/// range index `k`; the name itself and `None` for one over all `t`.
pub fn split_t_range(name: &str) -> (&str, Option<usize>) {
    let parsed = name.rsplit_once("_t").and_then(|(head, k)| Some((head, k.parse::<usize>().ok().filter(|k| *k < T_RANGES.len())?)));
    match parsed {
        Some((head, k)) => (head, Some(k)),
        None => (name, None),
    }
}

/// The `t` range index of a histogram name (`..._t<k>`), `None` for one over all `t`.
pub fn t_range_of(name: &str) -> Option<usize> {
    split_t_range(name).1
}

/// Where a loss goes in tables and panels: MFD, LPIPS, L2, any other, then `chance`.
pub fn display_rank(loss: &str) -> usize {
    ["mfd", "lpips", "l2"].iter().position(|x| *x == loss).unwrap_or(if loss == CHANCE { 4 } else { 3 })
}

/// Histograms of one probe: `tangent/<loss>/<metric>` over all samples, and `..._t<k>` per `t`
/// range. Metrics without a finite value (no geometry, no previous probe) are left out.
pub fn histograms(probe: &Probe, t: &[f64], bins: usize) -> ProbeHists {
    let mut out = Vec::new();
    for p in &probe.losses {
        for (metric, values) in &p.values {
            if values.iter().all(|v| !v.is_finite()) {
                continue;
            }
            let (lo, hi) = metric_range(metric, probe.dim, probe.m_min);
            for k in all_then_each_range() {
                let sel: Vec<f64> = in_range(t, k).into_iter().map(|i| values[i]).collect();
                out.push((format!("tangent/{}/{metric}{}", p.loss, suffix(k)), Histogram::new(&sel, lo, hi, bins), Summary::of(&sel)));
            }
        }
    }
    out
}

/// The closed-form chance mean of each metric, over all samples and per `t` range, named like
/// the histograms of the `chance` pseudo-loss (`tangent/chance/<metric>[_t<k>]`).
pub fn expected_means(probe: &Probe, t: &[f64]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (metric, values) in &probe.expected {
        for k in all_then_each_range() {
            let sel: Vec<f64> = in_range(t, k).into_iter().map(|i| values[i]).filter(|v| v.is_finite()).collect();
            if !sel.is_empty() {
                out.insert(format!("tangent/{CHANCE}/{metric}{}", suffix(k)), sel.iter().sum::<f64>() / sel.len() as f64);
            }
        }
    }
    out
}

/// The histograms over all `t` regrouped for plotting: one panel per metric of `metrics` (in
/// that order), each with one `(loss, histogram)` per probed loss.
pub fn panels_by_metric(hists: &ProbeHists, metrics: &[&str]) -> Vec<Vec<(String, Histogram)>> {
    let mut panels = Vec::new();
    for metric in metrics {
        let series: Vec<(String, Histogram)> = hists
            .iter()
            .filter_map(|(n, h, _)| {
                let rest = n.strip_prefix("tangent/")?;
                let (loss, m) = rest.split_once('/')?;
                (m == *metric).then(|| (loss.to_string(), h.clone()))
            })
            .collect();
        if !series.is_empty() {
            panels.push(series);
        }
    }
    panels
}

#[cfg(test)]
mod tests;
