//! Resampling written as reshapes and broadcasts: correct gradients, and faster than candle's
//! `upsample_nearest2d` / `max_pool2d` (whose backward is wrong in candle 0.11).

use candle_core::{Tensor, D};

/// Nearest-neighbour 2x upsampling.
pub fn upsample_nearest2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?.broadcast_as((b, c, h, 2, w, 2))?.reshape((b, c, 2 * h, 2 * w))
}

/// 2x2 max-pooling with stride 2 (odd trailing rows/columns are dropped, as PyTorch does).
pub fn max_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
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
