//! The denoiser's network `F(x, c_noise)`, chosen by `model.arch`: the configurable
//! DDPM++-family UNet (`unet`, the default) or EDM's DDPM++ `SongUNet` (`ddpmpp`).

use candle_core::Tensor;

use super::songunet::SongUNet;
use super::unet::{UNet, UNetArch, UNetConfig};
use crate::nn::{Ctx, ParamBuilder};
use crate::Result;

#[allow(clippy::large_enum_variant)] // one per model
pub enum Network {
    Unet(UNet),
    Ddpmpp(SongUNet),
}

impl Network {
    pub fn new(pb: &ParamBuilder, cfg: &UNetConfig, img_channels: usize) -> Result<Network> {
        Ok(match cfg.arch {
            UNetArch::Unet => Network::Unet(UNet::new(pb, cfg, img_channels)?),
            UNetArch::Ddpmpp => {
                cfg.validate().map_err(crate::Error::msg)?;
                Network::Ddpmpp(SongUNet::new(pb, &cfg.ddpmpp, cfg.dropout, img_channels)?)
            }
        })
    }

    /// `F(x, c_noise)`: `x` [B,C,H,W], `c_noise` [B].
    pub fn forward(&self, x: &Tensor, c_noise: &Tensor, ctx: &Ctx) -> candle_core::Result<Tensor> {
        match self {
            Network::Unet(n) => n.forward(x, c_noise, ctx),
            Network::Ddpmpp(n) => n.forward(x, c_noise, ctx),
        }
    }
}
