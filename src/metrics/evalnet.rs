//! The neutral feature extractor of FD evaluation (method.md 8): a VGG-style network trained on
//! the data set's own labels (classes; for the unlabelled disks, their generating parameters),
//! independent of phi and of the LPIPS backbone. Features are its penultimate layer. Reported
//! numbers are named "FD-evalnet", never FID.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, D};

use crate::data::{open_data, DataConfig};
use crate::model::phi::{Phi, PhiConfig};
use crate::model::FeatureExtractor;
use crate::paths::Paths;
use crate::progress::LogFn;
use crate::store::bundle;
use crate::train::{RAdam, RAdamConfig};
use crate::{Error, Result};

pub const EXTRACTOR: &str = "evalnet";

/// Where the evaluator for a data set is trained to (in the user's home).
pub fn evalnet_path(paths: &Paths, dataset_sha256: &str) -> PathBuf {
    paths.features().join(evalnet_file_name(dataset_sha256))
}

fn evalnet_file_name(dataset_sha256: &str) -> String {
    crate::features::feature_file_name(EXTRACTOR, dataset_sha256)
}

/// Targets of one batch: one-hot classes, or the disks' normalised (cx, cy, radius).
fn targets(batch: &crate::data::Batch, n_out: usize) -> Result<Vec<f32>> {
    if let Some(labels) = &batch.labels {
        let mut t = vec![0f32; batch.b * n_out];
        for (i, &l) in labels.iter().enumerate() {
            let l = usize::try_from(l)
                .ok()
                .filter(|l| *l < n_out)
                .ok_or_else(|| Error::msg(format!("evalnet: label {l} outside 0..{n_out}")))?;
            t[i * n_out + l] = 1.0;
        }
        return Ok(t);
    }
    let disks = batch.disks.as_ref().ok_or_else(|| Error::msg("evalnet: the data set has neither labels nor disk parameters"))?;
    let s = batch.w as f32;
    Ok(disks.iter().flat_map(|p| [p.cx / s, p.cy / s, p.radius / s]).collect())
}

/// A trained evaluator: phi's architecture with a head over the targets.
pub struct EvalNet {
    pub net: Phi,
    pub classify: bool,
}

impl EvalNet {
    /// Penultimate features (global average of the last stage) `[B, width]`.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let taps = self.net.features(x)?;
        let last = &taps[taps.len() - 2];
        Ok(last.mean(D::Minus1)?.mean(D::Minus1)?)
    }
}

impl FeatureExtractor for EvalNet {
    /// Features of many images (NCHW in [-1, 1]) in batches, as rows `[n, d]`.
    fn features_of(&self, images: &Tensor) -> Result<(Vec<f32>, usize)> {
        let n = images.dim(0)?;
        let mut out = Vec::new();
        let mut d = 0;
        for start in (0..n).step_by(256) {
            let f = self.features(&images.narrow(0, start, 256.min(n - start))?)?;
            d = f.dim(1)?;
            out.extend(f.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok((out, d))
    }
}

/// Trains the evaluator for a data set (or loads the cached one). Training progress goes to
/// `log` (a line every 10 s): it runs inside the engine too, where no progress bar may draw.
pub fn ensure(paths: &Paths, data: &DataConfig, iterations: u64, device: &Device, log: LogFn) -> Result<(EvalNet, PathBuf)> {
    let opened = open_data(data, 1234, paths)?;
    let found = crate::features::find_feature(paths, &evalnet_file_name(&opened.sha256))?;
    if found.exists() {
        return Ok((load(&found, device)?, found));
    }
    let path = evalnet_path(paths, &opened.sha256);
    let mut source = opened.source;
    let (c, h, _) = source.shape();
    let probe = source.next_batch(2);
    let classify = probe.labels.is_some();
    let n_out = if classify { probe.labels.as_ref().and_then(|l| l.iter().max()).map(|m| *m as usize + 1).unwrap_or(1).max(10) } else { 3 };
    let cfg = PhiConfig { widths: if h >= 28 { vec![32, 64, 128] } else { vec![32, 64] }, ..PhiConfig::default() };
    let net = Phi::new(&cfg, c, n_out, 4321, device)?;
    let mut opt = RAdam::new(crate::model::precond::named_vars(&net.varmap), RAdamConfig { lr: 1e-3, ..RAdamConfig::default() })?;
    log(&format!("evalnet: training the evaluator network for {} ({iterations} steps; cached as {})", data.dataset, path.display()));
    let mut last_line = Instant::now();
    for it in 0..iterations {
        let batch = source.next_batch(64);
        let t = Tensor::from_vec(targets(&batch, n_out)?, (64, n_out), device)?;
        let x = Tensor::from_vec(batch.x, (64, c, batch.h, batch.w), device)?;
        let out = net.predict(&x)?;
        let loss = if classify {
            let m = out.max_keepdim(1)?.detach();
            let lse = (out.broadcast_sub(&m)?.exp()?.sum_keepdim(1)?.log()? + m)?;
            (out.broadcast_sub(&lse)? * t)?.sum(1)?.mean_all()?.neg()?
        } else {
            (out - t)?.sqr()?.mean_all()?
        };
        let v = loss.to_scalar::<f32>()?;
        opt.step(&loss.backward()?)?;
        if last_line.elapsed() >= Duration::from_secs(10) || it + 1 == iterations {
            last_line = Instant::now();
            log(&format!("evalnet: step {}/{iterations} loss {v:.4}", it + 1));
        }
    }
    let tensors = crate::train::vars_to_named(&net.varmap, "")?;
    let attrs = [
        ("kind", EXTRACTOR.to_string()),
        ("phi_config", serde_json::to_string(&cfg).map_err(|e| Error::msg(e.to_string()))?),
        ("in_channels", c.to_string()),
        ("n_out", n_out.to_string()),
        ("classify", classify.to_string()),
        ("dataset_sha256", opened.sha256.clone()),
    ];
    bundle::save(&path, &tensors, &attrs)?;
    Ok((EvalNet { net, classify }, path))
}

pub fn load(path: &Path, device: &Device) -> Result<EvalNet> {
    let read = bundle::read(path)?;
    let attr = |k: &str| read.attr(k);
    let cfg: PhiConfig = serde_json::from_str(attr("phi_config")?).map_err(|e| Error::file(path, format!("attribute phi_config: {e}")))?;
    let parse = |k: &str| -> Result<usize> { attr(k)?.parse().map_err(|e| Error::file(path, format!("attribute {k}: {e}"))) };
    let net = Phi::new(&cfg, parse("in_channels")?, parse("n_out")?, 0, device)?;
    crate::train::load_into_varmap(&net.varmap, &read.tensors(device)?, "", path)?;
    Ok(EvalNet { net: net.frozen(), classify: attr("classify")? == "true" })
}
