"""Writes a sky whose mean alone meets 40 dB in every chunk: faint noise (standard deviation
0.01) with one point source of 100 in each 128x128 chunk of 3 bands of 256x384, f32 and
f64. Storing a chunk's mean everywhere errs by its standard deviation, about 42 dB below
the range of 100, so the filter stores each chunk in a few bytes (src/near_mean.rs)."""
import sys

import h5py
import numpy as np

rng = np.random.default_rng(11)
sky = rng.normal(0.0, 0.01, (3, 256, 384))
for band in range(3):
    for y0 in range(0, 256, 128):
        for x0 in range(0, 384, 128):
            sky[band, y0 + rng.integers(128), x0 + rng.integers(128)] = 100.0
with h5py.File(sys.argv[1], "w") as h:
    h.create_dataset("sky", data=sky.astype("f4"), chunks=(1, 128, 128))
    h.create_dataset("sky64", data=sky, chunks=(1, 128, 128))
