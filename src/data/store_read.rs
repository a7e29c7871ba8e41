//! Reading a data set file of the store: its header (shape, labels, attributes) and its pixels.
//! Through the HDF5 checker where it is on (`store::sandbox`): the checker reads the file and
//! sends both back, and the checksum is verified here.

use std::path::Path;

use hdf5::types::{IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode};

use super::ImageSet;
use crate::error::{Error, Result, WithPath};
use crate::store::sandbox::{self, Kind};
use crate::store::wire::{Dec, Enc};

/// The `format_version` attribute written by this code; files with a larger one are rejected.
pub const FORMAT_VERSION: i64 = 1;

/// What a data set file says besides its pixels: the shape, labels and attributes.
pub(super) struct Header {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub labels: Option<Vec<i64>>,
    pub source: String,
    pub sha256: Option<String>,
    pub class_names: Option<Vec<String>>,
}

pub(super) fn read_str_attr(file: &hdf5::File, path: &Path, name: &str) -> Result<Option<String>> {
    let names = crate::store::h5::attr_names(path, file)?;
    if !names.iter().any(|n| n == name) {
        return Ok(None);
    }
    let err = |e: hdf5::Error| Error::file(path, format!("attribute {name}: {e}"));
    let attr = file.attr(name).map_err(err)?;
    let desc = attr.dtype().and_then(|d| d.to_descriptor()).map_err(err)?;
    let value = match desc {
        TypeDescriptor::VarLenUnicode if attr.is_scalar() => attr.read_scalar::<VarLenUnicode>().map_err(err)?.as_str().to_string(),
        TypeDescriptor::VarLenAscii if attr.is_scalar() => attr.read_scalar::<VarLenAscii>().map_err(err)?.as_str().to_string(),
        other => {
            return Err(Error::file(
                path,
                format!("attribute {name}: expected a variable-length string scalar, found {other} {:?}", attr.shape()),
            ))
        }
    };
    Ok(Some(value))
}

fn open_checked(path: &Path) -> Result<(hdf5::File, Header)> {
    if !path.is_file() {
        return Err(Error::file(path, "no such data set file"));
    }
    let file = hdf5::File::open(path).with_path(path)?;
    if !file.link_exists("images") {
        return Err(Error::file(path, "dataset /images: missing (expected uint8 [N,H,W,C])"));
    }
    let images = file.dataset("images").map_err(|e| Error::file(path, format!("dataset /images: {e}")))?;
    let desc = images.dtype().and_then(|d| d.to_descriptor()).map_err(|e| Error::file(path, format!("dataset /images: {e}")))?;
    let shape = images.shape();
    if desc != TypeDescriptor::Unsigned(IntSize::U1) || shape.len() != 4 {
        return Err(Error::file(path, format!("dataset /images: expected uint8 [N,H,W,C], found {desc} {shape:?}")));
    }
    let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3]);
    if n > 0 && (h == 0 || w == 0 || c == 0) {
        return Err(Error::file(path, format!("dataset /images: empty image size {shape:?}")));
    }
    let labels = if file.link_exists("labels") {
        let err = |e: hdf5::Error| Error::file(path, format!("dataset /labels: {e}"));
        let ds = file.dataset("labels").map_err(err)?;
        let ldesc = ds.dtype().and_then(|d| d.to_descriptor()).map_err(err)?;
        let lshape = ds.shape();
        let is_int = matches!(ldesc, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_));
        if !is_int || lshape.len() != 1 || lshape[0] != n {
            return Err(Error::file(path, format!("dataset /labels: expected int64 [{n}] (one per image), found {ldesc} {lshape:?}")));
        }
        Some(crate::store::h5::read_all::<i64>(path, &ds)?)
    } else {
        None
    };
    if let Some(v) = crate::store::h5::attr_names(path, &file)?.iter().find(|a| *a == "format_version") {
        let err = |e: hdf5::Error| Error::file(path, format!("attribute {v}: {e}"));
        let version: i64 = file.attr(v).and_then(|a| a.read_scalar::<i64>()).map_err(err)?;
        if version > FORMAT_VERSION {
            return Err(Error::file(path, format!("format_version {version} is newer than this program reads ({FORMAT_VERSION})")));
        }
    }
    let source = read_str_attr(&file, path, "source")?.unwrap_or_else(|| path.display().to_string());
    let sha256 = read_str_attr(&file, path, "sha256")?;
    let class_names = match read_str_attr(&file, path, "class_names")? {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<Vec<String>>(&json)
                .map_err(|e| Error::file(path, format!("attribute class_names: expected a JSON list of strings: {e}")))?,
        ),
    };
    Ok((file, Header { n, h, w, c, labels, source, sha256, class_names }))
}

/// The header of the data set at `path` (through the HDF5 checker where it is on).
pub(super) fn header(path: &Path) -> Result<Header> {
    match sandbox::read(Kind::DatasetHeader, path)? {
        Some(bytes) => Header::decode(&mut Dec::new(&bytes)),
        None => open_checked(path).map(|(_, h)| h),
    }
}

/// The data set at `path`, its checksum verified (through the HDF5 checker where it is on).
pub(super) fn load_file(path: &Path) -> Result<ImageSet> {
    let (header, images) = match sandbox::read(Kind::Dataset, path)? {
        Some(bytes) => {
            let mut d = Dec::new(&bytes);
            (Header::decode(&mut d)?, d.bytes()?.to_vec())
        }
        None => read_parts(path)?,
    };
    assemble(path, header, images)
}

/// Reads the data set at `path` as `kind` in this process: the HDF5 checker's answer.
pub fn read_in_process(kind: Kind, path: &Path) -> Result<Vec<u8>> {
    let mut e = Enc::default();
    match kind {
        Kind::DatasetHeader => open_checked(path)?.1.encode(&mut e),
        _ => {
            let (header, images) = read_parts(path)?;
            header.encode(&mut e);
            e.bytes(&images);
        }
    }
    Ok(e.finish())
}

pub(super) fn read_parts(path: &Path) -> Result<(Header, Vec<u8>)> {
    let (file, header) = open_checked(path)?;
    let images = file
        .dataset("images")
        .map_err(|e| Error::file(path, format!("dataset /images: {e}")))
        .and_then(|d| crate::store::h5::read_all::<u8>(path, &d))?;
    Ok((header, images))
}

pub(super) fn assemble(path: &Path, r: Header, images: Vec<u8>) -> Result<ImageSet> {
    let mut set = ImageSet::new(images, (r.n, r.h, r.w, r.c), r.labels, r.source).with_path(path)?;
    set.class_names = r.class_names;
    if let Some(want) = r.sha256 {
        let got = set.sha256();
        if want != got {
            return Err(Error::file(path, format!("attribute sha256 is {want}, but the image bytes hash to {got}")));
        }
    }
    Ok(set)
}

impl Header {
    pub(super) fn encode(&self, e: &mut Enc) {
        e.usizes(&[self.n, self.h, self.w, self.c]).opt_str(self.sha256.as_deref()).str(&self.source);
        match &self.labels {
            Some(l) => e.u64(1).i64s(l),
            None => e.u64(0),
        };
        match &self.class_names {
            Some(c) => e.u64(1).strs(c),
            None => e.u64(0),
        };
    }

    pub(super) fn decode(d: &mut Dec) -> Result<Header> {
        let [n, h, w, c] = <[usize; 4]>::try_from(d.usizes()?).map_err(|_| Error::msg("the HDF5 checker's answer has no shape"))?;
        let (sha256, source) = (d.opt_str()?, d.str()?);
        let labels = if d.u64()? == 1 { Some(d.i64s()?) } else { None };
        let class_names = if d.u64()? == 1 { Some(d.strs()?) } else { None };
        Ok(Header { n, h, w, c, labels, source, sha256, class_names })
    }
}
