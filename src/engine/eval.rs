//! Sample-quality evaluation during training (`[eval] every_kimg`): the EMA model at every
//! multiple of `every_kimg` and at the end of the run, with the same [`Evaluator`] as `ayt eval`.

use std::time::Instant;

use candle_core::Device;

use super::{Emitter, Event};
use crate::config::{Preset, SamplingConfig};
use crate::metrics::evaluator::{for_ema_profile, EvalValue, Evaluator};
use crate::paths::Paths;
use crate::store::RunLogWriter;
use crate::train::Trainer;
use crate::Result;

pub struct TrainingEval {
    evaluator: Evaluator,
    every_kimg: f64,
    /// What the kimg-0 cache key is made of besides the weights.
    protocol: String,
    sampling: SamplingConfig,
    /// The run's seed: the evaluation noise is its "eval" stream.
    seed: u64,
    /// Step of the last evaluation (the end of the run does not repeat it).
    last_step: Option<u64>,
}

impl TrainingEval {
    /// `None` when the preset does not evaluate during training. Builds the evaluator now (it may
    /// train the evaluator network), so a bad `[eval]` setting fails before the first step.
    pub fn new(preset: &Preset, paths: &Paths, device: &Device, emitter: &Emitter) -> Result<Option<TrainingEval>> {
        let cfg = &preset.eval;
        if cfg.every_kimg <= 0.0 {
            return Ok(None);
        }
        let log = |line: &str| emitter.emit(Event::Log(line.to_string()));
        let evaluator = Evaluator::for_preset(paths, preset, cfg, None, device, &log)?;
        let (sampling, seed) = (preset.sampling.clone(), preset.seed);
        let protocol = serde_json::to_string(&(&preset.data, cfg, &sampling, seed)).map_err(|e| crate::Error::msg(e.to_string()))?;
        Ok(Some(TrainingEval { evaluator, every_kimg: cfg.every_kimg, protocol, sampling, seed, last_step: None }))
    }

    /// Whether a multiple of `every_kimg` lies in `(kimg_before, kimg_after]`. Stateless, so a
    /// resumed run evaluates at the same points as an uninterrupted one.
    pub fn due(&self, kimg_before: f64, kimg_after: f64) -> bool {
        crossed(self.every_kimg, kimg_before, kimg_after)
    }

    /// Evaluates the default EMA profile's weights (attribute `weights` names it), logs each value to `/eval` and emits them. Its noise is the
    /// run's "eval" stream, separate from every training stream.
    pub fn run(&mut self, trainer: &Trainer, writer: &RunLogWriter, emitter: &Emitter) -> Result<()> {
        let (step, kimg) = (trainer.steps_done(), trainer.kimg());
        if self.last_step == Some(step) {
            return Ok(());
        }
        self.last_step = Some(step);
        let started = Instant::now();
        emitter.emit(Event::Log(format!("eval at step {step} ({kimg:.2} kimg), {} samples each", self.evaluator.n())));
        let log = |line: &str| emitter.emit(Event::Log(line.to_string()));
        let mut values = self.evaluator.evaluate(trainer.ema(), &self.sampling, self.seed, &log)?;
        for_ema_profile(&mut values, &trainer.emas()[0].0, true);
        for v in &values {
            writer.eval(&v.metric, step as i64, kimg, v.value, v.attrs.clone())?;
        }
        emitter.emit(Event::Log(format!("eval at step {step} done in {:.1} s", started.elapsed().as_secs_f64())));
        emitter.emit(Event::Eval { step, kimg, values: values.into_iter().map(|v| (v.metric, v.value)).collect() });
        Ok(())
    }

    /// The starting weights of a run tuned from `train.init`, at step 0 and kimg 0, so that every
    /// curve starts from one measured point. Computed once per starting weights (EMA), data,
    /// `[eval]`, sampling and seed, and read from `<home>/cache/start-eval-<key>.json` by every
    /// other run that starts there (the members of a sweep).
    pub fn run_start(&mut self, trainer: &Trainer, writer: &RunLogWriter, emitter: &Emitter, paths: &Paths) -> Result<()> {
        let key = self.start_key(trainer)?;
        let path = paths.cache().join(format!("start-eval-{}.json", &key[..16]));
        let cached = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<(String, Vec<EvalValue>)>(&b).ok());
        let mut values = match cached.filter(|(k, _)| *k == key) {
            Some((_, values)) => {
                emitter.emit(Event::Log(format!("eval of the starting weights (kimg 0) from the cache: {}", path.display())));
                values
            }
            None => {
                emitter.emit(Event::Log("eval of the starting weights (kimg 0)".into()));
                let log = |line: &str| emitter.emit(Event::Log(line.to_string()));
                let values = self.evaluator.evaluate(trainer.ema(), &self.sampling, self.seed, &log)?;
                crate::store::json::write_atomically(&path, &(key, &values))?;
                values
            }
        };
        for_ema_profile(&mut values, &trainer.emas()[0].0, true);
        for v in &values {
            writer.eval(&v.metric, 0, 0.0, v.value, v.attrs.clone())?;
        }
        self.last_step = Some(0);
        emitter.emit(Event::Eval { step: 0, kimg: 0.0, values: values.into_iter().map(|v| (v.metric, v.value)).collect() });
        Ok(())
    }

    /// sha256 of the EMA weights (by name, in order) and the evaluation protocol.
    fn start_key(&self, trainer: &Trainer) -> Result<String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut named = crate::train::checkpoint::vars_to_named(&trainer.ema().varmap, "")?;
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, t) in named {
            h.update(name.as_bytes());
            for v in t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()? {
                h.update(v.to_le_bytes());
            }
        }
        h.update(self.protocol.as_bytes());
        Ok(hex::encode(h.finalize()))
    }
}

/// Whether a positive multiple of `every` lies in `(before, after]`.
fn crossed(every: f64, before: f64, after: f64) -> bool {
    // A small slack absorbs rounding of kimg = images / 1000 (e.g. 0.1 + 0.2).
    let eps = 1e-9;
    every > 0.0 && ((after + eps) / every).floor() > ((before + eps) / every).floor()
}

#[cfg(test)]
mod tests {
    use super::crossed;

    #[test]
    fn due_at_each_multiple_once() {
        // batches of 64 images, every 0.5 kimg: due at the steps crossing 500, 1000, 1500 images
        let due: Vec<u64> = (1..=25u64).filter(|s| crossed(0.5, (s - 1) as f64 * 0.064, *s as f64 * 0.064)).collect();
        assert_eq!(due, vec![8, 16, 24]);
        // landing exactly on a multiple counts once, at that step
        let due: Vec<u64> = (1..=10u64).filter(|s| crossed(0.3, (s - 1) as f64 * 0.1, *s as f64 * 0.1)).collect();
        assert_eq!(due, vec![3, 6, 9]);
        assert!(!crossed(0.0, 0.0, 100.0), "0 turns it off");
    }
}
