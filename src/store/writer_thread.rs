//! The run log's writer thread: it buffers rows and writes them in bursts (every
//! `flush_interval`, and on flush/close). A burst that cannot open the file leaves the rows for
//! the next one (the buffer is bounded: past [`MAX_PENDING_BYTES`] rows are refused, counted and
//! reported); the first burst that opens it again writes them all and clears the trouble.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::h5::obj_err;
use super::rows::{Pending, SampleRows};
use super::tables::{open_rw_retry, truncate_after, write_eval, write_hist, write_samples, write_scalar};
use crate::error::{Error, Result};

/// How much a writer keeps in memory while the file cannot be written.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// Writer settings.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// How often buffered rows are written (default 2 s).
    pub flush_interval: Duration,
    /// How long `close` keeps trying to write the last rows while the file cannot be opened
    /// (default 30 s).
    pub close_patience: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { flush_interval: Duration::from_secs(2), close_patience: Duration::from_secs(30) }
    }
}

pub(super) enum Msg {
    Scalar {
        name: String,
        step: i64,
        kimg: f64,
        wall: f64,
        value: f64,
    },
    Hist {
        name: String,
        step: i64,
        edges: Vec<f64>,
        counts: Vec<i64>,
    },
    Samples {
        step: i64,
        images: Vec<u8>,
        dims: [usize; 4],
    },
    Eval {
        metric: String,
        step: i64,
        kimg: f64,
        value: f64,
        attrs: Vec<(String, String)>,
    },
    Flush(Sender<Result<Flushed>>),
    Close(Sender<Result<Flushed>>),
    /// Write what is buffered, then delete every row after this step (a rollback).
    TruncateAfter(i64, Sender<Result<()>>),
}

impl Msg {
    /// What the row weighs in the buffer.
    fn bytes(&self) -> usize {
        match self {
            Msg::Scalar { name, .. } => name.len() + 32,
            Msg::Hist { name, edges, counts, .. } => name.len() + 8 * (1 + edges.len() + counts.len()),
            Msg::Samples { images, .. } => images.len() + 8,
            Msg::Eval { metric, attrs, .. } => metric.len() + 24 + attrs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
            Msg::Flush(_) | Msg::Close(_) | Msg::TruncateAfter(..) => 0,
        }
    }
}

/// What a flush (or close) found.
#[derive(Clone, Debug, PartialEq)]
pub enum Flushed {
    /// Every row logged so far is in the file.
    Written,
    /// The file cannot be written now; the rows wait in memory for the next burst. The message
    /// says why, since when, how many rows wait and how many the bound refused.
    Deferred(String),
}

pub(super) struct WriterThread {
    pub path: PathBuf,
    pub interval: Duration,
    pub close_patience: Duration,
    pub pending: Pending,
    /// A table that failed to write (its rows are lost), reported by the next flush or close.
    pub error: Option<Error>,
    /// Since when, and why, the file cannot be opened; cleared by the next burst that opens it.
    pub blocked: Option<(Instant, String)>,
    /// Rows refused while the buffer was full.
    pub refused: usize,
}

impl WriterThread {
    pub fn new(path: PathBuf, opts: &WriterOptions) -> WriterThread {
        let (interval, close_patience) = (opts.flush_interval, opts.close_patience);
        WriterThread { path, interval, close_patience, pending: Pending::default(), error: None, blocked: None, refused: 0 }
    }

    fn record(&mut self, r: Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// The outcome to report: the first lost table, else whether rows still wait.
    fn report(&mut self) -> Result<Flushed> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        Ok(match &self.blocked {
            None => Flushed::Written,
            Some((since, why)) => {
                let mut msg = format!(
                    "{} cannot be written ({:.0} s so far: {why}); {} rows wait in memory for the next try",
                    self.path.display(),
                    since.elapsed().as_secs_f64(),
                    self.pending.rows
                );
                if self.refused > 0 {
                    msg.push_str(&format!(", {} rows refused past the {} MiB bound", self.refused, MAX_PENDING_BYTES >> 20));
                }
                Flushed::Deferred(msg)
            }
        })
    }

    pub fn run(&mut self, rx: Receiver<Msg>) {
        let mut deadline = Instant::now() + self.interval;
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(Msg::Flush(reply)) => {
                    self.burst();
                    let _ = reply.send(self.report());
                }
                Ok(Msg::TruncateAfter(step, reply)) => {
                    let _ = reply.send(self.truncate_after(step));
                }
                Ok(Msg::Close(reply)) => {
                    let _ = reply.send(self.close());
                    return;
                }
                Ok(msg) => {
                    let r = self.buffer(msg);
                    self.record(r);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.burst();
                    deadline = Instant::now() + self.interval;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.close();
                    return;
                }
            }
        }
    }

    /// The last bursts: retried for up to `close_patience`; rows still unwritten then are an
    /// error naming how many.
    fn close(&mut self) -> Result<Flushed> {
        let started = Instant::now();
        loop {
            self.burst();
            if self.blocked.is_none() || started.elapsed() >= self.close_patience {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        match self.report()? {
            Flushed::Written => Ok(Flushed::Written),
            Flushed::Deferred(msg) => Err(Error::file(&self.path, format!("the last rows were not written: {msg}"))),
        }
    }

    /// Writes the buffered rows, then cuts every table after `step`; the file must be writable.
    fn truncate_after(&mut self, step: i64) -> Result<()> {
        self.burst();
        if let Some((_, why)) = &self.blocked {
            return Err(Error::file(&self.path, format!("cannot cut the rows after step {step}: {why}")));
        }
        let file = open_rw_retry(&self.path)?;
        let cut = truncate_after(&self.path, &file, step);
        let closed = file.close().map_err(|e| Error::file(&self.path, format!("cannot close: {e}")));
        cut.and(closed)
    }

    /// Adds one row to the buffer. A row whose shape disagrees with the buffered rows of its
    /// table is dropped with an error; one past the memory bound is refused and counted.
    fn buffer(&mut self, msg: Msg) -> Result<()> {
        let bytes = msg.bytes();
        if self.pending.bytes + bytes > MAX_PENDING_BYTES {
            self.refused += 1;
            return Ok(());
        }
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
            Msg::Flush(_) | Msg::Close(_) | Msg::TruncateAfter(..) => return Ok(()),
        }
        p.rows += 1;
        p.bytes += bytes;
        Ok(())
    }

    /// Opens the file, appends every buffered table, closes it. If the file cannot be opened,
    /// the rows stay buffered for the next burst; a table that fails to write is dropped (its
    /// error is kept for the next report), the others are still written.
    fn burst(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let path = self.path.clone();
        let file = match open_rw_retry(&path) {
            Ok(f) => f,
            Err(e) => {
                let since = self.blocked.as_ref().map_or_else(Instant::now, |(t, _)| *t);
                self.blocked = Some((since, e.to_string()));
                return;
            }
        };
        self.blocked = None;
        self.refused = 0;
        let pending = std::mem::take(&mut self.pending);
        for (name, t) in &pending.scalars {
            self.record(write_scalar(&path, &file, name, t));
        }
        for (name, t) in &pending.hists {
            self.record(write_hist(&path, &file, name, t));
        }
        if let Some(t) = &pending.samples {
            self.record(write_samples(&path, &file, t));
        }
        for (name, t) in &pending.evals {
            self.record(write_eval(&path, &file, name, t));
        }
        self.record(file.close().map_err(|e| Error::file(&path, format!("cannot close: {e}"))));
    }
}
