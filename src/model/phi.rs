//! The manifold feature network `phi` (method.md section 6): VGG-style stages of
//! `Conv3x3 -> norm -> ReLU` (repeated `depth` times), each ending in a 2x2 max-pool; a linear
//! head after global average pooling. Taps: every pool's output, and the head as `[B, L, 1, 1]`.

use candle_core::{Device, Module, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::feature::FeatureDistance;
use crate::nn::{resample, Conv2d, GroupNorm, Linear, ParamBuilder};
use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiNorm {
    Group,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhiConfig {
    /// Channels of each stage; each stage halves the resolution.
    pub widths: Vec<usize>,
    /// Convolutions per stage.
    pub depth: usize,
    pub norm: PhiNorm,
    pub groups: usize,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig { widths: vec![32, 64, 128, 128], depth: 1, norm: PhiNorm::Group, groups: 8 }
    }
}

impl PhiConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
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

    /// The input side must survive every pool.
    pub fn check_image_size(&self, size: usize) -> std::result::Result<(), String> {
        if size >> self.widths.len() == 0 {
            return Err(format!("phi.widths: {} stages pool a {size}-pixel image to nothing", self.widths.len()));
        }
        Ok(())
    }
}

struct ConvNorm {
    conv: Conv2d,
    norm: Option<GroupNorm>,
}

pub struct Phi {
    stages: Vec<Vec<ConvNorm>>,
    head: Linear,
    pub n_labels: usize,
    pub varmap: VarMap,
    pub cfg: PhiConfig,
    pub in_channels: usize,
}

impl Phi {
    pub fn new(cfg: &PhiConfig, in_channels: usize, n_labels: usize, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate().map_err(crate::Error::msg)?;
        let varmap = VarMap::new();
        let pb = ParamBuilder::new(&varmap, crate::rng::stream(seed, "phi-init"), device, candle_core::DType::F32);
        let mut cin = in_channels;
        let mut stages = Vec::new();
        for (s, &width) in cfg.widths.iter().enumerate() {
            let mut layers = Vec::new();
            for d in 0..cfg.depth {
                let pb = pb.pp(format!("stage{s}.{d}"));
                let conv = Conv2d::new(&pb.pp("conv"), cin, width, 3, 1, 1, 1.0)?;
                let norm = match cfg.norm {
                    PhiNorm::Group => Some(GroupNorm::new(&pb.pp("norm"), width, cfg.groups)?),
                    PhiNorm::None => None,
                };
                layers.push(ConvNorm { conv, norm });
                cin = width;
            }
            stages.push(layers);
        }
        let head = Linear::new(&pb.pp("head"), cin, n_labels, 1.0)?;
        Ok(Phi { stages, head, n_labels, varmap, cfg: cfg.clone(), in_channels })
    }

    /// A copy whose parameters are constants (not tracked by autograd): a frozen network whose
    /// input gradient costs no parameter gradients.
    pub fn frozen(&self) -> Phi {
        let conv = |c: &Conv2d| Conv2d::from_tensors(c.weight.detach(), c.bias.as_ref().map(|b| b.detach()), c.stride, c.padding);
        let stages = self
            .stages
            .iter()
            .map(|stage| {
                stage
                    .iter()
                    .map(|l| ConvNorm {
                        conv: conv(&l.conv),
                        norm: l.norm.as_ref().map(|n| GroupNorm {
                            weight: n.weight.detach(),
                            bias: n.bias.detach(),
                            groups: n.groups,
                            eps: n.eps,
                        }),
                    })
                    .collect()
            })
            .collect();
        let head = Linear { weight: self.head.weight.detach(), bias: self.head.bias.detach() };
        Phi { stages, head, n_labels: self.n_labels, varmap: self.varmap.clone(), cfg: self.cfg.clone(), in_channels: self.in_channels }
    }

    /// The tapped features: each stage's pooled output, then the head as `[B, L, 1, 1]`.
    pub fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = x.clone();
        let mut taps = Vec::with_capacity(self.stages.len() + 1);
        for stage in &self.stages {
            for layer in stage {
                h = layer.conv.forward(&h)?;
                if let Some(n) = &layer.norm {
                    h = n.forward(&h)?;
                }
                h = h.relu()?;
            }
            h = resample::max_pool2x(&h)?;
            taps.push(h.clone());
        }
        let pooled = h.mean(D::Minus1)?.mean(D::Minus1)?;
        let out = self.head.forward(&pooled)?;
        let b = out.dim(0)?;
        taps.push(out.reshape((b, self.n_labels, 1, 1))?);
        Ok(taps)
    }

    pub fn device(&self) -> Device {
        self.head.weight.device().clone()
    }

    /// The label regression output `[B, L]`.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let mut taps = self.features(x)?;
        let head = taps.pop().ok_or_else(|| crate::Error::msg("phi: no head"))?;
        Ok(head.flatten_from(1)?)
    }
}

/// `ph(v) = sqrt(||v||^2 + eps^2) - eps` over the spatial dims of each channel, summed over
/// channels: `[B, C, H, W] -> [B]`.
pub fn pseudo_huber_per_channel(diff: &Tensor, eps: f64) -> Result<Tensor> {
    let (b, c, _, _) = diff.dims4()?;
    let sq = diff.sqr()?.flatten_from(2)?.sum(D::Minus1)?; // [B, C]
    let ph = ((sq + eps * eps)?.sqrt()? - eps)?;
    Ok(ph.reshape((b, c))?.sum(D::Minus1)?)
}

/// MFD(x, y) = sum over taps and channels of `ph(phi(x) - phi(y))`; `[B]`.
pub fn mfd(phi: &Phi, x: &Tensor, y: &Tensor, eps: f64) -> Result<Tensor> {
    let fx = phi.features(x)?;
    let fy: Vec<Tensor> = phi.features(y)?.into_iter().map(|t| t.detach()).collect();
    let mut total: Option<Tensor> = None;
    for (a, b) in fx.iter().zip(&fy) {
        let d = pseudo_huber_per_channel(&(a - b)?, eps)?;
        total = Some(match total {
            Some(t) => (t + d)?,
            None => d,
        });
    }
    total.ok_or_else(|| crate::Error::msg("phi has no taps"))
}

/// MFD as a frozen distance for the normalised-tangent loss.
pub struct MfdDistance {
    pub phi: Phi,
    pub eps: f64,
}

impl FeatureDistance for MfdDistance {
    fn distance(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        mfd(&self.phi, x, y, self.eps)
    }
    fn name(&self) -> String {
        "mfd".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{self, tests::randn};
    use candle_core::DType;

    fn tiny(device: &Device) -> Phi {
        let cfg = PhiConfig { widths: vec![4, 8], depth: 1, norm: PhiNorm::Group, groups: 2 };
        Phi::new(&cfg, 1, 3, 0, device).unwrap()
    }

    #[test]
    fn taps_have_the_documented_shapes() {
        let phi = tiny(&Device::Cpu);
        let x = randn(&[2, 1, 8, 8], 1).to_dtype(DType::F32).unwrap();
        let taps = phi.features(&x).unwrap();
        let shapes: Vec<Vec<usize>> = taps.iter().map(|t| t.dims().to_vec()).collect();
        assert_eq!(shapes, vec![vec![2, 4, 4, 4], vec![2, 8, 2, 2], vec![2, 3, 1, 1]]);
        assert_eq!(phi.predict(&x).unwrap().dims(), &[2, 3]);
    }

    #[test]
    fn mfd_is_zero_on_identical_inputs_and_positive_otherwise() {
        let phi = tiny(&Device::Cpu);
        let x = randn(&[2, 1, 8, 8], 2).to_dtype(DType::F32).unwrap();
        let y = randn(&[2, 1, 8, 8], 3).to_dtype(DType::F32).unwrap();
        let same = mfd(&phi, &x, &x, 1e-5).unwrap().to_vec1::<f32>().unwrap();
        assert!(same.iter().all(|v| v.abs() < 1e-6), "{same:?}");
        let diff = mfd(&phi, &x, &y, 1e-5).unwrap().to_vec1::<f32>().unwrap();
        assert!(diff.iter().all(|v| *v > 0.0), "{diff:?}");
    }

    #[test]
    fn pseudo_huber_per_channel_value() {
        // one sample, two channels: ||(3,4)|| = 5 and ||(0,0)|| = 0; eps = 1
        let d = Tensor::new(&[3.0f64, 4.0, 0.0, 0.0], &Device::Cpu).unwrap().reshape((1, 2, 1, 2)).unwrap();
        let v = pseudo_huber_per_channel(&d, 1.0).unwrap().to_vec1::<f64>().unwrap();
        assert!((v[0] - (26f64.sqrt() - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn mfd_input_gradient_matches_finite_differences_on_odd_and_even_sizes() {
        // f64 copy of a tiny phi: the gradient passes conv, group norm, ReLU, max-pool, mean, head.
        for size in [8, 9, 7] {
            let vm = VarMap::new();
            let pb = ParamBuilder::new(&vm, crate::rng::stream(5, "phi-init"), &Device::Cpu, DType::F64);
            let cfg = PhiConfig { widths: vec![4, 4], depth: 1, norm: PhiNorm::Group, groups: 2 };
            let mut stages = Vec::new();
            let mut cin = 1;
            for (s, &w) in cfg.widths.iter().enumerate() {
                let p = pb.pp(format!("s{s}"));
                stages.push(vec![ConvNorm {
                    conv: Conv2d::new(&p.pp("c"), cin, w, 3, 1, 1, 1.0).unwrap(),
                    norm: Some(GroupNorm::new(&p.pp("n"), w, 2).unwrap()),
                }]);
                cin = w;
            }
            let head = Linear::new(&pb.pp("head"), cin, 3, 1.0).unwrap();
            let phi = Phi { stages, head, n_labels: 3, varmap: vm.clone(), cfg, in_channels: 1 };
            let y = randn(&[2, 1, size, size], 7);
            let f = |ts: &[Tensor]| mfd(&phi, &ts[0], &y, 1e-5).map_err(|e| candle_core::Error::Msg(e.to_string()));
            let g = gradcheck::check(&f, &[randn(&[2, 1, size, size], 6)], 40, 1e-6, 8).unwrap();
            assert!(g.max_err < 1e-5, "size {size}: MFD input gradient error {}", g.max_err);
        }
    }
}
