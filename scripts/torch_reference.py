# Copied from ../shared/bench/torch_reference.py (the project's PyTorch CPU reference for issue 8);
# scripts/bench_vs_torch.py runs it beside `ayt bench`. Changed only by the options for the GPU
# check (scripts/gpu_check.sh): `--device cuda` (the device synchronised at every clock reading)
# and `--precision fp32|tf32|bf16` (fp32: TF32 off everywhere, though PyTorch's default lets
# cuDNN's convolutions use it; tf32: on for convolutions and matmuls; bf16: the forwards under bf16
# autocast), so each is compared with `ayt bench --precision` of that name; and by the `ddpmpp` case (the same
# step on EDM's CIFAR-10 DDPM++, from scripts/ddpmpp_reference.py); without them it is the original.
"""PyTorch CPU reference for the performance goal of `ayt`.

Defines the benchmark UNet (EDM-preconditioned, 28x28x1, channels 32/64, two residual blocks per level,
GroupNorm(8) + SiLU, 128-d noise embedding, about 0.9M parameters) and times one consistency-training
step (a forward with grad at t, a forward without grad at r, pseudo-Huber loss weighted by 1/(t-r),
backward, AdamW) on 2 threads; and a VGG-style feature net (4 stages, 32/64/128/128 channels, max-pool)
forward on two batches plus the gradient w.r.t. its input, as the MFD loss needs.
Usage:  python torch_reference.py unet BATCH STEPS      python torch_reference.py feat BATCH ITERS
Needs:  pip install torch   (in a venv; the default wheel is large, the CPU is what is used).
"""
import contextlib, math, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

def option(name, default):
    """Removes `--name VALUE` from argv and returns VALUE."""
    if name in sys.argv:
        i = sys.argv.index(name); value = sys.argv[i + 1]; del sys.argv[i:i + 2]; return value
    return default

DEVICE = torch.device(option("--device", "cpu"))
PRECISION = option("--precision", "fp32")
# fp32 means f32 GEMMs: PyTorch's default would run cuDNN's convolutions in TF32
torch.backends.cudnn.allow_tf32 = PRECISION == "tf32"
torch.backends.cuda.matmul.allow_tf32 = PRECISION == "tf32"
if DEVICE.type == "cpu":
    torch.set_num_threads(2)
SIGMA_DATA, SIGMA_MIN = 0.5, 0.002

def clock():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()

def autocast():
    if PRECISION == "bf16":
        return torch.autocast(DEVICE.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

class ResBlock(nn.Module):
    def __init__(s, cin, cout, ed):
        super().__init__()
        s.gn1 = nn.GroupNorm(8, cin); s.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        s.emb = nn.Linear(ed, cout)
        s.gn2 = nn.GroupNorm(8, cout); s.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        s.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
    def forward(s, x, emb):
        h = s.conv1(F.silu(s.gn1(x)))
        h = h + s.emb(emb)[:, :, None, None]
        h = s.conv2(F.silu(s.gn2(h)))
        return (h + (s.skip(x) if s.skip is not None else x)) * (1 / math.sqrt(2))

class UNet(nn.Module):
    def __init__(s):
        super().__init__()
        c0, c1, ed, half = 32, 64, 128, 16
        s.register_buffer("freqs", torch.exp(-math.log(10000) * torch.arange(half) / half))
        s.t1 = nn.Linear(2 * half, ed); s.t2 = nn.Linear(ed, ed)
        s.conv_in = nn.Conv2d(1, c0, 3, padding=1)
        s.enc0 = nn.ModuleList([ResBlock(c0, c0, ed), ResBlock(c0, c0, ed)])
        s.down = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        s.enc1 = nn.ModuleList([ResBlock(c0, c1, ed), ResBlock(c1, c1, ed)])
        s.mid = nn.ModuleList([ResBlock(c1, c1, ed), ResBlock(c1, c1, ed)])
        s.dec1 = nn.ModuleList([ResBlock(2 * c1, c1, ed), ResBlock(2 * c1, c1, ed), ResBlock(c1 + c0, c1, ed)])
        s.up = nn.Conv2d(c1, c1, 3, padding=1)
        s.dec0 = nn.ModuleList([ResBlock(c1 + c0, c0, ed), ResBlock(2 * c0, c0, ed), ResBlock(2 * c0, c0, ed)])
        s.gn_out = nn.GroupNorm(8, c0); s.conv_out = nn.Conv2d(c0, 1, 3, padding=1)
    def net(s, x, c_noise):
        a = c_noise[:, None] * s.freqs[None]
        emb = F.silu(s.t2(F.silu(s.t1(torch.cat([a.cos(), a.sin()], 1)))))
        h = s.conv_in(x); skips = [h]
        for b in s.enc0: h = b(h, emb); skips.append(h)
        h = s.down(h); skips.append(h)
        for b in s.enc1: h = b(h, emb); skips.append(h)
        for b in s.mid: h = b(h, emb)
        for b in s.dec1: h = b(torch.cat([h, skips.pop()], 1), emb)
        h = s.up(F.interpolate(h, scale_factor=2, mode="nearest"))
        for b in s.dec0: h = b(torch.cat([h, skips.pop()], 1), emb)
        return s.conv_out(F.silu(s.gn_out(h)))
    def denoise(s, x, sigma):
        s4 = sigma[:, None, None, None]; sd2 = SIGMA_DATA ** 2
        c_skip = sd2 / ((s4 - SIGMA_MIN) ** 2 + sd2)
        c_out = (s4 - SIGMA_MIN) * SIGMA_DATA / (s4 ** 2 + sd2).sqrt()
        c_in = 1 / (s4 ** 2 + sd2).sqrt()
        return c_skip * x + c_out * s.net(c_in * x, sigma.log() * 0.25)

def karras(n, smin=SIGMA_MIN, smax=80.0, rho=7.0):
    t = torch.arange(n) / (n - 1)
    return (smin ** (1 / rho) + t * (smax ** (1 / rho) - smin ** (1 / rho))) ** rho

def bench_unet(B, steps, ddpmpp=False):
    torch.manual_seed(0)
    m = (DdpmppDenoiser() if ddpmpp else UNet()).to(DEVICE); opt = torch.optim.AdamW(m.parameters(), lr=2e-4, weight_decay=0.0)
    npar = sum(p.numel() for p in m.parameters())
    ks = karras(18); idx = torch.randint(0, 17, (B,))
    s_lo, s_hi = ks[idx], ks[idx + 1]
    shape = (B, 3, 32, 32) if ddpmpp else (B, 1, 28, 28)
    x0 = torch.rand(*shape) * 2 - 1; z = torch.randn(*shape)
    x0, z, s_lo, s_hi = (v.to(DEVICE) for v in (x0, z, s_lo, s_hi))
    x_hi = x0 + z * s_hi[:, None, None, None]; x_lo = x0 + z * s_lo[:, None, None, None]
    c = 0.00054 * math.sqrt(x0[0].numel())
    tt, t1s, t2s, t3s, t4s = [], [], [], [], []
    for i in range(steps + 2):
        t0 = clock()
        with autocast():
            pred = m.denoise(x_hi, s_hi)
        t1 = clock()
        with torch.no_grad(), autocast():
            target = m.denoise(x_lo, s_lo)
        t2 = clock()
        d2 = ((pred.float() - target.float()) ** 2).flatten(1).sum(1)
        loss = ((torch.sqrt(d2 + c * c) - c) / (s_hi - s_lo)).mean()
        opt.zero_grad(set_to_none=True)
        t3a = clock(); loss.backward(); t3 = clock()
        opt.step(); t4 = clock()
        if i >= 2:
            tt.append(t4 - t0); t1s.append(t1 - t0); t2s.append(t2 - t1); t3s.append(t3 - t3a); t4s.append(t4 - t3)
    med = lambda v: sorted(v)[len(v) // 2] * 1e3
    peak = f" peak_gpu_mib={torch.cuda.max_memory_allocated() / 2**20:.0f}" if DEVICE.type == "cuda" else ""
    print(f"TORCH {'DDPMPP' if ddpmpp else 'UNET'} B={B} params={npar} step_ms(median of {steps})={med(tt):.1f} [min {min(tt)*1e3:.1f}] fwd1={med(t1s):.1f} fwd2(no_grad)={med(t2s):.1f} bwd={med(t3s):.1f} opt={med(t4s):.1f} ms ({B/med(tt)*1e3:.1f} img/s) loss={loss.item():.4f}{peak}")

class DdpmppDenoiser(nn.Module):
    """EDM's DDPM++ (scripts/ddpmpp_reference.py's SongUNet, CIFAR-10 sizes, dropout 0.2) with
    the same preconditioning as the UNet above: `ayt bench ddpmpp`'s network."""
    def __init__(s):
        super().__init__()
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from ddpmpp_reference import SongUNet
        s.model = SongUNet(32, 3, 3, dropout=0.2)
    def net(s, x, c_noise):
        return s.model(x, c_noise)
    denoise = UNet.denoise  # the same preconditioning around `net`

class FeatNet(nn.Module):
    def __init__(s, chans=(32, 64, 128, 128), bn=False):
        super().__init__()
        layers, cin = [], 1
        for c in chans:
            layers.append(nn.ModuleList([nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c) if bn else nn.GroupNorm(8, c)])); cin = c
        s.layers = nn.ModuleList(layers)
    def forward(s, x):
        out = []
        for i, (conv, n) in enumerate(s.layers):
            x = F.relu(n(conv(x))); out.append(x)
            if i + 1 < len(s.layers): x = F.max_pool2d(x, 2)
        return out

def bench_feat(B, iters, bn):
    net = FeatNet(bn=bn).eval().to(DEVICE)
    for p in net.parameters(): p.requires_grad_(False)
    x = torch.randn(B, 1, 28, 28).to(DEVICE).requires_grad_(True); y = torch.randn(B, 1, 28, 28).to(DEVICE)
    tf, tb = [], []
    for i in range(iters + 2):
        t0 = clock()
        with autocast():
            fx = net(x)
        with torch.no_grad(), autocast(): fy = net(y)
        loss = sum(((a.float() - r.float()) ** 2).mean() for a, r in zip(fx, fy))
        t1 = clock()
        gx, = torch.autograd.grad(loss, x)
        t2 = clock()
        if i >= 2: tf.append(t1 - t0); tb.append(t2 - t1)
    med = lambda v: sorted(v)[len(v) // 2] * 1e3
    print(f"TORCH FEAT bn={bn} frozen B={B} fwd(x2)={med(tf):.1f} ms bwd(input grad)={med(tb):.1f} ms total={med(tf)+med(tb):.1f} ms")

if __name__ == "__main__":
    print("torch", torch.__version__, "threads", torch.get_num_threads(), "mkldnn", torch.backends.mkldnn.is_available(), "device", DEVICE, "precision", PRECISION)
    what = sys.argv[1] if len(sys.argv) > 1 else "unet"
    if what == "unet": bench_unet(int(sys.argv[2]), int(sys.argv[3]))
    elif what == "ddpmpp": bench_unet(int(sys.argv[2]), int(sys.argv[3]), ddpmpp=True)
    elif what == "feat":
        bench_feat(int(sys.argv[2]), int(sys.argv[3]), False); bench_feat(int(sys.argv[2]), int(sys.argv[3]), True)
