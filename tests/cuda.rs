//! CUDA against the CPU: every op on a gradient path gives the CPU kernel's value and gradient
//! (max-pool ties included), a tiny ECT run's first losses equal the CPU run's, and a resumed
//! CUDA run is bit-exact. Built with `--features cuda` (CI builds it with no GPU);
//! `scripts/gpu_check.sh` runs it on one. Where no GPU is visible each test prints why it
//! skips, and passes: the CPU suite is where CI's counts come from.
#![cfg(feature = "cuda")]

use std::path::Path;

use candle_core::Device;

use ayt::config::Preset;
use ayt::data::batch::DataSource;
use ayt::nn::parity::{self, Case};
use ayt::paths::RunDir;
use ayt::train::trainer::resume_replay;
use ayt::train::Trainer;

fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("skipping: no CUDA device visible ({e})");
            None
        }
    }
}

/// Runs each case on the CPU (its kernels) and on CUDA (the portable kernels), printing the
/// differences; fails listing every case beyond its tolerance.
fn cpu_equals_cuda(cases: &[Case], gpu: &Device) {
    let mut bad = Vec::new();
    for case in cases {
        let cpu = parity::run(case, &Device::Cpu).unwrap();
        let cuda = parity::run(case, gpu).unwrap();
        let (dv, dg) = parity::differences(&cpu, &cuda);
        println!("{:<36} value {dv:.2e}  gradient {dg:.2e}  (tolerance {:.0e})", case.name, case.tol);
        if dv > case.tol || dg > case.tol {
            bad.push(format!("{}: value {dv:.3e}, gradient {dg:.3e}", case.name));
        }
    }
    assert!(bad.is_empty(), "CPU and CUDA differ:\n  {}", bad.join("\n  "));
}

#[test]
fn every_layer_gives_the_cpu_kernels_values_and_gradients_ties_included() {
    let Some(g) = gpu() else { return };
    cpu_equals_cuda(&parity::layer_cases(), &g);
}

#[test]
fn the_networks_agree_end_to_end() {
    let Some(g) = gpu() else { return };
    let (cases, missing) = ayt::model::parity::network_cases();
    for m in missing {
        println!("not checked here: {m}");
    }
    cpu_equals_cuda(&cases, &g);
}

mod common;

/// `common::tiny_ect` with dropout on (masks drawn on the host, the same on every device).
fn tiny_preset() -> Preset {
    let text = common::tiny_ect("tiny-cuda", 8, "every = 1");
    Preset::parse(&text, Path::new("tiny-cuda.toml"), &["model.dropout=0.1".to_string()]).unwrap()
}

fn source(p: &Preset) -> ayt::Result<DataSource> {
    DataSource::disks(p.data.disks.clone(), p.seed)
}

#[test]
fn a_tiny_ect_run_starts_with_the_cpu_runs_losses() {
    let Some(g) = gpu() else { return };
    let p = tiny_preset();
    let trainer = |dev: &Device| Trainer::new(&p, source(&p).unwrap(), None, dev).unwrap();
    let (mut cpu, mut cuda) = (trainer(&Device::Cpu), trainer(&g));
    for step in 1..=3 {
        let (a, b) = (cpu.step().unwrap().loss, cuda.step().unwrap().loss);
        let rel = (a - b).abs() / a.abs().max(1e-12);
        println!("ECT step {step}: CPU loss {a:.7}  CUDA loss {b:.7}  relative difference {rel:.2e}");
        assert!(rel < 1e-4, "step {step}: CPU {a} vs CUDA {b}");
    }
}

#[test]
fn resume_on_cuda_is_bit_exact_and_runs_repeat() {
    let Some(g) = gpu() else { return };
    let p = tiny_preset();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (full, resumed) = resume_replay(&p, || source(&p), &g, (3, 6), &RunDir::new(a.path())).unwrap();
    println!("uninterrupted {full:?}\nresumed       {resumed:?}");
    assert_eq!(full, resumed, "a resumed CUDA run must repeat the uninterrupted one bit for bit");
    let (again, _) = resume_replay(&p, || source(&p), &g, (3, 6), &RunDir::new(b.path())).unwrap();
    assert_eq!(full, again, "two CUDA runs of one seed differ: some op is nondeterministic");
}
