//! What `ayt fid` compares: a folder of PNG images (searched recursively, sorted by path, as
//! pytorch-fid and EDM list them), a data set (a store name or an `.h5` file), or FID
//! statistics in an `.npz` file.

use std::path::{Path, PathBuf};

use crate::data::store::DatasetStore;
use crate::data::ImageSet;
use crate::paths::Paths;
use crate::{Error, Result};

pub enum Source {
    Folder(PathBuf),
    Dataset(String, PathBuf),
    Stats(PathBuf),
}

impl Source {
    /// `arg` as a user gives it: an `.npz` file, a folder, an `.h5` file, or a data set name.
    pub fn parse(arg: &str, paths: &Paths) -> Result<Source> {
        let path = Path::new(arg);
        if arg.ends_with(".npz") {
            return Ok(Source::Stats(path.to_path_buf()));
        }
        if path.is_dir() {
            return Ok(Source::Folder(path.to_path_buf()));
        }
        if arg.ends_with(".h5") {
            return Ok(Source::Dataset(arg.to_string(), path.to_path_buf()));
        }
        let store = DatasetStore::new(paths.datasets());
        if store.exists(arg) {
            return Ok(Source::Dataset(arg.to_string(), store.path(arg)));
        }
        Err(Error::msg(format!(
            "{arg}: not a folder of PNG images, an .npz of FID statistics, an .h5 data set, or a data set in {} (ayt data list)",
            paths.datasets().display()
        )))
    }

    pub fn name(&self) -> String {
        match self {
            Source::Folder(p) | Source::Stats(p) => p.display().to_string(),
            Source::Dataset(name, _) => name.clone(),
        }
    }

    /// The images of a folder or data set.
    pub fn images(&self) -> Result<Images> {
        match self {
            Source::Folder(dir) => Ok(Images::Files { files: png_files(dir)?, shape: None }),
            Source::Dataset(_, path) => Ok(Images::Set(DatasetStore::new(".").load_file(path)?)),
            Source::Stats(path) => Err(Error::file(path, "holds statistics, not images")),
        }
    }
}

/// Every `*.png` under `dir`, sorted by path.
fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::file(&d, format!("cannot list: {e}")))? {
            let p = entry.map_err(|e| Error::file(&d, format!("cannot list: {e}")))?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::file(dir, "holds no .png images"));
    }
    out.sort();
    Ok(out)
}

/// Images read a chunk at a time, as f32 NCHW in [-1, 1] (the store's `v / 127.5 - 1`).
pub enum Images {
    Set(ImageSet),
    /// PNG files, decoded as they are needed; every one must have the first one's shape.
    Files {
        files: Vec<PathBuf>,
        shape: Option<(usize, usize, usize)>,
    },
}

impl Images {
    pub fn len(&self) -> usize {
        match self {
            Images::Set(s) => s.n,
            Images::Files { files, .. } => files.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images `start..start + len` and their `(c, h, w)`.
    pub fn chunk(&mut self, start: usize, len: usize) -> Result<(Vec<f32>, (usize, usize, usize))> {
        match self {
            Images::Set(s) => {
                let idx: Vec<usize> = (start..start + len).collect();
                Ok((s.batch_f32_nchw(&idx), (s.c, s.h, s.w)))
            }
            Images::Files { files, shape } => {
                let mut pixels = Vec::new();
                for path in &files[start..start + len] {
                    let (w, h, c, px) = crate::image_io::read_png(path)?;
                    let first = *shape.get_or_insert((c, h, w));
                    if first != (c, h, w) {
                        let (fc, fh, fw) = first;
                        return Err(Error::file(path, format!("{h}x{w}x{c}, but the first image is {fh}x{fw}x{fc}")));
                    }
                    pixels.extend(px);
                }
                let (c, h, w) = shape.unwrap_or((3, 0, 0));
                // the store's conversion, NHWC bytes to NCHW floats
                let set = ImageSet::new(pixels, (len, h, w, c), None, "")?;
                Ok((set.batch_f32_nchw(&(0..len).collect::<Vec<_>>()), (c, h, w)))
            }
        }
    }
}
