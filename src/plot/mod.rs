//! Figures for reports, drawn with `plotters`, each written as PNG and as SVG beside it:
//! titled, with axis labels, a grid, a legend per loss (or member), and error bands where the
//! data has them.
//!
//! - [`line_panels`]: curves in a grid of panels (FD against kimg, probe means over training);
//! - [`overlaid_histograms`]: each loss's histogram of one probe metric, overlaid, per panel;
//! - [`heatmaps`]: a histogram over training, one panel per loss or member.

mod canvas;
mod heat;
mod hists;
mod lines;

pub use heat::{heatmaps, HeatFigure, HeatPanel};
pub use hists::{overlaid_histograms, HistPanel};
pub use lines::{line_panels, LineFigure, LinePanel, Series};

/// Colours by loss name (L2 red, MFD green, LPIPS blue, anything else grey).
pub fn loss_colour(loss: &str) -> [u8; 3] {
    match loss {
        "l2" => [228, 88, 64],
        "mfd" => [64, 180, 96],
        "lpips" => [72, 124, 232],
        _ => [160, 160, 160],
    }
}

#[cfg(test)]
mod tests;
