//! The summary table screen (`T`): one row per run, or per sweep setting (mean ±sd over its
//! seeds); the sort column is marked in the header, the cursor row highlighted.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};
use ratatui::Frame;

use super::style::{centered_note, filter_prompt, hints, panel_block, title_line, ACCENT, DIM};
use crate::tui::app::App;

pub(super) fn draw_table(frame: &mut Frame, app: &App, area: Rect) {
    let [body, footer] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let t = app.summary_table();
    let sort = app.table.sort.min(t.columns.len().saturating_sub(1));
    let what = match (&t.metric, t.target) {
        (Some(m), Some(target)) => format!("{m}; kimg to FD <= {target:.2} (the median final FD)"),
        (Some(m), None) => m.clone(),
        (None, _) => "no FD evaluations".into(),
    };
    let filter = if app.filter.is_empty() { String::new() } else { format!(" · /{}", app.filter) };
    let title = format!(
        "{} of {} runs{} · {what} · sorted by {} {}{filter}",
        app.visible_runs().len(),
        app.runs.len(),
        if app.drawing_groups() { ", per setting" } else { "" },
        t.columns.get(sort).map_or("", |c| c.as_str()),
        if app.table.descending { "v" } else { "^" }
    );
    let block = panel_block(title_line("Runs", title, true), true);
    let inner = block.inner(body);
    frame.render_widget(block, body);
    if t.rows.is_empty() {
        centered_note(frame, inner, if app.runs.is_empty() { "no runs" } else { "no run matches the filter" });
    } else {
        let texts: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.iter().map(|c| c.text()).collect()).collect();
        let widths: Vec<u16> = (0..t.columns.len())
            .map(|c| {
                let w = texts.iter().map(|r| r[c].chars().count()).chain([t.columns[c].chars().count() + 1]).max().unwrap_or(4);
                w.min(if c == 0 { 28 } else { 16 }) as u16
            })
            .collect();
        let shown = fitting_columns(&widths, sort, inner.width);
        let header = Row::new(shown.iter().map(|&c| {
            let name = &t.columns[c];
            let mark = if c == sort {
                if app.table.descending {
                    "v"
                } else {
                    "^"
                }
            } else {
                ""
            };
            let style = if c == sort { Style::new().fg(ACCENT).bold() } else { Style::new().bold() };
            Cell::from(Span::styled(format!("{name}{mark}"), style))
        }));
        let rows = texts.into_iter().map(|r| Row::new(shown.iter().map(|&c| r[c].clone()).collect::<Vec<_>>()));
        let constraints = shown.iter().map(|&c| Constraint::Length(widths[c]));
        let table = Table::new(rows, constraints).header(header).column_spacing(1).row_highlight_style(Style::new().reversed());
        let mut state = TableState::default().with_selected(Some(app.table.cursor.min(t.rows.len() - 1)));
        frame.render_stateful_widget(table, inner, &mut state);
    }
    let line = if app.filter_editing {
        filter_prompt(&app.filter)
    } else {
        hints(
            &[
                ("<- ->", "sort column"),
                ("o", "order"),
                ("up dn", "row"),
                ("enter", "show run"),
                ("g", "per setting / run"),
                ("/", "filter"),
                ("T esc", "back"),
            ],
            footer.width,
        )
    };
    frame.render_widget(line.style(Style::new().fg(DIM)), footer);
}

/// The columns that fit in `width` at full width, in order: the first, then each next one while
/// it fits; the sort column always (in place of the last that fitted, if need be).
fn fitting_columns(widths: &[u16], sort: usize, width: u16) -> Vec<usize> {
    let mut used = 0u16;
    let mut shown: Vec<usize> = Vec::new();
    for (c, &w) in widths.iter().enumerate() {
        if !shown.is_empty() && used + w > width {
            break;
        }
        shown.push(c);
        used += w + 1;
    }
    if !shown.contains(&sort) && sort < widths.len() {
        if shown.len() > 1 {
            shown.pop();
        }
        shown.push(sort);
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_that_do_not_fit_are_left_off_but_never_the_sort_column() {
        use super::fitting_columns;
        assert_eq!(fitting_columns(&[10, 5, 5, 5], 0, 80), [0, 1, 2, 3]);
        assert_eq!(fitting_columns(&[10, 5, 5, 5], 1, 22), [0, 1, 2], "10 + 1 + 5 + 1 + 5 = 22");
        assert_eq!(fitting_columns(&[10, 5, 5, 5], 1, 21), [0, 1]);
        assert_eq!(fitting_columns(&[10, 5, 5, 5], 3, 21), [0, 3], "the sort column replaces the last that fitted");
        assert_eq!(fitting_columns(&[30], 0, 10), [0], "the first column is always there (cut by the table)");
    }
}
