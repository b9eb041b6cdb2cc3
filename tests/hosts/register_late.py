"""h5z_deepcq_register called through ctypes before any HDF5 is loaded fails with
H5Z_DEEPCQ_ERR_HDF5 and says why; once h5py (its bundled HDF5) is imported, the same call
registers the filter: a failed lookup of HDF5 is not kept. A copy of HDF5 loaded after a
registration succeeded (netCDF4's, which its wheel bundles) gets the filter from the next
call too. HDF5_PLUGIN_PATH is unset first, so only registering makes the filter available.

usage: register_late.py LIBRARY"""
import ctypes
import os
import re
import sys

os.environ.pop("HDF5_PLUGIN_PATH", None)

lib = ctypes.CDLL(sys.argv[1])
failures = []


def last_error():
    buf = ctypes.create_string_buffer(1024)
    lib.h5z_deepcq_last_error(buf, ctypes.c_size_t(len(buf)))
    return buf.value.decode()



if "h5py" in sys.modules:
    failures.append("h5py was imported before the first call")
early = lib.h5z_deepcq_register()
said = last_error()
print(f"before h5py: {early} ({said})")
if early == 0 or "libhdf5" not in said:
    failures.append(f"registering without HDF5 returned {early}: {said}")

import h5py  # noqa: E402

late = lib.h5z_deepcq_register()
print(f"after h5py: {late}")
if late != 0:
    failures.append(f"registering after import h5py returned {late}")
if not h5py.h5z.filter_avail(357):
    failures.append("filter 357 not available to h5py after registering")

import netCDF4  # noqa: E402,F401  (a second libhdf5, loaded after the registration)

again = lib.h5z_deepcq_register()
print(f"after netCDF4: {again}")
if again != 0:
    failures.append(f"registering after import netCDF4 returned {again}")
with open("/proc/self/maps") as maps:
    copies = sorted(set(re.findall(r"\S*/libhdf5-[^/\s]*\.so\S*", maps.read())))
if len(copies) < 2:
    failures.append(f"expected two copies of libhdf5 loaded, found {copies}")
for path in copies:
    hdf5 = ctypes.CDLL(path)
    hdf5.H5Zfilter_avail.argtypes = [ctypes.c_int]
    hdf5.H5Zfilter_avail.restype = ctypes.c_int
    avail = hdf5.H5Zfilter_avail(357)
    print(f"{path}: filter 357 available: {avail}")
    if avail <= 0:
        failures.append(f"filter 357 not available in {path} after registering again")
print("\n".join(failures) if failures else "ALL OK")
sys.exit(1 if failures else 0)
