"""python/h5z_deepcq.py through h5py (HDF5 2.0) with no HDF5_PLUGIN_PATH: importing it
registers the filter, DeepCQ(...) gives create_dataset's arguments; datasets written with
a PSNR target (and one with land at a missing value, in fast mode) meet it on every chunk
and read back in the same process; bad options raise ValueError with the library's words.

usage: python_module.py FILE [MODULE_DIR]   (MODULE_DIR defaults to the repository's python/)"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "python"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import check  # noqa: E402
import h5z_deepcq  # noqa: E402

path = sys.argv[1]
failures = []
if "HDF5_PLUGIN_PATH" in os.environ:
    failures.append("HDF5_PLUGIN_PATH is set: the test would not show the registration")
if not h5py.h5z.filter_avail(h5z_deepcq.FILTER_ID):
    failures.append("importing h5z_deepcq did not register the filter")

z, y, x = np.meshgrid(np.linspace(0, 2, 32), np.linspace(0, 4, 64), np.linspace(0, 5, 80), indexing="ij")
field = (np.sin(2 * x) * np.cos(3 * y) + 0.4 * z).astype("f4")
sst = field + 15
land = (x - 2) ** 2 + (y - 2) ** 2 < 1.2
sst[land] = -9999.0
chunks = (16, 32, 40)
options = {
    "t": h5z_deepcq.DeepCQ(psnr=60),
    "sst": h5z_deepcq.DeepCQ(psnr=50, missing=-9999.0, mode="fast"),
}
print({name: o.filter_options for name, o in options.items()})
with h5py.File(path, "w") as f:
    f.create_dataset("t", data=field, chunks=chunks, **options["t"])
    f.create_dataset("sst", data=sst, chunks=chunks, **options["sst"])
with h5py.File(path) as f:
    back = {name: f[name][...] for name in options}
    stored = {name: f[name].id.get_storage_size() for name in options}
    filters = {name: f[name]._filters for name in options}
    for name in options:
        failures += check.unfiltered_chunks(f[name])
for name, target, original in (("t", 60, field), ("sst", 50, sst)):
    sea = original != -9999.0
    worst = min(check.chunk_psnr(original[s][sea[s]], back[name][s][sea[s]])
                for s in check.chunk_slices(original.shape, chunks))
    print(f"{name}: worst chunk PSNR {worst:.2f} dB (target {target}), stored {stored[name]} "
          f"of {original.nbytes} B")
    if str(h5z_deepcq.FILTER_ID) not in filters[name]:
        failures.append(f"{name}: filter not in pipeline {filters[name]}")
    if worst < target or stored[name] * 4 > original.nbytes:
        failures.append(f"{name}: {worst:.2f} dB, {stored[name]} B")
if not np.array_equal(back["sst"] == -9999.0, land):
    failures.append("land not kept exactly")
for bad, words in (({"psnr": 500}, "PSNR must be in (0, 400]"),
                   ({"psnr": 60, "mode": "slow"}, "mode 'slow'"),
                   ({"psnr": 60, "ssim": 0.9}, "exactly one target"),
                   ({"psnr": True}, "psnr must be a number"),
                   ({"psnr": "60"}, "psnr must be a number"),
                   ({"psnr": 60, "missing": "-9999"}, "missing must be a number"),
                   ({"psnr": 60, "allow_fallback": "no"}, "allow_fallback must be True")):
    try:
        h5z_deepcq.DeepCQ(**bad)
        failures.append(f"{bad} accepted")
    except ValueError as e:
        if words not in str(e):
            failures.append(f"{bad}: {e}")
for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
