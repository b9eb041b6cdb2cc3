"""hdf5plugin imported before h5py, as its users do: each of its plugins exports wrappers
of a few HDF5 functions (H5Pget_filter_by_id2, H5Epush2, ...) that forward to h5py's
libhdf5. The filter must take h5py's libhdf5 for the only copy loaded: datasets written
through it meet the target, and a damaged chunk's reason is said as the HDF5 that called
drops it (HDF5 2.0), never as "several copies of libhdf5 are loaded".

usage: hdf5plugin_beside.py OUTPUT"""
import os
import sys

import hdf5plugin  # noqa: F401  (first: its plugins are loaded before the filter looks)
import h5py
import numpy as np

import check

out_path = sys.argv[1]
failures = []
with open("/proc/self/maps") as maps:
    plugins = {line.split()[-1] for line in maps if "hdf5plugin/plugins" in line}
if not plugins:
    failures.append("hdf5plugin loaded none of its plugins")
values = np.sin(np.arange(64 * 96) / 17.0).reshape(64, 96).astype("f4")
with h5py.File(out_path, "w") as out:
    out.create_dataset("field", data=values, chunks=(32, 48), compression=357,
                       compression_opts=(60,))
with h5py.File(out_path) as f:
    failures += check.check({"field": values}, f, 60.0, ["field"])

refused, said = check.read_damaged_chunk(os.path.dirname(os.path.abspath(out_path)),
                                         imports="hdf5plugin")
if not refused:
    failures.append("a chunk with a bad checksum was read")
if any("several copies" in line for line in said):
    failures.append(f"hdf5plugin's plugins were taken for copies of libhdf5: {said}")
if h5py.version.hdf5_version_tuple >= (2, 0, 0) and not (
        len(said) == 1 and "checksum" in said[0] and "drops" in said[0]):
    failures.append(f"the reason a chunk was refused was not said once on stderr: {said}")

for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
