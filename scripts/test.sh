#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the plugin (cargo test alone does not
# put the cdylib where HDF5 loads it), then runs every test in the release profile (one
# profile, so SZ3's C++ compiles in one configuration).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
export ORT_DYLIB_PATH="$root/third_party/onnxruntime/libonnxruntime.so"
# Build every target first with the test feature set, so the plugin HDF5 loads (uplifted to
# target/release/) is the same build the tests link, and nothing compiles twice.
cargo build --release --all-targets
# On a fresh machine sz3-sys's cmake writes SZ3/version.hpp into the crate's source during
# the first build, so the next cargo command rebuilds it (and relinks the plugin) once.
# Take that rebuild here, so the tests run against the plugin they were built with.
cargo build --release --all-targets
# Said here, where it shows: cargo hides what passing tests print.
shared=${DEEPCQ_SHARED_DATA:-$root/../shared/data}
if [ -f "$shared/README.md" ]; then
  echo "test: the tests that read real fields read them from $shared"
else
  echo "test: no real fields at $shared: the tests skip their real-data parts (the rest runs)"
fi
cargo test --release --all-targets -- --test-threads=2
