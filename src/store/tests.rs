use std::time::Duration;

use super::*;
use crate::error::{Error, Result};

fn meta() -> RunMeta {
    RunMeta::new("[train]\nlr = 1e-3\n", 42, "disks", "ab12")
}

fn attrs() -> Vec<(String, String)> {
    vec![
        ("extractor".into(), "inception".into()),
        ("n_samples".into(), "1000".into()),
        ("sampler".into(), "1-step".into()),
        ("reference".into(), "disks-train".into()),
    ]
}

/// Slow periodic flushes, so only explicit flush/close write.
fn slow() -> WriterOptions {
    WriterOptions { flush_interval: Duration::from_secs(3600), close_patience: Duration::from_millis(100) }
}

#[test]
fn roundtrip_all_tables() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let m = meta();
    let w = RunLogWriter::create_with(&path, &m, slow())?;
    for i in 0..10i64 {
        w.scalar("loss", i, i as f64 * 0.5, i as f64 * 0.1, 1.0 / (i + 1) as f64)?;
        w.scalar("tangent/mfd/rho", i, i as f64 * 0.5, i as f64 * 0.1, -(i as f64))?;
    }
    w.hist("tangent/mfd/rho", 3, vec![0.0, 0.5, 1.0, 1.5], vec![1, 2, 3])?;
    w.hist("tangent/mfd/rho", 7, vec![0.0, 1.0, 2.0, 3.0], vec![4, 5, 6])?;
    let img1: Vec<u8> = (0..2 * 3 * 4).map(|x| x as u8).collect();
    let img2: Vec<u8> = (0..2 * 3 * 4).map(|x| 200 - x as u8).collect();
    w.samples(5, img1.clone(), 2, 3, 4, 1)?;
    w.samples(9, img2.clone(), 2, 3, 4, 1)?;
    w.eval("fid", 9, 4.5, 12.25, attrs())?;
    w.eval("fid", 10, 5.0, 11.0, vec![])?;
    w.close()?;

    let log = RunLog::open(&path)?;
    assert_eq!(log.meta()?, m);
    assert_eq!(log.scalar_names()?, vec!["loss".to_string(), "tangent/mfd/rho".to_string()]);
    let loss = log.scalar("loss")?;
    assert_eq!(loss.step, (0..10).collect::<Vec<i64>>());
    assert_eq!(loss.kimg, (0..10).map(|i| i as f64 * 0.5).collect::<Vec<_>>());
    assert_eq!(loss.wall, (0..10).map(|i| i as f64 * 0.1).collect::<Vec<_>>());
    assert_eq!(loss.value, (0..10).map(|i| 1.0 / (i + 1) as f64).collect::<Vec<_>>());
    assert_eq!(log.scalar("tangent/mfd/rho")?.value[9], -9.0);

    assert_eq!(log.hist_names()?, vec!["tangent/mfd/rho".to_string()]);
    let h = log.hist("tangent/mfd/rho")?;
    assert_eq!(h.step, vec![3, 7]);
    assert_eq!(h.bins, 3);
    assert_eq!(h.edges, vec![vec![0.0, 0.5, 1.0, 1.5], vec![0.0, 1.0, 2.0, 3.0]]);
    assert_eq!(h.counts, vec![vec![1, 2, 3], vec![4, 5, 6]]);

    let s = log.samples()?;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0], (5, SampleGrid { n: 2, h: 3, w: 4, c: 1, images: img1 }));
    assert_eq!(s[1].0, 9);
    assert_eq!(s[1].1.images, img2);
    assert_eq!(log.last_samples()?, Some(s[1].clone()));

    assert_eq!(log.eval_names()?, vec!["fid".to_string()]);
    let e = log.eval("fid")?;
    assert_eq!(e.step, vec![9, 10]);
    assert_eq!(e.kimg, vec![4.5, 5.0]);
    assert_eq!(e.value, vec![12.25, 11.0]);
    let mut want = attrs();
    want.sort();
    assert_eq!(e.attrs, want);

    assert!(log.scalar("nope").is_err());
    Ok(())
}

#[test]
fn flush_makes_rows_visible_while_writer_alive() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    let log = RunLog::open(&path)?;
    w.scalar("loss", 1, 0.1, 0.0, 3.0)?;
    w.scalar("loss", 2, 0.2, 0.1, 2.0)?;
    w.flush()?;
    assert_eq!(log.scalar("loss")?.value, vec![3.0, 2.0]);
    w.scalar("loss", 3, 0.3, 0.2, 1.0)?;
    w.flush()?;
    assert_eq!(log.scalar("loss")?.step, vec![1, 2, 3]);
    w.close()?;
    Ok(())
}

#[test]
fn periodic_bursts_write_without_flush() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let opts = WriterOptions { flush_interval: Duration::from_millis(50), ..WriterOptions::default() };
    let w = RunLogWriter::create_with(&path, &meta(), opts)?;
    w.scalar("loss", 1, 0.1, 0.0, 3.0)?;
    let log = RunLog::open(&path)?;
    let mut seen = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        if log.scalar("loss").map(|s| s.len() == 1).unwrap_or(false) {
            seen = true;
            break;
        }
    }
    assert!(seen, "periodic burst did not write the row");
    w.close()
}

#[test]
fn open_append_drops_rows_after_checkpoint() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    for i in 0..10i64 {
        w.scalar("loss", i, i as f64, i as f64, i as f64)?;
        w.hist("g/norm", i, vec![0.0, 1.0, 2.0], vec![i, 2 * i])?;
        w.eval("fid", i, i as f64, 100.0 - i as f64, attrs())?;
        w.samples(i, vec![i as u8; 4], 1, 2, 2, 1)?;
    }
    w.close()?;

    let w = RunLogWriter::open_append_with(&path, 5, slow())?;
    let log = RunLog::open(&path)?;
    assert_eq!(log.scalar("loss")?.step, (0..=5).collect::<Vec<i64>>());
    assert_eq!(log.hist("g/norm")?.counts.len(), 6);
    assert_eq!(log.eval("fid")?.value.len(), 6);
    assert_eq!(log.samples()?.len(), 6);
    for i in 6..8i64 {
        w.scalar("loss", i, i as f64, i as f64, 10.0 * i as f64)?;
        w.hist("g/norm", i, vec![0.0, 1.0, 2.0], vec![7, 7])?;
        w.eval("fid", i, i as f64, 1.0, vec![])?;
        w.samples(i, vec![99; 4], 1, 2, 2, 1)?;
    }
    w.close()?;
    let s = log.scalar("loss")?;
    assert_eq!(s.step, (0..8).collect::<Vec<i64>>());
    assert_eq!(s.value[5..], [5.0, 60.0, 70.0]);
    let h = log.hist("g/norm")?;
    assert_eq!(h.step, (0..8).collect::<Vec<i64>>());
    assert_eq!(h.counts[7], vec![7, 7]);
    let e = log.eval("fid")?;
    assert_eq!(e.step.len(), 8);
    assert_eq!(e.attrs.len(), 4, "attrs survive a resume");
    let last = log.last_samples()?.ok_or_else(|| Error::msg("no samples"))?;
    assert_eq!(last.0, 7);
    assert_eq!(last.1.images, vec![99; 4]);
    Ok(())
}

#[test]
fn open_append_compacts_non_monotonic_steps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    for (i, s) in [1i64, 2, 9, 3, 8, 4].into_iter().enumerate() {
        w.scalar("loss", s, i as f64, 0.0, s as f64)?;
    }
    w.close()?;
    RunLogWriter::open_append(&path, 4)?.close()?;
    let s = RunLog::open(&path)?.scalar("loss")?;
    assert_eq!(s.step, vec![1, 2, 3, 4]);
    assert_eq!(s.value, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(s.kimg, vec![0.0, 1.0, 3.0, 5.0]);
    Ok(())
}

#[test]
fn two_d_value_dataset_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    w.scalar("loss", 1, 0.0, 0.0, 1.0)?;
    w.scalar("loss", 2, 1.0, 1.0, 2.0)?;
    w.close()?;
    {
        // Replace the value column by a 2-D one.
        let f = hdf5::File::open_rw(&path)?;
        let g = f.group("scalars/loss")?;
        g.unlink("value")?;
        g.new_dataset_builder().with_data(&ndarray::arr2(&[[1.0f64, 2.0], [3.0, 4.0]])).create("value")?;
        f.close()?;
    }
    let log = RunLog::open(&path)?;
    let err = log.scalar("loss").err().ok_or_else(|| Error::msg("expected an error"))?.to_string();
    assert!(err.contains("run.h5"), "{err}");
    assert!(err.contains("/scalars/loss/value"), "{err}");
    assert!(err.contains("1-D"), "{err}");
    // Appending to that table reports the same dataset from flush, without a panic.
    let w = RunLogWriter::open_append_with(&path, 100, slow())?;
    w.scalar("loss", 3, 0.0, 0.0, 1.0)?;
    let err = w.flush().err().ok_or_else(|| Error::msg("expected an error"))?.to_string();
    assert!(err.contains("/scalars/loss/value"), "{err}");
    w.close()?;
    assert_eq!(RunLog::open(&path)?.scalar("loss").err().map(|_| ()), Some(()));
    // The failed append did not extend the other columns.
    let f = hdf5::File::open(&path)?;
    assert_eq!(f.dataset("scalars/loss/step")?.shape(), vec![2]);
    drop(f);
    // Missing column.
    {
        let f = hdf5::File::open_rw(&path)?;
        f.group("scalars/loss")?.unlink("wall")?;
        f.close()?;
    }
    let err = log.scalar("loss").err().ok_or_else(|| Error::msg("expected an error"))?.to_string();
    assert!(err.contains("/scalars/loss/wall") && err.contains("missing"), "{err}");
    Ok(())
}

#[test]
fn create_refuses_existing_file_and_leaves_it_intact() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    w.scalar("loss", 1, 0.0, 0.0, 7.0)?;
    w.close()?;
    let before = std::fs::read(&path)?;
    let err = RunLogWriter::create(&path, &RunMeta::new("other", 1, "x", "y")).err();
    let err = err.ok_or_else(|| Error::msg("expected an error"))?.to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&path)?, before);
    assert_eq!(RunLog::open(&path)?.scalar("loss")?.value, vec![7.0]);
    Ok(())
}

#[test]
fn bad_arguments_are_refused_at_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    assert!(w.scalar("", 0, 0.0, 0.0, 0.0).is_err());
    assert!(w.scalar("a//b", 0, 0.0, 0.0, 0.0).is_err());
    assert!(w.scalar("loss/value", 0, 0.0, 0.0, 0.0).is_err());
    assert!(w.hist("h", 0, vec![0.0, 1.0], vec![1, 2]).is_err());
    assert!(w.samples(0, vec![0; 5], 1, 2, 2, 1).is_err());
    // A histogram whose bin count changes: the later row is refused at flush, the table stays.
    w.hist("h", 0, vec![0.0, 1.0, 2.0], vec![1, 2])?;
    w.flush()?;
    w.hist("h", 1, vec![0.0, 1.0], vec![1])?;
    let err = w.flush().err().ok_or_else(|| Error::msg("expected an error"))?.to_string();
    assert!(err.contains("/hist/h/counts"), "{err}");
    w.flush()?; // the error was reported once
    w.close()?;
    assert_eq!(RunLog::open(&path)?.hist("h")?.step, vec![0]);
    Ok(())
}

#[test]
fn not_a_run_log_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    std::fs::write(&path, b"not hdf5")?;
    let err = RunLog::open(&path).err().ok_or_else(|| Error::msg("expected an error"))?.to_string();
    assert!(err.contains("run.h5"), "{err}");
    let missing = dir.path().join("missing.h5");
    assert!(RunLog::open(&missing).is_err());
    assert!(RunLogWriter::open_append(&missing, 0).is_err());
    Ok(())
}

/// For checking `scripts/read_run.py` and h5py by hand:
/// `AYT_RUNLOG_DEMO=/tmp/run.h5 cargo test --lib store::tests::demo_write -- --ignored`.
#[test]
#[ignore]
fn demo_write() -> Result<()> {
    let path = std::env::var("AYT_RUNLOG_DEMO").map_err(|_| Error::msg("set AYT_RUNLOG_DEMO"))?;
    let _ = std::fs::remove_file(&path);
    let w = RunLogWriter::create(&path, &meta())?;
    for i in 0..10i64 {
        let kimg = i as f64 * 0.256;
        w.scalar("loss", i, kimg, i as f64, 1.0 / (i + 1) as f64)?;
        w.scalar("tangent/mfd/rho", i, kimg, i as f64, (i as f64).sin())?;
    }
    w.hist("tangent/mfd/rho", 9, vec![0.0, 0.5, 1.0], vec![3, 4])?;
    w.samples(9, vec![128; 4 * 8 * 8 * 3], 4, 8, 8, 3)?;
    w.eval("fid", 9, 2.304, 33.5, attrs())?;
    w.close()
}

/// After `demo_write` and an h5py append of step 10 / value 123 to `/scalars/loss`:
/// `AYT_RUNLOG_DEMO=/tmp/run.h5 cargo test --lib store::tests::demo_read_appended -- --ignored`.
#[test]
#[ignore]
fn demo_read_appended() -> Result<()> {
    let path = std::env::var("AYT_RUNLOG_DEMO").map_err(|_| Error::msg("set AYT_RUNLOG_DEMO"))?;
    let s = RunLog::open(&path)?.scalar("loss")?;
    assert_eq!(s.len(), 11);
    assert_eq!((s.step[10], s.value[10]), (10, 123.0));
    // ... and the writer can append after h5py did.
    let w = RunLogWriter::open_append(&path, 10)?;
    w.scalar("loss", 11, 3.0, 11.0, 0.5)?;
    w.close()?;
    assert_eq!(RunLog::open(&path)?.scalar("loss")?.step.last(), Some(&11));
    Ok(())
}

/// For checking crash safety by hand: writes rows in 20 ms bursts for 60 s; `kill -9` the
/// test process meanwhile, then read `$AYT_RUNLOG_DEMO` (h5py or `RunLog`).
#[test]
#[ignore]
fn demo_crash_writer() -> Result<()> {
    let path = std::env::var("AYT_RUNLOG_DEMO").map_err(|_| Error::msg("set AYT_RUNLOG_DEMO"))?;
    let _ = std::fs::remove_file(&path);
    let opts = WriterOptions { flush_interval: Duration::from_millis(20), ..WriterOptions::default() };
    let w = RunLogWriter::create_with(&path, &meta(), opts)?;
    let t0 = std::time::Instant::now();
    let mut i = 0i64;
    while t0.elapsed() < Duration::from_secs(60) {
        w.scalar("loss", i, i as f64, t0.elapsed().as_secs_f64(), i as f64)?;
        w.hist("h", i, vec![0.0, 1.0, 2.0], vec![i, i])?;
        if i % 50 == 0 {
            w.samples(i, vec![(i % 256) as u8; 16 * 32 * 32 * 3], 16, 32, 32, 3)?;
        }
        i += 1;
        std::thread::sleep(Duration::from_micros(200));
    }
    w.close()
}

#[test]
fn rows_wait_while_the_file_cannot_be_written_and_land_once_it_can() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let away = dir.path().join("elsewhere.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    w.scalar("loss", 1, 0.0, 0.0, 1.0)?;
    assert_eq!(w.flush()?, Flushed::Written);
    // The file is gone for a while (moved away, a full disk, a broken mount...).
    std::fs::rename(&path, &away)?;
    for s in 2..=4 {
        w.scalar("loss", s, 0.0, 0.0, s as f64)?;
    }
    match w.flush()? {
        Flushed::Deferred(why) => assert!(why.contains("run.h5") && why.contains("3 rows wait"), "{why}"),
        other => panic!("expected the rows to wait, got {other:?}"),
    }
    std::fs::rename(&away, &path)?;
    w.scalar("loss", 5, 0.0, 0.0, 5.0)?;
    assert_eq!(w.flush()?, Flushed::Written, "the trouble clears once a burst succeeds");
    w.close()?;
    assert_eq!(RunLog::open(&path)?.scalar("loss")?.step, vec![1, 2, 3, 4, 5], "no row lost");
    Ok(())
}

#[test]
fn past_the_memory_bound_rows_are_refused_and_counted_and_close_says_what_was_not_written() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("run.h5");
    let w = RunLogWriter::create_with(&path, &meta(), slow())?;
    std::fs::remove_file(&path)?;
    let grid = 1 << 20; // 1 MiB of images a row
    let rows = MAX_PENDING_BYTES / grid + 3;
    for s in 0..rows {
        w.samples(s as i64, vec![7; grid], 1, 1024, 1024, 1)?;
    }
    match w.flush()? {
        Flushed::Deferred(why) => assert!(why.contains("rows refused past the 64 MiB bound"), "{why}"),
        other => panic!("expected refused rows, got {other:?}"),
    }
    let e = w.close().unwrap_err().to_string();
    assert!(e.contains("run.h5") && e.contains("the last rows were not written"), "{e}");
    Ok(())
}

/// Found by `ayt-fuzz evalnet-bundle`: a dataset whose declared shape multiplies past `usize`
/// (here with a zero last, so it holds nothing) panicked in the shape product instead of being
/// refused; and one declaring far more than the file stores is refused before any buffer is made.
#[test]
fn corrupt_dataset_sizes_are_refused_naming_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sizes.h5");
    let f = hdf5::File::create(&path).unwrap();
    // hdf5 cannot create [2^40, 2^40, 0] (it multiplies too): make [0, 2^40, 2^40] and turn its
    // dims round in the file's dataspace message, as a corrupted file would have them.
    f.new_dataset::<f32>().shape([0usize, 1 << 40, 1 << 40]).create("overflows").unwrap();
    f.new_dataset::<f32>().chunk([1, 1024]).shape([1usize << 20, 1 << 20]).create("unwritten").unwrap();
    drop(f);
    let big = (1u64 << 40).to_le_bytes();
    let stored: Vec<u8> = [&0u64.to_le_bytes()[..], &big, &big].concat();
    let turned: Vec<u8> = [&big[..], &big, &0u64.to_le_bytes()].concat();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(24).position(|w| w == stored.as_slice()).expect("the dims in the file");
    bytes[at..at + 24].copy_from_slice(&turned);
    std::fs::write(&path, bytes).unwrap();
    let f = hdf5::File::open(&path).unwrap();
    let e = super::h5::read_all::<f32>(&path, &f.dataset("overflows").unwrap()).unwrap_err().to_string();
    assert!(e.contains("sizes.h5") && e.contains("/overflows") && e.contains("overflows: corrupt"), "{e}");
    let e = super::h5::read_all::<f32>(&path, &f.dataset("unwritten").unwrap()).unwrap_err().to_string();
    assert!(e.contains("/unwritten") && e.contains("declares 4398046511104 bytes") && e.contains("stores 0"), "{e}");
}

/// Reads all of a run log as `ayt view` and `ayt export` do.
fn read_whole_log(path: &std::path::Path) -> Result<()> {
    let log = RunLog::open(path)?;
    log.meta()?;
    for n in log.scalar_names()? {
        log.scalar(&n)?;
    }
    for n in log.hist_names()? {
        log.hist(&n)?;
    }
    log.last_samples().map(|_| ())
}

/// A file cut short (a full disk, an interrupted copy) is an error naming the file: a run log
/// and a tensor bundle, each cut at 24 lengths from empty to nearly whole.
#[test]
fn truncated_hdf5_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.h5");
    let w = RunLogWriter::create(&log, &meta()).unwrap();
    for s in 1..=20 {
        w.scalar("loss", s, s as f64 * 0.1, 1.0, 1.0 / s as f64).unwrap();
    }
    w.hist("tangent/mfd/rho", 5, vec![0.0, 0.5, 1.0], vec![3, 1]).unwrap();
    w.samples(20, vec![9; 2 * 4 * 4], 2, 4, 4, 1).unwrap();
    w.close().unwrap();
    read_whole_log(&log).unwrap();
    let bundle_path = dir.path().join("b.h5");
    let t = candle_core::Tensor::ones((8, 8), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    bundle::save(&bundle_path, &[("w".into(), t)], &[("kind", "phi".into())]).unwrap();

    type Reader = fn(&std::path::Path) -> Result<()>;
    let readers: [(&std::path::Path, Reader); 2] = [(&log, read_whole_log), (&bundle_path, |p| bundle::read(p).map(|_| ()))];
    for (path, read) in readers {
        let whole = std::fs::read(path).unwrap();
        let cut = dir.path().join("cut.h5");
        for k in 0..24 {
            let len = whole.len() * k / 24;
            std::fs::write(&cut, &whole[..len]).unwrap();
            let e = read(&cut).expect_err(&format!("{} cut to {len} of {} bytes read", path.display(), whole.len())).to_string();
            assert!(e.contains("cut.h5"), "cut to {len}: {e}");
        }
    }
}

/// Where the HDF5 checker is on, a run log is read in the checker and sent back whole: the
/// handle made from that answer says what the file says, errors included.
#[test]
fn a_snapshot_answers_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.h5");
    let w = RunLogWriter::create(&p, &meta()).unwrap();
    for s in 1..=5 {
        w.scalar("loss", s, s as f64, 0.5 * s as f64, 1.0 / s as f64).unwrap();
        w.scalar("tangent/mfd/rho", s, s as f64, 0.5, -0.25).unwrap();
    }
    w.hist("tangent/l2/cos", 3, vec![0.0, 0.5, 1.0], vec![3, 1]).unwrap();
    w.hist("tangent/l2/cos", 4, vec![-1.0, 0.0, 1.0], vec![0, 9]).unwrap();
    w.eval("fd_evalnet_1step", 5, 5.0, 42.5, vec![("extractor".into(), "evalnet".into())]).unwrap();
    w.samples(2, vec![7; 2 * 3 * 3], 2, 3, 3, 1).unwrap();
    w.samples(4, vec![9; 2 * 3 * 3], 2, 3, 3, 1).unwrap();
    w.close().unwrap();

    let file = RunLog::open(&p).unwrap();
    let snap = RunLog::from_snapshot(p.clone(), &file.snapshot().unwrap()).unwrap();
    assert_eq!(snap.meta().unwrap(), file.meta().unwrap());
    assert_eq!(snap.scalar_names().unwrap(), ["loss", "tangent/mfd/rho"]);
    for n in file.scalar_names().unwrap() {
        assert_eq!(snap.scalar(&n).unwrap(), file.scalar(&n).unwrap(), "{n}");
    }
    assert_eq!(snap.hist_names().unwrap(), file.hist_names().unwrap());
    assert_eq!(snap.hist("tangent/l2/cos").unwrap(), file.hist("tangent/l2/cos").unwrap());
    assert_eq!(snap.eval("fd_evalnet_1step").unwrap(), file.eval("fd_evalnet_1step").unwrap());
    assert_eq!(snap.samples().unwrap(), file.samples().unwrap());
    assert_eq!(snap.last_samples().unwrap().map(|(s, g)| (s, g.images[0])), Some((4, 9)));
    for name in ["nope", "a//b", "loss/step"] {
        let (a, b) = (snap.scalar(name).unwrap_err().to_string(), file.scalar(name).unwrap_err().to_string());
        assert_eq!(a, b, "the same error for {name:?}");
    }
    let e = RunLog::from_snapshot(p.clone(), &file.snapshot().unwrap()[..40]).unwrap_err().to_string();
    assert!(e.contains("run.h5") && e.contains("cut short"), "a cut answer is an error naming the file: {e}");
}
