//! Sample tiles as real images where the terminal can show them: the kitty, iTerm2 or sixel
//! graphics protocol, found by asking the terminal (`--graphics auto`: kitty's graphics query,
//! device attributes for sixel, the environment for iTerm2) or chosen, half-blocks
//! elsewhere. Render stays pure and draws half-blocks; it records where each sample grid went
//! ([`ImageSlot`]), and the event loop draws the image over those cells in the same frame,
//! encoding each grid once per size and step.

use std::collections::HashMap;
use std::num::NonZeroU16;
use std::str::FromStr;

use image::{DynamicImage, RgbImage};
use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::Rect;
use ratatui::Frame;
use ratatui_image::picker::cap_parser::{Parser, QueryStdioOptions, Response};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{Image, Resize};

use super::app::{App, ImageSlot};
use crate::store::SampleGrid;

/// `--graphics`: how sample tiles are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Graphics {
    /// Ask the terminal which protocol it speaks (half-blocks if none).
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    Halfblocks,
}

impl Graphics {
    pub fn name(self) -> &'static str {
        match self {
            Graphics::Auto => "auto",
            Graphics::Kitty => "kitty",
            Graphics::Sixel => "sixel",
            Graphics::Iterm2 => "iterm2",
            Graphics::Halfblocks => "halfblocks",
        }
    }
}

impl FromStr for Graphics {
    type Err = String;
    fn from_str(s: &str) -> Result<Graphics, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Graphics::Auto),
            "kitty" => Ok(Graphics::Kitty),
            "sixel" => Ok(Graphics::Sixel),
            "iterm2" => Ok(Graphics::Iterm2),
            "halfblocks" | "none" => Ok(Graphics::Halfblocks),
            other => Err(format!("unknown graphics {other:?}: auto, kitty, sixel, iterm2 or halfblocks")),
        }
    }
}

/// The grid of `slot` as the app holds it now (the history's when one is chosen).
fn slot_grid<'a>(app: &'a App, slot: &ImageSlot) -> Option<&'a SampleGrid> {
    let run = app.runs.get(slot.run)?;
    let grid = if slot.raw { run.samples_raw.as_ref() } else { app.shown_ema(run) };
    grid.filter(|g| g.step == slot.step).map(|g| &g.grid)
}

/// The whole-number scale, columns and rows that show all `n` tiles of `h x w` (with a gap of
/// `gap` px) in `px` pixels at the largest size; at scale 1, as many as fit.
pub fn integer_layout(n: usize, (h, w): (usize, usize), px: (usize, usize), gap: usize) -> (usize, usize, usize) {
    let fit = |s: usize| {
        let cols = ((px.0 + gap) / (w * s + gap)).clamp(1, n.max(1));
        let rows = ((px.1 + gap) / (h * s + gap)).min(n.div_ceil(cols));
        (s, cols, rows)
    };
    (1..=32).rev().map(fit).find(|&(_, c, r)| c * r >= n).unwrap_or_else(|| fit(1))
}

/// The tiles of `grid` side by side, each scaled up by a whole factor (nearest neighbour, so
/// 16x16 and 28x28 samples stay sharp) to fill `px` pixels; black gaps between tiles.
pub fn grid_image(grid: &SampleGrid, px: (usize, usize)) -> Option<DynamicImage> {
    let (n, h, w, c) = (grid.n, grid.h, grid.w, grid.c);
    if n == 0 || h == 0 || w == 0 || c == 0 || grid.images.len() < n * h * w * c {
        return None;
    }
    let gap = 2;
    let (s, cols, rows) = integer_layout(n, (h, w), px, gap);
    let (iw, ih) = (cols * (w * s + gap) - gap, rows * (h * s + gap) - gap);
    let mut img = RgbImage::new(iw as u32, ih as u32);
    for k in 0..(cols * rows).min(n) {
        let (x0, y0) = ((k % cols) * (w * s + gap), (k / cols) * (h * s + gap));
        for y in 0..h * s {
            for x in 0..w * s {
                let at = ((k * h + y / s) * w + x / s) * c;
                let p = &grid.images[at..at + c];
                let rgb = if c >= 3 { [p[0], p[1], p[2]] } else { [p[0]; 3] };
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(rgb));
            }
        }
    }
    Some(DynamicImage::ImageRgb8(img))
}

/// Cell size assumed when the terminal does not say (px); only image sizes depend on it.
const DEFAULT_CELL: (u16, u16) = (10, 20);

/// What a terminal's reply to the graphics query says: kitty graphics (preferred), sixel (device
/// attribute 4), else iTerm2 images when the environment names a terminal that shows them; and
/// the cell size in pixels. `None` until the reply is complete (its status report).
pub fn read_reply(reply: &str, iterm2_env: bool) -> Option<(ProtocolType, Option<(u16, u16)>)> {
    let mut parser = Parser::new();
    let (mut kitty, mut sixel, mut cell, mut complete) = (false, false, None, false);
    for ch in reply.chars() {
        for r in parser.push(ch) {
            match r {
                Response::Kitty => kitty = true,
                Response::Sixel => sixel = true,
                Response::CellSize(size) => cell = size.or(cell),
                Response::Status => complete = true,
                _ => {}
            }
        }
    }
    let protocol = match (kitty, sixel, iterm2_env) {
        (true, _, _) => ProtocolType::Kitty,
        (_, true, _) => ProtocolType::Sixel,
        (_, _, true) => ProtocolType::Iterm2,
        _ => ProtocolType::Halfblocks,
    };
    complete.then_some((protocol, cell))
}

/// Whether the environment names a terminal that shows iTerm2 inline images.
fn iterm2_env() -> bool {
    let program = std::env::var("TERM_PROGRAM").unwrap_or_default();
    ["iTerm", "WezTerm", "mintty", "vscode", "Tabby", "Hyper", "rio", "WarpTerminal"].iter().any(|t| program.contains(t))
        || std::env::var("LC_TERMINAL").is_ok_and(|t| t.contains("iTerm"))
}

/// Asks the terminal on stdin/stdout which graphics protocol it speaks and its cell size. Call
/// in raw mode, before the UI takes stdout over and before anything else reads stdin; waits at
/// most `wait` for the reply (every terminal answers the status report that ends the query).
fn ask_terminal(wait: std::time::Duration) -> Option<(ProtocolType, Option<(u16, u16)>)> {
    use std::io::{Read, Write};
    let in_tmux = std::env::var_os("TMUX").is_some();
    let query = Parser::query(in_tmux, QueryStdioOptions::default());
    let mut out = std::io::stdout();
    out.write_all(query.as_bytes()).ok()?;
    out.flush().ok()?;
    let deadline = std::time::Instant::now() + wait;
    let mut reply = String::new();
    let mut stdin = std::io::stdin();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let mut fds = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the process's own stdin.
        let ready = unsafe { libc::poll(&mut fds, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if ready <= 0 {
            return None;
        }
        let mut buf = [0u8; 256];
        let n = stdin.read(&mut buf).ok().filter(|n| *n > 0)?;
        reply.extend(buf[..n].iter().map(|&b| b as char));
        if let Some(found) = read_reply(&reply, iterm2_env()) {
            return Some(found);
        }
    }
    None
}

/// The picker for `mode`: `Auto` asks the terminal (half-blocks if it does not answer); a chosen
/// protocol still asks for the cell size. Call in raw mode, before the UI takes stdout over.
pub fn picker(mode: Graphics) -> Picker {
    if mode == Graphics::Halfblocks {
        return Picker::halfblocks();
    }
    let (found, cell) = ask_terminal(std::time::Duration::from_millis(1500)).unwrap_or((ProtocolType::Halfblocks, None));
    // Picker's own query runs on a thread that leaves raw mode after our setup has entered it;
    // ours runs inline, and the font size it read is handed over here.
    #[allow(deprecated)]
    let mut picker = Picker::from_fontsize(cell.unwrap_or(DEFAULT_CELL));
    picker.set_protocol_type(match mode {
        Graphics::Kitty => ProtocolType::Kitty,
        Graphics::Sixel => ProtocolType::Sixel,
        Graphics::Iterm2 => ProtocolType::Iterm2,
        Graphics::Auto | Graphics::Halfblocks => found,
    });
    picker
}

/// Encoded sample images, drawn over the half-block grids.
pub struct Images {
    picker: Picker,
    cache: HashMap<ImageSlot, Protocol>,
}

impl Images {
    pub fn new(picker: Picker) -> Images {
        Images { picker, cache: HashMap::new() }
    }

    /// Whether images replace the half-blocks (a graphics protocol is in use).
    pub fn active(&self) -> bool {
        self.picker.protocol_type() != ProtocolType::Halfblocks
    }

    pub fn protocol_name(&self) -> &'static str {
        match self.picker.protocol_type() {
            ProtocolType::Kitty => "kitty",
            ProtocolType::Sixel => "sixel",
            ProtocolType::Iterm2 => "iTerm2",
            ProtocolType::Halfblocks => "half-blocks",
        }
    }

    /// Draws each grid render recorded as an image over its cells.
    pub fn draw(&mut self, frame: &mut Frame, app: &App) {
        let slots = std::mem::take(&mut *app.image_slots.borrow_mut());
        // keep only what is on screen now: a new step or size encodes afresh
        self.cache.retain(|k, _| slots.contains(k));
        let (fw, fh) = self.picker.font_size();
        for slot in slots {
            if !self.cache.contains_key(&slot) {
                let Some(grid) = slot_grid(app, &slot) else { continue };
                let px = (slot.area.width as usize * fw as usize, slot.area.height as usize * fh as usize);
                let Some(image) = grid_image(grid, px) else { continue };
                match self.picker.new_protocol(image, slot.area, Resize::Fit(None)) {
                    Ok(p) => {
                        self.cache.insert(slot, p);
                    }
                    Err(_) => continue,
                }
            }
            if let Some(p) = self.cache.get(&slot) {
                frame.render_widget(Image::new(p), slot.area);
                one_column_wide(frame.buffer_mut(), slot.area);
            }
        }
    }
}

/// The image's escape sequence sits in the first cell of each of its rows (the rest are set to
/// skip); counted as text, its width would make ratatui's diff skip the rest of the screen, which
/// then never draws. Each such cell is one column wide.
fn one_column_wide(buf: &mut Buffer, area: Rect) {
    for y in area.top()..area.bottom() {
        if let Some(cell) = buf.cell_mut((area.x, y)) {
            cell.set_diff_option(CellDiffOption::ForcedWidth(NonZeroU16::MIN));
        }
    }
}

#[cfg(test)]
mod tests;
