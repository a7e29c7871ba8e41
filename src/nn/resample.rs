//! Resampling written as reshapes and broadcasts: correct gradients, and faster than candle's
//! `upsample_nearest2d` / `max_pool2d` (whose backward is wrong in candle 0.11).

use candle_core::{DType, Tensor, D};

/// Nearest-neighbour 2x upsampling (a CPU kernel on CPU, see `kernels::cpu::resample`).
pub fn upsample_nearest2x(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
        return super::kernels::cpu::resample::upsample_nearest2x(x);
    }
    upsample_nearest2x_composite(x)
}

/// `upsample_nearest2x` from candle ops (the reference for the kernel).
pub fn upsample_nearest2x_composite(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?.broadcast_as((b, c, h, 2, w, 2))?.reshape((b, c, 2 * h, 2 * w))
}

/// 2x2 max-pooling with stride 2 (odd trailing rows/columns are dropped, as PyTorch does; the
/// gradient goes to the first maximum of a window on ties, as PyTorch's).
pub fn max_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
        let (_, _, h, w) = x.dims4()?;
        let x = if h % 2 == 1 || w % 2 == 1 { x.narrow(2, 0, h - h % 2)?.narrow(3, 0, w - w % 2)? } else { x.clone() };
        return super::kernels::cpu::resample::max_pool2x(&x);
    }
    max_pool2x_composite(x)
}

/// `max_pool2x` from candle ops (the reference for the kernel; on ties it splits nothing: every
/// maximum gets the gradient).
pub fn max_pool2x_composite(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 { x.narrow(2, 0, 2 * ho)?.narrow(3, 0, 2 * wo)? } else { x.clone() };
    x.reshape((b, c, ho, 2, wo, 2))?.max(D::Minus1)?.max(3)
}

/// 2x2 average pooling with stride 2.
pub fn avg_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h / 2, 2, w / 2, 2))?.mean(D::Minus1)?.mean(3)
}
