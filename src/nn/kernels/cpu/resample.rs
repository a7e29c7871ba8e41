//! CPU kernels for 2x max-pooling and 2x nearest upsampling (NCHW), parallel over planes, each
//! with a hand-written backward. Written as reshapes and broadcasts they cost several candle ops
//! and a mask tensor per call.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::simd::Float;

fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    super::simd::contiguous_slice(s, l, format_args!("resample: input"))
}

/// Planes (B*C), input height and width.
#[derive(Clone, Copy, Debug)]
struct Planes {
    n: usize,
    h: usize,
    w: usize,
}

/// Whether `b` beats `a` in a running maximum: larger, or the first NaN (so a NaN propagates, as
/// in PyTorch); ties keep `a`, the earlier one. Non-short-circuit `&`/`|` and selects instead of
/// branches: on real activations branches are unpredictable, and their mispredictions made the
/// pool cost as much as a convolution; selects also let the loops vectorise.
#[inline(always)]
fn beats<T: Float>(b: T, a: T) -> bool {
    (b > a) | (b.is_nan() & !a.is_nan())
}

#[inline(always)]
fn select<T: Float>(c: bool, a: T, b: T) -> T {
    if c {
        a
    } else {
        b
    }
}

/// The maximum of a 2x2 window `[a, b, c, d]` (row-major) and which of the four it is: the first
/// on ties, as PyTorch. `(c1, c3, c)`: `b` beat `a`, `d` beat `c`, the bottom pair beat the top.
#[inline(always)]
fn window_max<T: Float>(v: [T; 4]) -> (T, (bool, bool, bool)) {
    let c1 = beats(v[1], v[0]);
    let m01 = select(c1, v[1], v[0]);
    let c3 = beats(v[3], v[2]);
    let m23 = select(c3, v[3], v[2]);
    let c = beats(m23, m01);
    (select(c, m23, m01), (c1, c3, c))
}

/// Planes per parallel task: enough work to amortise the task (planes can be as small as 3x3).
fn planes_per_task(plane_len: usize) -> usize {
    (16384 / plane_len.max(1)).max(1)
}

crate::avx2_dispatch! {
    fn maxpool_plane<T>(xp: &[T], yp: &mut [T], h: usize, w: usize) {
        let wo = w / 2;
        for (oy, yrow) in yp.chunks_mut(wo).enumerate().take(h / 2) {
            let (r0, r1) = (&xp[2 * oy * w..2 * oy * w + 2 * wo], &xp[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * wo]);
            for ((y, a), b) in yrow.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                *y = window_max([a[0], a[1], b[0], b[1]]).0;
            }
        }
    }
}

crate::avx2_dispatch! {
    /// Writes the whole plane of `dx`: the window maximum gets `dy`, everything else 0 (also the
    /// last row and column of an odd-sized plane, which no window covers).
    fn maxpool_bwd_plane<T>(xp: &[T], dyp: &[T], dxp: &mut [T], h: usize, w: usize) {
        let (ho, wo) = (h / 2, w / 2);
        for oy in 0..ho {
            let (top, bottom) = dxp[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
            let (r0, r1) = (&xp[2 * oy * w..(2 * oy + 1) * w], &xp[(2 * oy + 1) * w..(2 * oy + 2) * w]);
            let dyr = &dyp[oy * wo..(oy + 1) * wo];
            let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            let outs = top.chunks_exact_mut(2).zip(bottom.chunks_exact_mut(2));
            for (((t, b), (a, d)), g) in outs.zip(windows).zip(dyr) {
                let (c1, c3, c) = window_max([a[0], a[1], d[0], d[1]]).1;
                t[0] = select(!c & !c1, *g, T::zero());
                t[1] = select(!c & c1, *g, T::zero());
                b[0] = select(c & !c3, *g, T::zero());
                b[1] = select(c & c3, *g, T::zero());
            }
            if w % 2 == 1 {
                top[w - 1] = T::zero();
                bottom[w - 1] = T::zero();
            }
        }
        dxp[2 * ho * w..].fill(T::zero());
    }
}

fn maxpool_fwd<T: Float>(x: &[T], p: Planes) -> Vec<T> {
    let (ho, wo) = (p.h / 2, p.w / 2);
    let mut y = super::gemm::alloc_unset(p.n * ho * wo);
    if y.is_empty() {
        return y;
    }
    let per = planes_per_task(p.h * p.w);
    y.par_chunks_mut(per * ho * wo).zip(x.par_chunks(per * p.h * p.w)).for_each(|(ys, xs)| {
        for (yp, xp) in ys.chunks_mut(ho * wo).zip(xs.chunks(p.h * p.w)) {
            maxpool_plane(xp, yp, p.h, p.w);
        }
    });
    y
}

fn maxpool_bwd<T: Float>(x: &[T], dy: &[T], p: Planes) -> Vec<T> {
    let (ho, wo) = (p.h / 2, p.w / 2);
    if ho * wo == 0 {
        return vec![T::zero(); x.len()];
    }
    let mut dx = super::gemm::alloc_unset(x.len());
    let per = planes_per_task(p.h * p.w);
    dx.par_chunks_mut(per * p.h * p.w).zip(x.par_chunks(per * p.h * p.w)).zip(dy.par_chunks(per * ho * wo)).for_each(|((dxs, xs), dys)| {
        for ((dxp, xp), dyp) in dxs.chunks_mut(p.h * p.w).zip(xs.chunks(p.h * p.w)).zip(dys.chunks(ho * wo)) {
            maxpool_bwd_plane(xp, dyp, dxp, p.h, p.w);
        }
    });
    dx
}

fn upsample_fwd<T: Float>(x: &[T], p: Planes) -> Vec<T> {
    let (h2, w2) = (2 * p.h, 2 * p.w);
    let mut y = vec![T::zero(); p.n * h2 * w2];
    y.par_chunks_mut(h2 * w2).enumerate().for_each(|(i, yp)| {
        let xp = &x[i * p.h * p.w..(i + 1) * p.h * p.w];
        for iy in 0..p.h {
            let src = &xp[iy * p.w..(iy + 1) * p.w];
            let (r0, r1) = yp[2 * iy * w2..(2 * iy + 2) * w2].split_at_mut(w2);
            for (j, v) in src.iter().enumerate() {
                r0[2 * j] = *v;
                r0[2 * j + 1] = *v;
            }
            r1.copy_from_slice(r0);
        }
    });
    y
}

/// The adjoint of `upsample_fwd`: each output pixel is the sum of its 2x2 block (`p` is the
/// small side).
fn block_sum<T: Float>(dy: &[T], p: Planes) -> Vec<T> {
    let (h2, w2) = (2 * p.h, 2 * p.w);
    let mut dx = vec![T::zero(); p.n * p.h * p.w];
    dx.par_chunks_mut(p.h * p.w).enumerate().for_each(|(i, dxp)| {
        let dyp = &dy[i * h2 * w2..(i + 1) * h2 * w2];
        for iy in 0..p.h {
            for ix in 0..p.w {
                let b = 2 * iy * w2 + 2 * ix;
                dxp[iy * p.w + ix] = (dyp[b] + dyp[b + 1]) + (dyp[b + w2] + dyp[b + w2 + 1]);
            }
        }
    });
    dx
}

macro_rules! dispatch1 {
    ($s:expr, $l:expr, |$a:ident| $body:expr) => {
        match $s.dtype() {
            DType::F32 => {
                let $a = slice::<f32>($s, $l)?;
                CpuStorage::F32($body)
            }
            DType::F64 => {
                let $a = slice::<f64>($s, $l)?;
                CpuStorage::F64($body)
            }
            dt => candle_core::bail!("resample: unsupported dtype {dt:?}"),
        }
    };
}

fn planes(l: &Layout) -> candle_core::Result<(Planes, (usize, usize, usize, usize))> {
    let (b, c, h, w) = l.shape().dims4()?;
    Ok((Planes { n: b * c, h, w }, (b, c, h, w)))
}

struct MaxPool2x;
struct MaxPool2xBwd;
struct Upsample2x;
struct BlockSum2x;

impl CustomOp1 for MaxPool2x {
    fn name(&self) -> &'static str {
        "max-pool-2x"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, (b, c, h, w)) = planes(l)?;
        Ok((dispatch1!(s, l, |x| maxpool_fwd(x, p)), Shape::from((b, c, h / 2, w / 2))))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        Ok((crate::nn::kernels::cuda::max_pool2x(s, l)?, Shape::from((b, c, h / 2, w / 2))))
    }
    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &MaxPool2xBwd)?))
    }
}

impl CustomOp2 for MaxPool2xBwd {
    fn name(&self) -> &'static str {
        "max-pool-2x-bwd"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, _) = planes(l1)?;
        let out = match (s1.dtype(), s2.dtype()) {
            (DType::F32, DType::F32) => CpuStorage::F32(maxpool_bwd(slice::<f32>(s1, l1)?, slice(s2, l2)?, p)),
            (DType::F64, DType::F64) => CpuStorage::F64(maxpool_bwd(slice::<f64>(s1, l1)?, slice(s2, l2)?, p)),
            (a, b) => candle_core::bail!("max-pool backward: unsupported dtypes {a:?}, {b:?}"),
        };
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
        Ok((crate::nn::kernels::cuda::max_pool2x_bwd((s1, l1), (s2, l2))?, l1.shape().clone()))
    }
}

impl CustomOp1 for Upsample2x {
    fn name(&self) -> &'static str {
        "upsample-nearest-2x"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, (b, c, h, w)) = planes(l)?;
        Ok((dispatch1!(s, l, |x| upsample_fwd(x, p)), Shape::from((b, c, 2 * h, 2 * w))))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        Ok((crate::nn::kernels::cuda::upsample2x(s, l)?, Shape::from((b, c, 2 * h, 2 * w))))
    }
    fn bwd(&self, _x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1(BlockSum2x)?))
    }
}

impl CustomOp1 for BlockSum2x {
    fn name(&self) -> &'static str {
        "block-sum-2x"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h2, w2) = l.shape().dims4()?;
        let p = Planes { n: b * c, h: h2 / 2, w: w2 / 2 };
        Ok((dispatch1!(s, l, |x| block_sum(x, p)), Shape::from((b, c, h2 / 2, w2 / 2))))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, c, h2, w2) = l.shape().dims4()?;
        Ok((crate::nn::kernels::cuda::block_sum2x(s, l)?, Shape::from((b, c, h2 / 2, w2 / 2))))
    }
    fn bwd(&self, _x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1(Upsample2x)?))
    }
}

/// 2x2 max-pooling, stride 2, of an even-sized CPU tensor [B,C,H,W].
pub fn max_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2x)
}

/// Nearest-neighbour 2x upsampling of a CPU tensor [B,C,H,W].
pub fn upsample_nearest2x(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Upsample2x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{
        self,
        tests::{max_abs_diff, randn},
    };

    #[test]
    fn match_the_composite_ops_and_finite_differences() {
        for dt in [DType::F64, DType::F32] {
            let x = randn(&[2, 3, 6, 4], 1).to_dtype(dt).unwrap();
            assert_eq!(max_abs_diff(&max_pool2x(&x).unwrap(), &crate::nn::kernels::portable::max_pool2x(&x).unwrap()), 0.0);
            assert_eq!(max_abs_diff(&upsample_nearest2x(&x).unwrap(), &crate::nn::kernels::portable::upsample_nearest2x(&x).unwrap()), 0.0);
        }
        for shape in [[2, 3, 6, 4], [2, 3, 7, 5], [1, 2, 3, 3]] {
            let x = randn(&shape, 2);
            let g = gradcheck::check(&|ts: &[Tensor]| max_pool2x(&ts[0]), std::slice::from_ref(&x), 40, 1e-6, 3).unwrap();
            assert!(g.max_err < 1e-6, "max-pool {shape:?}: {}", g.max_err);
            assert_eq!(max_abs_diff(&max_pool2x(&x).unwrap(), &crate::nn::kernels::portable::max_pool2x(&x).unwrap()), 0.0, "{shape:?}");
        }
        let x = randn(&[2, 3, 6, 4], 2);
        let g = gradcheck::check(&|ts: &[Tensor]| upsample_nearest2x(&ts[0]), std::slice::from_ref(&x), 40, 1e-6, 4).unwrap();
        assert!(g.max_err < 1e-6, "upsample: {}", g.max_err);
        // second order through the upsample's backward (its adjoint, the block sum)
        let g = gradcheck::check(&|ts: &[Tensor]| ts[0].apply_op1(BlockSum2x), &[x], 40, 1e-6, 5).unwrap();
        assert!(g.max_err < 1e-6, "block sum: {}", g.max_err);
    }

    #[test]
    fn max_pool_gradient_goes_to_the_first_maximum_on_ties() {
        let x = Tensor::new(&[[[[1.0f64, 1.0], [0.0, 1.0]]]], &candle_core::Device::Cpu).unwrap();
        let v = candle_core::Var::from_tensor(&x).unwrap();
        let g = max_pool2x(v.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = g.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(gx, vec![1.0, 0.0, 0.0, 0.0]);
    }
}
