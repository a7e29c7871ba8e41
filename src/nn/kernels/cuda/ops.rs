//! Launches of `kernels.cu` on candle's CUDA storages (see `mod.rs`).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaDevice, CudaStorage, Layout, Result};

use crate::nn::kernels::Act;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/ayt_kernels.ptx"));
const MODULE: &str = "ayt_kernels";
const THREADS: u32 = 256;

/// The f32 elements of a contiguous layout.
fn view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{what}: the CUDA kernel needs a contiguous input");
    };
    Ok(s.as_cuda_slice::<f32>()?.slice(start..end))
}

fn wrap(out: CudaSlice<f32>, dev: &CudaDevice) -> CudaStorage {
    CudaStorage::wrap_cuda_slice(out, dev.clone())
}

/// One thread per element of `n`.
fn per_element(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: ((n as u32).div_ceil(THREADS).max(1), 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn blocks(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (n as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn act_code(act: Act) -> i32 {
    match act {
        Act::Identity => 0,
        Act::Silu => 1,
        Act::Relu => 2,
    }
}

/// Group norm's shape: samples, channels, pixels per channel, groups.
#[derive(Clone, Copy, Debug)]
pub struct GnDims {
    pub b: usize,
    pub c: usize,
    pub hw: usize,
    pub groups: usize,
}

/// `act(GroupNorm(x) * gamma + beta)`, one block per (sample, group).
pub fn group_norm_fwd(
    x: (&CudaStorage, &Layout),
    gamma: (&CudaStorage, &Layout),
    beta: (&CudaStorage, &Layout),
    d: GnDims,
    eps: f64,
    act: Act,
) -> Result<CudaStorage> {
    let dev = x.0.device();
    let (xv, gv, bv) = (view(x.0, x.1, "group norm")?, view(gamma.0, gamma.1, "group norm")?, view(beta.0, beta.1, "group norm")?);
    let n = d.b * d.c * d.hw;
    let y = unsafe { dev.alloc::<f32>(n)? };
    if n > 0 {
        let f = dev.get_or_load_custom_func("gn_fwd_f32", MODULE, PTX)?;
        let (c, hw, groups, act) = (d.c as i32, d.hw as i32, d.groups as i32, act_code(act));
        let mut b = f.builder();
        b.arg(&xv).arg(&gv).arg(&bv).arg(&y).arg(&c).arg(&hw).arg(&groups).arg(&eps).arg(&act);
        unsafe { b.launch(blocks(d.b * d.groups)) }.w()?;
    }
    Ok(wrap(y, dev))
}

/// The backward: `[dx (B*C*HW), dgamma (C), dbeta (C)]` packed, as the CPU kernel's.
pub fn group_norm_bwd(
    dy: (&CudaStorage, &Layout),
    x: (&CudaStorage, &Layout),
    gb: (&CudaStorage, &Layout),
    d: GnDims,
    eps: f64,
    act: Act,
) -> Result<CudaStorage> {
    let dev = x.0.device();
    let (dyv, xv, gbv) =
        (view(dy.0, dy.1, "group norm backward")?, view(x.0, x.1, "group norm backward")?, view(gb.0, gb.1, "group norm backward")?);
    let n = d.b * d.c * d.hw;
    let out = dev.alloc_zeros::<f32>(n + 2 * d.c)?;
    let partial = dev.alloc_zeros::<f64>(2 * d.b * d.c)?;
    if n > 0 {
        let (gamma, beta) = (gbv.slice(..d.c), gbv.slice(d.c..));
        let (c, hw, groups, act, batch) = (d.c as i32, d.hw as i32, d.groups as i32, act_code(act), d.b as i32);
        let dx = out.slice(..n);
        let f = dev.get_or_load_custom_func("gn_bwd_f32", MODULE, PTX)?;
        let mut b = f.builder();
        b.arg(&dyv).arg(&xv).arg(&gamma).arg(&beta).arg(&dx).arg(&partial).arg(&c).arg(&hw).arg(&groups).arg(&eps).arg(&act);
        unsafe { b.launch(blocks(d.b * d.groups)) }.w()?;
        let params = out.slice(n..);
        let f = dev.get_or_load_custom_func("gn_param_grads_f32", MODULE, PTX)?;
        let mut b = f.builder();
        b.arg(&partial).arg(&params).arg(&batch).arg(&c);
        unsafe { b.launch(per_element(d.c)) }.w()?;
    }
    Ok(wrap(out, dev))
}

/// A kernel over `n_out` outputs (one thread each) of `(h, w)` planes, taking `inputs` and writing
/// one new zeroed buffer of `out_len` elements.
fn planar(
    name: &str,
    inputs: &[CudaView<'_, f32>],
    dev: &CudaDevice,
    (n_out, out_len): (usize, usize),
    h: usize,
    w: usize,
) -> Result<CudaStorage> {
    let out = dev.alloc_zeros::<f32>(out_len)?;
    if n_out > 0 {
        let f = dev.get_or_load_custom_func(name, MODULE, PTX)?;
        let (h, w) = (h as i32, w as i32);
        let mut b = f.builder();
        for v in inputs {
            b.arg(v);
        }
        b.arg(&out).arg(&n_out).arg(&h).arg(&w);
        unsafe { b.launch(per_element(n_out)) }.w()?;
    }
    Ok(wrap(out, dev))
}

/// 2x2 max-pool of an even-sized [B, C, H, W] tensor.
pub fn max_pool2x(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let (b, c, h, w) = l.shape().dims4()?;
    let n = b * c * (h / 2) * (w / 2);
    planar("maxpool2x_fwd_f32", &[view(s, l, "max-pool")?], s.device(), (n, n), h, w)
}

/// Its backward: `dx` of `x`'s shape from `x` and `dy`.
pub fn max_pool2x_bwd(x: (&CudaStorage, &Layout), dy: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let (_, _, h, w) = x.1.shape().dims4()?;
    let inputs = [view(x.0, x.1, "max-pool backward")?, view(dy.0, dy.1, "max-pool backward")?];
    // one thread per window, writing its four inputs' gradients
    let (n_windows, n_inputs) = (dy.1.shape().elem_count(), x.1.shape().elem_count());
    planar("maxpool2x_bwd_f32", &inputs, x.0.device(), (n_windows, n_inputs), h, w)
}

/// Nearest 2x upsampling of [B, C, H, W].
pub fn upsample2x(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let (b, c, h, w) = l.shape().dims4()?;
    let n = b * c * 4 * h * w;
    planar("upsample2x_f32", &[view(s, l, "upsample")?], s.device(), (n, n), h, w)
}

/// Its adjoint: [B, C, 2H, 2W] summed over 2x2 blocks to [B, C, H, W].
pub fn block_sum2x(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let (b, c, h2, w2) = l.shape().dims4()?;
    let n = b * c * (h2 / 2) * (w2 / 2);
    planar("blocksum2x_f32", &[view(s, l, "block sum")?], s.device(), (n, n), h2 / 2, w2 / 2)
}

/// `(a + b) * s`.
pub fn add_scaled(a: (&CudaStorage, &Layout), b: (&CudaStorage, &Layout), s: f64) -> Result<CudaStorage> {
    let dev = a.0.device();
    let (av, bv) = (view(a.0, a.1, "add-scaled")?, view(b.0, b.1, "add-scaled")?);
    let n = a.1.shape().elem_count();
    let out = unsafe { dev.alloc::<f32>(n)? };
    if n > 0 {
        let f = dev.get_or_load_custom_func("add_scaled_f32", MODULE, PTX)?;
        let s = s as f32;
        let mut lb = f.builder();
        lb.arg(&av).arg(&bv).arg(&out).arg(&n).arg(&s);
        unsafe { lb.launch(per_element(n)) }.w()?;
    }
    Ok(wrap(out, dev))
}

/// `x * scale` where the dropout hash keeps an element (`key`, `threshold`: see
/// `kernels::cpu::dropout`), 0 elsewhere.
pub fn dropout(s: &CudaStorage, l: &Layout, key: u64, threshold: u64, scale: f32) -> Result<CudaStorage> {
    let dev = s.device();
    let xv = view(s, l, "dropout")?;
    let n = l.shape().elem_count();
    let out = unsafe { dev.alloc::<f32>(n)? };
    if n > 0 {
        let f = dev.get_or_load_custom_func("dropout_f32", MODULE, PTX)?;
        let mut b = f.builder();
        b.arg(&xv).arg(&out).arg(&n).arg(&key).arg(&threshold).arg(&scale);
        unsafe { b.launch(per_element(n)) }.w()?;
    }
    Ok(wrap(out, dev))
}
