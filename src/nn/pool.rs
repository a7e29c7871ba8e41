//! Max-pooling with any kernel and stride (AlexNet uses kernel 3, stride 2). candle 0.11's own
//! `max_pool2d` has a wrong backward, and none at all when the kernel differs from the stride.
//!
//! On CPU a custom op with PyTorch's semantics: each window's gradient goes to its *first*
//! maximum (row-major scan; NaN counts as a maximum), and overlapping windows accumulate. Ties
//! are common, not a corner case: a constant image region (MNIST's background) gives equal
//! features in a whole window, and sending the gradient to every tied element (candle's `max`
//! backward) inflates LPIPS's input gradient on MNIST digits by ~2x. Other devices fall back to
//! strided views and `max` (correct except at exact ties).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor, WithDType, D};

/// Pooling geometry over `planes` = B*C planes of `h x w`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    planes: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
}

impl Geom {
    fn out(&self) -> (usize, usize) {
        ((self.h - self.k) / self.s + 1, (self.w - self.k) / self.s + 1)
    }
    /// Calls `f(out_index, argmax_input_index)` for every output element.
    fn for_each_argmax<T: WithDType>(&self, x: &[T], mut f: impl FnMut(usize, usize)) {
        let (ho, wo) = self.out();
        for p in 0..self.planes {
            let plane = p * self.h * self.w;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut best = plane + oy * self.s * self.w + ox * self.s;
                    let mut m = x[best];
                    for ky in 0..self.k {
                        let row = plane + (oy * self.s + ky) * self.w + ox * self.s;
                        for kx in 0..self.k {
                            let v = x[row + kx];
                            // PyTorch: `val > maxval || isnan(val)`, so the first maximum wins
                            if v > m || v.to_f64().is_nan() {
                                m = v;
                                best = row + kx;
                            }
                        }
                    }
                    f((p * ho + oy) * wo + ox, best);
                }
            }
        }
    }
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    super::kernels::cpu::simd::contiguous_slice(s, l, format_args!("max-pool: input"))
}

fn pool_fwd<T: WithDType>(x: &[T], g: &Geom) -> Vec<T> {
    let (ho, wo) = g.out();
    let mut out = vec![T::zero(); g.planes * ho * wo];
    g.for_each_argmax(x, |o, i| out[o] = x[i]);
    out
}

fn pool_bwd<T: WithDType + std::ops::AddAssign>(x: &[T], grad: &[T], g: &Geom) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    g.for_each_argmax(x, |o, i| out[i] += grad[o]);
    out
}

struct MaxPool(Geom);
/// (input, output gradient) -> input gradient.
struct MaxPoolBwd(Geom);

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (ho, wo) = g.out();
        let shape = Shape::from((g.planes, ho, wo));
        Ok(match s.dtype() {
            DType::F32 => (CpuStorage::F32(pool_fwd(slice::<f32>(s, l)?, g)), shape),
            DType::F64 => (CpuStorage::F64(pool_fwd(slice::<f64>(s, l)?, g)), shape),
            dt => candle_core::bail!("max-pool: unsupported dtype {dt:?}"),
        })
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &MaxPoolBwd(self.0))?))
    }
}

impl CustomOp2 for MaxPoolBwd {
    fn name(&self) -> &'static str {
        "max-pool-bwd"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let shape = Shape::from((g.planes, g.h, g.w));
        Ok(match s1.dtype() {
            DType::F32 => (CpuStorage::F32(pool_bwd(slice::<f32>(s1, l1)?, slice::<f32>(s2, l2)?, g)), shape),
            DType::F64 => (CpuStorage::F64(pool_bwd(slice::<f64>(s1, l1)?, slice::<f64>(s2, l2)?, g)), shape),
            dt => candle_core::bail!("max-pool: unsupported dtype {dt:?}"),
        })
    }
}

/// `x.narrow(dim, start, ..)` taking `count` elements `stride` apart: `start + stride * i`.
fn strided(x: &Tensor, dim: usize, start: usize, count: usize, stride: usize) -> candle_core::Result<Tensor> {
    let len = x.dim(dim)?;
    let span = stride * (count - 1) + 1;
    let v = x.narrow(dim, start, span)?;
    if stride == 1 {
        return Ok(v);
    }
    // pad to stride * count so the view reshapes to [.., count, stride, ..]; index 0 of the
    // stride axis is never a padded element.
    let v = v.pad_with_zeros(dim, 0, stride * count - span)?;
    let mut shape = v.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    debug_assert!(start + span <= len);
    v.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Max-pooling over `k x k` windows with stride `stride`, no padding, floor mode (PyTorch's
/// `MaxPool2d(k, stride)`): [B,C,H,W] -> [B,C,(H-k)/s+1,(W-k)/s+1].
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if k == 0 || stride == 0 || h < k || w < k {
        candle_core::bail!("max_pool2d: kernel {k}, stride {stride} does not fit an input of {h}x{w}");
    }
    if !x.device().is_cpu() {
        return max_pool2d_views(x, k, stride);
    }
    let g = Geom { planes: b * c, h, w, k, s: stride };
    let (ho, wo) = g.out();
    x.contiguous()?.reshape((b * c, h, w))?.apply_op1(MaxPool(g))?.reshape((b, c, ho, wo))
}

/// The same as separable strided views and `max` (any device; at exact ties, every tied
/// element gets the gradient).
pub fn max_pool2d_views(x: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (ho, wo) = ((h - k) / stride + 1, (w - k) / stride + 1);
    let cols: Vec<Tensor> = (0..k).map(|dx| strided(x, 3, dx, wo, stride)).collect::<candle_core::Result<_>>()?;
    let xw = Tensor::stack(&cols, D::Minus1)?.max(D::Minus1)?; // [B,C,H,wo]
    let rows: Vec<Tensor> = (0..k).map(|dy| strided(&xw, 2, dy, ho, stride)).collect::<candle_core::Result<_>>()?;
    Tensor::stack(&rows, D::Minus1)?.max(D::Minus1)
}

/// Average pooling over `k x k` windows, stride `stride`, zero padding `pad`, padded zeros
/// counted (PyTorch's `avg_pool2d` default `count_include_pad=True`, as Inception-v3 uses):
/// separable strided views, so any device and the view ops' gradients.
pub fn avg_pool2d(x: &Tensor, k: usize, stride: usize, pad: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if k == 0 || stride == 0 || h + 2 * pad < k || w + 2 * pad < k {
        candle_core::bail!("avg_pool2d: kernel {k}, stride {stride}, padding {pad} does not fit an input of {h}x{w}");
    }
    let x = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let (ho, wo) = ((hp - k) / stride + 1, (wp - k) / stride + 1);
    let cols: Vec<Tensor> = (0..k).map(|dx| strided(&x, 3, dx, wo, stride)).collect::<candle_core::Result<_>>()?;
    let xw = Tensor::stack(&cols, D::Minus1)?.sum(D::Minus1)?;
    let rows: Vec<Tensor> = (0..k).map(|dy| strided(&xw, 2, dy, ho, stride)).collect::<candle_core::Result<_>>()?;
    Tensor::stack(&rows, D::Minus1)?.sum(D::Minus1)? / (k * k) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, tests::randn};
    use candle_core::Device;

    #[test]
    fn pool_values_match_a_direct_loop() {
        for (h, w, k, s) in [(7, 7, 3, 2), (8, 6, 3, 2), (5, 9, 2, 2), (6, 6, 3, 1), (4, 4, 3, 3), (3, 3, 3, 2)] {
            let x = randn(&[2, 3, h, w], 30 + h as u64);
            let got = max_pool2d(&x, k, s).unwrap();
            let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
            assert_eq!(got.dims(), &[2, 3, ho, wo]);
            let flat = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let gv = got.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for p in 0..6 {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut m = f64::NEG_INFINITY;
                        for ky in 0..k {
                            for kx in 0..k {
                                m = m.max(flat[p * h * w + (oy * s + ky) * w + ox * s + kx]);
                            }
                        }
                        assert_eq!(gv[(p * ho + oy) * wo + ox], m, "h{h} w{w} k{k} s{s}");
                    }
                }
            }
        }
    }

    #[test]
    fn avg_pool_matches_a_direct_loop_counting_padding() {
        for (h, w, k, s, p) in [(7, 7, 3, 1, 1), (8, 6, 3, 2, 0), (5, 5, 3, 2, 1), (4, 6, 2, 2, 0)] {
            let x = randn(&[2, 3, h, w], 50 + h as u64);
            let got = avg_pool2d(&x, k, s, p).unwrap();
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            assert_eq!(got.dims(), &[2, 3, ho, wo]);
            let flat = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let gv = got.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for pl in 0..6 {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut sum = 0.0;
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    sum += flat[pl * h * w + iy as usize * w + ix as usize];
                                }
                            }
                        }
                        let want = sum / (k * k) as f64;
                        assert!((gv[(pl * ho + oy) * wo + ox] - want).abs() < 1e-12, "h{h} w{w} k{k} s{s} p{p}");
                    }
                }
            }
        }
    }

    #[test]
    fn pool_gradients_match_finite_differences_on_odd_and_even_sizes() {
        for (h, w, k, s) in [(7, 7, 3, 2), (8, 8, 3, 2), (9, 6, 3, 2), (6, 7, 2, 2), (5, 5, 3, 1)] {
            let x = randn(&[2, 2, h, w], 40 + (h * w) as u64);
            let g = check(&|ts: &[Tensor]| max_pool2d(&ts[0], k, s), &[x], 60, 1e-6, 41).unwrap();
            assert!(g.probes > 0 && g.max_err < 1e-6, "maxpool h{h} w{w} k{k} s{s}: {}", g.max_err);
        }
    }

    #[test]
    fn views_fallback_agrees_with_the_cpu_op() {
        for (h, w, k, s) in [(7, 7, 3, 2), (8, 6, 2, 2), (9, 9, 3, 1)] {
            // (seed 77 draws a window whose two largest values are within the finite-difference step)
            let x = randn(&[2, 3, h, w], 170 + h as u64);
            let a = max_pool2d(&x, k, s).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let b = max_pool2d_views(&x, k, s).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            assert_eq!(a, b);
            let g = check(&|ts: &[Tensor]| max_pool2d_views(&ts[0], k, s), &[x], 30, 1e-6, 71).unwrap();
            assert!(g.max_err < 1e-6, "views h{h} w{w}: {}", g.max_err);
        }
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum_as_pytorch() {
        // a constant 4x4 input, k2 s2: each window's gradient goes to its top-left element;
        // k3 s1 on 4x4: the four windows' first elements are (0,0), (0,1), (1,0), (1,1)
        let x = candle_core::Var::from_vec(vec![1.0f64; 16], (1, 1, 4, 4), &Device::Cpu).unwrap();
        let grad_of = |k, s| {
            let y = max_pool2d(x.as_tensor(), k, s).unwrap();
            y.sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
        };
        let g = grad_of(2, 2);
        let expect: Vec<f64> = (0..16).map(|i| if i % 2 == 0 && (i / 4) % 2 == 0 { 1.0 } else { 0.0 }).collect();
        assert_eq!(g, expect);
        let g = grad_of(3, 1);
        let expect: Vec<f64> = (0..16).map(|i| if [0, 1, 4, 5].contains(&i) { 1.0 } else { 0.0 }).collect();
        assert_eq!(g, expect);
    }

    #[test]
    fn pool_gradient_lands_on_the_maximum_and_accumulates_over_overlaps() {
        // one large value in the middle of a 5x5 input: k3 s2 gives 2x2 windows, all holding it
        let mut v = vec![0.0f64; 25];
        v[12] = 5.0;
        for (i, x) in v.iter_mut().enumerate() {
            if i != 12 {
                *x = -(i as f64) - 1.0;
            }
        }
        let x = candle_core::Var::from_vec(v, (1, 1, 5, 5), &Device::Cpu).unwrap();
        let y = max_pool2d(x.as_tensor(), 3, 2).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![5.0; 4]);
        let g = y.sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(g[12], 4.0);
        assert_eq!(g.iter().sum::<f64>(), 4.0);
    }
}
