//! Presets: TOML run descriptions, validated with errors that name file, key and value.

pub mod overrides;
pub mod preset;

pub use preset::*;
