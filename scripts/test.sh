#!/usr/bin/env bash
# Runs every test: installs what is missing, then one release cargo invocation builds the
# library, the plugin, the CLI and all tests (one profile, so SZ3's C++ compiles once).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
export ORT_DYLIB_PATH="$root/third_party/onnxruntime/libonnxruntime.so"
cargo test --release --all-targets -- --test-threads=2
