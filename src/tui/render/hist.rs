//! The tangent-alignment panel: probe histograms of the shown run, side by side or overlaid.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LegendPosition, Paragraph, Sparkline};
use ratatui::Frame;

use super::style::{axis_labels, centered_note, panel_block, title_line, Line2, DIM, RUN_COLORS};
use crate::metrics::probe::{display_rank, CHANCE};
use crate::tui::app::{hist_key, App, HistRow, Panel, RunData, DEFAULT_HIST_METRIC};
use crate::tui::series::{bounds, fmt_num};

fn metric_color(metric: &str, i: usize) -> Color {
    match metric {
        "mfd" => Color::Cyan,
        "lpips" => Color::Magenta,
        "l2" => Color::Yellow,
        CHANCE => DIM,
        _ => RUN_COLORS[(i + 3) % RUN_COLORS.len()],
    }
}

/// Histogram rows to show: (loss, histogram name, row) for the selected metric and t range.
fn hist_rows<'a>(app: &App, run: &'a RunData) -> Vec<(String, &'a str, &'a HistRow)> {
    let range = app.hist.t_range.as_deref().unwrap_or("all");
    let metric = app.hist.metric.as_deref().unwrap_or(DEFAULT_HIST_METRIC);
    let mut rows: Vec<(String, &str, &HistRow)> = run
        .hists
        .iter()
        .filter_map(|(name, row)| {
            let (loss, m, r) = hist_key(name);
            (r == range && m == metric).then_some((loss, name.as_str(), row))
        })
        .collect();
    rows.sort_by(|a, b| display_rank(&a.0).cmp(&display_rank(&b.0)).then(a.0.cmp(&b.0)));
    rows
}

pub(super) fn draw_hist(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let mode = match (app.hist.heatmap, app.hist.overlay) {
        (true, _) => "over training",
        (false, true) => "overlaid",
        (false, false) => "side by side",
    };
    let extra = format!(
        "{} · t {} · {mode}",
        app.hist.metric.as_deref().unwrap_or(DEFAULT_HIST_METRIC),
        app.hist.t_range.as_deref().unwrap_or("all"),
    );
    let block = panel_block(title_line(Panel::Hist.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = app.shown_run().map(|r| hist_rows(app, r)).unwrap_or_default();
    if rows.is_empty() {
        let any = app.shown_run().is_some_and(|r| !r.hists.is_empty());
        centered_note(frame, inner, if any { "no probe for this metric / t range · m, t to change" } else { "no probes yet" });
        return;
    }
    match (app.hist.heatmap, app.hist.overlay, app.shown_run()) {
        (true, _, Some(run)) => draw_over_training(frame, run, &rows, inner),
        (false, true, _) => draw_overlaid(frame, &rows, inner),
        _ => draw_side_by_side(frame, &rows, inner),
    }
}

/// A (loss, histogram name, latest row) of the selected metric and t range.
type Shown<'a> = (String, &'a str, &'a HistRow);

/// Each loss's histograms over training, as heat maps (chance left out).
fn draw_over_training(frame: &mut Frame, run: &RunData, rows: &[Shown], inner: Rect) {
    let panels: Vec<(String, Color, &[HistRow])> = rows
        .iter()
        .enumerate()
        .filter(|(_, (m, _, _))| m != CHANCE)
        .filter_map(|(i, (m, name, _))| Some((m.clone(), metric_color(m, i), run.hist_history.get(*name)?.as_slice())))
        .collect();
    super::heatmap::draw_heatmaps(frame, inner, &panels);
}

/// The latest histograms as densities on one chart; chance as a dotted vertical line at its mean.
fn draw_overlaid(frame: &mut Frame, rows: &[Shown], inner: Rect) {
    let series: Vec<Line2> = rows.iter().enumerate().map(|(i, (m, _, row))| (m.to_uppercase(), metric_color(m, i), density(row))).collect();
    let refs: Vec<&[(f64, f64)]> = series.iter().map(|s| s.2.as_slice()).collect();
    let Some((xb, yb)) = bounds(&refs) else { return };
    let yb = [0.0, yb[1]];
    let chance_line: Vec<(f64, f64)> = rows
        .iter()
        .find(|(m, _, _)| m == CHANCE)
        .map(|(_, _, row)| row.mean_value())
        .filter(|m| m.is_finite())
        .map(|m| (0..=8).map(|k| (m, yb[1] * k as f64 / 8.0)).collect())
        .unwrap_or_default();
    let mut datasets: Vec<Dataset> = series
        .iter()
        .map(|(n, c, pts)| Dataset::default().name(n.clone()).marker(Marker::Braille).graph_type(GraphType::Line).fg(*c).data(pts))
        .collect();
    if !chance_line.is_empty() {
        datasets.push(Dataset::default().marker(Marker::Dot).graph_type(GraphType::Scatter).fg(Color::White).data(&chance_line));
    }
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().bounds(xb).labels(axis_labels(xb, false)).style(Style::new().fg(DIM)))
        .y_axis(Axis::default().bounds(yb).labels(vec![Line::from("0"), Line::from(fmt_num(yb[1]))]).style(Style::new().fg(DIM)))
        .legend_position(Some(LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, inner);
}

/// The latest histograms in columns; chance is not a column of its own: each loss's head gives
/// its mean and a `^` marks it under the axis.
fn draw_side_by_side(frame: &mut Frame, rows: &[Shown], inner: Rect) {
    let chance = rows.iter().find(|(m, _, _)| m == CHANCE).map(|(_, _, row)| row.mean_value()).filter(|m| m.is_finite());
    let rows: Vec<_> = rows.iter().filter(|(m, _, _)| m != CHANCE || rows.len() == 1).collect();
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, rows.len() as u32); rows.len()]).spacing(1).split(inner);
    for (i, ((metric, _, row), a)) in rows.iter().zip(cols.iter()).enumerate() {
        if a.height < 3 || a.width < 4 {
            continue;
        }
        let [head, bars, foot] = Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(*a);
        let total: u64 = row.counts.iter().sum();
        let mean = row.mean_value();
        let color = metric_color(metric, i);
        let chance_text = chance.filter(|_| metric != CHANCE).map(|c| format!(" · chance {}", fmt_num(c))).unwrap_or_default();
        let head_text = Line::from(vec![
            Span::styled(metric.to_uppercase(), Style::new().fg(color).bold()),
            // most telling first: a narrow column cuts the count, not the chance value
            Span::styled(format!(" mean {}{chance_text} · n {total}", fmt_num(mean)), Style::new().fg(DIM)),
        ]);
        frame.render_widget(Paragraph::new(head_text), head);
        let data = resample_counts(&row.counts, bars.width as usize);
        frame.render_widget(Sparkline::default().data(&data).style(Style::new().fg(color)), bars);
        let (lo, hi) = (row.edges.first().copied().unwrap_or(0.0), row.edges.last().copied().unwrap_or(0.0));
        let marker = chance.filter(|_| metric != CHANCE);
        frame.render_widget(Paragraph::new(axis_footer(lo, hi, marker, foot.width as usize)).fg(DIM), foot);
    }
}

/// The x axis under a histogram column: its range at the ends and a `^` under `marker` (the
/// chance value) where it does not cover a label.
fn axis_footer(lo: f64, hi: f64, marker: Option<f64>, width: usize) -> String {
    let (lo_s, hi_s) = (fmt_num(lo), fmt_num(hi));
    let pad = width.saturating_sub(lo_s.len() + hi_s.len());
    let mut chars: Vec<char> = format!("{lo_s}{}{hi_s}", " ".repeat(pad)).chars().collect();
    if let Some(m) = marker.filter(|m| m.is_finite() && hi > lo && width > 0) {
        let col = (((m - lo) / (hi - lo)) * width as f64).floor().clamp(0.0, (width - 1) as f64) as usize;
        if chars.get(col) == Some(&' ') {
            chars[col] = '^';
        }
    }
    chars.into_iter().collect()
}

/// Bin counts stretched or squeezed to `width` columns (each column takes its bin's count).
pub fn resample_counts(counts: &[u64], width: usize) -> Vec<u64> {
    if counts.is_empty() || width == 0 {
        return Vec::new();
    }
    (0..width).map(|c| counts[(c * counts.len() / width).min(counts.len() - 1)]).collect()
}

/// Probability density at bin centres (comparable across metrics with different counts).
fn density(row: &HistRow) -> Vec<(f64, f64)> {
    let total: u64 = row.counts.iter().sum();
    if total == 0 || row.edges.len() != row.counts.len() + 1 {
        return Vec::new();
    }
    row.counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let w = (row.edges[i + 1] - row.edges[i]).max(1e-12);
            (0.5 * (row.edges[i] + row.edges[i + 1]), c as f64 / total as f64 / w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_resample_to_columns() {
        assert_eq!(resample_counts(&[1, 2], 4), vec![1, 1, 2, 2]);
        assert_eq!(resample_counts(&[1, 2, 3, 4], 2), vec![1, 3]);
        assert!(resample_counts(&[], 3).is_empty());
    }

    #[test]
    fn the_footer_marks_the_chance_value_between_the_range_labels() {
        assert_eq!(axis_footer(0.0, 1.0, Some(0.5), 12), "0     ^ 1.00");
        assert_eq!(axis_footer(0.0, 1.0, Some(0.99), 12), "0       1.00", "a marker never covers a label");
        assert_eq!(axis_footer(0.0, 1.0, None, 6), "0 1.00");
    }

    #[test]
    fn density_integrates_to_one() {
        let row = HistRow { step: 0, edges: vec![0.0, 0.5, 1.0, 2.0], counts: vec![1, 1, 2], mean: None };
        let d = density(&row);
        let integral: f64 = d.iter().zip(row.edges.windows(2)).map(|((_, p), e)| p * (e[1] - e[0])).sum();
        assert!((integral - 1.0).abs() < 1e-12);
        assert!((row.mean_value() - (0.25 + 0.75 + 3.0) / 4.0).abs() < 1e-12);
    }
}
