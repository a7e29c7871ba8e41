//! Rounding f32 to TF32, the input precision of NVIDIA's tensor cores for f32 GEMMs (8 exponent
//! bits, 10 mantissa bits): the CPU's emulation of `train.precision = "tf32"` rounds a product's
//! operands with it and multiplies in f32, as the tensor cores do (round to nearest even here).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `x` with its mantissa rounded to 10 bits, to nearest, ties to even; NaN and infinities as
/// they are (a carry into the exponent is the right rounding, up to infinity past TF32's max).
pub fn round_to_tf32(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    let b = x.to_bits();
    let lsb = (b >> 13) & 1;
    f32::from_bits(b.wrapping_add(0xFFF + lsb) & !0x1FFF)
}

struct RoundTf32;

impl CustomOp1 for RoundTf32 {
    fn name(&self) -> &'static str {
        "round-tf32"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        if s.dtype() != DType::F32 {
            candle_core::bail!("round-tf32: f32 only, got {:?}", s.dtype());
        }
        let x = super::simd::contiguous_slice::<f32>(s, l, format_args!("round-tf32: input"))?;
        Ok((CpuStorage::F32(x.par_iter().map(|v| round_to_tf32(*v)).collect()), l.shape().clone()))
    }
    /// Straight through, as a cast's gradient.
    fn bwd(&self, _x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(dy.clone()))
    }
}

/// A CPU f32 tensor rounded to TF32 (the gradient passes straight through).
pub fn round_tf32(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(RoundTf32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_ten_mantissa_bits_ties_to_even() {
        let ulp = 2f32.powi(-10);
        assert_eq!(round_to_tf32(1.0 + ulp), 1.0 + ulp, "representable: unchanged");
        assert_eq!(round_to_tf32(1.0 + ulp / 2.0), 1.0, "a tie to the even neighbour below");
        assert_eq!(round_to_tf32(1.0 + 1.5 * ulp), 1.0 + 2.0 * ulp, "a tie to the even neighbour above");
        assert_eq!(round_to_tf32(1.0 + 0.6 * ulp), 1.0 + ulp, "nearest");
        assert_eq!(round_to_tf32(-3.0 - 0.4 * 2.0 * ulp), -3.0, "sign and binade kept");
        assert_eq!(round_to_tf32(2.0 - ulp / 4.0), 2.0, "a carry into the exponent");
        assert!(round_to_tf32(f32::NAN).is_nan() && round_to_tf32(f32::INFINITY) == f32::INFINITY);
        // every rounded value has its low 13 bits clear, and moves by at most half a TF32 ulp
        for i in 0..10_000u32 {
            let x = f32::from_bits(0x3F80_0000 + i * 837);
            let r = round_to_tf32(x);
            assert_eq!(r.to_bits() & 0x1FFF, 0);
            assert!((r - x).abs() <= x.abs() * 2f32.powi(-11), "{x} -> {r}");
        }
    }
}
