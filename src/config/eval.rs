//! The `[eval]` preset table: sample-quality evaluation during training and by `ayt eval`
//! (method.md 8).

use serde::{Deserialize, Serialize};

/// More repeats than this is a typo (each one is a full evaluation).
pub const MAX_REPEATS: usize = 64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate the EMA model at every multiple of this many kimg during training, and at the
    /// end of the run (0: off; `ayt eval` still works on any checkpoint).
    pub every_kimg: f64,
    /// Generated samples (and reference images) per FD.
    pub n: usize,
    /// FD evaluations per model state, each with its own sample noise: the logged value is
    /// their mean, with their standard deviation beside it (`<metric>_sd`) from 2 on.
    pub repeats: usize,
    /// Training steps of the evaluator network when it is not cached yet.
    pub evalnet_iterations: u64,
    /// torchvision Inception-v3 weights (`.safetensors`): adds real FID. Absent: no FID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inception: Option<String>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { every_kimg: 0.0, n: 1000, repeats: 1, evalnet_iterations: 1500, inception: None }
    }
}

impl EvalConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.every_kimg.is_finite() && self.every_kimg >= 0.0) {
            return Err(format!("eval.every_kimg = {}: must be >= 0 (0 turns evaluation during training off)", self.every_kimg));
        }
        if self.n < 2 {
            return Err(format!("eval.n = {}: FD needs at least 2 samples", self.n));
        }
        if !(1..=MAX_REPEATS).contains(&self.repeats) {
            return Err(format!("eval.repeats = {}: must be between 1 and {MAX_REPEATS}", self.repeats));
        }
        if self.evalnet_iterations == 0 {
            return Err("eval.evalnet_iterations = 0: must be at least 1".into());
        }
        Ok(())
    }
}
