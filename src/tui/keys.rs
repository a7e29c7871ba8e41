//! Key handling: a key press changes the [`App`] and returns the effects (engine commands,
//! disk reads, exit) for the event loop to carry out. Pure, so every binding is unit-tested.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Confirm, LauncherTab, Overlay, Panel, RunState, Screen, PANELS};
use crate::engine::{Command, RunRequest};

mod compare;

/// What the event loop must do after a key.
#[derive(Debug)]
pub enum Effect {
    Send(Command),
    /// Read a run folder and show it (read-only) on the dashboard.
    OpenRun(PathBuf),
    /// Re-read the read-only runs from disk.
    Reload,
    /// Leave the UI now.
    Exit,
}

/// The help overlay: (keys, what they do), grouped by heading (keys empty).
pub const HELP: &[(&str, &str)] = &[
    ("", "Run"),
    ("space", "pause / resume the run"),
    ("c", "checkpoint now"),
    ("s", "sample now"),
    ("p", "probe tangent alignment now"),
    ("S", "stop the run (checkpoint; asks first)"),
    ("q  ctrl-c", "quit (asks before stopping a running job)"),
    ("", "Panels"),
    ("tab  shift-tab", "next / previous panel"),
    ("1 2 3 4", "loss / samples / tangents / log"),
    ("z  enter", "zoom the panel full-screen (esc: back)"),
    ("n", "next run (samples, tangents)"),
    (",  .", "older / newer sample grid"),
    ("", "Loss"),
    ("l", "log-y on / off"),
    ("x", "x axis: step / kimg / wall time"),
    ("[  ]", "smoothing weaker / stronger (0 = raw)"),
    ("", "Comparing runs (a sweep: ayt view SWEEP)"),
    ("g", "per sweep setting (mean, min-max band) / per run"),
    ("/", "filter runs by words (enter keeps, esc clears)"),
    ("T", "summary table: <- -> sort column, o order, enter show run"),
    ("", "Tangent alignment"),
    ("m", "metric: all / MFD / LPIPS / L2 ..."),
    ("t", "t range"),
    ("o", "overlaid / side by side"),
    ("h", "heat map over training / latest probe"),
    ("", "Log and screens"),
    ("up down pgup pgdn", "scroll the log (log panel)"),
    ("L", "launcher: presets and runs"),
    ("r", "reload runs read from disk"),
    ("?", "this help"),
];

/// Applies a key to the app.
pub fn handle_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
    match app.overlay {
        Overlay::Help => {
            app.overlay = Overlay::None;
            return if ctrl_c { quit(app) } else { Vec::new() };
        }
        Overlay::Confirm(what) => {
            app.overlay = Overlay::None;
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => confirmed(app, what),
                _ => {
                    app.push_log("cancelled");
                    Vec::new()
                }
            };
        }
        Overlay::None => {}
    }
    if ctrl_c {
        return quit(app);
    }
    if app.filter_editing {
        compare::filter_key(app, key);
        return Vec::new();
    }
    if key.code == KeyCode::Char('?') {
        app.overlay = Overlay::Help;
        return Vec::new();
    }
    match app.screen {
        Screen::Launcher => launcher_key(app, key),
        Screen::Dashboard => dashboard_key(app, key),
        Screen::Table => compare::table_key(app, key),
    }
}

fn confirmed(app: &mut App, what: Confirm) -> Vec<Effect> {
    match what {
        Confirm::Quit => {
            app.quitting = true;
            app.set_live_state(RunState::Stopping);
            app.push_log("stopping the run (checkpoint first), then quitting ...");
            vec![Effect::Send(Command::Quit)]
        }
        Confirm::Stop => {
            app.set_live_state(RunState::Stopping);
            app.push_log("stopping the run (checkpoint first) ...");
            vec![Effect::Send(Command::Stop)]
        }
    }
}

fn quit(app: &mut App) -> Vec<Effect> {
    if app.read_only || !app.job_active() {
        app.exit = true;
        return if app.read_only { vec![Effect::Exit] } else { vec![Effect::Send(Command::Quit), Effect::Exit] };
    }
    app.overlay = Overlay::Confirm(Confirm::Quit);
    Vec::new()
}

/// A run command: refused when viewing, or when no run is active.
fn run_command(app: &mut App, what: &str) -> bool {
    if app.read_only {
        app.push_log(format!("{what}: read-only view (ayt view), no run to control"));
        return false;
    }
    if !app.job_active() {
        app.push_log(format!("{what}: no run is active"));
        return false;
    }
    true
}

fn dashboard_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if compare::shared_key(app, key) {
        return Vec::new();
    }
    match key.code {
        KeyCode::Char('q') => return quit(app),
        KeyCode::Char(' ') if run_command(app, "pause") => {
            let paused = app.live_run().is_some_and(|r| r.state == RunState::Paused);
            app.push_log(if paused { "resume requested" } else { "pause requested" });
            return vec![Effect::Send(if paused { Command::Resume } else { Command::Pause })];
        }
        KeyCode::Char('c') if run_command(app, "checkpoint") => {
            app.set_live_state(RunState::Checkpointing);
            app.push_log("checkpoint requested");
            return vec![Effect::Send(Command::Checkpoint)];
        }
        KeyCode::Char('s') if run_command(app, "sample") => {
            app.set_live_state(RunState::Evaluating);
            app.push_log("samples requested");
            return vec![Effect::Send(Command::SampleNow)];
        }
        KeyCode::Char('p') if run_command(app, "probe") => {
            app.push_log("probe requested");
            return vec![Effect::Send(Command::Probe)];
        }
        KeyCode::Char('S') if run_command(app, "stop") => {
            app.overlay = Overlay::Confirm(Confirm::Stop);
        }
        KeyCode::Tab => cycle_focus(app, 1),
        KeyCode::BackTab => cycle_focus(app, -1),
        KeyCode::Char(c @ '1'..='4') => app.focus = PANELS[(c as u8 - b'1') as usize],
        KeyCode::Char('z') | KeyCode::Enter => app.zoom = !app.zoom,
        KeyCode::Esc => app.zoom = false,
        KeyCode::Char('n') if !app.runs.is_empty() => {
            app.selected = (app.selected + 1) % app.runs.len();
            app.sample_back = 0;
        }
        KeyCode::Char(',') => {
            let n = app.shown_run().map_or(0, |r| r.sample_history.len());
            app.sample_back = (app.sample_back + 1).min(n.saturating_sub(1));
        }
        KeyCode::Char('.') => app.sample_back = app.sample_back.saturating_sub(1),
        KeyCode::Char('l') => app.log_y = !app.log_y,
        KeyCode::Char('x') => app.x_axis = app.x_axis.next(),
        KeyCode::Char('m') => {
            let metrics = app.shown_run().map(|r| r.hist_axes().0).unwrap_or_default();
            app.hist.metric = cycle(&metrics, app.hist.metric.as_deref());
        }
        KeyCode::Char('t') => {
            let ranges = app.shown_run().map(|r| r.hist_axes().1).unwrap_or_default();
            app.hist.t_range = cycle(&ranges, app.hist.t_range.as_deref());
        }
        KeyCode::Char('o') => app.hist.overlay = !app.hist.overlay,
        KeyCode::Char('h') => app.hist.heatmap = !app.hist.heatmap,
        KeyCode::Up if app.focus == Panel::Log => app.log_scroll = (app.log_scroll + 1).min(app.log.len()),
        KeyCode::Down if app.focus == Panel::Log => app.log_scroll = app.log_scroll.saturating_sub(1),
        KeyCode::PageUp if app.focus == Panel::Log => app.log_scroll = (app.log_scroll + 10).min(app.log.len()),
        KeyCode::PageDown if app.focus == Panel::Log => app.log_scroll = app.log_scroll.saturating_sub(10),
        KeyCode::Home if app.focus == Panel::Log => app.log_scroll = app.log.len(),
        KeyCode::End if app.focus == Panel::Log => app.log_scroll = 0,
        KeyCode::Char('L') if !app.read_only => app.screen = Screen::Launcher,
        KeyCode::Char('r') => return vec![Effect::Reload],
        _ => {}
    }
    Vec::new()
}

/// Next value of a "None = all" cycle over `values`.
fn cycle(values: &[String], current: Option<&str>) -> Option<String> {
    match current {
        None => values.first().cloned(),
        Some(c) => values.iter().position(|v| v == c).and_then(|i| values.get(i + 1)).cloned(),
    }
}

fn cycle_focus(app: &mut App, d: isize) {
    let i = PANELS.iter().position(|p| *p == app.focus).unwrap_or(0) as isize;
    app.focus = PANELS[(i + d).rem_euclid(PANELS.len() as isize) as usize];
}

fn launcher_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let l = &mut app.launcher;
    match key.code {
        KeyCode::Char('q') => return quit(app),
        KeyCode::Up | KeyCode::Char('k') => l.move_by(-1),
        KeyCode::Down | KeyCode::Char('j') => l.move_by(1),
        KeyCode::PageUp => l.preview_scroll = l.preview_scroll.saturating_sub(10),
        KeyCode::PageDown => l.preview_scroll = l.preview_scroll.saturating_add(10),
        KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
            l.tab = match l.tab {
                LauncherTab::Presets => LauncherTab::Runs,
                LauncherTab::Runs => LauncherTab::Presets,
            };
            l.preview_scroll = 0;
        }
        KeyCode::Esc | KeyCode::Char('d') if !app.runs.is_empty() => {
            app.screen = Screen::Dashboard;
        }
        KeyCode::Enter | KeyCode::Char('a') if l.tab == LauncherTab::Presets => {
            let queue_only = key.code == KeyCode::Char('a');
            let Some(entry) = l.current_preset() else { return Vec::new() };
            match &entry.preset {
                Ok(p) => {
                    let request = RunRequest::New {
                        preset: Box::new(p.clone()),
                        preset_dir: entry.path.parent().map(|d| d.to_path_buf()),
                        out: None,
                    };
                    let busy = app.job_active() || !app.queue.is_empty();
                    app.push_log(format!("{} {}", if busy { "queued" } else { "starting" }, crate::engine::run::describe(&request)));
                    app.enqueue(&request);
                    if !queue_only {
                        app.screen = Screen::Dashboard;
                    }
                    return vec![Effect::Send(Command::Start(request))];
                }
                Err(e) => {
                    let msg = format!("{}: {e}", entry.path.display());
                    app.push_log(msg);
                }
            }
        }
        KeyCode::Enter | KeyCode::Char('o') if l.tab == LauncherTab::Runs => {
            if let Some(run) = l.current_run() {
                let dir = run.dir.clone();
                app.screen = Screen::Dashboard;
                return vec![Effect::OpenRun(dir)];
            }
        }
        KeyCode::Char('r') if l.tab == LauncherTab::Runs => {
            if let Some(run) = l.current_run() {
                let request = RunRequest::Resume { run_dir: run.dir.clone() };
                app.push_log(crate::engine::run::describe(&request));
                app.enqueue(&request);
                app.screen = Screen::Dashboard;
                return vec![Effect::Send(Command::Start(request))];
            }
        }
        _ => {}
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;
    use crate::tui::app::{Launcher, PresetEntry, RunData};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }
    fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    fn running_app() -> App {
        let mut app = App::new(Launcher::new(vec![], vec![]));
        app.on_event(Event::Started { run_dir: "/r".into(), name: "r".into(), start_step: 0, total_steps: 10, params: 1 });
        app
    }

    fn sent(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Send(c) => format!("{c:?}").split(['(', ' ']).next().unwrap_or("").to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn run_keys_send_commands() {
        let mut app = running_app();
        assert_eq!(sent(&handle_key(&mut app, ch(' '))), ["Pause"]);
        app.on_event(Event::Paused { step: 1 });
        assert_eq!(sent(&handle_key(&mut app, ch(' '))), ["Resume"]);
        assert_eq!(sent(&handle_key(&mut app, ch('c'))), ["Checkpoint"]);
        assert_eq!(app.live_run().unwrap().state, RunState::Checkpointing);
        app.on_event(Event::Checkpointed { step: 1, path: "/r/c".into() });
        assert_eq!(app.live_run().unwrap().state, RunState::Running);
        assert_eq!(sent(&handle_key(&mut app, ch('s'))), ["SampleNow"]);
        assert_eq!(sent(&handle_key(&mut app, ch('p'))), ["Probe"]);
        assert!(app.log.back().unwrap().contains("probe requested"));
        // Stop asks first; 'n' cancels, 'y' sends.
        assert!(handle_key(&mut app, ch('S')).is_empty());
        assert_eq!(app.overlay, Overlay::Confirm(Confirm::Stop));
        assert!(handle_key(&mut app, ch('n')).is_empty());
        assert_eq!(app.overlay, Overlay::None);
        handle_key(&mut app, ch('S'));
        assert_eq!(sent(&handle_key(&mut app, ch('y'))), ["Stop"]);
        assert_eq!(app.live_run().unwrap().state, RunState::Stopping);
    }

    #[test]
    fn quit_asks_while_a_job_runs() {
        let mut app = running_app();
        assert!(handle_key(&mut app, ch('q')).is_empty());
        assert_eq!(app.overlay, Overlay::Confirm(Confirm::Quit));
        assert_eq!(sent(&handle_key(&mut app, ch('y'))), ["Quit"]);
        assert!(app.quitting && !app.exit, "waits for the engine to stop the run");
        app.on_event(Event::Finished { run_dir: "/r".into(), step: 3, stopped_early: true, final_loss: 1.0, wall_s: 1.0 });
        assert!(app.exit);

        // Idle: quits at once.
        let mut app = App::new(Launcher::new(vec![], vec![]));
        assert_eq!(sent(&handle_key(&mut app, ch('q'))), ["Quit", "Exit"]);
        assert!(app.exit);
        // Ctrl-C works like q.
        let mut app = running_app();
        handle_key(&mut app, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(app.overlay, Overlay::Confirm(Confirm::Quit));
    }

    #[test]
    fn panels_zoom_help_and_toggles() {
        let mut app = running_app();
        handle_key(&mut app, key(KeyCode::Tab));
        assert_eq!(app.focus, Panel::Samples);
        handle_key(&mut app, key(KeyCode::BackTab));
        handle_key(&mut app, key(KeyCode::BackTab));
        assert_eq!(app.focus, Panel::Log);
        handle_key(&mut app, ch('3'));
        assert_eq!(app.focus, Panel::Hist);
        handle_key(&mut app, ch('z'));
        assert!(app.zoom);
        handle_key(&mut app, key(KeyCode::Esc));
        assert!(!app.zoom);
        handle_key(&mut app, ch('?'));
        assert_eq!(app.overlay, Overlay::Help);
        handle_key(&mut app, ch('q'));
        assert_eq!(app.overlay, Overlay::None, "a key closes help without quitting");
        assert!(!app.exit);
        handle_key(&mut app, ch('l'));
        handle_key(&mut app, ch('x'));
        handle_key(&mut app, ch('o'));
        assert!(app.log_y && app.hist.overlay);
        assert_eq!(app.x_axis, crate::tui::series::XAxis::Kimg);
    }

    #[test]
    fn metric_and_t_range_cycle_through_all() {
        let mut app = running_app();
        for name in ["tangent/mfd/rho", "tangent/l2/toward", "tangent/l2/rho_t2"] {
            app.on_probe(crate::tui::app::ProbeHist {
                name: name.into(),
                row: crate::tui::app::HistRow { step: 1, edges: vec![0.0, 1.0], counts: vec![1], mean: None },
            });
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            handle_key(&mut app, ch('m'));
            seen.push(app.hist.metric.clone());
        }
        assert_eq!(seen, [Some("rho".to_string()), Some("toward".to_string()), None]);
        handle_key(&mut app, ch('t'));
        assert_eq!(app.hist.t_range.as_deref(), Some("all"));
        handle_key(&mut app, ch('t'));
        assert_eq!(app.hist.t_range.as_deref(), Some("t1-10"));
    }

    #[test]
    fn read_only_view_refuses_run_commands() {
        let mut app = App::viewer(vec![RunData::new("a", None, RunState::Viewing)]);
        assert!(handle_key(&mut app, ch(' ')).is_empty());
        assert!(app.log.back().unwrap().contains("read-only"));
        assert!(matches!(handle_key(&mut app, ch('r'))[..], [Effect::Reload]));
        assert!(matches!(handle_key(&mut app, ch('q'))[..], [Effect::Exit]));
    }

    #[test]
    fn launcher_starts_queues_and_opens() {
        let dir = std::env::temp_dir().join(format!("ayt-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.toml");
        std::fs::write(&path, "name = \"p\"\n[data]\ndataset = \"disks\"\n[train]\nmode = \"ect\"\nbatch_size = 4\niterations = 10\n")
            .unwrap();
        let runs = vec![crate::tui::app::RunEntry { dir: "/runs/old".into(), name: "old".into(), summary: String::new() }];
        let mut app = App::new(Launcher::new(vec![PresetEntry::load(path)], runs));
        assert_eq!(sent(&handle_key(&mut app, ch('a'))), ["Start"]);
        assert_eq!(app.screen, Screen::Launcher, "a queues and stays");
        assert_eq!(sent(&handle_key(&mut app, key(KeyCode::Enter))), ["Start"]);
        assert_eq!(app.screen, Screen::Dashboard);
        assert_eq!(app.queue.len(), 2);
        handle_key(&mut app, ch('L'));
        handle_key(&mut app, key(KeyCode::Tab));
        let e = handle_key(&mut app, key(KeyCode::Enter));
        assert!(matches!(&e[..], [Effect::OpenRun(d)] if d.ends_with("old")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
