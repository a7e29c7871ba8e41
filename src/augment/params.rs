//! The drawn parameters of one image's ops ([`OpParams`]), how they are drawn, and their labels.
//!
//! Draw order (fixed; the same seed gives the same parameters): images in batch order; within an
//! image, the enabled ops in table order; for each op one `u ~ U[0, 1)` (`f64`), and the op fires
//! iff `u < p(iteration)`; a firing op then draws its parameters, in this order:
//!
//! | op | draws |
//! |---|---|
//! | isotropic scale | `w ~ N(0, 1)` |
//! | rotation | `theta ~ U(-pi, pi)` |
//! | anisotropic scale | `w ~ N(0, 1)`, then `v ~ U[0, 1)`: `r = 0` if `v < 0.5`, else `r ~ U(-pi, pi)` |
//! | translation | `w0 ~ N(0, 1)`, `w1 ~ N(0, 1)` |
//! | brightness, contrast, saturation | `w ~ N(0, 1)` |
//! | hue | `theta ~ U(-pi, pi)` |
//! | blur | `sigma ~ U(0, 3)` |
//! | mixup | `w = 0.5 * Beta(1, 3)`, then the other image `j ~ U{0..b-2}`, `j += 1` if `j >= i` (`j = i` when `b = 1`, no draw) |
//! | noise on a shell | `w ~ U(0, 0.5)`, then `z ~ N(0, I)` of length `C*H*W` |
//!
//! The `u` draws happen even when `p = 0`, so the stream position does not depend on `p`'s value
//! for ops that do not fire.

use std::f32::consts::PI;

use rand::Rng;
use rand_distr::{Beta, Distribution, StandardNormal};

use super::config::Op;

/// Anisotropic scale: `(2^(0.2 w), 2^(-0.2 w))` along the axes of a frame rotated by `r`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aniso {
    pub w: f32,
    pub r: f32,
}

/// Mixup with image `other` of the batch (its input, un-augmented version), weight `w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mixup {
    pub w: f32,
    pub other: usize,
}

/// Noise on a shell: add `w * sqrt(CHW) * z / ||z||`.
#[derive(Clone, Debug, PartialEq)]
pub struct ShellNoise {
    pub w: f32,
    /// The direction, `C*H*W` values (any non-zero vector; it is normalised when applied).
    pub z: Vec<f32>,
}

/// The parameters of one image's ops; `None` = the op did not fire (its labels are 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpParams {
    /// `w`, scale `2^(0.2 w)`.
    pub iso_scale: Option<f32>,
    /// `theta` (radians).
    pub rotation: Option<f32>,
    pub aniso_scale: Option<Aniso>,
    /// `(w0, w1)`: shift `(w0 * 0.125 * W, w1 * 0.125 * H)` pixels.
    pub translation: Option<[f32; 2]>,
    /// `w`: add `0.2 w`.
    pub brightness: Option<f32>,
    /// `w`: multiply by `2^(0.5 w)` about the image mean.
    pub contrast: Option<f32>,
    /// `theta` (radians) about the grey axis.
    pub hue: Option<f32>,
    /// `w`: chroma times `2^w`.
    pub saturation: Option<f32>,
    /// `sigma` (pixels).
    pub blur: Option<f32>,
    pub mixup: Option<Mixup>,
    pub shell_noise: Option<ShellNoise>,
}

impl OpParams {
    /// Whether `op` fired.
    pub fn fired(&self, op: Op) -> bool {
        match op {
            Op::IsoScale => self.iso_scale.is_some(),
            Op::Rotation => self.rotation.is_some(),
            Op::AnisoScale => self.aniso_scale.is_some(),
            Op::Translation => self.translation.is_some(),
            Op::Brightness => self.brightness.is_some(),
            Op::Contrast => self.contrast.is_some(),
            Op::Hue => self.hue.is_some(),
            Op::Saturation => self.saturation.is_some(),
            Op::Blur => self.blur.is_some(),
            Op::Mixup => self.mixup.is_some(),
            Op::ShellNoise => self.shell_noise.is_some(),
        }
    }

    /// Keep only the ops in `ops` (the others are set to `None`).
    pub fn restricted_to(&self, ops: &[Op]) -> OpParams {
        let on = |op: Op| ops.contains(&op);
        OpParams {
            iso_scale: self.iso_scale.filter(|_| on(Op::IsoScale)),
            rotation: self.rotation.filter(|_| on(Op::Rotation)),
            aniso_scale: self.aniso_scale.filter(|_| on(Op::AnisoScale)),
            translation: self.translation.filter(|_| on(Op::Translation)),
            brightness: self.brightness.filter(|_| on(Op::Brightness)),
            contrast: self.contrast.filter(|_| on(Op::Contrast)),
            hue: self.hue.filter(|_| on(Op::Hue)),
            saturation: self.saturation.filter(|_| on(Op::Saturation)),
            blur: self.blur.filter(|_| on(Op::Blur)),
            mixup: self.mixup.filter(|_| on(Op::Mixup)),
            shell_noise: self.shell_noise.clone().filter(|_| on(Op::ShellNoise)),
        }
    }

    /// Append `op`'s labels (zeros when it did not fire), as listed in [`Op::label_names`].
    pub fn push_labels(&self, op: Op, aniso_label: super::config::AnisoLabel, out: &mut Vec<f32>) {
        let angle = |t: Option<f32>| t.map_or([0.0, 0.0], |t| [t.cos() - 1.0, t.sin()]);
        let k = if aniso_label == super::config::AnisoLabel::DoubleAngle { 2.0 } else { 1.0 };
        match op {
            Op::IsoScale => out.push(self.iso_scale.unwrap_or(0.0)),
            Op::Rotation => out.extend(angle(self.rotation)),
            Op::AnisoScale => out.extend(self.aniso_scale.map_or([0.0, 0.0], |a| [a.w * (k * a.r).cos(), a.w * (k * a.r).sin()])),
            Op::Translation => out.extend(self.translation.unwrap_or([0.0, 0.0])),
            Op::Brightness => out.push(self.brightness.unwrap_or(0.0)),
            Op::Contrast => out.push(self.contrast.unwrap_or(0.0)),
            Op::Hue => out.extend(angle(self.hue)),
            Op::Saturation => out.push(self.saturation.unwrap_or(0.0)),
            Op::Blur => out.push(self.blur.unwrap_or(0.0)),
            Op::Mixup => out.push(self.mixup.map_or(0.0, |m| m.w)),
            Op::ShellNoise => out.push(self.shell_noise.as_ref().map_or(0.0, |s| s.w)),
        }
    }
}

fn normal(rng: &mut impl Rng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

fn angle(rng: &mut impl Rng) -> f32 {
    rng.random_range(-PI..PI)
}

/// Draw the parameters of image `i` of a batch of `b` images of `chw` values each, for the ops
/// `ops` (table order), each firing with probability `p`. See the module docs for the order.
pub fn draw(ops: &[Op], p: f64, i: usize, b: usize, chw: usize, rng: &mut impl Rng) -> OpParams {
    let mut out = OpParams::default();
    for &op in ops {
        let u: f64 = rng.random();
        if u >= p {
            continue;
        }
        match op {
            Op::IsoScale => out.iso_scale = Some(normal(rng)),
            Op::Rotation => out.rotation = Some(angle(rng)),
            Op::AnisoScale => {
                let w = normal(rng);
                let r = if rng.random::<f64>() < 0.5 { 0.0 } else { angle(rng) };
                out.aniso_scale = Some(Aniso { w, r });
            }
            Op::Translation => {
                let w0 = normal(rng);
                let w1 = normal(rng);
                out.translation = Some([w0, w1]);
            }
            Op::Brightness => out.brightness = Some(normal(rng)),
            Op::Contrast => out.contrast = Some(normal(rng)),
            Op::Hue => out.hue = Some(angle(rng)),
            Op::Saturation => out.saturation = Some(normal(rng)),
            Op::Blur => out.blur = Some(rng.random_range(0.0f32..3.0)),
            Op::Mixup => {
                let beta = Beta::new(1.0f32, 3.0).expect("Beta(1, 3) is valid");
                let w = 0.5 * beta.sample(rng);
                let other = if b > 1 {
                    let j = rng.random_range(0..b - 1);
                    if j >= i {
                        j + 1
                    } else {
                        j
                    }
                } else {
                    i
                };
                out.mixup = Some(Mixup { w, other });
            }
            Op::ShellNoise => {
                let w = rng.random_range(0.0f32..0.5);
                let z = crate::rng::normal_vec(rng, chw);
                out.shell_noise = Some(ShellNoise { w, z });
            }
        }
    }
    out
}
