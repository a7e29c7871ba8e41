//! `ayt sweep`, `ayt export` and `ayt report` end to end on a two-member toy sweep (tiny UNet,
//! 8x8 disks; a member trains in seconds).

mod common;
use common::ayt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ayt::store::columns;
use ayt::store::RunLog;

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "ayt failed: {}", text(o));
    text(o)
}

/// Two members: batch 8 (4 steps, checkpoints at 2 and 4) and batch 16 (2 steps), 32 images each.
fn toy() -> String {
    let run = common::tiny_ect("toy", 1, "every = 1\nsample_every = 0\nsample_count = 4\ncheckpoint_every = 2\nkeep_checkpoints = 0");
    format!("{run}\n[sweep]\nkimg = 0.032\n\"train.batch_size\" = [8, 16]\n")
}

fn write_sweep(dir: &Path) -> PathBuf {
    let p = dir.join("toy-sweep.toml");
    std::fs::write(&p, toy()).unwrap();
    p
}

fn sweep_dir(home: &Path) -> PathBuf {
    home.join("sweeps/toy")
}

/// `(status, step, attempts)` of every member, from sweep.h5.
fn index_rows(home: &Path) -> Vec<(String, i64, i64)> {
    let path = sweep_dir(home).join("sweep.h5");
    let f = hdf5::File::open(&path).unwrap();
    let status = columns::read_text(&path, &f, "status").unwrap();
    let step = columns::read_numbers::<i64>(&path, &f, "step").unwrap();
    let attempts = columns::read_numbers::<i64>(&path, &f, "attempts").unwrap();
    status.into_iter().zip(step).zip(attempts).map(|((s, st), a)| (s, st, a)).collect()
}

fn losses(run: &Path) -> Vec<(i64, f64)> {
    let s = RunLog::open(run.join("run.h5")).unwrap().scalar("loss").unwrap();
    s.step.into_iter().zip(s.value).collect()
}

const M0: &str = "000-batch_size=8";
const M1: &str = "001-batch_size=16";

#[test]
fn members_run_concurrently_finished_ones_are_skipped_and_an_interrupted_one_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let file = write_sweep(home);
    let f = file.to_str().unwrap();

    // --dry-run lists the grid and writes nothing.
    let out = ok(&ayt(home, &["sweep", f, "--dry-run"]));
    assert!(out.contains("2 members") && out.contains(M0) && out.contains(M1) && out.contains("4 steps"), "{out}");
    assert!(!sweep_dir(home).exists(), "--dry-run must not create the sweep");

    // Two array tasks at once: each member in its own process, one shared index.
    let spawn = |i: &str| {
        Command::new(env!("CARGO_BIN_EXE_ayt")).args(["sweep", f, "--member", i]).env("AYT_HOME", home).output().expect("running ayt")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("0"));
        let b = s.spawn(|| spawn("1"));
        (a.join().unwrap(), b.join().unwrap())
    });
    ok(&a);
    ok(&b);
    assert_eq!(index_rows(home), vec![("done".into(), 4, 1), ("done".into(), 2, 1)]);
    let m0 = sweep_dir(home).join(M0);
    let full = losses(&m0);
    assert_eq!(full.len(), 4);
    assert_eq!(losses(&sweep_dir(home).join(M1)).len(), 2, "batch 16: 32 images in 2 steps");
    let preset = std::fs::read_to_string(m0.join("preset.toml")).unwrap();
    assert!(preset.contains("name = \"toy-000-batch_size=8\"") && preset.contains("iterations = 4"), "{preset}");

    // Simulate member 0's process dying after its step-2 checkpoint: its last checkpoint is gone
    // and its status still says running (its lock died with it).
    for ext in ["safetensors", "state.json"] {
        std::fs::remove_file(m0.join(format!("ckpt/step-4.{ext}"))).unwrap();
    }
    let status_path = sweep_dir(home).join("status/000.json");
    let status = std::fs::read_to_string(&status_path).unwrap().replace("\"done\"", "\"running\"");
    std::fs::write(&status_path, status).unwrap();
    let out = ok(&ayt(home, &["sweep", f, "--dry-run"]));
    assert!(out.lines().any(|l| l.contains(M0) && l.contains("interrupted")), "{out}");

    let out = ok(&ayt(home, &["sweep", f]));
    assert!(out.contains("resuming from its checkpoint at step 2"), "{out}");
    assert!(out.lines().any(|l| l.contains(M1) && l.contains("done, skipped")), "{out}");
    assert_eq!(losses(&m0), full, "the resumed member's losses equal the uninterrupted run's");
    assert_eq!(index_rows(home), vec![("done".into(), 4, 2), ("done".into(), 2, 1)]);

    // Everything finished: a re-run trains nothing.
    let out = ok(&ayt(home, &["sweep", f]));
    assert_eq!(out.matches("done, skipped").count(), 2, "{out}");

    // A changed grid is refused instead of mixing two grids in one folder.
    std::fs::write(&file, toy().replace("[8, 16]", "[8, 32]")).unwrap();
    let o = ayt(home, &["sweep", f]);
    assert!(!o.status.success() && text(&o).contains("changed since the sweep started"), "{}", text(&o));
}

#[test]
fn export_joins_scalars_eval_and_swept_fields_and_report_writes_plots_and_table() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let file = write_sweep(home);
    let f = file.to_str().unwrap();
    ok(&ayt(home, &["sweep", f]));
    // Member 0 gets an evaluation at its last step; member 1 none.
    let m0 = sweep_dir(home).join(M0);
    ok(&ayt(home, &["eval", m0.to_str().unwrap(), "--n", "32", "--evalnet-iterations", "5"]));
    let fd = RunLog::open(m0.join("run.h5")).unwrap().eval("fd_evalnet_1step").unwrap();
    assert_eq!(fd.step, vec![4]);

    let sweep = sweep_dir(home);
    let s = sweep.to_str().unwrap();
    let export = |format: &str, name: &str| {
        let out = home.join(name);
        ok(&ayt(home, &["export", s, "--format", format, "--out", out.to_str().unwrap()]));
        out
    };

    // CSV: one row per (run, step); missing values empty.
    let csv = std::fs::read_to_string(export("csv", "t.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..5], ["run", "step", "kimg", "wall_s", "train.batch_size"]);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    let (loss, fd_col) = (col("loss"), col("eval/fd_evalnet_1step"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4 + 2);
    assert_eq!((rows[0][0], rows[0][1], rows[0][4]), ("toy/000-batch_size=8", "1", "8"));
    assert_eq!((rows[5][0], rows[5][1], rows[5][4]), ("toy/001-batch_size=16", "2", "16"));
    assert_eq!(rows[5][2].parse::<f64>().unwrap(), 0.032, "kimg at the end of either member");
    assert!(rows.iter().all(|r| r[loss].parse::<f64>().is_ok()), "every step logged a loss");
    assert_eq!(rows[3][fd_col].parse::<f64>().unwrap(), fd.value[0], "the eval row joins its step");
    assert!(rows.iter().enumerate().all(|(i, r)| i == 3 || r[fd_col].is_empty()), "no FD elsewhere: empty");

    // JSON lines: the same rows, missing values null.
    let jsonl = std::fs::read_to_string(export("jsonl", "t.jsonl")).unwrap();
    let objs: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objs.len(), 6);
    // (serde_json's default float parser may miss the last bit; the text is exact)
    assert!((objs[3]["eval/fd_evalnet_1step"].as_f64().unwrap() - fd.value[0]).abs() <= 1e-12 * fd.value[0].abs());
    assert!(jsonl.lines().nth(3).unwrap().contains(&format!("\"eval/fd_evalnet_1step\":{}", fd.value[0])));
    assert!(objs[4]["eval/fd_evalnet_1step"].is_null());
    assert_eq!((objs[4]["run"].as_str(), objs[4]["train.batch_size"].as_i64()), (Some("toy/001-batch_size=16"), Some(16)));

    // HDF5: a dataset per column, in the order of the `columns` attribute; missing values NaN.
    let h5 = export("hdf5", "t.h5");
    let file = hdf5::File::open(&h5).unwrap();
    let names = columns::read_str_list_attr(&h5, &file, "columns").unwrap();
    assert_eq!(names.iter().map(String::as_str).collect::<Vec<_>>(), header);
    assert_eq!(columns::read_numbers::<i64>(&h5, &file, "step").unwrap(), vec![1, 2, 3, 4, 1, 2]);
    assert_eq!(columns::read_numbers::<i64>(&h5, &file, "train.batch_size").unwrap(), vec![8, 8, 8, 8, 16, 16]);
    let fds = columns::read_numbers::<f64>(&h5, &file.group("eval").unwrap(), "fd_evalnet_1step").unwrap();
    assert!(fds[3] == fd.value[0] && fds.iter().enumerate().all(|(i, v)| i == 3 || v.is_nan()), "{fds:?}");

    // A single run exports too (no swept columns).
    let one = home.join("one.csv");
    ok(&ayt(home, &["export", m0.to_str().unwrap(), "--out", one.to_str().unwrap()]));
    let one = std::fs::read_to_string(one).unwrap();
    assert!(one.starts_with("run,step,kimg,wall_s,") && one.lines().count() == 5 && !one.contains("train.batch_size"), "{one}");

    // The report: two PNGs and a table with "n/a" for the member without FD rows.
    let out = ok(&ayt(home, &["report", f, "--target-fd", "1e9"]));
    let report = sweep.join("report");
    // one heat-map panel per member, a row per batch size: 1 x 2 panels of 360 px
    assert_eq!(ayt::image_io::read_png(report.join("alignment_heatmap.png")).unwrap().0, 360);
    assert!(out.contains("alignment_heatmap.png"));
    for png in ["fd_vs_kimg.png", "alignment.png"] {
        let (w, h, c, _) = ayt::image_io::read_png(report.join(png)).unwrap();
        assert!(w > 300 && h > 100 && c == 3, "{png}: {w}x{h}x{c}");
        assert!(report.join(png).with_extension("svg").is_file(), "{png} as SVG too");
        assert!(out.contains(png));
    }
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    let row = |label: &str| md.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no row for {label}:\n{md}")).to_string();
    let (r0, r1) = (row(M0), row(M1));
    let final_fd = format!("{:.4}", fd.value[0]);
    assert!(r0.contains(&final_fd) && r0.contains("0.03") && r0.contains("done"), "member 0 reaches the target at 0.032 kimg: {r0}");
    assert!(r1.contains("n/a") && !r1.contains(&final_fd), "{r1}");
    // h5py reads the index (and pandas the whole sweep, with scripts/pandas_runs.py) where installed.
    let python = |code: &str| Command::new("python3").args(["-c", code]).output().map(|o| o.status.success()).unwrap_or(false);
    if python("import h5py") {
        let code =
            "import h5py, sys; f = h5py.File(sys.argv[1]); print([s.decode() for s in f['status'][:]], f['train.batch_size'][:].tolist())";
        let o = Command::new("python3").args(["-c", code]).arg(sweep.join("sweep.h5")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "['done', 'done'] [8, 16]", "{}", text(&o));
    }
    if python("import h5py, pandas") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pandas_runs.py");
        let o = Command::new("python3").arg(script).arg(&sweep).output().unwrap();
        let out = ok(&o);
        assert!(out.contains("toy/000-batch_size=8") && out.contains("eval/fd_evalnet_1step"), "{out}");
    } else {
        common::missing_tool("python3 with pandas and h5py");
    }
    // Without --target-fd the target is the median of the final FDs (here member 0's).
    ok(&ayt(home, &["report", s]));
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains(&format!("Target FD: {final_fd}")), "{md}");
}

#[test]
fn emit_slurm_writes_a_job_array_whose_tasks_run_one_member_each() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let file = write_sweep(home);
    let out_dir = home.join("slurm");
    let o = ayt(home, &["sweep", file.to_str().unwrap(), "--emit-slurm", out_dir.to_str().unwrap(), "--cpus", "4", "--time", "01:30:00"]);
    ok(&o);
    let script = std::fs::read_to_string(out_dir.join("toy.sbatch")).unwrap();
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(lines[0], "#!/bin/bash");
    for want in ["#SBATCH --array=0-1", "#SBATCH --cpus-per-task=4", "#SBATCH --time=01:30:00", "#SBATCH --job-name=ayt-toy"] {
        assert!(lines.contains(&want), "missing {want:?} in\n{script}");
    }
    let log = format!("#SBATCH --output={}/logs/toy-%A_%a.out", std::path::absolute(&out_dir).unwrap().display());
    assert!(lines.contains(&log.as_str()), "missing {log:?} in\n{script}");
    assert!(out_dir.join("logs").is_dir(), "Slurm needs the log folder to exist");
    // The one command: this sweep, one member per task.
    let commands: Vec<&&str> = lines.iter().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert_eq!(commands.len(), 1, "{script}");
    let cmd = commands[0];
    assert!(cmd.starts_with("exec '") && cmd.contains(" sweep '"), "{cmd}");
    assert!(cmd.contains(&format!("'{}'", std::path::absolute(&file).unwrap().display())), "{cmd}");
    assert!(cmd.contains(&format!("--home '{}'", std::path::absolute(home).unwrap().display())), "{cmd}");
    assert!(cmd.ends_with("--member \"$SLURM_ARRAY_TASK_ID\""), "{cmd}");
    // The sweep is planned (every task shares one plan), nothing has run.
    assert_eq!(index_rows(home), vec![("pending".into(), 0, 0), ("pending".into(), 0, 0)]);
    let o = ayt(home, &["sweep", file.to_str().unwrap(), "--emit-slurm", out_dir.to_str().unwrap(), "--time", "2 hours"]);
    assert!(!o.status.success() && text(&o).contains("--time"), "{}", text(&o));
}

#[test]
fn an_invalid_sweep_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, toy().replace("\"train.batch_size\" = [8, 16]", "\"train.batchsize\" = [8, 16]")).unwrap();
    let o = ayt(tmp.path(), &["sweep", p.to_str().unwrap()]);
    let err = text(&o);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("bad.toml") && err.contains("train.batchsize") && err.contains("unknown key"), "{err}");
    let o = ayt(tmp.path(), &["sweep", write_sweep(tmp.path()).to_str().unwrap(), "--member", "5"]);
    assert!(!o.status.success() && text(&o).contains("--member 5") && text(&o).contains("2 members"), "{}", text(&o));
}

#[test]
fn the_tui_queue_holds_the_unfinished_members_and_their_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = ayt::paths::Paths::resolve(Some(tmp.path().to_path_buf()));
    let spec = ayt::sweep::SweepSpec::load(&write_sweep(tmp.path())).unwrap();
    let (dir, plan) = ayt::sweep::plan::open_or_create(&spec, &paths).unwrap();
    let (requests, locks) = ayt::sweep::runner::queue_unfinished(&dir, &plan).unwrap();
    let outs: Vec<PathBuf> = requests
        .iter()
        .map(|r| match r {
            ayt::engine::RunRequest::New { out: Some(out), preset, .. } => {
                assert!(preset.name.starts_with("toy-00"));
                out.clone()
            }
            other => panic!("expected a new run into the member folder, got {other:?}"),
        })
        .collect();
    assert_eq!(outs, vec![dir.run_dir(M0), dir.run_dir(M1)]);
    // While the UI holds the locks, `ayt sweep` leaves both members alone.
    let o = ayt(tmp.path(), &["sweep", spec.path.to_str().unwrap()]);
    assert_eq!(text(&o).matches("running in another process").count(), 2, "{}", text(&o));
    drop(locks);
    assert!(!ayt::sweep::lock::FileLock::is_held(&dir.member_lock_path(0)).unwrap());
}

#[test]
fn a_failing_member_is_recorded_and_the_others_still_run() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("toy-sweep.toml");
    std::fs::write(&p, toy().replace("\"train.batch_size\" = [8, 16]", "\"data.dataset\" = [\"nope\", \"disks\"]")).unwrap();
    let o = ayt(tmp.path(), &["sweep", p.to_str().unwrap()]);
    let out = text(&o);
    assert!(!o.status.success() && !out.contains("panicked"), "{out}");
    assert!(out.contains("1 member(s) failed") && out.contains("member 0") && out.contains("nope"), "{out}");
    let rows = index_rows(tmp.path());
    assert_eq!((rows[0].0.as_str(), rows[1].0.as_str()), ("failed", "done"), "{rows:?}");
    let path = sweep_dir(tmp.path()).join("sweep.h5");
    let error = columns::read_text(&path, &hdf5::File::open(&path).unwrap(), "error").unwrap();
    assert!(error[0].contains("nope") && error[1].is_empty(), "{error:?}");
    // A re-run retries the failed member only.
    let out = text(&ayt(tmp.path(), &["sweep", p.to_str().unwrap()]));
    assert!(out.contains("1 member(s) failed") && out.contains("1 already done"), "{out}");
    assert_eq!(index_rows(tmp.path())[0], ("failed".to_string(), 0, 2));
}

/// Issue 16's report: a 2-seed x 2-loss toy sweep tuned from one checkpoint, FD evaluated twice
/// per point (`eval.repeats`), the shared start evaluated once per seed at kimg 0; the report
/// pools seeds with intervals and pairs the losses at equal seeds.
#[test]
fn a_two_seed_sweep_reports_group_intervals_and_paired_losses_from_a_shared_kimg_0() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let base = home.join("base");
    let pre = home.join("pre.toml");
    std::fs::write(&pre, common::tiny_ect("pre", 2, "every = 1\nsample_every = 0\ncheckpoint_every = 0")).unwrap();
    ok(&ayt(home, &["train", "--preset", pre.to_str().unwrap(), "--out", base.to_str().unwrap()]));
    let run = common::tiny_ect("toy", 1, "every = 1\nsample_every = 0\ncheckpoint_every = 0")
        .replace("[train]\n", &format!("[train]\ninit = \"{}\"\n", base.display()));
    let text = format!(
        "{run}\n[probe]\nevery = 2\nn = 8\n[eval]\nevery_kimg = 0.016\nn = 32\nrepeats = 2\nevalnet_iterations = 5\n[lpips]\nresize = 32\n\
         [sweep]\nkimg = 0.032\nseed = [0, 1]\n\"train.loss\" = [\"l2\", \"lpips\"]\n"
    );
    let file = home.join("toy-sweep.toml");
    std::fs::write(&file, text).unwrap();
    let out = ok(&ayt(home, &["sweep", file.to_str().unwrap()]));
    // kimg 0: computed for the first member of each seed, read from the cache by the second
    assert_eq!(out.matches("eval of the starting weights (kimg 0) from the cache").count(), 2, "{out}");
    let dir = sweep_dir(home);
    let members: Vec<PathBuf> = ["000-seed=0-loss=l2", "001-seed=0-loss=lpips", "002-seed=1-loss=l2", "003-seed=1-loss=lpips"]
        .iter()
        .map(|m| dir.join(m))
        .collect();
    let fd: Vec<_> = members.iter().map(|m| RunLog::open(m.join("run.h5")).unwrap().eval("fd_evalnet_1step").unwrap()).collect();
    for f in &fd {
        assert_eq!(f.step, vec![0, 2, 4], "kimg 0, then every 0.016 kimg");
        assert_eq!(f.kimg[0], 0.0);
        let attrs: std::collections::HashMap<_, _> = f.attrs.iter().cloned().collect();
        assert!(attrs["repeats"].starts_with("2 "), "{attrs:?}");
    }
    assert_eq!(fd[0].value[0], fd[1].value[0], "one start, one seed: one measured point");
    assert_ne!(fd[0].value[0], fd[2].value[0], "another seed draws other evaluation noise");
    let sd = RunLog::open(members[0].join("run.h5")).unwrap().eval("fd_evalnet_1step_sd").unwrap();
    assert!(sd.value.iter().all(|v| v.is_finite() && *v > 0.0), "two repeats with their own noise differ: {:?}", sd.value);

    // A target every member reaches: the median of the final FDs is reached by half at least.
    ok(&ayt(home, &["report", file.to_str().unwrap()]));
    let md = std::fs::read_to_string(dir.join("report/report.md")).unwrap();
    let section = |title: &str| md.split(title).nth(1).unwrap_or_else(|| panic!("no {title}:\n{md}")).to_string();
    let seeds = section("## Over seeds");
    for group in ["train.loss=l2", "train.loss=lpips"] {
        let row = seeds.lines().find(|l| l.starts_with(&format!("| {group} |"))).unwrap_or_else(|| panic!("no {group}:\n{md}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], "2", "two seeds: {row}");
        // the mean of the two finals, with a t interval around it
        let finals: Vec<f64> = fd
            .iter()
            .zip(&members)
            .filter(|(_, m)| m.to_str().unwrap().ends_with(&group[11..]))
            .map(|(f, _)| *f.value.last().unwrap())
            .collect();
        let mean = (finals[0] + finals[1]) / 2.0;
        assert!(cells[3].starts_with(&format!("{mean:.4} [")), "{row} (finals {finals:?})");
    }
    let paired = section("## Losses compared at equal seeds");
    let row = paired.lines().find(|l| l.starts_with("| (all) | l2 | lpips |")).unwrap_or_else(|| panic!("{md}"));
    let diffs: Vec<f64> = [(0, 1), (2, 3)].iter().map(|(a, b)| fd[*b].value.last().unwrap() - fd[*a].value.last().unwrap()).collect();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[4], "2", "{row}");
    assert!(cells[5].starts_with(&format!("{:.4} [", (diffs[0] + diffs[1]) / 2.0)), "{row} (diffs {diffs:?})");
    // probe columns carry intervals
    let member = md.lines().find(|l| l.contains("000-seed=0-loss=l2")).unwrap();
    assert!(member.matches('[').count() >= 3, "{member}");

    // `ayt view` on the sweep file: its members with their swept values, drawn per setting,
    // and the summary table pools the seeds as the report does.
    let viewed = ayt::tui::runs::load_view(std::slice::from_ref(&file), &ayt::paths::Paths { home: home.to_path_buf() }).unwrap();
    assert_eq!(viewed.sweeps.len(), 1, "followed: members that start later join");
    let runs = viewed.runs;
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[2].swept, vec![("seed".to_string(), "1".to_string()), ("train.loss".to_string(), "l2".to_string())]);
    let app = ayt::tui::App::viewer(runs);
    assert!(app.drawing_groups());
    let table = app.summary_table();
    let final_fd = table.columns.iter().position(|c| c == "final FD").unwrap();
    assert_eq!(table.rows.len(), 2, "{:?}", table.columns);
    let l2 = &table.rows[0];
    assert_eq!((l2.runs.clone(), &l2.cells[0]), (vec![0, 2], &ayt::tui::table::Cell::Text("l2".into())));
    let ayt::tui::table::Cell::Num(Some(mean), Some(_)) = l2.cells[final_fd] else { panic!("{:?}", l2.cells) };
    let want = (fd[0].value.last().unwrap() + fd[2].value.last().unwrap()) / 2.0;
    assert!((mean - want).abs() < 1e-9, "{mean} vs {want}");
    let text = ayt::tui::render_to_text(&app, 160, 48);
    assert!(text.contains("loss=l2 (2)") && text.contains("loss=lpips (2)"), "{text}");
}
