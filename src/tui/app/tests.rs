//! Tests of the app state: events, probes, the log.

use super::*;
use crate::engine::Event;

fn started(app: &mut App) {
    app.on_event(Event::Started { run_dir: "/r/a".into(), name: "a".into(), start_step: 0, total_steps: 100, params: 1234 });
}

fn step(app: &mut App, s: u64, loss: f64) {
    app.on_event(Event::Step {
        step: s,
        total_steps: 100,
        kimg: s as f64 * 0.032,
        wall_s: s as f64 * 0.5,
        loss,
        stage: 0,
        img_per_s: 64.0,
    });
}

#[test]
fn a_run_goes_from_started_to_finished() {
    let mut app = App::new(Launcher::new(vec![], vec![]));
    app.queue.push_back("new run of preset a".into());
    started(&mut app);
    assert!(app.queue.is_empty(), "starting pops the queue");
    assert_eq!(app.screen, Screen::Dashboard);
    assert!(app.job_active());
    for s in 1..=10 {
        step(&mut app, s, 1.0 / s as f64);
    }
    let run = app.live_run().unwrap();
    assert_eq!(run.loss.len(), 10);
    assert_eq!(run.progress.step, 10);
    assert!((run.progress.steps_per_s - 2.0).abs() < 1e-9, "2 steps per wall second");
    assert!((run.progress.eta_s().unwrap() - 45.0).abs() < 1e-6);
    app.on_event(Event::Paused { step: 10 });
    assert_eq!(app.live_run().unwrap().state, RunState::Paused);
    app.on_event(Event::Resumed { step: 10 });
    assert_eq!(app.live_run().unwrap().state, RunState::Running);
    app.on_event(Event::Samples { step: 10, path: "/r/a/s.png".into(), images: vec![0; 4 * 3], n: 3, h: 2, w: 2, c: 1 });
    assert_eq!(app.live_run().unwrap().samples_ema.as_ref().unwrap().grid.n, 3);
    app.on_event(Event::Finished { run_dir: "/r/a".into(), step: 100, stopped_early: false, final_loss: 0.1, wall_s: 50.0 });
    assert_eq!(app.live_run().unwrap().state, RunState::Finished);
    assert!(!app.job_active());
    assert!(!app.exit);
    assert!(app.log.iter().any(|l| l.contains("finished")));
}

#[test]
fn eval_events_feed_the_eval_axis_of_the_live_run() {
    let mut app = App::new(Launcher::new(vec![], vec![]));
    started(&mut app);
    app.on_event(Event::Eval {
        step: 10,
        kimg: 0.64,
        values: vec![("fd_evalnet_1step".into(), 12.5), ("disk_in_range_1step".into(), 0.9)],
    });
    app.on_event(Event::Eval { step: 20, kimg: 1.28, values: vec![("fd_evalnet_1step".into(), 8.0)] });
    let evals = &app.live_run().unwrap().evals;
    assert_eq!(evals["fd_evalnet_1step"].raw, vec![12.5, 8.0]);
    assert_eq!(evals["fd_evalnet_1step"].kimg, vec![0.64, 1.28]);
    assert_eq!(evals["disk_in_range_1step"].step, vec![10.0]);
    assert!(app.log.back().unwrap().contains("eval at step 20"));
}

#[test]
fn probe_and_eval_events_reach_the_live_run_not_the_shown_one() {
    use crate::metrics::hist::{Histogram, Summary};
    let mut app = App::new(Launcher::new(vec![], vec![]));
    started(&mut app);
    // A run opened from disk beside it, and shown.
    app.add_view_run(RunData::new("old", Some("/r/old".into()), RunState::Viewing));
    app.selected = 1;
    let hist = |counts: Vec<i64>| Histogram { edges: vec![0.0, 0.5, 1.0], counts };
    app.on_event(Event::Probe {
        step: 7,
        hists: vec![
            ("tangent/mfd/rho".into(), hist(vec![2, 1]), Summary::of(&[0.1, 0.2, 0.7])),
            ("tangent/l2/toward_t1".into(), hist(vec![-1, 4]), Summary::of(&[0.6, 0.8])),
        ],
    });
    app.on_event(Event::Eval { step: 7, kimg: 0.2, values: vec![("fd_evalnet_1step".into(), 3.5)] });
    let live = app.live_run().unwrap();
    let rho = &live.hists["tangent/mfd/rho"];
    assert_eq!((rho.step, &rho.edges, &rho.counts), (7, &vec![0.0, 0.5, 1.0], &vec![2, 1]));
    assert!((rho.mean.unwrap() - 1.0 / 3.0).abs() < 1e-12, "the probe's exact mean travels with the histogram");
    assert_eq!(live.hists["tangent/l2/toward_t1"].counts, vec![0, 4], "negative counts clamp to 0");
    assert_eq!(live.evals["fd_evalnet_1step"].raw, vec![3.5]);
    assert!(app.runs[1].hists.is_empty() && app.runs[1].evals.is_empty(), "the shown run read from disk is untouched");
    assert!(app.log.iter().any(|l| l == "probe at step 7"));
}

#[test]
fn quitting_ends_when_the_run_finishes_or_fails() {
    let mut app = App::new(Launcher::new(vec![], vec![]));
    started(&mut app);
    app.quitting = true;
    app.on_event(Event::Finished { run_dir: "/r/a".into(), step: 5, stopped_early: true, final_loss: 0.1, wall_s: 1.0 });
    assert!(app.exit);
    assert_eq!(app.live_run().unwrap().state, RunState::Stopped);

    let mut app = App::new(Launcher::new(vec![], vec![]));
    app.queue.push_back("x".into());
    app.on_event(Event::Failed { run_dir: None, error: "bad preset".into() });
    assert!(app.queue.is_empty(), "a request that failed to start leaves the queue");
    assert!(app.log.back().unwrap().contains("bad preset"));
}

#[test]
fn log_is_bounded_and_splits_lines() {
    let mut app = App::new(Launcher::new(vec![], vec![]));
    app.push_log("a\nb");
    assert_eq!(app.log.len(), 2);
    for i in 0..2 * LOG_LINES {
        app.push_log(format!("{i}"));
    }
    assert_eq!(app.log.len(), LOG_LINES);
    assert_eq!(app.log.back().unwrap(), &format!("{}", 2 * LOG_LINES - 1));
}

#[test]
fn probes_are_grouped_by_metric_and_t_range() {
    let key = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(hist_key("tangent/mfd/rho"), key("mfd", "rho", "all"));
    assert_eq!(hist_key("tangent/lpips/toward_t1"), key("lpips", "toward", "t0.1-1"));
    assert_eq!(hist_key("tangent/l2/oscillation_t3"), key("l2", "oscillation", "t>10"));
    let mut app = App::new(Launcher::new(vec![], vec![]));
    started(&mut app);
    for name in ["tangent/mfd/rho", "tangent/l2/toward", "tangent/l2/rho_t0"] {
        app.on_probe(ProbeHist { name: name.into(), row: HistRow { step: 3, edges: vec![0.0, 0.5, 1.0], counts: vec![1, 2], mean: None } });
    }
    let (metrics, ranges) = app.live_run().unwrap().hist_axes();
    assert_eq!(metrics, vec!["rho", "toward"]);
    assert_eq!(ranges, vec!["all", "t<0.1"]);
}

#[test]
fn steps_without_a_run_are_ignored() {
    let mut app = App::new(Launcher::new(vec![], vec![]));
    step(&mut app, 1, 1.0);
    assert!(app.runs.is_empty());
    app.on_engine_gone();
    assert!(!app.exit);
}

#[test]
fn an_ended_run_a_non_finite_loss_and_a_stall_each_ring_once_and_show_in_the_header() {
    use std::time::{Duration, Instant};
    let mut app = App::new(Launcher::new(vec![], vec![]));
    started(&mut app);
    step(&mut app, 1, 0.5);
    assert_eq!((app.take_bells(), app.alerts.current.clone()), (0, None), "a normal step is quiet");
    // a NaN loss: one alert, however many NaN steps follow
    step(&mut app, 2, f64::NAN);
    step(&mut app, 3, f64::NAN);
    assert_eq!(app.take_bells(), 1);
    let a = app.alerts.current.clone().unwrap();
    assert!(a.severe && a.text.contains("non-finite loss (NaN) at step 2"), "{a:?}");
    assert!(app.log.iter().any(|l| l.starts_with("ALERT: non-finite")));
    // no step for a minute: stalled (once); the next step clears it
    let t0 = Instant::now();
    app.alerts.last_step_at = Some(t0);
    app.check_stall(t0 + Duration::from_secs(30));
    assert_eq!(app.take_bells(), 0, "30 s is not a stall");
    app.check_stall(t0 + STALL_AFTER + Duration::from_secs(1));
    app.check_stall(t0 + STALL_AFTER + Duration::from_secs(5));
    assert_eq!(app.take_bells(), 1);
    assert!(app.alerts.current.as_ref().unwrap().text.contains("a stalled: no step for 61 s (at step 3)"), "{:?}", app.alerts.current);
    step(&mut app, 4, 0.4);
    assert_eq!(app.alerts.current, None, "the run moves again");
    // a paused run is not stalled
    app.on_event(Event::Paused { step: 4 });
    app.alerts.last_step_at = Some(t0);
    app.check_stall(t0 + Duration::from_secs(3600));
    assert_eq!(app.take_bells(), 0);
    app.on_event(Event::Resumed { step: 4 });
    // the end
    app.on_event(Event::Finished { run_dir: "/r/a".into(), step: 100, stopped_early: false, final_loss: 0.1, wall_s: 5.0 });
    assert_eq!(app.take_bells(), 1);
    assert_eq!(app.alerts.current.as_ref().map(|a| (a.text.as_str(), a.severe)), Some(("a finished at step 100", false)));
    // a failure is severe
    started(&mut app);
    app.on_event(Event::Failed { run_dir: None, error: "step 7: the loss is NaN; no checkpoint\nmore".into() });
    assert_eq!(app.take_bells(), 1);
    let a = app.alerts.current.clone().unwrap();
    assert!(a.severe && a.text == "FAILED: step 7: the loss is NaN; no checkpoint", "{a:?}");
}

#[test]
fn the_header_shows_the_alert_and_the_log_wraps_long_lines() {
    let mut app = App::new(Launcher::new(vec![], vec![]));
    started(&mut app);
    app.push_log(format!("a long line {}END", "x".repeat(150)));
    app.on_event(Event::Failed { run_dir: None, error: "disk full".into() });
    let text = crate::tui::render_to_text(&app, 100, 30);
    assert!(text.lines().next().unwrap().contains("! FAILED: disk full"), "{text}");
    // the long line's tail shows on a continuation row of the log pane
    assert!(text.contains("xxEND"), "a wrapped line keeps its end: {text}");
}
