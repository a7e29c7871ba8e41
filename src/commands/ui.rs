//! The terminal UI (`ayt`, `ayt tui`) and its frame-time benchmark (`ayt bench-ui`).

use std::path::PathBuf;

use crate::cli::DeviceArg;
use ayt::paths::Paths;
use ayt::sweep::SweepSpec;
use ayt::tui::Graphics;

/// `ayt` alone: the launcher, on `$AYT_DEVICE` (else the CPU).
pub fn launcher(paths: Paths, graphics: Graphics) -> anyhow::Result<()> {
    let opts = ayt::tui::LiveOptions {
        paths,
        device: ayt::device::from_env()?,
        presets: Vec::new(),
        set: Vec::new(),
        start: false,
        queue: Vec::new(),
        graphics,
    };
    Ok(ayt::tui::run_live(opts)?)
}

pub fn tui(
    paths: Paths,
    presets: Vec<PathBuf>,
    set: Vec<String>,
    start: bool,
    sweep: Option<PathBuf>,
    device: &DeviceArg,
    graphics: Graphics,
) -> anyhow::Result<()> {
    // The members' locks are held while the UI runs (a concurrent `ayt sweep` skips them).
    let (queue, _locks) = match sweep {
        Some(file) => {
            let (dir, plan) = ayt::sweep::plan::open_or_create(&SweepSpec::load(&file)?, &paths)?;
            ayt::sweep::runner::queue_unfinished(&dir, &plan)?
        }
        None => (Vec::new(), Vec::new()),
    };
    let opts = ayt::tui::LiveOptions { paths, device: device.open()?, presets, set, start, queue, graphics };
    Ok(ayt::tui::run_live(opts)?)
}

/// Renders the dashboard `frames` times into a `width x height` test backend with histories of
/// `points` points (a live run and a three-run overlay) and prints frame-time statistics.
pub fn bench_ui(points: usize, width: u16, height: u16, frames: usize) -> anyhow::Result<()> {
    use std::time::Instant;
    let frames = frames.max(1);
    for (label, app) in
        [("live dashboard", ayt::tui::fixtures::dashboard(points)), ("view, 3 runs overlaid", ayt::tui::fixtures::viewer(points))]
    {
        let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))?;
        let mut times = Vec::with_capacity(frames);
        for _ in 0..frames {
            let t = Instant::now();
            terminal.draw(|f| ayt::tui::render::draw(f, &app))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{label}: {points} points/run, {width}x{height}, {frames} frames: mean {mean:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            pct(0.5),
            pct(0.95),
            pct(1.0)
        );
    }
    Ok(())
}
