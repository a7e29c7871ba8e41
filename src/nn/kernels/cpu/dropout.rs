//! Dropout as one op whose mask is a hash of (run seed, layer, element index): nothing is drawn
//! or stored, the backward recomputes the mask, and the CUDA kernel (`dropout_f32` in
//! `kernels/cuda/kernels.cu`) computes the same bits on the device, so every device drops the
//! same elements. Element `i` is kept when the top 32 bits of `mix64(key + i * GOLDEN)` are below
//! `keep * 2^32`; `mix64` is SplitMix64's finaliser, whose outputs pass BigCrush as a counter-based
//! generator.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A layer's mask: which elements survive and the scale `1 / keep` of those that do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mask {
    /// The hash key of (step seed, layer).
    pub key: u64,
    /// Elements whose hash's top 32 bits are below this survive (`round(keep * 2^32)`).
    pub threshold: u64,
    pub scale: f64,
}

impl Mask {
    /// The mask of layer `layer` under the step's dropout seed, dropping with probability `p`
    /// (in `[0, 1)`).
    pub fn new(seed: u64, layer: u64, p: f64) -> Mask {
        let keep = 1.0 - p;
        let key = mix64(mix64(seed) ^ layer.wrapping_mul(GOLDEN) ^ 0xD1B5_4A32_D192_ED03);
        Mask { key, threshold: (keep * 4_294_967_296.0).round() as u64, scale: 1.0 / keep }
    }

    #[inline(always)]
    pub fn keeps(&self, i: usize) -> bool {
        (mix64(self.key.wrapping_add((i as u64).wrapping_mul(GOLDEN))) >> 32) < self.threshold
    }

    /// The mask as values (`scale` or 0) of `n` elements, for devices without the kernel.
    pub fn values(&self, n: usize) -> Vec<f32> {
        let scale = self.scale as f32;
        (0..n).into_par_iter().map(|i| if self.keeps(i) { scale } else { 0.0 }).collect()
    }
}

const CHUNK: usize = 1 << 14;

fn apply<T: candle_core::WithDType + num_traits::Float + Send + Sync>(x: &[T], m: &Mask) -> Vec<T> {
    let scale = T::from_f64(m.scale);
    let mut y = vec![T::zero(); x.len()];
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).enumerate().for_each(|(c, (ys, xs))| {
        for (j, (y, x)) in ys.iter_mut().zip(xs).enumerate() {
            if m.keeps(c * CHUNK + j) {
                *y = *x * scale;
            }
        }
    });
    y
}

struct DropoutOp(Mask);

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let what = format_args!("dropout: input");
        let out = match s.dtype() {
            DType::F32 => CpuStorage::F32(apply(super::simd::contiguous_slice::<f32>(s, l, what)?, &self.0)),
            DType::F64 => CpuStorage::F64(apply(super::simd::contiguous_slice::<f64>(s, l, what)?, &self.0)),
            dt => candle_core::bail!("dropout: unsupported dtype {dt:?}"),
        };
        Ok((out, l.shape().clone()))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let m = &self.0;
        Ok((crate::nn::kernels::cuda::dropout(s, l, m.key, m.threshold, m.scale as f32)?, l.shape().clone()))
    }
    /// The mask is linear in `x`: the gradient is the upstream gradient under the same mask.
    fn bwd(&self, _x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1(DropoutOp(self.0))?))
    }
}

/// `x` with `mask` applied, by this op (CPU f32/f64 tensors, CUDA f32 ones with the native
/// kernels).
pub fn dropout(x: &Tensor, mask: Mask) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(DropoutOp(mask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::tests::randn;
    use candle_core::Var;

    #[test]
    fn keeps_the_expected_share_independently_per_layer() {
        let n = 200_000;
        for p in [0.1, 0.2, 0.5] {
            let (a, b) = (Mask::new(7, 1, p), Mask::new(7, 2, p));
            let kept_a = (0..n).filter(|&i| a.keeps(i)).count() as f64 / n as f64;
            // a binomial share's standard deviation is below 0.0012 here: 5 of them
            assert!((kept_a - (1.0 - p)).abs() < 0.006, "p {p}: kept {kept_a}");
            // two layers (or steps) agree on an element as often as independent masks would
            let both = (0..n).filter(|&i| a.keeps(i) && b.keeps(i)).count() as f64 / n as f64;
            assert!((both - (1.0 - p) * (1.0 - p)).abs() < 0.006, "p {p}: both {both}");
            let next_step = Mask::new(8, 1, p);
            let same = (0..n).filter(|&i| a.keeps(i) == next_step.keeps(i)).count() as f64 / n as f64;
            let expect = (1.0 - p) * (1.0 - p) + p * p;
            assert!((same - expect).abs() < 0.006, "p {p}: agreement across steps {same}");
        }
    }

    #[test]
    fn the_op_the_host_mask_and_the_gradient_agree() {
        let x = randn(&[3, 4, 5, 7], 2).to_dtype(DType::F32).unwrap();
        let m = Mask::new(11, 3, 0.3);
        let v = Var::from_tensor(&x).unwrap();
        let y = dropout(v.as_tensor(), m).unwrap();
        let host = Tensor::from_vec(m.values(x.elem_count()), x.shape(), x.device()).unwrap();
        let want = (&x * &host).unwrap();
        let same = |a: &Tensor, b: &Tensor| {
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap() == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert!(same(&y, &want), "the op and x * mask differ");
        let r = randn(x.dims(), 4).to_dtype(DType::F32).unwrap();
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap().get(v.as_tensor()).unwrap().clone();
        assert!(same(&g, &(&r * &host).unwrap()), "the gradient is not the upstream gradient under the mask");
        // nothing dropped at p = 0, and the same call twice gives the same mask
        assert!(same(&dropout(&x, Mask::new(11, 3, 0.0)).unwrap(), &x));
        assert!(same(&dropout(&x, m).unwrap(), &y));
    }

    #[test]
    fn mix64_is_splitmix64() {
        // SplitMix64 from state 0: its first output is mix64(GOLDEN) (the reference sequence's
        // first value, e220a8397b1dcdaf).
        assert_eq!(mix64(GOLDEN), 0xE220_A839_7B1D_CDAF);
    }
}
