//! The starting points shipped in `weights/start/` (made by `scripts/make_starts.sh`): they are
//! intact, a fresh home finds them by name (the paper sweep needs no pre-training), and the
//! packed MNIST denoiser reproduces the FD-evalnet recorded beside it on a fixed seed.

mod common;
use common::ayt;

use std::path::{Path, PathBuf};

fn start() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/start")
}

fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_shipped_file_matches_its_checksum() {
    use sha2::{Digest, Sha256};
    let sums = std::fs::read_to_string(start().join("SHA256SUMS")).unwrap();
    let files: Vec<&str> = sums.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    for want in ["mnist-edm/preset.toml", "features/mnist-phi-741c988805d0.h5", "features/evalnet-741c988805d0.h5"] {
        assert!(files.contains(&want), "{want} is listed in SHA256SUMS");
    }
    assert!(files.iter().any(|f| f.starts_with("mnist-edm/ckpt/step-") && f.ends_with(".safetensors")));
    for line in sums.lines() {
        let (sum, file) = line.split_once("  ").unwrap();
        let got = hex::encode(Sha256::digest(std::fs::read(start().join(file)).unwrap()));
        assert_eq!(got, sum, "{file}");
    }
}

#[test]
fn a_fresh_home_starts_the_paper_sweep_from_the_shipped_denoiser_and_phi() {
    let home = tempfile::tempdir().unwrap();
    let sweep = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/paper-mnist-sweep.toml");
    let out = stdout(&ayt(home.path(), &["sweep", sweep.to_str().unwrap(), "--dry-run"]));
    let edm = start().join("mnist-edm/ckpt");
    assert!(out.contains(&format!("train.init = \"mnist-edm\": {}", edm.display())), "{out}");
    let phi = start().join("features/mnist-phi-741c988805d0.h5");
    assert!(out.contains(&format!("mfd.features = \"mnist-phi\": {}", phi.display())), "{out}");
    assert!(!out.contains("not resolvable"), "{out}");
}

#[test]
fn the_shipped_mnist_edm_reproduces_its_recorded_fd_evalnet() {
    let home = tempfile::tempdir().unwrap();
    let run = start().join("mnist-edm");
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let out = stdout(&ayt(home.path(), &["eval", run.to_str().unwrap(), "--n", "256", "--heun-steps", "0", "--json"]));
    let now: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(now["step"], recorded["step"]);
    for metric in ["fd_evalnet_1step", "fd_evalnet_2step"] {
        let (a, b) = (now[metric].as_f64().unwrap(), recorded[metric].as_f64().unwrap());
        // the same samples and features; only summation order may differ between CPUs
        assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{metric}: {a} now, {b} recorded");
    }
    // nothing is written into the shipped folder
    assert!(!run.join("run.h5").exists());
}
