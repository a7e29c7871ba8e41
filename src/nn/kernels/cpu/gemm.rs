//! What several CPU kernels share beside `simd`: the single-threaded `gemm` call that does the
//! convolutions' matrix products (`gemm::gemm` below is the gemm crate), and outputs allocated
//! without a fill for kernels that overwrite them completely.

use gemm::Parallelism;

use super::simd::Float;

/// A vector of `n` elements that the caller overwrites completely before anything reads it:
/// zero-filling activations that a kernel then overwrites was a measurable share of the step.
#[allow(clippy::uninit_vec)]
pub(crate) fn alloc_unset<T: Float>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: f32 and f64 have no invalid bit patterns, and every caller writes all `n` elements
    // (a kernel's full output) before reading any.
    unsafe { v.set_len(n) };
    v
}

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]` with explicit (row, column) strides, single-threaded
/// (the callers parallelise over the batch).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn matmul<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    lhs: &[T],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[T],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    debug_assert!(dst.len() >= m * n);
    debug_assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    debug_assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the slices cover every index the strides reach (checked above in debug builds, and
    // by construction at every call site); dst does not alias lhs or rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}
