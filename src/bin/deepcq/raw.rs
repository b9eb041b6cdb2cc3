//! Raw little-endian array files: the CLI's interchange format with numpy and friends.

use std::path::Path;

use anyhow::{Context, Result};
use h5z_deepcq::samples::{element_count, SampleBuf};
use h5z_deepcq::wire::DType;

/// Element type of a raw file.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RawType {
    /// 4-byte IEEE floats.
    F32,
    /// 8-byte IEEE floats.
    F64,
}

impl RawType {
    pub fn dtype(self) -> DType {
        match self {
            RawType::F32 => DType::F32,
            RawType::F64 => DType::F64,
        }
    }
    pub fn size(self) -> usize {
        match self {
            RawType::F32 => 4,
            RawType::F64 => 8,
        }
    }
}

/// Dims given on the command line, slowest first.
#[derive(Clone, Debug)]
pub struct Dims(pub Vec<usize>);

/// Parses `64x64x64` (also accepts `,` as separator).
pub fn parse_dims(text: &str) -> Result<Dims, String> {
    let dims: Result<Vec<usize>, _> = text
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<usize>())
        .collect();
    match dims {
        Ok(d) if !d.is_empty() && d.iter().all(|&v| v > 0) => Ok(Dims(d)),
        _ => Err(format!(
            "bad dims '{text}': expected positive integers like 64x64x64"
        )),
    }
}

/// Reads a raw file and checks that its size matches `dims`.
pub fn read(path: &Path, dtype: RawType, dims: &[usize]) -> Result<SampleBuf> {
    let expected = expected_len(dtype, dims)?;
    // The length first: a file of another size is refused before it is read whole.
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("{} is a folder, not a raw file", path.display());
    }
    let held = meta.len();
    let wrong_size = |held: u64| {
        anyhow::anyhow!(
            "{} holds {held} bytes, but {dims:?} {dtype:?} needs {expected}",
            path.display()
        )
    };
    if held != expected as u64 {
        return Err(wrong_size(held));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() != expected {
        return Err(wrong_size(bytes.len() as u64));
    }
    SampleBuf::from_bytes(dtype.dtype(), &bytes).context("file is not whole elements")
}

/// Bytes a raw file of `dims` values of `dtype` holds.
pub fn expected_len(dtype: RawType, dims: &[usize]) -> Result<usize> {
    element_count(dims)
        .and_then(|n| n.checked_mul(dtype.size()))
        .context("dims overflow")
}

/// Writes values as a raw little-endian file.
pub fn write(path: &Path, values: SampleBuf) -> Result<()> {
    std::fs::write(path, values.into_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
