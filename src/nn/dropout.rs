//! Dropout whose mask comes from the run's RNG: equal `Ctx` and layer id give equal masks.

use candle_core::Tensor;
use rand::Rng;

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
        let mut rng = crate::rng::substream(ctx.dropout_seed, "dropout", self.layer_id);
        let keep = 1.0 - self.p;
        let n = x.elem_count();
        let mask: Vec<f32> = (0..n).map(|_| if rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}
