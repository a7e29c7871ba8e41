//! EMA profiles through the trainer: every profile averaged with its own decay, checkpointed under
//! its own prefix, restored bit-exactly; the default profile exactly the single EMA of before.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::trainer::tests::tiny_preset;
use super::{checkpoint, Ema, Trainer};
use crate::config::Preset;
use crate::data::batch::DataSource;
use crate::model::Denoiser;
use crate::paths::RunDir;

/// `tiny_preset` with `train.ema` = `profiles` (an inline TOML array).
fn with_profiles(mode: &str, iterations: u64, profiles: &str) -> Preset {
    let sets = ["train.ema_decay=0.9999".to_string(), format!("train.ema={profiles}")];
    Preset::parse(&tiny_preset(mode, iterations).to_toml(), Path::new("tiny.toml"), &sets).unwrap()
}

const FAST_SLOW: &str = r#"[{name = "fast", decay = 0.5}, {name = "slow", decay = 0.99}]"#;

fn trainer(p: &Preset) -> Trainer {
    let src = DataSource::disks(p.data.disks.clone(), p.seed).unwrap();
    Trainer::new(p, src, None, &Device::Cpu).unwrap()
}

fn steps(t: &mut Trainer, n: usize) {
    for _ in 0..n {
        t.step().unwrap();
    }
}

/// Every variable's values, by name.
fn values(d: &Denoiser) -> Vec<(String, Vec<f32>)> {
    d.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

/// Every tensor of a checkpoint as bits, by name.
fn checkpoint_bits(run: &RunDir, step: u64) -> Vec<(String, Vec<u32>)> {
    let (tensors, _): (HashMap<String, Tensor>, checkpoint::TrainState) = checkpoint::load(run, step).unwrap();
    let mut out: Vec<(String, Vec<u32>)> = tensors
        .into_iter()
        .map(|(n, t)| {
            let v = t.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
            (n, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn two_profiles_average_with_their_own_decay() {
    let p = with_profiles("ect", 4, FAST_SLOW);
    let mut t = trainer(&p);
    t.step().unwrap();
    let model1 = values(t.model());
    for (profile, ema) in t.emas() {
        assert_eq!(values(ema), model1, "{}: the first step copies the weights", profile.name);
    }
    t.step().unwrap();
    let model2 = values(t.model());
    let names: Vec<&str> = t.emas().iter().map(|(p, _)| p.name.as_str()).collect();
    assert_eq!(names, ["fast", "slow"]);
    // By hand, in f64: ema = d * model1 + (1 - d) * model2.
    for (profile, ema) in t.emas() {
        let d = profile.decay.unwrap();
        for ((name, e), ((_, m1), (_, m2))) in values(ema).iter().zip(model1.iter().zip(&model2)) {
            for ((e, a), b) in e.iter().zip(m1).zip(m2) {
                let want = d * *a as f64 + (1.0 - d) * *b as f64;
                assert!((*e as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()), "{}: {name}: {e} vs {want}", profile.name);
            }
        }
    }
    let (fast, slow) = (values(&t.emas()[0].1), values(&t.emas()[1].1));
    assert_ne!(fast, slow);

    // The checkpoint: the default (first) profile under `ema.`, the other under `ema[slow].`.
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    t.save_checkpoint(&run).unwrap();
    let (tensors, _): (HashMap<String, Tensor>, checkpoint::TrainState) = checkpoint::load(&run, 2).unwrap();
    let (name, want) = &slow[0];
    assert_eq!(&tensors[&format!("ema[slow].{name}")].flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
    assert_eq!(&tensors[&format!("ema.{name}")].flatten_all().unwrap().to_vec1::<f32>().unwrap(), &fast[0].1);
    assert!(!tensors.keys().any(|k| k.starts_with("ema[fast]")), "the default is kept once, under ema.");
}

/// The default profile (no `train.ema`) is the single EMA of before: `Ema::update` with
/// `train.ema_decay` after every step but the first, which copies; bit for bit.
#[test]
fn the_default_profile_is_the_single_ema_of_before_bit_for_bit() {
    let p = tiny_preset("ect", 5);
    let mut t = trainer(&p);
    let before = Denoiser::new(&p.model, 1, p.sampling.sigma_data, p.seed, &Device::Cpu).unwrap();
    let vars = |d: &Denoiser| d.named_vars().into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    for step in 0..5 {
        t.step().unwrap();
        if step == 0 {
            super::ema::copy_from(&vars(&before), &vars(t.model())).unwrap();
        } else {
            Ema::new(p.train.ema_decay).unwrap().update(&vars(&before), &vars(t.model())).unwrap();
        }
    }
    assert_eq!(t.emas().len(), 1);
    assert_eq!(t.emas()[0].0.name, "ema");
    assert_eq!(values(t.ema()), values(&before));
    // The same profile spelled out in train.ema is the same run.
    let spelled = with_profiles("ect", 5, r#"[{name = "ema", decay = 0.9}]"#);
    let mut u = trainer(&spelled);
    steps(&mut u, 5);
    assert_eq!(values(u.ema()), values(&before));
}

/// Resuming a run with two profiles (one of them EDM's half-life with ramp-up, whose decay
/// depends on the images seen) gives the checkpoint of an uninterrupted run, bit for bit.
#[test]
fn resume_with_two_profiles_is_bit_exact() {
    let p = with_profiles("ect", 6, r#"[{name = "a", decay = 0.9}, {name = "edm", half_life_kimg = 0.05, rampup_ratio = 0.5}]"#);
    let (straight_dir, resumed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight_run, resumed_run) = (RunDir::new(straight_dir.path()), RunDir::new(resumed_dir.path()));
    let mut straight = trainer(&p);
    steps(&mut straight, 6);
    straight.save_checkpoint(&straight_run).unwrap();

    let mut first = trainer(&p);
    steps(&mut first, 3);
    first.save_checkpoint(&resumed_run).unwrap();
    drop(first);
    let mut resumed = trainer(&p);
    assert!(resumed.restore(&resumed_run, 3).unwrap().is_empty(), "every profile is in the checkpoint");
    steps(&mut resumed, 3);
    resumed.save_checkpoint(&resumed_run).unwrap();

    let (a, b) = (checkpoint_bits(&straight_run, 6), checkpoint_bits(&resumed_run, 6));
    assert!(a.iter().any(|(n, _)| n.starts_with("ema[edm].")) && a.iter().any(|(n, _)| n.starts_with("ema.")));
    assert_eq!(a.iter().map(|(n, _)| n).collect::<Vec<_>>(), b.iter().map(|(n, _)| n).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs after resume");
    }
    let ema = |prefix: &str| -> Vec<Vec<u32>> { a.iter().filter(|(n, _)| n.starts_with(prefix)).map(|(_, v)| v.clone()).collect() };
    assert_ne!(ema("ema."), ema("ema[edm]."), "the two profiles differ");
}

/// A checkpoint written before a profile was added (an old run, or the profile added to the run's
/// preset by hand) resumes with that profile started from the checkpoint's default EMA.
#[test]
fn a_profile_missing_from_the_checkpoint_starts_from_its_default_ema() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let old = tiny_preset("ect", 4);
    let mut t = trainer(&old);
    steps(&mut t, 2);
    t.save_checkpoint(&run).unwrap();
    let default_ema = values(t.ema());

    let p = with_profiles("ect", 4, r#"[{name = "ema", decay = 0.9}, {name = "slow", decay = 0.999}]"#);
    let mut resumed = trainer(&p);
    assert_eq!(resumed.restore(&run, 2).unwrap(), ["slow"]);
    assert_eq!(values(&resumed.emas()[1].1), default_ema);
    assert_eq!(values(resumed.ema()), default_ema);
    resumed.step().unwrap();
    assert_ne!(values(&resumed.emas()[1].1), values(resumed.ema()), "then each follows its own decay");
}
