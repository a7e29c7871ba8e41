//! Overlaid histograms, one panel per probe metric: each loss's density as a translucent filled
//! step curve with its outline, the chance value as a dashed vertical line, a legend per panel.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{axes, chart, drawn, legend, rgb, save, titled, Figure, TITLE_H};
use super::loss_colour;
use crate::metrics::hist::Histogram;
use crate::Result;

/// One panel: a metric's histogram per loss, and the value random directions score on it.
#[derive(Clone, Debug, Default)]
pub struct HistPanel {
    pub title: String,
    pub x_label: String,
    pub series: Vec<(String, Histogram)>,
    pub reference: Option<f64>,
}

struct HistFigure<'a> {
    title: &'a str,
    panels: &'a [HistPanel],
}

const PANEL_W: u32 = 640;
const PANEL_H: u32 = 260;

/// Panels stacked top to bottom, written to `png` and its `.svg`.
pub fn overlaid_histograms(title: &str, panels: &[HistPanel], png: &Path) -> Result<()> {
    save(&HistFigure { title, panels }, png).map(|_| ())
}

/// A bin's `(lo, hi, density)`.
type Bin = (f64, f64, f64);

/// Each bin's edges and density: counts over total times bin width (areas sum to one).
fn density(h: &Histogram) -> Vec<Bin> {
    let total: i64 = h.counts.iter().map(|c| (*c).max(0)).sum();
    h.counts
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let (lo, hi) = (*h.edges.get(i)?, *h.edges.get(i + 1)?);
            let d = if total > 0 && hi > lo { c.max(0) as f64 / (total as f64 * (hi - lo)) } else { 0.0 };
            Some((lo, hi, d))
        })
        .collect()
}

impl Figure for HistFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (PANEL_W, TITLE_H + self.panels.len().max(1) as u32 * PANEL_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let body = titled(root, self.title)?;
        for (cell, panel) in body.split_evenly((self.panels.len().max(1), 1)).iter().zip(self.panels) {
            draw_panel(cell, panel)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(cell: &DrawingArea<DB, Shift>, panel: &HistPanel) -> Result<()> {
    let bins: Vec<(String, Vec<Bin>)> = panel.series.iter().map(|(l, h)| (l.clone(), density(h))).collect();
    let lo = bins.iter().filter_map(|(_, b)| b.first().map(|x| x.0)).fold(f64::INFINITY, f64::min);
    let hi = bins.iter().filter_map(|(_, b)| b.last().map(|x| x.1)).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
    let top = bins.iter().flat_map(|(_, b)| b.iter().map(|x| x.2)).fold(0.0, f64::max).max(1e-9) * 1.08;
    let mut chart = chart(cell, &panel.title, 16, (lo, hi), (0.0, top))?;
    axes(&mut chart, &panel.x_label, "density")?;
    for (loss, b) in &bins {
        let colour = rgb(loss_colour(loss));
        let mut steps = vec![(lo, 0.0)];
        for &(l, h, d) in b {
            steps.extend([(l, d), (h, d)]);
        }
        steps.push((hi, 0.0));
        drawn(chart.draw_series(std::iter::once(Polygon::new(steps.clone(), colour.mix(0.3).filled()))))?;
        let n: i64 = panel.series.iter().find(|(l, _)| l == loss).map_or(0, |(_, h)| h.counts.iter().sum());
        let line = colour.stroke_width(2);
        drawn(chart.draw_series(LineSeries::new(steps, line)))?
            .label(if loss == crate::metrics::probe::CHANCE {
                format!("random directions (n = {n})")
            } else {
                format!("{} (n = {n})", loss.to_uppercase())
            })
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.mix(0.6).filled()));
    }
    if let Some(v) = panel.reference.filter(|v| v.is_finite() && *v >= lo && *v <= hi) {
        drawn(chart.draw_series(DashedLineSeries::new(vec![(v, 0.0), (v, top)], 6, 4, BLACK.stroke_width(1))))?
            .label("random directions (closed form)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}
