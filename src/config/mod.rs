//! Presets: TOML run descriptions, validated with errors that name file, key and value.

pub mod eval;
pub mod overrides;
pub mod preset;
pub mod probe;

pub use eval::EvalConfig;
pub use preset::*;
pub use probe::ProbeConfig;
