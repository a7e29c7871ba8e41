//! Feature caches under `<home>/cache/` (reference statistics, local-PCA neighbours and bases):
//! small HDF5 files of named f64/u64 arrays plus string attributes that identify what they were
//! computed from. Written to a temporary file and renamed (never half-written); read with every
//! attribute and array shape checked, each error naming the file and the object.

use std::path::Path;

use hdf5::{File, H5Type};

use super::h5::{get_str_attr, obj_err, set_str_attr};
use crate::error::{Error, Result};

/// One array to store: name, shape, row-major values.
pub enum Array<'a> {
    F64(&'a str, Vec<usize>, &'a [f64]),
    F32(&'a str, Vec<usize>, &'a [f32]),
    U64(&'a str, Vec<usize>, &'a [u64]),
}

pub fn write(path: &Path, arrays: &[Array], attrs: &[(&str, String)]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("h5.tmp{}", std::process::id()));
    let written = (|| -> Result<()> {
        let file = File::create(&tmp).map_err(|e| Error::file(&tmp, e.to_string()))?;
        for a in arrays {
            match a {
                Array::F64(name, shape, v) => put(&tmp, &file, name, shape, v)?,
                Array::F32(name, shape, v) => put(&tmp, &file, name, shape, v)?,
                Array::U64(name, shape, v) => put(&tmp, &file, name, shape, v)?,
            }
        }
        for (k, v) in attrs {
            set_str_attr(&tmp, &file, k, v)?;
        }
        file.close().map_err(|e| Error::file(&tmp, e.to_string()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn put<T: H5Type + Clone>(path: &Path, file: &File, name: &str, shape: &[usize], v: &[T]) -> Result<()> {
    let arr = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.to_vec())
        .map_err(|e| obj_err(path, &format!("/{name}"), format!("{} values for shape {shape:?} ({e})", v.len())))?;
    file.new_dataset_builder().with_data(&arr).create(name).map_err(|e| obj_err(path, &format!("/{name}"), e))?;
    Ok(())
}

/// An open cache file.
pub struct Reader {
    path: std::path::PathBuf,
    file: File,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader> {
        let file = File::open(path).map_err(|e| Error::file(path, format!("cannot open as HDF5 ({e})")))?;
        Ok(Reader { path: path.to_path_buf(), file })
    }

    pub fn attr(&self, name: &str) -> Result<String> {
        get_str_attr(&self.path, &self.file, name)
    }

    /// Each `(name, value)` attribute must be present and equal.
    pub fn expect_attrs(&self, want: &[(&str, String)]) -> Result<()> {
        for (k, v) in want {
            let got = self.attr(k)?;
            if &got != v {
                return Err(obj_err(&self.path, &format!("/@{k}"), format!("is {got:?}, expected {v:?}")));
            }
        }
        Ok(())
    }

    /// The array `name` as `T`; `shape` entries of `None` accept any extent.
    pub fn array<T: H5Type>(&self, name: &str, shape: &[Option<usize>]) -> Result<(Vec<usize>, Vec<T>)> {
        let obj = format!("/{name}");
        let ds = self.file.dataset(name).map_err(|e| obj_err(&self.path, &obj, format!("missing dataset ({e})")))?;
        let got = ds.shape();
        let fits = got.len() == shape.len() && got.iter().zip(shape).all(|(g, w)| w.is_none_or(|w| w == *g));
        if !fits {
            let want: Vec<String> = shape.iter().map(|w| w.map(|v| v.to_string()).unwrap_or_else(|| "*".into())).collect();
            return Err(obj_err(&self.path, &obj, format!("shape {got:?}, expected [{}]", want.join(", "))));
        }
        let v = super::h5::read_all::<T>(&self.path, &ds).map_err(|e| obj_err(&self.path, &obj, e))?;
        Ok((got, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_file_and_object() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.h5");
        write(&p, &[Array::F64("mu", vec![2], &[1.0, 2.0]), Array::U64("idx", vec![1, 2], &[3, 4])], &[("key", "a".into())]).unwrap();
        let r = Reader::open(&p).unwrap();
        r.expect_attrs(&[("key", "a".into())]).unwrap();
        assert_eq!(r.array::<f64>("mu", &[Some(2)]).unwrap().1, vec![1.0, 2.0]);
        assert_eq!(r.array::<u64>("idx", &[None, Some(2)]).unwrap(), (vec![1, 2], vec![3, 4]));
        let e = r.array::<f64>("mu", &[Some(3)]).unwrap_err().to_string();
        assert!(e.contains("c.h5") && e.contains("/mu") && e.contains("[2]"), "{e}");
        let e = r.expect_attrs(&[("key", "b".into())]).unwrap_err().to_string();
        assert!(e.contains("c.h5") && e.contains("key"), "{e}");
        assert!(r.array::<f64>("nope", &[None]).unwrap_err().to_string().contains("/nope"));
    }
}
