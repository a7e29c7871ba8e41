//! Import a folder of PNG files as an [`ImageSet`].
//!
//! - Flat folder: every `*.png` under `dir` (recursively), in sorted path order, no labels.
//! - With sub-folders: each sub-folder of `dir` is a class; labels are `0..K-1` in sorted order
//!   of the folder names (kept in `class_names`), images are every `*.png` under the class folder
//!   (recursively, sorted). PNG files directly in `dir` next to class folders are an error.
//!
//! All images must share one size and channel count (grey or RGB, see
//! [`crate::image_io::read_png`]).

use std::path::{Path, PathBuf};

use super::ImageSet;
use crate::error::{Error, Result, WithPath};
use crate::image_io::read_png;

fn is_png(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// Sorted `(files, sub-folders)` directly in `dir`.
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).with_path(dir)? {
        let p = entry.with_path(dir)?.path();
        if p.is_dir() {
            dirs.push(p);
        } else if is_png(&p) {
            files.push(p);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// All PNG files under `dir`, recursively, in sorted path order.
fn pngs_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let (files, dirs) = list_dir(dir)?;
    out.extend(files);
    for d in dirs {
        pngs_under(&d, out)?;
    }
    Ok(())
}

/// Import every PNG under `dir`; see the module documentation for the layout rules.
pub fn import_png_folder(dir: impl AsRef<Path>) -> Result<ImageSet> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(Error::file(dir, "not a folder"));
    }
    let (top_files, sub_dirs) = list_dir(dir)?;
    let mut entries: Vec<(PathBuf, Option<i64>)> = Vec::new();
    let mut class_names = None;
    if sub_dirs.is_empty() {
        entries.extend(top_files.into_iter().map(|p| (p, None)));
    } else {
        if let Some(f) = top_files.first() {
            return Err(Error::file(f, "PNG file next to class sub-folders: put every image inside a class folder"));
        }
        let mut names = Vec::new();
        for (k, sub) in sub_dirs.iter().enumerate() {
            let mut files = Vec::new();
            pngs_under(sub, &mut files)?;
            if files.is_empty() {
                return Err(Error::file(sub, "class folder contains no *.png files"));
            }
            names.push(sub.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default());
            entries.extend(files.into_iter().map(|p| (p, Some(k as i64))));
        }
        class_names = Some(names);
    }
    if entries.is_empty() {
        return Err(Error::file(dir, "no *.png files found"));
    }

    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut first: Option<(PathBuf, usize, usize, usize)> = None;
    for (p, label) in &entries {
        let (w, h, c, px) = read_png(p)?;
        match &first {
            None => first = Some((p.clone(), w, h, c)),
            Some((fp, fw, fh, fc)) => {
                if (w, h, c) != (*fw, *fh, *fc) {
                    return Err(Error::file(
                        p,
                        format!(
                            "image is {w}x{h} with {c} channel(s), but {} is {fw}x{fh} with {fc}: \
                             all images must have one size and channel count",
                            fp.display()
                        ),
                    ));
                }
            }
        }
        images.extend_from_slice(&px);
        if let Some(l) = label {
            labels.push(*l);
        }
    }
    let Some((_, w, h, c)) = first else {
        return Err(Error::file(dir, "no *.png files found"));
    };
    let labels = class_names.is_some().then_some(labels);
    let mut set = ImageSet::new(images, (entries.len(), h, w, c), labels, format!("PNG folder {}", dir.display())).with_path(dir)?;
    set.class_names = class_names;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_io::write_png;

    #[test]
    fn two_class_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (class, files) in [("dogs", &["b.png", "a.png"][..]), ("cats", &["z.png"][..])] {
            std::fs::create_dir(root.join(class)).unwrap();
            for (i, f) in files.iter().enumerate() {
                let v = if class == "cats" { 10 } else { 100 + i as u8 };
                write_png(root.join(class).join(f), 3, 2, 1, &[v; 6]).unwrap();
            }
        }
        std::fs::write(root.join("cats").join("notes.txt"), "ignored").unwrap();
        let set = import_png_folder(root).unwrap();
        assert_eq!((set.n, set.h, set.w, set.c), (3, 2, 3, 1));
        assert_eq!(set.class_names, Some(vec!["cats".to_string(), "dogs".to_string()]));
        assert_eq!(set.labels, Some(vec![0, 1, 1]));
        // cats/z, dogs/a (written second: 101), dogs/b (100)
        assert_eq!(set.image(0)[0], 10);
        assert_eq!(set.image(1)[0], 101);
        assert_eq!(set.image(2)[0], 100);
    }

    #[test]
    fn flat_folder_and_mismatched_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_png(root.join("1.png"), 2, 2, 3, &[5; 12]).unwrap();
        let set = import_png_folder(root).unwrap();
        assert_eq!((set.n, set.c, set.labels.clone()), (1, 3, None));
        write_png(root.join("2.png"), 2, 3, 3, &[5; 18]).unwrap();
        let e = import_png_folder(root).unwrap_err().to_string();
        assert!(e.contains("2.png") && e.contains("2x3") && e.contains("1.png") && e.contains("2x2"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(import_png_folder(empty.path()).unwrap_err().to_string().contains("no *.png"));
    }
}
