//! `deepcq bench` end to end: the real binary on a small generated corpus (raw arrays and
//! the stats.json manifests `h5z_deepcq::corpus` reads), checked through its Markdown.

use std::path::Path;
use std::process::Command;

use h5z_deepcq::synth::{generate, Kind};

/// Writes one dataset folder holding one raw array and its manifest.
fn dataset(root: &Path, name: &str, file: &str, dims: &[usize], f64_values: bool, seed: u64) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let values = generate(Kind::Spectral { slope: 2.5 }, dims, seed);
    let bytes: Vec<u8> = if f64_values {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    } else {
        values
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect()
    };
    std::fs::write(dir.join(file), bytes).unwrap();
    let dtype = if f64_values { "float64" } else { "float32" };
    let manifest = serde_json::json!([{ "file": file, "dims": dims, "dtype": dtype }]);
    std::fs::write(dir.join("stats.json"), manifest.to_string()).unwrap();
}

/// The totals rows of one target: method → cells.
fn totals_rows(report: &str, target: &str) -> Vec<(String, Vec<String>)> {
    let totals = report.split("## Totals").nth(1).expect("a Totals section");
    let totals = totals.split("\n## ").next().unwrap();
    let section = totals
        .split(&format!("### {target} dB"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {target} dB section"));
    let section = section.split("### ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| method"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn bench_reports_every_method_and_the_safe_bound_always_hits() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "smooth", "a.f32", &[16, 40, 48], false, 1);
    dataset(dir.path(), "double", "b.f64", &[12, 30, 40], true, 2);
    let report = dir.path().join("report.md");
    let png = dir.path().join("rd.png");
    let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .args(["bench", dir.path().to_str().unwrap()])
        .args(["--targets", "40,60", "--chunk", "8x24x24", "--threads", "2"])
        .args([
            "--out",
            report.to_str().unwrap(),
            "--plot",
            png.to_str().unwrap(),
        ])
        .output()
        .expect("run deepcq bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("2 arrays, 16 chunks"), "{text}");
    assert!(text.contains("### double/b.f64") && text.contains("### smooth/a.f32"));
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    for target in ["40.0", "60.0"] {
        let rows = totals_rows(&text, target);
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "safe bound (SZ3)",
                "SZ3 PSNR formula",
                "SPERR PSNR mode",
                "SZ3 oracle",
                "ZFP oracle",
                "SPERR oracle",
                "best oracle",
                "deepcq predict",
                "deepcq fast",
                "deepcq guarantee",
            ]
        );
        let cell = |name: &str, col: usize| -> f64 {
            let row = rows.iter().find(|r| r.0 == name).unwrap();
            row.1[col]
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {:?}", row.1))
        };
        // Columns: CR, /best, hit, ...
        assert_eq!(rows[0].1[2], "1.00", "safe bound hit rate at {target}");
        for guaranteed in ["deepcq fast", "deepcq guarantee"] {
            assert_eq!(
                cell(guaranteed, 2),
                1.0,
                "{guaranteed} hit rate at {target}"
            );
        }
        assert_eq!(cell("best oracle", 2), 1.0);
        assert!(
            cell("SZ3 oracle", 0) >= cell("safe bound (SZ3)", 0),
            "at {target}"
        );
        assert!(
            cell("best oracle", 0) >= cell("SZ3 oracle", 0),
            "at {target}"
        );
        assert!((cell("best oracle", 1) - 1.0).abs() < 1e-9);
        // Column 12: read MB/s, measured for every method.
        for name in &names {
            assert!(cell(name, 12) > 0.0, "{name} read MB/s at {target}");
        }
    }
}

/// The per-array row of `method` at `target` dB in the section of array `name`.
fn array_row(report: &str, name: &str, target: &str, method: &str) -> Vec<String> {
    let section = report
        .split(&format!("### {name}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section for {name}"));
    let section = section.split("### ").next().unwrap();
    let line = section
        .lines()
        .find(|l| l.starts_with(&format!("| {target} | {method} |")))
        .unwrap_or_else(|| panic!("no {method} row at {target} for {name}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// The h5py of scripts/setup.sh's venv, or None (with a note) when this clone has none.
fn h5py() -> Option<std::path::PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party/venv/bin/python");
    if py.is_file() {
        Some(py)
    } else {
        eprintln!(
            "skipped: no h5py venv at {} (scripts/setup.sh makes it)",
            py.display()
        );
        None
    }
}

#[test]
fn bench_reads_hdf5_datasets_in_their_stored_chunks() {
    let Some(python) = h5py() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dims = [16usize, 40, 48];
    dataset(dir.path(), "smooth", "a.f32", &dims, false, 1);
    // The same values in an HDF5 file, big-endian and chunked, beside an integer dataset.
    let raw = dir.path().join("smooth/a.f32");
    let h5 = dir.path().join("sim.h5");
    let script = format!(
        "import h5py, numpy as np\n\
         a = np.fromfile({raw:?}, dtype='<f4').reshape({dims:?})\n\
         with h5py.File({h5:?}, 'w') as f:\n\
         \x20   f.create_dataset('grid/a', data=a.astype('>f4'), chunks=(8, 24, 24))\n\
         \x20   f.create_dataset('ids', data=np.arange(10, dtype='i4'))\n",
        raw = raw.to_str().unwrap(),
        h5 = h5.to_str().unwrap(),
        dims = (dims[0], dims[1], dims[2]),
    );
    let made = Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let bench = |input: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
            .args([
                "bench",
                input.to_str().unwrap(),
                "--targets",
                "40",
                "--threads",
                "2",
            ])
            .args(extra)
            .output()
            .expect("run deepcq bench");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        (String::from_utf8_lossy(&out.stdout).into_owned(), err)
    };
    // Alone: every float dataset, in the file's own 8×24×24 chunks (2·2·2 of them).
    let (text, err) = bench(&h5, &[]);
    assert!(text.contains("1 arrays, 8 chunks"), "{text}");
    assert!(err.contains("sim.h5/ids left out: i32"), "{err}");
    // In a folder beside the raw copy, cut the same way: the same values give the same
    // deterministic rows.
    let (text, _) = bench(dir.path(), &["--chunk", "8x24x24"]);
    assert!(text.contains("2 arrays, 16 chunks"), "{text}");
    for method in ["safe bound (SZ3)", "best oracle"] {
        let from_h5 = array_row(&text, "sim.h5/grid/a", "40", method);
        let from_raw = array_row(&text, "smooth/a.f32", "40", method);
        assert_eq!(from_h5[2], from_raw[2], "{method} CR");
        assert_eq!(from_h5[5], from_raw[5], "{method} PSNR");
    }
}

/// Runs `deepcq bench` with `args` in `dir`, checks that it failed, and returns its stderr.
fn failed_bench(dir: &Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .current_dir(dir)
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bench_fails_clearly_on_a_missing_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = failed_bench(dir.path(), &["missing.h5".as_ref()]);
    assert!(err.contains("no such file"), "{err}");
    let fake = dir.path().join("fake.h5");
    std::fs::write(&fake, b"not hdf5").unwrap();
    let err = failed_bench(dir.path(), &[fake.as_os_str()]);
    assert!(err.contains("H5Fopen"), "{err}");
    // A raw file without a manifest beside it, by bare name and by full path, beside an
    // HDF5 file that must not be benchmarked instead.
    std::fs::write(dir.path().join("field.f32"), [0u8; 64]).unwrap();
    for name in ["field.f32".into(), dir.path().join("field.f32")] {
        let err = failed_bench(dir.path(), &[name.as_os_str()]);
        assert!(
            err.contains("not listed") && err.contains("--dtype and --dims"),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn bench_fails_clearly_when_every_array_is_skipped() {
    // Arrays holding NaN or Inf are skipped, as the peer harness skips them; with nothing
    // left the bench says so instead of writing a report of zeros.
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "ocean", "sst.f32", &[16, 16], false, 1);
    let raw = dir.path().join("ocean/sst.f32");
    let mut bytes = std::fs::read(&raw).unwrap();
    bytes[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&raw, bytes).unwrap();
    let args = [dir.path().as_os_str(), "--targets".as_ref(), "40".as_ref()];
    let err = failed_bench(dir.path(), &args);
    assert!(
        err.contains("no array left to compare") && err.contains("holds NaN or Inf"),
        "{err}"
    );
}
