//! LPIPS v0.1 (Zhang et al. 2018), the learned perceptual distance, as a differentiable
//! [`FeatureDistance`] (a training loss in the normalised-tangent form) and as a metric
//! (method.md section 5).
//!
//! Pipeline, as the `lpips` package: grayscale repeated to 3 channels; optional bilinear resize
//! of both images (align_corners=False); scaling layer `(x - shift) / scale`; the frozen
//! ImageNet backbone (AlexNet or VGG16 `features`), tapped after five ReLUs; each tap normalised
//! over channels, `f / (||f||_c + 1e-10)`; squared difference; 1x1 "lin" weights (no bias);
//! spatial mean; sum over taps.
//!
//! Weights (`weights/lpips/` in the repository, see its PROVENANCE.md): found in `$AYT_WEIGHTS/lpips/`
//! when the `AYT_WEIGHTS` environment variable is set, else in the source tree's `weights/lpips/`
//! (the `CARGO_MANIFEST_DIR` the binary was built from); [`Lpips::load`] takes any folder. Every
//! file is checked against the SHA256 compiled into the binary (from `weights/lpips/SHA256SUMS`);
//! a missing or corrupt file is an error naming it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::feature::FeatureDistance;
use crate::nn::{bilinear, pool, Conv2d};
use crate::{Error, Result};

#[cfg(test)]
mod tests;

pub use crate::paths::shipped::{weights_root, WEIGHTS_ENV};

/// `sha256  name` lines of the shipped weight files, compiled in.
const SHA256SUMS: &str = include_str!("../../../weights/lpips/SHA256SUMS");

/// Scaling layer constants of the `lpips` package.
pub const SHIFT: [f64; 3] = [-0.030, -0.088, -0.188];
pub const SCALE: [f64; 3] = [0.458, 0.448, 0.450];
/// Added to the channel norm of each tap (the `lpips` package's `normalize_tensor`).
pub const NORM_EPS: f64 = 1e-10;
/// Added under the square root of the channel norm, so that a position where every channel is 0
/// (all ReLUs off) gets a zero gradient instead of 0/0. It changes the norm by at most 1e-10.
const SQRT_FLOOR: f64 = 1e-20;

/// The backbone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LpipsNet {
    #[default]
    Alex,
    Vgg,
}

impl LpipsNet {
    pub fn name(self) -> &'static str {
        match self {
            LpipsNet::Alex => "alex",
            LpipsNet::Vgg => "vgg",
        }
    }
    /// Whether this backbone's weight files are in the default weights folder.
    pub fn weights_present(self) -> bool {
        let (features, lin) = self.files();
        let dir = weights_root().join("lpips");
        dir.join(features).is_file() && dir.join(lin).is_file()
    }
    fn files(self) -> (&'static str, &'static str) {
        match self {
            LpipsNet::Alex => ("alexnet_features.safetensors", "lin_alex_v0.1.safetensors"),
            LpipsNet::Vgg => ("vgg16_features.safetensors", "lin_vgg_v0.1.safetensors"),
        }
    }
    /// torchvision `features` layers up to the last tap, and the tapped indices.
    fn layers(self) -> (Vec<(usize, Layer)>, [usize; 5]) {
        match self {
            LpipsNet::Alex => {
                use Layer::*;
                let l = vec![
                    Conv { cin: 3, cout: 64, k: 11, stride: 4, pad: 2 },
                    Relu,
                    Pool { k: 3, stride: 2 },
                    Conv { cin: 64, cout: 192, k: 5, stride: 1, pad: 2 },
                    Relu,
                    Pool { k: 3, stride: 2 },
                    Conv { cin: 192, cout: 384, k: 3, stride: 1, pad: 1 },
                    Relu,
                    Conv { cin: 384, cout: 256, k: 3, stride: 1, pad: 1 },
                    Relu,
                    Conv { cin: 256, cout: 256, k: 3, stride: 1, pad: 1 },
                    Relu,
                ];
                (l.into_iter().enumerate().collect(), [1, 4, 7, 9, 11])
            }
            LpipsNet::Vgg => {
                let cfg: [usize; 17] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512];
                let mut l = Vec::new();
                let mut cin = 3;
                for c in cfg {
                    if c == 0 {
                        l.push(Layer::Pool { k: 2, stride: 2 });
                    } else {
                        l.push(Layer::Conv { cin, cout: c, k: 3, stride: 1, pad: 1 });
                        l.push(Layer::Relu);
                        cin = c;
                    }
                }
                (l.into_iter().enumerate().collect(), [3, 8, 15, 22, 29])
            }
        }
    }
    /// The smallest square input (after any resize) whose five taps are all non-empty.
    pub fn min_size(self) -> usize {
        (1..4096).find(|&n| self.out_size(n).is_some()).unwrap_or(usize::MAX)
    }
    /// Side of the last tap for an `n x n` input, or None where a layer does not fit.
    fn out_size(self, mut n: usize) -> Option<usize> {
        for (_, layer) in self.layers().0 {
            n = match layer {
                Layer::Conv { k, stride, pad, .. } => (n + 2 * pad).checked_sub(k)? / stride + 1,
                Layer::Pool { k, stride } => n.checked_sub(k)? / stride + 1,
                Layer::Relu => n,
            };
        }
        Some(n)
    }
}

impl std::str::FromStr for LpipsNet {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "alex" => Ok(LpipsNet::Alex),
            "vgg" => Ok(LpipsNet::Vgg),
            _ => Err(format!("{s:?}: expected \"alex\" or \"vgg\"")),
        }
    }
}

/// The preset's `[lpips]` section (used when `train.loss = "lpips"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LpipsConfig {
    /// `"alex"` or `"vgg"`.
    pub net: LpipsNet,
    /// Bilinear resize of both images to `resize x resize` before the backbone; 0: native size.
    pub resize: usize,
}

impl LpipsConfig {
    pub fn resize(&self) -> Option<usize> {
        (self.resize > 0).then_some(self.resize)
    }
    /// Range checks naming the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let min = self.net.min_size();
        if self.resize != 0 && !(min..=1024).contains(&self.resize) {
            return Err(format!(
                "lpips.resize = {}: must be 0 (native size) or between {min} (the smallest input lpips.net = \"{}\" accepts) and 1024",
                self.resize,
                self.net.name()
            ));
        }
        Ok(())
    }
    /// Checks that images of `h x w` fit the backbone, naming the keys to change.
    pub fn check_image_size(&self, h: usize, w: usize) -> std::result::Result<(), String> {
        let min = self.net.min_size();
        if self.resize == 0 && h.min(w) < min {
            return Err(format!(
                "lpips.net = \"{}\" needs images of at least {min}x{min} and these are {h}x{w}: set lpips.resize (e.g. 64) or use lpips.net = \"vgg\" (at least {}x{})",
                self.net.name(),
                LpipsNet::Vgg.min_size(),
                LpipsNet::Vgg.min_size()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Conv { cin: usize, cout: usize, k: usize, stride: usize, pad: usize },
    Relu,
    Pool { k: usize, stride: usize },
}

enum Op {
    Conv(Conv2d),
    Relu,
    Pool { k: usize, stride: usize },
}

/// A frozen LPIPS v0.1 network.
pub struct Lpips {
    net: LpipsNet,
    resize: Option<usize>,
    ops: Vec<Op>,
    taps: [usize; 5],
    /// Per tap: the lin weights as [1, C, 1, 1].
    lins: Vec<Tensor>,
    shift: Tensor,
    scale: Tensor,
}

/// The expected SHA256 (hex) of a shipped weight file.
fn expected_sha256(name: &str) -> Option<&'static str> {
    crate::paths::shipped::sha256_listed(SHA256SUMS, name)
}

/// Reads a weight file, checks its SHA256, and parses its tensors.
fn load_verified(dir: &Path, name: &str, dtype: DType, device: &Device) -> Result<HashMap<String, Tensor>> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::file(
            &path,
            format!(
                "cannot read the LPIPS weight file {name} ({e}); the repository's weights/lpips/ holds it (VGG16's, too large to keep in git, is made by scripts/setup.sh via scripts/fetch_lpips_weights.py), or set {WEIGHTS_ENV} to a folder that holds lpips/"
            ),
        )
    })?;
    let expect = expected_sha256(name).ok_or_else(|| Error::file(&path, format!("{name}: no SHA256 compiled in for this file")))?;
    let got = hex::encode(Sha256::digest(&bytes));
    if got != expect {
        return Err(Error::file(
            &path,
            format!("LPIPS weight file {name} is corrupt or not the shipped one: SHA256 {got}, expected {expect}"),
        ));
    }
    parse_weights(&bytes, &path, dtype, device)
}

fn parse_weights(bytes: &[u8], path: &Path, dtype: DType, device: &Device) -> Result<HashMap<String, Tensor>> {
    let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|e| Error::file(path, format!("safetensors: {e}")))?;
    tensors.into_iter().map(|(k, v)| Ok((k, v.to_dtype(dtype)?))).collect()
}

fn take(map: &mut HashMap<String, Tensor>, key: &str, path: &Path, shape: &[usize]) -> Result<Tensor> {
    let t = map.remove(key).ok_or_else(|| Error::file(path, format!("no tensor {key}")))?;
    if t.dims() != shape {
        return Err(Error::file(path, format!("tensor {key} has shape {:?}, expected {shape:?}", t.dims())));
    }
    Ok(t)
}

impl Lpips {
    /// Loads the weights of `net` from `dir` (the folder holding the four `.safetensors` files),
    /// verifying their checksums. `resize`: bilinear resize of both inputs to `n x n` first.
    pub fn load(dir: &Path, net: LpipsNet, resize: Option<usize>, dtype: DType, device: &Device) -> Result<Lpips> {
        if let Some(n) = resize {
            LpipsConfig { net, resize: n }.validate().map_err(Error::msg)?;
        }
        let (feat_name, lin_name) = net.files();
        let feats = load_verified(dir, feat_name, dtype, device)?;
        let lin = load_verified(dir, lin_name, dtype, device)?;
        Lpips::assemble(net, resize, (feats, &dir.join(feat_name)), (lin, &dir.join(lin_name)), dtype, device)
    }

    /// What [`Lpips::load`] does after the checksums: parse both weight files and check every
    /// tensor's name and shape (the fuzz target of the weight parser; `load` always checks the
    /// files against their SHA-256 first).
    pub fn from_unverified_bytes(net: LpipsNet, features: &[u8], lin: &[u8], dtype: DType, device: &Device) -> Result<Lpips> {
        let (fp, lp) = (Path::new("features.safetensors"), Path::new("lin.safetensors"));
        let feats = parse_weights(features, fp, dtype, device)?;
        let lin = parse_weights(lin, lp, dtype, device)?;
        Lpips::assemble(net, None, (feats, fp), (lin, lp), dtype, device)
    }

    fn assemble(
        net: LpipsNet,
        resize: Option<usize>,
        (mut feats, feat_path): (HashMap<String, Tensor>, &Path),
        (mut lin, lin_path): (HashMap<String, Tensor>, &Path),
        dtype: DType,
        device: &Device,
    ) -> Result<Lpips> {
        let (layers, taps) = net.layers();
        let mut ops = Vec::new();
        let mut tap_channels = Vec::new();
        let mut channels = 3;
        for (i, layer) in layers {
            ops.push(match layer {
                Layer::Conv { cin, cout, k, stride, pad } => {
                    let w = take(&mut feats, &format!("features.{i}.weight"), feat_path, &[cout, cin, k, k])?;
                    let b = take(&mut feats, &format!("features.{i}.bias"), feat_path, &[cout])?;
                    channels = cout;
                    Op::Conv(Conv2d::from_tensors(w, Some(b), stride, pad))
                }
                Layer::Relu => Op::Relu,
                Layer::Pool { k, stride } => Op::Pool { k, stride },
            });
            if taps.contains(&i) {
                tap_channels.push(channels);
            }
        }
        let lins = tap_channels
            .iter()
            .enumerate()
            .map(|(k, &c)| take(&mut lin, &format!("lin{k}.model.1.weight"), lin_path, &[1, c, 1, 1]))
            .collect::<Result<Vec<_>>>()?;
        let column = |v: [f64; 3]| Tensor::from_vec(v.to_vec(), (1, 3, 1, 1), device)?.to_dtype(dtype);
        Ok(Lpips { net, resize, ops, taps, lins, shift: column(SHIFT)?, scale: column(SCALE)? })
    }

    /// Loads from `$AYT_WEIGHTS/lpips` or the source tree's `weights/lpips` (see [`weights_root`]).
    pub fn load_default(net: LpipsNet, resize: Option<usize>, dtype: DType, device: &Device) -> Result<Lpips> {
        Lpips::load(&weights_root().join("lpips"), net, resize, dtype, device)
    }

    pub fn from_config(cfg: &LpipsConfig, dtype: DType, device: &Device) -> Result<Lpips> {
        Lpips::load_default(cfg.net, cfg.resize(), dtype, device)
    }

    pub fn net(&self) -> LpipsNet {
        self.net
    }

    pub fn resize(&self) -> Option<usize> {
        self.resize
    }

    /// Grayscale to 3 channels, resize, scaling layer.
    fn prepare(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let x = match c {
            3 => x.clone(),
            1 => x.broadcast_as((b, 3, h, w))?.contiguous()?,
            _ => return Err(Error::msg(format!("LPIPS: images must have 1 or 3 channels, not {c}"))),
        };
        let x = match self.resize {
            Some(n) => bilinear::resize_bilinear(&x, n, n)?,
            None => x,
        };
        Ok(x.broadcast_sub(&self.shift)?.broadcast_div(&self.scale)?)
    }

    /// Per-sample LPIPS [B] between `x` and `y` ([B,C,H,W], C = 1 or 3, values in [-1, 1]);
    /// differentiable with respect to both.
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if x.dims() != y.dims() {
            return Err(Error::msg(format!("LPIPS: the images differ in shape, {:?} and {:?}", x.dims(), y.dims())));
        }
        let (_, _, h, w) = x.dims4()?;
        if self.resize.is_none() {
            LpipsConfig { net: self.net, resize: 0 }.check_image_size(h, w).map_err(Error::msg)?;
        }
        // Two passes rather than one over the concatenated batch: when only `x` carries a
        // gradient (a detached target, as in the training loss), the backward then runs over
        // `x`'s half alone.
        let (fx, fy) = (self.taps(x)?, self.taps(y)?);
        let mut total: Option<Tensor> = None;
        for ((a, b), lin) in fx.iter().zip(&fy).zip(&self.lins) {
            let d = (a - b)?.sqr()?;
            let term = d.broadcast_mul(lin)?.sum(1)?.flatten_from(1)?.mean(D::Minus1)?;
            total = Some(match total {
                Some(t) => (t + term)?,
                None => term,
            });
        }
        total.ok_or_else(|| Error::msg("LPIPS: no taps"))
    }

    /// The five channel-normalised tapped features of a batch.
    fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut f = self.prepare(x)?;
        let mut out = Vec::with_capacity(self.taps.len());
        for (i, op) in self.ops.iter().enumerate() {
            f = match op {
                Op::Conv(conv) => conv.forward(&f)?,
                Op::Relu => f.relu()?,
                Op::Pool { k, stride } => pool::max_pool2d(&f, *k, *stride)?,
            };
            if self.taps.contains(&i) {
                out.push(normalize(&f)?);
            }
        }
        Ok(out)
    }
}

/// `f / (sqrt(sum_c f^2) + 1e-10)` over the channel axis.
fn normalize(f: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (f.sqr()?.sum_keepdim(1)? + SQRT_FLOOR)?.sqrt()?;
    f.broadcast_div(&(norm + NORM_EPS)?)
}

impl FeatureDistance for Lpips {
    fn distance(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        self.forward(x, y)
    }
    fn name(&self) -> String {
        match self.resize {
            Some(n) => format!("lpips-{}-r{n}", self.net.name()),
            None => format!("lpips-{}", self.net.name()),
        }
    }
}

/// LPIPS between two 8-bit images (HWC, `c` = 1 or 3 channels each), pixels mapped to [-1, 1]
/// as `x / 127.5 - 1`; a grayscale image compared with a colour one is repeated to 3 channels.
pub fn distance_u8(lpips: &Lpips, a: (usize, usize, usize, &[u8]), b: (usize, usize, usize, &[u8])) -> Result<f64> {
    let to_tensor = |(w, h, c, px): (usize, usize, usize, &[u8]), want_c: usize| -> Result<Tensor> {
        let v: Vec<f32> = px.iter().map(|&p| p as f32 / 127.5 - 1.0).collect();
        let t = Tensor::from_vec(v, (1, h, w, c), lpips.shift.device())?.permute((0, 3, 1, 2))?;
        Ok(if c == want_c { t.contiguous()? } else { t.broadcast_as((1, want_c, h, w))?.contiguous()? })
    };
    if (a.0, a.1) != (b.0, b.1) && lpips.resize.is_none() {
        return Err(Error::msg(format!(
            "the images differ in size ({}x{} and {}x{}); give --resize N to compare them at N x N",
            a.0, a.1, b.0, b.1
        )));
    }
    let c = a.2.max(b.2);
    let (ta, tb) = (to_tensor(a, c)?, to_tensor(b, c)?);
    let (ta, tb) = match lpips.resize {
        // resize each to the common size here, as sizes may differ
        Some(n) => (bilinear::resize_bilinear(&ta, n, n)?, bilinear::resize_bilinear(&tb, n, n)?),
        None => (ta, tb),
    };
    Ok(lpips.forward(&ta, &tb)?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0])
}
