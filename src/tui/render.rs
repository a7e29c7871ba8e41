//! Pure render functions: `&App` in, a frame out. One function per screen and per panel.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Block, BorderType, Borders, Chart, Clear, Dataset, Gauge, GraphType, LegendPosition, List, ListItem, ListState, Paragraph,
    Sparkline, Wrap,
};
use ratatui::Frame;

use super::app::{hist_key, App, Confirm, Grid, HistRow, LauncherTab, Overlay, Panel, RunData, RunState, Screen, DEFAULT_HIST_METRIC};
use super::keys::HELP;
use super::series::{bounds, decimate, fmt_duration, fmt_num};
use super::widgets::HalfBlockGrid;

const ACCENT: Color = Color::Cyan;
const DIM: Color = Color::DarkGray;
/// Colours of overlaid runs.
const RUN_COLORS: [Color; 6] = [Color::Cyan, Color::Magenta, Color::Yellow, Color::Green, Color::Blue, Color::LightRed];

/// A named, coloured line of points.
type Line2 = (String, Color, Vec<(f64, f64)>);

fn metric_color(metric: &str, i: usize) -> Color {
    match metric {
        "mfd" => Color::Cyan,
        "lpips" => Color::Magenta,
        "l2" => Color::Yellow,
        _ => RUN_COLORS[(i + 3) % RUN_COLORS.len()],
    }
}

fn state_style(s: RunState) -> Style {
    let bg = match s {
        RunState::Running => Color::Green,
        RunState::Paused => Color::Yellow,
        RunState::Evaluating | RunState::Checkpointing | RunState::Starting => Color::Blue,
        RunState::Stopping => Color::Magenta,
        RunState::Finished => Color::Cyan,
        RunState::Stopped => Color::Gray,
        RunState::Failed => Color::Red,
        RunState::Viewing => Color::Gray,
    };
    Style::new().fg(Color::Black).bg(bg).add_modifier(Modifier::BOLD)
}

/// Draws the whole UI.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    match app.screen {
        Screen::Launcher => draw_launcher(frame, app, area),
        Screen::Dashboard => draw_dashboard(frame, app, area),
    }
    match app.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(frame, area),
        Overlay::Confirm(c) => draw_confirm(frame, c, area),
    }
}

fn panel_block(title: Line<'_>, focused: bool) -> Block<'_> {
    let style = if focused { Style::new().fg(ACCENT) } else { Style::new().fg(DIM) };
    Block::new()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Rounded })
        .border_style(style)
        .title(title)
}

fn title_line<'a>(name: &'a str, extra: String, focused: bool) -> Line<'a> {
    let name_style = if focused { Style::new().fg(ACCENT).bold() } else { Style::new().bold() };
    let mut spans = vec![Span::styled(format!(" {name} "), name_style)];
    if !extra.is_empty() {
        spans.push(Span::styled(format!("{extra} "), Style::new().fg(DIM)));
    }
    Line::from(spans)
}

/// Key hints that fit `width`, in order.
fn hints(pairs: &[(&str, &str)], width: u16) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (k, what) in pairs {
        let n = k.chars().count() + what.chars().count() + 3;
        if used + n > width as usize {
            break;
        }
        used += n;
        spans.push(Span::styled(format!(" {k}"), Style::new().fg(ACCENT).bold()));
        spans.push(Span::styled(format!(" {what} "), Style::new().fg(DIM)));
    }
    Line::from(spans)
}

// ----------------------------------------------------------------------------------- dashboard

fn draw_dashboard(frame: &mut Frame, app: &App, area: Rect) {
    let [header, gauge, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    draw_header(frame, app, header);
    draw_gauge(frame, app, gauge);
    let footer_keys: &[(&str, &str)] = if app.read_only {
        &[
            ("?", "help"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("l", "log-y"),
            ("x", "step/kimg"),
            ("n", "next run"),
            ("r", "reload"),
            ("q", "quit"),
        ]
    } else {
        &[
            ("?", "help"),
            ("space", "pause"),
            ("c", "ckpt"),
            ("s", "sample"),
            ("p", "probe"),
            ("S", "stop"),
            ("tab", "panel"),
            ("z", "zoom"),
            ("L", "launcher"),
            ("q", "quit"),
        ]
    };
    frame.render_widget(Paragraph::new(hints(footer_keys, footer.width)), footer);
    if app.zoom {
        draw_panel(frame, app, app.focus, body);
        return;
    }
    let [top, bottom] = Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body);
    let [curves, samples] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    let [hist, log] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    draw_panel(frame, app, Panel::Curves, curves);
    draw_panel(frame, app, Panel::Samples, samples);
    draw_panel(frame, app, Panel::Hist, hist);
    draw_panel(frame, app, Panel::Log, log);
}

fn draw_panel(frame: &mut Frame, app: &App, panel: Panel, area: Rect) {
    let focused = app.focus == panel;
    match panel {
        Panel::Curves => draw_curves(frame, app, area, focused),
        Panel::Samples => draw_samples(frame, app, area, focused),
        Panel::Hist => draw_hist(frame, app, area, focused),
        Panel::Log => draw_log(frame, app, area, focused),
    }
}

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(" ayt ", Style::new().fg(Color::Black).bg(ACCENT).bold()), Span::raw(" ")];
    match app.shown_run() {
        None => spans.push(Span::styled("no run yet · L: launcher, ?: help", Style::new().fg(DIM))),
        Some(run) => {
            spans.push(Span::styled(run.name.clone(), Style::new().bold()));
            spans.push(Span::raw(" "));
            spans.push(Span::styled(format!(" {} ", run.state.label()), state_style(run.state)));
            let p = &run.progress;
            let mut facts = vec![format!("step {}/{}", p.step, p.total)];
            if p.img_per_s > 0.0 {
                facts.push(format!("{:.1} img/s", p.img_per_s));
            }
            if run.state.is_active() {
                facts.push(format!("ETA {}", p.eta_s().map(fmt_duration).unwrap_or_else(|| "--".into())));
            }
            facts.push(format!("{:.2} kimg", p.kimg));
            if let Some(l) = run.loss.last() {
                facts.push(format!("loss {}", fmt_num(l)));
            }
            if app.runs.len() > 1 {
                facts.push(format!("run {}/{}", app.selected + 1, app.runs.len()));
            }
            if !app.queue.is_empty() {
                facts.push(format!("queue {}", app.queue.len()));
            }
            spans.push(Span::raw(format!(" {}", facts.join(" · "))));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_gauge(frame: &mut Frame, app: &App, area: Rect) {
    let Some(run) = app.shown_run() else { return };
    let p = &run.progress;
    let label = format!("{:.1}%  {}", p.ratio() * 100.0, fmt_duration(p.wall_s));
    frame.render_widget(
        Gauge::default().ratio(p.ratio()).label(label).use_unicode(true).gauge_style(Style::new().fg(ACCENT).bg(Color::Black)),
        area,
    );
}

fn centered_note(frame: &mut Frame, area: Rect, text: &str) {
    if area.height == 0 {
        return;
    }
    let y = area.y + area.height.saturating_sub(1) / 2;
    let line = Rect::new(area.x, y, area.width, 1);
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center).fg(DIM), line);
}

fn axis_labels(b: [f64; 2], log: bool) -> Vec<Line<'static>> {
    let f = |v: f64| fmt_num(if log { 10f64.powf(v) } else { v });
    let mut mid = (b[0] + b[1]) / 2.0;
    if mid.abs() < 1e-9 * (b[0].abs() + b[1].abs()) {
        mid = 0.0; // not 5.6e-17
    }
    vec![Line::from(f(b[0])), Line::from(f(mid)), Line::from(f(b[1]))]
}

fn draw_curves(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let what = if app.runs.len() > 1 { format!("{} runs, smoothed", app.runs.len()) } else { "raw + smoothed".to_string() };
    let extra = format!("{what} · {} · x {}", if app.log_y { "log-y" } else { "linear" }, app.x_axis.label());
    let block = panel_block(title_line(Panel::Curves.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let has_eval = app.runs.iter().any(|r| !r.evals.is_empty());
    let (loss_area, eval_area) = if has_eval && inner.height >= 10 {
        let [a, b] = Layout::vertical([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    if app.runs.iter().all(|r| r.loss.is_empty()) {
        centered_note(frame, loss_area, if app.runs.is_empty() { "no run yet" } else { "waiting for the first steps ..." });
    } else {
        let buckets = loss_area.width.max(8) as usize;
        let single = app.runs.len() == 1;
        let mut points: Vec<(Line2, bool)> = Vec::new();
        for (i, run) in app.runs.iter().enumerate() {
            let xs = run.loss.xs(app.x_axis);
            let color = RUN_COLORS[i % RUN_COLORS.len()];
            if single {
                points.push((("raw".into(), DIM, decimate(xs, &run.loss.raw, buckets, app.log_y)), true));
            }
            let name = if single { "smoothed".to_string() } else { run.name.clone() };
            points.push(((name, color, decimate(xs, &run.loss.smooth, buckets, app.log_y)), false));
        }
        let refs: Vec<&[(f64, f64)]> = points.iter().map(|p| p.0 .2.as_slice()).collect();
        if let Some((xb, yb)) = bounds(&refs) {
            let datasets = points
                .iter()
                .map(|((name, color, pts), raw)| {
                    Dataset::default()
                        .name(name.clone())
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(if *raw { Style::new().fg(*color) } else { Style::new().fg(*color).bold() })
                        .data(pts)
                })
                .collect();
            let chart = Chart::new(datasets)
                .x_axis(Axis::default().bounds(xb).labels(axis_labels(xb, false)).style(Style::new().fg(DIM)))
                .y_axis(Axis::default().bounds(yb).labels(axis_labels(yb, app.log_y)).style(Style::new().fg(DIM)))
                // A legend would cover the curve in a small panel; the title says what is drawn.
                .legend_position((loss_area.width >= 70 || app.runs.len() > 1).then_some(LegendPosition::TopRight))
                .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)));
            frame.render_widget(chart, loss_area);
        }
    }
    if let Some(area) = eval_area {
        draw_evals(frame, app, area);
    }
}

/// Evaluation metrics (FD, ...) on their own axis, under the loss.
fn draw_evals(frame: &mut Frame, app: &App, area: Rect) {
    let mut points: Vec<Line2> = Vec::new();
    for (i, run) in app.runs.iter().enumerate() {
        for (j, (name, h)) in run.evals.iter().enumerate() {
            let label = if app.runs.len() > 1 { format!("{} {name}", run.name) } else { name.clone() };
            let color = RUN_COLORS[(i + j + 2) % RUN_COLORS.len()];
            points.push((label, color, decimate(h.xs(app.x_axis), &h.raw, area.width.max(8) as usize, app.log_y)));
        }
    }
    let refs: Vec<&[(f64, f64)]> = points.iter().map(|p| p.2.as_slice()).collect();
    let Some((xb, yb)) = bounds(&refs) else { return };
    let datasets = points
        .iter()
        .map(|(name, color, pts)| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(Block::new().borders(Borders::TOP).border_style(Style::new().fg(DIM)).title(Span::styled(" eval ", Style::new().fg(DIM))))
        .x_axis(Axis::default().bounds(xb).style(Style::new().fg(DIM)))
        .y_axis(Axis::default().bounds(yb).labels(axis_labels(yb, app.log_y)).style(Style::new().fg(DIM)))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, area);
}

fn draw_samples(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let run = app.shown_run();
    let step = run.and_then(|r| r.samples_ema.as_ref()).map(|g| format!("step {}", g.step)).unwrap_or_default();
    let block = panel_block(title_line(Panel::Samples.title(), step, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(run) = run else {
        centered_note(frame, inner, "no samples yet");
        return;
    };
    if run.samples_ema.is_none() && run.samples_raw.is_none() {
        centered_note(frame, inner, "no samples yet · s: sample now");
        return;
    }
    // Raw-weight samples are drawn from checkpoints of a live run; a run on disk has EMA only.
    let with_raw = run.samples_raw.is_some() || run.state.is_active();
    let columns: Vec<(&str, &Option<Grid>)> =
        if with_raw { vec![("EMA", &run.samples_ema), ("raw", &run.samples_raw)] } else { vec![("EMA", &run.samples_ema)] };
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, columns.len() as u32); columns.len()]).spacing(1).split(inner);
    for ((label, grid), a) in columns.into_iter().zip(areas.iter().copied()) {
        if a.height < 2 {
            continue;
        }
        let [head, img] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(a);
        let caption = match grid {
            Some(g) => format!("{label} · step {}", g.step),
            None if label == "raw" => "raw: next ckpt".to_string(),
            None => label.to_string(),
        };
        frame.render_widget(Paragraph::new(caption).alignment(Alignment::Center).fg(DIM), head);
        if let Some(g) = grid {
            frame.render_widget(HalfBlockGrid { grid: &g.grid, truecolor: app.truecolor }, img);
        }
    }
}

/// Histogram rows to show: (metric, row) for the selected metric(s) and t range.
fn hist_rows<'a>(app: &App, run: &'a RunData) -> Vec<(String, &'a HistRow)> {
    let range = app.hist.t_range.as_deref().unwrap_or("all");
    let metric = app.hist.metric.as_deref().unwrap_or(DEFAULT_HIST_METRIC);
    let mut rows: Vec<(String, &HistRow)> = run
        .hists
        .iter()
        .filter_map(|(name, row)| {
            let (loss, m, r) = hist_key(name);
            (r == range && m == metric).then_some((loss, row))
        })
        .collect();
    // MFD, LPIPS, L2 first, in that order.
    let rank = |m: &str| ["mfd", "lpips", "l2"].iter().position(|x| *x == m).unwrap_or(3);
    rows.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then(a.0.cmp(&b.0)));
    rows
}

fn draw_hist(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let extra = format!(
        "{} · t {} · {}",
        app.hist.metric.as_deref().unwrap_or(DEFAULT_HIST_METRIC),
        app.hist.t_range.as_deref().unwrap_or("all"),
        if app.hist.overlay { "overlaid" } else { "side by side" }
    );
    let block = panel_block(title_line(Panel::Hist.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = app.shown_run().map(|r| hist_rows(app, r)).unwrap_or_default();
    if rows.is_empty() {
        let any = app.shown_run().is_some_and(|r| !r.hists.is_empty());
        centered_note(frame, inner, if any { "no probe for this metric / t range · m, t to change" } else { "no probes yet" });
        return;
    }
    if app.hist.overlay {
        let series: Vec<Line2> =
            rows.iter().enumerate().map(|(i, (m, row))| (m.to_uppercase(), metric_color(m, i), density(row))).collect();
        let refs: Vec<&[(f64, f64)]> = series.iter().map(|s| s.2.as_slice()).collect();
        let Some((xb, yb)) = bounds(&refs) else { return };
        let yb = [0.0, yb[1]];
        let datasets = series
            .iter()
            .map(|(n, c, pts)| Dataset::default().name(n.clone()).marker(Marker::Braille).graph_type(GraphType::Line).fg(*c).data(pts))
            .collect();
        let chart = Chart::new(datasets)
            .x_axis(Axis::default().bounds(xb).labels(axis_labels(xb, false)).style(Style::new().fg(DIM)))
            .y_axis(Axis::default().bounds(yb).labels(vec![Line::from("0"), Line::from(fmt_num(yb[1]))]).style(Style::new().fg(DIM)))
            .legend_position(Some(LegendPosition::TopLeft))
            .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
        frame.render_widget(chart, inner);
        return;
    }
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, rows.len() as u32); rows.len()]).spacing(1).split(inner);
    for (i, ((metric, row), a)) in rows.iter().zip(cols.iter()).enumerate() {
        if a.height < 3 || a.width < 4 {
            continue;
        }
        let [head, bars, foot] = Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(*a);
        let total: u64 = row.counts.iter().sum();
        let mean = hist_mean(row);
        let color = metric_color(metric, i);
        let head_text = Line::from(vec![
            Span::styled(metric.to_uppercase(), Style::new().fg(color).bold()),
            Span::styled(format!(" mean {} n {total}", fmt_num(mean)), Style::new().fg(DIM)),
        ]);
        frame.render_widget(Paragraph::new(head_text), head);
        let data = resample_counts(&row.counts, bars.width as usize);
        frame.render_widget(Sparkline::default().data(&data).style(Style::new().fg(color)), bars);
        let (lo, hi) = (row.edges.first().copied().unwrap_or(0.0), row.edges.last().copied().unwrap_or(0.0));
        let lo_s = fmt_num(lo);
        let hi_s = fmt_num(hi);
        let pad = (foot.width as usize).saturating_sub(lo_s.len() + hi_s.len());
        frame.render_widget(Paragraph::new(format!("{lo_s}{}{hi_s}", " ".repeat(pad))).fg(DIM), foot);
    }
}

/// Bin counts stretched or squeezed to `width` columns (each column takes its bin's count).
pub fn resample_counts(counts: &[u64], width: usize) -> Vec<u64> {
    if counts.is_empty() || width == 0 {
        return Vec::new();
    }
    (0..width).map(|c| counts[(c * counts.len() / width).min(counts.len() - 1)]).collect()
}

fn hist_mean(row: &HistRow) -> f64 {
    let total: u64 = row.counts.iter().sum();
    if total == 0 || row.edges.len() != row.counts.len() + 1 {
        return f64::NAN;
    }
    row.counts.iter().enumerate().map(|(i, &c)| c as f64 * 0.5 * (row.edges[i] + row.edges[i + 1])).sum::<f64>() / total as f64
}

/// Probability density at bin centres (comparable across metrics with different counts).
fn density(row: &HistRow) -> Vec<(f64, f64)> {
    let total: u64 = row.counts.iter().sum();
    if total == 0 || row.edges.len() != row.counts.len() + 1 {
        return Vec::new();
    }
    row.counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let w = (row.edges[i + 1] - row.edges[i]).max(1e-12);
            (0.5 * (row.edges[i] + row.edges[i + 1]), c as f64 / total as f64 / w)
        })
        .collect()
}

fn log_style(line: &str) -> Style {
    let l = line.to_ascii_lowercase();
    if l.contains("failed") || l.contains("error") || l.contains("panicked") {
        Style::new().fg(Color::Red)
    } else if l.starts_with("paused") || l.contains("stopping") || l.contains("not available") {
        Style::new().fg(Color::Yellow)
    } else if l.starts_with("checkpoint") || l.starts_with("samples") {
        Style::new().fg(DIM)
    } else {
        Style::new()
    }
}

fn draw_log(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let extra = if app.log_scroll > 0 { format!("↑{}", app.log_scroll) } else { String::new() };
    let block = panel_block(title_line(Panel::Log.title(), extra, focused), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    if !app.queue.is_empty() {
        lines.push(Line::styled("queue", Style::new().fg(ACCENT).bold()));
        for (i, q) in app.queue.iter().enumerate() {
            lines.push(Line::from(format!(" {}. {q}", i + 1)));
        }
    }
    let room = (inner.height as usize).saturating_sub(lines.len());
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(room);
    lines.extend(app.log.range(start..end).map(|l| Line::styled(l.clone(), log_style(l))));
    frame.render_widget(Paragraph::new(lines), inner);
}

// ------------------------------------------------------------------------------------ launcher

fn draw_launcher(frame: &mut Frame, app: &App, area: Rect) {
    let l = &app.launcher;
    let [header, body, footer] = Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let mut head =
        vec![Span::styled(" ayt ", Style::new().fg(Color::Black).bg(ACCENT).bold()), Span::styled(" launcher ", Style::new().bold())];
    if let Some(run) = app.live_run() {
        head.push(Span::styled(format!(" {} ", run.state.label()), state_style(run.state)));
        head.push(Span::raw(format!(" {} step {}/{}", run.name, run.progress.step, run.progress.total)));
    }
    if !app.queue.is_empty() {
        head.push(Span::raw(format!(" · queue {}", app.queue.len())));
    }
    frame.render_widget(Paragraph::new(Line::from(head)), header);
    let [list_area, preview_area] = Layout::horizontal([Constraint::Percentage(36), Constraint::Percentage(64)]).areas(body);
    let tab = |name: &'static str, on: bool| {
        if on {
            Span::styled(format!(" {name} "), Style::new().fg(Color::Black).bg(ACCENT).bold())
        } else {
            Span::styled(format!(" {name} "), Style::new().fg(DIM))
        }
    };
    let title = Line::from(vec![tab("Presets", l.tab == LauncherTab::Presets), Span::raw(" "), tab("Runs", l.tab == LauncherTab::Runs)]);
    let block = panel_block(title, true);
    let (items, selected, preview_title, preview): (Vec<ListItem>, usize, String, String) = match l.tab {
        LauncherTab::Presets => (
            l.presets
                .iter()
                .map(|p| {
                    let style = if p.preset.is_ok() { Style::new() } else { Style::new().fg(Color::Red) };
                    ListItem::new(Line::styled(p.name.clone(), style))
                })
                .collect(),
            l.selected_preset,
            l.current_preset().map(|p| p.path.display().to_string()).unwrap_or_default(),
            l.current_preset().map(|p| p.preview()).unwrap_or_else(|| "no presets found in presets/ or the config dir".into()),
        ),
        LauncherTab::Runs => (
            l.runs.iter().map(|r| ListItem::new(r.name.clone())).collect(),
            l.selected_run,
            l.current_run().map(|r| r.dir.display().to_string()).unwrap_or_default(),
            l.current_run().map(|r| r.summary.clone()).unwrap_or_else(|| "no runs yet".into()),
        ),
    };
    let list = List::new(items).block(block).highlight_style(Style::new().fg(Color::Black).bg(ACCENT).bold()).highlight_symbol("▶ ");
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, list_area, &mut state);
    let pblock = panel_block(Line::from(Span::styled(format!(" {preview_title} "), Style::new().bold())), false);
    frame.render_widget(
        Paragraph::new(Text::from(preview)).block(pblock).wrap(Wrap { trim: false }).scroll((l.preview_scroll, 0)),
        preview_area,
    );
    let keys: &[(&str, &str)] = match l.tab {
        LauncherTab::Presets => {
            &[("enter", "start"), ("a", "queue"), ("↑↓", "select"), ("tab", "runs"), ("pgdn", "scroll"), ("d", "dashboard"), ("q", "quit")]
        }
        LauncherTab::Runs => &[("enter", "open"), ("r", "resume"), ("↑↓", "select"), ("tab", "presets"), ("d", "dashboard"), ("q", "quit")],
    };
    frame.render_widget(Paragraph::new(hints(keys, footer.width)), footer);
}

// ------------------------------------------------------------------------------------ overlays

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let with_heads = HELP.len() as u16 + 2 <= area.height;
    let entries: Vec<&(&str, &str)> = HELP.iter().filter(|(k, _)| with_heads || !k.is_empty()).collect();
    let key_w = entries.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 2;
    let desc_w = entries.iter().map(|(_, d)| d.chars().count()).max().unwrap_or(0);
    let rows_avail = area.height.saturating_sub(2) as usize;
    let columns = if entries.len() <= rows_avail { 1 } else { 2 };
    let per_col = entries.len().div_ceil(columns);
    let col_w = key_w + desc_w + 2;
    let w = (col_w * columns + 2) as u16;
    let h = (per_col + 2) as u16;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(Style::new().fg(ACCENT))
        .title(Span::styled(" Help · any key closes ", Style::new().fg(ACCENT).bold()));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, columns as u32); columns]).split(inner);
    for (c, chunk) in entries.chunks(per_col).enumerate() {
        let lines: Vec<Line> = chunk
            .iter()
            .map(|(k, d)| {
                if k.is_empty() {
                    Line::styled(d.to_string(), Style::new().bold().underlined())
                } else {
                    Line::from(vec![
                        Span::styled(format!(" {k:<w$}", w = key_w - 1), Style::new().fg(ACCENT).bold()),
                        Span::raw(d.to_string()),
                    ])
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), cols[c]);
    }
}

fn draw_confirm(frame: &mut Frame, what: Confirm, area: Rect) {
    let (title, text) = match what {
        Confirm::Quit => (" Quit? ", "A run is active. Stop it (with a checkpoint) and quit?"),
        Confirm::Stop => (" Stop the run? ", "Stop the run now (with a checkpoint)? The queue goes on."),
    };
    let r = centered(area, 48.min(area.width), 6);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(Style::new().fg(Color::Yellow))
        .title(Span::styled(title, Style::new().fg(Color::Yellow).bold()));
    let body = Text::from(vec![
        Line::from(text),
        Line::from(""),
        Line::from(vec![
            Span::styled(" y ", Style::new().fg(Color::Black).bg(Color::Yellow).bold()),
            Span::raw(" yes    "),
            Span::styled(" n / esc ", Style::new().fg(Color::Black).bg(Color::Gray).bold()),
            Span::raw(" no"),
        ]),
    ]);
    frame.render_widget(Paragraph::new(body).block(block).wrap(Wrap { trim: true }).alignment(Alignment::Center), r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_resample_to_columns() {
        assert_eq!(resample_counts(&[1, 2], 4), vec![1, 1, 2, 2]);
        assert_eq!(resample_counts(&[1, 2, 3, 4], 2), vec![1, 3]);
        assert!(resample_counts(&[], 3).is_empty());
    }

    #[test]
    fn density_integrates_to_one() {
        let row = HistRow { step: 0, edges: vec![0.0, 0.5, 1.0, 2.0], counts: vec![1, 1, 2] };
        let d = density(&row);
        let integral: f64 = d.iter().zip(row.edges.windows(2)).map(|((_, p), e)| p * (e[1] - e[0])).sum();
        assert!((integral - 1.0).abs() < 1e-12);
        assert!((hist_mean(&row) - (0.25 + 0.75 + 3.0) / 4.0).abs() < 1e-12);
    }
}
