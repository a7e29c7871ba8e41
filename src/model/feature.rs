//! What the frozen networks offer their users, defined beside the networks so that losses,
//! probes and metrics above can take any of them: a differentiable distance between image
//! batches (LPIPS, MFD) and a feature extractor for Frechet distances (the evaluator network,
//! Inception-v3).

use candle_core::Tensor;

use crate::Result;

/// A frozen, differentiable distance between image batches in [-1, 1].
pub trait FeatureDistance: Send {
    /// Per-sample distances [B] between `x` and `y` ([B,C,H,W]); differentiable w.r.t. `x`.
    fn distance(&self, x: &Tensor, y: &Tensor) -> Result<Tensor>;
    /// A short name for logs ("lpips-alex", "mfd", ...).
    fn name(&self) -> String;
}

/// Features of many images (NCHW in [-1, 1]), as rows `[n, d]`.
pub trait FeatureExtractor {
    fn features_of(&self, images: &Tensor) -> Result<(Vec<f32>, usize)>;
}
