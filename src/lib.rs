//! `ayt`: a workbench for training consistency models with manifold-aligned tangents.
//!
//! Layers, from the bottom up (docs/architecture.md lists them with what each is for, and
//! `tests/architecture.rs` checks that every import points down): foundations (`error`, `rng`,
//! `runtime`, `device`, `image_io`, `progress`), `paths`, `store`, `nn`, `model`, `data`, `augment`,
//! `config`, `sample`, `train`, `features`, `metrics`, `plot`, `engine`, `report`, `sweep`,
//! `export`, `bench`, `tui`. Nothing below `engine` knows about a training thread, nothing below
//! `tui` about a terminal UI.

pub mod augment;
pub mod bench;
pub mod config;
pub mod data;
pub mod device;
pub mod device_memory;
pub mod engine;
pub mod error;
pub mod export;
pub mod features;
pub mod image_io;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod paths;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod sample;
pub mod store;
pub mod sweep;
pub mod train;
pub mod tui;

pub use error::{Error, Result};
