//! The synthetic disk manifold (method.md section 10): one soft-edged disk per image,
//! `I(p) = 2 * sigmoid((radius - |p - c|) / tau) - 1`, with parameters `(cx, cy, radius)`.
//!
//! Pixel `(x, y)` (column, row) has its centre at `(x + 0.5, y + 0.5)`; images are `size x size`,
//! one channel, row-major, values in [-1, 1]. The tangent space at a point is spanned by the
//! analytic derivatives of the image with respect to the three parameters.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image_io::to_u8;

/// Disk image settings.
///
/// Defaults: 16x16 images, radius uniform in [2, 5] px, edge softness `tau` = 1 px (method.md:
/// "about one pixel"), and a margin of 1 px: the centre is drawn uniformly such that the disk's
/// nominal edge stays at least `margin` px inside the image on every side, i.e.
/// `cx, cy` in `[radius + margin, size - radius - margin]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisksConfig {
    /// Image side in pixels.
    pub size: usize,
    /// Smallest radius (px).
    pub radius_min: f32,
    /// Largest radius (px).
    pub radius_max: f32,
    /// Gap (px) kept between the disk's nominal edge and the image border.
    pub margin: f32,
    /// Edge softness (px) of the sigmoid.
    pub tau: f32,
}

impl Default for DisksConfig {
    fn default() -> Self {
        DisksConfig { size: 16, radius_min: 2.0, radius_max: 5.0, margin: 1.0, tau: 1.0 }
    }
}

impl DisksConfig {
    /// Check that the ranges make sense and a disk of the largest radius fits; errors name the
    /// preset keys (`data.disks.*`) and values.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::msg(m));
        if self.size == 0 {
            return bad("data.disks.size = 0: must be at least 1".into());
        }
        if self.radius_min <= 0.0 {
            return bad(format!("data.disks.radius_min = {}: must be a positive number", self.radius_min));
        }
        if self.radius_min > self.radius_max {
            return bad(format!("data.disks.radius_max = {}: must be >= data.disks.radius_min = {}", self.radius_max, self.radius_min));
        }
        if !(self.tau > 0.0 && self.tau.is_finite()) {
            return bad(format!("data.disks.tau = {}: must be a positive number", self.tau));
        }
        if !self.margin.is_finite() || self.margin < 0.0 {
            return bad(format!("data.disks.margin = {}: must be >= 0", self.margin));
        }
        if 2.0 * (self.radius_max + self.margin) > self.size as f32 {
            return bad(format!(
                "data.disks.radius_max = {}: a disk that large with data.disks.margin = {} does not fit in data.disks.size = {}",
                self.radius_max, self.margin, self.size
            ));
        }
        Ok(())
    }

    /// Pixels per image (`size * size`).
    pub fn pixels(&self) -> usize {
        self.size * self.size
    }
}

/// One point on the manifold, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskParams {
    pub cx: f32,
    pub cy: f32,
    pub radius: f32,
}

/// Draw parameters: radius uniform in `[radius_min, radius_max]`, then the centre uniform in
/// `[radius + margin, size - radius - margin]^2` (so the whole disk is inside the image).
/// Assumes a valid config (see [`DisksConfig::validate`]); degenerate ranges give their lower end.
pub fn sample_params(cfg: &DisksConfig, rng: &mut impl Rng) -> DiskParams {
    let uniform = |rng: &mut _, lo: f32, hi: f32| -> f32 {
        if hi > lo {
            rand::Rng::random_range(rng, lo..=hi)
        } else {
            lo
        }
    };
    let radius = uniform(rng, cfg.radius_min, cfg.radius_max);
    let lo = radius + cfg.margin;
    let hi = cfg.size as f32 - radius - cfg.margin;
    let cx = uniform(rng, lo, hi);
    let cy = uniform(rng, lo, hi);
    DiskParams { cx, cy, radius }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Render in f64 (the reference the f32 image and the derivative tests use).
fn render_f64(cfg: &DisksConfig, p: &DiskParams) -> Vec<f64> {
    render_and_jacobian(cfg, [p.cx as f64, p.cy as f64, p.radius as f64]).0
}

/// The image of `p`: `size * size` values in [-1, 1], row-major.
pub fn render(cfg: &DisksConfig, p: &DiskParams) -> Vec<f32> {
    render_f64(cfg, p).into_iter().map(|v| v as f32).collect()
}

fn derivatives_f64(cfg: &DisksConfig, p: &DiskParams) -> [Vec<f64>; 3] {
    render_and_jacobian(cfg, [p.cx as f64, p.cy as f64, p.radius as f64]).1
}

/// The image at `(cx, cy, radius)` in f64 and its derivatives `dI/dcx, dI/dcy, dI/dradius`
/// (what fitting a disk to an image needs).
pub fn render_and_jacobian(cfg: &DisksConfig, [cx, cy, r]: [f64; 3]) -> (Vec<f64>, [Vec<f64>; 3]) {
    let tau = cfg.tau as f64;
    let n = cfg.size;
    let mut img = Vec::with_capacity(n * n);
    let mut d_cx = Vec::with_capacity(n * n);
    let mut d_cy = Vec::with_capacity(n * n);
    let mut d_r = Vec::with_capacity(n * n);
    for y in 0..n {
        for x in 0..n {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let d = (dx * dx + dy * dy).sqrt();
            let s = sigmoid((r - d) / tau);
            img.push(2.0 * s - 1.0);
            // dI/dz for z = (r - d) / tau, times dz/d(param)
            let g = 2.0 * s * (1.0 - s) / tau;
            d_r.push(g);
            // dd/dcx = -(px - cx)/d, so dI/dcx = g * (px - cx)/d (0 at the centre itself)
            if d > 1e-12 {
                d_cx.push(g * dx / d);
                d_cy.push(g * dy / d);
            } else {
                d_cx.push(0.0);
                d_cy.push(0.0);
            }
        }
    }
    (img, [d_cx, d_cy, d_r])
}

/// Analytic `dI/dcx, dI/dcy, dI/dradius` (each `size * size`).
pub fn derivatives(cfg: &DisksConfig, p: &DiskParams) -> [Vec<f32>; 3] {
    derivatives_f64(cfg, p).map(|v| v.into_iter().map(|x| x as f32).collect())
}

/// An orthonormal basis (Gram-Schmidt in f64) of the tangent space at `p`: up to three vectors
/// of length `size * size` (a derivative that is numerically dependent on the previous ones is
/// dropped).
pub fn tangent_basis(cfg: &DisksConfig, p: &DiskParams) -> Vec<Vec<f32>> {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(3);
    for v in derivatives_f64(cfg, p) {
        let scale = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        let mut u = v;
        // two passes of modified Gram-Schmidt for stability
        for _ in 0..2 {
            for b in &basis {
                let dot: f64 = u.iter().zip(b).map(|(a, b)| a * b).sum();
                u.iter_mut().zip(b).for_each(|(a, b)| *a -= dot * b);
            }
        }
        let norm = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-9 * scale.max(f64::MIN_POSITIVE) && norm > 0.0 {
            u.iter_mut().for_each(|a| *a /= norm);
            basis.push(u);
        }
    }
    basis.into_iter().map(|b| b.into_iter().map(|x| x as f32).collect()).collect()
}

/// Orthogonal projection of `v` onto the span of an orthonormal `basis` (computed in f64).
pub fn project(basis: &[Vec<f32>], v: &[f32]) -> Vec<f32> {
    let mut out = vec![0f64; v.len()];
    for b in basis {
        let dot: f64 = b.iter().zip(v).map(|(a, b)| *a as f64 * *b as f64).sum();
        out.iter_mut().zip(b).for_each(|(o, b)| *o += dot * *b as f64);
    }
    out.into_iter().map(|x| x as f32).collect()
}

/// An image in [-1, 1] as 8-bit grey pixels.
pub fn to_u8_image(values: &[f32]) -> Vec<u8> {
    values.iter().map(|&v| to_u8(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn points() -> Vec<DiskParams> {
        let cfg = DisksConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        (0..6).map(|_| sample_params(&cfg, &mut rng)).collect()
    }

    #[test]
    fn defaults_are_valid_and_samples_in_range() {
        let cfg = DisksConfig::default();
        cfg.validate().unwrap();
        for p in points() {
            assert!(p.radius >= 2.0 && p.radius <= 5.0);
            for c in [p.cx, p.cy] {
                assert!(c >= p.radius + 1.0 && c <= 16.0 - p.radius - 1.0, "{p:?}");
            }
            let img = render(&cfg, &p);
            assert_eq!(img.len(), 256);
            assert!(img.iter().all(|v| (-1.0..=1.0).contains(v)));
        }
        let bad = DisksConfig { radius_max: 8.0, ..cfg.clone() };
        assert!(bad.validate().is_err());
        let e = toml::from_str::<DisksConfig>("size = 8\nradius = 3").unwrap_err().to_string();
        assert!(e.contains("radius"), "{e}");
        let c: DisksConfig = toml::from_str("size = 32").unwrap();
        assert_eq!(c, DisksConfig { size: 32, ..cfg });
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let cfg = DisksConfig::default();
        let h = 1e-3f32;
        for p in points() {
            let an = derivatives_f64(&cfg, &p);
            for (k, an_k) in an.iter().enumerate() {
                let mut plus = p;
                let mut minus = p;
                let (a, b) = match k {
                    0 => (&mut plus.cx, &mut minus.cx),
                    1 => (&mut plus.cy, &mut minus.cy),
                    _ => (&mut plus.radius, &mut minus.radius),
                };
                *a += h;
                *b -= h;
                // the actual step in f32 parameters
                let step = (match k {
                    0 => plus.cx - minus.cx,
                    1 => plus.cy - minus.cy,
                    _ => plus.radius - minus.radius,
                }) as f64;
                let (fp, fm) = (render_f64(&cfg, &plus), render_f64(&cfg, &minus));
                let scale = an_k.iter().fold(0f64, |m, v| m.max(v.abs()));
                for i in 0..fp.len() {
                    let fd = (fp[i] - fm[i]) / step;
                    assert!((fd - an_k[i]).abs() <= 1e-3 * scale, "param {k} pixel {i}: {fd} vs {}", an_k[i]);
                }
            }
            // the f32 outputs agree with the f64 reference
            let d32 = derivatives(&cfg, &p);
            assert!((d32[2][0] as f64 - an[2][0]).abs() < 1e-6);
        }
    }

    #[test]
    fn basis_is_orthonormal_and_projects() {
        let cfg = DisksConfig::default();
        for p in points() {
            let basis = tangent_basis(&cfg, &p);
            assert_eq!(basis.len(), 3);
            for i in 0..3 {
                for j in 0..3 {
                    let dot: f64 = basis[i].iter().zip(&basis[j]).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-6, "<b{i}, b{j}> = {dot}");
                }
            }
            // a derivative lies in the span: projection returns it
            let d = derivatives(&cfg, &p);
            let pr = project(&basis, &d[0]);
            let err = pr.iter().zip(&d[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err < 1e-5, "{err}");
            // a vector orthogonal to the basis projects to zero
            let mut v: Vec<f64> = (0..cfg.pixels()).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
            for b in &basis {
                let dot: f64 = v.iter().zip(b).map(|(a, b)| a * *b as f64).sum();
                v.iter_mut().zip(b).for_each(|(a, b)| *a -= dot * *b as f64);
            }
            let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let norm = v32.iter().map(|a| a * a).sum::<f32>().sqrt();
            let pn = project(&basis, &v32).iter().map(|a| a * a).sum::<f32>().sqrt();
            assert!(pn < 1e-5 * norm, "{pn} vs {norm}");
        }
    }
}
