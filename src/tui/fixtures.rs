//! Fixed, deterministic data for the snapshot tests and the frame-time benchmark: no engine,
//! no files, no clock.

use std::path::PathBuf;

use super::app::{App, Grid, HistRow, Launcher, LauncherTab, PresetEntry, ProbeHist, RunData, RunEntry, RunState};
use crate::config::Preset;
use crate::engine::Event;
use crate::store::SampleGrid;

/// A tiny deterministic generator (no dependence on `rand`'s algorithms).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` disk-like images of `size x size` (grey), as the disks data set looks.
pub fn disks(n: usize, size: usize, seed: u64) -> SampleGrid {
    let mut rng = Lcg(seed);
    let mut images = vec![0u8; n * size * size];
    for i in 0..n {
        let (cx, cy) = (size as f64 * (0.3 + 0.4 * rng.next()), size as f64 * (0.3 + 0.4 * rng.next()));
        let r = size as f64 * (0.15 + 0.15 * rng.next());
        for y in 0..size {
            for x in 0..size {
                let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
                let v = (1.0 / (1.0 + ((d - r) * 2.0).exp()) * 255.0).round();
                images[(i * size + y) * size + x] = v as u8;
            }
        }
    }
    SampleGrid { n, h: size, w: size, c: 1, images }
}

/// A histogram of `n` values of a bump at `center` with width `width`, in [-1, 1].
pub fn bump_hist(center: f64, width: f64, bins: usize, n: u64) -> HistRow {
    let edges: Vec<f64> = (0..=bins).map(|i| -1.0 + 2.0 * i as f64 / bins as f64).collect();
    let weights: Vec<f64> = (0..bins)
        .map(|i| {
            let c = 0.5 * (edges[i] + edges[i + 1]);
            (-((c - center) / width).powi(2)).exp()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    HistRow { step: 600, edges, counts: weights.iter().map(|w| (w / sum * n as f64).round() as u64).collect(), mean: None }
}

const PRESET: &str = r#"
name = "quick-disks"
description = "Consistency training from scratch on 16x16 disks"
[data]
dataset = "disks"
[train]
mode = "ect"
batch_size = 32
iterations = 1200
"#;

/// A launcher with two presets (one broken) and one run folder.
pub fn launcher() -> Launcher {
    let good = PresetEntry {
        path: PathBuf::from("presets/quick-disks.toml"),
        name: "quick-disks".into(),
        preset: Preset::parse(PRESET, "quick-disks.toml".as_ref(), &[]).map_err(|e| e.to_string()),
    };
    let bad = PresetEntry {
        path: PathBuf::from("presets/broken.toml"),
        name: "broken".into(),
        preset: Err("presets/broken.toml: train.batch_size = 0: must be at least 1".into()),
    };
    let run = RunEntry {
        dir: PathBuf::from("/home/u/.local/share/ayt/runs/quick-disks-20260101-120000"),
        name: "quick-disks-20260101-120000".into(),
        summary: "preset quick-disks\ncheckpoints: 300, 600, 900, 1200\nsamples: 5 grids".into(),
    };
    Launcher::new(vec![good, bad], vec![run])
}

/// A loss curve of `points` points: a decaying exponential with deterministic noise.
pub fn loss_run(name: &str, points: usize, seed: u64, state: RunState) -> RunData {
    let mut run = RunData::new(name, Some(PathBuf::from(format!("/runs/{name}"))), state);
    let mut rng = Lcg(seed);
    let total = points as u64;
    for i in 1..=points {
        let t = i as f64 / points as f64;
        let v = 0.02 + 0.5 * (-5.0 * t).exp() * (1.0 + 0.3 * (rng.next() - 0.5)) + 0.01 * rng.next();
        run.loss.push(i as f64, i as f64 * 0.032, i as f64 * 0.1, v);
    }
    run.progress.step = total / 2;
    run.progress.total = total;
    run.progress.kimg = total as f64 * 0.016;
    run.progress.wall_s = 95.0;
    run.progress.img_per_s = 412.5;
    run.progress.steps_per_s = 12.9;
    run
}

/// The dashboard of a running run with curves, samples (EMA and raw), histograms and a log.
pub fn dashboard(points: usize) -> App {
    let mut app = App::new(launcher());
    app.on_event(Event::Started {
        run_dir: "/runs/quick-disks".into(),
        name: "quick-disks".into(),
        start_step: 0,
        total_steps: 1200,
        params: 61_985,
    });
    let mut run = loss_run("quick-disks", points, 7, RunState::Running);
    run.progress.total = points as u64 * 2;
    run.samples_ema = Some(Grid { step: 600, grid: disks(16, 16, 1) });
    run.samples_raw = Some(Grid { step: 600, grid: disks(16, 16, 2) });
    for (k, fd) in [(100, 80.0), (200, 40.0), (400, 22.0), (600, 15.0)] {
        run.evals.entry("fd".into()).or_default().push(k as f64 * points as f64 / 600.0, k as f64 * 0.032, k as f64 * 0.1, fd);
    }
    app.runs[0] = run;
    for (name, c, w) in [("tangent/mfd/rho", 0.7, 0.2), ("tangent/lpips/rho", 0.4, 0.35), ("tangent/l2/rho", 0.1, 0.5)] {
        app.on_probe(ProbeHist { name: name.into(), row: bump_hist(c, w, 24, 4096) });
    }
    app.on_probe(ProbeHist { name: "tangent/mfd/rho_t1".into(), row: bump_hist(0.8, 0.1, 24, 1024) });
    app.push_log("samples at step 300: /runs/quick-disks/samples/step-300.png");
    app.push_log("checkpoint at step 300: /runs/quick-disks/ckpt/step-300.safetensors");
    app.push_log("probe at step 300: l2/rho=0.10 lpips/rho=0.40 mfd/rho=0.70");
    app.queue.push_back("new run of preset mnist-ect".into());
    app
}

/// [`dashboard`] with 40 earlier probes in which each loss's `rho` drifts to where it ends
/// (and L2's oscillates), shown as heat maps over training.
pub fn dashboard_heatmap() -> App {
    let mut app = dashboard(2000);
    let run = &mut app.runs[0];
    for (name, end, w) in [("tangent/mfd/rho", 0.7, 0.2), ("tangent/lpips/rho", 0.4, 0.35), ("tangent/l2/rho", 0.1, 0.5)] {
        let latest = run.hists[name].clone();
        run.hist_history.remove(name);
        for k in 0..40u64 {
            let f = k as f64 / 39.0;
            let wobble = if name.contains("l2") { 0.4 * (k as f64 * 0.8).sin() } else { 0.0 };
            let mut row = bump_hist(-0.8 + (end + 0.8) * f + wobble, w, 24, 4096);
            row.step = 15 * k;
            run.record_hist(name.into(), row);
        }
        run.record_hist(name.into(), latest);
    }
    app.focus = crate::tui::app::Panel::Hist;
    app.hist.heatmap = true;
    app
}

/// The dashboard right after a start: no steps, samples or probes yet.
pub fn empty_dashboard() -> App {
    let mut app = App::new(launcher());
    app.on_event(Event::Started {
        run_dir: "/runs/quick-disks".into(),
        name: "quick-disks".into(),
        start_step: 0,
        total_steps: 1200,
        params: 61_985,
    });
    app
}

/// `ayt view` over three finished runs, overlaid.
pub fn viewer(points: usize) -> App {
    let runs = (0..3)
        .map(|i| {
            let mut r = loss_run(&format!("bs{}", 32 << i), points, 11 + i as u64, RunState::Viewing);
            r.samples_ema = Some(Grid { step: points as u64, grid: disks(64, 16, 3 + i as u64) });
            r
        })
        .collect();
    App::viewer(runs)
}

/// The launcher on its runs tab.
pub fn launcher_runs() -> App {
    let mut app = App::new(launcher());
    app.launcher.tab = LauncherTab::Runs;
    app
}

/// `ayt view` over a sweep: L2, LPIPS and MFD at one batch size, two seeds each; per setting a
/// loss level and an FD curve (MFD fastest to low FD), rho histograms per loss.
pub fn sweep_view(points: usize) -> App {
    let mut runs = Vec::new();
    for (k, (loss, level, fd_end, rho)) in
        [("l2", 1.0, 40.0, 0.9), ("lpips", 0.6, 30.0, 0.75), ("mfd", 0.3, 18.0, 0.5)].into_iter().enumerate()
    {
        for seed in 0..2u64 {
            let mut r = loss_run(
                &format!("{:03}-loss={loss}-seed={seed}", 2 * k as u64 + seed),
                points,
                31 + 2 * k as u64 + seed,
                RunState::Viewing,
            );
            r.swept = vec![("train.loss".into(), loss.into()), ("seed".into(), seed.to_string())];
            let spread = 1.0 + 0.15 * seed as f64;
            for i in 0..r.loss.raw.len() {
                r.loss.raw[i] *= level * spread;
            }
            r.loss.set_smoothing(0.0);
            r.loss.set_smoothing(crate::tui::series::SMOOTHING);
            for e in 0..=6 {
                let f = e as f64 / 6.0;
                let fd = fd_end * spread + (90.0 - fd_end) * (1.0 - f).powi(2);
                r.evals.entry("fd_evalnet_1step".into()).or_default().push(f * points as f64, f * points as f64 * 0.032, f * 60.0, fd);
            }
            r.progress.step = points as u64;
            r.progress.total = points as u64;
            r.state = RunState::Finished;
            for (l, c) in [("l2", 0.95), ("lpips", 0.85), ("mfd", 0.65)] {
                let center = if l == loss { rho } else { c } + 0.03 * seed as f64;
                r.hists.insert(format!("tangent/{l}/rho"), bump_hist(center, 0.2, 24, 1024));
            }
            r.samples_ema = Some(Grid { step: points as u64, grid: disks(16, 16, 5 + seed) });
            runs.push(r);
        }
    }
    let mut app = App::viewer(runs);
    app.push_log("a sweep: g per setting / per run, T summary table (sortable), / filter, [ ] smoothing");
    app
}
