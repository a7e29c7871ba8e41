use candle_core::Device;

use super::geometry::Manifold;
use super::*;
use crate::config::ProbeConfig;
use crate::data::batch::DataSource;
use crate::data::disks::{self, DiskParams, DisksConfig};
use crate::metrics::intervals::bootstrap_mean;
use crate::paths::Paths;

#[test]
fn rho_is_one_off_the_disks_tangent_space_and_zero_inside_it() {
    let cfg = DisksConfig::default();
    let p = DiskParams { cx: 8.0, cy: 7.5, radius: 3.5 };
    let basis = disks::tangent_basis(&cfg, &p);
    // inside: a combination of the basis vectors
    let inside: Vec<f32> = (0..basis[0].len()).map(|i| 0.6 * basis[0][i] - 0.8 * basis[2][i]).collect();
    assert!(normal_energy(&basis, &inside).abs() < 1e-6);
    // orthogonal: remove the projection from an arbitrary vector
    let mut v: Vec<f32> = (0..basis[0].len()).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
    let proj = disks::project(&basis, &v);
    for (x, p) in v.iter_mut().zip(&proj) {
        *x -= p;
    }
    assert!((normal_energy(&basis, &v) - 1.0).abs() < 1e-6);
}

/// A probe batch of `n` samples in `d` dimensions whose local planes are spanned by the first
/// `m` coordinate axes through a random origin; `D_t` lies off each plane along axis `d - 1`.
fn plane_batch(n: usize, d: usize, m: usize) -> (ProbeBatch, Vec<Vec<f32>>) {
    let mut rng = crate::rng::stream(8, "plane-batch");
    let axis = |k: usize| (0..d).map(|i| if i == k { 1.0f32 } else { 0.0 }).collect::<Vec<f32>>();
    let origins: Vec<Vec<f32>> = (0..n).map(|_| crate::rng::normal_vec(&mut rng, d)).collect();
    let d_t: Vec<Vec<f32>> =
        origins.iter().map(|o| o.iter().enumerate().map(|(i, v)| if i == d - 1 { v + 2.0 } else { *v }).collect()).collect();
    let batch = ProbeBatch {
        x0: Tensor::zeros((n, 1, 1, d), candle_core::DType::F32, &Device::Cpu).unwrap(),
        eps: Tensor::zeros((n, 1, 1, d), candle_core::DType::F32, &Device::Cpu).unwrap(),
        t: (0..n).map(|i| [0.05, 0.5, 5.0, 50.0][i % 4]).collect(),
        bases: vec![(0..m).map(axis).collect(); n],
        manifold: Manifold::Planes(origins),
    };
    (batch, d_t)
}

#[test]
fn random_directions_score_the_closed_form_chance_value_of_every_metric() {
    let (n, d, m) = (1200, 64, 8);
    let (batch, d_t) = plane_batch(n, d, m);
    let mut rng = crate::rng::stream(2, "chance-check");
    let random = chance::random_directions(&mut rng, n, d);
    let to_data = crate::rng::normal_vec(&mut rng, n * d).chunks(d).map(|c| c.to_vec()).collect();
    let previous = BTreeMap::from([(CHANCE.to_string(), chance::random_directions(&mut rng, n, d))]);
    let dirs = Directions { d_t, to_data, losses: vec![(CHANCE.to_string(), random)] };
    let probe = metrics(&dirs, &batch, &previous);
    let expected = expected_means(&probe, &batch.t);
    let lp = &probe.losses[0];
    for metric in METRICS {
        let values = lp.metric(metric).unwrap();
        let ci = bootstrap_mean(values, 0).unwrap();
        let closed = expected[&format!("tangent/chance/{metric}")];
        // the 95% interval of 1200 draws covers the closed form (widened by 1% of the range for
        // the bootstrap's own Monte Carlo error)
        let slack = 0.01 * (ci.hi - ci.lo).max(1e-3);
        assert!(ci.lo - slack <= closed && closed <= ci.hi + slack, "{metric}: drawn {ci:?}, closed form {closed}");
    }
    assert!((expected["tangent/chance/rho"] - (1.0 - 8.0 / 64.0)).abs() < 1e-12);
    assert_eq!(expected["tangent/chance/excess_t2"], 1.0);
}

#[test]
fn a_direction_inside_the_local_plane_has_rho_zero_and_one_toward_it_has_toward_manifold_one() {
    let (n, d, m) = (4, 16, 3);
    let (batch, d_t) = plane_batch(n, d, m);
    let inside: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            (0..d)
                .map(|i| match i {
                    0 => 0.6,
                    2 => -0.8,
                    _ => 0.0,
                })
                .collect()
        })
        .collect();
    // straight back onto the plane: -axis(d - 1)
    let onto: Vec<Vec<f32>> = (0..n).map(|_| (0..d).map(|i| if i == d - 1 { -1.0 } else { 0.0 }).collect()).collect();
    let dirs = Directions { d_t, to_data: onto.clone(), losses: vec![("inside".into(), inside), ("onto".into(), onto)] };
    let probe = metrics(&dirs, &batch, &BTreeMap::new());
    let [inside, onto] = [&probe.losses[0], &probe.losses[1]];
    assert!(inside.metric("rho").unwrap().iter().all(|r| r.abs() < 1e-7));
    assert!(inside.metric("excess").unwrap().iter().all(|e| (e - d as f64 / m as f64).abs() < 1e-5));
    assert!(inside.metric("toward_manifold").unwrap().iter().all(|c| c.abs() < 1e-7));
    assert!(onto.metric("toward_manifold").unwrap().iter().all(|c| (c - 1.0).abs() < 1e-7));
    assert!(onto.metric("normal_toward").unwrap().iter().all(|c| (c - 1.0).abs() < 1e-7));
    assert!(onto.metric("rho").unwrap().iter().all(|r| (r - 1.0).abs() < 1e-7));
    assert!(onto.metric("oscillation").is_none(), "no oscillation without a previous probe");
}

#[test]
fn local_pca_bases_of_a_probe_batch_come_from_the_cache_the_second_time() {
    use rand::Rng;
    let home = tempfile::tempdir().unwrap();
    let paths = Paths { home: home.path().to_path_buf() };
    let mut rng = crate::rng::stream(0, "probe-cache-test");
    let images: Vec<u8> = (0..40 * 16).map(|_| rng.random::<u8>()).collect();
    let set = crate::data::ImageSet::new(images, (40, 4, 4, 1), None, "t").unwrap();
    let source = DataSource::images(std::sync::Arc::new(set), 0).unwrap();
    let train = source.all_images_f32().unwrap();
    let text = "name = \"t\"\n[data]\ndataset = \"x\"\n[train]\nmode = \"ect\"\nbatch_size = 4\niterations = 10\n";
    let preset = Preset::parse(text, std::path::Path::new("t.toml"), &[]).unwrap();
    let cfg = ProbeConfig { n: 8, k: 10, m: 3, ..ProbeConfig::default() };
    let cache = Some((&paths, "0123456789abcdef"));
    let a = ProbeBatch::new(&preset, &source, Some(&train), &cfg, cache, &Device::Cpu).unwrap();
    let files: Vec<_> = std::fs::read_dir(paths.cache()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files, vec!["localpca-0123456789ab-seed0-n8-k10-m3.h5".to_string()]);
    let b = ProbeBatch::new(&preset, &source, Some(&train), &cfg, cache, &Device::Cpu).unwrap();
    let uncached = ProbeBatch::new(&preset, &source, Some(&train), &cfg, None, &Device::Cpu).unwrap();
    assert_eq!(a.bases.len(), 8);
    assert!(a.bases.iter().all(|u| u.len() == 3));
    assert_eq!(a.bases, b.bases);
    assert_eq!(a.bases, uncached.bases);
    // the plane origin is the mean of the 10 neighbours: it lies within the data's range
    let Manifold::Planes(origins) = &a.manifold else { panic!("image data gives local planes") };
    assert!(origins.iter().all(|o| o.len() == 16 && o.iter().all(|v| (-1.0..=1.0).contains(v))));
    // another m: the same images and t, another basis
    let m5 = ProbeBatch::new(&preset, &source, Some(&train), &ProbeConfig { m: 5, ..cfg }, None, &Device::Cpu).unwrap();
    assert_eq!((m5.t.clone(), m5.bases[0].len()), (a.t.clone(), 5));
}

#[test]
fn histograms_split_by_t_range() {
    let lp = LossProbe {
        loss: "l2".into(),
        directions: vec![],
        values: vec![("toward", vec![1.0, -1.0, 0.5, 0.2]), ("rho", vec![0.1, 0.9, 0.5, 0.5]), ("tangential", vec![f64::NAN; 4])],
    };
    let probe = Probe { losses: vec![lp], expected: vec![], dim: 16, m_min: 3 };
    let h = histograms(&probe, &[0.05, 0.5, 5.0, 50.0], 4);
    let names: Vec<&str> = h.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(names.contains(&"tangent/l2/toward") && names.contains(&"tangent/l2/rho_t3"));
    assert!(!names.iter().any(|n| n.contains("tangential")), "a metric without values has no histogram");
    let all = &h.iter().find(|(n, _, _)| n == "tangent/l2/toward").unwrap().1;
    assert_eq!(all.counts.iter().sum::<i64>(), 4);
    let t3 = &h.iter().find(|(n, _, _)| n == "tangent/l2/toward_t3").unwrap().1;
    assert_eq!(t3.counts.iter().sum::<i64>(), 1);
}
