//! The event loop, the only part of the UI that touches the terminal: terminal setup and
//! restore (on quit, error and panic), stray output capture, and a select over input, engine
//! events and a tick. Reading runs from disk is `runs`'s job.
//!
//! While the UI runs, file descriptors 1 and 2 point into a pipe: whatever a library prints
//! (or a panicking engine thread reports) becomes a line in the log pane and in
//! `<home>/tui.log`, never a smear across the screen. The UI itself draws on a duplicate of
//! the original stdout.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{never, select, unbounded, Receiver, Sender};
use crossterm::event::Event as TermEvent;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::Terminal;

use super::app::{App, Grid, Launcher};
use super::graphics::{self, Graphics, Images};
use super::keys::{handle_key, Effect};
use super::render;
use super::runs::{discover_presets, discover_runs, load_run, mtime};
use crate::engine::{self, Command, Event, RunRequest};
use crate::paths::Paths;
use crate::store::SampleGrid;
use crate::sweep::SweepDir;
use crate::{Error, Result};

/// Shortest time between two frames (about 30 frames/s).
pub const FRAME: Duration = Duration::from_millis(33);
/// Wake-up interval when nothing happens (re-reading viewed runs, clock).
const TICK: Duration = Duration::from_millis(250);
/// How often runs read from disk are checked for new rows.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// What `ayt` (or `ayt tui`) was asked for.
pub struct LiveOptions {
    pub paths: Paths,
    pub device: candle_core::Device,
    /// Preset files named on the command line (listed first).
    pub presets: Vec<PathBuf>,
    /// Overrides for the named presets (`--set key=value`).
    pub set: Vec<String>,
    /// Start the first named preset at once.
    pub start: bool,
    /// Runs to queue at start, in order (e.g. a sweep's members: `ayt tui --sweep`).
    pub queue: Vec<RunRequest>,
    /// How sample tiles are drawn (`--graphics`).
    pub graphics: Graphics,
}

// ------------------------------------------------------------------------ terminal and output

/// File descriptors saved while the UI owns the terminal: (stdout, stderr).
static SAVED: Mutex<Option<(RawFd, RawFd)>> = Mutex::new(None);
static UI_THREAD: OnceLock<std::thread::ThreadId> = OnceLock::new();

fn os_err(what: &str) -> Error {
    Error::msg(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Puts the terminal back: leaves the alternate screen, shows the cursor, ends raw mode, and
/// points stdout and stderr at the terminal again. Idempotent; safe from a panic hook.
pub fn restore_terminal() {
    let saved = SAVED.lock().map(|mut s| s.take()).unwrap_or(None);
    if let Some((out, err)) = saved {
        // SAFETY: plain fd calls on descriptors this module duplicated.
        unsafe {
            libc::dup2(out, 1);
            libc::dup2(err, 2);
            libc::close(out);
            libc::close(err);
        }
        let mut stdout = std::io::stdout();
        let _ = crossterm::execute!(stdout, LeaveAlternateScreen, crossterm::cursor::Show);
        let _ = stdout.flush();
        let _ = disable_raw_mode();
    }
}

/// Restores the terminal when dropped (quit, `?` errors); the panic hook covers panics.
struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

type Tui = Terminal<CrosstermBackend<File>>;

/// Takes over the terminal; returns it and the stream of captured output lines.
fn setup(mode: Graphics) -> Result<(Tui, Guard, Receiver<String>, Images)> {
    let _ = UI_THREAD.set(std::thread::current().id());
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if UI_THREAD.get() == Some(&std::thread::current().id()) {
                restore_terminal();
            }
            prev(info);
        }));
    });
    enable_raw_mode().map_err(|e| Error::msg(format!("cannot enter raw mode (is this a terminal?): {e}")))?;
    // Before stdout is taken over: the graphics query goes to the terminal itself.
    let images = Images::new(graphics::picker(mode));
    // SAFETY: dup/pipe/dup2 on the process's own standard descriptors.
    let (out, err, read_end) = unsafe {
        let out = libc::dup(1);
        let err = libc::dup(2);
        if out < 0 || err < 0 {
            let _ = disable_raw_mode();
            return Err(os_err("dup"));
        }
        let mut fds = [0; 2];
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            let _ = disable_raw_mode();
            return Err(os_err("pipe"));
        }
        (out, err, fds)
    };
    // SAFETY: `dup(out)` is a fresh descriptor owned by the File.
    let tty = unsafe { File::from_raw_fd(libc::dup(out)) };
    *SAVED.lock().map_err(|_| Error::msg("terminal state lock poisoned"))? = Some((out, err));
    let guard = Guard;
    unsafe {
        libc::dup2(read_end[1], 1);
        libc::dup2(read_end[1], 2);
        libc::close(read_end[1]);
    }
    let (tx, rx) = unbounded();
    // SAFETY: the read end is owned by this File alone.
    let reader = unsafe { File::from_raw_fd(read_end[0]) };
    std::thread::Builder::new()
        .name("ayt-tui-capture".into())
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Error::msg(format!("spawning the output capture thread: {e}")))?;
    let mut backend = CrosstermBackend::new(tty);
    crossterm::execute!(backend, EnterAlternateScreen, crossterm::cursor::Hide).map_err(|e| Error::msg(e.to_string()))?;
    let terminal = Terminal::new(backend).map_err(|e| Error::msg(e.to_string()))?;
    Ok((terminal, guard, rx, images))
}

/// Key presses and resizes from a thread that polls, so it can be told to stop.
fn input_thread(stop: Arc<AtomicBool>) -> Receiver<TermEvent> {
    let (tx, rx) = crossbeam_channel::bounded(256);
    std::thread::Builder::new()
        .name("ayt-tui-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(true) => match crossterm::event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        })
        .ok();
    rx
}

// -------------------------------------------------------------------------------- event loop

/// Raw-weight samples drawn from a checkpoint in the background.
type RawSamples = (PathBuf, u64, std::result::Result<SampleGrid, String>);

struct Loop {
    app: App,
    /// Where the UI was started (`--home`, `$AYT_HOME` or the default): reloads list its runs.
    paths: Paths,
    commands: Option<Sender<Command>>,
    raw_tx: Sender<RawSamples>,
    raw_busy: bool,
    log_file: Option<File>,
    log_written: u64,
    viewed: HashMap<PathBuf, Option<SystemTime>>,
    last_reload: Instant,
    /// Where raw-weight samples are drawn: the engine's device.
    device: candle_core::Device,
    /// Sample grids as terminal images (`None`: half-blocks only).
    images: Option<Images>,
    /// Sweeps being viewed: members that start later join the view.
    sweeps: Vec<SweepDir>,
}

impl Loop {
    /// A loop over `app` (`commands`: the engine's, `None` when viewing); also returns the
    /// receiving end for raw-weight samples, for [`run_loop`].
    fn new(
        app: App,
        paths: Paths,
        commands: Option<Sender<Command>>,
        log_file: Option<File>,
        viewed: HashMap<PathBuf, Option<SystemTime>>,
    ) -> (Loop, Receiver<RawSamples>) {
        let (raw_tx, raw_rx) = unbounded();
        let device = candle_core::Device::Cpu;
        let lp = Loop {
            app,
            paths,
            commands,
            raw_tx,
            raw_busy: false,
            log_file,
            log_written: 0,
            viewed,
            last_reload: Instant::now(),
            device,
            images: None,
            sweeps: Vec::new(),
        };
        (lp, raw_rx)
    }

    fn effects(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Send(c) => {
                    if let Some(tx) = &self.commands {
                        if tx.send(c).is_err() {
                            self.app.push_log("the engine is gone; command not sent");
                        }
                    }
                }
                Effect::OpenRun(dir) => self.open_run(&dir),
                Effect::Reload => {
                    let dirs: Vec<PathBuf> = self.viewed.keys().cloned().collect();
                    for d in dirs {
                        self.open_run(&d);
                    }
                    self.app.launcher.runs = discover_runs(&self.paths);
                }
                Effect::Exit => self.app.exit = true,
            }
        }
    }

    fn open_run(&mut self, dir: &Path) {
        match load_run(dir) {
            Ok(run) => {
                self.viewed.insert(dir.to_path_buf(), mtime(dir));
                self.app.add_view_run(run);
            }
            Err(e) => self.app.push_log(format!("cannot open {}: {e}", dir.display())),
        }
    }

    /// Re-reads viewed runs whose log changed.
    fn reload_changed(&mut self) {
        if self.last_reload.elapsed() < RELOAD_EVERY {
            return;
        }
        self.last_reload = Instant::now();
        let changed: Vec<PathBuf> = self.viewed.iter().filter(|(d, t)| mtime(d) != **t).map(|(d, _)| d.clone()).collect();
        for d in changed {
            let selected = self.app.selected;
            self.open_run(&d);
            self.app.selected = selected;
        }
        self.follow_sweeps();
    }

    /// Adds the members of viewed sweeps that have started since the last look.
    fn follow_sweeps(&mut self) {
        let started: Vec<super::runs::Member> = self
            .sweeps
            .iter()
            .flat_map(|s| super::runs::sweep_members(s).unwrap_or_default())
            .filter(|(d, _)| !self.viewed.contains_key(d))
            .collect();
        for (dir, swept) in started {
            match load_run(&dir) {
                Ok(mut run) => {
                    run.swept = swept;
                    self.app.push_log(format!("{} started: added to the view", run.name));
                    self.viewed.insert(dir.clone(), mtime(&dir));
                    self.app.add_view_run(run);
                }
                Err(e) => self.app.push_log(format!("cannot open {}: {e}", dir.display())),
            }
        }
    }

    fn engine_event(&mut self, event: Event) {
        if let Event::Checkpointed { step, .. } = &event {
            self.raw_samples(*step);
        }
        self.app.on_event(event);
    }

    /// Draws raw-weight samples from the checkpoint just written, off the UI thread.
    fn raw_samples(&mut self, step: u64) {
        let Some(run) = self.app.live_run() else { return };
        let (Some(dir), false) = (run.dir.clone(), self.raw_busy) else { return };
        let n = run.samples_ema.as_ref().map(|g| g.grid.n).unwrap_or(16).min(64);
        self.raw_busy = true;
        let (tx, device) = (self.raw_tx.clone(), self.device.clone());
        let _ = std::thread::Builder::new().name("ayt-tui-raw".into()).spawn(move || {
            let run = crate::paths::RunDir::new(&dir);
            let r = crate::train::checkpoint::sample_checkpoint(
                &run,
                Some(step),
                n,
                (None, None),
                crate::train::checkpoint::Weights::Online,
                0,
                &device,
            )
            .and_then(|(x, _)| crate::sample::to_u8_nhwc(&x))
            .map(|(images, n, h, w, c)| SampleGrid { n, h, w, c, images })
            .map_err(|e| e.to_string());
            let _ = tx.send((dir, step, r));
        });
    }

    fn raw_done(&mut self, (dir, step, r): RawSamples) {
        self.raw_busy = false;
        match r {
            Ok(grid) => {
                if let Some(run) = self.app.runs.iter_mut().find(|r| r.dir.as_deref() == Some(&dir)) {
                    run.samples_raw = Some(Grid { step, grid });
                }
            }
            Err(e) => self.app.push_log(format!("raw-weight samples at step {step}: {e}")),
        }
    }

    /// Appends the log pane's new lines to the log file.
    fn flush_log(&mut self) {
        let total = self.app.log_total;
        if total == self.log_written {
            return;
        }
        let new = ((total - self.log_written) as usize).min(self.app.log.len());
        if let Some(f) = &mut self.log_file {
            let stamp = humantime::format_rfc3339_seconds(SystemTime::now());
            for line in self.app.log.iter().skip(self.app.log.len() - new) {
                let _ = writeln!(f, "{stamp} {line}");
            }
        }
        self.log_written = total;
    }
}

fn open_log_file(home: &Path) -> Option<File> {
    std::fs::create_dir_all(home).ok()?;
    std::fs::OpenOptions::new().create(true).append(true).open(home.join("tui.log")).ok()
}

/// Runs [`run_loop`] on the real terminal, with key presses from the input thread.
/// Rings the terminal bell (BEL on the real standard output the UI draws to), at most three times.
fn ring_bell(times: u32) {
    let Ok(saved) = SAVED.lock() else { return };
    if let Some((out, _)) = *saved {
        let bells = vec![7u8; times.min(3) as usize];
        // SAFETY: `out` is the saved standard output, open while the UI runs.
        let _ = unsafe { libc::write(out, bells.as_ptr().cast(), bells.len()) };
    }
}

fn run_in_terminal(
    terminal: &mut Tui,
    lp: &mut Loop,
    events: Receiver<Event>,
    captured: Receiver<String>,
    raw_rx: Receiver<RawSamples>,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let inputs = input_thread(stop.clone());
    let result = run_loop(terminal, lp, inputs, events, captured, raw_rx, &mut ring_bell);
    stop.store(true, Ordering::Relaxed);
    result
}

/// The select loop: terminal input (keys, resizes), engine events, captured output lines and
/// raw-weight samples come in; effects go out and frames are drawn on `terminal`, until the
/// app asks to exit or the input ends.
fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    lp: &mut Loop,
    inputs: Receiver<TermEvent>,
    mut events: Receiver<Event>,
    mut captured: Receiver<String>,
    raw_rx: Receiver<RawSamples>,
    ring: &mut dyn FnMut(u32),
) -> Result<()> {
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    while !lp.app.exit {
        let wait = if dirty { FRAME.saturating_sub(last_draw.elapsed()) } else { TICK };
        select! {
            recv(inputs) -> ev => match ev {
                Ok(TermEvent::Key(k)) => {
                    let effects = handle_key(&mut lp.app, k);
                    lp.effects(effects);
                    dirty = true;
                }
                Ok(_) => dirty = true, // resize and the like: redraw
                Err(_) => lp.app.exit = true,
            },
            recv(events) -> ev => match ev {
                Ok(e) => { lp.engine_event(e); dirty = true; }
                Err(_) => { events = never(); lp.app.on_engine_gone(); dirty = true; }
            },
            recv(captured) -> line => match line {
                Ok(l) => { lp.app.push_log(l); dirty = true; }
                Err(_) => captured = never(),
            },
            recv(raw_rx) -> r => if let Ok(r) = r { lp.raw_done(r); dirty = true; },
            default(wait) => {}
        }
        // Coalesce a burst of engine events into one frame.
        for e in events.try_iter().take(4096) {
            lp.engine_event(e);
        }
        lp.reload_changed();
        lp.app.check_stall(Instant::now());
        lp.flush_log();
        if lp.app.alerts.bells > 0 {
            ring(lp.app.take_bells());
            dirty = true;
        }
        if dirty && last_draw.elapsed() >= FRAME {
            let (app, images) = (&lp.app, &mut lp.images);
            terminal
                .draw(|f| {
                    render::draw(f, app);
                    if let Some(images) = images {
                        images.draw(f, app);
                    }
                })
                .map_err(|e| Error::msg(format!("drawing: {e}")))?;
            last_draw = Instant::now();
            dirty = false;
            // For the end-to-end test of the restore on panic.
            if std::env::var_os("AYT_TUI_TEST_PANIC").is_some() {
                panic!("AYT_TUI_TEST_PANIC is set: panicking to test that the terminal is restored");
            }
        }
    }
    Ok(())
}

fn truecolor() -> bool {
    std::env::var("COLORTERM").is_ok_and(|v| v.contains("truecolor") || v.contains("24bit"))
}

/// `ayt` / `ayt tui`: the launcher and the live dashboard, driving the engine thread.
pub fn run_live(opts: LiveOptions) -> Result<()> {
    let presets = discover_presets(&opts.presets, &opts.set);
    let mut app = App::new(Launcher::new(presets, discover_runs(&opts.paths)));
    app.truecolor = truecolor();
    let mut start = None;
    if opts.start {
        let entry = app.launcher.presets.first().ok_or_else(|| Error::msg("--start: name a preset with --preset"))?;
        let preset = entry.preset.clone().map_err(Error::msg)?;
        let request = RunRequest::New { preset: Box::new(preset), preset_dir: entry.path.parent().map(|d| d.to_path_buf()), out: None };
        app.enqueue(&request);
        app.push_log(format!("starting {}", engine::run::describe(&request)));
        app.screen = super::app::Screen::Dashboard;
        start = Some(request);
    }
    for r in &opts.queue {
        app.enqueue(r);
        app.push_log(format!("queued {}", engine::run::describe(r)));
        app.screen = super::app::Screen::Dashboard;
    }
    let log_file = open_log_file(&opts.paths.home);
    let (mut terminal, guard, captured, images) = setup(opts.graphics)?;
    let images = sample_images(&mut app, images, opts.graphics);
    let handle = engine::spawn(opts.paths.clone(), opts.device.clone());
    for r in start.into_iter().chain(opts.queue) {
        let _ = handle.commands.send(Command::Start(r));
    }
    let (mut lp, raw_rx) = Loop::new(app, opts.paths, Some(handle.commands.clone()), log_file, HashMap::new());
    lp.device = opts.device;
    lp.images = images;
    let result = run_in_terminal(&mut terminal, &mut lp, handle.events.clone(), captured, raw_rx);
    let _ = handle.commands.send(Command::Quit);
    // Give the engine a moment to end cleanly (it checkpoints a running run on Quit).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !handle.join.is_finished() && Instant::now() < deadline {
        while handle.events.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(20));
    }
    lp.flush_log();
    drop(terminal);
    drop(guard);
    result
}

/// `ayt view RUN_DIR...`: the dashboard, read-only, over runs on disk (finished or running).
/// Says in the log how sample tiles are drawn; the images when a graphics protocol is in use.
fn sample_images(app: &mut App, images: Images, mode: Graphics) -> Option<Images> {
    app.graphics = images.active();
    let how = if images.active() { format!("{} images", images.protocol_name()) } else { "half-blocks".into() };
    app.push_log(format!("sample tiles: {how} (--graphics {})", mode.name()));
    images.active().then_some(images)
}

pub fn run_view(dirs: &[PathBuf], paths: &Paths, mode: Graphics) -> Result<()> {
    let super::runs::Viewed { runs, sweeps } = super::runs::load_view(dirs, paths)?;
    let viewed: HashMap<PathBuf, Option<SystemTime>> = runs.iter().filter_map(|r| r.dir.clone()).map(|d| (d.clone(), mtime(&d))).collect();
    let sweep = runs.iter().any(|r| !r.swept.is_empty());
    let mut app = App::viewer(runs);
    app.truecolor = truecolor();
    app.push_log(format!("viewing {} run(s); r reloads, the view follows running runs every 2 s", app.runs.len()));
    if sweep {
        app.push_log("a sweep: g per setting / per run, T summary table (sortable), / filter, [ ] smoothing");
    }
    let log_file = open_log_file(&paths.home);
    let (mut terminal, guard, captured, images) = setup(mode)?;
    let images = sample_images(&mut app, images, mode);
    let (mut lp, raw_rx) = Loop::new(app, paths.clone(), None, log_file, viewed);
    lp.images = images;
    lp.sweeps = sweeps;
    let result = run_in_terminal(&mut terminal, &mut lp, never(), captured, raw_rx);
    lp.flush_log();
    drop(terminal);
    drop(guard);
    result
}

#[cfg(test)]
mod tests;
