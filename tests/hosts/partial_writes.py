"""Time series written a step at a time into chunks that span 16 steps, where HDF5 must
compress each chunk after every step and read it back before the next: (1) a fixed-size
dataset through h5py's default chunk cache (1 MiB), which cannot hold the 16 chunks (4 MiB)
each step touches; (2) an extendible dataset grown by one step at a time (resize) with no
chunk cache; (3) each step written as 2×2 subdomains that do not line up with the chunks,
so that a chunk holds holes of fill values inside its data between writes; (4) the last
8 steps written again with other values, as a restart from a checkpoint does, and all
steps but the first again in one write (a sixteenth of the chunk left as read). Every chunk
must still meet the target against the values written last (deepcq puts back the
originals of what it decoded, src/h5/rewrites.rs); before it did, the errors of the
repeated compressions added up to 25.5 dB (1) and 25.1 dB (2) at a 40 dB target, and
before it put back originals around holes and rewritten values, (3) ended at -14 dB and
(4) below the target too, and while an eighth of a chunk had to be left as read for its
originals to come back, (5) ended at 39.6 dB for 40.

usage: partial_writes.py DIR TARGET_DB"""
import os
import sys

import h5py
import numpy as np

import check

folder, target = sys.argv[1], float(sys.argv[2])
steps = 16


def field(n):
    t, y, x = np.meshgrid(np.arange(steps), np.linspace(0, 6, n), np.linspace(0, 6, n), indexing="ij")
    return (1000 + np.sin(x + 0.1 * t) * np.cos(y) + 0.2 * np.sin(3 * x * y)).astype("f4")


def fixed(path, a, chunks):
    with h5py.File(path, "w", rdcc_nbytes=1 << 20) as f:
        d = f.create_dataset("t", shape=a.shape, dtype="f4", chunks=chunks, compression=357,
                             compression_opts=(int(target),))
        for step in range(steps):
            d[step] = a[step]


def extendible(path, a, chunks):
    with h5py.File(path, "w", rdcc_nbytes=0) as f:
        d = f.create_dataset("t", shape=(0,) + a.shape[1:], maxshape=(None,) + a.shape[1:],
                             dtype="f4", chunks=chunks, compression=357,
                             compression_opts=(int(target),))
        for step in range(steps):
            d.resize(step + 1, axis=0)
            d[step] = a[step]


def tiles(path, a, chunks):
    half = a.shape[1] // 2
    with h5py.File(path, "w", rdcc_nbytes=0) as f:
        d = f.create_dataset("t", shape=a.shape, dtype="f4", chunks=chunks, compression=357,
                             compression_opts=(int(target),))
        for step in range(steps):
            for ys in (slice(0, half), slice(half, None)):
                for xs in (slice(0, half), slice(half, None)):
                    d[step, ys, xs] = a[step, ys, xs]


def restarted(path, a, chunks):
    first = a[::-1] + 0.5  # other values, written first for the steps a restart repeats
    with h5py.File(path, "w", rdcc_nbytes=0) as f:
        d = f.create_dataset("t", shape=a.shape, dtype="f4", chunks=chunks, compression=357,
                             compression_opts=(int(target),))
        for step in range(steps):
            d[step] = a[step] if step < steps // 2 else first[step]
        for step in range(steps // 2, steps):
            d[step] = a[step]


def restarted_early(path, a, chunks):
    first = a[::-1] + 0.5
    with h5py.File(path, "w", rdcc_nbytes=0) as f:
        d = f.create_dataset("t", shape=a.shape, dtype="f4", chunks=chunks, compression=357,
                             compression_opts=(int(target),))
        d[...] = np.concatenate([a[:1], first[1:]])
        d[1:] = a[1:]  # all steps but the first again, in one write


failures = []
for name, write, n in (("fixed, 1 MiB cache", fixed, 256), ("extendible, no cache", extendible, 64),
                       ("tiles, no cache", tiles, 96), ("restarted, no cache", restarted, 64),
                       ("restarted_early, no cache", restarted_early, 64)):
    a, chunks = field(n), (16, 64, 64)
    path = os.path.join(folder, name.split(",")[0] + ".h5")
    write(path, a, chunks)
    with h5py.File(path) as f:
        back = f["t"][...]
        failures += [f"{name}: {m}" for m in check.unfiltered_chunks(f["t"])]
    psnrs = [check.chunk_psnr(a[s], back[s]) for s in check.chunk_slices(a.shape, chunks)]
    size = os.path.getsize(path)
    print(f"{name}: worst chunk PSNR {min(psnrs):.2f} dB, median {np.median(psnrs):.2f} "
          f"(target {target}), file {size} B for {a.nbytes} B")
    if min(psnrs) < target:
        failures.append(f"{name}: chunk PSNR {min(psnrs):.2f} < {target}")
    if size > a.nbytes / 4:
        failures.append(f"{name}: not compressed 4×")
# A dataset read and written into another set up alike: each chunk the filter decoded comes
# back unchanged and is stored as it was, not compressed again with a second error.
with h5py.File(path, "a") as f:
    t = f["t"]
    copy = f.create_dataset("copy", shape=t.shape, dtype="f4", chunks=t.chunks, compression=357,
                            compression_opts=(int(target),))
    copy[...] = t[...]
with h5py.File(path) as f:
    offsets = [tuple(s.start for s in c) for c in check.chunk_slices(f["t"].shape, f["t"].chunks)]
    for o in offsets:
        if f["t"].id.read_direct_chunk(o)[1] != f["copy"].id.read_direct_chunk(o)[1]:
            failures.append(f"the copy's chunk at {o} was stored anew")
    if not np.array_equal(f["t"][...], f["copy"][...]):
        failures.append("the copy reads back other values")
for msg in failures:
    print("FAIL", msg)
print("ALL OK" if not failures else f"{len(failures)} FAILURES")
sys.exit(1 if failures else 0)
