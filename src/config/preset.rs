//! The preset schema. Every numeric default of method.md is a field here; unknown keys and wrong
//! types are rejected by serde (`deny_unknown_fields`), value ranges by `validate`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::nn::precision::Compute as Precision;

use super::validate::{at_least, between, in_unit_interval, non_negative, positive, Check};
use crate::data::{DataConfig, OpenedData};
use crate::model::lpips::LpipsConfig;
use crate::model::UNetConfig;
use crate::paths::Paths;
use crate::{Error, Result};

/// The largest `train.batch_size` a preset may ask for (2^20 images a step).
pub const MAX_BATCH: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: u64,
    pub data: DataConfig,
    #[serde(default)]
    pub model: UNetConfig,
    pub train: TrainConfig,
    #[serde(default)]
    pub edm: EdmConfig,
    #[serde(default)]
    pub ect: EctConfig,
    #[serde(default)]
    pub sampling: SamplingConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub mfd: MfdConfig,
    /// Tangent-alignment probes (method.md 9).
    #[serde(default)]
    pub probe: super::ProbeConfig,
    /// LPIPS settings, used when `train.loss = "lpips"`.
    #[serde(default)]
    pub lpips: LpipsConfig,
    /// Sample-quality evaluation during training and by `ayt eval` (method.md 8).
    #[serde(default)]
    pub eval: super::EvalConfig,
}

/// The MFD loss: which trained feature network, and the optional hybrid with the pixel loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfdConfig {
    /// Name of the feature network (its `ayt features train` preset name), trained on this
    /// run's data set.
    pub features: String,
    /// `ph(v) = sqrt(||v||^2 + eps^2) - eps`.
    pub eps: f64,
    /// Hybrid `L_ECT + lambda * min(1, (it+1)/n_rampup) * L_MFD`; absent: MFD alone (as the
    /// reference AYT runs, whose large lambda switches the pixel term off).
    pub lambda: Option<f64>,
    pub n_rampup: u64,
}

impl Default for MfdConfig {
    fn default() -> Self {
        MfdConfig { features: String::new(), eps: 1e-5, lambda: None, n_rampup: 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Diffusion pre-training with the EDM loss (method.md section 3).
    Edm,
    /// Easy Consistency Tuning / Training (section 4).
    Ect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    L2,
    PseudoHuber,
    /// The manifold feature distance in normalised-tangent form (method.md 5), `[mfd]`.
    Mfd,
    /// LPIPS (`[lpips]` section) in the normalised-tangent form (method.md section 5).
    Lpips,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub mode: Mode,
    pub batch_size: usize,
    /// Optimiser steps; the ECT stage schedule divides these into `ect.n_stages` stages.
    pub iterations: u64,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// The per-step EMA decay of the run's one profile (`ema`) when `ema` is not given.
    #[serde(default = "default_ema")]
    pub ema_decay: f64,
    /// EMA profiles kept at once (`[[train.ema]]`, see [`super::ema`]); the first is the
    /// default. Empty: one profile `ema` of decay `ema_decay`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ema: Vec<super::EmaProfile>,
    /// ECT consistency loss on `D_t - D_r`.
    #[serde(default = "default_loss")]
    pub loss: LossKind,
    /// Pseudo-Huber `c = c_mult * sqrt(C*H*W)`; 0 gives L2.
    #[serde(default = "default_c_mult")]
    pub c_mult: f64,
    /// A NaN or an infinity in the loss or the gradient: stop (write what is buffered, fail
    /// naming the step, the value and the last good checkpoint), or roll back to the last
    /// checkpoint, skip the batch that failed and go on (at most `max_rollbacks` times).
    #[serde(default)]
    pub on_nonfinite: OnNonFinite,
    #[serde(default = "default_max_rollbacks")]
    pub max_rollbacks: u64,
    /// Read the loss and the gradient norm to the host every N steps, in one transfer, instead
    /// of twice every step. 1: every step, before the weights change (what the CPU wants). N > 1
    /// (a GPU, e.g. 16): a non-finite step is found up to N - 1 steps late, its weights already
    /// updated, and recovered as `on_nonfinite` says (the rollback is to a checkpoint either way).
    /// Written to a run's preset only when it is not 1.
    #[serde(default = "default_readback_every", skip_serializing_if = "is_default_readback_every")]
    pub readback_every: u64,
    /// What the training step's convolutions and matmuls multiply in: `f32`, `tf32` (the tensor
    /// cores' f32 mode, PyTorch's default for fp32 convolutions) or `bf16` (as PyTorch's bf16
    /// autocast); see `nn::precision`. Weights, optimizer and losses stay f32. Written to a run's
    /// preset only when it is not f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Start from this checkpoint (a `.safetensors` file or a run folder, whose latest checkpoint
    /// is used): its EMA weights initialise model and EMA. Relative paths are taken from the
    /// preset file's folder, then from `runs/` of the ayt home.
    #[serde(default)]
    pub init: Option<String>,
}

fn default_lr() -> f64 {
    1e-4
}
fn default_max_rollbacks() -> u64 {
    3
}
fn default_readback_every() -> u64 {
    1
}
fn is_default_readback_every(n: &u64) -> bool {
    *n == default_readback_every()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    #[default]
    Stop,
    Rollback,
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_ema() -> f64 {
    0.9999
}
fn default_loss() -> LossKind {
    LossKind::PseudoHuber
}
fn default_c_mult() -> f64 {
    0.00054
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdmConfig {
    pub p_mean: f64,
    pub p_std: f64,
}

impl Default for EdmConfig {
    fn default() -> Self {
        EdmConfig { p_mean: -1.2, p_std: 1.2 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EctConfig {
    pub p_mean: f64,
    pub p_std: f64,
    pub q: f64,
    pub n_stages: u64,
    pub k: f64,
    pub b: f64,
}

impl Default for EctConfig {
    fn default() -> Self {
        // The reference AYT tuning schedule; ECT from scratch uses q = 2, n_stages = 8.
        EctConfig { p_mean: -1.1, p_std: 2.0, q: 256.0, n_stages: 1, k: 8.0, b: 1.0 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    pub sigma_data: f64,
    pub sigma_min: f64,
    pub sigma_max: f64,
    pub t_mid: f64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig { sigma_data: 0.5, sigma_min: 0.002, sigma_max: 80.0, t_mid: 0.821 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Log scalars every N steps.
    pub every: u64,
    /// Write a sample grid every N steps (0: only at the end).
    pub sample_every: u64,
    pub sample_count: usize,
    /// Sampler steps for the periodic grids (1 or 2).
    pub sample_steps: usize,
    /// Checkpoint every N steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Keep the newest N checkpoints (0 keeps all).
    pub keep_checkpoints: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { every: 10, sample_every: 500, sample_count: 64, sample_steps: 1, checkpoint_every: 1000, keep_checkpoints: 3 }
    }
}

impl TrainConfig {
    /// The EMA profiles the run keeps, the default first (see [`super::ema::resolve`]).
    pub fn ema_profiles(&self) -> Vec<super::EmaProfile> {
        super::ema::resolve(&self.ema, self.ema_decay)
    }

    fn validate(&self) -> Check {
        // The upper bound keeps step-interval and kimg arithmetic far from overflow.
        between("train.batch_size", self.batch_size as u64, 1, MAX_BATCH)?;
        at_least("train.iterations", self.iterations, 1)?;
        at_least("train.readback_every", self.readback_every, 1)?;
        positive("train.lr", self.lr)?;
        in_unit_interval("train.beta1", self.beta1)?;
        in_unit_interval("train.beta2", self.beta2)?;
        in_unit_interval("train.ema_decay", self.ema_decay)?;
        super::ema::validate(&self.ema, self.ema_decay, default_ema())?;
        non_negative("train.weight_decay", self.weight_decay)?;
        non_negative("train.c_mult", self.c_mult)
    }
}

impl EdmConfig {
    fn validate(&self) -> Check {
        positive("edm.p_std", self.p_std)
    }
}

impl EctConfig {
    fn validate(&self) -> Check {
        positive("ect.p_std", self.p_std)?;
        if self.q <= 1.0 {
            return Err(format!("ect.q = {}: must be > 1 (the gap t - r shrinks by q per stage)", self.q));
        }
        at_least("ect.n_stages", self.n_stages, 1)?;
        // with k or b below 0, r = t (1 - q^-(s+1) (1 + k sigmoid(-b t))) can exceed t
        non_negative("ect.k", self.k)?;
        non_negative("ect.b", self.b)
    }
}

impl SamplingConfig {
    fn validate(&self) -> Check {
        positive("sampling.sigma_data", self.sigma_data)?;
        positive("sampling.sigma_min", self.sigma_min)?;
        if self.sigma_max <= self.sigma_min {
            return Err(format!("sampling.sigma_max = {}: must exceed sampling.sigma_min = {}", self.sigma_max, self.sigma_min));
        }
        if !(self.sigma_min..self.sigma_max).contains(&self.t_mid) {
            return Err(format!("sampling.t_mid = {}: must lie between sigma_min and sigma_max", self.t_mid));
        }
        Ok(())
    }
}

impl LogConfig {
    fn validate(&self) -> Check {
        at_least("log.every", self.every, 1)?;
        if !(1..=2).contains(&self.sample_steps) {
            return Err(format!("log.sample_steps = {}: must be 1 or 2", self.sample_steps));
        }
        Ok(())
    }
}

impl Preset {
    /// Reads, overrides (`--set key=value`) and validates a preset file.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Preset> {
        Preset::parse(&super::overrides::read_preset(path)?, path, overrides)
    }

    /// Parses preset text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Preset> {
        let preset: Preset = super::overrides::parse_with_overrides(text, path, overrides)?;
        preset.validate().map_err(|msg| Error::Preset { path: path.to_path_buf(), msg })?;
        Ok(preset)
    }

    /// Range checks, each naming the key and the value, section by section.
    pub fn validate(&self) -> Check {
        if self.name.trim().is_empty() || self.name.contains('/') {
            return Err(format!("name = {:?}: must be non-empty and contain no '/'", self.name));
        }
        self.data.disks.validate().map_err(|e| e.to_string())?;
        self.train.validate()?;
        self.edm.validate()?;
        self.ect.validate()?;
        self.sampling.validate()?;
        self.log.validate()?;
        self.probe.validate()?;
        self.model.validate()?;
        self.eval.validate()?;
        self.feature_losses()
    }

    /// MFD's and LPIPS's fields are checked whatever the training loss: probes use both.
    fn feature_losses(&self) -> Check {
        positive("mfd.eps", self.mfd.eps)?;
        if let Some(l) = self.mfd.lambda {
            non_negative("mfd.lambda", l)?;
        }
        self.lpips.validate()?;
        for (kind, name) in [(LossKind::Mfd, "mfd"), (LossKind::Lpips, "lpips")] {
            if self.train.loss == kind && self.train.mode != Mode::Ect {
                return Err(format!("train.loss = \"{name}\": only for train.mode = \"ect\""));
            }
        }
        if self.train.loss == LossKind::Mfd && self.mfd.features.trim().is_empty() {
            return Err("mfd.features: name the feature network (e.g. \"mnist-phi\") for train.loss = \"mfd\"".into());
        }
        Ok(())
    }

    /// Opens the preset's data, its order (or disk draws) seeded by the preset's seed.
    pub fn open_data(&self, paths: &Paths) -> Result<OpenedData> {
        crate::data::open_data(&self.data, self.seed, paths)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not serialise preset: {e}\n"))
    }

    /// Resolves `train.init` against the preset's folder, then the runs folder, then the shipped
    /// starting points.
    pub fn resolve_init(&self, preset_dir: Option<&Path>, runs_dir: &Path) -> Option<PathBuf> {
        let init = self.train.init.as_ref()?;
        let p = PathBuf::from(init);
        if p.is_absolute() {
            return Some(p);
        }
        let candidates = preset_dir.map(|d| d.join(&p)).into_iter().chain([runs_dir.join(&p), p.clone()]);
        for c in candidates {
            if c.exists() {
                return Some(c);
            }
        }
        // A preset name: the newest run folder `<name>-<time>` (names sort by time).
        let prefix = format!("{init}-");
        let newest = std::fs::read_dir(runs_dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| {
                let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let stamp = name.strip_prefix(&prefix).unwrap_or("");
                d.is_dir() && !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '-')
            })
            .max();
        // else the starting point shipped under that name (`weights/start/<name>/`)
        Some(newest.or_else(|| crate::paths::shipped::run(init)).unwrap_or(p))
    }
}

/// Feature-network presets (`ayt features train`) have a `[phi]` table; run presets do not.
pub fn is_features_preset(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).map(|t| t.contains_key("phi")).unwrap_or(false)
}

/// Sweep files (`ayt sweep`) are run presets with a `[sweep]` table (`crate::sweep`).
pub fn is_sweep_preset(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).map(|t| t.contains_key("sweep")).unwrap_or(false)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smallest valid run preset; other modules' tests build on it.
    pub(crate) const MINIMAL: &str = r#"
name = "t"
[data]
dataset = "disks"
[train]
mode = "ect"
batch_size = 4
iterations = 10
"#;

    fn parse(text: &str, overrides: &[&str]) -> Result<Preset> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Preset::parse(text, Path::new("presets/x.toml"), &o)
    }

    #[test]
    fn defaults_are_the_published_ones() {
        let p = parse(MINIMAL, &[]).unwrap();
        assert_eq!(p.ect, EctConfig { p_mean: -1.1, p_std: 2.0, q: 256.0, n_stages: 1, k: 8.0, b: 1.0 });
        assert_eq!(p.edm, EdmConfig { p_mean: -1.2, p_std: 1.2 });
        assert_eq!((p.sampling.sigma_min, p.sampling.sigma_max, p.sampling.t_mid, p.sampling.sigma_data), (0.002, 80.0, 0.821, 0.5));
        assert_eq!((p.train.lr, p.train.ema_decay, p.train.c_mult), (1e-4, 0.9999, 0.00054));
    }

    #[test]
    fn unknown_key_is_rejected_with_file_and_key() {
        let e = parse(&MINIMAL.replace("iterations = 10", "iterations = 10\nbatchsize = 3"), &[]).unwrap_err().to_string();
        assert!(e.contains("presets/x.toml") && e.contains("batchsize"), "{e}");
    }

    #[test]
    fn wrong_type_is_rejected_with_file_key_and_value() {
        let e = parse(&MINIMAL.replace("batch_size = 4", "batch_size = \"four\""), &[]).unwrap_err().to_string();
        assert!(e.contains("presets/x.toml") && e.contains("batch_size") && e.contains("four"), "{e}");
    }

    #[test]
    fn bad_values_and_overrides_are_rejected_with_the_key() {
        let e = parse(MINIMAL, &["train.batch_size=0"]).unwrap_err().to_string();
        assert!(e.contains("train.batch_size = 0"), "{e}");
        let e = parse(MINIMAL, &["ect.q=1"]).unwrap_err().to_string();
        assert!(e.contains("ect.q"), "{e}");
        let e = parse(MINIMAL, &["train.mode=\"ddpm\""]).unwrap_err().to_string();
        assert!(e.contains("ddpm"), "{e}");
        let p = parse(MINIMAL, &["train.batch_size=16", "ect.n_stages=8", "ect.q=2"]).unwrap();
        assert_eq!((p.train.batch_size, p.ect.n_stages, p.ect.q), (16, 8, 2.0));
    }

    #[test]
    fn resolved_preset_round_trips() {
        let p = parse(MINIMAL, &["model.channels=[8,16]"]).unwrap();
        let back = parse(&p.to_toml(), &[]).unwrap();
        assert_eq!(p, back);
    }

    #[test]
    fn readback_every_defaults_to_one_is_written_only_when_set_and_refuses_zero() {
        let p = parse(MINIMAL, &[]).unwrap();
        assert_eq!(p.train.readback_every, 1);
        assert!(!p.to_toml().contains("readback_every"), "a preset at the default serialises as before");
        let p = parse(MINIMAL, &["train.readback_every=16"]).unwrap();
        assert_eq!(parse(&p.to_toml(), &[]).unwrap().train.readback_every, 16);
        let e = parse(MINIMAL, &["train.readback_every=0"]).unwrap_err().to_string();
        assert!(e.contains("presets/x.toml") && e.contains("train.readback_every = 0: must be at least 1"), "{e}");
    }

    #[test]
    fn init_by_preset_name_finds_the_newest_run() {
        let runs = tempfile::tempdir().unwrap();
        for d in ["mnist-edm-20260101-000000", "mnist-edm-20260301-000000", "mnist-edm-x-20270101-000000x", "other-20990101"] {
            std::fs::create_dir_all(runs.path().join(d)).unwrap();
        }
        let p = parse(MINIMAL, &["train.init=\"mnist-edm\""]).unwrap();
        // "mnist-edm-x-..." is another preset's run, not a time stamp.
        assert_eq!(p.resolve_init(None, runs.path()), Some(runs.path().join("mnist-edm-20260301-000000")));
        let p = parse(MINIMAL, &["train.init=\"mnist-edm-20260101-000000\""]).unwrap();
        assert_eq!(p.resolve_init(None, runs.path()), Some(runs.path().join("mnist-edm-20260101-000000")));
        let p = parse(MINIMAL, &["train.init=\"nothing\""]).unwrap();
        assert_eq!(p.resolve_init(None, runs.path()), Some(PathBuf::from("nothing")));
    }

    #[test]
    fn lpips_section_is_parsed_and_validated_with_the_key() {
        let p = parse(MINIMAL, &["train.loss=\"lpips\"", "lpips.net=\"vgg\"", "lpips.resize=64"]).unwrap();
        assert_eq!((p.train.loss, p.lpips.net, p.lpips.resize), (LossKind::Lpips, crate::model::lpips::LpipsNet::Vgg, 64));
        let e = parse(MINIMAL, &["train.loss=\"lpips\"", "lpips.net=\"squeeze\""]).unwrap_err().to_string();
        assert!(e.contains("squeeze") && e.contains("net"), "{e}");
        let e = parse(MINIMAL, &["train.loss=\"lpips\"", "lpips.resize=8"]).unwrap_err().to_string();
        assert!(e.contains("lpips.resize = 8"), "{e}");
        let e = parse(MINIMAL, &["lpips.size=8"]).unwrap_err().to_string();
        assert!(e.contains("size"), "{e}");
        assert_eq!(parse(MINIMAL, &[]).unwrap().lpips, LpipsConfig::default());
    }

    #[test]
    fn shipped_presets_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // Sweep files are checked by `sweep::tests::shipped_sweep_presets_expand`.
            if path.extension().is_some_and(|e| e == "toml") && !is_sweep_preset(&std::fs::read_to_string(&path).unwrap()) {
                if is_features_preset(&std::fs::read_to_string(&path).unwrap()) {
                    crate::features::FeaturesPreset::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
                } else {
                    Preset::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
                }
                n += 1;
            }
        }
        assert!(n >= 3, "expected the shipped presets in {}", dir.display());
    }
}
