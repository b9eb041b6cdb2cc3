//! ZFP (via `zfp-sys`, zfp 1.0) in fixed-accuracy mode.
//!
//! ZFP takes ranks 1–4, so shapes are squeezed and folded to at most 4 dims. ZFP's `nx` is
//! the *fastest* dimension, the last of a C-order shape. The payload is a full zfp header
//! followed by the stream, so it also decodes with zfp's own tools. The raw zfp handles
//! live in RAII wrappers below; this file is one of the few FFI edges that may use
//! `unsafe`.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::NonNull;

use zfp_sys as ffi;

use super::{check_lossy_input, check_resolvable, library_error, Codec, CodecError};
use crate::samples::{element_count, fit_rank, Layout, SampleBuf, Samples};
use crate::wire::{CodecId, DType};

const NAME: &str = "zfp";
/// Highest rank zfp 1.0 supports.
const MAX_RANK: usize = 4;

/// The finest tolerance zfp keeps, as a fraction of the chunk's largest magnitude, for f32
/// and f64. zfp has no exact path: below half an ulp of the largest value its output,
/// rounded to the type, misses the tolerance (on a generated 3-D f32 field the largest
/// error was 0.24× a tolerance of 2^−22 of the largest magnitude, 0.96× at 2^−24, 3.8× at
/// 2^−26), where SZ3 stores such values exactly. Two bits above f32's precision (2^−24
/// for half an ulp) and f64's (2^−53).
const FINEST_RELATIVE_BOUND: (f64, f64) = (1.0 / (1u64 << 22) as f64, 1.0 / (1u64 << 51) as f64);

/// ZFP in fixed-accuracy mode; the tolerance is the absolute error bound.
#[derive(Clone, Copy, Debug, Default)]
pub struct Zfp;

impl Codec for Zfp {
    fn id(&self) -> CodecId {
        CodecId::Zfp
    }

    /// zfp's fixed-accuracy mode uses `minexp = floor(log2(tolerance))`, so its error moves
    /// in stairs of about 6 dB.
    fn alike_bounds(&self, bound: f64) -> Option<(f64, f64)> {
        if !(bound.is_normal() && bound > 0.0 && bound < f64::MAX / 2.0) {
            return None;
        }
        // A positive normal float's exponent field is floor(log2) + 1023; zero mantissa
        // bits make that power of two.
        let exponent = bound.to_bits() >> 52;
        Some((
            f64::from_bits(exponent << 52),
            f64::from_bits((exponent + 1) << 52),
        ))
    }

    /// zfp codes a chunk in blocks of 4 values per axis (partial blocks padded), and
    /// even a block that rounds to zero costs its one flag bit: at 40 dB SZ3 and SPERR
    /// often store a smooth chunk in fewer bytes than zfp has blocks to flag. (The
    /// payload's zfp header and word padding come on top; the floor leaves them out.)
    fn least_stored(&self, shape: &[usize]) -> usize {
        let blocks: usize = fit_rank(shape, MAX_RANK)
            .iter()
            .map(|d| d.div_ceil(4))
            .product();
        blocks.div_ceil(8)
    }

    fn encode(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
    ) -> Result<Vec<u8>, CodecError> {
        let max_abs = check_lossy_input(NAME, &data, shape, bound)?;
        let finest = match data {
            Samples::F32(_) => FINEST_RELATIVE_BOUND.0,
            _ => FINEST_RELATIVE_BOUND.1,
        };
        check_resolvable(NAME, bound, max_abs, finest)?;
        let dims = fit_rank(shape, MAX_RANK);
        // zfp only reads through the pointer when compressing.
        let (ptr, kind) = match data {
            Samples::F32(v) => (v.as_ptr() as *mut c_void, ffi::zfp_type_zfp_type_float),
            Samples::F64(v) => (v.as_ptr() as *mut c_void, ffi::zfp_type_zfp_type_double),
            Samples::Opaque { .. } => unreachable!("rejected by check_lossy_input"),
        };
        let field = Field::new(ptr, kind, &dims)?;
        let mut stream = Stream::open()?;
        // SAFETY: stream and field are live handles.
        let capacity = unsafe {
            ffi::zfp_stream_set_accuracy(stream.0.as_ptr(), bound);
            ffi::zfp_stream_maximum_size(stream.0.as_ptr(), field.0.as_ptr())
        };
        // zfp writes whole 64-bit words, so the buffer is allocated as u64s.
        let mut buffer = vec![0u64; capacity.div_ceil(8) + 1];
        let _bits = stream.attach(&mut buffer)?;
        // SAFETY: the stream writes into `buffer`, which outlives `_bits`.
        let written = unsafe {
            let header =
                ffi::zfp_write_header(stream.0.as_ptr(), field.0.as_ptr(), ffi::ZFP_HEADER_FULL);
            if header == 0 {
                return Err(library_error(NAME, "zfp_write_header failed"));
            }
            ffi::zfp_compress(stream.0.as_ptr(), field.0.as_ptr())
        };
        if written == 0 {
            return Err(library_error(NAME, "zfp_compress failed"));
        }
        let bytes: &[u8] = bytemuck::cast_slice(&buffer);
        Ok(bytes[..written].to_vec())
    }

    fn decode(
        &self,
        payload: &[u8],
        layout: &Layout,
        _bound: f64,
    ) -> Result<SampleBuf, CodecError> {
        let dims = fit_rank(&layout.shape, MAX_RANK);
        let count = element_count(&dims).ok_or_else(|| library_error(NAME, "shape overflows"))?;
        let mut out = match layout.dtype {
            DType::F32 => SampleBuf::F32(vec![0.0; count]),
            DType::F64 => SampleBuf::F64(vec![0.0; count]),
            DType::Opaque => {
                return Err(CodecError::UnsupportedType {
                    codec: NAME,
                    dtype: DType::Opaque,
                })
            }
        };
        let (ptr, kind) = match &mut out {
            SampleBuf::F32(v) => (v.as_mut_ptr() as *mut c_void, ffi::zfp_type_zfp_type_float),
            SampleBuf::F64(v) => (v.as_mut_ptr() as *mut c_void, ffi::zfp_type_zfp_type_double),
            SampleBuf::Opaque(_) => unreachable!(),
        };
        let field = Field::new(ptr, kind, &dims)?;
        // Copy into words: zfp reads whole aligned 64-bit words, and may read one past
        // the last byte of the stream.
        let mut words = vec![0u64; payload.len().div_ceil(8) + 1];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..payload.len()].copy_from_slice(payload);
        let mut stream = Stream::open()?;
        let _bits = stream.attach(&mut words)?;
        // SAFETY: handles are live; the header is checked against the expected field
        // before zfp writes through the pointer.
        unsafe {
            let expected = (
                ffi::zfp_field_size(field.0.as_ptr(), std::ptr::null_mut()),
                kind,
            );
            let header_bits =
                ffi::zfp_read_header(stream.0.as_ptr(), field.0.as_ptr(), ffi::ZFP_HEADER_FULL);
            if header_bits == 0 {
                return Err(library_error(NAME, "payload has no valid zfp header"));
            }
            let found = (
                ffi::zfp_field_size(field.0.as_ptr(), std::ptr::null_mut()),
                (*field.0.as_ptr()).type_,
            );
            if found != expected {
                return Err(library_error(
                    NAME,
                    "zfp header does not match chunk header",
                ));
            }
            if ffi::zfp_decompress(stream.0.as_ptr(), field.0.as_ptr()) == 0 {
                return Err(library_error(NAME, "zfp_decompress failed"));
            }
        }
        Ok(out)
    }
}

/// Owned `zfp_field`.
struct Field(NonNull<ffi::zfp_field>);

impl Field {
    /// Describes `dims` (C order, at most 4) of `kind` at `ptr`.
    fn new(ptr: *mut c_void, kind: ffi::zfp_type, dims: &[usize]) -> Result<Self, CodecError> {
        // SAFETY: these constructors only record the pointer and sizes.
        let raw = unsafe {
            match *dims {
                [nx] => ffi::zfp_field_1d(ptr, kind, nx),
                [ny, nx] => ffi::zfp_field_2d(ptr, kind, nx, ny),
                [nz, ny, nx] => ffi::zfp_field_3d(ptr, kind, nx, ny, nz),
                [nw, nz, ny, nx] => ffi::zfp_field_4d(ptr, kind, nx, ny, nz, nw),
                _ => std::ptr::null_mut(),
            }
        };
        NonNull::new(raw)
            .map(Field)
            .ok_or_else(|| library_error(NAME, format!("cannot describe shape {dims:?}")))
    }
}

impl Drop for Field {
    fn drop(&mut self) {
        // SAFETY: allocated by zfp_field_*d, freed once.
        unsafe { ffi::zfp_field_free(self.0.as_ptr()) }
    }
}

/// Owned `zfp_stream`.
struct Stream(NonNull<ffi::zfp_stream>);

/// Owned `bitstream` over a caller's word buffer; dropped before the buffer.
struct BitStream(NonNull<ffi::bitstream>);

impl Stream {
    fn open() -> Result<Self, CodecError> {
        // SAFETY: a null bitstream is allowed; one is attached later.
        NonNull::new(unsafe { ffi::zfp_stream_open(std::ptr::null_mut()) })
            .map(Stream)
            .ok_or_else(|| library_error(NAME, "zfp_stream_open failed"))
    }

    /// Points the stream at `words` and rewinds it.
    fn attach(&mut self, words: &mut [u64]) -> Result<BitStream, CodecError> {
        // SAFETY: the returned BitStream must not outlive `words`; callers keep it in a
        // local dropped before the buffer.
        let raw = unsafe { ffi::stream_open(words.as_mut_ptr() as *mut c_void, words.len() * 8) };
        let bits = NonNull::new(raw)
            .map(BitStream)
            .ok_or_else(|| library_error(NAME, "stream_open failed"))?;
        // SAFETY: both handles are live.
        unsafe {
            ffi::zfp_stream_set_bit_stream(self.0.as_ptr(), bits.0.as_ptr());
            ffi::zfp_stream_rewind(self.0.as_ptr());
        }
        Ok(bits)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: opened by zfp_stream_open, closed once; does not free the bitstream.
        unsafe { ffi::zfp_stream_close(self.0.as_ptr()) }
    }
}

impl Drop for BitStream {
    fn drop(&mut self) {
        // SAFETY: opened by stream_open, closed once; does not free the words.
        unsafe { ffi::stream_close(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, Kind};

    #[test]
    fn alike_bounds_are_the_stair_between_two_powers_of_two() {
        // Fixed-accuracy mode keeps only the power of two at or below the tolerance (zfp's
        // minexp), so its error moves in stairs of about 6 dB; crate::memory and
        // crate::select rely on it.
        let v: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &[24, 24, 24], 5)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let shape = [24, 24, 24];
        let encode = |bound: f64| Zfp.encode(Samples::F32(&v), &shape, bound).unwrap();
        for k in [-10, -4, 1] {
            let low = 2f64.powi(k);
            let high = 2.0 * low;
            let below_high = f64::from_bits(high.to_bits() - 1);
            let stair = encode(low);
            for b in [low, 1.3 * low, below_high] {
                assert_eq!(Zfp.alike_bounds(b), Some((low, high)), "{b}");
                assert_eq!(encode(b), stair, "{b}");
            }
            assert!(encode(high).len() < stair.len(), "2^{k}");
        }
    }
}
