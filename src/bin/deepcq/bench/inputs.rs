//! What `deepcq bench` reads: a corpus folder (dataset folders with `stats.json`, the
//! layout of ../shared/data), one dataset folder, one raw array file described by its
//! folder's `stats.json` or by `--dtype`/`--dims`, or HDF5 files (every f32/f64 dataset in
//! them, alone or in a folder).
//!
//! Manifests are read by [`h5z_deepcq::corpus`], the same code training uses, so the bench
//! and the surrogate see arrays the same way. HDF5 datasets are read whole through the
//! libhdf5 `deepcq inspect` uses ([`crate::hdf5`]); a chunked dataset is benched in its own
//! chunks unless `--chunk` says otherwise.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use h5z_deepcq::corpus::{self, ArrayEntry};
use h5z_deepcq::samples::SampleBuf;
use h5z_deepcq::wire::DType;

use crate::hdf5::Hdf5;

/// One array to bench.
#[derive(Clone, Debug)]
pub struct BenchArray {
    /// Dims, slowest first.
    pub dims: Vec<usize>,
    /// The chunk dims the array is stored with, when its file has them (HDF5).
    pub stored_chunk: Option<Vec<usize>>,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Raw(ArrayEntry),
    /// `label` names the file in reports: its path below the folder benched.
    Hdf5 {
        file: PathBuf,
        label: String,
        dataset: String,
    },
}

impl BenchArray {
    fn raw(entry: ArrayEntry) -> BenchArray {
        BenchArray {
            dims: entry.dims.clone(),
            stored_chunk: None,
            source: Source::Raw(entry),
        }
    }

    /// `dataset/file` for raw arrays, `file.h5/path/in/file` for HDF5 datasets (with the
    /// subfolder a folder's file is in: `sub/file.h5/path`).
    pub fn name(&self) -> String {
        match &self.source {
            Source::Raw(entry) => entry.name(),
            Source::Hdf5 { label, dataset, .. } => format!("{label}{dataset}"),
        }
    }

    /// Reads every value, with the fill value an HDF5 dataset's creator defined (which
    /// the filter treats as missing data; raw arrays have none).
    pub fn load(&self) -> Result<(SampleBuf, Option<f64>)> {
        match &self.source {
            Source::Raw(entry) => Ok((entry.load()?, None)),
            Source::Hdf5 { file, dataset, .. } => {
                let h5 = Hdf5::load()?;
                let f = h5.open(file)?;
                let dataset = f.dataset(dataset)?;
                Ok((dataset.read_floats()?, dataset.user_fill_value()?))
            }
        }
    }
}

/// An HDF5 (or netCDF-4) file: by its extension, or by HDF5's signature where the format
/// puts it (at the start, or after a user block of 512 bytes times a power of two, here up
/// to 1 MiB), whatever the name (`run.out`).
fn is_hdf5(path: &Path) -> bool {
    const EXTENSIONS: [&str; 5] = ["h5", "hdf5", "he5", "nc", "nc4"];
    const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let named = path
        .extension()
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e == *x));
    let signed = || {
        use std::os::unix::fs::FileExt;
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        let mut head = [0u8; 8];
        for at in std::iter::once(0).chain((0..=11).map(|k| 512u64 << k)) {
            if file.read_exact_at(&mut head, at).is_err() {
                return false;
            }
            if &head == SIGNATURE {
                return true;
            }
        }
        false
    };
    path.is_file() && (named || signed())
}

/// The arrays under `input`, sorted by name, and those the listing left out (datasets of
/// other types, files that are not HDF5 after all). `raw` describes a bare raw file.
pub fn arrays(
    input: &Path,
    raw: Option<(DType, Vec<usize>)>,
) -> Result<(Vec<BenchArray>, LeftOut)> {
    let mut left_out = LeftOut::default();
    let arrays = listed(input, raw, &mut left_out)?;
    Ok((arrays, left_out))
}

fn listed(
    input: &Path,
    raw: Option<(DType, Vec<usize>)>,
    left_out: &mut LeftOut,
) -> Result<Vec<BenchArray>> {
    if is_hdf5(input) && raw.is_none() {
        let label = input.file_name().unwrap_or_default().to_string_lossy();
        return hdf5_arrays(input, &label, left_out);
    }
    if input.is_dir() {
        if raw.is_some() {
            bail!(
                "{}: --dtype and --dims describe one raw file, not a folder (whose arrays \
                 its stats.json manifests or HDF5 files describe)",
                input.display()
            );
        }
        return folder(input, left_out);
    }
    if !input.is_file() {
        bail!("{}: no such file or folder", input.display());
    }
    // A bare relative name has the empty path as its parent.
    let dataset_dir = match input.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let not_listed = || {
        anyhow::anyhow!(
            "{}: not listed in {}; pass --dtype and --dims for a bare raw file",
            input.display(),
            dataset_dir.join("stats.json").display()
        )
    };
    if let Some((dtype, dims)) = raw {
        let dataset = dataset_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        return Ok(vec![BenchArray::raw(ArrayEntry {
            dataset,
            file: input
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
            path: input.to_path_buf(),
            dims,
            dtype,
        })]);
    }
    // Without a manifest beside it the file is not listed: say so before reading the
    // folder's HDF5 files, which are not what was asked for.
    if !dataset_dir.join("stats.json").is_file() {
        return Err(not_listed());
    }
    let found: Vec<BenchArray> = corpus::scan_folder(dataset_dir)?
        .into_iter()
        .filter(|e| same(&e.path, input))
        .map(BenchArray::raw)
        .collect();
    if found.is_empty() {
        return Err(not_listed());
    }
    Ok(found)
}

/// What the listing left out, each as `name: why` for the report and said on stderr as it
/// is found.
#[derive(Default)]
pub struct LeftOut(pub Vec<String>);

impl LeftOut {
    fn add(&mut self, name: &str, why: impl std::fmt::Display) {
        eprintln!("bench: {name} left out: {why}");
        self.0.push(format!("{name}: {why}"));
    }
}

/// Every f32/f64 dataset of an HDF5 file, named `label` in reports; others, and datasets
/// that cannot be opened, are named and left out.
fn hdf5_arrays(path: &Path, label: &str, left_out: &mut LeftOut) -> Result<Vec<BenchArray>> {
    let h5 = Hdf5::load()?;
    let file = h5.open(path)?;
    let mut out = Vec::new();
    let objects = file.objects()?;
    for name in &objects.unopened {
        let why = format!("libhdf5 {} cannot open it", h5.version());
        left_out.add(&format!("{label}{name}"), why);
    }
    for name in objects.datasets {
        match hdf5_array(&file, &name) {
            Ok((dims, stored_chunk)) => out.push(BenchArray {
                dims,
                stored_chunk,
                source: Source::Hdf5 {
                    file: path.to_path_buf(),
                    label: label.to_owned(),
                    dataset: name,
                },
            }),
            Err(why) => left_out.add(&format!("{label}{name}"), format!("{why:#}")),
        }
    }
    Ok(out)
}

/// The dims and stored chunk dims of dataset `name`, or why it is not benched.
fn hdf5_array(
    file: &crate::hdf5::File<'_>,
    name: &str,
) -> Result<(Vec<usize>, Option<Vec<usize>>)> {
    let dataset = file.dataset(name)?;
    let dtype = dataset.dtype()?;
    if !dtype.is_f32_or_f64() {
        bail!("{dtype}, not f32/f64");
    }
    let to_usize = |v: Vec<u64>| -> Result<Vec<usize>> {
        v.into_iter()
            .map(|d| usize::try_from(d).context("dims exceed the address space"))
            .collect()
    };
    let dims = to_usize(dataset.dims()?)?;
    if dims.is_empty() {
        bail!("a scalar (or no dataspace)");
    }
    if dims.contains(&0) {
        bail!("empty");
    }
    let stored_chunk = dataset.chunk_dims()?.map(to_usize).transpose()?;
    Ok((dims, stored_chunk))
}

/// A corpus folder, or a single dataset folder (its own `stats.json`), plus the HDF5 files
/// in it and in its subfolders.
fn folder(dir: &Path, left_out: &mut LeftOut) -> Result<Vec<BenchArray>> {
    // A dataset folder is read alone: its neighbours' manifests are not what was asked for.
    let mut arrays: Vec<BenchArray> = corpus::scan_folder(dir)
        .with_context(|| format!("scanning {}", dir.display()))?
        .into_iter()
        .map(BenchArray::raw)
        .collect();
    // One file that is not HDF5 after all (a netCDF-3 `.nc`) or cannot be read does not
    // stop a folder's run: it is named on stderr and left out.
    let files = hdf5_files(dir)?;
    for file in &files {
        let label = file.strip_prefix(dir).unwrap_or(file).to_string_lossy();
        match hdf5_arrays(file, &label, left_out) {
            Ok(found) => arrays.extend(found),
            Err(e) => left_out.add(&label, format!("{e:#}")),
        }
    }
    if arrays.is_empty() {
        bail!(
            "{}: no float32 or float64 array with values in a stats.json manifest or in {} \
             HDF5 file(s) (what was left out is named above)",
            dir.display(),
            files.len()
        );
    }
    arrays.sort_by_key(|a| a.name());
    Ok(arrays)
}

/// HDF5 files directly in `dir` and in its immediate subfolders, sorted.
fn hdf5_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(d).with_context(|| format!("listing {}", d.display()))? {
            paths.push(entry?.path());
        }
        Ok(paths)
    };
    let mut files = Vec::new();
    for path in list(dir)? {
        if path.is_dir() {
            files.extend(list(&path)?.into_iter().filter(|p| is_hdf5(p)));
        } else if is_hdf5(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (set, file) in [("a", "x.f32"), ("b", "y.f64")] {
            let d = dir.path().join(set);
            std::fs::create_dir(&d).unwrap();
            let dtype = if file.ends_with("f32") {
                "float32"
            } else {
                "float64"
            };
            std::fs::write(
                d.join("stats.json"),
                format!(r#"[{{"file": "{file}", "dims": [4, 8], "dtype": "{dtype}"}}]"#),
            )
            .unwrap();
            std::fs::write(d.join(file), vec![0u8; 32 * if set == "a" { 4 } else { 8 }]).unwrap();
        }
        dir
    }

    #[test]
    fn corpus_dataset_and_file_inputs() {
        let dir = corpus_dir();
        let (all, _) = arrays(dir.path(), None).unwrap();
        assert_eq!(
            all.iter().map(|e| e.name()).collect::<Vec<_>>(),
            ["a/x.f32", "b/y.f64"]
        );
        let (one, _) = arrays(&dir.path().join("b"), None).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name(), "b/y.f64");
        let (file, _) = arrays(&dir.path().join("a/x.f32"), None).unwrap();
        assert_eq!(file[0].dims, [4, 8]);
        let (bare, _) = arrays(&dir.path().join("a/x.f32"), Some((DType::F32, vec![32]))).unwrap();
        assert_eq!(bare[0].dims, [32]);
        assert!(
            arrays(&dir.path().join("c.h5"), None).is_err(),
            "no such file"
        );
        // Manifest entries without a value or of another type are left out, not the rest.
        std::fs::write(
            dir.path().join("b/stats.json"),
            r#"[{"file": "y.f64", "dims": [], "dtype": "float64"},
                {"file": "z.i16", "dims": [4], "dtype": "int16"}]"#,
        )
        .unwrap();
        let (kept, _) = arrays(dir.path(), None).unwrap();
        assert_eq!(
            kept.iter().map(|e| e.name()).collect::<Vec<_>>(),
            ["a/x.f32"]
        );
        // A folder left with no array at all is an error.
        assert!(arrays(&dir.path().join("b"), None).is_err());
    }
}
