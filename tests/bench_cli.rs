//! `deepcq bench` end to end: the real binary on a small generated corpus (raw arrays and
//! the stats.json manifests `h5z_deepcq::corpus` reads), checked through its Markdown.

use std::collections::HashMap;
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

/// The totals rows of one target: method → its cells by column name.
fn totals_rows(report: &str, target: &str) -> Vec<(String, HashMap<String, String>)> {
    let totals = report.split("## Totals").nth(1).expect("a Totals section");
    let totals = totals.split("\n## ").next().unwrap();
    let section = totals
        .split(&format!("### {target} dB"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {target} dB section"));
    let section = section.split("### ").next().unwrap();
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = section
        .lines()
        .find(|l| l.starts_with("| method"))
        .map(cells)
        .expect("a header row");
    let rows: Vec<_> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| method"))
        .map(|l| {
            let row = cells(l);
            let named = header[1..].iter().cloned().zip(row[1..].iter().cloned());
            (row[0].clone(), named.collect())
        })
        .collect();
    // Every method has its row: a test looping over none would check nothing.
    assert!(rows.len() >= 10, "{} rows at {target} dB", rows.len());
    rows
}

/// Runs `deepcq bench` with `args` and `--out` a report in `dir`, checks that it
/// succeeded, and returns the report.
fn bench_report(dir: &Path, args: &[&std::ffi::OsStr]) -> String {
    let report = dir.join("report.md");
    let out = Command::new(env!("CARGO_BIN_EXE_deepcq"))
        .arg("bench")
        .args(args)
        .arg("--out")
        .arg(&report)
        .output()
        .expect("run deepcq bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&report).unwrap()
}

#[test]
fn bench_reports_every_method_and_the_safe_bound_always_hits() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "smooth", "a.f32", &[16, 40, 48], false, 1);
    dataset(dir.path(), "double", "b.f64", &[12, 30, 40], true, 2);
    let png = dir.path().join("rd.png");
    let text = bench_report(
        dir.path(),
        &[
            dir.path().as_os_str(),
            "--targets".as_ref(),
            "40,60".as_ref(),
            "--chunk".as_ref(),
            "8x24x24".as_ref(),
            "--threads".as_ref(),
            "2".as_ref(),
            "--plot".as_ref(),
            png.as_os_str(),
        ],
    );
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
        let text_of = |name: &str, col: &str| -> String {
            let row = rows.iter().find(|r| r.0 == name).unwrap();
            row.1
                .get(col)
                .unwrap_or_else(|| panic!("no column {col}"))
                .clone()
        };
        let cell = |name: &str, col: &str| -> f64 {
            text_of(name, col)
                .parse()
                .unwrap_or_else(|_| panic!("{name}, {col}: {}", text_of(name, col)))
        };
        assert_eq!(rows[0].1["hit"], "1.00", "safe bound hit rate at {target}");
        for guaranteed in ["deepcq fast", "deepcq guarantee"] {
            assert_eq!(
                cell(guaranteed, "hit"),
                1.0,
                "{guaranteed} hit rate at {target}"
            );
        }
        assert_eq!(cell("best oracle", "hit"), 1.0);
        assert!(
            cell("SZ3 oracle", "CR") >= cell("safe bound (SZ3)", "CR"),
            "at {target}"
        );
        assert!(
            cell("best oracle", "CR") >= cell("SZ3 oracle", "CR"),
            "at {target}"
        );
        assert!((cell("best oracle", "/best") - 1.0).abs() < 1e-9);
        for name in &names {
            assert!(
                cell(name, "read MB/s") > 0.0,
                "{name} read MB/s at {target}"
            );
            // The chooser's share of the write: timed for deepcq's rows only, and a part
            // of what they spent in all.
            match name.starts_with("deepcq") {
                true => {
                    let share = cell(name, "choose/own");
                    assert!(share > 0.0 && share < cell(name, "time/own"), "{name}");
                }
                false => assert_eq!(text_of(name, "choose/own"), "–", "{name}"),
            }
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

/// The h5py of scripts/setup.sh's venv, which the README's test command makes: a test
/// that needs it fails without, as the other host tests do.
fn h5py() -> std::path::PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party/venv/bin/python");
    assert!(
        py.is_file(),
        "no h5py venv at {} (scripts/setup.sh makes it)",
        py.display()
    );
    py
}

/// Runs `script` with `python` and checks that it succeeded.
fn run_python(python: &Path, script: &str) {
    let made = Command::new(python).args(["-c", script]).output().unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

#[test]
fn bench_reads_hdf5_datasets_in_their_stored_chunks() {
    let python = h5py();
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
         \x20   f.create_dataset('ids', data=np.arange(10, dtype='i4'))\n\
         \x20   f.create_dataset('height', data=np.float64(2.0))\n\
         \x20   f.create_dataset('huge', shape=(2**31, 2**31), dtype='f4', chunks=(64, 64))\n",
        raw = raw.to_str().unwrap(),
        h5 = h5.to_str().unwrap(),
        dims = (dims[0], dims[1], dims[2]),
    );
    run_python(&python, &script);
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
    // The report names them too, not only stderr.
    let left_out = text.lines().find(|l| l.starts_with("- Left out: "));
    let left_out = left_out.unwrap_or_else(|| panic!("no Left out line: {text}"));
    assert!(left_out.contains("sim.h5/ids: i32"), "{left_out}");
    assert!(left_out.contains("sim.h5/height: a scalar"), "{left_out}");
    assert!(err.contains("sim.h5/height left out: a scalar"), "{err}");
    // 2^62 values, whose byte count wrapped to 0: HDF5 wrote them past an empty buffer.
    assert!(err.contains("left out sim.h5/huge: dataset size"), "{err}");
    // Known by its signature under any name.
    let elsewhere = tempfile::tempdir().unwrap();
    let renamed = elsewhere.path().join("sim.out");
    std::fs::copy(&h5, &renamed).unwrap();
    let (text, _) = bench(&renamed, &[]);
    assert!(text.contains("1 arrays, 8 chunks"), "{text}");
    let drop_huge = format!(
        "import h5py\nwith h5py.File({h5:?}, 'a') as f:\n    del f['huge']\n",
        h5 = h5.to_str().unwrap()
    );
    run_python(&python, &drop_huge);
    // In a folder beside the raw copy, cut the same way: the same values give the same
    // deterministic rows. A copy in a subfolder is named by its path there; a netCDF-3
    // file (not HDF5) is left out and the rest benched.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::copy(&h5, dir.path().join("sub/sim.h5")).unwrap();
    std::fs::write(dir.path().join("classic.nc"), b"CDF\x01 not hdf5").unwrap();
    let (text, err) = bench(dir.path(), &["--chunk", "8x24x24"]);
    assert!(text.contains("3 arrays, 24 chunks"), "{text}");
    assert!(err.contains("classic.nc left out: "), "{err}");
    for method in ["safe bound (SZ3)", "best oracle"] {
        let from_sub = array_row(&text, "sub/sim.h5/grid/a", "40", method);
        let from_h5 = array_row(&text, "sim.h5/grid/a", "40", method);
        assert_eq!(from_sub[2..6], from_h5[2..6], "{method} CR to PSNR");
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
    let raw_of_a_folder = [".", "--dtype", "f32", "--dims", "4x4"].map(std::ffi::OsStr::new);
    let err = failed_bench(dir.path(), &raw_of_a_folder);
    assert!(err.contains("not a folder"), "{err}");

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
    // A peer file that cannot be read and a report that cannot be written fail before
    // any chunk is compressed (a finished array prints a line).
    dataset(dir.path(), "ok", "a.f32", &[8, 16], false, 1);
    let corpus = ["ok".as_ref(), "--targets".as_ref(), "40".as_ref()];
    let err = failed_bench(
        dir.path(),
        &[&corpus[..], &["--peers".as_ref(), "typo.jsonl".as_ref()]].concat(),
    );
    assert!(
        err.contains("typo.jsonl") && !err.contains("done at"),
        "{err}"
    );
    let out = ["--out".as_ref(), "no/such/folder/r.md".as_ref()];
    let err = failed_bench(dir.path(), &[&corpus[..], &out[..]].concat());
    assert!(
        err.contains("r.md cannot be written") && !err.contains("done at"),
        "{err}"
    );
    // A report or plot over the input, or both in one file: refused before any work, the
    // input untouched.
    let input = dir.path().join("ok/a.f32");
    let before = std::fs::read(&input).unwrap();
    let over: [&std::ffi::OsStr; 4] = [
        input.as_os_str(),
        "--dtype".as_ref(),
        "f32".as_ref(),
        "--dims".as_ref(),
    ];
    let raw = [&over[..], &["8x16".as_ref()]].concat();
    for flag in ["--out", "--plot"] {
        let err = failed_bench(
            dir.path(),
            &[&raw[..], &[flag.as_ref(), "ok/a.f32".as_ref()]].concat(),
        );
        assert!(err.contains("is the input"), "{flag}: {err}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
    let both = [
        "--out".as_ref(),
        "r.md".as_ref(),
        "--plot".as_ref(),
        "./r.md".as_ref(),
    ];
    let err = failed_bench(dir.path(), &[&corpus[..], &both[..]].concat());
    assert!(err.contains("one file"), "{err}");
}

#[test]
fn an_array_that_cannot_be_read_is_left_out_and_named_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "good", "a.f32", &[8, 16], false, 1);
    dataset(dir.path(), "short", "b.f32", &[8, 16], false, 2);
    // The file holds less than its manifest says.
    std::fs::write(dir.path().join("short/b.f32"), [0u8; 100]).unwrap();
    let report = bench_report(
        dir.path(),
        &[dir.path().as_os_str(), "--targets".as_ref(), "40".as_ref()],
    );
    assert!(report.contains("- 1 arrays, 1 chunks"), "{report}");
    assert!(
        report.contains("- Left out: short/b.f32:") && report.contains("bytes"),
        "{report}"
    );
    // With nothing readable there is no report, and the reason is said.
    std::fs::write(dir.path().join("good/a.f32"), [0u8; 100]).unwrap();
    let err = failed_bench(
        dir.path(),
        &[dir.path().as_os_str(), "--targets".as_ref(), "40".as_ref()],
    );
    assert!(
        err.contains("no array could be read") && err.contains("good/a.f32"),
        "{err}"
    );
}

/// An array that fails once read (a `--missing` its float type cannot hold) is left out
/// and named in the report, not the run; a dataset folder, or a file in it, is benched
/// without reading its neighbours' manifests.
#[test]
fn a_late_failure_costs_its_array_and_a_dataset_folder_is_read_alone() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "wide", "a.f64", &[8, 16], true, 1);
    dataset(dir.path(), "narrow", "b.f32", &[8, 16], false, 2);
    let target: [&std::ffi::OsStr; 2] = ["--targets".as_ref(), "40".as_ref()];
    let missing: [&std::ffi::OsStr; 2] = ["--missing".as_ref(), "1e300".as_ref()];
    let report = bench_report(
        dir.path(),
        &[&[dir.path().as_os_str()][..], &target, &missing].concat(),
    );
    assert!(report.contains("- 1 arrays, 1 chunks"), "{report}");
    assert!(
        report.contains("- Left out: narrow/b.f32: its missing value"),
        "{report}"
    );
    // Every target is checked before any array is read, not only the first.
    let unpackable = [".", "--targets", "40,60.000000000001"].map(std::ffi::OsStr::new);
    let err = failed_bench(dir.path(), &unpackable);
    assert!(
        err.contains("cannot be packed") && !err.contains("left out"),
        "{err}"
    );
    std::fs::write(dir.path().join("narrow/stats.json"), "not json").unwrap();
    let err = failed_bench(
        dir.path(),
        &[&[dir.path().as_os_str()][..], &target].concat(),
    );
    assert!(err.contains("narrow"), "{err}");
    for alone in [dir.path().join("wide"), dir.path().join("wide/a.f64")] {
        let report = bench_report(dir.path(), &[&[alone.as_os_str()][..], &target].concat());
        assert!(report.contains("- 1 arrays, 1 chunks"), "{report}");
        assert!(report.contains("wide/a.f64"), "{report}");
    }
}

#[test]
fn bench_writes_nan_and_inf_as_the_filter_does() {
    // A 32×32 field in 16×16 chunks: one chunk all NaN (land), one holding NaN and +Inf
    // (two kinds: the filter stores it exactly), one with a NaN hole, one finite. The
    // chunks the filter stores exactly are stored exactly by every row, the others
    // compressed (the holed one to the target over its real values).
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "ocean", "sst.f32", &[32, 32], false, 1);
    let raw = dir.path().join("ocean/sst.f32");
    let mut values: Vec<f32> = std::fs::read(&raw)
        .unwrap()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    for (i, v) in values.iter_mut().enumerate() {
        let (row, col) = ((i / 32) as i64, (i % 32) as i64);
        match (row / 16, col / 16) {
            (0, 0) => *v = f32::NAN,
            (0, 1) if row == 3 => *v = [f32::NAN, f32::INFINITY][(col % 2) as usize],
            (1, 0) if (row - 24).pow(2) + (col - 8).pow(2) <= 16 => *v = f32::NAN,
            _ => {}
        }
    }
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    let args = ["--targets", "60", "--chunk", "16x16", "--oracle-steps", "4"];
    let args: Vec<&std::ffi::OsStr> = std::iter::once(dir.path().as_os_str())
        .chain(args.iter().map(|a| a.as_ref()))
        .collect();
    let text = bench_report(dir.path(), &args);
    assert!(text.contains("1 arrays, 4 chunks"), "{text}");
    for (name, cells) in totals_rows(&text, "60.0") {
        // The rows that promise the target meet it over the real values.
        if name.contains("oracle")
            || name.starts_with("safe")
            || name.ends_with("fast")
            || name.ends_with("guarantee")
        {
            assert_eq!(cells["chunks hit"], "1.000", "{name}: {cells:?}");
        }
        let lossless: usize = cells["codecs"].rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(lossless, 2, "{name}: {cells:?}");
    }
}

#[test]
fn bench_marks_a_fill_value_and_a_named_missing_value_as_the_filter_does() {
    // One field with a hole of missing values, three ways: an HDF5 dataset whose fill
    // value (-9999) fills the hole (stored big-endian, fill value too), one whose hole is
    // NaN, and a bare raw file holding -9999 benched with --missing -9999. The filter
    // marks the first and the last as it marks NaN, so every row must match the NaN
    // dataset's; left unmarked, -9999 would set the chunks' range and every PSNR.
    let python = h5py();
    let dir = tempfile::tempdir().unwrap();
    let dims = [16usize, 40, 48];
    dataset(dir.path(), "smooth", "a.f32", &dims, false, 3);
    let raw = dir.path().join("smooth/a.f32");
    let h5 = dir.path().join("holes.h5");
    let holed = dir.path().join("holed.f32");
    let script = format!(
        "import h5py, numpy as np\n\
         a = np.fromfile({raw:?}, dtype='<f4').reshape({dims:?})\n\
         z, y, x = np.ogrid[:{d0}, :{d1}, :{d2}]\n\
         hole = (z - 5) ** 2 + (y - 20) ** 2 + (x - 30) ** 2 <= 36\n\
         filled, nan = a.copy(), a.copy()\n\
         filled[hole], nan[hole] = -9999.0, np.nan\n\
         filled.tofile({holed:?})\n\
         with h5py.File({h5:?}, 'w') as f:\n\
         \x20   f.create_dataset('fill', data=filled.astype('>f4'), chunks=(8, 24, 24), fillvalue=-9999.0)\n\
         \x20   f.create_dataset('nan', data=nan, chunks=(8, 24, 24))\n",
        raw = raw.to_str().unwrap(),
        h5 = h5.to_str().unwrap(),
        holed = holed.to_str().unwrap(),
        dims = (dims[0], dims[1], dims[2]),
        d0 = dims[0],
        d1 = dims[1],
        d2 = dims[2],
    );
    run_python(&python, &script);
    let bench = |input: &Path, extra: &[&str]| {
        let args: Vec<&std::ffi::OsStr> = [input.as_os_str()]
            .into_iter()
            .chain(["--targets", "40", "--oracle-steps", "4"].map(|a| a.as_ref()))
            .chain(extra.iter().map(|a| a.as_ref()))
            .collect();
        bench_report(dir.path(), &args)
    };
    let text = bench(&h5, &[]);
    assert!(
        text.contains("### holes.h5/fill\n\ndims 16x40x48, chunk 8x24x24, 8 chunks, value range")
            && text.contains(", missing value -9.999000e3\n"),
        "{text}"
    );
    let raw_args = ["--dtype", "f32", "--dims", "16x40x48", "--chunk", "8x24x24"];
    let named = bench(&holed, &[&raw_args[..], &["--missing", "-9999"]].concat());
    let unmarked = bench(&holed, &raw_args);
    // A bare file is named by its folder and file name.
    let folder = dir.path().file_name().unwrap().to_str().unwrap();
    let raw_name = format!("{folder}/holed.f32");
    let methods = [
        "safe bound (SZ3)",
        "SPERR PSNR mode",
        "best oracle",
        "deepcq predict",
        "deepcq guarantee",
    ];
    for method in methods {
        let nan = array_row(&text, "holes.h5/nan", "40", method);
        let fill = array_row(&text, "holes.h5/fill", "40", method);
        let by_name = array_row(&named, &raw_name, "40", method);
        for (i, column) in [(2, "CR"), (4, "hit"), (5, "PSNR"), (6, "worst")] {
            assert_eq!(fill[i], nan[i], "{method} {column}: fill value vs NaN");
            assert_eq!(by_name[i], nan[i], "{method} {column}: --missing vs NaN");
        }
    }
    // Unmarked, -9999 is data: the four chunks the hole reaches take a range 10^4 wide,
    // and their safe bound with it (11.2 against 7.2 in all, when this was written).
    let marked_cr: f64 = array_row(&named, &raw_name, "40", "safe bound (SZ3)")[2]
        .parse()
        .unwrap();
    let unmarked_cr: f64 = array_row(&unmarked, &raw_name, "40", "safe bound (SZ3)")[2]
        .parse()
        .unwrap();
    assert!(
        unmarked_cr > 1.3 * marked_cr,
        "{unmarked_cr} vs {marked_cr}"
    );
}

#[test]
fn chunks_with_no_real_value_add_no_values_to_bits_per_value() {
    // A 16×40×48 field in 8×24×24 chunks, every chunk but the first all missing: NaN in
    // one file, -9999 in another benched with --missing -9999. Bits per value and the
    // dataset PSNR count the real values only, the first chunk's 8·24·24.
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), "field", "a.f32", &[16, 40, 48], false, 5);
    let values: Vec<f32> = std::fs::read(dir.path().join("field/a.f32"))
        .unwrap()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let in_first_chunk = |i: usize| i / (40 * 48) < 8 && (i / 48) % 40 < 24 && i % 48 < 24;
    for (name, missing) in [("nan.f32", f32::NAN), ("fill.f32", -9999.0)] {
        let bytes: Vec<u8> = values
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| if in_first_chunk(i) { v } else { missing }.to_le_bytes())
            .collect();
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let mut args = vec![
            "--dtype",
            "f32",
            "--dims",
            "16x40x48",
            "--chunk",
            "8x24x24",
            "--targets",
            "40",
            "--oracle-steps",
            "2",
        ];
        if missing == -9999.0 {
            args.extend(["--missing", "-9999"]);
        }
        let args: Vec<&std::ffi::OsStr> = [file.as_os_str()]
            .into_iter()
            .chain(args.iter().map(|a| a.as_ref()))
            .collect();
        let text = bench_report(dir.path(), &args);
        assert!(text.contains("1 arrays, 8 chunks"), "{text}");
        for (method, cells) in totals_rows(&text, "40.0") {
            // CR is over every raw byte, bits over the real values, so together they
            // give the values counted.
            let cr: f64 = cells["CR"].parse().unwrap();
            let bits: f64 = cells["bits"].parse().unwrap();
            let counted = 8.0 * (16 * 40 * 48 * 4) as f64 / (cr * bits);
            let real = (8 * 24 * 24) as f64;
            assert!(
                (counted / real - 1.0).abs() < 0.02,
                "{name} {method}: {counted:.0} values counted for {real}"
            );
        }
    }
}
