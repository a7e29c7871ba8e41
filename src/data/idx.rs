//! IDX files (the MNIST format): big-endian header `00 00 <type> <ndims>`, `ndims` u32 sizes,
//! then the elements. Only unsigned bytes (type 0x08) are supported: images are `0x00000803`
//! (3 dims), labels `0x00000801` (1 dim). Gzip input (magic `1f 8b`) is decompressed first.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ImageSet;
use crate::error::{Error, Result, WithPath};

/// Magic of an unsigned-byte IDX file with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an unsigned-byte IDX file with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A parsed IDX file: its dimensions and its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// The most an IDX file may hold (EMNIST's largest split is 0.55 GB): a header asking for more,
/// or a gzip stream inflating past what its header declares, is refused before it is inflated.
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// Decompress gzip data (detected by the magic `1f 8b`); other data is returned as is. The
/// output is bounded by the IDX header inside it (and [`MAX_IDX_BYTES`]), so a gzip bomb stops
/// one byte past the size it declares. `path` only names the source in errors.
pub fn maybe_gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let gz = |e: std::io::Error| Error::file(path, format!("gzip: {e}"));
    let mut dec = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut dec).take(4).read_to_end(&mut out).map_err(gz)?;
    if out.len() == 4 {
        let ndims = out[3] as u64;
        (&mut dec).take(4 * ndims).read_to_end(&mut out).map_err(gz)?;
        let declared = out[4..]
            .chunks(4)
            .filter(|c| c.len() == 4)
            .try_fold(1u64, |a, c| a.checked_mul(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64));
        match declared.filter(|n| *n <= MAX_IDX_BYTES) {
            // one byte more than declared, so trailing data is still seen (and refused)
            Some(n) => (&mut dec).take(n + 1).read_to_end(&mut out).map_err(gz)?,
            None => {
                return Err(Error::file(
                    path,
                    format!("the IDX header declares more than the {} GiB an IDX file may hold", MAX_IDX_BYTES >> 30),
                ))
            }
        };
    }
    Ok(out)
}

/// Parse an IDX file (gzip or raw) from bytes, expecting the magic `expect_magic`.
/// `path` only names the source in errors.
pub fn parse_idx(bytes: &[u8], expect_magic: u32, path: &Path) -> Result<IdxArray> {
    let raw = maybe_gunzip(bytes, path)?;
    let kind = match expect_magic {
        IMAGES_MAGIC => "image",
        LABELS_MAGIC => "label",
        _ => "IDX",
    };
    if raw.len() < 4 {
        return Err(Error::file(path, format!("truncated: {} bytes, too short for an IDX header", raw.len())));
    }
    let magic = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if magic != expect_magic {
        return Err(Error::file(path, format!("wrong magic 0x{magic:08x}: an IDX {kind} file starts with 0x{expect_magic:08x}")));
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if raw.len() < header {
        return Err(Error::file(path, format!("truncated: header of {ndims} dimensions needs {header} bytes, found {}", raw.len())));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]) as usize
        })
        .collect();
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let want = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::file(path, format!("header says {shape}: too large")))?;
    let found = raw.len() - header;
    if found < want {
        return Err(Error::file(path, format!("truncated: header says {shape} = {want} bytes of {kind} data, found {found}")));
    }
    if found > want {
        return Err(Error::file(
            path,
            format!("{} trailing bytes: header says {shape} = {want} bytes of {kind} data, found {found}", found - want),
        ));
    }
    Ok(IdxArray { dims, data: raw[header..].to_vec() })
}

/// Parse an IDX image file: `(n, h, w, pixels)`.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let a = parse_idx(bytes, IMAGES_MAGIC, path)?;
    Ok((a.dims[0], a.dims[1], a.dims[2], a.data))
}

/// Parse an IDX label file.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    Ok(parse_idx(bytes, LABELS_MAGIC, path)?.data)
}

/// An image set from the bytes of an IDX image file and (optionally) an IDX label file.
/// The paths only name the sources in errors.
pub fn mnist_from_bytes(images: &[u8], images_path: &Path, labels: Option<(&[u8], &Path)>, source: impl Into<String>) -> Result<ImageSet> {
    let (n, h, w, px) = parse_images(images, images_path)?;
    let labels = match labels {
        None => None,
        Some((bytes, lpath)) => {
            let l = parse_labels(bytes, lpath)?;
            if l.len() != n {
                return Err(Error::file(lpath, format!("{} labels, but the image file {} has {n} images", l.len(), images_path.display())));
            }
            Some(l.into_iter().map(i64::from).collect())
        }
    };
    ImageSet::new(px, (n, h, w, 1), labels, source).with_path(images_path)
}

/// Read an IDX file (gzip or raw) from disk, expecting the magic `expect_magic`.
pub fn read_idx(path: impl AsRef<Path>, expect_magic: u32) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_path(path)?;
    parse_idx(&bytes, expect_magic, path)
}

/// Read an MNIST-style pair of IDX files (images and labels, gzip or raw).
pub fn read_mnist_pair(images_path: impl AsRef<Path>, labels_path: impl AsRef<Path>) -> Result<ImageSet> {
    let (ip, lp) = (images_path.as_ref(), labels_path.as_ref());
    let ib = std::fs::read(ip).with_path(ip)?;
    let lb = std::fs::read(lp).with_path(lp)?;
    mnist_from_bytes(&ib, ip, Some((&lb, lp)), format!("IDX {}", ip.display()))
}

/// The MNIST files of a folder with the canonical names (`train-...` or, with `test`,
/// `t10k-...`), each raw or gzipped: `(images, labels)`.
pub fn mnist_files_in(dir: &Path, test: bool) -> Result<(PathBuf, PathBuf)> {
    let prefix = if test { "t10k" } else { "train" };
    Ok((find_in(dir, &format!("{prefix}-images-idx3-ubyte"))?, find_in(dir, &format!("{prefix}-labels-idx1-ubyte"))?))
}

/// `name` or `name.gz` in `dir`.
fn find_in(dir: &Path, name: &str) -> Result<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|c| c.exists())
        .ok_or_else(|| Error::file(dir, format!("no {name} or {name}.gz here")))
}

/// Encode an unsigned-byte IDX file (the inverse of [`parse_idx`], raw, no gzip).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_bomb_is_refused_before_it_inflates() {
        let path = Path::new("bomb.gz");
        // a header for one 28x28 image, then 256 MiB of zeros (compressed to ~1.2 MB)
        let mut raw = encode_idx(&[1, 28, 28], &[0; 784]);
        raw.resize(raw.len() + (256 << 20), 0);
        let bomb = gzip(&raw);
        assert!(bomb.len() < 2 << 20, "{}", bomb.len());
        let started = std::time::Instant::now();
        let out = maybe_gunzip(&bomb, path).unwrap();
        assert_eq!(out.len(), 16 + 784 + 1, "inflated one byte past the declared size, no further");
        let e = parse_idx(&bomb, IMAGES_MAGIC, path).unwrap_err().to_string();
        assert!(e.contains("bomb.gz") && e.contains("trailing bytes"), "{e}");
        assert!(started.elapsed().as_secs_f64() < 5.0);
        // a header that declares 2^64 bytes
        let huge = gzip(&[0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2]);
        let e = parse_idx(&huge, IMAGES_MAGIC, path).unwrap_err().to_string();
        assert!(e.contains("bomb.gz") && e.contains("more than the 4 GiB"), "{e}");
    }
    use std::io::Write;

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn sample() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let px: Vec<u8> = (0..3 * 2 * 4).map(|i| i as u8 * 7).collect();
        (encode_idx(&[3, 2, 4], &px), encode_idx(&[3], &[5, 0, 9]), px)
    }

    #[test]
    fn round_trip_raw_and_gzip_files() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lbl, px) = sample();
        for gz in [false, true] {
            let (ip, lp) = (dir.path().join("img"), dir.path().join("lbl"));
            let f = |b: &[u8]| if gz { gzip(b) } else { b.to_vec() };
            std::fs::write(&ip, f(&img)).unwrap();
            std::fs::write(&lp, f(&lbl)).unwrap();
            let set = read_mnist_pair(&ip, &lp).unwrap();
            assert_eq!((set.n, set.h, set.w, set.c), (3, 2, 4, 1));
            assert_eq!(set.images, px);
            assert_eq!(set.labels, Some(vec![5, 0, 9]));
        }
    }

    #[test]
    fn truncated_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lbl, _) = sample();
        let ip = dir.path().join("short-images.idx");
        std::fs::write(&ip, &img[..img.len() - 5]).unwrap();
        let lp = dir.path().join("labels.idx");
        std::fs::write(&lp, &lbl).unwrap();
        let e = read_mnist_pair(&ip, &lp).unwrap_err().to_string();
        assert!(e.contains("short-images.idx"), "{e}");
        assert!(e.contains("truncated: header says 3x2x4 = 24 bytes"), "{e}");
        assert!(e.contains("found 19"), "{e}");
        // header itself cut short, and gzip cut short
        std::fs::write(&ip, &img[..6]).unwrap();
        let e = read_mnist_pair(&ip, &lp).unwrap_err().to_string();
        assert!(e.contains("short-images.idx") && e.contains("truncated"), "{e}");
        let gz = gzip(&img);
        std::fs::write(&ip, &gz[..gz.len() / 2]).unwrap();
        let e = read_mnist_pair(&ip, &lp).unwrap_err().to_string();
        assert!(e.contains("short-images.idx"), "{e}");
    }

    #[test]
    fn wrong_magic_and_count_mismatch_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lbl, px) = sample();
        let (ip, lp) = (dir.path().join("i.idx"), dir.path().join("l.idx"));
        // labels file given as images
        std::fs::write(&ip, &lbl).unwrap();
        std::fs::write(&lp, &lbl).unwrap();
        let e = read_mnist_pair(&ip, &lp).unwrap_err().to_string();
        assert!(e.contains("i.idx") && e.contains("wrong magic 0x00000801"), "{e}");
        // count mismatch
        std::fs::write(&ip, &img).unwrap();
        std::fs::write(&lp, encode_idx(&[2], &[1, 2])).unwrap();
        let e = read_mnist_pair(&ip, &lp).unwrap_err().to_string();
        assert!(e.contains("l.idx") && e.contains("2 labels") && e.contains("3 images"), "{e}");
        // trailing bytes
        let mut long = img.clone();
        long.push(0);
        assert!(parse_images(&long, Path::new("x")).is_err());
        assert_eq!(parse_images(&img, Path::new("x")).unwrap().3, px);
        assert!(parse_images(&[], Path::new("empty")).unwrap_err().to_string().contains("empty"));
    }
}
