//! EDM preconditioning (method.md section 2):
//! `D(x, t) = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t))`.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::network::Network;
use super::UNetConfig;
use crate::nn::{Ctx, ParamBuilder};
use crate::Result;

/// The four preconditioning coefficients at one noise level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Precond {
    pub c_skip: f64,
    pub c_out: f64,
    pub c_in: f64,
    pub c_noise: f64,
}

impl Precond {
    pub fn at(t: f64, sigma_data: f64) -> Precond {
        let sd2 = sigma_data * sigma_data;
        let norm = (t * t + sd2).sqrt();
        Precond { c_skip: sd2 / (t * t + sd2), c_out: t * sigma_data / norm, c_in: 1.0 / norm, c_noise: t.ln() / 4.0 }
    }
}

/// A network (`model.arch`) wrapped in EDM preconditioning. Holds tensors that share storage with the `VarMap`
/// it was built in, so setting the map's vars (EMA copy, checkpoint load) updates the model.
pub struct Denoiser {
    pub net: Network,
    pub sigma_data: f64,
    pub varmap: VarMap,
    device: Device,
}

impl Denoiser {
    /// A new denoiser with parameters drawn from `seed` (stream "init").
    pub fn new(cfg: &UNetConfig, img_channels: usize, sigma_data: f64, seed: u64, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let pb = ParamBuilder::new(&varmap, crate::rng::stream(seed, "init"), device, candle_core::DType::F32);
        let net = Network::new(&pb, cfg, img_channels)?;
        Ok(Denoiser { net, sigma_data, varmap, device: device.clone() })
    }

    /// `D(x, t)` for a batch `x` [B,C,H,W] and one noise level per sample.
    pub fn forward(&self, x: &Tensor, t: &[f32], ctx: &Ctx) -> Result<Tensor> {
        let b = x.dim(0)?;
        if t.len() != b {
            return Err(crate::Error::msg(format!("denoiser: {} noise levels for a batch of {b}", t.len())));
        }
        let coef: Vec<Precond> = t.iter().map(|&t| Precond::at(t as f64, self.sigma_data)).collect();
        let column = |f: fn(&Precond) -> f64| -> candle_core::Result<Tensor> {
            let v: Vec<f32> = coef.iter().map(|c| f(c) as f32).collect();
            Tensor::from_vec(v, (b, 1, 1, 1), x.device())
        };
        let c_noise: Vec<f32> = coef.iter().map(|c| c.c_noise as f32).collect();
        let c_noise = Tensor::from_vec(c_noise, b, x.device())?;
        let f = self.net.forward(&x.broadcast_mul(&column(|c| c.c_in)?)?, &c_noise, ctx)?;
        Ok(x.broadcast_mul(&column(|c| c.c_skip)?)?.add(&f.broadcast_mul(&column(|c| c.c_out)?)?)?)
    }

    /// Named parameters, sorted by name (the order the optimiser and checkpoints use).
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        named_vars(&self.varmap)
    }

    pub fn device(&self) -> candle_core::Device {
        self.device.clone()
    }

    pub fn param_count(&self) -> usize {
        self.varmap.all_vars().iter().map(|v| v.elem_count()).sum()
    }
}

pub fn named_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditioning_matches_hand_computed_values() {
        // t = 0.5, sd = 0.5: t^2 + sd^2 = 0.5
        let p = Precond::at(0.5, 0.5);
        assert!((p.c_skip - 0.5).abs() < 1e-12);
        assert!((p.c_out - 0.25 / 0.5f64.sqrt()).abs() < 1e-12);
        assert!((p.c_in - 1.0 / 0.5f64.sqrt()).abs() < 1e-12);
        assert!((p.c_noise - 0.5f64.ln() / 4.0).abs() < 1e-12);
        // t = 80: c_skip = 0.25 / 6400.25
        let p = Precond::at(80.0, 0.5);
        assert!((p.c_skip - 0.25 / 6400.25).abs() < 1e-15);
        assert!((p.c_out - 40.0 / 6400.25f64.sqrt()).abs() < 1e-12);
        // t -> 0: D -> x (c_skip -> 1, c_out -> 0)
        let p = Precond::at(1e-6, 0.5);
        assert!((p.c_skip - 1.0).abs() < 1e-9 && p.c_out < 1e-5);
    }
}
