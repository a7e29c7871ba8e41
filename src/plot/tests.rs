use super::*;
use crate::metrics::hist::Histogram;

fn pixels(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let (w, h, c, px) = crate::image_io::read_png(path).unwrap();
    assert_eq!(c, 3);
    (w, h, px)
}

/// Where pixels of exactly `colour` are: (count, mean x, mean y).
fn find(w: usize, px: &[u8], colour: [u8; 3]) -> (usize, f64, f64) {
    let hits: Vec<(usize, usize)> = px.chunks(3).enumerate().filter(|(_, p)| *p == colour).map(|(i, _)| (i % w, i / w)).collect();
    let n = hits.len().max(1) as f64;
    (hits.len(), hits.iter().map(|p| p.0 as f64).sum::<f64>() / n, hits.iter().map(|p| p.1 as f64).sum::<f64>() / n)
}

#[test]
fn line_panels_are_titled_labelled_with_legends_bands_and_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("fd.png");
    let l2 = Series {
        label: "l2 (2 seeds)".into(),
        colour: loss_colour("l2"),
        points: vec![(0.0, 90.0), (1.0, 60.0), (f64::NAN, 0.0), (2.0, 40.0)],
        band: vec![(0.0, 85.0, 95.0), (1.0, 50.0, 70.0), (2.0, 30.0, 50.0)],
        dashed: false,
    };
    let mfd = Series { label: "mfd".into(), colour: loss_colour("mfd"), points: vec![(0.0, 90.0), (2.0, 20.0)], ..Default::default() };
    let chance = Series { label: String::new(), colour: [40, 40, 40], points: vec![(0.0, 50.0), (2.0, 50.0)], band: vec![], dashed: true };
    let figure = LineFigure {
        title: "FD-evalnet against kimg".into(),
        x_label: "kimg".into(),
        y_labels: vec!["FD-evalnet".into()],
        cols: 2,
        x: (0.0, 2.0),
        y_rows: vec![(20.0, 95.0)],
        panels: vec![
            LinePanel { title: "batch 8".into(), series: vec![l2, chance] },
            LinePanel { title: "batch 64".into(), series: vec![mfd] },
        ],
    };
    line_panels(&figure, &png).unwrap();
    let (w, h, px) = pixels(&png);
    assert_eq!((w, h), (2 * 520, 44 + 340));
    let (red, red_x, _) = find(w, &px, loss_colour("l2"));
    let (green, green_x, _) = find(w, &px, loss_colour("mfd"));
    assert!(red > 200 && green > 200, "both lines drawn: {red} red, {green} green pixels");
    assert!(red_x < 520.0 && green_x > 520.0, "each in its own panel");
    // the band: L2's colour at 18% over white, around the line
    let tint = |c: u8| (255.0 + (c as f64 - 255.0) * 0.18).round() as u8;
    let band = [tint(228), tint(88), tint(64)];
    let near = px.chunks(3).filter(|p| p.iter().zip(&band).all(|(a, b)| (*a as i32 - *b as i32).abs() <= 2)).count();
    assert!(near > 2000, "the band is shaded: {near} pixels");
    let svg = std::fs::read_to_string(png.with_extension("svg")).unwrap();
    for text in ["FD-evalnet against kimg", "batch 8", "batch 64", "kimg", "FD-evalnet", "l2 (2 seeds)", "mfd"] {
        assert!(svg.contains(&format!("\n{text}\n</text>")), "the SVG has the text {text:?}");
    }
}

#[test]
fn overlaid_histograms_show_each_loss_and_the_chance_line() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("probe.png");
    let h = |counts: Vec<i64>| Histogram { edges: vec![0.0, 0.25, 0.5, 0.75, 1.0], counts };
    let panel = HistPanel {
        title: "normal-energy fraction rho".into(),
        x_label: "rho".into(),
        series: vec![("l2".into(), h(vec![0, 0, 1, 9])), ("mfd".into(), h(vec![9, 1, 0, 0]))],
        reference: Some(0.9),
    };
    overlaid_histograms("tangent alignment at step 300", &[panel.clone(), panel], &png).unwrap();
    let (w, h, px) = pixels(&png);
    assert_eq!((w, h), (640, 44 + 2 * 260));
    let (_, red_x, _) = find(w, &px, loss_colour("l2"));
    let (_, green_x, _) = find(w, &px, loss_colour("mfd"));
    assert!(green_x < red_x, "MFD's mass near 0, L2's near 1: {green_x} vs {red_x}");
    let svg = std::fs::read_to_string(png.with_extension("svg")).unwrap();
    for text in ["tangent alignment at step 300", "L2 (n = 10)", "MFD (n = 10)", "random directions (closed form)", "density", "rho"] {
        assert!(svg.contains(&format!("\n{text}\n</text>")), "the SVG has the text {text:?}");
    }
}

#[test]
fn a_heat_map_puts_each_probe_mass_at_its_bin_height() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("h.png");
    let blue = [0, 0, 255];
    // two probes, 2 bins: mass low, then high
    let figure = HeatFigure {
        title: "rho over training".into(),
        x_label: "probe".into(),
        y_label: "rho".into(),
        y: (0.0, 1.0),
        cols: 1,
        panels: vec![HeatPanel { title: "MFD".into(), colour: blue, probes: vec![vec![5, 0], vec![0, 5]] }],
    };
    heatmaps(&figure, &png).unwrap();
    let (w, _, px) = pixels(&png);
    let hits: Vec<(usize, usize)> = px.chunks(3).enumerate().filter(|(_, p)| *p == blue).map(|(i, _)| (i % w, i / w)).collect();
    let mid_x = hits.iter().map(|p| p.0).sum::<usize>() / hits.len();
    let mean_y = |left: bool| {
        let ys: Vec<usize> = hits.iter().filter(|p| (p.0 < mid_x) == left).map(|p| p.1).collect();
        ys.iter().sum::<usize>() as f64 / ys.len() as f64
    };
    assert!(mean_y(true) > mean_y(false) + 50.0, "the first probe's mass is low (larger y), the second's high");
    assert_eq!(heat::shade([0, 0, 255], 0.0), plotters::style::RGBColor(255, 255, 255));
}
