//! The paper's experiment, scaled down to run on a CPU: a synthetic CIFAR-10 archive imports,
//! `cifar10-phi` trains a VGG16-BN phi on it for two steps, and `cifar10-ayt` (EDM's DDPM++ at
//! reduced sizes, `--set`) starts from a converted EDM-format snapshot and trains a few steps
//! with the MFD loss. Every shipped CIFAR-10 preset is used as it is, only `--set` overridden.

mod common;
use common::{ayt, missing_tool};

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A CIFAR-10 binary archive of 6 images per batch (train and test), pixels from a formula.
fn write_archive(dir: &Path) {
    let bin = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"];
    for (b, name) in names.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..6usize {
            bytes.push(((b + i) % 10) as u8);
            bytes.extend((0..3072usize).map(|p| ((p * (i + 3) + 17 * b) % 251) as u8));
        }
        std::fs::write(bin.join(format!("{name}.bin")), bytes).unwrap();
    }
}

fn run(home: &Path, args: &[&str]) -> String {
    let o = ayt(home, args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "ayt {args:?}:\n{err}");
    err
}

/// `--set` overrides that shrink EDM's DDPM++ to the converted tiny snapshot's sizes.
const TINY_DDPMPP: [&str; 8] = [
    "model.ddpmpp.model_channels=8",
    "model.ddpmpp.channel_mult=[1, 2]",
    "model.ddpmpp.num_blocks=1",
    "model.ddpmpp.attn_levels=[1]",
    "train.batch_size=2",
    "train.iterations=2",
    "log.every=1",
    "log.sample_every=0",
];

#[test]
fn cifar10_ayt_starts_from_a_converted_edm_snapshot_and_trains() {
    if !common::python_imports("numpy, h5py") {
        return missing_tool("python3 with numpy and h5py");
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    write_archive(home);
    run(home, &["data", "import", "cifar10", home.to_str().unwrap()]);
    run(home, &["data", "import", "cifar10", home.to_str().unwrap(), "--test"]); // phi's held-out R^2

    let converted = home.join("edm-tiny.safetensors");
    let o = Command::new("python3")
        .arg(repo("scripts/convert_edm_checkpoint.py"))
        .arg(repo("tests/data/ddpmpp_tiny_edm.pkl"))
        .arg(&converted)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let phi = repo("presets/cifar10-phi.toml");
    let phi_sets = ["train.iterations=2", "train.batch_size=4", "train.eval_images=4", "train.log_every=1"];
    let mut args = vec!["features", "train", "--preset", phi.to_str().unwrap()];
    phi_sets.iter().for_each(|s| args.extend(["--set", s]));
    run(home, &args);

    let ayt_preset = repo("presets/cifar10-ayt.toml");
    let out = home.join("run");
    let init = format!("train.init=\"{}\"", converted.display());
    let mut args = vec!["train", "--preset", ayt_preset.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", &init];
    TINY_DDPMPP.iter().for_each(|s| args.extend(["--set", s]));
    run(home, &args);
    let read = r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    v = f["scalars/loss/value"][:]
    print(len(v), bool(np.all(np.isfinite(v))))
"#;
    let o = Command::new("python3").args(["-c", read]).arg(out.join("run.h5")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2 True", "{}", String::from_utf8_lossy(&o.stderr));

    // the init is really read: other sizes do not fit it, and the error names the file
    let mut args = vec!["train", "--preset", ayt_preset.to_str().unwrap(), "--set", &init];
    TINY_DDPMPP.iter().for_each(|s| args.extend(["--set", s]));
    args.extend(["--set", "model.ddpmpp.model_channels=16"]);
    let o = ayt(home, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("edm-tiny.safetensors"), "{err}");
}
