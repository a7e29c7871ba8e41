//! `ayt lpips A.png B.png`: the metric from the command line.

use std::path::Path;
use std::process::{Command, Output};

fn ayt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ayt")).args(args).env_remove("AYT_WEIGHTS").env_remove("RUST_BACKTRACE").output().expect("running ayt")
}

fn write_gray(path: &Path, seed: u32, size: usize) {
    let px: Vec<u8> = (0..size * size).map(|i| ((i as u32 * 37 + seed * 101) % 256) as u8).collect();
    ayt::image_io::write_png(path, size, size, 1, &px).unwrap();
}

fn number(o: &Output) -> f64 {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "ayt lpips failed: {}", String::from_utf8_lossy(&o.stderr));
    out.trim().parse().unwrap_or_else(|_| panic!("not a number: {out:?}"))
}

#[test]
fn ayt_lpips_prints_the_distance() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    write_gray(&a, 1, 32);
    write_gray(&b, 2, 32);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let d_alex = number(&ayt(&["lpips", a, b]));
    let d_vgg = number(&ayt(&["lpips", a, b, "--net", "vgg"]));
    let d_64 = number(&ayt(&["lpips", a, b, "--net", "vgg", "--resize", "64"]));
    assert!(d_alex > 0.0 && d_vgg > 0.0 && d_64 > 0.0, "{d_alex} {d_vgg} {d_64}");
    assert!(d_alex != d_vgg && d_vgg != d_64);
    assert_eq!(number(&ayt(&["lpips", a, a, "--net", "vgg"])), 0.0);
}

#[test]
fn ayt_lpips_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.png");
    write_gray(&a, 1, 32);
    let a = a.to_str().unwrap();
    let missing = dir.path().join("nope.png");
    let o = ayt(&["lpips", a, missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("nope.png") && !err.contains("panicked"), "{err}");
    // a weights folder without the files: the message names the missing file
    let o = ayt(&["lpips", a, a, "--weights", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("alexnet_features.safetensors"), "{err}");
    let small = dir.path().join("small.png");
    write_gray(&small, 3, 28);
    let o = ayt(&["lpips", small.to_str().unwrap(), small.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--resize") && err.contains("31x31"), "{err}");
    let o = ayt(&["lpips", a, a, "--net", "squeeze"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("squeeze"));
}
