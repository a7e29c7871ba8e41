#!/usr/bin/env python3
"""Turns an EDM-format snapshot (EDM's `edm-cifar10-32x32-uncond-vp.pkl`, or an ECT / AYT /
EDM training snapshot `network-snapshot-*.pkl`) into an ayt checkpoint that `train.init` takes:
a `.safetensors` file with the snapshot's EMA network under `ema.` and `model.`, named as ayt's
`model.arch = "ddpmpp"` names them (each `NxN` resolution replaced by its level: at 32x32,
`enc.16x16_block0.conv0.weight` becomes `enc.1.block0.conv0.weight`).

The snapshot is read without torch and without running anything in it: an unpickler builds
EDM's persistent objects (`torch_utils.persistence._reconstruct_persistent_obj`) and torch
modules as plain records of their state, and tensors as numpy arrays from the torch.save
archives the pickle embeds. Any other global in the file is refused. Conditional networks
(`map_label`) are refused; `map_augment` is dropped (with zero augmentation labels it adds
nothing), and so are the resampling filters (fixed [1, 1], built into ayt).

The preconditioning is not converted: ayt's is EDM's (c_noise = ln(sigma) / 4, as ECT's
ECMPrecond). EDM's VP checkpoint was trained with VP preconditioning; ECT starts from its
network weights the same way (copying parameters), and so does `train.init`.

Needs numpy. Usage: scripts/convert_edm_checkpoint.py SNAPSHOT.pkl OUT.safetensors [--key ema]
"""
import argparse, collections, io, json, os, pickle, re, struct, sys, zipfile

import numpy as np

from safetensors_file import safetensors_bytes

DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": None,
          "LongStorage": "<i8", "IntStorage": "<i4", "BoolStorage": "?", "ByteStorage": "u1"}


class Record:
    """A torch module or EDM persistent object: its state, nothing more."""

    def __init__(self, *args, **kwargs):
        self.class_name = type(self).__name__

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def persistent_obj(meta):
    obj = Record()
    obj.class_name = meta.get("class_name", "?")
    state = meta.get("state", {})
    obj.__dict__.update(state if isinstance(state, dict) else {})
    return obj


def rebuild_tensor(storage, offset, size, stride, *_rest):
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=[s * itemsize for s in stride])
    return np.ascontiguousarray(view)


def rebuild_parameter(data, *_rest):
    return data


class StorageReader(pickle.Unpickler):
    """A torch.save archive (zip: data.pkl plus raw storages) of one storage."""

    def __init__(self, archive):
        self.zip = zipfile.ZipFile(io.BytesIO(archive))
        self.root = self.zip.namelist()[0].split("/")[0]
        super().__init__(io.BytesIO(self.zip.read(f"{self.root}/data.pkl")))

    def find_class(self, module, name):
        if module == "torch" and name in DTYPES:
            return name
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name} inside a tensor archive")

    def persistent_load(self, pid):
        _kind, dtype, key, _location, numel = pid
        if DTYPES.get(dtype) is None:
            raise pickle.UnpicklingError(f"storage type {dtype} is not supported")
        a = np.frombuffer(self.zip.read(f"{self.root}/data/{key}"), dtype=DTYPES[dtype])
        if a.size != numel:
            raise pickle.UnpicklingError(f"storage {key}: {a.size} values, {numel} expected")
        return a


class NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a tensor header")


class LegacyStorage(StorageReader):
    """torch.save's legacy format, which pickling a storage uses (TypedStorage.__reduce__):
    magic, protocol and system pickles, the object pickle (storages as persistent ids), the
    list of storage keys, then each storage as an int64 count and its raw values."""

    def __init__(self, f):
        pickle.Unpickler.__init__(self, f)
        self.wanted = {}

    def persistent_load(self, pid):
        _kind, dtype, key, _location, numel = pid[:5]
        if DTYPES.get(dtype) is None:
            raise pickle.UnpicklingError(f"storage type {dtype} is not supported")
        self.wanted[key] = (DTYPES[dtype], numel)
        return key


def load_from_bytes(b):
    if b.startswith(b"PK"):
        return StorageReader(b).load()
    f = io.BytesIO(b)
    for _ in range(3):  # magic number, protocol version, system info
        NoGlobals(f).load()
    reader = LegacyStorage(f)
    key = reader.load()
    storages = {}
    for k in NoGlobals(f).load():
        dtype, numel = reader.wanted[k]
        (count,) = struct.unpack("<q", f.read(8))
        width = np.dtype(dtype).itemsize
        raw = f.read(count * width)
        if count != numel or len(raw) != count * width:
            raise pickle.UnpicklingError(f"storage {k}: cut short or the wrong size")
        storages[k] = np.frombuffer(raw, dtype=dtype)
    return storages[key]


class SnapshotReader(pickle.Unpickler):
    ALLOWED = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): persistent_obj,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): load_from_bytes,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("dnnlib.util", "EasyDict"): dict,
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module.startswith("torch.nn.modules."):
            return type(name, (Record,), {})
        raise pickle.UnpicklingError(f"refusing {module}.{name} (not part of an EDM network snapshot)")


def tensors(obj, prefix=""):
    """(name, array) of every parameter and buffer of a module record, depth first."""
    for kind in ("_parameters", "_buffers"):
        for k, v in (getattr(obj, kind, None) or {}).items():
            if v is not None:
                yield prefix + k, v
    for k, child in (getattr(obj, "_modules", None) or {}).items():
        if child is not None:
            yield from tensors(child, f"{prefix}{k}.")


def ayt_name(name, resolution):
    """`model.enc.16x16_block0.conv0.weight` -> `enc.1.block0.conv0.weight` (None: dropped)."""
    if not name.startswith("model."):
        return None
    name = name[len("model."):]
    if name.startswith("map_label"):
        raise SystemExit("a class-conditional network (map_label): ayt's ddpmpp is unconditional")
    if name.startswith("map_augment") or name.endswith("resample_filter"):
        return None
    m = re.match(r"(enc|dec)\.(\d+)x(\d+)_(.*)", name)
    if not m:
        return name
    level = (resolution // int(m.group(2))).bit_length() - 1
    return f"{m.group(1)}.{level}.{m.group(4)}"


def config_of(named):
    """The [model.ddpmpp] table the weights fit."""
    mc = named["enc.0.conv.weight"].shape[0]
    levels = 1 + max(int(k.split(".")[1]) for k in named if k.startswith("enc."))
    mult = [named[f"enc.{l}.block0.conv0.weight"].shape[0] // mc for l in range(levels)]
    blocks = 1 + max(int(m.group(1)) for k in named for m in [re.match(r"enc\.0\.block(\d+)\.", k)] if m)
    attn = sorted({int(k.split(".")[1]) for k in named if k.startswith("enc.") and ".qkv." in k})
    emb = named["map_layer0.weight"].shape[0] // mc
    return dict(model_channels=mc, channel_mult=mult, channel_mult_emb=emb, num_blocks=blocks, attn_levels=attn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("out")
    ap.add_argument("--key", default="ema", help="the snapshot's network to take (EDM's: ema)")
    a = ap.parse_args()
    try:
        with open(a.snapshot, "rb") as f:
            data = SnapshotReader(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as e:
        sys.exit(f"{a.snapshot}: not an EDM snapshot this script reads: {e}")
    if not isinstance(data, dict) or not isinstance(data.get(a.key), Record):
        sys.exit(f"{a.snapshot}: no network under {a.key!r} (keys: {sorted(data) if isinstance(data, dict) else type(data)})")
    net = data[a.key]
    raw = dict(tensors(net))
    if "model.enc.32x32_conv.weight" not in raw and not any(re.match(r"model\.enc\.\d+x\d+_conv\.weight", k) for k in raw):
        sys.exit(f"{a.snapshot}: {a.key} is not a SongUNet (DDPM++) network: no model.enc.<res>_conv")
    resolution = int(next(re.match(r"model\.enc\.(\d+)x\d+_conv", k).group(1) for k in raw if re.match(r"model\.enc\.\d+x\d+_conv", k)))
    named = {}
    for k, v in raw.items():
        n = ayt_name(k, resolution)
        if n is not None:
            named[n] = v
    bad = [k for k, v in named.items() if not np.all(np.isfinite(v))]
    if bad:
        sys.exit(f"{a.snapshot}: non-finite values in {bad[0]}")
    cfg = config_of(named)
    items = [(f"{prefix}.{k}", named[k]) for prefix in ("ema", "model") for k in sorted(named)]
    meta = {"source": os.path.basename(a.snapshot), "network": a.key, "img_resolution": str(resolution),
            "ddpmpp": json.dumps(cfg), "converted_by": "scripts/convert_edm_checkpoint.py"}
    out = safetensors_bytes(items, meta)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, a.out)
    count = sum(v.size for v in named.values())
    print(f"wrote {a.out}: {len(named)} tensors, {count} parameters, {resolution}x{resolution}")
    print("[model]\narch = \"ddpmpp\"\n[model.ddpmpp]")
    for k, v in cfg.items():
        print(f"{k} = {json.dumps(v)}")


if __name__ == "__main__":
    main()
