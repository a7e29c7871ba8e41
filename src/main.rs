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
    Train {
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
    },
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
        eprintln!("The terminal UI is not built yet; use a subcommand (ayt --help).");
        return Ok(());
    };
    match command {
        Cmd::Train { preset, set, out, device } => {
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

fn run_headless(paths: Paths, device: &str, request: RunRequest) -> anyhow::Result<()> {
    let device = parse_device(device)?;
    let handle = engine::spawn(paths, device);
    handle.commands.send(Command::Start(request)).context("starting the engine")?;
    // Ctrl-C: checkpoint and stop cleanly; a second Ctrl-C exits at once.
    let commands = handle.commands.clone();
    let mut hits = 0;
    let _ = ctrlc::set_handler(move || {
        hits += 1;
        if hits > 1 {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (checkpoint first); Ctrl-C again to exit now");
        let _ = commands.send(Command::Quit);
    });
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
            if name == ayt::data::mnist::TRAIN_NAME || name == ayt::data::mnist::TEST_NAME {
                ayt::data::mnist::ensure_mnist(&store)?;
            }
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
