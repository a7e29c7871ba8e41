//! A bundle of named tensors plus string attributes in one HDF5 file (trained feature networks,
//! evaluator networks): `/tensors/<name>` f32 datasets, root string attrs. Written to a temporary
//! file and renamed, so an existing bundle is never half-overwritten.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::h5::{get_str_attr, obj_err, set_str_attr};
use crate::error::{Error, Result};

const GROUP: &str = "tensors";

pub fn save(path: &Path, tensors: &[(String, Tensor)], attrs: &[(&str, String)]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("h5.tmp{}", std::process::id()));
    let written = (|| -> Result<()> {
        let file = hdf5::File::create(&tmp).map_err(|e| Error::file(&tmp, e.to_string()))?;
        let g = file.create_group(GROUP).map_err(|e| obj_err(&tmp, "/tensors", e))?;
        for (name, t) in tensors {
            let shape = t.dims().to_vec();
            let data = t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
            let arr = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), data).map_err(|e| Error::msg(e.to_string()))?;
            g.new_dataset_builder().with_data(&arr).create(name.as_str()).map_err(|e| obj_err(&tmp, &format!("/tensors/{name}"), e))?;
        }
        for (k, v) in attrs {
            set_str_attr(&tmp, &file, k, v)?;
        }
        file.close().map_err(|e| Error::file(&tmp, e.to_string()))?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The tensors of a bundle, on `device`.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let file = hdf5::File::open(path).map_err(|e| Error::file(path, format!("cannot open as HDF5 ({e})")))?;
    let g = file.group(GROUP).map_err(|_| obj_err(path, "/tensors", "missing group: not a tensor bundle"))?;
    let mut out = HashMap::new();
    for name in g.member_names().map_err(|e| obj_err(path, "/tensors", e))? {
        let ds = g.dataset(&name).map_err(|e| obj_err(path, &format!("/tensors/{name}"), e))?;
        let shape = ds.shape();
        let data = super::h5::read_all::<f32>(path, &ds)?;
        out.insert(name, Tensor::from_vec(data, shape, device)?);
    }
    Ok(out)
}

pub fn attr(path: &Path, name: &str) -> Result<String> {
    let file = hdf5::File::open(path).map_err(|e| Error::file(path, format!("cannot open as HDF5 ({e})")))?;
    get_str_attr(path, &file, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.h5");
        let a = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        save(&p, &[("layer.weight".into(), a.clone())], &[("kind", "phi".into())]).unwrap();
        let t = load_tensors(&p, &Device::Cpu).unwrap();
        assert_eq!(t["layer.weight"].to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        assert_eq!(attr(&p, "kind").unwrap(), "phi");
        let e = attr(&p, "nope").unwrap_err().to_string();
        assert!(e.contains("b.h5") && e.contains("nope"), "{e}");
        std::fs::write(dir.path().join("junk.h5"), b"junk").unwrap();
        let e = load_tensors(&dir.path().join("junk.h5"), &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("junk.h5"), "{e}");
    }
}
