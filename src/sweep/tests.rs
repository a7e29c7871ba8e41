use std::path::Path;

use super::expand::{iterations_for, SweepSpec};
use crate::config::LossKind;

const BASE: &str = r#"
name = "toy"
seed = 0
[data]
dataset = "disks"
[train]
mode = "ect"
batch_size = 16
iterations = 10
loss = "l2"
[log]
every = 8
sample_every = 0
checkpoint_every = 32
[probe]
every = 16
"#;

fn spec(sweep: &str) -> crate::Result<SweepSpec> {
    SweepSpec::parse(&format!("{BASE}\n[sweep]\n{sweep}\n"), Path::new("presets/toy-sweep.toml"))
}

fn err(sweep: &str) -> String {
    match spec(sweep).and_then(|s| s.expand(None)) {
        Ok(_) => panic!("expected an error for {sweep:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn grid_is_row_major_in_file_order_with_readable_names() {
    // seed first in the file: it varies slowest, although "seed" sorts after "batch_size"
    let s = spec("seed = [0, 1]\n\"train.batch_size\" = [8, 32]\ntrain.loss = [\"l2\", \"pseudo_huber\"]").unwrap();
    assert_eq!(s.axes.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["seed", "train.batch_size", "train.loss"]);
    let members = s.expand(None).unwrap();
    assert_eq!(members.len(), 8);
    let labels: Vec<&str> = members.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(labels[0], "000-seed=0-batch_size=8-loss=l2");
    assert_eq!(labels[1], "001-seed=0-batch_size=8-loss=pseudo_huber");
    assert_eq!(labels[2], "002-seed=0-batch_size=32-loss=l2");
    assert_eq!(labels[7], "007-seed=1-batch_size=32-loss=pseudo_huber");
    let m = &members[5];
    assert_eq!((m.preset.seed, m.preset.train.batch_size, m.preset.train.loss), (1, 8, LossKind::PseudoHuber));
    assert_eq!(m.preset.name, "toy-005-seed=1-batch_size=8-loss=pseudo_huber");
    assert_eq!(&m.overrides[..3], ["seed=1", "train.batch_size=8", "train.loss=\"pseudo_huber\""]);
    // Nothing swept stays as in the base preset, and without kimg the iterations too.
    assert!(members.iter().all(|m| m.preset.train.iterations == 10 && m.preset.log.every == 8));
}

#[test]
fn aliases_arrays_and_the_shared_init_reach_every_member() {
    let s = spec("batch_size = [4]\n\"model.channels\" = [[8, 16], [16, 32]]").unwrap();
    let members = s.expand(Some(Path::new("/sweeps/toy/init.safetensors"))).unwrap();
    assert_eq!(members[1].label, "001-batch_size=4-channels=16x32");
    assert_eq!(members[1].preset.model.channels, vec![16, 32]);
    assert!(members.iter().all(|m| m.preset.train.init.as_deref() == Some("/sweeps/toy/init.safetensors")));
}

#[test]
fn kimg_sets_iterations_and_rescales_step_intervals_to_equal_kimg() {
    let s = spec("kimg = 1.0\nbatch_size = [8, 16, 48, 64]").unwrap();
    let m = s.expand(None).unwrap();
    let iters: Vec<u64> = m.iter().map(|m| m.preset.train.iterations).collect();
    assert_eq!(iters, [125, 63, 21, 16], "ceil(1000 / batch)");
    // base batch 16: log every 8 steps = 128 images, checkpoint 512, probe 256, for everyone
    let every = |m: &super::Member| (m.preset.log.every, m.preset.log.checkpoint_every, m.preset.probe.every, m.preset.log.sample_every);
    assert_eq!(every(&m[0]), (16, 64, 32, 0));
    assert_eq!(every(&m[1]), (8, 32, 16, 0));
    assert_eq!(every(&m[3]), (2, 8, 4, 0));
    // EMA half-life in images is kept: 4 steps of batch 16 decay as much as 1 step of batch 64.
    let base = m[1].preset.train.ema_decay;
    assert_eq!(base, 0.9999, "the base batch keeps the preset's decay");
    assert!((m[3].preset.train.ema_decay - base.powi(4)).abs() < 1e-12);
    assert!((m[0].preset.train.ema_decay - base.sqrt()).abs() < 1e-12);
    assert_eq!((iterations_for(8.0, 64), iterations_for(0.1, 3), iterations_for(1.0, 1000), iterations_for(0.001, 64)), (125, 34, 1, 1));
}

#[test]
fn kimg_rescales_each_decay_of_the_ema_profiles() {
    let profiles = "[[train.ema]]\nname = \"fast\"\ndecay = 0.99\n[[train.ema]]\nname = \"edm\"\nhalf_life_kimg = 0.5\n";
    let text = format!("{}\n[sweep]\nkimg = 1.0\nbatch_size = [16, 64]\n", BASE.replace("[log]", &format!("{profiles}[log]")));
    let m = SweepSpec::parse(&text, Path::new("presets/toy-sweep.toml")).unwrap().expand(None).unwrap();
    let ema = |i: usize| m[i].preset.train.ema.clone();
    assert_eq!(ema(0)[0].decay, Some(0.99), "the base batch keeps the decay");
    assert!((ema(1)[0].decay.unwrap() - 0.99f64.powi(4)).abs() < 1e-12, "{:?}", ema(1));
    assert_eq!((ema(1)[1].half_life_kimg, ema(1)[1].decay), (Some(0.5), None), "a half-life is in images already");
    assert_eq!(m[1].preset.train.ema_decay, 0.9999, "ema_decay stays at its default beside train.ema");
    assert_eq!(ema(1).iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["fast", "edm"]);
}

#[test]
fn invalid_sweeps_are_rejected_naming_the_file_and_field() {
    let cases: [(&str, &[&str]); 11] = [
        ("\"train.batchsize\" = [8]", &["train.batchsize", "unknown key"]),
        ("seed.x = [1]", &["seed.x", "unknown key"]),
        ("seed = []", &["sweep.\"seed\"", "empty list"]),
        ("seed = 3", &["sweep.\"seed\"", "expected a list"]),
        ("batch_size = [8]\n\"train.batch_size\" = [16]", &["train.batch_size", "duplicate"]),
        ("kimg = 0\nseed = [1]", &["sweep.kimg", "positive"]),
        ("kimg = \"8\"\nseed = [1]", &["sweep.kimg", "number"]),
        ("kimg = 2.0\niterations = [5]", &["train.iterations", "kimg"]),
        ("name = [\"a\", \"b\"]", &["sweep.\"name\"", "cannot be swept"]),
        ("loss = [\"l2\", \"mfd\"]", &["member 1", "loss=mfd", "mfd.features"]),
        ("\"train.batch_size\" = [8, \"big\"]", &["member 1", "batch_size", "big"]),
    ];
    for (sweep, must) in cases {
        let e = err(sweep);
        assert!(e.contains("toy-sweep.toml"), "{sweep:?}: error should name the file: {e}");
        for m in must {
            assert!(e.contains(m), "{sweep:?}: error should mention {m:?}: {e}");
        }
    }
    let e = SweepSpec::parse(BASE, Path::new("p.toml")).unwrap_err().to_string();
    assert!(e.contains("p.toml") && e.contains("no [sweep] table"), "{e}");
    let e = err("kimg = 4.0");
    assert!(e.contains("no list to sweep"), "{e}");
    let e = err("\"train.init\" = [\"a\", \"b\"]");
    assert!(e.contains("same checkpoint"), "{e}");
}

#[test]
fn shipped_sweep_presets_expand() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|e| e == "toml") && crate::config::is_sweep_preset(&text) {
            let s = SweepSpec::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let members = s.expand(None).unwrap_or_else(|e| panic!("{e}"));
            assert!(!members.is_empty());
            n += 1;
        }
    }
    assert!(n >= 1, "expected a sweep preset in {}", dir.display());
}

#[test]
fn a_sweep_refuses_non_finite_and_out_of_range_numbers_naming_the_field() {
    // the sweep's own number, and numbers of the base preset and of swept lists
    for (sweep, key, value) in [
        ("kimg = nan\nseed = [0, 1]", "kimg", "nan"),
        ("kimg = 0\nseed = [0, 1]", "sweep.kimg", "0"),
        ("\"train.lr\" = [1e-3, nan]", "sweep.train.lr[1]", "nan"),
        ("\"train.lr\" = [1e-3, inf]", "sweep.train.lr[1]", "inf"),
        ("\"train.batch_size\" = [8, 0]", "train.batch_size", "0"),
        ("\"ect.q\" = [2.0, 0.5]", "ect.q", "0.5"),
    ] {
        let e = err(sweep);
        assert!(e.contains("toy-sweep.toml") && e.contains(key) && e.to_lowercase().contains(value), "{sweep}: {e}");
    }
    let e = SweepSpec::parse(
        &format!("{}\n[sweep]\nseed = [0, 1]\n", BASE.replace("iterations = 10", "iterations = 10\nlr = -inf")),
        Path::new("toy-sweep.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("train.lr") && e.contains("inf"), "{e}");
}

/// Found by `ayt-fuzz sweep`: a huge base batch overflowed the interval rescaling (a panic in
/// debug builds) before validation could refuse it.
#[test]
fn a_huge_base_batch_is_refused_not_overflowed() {
    let text = format!("{}\n[sweep]\nkimg = 1\nbatch_size = [8]\n", BASE.replace("batch_size = 16", "batch_size = 9223372036854775807"));
    let e = SweepSpec::parse(&text, Path::new("presets/huge.toml")).and_then(|s| s.expand(None)).unwrap_err().to_string();
    assert!(e.contains("presets/huge.toml") && e.contains("train.batch_size = 9223372036854775807"), "{e}");
}
