//! Cross-backend parity checks: cases that run a layer on some inputs, and the comparison of
//! two runs of a case (value, and the gradient of `sum(y * r)` for a fixed random `r` with
//! respect to every input). The unit tests compare the CPU kernels with the portable kernels on
//! the CPU (the path CUDA takes); `tests/cuda.rs` compares CPU with CUDA.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::VarMap;

use super::kernels::Act;
use super::{bilinear, fused, pool, resample, Conv2d, Ctx, Dropout, GroupNorm, Linear, ParamBuilder, SelfAttention};

/// What a case runs: its inputs on a device, to its output there.
pub type CaseFn = Box<dyn Fn(&[Tensor], &Device) -> Tensor>;

/// A layer (or network) applied to inputs. `f` builds what it needs on the device it is given,
/// from fixed seeds drawn on the host, so every device sees the same weights.
pub struct Case {
    pub name: String,
    /// Inputs on the CPU; each run moves them to its device.
    pub inputs: Vec<Tensor>,
    /// Largest relative difference allowed between two backends (0: bit-equal).
    pub tol: f64,
    pub f: CaseFn,
}

impl Case {
    pub fn new(name: impl Into<String>, inputs: Vec<Tensor>, tol: f64, f: impl Fn(&[Tensor], &Device) -> Tensor + 'static) -> Case {
        Case { name: name.into(), inputs, tol, f: Box::new(f) }
    }
}

/// One run of a case, on the host: the output and each input's gradient.
pub struct Outputs {
    pub value: Vec<f32>,
    pub grads: Vec<Vec<f32>>,
}

pub fn host(t: &Tensor) -> Vec<f32> {
    t.to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .unwrap_or_default()
}

/// Standard normal values from the stream `seed` (on the CPU).
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = crate::rng::stream(seed, "parity");
    let n = shape.iter().product();
    Tensor::from_vec(crate::rng::normal_vec(&mut rng, n), shape, &Device::Cpu).expect("a host tensor")
}

/// Small integers with a constant top half (NCHW): max-pool windows full of exact ties, as on
/// MNIST's flat background.
pub fn tied(shape: &[usize], seed: u64) -> Tensor {
    let x = (randn(shape, seed) * 1.5).and_then(|t| t.round()).and_then(|t| t.clamp(-1.0, 2.0)).expect("host ops");
    let h = shape[2];
    let flat = x.narrow(2, 0, h / 2).and_then(|t| t.zeros_like()).expect("host ops");
    Tensor::cat(&[&flat, &x.narrow(2, h / 2, h - h / 2).expect("host ops")], 2).expect("host ops")
}

/// Runs `case` on `dev`.
pub fn run(case: &Case, dev: &Device) -> crate::Result<Outputs> {
    let vars: Vec<Var> = case.inputs.iter().map(|t| Var::from_tensor(&t.to_device(dev)?)).collect::<candle_core::Result<_>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = (case.f)(&ts, dev);
    let r = randn(y.dims(), 99).to_device(dev)?.to_dtype(y.dtype())?;
    let grads = (&y * &r)?.sum_all()?.backward()?;
    let grads = vars.iter().map(|v| grads.get(v.as_tensor()).map(host).unwrap_or_default()).collect();
    Ok(Outputs { value: host(&y), grads })
}

/// `max |a - b| / max(1, max |a|)`.
pub fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let scale = a.iter().fold(1f64, |m, v| m.max(v.abs() as f64));
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs())) / scale
}

/// The largest relative differences of the values and of the gradients of two runs.
pub fn differences(a: &Outputs, b: &Outputs) -> (f64, f64) {
    let dg = a.grads.iter().zip(&b.grads).map(|(x, y)| rel_diff(x, y)).fold(0f64, f64::max);
    (rel_diff(&a.value, &b.value), if a.grads.len() == b.grads.len() { dg } else { f64::INFINITY })
}

fn params(seed: u64) -> (VarMap, rand_chacha::ChaCha8Rng) {
    (VarMap::new(), crate::rng::stream(seed, "parity-params"))
}

fn conv_case(cin: usize, cout: usize, k: usize, s: usize, p: usize, hw: usize, seed: u64) -> Case {
    let name = format!("conv {k}x{k} s{s} p{p} {cin}->{cout}");
    Case::new(name, vec![randn(&[4, cin, hw, hw], seed)], 1e-5, move |t, dev| {
        let (vm, rng) = params(seed);
        let c = Conv2d::new(&ParamBuilder::new(&vm, rng, dev, DType::F32), cin, cout, k, s, p, 1.0).expect("conv");
        c.forward(&t[0]).expect("conv forward")
    })
}

/// Every layer of `nn` on a gradient path, max-pools on tied inputs.
pub fn layer_cases() -> Vec<Case> {
    let mut cases = vec![conv_case(16, 16, 3, 1, 1, 12, 1), conv_case(8, 16, 3, 2, 1, 13, 2), conv_case(8, 4, 1, 1, 0, 6, 3)];
    cases.push(Case::new("conv + shift + relu", vec![randn(&[3, 8, 8, 8], 4), randn(&[3, 8], 5)], 1e-5, |t, dev| {
        let (vm, rng) = params(4);
        let c = Conv2d::new(&ParamBuilder::new(&vm, rng, dev, DType::F32), 8, 8, 3, 1, 1, 1.0).expect("conv");
        c.forward_fused(&t[0], Some(&t[1]), true).expect("conv forward")
    }));
    for act in [Act::Identity, Act::Silu, Act::Relu] {
        cases.push(Case::new(format!("group norm + {act:?}"), vec![randn(&[4, 16, 7, 7], 6)], 1e-5, move |t, dev| {
            let (vm, rng) = params(6);
            let gn = GroupNorm::new(&ParamBuilder::new(&vm, rng, dev, DType::F32), 16, 4).expect("group norm");
            gn.forward_act(&t[0], act).expect("group norm forward")
        }));
    }
    cases.push(Case::new("linear 32->24", vec![randn(&[5, 32], 7)], 1e-5, |t, dev| {
        let (vm, rng) = params(7);
        Linear::new(&ParamBuilder::new(&vm, rng, dev, DType::F32), 32, 24, 1.0).and_then(|l| Ok(l.forward(&t[0])?)).expect("linear")
    }));
    cases.push(Case::new("self-attention 16 ch, 2 heads", vec![randn(&[2, 16, 6, 6], 8)], 1e-5, |t, dev| {
        let (vm, rng) = params(8);
        SelfAttention::new(&ParamBuilder::new(&vm, rng, dev, DType::F32), 16, 4, 2).and_then(|a| Ok(a.forward(&t[0])?)).expect("attention")
    }));
    cases.push(Case::new("dropout (train)", vec![randn(&[4, 8, 5, 5], 9)], 0.0, |t, _| {
        Dropout::new(0.3, 7).forward(&t[0], &Ctx::train(11)).expect("dropout")
    }));
    cases.extend(resampling_cases());
    cases
}

fn resampling_cases() -> Vec<Case> {
    let mut cases = vec![
        Case::new("upsample 2x", vec![randn(&[2, 4, 5, 7], 10)], 1e-6, |t, _| resample::upsample_nearest2x(&t[0]).expect("upsample")),
        Case::new("residual join (a + b) s", vec![randn(&[2, 8, 6, 6], 11), randn(&[2, 8, 6, 6], 12)], 1e-6, |t, _| {
            fused::add_scaled(&t[0], &t[1], std::f64::consts::FRAC_1_SQRT_2).expect("join")
        }),
        Case::new("skip concatenation", vec![randn(&[2, 8, 6, 6], 13), randn(&[2, 4, 6, 6], 14)], 0.0, |t, _| {
            fused::cat_channels(&t[0], &t[1]).expect("concat")
        }),
        Case::new("bilinear 28 -> 64", vec![randn(&[2, 3, 28, 28], 15)], 1e-5, |t, _| {
            bilinear::resize_bilinear(&t[0], 64, 64).expect("resize")
        }),
        Case::new("bilinear 32 -> 20", vec![randn(&[2, 3, 32, 32], 16)], 1e-5, |t, _| {
            bilinear::resize_bilinear(&t[0], 20, 20).expect("resize")
        }),
    ];
    for (h, w) in [(8, 8), (7, 9)] {
        let x = tied(&[2, 3, h, w], h as u64);
        cases.push(Case::new(format!("max-pool 2x2, ties, {h}x{w}"), vec![x.clone()], 0.0, |t, _| {
            resample::max_pool2x(&t[0]).expect("pool")
        }));
        for (k, s) in [(3, 2), (2, 2), (3, 1)] {
            // overlapping windows add their gradients in another order: rounding only
            cases.push(Case::new(format!("max-pool k{k} s{s}, ties, {h}x{w}"), vec![x.clone()], 1e-6, move |t, _| {
                pool::max_pool2d(&t[0], k, s).expect("pool")
            }));
        }
    }
    cases
}

/// Runs every case with the CPU kernels and with the portable kernels (on the CPU) and returns
/// the cases beyond their tolerance, with their differences.
pub fn portable_disagreements(cases: &[Case]) -> Vec<String> {
    let mut bad = Vec::new();
    for case in cases {
        let kernels = run(case, &Device::Cpu).expect("a CPU run");
        let portable = super::kernels::with_portable_kernels(|| run(case, &Device::Cpu)).expect("a portable run");
        let (dv, dg) = differences(&kernels, &portable);
        if dv > case.tol || dg > case.tol {
            bad.push(format!("{}: value {dv:.3e}, gradient {dg:.3e} (tolerance {:.0e})", case.name, case.tol));
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portable_kernels_cuda_runs_give_the_cpu_kernels_values_and_gradients() {
        let bad = portable_disagreements(&layer_cases());
        assert!(bad.is_empty(), "portable kernels differ from the CPU kernels:\n  {}", bad.join("\n  "));
    }

    #[test]
    fn a_tie_routed_to_every_maximum_is_caught() {
        // candle's own max spreads a tied window's gradient: the comparison must see it
        let x = tied(&[1, 1, 4, 4], 1);
        let spread = Case::new("candle max", vec![x.clone()], 0.0, |t, _| {
            let (b, c, h, w) = t[0].dims4().unwrap();
            t[0].reshape((b, c, h / 2, 2, w / 2, 2)).unwrap().max(5).unwrap().max(3).unwrap()
        });
        let first = Case::new("first max", vec![x], 0.0, |t, _| resample::max_pool2x(&t[0]).unwrap());
        let (a, b) = (run(&spread, &Device::Cpu).unwrap(), run(&first, &Device::Cpu).unwrap());
        let (dv, dg) = differences(&a, &b);
        assert_eq!(dv, 0.0);
        assert!(dg > 0.1, "{dg}");
    }
}
