//! The data set format EDM, ECT and CMT share (their `dataset_tool.py`): a zip of PNG images,
//! read in sorted name order, with an optional `dataset.json` at its root,
//! `{"labels": [["00000/img00000000.png", 6], ...]}` (or `"labels": null`).
//! Grey and RGB images of one size; integer labels (vector labels are refused).

use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;
use std::time::Duration;

use super::ImageSet;
use crate::error::{Error, Result, WithPath};
use crate::image_io::decode_png;
use crate::progress::Progress;

/// No single entry (a PNG, `dataset.json`) is read past this.
const MAX_ENTRY: u64 = 256 << 20;
/// What PIL opens, as EDM lists images; only PNG is read here.
const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];

type Archive = zip::ZipArchive<BufReader<std::fs::File>>;

fn extension(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

/// Entry `name` of `zip`, whole, bounded by [`MAX_ENTRY`].
fn entry(zip: &mut Archive, file: &Path, name: &str) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::file(file, format!("{name}: {e}"));
    let mut f = zip.by_name(name).map_err(|e| err(&e))?;
    if f.size() > MAX_ENTRY {
        return Err(err(&format!("{} bytes, over the limit of {} MiB", f.size(), MAX_ENTRY >> 20)));
    }
    let mut buf = Vec::with_capacity(f.size() as usize);
    (&mut f).take(MAX_ENTRY + 1).read_to_end(&mut buf).map_err(|e| err(&e))?;
    if buf.len() as u64 > MAX_ENTRY {
        return Err(err(&"inflates past the limit"));
    }
    Ok(buf)
}

/// Reads the EDM-format zip at `file`.
pub fn import(file: &Path) -> Result<ImageSet> {
    let f = std::fs::File::open(file).with_path(file)?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| Error::file(file, format!("not a zip archive: {e}")))?;
    let mut names = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(|e| Error::file(file, format!("an entry name: {e}")))?;
    names.sort();
    let images: Vec<String> = names.iter().filter(|n| IMAGE_EXTENSIONS.contains(&extension(n).as_str())).cloned().collect();
    if let Some(other) = images.iter().find(|n| extension(n) != "png") {
        return Err(Error::file(file, format!("{other}: only PNG images are read (convert the data set with dataset_tool.py)")));
    }
    if images.is_empty() {
        return Err(Error::file(file, "no PNG images in it"));
    }
    let labels = if names.iter().any(|n| n == "dataset.json") { read_labels(&mut zip, file, &images)? } else { None };
    let mut progress = Progress::new("importing", 0, images.len() as u64, Duration::from_secs(10));
    let (mut pixels, mut shape) = (Vec::new(), None);
    for (i, name) in images.iter().enumerate() {
        let bytes = entry(&mut zip, file, name)?;
        let (w, h, c, px) = decode_png(Cursor::new(bytes), &file.join(name))?;
        match shape {
            None => shape = Some((h, w, c)),
            Some(s) if s != (h, w, c) => {
                let first = &images[0];
                return Err(Error::file(file, format!("{name}: {w}x{h}x{c}, but {first} is {}x{}x{}: one size for all", s.1, s.0, s.2)));
            }
            Some(_) => {}
        }
        pixels.extend_from_slice(&px);
        progress.update(i as u64 + 1, images.len() as u64, "");
    }
    progress.finish();
    let (h, w, c) = shape.expect("at least one image");
    ImageSet::new(pixels, (images.len(), h, w, c), labels, format!("EDM zip {}", file.display())).with_path(file)
}

/// One integer label per image from `dataset.json`, or `None` where it says `"labels": null`.
fn read_labels(zip: &mut Archive, file: &Path, images: &[String]) -> Result<Option<Vec<i64>>> {
    let err = |msg: String| Error::file(file, format!("dataset.json: {msg}"));
    let json: serde_json::Value = serde_json::from_slice(&entry(zip, file, "dataset.json")?).map_err(|e| err(e.to_string()))?;
    let list = match json.get("labels") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Array(list)) => list,
        Some(other) => return Err(err(format!("\"labels\" is {other}, expected a list of [file name, label] or null"))),
    };
    let mut by_name = HashMap::new();
    for (i, item) in list.iter().enumerate() {
        let pair = item.as_array().filter(|p| p.len() == 2);
        let Some((Some(name), label)) = pair.map(|p| (p[0].as_str(), &p[1])) else {
            return Err(err(format!("labels[{i}] is {item}, expected [file name, label]")));
        };
        let Some(label) = label.as_i64() else {
            return Err(err(format!("the label of {name} is {label}: only integer labels are read (vector labels are not)")));
        };
        by_name.insert(name.replace('\\', "/"), label);
    }
    images.iter().map(|n| by_name.get(n).copied().ok_or_else(|| err(format!("no label for {n}")))).collect::<Result<Vec<_>>>().map(Some)
}

#[cfg(test)]
mod tests;
