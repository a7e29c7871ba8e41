//! A histogram over training as a heat map, one panel per loss (or member): x the probes in
//! order, y the metric's bins, each probe's column scaled to its densest bin and shaded from
//! white to the panel's colour, so a direction that settles or oscillates shows as a band that
//! converges or wobbles.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{chart, drawn, grid, save, titled, Figure, FAMILY, TITLE_H};
use crate::Result;

/// One histogram over training: its colour and the bin counts of each probe, oldest first.
#[derive(Clone, Debug, Default)]
pub struct HeatPanel {
    pub title: String,
    pub colour: [u8; 3],
    pub probes: Vec<Vec<i64>>,
}

#[derive(Clone, Debug, Default)]
pub struct HeatFigure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The metric's range (the bins' edges at the bottom and top).
    pub y: (f64, f64),
    pub cols: usize,
    pub panels: Vec<HeatPanel>,
}

const PANEL_W: u32 = 360;
const PANEL_H: u32 = 300;

/// Writes `figure` to `png` and its `.svg`.
pub fn heatmaps(figure: &HeatFigure, png: &Path) -> Result<()> {
    save(figure, png).map(|_| ())
}

/// White shaded towards `colour` by `level` in [0, 1].
pub fn shade(colour: [u8; 3], level: f64) -> RGBColor {
    let c = |v: u8| (255.0 - level.clamp(0.0, 1.0) * (255.0 - v as f64)).round() as u8;
    RGBColor(c(colour[0]), c(colour[1]), c(colour[2]))
}

impl Figure for HeatFigure {
    fn size(&self) -> (u32, u32) {
        let (cols, rows) = grid(self.cols, self.panels.len());
        (cols as u32 * PANEL_W, TITLE_H + rows as u32 * PANEL_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (cols, rows) = grid(self.cols, self.panels.len());
        let body = titled(root, &self.title)?;
        let (y0, y1) = if self.y.1 > self.y.0 { self.y } else { (0.0, 1.0) };
        for (cell, panel) in body.split_evenly((rows, cols)).iter().zip(&self.panels) {
            let n = panel.probes.len().max(1);
            let mut chart = chart(cell, &panel.title, 13, (0.0, n as f64), (y0, y1))?;
            drawn(
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_labels(n.min(8))
                    .x_label_formatter(&|v| format!("{v:.0}"))
                    .x_desc(&self.x_label)
                    .y_desc(&self.y_label)
                    .label_style((FAMILY, 12))
                    .axis_desc_style((FAMILY, 13))
                    .draw(),
            )?;
            let cells = panel.probes.iter().enumerate().flat_map(|(i, col)| {
                let max = col.iter().copied().max().unwrap_or(0).max(1) as f64;
                let bins = col.len().max(1);
                let h = (y1 - y0) / bins as f64;
                col.iter().enumerate().map(move |(b, &c)| {
                    let lo = y0 + b as f64 * h;
                    Rectangle::new([(i as f64, lo), (i as f64 + 1.0, lo + h)], shade(panel.colour, c.max(0) as f64 / max).filled())
                })
            });
            drawn(chart.draw_series(cells))?;
        }
        Ok(())
    }
}
