//! The kernels under the layers of `nn`: `cpu` holds candle custom ops with hand-written
//! backwards for CPU tensors, `cuda` the CUDA forms of some of those ops (their `cuda_fwd`),
//! `portable` the same ops written with candle's own ops for every other case; this file holds
//! what every backend's kernels share. Kernels import nothing from the layer files above them
//! (`nn/conv.rs`, `nn/norm.rs`, ...); the layers pick a kernel by device and fall back to
//! candle's own ops where none applies.
//!
//! The CUDA kernels are not yet the default: they were written and compiled without a GPU at
//! hand, and stay opt-in (`AYT_CUDA_KERNELS=native`) until the GPU check (tests/cuda.rs) has
//! passed them against the CPU kernels.

pub mod cpu;
pub mod cuda;
pub mod portable;

use std::cell::Cell;

use candle_core::{DType, Tensor};

thread_local! {
    static PORTABLE_ON_CPU: Cell<bool> = const { Cell::new(false) };
    static NATIVE_CUDA: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether CUDA f32 tensors take the native CUDA kernels: `AYT_CUDA_KERNELS=native`, or inside
/// [`with_native_cuda_kernels`]; otherwise the portable ones.
fn native_cuda_enabled() -> bool {
    static FROM_ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    NATIVE_CUDA.with(Cell::get).unwrap_or_else(|| *FROM_ENV.get_or_init(|| std::env::var("AYT_CUDA_KERNELS").is_ok_and(|v| v == "native")))
}

/// Whether `x` takes the native CUDA kernels (a CUDA f32 tensor, with them enabled).
pub fn native_cuda_for(x: &Tensor) -> bool {
    x.device().is_cuda() && x.dtype() == DType::F32 && native_cuda_enabled()
}

/// Whether a layer runs `x` through the custom ops of `cpu` (with their CUDA forms where
/// `native_cuda_for`): CPU tensors per [`cpu_kernels_for`], and CUDA ones with the native kernels.
pub fn custom_ops_for(x: &Tensor) -> bool {
    cpu_kernels_for(x) || native_cuda_for(x)
}

/// Runs `f` with this thread's CUDA tensors taking the native kernels (`on`) or the portable
/// ones, whatever `AYT_CUDA_KERNELS` says: so the GPU check compares both paths.
pub fn with_native_cuda_kernels<R>(on: bool, f: impl FnOnce() -> R) -> R {
    with_thread_setting(&NATIVE_CUDA, Some(on), f)
}

/// Runs `f` with the thread-local `setting` at `value`, restoring the previous value afterwards,
/// also when `f` panics (the switches of kernels and precision are scoped this way).
pub fn with_thread_setting<T: Copy + 'static, R>(setting: &'static std::thread::LocalKey<Cell<T>>, value: T, f: impl FnOnce() -> R) -> R {
    struct Restore<T: Copy + 'static>(&'static std::thread::LocalKey<Cell<T>>, T);
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(setting, setting.with(|c| c.replace(value)));
    f()
}

/// Whether a layer runs `x` through the CPU kernels: CPU f32/f64 tensors, unless this thread is
/// inside [`with_portable_kernels`]. Everything else takes the portable kernels.
pub fn cpu_kernels_for(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && !PORTABLE_ON_CPU.with(Cell::get)
}

/// Runs `f` with the layers on this thread taking the portable kernels even on the CPU, the
/// path CUDA takes: so CPU tests check that path against the CPU kernels.
pub fn with_portable_kernels<R>(f: impl FnOnce() -> R) -> R {
    with_thread_setting(&PORTABLE_ON_CPU, true, f)
}

/// An activation applied after the norm's affine map (fused into one kernel on CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Identity,
    Silu,
    Relu,
}
