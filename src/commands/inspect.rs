//! Commands that look at a run or at images: `ayt sample`, `eval`, `probe`, `lpips`, `bench`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use candle_core::Device;

use crate::cli::DeviceArg;
use ayt::config::EvalConfig;
use ayt::model::lpips::{self, Lpips, LpipsNet};
use ayt::paths::{Paths, RunDir};

#[allow(clippy::too_many_arguments)]
pub fn sample(
    run_dir: &Path,
    step: Option<u64>,
    n: usize,
    steps: usize,
    raw: bool,
    seed: u64,
    out: &Path,
    device: &Device,
) -> anyhow::Result<()> {
    let run = RunDir::new(run_dir);
    let written = ayt::train::checkpoint::sample_checkpoint(&run, step, n, steps, !raw, seed, device)?;
    ayt::sample::write_grid(&written, out)?;
    eprintln!("wrote {n} {steps}-step samples ({}) to {}", if raw { "raw weights" } else { "EMA weights" }, out.display());
    Ok(())
}

pub fn eval(
    paths: &Paths,
    run_dir: &Path,
    step: Option<u64>,
    n: Option<usize>,
    evalnet_iterations: Option<u64>,
    inception: Option<PathBuf>,
    device: &Device,
) -> anyhow::Result<()> {
    let overrides = |cfg: &mut EvalConfig| {
        cfg.n = n.unwrap_or(cfg.n);
        cfg.evalnet_iterations = evalnet_iterations.unwrap_or(cfg.evalnet_iterations);
        if let Some(f) = inception {
            cfg.inception = Some(f.display().to_string());
        }
    };
    let log = |line: &str| eprintln!("{line}");
    let run = RunDir::new(run_dir);
    let (step, values) = ayt::metrics::evaluator::evaluate_run(paths, &run, step, overrides, device, &log)?;
    ayt::metrics::evaluator::log_to_run(&run, step, &values)?;
    println!("evaluation of {} at step {step} (EMA weights)", run_dir.display());
    for v in &values {
        let proto: Vec<String> = v.attrs.iter().map(|(k, val)| format!("{k}={val}")).collect();
        println!("{:<30} {:>10.4}   {}", v.metric, v.value, proto.join(", "));
    }
    Ok(())
}

pub fn probe(paths: &Paths, run_dir: &Path, step: Option<u64>, mfd: Option<&str>, out: &Path, device: &Device) -> anyhow::Result<()> {
    let run = RunDir::new(run_dir);
    let (step, hists) = ayt::engine::probe::probe_checkpoint(paths, &run, step, mfd, device)?;
    println!("tangent alignment at step {step} of {}", run_dir.display());
    println!("{:<28} {:>5} {:>8} {:>8} {:>8} {:>8}", "loss/metric", "n", "mean", "q1", "median", "q3");
    for (name, _, s) in &hists {
        println!("{:<28} {:>5} {:>8.3} {:>8.3} {:>8.3} {:>8.3}", name.trim_start_matches("tangent/"), s.n, s.mean, s.q1, s.median, s.q3);
    }
    ayt::plot::overlaid_histograms(&ayt::metrics::probe::panels_by_metric(&hists), out)?;
    println!(
        "histograms: {} (panels top to bottom: toward-data cosine on [-1, 1], rho on [0, 1]; l2 red, mfd green, lpips blue)",
        out.display()
    );
    Ok(())
}

pub fn lpips(a: &Path, b: &Path, net: LpipsNet, resize: usize, weights: Option<PathBuf>, device: &Device) -> anyhow::Result<()> {
    let dir = weights.unwrap_or_else(lpips::weights_root).join("lpips");
    let resize = (resize > 0).then_some(resize);
    let model = Lpips::load(&dir, net, resize, candle_core::DType::F32, device)?;
    let (wa, ha, ca, pa) = ayt::image_io::read_png(a)?;
    let (wb, hb, cb, pb) = ayt::image_io::read_png(b)?;
    let min = net.min_size();
    if resize.is_none() && wa.min(ha).min(wb).min(hb) < min {
        bail!("the images are {wa}x{ha} and {wb}x{hb}, and --net {} needs at least {min}x{min}: give --resize N (e.g. 64)", net.name());
    }
    let d = lpips::distance_u8(&model, (wa, ha, ca, &pa), (wb, hb, cb, &pb))?;
    println!("{d}");
    Ok(())
}

pub fn bench(what: &str, batch: usize, steps: usize, device: &DeviceArg) -> anyhow::Result<()> {
    let device = device.open()?;
    if !["unet", "feat", "all"].contains(&what) {
        bail!("ayt bench {what}: expected unet, feat or all");
    }
    if steps == 0 || batch == 0 {
        bail!("ayt bench: --batch and --steps must be positive");
    }
    Ok(ayt::bench::run(what, batch, steps, &device)?)
}
