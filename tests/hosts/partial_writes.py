"""A time series written a step at a time into chunks that span 16 steps, through h5py's
default chunk cache (1 MiB), which cannot hold the 16 chunks (4 MiB) each step touches:
HDF5 compresses every chunk after each step and reads it back before the next, 16 times
in all. Every chunk must still meet the target against the values written (deepcq puts
back the originals of what it decoded, src/h5/rewrites.rs); before it did, the errors of
the 16 compressions added up to 25.5 dB at a 40 dB target.

usage: partial_writes.py FILE TARGET_DB"""
import os
import sys

import h5py
import numpy as np

import check

path, target = sys.argv[1], float(sys.argv[2])
steps, n, chunks = 16, 256, (16, 64, 64)
t, y, x = np.meshgrid(np.arange(steps), np.linspace(0, 6, n), np.linspace(0, 6, n), indexing="ij")
field = (1000 + np.sin(x + 0.1 * t) * np.cos(y) + 0.2 * np.sin(3 * x * y)).astype("f4")
with h5py.File(path, "w", rdcc_nbytes=1 << 20) as f:
    d = f.create_dataset("t", shape=field.shape, dtype="f4", chunks=chunks, compression=357,
                         compression_opts=(int(target),))
    for step in range(steps):
        d[step] = field[step]
with h5py.File(path) as f:
    back = f["t"][...]
psnrs = [check.chunk_psnr(field[s], back[s]) for s in check.chunk_slices(field.shape, chunks)]
print(f"t: worst chunk PSNR {min(psnrs):.2f} dB, median {np.median(psnrs):.2f} (target {target}), "
      f"file {os.path.getsize(path)} B for {field.nbytes} B")
ok = min(psnrs) >= target and os.path.getsize(path) < field.nbytes / 4
print("ALL OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
