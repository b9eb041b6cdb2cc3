"""h5py (whose wheel bundles HDF5 2.0) writes through the deepcq filter via
HDF5_PLUGIN_PATH, reads back, and checks every chunk; then bad cd_values, shuffle before
deepcq and scaleoffset or H5Z-ZFP after it must fail dataset creation with deepcq's
message; a chunk of integers copied into a dataset of larger chunks reads back padded
with zeros, a float type of another layout than IEEE's is stored exactly, and a chunk
whose checksum fails is refused with its reason on stderr.

usage: h5py_write.py INPUT OUTPUT"""
import os
import subprocess
import sys

import h5py
import numpy as np

import check

src_path, out_path = sys.argv[1], sys.argv[2]
with h5py.File(src_path) as src, h5py.File(out_path, "w") as out:
    # 62.5 dB is typed as mantissa 625 with 1 decimal.
    for name in src:
        ds = src[name]
        out.create_dataset(name, data=ds[...], chunks=ds.chunks, compression=357, compression_opts=(625, 0, 1))
with h5py.File(src_path) as o, h5py.File(out_path) as f:
    failures = check.check(o, f, 62.5, list(o.keys()))

try:
    with h5py.File(out_path, "a") as out:
        out.create_dataset("bad", data=np.zeros((8, 8), "f4"), chunks=(4, 4), compression=357,
                           compression_opts=(60, 9))
    failures.append("bad cd_values (kind 9) were accepted")
except Exception as e:  # h5py raises ValueError with HDF5's message
    print("bad cd_values rejected:", e)
    if "slot 1 (kind)" not in str(e):
        failures.append(f"error lacks deepcq's message: {e}")

# Shuffle first would hand deepcq byte planes, not floats: dataset creation must fail.
try:
    with h5py.File(out_path, "a") as out:
        out.create_dataset("shuffled", data=np.zeros((8, 8), "f4"), chunks=(4, 4), shuffle=True,
                           compression=357, compression_opts=(60,))
    failures.append("shuffle before deepcq was accepted")
except Exception as e:
    print("shuffle before deepcq rejected:", e)
    if "runs before deepcq" not in str(e):
        failures.append(f"error lacks deepcq's message: {e}")

# Scaleoffset after deepcq would read deepcq's bytes as the dataset's values (h5py's
# keywords put it first, so the pipeline is built by hand): dataset creation must fail.
try:
    with h5py.File(out_path, "a") as out:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((4, 4))
        dcpl.set_filter(357, 0, (60,))
        dcpl.set_scaleoffset(h5py.h5z.SO_FLOAT_DSCALE, 2)
        h5py.h5d.create(out.id, b"scaled_after", h5py.h5t.IEEE_F32LE,
                        h5py.h5s.create_simple((8, 8)), dcpl=dcpl)
    failures.append("scaleoffset after deepcq was accepted")
except Exception as e:
    print("scaleoffset after deepcq rejected:", e)
    if "runs after deepcq" not in str(e):
        failures.append(f"error lacks deepcq's message: {e}")

# A lossy third-party filter after deepcq would compress deepcq's bytes as values: H5Z-ZFP's
# id is refused, blosc's (a filter of bytes) is not. h5py sets an unknown filter as
# optional, so HDF5 needs neither plugin; this HDF5 then names the missing plugin as the
# error instead of deepcq's refusal, so the refusal shows only as the failed creation.
def create_after_deepcq(out, filter_id):
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((4, 4))
    dcpl.set_filter(357, 0, (60,))
    dcpl.set_filter(filter_id, h5py.h5z.FLAG_OPTIONAL, (3, 0, 0, 0, 0, 0))
    h5py.h5d.create(out.id, f"after_{filter_id}".encode(), h5py.h5t.IEEE_F32LE,
                    h5py.h5s.create_simple((8, 8)), dcpl=dcpl)


with h5py.File(out_path, "a") as out:
    create_after_deepcq(out, 32001)
    try:
        create_after_deepcq(out, 32013)
        failures.append("H5Z-ZFP after deepcq was accepted")
    except Exception as e:
        print("H5Z-ZFP after deepcq rejected:", e)

# A chunk of integers copied as stored into a dataset of larger chunks decodes short.
# HDF5 copies a whole chunk out of what the filter returns, so the filter pads it with
# zeros rather than let HDF5 read past the end of its buffer.
with h5py.File(out_path, "a") as out:
    small = out.create_dataset("ints_small", data=np.arange(1, 257, dtype="i4"), chunks=(256,),
                               compression=357, compression_opts=(60,))
    mask, stored = small.id.read_direct_chunk((0,))
    big = out.create_dataset("ints_big", shape=(1024,), dtype="i4", chunks=(1024,),
                             compression=357, compression_opts=(60,))
    big.id.write_direct_chunk((0,), stored, mask)
with h5py.File(out_path) as f:
    got = f["ints_big"][...]
    if not (np.array_equal(got[:256], np.arange(1, 257)) and not got[256:].any()):
        failures.append(f"a short chunk of integers read back as {got[250:262]}")

# A float of another layout than IEEE's (its exponent bias moved): its bits mean other
# values, so the filter stores them exactly instead of compressing them as IEEE floats.
odd = h5py.h5t.IEEE_F32LE.copy()
odd.set_ebias(100)
bits = np.sin(np.arange(256) / 20).astype("f4").view("u4")
with h5py.File(out_path, "a") as out:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((256,))
    dcpl.set_filter(357, 0, (60,))
    space = h5py.h5s.create_simple((256,))
    h5py.h5d.create(out.id, b"odd_float", odd, space, dcpl=dcpl).write(
        h5py.h5s.ALL, h5py.h5s.ALL, bits, mtype=odd)
with h5py.File(out_path) as f:
    back = np.zeros(256, "u4")
    h5py.h5d.open(f.id, b"odd_float").read(h5py.h5s.ALL, h5py.h5s.ALL, back, mtype=odd)
    if not np.array_equal(back, bits):
        failures.append(f"a float with exponent bias 100 came back changed ({back[:3]})")

# A chunk whose checksum fails: HDF5 2.0 drops the message the filter pushes onto its
# error stack, so the filter says it on stderr (once per process), in a fresh process.
refused, said = check.read_damaged_chunk(os.path.dirname(os.path.abspath(out_path)))
if not refused:
    failures.append("a chunk with a bad checksum was read")
elif h5py.version.hdf5_version_tuple >= (2, 0, 0) and not (
        len(said) == 1 and "checksum" in said[0]):
    failures.append(f"the reason a chunk was refused was not said once on stderr: {said}")

for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
