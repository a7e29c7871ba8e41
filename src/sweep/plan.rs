//! The plan of a sweep: its grid expanded once, with the shared inputs resolved once (the initial
//! checkpoint copied into the sweep folder, phi pinned by checksum), so every member, in every
//! process and on every re-run, trains from the same inputs.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::expand::SweepSpec;
use super::index::{now_utc, Plan, PlannedMember, SharedFile, SweepDir};
use super::lock::FileLock;
use crate::config::LossKind;
use crate::paths::Paths;
use crate::{Error, Result};

/// The sweep's folder: `<home>/sweeps/<name>` (absolute, as members' presets refer into it).
pub fn sweep_dir(paths: &Paths, name: &str) -> Result<SweepDir> {
    let root = paths.sweeps().join(name);
    Ok(SweepDir::new(std::path::absolute(&root).map_err(|e| Error::file(&root, e.to_string()))?))
}

/// Opens the sweep's plan, creating it on first use; on later runs, checks that the sweep file
/// still expands to the planned grid (so a resumed sweep never mixes two grids).
pub fn open_or_create(spec: &SweepSpec, paths: &Paths) -> Result<(SweepDir, Plan)> {
    let dir = sweep_dir(paths, &spec.name)?;
    std::fs::create_dir_all(&dir.root).map_err(|e| Error::file(&dir.root, format!("cannot create: {e}")))?;
    let plan = {
        // Concurrent array tasks: the first creates the plan, the others read it.
        let _lock = FileLock::exclusive(&dir.lock_path())?;
        if dir.plan_path().exists() {
            let plan = dir.read_plan()?;
            check_unchanged(spec, &plan, &dir)?;
            plan
        } else {
            let plan = create(spec, paths, &dir)?;
            dir.write_plan(&plan)?;
            plan
        }
    };
    dir.rebuild_index(&plan)?;
    Ok((dir, plan))
}

fn create(spec: &SweepSpec, paths: &Paths, dir: &SweepDir) -> Result<Plan> {
    let init = match &spec.base.train.init {
        Some(name) => Some(pin_init(spec, paths, name, dir)?),
        None => None,
    };
    let members = spec.expand(init.as_ref().map(|i| i.path.as_path()))?;
    let features = match phi_for(spec, paths)? {
        Some((path, data)) => Some(pin_phi(spec, path, &data)?),
        None => None,
    };
    let sweep_file = std::path::absolute(&spec.path).unwrap_or_else(|_| spec.path.clone());
    Ok(Plan {
        name: spec.name.clone(),
        sweep_file,
        created_utc: now_utc(),
        keys: spec.axes.iter().map(|a| a.key.clone()).collect(),
        kimg: spec.kimg,
        init,
        features,
        members: members
            .into_iter()
            .map(|m| PlannedMember {
                index: m.index,
                label: m.label,
                values: m.values,
                overrides: m.overrides,
                iterations: m.preset.train.iterations,
                preset_toml: m.preset.to_toml(),
            })
            .collect(),
    })
}

/// Where `train.init` points now: a checkpoint file (a run folder's latest, or a preset name's
/// newest run's latest). Errors name the sweep file and the field.
pub fn resolve_init(spec: &SweepSpec, paths: &Paths, name: &str) -> Result<PathBuf> {
    let found = spec.base.resolve_init(spec.path.parent(), &paths.runs()).unwrap_or_else(|| PathBuf::from(name));
    crate::paths::RunDir::resolve_checkpoint(&found).map_err(|e| Error::Preset {
        path: spec.path.clone(),
        msg: format!("train.init = {name:?}: {e} (looked in {} and next to the sweep file)", paths.runs().display()),
    })
}

/// Resolves `train.init` once and copies the checkpoint into the sweep folder: a later run of
/// the same preset, or pruning in the source run, cannot change what the members start from.
fn pin_init(spec: &SweepSpec, paths: &Paths, name: &str, dir: &SweepDir) -> Result<SharedFile> {
    let source = resolve_init(spec, paths, name)?;
    let source = std::path::absolute(&source).unwrap_or(source);
    let copy = dir.init_copy_path();
    std::fs::copy(&source, &copy).map_err(|e| Error::file(&copy, format!("cannot copy {}: {e}", source.display())))?;
    Ok(SharedFile { name: name.to_string(), source, sha256: sha256_file(&copy)?, path: copy })
}

/// Where the phi every MFD member loads lives (found by name and data-set checksum), with the
/// data set's name; `None` when no member uses the MFD loss.
pub(super) fn phi_for(spec: &SweepSpec, paths: &Paths) -> Result<Option<(PathBuf, String)>> {
    if !spec.expand(None)?.iter().any(|m| m.preset.train.loss == LossKind::Mfd) {
        return Ok(None);
    }
    let data = spec.base.open_data(paths)?;
    Ok(Some((crate::features::find_phi(paths, &spec.base.mfd.features, &data.sha256)?, data.name)))
}

/// The phi every MFD member loads, pinned by checksum.
fn pin_phi(spec: &SweepSpec, path: PathBuf, data: &str) -> Result<SharedFile> {
    let name = spec.base.mfd.features.clone();
    if !path.exists() {
        return Err(Error::Preset { path: spec.path.clone(), msg: missing_phi(spec, &name, data, &path) });
    }
    Ok(SharedFile { name, source: path.clone(), sha256: sha256_file(&path)?, path })
}

fn missing_phi(spec: &SweepSpec, name: &str, data: &str, path: &Path) -> String {
    format!(
        "mfd.features = {name:?}: no phi trained on data set {data} at {} (train it with `ayt {}`)",
        path.display(),
        make_phi(spec, name)
    )
}

fn make_phi(spec: &SweepSpec, name: &str) -> String {
    format!("features train --preset {}", preset_for(spec, name))
}

/// Where the preset `name` probably is: next to the sweep file if there, else `presets/`.
fn preset_for(spec: &SweepSpec, name: &str) -> String {
    let beside = spec.path.parent().map(|d| d.join(format!("{name}.toml")));
    match beside.filter(|p| p.is_file()) {
        Some(p) => p.display().to_string(),
        None => format!("presets/{name}.toml"),
    }
}

/// A shared input of a sweep that does not exist yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    /// `train.init` or `mfd.features`.
    pub field: &'static str,
    /// As the preset names it.
    pub name: String,
    /// Why it cannot be found (as an error would say it).
    pub why: String,
    /// The `ayt` command (its arguments) that makes it, the pre-training step a researcher
    /// submits first; `None` when `train.init` names a file or folder.
    pub make: Option<String>,
}

impl Missing {
    /// The command that makes it, or what to look for.
    pub fn made_by(&self) -> String {
        match &self.make {
            Some(args) => format!("ayt {args}"),
            None => format!("the run that writes {}", self.name),
        }
    }
}

/// The shared inputs the plan pins (`train.init`, phi for MFD members) that do not exist yet,
/// for `--emit-slurm`, which can leave planning to the first array task when a job submitted
/// before it makes them.
pub fn missing_inputs(spec: &SweepSpec, paths: &Paths) -> Result<Vec<Missing>> {
    let mut missing = Vec::new();
    if let Some(name) = &spec.base.train.init {
        if let Err(e) = resolve_init(spec, paths, name) {
            let is_path = name.contains('/') || name.ends_with(".safetensors");
            let make = (!is_path).then(|| format!("train --preset {}", preset_for(spec, name)));
            missing.push(Missing { field: "train.init", name: name.clone(), why: e.to_string(), make });
        }
    }
    if let Some((path, data)) = phi_for(spec, paths)? {
        if !path.exists() {
            let name = spec.base.mfd.features.clone();
            let why = Error::Preset { path: spec.path.clone(), msg: missing_phi(spec, &name, &data, &path) }.to_string();
            missing.push(Missing { field: "mfd.features", make: Some(make_phi(spec, &name)), name, why });
        }
    }
    Ok(missing)
}

/// Errors if a shared input changed since the plan was made (e.g. phi retrained mid-sweep).
pub fn check_shared_inputs(plan: &Plan) -> Result<()> {
    for (field, shared) in [("train.init", &plan.init), ("mfd.features", &plan.features)] {
        if let Some(s) = shared {
            if !s.path.exists() {
                return Err(Error::file(&s.path, format!("{field} = {:?}: the sweep's shared input is gone", s.name)));
            }
            if sha256_file(&s.path)? != s.sha256 {
                return Err(Error::file(
                    &s.path,
                    format!("{field} = {:?}: changed since the sweep started (sha256 differs); members must share one input", s.name),
                ));
            }
        }
    }
    Ok(())
}

fn check_unchanged(spec: &SweepSpec, plan: &Plan, dir: &SweepDir) -> Result<()> {
    let members = spec.expand(plan.init.as_ref().map(|i| i.path.as_path()))?;
    let changed = |msg: String| Error::Preset {
        path: spec.path.clone(),
        msg: format!(
            "changed since the sweep started ({}): {msg}; restore the file, or give the sweep a new name",
            dir.plan_path().display()
        ),
    };
    if members.len() != plan.members.len() {
        return Err(changed(format!("{} members planned, the file now gives {}", plan.members.len(), members.len())));
    }
    for (now, was) in members.iter().zip(&plan.members) {
        if now.label != was.label {
            return Err(changed(format!("member {} was {}, is now {}", was.index, was.label, now.label)));
        }
        let now_toml = now.preset.to_toml();
        if now_toml != was.preset_toml {
            let diff = now_toml.lines().zip(was.preset_toml.lines()).find(|(a, b)| a != b).map(|(a, b)| format!(": `{b}` is now `{a}`"));
            return Err(changed(format!("member {} ({}) has a different preset{}", was.index, was.label, diff.unwrap_or_default())));
        }
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
