//! SZ3 (via the `sz3` crate, SZ3 3.3) in absolute-error mode.
//!
//! SZ3 takes ranks 1–4 and rejects size-1 dimensions after the first, so shapes are
//! squeezed and folded to at most 4 dims. Its errors land right at the bound
//! (about 0.9999976·eb), never above it.

use super::{check_lossy_input, library_error, Codec, CodecError};
use crate::samples::{fit_rank, Element, Layout, SampleBuf, Samples};
use crate::wire::{CodecId, DType};

const NAME: &str = "sz3";
/// Highest rank SZ3's C API dispatches on.
const MAX_RANK: usize = 4;

/// The bytes every SZ3 3.3.2 payload starts with: magic 0xF342F310 and data version
/// 3.3.2.0, little-endian.
const SZ3_FRAME: [u8; 8] = [0x10, 0xf3, 0x42, 0xf3, 0x00, 0x02, 0x03, 0x03];

/// SZ3 with an absolute error bound.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sz3;

impl Codec for Sz3 {
    fn id(&self) -> CodecId {
        CodecId::Sz3
    }

    fn encode(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
    ) -> Result<Vec<u8>, CodecError> {
        check_lossy_input(NAME, &data, shape, bound)?;
        let dims = fit_rank(shape, MAX_RANK);
        match data {
            Samples::F32(values) => encode_typed(values, &dims, bound),
            Samples::F64(values) => encode_typed(values, &dims, bound),
            Samples::Opaque { .. } => unreachable!("rejected by check_lossy_input"),
        }
    }

    fn decode(
        &self,
        payload: &[u8],
        layout: &Layout,
        _bound: f64,
    ) -> Result<SampleBuf, CodecError> {
        let dims = fit_rank(&layout.shape, MAX_RANK);
        match layout.dtype {
            DType::F32 => decode_typed::<f32>(payload, &dims).map(SampleBuf::F32),
            DType::F64 => decode_typed::<f64>(payload, &dims).map(SampleBuf::F64),
            DType::Opaque => Err(CodecError::UnsupportedType {
                codec: NAME,
                dtype: DType::Opaque,
            }),
        }
    }

    /// SZ3 3.3's magic number and data version, 4 bytes each: the chunk's codec id already
    /// says both. (The compressed-data length after them depends on the length of the
    /// configuration SZ3 appends, so it stays.)
    fn frame(&self, layout: &Layout, _body_len: usize) -> Option<Vec<u8>> {
        (layout.dtype != DType::Opaque).then(|| SZ3_FRAME.to_vec())
    }
}

fn encode_typed<T: Element + sz3::SZ3Compressible>(
    values: &[T],
    dims: &[usize],
    bound: f64,
) -> Result<Vec<u8>, CodecError> {
    let mut builder = sz3::DimensionedData::build(&values);
    for &d in dims {
        builder = builder.dim(d).map_err(|e| library_error(NAME, e))?;
    }
    let view = builder.finish().map_err(|e| library_error(NAME, e))?;
    sz3::compress(&view, sz3::ErrorBound::Absolute(bound)).map_err(|e| library_error(NAME, e))
}

fn decode_typed<T: Element + sz3::SZ3Compressible + Default>(
    payload: &[u8],
    dims: &[usize],
) -> Result<Vec<T>, CodecError> {
    let count = crate::samples::element_count(dims)
        .ok_or_else(|| library_error(NAME, "shape overflows"))?;
    let mut out = vec![T::default(); count];
    let mut view = {
        let mut builder = sz3::DimensionedData::build_mut(&mut out);
        for &d in dims {
            builder = builder.dim(d).map_err(|e| library_error(NAME, e))?;
        }
        builder.finish().map_err(|e| library_error(NAME, e))?
    };
    sz3::decompress_into_dimensioned(payload, &mut view).map_err(|e| library_error(NAME, e))?;
    Ok(out)
}
