//! phi's architecture as a preset gives it (`[phi]`), and the layout it resolves to.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiArch {
    /// The configurable stack: `widths`, `depth`, `norm`, `groups`.
    #[default]
    Vgg,
    /// The AYT paper's phi for CIFAR-10: VGG16's thirteen convolutions with batch norm (64, 64, M,
    /// 128, 128, M, 256 x3, M, 512 x3, M, 512 x3, M); the other fields are not used.
    Vgg16Bn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiNorm {
    Group,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhiConfig {
    /// `vgg` (default; a stored network without this field is one) or `vgg16_bn`.
    pub arch: PhiArch,
    /// Channels of each stage; each stage halves the resolution (`vgg` only).
    pub widths: Vec<usize>,
    /// Convolutions per stage (`vgg` only).
    pub depth: usize,
    /// `vgg` only; `vgg16_bn` has batch norm.
    pub norm: PhiNorm,
    pub groups: usize,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig { arch: PhiArch::Vgg, widths: vec![32, 64, 128, 128], depth: 1, norm: PhiNorm::Group, groups: 8 }
    }
}

/// The norm after each convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NormKind {
    Group(usize),
    Batch,
    None,
}

/// What a config builds: the output channels of each convolution, stage by stage (each stage
/// ends in a 2x2 max-pool), and the norm after each convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub stages: Vec<Vec<usize>>,
    pub norm: NormKind,
}

/// VGG16's convolutions ("D" configuration), one list per pooled stage.
const VGG16: [&[usize]; 5] = [&[64, 64], &[128, 128], &[256, 256, 256], &[512, 512, 512], &[512, 512, 512]];

impl PhiConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self.arch {
            PhiArch::Vgg => self.validate_vgg(),
            PhiArch::Vgg16Bn => self.validate_fixed(),
        }
    }

    fn validate_vgg(&self) -> std::result::Result<(), String> {
        if self.widths.is_empty() {
            return Err("phi.widths = []: needs at least one stage".into());
        }
        if self.depth == 0 {
            return Err("phi.depth = 0: needs at least one convolution per stage".into());
        }
        if let Some(w) = self.widths.iter().find(|w| **w == 0) {
            return Err(format!("phi.widths: {w} channels; every stage needs at least 1"));
        }
        if self.norm == PhiNorm::Group {
            if self.groups == 0 {
                return Err("phi.groups = 0: must be at least 1".into());
            }
            if let Some(w) = self.widths.iter().find(|w| !w.is_multiple_of(self.groups)) {
                return Err(format!("phi.widths: {w} is not a multiple of phi.groups = {}", self.groups));
            }
        }
        Ok(())
    }

    /// `vgg16_bn` fixes its layout: a preset that sets `widths`, `depth`, `norm` or `groups` to
    /// anything but their defaults asks for something it would not get, so it is refused.
    fn validate_fixed(&self) -> std::result::Result<(), String> {
        let d = PhiConfig::default();
        let unused = |key: &str, value: String| {
            Err(format!(
                "phi.{key} = {value} is not used by phi.arch = \"vgg16_bn\" (VGG16's fixed layout with batch norm); remove phi.{key}"
            ))
        };
        if self.widths != d.widths {
            return unused("widths", format!("{:?}", self.widths));
        }
        if self.depth != d.depth {
            return unused("depth", self.depth.to_string());
        }
        if self.norm != d.norm {
            return unused("norm", format!("{:?}", self.norm).to_lowercase());
        }
        if self.groups != d.groups {
            return unused("groups", self.groups.to_string());
        }
        Ok(())
    }

    pub(crate) fn layout(&self) -> Layout {
        match self.arch {
            PhiArch::Vgg => Layout {
                stages: self.widths.iter().map(|&w| vec![w; self.depth]).collect(),
                norm: match self.norm {
                    PhiNorm::Group => NormKind::Group(self.groups),
                    PhiNorm::None => NormKind::None,
                },
            },
            PhiArch::Vgg16Bn => Layout { stages: VGG16.iter().map(|s| s.to_vec()).collect(), norm: NormKind::Batch },
        }
    }

    /// `vgg [32, 64, 128, 128] x1 group` or `vgg16_bn`: for progress lines.
    pub fn describe(&self) -> String {
        match self.arch {
            PhiArch::Vgg => format!("vgg {:?} x{} {}", self.widths, self.depth, format!("{:?}", self.norm).to_lowercase()),
            PhiArch::Vgg16Bn => "vgg16_bn".into(),
        }
    }

    /// The input side must survive every pool.
    pub fn check_image_size(&self, size: usize) -> std::result::Result<(), String> {
        let pools = self.layout().stages.len();
        if size >> pools == 0 {
            return Err(match self.arch {
                PhiArch::Vgg => format!("phi.widths: {pools} stages pool a {size}-pixel image to nothing"),
                PhiArch::Vgg16Bn => {
                    format!("phi.arch = \"vgg16_bn\": its {pools} pools take a {size}-pixel image to nothing (it needs at least 32 pixels)")
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_defaults_to_vgg_and_vgg16_bn_refuses_the_fields_it_does_not_use() {
        // a stored config from before `arch` existed
        let old: PhiConfig = serde_json::from_str(r#"{"widths":[4,8],"depth":1,"norm":"group","groups":2}"#).unwrap();
        assert_eq!(old.arch, PhiArch::Vgg);
        assert_eq!(old.layout(), Layout { stages: vec![vec![4], vec![8]], norm: NormKind::Group(2) });

        let bn: PhiConfig = toml::from_str("arch = \"vgg16_bn\"").unwrap();
        bn.validate().unwrap();
        let layout = bn.layout();
        assert_eq!(layout.norm, NormKind::Batch);
        assert_eq!(layout.stages.iter().map(|s| s.len()).sum::<usize>(), 13);
        assert_eq!(layout.stages.len(), 5);
        assert_eq!(bn.describe(), "vgg16_bn");
        // its serialisation (defaults of the unused fields included) parses and validates again
        let again: PhiConfig = toml::from_str(&toml::to_string(&bn).unwrap()).unwrap();
        assert_eq!(again, bn);
        again.validate().unwrap();

        for (set, key) in
            [("widths = [8, 16]", "phi.widths"), ("depth = 2", "phi.depth"), ("norm = \"none\"", "phi.norm"), ("groups = 4", "phi.groups")]
        {
            let cfg: PhiConfig = toml::from_str(&format!("arch = \"vgg16_bn\"\n{set}")).unwrap();
            let e = cfg.validate().unwrap_err();
            assert!(e.contains(key) && e.contains("vgg16_bn") && e.contains("not used"), "{e}");
        }
        assert!(bn.check_image_size(32).is_ok());
        let e = bn.check_image_size(28).unwrap_err();
        assert!(e.contains("vgg16_bn") && e.contains("28"), "{e}");
    }
}
