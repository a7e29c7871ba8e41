use std::io::Write;

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use super::*;
use crate::image_io::write_png;

/// A PNG of `w x h x c` whose pixels all hold `v`, as bytes.
fn png(dir: &Path, w: usize, h: usize, c: usize, v: u8) -> Vec<u8> {
    let p = dir.join("t.png");
    write_png(&p, w, h, c, &vec![v; w * h * c]).unwrap();
    std::fs::read(p).unwrap()
}

/// A zip of `entries`, alternately deflated and stored (dataset_tool.py stores).
fn zip_of(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (i, (name, bytes)) in entries.iter().enumerate() {
        let method = if i % 2 == 0 { CompressionMethod::Deflated } else { CompressionMethod::Stored };
        z.start_file(*name, SimpleFileOptions::default().compression_method(method)).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn an_edm_zip_imports_in_name_order_with_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let json = br#"{"labels": [["00000/img00000002.png", 7], ["00000/img00000000.png", 3], ["00000/img00000001.png", 0]]}"#;
    let z = d.join("cifar10-32x32.zip");
    zip_of(
        &z,
        &[
            ("00000/img00000001.png", png(d, 5, 4, 3, 11)),
            ("dataset.json", json.to_vec()),
            ("00000/img00000000.png", png(d, 5, 4, 3, 10)),
            ("00000/img00000002.png", png(d, 5, 4, 3, 12)),
        ],
    );
    let set = import(&z).unwrap();
    assert_eq!((set.n, set.h, set.w, set.c), (3, 4, 5, 3));
    assert_eq!(set.labels.as_deref(), Some(&[3, 0, 7][..]));
    assert_eq!([set.images[0], set.images[60], set.images[179]], [10, 11, 12], "sorted by name");

    zip_of(&z, &[("a.png", png(d, 2, 2, 1, 1)), ("dataset.json", br#"{"labels": null}"#.to_vec())]);
    let set = import(&z).unwrap();
    assert_eq!((set.n, set.c, set.labels), (1, 1, None));
}

#[test]
fn a_malformed_edm_zip_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let z = d.join("d.zip");
    let err = |entries: &[(&str, Vec<u8>)]| {
        zip_of(&z, entries);
        import(&z).unwrap_err().to_string()
    };
    let e = err(&[("a.png", png(d, 2, 2, 3, 0)), ("b.png", png(d, 3, 2, 3, 0))]);
    assert!(e.contains("d.zip") && e.contains("b.png: 3x2x3, but a.png is 2x2x3"), "{e}");
    let e = err(&[("a.png", png(d, 2, 2, 3, 0)), ("dataset.json", br#"{"labels": [["x.png", 1]]}"#.to_vec())]);
    assert!(e.contains("dataset.json: no label for a.png"), "{e}");
    let e = err(&[("a.png", png(d, 2, 2, 3, 0)), ("dataset.json", br#"{"labels": [["a.png", [0.0, 1.0]]]}"#.to_vec())]);
    assert!(e.contains("only integer labels"), "{e}");
    let e = err(&[("a.png", b"not a png".to_vec())]);
    assert!(e.contains("a.png") && e.contains("PNG"), "{e}");
    let e = err(&[("a.jpg", vec![0xff, 0xd8])]);
    assert!(e.contains("a.jpg: only PNG"), "{e}");
    let e = err(&[("readme.txt", b"hi".to_vec())]);
    assert!(e.contains("no PNG images"), "{e}");
    std::fs::write(&z, b"PK but not a zip").unwrap();
    assert!(import(&z).unwrap_err().to_string().contains("not a zip archive"));
}
