//! The CUDA forms of `kernels::cpu`'s custom ops: each op's `cuda_fwd` calls in here, and the
//! kernels (`kernels.cu`, compiled to PTX by build.rs) mirror the CPU kernels' arithmetic. Only
//! f32 tensors come here (`kernels::native_cuda_for`); their layouts must be contiguous, as the
//! CPU kernels' are. Without the `cuda` feature this module is empty.

#[cfg(feature = "cuda")]
mod ops;
#[cfg(feature = "cuda")]
pub use ops::*;
