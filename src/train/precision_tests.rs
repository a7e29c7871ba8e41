//! `train.precision = "bf16"` and `"tf32"` against f32 on one seed: the loss curves they
//! train, and what stays f32.

use candle_core::{DType, Device};

use super::trainer::tests::tiny_preset;
use super::Trainer;
use crate::config::Precision;
use crate::data::batch::DataSource;

fn losses(precision: Precision, steps: u64) -> (Vec<f64>, Trainer) {
    let mut p = tiny_preset("ect", steps);
    p.train.precision = precision;
    let src = DataSource::disks(p.data.disks.clone(), p.seed).unwrap();
    let mut t = Trainer::new(&p, src, None, &Device::Cpu).unwrap();
    let l = (0..steps).map(|_| t.step().unwrap().loss).collect();
    (l, t)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn bf16_and_tf32_train_the_f32_runs_loss_curve_within_a_few_percent_and_keep_f32_weights() {
    let steps = 40;
    let (f32_losses, _) = losses(Precision::F32, steps);
    let (bf16_losses, t) = losses(Precision::Bf16, steps);
    for (i, (a, b)) in f32_losses.iter().zip(&bf16_losses).enumerate().filter(|(i, _)| i % 5 == 0 || *i == steps as usize - 1) {
        println!("step {:>2}: f32 {a:.5}  bf16 {b:.5}  ({:+.2}%)", i + 1, 100.0 * (b - a) / a);
    }
    // bf16 is really in effect: the first step's loss (same weights, same batch) moves by rounding
    let first = (bf16_losses[0] - f32_losses[0]).abs() / f32_losses[0];
    assert!(first > 1e-6 && first < 0.02, "step 1: f32 {} bf16 {}", f32_losses[0], bf16_losses[0]);
    // and it trains as f32 does: the last 10 steps' mean within 15% of f32's, both below the first 10's
    let (f_end, b_end) = (mean(&f32_losses[30..]), mean(&bf16_losses[30..]));
    println!("mean of steps 31-40: f32 {f_end:.5} bf16 {b_end:.5} ({:+.2}%)", 100.0 * (b_end - f_end) / f_end);
    assert!((b_end - f_end).abs() / f_end < 0.15, "f32 {f_end} bf16 {b_end}");
    assert!(b_end < mean(&bf16_losses[..10]) && f_end < mean(&f32_losses[..10]));
    // TF32 (10 mantissa bits to bf16's 7, no rounded result) stays closer still
    let (tf32_losses, _) = losses(Precision::Tf32, steps);
    let tf32_first = (tf32_losses[0] - f32_losses[0]).abs() / f32_losses[0];
    let tf32_end = mean(&tf32_losses[30..]);
    println!("tf32: step 1 {:+.4}%, mean of steps 31-40 {tf32_end:.5} ({:+.2}%)", 100.0 * tf32_first, 100.0 * (tf32_end - f_end) / f_end);
    assert!(tf32_first > 0.0 && tf32_first < 1e-3, "step 1: f32 {} tf32 {}", f32_losses[0], tf32_losses[0]);
    assert!((tf32_end - f_end).abs() / f_end < 0.15, "f32 {f_end} tf32 {tf32_end}");
    // master weights and EMA stay f32
    for (name, v) in t.model().named_vars().into_iter().chain(t.ema().named_vars()) {
        assert_eq!(v.dtype(), DType::F32, "{name}");
    }
}

#[test]
fn precision_is_written_only_when_not_f32_and_refuses_other_names() {
    let p = tiny_preset("ect", 2);
    assert!(!p.to_toml().contains("precision"));
    let text = p.to_toml().replace("[train]\n", "[train]\nprecision = \"bf16\"\n");
    let q = crate::config::Preset::parse(&text, std::path::Path::new("p.toml"), &[]).unwrap();
    assert_eq!(q.train.precision, Precision::Bf16);
    assert!(q.to_toml().contains("precision = \"bf16\""));
    let bad = crate::config::Preset::parse(&p.to_toml(), std::path::Path::new("p.toml"), &["train.precision=fp16".into()])
        .unwrap_err()
        .to_string();
    assert!(bad.contains("p.toml") && bad.contains("fp16") && bad.contains("bf16"), "{bad}");
}
