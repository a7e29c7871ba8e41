#!/usr/bin/env python3
"""EDM's DDPM++ network (`SongUNet`, Karras et al. 2022, training/networks.py) written in
PyTorch from its description, for ayt's parity test and converter test. It makes:

- tests/data/ddpmpp_reference.h5: a small configuration's raw network output F(x, c_noise) for
  fixed inputs, with random weights (every parameter drawn, so that every path counts);
- tests/data/ddpmpp_tiny_edm.pkl: the same network with the same weights, pickled the way EDM's
  `torch_utils.persistence` pickles its snapshots (`{'ema': EDMPrecond(model=SongUNet)}`, each
  persistent object as `_reconstruct_persistent_obj(meta)` with its source and state), which
  scripts/convert_edm_checkpoint.py must turn into an ayt checkpoint;
- on stdout, the parameter count of the CIFAR-10 configuration (`--arch=ddpmpp`).

Needs torch, numpy, h5py. Usage: scripts/ddpmpp_reference.py
"""
import copyreg, io, json, os, pickle, sys, types

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")


def group_norm(c):
    return torch.nn.GroupNorm(num_groups=min(32, c // 4), num_channels=c, eps=1e-6)


class Conv(torch.nn.Module):
    """EDM's Conv2d: optional 2x resampling with the [1, 1] filter (nearest up, 2x2 mean down)
    before the convolution."""

    def __init__(self, cin, cout, kernel, up=False, down=False):
        super().__init__()
        self.up, self.down, self.in_channels = up, down, cin
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, kernel, kernel) / np.sqrt(cin * kernel * kernel))
        self.bias = torch.nn.Parameter(torch.zeros(cout))
        f = torch.tensor([1.0, 1.0])
        self.register_buffer("resample_filter", (f.ger(f) / f.sum() ** 2)[None, None] if up or down else None)

    def forward(self, x):
        f = self.resample_filter
        if self.up:
            x = F.conv_transpose2d(x, (f * 4).tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2)
        if self.down:
            x = F.conv2d(x, f.tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2)
        return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2) + self.bias.reshape(1, -1, 1, 1)


class Linear(torch.nn.Module):
    def __init__(self, din, dout, bias=True):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(dout, din) / np.sqrt(din))
        self.bias = torch.nn.Parameter(torch.zeros(dout)) if bias else None

    def forward(self, x):
        x = x @ self.weight.t()
        return x + self.bias if self.bias is not None else x


class UNetBlock(torch.nn.Module):
    """adaptive_scale=False, resample_proj=True, skip_scale=sqrt(1/2), one attention head."""

    def __init__(self, cin, cout, emb, up=False, down=False, attention=False, dropout=0.0):
        super().__init__()
        self.in_channels, self.attention, self.dropout = cin, attention, dropout
        self.norm0 = group_norm(cin)
        self.conv0 = Conv(cin, cout, 3, up=up, down=down)
        self.affine = Linear(emb, cout)
        self.norm1 = group_norm(cout)
        self.conv1 = Conv(cout, cout, 3)
        self.skip = Conv(cin, cout, 1, up=up, down=down) if cin != cout or up or down else None
        if attention:
            self.norm2 = group_norm(cout)
            self.qkv = Conv(cout, cout * 3, 1)
            self.proj = Conv(cout, cout, 1)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(F.silu(self.norm0(x)))
        x = F.silu(self.norm1(x + self.affine(emb)[:, :, None, None]))
        x = self.conv1(F.dropout(x, p=self.dropout, training=self.training))
        x = (x + (self.skip(orig) if self.skip is not None else orig)) * np.sqrt(0.5)
        if self.attention:
            b, c, h, w = x.shape
            q, k, v = self.qkv(self.norm2(x)).reshape(b, c, 3, h * w).unbind(2)
            wts = torch.einsum("ncq,nck->nqk", q, k / np.sqrt(c)).softmax(dim=2)
            a = torch.einsum("nqk,nck->ncq", wts, v)
            x = (self.proj(a.reshape(b, c, h, w)) + x) * np.sqrt(0.5)
        return x


class SongUNet(torch.nn.Module):
    """DDPM++: positional embedding, standard encoder and decoder."""

    def __init__(self, img_resolution, in_channels, out_channels, augment_dim=0, model_channels=128,
                 channel_mult=(2, 2, 2), channel_mult_emb=4, num_blocks=4, attn_resolutions=(16,), dropout=0.0):
        super().__init__()
        emb, noise = model_channels * channel_mult_emb, model_channels
        self.noise_channels = noise
        self.map_augment = Linear(augment_dim, noise, bias=False) if augment_dim else None
        self.map_layer0 = Linear(noise, emb)
        self.map_layer1 = Linear(emb, emb)
        self.enc = torch.nn.ModuleDict()
        cout = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels
                self.enc[f"{res}x{res}_conv"] = Conv(cin, cout, 3)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, emb, down=True, dropout=dropout)
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, emb, attention=res in attn_resolutions, dropout=dropout)
        skips = [b.weight.shape[0] if isinstance(b, Conv) else b.conv1.weight.shape[0] for b in self.enc.values()]
        self.dec = torch.nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, emb, attention=True, dropout=dropout)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, emb, dropout=dropout)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, emb, up=True, dropout=dropout)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                attn = idx == num_blocks and res in attn_resolutions
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, emb, attention=attn, dropout=dropout)
            if level == 0:
                self.dec[f"{res}x{res}_aux_norm"] = group_norm(cout)
                self.dec[f"{res}x{res}_aux_conv"] = Conv(cout, out_channels, 3)

    def forward(self, x, noise_labels, augment_labels=None):
        half = self.noise_channels // 2
        freqs = (1 / 10000) ** (torch.arange(half, dtype=torch.float32) / (half - 1))
        arg = noise_labels.ger(freqs)
        emb = torch.cat([arg.sin(), arg.cos()], dim=1)  # EDM: cat(cos, sin), then swapped
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))
        skips = []
        for block in self.enc.values():
            x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
            skips.append(x)
        aux, tmp = None, None
        for name, block in self.dec.items():
            if "aux_norm" in name:
                tmp = block(x)
            elif "aux_conv" in name:
                aux = block(F.silu(tmp))
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return aux


class EDMPrecond(torch.nn.Module):
    """Only the container EDM's snapshots hold the network in (`ema.model`)."""

    def __init__(self, model):
        super().__init__()
        self.sigma_data, self.model = 0.5, model


PERSISTENT = (Conv, Linear, UNetBlock, SongUNet, EDMPrecond)


def reduce_persistent(obj):
    """How EDM's torch_utils.persistence pickles an instance of a persistent class."""
    meta = dict(type="class", version=6, module_src="# (source of training/networks.py)",
                class_name=type(obj).__name__, state=obj.__getstate__())
    return (Reconstruct, (meta,))


class Reconstruct:
    """Stands for torch_utils.persistence._reconstruct_persistent_obj in the pickle."""


Reconstruct.__module__, Reconstruct.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"


def edm_pickle(net):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=4)
    p.dispatch_table = copyreg.dispatch_table.copy()
    for cls in PERSISTENT:
        p.dispatch_table[cls] = reduce_persistent
    sys.modules.setdefault("torch_utils", types.ModuleType("torch_utils"))
    sys.modules.setdefault("torch_utils.persistence", types.ModuleType("torch_utils.persistence"))
    sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj = Reconstruct
    p.dump(dict(ema=EDMPrecond(net), augment_pipe=None, dataset_kwargs=dict(resolution=16)))
    return buf.getvalue()


def randomise(net, gen):
    """Every parameter drawn (EDM zero-initialises some convs, which would hide their paths)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 1:
                p.copy_((1.0 if "norm" in name and name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(p[0].numel()))


def main():
    import h5py  # only here: scripts/torch_reference.py imports this module for its benchmark
    torch.manual_seed(0)
    full = SongUNet(32, 3, 3, augment_dim=9)
    n_full = sum(p.numel() for p in full.parameters())
    n_aug = full.map_augment.weight.numel()
    cfg = dict(model_channels=8, channel_mult=(1, 2), channel_mult_emb=4, num_blocks=1, attn_resolutions=(8,))
    net = SongUNet(16, 3, 3, augment_dim=9, **cfg).eval()
    gen = torch.Generator().manual_seed(2026)
    randomise(net, gen)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    c_noise = torch.tensor([-0.3, 0.8])
    with torch.no_grad():
        y = net(x, c_noise)
    with open(os.path.join(DATA, "ddpmpp_tiny_edm.pkl"), "wb") as f:
        f.write(edm_pickle(net))
    with h5py.File(os.path.join(DATA, "ddpmpp_reference.h5"), "w") as f:
        f["x"], f["c_noise"], f["y"] = x.numpy(), c_noise.numpy(), y.numpy()
        f.attrs["config"] = json.dumps(dict(cfg, img_resolution=16, attn_levels=[1]))
        f.attrs["params_cifar10"] = n_full - n_aug
        f.attrs["made_by"] = "scripts/ddpmpp_reference.py"
        f.attrs["torch_version"] = str(torch.__version__)
    print(f"CIFAR-10 DDPM++: {n_full} parameters, {n_full - n_aug} without map_augment; "
          f"tiny: {sum(p.numel() for p in net.parameters())}; |y| mean {y.abs().mean():.4f}")


if __name__ == "__main__":
    main()
