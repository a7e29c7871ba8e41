//! `ayt data import cifar10`: python batches as Python 3 and NumPy pickle them today (protocols
//! 2, 4 and 5), not only as the Python 2 originals the unit tests spell out byte by byte, land
//! in the store pixel-major with their labels; a malformed archive writes nothing.

mod common;
use common::{ayt, missing_tool};

use std::path::Path;
use std::process::Command;

const MAKE: &str = r#"
import pickle, sys, numpy as np
out, proto = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
with open(out + "/test_batch", "wb") as f:
    pickle.dump({"batch_label": "testing batch 1 of 1", "labels": [3, 1, 4, 1], "data": data, "filenames": ["a.png"] * 4}, f, protocol=proto)
with open(out + "/batches.meta", "wb") as f:
    pickle.dump({"label_names": ["c%d" % i for i in range(10)], "num_cases_per_batch": 4}, f, protocol=proto)
np.save(out + "/expected.npy", data.reshape(4, 3, 32, 32).transpose(0, 2, 3, 1))
"#;

#[test]
fn python3_pickles_of_every_protocol_import() {
    if !common::python_imports("numpy") {
        return missing_tool("python3 with numpy");
    }
    for proto in ["2", "4", "5"] {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("cifar-10-batches-py");
        std::fs::create_dir_all(&dir).unwrap();
        let made = Command::new("python3").args(["-c", MAKE, dir.to_str().unwrap(), proto]).output().unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let o = ayt(home.path(), &["data", "import", "cifar10", home.path().to_str().unwrap(), "--test", "--name", "c"]);
        assert!(o.status.success(), "protocol {proto}: {}", String::from_utf8_lossy(&o.stderr));
        let stored = home.path().join("datasets/c.h5");
        let check = format!(
            "import h5py, numpy as np\nf = h5py.File({:?}, 'r')\nassert (f['images'][()] == np.load({:?})).all()\nassert list(f['labels'][()]) == [3, 1, 4, 1]\nprint('ok')",
            stored.to_str().unwrap(),
            dir.join("expected.npy").to_str().unwrap()
        );
        let o = Command::new("python3").args(["-c", &check]).output().unwrap();
        assert!(o.status.success(), "protocol {proto}: {}", String::from_utf8_lossy(&o.stderr));
        let show = ayt(home.path(), &["data", "show", "c", "--preview", home.path().join("p.png").to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&show.stdout).contains("shape    [4, 32, 32, 3]"), "{}", String::from_utf8_lossy(&show.stdout));
        assert!(Path::new(&home.path().join("p.png")).is_file());
    }
}

#[test]
fn a_malformed_archive_is_refused_and_nothing_is_written() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test_batch.bin"), vec![3u8; 3073 * 2 + 100]).unwrap();
    let o = ayt(home.path(), &["data", "import", "cifar10", dir.to_str().unwrap(), "--test"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("test_batch.bin") && err.contains("record 2 is cut short"), "{err}");
    assert!(!home.path().join("datasets/cifar10-test.h5").exists(), "nothing written");
    std::fs::write(dir.join("test_batch.bin"), vec![3u8; 3073 * 2]).unwrap();
    let o = ayt(home.path(), &["data", "import", "cifar10", dir.to_str().unwrap(), "--test"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(home.path().join("datasets/cifar10-test.h5").is_file(), "the default name for the test split");
}
