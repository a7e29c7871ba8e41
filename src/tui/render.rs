//! Pure render functions: `&App` in, a frame out. One function per screen and per panel.
//!
//! - this file: [`draw`] and the dashboard (header, gauge, loss and eval curves, samples, log);
//! - `curves`: the loss and eval curves (per run, or per sweep setting with bands); `table`: the
//!   summary table screen; `hist`: the tangent-alignment panel; `launcher`: the launcher screen; `overlays`: help
//!   and confirmations; `style`: colours and the pieces they all use.

mod curves;
mod heatmap;
mod hist;
mod launcher;
mod overlays;
mod style;
mod table;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph};
use ratatui::Frame;

use super::app::{App, Grid, ImageSlot, Overlay, Panel, Screen};
use super::series::{fmt_duration, fmt_num};
use super::widgets::HalfBlockGrid;
use curves::draw_curves;
use hist::draw_hist;
use launcher::draw_launcher;
use overlays::{draw_confirm, draw_help};
use style::{centered_note, filter_prompt, hints, panel_block, state_style, title_line, ACCENT, DIM};
use table::draw_table;

pub use hist::resample_counts;

/// Draws the whole UI.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    match app.screen {
        Screen::Launcher => draw_launcher(frame, app, area),
        Screen::Dashboard => draw_dashboard(frame, app, area),
        Screen::Table => draw_table(frame, app, area),
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
    let sweep = app.runs.iter().any(|r| !r.swept.is_empty());
    let footer_keys: &[(&str, &str)] = if app.read_only && sweep {
        &[
            ("?", "help"),
            ("T", "table"),
            ("g", "per setting/run"),
            ("/", "filter"),
            ("[ ]", "smoothing"),
            ("x", "step/kimg/wall"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("n", "next run"),
            ("q", "quit"),
        ]
    } else if app.read_only {
        &[
            ("?", "help"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("l", "log-y"),
            ("x", "step/kimg/wall"),
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
    let footer_line = if app.filter_editing { filter_prompt(&app.filter) } else { hints(footer_keys, footer.width) };
    frame.render_widget(Paragraph::new(footer_line), footer);
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

fn draw_samples(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let run = app.shown_run();
    let ema = run.and_then(|r| app.shown_ema(r));
    let history = run.map_or(0, |r| r.sample_history.len());
    let step = match ema {
        Some(g) if history > 1 => format!("step {} · {} of {history} (, .)", g.step, history - app.sample_back.min(history - 1)),
        Some(g) => format!("step {}", g.step),
        None => String::new(),
    };
    let block = panel_block(title_line(Panel::Samples.title(), step, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(run) = run else {
        centered_note(frame, inner, "no samples yet");
        return;
    };
    if ema.is_none() && run.samples_raw.is_none() {
        centered_note(frame, inner, "no samples yet · s: sample now");
        return;
    }
    // Raw-weight samples are drawn from checkpoints of a live run; a run on disk has EMA only.
    let with_raw = run.samples_raw.is_some() || run.state.is_active();
    let columns: Vec<(&str, Option<&Grid>)> =
        if with_raw { vec![("EMA", ema), ("raw", run.samples_raw.as_ref())] } else { vec![("EMA", ema)] };
    let run_index = app.runs.iter().position(|r| std::ptr::eq(r, run)).unwrap_or(0);
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
            if app.graphics {
                app.image_slots.borrow_mut().push(ImageSlot { run: run_index, raw: label == "raw", step: g.step, area: img });
            }
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
