//! Models: the EDM-preconditioned denoiser (its configurable UNet, or EDM's DDPM++), and the
//! VGG-style feature network.

pub mod featnet;
pub mod feature;
pub mod inception;
pub mod lpips;
pub mod network;
pub mod parity;
pub mod phi;
pub mod precond;
pub mod songunet;
pub mod unet;

pub use featnet::{FeatNet, FeatNetConfig, FeatNorm};
pub use feature::{FeatureDistance, FeatureExtractor};
pub use precond::{Denoiser, Precond};
pub use unet::{UNet, UNetArch, UNetConfig};
