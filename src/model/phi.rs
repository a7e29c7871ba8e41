//! The manifold feature network `phi` (method.md section 6): VGG-style stages of
//! `Conv3x3 -> norm -> ReLU`, each ending in a 2x2 max-pool; a linear head after global average
//! pooling. Taps: every pool's output, and the head as `[B, L, 1, 1]`. `phi.arch = "vgg"` is the
//! configurable stack (`depth` convolutions of each width, group norm or none); `"vgg16_bn"` is
//! the AYT paper's phi for CIFAR-10, VGG16's thirteen convolutions with batch norm.
//!
//! Modes: [`Phi::features`] and [`Phi::predict`] run in inference mode (batch norm uses its
//! running statistics; nothing changes), as MFD and every evaluation need; training calls
//! [`Phi::predict_train`] (batch statistics, running statistics updated).

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::VarMap;

use super::feature::FeatureDistance;
use crate::nn::{resample, BatchNorm2d, Conv2d, GroupNorm, Linear, ParamBuilder};
use crate::Result;

mod config;
use config::{Layout, NormKind};
pub use config::{PhiArch, PhiConfig, PhiNorm};

enum Norm {
    Group(GroupNorm),
    Batch(BatchNorm2d),
    None,
}

struct ConvNorm {
    conv: Conv2d,
    norm: Norm,
}

impl ConvNorm {
    fn new(pb: &ParamBuilder, bb: &ParamBuilder, cin: usize, cout: usize, norm: NormKind) -> Result<Self> {
        let conv = Conv2d::new(&pb.pp("conv"), cin, cout, 3, 1, 1, 1.0)?;
        let norm = match norm {
            NormKind::Group(groups) => Norm::Group(GroupNorm::new(&pb.pp("norm"), cout, groups)?),
            NormKind::Batch => Norm::Batch(BatchNorm2d::new(&pb.pp("norm"), &bb.pp("norm"), cout)?),
            NormKind::None => Norm::None,
        };
        Ok(ConvNorm { conv, norm })
    }

    /// `relu(norm(conv(x)))`; batch norm in train mode when `train`.
    fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        match &self.norm {
            Norm::Group(n) => n.forward(&self.conv.forward(x)?)?.relu(),
            Norm::Batch(n) => n.forward_t(&self.conv.forward(x)?, train)?.relu(),
            Norm::None => self.conv.forward(x)?.relu(),
        }
    }

    /// Constants in place of parameters (a batch norm keeps its running statistics, shared).
    fn frozen(&self) -> ConvNorm {
        let c = &self.conv;
        let conv = Conv2d::from_tensors(c.weight.detach(), c.bias.as_ref().map(|b| b.detach()), c.stride, c.padding);
        let norm = match &self.norm {
            Norm::Group(n) => Norm::Group(GroupNorm { weight: n.weight.detach(), bias: n.bias.detach(), groups: n.groups, eps: n.eps }),
            Norm::Batch(n) => Norm::Batch(BatchNorm2d { weight: n.weight.detach(), bias: n.bias.detach(), ..n.clone() }),
            Norm::None => Norm::None,
        };
        ConvNorm { conv, norm }
    }
}

pub struct Phi {
    stages: Vec<Vec<ConvNorm>>,
    head: Linear,
    pub n_labels: usize,
    /// The trained parameters (what the optimizer gets).
    pub varmap: VarMap,
    /// Batch norm's running statistics (`<layer>.norm.running_mean`, `.running_var`): saved with
    /// the network, never given to an optimizer. Empty without batch norm.
    pub buffers: VarMap,
    pub cfg: PhiConfig,
    pub in_channels: usize,
}

impl Phi {
    pub fn new(cfg: &PhiConfig, in_channels: usize, n_labels: usize, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate().map_err(crate::Error::msg)?;
        Phi::build(cfg, &cfg.layout(), (in_channels, n_labels), seed, device, DType::F32)
    }

    /// The network of `layout` (normally `cfg.layout()`; tests build smaller ones) in `dtype`.
    fn build(
        cfg: &PhiConfig,
        layout: &Layout,
        (in_channels, n_labels): (usize, usize),
        seed: u64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let (varmap, buffers) = (VarMap::new(), VarMap::new());
        let pb = ParamBuilder::new(&varmap, crate::rng::stream(seed, "phi-init"), device, dtype);
        let bb = ParamBuilder::new(&buffers, crate::rng::stream(seed, "phi-buffers"), device, dtype);
        let mut cin = in_channels;
        let mut stages = Vec::new();
        for (s, widths) in layout.stages.iter().enumerate() {
            let mut layers = Vec::new();
            for (d, &width) in widths.iter().enumerate() {
                let name = format!("stage{s}.{d}");
                layers.push(ConvNorm::new(&pb.pp(&name), &bb.pp(&name), cin, width, layout.norm)?);
                cin = width;
            }
            stages.push(layers);
        }
        let head = Linear::new(&pb.pp("head"), cin, n_labels, 1.0)?;
        Ok(Phi { stages, head, n_labels, varmap, buffers, cfg: cfg.clone(), in_channels })
    }

    /// A copy whose parameters are constants (not tracked by autograd): a frozen network whose
    /// input gradient costs no parameter gradients. Use it in inference mode ([`Phi::features`],
    /// [`Phi::predict`]), as MFD does.
    pub fn frozen(&self) -> Phi {
        let stages = self.stages.iter().map(|stage| stage.iter().map(ConvNorm::frozen).collect()).collect();
        let head = Linear { weight: self.head.weight.detach(), bias: self.head.bias.detach() };
        Phi {
            stages,
            head,
            n_labels: self.n_labels,
            varmap: self.varmap.clone(),
            buffers: self.buffers.clone(),
            cfg: self.cfg.clone(),
            in_channels: self.in_channels,
        }
    }

    /// The tapped features in inference mode: each stage's pooled output, then the head as
    /// `[B, L, 1, 1]`.
    pub fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.features_mode(x, false)
    }

    /// The tapped features in train mode: batch norm normalises with the batch's statistics and
    /// updates its running ones.
    pub fn features_train(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.features_mode(x, true)
    }

    fn features_mode(&self, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        let mut h = x.clone();
        let mut taps = Vec::with_capacity(self.stages.len() + 1);
        for stage in &self.stages {
            for layer in stage {
                h = layer.forward(&h, train)?;
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

    /// The label regression output `[B, L]` in inference mode.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        head_of(self.features(x)?)
    }

    /// The label regression output `[B, L]` in train mode (a training step's forward).
    pub fn predict_train(&self, x: &Tensor) -> Result<Tensor> {
        head_of(self.features_train(x)?)
    }

    /// The running statistics by name (empty without batch norm).
    pub fn buffer_vars(&self) -> Vec<(String, Var)> {
        super::precond::named_vars(&self.buffers)
    }
}

fn head_of(mut taps: Vec<Tensor>) -> Result<Tensor> {
    let head = taps.pop().ok_or_else(|| crate::Error::msg("phi: no head"))?;
    Ok(head.flatten_from(1)?)
}

/// `ph(v) = sqrt(||v||^2 + eps^2) - eps` over the spatial dims of each channel, summed over
/// channels: `[B, C, H, W] -> [B]`.
pub fn pseudo_huber_per_channel(diff: &Tensor, eps: f64) -> Result<Tensor> {
    let (b, c, _, _) = diff.dims4()?;
    let sq = diff.sqr()?.flatten_from(2)?.sum(D::Minus1)?; // [B, C]
    let ph = ((sq + eps * eps)?.sqrt()? - eps)?;
    Ok(ph.reshape((b, c))?.sum(D::Minus1)?)
}

/// MFD(x, y) = sum over taps and channels of `ph(phi(x) - phi(y))`; `[B]`. phi runs in
/// inference mode (method.md 5): batch norm uses its running statistics and leaves them as they are.
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
mod tests;
