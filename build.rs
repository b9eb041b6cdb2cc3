//! Generates the C header `include/h5z_deepcq.h` from `src/capi.rs` with cbindgen.
//!
//! The header is written to `OUT_DIR`; `tests/header_fresh.rs` fails when the committed
//! copy differs. `DEEPCQ_REFRESH_HEADER=1` also writes the committed copy. Only
//! `src/capi.rs` is parsed, so the build stays fast and no other public constant leaks
//! into the header.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/capi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=DEEPCQ_REFRESH_HEADER");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/capi.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not read src/capi.rs: {e}"));
    bindings.write_to_file(out.join("h5z_deepcq.h"));
    if std::env::var_os("DEEPCQ_REFRESH_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(root.join("include/h5z_deepcq.h"));
    }
}
