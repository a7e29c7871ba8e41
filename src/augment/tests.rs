//! Each op against a known parameter, label layouts, determinism.

use std::f32::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::data::disks::{render, DiskParams, DisksConfig};

fn augmenter(groups: &[Group], channels: usize) -> Augmenter {
    Augmenter::new(AugmentConfig { p: 1.0, groups: groups.to_vec(), ..Default::default() }, channels).unwrap()
}

fn all(channels: usize) -> Augmenter {
    augmenter(&[Group::Geometric, Group::Color, Group::Degradation], channels)
}

/// Apply one parameter set to one image.
fn one(aug: &Augmenter, img: &[f32], c: usize, h: usize, w: usize, p: OpParams) -> (Vec<f32>, Vec<f32>) {
    aug.apply_params(img, 1, c, h, w, &[p])
}

fn random_image(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn label(aug: &Augmenter, labels: &[f32], name: &str) -> f32 {
    labels[aug.label_names().iter().position(|n| n == name).unwrap_or_else(|| panic!("no label {name}"))]
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "index {i}: {x} vs {y}");
    }
}

#[test]
fn label_names_and_counts_per_group() {
    let names = all(3).label_names();
    let want = [
        "iso_scale",
        "rot_cos",
        "rot_sin",
        "aniso_cos",
        "aniso_sin",
        "tx",
        "ty",
        "brightness",
        "contrast",
        "hue_cos",
        "hue_sin",
        "saturation",
        "blur_sigma",
        "mixup",
        "shell_noise",
    ];
    assert_eq!(names, want);
    assert_eq!(all(3).n_labels(), 15);
    assert_eq!(all(1).n_labels(), 12);
    assert!(!all(1).label_names().iter().any(|n| n.starts_with("hue") || n == "saturation"));
    for (groups, c, n) in [
        (&[Group::Geometric][..], 3, 7),
        (&[Group::Geometric][..], 1, 7),
        (&[Group::Color][..], 3, 5),
        (&[Group::Color][..], 1, 2),
        (&[Group::Degradation][..], 3, 3),
        (&[Group::Degradation][..], 1, 3),
        (&[Group::Degradation, Group::Geometric][..], 3, 10),
    ] {
        let a = augmenter(groups, c);
        assert_eq!(a.n_labels(), n, "{groups:?} c={c}");
        assert_eq!(a.label_names().len(), n);
    }
    let g = |a: &Augmenter| a.label_groups().into_iter().map(|(n, r)| (n, r.start, r.end)).collect::<Vec<_>>();
    let s = |x: &str| x.to_string();
    assert_eq!(g(&all(3)), vec![(s("geometric"), 0, 7), (s("color"), 7, 12), (s("degradation"), 12, 15)]);
    assert_eq!(g(&all(1)), vec![(s("geometric"), 0, 7), (s("color"), 7, 9), (s("degradation"), 9, 12)]);
    // Groups listed out of order still give labels in table order.
    let a = augmenter(&[Group::Degradation, Group::Geometric], 1);
    assert_eq!(g(&a), vec![(s("geometric"), 0, 7), (s("degradation"), 7, 10)]);
    assert_eq!(a.label_names()[7], "blur_sigma");
}

#[test]
fn config_serde_defaults_and_validation() {
    let cfg: AugmentConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, AugmentConfig::default());
    assert_eq!(cfg.p, 0.15);
    assert_eq!(cfg.n_rampup, 0);
    assert_eq!(cfg.groups, vec![Group::Geometric, Group::Color, Group::Degradation]);
    let cfg: AugmentConfig = toml::from_str("p = 0.3\nn_rampup = 100\ngroups = [\"colour\", \"degradation\"]").unwrap();
    assert_eq!(cfg.groups, vec![Group::Color, Group::Degradation]);
    assert!(toml::from_str::<AugmentConfig>("q = 1").is_err(), "unknown field accepted");
    assert!(toml::from_str::<AugmentConfig>("groups = [\"warp\"]").is_err());
    let bad = |cfg: AugmentConfig| Augmenter::new(cfg, 1).is_err();
    assert!(bad(AugmentConfig { p: 1.5, ..Default::default() }));
    assert!(bad(AugmentConfig { p: -0.1, ..Default::default() }));
    assert!(bad(AugmentConfig { groups: vec![], ..Default::default() }));
    assert!(bad(AugmentConfig { groups: vec![Group::Color, Group::Color], ..Default::default() }));
    assert!(bad(AugmentConfig { exclude: vec!["spin".into()], ..Default::default() }));
    assert!(Augmenter::new(AugmentConfig::default(), 0).is_err());
}

#[test]
fn probability_ramps_linearly() {
    let cfg = AugmentConfig { n_rampup: 100, ..Default::default() };
    assert_eq!(cfg.probability(0), 0.0);
    assert!((cfg.probability(50) - 0.075).abs() < 1e-7);
    assert!((cfg.probability(100) - 0.15).abs() < 1e-7);
    assert!((cfg.probability(10_000) - 0.15).abs() < 1e-7);
    assert!((AugmentConfig::default().probability(0) - 0.15).abs() < 1e-7);
    // Fully ramped-down p: nothing fires at iteration 0 even with p = 1.
    let aug = Augmenter::new(AugmentConfig { p: 1.0, n_rampup: 10, ..Default::default() }, 3).unwrap();
    let x = random_image(2 * 3 * 8 * 8, 1);
    let (y, l) = aug.apply(&x, 2, 3, 8, 8, 0, &mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(y, x);
    assert!(l.iter().all(|&v| v == 0.0));
}

#[test]
fn reflect_mirrors_without_repeating_the_edge() {
    let r: Vec<usize> = (-6..11).map(|i| reflect(i, 5)).collect();
    assert_eq!(r, vec![2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2]);
    assert_eq!(reflect(-3, 1), 0);
    assert_eq!(reflect(7, 1), 0);
}

#[test]
fn rotation_by_90_degrees_moves_a_pixel_and_permutes_the_grid() {
    let (h, w) = (16, 16);
    let aug = all(1);
    let mut img = vec![-1f32; h * w];
    img[7 * w + 10] = 1.0; // (x, y) = (10, 7): 2.5 px right of and 0.5 px above the centre (8, 8)
    let (out, labels) = one(&aug, &img, 1, h, w, OpParams { rotation: Some(PI / 2.0), ..Default::default() });
    assert!((label(&aug, &labels, "rot_cos") - -1.0).abs() < 1e-6);
    assert!((label(&aug, &labels, "rot_sin") - 1.0).abs() < 1e-6);
    // +90 degrees with y down: (dx, dy) = (2.5, -0.5) -> (0.5, 2.5), i.e. pixel (8, 10).
    let mut want = vec![-1f32; h * w];
    want[10 * w + 8] = 1.0;
    assert_close(&out, &want, 1e-5);
    // In general pixel (x, y) lands on (W - 1 - y, x).
    let img = random_image(h * w, 2);
    let (out, _) = one(&aug, &img, 1, h, w, OpParams { rotation: Some(PI / 2.0), ..Default::default() });
    for y in 0..h {
        for x in 0..w {
            assert!((out[x * w + (w - 1 - y)] - img[y * w + x]).abs() < 1e-5);
        }
    }
    // Rotation by 0: identity, labels (0, 0).
    let (out, labels) = one(&aug, &img, 1, h, w, OpParams { rotation: Some(0.0), ..Default::default() });
    assert_eq!(out, img);
    assert!(labels.iter().all(|&v| v == 0.0));
    // Rotation by pi/3: labels (cos - 1, sin).
    let (_, labels) = one(&aug, &img, 1, h, w, OpParams { rotation: Some(PI / 3.0), ..Default::default() });
    assert!((label(&aug, &labels, "rot_cos") - -0.5).abs() < 1e-6);
    assert!((label(&aug, &labels, "rot_sin") - 3f32.sqrt() / 2.0).abs() < 1e-6);
}

#[test]
fn rotation_acts_on_all_channels_alike() {
    let (h, w) = (8, 8);
    let plane = random_image(h * w, 3);
    let img: Vec<f32> = [plane.clone(), plane.iter().map(|v| -v).collect(), plane.iter().map(|v| v * 0.5).collect()].concat();
    let p = OpParams { rotation: Some(0.7), ..Default::default() };
    let (rgb, _) = one(&all(3), &img, 3, h, w, p.clone());
    let (grey, _) = one(&all(1), &plane, 1, h, w, p);
    assert_close(&rgb[..h * w], &grey, 1e-6);
    assert_close(&rgb[h * w..2 * h * w], &grey.iter().map(|v| -v).collect::<Vec<_>>(), 1e-6);
    assert_close(&rgb[2 * h * w..], &grey.iter().map(|v| v * 0.5).collect::<Vec<_>>(), 1e-6);
}

#[test]
fn integer_translation_shifts_exactly() {
    let (h, w) = (16, 16);
    let aug = all(1);
    let img = random_image(h * w, 4);
    // w0 = 1 -> 2 px right, w1 = -0.5 -> 1 px up.
    let (out, labels) = one(&aug, &img, 1, h, w, OpParams { translation: Some([1.0, -0.5]), ..Default::default() });
    assert_eq!(label(&aug, &labels, "tx"), 1.0);
    assert_eq!(label(&aug, &labels, "ty"), -0.5);
    for y in 0..h - 1 {
        for x in 2..w {
            assert_eq!(out[y * w + x], img[(y + 1) * w + x - 2], "pixel ({x}, {y})");
        }
    }
    // Outside, reflect padding: column 1 reads input column 1 mirrored around 0, i.e. -1 -> 1.
    assert_eq!(out[1], img[w + 1]); // x = 1 reads x - 2 = -1 -> 1
    assert_eq!(out[(h - 1) * w + 5], img[(h - 2) * w + 3]); // y = 15 reads y + 1 = 16 -> 14
}

/// Radius of a disk image from its area: sum of (v + 1) / 2 = pi r^2.
fn disk_radius(img: &[f32]) -> f32 {
    let area: f32 = img.iter().map(|v| (v + 1.0) / 2.0).sum();
    (area / PI).sqrt()
}

#[test]
fn iso_scale_multiplies_the_disk_radius_by_2_pow_0_2w() {
    let cfg = DisksConfig { size: 40, radius_min: 2.0, radius_max: 10.0, margin: 1.0, tau: 0.5 };
    let img = render(&cfg, &DiskParams { cx: 20.0, cy: 20.0, radius: 6.0 });
    let r0 = disk_radius(&img);
    assert!((r0 - 6.0).abs() < 0.1, "{r0}");
    let aug = all(1);
    for w in [1.0f32, -1.5, 2.0] {
        let (out, labels) = one(&aug, &img, 1, 40, 40, OpParams { iso_scale: Some(w), ..Default::default() });
        assert_eq!(label(&aug, &labels, "iso_scale"), w);
        let want = r0 * 2f32.powf(0.2 * w);
        let got = disk_radius(&out);
        assert!((got - want).abs() < 0.02 * want, "w = {w}: radius {got}, expected {want}");
        // The centre stays at the image centre.
        let mass: f32 = out.iter().map(|v| (v + 1.0) / 2.0).sum();
        let cx: f32 = out.iter().enumerate().map(|(i, v)| (v + 1.0) / 2.0 * ((i % 40) as f32 + 0.5)).sum::<f32>() / mass;
        assert!((cx - 20.0).abs() < 1e-3, "{cx}");
    }
}

#[test]
fn aniso_scale_matrix_and_labels() {
    let s = 2f64.powf(0.2);
    let fwd = geometric::forward(&OpParams { aniso_scale: Some(Aniso { w: 1.0, r: 0.0 }), ..Default::default() }, 8, 8).unwrap();
    let close = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6; // r is f32
    assert!(close(fwd.apply([1.0, 1.0]), [s, 1.0 / s]));
    let fwd = geometric::forward(&OpParams { aniso_scale: Some(Aniso { w: 1.0, r: PI / 2.0 }), ..Default::default() }, 8, 8).unwrap();
    assert!(close(fwd.apply([1.0, 1.0]), [1.0 / s, s]), "{:?}", fwd.apply([1.0, 1.0]));
    let aug = all(1);
    let img = random_image(64, 5);
    let (_, labels) = one(&aug, &img, 1, 8, 8, OpParams { aniso_scale: Some(Aniso { w: 2.0, r: PI / 6.0 }), ..Default::default() });
    assert!((label(&aug, &labels, "aniso_cos") - 2.0 * (PI / 6.0).cos()).abs() < 1e-6);
    assert!((label(&aug, &labels, "aniso_sin") - 1.0).abs() < 1e-6);
}

#[test]
fn equivalent_aniso_draws_give_one_image_and_one_double_angle_label() {
    // (w, r), (w, r + pi) and (-w, r + pi/2) stretch along the same axes
    let draws = [(1.5f32, 0.4f32), (1.5, 0.4 + PI), (-1.5, 0.4 + PI / 2.0)];
    let img = random_image(12 * 12, 8);
    let run = |aniso_label| {
        let aug = Augmenter::new(AugmentConfig { p: 1.0, groups: vec![Group::Geometric], aniso_label, ..Default::default() }, 1).unwrap();
        draws.map(|(w, r)| one(&aug, &img, 1, 12, 12, OpParams { aniso_scale: Some(Aniso { w, r }), ..Default::default() }))
    };
    let method = run(AnisoLabel::Method);
    let double = run(AnisoLabel::DoubleAngle);
    for i in 1..3 {
        assert_close(&method[i].0, &method[0].0, 1e-4);
        assert_close(&double[i].1, &double[0].1, 1e-5);
    }
    // method.md's labels: opposite for r + pi
    let aniso = |l: &[f32]| [l[3], l[4]];
    assert!((aniso(&method[1].1)[0] + aniso(&method[0].1)[0]).abs() < 1e-5 && aniso(&method[0].1)[0].abs() > 0.5);
    assert!((aniso(&double[0].1)[0] - 1.5 * 0.8f32.cos()).abs() < 1e-5);
}

#[test]
fn geometric_ops_compose_in_table_order() {
    // Scale first, translation last: the origin goes to exactly the shift, which is not scaled.
    let p = OpParams { iso_scale: Some(5.0), rotation: Some(1.0), translation: Some([1.0, 2.0]), ..Default::default() };
    let fwd = geometric::forward(&p, 8, 16).unwrap();
    let q = fwd.apply([0.0, 0.0]);
    assert!((q[0] - 2.0).abs() < 1e-12 && (q[1] - 2.0).abs() < 1e-12, "{q:?}"); // 1 * 0.125 * 16, 2 * 0.125 * 8
                                                                                // (1, 0) is scaled by 2, rotated by 1 rad, then shifted.
    let q = fwd.apply([1.0, 0.0]);
    assert!((q[0] - (2.0 + 2.0 * 1f64.cos())).abs() < 1e-6 && (q[1] - (2.0 + 2.0 * 1f64.sin())).abs() < 1e-6, "{q:?}");
    let inv = fwd.inverse().unwrap();
    let back = inv.apply(fwd.apply([0.3, -0.7]));
    assert!((back[0] - 0.3).abs() < 1e-12 && (back[1] + 0.7).abs() < 1e-12);
    assert!(geometric::forward(&OpParams { brightness: Some(1.0), ..Default::default() }, 8, 8).is_none());
}

#[test]
fn brightness_and_contrast_exact_values() {
    let aug = all(1);
    let img = vec![-1.0f32, -0.5, 0.0, 0.5]; // 2x2, mean -0.25
    let (out, labels) = one(&aug, &img, 1, 2, 2, OpParams { brightness: Some(0.5), ..Default::default() });
    assert_eq!(label(&aug, &labels, "brightness"), 0.5);
    assert_close(&out, &[-0.9, -0.4, 0.1, 0.6], 1e-6);
    // Contrast w = 2: times 2 about the mean -0.25.
    let (out, labels) = one(&aug, &img, 1, 2, 2, OpParams { contrast: Some(2.0), ..Default::default() });
    assert_eq!(label(&aug, &labels, "contrast"), 2.0);
    assert_close(&out, &[-1.75, -0.75, 0.25, 1.25], 1e-6);
    // Both: brightness first, contrast about the new mean (-0.15); the mean moves by 0.2 w only.
    let (out, _) = one(&aug, &img, 1, 2, 2, OpParams { brightness: Some(0.5), contrast: Some(-2.0), ..Default::default() });
    assert_close(&out, &[-0.525, -0.275, -0.025, 0.225], 1e-6);
    // RGB: the same maps on every channel, about the mean over all channels.
    let aug3 = all(3);
    let rgb = [img.clone(), vec![0.25; 4], vec![-0.25; 4]].concat(); // mean (-0.25 + 0.25 - 0.25) / 3
    let m = -0.25f32 / 3.0;
    let (out, labels) = one(&aug3, &rgb, 3, 2, 2, OpParams { brightness: Some(-1.0), contrast: Some(1.0), ..Default::default() });
    let c = 2f32.sqrt();
    let want: Vec<f32> = rgb.iter().map(|v| (m - 0.2) + c * (v - m)).collect();
    assert_close(&out, &want, 1e-6);
    assert_eq!(labels[7..12], [-1.0, 1.0, 0.0, 0.0, 0.0]);
}

fn luma(img: &[f32], hw: usize, i: usize) -> f32 {
    (img[i] + img[hw + i] + img[2 * hw + i]) / 3.0
}

#[test]
fn hue_rotation_keeps_luma_and_full_turn_is_identity() {
    let (h, w) = (6, 5);
    let hw = h * w;
    let aug = all(3);
    let img: Vec<f32> = random_image(3 * hw, 6).iter().map(|v| v * 0.5).collect();
    let (out, labels) = one(&aug, &img, 3, h, w, OpParams { hue: Some(1.0), ..Default::default() });
    assert!((label(&aug, &labels, "hue_cos") - (1f32.cos() - 1.0)).abs() < 1e-6);
    assert!((label(&aug, &labels, "hue_sin") - 1f32.sin()).abs() < 1e-6);
    let mut moved = 0f32;
    for i in 0..hw {
        assert!((luma(&out, hw, i) - luma(&img, hw, i)).abs() < 1e-5);
        // A rotation: the chroma keeps its length.
        let chroma = |x: &[f32]| (0..3).map(|c| (x[c * hw + i] - luma(x, hw, i)).powi(2)).sum::<f32>().sqrt();
        assert!((chroma(&out) - chroma(&img)).abs() < 1e-5);
        moved = moved.max((0..3).map(|c| (out[c * hw + i] - img[c * hw + i]).abs()).fold(0.0, f32::max));
    }
    assert!(moved > 0.1, "hue rotation by 1 rad changed nothing");
    // Rotating pure red by 120 degrees (right-handed about (1,1,1)) gives pure green.
    let red = [0.9f32, -0.3, -0.3];
    let (out, _) = one(&aug, &red, 3, 1, 1, OpParams { hue: Some(2.0 * PI / 3.0), ..Default::default() });
    assert_close(&out, &[-0.3, 0.9, -0.3], 1e-5);
    let (out, labels) = one(&aug, &img, 3, h, w, OpParams { hue: Some(2.0 * PI), ..Default::default() });
    assert_close(&out, &img, 1e-5);
    assert!(labels.iter().all(|v| v.abs() < 1e-6));
}

#[test]
fn saturation_to_grey_and_doubled() {
    let (h, w) = (4, 4);
    let hw = h * w;
    let aug = all(3);
    let img: Vec<f32> = random_image(3 * hw, 7).iter().map(|v| v * 0.4).collect();
    let (out, labels) = one(&aug, &img, 3, h, w, OpParams { saturation: Some(-40.0), ..Default::default() });
    assert_eq!(label(&aug, &labels, "saturation"), -40.0);
    for i in 0..hw {
        let g = luma(&img, hw, i);
        for c in 0..3 {
            assert!((out[c * hw + i] - g).abs() < 1e-6, "pixel {i} channel {c}");
        }
    }
    let (out, _) = one(&aug, &img, 3, h, w, OpParams { saturation: Some(1.0), ..Default::default() });
    for i in 0..hw {
        let g = luma(&img, hw, i);
        for c in 0..3 {
            assert!((out[c * hw + i] - (g + 2.0 * (img[c * hw + i] - g))).abs() < 1e-5);
        }
    }
}

#[test]
fn colour_ops_on_one_channel_ignore_hue_and_saturation() {
    let aug = all(1);
    let img = random_image(16, 8);
    let (out, labels) = one(&aug, &img, 1, 4, 4, OpParams { hue: Some(1.0), saturation: Some(-5.0), ..Default::default() });
    assert_eq!(out, img);
    assert!(labels.iter().all(|&v| v == 0.0));
}

#[test]
fn blur_identity_mean_and_symmetry() {
    let aug = all(1);
    let img = random_image(12 * 9, 9);
    let (out, labels) = one(&aug, &img, 1, 12, 9, OpParams { blur: Some(0.0), ..Default::default() });
    assert_eq!(out, img);
    assert_eq!(label(&aug, &labels, "blur_sigma"), 0.0);
    // A constant image stays constant (the kernel sums to 1, reflect padding).
    let flat = vec![0.3f32; 7 * 7];
    let (out, labels) = one(&aug, &flat, 1, 7, 7, OpParams { blur: Some(2.5), ..Default::default() });
    assert_eq!(label(&aug, &labels, "blur_sigma"), 2.5);
    assert_close(&out, &flat, 1e-6);
    // An impulse spreads into the separable Gaussian, symmetrically.
    let n = 21;
    let mut imp = vec![0f32; n * n];
    imp[10 * n + 10] = 1.0;
    let (out, _) = one(&aug, &imp, 1, n, n, OpParams { blur: Some(1.5), ..Default::default() });
    let k = degrade::gaussian_kernel(1.5);
    assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    for dy in -5i32..=5 {
        for dx in -5i32..=5 {
            let at = |x: i32, y: i32| out[(10 + y) as usize * n + (10 + x) as usize];
            let v = at(dx, dy);
            assert!((v - k[(dx + 5) as usize] * k[(dy + 5) as usize]).abs() < 1e-7);
            assert_eq!(v, at(-dx, dy));
            assert_eq!(v, at(dx, -dy));
            assert!((v - at(dy, dx)).abs() < 1e-7);
        }
    }
    assert!(out[10 * n + 16] == 0.0 && out[4 * n + 10] == 0.0, "support wider than 11 taps");
}

#[test]
fn mixup_is_exact() {
    let aug = all(3);
    let (c, h, w) = (3, 4, 5);
    let chw = c * h * w;
    let x = random_image(2 * chw, 10);
    let p0 = OpParams { mixup: Some(Mixup { w: 0.25, other: 1 }), ..Default::default() };
    let (out, labels) = aug.apply_params(&x, 2, c, h, w, &[p0, OpParams::default()]);
    for i in 0..chw {
        assert_eq!(out[i], 0.75 * x[i] + 0.25 * x[chw + i]);
    }
    assert_eq!(out[chw..], x[chw..]);
    assert_eq!(label(&aug, &labels[..15], "mixup"), 0.25);
    assert!(labels[15..].iter().all(|&v| v == 0.0));
    // Mixup uses the partner's input, not its augmented version.
    let p1 = OpParams { brightness: Some(3.0), ..Default::default() };
    let p0 = OpParams { mixup: Some(Mixup { w: 0.5, other: 1 }), ..Default::default() };
    let (out2, _) = aug.apply_params(&x, 2, c, h, w, &[p0, p1]);
    for i in 0..chw {
        assert_eq!(out2[i], 0.5 * x[i] + 0.5 * x[chw + i]);
    }
}

#[test]
fn drawn_mixup_partner_is_another_image_or_itself_alone() {
    let aug = augmenter(&[Group::Degradation], 1);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..50 {
        let ps = aug.draw_params(4, 1, 2, 2, 0, &mut rng);
        for (i, p) in ps.iter().enumerate() {
            let m = p.mixup.unwrap();
            assert!(m.other < 4 && m.other != i);
            assert!((0.0..=0.5).contains(&m.w));
        }
    }
    let ps = aug.draw_params(1, 1, 2, 2, 0, &mut rng);
    assert_eq!(ps[0].mixup.unwrap().other, 0);
}

#[test]
fn shell_noise_has_exactly_the_requested_norm() {
    let aug = all(3);
    let (c, h, w) = (3, 8, 8);
    let chw = c * h * w;
    let x = random_image(chw, 12);
    let z = crate::rng::normal_vec(&mut ChaCha8Rng::seed_from_u64(13), chw);
    let (out, labels) = one(&aug, &x, c, h, w, OpParams { shell_noise: Some(ShellNoise { w: 0.3, z: z.clone() }), ..Default::default() });
    assert_eq!(label(&aug, &labels, "shell_noise"), 0.3);
    let norm = out.iter().zip(&x).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
    let want = 0.3 * (chw as f64).sqrt();
    assert!((norm - want).abs() < 1e-5 * want, "{norm} vs {want}");
    // Along z.
    let dot: f64 = out.iter().zip(&x).zip(&z).map(|((a, b), z)| (a - b) as f64 * *z as f64).sum();
    let zn = z.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
    assert!((dot / (norm * zn) - 1.0).abs() < 1e-6);
}

#[test]
fn p_zero_gives_identical_images_and_zero_labels() {
    for c in [1, 3] {
        let aug = Augmenter::new(AugmentConfig { p: 0.0, ..Default::default() }, c).unwrap();
        let x = random_image(5 * c * 6 * 6, 14);
        let (y, labels) = aug.apply(&x, 5, c, 6, 6, 1000, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(y, x);
        assert_eq!(labels.len(), 5 * aug.n_labels());
        assert!(labels.iter().all(|&v| v == 0.0));
    }
}

#[test]
fn same_seed_same_output() {
    let aug = Augmenter::new(AugmentConfig { p: 0.5, ..Default::default() }, 3).unwrap();
    let x = random_image(8 * 3 * 8 * 8, 15);
    let run = |seed| aug.apply(&x, 8, 3, 8, 8, 0, &mut ChaCha8Rng::seed_from_u64(seed));
    let (a, la) = run(3);
    let (b, lb) = run(3);
    assert_eq!(a, b);
    assert_eq!(la, lb);
    let (c, lc) = run(4);
    assert_ne!(a, c);
    assert_ne!(la, lc);
    // The same through the library's named streams.
    let r1 = aug.apply(&x, 8, 3, 8, 8, 0, &mut crate::rng::stream(9, "augment"));
    let r2 = aug.apply(&x, 8, 3, 8, 8, 0, &mut crate::rng::stream(9, "augment"));
    assert_eq!(r1, r2);
}

#[test]
fn ops_fire_at_rate_p_and_labels_stay_in_range() {
    let aug = Augmenter::new(AugmentConfig { p: 0.3, ..Default::default() }, 3).unwrap();
    let n = 4000;
    let ps = aug.draw_params(n, 3, 2, 2, 0, &mut ChaCha8Rng::seed_from_u64(16));
    for &op in aug.ops() {
        let rate = ps.iter().filter(|p| p.fired(op)).count() as f64 / n as f64;
        assert!((rate - 0.3).abs() < 0.03, "{op:?} fired at rate {rate}");
    }
    let mut aniso_r0 = 0;
    let mut aniso = 0;
    for p in &ps {
        if let Some(t) = p.rotation {
            assert!((-PI..PI).contains(&t));
        }
        if let Some(s) = p.blur {
            assert!((0.0..3.0).contains(&s));
        }
        if let Some(s) = &p.shell_noise {
            assert!((0.0..0.5).contains(&s.w) && s.z.len() == 12);
        }
        if let Some(a) = p.aniso_scale {
            aniso += 1;
            aniso_r0 += (a.r == 0.0) as usize;
        }
    }
    let frac = aniso_r0 as f64 / aniso as f64;
    assert!((frac - 0.5).abs() < 0.08, "r = 0 in {frac} of anisotropic scales");
    // Labels of clean images are zero, of augmented images not all zero.
    for p in ps.iter().take(200) {
        let l = aug.labels(p);
        let any = aug.ops().iter().any(|&op| p.fired(op));
        assert_eq!(l.iter().any(|&v| v != 0.0), any);
    }
}

#[test]
fn disabled_groups_are_not_applied() {
    let aug = augmenter(&[Group::Geometric], 3);
    let x = random_image(3 * 16, 17);
    let p = OpParams { brightness: Some(2.0), blur: Some(2.0), translation: Some([2.0, 0.0]), ..Default::default() };
    let (out, labels) = one(&aug, &x, 3, 4, 4, p);
    let (want, _) = one(&aug, &x, 3, 4, 4, OpParams { translation: Some([2.0, 0.0]), ..Default::default() });
    assert_eq!(out, want);
    assert_eq!(labels, vec![0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
}

#[test]
fn preview_writes_a_grid_and_reports_labels() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::data::DatasetStore::new(dir.path().join("data"));
    let batch = preview::load_batch(&store, "disks", 5, 0).unwrap();
    assert_eq!((batch.b, batch.c, batch.h, batch.w), (5, 1, 16, 16));
    let out = dir.path().join("grid.png");
    let labels = preview::preview(&batch, 1.0, 0, &out).unwrap();
    assert_eq!(labels.len(), 5);
    assert!(labels.iter().all(|l| l.iter().any(|(n, _)| n == "shell_noise")), "p = 1 fires every op");
    let (gw, gh, c, _) = crate::image_io::read_png(&out).unwrap();
    assert_eq!((gw, gh, c), (3 * 16 + 4, 2 * 16 + 3, 1));
    let clean = preview::preview(&batch, 0.0, 0, &out).unwrap();
    assert!(clean.iter().all(|l| l.is_empty()));
    assert!(preview::load_batch(&store, "no-such-set", 2, 0).is_err());
}

#[test]
fn excluded_ops_lose_their_labels_and_never_fire() {
    let cfg = AugmentConfig { p: 1.0, exclude: vec!["rotation".into(), "mixup".into()], ..Default::default() };
    let aug = Augmenter::new(cfg, 1).unwrap();
    let names = aug.label_names();
    assert_eq!(names, ["iso_scale", "aniso_cos", "aniso_sin", "tx", "ty", "brightness", "contrast", "blur_sigma", "shell_noise"]);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for p in aug.draw_params(8, 1, 8, 8, 0, &mut rng) {
        assert!(p.rotation.is_none() && p.mixup.is_none());
    }
}
