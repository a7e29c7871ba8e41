//! Models: the EDM-preconditioned UNet denoiser.

pub mod lpips;
pub mod phi;
pub mod precond;
pub mod unet;

pub use precond::{Denoiser, Precond};
pub use unet::{UNet, UNetConfig};
