"""Writes, through the deepcq filter (HDF5_PLUGIN_PATH), the layouts `deepcq inspect` must
read beside the usual one: into FIRST (in HDF5 1.10's format), a dataset whose pipeline
ends with fletcher32, and one whose partial edge chunks HDF5 stores unfiltered
(H5Pset_chunk_opts, through ctypes: h5py has no call for it); into LATEST, a dataset in
the newest format of h5py's HDF5, which an older libhdf5 may not open.

usage: make_inspect_layouts.py FIRST LATEST"""
import ctypes
import glob
import os
import sys

import h5py
import numpy as np

DONT_FILTER_PARTIAL_CHUNKS = 2

x = np.sin(np.arange(100 * 60) / 50).reshape(100, 60).astype("f4")
with h5py.File(sys.argv[1], "w", libver=("v110", "v110")) as f:
    f.create_dataset("fletcher", data=x, chunks=(32, 32), compression=357,
                     compression_opts=(60,), fletcher32=True)
    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs", "libhdf5-*")
    hdf5 = ctypes.CDLL(glob.glob(libs)[0])
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((32, 32))
    dcpl.set_filter(357, 0, (60,))
    opts = ctypes.c_uint(DONT_FILTER_PARTIAL_CHUNKS)
    assert hdf5.H5Pset_chunk_opts(ctypes.c_int64(dcpl.id), opts) >= 0
    space = h5py.h5s.create_simple(x.shape)
    h5py.h5d.create(f.id, b"partial_raw", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl).write(
        h5py.h5s.ALL, h5py.h5s.ALL, x)
with h5py.File(sys.argv[1]) as f:
    for name in f:
        assert np.abs(f[name][...] - x).max() < 0.01, name
with h5py.File(sys.argv[2], "w", libver="latest") as f:
    f.create_dataset("latest", data=x, chunks=(32, 32), compression=357, compression_opts=(60,))
print("written")
