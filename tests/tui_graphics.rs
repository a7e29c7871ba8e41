//! End to end: `ayt view` in a pseudo-terminal whose other end this test plays. It answers the
//! graphics query as a kitty terminal would (or as a plain one, with the status report only),
//! then reads what `ayt` draws: kitty image transmissions for the sample grid, or none.
//! Python's `pty` module drives the pseudo-terminal (`python3` is a tool `.ci/run` installs).

mod common;

use std::path::Path;
use std::process::Command;

/// The terminal side: runs `ayt --home HOME view RUN` on a pty, replies `REPLY` to the graphics
/// query, quits with `q` once the dashboard has drawn, and writes all `ayt` drew to `OUT`; exits
/// non-zero unless `ayt` ended cleanly within 60 s.
const TERMINAL: &str = r#"
import os, pty, select, signal, sys, time
import fcntl, struct, termios
ayt, home, run, reply, out = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TMUX", "TERM_PROGRAM", "LC_TERMINAL", "KITTY_WINDOW_ID", "WEZTERM_EXECUTABLE", "KONSOLE_VERSION")}
    env["TERM"] = "xterm-256color"
    os.execve(ayt, [ayt, "--home", home, "view", run], env)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
reply = reply.encode().decode("unicode_escape").encode("latin-1")
seen, replied, quit_at, status, start = b"", False, None, None, time.time()
while time.time() - start < 60:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            seen += os.read(fd, 65536)
        except OSError:
            pass
    # the query ends with a status request, which every terminal answers
    if not replied and b"[5n" in seen:
        os.write(fd, reply)
        replied = True
    # quit once the dashboard (its log pane) has drawn, plus a moment for the images
    if replied and quit_at is None and b"tiles:" in seen:
        quit_at = time.time() + 1.0
    if quit_at is not None and time.time() > quit_at:
        os.write(fd, b"q")
        quit_at = float("inf")
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
if status is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
open(out, "wb").write(seen)
sys.exit(0 if status is not None and os.waitstatus_to_exitcode(status) == 0 else 1)
"#;

fn python() -> Option<String> {
    let ok = Command::new("python3").arg("-c").arg("import pty").output().is_ok_and(|o| o.status.success());
    if !ok {
        common::missing_tool("python3");
    }
    ok.then(|| "python3".to_string())
}

/// `ayt view` of a tiny finished run with samples, on a terminal answering `reply`; what it drew.
fn view_with_reply(home: &Path, reply: &str) -> String {
    let run = home.join("r");
    if !run.exists() {
        let preset = home.join("p.toml");
        std::fs::write(&preset, common::tiny_ect("g", 4, "every = 1\nsample_every = 4\nsample_count = 16\ncheckpoint_every = 0")).unwrap();
        let o = common::ayt(home, &["train", "--preset", preset.to_str().unwrap(), "--out", run.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let out = home.join("drawn.bin");
    let script = home.join("terminal.py");
    std::fs::write(&script, TERMINAL).unwrap();
    let o = Command::new("python3")
        .arg(&script)
        .args([env!("CARGO_BIN_EXE_ayt"), home.to_str().unwrap(), run.to_str().unwrap(), reply, out.to_str().unwrap()])
        .output()
        .expect("running python3");
    let drawn = String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()).into_owned();
    let tail: String = drawn.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(o.status.success(), "ayt view did not quit cleanly on q within 60 s: {}\n...{tail:?}", String::from_utf8_lossy(&o.stderr));
    drawn
}

/// The words on screen: control sequences dropped, cursor moves (ratatui writes only the changed
/// cells, word by word) as spaces, runs of spaces as one.
fn words(drawn: &str) -> String {
    let mut out = String::new();
    let mut chars = drawn.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            let mut last = ' ';
            for d in chars.by_ref() {
                last = d;
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
            if last == 'H' {
                out.push(' ');
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn ayt_view_draws_kitty_images_when_the_terminal_says_it_speaks_kitty() {
    if python().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // kitty's answer to the graphics query, a cell size of 10x20 px, device attributes, status
    let drawn = view_with_reply(tmp.path(), r"\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;22c\x1b[0n");
    assert!(drawn.contains("\x1b_Gi=31,s=1,v=1,a=q"), "ayt asked the terminal about kitty graphics");
    assert!(words(&drawn).contains("sample tiles: kitty images (--graphics auto)"), "the log says how tiles are drawn");
    assert!(drawn.contains("a=T,U=1,f=32"), "the sample grid is transmitted as a kitty image");

    // A terminal that answers only the status report: half-blocks, no image.
    let drawn = view_with_reply(tmp.path(), r"\x1b[0n");
    assert!(words(&drawn).contains("sample tiles: half-blocks (--graphics auto)"), "plain terminal");
    assert!(!drawn.contains("a=T,U=1"), "no image transmitted to a terminal without graphics");
}
