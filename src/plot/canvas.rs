//! What every figure shares: the embedded font, writing one drawing as PNG (through our own
//! encoder) and as SVG beside it, and turning plotters' errors into ours.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::{Error, Result};

/// DejaVu Sans (assets/fonts), the only font plots use: no system fonts are looked up.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub(super) const FAMILY: &str = "sans-serif";

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::msg("the embedded plot font (assets/fonts/DejaVuSans.ttf) does not parse"))
    }
}

/// A figure: draws itself on any plotters backend.
pub(super) trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Plotters' error, as ours.
pub(super) fn drawn<T, E: std::fmt::Debug>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::msg(format!("drawing a plot: {e:?}")))
}

/// Writes `figure` to `png` and to the `.svg` beside it; returns both paths.
pub(super) fn save(figure: &impl Figure, png: &Path) -> Result<(PathBuf, PathBuf)> {
    ensure_font()?;
    let (w, h) = figure.size();
    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        drawn(root.fill(&WHITE))?;
        figure.draw(&root)?;
        drawn(root.present())?;
    }
    crate::image_io::write_png(png, w as usize, h as usize, 3, &pixels)?;
    let svg = png.with_extension("svg");
    {
        let root = SVGBackend::new(&svg, (w, h)).into_drawing_area();
        drawn(root.fill(&WHITE))?;
        figure.draw(&root)?;
        root.present().map_err(|e| Error::file(&svg, format!("cannot write: {e:?}")))?;
    }
    Ok((png.to_path_buf(), svg))
}

pub(super) fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// The figure's title across the top (smaller when a long one would not fit); returns the area
/// under it.
pub(super) fn titled<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str) -> Result<DrawingArea<DB, Shift>> {
    // DejaVu Sans averages ~0.55 em a character
    let fits = root.dim_in_pixel().0 as f64 / (0.58 * title.chars().count().max(1) as f64);
    drawn(root.titled(title, (FAMILY, fits.clamp(12.0, 22.0)).into_font().color(&BLACK)))
}

/// Height of a figure's title.
pub(super) const TITLE_H: u32 = 44;

/// Columns and rows of a grid of `n` panels, at most `cols` a row.
pub(super) fn grid(cols: usize, n: usize) -> (usize, usize) {
    let cols = cols.clamp(1, n.max(1));
    (cols, n.div_ceil(cols).max(1))
}

/// A panel's chart: f64 on both axes.
pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A panel's chart in `cell`: its caption, margins and label areas, on the ranges `x` and `y`.
pub(super) fn chart<'a, DB: DrawingBackend>(
    cell: &'a DrawingArea<DB, Shift>,
    caption: &str,
    caption_size: u32,
    x: (f64, f64),
    y: (f64, f64),
) -> Result<Chart<'a, DB>> {
    drawn(
        ChartBuilder::on(cell)
            .caption(caption, (FAMILY, caption_size))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.0..x.1, y.0..y.1),
    )
}

/// Axes with their labels, and a light grid.
pub(super) fn axes<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>, x_label: &str, y_label: &str) -> Result<()> {
    drawn(
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw(),
    )
}

/// The legend of the labelled series, in a box at `position`.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>, position: SeriesLabelPosition) -> Result<()> {
    drawn(
        chart
            .configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(190, 190, 190))
            .label_font((FAMILY, 12))
            .draw(),
    )
}
