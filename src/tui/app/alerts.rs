//! Alerts: a finished, stopped or failed run, a non-finite loss, and a run that stalled ring the
//! terminal bell once and show in the header (and the log) until the next alert. The stall check
//! takes the time as an argument, so it is tested without waiting.

use std::time::{Duration, Instant};

use super::{App, RunState};

/// A run with no step for this long (or 20 of its mean step times, if longer) has stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

/// What the header shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub text: String,
    /// Failures and non-finite losses (red) rather than news (a run ended: bold).
    pub severe: bool,
}

/// The alert state: the current alert, bells not rung yet, and the stall watch.
#[derive(Clone, Debug, Default)]
pub struct Alerts {
    pub current: Option<Alert>,
    pub bells: u32,
    /// When the live run last reported a step.
    pub(super) last_step_at: Option<Instant>,
    pub(super) stalled: bool,
    /// The live run already had a non-finite loss (alert once per run).
    pub(super) nonfinite_seen: bool,
}

impl App {
    /// Raises an alert: header, log line, one bell.
    pub fn alert(&mut self, text: impl Into<String>, severe: bool) {
        let text = text.into();
        self.push_log(format!("ALERT: {text}"));
        self.alerts.current = Some(Alert { text, severe });
        self.alerts.bells += 1;
    }

    /// Bells to ring now (the event loop writes them to the terminal).
    pub fn take_bells(&mut self) -> u32 {
        std::mem::take(&mut self.alerts.bells)
    }

    /// A step of the live run arrived at `now`: a stall is over; a non-finite loss alerts.
    pub(super) fn watch_step(&mut self, step: u64, loss: f64, now: Instant) {
        self.alerts.last_step_at = Some(now);
        if self.alerts.stalled {
            self.alerts.stalled = false;
            self.alerts.current = None;
        }
        if !loss.is_finite() && !self.alerts.nonfinite_seen {
            self.alerts.nonfinite_seen = true;
            self.alert(format!("non-finite loss ({loss}) at step {step}"), true);
        }
    }

    /// A new live run: its own watch.
    pub(super) fn watch_new_run(&mut self, now: Instant) {
        self.alerts.last_step_at = Some(now);
        self.alerts.stalled = false;
        self.alerts.nonfinite_seen = false;
    }

    /// Alerts once when the running live run has reported no step for [`STALL_AFTER`] (or 20 of
    /// its mean step times).
    pub fn check_stall(&mut self, now: Instant) {
        let Some(run) = self.live_run() else { return };
        let (Some(last), false) = (self.alerts.last_step_at, self.alerts.stalled) else { return };
        if run.state != RunState::Running {
            return;
        }
        let typical =
            if run.progress.steps_per_s > 0.0 { Duration::from_secs_f64(20.0 / run.progress.steps_per_s) } else { Duration::ZERO };
        let limit = STALL_AFTER.max(typical);
        let quiet = now.saturating_duration_since(last);
        if quiet >= limit {
            let (name, step) = (run.name.clone(), run.progress.step);
            self.alerts.stalled = true;
            self.alert(format!("{name} stalled: no step for {} s (at step {step})", quiet.as_secs()), true);
        }
    }
}
