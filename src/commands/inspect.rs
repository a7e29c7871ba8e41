//! Commands that look at a run or at images: `ayt sample`, `eval`, `probe`, `lpips`, `bench`;
//! and `ayt pack`, which copies a run's checkpoint out as a starting point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use candle_core::Device;

use crate::cli::DeviceArg;
use ayt::config::EvalConfig;
use ayt::metrics::probe;
use ayt::model::lpips::{self, Lpips, LpipsNet};
use ayt::paths::{Paths, RunDir};
use ayt::train::checkpoint::{self, Weights};

/// `ayt sample`: `weights` is `--raw` (the online weights) or `--ema NAME` (`None`: the run's
/// default EMA profile).
#[allow(clippy::too_many_arguments)]
pub fn sample(
    run_dir: &Path,
    step: Option<u64>,
    n: usize,
    sampler: (Option<ayt::sample::SamplerKind>, Option<usize>),
    (raw, ema): (bool, Option<&str>),
    seed: u64,
    out: &Path,
    device: &Device,
) -> anyhow::Result<()> {
    let run = RunDir::new(run_dir);
    let (weights, what) = if raw {
        (Weights::Online, "raw weights".to_string())
    } else {
        let preset = ayt::config::Preset::load(&run.preset_file(), &[])?;
        (Weights::Ema(ema), checkpoint::ema_profile(&run, &preset, ema)?.0.describe())
    };
    let (written, sampler) = checkpoint::sample_checkpoint(&run, step, n, sampler, weights, seed, device)?;
    ayt::sample::write_grid(&written, out)?;
    eprintln!("wrote {n} samples ({sampler} sampler, {what}) to {}", out.display());
    Ok(())
}

pub fn pack(run_dir: &Path, step: Option<u64>, out: &Path) -> anyhow::Result<()> {
    let file = ayt::train::pack::pack(&RunDir::new(run_dir), step, out)?;
    let mb = std::fs::metadata(&file).map(|m| m.len() as f64 / 1e6).unwrap_or(f64::NAN);
    println!("packed {} ({mb:.1} MB of EMA weights); use it as train.init = {:?}", file.display(), out.display().to_string());
    Ok(())
}

/// `ayt eval`: the overrides of the run's `[eval]` are (n, evalnet iterations, Inception weights);
/// `ema` names the EMA profile (`None`: the run's default).
pub fn eval(
    paths: &Paths,
    run_dir: &Path,
    (step, ema): (Option<u64>, Option<&str>),
    (n, evalnet_iterations, inception, heun_steps): (Option<usize>, Option<u64>, Option<PathBuf>, Option<usize>),
    json: bool,
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
    let (step, profile, values) = ayt::metrics::evaluator::evaluate_run(paths, &run, (step, ema), overrides, heun_steps, device, &log)?;
    report_eval(&run, step, &profile, &values, json)
}

/// Logs evaluation values of EMA `profile`'s weights to the run's run.h5 (when it has one) and
/// prints them, as a table or JSON (`step`, `ema`: the profile's name, then metric: value).
pub fn report_eval(
    run: &RunDir,
    step: u64,
    profile: &ayt::config::EmaProfile,
    values: &[ayt::metrics::evaluator::EvalValue],
    json: bool,
) -> anyhow::Result<()> {
    let run_dir = run.path();
    // A packed starting point has no run log; its values are printed only.
    let logged = run.log_file().exists();
    if logged {
        ayt::metrics::evaluator::log_to_run(run, step, values)?;
    }
    if json {
        let mut out = serde_json::Map::new();
        out.insert("step".into(), step.into());
        out.insert("ema".into(), profile.name.clone().into());
        for v in values {
            out.insert(v.metric.clone(), v.value.into());
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let into = if logged { format!("; logged to {}", run.log_file().display()) } else { "; not logged: no run.h5 here".into() };
    println!("evaluation of {} at step {step} ({}{into})", run_dir.display(), profile.describe());
    for v in values {
        let proto: Vec<String> = v.attrs.iter().map(|(k, val)| format!("{k}={val}")).collect();
        println!("{:<30} {:>10.4}   {}", v.metric, v.value, proto.join(", "));
    }
    Ok(())
}

/// `ayt probe`: every metric per loss with its bootstrap 95% interval beside its chance value
/// (drawn and closed form), means per `t` range, the local-PCA sensitivity to `(K, m)`, and a
/// PNG of the histograms with the chance value marked.
pub fn probe(
    paths: &Paths,
    run_dir: &Path,
    step: Option<u64>,
    mfd: Option<&str>,
    (ks, ms): (&[u64], &[u64]),
    out: &Path,
    device: &Device,
) -> anyhow::Result<()> {
    let run = RunDir::new(run_dir);
    let preset_probe = ayt::config::Preset::load(&run.preset_file(), &[])?.probe;
    let grid = sensitivity_grid(ks, ms, (preset_probe.k, preset_probe.m));
    let p = ayt::engine::probe::probe_checkpoint(paths, &run, step, mfd, &grid, device)?;
    for (k, m) in p.local_pca.iter().chain(grid.iter()) {
        if *k < 4 * *m {
            eprintln!("warning: local PCA with K = {k} neighbours for m = {m} directions: K < 4m fits noise (use K >= {})", 4 * m);
        }
    }
    let n = p.hists.iter().find(|(name, _, _)| probe::t_range_of(name).is_none()).map_or(0, |(_, _, s)| s.n);
    let geometry = match p.local_pca {
        Some((k, m)) => format!("local PCA K = {k}, m = {m}"),
        None => "exact tangent space".into(),
    };
    println!(
        "tangent alignment at step {} of {} (online weights; {n} probe samples; d = {}; {geometry})",
        p.step,
        run_dir.display(),
        p.dim
    );
    println!(
        "means with bootstrap 95% intervals; chance: isotropic random unit directions, drawn through the same code and in closed form\n"
    );
    print_means(&p.hists, &p.expected);
    print_by_t_range(&p.hists, &p.expected);
    if !p.sensitivity.is_empty() {
        print_sensitivity(&p.sensitivity);
    }
    let title = format!("{}: tangent alignment at step {} (all t)", run_name(run_dir), p.step);
    ayt::engine::probe::write_probe_figure(&p.hists, &p.expected, &title, out)?;
    println!(
        "\nhistograms: {} and {} (panels top to bottom: toward-data cosine, rho, toward-manifold cosine; \
         l2 red, mfd green, lpips blue, random directions grey; dashed: their closed-form mean)",
        out.display(),
        out.with_extension("svg").display()
    );
    if let Some((path, drawn)) = rho_over_training(&run, &losses_of(&p.hists), out)? {
        println!(
            "rho over training: {} (the run's logged probes; one panel per loss, left to right: {}; x probes, y rho 0..1)",
            path.display(),
            drawn.join(", ")
        );
    }
    Ok(())
}

/// Each loss's logged `rho` histograms over training as heat maps, beside `out` (`<stem>_over_
/// training.png`), with the losses drawn, left to right; `None` when the run logged no probes.
fn rho_over_training(run: &RunDir, losses: &[String], out: &Path) -> anyhow::Result<Option<(PathBuf, Vec<String>)>> {
    let log = ayt::store::RunLog::open(run.log_file())?;
    let names = log.hist_names()?;
    let (mut panels, mut drawn) = (Vec::new(), Vec::new());
    for loss in losses.iter().filter(|l| *l != probe::CHANCE) {
        let name = format!("tangent/{loss}/rho");
        if names.contains(&name) {
            let title = loss.to_uppercase();
            panels.push(ayt::plot::HeatPanel { title, colour: ayt::plot::loss_colour(loss), probes: log.hist(&name)?.counts });
            drawn.push(loss.clone());
        }
    }
    if panels.is_empty() {
        return Ok(None);
    }
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "probe".into());
    let path = out.with_file_name(format!("{stem}_over_training.png"));
    let figure = ayt::plot::HeatFigure {
        title: format!("{}: rho over training", run_name(run.path())),
        x_label: "probe (oldest left)".into(),
        y_label: "rho".into(),
        y: (0.0, 1.0),
        cols: panels.len(),
        panels,
    };
    ayt::plot::heatmaps(&figure, &path)?;
    Ok(Some((path, drawn)))
}

/// A run folder's name for figure titles.
fn run_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
}

/// `(K, m)` pairs to compare beyond the run's own: every given K with every given m (the run's
/// value for the one not given); empty when neither is given.
fn sensitivity_grid(ks: &[u64], ms: &[u64], (k0, m0): (usize, usize)) -> Vec<(usize, usize)> {
    if ks.is_empty() && ms.is_empty() {
        return Vec::new();
    }
    let ks: Vec<usize> = if ks.is_empty() { vec![k0] } else { ks.iter().map(|&k| k as usize).collect() };
    let ms: Vec<usize> = if ms.is_empty() { vec![m0] } else { ms.iter().map(|&m| m as usize).collect() };
    ks.iter().flat_map(|&k| ms.iter().map(move |&m| (k, m))).collect()
}

/// The losses of a probe in display order (MFD, LPIPS, L2, others, then chance).
fn losses_of(hists: &probe::ProbeHists) -> Vec<String> {
    let mut losses: Vec<String> = Vec::new();
    for (name, _, _) in hists {
        let loss = name.trim_start_matches("tangent/").split('/').next().unwrap_or("").to_string();
        if !losses.contains(&loss) {
            losses.push(loss);
        }
    }
    losses.sort_by_key(|l| probe::display_rank(l));
    losses
}

fn summary<'a>(hists: &'a probe::ProbeHists, name: &str) -> Option<&'a ayt::metrics::hist::Summary> {
    hists.iter().find(|(n, _, _)| n == name).map(|(_, _, s)| s)
}

fn print_means(hists: &probe::ProbeHists, expected: &BTreeMap<String, f64>) {
    println!("{:<16} {:<7} {:>4}  {:<26} {:<26} {:>11}", "metric", "loss", "n", "mean [95% CI]", "chance drawn [95% CI]", "chance exact");
    let losses = losses_of(hists);
    for metric in probe::METRICS {
        let chance = summary(hists, &format!("tangent/{}/{metric}", probe::CHANCE));
        let exact = expected.get(&format!("tangent/{}/{metric}", probe::CHANCE));
        for loss in losses.iter().filter(|l| *l != probe::CHANCE) {
            let Some(s) = summary(hists, &format!("tangent/{loss}/{metric}")) else { continue };
            println!(
                "{metric:<16} {loss:<7} {:>4}  {:<26} {:<26} {:>11}",
                s.n,
                s.interval().text(3),
                chance.map_or("n/a".into(), |c| c.interval().text(3)),
                exact.map_or("n/a".into(), |v| format!("{v:.4}"))
            );
        }
    }
}

fn print_by_t_range(hists: &probe::ProbeHists, expected: &BTreeMap<String, f64>) {
    print!("\nmeans by noise level\n{:<16} {:<7}", "metric", "loss");
    for (_, _, label) in probe::T_RANGES {
        print!(" {label:>8}");
    }
    println!();
    let losses = losses_of(hists);
    for metric in probe::METRICS {
        let mut any = false;
        for loss in &losses {
            let cells: Vec<Option<f64>> =
                (0..probe::T_RANGES.len()).map(|k| summary(hists, &format!("tangent/{loss}/{metric}_t{k}")).map(|s| s.mean)).collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            any = true;
            print!("{metric:<16} {loss:<7}");
            for c in cells {
                print!(" {:>8}", c.filter(|v| v.is_finite()).map_or("n/a".into(), |v| format!("{v:.3}")));
            }
            println!();
        }
        let exact: Vec<Option<f64>> =
            (0..probe::T_RANGES.len()).map(|k| expected.get(&format!("tangent/{}/{metric}_t{k}", probe::CHANCE)).copied()).collect();
        if any && exact.iter().any(Option::is_some) {
            print!("{metric:<16} {:<7}", "exact");
            for c in exact {
                print!(" {:>8}", c.map_or("n/a".into(), |v| format!("{v:.3}")));
            }
            println!();
        }
    }
}

fn print_sensitivity(rows: &[ayt::engine::probe::LocalPcaProbe]) {
    println!("\nlocal-PCA sensitivity (same directions, other tangent spaces)");
    println!("{:>4} {:>4} {:<7} {:<24} {:<24} {:<24} {:>11}", "K", "m", "loss", "rho", "excess", "toward_manifold", "rho chance");
    for ayt::engine::probe::LocalPcaProbe { k, m, hists, expected } in rows {
        let chance_rho = expected.get(&format!("tangent/{}/rho", probe::CHANCE)).map_or("n/a".into(), |v| format!("{v:.4}"));
        for loss in losses_of(hists) {
            let cell = |metric: &str| summary(hists, &format!("tangent/{loss}/{metric}")).map_or("n/a".into(), |s| s.interval().text(3));
            println!("{k:>4} {m:>4} {loss:<7} {:<24} {:<24} {:<24} {chance_rho:>11}", cell("rho"), cell("excess"), cell("toward_manifold"));
        }
    }
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

pub fn bench(what: &str, batch: usize, steps: usize, precision: &str, device: &DeviceArg) -> anyhow::Result<()> {
    let device = device.open()?;
    if !["unet", "ddpmpp", "feat", "all"].contains(&what) {
        bail!("ayt bench {what}: expected unet, ddpmpp, feat or all");
    }
    if steps == 0 || batch == 0 {
        bail!("ayt bench: --batch and --steps must be positive");
    }
    let Some(compute) = ayt::nn::precision::Compute::parse(precision) else {
        bail!("ayt bench --precision {precision}: expected f32, tf32 or bf16");
    };
    Ok(ayt::nn::precision::with_compute(compute, || ayt::bench::run(what, batch, steps, &device))?)
}
