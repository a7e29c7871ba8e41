//! A damaged HDF5 file must not take `ayt` down. Debian's libhdf5 1.10 crashes or hangs on some
//! corrupted files (ayt-fuzz found segfaults, heap aborts and endless loops, most of them in the
//! global-heap read of variable-length strings); no Rust code can catch that. So `ayt` never runs
//! the HDF5 library on a file that came from elsewhere (a data set, a phi or evaluator bundle, a
//! run log) in its own process: a checker process reads it and sends back what it read (in
//! `wire.rs`'s form). The checker is the same executable, started with `AYT_H5_CHECKER=1` and
//! kept for the next file. A checker that dies or hangs means a damaged file: an error naming
//! it, and `ayt` goes on (the next read starts a new checker).
//!
//! Reading in the checker and only checking there is not enough: the library's over-reads of a
//! damaged heap fault or not depending on the memory around them, so a file that a checker read
//! without harm could still crash the reader (ayt-fuzz saw it).
//!
//! A checker that dies of a Rust panic or a failed Rust allocation is not the C library's fault:
//! then the caller reads in its own process, where the bug shows as itself.
//!
//! Off unless the binary calls [`enable`] (library tests read in-process).

use std::io::{BufRead, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What a file is read as: the checker runs the reader of that kind, the caller the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A data set's header: shape, labels, attributes (`ayt data ls`, `info`).
    DatasetHeader,
    /// A whole data set, pixels and checksum included.
    Dataset,
    /// A tensor bundle (phi, the FD evaluator): every attribute and tensor.
    Bundle,
    /// A run log, every table of it.
    RunLog,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::DatasetHeader, Kind::Dataset, Kind::Bundle, Kind::RunLog];

    fn name(self) -> &'static str {
        match self {
            Kind::DatasetHeader => "dataset-header",
            Kind::Dataset => "dataset",
            Kind::Bundle => "bundle",
            Kind::RunLog => "run-log",
        }
    }
}

/// Reads `path` as `kind` in this process and encodes what it read (the checker's side).
pub type Reader = fn(Kind, &Path) -> Result<Vec<u8>>;

const ENV: &str = "AYT_H5_CHECKER";
/// Longest reply line; a longer error message is cut (one pipe write stays atomic).
const MAX_REPLY: usize = 2000;

/// How long a check may take: `floor` plus the file's size at `bytes_per_s`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub floor: Duration,
    pub bytes_per_s: f64,
}

impl Default for Limits {
    /// Generous: a healthy read of a large data set must never be called a hang.
    fn default() -> Self {
        Limits { floor: Duration::from_secs(30), bytes_per_s: 32e6 }
    }
}

impl Limits {
    /// The default, with the floor from `AYT_H5_CHECK_FLOOR_S` when set (a slow network disk
    /// may need more; the tests use less).
    pub fn from_env() -> Limits {
        let floor = std::env::var("AYT_H5_CHECK_FLOOR_S").ok().and_then(|v| v.parse::<f64>().ok()).filter(|s| s.is_finite() && *s > 0.0);
        Limits { floor: floor.map_or(Limits::default().floor, Duration::from_secs_f64), ..Limits::default() }
    }
}

static LIMITS: OnceLock<Limits> = OnceLock::new();
static CHECKER: Mutex<Option<Checker>> = Mutex::new(None);

/// In the checker process (`AYT_H5_CHECKER=1`), answers checks read from stdin with `read` and
/// exits; anywhere else returns at once. Call it first thing in `main`.
pub fn serve_if_asked(read: Reader) {
    if std::env::var_os(ENV).is_none() {
        return;
    }
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (reply, payload) = match parse_request(&line) {
            Some((kind, path)) => match read(kind, &path) {
                Ok(bytes) => (format!("ok {}", bytes.len()), bytes),
                Err(e) => (format!("err {}", serde_json::Value::String(cut(&e.to_string()))), Vec::new()),
            },
            None => (format!("err {}", serde_json::Value::String(format!("bad request {line:?}"))), Vec::new()),
        };
        if writeln!(out, "{reply}").and_then(|_| out.write_all(&payload)).and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    std::process::exit(0);
}

/// Turns checks on for this process, with time limits.
pub fn enable(limits: Limits) {
    let _ = LIMITS.set(limits);
}

/// Reads `path` as `kind` in the checker: what it read, encoded; or `None` when the caller is
/// to read in its own process (checks off, no such file, or a bug of ours that the caller's
/// read shows). The reader's own error when the file is wrong in an ordinary way, and an error
/// naming the file when the library crashed or hung on it.
pub fn read(kind: Kind, path: &Path) -> Result<Option<Vec<u8>>> {
    let Some(limits) = LIMITS.get() else { return Ok(None) };
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let limit = limits.floor + Duration::from_secs_f64(bytes as f64 / limits.bytes_per_s);
    let mut slot = CHECKER.lock().unwrap_or_else(|p| p.into_inner());
    // A checker that died since the last check (killed from outside) fails at the write: one retry.
    for attempt in 0..2 {
        if slot.is_none() {
            *slot = Some(Checker::start().map_err(|e| Error::file(path, format!("cannot start the HDF5 checker: {e}")))?);
        }
        let checker = slot.as_mut().expect("started above");
        match checker.ask(kind, path, limit) {
            Answer::Ok(bytes) => return Ok(Some(bytes)),
            Answer::Err(msg) => return Err(Error::msg(msg)),
            Answer::Unsent if attempt == 0 => {
                slot.take().map(Checker::finish);
            }
            Answer::Unsent => return Err(Error::file(path, "the HDF5 checker does not take requests")),
            Answer::Died => return died(path, slot.take().expect("a checker").finish()),
            Answer::Hung => {
                let checker = slot.take().expect("a checker");
                let _ = checker.child_kill();
                return Err(Error::file(
                    path,
                    format!(
                        "reading it as {} did not finish in {:.0} s (the HDF5 library hung): the file is damaged",
                        kind.name(),
                        limit.as_secs_f64()
                    ),
                ));
            }
        }
    }
    unreachable!("the second attempt returns")
}

/// What a checker's death says about the file.
fn died(path: &Path, (status, stderr): (Option<ExitStatus>, String)) -> Result<Option<Vec<u8>>> {
    // Our own bug, not the file's: the caller's read in this process shows it as itself.
    if stderr.contains("panicked at") || stderr.contains("memory allocation of") {
        return Ok(None);
    }
    let how = match status.and_then(|s| s.signal()) {
        Some(s) => format!("crashed ({})", signal_name(s)),
        None => format!("stopped ({})", status.map_or("unknown status".into(), |s| s.to_string())),
    };
    Err(Error::file(path, format!("the HDF5 library {how} reading it: the file is damaged")))
}

fn signal_name(s: i32) -> String {
    let name = match s {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        _ => "",
    };
    format!("signal {s}{}{name}", if name.is_empty() { "" } else { ", " })
}

fn cut(msg: &str) -> String {
    match msg.char_indices().nth(MAX_REPLY) {
        Some((i, _)) => format!("{}...", &msg[..i]),
        None => msg.to_string(),
    }
}

fn request(kind: Kind, path: &Path) -> String {
    let hex: String = path.as_os_str().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("{} {hex}\n", kind.name())
}

fn parse_request(line: &str) -> Option<(Kind, PathBuf)> {
    let (name, hex) = line.split_once(' ')?;
    let kind = Kind::ALL.into_iter().find(|k| k.name() == name)?;
    let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>()?;
    Some((kind, PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))))
}

enum Answer {
    Ok(Vec<u8>),
    Err(String),
    /// The request could not be written: the checker is gone.
    Unsent,
    Died,
    Hung,
}

/// A running checker process and the thread that keeps the tail of its stderr.
struct Checker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Arc<Mutex<String>>,
    drain: JoinHandle<()>,
}

impl Checker {
    fn start() -> std::io::Result<Checker> {
        // /proc/self/exe still runs when the file was replaced (a rebuild while `ayt` runs).
        let exe = Path::new("/proc/self/exe");
        let exe = if exe.exists() { exe.to_path_buf() } else { std::env::current_exe()? };
        let mut child = Command::new(exe)
            .env(ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal is not a crash of the checker.
            .process_group(0)
            .spawn()?;
        let (stdin, stdout, err) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(mut err)) = (stdin, stdout, err) else {
            let _ = child.kill();
            return Err(std::io::Error::other("no pipes to the checker"));
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let tail = stderr.clone();
        let drain = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.push_str(&String::from_utf8_lossy(&buf[..n]));
                if t.len() > 16384 {
                    let keep = t.len() - 8192;
                    let at = (keep..t.len()).find(|&i| t.is_char_boundary(i)).unwrap_or(t.len());
                    t.drain(..at);
                }
            }
        });
        Ok(Checker { child, stdin, stdout, stderr, drain })
    }

    fn ask(&mut self, kind: Kind, path: &Path, limit: Duration) -> Answer {
        if self.stdin.write_all(request(kind, path).as_bytes()).and_then(|_| self.stdin.flush()).is_err() {
            return Answer::Unsent;
        }
        let deadline = Instant::now() + limit;
        let mut reply = Vec::new();
        let nl = loop {
            if let Some(i) = reply.iter().position(|&b| b == b'\n') {
                break i;
            }
            if let Err(a) = self.receive(&mut reply, 4096, deadline) {
                return a;
            }
        };
        let rest = reply.split_off(nl + 1);
        let line = String::from_utf8_lossy(&reply).trim_end().to_string();
        match line.split_once(' ') {
            Some(("ok", len)) => match len.parse::<usize>() {
                Ok(len) => self.payload(rest, len, deadline),
                Err(_) => Answer::Err(format!("{}: the HDF5 checker answered {line:?}", path.display())),
            },
            Some(("err", json)) => Answer::Err(serde_json::from_str(json).unwrap_or_else(|_| json.to_string())),
            _ => Answer::Err(format!("{}: the HDF5 checker answered {line:?}", path.display())),
        }
    }

    /// The `len` bytes after the reply line, `got` of them already read.
    fn payload(&mut self, mut got: Vec<u8>, len: usize, deadline: Instant) -> Answer {
        got.reserve(len.saturating_sub(got.len()));
        while got.len() < len {
            let want = (len - got.len()).min(1 << 20);
            if let Err(a) = self.receive(&mut got, want, deadline) {
                return a;
            }
        }
        got.truncate(len);
        Answer::Ok(got)
    }

    /// Appends up to `max` bytes from the checker to `buf`, waiting until `deadline`.
    fn receive(&mut self, buf: &mut Vec<u8>, max: usize, deadline: Instant) -> std::result::Result<(), Answer> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !readable(&self.stdout, left) {
            return Err(Answer::Hung);
        }
        let at = buf.len();
        buf.resize(at + max, 0);
        match self.stdout.read(&mut buf[at..]) {
            Ok(0) | Err(_) => Err(Answer::Died),
            Ok(n) => {
                buf.truncate(at + n);
                Ok(())
            }
        }
    }

    fn child_kill(mut self) -> (Option<ExitStatus>, String) {
        let _ = self.child.kill();
        self.finish()
    }

    /// Waits for the checker to end (its stdin closes here) and returns its status and stderr.
    fn finish(self) -> (Option<ExitStatus>, String) {
        let Checker { mut child, stdin, stdout, stderr, drain } = self;
        drop((stdin, stdout));
        let status = child.wait().ok();
        let _ = drain.join();
        let tail = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (status, tail)
    }
}

/// Waits up to `timeout` for `out` to have data or be closed.
fn readable(out: &ChildStdout, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd { fd: out.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    loop {
        let n = unsafe { libc::poll(&mut fd, 1, ms) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return n > 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_any_path_bytes() {
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/a b\n\xff.h5"));
        for kind in Kind::ALL {
            let line = request(kind, &odd);
            assert_eq!(parse_request(line.trim_end()), Some((kind, odd.clone())));
        }
        assert_eq!(parse_request("dataset 2"), None, "odd hex length");
        assert_eq!(parse_request("nope 2f"), None);
    }

    #[test]
    fn a_death_names_the_signal_unless_it_was_our_own_bug() {
        let p = Path::new("/x/d.h5");
        let segv = ExitStatus::from_raw(libc::SIGSEGV);
        let e = died(p, (Some(segv), String::new())).unwrap_err().to_string();
        assert!(e.contains("/x/d.h5") && e.contains("SIGSEGV") && e.contains("damaged"), "{e}");
        let abort = ExitStatus::from_raw(libc::SIGABRT);
        assert!(died(p, (Some(abort), "memory allocation of 99 bytes failed".into())).unwrap().is_none());
        assert!(died(p, (Some(ExitStatus::from_raw(101 << 8)), "thread 'main' panicked at src/x.rs".into())).unwrap().is_none());
        assert_eq!(cut(&"é".repeat(MAX_REPLY + 5)).chars().count(), MAX_REPLY + 3);
    }
}
