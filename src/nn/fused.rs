//! The UNet's glue ops: the residual join `(a + b) * s` and the channel concatenation of a skip
//! connection. CPU f32 and f64 tensors go to the kernels of `kernels::cpu::fused`; anything else
//! (another device or dtype, shapes a kernel does not take) to `kernels::portable`'s.

use candle_core::Tensor;

use super::kernels::cpu::fused;
use super::kernels::portable;

fn cpu_float(t: &Tensor) -> bool {
    super::kernels::cpu_kernels_for(t)
}

/// `(a + b) * s` for two tensors of one shape.
pub fn add_scaled(a: &Tensor, b: &Tensor, s: f64) -> candle_core::Result<Tensor> {
    if !super::kernels::custom_ops_for(a) || a.dims() != b.dims() || a.dtype() != b.dtype() {
        return portable::add_scaled(a, b, s);
    }
    fused::add_scaled(a, b, s)
}

/// `cat([a, b], 1)` for `[B, C, ...]` tensors equal in every other dimension.
pub fn cat_channels(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let same_rest = a.rank() >= 2 && a.rank() == b.rank() && a.dim(0)? == b.dim(0)? && a.dims()[2..] == b.dims()[2..];
    // an empty side would leave the kernel's per-sample chunks unpaired (and its output unwritten)
    let empty = a.elem_count() == 0 || b.elem_count() == 0;
    if !cpu_float(a) || !same_rest || a.dtype() != b.dtype() || empty {
        return portable::cat_channels(a, b);
    }
    fused::cat_channels(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::tests::{max_abs_diff, randn};
    use candle_core::DType;

    #[test]
    fn cat_with_an_empty_side_is_the_other_side() {
        let a = randn(&[2, 3, 4, 4], 8).to_dtype(DType::F32).unwrap();
        let none = Tensor::zeros((2, 0, 4, 4), DType::F32, &candle_core::Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&cat_channels(&none, &a).unwrap(), &a), 0.0);
        assert_eq!(max_abs_diff(&cat_channels(&a, &none).unwrap(), &a), 0.0);
    }
}
