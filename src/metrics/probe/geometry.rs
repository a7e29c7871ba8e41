//! Where the data manifold is, seen from a denoiser output `D_t`: its nearest point `P(D_t)` and
//! the tangent space there, and how a unit update direction splits against them.
//!
//! - Disks: exact. Fit `(cx, cy, r)` to `D_t` (the renderer fit of `disk_fit`), render it: that is
//!   the nearest disk image; the tangent space is the renderer's, at the fitted parameters.
//! - Image data: the affine local-PCA plane of the probe image's `K` nearest training images
//!   (origin: their mean; directions: the probe's local-PCA basis). `P` is the orthogonal
//!   projection of `D_t` onto that plane. It is the manifold only near the probe image, so at
//!   large `t` (where `D_t` is far from it) this is "toward the local plane", not more.

use super::super::disk_fit;
use crate::data::disks::{self, DiskParams, DisksConfig};

/// The manifold model of a probe batch.
#[derive(Clone, Debug)]
pub enum Manifold {
    Disks(DisksConfig),
    /// Per probe sample: the plane's origin (the neighbours' mean), with the sample's basis.
    Planes(Vec<Vec<f32>>),
    /// No geometry (no training images to take neighbours from).
    Unknown,
}

/// The nearest manifold point of one `D_t` and the orthonormal tangent basis there.
pub struct Foot {
    pub point: Vec<f32>,
    pub basis: Vec<Vec<f32>>,
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// `cos(a, b)`; NaN when either is zero (no direction to compare).
pub(super) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (na, nb) = (dot(a, a).sqrt(), dot(b, b).sqrt());
    if na == 0.0 || nb == 0.0 {
        f64::NAN
    } else {
        dot(a, b) / (na * nb)
    }
}

/// `1 - ||U^T u||^2 / ||u||^2` for orthonormal columns `U` (NaN without a basis).
pub fn normal_energy(basis: &[Vec<f32>], u: &[f32]) -> f64 {
    if basis.is_empty() {
        return f64::NAN;
    }
    let norm2 = dot(u, u);
    if norm2 == 0.0 {
        return f64::NAN;
    }
    1.0 - basis.iter().map(|b| dot(b, u).powi(2)).sum::<f64>() / norm2
}

impl Manifold {
    /// `P(d_t)` and the tangent basis at `P`, for probe sample `i` with local basis `basis`.
    pub fn foot(&self, i: usize, d_t: &[f32], basis: &[Vec<f32>]) -> Option<Foot> {
        match self {
            Manifold::Disks(cfg) => {
                let f = disk_fit::fit(cfg, d_t);
                let p = DiskParams { cx: f.cx as f32, cy: f.cy as f32, radius: f.radius as f32 };
                Some(Foot { point: disks::render(cfg, &p), basis: disks::tangent_basis(cfg, &p) })
            }
            Manifold::Planes(origins) => {
                let origin = origins.get(i)?;
                if basis.is_empty() {
                    return None;
                }
                let offset: Vec<f32> = d_t.iter().zip(origin).map(|(a, o)| a - o).collect();
                let along = disks::project(basis, &offset);
                let point = origin.iter().zip(&along).map(|(o, a)| o + a).collect();
                Some(Foot { point, basis: basis.to_vec() })
            }
            Manifold::Unknown => None,
        }
    }
}

/// How a unit direction `u` splits at the foot of `D_t`, as energy fractions that sum to at most
/// one: `tangential = ||U_P^T u||^2`; `a = <u, n>` with `n = unit(P - D_t)` the normal toward
/// the manifold gives `normal_toward = a^2` when `a > 0` and `normal_away = a^2` when `a < 0`;
/// the rest is normal energy in the directions that neither approach nor leave the manifold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    /// `cos(u, P(D_t) - D_t)`: 1 straight onto the manifold, -1 straight off it.
    pub toward_manifold: f64,
    pub tangential: f64,
    pub normal_toward: f64,
    pub normal_away: f64,
}

impl Split {
    pub const NAN: Split = Split { toward_manifold: f64::NAN, tangential: f64::NAN, normal_toward: f64::NAN, normal_away: f64::NAN };

    /// The split of `u` at `foot` of `d_t`. Without a distance to the manifold (`D_t` on it), the
    /// normal parts are undefined (NaN) and only the tangential energy is kept.
    pub fn of(u: &[f32], d_t: &[f32], foot: &Foot) -> Split {
        let norm2 = dot(u, u);
        if norm2 == 0.0 {
            return Split::NAN;
        }
        let tangential = 1.0 - normal_energy(&foot.basis, u);
        let to_manifold: Vec<f32> = foot.point.iter().zip(d_t).map(|(p, d)| p - d).collect();
        let a = cosine(u, &to_manifold);
        let (normal_toward, normal_away) = if a.is_nan() { (f64::NAN, f64::NAN) } else { ((a.max(0.0)).powi(2), (a.min(0.0)).powi(2)) };
        Split { toward_manifold: a, tangential, normal_toward, normal_away }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = dot(&v, &v).sqrt() as f32;
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn on_the_disks_a_step_toward_the_rendered_nearest_disk_has_toward_manifold_one() {
        let cfg = DisksConfig::default();
        let p = DiskParams { cx: 8.2, cy: 7.6, radius: 3.4 };
        let clean = disks::render(&cfg, &p);
        // D_t: the disk plus a perturbation normal to the manifold (so its nearest disk is p)
        let basis = disks::tangent_basis(&cfg, &p);
        let mut bump: Vec<f32> = (0..clean.len()).map(|i| ((i * 37) % 11) as f32 / 11.0 - 0.5).collect();
        let along = disks::project(&basis, &bump);
        bump.iter_mut().zip(&along).for_each(|(b, a)| *b -= a);
        let d_t: Vec<f32> = clean.iter().zip(&bump).map(|(c, b)| c + 0.05 * b).collect();
        let foot = Manifold::Disks(cfg.clone()).foot(0, &d_t, &[]).unwrap();
        let back = foot.point.iter().zip(&clean).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(back < 2e-3, "the nearest disk is the one perturbed: max pixel error {back}");
        let toward = unit(foot.point.iter().zip(&d_t).map(|(p, d)| p - d).collect());
        let s = Split::of(&toward, &d_t, &foot);
        assert!((s.toward_manifold - 1.0).abs() < 1e-6);
        assert!((s.normal_toward - 1.0).abs() < 1e-5 && s.normal_away == 0.0 && s.tangential < 1e-5, "{s:?}");
        let away: Vec<f32> = toward.iter().map(|v| -v).collect();
        let s = Split::of(&away, &d_t, &foot);
        assert!((s.toward_manifold + 1.0).abs() < 1e-6 && (s.normal_away - 1.0).abs() < 1e-5);
    }

    #[test]
    fn in_a_local_plane_the_split_follows_the_construction() {
        // plane through origin o spanned by e0, e1 in R^6; D_t = o + 2 e0 + 3 e5
        let e = |k: usize| (0..6).map(|i| if i == k { 1.0f32 } else { 0.0 }).collect::<Vec<f32>>();
        let o: Vec<f32> = vec![0.1, -0.2, 0.3, 0.0, 0.5, 0.2];
        let basis = vec![e(0), e(1)];
        let d_t: Vec<f32> = o
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v + if i == 0 {
                    2.0
                } else if i == 5 {
                    3.0
                } else {
                    0.0
                }
            })
            .collect();
        let foot = Manifold::Planes(vec![o.clone()]).foot(0, &d_t, &basis).unwrap();
        let expected: Vec<f32> = o.iter().enumerate().map(|(i, v)| v + if i == 0 { 2.0 } else { 0.0 }).collect();
        assert!(foot.point.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-6));
        // u = 0.6 e1 - 0.8 e5: tangential 0.36, toward the plane (-e5) with cosine 0.8
        let u: Vec<f32> = (0..6)
            .map(|i| {
                if i == 1 {
                    0.6
                } else if i == 5 {
                    -0.8
                } else {
                    0.0
                }
            })
            .collect();
        let s = Split::of(&u, &d_t, &foot);
        assert!((s.tangential - 0.36).abs() < 1e-6 && (s.toward_manifold - 0.8).abs() < 1e-6);
        assert!((s.normal_toward - 0.64).abs() < 1e-6 && s.normal_away == 0.0);
        // a direction inside the plane: rho 0, no normal part
        let inside = unit(vec![0.3, -0.4, 0.0, 0.0, 0.0, 0.0]);
        assert!(normal_energy(&basis, &inside).abs() < 1e-7);
        let s = Split::of(&inside, &d_t, &foot);
        assert!((s.tangential - 1.0).abs() < 1e-7 && s.toward_manifold.abs() < 1e-7);
        // D_t on the plane: the normal parts are undefined, the tangential one is not
        let s = Split::of(&inside, &expected, &foot);
        assert!(s.toward_manifold.is_nan() && (s.tangential - 1.0).abs() < 1e-7);
    }
}
