"""Writes fields unlike anything the surrogate was trained on, where its predictions go
wrong by tens of dB: f64 values riding on a large offset, a checkerboard, isolated
spikes in zeros. Predict mode must notice (the payload stores far from the predicted
ratio) and measure them. And a table whose magnitudes spread over 60 decades (arguments
of special-function tests), where ZFP's predicted PSNR was 3-7 dB too high on a third of
the chunks while the size came out as predicted, and a table of 5 columns of such values
over 6 decades, which SPERR missed 60 dB on by up to 1.4 dB on a fifth of the chunks,
and a field near 280 with 2% of its values at an undeclared fill value of -9999 in 32x32
chunks, which missed 60 and 80 dB on half or more of them by up to 7 dB: predict mode must
know all three are unfamiliar and measure them. And a series of such values over 4
decades with random signs in 4096-value chunks, which missed 60 dB on a third of them:
predict mode must measure 1-D chunks. And a sky of point sources in strips of 8 rows,
which missed 40 dB on three quarters of them: an axis of 4-8 values is as unfamiliar as
rows of 4-8 columns."""
import sys

import h5py
import numpy as np

rng = np.random.default_rng(5)
n = 64
z, y, x = np.meshgrid(*(np.linspace(0, 1, n),) * 3, indexing="ij")
smooth = np.sin(7 * x + 2 * z) * np.cos(5 * y) + 0.5 * np.sin(4 * z + 3 * x * y)
checker = (np.indices((n, n, n)).sum(0) % 2).astype("f4") + 0.01 * smooth
spikes = np.where(rng.random((n, n, n)) < 0.05, rng.exponential(1.0, (n, n, n)), 0.0)
arguments = 10.0 ** rng.uniform(-30, 30, (4096, 3))
table = np.column_stack([arguments, np.sqrt(arguments.mean(1))])
narrow = 10.0 ** rng.uniform(-3, 3, (4096, 5))
y2, x2 = np.meshgrid(np.linspace(0, 1, 256), np.linspace(0, 1, 256), indexing="ij")
kelvin = 280 + 10 * np.sin(9 * x2 + 2) * np.cos(7 * y2) + 3 * np.sin(23 * x2 * y2)
kelvin[rng.random(kelvin.shape) < 0.02] = -9999.0
series = 10.0 ** rng.uniform(0, 4, 65536) * rng.choice([-1.0, 1.0], 65536)
ys, xs = np.mgrid[0:256, 0:480]
sky = rng.normal(0.0, 1.0, ys.shape)
for _ in range(300):
    cy, cx = rng.uniform(0, 256), rng.uniform(0, 480)
    amplitude, width = 10 ** rng.uniform(0.5, 3), rng.uniform(0.7, 3)
    sky += amplitude * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * width**2))
with h5py.File(sys.argv[1], "w") as h:
    h.create_dataset("offset_f64", data=1e5 + 1e-2 * smooth, chunks=(32, n, n))
    h.create_dataset("checker", data=checker.astype("f4"), chunks=(32, n, n))
    h.create_dataset("spikes", data=spikes.astype("f4"), chunks=(32, n, n))
    h.create_dataset("wide_table", data=table, chunks=(128, 4))
    h.create_dataset("narrow_table", data=narrow.astype("f4"), chunks=(128, 5))
    h.create_dataset("markers", data=kelvin.astype("f4"), chunks=(32, 32))
    h.create_dataset("series", data=series.astype("f4"), chunks=(4096,))
    h.create_dataset("sky_strips", data=sky.astype("f4"), chunks=(8, 480))
