//! 95% intervals for means: a percentile bootstrap for per-sample probe metrics (many samples,
//! skewed, bounded), and Student's t for a handful of independent runs (seeds, FD repeats), where
//! a bootstrap of two or three values means nothing.

use rand::Rng;

/// Bootstrap resamples: the 2.5% and 97.5% percentiles move by well under 1% of the interval
/// between seeds at this count.
pub const RESAMPLES: usize = 2000;

/// A mean with its 95% interval `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// Whether `[lo, hi]` contains `v`.
    pub fn covers(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// `mean [lo, hi]` with `digits` decimals.
    pub fn text(&self, digits: usize) -> String {
        if !self.mean.is_finite() {
            return "n/a".into();
        }
        if !(self.lo.is_finite() && self.hi.is_finite()) {
            return format!("{:.digits$}", self.mean);
        }
        format!("{:.digits$} [{:.digits$}, {:.digits$}]", self.mean, self.lo, self.hi)
    }
}

fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Percentile-bootstrap 95% interval of the mean of the finite `values`. Deterministic: the
/// resampling stream depends only on `seed`. `None` for no finite value; a single value gives a
/// zero-width interval.
pub fn bootstrap_mean(values: &[f64], seed: u64) -> Option<Interval> {
    let v = finite(values);
    if v.is_empty() {
        return None;
    }
    let m = mean(&v);
    let mut rng = crate::rng::stream(seed, "bootstrap");
    let n = v.len();
    let mut means: Vec<f64> = (0..RESAMPLES).map(|_| (0..n).map(|_| v[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |p: f64| means[((p * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    Some(Interval { mean: m, lo: at(0.025), hi: at(0.975) })
}

/// Two-sided 95% quantile of Student's t with `df` degrees of freedom (`t_{0.975, df}`), from the
/// standard table; beyond 30, the Cornish-Fisher expansion around the normal quantile (error
/// below 1e-4 there).
pub fn t_quantile_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
        2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let (z, n) = (1.959_964_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * n) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// Sample standard deviation (n - 1) of the finite values; NaN for fewer than two.
pub fn std_dev(values: &[f64]) -> f64 {
    let v = finite(values);
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(&v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Student-t 95% interval of the mean of independent values (runs with different seeds). One
/// value gives its mean with an unbounded (NaN) interval.
pub fn t_mean(values: &[f64]) -> Option<Interval> {
    let v = finite(values);
    if v.is_empty() {
        return None;
    }
    let m = mean(&v);
    if v.len() < 2 {
        return Some(Interval { mean: m, lo: f64::NAN, hi: f64::NAN });
    }
    let half = t_quantile_975(v.len() - 1) * std_dev(&v) / (v.len() as f64).sqrt();
    Some(Interval { mean: m, lo: m - half, hi: m + half })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fraction of `trials` synthetic data sets (n draws each) whose interval covers the true mean.
    fn coverage(
        trials: u64,
        n: usize,
        interval: impl Fn(&[f64], u64) -> Interval,
        draw: impl Fn(&mut rand_chacha::ChaCha8Rng) -> f64,
        truth: f64,
    ) -> f64 {
        let hits = (0..trials)
            .filter(|&i| {
                let mut rng = crate::rng::substream(11, "coverage", i);
                let v: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
                interval(&v, i).covers(truth)
            })
            .count();
        hits as f64 / trials as f64
    }

    #[test]
    fn bootstrap_interval_covers_a_known_mean_at_about_the_nominal_rate() {
        // Skewed data like a rho histogram: Beta-ish via u^3 on [0, 1], mean 1/4.
        let cov = coverage(400, 64, |v, s| bootstrap_mean(v, s).unwrap(), |r| r.random::<f64>().powi(3), 0.25);
        assert!((0.90..=0.985).contains(&cov), "bootstrap coverage {cov}");
        // The interval shrinks like 1/sqrt(n).
        let mut rng = crate::rng::stream(3, "shrink");
        let big: Vec<f64> = (0..1024).map(|_| rng.random::<f64>()).collect();
        let w = |v: &[f64]| bootstrap_mean(v, 0).map(|i| i.hi - i.lo).unwrap();
        let ratio = w(&big[..64]) / w(&big);
        assert!((3.0..5.5).contains(&ratio), "width ratio for 16x the samples: {ratio}");
    }

    #[test]
    fn t_interval_covers_a_known_mean_at_the_nominal_rate_even_for_two_runs() {
        use rand_distr::{Distribution, Normal};
        let normal = Normal::new(3.0, 2.0).unwrap();
        for n in [2usize, 3, 8] {
            let cov = coverage(2000, n, |v, _| t_mean(v).unwrap(), |r| normal.sample(r), 3.0);
            assert!((0.93..=0.97).contains(&cov), "t coverage at n = {n}: {cov}");
        }
    }

    #[test]
    fn t_quantiles_match_the_table_and_the_normal_limit() {
        assert_eq!(t_quantile_975(1), 12.706);
        assert!((t_quantile_975(31) - 2.0395).abs() < 1e-3);
        assert!((t_quantile_975(120) - 1.9799).abs() < 1e-3);
        assert!((t_quantile_975(100_000) - 1.96).abs() < 1e-3);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(bootstrap_mean(&[f64::NAN], 0).is_none());
        let one = bootstrap_mean(&[0.5, f64::NAN], 0).unwrap();
        assert_eq!((one.mean, one.lo, one.hi), (0.5, 0.5, 0.5));
        let t = t_mean(&[2.0]).unwrap();
        assert!(t.mean == 2.0 && t.lo.is_nan());
        assert_eq!(t.text(2), "2.00");
        assert_eq!(Interval { mean: 1.0, lo: 0.5, hi: 1.5 }.text(1), "1.0 [0.5, 1.5]");
    }
}
