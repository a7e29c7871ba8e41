//! End-to-end tests of the `ayt` binary: errors a user can make, and a real (tiny) training run.

mod common;
use common::ayt;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ayt::store::RunLog;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_failure(o: &Output, must_mention: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert!(!err.contains("panicked"), "panicked instead of an error: {err}");
    for m in must_mention {
        assert!(err.contains(m), "error should mention {m:?}: {err}");
    }
}

/// Six steps, checkpoints at 3 and 6.
fn tiny() -> String {
    common::tiny_ect("tiny", 6, "every = 1\nsample_every = 0\nsample_count = 4\ncheckpoint_every = 3\nkeep_checkpoints = 0")
}

fn write_preset(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("p.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_bad_preset_names_file_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny().replace("batch_size = 8", "batch_size = \"eight\""));
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap()]);
    assert_clean_failure(&o, &["p.toml", "batch_size", "eight"]);
    let p = write_preset(tmp.path(), &tiny().replace("[model]", "[model]\nchanels = [4]"));
    assert_clean_failure(&ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap()]), &["p.toml", "chanels"]);
    let missing = tmp.path().join("nope.toml");
    assert_clean_failure(&ayt(tmp.path(), &["train", "--preset", missing.to_str().unwrap()]), &["nope.toml"]);
    let p = write_preset(tmp.path(), &tiny());
    assert_clean_failure(&ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--set", "train.lr=-1"]), &["train.lr"]);
}

/// Every command that runs a network takes `--device` (and `$AYT_DEVICE`); without the `cuda`
/// feature a CUDA device is one line naming the feature, before anything is written.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_cuda_device_without_the_cuda_feature_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny());
    let preset = p.to_str().unwrap();
    let run = tmp.path().join("run");
    let runs = run.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["train", "--preset", preset, "--out", runs],
        vec!["resume", runs],
        vec!["sample", runs, "--out", "x.png"],
        vec!["eval", runs],
        vec!["probe", runs],
        vec!["bench", "unet"],
        vec!["features", "train", "--preset", preset],
        vec!["lpips", "a.png", "b.png"],
        vec!["sweep", preset],
        vec!["tui"],
    ];
    for args in commands {
        let mut with_flag = args.clone();
        with_flag.extend(["--device", "cuda:0"]);
        let o = ayt(tmp.path(), &with_flag);
        assert_clean_failure(&o, &["--device cuda:0", "`cuda` feature", "--features cuda"]);
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{args:?}: {}", stderr(&o));
        // the same from the environment
        let o =
            Command::new(env!("CARGO_BIN_EXE_ayt")).args(&args).env("AYT_HOME", tmp.path()).env("AYT_DEVICE", "cuda:1").output().unwrap();
        assert_clean_failure(&o, &["--device cuda:1", "`cuda` feature"]);
    }
    // `ayt` alone (the launcher) takes its device from the environment only.
    let o = Command::new(env!("CARGO_BIN_EXE_ayt")).env("AYT_HOME", tmp.path()).env("AYT_DEVICE", "cuda:0").output().unwrap();
    assert_clean_failure(&o, &["--device cuda:0", "`cuda` feature"]);
    assert!(!run.exists(), "nothing is written before the device is opened");
    let o = ayt(tmp.path(), &["train", "--preset", preset, "--device", "tpu"]);
    assert_clean_failure(&o, &["--device tpu", "expected cpu or cuda:N"]);
}

#[test]
fn truncated_and_wrong_magic_idx_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("imgs.idx");
    let labels = tmp.path().join("labels.idx");
    // header for 10 images of 4x4, but only 5 bytes of pixels
    let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 4, 0, 0, 0, 4];
    bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
    std::fs::write(&images, &bytes).unwrap();
    std::fs::write(&labels, [0u8, 0, 8, 1, 0, 0, 0, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
    let o = ayt(tmp.path(), &["data", "import", "mnist", images.to_str().unwrap(), labels.to_str().unwrap(), "--name", "x"]);
    assert_clean_failure(&o, &["imgs.idx", "truncated"]);
    std::fs::write(&images, [0u8, 0, 9, 9, 0, 0, 0, 0]).unwrap();
    let o = ayt(tmp.path(), &["data", "import", "mnist", images.to_str().unwrap(), labels.to_str().unwrap(), "--name", "x"]);
    assert_clean_failure(&o, &["imgs.idx", "magic"]);
    assert!(!tmp.path().join("datasets/x.h5").exists(), "a failed import must not leave a data set behind");
}

#[test]
fn an_unknown_dataset_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny().replace("dataset = \"disks\"", "dataset = \"cifar10\""));
    assert_clean_failure(&ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap()]), &["cifar10", "ayt data import"]);
}

fn losses(run: &Path) -> Vec<(i64, f64)> {
    let s = RunLog::open(run.join("run.h5")).unwrap().scalar("loss").unwrap();
    s.step.into_iter().zip(s.value).collect()
}

#[test]
fn training_writes_a_readable_run_and_resume_matches_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny());
    let run_a = tmp.path().join("a");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run_a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The run folder: log, resolved preset, checkpoints, final samples.
    let log = RunLog::open(run_a.join("run.h5")).unwrap();
    let meta = log.meta().unwrap();
    assert_eq!((meta.seed, meta.dataset.as_str()), (1, "disks"));
    assert!(meta.preset_toml.contains("tiny"));
    assert!(run_a.join("preset.toml").exists() && run_a.join("samples/step-6.png").exists());
    assert_eq!(ayt::paths::RunDir::new(&run_a).checkpoints().unwrap(), vec![3, 6]);
    let (_, grid) = log.last_samples().unwrap().expect("samples in run.h5");
    assert_eq!((grid.n, grid.h, grid.w, grid.c), (4, 8, 8, 1));
    let full = losses(&run_a);
    assert_eq!(full.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);

    // Interrupt after the step-3 checkpoint: drop the last checkpoint, then resume.
    let (run_b, o) = resume_copy_at_step_3(tmp.path(), &run_a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(losses(&run_b), full, "resumed run's losses differ from the uninterrupted run's");

    // Sampling from the finished run.
    let png = tmp.path().join("grid.png");
    let o = ayt(tmp.path(), &["sample", run_a.to_str().unwrap(), "--n", "4", "--steps", "2", "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (w, h, c, _) = ayt::image_io::read_png(&png).unwrap();
    assert_eq!((w, h, c), (2 * 8 + 3, 2 * 8 + 3, 1));

    // A second `train` into the same folder must not clobber it.
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run_a.to_str().unwrap()]);
    assert_clean_failure(&o, &["already holds a run"]);
    assert_eq!(losses(&run_a), full);
}

#[test]
fn probes_land_in_the_run_log_and_ayt_probe_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("{}\n[probe]\nevery = 3\nn = 8\nbins = 10\n", tiny().replace("checkpoint_every = 3", "checkpoint_every = 0"));
    let p = write_preset(tmp.path(), &text);
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = RunLog::open(run.join("run.h5")).unwrap();
    let h = log.hist("tangent/l2/rho").unwrap();
    assert_eq!(h.step, vec![3, 6], "a probe every 3 steps and at the end");
    assert!(h.counts.iter().all(|c| c.iter().sum::<i64>() == 8), "every probe sample is counted");
    assert_eq!(h.edges[0].len(), 11);
    let osc = log.hist("tangent/l2/oscillation").unwrap();
    assert_eq!(osc.step, vec![6], "oscillation needs a previous probe");
    let means = log.scalar("tangent/l2/toward_mean").unwrap();
    assert!(means.value.iter().all(|v| (-1.0..=1.0).contains(v)));

    let png = tmp.path().join("probe.png");
    let o = ayt(tmp.path(), &["probe", run.to_str().unwrap(), "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    // every metric of the loss beside its chance value: drawn, with its interval, and exact
    // (rho's closed form on 8x8 disks with a 3-dimensional tangent space: 1 - 3/64)
    let row = |metric: &str| {
        table.lines().find(|l| l.starts_with(&format!("{metric:<16} l2 "))).unwrap_or_else(|| panic!("no {metric} row: {table}"))
    };
    assert!(row("rho").ends_with("0.9531"), "{table}");
    for metric in ["toward", "excess", "toward_manifold", "normal_toward"] {
        assert_eq!(row(metric).matches('[').count(), 2, "a mean and a chance value, each with an interval: {}", row(metric));
    }
    assert!(table.contains("means by noise level") && table.contains("t>10"), "{table}");
    assert!(png.exists());
    // the run's logged rho histograms over training (probes at steps 3 and 6), one panel per loss
    let (w, _, _, _) = ayt::image_io::read_png(tmp.path().join("probe_over_training.png")).unwrap();
    // the losses: the rows of rho's mean (with an interval) in the first table
    let losses = table.lines().filter(|l| l.starts_with("rho ") && l.contains('[')).count();
    assert_eq!(w, losses * 360, "{losses} panels of 360 px");
    assert!(tmp.path().join("probe_over_training.svg").is_file() && tmp.path().join("probe.svg").is_file(), "and as SVG");
    // the local-PCA sensitivity is for image data; disks have an exact tangent space
    let o = ayt(tmp.path(), &["probe", run.to_str().unwrap(), "--m", "2,4"]);
    assert_clean_failure(&o, &["exact tangent space"]);
}

/// On image data: local-PCA geometry, toward-manifold, and `--k/--m` sensitivity with its warning.
#[test]
fn ayt_probe_on_mnist_reports_local_pca_metrics_for_several_m() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny()
        .replace("dataset = \"disks\"", "dataset = \"mnist\"")
        .replace("[data.disks]\nsize = 8\nradius_min = 1.5\nradius_max = 3.0\n", "")
        .replace("iterations = 6", "iterations = 2")
        + "\n[probe]\nn = 8\nk = 16\nm = 2\n";
    let p = write_preset(tmp.path(), &text);
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let png = tmp.path().join("probe.png");
    let o = ayt(tmp.path(), &["probe", run.to_str().unwrap(), "--m", "2,4", "--k", "8,16", "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("d = 784; local PCA K = 16, m = 2"), "{table}");
    assert!(stderr(&o).contains("K = 8 neighbours for m = 4"), "K < 4m warns: {}", stderr(&o));
    // rho's chance value is 1 - m/784 in every (K, m) row: 0.9974 at m = 2, 0.9949 at m = 4
    let sens: Vec<&str> = table.lines().skip_while(|l| !l.starts_with("local-PCA sensitivity")).collect();
    for (k, m, chance) in [(8, 2, "0.9974"), (8, 4, "0.9949"), (16, 2, "0.9974"), (16, 4, "0.9949")] {
        let prefix = format!("{k:>4} {m:>4} l2 ");
        let row = sens.iter().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no K={k} m={m} row: {table}"));
        assert!(row.ends_with(chance), "{row}");
    }
    let l2 = |metric: &str| table.lines().find(|l| l.starts_with(&format!("{metric:<16} l2 "))).unwrap().to_string();
    assert!(!l2("toward_manifold").contains("n/a"), "{table}");
}

#[test]
fn ayt_eval_stores_fd_with_its_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny().replace("iterations = 6", "iterations = 2"));
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ayt(tmp.path(), &["eval", run.to_str().unwrap(), "--n", "64", "--evalnet-iterations", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = RunLog::open(run.join("run.h5")).unwrap();
    let names = log.eval_names().unwrap();
    for m in ["fd_evalnet_1step", "fd_evalnet_2step", "dfd_evalnet_sigma0.2", "dfd_evalnet_sigma0.4", "dfd_evalnet_sigma0.8"] {
        assert!(names.iter().any(|n| n == m), "missing {m} in {names:?}");
    }
    let e = log.eval("fd_evalnet_1step").unwrap();
    assert_eq!(e.step, vec![2]);
    assert!(e.value[0].is_finite() && e.value[0] >= 0.0);
    let attrs: std::collections::HashMap<_, _> = e.attrs.into_iter().collect();
    assert!(attrs["extractor"].starts_with("evalnet") && attrs["n_samples"] == "64" && attrs["sampler"] == "1-step", "{attrs:?}");
    assert!(!String::from_utf8_lossy(&o.stdout).to_lowercase().contains("fid"), "a proxy must never be called FID");
    let missing = tmp.path().join("nope.safetensors");
    let o = ayt(tmp.path(), &["eval", run.to_str().unwrap(), "--n", "64", "--inception", missing.to_str().unwrap()]);
    assert_clean_failure(&o, &["nope.safetensors"]);
    assert!(!names.iter().any(|n| n.contains("heun")), "a consistency run has no Heun metric: {names:?}");

    // A diffusion (EDM) run is also evaluated and sampled with EDM's Heun sampler.
    let p = write_preset(tmp.path(), &tiny().replace("iterations = 6", "iterations = 2").replace("mode = \"ect\"", "mode = \"edm\""));
    let edm = tmp.path().join("edm");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", edm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ayt(tmp.path(), &["eval", edm.to_str().unwrap(), "--n", "64", "--evalnet-iterations", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let heun = RunLog::open(edm.join("run.h5")).unwrap().eval("fd_evalnet_heun18").unwrap();
    let attrs: std::collections::HashMap<_, _> = heun.attrs.into_iter().collect();
    assert!(heun.value[0].is_finite() && attrs["sampler"] == "18-step Heun (35 evaluations)", "{attrs:?}");
    let o = ayt(tmp.path(), &["eval", edm.to_str().unwrap(), "--n", "64", "--heun-steps", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = RunLog::open(edm.join("run.h5")).unwrap().eval("fd_evalnet_heun18").unwrap().step.len();
    assert_eq!(rows, 1, "--heun-steps 0 adds no Heun row");
    let png = tmp.path().join("edm.png");
    let o = ayt(tmp.path(), &["sample", edm.to_str().unwrap(), "--n", "4", "--out", png.to_str().unwrap()]);
    assert!(o.status.success() && stderr(&o).contains("18-step Heun"), "{}", stderr(&o));
    let o = ayt(tmp.path(), &["sample", edm.to_str().unwrap(), "--sampler", "consistency", "--steps", "3", "--out", png.to_str().unwrap()]);
    assert_clean_failure(&o, &["--steps 3", "1 or 2 steps"]);
}

/// Two EMA profiles: `ayt sample --ema` and `ayt eval --ema` (also with `--fid`) take a profile
/// by name, the first by default; an unknown name fails listing the run's profiles; a profile
/// other than the default is logged as `<metric>@<profile>`, every value naming its weights.
#[test]
fn ema_profiles_are_sampled_and_evaluated_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = "[[train.ema]]\nname = \"fast\"\ndecay = 0.5\n[[train.ema]]\nname = \"slow\"\ndecay = 0.99\n";
    let text = tiny().replace("iterations = 6", "iterations = 2").replace("ema_decay = 0.9\n", profiles);
    let p = write_preset(tmp.path(), &text);
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = run.to_str().unwrap();
    let png = tmp.path().join("s.png");
    let png = png.to_str().unwrap();
    let unknown = ["no EMA profile \"nope\"", "fast, slow", r];
    assert_clean_failure(&ayt(tmp.path(), &["sample", r, "--ema", "nope", "--n", "4", "--out", png]), &unknown);
    assert_clean_failure(&ayt(tmp.path(), &["eval", r, "--ema", "nope", "--n", "64"]), &unknown);
    assert_clean_failure(&ayt(tmp.path(), &["eval", r, "--fid", "--ema", "nope", "--fid-n", "3"]), &unknown);
    assert_clean_failure(&ayt(tmp.path(), &["sample", r, "--raw", "--ema", "slow", "--out", png]), &["--raw", "--ema"]);
    for (args, says) in [(vec!["--ema", "slow"], "EMA \"slow\" (decay 0.99 per step)"), (vec![], "EMA \"fast\" (decay 0.5 per step)")] {
        let o = ayt(tmp.path(), &[&["sample", r, "--n", "4", "--out", png][..], &args].concat());
        assert!(o.status.success() && stderr(&o).contains(says), "{}", stderr(&o));
    }

    let eval = |extra: &[&str]| {
        let o = ayt(tmp.path(), &[&["eval", r, "--n", "64", "--evalnet-iterations", "10", "--json"][..], extra].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (slow, fast) = (eval(&["--ema", "slow"]), eval(&[]));
    assert_eq!((slow["ema"].as_str(), fast["ema"].as_str()), (Some("slow"), Some("fast")));
    let (s, f) = (slow["fd_evalnet_1step@slow"].as_f64().unwrap(), fast["fd_evalnet_1step"].as_f64().unwrap());
    assert!(s.is_finite() && f.is_finite() && s != f, "slow {s}, fast {f}: other weights, other samples");
    let log = RunLog::open(run.join("run.h5")).unwrap();
    for (metric, says) in [("fd_evalnet_1step@slow", "EMA \"slow\" (decay 0.99"), ("fd_evalnet_1step", "EMA \"fast\" (decay 0.5")] {
        let e = log.eval(metric).unwrap();
        let attrs: std::collections::HashMap<_, _> = e.attrs.into_iter().collect();
        assert!(e.step == [2] && attrs["weights"].starts_with(says), "{metric}: {attrs:?}");
    }
    assert!(log.eval_names().unwrap().iter().all(|n| !n.contains("@fast")), "the default keeps the metric names");
}

#[test]
fn denoiser_training_loss_falls_on_disks() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny()
        .replace("mode = \"ect\"", "mode = \"edm\"")
        .replace("iterations = 6", "iterations = 150")
        .replace("checkpoint_every = 3", "checkpoint_every = 0");
    let p = write_preset(tmp.path(), &text);
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l: Vec<f64> = losses(&run).into_iter().map(|r| r.1).collect();
    assert_eq!(l.len(), 150);
    let first = l[..20].iter().sum::<f64>() / 20.0;
    let last = l[130..].iter().sum::<f64>() / 20.0;
    assert!(last < 0.6 * first, "EDM loss did not fall: first 20 mean {first}, last 20 mean {last}");
}

/// A notebook's `h5py.File(path, "r")` (default flags) held open through a whole run: training
/// never fails on the reader's file lock, and every row lands.
#[test]
fn a_reader_holding_run_h5_open_never_stops_the_run() {
    if !python_has("h5py") {
        return common::missing_tool("python3 with h5py");
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let log = run.join("run.h5");
    let stop = tmp.path().join("stop");
    let reader = r#"
import h5py, os, sys, time
path, stop = sys.argv[1], sys.argv[2]
# the file may exist before its superblock is written: retry the open until it reads
f = None
while f is None:
    try:
        f = h5py.File(path, "r")
    except OSError:
        time.sleep(0.005)
print("open", flush=True)
reads = 0
while not os.path.exists(stop):
    try:
        reads += len(list(f["scalars"].keys())) >= 0
    except Exception:
        pass
    time.sleep(0.02)
print("reads", reads, flush=True)
f.close()
"#;
    let reader = Command::new("python3")
        .args(["-c", reader, log.to_str().unwrap(), stop.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let p = write_preset(
        tmp.path(),
        &common::tiny_ect("held", 40, "every = 1\nsample_every = 10\nsample_count = 4\ncheckpoint_every = 5\nkeep_checkpoints = 0"),
    );
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    std::fs::write(&stop, "").unwrap();
    let out = reader.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("open"), "the reader never held the file: {said}");
    assert!(o.status.success(), "a reader holding run.h5 open stopped the run: {}", stderr(&o));
    let loss = RunLog::open(&log).unwrap().scalar("loss").unwrap();
    assert_eq!(loss.step, (1..=40).collect::<Vec<i64>>(), "every row lands");
    assert_eq!(ayt::paths::RunDir::new(&run).checkpoints().unwrap(), vec![5, 10, 15, 20, 25, 30, 35, 40]);
}

/// An absurd learning rate makes the loss NaN at step 2: "stop" fails naming the step, the value
/// and the last good checkpoint, with the rows before it written; "rollback" goes back to that
/// checkpoint `max_rollbacks` times, then stops the same way.
#[test]
fn a_non_finite_loss_stops_or_rolls_back_naming_step_value_and_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny().replace("checkpoint_every = 3", "checkpoint_every = 1"));
    let train = |name: &str, sets: &[&str]| {
        let run = tmp.path().join(name);
        let mut args = vec!["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap(), "--set", "train.lr=1e30"];
        sets.iter().for_each(|s| args.extend(["--set", s]));
        (ayt(tmp.path(), &args), run)
    };
    let (o, run) = train("stop", &[]);
    let ckpt = run.join("ckpt/step-1.safetensors").display().to_string();
    assert_clean_failure(&o, &["step 2: the loss is NaN", "the last good checkpoint is step 1", &ckpt]);
    assert_eq!(RunLog::open(run.join("run.h5")).unwrap().scalar("loss").unwrap().step, vec![1], "the buffered rows are written");

    let (o, run) = train("rollback", &["train.on_nonfinite=\"rollback\"", "train.max_rollbacks=2"]);
    assert_clean_failure(
        &o,
        &["step 2: the loss is NaN after 2 rollbacks (train.max_rollbacks = 2)", "the last good checkpoint is step 1"],
    );
    let err = stderr(&o);
    assert_eq!(err.matches("rolled back to the checkpoint at step 1").count(), 2, "{err}");
    assert_eq!(RunLog::open(run.join("run.h5")).unwrap().scalar("loss").unwrap().step, vec![1], "no row repeats after a rollback");
}

fn python_has(module: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {module}")]).output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn h5py_reads_the_run_log_when_available() {
    let has_h5py = common::python_imports("h5py");
    if !has_h5py {
        common::missing_tool("python3 with h5py");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = write_preset(tmp.path(), &tiny().replace("iterations = 6", "iterations = 2"));
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read_run.py");
    let o = Command::new("python3").arg(script).arg(run.join("run.h5")).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "read_run.py failed: {}", stderr(&o));
    assert!(out.contains("loss") && out.contains("schema_version"), "{out}");
}

#[test]
fn evaluation_during_training_lands_in_the_log_and_a_resumed_run_repeats_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    // 8 images a step: every 0.016 kimg is every 2 steps; the end (step 6) is one of them
    let text = format!("{}\n[eval]\nevery_kimg = 0.016\nn = 32\nevalnet_iterations = 5\n", tiny());
    let p = write_preset(tmp.path(), &text);
    let run_a = tmp.path().join("a");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run_a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("eval at step 2"), "{}", stderr(&o));
    let log = RunLog::open(run_a.join("run.h5")).unwrap();
    let fd = log.eval("fd_evalnet_1step").unwrap();
    assert_eq!(fd.step, vec![2, 4, 6], "every 2 steps and once at the end");
    assert!(fd.kimg.iter().zip([0.016, 0.032, 0.048]).all(|(a, b)| (a - b).abs() < 1e-12), "{:?}", fd.kimg);
    assert!(fd.value.iter().all(|v| v.is_finite() && *v >= 0.0));
    let attrs: std::collections::HashMap<_, _> = fd.attrs.into_iter().collect();
    assert_eq!(attrs["n_samples"], "32");
    let names = log.eval_names().unwrap();
    for m in ["dfd_evalnet_sigma0.4", "disk_in_range_2step", "disk_residual_rms_1step", "disk_mae_radius_sigma0.8"] {
        assert!(names.iter().any(|n| n == m), "missing {m} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("fid")), "no Inception weights given, so no FID: {names:?}");
    // reference statistics were cached once for the data set, extractor and n
    let cached: Vec<_> = std::fs::read_dir(tmp.path().join("cache")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");

    // Resume from the step-3 checkpoint: same losses, and the same evaluations (fixed eval noise)
    let (run_b, o) = resume_copy_at_step_3(tmp.path(), &run_a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("from the cache"), "the resumed run reuses the reference statistics: {}", stderr(&o));
    assert_eq!(losses(&run_b), losses(&run_a), "evaluation must not disturb the training streams");
    let fd_b = RunLog::open(run_b.join("run.h5")).unwrap().eval("fd_evalnet_1step").unwrap();
    assert_eq!((fd_b.step, fd_b.value), (fd.step, fd.value));
}

/// Copies run `run_a` as it was at its step-3 checkpoint (log, preset, that checkpoint) into
/// `<home>/b`, as a run interrupted there, and resumes it.
fn resume_copy_at_step_3(home: &Path, run_a: &Path) -> (PathBuf, Output) {
    let run_b = home.join("b");
    std::fs::create_dir_all(run_b.join("ckpt")).unwrap();
    for f in ["run.h5", "preset.toml", "ckpt/step-3.safetensors", "ckpt/step-3.state.json"] {
        std::fs::copy(run_a.join(f), run_b.join(f)).unwrap();
    }
    let o = ayt(home, &["resume", run_b.to_str().unwrap()]);
    (run_b, o)
}

/// `--preset NAME` finds NAME.toml in the user's preset folder ($AYT_PRESETS) before the shipped
/// ones; an unknown name lists the known presets.
#[test]
fn presets_are_found_by_name_and_an_unknown_name_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mine = tmp.path().join("my-presets");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("tiny-mine.toml"), tiny()).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ayt")).args(args).env("AYT_HOME", tmp.path()).env("AYT_PRESETS", &mine).output().unwrap()
    };
    let out = tmp.path().join("r");
    let o = run(&["train", "--preset", "tiny-mine", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(losses(&out).len(), 6);
    let o = run(&["train", "--preset", "tiny-mien"]);
    assert_clean_failure(&o, &["tiny-mien", "known presets", "tiny-mine", "mnist-edm", "quick-disks"]);
    assert_clean_failure(&run(&["sweep", "paper-mnist-swep", "--dry-run"]), &["paper-mnist-swep", "paper-mnist-sweep"]);
}

/// A run that only probes MFD (it trains with another loss) still runs when its phi is missing:
/// it probes L2 and LPIPS, says why, draws `<run>/probe.png` and prints where it and the samples are.
#[test]
fn a_missing_phi_for_probing_only_warns_and_the_run_ends_with_its_probe_png() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny().replace("sample_every = 0", "sample_every = 6") + "\n[probe]\nevery = 3\nn = 8\n[mfd]\nfeatures = \"nope-phi\"\n";
    let p = write_preset(tmp.path(), &text);
    let run = tmp.path().join("r");
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("probes compare L2 and LPIPS only") && err.contains("nope-phi"), "{err}");
    assert!(err.contains(&format!("tangent alignment of the last probe: {}", run.join("probe.png").display())), "{err}");
    assert!(err.contains(&format!("samples: {}", run.join("samples").display())), "{err}");
    let (w, h, c, _) = ayt::image_io::read_png(run.join("probe.png")).unwrap();
    assert_eq!((w, h, c), (640, 44 + 3 * 260, 3), "a title and three panels: toward, rho, toward_manifold");
    assert!(run.join("probe.svg").is_file());
    let names = RunLog::open(run.join("run.h5")).unwrap().hist_names().unwrap();
    assert!(names.iter().any(|n| n == "tangent/lpips/rho") && !names.iter().any(|n| n.contains("/mfd/")), "{names:?}");
    // a run that trains with MFD has no such fallback: the missing phi is an error before it starts
    let p = write_preset(tmp.path(), &text.replace("mode = \"ect\"", "mode = \"ect\"\nloss = \"mfd\""));
    let o = ayt(tmp.path(), &["train", "--preset", p.to_str().unwrap(), "--out", tmp.path().join("r2").to_str().unwrap()]);
    assert_clean_failure(&o, &["nope-phi"]);
}
