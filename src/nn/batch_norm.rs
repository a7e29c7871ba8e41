//! Batch normalisation of `[B, C, H, W]`, as PyTorch's `BatchNorm2d` (momentum 0.1, eps 1e-5):
//! a learned per-channel scale (`weight`, gamma) and shift (`bias`, beta), and running mean and
//! variance buffers. Train mode normalises with the batch's statistics (biased variance) and
//! moves the running ones towards them (`running = (1 - momentum) running + momentum batch`,
//! with the unbiased variance); eval mode normalises with the running statistics. Both are
//! composite candle ops, so autograd differentiates them.
//!
//! The running statistics are not trained: they live in their own `VarMap` (the buffers' builder
//! of [`BatchNorm2d::new`]), which no optimizer is given and which the network's file saves.

use candle_core::{Tensor, Var};

use super::ParamBuilder;
use crate::Result;

#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Var,
    pub running_var: Var,
    pub momentum: f64,
    pub eps: f64,
}

impl BatchNorm2d {
    /// Gamma 1 and beta 0 in `params`; running mean 0 and variance 1 in `buffers`.
    pub fn new(params: &ParamBuilder, buffers: &ParamBuilder, channels: usize) -> Result<Self> {
        Ok(BatchNorm2d {
            weight: params.constant("weight", &[channels], 1.0)?,
            bias: params.constant("bias", &[channels], 0.0)?,
            running_mean: Var::from_tensor(&buffers.constant("running_mean", &[channels], 0.0)?)?,
            running_var: Var::from_tensor(&buffers.constant("running_var", &[channels], 1.0)?)?,
            momentum: 0.1,
            eps: 1e-5,
        })
    }

    /// Train mode (`train`) or eval mode.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if train {
            self.forward_train(x)
        } else {
            self.forward_eval(x)
        }
    }

    /// Normalises with the batch's mean and biased variance per channel, and updates the running
    /// statistics (their update is not part of the gradient).
    pub fn forward_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = b * h * w;
        if n < 2 {
            candle_core::bail!("batch norm in train mode needs more than one value per channel, got an input of [{b}, {c}, {h}, {w}]");
        }
        let mean = (x.sum_keepdim((0, 2, 3))? / n as f64)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = (centred.sqr()?.sum_keepdim((0, 2, 3))? / n as f64)?;
        let scale = (var.clone() + self.eps)?.sqrt()?.recip()?.broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?;
        let y = centred.broadcast_mul(&scale)?.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?;
        self.update_running(&mean.flatten_all()?.detach(), &var.flatten_all()?.detach(), n)?;
        Ok(y)
    }

    fn update_running(&self, mean: &Tensor, biased_var: &Tensor, n: usize) -> candle_core::Result<()> {
        let m = self.momentum;
        let unbiased = (biased_var * (n as f64 / (n - 1) as f64))?;
        let new_mean = ((self.running_mean.as_tensor().detach() * (1.0 - m))? + (mean * m)?)?;
        let new_var = ((self.running_var.as_tensor().detach() * (1.0 - m))? + (unbiased * m)?)?;
        self.running_mean.set(&new_mean)?;
        self.running_var.set(&new_var)
    }

    /// Eval mode as a per-channel affine map `y = x * scale + shift`:
    /// `scale = gamma / sqrt(running_var + eps)`, `shift = beta - running_mean * scale`, `[C]` each.
    pub fn scale_shift(&self) -> candle_core::Result<(Tensor, Tensor)> {
        let scale = (self.running_var.as_tensor().detach() + self.eps)?.sqrt()?.recip()?.mul(&self.weight)?;
        let shift = self.bias.sub(&self.running_mean.as_tensor().detach().mul(&scale)?)?;
        Ok((scale, shift))
    }

    /// Normalises with the running statistics; changes nothing.
    pub fn forward_eval(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        let (scale, shift) = self.scale_shift()?;
        x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?.broadcast_add(&shift.reshape((1, c, 1, 1))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, tests::randn};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn layer(weight: Tensor, bias: Tensor, running: Option<(&Tensor, &Tensor)>) -> BatchNorm2d {
        let c = weight.dim(0).unwrap();
        let (rm, rv) = match running {
            Some((m, v)) => (m.clone(), v.clone()),
            None => (Tensor::zeros(c, DType::F64, &Device::Cpu).unwrap(), Tensor::ones(c, DType::F64, &Device::Cpu).unwrap()),
        };
        BatchNorm2d {
            weight,
            bias,
            running_mean: Var::from_tensor(&rm).unwrap(),
            running_var: Var::from_tensor(&rv).unwrap(),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    fn values(t: &Tensor) -> Vec<f64> {
        t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    }

    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{what}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn train_and_eval_modes_match_hand_computed_values() {
        // [B=2, C=2, H=1, W=2]: channel 0 holds 1, 2, 3, 6 (mean 3, biased variance 3.5,
        // unbiased 14/3); channel 1 holds 0, 0, 4, 4 (mean 2, biased 4, unbiased 16/3).
        let x = Tensor::new(&[1.0f64, 2.0, 0.0, 0.0, 3.0, 6.0, 4.0, 4.0], &Device::Cpu).unwrap().reshape((2, 2, 1, 2)).unwrap();
        let gamma = Tensor::new(&[2.0f64, 0.5], &Device::Cpu).unwrap();
        let beta = Tensor::new(&[1.0f64, -1.0], &Device::Cpu).unwrap();
        let bn = layer(gamma, beta, None);
        let y = bn.forward_t(&x, true).unwrap();
        let (s0, s1) = (2.0 / (3.5f64 + 1e-5).sqrt(), 0.5 / (4.0f64 + 1e-5).sqrt());
        let want = [(1.0 - 3.0) * s0 + 1.0, (2.0 - 3.0) * s0 + 1.0, -2.0 * s1 - 1.0, -2.0 * s1 - 1.0];
        let want2 = [1.0, 3.0 * s0 + 1.0, 2.0 * s1 - 1.0, 2.0 * s1 - 1.0];
        assert_close(&values(&y), &[&want[..], &want2[..]].concat(), "train-mode output");
        // running = 0.9 * (0, 1) + 0.1 * (batch mean, unbiased variance)
        let (rm, rv) = ([0.3, 0.2], [0.9 + 0.1 * 14.0 / 3.0, 0.9 + 0.1 * 16.0 / 3.0]);
        assert_close(&values(bn.running_mean.as_tensor()), &rm, "running mean");
        assert_close(&values(bn.running_var.as_tensor()), &rv, "running variance");

        // eval mode: the running statistics, and no update
        let y = bn.forward_t(&x, false).unwrap();
        let (e0, e1) = (2.0 / (rv[0] + 1e-5).sqrt(), 0.5 / (rv[1] + 1e-5).sqrt());
        let xs = [1.0, 2.0, 0.0, 0.0, 3.0, 6.0, 4.0, 4.0];
        let want: Vec<f64> =
            xs.iter().enumerate().map(|(i, v)| if (i / 2) % 2 == 0 { (v - rm[0]) * e0 + 1.0 } else { (v - rm[1]) * e1 - 1.0 }).collect();
        assert_close(&values(&y), &want, "eval-mode output");
        assert_close(&values(bn.running_mean.as_tensor()), &rm, "eval mode leaves the running mean");
        assert_close(&values(bn.running_var.as_tensor()), &rv, "eval mode leaves the running variance");

        // a second train step moves the running mean by another tenth
        bn.forward_t(&x, true).unwrap();
        assert_close(&values(bn.running_mean.as_tensor()), &[0.9 * 0.3 + 0.3, 0.9 * 0.2 + 0.2], "second update");
        // one value per channel cannot be normalised by its batch
        let one = Tensor::ones((1, 2, 1, 1), DType::F64, &Device::Cpu).unwrap();
        assert!(bn.forward_train(&one).unwrap_err().to_string().contains("more than one value per channel"));
    }

    #[test]
    fn gradients_match_finite_differences_in_both_modes() {
        let x = randn(&[3, 4, 3, 2], 31);
        let gamma = randn(&[4], 32);
        let beta = randn(&[4], 33);
        let rm = randn(&[4], 34);
        let rv = (randn(&[4], 35).sqr().unwrap() + 0.5).unwrap();
        for train in [true, false] {
            let f = |ts: &[Tensor]| layer(ts[1].clone(), ts[2].clone(), Some((&rm, &rv))).forward_t(&ts[0], train);
            let g = check(&f, &[x.clone(), gamma.clone(), beta.clone()], 40, 1e-5, 36).unwrap();
            assert!(g.probes > 0 && g.max_err < 1e-6, "batch norm (train {train}): max relative error {}", g.max_err);
        }
    }

    #[test]
    fn running_statistics_live_in_the_buffers_map_not_the_parameters() {
        let (params, buffers) = (VarMap::new(), VarMap::new());
        let pb = ParamBuilder::new(&params, crate::rng::stream(0, "t"), &Device::Cpu, DType::F32);
        let bb = ParamBuilder::new(&buffers, crate::rng::stream(0, "t"), &Device::Cpu, DType::F32);
        let bn = BatchNorm2d::new(&pb.pp("bn"), &bb.pp("bn"), 3).unwrap();
        let names = |m: &VarMap| {
            let mut v: Vec<String> = m.data().lock().unwrap().keys().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(names(&params), ["bn.bias", "bn.weight"]);
        assert_eq!(names(&buffers), ["bn.running_mean", "bn.running_var"]);
        // an update through the layer is seen in the map that is saved
        let x = Tensor::randn(0f32, 1.0, (2, 3, 2, 2), &Device::Cpu).unwrap();
        bn.forward_train(&x).unwrap();
        let stored = buffers.data().lock().unwrap()["bn.running_mean"].as_tensor().to_vec1::<f32>().unwrap();
        assert!(stored.iter().all(|v| *v != 0.0), "{stored:?}");
    }
}
