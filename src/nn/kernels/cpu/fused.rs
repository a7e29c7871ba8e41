//! Two UNet glue ops as parallel CPU kernels with hand-written backwards: the residual join
//! `(a + b) * s` and the channel concatenation of a skip connection. As candle ops they ran on one
//! thread (candle's elementwise pool is off, see `runtime`), two passes for the join, and the
//! concatenation's gradient came back as strided views that the next kernel copied, again on one
//! thread; with two cores that serial time was a visible share of the training step.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::simd::Float;

/// Elements per parallel task of the elementwise kernels.
const CHUNK: usize = 1 << 15;

fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    super::simd::contiguous_slice(s, l, format_args!("{what}: input"))
}

crate::avx2_dispatch! {
    fn add_scaled_chunk<T>(out: &mut [T], a: &[T], b: &[T], s: T) {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = (*x + *y) * s;
        }
    }
}

crate::avx2_dispatch! {
    fn scale_chunk<T>(out: &mut [T], a: &[T], s: T) {
        for (o, x) in out.iter_mut().zip(a) {
            *o = *x * s;
        }
    }
}

fn add_scaled_kernel<T: Float>(a: &[T], b: &[T], s: f64) -> Vec<T> {
    let mut out = super::gemm::alloc_unset(a.len());
    let s = super::simd::from_f64::<T>(s);
    out.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).zip(b.par_chunks(CHUNK)).for_each(|((o, x), y)| add_scaled_chunk(o, x, y, s));
    out
}

fn scale_kernel<T: Float>(a: &[T], s: f64) -> Vec<T> {
    let mut out = super::gemm::alloc_unset(a.len());
    let s = super::simd::from_f64::<T>(s);
    out.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).for_each(|(o, x)| scale_chunk(o, x, s));
    out
}

/// `[B, C1, rest] ++ [B, C2, rest] -> [B, C1 + C2, rest]`, as flat per-sample blocks.
fn cat_kernel<T: Float>(a: &[T], b: &[T], n: usize) -> Vec<T> {
    let (la, lb) = (a.len() / n.max(1), b.len() / n.max(1));
    let mut out = super::gemm::alloc_unset(a.len() + b.len());
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(la + lb).zip(a.par_chunks(la.max(1))).zip(b.par_chunks(lb.max(1))).for_each(|((o, x), y)| {
        o[..la].copy_from_slice(&x[..la]);
        o[la..].copy_from_slice(&y[..lb]);
    });
    out
}

/// Per-sample block `[lo, lo + len)` of each `[B, stride]` row.
fn take_kernel<T: Float>(x: &[T], n: usize, lo: usize, len: usize) -> Vec<T> {
    let stride = x.len() / n.max(1);
    let mut out = super::gemm::alloc_unset(n * len);
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(len).zip(x.par_chunks(stride)).for_each(|(o, row)| o.copy_from_slice(&row[lo..lo + len]));
    out
}

macro_rules! dispatch {
    ($s:expr, |$ty:ident| $body:expr) => {
        match $s.dtype() {
            DType::F32 => {
                type $ty = f32;
                CpuStorage::F32($body)
            }
            DType::F64 => {
                type $ty = f64;
                CpuStorage::F64($body)
            }
            dt => candle_core::bail!("unsupported dtype {dt:?}"),
        }
    };
}

struct AddScaled(f64);
struct Scale(f64);
struct CatChannels {
    batch: usize,
}
struct TakeChannels {
    batch: usize,
    /// Offset and length of the block within each sample, in elements.
    lo: usize,
    len: usize,
}

impl CustomOp2 for AddScaled {
    fn name(&self) -> &'static str {
        "add-scaled"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = dispatch!(s1, |T| add_scaled_kernel::<T>(slice(s1, l1, "add")?, slice(s2, l2, "add")?, self.0));
        Ok((out, l1.shape().clone()))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        Ok((crate::nn::kernels::cuda::add_scaled((s1, l1), (s2, l2), self.0)?, l1.shape().clone()))
    }
    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = dy.contiguous()?.apply_op1_no_bwd(&Scale(self.0))?;
        Ok((a.track_op().then(|| g.clone()), b.track_op().then_some(g)))
    }
}

impl CustomOp1 for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = dispatch!(s, |T| scale_kernel::<T>(slice(s, l, "scale")?, self.0));
        Ok((out, l.shape().clone()))
    }
    /// candle's own affine kernel is this op on CUDA.
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((s.affine(l, self.0, 0.0)?, l.shape().clone()))
    }
}

impl CustomOp2 for CatChannels {
    fn name(&self) -> &'static str {
        "cat-channels"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = dispatch!(s1, |T| cat_kernel::<T>(slice(s1, l1, "cat")?, slice(s2, l2, "cat")?, self.batch));
        let mut dims = l1.dims().to_vec();
        dims[1] += l2.dims()[1];
        Ok((out, Shape::from(dims)))
    }
    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let (la, lb) = (a.elem_count() / self.batch, b.elem_count() / self.batch);
        let take = |lo, len, like: &Tensor| -> candle_core::Result<Tensor> {
            dy.apply_op1_no_bwd(&TakeChannels { batch: self.batch, lo, len })?.reshape(like.shape())
        };
        let da = if a.track_op() { Some(take(0, la, a)?) } else { None };
        let db = if b.track_op() { Some(take(la, lb, b)?) } else { None };
        Ok((da, db))
    }
}

impl CustomOp1 for TakeChannels {
    fn name(&self) -> &'static str {
        "take-channels"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = dispatch!(s, |T| take_kernel::<T>(slice(s, l, "take")?, self.batch, self.lo, self.len));
        Ok((out, Shape::from(self.batch * self.len)))
    }
}

/// `(a + b) * s` for two CPU f32 or f64 tensors of one shape and dtype (`nn::fused::add_scaled`
/// checks that, and uses candle's ops otherwise).
pub fn add_scaled(a: &Tensor, b: &Tensor, s: f64) -> candle_core::Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, AddScaled(s))
}

/// `cat([a, b], 1)` for two non-empty CPU f32 or f64 `[B, C, ...]` tensors of one dtype, equal in
/// every other dimension (`nn::fused::cat_channels` checks that, and uses `Tensor::cat` otherwise).
pub fn cat_channels(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, CatChannels { batch: a.dim(0)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{
        self,
        tests::{max_abs_diff, randn},
    };

    #[test]
    fn match_candle_ops_and_finite_differences() {
        let a = randn(&[3, 4, 5, 5], 1);
        let b = randn(&[3, 4, 5, 5], 2);
        let c = randn(&[3, 2, 5, 5], 3);
        assert!(max_abs_diff(&add_scaled(&a, &b, 0.7).unwrap(), &((&a + &b).unwrap() * 0.7).unwrap()) < 1e-15);
        assert_eq!(max_abs_diff(&cat_channels(&a, &c).unwrap(), &Tensor::cat(&[&a, &c], 1).unwrap()), 0.0);
        let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        assert_eq!(max_abs_diff(&cat_channels(&f32s(&c), &f32s(&a)).unwrap(), &Tensor::cat(&[&f32s(&c), &f32s(&a)], 1).unwrap()), 0.0);
        let g = gradcheck::check(&|ts: &[Tensor]| add_scaled(&ts[0], &ts[1], 0.7), &[a.clone(), b.clone()], 40, 1e-6, 4).unwrap();
        assert!(g.max_err < 1e-8, "add_scaled: {}", g.max_err);
        let g = gradcheck::check(&|ts: &[Tensor]| cat_channels(&ts[0], &ts[1]), &[a, c], 40, 1e-6, 5).unwrap();
        assert!(g.max_err < 1e-8, "cat_channels: {}", g.max_err);
    }

    #[test]
    fn one_tracked_input_gets_its_gradient_alone() {
        let a = candle_core::Var::from_tensor(&randn(&[2, 3, 4, 4], 6)).unwrap();
        let b = randn(&[2, 1, 4, 4], 7);
        let grads = cat_channels(&b, a.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let ga = grads.get(a.as_tensor()).unwrap();
        assert_eq!(ga.dims(), a.dims());
        assert_eq!(ga.sum_all().unwrap().to_scalar::<f64>().unwrap(), 96.0);
        assert!(grads.get(&b).is_none());
    }
}
