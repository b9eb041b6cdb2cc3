"""Checks that a copy of a file's deepcq datasets stores their chunks byte for byte:
`copies_keep_chunks.py <original.h5> <copy.h5> same|differ`. With `same` it also copies
the original's float datasets through h5py in this process (read whole, written into a
dataset set up alike) and checks those chunks the same way."""
import sys

import h5py
import numpy as np

FILTER = 357


def deepcq_datasets(h):
    names = []
    h.visititems(lambda name, obj: names.append(name)
                 if isinstance(obj, h5py.Dataset) and obj.chunks
                 and FILTER in [obj.id.get_create_plist().get_filter(i)[0]
                                for i in range(obj.id.get_create_plist().get_nfilters())]
                 and obj.dtype.kind == "f" else None)
    return sorted(names)


def chunks(dset):
    out = {}
    for i in range(dset.id.get_num_chunks()):
        info = dset.id.get_chunk_info(i)
        out[info.chunk_offset] = bytes(dset.id.read_direct_chunk(info.chunk_offset)[1])
    return out


def compare(a, b, names):
    """(chunks compared, chunks that differ)."""
    total = differ = 0
    for name in names:
        ca, cb = chunks(a[name]), chunks(b[name])
        assert ca.keys() == cb.keys(), name
        total += len(ca)
        differ += sum(ca[k] != cb[k] for k in ca)
    return total, differ


original, copy, expect = sys.argv[1], sys.argv[2], sys.argv[3]
with h5py.File(original) as a, h5py.File(copy) as b:
    names = deepcq_datasets(a)
    assert names, "no deepcq float dataset"
    total, differ = compare(a, b, names)
    print(f"{copy}: {differ} of {total} chunks differ from {original}")
    if expect == "same":
        assert differ == 0
        # A script's copy in one process: read whole, written into a dataset set up alike.
        scratch = copy + ".h5py.h5"
        with h5py.File(scratch, "w") as c:
            for name in names:
                src = a[name]
                dcpl = src.id.get_create_plist()
                flt = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
                cd = [f for f in flt if f[0] == FILTER][0][2]
                c.create_dataset(name, data=src[...], chunks=src.chunks,
                                 compression=FILTER, compression_opts=tuple(cd))
        with h5py.File(scratch) as c:
            total, differ = compare(a, c, names)
            print(f"h5py copy: {differ} of {total} chunks differ")
            assert differ == 0
            for name in names:
                assert np.array_equal(a[name][...], c[name][...], equal_nan=True), name
    else:
        assert differ > 0, "the copy was expected to compress its chunks again"
print("ALL OK")
