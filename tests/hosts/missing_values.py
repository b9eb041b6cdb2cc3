"""Missing data through h5py (HDF5 2.0): a field with an island of NaN, written to a
dataset whose fill value is NaN. The NaNs must come back as NaN, the other values must
meet the target with their own range, and the file must be compressed 8× (a NaN used to
send its whole chunk to exact storage, about 1.7×; 32× now at 60 dB).

usage: missing_values.py FILE TARGET_DB"""
import os
import sys

import h5py
import numpy as np

import check

path, target = sys.argv[1], float(sys.argv[2])
z, y, x = np.meshgrid(np.linspace(0, 3, 32), np.linspace(0, 4, 64), np.linspace(0, 5, 64), indexing="ij")
field = (np.sin(2 * x) * np.cos(3 * y) + 0.3 * z).astype("f4")
field[(x - 2.5) ** 2 + (y - 2) ** 2 < 1.5] = np.nan
chunks = (16, 64, 64)
with h5py.File(path, "w") as f:
    f.create_dataset("t", data=field, chunks=chunks, compression=357,
                     compression_opts=(int(target),), fillvalue=np.float32("nan"))
with h5py.File(path) as f:
    back = f["t"][...]
failures = []
if not np.array_equal(np.isnan(field), np.isnan(back)):
    failures.append("NaNs moved")
worst = min(check.chunk_psnr(field[s], back[s]) for s in check.chunk_slices(field.shape, chunks))
size = os.path.getsize(path)
print(f"t: {np.isnan(field).mean():.0%} NaN, worst chunk PSNR {worst:.2f} dB over the rest "
      f"(target {target}), file {size} B for {field.nbytes} B")
if worst < target:
    failures.append(f"chunk PSNR {worst:.2f} < {target}")
if size * 8 > field.nbytes:
    failures.append("not compressed 8×")
for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
