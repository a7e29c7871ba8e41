//! Presets by name: `--preset mnist-edm` finds `mnist-edm.toml` in the user's preset folder
//! (`$AYT_PRESETS`, else the platform config dir, e.g. `~/.config/ayt/presets`), then in
//! `./presets`, then in the presets this binary was built with (the clone's `presets/`). A path
//! that exists is used as it is; an unknown name lists the known ones.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Overrides the user's preset folder.
pub const PRESETS_ENV: &str = "AYT_PRESETS";

/// Where named presets are looked for, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let user = std::env::var_os(PRESETS_ENV)
        .map(PathBuf::from)
        .or_else(|| directories::ProjectDirs::from("", "", "ayt").map(|d| d.config_dir().join("presets")));
    user.into_iter().chain([PathBuf::from("presets"), Path::new(env!("CARGO_MANIFEST_DIR")).join("presets")]).collect()
}

/// A preset argument as a file: `arg` itself when it exists or names a path (has a folder or a
/// `.toml` ending, so a typo in a path is reported as that path), else `<dir>/<arg>.toml` in the
/// first of [`search_dirs`] that has it.
pub fn resolve(arg: &Path) -> Result<PathBuf> {
    let text = arg.to_string_lossy();
    let is_path = arg.exists() || text.contains(std::path::MAIN_SEPARATOR) || text.contains('/') || text.ends_with(".toml");
    if is_path {
        return Ok(arg.to_path_buf());
    }
    let dirs = search_dirs();
    if let Some(found) = dirs.iter().map(|d| d.join(format!("{text}.toml"))).find(|p| p.is_file()) {
        return Ok(found);
    }
    let known = known_names(&dirs);
    let list = if known.is_empty() { "none found".to_string() } else { known.into_iter().collect::<Vec<_>>().join(", ") };
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(Error::file(
        arg,
        format!("no such preset file, and no preset of that name (looked in {}); known presets: {list}", looked.join(", ")),
    ))
}

/// The preset names (file stems of `*.toml`) in `dirs`.
pub fn known_names(dirs: &[PathBuf]) -> BTreeSet<String> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "toml").then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned())).flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_finds_a_shipped_preset_and_an_unknown_one_lists_them() {
        let found = resolve(Path::new("mnist-edm")).unwrap();
        assert!(found.ends_with("presets/mnist-edm.toml") && found.is_file(), "{}", found.display());
        let e = resolve(Path::new("mnist-edn")).unwrap_err().to_string();
        assert!(e.contains("mnist-edn") && e.contains("known presets") && e.contains("mnist-edm") && e.contains("quick-disks"), "{e}");
        // a path is a path, even when missing
        assert_eq!(resolve(Path::new("nope/x.toml")).unwrap(), PathBuf::from("nope/x.toml"));
    }
}
