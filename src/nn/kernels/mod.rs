//! The kernels under the layers of `nn`: `cpu` holds candle custom ops with hand-written
//! backwards for CPU tensors; this file holds what every backend's kernels share. Kernels import
//! nothing from the layer files above them (`nn/conv.rs`, `nn/norm.rs`, ...); the layers pick a
//! kernel by device and fall back to candle's own ops where none applies.

pub mod cpu;

/// An activation applied after the norm's affine map (fused into one kernel on CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Identity,
    Silu,
    Relu,
}
