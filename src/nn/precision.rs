//! What the training step's products multiply in (`train.precision`), as PyTorch's switches:
//! - `f32`: full f32 GEMMs.
//! - `tf32`: f32 tensors, GEMMs on the tensor cores' TF32 inputs (10 mantissa bits, f32
//!   accumulation), what PyTorch's fp32 convolutions use by default (`cudnn.allow_tf32`); on CUDA
//!   it is cuBLAS's TF32 mode for every f32 GEMM inside [`with_compute`].
//! - `bf16`: as PyTorch's bf16 autocast: the convolutions, linear layers and attention products
//!   of f32 tensors multiply in bf16 and return f32.
//!
//! Everything else (norms, activations, softmax, losses, reductions, the optimizer and its master
//! weights) stays f32. The casts are on the graph, so gradients flow back through them to the f32
//! weights. candle has neither TF32 nor a bf16 convolution on the CPU: there the operands are
//! rounded (and, for bf16, the result too) around an f32 product: the numerics of the GPU's
//! GEMMs without their speed, so the CPU shows what each does to a loss curve.

use std::cell::Cell;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// The precision of the products (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compute {
    #[default]
    F32,
    Tf32,
    Bf16,
}

impl Compute {
    pub fn is_f32(&self) -> bool {
        *self == Compute::F32
    }

    /// `f32`, `tf32` or `bf16`, as presets and `--precision` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Compute::F32 => "f32",
            Compute::Tf32 => "tf32",
            Compute::Bf16 => "bf16",
        }
    }

    pub fn parse(name: &str) -> Option<Compute> {
        [Compute::F32, Compute::Tf32, Compute::Bf16].into_iter().find(|c| c.name() == name)
    }
}

thread_local! {
    static COMPUTE: Cell<Compute> = const { Cell::new(Compute::F32) };
}

/// Runs `f` with this thread's products in `compute`. For TF32 it also switches cuBLAS's f32
/// GEMMs to TF32 for the duration (a process-wide switch in candle: one training at a time).
pub fn with_compute<R>(compute: Compute, f: impl FnOnce() -> R) -> R {
    // restored on the way out, also when `f` panics, as the thread-local setting is
    struct RestoreTf32(bool);
    impl Drop for RestoreTf32 {
        fn drop(&mut self) {
            candle_core::cuda::set_gemm_reduced_precision_f32(self.0);
        }
    }
    let _restore = RestoreTf32(candle_core::cuda::gemm_reduced_precision_f32());
    candle_core::cuda::set_gemm_reduced_precision_f32(compute == Compute::Tf32);
    super::kernels::with_thread_setting(&COMPUTE, compute, f)
}

/// This thread's precision of products now.
pub fn compute() -> Compute {
    COMPUTE.with(Cell::get)
}

/// The lowered precision a product of these operands runs in, if any (f32 tensors only).
fn active(x: &Tensor) -> Option<Compute> {
    let c = compute();
    (x.dtype() == DType::F32 && !c.is_f32()).then_some(c)
}

/// `f(x, w)` in this thread's precision, its result in f32 (see the module doc).
pub fn product(x: &Tensor, w: &Tensor, f: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>) -> candle_core::Result<Tensor> {
    let cpu = x.device().is_cpu();
    match active(x) {
        None => f(x, w),
        // on CUDA, cuBLAS's TF32 mode (set by `with_compute`)
        Some(Compute::Tf32) if !cpu => f(x, w),
        Some(Compute::Tf32) => {
            let round = super::kernels::cpu::tf32::round_tf32;
            f(&round(x)?, &round(w)?)
        }
        Some(_) if cpu => {
            let round = |t: &Tensor| t.to_dtype(DType::BF16)?.to_dtype(DType::F32);
            round(&f(&round(x)?, &round(w)?)?)
        }
        Some(_) => f(&x.to_dtype(DType::BF16)?, &w.to_dtype(DType::BF16)?)?.to_dtype(DType::F32),
    }
}

/// Whether a product on `x` is rounded around the f32 kernels now (the fused CPU convolution
/// steps aside for [`product`]).
pub fn lowered(x: &Tensor) -> bool {
    active(x).is_some()
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
        let low = with_compute(Compute::Bf16, || product(x.as_tensor(), w.as_tensor(), mm)).unwrap();
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
        assert!(with_compute(Compute::Bf16, || lowered(x.as_tensor())));
    }
}
