#!/usr/bin/env python3
"""Write and read a dataset through the deepcq filter (id 357) from h5py.

Run from the repository root, after `cargo build --release` and `bash scripts/setup.sh`:
    HDF5_PLUGIN_PATH=$PWD/plugin third_party/venv/bin/python examples/h5py_example.py out.h5

The cd_values come from the library itself (h5z_deepcq_cd_values through ctypes), so
nobody packs words by hand. h5py bundles its own HDF5; the plugin resolves the HDF5
functions it needs from whichever library the process loaded, so this works unchanged.
PSNR here is 20*log10(value range) - 10*log10(MSE) (the SZ convention).
"""
import ctypes
import os
import sys

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILTER_ID = 357


def cd_values(target, kind=0, compressor=0, mode=0, flags=0):
    """The cd_values for a target (kind 0 = PSNR dB, 1 = SSIM, 2 = ratio, 3 = abs bound)."""
    # The plugin link, as HDF5 loads it: the library finds onnxruntime beside the path it
    # was first loaded from, and plugin/ has it (target/release has not).
    lib = ctypes.CDLL(os.path.join(ROOT, "plugin", "libh5z_deepcq.so"))
    lib.h5z_deepcq_cd_values.argtypes = [ctypes.c_uint, ctypes.c_double, ctypes.c_uint,
                                         ctypes.c_uint, ctypes.c_uint,
                                         ctypes.POINTER(ctypes.c_uint),
                                         ctypes.POINTER(ctypes.c_size_t)]
    words = (ctypes.c_uint * 6)()
    n = ctypes.c_size_t(6)
    status = lib.h5z_deepcq_cd_values(kind, target, compressor, mode, flags, words,
                                      ctypes.byref(n))
    if status != 0:
        message = ctypes.create_string_buffer(512)
        lib.h5z_deepcq_last_error(message, ctypes.c_size_t(512))
        raise ValueError(message.value.decode(errors="replace"))
    return tuple(words[: n.value])


def psnr(a, b):
    a = a.astype(np.float64)
    mse = np.mean((a - b.astype(np.float64)) ** 2)
    return 20 * np.log10(a.max() - a.min()) - 10 * np.log10(mse)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "h5py_example.h5"
    z, y, x = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 64), np.linspace(0, 1, 64),
                          indexing="ij")
    data = (np.sin(7 * x + 2 * z) * np.cos(5 * y) + 0.1 * np.sin(60 * x * y)).astype(np.float32)
    opts = cd_values(60.0)
    print("cd_values:", opts)
    with h5py.File(path, "w") as f:
        f.create_dataset("field", data=data, chunks=(16, 32, 32), compression=FILTER_ID,
                         compression_opts=opts)
    with h5py.File(path, "r") as f:
        dset = f["field"]
        back = dset[...]
        # The raw chunk really is a deepcq chunk, smaller than the data it holds.
        mask, raw = dset.id.read_direct_chunk((0, 0, 0))
        stored = dset.id.get_storage_size()
    p = psnr(data, back)
    print(f"first chunk: {len(raw)} bytes, magic {raw[:2]!r}, filter mask {mask}")
    met = p >= 60 and raw[:2] == b"DQ" and stored < data.nbytes
    print(f"RESULT psnr={p:.2f} stored={stored} raw={data.nbytes} met={'yes' if met else 'no'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
