"""The safetensors layout the converters in scripts/ write (the one the LPIPS weights were first
written in, so their checksums hold): header keys in insertion order, Python's default JSON
separators, padded with spaces to a multiple of 8, then each tensor as little-endian float32."""
import json, struct

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
