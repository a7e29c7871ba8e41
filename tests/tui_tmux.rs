//! End to end: `ayt tui --preset P --start` in a detached tmux session (120x40); waits for the
//! loss panel and a step count, then pauses (space), opens help (?), quits (q, y) and checks
//! that ayt exited cleanly and the terminal was restored. Skips when tmux is not installed.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn tiny_tui_preset() -> String {
    common::tiny_ect("tiny-tui", 100000, "every = 5\nsample_every = 20\nsample_count = 16\ncheckpoint_every = 0\nkeep_checkpoints = 1")
}

struct Tmux {
    socket: String,
    session: String,
}

/// Whether tmux is here (a missing one fails under `CI=true`, see `common::missing_tool`).
fn tmux_installed() -> bool {
    let here = Command::new("tmux").arg("-V").output().is_ok();
    if !here {
        common::missing_tool("tmux");
    }
    here
}

impl Tmux {
    /// A detached session `w` x `h` on its own socket (`<tag>-<pid>`) running `sh -c cmd`.
    fn start(tag: &str, cmd: &str, (w, h): (u32, u32)) -> Tmux {
        let t = Tmux { socket: format!("{tag}-{}", std::process::id()), session: "ayt".into() };
        let (w, h) = (w.to_string(), h.to_string());
        let o = t.run(&["new-session", "-d", "-s", &t.session, "-x", &w, "-y", &h, "sh", "-c", cmd]);
        assert!(o.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&o.stderr));
        t
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("running tmux")
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", &self.session]).stdout).into_owned()
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.run(&args);
    }
    /// Waits until `ok(screen)`, or panics with the last screen.
    fn wait(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

/// The step count in the header (`step N/M`).
fn header_step(screen: &str) -> Option<u64> {
    let line = screen.lines().next()?;
    let rest = &line[line.find("step ")? + 5..];
    rest.split('/').next()?.trim().parse().ok()
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn ayt_tui_in_tmux_pause_help_quit() {
    if !tmux_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let preset = tmp.path().join("tiny.toml");
    std::fs::write(&preset, tiny_tui_preset()).unwrap();
    let cmd = format!(
        "cd {dir} && AYT_HOME={dir} {bin} tui --preset {preset} --start; echo AYT_EXIT=$?; sleep 120",
        dir = sh_quote(tmp.path()),
        bin = sh_quote(Path::new(env!("CARGO_BIN_EXE_ayt"))),
        preset = sh_quote(&preset),
    );
    let t = Tmux::start("ayt-test", &cmd, (120, 40));

    let s = t.wait("the loss panel and a step count", Duration::from_secs(240), |s| {
        s.contains("Loss") && s.contains("Samples") && header_step(s).is_some_and(|n| n > 0)
    });
    assert!(s.contains("tiny-tui"), "the header names the run:\n{s}");

    t.keys(&["Space"]);
    let s = t.wait("paused", Duration::from_secs(60), |s| s.contains(" paused ") && s.contains("paused at step"));
    let at = header_step(&s).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(header_step(&t.screen()), Some(at), "no steps while paused");

    t.keys(&["?"]);
    t.wait("the help overlay", Duration::from_secs(20), |s| s.contains("Help") && s.contains("pause / resume"));
    t.keys(&["Escape"]);
    t.wait("help to close", Duration::from_secs(20), |s| !s.contains("any key closes"));

    t.keys(&["Space"]);
    t.wait("resumed", Duration::from_secs(60), |s| s.contains("resumed at step"));

    // Sample, checkpoint (raw-weight samples follow), probe, zoom, panels, resize.
    t.keys(&["s"]);
    t.wait("samples", Duration::from_secs(60), |s| s.contains("samples requested") && s.contains("EMA · step"));
    t.keys(&["c"]);
    t.wait("a checkpoint and raw samples", Duration::from_secs(60), |s| s.contains("checkpoint at step") && s.contains("raw · step"));
    t.keys(&["p"]);
    t.wait("a probe's histograms", Duration::from_secs(120), |s| s.contains("probe at step") && !s.contains("no probes yet"));
    t.keys(&["2", "z"]);
    t.wait("the samples panel zoomed", Duration::from_secs(20), |s| s.contains("Samples") && !s.contains("Tangent alignment"));
    // (Escape alone: escape followed at once by another key reads as alt+key.)
    t.keys(&["Escape"]);
    t.wait("all panels back", Duration::from_secs(20), |s| s.contains("Tangent alignment") && s.contains("Loss"));
    t.keys(&["Tab"]);
    t.wait("the focus to move on", Duration::from_secs(20), |s| s.contains("┏ Tangent alignment"));
    t.run(&["resize-window", "-t", &t.session, "-x", "80", "-y", "24"]);
    t.wait("a redraw at 80x24", Duration::from_secs(20), |s| {
        s.lines().count() <= 24 && s.contains("Loss") && s.lines().next().is_some_and(|l| l.chars().count() <= 80)
    });
    t.run(&["resize-window", "-t", &t.session, "-x", "120", "-y", "40"]);

    t.keys(&["q"]);
    t.wait("the quit confirmation", Duration::from_secs(20), |s| s.contains("Quit?"));
    t.keys(&["y"]);
    let s = t.wait("ayt to exit", Duration::from_secs(120), |s| s.contains("AYT_EXIT="));
    assert!(s.contains("AYT_EXIT=0"), "ayt exits with 0:\n{s}");
    assert!(!s.contains("Tangent alignment") && !s.contains("Loss"), "the alternate screen is gone:\n{s}");
    // The run was stopped with a checkpoint, and the log file has the pane's lines.
    let log = std::fs::read_to_string(tmp.path().join("tui.log")).unwrap();
    assert!(log.contains("paused at step") && log.contains("stopped"), "tui.log:\n{log}");
}

#[test]
fn the_terminal_is_restored_after_a_panic() {
    if !tmux_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cmd = format!(
        "cd {dir} && AYT_HOME={dir} AYT_TUI_TEST_PANIC=1 {bin} tui; echo AYT_EXIT=$?; sleep 120",
        dir = sh_quote(tmp.path()),
        bin = sh_quote(Path::new(env!("CARGO_BIN_EXE_ayt"))),
    );
    let t = Tmux::start("ayt-test-panic", &cmd, (100, 30));
    let s = t.wait("ayt to exit", Duration::from_secs(60), |s| s.contains("AYT_EXIT="));
    assert!(s.contains("AYT_EXIT=101"), "a panic exits with 101:\n{s}");
    assert!(s.contains("AYT_TUI_TEST_PANIC"), "the panic message reaches the restored terminal:\n{s}");
    assert!(!s.contains("launcher"), "the alternate screen is gone:\n{s}");
}

/// The README's default job, shortened: phi for the disks, then `quick-disks` in the UI. Its
/// tangent-alignment panel shows the L2, LPIPS and MFD histograms, each beside chance, and the
/// finished run rings the bell (the header shows it).
#[test]
fn the_default_job_shows_l2_lpips_and_mfd_histograms() {
    if !tmux_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let phi = Command::new(env!("CARGO_BIN_EXE_ayt"))
        .args(["features", "train", "--preset", "disks-phi", "--set", "train.iterations=40"])
        .env("AYT_HOME", tmp.path())
        .output()
        .unwrap();
    assert!(phi.status.success(), "{}", String::from_utf8_lossy(&phi.stderr));
    let cmd = format!(
        "cd {dir} && AYT_HOME={dir} {bin} tui --preset quick-disks --set train.iterations=40 --set probe.every=20 --set probe.n=16 --start; sleep 120",
        dir = sh_quote(tmp.path()),
        bin = sh_quote(Path::new(env!("CARGO_BIN_EXE_ayt"))),
    );
    let t = Tmux::start("ayt-test-default", &cmd, (160, 48));
    let s = t.wait("the run to finish with its probes", Duration::from_secs(300), |s| s.contains("quick-disks finished at step 40"));
    for head in ["MFD mean", "LPIPS mean", "L2 mean"] {
        assert!(s.contains(head), "{head} in the histogram panel:\n{s}");
    }
    assert!(s.matches("chance ").count() >= 3, "each loss beside chance:\n{s}");
    assert!(tmp.path().join("runs").read_dir().unwrap().flatten().any(|e| e.path().join("probe.png").is_file()), "probe.png written");
}
