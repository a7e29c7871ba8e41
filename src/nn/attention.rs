//! Self-attention over spatial positions (EDM DDPM++ style: GroupNorm, 1x1 qkv, 1x1 projection).
//! The softmax is built from differentiable ops (candle's `softmax_last_dim` has no backward).

use candle_core::{Module, Tensor, D};

use super::precision::product;
use super::{Conv2d, GroupNorm, ParamBuilder};
use crate::Result;

#[derive(Clone, Debug)]
pub struct SelfAttention {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
    heads: usize,
}

/// Softmax over the last dimension, with the max subtracted (as a constant) for stability.
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

impl SelfAttention {
    pub fn new(pb: &ParamBuilder, channels: usize, groups: usize, heads: usize) -> Result<Self> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            return Err(crate::Error::msg(format!("attention: {channels} channels do not split into {heads} heads")));
        }
        Ok(SelfAttention {
            norm: GroupNorm::new(&pb.pp("norm"), channels, groups)?,
            qkv: Conv2d::new(&pb.pp("qkv"), channels, 3 * channels, 1, 1, 0, 1.0)?,
            proj: Conv2d::new(&pb.pp("proj"), channels, channels, 1, 1, 0, 0.0)?,
            heads,
        })
    }
}

impl Module for SelfAttention {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let d = c / self.heads;
        let qkv = self.qkv.forward(&self.norm.forward(x)?)?.reshape((b, 3, self.heads, d, h * w))?;
        let q = qkv.narrow(1, 0, 1)?.squeeze(1)?.reshape((b * self.heads, d, h * w))?;
        let k = qkv.narrow(1, 1, 1)?.squeeze(1)?.reshape((b * self.heads, d, h * w))?;
        let v = qkv.narrow(1, 2, 1)?.squeeze(1)?.reshape((b * self.heads, d, h * w))?;
        // weights[q_pos, k_pos]
        let matmul = |a: &Tensor, b: &Tensor| a.matmul(b);
        let logits = (product(&q.transpose(1, 2)?.contiguous()?, &k.contiguous()?, matmul)? / (d as f64).sqrt())?;
        let attn = softmax_last(&logits)?;
        let out = product(&v.contiguous()?, &attn.transpose(1, 2)?.contiguous()?, matmul)?.reshape((b, c, h, w))?;
        x + self.proj.forward(&out)?
    }
}
