//! Kernels written with candle's own ops, so they run on every device: what the layers use
//! where no device-specific kernel applies (CUDA today). Each gives the CPU kernel's value and
//! gradient, ties included: a max-pool window's gradient goes to its *first* maximum in
//! row-major order, as the CPU kernels and PyTorch do, where candle's `max` backward would give
//! it to every tied element (common on MNIST's flat backgrounds, where it changes LPIPS's and
//! MFD's directions). CI checks them against the CPU kernels on the CPU; the GPU check
//! (`scripts/gpu_check.sh`) checks them on CUDA.

use candle_core::{DType, Tensor, D};

use super::Act;

/// `act(conv(x, w) + bias)`, NCHW, OIHW weights; `bias` is `[O]` or per sample `[B, O]`.
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize, relu: bool) -> candle_core::Result<Tensor> {
    bias_act(x.conv2d(w, padding, stride, 1, 1)?, bias, relu)
}

/// `act(y + bias)` for a convolution's output `y` [B, O, H, W]; `bias` is `[O]` or `[B, O]`.
pub fn bias_act(mut y: Tensor, bias: Option<&Tensor>, relu: bool) -> candle_core::Result<Tensor> {
    let o = y.dim(1)?;
    if let Some(b) = bias {
        let b = if b.rank() == 1 { b.reshape((1, o, 1, 1))? } else { b.reshape((b.dim(0)?, o, 1, 1))? };
        y = y.broadcast_add(&b)?;
    }
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// `act(GroupNorm(x) * weight + bias)` (biased variance, as PyTorch).
pub fn group_norm_act(x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f64, act: Act) -> candle_core::Result<Tensor> {
    let c = x.dim(1)?;
    let y = group_normalize(x, groups, eps)?;
    let y = y.broadcast_mul(&weight.reshape((1, c, 1, 1))?)?.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
    match act {
        Act::Identity => Ok(y),
        Act::Silu => y.silu(),
        Act::Relu => y.relu(),
    }
}

/// Group normalisation without the affine map.
pub fn group_normalize(x: &Tensor, groups: usize, eps: f64) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let xg = x.reshape((b, groups, (c / groups) * h * w))?;
    let mean = xg.mean_keepdim(2)?;
    let centered = xg.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(2)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.reshape((b, c, h, w))
}

/// The UNet's residual join `(a + b) * s`.
pub fn add_scaled(a: &Tensor, b: &Tensor, s: f64) -> candle_core::Result<Tensor> {
    (a + b)? * s
}

/// A skip connection's channel concatenation `cat([a, b], 1)`.
pub fn cat_channels(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    Tensor::cat(&[a, b], 1)
}

/// Dropout by the mask's values computed on the host and uploaded (the native kernel computes them
/// on the device).
pub fn dropout(x: &Tensor, mask: &super::cpu::dropout::Mask) -> candle_core::Result<Tensor> {
    let values = Tensor::from_vec(mask.values(x.elem_count()), x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&values)
}

/// `x.narrow(dim, start, ..)` taking `count` elements `stride` apart: `start + stride * i`.
pub fn strided(x: &Tensor, dim: usize, start: usize, count: usize, stride: usize) -> candle_core::Result<Tensor> {
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
    v.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// The first maximum of each row of `windows` ([.., n]): its value, with the gradient routed to
/// that element alone.
fn first_max(windows: &Tensor) -> candle_core::Result<Tensor> {
    let w = windows.detach();
    let is_max = w.broadcast_eq(&w.max_keepdim(D::Minus1)?)?;
    // Among the maxima, the one where the running count of maxima is 1.
    let running = is_max.to_dtype(DType::F32)?.cumsum(D::Minus1)?;
    let first = (is_max.to_dtype(DType::F32)? * running.eq(1f64)?.to_dtype(DType::F32)?)?.to_dtype(DType::U8)?;
    first.where_cond(windows, &windows.zeros_like()?)?.sum(D::Minus1)
}

/// Max-pooling over `k x k` windows with stride `stride`, no padding, floor mode (PyTorch's
/// `MaxPool2d(k, stride)`): [B,C,H,W] -> [B,C,(H-k)/s+1,(W-k)/s+1].
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (ho, wo) = ((h - k) / stride + 1, (w - k) / stride + 1);
    let mut windows = Vec::with_capacity(k * k);
    for dy in 0..k {
        let rows = strided(x, 2, dy, ho, stride)?;
        for dx in 0..k {
            windows.push(strided(&rows, 3, dx, wo, stride)?);
        }
    }
    first_max(&Tensor::stack(&windows, D::Minus1)?)
}

/// 2x2 max-pooling with stride 2; odd trailing rows and columns are dropped.
pub fn max_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 { x.narrow(2, 0, 2 * ho)?.narrow(3, 0, 2 * wo)? } else { x.clone() };
    let windows = x.reshape((b, c, ho, 2, wo, 2))?.permute((0, 1, 2, 4, 3, 5))?.reshape((b, c, ho, wo, 4))?;
    first_max(&windows)
}

/// Nearest-neighbour 2x upsampling.
pub fn upsample_nearest2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?.broadcast_as((b, c, h, 2, w, 2))?.reshape((b, c, 2 * h, 2 * w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::tests::{max_abs_diff, randn};
    use crate::nn::kernels::cpu;
    use candle_core::Var;

    /// Values and input gradients (of `sum(y * r)`, `r` random) of two pooling functions.
    fn agree(
        x: &Tensor,
        a: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
        b: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    ) -> (f64, f64) {
        let run = |f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| {
            let v = Var::from_tensor(x).unwrap();
            let y = f(v.as_tensor()).unwrap();
            let r = randn(y.dims(), 5).to_dtype(y.dtype()).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap().get(v.as_tensor()).unwrap().clone();
            (y, g)
        };
        let ((ya, ga), (yb, gb)) = (run(&a), run(&b));
        (max_abs_diff(&ya, &yb), max_abs_diff(&ga, &gb))
    }

    /// Inputs with many exact ties: small integers, and whole constant regions.
    fn tied(shape: &[usize], seed: u64) -> Tensor {
        let x = (randn(shape, seed) * 1.5).unwrap().round().unwrap().clamp(-1.0, 2.0).unwrap();
        let (h, w) = (shape[2], shape[3]);
        let flat = x.narrow(2, 0, h / 2).unwrap().zeros_like().unwrap();
        Tensor::cat(&[&flat, &x.narrow(2, h / 2, h - h / 2).unwrap()], 2).unwrap().narrow(3, 0, w).unwrap()
    }

    #[test]
    fn first_max_pools_equal_the_cpu_kernels_with_ties() {
        for dt in [DType::F32, DType::F64] {
            for (h, w) in [(8, 8), (7, 9), (6, 5)] {
                let x = tied(&[2, 3, h, w], 10 + h as u64).to_dtype(dt).unwrap();
                let (dv, dg) = agree(&x, max_pool2x, crate::nn::resample::max_pool2x);
                assert_eq!((dv, dg), (0.0, 0.0), "2x2 {dt:?} {h}x{w}");
                for (k, s) in [(3, 2), (2, 2), (3, 1)] {
                    let (dv, dg) = agree(&x, |x| max_pool2d(x, k, s), |x| cpu::maxpool::max_pool2d(x, k, s));
                    // overlapping windows sum their gradients in another order: rounding only
                    // (a tie routed elsewhere would differ by a whole upstream value, ~1)
                    assert!(dv == 0.0 && dg < 1e-5, "k{k} s{s} {dt:?} {h}x{w}: {dv} {dg}");
                }
            }
        }
    }

    #[test]
    fn each_tied_window_sends_its_gradient_to_one_element() {
        let x = Var::from_tensor(&Tensor::ones((1, 1, 4, 4), DType::F32, &candle_core::Device::Cpu).unwrap()).unwrap();
        let g = max_pool2x(x.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().clone();
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // the top-left element of each 2x2 window
        let want: Vec<f32> = (0..16).map(|i| if (i / 4) % 2 == 0 && i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        assert_eq!(g, want);
    }

    /// candle's conv2d input gradient (vendored patch: a forward convolution with the flipped,
    /// transposed kernel at stride 1) against `conv_transpose2d`, and the whole conv's gradients
    /// against the CPU kernel's, for the kernel sizes and paddings the networks use.
    #[test]
    fn the_conv_input_gradient_is_the_transposed_convolution() {
        for (k, pad, stride, (h, w)) in
            [(3, 1, 1, (6, 5)), (1, 0, 1, (4, 4)), (3, 0, 1, (7, 6)), (5, 2, 1, (6, 6)), (3, 1, 2, (8, 8)), (3, 1, 2, (7, 7))]
        {
            let x = Var::from_tensor(&randn(&[2, 3, h, w], 1)).unwrap();
            let wt = Var::from_tensor(&randn(&[4, 3, k, k], 2)).unwrap();
            let y = conv2d(x.as_tensor(), wt.as_tensor(), None, stride, pad, false).unwrap();
            let r = randn(y.dims(), 3);
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let dx = grads.get(x.as_tensor()).unwrap();
            let out_size = (y.dim(2).unwrap() - 1) * stride + k - 2 * pad;
            let want = r.conv_transpose2d(wt.as_tensor(), pad, h - out_size, stride, 1).unwrap();
            let err = max_abs_diff(dx, &want);
            assert!(err < 1e-12, "k{k} p{pad} s{stride}: input gradient off by {err}");
            // and the CPU kernel's gradients (value, input and weight)
            let (xc, wc) = (Var::from_tensor(x.as_tensor()).unwrap(), Var::from_tensor(wt.as_tensor()).unwrap());
            let yc = cpu::conv::conv2d_fused(xc.as_tensor(), wc.as_tensor(), None, stride, pad, false, false).unwrap();
            let gc = (&yc * &r).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(max_abs_diff(&y, &yc) < 1e-12, "k{k} p{pad} s{stride}: values");
            assert!(max_abs_diff(dx, gc.get(xc.as_tensor()).unwrap()) < 1e-12, "k{k} p{pad} s{stride}: input gradient vs CPU kernel");
            let (dw, dwc) = (grads.get(wt.as_tensor()).unwrap(), gc.get(wc.as_tensor()).unwrap());
            assert!(max_abs_diff(dw, dwc) < 1e-12, "k{k} p{pad} s{stride}: weight gradient vs CPU kernel");
        }
    }

    #[test]
    fn upsampling_equals_the_cpu_kernel() {
        let x = randn(&[2, 3, 5, 4], 3).to_dtype(DType::F32).unwrap();
        let (dv, dg) = agree(&x, upsample_nearest2x, cpu::resample::upsample_nearest2x);
        assert!(dv == 0.0 && dg < 1e-6, "{dv} {dg}");
    }
}
