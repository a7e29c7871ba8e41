//! CPU kernels for 2x max-pooling and 2x nearest upsampling (NCHW), parallel over planes, each
//! with a hand-written backward. Written as reshapes and broadcasts they cost several candle ops
//! and a mask tensor per call.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::im2col::Float;

fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("resample: input must be contiguous".into()))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Planes (B*C), input height and width.
#[derive(Clone, Copy, Debug)]
struct Planes {
    n: usize,
    h: usize,
    w: usize,
}

/// Index within a 2x2 window of its maximum; the first one on ties (as PyTorch).
#[inline]
fn argmax4<T: Float>(x: &[T], w: usize, oy: usize, ox: usize) -> usize {
    let base = 2 * oy * w + 2 * ox;
    let idx = [base, base + 1, base + w, base + w + 1];
    let mut best = idx[0];
    for &i in &idx[1..] {
        // NaN propagates as in PyTorch: a NaN wins.
        if x[i] > x[best] || (x[i].is_nan() && !x[best].is_nan()) {
            best = i;
        }
    }
    best
}

fn maxpool_fwd<T: Float>(x: &[T], p: Planes) -> Vec<T> {
    let (ho, wo) = (p.h / 2, p.w / 2);
    let mut y = vec![T::zero(); p.n * ho * wo];
    y.par_chunks_mut(ho * wo).enumerate().for_each(|(i, yp)| {
        let xp = &x[i * p.h * p.w..(i + 1) * p.h * p.w];
        for oy in 0..ho {
            for ox in 0..wo {
                yp[oy * wo + ox] = xp[argmax4(xp, p.w, oy, ox)];
            }
        }
    });
    y
}

fn maxpool_bwd<T: Float>(x: &[T], dy: &[T], p: Planes) -> Vec<T> {
    let (ho, wo) = (p.h / 2, p.w / 2);
    let mut dx = vec![T::zero(); x.len()];
    dx.par_chunks_mut(p.h * p.w).enumerate().for_each(|(i, dxp)| {
        let xp = &x[i * p.h * p.w..(i + 1) * p.h * p.w];
        let dyp = &dy[i * ho * wo..(i + 1) * ho * wo];
        for oy in 0..ho {
            for ox in 0..wo {
                dxp[argmax4(xp, p.w, oy, ox)] = dyp[oy * wo + ox];
            }
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
}

impl CustomOp1 for Upsample2x {
    fn name(&self) -> &'static str {
        "upsample-nearest-2x"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, (b, c, h, w)) = planes(l)?;
        Ok((dispatch1!(s, l, |x| upsample_fwd(x, p)), Shape::from((b, c, 2 * h, 2 * w))))
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
    use crate::nn::gradcheck::{self, tests::randn};
    use crate::nn::resample;

    fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn match_the_composite_ops_and_finite_differences() {
        for dt in [DType::F64, DType::F32] {
            let x = randn(&[2, 3, 6, 4], 1).to_dtype(dt).unwrap();
            assert_eq!(max_abs(&max_pool2x(&x).unwrap(), &resample::max_pool2x_composite(&x).unwrap()), 0.0);
            assert_eq!(max_abs(&upsample_nearest2x(&x).unwrap(), &resample::upsample_nearest2x_composite(&x).unwrap()), 0.0);
        }
        let x = randn(&[2, 3, 6, 4], 2);
        let g = gradcheck::check(&|ts: &[Tensor]| max_pool2x(&ts[0]), std::slice::from_ref(&x), 40, 1e-6, 3).unwrap();
        assert!(g.max_err < 1e-6, "max-pool: {}", g.max_err);
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
