//! The report's figures, from the members' curves: FD against kimg per batch size, the probe
//! means over training per metric and batch size (chance dashed), and each member's rho over
//! training as a heat map. Members that differ only in their seed are one line, the mean over
//! seeds with a min-max band; a lone member with repeated evaluations gets a +-sd band.

use std::path::Path;

use super::curves::{Curves, ALIGNMENT, CHANCE_COLOUR};
use crate::plot::{self, HeatFigure, HeatPanel, LineFigure, LinePanel, Series};
use crate::Result;

/// `(min, max)` of the finite values; from 0 when `from_zero` (kimg axes).
pub(super) fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if from_zero && hi.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (lo, hi)
    }
}

/// Members of one batch size, by loss (first-seen order), each loss's members together.
fn by_loss(curves: &[Curves], batch: usize) -> Vec<Vec<&Curves>> {
    let mut groups: Vec<Vec<&Curves>> = Vec::new();
    for c in curves.iter().filter(|c| c.batch == batch) {
        match groups.iter_mut().find(|g| g[0].name == c.name) {
            Some(g) => g.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
}

/// One line for members' curves `pick(c)`: one member as it is (with `sd` as a +-band when
/// given), several as their mean with a min-max band where their x values agree.
fn pooled(label: &str, colour: [u8; 3], curves: Vec<&[(f64, f64)]>, sd: Option<&[(f64, f64)]>) -> Series {
    let curves: Vec<&[(f64, f64)]> = curves.into_iter().filter(|c| !c.is_empty()).collect();
    if curves.len() <= 1 {
        let points = curves.first().map(|c| c.to_vec()).unwrap_or_default();
        let band = match sd {
            Some(sd) => points.iter().filter_map(|&(x, y)| sd.iter().find(|s| s.0 == x).map(|s| (x, y - s.1, y + s.1))).collect(),
            None => Vec::new(),
        };
        let what = if band.is_empty() { "" } else { ", +-sd over repeats" };
        return Series { label: format!("{label}{what}"), colour, points, band, dashed: false };
    }
    let n = curves.iter().map(|c| c.len()).min().unwrap_or(0);
    let (mut points, mut band) = (Vec::new(), Vec::new());
    for i in 0..n {
        let x = curves[0][i].0;
        if curves.iter().any(|c| (c[i].0 - x).abs() > 1e-9) {
            break; // the members' schedules part: pool only the shared prefix
        }
        let ys: Vec<f64> = curves.iter().map(|c| c[i].1).collect();
        points.push((x, ys.iter().sum::<f64>() / ys.len() as f64));
        band.push((x, ys.iter().copied().fold(f64::INFINITY, f64::min), ys.iter().copied().fold(f64::NEG_INFINITY, f64::max)));
    }
    Series { label: format!("{label} (mean of {} seeds, min-max)", curves.len()), colour, points, band, dashed: false }
}

/// `fd_vs_kimg.png`: a panel per batch size, a line per loss.
pub(super) fn fd_figure(curves: &[Curves], batches: &[usize], metric: &str, path: &Path) -> Result<()> {
    let panels = batches
        .iter()
        .map(|&b| LinePanel {
            title: format!("batch size {b}"),
            series: by_loss(curves, b)
                .into_iter()
                .map(|g| pooled(g[0].name, g[0].colour, g.iter().map(|c| c.fd.as_slice()).collect(), Some(g[0].fd_sd_curve.as_slice())))
                .collect(),
        })
        .collect();
    let all = curves.iter().flat_map(|c| c.fd.iter());
    let figure = LineFigure {
        title: format!("{metric} against training images"),
        x_label: "kimg".into(),
        y_labels: vec![metric.to_string()],
        cols: batches.len(),
        x: range(all.clone().map(|p| p.0), true),
        y_rows: vec![range(all.map(|p| p.1), false)],
        panels,
    };
    plot::line_panels(&figure, path)
}

/// `alignment.png`: a row per probe metric, a panel per batch size; each loss's own-direction
/// mean over training, and random directions dashed.
pub(super) fn alignment_figure(curves: &[Curves], batches: &[usize], path: &Path) -> Result<()> {
    let mut panels = Vec::new();
    for (i, (_, what)) in ALIGNMENT.iter().enumerate() {
        for &b in batches {
            let groups = by_loss(curves, b);
            let chance = groups.iter().flatten().find(|c| !c.chance[i].is_empty()).map(|c| Series {
                label: "random directions".into(),
                colour: CHANCE_COLOUR,
                points: c.chance[i].clone(),
                band: Vec::new(),
                dashed: true,
            });
            let lines = groups.iter().map(|g| pooled(g[0].name, g[0].colour, g.iter().map(|c| c.alignment[i].as_slice()).collect(), None));
            panels.push(LinePanel { title: format!("{what}, batch size {b}"), series: lines.chain(chance).collect() });
        }
    }
    // One y range per metric (row): the cosine and rho live on different scales.
    let y_rows = (0..ALIGNMENT.len())
        .map(|i| range(curves.iter().flat_map(|c| c.alignment[i].iter().chain(c.chance[i].iter())).map(|p| p.1), false))
        .collect();
    let figure = LineFigure {
        title: "Tangent alignment of each loss's own update direction over training".into(),
        x_label: "kimg".into(),
        y_labels: ALIGNMENT.iter().map(|(m, _)| m.to_string()).collect(),
        cols: batches.len(),
        x: range(curves.iter().flat_map(|c| c.alignment.iter().flatten()).map(|p| p.0), true),
        y_rows,
        panels,
    };
    plot::line_panels(&figure, path)
}

/// `alignment_heatmap.png`: each member's own-loss rho histograms over training, `per_row`
/// panels a row in the order of the report's table.
pub(super) fn heat_figure(curves: &[Curves], per_row: usize, path: &Path) -> Result<()> {
    let panels = curves
        .iter()
        .map(|c| HeatPanel { title: c.state.planned.label.clone(), colour: c.colour, probes: c.rho_history.clone() })
        .collect();
    let figure = HeatFigure {
        title: "rho of each member's own loss direction over training".into(),
        x_label: "probe (oldest left)".into(),
        y_label: "rho".into(),
        y: (0.0, 1.0),
        cols: per_row,
        panels,
    };
    plot::heatmaps(&figure, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pool_into_a_mean_with_a_min_max_band_and_one_member_keeps_its_sd() {
        let a = [(0.0, 10.0), (1.0, 6.0), (2.0, 4.0)];
        let b = [(0.0, 12.0), (1.0, 8.0)];
        let s = pooled("l2", [1, 2, 3], vec![&a, &b], None);
        assert_eq!(s.points, [(0.0, 11.0), (1.0, 7.0)], "the shared prefix only");
        assert_eq!(s.band, [(0.0, 10.0, 12.0), (1.0, 6.0, 8.0)]);
        assert_eq!(s.label, "l2 (mean of 2 seeds, min-max)");
        let sd = [(0.0, 1.0), (2.0, 0.5)];
        let s = pooled("mfd", [1, 2, 3], vec![&a, &[]], Some(&sd));
        assert_eq!((s.points.len(), s.band.clone()), (3, vec![(0.0, 9.0, 11.0), (2.0, 3.5, 4.5)]));
        assert_eq!(s.label, "mfd, +-sd over repeats");
        let s = pooled("x", [0; 3], vec![&a], Some(&[]));
        assert!(s.band.is_empty() && s.label == "x");
    }
}
