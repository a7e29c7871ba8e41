use super::*;
use crossbeam_channel::unbounded;

/// A tiny ECT run on disks (every step logged, no samples, no periodic checkpoints), `sets`
/// applied as `--set` overrides.
fn tiny(iterations: u64, sets: &[&str]) -> Preset {
    let text = format!(
        "name = \"nf\"\nseed = 2\n[data]\ndataset = \"disks\"\n[data.disks]\nsize = 8\nradius_min = 1.5\nradius_max = 3.0\n\
         [model]\nchannels = [8, 16]\nblocks_per_level = 1\nemb_dim = 16\nnoise_freqs = 4\ngroups = 4\n\
         [train]\nmode = \"ect\"\nbatch_size = 8\niterations = {iterations}\nlr = 2e-3\n\
         [log]\nevery = 1\nsample_count = 0\ncheckpoint_every = 0\n"
    );
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Preset::parse(&text, Path::new("nf.toml"), &sets).unwrap()
}

/// What a run left: its result, its warnings and step events, its logged `(step, loss bits)`,
/// and the trainer's host reads.
struct Outcome {
    result: Result<(bool, f64)>,
    rollbacks: u64,
    steps_done: u64,
    reads: u64,
    logs: Vec<String>,
    step_events: Vec<(u64, u64)>,
    logged: Vec<(i64, u64)>,
}

/// Prepares a run of `preset`, lets `before` act on it (steps, a checkpoint, a poisoned weight),
/// then trains it to its end (or its failure) and closes its log.
fn train(preset: &Preset, before: impl FnOnce(&mut Run, &Control)) -> Outcome {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths { home: home.path().to_path_buf() };
    let (ev_tx, ev_rx) = unbounded();
    let emitter = Emitter { tx: ev_tx };
    let (_cmd_tx, cmd_rx) = unbounded();
    let mut queue = VecDeque::new();
    let mut ctl = Control { commands: &cmd_rx, queue: &mut queue, emitter: &emitter, quit: false };
    let mut run = prepare_new(&paths, &Device::Cpu, preset, None, Some(home.path().join("run")), &emitter).unwrap();
    before(&mut run, &ctl);
    let result = run.train_loop(&mut ctl);
    run.writer.close().unwrap();
    let (mut logs, mut step_events) = (Vec::new(), Vec::new());
    for e in ev_rx.try_iter() {
        match e {
            Event::Log(l) => logs.push(l),
            Event::Step { step, loss, .. } => step_events.push((step, loss.to_bits())),
            _ => {}
        }
    }
    let loss = crate::store::RunLog::open(run.dir.log_file()).unwrap().scalar("loss").unwrap();
    let logged = loss.step.into_iter().zip(loss.value.iter().map(|v| v.to_bits())).collect();
    let (rollbacks, steps_done, reads) = (run.rollbacks, run.trainer.steps_done(), run.trainer.host_reads());
    Outcome { result, rollbacks, steps_done, reads, logs, step_events, logged }
}

/// Two steps and a checkpoint at step 2; then `clean` more steps are taken (queued with
/// `readback_every > 1`) before a weight turns NaN, so step `3 + clean` is the first NaN loss.
fn checkpoint_then_poison(clean: u64) -> impl FnOnce(&mut Run, &Control) {
    move |run, ctl| {
        for _ in 0..2 {
            run.trainer.step().unwrap();
        }
        run.checkpoint_now(ctl).unwrap();
        for _ in 0..clean {
            run.trainer.advance().unwrap();
        }
        let var = run.trainer.model().varmap.all_vars()[0].clone();
        var.set(&(var.as_tensor().zeros_like().unwrap() * f64::NAN).unwrap()).unwrap();
    }
}

#[test]
fn a_rollback_reloads_the_checkpoint_passes_over_the_batch_and_finishes_the_run() {
    let out = train(&tiny(6, &["train.on_nonfinite=\"rollback\""]), checkpoint_then_poison(0));
    let (stopped, loss) = out.result.unwrap();
    assert!(!stopped && loss.is_finite(), "{loss}");
    assert_eq!((out.rollbacks, out.steps_done), (1, 6));
    assert!(out.logs.iter().any(|l| l.contains("step 3: the loss is NaN; rolled back to the checkpoint at step 2")), "{:?}", out.logs);
    let steps: Vec<i64> = out.logged.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, vec![3, 4, 5, 6], "each step logged once, the failed one not");
}

#[test]
fn readback_every_4_logs_the_same_losses_bit_for_bit_reading_at_steps_4_and_8_and_before_checkpoints() {
    let every_step = train(&tiny(8, &[]), |_, _| {});
    let logged = every_step.logged.clone();
    assert_eq!(logged.iter().map(|(s, _)| *s).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
    // today's reads: the loss and the gradient norm of each step
    assert_eq!(every_step.reads, 16);
    let batched = train(&tiny(8, &["train.readback_every=4"]), |_, _| {});
    assert_eq!(batched.logged, logged, "the same steps and losses in run.h5");
    assert_eq!(batched.step_events, every_step.step_events, "the same step events");
    assert_eq!(batched.reads, 2, "one read at step 4, one at step 8");
    // a checkpoint every 3 steps reads back first: at 3, 6 and the end
    let checkpointed = train(&tiny(8, &["train.readback_every=4", "log.checkpoint_every=3"]), |_, _| {});
    assert_eq!((checkpointed.logged, checkpointed.reads), (logged, 3));
    assert!(batched.result.unwrap().1 == every_step.result.unwrap().1 && checkpointed.result.is_ok());
}

#[test]
fn readback_every_4_rolls_back_from_the_first_non_finite_step_found_late_and_finishes_the_run() {
    let out = train(&tiny(6, &["train.on_nonfinite=\"rollback\"", "train.readback_every=4"]), checkpoint_then_poison(1));
    let (stopped, loss) = out.result.unwrap();
    assert!(!stopped && loss.is_finite(), "{loss}");
    assert_eq!((out.rollbacks, out.steps_done), (1, 6));
    let warning = "step 4: the loss is NaN; rolled back to the checkpoint at step 2, passing over that batch";
    assert!(out.logs.iter().any(|l| l.contains(warning)), "{:?}", out.logs);
    let steps: Vec<i64> = out.logged.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, vec![3, 4, 5, 6], "the log cut to the checkpoint, then each step once");
    // step 3 (finite, read with the NaN) was reported, then taken again from the checkpoint alike
    assert_eq!(out.step_events.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3, 3, 4, 5, 6]);
    assert_eq!(out.step_events[0], out.step_events[1], "the same batch and random streams give step 3 again");
    // two reads for the two steps before the checkpoint, then one per 4 steps: 3..=6 twice
    assert_eq!(out.reads, 2 + 2);
}

#[test]
fn readback_every_4_with_stop_fails_naming_the_first_non_finite_step_and_keeps_the_steps_before_it() {
    let out = train(&tiny(8, &["train.readback_every=4"]), checkpoint_then_poison(1));
    let e = out.result.unwrap_err().to_string();
    assert!(e.contains("step 4: the loss is NaN") && e.contains("the last good checkpoint is step 2"), "{e}");
    assert_eq!(out.logged.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3], "step 3 was finite: logged as before");
    assert_eq!(out.step_events.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3]);
    assert_eq!(out.reads, 2 + 1);
}
