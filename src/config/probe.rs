//! The `[probe]` preset table: tangent-alignment probes during training (method.md 9).

use serde::{Deserialize, Serialize};

use super::validate::{at_least, Check};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Probe every N steps (0: only on demand and at the end).
    pub every: u64,
    /// Probe batch size.
    pub n: usize,
    /// Local PCA on image data: neighbours and directions.
    pub k: usize,
    pub m: usize,
    pub bins: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { every: 0, n: 64, k: 64, m: 8, bins: 40 }
    }
}

impl ProbeConfig {
    /// Range checks naming the key and the value.
    pub fn validate(&self) -> Check {
        at_least("probe.n", self.n as u64, 1)?;
        at_least("probe.bins", self.bins as u64, 1)?;
        at_least("probe.m", self.m as u64, 1)?;
        if self.k < self.m {
            return Err(format!("probe.k = {}: the local PCA needs at least probe.m = {} neighbours", self.k, self.m));
        }
        Ok(())
    }
}
