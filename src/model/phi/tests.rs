use super::*;
use crate::nn::gradcheck::{self, tests::randn};

fn tiny(device: &Device) -> Phi {
    let cfg = PhiConfig { widths: vec![4, 8], depth: 1, norm: PhiNorm::Group, groups: 2, ..PhiConfig::default() };
    Phi::new(&cfg, 1, 3, 0, device).unwrap()
}

fn vgg16_bn() -> PhiConfig {
    PhiConfig { arch: PhiArch::Vgg16Bn, ..PhiConfig::default() }
}

/// A small network with batch norm, built by phi's own code, in f64 (for gradient checks).
fn tiny_bn_f64(seed: u64) -> Phi {
    let layout = Layout { stages: vec![vec![4], vec![4, 4]], norm: NormKind::Batch };
    Phi::build(&vgg16_bn(), &layout, (1, 3), seed, &Device::Cpu, DType::F64).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

fn buffer_values(phi: &Phi) -> Vec<f64> {
    phi.buffer_vars().iter().flat_map(|(_, v)| flat(v.as_tensor())).collect()
}

#[test]
fn taps_have_the_documented_shapes() {
    let phi = tiny(&Device::Cpu);
    let x = randn(&[2, 1, 8, 8], 1).to_dtype(DType::F32).unwrap();
    let taps = phi.features(&x).unwrap();
    let shapes: Vec<Vec<usize>> = taps.iter().map(|t| t.dims().to_vec()).collect();
    assert_eq!(shapes, vec![vec![2, 4, 4, 4], vec![2, 8, 2, 2], vec![2, 3, 1, 1]]);
    assert_eq!(phi.predict(&x).unwrap().dims(), &[2, 3]);
    assert!(phi.buffer_vars().is_empty(), "group norm has no running statistics");
}

#[test]
fn vgg16_bn_taps_are_five_pools_and_the_head() {
    let phi = Phi::new(&vgg16_bn(), 3, 15, 0, &Device::Cpu).unwrap();
    let x = randn(&[2, 3, 32, 32], 1).to_dtype(DType::F32).unwrap();
    let shapes: Vec<Vec<usize>> = phi.features(&x).unwrap().iter().map(|t| t.dims().to_vec()).collect();
    let want = [[2, 64, 16, 16], [2, 128, 8, 8], [2, 256, 4, 4], [2, 512, 2, 2], [2, 512, 1, 1], [2, 15, 1, 1]];
    assert_eq!(shapes, want.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
    assert_eq!(phi.predict_train(&x).unwrap().dims(), &[2, 15]);
    // thirteen batch norms: their running statistics are buffers, the rest are parameters
    let buffers = phi.buffer_vars();
    assert_eq!(buffers.len(), 26);
    assert!(buffers.iter().all(|(n, _)| n.ends_with(".norm.running_mean") || n.ends_with(".norm.running_var")));
    let params = crate::model::precond::named_vars(&phi.varmap);
    assert!(params.iter().all(|(n, _)| !n.contains("running")));
    // VGG16-BN's convolutions and batch norms (torchvision's `features`) plus a 512 -> 15 head
    let count: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
    assert_eq!(count, 14_714_688 + 2 * 4224 + 512 * 15 + 15);
}

#[test]
fn inference_mode_uses_the_running_statistics_and_changes_nothing() {
    let phi = tiny_bn_f64(3);
    let x = randn(&[4, 1, 8, 8], 4);
    let start = buffer_values(&phi);
    let eval = flat(&phi.predict(&x).unwrap());
    assert_eq!(buffer_values(&phi), start, "inference changed the running statistics");
    let train = flat(&phi.predict_train(&x).unwrap());
    assert_ne!(buffer_values(&phi), start, "a train-mode forward must update the running statistics");
    assert_ne!(train, eval, "batch statistics and fresh running statistics (0, 1) normalise differently");
    // MFD, and a frozen copy, run in inference mode: they neither change nor ignore the buffers
    let moved = buffer_values(&phi);
    let y = randn(&[4, 1, 8, 8], 5);
    let d = flat(&mfd(&phi, &x, &y, 1e-5).unwrap());
    assert_eq!(flat(&mfd(&phi.frozen(), &x, &y, 1e-5).unwrap()), d);
    assert_eq!(buffer_values(&phi), moved);
    assert_ne!(flat(&phi.predict(&x).unwrap()), eval, "inference reads the updated running statistics");
}

#[test]
fn mfd_is_zero_on_identical_inputs_and_positive_otherwise() {
    let phi = tiny(&Device::Cpu);
    let x = randn(&[2, 1, 8, 8], 2).to_dtype(DType::F32).unwrap();
    let y = randn(&[2, 1, 8, 8], 3).to_dtype(DType::F32).unwrap();
    let same = mfd(&phi, &x, &x, 1e-5).unwrap().to_vec1::<f32>().unwrap();
    assert!(same.iter().all(|v| v.abs() < 1e-6), "{same:?}");
    let diff = mfd(&phi, &x, &y, 1e-5).unwrap().to_vec1::<f32>().unwrap();
    assert!(diff.iter().all(|v| *v > 0.0), "{diff:?}");
}

#[test]
fn pseudo_huber_per_channel_value() {
    // one sample, two channels: ||(3,4)|| = 5 and ||(0,0)|| = 0; eps = 1
    let d = Tensor::new(&[3.0f64, 4.0, 0.0, 0.0], &Device::Cpu).unwrap().reshape((1, 2, 1, 2)).unwrap();
    let v = pseudo_huber_per_channel(&d, 1.0).unwrap().to_vec1::<f64>().unwrap();
    assert!((v[0] - (26f64.sqrt() - 1.0)).abs() < 1e-12);
}

fn check_mfd_gradient(phi: &Phi, size: usize, what: &str) {
    let y = randn(&[2, 1, size, size], 7);
    let f = |ts: &[Tensor]| mfd(phi, &ts[0], &y, 1e-5).map_err(|e| candle_core::Error::Msg(e.to_string()));
    let g = gradcheck::check(&f, &[randn(&[2, 1, size, size], 6)], 40, 1e-6, 8).unwrap();
    assert!(g.probes > 0 && g.max_err < 1e-5, "{what}, size {size}: MFD input gradient error {}", g.max_err);
}

#[test]
fn mfd_input_gradient_matches_finite_differences_on_odd_and_even_sizes() {
    // f64 copy of a tiny phi: the gradient passes conv, group norm, ReLU, max-pool, mean, head.
    let cfg = PhiConfig { widths: vec![4, 4], depth: 1, norm: PhiNorm::Group, groups: 2, ..PhiConfig::default() };
    let phi = Phi::build(&cfg, &cfg.layout(), (1, 3), 5, &Device::Cpu, DType::F64).unwrap();
    for size in [8, 9, 7] {
        check_mfd_gradient(&phi, size, "group norm");
    }
}

#[test]
fn mfd_input_gradient_through_batch_norm_in_inference_mode_matches_finite_differences() {
    // Running statistics away from (0, 1): a few train-mode forwards first.
    let phi = tiny_bn_f64(5);
    for seed in 0..4 {
        phi.features_train(&randn(&[4, 1, 8, 8], 100 + seed).affine(2.0, 0.5).unwrap()).unwrap();
    }
    let stats = buffer_values(&phi);
    assert!(stats.iter().any(|v| (v.abs() - 1.0).abs() > 0.05 && v.abs() > 0.05), "{stats:?}");
    for size in [8, 9, 7] {
        check_mfd_gradient(&phi, size, "batch norm");
        check_mfd_gradient(&phi.frozen(), size, "batch norm, frozen");
    }
    assert_eq!(buffer_values(&phi), stats, "the gradient checks ran in inference mode");
}

#[test]
fn vgg16_bn_mfd_input_gradient_in_inference_mode_matches_finite_differences() {
    // The full network in f64, its running statistics moved by two train-mode batches.
    let cfg = vgg16_bn();
    let phi = Phi::build(&cfg, &cfg.layout(), (3, 15), 9, &Device::Cpu, DType::F64).unwrap();
    for seed in 0..2 {
        phi.features_train(&randn(&[4, 3, 32, 32], 200 + seed)).unwrap();
    }
    let phi = phi.frozen();
    let y = randn(&[2, 3, 32, 32], 11);
    let f = |ts: &[Tensor]| mfd(&phi, &ts[0], &y, 1e-5).map_err(|e| candle_core::Error::Msg(e.to_string()));
    let g = gradcheck::check(&f, &[randn(&[2, 3, 32, 32], 10)], 12, 1e-6, 12).unwrap();
    assert!(g.probes == 12 && g.max_err < 1e-5, "vgg16_bn: MFD input gradient error {}", g.max_err);
}
