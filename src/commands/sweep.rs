//! `ayt sweep`, `ayt export` and `ayt report`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use candle_core::Device;

use super::train::engine_for;
use crate::cli::DeviceArg;
use ayt::engine::Command;
use ayt::paths::Paths;
use ayt::sweep::runner::MemberOutcome;
use ayt::sweep::{Plan, SweepDir, SweepSpec};

/// `emit_slurm`: write a job array into the folder (with CPUs and time per task) instead of running.
pub fn sweep(
    paths: Paths,
    file: &Path,
    member: Option<usize>,
    dry_run: bool,
    emit_slurm: Option<(PathBuf, usize, String)>,
    device: &DeviceArg,
) -> anyhow::Result<()> {
    let device = device.open()?;
    let spec = SweepSpec::load(&ayt::paths::presets::resolve(file)?)?;
    if dry_run {
        ayt::sweep::runner::dry_run(&spec, &paths)?.iter().for_each(|line| println!("{line}"));
        return Ok(());
    }
    if let Some((out, cpus, time)) = emit_slurm {
        let home = std::path::absolute(&paths.home)?;
        let opts = ayt::sweep::slurm::SlurmOptions { ayt: std::env::current_exe()?, home, cpus, time };
        let emitted = ayt::sweep::slurm::emit(&spec, &paths, &out, &opts)?;
        emitted.advice(&opts).iter().for_each(|line| eprintln!("{line}"));
        println!("{}", emitted.script.display());
        return Ok(());
    }
    let (dir, plan) = ayt::sweep::plan::open_or_create(&spec, &paths)?;
    run_members(paths, device, &dir, &plan, member)
}

fn run_members(paths: Paths, device: Device, dir: &SweepDir, plan: &Plan, member: Option<usize>) -> anyhow::Result<()> {
    let handle = engine_for(paths, device);
    let outcomes = ayt::sweep::runner::run(dir, plan, member, &handle, Duration::from_secs(10));
    let _ = handle.commands.send(Command::Quit);
    let outcomes = outcomes?;
    let count = |f: &dyn Fn(&MemberOutcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(i, o)| if let MemberOutcome::Failed(e) = o { Some(format!("member {i}: {e}")) } else { None })
        .collect();
    eprintln!(
        "sweep {}: {} finished now, {} already done, {} running elsewhere, {} failed; index {}",
        plan.name,
        count(&|o| *o == MemberOutcome::Finished),
        count(&|o| *o == MemberOutcome::AlreadyDone),
        count(&|o| *o == MemberOutcome::Busy),
        failed.len(),
        dir.index_path().display()
    );
    if let Some((i, _)) = outcomes.iter().find(|(_, o)| *o == MemberOutcome::Stopped) {
        bail!("member {i} was stopped before its last step; run the sweep again to resume it");
    }
    if !failed.is_empty() {
        bail!("{} member(s) failed (run the sweep again to retry them):\n  {}", failed.len(), failed.join("\n  "));
    }
    if let (Some(i), true) = (member, count(&|o| *o == MemberOutcome::Busy) > 0) {
        bail!("member {i} is running in another process");
    }
    println!("{}", dir.index_path().display());
    Ok(())
}

pub fn export(paths: &Paths, source: &Path, format: Option<ayt::export::Format>, out: &Path) -> anyhow::Result<()> {
    let format = match format {
        Some(f) => f,
        None => out
            .extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse().ok())
            .with_context(|| format!("--out {}: give --format csv|jsonl|hdf5 (or an .csv/.jsonl/.h5 name)", out.display()))?,
    };
    let (sources, keys) = ayt::export::sources(source, paths)?;
    if sources.is_empty() {
        bail!("{}: no run has a log yet", source.display());
    }
    let table = ayt::export::table(&sources, &keys)?;
    ayt::export::write(&table, format, out, &source.display().to_string())?;
    let rows = table.first().map(|(_, c)| c.len()).unwrap_or(0);
    eprintln!("wrote {rows} rows x {} columns from {} run(s) to {}", table.len(), sources.len(), out.display());
    Ok(())
}

pub fn report(paths: &Paths, sweep: &Path, target_fd: Option<f64>, metric: &str) -> anyhow::Result<()> {
    // a sweep preset's name (`ayt report paper-mnist-sweep`) like `ayt sweep` takes it
    let named =
        if sweep.exists() { sweep.to_path_buf() } else { ayt::paths::presets::resolve(sweep).unwrap_or_else(|_| sweep.to_path_buf()) };
    let dir = ayt::sweep::locate(&named, paths)?;
    let w = ayt::sweep::report::write(&dir, metric, target_fd)?;
    for p in w.pngs.iter().chain([&w.markdown]) {
        println!("{}", p.display());
    }
    Ok(())
}
