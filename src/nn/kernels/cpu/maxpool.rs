//! The CPU custom op of max-pooling with any kernel and stride (`nn::pool::max_pool2d`), with
//! PyTorch's semantics: each window's gradient goes to its *first* maximum (row-major scan; NaN
//! counts as a maximum), and overlapping windows accumulate. Ties are common, not a corner case:
//! a constant image region (MNIST's background) gives equal features in a whole window, and
//! sending the gradient to every tied element (candle's `max` backward) inflates LPIPS's input
//! gradient on MNIST digits by ~2x.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor, WithDType};

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
    super::simd::contiguous_slice(s, l, format_args!("max-pool: input"))
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

/// Max-pooling over `k x k` windows with stride `stride` of a CPU f32 or f64 tensor [B,C,H,W]
/// (no padding, floor mode): the window must fit the input (`nn::pool::max_pool2d` checks it).
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let g = Geom { planes: b * c, h, w, k, s: stride };
    let (ho, wo) = g.out();
    x.contiguous()?.reshape((b * c, h, w))?.apply_op1(MaxPool(g))?.reshape((b, c, ho, wo))
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
