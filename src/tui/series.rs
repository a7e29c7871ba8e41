//! Histories of scalars (raw + smoothed) and their decimation for display: a 100k-point history
//! is reduced to about two points per screen column (min and max of each bucket), so drawing
//! cost depends on the panel's width, not on the length of the run.

/// One scalar over a run: x as step, kimg and wall time, the raw value and a debiased EMA of it.
#[derive(Clone, Debug)]
pub struct History {
    pub step: Vec<f64>,
    pub kimg: Vec<f64>,
    /// Seconds of training at each point (NaN where unknown).
    pub wall: Vec<f64>,
    pub raw: Vec<f64>,
    pub smooth: Vec<f64>,
    /// Smoothing factor of the EMA (0: none).
    alpha: f64,
    ema: f64,
    weight: f64,
}

impl Default for History {
    fn default() -> History {
        History { step: vec![], kimg: vec![], wall: vec![], raw: vec![], smooth: vec![], alpha: SMOOTHING, ema: 0.0, weight: 0.0 }
    }
}

/// Default smoothing factor of the EMA (TensorBoard-style, debiased).
pub const SMOOTHING: f64 = 0.95;

/// The smoothing strengths `[` and `]` step through.
pub const SMOOTHING_STEPS: [f64; 8] = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995];

impl History {
    pub fn push(&mut self, step: f64, kimg: f64, wall: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        if let Some(&last) = self.step.last() {
            if step < last {
                return; // out of order (e.g. a resumed log): keep x monotone
            }
        }
        self.step.push(step);
        self.kimg.push(kimg);
        self.wall.push(wall);
        self.raw.push(value);
        let s = self.next_smooth(value);
        self.smooth.push(s);
    }

    fn next_smooth(&mut self, value: f64) -> f64 {
        self.ema = self.alpha * self.ema + (1.0 - self.alpha) * value;
        self.weight = self.alpha * self.weight + (1.0 - self.alpha);
        self.ema / self.weight
    }

    /// Re-smooths the whole history with factor `alpha` (0 = the raw values).
    pub fn set_smoothing(&mut self, alpha: f64) {
        if alpha == self.alpha && self.smooth.len() == self.raw.len() {
            return;
        }
        self.alpha = alpha.clamp(0.0, 0.9999);
        (self.ema, self.weight) = (0.0, 0.0);
        let raw = std::mem::take(&mut self.raw);
        self.smooth = raw.iter().map(|&v| self.next_smooth(v)).collect();
        self.raw = raw;
    }

    /// Wall time at `step`: the last point at or before it (NaN before the first).
    pub fn wall_at(&self, step: f64) -> f64 {
        match self.step.partition_point(|&s| s <= step) {
            0 => f64::NAN,
            i => self.wall[i - 1],
        }
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn last(&self) -> Option<f64> {
        self.raw.last().copied()
    }

    pub fn xs(&self, x: XAxis) -> &[f64] {
        match x {
            XAxis::Step => &self.step,
            XAxis::Kimg => &self.kimg,
            XAxis::Wall => &self.wall,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    Step,
    Kimg,
    /// Seconds of training.
    Wall,
}

impl XAxis {
    pub fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Kimg => "kimg",
            XAxis::Wall => "wall s",
        }
    }
    /// Step, then kimg, then wall time.
    pub fn next(self) -> XAxis {
        match self {
            XAxis::Step => XAxis::Kimg,
            XAxis::Kimg => XAxis::Wall,
            XAxis::Wall => XAxis::Step,
        }
    }
}

/// `y` as plotted: `log10(y)` on a log axis (non-positive values dropped).
pub fn plot_y(y: f64, log: bool) -> Option<f64> {
    if !y.is_finite() {
        None
    } else if log {
        (y > 0.0).then(|| y.log10())
    } else {
        Some(y)
    }
}

/// Min-max decimation: at most `2 * buckets` points that keep every spike of the series.
/// `xs` must be non-decreasing. Points whose y does not plot (see [`plot_y`]) are skipped.
pub fn decimate(xs: &[f64], ys: &[f64], buckets: usize, log: bool) -> Vec<(f64, f64)> {
    let n = xs.len().min(ys.len());
    let buckets = buckets.max(1);
    if n <= 2 * buckets {
        return (0..n).filter_map(|i| plot_y(ys[i], log).map(|y| (xs[i], y))).collect();
    }
    let mut out = Vec::with_capacity(2 * buckets);
    for b in 0..buckets {
        let (lo, hi) = (b * n / buckets, (b + 1) * n / buckets);
        let mut min: Option<(usize, f64)> = None;
        let mut max: Option<(usize, f64)> = None;
        for (i, &y) in ys.iter().enumerate().take(hi).skip(lo) {
            let Some(y) = plot_y(y, log) else { continue };
            if min.is_none_or(|(_, m)| y < m) {
                min = Some((i, y));
            }
            if max.is_none_or(|(_, m)| y > m) {
                max = Some((i, y));
            }
        }
        match (min, max) {
            (Some(a), Some(b)) if a.0 == b.0 => out.push((xs[a.0], a.1)),
            (Some(a), Some(b)) => {
                let (first, second) = if a.0 < b.0 { (a, b) } else { (b, a) };
                out.push((xs[first.0], first.1));
                out.push((xs[second.0], second.1));
            }
            _ => {}
        }
    }
    out
}

/// `[min, max]` of the points' x and y, padded so a flat line still has a range.
pub fn bounds(series: &[&[(f64, f64)]]) -> Option<([f64; 2], [f64; 2])> {
    let mut xb = [f64::INFINITY, f64::NEG_INFINITY];
    let mut yb = [f64::INFINITY, f64::NEG_INFINITY];
    for s in series {
        for &(x, y) in s.iter() {
            xb = [xb[0].min(x), xb[1].max(x)];
            yb = [yb[0].min(y), yb[1].max(y)];
        }
    }
    if !xb[0].is_finite() {
        return None;
    }
    if xb[1] <= xb[0] {
        xb[1] = xb[0] + 1.0;
    }
    let pad = ((yb[1] - yb[0]) * 0.05).max(1e-12 + yb[1].abs() * 1e-3);
    Some((xb, [yb[0] - pad, yb[1] + pad]))
}

/// A compact number for axis labels and the status line.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Seconds as `1h02m`, `3m20s` or `12s`.
pub fn fmt_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "--".into();
    }
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_debiased_and_skips_non_finite() {
        let mut h = History::default();
        h.push(1.0, 0.1, 5.0, 2.0);
        assert!((h.smooth[0] - 2.0).abs() < 1e-12, "first smoothed value equals the first raw value");
        h.push(2.0, 0.2, 6.0, f64::NAN);
        h.push(3.0, 0.3, 7.0, 4.0);
        assert_eq!(h.len(), 2);
        assert!(h.smooth[1] > 2.0 && h.smooth[1] < 4.0);
        h.push(2.5, 0.25, 6.5, 1.0); // out of order: dropped
        assert_eq!(h.len(), 2);
        assert_eq!((h.wall_at(0.5).is_nan(), h.wall_at(2.0), h.wall_at(9.0)), (true, 5.0, 7.0));
    }

    #[test]
    fn smoothing_strength_can_be_changed_after_the_fact() {
        let mut h = History::default();
        for (i, v) in [1.0, 5.0, 1.0, 5.0].iter().enumerate() {
            h.push(i as f64, 0.0, 0.0, *v);
        }
        let default_smooth = h.smooth.clone();
        h.set_smoothing(0.0);
        assert_eq!(h.smooth, h.raw, "strength 0 shows the raw values");
        h.set_smoothing(0.5);
        // debiased EMA with alpha 0.5: (0.5*1 + 0.5*... ) worked by hand for the second point
        let second = (0.5 * 0.5 * 1.0 + 0.5 * 5.0) / (0.5 * 0.5 + 0.5);
        assert!((h.smooth[1] - second).abs() < 1e-12, "{} vs {second}", h.smooth[1]);
        h.set_smoothing(SMOOTHING);
        assert_eq!(h.smooth, default_smooth);
        h.push(4.0, 0.0, 0.0, 1.0);
        assert_eq!(h.smooth.len(), 5, "later points use the new strength too");
    }

    #[test]
    fn decimation_keeps_extremes_and_bounds_size() {
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut ys: Vec<f64> = (0..n).map(|i| (i as f64 * 0.01).sin()).collect();
        ys[54_321] = 10.0;
        ys[77_777] = -10.0;
        let d = decimate(&xs, &ys, 100, false);
        assert!(d.len() <= 200);
        assert!(d.iter().any(|&(x, y)| x == 54_321.0 && y == 10.0));
        assert!(d.iter().any(|&(x, y)| x == 77_777.0 && y == -10.0));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0), "x stays ordered");
        // Short series pass through; log drops non-positive values.
        assert_eq!(decimate(&[1.0, 2.0, 3.0], &[1.0, -1.0, 100.0], 10, true), vec![(1.0, 0.0), (3.0, 2.0)]);
    }

    #[test]
    fn bounds_and_formatting() {
        let pts = [(0.0, 1.0), (10.0, 1.0)];
        let (x, y) = bounds(&[&pts]).unwrap();
        assert_eq!(x, [0.0, 10.0]);
        assert!(y[0] < 1.0 && y[1] > 1.0);
        assert!(bounds(&[&[]]).is_none());
        assert_eq!(fmt_duration(3725.0), "1h02m");
        assert_eq!(fmt_duration(200.0), "3m20s");
        assert_eq!(fmt_num(0.012345), "0.0123");
        assert_eq!(fmt_num(250000.0), "2.5e5");
    }
}
