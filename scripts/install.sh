#!/usr/bin/env bash
# Installs a built deepcq under PREFIX (after `cargo build --release`):
#   PREFIX/lib/libh5z_deepcq.so          the filter and the in-situ API (debug info stripped)
#   PREFIX/lib/libonnxruntime.so         found there by the filter and the CLI, no env needed
#   PREFIX/lib/hdf5/plugin/              the folder to give HDF5_PLUGIN_PATH (a link to the library)
#   PREFIX/include/h5z_deepcq.h, .f90    C header and Fortran module source
#   PREFIX/lib/python/h5z_deepcq.py      h5py helper: registers the filter, DeepCQ(psnr=60)
#   PREFIX/bin/deepcq                    the command line
# Usage: bash scripts/install.sh PREFIX [ONNXRUNTIME]
# ONNXRUNTIME defaults to $ORT_DYLIB_PATH, then third_party/onnxruntime/libonnxruntime.so
# (scripts/setup.sh fetches it); with none, the library is installed without it and says so.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:?usage: scripts/install.sh PREFIX [path/to/libonnxruntime.so]}
if [[ $# -gt 2 ]]; then
  echo "usage: scripts/install.sh PREFIX [path/to/libonnxruntime.so]" >&2
  exit 1
fi
if [[ $# -ge 2 && ! -f $2 ]]; then
  echo "install: $2 is not a file (name libonnxruntime.so)" >&2
  exit 1
fi
ort=${2:-${ORT_DYLIB_PATH:-$root/third_party/onnxruntime/libonnxruntime.so}}
command -v strip > /dev/null || { echo "install: strip (binutils) is missing" >&2; exit 1; }
lib=$root/target/release/libh5z_deepcq.so
cli=$root/target/release/deepcq
for built in "$lib" "$cli"; do
  [[ -f $built ]] || { echo "install: $built is missing: run cargo build --release first" >&2; exit 1; }
done

# Readable by every user of a shared tree whatever the umask, the prefix's missing parents
# too (install -d gives its mode to the last folder only).
(umask 022 && mkdir -p -- "$prefix")
for dir in "$prefix" "$prefix/lib" "$prefix/lib/hdf5" "$prefix/lib/hdf5/plugin" \
  "$prefix/lib/python" "$prefix/include" "$prefix/bin"; do
  [[ -d $dir ]] || install -d -m 0755 "$dir"
done
# Absolute, for the paths printed below (an rpath relative to the working directory breaks).
prefix=$(CDPATH='' cd -- "$prefix" > /dev/null && pwd)
# The release build keeps line tables (and the C++ codecs full debug info): a 180 MB file
# to copy to every node. Installed copies carry none of it (about 5 MB).
install -m 0755 "$lib" "$prefix/lib/libh5z_deepcq.so"
strip --strip-debug "$prefix/lib/libh5z_deepcq.so"
install -m 0755 "$cli" "$prefix/bin/deepcq"
strip --strip-debug "$prefix/bin/deepcq"
ln -sfn ../../libh5z_deepcq.so "$prefix/lib/hdf5/plugin/libh5z_deepcq.so"
install -m 0644 "$root/include/h5z_deepcq.h" "$root/include/h5z_deepcq.f90" "$prefix/include/"
install -m 0644 "$root/python/h5z_deepcq.py" "$prefix/lib/python/"
if [[ -f $ort && $ort -ef $prefix/lib/libonnxruntime.so ]]; then
  # ORT_DYLIB_PATH names the installed copy itself (a module file's): it stays.
  :
elif [[ -f $ort ]]; then
  install -m 0755 "$ort" "$prefix/lib/libonnxruntime.so"
elif [[ -f $prefix/lib/libonnxruntime.so ]]; then
  echo "install: no onnxruntime at $ort: the one installed before stays in $prefix/lib" >&2
else
  echo "install: no onnxruntime at $ort: writes will need ORT_DYLIB_PATH (reads never do)" >&2
fi
# Quoted, so that the lines can be pasted whatever the prefix holds.
q=$(printf '%q' "$prefix")
cat <<EOF
installed deepcq in $prefix
  export HDF5_PLUGIN_PATH=$q/lib/hdf5/plugin
  C:       -I$q/include -L$q/lib -lh5z_deepcq -Wl,-rpath,$q/lib
  Fortran: compile $q/include/h5z_deepcq.f90 with your program, link as C
  h5py:    PYTHONPATH=$q/lib/python, then import h5z_deepcq (no plugin path needed)
  CLI:     $q/bin/deepcq info
EOF
