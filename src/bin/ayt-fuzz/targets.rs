//! The fuzz targets: every parser of a file a user gives `ayt`, each with seed inputs made by
//! `ayt`'s own writers and the call that parses one input. An error is the expected answer to a
//! broken input; a panic, a hang or an allocation past the bound is a finding.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use ayt::config::Preset;
use ayt::data::{idx, DatasetStore, ImageSet};
use ayt::features::FeaturesPreset;
use ayt::model::lpips::{Lpips, LpipsNet};
use ayt::model::phi::{Phi, PhiConfig};
use ayt::model::{Denoiser, UNetConfig};
use ayt::paths::RunDir;
use ayt::store::{RunLog, RunLogWriter, RunMeta};
use ayt::sweep::SweepSpec;
use ayt::train::{checkpoint, TrainState};

/// How a target's inputs are mutated.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Bytes,
    Text,
}

pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    pub what: &'static str,
    /// Seed inputs, made in `scratch`.
    pub corpus: fn(&Path) -> Vec<Vec<u8>>,
    /// Parses one input (files go to `scratch`).
    pub exec: fn(&[u8], &Path) -> Result<(), String>,
}

pub const TARGETS: [Target; 17] = [
    Target { name: "idx", kind: Kind::Bytes, what: "IDX files, raw and gzip (MNIST import)", corpus: idx_corpus, exec: idx_exec },
    Target { name: "png", kind: Kind::Bytes, what: "PNG files (PNG-folder import, ayt lpips)", corpus: png_corpus, exec: png_exec },
    Target { name: "preset", kind: Kind::Text, what: "run presets (TOML)", corpus: preset_corpus, exec: preset_exec },
    Target { name: "features-preset", kind: Kind::Text, what: "phi presets (TOML)", corpus: features_corpus, exec: features_exec },
    Target { name: "sweep", kind: Kind::Text, what: "sweep files (TOML), expanded", corpus: sweep_corpus, exec: sweep_exec },
    Target { name: "dataset-h5", kind: Kind::Bytes, what: "data sets of the store (HDF5)", corpus: dataset_corpus, exec: dataset_exec },
    Target {
        name: "checkpoint-tensors",
        kind: Kind::Bytes,
        what: "checkpoint tensors (safetensors) into a model",
        corpus: tensors_corpus,
        exec: tensors_exec,
    },
    Target { name: "checkpoint-state", kind: Kind::Text, what: "checkpoint state (JSON)", corpus: state_corpus, exec: state_exec },
    Target { name: "phi-bundle", kind: Kind::Bytes, what: "stored phi networks (HDF5 bundle)", corpus: phi_corpus, exec: phi_exec },
    Target {
        name: "evalnet-bundle",
        kind: Kind::Bytes,
        what: "evaluator networks (HDF5 bundle)",
        corpus: evalnet_corpus,
        exec: evalnet_exec,
    },
    Target {
        name: "lpips-weights",
        kind: Kind::Bytes,
        what: "LPIPS weight files past their checksum",
        corpus: lpips_corpus,
        exec: lpips_exec,
    },
    Target {
        name: "inception-weights",
        kind: Kind::Bytes,
        what: "Inception-v3 weights (safetensors)",
        corpus: inception_corpus,
        exec: inception_exec,
    },
    Target { name: "run-h5", kind: Kind::Bytes, what: "run logs (run.h5), read whole", corpus: run_corpus, exec: run_exec },
    Target { name: "cifar-bin", kind: Kind::Bytes, what: "CIFAR-10 binary batches", corpus: cifar_bin_corpus, exec: cifar_bin_exec },
    Target { name: "cifar-py", kind: Kind::Bytes, what: "CIFAR-10 python batches (pickles)", corpus: cifar_py_corpus, exec: cifar_py_exec },
    Target { name: "edm-zip", kind: Kind::Bytes, what: "EDM-format zips of PNGs", corpus: edm_zip_corpus, exec: edm_zip_exec },
    Target { name: "fid-npz", kind: Kind::Bytes, what: "FID statistics (.npz of mu, sigma)", corpus: fid_npz_corpus, exec: fid_npz_exec },
];

/// The harness's own check, not a parser (so not in `all`): an input starting with `P` panics,
/// `H` hangs, `A` allocates past any bound, and the rest parse. `tests/fuzz.rs` runs it to show
/// that each kind of finding is caught, recorded and replayable.
pub const SELFTEST: Target = Target {
    name: "selftest",
    kind: Kind::Bytes,
    what: "the harness itself: inputs that panic, hang and over-allocate",
    corpus: selftest_corpus,
    exec: selftest_exec,
};

/// A target by name, the self-test included.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().chain(std::iter::once(&SELFTEST)).find(|t| t.name == name)
}

fn selftest_corpus(_: &Path) -> Vec<Vec<u8>> {
    [&b"ok"[..], b"P", b"H", b"A"].iter().map(|s| s.to_vec()).collect()
}

fn selftest_exec(bytes: &[u8], _: &Path) -> Result<(), String> {
    match bytes.first() {
        Some(b'P') => panic!("selftest: a panic"),
        Some(b'H') => loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
        Some(b'A') => {
            let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(1 << 40));
            Err(format!("selftest: {} bytes allocated", v.capacity()))
        }
        _ => Ok(()),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn file(scratch: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch.join(name);
    std::fs::write(&p, bytes).expect("the scratch folder is writable");
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn idx_corpus(_: &Path) -> Vec<Vec<u8>> {
    let images = idx::encode_idx(&[3, 4, 5], &(0..60).map(|i| i as u8).collect::<Vec<_>>());
    let labels = idx::encode_idx(&[3], &[1, 7, 9]);
    vec![gzip(&images), gzip(&labels), images, labels]
}

fn idx_exec(bytes: &[u8], _: &Path) -> Result<(), String> {
    let p = Path::new("fuzz.idx");
    let images = idx::parse_idx(bytes, idx::IMAGES_MAGIC, p).map(|_| ());
    let labels = idx::parse_idx(bytes, idx::LABELS_MAGIC, p).map(|_| ());
    images.and(labels).map_err(err)
}

fn png_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    [(3, 2, 1), (2, 2, 3)]
        .iter()
        .map(|&(w, h, c)| {
            let p = scratch.join("seed.png");
            ayt::image_io::write_png(&p, w, h, c, &vec![77; w * h * c]).expect("a PNG");
            std::fs::read(p).expect("written")
        })
        .collect()
}

fn png_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    ayt::image_io::read_png(file(scratch, "in.png", bytes)).map(|_| ()).map_err(err)
}

fn shipped_presets(pick: fn(&str) -> bool) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("presets/")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|t| pick(t))
        .map(String::into_bytes)
        .collect();
    out.sort();
    out
}

fn preset_corpus(_: &Path) -> Vec<Vec<u8>> {
    shipped_presets(|t| !ayt::config::is_features_preset(t) && !ayt::config::is_sweep_preset(t))
}

fn preset_exec(bytes: &[u8], _: &Path) -> Result<(), String> {
    Preset::parse(&String::from_utf8_lossy(bytes), Path::new("fuzz.toml"), &[]).map(|_| ()).map_err(err)
}

fn features_corpus(_: &Path) -> Vec<Vec<u8>> {
    shipped_presets(ayt::config::is_features_preset)
}

fn features_exec(bytes: &[u8], _: &Path) -> Result<(), String> {
    FeaturesPreset::parse(&String::from_utf8_lossy(bytes), Path::new("fuzz.toml"), &[]).map(|_| ()).map_err(err)
}

fn sweep_corpus(_: &Path) -> Vec<Vec<u8>> {
    shipped_presets(ayt::config::is_sweep_preset)
}

fn sweep_exec(bytes: &[u8], _: &Path) -> Result<(), String> {
    let spec = SweepSpec::parse(&String::from_utf8_lossy(bytes), Path::new("fuzz-sweep.toml")).map_err(err)?;
    // a grid can be large: expand only what a sweep of a few hundred members would be
    if spec.len() > 512 {
        return Err(format!("{} members", spec.len()));
    }
    spec.expand(None).map(|_| ()).map_err(err)
}

fn dataset_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    let store = DatasetStore::new(scratch.join("seed-store"));
    let set = ImageSet::new((0..2 * 4 * 4 * 3).map(|i| i as u8).collect(), (2, 4, 4, 3), Some(vec![0, 1]), "fuzz").expect("a set");
    let path = store.save("seed", &set).expect("saved");
    vec![std::fs::read(path).expect("written")]
}

fn dataset_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    let store = DatasetStore::new(scratch.to_path_buf());
    file(scratch, "in.h5", bytes);
    store.info("in").map_err(err)?;
    store.load("in").map(|_| ()).map_err(err)
}

fn tiny_unet() -> UNetConfig {
    UNetConfig { channels: vec![4], blocks_per_level: 1, emb_dim: 4, noise_freqs: 2, groups: 2, ..UNetConfig::default() }
}

/// A tiny denoiser's checkpoint: `(tensors file, state file)`.
fn checkpoint_seed(scratch: &Path) -> (Vec<u8>, Vec<u8>) {
    let run = RunDir::new(scratch.join("seed-run"));
    let model = Denoiser::new(&tiny_unet(), 1, 0.5, 0, &Device::Cpu).expect("a model");
    let tensors = checkpoint::vars_to_named(&model.varmap, "model.").expect("tensors");
    let source = ayt::data::batch::DataSource::disks(Default::default(), 0).expect("disks");
    let rng = ayt::rng::stream(0, "x");
    let state = TrainState {
        step: 1,
        stage: 0,
        images_seen: 8,
        wall_s: 1.0,
        opt_steps: 1,
        noise_rng: rng.clone(),
        dropout_rng: rng,
        source: source.state(),
        shape: (1, 8, 8),
    };
    checkpoint::save(&run, 1, &tensors, &state).expect("saved");
    (std::fs::read(run.tensors_path(1)).expect("written"), std::fs::read(run.state_path(1)).expect("written"))
}

/// Loads a checkpoint into a fresh tiny model, as `train.init` and `ayt sample` do.
fn load_checkpoint(tensors: &[u8], state: &[u8], scratch: &Path) -> Result<(), String> {
    let path = file(scratch, "in.safetensors", tensors);
    file(scratch, "in.state.json", state);
    let (map, _state): (_, TrainState) = checkpoint::load_path(&path).map_err(err)?;
    let model = Denoiser::new(&tiny_unet(), 1, 0.5, 0, &Device::Cpu).map_err(err)?;
    checkpoint::load_into_varmap(&model.varmap, &map, "model.", &path).map_err(err)
}

fn tensors_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    vec![checkpoint_seed(scratch).0]
}

fn tensors_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    let state = std::fs::read(scratch.join("seed-run/ckpt/step-1.state.json")).map_err(err)?;
    load_checkpoint(bytes, &state, scratch)
}

fn state_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    vec![checkpoint_seed(scratch).1]
}

fn state_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    let tensors = std::fs::read(scratch.join("seed-run/ckpt/step-1.safetensors")).map_err(err)?;
    load_checkpoint(&tensors, bytes, scratch)
}

fn tiny_phi() -> (PhiConfig, Phi) {
    let cfg = PhiConfig { widths: vec![4, 8], depth: 1, groups: 2, ..PhiConfig::default() };
    let phi = Phi::new(&cfg, 1, 3, 0, &Device::Cpu).expect("phi");
    (cfg, phi)
}

fn phi_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    let p = scratch.join("seed-phi.h5");
    let (_, phi) = tiny_phi();
    ayt::features::store::save_phi(&p, &phi, "name = \"x\"", "ab", &["a".into(), "b".into(), "c".into()]).expect("saved");
    vec![std::fs::read(p).expect("written")]
}

fn phi_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    ayt::features::store::load_phi_file(&file(scratch, "in-phi.h5", bytes), &Device::Cpu).map(|_| ()).map_err(err)
}

fn evalnet_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    let p = scratch.join("seed-evalnet.h5");
    let (cfg, phi) = tiny_phi();
    let tensors = checkpoint::vars_to_named(&phi.varmap, "").expect("tensors");
    let attrs = [
        ("kind", "evalnet".to_string()),
        ("phi_config", serde_json::to_string(&cfg).expect("json")),
        ("in_channels", "1".to_string()),
        ("n_out", "3".to_string()),
        ("classify", "true".to_string()),
        ("dataset_sha256", "ab".to_string()),
    ];
    ayt::store::bundle::save(&p, &tensors, &attrs).expect("saved");
    vec![std::fs::read(p).expect("written")]
}

fn evalnet_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    ayt::metrics::evalnet::load(&file(scratch, "in-evalnet.h5", bytes), &Device::Cpu).map(|_| ()).map_err(err)
}

fn safetensors(tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let map: std::collections::HashMap<String, Tensor> =
        tensors.iter().map(|(n, s)| (n.to_string(), Tensor::zeros(s.as_slice(), DType::F32, &Device::Cpu).expect("zeros"))).collect();
    let p = std::env::temp_dir().join(format!("ayt-fuzz-seed-{}.safetensors", std::process::id()));
    candle_core::safetensors::save(&map, &p).expect("saved");
    let bytes = std::fs::read(&p).expect("written");
    let _ = std::fs::remove_file(p);
    bytes
}

fn lpips_corpus(_: &Path) -> Vec<Vec<u8>> {
    // the real lin file (5 kB), and a features file whose first layer is right
    let lin = std::fs::read(ayt::model::lpips::weights_root().join("lpips/lin_alex_v0.1.safetensors")).expect("the shipped lin weights");
    let features = safetensors(&[("features.0.weight", vec![64, 3, 11, 11]), ("features.0.bias", vec![64])]);
    vec![lin, features]
}

/// Inputs that look like a lin file are fed as one, the rest as the features file.
fn lpips_exec(bytes: &[u8], _: &Path) -> Result<(), String> {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let seeds = SEEDS.get_or_init(|| lpips_corpus(Path::new(".")));
    let (features, lin) = if bytes.windows(3).any(|w| w == b"lin") { (&seeds[1][..], bytes) } else { (bytes, &seeds[0][..]) };
    Lpips::from_unverified_bytes(LpipsNet::Alex, features, lin, DType::F32, &Device::Cpu).map(|_| ()).map_err(err)
}

fn inception_corpus(_: &Path) -> Vec<Vec<u8>> {
    // the first convolution of the real network (weights and batch norm), the rest missing
    let keys: Vec<(String, Vec<usize>)> = ayt::model::inception::required_keys().into_iter().take(5).collect();
    let named: Vec<(&str, Vec<usize>)> = keys.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    vec![safetensors(&named)]
}

fn inception_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    ayt::model::inception::InceptionV3::load(&file(scratch, "in-inception.safetensors", bytes), &Device::Cpu).map(|_| ()).map_err(err)
}

fn run_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    let p = scratch.join("seed-run.h5");
    let _ = std::fs::remove_file(&p);
    let w = RunLogWriter::create(&p, &RunMeta::new("name = \"x\"", 1, "disks", "ab")).expect("created");
    for s in 1..=3 {
        w.scalar("loss", s, 0.1 * s as f64, 1.0, 1.0 / s as f64).expect("row");
    }
    w.hist("tangent/mfd/rho", 2, vec![0.0, 0.5, 1.0], vec![3, 1]).expect("row");
    w.samples(3, vec![9; 2 * 4 * 4], 2, 4, 4, 1).expect("row");
    w.eval("fd_evalnet_1step", 3, 0.3, 12.5, vec![("extractor".into(), "evalnet".into())]).expect("row");
    w.close().expect("closed");
    vec![std::fs::read(p).expect("written")]
}

fn run_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    let log = RunLog::open(file(scratch, "in-run.h5", bytes)).map_err(err)?;
    log.meta().map_err(err)?;
    for n in log.scalar_names().map_err(err)? {
        log.scalar(&n).map_err(err)?;
    }
    for n in log.hist_names().map_err(err)? {
        log.hist(&n).map_err(err)?;
    }
    for n in log.eval_names().map_err(err)? {
        log.eval(&n).map_err(err)?;
    }
    log.last_samples().map(|_| ()).map_err(err)
}

fn cifar_bin_corpus(_: &Path) -> Vec<Vec<u8>> {
    vec![[vec![6u8], vec![9; 3072], vec![1u8], vec![200; 3072]].concat()]
}

/// A batch file of this target's format in a folder of its own, read as the test split.
fn cifar_exec(bytes: &[u8], scratch: &Path, name: &str) -> Result<(), String> {
    let dir = scratch.join("cifar");
    std::fs::create_dir_all(&dir).map_err(err)?;
    for other in ["test_batch", "test_batch.bin"] {
        let _ = std::fs::remove_file(dir.join(other));
    }
    file(&dir, name, bytes);
    ayt::data::cifar::import(&dir, true).map(|_| ()).map_err(err)
}

fn cifar_bin_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    cifar_exec(bytes, scratch, "test_batch.bin")
}

fn cifar_py_corpus(_: &Path) -> Vec<Vec<u8>> {
    let data: Vec<u8> = (0..2 * 3072).map(|i| i as u8).collect();
    vec![ayt::data::pickle::python2_cifar_batch(&data, 2, &[6, 9])]
}

fn cifar_py_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    cifar_exec(bytes, scratch, "test_batch")
}

fn edm_zip_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    use std::io::Write;
    let png = |c: usize| {
        let p = scratch.join("seed.png");
        ayt::image_io::write_png(&p, 4, 3, c, &vec![9; 12 * c]).expect("a PNG");
        std::fs::read(p).expect("written")
    };
    let labels = br#"{"labels": [["00000/img00000000.png", 1], ["00000/img00000001.png", 0]]}"#;
    [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated]
        .into_iter()
        .map(|method| {
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options = zip::write::SimpleFileOptions::default().compression_method(method);
            for (name, bytes) in [("00000/img00000000.png", png(3)), ("00000/img00000001.png", png(3)), ("dataset.json", labels.to_vec())] {
                z.start_file(name, options).expect("in memory");
                z.write_all(&bytes).expect("in memory");
            }
            z.finish().expect("in memory").into_inner()
        })
        .collect()
}

fn edm_zip_exec(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    ayt::data::edm_zip::import(&file(scratch, "in.zip", bytes)).map(|_| ()).map_err(err)
}

fn fid_npz_corpus(scratch: &Path) -> Vec<Vec<u8>> {
    use ayt::metrics::fd::Gaussian;
    let d = 3;
    let g = Gaussian {
        mean: nalgebra::DVector::from_vec(vec![0.5, -1.0, 2.0]),
        cov: nalgebra::DMatrix::from_row_slice(d, d, &[2.0, 0.1, 0.0, 0.1, 1.0, 0.3, 0.0, 0.3, 4.0]),
        n: 0,
    };
    let p = scratch.join("seed.npz");
    ayt::metrics::fid::npz::write(&p, &g).expect("an .npz");
    vec![std::fs::read(p).expect("written")]
}

fn fid_npz_exec(bytes: &[u8], _scratch: &Path) -> Result<(), String> {
    ayt::metrics::fid::npz::parse(bytes).map(|_| ())
}
