//! Column tables in HDF5 for files other than the run log (the sweep index, exports): one 1-D
//! dataset per column, all of one length, written in one go. h5py reads a column as
//! `f["col"][:]` (text as bytes; `.asstr()[:]` for `str`), pandas as
//! `pd.DataFrame({c: f[c][:] for c in f.attrs["columns"]})`.

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group};

use super::h5::{self, obj_err};
use crate::{Error, Result};

/// One column's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Int(Vec<i64>),
    /// Missing values are NaN.
    Float(Vec<f64>),
    /// Variable-length UTF-8; missing values are empty.
    Text(Vec<String>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes `columns` as datasets of `g` (a name with '/' creates groups on the way), and the
/// column names, in order, as the string-array attribute `columns` of `g`.
pub fn write_columns(file: &Path, g: &Group, columns: &[(String, Column)]) -> Result<()> {
    if let Some(((first, c0), (other, c))) = columns.first().and_then(|f| columns.iter().find(|c| c.1.len() != f.1.len()).map(|c| (f, c))) {
        return Err(Error::file(file, format!("internal: column {first} has {} rows, {other} has {}", c0.len(), c.len())));
    }
    for (name, col) in columns {
        let (parent, leaf) = match name.rsplit_once('/') {
            Some((dir, leaf)) => (h5::ensure_group(file, g, dir)?, leaf),
            None => (g.clone(), name.as_str()),
        };
        let obj = format!("{}/{name}", g.name());
        let created = match col {
            Column::Int(v) => parent.new_dataset_builder().with_data(v.as_slice()).create(leaf),
            Column::Float(v) => parent.new_dataset_builder().with_data(v.as_slice()).create(leaf),
            Column::Text(v) => {
                let v = to_h5_strings(file, &obj, v)?;
                parent.new_dataset_builder().with_data(v.as_slice()).create(leaf)
            }
        };
        created.map_err(|e| obj_err(file, &obj, format!("cannot write column: {e}")))?;
    }
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    set_str_list_attr(file, g, "columns", &names)
}

/// A string-array attribute (what h5py writes for a list of `str`).
pub fn set_str_list_attr(file: &Path, g: &Group, name: &str, values: &[String]) -> Result<()> {
    let obj = format!("{}@{name}", g.name());
    let v = to_h5_strings(file, &obj, values)?;
    g.new_attr_builder().with_data(v.as_slice()).create(name).map_err(|e| obj_err(file, &obj, e))?;
    Ok(())
}

/// A scalar string attribute.
pub fn set_str_attr(file: &Path, g: &Group, name: &str, value: &str) -> Result<()> {
    h5::set_str_attr(file, g, name, value)
}

/// A scalar numeric attribute.
pub fn set_num_attr<T: hdf5::H5Type>(file: &Path, g: &Group, name: &str, value: T) -> Result<()> {
    h5::set_int_attr(file, g, name, value)
}

fn to_h5_strings(file: &Path, obj: &str, values: &[String]) -> Result<Vec<VarLenUnicode>> {
    values.iter().map(|s| s.parse::<VarLenUnicode>().map_err(|e| obj_err(file, obj, format!("{s:?}: {e}")))).collect()
}

/// Writes a new HDF5 file at `path` atomically: `fill` writes a temporary sibling, which then
/// replaces `path` by a rename, so a reader sees the old file or the new one, never a half.
pub fn write_atomically(path: &Path, fill: impl FnOnce(&File) -> Result<()>) -> Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::file(&tmp, format!("cannot create: {e}")))?;
        let filled = fill(&file);
        let closed = file.close().map_err(|e| Error::file(&tmp, format!("cannot close: {e}")));
        filled.and(closed)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::file(path, format!("cannot replace with {}: {e}", tmp.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Reads a 1-D text column `name` of `g`.
pub fn read_text(file: &Path, g: &Group, name: &str) -> Result<Vec<String>> {
    let (ds, _) = h5::dataset_nd(file, g, name, 1)?;
    let v: Vec<VarLenUnicode> = super::h5::read_all(file, &ds)?;
    Ok(v.into_iter().map(|s| s.as_str().to_string()).collect())
}

/// Reads a 1-D numeric column `name` of `g` as `T` (HDF5 converts).
pub fn read_numbers<T: hdf5::H5Type>(file: &Path, g: &Group, name: &str) -> Result<Vec<T>> {
    h5::read_vec(file, g, name)
}

/// Reads the string-array attribute `name` of `g`.
pub fn read_str_list_attr(file: &Path, g: &Group, name: &str) -> Result<Vec<String>> {
    let obj = format!("{}@{name}", g.name());
    let attr = g.attr(name).map_err(|e| obj_err(file, &obj, format!("missing attribute ({e})")))?;
    let v: Vec<VarLenUnicode> = attr.read_raw().map_err(|e| obj_err(file, &obj, e))?;
    Ok(v.into_iter().map(|s| s.as_str().to_string()).collect())
}

/// Reads a scalar string attribute.
pub fn read_str_attr(file: &Path, g: &Group, name: &str) -> Result<String> {
    h5::get_str_attr(file, g, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.h5");
        let cols = vec![
            ("run".to_string(), Column::Text(vec!["a".into(), "b/c".into()])),
            ("step".to_string(), Column::Int(vec![1, 2])),
            ("tangent/l2/rho_mean".to_string(), Column::Float(vec![0.5, f64::NAN])),
        ];
        write_atomically(&p, |f| write_columns(&p, f, &cols)).unwrap();
        // A second write replaces the file (a new one, not an append).
        write_atomically(&p, |f| write_columns(&p, f, &cols)).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(read_str_list_attr(&p, &f, "columns").unwrap(), vec!["run", "step", "tangent/l2/rho_mean"]);
        assert_eq!(read_text(&p, &f, "run").unwrap(), vec!["a", "b/c"]);
        assert_eq!(read_numbers::<i64>(&p, &f, "step").unwrap(), vec![1, 2]);
        let g = f.group("tangent/l2").unwrap();
        let rho = read_numbers::<f64>(&p, &g, "rho_mean").unwrap();
        assert!(rho[0] == 0.5 && rho[1].is_nan());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        let bad = vec![("a".to_string(), Column::Int(vec![1])), ("b".to_string(), Column::Int(vec![]))];
        assert!(write_atomically(&p, |f| write_columns(&p, f, &bad)).is_err());
        assert_eq!(read_text(&p, &File::open(&p).unwrap(), "run").unwrap(), vec!["a", "b/c"], "a failed write keeps the old file");
    }
}
