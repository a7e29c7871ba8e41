//! Samplers (method.md section 7): 1-step, 2-step, and denoising from data (for dFD).

use candle_core::Tensor;

use crate::config::SamplingConfig;
use crate::model::Denoiser;
use crate::nn::Ctx;
use crate::Result;

/// One consistency step from noise level `t`: `x0 = D + (sigma_min / t) (x - D)`.
/// At `t = sigma_min` this returns `x` unchanged (the boundary condition).
pub fn step_from(model: &Denoiser, x: &Tensor, t: f64, sigma_min: f64) -> Result<Tensor> {
    let b = x.dim(0)?;
    let d = model.forward(x, &vec![t as f32; b], &Ctx::eval())?.detach();
    Ok((&d + ((x - &d)? * (sigma_min / t))?)?)
}

/// `x = sigma_max z`, one step.
pub fn one_step(model: &Denoiser, z: &Tensor, s: &SamplingConfig) -> Result<Tensor> {
    step_from(model, &(z * s.sigma_max)?, s.sigma_max, s.sigma_min)
}

/// One step, re-noise to `t_mid` with fresh noise `z2` (`sqrt(t_mid^2 - sigma_min^2) z2`), one more step.
pub fn two_step(model: &Denoiser, z: &Tensor, z2: &Tensor, s: &SamplingConfig) -> Result<Tensor> {
    let x0 = one_step(model, z, s)?;
    let x1 = (x0 + (z2 * (s.t_mid * s.t_mid - s.sigma_min * s.sigma_min).sqrt())?)?;
    step_from(model, &x1, s.t_mid, s.sigma_min)
}

/// `x = x0 + sigma z`, one step from `sigma` (dFD at sigma 0.2 / 0.4 / 0.8).
pub fn denoise_from_data(model: &Denoiser, x0: &Tensor, z: &Tensor, sigma: f64, s: &SamplingConfig) -> Result<Tensor> {
    step_from(model, &(x0 + (z * sigma)?)?, sigma, s.sigma_min)
}

/// Samples with steps 1 or 2, noise drawn from `rng`.
pub fn generate(
    model: &Denoiser,
    n: usize,
    shape: (usize, usize, usize),
    steps: usize,
    s: &SamplingConfig,
    rng: &mut impl rand::Rng,
) -> Result<Tensor> {
    let (c, h, w) = shape;
    let dev = model.device();
    let z = Tensor::from_vec(crate::rng::normal_vec(rng, n * c * h * w), (n, c, h, w), &dev)?;
    match steps {
        1 => one_step(model, &z, s),
        2 => {
            let z2 = Tensor::from_vec(crate::rng::normal_vec(rng, n * c * h * w), (n, c, h, w), &dev)?;
            two_step(model, &z, &z2, s)
        }
        other => Err(crate::Error::msg(format!("sampler: {other} steps; 1 or 2 are supported"))),
    }
}

/// NCHW floats in [-1, 1] to NHWC bytes.
pub fn to_u8_nhwc(x: &Tensor) -> Result<(Vec<u8>, usize, usize, usize, usize)> {
    let (n, c, h, w) = x.dims4()?;
    let v = x.permute((0, 2, 3, 1))?.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    Ok((v.into_iter().map(crate::image_io::to_u8).collect(), n, h, w, c))
}

/// Writes samples as a PNG grid (about square).
pub fn write_grid(x: &Tensor, path: &std::path::Path) -> Result<()> {
    let (bytes, n, h, w, c) = to_u8_nhwc(x)?;
    let cols = (n as f64).sqrt().ceil().max(1.0) as usize;
    let (gw, gh, grid) = crate::image_io::grid(&bytes, n, h, w, c, cols, 1);
    crate::image_io::write_png(path, gw, gh, c, &grid)
}

/// Mean squared error of one-step denoising `x0 + sigma z` back to `x0` (per pixel), noise
/// from stream "denoise-error" of `seed`: a direct measure of how close outputs are to the data.
pub fn denoise_error(model: &Denoiser, x0: &Tensor, sigma: f64, s: &SamplingConfig, seed: u64) -> Result<f64> {
    let mut rng = crate::rng::stream(seed, "denoise-error");
    let z = Tensor::from_vec(crate::rng::normal_vec(&mut rng, x0.elem_count()), x0.shape(), x0.device())?;
    let y = denoise_from_data(model, x0, &z, sigma, s)?;
    Ok((y - x0)?.sqr()?.mean_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UNetConfig;
    use candle_core::Device;

    fn model() -> Denoiser {
        let cfg = UNetConfig { channels: vec![8], blocks_per_level: 1, emb_dim: 8, noise_freqs: 2, groups: 2, ..UNetConfig::default() };
        Denoiser::new(&cfg, 1, 0.5, 0, &Device::Cpu).unwrap()
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn a_step_at_sigma_min_is_the_identity() {
        let m = model();
        let x = Tensor::randn(0f32, 1.0, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let y = step_from(&m, &x, 0.002, 0.002).unwrap();
        assert!(max_abs(&(y - &x).unwrap()) < 1e-6);
    }

    #[test]
    fn one_step_is_the_boundary_formula() {
        let m = model();
        let s = SamplingConfig::default();
        let z = Tensor::randn(0f32, 1.0, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let x = (&z * 80.0).unwrap();
        let d = m.forward(&x, &[80.0, 80.0], &Ctx::eval()).unwrap();
        let expect = (&d + ((&x - &d).unwrap() * (0.002 / 80.0)).unwrap()).unwrap();
        let got = one_step(&m, &z, &s).unwrap();
        assert!(max_abs(&(got - expect).unwrap()) < 1e-5);
    }

    #[test]
    fn two_steps_with_t_mid_at_sigma_min_equal_one_step() {
        // re-noising by sqrt(t_mid^2 - sigma_min^2) = 0, then an identity step
        let m = model();
        let s = SamplingConfig { t_mid: 0.002, ..SamplingConfig::default() };
        let z = Tensor::randn(0f32, 1.0, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let z2 = Tensor::randn(0f32, 1.0, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let a = one_step(&m, &z, &s).unwrap();
        let b = two_step(&m, &z, &z2, &s).unwrap();
        assert!(max_abs(&(a - b).unwrap()) < 1e-5);
    }

    #[test]
    fn denoising_from_data_at_tiny_sigma_returns_the_data() {
        let m = model();
        let x0 = Tensor::randn(0f32, 0.5, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let z = Tensor::randn(0f32, 1.0, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let y = denoise_from_data(&m, &x0, &z, 0.002, &SamplingConfig::default()).unwrap();
        // x = x0 + 0.002 z, and the step at sigma_min is the identity
        assert!(max_abs(&(y - &x0).unwrap()) < 0.002 * 5.0);
    }
}
