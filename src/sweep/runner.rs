//! Runs a sweep's members in turn on one engine, headless: finished members are skipped, an
//! interrupted one resumes from its latest checkpoint, a member another process is running (its
//! lock is held) is left to it.

use std::path::Path;
use std::time::Duration;

use super::expand::SweepSpec;
use super::index::{hostname, now_utc, Plan, PlannedMember, State, SweepDir};
use super::plan::check_shared_inputs;
use crate::config::Preset;
use crate::engine::{Command, EngineHandle, RunRequest};
use crate::paths::Paths;
use crate::{Error, Result};

/// How long to wait for a member's lock before deciding another process holds it (a reader
/// probing the lock holds it for microseconds).
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// What happened to one member in this invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum MemberOutcome {
    /// Finished before this invocation (or its final checkpoint was found).
    AlreadyDone,
    /// Another process holds its lock.
    Busy,
    Finished,
    /// Stopped before its last step (Ctrl-C): the sweep stops too.
    Stopped,
    Failed(String),
}

/// What to do for a member whose folder is in a given state.
#[derive(Debug)]
pub enum Start {
    Done { step: u64 },
    Resume { from_step: u64, request: RunRequest },
    New { request: RunRequest },
}

/// How member `m` starts: fresh, resumed from its latest checkpoint, or not at all (its final
/// checkpoint exists). A folder with a log but no checkpoint has nothing to resume: it is
/// cleared and the member starts again.
pub fn start_for(plan: &Plan, dir: &SweepDir, m: &PlannedMember) -> Result<Start> {
    let run_dir = dir.run_dir(&m.label);
    // The newest checkpoint that loads: a truncated final one is no reason to call a member done.
    let crate::train::checkpoint::NewestValid { step: newest, passed_over: skipped } =
        crate::train::checkpoint::newest_valid::<crate::train::TrainState>(&crate::paths::RunDir::new(&run_dir))?;
    if newest.is_none() && !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(|(s, why)| format!("step {s}: {why}")).collect();
        return Err(Error::file(&run_dir, format!("no checkpoint of this member loads (left as it is): {}", list.join("; "))));
    }
    match newest {
        Some(step) if step >= m.iterations => Ok(Start::Done { step }),
        Some(step) => Ok(Start::Resume { from_step: step, request: RunRequest::Resume { run_dir } }),
        None => {
            if run_dir.exists() {
                std::fs::remove_dir_all(&run_dir).map_err(|e| Error::file(&run_dir, format!("cannot clear the unfinished folder: {e}")))?;
            }
            let preset = Preset::parse(&m.preset_toml, &plan.sweep_file, &[])?;
            Ok(Start::New { request: RunRequest::New { preset: Box::new(preset), preset_dir: None, out: Some(run_dir) } })
        }
    }
}

/// Runs the members `which` (all when `None`) in order. Returns each member's outcome; stops
/// after a member that was stopped early.
pub fn run(
    dir: &SweepDir,
    plan: &Plan,
    which: Option<usize>,
    handle: &EngineHandle,
    line_every: Duration,
) -> Result<Vec<(usize, MemberOutcome)>> {
    let members: Vec<&PlannedMember> = match which {
        Some(i) => {
            let m = plan.members.get(i).ok_or_else(|| {
                Error::msg(format!("--member {i}: sweep {} has {} members (0-{})", plan.name, plan.members.len(), plan.members.len() - 1))
            })?;
            vec![m]
        }
        None => plan.members.iter().collect(),
    };
    let mut outcomes = Vec::new();
    for m in members {
        let outcome = run_member(dir, plan, m, handle, line_every)?;
        let stop = outcome == MemberOutcome::Stopped;
        outcomes.push((m.index, outcome));
        if stop {
            break;
        }
    }
    Ok(outcomes)
}

fn say(plan: &Plan, m: &PlannedMember, what: &str) {
    eprintln!("[sweep {}] member {}/{} {}: {what}", plan.name, m.index, plan.members.len(), m.label);
}

fn run_member(dir: &SweepDir, plan: &Plan, m: &PlannedMember, handle: &EngineHandle, line_every: Duration) -> Result<MemberOutcome> {
    if dir.read_status(m.index)?.state == State::Done {
        say(plan, m, "done, skipped");
        return Ok(MemberOutcome::AlreadyDone);
    }
    let Some(_lock) = dir.lock_member(m.index, LOCK_PATIENCE)? else {
        say(plan, m, &format!("running in another process (lock {}), skipped", dir.member_lock_path(m.index).display()));
        return Ok(MemberOutcome::Busy);
    };
    // Under the lock: another process may have finished it meanwhile.
    let mut status = dir.read_status(m.index)?;
    if status.state == State::Done {
        say(plan, m, "done, skipped");
        return Ok(MemberOutcome::AlreadyDone);
    }
    let update = |status: &super::index::Status| -> Result<()> {
        dir.write_status(m.index, status)?;
        dir.rebuild_index(plan)
    };
    if let Err(e) = check_shared_inputs(plan) {
        return fail(plan, m, &mut status, e.to_string(), &update);
    }
    let request = match start_for(plan, dir, m)? {
        Start::Done { step } => {
            say(plan, m, &format!("its final checkpoint (step {step}) exists: done"));
            status.state = State::Done;
            status.step = step;
            status.finished_utc = now_utc();
            update(&status)?;
            return Ok(MemberOutcome::AlreadyDone);
        }
        Start::Resume { from_step, request } => {
            say(plan, m, &format!("resuming from its checkpoint at step {from_step} of {}", m.iterations));
            request
        }
        Start::New { request } => {
            say(plan, m, &format!("starting ({} steps; {})", m.iterations, m.overrides.join(" ")));
            request
        }
    };
    // Sent before the status says running: after a Ctrl-C between members the engine is gone.
    let stopped = || Error::msg(format!("stopped (Ctrl-C) before member {} started; run the sweep again to continue", m.index));
    handle.commands.send(Command::Start(request)).map_err(|_| stopped())?;
    status.state = State::Running;
    if status.started_utc.is_empty() {
        status.started_utc = now_utc();
    }
    status.finished_utc.clear();
    status.error.clear();
    status.attempts += 1;
    status.host = hostname();
    status.pid = std::process::id();
    update(&status)?;
    match crate::report::follow(handle, line_every) {
        Ok(o) if !o.stopped_early => {
            status.state = State::Done;
            status.step = o.step;
            status.finished_utc = now_utc();
            update(&status)?;
            say(plan, m, &format!("done at step {} (final loss {:.5})", o.step, o.final_loss));
            Ok(MemberOutcome::Finished)
        }
        Ok(o) => {
            status.state = State::Interrupted;
            status.step = o.step;
            update(&status)?;
            say(plan, m, &format!("stopped at step {}; run the sweep again to resume", o.step));
            Ok(MemberOutcome::Stopped)
        }
        Err(e) => fail(plan, m, &mut status, e.to_string(), &update),
    }
}

fn fail(
    plan: &Plan,
    m: &PlannedMember,
    status: &mut super::index::Status,
    error: String,
    update: &dyn Fn(&super::index::Status) -> Result<()>,
) -> Result<MemberOutcome> {
    status.state = State::Failed;
    status.error = error.clone();
    status.finished_utc = now_utc();
    update(status)?;
    say(plan, m, &format!("failed: {error}"));
    Ok(MemberOutcome::Failed(error))
}

/// `ayt sweep --dry-run`: the grid, where `train.init` points now, and one line per member
/// (index, folder, steps, status once the sweep has started, the `--set` overrides it applies).
/// Writes nothing.
pub fn dry_run(spec: &SweepSpec, paths: &Paths) -> Result<Vec<String>> {
    let members = spec.expand(None)?;
    let dir = super::plan::sweep_dir(paths, &spec.name)?;
    let budget = spec.kimg.map(|k| format!(", {k} kimg each")).unwrap_or_default();
    let mut lines = vec![format!("sweep {}: {} members{budget}; folder {}", spec.name, members.len(), dir.root.display())];
    if let Some(init) = &spec.base.train.init {
        lines.push(match super::plan::resolve_init(spec, paths, init) {
            Ok(p) => format!("train.init = {init:?}: {}", p.display()),
            Err(e) => format!("not resolvable yet: {e}"),
        });
    }
    if let Some((phi, _)) = super::plan::phi_for(spec, paths)? {
        let name = &spec.base.mfd.features;
        lines.push(match phi.exists() {
            true => format!("mfd.features = {name:?}: {}", phi.display()),
            false => format!("not resolvable yet: mfd.features = {name:?}: no {}", phi.display()),
        });
    }
    let started = if dir.plan_path().exists() { dir.members(&dir.read_plan()?)? } else { Vec::new() };
    for m in &members {
        let status = started.iter().find(|s| s.planned.label == m.label).map(|s| format!("{:<11} ", s.status.state.as_str()));
        let sets: Vec<&str> = m.overrides.iter().map(String::as_str).filter(|o| !o.starts_with("name=")).collect();
        lines.push(format!(
            "{:>4}  {:<40} {:>8} steps  {}{}",
            m.index,
            m.label,
            m.preset.train.iterations,
            status.unwrap_or_default(),
            sets.join(" ")
        ));
    }
    Ok(lines)
}

/// Whether `path` is a sweep folder (it holds a plan).
pub fn is_sweep_dir(path: &Path) -> bool {
    path.join(super::index::PLAN_FILE).is_file()
}

/// For `ayt tui --sweep`: a request for every member not finished and not running elsewhere,
/// with the members' locks, which the caller holds while the UI runs them (so a concurrent
/// `ayt sweep` leaves them alone). The UI writes no status files; the index recognises its
/// finished members by their final checkpoints.
pub fn queue_unfinished(dir: &SweepDir, plan: &Plan) -> Result<(Vec<RunRequest>, Vec<super::lock::FileLock>)> {
    check_shared_inputs(plan)?;
    let mut requests = Vec::new();
    let mut locks = Vec::new();
    for m in &plan.members {
        if dir.read_status(m.index)?.state == State::Done {
            continue;
        }
        let Some(lock) = dir.lock_member(m.index, LOCK_PATIENCE)? else { continue };
        match start_for(plan, dir, m)? {
            Start::Done { .. } => continue,
            Start::Resume { request, .. } | Start::New { request } => requests.push(request),
        }
        locks.push(lock);
    }
    Ok((requests, locks))
}
