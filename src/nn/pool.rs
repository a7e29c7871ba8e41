//! Max-pooling with any kernel and stride (AlexNet uses kernel 3, stride 2). candle 0.11's own
//! `max_pool2d` has a wrong backward, and none at all when the kernel differs from the stride.
//!
//! On CPU the custom op of `kernels::cpu::maxpool`, on other devices `kernels::portable`'s, both
//! with PyTorch's semantics at ties (each window's gradient goes to its first maximum).

use candle_core::{Tensor, D};

use super::kernels::portable::{self, strided};

/// Max-pooling over `k x k` windows with stride `stride`, no padding, floor mode (PyTorch's
/// `MaxPool2d(k, stride)`): [B,C,H,W] -> [B,C,(H-k)/s+1,(W-k)/s+1].
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if k == 0 || stride == 0 || h < k || w < k {
        candle_core::bail!("max_pool2d: kernel {k}, stride {stride} does not fit an input of {h}x{w}");
    }
    if !super::kernels::cpu_kernels_for(x) {
        return portable::max_pool2d(x, k, stride);
    }
    super::kernels::cpu::maxpool::max_pool2d(x, k, stride)
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

/// Average pooling as [`avg_pool2d`], but each window divided by the number of its elements
/// inside the image (PyTorch's `count_include_pad=False`, TensorFlow's SAME pooling: the 2015
/// Inception FID graph's).
pub fn avg_pool2d_inside_only(x: &Tensor, k: usize, stride: usize, pad: usize) -> candle_core::Result<Tensor> {
    let y = avg_pool2d(x, k, stride, pad)?;
    let (_, _, h, w) = x.dims4()?;
    let (_, _, ho, wo) = y.dims4()?;
    // elements of each window inside [0, n) along one axis
    let inside = |n: usize, n_out: usize| -> Vec<f64> {
        (0..n_out)
            .map(|o| {
                let start = (o * stride) as isize - pad as isize;
                (start + k as isize).min(n as isize) as f64 - start.max(0) as f64
            })
            .collect()
    };
    let (rows, cols) = (inside(h, ho), inside(w, wo));
    let scale: Vec<f64> = rows.iter().flat_map(|r| cols.iter().map(move |c| (k * k) as f64 / (r * c))).collect();
    let scale = Tensor::from_vec(scale, (1, 1, ho, wo), x.device())?.to_dtype(x.dtype())?;
    y.broadcast_mul(&scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, tests::randn};

    #[test]
    fn avg_pools_match_a_direct_loop_with_and_without_the_padding_counted() {
        for (h, w, k, s, p) in [(7, 7, 3, 1, 1), (8, 6, 3, 2, 0), (5, 5, 3, 2, 1), (4, 6, 2, 2, 0)] {
            let x = randn(&[2, 3, h, w], 50 + h as u64);
            let got = avg_pool2d(&x, k, s, p).unwrap();
            let inside_only = avg_pool2d_inside_only(&x, k, s, p).unwrap();
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            assert_eq!(got.dims(), &[2, 3, ho, wo]);
            let flat = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let gv = got.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let iv = inside_only.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for pl in 0..6 {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let (mut sum, mut count) = (0.0, 0);
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    sum += flat[pl * h * w + iy as usize * w + ix as usize];
                                    count += 1;
                                }
                            }
                        }
                        let at = (pl * ho + oy) * wo + ox;
                        assert!((gv[at] - sum / (k * k) as f64).abs() < 1e-12, "h{h} w{w} k{k} s{s} p{p}");
                        assert!((iv[at] - sum / count as f64).abs() < 1e-12, "inside only: h{h} w{w} k{k} s{s} p{p}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_portable_fallback_agrees_with_the_cpu_op() {
        for (h, w, k, s) in [(7, 7, 3, 2), (8, 6, 2, 2), (9, 9, 3, 1)] {
            // (seed 77 draws a window whose two largest values are within the finite-difference step)
            let x = randn(&[2, 3, h, w], 170 + h as u64);
            let a = max_pool2d(&x, k, s).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let b = portable::max_pool2d(&x, k, s).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            assert_eq!(a, b);
            let g = check(&|ts: &[Tensor]| portable::max_pool2d(&ts[0], k, s), &[x], 30, 1e-6, 71).unwrap();
            assert!(g.max_err < 1e-6, "portable h{h} w{w}: {}", g.max_err);
        }
    }
}
