//! Small HDF5 helpers shared by the writer and the reader: checked dataset access, appending
//! rows to extendable tables, truncating tables, string/int attributes, nested groups.
//!
//! Every error names the file and the HDF5 object path.

use std::path::Path;

use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Extent, Group, H5Type, Hyperslab, Location, Selection, SimpleExtents, SliceOrIndex};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::error::{Error, Result};

/// Error about the HDF5 object at `obj` (e.g. `/scalars/loss/value`) in file `file`.
pub(crate) fn obj_err(file: &Path, obj: &str, msg: impl std::fmt::Display) -> Error {
    Error::file(file, format!("{obj}: {msg}"))
}

/// Checks a user-given table name such as `loss` or `tangent/mfd/rho`: non-empty '/'-separated
/// segments, none of them `.`/`..` or a column name of the table kind.
pub(crate) fn check_name(kind: &str, name: &str, columns: &[&str]) -> Result<()> {
    let bad = |why: &str| Err(Error::msg(format!("{kind} name {name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    for seg in name.split('/') {
        if seg.is_empty() {
            return bad("empty path segment (leading, trailing or doubled '/')");
        }
        if seg == "." || seg == ".." {
            return bad("'.' and '..' are not allowed");
        }
        if columns.contains(&seg) {
            return bad(&format!("segment {seg:?} is reserved for a column"));
        }
    }
    Ok(())
}

/// Opens `parent/name`, creating it and any intermediate groups (`a/b/c`).
pub(crate) fn ensure_group(file: &Path, parent: &Group, name: &str) -> Result<Group> {
    let mut g = parent.clone();
    for seg in name.split('/') {
        g = if g.link_exists(seg) {
            g.group(seg).map_err(|e| obj_err(file, &format!("{}/{seg}", g.name()), e))?
        } else {
            g.create_group(seg).map_err(|e| obj_err(file, &format!("{}/{seg}", g.name()), e))?
        };
    }
    Ok(g)
}

/// Opens the group at absolute path `path`, or `None` if it does not exist.
pub(crate) fn opt_group(file: &Path, root: &Group, path: &str) -> Result<Option<Group>> {
    let mut g = root.clone();
    for seg in path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()) {
        if !g.link_exists(seg) {
            return Ok(None);
        }
        g = g.group(seg).map_err(|e| obj_err(file, path, format!("not a group ({e})")))?;
    }
    Ok(Some(g))
}

/// Opens dataset `name` of group `g` and checks its rank; returns it with its shape.
pub(crate) fn dataset_nd(file: &Path, g: &Group, name: &str, ndim: usize) -> Result<(Dataset, Vec<usize>)> {
    let obj = format!("{}/{name}", g.name());
    if !g.link_exists(name) {
        return Err(obj_err(file, &obj, "missing dataset"));
    }
    let ds = g.dataset(name).map_err(|e| obj_err(file, &obj, format!("not a dataset ({e})")))?;
    let shape = ds.shape();
    if shape.len() != ndim {
        return Err(obj_err(file, &obj, format!("expected a {ndim}-D dataset, found shape {shape:?}")));
    }
    Ok((ds, shape))
}

/// The most one dataset read may bring into memory.
pub const MAX_READ_BYTES: u128 = 64 << 30;
/// How much larger than its stored bytes a dataset may be (gzip of zeros reaches ~1000x).
const MAX_EXPANSION: u128 = 4096;

/// Refuses, before any buffer is made, a dataset whose declared size no file of ours holds: more
/// than [`MAX_READ_BYTES`], or far more than the bytes stored for it (a corrupt or sparse file;
/// reading it would allocate what its header claims).
pub(crate) fn check_read_size<T: H5Type>(file: &Path, ds: &Dataset) -> Result<()> {
    // Multiplied here, checked in the order every consumer multiplies (`Dataset::size`, candle's
    // shapes): a corrupt shape such as [2^40, 2^40, 0] overflows there (a panic in debug builds,
    // a wrapped and so passing size in release) even though it holds no element.
    let shape = ds.shape();
    let Some(elems) = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        return Err(obj_err(file, &ds.name(), format!("declares shape {shape:?}, whose size overflows: corrupt")));
    };
    let bytes = elems as u128 * std::mem::size_of::<T>() as u128;
    let stored = ds.storage_size() as u128;
    if bytes > MAX_READ_BYTES || bytes > stored.max(64) * MAX_EXPANSION {
        return Err(obj_err(file, &ds.name(), format!("declares {bytes} bytes of data but the file stores {stored}: corrupt")));
    }
    Ok(())
}

/// Reads a whole dataset as `T` (HDF5 converts numeric types), naming it on error.
pub(crate) fn read_dyn<T: H5Type>(file: &Path, ds: &Dataset) -> Result<ArrayD<T>> {
    check_read_size::<T>(file, ds)?;
    ds.read_dyn::<T>().map_err(|e| obj_err(file, &ds.name(), e))
}

/// Reads a whole dataset into a `Vec` (bounded by [`check_read_size`]), naming it on error.
pub(crate) fn read_all<T: H5Type>(file: &Path, ds: &Dataset) -> Result<Vec<T>> {
    check_read_size::<T>(file, ds)?;
    ds.read_raw::<T>().map_err(|e| obj_err(file, &ds.name(), e))
}

/// Reads a 1-D dataset `name` of `g` into a `Vec`.
pub(crate) fn read_vec<T: H5Type>(file: &Path, g: &Group, name: &str) -> Result<Vec<T>> {
    let (ds, _) = dataset_nd(file, g, name, 1)?;
    read_all(file, &ds)
}

/// Selection of rows `rows` (all of every other axis) for a dataset of shape `shape`.
fn row_selection(rows: std::ops::Range<usize>, shape: &[usize]) -> Selection {
    let mut dims: Vec<SliceOrIndex> = vec![rows.into()];
    dims.extend(shape.iter().skip(1).map(|&d| SliceOrIndex::from(0..d)));
    Hyperslab::from(dims).into()
}

/// Appends `data` (`rows` rows of shape `row_shape`, row-major) to dataset `name` of `g`,
/// creating it as an extendable chunked dataset `[0.., row_shape...]` if it does not exist.
pub(crate) fn append_rows<T: H5Type + Clone>(
    file: &Path,
    g: &Group,
    name: &str,
    row_shape: &[usize],
    data: &[T],
    chunk_rows: usize,
) -> Result<()> {
    let obj = format!("{}/{name}", g.name());
    let row_len: usize = row_shape.iter().product();
    let rows = data.len().checked_div(row_len).unwrap_or(0);
    if rows * row_len != data.len() {
        return Err(obj_err(file, &obj, "internal: data length is not a whole number of rows"));
    }
    if !g.link_exists(name) {
        let mut ext = vec![Extent::resizable(0)];
        ext.extend(row_shape.iter().map(|&d| Extent::fixed(d)));
        let mut chunk = vec![chunk_rows.max(1)];
        chunk.extend(row_shape.iter().map(|&d| d.max(1)));
        g.new_dataset::<T>()
            .chunk(chunk)
            .shape(SimpleExtents::from_vec(ext))
            .create(name)
            .map_err(|e| obj_err(file, &obj, format!("cannot create dataset: {e}")))?;
    }
    let (ds, shape) = dataset_nd(file, g, name, 1 + row_shape.len())?;
    if shape[1..] != *row_shape {
        return Err(obj_err(file, &obj, format!("row shape {:?} does not match the new rows' shape {row_shape:?}", &shape[1..])));
    }
    if rows == 0 {
        return Ok(());
    }
    let n0 = shape[0];
    let mut new_shape = shape.clone();
    new_shape[0] = n0 + rows;
    ds.resize(new_shape.clone()).map_err(|e| obj_err(file, &obj, format!("cannot extend (not a chunked, extendable dataset?): {e}")))?;
    let mut arr_shape = vec![rows];
    arr_shape.extend_from_slice(row_shape);
    let arr = ArrayD::from_shape_vec(IxDyn(&arr_shape), data.to_vec()).map_err(|e| obj_err(file, &obj, e))?;
    ds.write_slice(&arr, row_selection(n0..n0 + rows, &new_shape)).map_err(|e| obj_err(file, &obj, format!("cannot write rows: {e}")))
}

/// Before appending to a table: checks every existing column `(name, row_shape)` of `g` (rank,
/// row shape, extendable first axis), so that a bad column is reported before any column of
/// the table is extended.
pub(crate) fn check_columns(file: &Path, g: &Group, cols: &[(&str, &[usize])]) -> Result<()> {
    for &(name, row_shape) in cols {
        if !g.link_exists(name) {
            continue;
        }
        let obj = format!("{}/{name}", g.name());
        let (ds, shape) = dataset_nd(file, g, name, 1 + row_shape.len())?;
        if shape[1..] != *row_shape {
            return Err(obj_err(file, &obj, format!("row shape {:?} does not match the new rows' shape {row_shape:?}", &shape[1..])));
        }
        if !ds.is_resizable() {
            return Err(obj_err(file, &obj, "not extendable (needs a chunked dataset with an unlimited first axis)"));
        }
    }
    Ok(())
}

/// Keeps only rows `keep` (sorted indices) of dataset `ds`, reading it as `T`.
fn compact_as<T: H5Type + Clone>(file: &Path, ds: &Dataset, keep: &[usize]) -> Result<()> {
    let arr = read_dyn::<T>(file, ds)?;
    let kept = arr.select(Axis(0), keep);
    ds.resize(kept.shape().to_vec()).map_err(|e| obj_err(file, &ds.name(), e))?;
    if !keep.is_empty() {
        ds.write(&kept).map_err(|e| obj_err(file, &ds.name(), e))?;
    }
    Ok(())
}

/// Keeps only rows `keep` (sorted indices) of every dataset directly in table group `g`.
/// When `keep` is a prefix `0..m`, datasets are only shrunk (no rewrite).
pub(crate) fn keep_rows(file: &Path, g: &Group, keep: &[usize]) -> Result<()> {
    let prefix = keep.iter().enumerate().all(|(i, &k)| i == k);
    let dsets = g.datasets().map_err(|e| obj_err(file, &g.name(), e))?;
    for ds in dsets {
        let obj = ds.name();
        let mut shape = ds.shape();
        if shape.is_empty() {
            return Err(obj_err(file, &obj, "expected a table column, found a scalar dataset"));
        }
        if prefix {
            if shape[0] != keep.len() {
                shape[0] = keep.len();
                ds.resize(shape).map_err(|e| obj_err(file, &obj, format!("cannot shrink: {e}")))?;
            }
            continue;
        }
        let desc = ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| obj_err(file, &obj, e))?;
        match desc {
            TypeDescriptor::Unsigned(hdf5::types::IntSize::U1) => compact_as::<u8>(file, &ds, keep)?,
            TypeDescriptor::Unsigned(_) => compact_as::<u64>(file, &ds, keep)?,
            TypeDescriptor::Integer(_) | TypeDescriptor::Boolean => compact_as::<i64>(file, &ds, keep)?,
            TypeDescriptor::Float(_) => compact_as::<f64>(file, &ds, keep)?,
            other => return Err(obj_err(file, &obj, format!("cannot truncate a column of type {other}"))),
        }
    }
    Ok(())
}

/// Length of dimension 0 of every dataset directly in `g`; their minimum (0 if none).
pub(crate) fn min_rows(file: &Path, g: &Group) -> Result<usize> {
    let dsets = g.datasets().map_err(|e| obj_err(file, &g.name(), e))?;
    Ok(dsets.iter().map(|d| d.shape().first().copied().unwrap_or(0)).min().unwrap_or(0))
}

/// Table groups below `g` (a table is a group holding a `step` dataset), as names relative
/// to `g` joined with '/', sorted. Recurses into every subgroup (a table may also have sub-tables).
pub(crate) fn tables(file: &Path, g: &Group) -> Result<Vec<String>> {
    fn walk(file: &Path, g: &Group, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let names = g.member_names().map_err(|e| obj_err(file, &g.name(), e))?;
        for n in names {
            let Ok(sub) = g.group(&n) else { continue }; // datasets are not tables
            let rel = if prefix.is_empty() { n.clone() } else { format!("{prefix}/{n}") };
            if sub.link_exists("step") {
                out.push(rel.clone());
            }
            walk(file, &sub, &rel, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(file, g, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// The names of `loc`'s attributes, sorted. Opened one by one by index: hdf5-metno's attribute
/// iteration reads each attribute's character set into a Rust enum, and a damaged file's
/// out-of-range value made it try to allocate 7e18 bytes (found by ayt-fuzz).
pub(crate) fn attr_names(file: &Path, loc: &Location) -> Result<Vec<String>> {
    const MAX_ATTRS: usize = 1 << 16;
    let obj = loc.name();
    let count = loc.loc_info().map_err(|e| obj_err(file, &obj, e))?.num_attrs;
    if count > MAX_ATTRS {
        return Err(obj_err(file, &obj, format!("claims {count} attributes: corrupt")));
    }
    let mut names = (0..count as u64)
        .map(|i| loc.attr_by_index(hdf5::IndexType::Name, hdf5::IterationOrder::Increasing, i).map(|a| a.name()))
        .collect::<hdf5::Result<Vec<String>>>()
        .map_err(|e| obj_err(file, &obj, format!("attributes: {e}")))?;
    names.sort();
    Ok(names)
}

/// Writes a scalar string attribute (variable-length UTF-8, what h5py writes for `str`).
pub(crate) fn set_str_attr(file: &Path, loc: &Location, name: &str, value: &str) -> Result<()> {
    let obj = format!("{}@{name}", loc.name());
    let v: VarLenUnicode = value.parse().map_err(|e| obj_err(file, &obj, format!("{e}")))?;
    if attr_names(file, loc).map(|n| n.iter().any(|a| a == name)).unwrap_or(false) {
        loc.delete_attr(name).map_err(|e| obj_err(file, &obj, e))?;
    }
    let attr = loc.new_attr::<VarLenUnicode>().shape(()).create(name).map_err(|e| obj_err(file, &obj, e))?;
    attr.write_scalar(&v).map_err(|e| obj_err(file, &obj, e))
}

/// Writes a scalar integer attribute.
pub(crate) fn set_int_attr<T: H5Type>(file: &Path, loc: &Location, name: &str, value: T) -> Result<()> {
    let obj = format!("{}@{name}", loc.name());
    let attr = loc.new_attr::<T>().shape(()).create(name).map_err(|e| obj_err(file, &obj, e))?;
    attr.write_scalar(&value).map_err(|e| obj_err(file, &obj, e))
}

/// Reads a scalar string attribute (variable-length UTF-8 or ASCII).
pub(crate) fn get_str_attr(file: &Path, loc: &Location, name: &str) -> Result<String> {
    let obj = format!("{}@{name}", loc.name());
    let attr = loc.attr(name).map_err(|e| obj_err(file, &obj, format!("missing attribute ({e})")))?;
    if let Ok(s) = attr.read_scalar::<VarLenUnicode>() {
        return Ok(s.as_str().to_string());
    }
    attr.read_scalar::<VarLenAscii>()
        .map(|s| s.as_str().to_string())
        .map_err(|e| obj_err(file, &obj, format!("expected a scalar string attribute ({e})")))
}

/// Reads a scalar integer attribute.
pub(crate) fn get_int_attr<T: H5Type>(file: &Path, loc: &Location, name: &str) -> Result<T> {
    let obj = format!("{}@{name}", loc.name());
    let attr = loc.attr(name).map_err(|e| obj_err(file, &obj, format!("missing attribute ({e})")))?;
    attr.read_scalar::<T>().map_err(|e| obj_err(file, &obj, format!("expected a scalar integer attribute ({e})")))
}
