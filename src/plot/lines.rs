//! Curves in a grid of panels sharing their x range (and, per row, their y range), so panels
//! compare at a glance: a line with markers per series, its band (min-max over seeds, or +-sd
//! over repeats) shaded behind it, and a legend per panel.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{axes, chart, drawn, grid, legend, rgb, save, titled, Figure, TITLE_H};
use crate::Result;

/// One curve: points in data coordinates (NaN breaks the line), an optional band
/// `(x, lo, hi)`, and its legend entry (none when the label is empty).
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub colour: [u8; 3],
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    /// A reference line (chance), drawn dashed and without markers.
    pub dashed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct LinePanel {
    pub title: String,
    pub series: Vec<Series>,
}

#[derive(Clone, Debug, Default)]
pub struct LineFigure {
    pub title: String,
    pub x_label: String,
    /// The y axis' label of each row of panels (the last for rows beyond).
    pub y_labels: Vec<String>,
    pub cols: usize,
    pub x: (f64, f64),
    /// Each row's y range (the last for rows beyond).
    pub y_rows: Vec<(f64, f64)>,
    pub panels: Vec<LinePanel>,
}

const PANEL_W: u32 = 520;
const PANEL_H: u32 = 340;

/// Writes `figure` to `png` and its `.svg`.
pub fn line_panels(figure: &LineFigure, png: &Path) -> Result<()> {
    save(figure, png).map(|_| ())
}

/// A range that plots: widened when empty, then padded by 5% each side.
pub(super) fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3)) };
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Runs of finite points: a NaN ends a line.
fn segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            out.last_mut().expect("one segment at least").push((x, y));
        } else if !out.last().is_some_and(|s| s.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

impl Figure for LineFigure {
    fn size(&self) -> (u32, u32) {
        let (cols, rows) = grid(self.cols, self.panels.len());
        (cols as u32 * PANEL_W, TITLE_H + rows as u32 * PANEL_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (cols, rows) = grid(self.cols, self.panels.len());
        let body = titled(root, &self.title)?;
        let x = padded(self.x);
        for (i, cell) in body.split_evenly((rows, cols)).iter().enumerate() {
            let Some(panel) = self.panels.get(i) else { break };
            let row = i / cols;
            let mut y = padded(self.y_rows.get(row).or(self.y_rows.last()).copied().unwrap_or((0.0, 1.0)));
            let entries = panel.series.iter().filter(|s| !s.label.is_empty()).count();
            // room above the data for the legend (a 340 px panel's plot area is ~250 px; an
            // entry is ~17 px)
            y.1 += (y.1 - y.0) * (entries as f64 * 17.0 + 16.0) / 250.0;
            let y_label = self.y_labels.get(row).or(self.y_labels.last()).cloned().unwrap_or_default();
            draw_panel(cell, panel, x, y, &self.x_label, &y_label)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    cell: &DrawingArea<DB, Shift>,
    panel: &LinePanel,
    x: (f64, f64),
    y: (f64, f64),
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    let mut chart = chart(cell, &panel.title, 16, x, y)?;
    axes(&mut chart, x_label, y_label)?;
    // Bands first, under every line.
    for s in panel.series.iter().filter(|s| s.band.len() > 1) {
        let mut outline: Vec<(f64, f64)> = s.band.iter().map(|b| (b.0, b.2)).collect();
        outline.extend(s.band.iter().rev().map(|b| (b.0, b.1)));
        drawn(chart.draw_series(std::iter::once(Polygon::new(outline, rgb(s.colour).mix(0.18).filled()))))?;
    }
    let mut labelled = false;
    for s in &panel.series {
        let colour = rgb(s.colour);
        let style = colour.stroke_width(if s.dashed { 1 } else { 2 });
        for seg in segments(&s.points) {
            if s.dashed {
                drawn(chart.draw_series(DashedLineSeries::new(seg, 6, 4, style)))?;
            } else {
                drawn(chart.draw_series(LineSeries::new(seg.clone(), style)))?;
                drawn(chart.draw_series(seg.into_iter().map(|p| Circle::new(p, 3, colour.filled()))))?;
            }
        }
        if !s.label.is_empty() {
            // an empty series carries the legend entry (plotters labels the last series drawn)
            let entry = drawn(chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>()))?;
            entry.label(s.label.clone()).legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], style));
            labelled = true;
        }
    }
    if labelled {
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}
