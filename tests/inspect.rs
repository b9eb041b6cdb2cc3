//! `deepcq inspect` on real files: written by h5repack through the plugin, cross-checked
//! against h5py's view of the same file (chunk counts, stored bytes), then damaged chunk by
//! chunk with h5py's `write_direct_chunk` to prove a corrupt chunk is reported, not fatal.
//!
//! Needs what `scripts/setup.sh` installs (HDF5 tools, the h5py venv in third_party/).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deepcq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deepcq"))
}

/// A plugin folder holding the cdylib this test build produced. `cargo test` leaves the
/// fresh copy under deps/, beside the test binaries' dependencies.
fn plugin_dir(dir: &Path) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_deepcq"));
    let built = exe.parent().unwrap().join("deps/libh5z_deepcq.so");
    assert!(built.exists(), "{} is missing", built.display());
    let plugin = dir.join("plugin");
    std::fs::create_dir_all(&plugin).unwrap();
    std::os::unix::fs::symlink(&built, plugin.join("libh5z_deepcq.so")).unwrap();
    // The surrogate's runtime, found beside the plugin as in the repo's plugin/ folder.
    let ort = repo().join("plugin/libonnxruntime.so");
    if let Ok(ort) = ort.canonicalize() {
        std::os::unix::fs::symlink(ort, plugin.join("libonnxruntime.so")).unwrap();
    }
    plugin
}

fn python() -> PathBuf {
    let py = repo().join("third_party/venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh",
        py.display()
    );
    py
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/setup.sh)"));
    eprintln!(
        "$ {cmd:?} → {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The host-test input (edge chunks, f64, constant, NaN, tiny, ints, compound) plus a
/// dataset in a nested group, repacked through the filter at PSNR ≥ 60 dB, plus two soft
/// links.
fn repacked(dir: &Path) -> PathBuf {
    let input = dir.join("in.h5");
    let out = run(Command::new(python())
        .arg(repo().join("tests/hosts/make_input.py"))
        .arg(&input));
    assert!(out.status.success(), "make_input.py failed");
    // A dataset inside groups, to be found by path.
    let group = "import h5py, numpy as np, sys\n\
        f = h5py.File(sys.argv[1], 'a')\n\
        f.create_dataset('g/sub/wave', data=np.sin(np.linspace(0, 30, 5000)).reshape(50, 100), chunks=(25, 50))\n\
        f.close()";
    let out = run(Command::new(python()).args(["-c", group]).arg(&input));
    assert!(out.status.success());
    let output = dir.join("out.h5");
    let out = run(Command::new("h5repack")
        .env("HDF5_PLUGIN_PATH", plugin_dir(dir))
        .args(["-f", "UD=357,0,1,60"])
        .arg(&input)
        .arg(&output));
    assert!(out.status.success(), "h5repack failed");
    // Links inspect must not follow: an alias (the dataset would be listed twice) and a
    // dangling link.
    let links = "import h5py, sys\n\
        f = h5py.File(sys.argv[1], 'a')\n\
        f['alias'] = h5py.SoftLink('/field')\n\
        f['broken'] = h5py.SoftLink('/nowhere')\n\
        f.close()";
    let out = run(Command::new(python()).args(["-c", links]).arg(&output));
    assert!(out.status.success());
    output
}

/// h5py's count of allocated chunks and stored bytes, per dataset.
fn h5py_view(file: &Path) -> BTreeMap<String, (u64, u64)> {
    let script = "import h5py, json, sys\n\
        f = h5py.File(sys.argv[1], 'r')\n\
        out = {}\n\
        f.visititems(lambda n, o: out.__setitem__('/' + n, [o.id.get_num_chunks(), o.id.get_storage_size()]) if isinstance(o, h5py.Dataset) else None)\n\
        print(json.dumps(out))";
    let out = run(Command::new(python()).args(["-c", script]).arg(file));
    assert!(out.status.success());
    let map: BTreeMap<String, (u64, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    map
}

/// Runs `deepcq inspect --json` and parses its lines, keyed by dataset path.
fn inspect_json(target: &str) -> (Output, BTreeMap<String, Value>) {
    let out = run(deepcq().args(["inspect", "--json", target]));
    let reports = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("each line is one JSON object");
            (v["dataset"].as_str().unwrap().to_string(), v)
        })
        .collect();
    (out, reports)
}

/// The chunk at `offset` in one dataset's report.
fn chunk_at<'a>(report: &'a Value, offset: &[u64]) -> &'a Value {
    report["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["offset"] == serde_json::json!(offset))
        .unwrap_or_else(|| panic!("no chunk at {offset:?}"))
}

/// Overwrites chunks of `dataset` through h5py: `edits` maps a chunk offset to a Python
/// expression of the new bytes given the old ones (`old`), and a filter mask.
fn damage(file: &Path, dataset: &str, edits: &[(&str, &str, u32)]) {
    let mut script = String::from("import h5py, sys\nf = h5py.File(sys.argv[1], 'r+')\n");
    script += &format!("d = f['{dataset}']\n");
    for (offset, expr, mask) in edits {
        script += &format!(
            "old = d.id.read_direct_chunk({offset})[1]\n\
             d.id.write_direct_chunk({offset}, {expr}, filter_mask={mask})\n"
        );
    }
    script += "f.close()\nprint('damaged')\n";
    let out = run(Command::new(python()).args(["-c", &script]).arg(file));
    assert!(
        out.status.success(),
        "h5py could not write the damaged chunks"
    );
}

#[test]
fn inspect_reports_every_chunk_with_its_quality_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = repacked(dir.path());
    let reference = h5py_view(&file);
    let (out, reports) = inspect_json(file.to_str().unwrap());
    assert!(out.status.success(), "inspect failed on a healthy file");
    assert_eq!(
        reports.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "inspect and h5py list different datasets"
    );
    let mut lossy = 0;
    for (name, r) in &reports {
        let (chunks, stored) = reference[name];
        assert_eq!(r["deepcq"], true, "{name} not seen as filtered");
        assert_eq!(r["chunk_count"], chunks, "{name}: chunk count");
        assert_eq!(r["chunks"].as_array().unwrap().len() as u64, chunks);
        assert_eq!(r["stored_bytes"], stored, "{name}: stored bytes");
        let sum: u64 = r["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["stored_bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, stored, "{name}: chunk sizes do not add up");
        assert_eq!(r["corrupt_chunks"], 0);
        for c in r["chunks"].as_array().unwrap() {
            assert_eq!(c["status"], "ok", "{name} {c}");
            assert_eq!(c["target"]["kind"], "psnr", "{name} {c}");
            assert_eq!(c["target"]["value"], 60.0, "{name} {c}");
            assert_eq!(c["mode"], "guarantee", "{name} {c}");
            if c["codec"] != "lossless" {
                lossy += 1;
                let measured = match &c["measured"] {
                    // An exact reconstruction (tiny chunks).
                    Value::String(s) if s == "inf" => f64::INFINITY,
                    v => v.as_f64().expect("lossy chunks are measured"),
                };
                assert!(measured >= 60.0, "{name}: measured {measured} < 60: {c}");
            }
        }
    }
    assert!(
        lossy > 10,
        "only {lossy} lossy chunks: the filter did little"
    );
    // The 50×70×90 field with 16×32×32 chunks has edge chunks on every axis: each one
    // carries the padding record.
    let dims = [50u64, 70, 90];
    let chunk = [16u64, 32, 32];
    let mut edges = 0;
    for c in reports["/field"]["chunks"].as_array().unwrap() {
        let offset: Vec<u64> = serde_json::from_value(c["offset"].clone()).unwrap();
        if (0..3).any(|i| offset[i] + chunk[i] > dims[i]) {
            edges += 1;
            assert_eq!(c["padding"], true, "edge chunk without padding record: {c}");
        }
    }
    assert_eq!(edges, 36 - 3 * 2 * 2, "edge chunks of /field");
    assert!(reports["/field"]["ratio"].as_f64().unwrap() > 1.0);

    // A dataset in a group, by path.
    let (out, one) = inspect_json(&format!("{}/g/sub/wave", file.display()));
    assert!(out.status.success());
    assert_eq!(one.keys().collect::<Vec<_>>(), ["/g/sub/wave"]);
    assert_eq!(one["/g/sub/wave"]["chunk_count"], 4);
    // A group: the datasets under it, and only those.
    let (out, under) = inspect_json(&format!("{}/g", file.display()));
    assert!(out.status.success());
    assert_eq!(under.keys().collect::<Vec<_>>(), ["/g/sub/wave"]);

    // One dataset, as a table.
    let out = run(deepcq().args(["inspect", &format!("{}/field", file.display())]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("/field: f32, dims 50×70×90, chunks 16×32×32"),
        "{text}"
    );
    assert!(text.contains("psnr ≥ 60, guarantee"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("psnr 60")).count() as u64,
        reference["/field"].0
    );
}

/// The libhdf5 h5py's wheel bundles (HDF5 2.0, where `H5Dread_chunk` and `H5Lvisit` were
/// renamed). The venv scripts/setup.sh makes has one: a test that needs it fails without.
fn h5py_libhdf5() -> PathBuf {
    bundled_libhdf5().expect("h5py's wheel bundles libhdf5 in site-packages/h5py.libs of the venv")
}

fn bundled_libhdf5() -> Option<PathBuf> {
    let lib = repo().join("third_party/venv/lib");
    for python in std::fs::read_dir(lib).ok()?.flatten() {
        let libs = python.path().join("site-packages/h5py.libs");
        for entry in std::fs::read_dir(libs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("libhdf5-") {
                return Some(entry.path());
            }
        }
    }
    None
}

#[test]
fn hdf5_1_10_and_2_0_give_the_same_report() {
    let lib = h5py_libhdf5();
    let dir = tempfile::tempdir().unwrap();
    let file = repacked(dir.path());
    let debian = run(deepcq().args(["inspect", "--json"]).arg(&file));
    let bundled = run(deepcq()
        .env("DEEPCQ_HDF5_LIB", &lib)
        .args(["inspect", "--json"])
        .arg(&file));
    assert!(debian.status.success() && bundled.status.success());
    assert!(!debian.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&debian.stdout),
        String::from_utf8_lossy(&bundled.stdout)
    );
}

#[test]
fn corrupt_and_skipped_chunks_are_reported_and_the_exit_code_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = repacked(dir.path());
    damage(
        &file,
        "field",
        &[
            ("(0, 0, 0)", "b'not a deepcq chunk at all'", 0),
            // One payload byte flipped: only the checksum can tell.
            ("(0, 0, 32)", "old[:-1] + bytes([old[-1] ^ 1])", 0),
            // A chunk HDF5 stored without running the filter (filter mask bit 0).
            ("(0, 32, 0)", "bytes(16 * 32 * 32 * 4)", 1),
        ],
    );
    let (out, reports) = inspect_json(file.to_str().unwrap());
    assert!(!out.status.success(), "corrupt chunks must fail the run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 corrupt chunk(s)"));
    assert_eq!(reports.len(), 10, "inspect stopped before the last dataset");
    let field = &reports["/field"];
    assert_eq!(field["corrupt_chunks"], 2);
    let by_offset = |o: [u64; 3]| chunk_at(field, &o).clone();
    let magic = by_offset([0, 0, 0]);
    assert_eq!(magic["status"], "corrupt");
    assert!(
        magic["error"].as_str().unwrap().contains("magic"),
        "{magic}"
    );
    let flipped = by_offset([0, 0, 32]);
    assert_eq!(flipped["status"], "corrupt");
    assert!(
        flipped["error"].as_str().unwrap().contains("checksum"),
        "{flipped}"
    );
    let skipped = by_offset([0, 32, 0]);
    assert_eq!(skipped["status"], "filter_skipped", "{skipped}");
    assert_eq!(by_offset([0, 32, 32])["status"], "ok");
    assert_eq!(reports["/field64"]["corrupt_chunks"], 0);

    let out = run(deepcq().args(["inspect", &format!("{}/field", file.display())]));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("CORRUPT").count(), 2, "{text}");
    assert!(text.contains("filter skipped"), "{text}");

    // A whole, healthy chunk of the f64 dataset written into the f32 one: it parses, but
    // the filter refuses to read it there, and so does inspect.
    damage(
        &file,
        "constant",
        &[("(0, 0)", "f['field64'].id.read_direct_chunk((0, 0))[1]", 0)],
    );
    let (out, reports) = inspect_json(file.to_str().unwrap());
    assert!(!out.status.success());
    let moved = chunk_at(&reports["/constant"], &[0, 0]).clone();
    assert_eq!(moved["status"], "corrupt", "{moved}");
    assert!(
        moved["error"].as_str().unwrap().contains("refuses"),
        "{moved}"
    );
    assert_eq!(reports["/constant"]["corrupt_chunks"], 1);
}

#[test]
fn fletcher32_after_deepcq_unfiltered_edge_chunks_and_unopenable_datasets_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (first, latest) = (dir.path().join("first.h5"), dir.path().join("latest.h5"));
    let out = run(Command::new(python())
        .env("HDF5_PLUGIN_PATH", plugin_dir(dir.path()))
        .arg(repo().join("tests/hosts/make_inspect_layouts.py"))
        .args([&first, &latest]));
    assert!(out.status.success(), "make_inspect_layouts.py failed");
    let (out, reports) = inspect_json(first.to_str().unwrap());
    assert!(out.status.success(), "no chunk is corrupt");
    let statuses = |dataset: &str| -> Vec<(Vec<u64>, String)> {
        reports[dataset]["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let offset = serde_json::from_value(c["offset"].clone()).unwrap();
                (offset, c["status"].as_str().unwrap().to_string())
            })
            .collect()
    };
    // Fletcher32 appends its checksum to deepcq's chunk, whose header is still readable.
    let fletcher = statuses("/fletcher");
    assert_eq!(fletcher.len(), 8);
    assert!(fletcher.iter().all(|(_, s)| s == "ok"), "{fletcher:?}");
    // 100×60 in 32×32 chunks: the chunks at row 96 or column 32 are partial, stored raw.
    let partial = statuses("/partial_raw");
    assert_eq!(partial.len(), 8);
    for (offset, status) in &partial {
        let edge = offset[0] == 96 || offset[1] == 32;
        let expected = if edge { "filter_skipped" } else { "ok" };
        assert_eq!(status, expected, "chunk at {offset:?}");
    }
    let bundled = run(deepcq()
        .env("DEEPCQ_HDF5_LIB", h5py_libhdf5())
        .args(["inspect", "--json"])
        .arg(&first));
    assert_eq!(
        String::from_utf8_lossy(&bundled.stdout),
        String::from_utf8_lossy(&out.stdout)
    );
    // A byte of fletcher32's own checksum changed: deepcq's header still parses, but HDF5
    // refuses the chunk, and so does inspect.
    // So is a chunk stored with deepcq skipped (filter mask bit 0) whose checksum does not
    // match; with a matching one (0 for zeros) it is "filter skipped".
    damage(
        &first,
        "fletcher",
        &[
            ("(0, 0)", "old[:-1] + bytes([old[-1] ^ 1])", 0),
            ("(32, 0)", "bytes(32 * 32 * 4) + bytes([1, 2, 3, 4])", 1),
            ("(64, 0)", "bytes(32 * 32 * 4) + bytes(4)", 1),
        ],
    );
    let (out, reports) = inspect_json(first.to_str().unwrap());
    assert!(!out.status.success());
    let at = |offset: [u64; 2]| chunk_at(&reports["/fletcher"], &offset);
    for offset in [[0, 0], [32, 0]] {
        let chunk = at(offset);
        assert_eq!(chunk["status"], "corrupt", "{chunk}");
        assert!(
            chunk["error"].as_str().unwrap().contains("fletcher32"),
            "{chunk}"
        );
    }
    assert_eq!(at([64, 0])["status"], "filter_skipped", "{}", at([64, 0]));
    // Whatever libhdf5 inspect finds, a dataset is either listed or said to be unopenable,
    // with a failed run: never "no datasets" and success.
    let out = run(deepcq().args(["inspect", "--json"]).arg(&latest));
    let (listed, said) = (
        String::from_utf8_lossy(&out.stdout).contains("\"/latest\""),
        String::from_utf8_lossy(&out.stderr).contains("cannot open /latest"),
    );
    assert!(
        (listed && out.status.success()) || (said && !out.status.success()),
        "listed {listed}, said unopenable {said}, {}",
        out.status
    );
}

#[test]
fn missing_files_datasets_and_libraries_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.h5");
    let out = run(deepcq().args(["inspect", missing.to_str().unwrap()]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such file") && err.contains("nope.h5"),
        "{err}"
    );

    let not_hdf5 = dir.path().join("text.h5");
    std::fs::write(&not_hdf5, "hello").unwrap();
    let out = run(deepcq().args(["inspect", not_hdf5.to_str().unwrap()]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open") && err.contains("not an HDF5 file"),
        "{err}"
    );
    assert!(
        !err.contains("HDF5-DIAG"),
        "HDF5's own error stack leaked: {err}"
    );

    let out = run(deepcq()
        .env("DEEPCQ_HDF5_LIB", dir.path().join("libhdf5.so"))
        .args(["inspect", not_hdf5.to_str().unwrap()]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DEEPCQ_HDF5_LIB") && err.contains("apt install libhdf5-103-1"),
        "{err}"
    );
}

#[test]
fn a_missing_dataset_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = repacked(dir.path());
    let out = run(deepcq().args(["inspect", &format!("{}/no/such", file.display())]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no dataset or group /no/such"), "{err}");
}

#[test]
fn predict_mode_meets_a_ratio_target_through_h5repack_with_sperr_fixed_rate() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.h5");
    let out = run(Command::new(python())
        .arg(repo().join("tests/hosts/make_input.py"))
        .arg(&input));
    assert!(out.status.success(), "make_input.py failed");
    let output = dir.path().join("out.h5");
    let plugins = plugin_dir(dir.path());
    // Ratio 8 (kind 2), automatic compressor, predict mode.
    let out = run(Command::new("h5repack")
        .env("HDF5_PLUGIN_PATH", &plugins)
        .args(["-f", "UD=357,0,5,8,2,0,0,1"])
        .arg(&input)
        .arg(&output));
    assert!(out.status.success(), "h5repack failed");
    let (out, reports) = inspect_json(output.to_str().unwrap());
    assert!(out.status.success());
    // Raw bytes of a whole chunk of the 3-D f32 field and of the 2-D f64 field.
    for (name, elem, raw_chunk) in [
        ("/field", 4, 16 * 32 * 32 * 4),
        ("/field64", 8, 16 * 16 * 8),
    ] {
        let chunks = reports[name]["chunks"].as_array().unwrap();
        assert!(!chunks.is_empty(), "{name}: no chunk");
        for c in chunks {
            assert_eq!(c["mode"], "predict", "{name} {c}");
            assert_eq!(c["target"]["kind"], "ratio", "{name} {c}");
            let stored = c["stored_bytes"].as_u64().unwrap();
            let valid = |c: &Value| {
                let dims = c["valid_dims"].as_array().unwrap().iter();
                elem * dims.map(|d| d.as_u64().unwrap()).product::<u64>()
            };
            // An edge block whose headers alone take more than the ratio leaves (2 × 16
            // values of field64: 32 bytes) is stored exactly; the rest meet the ratio
            // over the chunk's raw bytes.
            match c["codec"] == "lossless" {
                true => assert!(c["padding"] == true && valid(c) / 8 < 48, "{name}: {c}"),
                false => assert!(8 * stored <= raw_chunk, "{name}: {stored} B stored: {c}"),
            }
            // Whole chunks go to SPERR's fixed rate, which records no bound and the ratio
            // it measured.
            if c["padding"] == false {
                assert_eq!(c["codec"], "sperr", "{name} {c}");
                assert_eq!(
                    c["bound"], 0.0,
                    "{name}: a fixed-rate chunk has no bound: {c}"
                );
                assert!(c["measured"].as_f64().unwrap() >= 8.0, "{name} {c}");
            }
        }
    }
    // Read back through HDF5: the field keeps the quality 4 bits per value buy.
    let script = "import h5py, numpy as np, sys\n\
        a = h5py.File(sys.argv[1])['field'][...].astype('f8')\n\
        b = h5py.File(sys.argv[2])['field'][...].astype('f8')\n\
        mse = np.mean((a - b) ** 2)\n\
        print(20 * np.log10(a.max() - a.min()) - 10 * np.log10(mse))";
    let out = run(Command::new(python())
        .env("HDF5_PLUGIN_PATH", &plugins)
        .args(["-c", script])
        .arg(&input)
        .arg(&output));
    let psnr: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(psnr > 40.0, "PSNR {psnr} dB at ratio 8");
    // The table says the chunk has no bound.
    let out = run(deepcq().args(["inspect", &format!("{}/field", output.display())]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" rate "));
}

#[test]
fn a_dataset_written_in_part_has_the_ratio_of_its_written_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("part.h5");
    // One 16×16 chunk of a 64×64 dataset written, through the plugin at 60 dB.
    let script = "import h5py, numpy as np, sys\n\
        f = h5py.File(sys.argv[1], 'w')\n\
        opts = dict(chunks=(16, 16), compression=357, compression_opts=(60,))\n\
        d = f.create_dataset('g/part', shape=(64, 64), dtype='f4', **opts)\n\
        d[0:16, 0:16] = np.sin(np.arange(256, dtype='f4') / 9).reshape(16, 16)\n\
        f.create_dataset('huge', shape=(2**32, 2**32, 16), dtype='f4', chunks=(1, 64, 16))\n\
        f.close()";
    let out = run(Command::new(python())
        .env("HDF5_PLUGIN_PATH", plugin_dir(dir.path()))
        .args(["-c", script])
        .arg(&file));
    assert!(out.status.success());
    // `file.h5/` names the file, `file.h5/g/` the group.
    for target in [
        format!("{}/", file.display()),
        format!("{}/g/", file.display()),
    ] {
        let (out, reports) = inspect_json(&target);
        assert!(out.status.success(), "{target}");
        let part = &reports["/g/part"];
        assert_eq!(part["chunk_count"], 1);
        assert_eq!(part["raw_bytes"], 16 * 16 * 4);
        let (whole, chunk) = (part["ratio"].as_f64(), part["chunks"][0]["ratio"].as_f64());
        let (whole, chunk) = (whole.unwrap(), chunk.unwrap());
        assert!((whole - chunk).abs() < 1e-9 * chunk, "{whole} vs {chunk}");
    }
    // 2^70 bytes, never written: the size saturates (it wrapped to 0).
    let (out, reports) = inspect_json(&format!("{}/huge", file.display()));
    assert!(out.status.success());
    assert_eq!(reports["/huge"]["raw_bytes"].as_u64(), Some(u64::MAX));
}
