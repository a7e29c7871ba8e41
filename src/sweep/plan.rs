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
    let features = if members.iter().any(|m| m.preset.train.loss == LossKind::Mfd) { Some(pin_phi(spec, paths)?) } else { None };
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

/// The phi every MFD member loads (found by name and data-set checksum), pinned by checksum.
fn pin_phi(spec: &SweepSpec, paths: &Paths) -> Result<SharedFile> {
    let name = spec.base.mfd.features.clone();
    let data = spec.base.open_data(paths)?;
    let path = crate::features::phi_path(paths, &name, &data.sha256);
    if !path.exists() {
        return Err(Error::Preset {
            path: spec.path.clone(),
            msg: format!(
                "mfd.features = {name:?}: no phi trained on data set {} at {} (train it with `ayt features train --preset presets/{name}.toml`)",
                data.name,
                path.display()
            ),
        });
    }
    Ok(SharedFile { name, source: path.clone(), sha256: sha256_file(&path)?, path })
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
