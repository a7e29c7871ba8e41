//! What the integration tests share: running the `ayt` binary, and the tiny ECT run on 8x8 disks
//! their presets start from.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// A test whose tool is missing: under `CI=true` (where `.ci/run` installs every tool) that is
/// a failure; elsewhere the test says why it skips.
pub fn missing_tool(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is missing under CI=true (.ci/run installs it): this test must not skip in CI");
    }
    eprintln!("skipping: {what} is missing (.ci/run installs it)");
}

/// Whether `python3` imports every module of `modules` (e.g. "numpy, h5py").
pub fn python_imports(modules: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {modules}")]).output().is_ok_and(|o| o.status.success())
}

/// Runs the built `ayt` with `AYT_HOME = home` (no backtraces, so error texts are what users see).
pub fn ayt(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ayt")).args(args).env("AYT_HOME", home).env_remove("RUST_BACKTRACE").output().expect("running ayt")
}

/// A preset for a tiny ECT run on 8x8 disks (two stages, a 2-level UNet of 8/16 channels) with
/// the given name, length and `[log]` table body; tests append further tables as they need.
pub fn tiny_ect(name: &str, iterations: u64, log: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 1
[data]
dataset = "disks"
[data.disks]
size = 8
radius_min = 1.5
radius_max = 3.0
[model]
channels = [8, 16]
blocks_per_level = 1
emb_dim = 16
noise_freqs = 4
groups = 4
[train]
mode = "ect"
batch_size = 8
iterations = {iterations}
lr = 2e-3
ema_decay = 0.9
[ect]
q = 2.0
n_stages = 2
[log]
{log}
"#
    )
}
