//! [`RunLogWriter`]: logging calls only send a message to a background thread, which buffers
//! rows and writes them in bursts (every `flush_interval`, and on `flush`/`close`). Each burst
//! opens the file, extends the datasets, writes and closes it again, so between bursts the file
//! on disk is always closed and consistent (no SWMR, no `libver latest`: nothing ever needs
//! `h5clear`).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use hdf5::Group;

use super::h5::{self, obj_err};
use super::tables::{truncate_after, unlocked};
pub use super::writer_thread::{Flushed, WriterOptions, MAX_PENDING_BYTES};
use super::writer_thread::{Msg, WriterThread};
use super::{RunMeta, EVAL_COLS, HIST_COLS, SCALAR_COLS, SCHEMA_VERSION};
use crate::error::{Error, Result};

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
        let file = unlocked().create_excl(path).map_err(|e| Error::file(path, format!("cannot create: {e}")))?;
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
        // A resumed run's log may have been damaged since (a cut copy, a bad disk).
        super::RunLog::open(path)?;
        let file = unlocked().open_rw(path).map_err(|e| Error::file(path, format!("cannot open for writing: {e}")))?;
        let res = truncate_after(path, &file, keep_up_to_step);
        let closed = file.close().map_err(|e| Error::file(path, format!("cannot close: {e}")));
        res.and(closed)?;
        Self::spawn(path, opts)
    }

    fn spawn(path: &Path, opts: WriterOptions) -> Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut state = WriterThread::new(path.to_path_buf(), &opts);
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

    /// Writes every row logged so far and returns once it is on disk ([`Flushed::Written`]), or
    /// once the file turned out not writable now ([`Flushed::Deferred`]: the rows wait for the
    /// next burst; nothing is lost); an error is a table that failed to write since the last
    /// `flush`/`close`.
    pub fn flush(&self) -> Result<Flushed> {
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        self.send(Msg::Flush(rtx))?;
        rrx.recv().map_err(|_| Error::file(&self.path, "run-log writer thread has stopped"))?
    }

    /// Writes every buffered row, then deletes every row with `step > keep` from every table:
    /// the log of a run rolled back to the checkpoint at `keep`.
    pub fn truncate_after(&self, keep: i64) -> Result<()> {
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        self.send(Msg::TruncateAfter(keep, rtx))?;
        rrx.recv().map_err(|_| Error::file(&self.path, "run-log writer thread has stopped"))?
    }

    /// Writes every buffered row (trying for up to 30 s while the file cannot be opened), stops
    /// the thread, and returns the first error: a failed table, or rows that could not be written.
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
            Some(r) => r.map(|_| ()),
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
