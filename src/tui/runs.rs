//! Runs and presets on disk, for the launcher and the read-only dashboard: discovery (preset
//! files, run folders under `<home>/runs`), loading a run's `run.h5` into [`RunData`], and a
//! sweep's members with their swept values.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::app::{Grid, HistRow, PresetEntry, RunData, RunEntry, RunState};
use super::series::History;
use crate::config::Preset;
use crate::paths::{Paths, RunDir};
use crate::store::RunLog;
use crate::sweep::SweepDir;
use crate::Result;

/// Presets: the named files, then `presets/` here, then `<config dir>/presets` (phi presets,
/// which `ayt features train` takes, and sweep files, which `ayt sweep` takes, are skipped).
pub fn discover_presets(named: &[PathBuf], set: &[String]) -> Vec<PresetEntry> {
    let mut entries: Vec<PresetEntry> = named
        .iter()
        .map(|p| {
            let mut e = PresetEntry::load(p.clone());
            if !set.is_empty() {
                e.preset = Preset::load(p, set).map_err(|e| e.to_string());
            }
            e
        })
        .collect();
    let mut dirs = vec![PathBuf::from("presets")];
    if let Some(d) = directories::ProjectDirs::from("", "", "ayt") {
        dirs.push(d.config_dir().join("presets"));
    }
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> =
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let other_job = crate::config::is_features_preset(&text) || crate::config::is_sweep_preset(&text);
            if other_job || entries.iter().any(|e| e.path == f) {
                continue;
            }
            entries.push(PresetEntry::load(f));
        }
    }
    entries
}

/// Run folders under `<home>/runs`, newest first.
pub fn discover_runs(paths: &Paths) -> Vec<RunEntry> {
    let Ok(rd) = std::fs::read_dir(paths.runs()) else { return Vec::new() };
    let mut dirs: Vec<(SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| RunDir::new(d).log_file().exists())
        .map(|d| (std::fs::metadata(RunDir::new(&d).log_file()).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH), d))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter()
        .map(|(_, dir)| {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let run = RunDir::new(&dir);
            let mut summary = String::new();
            let ckpts = run.checkpoints().unwrap_or_default();
            let ckpt_list: Vec<String> = ckpts.iter().map(|s| s.to_string()).collect();
            summary.push_str(&format!(
                "checkpoints: {}\nenter: open read-only · r: resume from the latest checkpoint\n\n",
                if ckpt_list.is_empty() { "none".to_string() } else { ckpt_list.join(", ") }
            ));
            summary.push_str(&std::fs::read_to_string(run.preset_file()).unwrap_or_default());
            RunEntry { dir, name, summary }
        })
        .collect()
}

/// The run folder and the log file that `path` names: a folder and its `run.h5`, or a log
/// file (any name) and its folder.
fn folder_and_log(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_file() {
        (path.parent().unwrap_or(path).to_path_buf(), path.to_path_buf())
    } else {
        (path.to_path_buf(), RunDir::new(path).log_file())
    }
}

/// Reads a run folder's `run.h5` (or a log file named directly) into dashboard data.
pub fn load_run(dir: &Path) -> Result<RunData> {
    let (dir, path) = folder_and_log(dir);
    let log = RunLog::open(&path)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    let mut run = RunData::new(name, Some(dir), RunState::Viewing);
    if let Ok(meta) = log.meta() {
        if let Ok(p) = Preset::parse(&meta.preset_toml, &path, &[]) {
            run.progress.total = p.train.iterations;
        }
    }
    let names = log.scalar_names()?;
    if names.iter().any(|n| n == "loss") {
        let s = log.scalar("loss")?;
        for i in 0..s.len() {
            run.loss.push(s.step[i] as f64, s.kimg[i], s.wall[i], s.value[i]);
        }
        if let (Some(&step), Some(&kimg), Some(&wall)) = (s.step.last(), s.kimg.last(), s.wall.last()) {
            run.progress.step = step.max(0) as u64;
            run.progress.kimg = kimg;
            run.progress.wall_s = wall;
        }
    }
    if names.iter().any(|n| n == "img_per_s") {
        run.progress.img_per_s = log.scalar("img_per_s")?.value.last().copied().unwrap_or(0.0);
    }
    read_probes(&log, &mut run)?;
    for (step, grid) in log.samples()? {
        run.record_samples(Grid { step: step.max(0) as u64, grid });
    }
    if run.progress.total > 0 && run.progress.step >= run.progress.total {
        run.state = RunState::Finished;
    }
    Ok(run)
}

/// What `ayt view` was given, read: the runs, and the sweeps among the arguments (members that
/// start later join the view, see [`sweep_members`]).
pub struct Viewed {
    pub runs: Vec<RunData>,
    pub sweeps: Vec<SweepDir>,
}

/// Run folders (or log files) as they are, and sweeps (a sweep folder, its `sweep.h5` or
/// `plan.json`, or its sweep file) as their started members, each with its swept values.
pub fn load_view(args: &[PathBuf], paths: &Paths) -> Result<Viewed> {
    let mut viewed = Viewed { runs: Vec::new(), sweeps: Vec::new() };
    for arg in args {
        match sweep_of(arg, paths) {
            Some(dir) => {
                let dir = dir?;
                viewed.runs.extend(load_sweep(&dir)?);
                viewed.sweeps.push(dir);
            }
            None => viewed.runs.push(load_run(arg)?),
        }
    }
    Ok(viewed)
}

/// The sweep `arg` names, if it names one (`Some(Err)`: a sweep file whose sweep has not run):
/// a folder holding `plan.json`, a file beside one (`sweep.h5`, `plan.json`), or a sweep file.
fn sweep_of(arg: &Path, paths: &Paths) -> Option<Result<SweepDir>> {
    let holds_plan = |d: &Path| d.join(crate::sweep::index::PLAN_FILE).is_file();
    let named = if arg.is_dir() {
        holds_plan(arg)
    } else if arg.extension().is_some_and(|e| e == "toml") {
        std::fs::read_to_string(arg).is_ok_and(|t| crate::config::is_sweep_preset(&t))
    } else {
        arg.is_file() && arg.parent().is_some_and(holds_plan)
    };
    named.then(|| crate::sweep::locate(arg, paths))
}

/// A started sweep member: its run folder and swept `(field, value)` pairs.
pub type Member = (PathBuf, Vec<(String, String)>);

/// A sweep's members that have started (they have a `run.h5`), in plan order. Reads only the
/// plan.
pub fn sweep_members(dir: &SweepDir) -> Result<Vec<Member>> {
    let plan = dir.read_plan()?;
    Ok(plan
        .members
        .iter()
        .map(|m| (dir.run_dir(&m.label), m.values.iter().map(|(k, v)| (k.clone(), crate::sweep::expand::value_text(v))).collect()))
        .filter(|(run, _)| RunDir::new(run).log_file().exists())
        .collect())
}

/// A sweep's started members, read, with their swept values.
pub fn load_sweep(dir: &SweepDir) -> Result<Vec<RunData>> {
    sweep_members(dir)?
        .into_iter()
        .map(|(run_dir, swept)| {
            let mut run = load_run(&run_dir)?;
            run.swept = swept;
            Ok(run)
        })
        .collect()
}

/// Reads the evaluation metrics and every row of each histogram into `run`.
fn read_probes(log: &RunLog, run: &mut RunData) -> Result<()> {
    for name in log.eval_names()? {
        let e = log.eval(&name)?;
        let mut h = History::default();
        for i in 0..e.step.len() {
            h.push(e.step[i] as f64, e.kimg[i], run.loss.wall_at(e.step[i] as f64), e.value[i]);
        }
        run.evals.insert(name, h);
    }
    let scalars = log.scalar_names()?;
    for name in log.hist_names()? {
        let h = log.hist(&name)?;
        // the probe's exact means, logged beside the histogram as `<name>_mean`
        let means: std::collections::HashMap<i64, f64> = match scalars.contains(&format!("{name}_mean")) {
            true => {
                let s = log.scalar(&format!("{name}_mean"))?;
                s.step.into_iter().zip(s.value).collect()
            }
            false => Default::default(),
        };
        for ((step, edges), counts) in h.step.iter().zip(h.edges).zip(h.counts) {
            let counts = counts.iter().map(|&c| c.max(0) as u64).collect();
            let row = HistRow { step: (*step).max(0) as u64, edges, counts, mean: means.get(step).copied() };
            run.record_hist(name.clone(), row);
        }
    }
    Ok(())
}

/// When the log of the run `dir` names last changed (`None`: it cannot be read).
pub fn mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(folder_and_log(dir).1).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunLogWriter, RunMeta};
    use crate::tui::App;

    #[test]
    fn load_run_reads_what_the_engine_logs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run-a");
        std::fs::create_dir_all(&dir).unwrap();
        let preset = "name = \"a\"\n[data]\ndataset = \"disks\"\n[train]\nmode = \"ect\"\nbatch_size = 4\niterations = 30\n";
        let w = RunLogWriter::create(RunDir::new(&dir).log_file(), &RunMeta::new(preset, 0, "disks", "00")).unwrap();
        for s in 1..=30 {
            w.scalar("loss", s, s as f64 * 0.004, s as f64 * 0.1, 1.0 / s as f64).unwrap();
            w.scalar("img_per_s", s, s as f64 * 0.004, s as f64 * 0.1, 40.0).unwrap();
        }
        w.hist("tangent/mfd/rho", 10, vec![0.0, 0.5, 1.0], vec![3, 1]).unwrap();
        w.hist("tangent/mfd/rho", 20, vec![0.0, 0.5, 1.0], vec![1, 3]).unwrap();
        w.scalar("tangent/mfd/rho_mean", 20, 0.08, 2.0, 0.61).unwrap();
        w.eval("fd", 30, 0.12, 42.0, vec![("extractor".into(), "test".into())]).unwrap();
        w.samples(30, vec![128; 4 * 8 * 8], 4, 8, 8, 1).unwrap();
        w.close().unwrap();

        let run = load_run(&dir).unwrap();
        assert_eq!(run.name, "run-a");
        assert_eq!(run.loss.len(), 30);
        assert_eq!((run.progress.step, run.progress.total), (30, 30));
        assert_eq!(run.state, RunState::Finished);
        assert_eq!(run.progress.img_per_s, 40.0);
        assert_eq!(run.hists["tangent/mfd/rho"], HistRow { step: 20, edges: vec![0.0, 0.5, 1.0], counts: vec![1, 3], mean: Some(0.61) });
        let history = &run.hist_history["tangent/mfd/rho"];
        assert_eq!((history.len(), history[0].step, history[0].mean), (2, 10, None), "every probe, for the heat map");
        assert_eq!(run.evals["fd"].raw, vec![42.0]);
        assert_eq!(run.samples_ema.as_ref().unwrap().grid.n, 4);
        // And the viewer draws it: histograms instead of "no probes yet".
        let text = crate::tui::render_to_text(&App::viewer(vec![run]), 80, 24);
        assert!(text.contains("MFD") && !text.contains("no probes yet"), "{text}");
        assert!(load_run(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn discovery_lists_presets_and_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.toml");
        std::fs::write(&p, "name = \"x\"\n[data]\ndataset = \"disks\"\n[train]\nmode = \"ect\"\nbatch_size = 4\niterations = 3\n").unwrap();
        let entries = discover_presets(std::slice::from_ref(&p), &["train.iterations=7".to_string()]);
        assert_eq!(entries[0].name, "x");
        assert_eq!(entries[0].preset.as_ref().unwrap().train.iterations, 7, "--set applies to named presets");
        assert!(discover_runs(&Paths { home: tmp.path().to_path_buf() }).is_empty());
    }
}
