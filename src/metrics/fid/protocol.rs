//! FID of a model's samples with the protocol the field reports (EDM's `fid.py`, ECT, AYT):
//! 50,000 samples by default from the EMA weights, sample `i` drawn from its own seed (so a
//! value names its seeds, and does not depend on the batch size), the standard detector, and
//! reference statistics of the whole training set (or EDM's `.npz`). Optionally several seed
//! ranges: the value is their minimum, as EDM's issue threads recommend reporting, with their
//! mean beside it.

use std::path::PathBuf;
use std::time::Duration;

use candle_core::{Device, Tensor};

use super::source::Images;
use super::{image_statistics, load_detector, npz, Moments, Source};
use crate::config::SamplingConfig;
use crate::metrics::evaluator::EvalValue;
use crate::metrics::fd::{frechet_distance_to, FdReference, Gaussian};
use crate::model::inception::{InceptionV3, FEATURE_DIM};
use crate::model::{Denoiser, FeatureExtractor};
use crate::paths::Paths;
use crate::progress::{LogFn, Progress};
use crate::sample::Sampler;
use crate::{Error, Result};

/// Samples per FID: the field's 50,000.
pub const DEFAULT_SAMPLES: usize = 50_000;
/// Samples per model forward.
const CHUNK: usize = 50;

pub struct FidProtocol {
    pub samples: usize,
    /// Seed ranges `[r * samples, (r + 1) * samples)`, `r < ranges`.
    pub ranges: usize,
    pub reference: Source,
    pub detector: PathBuf,
    /// Samplers to score, each as `fid_<tag>` (`fid_1step`, `fid_2step`, `fid_heun18`).
    pub samplers: Vec<Sampler>,
    /// The `weights` attribute: which weights were sampled (e.g. an EMA profile's
    /// [`describe`](crate::config::EmaProfile::describe)).
    pub weights: String,
}

fn tag(sampler: &Sampler) -> String {
    match sampler {
        Sampler::Consistency(k) => format!("{k}step"),
        Sampler::Heun(k) => format!("heun{k}"),
    }
}

/// The noise of samples `seeds`: each its own stream, `z` then the 2-step sampler's `z2`.
fn noise(seeds: std::ops::Range<usize>, len: usize) -> [Vec<f32>; 2] {
    let (mut z, mut z2) = (Vec::with_capacity(seeds.len() * len), Vec::with_capacity(seeds.len() * len));
    for seed in seeds {
        let mut rng = crate::rng::stream(seed as u64, "fid");
        z.extend(crate::rng::normal_vec(&mut rng, len));
        z2.extend(crate::rng::normal_vec(&mut rng, len));
    }
    [z, z2]
}

/// Samples `seeds` with `sampler`, their features through `net`, as statistics.
fn sample_statistics(
    model: &Denoiser,
    sampling: &SamplingConfig,
    (sampler, seeds): (&Sampler, std::ops::Range<usize>),
    shape: (usize, usize, usize),
    net: &InceptionV3,
    device: &Device,
) -> Result<Gaussian> {
    let (c, h, w) = shape;
    let mut moments = Moments::new(FEATURE_DIM);
    let label = format!("fid {sampler} seeds {}-{}", seeds.start, seeds.end - 1);
    let total = seeds.len() as u64;
    let mut progress = Progress::new(&label, 0, total, Duration::from_secs(60));
    for start in seeds.clone().step_by(CHUNK) {
        let end = (start + CHUNK).min(seeds.end);
        let b = end - start;
        let [z, z2] = noise(start..end, c * h * w);
        let z = Tensor::from_vec(z, (b, c, h, w), device)?;
        let x = crate::sample::from_noise(model, *sampler, &z, || Ok(Tensor::from_vec(z2, (b, c, h, w), device)?), sampling)?;
        moments.add(&net.features_of(&x)?.0);
        progress.update((end - seeds.start) as u64, total, "samples");
    }
    progress.finish();
    moments.gaussian()
}

/// The reference statistics: an `.npz` as given; a data set's cached per data set and detector.
fn reference_statistics(p: &FidProtocol, paths: &Paths, net: &InceptionV3, device: &Device, log: LogFn) -> Result<(Gaussian, String)> {
    let g = match &p.reference {
        Source::Stats(path) => return Ok((npz::read(path)?, format!("statistics of {}", path.display()))),
        Source::Folder(_) => image_statistics(p.reference.images()?, net, None, device, "fid reference")?,
        Source::Dataset(name, path) => {
            // read once: its checksum keys the cache, its images fill it on a miss
            let set = crate::data::store::DatasetStore::new(".").load_file(path)?;
            let key = crate::metrics::refstats::RefKey {
                dataset_sha256: set.sha256(),
                extractor: "fid_inception_2015".into(),
                extractor_sha256: super::detector_sha256().to_string(),
                n: set.n,
                reference: format!("all {} images of {name}", set.n),
            };
            let compute = || image_statistics(Images::Set(set), net, None, device, "fid reference");
            crate::metrics::refstats::load_or_compute(paths, &key, compute, log)?
        }
    };
    let desc = format!("all {} images of {}", g.n, p.reference.name());
    Ok((g, desc))
}

/// The FID of each sampler of `p`, over each seed range.
pub fn evaluate(
    model: &Denoiser,
    sampling: &SamplingConfig,
    shape: (usize, usize, usize),
    p: &FidProtocol,
    paths: &Paths,
    device: &Device,
    log: LogFn,
) -> Result<Vec<EvalValue>> {
    let net = load_detector(&p.detector, device)?;
    let (reference, reference_desc) = reference_statistics(p, paths, &net, device, log)?;
    if reference.mean.len() != FEATURE_DIM {
        return Err(Error::msg(format!("FID reference {}: {}-d statistics, 2048 expected", p.reference.name(), reference.mean.len())));
    }
    let reference = FdReference::new(reference);
    let mut out = Vec::new();
    for sampler in &p.samplers {
        let mut values = Vec::new();
        for r in 0..p.ranges {
            let seeds = r * p.samples..(r + 1) * p.samples;
            log(&format!("fid: {} {sampler} samples, seeds {}-{}", p.samples, seeds.start, seeds.end - 1));
            let g = sample_statistics(model, sampling, (sampler, seeds), shape, &net, device)?;
            values.push(frechet_distance_to(&reference, &g)?);
        }
        let ranges: Vec<String> =
            values.iter().enumerate().map(|(r, v)| format!("seeds {}-{}: {v:.4}", r * p.samples, (r + 1) * p.samples - 1)).collect();
        let attrs = vec![
            ("extractor".to_string(), format!("NVIDIA inception-2015-12-05 ({})", p.detector.display())),
            ("n_samples".to_string(), p.samples.to_string()),
            ("sampler".to_string(), sampler.to_string()),
            ("seeds".to_string(), ranges.join("; ")),
            ("weights".to_string(), p.weights.clone()),
            ("reference".to_string(), reference_desc.clone()),
        ];
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let name = format!("fid_{}", tag(sampler));
        if values.len() > 1 {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            out.push(EvalValue { metric: name.clone(), value: min, attrs: with(&attrs, "value", "the minimum over the seed ranges") });
            out.push(EvalValue {
                metric: format!("{name}_mean"),
                value: mean,
                attrs: with(&attrs, "value", "the mean over the seed ranges"),
            });
        } else {
            out.push(EvalValue { metric: name, value: min, attrs });
        }
    }
    Ok(out)
}

fn with(attrs: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut out = attrs.to_vec();
    out.push((key.to_string(), value.to_string()));
    out
}
