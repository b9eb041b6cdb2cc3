"""Missing data, two ways.

1. Through h5py (HDF5 2.0): a field with an island of NaN, written to a dataset whose fill
   value is NaN. The NaNs must come back as NaN, the other values must meet the target
   with their own range, and the file must be compressed 8× (a NaN used to send its whole
   chunk to exact storage, about 1.7×; 32× now at 60 dB). The same through a dataset that
   declares no fill value: NaN marks itself.
2. Through h5repack (Debian's HDF5 1.10): a dataset whose land holds -9999 but whose HDF5
   fill value is the default (nothing marks the land), filtered with the missing value
   named in the cd_values (flags bit 1, words 6-7). Land must come back exactly, the ocean
   must meet the target over its own range, also after a second repack to other chunks
   (which carries the missing value in the stored cd_values); without the words, the ocean
   is measured against the land's range and misses the target by far.
3. Through h5py: a 5-D f64 dataset with a named missing value, whose stored cd_values must
   come back whole to h5py (which reads 16 words) and keep it when passed back in.

usage: missing_values.py FILE TARGET_DB"""
import os
import subprocess
import sys

import h5py
import numpy as np

import check

path, target = sys.argv[1], float(sys.argv[2])
z, y, x = np.meshgrid(np.linspace(0, 3, 32), np.linspace(0, 4, 64), np.linspace(0, 5, 64), indexing="ij")
field = (np.sin(2 * x) * np.cos(3 * y) + 0.3 * z).astype("f4")
field[(x - 2.5) ** 2 + (y - 2) ** 2 < 1.5] = np.nan
chunks = (16, 64, 64)
with h5py.File(path, "w") as f:
    f.create_dataset("t", data=field, chunks=chunks, compression=357,
                     compression_opts=(int(target),), fillvalue=np.float32("nan"))
failures = []
with h5py.File(path) as f:
    back = f["t"][...]
    failures += check.unfiltered_chunks(f["t"])
if not np.array_equal(np.isnan(field), np.isnan(back)):
    failures.append("NaNs moved")
worst = min(check.chunk_psnr(field[s], back[s]) for s in check.chunk_slices(field.shape, chunks))
size = os.path.getsize(path)
print(f"t: {np.isnan(field).mean():.0%} NaN, worst chunk PSNR {worst:.2f} dB over the rest "
      f"(target {target}), file {size} B for {field.nbytes} B")
if worst < target:
    failures.append(f"chunk PSNR {worst:.2f} < {target}")
if size * 8 > field.nbytes:
    failures.append("not compressed 8×")

# 1b. The same NaNs in a dataset with HDF5's default fill value (0, declared by nobody), as
# numpy and xarray users write them: NaN marks itself.
plain_nan = os.path.join(os.path.dirname(path), "nan_nofill.h5")
with h5py.File(plain_nan, "w") as f:
    f.create_dataset("t", data=field, chunks=chunks, compression=357,
                     compression_opts=(int(target),))
with h5py.File(plain_nan) as f:
    back = f["t"][...]
    stored = f["t"].id.get_storage_size()
    failures += check.unfiltered_chunks(f["t"])
worst = min(check.chunk_psnr(field[s], back[s]) for s in check.chunk_slices(field.shape, chunks))
print(f"t without a fill value: worst chunk PSNR {worst:.2f} dB over the rest, "
      f"stored {stored} B for {field.nbytes} B")
if not np.array_equal(np.isnan(field), np.isnan(back)):
    failures.append("NaNs moved without a fill value")
if worst < target or stored * 8 > field.nbytes:
    failures.append(f"NaN without a fill value: {worst:.2f} dB, {stored} B")

# 2. A missing value named in the cd_values, through h5repack.
LAND = np.float32(-9999.0)
y, x = np.meshgrid(np.linspace(0, 4, 96), np.linspace(0, 6, 128), indexing="ij")
sst = np.stack([(np.sin(2 * x + 0.1 * t) * np.cos(3 * y) + 20).astype("f4") for t in range(8)])
land = (x - 3) ** 2 + (y - 2) ** 2 < 2.0
sst[:, land] = LAND
plain, named, again = (os.path.join(os.path.dirname(path), n) for n in ("plain.h5", "named.h5", "again.h5"))
with h5py.File(plain, "w") as f:
    f.create_dataset("sst", data=sst, chunks=(8, 48, 64))
lo, hi = (int(w) for w in np.array([-9999.0], "<f8").view("<u4"))
words = [int(target), 0, 0, 0, 0, 2, lo, hi]


def repack(src, dst, *spec):
    subprocess.run(["h5repack", *spec, src, dst], check=True)
    with h5py.File(dst) as f:
        failures.extend(check.unfiltered_chunks(f["sst"]))
        return f["sst"][...], f["sst"].chunks, f["sst"].id.get_storage_size()


def ocean_psnr(a, b, chunks):
    worst = np.inf
    for s in check.chunk_slices(a.shape, chunks):
        sea = a[s] != LAND
        if sea.any():
            worst = min(worst, check.chunk_psnr(a[s][sea], b[s][sea]))
    return worst


back, chunks, stored = repack(plain, named, "-f", "sst:UD=357,0,8," + ",".join(map(str, words)))
worst = ocean_psnr(sst, back, chunks)
print(f"sst: {land.mean():.0%} land at -9999, worst chunk ocean PSNR {worst:.2f} dB "
      f"(target {target}), stored {stored} of {sst.nbytes} B")
if not np.array_equal(back == LAND, sst == LAND):
    failures.append("land not exact with the missing value named")
if worst < target or stored * 8 > sst.nbytes:
    failures.append(f"named missing value: ocean {worst:.2f} dB, {stored} B")
second, chunks, stored = repack(named, again, "-l", "sst:CHUNK=4x96x128")
worst = ocean_psnr(back, second, chunks)
print(f"sst repacked to chunks {chunks}: worst chunk ocean PSNR {worst:.2f} dB against the "
      f"first file, stored {stored} B")
if not np.array_equal(second == LAND, sst == LAND) or worst < target:
    failures.append(f"second repack lost the missing value: ocean {worst:.2f} dB")
if stored * 8 > sst.nbytes:
    failures.append(f"second repack: stored {stored} B, not 8× less than {sst.nbytes} B")
unnamed, chunks, _ = repack(plain, again, "-f", f"sst:UD=357,0,1,{int(target)}")
worst = ocean_psnr(sst, unnamed, chunks)
print(f"sst without the missing value: worst chunk ocean PSNR {worst:.2f} dB")
if worst >= target:
    failures.append("without the missing value the ocean met the target: the test shows nothing")

# 3. A 5-D f64 dataset (ensemble, time, level, lat, lon) with a missing value named in the
# user form: its stored cd_values (set_local's, with the value in the dataset's type) must
# fit the 16-word array h5py's get_filter reads them into (the long form has
# 10 + 5 + 2 = 17: word 17, the value's high word, was read past that array), so that
# h5py gives them whole and a dataset created from them alone (no fill value) keeps the
# missing value. (compression_opts is None for a filter h5py does not know.)
MISSING = -9999.0
e, t, z, y, x = np.meshgrid(*(np.linspace(0, 1, n) for n in (2, 3, 4, 24, 32)), indexing="ij")
ens = np.sin(4 * x + e) * np.cos(3 * y + t) + z
ens[..., :4, :5] = MISSING
lo, hi = (int(w) for w in np.array([MISSING], "<f8").view("<u4"))
chunks5 = (1, 3, 4, 24, 32)
five, five_again = (os.path.join(os.path.dirname(path), n) for n in ("five.h5", "five_again.h5"))
with h5py.File(five, "w") as f:
    f.create_dataset("ens", data=ens, chunks=chunks5, compression=357,
                     compression_opts=(int(target), 0, 0, 0, 0, 2, lo, hi))
with h5py.File(five) as f:
    opts = f["ens"].id.get_create_plist().get_filter(0)[2]
    back = f["ens"][...]
    failures += check.unfiltered_chunks(f["ens"])
print(f"ens: 5-D f64 with missing value {MISSING}: stored cd_values {len(opts)} words {opts}")
if len(opts) > 16:
    failures.append(f"5-D stored cd_values: {len(opts)} words")
with h5py.File(five_again, "w") as f:
    f.create_dataset("ens", data=back, chunks=chunks5, compression=357, compression_opts=opts)
with h5py.File(five_again) as f:
    again_opts = f["ens"].id.get_create_plist().get_filter(0)[2]
    second = f["ens"][...]
sea = ens != MISSING
worst = min(check.chunk_psnr(ens[s][sea[s]], second[s][sea[s]])
            for s in check.chunk_slices(ens.shape, chunks5))
print(f"ens written again from its stored cd_values alone: {again_opts == opts}, worst chunk "
      f"PSNR {worst:.2f} dB (two lossy rounds) over the values that are not missing")
if again_opts != opts or not np.array_equal(second == MISSING, ens == MISSING):
    failures.append("5-D: stored cd_values passed back in lost the settings or the missing value")
if worst < target - 3.02:
    failures.append(f"5-D: {worst:.2f} dB after two rounds")

for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
