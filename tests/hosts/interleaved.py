"""Two variables of one shape and one filter setting, written a slab at a time in turn
(temperature, then pressure, then the next step), as a model writes its output: each must
be compressed exactly as it is when written alone, in its own process. What guarantee
and fast mode learn from a dataset's chunks is kept per open dataset (src/memory.rs,
src/h5/filter.rs encode_dataset_chunk); when it was kept per filter setting, the two
variables taught each other, and their chunks took other bounds and compressions.

usage: interleaved.py DIR TARGET_DB MODE"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

import check

folder, target, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
steps, n = 12, 64


def fields():
    rng = np.random.default_rng(11)
    t, y, x = np.meshgrid(np.arange(steps), np.linspace(0, 5, n), np.linspace(0, 5, n), indexing="ij")
    smooth = 280 + 20 * np.sin(x + 0.2 * t) * np.cos(0.7 * y)
    rough = 1e5 + 300 * np.cos(2 * x * y + 0.3 * t) + 30 * rng.standard_normal(x.shape)
    return {"temperature": smooth.astype("f4"), "pressure": rough.astype("f4")}


def write(path, names, interleaved):
    data = fields()
    with h5py.File(path, "w", rdcc_nbytes=0) as f:
        sets = {name: f.create_dataset(name, shape=(steps, n, n), dtype="f4", chunks=(1, n, n),
                                       compression=357, compression_opts=(target, 0, 0, 0, mode))
                for name in names}
        order = ([(s, name) for s in range(steps) for name in names] if interleaved
                 else [(s, name) for name in names for s in range(steps)])
        for step, name in order:
            sets[name][step] = data[name][step]


def traced(label, names, interleaved):
    """Writes in a fresh process (memory starts empty) and returns its trace records."""
    path = os.path.join(folder, label + ".h5")
    trace = os.path.join(folder, label + ".jsonl")
    if os.path.exists(trace):
        os.remove(trace)
    env = dict(os.environ, H5Z_DEEPCQ_TRACE=trace)
    subprocess.run([sys.executable, __file__, folder, str(target), str(mode), path,
                    "interleaved" if interleaved else "alone", *names], env=env, check=True)
    with h5py.File(path) as f:
        for name in names:
            original, back = fields()[name], f[name][...]
            worst = min(check.chunk_psnr(original[s], back[s])
                        for s in check.chunk_slices(original.shape, (1, n, n)))
            assert worst >= target, (label, name, worst)
            unfiltered = check.unfiltered_chunks(f[name])
            assert not unfiltered, (label, unfiltered)
    return [json.loads(line) for line in open(trace)]


if len(sys.argv) > 4:
    # One writer process: PATH, ORDER, NAMES.
    write(sys.argv[4], sys.argv[6:], sys.argv[5] == "interleaved")
    sys.exit(0)


def what(record):
    return record["codec"], record["bound"], record["compressions"], record["bytes_out"]


alone = {name: [what(r) for r in traced("alone_" + name, [name], False)] for name in fields()}
together = [what(r) for r in traced("together", list(fields()), True)]
assert len(together) == 2 * steps, len(together)
for i, name in enumerate(fields()):
    assert together[i::2] == alone[name], (name, together[i::2], alone[name])
    print(f"{name}: {sum(c for _, _, c, _ in alone[name])} compressions, "
          f"{sum(b for *_, b in alone[name])} bytes, alone and interleaved")
print("ALL OK")
