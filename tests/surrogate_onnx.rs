//! The exported ONNX model must compute what the trainer computes.
//!
//! Trains a tiny mixture of experts on generated fields (no ../shared/data needed),
//! exports it, loads it with onnxruntime through [`Surrogate`], and compares the outputs
//! with the candle forward pass. Needs `ORT_DYLIB_PATH` (scripts/test.sh sets it); skips
//! with a message when it is unset.

use std::path::PathBuf;

use h5z_deepcq::features::{self, FEATURE_NAMES, FEATURE_SCHEMA_VERSION};
use h5z_deepcq::samples::Samples;
use h5z_deepcq::surrogate::{Candidate, Surrogate, SurrogateError};
use h5z_deepcq::synth::{generate, Kind};
use h5z_deepcq::train::collect::{collect, CollectConfig};
use h5z_deepcq::train::moe::{self, MoeConfig};
use h5z_deepcq::train::onnx::{self, ExportInfo};
use h5z_deepcq::train::{log_grid, table};
use h5z_deepcq::wire::CodecId;

fn ort_library() -> Option<PathBuf> {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("SKIPPED: ORT_DYLIB_PATH is not set (run scripts/test.sh)");
            None
        }
    }
}

/// A tiny model trained on a few generated chunks, and its training rows; built once and
/// shared by the tests of this file.
fn tiny_model() -> (moe::MoeWeights, moe::TrainSet) {
    static MODEL: std::sync::OnceLock<(moe::MoeWeights, moe::TrainSet)> =
        std::sync::OnceLock::new();
    MODEL.get_or_init(build_tiny_model).clone()
}

/// The tiny model's sizes.
fn tiny_config() -> MoeConfig {
    MoeConfig {
        experts: 3,
        hidden: 8,
        gate_hidden: 4,
        epochs: 5,
        batch: 32,
        ..Default::default()
    }
}

fn build_tiny_model() -> (moe::MoeWeights, moe::TrainSet) {
    let dir = std::env::temp_dir().join(format!("deepcq-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("t.csv");
    let _ = std::fs::remove_file(&output);
    collect(&CollectConfig {
        data_dirs: vec![],
        only_datasets: vec![],
        synth_fields: 4,
        max_chunks_per_array: 1,
        bounds: log_grid(-6.0, -1.0, 6),
        threads: 2,
        seed: 3,
        output: output.clone(),
        progress: false,
    })
    .unwrap();
    let rows = table::read(&output).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let data = moe::prepare(&rows, |_| true);
    assert!(data.len() > 20, "{} rows", data.len());
    (moe::train(&data, &tiny_config(), |_| {}).unwrap(), data)
}

fn export(weights: &moe::MoeWeights) -> Vec<u8> {
    onnx::export(
        weights,
        &ExportInfo {
            bound_grid: log_grid(-7.0, -1.0, 13),
            corpus: "test".into(),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn onnxruntime_matches_the_trainer_forward_pass() {
    let Some(lib) = ort_library() else { return };
    let (weights, data) = tiny_model();
    let surrogate = Surrogate::load(&lib, &export(&weights)).expect("load");
    let n = data.len();
    let reference = moe::predict(&weights, &data.x).unwrap();
    let got = surrogate.run_raw(&data.x, n).unwrap();
    assert_eq!(got.len(), n);
    assert_close(&got, &reference);
}

/// Asserts two models' outputs agree within 1e-4 relative to their magnitude (PSNR is
/// ~100 dB, SSIM ~1).
fn assert_close(got: &[[f32; 3]], reference: &[[f32; 3]]) {
    assert_eq!(got.len(), reference.len(), "rows");
    let mut worst = 0f32;
    for (a, b) in got.iter().zip(reference) {
        for c in 0..3 {
            let tol = 1e-4 * b[c].abs().max(1.0);
            worst = worst.max((a[c] - b[c]).abs() / b[c].abs().max(1.0));
            assert!((a[c] - b[c]).abs() <= tol, "{a:?} vs {b:?}");
        }
    }
    eprintln!("worst relative difference {worst:e}");
}

#[test]
fn an_ensemble_predicts_the_mean_of_its_members_in_both_runtimes() {
    let Some(lib) = ort_library() else { return };
    let (first, data) = tiny_model();
    let second = moe::train(
        &data,
        &MoeConfig {
            seed: 2,
            ..tiny_config()
        },
        |_| {},
    )
    .unwrap();
    let joined = moe::ensemble(&[first.clone(), second.clone()]).unwrap();
    assert_eq!((joined.members, joined.experts), (2, 6));
    // What `train` builds with two members is this very ensemble.
    let trained = moe::train(
        &data,
        &MoeConfig {
            members: 2,
            ..tiny_config()
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(trained, joined);
    let (a, b) = (
        moe::predict(&first, &data.x).unwrap(),
        moe::predict(&second, &data.x).unwrap(),
    );
    let mean: Vec<[f32; 3]> = a
        .iter()
        .zip(&b)
        .map(|(a, b)| std::array::from_fn(|c| (a[c] + b[c]) / 2.0))
        .collect();
    assert!(
        a.iter().zip(&b).any(|(a, b)| (a[0] - b[0]).abs() > 0.1),
        "two seeds should differ somewhere"
    );
    let candle = moe::predict(&joined, &data.x).unwrap();
    assert_close(&candle, &mean);
    let surrogate = Surrogate::load(&lib, &export(&joined)).expect("load");
    assert_close(&surrogate.run_raw(&data.x, data.len()).unwrap(), &candle);
    // Members of different sizes do not join.
    let narrower = moe::train(
        &data,
        &MoeConfig {
            hidden: 4,
            ..tiny_config()
        },
        |_| {},
    )
    .unwrap();
    assert!(moe::ensemble(&[first.clone(), narrower]).is_err());
    // Nor does a damaged member (an array shorter than its sizes say): an error, no panic.
    let mut damaged = second;
    damaged.gate_w2.pop();
    assert!(moe::ensemble(&[first, damaged]).is_err());
    assert!(moe::ensemble(&[]).is_err());
}

#[test]
fn predict_scores_every_candidate_in_one_batch() {
    let Some(lib) = ort_library() else { return };
    let (weights, _) = tiny_model();
    let surrogate = Surrogate::load(&lib, &export(&weights)).expect("load");
    assert_eq!(surrogate.bound_grid().len(), 13);
    assert_eq!(
        surrogate.compressors(),
        &[CodecId::Sz3, CodecId::Zfp, CodecId::Sperr]
    );
    assert_eq!(surrogate.metadata().schema_version, FEATURE_SCHEMA_VERSION);
    assert_eq!(
        surrogate.metadata().feature_names.len(),
        FEATURE_NAMES.len()
    );
    let shape = [16, 32, 32];
    let v = generate(Kind::Spectral { slope: 3.0 }, &shape, 5);
    let f64s = features::extract(Samples::F64(&v), &shape);
    let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    let f32s = features::extract(Samples::F32(&v32), &shape);
    let candidates = surrogate.all_candidates();
    assert_eq!(candidates.len(), 3 * 13);
    let p64 = surrogate.predict(&f64s, &candidates).unwrap();
    let p32 = surrogate.predict(&f32s, &candidates).unwrap();
    assert_eq!(p64.len(), candidates.len());
    for p in p64.iter().chain(&p32) {
        assert!(
            p.psnr.is_finite() && p.ssim.is_finite() && p.cr > 0.0,
            "{p:?}"
        );
    }
    // Predictions are the raw model outputs for the same rows; the ratio is scaled from
    // 32-bit values to the chunk's element size (×2 for f64).
    for (feats, preds, elem) in [(&f32s, &p32, 4usize), (&f64s, &p64, 8)] {
        let x: Vec<f32> = candidates
            .iter()
            .flat_map(|c| moe::input_row(&feats.values, c.codec.name(), c.rel_bound, elem).unwrap())
            .collect();
        let raw = surrogate.run_raw(&x, candidates.len()).unwrap();
        assert_eq!(
            (preds.len(), raw.len()),
            (candidates.len(), candidates.len())
        );
        for (p, r) in preds.iter().zip(&raw) {
            assert!((p.psnr - r[0] as f64).abs() < 1e-9);
            assert!((p.ssim - (r[1] as f64).min(1.0)).abs() < 1e-9);
            let cr32 = 10f64.powf(r[2] as f64);
            assert!(
                (p.cr - cr32 * elem as f64 / 4.0).abs() < 1e-6 * p.cr,
                "{p:?} {r:?}"
            );
        }
    }
    // Bad candidates are errors, not panics.
    let bad = [Candidate {
        codec: CodecId::Lossless,
        rel_bound: 1e-3,
    }];
    assert!(matches!(
        surrogate.predict(&f32s, &bad),
        Err(SurrogateError::Input(_))
    ));
    let bad = [Candidate {
        codec: CodecId::Sz3,
        rel_bound: -1.0,
    }];
    assert!(matches!(
        surrogate.predict(&f32s, &bad),
        Err(SurrogateError::Input(_))
    ));
}

#[test]
fn a_model_for_another_schema_is_refused() {
    let Some(lib) = ort_library() else { return };
    let (weights, _) = tiny_model();
    let bytes = export(&weights);
    // Rewrite the schema version in the metadata and re-serialise.
    use onnx_protobuf::Message;
    let mut model = onnx_protobuf::ModelProto::parse_from_bytes(&bytes).unwrap();
    for e in model.metadata_props.iter_mut() {
        if e.key == onnx::meta::SCHEMA_VERSION {
            e.value = (FEATURE_SCHEMA_VERSION + 1).to_string();
        }
    }
    let err = Surrogate::load(&lib, &model.write_to_bytes().unwrap()).unwrap_err();
    assert!(matches!(err, SurrogateError::Metadata(_)), "{err}");
    assert!(err.to_string().contains("schema"), "{err}");
    // Garbage bytes are a session error.
    let err = Surrogate::load(&lib, b"not a model").unwrap_err();
    assert!(matches!(err, SurrogateError::Session(_)), "{err}");
}

#[test]
fn a_model_whose_columns_mean_something_else_is_refused() {
    let Some(lib) = ort_library() else { return };
    let (weights, _) = tiny_model();
    // The same column count and graph: only the metadata says what the columns hold.
    use onnx_protobuf::Message;
    let with = |key: &str, value: &str| {
        let mut model = onnx_protobuf::ModelProto::parse_from_bytes(&export(&weights)).unwrap();
        for e in model.metadata_props.iter_mut().filter(|e| e.key == key) {
            e.value = value.into();
        }
        model.write_to_bytes().unwrap()
    };
    let other_clamp = onnx::input_layout().replace("-3, 12", "-3, 15");
    let err = Surrogate::load(&lib, &with(onnx::meta::INPUTS, &other_clamp)).unwrap_err();
    assert!(matches!(err, SurrogateError::Metadata(_)), "{err}");
    assert!(err.to_string().contains("-3, 15"), "{err}");
    let swapped = "ssim,psnr_db,log10_cr32";
    let err = Surrogate::load(&lib, &with(onnx::meta::OUTPUTS, swapped)).unwrap_err();
    assert!(err.to_string().contains("outputs [\"ssim\""), "{err}");
    // As exported, it loads.
    assert!(Surrogate::load(&lib, &export(&weights)).is_ok());
}

/// `model` with the value `from` renamed `to` wherever the graph names it (its inputs,
/// outputs and every node's), so that the graph stays valid.
fn renamed(model: &[u8], from: &str, to: &str) -> Vec<u8> {
    use onnx_protobuf::Message;
    let mut model = onnx_protobuf::ModelProto::parse_from_bytes(model).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let ends = graph.input.iter_mut().chain(graph.output.iter_mut());
    for value in ends.filter(|v| v.name == from) {
        value.name = to.into();
    }
    for node in graph.node.iter_mut() {
        let names = node.input.iter_mut().chain(node.output.iter_mut());
        for name in names.filter(|n| *n == from) {
            *name = to.into();
        }
    }
    model.write_to_bytes().unwrap()
}

#[test]
fn a_model_with_other_inputs_is_refused_by_name() {
    let Some(lib) = ort_library() else { return };
    let (weights, _) = tiny_model();
    // Rename the per-chunk input everywhere, as a model of another layout would name it:
    // the graph stays valid, so only the input check can refuse it.
    let model = renamed(&export(&weights), onnx::FEATURES_INPUT, "x");
    let err = Surrogate::load(&lib, &model).unwrap_err();
    assert!(matches!(err, SurrogateError::Metadata(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("\"x\"") && text.contains("export the model"),
        "{err}"
    );
}

#[test]
fn a_model_with_another_output_or_damaged_weights_is_refused_on_load() {
    let Some(lib) = ort_library() else { return };
    let (weights, _) = tiny_model();
    // The output renamed: the graph stays valid, and every chunk would fail in the run.
    let model = renamed(&export(&weights), onnx::OUTPUT_NAME, "z");
    let err = Surrogate::load(&lib, &model).unwrap_err();
    assert!(matches!(err, SurrogateError::Metadata(_)), "{err}");
    assert!(err.to_string().contains("\"z\""), "{err}");
    // A weight turned NaN: the model loads in onnxruntime and predicts NaN in that output
    // (PSNR, SSIM or ratio) everywhere. SSIM's is clamped to 1 and must not hide it.
    for output in 0..weights.out_std.len() {
        let mut damaged = weights.clone();
        damaged.out_std[output] = f32::NAN;
        let err = Surrogate::load(&lib, &export(&damaged)).unwrap_err();
        assert!(
            err.to_string().contains("NaN or infinity"),
            "{output}: {err}"
        );
    }
    assert!(Surrogate::load(&lib, &export(&weights)).is_ok());
}

#[test]
fn the_committed_default_model_loads_and_predicts_sanely() {
    let Some(lib) = ort_library() else { return };
    // The model the library embeds, the one it ships.
    let bytes = h5z_deepcq::surrogate::locate::DEFAULT_MODEL;
    assert!(bytes.len() <= 2 << 20, "model is {} bytes", bytes.len());
    let surrogate = Surrogate::load(&lib, bytes).expect("default model loads");
    let shape = [32, 32, 32];
    let v: Vec<f32> = generate(Kind::Spectral { slope: 3.5 }, &shape, 11)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let f = features::extract(Samples::F32(&v), &shape);
    // (Not tighter: at ~1e-6 of the range SZ3 stores f32 data losslessly, and the model
    // rightly predicts an exact reconstruction there.)
    let tight = Candidate {
        codec: CodecId::Sz3,
        rel_bound: 1e-4,
    };
    let loose = Candidate {
        codec: CodecId::Sz3,
        rel_bound: 1e-2,
    };
    let p = surrogate.predict(&f, &[tight, loose]).unwrap();
    // Tighter bound: higher PSNR, lower ratio; both in plausible ranges.
    assert!(p[0].psnr > p[1].psnr + 25.0, "{p:?}");
    assert!(p[0].cr < p[1].cr, "{p:?}");
    assert!((75.0..110.0).contains(&p[0].psnr), "{p:?}");
    assert!(p[1].cr > 5.0, "{p:?}");
}
