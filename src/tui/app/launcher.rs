//! The launcher's state: the presets and run folders it offers, and which is selected.

use std::path::PathBuf;

use crate::config::Preset;

/// A preset the launcher offers: its file, and the resolved preset or why it does not load.
#[derive(Clone, Debug)]
pub struct PresetEntry {
    pub path: PathBuf,
    pub name: String,
    pub preset: Result<Preset, String>,
}

impl PresetEntry {
    pub fn load(path: PathBuf) -> PresetEntry {
        let fallback = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let preset = Preset::load(&path, &[]).map_err(|e| e.to_string());
        let name = preset.as_ref().map(|p| p.name.clone()).unwrap_or(fallback);
        PresetEntry { path, name, preset }
    }
    /// The resolved preset as TOML (what the run will record), or the error.
    pub fn preview(&self) -> String {
        match &self.preset {
            Ok(p) => p.to_toml(),
            Err(e) => format!("cannot load this preset:\n\n{e}"),
        }
    }
}

/// A run folder the launcher offers.
#[derive(Clone, Debug)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub name: String,
    /// A few lines: preset name, last checkpoint, ...
    pub summary: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LauncherTab {
    Presets,
    Runs,
}

#[derive(Clone, Debug)]
pub struct Launcher {
    pub tab: LauncherTab,
    pub presets: Vec<PresetEntry>,
    pub runs: Vec<RunEntry>,
    pub selected_preset: usize,
    pub selected_run: usize,
    pub preview_scroll: u16,
}

impl Launcher {
    pub fn new(presets: Vec<PresetEntry>, runs: Vec<RunEntry>) -> Launcher {
        Launcher { tab: LauncherTab::Presets, presets, runs, selected_preset: 0, selected_run: 0, preview_scroll: 0 }
    }
    pub fn current_preset(&self) -> Option<&PresetEntry> {
        self.presets.get(self.selected_preset)
    }
    pub fn current_run(&self) -> Option<&RunEntry> {
        self.runs.get(self.selected_run)
    }
    pub fn move_by(&mut self, d: isize) {
        let (sel, len) = match self.tab {
            LauncherTab::Presets => (&mut self.selected_preset, self.presets.len()),
            LauncherTab::Runs => (&mut self.selected_run, self.runs.len()),
        };
        if len > 0 {
            *sel = (*sel as isize + d).clamp(0, len as isize - 1) as usize;
        }
        self.preview_scroll = 0;
    }
}
