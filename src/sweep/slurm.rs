//! A Slurm job-array script for a sweep: task i runs `ayt sweep FILE --member i` and nothing
//! else. Tasks never write a shared file without the sweep lock (see `index`), so any number
//! may run at once. The script is written with the sweep planned (its shared inputs pinned), or,
//! when a shared input does not exist yet, unplanned: the first task to start plans it, under the
//! plan lock, so the array can be submitted with `sbatch --dependency=afterok:JOBID` after the job
//! that makes the input.

use std::path::{Path, PathBuf};

use super::expand::SweepSpec;
use super::index::Plan;
use super::plan::Missing;
use crate::paths::Paths;
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

/// What a job array needs to know of its sweep.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub members: usize,
    /// Absolute.
    pub sweep_file: PathBuf,
}

impl Job {
    pub fn of_plan(plan: &Plan) -> Job {
        Job { name: plan.name.clone(), members: plan.members.len(), sweep_file: plan.sweep_file.clone() }
    }
}

/// The script's text. Logs go to `<log_dir>/<name>-<job id>_<task>.out`. `missing`: the shared
/// inputs that do not exist yet (the script says to submit it after the job that makes them).
pub fn script(job: &Job, log_dir: &Path, opts: &SlurmOptions, missing: &[Missing]) -> Result<String> {
    check_time(&opts.time)?;
    if opts.cpus == 0 {
        return Err(Error::msg("--cpus 0: a task needs at least one CPU"));
    }
    if job.members == 0 {
        return Err(Error::msg(format!("sweep {}: no members, nothing to submit", job.name)));
    }
    let log = log_dir.join(format!("{}-%A_%a.out", job.name));
    let submit = if missing.is_empty() {
        format!("# Submit with: sbatch {}\n", script_file_name(&job.name))
    } else {
        let what: Vec<String> = missing.iter().map(|m| format!("#   {} (made by `{}`)\n", m.field, m.made_by())).collect();
        format!(
            "# Not planned yet: the first task plans the sweep, and these shared inputs must exist by then:\n{}\
             # Submit after the job that makes them: sbatch --dependency=afterok:JOBID {}\n",
            what.concat(),
            script_file_name(&job.name)
        )
    };
    Ok(format!(
        "#!/bin/bash\n\
         # ayt sweep {name}: {n} members, one array task each (written by `ayt sweep --emit-slurm`).\n\
         {submit}\
         #SBATCH --job-name=ayt-{name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --time={time}\n\
         #SBATCH --output={log}\n\
         exec {ayt} --home {home} sweep {file} --member \"$SLURM_ARRAY_TASK_ID\"\n",
        name = job.name,
        n = job.members,
        last = job.members - 1,
        cpus = opts.cpus,
        time = opts.time,
        log = log.display(),
        ayt = shell_quote(&opts.ayt.display().to_string()),
        home = shell_quote(&opts.home.display().to_string()),
        file = shell_quote(&job.sweep_file.display().to_string()),
    ))
}

pub fn script_file_name(sweep: &str) -> String {
    format!("{sweep}.sbatch")
}

/// Writes the script into `dir` (and creates `dir/logs`, which Slurm needs to exist); returns
/// the script's path.
pub fn write(job: &Job, dir: &Path, opts: &SlurmOptions, missing: &[Missing]) -> Result<PathBuf> {
    let dir = std::path::absolute(dir).map_err(|e| Error::file(dir, e.to_string()))?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::file(&logs, format!("cannot create: {e}")))?;
    let path = dir.join(script_file_name(&job.name));
    let text = script(job, &logs, opts, missing)?;
    std::fs::write(&path, text).map_err(|e| Error::file(&path, format!("cannot write: {e}")))?;
    Ok(path)
}

/// What `--emit-slurm` did.
#[derive(Debug)]
pub struct Emitted {
    pub script: PathBuf,
    pub job: Job,
    /// The plan, when made (or found) now; `None` when a shared input does not exist yet.
    pub plan: Option<Plan>,
    /// The shared inputs that do not exist yet (empty when planned).
    pub missing: Vec<Missing>,
}

/// `ayt sweep --emit-slurm`: plans the sweep (pinning its shared inputs) and writes the script;
/// when the sweep has no plan yet and a shared input does not exist, writes the script without
/// planning (the first task plans) instead of failing, and returns what is missing.
pub fn emit(spec: &SweepSpec, paths: &Paths, dir: &Path, opts: &SlurmOptions) -> Result<Emitted> {
    check_time(&opts.time)?;
    let planned = super::plan::sweep_dir(paths, &spec.name)?.plan_path().exists();
    let missing = if planned { Vec::new() } else { super::plan::missing_inputs(spec, paths)? };
    let (job, plan) = if missing.is_empty() {
        let (_, plan) = super::plan::open_or_create(spec, paths)?;
        (Job::of_plan(&plan), Some(plan))
    } else {
        let sweep_file = std::path::absolute(&spec.path).map_err(|e| Error::file(&spec.path, e.to_string()))?;
        (Job { name: spec.name.clone(), members: spec.expand(None)?.len(), sweep_file }, None)
    };
    let script = write(&job, dir, opts, &missing)?;
    Ok(Emitted { script, job, plan, missing })
}

impl Emitted {
    /// What to tell the researcher: how to submit, and when the sweep is not planned yet, what
    /// is missing, what makes it and how to make the array wait for those jobs.
    pub fn advice(&self, opts: &SlurmOptions) -> Vec<String> {
        let script = self.script.display();
        let mut lines = vec![format!("sweep {}: {} members; job array {script}", self.job.name, self.job.members)];
        if let Some(init) = self.plan.as_ref().and_then(|p| p.init.as_ref()) {
            lines.push(format!("train.init = {:?}: pinned {} (sha256 {})", init.name, init.source.display(), init.sha256));
        }
        if self.missing.is_empty() {
            lines.push(format!("submit it with `sbatch {script}`"));
            return lines;
        }
        lines.push("not planned yet: a shared input does not exist (the first task plans the sweep and pins what it finds then):".into());
        lines.extend(self.missing.iter().map(|m| format!("  {}", m.why)));
        lines.push("submit what makes it first, then the array with a dependency (it starts once they all succeed), e.g.:".into());
        let ayt = format!("{} --home {}", shell_quote(&opts.ayt.display().to_string()), shell_quote(&opts.home.display().to_string()));
        for (i, m) in self.missing.iter().enumerate() {
            lines.push(match &m.make {
                Some(args) => format!("  pre{i}=$(sbatch --parsable --wrap \"{ayt} {args}\")"),
                None => format!("  pre{i}=<the job id of the run that writes {}>", m.name),
            });
        }
        let ids: Vec<String> = (0..self.missing.len()).map(|i| format!("$pre{i}")).collect();
        lines.push(format!("  sbatch --dependency=afterok:{} {script}", ids.join(":")));
        lines
    }
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
