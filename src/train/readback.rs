//! The training step's reads to the host. On a GPU each read waits for the device's queue to
//! drain, so `train.readback_every = N > 1` reads nothing in the step: each step's loss and
//! squared gradient norm stay queued on the device, and every N steps (or earlier, when the engine
//! asks) they are read in one transfer and checked. With N = 1 the trainer reads and checks both
//! in the step, before the weights change. Every read is counted ([`Readback::reads`]), so tests
//! can hold the step path to its budget.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// What one step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The step just completed (1-based: the number of optimiser steps taken).
    pub step: u64,
    pub loss: f64,
    pub stage: u64,
    /// Mean `t - r` over the batch (ECT), or 0 (EDM).
    pub mean_gap: f64,
    /// Images seen after this step (a queued step is logged later, with its own values).
    pub images_seen: u64,
    /// The learning rate of the next step.
    pub lr: f64,
    /// Training seconds after this step (accumulated across resumes).
    pub wall_s: f64,
}

impl StepStats {
    pub fn kimg(&self) -> f64 {
        self.images_seen as f64 / 1000.0
    }
}

/// A step whose loss and squared gradient norm are still on the device.
struct Queued {
    stats: StepStats,
    loss: Tensor,
    sq_grad_norm: Tensor,
}

/// Steps read back together: the finite ones in order, then the first non-finite one (as
/// `Error::NonFinite`), whose weights and those of the steps after it are already updated.
#[derive(Debug, Default)]
pub struct Checked {
    pub steps: Vec<StepStats>,
    pub failed: Option<Error>,
}

/// The step path's host reads: counted, and with `every > 1` queued and batched.
pub struct Readback {
    every: u64,
    queued: Vec<Queued>,
    reads: u64,
}

impl Readback {
    pub fn new(every: u64) -> Self {
        Readback { every: every.max(1), queued: Vec::new(), reads: 0 }
    }

    /// Whether each step reads its values itself, before the weights change (`every == 1`).
    pub fn immediate(&self) -> bool {
        self.every == 1
    }

    /// Host reads so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Steps whose values are queued, not yet read or checked.
    pub fn pending(&self) -> usize {
        self.queued.len()
    }

    /// Whether `every` steps are queued.
    pub fn due(&self) -> bool {
        self.queued.len() as u64 >= self.every
    }

    /// A 0-d tensor's value, read now (one host read).
    pub fn scalar(&mut self, t: &Tensor) -> Result<f64> {
        self.reads += 1;
        Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }

    /// Queues a step's report with its loss and squared gradient norm (0-d device tensors).
    pub fn push(&mut self, stats: StepStats, loss: Tensor, sq_grad_norm: Tensor) {
        self.queued.push(Queued { stats, loss, sq_grad_norm });
    }

    /// Forgets what is queued (the weights they came from were replaced).
    pub fn discard(&mut self) {
        self.queued.clear();
    }

    /// Reads every queued step's loss and squared gradient norm in one host transfer (none when
    /// nothing is queued) and checks them in step order, the loss before the gradient norm.
    pub fn flush(&mut self) -> Result<Checked> {
        if self.queued.is_empty() {
            return Ok(Checked::default());
        }
        let queued = std::mem::take(&mut self.queued);
        let scalars: Vec<&Tensor> = queued.iter().flat_map(|q| [&q.loss, &q.sq_grad_norm]).collect();
        self.reads += 1;
        let values = read_together(&scalars)?;
        let mut checked = Checked::default();
        for (q, v) in queued.iter().zip(values.chunks_exact(2)) {
            let (loss, norm) = (v[0], v[1].sqrt());
            if let Err(e) = check(q.stats.step, loss, norm) {
                checked.failed = Some(e);
                break;
            }
            checked.steps.push(StepStats { loss, ..q.stats });
        }
        Ok(checked)
    }
}

/// The values of 0-d tensors on one device, in order, read to the host in one transfer (each
/// read waits for the device's queue, so a training loop reads its queued values together).
pub fn read_together(scalars: &[&Tensor]) -> Result<Vec<f64>> {
    let f64s = scalars.iter().map(|t| t.to_dtype(DType::F64)).collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&f64s, 0)?.to_vec1::<f64>()?)
}

/// `Error::NonFinite` for a NaN or an infinity in `value`, the step's `what` (`"loss"`,
/// `"gradient norm"`).
pub fn finite(step: u64, what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFinite { step, what, value })
    }
}

fn check(step: u64, loss: f64, grad_norm: f64) -> Result<()> {
    finite(step, "loss", loss)?;
    finite(step, "gradient norm", grad_norm).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn stats(step: u64) -> StepStats {
        StepStats { step, loss: f64::NAN, stage: 0, mean_gap: 0.5, images_seen: 8 * step, lr: 1e-3, wall_s: 0.0 }
    }

    fn scalar(v: f64, dtype: DType) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    #[test]
    fn a_flush_reads_once_and_reports_the_first_non_finite_step() {
        let mut r = Readback::new(3);
        assert_eq!((r.immediate(), r.flush().unwrap().steps.len(), r.reads()), (false, 0, 0), "nothing queued: no read");
        r.push(stats(1), scalar(0.25, DType::F32), scalar(4.0, DType::F64));
        r.push(stats(2), scalar(0.5, DType::F32), scalar(f64::INFINITY, DType::F64));
        assert!(!r.due());
        r.push(stats(3), scalar(f64::NAN, DType::F32), scalar(1.0, DType::F64));
        assert!(r.due());
        let c = r.flush().unwrap();
        assert_eq!((r.reads(), r.pending()), (1, 0));
        assert_eq!(c.steps, vec![StepStats { loss: 0.25, ..stats(1) }], "the finite steps before it, their loss read");
        let Some(Error::NonFinite { step: 2, what: "gradient norm", value }) = c.failed else { panic!("{:?}", c.failed) };
        assert_eq!(value, f64::INFINITY);
        // the loss is checked before the gradient norm of the same step
        r.push(stats(4), scalar(f64::NAN, DType::F32), scalar(f64::NAN, DType::F64));
        assert!(matches!(r.flush().unwrap().failed, Some(Error::NonFinite { step: 4, what: "loss", .. })));
        assert_eq!(r.reads(), 2);
    }

    #[test]
    fn a_scalar_read_is_counted_and_exact() {
        let mut r = Readback::new(1);
        assert!(r.immediate());
        let v = 0.1f32;
        assert_eq!(r.scalar(&scalar(v as f64, DType::F32)).unwrap(), v as f64);
        assert_eq!(r.reads(), 1);
    }
}
