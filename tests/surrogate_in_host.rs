//! The surrogate inside a real host (Debian's h5repack): found beside the plugin without
//! any environment, a refused dataset with a clear message when onnxruntime or the model
//! is missing, the opt-in analytic fallback, and the JSON-lines trace with predicted vs
//! measured metrics.
//!
//! Needs what `scripts/setup.sh` installs (HDF5 tools, the h5py venv, onnxruntime in
//! third_party/, linked beside the plugin as plugin/libonnxruntime.so).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    repo().join("third_party/venv/bin/python")
}

/// h5repack with a clean environment: only what each case sets.
fn repack(input: &Path, output: &Path, spec: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("h5repack");
    cmd.env_remove("ORT_DYLIB_PATH")
        .env_remove("H5Z_DEEPCQ_MODEL")
        .env_remove("H5Z_DEEPCQ_ALLOW_FALLBACK")
        .env("HDF5_PLUGIN_PATH", common::release_plugin_dir())
        // -E prints the HDF5 error stack, where the filter explains a refusal.
        .args(["-E", "-f", spec])
        .args([input, output]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("h5repack runs (scripts/setup.sh)");
    eprintln!(
        "$ {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn make_input(dir: &Path) -> PathBuf {
    generate(dir, "make_input.py")
}

/// Runs `tests/hosts/{script}`, which writes an input file; returns its path in `dir`.
fn generate(dir: &Path, script: &str) -> PathBuf {
    let input = dir.join(script.replace(".py", ".h5"));
    let out = Command::new(python())
        .arg(repo().join("tests/hosts").join(script))
        .arg(&input)
        .output()
        .expect("python runs (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    input
}

fn check(original: &Path, filtered: &Path, target: &str) {
    let (passed, _) = check_report(original, filtered, target);
    assert!(passed, "chunk check failed");
}

/// Runs `tests/hosts/check.py` on a filtered copy of `original`: whether every check
/// passed, and its report (one line per dataset, then `FAIL` lines).
fn check_report(original: &Path, filtered: &Path, target: &str) -> (bool, String) {
    let out = Command::new(python())
        .env("HDF5_PLUGIN_PATH", common::release_plugin_dir())
        .arg(repo().join("tests/hosts/check.py"))
        .args([original, filtered])
        .arg(target)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}");
    (out.status.success() && text.contains("ALL OK"), text)
}

/// Whether h5diff finds `object` of `a` and `b` equal, value for value.
fn identical(a: &Path, b: &Path, object: &str) -> bool {
    Command::new("h5diff")
        .env("HDF5_PLUGIN_PATH", common::release_plugin_dir())
        .args([a, b])
        .arg(object)
        .status()
        .expect("h5diff runs (scripts/setup.sh)")
        .success()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Repacks a fresh input with `spec` and the JSON-lines trace on; checks that the write
/// succeeded through the filter and returns the input, the output and the trace records.
fn repack_traced(dir: &Path, spec: &str) -> (PathBuf, PathBuf, Vec<serde_json::Value>) {
    repack_traced_with(dir, spec, &[])
}

/// [`repack_traced`] with more environment variables for the filter.
fn repack_traced_with(
    dir: &Path,
    spec: &str,
    env: &[(&str, &str)],
) -> (PathBuf, PathBuf, Vec<serde_json::Value>) {
    let input = make_input(dir);
    let output = dir.join("out.h5");
    let trace = dir.join("trace.jsonl");
    let _ = std::fs::remove_file(&trace);
    let mut vars = vec![("H5Z_DEEPCQ_TRACE", trace.to_str().unwrap())];
    vars.extend_from_slice(env);
    let out = repack(&input, &output, spec, &vars);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(has_filter(&output, "/field"));
    (input, output, read_trace(&trace))
}

/// Repacks `input` with `spec` into `name`.h5 in `dir`, traced to `name`.jsonl; checks
/// every chunk against `target` (check.py) and returns the trace's records.
fn repack_checked(
    dir: &Path,
    input: &Path,
    name: &str,
    spec: &str,
    target: &str,
) -> Vec<serde_json::Value> {
    let output = dir.join(format!("{name}.h5"));
    let trace = dir.join(format!("{name}.jsonl"));
    let vars = [("H5Z_DEEPCQ_TRACE", trace.to_str().unwrap())];
    let out = repack(input, &output, spec, &vars);
    assert!(out.status.success(), "{}", stderr(&out));
    check(input, &output, target);
    read_trace(&trace)
}

/// The records of a JSON-lines trace.
fn read_trace(trace: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(trace).expect("the trace file was written");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each trace line is JSON"))
        .collect()
}

#[test]
fn surrogate_is_found_beside_the_plugin_and_traced() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, records) = repack_traced(dir.path(), "UD=357,0,1,60");
    check(&input, &output, "60");
    let lossy: Vec<_> = records
        .iter()
        .filter(|r| r["codec"] != "lossless")
        .collect();
    assert!(!lossy.is_empty(), "no lossy chunk in {records:?}");
    let bytes = |key: &str| lossy.iter().map(|r| r[key].as_u64().unwrap()).sum::<u64>();
    assert!(bytes("bytes_out") * 3 < bytes("bytes_in"), "{records:?}");
    for r in &lossy {
        let predicted = r["predicted"].as_f64().expect("the surrogate predicted");
        let met = match r["measured"].as_f64() {
            Some(measured) => measured >= 60.0,
            None => r["exact"] == true,
        };
        assert!(predicted.is_finite() && met, "guarantee mode measured: {r}");
        assert_eq!(r["target_kind"], "psnr");
    }
}

/// Whether dataset `name` of `file` has the deepcq filter in its pipeline.
fn has_filter(file: &Path, name: &str) -> bool {
    let out = Command::new("h5dump")
        .args(["-pH", "-d", name])
        .arg(file)
        .output()
        .expect("h5dump runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).contains("FILTER_ID 357")
}

/// h5repack answers a refused H5Dcreate by copying the dataset with its original settings
/// (exit 0, "Applying original settings"): nothing is lost and no quality changes, and
/// the filter's reason is on the error stack.
#[test]
fn missing_onnxruntime_refuses_the_dataset_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    let output = dir.path().join("out.h5");
    let out = repack(
        &input,
        &output,
        "UD=357,0,1,60",
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    let err = stderr(&out);
    assert!(
        err.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so is not a file"),
        "{err}"
    );
    assert!(
        err.contains("H5Z_DEEPCQ_ALLOW_FALLBACK"),
        "names the opt-in: {err}"
    );
    assert!(
        out.status.success(),
        "h5repack copies what it cannot filter"
    );
    assert!(
        !has_filter(&output, "/field"),
        "no lossy write without the surrogate"
    );
    assert!(
        identical(&input, &output, "/field"),
        "the copy lost nothing"
    );
    assert!(
        has_filter(&output, "/ints"),
        "non-float data needs no model"
    );
}

#[test]
fn analytic_fallback_is_opt_in_and_still_meets_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    for (name, spec, env) in [
        (
            "env.h5",
            "UD=357,0,1,60",
            vec![("H5Z_DEEPCQ_ALLOW_FALLBACK", "1")],
        ),
        // Six user words: target, kind, decimals, compressor, mode, flags (1 = fallback).
        ("flag.h5", "UD=357,0,6,60,0,0,0,0,1", vec![]),
    ] {
        let output = dir.path().join(name);
        let mut env = env;
        env.push(("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so"));
        let out = repack(&input, &output, spec, &env);
        assert!(out.status.success(), "{name}");
        assert!(
            has_filter(&output, "/field"),
            "{name}: the fallback wrote lossy"
        );
        check(&input, &output, "60");
    }
}

#[test]
fn a_model_that_is_not_onnx_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    let bogus = dir.path().join("model.onnx");
    std::fs::write(&bogus, b"not a model").unwrap();
    let output = dir.path().join("out.h5");
    let out = repack(
        &input,
        &output,
        "UD=357,0,1,60",
        &[("H5Z_DEEPCQ_MODEL", bogus.to_str().unwrap())],
    );
    let err = stderr(&out);
    assert!(
        err.contains("cannot use the surrogate") && err.contains("model.onnx"),
        "{err}"
    );
    // The message names the fix.
    assert!(err.contains("unset H5Z_DEEPCQ_MODEL"), "{err}");
    assert!(
        out.status.success(),
        "h5repack copies what it cannot filter"
    );
    assert!(!has_filter(&output, "/field"));
    assert!(
        identical(&input, &output, "/field"),
        "the copy lost nothing"
    );
}

#[test]
fn predict_mode_compresses_each_chunk_once_unless_a_look_corrects_it() {
    let dir = tempfile::tempdir().unwrap();
    // target 60, kind PSNR, decimals 0, any compressor, mode 1 = predict.
    let (input, output, records) = repack_traced(dir.path(), "UD=357,0,5,60,0,0,0,1");
    // Every chunk, whether predict mode measured it or not, meets 60 dB (check.py).
    check(&input, &output, "60");
    let (mut lossy, mut checked, mut second_looks) = (0, 0, 0);
    for r in &records {
        assert_eq!(r["mode"], "predict");
        if r["codec"] != "lossless" {
            lossy += 1;
            assert!(r["predicted"].as_f64().unwrap() >= 60.0, "{r}");
            // A look that misses corrects as fast mode does: one more compression, then
            // the safe bound.
            if r["reason"] == "corrected" || r["reason"] == "safe bound" {
                assert!(r["measured"].as_f64().unwrap() >= 60.0, "{r}");
                assert!(r["compressions"].as_u64().is_some_and(|c| c <= 3), "{r}");
                checked += 1;
                continue;
            }
            // These fields are like the training data: few payloads are far from their
            // predicted size (4 of the 121 with the model trained with masks, none with the
            // one before; their runner-up is then compressed once too),
            // so mostly chunks with an axis of 2–8 values (src/unfamiliar.rs: the edge
            // chunks trimmed to 2 planes of 50 or 6 rows of 70, 18 of the 36 of each
            // 50×70×90 field and 8 of the 20 of each 50×70 one, and the 9 chunks of 8×8 of
            // the field with a NaN, whose NaN is marked missing) are decoded and measured,
            // at most 61 of the 121 lossy chunks, and they met the target.
            let compressions = r["compressions"].as_u64().unwrap();
            assert!(compressions <= 2, "{r}");
            second_looks += usize::from(compressions == 2);
            if r["reason"] == "checked" {
                assert!(r["measured"].as_f64().unwrap() >= 60.0, "{r}");
                checked += 1;
                continue;
            }
            // The runner-up of a second look kept, or not.
            assert!(
                ["proposal", "runner-up"].contains(&r["reason"].as_str().unwrap()),
                "{r}"
            );
            assert!(r["measured"].is_null(), "predict mode does not decode: {r}");
        }
    }
    assert!(lossy == 121 && checked <= 61, "{records:?}");
    assert!(second_looks * 20 <= lossy, "{records:?}");
}

/// A sky whose mean alone meets 40 dB in every chunk: through h5repack, every mode stores
/// each chunk with SPERR beyond its range in one compression and under 100 bytes, and
/// check.py measures every chunk at 40 dB or more; at 60 dB, which the mean misses, the
/// chunks go the usual way.
#[test]
fn a_sky_its_means_serve_is_stored_in_a_few_bytes_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "make_sky.py");
    for (target, mode) in [("40", 1), ("40", 2), ("40", 0), ("60", 0)] {
        let spec = format!("UD=357,0,5,{target},0,0,0,{mode}");
        let records = repack_checked(
            dir.path(),
            &input,
            &format!("sky{target}_{mode}"),
            &spec,
            target,
        );
        assert_eq!(records.len(), 36, "{records:?}");
        for r in &records {
            let served = r["reason"] == "mean meets the target";
            assert_eq!(served, target == "40", "{r}");
            if served {
                assert_eq!(
                    (r["codec"].as_str(), r["compressions"].as_u64()),
                    (Some("sperr"), Some(1)),
                    "{r}"
                );
                assert!(r["bytes_out"].as_u64().unwrap() < 100, "{r}");
                assert!(r["measured"].as_f64().unwrap() >= 40.0, "{r}");
            }
        }
    }
}

/// Fields unlike the training data (f64 values on a large offset, a checkerboard,
/// isolated spikes in zeros, and the kinds of chunk the model is known to misread,
/// `crate::unfamiliar`: a wide table, narrow rows, markers, a series, strips of an image,
/// each of which missed a target here before its rule, at 40 dB the strips): every chunk
/// meets the target in predict mode, and predict mode measures (and corrects where they
/// miss) most of them, at every target; each chunk it measured met the target.
#[test]
fn predict_mode_measures_the_chunks_the_model_misread() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "make_misread.py");
    for target in ["40", "60", "80"] {
        let spec = format!("UD=357,0,5,{target},0,0,0,1");
        let records = repack_checked(
            dir.path(),
            &input,
            &format!("predict{target}"),
            &spec,
            target,
        );
        let reason = |r: &serde_json::Value| r["reason"].as_str().unwrap_or("").to_string();
        let lossy = records.iter().filter(|r| r["codec"] != "lossless").count();
        let looked_at: Vec<_> = records
            .iter()
            .filter(|r| r["codec"] != "lossless" && reason(r) != "proposal")
            .collect();
        assert!(
            2 * looked_at.len() > lossy,
            "{target} dB: {} of {lossy} chunks measured",
            looked_at.len()
        );
        for r in looked_at {
            let met = match r["measured"].as_f64() {
                Some(measured) => measured >= target.parse::<f64>().unwrap(),
                None => r["exact"] == true,
            };
            assert!(
                met,
                "a chunk predict mode looked at is measured and met: {r}"
            );
        }
    }
}

/// Fields far from zero against their range (1000 + O(1), f32 and f64): predict mode,
/// which trusts the model's PSNR with a calibrated margin, lands at the target on them.
/// The model trained before generated fields sat on offsets missed 40 and 60 dB on every
/// chunk of such fields, by up to 5 dB (SPERR predicted 61.7 dB where it reached 47.7),
/// and their payloads stored within 3× of the predicted ratio, so the second look did not
/// catch it. Predict mode promises 99% of chunks, not each one: a chunk may fall a tenth
/// of a dB short where the calibrated margin is 0 (SPERR near the point-wise line), so
/// the worst chunk of each field may be at most 0.25 dB below the target; every other
/// check (the filter in the pipeline, chunks that are deepcq's, compressed) must pass.
#[test]
fn predict_mode_lands_at_the_target_on_fields_far_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "make_offset.py");
    for target in [40.0, 60.0] {
        let output = dir.path().join(format!("predict{target}.h5"));
        let spec = format!("UD=357,0,5,{target},0,0,0,1");
        let out = repack(&input, &output, &spec, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let (_, text) = check_report(&input, &output, &target.to_string());
        let worst: Vec<f64> = text
            .lines()
            .filter_map(|l| {
                l.split("worst chunk PSNR ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(worst.len(), 3, "{text}");
        let other_failures = text
            .lines()
            .filter(|l| l.starts_with("FAIL") && !l.contains("chunk PSNR"));
        assert_eq!(other_failures.count(), 0, "{text}");
        for db in worst {
            assert!(
                db >= target - 0.25,
                "a chunk at {db} dB for {target} dB:\n{text}"
            );
        }
    }
}

#[test]
fn fast_mode_measures_every_chunk_and_meets_the_target_in_at_most_two_per_compressor() {
    let dir = tempfile::tempdir().unwrap();
    // target 60, kind PSNR, decimals 0, any compressor, mode 2 = fast.
    let (input, output, records) = repack_traced(dir.path(), "UD=357,0,5,60,0,0,0,2");
    check(&input, &output, "60");
    let mut lossy = 0;
    for r in &records {
        assert_eq!(r["mode"], "fast");
        if r["codec"] != "lossless" {
            lossy += 1;
            // One more on a miss or a large overshoot, for the first compressor and, on
            // a close call or a first payload over 3x larger than predicted, the
            // runner-up; then the safe bound.
            let compressions = r["compressions"].as_u64().unwrap();
            assert!((1..=5).contains(&compressions), "{r}");
            assert!(r["measured"].as_f64().unwrap() >= 60.0, "{r}");
        }
    }
    assert!(lossy > 10, "{records:?}");
}

/// Guarantee mode over one dataset: with memory (the default) later chunks start where
/// earlier ones landed, so the dataset takes fewer compressions than with every chunk
/// searched alone (`H5Z_DEEPCQ_MEMORY=0`), for about the same stored size. Both meet the
/// target on every chunk.
#[test]
fn memory_across_a_datasets_chunks_saves_compressions_in_guarantee_mode() {
    let totals = |memory: &str| {
        let dir = tempfile::tempdir().unwrap();
        let (input, output, records) = repack_traced_with(
            dir.path(),
            "UD=357,0,1,60",
            &[("H5Z_DEEPCQ_MEMORY", memory)],
        );
        check(&input, &output, "60");
        let lossy: Vec<_> = records
            .iter()
            .filter(|r| r["codec"] != "lossless")
            .collect();
        assert!(lossy.len() > 10, "{records:?}");
        let sum = |key: &str| lossy.iter().map(|r| r[key].as_u64().unwrap()).sum::<u64>();
        (sum("compressions"), sum("bytes_out"))
    };
    let (with, without) = (totals("1"), totals("0"));
    assert!(
        with.0 < without.0,
        "compressions, bytes: {with:?} vs {without:?}"
    );
    assert!(
        (with.1 as f64) < 1.03 * without.1 as f64,
        "compressions, bytes: {with:?} vs {without:?}"
    );
}
