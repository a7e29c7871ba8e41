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
        FeaturesPreset::parse(&crate::config::overrides::read_preset(path)?, path, overrides)
    }

    /// Parses preset text (`--set` overrides applied) and validates it; `path` names it in errors.
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<FeaturesPreset> {
        let p: FeaturesPreset = crate::config::overrides::parse_with_overrides(text, path, overrides)?;
        p.validate().map_err(|msg| Error::Preset { path: path.to_path_buf(), msg })?;
        Ok(p)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() || self.name.contains('/') {
            return Err(format!("name = {:?}: must be non-empty and contain no '/'", self.name));
        }
        use crate::config::validate::{at_least, between, positive};
        use crate::config::MAX_BATCH;
        let t = &self.train;
        between("train.batch_size", t.batch_size as u64, 1, MAX_BATCH)?;
        at_least("train.iterations", t.iterations, 1)?;
        positive("train.lr", t.lr)?;
        at_least("train.log_every", t.log_every, 1)?;
        // R^2 needs a spread of held-out targets
        at_least("train.eval_images", t.eval_images as u64, 2)?;
        self.data.disks.validate().map_err(|e| e.to_string())?;
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
    use super::{FeaturesPreset, LrSchedule};
    use crate::config::field_tests::{check_fields, file};

    const FULL: &str = "name = \"phi\"\n[data]\ndataset = \"disks\"\n[train]\nbatch_size = 8\niterations = 10\n";

    #[rustfmt::skip]
    const FIELDS: &[(&str, Option<&str>)] = &[
        ("seed", Some("-1")),
        ("data.disks.size", Some("0")), ("data.disks.radius_min", Some("-0.5")), ("data.disks.radius_max", Some("0.5")),
        ("data.disks.margin", Some("-1.5")), ("data.disks.tau", Some("-0.5")),
        ("phi.widths", Some("[0]")), ("phi.depth", Some("0")), ("phi.groups", Some("0")),
        ("augment.p", Some("1.5")), ("augment.n_rampup", Some("-1")),
        ("train.batch_size", Some("0")), ("train.iterations", Some("0")), ("train.lr", Some("-0.5")),
        ("train.log_every", Some("0")), ("train.eval_images", Some("1")), ("train.eval_every", Some("-1")),
    ];

    #[test]
    fn every_numeric_features_preset_field_refuses_nan_infinities_and_out_of_range_values() {
        let full = FeaturesPreset::parse(FULL, file(), &[]).unwrap().to_toml();
        check_fields("features", &full, FIELDS, &|sets| FeaturesPreset::parse(FULL, file(), sets).map(|_| ()));
    }

    #[test]
    fn cosine_schedule_starts_at_base_and_ends_near_zero() {
        let s = LrSchedule::Cosine;
        assert_eq!(s.at(1e-3, 0, 100), 1e-3);
        assert!((s.at(1e-3, 50, 100) - 0.5e-3).abs() < 1e-12);
        assert!(s.at(1e-3, 99, 100) < 1e-6);
        assert_eq!(LrSchedule::Constant.at(1e-3, 99, 100), 1e-3);
    }
}
