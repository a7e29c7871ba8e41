//! The launcher screen: presets and run folders, with a preview of the selected one.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{hints, panel_block, state_style, ACCENT, DIM};
use crate::tui::app::{App, LauncherTab};

pub(super) fn draw_launcher(frame: &mut Frame, app: &App, area: Rect) {
    let l = &app.launcher;
    let [header, body, footer] = Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let mut head =
        vec![Span::styled(" ayt ", Style::new().fg(Color::Black).bg(ACCENT).bold()), Span::styled(" launcher ", Style::new().bold())];
    if let Some(run) = app.live_run() {
        head.push(Span::styled(format!(" {} ", run.state.label()), state_style(run.state)));
        head.push(Span::raw(format!(" {} step {}/{}", run.name, run.progress.step, run.progress.total)));
    }
    if !app.queue.is_empty() {
        head.push(Span::raw(format!(" · queue {}", app.queue.len())));
    }
    frame.render_widget(Paragraph::new(Line::from(head)), header);
    let [list_area, preview_area] = Layout::horizontal([Constraint::Percentage(36), Constraint::Percentage(64)]).areas(body);
    let tab = |name: &'static str, on: bool| {
        if on {
            Span::styled(format!(" {name} "), Style::new().fg(Color::Black).bg(ACCENT).bold())
        } else {
            Span::styled(format!(" {name} "), Style::new().fg(DIM))
        }
    };
    let title = Line::from(vec![tab("Presets", l.tab == LauncherTab::Presets), Span::raw(" "), tab("Runs", l.tab == LauncherTab::Runs)]);
    let block = panel_block(title, true);
    let (items, selected, preview_title, preview): (Vec<ListItem>, usize, String, String) = match l.tab {
        LauncherTab::Presets => (
            l.presets
                .iter()
                .map(|p| {
                    let style = if p.preset.is_ok() { Style::new() } else { Style::new().fg(Color::Red) };
                    ListItem::new(Line::styled(p.name.clone(), style))
                })
                .collect(),
            l.selected_preset,
            l.current_preset().map(|p| p.path.display().to_string()).unwrap_or_default(),
            l.current_preset().map(|p| p.preview()).unwrap_or_else(|| "no presets found in presets/ or the config dir".into()),
        ),
        LauncherTab::Runs => (
            l.runs.iter().map(|r| ListItem::new(r.name.clone())).collect(),
            l.selected_run,
            l.current_run().map(|r| r.dir.display().to_string()).unwrap_or_default(),
            l.current_run().map(|r| r.summary.clone()).unwrap_or_else(|| "no runs yet".into()),
        ),
    };
    let list = List::new(items).block(block).highlight_style(Style::new().fg(Color::Black).bg(ACCENT).bold()).highlight_symbol("▶ ");
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, list_area, &mut state);
    let pblock = panel_block(Line::from(Span::styled(format!(" {preview_title} "), Style::new().bold())), false);
    frame.render_widget(
        Paragraph::new(Text::from(preview)).block(pblock).wrap(Wrap { trim: false }).scroll((l.preview_scroll, 0)),
        preview_area,
    );
    let keys: &[(&str, &str)] = match l.tab {
        LauncherTab::Presets => {
            &[("enter", "start"), ("a", "queue"), ("↑↓", "select"), ("tab", "runs"), ("pgdn", "scroll"), ("d", "dashboard"), ("q", "quit")]
        }
        LauncherTab::Runs => &[("enter", "open"), ("r", "resume"), ("↑↓", "select"), ("tab", "presets"), ("d", "dashboard"), ("q", "quit")],
    };
    frame.render_widget(Paragraph::new(hints(keys, footer.width)), footer);
}
