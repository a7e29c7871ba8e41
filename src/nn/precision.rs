//! Mixed precision, as PyTorch's bf16 autocast: inside [`with_compute_dtype`]`(BF16, ..)` the
//! convolutions, linear layers and attention products of f32 tensors multiply in bf16 (inputs and
//! weights rounded to bf16, products accumulated by the backend's bf16 GEMM) and return f32;
//! everything else (norms, activations, softmax, losses, reductions, the optimizer and its
//! master weights) stays f32. The casts are on the graph, so gradients flow back through them to
//! the f32 weights. Outside it, or with F32, nothing changes.
//!
//! candle has no bf16 convolution on the CPU: there the operands and the result are rounded to
//! bf16 and the product runs in f32, the numerics of a bf16 GEMM accumulating in f32 (what cuBLAS
//! does) without its speed, so the CPU shows what bf16 does to a loss curve.

use std::cell::Cell;

use candle_core::{DType, Tensor};

thread_local! {
    static COMPUTE: Cell<DType> = const { Cell::new(DType::F32) };
}

/// Runs `f` with this thread's matmuls and convolutions in `dtype` (F32 or BF16).
pub fn with_compute_dtype<R>(dtype: DType, f: impl FnOnce() -> R) -> R {
    super::kernels::with_thread_setting(&COMPUTE, dtype, f)
}

/// The dtype this thread's products of f32 tensors run in now.
pub fn compute_dtype() -> DType {
    COMPUTE.with(Cell::get)
}

/// The dtype a product of these f32 operands runs in: bf16 under bf16 autocast, else their own.
fn autocast(x: &Tensor) -> Option<DType> {
    let d = COMPUTE.with(Cell::get);
    (x.dtype() == DType::F32 && d != DType::F32).then_some(d)
}

/// `f(x, w)` with both operands in the compute dtype and the result back in f32; `f(x, w)` itself
/// where no autocast applies.
pub fn product(x: &Tensor, w: &Tensor, f: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>) -> candle_core::Result<Tensor> {
    match autocast(x) {
        Some(d) if x.device().is_cpu() => {
            let round = |t: &Tensor| t.to_dtype(d)?.to_dtype(DType::F32);
            round(&f(&round(x)?, &round(w)?)?)
        }
        Some(d) => f(&x.to_dtype(d)?, &w.to_dtype(d)?)?.to_dtype(DType::F32),
        None => f(x, w),
    }
}

/// Whether products on `x` run in a lower precision now (the f32-only CPU kernels step aside).
pub fn lowered(x: &Tensor) -> bool {
    autocast(x).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::tests::{max_abs_diff, randn};
    use candle_core::Var;

    #[test]
    fn bf16_products_round_their_operands_and_keep_f32_gradients() {
        let x = Var::from_tensor(&randn(&[4, 16], 1).to_dtype(DType::F32).unwrap()).unwrap();
        let w = Var::from_tensor(&randn(&[16, 8], 2).to_dtype(DType::F32).unwrap()).unwrap();
        let mm = |a: &Tensor, b: &Tensor| a.matmul(b);
        let exact = product(x.as_tensor(), w.as_tensor(), mm).unwrap();
        let low = with_compute_dtype(DType::BF16, || product(x.as_tensor(), w.as_tensor(), mm)).unwrap();
        assert_eq!(low.dtype(), DType::F32);
        // bf16 keeps 8 bits of mantissa: sums of 16 unit products move by ~1e-2, not 0, not 1
        let err = max_abs_diff(&exact, &low);
        assert!(err > 1e-4 && err < 0.1, "bf16 error {err}");
        // the rounded operands' product, up to the result's own rounding to bf16 (2^-8 relative)
        let r = |t: &Tensor| t.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap();
        let rounded = r(x.as_tensor()).matmul(&r(w.as_tensor())).unwrap();
        let scale = rounded.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!(max_abs_diff(&low, &rounded) <= scale / 256.0, "{} vs scale {scale}", max_abs_diff(&low, &rounded));
        let g = low.sum_all().unwrap().backward().unwrap();
        let (gx, gw) = (g.get(x.as_tensor()).unwrap(), g.get(w.as_tensor()).unwrap());
        assert_eq!((gx.dtype(), gw.dtype()), (DType::F32, DType::F32));
        // d sum(xw)/dx = 1 w^T: rows of w's row sums, to bf16 accuracy
        let want = Tensor::ones((4, 8), DType::F32, x.device()).unwrap().matmul(&w.as_tensor().t().unwrap()).unwrap();
        assert!(max_abs_diff(gx, &want) < 0.1, "{}", max_abs_diff(gx, &want));
        // outside the scope nothing is lowered
        assert!(!lowered(x.as_tensor()));
        assert!(with_compute_dtype(DType::BF16, || lowered(x.as_tensor())));
    }
}
