//! Deterministic, resumable batch streams.
//!
//! - Images: each epoch visits every image exactly once, in the order of a Fisher-Yates shuffle
//!   drawn from `rng::substream(seed, "data", epoch)`; a batch that runs past the end of an
//!   epoch continues with the next epoch's order.
//! - Disks: parameters drawn from one ChaCha8 stream (`rng::stream(seed, "data")`).
//!
//! [`DataSource::state`] is a small serialisable value; [`DataSource::restore`] puts a source
//! back exactly where it was, so a resumed run sees the same batches as an uninterrupted one.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::disks::{render, sample_params, DiskParams, DisksConfig};
use super::ImageSet;
use crate::error::{Error, Result};
use crate::rng;

/// One batch: images NCHW in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub x: Vec<f32>,
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub labels: Option<Vec<i64>>,
    /// The parameters of each image, for disk batches (the ground-truth manifold point).
    pub disks: Option<Vec<DiskParams>>,
}

/// Where a source stands, for checkpoints.
///
/// Externally tagged on purpose: an internally tagged enum buffers its content, and serde's
/// buffer cannot hold the `u128` word position inside `ChaCha8Rng`.
// One value per run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// The disks generator itself.
    Disks { rng: ChaCha8Rng },
    /// Epoch and position within it (the permutation is recomputed from the seed); `n` guards
    /// against restoring onto a different data set.
    Images { seed: u64, epoch: u64, pos: usize, n: usize },
}

/// An endless stream of batches.
#[allow(clippy::large_enum_variant)] // one per run
#[derive(Clone, Debug)]
pub enum DataSource {
    Disks { cfg: DisksConfig, rng: ChaCha8Rng },
    Images { set: Arc<ImageSet>, seed: u64, epoch: u64, pos: usize, perm: Vec<usize> },
}

fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut rng::substream(seed, "data", epoch));
    perm
}

impl DataSource {
    /// Disk images drawn from `rng::stream(seed, "data")`; the config is validated.
    pub fn disks(cfg: DisksConfig, seed: u64) -> Result<DataSource> {
        cfg.validate()?;
        Ok(DataSource::Disks { cfg, rng: rng::stream(seed, "data") })
    }

    /// Shuffled epochs over `set` (which must hold at least one image).
    pub fn images(set: Arc<ImageSet>, seed: u64) -> Result<DataSource> {
        if set.n == 0 || set.image_len() == 0 {
            return Err(Error::msg(format!("data set {:?} holds no images", set.source)));
        }
        let perm = permutation(set.n, seed, 0);
        Ok(DataSource::Images { set, seed, epoch: 0, pos: 0, perm })
    }

    /// The same data with its own randomness (e.g. a fixed probe batch that must not disturb
    /// the training order): disks drawn from `rng`, or images in an order seeded from it.
    pub fn fresh(&self, mut rng: ChaCha8Rng) -> Result<DataSource> {
        use rand::RngCore;
        match self {
            DataSource::Disks { cfg, .. } => Ok(DataSource::Disks { cfg: cfg.clone(), rng }),
            DataSource::Images { set, .. } => DataSource::images(set.clone(), rng.next_u64()),
        }
    }

    /// All images of an image source, flattened in [-1, 1] (`None` for the endless disks).
    pub fn all_images_f32(&self) -> Option<Vec<f32>> {
        match self {
            DataSource::Disks { .. } => None,
            DataSource::Images { set, .. } => Some(set.batch_f32_nchw(&(0..set.n).collect::<Vec<_>>())),
        }
    }

    /// `(c, h, w)` of the images this source yields.
    pub fn shape(&self) -> (usize, usize, usize) {
        match self {
            DataSource::Disks { cfg, .. } => (1, cfg.size, cfg.size),
            DataSource::Images { set, .. } => (set.c, set.h, set.w),
        }
    }

    /// The next `b` images.
    pub fn next_batch(&mut self, b: usize) -> Batch {
        let (c, h, w) = self.shape();
        match self {
            DataSource::Disks { cfg, rng } => {
                let mut x = Vec::with_capacity(b * h * w);
                let mut params = Vec::with_capacity(b);
                for _ in 0..b {
                    let p = sample_params(cfg, rng);
                    x.extend(render(cfg, &p));
                    params.push(p);
                }
                Batch { x, b, c, h, w, labels: None, disks: Some(params) }
            }
            DataSource::Images { set, seed, epoch, pos, perm } => {
                let mut idx = Vec::with_capacity(b);
                while idx.len() < b {
                    if *pos >= perm.len() {
                        *epoch += 1;
                        *pos = 0;
                        *perm = permutation(set.n, *seed, *epoch);
                    }
                    let take = (b - idx.len()).min(perm.len() - *pos);
                    idx.extend_from_slice(&perm[*pos..*pos + take]);
                    *pos += take;
                }
                let labels = set.labels.as_ref().map(|l| idx.iter().map(|&i| l[i]).collect());
                Batch { x: set.batch_f32_nchw(&idx), b, c, h, w, labels, disks: None }
            }
        }
    }

    /// The current position, for checkpoints.
    pub fn state(&self) -> SourceState {
        match self {
            DataSource::Disks { rng, .. } => SourceState::Disks { rng: rng.clone() },
            DataSource::Images { set, seed, epoch, pos, .. } => SourceState::Images { seed: *seed, epoch: *epoch, pos: *pos, n: set.n },
        }
    }

    /// Return to a position saved by [`DataSource::state`].
    pub fn restore(&mut self, state: &SourceState) -> Result<()> {
        match (self, state) {
            (DataSource::Disks { rng, .. }, SourceState::Disks { rng: saved }) => {
                *rng = saved.clone();
                Ok(())
            }
            (DataSource::Images { set, seed, epoch, pos, perm }, SourceState::Images { seed: s, epoch: e, pos: p, n }) => {
                if *n != set.n || *p > set.n {
                    return Err(Error::msg(format!("data state is for {n} images at position {p}, but the data set has {}", set.n)));
                }
                if *e != *epoch || *s != *seed {
                    *perm = permutation(set.n, *s, *e);
                }
                (*seed, *epoch, *pos) = (*s, *e, *p);
                Ok(())
            }
            (DataSource::Disks { .. }, SourceState::Images { .. }) => {
                Err(Error::msg("data state is for an image data set, but the source is disks"))
            }
            (DataSource::Images { .. }, SourceState::Disks { .. }) => {
                Err(Error::msg("data state is for disks, but the source is an image data set"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> Arc<ImageSet> {
        // image i is filled with the value i, label i % 3
        let images: Vec<u8> = (0..n).flat_map(|i| vec![i as u8; 2 * 2]).collect();
        let labels = Some((0..n as i64).map(|i| i % 3).collect());
        Arc::new(ImageSet::new(images, (n, 2, 2, 1), labels, "t").unwrap())
    }

    /// Which images a batch holds (each image is constant = its index).
    fn ids(b: &Batch) -> Vec<usize> {
        b.x.chunks(4).map(|c| ((c[0] + 1.0) * 127.5).round() as usize).collect()
    }

    #[test]
    fn each_image_once_per_epoch_and_wraps() {
        let mut src = DataSource::images(set(10), 1).unwrap();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let b = src.next_batch(4); // 20 = two epochs
            assert_eq!((b.b, b.c, b.h, b.w, b.x.len()), (4, 1, 2, 2, 16));
            let l = b.labels.clone().unwrap();
            assert_eq!(l, ids(&b).iter().map(|&i| i as i64 % 3).collect::<Vec<_>>());
            seen.extend(ids(&b));
        }
        for epoch in seen.chunks(10) {
            let mut e = epoch.to_vec();
            e.sort();
            assert_eq!(e, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(seen[..10], seen[10..], "epochs are reshuffled");
    }

    #[test]
    fn seeds_agree_and_differ() {
        let take = |seed| {
            let mut s = DataSource::images(set(50), seed).unwrap();
            (0..3).map(|_| ids(&s.next_batch(7))).collect::<Vec<_>>()
        };
        assert_eq!(take(3), take(3));
        assert_ne!(take(3), take(4));
        let disks = |seed| {
            let mut s = DataSource::disks(DisksConfig::default(), seed).unwrap();
            s.next_batch(3)
        };
        assert_eq!(disks(3), disks(3));
        assert_ne!(disks(3), disks(4));
    }

    #[test]
    fn restored_source_continues_identically() {
        let sources = [DataSource::images(set(10), 9).unwrap(), DataSource::disks(DisksConfig::default(), 9).unwrap()];
        for mut a in sources {
            let fresh = a.clone();
            let _ = a.next_batch(7);
            let _ = a.next_batch(6); // crosses an epoch boundary for images
            let json = serde_json::to_string(&a.state()).unwrap();
            let state: SourceState = serde_json::from_str(&json).unwrap();
            let mut b = fresh;
            b.restore(&state).unwrap();
            for _ in 0..4 {
                assert_eq!(a.next_batch(5), b.next_batch(5));
            }
        }
        let mut img = DataSource::images(set(10), 9).unwrap();
        let disk_state = DataSource::disks(DisksConfig::default(), 1).unwrap().state();
        assert!(img.restore(&disk_state).is_err());
        let other = DataSource::images(set(11), 9).unwrap().state();
        assert!(img.restore(&other).is_err());
    }

    #[test]
    fn disk_batches_carry_params() {
        let mut s = DataSource::disks(DisksConfig::default(), 0).unwrap();
        let b = s.next_batch(2);
        assert_eq!((b.b, b.c, b.h, b.w, b.x.len()), (2, 1, 16, 16, 512));
        let p = b.disks.unwrap();
        assert_eq!(b.x[..256], render(&DisksConfig::default(), &p[0])[..]);
        assert!(DataSource::images(Arc::new(ImageSet::new(vec![], (0, 2, 2, 1), None, "e").unwrap()), 0).is_err());
    }
}
