//! Features of every real array in ../shared/data (fill values, NaN-free integer-valued
//! sources, particle lists) must be finite and scale-free. Skips plainly when the corpus
//! is absent.

use h5z_deepcq::corpus::{scan, shared_data_dir};
use h5z_deepcq::features::{extract, FEATURE_NAMES};
use h5z_deepcq::samples::SampleBuf;

#[test]
fn features_of_every_real_array_are_finite() {
    let Some(dir) = shared_data_dir() else {
        eprintln!("SKIPPED: ../shared/data is absent (set DEEPCQ_SHARED_DATA to run this test)");
        return;
    };
    let entries = scan(&dir).expect("manifests parse");
    assert!(!entries.is_empty());
    for entry in entries {
        let values = entry.load().expect("array loads");
        let f = extract(values.view(), &entry.dims);
        assert_eq!(f.values.len(), FEATURE_NAMES.len());
        for (name, v) in FEATURE_NAMES.iter().zip(&f.values) {
            assert!(v.is_finite(), "{}: {name} = {v}", entry.name());
        }
        // Scaling the data by 4 (exact in binary) leaves every normalised feature alone.
        let scaled = match &values {
            SampleBuf::F32(v) => SampleBuf::F32(v.iter().map(|x| x * 4.0).collect()),
            SampleBuf::F64(v) => SampleBuf::F64(v.iter().map(|x| x * 4.0).collect()),
            SampleBuf::Opaque(_) => continue,
        };
        let g = extract(scaled.view(), &entry.dims);
        for (name, (a, b)) in FEATURE_NAMES.iter().zip(f.values.iter().zip(&g.values)) {
            assert!(
                (a - b).abs() <= 1e-3 * a.abs().max(1.0),
                "{}: {name} {a} vs {b}",
                entry.name()
            );
        }
    }
}
