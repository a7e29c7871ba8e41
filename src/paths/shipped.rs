//! The weights folder (`$AYT_WEIGHTS`, else the source tree's `weights/`) and the starting points
//! shipped in it, `weights/start/`: a pre-trained denoiser as a packed run folder
//! (`start/<name>/`, e.g. `mnist-edm`) and feature networks (`start/features/<file>.h5`, e.g. the
//! MNIST phi and evaluator). Names resolve to the user's own runs and features first; a shipped
//! file is used only when the user has none, and only when its SHA256 matches the one compiled
//! in from `weights/start/SHA256SUMS`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Environment variable naming the weights folder (the one that holds `lpips/` and `start/`).
pub const WEIGHTS_ENV: &str = "AYT_WEIGHTS";

/// `sha256  path` lines of the shipped starting points (paths relative to `start/`), compiled in.
const START_SHA256SUMS: &str = include_str!("../../weights/start/SHA256SUMS");

/// The weights folder: `$AYT_WEIGHTS` if set, else the source tree's `weights/`.
pub fn weights_root() -> PathBuf {
    match std::env::var_os(WEIGHTS_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"),
    }
}

/// Where the shipped starting points live.
pub fn start_root() -> PathBuf {
    weights_root().join("start")
}

/// The shipped run folder `start/<name>/`, if it is there (checked when its checkpoint loads).
pub fn run(name: &str) -> Option<PathBuf> {
    let dir = start_root().join(name);
    dir.join(super::PRESET_FILE).is_file().then_some(dir)
}

/// The shipped feature network `start/features/<file_name>`, if it is there and intact.
pub fn feature(file_name: &str) -> Result<Option<PathBuf>> {
    let path = start_root().join("features").join(file_name);
    if !path.is_file() {
        return Ok(None);
    }
    verify(&path)?;
    Ok(Some(path))
}

/// Checks a file under `start/` against the compiled-in SHA256; files elsewhere pass unread.
pub fn verify(path: &Path) -> Result<()> {
    if shipped_name(path).is_none() {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read the shipped file: {e}")))?;
    verify_bytes(path, &bytes)
}

/// [`verify`] for a file already read.
pub fn verify_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(rel) = shipped_name(path) else { return Ok(()) };
    let expect = expected_sha256(&rel)
        .ok_or_else(|| Error::file(path, "a file in the shipped starting points with no SHA256 compiled in (weights/start/SHA256SUMS)"))?;
    let got = hex::encode(Sha256::digest(bytes));
    if got != expect {
        return Err(Error::file(
            path,
            format!("the shipped starting point is corrupt or not the one this build ships: SHA256 {got}, expected {expect}"),
        ));
    }
    Ok(())
}

/// `path` relative to `start/` (with `/` separators), if it lies there.
fn shipped_name(path: &Path) -> Option<String> {
    let abs = std::path::absolute(path).ok()?;
    let root = std::path::absolute(start_root()).ok()?;
    Some(abs.strip_prefix(&root).ok()?.to_string_lossy().replace('\\', "/"))
}

fn expected_sha256(rel: &str) -> Option<&'static str> {
    sha256_listed(START_SHA256SUMS, rel)
}

/// The SHA-256 that `sha256sum`-format lines (`sum  name`, `sum *name`) list for `name`.
pub fn sha256_listed(sums: &'static str, name: &str) -> Option<&'static str> {
    sums.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (sum, file) = (it.next()?, it.next()?);
        (file.trim_start_matches('*').trim_start_matches("./") == name).then_some(sum)
    })
}
