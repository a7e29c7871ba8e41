//! `ayt export`: the logs of a run or of a sweep's members as one table, one row per (run, step):
//! `run, step, kimg, wall`, the swept fields (a sweep), every logged scalar (loss, lr, probe
//! means `tangent/<loss>/<metric>_mean`, ...) and every eval metric as `eval/<metric>`, joined
//! on step. A value a run did not log at a step is missing (NaN in the table; empty in CSV,
//! null in JSON lines).

mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use write::{write, Format};

use crate::paths::RunDir;
use crate::store::columns::Column;
use crate::store::RunLog;
use crate::sweep::{self, SweepDir};
use crate::{Error, Result};

/// One run to export.
#[derive(Clone, Debug)]
pub struct Source {
    /// The `run` column: the member name (`<sweep>/<label>`) or the run folder's name.
    pub run: String,
    pub dir: PathBuf,
    /// The swept `(key, value)` pairs of a sweep member.
    pub swept: Vec<(String, toml::Value)>,
}

/// The runs behind `arg`: a run folder (or its `run.h5`), or a sweep (folder, `sweep.h5`, or
/// sweep file). Members that have not started have no log and are left out.
pub fn sources(arg: &Path, paths: &crate::paths::Paths) -> Result<(Vec<Source>, Vec<String>)> {
    let run_dir = RunDir::of(arg);
    if run_dir.has_log() {
        let dir = run_dir.path();
        let run = std::path::absolute(dir).ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
        return Ok((vec![Source { run, dir: dir.to_path_buf(), swept: Vec::new() }], Vec::new()));
    }
    if arg.is_dir() && !sweep::runner::is_sweep_dir(arg) {
        return Err(Error::file(arg, "neither a run folder (no run.h5) nor a sweep folder (no plan.json)"));
    }
    let dir = sweep::locate(arg, paths)?;
    sweep_sources(&dir)
}

/// A sweep's members that have a run log, and the swept keys.
pub fn sweep_sources(dir: &SweepDir) -> Result<(Vec<Source>, Vec<String>)> {
    let plan = dir.read_plan()?;
    let sources = plan
        .members
        .iter()
        .map(|m| Source { run: m.name(&plan.name), dir: dir.run_dir(&m.label), swept: m.values.clone() })
        .filter(|s| RunDir::new(&s.dir).has_log())
        .collect();
    Ok((sources, plan.keys))
}

/// The values one run logged at one step.
struct Row {
    kimg: f64,
    wall: f64,
    values: BTreeMap<String, f64>,
}

/// Reads one run's scalars and eval metrics into rows keyed by step.
fn read_rows(src: &Source) -> Result<BTreeMap<i64, Row>> {
    let log = RunLog::open(RunDir::new(&src.dir).log_file())?;
    let mut rows: BTreeMap<i64, Row> = BTreeMap::new();
    fn row(rows: &mut BTreeMap<i64, Row>, step: i64) -> &mut Row {
        rows.entry(step).or_insert_with(|| Row { kimg: f64::NAN, wall: f64::NAN, values: BTreeMap::new() })
    }
    for name in log.scalar_names()? {
        let s = log.scalar(&name)?;
        for i in 0..s.len() {
            let r = row(&mut rows, s.step[i]);
            if r.kimg.is_nan() {
                r.kimg = s.kimg[i];
            }
            if r.wall.is_nan() {
                r.wall = s.wall[i];
            }
            r.values.insert(name.clone(), s.value[i]);
        }
    }
    for name in log.eval_names()? {
        let e = log.eval(&name)?;
        for i in 0..e.step.len() {
            let r = row(&mut rows, e.step[i]);
            if r.kimg.is_nan() {
                r.kimg = e.kimg[i];
            }
            r.values.insert(format!("eval/{name}"), e.value[i]);
        }
    }
    Ok(rows)
}

/// The joined table, column by column: `run, step, kimg, wall_s`, the swept keys (in sweep
/// order), the scalars (sorted), then `eval/<metric>` (sorted).
pub fn table(sources: &[Source], swept_keys: &[String]) -> Result<Vec<(String, Column)>> {
    let per_run: Vec<BTreeMap<i64, Row>> = sources.iter().map(read_rows).collect::<Result<_>>()?;
    let names: BTreeSet<&String> = per_run.iter().flat_map(|rows| rows.values().flat_map(|r| r.values.keys())).collect();
    let (evals, scalars): (Vec<&String>, Vec<&String>) = names.into_iter().partition(|n| n.starts_with("eval/"));
    let mut run = Vec::new();
    let mut step = Vec::new();
    let mut kimg = Vec::new();
    let mut wall = Vec::new();
    let mut swept: Vec<Vec<&toml::Value>> = vec![Vec::new(); swept_keys.len()];
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); scalars.len() + evals.len()];
    for (src, rows) in sources.iter().zip(&per_run) {
        for (&s, r) in rows {
            run.push(src.run.clone());
            step.push(s);
            kimg.push(r.kimg);
            wall.push(r.wall);
            for (k, col) in swept_keys.iter().zip(swept.iter_mut()) {
                let v = src.swept.iter().find(|(key, _)| key == k).map(|(_, v)| v);
                col.push(v.ok_or_else(|| Error::msg(format!("run {}: no value for the swept key {k}", src.run)))?);
            }
            for (name, col) in scalars.iter().chain(&evals).zip(values.iter_mut()) {
                col.push(r.values.get(*name).copied().unwrap_or(f64::NAN));
            }
        }
    }
    let mut out = vec![
        ("run".to_string(), Column::Text(run)),
        ("step".to_string(), Column::Int(step)),
        ("kimg".to_string(), Column::Float(kimg)),
        ("wall_s".to_string(), Column::Float(wall)),
    ];
    for (k, col) in swept_keys.iter().zip(swept) {
        out.push((k.clone(), crate::sweep::index::value_column(&col)));
    }
    for (name, col) in scalars.iter().chain(&evals).zip(values) {
        out.push(((*name).clone(), Column::Float(col)));
    }
    Ok(out)
}
