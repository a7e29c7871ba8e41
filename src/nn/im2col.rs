//! Convolution as im2col + matrix multiply on CPU. candle 0.11 computes a convolution's input
//! gradient with a naive `conv_transpose2d`, which dominated training time; here the forward is
//! a gather (im2col), the input gradient its adjoint (col2im, a scatter-add), and both weight
//! and input gradients flow through candle's fast `matmul`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, WithDType};

/// Geometry of one convolution: input [B, C, H, W], square kernel `k`, `stride`, `pad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    pub fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }
    /// Rows of the column matrix: B * Ho * Wo.
    pub fn rows(&self) -> usize {
        let (ho, wo) = self.out_hw();
        self.b * ho * wo
    }
    /// Columns of the column matrix: C * k * k.
    pub fn cols(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Calls `f(row, col, input_index)` for every in-bounds (row, col) pair.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = self.out_hw();
        let (k, s, p) = (self.k as isize, self.stride as isize, self.pad as isize);
        let cols = self.cols();
        for b in 0..self.b {
            for oy in 0..ho {
                for ox in 0..wo {
                    let row = (b * ho + oy) * wo + ox;
                    for c in 0..self.c {
                        let plane = (b * self.c + c) * self.h * self.w;
                        for ky in 0..k {
                            let iy = oy as isize * s - p + ky;
                            if iy < 0 || iy >= self.h as isize {
                                continue;
                            }
                            for kx in 0..k {
                                let ix = ox as isize * s - p + kx;
                                if ix < 0 || ix >= self.w as isize {
                                    continue;
                                }
                                let col = (c as isize * k * k + ky * k + kx) as usize;
                                f(row * cols + col, 0, plane + iy as usize * self.w + ix as usize);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn im2col<T: WithDType>(x: &[T], g: &Geometry) -> Vec<T> {
    let mut out = vec![T::zero(); g.rows() * g.cols()];
    g.for_each(|o, _, i| out[o] = x[i]);
    out
}

fn col2im<T: WithDType + std::ops::AddAssign>(cols: &[T], g: &Geometry) -> Vec<T> {
    let mut out = vec![T::zero(); g.b * g.c * g.h * g.w];
    g.for_each(|o, _, i| out[i] += cols[o]);
    out
}

fn contiguous<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("im2col: input must be contiguous".into()))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// [B,C,H,W] -> [B*Ho*Wo, C*k*k].
struct Im2Col(Geometry);
/// [B*Ho*Wo, C*k*k] -> [B,C,H,W], summing overlaps (the adjoint of `Im2Col`).
struct Col2Im(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let shape = Shape::from((g.rows(), g.cols()));
        Ok(match s.dtype() {
            DType::F32 => (CpuStorage::F32(im2col(contiguous::<f32>(s, l)?, g)), shape),
            DType::F64 => (CpuStorage::F64(im2col(contiguous::<f64>(s, l)?, g)), shape),
            dt => candle_core::bail!("im2col: unsupported dtype {dt:?}"),
        })
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let shape = Shape::from((g.b, g.c, g.h, g.w));
        Ok(match s.dtype() {
            DType::F32 => (CpuStorage::F32(col2im(contiguous::<f32>(s, l)?, g)), shape),
            DType::F64 => (CpuStorage::F64(col2im(contiguous::<f64>(s, l)?, g)), shape),
            dt => candle_core::bail!("col2im: unsupported dtype {dt:?}"),
        })
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// `conv2d(x, weight)` (no bias) for CPU tensors, with gradients for both.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (o, ci, k, k2) = weight.dims4()?;
    if ci != c || k != k2 {
        candle_core::bail!("conv2d: input has {c} channels, weight is {o}x{ci}x{k}x{k2}");
    }
    let g = Geometry { b, c, h, w, k, stride, pad };
    let (ho, wo) = g.out_hw();
    super::flops::add_matmul(b * ho * wo, o, c * k * k);
    if k == 1 && stride == 1 && pad == 0 {
        // A 1x1 convolution is a matmul over channels; no gather needed.
        let x2 = x.permute((0, 2, 3, 1))?.reshape((b * h * w, c))?;
        let y = x2.matmul(&weight.reshape((o, c))?.t()?)?;
        return y.reshape((b, h, w, o))?.permute((0, 3, 1, 2))?.contiguous();
    }
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    let y = cols.matmul(&weight.reshape((o, c * k * k))?.t()?)?;
    y.reshape((b, ho, wo, o))?.permute((0, 3, 1, 2))?.contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{self, tests::randn};

    #[test]
    fn matches_candle_conv2d_on_random_inputs() {
        for (k, stride, pad, size) in [(3, 1, 1, 7), (3, 2, 1, 8), (3, 2, 1, 7), (1, 1, 0, 5), (5, 1, 2, 6), (11, 4, 2, 23)] {
            let x = randn(&[2, 3, size, size], 1);
            let wt = randn(&[4, 3, k, k], 2);
            let ours = conv2d(&x, &wt, stride, pad).unwrap();
            let theirs = x.conv2d(&wt, pad, stride, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let err = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(err < 1e-10, "k{k} s{stride} p{pad} n{size}: {err}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (k, stride, pad, size) in [(3, 1, 1, 5), (3, 2, 1, 7), (3, 2, 1, 6), (1, 1, 0, 4)] {
            let x = randn(&[2, 2, size, size], 3);
            let wt = randn(&[3, 2, k, k], 4);
            let f = |ts: &[Tensor]| conv2d(&ts[0], &ts[1], stride, pad);
            let g = gradcheck::check(&f, &[x, wt], 40, 1e-5, 5).unwrap();
            assert!(g.max_err < 1e-6, "k{k} s{stride} p{pad} n{size}: {}", g.max_err);
        }
    }
}
