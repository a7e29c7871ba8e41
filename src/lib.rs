//! `ayt`: a workbench for training consistency models with manifold-aligned tangents.
//!
//! Layers, from the bottom up: `nn` (layers, gradient-checked), `model` (EDM UNet),
//! `data` (HDF5 dataset store, importers, synthetic disks, batching), `train` (EDM/ECT loops,
//! optimiser, checkpoints), `store` (HDF5 run log), `engine` (training thread), `report`
//! (headless progress). Nothing below `engine` knows about a UI.

pub mod augment;
pub mod bench;
pub mod config;
pub mod data;
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
