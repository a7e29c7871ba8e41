//! Sweeps: a `[sweep]` table in a run preset expands to a grid of runs (`expand`), planned once
//! with shared inputs (`plan`), recorded in `sweep.h5` (`index`), run in turn or as a Slurm job
//! array (`runner`, `slurm`), and summarised (`report`).

mod curves;
pub mod expand;
mod figures;
pub mod index;
pub mod lock;
pub mod plan;
pub mod report;
pub mod runner;
pub mod slurm;
pub mod stats;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use expand::{Member, SweepSpec};
pub use index::{MemberState, Plan, PlannedMember, State, SweepDir};

use crate::paths::Paths;
use crate::{Error, Result};

/// A sweep named on the command line: its folder, a file in it (`sweep.h5`, `plan.json`), or
/// its sweep file (found under `<home>/sweeps/<name>`).
pub fn locate(arg: &Path, paths: &Paths) -> Result<SweepDir> {
    if arg.is_dir() {
        if runner::is_sweep_dir(arg) {
            return Ok(SweepDir::new(arg));
        }
        return Err(Error::file(arg, format!("not a sweep folder (no {})", index::PLAN_FILE)));
    }
    if arg.is_file() {
        let name = arg.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == index::INDEX_FILE || name == index::PLAN_FILE {
            let dir = arg.parent().unwrap_or(Path::new("."));
            return locate(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }, paths);
        }
        let spec = SweepSpec::load(arg)?;
        let dir = plan::sweep_dir(paths, &spec.name)?;
        if !runner::is_sweep_dir(&dir.root) {
            return Err(Error::file(
                arg,
                format!("sweep {} has not started: no {} (run `ayt sweep` first)", spec.name, dir.plan_path().display()),
            ));
        }
        return Ok(dir);
    }
    Err(Error::file(arg, "no such sweep file or folder"))
}
