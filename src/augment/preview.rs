//! `ayt augment preview`: a grid of augmented images from a data set, with their labels.

use std::path::Path;
use std::sync::Arc;

use super::{AugmentConfig, Augmenter};
use crate::data::{mnist, Batch, DataSource, DatasetStore, DisksConfig};
use crate::error::{Error, Result};
use crate::image_io::{grid, to_u8, write_png};
use crate::rng;

/// `n` images of `dataset`: "disks" (the default disks, stream "data" of `seed`), "mnist" /
/// "mnist-test" (imported into `store` on first use), or any other name in `store` (a seeded
/// shuffle).
pub fn load_batch(store: &DatasetStore, dataset: &str, n: usize, seed: u64) -> Result<Batch> {
    let mut source = if dataset == "disks" {
        DataSource::disks(DisksConfig::default(), seed)?
    } else {
        mnist::ensure_if_builtin(store, dataset)?;
        DataSource::images(Arc::new(store.load(dataset)?), seed)?
    };
    Ok(source.next_batch(n))
}

/// NCHW in [-1, 1] to NHWC bytes.
fn to_nhwc_u8(x: &[f32], b: usize, c: usize, h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; b * h * w * c];
    for i in 0..b {
        for ch in 0..c {
            for p in 0..h * w {
                out[(i * h * w + p) * c + ch] = to_u8(x[(i * c + ch) * h * w + p]);
            }
        }
    }
    out
}

/// Augment `batch` (all groups, probability `p`, no ramp, generator stream "augment" of
/// `seed`), write the augmented images as a PNG grid (`ceil(sqrt n)` columns) to `out`, and
/// return each image's non-zero labels as `(name, value)`.
pub fn preview(batch: &Batch, p: f32, seed: u64, out: &Path) -> Result<Vec<Vec<(String, f32)>>> {
    let (b, c, h, w) = (batch.b, batch.c, batch.h, batch.w);
    if b == 0 {
        return Err(Error::msg("augment preview: no images"));
    }
    let aug = Augmenter::new(AugmentConfig { p, n_rampup: 0, ..Default::default() }, c)?;
    let (x, labels) = aug.apply(&batch.x, b, c, h, w, 0, &mut rng::stream(seed, "augment"));
    let cols = (b as f64).sqrt().ceil().max(1.0) as usize;
    let (gw, gh, pixels) = grid(&to_nhwc_u8(&x, b, c, h, w), b, h, w, c, cols, 1);
    write_png(out, gw, gh, c, &pixels)?;
    let names = aug.label_names();
    let k = aug.n_labels();
    Ok((0..b)
        .map(|i| names.iter().zip(&labels[i * k..(i + 1) * k]).filter(|(_, &v)| v != 0.0).map(|(n, &v)| (n.clone(), v)).collect())
        .collect())
}
