//! Fixed-edge histograms and summary statistics of per-sample metrics.

use serde::Serialize;

/// A histogram with uniform bins on `[lo, hi]` (values outside are clamped into the end bins).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<i64>,
}

impl Histogram {
    pub fn new(values: &[f64], lo: f64, hi: f64, bins: usize) -> Histogram {
        let edges: Vec<f64> = (0..=bins).map(|i| lo + (hi - lo) * i as f64 / bins as f64).collect();
        let mut counts = vec![0i64; bins];
        for &v in values.iter().filter(|v| v.is_finite()) {
            let i = (((v - lo) / (hi - lo)) * bins as f64).floor();
            counts[(i.max(0.0) as usize).min(bins - 1)] += 1;
        }
        Histogram { edges, counts }
    }
}

/// Mean with its bootstrap 95% interval, median and quartiles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub lo95: f64,
    pub hi95: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            let pos = p * (v.len() - 1) as f64;
            let (i, frac) = (pos.floor() as usize, pos.fract());
            v[i] + (v[(i + 1).min(v.len() - 1)] - v[i]) * frac
        };
        let ci = super::intervals::bootstrap_mean(&v, 0);
        let (mean, lo95, hi95) = ci.map_or((f64::NAN, f64::NAN, f64::NAN), |c| (c.mean, c.lo, c.hi));
        Summary { n: v.len(), mean, lo95, hi95, q1: q(0.25), median: q(0.5), q3: q(0.75) }
    }

    /// The mean and its 95% interval.
    pub fn interval(&self) -> super::intervals::Interval {
        super::intervals::Interval { mean: self.mean, lo: self.lo95, hi: self.hi95 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_clamping() {
        let h = Histogram::new(&[-1.0, -0.5, 0.0, 0.99, 1.0, 5.0, f64::NAN], -1.0, 1.0, 4);
        assert_eq!(h.edges, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(h.counts, vec![1, 1, 1, 3]);
    }

    #[test]
    fn quartiles_interpolate() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!((s.n, s.mean, s.q1, s.median, s.q3), (5, 3.0, 2.0, 3.0, 4.0));
        assert!(s.lo95 < 3.0 && s.hi95 > 3.0 && s.lo95 >= 1.0 && s.hi95 <= 5.0, "{s:?}");
        let s = Summary::of(&[1.0, 2.0]);
        assert_eq!(s.median, 1.5);
    }
}
