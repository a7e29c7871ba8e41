//! Colours and the small pieces every screen uses: panel blocks and titles, key hints,
//! centred notes, axis labels.

use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

use crate::tui::app::RunState;
use crate::tui::series::fmt_num;

pub(super) const ACCENT: Color = Color::Cyan;
pub(super) const DIM: Color = Color::DarkGray;
/// Colours of overlaid runs.
pub(super) const RUN_COLORS: [Color; 6] = [Color::Cyan, Color::Magenta, Color::Yellow, Color::Green, Color::Blue, Color::LightRed];

/// A named, coloured line of points.
pub(super) type Line2 = (String, Color, Vec<(f64, f64)>);

pub(super) fn state_style(s: RunState) -> Style {
    let bg = match s {
        RunState::Running => Color::Green,
        RunState::Paused => Color::Yellow,
        RunState::Evaluating | RunState::Checkpointing | RunState::Starting => Color::Blue,
        RunState::Stopping => Color::Magenta,
        RunState::Finished => Color::Cyan,
        RunState::Stopped => Color::Gray,
        RunState::Failed => Color::Red,
        RunState::Viewing => Color::Gray,
    };
    Style::new().fg(Color::Black).bg(bg).add_modifier(Modifier::BOLD)
}

pub(super) fn panel_block(title: Line<'_>, focused: bool) -> Block<'_> {
    let style = if focused { Style::new().fg(ACCENT) } else { Style::new().fg(DIM) };
    Block::new()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Rounded })
        .border_style(style)
        .title(title)
}

pub(super) fn title_line<'a>(name: &'a str, extra: String, focused: bool) -> Line<'a> {
    let name_style = if focused { Style::new().fg(ACCENT).bold() } else { Style::new().bold() };
    let mut spans = vec![Span::styled(format!(" {name} "), name_style)];
    if !extra.is_empty() {
        spans.push(Span::styled(format!("{extra} "), Style::new().fg(DIM)));
    }
    Line::from(spans)
}

/// Key hints that fit `width`, in order.
pub(super) fn hints(pairs: &[(&str, &str)], width: u16) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (k, what) in pairs {
        let n = k.chars().count() + what.chars().count() + 3;
        if used + n > width as usize {
            break;
        }
        used += n;
        spans.push(Span::styled(format!(" {k}"), Style::new().fg(ACCENT).bold()));
        spans.push(Span::styled(format!(" {what} "), Style::new().fg(DIM)));
    }
    Line::from(spans)
}

/// The footer while the run filter is typed (`/`).
pub(super) fn filter_prompt(filter: &str) -> Line<'static> {
    Line::from(vec![Span::styled(" filter: ", Style::new().fg(ACCENT).bold()), Span::raw(format!("{filter}_"))])
}

pub(super) fn centered_note(frame: &mut Frame, area: Rect, text: &str) {
    if area.height == 0 {
        return;
    }
    let y = area.y + area.height.saturating_sub(1) / 2;
    let line = Rect::new(area.x, y, area.width, 1);
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center).fg(DIM), line);
}

pub(super) fn axis_labels(b: [f64; 2], log: bool) -> Vec<Line<'static>> {
    let f = |v: f64| fmt_num(if log { 10f64.powf(v) } else { v });
    let mut mid = (b[0] + b[1]) / 2.0;
    if mid.abs() < 1e-9 * (b[0].abs() + b[1].abs()) {
        mid = 0.0; // not 5.6e-17
    }
    vec![Line::from(f(b[0])), Line::from(f(mid)), Line::from(f(b[1]))]
}
