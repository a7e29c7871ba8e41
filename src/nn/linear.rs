//! Fully connected layer, `y = x W^T + b`.

use candle_core::{Module, Tensor};

use super::ParamBuilder;
use crate::Result;

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(pb: &ParamBuilder, din: usize, dout: usize, init_scale: f64) -> Result<Self> {
        let bound = 1.0 / (din as f64).sqrt();
        let weight = pb.uniform("weight", &[dout, din], bound * init_scale)?;
        let bias = pb.uniform("bias", &[dout], bound * init_scale)?;
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (dout, din) = self.weight.dims2()?;
        super::flops::add_matmul(x.elem_count() / din.max(1), dout, din);
        super::precision::product(x, &self.weight, |x, w| x.matmul(&w.t()?))?.broadcast_add(&self.bias)
    }
}
