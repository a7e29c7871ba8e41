//! The standard FID as EDM, ECT and StyleGAN3 report it: NVIDIA's `inception-2015-12-05`
//! detector (`weights/fid/`, made by `scripts/fetch_fid_inception.py` and checked against the
//! SHA-256 compiled in), its 2048-d pool features of uint8 images, mean and covariance in
//! float64 (`sigma = (F^T F - n mu mu^T) / (n - 1)`, as EDM's `fid.py`), and the Frechet
//! distance of method.md 8. Reference statistics come from images or from an EDM `.npz`.

pub mod npz;
pub mod protocol;
pub mod source;

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::{Device, Tensor};
use nalgebra::{DMatrix, DVector};

use super::fd::Gaussian;
use crate::model::inception::{InceptionV3, Variant};
use crate::model::FeatureExtractor;
use crate::progress::Progress;
use crate::{Error, Result};
pub use source::Source;

#[cfg(test)]
mod tests;

/// The detector's file name in `weights/fid/`.
pub const DETECTOR_FILE: &str = "inception-2015-12-05.safetensors";
/// `sha256  name` of the detector file, compiled in.
const SHA256SUMS: &str = include_str!("../../../weights/fid/SHA256SUMS");
/// Images per detector forward.
const CHUNK: usize = 32;

/// Where the detector is looked for: `$AYT_WEIGHTS/fid/`, else the source tree's `weights/fid/`.
pub fn default_detector_path() -> PathBuf {
    crate::paths::shipped::weights_root().join("fid").join(DETECTOR_FILE)
}

/// The SHA-256 of the detector file, compiled in: what [`load_detector`] checks a file against.
pub fn detector_sha256() -> &'static str {
    crate::paths::shipped::sha256_listed(SHA256SUMS, DETECTOR_FILE).unwrap_or_default()
}

/// Loads the standard detector from `path`, which must be the converted file whose SHA-256 is
/// compiled in: any other network's features would not be FID.
pub fn load_detector(path: &Path, device: &Device) -> Result<InceptionV3> {
    if !path.is_file() {
        return Err(Error::file(
            path,
            "the FID detector is missing: scripts/fetch_fid_inception.py makes it (scripts/setup.sh runs it), or set AYT_WEIGHTS to a folder that holds fid/",
        ));
    }
    let got = super::refstats::file_sha256(path)?;
    let want = detector_sha256();
    if got != want {
        return Err(Error::file(
            path,
            format!("not the standard FID detector: SHA256 {got}, expected {want} (scripts/fetch_fid_inception.py remakes it)"),
        ));
    }
    let net = InceptionV3::load(path, device)?;
    if net.variant != Variant::Nvidia2015 {
        return Err(Error::file(path, "the weights are not NVIDIA's inception-2015-12-05 (metadata variant)"));
    }
    Ok(net)
}

/// Running sums of feature rows, for a mean and covariance without keeping every row.
pub struct Moments {
    n: usize,
    sum: DVector<f64>,
    gram: DMatrix<f64>,
}

impl Moments {
    pub fn new(d: usize) -> Moments {
        Moments { n: 0, sum: DVector::zeros(d), gram: DMatrix::zeros(d, d) }
    }

    /// Adds rows of `features` (row-major `[k, d]`).
    pub fn add(&mut self, features: &[f32]) {
        let d = self.sum.len();
        let k = features.len() / d;
        let x = DMatrix::from_row_iterator(k, d, features.iter().map(|&v| v as f64));
        self.gram += x.transpose() * &x;
        for row in x.row_iter() {
            self.sum += row.transpose();
        }
        self.n += k;
    }

    /// Mean and unbiased covariance.
    pub fn gaussian(&self) -> Result<Gaussian> {
        if self.n < 2 {
            return Err(Error::msg(format!("FID: need at least 2 images, got {}", self.n)));
        }
        let n = self.n as f64;
        let mean = &self.sum / n;
        let cov = (&self.gram - (&mean * mean.transpose()) * n) / (n - 1.0);
        Ok(Gaussian { mean, cov, n: self.n })
    }
}

/// Features of `images` (the first `limit`) through `detector`, as statistics, with a progress
/// bar (lines when piped) labelled `label`.
pub fn image_statistics(
    mut images: source::Images,
    detector: &dyn FeatureExtractor,
    limit: Option<usize>,
    device: &Device,
    label: &str,
) -> Result<Gaussian> {
    let total = limit.map_or(images.len(), |l| l.min(images.len()));
    let mut moments = Moments::new(crate::model::inception::FEATURE_DIM);
    let mut progress = Progress::new(label, 0, total as u64, Duration::from_secs(30));
    for start in (0..total).step_by(CHUNK) {
        let len = CHUNK.min(total - start);
        let (pixels, (c, h, w)) = images.chunk(start, len)?;
        let x = Tensor::from_vec(pixels, (len, c, h, w), device)?;
        let (f, _) = detector.features_of(&x)?;
        moments.add(&f);
        progress.update((start + len) as u64, total as u64, "images");
    }
    progress.finish();
    moments.gaussian()
}
