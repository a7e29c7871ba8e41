//! `ayt fid`: the standard FID between two image sources, or one source's statistics saved.

use std::path::{Path, PathBuf};

use anyhow::bail;
use ayt::metrics::fd::frechet_distance;
use ayt::metrics::fid::{self, Source};
use ayt::paths::Paths;
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
        let g = fid::image_statistics(source, detector, n, device, &format!("fid {}", source.name()))?;
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
