//! `ayt train`, `ayt resume` and `ayt features train`: headless jobs with a progress display.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use candle_core::Device;

use crate::cli::{DeviceArg, PresetJob};
use ayt::config::Preset;
use ayt::engine::{self, Command, EngineHandle, RunRequest};
use ayt::paths::Paths;

pub fn train(paths: Paths, PresetJob { preset, set, out, device }: PresetJob) -> anyhow::Result<()> {
    let device = device.open()?;
    let preset = ayt::paths::presets::resolve(&preset)?;
    let p = Preset::load(&preset, &set)?;
    let request = RunRequest::New { preset: Box::new(p), preset_dir: preset.parent().map(|d| d.to_path_buf()), out };
    run_headless(paths, device, request)
}

pub fn resume(paths: Paths, run_dir: PathBuf, device: &DeviceArg) -> anyhow::Result<()> {
    run_headless(paths, device.open()?, RunRequest::Resume { run_dir })
}

pub fn features(paths: &Paths, preset: &Path, set: &[String], out: Option<PathBuf>, device: &DeviceArg) -> anyhow::Result<()> {
    let device = device.open()?;
    let p = ayt::features::FeaturesPreset::load(&ayt::paths::presets::resolve(preset)?, set)?;
    let o = ayt::features::train::train(&p, paths, out, &device)?;
    eprintln!("phi {}: final loss {:.5}, {:.1} s; R^2 on held-out augmented images:", p.name, o.final_loss, o.wall_s);
    for r in o.r2_groups.iter().chain(&o.r2_labels) {
        eprintln!("  {:<14} {:>7.3}", r.name, r.value);
    }
    eprintln!("stored {} (run log {})", o.phi_path.display(), o.run_dir.display());
    Ok(())
}

/// Ctrl-C, SIGTERM (Slurm's `scancel`, a time limit) and SIGHUP: checkpoint and stop cleanly;
/// a second one exits at once.
pub fn quit_on_ctrl_c(commands: crossbeam_channel::Sender<Command>) {
    let mut hits = 0;
    let _ = ctrlc::set_handler(move || {
        hits += 1;
        if hits > 1 {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (checkpoint first); again to exit now");
        let _ = commands.send(Command::Quit);
    });
}

/// The engine on `device`, with Ctrl-C wired to stop it cleanly.
pub fn engine_for(paths: Paths, device: Device) -> EngineHandle {
    let handle = engine::spawn(paths, device);
    quit_on_ctrl_c(handle.commands.clone());
    handle
}

fn run_headless(paths: Paths, device: Device, request: RunRequest) -> anyhow::Result<()> {
    let handle = engine_for(paths, device);
    handle.commands.send(Command::Start(request)).context("starting the engine")?;
    let outcome = ayt::report::follow(&handle, Duration::from_secs(10));
    let _ = handle.commands.send(Command::Quit);
    let o = outcome?;
    eprintln!(
        "{} {}: step {}, final loss {:.5}, {:.1} s of training",
        if o.stopped_early { "stopped" } else { "finished" },
        o.run_dir.display(),
        o.step,
        o.final_loss,
        o.wall_s
    );
    if let Some(grid) = &o.samples {
        eprintln!("samples: {}", grid.display());
    }
    let probe_png = ayt::paths::RunDir::new(&o.run_dir).probe_png();
    if probe_png.is_file() {
        eprintln!("tangent alignment of the last probe: {} (ayt probe {} for the table)", probe_png.display(), o.run_dir.display());
    }
    println!("{}", o.run_dir.display());
    Ok(())
}
