//! The `deepcq` binary: info JSON keys, compress/decompress round trip on a raw file, and
//! clear non-zero exits (no panic trace) on bad input.

use std::process::Command;

fn deepcq(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(args)
        .output()
        .expect("run deepcq")
}

#[test]
fn the_demo_meets_every_target_and_names_each_stored_bound() {
    let out = deepcq(&["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Every chunk met its target"), "{text}");
    // The quality-target rows: a relative bound above 0, or `rate` (SPERR cut to a size).
    let rows: Vec<Vec<&str>> = text
        .split("| field | target dB |")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 12, "{text}");
    for row in rows {
        let bound = row[3];
        let positive = bound.parse::<f64>().is_ok_and(|b| b > 0.0);
        assert!(bound == "rate" || positive, "{row:?}");
        let (target, measured): (f64, f64) = (row[1].parse().unwrap(), row[5].parse().unwrap());
        assert!(measured >= target, "{row:?}");
    }
}

#[test]
fn info_json_has_the_documented_keys() {
    let out = deepcq(&["info", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "version",
        "filter_id",
        "compressors",
        "plugin_path",
        "model",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let names: Vec<&str> = v["compressors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(names, ["lossless", "sz3", "zfp", "sperr"]);
    assert_eq!(v["filter_id"], 357);
    // The plugin path is absolute and names the library HDF5 loads (built beside deepcq).
    let path = v["plugin_path"]
        .as_str()
        .expect("the plugin is built beside deepcq");
    let path = std::path::Path::new(path);
    assert!(
        path.is_absolute() && path.ends_with("libh5z_deepcq.so"),
        "{path:?}"
    );
    assert!(path.exists());
}

#[test]
fn output_into_a_closed_pipe_ends_without_a_panic() {
    use std::os::fd::FromRawFd;
    // The reading end is closed before deepcq starts, so its first line cannot be
    // written, as when `deepcq … | head` has read the lines it wanted.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just opened and are owned here alone.
    let write_end = unsafe {
        libc::close(fds[0]);
        std::os::fd::OwnedFd::from_raw_fd(fds[1])
    };
    let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["cdvalues", "--psnr", "60"])
        .stdout(std::process::Stdio::from(write_end))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !out.status.success(),
        "a write into a closed pipe cannot succeed"
    );
}

#[test]
fn info_reports_the_loaded_model_or_why_not() {
    let ok = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["info", "--json"])
        .env(
            "ORT_DYLIB_PATH",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/third_party/onnxruntime/libonnxruntime.so"
            ),
        )
        .env_remove("H5Z_DEEPCQ_MODEL")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["model"]["loaded"], true, "{v}");
    assert_eq!(v["model"]["source"], "embedded default model");
    assert_eq!(
        v["model"]["feature_schema"],
        h5z_deepcq::features::FEATURE_SCHEMA_VERSION
    );
    // The default model carries margins calibrated on held-out data, predict mode's at
    // least as strict as guarantee mode's (it has no second look).
    let margins = &v["model"]["psnr_margins_db"];
    let table = |mode: &str| -> Vec<f64> {
        margins[mode]
            .as_array()
            .unwrap_or_else(|| panic!("no {mode} margins: {v}"))
            .iter()
            .flat_map(|bands| {
                bands
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_f64().unwrap())
            })
            .collect()
    };
    let (predict, guarantee) = (table("predict"), table("guarantee"));
    assert_eq!(predict.len(), 3 * h5z_deepcq::train::calibrate::BANDS);
    assert!(
        predict.iter().all(|m| (0.0..=40.0).contains(m)),
        "{predict:?}"
    );
    assert!(
        predict.iter().sum::<f64>() >= guarantee.iter().sum::<f64>(),
        "{predict:?} vs {guarantee:?}"
    );
    // And predict mode's SSIM and ratio margins, calibrated the same way: a fraction of
    // 1 − T in [0, 1) and a factor of at least 1.
    let metric = &v["model"]["predict_metric_margins"];
    let gap = metric["ssim_gap"].as_f64().unwrap_or_else(|| panic!("{v}"));
    let ratio = metric["ratio"].as_f64().unwrap_or_else(|| panic!("{v}"));
    assert!((0.0..1.0).contains(&gap) && ratio >= 1.0, "{metric}");
    let missing = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["info", "--json"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(v["model"]["loaded"], false);
    assert!(
        v["model"]["error"]
            .as_str()
            .unwrap()
            .contains("ORT_DYLIB_PATH"),
        "{v}"
    );
}

#[test]
fn compress_then_decompress_respects_the_bound() {
    let dir = std::env::temp_dir().join(format!("deepcq-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let values: Vec<f32> = (0..32 * 32 * 32)
        .map(|i| ((i % 32) as f32 * 0.2).sin() + (i / 1024) as f32 * 0.05)
        .collect();
    let raw = dir.join("in.f32");
    std::fs::write(&raw, bytemuck::cast_slice::<f32, u8>(&values)).unwrap();
    for codec in ["sz3", "zfp", "sperr", "lossless"] {
        let dcq = dir.join(format!("{codec}.dcq"));
        let back = dir.join(format!("{codec}.f32"));
        let out = deepcq(&[
            "compress",
            "--dtype",
            "f32",
            "--dims",
            "32x32x32",
            "--codec",
            codec,
            "--abs",
            "1e-3",
            raw.to_str().unwrap(),
            dcq.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("CR"));
        let out = deepcq(&["decompress", dcq.to_str().unwrap(), back.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<f32> =
            bytemuck::cast_slice::<u8, f32>(&std::fs::read(&back).unwrap()).to_vec();
        assert_eq!(got.len(), values.len(), "{codec}: every value back");
        let max_err = values
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let bound = if codec == "lossless" {
            0.0
        } else {
            1e-3 * (1.0 + 1e-6)
        };
        assert!(max_err as f64 <= bound, "{codec}: {max_err}");
        assert!(std::fs::metadata(&dcq).unwrap().len() < std::fs::metadata(&raw).unwrap().len());
    }
    // A chunk saved with fletcher32's 4 checksum bytes after it (h5py's read_direct_chunk
    // of a dataset with fletcher32 after deepcq) decodes.
    let dcq = dir.join("lossless.dcq");
    let mut with_fletcher = std::fs::read(&dcq).unwrap();
    with_fletcher.extend([1, 2, 3, 4]);
    let fletcher = dir.join("fletcher.dcq");
    std::fs::write(&fletcher, &with_fletcher).unwrap();
    let back = dir.join("fletcher.f32");
    let out = deepcq(&[
        "decompress",
        fletcher.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&raw).unwrap());
    // Errors: size mismatch, missing file, bad bound, bad codec, corrupt chunk.
    let out_path = dir.join("x").display().to_string();
    let raw_path = raw.display().to_string();
    let compress = |dims: &str, codec: &str, abs: &str, input: &str| -> Vec<String> {
        let args = [
            "--dims", dims, "--codec", codec, "--abs", abs, input, &out_path,
        ];
        ["compress", "--dtype", "f32"]
            .iter()
            .chain(&args)
            .map(|a| a.to_string())
            .collect()
    };
    let cases: Vec<Vec<String>> = vec![
        compress("10x10", "sz3", "1e-3", &raw_path),
        compress("32x32x32", "sz3", "1e-3", "/nonexistent/in.f32"),
        compress("32x32x32", "sz3", "-1", &raw_path),
        compress("32x32x32", "gzip", "1e-3", &raw_path),
        vec![
            "decompress".into(),
            raw_path.clone(),
            dir.join("y").display().to_string(),
        ],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = deepcq(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
    // An output that names the input is refused before anything is written: the original
    // would be replaced by its lossy chunk (or a chunk by its decode).
    let raw_before = std::fs::read(&raw).unwrap();
    let dcq = dir.join("sz3.dcq");
    let dcq_before = std::fs::read(&dcq).unwrap();
    let spelled_again = dir.join(".").join("in.f32").display().to_string();
    let mut onto_itself = compress("32x32x32", "sz3", "1e-3", &raw_path);
    *onto_itself.last_mut().unwrap() = spelled_again;
    let dcq_path = dcq.display().to_string();
    let decode_onto_itself = vec!["decompress".into(), dcq_path.clone(), dcq_path];
    for args in [onto_itself, decode_onto_itself] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = deepcq(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("is the input"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&raw).unwrap(), raw_before);
    assert_eq!(std::fs::read(&dcq).unwrap(), dcq_before);
    // A folder given as the raw input is named as one, not measured as a short file.
    let args = compress("32x32x32", "sz3", "1e-3", &dir.display().to_string());
    let out = deepcq(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is a folder"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// 64-bit values keep their type and a bound finer than 32-bit floats resolve: a round trip
/// through f32 anywhere would miss 1e-9 on values near 1.
#[test]
fn compress_then_decompress_keeps_f64_and_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f64> = (0..24 * 20 * 16)
        .map(|i| 1.0 + ((i % 16) as f64 * 0.3).sin() * 1e-3 + (i / 320) as f64 * 1e-4)
        .collect();
    let raw = dir.path().join("in.f64");
    std::fs::write(&raw, bytemuck::cast_slice::<f64, u8>(&values)).unwrap();
    for codec in ["sz3", "zfp", "sperr", "lossless"] {
        let dcq = dir.path().join(format!("{codec}.dcq"));
        let back = dir.path().join(format!("{codec}.f64"));
        let (raw, dcq_s, back_s) = (
            raw.to_str().unwrap(),
            dcq.to_str().unwrap(),
            back.to_str().unwrap(),
        );
        let out = deepcq(&[
            "compress", "--dtype", "f64", "--dims", "24x20x16", "--codec", codec, "--abs", "1e-9",
            raw, dcq_s,
        ]);
        assert!(
            out.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = deepcq(&["decompress", dcq_s, back_s]);
        assert!(
            out.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<f64> = std::fs::read(&back)
            .unwrap()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got.len(), values.len(), "{codec}: every value back");
        let max_err = values
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let bound = if codec == "lossless" {
            0.0
        } else {
            1e-9 * (1.0 + 1e-6)
        };
        assert!(max_err <= bound, "{codec}: {max_err}");
    }
}

/// More values than one chunk's header can count (4 GiB) are refused before the file is
/// read (a sparse file: nothing is allocated), and nothing is written: the lossless codec
/// wrote such a chunk, which no reader could decode.
#[test]
fn compressing_4_gib_or_more_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.f32");
    let values = (1u64 << 30) + 1;
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(values * 4)
        .unwrap();
    let dcq = dir.path().join("big.dcq");
    let dims = values.to_string();
    let out = deepcq(&[
        "compress",
        "--dtype",
        "f32",
        "--dims",
        &dims,
        "--codec",
        "lossless",
        raw.to_str().unwrap(),
        dcq.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("4 GiB"),
        "{stderr}"
    );
    assert!(!dcq.exists());
}

#[test]
fn cdvalues_prints_the_packed_words() {
    let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["cdvalues", "--psnr", "62.5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("UD=357,0,3,625,0,1"), "{text}");
    assert!(text.contains("{625, 0, 1}"), "{text}");
    let bad = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["cdvalues", "--ssim", "1.5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SSIM must be in (0, 1]"));
    // A mantissa that reads as the stored form's marker: the filter would refuse the words.
    let marker = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["cdvalues", "--psnr", "114.5262337"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&marker.stderr);
    assert!(
        !marker.status.success() && err.contains("one decimal fewer"),
        "{err}"
    );
    assert!(marker.stdout.is_empty());
    // A missing value follows in words 6-7 (-9999 as f64 bits, low word first).
    let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["cdvalues", "--psnr", "60", "--missing", "-9999"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let bits = (-9999f64).to_bits();
    let words = format!("UD=357,0,8,60,0,0,0,0,2,{},{}", bits as u32, bits >> 32);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&words));
    // Predict mode with a target it cannot promise says so, and still prints the words;
    // PSNR and SSIM targets (the latter through the PSNR it needs) need no note.
    for (target, value, noted) in [
        ("--ratio", "20", true),
        ("--ssim", "0.99", false),
        ("--psnr", "60", false),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
            .args(["cdvalues", target, value, "--mode", "predict"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let note = String::from_utf8_lossy(&out.stderr);
        assert_eq!(note.contains("guarantee mode"), noted, "{target}: {note}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("UD=357"));
    }
}

/// `deepcq train --exclude` leaves a dataset out of training entirely, so a model can be
/// benchmarked on data it has never seen; a name the table lacks is an error, not a no-op,
/// and so are `--lodo` without a real dataset to hold out, `--epochs 0` and an output that
/// names the table.
#[test]
fn train_excludes_named_datasets_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    let table = table.to_str().unwrap();
    let collect = deepcq(&["collect", "--synth", "8", "--bounds", "4", "-o", table]);
    assert!(collect.status.success(), "{collect:?}");
    let text = std::fs::read_to_string(table).unwrap();
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert!(families.len() >= 2, "{families:?}");
    let dropped = *families.iter().next().unwrap();
    let model = dir.path().join("m.onnx");
    let model = model.to_str().unwrap();
    let base = ["train", "--table", table, "-o", model, "--epochs", "1"];
    let train = deepcq(&[&base[..], &["--exclude", dropped]].concat());
    assert!(train.status.success(), "{train:?}");
    let log = String::from_utf8_lossy(&train.stderr);
    let summary = log.lines().find(|l| l.starts_with("train: ")).unwrap();
    assert!(!summary.contains(&format!("{dropped}=")), "{summary}");
    assert!(
        summary.contains(&format!("{} generated", families.len() - 1)),
        "{summary}"
    );
    let unknown = deepcq(&[&base[..], &["--exclude", "no_such_dataset"]].concat());
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("no_such_dataset") && !err.contains("panicked"),
        "{err}"
    );
    // A table of generated families alone has no real dataset to hold out, and zero
    // epochs train nothing: both are refused before any training.
    let one_epoch = base.len() - 2;
    for (args, says) in [
        ([&base[..], &["--lodo"]].concat(), "real dataset"),
        (
            [&base[..one_epoch], &["--epochs", "0"]].concat(),
            "'--epochs <EPOCHS>': 0 is not in 1..",
        ),
    ] {
        let refused = deepcq(&args);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?}: {err}");
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
    }
    // A table whose features another schema computed is refused: its model would read
    // features it never saw.
    let options = format!("{table}.options");
    let recorded = std::fs::read_to_string(&options).unwrap();
    let schema = h5z_deepcq::features::FEATURE_SCHEMA_VERSION;
    let other = recorded.replace(
        &format!("--feature-schema {schema} "),
        &format!("--feature-schema {} ", schema + 1),
    );
    assert_ne!(other, recorded);
    std::fs::write(&options, other).unwrap();
    let stale = deepcq(&base);
    let err = String::from_utf8_lossy(&stale.stderr);
    let says = format!("feature schema {}", schema + 1);
    assert!(!stale.status.success() && err.contains(&says), "{err}");
    std::fs::write(&options, recorded).unwrap();
    // An output naming the table, however spelt, would replace it after the training.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let respelt = dir.path().join("sub").join("..").join("t.csv");
    let respelt = respelt.to_str().unwrap();
    let clobber = deepcq(&["train", "--table", table, "-o", respelt, "--epochs", "1"]);
    let err = String::from_utf8_lossy(&clobber.stderr);
    assert!(
        !clobber.status.success() && err.contains("named twice"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(table).unwrap(), text);
}

#[test]
fn bench_codecs_says_why_a_constant_field_has_no_lossy_rows_and_refuses_bad_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("flat.f32");
    std::fs::write(&raw, 3.5f32.to_le_bytes().repeat(64)).unwrap();
    let raw = raw.to_str().unwrap();
    let out = deepcq(&["bench-codecs", raw, "--dims", "8x8", "--repeat", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("| lossless |") && text.contains("codecs are not run"),
        "{text}"
    );
    assert!(!text.contains("| sz3 |"), "{text}");
    for rel in ["0", "-1e-3", "inf"] {
        let rel_arg = format!("--rel={rel}");
        let out = deepcq(&["bench-codecs", raw, "--dims", "8x8", &rel_arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--rel must be"),
            "{rel}: {err}"
        );
        assert!(out.stdout.is_empty(), "{rel}: a table was started");
    }
}

#[test]
fn bench_codecs_gives_a_bound_a_codec_refuses_its_row_and_goes_on() {
    // Values 1000 to 1001 at 1e-6 of their range: finer than ZFP resolves for f32 values
    // near 1000 (2^-22 of them); SZ3 and SPERR take it.
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("offset.f32");
    let values: Vec<u8> = (0..256)
        .flat_map(|i| (1000.0 + (i as f32 / 255.0)).to_le_bytes())
        .collect();
    std::fs::write(&raw, values).unwrap();
    let raw = raw.to_str().unwrap();
    let out = deepcq(&[
        "bench-codecs",
        raw,
        "--dims",
        "16x16",
        "--rel",
        "1e-6",
        "--repeat",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let row = |codec: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {codec} |")))
    };
    assert!(
        row("zfp").is_some_and(|l| l.contains("refused") && l.contains("finer than")),
        "{text}"
    );
    for codec in ["sz3", "sperr"] {
        assert!(row(codec).is_some_and(|l| !l.contains("refused")), "{text}");
    }
}

#[test]
fn counts_of_zero_and_options_that_need_another_are_refused_up_front() {
    for (args, says) in [
        (
            &[
                "train",
                "--table",
                "t.csv",
                "-o",
                "m.onnx",
                "--experts",
                "0",
            ][..],
            "--experts",
        ),
        (
            &[
                "train",
                "--table",
                "t.csv",
                "-o",
                "m.onnx",
                "--members",
                "0",
            ][..],
            "--members",
        ),
        (&["collect", "-o", "t.csv", "--bounds", "1"][..], "--bounds"),
        (
            &["collect", "-o", "t.csv", "--max-bound", "inf"][..],
            "< infinity",
        ),
        (
            &["train", "--table", "t.csv", "-o", "m.onnx", "--lr", "0"][..],
            "--lr must be",
        ),
        (
            &["train", "--table", "t.csv", "-o", "nowhere/m.onnx"][..],
            "no folder nowhere",
        ),
        (
            &["train", "--table", "t.csv", "-o", "."][..],
            "it is a folder",
        ),
        (&["bench-codecs", "--dims", "16x16"][..], "--dims describes"),
        (
            &[
                "train", "--table", "t.csv", "-o", "m.onnx", "--report", "r.md",
            ][..],
            "need --lodo",
        ),
    ] {
        // In a scratch folder: a regression must not leave t.csv in the repository.
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?}"
        );
    }
}
