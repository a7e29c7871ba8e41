#!/usr/bin/env python3
"""Runs `ayt bench` and the PyTorch peer (scripts/torch_reference.py) side by side, alternating
runs so both see the same machine load, and prints per case the median throughput of each, the
ratio ayt / torch, and each process's peak RSS (from wait4, so measured the same way for both).
For the UNet it also prints "unet best step": each run's fastest step (median over runs), which a
loaded machine disturbs less than the median step. Ratios are only meaningful within one invocation.

Usage: scripts/bench_vs_torch.py [--ayt target/release/ayt] [--python /work/torchvenv/bin/python]
                                 [--batches 32,128] [--reps 3] [--steps 5] [--cases unet,feat[,ddpmpp]]
                                 [--device cpu|cuda] [--torch-precisions fp32[,tf32][,bf16]]
Without torch importable by --python, only the ayt side is run. On `--device cuda` ayt runs on
cuda:0 and PyTorch on cuda (eager; fp32 with TF32 off, tf32 with it on, bf16 = autocast). Each
torch precision is compared with ayt at the same precision (`ayt bench --precision tf32|bf16`);
on CUDA both sides' peak GPU memory is printed.
"""
import argparse, os, re, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_rss(cmd):
    """Runs cmd, returns (stdout, peak RSS MiB) using wait4's rusage for exactly this child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    os.close(w)
    chunks = []
    with os.fdopen(r) as f:
        chunks.append(f.read())
    _, status, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed with status {status}")
    return "".join(chunks), ru.ru_maxrss / 1024.0


def record(res, out, rss, who, tag, case, batch):
    """Adds one run's img/s (and its peak RSS) to `res` under (row name, `who`), from the lines
    `ayt bench` (tag AYT) or torch_reference.py (tag TORCH) print, and prints its peak GPU memory."""
    if case in ("unet", "ddpmpp"):
        m = re.search(r"step_ms\(median of \d+\)=([\d.]+) \[min ([\d.]+)\]", out)
        res.setdefault((case, who), []).append((batch / float(m.group(1)) * 1e3, rss))
        res.setdefault((f"{case} best step", who), []).append((batch / float(m.group(2)) * 1e3, rss))
    else:
        for bn, tot in re.findall(tag + r" FEAT bn=(\w+) .*?total=([\d.]+) ms", out):
            res.setdefault((f"feat bn={bn}", who), []).append((batch / float(tot) * 1e3, rss))
    print_gpu_peak(out, who, case, batch)


def print_gpu_peak(out, who, case, batch):
    """The peak GPU memory a run printed (`peak_gpu_mib=N`, CUDA only), one value per case line."""
    peaks = re.findall(r"peak_gpu_mib=(\d+)", out)
    if peaks:
        print(f"  {who} {case} B={batch}: peak GPU memory {', '.join(peaks)} MiB", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ayt", default=os.path.join(HERE, "..", "target", "release", "ayt"))
    ap.add_argument("--python", default=os.environ.get("TORCH_PYTHON", sys.executable))
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cases", default="unet,feat")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--torch-precisions", default="fp32")
    a = ap.parse_args()
    ayt_device = ["--device", "cuda:0" if a.device == "cuda" else "cpu"]
    precisions = a.torch_precisions.split(",")
    has_torch = subprocess.run([a.python, "-c", "import torch"], capture_output=True).returncode == 0
    if not has_torch:
        print(f"(torch is not importable by {a.python}: running ayt only)")
    print("load average:", open("/proc/loadavg").read().split()[:3], "device", a.device)
    ref = os.path.join(HERE, "torch_reference.py")
    rows = []
    for case in a.cases.split(","):
        for b in [int(x) for x in a.batches.split(",")]:
            res = {}  # key -> list of (img/s, rss)
            for _ in range(a.reps):
                # ayt at each precision PyTorch runs at (bf16 beside autocast), fp32 always
                for prec in ["fp32"] + [q for q in precisions if q != "fp32" and has_torch]:
                    us = "ayt" if prec == "fp32" else f"ayt {prec}"
                    flag = ["--precision", "f32" if prec == "fp32" else prec]  # tf32, bf16: the same names
                    out, rss = run_rss([a.ayt, "bench", case, "--batch", str(b), "--steps", str(a.steps)] + flag + ayt_device)
                    record(res, out, rss, us, "AYT", case, b)
                for prec in precisions if has_torch else []:
                    peer = "torch" if prec == "fp32" else f"torch {prec}"
                    out, rss = run_rss([a.python, ref, case, str(b), str(a.steps), "--device", a.device, "--precision", prec])
                    record(res, out, rss, peer, "TORCH", case, b)
            for name in sorted({k[0] for k in res}):
                # each torch precision against ayt at the same precision
                pairs = [("ayt", "torch")] + [(f"ayt {q}", f"torch {q}") for q in precisions if q != "fp32"]
                pairs = [(us, peer) for us, peer in pairs if (name, us) in res] or [("ayt", None)]
                for us, peer in pairs:
                    ours = res[(name, us)]
                    o = statistics.median(v for v, _ in ours)
                    orss = max(r for _, r in ours)
                    theirs = res.get((name, peer))
                    label = name if peer in (None, "torch") else f"{name} {us} vs {peer}"
                    if theirs:
                        t = statistics.median(v for v, _ in theirs)
                        trss = max(r for _, r in theirs)
                        rows.append((label, b, o, t, o / t, orss, trss))
                    else:
                        rows.append((label, b, o, None, None, orss, None))
                    r = rows[-1]
                    print(f"{r[0]:<24} B={b:<4} ayt {o:8.1f} img/s" + (f"  {peer} {r[3]:8.1f} img/s  ratio {r[4]:.2f}x" if r[3] else "")
                          + f"  peak RSS ayt {orss:.0f} MiB" + (f" torch {r[6]:.0f} MiB" if r[6] else ""), flush=True)
    print("load average:", open("/proc/loadavg").read().split()[:3])
    print("\n| case | batch | ayt img/s | torch img/s | ratio | ayt peak RSS MiB | torch peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, b, o, t, ratio, orss, trss in rows:
        f = lambda v, fmt: (fmt % v) if v is not None else "-"
        print(f"| {name} | {b} | {o:.1f} | {f(t, '%.1f')} | {f(ratio, '%.2fx')} | {orss:.0f} | {f(trss, '%.0f')} |")


if __name__ == "__main__":
    main()
