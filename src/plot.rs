//! Minimal raster plots for reports: overlaid histograms, one panel per metric (no text: the
//! command that writes a plot prints its legend).

use std::path::Path;

use crate::metrics::hist::Histogram;
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

/// Panels stacked vertically; in each, every loss's histogram as a filled, translucent step plot,
/// and a dashed black vertical line at `references[panel]` (the chance value) when given.
pub fn overlaid_histograms(panels: &[Vec<(String, Histogram)>], references: &[Option<f64>], path: &Path) -> Result<()> {
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
        let edges = series.first().map(|(_, h)| (h.edges[0], h.edges[h.edges.len() - 1]));
        if let (Some(Some(v)), Some((lo, hi))) = (references.get(p), edges) {
            if v.is_finite() && hi > lo {
                let x = (((v - lo) / (hi - lo)) * W as f64).clamp(0.0, (W - 1) as f64) as usize;
                for y in (0..H).filter(|y| (y / 4) % 2 == 0) {
                    let i = ((top + y) * W + x) * 3;
                    img[i..i + 3].copy_from_slice(&[0, 0, 0]);
                }
            }
        }
    }
    crate::image_io::write_png(path, W, height, 3, &img)
}

/// One line of a line plot, in data coordinates (NaN points break the line).
#[derive(Clone, Debug, Default)]
pub struct Line {
    pub colour: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

const LW: usize = 320;
const LH: usize = 180;
/// Left margin of a line panel: room for a 7-character y label.
const LEFT: usize = 64;
const BOTTOM: usize = 18;

/// Line panels in a grid of `cols` columns, all on the x range `x` and each row on its y range
/// `y_rows[row]` (the last one for rows beyond), so panels compare at a glance. Each panel is
/// framed; its ranges are printed at its corners (x min and max under the frame, y max and min
/// left of it). The legend is the caller's to print.
pub fn line_panels(panels: &[Vec<Line>], cols: usize, x: (f64, f64), y_rows: &[(f64, f64)], path: &Path) -> Result<()> {
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (cw, ch) = (LEFT + LW + PAD, PAD + LH + BOTTOM);
    let (width, height) = (cols * cw + PAD, rows * ch + PAD);
    let mut img = vec![255u8; width * height * 3];
    let x = pad(widen(x));
    for (p, lines) in panels.iter().enumerate() {
        let (left, top) = ((p % cols) * cw + LEFT, (p / cols) * ch + PAD);
        let y = pad(widen(y_rows.get(p / cols).or(y_rows.last()).copied().unwrap_or((0.0, 1.0))));
        let to_px = |(vx, vy): (f64, f64)| -> Option<(i64, i64)> {
            if !(vx.is_finite() && vy.is_finite()) {
                return None;
            }
            let px = left as f64 + (vx - x.0) / (x.1 - x.0) * (LW - 1) as f64;
            let py = top as f64 + (1.0 - (vy - y.0) / (y.1 - y.0)) * (LH - 1) as f64;
            Some((px.round() as i64, py.round() as i64))
        };
        let clip = |(px, py): (i64, i64)| (px.clamp(left as i64, (left + LW - 1) as i64), py.clamp(top as i64, (top + LH - 1) as i64));
        // The frame first: a line along an edge stays visible.
        frame(&mut img, width, (left, top, LW, LH), [90, 90, 90]);
        for line in lines {
            let pts: Vec<Option<(i64, i64)>> = line.points.iter().map(|&pt| to_px(pt).map(clip)).collect();
            for w in pts.windows(2) {
                if let (Some(a), Some(b)) = (w[0], w[1]) {
                    draw_segment(&mut img, width, a, b, line.colour);
                }
            }
            // A marker on every point: sparse curves (a few evaluations) stay readable.
            for &(px, py) in pts.iter().flatten() {
                for dy in -2..=1 {
                    draw_segment(&mut img, width, (px - 2, py + dy), (px + 1, py + dy), line.colour);
                }
            }
        }
        text(&mut img, width, left, top + LH + 4, &axis_label(x.0, x.1 - x.0));
        let xr = axis_label(x.1, x.1 - x.0);
        text(&mut img, width, left + LW - text_width(&xr), top + LH + 4, &xr);
        let (yt, yb) = (axis_label(y.1, y.1 - y.0), axis_label(y.0, y.1 - y.0));
        text(&mut img, width, left - 4 - text_width(&yt), top, &yt);
        text(&mut img, width, left - 4 - text_width(&yb), top + LH - GLYPH_H, &yb);
    }
    crate::image_io::write_png(path, width, height, 3, &img)
}

/// A degenerate or non-finite range made drawable.
fn widen((lo, hi): (f64, f64)) -> (f64, f64) {
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi),
        (true, true) => (lo - 0.5, lo + 0.5),
        _ => (0.0, 1.0),
    }
}

/// 3% of room on either side, so no point sits on the frame (none below an axis starting at 0).
fn pad((lo, hi): (f64, f64)) -> (f64, f64) {
    let m = 0.03 * (hi - lo);
    (if lo == 0.0 { lo } else { lo - m }, hi + m)
}

/// A 2-pixel-thick segment (Bresenham).
fn draw_segment(img: &mut [u8], width: usize, (x0, y0): (i64, i64), (x1, y1): (i64, i64), colour: [u8; 3]) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    let height = img.len() / (width * 3);
    loop {
        for (ox, oy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let (px, py) = (x + ox, y + oy);
            if px >= 0 && py >= 0 && (px as usize) < width && (py as usize) < height {
                let i = (py as usize * width + px as usize) * 3;
                img[i..i + 3].copy_from_slice(&colour);
            }
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// A one-pixel `colour` rectangle around `(left, top, w, h)` in an RGB image `width` wide.
fn frame(img: &mut [u8], width: usize, (left, top, w, h): (usize, usize, usize, usize), colour: [u8; 3]) {
    for x in left..left + w {
        for y in [top, top + h - 1] {
            let i = (y * width + x) * 3;
            img[i..i + 3].copy_from_slice(&colour);
        }
    }
    for y in top..top + h {
        for x in [left, left + w - 1] {
            let i = (y * width + x) * 3;
            img[i..i + 3].copy_from_slice(&colour);
        }
    }
}

/// An axis-corner number in at most 7 characters (`0.25`, `12.5`, `340`, `1.2e3`, `5.0e-4`),
/// with enough decimals to tell the ends of a narrow range `span` apart (`0.9186`).
pub fn axis_label(v: f64, span: f64) -> String {
    let a = v.abs();
    let needed = if span > 0.0 && span.is_finite() { (1.0 - span.log10().floor()).max(0.0) as usize } else { 0 };
    if a != 0.0 && !(0.01..1000.0).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.*}", needed.min(1))
    } else if a >= 10.0 {
        format!("{v:.*}", needed.clamp(1, 3))
    } else {
        format!("{v:.*}", needed.clamp(2, 4))
    }
}

/// The 3x5 pixel glyphs of the digits, '.', '-' and 'e' (rows top to bottom, bit 2 = left),
/// drawn at scale 2; anything else is blank.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        'e' => [0, 2, 7, 4, 3],
        _ => [0; 5],
    }
}

const SCALE: usize = 2;
const GLYPH_W: usize = 4 * SCALE;
const GLYPH_H: usize = 5 * SCALE;

fn text_width(s: &str) -> usize {
    s.chars().count() * GLYPH_W
}

fn text(img: &mut [u8], width: usize, left: usize, top: usize, s: &str) {
    let height = img.len() / (width * 3);
    for (k, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    for (dy, dx) in (0..SCALE).flat_map(|a| (0..SCALE).map(move |b| (a, b))) {
                        let (x, y) = (left + k * GLYPH_W + col * SCALE + dx, top + row * SCALE + dy);
                        if x < width && y < height {
                            let i = (y * width + x) * 3;
                            img[i..i + 3].copy_from_slice(&[0, 0, 0]);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn line_panels_draw_coloured_lines_inside_their_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.png");
        let red = Line { colour: loss_colour("l2"), points: vec![(0.0, 0.0), (1.0, 1.0), (f64::NAN, 0.5), (2.0, 0.0)] };
        let blue = Line { colour: loss_colour("lpips"), points: vec![(0.0, 1.0), (2.0, 1.0)] };
        line_panels(&[vec![red], vec![blue], vec![]], 2, (0.0, 2.0), &[(0.0, 1.0)], &path).unwrap();
        let (w, h, c, px) = crate::image_io::read_png(&path).unwrap();
        assert_eq!((w, h, c), (2 * (LEFT + LW + PAD) + PAD, 2 * (PAD + LH + BOTTOM) + PAD, 3));
        let count = |col: [u8; 3]| px.chunks(3).filter(|p| *p == col).count();
        assert!(count(loss_colour("l2")) > LW, "the red line spans its panel");
        assert!(count(loss_colour("lpips")) >= 2 * LW, "the flat blue line is 2 px thick");
        assert!(px.chunks(3).any(|p| p == [0, 0, 0]), "axis labels are drawn");
        let labels = [(0.25, 1.0), (12.34, 10.0), (340.0, 100.0), (1234.0, 1e3), (0.0005, 1e-3), (0.9186, 0.006), (340.25, 0.5)];
        let got: Vec<String> = labels.iter().map(|&(v, span)| axis_label(v, span)).collect();
        assert_eq!(got, ["0.25", "12.3", "340", "1.2e3", "5.0e-4", "0.9186", "340.2"]);
    }
}

/// One histogram over training for [`heatmaps`]: its colour and the bin counts of each probe,
/// oldest first.
pub struct HeatPanel {
    pub colour: [u8; 3],
    pub probes: Vec<Vec<i64>>,
}

const HW: usize = 240;
const HH: usize = 160;

/// Heat maps in a grid of `cols` columns: in each panel x is the probes (oldest left), y the
/// bins (high values on top), each probe's column scaled to its largest bin and shaded from
/// white to the panel's colour. The legend is the caller's to print.
pub fn heatmaps(panels: &[HeatPanel], cols: usize, path: &Path) -> Result<()> {
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (width, height) = (cols * (HW + PAD) + PAD, rows * (HH + PAD) + PAD);
    let mut img = vec![255u8; width * height * 3];
    for (i, p) in panels.iter().enumerate() {
        let (left, top) = (PAD + (i % cols) * (HW + PAD), PAD + (i / cols) * (HH + PAD));
        let n = p.probes.len();
        for x in 0..HW {
            let Some(col) = (n > 0).then(|| &p.probes[(x * n / HW).min(n - 1)]) else { break };
            let (bins, max) = (col.len().max(1), col.iter().copied().max().unwrap_or(0).max(1) as f64);
            for y in 0..HH {
                let bin = ((HH - 1 - y) * bins / HH).min(bins - 1);
                let level = col.get(bin).map_or(0.0, |&c| c.max(0) as f64 / max);
                let at = ((top + y) * width + left + x) * 3;
                for c in 0..3 {
                    img[at + c] = (255.0 - level * (255.0 - p.colour[c] as f64)).round() as u8;
                }
            }
        }
        frame(&mut img, width, (left, top, HW, HH), [0, 0, 0]);
    }
    crate::image_io::write_png(path, width, height, 3, &img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heat_map_puts_each_probe_mass_at_its_bin_height() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        // two probes, 2 bins: mass low, then high
        heatmaps(&[HeatPanel { colour: [0, 0, 0], probes: vec![vec![5, 0], vec![0, 5]] }], 1, &path).unwrap();
        let (w, h, c, px) = crate::image_io::read_png(&path).unwrap();
        assert_eq!((w, h, c), (HW + 2 * PAD, HH + 2 * PAD, 3));
        let at = |x: usize, y: usize| px[((PAD + y) * w + PAD + x) * 3];
        // left half: dark at the bottom, white on top; right half: the reverse
        assert_eq!((at(HW / 4, HH - 10), at(HW / 4, 10)), (0, 255));
        assert_eq!((at(3 * HW / 4, HH - 10), at(3 * HW / 4, 10)), (255, 0));
    }
}
