//! The loss curves (raw faint behind the smoothed line; with several runs each in its colour,
//! or per sweep setting as the mean over seeds with its min-max band) and the eval curves
//! under them.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition};
use ratatui::Frame;

use super::style::{axis_labels, centered_note, panel_block, title_line, Line2, DIM, RUN_COLORS};
use crate::tui::app::{App, Panel};
use crate::tui::bands::bands;
use crate::tui::series::{bounds, decimate};

/// A dataset drawn: (name, colour, points), faint or bold.
struct Drawn {
    line: Line2,
    faint: bool,
}

pub(super) fn draw_curves(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let shown = app.visible_runs();
    let grouped = app.drawing_groups();
    let what = if grouped {
        "per setting: mean, min-max band".to_string()
    } else if shown.len() > 1 {
        format!("{} runs", shown.len())
    } else {
        "raw + smoothed".to_string()
    };
    let filter = if app.filter.is_empty() { String::new() } else { format!(" · /{}", app.filter) };
    let extra =
        format!("{what} · ema {} · {} · x {}{filter}", app.smoothing, if app.log_y { "log-y" } else { "linear" }, app.x_axis.label());
    let block = panel_block(title_line(Panel::Curves.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let has_eval = shown.iter().any(|&i| !app.runs[i].evals.is_empty());
    let (loss_area, eval_area) = if has_eval && inner.height >= 10 {
        let [a, b] = Layout::vertical([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    if shown.iter().all(|&i| app.runs[i].loss.is_empty()) {
        let note = match (app.runs.is_empty(), shown.is_empty()) {
            (true, _) => "no run yet",
            (false, true) => "no run matches the filter",
            _ => "waiting for the first steps ...",
        };
        centered_note(frame, loss_area, note);
    } else {
        let drawn = if grouped { setting_lines(app, &shown, loss_area.width) } else { run_lines(app, &shown, loss_area.width) };
        draw_chart(frame, loss_area, app, &drawn, shown.len());
    }
    if let Some(area) = eval_area {
        draw_evals(frame, app, area);
    }
}

/// Each run's smoothed loss over its raw loss (faint; not when smoothing is off).
fn run_lines(app: &App, shown: &[usize], width: u16) -> Vec<Drawn> {
    let buckets = width.max(8) as usize;
    let single = shown.len() == 1;
    let mut drawn = Vec::new();
    for (k, &i) in shown.iter().enumerate() {
        let run = &app.runs[i];
        let xs = run.loss.xs(app.x_axis);
        let color = if single { RUN_COLORS[0] } else { RUN_COLORS[k % RUN_COLORS.len()] };
        if app.smoothing > 0.0 {
            let name = if single { "raw".to_string() } else { String::new() };
            drawn.push(Drawn {
                line: (name, if single { DIM } else { color }, decimate(xs, &run.loss.raw, buckets, app.log_y)),
                faint: true,
            });
        }
        let name = if single { "smoothed".to_string() } else { run.name.clone() };
        drawn.push(Drawn { line: (name, color, decimate(xs, &run.loss.smooth, buckets, app.log_y)), faint: false });
    }
    drawn
}

/// Each sweep setting's mean loss over its min-max band (faint).
fn setting_lines(app: &App, shown: &[usize], width: u16) -> Vec<Drawn> {
    let mut drawn = Vec::new();
    // two buckets per column: the band's zig-zag fills every braille dot column
    for (k, band) in bands(&app.runs, shown, app.x_axis, 2 * width.max(8) as usize, app.log_y).into_iter().enumerate() {
        let color = RUN_COLORS[k % RUN_COLORS.len()];
        if band.runs > 1 {
            drawn.push(Drawn { line: (String::new(), color, band.fill()), faint: true });
        }
        let name = format!("{} ({})", band.label, band.runs);
        drawn.push(Drawn { line: (name, color, band.mean), faint: false });
    }
    drawn
}

fn draw_chart(frame: &mut Frame, area: Rect, app: &App, drawn: &[Drawn], runs: usize) {
    let refs: Vec<&[(f64, f64)]> = drawn.iter().map(|d| d.line.2.as_slice()).collect();
    let Some((xb, yb)) = bounds(&refs) else { return };
    let datasets = drawn
        .iter()
        .map(|d| {
            let (name, color, pts) = &d.line;
            let style = if d.faint { Style::new().fg(*color).dim() } else { Style::new().fg(*color).bold() };
            let set = Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(style).data(pts);
            // unnamed datasets (bands, raw lines of several runs) stay out of the legend
            if name.is_empty() {
                set
            } else {
                set.name(name.clone())
            }
        })
        .collect();
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().bounds(xb).labels(axis_labels(xb, false)).style(Style::new().fg(DIM)))
        .y_axis(Axis::default().bounds(yb).labels(axis_labels(yb, app.log_y)).style(Style::new().fg(DIM)))
        // A legend would cover the curve in a small panel; the title says what is drawn.
        .legend_position((area.width >= 70 || runs > 1).then_some(LegendPosition::TopRight))
        // a sweep's settings need room: six entries are eight rows
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(75)));
    frame.render_widget(chart, area);
}

/// Evaluation metrics (FD, ...) on their own axis, under the loss.
fn draw_evals(frame: &mut Frame, app: &App, area: Rect) {
    let mut points: Vec<Line2> = Vec::new();
    let shown = app.visible_runs();
    for &i in &shown {
        let run = &app.runs[i];
        for (j, (name, h)) in run.evals.iter().enumerate() {
            let label = if shown.len() > 1 { format!("{} {name}", run.name) } else { name.clone() };
            let color = RUN_COLORS[(i + j + 2) % RUN_COLORS.len()];
            points.push((label, color, decimate(h.xs(app.x_axis), &h.raw, area.width.max(8) as usize, app.log_y)));
        }
    }
    let refs: Vec<&[(f64, f64)]> = points.iter().map(|p| p.2.as_slice()).collect();
    let Some((xb, yb)) = bounds(&refs) else { return };
    let datasets = points
        .iter()
        .map(|(name, color, pts)| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(Block::new().borders(Borders::TOP).border_style(Style::new().fg(DIM)).title(Span::styled(" eval ", Style::new().fg(DIM))))
        .x_axis(Axis::default().bounds(xb).style(Style::new().fg(DIM)))
        .y_axis(Axis::default().bounds(yb).labels(axis_labels(yb, app.log_y)).style(Style::new().fg(DIM)))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, area);
}
