//! The library's error type: every message names the file (and field) it is about.

use std::path::{Path, PathBuf};

#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// Something is wrong with a file's content: names the file, and what is wrong.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A preset is invalid: names the file, the key and the value.
    #[error("preset {}: {msg}", path.display())]
    Preset { path: PathBuf, msg: String },
    #[error("{0}")]
    Msg(String),
    /// Training met a NaN or an infinity at `step` (the step being taken, 1-based) in `what`
    /// (the loss, or the gradient's norm).
    #[error("step {step}: the {what} is {value}; lower train.lr or check the data")]
    NonFinite { step: u64, what: &'static str, value: f64 },
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("HDF5: {0}")]
    Hdf5(#[from] hdf5::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::File { path: path.as_ref().to_path_buf(), msg: msg.into() }
    }
    pub fn msg(msg: impl Into<String>) -> Self {
        Error::Msg(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach a file path to any error, for errors raised while reading or writing that file.
pub trait WithPath<T> {
    fn with_path(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: std::fmt::Display> WithPath<T> for std::result::Result<T, E> {
    fn with_path(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::file(path, e.to_string()))
    }
}
