//! Every lossy codec honours its absolute bound: generated fields of ranks 1–5 (size-1
//! dims and tiny arrays included), both dtypes, several bounds; and real fields from
//! ../shared/data when present. Lossless round-trips are exact.

mod common;

use h5z_deepcq::chunk::{self, ChunkError};
use h5z_deepcq::codec::CodecError;
use h5z_deepcq::metrics::error_stats_of;
use h5z_deepcq::samples::{SampleBuf, Samples};
use h5z_deepcq::synth::{generate, Kind};
use h5z_deepcq::wire::CodecId;

/// SZ3 lands right at the bound (0.9999976·eb); allow the rounding of the last ulp.
const SLACK: f64 = 1.0 + 1e-6;

/// Encodes, decodes, and asserts the bound, the shape and the length.
fn assert_round_trip(codec: CodecId, data: Samples<'_>, shape: &[usize], bound: f64, what: &str) {
    let bytes = chunk::encode(codec, data, shape, bound, None)
        .unwrap_or_else(|e| panic!("{what}: {} encode failed: {e}", codec.name()));
    let (header, values) = chunk::decode(&bytes)
        .unwrap_or_else(|e| panic!("{what}: {} decode failed: {e}", codec.name()));
    assert_eq!(header.layout.shape, shape, "{what}");
    assert_eq!(values.view().len(), data.len(), "{what}");
    let stats = error_stats_of(data, values.view()).expect("same type");
    if codec == CodecId::Lossless {
        assert_eq!(
            values.view().as_bytes(),
            data.as_bytes(),
            "{what}: lossless not exact"
        );
    } else {
        assert!(
            stats.max_abs_error <= bound * SLACK,
            "{what}: {} max error {:e} exceeds bound {:e}",
            codec.name(),
            stats.max_abs_error,
            bound
        );
    }
}

fn field(shape: &[usize], seed: u64) -> Vec<f64> {
    generate(Kind::Spectral { slope: 3.0 }, shape, seed)
}

const SHAPES: &[&[usize]] = &[
    &[1000],
    &[40, 50],
    &[1, 30, 1, 40],
    &[12, 10, 14],
    &[5, 6, 7, 8],
    &[2, 3, 4, 5, 6],
    &[1, 1, 64],
    &[33, 1],
];

#[test]
fn lossy_codecs_honour_bounds_on_generated_fields_of_every_rank() {
    for (i, shape) in SHAPES.iter().enumerate() {
        let values = field(shape, i as u64);
        let range = 2.0 * values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let as_f32: Vec<f32> = values.iter().map(|v| *v as f32).collect();
        for codec in CodecId::ALL {
            for rel in [1e-2, 1e-3, 1e-5] {
                let bound = rel * range;
                let what = format!("shape {shape:?} rel {rel:e}");
                assert_round_trip(
                    codec,
                    Samples::F64(&values),
                    shape,
                    bound,
                    &format!("f64 {what}"),
                );
                assert_round_trip(
                    codec,
                    Samples::F32(&as_f32),
                    shape,
                    bound,
                    &format!("f32 {what}"),
                );
            }
        }
    }
}

#[test]
fn tiny_arrays_of_one_to_twenty_values_round_trip() {
    for n in 1..=20usize {
        let values: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin() * 10.0).collect();
        let as_f32: Vec<f32> = values.iter().map(|v| *v as f32).collect();
        for shape in [vec![n], vec![1, n], vec![n, 1, 1]] {
            for codec in CodecId::ALL {
                let what = format!("n={n} shape {shape:?}");
                assert_round_trip(codec, Samples::F64(&values), &shape, 1e-3, &what);
                assert_round_trip(codec, Samples::F32(&as_f32), &shape, 1e-2, &what);
            }
        }
    }
}

#[test]
fn constant_and_sparse_fields_round_trip() {
    let constant = vec![3.25f32; 4096];
    let sparse: Vec<f32> = generate(Kind::Sparse { fill: 0.05 }, &[64, 64], 3)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    for codec in CodecId::ALL {
        assert_round_trip(
            codec,
            Samples::F32(&constant),
            &[16, 16, 16],
            1e-4,
            "constant",
        );
        assert_round_trip(codec, Samples::F32(&sparse), &[64, 64], 1e-4, "sparse");
    }
}

#[test]
fn lossy_codecs_refuse_nan_and_bad_bounds_with_clear_errors() {
    let mut values = vec![1.0f32; 64];
    values[10] = f32::NAN;
    for codec in CodecId::LOSSY {
        let err = chunk::encode(codec, Samples::F32(&values), &[64], 1e-3, None).unwrap_err();
        assert!(
            matches!(err, ChunkError::Codec(CodecError::NonFinite { .. })),
            "{err}"
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = chunk::encode(codec, Samples::F32(&[1.0; 8]), &[8], bad, None).unwrap_err();
            assert!(
                matches!(err, ChunkError::Codec(CodecError::InvalidBound { .. })),
                "{err}"
            );
        }
        let err = chunk::encode(codec, Samples::F32(&[1.0; 8]), &[3, 3], 1e-3, None).unwrap_err();
        assert!(
            matches!(err, ChunkError::Codec(CodecError::ShapeMismatch { .. })),
            "{err}"
        );
    }
    // Lossless keeps NaN bit for bit.
    let bytes = chunk::encode(CodecId::Lossless, Samples::F32(&values), &[64], 0.0, None).unwrap();
    let (_, back) = chunk::decode(&bytes).unwrap();
    assert_eq!(back.view().as_bytes(), Samples::F32(&values).as_bytes());
}

#[test]
fn opaque_bytes_round_trip_losslessly() {
    let ints: Vec<u8> = (0..1000u32).flat_map(|i| (i * 7).to_le_bytes()).collect();
    let data = Samples::Opaque {
        bytes: &ints,
        elem_size: 4,
    };
    let bytes = chunk::encode(CodecId::Lossless, data, &[1000], 0.0, None).unwrap();
    assert!(
        bytes.len() < ints.len(),
        "shuffle+zstd should shrink a ramp"
    );
    let (header, back) = chunk::decode(&bytes).unwrap();
    assert_eq!(header.layout.elem_size, 4);
    assert!(chunk::encode(CodecId::Sz3, data, &[1000], 1e-3, None).is_err());
    assert_eq!(back, SampleBuf::Opaque(ints));
}

#[test]
fn lossy_codecs_honour_bounds_on_real_fields() {
    let Some(arrays) = common::shared_arrays("lossy_codecs_honour_bounds_on_real_fields") else {
        return;
    };
    assert!(
        arrays.len() >= 40,
        "expected the whole ../shared/data index, found {}",
        arrays.len()
    );
    let mut checked = 0;
    for entry in &arrays {
        let (values, dims) = common::leading_slab(entry.load().unwrap(), &entry.dims, 1 << 18);
        let range = common::finite_range(&values);
        for codec in CodecId::ALL {
            for rel in [1e-2, 1e-4] {
                let bound = (rel * range).max(f64::MIN_POSITIVE);
                let what = format!("{} {:?} rel {rel:e}", entry.name(), dims);
                let refused_by_sperr = codec == CodecId::Sperr && common::max_abs(&values) > 1e30;
                if codec != CodecId::Lossless && (!values.view().all_finite() || refused_by_sperr) {
                    // Refused for that reason, not another: non-finite values by name,
                    // SPERR's magnitudes as a library error naming its limit.
                    let refusal = chunk::encode(codec, values.view(), &dims, bound, None);
                    let expected = match &refusal {
                        Err(ChunkError::Codec(CodecError::NonFinite { .. })) => true,
                        Err(ChunkError::Codec(e)) => {
                            refused_by_sperr && e.to_string().contains("1e30")
                        }
                        _ => false,
                    };
                    assert!(expected, "{what}: {refusal:?}");
                    continue;
                }
                if std::env::var_os("DEEPCQ_TEST_VERBOSE").is_some() {
                    eprintln!("{} {what}", codec.name());
                }
                assert_round_trip(codec, values.view(), &dims, bound, &what);
                checked += 1;
            }
        }
    }
    eprintln!("checked {checked} real-field round trips");
    assert!(
        checked > arrays.len(),
        "{checked} round trips over {} arrays",
        arrays.len()
    );
}
