//! A histogram over training as a heat map: x the probes (oldest left), y the metric's bins
//! (high values on top), each column normalised to its own largest bin, drawn with shade
//! characters in the loss's colour. One panel per loss, side by side.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::DIM;
use crate::tui::app::HistRow;
use crate::tui::series::fmt_num;

/// Shades from empty to the column's largest bin.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// `(loss, colour, history)` panels side by side in `area`.
pub(super) fn draw_heatmaps(frame: &mut Frame, area: Rect, panels: &[(String, Color, &[HistRow])]) {
    if panels.is_empty() {
        return;
    }
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, panels.len() as u32); panels.len()]).spacing(1).split(area);
    for ((loss, color, history), a) in panels.iter().zip(cols.iter()) {
        if a.height < 4 || a.width < 8 || history.is_empty() {
            continue;
        }
        let [head, body, foot] = Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(*a);
        let last = &history[history.len() - 1];
        let (lo, hi) = (last.edges.first().copied().unwrap_or(0.0), last.edges.last().copied().unwrap_or(1.0));
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(loss.to_uppercase(), Style::new().fg(*color).bold()),
                Span::styled(format!(" {} probes · y {}..{}", history.len(), fmt_num(lo), fmt_num(hi)), Style::new().fg(DIM)),
            ])),
            head,
        );
        let rows = shade_rows(history, body.width as usize, body.height as usize);
        let lines: Vec<Line> = rows.into_iter().map(|r| Line::styled(r, Style::new().fg(*color))).collect();
        frame.render_widget(Paragraph::new(lines), body);
        let (first, last_step) = (history[0].step, last.step);
        let (a_s, b_s) = (format!("step {first}"), format!("{last_step}"));
        let pad = (foot.width as usize).saturating_sub(a_s.len() + b_s.len());
        frame.render_widget(Paragraph::new(format!("{a_s}{}{b_s}", " ".repeat(pad))).fg(DIM), foot);
    }
}

/// The heat map as `height` text rows of `width` shade characters (top row: the highest bins).
/// Column `c` shows probe `c * n / width`; each column is scaled to its densest row.
pub fn shade_rows(history: &[HistRow], width: usize, height: usize) -> Vec<String> {
    let n = history.len();
    if n == 0 || width == 0 || height == 0 {
        return Vec::new();
    }
    let mut grid = vec![vec![' '; width]; height];
    for (c, col) in (0..width).map(|c| (c, &history[(c * n / width).min(n - 1)])) {
        let bins = col.counts.len();
        if bins == 0 {
            continue;
        }
        // density per row (bottom row = lowest bins): the mean count of the bins whose centre
        // falls in it, else of the bin under its centre (rows finer than bins), so unequal
        // numbers of bins per row do not stripe the picture
        let cells: Vec<f64> = (0..height)
            .map(|r| {
                let inside: Vec<u64> = (0..bins).filter(|b| ((2 * b + 1) * height / (2 * bins)) == r).map(|b| col.counts[b]).collect();
                if inside.is_empty() {
                    col.counts[((2 * r + 1) * bins / (2 * height)).min(bins - 1)] as f64
                } else {
                    inside.iter().sum::<u64>() as f64 / inside.len() as f64
                }
            })
            .collect();
        let max = cells.iter().copied().fold(0.0, f64::max);
        if max <= 0.0 {
            continue;
        }
        for (r, &v) in cells.iter().enumerate() {
            let level = ((v / max) * (SHADES.len() - 1) as f64).round() as usize;
            grid[height - 1 - r][c] = SHADES[level];
        }
    }
    grid.into_iter().map(|r| r.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_moving_up_over_training_shows_as_a_rising_band() {
        // three probes, 4 bins: the mass sits in bin 0, then 2, then 3
        let row = |step, counts: Vec<u64>| HistRow { step, edges: vec![0.0, 0.25, 0.5, 0.75, 1.0], counts, mean: None };
        let history = [row(10, vec![8, 0, 0, 0]), row(20, vec![0, 1, 8, 0]), row(30, vec![0, 0, 0, 8])];
        let rows = shade_rows(&history, 3, 4);
        assert_eq!(rows, vec!["  █", " █ ", " ░ ", "█  "]);
        // wider than the history: each probe spans columns; no history: nothing
        assert_eq!(shade_rows(&history, 6, 4)[3], "██    ");
        assert!(shade_rows(&[], 6, 4).is_empty());
    }
}
