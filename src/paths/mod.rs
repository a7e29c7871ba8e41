//! Where things live: the ayt home (`$AYT_HOME`, or `--home`, else the platform data dir, e.g.
//! `~/.local/share/ayt`) with its runs, data sets and feature caches, and a run folder's layout
//! ([`RunDir`]).

pub mod presets;
mod run_dir;
pub mod shipped;

use std::path::PathBuf;

pub use run_dir::{state_path_for, RunDir, LOG_FILE, PRESET_FILE};

pub const HOME_ENV: &str = "AYT_HOME";

#[derive(Clone, Debug)]
pub struct Paths {
    pub home: PathBuf,
}

impl Paths {
    /// `explicit` (a flag) wins over `$AYT_HOME`, which wins over the platform default.
    pub fn resolve(explicit: Option<PathBuf>) -> Paths {
        let home = explicit
            .or_else(|| std::env::var_os(HOME_ENV).map(PathBuf::from))
            .or_else(|| directories::ProjectDirs::from("", "", "ayt").map(|d| d.data_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from(".ayt"));
        Paths { home }
    }
    pub fn datasets(&self) -> PathBuf {
        self.home.join("datasets")
    }
    pub fn runs(&self) -> PathBuf {
        self.home.join("runs")
    }
    /// Sweeps: `<home>/sweeps/<sweep name>/` (index, members' run folders, report).
    pub fn sweeps(&self) -> PathBuf {
        self.home.join("sweeps")
    }
    pub fn features(&self) -> PathBuf {
        self.home.join("features")
    }
    /// Feature caches (reference statistics, local-PCA bases), rebuilt when missing.
    pub fn cache(&self) -> PathBuf {
        self.home.join("cache")
    }
}
