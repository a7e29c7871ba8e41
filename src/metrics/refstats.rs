//! Reference statistics (mean and covariance of an extractor's features over `n` data images)
//! cached per data set, extractor and `n` (method.md 8): `<home>/cache/refstats-<extractor>-
//! <dataset sha>-<extractor sha>-n<n>.h5` with `mu [d]`, `sigma [d, d]` and the protocol as
//! attributes. A file that does not match (other key, wrong shape, unreadable) is rebuilt, with a
//! log line naming it and the problem: the cache is derived data, never a reason to stop.

use std::io::Read;
use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, DVector};
use sha2::{Digest, Sha256};

use super::fd::Gaussian;
use crate::paths::Paths;
use crate::progress::LogFn;
use crate::store::cache::{self, Array};
use crate::Result;

/// What a cache file must have been computed from.
#[derive(Clone, Debug)]
pub struct RefKey {
    pub dataset_sha256: String,
    /// Extractor name (`evalnet`, `inception_v3`) and the SHA-256 of its weights file.
    pub extractor: String,
    pub extractor_sha256: String,
    pub n: usize,
    /// How the reference images were drawn (e.g. "1000 images of mnist (seed 777)").
    pub reference: String,
}

impl RefKey {
    fn attrs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("dataset_sha256", self.dataset_sha256.clone()),
            ("extractor", self.extractor.clone()),
            ("extractor_sha256", self.extractor_sha256.clone()),
            ("n", self.n.to_string()),
            ("reference", self.reference.clone()),
        ]
    }

    pub fn path(&self, paths: &Paths) -> PathBuf {
        let short = |s: &str| s[..12.min(s.len())].to_string();
        paths.cache().join(format!(
            "refstats-{}-{}-{}-n{}.h5",
            self.extractor,
            short(&self.dataset_sha256),
            short(&self.extractor_sha256),
            self.n
        ))
    }
}

/// SHA-256 (hex) of a file's bytes, read in blocks.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| crate::Error::file(path, format!("cannot read: {e}")))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf).map_err(|e| crate::Error::file(path, format!("cannot read: {e}")))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn read(path: &Path, key: &RefKey) -> Result<Gaussian> {
    let r = cache::Reader::open(path)?;
    r.expect_attrs(&key.attrs())?;
    let (shape, mu) = r.array::<f64>("mu", &[None])?;
    let d = shape[0];
    let (_, sigma) = r.array::<f64>("sigma", &[Some(d), Some(d)])?;
    Ok(Gaussian { mean: DVector::from_vec(mu), cov: DMatrix::from_row_slice(d, d, &sigma), n: key.n })
}

pub fn write(path: &Path, key: &RefKey, g: &Gaussian) -> Result<()> {
    let d = g.mean.len();
    let sigma: Vec<f64> = g.cov.transpose().iter().copied().collect(); // row-major
    let mu: Vec<f64> = g.mean.iter().copied().collect();
    cache::write(path, &[Array::F64("mu", vec![d], &mu), Array::F64("sigma", vec![d, d], &sigma)], &key.attrs())
}

/// The cached statistics for `key`, or `compute()` stored for next time.
pub fn load_or_compute(paths: &Paths, key: &RefKey, compute: impl FnOnce() -> Result<Gaussian>, log: LogFn) -> Result<Gaussian> {
    let path = key.path(paths);
    if path.exists() {
        match read(&path, key) {
            Ok(g) => {
                log(&format!("eval: reference statistics of {} from the cache {}", key.extractor, path.display()));
                return Ok(g);
            }
            Err(e) => log(&format!("eval: rebuilding the reference-statistics cache: {e}")),
        }
    }
    let g = compute()?;
    write(&path, key, &g)?;
    log(&format!("eval: reference statistics of {} cached in {}", key.extractor, path.display()));
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn key(n: usize) -> RefKey {
        RefKey {
            dataset_sha256: "ab".repeat(32),
            extractor: "evalnet".into(),
            extractor_sha256: "cd".repeat(32),
            n,
            reference: format!("{n} images of disks (seed 777)"),
        }
    }

    fn gaussian() -> Gaussian {
        Gaussian { mean: DVector::from_vec(vec![1.0, -2.0]), cov: DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]), n: 10 }
    }

    #[test]
    fn computed_once_then_read_back_and_rebuilt_when_wrong_shaped() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths { home: home.path().to_path_buf() };
        let lines = RefCell::new(Vec::<String>::new());
        let log = |l: &str| lines.borrow_mut().push(l.to_string());
        let calls = RefCell::new(0);
        let compute = || {
            *calls.borrow_mut() += 1;
            Ok(gaussian())
        };
        let a = load_or_compute(&paths, &key(10), compute, &log).unwrap();
        let b = load_or_compute(&paths, &key(10), compute, &log).unwrap();
        assert_eq!(*calls.borrow(), 1, "the second call reads the cache");
        assert_eq!((&a.mean, &a.cov), (&b.mean, &b.cov));
        assert_eq!(b.cov[(0, 1)], 0.5);
        assert!(key(10).path(&paths).starts_with(home.path().join("cache")));
        // another n is another file
        load_or_compute(&paths, &key(20), compute, &log).unwrap();
        assert_eq!(*calls.borrow(), 2);

        // a wrong-shaped file in its place is rebuilt, with a line naming the file and the array
        let path = key(10).path(&paths);
        let attrs = key(10).attrs();
        cache::write(&path, &[Array::F64("mu", vec![2], &[0.0, 0.0]), Array::F64("sigma", vec![3], &[0.0; 3])], &attrs).unwrap();
        let e = read(&path, &key(10)).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()) && e.contains("/sigma"), "{e}");
        let c = load_or_compute(&paths, &key(10), compute, &log).unwrap();
        assert_eq!(*calls.borrow(), 3);
        assert_eq!(c.mean, gaussian().mean);
        let rebuilt = lines.borrow().iter().any(|l| l.contains("rebuilding") && l.contains(&path.display().to_string()));
        assert!(rebuilt, "{:?}", lines.borrow());
        assert_eq!(read(&path, &key(10)).unwrap().cov, gaussian().cov, "the rebuilt file is good");
    }
}
