"""The safetensors layout the converters in scripts/ write, and how the fetch scripts put a
checksummed file in place (the one the LPIPS weights were first
written in, so their checksums hold): header keys in insertion order, Python's default JSON
separators, padded with spaces to a multiple of 8, then each tensor as little-endian float32."""
import json, os, struct, sys

import numpy as np


def safetensors_bytes(tensors, metadata):
    """`tensors`: (name, array) pairs in the order to write; `metadata`: str -> str."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors:
        data = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(a)), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_checked(out, data, name, want):
    """Writes `data` to `out` through a temporary sibling and a rename, or exits naming `name`
    when its SHA-256 is not `want` (nothing written)."""
    import hashlib
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        sys.exit(f"{name}: the conversion gives sha256 {got}, SHA256SUMS says {want}; nothing written")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp_out = out + ".tmp"
    with open(tmp_out, "wb") as f:
        f.write(data)
    os.replace(tmp_out, out)
    print(f"wrote {out} ({len(data)} bytes, sha256 {got})")
