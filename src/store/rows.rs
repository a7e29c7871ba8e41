//! Rows waiting for the writer thread's next burst, table by table, and what they weigh: the
//! buffer is bounded, and a row past the bound is refused and counted, never dropped silently.

use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct ScalarRows {
    pub step: Vec<i64>,
    pub kimg: Vec<f64>,
    pub wall: Vec<f64>,
    pub value: Vec<f64>,
}

#[derive(Default)]
pub(super) struct HistRows {
    pub bins: usize,
    pub step: Vec<i64>,
    pub edges: Vec<f64>,
    pub counts: Vec<i64>,
}

pub(super) struct SampleRows {
    pub dims: [usize; 4],
    pub step: Vec<i64>,
    pub images: Vec<u8>,
}

#[derive(Default)]
pub(super) struct EvalRows {
    pub attrs: Vec<(String, String)>,
    pub step: Vec<i64>,
    pub kimg: Vec<f64>,
    pub value: Vec<f64>,
}

#[derive(Default)]
pub(super) struct Pending {
    pub scalars: BTreeMap<String, ScalarRows>,
    pub hists: BTreeMap<String, HistRows>,
    pub samples: Option<SampleRows>,
    pub evals: BTreeMap<String, EvalRows>,
    /// Rows and bytes held.
    pub rows: usize,
    pub bytes: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}
