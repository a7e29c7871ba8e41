//! FID reference statistics as EDM writes them (`np.savez(dest, mu=mu, sigma=sigma)`): a zip of
//! `mu.npy` `[d]` and `sigma.npy` `[d, d]`, float64 (float32 is read too). EDM's
//! `cifar10-32x32.npz` and the files `ayt fid --save-stats` writes are this format both ways.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use nalgebra::{DMatrix, DVector};

use crate::metrics::fd::Gaussian;
use crate::{Error, Result};

/// Feature dimension bound: sigma is `d * d` values, 2 GiB of float64 at this `d`.
const MAX_DIM: usize = 16384;
const MAGIC: &[u8] = b"\x93NUMPY";

/// An array of an `.npy` entry: shape and values (as f64).
struct Array {
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// The value of `key` in an `.npy` header, a Python dict literal such as
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (2048, 2048), }`.
fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}'])? };
    Some(rest[..end].trim())
}

fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect()
}

/// Parses one `.npy` file (format 1.0, 2.0 or 3.0; little-endian f8 or f4; C or Fortran order).
fn parse_npy(bytes: &[u8], what: &str) -> std::result::Result<Array, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(format!("{what}: not an .npy array"));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("{what}: .npy format version {v} is not supported")),
    };
    let header = bytes.get(start..start.saturating_add(len)).ok_or_else(|| format!("{what}: header cut short"))?;
    let header = std::str::from_utf8(header).map_err(|_| format!("{what}: header is not text"))?;
    let descr = header_field(header, "descr").ok_or_else(|| format!("{what}: header has no descr"))?;
    let width = match descr.trim_matches(['\'', '"']) {
        "<f8" => 8,
        "<f4" => 4,
        other => return Err(format!("{what}: dtype {other} (float64 or float32 expected)")),
    };
    let fortran = match header_field(header, "fortran_order") {
        Some("False") => false,
        Some("True") => true,
        _ => return Err(format!("{what}: header has no fortran_order")),
    };
    let shape = header_field(header, "shape").and_then(parse_shape).ok_or_else(|| format!("{what}: header has no shape"))?;
    if shape.len() > 2 || shape.iter().any(|&s| s > MAX_DIM) {
        return Err(format!("{what}: shape {shape:?}: at most 2 axes of at most {MAX_DIM} each"));
    }
    let count: usize = shape.iter().product();
    let data = &bytes[start + len..];
    if data.len() != count * width {
        return Err(format!("{what}: shape {shape:?} needs {} bytes of data, the entry has {}", count * width, data.len()));
    }
    let mut values: Vec<f64> = match width {
        8 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
        _ => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64).collect(),
    };
    if fortran && shape.len() == 2 {
        let (r, c) = (shape[0], shape[1]);
        values = (0..r * c).map(|i| values[(i % c) * r + i / c]).collect();
    }
    Ok(Array { shape, values })
}

/// One `.npy` entry of the archive, read up to its declared size plus the header.
fn entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> std::result::Result<Vec<u8>, String> {
    let mut f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let limit = (MAX_DIM * MAX_DIM * 8 + 65536) as u64;
    // the declared size only hints the capacity: the read below is what is bounded
    let mut buf = Vec::with_capacity(f.size().min(1 << 26) as usize);
    (&mut f).take(limit + 1).read_to_end(&mut buf).map_err(|e| format!("{name}: {e}"))?;
    if buf.len() as u64 > limit {
        return Err(format!("{name}: larger than any {MAX_DIM}-d statistics"));
    }
    Ok(buf)
}

/// Reads `mu` and `sigma` of an `.npz` file; every error names the file and the entry.
pub fn read(path: &Path) -> Result<Gaussian> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    parse(&bytes).map_err(|e| Error::file(path, e))
}

/// [`read`] of the bytes of an `.npz` file.
pub fn parse(bytes: &[u8]) -> std::result::Result<Gaussian, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not an .npz (zip) file: {e}"))?;
    let mu = parse_npy(&entry(&mut zip, "mu.npy")?, "mu")?;
    let sigma = parse_npy(&entry(&mut zip, "sigma.npy")?, "sigma")?;
    let d = match mu.shape[..] {
        [d] if d > 0 => d,
        _ => return Err(format!("mu: shape {:?}, expected [d]", mu.shape)),
    };
    if sigma.shape != [d, d] {
        return Err(format!("sigma: shape {:?}, expected [{d}, {d}] to match mu", sigma.shape));
    }
    if let Some(i) = mu.values.iter().chain(&sigma.values).position(|v| !v.is_finite()) {
        let (name, at) = if i < d { ("mu", i) } else { ("sigma", i - d) };
        return Err(format!("{name}: value {at} is not finite"));
    }
    Ok(Gaussian { mean: DVector::from_vec(mu.values), cov: DMatrix::from_row_slice(d, d, &sigma.values), n: 0 })
}

/// One `.npy` entry (format 1.0, float64, C order), header padded to 64 bytes as numpy does.
fn npy(shape: &[usize], values: impl Iterator<Item = f64>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1u8, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}

/// Writes `g` as EDM's `np.savez(path, mu=..., sigma=...)` would (stored zip entries).
pub fn write(path: &Path, g: &Gaussian) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::file(path, format!("cannot write: {e}"));
    let d = g.mean.len();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    zip.start_file("mu.npy", opts).map_err(|e| err(&e))?;
    zip.write_all(&npy(&[d], g.mean.iter().copied())).map_err(|e| err(&e))?;
    zip.start_file("sigma.npy", opts).map_err(|e| err(&e))?;
    // row-major: row i of sigma is column i of the (symmetric) nalgebra matrix
    let rows = (0..d).flat_map(|i| (0..d).map(move |j| (i, j)));
    zip.write_all(&npy(&[d, d], rows.map(|(i, j)| g.cov[(i, j)]))).map_err(|e| err(&e))?;
    let bytes = zip.finish().map_err(|e| err(&e))?.into_inner();
    crate::store::json::write_bytes_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian() -> Gaussian {
        let cov = DMatrix::from_row_slice(3, 3, &[2.0, 0.5, 0.1, 0.5, 1.0, -0.2, 0.1, -0.2, 3.0]);
        Gaussian { mean: DVector::from_vec(vec![1.0, -2.5, 1e-3]), cov, n: 0 }
    }

    #[test]
    fn written_statistics_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.npz");
        write(&path, &gaussian()).unwrap();
        let g = read(&path).unwrap();
        assert_eq!(g.mean, gaussian().mean);
        assert_eq!(g.cov, gaussian().cov);
    }

    #[test]
    fn float32_and_fortran_order_are_read() {
        let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1u8, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for v in [1.0f32, 2.0, 3.0, 4.0] {
            bytes.extend(v.to_le_bytes()); // column-major [[1, 3], [2, 4]]
        }
        let a = parse_npy(&bytes, "x").unwrap();
        assert_eq!((a.shape, a.values), (vec![2, 2], vec![1.0, 3.0, 2.0, 4.0]));
    }

    #[test]
    fn malformed_statistics_name_the_entry() {
        let good = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ref.npz");
            write(&path, &gaussian()).unwrap();
            std::fs::read(&path).unwrap()
        };
        assert!(parse(&good[..good.len() / 2]).unwrap_err().contains("not an .npz"));
        let g = gaussian();
        let zip_of = |mu: Vec<u8>, sigma: Vec<u8>| {
            let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            zip.start_file("mu.npy", opts).unwrap();
            zip.write_all(&mu).unwrap();
            zip.start_file("sigma.npy", opts).unwrap();
            zip.write_all(&sigma).unwrap();
            zip.finish().unwrap().into_inner()
        };
        let mu = npy(&[3], g.mean.iter().copied());
        let sigma = npy(&[3, 3], g.cov.iter().copied());
        let e = parse(&zip_of(mu.clone(), npy(&[2, 2], [1.0; 4].into_iter()))).unwrap_err();
        assert!(e.contains("sigma") && e.contains("[3, 3]"), "{e}");
        let e = parse(&zip_of(npy(&[3], [1.0, f64::NAN, 0.0].into_iter()), sigma.clone())).unwrap_err();
        assert!(e.contains("mu: value 1 is not finite"), "{e}");
        let e = parse(&zip_of(mu.clone(), npy(&[2, 2, 2], [1.0; 8].into_iter()))).unwrap_err();
        assert!(e.contains("sigma") && e.contains("at most 2 axes"), "{e}");
        let e = parse(&zip_of(mu.clone(), sigma[..sigma.len() - 8].to_vec())).unwrap_err();
        assert!(e.contains("sigma") && e.contains("needs 72 bytes"), "{e}");
        let mut wrong = mu.clone();
        let at = wrong.windows(3).position(|w| w == b"<f8").unwrap();
        wrong[at..at + 3].copy_from_slice(b"<i8");
        let e = parse(&zip_of(wrong, sigma)).unwrap_err();
        assert!(e.contains("mu: dtype <i8"), "{e}");
    }
}
