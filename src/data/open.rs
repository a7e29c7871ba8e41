//! Opens the data a preset's `[data]` table names: the synthetic disks, or a data set of the
//! HDF5 store (the built-in MNIST imported on first use).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::batch::DataSource;
use super::disks::DisksConfig;
use super::{mnist, DatasetStore};
use crate::paths::Paths;
use crate::{Error, Result};

/// The `[data]` table of a preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `"disks"` (synthetic, endless) or the name of a data set in the store (`"mnist"`, ...).
    pub dataset: String,
    #[serde(default)]
    pub disks: DisksConfig,
}

/// The data source and its identity (name and checksum, recorded in `run.h5`).
pub struct OpenedData {
    pub source: DataSource,
    pub name: String,
    pub sha256: String,
}

/// Opens `data` with its order (or disk draws) seeded by `seed`.
pub fn open_data(data: &DataConfig, seed: u64, paths: &Paths) -> Result<OpenedData> {
    let name = data.dataset.as_str();
    if name == "disks" {
        let cfg = data.disks.clone();
        // The generator's parameters identify this endless data set.
        let ident = toml::to_string(&cfg).unwrap_or_default();
        let sha256 = hex::encode(Sha256::digest(ident.as_bytes()));
        return Ok(OpenedData { source: DataSource::disks(cfg, seed)?, name: "disks".into(), sha256 });
    }
    let store = DatasetStore::new(paths.datasets());
    mnist::ensure_if_builtin(&store, name)?;
    if !store.exists(name) {
        return Err(Error::msg(format!(
            "data.dataset = {name:?}: no such data set in {} (import one with `ayt data import`, or use \"disks\" or \"mnist\")",
            store.root.display()
        )));
    }
    let set = store.load(name)?;
    let sha256 = set.sha256();
    Ok(OpenedData { source: DataSource::images(Arc::new(set), seed)?, name: name.to_string(), sha256 })
}
