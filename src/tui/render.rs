//! Pure render functions: `&App` in, a frame out. One function per screen and per panel.
//!
//! - this file: [`draw`] and the dashboard (header, gauge, loss and eval curves, samples, log);
//! - `hist`: the tangent-alignment panel; `launcher`: the launcher screen; `overlays`: help
//!   and confirmations; `style`: colours and the pieces they all use.

mod heatmap;
mod hist;
mod launcher;
mod overlays;
mod style;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, Gauge, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;

use super::app::{App, Grid, Overlay, Panel, Screen};
use super::series::{bounds, decimate, fmt_duration, fmt_num};
use super::widgets::HalfBlockGrid;
use hist::draw_hist;
use launcher::draw_launcher;
use overlays::{draw_confirm, draw_help};
use style::{axis_labels, centered_note, hints, panel_block, state_style, title_line, Line2, ACCENT, DIM, RUN_COLORS};

pub use hist::resample_counts;

/// Draws the whole UI.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    match app.screen {
        Screen::Launcher => draw_launcher(frame, app, area),
        Screen::Dashboard => draw_dashboard(frame, app, area),
    }
    match app.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(frame, area),
        Overlay::Confirm(c) => draw_confirm(frame, c, area),
    }
}

// ----------------------------------------------------------------------------------- dashboard

fn draw_dashboard(frame: &mut Frame, app: &App, area: Rect) {
    let [header, gauge, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    draw_header(frame, app, header);
    draw_gauge(frame, app, gauge);
    let footer_keys: &[(&str, &str)] = if app.read_only {
        &[
            ("?", "help"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("l", "log-y"),
            ("x", "step/kimg"),
            ("n", "next run"),
            ("r", "reload"),
            ("q", "quit"),
        ]
    } else {
        &[
            ("?", "help"),
            ("space", "pause"),
            ("c", "ckpt"),
            ("s", "sample"),
            ("p", "probe"),
            ("S", "stop"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("L", "launcher"),
            ("q", "quit"),
        ]
    };
    frame.render_widget(Paragraph::new(hints(footer_keys, footer.width)), footer);
    if app.zoom {
        draw_panel(frame, app, app.focus, body);
        return;
    }
    let [top, bottom] = Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body);
    let [curves, samples] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    let [hist, log] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    draw_panel(frame, app, Panel::Curves, curves);
    draw_panel(frame, app, Panel::Samples, samples);
    draw_panel(frame, app, Panel::Hist, hist);
    draw_panel(frame, app, Panel::Log, log);
}

fn draw_panel(frame: &mut Frame, app: &App, panel: Panel, area: Rect) {
    let focused = app.focus == panel;
    match panel {
        Panel::Curves => draw_curves(frame, app, area, focused),
        Panel::Samples => draw_samples(frame, app, area, focused),
        Panel::Hist => draw_hist(frame, app, area, focused),
        Panel::Log => draw_log(frame, app, area, focused),
    }
}

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(" ayt ", Style::new().fg(Color::Black).bg(ACCENT).bold()), Span::raw(" ")];
    match app.shown_run() {
        None => spans.push(Span::styled("no run yet · L: launcher, ?: help", Style::new().fg(DIM))),
        Some(run) => {
            spans.push(Span::styled(run.name.clone(), Style::new().bold()));
            spans.push(Span::raw(" "));
            spans.push(Span::styled(format!(" {} ", run.state.label()), state_style(run.state)));
            let p = &run.progress;
            let mut facts = vec![format!("step {}/{}", p.step, p.total)];
            if p.img_per_s > 0.0 {
                facts.push(format!("{:.1} img/s", p.img_per_s));
            }
            if run.state.is_active() {
                facts.push(format!("ETA {}", p.eta_s().map(fmt_duration).unwrap_or_else(|| "--".into())));
            }
            facts.push(format!("{:.2} kimg", p.kimg));
            if let Some(l) = run.loss.last() {
                facts.push(format!("loss {}", fmt_num(l)));
            }
            if app.runs.len() > 1 {
                facts.push(format!("run {}/{}", app.selected + 1, app.runs.len()));
            }
            if !app.queue.is_empty() {
                facts.push(format!("queue {}", app.queue.len()));
            }
            spans.push(Span::raw(format!(" {}", facts.join(" · "))));
        }
    }
    if let Some(a) = &app.alerts.current {
        let style = if a.severe { Style::new().fg(Color::White).bg(Color::Red).bold() } else { Style::new().fg(ACCENT).bold() };
        spans.push(Span::raw("  "));
        spans.push(Span::styled(format!(" ! {} ", a.text), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_gauge(frame: &mut Frame, app: &App, area: Rect) {
    let Some(run) = app.shown_run() else { return };
    let p = &run.progress;
    let label = format!("{:.1}%  {}", p.ratio() * 100.0, fmt_duration(p.wall_s));
    frame.render_widget(
        Gauge::default().ratio(p.ratio()).label(label).use_unicode(true).gauge_style(Style::new().fg(ACCENT).bg(Color::Black)),
        area,
    );
}

fn draw_curves(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let what = if app.runs.len() > 1 { format!("{} runs, smoothed", app.runs.len()) } else { "raw + smoothed".to_string() };
    let extra = format!("{what} · {} · x {}", if app.log_y { "log-y" } else { "linear" }, app.x_axis.label());
    let block = panel_block(title_line(Panel::Curves.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let has_eval = app.runs.iter().any(|r| !r.evals.is_empty());
    let (loss_area, eval_area) = if has_eval && inner.height >= 10 {
        let [a, b] = Layout::vertical([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    if app.runs.iter().all(|r| r.loss.is_empty()) {
        centered_note(frame, loss_area, if app.runs.is_empty() { "no run yet" } else { "waiting for the first steps ..." });
    } else {
        let buckets = loss_area.width.max(8) as usize;
        let single = app.runs.len() == 1;
        let mut points: Vec<(Line2, bool)> = Vec::new();
        for (i, run) in app.runs.iter().enumerate() {
            let xs = run.loss.xs(app.x_axis);
            let color = RUN_COLORS[i % RUN_COLORS.len()];
            if single {
                points.push((("raw".into(), DIM, decimate(xs, &run.loss.raw, buckets, app.log_y)), true));
            }
            let name = if single { "smoothed".to_string() } else { run.name.clone() };
            points.push(((name, color, decimate(xs, &run.loss.smooth, buckets, app.log_y)), false));
        }
        let refs: Vec<&[(f64, f64)]> = points.iter().map(|p| p.0 .2.as_slice()).collect();
        if let Some((xb, yb)) = bounds(&refs) {
            let datasets = points
                .iter()
                .map(|((name, color, pts), raw)| {
                    Dataset::default()
                        .name(name.clone())
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(if *raw { Style::new().fg(*color) } else { Style::new().fg(*color).bold() })
                        .data(pts)
                })
                .collect();
            let chart = Chart::new(datasets)
                .x_axis(Axis::default().bounds(xb).labels(axis_labels(xb, false)).style(Style::new().fg(DIM)))
                .y_axis(Axis::default().bounds(yb).labels(axis_labels(yb, app.log_y)).style(Style::new().fg(DIM)))
                // A legend would cover the curve in a small panel; the title says what is drawn.
                .legend_position((loss_area.width >= 70 || app.runs.len() > 1).then_some(LegendPosition::TopRight))
                .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)));
            frame.render_widget(chart, loss_area);
        }
    }
    if let Some(area) = eval_area {
        draw_evals(frame, app, area);
    }
}

/// Evaluation metrics (FD, ...) on their own axis, under the loss.
fn draw_evals(frame: &mut Frame, app: &App, area: Rect) {
    let mut points: Vec<Line2> = Vec::new();
    for (i, run) in app.runs.iter().enumerate() {
        for (j, (name, h)) in run.evals.iter().enumerate() {
            let label = if app.runs.len() > 1 { format!("{} {name}", run.name) } else { name.clone() };
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

fn draw_samples(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let run = app.shown_run();
    let step = run.and_then(|r| r.samples_ema.as_ref()).map(|g| format!("step {}", g.step)).unwrap_or_default();
    let block = panel_block(title_line(Panel::Samples.title(), step, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(run) = run else {
        centered_note(frame, inner, "no samples yet");
        return;
    };
    if run.samples_ema.is_none() && run.samples_raw.is_none() {
        centered_note(frame, inner, "no samples yet · s: sample now");
        return;
    }
    // Raw-weight samples are drawn from checkpoints of a live run; a run on disk has EMA only.
    let with_raw = run.samples_raw.is_some() || run.state.is_active();
    let columns: Vec<(&str, &Option<Grid>)> =
        if with_raw { vec![("EMA", &run.samples_ema), ("raw", &run.samples_raw)] } else { vec![("EMA", &run.samples_ema)] };
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, columns.len() as u32); columns.len()]).spacing(1).split(inner);
    for ((label, grid), a) in columns.into_iter().zip(areas.iter().copied()) {
        if a.height < 2 {
            continue;
        }
        let [head, img] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(a);
        let caption = match grid {
            Some(g) => format!("{label} · step {}", g.step),
            None if label == "raw" => "raw: next ckpt".to_string(),
            None => label.to_string(),
        };
        frame.render_widget(Paragraph::new(caption).alignment(Alignment::Center).fg(DIM), head);
        if let Some(g) = grid {
            frame.render_widget(HalfBlockGrid { grid: &g.grid, truecolor: app.truecolor }, img);
        }
    }
}
fn log_style(line: &str) -> Style {
    let l = line.to_ascii_lowercase();
    if l.contains("failed") || l.contains("error") || l.contains("panicked") {
        Style::new().fg(Color::Red)
    } else if l.starts_with("paused") || l.contains("stopping") || l.contains("not available") {
        Style::new().fg(Color::Yellow)
    } else if l.starts_with("checkpoint") || l.starts_with("samples") {
        Style::new().fg(DIM)
    } else {
        Style::new()
    }
}

fn draw_log(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let extra = if app.log_scroll > 0 { format!("↑{}", app.log_scroll) } else { String::new() };
    let block = panel_block(title_line(Panel::Log.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    if !app.queue.is_empty() {
        lines.push(Line::styled("queue", Style::new().fg(ACCENT).bold()));
        for (i, q) in app.queue.iter().enumerate() {
            lines.push(Line::from(format!(" {}. {q}", i + 1)));
        }
    }
    let room = (inner.height as usize).saturating_sub(lines.len());
    let end = app.log.len().saturating_sub(app.log_scroll);
    lines.extend(wrapped_tail(app.log.range(..end), inner.width as usize, room).into_iter().map(|(l, style)| Line::styled(l, style)));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// How many of `chars` fit a row of `width`: all, else up to the last space that fits (a word
/// longer than the row is cut).
fn break_at(chars: &[char], width: usize) -> usize {
    if chars.len() <= width {
        return chars.len();
    }
    match chars[..=width].iter().rposition(|c| *c == ' ') {
        Some(i) if i > 0 => i + 1,
        _ => width,
    }
}

/// The last `room` rows of `lines` wrapped at `width` characters (a long line continues on
/// the next rows, indented by two), each row with its line's style.
fn wrapped_tail<'a>(lines: impl DoubleEndedIterator<Item = &'a String>, width: usize, room: usize) -> Vec<(String, Style)> {
    let mut rows: Vec<(String, Style)> = Vec::new();
    for line in lines.rev() {
        if rows.len() >= room || width < 4 {
            break;
        }
        let style = log_style(line);
        let chars: Vec<char> = line.chars().collect();
        let mut parts = Vec::new();
        let mut rest = &chars[..];
        loop {
            let room_here = if parts.is_empty() { width } else { width - 2 };
            let take = break_at(rest, room_here);
            let text: String = rest[..take].iter().collect();
            parts.push(if parts.is_empty() { text } else { format!("  {}", text.trim_start()) });
            rest = &rest[take..];
            if rest.is_empty() {
                break;
            }
        }
        rows.extend(parts.into_iter().rev().map(|p| (p, style)));
    }
    rows.truncate(room);
    rows.reverse();
    rows
}
