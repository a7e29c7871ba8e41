//! Comparing runs (a sweep in `ayt view`): which runs are shown (the filter), how strongly their
//! curves are smoothed, whether sweep members are drawn per setting, and the summary table's
//! sort order and cursor.

use super::{App, RunData};

/// The summary table's state (`T`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableView {
    /// Column the rows are sorted by.
    pub sort: usize,
    pub descending: bool,
    /// Highlighted row (of the sorted, filtered rows).
    pub cursor: usize,
}

/// Whether `run` matches every whitespace-separated word of `filter` (case-insensitive) in its
/// name or swept values; an empty filter matches every run.
pub fn matches(run: &RunData, filter: &str) -> bool {
    let mut text = run.name.to_lowercase();
    for (k, v) in &run.swept {
        text.push_str(&format!(" {k}={v} {}={v}", k.rsplit('.').next().unwrap_or(k)).to_lowercase());
    }
    filter.split_whitespace().all(|w| text.contains(&w.to_lowercase()))
}

impl App {
    /// Indices of the runs the filter lets through, in order.
    pub fn visible_runs(&self) -> Vec<usize> {
        (0..self.runs.len()).filter(|&i| matches(&self.runs[i], &self.filter)).collect()
    }

    /// Whether curves are drawn per sweep setting (some run has swept values and `g` is on).
    pub fn drawing_groups(&self) -> bool {
        self.grouped && self.runs.iter().any(|r| r.group().is_some())
    }

    /// The summary table of the shown runs (per setting when drawing groups), sorted as chosen.
    pub fn summary_table(&self) -> crate::tui::table::Table {
        let mut t = crate::tui::table::build(&self.runs, &self.visible_runs(), self.drawing_groups());
        crate::tui::table::sort(&mut t, self.table.sort, self.table.descending);
        t
    }

    /// Sets the EMA strength of every loss curve (`[` / `]` step through
    /// [`crate::tui::series::SMOOTHING_STEPS`]).
    pub fn set_smoothing(&mut self, alpha: f64) {
        self.smoothing = alpha;
        for run in &mut self.runs {
            run.loss.set_smoothing(alpha);
        }
    }

    /// One step weaker (`-1`) or stronger (`+1`) smoothing.
    pub fn step_smoothing(&mut self, dir: i32) {
        let steps = crate::tui::series::SMOOTHING_STEPS;
        let at = steps.iter().position(|&s| s >= self.smoothing).unwrap_or(steps.len() - 1) as i32;
        let next = (at + dir).clamp(0, steps.len() as i32 - 1) as usize;
        self.set_smoothing(steps[next]);
        self.push_log(format!("smoothing {}", steps[next]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::RunState;

    fn member(name: &str, batch: &str, loss: &str, seed: &str) -> RunData {
        let mut r = RunData::new(name, None, RunState::Viewing);
        r.swept = vec![("train.batch_size".into(), batch.into()), ("train.loss".into(), loss.into()), ("seed".into(), seed.into())];
        r
    }

    #[test]
    fn filter_words_must_all_match_name_or_swept_values() {
        let r = member("b8-mfd-s0", "8", "mfd", "0");
        assert!(matches(&r, ""));
        assert!(matches(&r, "MFD"));
        assert!(matches(&r, "loss=mfd batch_size=8"));
        assert!(matches(&r, "train.loss=mfd"));
        assert!(!matches(&r, "loss=l2"));
        assert!(!matches(&r, "mfd batch_size=16"));
        assert_eq!(r.group().as_deref(), Some("batch_size=8 loss=mfd"), "the seed is not part of the setting");
        assert_eq!(RunData::new("lone", None, RunState::Viewing).group(), None);
    }

    #[test]
    fn smoothing_steps_between_the_presets_and_reaches_every_run() {
        let mut app = App::viewer(vec![crate::tui::fixtures::loss_run("a", 50, 1, RunState::Viewing)]);
        assert_eq!(app.smoothing, crate::tui::series::SMOOTHING);
        app.step_smoothing(1);
        assert_eq!(app.smoothing, 0.98);
        for _ in 0..20 {
            app.step_smoothing(-1);
        }
        assert_eq!(app.smoothing, 0.0);
        assert_eq!(app.runs[0].loss.smooth, app.runs[0].loss.raw, "strength 0: the curve is the raw loss");
    }
}
