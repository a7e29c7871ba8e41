//! 2-D convolution (NCHW, OIHW weights).

use candle_core::{Module, Tensor};

use super::kernels::{cpu, cpu_kernels_for, portable};
use super::ParamBuilder;
use crate::Result;

#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
    /// Let the CPU kernel use Winograd F(2x2, 3x3) where it applies. Its results differ from a
    /// direct convolution by rounding, position by position within a tile, so equal inputs no
    /// longer give bit-equal outputs: off for networks whose max-pooling must break ties as
    /// PyTorch does (LPIPS, phi, the feature nets), on for the UNet.
    pub winograd: bool,
}

impl Conv2d {
    /// PyTorch-default init: U(+-1/sqrt(fan_in)) for weight and bias; `init_scale` multiplies the
    /// weight bound (0 gives a zero-initialised layer, as EDM does for some output convs).
    pub fn new(pb: &ParamBuilder, cin: usize, cout: usize, k: usize, stride: usize, padding: usize, init_scale: f64) -> Result<Self> {
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        let weight = pb.uniform("weight", &[cout, cin, k, k], bound * init_scale)?;
        let bias = Some(pb.uniform("bias", &[cout], bound * init_scale)?);
        Ok(Conv2d { weight, bias, stride, padding, winograd: false })
    }

    /// This layer with Winograd allowed (see the field).
    pub fn with_winograd(mut self) -> Self {
        self.winograd = true;
        self
    }

    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Self {
        Conv2d { weight, bias, stride, padding, winograd: false }
    }
}

impl Conv2d {
    /// `conv(x) + bias + shift`, then ReLU when `relu`. `shift` is `[B, O]`, one value per sample
    /// and output channel (a noise embedding); on CPU both are fused into the convolution.
    pub fn forward_fused(&self, x: &Tensor, shift: Option<&Tensor>, relu: bool) -> candle_core::Result<Tensor> {
        let o = self.weight.dim(0)?;
        let bias = match (&self.bias, shift) {
            (Some(b), Some(s)) => Some(s.broadcast_add(&b.reshape((1, o))?)?),
            (None, Some(s)) => Some(s.clone()),
            (b, None) => b.clone(),
        };
        if super::precision::lowered(x) {
            let y = super::precision::product(x, &self.weight, |x, w| self.conv(x, w))?;
            return portable::bias_act(y, bias.as_ref(), relu);
        }
        if cpu_kernels_for(x) {
            let y = cpu::conv::conv2d_fused(x, &self.weight, bias.as_ref(), self.stride, self.padding, relu, self.winograd)?;
            return count_flops(y, &self.weight);
        }
        portable::conv2d(x, &self.weight, bias.as_ref(), self.stride, self.padding, relu)
    }

    /// `conv(x, w)` alone (no bias) by the CPU kernel where it applies, else candle's.
    fn conv(&self, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        if cpu_kernels_for(x) {
            return count_flops(cpu::conv::conv2d_fused(x, w, None, self.stride, self.padding, false, self.winograd)?, w);
        }
        x.conv2d(w, self.padding, self.stride, 1, 1)
    }

    /// This convolution followed by a per-output-channel affine map `y * scale + shift` (an
    /// eval-mode BatchNorm), folded into the weights and bias.
    pub fn fold_affine(&self, scale: &Tensor, shift: &Tensor) -> candle_core::Result<Conv2d> {
        let o = self.weight.dim(0)?;
        let weight = self.weight.broadcast_mul(&scale.reshape((o, 1, 1, 1))?)?;
        let bias = match &self.bias {
            Some(b) => (b * scale)?.add(shift)?,
            None => shift.clone(),
        };
        Ok(Conv2d { weight, bias: Some(bias), stride: self.stride, padding: self.padding, winograd: self.winograd })
    }
}

/// The CPU kernel's products behind `y = conv(x, w)`, counted as a direct convolution's (also
/// under Winograd); returns `y`.
fn count_flops(y: Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let ((b, o, ho, wo), (_, c, k, _)) = (y.dims4()?, w.dims4()?);
    super::flops::add_matmul(b * ho * wo, o, c * k * k);
    Ok(y)
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_fused(x, None, false)
    }
}
