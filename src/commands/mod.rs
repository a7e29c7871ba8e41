//! What each subcommand does: thin glue from the parsed command line to the library, one module
//! per group of commands. Errors carry their context up to `main`, which prints them.

mod data;
mod fid;
mod inspect;
mod sweep;
mod train;
mod ui;

use crate::cli::{Cli, Cmd, FeaturesCmd, PresetJob};
use ayt::paths::Paths;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = Paths::resolve(cli.home);
    let graphics = cli.graphics;
    let Some(command) = cli.command else { return ui::launcher(paths, graphics) };
    match command {
        Cmd::Train(job) => train::train(paths, job),
        Cmd::Resume { run_dir, device } => train::resume(paths, run_dir, &device),
        Cmd::Features(FeaturesCmd::Train(PresetJob { preset, set, out, device })) => train::features(&paths, &preset, &set, out, &device),
        Cmd::Sample { run_dir, sampler, steps, n, raw, ema, seed, step, out, device } => {
            inspect::sample(&run_dir, step, n, (sampler, steps), (raw, ema.as_deref()), seed, &out, &device.open()?)
        }
        Cmd::Pack { run_dir, step, out } => inspect::pack(&run_dir, step, &out),
        Cmd::Eval { run_dir, step, ema, fid: true, fid_n, fid_ref, fid_ranges, heun_steps, json, device, .. } => {
            fid::eval(&paths, &run_dir, (step, ema.as_deref()), (fid_n, fid_ref, fid_ranges, heun_steps), json, &device.open()?)
        }
        Cmd::Eval { run_dir, step, ema, n, evalnet_iterations, inception, heun_steps, json, device, .. } => {
            inspect::eval(&paths, &run_dir, (step, ema.as_deref()), (n, evalnet_iterations, inception, heun_steps), json, &device.open()?)
        }
        Cmd::Probe { run_dir, step, out, mfd, m, k, device } => {
            inspect::probe(&paths, &run_dir, step, mfd.as_deref(), (&k, &m), &out, &device.open()?)
        }
        Cmd::Fid { a, b, save_stats, n, detector, device } => {
            fid::fid(&paths, &a, b.as_deref(), save_stats.as_deref(), n, detector, &device.open()?)
        }
        Cmd::Lpips { a, b, net, resize, weights, device } => inspect::lpips(&a, &b, net, resize, weights, &device.open()?),
        Cmd::Data(cmd) => data::data(&paths, cmd),
        Cmd::Augment(cmd) => data::augment(&paths, cmd),
        Cmd::Sweep { file, member, dry_run, emit_slurm, cpus, time, device } => {
            sweep::sweep(paths, &file, member, dry_run, emit_slurm.map(|dir| (dir, cpus, time)), &device)
        }
        Cmd::Export { source, format, out } => sweep::export(&paths, &source, format, &out),
        Cmd::Report { sweep, target_fd, metric } => sweep::report(&paths, &sweep, target_fd, &metric),
        Cmd::Tui { preset, set, start, sweep, device } => {
            let preset = preset.iter().map(|p| ayt::paths::presets::resolve(p)).collect::<ayt::Result<Vec<_>>>()?;
            ui::tui(paths, preset, set, start, sweep, &device, graphics)
        }
        Cmd::View { run_dirs } => Ok(ayt::tui::run_view(&run_dirs, &paths, graphics)?),
        Cmd::BenchUi { points, width, height, frames } => ui::bench_ui(points, width, height, frames),
        Cmd::Bench { what, batch, steps, precision, device } => inspect::bench(&what, batch, steps, &precision, &device),
    }
}
