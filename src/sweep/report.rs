//! `ayt report`: a sweep's results in `<sweep>/report/`: the figures of `figures` (FD against
//! kimg, probe means over training, rho heat maps; PNG and SVG) and `report.md` (final and best
//! FD per member and the kimg each needed to reach a target FD, seeds pooled, losses paired).
//! Members without eval rows (or without a log) show "n/a".

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::curves::{read_curves, Curves, ALIGNMENT};
use super::expand::value_text;
use super::figures;
use super::index::{Plan, SweepDir};
use super::stats::{self, Outcome};
use crate::metrics::intervals::Interval;
use crate::Result;

/// The FD reported by default: FD-evalnet of 1-step samples.
pub const DEFAULT_METRIC: &str = "fd_evalnet_1step";

/// What `ayt report` wrote.
#[derive(Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub pngs: Vec<PathBuf>,
    /// The target FD used, if any member has FD rows.
    pub target: Option<f64>,
}

/// Writes the report of the sweep in `dir`; `target` defaults to the median of the members'
/// final FDs.
pub fn write(dir: &SweepDir, metric: &str, target: Option<f64>) -> Result<Written> {
    let plan = dir.read_plan()?;
    let curves: Vec<Curves> = dir.members(&plan)?.into_iter().map(|s| read_curves(s, &plan, metric)).collect::<Result<_>>()?;
    let out = dir.report_dir();
    std::fs::create_dir_all(&out).map_err(|e| crate::Error::file(&out, format!("cannot create: {e}")))?;
    let finals: Vec<f64> = curves.iter().filter_map(|c| c.fd.last().map(|p| p.1)).collect();
    let target = target.or_else(|| stats::median(&finals));
    let batches: Vec<usize> = curves.iter().map(|c| c.batch).collect::<BTreeSet<_>>().into_iter().collect();

    let fd_png = out.join("fd_vs_kimg.png");
    figures::fd_figure(&curves, &batches, metric, &fd_png)?;
    let align_png = out.join("alignment.png");
    figures::alignment_figure(&curves, &batches, &align_png)?;
    let heat_png = out.join("alignment_heatmap.png");
    let groups = batches.len().max(1);
    let per_row = if curves.len().is_multiple_of(groups) { (curves.len() / groups).max(1) } else { 4 };
    figures::heat_figure(&curves, per_row, &heat_png)?;

    let markdown = out.join("report.md");
    let text = markdown_report(&plan, &curves, metric, target, &batches, per_row);
    std::fs::write(&markdown, text).map_err(|e| crate::Error::file(&markdown, format!("cannot write: {e}")))?;
    Ok(Written { markdown, pngs: vec![fd_png, align_png, heat_png], target })
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "n/a".into(),
    }
}

/// Each member's swept values (as text), final FD and interpolated kimg to the target.
fn outcomes(plan: &Plan, curves: &[Curves], target: Option<f64>) -> Vec<Outcome> {
    curves
        .iter()
        .map(|c| Outcome {
            values: plan
                .keys
                .iter()
                .map(|k| {
                    (k.clone(), c.state.planned.values.iter().find(|(key, _)| key == k).map(|(_, v)| value_text(v)).unwrap_or_default())
                })
                .collect(),
            final_fd: c.fd.last().map(|p| p.1),
            to_target: target.and_then(|t| stats::kimg_to_target(&c.fd, t)),
        })
        .collect()
}

fn interval_text(i: Option<Interval>, digits: usize) -> String {
    i.map_or("n/a".into(), |i| i.text(digits))
}

fn markdown_report(plan: &Plan, curves: &[Curves], metric: &str, target: Option<f64>, batches: &[usize], per_row: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Sweep `{}`\n", plan.name);
    let budget = plan.kimg.map(|k| format!("{k} kimg each")).unwrap_or_else(|| "the preset's iterations".into());
    let target_text = match target {
        Some(t) => format!("{t:.4}"),
        None => "n/a (no member has FD rows)".into(),
    };
    let _ = writeln!(
        s,
        "{} members, budget {budget}; sweep file `{}`. FD metric `{metric}` (lower is better). \
         Target FD: {target_text}.\n",
        plan.members.len(),
        plan.sweep_file.display()
    );
    let outcomes = outcomes(plan, curves, target);
    let mut header = vec!["#".to_string(), "member".into()];
    header.extend(plan.keys.iter().map(|k| format!("`{k}`")));
    header.extend(
        ["status", "step", "final FD", "best FD (at kimg)", &format!("kimg to FD <= {}", num(target)), "final loss"].map(String::from),
    );
    header.extend(ALIGNMENT.iter().map(|(m, _)| format!("{m} (own loss) [95% CI]")));
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}|", vec!["---"; header.len()].join("|"));
    for (c, o) in curves.iter().zip(&outcomes) {
        let m = &c.state.planned;
        let mut row = vec![m.index.to_string(), m.label.clone()];
        row.extend(o.values.iter().map(|(_, v)| v.clone()));
        let best = c.fd.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
        row.push(c.state.status.state.as_str().into());
        row.push(format!("{} / {}", c.state.status.step, m.iterations));
        row.push(match (o.final_fd, c.fd_sd) {
            (Some(v), Some(sd)) => format!("{v:.4} ± {sd:.4}"),
            (v, _) => num(v),
        });
        row.push(best.map(|(k, v)| format!("{v:.4} ({k:.2})")).unwrap_or_else(|| "n/a".into()));
        row.push(match (target, c.fd.is_empty(), o.to_target) {
            (None, _, _) | (_, true, _) => "n/a".into(),
            (_, false, None) => "not reached".into(),
            (_, false, Some(k)) => format!("{k:.2}"),
        });
        row.push(num(c.final_loss));
        for p in &c.last_probe {
            row.push(interval_text(*p, 3));
        }
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    if plan.keys.iter().any(|k| k == stats::SEED_KEY) {
        seed_groups(&mut s, &outcomes, target);
    }
    if plan.keys.iter().any(|k| k == "train.loss") {
        paired_losses(&mut s, &outcomes, target);
    }
    let panels = batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        s,
        "\n\"kimg to FD <= target\" interpolates linearly between the last evaluation above the target and the first at \
         or below it; \"n/a\": no `{metric}` rows (evaluation off, or not reached yet). A run tuned from `train.init` is \
         evaluated at kimg 0 (its starting weights, once for all members that share them), so its curve starts there. \
         \"± x\": the standard deviation over `eval.repeats` evaluations with independent sample noise. Probe intervals are \
         bootstrap 95% intervals over the probe samples.\n\n\
         ## Plots\n\n\
         Colours: l2 red, mfd green, lpips blue, pseudo-Huber grey, chance (random directions) dark grey. Axes are shared \
         by all panels; their ranges are printed at the corners.\n\n\
         - `fd_vs_kimg.png`: `{metric}` against kimg, one panel per batch size (left to right: {panels}), one line per member.\n\
         - `alignment.png`: probe means of each member's own loss direction against kimg; rows top to bottom: {}; \
         columns are batch sizes as above; each row has its own y range.\n\
         - `alignment_heatmap.png`: each member's own-loss `rho` histogram over training, one panel per member in the \
         order of the table ({per_row} a row): x the probes (oldest left), y rho from 0 (bottom) to 1, each probe's column \
         scaled to its largest bin; a band that wobbles is the oscillation method.md describes.",
        ALIGNMENT.iter().map(|(_, d)| *d).collect::<Vec<_>>().join(", ")
    );
    s
}

fn seed_groups(s: &mut String, outcomes: &[Outcome], target: Option<f64>) {
    let _ = writeln!(
        s,
        "\n## Over seeds\n\nMembers that differ only in `seed`: mean and Student-t 95% interval over seeds (n/a with one seed).\n"
    );
    let _ = writeln!(s, "| group | seeds | final FD [95% CI] | kimg to FD <= {} [95% CI] | reached |", num(target));
    let _ = writeln!(s, "|---|---|---|---|---|");
    for g in stats::groups(outcomes) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} / {} |",
            g.label,
            g.seeds,
            interval_text(g.final_fd, 4),
            interval_text(g.to_target, 2),
            g.reached,
            g.seeds
        );
    }
}

fn paired_losses(s: &mut String, outcomes: &[Outcome], target: Option<f64>) {
    let _ = writeln!(
        s,
        "\n## Losses compared at equal seeds\n\nPer setting of the other keys, loss B against loss A on the same seeds: \
         final FD difference B - A (negative: B is better) and the ratio of their kimg to FD <= {} (below 1: B gets \
         there sooner), each with its Student-t 95% interval over the seeds.\n",
        num(target)
    );
    let _ = writeln!(s, "| setting | A | B | pairs | FD(B) - FD(A) [95% CI] | B lower | kimg(B) / kimg(A) [95% CI] |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for p in stats::paired(outcomes, "train.loss") {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} / {} | {} |",
            p.setting,
            p.a,
            p.b,
            p.pairs,
            interval_text(p.final_fd_diff, 4),
            p.b_lower,
            p.pairs,
            interval_text(p.to_target_ratio, 2)
        );
    }
}
