//! A Slurm job-array script for a sweep: task i runs `ayt sweep FILE --member i` and nothing
//! else. Tasks never write a shared file without the sweep lock (see `index`), so any number
//! may run at once.

use std::path::{Path, PathBuf};

use super::index::Plan;
use crate::{Error, Result};

/// Resources and paths of the job.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// The `ayt` binary the tasks run (absolute).
    pub ayt: PathBuf,
    /// The ayt home every task uses (where the sweep folder is).
    pub home: PathBuf,
    pub cpus: usize,
    /// Wall-clock limit per task, in a Slurm time format (`HH:MM:SS`, `D-HH:MM:SS`, minutes).
    pub time: String,
}

/// The script's text. Logs go to `<log_dir>/<name>-<job id>_<task>.out`.
pub fn script(plan: &Plan, log_dir: &Path, opts: &SlurmOptions) -> Result<String> {
    check_time(&opts.time)?;
    if opts.cpus == 0 {
        return Err(Error::msg("--cpus 0: a task needs at least one CPU"));
    }
    let n = plan.members.len();
    let log = log_dir.join(format!("{}-%A_%a.out", plan.name));
    Ok(format!(
        "#!/bin/bash\n\
         # ayt sweep {name}: {n} members, one array task each (written by `ayt sweep --emit-slurm`).\n\
         # Submit with: sbatch {script_name}\n\
         #SBATCH --job-name=ayt-{name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --time={time}\n\
         #SBATCH --output={log}\n\
         exec {ayt} --home {home} sweep {file} --member \"$SLURM_ARRAY_TASK_ID\"\n",
        name = plan.name,
        script_name = script_file_name(plan),
        last = n.saturating_sub(1),
        cpus = opts.cpus,
        time = opts.time,
        log = log.display(),
        ayt = shell_quote(&opts.ayt.display().to_string()),
        home = shell_quote(&opts.home.display().to_string()),
        file = shell_quote(&plan.sweep_file.display().to_string()),
    ))
}

pub fn script_file_name(plan: &Plan) -> String {
    format!("{}.sbatch", plan.name)
}

/// Writes the script into `dir` (and creates `dir/logs`, which Slurm needs to exist); returns
/// the script's path.
pub fn write(plan: &Plan, dir: &Path, opts: &SlurmOptions) -> Result<PathBuf> {
    let dir = std::path::absolute(dir).map_err(|e| Error::file(dir, e.to_string()))?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::file(&logs, format!("cannot create: {e}")))?;
    let path = dir.join(script_file_name(plan));
    std::fs::write(&path, script(plan, &logs, opts)?).map_err(|e| Error::file(&path, format!("cannot write: {e}")))?;
    Ok(path)
}

/// `HH:MM:SS`, `D-HH:MM:SS`, `MM:SS` or minutes: digits, ':' and one '-'.
fn check_time(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-')
        && t.matches('-').count() <= 1
        && t.split([':', '-']).all(|p| !p.is_empty());
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!("--time {t:?}: expected a Slurm time such as 02:00:00, 1-00:00:00 or 90 (minutes)")))
    }
}

/// Single-quotes `s` for bash.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
