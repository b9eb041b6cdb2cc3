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

/// The Fortran module is written by hand, so check it against the header: every function
/// is bound under its C name, and every constant has the same value.
#[test]
fn fortran_module_mirrors_the_header() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/h5z_deepcq.f90");
    let fortran = std::fs::read_to_string(path).expect("include/h5z_deepcq.f90");
    let lower = fortran.to_lowercase();
    let mut functions = 0;
    for line in GENERATED.lines() {
        if let Some(rest) = line.strip_prefix("#define H5Z_DEEPCQ_") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue; // the include guard
            };
            // The whole line's end: `= -9` is not `= -99`.
            let want = format!("h5z_deepcq_{} = {}", name.to_lowercase(), value);
            let declared = lower.lines().any(|l| l.trim_end().ends_with(&want));
            assert!(declared, "the Fortran module lacks `{want}`");
        }
        // Declarations start at column 0 with their return type.
        let declaration = !line.starts_with(|c: char| c.is_whitespace() || "#/*}".contains(c))
            && !line.starts_with("typedef");
        if let (true, Some(pos)) = (declaration, line.find("h5z_deepcq_")) {
            let name: String = line[pos..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if line[pos + name.len()..].starts_with('(') {
                functions += 1;
                let bind = format!("name=\"{name}\"");
                assert!(lower.contains(&bind), "the Fortran module lacks {bind}");
            }
        }
    }
    assert!(
        functions >= 15,
        "found only {functions} functions in the header"
    );
}
