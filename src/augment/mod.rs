//! The augmentation pipeline of method.md section 6: random ops whose parameters are the labels
//! the self-supervised feature network phi learns to regress.
//!
//! - [`config`]: [`AugmentConfig`] (a preset section) and the op table ([`Op`], [`Group`]).
//! - [`params`]: [`OpParams`], one image's drawn parameters, the draw order, and the labels.
//! - [`geometric`]: ops 1-7 as one affine warp (bilinear, reflect padding).
//! - [`color`]: ops 8-12 as one affine colour matrix.
//! - [`degrade`]: ops 13-15 (blur, mixup, noise on a shell).
//! - [`preview`]: `ayt augment preview` (a PNG grid of augmented images and their labels).
//!
//! Per image the pipeline is: warp (if a geometric op fired), colour matrix (if a colour op
//! fired), blur, mixup (with the *input* version of the other image), noise on a shell. Each op
//! fires independently with probability `p(iteration) = p * min(1, iteration / n_rampup)`; an op
//! that did not fire has labels 0, so a clean image has the zero label vector and is returned
//! bit-for-bit unchanged. Labels are laid out in table order over the enabled ops:
//!
//! `iso_scale, rot_cos, rot_sin, aniso_cos, aniso_sin, tx, ty | brightness, contrast, hue_cos,
//! hue_sin, saturation | blur_sigma, mixup, shell_noise` (hue and saturation only for 3 channels).
//!
//! All randomness comes from the caller's generator, in the order documented in [`params`].
//! This is plain CPU code on `Vec<f32>`: it runs on data, never on the gradient path.

pub mod color;
pub mod config;
pub mod degrade;
pub mod geometric;
pub mod params;
pub mod preview;

#[cfg(test)]
mod tests;

use std::ops::Range;

use rand::Rng;

pub use config::{AnisoLabel, AugmentConfig, Group, Op};
pub use params::{Aniso, Mixup, OpParams, ShellNoise};

use crate::error::{Error, Result};

/// Index `i` mirrored into `0..n` without repeating the edge ("reflect" padding: `-1 -> 1`,
/// `n -> n - 2`), periodically for indices far outside.
pub(crate) fn reflect(i: i64, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let m = i.rem_euclid(period);
    (if m >= n as i64 { period - m } else { m }) as usize
}

/// Draws and applies augmentations for images of a fixed channel count.
#[derive(Clone, Debug)]
pub struct Augmenter {
    cfg: AugmentConfig,
    channels: usize,
    /// The enabled ops, in table order.
    ops: Vec<Op>,
}

impl Augmenter {
    /// An augmenter for `channels`-channel images (hue and saturation only when `channels == 3`).
    pub fn new(cfg: AugmentConfig, channels: usize) -> Result<Self> {
        cfg.validate()?;
        if channels == 0 {
            return Err(Error::msg("augment: images need at least one channel"));
        }
        let ops = Op::ALL.into_iter().filter(|op| cfg.enables(*op) && op.applies_to(channels)).collect();
        Ok(Augmenter { cfg, channels, ops })
    }

    pub fn config(&self) -> &AugmentConfig {
        &self.cfg
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The enabled ops, in table order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// One name per label, in table order, enabled ops only.
    pub fn label_names(&self) -> Vec<String> {
        self.ops.iter().flat_map(|op| op.label_names().iter().map(|s| s.to_string())).collect()
    }

    pub fn n_labels(&self) -> usize {
        self.ops.iter().map(|op| op.label_names().len()).sum()
    }

    /// `(group name, label range)` for each enabled group, in table order.
    pub fn label_groups(&self) -> Vec<(String, Range<usize>)> {
        let mut out: Vec<(String, Range<usize>)> = Vec::new();
        let mut start = 0;
        for op in &self.ops {
            let end = start + op.label_names().len();
            match out.last_mut() {
                Some((name, range)) if name == op.group().name() => range.end = end,
                _ => out.push((op.group().name().to_string(), start..end)),
            }
            start = end;
        }
        out
    }

    /// The firing probability of each op at `iteration`.
    pub fn probability(&self, iteration: u64) -> f64 {
        self.cfg.probability(iteration)
    }

    /// The labels of one image's parameters (`n_labels` values; disabled ops are ignored).
    pub fn labels(&self, params: &OpParams) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.n_labels());
        for &op in &self.ops {
            params.push_labels(op, self.cfg.aniso_label, &mut out);
        }
        out
    }

    /// Draw the parameters of a batch of `b` images of `c x h x w` (see [`params`] for the order).
    pub fn draw_params(&self, b: usize, c: usize, h: usize, w: usize, iteration: u64, rng: &mut impl Rng) -> Vec<OpParams> {
        let p = self.probability(iteration);
        (0..b).map(|i| params::draw(&self.ops, p, i, b, c * h * w, rng)).collect()
    }

    /// Apply given parameters (one per image) to `images` (NCHW, `b x c x h x w`). Returns the
    /// augmented images (NCHW) and the labels (`b x n_labels`, row-major). Ops that are not
    /// enabled are ignored.
    ///
    /// Panics if the sizes do not match, `c` differs from the augmenter's channel count, or a
    /// mixup partner index is `>= b`.
    pub fn apply_params(&self, images: &[f32], b: usize, c: usize, h: usize, w: usize, params: &[OpParams]) -> (Vec<f32>, Vec<f32>) {
        let chw = c * h * w;
        assert_eq!(images.len(), b * chw, "augment: images hold {} values, expected {b}x{c}x{h}x{w}", images.len());
        assert_eq!(c, self.channels, "augment: {c}-channel images given to an augmenter for {} channels", self.channels);
        assert_eq!(params.len(), b, "augment: {} parameter sets for {b} images", params.len());
        let mut out = Vec::with_capacity(b * chw);
        let mut labels = Vec::with_capacity(b * self.n_labels());
        for (i, p) in params.iter().enumerate() {
            let p = p.restricted_to(&self.ops);
            let mut x = images[i * chw..(i + 1) * chw].to_vec();
            if let Some(fwd) = geometric::forward(&p, h, w) {
                x = geometric::warp(&x, c, h, w, &fwd);
            }
            if [Op::Brightness, Op::Contrast, Op::Hue, Op::Saturation].into_iter().any(|op| p.fired(op)) {
                let mean = x.iter().map(|&v| v as f64).sum::<f64>() / chw.max(1) as f64;
                if let Some(m) = color::matrix(&p, mean, c == 3) {
                    color::apply(&mut x, c, h * w, &m);
                }
            }
            if let Some(sigma) = p.blur {
                degrade::blur(&mut x, c, h, w, sigma);
            }
            if let Some(m) = p.mixup {
                assert!(m.other < b, "augment: mixup partner {} in a batch of {b}", m.other);
                degrade::mixup(&mut x, &images[m.other * chw..(m.other + 1) * chw], m.w);
            }
            if let Some(n) = &p.shell_noise {
                assert_eq!(n.z.len(), chw, "augment: shell noise direction of {} values for {chw}-value images", n.z.len());
                degrade::shell_noise(&mut x, n.w, &n.z);
            }
            out.extend(x);
            labels.extend(self.labels(&p));
        }
        (out, labels)
    }

    /// Draw parameters for each image (with `rng`, at `iteration`) and apply them: see
    /// [`Augmenter::draw_params`] and [`Augmenter::apply_params`].
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        images: &[f32],
        b: usize,
        c: usize,
        h: usize,
        w: usize,
        iteration: u64,
        rng: &mut impl Rng,
    ) -> (Vec<f32>, Vec<f32>) {
        let params = self.draw_params(b, c, h, w, iteration, rng);
        self.apply_params(images, b, c, h, w, &params)
    }
}
