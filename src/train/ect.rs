//! The ECT objective (method.md 4-5). Per sample: `t ~ exp(N(p_mean, p_std))` clamped to
//! `[sigma_min, sigma_max]`, `r = ect_r(t, stage)`, weight `1 / (t - r)`, and the target
//! `stopgrad(D(x0 + r eps, r))` (the clean image where `r <= 0`; the same dropout mask as the
//! `t` pass). The loss on `D_t - D_r` is pseudo-Huber (L2 at `c = 0`), or a frozen feature
//! distance in normalised-tangent form (LPIPS, MFD), or the hybrid
//! `pixel + lambda * ramp * MFD` with `ramp = min(1, (step + 1) / n_rampup)`.

use candle_core::{DType, Tensor};
use rand_chacha::ChaCha8Rng;

use super::loss::{self, column, to_f32, Objective, StepInput};
use super::{schedule, tangent};
use crate::config::{LossKind, Preset};
use crate::model::{Denoiser, FeatureDistance};
use crate::nn::Ctx;
use crate::{Error, Result};

/// One batch's ECT loss at `stage`; `step` is the number of steps taken before this one (for the
/// MFD ramp). `t` is drawn from `rng`; `distance` is the loss's frozen network, if it has one.
pub fn objective(
    input: &StepInput,
    preset: &Preset,
    stage: u64,
    step: u64,
    distance: Option<&dyn FeatureDistance>,
    rng: &mut ChaCha8Rng,
) -> Result<Objective> {
    let (e, s) = (&preset.ect, &preset.sampling);
    let (b, c, h, w) = input.x0.dims4()?;
    let dev = input.x0.device();
    let t: Vec<f64> = (0..b).map(|_| schedule::lognormal(rng, e.p_mean, e.p_std).clamp(s.sigma_min, s.sigma_max)).collect();
    let r: Vec<f64> = t.iter().map(|&t| schedule::ect_r(t, stage, e)).collect();
    let x_t = (input.x0 + input.eps.broadcast_mul(&column(&t, dev)?)?)?;
    let d_t = input.model.forward(&x_t, &to_f32(&t), &input.ctx)?;
    let d_r = target_at_r(input.model, input.x0, input.eps, &r, s.sigma_min, &input.ctx)?;
    let weight: Vec<f32> = t.iter().zip(&r).map(|(t, r)| (1.0 / (t - r)) as f32).collect();
    let huber_c = match preset.train.loss {
        LossKind::L2 | LossKind::Lpips => 0.0,
        // the pixel term of a hybrid MFD loss is pseudo-Huber too
        LossKind::PseudoHuber | LossKind::Mfd => preset.train.c_mult * ((c * h * w) as f64).sqrt(),
    };
    let mean_gap = t.iter().zip(&r).map(|(t, r)| t - r).sum::<f64>() / b as f64;
    let weight = Tensor::from_vec(weight, b, dev)?;
    let (loss, value) = consistency_loss(preset, step, &d_t, &d_r, &weight, huber_c, distance)?;
    Ok(Objective { loss, value, mean_gap })
}

/// The loss on `(D_t, D_r)` with per-sample weights `w`: the tensor to differentiate, and the
/// value to report (they differ for the normalised-tangent form), a detached 0-d tensor: nothing
/// is read to the host here.
fn consistency_loss(
    preset: &Preset,
    step: u64,
    d_t: &Tensor,
    d_r: &Tensor,
    w: &Tensor,
    huber_c: f64,
    distance: Option<&dyn FeatureDistance>,
) -> Result<(Tensor, Tensor)> {
    let tangent_form = |missing: &str| -> Result<(Tensor, Tensor)> {
        let dist = distance.ok_or_else(|| Error::msg(missing.to_string()))?;
        let tl = tangent::tangent_loss(dist, d_t, d_r, w)?;
        Ok((tl.surrogate, tl.weighted_distance.detach()))
    };
    match preset.train.loss {
        LossKind::L2 | LossKind::PseudoHuber => {
            let l = loss::consistency(d_t, d_r, w, huber_c)?;
            let v = l.detach();
            Ok((l, v))
        }
        LossKind::Lpips => tangent_form("train.loss = \"lpips\" but LPIPS was not loaded"),
        LossKind::Mfd => {
            let (surrogate, reported) = tangent_form("train.loss = \"mfd\" but no feature network was loaded")?;
            let Some(lambda) = preset.mfd.lambda else { return Ok((surrogate, reported)) };
            let ramp = match preset.mfd.n_rampup {
                0 => 1.0,
                n => ((step + 1) as f64 / n as f64).min(1.0),
            };
            let pixel = loss::consistency(d_t, d_r, w, huber_c)?;
            // in f64, as `pixel_value + lambda * ramp * reported` was on the host
            let f64_of = |t: &Tensor| t.detach().to_dtype(DType::F64);
            let value = (f64_of(&pixel)? + (f64_of(&reported)? * (lambda * ramp))?)?;
            Ok(((pixel + (surrogate * (lambda * ramp))?)?, value))
        }
    }
}

/// `stopgrad(D(x0 + r eps, max(r, sigma_min)))`, and `x0` where `r <= 0`, with the context
/// (dropout mask) of the `t` pass. Probes use it too, so they measure the loss training sees.
pub fn target_at_r(model: &Denoiser, x0: &Tensor, eps: &Tensor, r: &[f64], sigma_min: f64, ctx: &Ctx) -> Result<Tensor> {
    if r.iter().all(|&r| r <= 0.0) {
        return Ok(x0.clone());
    }
    let dev = x0.device();
    let r_eval: Vec<f64> = r.iter().map(|&r| r.max(sigma_min)).collect();
    let x_r = (x0 + eps.broadcast_mul(&column(r, dev)?)?)?;
    let d_r = model.forward(&x_r, &to_f32(&r_eval), ctx)?.detach();
    let keep: Vec<f64> = r.iter().map(|&r| if r > 0.0 { 1.0 } else { 0.0 }).collect();
    let keep = column(&keep, dev)?;
    Ok((d_r.broadcast_mul(&keep)? + x0.broadcast_mul(&(1.0 - keep)?)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::tests::randn;
    use candle_core::Device;

    /// A toy feature distance: the squared L2 distance.
    struct Squares;
    impl FeatureDistance for Squares {
        fn distance(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
            Ok(loss::sq_norm(&(x - y)?)?)
        }
        fn name(&self) -> String {
            "squares".into()
        }
    }

    #[test]
    fn the_reported_values_stay_on_the_device_and_the_hybrid_sums_in_f64() {
        let mut p = crate::train::trainer::tests::tiny_preset("ect", 4);
        let f32_of = |t: Tensor| t.to_dtype(DType::F32).unwrap();
        let (d_t, d_r) = (f32_of(randn(&[3, 1, 4, 4], 1)), f32_of(randn(&[3, 1, 4, 4], 2)));
        let w = Tensor::new(&[1.0f32, 2.0, 0.5], &Device::Cpu).unwrap();
        let host = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
        let (c, dist) = (0.01, Some(&Squares as &dyn FeatureDistance));
        let pixel = host(&loss::consistency(&d_t, &d_r, &w, c).unwrap());
        p.train.loss = LossKind::PseudoHuber;
        let (_, v) = consistency_loss(&p, 2, &d_t, &d_r, &w, c, None).unwrap();
        assert_eq!((v.dims(), host(&v)), (&[][..], pixel));
        let mfd = host(&tangent::tangent_loss(&Squares, &d_t, &d_r, &w).unwrap().weighted_distance);
        p.train.loss = LossKind::Mfd;
        let (_, v) = consistency_loss(&p, 2, &d_t, &d_r, &w, c, dist).unwrap();
        assert_eq!((v.dtype(), host(&v)), (DType::F32, mfd), "MFD alone reports its weighted distance");
        (p.mfd.lambda, p.mfd.n_rampup) = (Some(0.3), 7);
        let (_, v) = consistency_loss(&p, 2, &d_t, &d_r, &w, c, dist).unwrap();
        assert_eq!(v.dtype(), DType::F64);
        assert_eq!(v.to_scalar::<f64>().unwrap(), pixel + 0.3 * (3.0 / 7.0) * mfd, "bit for bit the host sum it replaces");
    }
}
