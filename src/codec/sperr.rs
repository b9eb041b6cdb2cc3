//! SPERR (via the `sperr` crate, SPERR 0.8) in point-wise-error mode.
//!
//! SPERR takes 2-D and 3-D arrays. Higher ranks fold their slowest axes together; 1-D
//! data becomes a single-row 2-D array. The whole chunk is one SPERR chunk, since HDF5
//! chunks are already the unit of work.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

use super::{check_lossy_input, library_error, Codec, CodecError};
use crate::samples::{fit_rank, Element, Layout, SampleBuf, Samples};
use crate::wire::{CodecId, DType};

const NAME: &str = "sperr";
/// SPERR 0.8 segfaults on fields holding fill values such as 1e35 (measured on
/// ../shared/data foam V.f32), so larger magnitudes are refused before reaching it.
const MAX_MAGNITUDE: f64 = 1e30;

/// SPERR with a point-wise (absolute) error bound.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sperr;

/// The 2-D or 3-D shape SPERR is given for a C-order shape.
fn sperr_dims(shape: &[usize]) -> Vec<usize> {
    let dims = fit_rank(shape, 3);
    match *dims {
        [n] => vec![1, n],
        _ => dims,
    }
}

impl Codec for Sperr {
    fn id(&self) -> CodecId {
        CodecId::Sperr
    }

    fn encode(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
    ) -> Result<Vec<u8>, CodecError> {
        check_lossy_input(NAME, &data, shape, bound)?;
        let dims = sperr_dims(shape);
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
        let dims = sperr_dims(&layout.shape);
        match layout.dtype {
            DType::F32 => decode_typed::<f32>(payload, &dims).map(SampleBuf::F32),
            DType::F64 => decode_typed::<f64>(payload, &dims).map(SampleBuf::F64),
            DType::Opaque => Err(CodecError::UnsupportedType {
                codec: NAME,
                dtype: DType::Opaque,
            }),
        }
    }
}

fn encode_typed<T: Element + sperr::Element>(
    values: &[T],
    dims: &[usize],
    bound: f64,
) -> Result<Vec<u8>, CodecError> {
    // SPERR bounds the error in double precision and then rounds to T, which can add half
    // an ulp of the largest value: measured 1.0005·eb on f32 fields. Leave room for it.
    let max_abs = values.iter().fold(0.0f64, |m, v| m.max(v.to_f64().abs()));
    if max_abs > MAX_MAGNITUDE {
        return Err(library_error(
            NAME,
            format!("values up to {max_abs:e} (fill values?) exceed what SPERR survives ({MAX_MAGNITUDE:e})"),
        ));
    }
    let ulp = if T::DTYPE == DType::F32 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    };
    let headroom = max_abs * ulp;
    let pwe = if bound > 2.0 * headroom {
        bound - headroom
    } else {
        bound * 0.5
    };
    let mode = sperr::CompressionMode::PointwiseError { pwe };
    let shape_error = |e: ndarray::ShapeError| library_error(NAME, e);
    match *dims {
        [ny, nx] => {
            let view = ArrayView2::from_shape((ny, nx), values).map_err(shape_error)?;
            sperr::compress_2d(view, mode)
        }
        [nz, ny, nx] => {
            let view = ArrayView3::from_shape((nz, ny, nx), values).map_err(shape_error)?;
            sperr::compress_3d(view, mode, (nz, ny, nx))
        }
        _ => return Err(library_error(NAME, format!("unsupported dims {dims:?}"))),
    }
    .map_err(|e| library_error(NAME, e))
}

fn decode_typed<T: Element + sperr::Element + Default>(
    payload: &[u8],
    dims: &[usize],
) -> Result<Vec<T>, CodecError> {
    let count = crate::samples::element_count(dims)
        .ok_or_else(|| library_error(NAME, "shape overflows"))?;
    let mut out = vec![T::default(); count];
    let shape_error = |e: ndarray::ShapeError| library_error(NAME, e);
    match *dims {
        [ny, nx] => {
            let view = ArrayViewMut2::from_shape((ny, nx), &mut out).map_err(shape_error)?;
            sperr::decompress_into_2d(payload, view)
        }
        [nz, ny, nx] => {
            let view = ArrayViewMut3::from_shape((nz, ny, nx), &mut out).map_err(shape_error)?;
            sperr::decompress_into_3d(payload, view)
        }
        _ => return Err(library_error(NAME, format!("unsupported dims {dims:?}"))),
    }
    .map_err(|e| library_error(NAME, e))?;
    Ok(out)
}
