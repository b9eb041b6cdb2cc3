//! CI freshness check: the committed C header must equal what cbindgen generates from
//! src/capi.rs (build.rs writes the generated copy to OUT_DIR).

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/h5z_deepcq.h"));

#[test]
fn committed_header_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/h5z_deepcq.h");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == GENERATED,
        "include/h5z_deepcq.h is stale or missing: run \
         `DEEPCQ_REFRESH_HEADER=1 cargo build --release` and commit it"
    );
}
