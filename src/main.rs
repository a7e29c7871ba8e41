//! `ayt`: the command line. Subcommands run headless; the terminal UI is the default.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use ayt::config::Preset;
use ayt::data::{idx, png_import, DatasetStore};
use ayt::engine::{self, Command, RunRequest};
use ayt::paths::{Paths, HOME_ENV};
use ayt::sweep::SweepSpec;

#[derive(Parser)]
#[command(name = "ayt", version, about = "Train consistency models with manifold-aligned tangents (AYT)")]
struct Cli {
    /// Where runs and data sets live [default: the platform data dir, e.g. ~/.local/share/ayt]
    #[arg(long, global = true, env = HOME_ENV)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a preset headless (progress bar on a terminal, periodic lines when piped)
    Train(PresetJob),
    /// Continue a run from its latest checkpoint
    Resume {
        run_dir: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Draw samples from a run's checkpoint as a PNG grid
    Sample {
        run_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// Use the raw (online) weights instead of the EMA
        #[arg(long)]
        raw: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Checkpoint step [default: the latest]
        #[arg(long)]
        step: Option<u64>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Data sets in the HDF5 store
    #[command(subcommand)]
    Data(DataCmd),
    /// CPU throughput of the benchmark UNet's training step and the feature net's input gradient
    /// (the architectures of scripts/torch_reference.py; scripts/bench_vs_torch.py compares)
    Bench {
        /// unet, feat or all
        #[arg(default_value = "all")]
        what: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Timed steps (after two warm-up steps); medians are reported
        #[arg(long, default_value_t = 10)]
        steps: usize,
    },
    /// LPIPS v0.1 distance between two PNGs (pixels map to [-1, 1] as x / 127.5 - 1)
    Lpips {
        a: PathBuf,
        b: PathBuf,
        /// Backbone: alex or vgg
        #[arg(long, default_value = "alex")]
        net: ayt::model::lpips::LpipsNet,
        /// Bilinear resize of both images to N x N first (0: native size)
        #[arg(long, default_value_t = 0)]
        resize: usize,
        /// Weights folder holding lpips/ [default: $AYT_WEIGHTS, else the source tree's weights/]
        #[arg(long, env = ayt::model::lpips::WEIGHTS_ENV)]
        weights: Option<PathBuf>,
    },
    /// Tangent-alignment probe of a checkpoint: a table per loss and metric, and a PNG of the
    /// overlaid histograms
    Probe {
        run_dir: PathBuf,
        #[arg(long)]
        step: Option<u64>,
        #[arg(long, default_value = "probe.png")]
        out: PathBuf,
        /// Also probe MFD with this feature network (default: the run's mfd.features)
        #[arg(long)]
        mfd: Option<String>,
    },
    /// FD-evalnet of 1-step and 2-step samples and dFD at sigma 0.2 / 0.4 / 0.8 for a run's
    /// checkpoint (EMA weights); values go to the run's run.h5 under /eval with their protocol
    Eval {
        run_dir: PathBuf,
        #[arg(long)]
        step: Option<u64>,
        /// Samples (and reference images) per FD [default: the run's eval.n, 1000]
        #[arg(long)]
        n: Option<usize>,
        /// Training steps of the evaluator network when it is not cached yet [default: the
        /// run's eval.evalnet_iterations, 1500]
        #[arg(long)]
        evalnet_iterations: Option<u64>,
        /// torchvision Inception-v3 weights (.safetensors) for real FID [default: the run's
        /// eval.inception; without one, no value is called FID]
        #[arg(long)]
        inception: Option<PathBuf>,
    },
    /// Run a sweep file's members in turn under <home>/sweeps/<name>/ (finished members are
    /// skipped, an interrupted one resumes from its latest checkpoint); or list them, or write a
    /// Slurm job array for them
    Sweep {
        /// A run preset with a [sweep] table
        file: PathBuf,
        /// Run only member I (0-based), e.g. one task of a job array
        #[arg(long, value_name = "I")]
        member: Option<usize>,
        /// List the members (and their status once the sweep has started); run nothing
        #[arg(long)]
        dry_run: bool,
        /// Write a Slurm job-array script (one task per member) into DIR instead of running
        #[arg(long, value_name = "DIR")]
        emit_slurm: Option<PathBuf>,
        /// CPUs per array task (--emit-slurm)
        #[arg(long, default_value_t = 2)]
        cpus: usize,
        /// Time limit per array task, e.g. 04:00:00 (--emit-slurm)
        #[arg(long, default_value = "04:00:00")]
        time: String,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// One table of a run's or a sweep's logs, a row per (run, step): run, step, kimg, the swept
    /// fields, every scalar (probe means included) and eval metric (eval/<name>)
    Export {
        /// A run folder, or a sweep (its folder, sweep.h5 or sweep file)
        source: PathBuf,
        /// csv, jsonl or hdf5 [default: from the extension of --out]
        #[arg(long)]
        format: Option<ayt::export::Format>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Plots (FD vs kimg per batch size, probe alignment over training) and report.md (final and
    /// best FD per member, kimg to reach a target FD) in <sweep>/report/
    Report {
        /// A sweep (its folder, sweep.h5 or sweep file)
        sweep: PathBuf,
        /// Target FD for "kimg to reach it" [default: the median of the members' final FDs]
        #[arg(long)]
        target_fd: Option<f64>,
        /// The eval metric reported as FD
        #[arg(long, default_value = ayt::sweep::report::DEFAULT_METRIC)]
        metric: String,
    },
    /// The self-supervised feature network phi of the MFD loss
    #[command(subcommand)]
    Features(FeaturesCmd),
    /// Augmentations of the feature network (method.md section 6)
    #[command(subcommand)]
    Augment(AugmentCmd),
    /// The terminal UI (what `ayt` alone opens): launcher and live dashboard
    Tui {
        /// A preset to offer first in the launcher (repeatable)
        #[arg(long)]
        preset: Vec<PathBuf>,
        /// Override a field of the named presets, e.g. --set train.iterations=100 (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Start the first --preset at once
        #[arg(long)]
        start: bool,
        /// Queue the unfinished members of this sweep file (see `ayt sweep`)
        #[arg(long, value_name = "FILE")]
        sweep: Option<PathBuf>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// The dashboard, read-only, over runs on disk (finished or running); several are overlaid
    View {
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
    },
    /// Frame time of the dashboard with long histories (no terminal needed)
    BenchUi {
        /// Points per loss history (three runs are overlaid, plus one live run)
        #[arg(long, default_value_t = 100_000)]
        points: usize,
        #[arg(long, default_value_t = 200)]
        width: u16,
        #[arg(long, default_value_t = 60)]
        height: u16,
        #[arg(long, default_value_t = 200)]
        frames: usize,
    },
}

#[derive(Subcommand)]
enum FeaturesCmd {
    /// Train phi by augmentation-label regression and store it in the feature store
    Train(PresetJob),
}

/// A job described by a preset: `ayt train` and `ayt features train`.
#[derive(clap::Args)]
struct PresetJob {
    #[arg(long)]
    preset: PathBuf,
    /// Override a preset field, e.g. --set train.batch_size=64 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run folder [default: <home>/runs/<name>-<time>]
    #[arg(long)]
    out: Option<PathBuf>,
    /// cpu or cuda:N (needs the `cuda` feature)
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Subcommand)]
enum AugmentCmd {
    /// A PNG grid of augmented images; prints each image's non-zero labels
    Preview {
        /// disks, mnist, or a data set in the store
        #[arg(long)]
        dataset: String,
        #[arg(long, default_value_t = 32)]
        n: usize,
        /// Probability that each op fires
        #[arg(long, default_value_t = 0.5)]
        p: f32,
        #[arg(long, default_value = "grid.png")]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum DataCmd {
    /// Import a data set into the store
    #[command(subcommand)]
    Import(ImportCmd),
    /// List the store's data sets
    List,
    /// Shape, labels, checksum, and a preview grid PNG
    Show {
        name: String,
        #[arg(long)]
        preview: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// MNIST-format IDX files (gzipped or raw): a folder with the canonical names, or IMAGES LABELS
    Mnist {
        paths: Vec<PathBuf>,
        #[arg(long)]
        name: String,
        /// In a folder, use the t10k files instead of the train files
        #[arg(long)]
        test: bool,
    },
    /// A folder of PNGs of one size; sub-folder names become labels
    Png {
        folder: PathBuf,
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    ayt::runtime::tune_cpu();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_device(s: &str) -> anyhow::Result<candle_core::Device> {
    if s == "cpu" {
        return Ok(candle_core::Device::Cpu);
    }
    if let Some(n) = s.strip_prefix("cuda:") {
        let n: usize = n.parse().with_context(|| format!("--device {s}: expected cuda:N"))?;
        return candle_core::Device::new_cuda(n).with_context(|| format!("--device {s} (build with --features cuda)"));
    }
    bail!("--device {s}: expected cpu or cuda:N")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = Paths::resolve(cli.home);
    let Some(command) = cli.command else {
        let opts = ayt::tui::LiveOptions {
            paths,
            device: candle_core::Device::Cpu,
            presets: Vec::new(),
            set: Vec::new(),
            start: false,
            queue: Vec::new(),
        };
        return Ok(ayt::tui::run_live(opts)?);
    };
    match command {
        Cmd::Train(PresetJob { preset, set, out, device }) => {
            let p = Preset::load(&preset, &set)?;
            let request = RunRequest::New { preset: Box::new(p), preset_dir: preset.parent().map(|d| d.to_path_buf()), out };
            run_headless(paths, &device, request)
        }
        Cmd::Resume { run_dir, device } => run_headless(paths, &device, RunRequest::Resume { run_dir }),
        Cmd::Sample { run_dir, steps, n, raw, seed, step, out } => {
            let written = ayt::sample::from_run(&run_dir, step, n, steps, !raw, seed)?;
            ayt::sample::write_grid(&written, &out)?;
            eprintln!("wrote {n} {steps}-step samples ({}) to {}", if raw { "raw weights" } else { "EMA weights" }, out.display());
            Ok(())
        }
        Cmd::Data(cmd) => data_command(&paths, cmd),
        Cmd::Eval { run_dir, step, n, evalnet_iterations, inception } => {
            let overrides = |cfg: &mut ayt::metrics::evaluator::EvalConfig| {
                cfg.n = n.unwrap_or(cfg.n);
                cfg.evalnet_iterations = evalnet_iterations.unwrap_or(cfg.evalnet_iterations);
                if let Some(f) = inception {
                    cfg.inception = Some(f.display().to_string());
                }
            };
            let log = |line: &str| eprintln!("{line}");
            let (step, values) = ayt::metrics::evaluator::evaluate_run(&paths, &run_dir, step, overrides, &log)?;
            ayt::metrics::evaluator::log_to_run(&run_dir, step, &values)?;
            println!("evaluation of {} at step {step} (EMA weights)", run_dir.display());
            for v in &values {
                let proto: Vec<String> = v.attrs.iter().map(|(k, val)| format!("{k}={val}")).collect();
                println!("{:<30} {:>10.4}   {}", v.metric, v.value, proto.join(", "));
            }
            Ok(())
        }
        Cmd::Probe { run_dir, step, out, mfd } => probe_command(&paths, &run_dir, step, mfd.as_deref(), &out),
        Cmd::Tui { preset, set, start, sweep, device } => {
            // The members' locks are held while the UI runs (a concurrent `ayt sweep` skips them).
            let (queue, _locks) = match sweep {
                Some(file) => {
                    let (dir, plan) = ayt::sweep::plan::open_or_create(&SweepSpec::load(&file)?, &paths)?;
                    ayt::sweep::runner::queue_unfinished(&dir, &plan)?
                }
                None => (Vec::new(), Vec::new()),
            };
            let opts = ayt::tui::LiveOptions { paths, device: parse_device(&device)?, presets: preset, set, start, queue };
            Ok(ayt::tui::run_live(opts)?)
        }
        Cmd::Sweep { file, member, dry_run, emit_slurm, cpus, time, device } => {
            let spec = SweepSpec::load(&file)?;
            if dry_run {
                ayt::sweep::runner::dry_run(&spec, &paths)?.iter().for_each(|line| println!("{line}"));
                return Ok(());
            }
            let (dir, plan) = ayt::sweep::plan::open_or_create(&spec, &paths)?;
            if let Some(out) = emit_slurm {
                let home = std::path::absolute(&paths.home)?;
                let opts = ayt::sweep::slurm::SlurmOptions { ayt: std::env::current_exe()?, home, cpus, time };
                let script = ayt::sweep::slurm::write(&plan, &out, &opts)?;
                eprintln!("sweep {}: {} members; submit the job array with `sbatch {}`", plan.name, plan.members.len(), script.display());
                println!("{}", script.display());
                return Ok(());
            }
            run_sweep(paths, &device, &dir, &plan, member)
        }
        Cmd::Export { source, format, out } => {
            let format = match format {
                Some(f) => f,
                None => out
                    .extension()
                    .and_then(|e| e.to_str())
                    .and_then(|e| e.parse().ok())
                    .with_context(|| format!("--out {}: give --format csv|jsonl|hdf5 (or an .csv/.jsonl/.h5 name)", out.display()))?,
            };
            let (sources, keys) = ayt::export::sources(&source, &paths)?;
            if sources.is_empty() {
                bail!("{}: no run has a log yet", source.display());
            }
            let table = ayt::export::table(&sources, &keys)?;
            ayt::export::write(&table, format, &out, &source.display().to_string())?;
            let rows = table.first().map(|(_, c)| c.len()).unwrap_or(0);
            eprintln!("wrote {rows} rows x {} columns from {} run(s) to {}", table.len(), sources.len(), out.display());
            Ok(())
        }
        Cmd::Report { sweep, target_fd, metric } => {
            let dir = ayt::sweep::locate(&sweep, &paths)?;
            let w = ayt::sweep::report::write(&dir, &metric, target_fd)?;
            for p in w.pngs.iter().chain([&w.markdown]) {
                println!("{}", p.display());
            }
            Ok(())
        }
        Cmd::View { run_dirs } => Ok(ayt::tui::run_view(&run_dirs, &paths)?),
        Cmd::BenchUi { points, width, height, frames } => bench_ui(points, width, height, frames),
        Cmd::Features(FeaturesCmd::Train(PresetJob { preset, set, out, device })) => {
            let p = ayt::features::FeaturesPreset::load(&preset, &set)?;
            let o = ayt::features::train::train(&p, &paths, out, &parse_device(&device)?)?;
            eprintln!("phi {}: final loss {:.5}, {:.1} s; R^2 on held-out augmented images:", p.name, o.final_loss, o.wall_s);
            for r in o.r2_groups.iter().chain(&o.r2_labels) {
                eprintln!("  {:<14} {:>7.3}", r.name, r.value);
            }
            eprintln!("stored {} (run log {})", o.phi_path.display(), o.run_dir.display());
            Ok(())
        }
        Cmd::Augment(AugmentCmd::Preview { dataset, n, p, out, seed }) => {
            let batch = ayt::augment::preview::load_batch(&DatasetStore::new(paths.datasets()), &dataset, n, seed)?;
            for (i, labels) in ayt::augment::preview::preview(&batch, p, seed, &out)?.iter().enumerate() {
                let parts: Vec<String> = labels.iter().map(|(name, v)| format!("{name}={v:.3}")).collect();
                println!("{i:>3}: {}", if parts.is_empty() { "clean".to_string() } else { parts.join(" ") });
            }
            eprintln!("wrote {} augmented images of {dataset} to {}", batch.b, out.display());
            Ok(())
        }
        Cmd::Lpips { a, b, net, resize, weights } => lpips_command(&a, &b, net, resize, weights),
        Cmd::Bench { what, batch, steps } => {
            if !["unet", "feat", "all"].contains(&what.as_str()) {
                bail!("ayt bench {what}: expected unet, feat or all");
            }
            if steps == 0 || batch == 0 {
                bail!("ayt bench: --batch and --steps must be positive");
            }
            Ok(ayt::bench::run(&what, batch, steps)?)
        }
    }
}

fn lpips_command(
    a: &std::path::Path,
    b: &std::path::Path,
    net: ayt::model::lpips::LpipsNet,
    resize: usize,
    weights: Option<PathBuf>,
) -> anyhow::Result<()> {
    use ayt::model::lpips::{self, Lpips};
    let dir = weights.unwrap_or_else(lpips::weights_root).join("lpips");
    let resize = (resize > 0).then_some(resize);
    let model = Lpips::load(&dir, net, resize, candle_core::DType::F32, &candle_core::Device::Cpu)?;
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

/// Ctrl-C: checkpoint and stop cleanly; a second Ctrl-C exits at once.
fn quit_on_ctrl_c(commands: crossbeam_channel::Sender<Command>) {
    let mut hits = 0;
    let _ = ctrlc::set_handler(move || {
        hits += 1;
        if hits > 1 {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (checkpoint first); Ctrl-C again to exit now");
        let _ = commands.send(Command::Quit);
    });
}

fn run_headless(paths: Paths, device: &str, request: RunRequest) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let handle = engine::spawn(paths, device);
    handle.commands.send(Command::Start(request)).context("starting the engine")?;
    quit_on_ctrl_c(handle.commands.clone());
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
    println!("{}", o.run_dir.display());
    Ok(())
}

fn run_sweep(paths: Paths, device: &str, dir: &ayt::sweep::SweepDir, plan: &ayt::sweep::Plan, member: Option<usize>) -> anyhow::Result<()> {
    use ayt::sweep::runner::MemberOutcome;
    let handle = engine::spawn(paths, parse_device(device)?);
    quit_on_ctrl_c(handle.commands.clone());
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

fn probe_command(
    paths: &Paths,
    run_dir: &std::path::Path,
    step: Option<u64>,
    mfd: Option<&str>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let (step, hists) = ayt::engine::probe::probe_checkpoint(paths, run_dir, step, mfd)?;
    println!("tangent alignment at step {step} of {}", run_dir.display());
    println!("{:<28} {:>5} {:>8} {:>8} {:>8} {:>8}", "loss/metric", "n", "mean", "q1", "median", "q3");
    for (name, _, s) in &hists {
        println!("{:<28} {:>5} {:>8.3} {:>8.3} {:>8.3} {:>8.3}", name.trim_start_matches("tangent/"), s.n, s.mean, s.q1, s.median, s.q3);
    }
    // One panel per metric over all t, the losses overlaid.
    let mut panels = Vec::new();
    for (metric, _, _) in ayt::metrics::probe::METRICS {
        let series: Vec<(String, ayt::metrics::hist::Histogram)> = hists
            .iter()
            .filter_map(|(n, h, _)| {
                let rest = n.strip_prefix("tangent/")?;
                let (loss, m) = rest.split_once('/')?;
                (m == metric).then(|| (loss.to_string(), h.clone()))
            })
            .collect();
        if !series.is_empty() {
            panels.push(series);
        }
    }
    ayt::metrics::plot::overlaid_histograms(&panels, out)?;
    println!(
        "histograms: {} (panels top to bottom: toward-data cosine on [-1, 1], rho on [0, 1]; l2 red, mfd green, lpips blue)",
        out.display()
    );
    Ok(())
}

fn data_command(paths: &Paths, cmd: DataCmd) -> anyhow::Result<()> {
    let store = DatasetStore::new(paths.datasets());
    match cmd {
        DataCmd::Import(ImportCmd::Mnist { paths: files, name, test }) => {
            let (images, labels) = match files.as_slice() {
                [dir] if dir.is_dir() => {
                    let prefix = if test { "t10k" } else { "train" };
                    (find_idx(dir, &format!("{prefix}-images-idx3-ubyte"))?, find_idx(dir, &format!("{prefix}-labels-idx1-ubyte"))?)
                }
                [images, labels] => (images.clone(), labels.clone()),
                _ => bail!("ayt data import mnist: give a folder, or the images and labels files"),
            };
            let set = idx::read_mnist_pair(&images, &labels)?;
            let path = store.save(&name, &set)?;
            eprintln!("imported {} images {}x{}x{} as {name}: {}", set.n, set.h, set.w, set.c, path.display());
        }
        DataCmd::Import(ImportCmd::Png { folder, name }) => {
            let set = png_import::import_png_folder(&folder)?;
            let path = store.save(&name, &set)?;
            eprintln!("imported {} images {}x{}x{} as {name}: {}", set.n, set.h, set.w, set.c, path.display());
        }
        DataCmd::List => {
            ayt::data::mnist::ensure_mnist(&store)?;
            for info in store.list()? {
                println!(
                    "{:<20} {:>7} x {}x{}x{}  {}  sha256 {}",
                    info.name,
                    info.n,
                    info.h,
                    info.w,
                    info.c,
                    info.dtype,
                    &info.sha256[..12.min(info.sha256.len())]
                );
            }
        }
        DataCmd::Show { name, preview } => {
            ayt::data::mnist::ensure_if_builtin(&store, &name)?;
            let info = store.info(&name)?;
            println!(
                "name     {}\nfile     {}\nshape    [{}, {}, {}, {}] {}\nsha256   {}\nsource   {}",
                info.name,
                info.path.display(),
                info.n,
                info.h,
                info.w,
                info.c,
                info.dtype,
                info.sha256,
                info.source
            );
            if let Some(counts) = &info.label_counts {
                let parts: Vec<String> = counts.iter().map(|(l, n)| format!("{l}:{n}")).collect();
                println!("labels   {}", parts.join(" "));
            }
            let out = preview.unwrap_or_else(|| PathBuf::from(format!("{name}-preview.png")));
            ayt::data::preview_png(&store.load(&name)?, &out, 64)?;
            println!("preview  {}", out.display());
        }
    }
    Ok(())
}

/// `name` or `name.gz` in `dir`.
fn find_idx(dir: &std::path::Path, name: &str) -> anyhow::Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("{}: no {name} or {name}.gz here", dir.display())
}

/// Renders the dashboard `frames` times into a `width x height` test backend with histories of
/// `points` points (a live run and a three-run overlay) and prints frame-time statistics.
fn bench_ui(points: usize, width: u16, height: u16, frames: usize) -> anyhow::Result<()> {
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
