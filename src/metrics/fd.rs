//! Frechet distance between Gaussian fits of two feature sets (method.md 8):
//! `||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`, in f64.
//!
//! `tr((S1 S2)^(1/2))` is computed as the sum of square roots of the eigenvalues of the symmetric
//! PSD matrix `S1^(1/2) S2 S1^(1/2)` (same spectrum as `S1 S2`), via symmetric eigendecompositions:
//! no general matrix square root, no complex parts to discard.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::{Error, Result};

/// Mean and covariance (unbiased, `n - 1`) of `n` feature rows of dimension `d`.
#[derive(Clone, Debug)]
pub struct Gaussian {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
    pub n: usize,
}

impl Gaussian {
    /// Fits rows of `features` (row-major `[n, d]`).
    pub fn fit(features: &[f32], d: usize) -> Result<Gaussian> {
        if d == 0 || !features.len().is_multiple_of(d) {
            return Err(Error::msg(format!("FD: {} values do not split into rows of {d}", features.len())));
        }
        let n = features.len() / d;
        if n < 2 {
            return Err(Error::msg(format!("FD: need at least 2 samples, got {n}")));
        }
        let x = DMatrix::from_row_iterator(n, d, features.iter().map(|&v| v as f64));
        let mean = DVector::from_iterator(d, (0..d).map(|j| x.column(j).sum() / n as f64));
        let mut centered = x;
        for j in 0..d {
            let m = mean[j];
            centered.column_mut(j).add_scalar_mut(-m);
        }
        let cov = (centered.transpose() * &centered) / (n as f64 - 1.0);
        Ok(Gaussian { mean, cov, n })
    }
}

/// Square root of a symmetric PSD matrix (negative eigenvalues from round-off clamp to 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let roots = eig.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// A Gaussian as the fixed side of many Frechet distances (FID's reference statistics): the
/// square root of its covariance, the one full eigendecomposition, is computed once.
pub struct FdReference {
    pub gaussian: Gaussian,
    half: DMatrix<f64>,
}

impl FdReference {
    pub fn new(gaussian: Gaussian) -> FdReference {
        let half = sqrt_psd(&gaussian.cov);
        FdReference { gaussian, half }
    }
}

/// The Frechet distance between `r` and `b`: `tr((S1 S2)^(1/2))` from the eigenvalues alone of
/// `S1^(1/2) S2 S1^(1/2)` (no eigenvectors: the costly part at d = 2048 is done once, in `r`).
pub fn frechet_distance_to(r: &FdReference, b: &Gaussian) -> Result<f64> {
    let a = &r.gaussian;
    if a.mean.len() != b.mean.len() {
        return Err(Error::msg(format!("FD: feature dimensions differ ({} vs {})", a.mean.len(), b.mean.len())));
    }
    let diff = (&a.mean - &b.mean).norm_squared();
    let inner = &r.half * &b.cov * &r.half;
    let sym = (&inner + inner.transpose()) * 0.5;
    let tr_sqrt: f64 = sym.symmetric_eigenvalues().iter().map(|v| v.max(0.0).sqrt()).sum();
    Ok(diff + a.cov.trace() + b.cov.trace() - 2.0 * tr_sqrt)
}

/// The Frechet distance between two Gaussians.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    frechet_distance_to(&FdReference::new(a.clone()), b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn gaussian(mean: Vec<f64>, cov: Vec<f64>) -> Gaussian {
        let d = mean.len();
        Gaussian { mean: DVector::from_vec(mean), cov: DMatrix::from_row_slice(d, d, &cov), n: 100 }
    }

    #[test]
    fn matches_the_closed_form_for_diagonal_covariances() {
        // FD = |mu1-mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
        let a = gaussian(vec![0.0, 1.0, 2.0], vec![1.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 9.0]);
        let b = gaussian(vec![1.0, 1.0, 0.0], vec![4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 9.0]);
        let expect = (1.0 + 0.0 + 4.0) + (1.0 + 4.0 - 4.0) + (4.0 + 1.0 - 4.0) + (9.0 + 9.0 - 18.0);
        assert!((frechet_distance(&a, &b).unwrap() - expect).abs() < 1e-10);
    }

    #[test]
    fn matches_the_closed_form_for_commuting_full_covariances() {
        // S2 = 4 S1 (commuting): tr((S1 S2)^(1/2)) = 2 tr(S1), so FD = tr(S1) + 4 tr(S1) - 4 tr(S1)
        let s1 = vec![2.0, 0.5, 0.5, 1.0];
        let s2: Vec<f64> = s1.iter().map(|v| 4.0 * v).collect();
        let a = gaussian(vec![0.0, 0.0], s1);
        let b = gaussian(vec![3.0, 4.0], s2);
        assert!((frechet_distance(&a, &b).unwrap() - (25.0 + 3.0)).abs() < 1e-10);
    }

    /// `sqrtm(A)` by the Denman-Beavers iteration on the general (non-symmetric) matrix: another
    /// route to `tr((S1 S2)^(1/2))` than the symmetric eigendecompositions above, the one
    /// pytorch-fid's `scipy.linalg.sqrtm(S1 @ S2)` takes.
    fn sqrtm_denman_beavers(a: &DMatrix<f64>) -> DMatrix<f64> {
        let (mut y, mut z) = (a.clone(), DMatrix::identity(a.nrows(), a.ncols()));
        for _ in 0..60 {
            let (yi, zi) = (y.clone().try_inverse().unwrap(), z.clone().try_inverse().unwrap());
            (y, z) = ((&y + zi) * 0.5, (&z + yi) * 0.5);
        }
        y
    }

    fn random_cov(d: usize, rng: &mut impl Rng) -> DMatrix<f64> {
        let m = DMatrix::from_fn(d, d, |_, _| rng.random::<f64>() * 2.0 - 1.0);
        &m * m.transpose() + DMatrix::identity(d, d) * 0.1
    }

    #[test]
    fn matches_an_independent_computation_for_non_commuting_covariances() {
        // 2x2 closed form: (sqrt(l1) + sqrt(l2))^2 = tr(M) + 2 sqrt(det M), M = S1 S2
        let (s1, s2): (Vec<f64>, Vec<f64>) = (vec![2.0, 0.9, 0.9, 1.0], vec![1.0, -0.3, -0.3, 3.0]);
        let (m1, m2) = (DMatrix::from_row_slice(2, 2, &s1), DMatrix::from_row_slice(2, 2, &s2));
        assert!((&m1 * &m2 - &m2 * &m1).norm() > 0.5, "the example must not commute");
        let prod = &m1 * &m2;
        let tr_sqrt = (prod.trace() + 2.0 * prod.determinant().sqrt()).sqrt();
        let expect = 2.0 + (3.0 + 4.0 - 2.0 * tr_sqrt);
        let got = frechet_distance(&gaussian(vec![0.0, 1.0], s1), &gaussian(vec![1.0, 0.0], s2)).unwrap();
        assert!((got - expect).abs() < 1e-12, "{got} vs {expect}");
        // random full covariances, against sqrtm of the (non-symmetric) product
        let mut rng = crate::rng::stream(3, "fd-independent");
        for d in [3, 8, 16] {
            let (c1, c2) = (random_cov(d, &mut rng), random_cov(d, &mut rng));
            let mu: Vec<f64> = (0..d).map(|_| rng.random::<f64>()).collect();
            let (a, b) = (
                Gaussian { mean: DVector::from_vec(mu), cov: c1.clone(), n: 10 },
                Gaussian { mean: DVector::zeros(d), cov: c2.clone(), n: 10 },
            );
            let expect = a.mean.norm_squared() + c1.trace() + c2.trace() - 2.0 * sqrtm_denman_beavers(&(&c1 * &c2)).trace();
            let got = frechet_distance(&a, &b).unwrap();
            assert!((got - expect).abs() <= 1e-8 * expect.abs(), "d = {d}: {got} vs {expect}");
        }
    }

    #[test]
    fn a_set_against_itself_is_zero_and_a_shift_adds_its_square() {
        let mut rng = crate::rng::stream(0, "fd-test");
        let (n, d) = (500, 6);
        let x: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let g = Gaussian::fit(&x, d).unwrap();
        assert!(frechet_distance(&g, &g).unwrap().abs() < 1e-9);
        let shifted: Vec<f32> = x.iter().map(|v| v + 0.5).collect();
        let h = Gaussian::fit(&shifted, d).unwrap();
        assert!((frechet_distance(&g, &h).unwrap() - 0.25 * d as f64).abs() < 1e-6);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Gaussian::fit(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(Gaussian::fit(&[1.0, 2.0], 2).is_err());
        let a = gaussian(vec![0.0], vec![1.0]);
        let b = gaussian(vec![0.0, 0.0], vec![1.0, 0.0, 0.0, 1.0]);
        assert!(frechet_distance(&a, &b).is_err());
    }
}
