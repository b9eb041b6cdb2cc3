//! What the filter does to one chunk's bytes, free of any HDF5 or C types so it can be
//! tested directly. [`super::plugin`] is the only caller from C.

use crate::chunk::{self, ChunkError, Quality};
use crate::encode;
use crate::learned;
use crate::samples::{SampleBuf, Samples};
use crate::select::{self, Analytic, Outcome, SelectError};
use crate::settings::{SettingsError, StoredSettings};
use crate::wire::DType;

/// Why a chunk could not be filtered. Mapped to a failed callback (0 bytes) plus a message
/// on the HDF5 error stack at the C boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// cd_values are malformed.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Reading or writing the chunk format failed.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// No payload could be chosen.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The decoded chunk is not the size HDF5 expects.
    #[error("decoded chunk holds {got} bytes, HDF5 expects {expected}")]
    SizeMismatch {
        /// Bytes decoded.
        got: usize,
        /// Bytes expected from the chunk dims.
        expected: usize,
    },
}

/// Compresses one chunk buffer under the stored settings; returns the chunk bytes and what
/// the chooser did (for logs and traces).
pub fn encode_chunk(
    stored: &StoredSettings,
    bytes: &[u8],
) -> Result<(Vec<u8>, Outcome), FilterError> {
    let count: usize = stored.chunk.iter().product();
    let typed = match stored.dtype {
        DType::F32 | DType::F64 if count * stored.elem_size == bytes.len() => {
            SampleBuf::from_bytes(stored.dtype, bytes)
        }
        _ => None,
    };
    let Some(values) = typed else {
        // Not a float chunk of the expected size: keep every byte.
        let elem_size = match stored.elem_size {
            n if n > 0 && bytes.len() % n == 0 => n,
            _ => 1,
        };
        let data = Samples::Opaque { bytes, elem_size };
        let shape = [bytes.len() / elem_size];
        let outcome = select::compress_to_target(data, &shape, &stored.settings, &Analytic)?;
        let quality = Quality::new(&stored.settings, outcome.predicted, outcome.measured);
        let out = chunk::wrap(
            outcome.codec,
            &data,
            &shape,
            0.0,
            None,
            Some(quality),
            &outcome.payload,
        );
        return Ok((out, outcome));
    };
    let (shape, settings) = (&stored.chunk, &stored.settings);
    let proposer = learned::proposer_for(settings)?;
    let encode = |proposer: &dyn select::Proposer| match &values {
        SampleBuf::F32(v) => encode::float_chunk(v, shape, settings, proposer),
        SampleBuf::F64(v) => encode::float_chunk(v, shape, settings, proposer),
        SampleBuf::Opaque(_) => unreachable!("from_bytes of a float dtype"),
    };
    // The chunks of one dataset (the same stored cd_values) share what the measured modes
    // learn from each other ([`crate::memory`]).
    let Some(memory) = crate::memory::for_dataset(&stored.to_cd(), settings) else {
        return Ok(encode(proposer)?);
    };
    let remembering = memory.proposer(proposer);
    let (bytes, outcome) = encode(&remembering)?;
    remembering.learn(&outcome, settings);
    Ok((bytes, outcome))
}

/// Decodes one stored chunk back into the bytes HDF5 wrote. Needs no settings, no model.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<u8>, FilterError> {
    let (header, values) = chunk::decode(bytes)?;
    let out = values.into_bytes();
    if out.len() as u64 != header.original_len {
        return Err(FilterError::SizeMismatch {
            got: out.len(),
            expected: header.original_len as usize,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;
    use crate::settings::Settings;
    use crate::synth::{generate, Kind};

    fn stored(dtype: DType, elem_size: usize, chunk: &[usize], target: f64) -> StoredSettings {
        StoredSettings {
            settings: Settings::psnr(target).unwrap(),
            dtype,
            elem_size,
            chunk: chunk.to_vec(),
        }
    }

    #[test]
    fn edge_chunk_meets_the_target_on_its_data_and_keeps_the_padding() {
        let (rows, cols, valid) = (40, 64, (25, 37));
        let field = generate(Kind::Spectral { slope: 3.0 }, &[valid.0, valid.1], 3);
        let mut chunk = vec![0f32; rows * cols];
        for r in 0..valid.0 {
            for c in 0..valid.1 {
                chunk[r * cols + c] = field[r * valid.1 + c] as f32 + 100.0;
            }
        }
        let bytes: Vec<u8> = bytemuck::cast_slice(&chunk).to_vec();
        let (stored_bytes, outcome) =
            encode_chunk(&stored(DType::F32, 4, &[rows, cols], 70.0), &bytes).unwrap();
        assert!(
            stored_bytes.len() < bytes.len() / 2,
            "{}",
            stored_bytes.len()
        );
        let back = match SampleBuf::from_bytes(DType::F32, &decode_chunk(&stored_bytes).unwrap()) {
            Some(SampleBuf::F32(v)) => v,
            other => panic!("not f32: {other:?}"),
        };
        let mut inside = (Vec::new(), Vec::new());
        for r in 0..rows {
            for c in 0..cols {
                let i = r * cols + c;
                if r < valid.0 && c < valid.1 {
                    inside.0.push(chunk[i]);
                    inside.1.push(back[i]);
                } else {
                    assert_eq!(back[i], 0.0, "padding changed at {r},{c}");
                }
            }
        }
        let psnr = metrics::psnr(&inside.0, &inside.1);
        assert!(psnr >= 70.0, "{psnr} via {}", outcome.reason);
    }

    #[test]
    fn non_float_and_mismatched_chunks_come_back_exact() {
        let ints: Vec<u8> = (0..4000u32).flat_map(|i| (i * 7).to_le_bytes()).collect();
        let (out, _) = encode_chunk(&stored(DType::Opaque, 4, &[1000], 60.0), &ints).unwrap();
        assert_eq!(decode_chunk(&out).unwrap(), ints);
        // Float settings but the wrong byte count: stored exactly rather than guessed at.
        let odd = vec![7u8; 1001];
        let (out, _) = encode_chunk(&stored(DType::F32, 4, &[250], 60.0), &odd).unwrap();
        assert_eq!(decode_chunk(&out).unwrap(), odd);
    }

    #[test]
    fn nan_chunks_are_exact_and_corrupt_chunks_are_errors() {
        let mut values: Vec<f64> = (0..256).map(|i| (i as f64).sin()).collect();
        values[17] = f64::NAN;
        values[99] = f64::INFINITY;
        let bytes: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
        let (out, _) = encode_chunk(&stored(DType::F64, 8, &[16, 16], 60.0), &bytes).unwrap();
        assert_eq!(decode_chunk(&out).unwrap(), bytes);
        let mut corrupt = out.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(decode_chunk(&corrupt).is_err());
        assert!(decode_chunk(&out[..out.len() / 2]).is_err());
        assert!(decode_chunk(&[]).is_err());
    }
}
