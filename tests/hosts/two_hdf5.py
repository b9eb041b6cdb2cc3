"""netCDF4 and h5py in one process, each with the libhdf5 its wheel bundles, netCDF4
imported first so that its copy is loaded first: h5py writes through the deepcq filter
(HDF5_PLUGIN_PATH), which must answer h5py's copy, and every chunk read back meets the
target.

usage: two_hdf5.py INPUT OUTPUT"""
import re
import sys

import netCDF4  # noqa: F401  (first: its libhdf5 is loaded before h5py's)
import h5py
import numpy as np  # noqa: F401

import check

src_path, out_path = sys.argv[1], sys.argv[2]
failures = []
with open("/proc/self/maps") as maps:
    copies = set(re.findall(r"\S*/libhdf5-[^/\s]*\.so\S*", maps.read()))
if len(copies) < 2:
    failures.append(f"expected two copies of libhdf5 loaded, found {sorted(copies)}")
with h5py.File(src_path) as src, h5py.File(out_path, "w") as out:
    for name in src:
        ds = src[name]
        out.create_dataset(name, data=ds[...], chunks=ds.chunks, compression=357,
                           compression_opts=(60,))
with h5py.File(src_path) as o, h5py.File(out_path) as f:
    failures += check.check(o, f, 60.0, list(o.keys()))

for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
