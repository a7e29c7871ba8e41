//! Crash safety of checkpoints and the run log: a process killed (SIGKILL) at random moments while
//! it writes checkpoints never leaves a checkpoint that is listed but does not load, and the run
//! resumes; a truncated newest checkpoint is passed over, named, for the one before; a full disk
//! (a file-size limit) is a clear error that leaves earlier checkpoints and rows intact.

mod common;
use common::ayt;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ayt::paths::RunDir;
use ayt::store::RunLog;
use ayt::train::checkpoint;
use ayt::train::TrainState;
use rand::Rng;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn preset(dir: &Path, iterations: u64, checkpoint_every: u64) -> PathBuf {
    let log = format!("every = 1\nsample_every = 0\nsample_count = 0\ncheckpoint_every = {checkpoint_every}\nkeep_checkpoints = 0");
    let p = dir.join("p.toml");
    std::fs::write(&p, common::tiny_ect("crash", iterations, &log)).unwrap();
    p
}

/// Every checkpoint the run folder lists loads.
fn all_listed_load(run: &RunDir) -> Vec<u64> {
    let steps = run.checkpoints().unwrap();
    for &s in &steps {
        if let Err(e) = checkpoint::load::<TrainState>(run, s) {
            panic!("checkpoint {s} is listed but does not load: {e}");
        }
    }
    steps
}

/// `AYT_KILL_ROUNDS` rounds (default 20) of: start a run that checkpoints every step, SIGKILL it
/// at a random moment, check every listed checkpoint loads; every fourth round also resumes.
#[test]
fn sigkill_during_checkpoint_writes_never_leaves_a_broken_checkpoint() {
    let rounds: usize = std::env::var("AYT_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let p = preset(tmp.path(), 60, 1);
    let mut rng = ayt::rng::stream(7, "kill-test");
    let (mut with_checkpoints, mut resumed) = (0, 0);
    for round in 0..rounds {
        let run_dir = tmp.path().join(format!("run-{round}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ayt"))
            .args(["train", "--preset", p.to_str().unwrap(), "--out", run_dir.to_str().unwrap()])
            .env("AYT_HOME", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(150..1200)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let run = RunDir::new(&run_dir);
        let steps = all_listed_load(&run);
        with_checkpoints += usize::from(!steps.is_empty());
        if round % 4 == 3 && !steps.is_empty() {
            let o = ayt(tmp.path(), &["resume", run_dir.to_str().unwrap()]);
            assert!(o.status.success(), "round {round}: resume after the kill failed: {}", stderr(&o));
            assert_eq!(run.latest_checkpoint().unwrap(), Some(60));
            resumed += 1;
        }
    }
    eprintln!("{rounds} kills: {with_checkpoints} left checkpoints, all of them loading; {resumed} resumed to the end");
    assert!(with_checkpoints * 2 >= rounds, "most kills should land after the first checkpoint ({with_checkpoints}/{rounds})");
}

#[test]
fn resume_passes_over_a_truncated_newest_checkpoint_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = preset(tmp.path(), 6, 3);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for run in [&a, &b] {
        let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // b's newest checkpoint is cut short, as by a crash outside ayt's control
    let newest = RunDir::new(&b).tensors_path(6);
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let o = ayt(tmp.path(), &["resume", b.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("passing over the checkpoint at step 6") && err.contains("step-6.safetensors"), "{err}");
    let losses = |run: &Path| RunLog::open(run.join("run.h5")).unwrap().scalar("loss").unwrap().value;
    assert_eq!(losses(&a), losses(&b), "steps 4-6 retrained from step 3 equal the uninterrupted run");
    all_listed_load(&RunDir::new(&b));
}

/// `ayt` with the size of any file it writes limited to `bytes` (SIGXFSZ ignored, so a write past
/// the limit fails with EFBIG, as on a full disk).
fn ayt_with_file_limit(home: &Path, args: &[&str], bytes: u64) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ayt"));
    cmd.args(args).env("AYT_HOME", home);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn a_full_disk_is_a_clear_error_that_keeps_earlier_checkpoints_and_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let p = preset(tmp.path(), 6, 3);
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = RunDir::new(&run);
    // The run goes on to 9 steps; a checkpoint (~0.6 MB) no longer fits under the limit.
    let text = std::fs::read_to_string(dir.preset_file()).unwrap().replace("iterations = 6", "iterations = 9");
    std::fs::write(dir.preset_file(), text).unwrap();
    let limit = std::fs::metadata(dir.tensors_path(6)).unwrap().len() / 2;
    let o = ayt_with_file_limit(tmp.path(), &["resume", r], limit);
    let err = stderr(&o);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("step-9") && err.to_lowercase().contains("file too large"), "the error names the file and why: {err}");
    assert_eq!(all_listed_load(&dir), vec![3, 6], "earlier checkpoints intact, no partial one listed");
    let steps = RunLog::open(dir.log_file()).unwrap().scalar("loss").unwrap().step;
    assert_eq!(steps, (1..=9).collect::<Vec<i64>>(), "the rows logged before the failure are written");
    let o = ayt(tmp.path(), &["resume", r]);
    assert!(o.status.success(), "resume without the limit: {}", stderr(&o));
    assert_eq!(dir.latest_checkpoint().unwrap(), Some(9));
}

/// SIGTERM (what `scancel` and a Slurm time limit send first) stops a run the way Ctrl-C does:
/// a checkpoint at the step it reached, then a clean exit; resume goes on from there.
#[test]
fn sigterm_checkpoints_the_step_reached_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let p = preset(tmp.path(), 100_000, 0);
    let run_dir = tmp.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_ayt"))
        .args(["train", "--preset", p.to_str().unwrap(), "--out", run_dir.to_str().unwrap()])
        .env("AYT_HOME", tmp.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = RunDir::new(&run_dir).log_file();
    while !log.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a signal to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success() && err.contains("stopped"), "{err}");
    let run = RunDir::new(&run_dir);
    let at = run.latest_checkpoint().unwrap().expect("a checkpoint at the step reached");
    let last_row = *RunLog::open(run.log_file()).unwrap().scalar("loss").unwrap().step.last().unwrap();
    assert!(at > 0 && at as i64 == last_row, "checkpoint {at}, last row {last_row}");
}
