//! Layers and ops on the gradient path. Each layer is our own type around candle ops, so a
//! faster kernel can replace the op without touching models; each is checked against finite
//! differences (see `gradcheck`). The layers (this folder's files) call into `kernels` (CPU
//! custom ops in `kernels/cpu`); kernels never import a layer.

pub mod attention;
pub mod batch_norm;
pub mod bilinear;
pub mod conv;
pub mod dropout;
pub mod flops;
pub mod fused;
pub mod gradcheck;
pub mod kernels;
pub mod linear;
pub mod norm;
pub mod params;
pub mod parity;
pub mod pool;
pub mod precision;
pub mod resample;

pub use attention::SelfAttention;
pub use batch_norm::BatchNorm2d;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use linear::Linear;
pub use norm::GroupNorm;
pub use params::ParamBuilder;

/// Per-forward context: training mode and the dropout seed. Two forwards given equal contexts
/// draw equal dropout masks (ECT needs the same mask in its `t` and `r` passes).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctx {
    pub train: bool,
    pub dropout_seed: u64,
}

impl Ctx {
    pub fn eval() -> Ctx {
        Ctx { train: false, dropout_seed: 0 }
    }
    pub fn train(dropout_seed: u64) -> Ctx {
        Ctx { train: true, dropout_seed }
    }
}
