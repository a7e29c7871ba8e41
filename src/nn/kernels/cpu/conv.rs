//! Convolution on CPU as per-sample im2col + `gemm`, written as one candle custom op with a
//! hand-written backward. candle 0.11 computes a convolution's input gradient with a naive
//! `conv_transpose2d`; and a graph of "gather then matmul" keeps every column matrix alive until
//! the backward (9x the activation memory). Here, per sample and in parallel over the batch:
//!
//! * forward: `col = im2col(x_b)` [C*k*k, Ho*Wo] in a reused scratch buffer, `y_b = W col`
//!   (NCHW out, no permute);
//! * input gradient: `dx_b = col2im(W^T dy_b)`;
//! * weight gradient: `dW = sum_b dy_b col_b^T`, `col_b` recomputed. The batch is cut into fixed
//!   chunks independent of the thread count and the partial sums are added in chunk order, so the
//!   result is bit-identical from run to run.
//!
//! Only the inputs that need a gradient get one (a frozen network's weights cost nothing).
//!
//! The column matrices come from `im2col` and the products from `gemm`; where the layer allows it
//! and it applies, `winograd` does the forward and the input gradient instead.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::gemm::{alloc_unset, matmul};
use super::im2col::{col2im, im2col, Geometry};
use super::simd::Float;

crate::avx2_dispatch! {
    fn relu_in_place<T>(y: &mut [T]) {
        for v in y.iter_mut() {
            *v = if *v > T::zero() { *v } else { T::zero() };
        }
    }
}

crate::avx2_dispatch! {
    /// `dy * [y > 0]`: the gradient through a ReLU, from its output.
    fn relu_grad<T>(dy: &[T], y: &[T]) -> Vec<T> {
        dy.iter().zip(y).map(|(d, v)| if *v > T::zero() { *d } else { T::zero() }).collect()
    }
}

crate::avx2_dispatch! {
    /// Per (sample, channel) sums of `dy [B, O, HW]`: the gradient of a per-sample bias.
    fn channel_sums<T>(dy: &[T], hw: usize) -> Vec<T> {
        dy.chunks(hw).map(|row| super::simd::from_f64(super::simd::sum_map(row, |v| v))).collect()
    }
}

/// `bias` holds `o` values, or `b * o` (one row per sample); `relu` applies max(0, .) in place.
fn conv_fwd<T: Float>(x: &[T], w: &[T], bias: &[T], g: &Geometry, o: usize, relu: bool, winograd: bool) -> Vec<T> {
    if winograd && super::winograd::applies(g.k, g.stride, g.pad, g.c, o) {
        return super::winograd::conv_fwd(x, w, bias, g.b, g.c, g.h, g.w, o, relu);
    }
    let (ckk, hwo) = (g.ckk(), g.hw_out());
    let in_len = g.c * g.h * g.w;
    let per_sample = bias.len() == g.b * o && g.b > 1;
    let mut y = alloc_unset(g.b * o * hwo);
    let pointwise = g.is_pointwise();
    y.par_chunks_mut(o * hwo).enumerate().for_each(|(b, yb)| {
        let xb = &x[b * in_len..(b + 1) * in_len];
        let bias_b = if per_sample { &bias[b * o..(b + 1) * o] } else { &bias[..o] };
        for (row, bv) in yb.chunks_mut(hwo).zip(bias_b) {
            row.fill(*bv);
        }
        if pointwise {
            matmul(o, hwo, ckk, yb, true, w, (ckk, 1), xb, (hwo, 1));
        } else {
            T::with_scratch(ckk * hwo, |col| {
                im2col(xb, g, col);
                matmul(o, hwo, ckk, yb, true, w, (ckk, 1), col, (hwo, 1));
            });
        }
        if relu {
            relu_in_place(yb);
        }
    });
    y
}

fn conv_bwd_input<T: Float>(dy: &[T], w: &[T], g: &Geometry, o: usize, winograd: bool) -> Vec<T> {
    if winograd && super::winograd::applies(g.k, g.stride, g.pad, g.c, o) {
        // a same-size 3x3 convolution's input gradient is the same-size convolution of dy with
        // the kernel flipped in both axes and transposed (O <-> C)
        let mut wt = alloc_unset(w.len());
        for oi in 0..o {
            for ci in 0..g.c {
                for t in 0..9 {
                    wt[(ci * o + oi) * 9 + (8 - t)] = w[(oi * g.c + ci) * 9 + t];
                }
            }
        }
        let zero = vec![T::zero(); g.c];
        return super::winograd::conv_fwd(dy, &wt, &zero, g.b, o, g.h, g.w, g.c, false);
    }
    let (ckk, hwo) = (g.ckk(), g.hw_out());
    let in_len = g.c * g.h * g.w;
    let mut dx = alloc_unset(g.b * in_len);
    let pointwise = g.is_pointwise();
    dx.par_chunks_mut(in_len).enumerate().for_each(|(b, dxb)| {
        let dyb = &dy[b * o * hwo..(b + 1) * o * hwo];
        // W^T [ckk x o] * dy_b [o x hwo]
        if pointwise {
            matmul(ckk, hwo, o, dxb, false, w, (1, ckk), dyb, (hwo, 1));
        } else {
            T::with_scratch(ckk * hwo, |dcol| {
                matmul(ckk, hwo, o, dcol, false, w, (1, ckk), dyb, (hwo, 1));
                col2im(dcol, g, dxb);
            });
        }
    });
    dx
}

/// Samples per partial weight-gradient sum: fixed, so the summation order never depends on threads.
const WGRAD_CHUNK: usize = 4;

/// Returns `[dW (O*C*k*k); db (O)]` packed.
fn conv_bwd_weight<T: Float>(x: &[T], dy: &[T], g: &Geometry, o: usize) -> Vec<T> {
    let (ckk, hwo) = (g.ckk(), g.hw_out());
    let in_len = g.c * g.h * g.w;
    let pointwise = g.is_pointwise();
    let n_chunks = g.b.div_ceil(WGRAD_CHUNK);
    let partials: Vec<Vec<T>> = (0..n_chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut dw = vec![T::zero(); o * ckk + o];
            for b in chunk * WGRAD_CHUNK..((chunk + 1) * WGRAD_CHUNK).min(g.b) {
                let xb = &x[b * in_len..(b + 1) * in_len];
                let dyb = &dy[b * o * hwo..(b + 1) * o * hwo];
                let first = b == chunk * WGRAD_CHUNK;
                // dW^T [ckk x o] = col_b [ckk x hwo] * dy_b^T [hwo x o], kept transposed: gemm
                // then runs dW = dy_b col_b^T with dW column-major and packs the small dy_b,
                // where a row-major dW made it transpose-pack the large column matrix.
                if pointwise {
                    matmul(ckk, o, hwo, &mut dw[..o * ckk], !first, xb, (hwo, 1), dyb, (1, hwo));
                } else {
                    T::with_scratch(ckk * hwo, |col| {
                        im2col(xb, g, col);
                        matmul(ckk, o, hwo, &mut dw[..o * ckk], !first, col, (hwo, 1), dyb, (1, hwo));
                    });
                }
                for (db, row) in dw[o * ckk..].iter_mut().zip(dyb.chunks(hwo)) {
                    *db += row.iter().fold(T::zero(), |a, v| a + *v);
                }
            }
            dw
        })
        .collect();
    let mut iter = partials.into_iter();
    let mut dwt = iter.next().unwrap_or_else(|| vec![T::zero(); o * ckk + o]);
    for p in iter {
        for (a, b) in dwt.iter_mut().zip(&p) {
            *a += *b;
        }
    }
    // back to [O, C*k*k]
    let mut dw = alloc_unset(o * ckk + o);
    for (i, row) in dwt[..o * ckk].chunks(o).enumerate() {
        for (j, v) in row.iter().enumerate() {
            dw[j * ckk + i] = *v;
        }
    }
    dw[o * ckk..].copy_from_slice(&dwt[o * ckk..]);
    dw
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    super::simd::contiguous_slice(s, l, format_args!("conv2d: {what}"))
}

/// Dispatches `f` on the dtype of two storages (f32 or f64).
macro_rules! dispatch2 {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, $name:literal, |$a:ident, $b:ident| $body:expr) => {
        match ($s1.dtype(), $s2.dtype()) {
            (DType::F32, DType::F32) => {
                let ($a, $b) = (slice::<f32>($s1, $l1, $name)?, slice::<f32>($s2, $l2, $name)?);
                CpuStorage::F32($body)
            }
            (DType::F64, DType::F64) => {
                let ($a, $b) = (slice::<f64>($s1, $l1, $name)?, slice::<f64>($s2, $l2, $name)?);
                CpuStorage::F64($body)
            }
            (a, b) => candle_core::bail!("{}: unsupported dtypes {a:?}, {b:?}", $name),
        }
    };
}

/// `conv2d(x [B,C,H,W], w [O,C,k,k], b [O] or [B*O]) -> [B,O,Ho,Wo]`, then ReLU if `relu`.
struct ConvOp {
    g: Geometry,
    o: usize,
    relu: bool,
    per_sample_bias: bool,
    winograd: bool,
}

/// `(dy, y) -> dy * [y > 0]`.
struct ReluGrad;

/// `dy [B, O, HW] -> [B * O]` sums over HW.
struct ChannelSums {
    hw: usize,
}

/// `(dy [B,O,Ho,Wo], w) -> dx [B,C,H,W]`.
struct ConvBwdInput {
    g: Geometry,
    o: usize,
    winograd: bool,
}

/// `(x, dy) -> [dw (O*C*k*k); db (O)]`.
struct ConvBwdWeight {
    g: Geometry,
    o: usize,
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, o) = (&self.g, self.o);
        let (ho, wo) = g.out_hw();
        let out = match (s1.dtype(), s2.dtype(), s3.dtype()) {
            (DType::F32, DType::F32, DType::F32) => CpuStorage::F32(conv_fwd(
                slice::<f32>(s1, l1, "x")?,
                slice(s2, l2, "w")?,
                slice(s3, l3, "b")?,
                g,
                o,
                self.relu,
                self.winograd,
            )),
            (DType::F64, DType::F64, DType::F64) => CpuStorage::F64(conv_fwd(
                slice::<f64>(s1, l1, "x")?,
                slice(s2, l2, "w")?,
                slice(s3, l3, "b")?,
                g,
                o,
                self.relu,
                self.winograd,
            )),
            (a, b, c) => candle_core::bail!("conv2d: unsupported dtypes {a:?}, {b:?}, {c:?}"),
        };
        Ok((out, Shape::from((g.b, o, ho, wo))))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = if self.relu { dy.contiguous()?.apply_op2_no_bwd(res, &ReluGrad)? } else { dy.contiguous()? };
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &ConvBwdInput { g: self.g, o: self.o, winograd: self.winograd })?)
        } else {
            None
        };
        let shared_db = b.track_op() && !self.per_sample_bias;
        let (dw, db) = if w.track_op() || shared_db {
            let packed = x.apply_op2_no_bwd(&dy, &ConvBwdWeight { g: self.g, o: self.o })?;
            let n = w.elem_count();
            let dw = if w.track_op() { Some(packed.narrow(0, 0, n)?.reshape(w.shape())?) } else { None };
            let db = if shared_db { Some(packed.narrow(0, n, self.o)?) } else { None };
            (dw, db)
        } else {
            (None, None)
        };
        let db = if b.track_op() && self.per_sample_bias {
            Some(dy.apply_op1_no_bwd(&ChannelSums { hw: self.g.hw_out() })?.reshape(b.shape())?)
        } else {
            db
        };
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for ConvBwdInput {
    fn name(&self) -> &'static str {
        "conv2d-im2col-bwd-input"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, o) = (&self.g, self.o);
        let out = dispatch2!(s1, l1, s2, l2, "conv2d backward (input)", |dy, w| conv_bwd_input(dy, w, g, o, self.winograd));
        Ok((out, Shape::from((g.b, g.c, g.h, g.w))))
    }
}

impl CustomOp2 for ConvBwdWeight {
    fn name(&self) -> &'static str {
        "conv2d-im2col-bwd-weight"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, o) = (&self.g, self.o);
        let out = dispatch2!(s1, l1, s2, l2, "conv2d backward (weight)", |x, dy| conv_bwd_weight(x, dy, g, o));
        Ok((out, Shape::from(o * g.ckk() + o)))
    }
}

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "relu-grad"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = dispatch2!(s1, l1, s2, l2, "relu backward", |dy, y| relu_grad(dy, y));
        Ok((out, l1.shape().clone()))
    }
}

impl candle_core::CustomOp1 for ChannelSums {
    fn name(&self) -> &'static str {
        "channel-sums"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let n = l.shape().elem_count() / self.hw;
        let out = match s.dtype() {
            DType::F32 => CpuStorage::F32(channel_sums(slice::<f32>(s, l, "dy")?, self.hw)),
            DType::F64 => CpuStorage::F64(channel_sums(slice::<f64>(s, l, "dy")?, self.hw)),
            dt => candle_core::bail!("channel sums: unsupported dtype {dt:?}"),
        };
        Ok((out, Shape::from(n)))
    }
}

/// `conv2d(x, weight)` (no bias) for CPU tensors, with gradients for both.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> candle_core::Result<Tensor> {
    conv2d_bias(x, weight, None, stride, pad)
}

/// `conv2d(x, weight) + bias` for CPU tensors, with gradients for all three.
pub fn conv2d_bias(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> candle_core::Result<Tensor> {
    conv2d_fused(x, weight, bias, stride, pad, false, false)
}

/// `conv2d(x, weight) + bias`, then ReLU when `relu`, as one op. `bias` is `[O]`, or `[B, O]`: a
/// shift per sample and channel (a UNet block's noise embedding, added for free). `winograd`
/// allows F(2x2, 3x3) for the forward and input gradient where it applies (see `Conv2d`).
pub fn conv2d_fused(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    pad: usize,
    relu: bool,
    winograd: bool,
) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (o, ci, k, k2) = weight.dims4()?;
    if ci != c || k != k2 {
        candle_core::bail!("conv2d: input has {c} channels, weight is {o}x{ci}x{k}x{k2}");
    }
    if h + 2 * pad < k || w + 2 * pad < k || stride == 0 {
        candle_core::bail!("conv2d: a {k}x{k} kernel (stride {stride}, padding {pad}) does not fit a {h}x{w} input");
    }
    let g = Geometry { b, c, h, w, k, stride, pad };
    let (bias, per_sample_bias) = match bias {
        Some(t) if t.dims() == [o] => (t.contiguous()?, false),
        Some(t) if t.dims() == [b, o] => (t.contiguous()?, true),
        Some(t) => candle_core::bail!("conv2d: bias of shape {:?} for {b} samples and {o} output channels", t.dims()),
        None => (Tensor::zeros(o, x.dtype(), x.device())?, false),
    };
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias, ConvOp { g, o, relu, per_sample_bias, winograd })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{
        self,
        tests::{max_abs_diff, randn},
    };

    #[test]
    fn matches_candle_conv2d_on_random_inputs() {
        for (k, stride, pad, size) in
            [(3, 1, 1, 7), (3, 2, 1, 8), (3, 2, 1, 7), (1, 1, 0, 5), (5, 1, 2, 6), (11, 4, 2, 23), (3, 1, 0, 4), (1, 2, 0, 5)]
        {
            for dt in [DType::F64, DType::F32] {
                let x = randn(&[3, 3, size, size], 1).to_dtype(dt).unwrap();
                let wt = randn(&[4, 3, k, k], 2).to_dtype(dt).unwrap();
                let ours = conv2d(&x, &wt, stride, pad).unwrap();
                let theirs = x.conv2d(&wt, pad, stride, 1, 1).unwrap();
                assert_eq!(ours.dims(), theirs.dims());
                let err = max_abs_diff(&ours, &theirs);
                let tol = if dt == DType::F64 { 1e-10 } else { 1e-4 };
                assert!(err < tol, "{dt:?} k{k} s{stride} p{pad} n{size}: {err}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (k, stride, pad, size) in [(3, 1, 1, 5), (3, 2, 1, 7), (3, 2, 1, 6), (1, 1, 0, 4), (1, 2, 0, 5), (5, 1, 2, 6)] {
            // batch 6 > WGRAD_CHUNK: partial weight-gradient sums are exercised
            let x = randn(&[6, 2, size, size], 3);
            let wt = randn(&[3, 2, k, k], 4);
            let bias = randn(&[3], 5);
            let f = |ts: &[Tensor]| conv2d_bias(&ts[0], &ts[1], Some(&ts[2]), stride, pad);
            let g = gradcheck::check(&f, &[x, wt, bias], 40, 1e-5, 5).unwrap();
            assert!(g.max_err < 1e-6, "k{k} s{stride} p{pad} n{size}: {}", g.max_err);
        }
    }

    #[test]
    fn fused_bias_and_relu_match_the_composite_ops_and_finite_differences() {
        let (b, o) = (5, 3);
        let x = randn(&[b, 2, 6, 6], 21);
        let wt = randn(&[o, 2, 3, 3], 22);
        let shared = randn(&[o], 23);
        let per_sample = randn(&[b, o], 24);
        for (bias, relu) in [(&shared, true), (&per_sample, false), (&per_sample, true)] {
            let ours = conv2d_fused(&x, &wt, Some(bias), 1, 1, relu, false).unwrap();
            let bias4 = if bias.rank() == 1 { bias.reshape((1, o, 1, 1)) } else { bias.reshape((b, o, 1, 1)) }.unwrap();
            let mut theirs = x.conv2d(&wt, 1, 1, 1, 1).unwrap().broadcast_add(&bias4).unwrap();
            if relu {
                theirs = theirs.relu().unwrap();
            }
            let err = max_abs_diff(&ours, &theirs);
            assert!(err < 1e-10, "bias {:?} relu {relu}: {err}", bias.dims());
            let f = |ts: &[Tensor]| conv2d_fused(&ts[0], &ts[1], Some(&ts[2]), 1, 1, relu, false);
            let g = gradcheck::check(&f, &[x.clone(), wt.clone(), bias.clone()], 40, 1e-6, 25).unwrap();
            assert!(g.max_err < 1e-6, "bias {:?} relu {relu}: gradient error {}", bias.dims(), g.max_err);
        }
    }

    #[test]
    fn gradients_match_candle_conv2d_gradients() {
        let x = candle_core::Var::from_tensor(&randn(&[5, 3, 9, 9], 6)).unwrap();
        let w = candle_core::Var::from_tensor(&randn(&[4, 3, 3, 3], 7)).unwrap();
        let r = randn(&[5, 4, 5, 5], 8);
        let ours = conv2d(x.as_tensor(), w.as_tensor(), 2, 1).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let theirs = x.as_tensor().conv2d(w.as_tensor(), 1, 2, 1, 1).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            let a = ours.get(v.as_tensor()).unwrap();
            let b = theirs.get(v.as_tensor()).unwrap();
            let err = max_abs_diff(a, b);
            assert!(err < 1e-10, "{err}");
        }
    }

    #[test]
    fn gradients_are_bit_identical_for_any_thread_count() {
        let x = randn(&[9, 3, 8, 8], 11).to_dtype(DType::F32).unwrap();
        let w = randn(&[5, 3, 3, 3], 12).to_dtype(DType::F32).unwrap();
        let b = randn(&[5], 13).to_dtype(DType::F32).unwrap();
        let r = randn(&[9, 5, 8, 8], 14).to_dtype(DType::F32).unwrap();
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let vars: Vec<_> = [&x, &w, &b].iter().map(|t| candle_core::Var::from_tensor(t).unwrap()).collect();
                let y = conv2d_bias(vars[0].as_tensor(), vars[1].as_tensor(), Some(vars[2].as_tensor()), 1, 1).unwrap();
                let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
                vars.iter().map(|v| g.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "gradients differ with {threads} threads");
        }
    }

    #[test]
    fn frozen_weights_get_no_gradient() {
        let x = candle_core::Var::from_tensor(&randn(&[2, 2, 5, 5], 9)).unwrap();
        let w = randn(&[3, 2, 3, 3], 10);
        let grads = conv2d(x.as_tensor(), &w, 1, 1).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(x.as_tensor()).is_some());
        assert!(grads.get(&w).is_none());
    }
}
