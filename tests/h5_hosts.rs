//! The plugin inside real HDF5 hosts: h5repack/h5dump/h5diff (Debian's HDF5 1.10), a C
//! program linked to Debian's libhdf5, an MPI program writing collectively through
//! Debian's parallel HDF5 (Open MPI), h5py from PyPI (which bundles HDF5 2.0: missing
//! values, time steps written through a small chunk cache, variables written in turn; the
//! last also through a C program on Debian's 1.10), a C program writing netCDF-4
//! with a `_FillValue` through netCDF-C's `nc_def_var_filter` (Debian's netCDF-C 4.9) and
//! netCDF4-python reading what h5repack filtered (netCDF-C 4.9 with HDF5 1.14). Exit
//! codes prove nothing here (h5repack exits 0 and writes raw data when a plugin fails to
//! load), so every test checks the pipeline, the stored bytes and each chunk's PSNR.
//!
//! Needs what `scripts/setup.sh` installs (HDF5 tools, gcc, Open MPI, netCDF-C, the h5py
//! venv in third_party/).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder users point HDF5_PLUGIN_PATH at; its library is what this build produced.
fn plugin_dir() -> PathBuf {
    common::release_plugin_dir()
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

/// Runs `cmd` (with the repository's plugin folder unless `cmd` names another) and echoes
/// its output.
fn run(cmd: &mut Command) -> Output {
    if !cmd.get_envs().any(|(k, _)| k == "HDF5_PLUGIN_PATH") {
        cmd.env("HDF5_PLUGIN_PATH", plugin_dir());
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/setup.sh)"));
    eprintln!(
        "$ {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn make_input(dir: &Path) -> PathBuf {
    make_input_with(&python(), dir)
}

fn make_input_with(python: &Path, dir: &Path) -> PathBuf {
    let input = dir.join("in.h5");
    let out = run(Command::new(python)
        .arg(repo().join("tests/hosts/make_input.py"))
        .arg(&input));
    assert!(out.status.success(), "make_input.py failed");
    input
}

/// Compiles `tests/hosts/{source}` into `exe` with `cc` and the flags `flags_cmd` prints
/// (pkg-config, nc-config).
fn compile(cc: &str, source: &str, exe: &Path, flags_cmd: &[&str]) {
    let flags = Command::new(flags_cmd[0])
        .args(&flags_cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{flags_cmd:?}: {e} (run scripts/setup.sh)"));
    assert!(
        flags.status.success(),
        "{flags_cmd:?} failed: run scripts/setup.sh"
    );
    let flags = String::from_utf8(flags.stdout).unwrap();
    let out = run(Command::new(cc)
        .arg("-O1")
        .arg("-o")
        .arg(exe)
        .arg(repo().join("tests/hosts").join(source))
        .args(flags.split_whitespace())
        .arg("-lm"));
    assert!(out.status.success(), "{cc} failed on {source}");
}

/// Runs `tests/hosts/{script}` with `args` in the venv's Python (from that folder, so it
/// imports check.py) and asserts it exits 0 saying "ALL OK".
fn host_script(script: &str, args: &[&Path]) {
    host_script_with(&python(), script, args)
}

/// [`host_script`] in another `python`.
fn host_script_with(python: &Path, script: &str, args: &[&Path]) {
    let hosts = repo().join("tests/hosts");
    let out = run(Command::new(python)
        .arg(hosts.join(script))
        .args(args)
        .current_dir(&hosts));
    assert!(
        out.status.success() && stdout(&out).contains("ALL OK"),
        "{script} failed"
    );
}

fn check(original: &Path, filtered: &Path, target: &str) {
    let out = run(Command::new(python())
        .arg(repo().join("tests/hosts/check.py"))
        .args([original, filtered])
        .arg(target));
    assert!(
        out.status.success() && stdout(&out).contains("ALL OK"),
        "chunk check failed for {}",
        filtered.display()
    );
}

#[test]
fn h5repack_applies_the_filter_to_every_dataset_and_meets_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    for (spec, target, named) in [
        ("UD=357,0,1,60", "60", None),
        ("UD=357,0,3,625,0,1", "62.5", None),
        ("UD=357,0,4,45,0,0,3", "45", Some("sperr")),
        // ZFP only; predict mode (no guarantee) is tested through its trace elsewhere.
        ("UD=357,0,4,80,0,0,2", "80", Some("zfp")),
    ] {
        let output = dir.path().join("out.h5");
        let trace = dir.path().join("trace.jsonl");
        let _ = std::fs::remove_file(&trace);
        let out = run(Command::new("h5repack")
            .env("H5Z_DEEPCQ_TRACE", &trace)
            .args(["-f", spec])
            .arg(&input)
            .arg(&output));
        assert!(out.status.success(), "h5repack -f {spec} failed");
        // A compressor the cd_values name stores every lossy chunk.
        let codecs: Vec<String> = std::fs::read_to_string(&trace)
            .expect("the write was traced")
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["codec"].to_string())
            .filter(|c| c != "\"lossless\"")
            .collect();
        assert!(!codecs.is_empty(), "{spec}: no lossy chunk");
        if let Some(named) = named {
            let only = codecs.iter().all(|c| *c == format!("\"{named}\""));
            assert!(only, "{spec}: {codecs:?}");
        }
        let dump = run(Command::new("h5dump").arg("-pH").arg(&output));
        let text = stdout(&dump);
        assert_eq!(
            text.matches("COMMENT deepcq: quality-targeted lossy compression")
                .count(),
            9,
            "h5dump -pH does not show the filter on all 9 datasets"
        );
        check(&input, &output, target);

        // A file written with the filter repacks again with its stored cd_values.
        let again = dir.path().join("again.h5");
        let out = run(Command::new("h5repack").arg(&output).arg(&again));
        assert!(out.status.success());
        check(&input, &again, target);
    }
}

/// A copy of a filtered dataset into one set up alike stores its chunks as they were, not
/// compressed again (a second codec's error on the first): h5repack when a filter named
/// for another dataset makes it read and write every dataset, and a script copying through
/// h5py. With nothing kept (`H5Z_DEEPCQ_KEEP_MB=0`) h5repack compresses them again.
#[test]
fn a_copy_of_filtered_chunks_stores_them_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    let filtered = dir.path().join("filtered.h5");
    let out = run(Command::new("h5repack")
        .args(["-f", "UD=357,0,1,60"])
        .arg(&input)
        .arg(&filtered));
    assert!(out.status.success());
    for (keep_mb, expect) in [("64", "same"), ("0", "differ")] {
        let copy = dir.path().join(format!("copy{keep_mb}.h5"));
        let out = run(Command::new("h5repack")
            .env("H5Z_DEEPCQ_KEEP_MB", keep_mb)
            .args(["-f", "/ints:GZIP=1"])
            .arg(&filtered)
            .arg(&copy));
        assert!(out.status.success(), "h5repack -f /ints:GZIP=1 failed");
        host_script(
            "copies_keep_chunks.py",
            &[&filtered, &copy, Path::new(expect)],
        );
    }
}

/// An absolute bound as large as the data's range, what a float's bit pattern given as the
/// bound's integer becomes (1e-3f is 981668463), is said once on stderr: every chunk is
/// stored as about its mean, which meets the bound but is most likely not what was meant.
#[test]
fn an_absolute_bound_beyond_the_range_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    // Every dataset: /field spans about 3, field64_tiny 1e-170 (which a bound of 1e-3 spans
    // too: no mistake, not said).
    for (spec, said) in [("UD=357,0,2,981668463,3", 1), ("UD=357,0,3,1,3,3", 0)] {
        let output = dir.path().join("abs.h5");
        let _ = std::fs::remove_file(&output);
        let out = run(Command::new("h5repack")
            .args(["-f", spec])
            .arg(&input)
            .arg(&output));
        assert!(out.status.success(), "h5repack -f {spec} failed");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines = err
            .lines()
            .filter(|l| l.contains("at least a chunk's value range"));
        assert_eq!(lines.count(), said, "{spec}: {err}");
    }
}

/// A ratio target small chunks cannot reach (8×8 chunks hold 256 bytes; the 3-value
/// `tiny` dataset 12, less than a chunk header) is written as well as it can be and said
/// once on stderr, not passed over in silence.
#[test]
fn a_ratio_target_a_chunk_cannot_reach_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    let output = dir.path().join("out.h5");
    let out = run(Command::new("h5repack")
        .args(["-f", "UD=357,0,2,16,2"])
        .arg(&input)
        .arg(&output));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("for a target of"))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("stored at ratio"), "{err}");
    // Its header alone takes more than the ratio leaves: no bound reaches it, so the chunk
    // is stored exactly (it was stored at the loosest bound the search tried: 1.5, 1.5, 4).
    let dump = stdout(&run(Command::new("h5dump")
        .args(["-d", "/tiny"])
        .arg(&output)));
    let data = dump.split("(0):").nth(1).expect("tiny's values");
    let values: Vec<f64> = data
        .split(['}', '\n'])
        .next()
        .unwrap()
        .split(',')
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    assert_eq!(values, [1.0, 2.0, 4.0], "{dump}");
}

#[test]
fn h5diff_sees_lossless_types_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    let output = dir.path().join("out.h5");
    assert!(run(Command::new("h5repack")
        .args(["-f", "UD=357,0,1,60"])
        .arg(&input)
        .arg(&output))
    .status
    .success());
    for name in ["ints", "compound", "constant", "tiny"] {
        let out = run(Command::new("h5diff").arg(&input).arg(&output).arg(name));
        assert!(
            out.status.success(),
            "h5diff reports a difference in {name}"
        );
    }
    // The lossy field does differ: h5diff must see it (the filter did something).
    let out = run(Command::new("h5diff").arg(&input).arg(&output).arg("field"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "h5diff sees no change in the lossy field"
    );
}

#[test]
fn c_program_writes_reads_and_gets_errors_on_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("write_read");
    compile(
        "gcc",
        "write_read.c",
        &exe,
        &["pkg-config", "--cflags", "--libs", "hdf5-serial"],
    );
    let out = run(Command::new(&exe).arg(dir.path().join("c.h5")));
    assert!(out.status.success() && stdout(&out).contains("ALL OK"));
    let errors = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "slot 1 (kind) = 9",
        "slot 0 (target) = 4294967291",
        "expects 1 to 6 cd_values",
        "in the pipeline twice",
    ] {
        assert!(errors.contains(needle), "error stack lacks {needle:?}");
    }
}

/// A program linked statically to Debian's libhdf5.a exports no HDF5 functions to the
/// plugin: the dataset is refused and the filter says why on stderr, naming the fix (it
/// said several copies of libhdf5 were loaded).
#[test]
fn a_statically_linked_program_is_told_why_the_filter_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("static_link");
    let libdir = run(Command::new("pkg-config").args(["--libs-only-L", "hdf5-serial"]));
    let libdir = PathBuf::from(stdout(&libdir).trim().trim_start_matches("-L"));
    let cflags = run(Command::new("pkg-config").args(["--cflags", "hdf5-serial"]));
    let out = run(Command::new("gcc")
        .arg("-o")
        .arg(&exe)
        .arg(repo().join("tests/hosts/static_link.c"))
        .args(stdout(&cflags).split_whitespace())
        .arg(libdir.join("libhdf5.a"))
        .args(["-lz", "-lsz", "-lm", "-ldl", "-lpthread"]));
    assert!(out.status.success(), "gcc failed on static_link.c");
    let out = run(Command::new(&exe).arg(dir.path().join("static.h5")));
    assert_eq!(stdout(&out).trim(), "refused");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("-Wl,--export-dynamic"), "{said}");
    assert!(!said.contains("several copies"), "{said}");
}

/// A registration tried before the host loaded HDF5 fails with the reason, and a later one
/// succeeds (tests/hosts/register_late.py).
#[test]
fn registering_before_hdf5_is_loaded_fails_and_can_be_retried() {
    host_script(
        "register_late.py",
        &[&plugin_dir().join("libh5z_deepcq.so")],
    );
}

/// hdf5plugin's plugins export wrappers of a few HDF5 functions; the filter must still see
/// one copy of libhdf5 (tests/hosts/hdf5plugin_beside.py).
#[test]
fn hdf5plugin_imported_first_leaves_h5py_s_libhdf5_the_only_copy() {
    let dir = tempfile::tempdir().unwrap();
    host_script("hdf5plugin_beside.py", &[&dir.path().join("hp.h5")]);
}

/// A chunk in a dataset whose cd_values the filter never completed (created where it was not
/// found) is refused on read, not handed to HDF5 to copy a whole chunk out of
/// (tests/hosts/user_form_chunk.py).
#[test]
fn a_chunk_under_cd_values_never_completed_is_refused_not_read_past() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(python())
        .arg(repo().join("tests/hosts/user_form_chunk.py"))
        .arg(dir.path())
        .env_remove("H5Z_DEEPCQ_LOG"));
    let (said, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("ALL OK"), "{said}");
    // The reason, on the error stack where HDF5 keeps it, else on stderr; and the write
    // HDF5 stored raw, said on stderr.
    let reason = "not in the form the filter completes";
    assert!(
        said.contains(reason) || err.contains("decode: the dataset's"),
        "{said}{err}"
    );
    assert!(err.contains("cannot write either"), "{err}");
}

#[test]
fn h5py_with_bundled_hdf5_writes_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    host_script("h5py_write.py", &[&input, &dir.path().join("py.h5")]);
}

/// A `H5Z_DEEPCQ_LOG` directive env_filter cannot parse is warned of with `eprintln!`,
/// which panics when stderr is a pipe nobody reads (Python ignores SIGPIPE, so the write
/// fails instead of ending the process): the filter must still write and read, its log
/// off, and never abort the host.
#[test]
fn a_bad_log_directive_with_stderr_unread_neither_aborts_nor_fails_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, h5py, numpy as np
x = np.sin(np.linspace(0, 20, 64 * 64)).reshape(64, 64).astype("f4")
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("x", data=x, chunks=(32, 32), compression=357, compression_opts=(60,))
with h5py.File(sys.argv[1]) as f:
    y = f["x"][...]
mse = np.mean((y.astype("f8") - x) ** 2)
psnr = 20 * np.log10(float(x.max()) - float(x.min())) - 10 * np.log10(mse) if mse > 0 else np.inf
print("PSNR", psnr)
print("ALL OK" if psnr >= 60 else "FAILED")
"#;
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("log.h5"))
        .env("HDF5_PLUGIN_PATH", plugin_dir())
        .env("H5Z_DEEPCQ_LOG", "h5z_deepcq=verbose")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("venv python (run scripts/setup.sh)");
    // Nobody reads stderr: every write to it fails with EPIPE.
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("ALL OK"),
        "{:?}: {said}",
        out.status
    );
}

/// h5py marks its filters optional, so HDF5 stores a chunk the filter failed raw and clears
/// the filter's message: the filter says the first such failure on stderr. Here a file
/// written where the model loads is overwritten by a process whose `H5Z_DEEPCQ_MODEL`
/// names no file (the filter loaded first, as the README says a new process must): every
/// chunk is stored raw and reads back exact, and stderr says why, once.
#[test]
fn a_chunk_an_optional_filter_failed_is_stored_raw_and_said_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optional.h5");
    let write = |values: &str, mode: &str| {
        format!(
            r#"
import sys, h5py, numpy as np
h5py.h5z.filter_avail(357)
x = np.{values}(np.arange(64 * 64, dtype="f4").reshape(64, 64) / 40)
with h5py.File(sys.argv[1], "{mode}") as f:
    if "x" in f:
        f["x"][...] = x
    else:
        f.create_dataset("x", data=x, chunks=(32, 32), compression=357, compression_opts=(60,))
with h5py.File(sys.argv[1]) as f:
    masks = [f["x"].id.read_direct_chunk((i, j))[0] for i in (0, 32) for j in (0, 32)]
    exact = bool((f["x"][...] == x).all())
print("masks", masks, "exact", exact)
"#
        )
    };
    let created = run(Command::new(python())
        .arg("-c")
        .arg(write("sin", "w"))
        .arg(&path)
        .env_remove("H5Z_DEEPCQ_LOG")
        .env_remove("H5Z_DEEPCQ_ALLOW_FALLBACK"));
    assert!(stdout(&created).contains("masks [0, 0, 0, 0] exact False"));
    let out = run(Command::new(python())
        .arg("-c")
        .arg(write("cos", "r+"))
        .arg(&path)
        .env("H5Z_DEEPCQ_MODEL", dir.path().join("no-such-model.onnx"))
        .env_remove("H5Z_DEEPCQ_LOG")
        .env_remove("H5Z_DEEPCQ_ALLOW_FALLBACK"));
    let (said, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && said.contains("masks [1, 1, 1, 1] exact True"),
        "{said}"
    );
    assert_eq!(err.matches("h5z-deepcq: deepcq encode").count(), 1, "{err}");
    assert!(err.contains("no-such-model.onnx"), "{err}");
    assert!(err.contains("stores the chunk raw"), "{err}");
}

#[test]
fn h5py_writes_through_its_own_hdf5_when_netcdf4_loaded_another_first() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path());
    host_script("two_hdf5.py", &[&input, &dir.path().join("two.h5")]);
}

#[test]
fn netcdf4_reads_a_variable_h5repack_filtered() {
    let dir = tempfile::tempdir().unwrap();
    host_script("netcdf_read.py", &[dir.path(), Path::new("60")]);
}

#[test]
fn parallel_hdf5_ranks_write_one_dataset_collectively() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("parallel_write");
    let flags = ["pkg-config", "--cflags", "--libs", "hdf5-openmpi"];
    compile("mpicc", "parallel_write.c", &exe, &flags);
    // Two ranks whose z slabs split chunks between them; three on two cores also passes
    // (oversubscribed). Open MPI refuses root without the two variables, and looks for ssh
    // even for local ranks unless told not to.
    let out = run(Command::new("mpirun")
        .args(["--oversubscribe", "-np", "2"])
        .arg(&exe)
        .arg(dir.path().join("parallel.h5"))
        .arg("60")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_plm_rsh_agent", "/bin/false"));
    let text = stdout(&out);
    assert!(out.status.success() && text.contains("ALL OK"));
    for rank in ["rank 0 of 2", "rank 1 of 2"] {
        assert!(text.contains(rank), "{rank} did not check its chunks");
    }
}

#[test]
fn netcdf_c_writes_a_variable_through_nc_def_var_filter() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("netcdf_write");
    compile(
        "gcc",
        "netcdf_write.c",
        &exe,
        &["nc-config", "--cflags", "--libs"],
    );
    let out = run(Command::new(&exe).arg(dir.path().join("ts.nc")).arg("60"));
    assert!(out.status.success() && stdout(&out).contains("ALL OK"));
}

#[test]
fn time_steps_written_one_at_a_time_through_a_small_chunk_cache_meet_the_target() {
    let dir = tempfile::tempdir().unwrap();
    host_script("partial_writes.py", &[dir.path(), Path::new("40")]);
}

/// HDF5 1.12 and 1.14, the releases between Debian's 1.10 and the 2.0 h5py bundles, which
/// HPC centres still run: through the h5py wheels that bundle them (scripts/setup.sh), the
/// filter writes and reads, keeps missing values, refuses what it must, and stores partial
/// writes to the target after a restart. A Python too new for a release's wheels leaves
/// it untested, and says so.
#[test]
fn h5py_wheels_with_hdf5_1_12_and_1_14_write_and_read() {
    for release in ["1.12", "1.14"] {
        // scripts/setup.sh says why where this Python has no wheel for the release.
        let untested = repo().join(format!("third_party/venv-hdf5-{release}.untested"));
        if let Ok(reason) = std::fs::read_to_string(untested) {
            eprintln!("HDF5 {release} not tested: {}", reason.trim());
            continue;
        }
        let py = repo().join(format!("third_party/venv-hdf5-{release}/bin/python"));
        assert!(
            py.exists(),
            "{} is missing: run scripts/setup.sh",
            py.display()
        );
        let version =
            run(Command::new(&py).args(["-c", "import h5py; print(h5py.version.hdf5_version)"]));
        assert!(
            stdout(&version).starts_with(&format!("{release}.")),
            "{} runs HDF5 {}",
            py.display(),
            stdout(&version)
        );
        let dir = tempfile::tempdir().unwrap();
        let input = make_input_with(&py, dir.path());
        host_script_with(&py, "h5py_write.py", &[&input, &dir.path().join("py.h5")]);
        host_script_with(
            &py,
            "missing_values.py",
            &[&dir.path().join("nan.h5"), Path::new("60")],
        );
        host_script_with(&py, "partial_writes.py", &[dir.path(), Path::new("40")]);
    }
}

#[test]
fn nan_missing_values_are_kept_and_the_rest_compressed_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    host_script(
        "missing_values.py",
        &[&dir.path().join("nan.h5"), Path::new("60")],
    );
}

/// Two variables of one shape and setting written a slab at a time in turn, through h5py's
/// HDF5, are each compressed as when written alone (tests/hosts/interleaved.py), in
/// guarantee and fast mode: what a dataset's chunks teach stays with that dataset.
#[test]
fn variables_written_in_turn_each_learn_from_their_own_chunks() {
    for mode in ["0", "2"] {
        let dir = tempfile::tempdir().unwrap();
        host_script(
            "interleaved.py",
            &[dir.path(), Path::new("60"), Path::new(mode)],
        );
    }
}

/// The same through Debian's HDF5 1.10 (tests/hosts/interleaved.c): temperature and
/// pressure written a slab at a time in turn, and each alone in its own process, give the
/// same codec, bound, compressions and bytes on every chunk of each, in guarantee and fast
/// mode.
#[test]
fn variables_written_in_turn_through_hdf5_1_10_each_learn_from_their_own_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("interleaved");
    let flags = ["pkg-config", "--cflags", "--libs", "hdf5-serial"];
    compile("gcc", "interleaved.c", &exe, &flags);
    let names = ["temperature", "pressure"];
    for mode in ["0", "2"] {
        // One process per run, so memory starts empty; each chunk's trace record.
        let traced = |label: &str, order: &str, vars: &[&str]| {
            let trace = dir.path().join(format!("{label}_{mode}.jsonl"));
            let out = run(Command::new(&exe)
                .arg(dir.path().join(format!("{label}_{mode}.h5")))
                .args(["60", mode, order])
                .args(vars)
                .env("H5Z_DEEPCQ_TRACE", &trace));
            assert!(
                out.status.success() && stdout(&out).contains("ALL OK"),
                "{label}"
            );
            std::fs::read_to_string(&trace)
                .unwrap()
                .lines()
                .map(|l| {
                    let r: serde_json::Value = serde_json::from_str(l).unwrap();
                    let field = |k: &str| r[k].to_string();
                    [
                        field("codec"),
                        field("bound"),
                        field("compressions"),
                        field("bytes_out"),
                    ]
                })
                .collect::<Vec<_>>()
        };
        let together = traced("turn", "turn", &names);
        assert_eq!(together.len(), 2 * 12, "{together:?}");
        for (i, name) in names.iter().enumerate() {
            let alone = traced(name, "alone", &[name]);
            let in_turn: Vec<_> = together.iter().skip(i).step_by(2).cloned().collect();
            assert_eq!(in_turn, alone, "{name}, mode {mode}");
        }
    }
}

/// `scripts/install.sh` lays out a prefix that needs no environment but HDF5_PLUGIN_PATH:
/// h5repack writes through the installed plugin, and a C program built against the
/// installed header and library writes through the in-situ API, both finding the
/// installed onnxruntime beside the library; the installed files carry no debug info.
#[test]
fn an_installed_prefix_works_with_only_hdf5_plugin_path() {
    let dir = tempfile::tempdir().unwrap();
    // A prefix whose parent is missing too, as a versioned tree's first install.
    let prefix = dir.path().join("sw/prefix");
    let ort = repo().join("third_party/onnxruntime/libonnxruntime.so");
    // Under a strict umask, as on a shared tree: the folders, and the parents install.sh
    // makes, stay readable by all.
    let out = run(Command::new("bash")
        .arg("-c")
        .arg("umask 077 && bash \"$0\" \"$1\" \"$2\"")
        .arg(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .arg(&ort));
    assert!(out.status.success(), "install.sh failed");
    use std::os::unix::fs::PermissionsExt;
    for folder in ["", "lib", "lib/hdf5/plugin", "lib/python", "include", "bin"] {
        let mode = std::fs::metadata(prefix.join(folder))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{folder}");
    }
    let parent = std::fs::metadata(dir.path().join("sw")).unwrap();
    assert_eq!(
        parent.permissions().mode() & 0o777,
        0o755,
        "the prefix's parent"
    );
    // Again, with ORT_DYLIB_PATH naming the installed copy (a module file's setting).
    let again = run(Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .env("ORT_DYLIB_PATH", prefix.join("lib/libonnxruntime.so")));
    assert!(again.status.success(), "reinstall over itself failed");
    let size = |p: &str| std::fs::metadata(prefix.join(p)).unwrap().len();
    assert!(
        size("lib/libh5z_deepcq.so") < 20 << 20,
        "debug info left in"
    );
    assert!(size("lib/libonnxruntime.so") > 0 && size("include/h5z_deepcq.h") > 0);
    let installed = |cmd: &mut Command| {
        cmd.env("HDF5_PLUGIN_PATH", prefix.join("lib/hdf5/plugin"))
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("LD_LIBRARY_PATH");
        run(cmd)
    };
    // Run as users do, through PATH from elsewhere (the loader then names it "deepcq").
    let path = std::env::var("PATH").unwrap_or_default();
    let info = installed(
        Command::new("deepcq")
            .args(["info", "--json"])
            .env("PATH", format!("{}:{path}", prefix.join("bin").display()))
            .current_dir(dir.path()),
    );
    let found = prefix.join("lib/libonnxruntime.so");
    assert!(stdout(&info).contains(&format!("\"onnxruntime\": \"{}\"", found.display())));
    // The plugin in the prefix's lib/, beside bin/.
    let plugin = prefix.join("lib/libh5z_deepcq.so").canonicalize().unwrap();
    assert!(
        stdout(&info).contains(&format!("\"plugin_path\": \"{}\"", plugin.display())),
        "{}",
        stdout(&info)
    );

    let input = make_input(dir.path());
    let output = dir.path().join("out.h5");
    let out = installed(
        Command::new("h5repack")
            .args(["-f", "UD=357,0,1,60"])
            .arg(&input)
            .arg(&output),
    );
    assert!(
        out.status.success(),
        "h5repack through the installed plugin failed"
    );
    check(&input, &output, "60");
    // A plugin path relative to the working directory: onnxruntime beside the library.
    let relative = dir.path().join("relative.h5");
    let out = run(Command::new("h5repack")
        .args(["-f", "UD=357,0,1,60"])
        .arg(&input)
        .arg(&relative)
        .current_dir(dir.path())
        .env("HDF5_PLUGIN_PATH", "sw/prefix/lib/hdf5/plugin")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("LD_LIBRARY_PATH"));
    assert!(out.status.success());
    check(&input, &relative, "60");

    let exe = dir.path().join("write_c");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "hdf5-serial"])
        .output()
        .unwrap();
    let flags = String::from_utf8(flags.stdout).unwrap();
    let lib = prefix.join("lib");
    let out = run(Command::new("gcc")
        .arg(repo().join("examples/write_c.c"))
        .arg(format!("-I{}", prefix.join("include").display()))
        .args(flags.split_whitespace())
        .arg(format!("-L{}", lib.display()))
        .arg("-lh5z_deepcq")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lm", "-o"])
        .arg(&exe));
    assert!(
        out.status.success(),
        "gcc against the installed prefix failed"
    );
    let out = installed(Command::new(&exe).arg(dir.path().join("c.h5")));
    let text = stdout(&out);
    let word = |key: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(out.status.success(), "write_c failed");
    assert!(word("chunks=").is_some_and(|n| n > 0.0) && word("chunks=") == word("met="));

    // The h5py helper from the prefix, with no plugin path at all.
    let out = run(Command::new(python())
        .arg(repo().join("tests/hosts/python_module.py"))
        .arg(dir.path().join("py.h5"))
        .arg(prefix.join("lib/python"))
        .current_dir(repo().join("tests/hosts"))
        .env_remove("HDF5_PLUGIN_PATH")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("LD_LIBRARY_PATH"));
    assert!(out.status.success() && stdout(&out).contains("ALL OK"));
}

/// python/h5z_deepcq.py registers the filter with h5py's HDF5 and packs its options, with
/// no HDF5_PLUGIN_PATH (tests/hosts/python_module.py).
#[test]
fn the_h5py_helper_registers_the_filter_without_a_plugin_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(python())
        .arg(repo().join("tests/hosts/python_module.py"))
        .arg(dir.path().join("py.h5"))
        .current_dir(repo().join("tests/hosts"))
        .env_remove("HDF5_PLUGIN_PATH")
        .env_remove("ORT_DYLIB_PATH"));
    assert!(out.status.success() && stdout(&out).contains("ALL OK"));
}
