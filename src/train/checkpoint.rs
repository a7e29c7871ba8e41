//! Checkpoints: `<run>/ckpt/step-<n>.safetensors` (every tensor: `model.*`, `ema.*` (the default
//! EMA profile), `ema[<name>].*` (each other profile), `opt.m.*`, `opt.v.*`) plus
//! `<run>/ckpt/step-<n>.state.json` (the caller's serialisable state: step, stage, RNG streams,
//! kimg, wall time, ...). Where they live and which exist is [`RunDir`]'s.
//!
//! A checkpoint is valid only when both files are present. [`save`] writes both under temporary
//! names in the same folder, syncs them, removes any old json of that step, then renames the
//! tensors and, last, the json; so a crash at any point leaves either the previous state or a
//! checkpoint without json, which [`RunDir::checkpoints`] ignores.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Preset;
use crate::data::batch::SourceState;
use crate::error::WithPath;
use crate::model::Denoiser;
use crate::paths::{state_path_for, RunDir};
use crate::{Error, Result};

/// Everything besides tensors that a training checkpoint needs for a bit-exact resume (its
/// `.state.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub step: u64,
    pub stage: u64,
    pub images_seen: u64,
    pub wall_s: f64,
    pub opt_steps: u64,
    pub noise_rng: rand_chacha::ChaCha8Rng,
    pub dropout_rng: rand_chacha::ChaCha8Rng,
    pub source: SourceState,
    /// Image shape (C, H, W) the model was built for.
    pub shape: (usize, usize, usize),
}

fn sync_dir(dir: &Path) {
    // Persists the renames on platforms where a directory can be opened and synced; best effort.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes the checkpoint of `step` and returns the path of its `.safetensors` file. Tensor
/// names must be unique. An existing checkpoint of the same step is replaced.
pub fn save(run: &RunDir, step: u64, tensors: &[(String, Tensor)], state: &impl Serialize) -> Result<PathBuf> {
    let dir = run.ckpt_dir();
    fs::create_dir_all(&dir).with_path(&dir)?;
    let final_tensors = run.tensors_path(step);
    let final_state = run.state_path(step);

    let mut map: HashMap<&str, Tensor> = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        if map.insert(name.as_str(), t.contiguous()?).is_some() {
            return Err(Error::file(&final_tensors, format!("tensor `{name}` given twice")));
        }
    }
    let json = serde_json::to_vec_pretty(state).with_path(&final_state)?;

    // Temporary names: hidden, and not matching `step-<n>.*`, so never listed.
    let hidden = |p: &Path| dir.join(format!(".{}.tmp", p.file_name().unwrap_or_default().to_string_lossy()));
    let (tmp_tensors, tmp_state) = (hidden(&final_tensors), hidden(&final_state));
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
pub fn load<S: DeserializeOwned>(run: &RunDir, step: u64) -> Result<(HashMap<String, Tensor>, S)> {
    load_path(run.tensors_path(step))
}

/// Loads a checkpoint from the path of its `.safetensors` file (the json is its sibling
/// `<stem>.state.json`). Missing, truncated or corrupt files give an error naming the file.
pub fn load_path<S: DeserializeOwned>(tensors_file: impl AsRef<Path>) -> Result<(HashMap<String, Tensor>, S)> {
    let tensors_file = tensors_file.as_ref();
    let state_file = state_path_for(tensors_file)?;
    let json = fs::read(&state_file).with_path(&state_file)?;
    crate::paths::shipped::verify_bytes(&state_file, &json)?;
    let state: S = serde_json::from_slice(&json).with_path(&state_file)?;
    let tensors = load_tensors(tensors_file)?;
    Ok((tensors, state))
}

/// Loads only the tensors of a `.safetensors` file, on the CPU.
pub fn load_tensors(tensors_file: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let tensors_file = tensors_file.as_ref();
    let bytes = fs::read(tensors_file).with_path(tensors_file)?;
    crate::paths::shipped::verify_bytes(tensors_file, &bytes)?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).with_path(tensors_file)
}

/// The outcome of [`newest_valid`].
pub struct NewestValid {
    /// The newest checkpoint that loads.
    pub step: Option<u64>,
    /// Newer checkpoints passed over, newest first, with why they do not load.
    pub passed_over: Vec<(u64, String)>,
}

/// A run's newest checkpoint that loads (both files complete, readable, and of this state's
/// shape), and the newer ones passed over with the reason (a truncated or corrupt file).
pub fn newest_valid<S: DeserializeOwned>(run: &RunDir) -> Result<NewestValid> {
    let mut passed_over = Vec::new();
    for step in run.checkpoints()?.into_iter().rev() {
        match load::<S>(run, step) {
            Ok(_) => return Ok(NewestValid { step: Some(step), passed_over }),
            Err(e) => passed_over.push((step, e.to_string())),
        }
    }
    Ok(NewestValid { step: None, passed_over })
}

/// Moves every tensor to `device`.
pub fn to_device(tensors: HashMap<String, Tensor>, device: &Device) -> Result<HashMap<String, Tensor>> {
    tensors.into_iter().map(|(k, v)| Ok((k, v.to_device(device)?))).collect()
}

/// Which weights of a checkpoint to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights<'a> {
    /// The online (raw) weights, `model.*`.
    Online,
    /// The EMA profile of this name (`train.ema`); `None`: the run's default (its first).
    Ema(Option<&'a str>),
}

/// The EMA profile `name` of `run` (`None`: its default), and whether it is the default; an
/// unknown name is an error naming the run and listing its profiles.
pub fn ema_profile(run: &RunDir, preset: &Preset, name: Option<&str>) -> Result<(crate::config::EmaProfile, bool)> {
    let (i, profile) = crate::config::ema::find(&preset.train.ema_profiles(), name).map_err(|e| Error::file(run.path(), e))?;
    Ok((profile, i == 0))
}

/// A run's denoiser at checkpoint `step` (or the newest) on `device`, with the `weights` asked
/// for. Returns the model, the run's preset and the image shape (C, H, W).
pub fn load_denoiser(
    run: &RunDir,
    step: Option<u64>,
    weights: Weights,
    device: &Device,
) -> Result<(Denoiser, Preset, (usize, usize, usize))> {
    let preset = Preset::load(&run.preset_file(), &[])?;
    let prefix = match weights {
        Weights::Online => "model.".to_string(),
        Weights::Ema(name) => {
            let (profile, is_default) = ema_profile(run, &preset, name)?;
            super::ema::tensor_prefix(&profile.name, is_default)
        }
    };
    let step = run.checkpoint_step(step)?;
    let (tensors, state): (_, TrainState) = load(run, step)?;
    let file = run.tensors_path(step);
    if let (Weights::Ema(Some(name)), false) = (weights, tensors.keys().any(|k| k.starts_with(&prefix))) {
        let why =
            format!("holds no weights of EMA profile {name:?} ({prefix}*): it was written before the profile was in the run's preset");
        return Err(Error::file(file, why));
    }
    let (c, _, _) = state.shape;
    let model = Denoiser::new(&preset.model, c, preset.sampling.sigma_data, preset.seed, device)?;
    load_into_varmap(&model.varmap, &tensors, &prefix, file)?;
    Ok((model, preset, state.shape))
}

/// `n` samples from a run's checkpoint with the sampler `(kind, steps)` picks (`None`s: the
/// run's own, see [`Sampler::for_run`](crate::sample::Sampler::for_run)); noise from stream
/// "sample" of `seed`. Returns the sampler used with them.
pub fn sample_checkpoint(
    run: &RunDir,
    step: Option<u64>,
    n: usize,
    (kind, steps): (Option<crate::sample::SamplerKind>, Option<usize>),
    weights: Weights,
    seed: u64,
    device: &Device,
) -> Result<(Tensor, crate::sample::Sampler)> {
    let (model, preset, shape) = load_denoiser(run, step, weights, device)?;
    let sampler = crate::sample::Sampler::for_run(&preset, kind, steps)?;
    let mut rng = crate::rng::stream(seed, "sample");
    Ok((crate::sample::generate(&model, n, shape, sampler, &preset.sampling, &mut rng)?, sampler))
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
        let run = RunDir::new(dir.path());
        let path = save(&run, 40, &tensors(), &state(40)).unwrap();
        assert_eq!(path, dir.path().join("ckpt/step-40.safetensors"));
        assert!(dir.path().join("ckpt/step-40.state.json").is_file());
        let (loaded, st): (HashMap<String, Tensor>, State) = load(&run, 40).unwrap();
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
        let run = RunDir::new(dir.path());
        save(&run, 3, &tensors(), &state(3)).unwrap();
        let t = vec![("model.w".to_string(), Tensor::new(&[9.0f32], &Device::Cpu).unwrap())];
        save(&run, 3, &t, &state(4)).unwrap();
        let (loaded, st): (HashMap<String, Tensor>, State) = load(&run, 3).unwrap();
        assert_eq!(st.step, 4);
        assert_eq!(loaded.len(), 1);
        assert_eq!(run.checkpoints().unwrap(), vec![3]);
    }

    #[test]
    fn truncated_or_corrupt_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let path = save(&run, 7, &tensors(), &state(7)).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let e = load::<State>(&run, 7).unwrap_err().to_string();
        assert!(e.contains("step-7.safetensors"), "{e}");
        fs::write(&path, &bytes[..5]).unwrap();
        let e = load::<State>(&run, 7).unwrap_err().to_string();
        assert!(e.contains("step-7.safetensors"), "{e}");
        fs::write(&path, b"garbage garbage garbage").unwrap();
        let e = load::<State>(&run, 7).unwrap_err().to_string();
        assert!(e.contains("step-7.safetensors"), "{e}");

        fs::write(&path, &bytes).unwrap();
        let json = run.state_path(7);
        let text = fs::read(&json).unwrap();
        fs::write(&json, &text[..text.len() / 2]).unwrap();
        let e = load::<State>(&run, 7).unwrap_err().to_string();
        assert!(e.contains("step-7.state.json"), "{e}");
        fs::remove_file(&json).unwrap();
        let e = load::<State>(&run, 7).unwrap_err().to_string();
        assert!(e.contains("step-7.state.json"), "{e}");
        let e = load::<State>(&run, 8).unwrap_err().to_string();
        assert!(e.contains("step-8"), "{e}");
        let e = load_path::<State>(dir.path().join("x.bin")).unwrap_err().to_string();
        assert!(e.contains("x.bin"), "{e}");
    }

    #[test]
    fn duplicate_names_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut t = tensors();
        t.push(t[0].clone());
        let e = save(&run, 1, &t, &state(1)).unwrap_err().to_string();
        assert!(e.contains("model.w"), "{e}");
        assert_eq!(run.checkpoints().unwrap(), Vec::<u64>::new());
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
        let run = RunDir::new(dir.path());
        let mut all = named.clone();
        all.push(("ema.conv.bias".into(), Tensor::zeros(3, DType::F32, &dev).unwrap()));
        let path = save(&run, 1, &all, &0u64).unwrap();
        let (loaded, _): (HashMap<String, Tensor>, u64) = load(&run, 1).unwrap();

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
        let run = RunDir::new(dir.path());
        let (vm1, ema1, mut opt1, w1, b1) = make();
        for _ in 0..4 {
            step(&vm1, &ema1, &mut opt1, &w1, &b1);
        }
        let mut all = vars_to_named(&vm1, "model.").unwrap();
        all.extend(vars_to_named(&ema1, "ema.").unwrap());
        all.extend(opt1.state_tensors());
        save(&run, opt1.step_count, &all, &opt1.step_count).unwrap();
        drop((vm1, ema1, opt1));

        let at = run.latest_checkpoint().unwrap().unwrap();
        let (tensors, step_count): (HashMap<String, Tensor>, u64) = load(&run, at).unwrap();
        let (vm2, ema2, mut opt2, w2, b2) = make();
        let file = run.tensors_path(at);
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
