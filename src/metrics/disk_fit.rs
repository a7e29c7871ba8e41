//! Recovering the generating parameters `(cx, cy, radius)` of a disks image (method.md 10), to
//! score samples on the synthetic manifold directly: how far a denoised image's disk is from the
//! true one, and whether a generated image is a disk at all.
//!
//! Fit: an initial guess from the moments of `m = (I + 1) / 2` (centroid; area of the soft disk
//! `pi r^2 + pi^3 tau^2 / 3`), then Levenberg-Marquardt on `||I - render(p)||^2` with the
//! renderer's analytic Jacobian. Cheap (3 parameters, one image at a time) and, on images that
//! are disks, exact up to the noise.

use nalgebra::{Matrix3, Vector3};

use crate::data::disks::{render_and_jacobian, DiskParams, DisksConfig};

/// The recovered parameters and the RMS of `image - render(params)` (per pixel).
#[derive(Clone, Copy, Debug)]
pub struct DiskFit {
    pub cx: f64,
    pub cy: f64,
    pub radius: f64,
    pub rms: f64,
}

/// Recovered parameters may leave the data's range by this much (px) and still count as in
/// range: the fit of a clean data image is exact to far better than this.
pub const RANGE_TOL: f64 = 0.1;
const MAX_ITERS: usize = 50;

fn sum_sq(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*y as f64 - x).powi(2)).sum()
}

/// Moments of `(I + 1) / 2`: centroid and the radius whose soft disk has that mass. An image
/// with (almost) no mass starts at the centre with the smallest radius.
fn initial_guess(cfg: &DisksConfig, image: &[f32]) -> [f64; 3] {
    let n = cfg.size;
    let (mut mass, mut mx, mut my) = (0.0, 0.0, 0.0);
    for y in 0..n {
        for x in 0..n {
            let m = ((image[y * n + x] as f64 + 1.0) / 2.0).clamp(0.0, 1.0);
            mass += m;
            mx += m * (x as f64 + 0.5);
            my += m * (y as f64 + 0.5);
        }
    }
    if mass < 0.5 {
        return [n as f64 / 2.0, n as f64 / 2.0, cfg.radius_min as f64];
    }
    let tau = cfg.tau as f64;
    let pi = std::f64::consts::PI;
    let r = (mass / pi - pi * pi * tau * tau / 3.0).max(0.25).sqrt();
    [mx / mass, my / mass, r]
}

/// Fits a disk to one image (`size * size` values in [-1, 1]).
pub fn fit(cfg: &DisksConfig, image: &[f32]) -> DiskFit {
    let mut p = initial_guess(cfg, image);
    let (mut img, mut jac) = render_and_jacobian(cfg, p);
    let mut cost = sum_sq(&img, image);
    let mut lambda = 1e-3;
    for _ in 0..MAX_ITERS {
        let res: Vec<f64> = img.iter().zip(image).map(|(r, y)| *y as f64 - r).collect();
        let a = Matrix3::from_fn(|i, j| jac[i].iter().zip(&jac[j]).map(|(x, y)| x * y).sum::<f64>());
        let g = Vector3::from_fn(|i, _| jac[i].iter().zip(&res).map(|(x, y)| x * y).sum::<f64>());
        let mut improved = false;
        while lambda < 1e10 {
            let damped = a + Matrix3::from_diagonal(&(a.diagonal() * lambda).add_scalar(1e-12));
            let Some(delta) = damped.cholesky().map(|c| c.solve(&g)) else {
                lambda *= 10.0;
                continue;
            };
            // keep the radius positive (a disk of radius 0 is the empty image)
            let cand = [p[0] + delta[0], p[1] + delta[1], (p[2] + delta[2]).max(0.05)];
            let (ci, cj) = render_and_jacobian(cfg, cand);
            let c = sum_sq(&ci, image);
            if c.is_finite() && c < cost {
                let step = (0..3).map(|k| (cand[k] - p[k]).abs()).fold(0.0, f64::max);
                (p, img, jac, cost) = (cand, ci, cj, c);
                lambda = (lambda / 3.0).max(1e-9);
                improved = step > 1e-9;
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    DiskFit { cx: p[0], cy: p[1], radius: p[2], rms: (cost / image.len() as f64).sqrt() }
}

/// Whether fitted parameters lie in the data's range (radius in `[radius_min, radius_max]`,
/// centre at least `radius + margin` from every border), up to [`RANGE_TOL`].
pub fn in_range(cfg: &DisksConfig, f: &DiskFit) -> bool {
    let t = RANGE_TOL;
    let (lo_r, hi_r) = (cfg.radius_min as f64 - t, cfg.radius_max as f64 + t);
    let lo = f.radius + cfg.margin as f64 - t;
    let hi = cfg.size as f64 - f.radius - cfg.margin as f64 + t;
    (lo_r..=hi_r).contains(&f.radius) && (lo..=hi).contains(&f.cx) && (lo..=hi).contains(&f.cy)
}

/// Mean absolute errors (px) of `(cx, cy, radius)` over pairs of fits and true parameters.
pub fn mean_abs_errors(fits: &[DiskFit], truth: &[DiskParams]) -> [f64; 3] {
    let n = fits.len().min(truth.len()).max(1) as f64;
    let mut e = [0.0; 3];
    for (f, t) in fits.iter().zip(truth) {
        e[0] += (f.cx - t.cx as f64).abs();
        e[1] += (f.cy - t.cy as f64).abs();
        e[2] += (f.radius - t.radius as f64).abs();
    }
    e.map(|v| v / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::disks::{render, sample_params};

    fn draws(n: usize, seed: u64) -> Vec<DiskParams> {
        let cfg = DisksConfig::default();
        let mut rng = crate::rng::stream(seed, "disk-fit-test");
        (0..n).map(|_| sample_params(&cfg, &mut rng)).collect()
    }

    #[test]
    fn recovers_clean_renders_within_0_05_px() {
        let cfg = DisksConfig::default();
        for p in draws(40, 1) {
            let f = fit(&cfg, &render(&cfg, &p));
            let err = [f.cx - p.cx as f64, f.cy - p.cy as f64, f.radius - p.radius as f64];
            assert!(err.iter().all(|e| e.abs() < 0.05), "{p:?}: fitted {f:?}");
            assert!(f.rms < 1e-3, "{f:?}");
            assert!(in_range(&cfg, &f), "{p:?}: {f:?}");
        }
        // on another image size and edge softness too
        let cfg = DisksConfig { size: 28, radius_max: 9.0, tau: 0.7, ..DisksConfig::default() };
        let p = DiskParams { cx: 10.3, cy: 17.8, radius: 6.2 };
        let f = fit(&cfg, &render(&cfg, &p));
        assert!((f.cx - 10.3).abs() < 0.05 && (f.cy - 17.8).abs() < 0.05 && (f.radius - 6.2).abs() < 0.05, "{f:?}");
    }

    /// With i.i.d. pixel noise of std `s`, an unbiased estimator's covariance is at least
    /// `s^2 (J^T J)^-1` (Cramer-Rao); least squares attains it for small noise. So each error
    /// stays within 5 of those standard deviations (a Gaussian exceeds that with probability
    /// 6e-7), and the bound itself is checked to be small, so the test means something.
    #[test]
    fn recovers_noisy_renders_within_five_cramer_rao_deviations() {
        let cfg = DisksConfig::default();
        let s = 0.1;
        let mut rng = crate::rng::stream(2, "disk-fit-noise");
        for p in draws(40, 3) {
            let noisy: Vec<f32> =
                render(&cfg, &p).iter().zip(crate::rng::normal_vec(&mut rng, cfg.pixels())).map(|(v, z)| v + s as f32 * z).collect();
            let f = fit(&cfg, &noisy);
            let (_, jac) = render_and_jacobian(&cfg, [p.cx as f64, p.cy as f64, p.radius as f64]);
            let jtj = Matrix3::from_fn(|i, j| jac[i].iter().zip(&jac[j]).map(|(x, y)| x * y).sum::<f64>());
            let cov = jtj.try_inverse().unwrap() * (s * s);
            let err = [f.cx - p.cx as f64, f.cy - p.cy as f64, f.radius - p.radius as f64];
            for k in 0..3 {
                let sd = cov[(k, k)].sqrt();
                assert!(sd < 0.1, "Cramer-Rao bound {sd} px is too loose to test against");
                assert!(err[k].abs() < 5.0 * sd, "{p:?} param {k}: error {} vs sd {sd}", err[k]);
            }
            assert!((f.rms - s).abs() < 0.2 * s, "the residual of a good fit is the noise: {}", f.rms);
        }
    }

    #[test]
    fn non_disks_have_large_residuals_and_ranges_are_checked() {
        let cfg = DisksConfig::default();
        // two disks in one image: no single disk explains it
        let a = render(&cfg, &DiskParams { cx: 4.0, cy: 4.0, radius: 2.5 });
        let b = render(&cfg, &DiskParams { cx: 11.5, cy: 11.5, radius: 2.5 });
        let two: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect();
        assert!(fit(&cfg, &two).rms > 0.2);
        // an empty image fits nothing in range
        let empty = vec![-1.0f32; cfg.pixels()];
        assert!(!in_range(&cfg, &fit(&cfg, &empty)));
        let f = DiskFit { cx: 8.0, cy: 8.0, radius: 5.5, rms: 0.0 };
        assert!(!in_range(&cfg, &f), "radius above radius_max");
        let f = DiskFit { cx: 3.0, cy: 8.0, radius: 2.5, rms: 0.0 };
        assert!(!in_range(&cfg, &f), "centre closer than radius + margin to the border");
        assert_eq!(mean_abs_errors(&[f], &[DiskParams { cx: 2.0, cy: 9.0, radius: 3.0 }]), [1.0, 1.0, 0.5]);
    }
}
