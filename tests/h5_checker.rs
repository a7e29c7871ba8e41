//! A damaged HDF5 file is an error naming it, never a crash of `ayt`: the files in
//! `tests/data/damaged/` (found by ayt-fuzz) crash or hang Debian's libhdf5 when read in-process
//! (shown first, through `ayt-fuzz --replay`, so that the rest means something), and `ayt` reads
//! them through its checker process (store/sandbox.rs) and says what happened.

mod common;
use common::ayt;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn damaged(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/damaged").join(name)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `ayt-fuzz --replay TARGET FILE` reads the file in its own process, without the checker.
fn replay(target: &str, file: &Path) -> std::process::ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ayt-fuzz")).args(["--replay", target]).arg(file).spawn().expect("ayt-fuzz");
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("waiting") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    child.wait().expect("waiting")
}

/// The ayt error lines of `o`: no panic, no signal, exit 1.
fn refused(o: &Output, what: &str) -> String {
    let t = text(o);
    assert_eq!((o.status.code(), o.status.signal()), (Some(1), None), "{what}: {t}");
    assert!(!t.contains("panicked"), "{what}: {t}");
    t
}

#[test]
fn the_damaged_files_do_crash_the_library_in_process() {
    for (target, file) in [("dataset-h5", "dataset-segv.h5"), ("run-h5", "run-segv.h5"), ("phi-bundle", "phi-segv.h5")] {
        let status = replay(target, &damaged(file));
        assert_eq!(status.signal(), Some(libc::SIGSEGV), "{file}: a fixture that no longer crashes libhdf5 proves nothing; refresh it");
    }
    let hang = replay("dataset-h5", &damaged("dataset-hang.h5"));
    assert_eq!(hang.signal(), Some(libc::SIGKILL), "dataset-hang.h5 should hang libhdf5 (killed after 10 s)");
}

/// A home whose data set store holds damaged file `fixture` as data set `name`.
fn home_with(fixture: &str, name: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("datasets");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(damaged(fixture), store.join(format!("{name}.h5"))).unwrap();
    home
}

#[test]
fn a_damaged_data_set_is_listed_as_unreadable_and_the_rest_still_list() {
    let home = home_with("dataset-segv.h5", "broken");
    let o = ayt(home.path(), &["data", "list"]);
    let t = refused(&o, "data list");
    assert!(t.contains("broken.h5: the HDF5 library crashed (signal 11, SIGSEGV) reading it: the file is damaged"), "{t}");
    assert!(t.lines().any(|l| l.starts_with("mnist ") && l.contains("60000 x 28x28x1")), "the good data set is still listed: {t}");
    assert!(t.contains("1 data set(s)") && t.contains("cannot be read"), "{t}");
    let o = ayt(home.path(), &["data", "show", "broken"]);
    assert!(refused(&o, "data show").contains("SIGSEGV"));
}

#[test]
fn a_hanging_data_set_is_given_up_on_after_the_time_limit() {
    let home = home_with("dataset-hang.h5", "stuck");
    let o = Command::new(env!("CARGO_BIN_EXE_ayt"))
        .args(["data", "show", "stuck"])
        .env("AYT_HOME", home.path())
        .env("AYT_H5_CHECK_FLOOR_S", "2")
        .output()
        .unwrap();
    let t = refused(&o, "data show of a hanging file");
    assert!(t.contains("stuck.h5: reading it as dataset-header did not finish in 2 s (the HDF5 library hung)"), "{t}");
}

#[test]
fn a_damaged_run_log_and_phi_bundle_are_errors_naming_them() {
    let home = tempfile::tempdir().unwrap();
    let run = home.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(damaged("run-segv.h5"), run.join("run.h5")).unwrap();
    let out = home.path().join("x.csv");
    let o = ayt(home.path(), &["export", run.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let t = refused(&o, "export");
    assert!(t.contains("run.h5: the HDF5 library crashed") && t.contains("damaged"), "{t}");
    assert!(!out.exists(), "nothing written");

    let phi = home.path().join("phi.h5");
    std::fs::copy(damaged("phi-segv.h5"), &phi).unwrap();
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/disks-phi.toml");
    let init = format!("train.init={:?}", phi.to_str().unwrap());
    let o = ayt(home.path(), &["features", "train", "--preset", preset.to_str().unwrap(), "--set", &init, "--set", "train.iterations=1"]);
    let t = refused(&o, "features train from a damaged phi");
    assert!(t.contains("phi.h5: the HDF5 library crashed"), "{t}");
}
