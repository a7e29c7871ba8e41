//! RAdam, exactly as PyTorch's `torch.optim.RAdam` (L2-style weight decay, i.e.
//! `decoupled_weight_decay=False`).
//!
//! Per parameter, at step `t` (1-based):
//! ```text
//! g   = grad + weight_decay * p
//! m   = m + (1 - b1) * (g - m)                    (torch's lerp)
//! v   = b2 * v + (1 - b2) * g^2
//! rho_inf = 2 / (1 - b2) - 1
//! rho_t   = rho_inf - 2 t b2^t / (1 - b2^t)
//! m_hat   = m / (1 - b1^t)
//! rho_t > 5:  p -= m_hat * lr * sqrt(1 - b2^t) / (sqrt(v) + eps) * rect
//!             rect = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))
//! otherwise:  p -= m_hat * lr
//! ```
//! Scalar factors are computed in f64 and applied to the tensors once.
//!
//! One difference from torch: torch counts steps per parameter, here one `step_count` is shared
//! by all parameters. They agree whenever every parameter gets a gradient at every step (the
//! case in this workbench); a parameter without a gradient is skipped and its moments are left
//! untouched.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Hyper-parameters of [`RAdam`]; defaults are torch's, except `lr = 1e-4` (the ECT default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RAdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 penalty added to the gradient (torch's `decoupled_weight_decay=False`).
    pub weight_decay: f64,
}

impl Default for RAdamConfig {
    fn default() -> Self {
        Self { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl RAdamConfig {
    /// Checks the ranges torch checks: `lr >= 0`, `eps >= 0`, betas in `[0, 1)`,
    /// `weight_decay >= 0`, all finite.
    pub fn validate(&self) -> Result<()> {
        let finite = [self.lr, self.beta1, self.beta2, self.eps, self.weight_decay].iter().all(|x| x.is_finite());
        if !finite {
            return Err(Error::msg(format!("RAdam: non-finite hyper-parameter in {self:?}")));
        }
        if self.lr < 0.0 {
            return Err(Error::msg(format!("RAdam: invalid learning rate {}", self.lr)));
        }
        if self.eps < 0.0 {
            return Err(Error::msg(format!("RAdam: invalid eps {}", self.eps)));
        }
        if !(0.0..1.0).contains(&self.beta1) {
            return Err(Error::msg(format!("RAdam: invalid beta1 {} (want [0, 1))", self.beta1)));
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return Err(Error::msg(format!("RAdam: invalid beta2 {} (want [0, 1))", self.beta2)));
        }
        if self.weight_decay < 0.0 {
            return Err(Error::msg(format!("RAdam: invalid weight_decay {}", self.weight_decay)));
        }
        Ok(())
    }
}

/// One optimised parameter and its moments.
#[derive(Debug, Clone)]
pub struct ParamState {
    pub name: String,
    pub var: Var,
    /// First moment (`exp_avg`), same shape and dtype as the parameter.
    pub m: Tensor,
    /// Second moment (`exp_avg_sq`), same shape and dtype as the parameter.
    pub v: Tensor,
}

/// The RAdam optimiser over a list of named variables.
#[derive(Debug, Clone)]
pub struct RAdam {
    pub cfg: RAdamConfig,
    /// Number of steps taken so far (torch's `step`); the next step uses `step_count + 1`.
    pub step_count: u64,
    pub params: Vec<ParamState>,
}

/// Name of the first-moment tensor of a parameter in a checkpoint.
pub fn m_name(param: &str) -> String {
    format!("opt.m.{param}")
}

/// Name of the second-moment tensor of a parameter in a checkpoint.
pub fn v_name(param: &str) -> String {
    format!("opt.v.{param}")
}

impl RAdam {
    /// Zero moments for every parameter. Names must be unique and parameters floating point.
    pub fn new(params: Vec<(String, Var)>, cfg: RAdamConfig) -> Result<Self> {
        cfg.validate()?;
        let mut seen = std::collections::HashSet::new();
        let mut states = Vec::with_capacity(params.len());
        for (name, var) in params {
            if !seen.insert(name.clone()) {
                return Err(Error::msg(format!("RAdam: parameter `{name}` given twice")));
            }
            if !var.dtype().is_float() {
                return Err(Error::msg(format!("RAdam: parameter `{name}` has non-float dtype {:?}", var.dtype())));
            }
            let m = var.as_tensor().zeros_like()?;
            let v = var.as_tensor().zeros_like()?;
            states.push(ParamState { name, var, m, v });
        }
        Ok(Self { cfg, step_count: 0, params: states })
    }

    /// Every variable of a var map, named as in the map, sorted by name.
    pub fn from_varmap(varmap: &candle_nn::VarMap, cfg: RAdamConfig) -> Result<Self> {
        let mut params: Vec<(String, Var)> = {
            let data = varmap.data().lock().unwrap_or_else(|p| p.into_inner());
            data.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
        };
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Self::new(params, cfg)
    }

    pub fn lr(&self) -> f64 {
        self.cfg.lr
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// One optimisation step with the gradients in `grads`. Variables without a gradient are
    /// skipped (parameter and moments untouched); the step count always advances.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let t = self.step_count + 1;
        let RAdamConfig { lr, beta1: b1, beta2: b2, eps, weight_decay } = self.cfg;
        // Scalar factors, in f64. Exponents beyond i32 saturate: b^t is 0 long before then.
        let ti = i32::try_from(t).unwrap_or(i32::MAX);
        let bc1 = 1.0 - b1.powi(ti);
        let bc2 = 1.0 - b2.powi(ti);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * (t as f64) * b2.powi(ti) / bc2;
        let rectified = rho_t > 5.0;
        let rect =
            if rectified { ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).sqrt() } else { 1.0 };

        for p in self.params.iter_mut() {
            let Some(grad) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            let param = p.var.as_tensor();
            if grad.shape() != param.shape() {
                return Err(Error::msg(format!(
                    "RAdam: gradient of `{}` has shape {:?}, parameter {:?}",
                    p.name,
                    grad.dims(),
                    param.dims()
                )));
            }
            let grad = grad.to_dtype(param.dtype())?;
            let g = if weight_decay != 0.0 { (grad + param.affine(weight_decay, 0.0)?)? } else { grad };
            // m.lerp_(g, 1 - b1)  ==  m + (1 - b1) * (g - m)
            let m = (&p.m + (&g - &p.m)?.affine(1.0 - b1, 0.0)?)?;
            // v.mul_(b2).addcmul_(g, g, 1 - b2)
            let v = (p.v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
            let update = if rectified {
                let denom = v.sqrt()?.affine(1.0, eps)?;
                m.affine(lr * rect * bc2.sqrt() / bc1, 0.0)?.div(&denom)?
            } else {
                m.affine(lr / bc1, 0.0)?
            };
            let new_param = (param - update)?;
            p.var.set(&new_param)?;
            p.m = m;
            p.v = v;
        }
        self.step_count = t;
        Ok(())
    }

    /// The moments, named `opt.m.<param>` and `opt.v.<param>`, in parameter order.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for p in &self.params {
            out.push((m_name(&p.name), p.m.clone()));
            out.push((v_name(&p.name), p.v.clone()));
        }
        out
    }

    /// Restores the moments (from tensors named as in [`RAdam::state_tensors`]; other tensors
    /// are ignored) and the step count. Nothing is changed if any tensor is missing or has the
    /// wrong shape; the error names the tensor.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step_count: u64) -> Result<()> {
        let mut loaded = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let shape = p.var.shape();
            let get = |name: String| -> Result<Tensor> {
                let t = tensors.get(&name).ok_or_else(|| Error::msg(format!("optimiser state: tensor `{name}` is missing")))?;
                if t.shape() != shape {
                    return Err(Error::msg(format!(
                        "optimiser state: tensor `{name}` has shape {:?}, expected {:?}",
                        t.dims(),
                        shape.dims()
                    )));
                }
                Ok(t.to_dtype(p.var.dtype())?.to_device(p.var.device())?)
            };
            let m = get(m_name(&p.name))?;
            let v = get(v_name(&p.name))?;
            loaded.push((m, v));
        }
        for (p, (m, v)) in self.params.iter_mut().zip(loaded) {
            p.m = m;
            p.v = v;
        }
        self.step_count = step_count;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Loss `sum(a p^2 + b p)`, gradient `2 a p + b`, as in the NumPy reference.
    fn grads_for(p: &Var) -> GradStore {
        let dev = Device::Cpu;
        let a = Tensor::new(&[0.5f32, 1.5], &dev).unwrap();
        let b = Tensor::new(&[0.3f32, -0.2], &dev).unwrap();
        let x = p.as_tensor();
        let loss = ((x.sqr().unwrap() * &a).unwrap() + (x * &b).unwrap()).unwrap().sum_all().unwrap();
        loss.backward().unwrap()
    }

    fn param() -> Var {
        Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap()
    }

    fn vec(t: &Tensor) -> Vec<f32> {
        t.to_vec1::<f32>().unwrap()
    }

    fn close(got: &[f32], want: [f64; 2], what: &str) {
        for (g, w) in got.iter().zip(want) {
            let tol = 2e-6 * w.abs().max(1e-2);
            assert!((*g as f64 - w).abs() <= tol, "{what}: got {got:?}, want {want:?}");
        }
    }

    // Produced by a NumPy re-implementation of torch's `_single_tensor_radam`, in f32, run while
    // writing this. Default betas: rho_t = 4.996 at t = 5 (unrectified), 5.994 at t = 6 (rectified).
    // The script (python3, numpy):
    //     # Re-implementation of torch.optim.RAdam (_single_tensor_radam, decoupled_weight_decay=False)
    //     # on the loss sum(a*p^2 + b*p), grad = 2*a*p + b.
    //     import numpy as np
    //     def run(lr, wd, steps, b1=0.9, b2=0.999, eps=1e-8):
    //         a = np.array([0.5, 1.5], np.float32); b = np.array([0.3, -0.2], np.float32)
    //         p = np.array([1.0, -2.0], np.float32)
    //         m = np.zeros(2, np.float32); v = np.zeros(2, np.float32)
    //         out = []
    //         for t in range(1, steps + 1):
    //             g = (2 * a * p + b).astype(np.float32)
    //             if wd != 0: g = g + p * np.float32(wd)
    //             m = m + np.float32(1 - b1) * (g - m)
    //             v = v * np.float32(b2) + np.float32(1 - b2) * g * g
    //             bc1 = 1 - b1 ** t; bc2 = 1 - b2 ** t
    //             rho_inf = 2 / (1 - b2) - 1
    //             rho_t = rho_inf - 2 * t * (b2 ** t) / bc2
    //             mhat = m / np.float32(bc1)
    //             if rho_t > 5:
    //                 rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    //                 adapt = np.float32(bc2 ** 0.5) / (np.sqrt(v) + np.float32(eps))
    //                 p = p - mhat * np.float32(lr) * adapt * np.float32(rect)
    //             else:
    //                 p = p - mhat * np.float32(lr)
    //             out.append((t, rho_t, p.copy(), m.copy(), v.copy()))
    //         return out
    //     for lr, wd in [(0.1, 0.0), (0.05, 0.1)]:
    //         print(f"# lr={lr} wd={wd}")
    //         for t, rho, p, m, v in run(lr, wd, 8):
    //             print(f"t={t} rho_t={rho:.6f} p=[{p[0]:.9e}, {p[1]:.9e}] m=[{m[0]:.9e}, {m[1]:.9e}] v=[{v[0]:.9e}, {v[1]:.9e}]")
    /// (t, param, m, v) after step t.
    type RefRow = (u64, [f64; 2], [f64; 2], [f64; 2]);

    const REF_LR01: [RefRow; 8] = [
        (1, [8.700000048e-01, -1.379999995e+00], [1.299999952e-01, -6.200000048e-01], [1.689999946e-03, 3.844000027e-02]),
        (2, [7.468420863e-01, -8.578947186e-01], [2.339999974e-01, -9.919999838e-01], [3.057210241e-03, 5.723715574e-02]),
        (3, [6.305010319e-01, -4.260982573e-01], [3.152842224e-01, -1.170168400e+00], [4.150031600e-03, 6.487324834e-02]),
        (4, [5.209325552e-01, -7.687431574e-02], [3.768059015e-01, -1.200981021e+00], [5.011714064e-03, 6.699372828e-02]),
        (5, [4.180733860e-01, 1.975866854e-01], [4.212185740e-01, -1.123945236e+00], [5.680632778e-03, 6.711217016e-02]),
        (6, [4.156301618e-01, 1.991856843e-01], [4.509040415e-01, -9.722747207e-01], [6.190581713e-03, 6.719931215e-02]),
        (7, [4.125719070e-01, 2.008737922e-01], [4.773766398e-01, -8.352915049e-01], [6.696517579e-03, 6.729016453e-02]),
        (8, [4.089863002e-01, 2.025383562e-01], [5.008961558e-01, -7.115002275e-01], [7.197580300e-03, 6.738498062e-02]),
    ];

    // Same, lr = 0.05 and weight_decay = 0.1 (parameter only).
    const REF_WD: [(u64, [f64; 2]); 8] = [
        (1, [9.300000072e-01, -1.680000067e+00]),
        (2, [8.620263338e-01, -1.386105299e+00]),
        (3, [7.961051464e-01, -1.117689610e+00]),
        (4, [7.322587967e-01, -8.740409613e-01]),
        (5, [6.705057025e-01, -6.543654203e-01]),
        (6, [6.692444086e-01, -6.532168388e-01]),
        (7, [6.676532626e-01, -6.518039703e-01]),
        (8, [6.657771468e-01, -6.501696110e-01]),
    ];

    #[test]
    fn matches_torch_reference_across_rectification_threshold() {
        let p = param();
        let cfg = RAdamConfig { lr: 0.1, ..Default::default() };
        let mut opt = RAdam::new(vec![("w".into(), p.clone())], cfg).unwrap();
        for (t, want_p, want_m, want_v) in REF_LR01 {
            let g = grads_for(&p);
            opt.step(&g).unwrap();
            assert_eq!(opt.step_count, t);
            close(&vec(p.as_tensor()), want_p, &format!("param at t={t}"));
            close(&vec(&opt.params[0].m), want_m, &format!("m at t={t}"));
            close(&vec(&opt.params[0].v), want_v, &format!("v at t={t}"));
        }
    }

    #[test]
    fn hand_computed_first_steps() {
        // t = 1: g = [1.3, -6.2]; m = 0.1 g; m_hat = g; rho_1 = 1 -> p -= lr * g.
        let p = param();
        let cfg = RAdamConfig { lr: 0.1, ..Default::default() };
        let mut opt = RAdam::new(vec![("w".into(), p.clone())], cfg).unwrap();
        opt.step(&grads_for(&p)).unwrap();
        close(&vec(p.as_tensor()), [1.0 - 0.13, -2.0 + 0.62], "t=1");
        close(&vec(&opt.params[0].m), [0.13, -0.62], "m t=1");
        close(&vec(&opt.params[0].v), [0.001 * 1.69, 0.001 * 38.44], "v t=1");
    }

    #[test]
    fn rho_threshold_is_between_steps_5_and_6() {
        let b2: f64 = 0.999;
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho = |t: i32| rho_inf - 2.0 * t as f64 * b2.powi(t) / (1.0 - b2.powi(t));
        assert!(rho(5) <= 5.0);
        assert!(rho(6) > 5.0);
    }

    #[test]
    fn weight_decay_is_added_to_gradient() {
        let p = param();
        let cfg = RAdamConfig { lr: 0.05, weight_decay: 0.1, ..Default::default() };
        let mut opt = RAdam::new(vec![("w".into(), p.clone())], cfg).unwrap();
        for (t, want_p) in REF_WD {
            opt.step(&grads_for(&p)).unwrap();
            close(&vec(p.as_tensor()), want_p, &format!("param at t={t}"));
        }
    }

    #[test]
    fn var_without_gradient_is_skipped() {
        let p = param();
        let q = Var::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let cfg = RAdamConfig { lr: 0.1, ..Default::default() };
        let mut opt = RAdam::new(vec![("w".into(), p.clone()), ("q".into(), q.clone())], cfg).unwrap();
        opt.step(&grads_for(&p)).unwrap();
        assert_eq!(vec(q.as_tensor()), vec![3.0, 4.0]);
        assert_eq!(vec(&opt.params[1].m), vec![0.0, 0.0]);
        assert_eq!(vec(&opt.params[1].v), vec![0.0, 0.0]);
        close(&vec(p.as_tensor()), REF_LR01[0].1, "w still updated");
    }

    #[test]
    fn save_load_continue_is_bit_exact() {
        let cfg = RAdamConfig { lr: 0.1, weight_decay: 0.01, ..Default::default() };
        // Uninterrupted: 10 steps.
        let p = param();
        let mut opt = RAdam::new(vec![("w".into(), p.clone())], cfg).unwrap();
        for _ in 0..10 {
            opt.step(&grads_for(&p)).unwrap();
        }
        // Interrupted after 4 steps (below the threshold), state copied through a fresh optimiser.
        let p2 = param();
        let mut opt2 = RAdam::new(vec![("w".into(), p2.clone())], cfg).unwrap();
        for _ in 0..4 {
            opt2.step(&grads_for(&p2)).unwrap();
        }
        let saved: HashMap<String, Tensor> = opt2.state_tensors().into_iter().map(|(n, t)| (n, t.copy().unwrap())).collect();
        assert!(saved.contains_key("opt.m.w") && saved.contains_key("opt.v.w"));
        let saved_p = p2.as_tensor().copy().unwrap();
        let steps = opt2.step_count;
        drop(opt2);
        let p3 = Var::from_tensor(&saved_p).unwrap();
        let mut opt3 = RAdam::new(vec![("w".into(), p3.clone())], cfg).unwrap();
        opt3.load_state(&saved, steps).unwrap();
        for _ in 0..6 {
            opt3.step(&grads_for(&p3)).unwrap();
        }
        assert_eq!(opt3.step_count, 10);
        let bits = |t: &Tensor| vec(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(p.as_tensor()), bits(p3.as_tensor()));
        assert_eq!(bits(&opt.params[0].m), bits(&opt3.params[0].m));
        assert_eq!(bits(&opt.params[0].v), bits(&opt3.params[0].v));
    }

    #[test]
    fn load_state_errors_name_the_tensor() {
        let p = param();
        let mut opt = RAdam::new(vec![("w".into(), p)], RAdamConfig::default()).unwrap();
        let mut tensors = HashMap::new();
        tensors.insert("opt.m.w".to_string(), Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap());
        let e = opt.load_state(&tensors, 3).unwrap_err().to_string();
        assert!(e.contains("opt.v.w"), "{e}");
        tensors.insert("opt.v.w".to_string(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        let e = opt.load_state(&tensors, 3).unwrap_err().to_string();
        assert!(e.contains("opt.v.w") && e.contains("shape"), "{e}");
        assert_eq!(opt.step_count, 0, "failed load changes nothing");
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: RAdamConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, RAdamConfig::default());
        assert_eq!(c.lr, 1e-4);
        assert!(RAdamConfig { beta2: 1.0, ..c }.validate().is_err());
        assert!(RAdamConfig { lr: -1.0, ..c }.validate().is_err());
        let p = param();
        assert!(RAdam::new(vec![("w".into(), p.clone()), ("w".into(), p)], c).is_err());
    }
}
