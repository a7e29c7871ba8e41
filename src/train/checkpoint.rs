//! Checkpoints: `<run>/ckpt/step-<n>.safetensors` (every tensor: `model.*`, `ema.*`, `opt.m.*`,
//! `opt.v.*`) plus `<run>/ckpt/step-<n>.state.json` (the caller's serialisable state: step,
//! stage, RNG streams, kimg, wall time, ...).
//!
//! A checkpoint is valid only when both files are present. [`save`] writes both under temporary
//! names in the same folder, syncs them, removes any old json of that step, then renames the
//! tensors and, last, the json; so a crash at any point leaves either the previous state or a
//! checkpoint without json, which [`list`] ignores.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::WithPath;
use crate::{Error, Result};

const PREFIX: &str = "step-";
const TENSORS_EXT: &str = ".safetensors";
const STATE_EXT: &str = ".state.json";

/// `<run>/ckpt`.
pub fn ckpt_dir(run_dir: impl AsRef<Path>) -> PathBuf {
    run_dir.as_ref().join("ckpt")
}

/// `<run>/ckpt/step-<n>.safetensors`.
pub fn tensors_path(run_dir: impl AsRef<Path>, step: u64) -> PathBuf {
    ckpt_dir(run_dir).join(format!("{PREFIX}{step}{TENSORS_EXT}"))
}

/// `<run>/ckpt/step-<n>.state.json`.
pub fn state_path(run_dir: impl AsRef<Path>, step: u64) -> PathBuf {
    ckpt_dir(run_dir).join(format!("{PREFIX}{step}{STATE_EXT}"))
}

/// The json sibling of a `.safetensors` checkpoint file.
pub fn state_path_for(tensors_file: impl AsRef<Path>) -> Result<PathBuf> {
    let p = tensors_file.as_ref();
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(TENSORS_EXT))
        .ok_or_else(|| Error::file(p, "not a checkpoint: the name must end in .safetensors"))?;
    Ok(p.with_file_name(format!("{name}{STATE_EXT}")))
}

fn sync_dir(dir: &Path) {
    // Persists the renames on platforms where a directory can be opened and synced; best effort.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes the checkpoint of `step` and returns the path of its `.safetensors` file. Tensor
/// names must be unique. An existing checkpoint of the same step is replaced.
pub fn save(run_dir: impl AsRef<Path>, step: u64, tensors: &[(String, Tensor)], state: &impl Serialize) -> Result<PathBuf> {
    let run_dir = run_dir.as_ref();
    let dir = ckpt_dir(run_dir);
    fs::create_dir_all(&dir).with_path(&dir)?;
    let final_tensors = tensors_path(run_dir, step);
    let final_state = state_path(run_dir, step);

    let mut map: HashMap<&str, Tensor> = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        if map.insert(name.as_str(), t.contiguous()?).is_some() {
            return Err(Error::file(&final_tensors, format!("tensor `{name}` given twice")));
        }
    }
    let json = serde_json::to_vec_pretty(state).with_path(&final_state)?;

    // Temporary names: hidden, and not matching `step-<n>.*`, so never listed.
    let tmp_tensors = dir.join(format!(".{PREFIX}{step}{TENSORS_EXT}.tmp"));
    let tmp_state = dir.join(format!(".{PREFIX}{step}{STATE_EXT}.tmp"));
    let result = (|| -> Result<()> {
        candle_core::safetensors::save(&map, &tmp_tensors).with_path(&tmp_tensors)?;
        File::open(&tmp_tensors).and_then(|f| f.sync_all()).with_path(&tmp_tensors)?;
        {
            let mut f = File::create(&tmp_state).with_path(&tmp_state)?;
            f.write_all(&json).with_path(&tmp_state)?;
            f.sync_all().with_path(&tmp_state)?;
        }
        // Invalidate an older checkpoint of this step before its tensors are replaced.
        match fs::remove_file(&final_state) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::file(&final_state, e.to_string())),
        }
        fs::rename(&tmp_tensors, &final_tensors).with_path(&final_tensors)?;
        sync_dir(&dir);
        fs::rename(&tmp_state, &final_state).with_path(&final_state)?;
        sync_dir(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_tensors);
        let _ = fs::remove_file(&tmp_state);
    }
    result.map(|()| final_tensors)
}

/// Loads the tensors (on the CPU) and the state of the checkpoint of `step`.
pub fn load<S: DeserializeOwned>(run_dir: impl AsRef<Path>, step: u64) -> Result<(HashMap<String, Tensor>, S)> {
    load_path(tensors_path(run_dir, step))
}

/// Loads a checkpoint from the path of its `.safetensors` file (the json is its sibling
/// `<stem>.state.json`). Missing, truncated or corrupt files give an error naming the file.
pub fn load_path<S: DeserializeOwned>(tensors_file: impl AsRef<Path>) -> Result<(HashMap<String, Tensor>, S)> {
    let tensors_file = tensors_file.as_ref();
    let state_file = state_path_for(tensors_file)?;
    let json = fs::read(&state_file).with_path(&state_file)?;
    let state: S = serde_json::from_slice(&json).with_path(&state_file)?;
    let tensors = load_tensors(tensors_file)?;
    Ok((tensors, state))
}

/// Loads only the tensors of a `.safetensors` file, on the CPU.
pub fn load_tensors(tensors_file: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let tensors_file = tensors_file.as_ref();
    let bytes = fs::read(tensors_file).with_path(tensors_file)?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).with_path(tensors_file)
}

/// Steps that have a complete checkpoint (both files present), ascending. A run without a
/// `ckpt` folder has none.
pub fn list(run_dir: impl AsRef<Path>) -> Result<Vec<u64>> {
    let run_dir = run_dir.as_ref();
    let dir = ckpt_dir(run_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::file(&dir, e.to_string())),
    };
    let mut steps = Vec::new();
    for entry in entries {
        let entry = entry.with_path(&dir)?;
        let name = entry.file_name();
        let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(TENSORS_EXT))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        // Canonical names only (`step-007` would not round-trip through `tensors_path`).
        if tensors_path(run_dir, step).file_name() != Some(name.as_os_str()) {
            continue;
        }
        if entry.path().is_file() && state_path(run_dir, step).is_file() {
            steps.push(step);
        }
    }
    steps.sort_unstable();
    Ok(steps)
}

/// The newest complete checkpoint, if any.
pub fn latest(run_dir: impl AsRef<Path>) -> Result<Option<u64>> {
    Ok(list(run_dir)?.last().copied())
}

/// Every variable of `varmap` as `(<prefix><name>, copy of its value)`, sorted by name. The
/// prefix is prepended verbatim: pass `"model."` to get `model.<name>`.
pub fn vars_to_named(varmap: &VarMap, prefix: &str) -> Result<Vec<(String, Tensor)>> {
    let data = varmap.data().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(data.len());
    for (name, var) in data.iter() {
        // A copy: the checkpoint must not change when training goes on.
        out.push((format!("{prefix}{name}"), var.as_tensor().copy()?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Sets every variable of `varmap` from `tensors[<prefix><name>]`. Every variable must be
/// found with its shape (else an error naming the tensor and `file`, the checkpoint they came
/// from); nothing is written unless all are. Extra tensors are ignored.
pub fn load_into_varmap(varmap: &VarMap, tensors: &HashMap<String, Tensor>, prefix: &str, file: impl AsRef<Path>) -> Result<()> {
    let file = file.as_ref();
    let data = varmap.data().lock().unwrap_or_else(|p| p.into_inner());
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut updates = Vec::with_capacity(names.len());
    for name in names {
        let var = &data[name];
        let key = format!("{prefix}{name}");
        let t = tensors.get(&key).ok_or_else(|| Error::file(file, format!("tensor `{key}` is missing")))?;
        if t.shape() != var.shape() {
            return Err(Error::file(file, format!("tensor `{key}` has shape {:?}, the model wants {:?}", t.dims(), var.dims())));
        }
        let t = t
            .to_dtype(var.dtype())
            .and_then(|t| t.to_device(var.device()))
            .map_err(|e| Error::file(file, format!("tensor `{key}`: {e}")))?;
        updates.push((var, t, key));
    }
    for (var, t, key) in updates {
        // A copy, in case `t` shares storage with the variable.
        let t = t.copy().map_err(|e| Error::file(file, format!("tensor `{key}`: {e}")))?;
        var.set(&t).map_err(|e| Error::file(file, format!("tensor `{key}`: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        step: u64,
        stage: u32,
        kimg: f64,
        rng: rand_chacha::ChaCha8Rng,
    }

    fn state(step: u64) -> State {
        let mut rng = crate::rng::stream(5, "noise");
        let _ = crate::rng::normal_vec(&mut rng, 3);
        State { step, stage: 1, kimg: 12.5, rng }
    }

    fn tensors() -> Vec<(String, Tensor)> {
        let dev = Device::Cpu;
        vec![
            ("model.w".into(), Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &dev).unwrap()),
            ("ema.w".into(), Tensor::new(&[[0.5f32, 0.25], [0.125, -1.0]], &dev).unwrap()),
            ("opt.m.w".into(), Tensor::new(&[1e-30f32, -7.0, f32::MAX, 0.0], &dev).unwrap()),
            ("opt.v.w".into(), Tensor::zeros((2, 2), DType::F32, &dev).unwrap()),
            ("model.n".into(), Tensor::new(&[7i64], &dev).unwrap()),
        ]
    }

    #[test]
    fn round_trip_tensors_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(dir.path(), 40, &tensors(), &state(40)).unwrap();
        assert_eq!(path, dir.path().join("ckpt/step-40.safetensors"));
        assert!(dir.path().join("ckpt/step-40.state.json").is_file());
        let (loaded, st): (HashMap<String, Tensor>, State) = load(dir.path(), 40).unwrap();
        assert_eq!(st, state(40));
        assert_eq!(loaded.len(), 5);
        for (name, t) in tensors() {
            let l = &loaded[&name];
            assert_eq!(l.dims(), t.dims(), "{name}");
            assert_eq!(l.dtype(), t.dtype(), "{name}");
            let a = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>();
            let b = l.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>();
            assert_eq!(a.unwrap(), b.unwrap(), "{name}");
        }
        let (_, st2): (HashMap<String, Tensor>, State) = load_path(&path).unwrap();
        assert_eq!(st2.step, 40);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("ckpt")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn overwrite_same_step() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), 3, &tensors(), &state(3)).unwrap();
        let t = vec![("model.w".to_string(), Tensor::new(&[9.0f32], &Device::Cpu).unwrap())];
        save(dir.path(), 3, &t, &state(4)).unwrap();
        let (loaded, st): (HashMap<String, Tensor>, State) = load(dir.path(), 3).unwrap();
        assert_eq!(st.step, 4);
        assert_eq!(loaded.len(), 1);
        assert_eq!(list(dir.path()).unwrap(), vec![3]);
    }

    #[test]
    fn truncated_or_corrupt_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(dir.path(), 7, &tensors(), &state(7)).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let e = load::<State>(dir.path(), 7).unwrap_err().to_string();
        assert!(e.contains("step-7.safetensors"), "{e}");
        fs::write(&path, &bytes[..5]).unwrap();
        let e = load::<State>(dir.path(), 7).unwrap_err().to_string();
        assert!(e.contains("step-7.safetensors"), "{e}");
        fs::write(&path, b"garbage garbage garbage").unwrap();
        let e = load::<State>(dir.path(), 7).unwrap_err().to_string();
        assert!(e.contains("step-7.safetensors"), "{e}");

        fs::write(&path, &bytes).unwrap();
        let json = state_path(dir.path(), 7);
        let text = fs::read(&json).unwrap();
        fs::write(&json, &text[..text.len() / 2]).unwrap();
        let e = load::<State>(dir.path(), 7).unwrap_err().to_string();
        assert!(e.contains("step-7.state.json"), "{e}");
        fs::remove_file(&json).unwrap();
        let e = load::<State>(dir.path(), 7).unwrap_err().to_string();
        assert!(e.contains("step-7.state.json"), "{e}");
        let e = load::<State>(dir.path(), 8).unwrap_err().to_string();
        assert!(e.contains("step-8"), "{e}");
        let e = load_path::<State>(dir.path().join("x.bin")).unwrap_err().to_string();
        assert!(e.contains("x.bin"), "{e}");
    }

    #[test]
    fn list_and_latest() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(list(dir.path()).unwrap(), Vec::<u64>::new());
        assert_eq!(latest(dir.path()).unwrap(), None);
        for s in [100, 20, 3] {
            save(dir.path(), s, &tensors(), &state(s)).unwrap();
        }
        save(dir.path(), 500, &tensors(), &state(500)).unwrap();
        fs::remove_file(state_path(dir.path(), 500)).unwrap();
        // Stray files that are not checkpoints.
        let ck = dir.path().join("ckpt");
        fs::write(ck.join("step-600.state.json"), "{}").unwrap();
        fs::write(ck.join(".step-700.safetensors.tmp"), "").unwrap();
        fs::write(ck.join("step-x.safetensors"), "").unwrap();
        fs::write(ck.join("step-007.safetensors"), "").unwrap();
        fs::write(ck.join("step-007.state.json"), "").unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![3, 20, 100]);
        assert_eq!(latest(dir.path()).unwrap(), Some(100));
    }

    #[test]
    fn duplicate_names_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = tensors();
        t.push(t[0].clone());
        let e = save(dir.path(), 1, &t, &state(1)).unwrap_err().to_string();
        assert!(e.contains("model.w"), "{e}");
        assert_eq!(list(dir.path()).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn varmap_round_trip() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        vm.get((2, 3), "conv.weight", candle_nn::Init::Const(1.5), DType::F32, &dev).unwrap();
        vm.get(3, "conv.bias", candle_nn::Init::Const(-0.5), DType::F32, &dev).unwrap();
        let named = vars_to_named(&vm, "model.").unwrap();
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["model.conv.bias", "model.conv.weight"]);

        let dir = tempfile::tempdir().unwrap();
        let mut all = named.clone();
        all.push(("ema.conv.bias".into(), Tensor::zeros(3, DType::F32, &dev).unwrap()));
        let path = save(dir.path(), 1, &all, &0u64).unwrap();
        let (loaded, _): (HashMap<String, Tensor>, u64) = load(dir.path(), 1).unwrap();

        let vm2 = VarMap::new();
        vm2.get((2, 3), "conv.weight", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        vm2.get(3, "conv.bias", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        load_into_varmap(&vm2, &loaded, "model.", &path).unwrap();
        let get = |n: &str| vm2.data().lock().unwrap()[n].as_tensor().flatten_all().unwrap().to_vec1::<f32>();
        assert_eq!(get("conv.weight").unwrap(), vec![1.5; 6]);
        assert_eq!(get("conv.bias").unwrap(), vec![-0.5; 3]);
        load_into_varmap(&vm2, &loaded, "ema.", &path).unwrap_err();

        // Missing tensor / wrong shape: error names tensor and file, nothing written.
        let vm3 = VarMap::new();
        vm3.get((2, 3), "conv.weight", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        vm3.get(4, "conv.bias", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        let e = load_into_varmap(&vm3, &loaded, "model.", &path).unwrap_err().to_string();
        assert!(e.contains("model.conv.bias") && e.contains("step-1.safetensors"), "{e}");
        let w = vm3.data().lock().unwrap()["conv.weight"].as_tensor().flatten_all().unwrap();
        assert_eq!(w.to_vec1::<f32>().unwrap(), vec![0.0; 6]);
        vm3.get(1, "extra", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        let e = load_into_varmap(&vm3, &loaded, "model.", &path).unwrap_err().to_string();
        assert!(e.contains("model.conv.bias") || e.contains("model.extra"), "{e}");
    }

    /// Model + EMA + RAdam through checkpoint files: resuming gives the same bits as not stopping.
    #[test]
    fn resume_through_files_is_bit_exact() {
        use crate::train::{Ema, RAdam, RAdamConfig};
        let dev = Device::Cpu;
        let make = || {
            let vm = VarMap::new();
            let w = vm.get((2, 2), "w", candle_nn::Init::Const(0.3), DType::F32, &dev).unwrap();
            let b = vm.get(2, "b", candle_nn::Init::Const(-0.1), DType::F32, &dev).unwrap();
            let ema = VarMap::new();
            ema.get((2, 2), "w", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
            ema.get(2, "b", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
            crate::train::ema::copy_varmap(&ema, &vm).unwrap();
            let cfg = RAdamConfig { lr: 0.01, ..Default::default() };
            let opt = RAdam::from_varmap(&vm, cfg).unwrap();
            (vm, ema, opt, w, b)
        };
        let x = Tensor::new(&[[1.0f32, -2.0], [0.5, 3.0]], &dev).unwrap();
        let step = |vm: &VarMap, ema: &VarMap, opt: &mut RAdam, w: &Tensor, b: &Tensor| {
            let y = x.matmul(w).unwrap().broadcast_add(b).unwrap();
            let loss = y.sqr().unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            Ema::new(0.9).unwrap().update_varmap(ema, vm).unwrap();
        };
        let snapshot = |vm: &VarMap, ema: &VarMap, opt: &RAdam| {
            let mut t = vars_to_named(vm, "model.").unwrap();
            t.extend(vars_to_named(ema, "ema.").unwrap());
            t.extend(opt.state_tensors());
            t.into_iter()
                .map(|(n, t)| {
                    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    (n, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
                })
                .collect::<Vec<_>>()
        };

        let (vm, ema, mut opt, w, b) = make();
        for _ in 0..9 {
            step(&vm, &ema, &mut opt, &w, &b);
        }

        let dir = tempfile::tempdir().unwrap();
        let (vm1, ema1, mut opt1, w1, b1) = make();
        for _ in 0..4 {
            step(&vm1, &ema1, &mut opt1, &w1, &b1);
        }
        let mut all = vars_to_named(&vm1, "model.").unwrap();
        all.extend(vars_to_named(&ema1, "ema.").unwrap());
        all.extend(opt1.state_tensors());
        save(dir.path(), opt1.step_count, &all, &opt1.step_count).unwrap();
        drop((vm1, ema1, opt1));

        let at = latest(dir.path()).unwrap().unwrap();
        let (tensors, step_count): (HashMap<String, Tensor>, u64) = load(dir.path(), at).unwrap();
        let (vm2, ema2, mut opt2, w2, b2) = make();
        let file = tensors_path(dir.path(), at);
        load_into_varmap(&vm2, &tensors, "model.", &file).unwrap();
        load_into_varmap(&ema2, &tensors, "ema.", &file).unwrap();
        opt2.load_state(&tensors, step_count).unwrap();
        for _ in 0..5 {
            step(&vm2, &ema2, &mut opt2, &w2, &b2);
        }
        assert_eq!(opt2.step_count, 9);
        assert_eq!(snapshot(&vm, &ema, &opt), snapshot(&vm2, &ema2, &opt2));
    }
}
