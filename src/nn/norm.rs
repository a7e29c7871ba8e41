//! Group normalisation (biased variance, as PyTorch), with an affine scale and shift.

use candle_core::{Module, Tensor};

pub use super::kernels::Act;
use super::ParamBuilder;
use crate::Result;

#[derive(Clone, Debug)]
pub struct GroupNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub groups: usize,
    pub eps: f64,
}

impl GroupNorm {
    pub fn new(pb: &ParamBuilder, channels: usize, groups: usize) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(crate::Error::msg(format!("group norm: {channels} channels do not split into {groups} groups")));
        }
        Ok(GroupNorm { weight: pb.constant("weight", &[channels], 1.0)?, bias: pb.constant("bias", &[channels], 0.0)?, groups, eps: 1e-5 })
    }

    /// Normalise only (no affine), shared with layers that apply their own scale and shift.
    pub fn normalize(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let xg = x.reshape((b, self.groups, (c / self.groups) * h * w))?;
        let mean = xg.mean_keepdim(2)?;
        let centered = xg.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(2)?;
        let normed = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.reshape((b, c, h, w))
    }
}

impl GroupNorm {
    /// `act(GroupNorm(x))`.
    pub fn forward_act(&self, x: &Tensor, act: Act) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64) {
            super::kernels::cpu::groupnorm::group_norm_act(x, &self.weight, &self.bias, self.groups, self.eps, act)
        } else {
            self.forward_act_composite(x, act)
        }
    }

    /// The same as `forward_act`, written with candle's ops (the reference for the fused kernel).
    pub fn forward_act_composite(&self, x: &Tensor, act: Act) -> candle_core::Result<Tensor> {
        let y = self.forward_composite(x)?;
        match act {
            Act::Identity => Ok(y),
            Act::Silu => y.silu(),
            Act::Relu => y.relu(),
        }
    }

    fn forward_composite(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        let y = self.normalize(x)?;
        y.broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_act(x, Act::Identity)
    }
}
