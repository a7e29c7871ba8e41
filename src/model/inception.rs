//! Inception-v3's 2048-d pool features, in two variants read from the weights file's metadata
//! (`variant`), both with torchvision's key names (`Conv2d_1a_3x3.conv.weight`,
//! `Mixed_5b.branch1x1.bn.running_mean`, ...; `AuxLogits.*` and `fc.*` are not used):
//!
//! - **`nvidia_inception_2015_12_05`: the FID detector of the field** (EDM, ECT, StyleGAN3):
//!   TensorFlow's 2015 graph as NVIDIA ported it, made by `scripts/fetch_fid_inception.py`
//!   (`weights/fid/`). Images are turned to uint8 as EDM's `fid.py` does, resized to 299 with
//!   TensorFlow 1's legacy bilinear sampling, scaled by `(v - 128) / 128`; the pool branches of
//!   the A, C and E blocks average only over the window's pixels inside the image, and the last
//!   block's pool branch is a 3x3 max pool.
//! - **torchvision** (no `variant`): `inception_v3(weights="IMAGENET1K_V1")` exported by the user
//!   (method.md 8). Images resized with PyTorch's bilinear `interpolate`, ImageNet-normalised,
//!   then, with `transform_input` (torchvision sets it for these weights), mapped back to the
//!   [-1, 1] scaling the original Google weights expect.
//!
//! Each BasicConv2d is conv (no bias) + BatchNorm (eps 1e-3, running statistics) + ReLU; the
//! batch norm is folded into the convolution's weight and bias at load time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor, D};

use crate::model::feature::FeatureExtractor;
use crate::nn::bilinear::{resize_bilinear, resize_bilinear_with, SourceIndex};
use crate::nn::pool::{avg_pool2d, avg_pool2d_inside_only, max_pool2d};
use crate::nn::Conv2d;
use crate::{Error, Result};

pub const FEATURE_DIM: usize = 2048;
pub const INPUT_SIZE: usize = 299;
const BN_EPS: f64 = 1e-3;
const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// Images per forward (bounds memory at 299x299).
const CHUNK: usize = 16;
/// Safetensors metadata key that overrides the default `transform_input = true`.
pub const TRANSFORM_INPUT_KEY: &str = "transform_input";
/// Safetensors metadata key naming the variant; absent: torchvision's.
pub const VARIANT_KEY: &str = "variant";

/// Which network the weights are, and so which preprocessing and pools it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Torchvision,
    /// NVIDIA's port of TensorFlow's `inception-2015-12-05` graph, the standard FID detector.
    Nvidia2015,
}

impl Variant {
    pub const NVIDIA_2015_NAME: &'static str = "nvidia_inception_2015_12_05";
}

/// The pool branch of an A, C or E block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolBranch {
    /// 3x3 average, stride 1, padding 1, padded zeros counted (torchvision).
    Avg,
    /// The same, dividing by the pixels inside the image only (the 2015 graph).
    AvgInsideOnly,
    /// 3x3 max, stride 1, padding 1 (the 2015 graph's last block).
    Max,
}

impl PoolBranch {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            PoolBranch::Avg => avg_pool2d(x, 3, 1, 1)?,
            PoolBranch::AvgInsideOnly => avg_pool2d_inside_only(x, 3, 1, 1)?,
            // Zero padding is exact here: the input is a ReLU output (>= 0), so a padded zero
            // never exceeds a window's maximum.
            PoolBranch::Max => max_pool2d(&x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?, 3, 1)?,
        })
    }
}

/// One BasicConv2d of the architecture: name, channels, kernel `(kh, kw)`, stride, padding `(ph, pw)`.
#[derive(Clone, Debug)]
pub struct ConvSpec {
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    pub k: (usize, usize),
    pub stride: usize,
    pub pad: (usize, usize),
}

fn spec(name: String, cin: usize, cout: usize, k: (usize, usize), stride: usize, pad: (usize, usize)) -> ConvSpec {
    ConvSpec { name, cin, cout, k, stride, pad }
}

/// A conv + folded batch norm + ReLU.
struct BasicConv {
    conv: Conv2d,
    /// Non-square kernels (1x7, 3x1, ...) pad each axis themselves and use candle's conv.
    pad: (usize, usize),
    square: bool,
}

impl BasicConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if self.square {
            self.conv.forward(x)?
        } else {
            let (ph, pw) = self.pad;
            let xp = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
            let y = xp.conv2d(&self.conv.weight, 0, self.conv.stride, 1, 1)?;
            match &self.conv.bias {
                Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?,
                None => y,
            }
        };
        Ok(y.relu()?)
    }
}

/// The weights file: its tensors, checked against the specs as they are taken.
struct Weights {
    path: PathBuf,
    map: HashMap<String, Tensor>,
}

impl Weights {
    fn take(&self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .map
            .get(key)
            .ok_or_else(|| Error::file(&self.path, format!("missing key {key:?} (expected torchvision inception_v3 state_dict names)")))?;
        if t.dims() != shape {
            return Err(Error::file(&self.path, format!("key {key:?}: shape {:?}, expected {shape:?}", t.dims())));
        }
        Ok(t.to_dtype(DType::F32)?)
    }

    fn basic(&self, s: &ConvSpec) -> Result<BasicConv> {
        let (kh, kw) = s.k;
        let w = self.take(&format!("{}.conv.weight", s.name), &[s.cout, s.cin, kh, kw])?;
        let bn = |p: &str| self.take(&format!("{}.bn.{p}", s.name), &[s.cout]);
        let (gamma, beta, mean, var) = (bn("weight")?, bn("bias")?, bn("running_mean")?, bn("running_var")?);
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        let weight = w.broadcast_mul(&scale.reshape((s.cout, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?;
        let square = kh == kw && s.pad.0 == s.pad.1;
        Ok(BasicConv { conv: Conv2d::from_tensors(weight, Some(bias), s.stride, s.pad.0), pad: s.pad, square })
    }
}

/// The Inception blocks (torchvision's InceptionA..E), each a list of branches of convs.
enum Block {
    /// 1x1 | 1x1,5x5 | 1x1,3x3,3x3 | avgpool,1x1
    A([BasicConv; 7]),
    /// 3x3/2 | 1x1,3x3,3x3/2 | maxpool
    B([BasicConv; 4]),
    /// 1x1 | 1x1,1x7,7x1 | 1x1,7x1,1x7,7x1,1x7 | avgpool,1x1
    C([BasicConv; 10]),
    /// 1x1,3x3/2 | 1x1,1x7,7x1,3x3/2 | maxpool
    D([BasicConv; 6]),
    /// 1x1 | 1x1,(1x3|3x1) | 1x1,3x3,(1x3|3x1) | avgpool,1x1
    E([BasicConv; 9]),
}

fn chain(x: &Tensor, convs: &[BasicConv]) -> Result<Tensor> {
    convs.iter().try_fold(x.clone(), |h, c| c.forward(&h))
}

impl Block {
    fn forward(&self, x: &Tensor, pool_branch: PoolBranch) -> Result<Tensor> {
        let pool = |x: &Tensor| pool_branch.apply(x);
        let parts = match self {
            Block::A(c) => vec![c[0].forward(x)?, chain(x, &c[1..3])?, chain(x, &c[3..6])?, c[6].forward(&pool(x)?)?],
            Block::B(c) => vec![c[0].forward(x)?, chain(x, &c[1..4])?, max_pool2d(x, 3, 2)?],
            Block::C(c) => vec![c[0].forward(x)?, chain(x, &c[1..4])?, chain(x, &c[4..9])?, c[9].forward(&pool(x)?)?],
            Block::D(c) => vec![chain(x, &c[0..2])?, chain(x, &c[2..6])?, max_pool2d(x, 3, 2)?],
            Block::E(c) => {
                let b3 = c[1].forward(x)?;
                let d3 = chain(x, &c[4..6])?;
                vec![
                    c[0].forward(x)?,
                    Tensor::cat(&[c[2].forward(&b3)?, c[3].forward(&b3)?], 1)?,
                    Tensor::cat(&[c[6].forward(&d3)?, c[7].forward(&d3)?], 1)?,
                    c[8].forward(&pool(x)?)?,
                ]
            }
        };
        Ok(Tensor::cat(&parts, 1)?)
    }
}

/// The convs of one block, in the order [`Block`] uses them.
fn block_specs(kind: char, name: &str, cin: usize, c7: usize) -> Vec<ConvSpec> {
    let s = |b: &str, ci: usize, co: usize, k: (usize, usize), st: usize, p: (usize, usize)| spec(format!("{name}.{b}"), ci, co, k, st, p);
    match kind {
        'A' => vec![
            s("branch1x1", cin, 64, (1, 1), 1, (0, 0)),
            s("branch5x5_1", cin, 48, (1, 1), 1, (0, 0)),
            s("branch5x5_2", 48, 64, (5, 5), 1, (2, 2)),
            s("branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0)),
            s("branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
            s("branch3x3dbl_3", 96, 96, (3, 3), 1, (1, 1)),
            s("branch_pool", cin, c7, (1, 1), 1, (0, 0)), // c7 = pool_features here
        ],
        'B' => vec![
            s("branch3x3", cin, 384, (3, 3), 2, (0, 0)),
            s("branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0)),
            s("branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
            s("branch3x3dbl_3", 96, 96, (3, 3), 2, (0, 0)),
        ],
        'C' => vec![
            s("branch1x1", cin, 192, (1, 1), 1, (0, 0)),
            s("branch7x7_1", cin, c7, (1, 1), 1, (0, 0)),
            s("branch7x7_2", c7, c7, (1, 7), 1, (0, 3)),
            s("branch7x7_3", c7, 192, (7, 1), 1, (3, 0)),
            s("branch7x7dbl_1", cin, c7, (1, 1), 1, (0, 0)),
            s("branch7x7dbl_2", c7, c7, (7, 1), 1, (3, 0)),
            s("branch7x7dbl_3", c7, c7, (1, 7), 1, (0, 3)),
            s("branch7x7dbl_4", c7, c7, (7, 1), 1, (3, 0)),
            s("branch7x7dbl_5", c7, 192, (1, 7), 1, (0, 3)),
            s("branch_pool", cin, 192, (1, 1), 1, (0, 0)),
        ],
        'D' => vec![
            s("branch3x3_1", cin, 192, (1, 1), 1, (0, 0)),
            s("branch3x3_2", 192, 320, (3, 3), 2, (0, 0)),
            s("branch7x7x3_1", cin, 192, (1, 1), 1, (0, 0)),
            s("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
            s("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
            s("branch7x7x3_4", 192, 192, (3, 3), 2, (0, 0)),
        ],
        _ => vec![
            s("branch1x1", cin, 320, (1, 1), 1, (0, 0)),
            s("branch3x3_1", cin, 384, (1, 1), 1, (0, 0)),
            s("branch3x3_2a", 384, 384, (1, 3), 1, (0, 1)),
            s("branch3x3_2b", 384, 384, (3, 1), 1, (1, 0)),
            s("branch3x3dbl_1", cin, 448, (1, 1), 1, (0, 0)),
            s("branch3x3dbl_2", 448, 384, (3, 3), 1, (1, 1)),
            s("branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1)),
            s("branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0)),
            s("branch_pool", cin, 192, (1, 1), 1, (0, 0)),
        ],
    }
}

/// The stem convs, then the blocks `(kind, name, in channels, c7 / pool_features)`.
const STEM: [(&str, usize, usize, usize, usize, usize); 5] = [
    ("Conv2d_1a_3x3", 3, 32, 3, 2, 0),
    ("Conv2d_2a_3x3", 32, 32, 3, 1, 0),
    ("Conv2d_2b_3x3", 32, 64, 3, 1, 1),
    ("Conv2d_3b_1x1", 64, 80, 1, 1, 0),
    ("Conv2d_4a_3x3", 80, 192, 3, 1, 0),
];
const BLOCKS: [(char, &str, usize, usize); 11] = [
    ('A', "Mixed_5b", 192, 32),
    ('A', "Mixed_5c", 256, 64),
    ('A', "Mixed_5d", 288, 64),
    ('B', "Mixed_6a", 288, 0),
    ('C', "Mixed_6b", 768, 128),
    ('C', "Mixed_6c", 768, 160),
    ('C', "Mixed_6d", 768, 160),
    ('C', "Mixed_6e", 768, 192),
    ('D', "Mixed_7a", 768, 0),
    ('E', "Mixed_7b", 1280, 0),
    ('E', "Mixed_7c", 2048, 0),
];

/// Every BasicConv2d of the feature extractor, in forward order (what the weights file must hold).
pub fn conv_specs() -> Vec<ConvSpec> {
    let mut out: Vec<ConvSpec> = STEM.iter().map(|&(n, ci, co, k, s, p)| spec(n.to_string(), ci, co, (k, k), s, (p, p))).collect();
    for (kind, name, cin, c7) in BLOCKS {
        out.extend(block_specs(kind, name, cin, c7));
    }
    out
}

/// Every state-dict key the feature extractor reads, with its shape.
pub fn required_keys() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for s in conv_specs() {
        out.push((format!("{}.conv.weight", s.name), vec![s.cout, s.cin, s.k.0, s.k.1]));
        for p in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{}.bn.{p}", s.name), vec![s.cout]));
        }
    }
    out
}

pub struct InceptionV3 {
    stem: Vec<BasicConv>,
    blocks: Vec<Block>,
    pub variant: Variant,
    pub transform_input: bool,
    pub path: PathBuf,
}

/// `variant` and `transform_input` from the file's metadata (defaults: torchvision's, and true
/// as torchvision's pretrained model).
fn metadata_of(path: &Path, bytes: &[u8]) -> Result<(Variant, bool)> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| Error::file(path, format!("not a safetensors file ({e})")))?;
    let get = |key: &str| meta.metadata().as_ref().and_then(|m| m.get(key)).map(|s| s.as_str());
    let variant = match get(VARIANT_KEY) {
        None => Variant::Torchvision,
        Some(Variant::NVIDIA_2015_NAME) => Variant::Nvidia2015,
        Some(other) => {
            return Err(Error::file(
                path,
                format!("metadata {VARIANT_KEY} = {other:?}: expected {:?} or none (torchvision)", Variant::NVIDIA_2015_NAME),
            ))
        }
    };
    let transform_input = match get(TRANSFORM_INPUT_KEY) {
        None | Some("true") | Some("True") => true,
        Some("false") | Some("False") => false,
        Some(other) => return Err(Error::file(path, format!("metadata {TRANSFORM_INPUT_KEY} = {other:?}: expected true or false"))),
    };
    Ok((variant, transform_input))
}

impl InceptionV3 {
    /// Loads torchvision-layout weights from a `.safetensors` file; every error names the file
    /// (and the key).
    pub fn load(path: &Path, device: &Device) -> Result<InceptionV3> {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read the Inception-v3 weights: {e}")))?;
        let (variant, transform_input) = metadata_of(path, &bytes)?;
        let map = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| Error::file(path, format!("not a safetensors file ({e})")))?;
        let w = Weights { path: path.to_path_buf(), map };
        let specs = conv_specs();
        let stem = specs[..STEM.len()].iter().map(|s| w.basic(s)).collect::<Result<Vec<_>>>()?;
        let mut rest = specs[STEM.len()..].iter();
        let mut blocks = Vec::new();
        for (kind, name, cin, c7) in BLOCKS {
            let count = block_specs(kind, name, cin, c7).len();
            let convs = rest.by_ref().take(count).map(|s| w.basic(s)).collect::<Result<Vec<_>>>()?;
            let bad = |_| Error::msg(format!("inception: block {name} has the wrong number of convs"));
            blocks.push(match kind {
                'A' => Block::A(convs.try_into().map_err(bad)?),
                'B' => Block::B(convs.try_into().map_err(bad)?),
                'C' => Block::C(convs.try_into().map_err(bad)?),
                'D' => Block::D(convs.try_into().map_err(bad)?),
                _ => Block::E(convs.try_into().map_err(bad)?),
            });
        }
        Ok(InceptionV3 { stem, blocks, variant, transform_input, path: path.to_path_buf() })
    }

    /// Images in [-1, 1] (1 or 3 channels, any size) to the network's input `[B, 3, 299, 299]`.
    pub fn preprocess(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c, _, _) = x.dims4()?;
        let x = match c {
            3 => x.to_dtype(DType::F32)?,
            1 => x.to_dtype(DType::F32)?.repeat((1, 3, 1, 1))?,
            _ => return Err(Error::msg(format!("inception_v3: images with {c} channels (1 or 3 expected)"))),
        };
        match self.variant {
            Variant::Torchvision => self.preprocess_torchvision(&x),
            Variant::Nvidia2015 => {
                // uint8 as EDM's fid.py makes it: (x * 127.5 + 128).clip(0, 255).to(uint8)
                let v = ((x * 127.5)? + 128.0)?.clamp(0f32, 255f32)?.floor()?;
                let v = resize_bilinear_with(&v, INPUT_SIZE, INPUT_SIZE, SourceIndex::Legacy)?;
                Ok(((v - 128.0)? / 128.0)?)
            }
        }
    }

    fn preprocess_torchvision(&self, x: &Tensor) -> Result<Tensor> {
        let x = resize_bilinear(x, INPUT_SIZE, INPUT_SIZE)?;
        // [0, 1], ImageNet normalisation, then torchvision's transform_input: per channel affine
        let (mut scale, mut shift) = ([0f32; 3], [0f32; 3]);
        for ch in 0..3 {
            let (m, s) = (IMAGENET_MEAN[ch], IMAGENET_STD[ch]);
            // y = ((x + 1) / 2 - m) / s
            let (mut a, mut o) = (0.5 / s, (0.5 - m) / s);
            if self.transform_input {
                // y' = y * (s / 0.5) + (m - 0.5) / 0.5
                (a, o) = (a * s / 0.5, o * s / 0.5 + (m - 0.5) / 0.5);
            }
            (scale[ch], shift[ch]) = (a as f32, o as f32);
        }
        let dev = x.device();
        let scale = Tensor::from_vec(scale.to_vec(), (1, 3, 1, 1), dev)?;
        let shift = Tensor::from_vec(shift.to_vec(), (1, 3, 1, 1), dev)?;
        Ok(x.broadcast_mul(&scale)?.broadcast_add(&shift)?)
    }

    /// The 2048-d pool features of preprocessed input `[B, 3, 299, 299]`.
    pub fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, conv) in self.stem.iter().enumerate() {
            h = conv.forward(&h)?;
            if i == 2 || i == 4 {
                h = max_pool2d(&h, 3, 2)?; // maxpool1 after Conv2d_2b, maxpool2 after Conv2d_4a
            }
        }
        let last = self.blocks.len().saturating_sub(1);
        for (i, block) in self.blocks.iter().enumerate() {
            let pool = match self.variant {
                Variant::Torchvision => PoolBranch::Avg,
                Variant::Nvidia2015 if i == last => PoolBranch::Max,
                Variant::Nvidia2015 => PoolBranch::AvgInsideOnly,
            };
            h = block.forward(&h, pool)?;
        }
        Ok(h.mean(D::Minus1)?.mean(D::Minus1)?)
    }
}

impl FeatureExtractor for InceptionV3 {
    fn features_of(&self, images: &Tensor) -> Result<(Vec<f32>, usize)> {
        let n = images.dim(0)?;
        let mut out = Vec::with_capacity(n * FEATURE_DIM);
        for start in (0..n).step_by(CHUNK) {
            let x = self.preprocess(&images.narrow(0, start, CHUNK.min(n - start))?)?;
            out.extend(self.forward_features(&x)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok((out, FEATURE_DIM))
    }
}

#[cfg(test)]
mod tests;
