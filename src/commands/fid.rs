//! `ayt fid`: the standard FID between two image sources, or one source's statistics saved.

use std::path::{Path, PathBuf};

use anyhow::bail;
use ayt::metrics::fd::frechet_distance;
use ayt::metrics::fid::{self, Source};
use ayt::paths::Paths;
use ayt::sample::Sampler;
use ayt::train::checkpoint;
use candle_core::Device;

pub fn fid(
    paths: &Paths,
    a: &str,
    b: Option<&str>,
    save_stats: Option<&Path>,
    n: Option<usize>,
    detector: Option<PathBuf>,
    device: &Device,
) -> anyhow::Result<()> {
    if b.is_none() && save_stats.is_none() {
        bail!("ayt fid {a}: give a second source to compare with, or --save-stats FILE.npz");
    }
    if n.is_some_and(|n| n < 2) {
        bail!("ayt fid: --n must be at least 2");
    }
    let sources: Vec<Source> = std::iter::once(a).chain(b).map(|s| Source::parse(s, paths)).collect::<ayt::Result<_>>()?;
    if let (Some(out), Source::Stats(_)) = (save_stats, &sources[0]) {
        bail!("ayt fid: --save-stats {}: {a} already is statistics", out.display());
    }
    let path = detector.unwrap_or_else(fid::default_detector_path);
    // The detector is loaded only when some source has images.
    let mut net = None;
    let mut stats = Vec::new();
    for source in &sources {
        if let Source::Stats(p) = source {
            stats.push(fid::npz::read(p)?);
            eprintln!("{}: statistics from the file", source.name());
            continue;
        }
        if net.is_none() {
            net = Some(fid::load_detector(&path, device)?);
        }
        let Some(detector) = &net else { continue };
        let g = fid::image_statistics(source.images()?, detector, n, device, &format!("fid {}", source.name()))?;
        eprintln!("{}: {} images through {}", source.name(), g.n, path.display());
        stats.push(g);
    }
    if let Some(out) = save_stats {
        fid::npz::write(out, &stats[0])?;
        eprintln!("wrote {} (mu, sigma of {})", out.display(), sources[0].name());
    }
    if stats.len() == 2 {
        println!("{}", frechet_distance(&stats[0], &stats[1])?);
    }
    Ok(())
}

/// `ayt eval --fid`: the standard FID of a run's checkpoint (the weights of EMA profile `ema`,
/// `None`: the run's default), logged and printed as `ayt eval` does.
pub fn eval(
    paths: &Paths,
    run_dir: &Path,
    (step, ema): (Option<u64>, Option<&str>),
    (samples, reference, ranges, heun_steps): (usize, Option<String>, usize, Option<usize>),
    json: bool,
    device: &Device,
) -> anyhow::Result<()> {
    if samples < 2 {
        bail!("--fid-n {samples}: needs at least 2 samples");
    }
    if !(1..=10).contains(&ranges) {
        bail!("--fid-ranges {ranges}: 1 to 10");
    }
    let run = ayt::paths::RunDir::new(run_dir);
    let step = run.checkpoint_step(step)?;
    let (model, preset, shape) = checkpoint::load_denoiser(&run, Some(step), checkpoint::Weights::Ema(ema), device)?;
    let (profile, is_default) = checkpoint::ema_profile(&run, &preset, ema)?;
    let heun_steps = ayt::sample::metric_heun_steps(&preset, heun_steps)?;
    let reference = Source::parse(reference.as_deref().unwrap_or(&preset.data.dataset), paths)?;
    let mut samplers = vec![Sampler::Consistency(1), Sampler::Consistency(2)];
    samplers.extend(heun_steps.map(Sampler::Heun));
    let detector = fid::default_detector_path();
    let protocol = fid::protocol::FidProtocol { samples, ranges, reference, detector, samplers, weights: profile.describe() };
    let log = |line: &str| eprintln!("{line}");
    let mut values = fid::protocol::evaluate(&model, &preset.sampling, shape, &protocol, paths, device, &log)?;
    ayt::metrics::evaluator::for_ema_profile(&mut values, &profile, is_default);
    super::inspect::report_eval(&run, step, &profile, &values, json)
}
