//! Cache of the probe's local-PCA tangent spaces (method.md 9) on image data sets: for each
//! probe image, the indices of its `K` nearest training images and the `m` principal directions
//! `U` of those neighbours. Finding neighbours scans the whole training set per probe image, so
//! re-probing a run (or `ayt probe`) reads them from `<home>/cache/localpca-<dataset sha>-
//! seed<probe seed>-n<n>-k<K>-m<m>.h5` instead. The probe images' checksum is stored and checked:
//! a file that does not match (or cannot be read) is recomputed and rewritten.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::paths::Paths;
use crate::store::cache::{self, Array};
use crate::Result;

/// What the neighbours and bases were computed from.
#[derive(Clone, Debug)]
pub struct PcaKey {
    pub dataset_sha256: String,
    pub probe_seed: u64,
    pub k: usize,
    pub m: usize,
}

/// Per probe image: neighbour indices (nearest first) and an orthonormal basis (up to `m` rows of length `d`).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalPca {
    pub neighbours: Vec<Vec<usize>>,
    pub bases: Vec<Vec<Vec<f32>>>,
}

impl PcaKey {
    pub fn path(&self, paths: &Paths, n: usize) -> PathBuf {
        let ds = &self.dataset_sha256[..12.min(self.dataset_sha256.len())];
        paths.cache().join(format!("localpca-{ds}-seed{}-n{n}-k{}-m{}.h5", self.probe_seed, self.k, self.m))
    }

    fn attrs(&self, images_sha256: &str) -> Vec<(&'static str, String)> {
        vec![
            ("dataset_sha256", self.dataset_sha256.clone()),
            ("probe_seed", self.probe_seed.to_string()),
            ("k", self.k.to_string()),
            ("m", self.m.to_string()),
            ("probe_images_sha256", images_sha256.to_string()),
        ]
    }
}

fn images_sha256(images: &[f32]) -> String {
    let mut h = Sha256::new();
    for v in images {
        h.update(v.to_le_bytes());
    }
    hex::encode(h.finalize())
}

fn read(path: &std::path::Path, key: &PcaKey, sha: &str, n: usize, d: usize) -> Result<LocalPca> {
    let r = cache::Reader::open(path)?;
    r.expect_attrs(&key.attrs(sha))?;
    let (shape, idx) = r.array::<u64>("neighbours", &[Some(n), None])?;
    let k = shape[1];
    let (_, rank) = r.array::<u64>("rank", &[Some(n)])?;
    let (_, flat) = r.array::<f32>("bases", &[Some(n), Some(key.m), Some(d)])?;
    let neighbours = idx.chunks(k.max(1)).take(n).map(|row| row.iter().map(|&i| i as usize).collect()).collect();
    let bases = (0..n)
        .map(|i| (0..(rank[i] as usize).min(key.m)).map(|j| flat[(i * key.m + j) * d..(i * key.m + j + 1) * d].to_vec()).collect())
        .collect();
    Ok(LocalPca { neighbours, bases })
}

fn write(path: &std::path::Path, key: &PcaKey, sha: &str, pca: &LocalPca, d: usize) -> Result<()> {
    let n = pca.neighbours.len();
    let k = pca.neighbours.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut idx = vec![0u64; n * k];
    for (i, row) in pca.neighbours.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            idx[i * k + j] = v as u64;
        }
    }
    let mut flat = vec![0f32; n * key.m * d];
    for (i, basis) in pca.bases.iter().enumerate() {
        for (j, u) in basis.iter().take(key.m).enumerate() {
            flat[(i * key.m + j) * d..(i * key.m + j + 1) * d].copy_from_slice(u);
        }
    }
    let rank: Vec<u64> = pca.bases.iter().map(|b| b.len().min(key.m) as u64).collect();
    cache::write(
        path,
        &[Array::U64("neighbours", vec![n, k], &idx), Array::U64("rank", vec![n], &rank), Array::F32("bases", vec![n, key.m, d], &flat)],
        &key.attrs(sha),
    )
}

/// Local PCA of the `n` probe images (`[n, d]` rows of `probe`) from the cache, or `compute()`d
/// and cached. Returns whether the cache was used.
pub fn load_or_compute(
    paths: &Paths,
    key: &PcaKey,
    probe: &[f32],
    d: usize,
    compute: impl FnOnce() -> LocalPca,
) -> Result<(LocalPca, bool)> {
    let n = probe.len() / d.max(1);
    let sha = images_sha256(probe);
    let path = key.path(paths, n);
    if path.exists() {
        if let Ok(pca) = read(&path, key, &sha, n, d) {
            return Ok((pca, true));
        }
    }
    let pca = compute();
    write(&path, key, &sha, &pca, d)?;
    Ok((pca, false))
}

/// Neighbours and bases by brute force: the `k` nearest rows of `data` to each probe row.
pub fn compute(data: &[f32], probe: &[f32], d: usize, k: usize, m: usize) -> LocalPca {
    let mut out = LocalPca { neighbours: Vec::new(), bases: Vec::new() };
    for q in probe.chunks(d) {
        let idx = super::local_pca::nearest(data, d, q, k);
        let rows: Vec<f32> = idx.iter().flat_map(|&i| data[i * d..(i + 1) * d].iter().copied()).collect();
        out.bases.push(super::local_pca::principal_basis(&rows, d, m));
        out.neighbours.push(idx);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn the_second_call_reads_the_cache_and_returns_the_same_bases() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths { home: home.path().to_path_buf() };
        let (d, n_data) = (12, 80);
        let mut rng = crate::rng::stream(4, "pca-cache-test");
        let data: Vec<f32> = (0..n_data * d).map(|_| rng.random::<f32>()).collect();
        let probe = data[..3 * d].to_vec();
        let key = PcaKey { dataset_sha256: "ef".repeat(32), probe_seed: 9, k: 10, m: 4 };
        let (first, cached) = load_or_compute(&paths, &key, &probe, d, || compute(&data, &probe, d, 10, 4)).unwrap();
        assert!(!cached);
        assert!(key.path(&paths, 3).exists());
        assert_eq!(first.neighbours[0][0], 0, "a probe image is its own nearest neighbour");
        assert_eq!((first.neighbours[2].len(), first.bases[2].len()), (10, 4));
        let (second, cached) = load_or_compute(&paths, &key, &probe, d, || panic!("must come from the cache")).unwrap();
        assert!(cached);
        assert_eq!(second, first);
        // other probe images (same key) are recomputed, not served stale
        let other = data[3 * d..6 * d].to_vec();
        let (third, cached) = load_or_compute(&paths, &key, &other, d, || compute(&data, &other, d, 10, 4)).unwrap();
        assert!(!cached);
        assert_eq!(third.neighbours[0][0], 3);
        // another K is another file
        let key8 = PcaKey { k: 8, ..key.clone() };
        assert_ne!(key8.path(&paths, 3), key.path(&paths, 3));
    }
}
