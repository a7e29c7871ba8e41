//! `ayt-fuzz`: a mutation fuzzer for every parser of a file a user gives `ayt` (IDX, PNG, the
//! three preset kinds, data-set HDF5, checkpoints, phi and evaluator bundles, LPIPS and
//! Inception weights, run.h5). It runs on stable Rust: each input is a seed made by `ayt`'s own
//! writers, mutated (`mutate.rs`) from a ChaCha stream keyed by `(seed, index)`, so any finding
//! replays from its index. Without coverage feedback (cargo fuzz needs nightly), it relies on
//! format-aware seeds and many executions.
//!
//! Each target runs in worker processes under an address-space limit (`--max-mib`, default
//! 4096: an allocation past it is a finding) and a per-input alarm (`--timeout-s`, default 5: a
//! hang is a finding); a panic, a crash (a signal, e.g. in the HDF5 C library), a hang or the
//! memory limit is reported with its index and input file, and the run goes on.
//!
//! Usage: ayt-fuzz [TARGET...|all] [--execs N] [--seed S] [--out DIR] [--max-mib M] [--timeout-s T]
//!        ayt-fuzz --list
//!        ayt-fuzz --replay TARGET FILE      (one input, in this process: for a debugger)

mod mutate;
mod targets;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use targets::{SELFTEST, TARGETS};

pub struct Options {
    pub execs: u64,
    pub seed: u64,
    pub out: PathBuf,
    pub max_mib: u64,
    pub timeout_s: u32,
}

fn usage() -> ExitCode {
    eprintln!("usage: ayt-fuzz [TARGET...|all] [--execs N] [--seed S] [--out DIR] [--max-mib M] [--timeout-s T] | --list");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // The HDF5 checker that workers start (ayt's own, store/sandbox.rs) is this binary too.
    ayt::store::sandbox::serve_if_asked(ayt::data::checker::read);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker::main(&args[1..]);
    }
    if let [flag, name, file] = args.as_slice() {
        if flag == "--replay" {
            return worker::replay(name, Path::new(file));
        }
    }
    let mut opts = Options { execs: 10_000, seed: 0, out: PathBuf::from("fuzz-findings"), max_mib: 4096, timeout_s: 5 };
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--list" => {
                TARGETS.iter().for_each(|t| println!("{:<20} {}", t.name, t.what));
                println!("{:<20} {} (not in `all`)", SELFTEST.name, SELFTEST.what);
                return ExitCode::SUCCESS;
            }
            "--execs" => opts.execs = value().parse().unwrap_or(0),
            "--seed" => opts.seed = value().parse().unwrap_or(0),
            "--out" => opts.out = PathBuf::from(value()),
            "--max-mib" => opts.max_mib = value().parse().unwrap_or(0),
            "--timeout-s" => opts.timeout_s = value().parse().unwrap_or(0),
            "all" => names.extend(TARGETS.iter().map(|t| t.name.to_string())),
            n if targets::find(n).is_some() => names.push(n.to_string()),
            other => {
                eprintln!("ayt-fuzz: unknown target or option {other:?} (--list shows the targets)");
                return usage();
            }
        }
    }
    if names.is_empty() || opts.execs == 0 || opts.max_mib == 0 || opts.timeout_s == 0 {
        return usage();
    }
    let mut findings = 0;
    for name in &names {
        match worker::supervise(name, &opts) {
            Ok(report) => {
                println!("{report}");
                findings += report.findings.len();
            }
            Err(e) => {
                eprintln!("ayt-fuzz {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if findings > 0 {
        println!("{findings} finding(s); inputs in {}", opts.out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
