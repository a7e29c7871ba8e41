//! A bundle of named tensors plus string attributes in one HDF5 file (trained feature networks,
//! evaluator networks): `/tensors/<name>` f32 datasets, root string attrs. Written to a temporary
//! file and renamed, so an existing bundle is never half-overwritten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::h5::{get_str_attr, obj_err, set_str_attr};
use super::wire::{Dec, Enc};
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

/// A bundle read whole: every root attribute (its string, or why it is not one) and tensor.
pub struct Bundle {
    path: PathBuf,
    attrs: HashMap<String, std::result::Result<String, String>>,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

/// Reads the bundle at `path` (through the HDF5 checker where it is on: see
/// [`sandbox`](super::sandbox)).
pub fn read(path: &Path) -> Result<Bundle> {
    match super::sandbox::read(super::sandbox::Kind::Bundle, path)? {
        Some(bytes) => Bundle::decode(path, &bytes),
        None => read_in_process(path),
    }
}

/// Reads the bundle at `path` in this process (the checker's read).
pub fn read_in_process(path: &Path) -> Result<Bundle> {
    let file = hdf5::File::open(path).map_err(|e| Error::file(path, format!("cannot open as HDF5 ({e})")))?;
    let g = file.group(GROUP).map_err(|_| obj_err(path, "/tensors", "missing group: not a tensor bundle"))?;
    let mut tensors = Vec::new();
    for name in g.member_names().map_err(|e| obj_err(path, "/tensors", e))? {
        let ds = g.dataset(&name).map_err(|e| obj_err(path, &format!("/tensors/{name}"), e))?;
        let shape = ds.shape();
        let data = super::h5::read_all::<f32>(path, &ds)?;
        tensors.push((name, shape, data));
    }
    let mut attrs = HashMap::new();
    for name in super::h5::attr_names(path, &file)? {
        let value = get_str_attr(path, &file, &name).map_err(|e| e.to_string());
        attrs.insert(name, value);
    }
    Ok(Bundle { path: path.to_path_buf(), attrs, tensors })
}

impl Bundle {
    /// The checker's answer (`wire.rs`).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u64(self.attrs.len() as u64);
        for (name, value) in &self.attrs {
            match value {
                Ok(v) => e.str(name).u64(0).str(v),
                Err(why) => e.str(name).u64(1).str(why),
            };
        }
        e.u64(self.tensors.len() as u64);
        for (name, shape, data) in &self.tensors {
            e.str(name).usizes(shape).f32s(data);
        }
        e.finish()
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Bundle> {
        let mut d = Dec::new(bytes);
        let mut attrs = HashMap::new();
        for _ in 0..d.u64()? {
            let (name, ok, value) = (d.str()?, d.u64()? == 0, d.str()?);
            attrs.insert(name, if ok { Ok(value) } else { Err(value) });
        }
        let mut tensors = Vec::new();
        for _ in 0..d.u64()? {
            tensors.push((d.str()?, d.usizes()?, d.f32s()?));
        }
        Ok(Bundle { path: path.to_path_buf(), attrs, tensors })
    }

    /// The string attribute `name`, or an error naming the file and the attribute.
    pub fn attr(&self, name: &str) -> Result<&str> {
        match self.attrs.get(name) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(Error::msg(e.clone())),
            None => Err(obj_err(&self.path, &format!("/@{name}"), "missing attribute")),
        }
    }

    /// The tensors, on `device`.
    pub fn tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (name, shape, data) in &self.tensors {
            out.insert(name.clone(), Tensor::from_slice(data, shape.as_slice(), device)?);
        }
        Ok(out)
    }
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
        let b = read(&p).unwrap();
        let t = b.tensors(&Device::Cpu).unwrap();
        assert_eq!(t["layer.weight"].to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        assert_eq!(b.attr("kind").unwrap(), "phi");
        let e = b.attr("nope").unwrap_err().to_string();
        assert!(e.contains("b.h5") && e.contains("nope"), "{e}");
        let back = Bundle::decode(&p, &b.encode()).unwrap();
        assert_eq!(back.attr("kind").unwrap(), "phi");
        assert_eq!(back.tensors(&Device::Cpu).unwrap()["layer.weight"].to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        assert_eq!(back.attr("nope").unwrap_err().to_string(), e, "the checker's answer errs as the file does");
        std::fs::write(dir.path().join("junk.h5"), b"junk").unwrap();
        let e = read(&dir.path().join("junk.h5")).err().expect("junk is refused").to_string();
        assert!(e.contains("junk.h5"), "{e}");
    }
}
