//! EDM's `SongUNet` in its DDPM++ configuration (Karras et al. 2022, `training/networks.py`;
//! the network of EDM's, ECT's and AYT's CIFAR-10 checkpoints), `model.arch = "ddpmpp"`:
//! positional noise embedding (endpoint frequencies, sin before cos), a two-layer mapping to
//! `channel_mult_emb * model_channels`; per level `num_blocks` residual blocks (GroupNorm with
//! `min(32, C/4)` groups and eps 1e-6, SiLU, 3x3 convs, the embedding added before the second
//! norm, dropout, skip scale `sqrt(1/2)`), 2x2 average-pool down / nearest up blocks with a 1x1
//! skip projection, single-head self-attention at `attn_levels` (and at the bottom's first
//! block), every encoder output kept as a skip, and the output head `conv(silu(norm(x)))`.
//! EDM's `map_augment` is left out: with augmentation labels of zero (sampling, and training
//! without augmentation) it adds nothing.
//!
//! Parameter names follow EDM's with each `NxN` resolution replaced by its level
//! (`enc.32x32_block0.conv0.weight` is `enc.0.block0.conv0.weight` at 32x32), so that
//! `scripts/convert_edm_checkpoint.py` only renames.

use candle_core::{Module, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::nn::norm::Act;
use crate::nn::precision::product;
use crate::nn::{fused, resample, Conv2d, Ctx, Dropout, GroupNorm, Linear, ParamBuilder};
use crate::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DdpmppConfig {
    pub model_channels: usize,
    /// Channel multiplier of each level (level i works at size / 2^i).
    pub channel_mult: Vec<usize>,
    pub channel_mult_emb: usize,
    pub num_blocks: usize,
    /// Levels with self-attention (EDM's `attn_resolutions = [16]` at 32x32 is level 1).
    pub attn_levels: Vec<usize>,
}

impl Default for DdpmppConfig {
    /// EDM's CIFAR-10 DDPM++ (`--arch=ddpmpp`).
    fn default() -> Self {
        DdpmppConfig { model_channels: 128, channel_mult: vec![2, 2, 2], channel_mult_emb: 4, num_blocks: 4, attn_levels: vec![1] }
    }
}

impl DdpmppConfig {
    pub fn is_default(&self) -> bool {
        *self == DdpmppConfig::default()
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.channel_mult.is_empty() || self.channel_mult.contains(&0) {
            return Err(format!("model.ddpmpp.channel_mult = {:?}: needs positive multipliers", self.channel_mult));
        }
        for (key, v) in [
            ("model.ddpmpp.model_channels", self.model_channels),
            ("model.ddpmpp.channel_mult_emb", self.channel_mult_emb),
            ("model.ddpmpp.num_blocks", self.num_blocks),
        ] {
            if v == 0 {
                return Err(format!("{key} = 0: must be at least 1"));
            }
        }
        if !self.model_channels.is_multiple_of(4) {
            return Err(format!("model.ddpmpp.model_channels = {}: must be a multiple of 4 (group norm)", self.model_channels));
        }
        if let Some(l) = self.attn_levels.iter().find(|l| **l >= self.channel_mult.len()) {
            return Err(format!("model.ddpmpp.attn_levels: level {l} does not exist ({} levels)", self.channel_mult.len()));
        }
        Ok(())
    }

    pub fn check_image_size(&self, size: usize) -> std::result::Result<(), String> {
        let div = 1usize << (self.channel_mult.len() - 1);
        if !size.is_multiple_of(div) {
            return Err(format!(
                "model.ddpmpp.channel_mult: {} levels need an image size divisible by {div}, the data is {size}",
                self.channel_mult.len()
            ));
        }
        Ok(())
    }
}

/// EDM's xavier-uniform init times `gain`, zero bias.
fn conv(pb: &ParamBuilder, cin: usize, cout: usize, k: usize, gain: f64) -> Result<Conv2d> {
    let bound = (6.0 / ((cin + cout) * k * k) as f64).sqrt() * gain;
    let weight = pb.uniform("weight", &[cout, cin, k, k], bound)?;
    Ok(Conv2d::from_tensors(weight, Some(pb.constant("bias", &[cout], 0.0)?), 1, k / 2))
}

fn linear(pb: &ParamBuilder, din: usize, dout: usize) -> Result<Linear> {
    let weight = pb.uniform("weight", &[dout, din], (6.0 / (din + dout) as f64).sqrt())?;
    Ok(Linear { weight, bias: pb.constant("bias", &[dout], 0.0)? })
}

fn norm(pb: &ParamBuilder, channels: usize) -> Result<GroupNorm> {
    let mut n = GroupNorm::new(pb, channels, 32.min(channels / 4))?;
    n.eps = 1e-6;
    Ok(n)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resample {
    None,
    Up,
    Down,
}

impl Resample {
    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Resample::None => Ok(x.clone()),
            Resample::Up => resample::upsample_nearest2x(x),
            Resample::Down => resample::avg_pool2x(x),
        }
    }
}

/// EDM's `UNetBlock` with `adaptive_scale=False`, `resample_proj=True`, one attention head.
struct Block {
    norm0: GroupNorm,
    conv0: Conv2d,
    affine: Linear,
    norm1: GroupNorm,
    dropout: Dropout,
    conv1: Conv2d,
    skip: Option<Conv2d>,
    attn: Option<(GroupNorm, Conv2d, Conv2d)>,
    resample: Resample,
}

const SKIP_SCALE: f64 = std::f64::consts::FRAC_1_SQRT_2;

impl Block {
    fn new(
        pb: &ParamBuilder,
        (cin, cout, emb): (usize, usize, usize),
        resample: Resample,
        attention: bool,
        dropout: Dropout,
    ) -> Result<Block> {
        let skip = (cin != cout || resample != Resample::None).then(|| conv(&pb.pp("skip"), cin, cout, 1, 1.0)).transpose()?;
        let attn = attention
            .then(|| -> Result<_> {
                Ok((
                    norm(&pb.pp("norm2"), cout)?,
                    conv(&pb.pp("qkv"), cout, 3 * cout, 1, 0.2f64.sqrt())?,
                    conv(&pb.pp("proj"), cout, cout, 1, 1e-5)?,
                ))
            })
            .transpose()?;
        Ok(Block {
            norm0: norm(&pb.pp("norm0"), cin)?,
            conv0: conv(&pb.pp("conv0"), cin, cout, 3, 1.0)?,
            affine: linear(&pb.pp("affine"), emb, cout)?,
            norm1: norm(&pb.pp("norm1"), cout)?,
            dropout,
            conv1: conv(&pb.pp("conv1"), cout, cout, 3, 1e-5)?,
            skip,
            attn,
            resample,
        })
    }

    fn forward(&self, x: &Tensor, emb: &Tensor, ctx: &Ctx) -> candle_core::Result<Tensor> {
        // the embedding's per-channel shift rides in conv0's bias (one pass on the CPU kernel)
        let shift = self.affine.forward(emb)?;
        let h = self.conv0.forward_fused(&self.resample.apply(&self.norm0.forward_act(x, Act::Silu)?)?, Some(&shift), false)?;
        let h = self.conv1.forward(&self.dropout.forward(&self.norm1.forward_act(&h, Act::Silu)?, ctx)?)?;
        let skip = match &self.skip {
            Some(s) => s.forward(&self.resample.apply(x)?)?,
            None => x.clone(),
        };
        let x = fused::add_scaled(&h, &skip, SKIP_SCALE)?;
        match &self.attn {
            Some((norm2, qkv, proj)) => {
                let a = proj.forward(&attention(&qkv.forward(&norm2.forward(&x)?)?)?)?;
                fused::add_scaled(&a, &x, SKIP_SCALE)
            }
            None => Ok(x),
        }
    }
}

/// One head over `qkv` [B, 3C, H, W] whose channels are EDM's `(c, q|k|v)` interleaving:
/// `softmax_k(q . k / sqrt(C))`, then the values weighted by it, as [B, C, H, W].
fn attention(qkv: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c3, h, w) = qkv.dims4()?;
    let c = c3 / 3;
    let qkv = qkv.reshape((b, c, 3, h * w))?;
    let part = |i: usize| qkv.narrow(2, i, 1)?.squeeze(2)?.contiguous();
    let (q, k, v) = (part(0)?, part(1)?, part(2)?);
    let matmul = |a: &Tensor, b: &Tensor| a.matmul(b);
    let logits = (product(&q.transpose(1, 2)?.contiguous()?, &k, matmul)? / (c as f64).sqrt())?; // [B, q, k]
    let weights = crate::nn::attention::softmax_last(&logits)?;
    product(&v, &weights.transpose(1, 2)?.contiguous()?, matmul)?.reshape((b, c, h, w))
    // [B, C, q]
}

#[allow(clippy::large_enum_variant)] // built once per model
enum Step {
    Conv(Conv2d),
    Block(Block),
}

pub struct SongUNet {
    freqs: Vec<f32>,
    map0: Linear,
    map1: Linear,
    encoder: Vec<Step>,
    /// Blocks of the decoder in order, each with whether it takes a skip first.
    decoder: Vec<(Block, bool)>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
}

impl SongUNet {
    pub fn new(pb: &ParamBuilder, cfg: &DdpmppConfig, dropout: f64, img_channels: usize) -> Result<SongUNet> {
        cfg.validate().map_err(crate::Error::msg)?;
        let (mc, levels) = (cfg.model_channels, cfg.channel_mult.len());
        let emb = mc * cfg.channel_mult_emb;
        let mut ids = 0u64;
        let mut drop = || {
            ids += 1;
            Dropout::new(dropout, ids)
        };
        let (enc, dec) = (pb.pp("enc"), pb.pp("dec"));
        let mut encoder = vec![Step::Conv(conv(&enc.pp("0.conv"), img_channels, mc, 3, 1.0)?)];
        let mut skips = vec![mc];
        let mut cout = mc;
        for (level, mult) in cfg.channel_mult.iter().enumerate() {
            if level > 0 {
                encoder.push(Step::Block(Block::new(&enc.pp(format!("{level}.down")), (cout, cout, emb), Resample::Down, false, drop())?));
                skips.push(cout);
            }
            for i in 0..cfg.num_blocks {
                let attn = cfg.attn_levels.contains(&level);
                let block = Block::new(&enc.pp(format!("{level}.block{i}")), (cout, mc * mult, emb), Resample::None, attn, drop())?;
                encoder.push(Step::Block(block));
                cout = mc * mult;
                skips.push(cout);
            }
        }
        let mut decoder = Vec::new();
        for (level, mult) in cfg.channel_mult.iter().enumerate().rev() {
            let p = dec.pp(level.to_string());
            if level == levels - 1 {
                decoder.push((Block::new(&p.pp("in0"), (cout, cout, emb), Resample::None, true, drop())?, false));
                decoder.push((Block::new(&p.pp("in1"), (cout, cout, emb), Resample::None, false, drop())?, false));
            } else {
                decoder.push((Block::new(&p.pp("up"), (cout, cout, emb), Resample::Up, false, drop())?, false));
            }
            for i in 0..=cfg.num_blocks {
                let cin = cout + skips.pop().ok_or_else(|| crate::Error::msg("songunet: skip bookkeeping"))?;
                let attn = i == cfg.num_blocks && cfg.attn_levels.contains(&level);
                decoder.push((Block::new(&p.pp(format!("block{i}")), (cin, mc * mult, emb), Resample::None, attn, drop())?, true));
                cout = mc * mult;
            }
        }
        let half = mc / 2;
        // EDM's PositionalEmbedding(endpoint=True): (1/10000)^(i / (half - 1))
        let freqs = (0..half).map(|i| (1e-4f64).powf(i as f64 / (half.max(2) - 1) as f64) as f32).collect();
        Ok(SongUNet {
            freqs,
            map0: linear(&pb.pp("map_layer0"), mc, emb)?,
            map1: linear(&pb.pp("map_layer1"), emb, emb)?,
            encoder,
            decoder,
            out_norm: norm(&dec.pp("0.aux_norm"), cout)?,
            out_conv: conv(&dec.pp("0.aux_conv"), cout, img_channels, 3, 1e-5)?,
        })
    }

    /// `F(x, c_noise)`: `x` [B,C,H,W], `c_noise` [B].
    pub fn forward(&self, x: &Tensor, c_noise: &Tensor, ctx: &Ctx) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        let freqs = Tensor::from_slice(&self.freqs, (1, self.freqs.len()), x.device())?.to_dtype(x.dtype())?;
        let arg = c_noise.to_dtype(x.dtype())?.reshape((b, 1))?.broadcast_mul(&freqs)?;
        let emb = Tensor::cat(&[arg.sin()?, arg.cos()?], D::Minus1)?; // EDM swaps to sin, cos
        let emb = self.map1.forward(&self.map0.forward(&emb)?.silu()?)?.silu()?;
        let mut h = x.clone();
        let mut skips = Vec::with_capacity(self.encoder.len());
        for step in &self.encoder {
            h = match step {
                Step::Conv(c) => c.forward(&h)?,
                Step::Block(blk) => blk.forward(&h, &emb, ctx)?,
            };
            skips.push(h.clone());
        }
        for (blk, takes_skip) in &self.decoder {
            if *takes_skip {
                let skip = skips.pop().ok_or_else(|| candle_core::Error::Msg("songunet: skip stack empty".into()))?;
                h = crate::nn::fused::cat_channels(&h, &skip)?;
            }
            h = blk.forward(&h, &emb, ctx)?;
        }
        self.out_conv.forward(&self.out_norm.forward_act(&h, Act::Silu)?)
    }
}

#[cfg(test)]
mod tests;
