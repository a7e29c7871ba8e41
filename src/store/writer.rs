//! [`RunLogWriter`]: logging calls only send a message to a background thread, which buffers
//! rows and writes them in bursts (every `flush_interval`, and on `flush`/`close`). Each burst
//! opens the file, extends the datasets, writes and closes it again, so between bursts the file
//! on disk is always closed and consistent (no SWMR, no `libver latest`: nothing ever needs
//! `h5clear`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdf5::{File, Group};

use super::h5::{self, obj_err};
use super::{RunMeta, EVAL_COLS, HIST_COLS, SCALAR_COLS, SCHEMA_VERSION};
use crate::error::{Error, Result};

/// Writer settings.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// How often buffered rows are written (default 2 s).
    pub flush_interval: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { flush_interval: Duration::from_secs(2) }
    }
}

/// Chunk sizes (rows) of the extendable datasets.
const CHUNK_1D: usize = 1024;
const CHUNK_HIST: usize = 64;
const CHUNK_SAMPLES: usize = 1;
/// A burst retries opening the file this many times (a reader in another process may hold
/// HDF5's file lock for a moment).
const OPEN_TRIES: usize = 5;

enum Msg {
    Scalar { name: String, step: i64, kimg: f64, wall: f64, value: f64 },
    Hist { name: String, step: i64, edges: Vec<f64>, counts: Vec<i64> },
    Samples { step: i64, images: Vec<u8>, dims: [usize; 4] },
    Eval { metric: String, step: i64, kimg: f64, value: f64, attrs: Vec<(String, String)> },
    Flush(Sender<Result<()>>),
    Close(Sender<Result<()>>),
}

/// Handle to the run-log writer thread. Logging methods validate their arguments, send a
/// message and return at once; disk errors are kept by the thread and returned by the next
/// [`flush`](Self::flush) or [`close`](Self::close). Dropping the writer without `close`
/// still writes the buffered rows (errors are then lost).
pub struct RunLogWriter {
    path: PathBuf,
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl RunLogWriter {
    /// Creates a new run log at `path` with the root attributes from `meta` (its
    /// `schema_version` is ignored: [`SCHEMA_VERSION`] is written). Refuses an existing file.
    pub fn create(path: impl AsRef<Path>, meta: &RunMeta) -> Result<Self> {
        Self::create_with(path, meta, WriterOptions::default())
    }

    pub fn create_with(path: impl AsRef<Path>, meta: &RunMeta, opts: WriterOptions) -> Result<Self> {
        let path = path.as_ref();
        if path.exists() {
            return Err(Error::file(path, "run log already exists; refusing to overwrite it"));
        }
        let file = File::create_excl(path).map_err(|e| Error::file(path, format!("cannot create: {e}")))?;
        let res = (|| -> Result<()> {
            let root: &Group = &file;
            h5::set_int_attr(path, root, "schema_version", SCHEMA_VERSION)?;
            h5::set_str_attr(path, root, "ayt_version", &meta.ayt_version)?;
            h5::set_str_attr(path, root, "preset_toml", &meta.preset_toml)?;
            h5::set_int_attr(path, root, "seed", meta.seed)?;
            h5::set_str_attr(path, root, "created_utc", &meta.created_utc)?;
            h5::set_str_attr(path, root, "dataset", &meta.dataset)?;
            h5::set_str_attr(path, root, "dataset_sha256", &meta.dataset_sha256)?;
            for g in ["scalars", "hist", "samples", "eval"] {
                root.create_group(g).map_err(|e| obj_err(path, &format!("/{g}"), e))?;
            }
            Ok(())
        })();
        let closed = file.close().map_err(|e| Error::file(path, format!("cannot close: {e}")));
        res.and(closed)?;
        Self::spawn(path, opts)
    }

    /// Opens an existing run log to resume a run whose last checkpoint is at step
    /// `keep_up_to_step`: first deletes every row with `step > keep_up_to_step` from every
    /// table (rows logged after that checkpoint would otherwise be duplicated).
    pub fn open_append(path: impl AsRef<Path>, keep_up_to_step: i64) -> Result<Self> {
        Self::open_append_with(path, keep_up_to_step, WriterOptions::default())
    }

    pub fn open_append_with(path: impl AsRef<Path>, keep_up_to_step: i64, opts: WriterOptions) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::file(path, "run log not found"));
        }
        let file = File::open_rw(path).map_err(|e| Error::file(path, format!("cannot open for writing: {e}")))?;
        let res = truncate_after(path, &file, keep_up_to_step);
        let closed = file.close().map_err(|e| Error::file(path, format!("cannot close: {e}")));
        res.and(closed)?;
        Self::spawn(path, opts)
    }

    fn spawn(path: &Path, opts: WriterOptions) -> Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut state = WriterThread { path: path.to_path_buf(), interval: opts.flush_interval, pending: Pending::default(), error: None };
        let thread = std::thread::Builder::new()
            .name("ayt-runlog".into())
            .spawn(move || state.run(rx))
            .map_err(|e| Error::file(path, format!("cannot start the writer thread: {e}")))?;
        Ok(RunLogWriter { path: path.to_path_buf(), tx: Some(tx), thread: Some(thread) })
    }

    /// The run log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, msg: Msg) -> Result<()> {
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|_| Error::file(&self.path, "run-log writer thread has stopped")),
            None => Err(Error::file(&self.path, "run-log writer is closed")),
        }
    }

    /// Logs one scalar row to `/scalars/<name>`.
    pub fn scalar(&self, name: &str, step: i64, kimg: f64, wall: f64, value: f64) -> Result<()> {
        h5::check_name("scalar", name, &SCALAR_COLS).map_err(|e| Error::file(&self.path, e.to_string()))?;
        self.send(Msg::Scalar { name: name.to_string(), step, kimg, wall, value })
    }

    /// Logs one histogram row to `/hist/<name>`: `edges.len()` must be `counts.len() + 1`, and
    /// the bin count must match the table's existing rows.
    pub fn hist(&self, name: &str, step: i64, edges: Vec<f64>, counts: Vec<i64>) -> Result<()> {
        h5::check_name("histogram", name, &HIST_COLS).map_err(|e| Error::file(&self.path, e.to_string()))?;
        if counts.is_empty() || edges.len() != counts.len() + 1 {
            return Err(Error::file(
                &self.path,
                format!("/hist/{name}: need B >= 1 counts and B + 1 edges, got {} counts and {} edges", counts.len(), edges.len()),
            ));
        }
        self.send(Msg::Hist { name: name.to_string(), step, edges, counts })
    }

    /// Logs a grid of `n` images `h x w x c` (row-major `[n, h, w, c]` bytes) to `/samples`.
    pub fn samples(&self, step: i64, images: Vec<u8>, n: usize, h: usize, w: usize, c: usize) -> Result<()> {
        let want = n.checked_mul(h).and_then(|x| x.checked_mul(w)).and_then(|x| x.checked_mul(c));
        if want != Some(images.len()) || images.is_empty() {
            return Err(Error::file(
                &self.path,
                format!("/samples/images: {} bytes do not make a non-empty [{n}, {h}, {w}, {c}] grid", images.len()),
            ));
        }
        self.send(Msg::Samples { step, images, dims: [n, h, w, c] })
    }

    /// Logs one evaluation row to `/eval/<metric>`; `attrs` (e.g. `extractor`, `n_samples`,
    /// `sampler`, `reference`) are written as string attributes when the table is created.
    pub fn eval(&self, metric: &str, step: i64, kimg: f64, value: f64, attrs: Vec<(String, String)>) -> Result<()> {
        h5::check_name("eval metric", metric, &EVAL_COLS).map_err(|e| Error::file(&self.path, e.to_string()))?;
        self.send(Msg::Eval { metric: metric.to_string(), step, kimg, value, attrs })
    }

    /// Writes every row logged so far and returns once it is on disk, or returns the first
    /// error the writer hit since the last `flush`/`close`.
    pub fn flush(&self) -> Result<()> {
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        self.send(Msg::Flush(rtx))?;
        rrx.recv().map_err(|_| Error::file(&self.path, "run-log writer thread has stopped"))?
    }

    /// Writes every buffered row, stops the thread and returns the first pending error.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        let sent = tx.send(Msg::Close(rtx)).is_ok();
        drop(tx);
        let res = if sent { rrx.recv().ok() } else { None };
        let joined = self.thread.take().map(|t| t.join().is_ok()).unwrap_or(true);
        match res {
            Some(r) => r,
            None if !joined => Err(Error::file(&self.path, "run-log writer thread panicked")),
            None => Err(Error::file(&self.path, "run-log writer thread has stopped")),
        }
    }
}

impl Drop for RunLogWriter {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Writer thread

#[derive(Default)]
struct ScalarRows {
    step: Vec<i64>,
    kimg: Vec<f64>,
    wall: Vec<f64>,
    value: Vec<f64>,
}

#[derive(Default)]
struct HistRows {
    bins: usize,
    step: Vec<i64>,
    edges: Vec<f64>,
    counts: Vec<i64>,
}

struct SampleRows {
    dims: [usize; 4],
    step: Vec<i64>,
    images: Vec<u8>,
}

#[derive(Default)]
struct EvalRows {
    attrs: Vec<(String, String)>,
    step: Vec<i64>,
    kimg: Vec<f64>,
    value: Vec<f64>,
}

#[derive(Default)]
struct Pending {
    scalars: BTreeMap<String, ScalarRows>,
    hists: BTreeMap<String, HistRows>,
    samples: Option<SampleRows>,
    evals: BTreeMap<String, EvalRows>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.scalars.is_empty() && self.hists.is_empty() && self.samples.is_none() && self.evals.is_empty()
    }
}

struct WriterThread {
    path: PathBuf,
    interval: Duration,
    pending: Pending,
    /// First error since the last flush/close.
    error: Option<Error>,
}

impl WriterThread {
    fn record(&mut self, r: Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    fn report(&mut self) -> Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        let mut deadline = Instant::now() + self.interval;
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(Msg::Flush(reply)) => {
                    let r = self.burst();
                    self.record(r);
                    let _ = reply.send(self.report());
                }
                Ok(Msg::Close(reply)) => {
                    let r = self.burst();
                    self.record(r);
                    let _ = reply.send(self.report());
                    return;
                }
                Ok(msg) => {
                    let r = self.buffer(msg);
                    self.record(r);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let r = self.burst();
                    self.record(r);
                    deadline = Instant::now() + self.interval;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.burst();
                    return;
                }
            }
        }
    }

    /// Adds one row to the buffer; a row whose shape disagrees with the buffered rows of the
    /// same table is dropped with an error.
    fn buffer(&mut self, msg: Msg) -> Result<()> {
        let p = &mut self.pending;
        match msg {
            Msg::Scalar { name, step, kimg, wall, value } => {
                let t = p.scalars.entry(name).or_default();
                t.step.push(step);
                t.kimg.push(kimg);
                t.wall.push(wall);
                t.value.push(value);
            }
            Msg::Hist { name, step, edges, counts } => {
                let t = p.hists.entry(name.clone()).or_default();
                if t.step.is_empty() {
                    t.bins = counts.len();
                } else if t.bins != counts.len() {
                    return Err(obj_err(
                        &self.path,
                        &format!("/hist/{name}"),
                        format!("row at step {step} has {} bins, earlier rows have {}", counts.len(), t.bins),
                    ));
                }
                t.step.push(step);
                t.edges.extend(edges);
                t.counts.extend(counts);
            }
            Msg::Samples { step, images, dims } => {
                let t = p.samples.get_or_insert_with(|| SampleRows { dims, step: vec![], images: vec![] });
                if t.dims != dims {
                    return Err(obj_err(
                        &self.path,
                        "/samples/images",
                        format!("grid at step {step} is {dims:?}, earlier grids are {:?}", t.dims),
                    ));
                }
                t.step.push(step);
                t.images.extend(images);
            }
            Msg::Eval { metric, step, kimg, value, attrs } => {
                let t = p.evals.entry(metric).or_default();
                if t.step.is_empty() {
                    t.attrs = attrs;
                }
                t.step.push(step);
                t.kimg.push(kimg);
                t.value.push(value);
            }
            Msg::Flush(_) | Msg::Close(_) => {}
        }
        Ok(())
    }

    /// Opens the file, appends every buffered table, closes it. If the file cannot be opened,
    /// the rows stay buffered for the next burst; a table that fails to write is dropped (its
    /// error is returned), the others are still written.
    fn burst(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let file = open_rw_retry(&path)?;
        let pending = std::mem::take(&mut self.pending);
        let mut first: Option<Error> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        for (name, t) in &pending.scalars {
            note(write_scalar(&path, &file, name, t));
        }
        for (name, t) in &pending.hists {
            note(write_hist(&path, &file, name, t));
        }
        if let Some(t) = &pending.samples {
            note(write_samples(&path, &file, t));
        }
        for (name, t) in &pending.evals {
            note(write_eval(&path, &file, name, t));
        }
        note(file.close().map_err(|e| Error::file(&path, format!("cannot close: {e}"))));
        first.map_or(Ok(()), Err)
    }
}

fn open_rw_retry(path: &Path) -> Result<File> {
    let mut last = None;
    for i in 0..OPEN_TRIES {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(20 << i));
        }
        match File::open_rw(path) {
            Ok(f) => return Ok(f),
            Err(e) => last = Some(e),
        }
    }
    let why = last.map(|e| e.to_string()).unwrap_or_default();
    Err(Error::file(path, format!("cannot open for writing (rows kept for the next try): {why}")))
}

fn top_group(path: &Path, file: &File, name: &str) -> Result<Group> {
    h5::ensure_group(path, file, name)
}

fn write_scalar(path: &Path, file: &File, name: &str, t: &ScalarRows) -> Result<()> {
    let g = h5::ensure_group(path, &top_group(path, file, "scalars")?, name)?;
    check_lengths(path, &g, &SCALAR_COLS)?;
    h5::check_columns(path, &g, &[("step", &[]), ("kimg", &[]), ("wall", &[]), ("value", &[])])?;
    h5::append_rows(path, &g, "step", &[], &t.step, CHUNK_1D)?;
    h5::append_rows(path, &g, "kimg", &[], &t.kimg, CHUNK_1D)?;
    h5::append_rows(path, &g, "wall", &[], &t.wall, CHUNK_1D)?;
    h5::append_rows(path, &g, "value", &[], &t.value, CHUNK_1D)
}

fn write_hist(path: &Path, file: &File, name: &str, t: &HistRows) -> Result<()> {
    let g = h5::ensure_group(path, &top_group(path, file, "hist")?, name)?;
    check_lengths(path, &g, &HIST_COLS)?;
    // Check the bin count before extending anything, so a mismatch leaves the table as it was.
    if g.link_exists("counts") {
        let (_, shape) = h5::dataset_nd(path, &g, "counts", 2)?;
        if shape[1] != t.bins {
            return Err(obj_err(path, &format!("{}/counts", g.name()), format!("has {} bins, new rows have {}", shape[1], t.bins)));
        }
    }
    h5::check_columns(path, &g, &[("step", &[]), ("edges", &[t.bins + 1]), ("counts", &[t.bins])])?;
    h5::append_rows(path, &g, "step", &[], &t.step, CHUNK_1D)?;
    h5::append_rows(path, &g, "edges", &[t.bins + 1], &t.edges, CHUNK_HIST)?;
    h5::append_rows(path, &g, "counts", &[t.bins], &t.counts, CHUNK_HIST)
}

fn write_samples(path: &Path, file: &File, t: &SampleRows) -> Result<()> {
    let g = top_group(path, file, "samples")?;
    check_lengths(path, &g, &["step", "images"])?;
    if g.link_exists("images") {
        let (_, shape) = h5::dataset_nd(path, &g, "images", 5)?;
        if shape[1..] != t.dims {
            return Err(obj_err(path, "/samples/images", format!("grids are {:?}, new grids are {:?}", &shape[1..], t.dims)));
        }
    }
    h5::check_columns(path, &g, &[("step", &[]), ("images", &t.dims)])?;
    h5::append_rows(path, &g, "step", &[], &t.step, CHUNK_1D)?;
    h5::append_rows(path, &g, "images", &t.dims, &t.images, CHUNK_SAMPLES)
}

fn write_eval(path: &Path, file: &File, name: &str, t: &EvalRows) -> Result<()> {
    let eval = top_group(path, file, "eval")?;
    let created = h5::opt_group(path, &eval, name)?.is_none();
    let g = h5::ensure_group(path, &eval, name)?;
    if created {
        for (k, v) in &t.attrs {
            h5::set_str_attr(path, &g, k, v)?;
        }
    }
    check_lengths(path, &g, &EVAL_COLS)?;
    h5::check_columns(path, &g, &[("step", &[]), ("kimg", &[]), ("value", &[])])?;
    h5::append_rows(path, &g, "step", &[], &t.step, CHUNK_1D)?;
    h5::append_rows(path, &g, "kimg", &[], &t.kimg, CHUNK_1D)?;
    h5::append_rows(path, &g, "value", &[], &t.value, CHUNK_1D)
}

/// Before appending: the table's existing columns must have the same number of rows
/// (otherwise appended rows would not line up).
fn check_lengths(path: &Path, g: &Group, cols: &[&str]) -> Result<()> {
    let mut seen: Option<(&str, usize)> = None;
    for &c in cols {
        if !g.link_exists(c) {
            continue;
        }
        let ds = g.dataset(c).map_err(|e| obj_err(path, &format!("{}/{c}", g.name()), e))?;
        let n = ds.shape().first().copied().unwrap_or(0);
        match seen {
            None => seen = Some((c, n)),
            Some((c0, n0)) if n0 != n => {
                return Err(obj_err(path, &g.name(), format!("columns have different lengths ({c0}: {n0}, {c}: {n})")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Deletes every row with `step > keep` from every table of the file (tables whose columns
/// have different lengths are first cut to the shortest one).
fn truncate_after(path: &Path, file: &File, keep: i64) -> Result<()> {
    let version: i64 = h5::get_int_attr(path, file, "schema_version")?;
    if version != SCHEMA_VERSION {
        return Err(obj_err(path, "/@schema_version", format!("{version} is not supported (expected {SCHEMA_VERSION})")));
    }
    let mut groups: Vec<Group> = Vec::new();
    for top in ["scalars", "hist", "eval"] {
        if let Some(g) = h5::opt_group(path, file, top)? {
            for name in h5::tables(path, &g)? {
                groups.push(h5::ensure_group(path, &g, &name)?);
            }
        }
    }
    if let Some(g) = h5::opt_group(path, file, "samples")? {
        if g.link_exists("step") {
            groups.push(g);
        }
    }
    for g in groups {
        let n = h5::min_rows(path, &g)?;
        let steps: Vec<i64> = h5::read_vec(path, &g, "step")?;
        let keep_idx: Vec<usize> = steps.iter().take(n).enumerate().filter(|(_, &s)| s <= keep).map(|(i, _)| i).collect();
        h5::keep_rows(path, &g, &keep_idx)?;
    }
    Ok(())
}
