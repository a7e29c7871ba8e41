//! Overlays drawn over either screen: the help and the confirmations.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::style::ACCENT;
use crate::tui::app::Confirm;
use crate::tui::keys::HELP;

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

pub(super) fn draw_help(frame: &mut Frame, area: Rect) {
    let with_heads = HELP.len() as u16 + 2 <= area.height;
    let entries: Vec<&(&str, &str)> = HELP.iter().filter(|(k, _)| with_heads || !k.is_empty()).collect();
    let key_w = entries.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 2;
    let desc_w = entries.iter().map(|(_, d)| d.chars().count()).max().unwrap_or(0);
    let rows_avail = area.height.saturating_sub(2) as usize;
    let columns = if entries.len() <= rows_avail { 1 } else { 2 };
    let per_col = entries.len().div_ceil(columns);
    let col_w = key_w + desc_w + 2;
    let w = (col_w * columns + 2) as u16;
    let h = (per_col + 2) as u16;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(Style::new().fg(ACCENT))
        .title(Span::styled(" Help · any key closes ", Style::new().fg(ACCENT).bold()));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, columns as u32); columns]).split(inner);
    for (c, chunk) in entries.chunks(per_col).enumerate() {
        let lines: Vec<Line> = chunk
            .iter()
            .map(|(k, d)| {
                if k.is_empty() {
                    Line::styled(d.to_string(), Style::new().bold().underlined())
                } else {
                    Line::from(vec![
                        Span::styled(format!(" {k:<w$}", w = key_w - 1), Style::new().fg(ACCENT).bold()),
                        Span::raw(d.to_string()),
                    ])
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), cols[c]);
    }
}

pub(super) fn draw_confirm(frame: &mut Frame, what: Confirm, area: Rect) {
    let (title, text) = match what {
        Confirm::Quit => (" Quit? ", "A run is active. Stop it (with a checkpoint) and quit?"),
        Confirm::Stop => (" Stop the run? ", "Stop the run now (with a checkpoint)? The queue goes on."),
    };
    let r = centered(area, 48.min(area.width), 6);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(Style::new().fg(Color::Yellow))
        .title(Span::styled(title, Style::new().fg(Color::Yellow).bold()));
    let body = Text::from(vec![
        Line::from(text),
        Line::from(""),
        Line::from(vec![
            Span::styled(" y ", Style::new().fg(Color::Black).bg(Color::Yellow).bold()),
            Span::raw(" yes    "),
            Span::styled(" n / esc ", Style::new().fg(Color::Black).bg(Color::Gray).bold()),
            Span::raw(" no"),
        ]),
    ]);
    frame.render_widget(Paragraph::new(body).block(block).wrap(Wrap { trim: true }).alignment(Alignment::Center), r);
}
