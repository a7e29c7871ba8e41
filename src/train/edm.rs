//! The EDM pre-training objective (method.md 3): `t ~ exp(N(p_mean, p_std))`, the denoiser's
//! output at `x0 + t eps`, and `lambda(t) ||D - x0||^2` averaged over pixels and batch.

use rand_chacha::ChaCha8Rng;

use super::loss::{self, column, to_f32, Objective, StepInput};
use super::schedule;
use crate::config::{EdmConfig, SamplingConfig};
use crate::Result;

/// One batch's EDM loss; `t` is drawn from `rng`.
pub fn objective(input: &StepInput, cfg: &EdmConfig, sampling: &SamplingConfig, rng: &mut ChaCha8Rng) -> Result<Objective> {
    let b = input.x0.dim(0)?;
    let dev = input.x0.device();
    let t: Vec<f64> = (0..b).map(|_| schedule::lognormal(rng, cfg.p_mean, cfg.p_std)).collect();
    let lambda: Vec<f32> = t.iter().map(|&t| schedule::edm_weight(t, sampling.sigma_data) as f32).collect();
    let x_t = (input.x0 + input.eps.broadcast_mul(&column(&t, dev)?)?)?;
    let d = input.model.forward(&x_t, &to_f32(&t), &input.ctx)?;
    let l = loss::edm(&d, input.x0, &candle_core::Tensor::from_vec(lambda, b, dev)?)?;
    Ok(Objective { value: l.detach(), loss: l, mean_gap: 0.0 })
}
