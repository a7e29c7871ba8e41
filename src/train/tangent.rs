//! The normalised-tangent form shared by the feature-space losses (LPIPS, MFD; method.md 5):
//! ```text
//! g_i  = d/dD_t,i dist(D_t,i, D_r,i)        (through the frozen network, w.r.t. its input)
//! u_i  = g_i / max(||g_i||, 1e-5)
//! loss = mean_i w_i <D_t,i, stopgrad(u_i)>  (so the gradient on D_t,i is w_i u_i / B)
//! ```
//! Every loss then moves each output by the same magnitude `w`; only the direction differs.

use candle_core::{Tensor, Var, D};

use crate::model::feature::FeatureDistance;
use crate::Result;

/// Floor of the gradient norm in the normalisation, as the reference code.
pub const NORM_FLOOR: f64 = 1e-5;

/// The unit directions `u_i` [B,C,H,W] of `dist(., y)` at `x` (constants, no graph attached).
pub fn unit_directions(dist: &dyn FeatureDistance, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(directions_and_distances(dist, x, y)?.0)
}

/// The unit directions and the per-sample distances [B] they were taken at.
pub fn directions_and_distances(dist: &dyn FeatureDistance, x: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
    let xv = Var::from_tensor(&x.detach())?;
    let d = dist.distance(xv.as_tensor(), &y.detach())?;
    let grads = d.sum_all()?.backward()?;
    let g = grads.get(xv.as_tensor()).cloned().unwrap_or(x.zeros_like()?);
    let b = g.dim(0)?;
    let norm = g.sqr()?.flatten_from(1)?.sum(D::Minus1)?.sqrt()?.maximum(NORM_FLOOR)?;
    Ok((g.broadcast_div(&norm.reshape((b, 1, 1, 1))?)?.detach(), d.detach()))
}

/// A feature-space loss step: the surrogate to differentiate, and the value worth reporting.
pub struct TangentLoss {
    /// `mean_i w_i <D_t,i, stopgrad(u_i)>`: only its gradient means anything.
    pub surrogate: Tensor,
    /// `mean_i w_i dist(D_t,i, D_r,i)`: the distance the update reduces (logged as the loss).
    pub weighted_distance: Tensor,
}

/// `mean_i w_i <d_t,i, u_i>` with `u` computed from `dist` at (`d_t`, `d_r`).
pub fn tangent_loss(dist: &dyn FeatureDistance, d_t: &Tensor, d_r: &Tensor, w: &Tensor) -> Result<TangentLoss> {
    let (u, d) = directions_and_distances(dist, d_t, d_r)?;
    let inner = (d_t * u)?.flatten_from(1)?.sum(D::Minus1)?;
    let w = w.detach();
    Ok(TangentLoss { surrogate: inner.mul(&w)?.mean_all()?, weighted_distance: d.mul(&w)?.mean_all()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::tests::randn;
    use candle_core::Device;

    /// A toy distance with a known gradient: sum of cubes of the difference.
    struct Cubes;
    impl FeatureDistance for Cubes {
        fn distance(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
            Ok((x - y)?.powf(3.0)?.flatten_from(1)?.sum(D::Minus1)?)
        }
        fn name(&self) -> String {
            "cubes".into()
        }
    }

    #[test]
    fn gradient_on_d_t_is_w_u_over_b() {
        let d_t = randn(&[3, 1, 2, 2], 1);
        let d_r = randn(&[3, 1, 2, 2], 2);
        let w = Tensor::new(&[1.0f64, 2.0, 0.5], &Device::Cpu).unwrap();
        let var = Var::from_tensor(&d_t).unwrap();
        let tl = tangent_loss(&Cubes, var.as_tensor(), &d_r, &w).unwrap();
        let reported = tl.weighted_distance.to_scalar::<f64>().unwrap();
        let expect_reported = (Cubes.distance(&d_t, &d_r).unwrap() * &w).unwrap().mean_all().unwrap().to_scalar::<f64>().unwrap();
        assert!((reported - expect_reported).abs() < 1e-12);
        let loss = tl.surrogate;
        let g = loss.backward().unwrap().get(var.as_tensor()).unwrap().clone();
        // u = 3 (d_t - d_r)^2 / ||3 (d_t - d_r)^2||
        let g_dist = ((&d_t - &d_r).unwrap().sqr().unwrap() * 3.0).unwrap();
        let norm = g_dist.sqr().unwrap().flatten_from(1).unwrap().sum(1).unwrap().sqrt().unwrap().reshape((3, 1, 1, 1)).unwrap();
        let u = g_dist.broadcast_div(&norm).unwrap();
        let expect = u.broadcast_mul(&(w / 3.0).unwrap().reshape((3, 1, 1, 1)).unwrap()).unwrap();
        let err = (g - expect).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(err < 1e-12, "{err}");
    }

    #[test]
    fn a_zero_gradient_gives_a_zero_direction_not_nan() {
        let x = randn(&[2, 1, 2, 2], 3);
        let u = unit_directions(&Cubes, &x, &x).unwrap();
        let v = u.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert!(v.iter().all(|x| *x == 0.0), "{v:?}");
    }
}
