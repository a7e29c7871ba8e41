//! 2x resampling: the CPU kernels of `kernels::cpu::resample` on CPU, `kernels::portable`'s
//! reshapes and broadcasts elsewhere (candle's own `upsample_nearest2d` / `max_pool2d` are slower,
//! and the latter's backward is wrong in candle 0.11).

use candle_core::{Tensor, D};

use super::kernels::portable;

/// Nearest-neighbour 2x upsampling (a CPU kernel on CPU, see `kernels::cpu::resample`).
pub fn upsample_nearest2x(x: &Tensor) -> candle_core::Result<Tensor> {
    if super::kernels::custom_ops_for(x) {
        return super::kernels::cpu::resample::upsample_nearest2x(x);
    }
    portable::upsample_nearest2x(x)
}

/// 2x2 max-pooling with stride 2 (odd trailing rows/columns are dropped, as PyTorch does; the
/// gradient goes to the first maximum of a window on ties, as PyTorch's).
pub fn max_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
    if super::kernels::custom_ops_for(x) {
        let (_, _, h, w) = x.dims4()?;
        let x = if h % 2 == 1 || w % 2 == 1 { x.narrow(2, 0, h - h % 2)?.narrow(3, 0, w - w % 2)? } else { x.clone() };
        return super::kernels::cpu::resample::max_pool2x(&x);
    }
    portable::max_pool2x(x)
}

/// 2x2 average pooling with stride 2.
pub fn avg_pool2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h / 2, 2, w / 2, 2))?.mean(D::Minus1)?.mean(3)
}
