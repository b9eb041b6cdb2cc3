//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use h5z_deepcq::corpus::{self, ArrayEntry};
use h5z_deepcq::samples::SampleBuf;

/// The repository's plugin/ folder (what users give HDF5_PLUGIN_PATH, onnxruntime linked
/// beside the library), checked to hold what this test binary was built with: plugin/
/// links the release build, so tests of another profile would load code they were not
/// built with, and `cargo test` rebuilds the cdylib under deps/ without copying it to the
/// plugin's place, where an old copy would test stale code.
pub fn release_plugin_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = repo.join("plugin");
    let lib = dir.join("libh5z_deepcq.so");
    let release = repo.join("target/release");
    // The cdylib this test binary's profile built, beside it under deps/.
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().join("libh5z_deepcq.so");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    assert!(
        lib.exists(),
        "{} is missing: run `cargo build --release --lib`",
        lib.display()
    );
    assert!(
        lib.canonicalize().ok() == release.join("libh5z_deepcq.so").canonicalize().ok()
            && built.starts_with(&release),
        "the host tests load plugin/, the release build: run them with --release \
         (scripts/test.sh)"
    );
    assert!(
        modified(&built).is_some() && modified(&built) <= modified(&lib),
        "the plugin is older than this build: run `cargo build --release --lib` first"
    );
    dir
}

/// The arrays of ../shared/data, or `None` (with a plain message) when it is absent, as in
/// a user's clone. CI always has it.
pub fn shared_arrays(test: &str) -> Option<Vec<ArrayEntry>> {
    match corpus::shared_data_dir() {
        Some(dir) => Some(corpus::scan(&dir).expect("../shared/data manifests parse")),
        None => {
            eprintln!(
                "{test}: ../shared/data is absent; the real-data part of this test did not run"
            );
            None
        }
    }
}

/// Cuts the slowest axis so that at most `max_elems` values remain: keeps tests quick
/// while still using real values and real shapes.
pub fn leading_slab(
    values: SampleBuf,
    dims: &[usize],
    max_elems: usize,
) -> (SampleBuf, Vec<usize>) {
    let inner: usize = dims[1..].iter().product::<usize>().max(1);
    let keep = (max_elems / inner).clamp(1, dims[0]);
    let mut new_dims = dims.to_vec();
    new_dims[0] = keep;
    let n = keep * inner;
    let cut = match values {
        SampleBuf::F32(mut v) => {
            v.truncate(n);
            SampleBuf::F32(v)
        }
        SampleBuf::F64(mut v) => {
            v.truncate(n);
            SampleBuf::F64(v)
        }
        SampleBuf::Opaque(v) => SampleBuf::Opaque(v),
    };
    (cut, new_dims)
}

/// max − min over finite values (0 when none).
pub fn finite_range(values: &SampleBuf) -> f64 {
    let it: Vec<f64> = match values {
        SampleBuf::F32(v) => v.iter().map(|x| *x as f64).collect(),
        SampleBuf::F64(v) => v.clone(),
        SampleBuf::Opaque(_) => vec![],
    };
    let finite = it.into_iter().filter(|x| x.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
        (l.min(x), h.max(x))
    });
    if hi >= lo {
        hi - lo
    } else {
        0.0
    }
}

/// Largest |x| over finite values.
pub fn max_abs(values: &SampleBuf) -> f64 {
    match values {
        SampleBuf::F32(v) => v
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0, |m, x| m.max(x.abs() as f64)),
        SampleBuf::F64(v) => v
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0, |m, x| m.max(x.abs())),
        SampleBuf::Opaque(_) => 0.0,
    }
}
