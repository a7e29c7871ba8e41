use super::*;
use crate::tui::app::{HistRow, RunState};

/// A sweep member with an FD curve `(kimg, fd)` and an MFD rho mean.
fn member(loss: &str, seed: u32, fd: &[(f64, f64)], rho: f64) -> RunData {
    let mut r = RunData::new(format!("{loss}-s{seed}"), None, RunState::Viewing);
    r.swept = vec![("train.loss".into(), loss.into()), ("seed".into(), seed.to_string())];
    r.progress.step = 100;
    for (i, &(kimg, v)) in fd.iter().enumerate() {
        r.evals.entry(DEFAULT_METRIC.to_string()).or_default().push(i as f64 * 10.0, kimg, 0.0, v);
        r.loss.push(i as f64 * 10.0, kimg, 0.0, 0.5);
    }
    r.hists.insert("tangent/mfd/rho".into(), HistRow { step: 100, edges: vec![0.0, 1.0], counts: vec![4], mean: Some(rho) });
    r
}

fn sweep() -> Vec<RunData> {
    vec![
        member("l2", 0, &[(0.0, 100.0), (1.0, 60.0), (2.0, 40.0)], 0.9),
        member("mfd", 0, &[(0.0, 100.0), (1.0, 30.0), (2.0, 20.0)], 0.5),
        member("l2", 1, &[(0.0, 100.0), (1.0, 70.0), (2.0, 44.0)], 0.8),
        member("mfd", 1, &[(0.0, 100.0), (1.0, 34.0), (2.0, 22.0)], 0.7),
    ]
}

fn col(t: &Table, name: &str) -> usize {
    t.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {:?}", t.columns))
}

#[test]
fn a_row_per_run_with_final_and_best_fd_and_kimg_to_the_median_target() {
    let runs = sweep();
    let t = build(&runs, &[0, 1, 2, 3], false);
    assert_eq!(t.metric.as_deref(), Some(DEFAULT_METRIC));
    assert_eq!(t.target, Some(0.5 * (22.0 + 40.0)), "median of the final FDs 20, 22, 40, 44");
    assert_eq!(t.columns[..3], ["run", "loss", "seed"]);
    assert_eq!(t.rows.len(), 4);
    let mfd0 = &t.rows[1];
    assert_eq!(mfd0.cells[col(&t, "final FD")], Cell::Num(Some(20.0), None));
    assert_eq!(mfd0.cells[col(&t, "best FD")], Cell::Num(Some(20.0), None));
    // 30 at kimg 1 is already <= 31: interpolated between (0, 100) and (1, 30)
    let Cell::Num(Some(k), None) = mfd0.cells[col(&t, "kimg to target")] else { panic!() };
    assert!((k - (100.0 - 31.0) / 70.0).abs() < 1e-12, "{k}");
    assert_eq!(t.rows[0].cells[col(&t, "kimg to target")], Cell::Num(None, None), "l2 seed 0 ends at 40 > 31");
    assert_eq!(mfd0.cells[col(&t, "rho mfd")], Cell::Num(Some(0.5), None));
}

#[test]
fn grouped_rows_pool_the_seeds_of_a_setting() {
    let runs = sweep();
    let t = build(&runs, &[0, 1, 2, 3], true);
    assert_eq!(t.columns[..2], ["loss", "seeds"], "the seed is what is pooled over; the fields name the rows");
    assert_eq!(t.rows.len(), 2);
    let mfd = t.rows.iter().find(|r| r.cells[0] == Cell::Text("mfd".into())).unwrap();
    assert_eq!(mfd.runs, vec![1, 3]);
    assert_eq!(mfd.cells[col(&t, "seeds")], Cell::Num(Some(2.0), None));
    let Cell::Num(Some(mean), Some(sd)) = mfd.cells[col(&t, "final FD")] else { panic!("{:?}", mfd.cells) };
    assert_eq!((mean, sd), (21.0, 2f64.sqrt()));
    assert_eq!(mfd.cells[col(&t, "final FD")].text(), "21 ±1.41");
    assert_eq!(mfd.cells[col(&t, "step")].text(), "100", "equal over seeds: no sd shown");
    // A lone run among sweep members is its own setting, named in a first column.
    let mut lone = RunData::new("baseline", None, RunState::Viewing);
    lone.progress.step = 5;
    let mut with_lone = runs.clone();
    with_lone.push(lone);
    let t = build(&with_lone, &[0, 1, 2, 3, 4], true);
    assert_eq!(t.columns[..3], ["setting", "loss", "seeds"]);
    assert_eq!(t.rows[2].cells[..2], [Cell::Text("baseline".into()), Cell::Text(String::new())]);
    // Only the shown runs count: the filter leaves one l2 member.
    let t = build(&runs, &[2, 3], true);
    assert_eq!(t.rows.len(), 2);
    assert_eq!(t.rows[0].cells[col(&t, "final FD")], Cell::Num(Some(44.0), None));
}

#[test]
fn sorting_by_any_column_puts_unmeasured_last_and_can_reverse() {
    let runs = sweep();
    let mut t = build(&runs, &[0, 1, 2, 3], false);
    let fd = col(&t, "final FD");
    sort(&mut t, fd, false);
    let names = |t: &Table| t.rows.iter().map(|r| r.cells[0].text()).collect::<Vec<_>>();
    assert_eq!(names(&t), ["mfd-s0", "mfd-s1", "l2-s0", "l2-s1"]);
    sort(&mut t, fd, true);
    assert_eq!(names(&t), ["l2-s1", "l2-s0", "mfd-s1", "mfd-s0"]);
    let k = col(&t, "kimg to target");
    sort(&mut t, k, false);
    assert_eq!(names(&t)[2..], ["l2-s1", "l2-s0"], "never reached: last, in their previous order");
    sort(&mut t, 0, false);
    assert_eq!(names(&t), ["l2-s0", "l2-s1", "mfd-s0", "mfd-s1"]);
    let seed = col(&t, "seed");
    sort(&mut t, seed, true);
    assert_eq!(names(&t), ["l2-s1", "mfd-s1", "l2-s0", "mfd-s0"], "ties keep their order");
    sort(&mut t, 99, false);
    assert_eq!(names(&t), ["mfd-s0", "mfd-s1", "l2-s1", "l2-s0"], "a column past the end sorts by the last (rho mfd)");
}

#[test]
fn numbers_written_as_text_sort_by_value() {
    assert_eq!(Cell::Text("16".into()).cmp(&Cell::Text("8".into())), Ordering::Greater);
    assert_eq!(Cell::Text("b".into()).cmp(&Cell::Text("a".into())), Ordering::Greater);
}
