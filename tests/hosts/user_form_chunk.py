"""A deepcq chunk written with write_direct_chunk into a dataset whose cd_values are still
the user form (created with allow_unknown_filter where the plugin was not found, so the
filter's set_local never completed them) has no dataset chunk size to be checked against:
reading it must fail with the filter's reason (printed here, or on stderr where HDF5
drops it), not have HDF5 copy a whole 64 x 64 chunk out of the 40 x 64 values the chunk
decodes to. The chunk's bytes stay readable with read_direct_chunk. A write through the
filter is refused too, so HDF5 stores it raw (the filter is optional), exact.
HDF5_PLUGIN_PATH must name the plugin.

usage: user_form_chunk.py SCRATCH_DIR"""
import os
import subprocess
import sys

import h5py
import numpy as np

scratch = sys.argv[1]
path = os.path.join(scratch, "user_form.h5")
failures = []

# The dataset, created by a process that does not find the plugin.
without = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
subprocess.run(
    [sys.executable, "-c",
     "import sys, h5py\n"
     "with h5py.File(sys.argv[1], 'w') as f:\n"
     "    f.create_dataset('x', shape=(64, 64), chunks=(64, 64), dtype='f4',\n"
     "                     compression=357, compression_opts=(60,), allow_unknown_filter=True)\n",
     path],
    env=without, check=True)

# A chunk of 40 x 64 values, made by the filter for a dataset of that chunk.
small = os.path.join(scratch, "small.h5")
field = np.sin(np.arange(40 * 64, dtype="f4").reshape(40, 64) / 50)
with h5py.File(small, "w") as f:
    f.create_dataset("x", data=field, chunks=(40, 64), compression=357, compression_opts=(60,))
with h5py.File(small) as f:
    mask, chunk = f["x"].id.read_direct_chunk((0, 0))

with h5py.File(path, "a") as f:
    cd = f["x"].id.get_create_plist().get_filter_by_id(357)[1]
    print(f"cd_values as created: {cd}")
    if tuple(cd) != (60,):
        failures.append(f"expected the user form (60,), the file holds {cd}")
    f["x"].id.write_direct_chunk((0, 0), chunk, mask)

with h5py.File(path) as f:
    try:
        got = f["x"][...]
        failures.append(f"a chunk of another size read as a whole chunk: {got[38:42, :3]}")
    except OSError as e:
        print(f"read refused: {e}")
    if f["x"].id.read_direct_chunk((0, 0))[1] != chunk:
        failures.append("the chunk's bytes did not read back as written")

h5py.h5z.filter_avail(357)
with h5py.File(path, "a") as f:
    f["x"][...] = np.ones((64, 64), "f4")
with h5py.File(path) as f:
    mask = f["x"].id.read_direct_chunk((0, 0))[0]
    if mask != 1 or not (f["x"][...] == 1).all():
        failures.append(f"a write into it was not stored raw and exact (filter mask {mask})")

print("\n".join(failures) if failures else "ALL OK")
sys.exit(1 if failures else 0)
