//! Keys for comparing runs: the filter being typed, smoothing, drawing per setting, and the
//! summary table screen.

use crossterm::event::{KeyCode, KeyEvent};

use super::{quit, Effect};
use crate::tui::app::{App, Screen};

/// Keys that do the same on the dashboard and the table; `true` when `key` was one.
pub(super) fn shared_key(app: &mut App, key: KeyEvent) -> bool {
    match key.code {
        KeyCode::Char('g') => {
            app.grouped = !app.grouped;
            app.table.cursor = 0;
            let what = if app.drawing_groups() { "per sweep setting (mean, min-max band over seeds)" } else { "per run" };
            app.push_log(format!("runs drawn {what}"));
        }
        KeyCode::Char('[') => app.step_smoothing(-1),
        KeyCode::Char(']') => app.step_smoothing(1),
        KeyCode::Char('/') => app.filter_editing = true,
        KeyCode::Char('T') => {
            app.screen = if app.screen == Screen::Table { Screen::Dashboard } else { Screen::Table };
        }
        _ => return false,
    }
    true
}

/// Typing the filter: characters add, backspace removes, enter keeps it, esc clears it.
pub(super) fn filter_key(app: &mut App, key: KeyEvent) {
    match key.code {
        KeyCode::Char(c) => app.filter.push(c),
        KeyCode::Backspace => {
            app.filter.pop();
        }
        KeyCode::Enter => app.filter_editing = false,
        KeyCode::Esc => {
            app.filter.clear();
            app.filter_editing = false;
        }
        _ => {}
    }
    app.table.cursor = 0;
}

/// The summary table: left/right pick the sort column, `o` flips the order, up/down move the
/// cursor, enter shows the row's (first) run on the dashboard.
pub(super) fn table_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if shared_key(app, key) {
        return Vec::new();
    }
    let table = app.summary_table();
    let columns = table.columns.len().max(1);
    match key.code {
        KeyCode::Char('q') => return quit(app),
        KeyCode::Esc => app.screen = Screen::Dashboard,
        KeyCode::Left => app.table.sort = (app.table.sort.min(columns - 1) + columns - 1) % columns,
        KeyCode::Right => app.table.sort = (app.table.sort.min(columns - 1) + 1) % columns,
        KeyCode::Char('o') => app.table.descending = !app.table.descending,
        KeyCode::Up | KeyCode::Char('k') => app.table.cursor = app.table.cursor.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => app.table.cursor = (app.table.cursor + 1).min(table.rows.len().saturating_sub(1)),
        KeyCode::Enter => {
            if let Some(&run) = table.rows.get(app.table.cursor).and_then(|r| r.runs.first()) {
                app.selected = run;
                app.screen = Screen::Dashboard;
                let name = app.runs[run].name.clone();
                app.push_log(format!("showing {name} (samples, tangents)"));
            }
        }
        KeyCode::Char('r') => return vec![Effect::Reload],
        _ => {}
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent};

    use crate::tui::app::{Overlay, Screen};
    use crate::tui::fixtures::sweep_view;
    use crate::tui::keys::handle_key;

    fn press(app: &mut crate::tui::App, codes: &[KeyCode]) {
        for &c in codes {
            handle_key(app, KeyEvent::from(c));
        }
    }

    #[test]
    fn the_table_sorts_moves_and_shows_the_chosen_run() {
        let mut app = sweep_view(100);
        press(&mut app, &[KeyCode::Char('T')]);
        assert_eq!(app.screen, Screen::Table);
        let fd = app.summary_table().columns.iter().position(|c| c == "final FD").unwrap();
        for _ in 0..fd {
            press(&mut app, &[KeyCode::Right]);
        }
        press(&mut app, &[KeyCode::Char('o')]);
        assert_eq!((app.table.sort, app.table.descending), (fd, true));
        // per setting, highest final FD first: l2, lpips, mfd; the second row is lpips
        press(&mut app, &[KeyCode::Down, KeyCode::Enter]);
        assert_eq!(app.screen, Screen::Dashboard);
        assert_eq!(app.runs[app.selected].swept[0].1, "lpips");
        press(&mut app, &[KeyCode::Char('T'), KeyCode::Left, KeyCode::Esc]);
        assert_eq!((app.screen, app.table.sort), (Screen::Dashboard, fd - 1));
        press(&mut app, &[KeyCode::Char('T'), KeyCode::Char('T')]);
        assert_eq!(app.screen, Screen::Dashboard, "T toggles back");
    }

    #[test]
    fn typing_a_filter_takes_every_key_until_enter_and_esc_clears_it() {
        let mut app = sweep_view(100);
        press(&mut app, &[KeyCode::Char('/'), KeyCode::Char('m'), KeyCode::Char('f'), KeyCode::Char('?'), KeyCode::Backspace]);
        assert!(app.filter_editing && app.overlay == Overlay::None, "? is typed, not help");
        press(&mut app, &[KeyCode::Char('d'), KeyCode::Enter]);
        assert_eq!((app.filter.as_str(), app.filter_editing), ("mfd", false));
        assert_eq!(app.visible_runs(), vec![4, 5]);
        press(&mut app, &[KeyCode::Char('/'), KeyCode::Esc]);
        assert_eq!((app.filter.as_str(), app.visible_runs().len()), ("", 6));
    }

    #[test]
    fn g_and_the_brackets_change_grouping_and_smoothing() {
        let mut app = sweep_view(100);
        assert!(app.drawing_groups());
        press(&mut app, &[KeyCode::Char('g')]);
        assert!(!app.drawing_groups());
        press(&mut app, &[KeyCode::Char(']'), KeyCode::Char(']')]);
        assert_eq!(app.smoothing, 0.99);
        press(&mut app, &[KeyCode::Char('['), KeyCode::Char('['), KeyCode::Char('[')]);
        assert_eq!(app.smoothing, 0.9);
        assert!(app.runs.iter().all(|r| r.loss.smooth.len() == r.loss.raw.len()));
    }
}
