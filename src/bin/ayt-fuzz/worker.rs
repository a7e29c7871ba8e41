//! The supervisor and its workers. A worker process runs inputs `from..to` of one target under an
//! address-space limit and a per-input alarm, announcing each index before running it; when a
//! worker dies (a crash, the alarm, the memory limit) the supervisor records the input it was on
//! and starts a new worker after it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use rand::Rng;

use super::targets::{self, Kind, Target};
use super::{mutate, Options};

/// Input `index` of `target`: a seed from `corpus`, mutated from stream `(seed, index)`.
pub fn input(target: &Target, corpus: &[Vec<u8>], seed: u64, index: u64) -> Vec<u8> {
    let mut rng = ayt::rng::substream(seed, target.name, index);
    let a = &corpus[rng.random_range(0..corpus.len())];
    let b = &corpus[rng.random_range(0..corpus.len())];
    match target.kind {
        Kind::Bytes => mutate::bytes(a, b, &mut rng),
        Kind::Text => mutate::text(a, b, &mut rng),
    }
}

fn target(name: &str) -> Result<&'static Target, String> {
    targets::find(name).ok_or_else(|| format!("no target {name:?}"))
}

/// The scratch folder of process `pid` (in memory where /dev/shm exists).
fn scratch_of(tag: &str, pid: u32) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    base.join(format!("ayt-fuzz-{tag}-{pid}"))
}

/// A scratch folder for this process's files.
fn scratch(tag: &str) -> Result<PathBuf, String> {
    let dir = scratch_of(tag, std::process::id());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

pub struct Finding {
    pub index: u64,
    pub what: String,
    pub file: PathBuf,
}

pub struct Report {
    pub target: &'static str,
    pub execs: u64,
    pub seconds: f64,
    pub findings: Vec<Finding>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.execs as f64 / self.seconds.max(1e-9);
        write!(f, "{:<20} {:>10} executions in {:>8.1} s ({rate:>8.0}/s): ", self.target, self.execs, self.seconds)?;
        if self.findings.is_empty() {
            return write!(f, "no finding");
        }
        write!(f, "{} finding(s)", self.findings.len())?;
        for x in &self.findings {
            write!(f, "\n    input {}: {} ({})", x.index, x.what, x.file.display())?;
        }
        Ok(())
    }
}

/// Runs `opts.execs` inputs of target `name` in workers, restarting after each crash; the
/// report counts the inputs that did run.
pub fn supervise(name: &str, opts: &Options) -> Result<Report, String> {
    let t = target(name)?;
    let dir = scratch("supervisor")?;
    let corpus = (t.corpus)(&dir);
    let started = Instant::now();
    let mut findings = Vec::new();
    // `next` ends as the count of inputs run: the index after the last one a worker announced.
    let mut next = 0;
    while next < opts.execs {
        let (reached, outcome) = run_worker(name, next, opts)?;
        match outcome {
            None => {
                next = reached.map_or(next, |i| i + 1);
                break;
            }
            Some(what) => {
                let at = reached.unwrap_or(next);
                findings.push(record(t, &corpus, opts, at, what)?);
                next = at + 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    for f in findings.iter().filter(|f| f.what.starts_with("panic")) {
        eprintln!("ayt-fuzz {name}: input {}: {}", f.index, f.what);
    }
    Ok(Report { target: t.name, execs: next, seconds: started.elapsed().as_secs_f64(), findings })
}

/// Saves input `index` to the findings folder.
fn record(t: &Target, corpus: &[Vec<u8>], opts: &Options, index: u64, what: String) -> Result<Finding, String> {
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let file = opts.out.join(format!("{}-seed{}-{index}.bin", t.name, opts.seed));
    std::fs::write(&file, input(t, corpus, opts.seed, index)).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Finding { index, what, file })
}

/// One worker from `from` on: the last index it announced, and why it ended early (`None`: it
/// reached the end). Panics it caught are reported as findings too, through the same path.
fn run_worker(name: &str, from: u64, opts: &Options) -> Result<(Option<u64>, Option<String>), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["--worker", name, &opts.seed.to_string(), &from.to_string(), &opts.execs.to_string()])
        .args([opts.max_mib.to_string(), opts.timeout_s.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    // Drained as it comes: a target that prints (a progress line per input) would otherwise
    // fill the pipe and block the worker, which the alarm then reports as a hang.
    let mut stderr = child.stderr.take().ok_or("no worker stderr")?;
    let drain = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            all.extend_from_slice(&buf[..n]);
            if all.len() > 1 << 16 {
                all.drain(..all.len() - (1 << 15));
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut last = None;
    let mut panicked = None;
    for line in BufReader::new(child.stdout.take().ok_or("no worker stdout")?).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(msg) = line.strip_prefix("panic ") {
            panicked = Some(format!("panic: {msg}"));
            break;
        }
        if line == "done" {
            break;
        }
        last = line.parse().ok();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let err = drain.join().unwrap_or_default();
    // A worker that crashed could not remove its own.
    let _ = std::fs::remove_dir_all(scratch_of(name, child.id()));
    if let Some(p) = panicked {
        return Ok((last, Some(p)));
    }
    if status.success() {
        return Ok((last, None));
    }
    let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
    let what = match status.signal() {
        Some(libc::SIGALRM) => format!("hang: over {} s", opts.timeout_s),
        Some(libc::SIGABRT) if err.contains("memory allocation") => format!("allocation past {} MiB: {tail}", opts.max_mib),
        Some(s) => format!("killed by signal {s}: {tail}"),
        None => format!("exit status {:?}: {tail}", status.code()),
    };
    Ok((last, Some(what)))
}

/// `--worker TARGET SEED FROM TO MAX_MIB TIMEOUT_S`.
pub fn main(args: &[String]) -> ExitCode {
    let num = |i: usize| args.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let (Some(name), seed, from, to, max_mib, timeout) = (args.first(), num(1), num(2), num(3), num(4), num(5)) else {
        return ExitCode::from(2);
    };
    let Ok(t) = target(name) else { return ExitCode::from(2) };
    let Ok(dir) = scratch(name) else { return ExitCode::from(2) };
    let corpus = (t.corpus)(&dir);
    limit_memory(max_mib << 20);
    // ayt reads HDF5 through its checker process: give it half the alarm, so that a file the
    // library hangs on is ayt's clear error, and only a hang outside the checker is a finding.
    let floor = std::time::Duration::from_secs_f64((timeout as f64 / 2.0).max(0.5));
    ayt::store::sandbox::enable(ayt::store::sandbox::Limits { floor, bytes_per_s: 1e9 });
    std::panic::set_hook(Box::new(|_| {}));
    let mut out = std::io::stdout().lock();
    for i in from..to {
        let input = input(t, &corpus, seed, i);
        let _ = writeln!(out, "{i}");
        let _ = out.flush();
        // SAFETY: alarm only schedules SIGALRM, whose default action ends the process.
        unsafe { libc::alarm(timeout as u32) };
        let r = std::panic::catch_unwind(|| (t.exec)(&input, &dir));
        unsafe { libc::alarm(0) };
        if let Err(p) = r {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            let _ = writeln!(out, "panic {}", msg.replace('\n', " "));
            let _ = out.flush();
            let _ = std::fs::remove_dir_all(&dir);
            return ExitCode::SUCCESS;
        }
    }
    let _ = writeln!(out, "done");
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

/// `--replay TARGET FILE`: runs one saved input in this process and prints what the parser said.
pub fn replay(name: &str, file: &Path) -> ExitCode {
    let (Ok(t), Ok(dir), Ok(bytes)) = (target(name), scratch("replay"), std::fs::read(file)) else {
        eprintln!("ayt-fuzz --replay: need a target name and a readable input file");
        return ExitCode::from(2);
    };
    let _ = (t.corpus)(&dir); // some targets read their seeds' files
    let r = (t.exec)(&bytes, &dir);
    println!("{name} {}: {}", file.display(), r.err().unwrap_or_else(|| "parsed".into()));
    let _ = std::fs::remove_dir_all(dir);
    ExitCode::SUCCESS
}

fn limit_memory(bytes: u64) {
    let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    // SAFETY: setrlimit on this process with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
}
