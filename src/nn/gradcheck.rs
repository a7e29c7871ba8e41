//! Finite-difference gradient checks: every op and loss on a gradient path is tested with this.

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;

use crate::Result;

/// Outcome of a check: the worst disagreement between autograd and central differences.
#[derive(Debug, Clone)]
pub struct GradCheck {
    /// max over probed coordinates of |analytic - numeric| / max(1, |analytic|, |numeric|) scaled
    /// by the output's typical gradient size (so tiny gradients do not dominate).
    pub max_err: f64,
    pub probes: usize,
}

/// Checks `f` at `inputs` (converted to f64): the scalar is `sum(f(x) * R)` with a fixed random
/// `R`, so every output element's gradient matters. Probes `n_probe` random coordinates of every
/// input with central differences of step `h`.
pub fn check(
    f: &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    inputs: &[Tensor],
    n_probe: usize,
    h: f64,
    seed: u64,
) -> Result<GradCheck> {
    let inputs: Vec<Tensor> = inputs.iter().map(|t| t.to_dtype(DType::F64)).collect::<candle_core::Result<_>>()?;
    let vars: Vec<Var> = inputs.iter().map(Var::from_tensor).collect::<candle_core::Result<_>>()?;
    let var_tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&var_tensors)?;
    let mut rng = crate::rng::stream(seed, "gradcheck");
    let r: Vec<f64> = (0..out.elem_count()).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
    let r = Tensor::from_vec(r, out.shape(), &Device::Cpu)?;
    let scalar = |ts: &[Tensor]| -> candle_core::Result<f64> { f(ts)?.mul(&r)?.sum_all()?.to_scalar::<f64>() };
    let grads = out.mul(&r)?.sum_all()?.backward()?;

    let mut max_err = 0.0f64;
    let mut probes = 0;
    for (i, var) in vars.iter().enumerate() {
        let analytic = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
            None => vec![0.0; var.elem_count()],
        };
        let scale = analytic.iter().fold(0.0f64, |m, g| m.max(g.abs())).max(1e-8);
        let base = inputs[i].flatten_all()?.to_vec1::<f64>()?;
        for _ in 0..n_probe.min(base.len()) {
            let j = rng.random_range(0..base.len());
            let eval_at = |delta: f64| -> candle_core::Result<f64> {
                let mut v = base.clone();
                v[j] += delta;
                let mut ts = inputs.clone();
                ts[i] = Tensor::from_vec(v, inputs[i].shape(), &Device::Cpu)?;
                scalar(&ts)
            };
            let numeric = (eval_at(h)? - eval_at(-h)?) / (2.0 * h);
            let err = (analytic[j] - numeric).abs() / scale;
            max_err = max_err.max(err);
            probes += 1;
        }
    }
    Ok(GradCheck { max_err, probes })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::{attention::softmax_last, resample, Conv2d, GroupNorm, Linear};
    use candle_core::Module;

    pub fn randn(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = crate::rng::stream(seed, "test-input");
        let n = shape.iter().product();
        Tensor::from_vec(crate::rng::normal_vec(&mut rng, n), shape, &Device::Cpu).unwrap().to_dtype(DType::F64).unwrap()
    }

    /// `max |a - b|` of two tensors of one shape (f32 or f64), as f64.
    pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    fn assert_ok(name: &str, g: GradCheck) {
        assert!(g.probes > 0, "{name}: nothing probed");
        assert!(g.max_err < 1e-6, "{name}: gradient mismatch, max relative error {}", g.max_err);
    }

    #[test]
    fn conv2d_gradients_match_finite_differences() {
        for (stride, pad, k, size) in [(1, 1, 3, 6), (2, 1, 3, 7), (2, 1, 3, 8), (1, 0, 1, 5)] {
            let x = randn(&[2, 3, size, size], 1);
            let w = randn(&[4, 3, k, k], 2);
            let b = randn(&[4], 3);
            let f = |ts: &[Tensor]| Conv2d::from_tensors(ts[1].clone(), Some(ts[2].clone()), stride, pad).forward(&ts[0]);
            assert_ok(&format!("conv k{k} s{stride} p{pad} n{size}"), check(&f, &[x, w, b], 40, 1e-5, 4).unwrap());
        }
    }

    #[test]
    fn group_norm_gradients_match_finite_differences() {
        let x = randn(&[2, 4, 3, 3], 5);
        let g = randn(&[4], 6);
        let b = randn(&[4], 7);
        let f = |ts: &[Tensor]| GroupNorm { weight: ts[1].clone(), bias: ts[2].clone(), groups: 2, eps: 1e-5 }.forward(&ts[0]);
        assert_ok("group norm", check(&f, &[x, g, b], 40, 1e-5, 8).unwrap());
    }

    #[test]
    fn linear_silu_gradients_match_finite_differences() {
        let x = randn(&[3, 5], 9);
        let w = randn(&[4, 5], 10);
        let b = randn(&[4], 11);
        let f = |ts: &[Tensor]| Linear { weight: ts[1].clone(), bias: ts[2].clone() }.forward(&ts[0])?.silu();
        assert_ok("linear+silu", check(&f, &[x, w, b], 30, 1e-5, 12).unwrap());
    }

    #[test]
    fn resampling_gradients_match_finite_differences() {
        let x = randn(&[2, 2, 4, 4], 13);
        assert_ok(
            "upsample",
            check(&|ts: &[Tensor]| resample::upsample_nearest2x(&ts[0]), std::slice::from_ref(&x), 30, 1e-5, 14).unwrap(),
        );
        assert_ok("avgpool", check(&|ts: &[Tensor]| resample::avg_pool2x(&ts[0]), &[x], 30, 1e-5, 15).unwrap());
        for size in [4, 5] {
            let x = randn(&[2, 2, size, size], 16);
            assert_ok("maxpool", check(&|ts: &[Tensor]| resample::max_pool2x(&ts[0]), &[x], 40, 1e-6, 17).unwrap());
        }
    }

    #[test]
    fn softmax_gradients_match_finite_differences() {
        let x = randn(&[3, 6], 18);
        assert_ok("softmax", check(&|ts: &[Tensor]| softmax_last(&ts[0]), &[x], 18, 1e-5, 19).unwrap());
    }

    #[test]
    fn resampling_values() {
        let x = Tensor::from_vec((0..16).map(|v| v as f64).collect::<Vec<_>>(), (1, 1, 4, 4), &Device::Cpu).unwrap();
        let up = resample::upsample_nearest2x(&x).unwrap();
        let ref_up = x.upsample_nearest2d(8, 8).unwrap();
        assert_eq!(up.flatten_all().unwrap().to_vec1::<f64>().unwrap(), ref_up.flatten_all().unwrap().to_vec1::<f64>().unwrap());
        let mp = resample::max_pool2x(&x).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(mp, vec![5.0, 7.0, 13.0, 15.0]);
    }

    #[test]
    fn a_wrong_gradient_is_caught() {
        // x.detach() * x has gradient x, not 2x: the checker must report it.
        let x = randn(&[5], 20);
        let g = check(&|ts: &[Tensor]| ts[0].detach().mul(&ts[0]), &[x], 5, 1e-5, 21).unwrap();
        assert!(g.max_err > 0.1, "checker missed a wrong gradient: {}", g.max_err);
    }
}
