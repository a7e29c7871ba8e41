//! MNIST, embedded in the binary (the gzipped IDX files in `datasets/mnist/`, about 11 MB), so
//! no download is ever needed. See `datasets/mnist/PROVENANCE.md` for source and licence.

use std::path::Path;

use super::idx::mnist_from_bytes;
use super::store::DatasetStore;
use super::ImageSet;
use crate::error::Result;

pub const TRAIN_IMAGES: &[u8] = include_bytes!("../../datasets/mnist/train-images-idx3-ubyte.gz");
pub const TRAIN_LABELS: &[u8] = include_bytes!("../../datasets/mnist/train-labels-idx1-ubyte.gz");
pub const TEST_IMAGES: &[u8] = include_bytes!("../../datasets/mnist/t10k-images-idx3-ubyte.gz");
pub const TEST_LABELS: &[u8] = include_bytes!("../../datasets/mnist/t10k-labels-idx1-ubyte.gz");
/// `sha256sum` output for the four files above.
pub const SHA256SUMS: &str = include_str!("../../datasets/mnist/SHA256SUMS");

/// Store name of the 60,000 training images.
pub const TRAIN_NAME: &str = "mnist";
/// Store name of the 10,000 test images.
pub const TEST_NAME: &str = "mnist-test";

/// The embedded files as `(file name, bytes)`.
pub fn embedded_files() -> [(&'static str, &'static [u8]); 4] {
    [
        ("t10k-images-idx3-ubyte.gz", TEST_IMAGES),
        ("t10k-labels-idx1-ubyte.gz", TEST_LABELS),
        ("train-images-idx3-ubyte.gz", TRAIN_IMAGES),
        ("train-labels-idx1-ubyte.gz", TRAIN_LABELS),
    ]
}

fn decode(images: &[u8], iname: &str, labels: &[u8], lname: &str, what: &str) -> Result<ImageSet> {
    let ip = Path::new("<embedded>").join(iname);
    let lp = Path::new("<embedded>").join(lname);
    mnist_from_bytes(images, &ip, Some((labels, &lp)), format!("MNIST {what} (embedded; LeCun, Cortes, Burges; CC BY-SA 3.0)"))
}

/// The 60,000 MNIST training images with labels, decoded from the embedded files.
pub fn train() -> Result<ImageSet> {
    decode(TRAIN_IMAGES, "train-images-idx3-ubyte.gz", TRAIN_LABELS, "train-labels-idx1-ubyte.gz", "train")
}

/// The 10,000 MNIST test images with labels, decoded from the embedded files.
pub fn test() -> Result<ImageSet> {
    decode(TEST_IMAGES, "t10k-images-idx3-ubyte.gz", TEST_LABELS, "t10k-labels-idx1-ubyte.gz", "test")
}

/// Import "mnist" (train) and "mnist-test" into `store` unless they are already there.
pub fn ensure_mnist(store: &DatasetStore) -> Result<()> {
    if !store.exists(TRAIN_NAME) {
        store.save(TRAIN_NAME, &train()?)?;
    }
    if !store.exists(TEST_NAME) {
        store.save(TEST_NAME, &test()?)?;
    }
    Ok(())
}

/// Imports the embedded MNIST first when `name` is one of its two data sets (a no-op otherwise),
/// so every command can name "mnist" without an import step.
pub fn ensure_if_builtin(store: &DatasetStore, name: &str) -> Result<()> {
    if name == TRAIN_NAME || name == TEST_NAME {
        ensure_mnist(store)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn embedded_bytes_match_sha256sums() {
        let mut listed = 0;
        for line in SHA256SUMS.lines().filter(|l| !l.trim().is_empty()) {
            let mut parts = line.split_whitespace();
            let (hash, name) = (parts.next().unwrap(), parts.next().unwrap());
            let name = name.trim_start_matches('*');
            let (_, bytes) = embedded_files().into_iter().find(|(n, _)| *n == name).unwrap();
            assert_eq!(hex::encode(Sha256::digest(bytes)), hash, "{name}");
            listed += 1;
        }
        assert_eq!(listed, 4);
    }

    #[test]
    fn test_split_decodes_and_imports() {
        let set = test().unwrap();
        assert_eq!((set.n, set.h, set.w, set.c), (10000, 28, 28, 1));
        let counts = set.label_counts();
        assert_eq!(counts.len(), 10);
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 10000);
        assert_eq!(counts[0], (0, 980)); // published: 980 zeros in the test set
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path());
        store.save(TEST_NAME, &set).unwrap();
        let back = store.load(TEST_NAME).unwrap();
        assert_eq!(back.sha256(), set.sha256());
        assert_eq!(back.labels, set.labels);
    }

    #[test]
    fn ensure_mnist_imports_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = DatasetStore::new(dir.path().join("datasets"));
        ensure_mnist(&store).unwrap();
        let info = store.info(TRAIN_NAME).unwrap();
        assert_eq!((info.n, info.h, info.w, info.c), (60000, 28, 28, 1));
        assert_eq!(info.label_counts.unwrap().len(), 10);
        assert_eq!(store.info(TEST_NAME).unwrap().n, 10000);
        let modified = std::fs::metadata(store.path(TRAIN_NAME)).unwrap().modified().unwrap();
        ensure_mnist(&store).unwrap(); // present: not rewritten
        let again = std::fs::metadata(store.path(TRAIN_NAME)).unwrap().modified().unwrap();
        assert_eq!(modified, again);
    }
}
