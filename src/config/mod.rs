//! Presets: TOML run descriptions, validated with errors that name file, key and value.

pub mod ema;
pub mod eval;
#[cfg(test)]
pub(crate) mod field_tests;
pub mod overrides;
pub mod preset;
pub mod probe;
pub mod validate;

pub use ema::EmaProfile;
pub use eval::EvalConfig;
pub use preset::*;
pub use probe::ProbeConfig;
