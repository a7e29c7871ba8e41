use super::*;
use crate::data::pickle::python2_cifar_batch;

/// Pixel `p` of channel `c` of image `r`: distinct enough to catch a wrong layout.
fn px(r: usize, c: usize, p: usize) -> u8 {
    ((r * 7 + c * 50 + p * 3) % 256) as u8
}

fn chw(r: usize) -> Vec<u8> {
    (0..PIXELS).map(|i| px(r, i / 1024, i % 1024)).collect()
}

fn binary_records(first: usize, labels: &[u8]) -> Vec<u8> {
    labels.iter().enumerate().flat_map(|(i, &l)| std::iter::once(l).chain(chw(first + i))).collect()
}

/// A binary archive folder: `test_batch.bin` of 3 images, five train batches of 2.
fn binary_archive(root: &Path) -> PathBuf {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test_batch.bin"), binary_records(0, &[0, 5, 9])).unwrap();
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), binary_records(2 * b, &[b as u8, 3])).unwrap();
    }
    std::fs::write(dir.join("batches.meta.txt"), CLASSES.join("\n") + "\n\n").unwrap();
    dir
}

fn assert_hwc(set: &ImageSet, first: usize) {
    for r in 0..set.n {
        for (p, c) in [(0, 0), (0, 2), (33, 1), (1023, 2)] {
            assert_eq!(set.images[r * PIXELS + p * 3 + c], px(first + r, c, p), "image {r}, pixel {p}, channel {c}");
        }
    }
}

#[test]
fn the_binary_archive_imports_both_splits_pixel_major() {
    let root = tempfile::tempdir().unwrap();
    let dir = binary_archive(root.path());
    let test = import(root.path(), true).unwrap();
    assert_eq!((test.n, test.h, test.w, test.c), (3, 32, 32, 3));
    assert_eq!(test.labels.as_deref(), Some(&[0, 5, 9][..]));
    assert_eq!(test.class_names.as_ref().unwrap()[9], "truck");
    assert_hwc(&test, 0);
    let train = import(&dir, false).unwrap();
    assert_eq!(train.n, 10);
    assert_eq!(train.labels.as_deref(), Some(&[1, 3, 2, 3, 3, 3, 4, 3, 5, 3][..]));
    assert_hwc(&train, 2);
    assert!(train.source.contains("CIFAR-10 train"), "{}", train.source);
}

#[test]
fn a_malformed_binary_batch_names_file_and_record() {
    let root = tempfile::tempdir().unwrap();
    let dir = binary_archive(root.path());
    let mut bad = binary_records(0, &[0, 5, 9]);
    bad[PIXELS + 1] = 10;
    std::fs::write(dir.join("test_batch.bin"), &bad).unwrap();
    let e = import(&dir, true).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("record 1: label 10"), "{e}");
    std::fs::write(dir.join("test_batch.bin"), &binary_records(0, &[0, 5, 9])[..3 * (PIXELS + 1) - 1]).unwrap();
    let e = import(&dir, true).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("record 2 is cut short"), "{e}");
    std::fs::remove_file(dir.join("data_batch_3.bin")).unwrap();
    let e = import(&dir, false).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin: missing"), "{e}");
    let e = import(&root.path().join("nowhere"), false).unwrap_err().to_string();
    assert!(e.contains("no CIFAR-10 batches"), "{e}");
}

/// `batches.meta` as Python 2 pickles it: `{"label_names": [...]}`.
fn py2_meta(names: &[&str]) -> Vec<u8> {
    let mut p = b"\x80\x02}q\x01U\x0blabel_namesq\x02]q\x03(".to_vec();
    for n in names {
        p.extend_from_slice(&[b'U', n.len() as u8]);
        p.extend_from_slice(n.as_bytes());
    }
    p.extend_from_slice(b"es.");
    p
}

#[test]
fn the_python_archive_reads_the_same_images() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-10-batches-py");
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..3).flat_map(chw).collect();
    std::fs::write(dir.join("test_batch"), python2_cifar_batch(&data, 3, &[0, 5, 9])).unwrap();
    let mut names = CLASSES;
    names[0] = "plane";
    std::fs::write(dir.join("batches.meta"), py2_meta(&names)).unwrap();
    let set = import(root.path(), true).unwrap();
    assert_eq!((set.n, set.labels.as_deref()), (3, Some(&[0, 5, 9][..])));
    assert_eq!(set.class_names.as_ref().unwrap()[0], "plane");
    assert_hwc(&set, 0);

    std::fs::write(dir.join("test_batch"), python2_cifar_batch(&data, 3, &[0, 5])).unwrap();
    let e = import(&dir, true).unwrap_err().to_string();
    assert!(e.contains("test_batch") && e.contains("2 of them for 3 images"), "{e}");
    std::fs::write(dir.join("test_batch"), &python2_cifar_batch(&data, 3, &[0, 5, 9])[..500]).unwrap();
    let e = import(&dir, true).unwrap_err().to_string();
    assert!(e.contains("test_batch") && e.contains("cut short"), "{e}");
    std::fs::write(dir.join("test_batch"), python2_cifar_batch(&data[..PIXELS * 2], 1, &[0])).unwrap();
    let e = import(&dir, true).unwrap_err().to_string();
    assert!(e.contains("expected [N, 3072]"), "{e}");
}
