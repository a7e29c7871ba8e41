//! A run folder and what lives where in it:
//!
//! ```text
//! <run>/preset.toml                  the exact resolved preset (what `resume` reads)
//! <run>/run.h5                       the log
//! <run>/ckpt/step-<n>.safetensors    tensors of checkpoint n
//! <run>/ckpt/step-<n>.state.json     its state (step, RNG streams, data order, ...)
//! <run>/samples/step-<n>.png         sample grids
//! ```
//!
//! A checkpoint counts only when both of its files are there (`train::checkpoint` writes the
//! json last), so a crash mid-write never lists a half checkpoint.

use std::fs;
use std::path::{Path, PathBuf};

use super::Paths;
use crate::error::WithPath;
use crate::{Error, Result};

pub const PRESET_FILE: &str = "preset.toml";
pub const LOG_FILE: &str = "run.h5";

const CKPT_PREFIX: &str = "step-";
pub const TENSORS_EXT: &str = ".safetensors";
pub const STATE_EXT: &str = ".state.json";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// A new run's default folder: `<home>/runs/<name>-<UTC time>`.
    pub fn new_default(paths: &Paths, name: &str) -> RunDir {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace([':', '-'], "").replace('T', "-");
        RunDir::new(paths.runs().join(format!("{name}-{}", stamp.trim_end_matches('Z'))))
    }

    /// The run folder `path` names: the folder itself, or the folder of its `run.h5`.
    pub fn of(path: &Path) -> RunDir {
        match path.parent() {
            Some(parent) if path.is_file() && path.file_name().is_some_and(|n| n == LOG_FILE) => RunDir::new(parent),
            _ => RunDir::new(path),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn preset_file(&self) -> PathBuf {
        self.root.join(PRESET_FILE)
    }

    /// The histograms of the latest probe (`ayt train` prints it at the end).
    pub fn probe_png(&self) -> PathBuf {
        self.root.join("probe.png")
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    pub fn has_log(&self) -> bool {
        self.log_file().is_file()
    }

    /// Whether a run was started here (its log or its preset exists).
    pub fn holds_run(&self) -> bool {
        self.log_file().exists() || self.preset_file().exists()
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.root.join("samples")
    }

    /// `samples/step-<n>.png`.
    pub fn sample_grid(&self, step: u64) -> PathBuf {
        self.samples_dir().join(format!("step-{step}.png"))
    }

    pub fn ckpt_dir(&self) -> PathBuf {
        self.root.join("ckpt")
    }

    /// `ckpt/step-<n>.safetensors`.
    pub fn tensors_path(&self, step: u64) -> PathBuf {
        self.ckpt_dir().join(format!("{CKPT_PREFIX}{step}{TENSORS_EXT}"))
    }

    /// `ckpt/step-<n>.state.json`.
    pub fn state_path(&self, step: u64) -> PathBuf {
        self.ckpt_dir().join(format!("{CKPT_PREFIX}{step}{STATE_EXT}"))
    }

    /// Steps that have a complete checkpoint (both files present), ascending. A run without a
    /// `ckpt` folder has none.
    pub fn checkpoints(&self) -> Result<Vec<u64>> {
        let dir = self.ckpt_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::file(&dir, e.to_string())),
        };
        let mut steps = Vec::new();
        for entry in entries {
            let entry = entry.with_path(&dir)?;
            let name = entry.file_name();
            let Some(step) = name
                .to_str()
                .and_then(|n| n.strip_prefix(CKPT_PREFIX))
                .and_then(|n| n.strip_suffix(TENSORS_EXT))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            // Canonical names only (`step-007` would not round-trip through `tensors_path`).
            if self.tensors_path(step).file_name() != Some(name.as_os_str()) {
                continue;
            }
            if entry.path().is_file() && self.state_path(step).is_file() {
                steps.push(step);
            }
        }
        steps.sort_unstable();
        Ok(steps)
    }

    /// The newest complete checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<u64>> {
        Ok(self.checkpoints()?.last().copied())
    }

    /// `step` when given, else the newest checkpoint; an error naming the folder when it has none.
    pub fn checkpoint_step(&self, step: Option<u64>) -> Result<u64> {
        match step {
            Some(s) => Ok(s),
            None => self.latest_checkpoint()?.ok_or_else(|| Error::file(&self.root, "no checkpoint in this run folder")),
        }
    }

    /// A checkpoint named by a run folder (its newest) or by its `.safetensors` file.
    pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
        if path.is_dir() {
            let run = RunDir::new(path);
            let step = run
                .latest_checkpoint()?
                .ok_or_else(|| Error::file(path, "no checkpoint in this run folder (ckpt/step-<n>.safetensors)"))?;
            Ok(run.tensors_path(step))
        } else if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::file(path, "no such checkpoint file or run folder"))
        }
    }
}

impl AsRef<Path> for RunDir {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}

/// The json sibling of a `.safetensors` checkpoint file.
pub fn state_path_for(tensors_file: &Path) -> Result<PathBuf> {
    let name = tensors_file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(TENSORS_EXT))
        .ok_or_else(|| Error::file(tensors_file, "not a checkpoint: the name must end in .safetensors"))?;
    Ok(tensors_file.with_file_name(format!("{name}{STATE_EXT}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: PathBuf) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "").unwrap();
    }

    #[test]
    fn checkpoints_lists_complete_canonical_ones_and_latest_picks_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert_eq!(run.checkpoints().unwrap(), Vec::<u64>::new());
        assert_eq!(run.latest_checkpoint().unwrap(), None);
        let e = run.checkpoint_step(None).unwrap_err().to_string();
        assert!(e.contains("no checkpoint in this run folder") && e.contains(&dir.path().display().to_string()), "{e}");
        for s in [100, 20, 3] {
            touch(run.tensors_path(s));
            touch(run.state_path(s));
        }
        touch(run.tensors_path(500)); // no json: half written
        let ck = run.ckpt_dir();
        for stray in
            ["step-600.state.json", ".step-700.safetensors.tmp", "step-x.safetensors", "step-007.safetensors", "step-007.state.json"]
        {
            touch(ck.join(stray));
        }
        assert_eq!(run.checkpoints().unwrap(), vec![3, 20, 100]);
        assert_eq!(run.latest_checkpoint().unwrap(), Some(100));
        assert_eq!((run.checkpoint_step(None).unwrap(), run.checkpoint_step(Some(20)).unwrap()), (100, 20));
        assert_eq!(RunDir::resolve_checkpoint(dir.path()).unwrap(), run.tensors_path(100));
        assert_eq!(state_path_for(&run.tensors_path(3)).unwrap(), run.state_path(3));
        assert!(state_path_for(&dir.path().join("x.bin")).unwrap_err().to_string().contains("x.bin"));
    }

    #[test]
    fn the_folder_of_a_log_file_is_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert!(!run.holds_run());
        touch(run.log_file());
        assert!(run.holds_run() && run.has_log());
        assert_eq!(RunDir::of(&run.log_file()), run);
        assert_eq!(RunDir::of(dir.path()), run);
        let paths = Paths { home: dir.path().to_path_buf() };
        let fresh = RunDir::new_default(&paths, "quick");
        assert!(fresh.path().starts_with(paths.runs()));
        assert!(fresh.path().file_name().unwrap().to_string_lossy().starts_with("quick-20"));
    }
}
