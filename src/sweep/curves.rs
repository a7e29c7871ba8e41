//! One sweep member's curves for `ayt report`, read from its run log: FD against kimg (with its
//! sd over repeats), the probe means of its own loss direction and of random directions, its
//! own-loss `rho` histograms over training, and its final loss.

use super::index::{MemberState, Plan};
use crate::config::{LossKind, Preset};
use crate::metrics::intervals::Interval;
use crate::metrics::probe::CHANCE;
use crate::plot;
use crate::store::{RunLog, Series};
use crate::Result;

/// Probe metrics plotted in `alignment.png`, top to bottom.
pub(super) const ALIGNMENT: [(&str, &str); 3] =
    [("toward", "toward-data cosine"), ("rho", "normal-energy fraction rho"), ("toward_manifold", "toward-manifold cosine")];

/// Grey: the chance level (random directions) in `alignment.png`.
pub(super) const CHANCE_COLOUR: [u8; 3] = [40, 40, 40];

/// One member's curves, read from its run log.
pub(super) struct Curves {
    pub(super) state: MemberState,
    pub(super) batch: usize,
    /// The loss it trains with, as its probes name it (`l2`, `lpips`, `mfd`).
    pub(super) loss: &'static str,
    /// The loss by its preset name (`pseudo_huber` apart from `l2`), for legends.
    pub(super) name: &'static str,
    /// Its line colour (pseudo-Huber apart from L2).
    pub(super) colour: [u8; 3],
    /// `(kimg, FD)` in step order.
    pub(super) fd: Vec<(f64, f64)>,
    /// FD standard deviation over `eval.repeats` at the last evaluation, when repeated.
    pub(super) fd_sd: Option<f64>,
    /// `(kimg, sd)` of every repeated evaluation.
    pub(super) fd_sd_curve: Vec<(f64, f64)>,
    /// Per `ALIGNMENT` metric, `(kimg, mean)`, and the same for random directions.
    pub(super) alignment: Vec<Vec<(f64, f64)>>,
    pub(super) chance: Vec<Vec<(f64, f64)>>,
    /// Per `ALIGNMENT` metric, the last probe's mean with its bootstrap 95% interval.
    pub(super) last_probe: Vec<Option<Interval>>,
    /// The own loss's `rho` histogram at every probe (the heat map over training).
    pub(super) rho_history: Vec<Vec<i64>>,
    pub(super) final_loss: Option<f64>,
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

pub(super) fn read_curves(state: MemberState, plan: &Plan, metric: &str) -> Result<Curves> {
    let preset = Preset::parse(&state.planned.preset_toml, &plan.sweep_file, &[])?;
    let name = if preset.train.loss == LossKind::PseudoHuber { "pseudo_huber" } else { probe_loss(preset.train.loss) };
    let mut c = Curves {
        batch: preset.train.batch_size,
        loss: probe_loss(preset.train.loss),
        name,
        colour: plot::loss_colour(name),
        fd: Vec::new(),
        fd_sd: None,
        fd_sd_curve: Vec::new(),
        alignment: vec![Vec::new(); ALIGNMENT.len()],
        chance: vec![Vec::new(); ALIGNMENT.len()],
        last_probe: vec![None; ALIGNMENT.len()],
        rho_history: Vec::new(),
        final_loss: None,
        state,
    };
    let path = crate::paths::RunDir::new(&c.state.run_dir).log_file();
    if !path.is_file() {
        return Ok(c);
    }
    let log = RunLog::open(&path)?;
    let evals = log.eval_names()?;
    if evals.iter().any(|n| n == metric) {
        let e = log.eval(metric)?;
        c.fd = e.kimg.iter().copied().zip(e.value.iter().copied()).filter(|(_, v)| v.is_finite()).collect();
    }
    let sd_name = format!("{metric}_sd");
    if evals.contains(&sd_name) {
        let sd = log.eval(&sd_name)?;
        c.fd_sd = sd.value.last().copied().filter(|v| v.is_finite());
        c.fd_sd_curve = sd.kimg.iter().copied().zip(sd.value.iter().copied()).filter(|(_, v)| v.is_finite()).collect();
    }
    let scalars = log.scalar_names()?;
    let last =
        |name: String| -> Result<Option<f64>> { Ok(if scalars.contains(&name) { log.scalar(&name)?.value.last().copied() } else { None }) };
    for (i, (m, _)) in ALIGNMENT.iter().enumerate() {
        let name = format!("tangent/{}/{m}_mean", c.loss);
        if scalars.contains(&name) {
            c.alignment[i] = points(&log.scalar(&name)?);
            let (lo, hi) = (last(format!("tangent/{}/{m}_lo95", c.loss))?, last(format!("tangent/{}/{m}_hi95", c.loss))?);
            c.last_probe[i] = c.alignment[i].last().map(|p| Interval { mean: p.1, lo: lo.unwrap_or(f64::NAN), hi: hi.unwrap_or(f64::NAN) });
        }
        let chance = format!("tangent/{CHANCE}/{m}_mean");
        if scalars.contains(&chance) {
            c.chance[i] = points(&log.scalar(&chance)?);
        }
    }
    let rho = format!("tangent/{}/rho", c.loss);
    if log.hist_names()?.contains(&rho) {
        c.rho_history = log.hist(&rho)?.counts;
    }
    if scalars.iter().any(|n| n == "loss") {
        c.final_loss = log.scalar("loss")?.value.last().copied();
    }
    Ok(c)
}
