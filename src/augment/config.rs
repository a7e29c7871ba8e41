//! The augmentation settings (a preset section) and the op table of method.md section 6.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A group of ops that a preset switches on or off as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Ops 1-7: isotropic scale, rotation, anisotropic scale, translation (one affine warp).
    Geometric,
    /// Ops 8-12: brightness, contrast, hue, saturation (one affine colour matrix).
    #[serde(alias = "colour")]
    Color,
    /// Ops 13-15: Gaussian blur, mixup, noise on a shell.
    Degradation,
}

impl Group {
    /// The group's name as written in presets and in [`super::Augmenter::label_groups`].
    pub fn name(self) -> &'static str {
        match self {
            Group::Geometric => "geometric",
            Group::Color => "color",
            Group::Degradation => "degradation",
        }
    }
}

/// Augmentation settings. Defaults: `p = 0.15`, no ramp, all three groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Probability that each op fires, independently per image and op (after the ramp).
    pub p: f32,
    /// Iterations over which the probability ramps linearly from 0 to `p`; 0: no ramp.
    pub n_rampup: u64,
    /// The groups that are on (any order; labels always follow the table order).
    pub groups: Vec<Group>,
    /// Ops left out of enabled groups, by name (e.g. `["rotation"]` on rotation-invariant data,
    /// whose rotation labels no network can recover).
    pub exclude: Vec<String>,
    /// The anisotropic-scale labels: method.md's `(w cos r, w sin r)`, or `(w cos 2r, w sin 2r)`.
    pub aniso_label: AnisoLabel,
}

/// How the anisotropic scale `(w, r)` is labelled. The image of `(w, r)` equals those of
/// `(w, r + pi)` and `(-w, r + pi/2)`: method.md's `(w cos r, w sin r)` gives them opposite or
/// rotated labels, so with a random frame no network can predict it (its best guess is 0);
/// `(w cos 2r, w sin 2r)` gives all three the same label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnisoLabel {
    #[default]
    Method,
    DoubleAngle,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            p: 0.15,
            n_rampup: 0,
            groups: vec![Group::Geometric, Group::Color, Group::Degradation],
            exclude: Vec::new(),
            aniso_label: AnisoLabel::Method,
        }
    }
}

impl AugmentConfig {
    /// `p` in `[0, 1]`, at least one group, no group twice.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(Error::msg(format!("augment.p = {}: must be in [0, 1]", self.p)));
        }
        if self.groups.is_empty() {
            return Err(Error::msg("augment.groups is empty: name at least one of geometric, color, degradation"));
        }
        for (i, g) in self.groups.iter().enumerate() {
            if self.groups[..i].contains(g) {
                return Err(Error::msg(format!("augment.groups names {:?} twice", g.name())));
            }
        }
        for name in &self.exclude {
            if Op::from_name(name).is_none() {
                let known: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
                return Err(Error::msg(format!("augment.exclude: unknown op {name:?}; the ops are {}", known.join(", "))));
            }
        }
        Ok(())
    }

    /// Whether `op` is on: its group is enabled and it is not excluded.
    pub fn enables(&self, op: Op) -> bool {
        self.groups.contains(&op.group()) && !self.exclude.iter().any(|n| n == op.name())
    }

    /// The firing probability at `iteration`: `p * min(1, iteration / n_rampup)` (`p` when
    /// `n_rampup == 0`).
    pub fn probability(&self, iteration: u64) -> f64 {
        let p = self.p as f64;
        if self.n_rampup == 0 {
            p
        } else {
            p * (iteration as f64 / self.n_rampup as f64).min(1.0)
        }
    }
}

/// One op of the table (method.md section 6), in table order; some ops have two labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    IsoScale,
    Rotation,
    AnisoScale,
    Translation,
    Brightness,
    Contrast,
    Hue,
    Saturation,
    Blur,
    Mixup,
    ShellNoise,
}

impl Op {
    /// All ops, in table order (the order of application, of random draws and of labels).
    pub const ALL: [Op; 11] = [
        Op::IsoScale,
        Op::Rotation,
        Op::AnisoScale,
        Op::Translation,
        Op::Brightness,
        Op::Contrast,
        Op::Hue,
        Op::Saturation,
        Op::Blur,
        Op::Mixup,
        Op::ShellNoise,
    ];

    /// The op's name in `augment.exclude`.
    pub fn name(self) -> &'static str {
        match self {
            Op::IsoScale => "iso_scale",
            Op::Rotation => "rotation",
            Op::AnisoScale => "aniso_scale",
            Op::Translation => "translation",
            Op::Brightness => "brightness",
            Op::Contrast => "contrast",
            Op::Hue => "hue",
            Op::Saturation => "saturation",
            Op::Blur => "blur",
            Op::Mixup => "mixup",
            Op::ShellNoise => "shell_noise",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    pub fn group(self) -> Group {
        match self {
            Op::IsoScale | Op::Rotation | Op::AnisoScale | Op::Translation => Group::Geometric,
            Op::Brightness | Op::Contrast | Op::Hue | Op::Saturation => Group::Color,
            Op::Blur | Op::Mixup | Op::ShellNoise => Group::Degradation,
        }
    }

    /// The op's label names, in label order.
    pub fn label_names(self) -> &'static [&'static str] {
        match self {
            Op::IsoScale => &["iso_scale"],
            Op::Rotation => &["rot_cos", "rot_sin"],
            Op::AnisoScale => &["aniso_cos", "aniso_sin"],
            Op::Translation => &["tx", "ty"],
            Op::Brightness => &["brightness"],
            Op::Contrast => &["contrast"],
            Op::Hue => &["hue_cos", "hue_sin"],
            Op::Saturation => &["saturation"],
            Op::Blur => &["blur_sigma"],
            Op::Mixup => &["mixup"],
            Op::ShellNoise => &["shell_noise"],
        }
    }

    /// Whether the op does anything on `channels`-channel images (hue and saturation need RGB).
    pub fn applies_to(self, channels: usize) -> bool {
        !matches!(self, Op::Hue | Op::Saturation) || channels == 3
    }
}
