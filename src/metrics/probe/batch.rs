//! The fixed probe batch of a run: clean images, shared noise, stratified noise levels, and the
//! data geometry at each image (tangent basis, and where the manifold is).

use candle_core::{Device, Tensor};

use super::geometry::Manifold;
use super::T_RANGES;
use crate::config::{Preset, ProbeConfig};
use crate::data::batch::DataSource;
use crate::data::disks;
use crate::metrics::pca_cache::{self, LocalPca, PcaKey};
use crate::paths::Paths;
use crate::Result;

/// A fixed probe batch: clean images, shared noise, noise levels, a tangent basis per image and
/// the manifold model.
pub struct ProbeBatch {
    pub x0: Tensor,
    pub eps: Tensor,
    pub t: Vec<f64>,
    pub bases: Vec<Vec<Vec<f32>>>,
    pub manifold: Manifold,
}

impl ProbeBatch {
    /// Draws the batch from stream "probe" of the run's seed. `t` is stratified: equal shares
    /// log-uniform in each of the four ranges (clipped to [sigma_min, sigma_max]), so every range
    /// has samples. `training_images` (flattened, in [-1, 1]) feed local PCA on image data;
    /// with `cache` (the home folder and the data set's checksum) its neighbours and bases are
    /// read from, or written to, the local-PCA cache. The same preset and seed give the same
    /// images, noise and `t` whatever `cfg.k` and `cfg.m` (what `ayt probe --m` compares).
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
        let (bases, manifold) = match (&batch.disks, training_images) {
            (Some(params), _) => {
                let cfg = match source {
                    DataSource::Disks { cfg, .. } => cfg.clone(),
                    _ => preset.data.disks.clone(),
                };
                (params.iter().map(|p| disks::tangent_basis(&cfg, p)).collect(), Manifold::Disks(cfg))
            }
            (None, Some(train)) => {
                let compute = || pca_cache::compute(train, &batch.x, d, cfg.k, cfg.m);
                let pca = match cache {
                    Some((paths, sha)) => {
                        let key = PcaKey { dataset_sha256: sha.to_string(), probe_seed: preset.seed, k: cfg.k, m: cfg.m };
                        pca_cache::load_or_compute(paths, &key, &batch.x, d, compute)?.0
                    }
                    None => compute(),
                };
                let origins = neighbour_means(&pca, train, d);
                (pca.bases, Manifold::Planes(origins))
            }
            (None, None) => (vec![Vec::new(); n], Manifold::Unknown),
        };
        Ok(ProbeBatch {
            x0: Tensor::from_vec(batch.x, (n, c, h, w), device)?,
            eps: Tensor::from_vec(eps, (n, c, h, w), device)?,
            t,
            bases,
            manifold,
        })
    }

    /// Values per image (`C*H*W`).
    pub fn dim(&self) -> usize {
        self.x0.elem_count() / self.t.len().max(1)
    }
}

/// The mean of each probe image's neighbours: the origin of its local-PCA plane.
fn neighbour_means(pca: &LocalPca, train: &[f32], d: usize) -> Vec<Vec<f32>> {
    pca.neighbours
        .iter()
        .map(|idx| {
            let mut mean = vec![0f64; d];
            for &i in idx {
                mean.iter_mut().zip(&train[i * d..(i + 1) * d]).for_each(|(m, v)| *m += *v as f64);
            }
            let k = idx.len().max(1) as f64;
            mean.into_iter().map(|m| (m / k) as f32).collect()
        })
        .collect()
}
