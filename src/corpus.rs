//! Corpora of raw arrays described by `stats.json` manifests, the layout of
//! `../shared/data`: one folder per dataset, each with raw little-endian `.f32`/`.f64`
//! files and a `stats.json` list of `{file, dims, dtype, ...}` records.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::samples::{Layout, SampleBuf};
use crate::wire::DType;

/// Why a corpus could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    /// A file could not be read.
    // The cause is the error's source: anyhow's `{:#}` prints it after the path, and
    // naming it here too printed it twice.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A manifest could not be parsed.
    #[error("{path}: bad manifest: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// An array's size disagrees with its manifest.
    #[error("{path}: holds {found} bytes, manifest says {expected}")]
    Size {
        /// The array file.
        path: PathBuf,
        /// Bytes on disk.
        found: usize,
        /// Bytes the manifest implies.
        expected: usize,
    },
    /// An array's dims name more bytes than this machine can address.
    #[error("{path}: dims {dims:?} name more bytes than this machine can address")]
    TooLarge {
        /// The array file.
        path: PathBuf,
        /// The dims.
        dims: Vec<usize>,
    },
}

/// Bytes `dims` values of `dtype` take, or `None` when that overflows `usize`.
fn byte_len(dims: &[usize], dtype: DType) -> Option<usize> {
    let layout = Layout {
        dtype,
        elem_size: dtype.natural_size()?,
        shape: dims.to_vec(),
    };
    layout.byte_len()
}

/// One array of a corpus.
#[derive(Clone, Debug)]
pub struct ArrayEntry {
    /// Dataset folder name.
    pub dataset: String,
    /// The file as the manifest names it, in its dataset folder (`x.f32`, `a/x.f32`).
    pub file: String,
    /// File path.
    pub path: PathBuf,
    /// Dims, slowest first.
    pub dims: Vec<usize>,
    /// f32 or f64.
    pub dtype: DType,
}

impl ArrayEntry {
    /// `dataset/file` for tables.
    pub fn name(&self) -> String {
        format!("{}/{}", self.dataset, self.file)
    }

    /// Reads the values, checking the size against the manifest.
    pub fn load(&self) -> Result<SampleBuf, CorpusError> {
        let bytes = std::fs::read(&self.path).map_err(|source| CorpusError::Io {
            path: self.path.clone(),
            source,
        })?;
        let expected = byte_len(&self.dims, self.dtype).ok_or_else(|| CorpusError::TooLarge {
            path: self.path.clone(),
            dims: self.dims.clone(),
        })?;
        if bytes.len() != expected {
            return Err(CorpusError::Size {
                path: self.path.clone(),
                found: bytes.len(),
                expected,
            });
        }
        Ok(SampleBuf::from_bytes(self.dtype, &bytes).expect("size checked above"))
    }
}

#[derive(Deserialize)]
struct ManifestRecord {
    file: String,
    dims: Vec<usize>,
    dtype: String,
}

/// Lists every float32 or float64 array holding values of every dataset folder under
/// `root`, sorted by name; other entries are named (through the log, else on stderr) and
/// left out.
pub fn scan(root: &Path) -> Result<Vec<ArrayEntry>, CorpusError> {
    let mut entries = Vec::new();
    for dir in std::fs::read_dir(root).map_err(io(root))? {
        let dir = dir.map_err(io(root))?.path();
        if dir.join("stats.json").is_file() {
            entries.extend(scan_dataset(&dir)?);
        }
    }
    entries.sort_by_key(|e| e.name());
    Ok(entries)
}

/// [`scan`] for `folder` itself when it is one dataset folder (it holds a `stats.json`),
/// without reading its neighbours' manifests; else [`scan`] of the corpus under it.
pub fn scan_folder(folder: &Path) -> Result<Vec<ArrayEntry>, CorpusError> {
    if !folder.join("stats.json").is_file() {
        return scan(folder);
    }
    // Named by its own name, also when given as `.`.
    let dir = folder.canonicalize().map_err(io(folder))?;
    let mut entries = scan_dataset(&dir)?;
    entries.sort_by_key(|e| e.name());
    Ok(entries)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError {
    let path = path.to_path_buf();
    move |source| CorpusError::Io { path, source }
}

/// The arrays `dir/stats.json` lists (see [`scan`]).
fn scan_dataset(dir: &Path) -> Result<Vec<ArrayEntry>, CorpusError> {
    let mut entries = Vec::new();
    let manifest = dir.join("stats.json");
    let text = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
    let records: Vec<ManifestRecord> =
        serde_json::from_str(&text).map_err(|e| CorpusError::Manifest {
            path: manifest.clone(),
            message: e.to_string(),
        })?;
    let dataset = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    // An array of another type, or of no value, is named and left out: the rest of
    // the corpus still serves.
    for record in records {
        let left_out = |why: String| {
            let at = manifest.display();
            crate::observe::warn(&format!("{at}: {} left out: {why}", record.file));
        };
        let dtype = match record.dtype.as_str() {
            "float32" | "f32" => DType::F32,
            "float64" | "f64" => DType::F64,
            other => {
                left_out(format!("dtype {other} is not float32 or float64"));
                continue;
            }
        };
        if record.dims.is_empty() || record.dims.contains(&0) {
            left_out(format!("dims {:?} hold no value", record.dims));
            continue;
        }
        // Checked here, before a reader multiplies them out: a wrapped product could
        // match a short file.
        if record.dims.len() > crate::wire::MAX_RANK || byte_len(&record.dims, dtype).is_none() {
            let max = crate::wire::MAX_RANK;
            left_out(format!(
                "dims {:?}: rank over {max} or too many bytes",
                record.dims
            ));
            continue;
        }
        entries.push(ArrayEntry {
            dataset: dataset.clone(),
            path: dir.join(&record.file),
            file: record.file,
            dims: record.dims,
            dtype,
        });
    }
    Ok(entries)
}

/// `../shared/data` beside the repository, or `$DEEPCQ_SHARED_DATA`, when present. An empty
/// `DEEPCQ_SHARED_DATA` counts as unset, as in scripts/test.sh: read as a path it named the
/// working directory, where the repository's own README.md made it look present.
pub fn shared_data_dir() -> Option<PathBuf> {
    present_data_dir(std::env::var_os("DEEPCQ_SHARED_DATA"))
}

/// [`shared_data_dir`] for the variable's value `named`.
fn present_data_dir(named: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let candidate = named
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    candidate.join("README.md").is_file().then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_shared_data_variable_is_unset_not_the_working_directory() {
        // The tests run from the repository's root, which holds a README.md.
        assert!(Path::new("README.md").is_file());
        let unset = present_data_dir(None);
        assert_eq!(present_data_dir(Some("".into())), unset);
        assert_ne!(present_data_dir(Some("".into())), Some(PathBuf::from("")));
        let folder = tempfile::tempdir().unwrap();
        assert_eq!(present_data_dir(Some(folder.path().into())), None);
        std::fs::write(folder.path().join("README.md"), "index").unwrap();
        assert_eq!(
            present_data_dir(Some(folder.path().into())),
            Some(folder.path().to_path_buf())
        );
    }

    #[test]
    fn dims_that_overflow_are_left_out_not_wrapped_onto_a_short_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("set");
        std::fs::create_dir(&dir).unwrap();
        // 2^62 f32 values are 2^64 bytes: wrapped, 0, the size of the empty file.
        std::fs::write(dir.join("huge.f32"), b"").unwrap();
        std::fs::write(dir.join("ok.f32"), [0u8; 8]).unwrap();
        let manifest = r#"[{"file": "huge.f32", "dims": [4611686018427387904], "dtype": "f32"},
                           {"file": "ok.f32", "dims": [2], "dtype": "f32"}]"#;
        std::fs::write(dir.join("stats.json"), manifest).unwrap();
        let entries = scan(root.path()).unwrap();
        let names: Vec<String> = entries.iter().map(ArrayEntry::name).collect();
        assert_eq!(names, ["set/ok.f32"]);

        let huge = ArrayEntry {
            path: dir.join("huge.f32"),
            dims: vec![1usize << 62],
            ..entries[0].clone()
        };
        let err = huge.load().unwrap_err();
        assert!(matches!(err, CorpusError::TooLarge { .. }), "{err}");
        assert_eq!(entries[0].load().unwrap().view().len(), 2);
    }
}
