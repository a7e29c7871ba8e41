//! Process-wide CPU runtime settings, applied once at the start of `main` (before any tensor op).
//!
//! * candle 0.11 runs large elementwise ops on its own "barrier pool" whose threads spin-wait;
//!   beside rayon (which runs our kernels and the matrix products) that oversubscribes small
//!   machines: on 2 cores the spinning took ~20% of a training step. Unless `CANDLE_NUM_THREADS`
//!   is set, elementwise ops run on the calling thread (the heavy kernels stay parallel).
//! * glibc returns every freed block above 128 KiB to the OS and page-faults it back in on the
//!   next step; raising the mmap and trim thresholds keeps activations' memory for reuse.

/// Applies the settings above; idempotent, and cheap.
pub fn tune_cpu() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Edition 2021: set_var is safe; called first thing in main, before any thread starts.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        // 32 MiB is glibc's largest mmap threshold on 64-bit.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
