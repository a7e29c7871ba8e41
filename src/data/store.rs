//! The dataset store: one HDF5 file per data set, `<root>/<name>.h5`, readable by h5py.
//!
//! Layout (format version [`FORMAT_VERSION`]):
//! - `/images`: uint8 `[N, H, W, C]`, chunked and deflate-compressed when the library has zlib;
//! - `/labels`: int64 `[N]`, when labels are known;
//! - root attributes `source` (string), `sha256` (string, hex SHA-256 of the image bytes),
//!   `format_version` (int64) and, when known, `class_names` (string, a JSON array).
//!
//! Saving writes a temporary file in the same folder and renames it over the target, so a failed
//! save never destroys an existing data set. Loading validates shape, dtype, label count and
//! checksum, and every error names the file and the dataset or attribute concerned.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hdf5::types::VarLenUnicode;
use serde::Serialize;

pub use super::store_read::FORMAT_VERSION;
use super::store_read::{self as read, load_file};
use super::{label_counts, ImageSet};
use crate::error::{Error, Result, WithPath};
use crate::image_io;

/// A summary of one stored data set (without the pixels).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatasetInfo {
    pub name: String,
    pub path: PathBuf,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    /// dtype of `/images` ("uint8").
    pub dtype: String,
    pub label_counts: Option<Vec<(i64, usize)>>,
    pub sha256: String,
    pub source: String,
    pub class_names: Option<Vec<String>>,
}

/// A folder of `<name>.h5` data sets.
#[derive(Clone, Debug)]
pub struct DatasetStore {
    pub root: PathBuf,
}

impl DatasetStore {
    pub fn new(root: impl Into<PathBuf>) -> DatasetStore {
        DatasetStore { root: root.into() }
    }

    /// `<root>/<name>.h5`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.h5"))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    /// Write `set` as `<root>/<name>.h5` (atomically: temp file, then rename). Creates `root`.
    pub fn save(&self, name: &str, set: &ImageSet) -> Result<PathBuf> {
        check_name(name)?;
        std::fs::create_dir_all(&self.root).with_path(&self.root)?;
        let path = self.path(name);
        // unique per process and call, so concurrent saves never share a temp file
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.root.join(format!(".{name}.h5.tmp-{}-{k}", std::process::id()));
        match write_file(&tmp, set) {
            Ok(()) => {}
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::file(&path, format!("renaming {} into place: {e}", tmp.display())));
        }
        Ok(path)
    }

    /// Load `<root>/<name>.h5`.
    pub fn load(&self, name: &str) -> Result<ImageSet> {
        check_name(name)?;
        self.load_file(self.path(name))
    }

    /// Load any data set file in this layout (e.g. one written by h5py).
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<ImageSet> {
        load_file(path.as_ref())
    }

    /// Every `*.h5` file in `root` by name, sorted, with its summary or why it cannot be read
    /// (one damaged file does not hide the others); empty if `root` does not exist.
    pub fn list(&self) -> Result<Vec<(String, Result<DatasetInfo>)>> {
        if !self.root.is_dir() {
            return Ok(Vec::new());
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).with_path(&self.root)? {
            let p = entry.with_path(&self.root)?.path();
            let (Some(stem), Some(ext)) = (p.file_stem(), p.extension()) else {
                continue;
            };
            let stem = stem.to_string_lossy().to_string();
            if ext == "h5" && !stem.starts_with('.') && p.is_file() {
                names.push(stem);
            }
        }
        names.sort();
        Ok(names.into_iter().map(|n| (n.clone(), self.info(&n))).collect())
    }

    /// Summary of `<root>/<name>.h5` (reads the labels, not the pixels, unless the file has no
    /// `sha256` attribute).
    pub fn info(&self, name: &str) -> Result<DatasetInfo> {
        check_name(name)?;
        let path = self.path(name);
        let r = read::header(&path)?;
        let sha256 = match &r.sha256 {
            Some(s) => s.clone(),
            None => {
                let set = load_file(&path)?;
                set.sha256()
            }
        };
        Ok(DatasetInfo {
            name: name.to_string(),
            path: path.clone(),
            n: r.n,
            h: r.h,
            w: r.w,
            c: r.c,
            dtype: "uint8".to_string(),
            label_counts: r.labels.as_deref().map(label_counts),
            sha256,
            source: r.source,
            class_names: r.class_names,
        })
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) || name.chars().any(|c| c.is_control()) {
        return Err(Error::msg(format!("invalid data set name {name:?}: use a plain file name without '/' or a leading '.'")));
    }
    Ok(())
}

fn write_str_attr(file: &hdf5::File, path: &Path, name: &str, value: &str) -> Result<()> {
    let v = VarLenUnicode::from_str(value).map_err(|e| Error::file(path, format!("attribute {name}: {e}")))?;
    file.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)
        .and_then(|a| a.as_writer().write_scalar(&v))
        .map_err(|e| Error::file(path, format!("attribute {name}: {e}")))
}

fn write_file(path: &Path, set: &ImageSet) -> Result<()> {
    let shape = (set.n, set.h, set.w, set.c);
    let arr = ndarray::ArrayView4::from_shape(shape, &set.images)
        .map_err(|e| Error::file(path, format!("images {}x{}x{}x{}: {e}", set.n, set.h, set.w, set.c)))?;
    let file = hdf5::File::create(path).with_path(path)?;
    let per = set.h * set.w * set.c;
    let builder = file.new_dataset_builder().with_data(arr);
    let created = if set.n > 0 && per > 0 && hdf5::filters::deflate_available() {
        // chunks of about 256 KiB, whole images
        let chunk_n = (256 * 1024 / per).clamp(1, set.n);
        builder.chunk((chunk_n, set.h, set.w, set.c)).deflate(4).create("images")
    } else {
        builder.create("images")
    };
    created.map_err(|e| Error::file(path, format!("dataset /images: {e}")))?;
    if let Some(labels) = &set.labels {
        file.new_dataset_builder()
            .with_data(labels.as_slice())
            .create("labels")
            .map_err(|e| Error::file(path, format!("dataset /labels: {e}")))?;
    }
    write_str_attr(&file, path, "source", &set.source)?;
    write_str_attr(&file, path, "sha256", &set.sha256())?;
    if let Some(names) = &set.class_names {
        let json = serde_json::to_string(names).with_path(path)?;
        write_str_attr(&file, path, "class_names", &json)?;
    }
    file.new_attr::<i64>()
        .shape(())
        .create("format_version")
        .and_then(|a| a.as_writer().write_scalar(&FORMAT_VERSION))
        .map_err(|e| Error::file(path, format!("attribute format_version: {e}")))?;
    file.close().with_path(path)?;
    Ok(())
}

/// Write the first `count` images of `set` as one grid PNG (for `ayt data show`).
/// Grey and RGB sets are supported; cells are separated by 2 mid-grey pixels.
pub fn preview_png(set: &ImageSet, path: impl AsRef<Path>, count: usize) -> Result<()> {
    let path = path.as_ref();
    let count = count.min(set.n);
    if count == 0 {
        return Err(Error::file(path, "preview: no images to draw"));
    }
    let cols = (count as f64).sqrt().ceil() as usize;
    let (w, h, px) = image_io::grid(&set.images, count, set.h, set.w, set.c, cols, 2);
    image_io::write_png(path, w, h, set.c, &px)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::store_read::read_str_attr;
    use hdf5::types::{IntSize, TypeDescriptor};

    fn sample(labels: bool) -> ImageSet {
        let px: Vec<u8> = (0..5 * 3 * 4 * 2).map(|i| (i * 3) as u8).collect();
        let l = labels.then(|| vec![0, 1, 1, 7, 0]);
        ImageSet::new(px, (5, 3, 4, 2), l, "unit test").unwrap()
    }

    #[test]
    fn save_load_round_trip_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path().join("datasets"));
        assert!(store.list().unwrap().is_empty());
        let mut a = sample(true);
        a.class_names = Some(vec!["zero".into(), "one".into()]);
        let b = sample(false);
        let pa = store.save("a", &a).unwrap();
        assert_eq!(pa, store.path("a"));
        store.save("b", &b).unwrap();
        assert!(store.exists("a") && !store.exists("c"));
        assert_eq!(store.load("a").unwrap(), a);
        assert_eq!(store.load("b").unwrap(), b);
        // overwrite
        store.save("b", &a).unwrap();
        assert_eq!(store.load("b").unwrap(), a);

        std::fs::write(store.path("broken"), b"not hdf5").unwrap();
        let list = store.list().unwrap();
        let names: Vec<_> = list.iter().map(|(n, i)| (n.as_str(), i.as_ref().map(|i| i.name.as_str()).ok())).collect();
        assert_eq!(names, [("a", Some("a")), ("b", Some("b")), ("broken", None)], "a broken file is listed, not fatal");
        let info = store.info("a").unwrap();
        assert_eq!((info.n, info.h, info.w, info.c), (5, 3, 4, 2));
        assert_eq!(info.dtype, "uint8");
        assert_eq!(info.sha256, a.sha256());
        assert_eq!(info.source, "unit test");
        assert_eq!(info.label_counts, Some(vec![(0, 2), (1, 2), (7, 1)]));
        assert_eq!(info.class_names, a.class_names);
        assert!(store.save("../x", &a).is_err());
    }

    #[test]
    fn attrs_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path());
        let a = sample(true);
        let p = store.save("a", &a).unwrap();
        let f = hdf5::File::open(&p).unwrap();
        let v: i64 = f.attr("format_version").unwrap().read_scalar().unwrap();
        assert_eq!(v, FORMAT_VERSION);
        assert_eq!(read_str_attr(&f, &p, "sha256").unwrap(), Some(a.sha256()));
        assert_eq!(f.dataset("images").unwrap().shape(), vec![5, 3, 4, 2]);
        let l = f.dataset("labels").unwrap();
        assert_eq!(l.dtype().unwrap().to_descriptor().unwrap(), TypeDescriptor::Integer(IntSize::U8));
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path());
        // wrong rank
        let p = dir.path().join("rank.h5");
        {
            let f = hdf5::File::create(&p).unwrap();
            let arr = ndarray::Array3::<u8>::zeros((2, 3, 4));
            f.new_dataset_builder().with_data(&arr).create("images").unwrap();
        }
        let e = store.load("rank").unwrap_err().to_string();
        assert!(e.contains("rank.h5"), "{e}");
        assert!(e.contains("dataset /images: expected uint8 [N,H,W,C], found uint8 [2, 3, 4]"), "{e}");
        // wrong dtype
        let p = dir.path().join("dtype.h5");
        {
            let f = hdf5::File::create(&p).unwrap();
            let arr = ndarray::Array4::<f32>::zeros((2, 3, 4, 1));
            f.new_dataset_builder().with_data(&arr).create("images").unwrap();
        }
        let e = store.load_file(&p).unwrap_err().to_string();
        assert!(e.contains("dtype.h5") && e.contains("found float32"), "{e}");
        // missing /images
        let p = dir.path().join("empty.h5");
        hdf5::File::create(&p).unwrap();
        let e = store.load("empty").unwrap_err().to_string();
        assert!(e.contains("empty.h5") && e.contains("/images: missing"), "{e}");
        // labels length mismatch
        let p = dir.path().join("labels.h5");
        {
            let f = hdf5::File::create(&p).unwrap();
            let arr = ndarray::Array4::<u8>::zeros((2, 3, 4, 1));
            f.new_dataset_builder().with_data(&arr).create("images").unwrap();
            f.new_dataset_builder().with_data(&[1i64, 2, 3]).create("labels").unwrap();
        }
        let e = store.info("labels").unwrap_err().to_string();
        assert!(e.contains("labels.h5") && e.contains("dataset /labels: expected int64 [2]"), "{e}");
        // not HDF5 at all
        std::fs::write(dir.path().join("junk.h5"), b"junk").unwrap();
        let e = store.load("junk").unwrap_err().to_string();
        assert!(e.contains("junk.h5"), "{e}");
        // missing file
        let e = store.load("nope").unwrap_err().to_string();
        assert!(e.contains("nope.h5"), "{e}");
    }

    #[test]
    fn failed_save_keeps_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path());
        let a = sample(true);
        store.save("a", &a).unwrap();
        let mut bad = sample(true);
        bad.images.pop(); // shape no longer matches: write fails
        assert!(store.save("a", &bad).is_err());
        assert_eq!(store.load("a").unwrap(), a);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn preview_writes_png() {
        let dir = tempfile::tempdir().unwrap();
        let set = ImageSet::new(vec![200; 5 * 4 * 4], (5, 4, 4, 1), None, "t").unwrap();
        let p = dir.path().join("p.png");
        preview_png(&set, &p, 4).unwrap();
        let (w, h, c, _) = image_io::read_png(&p).unwrap();
        assert_eq!((w, h, c), (2 * 4 + 3 * 2, 2 * 4 + 3 * 2, 1));
    }

    /// The checker's answer for a data set rebuilds the same set, header and pixels, and a
    /// checksum that does not match the pixels is still refused on this side.
    #[test]
    fn the_checkers_answer_rebuilds_the_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path());
        let mut set = ImageSet::new((0..60).collect(), (5, 3, 4, 1), Some(vec![0, 1, 1, 2, 0]), "unit test").unwrap();
        set.class_names = Some(vec!["a".into(), "b".into(), "c".into()]);
        let p = store.save("s", &set).unwrap();
        let answer = read::read_in_process(crate::store::sandbox::Kind::Dataset, &p).unwrap();
        let mut d = crate::store::wire::Dec::new(&answer);
        let (header, images) = (read::Header::decode(&mut d).unwrap(), d.bytes().unwrap().to_vec());
        assert_eq!(read::assemble(&p, header, images.clone()).unwrap(), set);
        let h = read::Header::decode(&mut crate::store::wire::Dec::new(
            &read::read_in_process(crate::store::sandbox::Kind::DatasetHeader, &p).unwrap(),
        ))
        .unwrap();
        assert_eq!((h.n, h.h, h.w, h.c, h.labels.as_deref()), (5, 3, 4, 1, Some(&[0, 1, 1, 2, 0][..])));
        let mut wrong = images;
        wrong[0] ^= 1;
        let e = read::assemble(&p, h, wrong).unwrap_err().to_string();
        assert!(e.contains("s.h5") && e.contains("sha256"), "{e}");
        assert!(read::Header::decode(&mut crate::store::wire::Dec::new(&answer[..20])).is_err());
    }
}
