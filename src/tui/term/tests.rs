use super::*;
use crate::paths::RunDir;

fn idle_app() -> App {
    App::new(Launcher::new(Vec::new(), Vec::new()))
}

#[test]
fn reload_lists_the_runs_of_the_home_the_ui_was_started_with() {
    // A home named like `--home` does (not $AYT_HOME, which points elsewhere or nowhere).
    let tmp = tempfile::tempdir().unwrap();
    let paths = Paths { home: tmp.path().join("home") };
    let run = RunDir::new(paths.runs().join("only-in-this-home"));
    std::fs::create_dir_all(run.path()).unwrap();
    std::fs::write(run.log_file(), b"").unwrap();
    let (mut lp, _raw) = Loop::new(idle_app(), paths, None, None, HashMap::new());
    assert!(lp.app.launcher.runs.is_empty());
    lp.effects(vec![Effect::Reload]);
    let names: Vec<&str> = lp.app.launcher.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["only-in-this-home"]);
}

/// `ayt view SWEEP` while the sweep runs: a member whose run log appears joins the view, with
/// its swept values, at the next look (every 2 s).
#[test]
fn a_viewed_sweep_gains_members_as_they_start() {
    use crate::store::{RunLogWriter, RunMeta};
    use crate::sweep::{Plan, PlannedMember};
    let tmp = tempfile::tempdir().unwrap();
    let dir = SweepDir::new(tmp.path().join("sweep"));
    let member = |index: usize, loss: &str| PlannedMember {
        index,
        label: format!("{index:03}-loss={loss}"),
        values: vec![("train.loss".into(), toml::Value::String(loss.into()))],
        overrides: Vec::new(),
        iterations: 3,
        preset_toml: String::new(),
    };
    let plan = Plan { name: "s".into(), members: vec![member(0, "l2"), member(1, "mfd")], ..Default::default() };
    std::fs::create_dir_all(&dir.root).unwrap();
    dir.write_plan(&plan).unwrap();
    let start = |label: &str| {
        let run = RunDir::new(dir.run_dir(label));
        std::fs::create_dir_all(run.path()).unwrap();
        let w = RunLogWriter::create(run.log_file(), &RunMeta::new("name = \"m\"\n", 0, "disks", "00")).unwrap();
        w.scalar("loss", 1, 0.1, 1.0, 0.5).unwrap();
        w.close().unwrap();
    };
    start("000-loss=l2");
    let viewed = crate::tui::runs::load_view(std::slice::from_ref(&dir.root), &Paths { home: tmp.path().into() }).unwrap();
    assert_eq!(viewed.runs.len(), 1);
    let dirs = viewed.runs.iter().filter_map(|r| r.dir.clone()).map(|d| (d.clone(), mtime(&d))).collect();
    let (mut lp, _raw) = Loop::new(App::viewer(viewed.runs), Paths { home: tmp.path().into() }, None, None, dirs);
    lp.sweeps = viewed.sweeps;
    lp.follow_sweeps();
    assert_eq!(lp.app.runs.len(), 1, "no new member yet");
    start("001-loss=mfd");
    lp.follow_sweeps();
    assert_eq!(lp.app.runs.len(), 2);
    assert_eq!(lp.app.runs[1].swept, vec![("train.loss".to_string(), "mfd".to_string())]);
    assert!(lp.app.log.iter().any(|l| l.contains("001-loss=mfd started")), "{:?}", lp.app.log);
    lp.follow_sweeps();
    assert_eq!(lp.app.runs.len(), 2, "added once");
}

/// A key -> effect -> command round trip through `run_loop` on a test backend: an engine
/// that has started a run, keys from a channel, commands read back from the engine's side.
#[test]
fn keys_become_engine_commands_and_a_confirmed_quit_ends_the_loop() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let (cmd_tx, cmd_rx) = unbounded();
    let (key_tx, key_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    let (_captured_tx, captured_rx) = unbounded::<String>();
    let mut app = idle_app();
    app.on_event(Event::Started { run_dir: "/r/a".into(), name: "a".into(), start_step: 0, total_steps: 100, params: 1 });
    let home = tempfile::tempdir().unwrap();
    let (mut lp, raw_rx) = Loop::new(app, Paths { home: home.path().into() }, Some(cmd_tx), None, HashMap::new());
    let ui = std::thread::spawn(move || {
        let mut terminal = Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        let result = run_loop(&mut terminal, &mut lp, key_rx, event_rx, captured_rx, raw_rx, &mut |_| {});
        (result, lp, crate::tui::buffer_text(terminal.backend().buffer()))
    });
    let press = |c: char| key_tx.send(TermEvent::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))).unwrap();
    let command = || cmd_rx.recv_timeout(Duration::from_secs(10)).map(|c| format!("{c:?}")).expect("a command");
    key_tx.send(TermEvent::Resize(100, 30)).unwrap();
    press(' ');
    assert_eq!(command(), "Pause");
    // The engine answers; `p` is handled after it (each turn drains the pending events), so
    // the next space sees the run paused.
    event_tx.send(Event::Paused { step: 3 }).unwrap();
    press('p');
    assert_eq!(command(), "Probe");
    press(' ');
    assert_eq!(command(), "Resume");
    press('c');
    assert_eq!(command(), "Checkpoint");
    press('s');
    assert_eq!(command(), "SampleNow");
    press('S');
    press('y');
    assert_eq!(command(), "Stop");
    press('q');
    press('y');
    assert_eq!(command(), "Quit");
    // Quitting waits for the engine to end the run.
    event_tx.send(Event::Finished { run_dir: "/r/a".into(), step: 5, stopped_early: true, final_loss: 0.5, wall_s: 1.0 }).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ui.is_finished() {
        assert!(Instant::now() < deadline, "the loop did not exit after the run ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (result, lp, screen) = ui.join().unwrap();
    result.unwrap();
    assert!(lp.app.exit && lp.app.quitting);
    assert_eq!(lp.app.live_run().unwrap().state, crate::tui::app::RunState::Stopped);
    assert!(cmd_rx.try_recv().is_err(), "no other command");
    assert!(screen.contains(" ayt "), "frames went to the test backend:\n{screen}");
}
