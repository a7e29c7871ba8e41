//! Samplers (method.md section 7): 1-step, 2-step, and denoising from data (for dFD); and EDM's
//! deterministic Heun sampler, which is how a diffusion (EDM) run's denoiser is meant to be
//! sampled: a 1-step consistency sample of a diffusion denoiser is noise by design.

use candle_core::Tensor;

use crate::config::{Mode, Preset, SamplingConfig};
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

/// EDM's noise levels for `steps` Heun steps: `sigma_max` to `sigma_min` spaced evenly in
/// `sigma^(1/rho)` (rho = 7), then 0.
pub fn heun_sigmas(steps: usize, s: &SamplingConfig) -> Vec<f64> {
    const RHO: f64 = 7.0;
    let (hi, lo) = (s.sigma_max.powf(1.0 / RHO), s.sigma_min.powf(1.0 / RHO));
    let last = steps.saturating_sub(1).max(1) as f64;
    let mut t: Vec<f64> = (0..steps).map(|i| (hi + i as f64 / last * (lo - hi)).powf(RHO)).collect();
    t.push(0.0);
    t
}

/// EDM's deterministic sampler (Karras et al. 2022, Algorithm 1 without churn) over a denoiser
/// `d(x, sigma)`: Euler steps of `dx/dsigma = (x - D) / sigma` with Heun's correction on every
/// step but the last, so `2 * steps - 1` evaluations (35 for 18 steps).
pub fn heun_with(d: impl Fn(&Tensor, f64) -> Result<Tensor>, z: &Tensor, steps: usize, s: &SamplingConfig) -> Result<Tensor> {
    let t = heun_sigmas(steps, s);
    let mut x = (z * t[0])?;
    for i in 0..steps {
        let (ti, tn) = (t[i], t[i + 1]);
        let slope = ((&x - d(&x, ti)?)? / ti)?;
        let euler = (&x + (&slope * (tn - ti))?)?;
        x = if tn > 0.0 {
            let slope2 = ((&euler - d(&euler, tn)?)? / tn)?;
            (&x + (((slope + slope2)? * 0.5)? * (tn - ti))?)?
        } else {
            euler
        };
    }
    Ok(x)
}

/// [`heun_with`] on `model`.
pub fn heun(model: &Denoiser, z: &Tensor, steps: usize, s: &SamplingConfig) -> Result<Tensor> {
    let b = z.dim(0)?;
    heun_with(|x, sigma| Ok(model.forward(x, &vec![sigma as f32; b], &Ctx::eval())?.detach()), z, steps, s)
}

/// How samples are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampler {
    /// The 1- or 2-step consistency sampler (method.md section 7).
    Consistency(usize),
    /// EDM's Heun sampler with this many noise levels.
    Heun(usize),
}

/// A sampler kind, as `ayt sample --sampler` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerKind {
    Consistency,
    Heun,
}

/// EDM's choice for CIFAR-10: 18 noise levels, 35 evaluations.
pub const HEUN_STEPS: usize = 18;
/// The most Heun steps a command takes.
pub const MAX_HEUN_STEPS: usize = 1000;

impl Sampler {
    /// A run's sampler: EDM runs Heun with [`HEUN_STEPS`], consistency runs
    /// `log.sample_steps`; `kind` and `steps` override, checked.
    pub fn for_run(preset: &Preset, kind: Option<SamplerKind>, steps: Option<usize>) -> Result<Sampler> {
        let kind = kind.unwrap_or(if preset.train.mode == Mode::Edm { SamplerKind::Heun } else { SamplerKind::Consistency });
        match (kind, steps) {
            (SamplerKind::Consistency, None) => Ok(Sampler::Consistency(preset.log.sample_steps)),
            (SamplerKind::Consistency, Some(n @ 1..=2)) => Ok(Sampler::Consistency(n)),
            (SamplerKind::Heun, None) => Ok(Sampler::Heun(HEUN_STEPS)),
            (SamplerKind::Heun, Some(n @ 1..=MAX_HEUN_STEPS)) => Ok(Sampler::Heun(n)),
            (kind, Some(n)) => Err(crate::Error::msg(format!(
                "--steps {n}: the {kind:?} sampler takes {}",
                if kind == SamplerKind::Heun { format!("1 to {MAX_HEUN_STEPS} steps") } else { "1 or 2 steps".into() }
            ))),
        }
    }
}

/// The Heun steps of a run's extra `*_heun<N>` metric: [`HEUN_STEPS`] for an EDM run (its
/// 1- and 2-step consistency samples are noise by design), none for a consistency run;
/// `requested` (`--heun-steps`) overrides, 0 for none, at most [`MAX_HEUN_STEPS`].
pub fn metric_heun_steps(preset: &Preset, requested: Option<usize>) -> Result<Option<usize>> {
    if let Some(k) = requested.filter(|k| *k > MAX_HEUN_STEPS) {
        return Err(crate::Error::msg(format!("--heun-steps {k}: at most {MAX_HEUN_STEPS}")));
    }
    let default = (preset.train.mode == Mode::Edm).then_some(HEUN_STEPS);
    Ok(requested.map_or(default, |k| (k > 0).then_some(k)))
}

impl std::fmt::Display for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sampler::Consistency(n) => write!(f, "{n}-step consistency"),
            Sampler::Heun(n) => write!(f, "{n}-step Heun ({} evaluations)", (2 * n).saturating_sub(1)),
        }
    }
}

/// Samples with `sampler`, noise drawn from `rng`.
pub fn generate(
    model: &Denoiser,
    n: usize,
    shape: (usize, usize, usize),
    sampler: Sampler,
    s: &SamplingConfig,
    rng: &mut impl rand::Rng,
) -> Result<Tensor> {
    let (c, h, w) = shape;
    let dev = model.device();
    let z = Tensor::from_vec(crate::rng::normal_vec(rng, n * c * h * w), (n, c, h, w), &dev)?;
    from_noise(model, sampler, &z, || Ok(Tensor::from_vec(crate::rng::normal_vec(rng, n * c * h * w), (n, c, h, w), &dev)?), s)
}

/// Samples with `sampler` from noise `z`; `z2()` gives the 2-step sampler's second noise (drawn
/// only by it, after `z`).
pub fn from_noise(
    model: &Denoiser,
    sampler: Sampler,
    z: &Tensor,
    z2: impl FnOnce() -> Result<Tensor>,
    s: &SamplingConfig,
) -> Result<Tensor> {
    match sampler {
        Sampler::Consistency(1) => one_step(model, z, s),
        Sampler::Consistency(2) => two_step(model, z, &z2()?, s),
        Sampler::Heun(steps) if steps >= 1 => heun(model, z, steps, s),
        other => Err(crate::Error::msg(format!("sampler: {other} is not one there is"))),
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

    /// On Gaussian data `N(0, sd^2)` the ideal denoiser is `x sd^2 / (sigma^2 + sd^2)` and the
    /// probability-flow ODE is solved exactly by `x(sigma) = z sd sqrt(sigma^2 + sd^2) / sqrt(...)`:
    /// from `x(sigma_max) = sigma_max z` it ends at `sd sigma_max z / sqrt(sigma_max^2 + sd^2)`.
    /// Heun converges to it at second order (doubling the steps cuts the error about four
    /// times); 35 evaluations for 18 steps.
    #[test]
    fn heun_solves_the_gaussian_ode_to_second_order() {
        let s = SamplingConfig::default();
        let sd = 0.5;
        let calls = std::cell::Cell::new(0);
        let ideal = |x: &Tensor, sigma: f64| -> Result<Tensor> {
            calls.set(calls.get() + 1);
            Ok((x * (sd * sd / (sigma * sigma + sd * sd)))?)
        };
        let z = Tensor::new(&[1.0f64, -2.0, 0.5], &Device::Cpu).unwrap();
        let exact = sd * s.sigma_max / (s.sigma_max * s.sigma_max + sd * sd).sqrt();
        let err = |steps: usize| {
            let x = heun_with(ideal, &z, steps, &s).unwrap().to_vec1::<f64>().unwrap();
            x.iter().zip([1.0, -2.0, 0.5]).map(|(x, z)| (x - exact * z).abs() / (exact * z.abs())).fold(0.0, f64::max)
        };
        calls.set(0);
        let e18 = err(18);
        assert_eq!(calls.get(), 35);
        // 0.0553 at 18 steps, 0.0122 at 36, 0.00035 at 200 (the same scheme in plain Python)
        let (e36, e200) = (err(36), err(200));
        assert!(e18 < 0.06 && e200 < 5e-4, "relative error {e18} at 18 steps, {e200} at 200");
        assert!(e18 / e36 > 4.0, "second order: {e18} at 18 steps, {e36} at 36");
        let t = heun_sigmas(18, &s);
        assert_eq!((t.len(), t[0], t[18]), (19, 80.0, 0.0));
        assert!((t[17] - 0.002).abs() < 1e-12, "{}", t[17]);
        assert!(t.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn edm_runs_sample_with_heun_and_consistency_runs_as_logged() {
        let mut p = Preset::parse(include_str!("../presets/quick-disks.toml"), std::path::Path::new("quick-disks.toml"), &[]).unwrap();
        p.train.mode = Mode::Edm;
        assert_eq!(Sampler::for_run(&p, None, None).unwrap(), Sampler::Heun(18));
        assert_eq!(Sampler::for_run(&p, Some(SamplerKind::Consistency), Some(2)).unwrap(), Sampler::Consistency(2));
        p.train.mode = Mode::Ect;
        p.log.sample_steps = 2;
        assert_eq!(Sampler::for_run(&p, None, None).unwrap(), Sampler::Consistency(2));
        assert_eq!(Sampler::for_run(&p, Some(SamplerKind::Heun), Some(40)).unwrap(), Sampler::Heun(40));
        let e = Sampler::for_run(&p, None, Some(3)).unwrap_err().to_string();
        assert!(e.contains("--steps 3") && e.contains("1 or 2"), "{e}");
        assert_eq!(Sampler::Heun(18).to_string(), "18-step Heun (35 evaluations)");
    }

    #[test]
    fn the_heun_metric_is_for_edm_runs_unless_asked() {
        let mut p = Preset::parse(include_str!("../presets/quick-disks.toml"), std::path::Path::new("quick-disks.toml"), &[]).unwrap();
        assert_eq!(metric_heun_steps(&p, None).unwrap(), None);
        assert_eq!(metric_heun_steps(&p, Some(5)).unwrap(), Some(5));
        p.train.mode = Mode::Edm;
        assert_eq!(metric_heun_steps(&p, None).unwrap(), Some(HEUN_STEPS));
        assert_eq!(metric_heun_steps(&p, Some(0)).unwrap(), None);
        let e = metric_heun_steps(&p, Some(MAX_HEUN_STEPS + 1)).unwrap_err().to_string();
        assert_eq!(e, "--heun-steps 1001: at most 1000");
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
