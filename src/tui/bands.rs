//! Sweep members drawn per setting: runs that differ only in their seed are one curve, the mean
//! of their smoothed losses with a min-max band, on a shared grid of x buckets (so members logged
//! at different steps still line up).

use super::app::RunData;
use super::series::{plot_y, XAxis};

/// One setting's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// The setting (`batch_size=8 loss=mfd`), or the run's name for a run without swept values.
    pub label: String,
    /// Runs pooled.
    pub runs: usize,
    /// `(x, mean)` at each bucket any member reaches, with the members' min and max there.
    pub mean: Vec<(f64, f64)>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

impl Band {
    /// The band as one zig-zag line through (x, lo) and (x, hi) at every bucket: drawn as a
    /// line it fills the band.
    pub fn fill(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(2 * self.mean.len());
        for (i, (&(x, _), (&lo, &hi))) in self.mean.iter().zip(self.lo.iter().zip(&self.hi)).enumerate() {
            let (a, b) = if i % 2 == 0 { (lo, hi) } else { (hi, lo) };
            out.push((x, a));
            out.push((x, b));
        }
        out
    }
}

/// The settings of runs `shown` (in first-seen order), their smoothed losses bucketed into
/// `buckets` equal x intervals; `log` plots log10 of the loss.
pub fn bands(runs: &[RunData], shown: &[usize], x: XAxis, buckets: usize, log: bool) -> Vec<Band> {
    let mut groups: Vec<(String, Vec<&RunData>)> = Vec::new();
    for &i in shown {
        let run = &runs[i];
        let key = run.group().unwrap_or_else(|| run.name.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups.into_iter().filter_map(|(label, members)| band(label, &members, x, buckets.max(1), log)).collect()
}

fn band(label: String, members: &[&RunData], x: XAxis, buckets: usize, log: bool) -> Option<Band> {
    let finite = |r: &&RunData| r.loss.xs(x).iter().copied().filter(|v| v.is_finite()).collect::<Vec<f64>>();
    let xs: Vec<Vec<f64>> = members.iter().map(finite).collect();
    let lo_x = xs.iter().filter_map(|v| v.first().copied()).min_by(f64::total_cmp)?;
    let hi_x = xs.iter().filter_map(|v| v.last().copied()).max_by(f64::total_cmp)?;
    let width = (hi_x - lo_x) / buckets as f64;
    let bucket_of = |v: f64| if width > 0.0 { (((v - lo_x) / width) as usize).min(buckets - 1) } else { 0 };
    // Per member, the mean of its plotted values in each bucket.
    let per_member: Vec<Vec<Option<f64>>> = members
        .iter()
        .map(|r| {
            let mut sum = vec![(0.0, 0usize); buckets];
            for (&xv, &y) in r.loss.xs(x).iter().zip(&r.loss.smooth) {
                if let (true, Some(y)) = (xv.is_finite(), plot_y(y, log)) {
                    let b = &mut sum[bucket_of(xv)];
                    *b = (b.0 + y, b.1 + 1);
                }
            }
            sum.into_iter().map(|(s, n)| (n > 0).then(|| s / n as f64)).collect()
        })
        .collect();
    let (mut mean, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..buckets {
        let vals: Vec<f64> = per_member.iter().filter_map(|m| m[b]).collect();
        if vals.is_empty() {
            continue;
        }
        let centre = if width > 0.0 { lo_x + (b as f64 + 0.5) * width } else { lo_x };
        mean.push((centre, vals.iter().sum::<f64>() / vals.len() as f64));
        lo.push(vals.iter().copied().fold(f64::INFINITY, f64::min));
        hi.push(vals.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    }
    Some(Band { label, runs: members.len(), mean, lo, hi })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::RunState;

    fn member(loss: &str, seed: u32, level: f64) -> RunData {
        let mut r = RunData::new(format!("{loss}-s{seed}"), None, RunState::Viewing);
        r.swept = vec![("train.loss".into(), loss.into()), ("seed".into(), seed.to_string())];
        r.loss.set_smoothing(0.0);
        for s in 0..100 {
            r.loss.push(s as f64, s as f64 * 0.01, s as f64, level);
        }
        r
    }

    #[test]
    fn seeds_of_a_setting_become_one_mean_with_a_min_max_band() {
        let runs = vec![member("l2", 0, 1.0), member("mfd", 0, 5.0), member("l2", 1, 3.0), member("mfd", 1, 5.0)];
        let b = bands(&runs, &[0, 1, 2, 3], XAxis::Step, 10, false);
        assert_eq!(b.iter().map(|b| (b.label.as_str(), b.runs)).collect::<Vec<_>>(), [("loss=l2", 2), ("loss=mfd", 2)]);
        assert_eq!(b[0].mean.len(), 10);
        assert!(b[0].mean.iter().all(|p| p.1 == 2.0), "mean of 1 and 3");
        assert!(b[0].lo.iter().all(|&v| v == 1.0) && b[0].hi.iter().all(|&v| v == 3.0));
        assert!(b[1].lo.iter().zip(&b[1].hi).all(|(l, h)| l == h), "equal seeds: no band");
        assert_eq!((b[0].mean[0].0, b[0].mean[9].0), (4.95, 94.05), "bucket centres over 0..99");
        // The fill zig-zags between the edges at each bucket.
        let fill: Vec<(f64, f64)> = b[0].fill()[..4].iter().map(|&(x, y)| ((x * 100.0).round() / 100.0, y)).collect();
        assert_eq!(fill, [(4.95, 1.0), (4.95, 3.0), (14.85, 3.0), (14.85, 1.0)]);
        // Log-y plots log10; a filtered-out member is not pooled.
        let b = bands(&runs, &[0], XAxis::Kimg, 10, true);
        assert_eq!((b.len(), b[0].runs, b[0].mean[0].1), (1, 1, 0.0));
    }

    #[test]
    fn members_of_different_lengths_pool_where_they_overlap() {
        let mut short = member("l2", 1, 3.0);
        short.loss = Default::default();
        short.loss.set_smoothing(0.0);
        for s in 0..50 {
            short.loss.push(s as f64, 0.0, 0.0, 3.0);
        }
        let runs = vec![member("l2", 0, 1.0), short];
        let b = &bands(&runs, &[0, 1], XAxis::Step, 10, false)[0];
        assert_eq!(b.mean[0].1, 2.0);
        assert_eq!(b.mean[9].1, 1.0, "past the short member's end only the long one remains");
        assert!(bands(&[RunData::new("empty", None, RunState::Viewing)], &[0], XAxis::Step, 10, false).is_empty());
    }
}
