//! A sweep's folder on disk, and its index.
//!
//! ```text
//! <home>/sweeps/<name>/plan.json            the expanded grid and the shared inputs, written once
//! <home>/sweeps/<name>/status/<i>.json      member i's status, written only by the process running it
//! <home>/sweeps/<name>/status/<i>.lock      held (flock) while member i trains
//! <home>/sweeps/<name>/sweep.h5             the index: plan + statuses, one row per member
//! <home>/sweeps/<name>/init.safetensors     the shared initial checkpoint (a copy)
//! <home>/sweeps/<name>/<label>/             member runs (ordinary run folders)
//! ```
//! The plan and the per-member status files are the source of truth; each file has one writer
//! and is replaced atomically (write, then rename). `sweep.h5` is a view rebuilt from them under
//! the sweep lock after every status change and replaced atomically, so concurrent members (a
//! Slurm job array) never write the same file, and h5py never sees a half-written index.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::lock::FileLock;
use crate::store::columns::{self, Column};
use crate::{Error, Result};

pub const PLAN_FILE: &str = "plan.json";
pub const INDEX_FILE: &str = "sweep.h5";
/// Written as the root attribute `schema` of `sweep.h5`, with `schema_version`.
pub const INDEX_SCHEMA: &str = "ayt-sweep-index";
pub const INDEX_SCHEMA_VERSION: i64 = 1;

/// The folder of one sweep.
#[derive(Clone, Debug)]
pub struct SweepDir {
    pub root: PathBuf,
}

impl SweepDir {
    pub fn new(root: impl Into<PathBuf>) -> SweepDir {
        SweepDir { root: root.into() }
    }
    pub fn plan_path(&self) -> PathBuf {
        self.root.join(PLAN_FILE)
    }
    pub fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }
    /// Serialises plan creation and index rebuilds.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".sweep.lock")
    }
    pub fn status_path(&self, index: usize) -> PathBuf {
        self.root.join("status").join(format!("{index:03}.json"))
    }
    /// Held while member `index` trains.
    pub fn member_lock_path(&self, index: usize) -> PathBuf {
        self.root.join("status").join(format!("{index:03}.lock"))
    }
    pub fn run_dir(&self, label: &str) -> PathBuf {
        self.root.join(label)
    }
    pub fn init_copy_path(&self) -> PathBuf {
        self.root.join("init.safetensors")
    }
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }

    pub fn read_plan(&self) -> Result<Plan> {
        let path = self.plan_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, format!("cannot read the sweep plan: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("not a sweep plan: {e}")))
    }

    pub fn write_plan(&self, plan: &Plan) -> Result<()> {
        crate::store::json::write_atomically(&self.plan_path(), plan)
    }

    /// Member `index`'s status (`Pending` when it has none yet).
    pub fn read_status(&self, index: usize) -> Result<Status> {
        let path = self.status_path(index);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("not a member status: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Status::default()),
            Err(e) => Err(Error::file(&path, format!("cannot read: {e}"))),
        }
    }

    pub fn write_status(&self, index: usize, status: &Status) -> Result<()> {
        crate::store::json::write_atomically(&self.status_path(index), status)
    }

    /// Every member with its status as seen now: a `Running` status whose lock nobody holds is
    /// reported `Interrupted` (its process died), a member whose final checkpoint exists `Done`,
    /// and `step` is at least its latest checkpoint.
    pub fn members(&self, plan: &Plan) -> Result<Vec<MemberState>> {
        plan.members
            .iter()
            .map(|m| {
                let mut status = self.read_status(m.index)?;
                let held = FileLock::is_held(&self.member_lock_path(m.index))?;
                let run_dir = self.run_dir(&m.label);
                let ckpt = crate::paths::RunDir::new(&run_dir).latest_checkpoint().ok().flatten().unwrap_or(0);
                status.step = status.step.max(ckpt);
                if !held && status.state != State::Done && ckpt >= m.iterations {
                    // Its final checkpoint exists (e.g. run from `ayt tui --sweep`, which
                    // writes no status files).
                    status.state = State::Done;
                } else if !held && status.state == State::Running {
                    status.state = State::Interrupted;
                }
                Ok(MemberState { planned: m.clone(), status, run_dir })
            })
            .collect()
    }

    /// Rebuilds `sweep.h5` from the plan and the status files, under the sweep lock.
    pub fn rebuild_index(&self, plan: &Plan) -> Result<()> {
        let _lock = FileLock::exclusive(&self.lock_path())?;
        let members = self.members(plan)?;
        let path = self.index_path();
        columns::write_atomically(&path, |f| write_index(&path, f, plan, &members))
    }

    /// Waits up to `patience` for the member's lock; `None` if another process holds it.
    pub fn lock_member(&self, index: usize, patience: Duration) -> Result<Option<FileLock>> {
        FileLock::try_exclusive(&self.member_lock_path(index), patience)
    }
}

/// The grid as planned when the sweep started: what every invocation of the sweep runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub name: String,
    /// The sweep file, absolute.
    pub sweep_file: PathBuf,
    pub created_utc: String,
    /// The swept preset paths, in file order.
    pub keys: Vec<String>,
    pub kimg: Option<f64>,
    /// The shared initial checkpoint (`train.init`), resolved once.
    pub init: Option<SharedFile>,
    /// The shared phi (`mfd.features`), when a member uses the MFD loss.
    pub features: Option<SharedFile>,
    pub members: Vec<PlannedMember>,
}

/// A file every member uses, pinned by checksum.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SharedFile {
    /// As the preset names it (`"mnist-edm"`, `"mnist-phi"`, a path).
    pub name: String,
    /// Where it was found.
    pub source: PathBuf,
    /// What members use (for `train.init` the sweep's own copy of `source`).
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlannedMember {
    pub index: usize,
    pub label: String,
    /// The swept `(key, value)` pairs.
    pub values: Vec<(String, toml::Value)>,
    /// Every `--set` applied to the base preset.
    pub overrides: Vec<String>,
    pub iterations: u64,
    /// The member's resolved preset.
    pub preset_toml: String,
}

impl PlannedMember {
    /// `<sweep name>/<label>`.
    pub fn name(&self, sweep: &str) -> String {
        format!("{sweep}/{}", self.label)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    #[default]
    Pending,
    Running,
    /// Stopped before its last step (Ctrl-C, or its process died): the next run resumes it.
    Interrupted,
    Done,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Interrupted => "interrupted",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

/// A member's status file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub state: State,
    /// When it first started (RFC 3339 UTC; empty if never).
    pub started_utc: String,
    /// When it finished or failed (empty otherwise).
    pub finished_utc: String,
    /// The last step it reached.
    pub step: u64,
    /// Starts (first run and resumes).
    pub attempts: u32,
    /// The host and process that last ran it.
    pub host: String,
    pub pid: u32,
    /// Why it failed.
    pub error: String,
}

/// A member as the index shows it.
#[derive(Clone, Debug)]
pub struct MemberState {
    pub planned: PlannedMember,
    pub status: Status,
    pub run_dir: PathBuf,
}

pub fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A swept key's values as one typed column: integers, numbers, else text.
pub fn value_column(values: &[&toml::Value]) -> Column {
    use toml::Value;
    if values.iter().all(|v| matches!(v, Value::Integer(_))) {
        Column::Int(values.iter().map(|v| v.as_integer().unwrap_or(0)).collect())
    } else if values.iter().all(|v| matches!(v, Value::Integer(_) | Value::Float(_))) {
        Column::Float(values.iter().map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap_or(f64::NAN)).collect())
    } else {
        Column::Text(values.iter().map(|v| super::expand::value_text(v)).collect())
    }
}

fn write_index(path: &Path, f: &hdf5::File, plan: &Plan, members: &[MemberState]) -> Result<()> {
    let text = |get: &dyn Fn(&MemberState) -> String| Column::Text(members.iter().map(get).collect());
    let int = |get: &dyn Fn(&MemberState) -> i64| Column::Int(members.iter().map(get).collect());
    let mut cols: Vec<(String, Column)> = vec![
        ("index".into(), int(&|m| m.planned.index as i64)),
        ("name".into(), text(&|m| m.planned.name(&plan.name))),
        ("status".into(), text(&|m| m.status.state.as_str().to_string())),
        ("run_dir".into(), text(&|m| m.run_dir.display().to_string())),
        ("started_utc".into(), text(&|m| m.status.started_utc.clone())),
        ("finished_utc".into(), text(&|m| m.status.finished_utc.clone())),
        ("step".into(), int(&|m| m.status.step as i64)),
        ("iterations".into(), int(&|m| m.planned.iterations as i64)),
        ("attempts".into(), int(&|m| m.status.attempts as i64)),
        ("error".into(), text(&|m| m.status.error.clone())),
        ("overrides".into(), text(&|m| m.planned.overrides.join(" "))),
    ];
    for key in &plan.keys {
        let values: Vec<&toml::Value> = members
            .iter()
            .map(|m| m.planned.values.iter().find(|(k, _)| k == key).map(|(_, v)| v))
            .collect::<Option<_>>()
            .unwrap_or_default();
        if values.len() == members.len() {
            cols.push((key.clone(), value_column(&values)));
        }
    }
    columns::write_columns(path, f, &cols)?;
    let (init, phi) = (plan.init.clone().unwrap_or_default(), plan.features.clone().unwrap_or_default());
    for (k, v) in [
        ("schema", INDEX_SCHEMA.to_string()),
        ("name", plan.name.clone()),
        ("sweep_file", plan.sweep_file.display().to_string()),
        ("created_utc", plan.created_utc.clone()),
        ("updated_utc", now_utc()),
        ("init", init.name),
        ("init_source", init.source.display().to_string()),
        ("init_path", init.path.display().to_string()),
        ("init_sha256", init.sha256),
        ("features", phi.name),
        ("features_path", phi.path.display().to_string()),
        ("features_sha256", phi.sha256),
    ] {
        columns::set_str_attr(path, f, k, &v)?;
    }
    columns::set_num_attr(path, f, "kimg", plan.kimg.unwrap_or(f64::NAN))?;
    columns::set_num_attr(path, f, "schema_version", INDEX_SCHEMA_VERSION)?;
    columns::set_str_list_attr(path, f, "keys", &plan.keys)
}
