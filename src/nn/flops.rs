//! A process-wide count of multiply-add FLOPs issued by convolutions and linear layers (forward
//! only), for the benchmark's achieved-GFLOP/s figure. Counting is a relaxed atomic add per layer.

use std::sync::atomic::{AtomicU64, Ordering};

static FLOPS: AtomicU64 = AtomicU64::new(0);

/// Records a matrix product of `m x k` by `k x n` (2 m n k FLOPs).
#[inline]
pub fn add_matmul(m: usize, n: usize, k: usize) {
    FLOPS.fetch_add((2 * m * n * k) as u64, Ordering::Relaxed);
}

/// FLOPs counted since the last call.
pub fn take() -> u64 {
    FLOPS.swap(0, Ordering::Relaxed)
}
