"""deepcq for h5py without HDF5_PLUGIN_PATH, in the manner of hdf5plugin.

    import h5py
    import h5z_deepcq

    with h5py.File("out.h5", "w") as f:
        f.create_dataset("t", data=a, chunks=(64, 64, 64), **h5z_deepcq.DeepCQ(psnr=60))
        f.create_dataset("sst", data=sst, chunks=(8, 96, 128),
                         **h5z_deepcq.DeepCQ(psnr=50, missing=-9999.0, mode="fast"))

Importing the module registers the filter (id 357) with the HDF5 that h5py runs on, so
files written with it also read back in this process. `DeepCQ` asks the library itself
for the cd_values (`h5z_deepcq_cd_values`), so they are packed and checked exactly as
`deepcq cdvalues` and the filter do; a bad option raises ValueError with the library's
message.

The library is `$H5Z_DEEPCQ_LIBRARY`, else `libh5z_deepcq.so` in the folder above this
module's (scripts/install.sh puts this file in PREFIX/lib/python and the library in
PREFIX/lib), else the repository's plugin/ link to its release build (onnxruntime is
linked beside it there), else the release build itself. onnxruntime is found by the
library as always, beside the path it was loaded from first (README, "The surrogate at
write time"); reading never needs it.
"""

import ctypes
import numbers
import os
from collections.abc import Mapping

FILTER_ID = 357
_KINDS = {"psnr": 0, "ssim": 1, "ratio": 2, "abs": 3}
_COMPRESSORS = {"auto": 0, "sz3": 1, "zfp": 2, "sperr": 3}
_MODES = {"guarantee": 0, "predict": 1, "fast": 2}
_FLAG_ANALYTIC_FALLBACK = 1
_CD_MAX = 8

_here = os.path.dirname(os.path.abspath(__file__))
_library = None


def library_path():
    """Where the module loads libh5z_deepcq.so from (see the module doc)."""
    named = os.environ.get("H5Z_DEEPCQ_LIBRARY")
    if named:
        return named
    for candidate in (
        os.path.join(_here, "..", "libh5z_deepcq.so"),
        # A checkout: the plugin link has onnxruntime beside it, the build folder not.
        os.path.join(_here, "..", "plugin", "libh5z_deepcq.so"),
        os.path.join(_here, "..", "target", "release", "libh5z_deepcq.so"),
    ):
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    raise OSError(
        "libh5z_deepcq.so not found beside " + _here + ": set H5Z_DEEPCQ_LIBRARY to it "
        "(cargo build --release makes target/release/libh5z_deepcq.so)"
    )


def _lib():
    global _library
    if _library is None:
        lib = ctypes.CDLL(library_path())
        lib.H5PLget_plugin_info.restype = ctypes.c_void_p
        cd_args = [ctypes.c_uint, ctypes.c_double, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
        out_args = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_size_t)]
        lib.h5z_deepcq_cd_values.argtypes = cd_args + out_args
        lib.h5z_deepcq_cd_values_missing.argtypes = cd_args + [ctypes.c_double] + out_args
        lib.h5z_deepcq_last_error.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.h5z_deepcq_last_error.restype = ctypes.c_size_t
        _library = lib
    return _library


def _last_error(lib):
    buf = ctypes.create_string_buffer(1024)
    lib.h5z_deepcq_last_error(buf, len(buf))
    return buf.value.decode(errors="replace")


def register():
    """Registers the filter with h5py's HDF5; True when this call registered it, False
    when HDF5 already had it (from an earlier call, or from a plugin it found through
    HDF5_PLUGIN_PATH or its default plugin folder: that copy then does the filtering)."""
    import h5py

    if h5py.h5z.filter_avail(FILTER_ID):
        return False
    h5py.h5z.register_filter(_lib().H5PLget_plugin_info())  # raises if HDF5 refuses
    return True


class DeepCQ(Mapping):
    """`create_dataset` keyword arguments for deepcq: exactly one target (psnr= dB,
    ssim=, ratio=, or abs= an absolute error bound), compressor ("auto", "sz3", "zfp",
    "sperr"), mode ("guarantee", "predict", "fast"), missing= a value that marks missing
    data (stored exactly and left out of a PSNR target), allow_fallback= use SZ3's PSNR
    formula when onnxruntime or the model cannot load. docs/cd_values.md has the rest."""

    def __init__(self, psnr=None, ssim=None, ratio=None, abs=None, compressor="auto",
                 mode="guarantee", missing=None, allow_fallback=False):
        targets = {k: v for k, v in
                   {"psnr": psnr, "ssim": ssim, "ratio": ratio, "abs": abs}.items()
                   if v is not None}
        if len(targets) != 1:
            raise ValueError("name exactly one target: psnr=, ssim=, ratio= or abs=")
        ((kind, value),) = targets.items()
        # float() would take True as 1 dB and "60" as 60, and any non-empty string would
        # turn the fallback on: only numbers and a bool are taken.
        for name, given in ((kind, value), ("missing", missing)):
            if given is not None and (isinstance(given, bool)
                                      or not isinstance(given, numbers.Real)):
                raise ValueError(f"{name} must be a number, not {given!r}")
        if not isinstance(allow_fallback, bool):
            raise ValueError(f"allow_fallback must be True or False, not {allow_fallback!r}")
        for name, given, known in (("compressor", compressor, _COMPRESSORS),
                                   ("mode", mode, _MODES)):
            if given not in known:
                raise ValueError(f"{name} {given!r} is not one of {', '.join(known)}")
        lib = _lib()
        words = (ctypes.c_uint * _CD_MAX)()
        n = ctypes.c_size_t(_CD_MAX)
        args = [_KINDS[kind], float(value), _COMPRESSORS[compressor], _MODES[mode],
                _FLAG_ANALYTIC_FALLBACK if allow_fallback else 0]
        if missing is None:
            status = lib.h5z_deepcq_cd_values(*args, words, ctypes.byref(n))
        else:
            status = lib.h5z_deepcq_cd_values_missing(*args, float(missing), words,
                                                      ctypes.byref(n))
        if status != 0:
            raise ValueError(_last_error(lib))
        self.filter_options = tuple(words[: n.value])
        self._kwargs = {"compression": FILTER_ID, "compression_opts": self.filter_options}

    def __getitem__(self, key):
        return self._kwargs[key]

    def __iter__(self):
        return iter(self._kwargs)

    def __len__(self):
        return len(self._kwargs)

    def __repr__(self):
        return f"DeepCQ(compression={FILTER_ID}, compression_opts={self.filter_options})"


try:
    register()
except ImportError:  # no h5py: DeepCQ still packs options for other hosts
    pass
