//! Small JSON files (a sweep's plan and member statuses, cached evaluations), written so that a
//! reader sees the old file or the new one, never half of one.

use std::path::Path;

use serde::Serialize;

use crate::{Error, Result};

/// Writes `value` as pretty JSON to `path` through a hidden temporary sibling and a rename
/// (concurrent writers each rename a whole file), creating the folder if needed.
pub fn write_atomically(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::file(path, format!("cannot serialise: {e}")))?;
    write_bytes_atomically(path, text.as_bytes())
}

/// Writes `bytes` to `path` the same way: the old file or the new one, never half of one.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::file(&tmp, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::file(path, format!("cannot replace: {e}")))
}
