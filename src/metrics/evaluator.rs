//! Sample-quality evaluation (method.md 8), one code path for `ayt eval` and for evaluation
//! during training: an [`Evaluator`] is built once per run (feature extractors loaded or trained,
//! reference statistics computed or read from the cache, the dFD source images drawn) and then
//! scores any model state of that run.
//!
//! Every value carries its protocol (extractor, sample count, sampler, reference). Values of the
//! neutral evaluator network are "FD-evalnet"; only user-given Inception-v3 weights give "FID".

use std::cell::RefCell;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::disk_fit::{self, DiskFit};
use super::fd::{frechet_distance_to, FdReference, Gaussian};
use super::refstats::RefKey;
use crate::config::{EmaProfile, EvalConfig, SamplingConfig};
use crate::data::disks::{DiskParams, DisksConfig};
use crate::data::{open_data, DataConfig};
use crate::model::{Denoiser, FeatureExtractor};
use crate::paths::{Paths, RunDir};
use crate::progress::LogFn;
use crate::train::checkpoint::Weights;
use crate::{Error, Result};

/// One evaluation value with its protocol.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalValue {
    pub metric: String,
    pub value: f64,
    pub attrs: Vec<(String, String)>,
}

/// A feature extractor with the reference statistics of its data set.
struct Extractor {
    /// Metric prefixes: `("fd_evalnet", "dfd_evalnet")` or `("fid_inception_v3", "dfid_inception_v3")`.
    fd_prefix: String,
    dfd_prefix: String,
    /// The `extractor` attribute: name and file.
    label: String,
    net: Box<dyn FeatureExtractor>,
    /// Its square root taken once: every value of an evaluation is scored against it.
    reference: FdReference,
}

/// The Inception-v3 extractor's name in cache files and attributes.
pub const INCEPTION: &str = "inception_v3";

/// Seeds of the evaluation data streams: fixed, so every run of a data set is scored against
/// the same reference images and denoises the same dFD images.
pub const REFERENCE_SEED: u64 = 777;
pub const DFD_SEED: u64 = 778;
/// Noise levels of dFD (method.md 7).
pub const DFD_SIGMAS: [f64; 3] = [0.2, 0.4, 0.8];
/// Images per model forward during evaluation (bounds memory at large `n`).
const CHUNK: usize = 250;

pub struct Evaluator {
    n: usize,
    /// Evaluations per model state, each with its own noise (`eval.repeats`).
    repeats: usize,
    shape: (usize, usize, usize),
    dataset: String,
    extractors: Vec<Extractor>,
    /// dFD source images and, on disks, their generating parameters.
    x0: Tensor,
    x0_params: Option<Vec<DiskParams>>,
    disks: Option<DisksConfig>,
    /// Heun steps of the extra `*_heun<N>` sample metrics (EDM runs), if any.
    heun_steps: Option<usize>,
}

impl Evaluator {
    /// What a run of `preset` is evaluated with: EDM (diffusion) runs also with EDM's Heun
    /// sampler, as `fd_*_heun18`, since their 1- and 2-step consistency samples are noise;
    /// `heun_steps` overrides (0: none; see [`crate::sample::metric_heun_steps`]).
    pub fn for_preset(
        paths: &Paths,
        preset: &crate::config::Preset,
        cfg: &EvalConfig,
        heun_steps: Option<usize>,
        device: &Device,
        log: LogFn,
    ) -> Result<Evaluator> {
        // checked before the evaluator network is loaded or trained
        let heun_steps = crate::sample::metric_heun_steps(preset, heun_steps)?;
        let mut e = Evaluator::new(paths, &preset.data, cfg, device, log)?;
        e.heun_steps = heun_steps;
        Ok(e)
    }

    /// Loads (or trains) the evaluator network of `data`, and Inception-v3 when `cfg.inception`
    /// names a file; computes each extractor's reference statistics over `cfg.n` data images.
    pub fn new(paths: &Paths, data: &DataConfig, cfg: &EvalConfig, device: &Device, log: LogFn) -> Result<Evaluator> {
        let n = cfg.n;
        let opened = open_data(data, REFERENCE_SEED, paths)?;
        let shape = opened.source.shape();
        let (c, h, w) = shape;
        // The reference images: drawn once, and only when some statistics are not cached.
        let source = RefCell::new(opened.source);
        let drawn: RefCell<Option<Tensor>> = RefCell::new(None);
        let reference = || -> Result<Tensor> {
            if let Some(t) = drawn.borrow().as_ref() {
                return Ok(t.clone());
            }
            let t = Tensor::from_vec(source.borrow_mut().next_batch(n).x, (n, c, h, w), device)?;
            *drawn.borrow_mut() = Some(t.clone());
            Ok(t)
        };
        let reference_desc = format!("{n} images of {} (seed {REFERENCE_SEED})", data.dataset);
        let key = |extractor: &str, file: &Path| -> Result<RefKey> {
            Ok(RefKey {
                dataset_sha256: opened.sha256.clone(),
                extractor: extractor.to_string(),
                extractor_sha256: super::refstats::file_sha256(file)?,
                n,
                reference: reference_desc.clone(),
            })
        };

        let (evalnet, evalnet_path) = super::evalnet::ensure(paths, data, cfg.evalnet_iterations, device, log)?;
        let evalnet_key = key(super::evalnet::EXTRACTOR, &evalnet_path)?;
        let mut extractors = vec![Self::extractor(
            paths,
            ("fd_evalnet", "dfd_evalnet"),
            label(super::evalnet::EXTRACTOR, &evalnet_path),
            Box::new(evalnet),
            &evalnet_key,
            &reference,
            log,
        )?];
        // Real FID only from user-given Inception-v3 weights (method.md 8).
        if let Some(file) = &cfg.inception {
            let path = Path::new(file);
            let net = crate::model::inception::InceptionV3::load(path, device)?;
            let name = format!("{INCEPTION} (torchvision layout, transform_input={})", net.transform_input);
            let key = key(INCEPTION, path)?;
            extractors.push(Self::extractor(
                paths,
                ("fid_inception_v3", "dfid_inception_v3"),
                label(&name, path),
                Box::new(net),
                &key,
                &reference,
                log,
            )?);
        }

        let mut dfd_src = open_data(data, DFD_SEED, paths)?.source;
        let batch = dfd_src.next_batch(n);
        let x0 = Tensor::from_vec(batch.x, (n, c, h, w), device)?;
        let disks = (data.dataset == "disks").then(|| data.disks.clone());
        Ok(Evaluator {
            n,
            repeats: cfg.repeats.max(1),
            shape,
            dataset: data.dataset.clone(),
            extractors,
            x0,
            x0_params: batch.disks,
            disks,
            heun_steps: None,
        })
    }

    /// An extractor with its reference statistics, from the cache or computed (and cached).
    fn extractor(
        paths: &Paths,
        (fd_prefix, dfd_prefix): (&str, &str),
        label: String,
        net: Box<dyn FeatureExtractor>,
        key: &RefKey,
        reference: &dyn Fn() -> Result<Tensor>,
        log: LogFn,
    ) -> Result<Extractor> {
        let compute = || {
            log(&format!("eval: reference statistics of {label} over {} images", key.n));
            let (f, d) = net.features_of(&reference()?)?;
            Gaussian::fit(&f, d)
        };
        let reference = super::refstats::load_or_compute(paths, key, compute, log)?;
        let reference = FdReference::new(reference);
        Ok(Extractor { fd_prefix: fd_prefix.into(), dfd_prefix: dfd_prefix.into(), label, net, reference })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    fn protocol(&self, ex: &Extractor, sampler: &str) -> Vec<(String, String)> {
        vec![
            ("extractor".to_string(), ex.label.clone()),
            ("n_samples".to_string(), self.n.to_string()),
            ("sampler".to_string(), sampler.to_string()),
            ("reference".to_string(), format!("{} images of {} (seed {REFERENCE_SEED})", self.n, self.dataset)),
        ]
    }

    /// FD of `images` against each extractor's reference, one value per extractor.
    fn fd_values(&self, images: &Tensor, name: impl Fn(&Extractor) -> String, sampler: &str) -> Result<Vec<EvalValue>> {
        let mut out = Vec::new();
        for ex in &self.extractors {
            let (f, d) = ex.net.features_of(images)?;
            let value = frechet_distance_to(&ex.reference, &Gaussian::fit(&f, d)?)?;
            out.push(EvalValue { metric: name(ex), value, attrs: self.protocol(ex, sampler) });
        }
        Ok(out)
    }

    /// Scores `model` (the EMA weights, normally): FD of 1-step and 2-step samples and dFD at
    /// each sigma of [`DFD_SIGMAS`], `eval.repeats` times. Repeat 0's noise is stream "eval" of
    /// `seed`, repeat `r`'s its substream `r`, drawn afresh on every call, so evaluations at
    /// different steps share their noise and the training streams are never touched. With
    /// repeats, each value is their mean (attribute `repeats`) and `<metric>_sd` their standard
    /// deviation.
    pub fn evaluate(&self, model: &Denoiser, sampling: &SamplingConfig, seed: u64, log: LogFn) -> Result<Vec<EvalValue>> {
        let mut runs = Vec::with_capacity(self.repeats);
        for r in 0..self.repeats {
            if self.repeats > 1 {
                log(&format!("eval: repeat {} of {}", r + 1, self.repeats));
            }
            let rng = if r == 0 { crate::rng::stream(seed, "eval") } else { crate::rng::substream(seed, "eval", r as u64) };
            runs.push(self.evaluate_once(model, sampling, rng, log)?);
        }
        Ok(aggregate(runs))
    }

    fn evaluate_once(
        &self,
        model: &Denoiser,
        sampling: &SamplingConfig,
        mut rng: rand_chacha::ChaCha8Rng,
        log: LogFn,
    ) -> Result<Vec<EvalValue>> {
        let (n, (c, h, w)) = (self.n, self.shape);
        let dev = self.x0.device().clone();
        let noise = |rng: &mut rand_chacha::ChaCha8Rng| Tensor::from_vec(crate::rng::normal_vec(rng, n * c * h * w), (n, c, h, w), &dev);
        let mut out = Vec::new();
        for steps in [1usize, 2] {
            log(&format!("eval: {n} {steps}-step samples"));
            let z = noise(&mut rng)?;
            let x = match steps {
                1 => chunked(&[&z], |t| crate::sample::one_step(model, t[0], sampling))?,
                _ => {
                    let z2 = noise(&mut rng)?;
                    chunked(&[&z, &z2], |t| crate::sample::two_step(model, t[0], t[1], sampling))?
                }
            };
            let sampler = format!("{steps}-step");
            out.extend(self.fd_values(&x, |ex| format!("{}_{steps}step", ex.fd_prefix), &sampler)?);
            out.extend(self.disk_sample_values(&x, &format!("{steps}step"), &sampler)?);
        }
        for sigma in DFD_SIGMAS {
            log(&format!("eval: denoising {n} data images from sigma {sigma}"));
            let z = noise(&mut rng)?;
            let x = chunked(&[&self.x0, &z], |t| crate::sample::denoise_from_data(model, t[0], t[1], sigma, sampling))?;
            let sampler = format!("denoise from data at sigma {sigma}");
            out.extend(self.fd_values(&x, |ex| format!("{}_sigma{sigma}", ex.dfd_prefix), &sampler)?);
            out.extend(self.disk_denoise_values(&x, sigma, &sampler)?);
        }
        // Last, so that the noise of every other metric is what it was without it.
        if let Some(k) = self.heun_steps {
            let sampler = crate::sample::Sampler::Heun(k).to_string();
            log(&format!("eval: {n} samples with the {sampler} sampler"));
            let z = noise(&mut rng)?;
            let x = chunked(&[&z], |t| crate::sample::heun(model, t[0], k, sampling))?;
            out.extend(self.fd_values(&x, |ex| format!("{}_heun{k}", ex.fd_prefix), &sampler)?);
            out.extend(self.disk_sample_values(&x, &format!("heun{k}"), &sampler)?);
        }
        Ok(out)
    }
}

impl Evaluator {
    /// Disk fits of every image (none off the disks data set).
    fn disk_fits(&self, images: &Tensor) -> Result<Option<(&DisksConfig, Vec<DiskFit>)>> {
        let Some(cfg) = &self.disks else { return Ok(None) };
        let rows = images.flatten_from(1)?.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        Ok(Some((cfg, rows.iter().map(|r| disk_fit::fit(cfg, r)).collect())))
    }

    fn disk_protocol(&self, sampler: &str, reference: &str) -> Vec<(String, String)> {
        vec![
            ("extractor".to_string(), "disk fit (moments, then Levenberg-Marquardt against the renderer)".to_string()),
            ("n_samples".to_string(), self.n.to_string()),
            ("sampler".to_string(), sampler.to_string()),
            ("reference".to_string(), reference.to_string()),
        ]
    }

    /// Generated disks: the mean per-image RMS residual of the fit, and the fraction whose
    /// parameters are in the data's range.
    fn disk_sample_values(&self, images: &Tensor, tag: &str, sampler: &str) -> Result<Vec<EvalValue>> {
        let Some((cfg, fits)) = self.disk_fits(images)? else { return Ok(Vec::new()) };
        let n = fits.len().max(1) as f64;
        let rms = fits.iter().map(|f| f.rms).sum::<f64>() / n;
        let inside = fits.iter().filter(|f| disk_fit::in_range(cfg, f)).count() as f64 / n;
        let range = format!(
            "radius in [{}, {}], centre >= radius + {} px from the border (tolerance {} px)",
            cfg.radius_min,
            cfg.radius_max,
            cfg.margin,
            disk_fit::RANGE_TOL
        );
        Ok(vec![
            EvalValue {
                metric: format!("disk_residual_rms_{tag}"),
                value: rms,
                attrs: self.disk_protocol(sampler, "the disk rendered from each sample's fitted parameters"),
            },
            EvalValue { metric: format!("disk_in_range_{tag}"), value: inside, attrs: self.disk_protocol(sampler, &range) },
        ])
    }

    /// Denoised data: mean absolute error (px) of each fitted parameter against the true
    /// parameters of the clean image.
    fn disk_denoise_values(&self, images: &Tensor, sigma: f64, sampler: &str) -> Result<Vec<EvalValue>> {
        let (Some((_, fits)), Some(truth)) = (self.disk_fits(images)?, &self.x0_params) else { return Ok(Vec::new()) };
        let errors = disk_fit::mean_abs_errors(&fits, truth);
        let reference = "the generating parameters of the clean images";
        Ok(["cx", "cy", "radius"]
            .iter()
            .zip(errors)
            .map(|(p, e)| EvalValue {
                metric: format!("disk_mae_{p}_sigma{sigma}"),
                value: e,
                attrs: self.disk_protocol(sampler, reference),
            })
            .collect())
    }
}

/// The mean of each metric over repeated evaluations (same metrics, same order), with attribute
/// `repeats` and a `<metric>_sd` value beside it; one evaluation passes through unchanged.
fn aggregate(mut runs: Vec<Vec<EvalValue>>) -> Vec<EvalValue> {
    if runs.len() < 2 {
        return runs.pop().unwrap_or_default();
    }
    let count = runs.len();
    let mut out = Vec::new();
    for (i, first) in runs[0].iter().enumerate() {
        let values: Vec<f64> = runs.iter().map(|r| r[i].value).collect();
        let mean = values.iter().sum::<f64>() / count as f64;
        let mut attrs = first.attrs.clone();
        attrs.push(("repeats".to_string(), format!("{count} (independent sample noise; the value is their mean)")));
        let sd = super::intervals::std_dev(&values);
        out.push(EvalValue { metric: first.metric.clone(), value: mean, attrs: attrs.clone() });
        out.push(EvalValue { metric: format!("{}_sd", first.metric), value: sd, attrs });
    }
    out
}

/// `extractor` attribute: the name and the file it was loaded from.
fn label(name: &str, path: &Path) -> String {
    format!("{name} ({})", path.display())
}

/// Applies `f` to aligned chunks of the inputs (along dim 0) and concatenates the results.
fn chunked(inputs: &[&Tensor], f: impl Fn(&[&Tensor]) -> Result<Tensor>) -> Result<Tensor> {
    let n = inputs[0].dim(0)?;
    let mut parts = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let views: Vec<Tensor> = inputs.iter().map(|t| t.narrow(0, start, len)).collect::<candle_core::Result<_>>()?;
        let refs: Vec<&Tensor> = views.iter().collect();
        parts.push(f(&refs)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Evaluates a run folder's checkpoint (`step`, or the latest) on `device` with the run's
/// `[eval]` settings, `cfg_override` replacing them (`ayt eval --n ...`): the weights of EMA
/// profile `ema` (`None`: the run's default), which the values name (see [`for_ema_profile`]).
/// Returns the step, the profile and the values.
pub fn evaluate_run(
    paths: &Paths,
    run: &RunDir,
    (step, ema): (Option<u64>, Option<&str>),
    cfg_override: impl FnOnce(&mut EvalConfig),
    heun_steps: Option<usize>,
    device: &Device,
    log: LogFn,
) -> Result<(u64, EmaProfile, Vec<EvalValue>)> {
    let step = run.checkpoint_step(step)?;
    let (model, preset, _) = crate::train::checkpoint::load_denoiser(run, Some(step), Weights::Ema(ema), device)?;
    let (profile, is_default) = crate::train::checkpoint::ema_profile(run, &preset, ema)?;
    let mut cfg = preset.eval.clone();
    cfg_override(&mut cfg);
    cfg.validate().map_err(Error::msg)?;
    let evaluator = Evaluator::for_preset(paths, &preset, &cfg, heun_steps, device, log)?;
    let mut values = evaluator.evaluate(&model, &preset.sampling, preset.seed, log)?;
    for_ema_profile(&mut values, &profile, is_default);
    Ok((step, profile, values))
}

/// Marks `values` as scored on the weights of EMA `profile` (attribute `weights`, replaced where
/// present). A profile other than the run's default also names each metric
/// `<metric>@<profile>`: a run log's `/eval/<metric>` keeps the attributes of its first row, so
/// each profile's values get their own table beside the default's (whose names stay as they were).
pub fn for_ema_profile(values: &mut [EvalValue], profile: &EmaProfile, is_default: bool) {
    let label = profile.describe();
    for v in values.iter_mut() {
        match v.attrs.iter_mut().find(|(k, _)| k == "weights") {
            Some((_, w)) => *w = label.clone(),
            None => v.attrs.push(("weights".to_string(), label.clone())),
        }
        if !is_default {
            v.metric = format!("{}@{}", v.metric, profile.name);
        }
    }
}

/// Appends `values` at `step` to the run's `/eval` tables (kimg from the loss log).
pub fn log_to_run(run: &RunDir, step: u64, values: &[EvalValue]) -> Result<()> {
    let log = run.log_file();
    let loss = crate::store::RunLog::open(&log)?.scalar("loss")?;
    let kimg = loss.step.iter().position(|s| *s == step as i64).map(|i| loss.kimg[i]).unwrap_or(f64::NAN);
    let writer = crate::store::RunLogWriter::open_append(&log, i64::MAX)?;
    for v in values {
        writer.eval(&v.metric, step as i64, kimg, v.value, v.attrs.clone())?;
    }
    writer.close()
}
