//! `ayt features train` presets: data, phi architecture, augmentations, training length.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::augment::AugmentConfig;
use crate::data::DataConfig;
use crate::model::phi::PhiConfig;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesPreset {
    /// The name training presets use to find the trained network (`mfd.features`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: u64,
    pub data: DataConfig,
    /// Held-out data for the R^2 report: a store name (default `<dataset>-test` where it exists;
    /// fresh disks for `disks`).
    #[serde(default)]
    pub holdout: Option<String>,
    #[serde(default)]
    pub phi: PhiConfig,
    #[serde(default)]
    pub augment: AugmentConfig,
    pub train: FeaturesTrain,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesTrain {
    pub batch_size: usize,
    pub iterations: u64,
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// `constant` (method.md's RAdam 1e-4) or `cosine`: decay to 0 over the run, which settles
    /// the regression and lifts held-out R^2 for the same number of steps.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Log the loss every N steps.
    #[serde(default = "default_every")]
    pub log_every: u64,
    /// Held-out images for the R^2 evaluation at the end.
    #[serde(default = "default_eval")]
    pub eval_images: usize,
    /// Also evaluate held-out R^2 (logged as `r2/*`) and write a snapshot of phi to the run folder
    /// every N steps; 0: only at the end.
    #[serde(default)]
    pub eval_every: u64,
    /// Start from a stored phi instead of a fresh initialisation, to continue a long training: a
    /// file (a run's `phi-snapshot.h5`, a feature-store file) or a feature-store name trained on
    /// this data set. Its architecture and labels must be this preset's; the optimizer starts
    /// afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    #[default]
    Constant,
    Cosine,
}

impl LrSchedule {
    /// The learning rate before step `it` (0-based) of `total`.
    pub fn at(self, base: f64, it: u64, total: u64) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => 0.5 * base * (1.0 + (std::f64::consts::PI * it as f64 / total.max(1) as f64).cos()),
        }
    }
}

fn default_lr() -> f64 {
    1e-4
}
fn default_every() -> u64 {
    20
}
fn default_eval() -> usize {
    2000
}

impl FeaturesPreset {
    pub fn load(path: &Path, overrides: &[String]) -> Result<FeaturesPreset> {
        use crate::config::overrides::{parse_with_overrides, read_preset};
        let p: FeaturesPreset = parse_with_overrides(&read_preset(path)?, path, overrides)?;
        p.validate().map_err(|msg| Error::Preset { path: path.to_path_buf(), msg })?;
        Ok(p)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() || self.name.contains('/') {
            return Err(format!("name = {:?}: must be non-empty and contain no '/'", self.name));
        }
        if self.train.batch_size == 0 || self.train.iterations == 0 {
            return Err("train.batch_size and train.iterations must be at least 1".into());
        }
        if !(self.train.lr.is_finite() && self.train.lr > 0.0) {
            return Err(format!("train.lr = {}: must be a positive number", self.train.lr));
        }
        self.phi.validate()?;
        self.augment.validate().map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not serialise preset: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::LrSchedule;

    #[test]
    fn cosine_schedule_starts_at_base_and_ends_near_zero() {
        let s = LrSchedule::Cosine;
        assert_eq!(s.at(1e-3, 0, 100), 1e-3);
        assert!((s.at(1e-3, 50, 100) - 0.5e-3).abs() < 1e-12);
        assert!(s.at(1e-3, 99, 100) < 1e-6);
        assert_eq!(LrSchedule::Constant.at(1e-3, 99, 100), 1e-3);
    }
}
