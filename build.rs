//! With the `cuda` feature, compiles ayt's CUDA kernels (src/nn/kernels/cuda/kernels.cu) to PTX
//! for `CUDA_COMPUTE_CAP` (default 90) with `$NVCC` (default `nvcc` on PATH); the driver JITs the
//! PTX on first use. Without the feature it does nothing, so CPU builds need no CUDA toolchain.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let src = "src/nn/kernels/cuda/kernels.cu";
    println!("cargo::rerun-if-changed={src}");
    println!("cargo::rerun-if-env-changed=NVCC");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".to_string());
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_string());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ayt_kernels.ptx");
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", "-std=c++17", &format!("-arch=compute_{cap}"), "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("the `cuda` feature needs nvcc to compile {src}: cannot run `{nvcc}` ({e}); see docs/gpu.md"));
    assert!(status.success(), "`{nvcc}` failed on {src} ({status})");
}
