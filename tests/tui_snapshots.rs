//! Every screen rendered with ratatui's TestBackend at 80x24 and 160x48 from fixed data,
//! compared with `tests/snapshots/*.txt`. A missing snapshot is a failure; `UPDATE_SNAPSHOTS=1`
//! writes missing ones and rewrites the rest (review the diff before committing).

use std::path::PathBuf;

use ayt::tui::app::{Confirm, Overlay, Panel};
use ayt::tui::fixtures;
use ayt::tui::{render_to_text, App};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn check(name: &str, app: &App) {
    for (w, h) in SIZES {
        let text = render_to_text(app, w, h);
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}-{w}x{h}.txt"));
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        assert!(path.exists(), "no snapshot {}: run with UPDATE_SNAPSHOTS=1 to write it, and review it\n{text}", path.display());
        let want = std::fs::read_to_string(&path).unwrap();
        if want != text {
            let first = want.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "{name} at {w}x{h} differs from {} (first at line {}):\n--- want\n{}\n--- got\n{}\n(UPDATE_SNAPSHOTS=1 to accept)",
                path.display(),
                first + 1,
                want,
                text
            );
        }
    }
}

#[test]
fn launcher() {
    check("launcher-presets", &App::new(fixtures::launcher()));
    check("launcher-runs", &fixtures::launcher_runs());
}

#[test]
fn dashboard() {
    check("dashboard", &fixtures::dashboard(2000));
}

#[test]
fn dashboard_empty_says_no_probes_yet() {
    let app = fixtures::empty_dashboard();
    check("dashboard-empty", &app);
    assert!(render_to_text(&app, 80, 24).contains("no probes yet"));
}

#[test]
fn dashboard_log_y_kimg_overlaid_histograms() {
    let mut app = fixtures::dashboard(2000);
    app.log_y = true;
    app.x_axis = ayt::tui::series::XAxis::Kimg;
    app.hist.overlay = true;
    check("dashboard-logy-kimg-overlay", &app);
}

#[test]
fn dashboard_histograms_over_training_as_heat_maps() {
    let app = fixtures::dashboard_heatmap();
    check("dashboard-heatmap", &app);
    let text = render_to_text(&app, 160, 48);
    assert!(text.contains("rho · t all · over training") && text.contains("MFD 41 probes"), "{text}");
}

#[test]
fn zoomed_panels() {
    for (panel, name) in
        [(Panel::Curves, "zoom-curves"), (Panel::Samples, "zoom-samples"), (Panel::Hist, "zoom-hist"), (Panel::Log, "zoom-log")]
    {
        let mut app = fixtures::dashboard(2000);
        app.focus = panel;
        app.zoom = true;
        check(name, &app);
    }
}

#[test]
fn help_and_confirm_overlays() {
    let mut app = fixtures::dashboard(2000);
    app.overlay = Overlay::Help;
    check("help", &app);
    let text = render_to_text(&app, 80, 24);
    assert!(text.contains("pause / resume"), "help fits 80x24:\n{text}");
    app.overlay = Overlay::Confirm(Confirm::Quit);
    check("confirm-quit", &app);
    app.overlay = Overlay::Confirm(Confirm::Stop);
    check("confirm-stop", &app);
}

#[test]
fn viewer_overlays_runs() {
    let app = fixtures::viewer(3000);
    check("view-3-runs", &app);
    let text = render_to_text(&app, 160, 48);
    for name in ["bs32", "bs64", "bs128"] {
        assert!(text.contains(name), "legend names {name}");
    }
}

#[test]
fn a_sweep_is_drawn_per_setting_with_bands_and_per_run_on_g() {
    let app = fixtures::sweep_view(600);
    check("sweep-per-setting", &app);
    let text = render_to_text(&app, 160, 48);
    assert!(text.contains("per setting: mean, min-max band") && text.contains("loss=mfd (2)"), "{text}");
    let mut app = app;
    app.grouped = false;
    app.smoothing = 0.0;
    for r in &mut app.runs {
        r.loss.set_smoothing(0.0);
    }
    check("sweep-per-run-raw", &app);
    assert!(render_to_text(&app, 160, 48).contains("6 runs · ema 0 "));
}

#[test]
fn the_summary_table_pools_seeds_sorts_and_filters() {
    let mut app = fixtures::sweep_view(600);
    app.screen = ayt::tui::app::Screen::Table;
    check("sweep-table", &app);
    let text = render_to_text(&app, 160, 48);
    assert!(text.contains("6 of 6 runs, per setting") && text.contains("kimg to FD <="), "{text}");
    // per run, by final FD, highest first, MFD and L2 only
    app.grouped = false;
    app.table.sort = app.summary_table().columns.iter().position(|c| c == "final FD").unwrap();
    app.table.descending = true;
    app.filter = "l2 mfd".into();
    assert!(render_to_text(&app, 160, 48).contains("0 of 6 runs"), "words must all match: no run is both");
    app.filter = "seed=1".into();
    check("sweep-table-runs-filtered", &app);
    let text = render_to_text(&app, 160, 48);
    let order: Vec<usize> = ["loss=l2-seed=1", "loss=lpips-seed=1", "loss=mfd-seed=1"].iter().map(|n| text.find(n).unwrap()).collect();
    assert!(order[0] < order[1] && order[1] < order[2], "highest final FD first:\n{text}");
    assert!(text.contains("3 of 6 runs") && text.contains("sorted by final FD v"), "{text}");
}
