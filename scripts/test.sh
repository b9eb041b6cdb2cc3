#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the plugin (cargo test alone builds only
# the rlib, not the cdylib HDF5 loads), then runs every test in the release profile (one
# profile, so SZ3's C++ compiles in one configuration).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
export ORT_DYLIB_PATH="$root/third_party/onnxruntime/libonnxruntime.so"
cargo build --release --lib
cargo test --release --all-targets -- --test-threads=2
