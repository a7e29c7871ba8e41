//! Tangent alignment (method.md 9): at one model state and a fixed probe batch, the unit update
//! direction of each loss, and per sample its toward-data cosine, its normal-energy fraction
//! `rho = 1 - ||U^T u||^2`, and its oscillation against the previous probe.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, D};

use super::hist::{Histogram, Summary};
use super::pca_cache::PcaKey;
use crate::config::{Preset, ProbeConfig};
use crate::data::batch::DataSource;
use crate::data::disks;
use crate::model::Denoiser;
use crate::model::FeatureDistance;
use crate::nn::Ctx;
use crate::paths::Paths;
use crate::train::loss::{column, to_f32};
use crate::train::tangent::unit_directions;
use crate::train::{ect, schedule};
use crate::Result;

/// Named histograms of one probe with their summaries (`tangent/<loss>/<metric>[_t<k>]`).
pub type ProbeHists = Vec<(String, Histogram, Summary)>;

/// Noise-level ranges the histograms are split by.
pub const T_RANGES: [(f64, f64, &str); 4] =
    [(0.0, 0.1, "t<0.1"), (0.1, 1.0, "t0.1-1"), (1.0, 10.0, "t1-10"), (10.0, f64::INFINITY, "t>10")];

/// The metrics, with their histogram ranges.
pub const METRICS: [(&str, f64, f64); 3] = [("toward", -1.0, 1.0), ("rho", 0.0, 1.0), ("oscillation", -1.0, 1.0)];

/// A fixed probe batch: clean images, shared noise, noise levels, and a tangent basis per image.
pub struct ProbeBatch {
    pub x0: Tensor,
    pub eps: Tensor,
    pub t: Vec<f64>,
    pub bases: Vec<Vec<Vec<f32>>>,
}

impl ProbeBatch {
    /// Draws the batch from stream "probe" of the run's seed. `t` is stratified: equal shares
    /// log-uniform in each of the four ranges (clipped to [sigma_min, sigma_max]), so every range
    /// has samples. `training_images` (flattened, in [-1, 1]) feed local PCA on image data;
    /// with `cache` (the home folder and the data set's checksum) its neighbours and bases are
    /// read from, or written to, the local-PCA cache.
    pub fn new(
        preset: &Preset,
        source: &DataSource,
        training_images: Option<&[f32]>,
        cfg: &ProbeConfig,
        cache: Option<(&Paths, &str)>,
        device: &Device,
    ) -> Result<ProbeBatch> {
        use rand::Rng;
        let mut src = source.fresh(crate::rng::stream(preset.seed, "probe"))?;
        let n = cfg.n;
        let batch = src.next_batch(n);
        let (c, h, w) = (batch.c, batch.h, batch.w);
        let d = c * h * w;
        let mut rng = crate::rng::stream(preset.seed, "probe-noise");
        let eps = crate::rng::normal_vec(&mut rng, n * d);
        let s = &preset.sampling;
        let t: Vec<f64> = (0..n)
            .map(|i| {
                let (lo, hi, _) = T_RANGES[i % 4];
                let (lo, hi) = (lo.max(s.sigma_min), hi.min(s.sigma_max));
                (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp()
            })
            .collect();
        let bases = match (&batch.disks, training_images) {
            (Some(params), _) => {
                let cfg = match source {
                    DataSource::Disks { cfg, .. } => cfg.clone(),
                    _ => preset.data.disks.clone(),
                };
                params.iter().map(|p| disks::tangent_basis(&cfg, p)).collect()
            }
            (None, Some(train)) => {
                let compute = || super::pca_cache::compute(train, &batch.x, d, cfg.k, cfg.m);
                match cache {
                    Some((paths, sha)) => {
                        let key = PcaKey { dataset_sha256: sha.to_string(), probe_seed: preset.seed, k: cfg.k, m: cfg.m };
                        super::pca_cache::load_or_compute(paths, &key, &batch.x, d, compute)?.0.bases
                    }
                    None => compute().bases,
                }
            }
            (None, None) => vec![Vec::new(); n],
        };
        Ok(ProbeBatch { x0: Tensor::from_vec(batch.x, (n, c, h, w), device)?, eps: Tensor::from_vec(eps, (n, c, h, w), device)?, t, bases })
    }
}

/// One loss's per-sample metrics at one probe.
#[derive(Clone, Debug)]
pub struct LossProbe {
    pub loss: String,
    /// Unit update directions `u = -unit(g)` [B, C*H*W], kept for the next oscillation.
    pub directions: Vec<Vec<f32>>,
    pub toward: Vec<f64>,
    pub rho: Vec<f64>,
    pub oscillation: Option<Vec<f64>>,
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (na, nb) = (dot(a, a).sqrt(), dot(b, b).sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot(a, b) / (na * nb)
    }
}

/// `1 - ||U^T u||^2` for a unit `u` and orthonormal columns `U` (NaN without a basis).
pub fn normal_energy(basis: &[Vec<f32>], u: &[f32]) -> f64 {
    if basis.is_empty() {
        return f64::NAN;
    }
    let norm2 = dot(u, u);
    if norm2 == 0.0 {
        return f64::NAN;
    }
    1.0 - basis.iter().map(|b| dot(b, u).powi(2)).sum::<f64>() / norm2
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.flatten_from(1)?.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?)
}

/// Probes `model` (usually the online weights) with each named loss; `None` is L2.
pub fn probe(
    model: &Denoiser,
    preset: &Preset,
    batch: &ProbeBatch,
    step: u64,
    losses: &[(String, Option<&dyn FeatureDistance>)],
    previous: &BTreeMap<String, Vec<Vec<f32>>>,
) -> Result<Vec<LossProbe>> {
    let n = batch.t.len();
    let stage = schedule::ect_stage(step, preset.train.iterations, preset.ect.n_stages);
    let r: Vec<f64> = batch.t.iter().map(|&t| schedule::ect_r(t, stage, &preset.ect)).collect();
    let dev = batch.x0.device();
    let x_t = (&batch.x0 + batch.eps.broadcast_mul(&column(&batch.t, dev)?)?)?;
    let d_t = model.forward(&x_t, &to_f32(&batch.t), &Ctx::eval())?.detach();
    let d_r = ect::target_at_r(model, &batch.x0, &batch.eps, &r, preset.sampling.sigma_min, &Ctx::eval())?;
    let to_data = rows(&(&batch.x0 - &d_t)?)?;

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
        let directions = rows(&g_unit.neg()?)?;
        let toward = directions.iter().zip(&to_data).map(|(u, v)| cosine(u, v)).collect();
        let rho = directions.iter().zip(&batch.bases).map(|(u, b)| normal_energy(b, u)).collect();
        let oscillation = previous.get(name).map(|prev| directions.iter().zip(prev).map(|(u, p)| cosine(u, p)).collect());
        out.push(LossProbe { loss: name.clone(), directions, toward, rho, oscillation });
    }
    Ok(out)
}

/// Histograms of one probe: `tangent/<loss>/<metric>` over all samples, and `..._<range>` per `t` range.
pub fn histograms(probes: &[LossProbe], t: &[f64], bins: usize) -> ProbeHists {
    let mut out = Vec::new();
    for p in probes {
        for (metric, lo, hi) in METRICS {
            let values = match metric {
                "toward" => Some(&p.toward),
                "rho" => Some(&p.rho),
                _ => p.oscillation.as_ref(),
            };
            let Some(values) = values else { continue };
            if values.iter().all(|v| !v.is_finite()) {
                continue;
            }
            out.push((format!("tangent/{}/{metric}", p.loss), Histogram::new(values, lo, hi, bins), Summary::of(values)));
            for (k, (tlo, thi, _)) in T_RANGES.iter().enumerate() {
                let sel: Vec<f64> = values.iter().zip(t).filter(|(_, t)| **t >= *tlo && **t < *thi).map(|(v, _)| *v).collect();
                out.push((format!("tangent/{}/{metric}_t{k}", p.loss), Histogram::new(&sel, lo, hi, bins), Summary::of(&sel)));
            }
        }
    }
    out
}

/// The histograms over all `t` regrouped for plotting: one panel per metric (in [`METRICS`]
/// order), each with one `(loss, histogram)` per probed loss.
pub fn panels_by_metric(hists: &ProbeHists) -> Vec<Vec<(String, Histogram)>> {
    let mut panels = Vec::new();
    for (metric, _, _) in METRICS {
        let series: Vec<(String, Histogram)> = hists
            .iter()
            .filter_map(|(n, h, _)| {
                let rest = n.strip_prefix("tangent/")?;
                let (loss, m) = rest.split_once('/')?;
                (m == metric).then(|| (loss.to_string(), h.clone()))
            })
            .collect();
        if !series.is_empty() {
            panels.push(series);
        }
    }
    panels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::disks::{DiskParams, DisksConfig};

    #[test]
    fn rho_is_one_off_the_disks_tangent_space_and_zero_inside_it() {
        let cfg = DisksConfig::default();
        let p = DiskParams { cx: 8.0, cy: 7.5, radius: 3.5 };
        let basis = disks::tangent_basis(&cfg, &p);
        // inside: a combination of the basis vectors
        let inside: Vec<f32> = (0..basis[0].len()).map(|i| 0.6 * basis[0][i] - 0.8 * basis[2][i]).collect();
        assert!(normal_energy(&basis, &inside).abs() < 1e-6);
        // orthogonal: remove the projection from an arbitrary vector
        let mut v: Vec<f32> = (0..basis[0].len()).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let proj = disks::project(&basis, &v);
        for (x, p) in v.iter_mut().zip(&proj) {
            *x -= p;
        }
        assert!((normal_energy(&basis, &v) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn local_pca_bases_of_a_probe_batch_come_from_the_cache_the_second_time() {
        use rand::Rng;
        let home = tempfile::tempdir().unwrap();
        let paths = Paths { home: home.path().to_path_buf() };
        let mut rng = crate::rng::stream(0, "probe-cache-test");
        let images: Vec<u8> = (0..40 * 16).map(|_| rng.random::<u8>()).collect();
        let set = crate::data::ImageSet::new(images, (40, 4, 4, 1), None, "t").unwrap();
        let source = DataSource::images(std::sync::Arc::new(set), 0).unwrap();
        let train = source.all_images_f32().unwrap();
        let text = "name = \"t\"\n[data]\ndataset = \"x\"\n[train]\nmode = \"ect\"\nbatch_size = 4\niterations = 10\n";
        let preset = Preset::parse(text, std::path::Path::new("t.toml"), &[]).unwrap();
        let cfg = ProbeConfig { n: 8, k: 10, m: 3, ..ProbeConfig::default() };
        let cache = Some((&paths, "0123456789abcdef"));
        let a = ProbeBatch::new(&preset, &source, Some(&train), &cfg, cache, &Device::Cpu).unwrap();
        let files: Vec<_> = std::fs::read_dir(paths.cache()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(files, vec!["localpca-0123456789ab-seed0-n8-k10-m3.h5".to_string()]);
        let b = ProbeBatch::new(&preset, &source, Some(&train), &cfg, cache, &Device::Cpu).unwrap();
        let uncached = ProbeBatch::new(&preset, &source, Some(&train), &cfg, None, &Device::Cpu).unwrap();
        assert_eq!(a.bases.len(), 8);
        assert!(a.bases.iter().all(|u| u.len() == 3));
        assert_eq!(a.bases, b.bases);
        assert_eq!(a.bases, uncached.bases);
    }

    #[test]
    fn histograms_split_by_t_range() {
        let lp = LossProbe {
            loss: "l2".into(),
            directions: vec![],
            toward: vec![1.0, -1.0, 0.5, 0.2],
            rho: vec![0.1, 0.9, 0.5, 0.5],
            oscillation: None,
        };
        let h = histograms(&[lp], &[0.05, 0.5, 5.0, 50.0], 4);
        let names: Vec<&str> = h.iter().map(|(n, _, _)| n.as_str()).collect();
        assert!(names.contains(&"tangent/l2/toward") && names.contains(&"tangent/l2/rho_t3"));
        assert!(!names.iter().any(|n| n.contains("oscillation")), "no oscillation without a previous probe");
        let all = &h.iter().find(|(n, _, _)| n == "tangent/l2/toward").unwrap().1;
        assert_eq!(all.counts.iter().sum::<i64>(), 4);
        let t3 = &h.iter().find(|(n, _, _)| n == "tangent/l2/toward_t3").unwrap().1;
        assert_eq!(t3.counts.iter().sum::<i64>(), 1);
    }
}
