//! `ayt report`: a sweep's results in `<sweep>/report/`: `fd_vs_kimg.png` (FD against kimg,
//! one panel per batch size, one line per member coloured by its loss), `alignment.png` (the
//! probe means of each member's own loss direction over training) and `report.md` (final and
//! best FD per member and the kimg each needed to reach a target FD). Members without eval
//! rows (or without a log) show "n/a".

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::expand::value_text;
use super::index::{MemberState, Plan, SweepDir};
use crate::config::{LossKind, Preset};
use crate::plot::{self, Line};
use crate::store::{RunLog, Series};
use crate::Result;

/// The FD reported by default: FD-evalnet of 1-step samples.
pub const DEFAULT_METRIC: &str = "fd_evalnet_1step";

/// Probe metrics plotted in `alignment.png`, top to bottom.
const ALIGNMENT: [(&str, &str); 2] = [("toward", "toward-data cosine"), ("rho", "normal-energy fraction rho")];

/// One member's curves, read from its run log.
struct Curves {
    state: MemberState,
    batch: usize,
    /// The loss it trains with, as its probes name it (`l2`, `lpips`, `mfd`).
    loss: &'static str,
    /// Its line colour (pseudo-Huber apart from L2).
    colour: [u8; 3],
    /// `(kimg, FD)` in step order.
    fd: Vec<(f64, f64)>,
    /// Per `ALIGNMENT` metric, `(kimg, mean)`.
    alignment: Vec<Vec<(f64, f64)>>,
    final_loss: Option<f64>,
}

/// What `ayt report` wrote.
#[derive(Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub pngs: Vec<PathBuf>,
    /// The target FD used, if any member has FD rows.
    pub target: Option<f64>,
}

/// The probe name of a training loss (pseudo-Huber's update direction is L2's).
fn probe_loss(loss: LossKind) -> &'static str {
    match loss {
        LossKind::L2 | LossKind::PseudoHuber => "l2",
        LossKind::Lpips => "lpips",
        LossKind::Mfd => "mfd",
    }
}

fn points(s: &Series) -> Vec<(f64, f64)> {
    s.kimg.iter().copied().zip(s.value.iter().copied()).collect()
}

fn read_curves(state: MemberState, plan: &Plan, metric: &str) -> Result<Curves> {
    let preset = Preset::parse(&state.planned.preset_toml, &plan.sweep_file, &[])?;
    let mut c = Curves {
        batch: preset.train.batch_size,
        loss: probe_loss(preset.train.loss),
        colour: plot::loss_colour(if preset.train.loss == LossKind::PseudoHuber { "pseudo_huber" } else { probe_loss(preset.train.loss) }),
        fd: Vec::new(),
        alignment: vec![Vec::new(); ALIGNMENT.len()],
        final_loss: None,
        state,
    };
    let path = crate::paths::RunDir::new(&c.state.run_dir).log_file();
    if !path.is_file() {
        return Ok(c);
    }
    let log = RunLog::open(&path)?;
    if log.eval_names()?.iter().any(|n| n == metric) {
        let e = log.eval(metric)?;
        c.fd = e.kimg.iter().copied().zip(e.value.iter().copied()).filter(|(_, v)| v.is_finite()).collect();
    }
    let scalars = log.scalar_names()?;
    for (i, (m, _)) in ALIGNMENT.iter().enumerate() {
        let name = format!("tangent/{}/{m}_mean", c.loss);
        if scalars.contains(&name) {
            c.alignment[i] = points(&log.scalar(&name)?);
        }
    }
    if scalars.iter().any(|n| n == "loss") {
        c.final_loss = log.scalar("loss")?.value.last().copied();
    }
    Ok(c)
}

/// Writes the report of the sweep in `dir`; `target` defaults to the median of the members'
/// final FDs.
pub fn write(dir: &SweepDir, metric: &str, target: Option<f64>) -> Result<Written> {
    let plan = dir.read_plan()?;
    let curves: Vec<Curves> = dir.members(&plan)?.into_iter().map(|s| read_curves(s, &plan, metric)).collect::<Result<_>>()?;
    let out = dir.report_dir();
    std::fs::create_dir_all(&out).map_err(|e| crate::Error::file(&out, format!("cannot create: {e}")))?;
    let finals: Vec<f64> = curves.iter().filter_map(|c| c.fd.last().map(|p| p.1)).collect();
    let target = target.or_else(|| median(&finals));
    let batches: Vec<usize> = curves.iter().map(|c| c.batch).collect::<BTreeSet<_>>().into_iter().collect();

    let fd_png = out.join("fd_vs_kimg.png");
    let panels: Vec<Vec<Line>> = batches
        .iter()
        .map(|b| curves.iter().filter(|c| c.batch == *b).map(|c| Line { colour: c.colour, points: c.fd.clone() }).collect())
        .collect();
    let all_fd = curves.iter().flat_map(|c| c.fd.iter());
    plot::line_panels(&panels, batches.len(), range(all_fd.clone().map(|p| p.0), true), &[range(all_fd.map(|p| p.1), false)], &fd_png)?;

    let align_png = out.join("alignment.png");
    let mut panels = Vec::new();
    for (i, _) in ALIGNMENT.iter().enumerate() {
        for b in &batches {
            panels.push(
                curves
                    .iter()
                    .filter(|c| c.batch == *b)
                    .map(|c| Line { colour: c.colour, points: c.alignment[i].clone() })
                    .collect::<Vec<_>>(),
            );
        }
    }
    // One y range per metric (row): the cosine and rho live on different scales.
    let x = range(curves.iter().flat_map(|c| c.alignment.iter().flatten()).map(|p| p.0), true);
    let y_rows: Vec<(f64, f64)> =
        (0..ALIGNMENT.len()).map(|i| range(curves.iter().flat_map(|c| c.alignment[i].iter()).map(|p| p.1), false)).collect();
    plot::line_panels(&panels, batches.len(), x, &y_rows, &align_png)?;

    let markdown = out.join("report.md");
    let text = markdown_report(&plan, &curves, metric, target, &batches);
    std::fs::write(&markdown, text).map_err(|e| crate::Error::file(&markdown, format!("cannot write: {e}")))?;
    Ok(Written { markdown, pngs: vec![fd_png, align_png], target })
}

/// `(min, max)` of the finite values; from 0 when `from_zero` (kimg axes).
fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if from_zero && hi.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (lo, hi)
    }
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "n/a".into(),
    }
}

fn markdown_report(plan: &Plan, curves: &[Curves], metric: &str, target: Option<f64>, batches: &[usize]) -> String {
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
    let mut header = vec!["#".to_string(), "member".into()];
    header.extend(plan.keys.iter().map(|k| format!("`{k}`")));
    header.extend(
        [
            "status",
            "step",
            "final FD",
            "best FD (at kimg)",
            &format!("kimg to FD <= {}", num(target)),
            "final loss",
            "toward (own loss)",
            "rho (own loss)",
        ]
        .map(String::from),
    );
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}|", vec!["---"; header.len()].join("|"));
    for c in curves {
        let m = &c.state.planned;
        let mut row = vec![m.index.to_string(), m.label.clone()];
        for k in &plan.keys {
            row.push(m.values.iter().find(|(key, _)| key == k).map(|(_, v)| value_text(v)).unwrap_or_default());
        }
        let best = c.fd.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
        let reached = target.and_then(|t| if c.fd.is_empty() { None } else { Some(c.fd.iter().find(|p| p.1 <= t).map(|p| p.0)) });
        row.push(c.state.status.state.as_str().into());
        row.push(format!("{} / {}", c.state.status.step, m.iterations));
        row.push(num(c.fd.last().map(|p| p.1)));
        row.push(best.map(|(k, v)| format!("{v:.4} ({k:.2})")).unwrap_or_else(|| "n/a".into()));
        row.push(match reached {
            None => "n/a".into(),
            Some(None) => "not reached".into(),
            Some(Some(k)) => format!("{k:.2}"),
        });
        row.push(num(c.final_loss));
        for a in &c.alignment {
            row.push(num(a.last().map(|p| p.1)));
        }
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    let panels = batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        s,
        "\n\"kimg to FD <= target\" is the kimg of the first evaluation at or below the target; \
         \"n/a\": no `{metric}` rows (evaluation off, or not reached yet).\n\n\
         ## Plots\n\n\
         Colours: l2 red, mfd green, lpips blue, pseudo-Huber grey. Axes are shared by all panels; \
         their ranges are printed at the corners.\n\n\
         - `fd_vs_kimg.png`: `{metric}` against kimg, one panel per batch size (left to right: {panels}), one line per member.\n\
         - `alignment.png`: probe means of each member's own loss direction against kimg; top row {}, bottom row {}; \
         columns are batch sizes as above; each row has its own y range.",
        ALIGNMENT[0].1, ALIGNMENT[1].1
    );
    s
}
