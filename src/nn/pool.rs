//! Max-pooling with any kernel and stride (AlexNet uses kernel 3, stride 2), written as strided
//! views and `max`, so the gradient is candle's (correct) `max` backward. candle 0.11's own
//! `max_pool2d` has a wrong backward and none at all when the kernel differs from the stride.
//!
//! Ties: candle's `max` backward sends the gradient to every tied maximum, PyTorch to the first
//! one only. This only differs for exactly equal values in one window (after a ReLU, windows of
//! zeros, whose gradient the ReLU then blocks unless a pre-activation is exactly 0).

use candle_core::{Tensor, D};

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
/// `MaxPool2d(k, stride)`): [B,C,H,W] -> [B,C,(H-k)/s+1,(W-k)/s+1]. Separable: the window max
/// is the max over rows of the max over columns.
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if k == 0 || stride == 0 || h < k || w < k {
        candle_core::bail!("max_pool2d: kernel {k}, stride {stride} does not fit an input of {h}x{w}");
    }
    let (ho, wo) = ((h - k) / stride + 1, (w - k) / stride + 1);
    let cols: Vec<Tensor> = (0..k).map(|dx| strided(x, 3, dx, wo, stride)).collect::<candle_core::Result<_>>()?;
    let xw = Tensor::stack(&cols, D::Minus1)?.max(D::Minus1)?; // [B,C,H,wo]
    let rows: Vec<Tensor> = (0..k).map(|dy| strided(&xw, 2, dy, ho, stride)).collect::<candle_core::Result<_>>()?;
    Tensor::stack(&rows, D::Minus1)?.max(D::Minus1)
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
    fn pool_gradients_match_finite_differences_on_odd_and_even_sizes() {
        for (h, w, k, s) in [(7, 7, 3, 2), (8, 8, 3, 2), (9, 6, 3, 2), (6, 7, 2, 2), (5, 5, 3, 1)] {
            let x = randn(&[2, 2, h, w], 40 + (h * w) as u64);
            let g = check(&|ts: &[Tensor]| max_pool2d(&ts[0], k, s), &[x], 60, 1e-6, 41).unwrap();
            assert!(g.probes > 0 && g.max_err < 1e-6, "maxpool h{h} w{w} k{k} s{s}: {}", g.max_err);
        }
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
