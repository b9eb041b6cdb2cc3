"""Checks a file written through the deepcq filter against its original, chunk by chunk.

usage: check.py ORIGINAL FILTERED TARGET_DB [DATASET ...]

For every dataset: the filter (id 357) is in the pipeline; every stored chunk starts with
the deepcq magic; float data meets PSNR >= TARGET_DB on every chunk, measured on the part of
the chunk inside the dataset (edge chunks) with the chunk's own value range, and NaNs come
back as NaNs; everything else comes back bit-identical; compressible floats are stored
smaller than raw, and a dataset named NAME_be (big-endian in the file) at most 2% larger than
NAME. Prints one line per dataset and exits 1 on any failure."""
import itertools
import sys

import h5py
import numpy as np

FILTER_ID = 357


def chunk_psnr(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    finite = np.isfinite(a)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return -np.inf
    # An infinity comes back as itself (a lossy codec would not bound its error).
    inf = np.isinf(a)
    if not np.array_equal(a[inf], b[inf]):
        return -np.inf
    a, b = a[finite], b[finite]
    if a.size == 0:
        return np.inf
    if np.array_equal(a, b):
        return np.inf
    rng = a.max() - a.min()
    if rng == 0:
        return -np.inf
    # Errors as fractions of the range, so that squaring stays in f64's range whatever the
    # data's magnitude (the errors of values near 1e-170 would square to 0).
    return -10 * np.log10(np.mean(((a - b) / rng) ** 2))


def chunk_slices(shape, chunks):
    ranges = [range(0, n, c) for n, c in zip(shape, chunks)]
    for start in itertools.product(*ranges):
        yield tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunks, shape))


def unfiltered_chunks(dset):
    """Failures for the stored chunks of dset the filter did not write: h5py adds filter 357
    as optional, so HDF5 stores a chunk the filter fails on raw, with its filter-mask bit
    set, and that chunk then reads back exact. Every chunk must carry no mask bit and start
    with the magic DQ, version 7 or 8 (8 only for a compact SPERR stream by rate)."""
    failures = []
    dsid = dset.id
    infos = []
    if hasattr(dsid, "chunk_iter"):  # HDF5 >= 1.12.3: one walk of the index
        dsid.chunk_iter(infos.append)
    else:  # each call walks the index from its start
        infos = [dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks())]
    for info in infos:
        mask, payload = dsid.read_direct_chunk(info.chunk_offset)
        if mask != 0 or info.filter_mask != 0:
            failures.append(f"{dset.name}: chunk at {info.chunk_offset} skipped a filter ({mask})")
        elif payload[:2] != b"DQ" or payload[2] not in (7, 8):
            failures.append(f"{dset.name}: chunk at {info.chunk_offset} is not a deepcq chunk")
    if not infos:
        failures.append(f"{dset.name}: no chunk stored")
    return failures


def check(original, filtered, target, names):
    failures = []
    for name in names:
        src, dst = original[name], filtered[name]
        if str(FILTER_ID) not in dst._filters:
            failures.append(f"{name}: filter {FILTER_ID} not in pipeline {dst._filters}")
            continue
        failures += unfiltered_chunks(dst)
        a, b = src[...], dst[...]
        stored, raw = dst.id.get_storage_size(), a.nbytes
        if a.dtype.kind == "f":
            worst = min(chunk_psnr(a[s], b[s]) for s in chunk_slices(a.shape, dst.chunks))
            ok = worst >= target
            compressible = np.isfinite(a).all() and a.max() > a.min() and a.size >= 1000
            if compressible and stored >= raw:
                failures.append(f"{name}: stored {stored} B >= raw {raw} B")
            print(f"{name}: worst chunk PSNR {worst:.2f} dB (target {target}), stored {stored} of {raw} B")
            if not ok:
                failures.append(f"{name}: chunk PSNR {worst:.2f} < {target}")
        else:
            same = a.tobytes() == b.tobytes()
            print(f"{name}: lossless {'identical' if same else 'DIFFERENT'}, stored {stored} of {raw} B")
            if not same:
                failures.append(f"{name}: non-float data changed")
    for name in names:
        twin = name[: -len("_be")]
        if name.endswith("_be") and twin in names:
            big, little = (filtered[n].id.get_storage_size() for n in (name, twin))
            if big > 1.02 * little:
                failures.append(f"{name}: stored {big} B against {little} B little-endian")
    return failures


def read_damaged_chunk(folder, imports="h5py"):
    """Writes a deepcq dataset whose one chunk fails its checksum and reads it in a fresh
    process that imports `imports` first (HDF5 2.0 drops the message a filter pushes, and
    the filter says its first failure per process on stderr). Returns whether the read
    was refused and the stderr lines the filter said."""
    import os
    import subprocess
    path = os.path.join(folder, "damaged.h5")
    with h5py.File(path, "w") as out:
        damaged = out.create_dataset("damaged", data=np.sin(np.arange(4096) / 9).astype("f4"),
                                     chunks=(4096,), compression=357, compression_opts=(60,))
        mask, stored = damaged.id.read_direct_chunk((0,))
        damaged.id.write_direct_chunk((0,), stored[:-1] + bytes([stored[-1] ^ 1]), mask)
    reader = (f"import {imports}, sys\n"
              "import h5py\n"
              "try:\n"
              "    h5py.File(sys.argv[1])['damaged'][...]\n"
              "except OSError as e:\n"
              "    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "H5Z_DEEPCQ_LOG"}
    read = subprocess.run([sys.executable, "-c", reader, path], env=env, capture_output=True,
                          text=True)
    print(read.stdout, read.stderr, sep="")
    said = [line for line in read.stderr.splitlines() if line.startswith("h5z-deepcq:")]
    return "refused:" in read.stdout, said


def main():
    original, filtered, target = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with h5py.File(original) as o, h5py.File(filtered) as f:
        names = sys.argv[4:] or list(o.keys())
        failures = check(o, f, target, names)
    for msg in failures:
        print("FAIL", msg)
    print("ALL OK" if not failures else f"{len(failures)} FAILURES")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
