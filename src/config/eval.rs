//! The `[eval]` preset table: sample-quality evaluation during training and by `ayt eval`
//! (method.md 8).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate the EMA model at every multiple of this many kimg during training, and at the
    /// end of the run (0: off; `ayt eval` still works on any checkpoint).
    pub every_kimg: f64,
    /// Generated samples (and reference images) per FD.
    pub n: usize,
    /// Training steps of the evaluator network when it is not cached yet.
    pub evalnet_iterations: u64,
    /// torchvision Inception-v3 weights (`.safetensors`): adds real FID. Absent: no FID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inception: Option<String>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { every_kimg: 0.0, n: 1000, evalnet_iterations: 1500, inception: None }
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
        if self.evalnet_iterations == 0 {
            return Err("eval.evalnet_iterations = 0: must be at least 1".into());
        }
        Ok(())
    }
}
