//! Minimal raster plots for reports: overlaid histograms, one panel per metric (no text: the
//! command that writes a plot prints its legend).

use std::path::Path;

use super::hist::Histogram;
use crate::Result;

/// Colours by loss name (L2 red, MFD green, LPIPS blue, anything else grey).
pub fn loss_colour(loss: &str) -> [u8; 3] {
    match loss {
        "l2" => [228, 88, 64],
        "mfd" => [64, 180, 96],
        "lpips" => [72, 124, 232],
        _ => [160, 160, 160],
    }
}

const W: usize = 480;
const H: usize = 160;
const PAD: usize = 8;

/// Panels stacked vertically; in each, every loss's histogram as a filled, translucent step plot.
pub fn overlaid_histograms(panels: &[Vec<(String, Histogram)>], path: &Path) -> Result<()> {
    let height = panels.len().max(1) * (H + PAD) + PAD;
    let mut img = vec![255u8; W * height * 3];
    for (p, series) in panels.iter().enumerate() {
        let top = PAD + p * (H + PAD);
        let max = series.iter().flat_map(|(_, h)| h.counts.iter()).copied().max().unwrap_or(1).max(1) as f64;
        for (loss, h) in series {
            let colour = loss_colour(loss);
            let bins = h.counts.len().max(1);
            for x in 0..W {
                let bin = (x * bins / W).min(bins - 1);
                let bar = ((h.counts[bin] as f64 / max) * (H - 1) as f64).round() as usize;
                for y in (H - bar)..H {
                    let i = ((top + y) * W + x) * 3;
                    for c in 0..3 {
                        // translucent overlay: blend 45% of the colour over what is there
                        img[i + c] = ((img[i + c] as f64) * 0.55 + colour[c] as f64 * 0.45) as u8;
                    }
                }
            }
        }
        for x in 0..W {
            let i = ((top + H - 1) * W + x) * 3;
            img[i..i + 3].copy_from_slice(&[0, 0, 0]);
        }
    }
    crate::image_io::write_png(path, W, height, 3, &img)
}
