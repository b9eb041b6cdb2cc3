//! What `deepcq bench` reads: a corpus folder (dataset folders with `stats.json`, the
//! layout of ../shared/data), one dataset folder, or one raw array file, described by its
//! folder's `stats.json` or by `--dtype`/`--dims`.
//!
//! Manifests are read by [`h5z_deepcq::corpus`], the same code training uses, so the bench
//! and the surrogate see arrays the same way. HDF5 input is not supported yet.

use std::path::Path;

use anyhow::{bail, Context, Result};
use h5z_deepcq::corpus::{self, ArrayEntry};
use h5z_deepcq::wire::DType;

/// The arrays under `input`, sorted by name. `raw` describes a bare raw file.
pub fn arrays(input: &Path, raw: Option<(DType, Vec<usize>)>) -> Result<Vec<ArrayEntry>> {
    let is_h5 = input
        .extension()
        .is_some_and(|e| e == "h5" || e == "hdf5" || e == "he5");
    if is_h5 {
        bail!(
            "{}: HDF5 input is not supported by `deepcq bench` yet; export the datasets as raw \
             arrays with a stats.json manifest (see docs/bench.md)",
            input.display()
        );
    }
    if input.is_dir() {
        return folder(input);
    }
    if !input.is_file() {
        bail!("{}: no such file or folder", input.display());
    }
    let dataset_dir = input.parent().unwrap_or(Path::new("."));
    if let Some((dtype, dims)) = raw {
        let dataset = dataset_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        return Ok(vec![ArrayEntry {
            dataset,
            path: input.to_path_buf(),
            dims,
            dtype,
        }]);
    }
    let entries = folder(dataset_dir)?;
    let found: Vec<ArrayEntry> = entries
        .into_iter()
        .filter(|e| same(&e.path, input))
        .collect();
    if found.is_empty() {
        bail!(
            "{}: not listed in {}; pass --dtype and --dims for a bare raw file",
            input.display(),
            dataset_dir.join("stats.json").display()
        );
    }
    Ok(found)
}

/// A corpus folder, or a single dataset folder (its own `stats.json`).
fn folder(dir: &Path) -> Result<Vec<ArrayEntry>> {
    if dir.join("stats.json").is_file() {
        let parent = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let parent = parent.parent().unwrap_or(Path::new("/"));
        let entries =
            corpus::scan(parent).with_context(|| format!("scanning {}", parent.display()))?;
        return Ok(entries
            .into_iter()
            .filter(|e| e.path.parent().is_some_and(|p| same(p, dir)))
            .collect());
    }
    let entries = corpus::scan(dir).with_context(|| format!("scanning {}", dir.display()))?;
    if entries.is_empty() {
        bail!(
            "{}: no dataset folder with a stats.json manifest found",
            dir.display()
        );
    }
    Ok(entries)
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
        let all = arrays(dir.path(), None).unwrap();
        assert_eq!(
            all.iter().map(|e| e.name()).collect::<Vec<_>>(),
            ["a/x.f32", "b/y.f64"]
        );
        let one = arrays(&dir.path().join("b"), None).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].dtype, DType::F64);
        let file = arrays(&dir.path().join("a/x.f32"), None).unwrap();
        assert_eq!(file[0].dims, [4, 8]);
        let bare = arrays(&dir.path().join("a/x.f32"), Some((DType::F32, vec![32]))).unwrap();
        assert_eq!(bare[0].dims, [32]);
        assert!(arrays(&dir.path().join("c.h5"), None).is_err());
    }
}
