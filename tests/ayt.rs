//! The AYT pipeline end to end on tiny problems: train phi, then consistency training with MFD.

mod common;

use std::process::Output;

use ayt::store::RunLog;
use candle_core::{Device, Tensor};
use common::ayt;

fn ok(o: &Output) {
    assert!(o.status.success(), "ayt failed: {}", String::from_utf8_lossy(&o.stderr));
}

const DISKS: &str = r#"
[data]
dataset = "disks"
[data.disks]
size = 8
radius_min = 1.5
radius_max = 3.0
"#;

const PHI: &str = r#"
name = "tiny-phi"
seed = 2
[phi]
widths = [8, 8]
groups = 4
[augment]
p = 0.5
groups = ["geometric", "degradation"]
[train]
batch_size = 16
iterations = 60
lr = 3e-3
log_every = 1
eval_images = 128
eval_every = 30
"#;

const AYT: &str = r#"
name = "tiny-ayt"
seed = 1
[model]
channels = [8, 16]
blocks_per_level = 1
emb_dim = 16
noise_freqs = 4
groups = 4
[train]
mode = "ect"
batch_size = 8
iterations = 150
lr = 2e-3
ema_decay = 0.9
loss = "mfd"
[ect]
q = 2.0
n_stages = 1
[mfd]
features = "tiny-phi"
[log]
every = 1
sample_every = 0
sample_count = 4
checkpoint_every = 0
"#;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn phi_trains_and_an_mfd_run_finds_it_and_moves_outputs_toward_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();

    // Without phi, the MFD run says how to make it.
    let ayt_preset = home.join("ayt.toml");
    std::fs::write(&ayt_preset, format!("{AYT}{DISKS}")).unwrap();
    let o = ayt(home, &["train", "--preset", ayt_preset.to_str().unwrap(), "--out", home.join("x").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("ayt features train") && err.contains("tiny-phi"), "{err}");

    let phi_preset = home.join("phi.toml");
    std::fs::write(&phi_preset, format!("{PHI}{DISKS}")).unwrap();
    let o = ayt(home, &["features", "train", "--preset", phi_preset.to_str().unwrap(), "--out", home.join("phi-run").to_str().unwrap()]);
    ok(&o);
    let phi_loss = RunLog::open(home.join("phi-run/run.h5")).unwrap().scalar("loss").unwrap().value;
    assert_eq!(phi_loss.len(), 60);
    assert!(mean(&phi_loss[50..]) < mean(&phi_loss[..10]), "phi regression loss did not fall: {phi_loss:?}");
    let log = RunLog::open(home.join("phi-run/run.h5")).unwrap();
    // eval_every = 30: held-out R^2 at step 30 and at the end, and a snapshot of phi
    let r2 = log.scalar("r2/geometric").unwrap();
    assert_eq!(r2.step, vec![30, 60], "R^2 per group is logged at every evaluation");
    assert!(r2.value.iter().all(|v| v.is_finite()));
    let snapshot = home.join("phi-run").join(ayt::features::train::SNAPSHOT_FILE);
    let phi = ayt::features::store::load_phi_file(&snapshot, &Device::Cpu).unwrap();
    let stored: Vec<_> = std::fs::read_dir(home.join("features")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(stored.len(), 1, "one phi in the feature store");
    let final_phi = ayt::features::store::load_phi_file(&stored[0], &Device::Cpu).unwrap();
    assert_eq!((phi.n_labels, &phi.cfg), (final_phi.n_labels, &final_phi.cfg), "the snapshot is a loadable phi of the run");

    // train.init continues from the stored network: one step at a negligible rate measures the
    // same held-out R^2 as the end of the first run. A missing network is a clear error.
    let phi_arg = phi_preset.to_str().unwrap();
    let cont = |init: &str, out: &str| {
        let init = format!("train.init={init}");
        let out = home.join(out);
        let args = ["features", "train", "--preset", phi_arg, "--out", out.to_str().unwrap(), "--set", "name=tiny-phi-cont"];
        let sets = ["--set", &init, "--set", "train.lr=1e-12", "--set", "train.iterations=1", "--set", "train.eval_every=0"];
        ayt(home, &[&args[..], &sets[..]].concat())
    };
    let o = cont("tiny-phi", "phi-cont");
    ok(&o);
    let continued = RunLog::open(home.join("phi-cont/run.h5")).unwrap().scalar("r2/geometric").unwrap().value;
    assert!((continued[0] - r2.value[1]).abs() < 1e-4, "continued R^2 {continued:?} vs the first run's {:?}", r2.value);
    let o = cont("no-such-phi", "phi-missing");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("train.init") && err.contains("no-such-phi-"), "{err}");

    let o = ayt(home, &["train", "--preset", ayt_preset.to_str().unwrap(), "--out", home.join("run").to_str().unwrap()]);
    ok(&o);
    let l = RunLog::open(home.join("run/run.h5")).unwrap().scalar("loss").unwrap().value;
    assert_eq!(l.len(), 150);
    assert!(l.iter().all(|v| v.is_finite()));

    // The outcome: trained outputs are much closer to the data than the initial model's.
    let run = ayt::paths::RunDir::new(home.join("run"));
    let ema = ayt::train::checkpoint::Weights::Ema(None);
    let (trained, preset, (c, h, w)) = ayt::train::checkpoint::load_denoiser(&run, None, ema, &candle_core::Device::Cpu).unwrap();
    let initial = ayt::model::Denoiser::new(&preset.model, c, 0.5, preset.seed, &Device::Cpu).unwrap();
    let mut src = ayt::data::DataSource::disks(preset.data.disks.clone(), 99).unwrap();
    let x0 = Tensor::from_vec(src.next_batch(64).x, (64, c, h, w), &Device::Cpu).unwrap();
    // (measured: 0.038 -> 0.026 at sigma 0.2, 0.253 -> 0.100 at sigma 1)
    for (sigma, factor) in [(0.2, 0.8), (1.0, 0.6)] {
        let before = ayt::sample::denoise_error(&initial, &x0, sigma, &preset.sampling, 5).unwrap();
        let after = ayt::sample::denoise_error(&trained, &x0, sigma, &preset.sampling, 5).unwrap();
        assert!(after < factor * before, "sigma {sigma}: denoising error {before} -> {after}");
    }
}

/// Phi's losses are read to the host at log steps only (one transfer for the steps since the last
/// read); a diverging run still fails naming the first non-finite step, whichever `log_every`.
#[test]
fn a_diverging_phi_names_its_first_non_finite_step_whether_read_every_step_or_every_seventh() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let preset = home.join("phi.toml");
    std::fs::write(&preset, format!("{PHI}{DISKS}")).unwrap();
    let mut named = Vec::new();
    for log_every in ["1", "7"] {
        let out = home.join(format!("phi-{log_every}"));
        let sets = ["--set", "train.lr=1e30", "--set", "train.eval_every=0", "--set"];
        let every = format!("train.log_every={log_every}");
        let mut args = vec!["features", "train", "--preset", preset.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(sets);
        args.push(&every);
        let o = ayt(home, &args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success() && err.contains("the phi loss is") && err.contains("lower train.lr"), "{err}");
        let step = err.split("step ").nth(1).and_then(|s| s.split(':').next()).map(str::to_string);
        named.push(step.unwrap_or_else(|| panic!("no step named: {err}")));
    }
    assert_eq!(named[0], named[1], "the first non-finite step differs between log_every 1 and 7");
}
