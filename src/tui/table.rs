//! The summary table of compared runs (`T`): per run (or, grouped, per sweep setting with the
//! mean and sd over its seeds) the swept fields, step, final loss, final and best FD, the kimg
//! to reach a target FD (the median final FD), and each loss's latest tangent-alignment mean.
//! Pure: built from the runs, sorted by any column.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::app::{hist_key, RunData, DEFAULT_HIST_METRIC};
use crate::metrics::intervals::std_dev;
use crate::sweep::report::DEFAULT_METRIC;
use crate::sweep::stats::{kimg_to_target, median};

#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    /// A value (`None`: not measured), with its sd over seeds in a grouped row.
    Num(Option<f64>, Option<f64>),
}

impl Cell {
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(None, _) => "-".into(),
            Cell::Num(Some(v), Some(sd)) if *sd > 0.0 => format!("{} ±{}", num(*v), num(*sd)),
            Cell::Num(Some(v), _) => num(*v),
        }
    }

    /// Numbers in order, unmeasured last; text by its words, numbers within it by value.
    fn cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Num(a, _), Cell::Num(b, _)) => match (a, b) {
                (Some(a), Some(b)) => a.total_cmp(b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            (Cell::Text(a), Cell::Text(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            },
            (Cell::Text(_), Cell::Num(..)) => Ordering::Less,
            (Cell::Num(..), Cell::Text(_)) => Ordering::Greater,
        }
    }
}

fn num(v: f64) -> String {
    if v == v.round() && v.abs() < 1e6 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One row: the runs it summarises (indices into the app's runs) and its cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub runs: Vec<usize>,
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// The FD metric and the target of "kimg to FD <= target".
    pub metric: Option<String>,
    pub target: Option<f64>,
}

/// What is measured of one run, before grouping.
struct Measured {
    step: f64,
    final_loss: Option<f64>,
    final_fd: Option<f64>,
    best_fd: Option<f64>,
    fd_curve: Vec<(f64, f64)>,
    alignment: Vec<Option<f64>>,
}

/// The FD curve shown: the sweep report's metric, else the first `fd*` evaluation.
fn fd_metric(runs: &[&RunData]) -> Option<String> {
    let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.evals.keys()).collect();
    names
        .iter()
        .find(|n| n.as_str() == DEFAULT_METRIC)
        .or_else(|| names.iter().find(|n| n.starts_with("fd") && !n.ends_with("_sd")))
        .map(|n| n.to_string())
}

/// Losses with an all-t histogram of the default metric, in display order.
fn aligned_losses(runs: &[&RunData]) -> Vec<String> {
    let mut losses: Vec<String> = runs
        .iter()
        .flat_map(|r| r.hists.keys())
        .map(|k| hist_key(k))
        .filter(|(_, m, range)| m == DEFAULT_HIST_METRIC && range == "all")
        .map(|(loss, _, _)| loss)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    losses.sort_by_key(|l| crate::metrics::probe::display_rank(l));
    losses
}

fn measure(run: &RunData, metric: Option<&str>, losses: &[String]) -> Measured {
    let fd = metric.and_then(|m| run.evals.get(m));
    let fd_curve: Vec<(f64, f64)> = fd.map(|h| h.kimg.iter().copied().zip(h.raw.iter().copied()).collect()).unwrap_or_default();
    let alignment = losses
        .iter()
        .map(|loss| {
            let row = run.hists.get(&format!("tangent/{loss}/{DEFAULT_HIST_METRIC}"))?;
            Some(row.mean_value()).filter(|m| m.is_finite())
        })
        .collect();
    Measured {
        step: run.progress.step as f64,
        final_loss: run.loss.smooth.last().copied(),
        final_fd: fd_curve.last().map(|p| p.1),
        best_fd: fd_curve.iter().map(|p| p.1).min_by(f64::total_cmp),
        fd_curve,
        alignment,
    }
}

/// Mean and (for two or more values) sample sd of the measured values.
fn pooled(values: impl Iterator<Item = Option<f64>>) -> Cell {
    let v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return Cell::Num(None, None);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    Cell::Num(Some(mean), (v.len() > 1).then(|| std_dev(&v)))
}

/// The table of `runs` (indices `shown` into them): a row per run, or per setting when
/// `grouped` (runs without swept values are their own setting).
pub fn build(runs: &[RunData], shown: &[usize], grouped: bool) -> Table {
    let picked: Vec<&RunData> = shown.iter().map(|&i| &runs[i]).collect();
    let metric = fd_metric(&picked);
    let losses = aligned_losses(&picked);
    let measured: Vec<Measured> = picked.iter().map(|r| measure(r, metric.as_deref(), &losses)).collect();
    let target = median(&measured.iter().filter_map(|m| m.final_fd).collect::<Vec<_>>());
    let fields: Vec<String> = {
        let mut seen = Vec::new();
        for (k, _) in picked.iter().flat_map(|r| &r.swept) {
            let pooled_over = grouped && k == crate::sweep::stats::SEED_KEY;
            if !pooled_over && !seen.contains(k) {
                seen.push(k.clone());
            }
        }
        seen
    };
    // Grouped rows are named by their fields' columns; a run outside any sweep needs a name.
    let named = !grouped || picked.iter().any(|r| r.group().is_none());
    let mut columns = if named { vec![if grouped { "setting".to_string() } else { "run".to_string() }] } else { Vec::new() };
    columns.extend(fields.iter().map(|f| f.rsplit('.').next().unwrap_or(f).to_string()));
    if grouped {
        columns.push("seeds".into());
    }
    columns.extend(["step", "final loss", "final FD", "best FD", "kimg to target"].map(String::from));
    columns.extend(losses.iter().map(|l| format!("{DEFAULT_HIST_METRIC} {l}")));

    // Rows: each run alone, or the runs of one setting together (in first-seen order).
    let mut members: Vec<(String, Vec<usize>)> = Vec::new();
    for (j, run) in picked.iter().enumerate() {
        let key = if grouped { run.group().unwrap_or_else(|| run.name.clone()) } else { run.name.clone() };
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some((_, js)) => js.push(j),
            None => members.push((key, vec![j])),
        }
    }
    let rows = members
        .into_iter()
        .map(|(key, js)| {
            let first = picked[js[0]];
            let mut cells = if named { vec![Cell::Text(key)] } else { Vec::new() };
            for f in &fields {
                let v = first.swept.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone()).unwrap_or_default();
                cells.push(Cell::Text(v));
            }
            if grouped {
                cells.push(Cell::Num(Some(js.len() as f64), None));
            }
            let each = |f: &dyn Fn(&Measured) -> Option<f64>| pooled(js.iter().map(|&j| f(&measured[j])));
            cells.push(each(&|m| Some(m.step)));
            cells.push(each(&|m| m.final_loss));
            cells.push(each(&|m| m.final_fd));
            cells.push(each(&|m| m.best_fd));
            cells.push(each(&|m| target.and_then(|t| kimg_to_target(&m.fd_curve, t))));
            for a in 0..losses.len() {
                cells.push(each(&|m| m.alignment[a]));
            }
            Row { runs: js.iter().map(|&j| shown[j]).collect(), cells }
        })
        .collect();
    Table { columns, rows, metric, target }
}

/// Sorts rows by column `col` (clamped), ascending or descending; ties keep their order.
pub fn sort(table: &mut Table, col: usize, descending: bool) {
    let col = col.min(table.columns.len().saturating_sub(1));
    table.rows.sort_by(|a, b| {
        let o = a.cells[col].cmp(&b.cells[col]);
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

#[cfg(test)]
mod tests;
