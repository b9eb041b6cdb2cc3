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

use super::{
    check_lossy_input, check_rank, check_resolvable, check_shape, check_transformable,
    library_error, Codec, CodecError,
};
use crate::samples::{element_count, fit_rank, gcd, Layout, SampleBuf, Samples};
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

/// The longest axis zfp 1.0's header holds, by rank (1–4): its dims share 48 bits (a 1-D
/// chunk of HDF5's at most 4 GiB always fits).
const MAX_AXIS: [usize; MAX_RANK] = [usize::MAX, 1 << 24, 1 << 16, 1 << 12];

/// The field zfp codes a chunk of `shape` as: squeezed and folded to at most 4 dims
/// ([`fit_rank`]), then, while an axis is longer than the header holds at that rank
/// (`[2, 3, 70000]`: 3-D axes stop at 65536), the two slowest merged again; zfp refused
/// such chunks ("zfp_write_header failed"). Shapes within the limits fold as before, so
/// every chunk written earlier decodes the same.
fn zfp_dims(shape: &[usize]) -> Vec<usize> {
    let mut dims = fit_rank(shape, MAX_RANK);
    while dims.len() > 1 && dims.iter().any(|&n| n > MAX_AXIS[dims.len() - 1]) {
        let merged = dims[0] * dims[1];
        dims.splice(0..2, [merged]);
    }
    dims
}

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
        let blocks: usize = zfp_dims(shape).iter().map(|d| d.div_ceil(4)).product();
        blocks.div_ceil(8)
    }

    fn encode(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
    ) -> Result<Vec<u8>, CodecError> {
        // zfp sees the folded dims; the chunk header keeps these. The shape is checked
        // before it is folded, whose products would wrap on a shape no buffer holds.
        check_shape(data.len(), shape)?;
        check_rank(shape)?;
        compress(data, &zfp_dims(shape), bound).map(|(payload, _)| payload)
    }

    fn decode(
        &self,
        payload: &[u8],
        layout: &Layout,
        _bound: f64,
    ) -> Result<SampleBuf, CodecError> {
        decompress(payload, layout.dtype, &zfp_dims(&layout.shape))
    }
}

/// Decodes a payload of zfp's field `dims` (C order, at most 4, taken as they are).
fn decompress(payload: &[u8], dtype: DType, dims: &[usize]) -> Result<SampleBuf, CodecError> {
    let count = element_count(dims).ok_or_else(|| library_error(NAME, "shape overflows"))?;
    let mut out = match dtype {
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
    let field = Field::new(ptr, kind, dims)?;
    let mut stream = Stream::open()?;
    // What a stream this codec wrote for the field may hold, whatever its tolerance.
    let written_most = stream.set_accuracy(&field, 1.0);
    // The header alone first, from words that hold the longest header zfp reads.
    let header_words = (ffi::ZFP_HEADER_MAX_BITS as usize).div_ceil(64);
    let head = &payload[..payload.len().min(header_words * 8)];
    let mut words = words_of(head, header_words);
    let most = {
        let _bits = stream.attach(&mut words)?;
        read_header(&stream, &field, kind)?;
        // SAFETY: both handles are live; the header has set the stream's mode.
        unsafe { ffi::zfp_stream_maximum_size(stream.0.as_ptr(), field.0.as_ptr()) }
    };
    // The words below are allocated at the size the header's mode and dims allow: more
    // than fixed-accuracy mode allows for this chunk's field (a crafted header's least
    // bits per block, or a field of the same count whose blocks are mostly padding) is no
    // payload this codec wrote, and would have this decode allocate up to a kilobyte a
    // value, aborting where that much cannot be had.
    if most == 0 || most > written_most {
        return Err(library_error(
            NAME,
            "zfp header's mode or field may hold more than this chunk's stream",
        ));
    }
    // zfp's decoder trusts the stream to hold what its mode may store and reads past
    // the end of a shorter one (a payload cut short, with a checksum made to match):
    // the words are padded with zeros to that size. Zeroed pages past the payload are
    // never touched unless zfp reads them.
    if most.div_ceil(8) + 1 > words.len() {
        words = words_of(payload, most.div_ceil(8) + 1);
    }
    let _bits = stream.attach(&mut words)?;
    read_header(&stream, &field, kind)?;
    // SAFETY: handles are live; the header matched the expected field, so zfp writes
    // within `out`, and reads within `words`.
    if unsafe { ffi::zfp_decompress(stream.0.as_ptr(), field.0.as_ptr()) } == 0 {
        return Err(library_error(NAME, "zfp_decompress failed"));
    }
    Ok(out)
}

/// `payload` copied into at least `least` zeroed 64-bit words: zfp reads whole aligned
/// words, one past the last byte of a stream.
fn words_of(payload: &[u8], least: usize) -> Vec<u64> {
    let mut words = vec![0u64; least.max(payload.len().div_ceil(8) + 1)];
    bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..payload.len()].copy_from_slice(payload);
    words
}

/// Reads zfp's header at the start of the stream into `field`, and checks that it
/// describes the field the chunk's header declares (`field` as made, of type `kind`):
/// its dims, not only its value count (a header of the chunk's dims transposed decoded
/// its values shuffled).
fn read_header(stream: &Stream, field: &Field, kind: ffi::zfp_type) -> Result<(), CodecError> {
    // Value count and dims, unused dims 0.
    let dims_of = |field: &Field| {
        let mut dims = [0usize; 4];
        // SAFETY: the handle is live; zfp writes at most 4 dims.
        let count = unsafe { ffi::zfp_field_size(field.0.as_ptr(), dims.as_mut_ptr()) };
        (count, dims)
    };
    // SAFETY: handles are live; the stream's words hold the longest header.
    unsafe {
        let expected = (dims_of(field), kind);
        let header_bits =
            ffi::zfp_read_header(stream.0.as_ptr(), field.0.as_ptr(), ffi::ZFP_HEADER_FULL);
        if header_bits == 0 {
            return Err(library_error(NAME, "payload has no valid zfp header"));
        }
        let found = (dims_of(field), (*field.0.as_ptr()).type_);
        if found != expected {
            return Err(library_error(
                NAME,
                "zfp header does not match chunk header",
            ));
        }
    }
    Ok(())
}

/// Compresses checked input to `bound`: the payload and the bits of its zfp header.
///
/// `dims` are zfp's field (C order, at most 4), taken as they are: a sample of blocks
/// keeps an axis of one value that folding would drop ([`Zfp::estimate`]).
fn compress(data: Samples<'_>, dims: &[usize], bound: f64) -> Result<(Vec<u8>, u64), CodecError> {
    let max_abs = check_transformable(NAME, check_lossy_input(NAME, &data, dims, bound)?)?;
    let (finest, largest) = match data {
        Samples::F32(_) => (FINEST_RELATIVE_BOUND.0, 2f64.powi(127)),
        _ => (FINEST_RELATIVE_BOUND.1, 2f64.powi(1023)),
    };
    // A block whose largest value is at or above `largest` is coded at the exponent past
    // it, and its integers, scaled back, overflow to ±Inf for any error upwards.
    if max_abs >= largest {
        return Err(CodecError::TooLarge {
            codec: NAME,
            max_abs,
        });
    }
    check_resolvable(NAME, bound, max_abs, finest)?;
    // zfp only reads through the pointer when compressing.
    let (ptr, kind) = match data {
        Samples::F32(v) => (v.as_ptr() as *mut c_void, ffi::zfp_type_zfp_type_float),
        Samples::F64(v) => (v.as_ptr() as *mut c_void, ffi::zfp_type_zfp_type_double),
        Samples::Opaque { .. } => unreachable!("rejected by check_lossy_input"),
    };
    let field = Field::new(ptr, kind, dims)?;
    let mut stream = Stream::open()?;
    let capacity = stream.set_accuracy(&field, bound);
    // zfp writes whole 64-bit words, so the buffer is allocated as u64s.
    let mut buffer = vec![0u64; capacity.div_ceil(8) + 1];
    let _bits = stream.attach(&mut buffer)?;
    // SAFETY: the stream writes into `buffer`, which outlives `_bits`.
    let (header, written) = unsafe {
        let header =
            ffi::zfp_write_header(stream.0.as_ptr(), field.0.as_ptr(), ffi::ZFP_HEADER_FULL);
        if header == 0 {
            return Err(library_error(NAME, "zfp_write_header failed"));
        }
        (
            header,
            ffi::zfp_compress(stream.0.as_ptr(), field.0.as_ptr()),
        )
    };
    if written == 0 {
        return Err(library_error(NAME, "zfp_compress failed"));
    }
    let bytes: &[u8] = bytemuck::cast_slice(&buffer);
    Ok((bytes[..written].to_vec(), header as u64))
}

/// Blocks a [`Zfp::estimate`] compresses: about 1/8 of a 64³ chunk's 4096.
const SAMPLE_BLOCKS: usize = 512;

/// Blocks of a kind (see [`Stratum`]) a sample takes whole when there are no more.
const WHOLE_STRATUM: usize = 64;

/// What zfp would store for a whole chunk at one bound, estimated from a sample of its
/// blocks ([`Zfp::estimate`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockEstimate {
    /// Payload bytes, zfp's header included.
    pub bytes: f64,
    /// Mean squared error over the chunk's values.
    pub mse: f64,
}

impl Zfp {
    /// zfp's payload size and MSE for the whole chunk at `bound`, estimated from about
    /// 512 of its 4^d blocks. In fixed-accuracy mode zfp codes each block on
    /// its own (its precision follows from the block's largest exponent and the bound
    /// alone), and a block laid beside others of its extent in a smaller array is coded
    /// as in the chunk, partial blocks padded alike: each stratum of blocks of one
    /// extent is sampled apart and scaled to its count, so edge blocks, which may hold
    /// other data (a 6 × 7999 table whose last two rows are small), count as what they
    /// are. None when the chunk has under twice that many blocks: compressing it is then
    /// cheap anyway.
    pub fn estimate(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
    ) -> Result<Option<BlockEstimate>, CodecError> {
        let dims = zfp_dims(shape);
        let blocks: usize = dims.iter().map(|n| n.div_ceil(4)).product();
        if blocks < 2 * SAMPLE_BLOCKS || data.len() != dims.iter().product::<usize>() {
            return Ok(None);
        }
        let (mut bits, mut squared_error, mut header) = (0.0, 0.0, 0.0);
        for stratum in Stratum::all(&dims) {
            let wanted = (SAMPLE_BLOCKS * stratum.count).div_ceil(blocks);
            let picks = stratum.picks(wanted.max(WHOLE_STRATUM));
            let (sample_dims, values) = match data {
                Samples::F32(v) => {
                    let (d, s) = stratum.gather(&dims, &picks, v);
                    (d, SampleBuf::F32(s))
                }
                Samples::F64(v) => {
                    let (d, s) = stratum.gather(&dims, &picks, v);
                    (d, SampleBuf::F64(s))
                }
                Samples::Opaque { .. } => {
                    return Err(CodecError::UnsupportedType {
                        codec: NAME,
                        dtype: DType::Opaque,
                    })
                }
            };
            let sample = values.view();
            let (payload, header_bits) = compress(sample, &sample_dims, bound)?;
            let back = decompress(
                &payload,
                Layout::of(&sample, &sample_dims).dtype,
                &sample_dims,
            )?;
            let Some(errors) = crate::metrics::error_stats_of(sample, back.view()) else {
                return Ok(None);
            };
            let scale = stratum.count as f64 / picks.len() as f64;
            header = header_bits as f64;
            bits += ((8 * payload.len()) as f64 - header) * scale;
            squared_error += errors.mse * sample.len() as f64 * scale;
        }
        Ok(Some(BlockEstimate {
            bytes: (header + bits) / 8.0,
            mse: squared_error / data.len() as f64,
        }))
    }
}

/// The blocks of one extent in a chunk: along each axis either its whole blocks (4 values
/// each) or its partial last block (the 1–3 values left over, the whole axis when it is
/// shorter than 4).
struct Stratum {
    /// Per axis: first value, extent of a block, number of blocks.
    axes: Vec<(usize, usize, usize)>,
    /// Blocks in the stratum.
    count: usize,
}

impl Stratum {
    /// Every non-empty stratum of a chunk of `dims`.
    fn all(dims: &[usize]) -> Vec<Stratum> {
        (0..1usize << dims.len())
            .map(|partial| {
                let axes: Vec<(usize, usize, usize)> = dims
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| match partial >> i & 1 {
                        0 => (0, 4, n / 4),
                        _ => (n / 4 * 4, n % 4, usize::from(n % 4 > 0)),
                    })
                    .collect();
                let count = axes.iter().map(|a| a.2).product();
                Stratum { axes, count }
            })
            .filter(|s| s.count > 0)
            .collect()
    }

    /// `wanted` of its blocks (all when it has no more), spread over it: every k-th block
    /// in C order would sample the same few columns of a grid whose rows k divides (a 64³
    /// chunk's blocks at k = 8: the outermost columns only), so the picks step by a
    /// coprime near 0.618 of the count.
    fn picks(&self, wanted: usize) -> Vec<usize> {
        if wanted >= self.count {
            return (0..self.count).collect();
        }
        let mut step = (0.618 * self.count as f64) as usize | 1;
        while gcd(step, self.count) != 1 {
            step += 2;
        }
        let mut picks: Vec<usize> = (0..wanted).map(|i| i * step % self.count).collect();
        picks.sort_unstable();
        picks
    }

    /// The dims and values of an array holding the blocks `picks` (C-order indices over
    /// the stratum's blocks) of `values` (a chunk of `dims`) side by side along the first
    /// axis whose blocks are whole, each block as in the chunk.
    fn gather<T: Copy>(
        &self,
        dims: &[usize],
        picks: &[usize],
        values: &[T],
    ) -> (Vec<usize>, Vec<T>) {
        let rank = dims.len();
        let strides: Vec<usize> = (0..rank).map(|i| dims[i + 1..].iter().product()).collect();
        let origins: Vec<usize> = picks
            .iter()
            .map(|&pick| {
                let mut rest = pick;
                let mut origin = 0;
                for i in (0..rank).rev() {
                    let (first, extent, count) = self.axes[i];
                    origin += (first + extent * (rest % count)) * strides[i];
                    rest /= count;
                }
                origin
            })
            .collect();
        let mut sample_dims: Vec<usize> = self.axes.iter().map(|a| a.1).collect();
        // With one block there is nothing to lay beside it.
        let along = self
            .axes
            .iter()
            .position(|a| a.1 == 4 && a.2 > 1)
            .unwrap_or(0);
        sample_dims[along] *= picks.len();
        let count: usize = sample_dims.iter().product();
        let mut index = vec![0; rank];
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let block = index[along] / self.axes[along].1;
            let at: usize = (0..rank)
                .map(|i| match i == along {
                    true => index[i] % self.axes[i].1,
                    false => index[i],
                } * strides[i])
                .sum();
            out.push(values[origins[block] + at]);
            // The next index in C order.
            for i in (0..rank).rev() {
                index[i] += 1;
                if index[i] < sample_dims[i] {
                    break;
                }
                index[i] = 0;
            }
        }
        (sample_dims, out)
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

    /// Puts the stream in fixed-accuracy mode at `tolerance`, the one mode this codec
    /// writes, and returns the most bytes a stream of `field` may then hold (the same for
    /// every tolerance: the mode keeps zfp's full precision and bit budget per block).
    fn set_accuracy(&mut self, field: &Field, tolerance: f64) -> usize {
        // SAFETY: both handles are live; setting a mode and sizing a field need no bit
        // stream attached.
        unsafe {
            ffi::zfp_stream_set_accuracy(self.0.as_ptr(), tolerance);
            ffi::zfp_stream_maximum_size(self.0.as_ptr(), field.0.as_ptr())
        }
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

    /// The estimate at `bound` over what zfp stores for the whole chunk: its size ratio and
    /// its MSE ratio.
    fn estimate_vs_chunk(data: Samples<'_>, shape: &[usize], bound: f64) -> (f64, f64) {
        let estimate = Zfp.estimate(data, shape, bound).unwrap().unwrap();
        let payload = Zfp.encode(data, shape, bound).unwrap();
        let back = Zfp
            .decode(&payload, &Layout::of(&data, shape), bound)
            .unwrap();
        let mse = crate::metrics::error_stats_of(data, back.view())
            .unwrap()
            .mse;
        (estimate.bytes / payload.len() as f64, estimate.mse / mse)
    }

    #[test]
    fn values_whose_blocks_decode_past_the_largest_float_are_refused() {
        // At or above 2^127 (f32) or 2^1023 (f64) zfp codes a block at the exponent past
        // the type's range, and an error upwards decodes to +Inf; just under it, finite.
        let shape = [16, 16];
        let wave = |top: f64| -> Vec<f64> {
            (0..256)
                .map(|i| top * (0.9 + 0.1 * (i as f64 * 0.1).sin()))
                .collect()
        };
        let refused = |data: Samples<'_>, top: f64| {
            matches!(
                Zfp.encode(data, &shape, top * 1e-2),
                Err(CodecError::TooLarge { .. })
            )
        };
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let top = f64::from(f32::MAX);
        assert!(refused(Samples::F32(&f32s(wave(top))), top));
        assert!(refused(Samples::F64(&wave(f64::MAX)), f64::MAX));
        // A shape whose product wraps is refused before it is folded.
        let odd = [(1usize << 62) + 1, 4, 2, 2, 2];
        let few = [0.5f32; 32];
        assert!(matches!(
            Zfp.encode(Samples::F32(&few), &odd, 0.1),
            Err(CodecError::ShapeMismatch { .. })
        ));
        for (data, top) in [
            (
                SampleBuf::F32(f32s(wave(2f64.powi(127) * 0.99))),
                2f64.powi(127),
            ),
            (
                SampleBuf::F64(wave(2f64.powi(1023) * 0.99)),
                2f64.powi(1023),
            ),
        ] {
            let data = data.view();
            let payload = Zfp.encode(data, &shape, top * 1e-2).unwrap();
            let back = Zfp
                .decode(&payload, &Layout::of(&data, &shape), top * 1e-2)
                .unwrap();
            let view = back.view();
            assert!((0..256).all(|i| view.value(i).unwrap().is_finite()));
        }
    }

    #[test]
    fn axes_longer_than_zfps_header_holds_fold_into_fewer_dims() {
        assert_eq!(zfp_dims(&[2, 3, 70000]), [6, 70000]);
        assert_eq!(zfp_dims(&[2, 2, 2, 4100]), [4, 2, 4100]);
        assert_eq!(zfp_dims(&[5000, 2, 2, 2]), [10000, 2, 2]);
        assert_eq!(zfp_dims(&[4, 64, 64, 64]), [4, 64, 64, 64]);
        for shape in [&[2, 3, 70000][..], &[1, 2, 2, 2, 4100], &[5000, 1, 2, 2, 2]] {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &[n], 3)
                .into_iter()
                .map(|x| x as f32)
                .collect();
            let data = Samples::F32(&values);
            let bound = 1e-3;
            let payload = Zfp.encode(data, shape, bound).unwrap();
            let back = Zfp
                .decode(&payload, &Layout::of(&data, shape), bound)
                .unwrap();
            let SampleBuf::F32(back) = back else {
                panic!("f32 in, f32 out")
            };
            let worst = values
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(f64::from(worst) <= bound, "{shape:?}: {worst}");
        }
    }

    #[test]
    fn a_header_of_other_dims_with_the_chunk_s_count_is_refused() {
        let values: Vec<f32> = generate(Kind::Spectral { slope: 2.0 }, &[64, 32], 5)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let data = Samples::F32(&values);
        let layout = Layout::of(&data, &[64, 32]);
        let own = Zfp.encode(data, &[64, 32], 1e-3).unwrap();
        assert!(Zfp.decode(&own, &layout, 1e-3).is_ok());
        // The same values coded as 32 × 64, or as a series: the count matches, the dims
        // do not.
        for shape in [&[32, 64][..], &[2048]] {
            let other = Zfp.encode(data, shape, 1e-3).unwrap();
            assert!(Zfp.decode(&other, &layout, 1e-3).is_err(), "{shape:?}");
        }
    }

    #[test]
    fn a_payload_cut_short_is_read_within_the_words_zfp_may_read() {
        // zfp's decoder reads as far as the header's mode lets it: from a payload cut to a
        // tenth, about 2 MB past the end, far past the mapped pages without the padding.
        let shape = [64, 64, 64];
        let values = generate(Kind::Noise, &shape, 7);
        let data = Samples::F64(&values);
        let layout = Layout::of(&data, &shape);
        let payload = Zfp.encode(data, &shape, 1e-12).unwrap();
        assert!(payload.len() > 1 << 20, "{}", payload.len());
        let whole = Zfp.decode(&payload, &layout, 1e-12).unwrap();
        let cut = Zfp
            .decode(&payload[..payload.len() / 10], &layout, 1e-12)
            .unwrap();
        // The blocks the cut payload still holds decode as they did.
        let (SampleBuf::F64(whole), SampleBuf::F64(cut)) = (whole, cut) else {
            panic!("f64 in, f64 out");
        };
        assert_eq!(whole[..4], cut[..4]);
        // Less than a header is read within words that hold the longest header.
        for len in [0, 1] {
            assert!(
                Zfp.decode(&payload[..len], &layout, 1e-12).is_err(),
                "{len}"
            );
        }
        for len in [8, 16, 24] {
            // A refusal or every value back, never a panic or a short buffer.
            match Zfp.decode(&payload[..len], &layout, 1e-12) {
                Err(_) => {}
                Ok(SampleBuf::F64(cut)) => assert_eq!(cut.len(), values.len()),
                Ok(other) => panic!("{len}: decoded as another type: {other:?}"),
            }
        }
    }

    #[test]
    fn headers_letting_a_stream_hold_more_than_the_chunks_are_refused() {
        let shape = [16, 16, 16];
        let values: Vec<f32> = generate(Kind::Spectral { slope: 2.0 }, &shape, 3)
            .iter()
            .map(|&x| x as f32)
            .collect();
        let data = Samples::F32(&values);
        let layout = Layout::of(&data, &shape);
        let bound = 1e-3;
        let payload = Zfp.encode(data, &shape, bound).unwrap();
        assert!(Zfp.decode(&payload, &layout, bound).is_ok());
        // The same values as a 4-D field whose blocks hold 4 values and 252 of padding.
        let (padded, _) = compress(data, &[1, 1, 1, 4096], bound).unwrap();
        assert!(Zfp.decode(&padded, &layout, bound).is_err());
        // A mode whose every block takes the most bits zfp codes a block in.
        let kind = ffi::zfp_type_zfp_type_float;
        let field = Field::new(values.as_ptr() as *mut c_void, kind, &shape).unwrap();
        let mut stream = Stream::open().unwrap();
        let mut words = vec![0u64; 1 << 16];
        let bits = stream.attach(&mut words).unwrap();
        // SAFETY: live handles; the stream writes 64 blocks of 16658 bits within `words`.
        let written = unsafe {
            let (most, prec) = (ffi::ZFP_MAX_BITS as _, ffi::ZFP_MAX_PREC as _);
            let set = ffi::zfp_stream_set_params(stream.0.as_ptr(), most, most, prec, -1074);
            assert_ne!(set, 0);
            ffi::zfp_write_header(stream.0.as_ptr(), field.0.as_ptr(), ffi::ZFP_HEADER_FULL);
            ffi::zfp_compress(stream.0.as_ptr(), field.0.as_ptr())
        };
        drop(bits);
        let wide = &bytemuck::cast_slice::<u64, u8>(&words)[..written];
        assert!(wide.len() > 64 * 2000, "{}", wide.len());
        assert!(Zfp.decode(wide, &layout, bound).is_err());
    }

    #[test]
    fn a_sample_of_blocks_estimates_the_chunk() {
        let shape = [64, 64, 64];
        let v: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 7)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let data = Samples::F32(&v);
        let range = crate::select::value_range(data);
        for db in [40.0, 60.0, 80.0] {
            let (size, mse) = estimate_vs_chunk(data, &shape, range * 10f64.powf(-db / 20.0));
            assert!((0.9..1.1).contains(&size), "{db} dB: size {size}");
            // Within 0.3 dB.
            assert!(10.0 * mse.log10().abs() < 0.3, "{db} dB: MSE {mse}");
        }
        // A chunk of one block repeated: every sample is the chunk, exactly but for the
        // sample stream's last word (scaled by 4096 / 512 blocks: 64 bytes of 57 kB).
        let block: Vec<f32> = (0..64).map(|i| ((i * 37) % 11) as f32 * 0.1).collect();
        let tiled: Vec<f32> = (0..64usize.pow(3))
            .map(|i| block[(i / 4096 % 4) * 16 + (i / 64 % 4) * 4 + i % 4])
            .collect();
        let (size, mse) = estimate_vs_chunk(Samples::F32(&tiled), &shape, 1e-3);
        assert!((size - 1.0).abs() < 2e-3, "size {size}");
        assert!((mse - 1.0).abs() < 1e-6, "MSE {mse}");
        // Edge blocks unlike the rest (a table whose last two of six rows are a thousand
        // times smaller) and an axis of three values are estimated as they are.
        let rows = generate(Kind::Spectral { slope: 3.0 }, &[6, 4001], 3);
        let table: Vec<f64> = rows
            .iter()
            .enumerate()
            .map(|(i, &x)| if i >= 4 * 4001 { 1e-3 * x } else { x })
            .collect();
        let planes: Vec<f64> = generate(Kind::Spectral { slope: 2.0 }, &[3, 256, 256], 3);
        for (values, shape) in [(&table, vec![6, 4001]), (&planes, vec![3, 256, 256])] {
            let (size, mse) = estimate_vs_chunk(Samples::F64(values), &shape, 1e-5);
            assert!((0.95..1.05).contains(&size), "{shape:?}: size {size}");
            assert!(mse.log10().abs() < 0.02, "{shape:?}: MSE {mse}");
        }
        // Under 1024 blocks: no estimate.
        let small = Samples::F32(&tiled[..32 * 32 * 32]);
        assert_eq!(Zfp.estimate(small, &[32, 32, 32], 1e-3).unwrap(), None);
    }

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
