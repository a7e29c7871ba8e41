//! Group normalisation (biased variance, as PyTorch), with an affine scale and shift.

use candle_core::{Module, Tensor};

pub use super::kernels::Act;
use super::kernels::{custom_ops_for, portable};
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
}

impl GroupNorm {
    /// `act(GroupNorm(x))`.
    pub fn forward_act(&self, x: &Tensor, act: Act) -> candle_core::Result<Tensor> {
        if custom_ops_for(x) {
            super::kernels::cpu::groupnorm::group_norm_act(x, &self.weight, &self.bias, self.groups, self.eps, act)
        } else {
            portable::group_norm_act(x, &self.weight, &self.bias, self.groups, self.eps, act)
        }
    }

    /// The same as `forward_act` by the portable kernel (the reference for the CPU kernel).
    pub fn forward_act_composite(&self, x: &Tensor, act: Act) -> candle_core::Result<Tensor> {
        portable::group_norm_act(x, &self.weight, &self.bias, self.groups, self.eps, act)
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_act(x, Act::Identity)
    }
}
