//! The HDF5 run log, `<run>/run.h5`, schema version 1 (docs/run-folder.md describes it for
//! users):
//!
//! ```text
//! attrs: schema_version (int = 1), ayt_version, preset_toml, seed (int), created_utc (RFC 3339),
//!        dataset, dataset_sha256
//! /scalars/<name>/{step int64[N], kimg f64[N], wall f64[N], value f64[N]}
//! /hist/<name>/{step int64[N], edges f64[N,B+1], counts int64[N,B]}     name may contain '/'
//! /samples/{step int64[N], images uint8[N,n,H,W,C]}
//! /eval/<metric>/{step int64[N], kimg f64[N], value f64[N]} + string attrs (extractor, ...)
//! ```
//! Every table column is 1-D or N-D with an unlimited, chunked first axis, so h5py can append
//! (`ds.resize(n + 1, axis=0); ds[n] = x`).
//!
//! [`RunLogWriter`] owns a background thread that buffers rows and writes them in bursts; the
//! file is kept closed between bursts, so the file on disk is a consistent, closed HDF5 file
//! except during a (millisecond) burst: a `kill -9` loses at most the last `flush_interval`
//! of rows, and h5py can read a running run. [`RunLog`] reads a run, opening the file only
//! for the duration of each call (so a reader never blocks the writer's next burst).

pub mod bundle;
pub mod cache;
pub mod columns;
pub(crate) mod h5;
pub mod json;
mod reader;
mod rows;
pub mod sandbox;
mod snapshot;
mod tables;
pub mod wire;
mod writer;
mod writer_thread;

#[cfg(test)]
mod tests;

pub use reader::RunLog;
pub use writer::{Flushed, RunLogWriter, WriterOptions, MAX_PENDING_BYTES};

/// The schema version this code writes (root attribute `schema_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Column names of the table kinds; a table name segment may not be one of them.
pub(crate) const SCALAR_COLS: [&str; 4] = ["step", "kimg", "wall", "value"];
pub(crate) const HIST_COLS: [&str; 3] = ["step", "edges", "counts"];
pub(crate) const EVAL_COLS: [&str; 3] = ["step", "kimg", "value"];

/// The run's root attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunMeta {
    /// Schema version of the file (written as [`SCHEMA_VERSION`]; what was read on reading).
    pub schema_version: i64,
    pub ayt_version: String,
    /// The exact resolved preset, as TOML text.
    pub preset_toml: String,
    pub seed: u64,
    /// Creation time, RFC 3339 UTC (e.g. `2025-01-02T03:04:05Z`).
    pub created_utc: String,
    /// Data set name or path.
    pub dataset: String,
    pub dataset_sha256: String,
}

impl RunMeta {
    /// Meta for a new run: current schema, this crate's version, created now.
    pub fn new(preset_toml: impl Into<String>, seed: u64, dataset: impl Into<String>, dataset_sha256: impl Into<String>) -> Self {
        RunMeta {
            schema_version: SCHEMA_VERSION,
            ayt_version: env!("CARGO_PKG_VERSION").to_string(),
            preset_toml: preset_toml.into(),
            seed,
            created_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            dataset: dataset.into(),
            dataset_sha256: dataset_sha256.into(),
        }
    }
}

/// One scalar's rows, `/scalars/<name>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub step: Vec<i64>,
    /// Thousands of training images seen.
    pub kimg: Vec<f64>,
    /// Wall-clock seconds since the run started.
    pub wall: Vec<f64>,
    pub value: Vec<f64>,
}

impl Series {
    pub fn len(&self) -> usize {
        self.step.len()
    }
    pub fn is_empty(&self) -> bool {
        self.step.is_empty()
    }
}

/// One histogram's rows, `/hist/<name>`: row `i` has `bins` counts and `bins + 1` edges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistSeries {
    pub step: Vec<i64>,
    pub bins: usize,
    pub edges: Vec<Vec<f64>>,
    pub counts: Vec<Vec<i64>>,
}

/// A grid of `n` images of `h x w x c` bytes, row-major `[n, h, w, c]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleGrid {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub images: Vec<u8>,
}

/// One evaluation metric's rows, `/eval/<metric>`, with its string attributes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalSeries {
    pub step: Vec<i64>,
    pub kimg: Vec<f64>,
    pub value: Vec<f64>,
    /// Attributes such as `extractor`, `n_samples`, `sampler`, `reference`, sorted by name.
    pub attrs: Vec<(String, String)>,
}
