//! CPU kernels: candle custom ops with hand-written backwards, each checked against finite
//! differences and against the composite candle op on random inputs. `simd` holds what they
//! share (the element trait, scratch buffers, lane sums, `avx2_dispatch!`).

pub mod conv;
pub mod dropout;
pub mod fused;
pub mod gemm;
pub mod groupnorm;
pub mod im2col;
pub mod maxpool;
pub mod resample;
pub mod simd;
pub mod tf32;
pub mod winograd;
