//! Data: the in-memory image set, importers (MNIST IDX, PNG folders), the HDF5 dataset store,
//! the synthetic disks manifold and deterministic seeded batching.
//!
//! - [`idx`]: IDX (MNIST format) parsing, gzip or raw.
//! - [`mnist`]: the embedded MNIST files and their import into a store.
//! - [`store`]: `<root>/<name>.h5` files (`/images uint8[N,H,W,C]`, `/labels int64[N]`, attrs).
//! - [`png_import`]: a folder of PNG files (optionally one sub-folder per class).
//! - [`disks`]: soft-edged disk images with an analytic tangent space (method.md section 10).
//! - [`batch`]: seeded, resumable batch streams over an image set or the disks.

pub mod batch;
pub mod checker;
pub mod cifar;
pub mod disks;
pub mod edm_zip;
pub mod idx;
pub mod mnist;
pub mod open;
pub mod pickle;
pub mod png_import;
pub mod store;
mod store_read;

pub use batch::{Batch, DataSource, SourceState};
pub use disks::{DiskParams, DisksConfig};
pub use open::{open_data, DataConfig, OpenedData};
pub use store::{preview_png, DatasetInfo, DatasetStore};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A set of 8-bit images in memory, NHWC, with optional integer labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// `n * h * w * c` bytes, NHWC.
    pub images: Vec<u8>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    /// One label per image, when known.
    pub labels: Option<Vec<i64>>,
    /// Where the images came from (free text, e.g. "MNIST train (embedded)").
    pub source: String,
    /// Class names for labels `0..K-1`, when known (e.g. PNG folders with class sub-folders).
    pub class_names: Option<Vec<String>>,
}

impl ImageSet {
    /// A set from its parts; checks that the byte and label counts match the shape.
    pub fn new(
        images: Vec<u8>,
        (n, h, w, c): (usize, usize, usize, usize),
        labels: Option<Vec<i64>>,
        source: impl Into<String>,
    ) -> Result<ImageSet> {
        let want = n
            .checked_mul(h)
            .and_then(|v| v.checked_mul(w))
            .and_then(|v| v.checked_mul(c))
            .ok_or_else(|| Error::msg(format!("image set {n}x{h}x{w}x{c} is too large")))?;
        if images.len() != want {
            return Err(Error::msg(format!("image set {n}x{h}x{w}x{c} needs {want} bytes, got {}", images.len())));
        }
        if let Some(l) = &labels {
            if l.len() != n {
                return Err(Error::msg(format!("image set has {n} images but {} labels", l.len())));
            }
        }
        Ok(ImageSet { images, n, h, w, c, labels, source: source.into(), class_names: None })
    }

    /// Bytes per image (`h * w * c`).
    pub fn image_len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Hex SHA-256 of the image bytes (NHWC), the data set's identity.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.images))
    }

    /// Image `i` as `h * w * c` bytes (HWC). Panics if `i >= n`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// The images `idx` as f32 in [-1, 1] (`x / 127.5 - 1`), layout NCHW. Panics on an index
    /// `>= n`.
    pub fn batch_f32_nchw(&self, idx: &[usize]) -> Vec<f32> {
        let (h, w, c) = (self.h, self.w, self.c);
        let mut out = vec![0f32; idx.len() * c * h * w];
        for (b, &i) in idx.iter().enumerate() {
            let img = self.image(i);
            let dst = &mut out[b * c * h * w..(b + 1) * c * h * w];
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let v = img[(y * w + x) * c + ch];
                        dst[(ch * h + y) * w + x] = v as f32 / 127.5 - 1.0;
                    }
                }
            }
        }
        out
    }

    /// `(label, count)` sorted by label; empty when there are no labels.
    pub fn label_counts(&self) -> Vec<(i64, usize)> {
        self.labels.as_deref().map(label_counts).unwrap_or_default()
    }
}

/// `(label, count)` sorted by label.
pub fn label_counts(labels: &[i64]) -> Vec<(i64, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for &l in labels {
        *m.entry(l).or_insert(0usize) += 1;
    }
    m.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_set_accessors() {
        // 2 images, 1x2 pixels, 2 channels
        let set = ImageSet::new(vec![0, 255, 10, 20, 1, 2, 3, 4], (2, 1, 2, 2), Some(vec![3, 1]), "t").unwrap();
        assert_eq!(set.image(1), &[1, 2, 3, 4]);
        let x = set.batch_f32_nchw(&[0]);
        // NCHW: channel 0 = [0, 10], channel 1 = [255, 20]
        assert_eq!(x, vec![-1.0, 10.0 / 127.5 - 1.0, 1.0, 20.0 / 127.5 - 1.0]);
        assert_eq!(set.label_counts(), vec![(1, 1), (3, 1)]);
        assert_eq!(set.sha256().len(), 64);
        assert!(ImageSet::new(vec![0; 3], (1, 1, 2, 2), None, "t").is_err());
        assert!(ImageSet::new(vec![0; 4], (1, 1, 2, 2), Some(vec![1, 2]), "t").is_err());
    }
}
