#!/usr/bin/env bash
# Repack an HDF5 file through the deepcq filter (id 357) with h5repack, then check that the
# filter really ran: h5repack exits 0 and writes the data UNFILTERED when the plugin cannot
# load, so exit codes prove nothing. We check h5dump -pH for the filter, the stored size,
# and the data.
#
# Usage (from the repository root, after `cargo build --release`):
#   examples/h5repack_example.sh [in.h5] [out.h5]
# Without in.h5, a test file is made with third_party/venv (bash scripts/setup.sh).
#
# UD=357,0,1,60 means: filter 357, flags 0 (optional), 1 cd_value, PSNR >= 60 dB.
# More words: UD=357,0,3,625,0,1 is PSNR >= 62.5 dB (mantissa 625, kind 0, 1 decimal).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export HDF5_PLUGIN_PATH="$root/plugin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
in=${1:-$work/in.h5}
out=${2:-$work/out.h5}

if [ $# -lt 1 ]; then
  "$root/third_party/venv/bin/python" - "$in" <<'PY'
import sys, h5py, numpy as np
z, y, x = np.meshgrid(*(np.linspace(0, 1, n) for n in (32, 64, 64)), indexing="ij")
with h5py.File(sys.argv[1], "w") as f:
    f["field"] = (np.sin(7 * x + 2 * z) * np.cos(5 * y)).astype(np.float32)
    f["counts"] = np.arange(1000, dtype=np.int32)  # non-float: stored losslessly
PY
fi

h5repack -f UD=357,0,1,60 -l CHUNK=16x32x32 "$in" "$out" 2>/dev/null ||
  h5repack -f UD=357,0,1,60 "$in" "$out"
h5dump -pH "$out" | grep -q "FILTER_ID 357" || { echo "filter 357 not applied" >&2; exit 1; }
in_size=$(stat -c %s "$in")
out_size=$(stat -c %s "$out")
echo "repacked $in ($in_size bytes) -> $out ($out_size bytes)"
h5dump -pH -d /field "$out" | grep -E "SIZE|FILTER_ID|COMMENT" | sed 's/^ */  /'
# Integers come back exactly; floats within the target (h5diff with a relative tolerance).
h5diff "$in" "$out" /counts /counts && echo "integers: identical"
h5diff -d 0.01 "$in" "$out" /field /field >/dev/null && echo "floats: within 0.01 absolute"
[ "$out_size" -lt "$in_size" ] && echo "RESULT ok"
