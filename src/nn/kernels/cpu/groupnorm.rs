//! GroupNorm + affine + activation as one CPU kernel, with a hand-written backward.
//!
//! The composite version is about ten candle ops, each a single-threaded pass over the activation
//! that also keeps its output alive for the backward. Here the forward is one pass for the
//! statistics and one for the output, in parallel over (sample, group); the backward recomputes
//! the statistics from the saved input and needs two passes. Statistics accumulate in f64 in a
//! fixed order, and the per-channel parameter gradients are summed over the batch sequentially,
//! so results do not depend on the thread count.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::simd::Float;
use crate::nn::kernels::Act;

#[derive(Clone, Copy, Debug)]
struct Dims {
    b: usize,
    c: usize,
    hw: usize,
    groups: usize,
}

impl Dims {
    #[cfg(feature = "cuda")]
    fn cuda(&self) -> crate::nn::kernels::cuda::GnDims {
        crate::nn::kernels::cuda::GnDims { b: self.b, c: self.c, hw: self.hw, groups: self.groups }
    }
    fn cpg(&self) -> usize {
        self.c / self.groups
    }
    fn group_len(&self) -> usize {
        self.cpg() * self.hw
    }
}

use super::simd::{from_f64, sum2_zip, sum_map, to_f64};

/// `act(z)` and `d act / dz` (in the element type: f32 training stays in f32 arithmetic here).
#[inline(always)]
fn act_value<T: Float>(act: Act, z: T) -> T {
    match act {
        Act::Identity => z,
        Act::Silu => z / (T::one() + (-z).exp_fast()),
        Act::Relu => {
            if z > T::zero() {
                z
            } else {
                T::zero()
            }
        }
    }
}

#[inline(always)]
fn act_grad<T: Float>(act: Act, z: T) -> T {
    match act {
        Act::Identity => T::one(),
        Act::Silu => {
            let s = T::one() / (T::one() + (-z).exp_fast());
            s * (T::one() + z * (T::one() - s))
        }
        Act::Relu => {
            if z > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
    }
}

/// Mean and 1/sqrt(var + eps) of one group (biased variance, two-pass), summed per channel row.
#[inline(always)]
fn stats<T: Float>(xg: &[T], hw: usize, eps: f64) -> (f64, f64) {
    let n = xg.len() as f64;
    let mean = xg.chunks(hw).map(|row| sum_map(row, |v| v)).sum::<f64>() / n;
    let m: T = from_f64(mean);
    let var = xg.chunks(hw).map(|row| sum_map(row, |v| (v - m) * (v - m))).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

crate::avx2_dispatch! {
    /// One (sample, group) of the forward.
    fn gn_fwd_group<T>(yg: &mut [T], xg: &[T], gamma: &[T], beta: &[T], hw: usize, eps: f64, act: Act) {
        let (mean, rstd) = stats(xg, hw, eps);
        for ((ys, xs), (ga, be)) in yg.chunks_mut(hw).zip(xg.chunks(hw)).zip(gamma.iter().zip(beta)) {
            let a = to_f64(*ga) * rstd;
            let (a, sh): (T, T) = (from_f64(a), from_f64(to_f64(*be) - mean * a));
            match act {
                Act::Identity => ys.iter_mut().zip(xs).for_each(|(y, x)| *y = *x * a + sh),
                Act::Relu => ys.iter_mut().zip(xs).for_each(|(y, x)| *y = act_value(Act::Relu, *x * a + sh)),
                Act::Silu => ys.iter_mut().zip(xs).for_each(|(y, x)| *y = act_value(Act::Silu, *x * a + sh)),
            }
        }
    }
}

crate::avx2_dispatch! {
    /// One (sample, group) of the backward: writes dx, returns per channel
    /// `(sum dz * xhat, sum dz)` into `pg` (dz: the gradient before the affine map).
    fn gn_bwd_group<T>(dxg: &mut [T], pg: &mut [(f64, f64)], xg: &[T], dyg: &[T], gamma: &[T], beta: &[T], hw: usize, eps: f64, act: Act) {
        let (mean, rstd) = stats(xg, hw, eps);
        let (mean_t, rstd_t): (T, T) = (from_f64(mean), from_f64(rstd));
        // dz (kept in dxg for now); dxhat = dz * gamma; need mean(dxhat) and mean(dxhat * xhat)
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for (ci, pc) in pg.iter_mut().enumerate() {
            let (ga, be) = (gamma[ci], beta[ci]);
            let range = ci * hw..(ci + 1) * hw;
            let (dz, xs, dys) = (&mut dxg[range.clone()], &xg[range.clone()], &dyg[range]);
            let (sdz_xhat, sdz) = match act {
                Act::Identity => row_dz(dz, xs, dys, mean_t, rstd_t, ga, be, Act::Identity),
                Act::Relu => row_dz(dz, xs, dys, mean_t, rstd_t, ga, be, Act::Relu),
                Act::Silu => row_dz(dz, xs, dys, mean_t, rstd_t, ga, be, Act::Silu),
            };
            *pc = (sdz_xhat, sdz);
            s1 += sdz * to_f64(ga);
            s2 += sdz_xhat * to_f64(ga);
        }
        let n = xg.len() as f64;
        let (m1, m2): (T, T) = (from_f64(s1 / n), from_f64(s2 / n));
        for (ci, (dzs, xs)) in dxg.chunks_mut(hw).zip(xg.chunks(hw)).enumerate() {
            let ga = gamma[ci];
            for (dz, xv) in dzs.iter_mut().zip(xs) {
                let xhat = (*xv - mean_t) * rstd_t;
                *dz = rstd_t * (*dz * ga - m1 - xhat * m2);
            }
        }
    }
}

/// One channel row of the backward's first pass: `dz = dy * act'(xhat * gamma + beta)` into `dz`,
/// returning `(sum dz * xhat, sum dz)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row_dz<T: Float>(dz: &mut [T], xs: &[T], dys: &[T], mean: T, rstd: T, ga: T, be: T, act: Act) -> (f64, f64) {
    for ((d, x), dy) in dz.iter_mut().zip(xs).zip(dys) {
        *d = *dy * act_grad(act, (*x - mean) * rstd * ga + be);
    }
    sum2_zip(dz, xs, |d, x| (d * (x - mean) * rstd, d))
}

fn gn_fwd<T: Float>(x: &[T], gamma: &[T], beta: &[T], d: Dims, eps: f64, act: Act) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    let (gl, cpg, hw) = (d.group_len(), d.cpg(), d.hw);
    y.par_chunks_mut(gl).zip(x.par_chunks(gl)).enumerate().for_each(|(bg, (yg, xg))| {
        let g = bg % d.groups;
        let ch = g * cpg..(g + 1) * cpg;
        gn_fwd_group(yg, xg, &gamma[ch.clone()], &beta[ch], hw, eps, act);
    });
    y
}

/// Returns `[dx (B*C*HW), dgamma (C), dbeta (C)]` packed in one vector. Elementwise work is in
/// the element type, sums in f64 in a fixed order.
fn gn_bwd<T: Float>(dy: &[T], x: &[T], gamma: &[T], beta: &[T], d: Dims, eps: f64, act: Act) -> Vec<T> {
    let (gl, cpg, hw) = (d.group_len(), d.cpg(), d.hw);
    let mut out = vec![T::zero(); x.len() + 2 * d.c];
    // per (sample, channel): sum dz * xhat and sum dz
    let mut partial = vec![(0.0f64, 0.0f64); d.b * d.c];
    let (dx, _) = out.split_at_mut(x.len());
    dx.par_chunks_mut(gl).zip(partial.par_chunks_mut(cpg)).enumerate().for_each(|(bg, (dxg, pg))| {
        let g = bg % d.groups;
        let ch = g * cpg..(g + 1) * cpg;
        let (xg, dyg) = (&x[bg * gl..(bg + 1) * gl], &dy[bg * gl..(bg + 1) * gl]);
        gn_bwd_group(dxg, pg, xg, dyg, &gamma[ch.clone()], &beta[ch], hw, eps, act);
    });
    let (_, params) = out.split_at_mut(x.len());
    for c in 0..d.c {
        let (mut sg, mut sb) = (0.0f64, 0.0f64);
        for b in 0..d.b {
            let (a, bb) = partial[b * d.c + c];
            sg += a;
            sb += bb;
        }
        params[c] = from_f64::<T>(sg);
        params[d.c + c] = from_f64::<T>(sb);
    }
    out
}

fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    super::simd::contiguous_slice(s, l, format_args!("group norm: inputs"))
}

struct GnOp {
    d: Dims,
    eps: f64,
    act: Act,
}

/// `(dy, x, [gamma; beta]) -> [dx; dgamma; dbeta]`.
struct GnBwd {
    d: Dims,
    eps: f64,
    act: Act,
}

impl CustomOp3 for GnOp {
    fn name(&self) -> &'static str {
        "group-norm-act"
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
        let out = match s1.dtype() {
            DType::F32 => CpuStorage::F32(gn_fwd(slice::<f32>(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, self.d, self.eps, self.act)),
            DType::F64 => CpuStorage::F64(gn_fwd(slice::<f64>(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, self.d, self.eps, self.act)),
            dt => candle_core::bail!("group norm: unsupported dtype {dt:?}"),
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
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let y = crate::nn::kernels::cuda::group_norm_fwd((s1, l1), (s2, l2), (s3, l3), self.d.cuda(), self.eps, self.act)?;
        Ok((y, l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gb = Tensor::cat(&[gamma, beta], 0)?;
        let packed = dy.contiguous()?.apply_op3_no_bwd(x, &gb, &GnBwd { d: self.d, eps: self.eps, act: self.act })?;
        let n = x.elem_count();
        let c = self.d.c;
        let dx = if x.track_op() { Some(packed.narrow(0, 0, n)?.reshape(x.shape())?) } else { None };
        let dg = if gamma.track_op() { Some(packed.narrow(0, n, c)?) } else { None };
        let db = if beta.track_op() { Some(packed.narrow(0, n + c, c)?) } else { None };
        Ok((dx, dg, db))
    }
}

impl CustomOp3 for GnBwd {
    fn name(&self) -> &'static str {
        "group-norm-act-bwd"
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
        let c = self.d.c;
        let out = match s1.dtype() {
            DType::F32 => {
                let gb = slice::<f32>(s3, l3)?;
                CpuStorage::F32(gn_bwd(slice::<f32>(s1, l1)?, slice(s2, l2)?, &gb[..c], &gb[c..], self.d, self.eps, self.act))
            }
            DType::F64 => {
                let gb = slice::<f64>(s3, l3)?;
                CpuStorage::F64(gn_bwd(slice::<f64>(s1, l1)?, slice(s2, l2)?, &gb[..c], &gb[c..], self.d, self.eps, self.act))
            }
            dt => candle_core::bail!("group norm backward: unsupported dtype {dt:?}"),
        };
        let n = l1.shape().elem_count() + 2 * c;
        Ok((out, Shape::from(n)))
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let packed = crate::nn::kernels::cuda::group_norm_bwd((s1, l1), (s2, l2), (s3, l3), self.d.cuda(), self.eps, self.act)?;
        Ok((packed, Shape::from(l1.shape().elem_count() + 2 * self.d.c)))
    }
}

/// `act(GroupNorm(x) * gamma + beta)` for a CPU tensor `x` [B, C, ...] (or a CUDA f32 one, by
/// the op's CUDA form).
pub fn group_norm_act(x: &Tensor, gamma: &Tensor, beta: &Tensor, groups: usize, eps: f64, act: Act) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 {
        candle_core::bail!("group norm: input needs [B, C, ...], got {dims:?}");
    }
    let (b, c) = (dims[0], dims[1]);
    if groups == 0 || !c.is_multiple_of(groups) || gamma.elem_count() != c || beta.elem_count() != c {
        candle_core::bail!("group norm: {c} channels, {groups} groups, {} scales, {} shifts", gamma.elem_count(), beta.elem_count());
    }
    let hw = x.elem_count() / (b * c).max(1);
    let d = Dims { b, c, hw, groups };
    x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, GnOp { d, eps, act })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{
        self,
        tests::{max_abs_diff, randn},
    };
    use crate::nn::GroupNorm;

    #[test]
    fn matches_the_composite_op_and_finite_differences() {
        for act in [Act::Identity, Act::Silu, Act::Relu] {
            for (shape, groups) in [(vec![3, 4, 3, 3], 2), (vec![2, 6, 5, 4], 3), (vec![2, 8, 2, 2], 8)] {
                let c = shape[1];
                let x = randn(&shape, 1);
                let g = randn(&[c], 2);
                let b = randn(&[c], 3);
                let gn = GroupNorm { weight: g.clone(), bias: b.clone(), groups, eps: 1e-5 };
                let ours = group_norm_act(&x, &g, &b, groups, 1e-5, act).unwrap();
                let theirs = gn.forward_act_composite(&x, act).unwrap();
                let err = max_abs_diff(&ours, &theirs);
                assert!(err < 1e-10, "{act:?} {shape:?}: {err}");
                let f = |ts: &[Tensor]| group_norm_act(&ts[0], &ts[1], &ts[2], groups, 1e-5, act);
                let r = gradcheck::check(&f, &[x.clone(), g.clone(), b.clone()], 40, 1e-6, 4).unwrap();
                assert!(r.max_err < 1e-6, "{act:?} {shape:?}: gradient error {}", r.max_err);
                // and the analytic gradients equal the composite op's
                let vars: Vec<_> = [&x, &g, &b].iter().map(|t| candle_core::Var::from_tensor(t).unwrap()).collect();
                let rr = randn(&shape, 5);
                let run = |fused: bool| {
                    let (x, g, b) = (vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
                    let y = if fused {
                        group_norm_act(x, g, b, groups, 1e-5, act).unwrap()
                    } else {
                        GroupNorm { weight: g.clone(), bias: b.clone(), groups, eps: 1e-5 }.forward_act_composite(x, act).unwrap()
                    };
                    y.mul(&rr).unwrap().sum_all().unwrap().backward().unwrap()
                };
                let (a, bb) = (run(true), run(false));
                for v in &vars {
                    let e = (a.get(v.as_tensor()).unwrap() - bb.get(v.as_tensor()).unwrap())
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap();
                    assert!(e < 1e-9, "{act:?} {shape:?}: gradient differs from composite by {e}");
                }
            }
        }
    }

    #[test]
    fn f32_matches_f64() {
        let x = randn(&[4, 8, 6, 6], 7);
        let g = randn(&[8], 8);
        let b = randn(&[8], 9);
        let y64 = group_norm_act(&x, &g, &b, 4, 1e-5, Act::Silu).unwrap();
        let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let y32 = group_norm_act(&f(&x), &f(&g), &f(&b), 4, 1e-5, Act::Silu).unwrap().to_dtype(DType::F64).unwrap();
        let err = max_abs_diff(&y64, &y32);
        assert!(err < 1e-5, "{err}");
    }
}
