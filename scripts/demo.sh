#!/usr/bin/env bash
# The main demo: installs what is missing, builds, and compresses a generated field with
# every codec, printing ratio, PSNR, SSIM, bound check and throughput.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cargo run --release --quiet --bin deepcq -- demo
