//! Messages between the engine thread and its consumers.

use std::path::PathBuf;

use crate::config::Preset;

#[derive(Clone, Debug)]
pub enum RunRequest {
    New {
        preset: Box<Preset>,
        /// Folder of the preset file (for relative `train.init` paths).
        preset_dir: Option<PathBuf>,
        /// Run folder; default `<home>/runs/<name>-<utc time>`.
        out: Option<PathBuf>,
    },
    Resume {
        run_dir: PathBuf,
    },
}

#[derive(Clone, Debug)]
pub enum Command {
    /// Run this next (queued behind a running run).
    Start(RunRequest),
    Pause,
    Resume,
    /// Checkpoint and end the current run.
    Stop,
    Checkpoint,
    SampleNow,
    /// Tangent-alignment probe now.
    Probe,
    /// Stop the current run (with a checkpoint) and end the engine.
    Quit,
}

#[derive(Clone, Debug)]
pub enum Event {
    Started {
        run_dir: PathBuf,
        name: String,
        start_step: u64,
        total_steps: u64,
        params: usize,
    },
    Step {
        step: u64,
        total_steps: u64,
        kimg: f64,
        wall_s: f64,
        loss: f64,
        stage: u64,
        img_per_s: f64,
    },
    Samples {
        step: u64,
        path: PathBuf,
        images: Vec<u8>,
        n: usize,
        h: usize,
        w: usize,
        c: usize,
    },
    Checkpointed {
        step: u64,
        path: PathBuf,
    },
    /// A tangent-alignment probe: histograms (`tangent/<loss>/<metric>[_t<k>]`) and summaries.
    Probe {
        step: u64,
        hists: crate::metrics::probe::ProbeHists,
    },
    /// Sample-quality values of the EMA model (`fd_evalnet_1step`, ...), also in `/eval` of run.h5.
    Eval {
        step: u64,
        kimg: f64,
        values: Vec<(String, f64)>,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    Finished {
        run_dir: PathBuf,
        step: u64,
        stopped_early: bool,
        final_loss: f64,
        wall_s: f64,
    },
    Failed {
        run_dir: Option<PathBuf>,
        error: String,
    },
    Log(String),
}
