//! The kernels under the layers of `nn`: `cpu` holds candle custom ops with hand-written
//! backwards for CPU tensors, `portable` the same ops written with candle's own ops for every
//! other device (CUDA); this file holds what every backend's kernels share. Kernels import
//! nothing from the layer files above them (`nn/conv.rs`, `nn/norm.rs`, ...); the layers pick a
//! kernel by device and fall back to candle's own ops where none applies.

pub mod cpu;
pub mod portable;

use std::cell::Cell;

use candle_core::{DType, Tensor};

thread_local! {
    static PORTABLE_ON_CPU: Cell<bool> = const { Cell::new(false) };
}

/// Whether a layer runs `x` through the CPU kernels: CPU f32/f64 tensors, unless this thread is
/// inside [`with_portable_kernels`]. Everything else takes the portable kernels.
pub fn cpu_kernels_for(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && !PORTABLE_ON_CPU.with(Cell::get)
}

/// Runs `f` with the layers on this thread taking the portable kernels even on the CPU, the
/// path CUDA takes: so CPU tests check that path against the CPU kernels.
pub fn with_portable_kernels<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PORTABLE_ON_CPU.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(PORTABLE_ON_CPU.with(|c| c.replace(true)));
    f()
}

/// An activation applied after the norm's affine map (fused into one kernel on CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Identity,
    Silu,
    Relu,
}
