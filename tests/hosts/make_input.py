"""Writes the input file of the host tests: float fields whose dims are not multiples of
the chunk dims (edge chunks), the same big-endian, an f64 field, the same near 1e-170, a
constant field, a field with NaNs, a tiny one, and integer and compound datasets that the
filter must store losslessly."""
import sys

import h5py
import numpy as np

rng = np.random.default_rng(42)
z, y, x = np.meshgrid(np.linspace(0, 3, 50), np.linspace(0, 4, 70), np.linspace(0, 5, 90), indexing="ij")
smooth = np.sin(x) * np.cos(y) + 0.3 * np.sin(2 * z + x) + 0.01 * rng.standard_normal(x.shape)
with h5py.File(sys.argv[1], "w") as h:
    h.create_dataset("field", data=smooth.astype("f4"), chunks=(16, 32, 32))
    # The same values big-endian in the file: check.py wants them stored as small.
    h.create_dataset("field_be", data=smooth.astype(">f4"), chunks=(16, 32, 32))
    h.create_dataset("field64", data=(1e5 * smooth[:, :, 7]), chunks=(16, 16))
    # Errors of f64 data this small square below f64's range: the PSNR must still be met.
    h.create_dataset("field64_tiny", data=(1e-170 * smooth[:, :, 7]), chunks=(16, 16))
    h.create_dataset("constant", data=np.full((40, 40), 2.5, "f4"), chunks=(16, 16))
    with_nan = smooth[:20, :20, 0].astype("f4").copy()
    with_nan[3, 4] = np.nan
    h.create_dataset("with_nan", data=with_nan, chunks=(8, 8))
    h.create_dataset("tiny", data=np.array([1.0, 2.0, 4.0], "f4"), chunks=(3,))
    h.create_dataset("ints", data=np.arange(1000, dtype="i4").reshape(10, 100), chunks=(5, 50))
    dt = np.dtype([("a", "i4"), ("b", "f8")])
    rec = np.zeros(100, dtype=dt)
    rec["a"] = np.arange(100)
    rec["b"] = np.linspace(0, 1, 100)
    h.create_dataset("compound", data=rec, chunks=(10,))
