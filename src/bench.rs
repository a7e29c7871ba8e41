//! `ayt bench`: throughput of the two hot paths on a device (CPU or CUDA), with exactly the architectures of
//! scripts/torch_reference.py so the numbers can be set beside PyTorch's (scripts/bench_vs_torch.py):
//! the consistency-training step of the benchmark UNet, and the frozen feature net's two forwards
//! plus the gradient with respect to its input. Prints img/s, achieved GFLOP/s (convolution and
//! linear FLOPs, counted) and the peak resident memory of the case.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::Rng;

use crate::model::unet::EmbMode;
use crate::model::{Denoiser, FeatNet, FeatNetConfig, FeatNorm, UNetConfig};
use crate::nn::{flops, Ctx, ParamBuilder};
use crate::train::{loss, RAdam, RAdamConfig};
use crate::Result;

pub const SIGMA_DATA: f64 = 0.5;
pub const SIGMA_MIN: f64 = 0.002;

/// The UNet of torch_reference.py: channels 32/64, two blocks per level, emb 128, 16 frequencies,
/// GroupNorm(8), the shift embedding.
pub fn bench_unet_config() -> UNetConfig {
    UNetConfig { emb_mode: EmbMode::Shift, ..UNetConfig::default() }
}

/// The feature net of torch_reference.py.
pub fn bench_featnet_config(batch_norm: bool) -> FeatNetConfig {
    FeatNetConfig { norm: if batch_norm { FeatNorm::BatchEval } else { FeatNorm::Group(8) }, ..FeatNetConfig::default() }
}

/// Peak resident set size of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak-RSS mark to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn karras(n: usize) -> Vec<f64> {
    let (smin, smax, rho) = (SIGMA_MIN, 80.0f64, 7.0);
    (0..n)
        .map(|i| {
            let t = i as f64 / (n - 1) as f64;
            (smin.powf(1.0 / rho) + t * (smax.powf(1.0 / rho) - smin.powf(1.0 / rho))).powf(rho)
        })
        .collect()
}

/// Times of one UNet case, in milliseconds (medians over the timed steps).
#[derive(Clone, Debug)]
pub struct UnetTiming {
    pub batch: usize,
    pub params: usize,
    pub step_ms: f64,
    pub min_ms: f64,
    pub fwd1_ms: f64,
    pub fwd2_ms: f64,
    pub bwd_ms: f64,
    pub opt_ms: f64,
    pub gflop_per_step: f64,
    pub peak_rss_mib: f64,
    pub loss: f64,
}

/// The consistency-training step of torch_reference.py's `bench_unet`: a forward with gradient at
/// `t`, one without at `r`, pseudo-Huber loss weighted by `1/(t-r)`, backward, optimiser step
/// (RAdam here, AdamW there: the same cost). Two untimed warm-up steps, then `steps` timed ones.
pub fn unet(batch: usize, steps: usize, dev: &Device) -> Result<UnetTiming> {
    unet_case(batch, steps, dev, &bench_unet_config(), (1, 28, 28))
}

/// EDM's DDPM++ at its CIFAR-10 sizes (`model.arch = "ddpmpp"`, 3x32x32): the same step as
/// [`unet`], on the paper's network.
pub fn ddpmpp(batch: usize, steps: usize, dev: &Device) -> Result<UnetTiming> {
    let cfg = UNetConfig { arch: crate::model::UNetArch::Ddpmpp, dropout: 0.2, ..UNetConfig::default() };
    unet_case(batch, steps, dev, &cfg, (3, 32, 32))
}

fn unet_case(batch: usize, steps: usize, dev: &Device, cfg: &UNetConfig, (c, h, w): (usize, usize, usize)) -> Result<UnetTiming> {
    reset_peak_rss();
    crate::device_memory::reset_peak(dev);
    let dev = dev.clone();
    // On CUDA the ops only queue work: each clock reading waits for the device first.
    let now = || -> Result<Instant> {
        dev.synchronize()?;
        Ok(Instant::now())
    };
    let model = Denoiser::new(cfg, c, SIGMA_DATA, 0, &dev)?;
    let params: usize = model.varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    let mut opt = RAdam::from_varmap(&model.varmap, RAdamConfig { lr: 2e-4, ..RAdamConfig::default() })?;
    let mut rng = crate::rng::stream(0, "bench");
    let ks = karras(18);
    let idx: Vec<usize> = (0..batch).map(|_| rng.random_range(0..17)).collect();
    let s_lo: Vec<f32> = idx.iter().map(|&i| ks[i] as f32).collect();
    let s_hi: Vec<f32> = idx.iter().map(|&i| ks[i + 1] as f32).collect();
    let n = batch * c * h * w;
    let x0: Vec<f32> = crate::rng::uniform_vec(&mut rng, n).iter().map(|u| u * 2.0 - 1.0).collect();
    let x0 = Tensor::from_vec(x0, (batch, c, h, w), &dev)?;
    let z = Tensor::from_vec(crate::rng::normal_vec(&mut rng, n), (batch, c, h, w), &dev)?;
    let col = |v: &[f32]| Tensor::from_vec(v.to_vec(), (batch, 1, 1, 1), &dev);
    let x_hi = (&x0 + z.broadcast_mul(&col(&s_hi)?)?)?;
    let x_lo = (&x0 + z.broadcast_mul(&col(&s_lo)?)?)?;
    let w: Vec<f32> = s_hi.iter().zip(&s_lo).map(|(h, l)| 1.0 / (h - l)).collect();
    let w = Tensor::from_vec(w, batch, &dev)?;
    let huber_c = 0.00054 * ((n / batch) as f64).sqrt();
    let ctx = Ctx::train(0);

    let (mut tt, mut t1s, mut t2s, mut t3s, mut t4s) = (vec![], vec![], vec![], vec![], vec![]);
    let mut gflop = 0.0;
    let mut last_loss = 0.0;
    for i in 0..steps + 2 {
        flops::take();
        let t0 = now()?;
        let pred = model.forward(&x_hi, &s_hi, &ctx)?;
        let t1 = now()?;
        let f1 = flops::take();
        let target = model.forward(&x_lo, &s_lo, &ctx)?.detach();
        let t2 = now()?;
        let f2 = flops::take();
        let l = loss::consistency(&pred, &target, &w, huber_c)?;
        last_loss = l.to_scalar::<f32>()? as f64;
        let t3a = now()?;
        let grads = l.backward()?;
        let t3 = now()?;
        opt.step(&grads)?;
        drop(grads);
        let t4 = now()?;
        // Backward of a forward with gradient: input and weight gradients, twice its FLOPs.
        gflop = (3.0 * f1 as f64 + f2 as f64) / 1e9;
        if i >= 2 {
            tt.push((t4 - t0).as_secs_f64() * 1e3);
            t1s.push((t1 - t0).as_secs_f64() * 1e3);
            t2s.push((t2 - t1).as_secs_f64() * 1e3);
            t3s.push((t3 - t3a).as_secs_f64() * 1e3);
            t4s.push((t4 - t3).as_secs_f64() * 1e3);
        }
    }
    Ok(UnetTiming {
        batch,
        params,
        step_ms: median(&tt),
        min_ms: tt.iter().cloned().fold(f64::INFINITY, f64::min),
        fwd1_ms: median(&t1s),
        fwd2_ms: median(&t2s),
        bwd_ms: median(&t3s),
        opt_ms: median(&t4s),
        gflop_per_step: gflop,
        peak_rss_mib: peak_rss_mib(),
        loss: last_loss,
    })
}

#[derive(Clone, Debug)]
pub struct FeatTiming {
    pub batch: usize,
    pub batch_norm: bool,
    pub fwd_ms: f64,
    pub bwd_ms: f64,
    pub gflop_per_iter: f64,
    pub peak_rss_mib: f64,
}

impl FeatTiming {
    pub fn total_ms(&self) -> f64 {
        self.fwd_ms + self.bwd_ms
    }
}

/// torch_reference.py's `bench_feat`: the frozen feature net on `x` (with gradient) and `y`
/// (without), `sum_i mean((f_i(x) - f_i(y))^2)`, and its gradient with respect to `x`.
pub fn feat(batch: usize, iters: usize, batch_norm: bool, dev: &Device) -> Result<FeatTiming> {
    reset_peak_rss();
    crate::device_memory::reset_peak(dev);
    let dev = dev.clone();
    let vm = VarMap::new();
    let pb = ParamBuilder::new(&vm, crate::rng::stream(0, "init"), &dev, DType::F32);
    let mut net = FeatNet::new(&pb, &bench_featnet_config(batch_norm))?;
    net.freeze();
    let mut rng = crate::rng::stream(0, "bench-feat");
    let n = batch * 28 * 28;
    let x = candle_core::Var::from_vec(crate::rng::normal_vec(&mut rng, n), (batch, 1, 28, 28), &dev)?;
    let y = Tensor::from_vec(crate::rng::normal_vec(&mut rng, n), (batch, 1, 28, 28), &dev)?;
    let (mut tf, mut tb) = (vec![], vec![]);
    let mut gflop = 0.0;
    for i in 0..iters + 2 {
        flops::take();
        dev.synchronize()?;
        let t0 = Instant::now();
        let fx = net.forward(x.as_tensor())?;
        let fy = net.forward(&y)?.into_iter().map(|t| t.detach()).collect::<Vec<_>>();
        let mut l = Tensor::zeros((), DType::F32, &dev)?;
        for (a, r) in fx.iter().zip(&fy) {
            l = (l + (a - r)?.sqr()?.mean_all()?)?;
        }
        dev.synchronize()?;
        let t1 = Instant::now();
        let f = flops::take();
        let grads = l.backward()?;
        let gx = grads.get(x.as_tensor()).ok_or_else(|| crate::Error::msg("bench: no input gradient"))?;
        let _ = gx.sum_all()?.to_scalar::<f32>()?;
        let t2 = Instant::now();
        // Two forwards, then one input-gradient pass (about one forward's FLOPs).
        gflop = 1.5 * f as f64 / 1e9;
        if i >= 2 {
            tf.push((t1 - t0).as_secs_f64() * 1e3);
            tb.push((t2 - t1).as_secs_f64() * 1e3);
        }
    }
    Ok(FeatTiming { batch, batch_norm, fwd_ms: median(&tf), bwd_ms: median(&tb), gflop_per_iter: gflop, peak_rss_mib: peak_rss_mib() })
}

/// ` peak_gpu_mib=N` on a CUDA device (the pool's high-water mark since the case began), else
/// nothing.
fn gpu_peak(dev: &Device) -> String {
    crate::device_memory::peak_mib(dev).map(|m| format!(" peak_gpu_mib={m:.0}")).unwrap_or_default()
}

/// Runs the named case(s) on `dev` and prints one line each (parsed by scripts/bench_vs_torch.py).
pub fn run(what: &str, batch: usize, steps: usize, dev: &Device) -> Result<()> {
    let device = crate::device::name(dev);
    let precision = crate::nn::precision::compute().name();
    println!("ayt {} threads {} device {device} precision {precision}", env!("CARGO_PKG_VERSION"), candle_core::utils::get_num_threads());
    for (name, case) in [("unet", unet as fn(usize, usize, &Device) -> Result<UnetTiming>), ("ddpmpp", ddpmpp)] {
        if what != name && (what != "all" || name == "ddpmpp") {
            continue;
        }
        let t = case(batch, steps, dev)?;
        println!(
            "AYT {} B={} params={} step_ms(median of {steps})={:.1} [min {:.1}] fwd1={:.1} fwd2(no_grad)={:.1} bwd={:.1} opt={:.1} ms ({:.1} img/s) gflops={:.1} peak_rss_mib={:.0}{} loss={:.4}",
            name.to_uppercase(),
            t.batch,
            t.params,
            t.step_ms,
            t.min_ms,
            t.fwd1_ms,
            t.fwd2_ms,
            t.bwd_ms,
            t.opt_ms,
            t.batch as f64 / t.step_ms * 1e3,
            t.gflop_per_step / t.step_ms * 1e3,
            t.peak_rss_mib,
            gpu_peak(dev),
            t.loss
        );
    }
    if what == "feat" || what == "all" {
        for bn in [false, true] {
            let t = feat(batch, steps, bn, dev)?;
            println!(
                "AYT FEAT bn={} frozen B={} fwd(x2)={:.1} ms bwd(input grad)={:.1} ms total={:.1} ms ({:.1} img/s) gflops={:.1} peak_rss_mib={:.0}{}",
                if bn { "True" } else { "False" },
                t.batch,
                t.fwd_ms,
                t.bwd_ms,
                t.total_ms(),
                t.batch as f64 / t.total_ms() * 1e3,
                t.gflop_per_iter / t.total_ms() * 1e3,
                t.peak_rss_mib,
                gpu_peak(dev)
            );
        }
    }
    Ok(())
}
