//! The command line's grammar (clap): every subcommand, flag and default. What each command
//! does is in `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use ayt::device::DEVICE_ENV;
use ayt::paths::HOME_ENV;

#[derive(Parser)]
#[command(name = "ayt", version, about = "Train consistency models with manifold-aligned tangents (AYT)")]
pub struct Cli {
    /// Where runs and data sets live [default: the platform data dir, e.g. ~/.local/share/ayt]
    #[arg(long, global = true, env = HOME_ENV)]
    pub home: Option<PathBuf>,
    /// How the terminal UI draws sample tiles: auto (ask the terminal), kitty, sixel, iterm2 or
    /// halfblocks
    #[arg(long, global = true, env = "AYT_GRAPHICS", default_value = "auto", value_parser = clap::value_parser!(ayt::tui::Graphics))]
    pub graphics: ayt::tui::Graphics,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Train a preset headless (progress bar on a terminal, periodic lines when piped)
    Train(PresetJob),
    /// Continue a run from its latest checkpoint
    Resume {
        run_dir: PathBuf,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Draw samples from a run's checkpoint as a PNG grid
    Sample {
        run_dir: PathBuf,
        /// consistency (1 or 2 steps) or heun (EDM's sampler) [default: heun for EDM runs,
        /// else consistency]
        #[arg(long, value_enum)]
        sampler: Option<ayt::sample::SamplerKind>,
        /// Steps of the sampler [default: 18 for heun, log.sample_steps for consistency]
        #[arg(long)]
        steps: Option<usize>,
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// Use the raw (online) weights instead of the EMA
        #[arg(long, conflicts_with = "ema")]
        raw: bool,
        /// The EMA profile to sample (train.ema) [default: the run's first]
        #[arg(long, value_name = "NAME")]
        ema: Option<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Checkpoint step [default: the latest]
        #[arg(long)]
        step: Option<u64>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Copy a run's checkpoint (EMA weights only), training state and preset into a new folder
    /// that train.init, sample, eval and probe read like a run: a starting point to share
    Pack {
        run_dir: PathBuf,
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
        /// unet (the MNIST benchmark UNet), ddpmpp (EDM's CIFAR-10 DDPM++, 3x32x32), feat, or all
        /// (unet and feat)
        #[arg(default_value = "all")]
        what: String,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Timed steps (after two warm-up steps); medians are reported
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// f32, tf32 or bf16: the products' precision, as `train.precision` (on a GPU, beside
        /// PyTorch's fp32 with and without TF32 and its bf16 autocast)
        #[arg(long, default_value = "f32")]
        precision: String,
        #[command(flatten)]
        device: DeviceArg,
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
        #[command(flatten)]
        device: DeviceArg,
    },
    /// The standard FID (NVIDIA's inception-2015-12-05 detector, as EDM and ECT report it)
    /// between two image sources, each a folder of PNGs, a data set (store name or .h5 file) or
    /// statistics in an EDM-format .npz; or, with --save-stats, A's statistics as such an .npz
    Fid {
        a: String,
        b: Option<String>,
        /// Write A's statistics (mu, sigma) to this .npz, as EDM's `fid.py ref` does
        #[arg(long, value_name = "FILE.npz")]
        save_stats: Option<PathBuf>,
        /// Use at most N images of each image source [default: all]
        #[arg(long)]
        n: Option<usize>,
        /// The detector file [default: weights/fid/inception-2015-12-05.safetensors]
        #[arg(long)]
        detector: Option<PathBuf>,
        #[command(flatten)]
        device: DeviceArg,
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
        /// Local PCA sensitivity (image data): also report the local-PCA metrics at these
        /// tangent dimensions m, e.g. 4,8,16,32 ...
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..))]
        m: Vec<u64>,
        /// ... and these neighbour counts K (default: the run's probe.k)
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..))]
        k: Vec<u64>,
        #[command(flatten)]
        device: DeviceArg,
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
        /// Steps of the Heun-sampler metric fd_*_heun<N>, 0 for none [default: 18 for an EDM
        /// run (35 evaluations a sample: minutes on a CPU), none for a consistency run]
        #[arg(long)]
        heun_steps: Option<usize>,
        /// The EMA profile to evaluate (train.ema), also with --fid; a profile other than the
        /// run's first logs its metrics as <metric>@<profile> [default: the run's first]
        #[arg(long, value_name = "NAME")]
        ema: Option<String>,
        /// Print the values as one JSON object (step, ema, then metric: value) instead of a table
        #[arg(long)]
        json: bool,
        /// The standard FID instead, as EDM and ECT report it: fid_1step, fid_2step (and
        /// fid_heun18 for an EDM run) of --fid-n samples from the EMA weights, sample i from seed
        /// i, NVIDIA's inception-2015-12-05 detector, against --fid-ref
        #[arg(long, conflicts_with_all = ["n", "evalnet_iterations", "inception"])]
        fid: bool,
        /// Samples per FID
        #[arg(long, default_value_t = ayt::metrics::fid::protocol::DEFAULT_SAMPLES, requires = "fid")]
        fid_n: usize,
        /// Reference: a data set (all its images; statistics cached), an EDM .npz (e.g.
        /// cifar10-32x32.npz) or a PNG folder [default: the run's data set]
        #[arg(long, requires = "fid")]
        fid_ref: Option<String>,
        /// Seed ranges (0..N-1, N..2N-1, ...): the value is their minimum, fid_*_mean their mean
        #[arg(long, default_value_t = 1, requires = "fid")]
        fid_ranges: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Run a sweep file's members in turn under <home>/sweeps/<name>/ (finished members are
    /// skipped, an interrupted one resumes from its latest checkpoint); or list them, or write a
    /// Slurm job array for them
    Sweep {
        /// A run preset with a [sweep] table (a file, or a preset name as for `train --preset`)
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
        #[command(flatten)]
        device: DeviceArg,
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
        #[command(flatten)]
        device: DeviceArg,
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
pub enum FeaturesCmd {
    /// Train phi by augmentation-label regression and store it in the feature store
    Train(PresetJob),
}

/// A job described by a preset: `ayt train` and `ayt features train`.
#[derive(clap::Args)]
pub struct PresetJob {
    /// A preset file, or a name: NAME.toml in $AYT_PRESETS (else ~/.config/ayt/presets),
    /// ./presets, or the presets ayt was built with
    #[arg(long)]
    pub preset: PathBuf,
    /// Override a preset field, e.g. --set train.batch_size=64 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run folder [default: <home>/runs/<name>-<time>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Subcommand)]
pub enum AugmentCmd {
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
pub enum DataCmd {
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
pub enum ImportCmd {
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
    /// CIFAR-10 as downloaded and unpacked: cifar-10-batches-bin/ or cifar-10-batches-py/ (or
    /// the folder holding it); the pickles are read as data, never run
    Cifar10 {
        path: PathBuf,
        /// The store name [default: cifar10, or cifar10-test with --test]
        #[arg(long)]
        name: Option<String>,
        /// Import test_batch instead of data_batch_1..5
        #[arg(long)]
        test: bool,
    },
    /// A zip of PNGs with an optional dataset.json of labels, as EDM's, ECT's and CMT's
    /// dataset_tool.py write it
    EdmZip {
        file: PathBuf,
        #[arg(long)]
        name: String,
    },
}

/// Where a command runs its networks.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArg {
    /// cpu or cuda:N (CUDA needs a build with the `cuda` feature)
    #[arg(long = "device", env = DEVICE_ENV, default_value = "cpu", value_name = "DEVICE")]
    pub spec: String,
}

impl DeviceArg {
    pub fn open(&self) -> anyhow::Result<candle_core::Device> {
        Ok(ayt::device::parse(&self.spec)?)
    }
}
