//! The EDM "DDPM++"-family UNet `F(x, c_noise)` (method.md section 2): residual blocks
//! `GroupNorm -> SiLU -> Conv3x3`, a positional noise embedding injected per channel, encoder to
//! decoder skips, optional self-attention, dropout. Sizes come from the preset.

use candle_core::{Module, Tensor};
use serde::{Deserialize, Serialize};

use super::songunet::DdpmppConfig;
use crate::nn::norm::Act;
use crate::nn::{resample, Conv2d, Ctx, Dropout, GroupNorm, Linear, ParamBuilder, SelfAttention};
use crate::Result;

/// How the noise embedding enters a residual block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbMode {
    /// `GN(h) * (1 + scale) + shift` (EDM DDPM++ with adaptive scale).
    ScaleShift,
    /// `h + shift` before the second norm (the PyTorch benchmark model).
    Shift,
}

/// Which network: this module's configurable UNet, or EDM's DDPM++ (`super::songunet`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UNetArch {
    #[default]
    Unet,
    Ddpmpp,
}

impl UNetArch {
    fn is_unet(&self) -> bool {
        *self == UNetArch::Unet
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UNetConfig {
    // Left out of a written preset at their defaults, so that a run of this UNet reads as before.
    #[serde(skip_serializing_if = "UNetArch::is_unet")]
    pub arch: UNetArch,
    /// EDM's DDPM++ sizes (`arch = "ddpmpp"`; the fields above and below, except `dropout`, are
    /// this module's UNet's).
    #[serde(skip_serializing_if = "DdpmppConfig::is_default")]
    pub ddpmpp: DdpmppConfig,
    /// Channels at each resolution level (level i works at size / 2^i).
    pub channels: Vec<usize>,
    pub blocks_per_level: usize,
    pub emb_dim: usize,
    /// Number of positional frequencies (the embedding input is cos and sin of each).
    pub noise_freqs: usize,
    /// Levels whose blocks are followed by self-attention (e.g. `[1]`).
    pub attention_levels: Vec<usize>,
    pub attention_heads: usize,
    pub dropout: f64,
    pub groups: usize,
    pub emb_mode: EmbMode,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig {
            arch: UNetArch::Unet,
            ddpmpp: DdpmppConfig::default(),
            channels: vec![32, 64],
            blocks_per_level: 2,
            emb_dim: 128,
            noise_freqs: 16,
            attention_levels: vec![],
            attention_heads: 1,
            dropout: 0.0,
            groups: 8,
            emb_mode: EmbMode::ScaleShift,
        }
    }
}

impl UNetConfig {
    /// Range checks naming the key and the value.
    pub fn validate(&self) -> std::result::Result<(), String> {
        // its ranges first, whichever the arch: a bad value is named as such
        self.ddpmpp.validate()?;
        if self.arch == UNetArch::Ddpmpp {
            return self.validate_ddpmpp();
        }
        if self.ddpmpp != DdpmppConfig::default() {
            return Err("[model.ddpmpp] is used only by model.arch = \"ddpmpp\"; set that, or remove the table".into());
        }
        if self.channels.is_empty() {
            return Err("model.channels = []: needs at least one level".into());
        }
        if self.groups == 0 {
            return Err("model.groups = 0: must be at least 1".into());
        }
        if let Some(c) = self.channels.iter().find(|c| **c == 0 || **c % self.groups != 0) {
            return Err(format!("model.channels: {c} is not a positive multiple of model.groups = {}", self.groups));
        }
        for (key, v) in
            [("model.blocks_per_level", self.blocks_per_level), ("model.noise_freqs", self.noise_freqs), ("model.emb_dim", self.emb_dim)]
        {
            if v == 0 {
                return Err(format!("{key} = 0: must be at least 1"));
            }
        }
        if self.attention_heads == 0 {
            return Err("model.attention_heads = 0: must be at least 1".into());
        }
        if let Some(l) = self.attention_levels.iter().find(|l| **l >= self.channels.len()) {
            return Err(format!("model.attention_levels: level {l} does not exist ({} levels)", self.channels.len()));
        }
        if let Some(l) = self.attention_levels.iter().find(|l| !self.channels[**l].is_multiple_of(self.attention_heads)) {
            return Err(format!(
                "model.attention_heads = {}: must divide the {} channels of attention level {l}",
                self.attention_heads, self.channels[*l]
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("model.dropout = {}: must be in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// `arch = "ddpmpp"`: its own table, and none of this UNet's sizes set (they would do nothing).
    fn validate_ddpmpp(&self) -> std::result::Result<(), String> {
        let d = UNetConfig::default();
        let unused = [
            ("model.channels", self.channels != d.channels),
            ("model.blocks_per_level", self.blocks_per_level != d.blocks_per_level),
            ("model.emb_dim", self.emb_dim != d.emb_dim),
            ("model.noise_freqs", self.noise_freqs != d.noise_freqs),
            ("model.attention_levels", self.attention_levels != d.attention_levels),
            ("model.attention_heads", self.attention_heads != d.attention_heads),
            ("model.groups", self.groups != d.groups),
        ];
        if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
            return Err(format!("{key} is not used by model.arch = \"ddpmpp\" (its sizes are in [model.ddpmpp]); remove {key}"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("model.dropout = {}: must be in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// The image side must halve cleanly at every level.
    pub fn check_image_size(&self, size: usize) -> std::result::Result<(), String> {
        if self.arch == UNetArch::Ddpmpp {
            return self.ddpmpp.check_image_size(size);
        }
        let div = 1usize << (self.channels.len() - 1);
        if !size.is_multiple_of(div) {
            return Err(format!(
                "model.channels: {} levels need an image size divisible by {div}, the data is {size}",
                self.channels.len()
            ));
        }
        Ok(())
    }
}

struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    emb: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    skip: Option<Conv2d>,
    attn: Option<SelfAttention>,
    mode: EmbMode,
}

impl ResBlock {
    fn new(pb: &ParamBuilder, cfg: &UNetConfig, cin: usize, cout: usize, attn: bool, id: u64) -> Result<Self> {
        let emb_out = if cfg.emb_mode == EmbMode::ScaleShift { 2 * cout } else { cout };
        Ok(ResBlock {
            norm1: GroupNorm::new(&pb.pp("norm1"), cin, cfg.groups)?,
            conv1: Conv2d::new(&pb.pp("conv1"), cin, cout, 3, 1, 1, 1.0)?.with_winograd(),
            emb: Linear::new(&pb.pp("emb"), cfg.emb_dim, emb_out, 1.0)?,
            norm2: GroupNorm::new(&pb.pp("norm2"), cout, cfg.groups)?,
            dropout: Dropout::new(cfg.dropout, id),
            conv2: Conv2d::new(&pb.pp("conv2"), cout, cout, 3, 1, 1, 1.0)?.with_winograd(),
            skip: if cin != cout { Some(Conv2d::new(&pb.pp("skip"), cin, cout, 1, 1, 0, 1.0)?.with_winograd()) } else { None },
            attn: if attn { Some(SelfAttention::new(&pb.pp("attn"), cout, cfg.groups, cfg.attention_heads)?) } else { None },
            mode: cfg.emb_mode,
        })
    }

    fn forward(&self, x: &Tensor, emb: &Tensor, ctx: &Ctx) -> candle_core::Result<Tensor> {
        let a = self.norm1.forward_act(x, Act::Silu)?;
        let e = self.emb.forward(emb)?;
        let h = match self.mode {
            EmbMode::ScaleShift => {
                let h = self.conv1.forward(&a)?;
                let (b, c, _, _) = h.dims4()?;
                let scale = e.narrow(1, 0, c)?.reshape((b, c, 1, 1))?;
                let shift = e.narrow(1, c, c)?.reshape((b, c, 1, 1))?;
                self.norm2.forward(&h)?.broadcast_mul(&(scale + 1.0)?)?.broadcast_add(&shift)?.silu()?
            }
            // the embedding is a per-sample bias of conv1: no pass of its own over h
            EmbMode::Shift => self.norm2.forward_act(&self.conv1.forward_fused(&a, Some(&e), false)?, Act::Silu)?,
        };
        let h = self.conv2.forward(&self.dropout.forward(&h, ctx)?)?;
        let skip = match &self.skip {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        let out = crate::nn::fused::add_scaled(&h, &skip, std::f64::consts::FRAC_1_SQRT_2)?;
        match &self.attn {
            Some(a) => a.forward(&out),
            None => Ok(out),
        }
    }
}

#[allow(clippy::large_enum_variant)] // built once per model
enum Step {
    Block(ResBlock),
    Down(Conv2d),
}

pub struct UNet {
    freqs: Vec<f32>,
    emb1: Linear,
    emb2: Linear,
    conv_in: Conv2d,
    encoder: Vec<Step>,
    mid: Vec<ResBlock>,
    /// Per level, deepest first: the blocks, then the upsampling conv (none at level 0).
    decoder: Vec<(Vec<ResBlock>, Option<Conv2d>)>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet {
    pub fn new(pb: &ParamBuilder, cfg: &UNetConfig, img_channels: usize) -> Result<Self> {
        cfg.validate().map_err(crate::Error::msg)?;
        let half = cfg.noise_freqs;
        let freqs = (0..half).map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp() as f32).collect();
        let c0 = cfg.channels[0];
        let levels = cfg.channels.len();
        let mut id = 0u64;
        let mut next_id = || {
            id += 1;
            id
        };
        let mut encoder = Vec::new();
        let mut skip_ch = vec![c0];
        let mut cin = c0;
        for (level, &ch) in cfg.channels.iter().enumerate() {
            let attn = cfg.attention_levels.contains(&level);
            for i in 0..cfg.blocks_per_level {
                encoder.push(Step::Block(ResBlock::new(&pb.pp(format!("enc{level}.{i}")), cfg, cin, ch, attn, next_id())?));
                cin = ch;
                skip_ch.push(ch);
            }
            if level + 1 < levels {
                encoder.push(Step::Down(Conv2d::new(&pb.pp(format!("down{level}")), ch, ch, 3, 2, 1, 1.0)?.with_winograd()));
                skip_ch.push(ch);
            }
        }
        let last = *cfg.channels.last().unwrap_or(&c0);
        let mid_attn = cfg.attention_levels.contains(&(levels - 1));
        let mid = (0..2)
            .map(|i| ResBlock::new(&pb.pp(format!("mid.{i}")), cfg, last, last, mid_attn && i == 0, next_id()))
            .collect::<Result<Vec<_>>>()?;
        let mut decoder = Vec::new();
        for level in (0..levels).rev() {
            let ch = cfg.channels[level];
            let attn = cfg.attention_levels.contains(&level);
            let mut blocks = Vec::new();
            for i in 0..=cfg.blocks_per_level {
                let skip = skip_ch.pop().ok_or_else(|| crate::Error::msg("unet: skip bookkeeping"))?;
                blocks.push(ResBlock::new(&pb.pp(format!("dec{level}.{i}")), cfg, cin + skip, ch, attn, next_id())?);
                cin = ch;
            }
            let up = if level > 0 { Some(Conv2d::new(&pb.pp(format!("up{level}")), ch, ch, 3, 1, 1, 1.0)?.with_winograd()) } else { None };
            decoder.push((blocks, up));
        }
        Ok(UNet {
            freqs,
            emb1: Linear::new(&pb.pp("emb1"), 2 * half, cfg.emb_dim, 1.0)?,
            emb2: Linear::new(&pb.pp("emb2"), cfg.emb_dim, cfg.emb_dim, 1.0)?,
            conv_in: Conv2d::new(&pb.pp("conv_in"), img_channels, c0, 3, 1, 1, 1.0)?.with_winograd(),
            encoder,
            mid,
            decoder,
            norm_out: GroupNorm::new(&pb.pp("norm_out"), cin, cfg.groups)?,
            conv_out: Conv2d::new(&pb.pp("conv_out"), cin, img_channels, 3, 1, 1, 1.0)?.with_winograd(),
        })
    }

    /// `F(x, c_noise)`: `x` [B,C,H,W], `c_noise` [B].
    pub fn forward(&self, x: &Tensor, c_noise: &Tensor, ctx: &Ctx) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        let freqs = Tensor::from_slice(&self.freqs, (1, self.freqs.len()), x.device())?.to_dtype(x.dtype())?;
        let arg = c_noise.to_dtype(x.dtype())?.reshape((b, 1))?.broadcast_mul(&freqs)?;
        let emb = Tensor::cat(&[arg.cos()?, arg.sin()?], 1)?;
        let emb = self.emb2.forward(&self.emb1.forward(&emb)?.silu()?)?.silu()?;

        let mut h = self.conv_in.forward(x)?;
        let mut skips = vec![h.clone()];
        for step in &self.encoder {
            h = match step {
                Step::Block(blk) => blk.forward(&h, &emb, ctx)?,
                Step::Down(conv) => conv.forward(&h)?,
            };
            skips.push(h.clone());
        }
        for blk in &self.mid {
            h = blk.forward(&h, &emb, ctx)?;
        }
        for (blocks, up) in &self.decoder {
            for blk in blocks {
                let skip = skips.pop().ok_or_else(|| candle_core::Error::Msg("unet: skip stack empty".into()))?;
                h = blk.forward(&crate::nn::fused::cat_channels(&h, &skip)?, &emb, ctx)?;
            }
            if let Some(conv) = up {
                h = conv.forward(&resample::upsample_nearest2x(&h)?)?;
            }
        }
        self.conv_out.forward(&self.norm_out.forward_act(&h, Act::Silu)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn tiny() -> UNetConfig {
        UNetConfig {
            arch: UNetArch::Unet,
            ddpmpp: DdpmppConfig::default(),
            channels: vec![4, 8],
            blocks_per_level: 1,
            emb_dim: 8,
            noise_freqs: 2,
            attention_levels: vec![1],
            attention_heads: 2,
            dropout: 0.0,
            groups: 2,
            emb_mode: EmbMode::ScaleShift,
        }
    }

    #[test]
    fn benchmark_architecture_has_the_reference_parameter_count() {
        // scripts/torch_reference.py's UNet: channels 32/64, two blocks, shift embedding.
        let cfg = UNetConfig { emb_mode: EmbMode::Shift, ..UNetConfig::default() };
        let vm = VarMap::new();
        let pb = ParamBuilder::new(&vm, crate::rng::stream(0, "init"), &Device::Cpu, DType::F32);
        UNet::new(&pb, &cfg, 1).unwrap();
        let n: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        // Counted from the PyTorch module definition (sum of p.numel()).
        assert_eq!(n, 901_121, "parameter count differs from the PyTorch reference model");
    }

    #[test]
    fn unet_output_shape_and_input_gradient() {
        for mode in [EmbMode::ScaleShift, EmbMode::Shift] {
            let cfg = UNetConfig { emb_mode: mode, ..tiny() };
            let vm = VarMap::new();
            let pb = ParamBuilder::new(&vm, crate::rng::stream(1, "init"), &Device::Cpu, DType::F64);
            let unet = UNet::new(&pb, &cfg, 1).unwrap();
            let x = gradcheck::tests::randn(&[2, 1, 4, 4], 3);
            let c = Tensor::new(&[0.1f64, -0.7], &Device::Cpu).unwrap();
            let y = unet.forward(&x, &c, &Ctx::eval()).unwrap();
            assert_eq!(y.dims(), &[2, 1, 4, 4]);
            let f = |ts: &[Tensor]| unet.forward(&ts[0], &c, &Ctx::eval());
            let g = gradcheck::check(&f, &[x], 12, 1e-5, 4).unwrap();
            assert!(g.max_err < 1e-6, "{mode:?}: UNet input gradient error {}", g.max_err);
        }
    }

    #[test]
    fn same_dropout_seed_gives_same_output_and_different_seed_differs() {
        let cfg = UNetConfig { dropout: 0.5, ..tiny() };
        let vm = VarMap::new();
        let pb = ParamBuilder::new(&vm, crate::rng::stream(1, "init"), &Device::Cpu, DType::F32);
        let unet = UNet::new(&pb, &cfg, 1).unwrap();
        let x = gradcheck::tests::randn(&[2, 1, 4, 4], 3).to_dtype(DType::F32).unwrap();
        let c = Tensor::new(&[0.1f32, -0.7], &Device::Cpu).unwrap();
        let run = |seed| unet.forward(&x, &c, &Ctx::train(seed)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
