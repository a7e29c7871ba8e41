//! Noise-level schedules: EDM's log-normal `t`, ECT's `t -> r` mapping and stages (method.md 3-4).

use rand::Rng;
use rand_distr::StandardNormal;

use crate::config::EctConfig;

/// `exp(N(p_mean, p_std))`.
pub fn lognormal(rng: &mut impl Rng, p_mean: f64, p_std: f64) -> f64 {
    let n: f64 = rng.sample(StandardNormal);
    (p_mean + p_std * n).exp()
}

/// `s = floor(iteration / (n_iter / n_stages))`, kept below `n_stages`.
pub fn ect_stage(iteration: u64, n_iter: u64, n_stages: u64) -> u64 {
    let per_stage = n_iter as f64 / n_stages as f64;
    ((iteration as f64 / per_stage).floor() as u64).min(n_stages.saturating_sub(1))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `r = max(0, t * (1 - q^-(s+1) * (1 + k * sigmoid(-b t))))`.
pub fn ect_r(t: f64, stage: u64, cfg: &EctConfig) -> f64 {
    let ratio = 1.0 - cfg.q.powf(-((stage + 1) as f64)) * (1.0 + cfg.k * sigmoid(-cfg.b * t));
    (t * ratio).max(0.0)
}

/// EDM loss weight `lambda(t) = (t^2 + sd^2) / (t sd)^2`.
pub fn edm_weight(t: f64, sigma_data: f64) -> f64 {
    (t * t + sigma_data * sigma_data) / (t * sigma_data).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(q: f64) -> EctConfig {
        EctConfig { q, ..EctConfig::default() }
    }

    #[test]
    fn t_to_r_matches_hand_computed_values() {
        // t = 10, s = 3, q = 2: 1 - 2^-4 (1 + 8 sigmoid(-10)) = 0.937477302...
        let s10 = 1.0 / (1.0 + 10f64.exp());
        let expect = 10.0 * (1.0 - 0.0625 * (1.0 + 8.0 * s10));
        assert!((ect_r(10.0, 3, &cfg(2.0)) - expect).abs() < 1e-12);
        assert!((expect - 9.374773).abs() < 1e-6);
        // t = 1, q = 256, s = 0: r = 1 - (1 + 8 * 0.2689414) / 256 = 0.98768934
        assert!((ect_r(1.0, 0, &cfg(256.0)) - 0.987_689_3).abs() < 1e-6);
        // q = 2, stage 0, t = 1: the ratio is negative, so r = 0 (plain denoising).
        assert_eq!(ect_r(1.0, 0, &cfg(2.0)), 0.0);
        // the gap shrinks with the stage and r < t always
        let g: Vec<f64> = (0..8).map(|s| 5.0 - ect_r(5.0, s, &cfg(2.0))).collect();
        assert!(g.windows(2).all(|w| w[1] < w[0]) && g.iter().all(|x| *x > 0.0));
    }

    #[test]
    fn stages_split_the_iterations_evenly() {
        assert_eq!(ect_stage(0, 800, 8), 0);
        assert_eq!(ect_stage(99, 800, 8), 0);
        assert_eq!(ect_stage(100, 800, 8), 1);
        assert_eq!(ect_stage(799, 800, 8), 7);
        assert_eq!(ect_stage(5000, 800, 8), 7);
        assert_eq!(ect_stage(12345, 1000, 1), 0);
    }

    #[test]
    fn edm_weight_value() {
        // t = 0.5, sd = 0.5: 0.5 / 0.0625 = 8
        assert!((edm_weight(0.5, 0.5) - 8.0).abs() < 1e-12);
    }

    #[test]
    fn lognormal_has_the_requested_log_moments() {
        let mut rng = crate::rng::stream(1, "t");
        let logs: Vec<f64> = (0..20000).map(|_| lognormal(&mut rng, -1.1, 2.0).ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let std = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
        assert!((mean + 1.1).abs() < 0.05 && (std - 2.0).abs() < 0.05, "mean {mean} std {std}");
    }
}
