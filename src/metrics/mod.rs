//! Evaluation and diagnostics: Frechet distance, tangent-alignment metrics, histograms.

pub mod disk_fit;
pub mod evalnet;
pub mod evaluator;
pub mod fd;
pub mod fid;
pub mod hist;
pub mod intervals;
pub mod local_pca;
pub mod pca_cache;
pub mod probe;
pub mod refstats;
