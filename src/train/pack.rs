//! `ayt pack`: a run's checkpoint reduced to what a later run starts from (the EMA weights of
//! every profile, the training state and the preset), in a folder shaped like a run folder, so
//! that `train.init`, `ayt sample`, `ayt eval` and `ayt probe` read it as they read a run. This is
//! how the starting points in `weights/start/` are made: a quarter of the checkpoint's size with
//! one EMA profile (no online weights, no optimiser moments).

use std::path::{Path, PathBuf};

use crate::paths::RunDir;
use crate::{Error, Result};

/// Packs checkpoint `step` (the newest when `None`) of `run` into the new folder `out`; returns
/// the packed `.safetensors` path.
pub fn pack(run: &RunDir, step: Option<u64>, out: &Path) -> Result<PathBuf> {
    let step = run.checkpoint_step(step)?;
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::file(out, "already exists and is not empty; pack into a new folder"));
    }
    let (tensors, state): (_, serde_json::Value) = super::checkpoint::load(run, step)?;
    // Every EMA profile's weights: the default's `ema.*` and the others' `ema[<name>].*`.
    let is_ema = |name: &str| name.starts_with("ema.") || name.starts_with("ema[");
    let mut ema: Vec<(String, candle_core::Tensor)> = tensors.into_iter().filter(|(name, _)| is_ema(name)).collect();
    if ema.is_empty() {
        return Err(Error::file(run.tensors_path(step), "no EMA weights (ema.*) in this checkpoint to pack"));
    }
    ema.sort_by(|a, b| a.0.cmp(&b.0));
    let packed = RunDir::new(out);
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, format!("cannot create: {e}")))?;
    std::fs::copy(run.preset_file(), packed.preset_file())
        .map_err(|e| Error::file(run.preset_file(), format!("cannot copy to {}: {e}", packed.preset_file().display())))?;
    super::checkpoint::save(&packed, step, &ema, &state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn pack_keeps_only_the_ema_weights_and_refuses_a_used_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("run"));
        std::fs::create_dir_all(run.path()).unwrap();
        std::fs::write(run.preset_file(), "name = \"x\"\n").unwrap();
        let t = |v: f32| Tensor::new(&[v, v + 1.0], &Device::Cpu).unwrap();
        let all = vec![
            ("ema.w".to_string(), t(1.0)),
            ("ema[slow].w".to_string(), t(3.0)),
            ("model.w".to_string(), t(5.0)),
            ("opt.m.w".to_string(), t(9.0)),
        ];
        super::super::checkpoint::save(&run, 7, &all, &serde_json::json!({"step": 7})).unwrap();

        let out = tmp.path().join("packed");
        let file = pack(&run, None, &out).unwrap();
        assert_eq!(file, RunDir::new(&out).tensors_path(7));
        let back = super::super::checkpoint::load_tensors(&file).unwrap();
        let mut names: Vec<&String> = back.keys().collect();
        names.sort();
        assert_eq!(names, ["ema.w", "ema[slow].w"], "every EMA profile is kept");
        assert_eq!(back["ema.w"].to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(std::fs::read_to_string(RunDir::new(&out).preset_file()).unwrap(), "name = \"x\"\n");
        let e = pack(&run, None, &out).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
    }
}
