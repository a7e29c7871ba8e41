//! Chance level of every probe metric: what an isotropic random unit direction scores in the same
//! space. It is measured (random directions go through the same metric code as the losses' as the
//! pseudo-loss "chance") and known in closed form; the tests check that the two agree.

use rand_chacha::ChaCha8Rng;

/// The pseudo-loss name of the random directions.
pub const CHANCE: &str = "chance";

/// `n` isotropic random unit vectors of length `d` (normalised Gaussians).
pub fn random_directions(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let v = crate::rng::normal_vec(rng, d);
            let norm = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt().max(1e-30) as f32;
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// The expectation of `metric` for an isotropic random unit direction in `d` dimensions, with a
/// tangent space of dimension `m` at the probe image (`rho`, `excess`) and `m_foot` at the
/// manifold point nearest `D_t` (`tangential`). For u uniform on the sphere, `E[<u, e>^2] = 1/d`
/// for any fixed unit e, and `<u, e>` is symmetric, so:
/// cosines with anything fixed (toward, toward_manifold) and with an independent random direction
/// (oscillation) have mean 0; `rho = 1 - m/d`; `excess = (1 - rho) / (m/d) = 1`; the tangential
/// energy is `m_foot/d`; the energy along the normal toward the manifold is `1/d`, half of it on
/// each side (`normal_toward = normal_away = 1/(2d)`).
pub fn expected(metric: &str, d: usize, m: usize, m_foot: usize) -> Option<f64> {
    let d = d as f64;
    Some(match metric {
        "toward" | "toward_manifold" | "oscillation" => 0.0,
        "rho" => 1.0 - m as f64 / d,
        "excess" => 1.0,
        "tangential" => m_foot as f64 / d,
        "normal_toward" | "normal_away" => 0.5 / d,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_directions_are_unit_and_independent() {
        let mut rng = crate::rng::stream(5, "chance-test");
        let u = random_directions(&mut rng, 200, 784);
        assert!(u.iter().all(|v| (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() - 1.0).abs() < 1e-5));
        // |cos| between independent directions ~ 1/sqrt(d): the mean of 199 of them is near 0
        let mean: f64 = u.windows(2).map(|w| super::super::geometry::dot(&w[0], &w[1])).sum::<f64>() / 199.0;
        assert!(mean.abs() < 4.0 / (784f64 * 199.0).sqrt(), "mean cosine {mean}");
        assert_eq!(expected("rho", 784, 8, 8), Some(1.0 - 8.0 / 784.0));
        assert_eq!(expected("nonsense", 784, 8, 8), None);
    }
}
