//! Appending buffered rows to the run log's tables, and cutting rows after a checkpoint: what one
//! burst of the writer thread does inside the open file.

use std::path::Path;
use std::time::Duration;

use hdf5::{File, Group};

use super::h5::{self, obj_err};
use super::rows::{EvalRows, HistRows, SampleRows, ScalarRows};
use super::{EVAL_COLS, HIST_COLS, SCALAR_COLS, SCHEMA_VERSION};
use crate::error::{Error, Result};

/// Chunk sizes (rows) of the extendable datasets.
const CHUNK_1D: usize = 1024;
const CHUNK_HIST: usize = 64;
const CHUNK_SAMPLES: usize = 1;
/// A burst tries to open the file this many times before it leaves the rows for the next one.
const OPEN_TRIES: usize = 5;

/// The writer's way into the file: without HDF5's file lock. A reader in another process (h5py
/// with default flags, HDFView, `ayt view`) holds a shared lock for as long as it keeps the file
/// open, and with the lock the writer's next burst could not open the file at all; the writer
/// is the only writer, so it takes no lock and readers never stop a run.
pub(super) fn unlocked() -> hdf5::FileBuilder {
    let mut b = File::with_options();
    b.with_fapl(|fapl| fapl.file_locking(false));
    b
}

pub(super) fn open_rw_retry(path: &Path) -> Result<File> {
    let mut last = None;
    for i in 0..OPEN_TRIES {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(20 << i));
        }
        match unlocked().open_rw(path) {
            Ok(f) => return Ok(f),
            Err(e) => last = Some(e),
        }
    }
    let why = last.map(|e| e.to_string()).unwrap_or_default();
    Err(Error::file(path, format!("cannot open for writing: {why}")))
}

fn top_group(path: &Path, file: &File, name: &str) -> Result<Group> {
    h5::ensure_group(path, file, name)
}

pub(super) fn write_scalar(path: &Path, file: &File, name: &str, t: &ScalarRows) -> Result<()> {
    let g = h5::ensure_group(path, &top_group(path, file, "scalars")?, name)?;
    check_lengths(path, &g, &SCALAR_COLS)?;
    h5::check_columns(path, &g, &[("step", &[]), ("kimg", &[]), ("wall", &[]), ("value", &[])])?;
    h5::append_rows(path, &g, "step", &[], &t.step, CHUNK_1D)?;
    h5::append_rows(path, &g, "kimg", &[], &t.kimg, CHUNK_1D)?;
    h5::append_rows(path, &g, "wall", &[], &t.wall, CHUNK_1D)?;
    h5::append_rows(path, &g, "value", &[], &t.value, CHUNK_1D)
}

pub(super) fn write_hist(path: &Path, file: &File, name: &str, t: &HistRows) -> Result<()> {
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

pub(super) fn write_samples(path: &Path, file: &File, t: &SampleRows) -> Result<()> {
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

pub(super) fn write_eval(path: &Path, file: &File, name: &str, t: &EvalRows) -> Result<()> {
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
pub(super) fn truncate_after(path: &Path, file: &File, keep: i64) -> Result<()> {
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
