//! `ayt fid`: a PNG folder's statistics saved as EDM's `.npz` (numpy reads them, and they are the
//! TorchScript detector's to 1e-4), the FID between two `.npz` files as numpy computes it, and
//! bad sources named. The images and reference features are tests/data/fid_reference.h5's.

mod common;
use common::{ayt, missing_tool};

use std::path::Path;
use std::process::Command;

/// Writes the first 8 images of each reference set as PNG folders `a/` and `b/`, and `b.npz`:
/// set b's statistics from the TorchScript features.
const MAKE: &str = r#"
import sys, zlib, struct, h5py, numpy as np
ref, out = sys.argv[1], sys.argv[2]
def png(path, img):
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
import os
with h5py.File(ref, "r") as f:
    for s in "ab":
        os.makedirs(f"{out}/{s}/sub", exist_ok=True)
        for i, img in enumerate(f[f"images_{s}"][:8]):
            png(f"{out}/{s}/{'sub/' if i % 2 else ''}{i:03d}.png", img)
    fb = f["features_b"][:].astype(np.float64)
np.savez(f"{out}/b.npz", mu=fb.mean(0), sigma=np.cov(fb, rowvar=False))
"#;

/// Checks `a.npz` against the TorchScript features of set a, prints numpy's FID of a.npz, b.npz.
const CHECK: &str = r#"
import sys, h5py, numpy as np
ref, out = sys.argv[1], sys.argv[2]
a, b = np.load(f"{out}/a.npz"), np.load(f"{out}/b.npz")
with h5py.File(ref, "r") as f:
    fa = f["features_a"][:].astype(np.float64)
mu, sigma = a["mu"], a["sigma"]
assert mu.shape == (2048,) and sigma.shape == (2048, 2048) and mu.dtype == np.float64, (mu.shape, sigma.shape, mu.dtype)
err_mu = np.linalg.norm(mu - fa.mean(0)) / np.linalg.norm(fa.mean(0))
err_sigma = np.linalg.norm(sigma - np.cov(fa, rowvar=False)) / np.linalg.norm(np.cov(fa, rowvar=False))
assert err_mu < 1e-4 and err_sigma < 1e-3, (err_mu, err_sigma)
def fid(m1, s1, m2, s2):
    w, v = np.linalg.eigh(s1)
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = half @ s2 @ half
    return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
print(fid(a["mu"], a["sigma"], b["mu"], b["sigma"]))
"#;

fn python(script: &str, args: &[&str]) -> String {
    let o = Command::new("python3").arg("-c").arg(script).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn statistics_round_trip_through_numpy_and_fid_matches_it() {
    if !common::python_imports("numpy, h5py") {
        return missing_tool("python3 with numpy and h5py");
    }
    let home = tempfile::tempdir().unwrap();
    let out = home.path();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fid_reference.h5");
    let (reference, out_s) = (reference.to_str().unwrap(), out.to_str().unwrap());
    python(MAKE, &[reference, out_s]);
    let a_npz = out.join("a.npz");
    let o = ayt(out, &["fid", out.join("a").to_str().unwrap(), "--save-stats", a_npz.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("8 images"), "{}", String::from_utf8_lossy(&o.stderr));
    let numpy_fid: f64 = python(CHECK, &[reference, out_s]).parse().unwrap();
    let o = ayt(out, &["fid", a_npz.to_str().unwrap(), out.join("b.npz").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fid: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    // (two eigen solvers on rank-7 covariances: they agree to ~1e-9)
    assert!(((fid - numpy_fid) / numpy_fid).abs() < 1e-6, "ayt {fid} vs numpy {numpy_fid}");
}

#[test]
fn bad_sources_are_named() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let run = |args: &[&str]| {
        let o = ayt(dir, args);
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = run(&["fid", "nowhere"]);
    assert!(e.contains("--save-stats"), "{e}");
    let e = run(&["fid", "nowhere", "also-nowhere.npz"]);
    assert!(e.contains("nowhere") && e.contains("ayt data list"), "{e}");
    let cut = dir.join("cut.npz");
    std::fs::write(&cut, b"PK\x03\x04 cut short").unwrap();
    let e = run(&["fid", cut.to_str().unwrap(), cut.to_str().unwrap()]);
    assert!(e.contains("cut.npz") && e.contains("not an .npz"), "{e}");
    // the FD-evalnet flags do not apply to --fid, nor the --fid-* flags without it
    let e = run(&["eval", "run", "--fid", "--n", "5"]);
    assert!(e.contains("'--fid' cannot be used with '--n <N>'"), "{e}");
    let e = run(&["eval", "run", "--fid-ranges", "3"]);
    assert!(e.contains("--fid"), "{e}");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let e = run(&["fid", dir.join("empty").to_str().unwrap(), "--save-stats", "x.npz"]);
    assert!(e.contains("empty") && e.contains("no .png"), "{e}");
}

/// Writes `b.npz` (set b's statistics from the TorchScript features) into `out`.
const B_NPZ: &str = r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    fb = f["features_b"][:].astype(np.float64)
np.savez(sys.argv[2] + "/b.npz", mu=fb.mean(0), sigma=np.cov(fb, rowvar=False))
"#;

fn eval_fid(home: &Path, run: &str, args: &[&str]) -> String {
    let mut all = vec!["eval", run, "--fid"];
    all.extend(args);
    let o = ayt(home, &all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `ayt eval --fid` on a tiny run: each sampler's FID against an `.npz`, sample i from seed i (so
/// seed range 0 of a two-range evaluation is the one-range value), logged to run.h5 with its seeds.
/// The run keeps two EMA profiles and is scored on the second, by name (`--ema slow`): each
/// metric is `fid_<tag>@slow` and names its weights.
#[test]
fn eval_fid_names_its_seeds_and_logs_each_sampler() {
    if !common::python_imports("numpy, h5py") {
        return missing_tool("python3 with numpy and h5py");
    }
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fid_reference.h5");
    python(B_NPZ, &[reference.to_str().unwrap(), dir.to_str().unwrap()]);
    let preset = dir.join("tiny.toml");
    let profiles = "[[train.ema]]\nname = \"ema\"\ndecay = 0.9\n[[train.ema]]\nname = \"slow\"\ndecay = 0.99\n";
    let text = common::tiny_ect("tiny", 3, "every = 1\nsample_every = 0\ncheckpoint_every = 3").replace("ema_decay = 0.9\n", profiles);
    std::fs::write(&preset, text).unwrap();
    let run = dir.join("run");
    let o = ayt(dir, &["train", "--preset", preset.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (run, npz) = (run.to_str().unwrap(), dir.join("b.npz"));
    let one = eval_fid(dir, run, &["--fid-n", "3", "--fid-ref", npz.to_str().unwrap(), "--json", "--ema", "slow"]);
    let one = serde_json::from_str::<serde_json::Value>(&one).unwrap();
    assert_eq!(one["ema"].as_str(), Some("slow"));
    let table = eval_fid(dir, run, &["--fid-n", "3", "--fid-ranges", "2", "--fid-ref", npz.to_str().unwrap(), "--ema", "slow"]);
    assert!(table.contains("(EMA \"slow\" (decay 0.99 per step); logged to"), "{table}");
    for tag in ["1step", "2step"] {
        let v = one[format!("fid_{tag}@slow")].as_f64().unwrap();
        assert!(v.is_finite() && v > 0.0, "fid_{tag}@slow = {v}");
        // each line of the table: metric, value, then its protocol
        let line =
            |m: &str| table.lines().find(|l| l.split_whitespace().next() == Some(m)).unwrap_or_else(|| panic!("{m}: {table}")).to_string();
        let (min_line, mean_line) = (line(&format!("fid_{tag}@slow")), line(&format!("fid_{tag}_mean@slow")));
        let value = |l: &str| l.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap();
        assert!(min_line.contains(&format!("seeds 0-2: {v:.4}")) && min_line.contains("seeds 3-5: "), "range 0 must be {v:.4}: {min_line}");
        assert!(value(&min_line) <= value(&mean_line), "{min_line}\n{mean_line}");
    }
    assert!(one.get("fid_heun18@slow").is_none() && one.get("fid_1step").is_none(), "{one}");
    // run.h5: both evaluations' rows, the protocol of the metric's first evaluation
    let read = r#"
import sys, h5py
with h5py.File(sys.argv[1] + "/run.h5", "r") as f:
    g = f["eval/fid_1step@slow"]
    print(len(g["value"]), g.attrs["seeds"], g.attrs["n_samples"], "|", g.attrs["weights"])
"#;
    let text = python(read, &[run]);
    assert!(text.starts_with("2 seeds 0-2: ") && text.ends_with(" 3 | EMA \"slow\" (decay 0.99 per step)"), "{text}");
}
