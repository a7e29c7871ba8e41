//! The terminal UI (ratatui + crossterm): a launcher, a live dashboard that drives the engine
//! thread, and `ayt view` over runs on disk.
//!
//! - [`app`]: the state, updated by pure functions (unit-tested);
//! - [`keys`]: key bindings, returning effects for the event loop;
//! - [`render`]: pure render functions, one per screen and panel (snapshot-tested);
//! - [`widgets`], [`series`]: half-block sample grids, decimated histories;
//! - [`graphics`]: sample grids as kitty / iTerm2 / sixel images over the half-blocks;
//! - [`bands`], [`table`]: a sweep's members per setting (mean and band) and its summary table;
//! - [`runs`]: presets, run folders and sweeps on disk, and loading a run's `run.h5`;
//! - [`term`]: the event loop, the only part that touches the terminal;
//! - [`fixtures`]: fixed data for snapshots and the frame-time benchmark.

pub mod app;
pub mod bands;
pub mod fixtures;
pub mod graphics;
pub mod keys;
pub mod render;
pub mod runs;
pub mod series;
pub mod table;
pub mod term;
pub mod widgets;

pub use app::App;
pub use graphics::Graphics;
pub use term::{run_live, run_view, LiveOptions};

/// Renders `app` into a `width x height` test buffer and returns it as text, one line per row
/// (symbols only). Used by the snapshot tests and `ayt bench-ui`.
pub fn render_to_text(app: &App, width: u16, height: u16) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| render::draw(f, app)).expect("test backend draws");
    buffer_text(terminal.backend().buffer())
}

/// A buffer's symbols as lines of text (trailing spaces trimmed). The UI draws no wide
/// characters, so each cell is one column.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(buf.area.x + x, buf.area.y + y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
