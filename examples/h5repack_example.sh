#!/usr/bin/env bash
# Repack an HDF5 file through the deepcq filter (id 357) with h5repack, then check that the
# filter really ran: h5repack exits 0 and writes the data UNFILTERED when the plugin cannot
# load, so exit codes prove nothing. We check h5dump -pH for the filter, the stored size,
# and the data.
#
# Usage (from the repository root, after `cargo build --release`):
#   examples/h5repack_example.sh [in.h5] [out.h5]
# Without in.h5, a test file is made with third_party/venv (bash scripts/setup.sh) and
# checked dataset by dataset. With it, out.h5 defaults to in.deepcq.h5 beside it, and each
# float dataset's PSNR is printed.
#
# UD=357,0,1,60 means: filter 357, flags 0 (mandatory: a chunk the filter cannot write
# fails the write), 1 cd_value, PSNR >= 60 dB.
# More words: UD=357,0,3,625,0,1 is PSNR >= 62.5 dB (mantissa 625, kind 0, 1 decimal).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export HDF5_PLUGIN_PATH="$root/plugin"
python="$root/third_party/venv/bin/python"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ $# -lt 1 ]; then
  in=$work/in.h5
  out=$work/out.h5
  "$python" - "$in" <<'PY'
import sys, h5py, numpy as np
z, y, x = np.meshgrid(*(np.linspace(0, 1, n) for n in (32, 64, 64)), indexing="ij")
with h5py.File(sys.argv[1], "w") as f:
    f["field"] = (np.sin(7 * x + 2 * z) * np.cos(5 * y)).astype(np.float32)
    f["counts"] = np.arange(1000, dtype=np.int32)  # non-float: stored losslessly
PY
else
  # A file of yours: the output goes beside it unless named (the scratch folder goes).
  in=$1
  out=${2:-${in%.h5}.deepcq.h5}
fi

# The generated 3-D file is cut into 16x32x32 chunks; a file of yours keeps its own
# layout (h5repack chunks contiguous datasets itself).
layout=()
[ $# -lt 1 ] && layout=(-l CHUNK=16x32x32)
h5repack -f UD=357,0,1,60 ${layout[@]+"${layout[@]}"} "$in" "$out"
# Captured first: grep -q may exit before h5dump has written everything (SIGPIPE).
header=$(h5dump -pH "$out")
grep -q "FILTER_ID 357" <<<"$header" || { echo "filter 357 not applied" >&2; exit 1; }
in_size=$(stat -c %s "$in")
out_size=$(stat -c %s "$out")
echo "repacked $in ($in_size bytes) -> $out ($out_size bytes)"
if [ $# -ge 1 ]; then
  # Each float dataset's PSNR over its finite values (a fill value marking missing data is
  # kept exactly but counts here; the filter meets the target over the real values).
  "$python" - "$in" "$out" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
def visit(name, obj):
    if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f" and obj.size:
        x = obj[...].astype(np.float64)
        y = b[name][...].astype(np.float64)
        keep = np.isfinite(x)
        err = np.mean((x[keep] - y[keep]) ** 2) if keep.any() else 0.0
        span = x[keep].max() - x[keep].min() if keep.any() else 0.0
        psnr = 20 * np.log10(span) - 10 * np.log10(err) if err > 0 and span > 0 else np.inf
        print(f"{name}: psnr={psnr:.2f} dB over its finite values")
a.visititems(visit)
PY
  echo "RESULT ok"
  exit 0
fi
h5dump -pH -d /field "$out" | grep -E "SIZE|FILTER_ID|COMMENT" | sed 's/^ */  /'
# Integers come back exactly; floats meet the PSNR target (which bounds no single value's
# error, so h5diff's point-wise tolerance is not the check).
h5diff "$in" "$out" /counts /counts >/dev/null || { echo "integers changed" >&2; exit 1; }
echo "integers: identical"
"$python" - "$in" "$out" <<'PY'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1])["field"][...].astype(np.float64)
b = h5py.File(sys.argv[2])["field"][...].astype(np.float64)
psnr = 20 * np.log10(a.max() - a.min()) - 10 * np.log10(np.mean((a - b) ** 2))
print(f"floats: PSNR {psnr:.2f} dB (target 60), largest error {np.abs(a - b).max():.3g}")
sys.exit(0 if psnr >= 60 else 1)
PY
[ "$out_size" -lt "$in_size" ] || { echo "not smaller than the input" >&2; exit 1; }
echo "RESULT ok"
