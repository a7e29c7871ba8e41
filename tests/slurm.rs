//! The job array `ayt sweep --emit-slurm` writes, run under Slurm: a two-member toy sweep (tiny
//! ECT on 8x8 disks) submitted with `sbatch`; a task cancelled with `scancel` mid-run and resumed
//! from its checkpoint by resubmitting the array; and an array that waits
//! (`sbatch --dependency=afterok`) for the pre-training jobs that make its `train.init` and phi.
//!
//! The cluster: `.ci/run` starts a one-node one on localhost (`scripts/slurm_local.sh`, as root)
//! before `cargo test`; these tests do not start it. Without `sbatch` or a node up they skip,
//! saying why, except under `CI=true`, where they fail. Waiting reads the sweep's own status
//! (`ayt sweep FILE --dry-run`) and the task logs, not `squeue` or `sacct` (no accounting here).
//! The Slurm tests take turns (one lock): the local node has as few as 2 CPUs.

mod common;
use common::ayt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ayt::store::columns;
use ayt::store::RunLog;

const TIMEOUT: Duration = Duration::from_secs(300);
static CLUSTER: Mutex<()> = Mutex::new(());

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", text(o));
    text(o)
}

/// The cluster, held for the test's duration; `None` (after saying why) when there is none.
fn cluster() -> Option<MutexGuard<'static, ()>> {
    if Command::new("sbatch").arg("--version").output().is_err() {
        common::missing_tool("sbatch (Slurm; `scripts/slurm_local.sh` installs and starts a one-node cluster)");
        return None;
    }
    let sinfo = Command::new("sinfo").args(["-h", "-N", "-o", "%T"]).output();
    let states = sinfo.as_ref().map(text).unwrap_or_else(|e| e.to_string());
    let up = ["idle", "mixed", "allocated", "completing"];
    if !sinfo.is_ok_and(|o| o.status.success()) || !states.lines().any(|l| up.contains(&l.trim().trim_end_matches('*'))) {
        common::missing_tool(&format!("a Slurm node up (sinfo says {:?}; run `scripts/slurm_local.sh` as root)", states.trim()));
        return None;
    }
    Some(CLUSTER.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `sbatch --parsable ARGS` in `dir`: the job id.
fn sbatch(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("sbatch").arg("--parsable").args(args).current_dir(dir).output().expect("running sbatch");
    let out = ok(&o);
    let id = out.trim().split(';').next().unwrap().to_string();
    assert!(!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()), "sbatch printed {out:?}");
    id
}

fn scancel(task: &str) {
    ok(&Command::new("scancel").arg(task).output().expect("running scancel"));
}

/// A run preset with a `[sweep]` table, written as `<home>/<name>.toml`.
fn sweep_file(home: &Path, name: &str, run: &str, sweep: &str) -> PathBuf {
    let p = home.join(format!("{name}.toml"));
    std::fs::write(&p, format!("{run}\n[sweep]\n{sweep}\n")).unwrap();
    p
}

fn emit(home: &Path, file: &Path) -> (PathBuf, String) {
    let dir = home.join("slurm");
    let o = ayt(home, &["sweep", file.to_str().unwrap(), "--emit-slurm", dir.to_str().unwrap(), "--cpus", "1", "--time", "00:10:00"]);
    let out = ok(&o);
    let script = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    assert!(script.is_file(), "{out}");
    (script, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `(label, status)` per member from `ayt sweep FILE --dry-run` (status empty before planning).
fn statuses(home: &Path, file: &Path) -> (Vec<(String, String)>, String) {
    let out = ok(&ayt(home, &["sweep", file.to_str().unwrap(), "--dry-run"]));
    let known = ["pending", "running", "interrupted", "done", "failed"];
    let rows = out
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let status = t.get(4).filter(|s| known.contains(s)).unwrap_or(&"");
            (t[1].to_string(), status.to_string())
        })
        .collect();
    (rows, out)
}

/// The task logs of the sweep's jobs, each with its text.
fn task_logs(logs: &Path) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = std::fs::read_dir(logs)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

fn diagnose(home: &Path, file: &Path, logs: &Path) -> String {
    let (_, dry) = statuses(home, file);
    let squeue = Command::new("squeue").output().map(|o| text(&o)).unwrap_or_default();
    let logs: Vec<String> = task_logs(logs).into_iter().map(|(n, t)| format!("--- {n}\n{t}")).collect();
    format!("ayt sweep --dry-run:\n{dry}\nsqueue:\n{squeue}\ntask logs:\n{}", logs.join("\n"))
}

/// Polls the sweep until `done(statuses)`; fails at once when a member failed or a task exited
/// with an error, and after `TIMEOUT`, showing the statuses, the queue and the task logs.
fn wait_until(home: &Path, file: &Path, logs: &Path, what: &str, done: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let (rows, _) = statuses(home, file);
        if done(&rows) {
            return rows;
        }
        let errors = task_logs(logs).into_iter().any(|(_, t)| t.lines().any(|l| l.starts_with("Error:")));
        if errors || rows.iter().any(|(_, s)| s == "failed") || start.elapsed() > TIMEOUT {
            panic!("waiting for {what} ({:.0} s): {}", start.elapsed().as_secs_f64(), diagnose(home, file, logs));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn all_done(rows: &[(String, String)]) -> bool {
    !rows.is_empty() && rows.iter().all(|(_, s)| s == "done")
}

/// `sweep.h5`'s rows once they equal `expected`, or as they are after 30 s. A task writes its
/// member's status file and then rebuilds the index, so `--dry-run` (which reads the status
/// files) can say "done" a moment before the index does.
fn settled_index(sweep: &Path, expected: &[(String, i64, i64, i64, String)]) -> Vec<(String, i64, i64, i64, String)> {
    let start = Instant::now();
    loop {
        let rows = index_rows(sweep);
        if rows == expected || start.elapsed() > Duration::from_secs(30) {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(status, step, iterations, attempts, error)` of every member, from sweep.h5.
fn index_rows(sweep: &Path) -> Vec<(String, i64, i64, i64, String)> {
    let path = sweep.join("sweep.h5");
    let f = hdf5::File::open(&path).unwrap();
    let text = |c: &str| columns::read_text(&path, &f, c).unwrap();
    let num = |c: &str| columns::read_numbers::<i64>(&path, &f, c).unwrap();
    let (status, error, step, iterations, attempts) = (text("status"), text("error"), num("step"), num("iterations"), num("attempts"));
    (0..status.len()).map(|i| (status[i].clone(), step[i], iterations[i], attempts[i], error[i].clone())).collect()
}

fn loss_steps(run: &Path) -> Vec<i64> {
    RunLog::open(run.join("run.h5")).unwrap().scalar("loss").unwrap().step
}

/// The steps of a run folder's checkpoints (`ckpt/step-N.state.json`), ascending.
fn checkpoints(run: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = std::fs::read_dir(run.join("ckpt"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.strip_suffix(".state.json")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    steps.sort();
    steps
}

fn log_of(logs: &Path, sweep: &str, job: &str, task: usize) -> String {
    let p = logs.join(format!("{sweep}-{job}_{task}.out"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const LOG: &str = "every = 1\nsample_every = 0\nsample_count = 4\ncheckpoint_every = 2\nkeep_checkpoints = 0";

#[test]
fn a_two_member_sweep_runs_as_a_job_array_and_its_index_agrees() {
    let Some(_cluster) = cluster() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let file = sweep_file(home, "toy", &common::tiny_ect("toy", 1, LOG), "kimg = 0.032\n\"train.batch_size\" = [8, 16]");
    let (script, _) = emit(home, &file);
    // The tasks run this test's binary.
    let body = std::fs::read_to_string(&script).unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_ayt")).unwrap();
    assert!(body.contains(&format!("exec '{}' --home", exe.display())), "{body}");

    let job = sbatch(home, &[script.to_str().unwrap()]);
    let logs = home.join("slurm/logs");
    wait_until(home, &file, &logs, "both members done", all_done);

    let sweep = home.join("sweeps/toy");
    let expected = vec![("done".into(), 4, 4, 1, String::new()), ("done".into(), 2, 2, 1, String::new())];
    assert_eq!(settled_index(&sweep, &expected), expected);
    for (task, (label, steps)) in [("000-batch_size=8", 4), ("001-batch_size=16", 2)].into_iter().enumerate() {
        let run = sweep.join(label);
        assert_eq!(loss_steps(&run), (1..=steps).collect::<Vec<i64>>(), "{label}");
        assert_eq!(checkpoints(&run).last(), Some(&(steps as u64)), "{label}: its final checkpoint");
        let log = log_of(&logs, "toy", &job, task);
        assert!(log.contains(&format!("member {task}/2 {label}: done at step {steps}")), "task {task} ran member {task}:\n{log}");
    }
    // The index names each member's folder and the export reads the sweep: 4 + 2 rows.
    let h5 = sweep.join("sweep.h5");
    let dirs = columns::read_text(&h5, &hdf5::File::open(&h5).unwrap(), "run_dir").unwrap();
    assert!(dirs[0].ends_with("000-batch_size=8") && dirs[1].ends_with("001-batch_size=16"), "{dirs:?}");
    let csv = home.join("toy.csv");
    ok(&ayt(home, &["export", sweep.to_str().unwrap(), "--out", csv.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 1 + 6);
}

#[test]
fn a_cancelled_task_resumes_from_its_checkpoint_when_the_array_is_resubmitted() {
    let Some(_cluster) = cluster() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Member 0: 4 steps; member 1: 600 steps (about 20 s), a checkpoint every 20.
    let log = LOG.replace("checkpoint_every = 2", "checkpoint_every = 20");
    let file = sweep_file(home, "long", &common::tiny_ect("long", 1, &log), "\"train.iterations\" = [4, 600]");
    let (script, _) = emit(home, &file);
    let logs = home.join("slurm/logs");
    let sweep = home.join("sweeps/long");
    let long = sweep.join("001-iterations=600");

    let job = sbatch(home, &[script.to_str().unwrap()]);
    let running = wait_until(home, &file, &logs, "member 1's first checkpoint", |rows| {
        rows.get(1).is_some_and(|(_, s)| s == "running") && !checkpoints(&long).is_empty()
    });
    scancel(&format!("{job}_1"));
    let rows = wait_until(home, &file, &logs, "member 1 cancelled", |rows| {
        rows.len() == 2 && rows[0].1 == "done" && ["interrupted", "done"].contains(&rows[1].1.as_str())
    });
    assert_eq!(rows[1].1, "interrupted", "member 1 finished before it could be cancelled ({running:?}): make it longer");
    let cancelled_at = *checkpoints(&long).last().unwrap();
    assert!(cancelled_at < 600, "{rows:?}");
    assert!(log_of(&logs, "long", &job, 1).contains("CANCELLED"), "{}", log_of(&logs, "long", &job, 1));

    // Resubmitting the whole array: member 0 is skipped, member 1 resumes.
    let again = sbatch(home, &[script.to_str().unwrap()]);
    wait_until(home, &file, &logs, "both members done after resubmitting", all_done);
    let task0 = log_of(&logs, "long", &again, 0);
    assert!(task0.contains("done, skipped"), "{task0}");
    let task1 = log_of(&logs, "long", &again, 1);
    assert!(task1.contains(&format!("resuming from its checkpoint at step {cancelled_at} of 600")), "{task1}");
    assert!(task1.contains(&format!("steps {cancelled_at}..600")), "the engine resumed at step {cancelled_at}:\n{task1}");
    // One loss row per step: the rows logged after the checkpoint the task died past were cut.
    assert_eq!(loss_steps(&long), (1..=600).collect::<Vec<i64>>());
    assert_eq!(checkpoints(&long).last(), Some(&600));
    let expected = vec![("done".into(), 4, 4, 1, String::new()), ("done".into(), 600, 600, 2, String::new())];
    assert_eq!(settled_index(&sweep, &expected), expected);
}

/// A tiny phi (20 steps) on the data set of `common::tiny_ect`, for the MFD members.
fn tiny_phi() -> String {
    let ect = common::tiny_ect("unused", 1, "");
    let data = &ect[ect.find("[data]").unwrap()..ect.find("[model]").unwrap()];
    format!("name = \"tiny-phi\"\n{data}[phi]\nwidths = [8, 8]\ngroups = 4\n[train]\nbatch_size = 16\niterations = 20\nlr = 3e-3\n")
}

/// A sweep of MFD members starting from the pre-training run `pre`: neither exists yet.
fn dependent_sweep(home: &Path) -> PathBuf {
    let presets = home.join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    std::fs::write(presets.join("pre.toml"), common::tiny_ect("pre", 4, LOG)).unwrap();
    std::fs::write(presets.join("tiny-phi.toml"), tiny_phi()).unwrap();
    let run = common::tiny_ect("dep", 1, LOG).replace("[ect]", "init = \"pre\"\nloss = \"mfd\"\n[mfd]\nfeatures = \"tiny-phi\"\n[ect]");
    sweep_file(home, "dep", &run, "kimg = 0.032\n\"train.batch_size\" = [8, 16]")
}

#[test]
fn emit_slurm_before_the_shared_inputs_exist_says_what_to_submit_first() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let file = dependent_sweep(home);
    let (script, advice) = emit(home, &file);
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_ayt")).unwrap();
    for want in [
        "not planned yet",
        "train.init = \"pre\"",
        "mfd.features = \"tiny-phi\"",
        &format!("pre0=$(sbatch --parsable --wrap \"'{}' --home '{}' train --preset presets/pre.toml\")", exe.display(), home.display()),
        "features train --preset presets/tiny-phi.toml",
        &format!("sbatch --dependency=afterok:$pre0:$pre1 {}", script.display()),
    ] {
        assert!(advice.contains(want), "missing {want:?} in\n{advice}");
    }
    let body = std::fs::read_to_string(&script).unwrap();
    assert!(body.contains("#SBATCH --array=0-1") && body.contains("# Not planned yet"), "{body}");
    assert!(body.contains("#   train.init (made by `ayt train --preset presets/pre.toml`)"), "{body}");
    assert!(!home.join("sweeps/dep/plan.json").exists(), "nothing to pin yet: the first task plans");
    // Run directly, the sweep still refuses to start without its inputs.
    let o = ayt(home, &["sweep", file.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("train.init = \"pre\""), "{}", text(&o));

    // Once they exist, --emit-slurm plans the sweep and says what it pinned.
    ok(&ayt(home, &["train", "--preset", home.join("presets/pre.toml").to_str().unwrap()]));
    ok(&ayt(home, &["features", "train", "--preset", home.join("presets/tiny-phi.toml").to_str().unwrap()]));
    let (script, advice) = emit(home, &file);
    assert!(advice.contains("train.init = \"pre\": pinned") && advice.contains(&format!("sbatch {}", script.display())), "{advice}");
    assert!(!advice.contains("not planned") && home.join("sweeps/dep/plan.json").exists(), "{advice}");
    assert!(!std::fs::read_to_string(&script).unwrap().contains("Not planned"));
}

#[test]
fn an_array_submitted_after_its_pre_training_jobs_starts_from_their_outputs() {
    let Some(_cluster) = cluster() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let file = dependent_sweep(home);
    let (script, _) = emit(home, &file);
    let exe = env!("CARGO_BIN_EXE_ayt");
    let h = home.display();
    let pre = sbatch(home, &["--output", "slurm/logs/pre.out", "--wrap", &format!("'{exe}' --home '{h}' train --preset presets/pre.toml")]);
    let phi = sbatch(
        home,
        &["--output", "slurm/logs/phi.out", "--wrap", &format!("'{exe}' --home '{h}' features train --preset presets/tiny-phi.toml")],
    );
    let dependency = format!("--dependency=afterok:{pre}:{phi}");
    sbatch(home, &[&dependency, script.to_str().unwrap()]);
    let logs = home.join("slurm/logs");
    wait_until(home, &file, &logs, "both members done after the pre-training jobs", all_done);

    let sweep = home.join("sweeps/dep");
    let expected = vec![("done".into(), 4, 4, 1, String::new()), ("done".into(), 2, 2, 1, String::new())];
    assert_eq!(settled_index(&sweep, &expected), expected);
    // The first task pinned what the two jobs made.
    let h5 = sweep.join("sweep.h5");
    let f = hdf5::File::open(&h5).unwrap();
    let attr = |name: &str| columns::read_str_attr(&h5, &f, name).unwrap();
    let runs: Vec<PathBuf> = std::fs::read_dir(home.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("pre-"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(PathBuf::from(attr("init_source")), std::path::absolute(runs[0].join("ckpt/step-4.safetensors")).unwrap());
    assert_eq!(attr("init_sha256"), ayt::sweep::plan::sha256_file(&runs[0].join("ckpt/step-4.safetensors")).unwrap());
    let phi_path = PathBuf::from(attr("features_path"));
    assert!(phi_path.starts_with(home.join("features")), "{phi_path:?}");
    assert_eq!(attr("features_sha256"), ayt::sweep::plan::sha256_file(&phi_path).unwrap());
}
