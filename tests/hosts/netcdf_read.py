"""netCDF-4 (netCDF4-python, whose wheel bundles netCDF-C 4.9 and HDF5 1.14) reads a file
whose data variable h5repack (Debian's HDF5) filtered with deepcq, through
HDF5_PLUGIN_PATH: dimensions, coordinates and attributes survive, and every chunk of the
variable meets the target.

usage: netcdf_read.py DIR TARGET_DB (writes DIR/plain.nc and DIR/filtered.nc)"""
import os
import subprocess
import sys

import netCDF4
import numpy as np

import check

folder, target = sys.argv[1], float(sys.argv[2])
plain, filtered = os.path.join(folder, "plain.nc"), os.path.join(folder, "filtered.nc")
z, y, x = np.meshgrid(np.linspace(0, 3, 20), np.linspace(0, 4, 60), np.linspace(0, 5, 70), indexing="ij")
field = (np.sin(x) * np.cos(y) + 0.3 * np.sin(2 * z + x)).astype("f4")
with netCDF4.Dataset(plain, "w") as d:
    for name, n in zip(("level", "lat", "lon"), field.shape):
        d.createDimension(name, n)
        d.createVariable(name, "f8", (name,))[:] = np.linspace(-1, 1, n)
    t = d.createVariable("t", "f4", ("level", "lat", "lon"), chunksizes=(10, 32, 32))
    t.units = "K"
    t[:] = field
subprocess.run(["h5repack", "-f", f"/t:UD=357,0,1,{target:g}", plain, filtered], check=True)

failures = []
with netCDF4.Dataset(plain) as a, netCDF4.Dataset(filtered) as b:
    if dict(b.dimensions.items()).keys() != dict(a.dimensions.items()).keys():
        failures.append(f"dimensions {list(b.dimensions)} instead of {list(a.dimensions)}")
    for name in ("level", "lat", "lon"):
        if not np.array_equal(a[name][:], b[name][:]):
            failures.append(f"coordinate {name} changed")
    if b["t"].units != "K":
        failures.append("attribute units lost")
    src, dst = a["t"][:].data, b["t"][:].data
    worst = min(check.chunk_psnr(src[s], dst[s]) for s in check.chunk_slices(src.shape, (10, 32, 32)))
    print(f"t: worst chunk PSNR {worst:.2f} dB (target {target}), file {os.path.getsize(filtered)} of {os.path.getsize(plain)} B")
    if worst < target:
        failures.append(f"t: chunk PSNR {worst:.2f} < {target}")
    if os.path.getsize(filtered) >= os.path.getsize(plain) / 2:
        failures.append("the filtered file is not half the plain one")
for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
