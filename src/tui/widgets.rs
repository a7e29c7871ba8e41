//! Widgets of our own: sample grids drawn with half-block characters (two pixels per cell,
//! truecolor or a 256-colour fallback). Unlike generic image widgets it never shrinks a small
//! image to a blur: tiles are drawn at an integer (or half) scale and as many as fit are shown.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

use crate::store::SampleGrid;

/// A grid of sample images.
pub struct HalfBlockGrid<'a> {
    pub grid: &'a SampleGrid,
    pub truecolor: bool,
}

/// Scale factors tried, largest first.
const SCALES: [f64; 7] = [4.0, 3.0, 2.0, 1.0, 0.75, 0.5, 0.25];
/// Pixels between tiles.
const GAP: usize = 1;

/// How tiles are laid out in a pixel area: scale, tile size, columns, rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileLayout {
    pub scale: f64,
    pub tile_w: usize,
    pub tile_h: usize,
    pub cols: usize,
    pub rows: usize,
}

impl TileLayout {
    pub fn shown(&self) -> usize {
        self.cols * self.rows
    }
}

/// The largest scale that shows all `n` images of `h x w` in `px_w x px_h` pixels, or (when none
/// does) the smallest readable one, showing as many as fit.
pub fn tile_layout(n: usize, h: usize, w: usize, px_w: usize, px_h: usize) -> Option<TileLayout> {
    if n == 0 || h == 0 || w == 0 {
        return None;
    }
    let fit = |scale: f64| {
        let tw = ((w as f64 * scale).round() as usize).max(1);
        let th = ((h as f64 * scale).round() as usize).max(1);
        let cols = ((px_w + GAP) / (tw + GAP)).min(n);
        let rows = ((px_h + GAP) / (th + GAP)).min(n.div_ceil(cols.max(1)));
        TileLayout { scale, tile_w: tw, tile_h: th, cols, rows }
    };
    // Tiles below 8 px (or the native size, if smaller) are unreadable.
    let min_px = 8.min(w.min(h));
    let readable = |l: &TileLayout| l.tile_w.min(l.tile_h) >= min_px;
    let layouts: Vec<TileLayout> = SCALES.iter().map(|&s| fit(s)).filter(|l| readable(l) && l.shown() > 0).collect();
    // All images at the largest scale that fits them; else the layout covering the most pixels.
    layouts.iter().find(|l| l.shown() >= n).copied().or_else(|| {
        layouts
            .iter()
            .copied()
            .max_by(|a, b| (a.shown() * a.tile_w * a.tile_h).cmp(&(b.shown() * b.tile_w * b.tile_h)).then(a.scale.total_cmp(&b.scale)))
    })
}

/// xterm-256 index nearest to an RGB colour.
pub fn ansi256(r: u8, g: u8, b: u8) -> u8 {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    if max - min < 10 {
        let v = r as i32;
        if v < 8 {
            return 16;
        }
        if v > 238 {
            return 231;
        }
        return (232 + (v - 8) / 10).clamp(232, 255) as u8;
    }
    let q = |c: u8| ((c as u32 * 5 + 127) / 255) as u8;
    16 + 36 * q(r) + 6 * q(g) + q(b)
}

impl HalfBlockGrid<'_> {
    fn pixel(&self, img: usize, y: usize, x: usize) -> Color {
        let g = self.grid;
        let base = ((img * g.h + y) * g.w + x) * g.c;
        let px = &g.images[base..base + g.c];
        let (r, gg, b) = if g.c >= 3 { (px[0], px[1], px[2]) } else { (px[0], px[0], px[0]) };
        if self.truecolor {
            Color::Rgb(r, gg, b)
        } else {
            Color::Indexed(ansi256(r, gg, b))
        }
    }
}

impl Widget for HalfBlockGrid<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let g = self.grid;
        if g.images.len() < g.n * g.h * g.w * g.c || g.c == 0 {
            return;
        }
        let (px_w, px_h) = (area.width as usize, area.height as usize * 2);
        let Some(l) = tile_layout(g.n, g.h, g.w, px_w, px_h) else { return };
        let used_w = l.cols * (l.tile_w + GAP) - GAP;
        let used_h = l.rows * (l.tile_h + GAP) - GAP;
        let (x0, y0) = ((px_w - used_w.min(px_w)) / 2, ((px_h - used_h.min(px_h)) / 4) * 2);
        // The colour of pixel (px, py) of the area, if a tile covers it.
        let at = |px: usize, py: usize| -> Option<Color> {
            let (px, py) = (px.checked_sub(x0)?, py.checked_sub(y0)?);
            let (col, tx) = (px / (l.tile_w + GAP), px % (l.tile_w + GAP));
            let (row, ty) = (py / (l.tile_h + GAP), py % (l.tile_h + GAP));
            if col >= l.cols || row >= l.rows || tx >= l.tile_w || ty >= l.tile_h {
                return None;
            }
            let img = row * l.cols + col;
            if img >= g.n {
                return None;
            }
            let sy = ((ty as f64 / l.scale) as usize).min(g.h - 1);
            let sx = ((tx as f64 / l.scale) as usize).min(g.w - 1);
            Some(self.pixel(img, sy, sx))
        };
        for cy in 0..area.height as usize {
            for cx in 0..px_w {
                let (top, bottom) = (at(cx, 2 * cy), at(cx, 2 * cy + 1));
                if top.is_none() && bottom.is_none() {
                    continue;
                }
                if let Some(cell) = buf.cell_mut((area.x + cx as u16, area.y + cy as u16)) {
                    cell.set_symbol("▀").set_fg(top.unwrap_or(Color::Reset)).set_bg(bottom.unwrap_or(Color::Reset));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_prefers_the_largest_scale_that_shows_all() {
        // 4 images of 16x16 in 80x40 pixels: scale 2 (32 px tiles) fits 2x1 ... 1x: 4 fit.
        let l = tile_layout(4, 16, 16, 80, 40).unwrap();
        assert_eq!(l.shown(), 4);
        assert_eq!(l.scale, 1.0);
        let l = tile_layout(1, 16, 16, 80, 40).unwrap();
        assert_eq!(l.scale, 2.0);
        // 64 images in a small area: as many as fit at a readable scale.
        let l = tile_layout(64, 16, 16, 30, 18).unwrap();
        assert!(l.shown() >= 1 && l.shown() < 64 && l.tile_w >= 6);
        assert!(tile_layout(0, 16, 16, 30, 18).is_none());
    }

    #[test]
    fn half_blocks_carry_two_pixels_per_cell() {
        // One 2x2 image: top row white, bottom row black.
        let grid = SampleGrid { n: 1, h: 2, w: 2, c: 1, images: vec![255, 255, 0, 0] };
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        HalfBlockGrid { grid: &grid, truecolor: true }.render(Rect::new(0, 0, 2, 1), &mut buf);
        let cell = &buf[(0, 0)];
        assert_eq!(cell.symbol(), "▀");
        assert_eq!(cell.fg, Color::Rgb(255, 255, 255));
        assert_eq!(cell.bg, Color::Rgb(0, 0, 0));
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        HalfBlockGrid { grid: &grid, truecolor: false }.render(Rect::new(0, 0, 2, 1), &mut buf);
        assert_eq!(buf[(0, 0)].fg, Color::Indexed(231));
        assert_eq!(buf[(0, 0)].bg, Color::Indexed(16));
    }

    #[test]
    fn ansi256_maps_primaries_and_greys() {
        assert_eq!(ansi256(255, 0, 0), 196);
        assert_eq!(ansi256(0, 0, 255), 21);
        assert_eq!(ansi256(128, 128, 128), 244);
    }
}
