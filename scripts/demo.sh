#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and compresses a generated field with
# every codec (ratio, PSNR, SSIM, bound check, throughput), then meets PSNR targets with the
# learned chooser next to SZ3's PSNR formula.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
export ORT_DYLIB_PATH="$root/third_party/onnxruntime/libonnxruntime.so"
cargo run --release --quiet --bin deepcq -- demo
