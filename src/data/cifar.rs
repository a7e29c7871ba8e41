//! CIFAR-10 as its authors distribute it (<https://www.cs.toronto.edu/~kriz/cifar.html>), either
//! archive, unpacked: `cifar-10-batches-bin/` (records of a label byte and 3072 pixel bytes,
//! channel-major) or `cifar-10-batches-py/` (Python pickles of a dict with `data`, a uint8
//! NumPy array `[10000, 3072]`, and `labels`; read as data by [`super::pickle`], never run).
//! The train split is `data_batch_1..5`, the test split `test_batch`; class names come from
//! `batches.meta.txt` / `batches.meta`, else CIFAR-10's own ten.

use std::path::{Path, PathBuf};

use super::pickle::{self, Value};
use super::ImageSet;
use crate::error::{Error, Result, WithPath};

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Which of the two archives a folder holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Binary,
    Python,
}

fn batch_names(test: bool) -> Vec<String> {
    if test {
        vec!["test_batch".into()]
    } else {
        (1..=5).map(|i| format!("data_batch_{i}")).collect()
    }
}

/// The batches folder under `path` (the folder itself, or its `cifar-10-batches-{bin,py}`).
fn locate(path: &Path) -> Result<(PathBuf, Format)> {
    for dir in [path.to_path_buf(), path.join("cifar-10-batches-bin"), path.join("cifar-10-batches-py")] {
        for name in ["data_batch_1", "test_batch"] {
            if dir.join(format!("{name}.bin")).is_file() {
                return Ok((dir, Format::Binary));
            }
            if dir.join(name).is_file() {
                return Ok((dir, Format::Python));
            }
        }
    }
    let hint = if path.extension().is_some_and(|e| e == "gz") { " (unpack it first: tar xzf FILE)" } else { "" };
    Err(Error::file(
        path,
        format!("no CIFAR-10 batches here: expected data_batch_1..5 and test_batch, as .bin records or Python pickles{hint}"),
    ))
}

/// Reads the train split (or, with `test`, the test split) of the CIFAR-10 folder at `path`.
pub fn import(path: &Path, test: bool) -> Result<ImageSet> {
    let (dir, format) = locate(path)?;
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for name in batch_names(test) {
        let file = dir.join(if format == Format::Binary { format!("{name}.bin") } else { name });
        if !file.is_file() {
            return Err(Error::file(&file, "missing: a CIFAR-10 batch of this split"));
        }
        let bytes = std::fs::read(&file).with_path(&file)?;
        let (chw, l) = match format {
            Format::Binary => binary_batch(&file, &bytes)?,
            Format::Python => python_batch(&file, &bytes)?,
        };
        images.extend(chw.chunks_exact(PIXELS).flat_map(to_hwc));
        labels.extend(l);
    }
    let split = if test { "test" } else { "train" };
    let source = format!("CIFAR-10 {split} ({})", dir.display());
    let n = labels.len();
    let mut set = ImageSet::new(images, (n, SIDE, SIDE, 3), Some(labels), source).with_path(&dir)?;
    set.class_names = Some(class_names(&dir, format)?);
    Ok(set)
}

/// One image from channel-major (`R..., G..., B...`) to pixel-major (`RGB RGB ...`).
fn to_hwc(chw: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let plane = SIDE * SIDE;
    (0..PIXELS).map(move |i| chw[(i % 3) * plane + i / 3])
}

fn label(file: &Path, record: usize, value: i64) -> Result<i64> {
    if (0..10).contains(&value) {
        Ok(value)
    } else {
        Err(Error::file(file, format!("record {record}: label {value} is not a CIFAR-10 class (0..9)")))
    }
}

/// Records of one label byte and 3072 pixel bytes.
fn binary_batch(file: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<i64>)> {
    const RECORD: usize = 1 + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        let whole = bytes.len() / RECORD;
        return Err(Error::file(file, format!("{} bytes: record {whole} is cut short (records are {RECORD} bytes)", bytes.len())));
    }
    let mut pixels = Vec::with_capacity(bytes.len() / RECORD * PIXELS);
    let mut labels = Vec::with_capacity(bytes.len() / RECORD);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        labels.push(label(file, i, rec[0] as i64)?);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

/// A pickled dict with `data` (uint8 `[N, 3072]`) and `labels` (N ints).
fn python_batch(file: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<i64>)> {
    let v = pickle::parse(bytes).map_err(|e| Error::file(file, e))?;
    let data = v.get("data").ok_or_else(|| Error::file(file, "no key \"data\": not a CIFAR-10 batch"))?;
    let (shape, pixels) = pickle::numpy_u8(data).map_err(|e| Error::file(file, format!("data: {e}")))?;
    let n = match shape.as_slice() {
        [n, PIXELS] => *n,
        _ => return Err(Error::file(file, format!("data: shape {shape:?}, expected [N, {PIXELS}]"))),
    };
    let Some(Value::List(list)) = v.get("labels") else {
        return Err(Error::file(file, "no list \"labels\": not a CIFAR-10 batch"));
    };
    if list.len() != n {
        return Err(Error::file(file, format!("labels: {} of them for {n} images", list.len())));
    }
    let labels = list
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.as_int()
                .ok_or_else(|| Error::file(file, format!("record {i}: label {l:?} is not an integer")))
                .and_then(|l| label(file, i, l))
        })
        .collect::<Result<Vec<i64>>>()?;
    Ok((pixels.to_vec(), labels))
}

fn class_names(dir: &Path, format: Format) -> Result<Vec<String>> {
    let names = match format {
        Format::Binary => {
            let file = dir.join("batches.meta.txt");
            if !file.is_file() {
                return Ok(CLASSES.map(String::from).to_vec());
            }
            let text = std::fs::read_to_string(&file).with_path(&file)?;
            text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect::<Vec<_>>()
        }
        Format::Python => {
            let file = dir.join("batches.meta");
            if !file.is_file() {
                return Ok(CLASSES.map(String::from).to_vec());
            }
            let v = pickle::parse(&std::fs::read(&file).with_path(&file)?).map_err(|e| Error::file(&file, e))?;
            let Some(Value::List(l)) = v.get("label_names") else {
                return Err(Error::file(&file, "no list \"label_names\""));
            };
            l.iter()
                .map(|s| s.as_text().map(String::from).ok_or_else(|| Error::file(&file, "label_names: a name that is not text")))
                .collect::<Result<_>>()?
        }
    };
    if names.len() != 10 {
        return Err(Error::file(dir, format!("the batches' meta file names {} classes, CIFAR-10 has 10", names.len())));
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
