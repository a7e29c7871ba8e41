//! The statistics of `ayt report`: "kimg to target FD" interpolated between evaluations, members
//! grouped over `seed` with Student-t 95% intervals, and paired comparisons between the values of
//! one key (the loss) at equal seeds and equal other settings.

use std::collections::BTreeMap;

use crate::metrics::intervals::{t_mean, Interval};

/// The key whose values are replicates (grouped over, paired on).
pub const SEED_KEY: &str = "seed";

/// The kimg at which `curve` (`(kimg, FD)` in order) first reaches `target` (at or below),
/// linearly interpolated between the evaluation before and the one at or below; the first
/// point when it already starts there; `None` when it never does.
pub fn kimg_to_target(curve: &[(f64, f64)], target: f64) -> Option<f64> {
    let i = curve.iter().position(|p| p.1 <= target)?;
    if i == 0 {
        return Some(curve[0].0);
    }
    let ((k0, f0), (k1, f1)) = (curve[i - 1], curve[i]);
    let frac = if f0 > f1 { (f0 - target) / (f0 - f1) } else { 1.0 };
    Some(k0 + frac.clamp(0.0, 1.0) * (k1 - k0))
}

/// The median of the finite values (`None` when there are none): the default target FD, of
/// `ayt report` and of the summary table in `ayt view`.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

/// One member's result, with its swept values as text.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub values: Vec<(String, String)>,
    pub final_fd: Option<f64>,
    pub to_target: Option<f64>,
}

impl Outcome {
    fn value(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `k=v` of every swept key but `skip`, joined (the group label).
    fn label_without(&self, skip: &[&str]) -> String {
        let parts: Vec<String> = self.values.iter().filter(|(k, _)| !skip.contains(&k.as_str())).map(|(k, v)| format!("{k}={v}")).collect();
        if parts.is_empty() {
            "(all)".into()
        } else {
            parts.join(" ")
        }
    }
}

/// Members that differ only in `seed`.
#[derive(Clone, Debug)]
pub struct Group {
    pub label: String,
    pub seeds: usize,
    pub final_fd: Option<Interval>,
    /// Over the members that reached the target.
    pub to_target: Option<Interval>,
    pub reached: usize,
}

/// The groups of `outcomes` in first-appearance order.
pub fn groups(outcomes: &[Outcome]) -> Vec<Group> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        let label = o.label_without(&[SEED_KEY]);
        if !by.contains_key(&label) {
            order.push(label.clone());
        }
        by.entry(label).or_default().push(o);
    }
    order
        .into_iter()
        .map(|label| {
            let members = &by[&label];
            let finals: Vec<f64> = members.iter().filter_map(|o| o.final_fd).collect();
            let reached: Vec<f64> = members.iter().filter_map(|o| o.to_target).collect();
            Group { seeds: members.len(), final_fd: t_mean(&finals), to_target: t_mean(&reached), reached: reached.len(), label }
        })
        .collect()
}

/// `b` against `a` (two values of the compared key) in one setting of the other keys, paired by seed.
#[derive(Clone, Debug)]
pub struct Paired {
    pub setting: String,
    pub a: String,
    pub b: String,
    /// Seeds with a final FD for both.
    pub pairs: usize,
    /// `FD(b) - FD(a)` per seed: mean and interval (negative: b is better).
    pub final_fd_diff: Option<Interval>,
    /// Seeds where b's final FD is lower.
    pub b_lower: usize,
    /// `kimg(b) / kimg(a)` to the target, over seeds where both reached it.
    pub to_target_ratio: Option<Interval>,
}

/// Every pair of values of `key`, per setting of the other keys (except seed), paired by seed.
pub fn paired(outcomes: &[Outcome], key: &str) -> Vec<Paired> {
    // setting -> value of key -> seed -> outcome
    let mut table: BTreeMap<String, BTreeMap<String, BTreeMap<String, &Outcome>>> = BTreeMap::new();
    let mut values: Vec<String> = Vec::new();
    for o in outcomes {
        let Some(v) = o.value(key) else { continue };
        if !values.iter().any(|x| x == v) {
            values.push(v.to_string());
        }
        let seed = o.value(SEED_KEY).unwrap_or("").to_string();
        table.entry(o.label_without(&[key, SEED_KEY])).or_default().entry(v.to_string()).or_default().insert(seed, o);
    }
    let mut out = Vec::new();
    for (setting, by_value) in &table {
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                let (Some(ma), Some(mb)) = (by_value.get(a), by_value.get(b)) else { continue };
                let both: Vec<(&Outcome, &Outcome)> = ma.iter().filter_map(|(s, oa)| mb.get(s).map(|ob| (*oa, *ob))).collect();
                let diffs: Vec<f64> = both.iter().filter_map(|(oa, ob)| Some(ob.final_fd? - oa.final_fd?)).collect();
                let ratios: Vec<f64> =
                    both.iter().filter_map(|(oa, ob)| Some(ob.to_target? / oa.to_target?)).filter(|r| r.is_finite()).collect();
                out.push(Paired {
                    setting: setting.clone(),
                    a: a.clone(),
                    b: b.clone(),
                    pairs: diffs.len(),
                    final_fd_diff: t_mean(&diffs),
                    b_lower: diffs.iter().filter(|d| **d < 0.0).count(),
                    to_target_ratio: t_mean(&ratios),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kimg_to_target_interpolates_between_evaluations() {
        let curve = [(0.0, 10.0), (1.0, 6.0), (2.0, 2.0)];
        assert_eq!(kimg_to_target(&curve, 4.0), Some(1.5));
        assert_eq!(kimg_to_target(&curve, 6.0), Some(1.0));
        assert_eq!(kimg_to_target(&curve, 12.0), Some(0.0), "already there at the start");
        assert_eq!(kimg_to_target(&curve, 1.0), None);
        // a rise before the crossing: the crossing is inside the last segment
        assert_eq!(kimg_to_target(&[(0.0, 6.0), (1.0, 7.0), (2.0, 3.0)], 5.0), Some(1.5));
    }

    fn outcome(loss: &str, seed: u64, fd: f64, kimg: Option<f64>) -> Outcome {
        let values = vec![("train.loss".into(), loss.into()), ("seed".into(), seed.to_string())];
        Outcome { values, final_fd: Some(fd), to_target: kimg }
    }

    #[test]
    fn groups_pool_seeds_and_pairs_match_them() {
        let o = vec![
            outcome("l2", 0, 10.0, Some(3.0)),
            outcome("l2", 1, 12.0, None),
            outcome("mfd", 0, 7.0, Some(1.0)),
            outcome("mfd", 1, 8.0, Some(0.5)),
        ];
        let g = groups(&o);
        assert_eq!(g.iter().map(|g| g.label.as_str()).collect::<Vec<_>>(), ["train.loss=l2", "train.loss=mfd"]);
        let l2 = &g[0];
        assert_eq!((l2.seeds, l2.reached), (2, 1));
        let fd = l2.final_fd.unwrap();
        // mean 11, sd sqrt(2), half-width 12.706 * sqrt(2) / sqrt(2)
        assert!((fd.mean - 11.0).abs() < 1e-12 && (fd.hi - 11.0 - 12.706).abs() < 1e-9, "{fd:?}");
        let p = paired(&o, "train.loss");
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!((p.a.as_str(), p.b.as_str(), p.pairs, p.b_lower), ("l2", "mfd", 2, 2));
        assert_eq!(p.final_fd_diff.unwrap().mean, -3.5);
        // kimg ratio only where both reached the target: seed 0, 1/3
        assert!((p.to_target_ratio.unwrap().mean - 1.0 / 3.0).abs() < 1e-12);
    }
}
