"""h5z_deepcq_register called through ctypes before any HDF5 is loaded fails with
H5Z_DEEPCQ_ERR_HDF5 and says why; once h5py (its bundled HDF5) is imported, the same call
registers the filter: a failed lookup of HDF5 is not kept.

usage: register_late.py LIBRARY"""
import ctypes
import sys

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
print("\n".join(failures) if failures else "ALL OK")
sys.exit(1 if failures else 0)
