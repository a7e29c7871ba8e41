//! Advisory file locks (`flock`): released by the kernel when the holder exits, however it exits,
//! so a killed member never leaves a stale lock behind (a stale status file is told apart from a
//! live run by whether its lock is held).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Waits for the lock.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        let file = open(path)?;
        // SAFETY: flock on a valid, open descriptor; no memory is shared with the kernel.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::file(path, format!("cannot lock: {}", std::io::Error::last_os_error())));
        }
        Ok(FileLock { _file: file, path: path.to_path_buf() })
    }

    /// Takes the lock if no one holds it, retrying for up to `patience` (a reader probing the lock
    /// holds it for microseconds); `None` if it stays held.
    pub fn try_exclusive(path: &Path, patience: Duration) -> Result<Option<FileLock>> {
        let file = open(path)?;
        let deadline = Instant::now() + patience;
        loop {
            // SAFETY: as above.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Some(FileLock { _file: file, path: path.to_path_buf() }));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::file(path, format!("cannot lock: {err}")));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether some process (this one included, through another lock) holds the lock now.
    pub fn is_held(path: &Path) -> Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        Ok(FileLock::try_exclusive(path, Duration::ZERO)?.is_none())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::file(path, format!("cannot open lock file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        assert!(!FileLock::is_held(&p).unwrap());
        let held = FileLock::exclusive(&p).unwrap();
        assert!(FileLock::is_held(&p).unwrap(), "a second open file description must conflict");
        assert!(FileLock::try_exclusive(&p, Duration::from_millis(120)).unwrap().is_none());
        drop(held);
        assert!(FileLock::try_exclusive(&p, Duration::ZERO).unwrap().is_some());
    }
}
