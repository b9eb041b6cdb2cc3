//! What the filter does to one chunk's bytes, free of any HDF5 or C types so it can be
//! tested directly. [`super::plugin`] is the only caller from C.

use crate::chunk::{self, ChunkError};
use crate::padding;
use crate::samples::{Element, SampleBuf, Samples};
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
        let out = chunk::wrap(outcome.codec, &data, &shape, 0.0, None, &outcome.payload);
        return Ok((out, outcome));
    };
    let shape = &stored.chunk;
    match &values {
        SampleBuf::F32(v) => encode_typed(v, shape, stored),
        SampleBuf::F64(v) => encode_typed(v, shape, stored),
        SampleBuf::Opaque(_) => unreachable!("from_bytes of a float dtype"),
    }
}

fn encode_typed<T: bytemuck::Pod + Element>(
    values: &[T],
    shape: &[usize],
    stored: &StoredSettings,
) -> Result<(Vec<u8>, Outcome), FilterError> {
    let settings = &stored.settings;
    match padding::find(values, shape) {
        Some(pad) => {
            let inner = padding::extract(values, shape, &pad.inner);
            let outcome =
                select::compress_to_target(T::samples(&inner), &pad.inner, settings, &Analytic)?;
            let out = chunk::wrap(
                outcome.codec,
                &T::samples(&inner),
                shape,
                outcome.bound,
                Some(pad),
                &outcome.payload,
            );
            Ok((out, outcome))
        }
        None => {
            let data = T::samples(values);
            let outcome = select::compress_to_target(data, shape, settings, &Analytic)?;
            let out = chunk::wrap(
                outcome.codec,
                &data,
                shape,
                outcome.bound,
                None,
                &outcome.payload,
            );
            Ok((out, outcome))
        }
    }
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
