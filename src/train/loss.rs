//! Per-sample losses on `D_t` (method.md sections 3 and 5), and what the training objectives
//! (`edm.rs`, `ect.rs`) share: their input and their result.

use candle_core::{Device, Tensor, D};

use crate::model::Denoiser;
use crate::nn::Ctx;
use crate::Result;

/// One step's batch for an objective: the model in training, clean images, their noise, and the
/// forward context (dropout seed).
pub struct StepInput<'a> {
    pub model: &'a Denoiser,
    pub x0: &'a Tensor,
    pub eps: &'a Tensor,
    pub ctx: Ctx,
}

/// What an objective gives the trainer.
pub struct Objective {
    /// The tensor to differentiate.
    pub loss: Tensor,
    /// The value to report (for the tangent-form losses, the weighted distance): a detached 0-d
    /// tensor on the device (f32, or f64 for the hybrid MFD loss), read to the host only when
    /// the trainer checks it (`train.readback_every`).
    pub value: Tensor,
    /// Mean `t - r` over the batch (ECT), or 0 (EDM).
    pub mean_gap: f64,
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// A [B,1,1,1] column from per-sample values.
pub fn column(v: &[f64], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_vec(to_f32(v), (v.len(), 1, 1, 1), device)
}

/// Per-sample squared L2 norm over C*H*W: [B].
pub fn sq_norm(x: &Tensor) -> candle_core::Result<Tensor> {
    x.sqr()?.flatten_from(1)?.sum(D::Minus1)
}

/// ECT consistency loss `mean_i w_i * (sqrt(||D_t - D_r||^2 + c^2) - c)`; `c = 0` is L2.
/// (With `c = 0` a 1e-20 floor keeps the gradient finite where `D_t = D_r`.)
pub fn consistency(d_t: &Tensor, d_r: &Tensor, w: &Tensor, c: f64) -> Result<Tensor> {
    let d2 = sq_norm(&(d_t - d_r)?)?;
    let dist = if c > 0.0 { ((d2 + c * c)?.sqrt()? - c)? } else { (d2 + 1e-20)?.sqrt()? };
    Ok(dist.mul(w)?.mean_all()?)
}

/// EDM denoising loss `lambda(t) ||D - x0||^2`, averaged over pixels and batch.
pub fn edm(d: &Tensor, x0: &Tensor, lambda: &Tensor) -> Result<Tensor> {
    let per_pixel = (d - x0)?.sqr()?.flatten_from(1)?.mean(D::Minus1)?;
    Ok(per_pixel.mul(lambda)?.mean_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{self, tests::randn};
    use candle_core::Device;

    #[test]
    fn l2_gradient_on_d_t_is_w_times_unit_direction_over_b() {
        let d_t = randn(&[3, 1, 2, 2], 1);
        let d_r = randn(&[3, 1, 2, 2], 2);
        let w = Tensor::new(&[1.0f64, 2.0, 0.5], &Device::Cpu).unwrap();
        let var = candle_core::Var::from_tensor(&d_t).unwrap();
        let loss = consistency(var.as_tensor(), &d_r, &w, 0.0).unwrap();
        let g = loss.backward().unwrap().get(var.as_tensor()).unwrap().clone();
        let diff = (&d_t - &d_r).unwrap();
        let norm = sq_norm(&diff).unwrap().sqrt().unwrap();
        let expect = diff
            .broadcast_div(&norm.reshape((3, 1, 1, 1)).unwrap())
            .unwrap()
            .broadcast_mul(&(w / 3.0).unwrap().reshape((3, 1, 1, 1)).unwrap())
            .unwrap();
        let err = (g - expect).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(err < 1e-12, "{err}");
    }

    #[test]
    fn losses_match_finite_differences() {
        let w = Tensor::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
        for c in [0.0, 0.3] {
            let f = |ts: &[Tensor]| consistency(&ts[0], &ts[1], &w, c).map_err(|e| candle_core::Error::Msg(e.to_string()));
            let g = gradcheck::check(&f, &[randn(&[2, 1, 3, 3], 3), randn(&[2, 1, 3, 3], 4)], 20, 1e-6, 5).unwrap();
            assert!(g.max_err < 1e-6, "c = {c}: {}", g.max_err);
        }
        let f = |ts: &[Tensor]| edm(&ts[0], &ts[1], &w).map_err(|e| candle_core::Error::Msg(e.to_string()));
        let g = gradcheck::check(&f, &[randn(&[2, 1, 3, 3], 6), randn(&[2, 1, 3, 3], 7)], 20, 1e-6, 8).unwrap();
        assert!(g.max_err < 1e-6, "edm: {}", g.max_err);
    }

    #[test]
    fn pseudo_huber_value() {
        // ||d|| = 5 (3-4 right triangle), c = 1: sqrt(26) - 1, weight 2, one sample.
        let d_t = Tensor::new(&[3.0f64, 4.0], &Device::Cpu).unwrap().reshape((1, 2)).unwrap();
        let d_r = d_t.zeros_like().unwrap();
        let w = Tensor::new(&[2.0f64], &Device::Cpu).unwrap();
        let v = consistency(&d_t, &d_r, &w, 1.0).unwrap().to_scalar::<f64>().unwrap();
        assert!((v - 2.0 * (26f64.sqrt() - 1.0)).abs() < 1e-12);
    }
}
