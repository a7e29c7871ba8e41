//! Dropout whose mask is a function of the run's dropout seed, the layer and the element
//! (`kernels::cpu::dropout::Mask`): equal `Ctx` and layer id give equal masks on every device.

use candle_core::Tensor;

use super::kernels::cpu::dropout::{self, Mask};
use super::kernels::{custom_ops_for, portable};
use super::Ctx;

#[derive(Clone, Debug)]
pub struct Dropout {
    pub p: f64,
    /// Distinguishes this layer's mask from the other dropout layers' in one forward.
    pub layer_id: u64,
}

impl Dropout {
    pub fn new(p: f64, layer_id: u64) -> Self {
        Dropout { p, layer_id }
    }

    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> candle_core::Result<Tensor> {
        if !ctx.train || self.p <= 0.0 {
            return Ok(x.clone());
        }
        let mask = Mask::new(ctx.dropout_seed, self.layer_id, self.p);
        if custom_ops_for(x) {
            dropout::dropout(x, mask)
        } else {
            portable::dropout(x, &mask)
        }
    }
}
