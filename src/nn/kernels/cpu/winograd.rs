//! The forward of a 3x3, stride-1, padding-1 convolution by Winograd's F(2x2, 3x3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 output tile comes from a
//! 4x4 input tile as `Y = A^T [ sum_c (G g G^T) * (B^T d B) ] A`. The channel sum is 16 matrix
//! products `M_xi = U_xi V_xi` ([O x C] by [C x tiles]), 2.25x fewer multiply-adds than im2col's
//! single product, and the transforms move less memory than the 9x column matrix.
//!
//! Only the forward uses it (the backward is the same linear map, computed by `conv` with `im2col`).

use super::simd::{from_f64, Float};

/// Output tiles per side: ceil(n / 2).
fn tiles(n: usize) -> usize {
    n.div_ceil(2)
}

/// `U[xi][o][c] = (G g G^T)[xi]` for every `[O, C, 3, 3]` kernel `g`, with
/// `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`.
fn transform_weights<T: Float>(w: &[T], o: usize, c: usize) -> Vec<T> {
    let half: T = from_f64(0.5);
    let g3 = |q: [T; 3]| [q[0], (q[0] + q[1] + q[2]) * half, (q[0] - q[1] + q[2]) * half, q[2]];
    let mut u = vec![T::zero(); 16 * o * c];
    for oc in 0..o * c {
        let k = &w[oc * 9..oc * 9 + 9];
        // G g: 4 rows of 3 (applied to columns)
        let cols: Vec<[T; 4]> = (0..3).map(|j| g3([k[j], k[3 + j], k[6 + j]])).collect();
        for i in 0..4 {
            let row = g3([cols[0][i], cols[1][i], cols[2][i]]);
            for (j, v) in row.iter().enumerate() {
                u[(i * 4 + j) * o * c + oc] = *v;
            }
        }
    }
    u
}

/// Tiles are stored `tw + 1` to a tile row: the extra (junk) tile per row lets every transform
/// run as one long vector loop over a whole plane (tile rows are only 7 or 14 tiles here, too
/// short to vectorise well one at a time). The products include the junk tiles; the output
/// transform skips them.
fn padded_tiles(th: usize, tw: usize) -> usize {
    th * (tw + 1)
}

/// Scratch entries the transforms need.
fn transform_scratch(th: usize, tw: usize) -> usize {
    8 * (padded_tiles(th, tw) + 1)
}

crate::avx2_dispatch! {
    /// `V[xi][t] = (B^T d B)[xi]` for the 4x4 input tiles `d` of one channel plane, read from a
    /// zero-padded copy `pad` (rows of `pw = 2 tw + 2`, one pixel of padding above and left);
    /// `v` holds the 16 planes, `stride` apart. `B^T` combines four padded rows; each combined
    /// row is split into even and odd columns (`e`, `o`), and `B` combines neighbours of those.
    fn input_transform<T>(pad: &[T], pw: usize, th: usize, tw: usize, v: &mut [T], stride: usize, tmp: &mut [T]) {
        let n = padded_tiles(th, tw);
        let (eo, _) = tmp.split_at_mut(8 * (n + 1));
        for ty in 0..th {
            let r = |i: usize| &pad[(2 * ty + i) * pw..(2 * ty + i + 1) * pw];
            let (d0, d1, d2, d3) = (r(0), r(1), r(2), r(3));
            let at = ty * (tw + 1);
            for (i, arr) in eo.chunks_exact_mut(2 * (n + 1)).enumerate() {
                let (e, o) = arr.split_at_mut(n + 1);
                let (e, o) = (&mut e[at..at + tw + 1], &mut o[at..at + tw + 1]);
                let rows = d0.chunks_exact(2).zip(d1.chunks_exact(2)).zip(d2.chunks_exact(2)).zip(d3.chunks_exact(2));
                for ((ek, ok), (((x0, x1), x2), x3)) in e.iter_mut().zip(o.iter_mut()).zip(rows) {
                    let comb = |k: usize| match i {
                        0 => x0[k] - x2[k],
                        1 => x1[k] + x2[k],
                        2 => x2[k] - x1[k],
                        _ => x1[k] - x3[k],
                    };
                    *ek = comb(0);
                    *ok = comb(1);
                }
            }
        }
        for (i, arr) in eo.chunks_exact(2 * (n + 1)).enumerate() {
            let (e, o) = arr.split_at(n + 1);
            let (e0, e1, o0, o1) = (&e[..n], &e[1..], &o[..n], &o[1..]);
            let plane = |j: usize| (i * 4 + j) * stride;
            let (p0, p1, p2, p3) = (plane(0), plane(1), plane(2), plane(3));
            for ((d, a), b) in v[p0..p0 + n].iter_mut().zip(e0).zip(e1) {
                *d = *a - *b;
            }
            for ((d, a), b) in v[p1..p1 + n].iter_mut().zip(o0).zip(e1) {
                *d = *a + *b;
            }
            for ((d, a), b) in v[p2..p2 + n].iter_mut().zip(e1).zip(o0) {
                *d = *a - *b;
            }
            for ((d, a), b) in v[p3..p3 + n].iter_mut().zip(o0).zip(o1) {
                *d = *a - *b;
            }
        }
    }
}

crate::avx2_dispatch! {
    /// `y = A^T m A + bias` for every tile of one output channel, `A^T = [[1, 1, 1, 0],
    /// [0, 1, -1, -1]]`; `m` holds the 16 planes `stride` apart. Junk tiles, and rows and
    /// columns past an odd-sized output, are dropped.
    fn output_transform<T>(m: &[T], stride: usize, y: &mut [T], h: usize, w: usize, bias: T, relu: bool, tmp: &mut [T]) {
        let (th, tw) = (tiles(h), tiles(w));
        let n = padded_tiles(th, tw);
        // s[a][j] = (A^T m)[a][j], then the two output columns of each tile: even, odd
        let (s, eo) = tmp.split_at_mut(8 * n);
        let plane = |i: usize, j: usize| &m[(i * 4 + j) * stride..][..n];
        for j in 0..4 {
            let (p0, p1, p2, p3) = (plane(0, j), plane(1, j), plane(2, j), plane(3, j));
            let (s0, s1) = s.split_at_mut(4 * n);
            let (s0, s1) = (&mut s0[j * n..(j + 1) * n], &mut s1[j * n..(j + 1) * n]);
            for ((((a, b), x0), x1), (x2, x3)) in s0.iter_mut().zip(s1.iter_mut()).zip(p0).zip(p1).zip(p2.iter().zip(p3)) {
                *a = *x0 + *x1 + *x2;
                *b = *x1 - *x2 - *x3;
            }
        }
        let (even, odd) = eo.split_at_mut(n);
        for a in 0..2 {
            let q = |j: usize| &s[(a * 4 + j) * n..(a * 4 + j + 1) * n];
            let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
            for ((((ev, od), x0), x1), (x2, x3)) in even.iter_mut().zip(odd.iter_mut()).zip(q0).zip(q1).zip(q2.iter().zip(q3)) {
                let (u, v) = (*x0 + *x1 + *x2 + bias, *x1 - *x2 - *x3 + bias);
                *ev = if relu && u < T::zero() { T::zero() } else { u };
                *od = if relu && v < T::zero() { T::zero() } else { v };
            }
            for ty in 0..th {
                let oy = 2 * ty + a;
                if oy >= h {
                    continue;
                }
                let (ev, od) = (&even[ty * (tw + 1)..ty * (tw + 1) + tw], &odd[ty * (tw + 1)..ty * (tw + 1) + tw]);
                let row = &mut y[oy * w..(oy + 1) * w];
                for ((pair, e), o) in row.chunks_exact_mut(2).zip(ev).zip(od) {
                    pair[0] = *e;
                    pair[1] = *o;
                }
                if w % 2 == 1 {
                    row[w - 1] = ev[tw - 1];
                }
            }
        }
    }
}

/// Whether the F(2x2, 3x3) forward serves a convolution: a 3x3 kernel, stride 1, padding 1, and
/// enough channels on both sides for its 16 products (with few, im2col's one product is better).
pub fn applies(k: usize, stride: usize, pad: usize, c: usize, o: usize) -> bool {
    k == 3 && stride == 1 && pad == 1 && c >= 16 && o >= 16
}

/// The convolution of one sample `xb [C, H, W]` into `yb [O, H, W]`; `u` from
/// `transform_weights`, `bias_b` one value per output channel. Scratch comes from the thread's
/// buffer.
#[allow(clippy::too_many_arguments)]
fn conv_sample<T: Float>(xb: &[T], u: &[T], bias_b: &[T], yb: &mut [T], c: usize, o: usize, h: usize, w: usize, relu: bool) {
    let (th, tw) = (tiles(h), tiles(w));
    let nt = padded_tiles(th, tw);
    let (ph, pw) = (2 * th + 2, 2 * tw + 2);
    let (v_len, m_len) = (16 * c * nt, 16 * o * nt);
    let tmp_len = transform_scratch(th, tw).max(10 * nt);
    T::with_scratch(v_len + m_len + ph * pw + tmp_len, |buf| {
        let (v, rest) = buf.split_at_mut(v_len);
        let (m, rest) = rest.split_at_mut(m_len);
        let (pad, tmp) = rest.split_at_mut(ph * pw);
        pad.fill(T::zero());
        for ci in 0..c {
            let plane = &xb[ci * h * w..(ci + 1) * h * w];
            for (iy, row) in plane.chunks(w).enumerate() {
                pad[(iy + 1) * pw + 1..(iy + 1) * pw + 1 + w].copy_from_slice(row);
            }
            // V laid out [xi][ci][t]: this channel's 16 planes are c * nt apart
            input_transform(pad, pw, th, tw, &mut v[ci * nt..], c * nt, tmp);
        }
        for xi in 0..16 {
            let (uxi, vxi) = (&u[xi * o * c..(xi + 1) * o * c], &v[xi * c * nt..(xi + 1) * c * nt]);
            super::gemm::matmul(o, nt, c, &mut m[xi * o * nt..(xi + 1) * o * nt], false, uxi, (c, 1), vxi, (nt, 1));
        }
        for (oi, yo) in yb.chunks_mut(h * w).enumerate() {
            output_transform(&m[oi * nt..], o * nt, yo, h, w, bias_b[oi], relu, tmp);
        }
    });
}

/// The whole batch: `x [B, C, H, W]`, `w [O, C, 3, 3]`, `bias` `O` or `B * O` values.
#[allow(clippy::too_many_arguments)]
pub fn conv_fwd<T: Float>(x: &[T], w: &[T], bias: &[T], b: usize, c: usize, h: usize, wd: usize, o: usize, relu: bool) -> Vec<T> {
    use rayon::prelude::*;
    let u = transform_weights(w, o, c);
    let per_sample = bias.len() == b * o && b > 1;
    let mut y = super::gemm::alloc_unset(b * o * h * wd);
    y.par_chunks_mut(o * h * wd).enumerate().for_each(|(i, yb)| {
        let xb = &x[i * c * h * wd..(i + 1) * c * h * wd];
        let bias_b = if per_sample { &bias[i * o..(i + 1) * o] } else { &bias[..o] };
        conv_sample(xb, &u, bias_b, yb, c, o, h, wd, relu);
    });
    y
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Tensor};

    use crate::nn::gradcheck::{
        self,
        tests::{max_abs_diff, randn},
    };
    use crate::nn::kernels::cpu::conv::conv2d_fused;

    #[test]
    fn matches_candle_conv2d_on_odd_and_even_sizes() {
        for (c, o, h, w) in [(16, 16, 7, 7), (16, 24, 8, 6), (32, 16, 28, 28), (20, 17, 5, 9)] {
            assert!(super::applies(3, 1, 1, c, o));
            let x = randn(&[3, c, h, w], 1);
            let wt = randn(&[o, c, 3, 3], 2);
            let bias = randn(&[3, o], 3);
            let ours = conv2d_fused(&x, &wt, Some(&bias), 1, 1, true, true).unwrap();
            let theirs = x.conv2d(&wt, 1, 1, 1, 1).unwrap().broadcast_add(&bias.reshape((3, o, 1, 1)).unwrap()).unwrap().relu().unwrap();
            let err = max_abs_diff(&ours, &theirs);
            assert!(err < 1e-10, "c{c} o{o} {h}x{w}: {err}");
            // f32: the transforms' rounding stays at f32 precision
            let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let ours32 = conv2d_fused(&f(&x), &f(&wt), Some(&f(&bias)), 1, 1, true, true).unwrap().to_dtype(DType::F64).unwrap();
            let err = max_abs_diff(&ours32, &theirs);
            assert!(err < 1e-4, "f32 c{c} o{o} {h}x{w}: {err}");
        }
    }

    #[test]
    fn gradients_equal_the_direct_convolutions() {
        for (c, o, h, w) in [(16, 24, 7, 7), (32, 16, 8, 6), (16, 16, 5, 9)] {
            let r = randn(&[6, o, h, w], 10);
            let x = candle_core::Var::from_tensor(&randn(&[6, c, h, w], 11)).unwrap();
            let wt = candle_core::Var::from_tensor(&randn(&[o, c, 3, 3], 12)).unwrap();
            let bias = candle_core::Var::from_tensor(&randn(&[o], 13)).unwrap();
            let grads = |winograd: bool| {
                let y = conv2d_fused(x.as_tensor(), wt.as_tensor(), Some(bias.as_tensor()), 1, 1, false, winograd).unwrap();
                y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap()
            };
            let (a, b) = (grads(true), grads(false));
            for v in [&x, &wt, &bias] {
                let (ga, gb) = (a.get(v.as_tensor()).unwrap(), b.get(v.as_tensor()).unwrap());
                let err = max_abs_diff(ga, gb);
                assert!(err < 1e-9, "c{c} o{o} {h}x{w} {:?}: {err}", v.dims());
            }
        }
    }

    #[test]
    fn gradients_through_winograd_forward_and_input_gradient_match_finite_differences() {
        let x = randn(&[2, 16, 5, 4], 4);
        let wt = randn(&[16, 16, 3, 3], 5);
        let bias = randn(&[16], 6);
        let f = |ts: &[Tensor]| conv2d_fused(&ts[0], &ts[1], Some(&ts[2]), 1, 1, false, true);
        let g = gradcheck::check(&f, &[x, wt, bias], 40, 1e-6, 7).unwrap();
        assert!(g.max_err < 1e-6, "{}", g.max_err);
    }
}
