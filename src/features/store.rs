//! Trained feature networks in HDF5, keyed by preset name and data-set checksum:
//! `<home>/features/<name>-<sha256[..12]>.h5`. A run asking for `mfd.features = "mnist-phi"` on a
//! data set finds the network trained on exactly that data.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::model::phi::{Phi, PhiConfig};
use crate::paths::Paths;
use crate::store::bundle::{self, Bundle};
use crate::{Error, Result};

/// Where `ayt features train` stores phi `name` trained on a data set (in the user's home).
pub fn phi_path(paths: &Paths, name: &str, dataset_sha256: &str) -> PathBuf {
    paths.features().join(feature_file_name(name, dataset_sha256))
}

/// `<name>-<sha256[..12]>.h5`: a feature network's file name in the store.
pub fn feature_file_name(name: &str, dataset_sha256: &str) -> String {
    format!("{name}-{}.h5", &dataset_sha256[..12.min(dataset_sha256.len())])
}

/// Where phi `name` for a data set is read from: the user's store, else the copy shipped in
/// `weights/start/features/` (checked against its SHA256), else the store's path, which does not
/// exist (so the caller's "train it with ..." message names where it would go).
pub fn find_phi(paths: &Paths, name: &str, dataset_sha256: &str) -> Result<PathBuf> {
    find_feature(paths, &feature_file_name(name, dataset_sha256))
}

/// [`find_phi`] for any feature file name (the evaluator network's too).
pub fn find_feature(paths: &Paths, file_name: &str) -> Result<PathBuf> {
    let own = paths.features().join(file_name);
    if own.exists() {
        return Ok(own);
    }
    Ok(crate::paths::shipped::feature(file_name)?.unwrap_or(own))
}

/// Saves a trained phi with what is needed to rebuild it: its parameters, batch norm's running
/// statistics (`<layer>.norm.running_mean`, `.running_var`) and its config (`arch` included).
pub fn save_phi(path: &Path, phi: &Phi, preset_toml: &str, dataset_sha256: &str, label_names: &[String]) -> Result<()> {
    let mut tensors = crate::train::vars_to_named(&phi.varmap, "")?;
    tensors.extend(crate::train::vars_to_named(&phi.buffers, "")?);
    let cfg = serde_json::to_string(&phi.cfg).map_err(|e| Error::msg(e.to_string()))?;
    let attrs = [
        ("kind", "phi".to_string()),
        ("phi_config", cfg),
        ("in_channels", phi.in_channels.to_string()),
        ("label_names", serde_json::to_string(label_names).unwrap_or_default()),
        ("preset_toml", preset_toml.to_string()),
        ("dataset_sha256", dataset_sha256.to_string()),
    ];
    bundle::save(path, &tensors, &attrs)
}

/// Loads a trained phi for `dataset_sha256`; a missing one says how to make it.
pub fn load_phi(paths: &Paths, name: &str, dataset_sha256: &str, device: &Device) -> Result<Phi> {
    let path = find_phi(paths, name, dataset_sha256)?;
    if !path.exists() {
        return Err(Error::file(
            &path,
            format!(
                "no feature network {name:?} trained on this data set; train it with `ayt features train --preset presets/{name}.toml`"
            ),
        ));
    }
    load_phi_file(&path, device)
}

/// What a stored phi file says about its network: architecture, input channels, label names.
struct StoredPhi {
    cfg: PhiConfig,
    in_channels: usize,
    labels: Vec<String>,
}

fn read_header(path: &Path, bundle: &Bundle) -> Result<StoredPhi> {
    let cfg: PhiConfig =
        serde_json::from_str(bundle.attr("phi_config")?).map_err(|e| Error::file(path, format!("attribute phi_config: {e}")))?;
    let in_channels: usize = bundle.attr("in_channels")?.parse().map_err(|e| Error::file(path, format!("attribute in_channels: {e}")))?;
    let labels: Vec<String> =
        serde_json::from_str(bundle.attr("label_names")?).map_err(|e| Error::file(path, format!("attribute label_names: {e}")))?;
    Ok(StoredPhi { cfg, in_channels, labels })
}

/// Sets phi's parameters and running statistics from the bundle; nothing is written unless every
/// one is there with its shape.
fn load_weights(phi: &Phi, path: &Path, bundle: &Bundle) -> Result<()> {
    let tensors = bundle.tensors(&phi.device())?;
    let buffers = phi.buffer_vars();
    if let Some((name, _)) = buffers.iter().find(|(name, _)| !tensors.contains_key(name)) {
        return Err(Error::file(
            path,
            format!("tensor `{name}` is missing: a {} phi stores the running mean and variance of every batch norm", phi.cfg.describe()),
        ));
    }
    let all = candle_nn::VarMap::new();
    all.data()
        .lock()
        .map_err(|_| Error::msg("parameter map lock poisoned"))?
        .extend(crate::model::precond::named_vars(&phi.varmap).into_iter().chain(buffers));
    crate::train::load_into_varmap(&all, &tensors, "", path)
}

pub fn load_phi_file(path: &Path, device: &Device) -> Result<Phi> {
    let read = bundle::read(path)?;
    let stored = read_header(path, &read)?;
    let phi = Phi::new(&stored.cfg, stored.in_channels, stored.labels.len(), 0, device)?;
    load_weights(&phi, path, &read)?;
    Ok(phi)
}

/// `train.init` as a file: an existing path, else a feature-store name trained on this data set
/// (the user's, else the shipped one).
pub fn resolve_init(paths: &Paths, init: &Path, dataset_sha256: &str) -> Result<PathBuf> {
    let bare_name = init.components().count() == 1 && init.extension().is_none();
    if init.exists() || !bare_name {
        return Ok(init.to_path_buf());
    }
    find_phi(paths, &init.to_string_lossy(), dataset_sha256)
}

/// Loads the weights of the stored phi at `path` into `phi` (`train.init`): a warm start. The
/// stored network must have `phi`'s architecture, input channels and labels.
pub fn init_from_file(phi: &Phi, path: &Path, label_names: &[String]) -> Result<()> {
    if !path.exists() {
        return Err(Error::file(path, "train.init: no such file"));
    }
    let read = bundle::read(path)?;
    let stored = read_header(path, &read)?;
    if stored.cfg != phi.cfg || stored.in_channels != phi.in_channels {
        return Err(Error::file(
            path,
            format!(
                "train.init: the stored phi is {:?} on {} channels, the preset asks for {:?} on {}",
                stored.cfg, stored.in_channels, phi.cfg, phi.in_channels
            ),
        ));
    }
    if stored.labels != label_names {
        return Err(Error::file(
            path,
            format!("train.init: the stored phi regresses {:?}, the preset's augmentations give {label_names:?}", stored.labels),
        ));
    }
    load_weights(phi, path, &read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn saved_phi_reloads_identically_and_missing_is_a_clear_error() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::resolve(Some(home.path().to_path_buf()));
        let cfg = PhiConfig { widths: vec![4, 8], depth: 1, groups: 2, ..PhiConfig::default() };
        let phi = Phi::new(&cfg, 1, 3, 7, &Device::Cpu).unwrap();
        let sha = "abcdef0123456789";
        let path = phi_path(&paths, "tiny-phi", sha);
        save_phi(&path, &phi, "name = \"tiny-phi\"", sha, &["a".into(), "b".into(), "c".into()]).unwrap();
        let back = load_phi(&paths, "tiny-phi", sha, &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 1, 8, 8), &Device::Cpu).unwrap();
        let a = phi.predict(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = back.predict(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
        let e = load_phi(&paths, "tiny-phi", "ffffffffffffffff", &Device::Cpu).err().expect("missing phi must fail").to_string();
        assert!(e.contains("tiny-phi-ffffffffffff.h5") && e.contains("ayt features train"), "{e}");
    }

    #[test]
    fn init_from_file_copies_the_weights_and_refuses_another_network() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PhiConfig { widths: vec![4, 8], depth: 1, groups: 2, ..PhiConfig::default() };
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let trained = Phi::new(&cfg, 1, 3, 7, &Device::Cpu).unwrap();
        let path = dir.path().join("phi-snapshot.h5");
        save_phi(&path, &trained, "", "abc", &labels).unwrap();

        let x = Tensor::randn(0f32, 1.0, (2, 1, 8, 8), &Device::Cpu).unwrap();
        let predict = |p: &Phi| p.predict(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let fresh = Phi::new(&cfg, 1, 3, 8, &Device::Cpu).unwrap();
        assert_ne!(predict(&fresh), predict(&trained), "seeds 7 and 8 must start apart");
        init_from_file(&fresh, &path, &labels).unwrap();
        assert_eq!(predict(&fresh), predict(&trained));

        let wider = Phi::new(&PhiConfig { widths: vec![4, 16], ..cfg.clone() }, 1, 3, 8, &Device::Cpu).unwrap();
        let e = init_from_file(&wider, &path, &labels).unwrap_err().to_string();
        assert!(e.contains("train.init") && e.contains("phi-snapshot.h5") && e.contains("16"), "{e}");
        let renamed: Vec<String> = ["a", "b", "d"].iter().map(|s| s.to_string()).collect();
        let e = init_from_file(&Phi::new(&cfg, 1, 3, 8, &Device::Cpu).unwrap(), &path, &renamed).unwrap_err().to_string();
        assert!(e.contains("train.init") && e.contains("\"d\""), "{e}");
        let e = init_from_file(&fresh, &dir.path().join("missing.h5"), &labels).unwrap_err().to_string();
        assert!(e.contains("missing.h5") && e.contains("train.init"), "{e}");

        // A bare name is a feature-store entry for this data set; a path stays a path.
        let paths = Paths::resolve(Some(dir.path().to_path_buf()));
        assert_eq!(
            resolve_init(&paths, Path::new("mnist-phi"), "0123456789abcdef").unwrap(),
            phi_path(&paths, "mnist-phi", "0123456789abcdef")
        );
        assert_eq!(resolve_init(&paths, &path, "0123456789abcdef").unwrap(), path);
        assert_eq!(resolve_init(&paths, Path::new("runs/x/phi-snapshot.h5"), "0").unwrap(), PathBuf::from("runs/x/phi-snapshot.h5"));
    }

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("l{i}")).collect()
    }

    fn randn32(shape: &[usize], seed: u64) -> Tensor {
        crate::nn::gradcheck::tests::randn(shape, seed).to_dtype(candle_core::DType::F32).unwrap()
    }

    /// A bundle as `save_phi` writes it, but with `tensors` and `phi_config` as given.
    fn save_raw(path: &Path, tensors: &[(String, Tensor)], phi_config: String, n_labels: usize) {
        let attrs = [
            ("kind", "phi".to_string()),
            ("phi_config", phi_config),
            ("in_channels", "3".to_string()),
            ("label_names", serde_json::to_string(&labels(n_labels)).unwrap()),
            ("preset_toml", String::new()),
            ("dataset_sha256", "abc".to_string()),
        ];
        bundle::save(path, tensors, &attrs).unwrap();
    }

    #[test]
    fn a_vgg16_bn_phi_round_trips_with_its_running_statistics() {
        use crate::model::phi::{mfd, PhiArch};
        let dir = tempfile::tempdir().unwrap();
        let cfg = PhiConfig { arch: PhiArch::Vgg16Bn, ..PhiConfig::default() };
        let phi = Phi::new(&cfg, 3, 15, 3, &Device::Cpu).unwrap();
        for seed in 0..2 {
            phi.predict_train(&randn32(&[4, 3, 32, 32], 40 + seed)).unwrap();
        }
        let path = dir.path().join("bn-phi.h5");
        save_phi(&path, &phi, "", "abc", &labels(15)).unwrap();
        let back = load_phi_file(&path, &Device::Cpu).unwrap();
        assert_eq!(back.cfg, cfg);
        let stats = |p: &Phi| -> Vec<(String, Vec<f32>)> {
            p.buffer_vars().into_iter().map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
        };
        assert_eq!(stats(&back), stats(&phi));
        assert!(stats(&phi).iter().all(|(_, v)| v.iter().all(|x| *x != 0.0 && *x != 1.0)), "the running statistics were not moved");
        let (x, y) = (randn32(&[2, 3, 32, 32], 50), randn32(&[2, 3, 32, 32], 51));
        let values = |p: &Phi| mfd(p, &x, &y, 1e-5).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(&back.frozen()), values(&phi.frozen()));
        assert_eq!(values(&back), values(&phi));

        // without one running statistic: an error naming the file and the tensor
        let missing = "stage2.1.norm.running_var";
        let mut tensors = crate::train::vars_to_named(&phi.varmap, "").unwrap();
        tensors.extend(crate::train::vars_to_named(&phi.buffers, "").unwrap().into_iter().filter(|(n, _)| n != missing));
        let damaged = dir.path().join("no-running-var.h5");
        save_raw(&damaged, &tensors, serde_json::to_string(&cfg).unwrap(), 15);
        let e = load_phi_file(&damaged, &Device::Cpu).err().expect("a missing running statistic must fail").to_string();
        assert!(e.contains("no-running-var.h5") && e.contains(missing) && e.contains("vgg16_bn"), "{e}");
        // ... and train.init refuses it too, leaving the network as it was
        let fresh = Phi::new(&cfg, 3, 15, 4, &Device::Cpu).unwrap();
        let before = stats(&fresh);
        assert!(init_from_file(&fresh, &damaged, &labels(15)).unwrap_err().to_string().contains(missing));
        assert_eq!(stats(&fresh), before);
    }

    #[test]
    fn a_bundle_from_before_arch_loads_as_vgg() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PhiConfig { widths: vec![4, 8], depth: 1, groups: 2, ..PhiConfig::default() };
        let phi = Phi::new(&cfg, 3, 3, 7, &Device::Cpu).unwrap();
        let mut json: serde_json::Value = serde_json::to_value(&cfg).unwrap();
        json.as_object_mut().unwrap().remove("arch");
        let path = dir.path().join("old-phi.h5");
        save_raw(&path, &crate::train::vars_to_named(&phi.varmap, "").unwrap(), json.to_string(), 3);
        let back = load_phi_file(&path, &Device::Cpu).unwrap();
        assert_eq!(back.cfg, cfg);
        let x = randn32(&[2, 3, 8, 8], 60);
        assert_eq!(
            back.predict(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            phi.predict(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }
}
