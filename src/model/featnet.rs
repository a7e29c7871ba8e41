//! A VGG-style feature network: stages of `Conv3x3 -> Norm -> ReLU`, 2x max-pooling between
//! stages; `forward` returns every stage's activation. It is the benchmark feature net of
//! `scripts/torch_reference.py` (channels 32/64/128/128, GroupNorm(8) or BatchNorm), and the
//! shape the phi network of method.md section 6 builds on: keep it generic (config in, features out).

use candle_core::{Module, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::{resample, Conv2d, GroupNorm, ParamBuilder};
use crate::Result;

/// The normalisation after each convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatNorm {
    /// GroupNorm with this many groups.
    Group(usize),
    /// BatchNorm in eval mode (running statistics; a per-channel affine map).
    BatchEval,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatNetConfig {
    pub in_channels: usize,
    /// Output channels of each stage; stages after the first see a 2x max-pooled input.
    pub channels: Vec<usize>,
    pub norm: FeatNorm,
}

impl Default for FeatNetConfig {
    fn default() -> Self {
        FeatNetConfig { in_channels: 1, channels: vec![32, 64, 128, 128], norm: FeatNorm::Group(8) }
    }
}

/// BatchNorm with frozen running statistics: `(x - mean) / sqrt(var + eps) * weight + bias`.
#[derive(Clone, Debug)]
pub struct BatchNormEval {
    pub scale: Tensor,
    pub shift: Tensor,
}

impl BatchNormEval {
    /// PyTorch's fresh BatchNorm2d (weight 1, bias 0, running mean 0, running var 1, eps 1e-5).
    pub fn new(pb: &ParamBuilder, channels: usize) -> Result<Self> {
        let weight = pb.constant("weight", &[channels], 1.0)?;
        let bias = pb.constant("bias", &[channels], 0.0)?;
        let (mean, var, eps) = (0.0, 1.0, 1e-5);
        let inv = 1.0 / f64::sqrt(var + eps);
        Ok(BatchNormEval { scale: (weight * inv)?, shift: (bias - mean * inv)? })
    }
}

impl Module for BatchNormEval {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        x.broadcast_mul(&self.scale.reshape((1, c, 1, 1))?)?.broadcast_add(&self.shift.reshape((1, c, 1, 1))?)
    }
}

#[derive(Clone, Debug)]
enum Norm {
    Group(GroupNorm),
    Batch(BatchNormEval),
    None,
}

pub struct FeatNet {
    stages: Vec<(Conv2d, Norm)>,
}

impl FeatNet {
    pub fn new(pb: &ParamBuilder, cfg: &FeatNetConfig) -> Result<Self> {
        if cfg.channels.is_empty() {
            return Err(crate::Error::msg("feature net: needs at least one stage"));
        }
        let mut cin = cfg.in_channels;
        let mut stages = Vec::new();
        for (i, &c) in cfg.channels.iter().enumerate() {
            let p = pb.pp(format!("stage{i}"));
            let conv = Conv2d::new(&p.pp("conv"), cin, c, 3, 1, 1, 1.0)?;
            let norm = match cfg.norm {
                FeatNorm::Group(g) => Norm::Group(GroupNorm::new(&p.pp("norm"), c, g)?),
                FeatNorm::BatchEval => Norm::Batch(BatchNormEval::new(&p.pp("norm"), c)?),
                FeatNorm::None => Norm::None,
            };
            stages.push((conv, norm));
            cin = c;
        }
        Ok(FeatNet { stages })
    }

    /// Detaches every parameter: gradients then flow to the input only (a frozen network).
    pub fn freeze(&mut self) {
        for (conv, norm) in &mut self.stages {
            conv.weight = conv.weight.detach();
            conv.bias = conv.bias.as_ref().map(|b| b.detach());
            match norm {
                Norm::Group(g) => {
                    g.weight = g.weight.detach();
                    g.bias = g.bias.detach();
                }
                Norm::Batch(b) => {
                    b.scale = b.scale.detach();
                    b.shift = b.shift.detach();
                }
                Norm::None => {}
            }
        }
    }

    /// Each stage's post-ReLU activation, shallowest first.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.stages.len());
        let mut h = x.clone();
        for (i, (conv, norm)) in self.stages.iter().enumerate() {
            if i > 0 {
                h = resample::max_pool2x(&h)?;
            }
            h = match norm {
                Norm::Group(g) => g.forward_act(&conv.forward(&h)?, crate::nn::norm::Act::Relu)?,
                // the eval BatchNorm is an affine map: folded into the convolution, ReLU fused
                Norm::Batch(b) => conv.fold_affine(&b.scale, &b.shift)?.forward_fused(&h, None, true)?,
                Norm::None => conv.forward_fused(&h, None, true)?,
            };
            out.push(h.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn feature_shapes_and_input_gradient() {
        for norm in [FeatNorm::Group(2), FeatNorm::BatchEval] {
            let cfg = FeatNetConfig { in_channels: 1, channels: vec![4, 4, 8], norm };
            let vm = VarMap::new();
            let pb = ParamBuilder::new(&vm, crate::rng::stream(2, "init"), &Device::Cpu, DType::F64);
            let mut net = FeatNet::new(&pb, &cfg).unwrap();
            net.freeze();
            let x = gradcheck::tests::randn(&[2, 1, 8, 8], 3);
            let f = net.forward(&x).unwrap();
            let dims: Vec<_> = f.iter().map(|t| t.dims().to_vec()).collect();
            assert_eq!(dims, vec![vec![2, 4, 8, 8], vec![2, 4, 4, 4], vec![2, 8, 2, 2]]);
            let g = gradcheck::check(
                &|ts: &[Tensor]| {
                    Tensor::cat(&net.forward(&ts[0])?.iter().map(|t| t.flatten_all()).collect::<candle_core::Result<Vec<_>>>()?, 0)
                },
                &[x],
                20,
                1e-6,
                4,
            )
            .unwrap();
            assert!(g.max_err < 1e-5, "{norm:?}: {}", g.max_err);
        }
    }
}
