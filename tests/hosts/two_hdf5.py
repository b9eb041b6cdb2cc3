"""netCDF4 and h5py in one process, each with the libhdf5 its wheel bundles, netCDF4
imported first so that its copy is loaded first: h5py writes through the deepcq filter
(HDF5_PLUGIN_PATH), which must answer h5py's copy, and every chunk read back meets the
target. Then again while netCDF4 holds deepcq variables open (netCDF-C keeps their
datasets open): its copy's property lists then carry the numbers of h5py's, and every one
of 200 new h5py datasets must still have its chunks through the filter (h5py sets it
optional: a chunk the filter failed is stored raw, filter mask 1). Last, a damaged
chunk's reason reaches stderr when h5py reads it beside netCDF4.

usage: two_hdf5.py INPUT OUTPUT"""
import os
import re
import subprocess
import sys

import netCDF4  # noqa: F401  (first: its libhdf5 is loaded before h5py's)
import h5py
import numpy as np

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

folder = os.path.dirname(os.path.abspath(out_path))
plain, filtered = os.path.join(folder, "plain.nc"), os.path.join(folder, "filtered.nc")
rng = np.random.default_rng(5)
with netCDF4.Dataset(plain, "w") as d:
    d.createDimension("y", 64)
    d.createDimension("x", 64)
    for i in range(8):
        d.createVariable(f"v{i}", "f4", ("y", "x"), chunksizes=(32, 32))[:] = rng.random((64, 64))
subprocess.run(["h5repack", "-f", "UD=357,0,1,60", plain, filtered], check=True)
with netCDF4.Dataset(filtered) as held, h5py.File(os.path.join(folder, "many.h5"), "w") as f:
    for i in range(8):
        held[f"v{i}"][:]
    raw = []
    for k in range(200):
        ds = f.create_dataset(f"d{k}", data=rng.random((64, 64), dtype="f4"), chunks=(32, 32),
                              compression=357, compression_opts=(60,))
        if ds.id.get_chunk_info(0).filter_mask != 0:
            raw.append(ds.name)
    if raw:
        failures.append(
            f"{len(raw)} of 200 datasets stored raw beside open netCDF variables: {raw[:5]}")

# A chunk whose checksum fails, read by h5py while netCDF4's copy was loaded first: the
# filter function cannot tell which copy called it, so it says the reason on stderr
# rather than push it onto a copy whose stack nobody reads (netCDF4's, where h5py's HDF5
# 2.0 would have dropped it from its own anyway).
refused, said = check.read_damaged_chunk(folder, imports="netCDF4")
if not refused:
    failures.append("a chunk with a bad checksum was read beside netCDF4")
elif not (len(said) == 1 and "checksum" in said[0]):
    failures.append(f"beside netCDF4, a refused chunk's reason was not said on stderr: {said}")

for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
