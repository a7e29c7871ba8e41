//! What the hand-written CPU kernels share: the element trait, a vectorisable `exp`, reductions
//! with a fixed number of independent lanes, and `avx2_dispatch!`.
//!
//! The crate is built for baseline x86-64 (SSE2), so loops the compiler vectorises use 4-wide
//! registers and no FMA. `avx2_dispatch!` compiles a kernel a second time with AVX2 + FMA enabled
//! and picks that copy at run time when the CPU has them, keeping the binary portable. Reductions
//! accumulate in `LANES` independent partial sums (which the compiler may keep in vector registers)
//! and combine them in f64 in a fixed order, so results never depend on the thread count.

use candle_core::WithDType;

/// Element types the kernels run on (f32 for training, f64 for gradient checks).
pub trait Float: WithDType + num_traits::Float + std::ops::AddAssign + Send + Sync {
    /// `exp`, written so that a loop over it vectorises (no libm call) for f32.
    fn exp_fast(self) -> Self;

    /// Runs `f` on this thread's scratch buffer of `n` elements with unspecified contents (the
    /// caller overwrites what it reads). Kept between calls: a fresh buffer per op and sample
    /// cost a zero fill and page faults every step.
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! scratch_impl {
    ($t:ty, $key:ident, $fname:ident) => {
        thread_local! {
            static $key: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        fn $fname<R>(n: usize, f: impl FnOnce(&mut [$t]) -> R) -> R {
            {
                $key.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < n {
                            buf.resize(n, 0.0);
                        }
                        f(&mut buf[..n])
                    }
                    // re-entered on this thread (not done by the kernels): a private buffer
                    Err(_) => f(&mut vec![0.0; n]),
                })
            }
        }
    };
}

// One thread-local buffer per element type, behind `Float::with_scratch`.
scratch_impl!(f32, SCRATCH_F32, scratch_f32);
scratch_impl!(f64, SCRATCH_F64, scratch_f64);

impl Float for f32 {
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        scratch_f32(n, f)
    }

    /// Cephes `expf`: range reduction by ln 2 and a degree-6 polynomial, relative error about
    /// 2e-7 on the clamped range; inputs beyond +-87 saturate (no inf, no denormals).
    #[inline(always)]
    fn exp_fast(self) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const C1: f32 = 0.693_359_4;
        const C2: f32 = -2.121_944_4e-4;
        // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer in any lane.
        const ROUND: f32 = 12_582_912.0;
        let x = self.clamp(-87.0, 88.0);
        let t = x * LOG2E + ROUND;
        let k = t - ROUND;
        // k as an integer, read from t's bits (its last mantissa bits hold it): `k as i32`
        // saturates and maps NaN, which kept the loop scalar
        let ki = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        let r = x - k * C1 - k * C2;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5; // Cephes' 5.0000001201e-1, as an f32
        let e = p * r * r + r + 1.0;
        e * f32::from_bits((ki.wrapping_add(127) << 23) as u32)
    }
}

impl Float for f64 {
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
        scratch_f64(n, f)
    }

    #[inline(always)]
    fn exp_fast(self) -> f64 {
        self.exp()
    }
}

/// The elements of a contiguous CPU tensor; `what` names it in the error ("<what> must be
/// contiguous"), which the kernels' callers prevent by calling `contiguous()` first. It is
/// `format_args!`, formatted only on that error path.
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    what: std::fmt::Arguments,
) -> candle_core::Result<&'a [T]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{what} must be contiguous")))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

#[inline(always)]
pub fn to_f64<T: Float>(v: T) -> f64 {
    WithDType::to_f64(v)
}

#[inline(always)]
pub fn from_f64<T: Float>(v: f64) -> T {
    <T as WithDType>::from_f64(v)
}

/// Independent partial sums per reduction.
pub const LANES: usize = 16;

/// `sum f(x)` over `xs`: `LANES` partial sums in `T`, combined in f64 in a fixed order.
#[inline(always)]
pub fn sum_map<T: Float>(xs: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut acc = [T::zero(); LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            *a += f(*v);
        }
    }
    let mut s = acc.iter().fold(0.0, |s, a| s + to_f64(*a));
    for v in rest {
        s += to_f64(f(*v));
    }
    s
}

/// `(sum a_i, sum b_i)` with `(a_i, b_i) = f(x_i, y_i)` over two equally long slices, accumulated
/// like `sum_map`.
#[inline(always)]
pub fn sum2_zip<T: Float>(xs: &[T], ys: &[T], f: impl Fn(T, T) -> (T, T)) -> (f64, f64) {
    let (mut a, mut b) = ([T::zero(); LANES], [T::zero(); LANES]);
    let (xc, yc) = (xs.chunks_exact(LANES), ys.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xch, ych) in xc.zip(yc) {
        for l in 0..LANES {
            let (u, v) = f(xch[l], ych[l]);
            a[l] += u;
            b[l] += v;
        }
    }
    let (mut sa, mut sb) = (0.0, 0.0);
    for l in 0..LANES {
        sa += to_f64(a[l]);
        sb += to_f64(b[l]);
    }
    for (x, y) in xr.iter().zip(yr) {
        let (u, v) = f(*x, *y);
        sa += to_f64(u);
        sb += to_f64(v);
    }
    (sa, sb)
}

/// Whether the AVX2 + FMA copies of the kernels can run here (cached by std after the first call).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a kernel `fn name<T: Float>(args) -> R` that runs an AVX2 + FMA build of its body when
/// the CPU has them and the baseline build otherwise. The body is the same code; only the
/// instructions the compiler may use differ.
#[macro_export]
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$T:ident>($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$T: $crate::nn::kernels::cpu::simd::Float>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$T: $crate::nn::kernels::cpu::simd::Float>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<$T: $crate::nn::kernels::cpu::simd::Float>($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if $crate::nn::kernels::cpu::simd::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_accurate_and_saturates() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let ours = x.exp_fast() as f64;
            let exact = (x as f64).exp();
            worst = worst.max(((ours - exact) / exact).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!((-1000.0f32).exp_fast() >= 0.0 && (-1000.0f32).exp_fast() < 1e-37);
        assert!(1000.0f32.exp_fast().is_finite());
        assert_eq!(0.0f32.exp_fast(), 1.0);
        assert!(f32::NAN.exp_fast().is_nan());
    }

    #[test]
    fn lane_sums_match_plain_sums() {
        for n in [0usize, 1, 15, 16, 17, 49, 196, 785] {
            let xs: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.25).collect();
            let plain: f64 = xs.iter().map(|v| v * v).sum();
            assert!((sum_map(&xs, |v| v * v) - plain).abs() < 1e-9, "n {n}");
            let ys: Vec<f64> = xs.iter().map(|v| 2.0 * v).collect();
            let (a, b) = sum2_zip(&xs, &ys, |x, y| (x, y));
            let s: f64 = xs.iter().sum();
            assert!((a - s).abs() < 1e-9 && (b - 2.0 * s).abs() < 1e-9, "n {n}");
        }
    }
}
