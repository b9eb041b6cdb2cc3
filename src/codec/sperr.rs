//! SPERR (via the `sperr` crate, SPERR 0.8) in point-wise-error mode.
//!
//! SPERR takes 2-D and 3-D arrays. Higher ranks fold their slowest axes together; 1-D
//! data becomes a single-row 2-D array. The whole chunk is one SPERR chunk, since HDF5
//! chunks are already the unit of work.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

use super::{
    check_lossy_input, check_resolvable, check_transformable, library_error, strip_frame,
    with_frame, Codec, CodecError,
};
use crate::samples::{fit_rank, Element, Layout, SampleBuf, Samples};
use crate::wire::{CodecId, DType};

const NAME: &str = "sperr";
/// SPERR 0.8 segfaults on fields holding fill values such as 1e35 (measured on
/// ../shared/data foam V.f32), so larger magnitudes are refused before reaching it.
const MAX_MAGNITUDE: f64 = 1e30;

/// The finest bound SPERR takes, as a fraction of the chunk's largest magnitude. SPERR
/// 0.8.5 crashes (a null coefficient coder) when its quantised wavelet coefficients need
/// more than 64 bits: on a generated 3-D field, f32 or f64, a bound of 2^−60 of the largest
/// magnitude did, 2^−58 did not. 2^−48 keeps 2^10 in hand for coefficients larger than
/// the values, and is within 16 ulps of f64's precision at the largest value (f32's
/// precision is 2^−24): only targets near 290 dB ask for finer.
const FINEST_RELATIVE_BOUND: f64 = 1.0 / (1u64 << 48) as f64;

/// Major version SPERR writes first in its container header (0.8 writes 0).
const SPERR_MAJOR_VERSION: u8 = 0;

/// SPERR's PSNR slope in dB per decade of bound, by stored bits per value (log2-spaced,
/// interpolated linearly in log2): the median secant between the first two attempts of
/// guarantee-mode searches on ../shared/data (341 pairs). Below a few bits per value most
/// wavelet coefficients are dropped whole, and their energy moves slower with the bound
/// than a quantiser's error: −8.5 dB a decade at 1/64 bit, −14.5 at 1/2, −20 from 8 bits.
const SLOPE_BY_RATE: [(f64, f64); 8] = [
    (-6.0, -8.5),
    (-4.0, -12.0),
    (-3.0, -13.5),
    (-1.0, -14.5),
    (0.0, -15.5),
    (1.0, -18.0),
    (2.0, -19.5),
    (3.0, -20.0),
];

/// SPERR with a point-wise (absolute) error bound.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sperr;

/// The 2-D or 3-D shape SPERR is given for a C-order shape: a series is one row, and a
/// 3-D chunk with an axis longer than [`MAX_3D_AXIS`] has its two slowest axes merged.
fn sperr_dims(shape: &[usize]) -> Vec<usize> {
    let dims = fit_rank(shape, 3);
    match *dims {
        [n] => vec![1, n],
        [nz, ny, nx] if dims.iter().any(|&n| n > MAX_3D_AXIS) => vec![nz * ny, nx],
        _ => dims,
    }
}

/// The longest axis SPERR's 3-D coder takes: it keeps its sets' lengths in 16 bits
/// (`SPECK3D_INT.h`), so a longer axis was cut to its length modulo 65536 and the
/// coefficients past it were never coded, where no error was raised and the outlier pass
/// (which reads the quantised coefficients, not the stream) saw nothing amiss (a 4-D
/// 256×256×16×16 chunk, folded to 65536×16×16, coded nothing at all). Its 2-D coder keeps
/// 32-bit lengths.
const MAX_3D_AXIS: usize = u16::MAX as usize;

impl Codec for Sperr {
    fn id(&self) -> CodecId {
        CodecId::Sperr
    }

    fn psnr_slope(&self, bits_per_value: f64) -> f64 {
        let x = bits_per_value.max(f64::MIN_POSITIVE).log2();
        let per_decade = match SLOPE_BY_RATE.iter().position(|&(at, _)| x < at) {
            Some(0) => SLOPE_BY_RATE[0].1,
            None => SLOPE_BY_RATE[SLOPE_BY_RATE.len() - 1].1,
            Some(i) => {
                let ((x0, y0), (x1, y1)) = (SLOPE_BY_RATE[i - 1], SLOPE_BY_RATE[i]);
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            }
        };
        per_decade / std::f64::consts::LN_10
    }

    fn encode(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
    ) -> Result<Vec<u8>, CodecError> {
        let max_abs = check_magnitude(check_lossy_input(NAME, &data, shape, bound)?)?;
        check_resolvable(NAME, bound, max_abs, FINEST_RELATIVE_BOUND)?;
        let bound = bound.min(Sperr::COARSEST_BOUND);
        let dims = sperr_dims(shape);
        match data {
            Samples::F32(values) => encode_typed(values, &dims, bound, max_abs),
            Samples::F64(values) => encode_typed(values, &dims, bound, max_abs),
            Samples::Opaque { .. } => unreachable!("rejected by check_lossy_input"),
        }
    }

    fn decode(&self, payload: &[u8], layout: &Layout, bound: f64) -> Result<SampleBuf, CodecError> {
        let well_formed = strip_frame(self, layout, payload)
            .zip(layout.count())
            .is_some_and(|(stream, values)| well_formed(stream, values, bound == 0.0));
        if !well_formed {
            return Err(library_error(
                NAME,
                "stream is not laid out as SPERR 0.8 writes one for this chunk",
            ));
        }
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

    /// SPERR 0.8's container header for one chunk holding the whole array: the major
    /// version, eight flags (bit 7 − i for flag i: part of a larger stream, 3-D, f32, more
    /// than one chunk), the dims as u32 from the fastest axis, and in 3-D the chunk's
    /// stream length as u32.
    fn frame(&self, layout: &Layout, body_len: usize) -> Option<Vec<u8>> {
        let is_f32 = match layout.dtype {
            DType::F32 => 1,
            DType::F64 => 0,
            DType::Opaque => return None,
        };
        let u32_le = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
        let dims = sperr_dims(&layout.shape);
        let (three_d, body) = match dims.len() {
            3 => (1, Some(u32_le(body_len)?)),
            _ => (0, None),
        };
        let mut frame = vec![SPERR_MAJOR_VERSION, three_d << 6 | is_f32 << 5];
        for &d in dims.iter().rev() {
            frame.extend_from_slice(&u32_le(d)?);
        }
        frame.extend(body.into_iter().flatten());
        Some(frame)
    }

    /// The container header left out, then the chunk's stream without the quantisation
    /// step (a headroom count from which it follows with the bound; kept whole for a
    /// stream coded to a size, bound 0) and with its bit counts as varints.
    fn compact(&self, layout: &Layout, bound: f64, payload: &[u8]) -> Option<Vec<u8>> {
        compact_stream(strip_frame(self, layout, payload)?, bound)
    }

    fn expand(&self, layout: &Layout, bound: f64, stored: &[u8]) -> Option<Vec<u8>> {
        with_frame(self, layout, &expand_stream(stored, bound)?)
    }
}

/// SPERR's conditioner flags for a chunk whose mean was subtracted (and that is not
/// constant, which SPERR lays out otherwise).
const MEAN_SUBTRACTED: u8 = 0x80;

/// SPERR's conditioner flags for a constant field: the mean flag and the constant one.
/// The header then holds the value count (u64) and the value (f64), and nothing follows.
const CONSTANT_FIELD: u8 = 0x81;

/// Whether `stream` (one chunk's SPERR 0.8 stream of `values` values, after the
/// container header) is laid out as SPERR writes one, which its decoder trusts without
/// checking: it fills a vector of the constant field's stored count, reserves the bits a
/// SPECK header declares, shifts by its bit planes, and decodes from whatever state is
/// left when the stream is too short for its headers (a count of 2^62 bits aborted the
/// process; 20 bytes of a 2-D payload crashed it). The checksum already keeps damaged
/// chunks out; this keeps crafted ones out too. A stream coded to a size (`by_rate`) may
/// hold fewer bytes than its bit count (at most 256 bits a value: a reserve of 4× an f64
/// chunk) and has no outlier stream.
fn well_formed(stream: &[u8], values: usize, by_rate: bool) -> bool {
    let Some((conditioner, rest)) = stream.split_at_checked(CONDITIONER_LEN) else {
        return false;
    };
    let count = u64::try_from(values).unwrap_or(u64::MAX);
    match conditioner[0] {
        CONSTANT_FIELD => {
            let stored = u64::from_le_bytes(conditioner[1..9].try_into().unwrap_or_default());
            return rest.is_empty() && stored == count;
        }
        MEAN_SUBTRACTED => {}
        _ => return false,
    }
    // SPERR multiplies by the step it finds there (asserting it positive in debug builds):
    // a step of 0 decoded to a flat field, a NaN one to NaN, a negative one to
    // sign-flipped values.
    let step = f64::from_le_bytes(conditioner[9..17].try_into().unwrap_or_default());
    if !(step > 0.0 && step.is_finite()) {
        return false;
    }
    speck_streams(rest, by_rate).is_some_and(|streams| {
        streams.iter().all(|speck| {
            let whole = speck.coded.len() as u64 == speck.bits.div_ceil(8);
            speck.planes <= 64 && (whole || speck.bits <= count.saturating_mul(256))
        })
    })
}

/// One SPECK stream as SPERR lays it out after its conditioner header: the number of bit
/// planes (u8), the number of coded bits (u64), then the bytes of those bits.
struct SpeckStream<'a> {
    planes: u8,
    bits: u64,
    coded: &'a [u8],
}

/// The SPECK streams that follow SPERR's conditioner header in `rest`: the coefficients'
/// and, if any value missed the bound, the outlier coder's. In a stream coded to a size
/// (`by_rate`; no outlier stream follows) the last may hold fewer bytes than its bit count.
/// None when the lengths do not add up. The one reading of this layout: for the checks
/// before SPERR decodes, for compact payloads and for cutting streams by rate.
fn speck_streams(mut rest: &[u8], by_rate: bool) -> Option<Vec<SpeckStream<'_>>> {
    let mut streams = Vec::with_capacity(2);
    while streams.len() < 2 && (streams.is_empty() || !rest.is_empty()) {
        let (header, body) = rest.split_at_checked(SPECK_HEADER_LEN)?;
        let bits = u64::from_le_bytes(header[1..].try_into().ok()?);
        let whole = usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX);
        let (coded, after) = match body.split_at_checked(whole) {
            Some(split) => split,
            None if by_rate => body.split_at(body.len()),
            None => return None,
        };
        streams.push(SpeckStream {
            planes: header[0],
            bits,
            coded,
        });
        rest = after;
    }
    rest.is_empty().then_some(streams)
}

/// Bytes of SPERR's conditioner header: the flags, the mean as f64 and the quantisation
/// step as f64.
const CONDITIONER_LEN: usize = 17;

/// Bytes of a SPECK stream's header: the number of bit planes (u8), then the number of
/// bits that follow (u64).
const SPECK_HEADER_LEN: usize = 9;

/// The headroom below the bound given to SPERR comes in steps of 2⁻²⁰ of the bound, so
/// that a compact payload can store the step count (one byte, typically) instead of
/// SPERR's f64 quantisation step.
const HEADROOM_STEP: f64 = 1.0 / (1u64 << 20) as f64;

/// At most half the bound is left as headroom.
const MAX_HEADROOM_STEPS: u64 = 1 << 19;

/// The tolerance SPERR is given for `bound` with `steps` of headroom.
fn tolerance(bound: f64, steps: u64) -> f64 {
    bound * (1.0 - steps as f64 * HEADROOM_STEP)
}

/// SPERR's quantisation step in point-wise-error mode for tolerance `pwe`: 1.5 × `pwe`
/// (SPECK_FLT's `m_estimate_q`), computed as SPERR computes it.
fn quantisation_step(pwe: f64) -> f64 {
    pwe * 1.5
}

/// The headroom steps whose tolerance gives exactly the quantisation step `q`.
fn headroom_steps(bound: f64, q: f64) -> Option<u64> {
    let steps = ((1.0 - q / 1.5 / bound) / HEADROOM_STEP).round();
    let steps = (0.0..=MAX_HEADROOM_STEPS as f64)
        .contains(&steps)
        .then_some(steps as u64)?;
    (quantisation_step(tolerance(bound, steps)).to_bits() == q.to_bits()).then_some(steps)
}

/// One SPERR 0.8 chunk stream (after the container header) without its redundancy: the
/// conditioner header with the headroom steps (a varint) instead of the quantisation step
/// (which follows from them and the bound the chunk header holds), then the SPECK stream
/// and, if any value missed the bound, the outlier coder's SPECK stream, each with its bit
/// count as a varint instead of a u64. None when the stream is not laid out so (a constant
/// field, a quantisation step no headroom gives, a length that does not add up). A stream
/// coded to a size (bound 0) keeps its step: [`compact_rate_stream`].
fn compact_stream(stream: &[u8], bound: f64) -> Option<Vec<u8>> {
    let (conditioner, rest) = stream.split_at_checked(CONDITIONER_LEN)?;
    if conditioner[0] != MEAN_SUBTRACTED {
        return None;
    }
    if bound == 0.0 {
        return compact_rate_stream(conditioner, rest);
    }
    let steps = headroom_steps(bound, f64::from_le_bytes(conditioner[9..].try_into().ok()?))?;
    let mut out = conditioner[..9].to_vec();
    crate::wire::put_varint(&mut out, steps);
    for speck in speck_streams(rest, false)? {
        out.push(speck.planes);
        crate::wire::put_varint(&mut out, speck.bits);
        out.extend_from_slice(speck.coded);
    }
    Some(out)
}

/// [`compact_stream`] of a stream by rate (a chunk whose bound is 0: [`Sperr::encode_rate`],
/// perhaps [`Sperr::truncated`]), whose quantisation step follows from no bound: the
/// conditioner header as it is, then the SPECK stream with its bit count as a varint and
/// the coded bytes it holds, which may stop short of that count. There is no outlier
/// stream.
fn compact_rate_stream(conditioner: &[u8], speck: &[u8]) -> Option<Vec<u8>> {
    let [speck] = &speck_streams(speck, true)?[..] else {
        return None;
    };
    let mut out = conditioner.to_vec();
    out.push(speck.planes);
    crate::wire::put_varint(&mut out, speck.bits);
    out.extend_from_slice(speck.coded);
    Some(out)
}

/// Reverses [`compact_rate_stream`].
fn expand_rate_stream(stored: &[u8]) -> Option<Vec<u8>> {
    let (conditioner, rest) = stored.split_at_checked(CONDITIONER_LEN)?;
    let (&planes, rest) = rest.split_first()?;
    let (bits, len) = crate::wire::read_varint(rest).ok()?;
    let coded = &rest[len..];
    if coded.len() as u64 > bits.div_ceil(8) {
        return None;
    }
    let mut out = conditioner.to_vec();
    out.push(planes);
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(coded);
    Some(out)
}

/// Reverses [`compact_stream`].
fn expand_stream(stored: &[u8], bound: f64) -> Option<Vec<u8>> {
    if bound == 0.0 {
        return expand_rate_stream(stored);
    }
    let (conditioner, rest) = stored.split_at_checked(CONDITIONER_LEN - 8)?;
    let (steps, len) = crate::wire::read_varint(rest).ok()?;
    let mut rest = &rest[len..];
    let mut out = conditioner.to_vec();
    let steps = (steps <= MAX_HEADROOM_STEPS).then_some(steps)?;
    out.extend_from_slice(&quantisation_step(tolerance(bound, steps)).to_le_bytes());
    for required in [true, false] {
        if rest.is_empty() && !required {
            break;
        }
        let (&planes, after) = rest.split_first()?;
        let (bits, len) = crate::wire::read_varint(after).ok()?;
        let (bytes, after) =
            after[len..].split_at_checked(usize::try_from(bits.div_ceil(8)).ok()?)?;
        out.push(planes);
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(bytes);
        rest = after;
    }
    rest.is_empty().then_some(out)
}

impl Sperr {
    /// The coarsest bound SPERR is given. SPERR 0.8.5 crashes (a null outlier coder) when
    /// its quantisation step, 1.5 × the bound, passes about 2^63: measured on generated 3-D
    /// f32 fields of magnitude 1e22–1e29, bounds up to 6e18 went through and 9e18 did not.
    /// A coarser bound is kept finer, at 2^61: the chunk meets the asked bound with room to
    /// spare, at a ratio the model does not predict, so the learned chooser leaves such
    /// SPERR candidates out unless SPERR is named.
    pub const COARSEST_BOUND: f64 = (1u64 << 61) as f64;

    /// The shortest axis along which SPERR's 2-D transform runs: a 2-D chunk (a series is
    /// one, `[1, n]`) with a shorter axis gets no wavelet level at all, and SPERR then codes
    /// the raw values' bit planes. On `n × k` columns of smooth series SPERR stored 7–100×
    /// SZ3's bytes at k = 2–8 and 2–44× at k = 9, where its transform starts.
    pub const MIN_TRANSFORM_LEN: usize = 9;

    /// Whether SPERR's 2-D transform runs on a chunk of `shape` ([`Sperr::MIN_TRANSFORM_LEN`]):
    /// only when both axes are that long, never on a series. A 3-D chunk counts as
    /// transformed: SPERR's 3-D transform has limits of its own (an axis under 9 values
    /// gets no level along it), which this test does not judge.
    pub fn transforms(shape: &[usize]) -> bool {
        let dims = sperr_dims(shape);
        dims.len() == 3 || dims.iter().all(|&n| n >= Sperr::MIN_TRANSFORM_LEN)
    }

    /// Compresses to `bits_per_value` (SPERR's fixed-rate mode: the stream is cut at that
    /// many bits per value, plus about 40 bytes of headers), with no point-wise bound; the
    /// payload decodes with [`Codec::decode`] like any other SPERR payload. For 2-D and 3-D
    /// chunks only: a 1-D chunk, a single row to SPERR, lost most of its quality in this
    /// mode (a smooth 2^18-value row at 8 bits per value: MSE 1e-5 of a unit range), and so
    /// did a 2-D chunk given to SPERR's 3-D path with a leading axis of 1 (the SDSS catalog's
    /// 3 × 84383 columns: 9.7 dB at any rate, 54 dB at 8 bits per value in 2-D).
    pub fn encode_rate(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bits_per_value: f64,
    ) -> Result<Vec<u8>, CodecError> {
        check_magnitude(check_lossy_input(NAME, &data, shape, bits_per_value)?)?;
        if fit_rank(shape, 3).len() < 2 {
            return Err(library_error(NAME, "fixed rate needs a 2-D or 3-D chunk"));
        }
        let mode = sperr::CompressionMode::BitsPerPixel {
            bpp: bits_per_value,
        };
        compress_in_mode(data, shape, mode)
    }

    /// The first `keep` bytes of the coded bits of `payload`, a fixed-rate stream
    /// ([`Sperr::encode_rate`]) for a chunk of `layout`, as a payload of their own: SPERR's
    /// coding is embedded (its bit planes run from the largest coefficients down, each
    /// pass refining all that came before) and its decoder takes a stream cut anywhere,
    /// reading what is missing as zeros, which is what its fixed-rate mode stores. A cut
    /// at `k` bytes decodes as the stream coded to `k` bytes, so one compression gives
    /// every rate below its own. None when `payload` is not one such stream (a constant
    /// chunk's, one with outliers, one laid out otherwise); `keep` past its end keeps it
    /// whole.
    pub fn truncated(&self, payload: &[u8], layout: &Layout, keep: usize) -> Option<Vec<u8>> {
        let coded = Sperr::coded_bytes(payload, layout)?;
        let cut = payload.len() - coded + keep.min(coded);
        let mut out = payload[..cut].to_vec();
        if let Some(length) = Sperr::stream_length_field(layout) {
            // A 3-D container holds the chunk stream's length.
            let stream = u32::try_from(cut - length.end).ok()?;
            out[length].copy_from_slice(&stream.to_le_bytes());
        }
        Some(out)
    }

    /// How many bytes of coded bits follow the headers of `payload`, a fixed-rate stream
    /// for a chunk of `layout` ([`Sperr::truncated`]); None when it is not one.
    pub fn coded_bytes(payload: &[u8], layout: &Layout) -> Option<usize> {
        let frame = Sperr.frame(layout, 0)?.len();
        let (conditioner, rest) = payload.get(frame..)?.split_at_checked(CONDITIONER_LEN)?;
        // One stream, perhaps holding fewer bytes than its bits: an outlier stream after
        // them would make it no fixed-rate stream.
        let [speck] = &speck_streams(rest, true)?[..] else {
            return None;
        };
        (conditioner[0] == MEAN_SUBTRACTED).then_some(speck.coded.len())
    }

    /// Where a 3-D container header holds the chunk stream's length (u32), for a chunk of
    /// `layout` ([`Codec::frame`]); None in 2-D, which has none.
    fn stream_length_field(layout: &Layout) -> Option<std::ops::Range<usize>> {
        (sperr_dims(&layout.shape).len() == 3).then_some(14..18)
    }

    /// Compresses with SPERR's own target-PSNR mode instead of a point-wise bound.
    ///
    /// The filter never uses this: measured on real fields, it misses the target on many
    /// chunks (see DESIGN.md). `deepcq bench` runs it as a peer, so that its misses are
    /// measured with the same chunks, codec build and metrics as everything else. The
    /// payload decodes with [`Codec::decode`] like any other SPERR payload.
    pub fn encode_target_psnr(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        psnr_db: f64,
    ) -> Result<Vec<u8>, CodecError> {
        check_magnitude(check_lossy_input(NAME, &data, shape, psnr_db)?)?;
        let mode = sperr::CompressionMode::PeakSignalToNoiseRatio { psnr: psnr_db };
        compress_in_mode(data, shape, mode)
    }
}

/// Compresses checked input (fill values refused, [`check_magnitude`]) in one of SPERR's
/// own modes.
fn compress_in_mode(
    data: Samples<'_>,
    shape: &[usize],
    mode: sperr::CompressionMode,
) -> Result<Vec<u8>, CodecError> {
    let dims = sperr_dims(shape);
    match data {
        Samples::F32(values) => compress_typed(values, &dims, mode),
        Samples::F64(values) => compress_typed(values, &dims, mode),
        Samples::Opaque { .. } => unreachable!("rejected by check_lossy_input"),
    }
}

/// `max_abs`, the chunk's largest magnitude, refused above [`MAX_MAGNITUDE`] and below
/// [`super::SMALLEST_TRANSFORMED`].
fn check_magnitude(max_abs: f64) -> Result<f64, CodecError> {
    let max_abs = check_transformable(NAME, max_abs)?;
    if max_abs > MAX_MAGNITUDE {
        return Err(library_error(
            NAME,
            format!("values up to {max_abs:e} (fill values?) exceed what SPERR survives ({MAX_MAGNITUDE:e})"),
        ));
    }
    Ok(max_abs)
}

/// Compresses `values` (checked; largest magnitude `max_abs`) to the point-wise `bound`.
fn encode_typed<T: Element + sperr::Element>(
    values: &[T],
    dims: &[usize],
    bound: f64,
    max_abs: f64,
) -> Result<Vec<u8>, CodecError> {
    // SPERR bounds the error in double precision and then rounds to T, which can add half
    // an ulp of the largest value: measured 1.0005·eb on f32 fields. Leave room for it, in
    // whole steps of 2⁻²⁰ of the bound (at most half of it), so a compact payload can
    // store the step count instead of SPERR's quantisation step. In f64 SPERR's own
    // rounding around the mean it takes out and adds back costs up to 1.5 ulps of the
    // largest value (a value on the other side of the mean lies in a higher binade): two.
    let ulp = if T::DTYPE == DType::F32 {
        f32::EPSILON as f64
    } else {
        2.0 * f64::EPSILON
    };
    let steps = (max_abs * ulp / bound / HEADROOM_STEP).ceil();
    let pwe = tolerance(bound, steps.min(MAX_HEADROOM_STEPS as f64) as u64);
    compress_typed(values, dims, sperr::CompressionMode::PointwiseError { pwe })
}

fn compress_typed<T: Element + sperr::Element>(
    values: &[T],
    dims: &[usize],
    mode: sperr::CompressionMode,
) -> Result<Vec<u8>, CodecError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorStats;
    use crate::synth::{generate, Kind};

    /// Decodes `payload` as SPERR's stream for `data` of `shape` and measures its errors.
    fn decoded_errors(data: Samples<'_>, shape: &[usize], payload: &[u8]) -> ErrorStats {
        let back = Sperr
            .decode(payload, &Layout::of(&data, shape), 0.0)
            .unwrap();
        crate::metrics::error_stats_of(data, back.view()).unwrap()
    }

    #[test]
    fn chunks_with_an_axis_past_65535_keep_their_bound() {
        // The fastest axis long, the slowest long, and a 4-D chunk folded to 65536×4×4.
        for shape in [
            vec![2usize, 3, 70_000],
            vec![70_000, 2, 3],
            vec![256, 256, 4, 4],
        ] {
            let values = generate(Kind::Spectral { slope: 2.0 }, &shape, 5);
            let data = Samples::F64(&values);
            let bound = 1e-3;
            let payload = Sperr.encode(data, &shape, bound).unwrap();
            let errors = decoded_errors(data, &shape, &payload);
            assert!(
                errors.max_abs_error <= bound,
                "{shape:?}: {}",
                errors.max_abs_error
            );
        }
    }

    #[test]
    fn streams_sperr_would_misread_are_refused_before_it_reads_them() {
        for shape in [vec![48usize, 40], vec![12, 20, 24]] {
            let values = generate(Kind::Spectral { slope: 3.0 }, &shape, 3);
            let v32: Vec<f32> = values.iter().map(|&x| x as f32).collect();
            let data = Samples::F32(&v32);
            let layout = Layout::of(&data, &shape);
            let frame = Sperr.frame(&layout, 0).unwrap().len();
            let by_bound = Sperr.encode(data, &shape, 1e-3).unwrap();
            let by_rate = Sperr.encode_rate(data, &shape, 2.0).unwrap();
            assert!(Sperr.decode(&by_bound, &layout, 1e-3).is_ok(), "{shape:?}");
            assert!(Sperr.decode(&by_rate, &layout, 0.0).is_ok(), "{shape:?}");
            // Cut anywhere: refused (20 bytes of a 2-D payload crashed SPERR).
            for len in (0..by_bound.len()).step_by(7) {
                assert!(
                    Sperr.decode(&by_bound[..len], &layout, 1e-3).is_err(),
                    "{len}"
                );
            }
            // Edited headers, each with the frame kept (a checksum made to match).
            let edited = |payload: &[u8], at: usize, bytes: &[u8]| {
                let mut p = payload.to_vec();
                p[frame + at..frame + at + bytes.len()].copy_from_slice(bytes);
                p
            };
            let speck = CONDITIONER_LEN;
            for (payload, bound) in [(&by_bound, 1e-3), (&by_rate, 0.0)] {
                // 2^62 bits declared (SPERR reserved them and aborted), 200 bit planes.
                let huge = edited(payload, speck + 1, &(1u64 << 62).to_le_bytes());
                assert!(
                    Sperr.decode(&huge, &layout, bound).is_err(),
                    "{shape:?} {bound}"
                );
                let planes = edited(payload, speck, &[200]);
                assert!(
                    Sperr.decode(&planes, &layout, bound).is_err(),
                    "{shape:?} {bound}"
                );
                // A constant field of 2^40 values (SPERR fills a vector of that count).
                let mut constant = edited(payload, 0, &[CONSTANT_FIELD]);
                constant = edited(&constant, 1, &(1u64 << 40).to_le_bytes());
                constant.truncate(frame + CONDITIONER_LEN);
                assert!(
                    Sperr.decode(&constant, &layout, bound).is_err(),
                    "{shape:?} {bound}"
                );
                // A quantisation step SPERR would decode with: 0, negative, NaN, infinite
                // (a flat field, sign-flipped or NaN values, or its debug assertion).
                for step in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
                    let stepped = edited(payload, 9, &step.to_le_bytes());
                    assert!(
                        Sperr.decode(&stepped, &layout, bound).is_err(),
                        "{shape:?} {bound} {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn psnr_moves_with_the_bound_as_slowly_as_the_slope_by_rate_says() {
        // A searching step from one point assumes this slope; at a small fraction of a bit
        // per value real SPERR streams gain far less than −20 dB a decade, at many bits
        // about that.
        let shape = [40, 40, 40];
        let v: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 7)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let range = crate::select::value_range(Samples::F32(&v));
        let measure = |rel: f64| {
            let bound = rel * range;
            let payload = Sperr.encode(Samples::F32(&v), &shape, bound).unwrap();
            let psnr = decoded_errors(Samples::F32(&v), &shape, &payload).psnr;
            (
                bound.ln(),
                psnr,
                8.0 * payload.len() as f64 / v.len() as f64,
            )
        };
        for (rel, low_rate) in [(1e-1, true), (5e-2, true), (1e-6, false)] {
            let (x0, y0, bits) = measure(rel);
            let (x1, y1, _) = measure(rel * 2.0);
            let measured = (y1 - y0) / (x1 - x0);
            let assumed = Sperr.psnr_slope(bits);
            let high_rate = crate::codec::HIGH_RATE_PSNR_SLOPE;
            eprintln!("rel {rel}: {bits:.3} bits, measured {measured:.2}, assumed {assumed:.2}");
            if low_rate {
                assert!(bits < 1.5, "{bits}");
                assert!((assumed - measured).abs() < (high_rate - measured).abs() * 0.5);
            } else {
                assert!(bits > 6.0, "{bits}");
                assert!((assumed - measured).abs() < 1.0);
            }
        }
    }

    #[test]
    fn compact_payloads_expand_to_the_payload_with_and_without_outliers() {
        let mut with_outliers = 0;
        let cases = [
            (vec![12, 20, 24], Kind::Spectral { slope: 3.0 }),
            (vec![12, 20, 24], Kind::Noise),
            (vec![48, 40], Kind::Spectral { slope: 2.0 }),
            (vec![2000], Kind::Noise),
        ];
        crate::codec::for_each_case(&cases, |shape, data, layout, bound| {
            let payload = Sperr.encode(data, shape, bound).unwrap();
            let frame = Sperr.frame(layout, 0).unwrap().len();
            let compact = Sperr.compact(layout, bound, &payload).unwrap();
            assert!(
                compact.len() + frame + 10 <= payload.len(),
                "{shape:?} {bound}: {} of {}",
                compact.len(),
                payload.len()
            );
            assert_eq!(Sperr.expand(layout, bound, &compact).unwrap(), payload);
            // An outlier stream follows the SPECK stream when any value missed.
            let stream = &payload[frame..];
            let bits = u64::from_le_bytes(stream[18..26].try_into().unwrap());
            with_outliers += usize::from(26 + (bits.div_ceil(8) as usize) < stream.len());
            // Another bound in the header gives another quantisation step.
            let other = f64::from((bound as f32) * 2.0);
            assert_eq!(Sperr.compact(layout, other, &payload), None);
            assert!(Sperr
                .expand(layout, bound, &compact[..compact.len() - 1])
                .is_none());
        });
        assert!(with_outliers > 0, "no case had an outlier stream");
    }

    #[test]
    fn bounds_past_what_sperr_survives_are_kept_finer_not_crashed_on() {
        // SPERR 0.8.5 segfaulted on these (bounds of 9e18 and more): a smooth field of
        // magnitude 1e25 and a spike of 1e23 in zeros.
        let shape = [32, 32, 32];
        let smooth: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 2)
            .into_iter()
            .map(|x| ((x + 2.0) * 1e25) as f32)
            .collect();
        let mut spike = vec![0.0f32; smooth.len()];
        spike[1000] = 1e23;
        for (values, bound) in [(&smooth, 1e19), (&smooth, 1e22), (&spike, 1e19)] {
            let data = Samples::F32(values);
            let payload = Sperr.encode(data, &shape, bound).unwrap();
            let max_error = decoded_errors(data, &shape, &payload).max_abs_error;
            assert!(
                max_error <= Sperr::COARSEST_BOUND,
                "{bound:e}: {max_error:e}"
            );
        }
    }

    #[test]
    fn f32_bounds_near_an_ulp_are_kept() {
        // SPERR bounds its f64 reconstruction, then rounds it to f32, up to half an ulp
        // more (the headroom in `encode_typed`): values across 1 and 2, where the ulp
        // doubles (2^-24, 2^-23, 2^-22).
        let shape = [24, 24, 24];
        let v: Vec<f32> = generate(Kind::Spectral { slope: 2.0 }, &shape, 4)
            .into_iter()
            .map(|x| (1.5 + 0.6 * x) as f32)
            .collect();
        let data = Samples::F32(&v);
        let below = |t: f32| v.iter().filter(|&&x| x < t).count();
        assert!(below(1.0) > 0 && below(2.0) < v.len() && below(2.0) > below(1.0));
        for ulps in [0.3, 0.6, 1.0, 1.5, 3.0, 10.0] {
            let bound = ulps * f32::EPSILON as f64;
            let payload = Sperr.encode(data, &shape, bound).unwrap();
            let max_error = decoded_errors(data, &shape, &payload).max_abs_error;
            assert!(max_error <= bound, "{ulps} ulps: {max_error:e} > {bound:e}");
        }
    }

    #[test]
    fn target_psnr_mode_lands_near_its_target_and_decodes() {
        let shape = [16, 32, 32];
        let v: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 3)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let payload = Sperr
            .encode_target_psnr(Samples::F32(&v), &shape, 60.0)
            .unwrap();
        let psnr = decoded_errors(Samples::F32(&v), &shape, &payload).psnr;
        // SPERR aims at the target without promising it: close, not necessarily above.
        assert!((psnr - 60.0).abs() < 3.0, "PSNR {psnr}");
        assert!(payload.len() < v.len() * 4);
    }

    #[test]
    fn a_cut_stream_decodes_as_the_stream_coded_to_its_length_and_stores_compact() {
        for shape in [vec![48, 40], vec![12, 24, 20]] {
            let v = generate(Kind::Spectral { slope: 3.0 }, &shape, 9);
            let data = Samples::F64(&v);
            let layout = Layout::of(&data, &shape);
            let long = Sperr.encode_rate(data, &shape, 4.0).unwrap();
            let mut last = f64::NEG_INFINITY;
            for bits in [0.1, 0.5, 2.0] {
                let short = Sperr.encode_rate(data, &shape, bits).unwrap();
                let coded = Sperr::coded_bytes(&short, &layout).unwrap();
                let cut = Sperr.truncated(&long, &layout, coded).unwrap();
                assert_eq!(cut.len(), short.len(), "{shape:?} {bits}");
                let (a, b) = (
                    Sperr.decode(&cut, &layout, 0.0).unwrap(),
                    Sperr.decode(&short, &layout, 0.0).unwrap(),
                );
                assert_eq!(
                    a, b,
                    "{shape:?} {bits}: the cut decodes as the shorter stream"
                );
                let psnr = decoded_errors(data, &shape, &cut).psnr;
                assert!(psnr > last, "{shape:?} {bits}: {psnr} after {last}");
                last = psnr;
                // Compact with a bound of 0, and back to the same bytes.
                let compact = crate::chunk::compact_payload(CodecId::Sperr, &layout, 0.0, &cut)
                    .expect("a cut stream stores compact");
                assert!(
                    compact.len() + 14 <= cut.len(),
                    "{shape:?}: {}",
                    compact.len()
                );
                assert_eq!(Sperr.expand(&layout, 0.0, &compact).unwrap(), cut);
            }
            // A cut past the end keeps the stream.
            let coded = Sperr::coded_bytes(&long, &layout).unwrap();
            assert_eq!(Sperr.truncated(&long, &layout, coded + 10).unwrap(), long);
        }
    }

    #[test]
    fn fixed_rate_streams_keep_their_size_and_decode_at_any_shape() {
        let shapes: [&[usize]; 7] = [
            &[5, 7],
            &[2, 1000],
            &[64, 3],
            &[3, 4, 5],
            &[17, 1, 19],
            &[9, 33, 2],
            &[1, 48, 40],
        ];
        for shape in shapes {
            let v = generate(Kind::Spectral { slope: 3.0 }, shape, 5);
            let data = Samples::F64(&v);
            let mut last_psnr = 0.0;
            for bits in [0.5, 4.0, 16.0, 80.0] {
                let payload = Sperr.encode_rate(data, shape, bits).unwrap();
                // The bit budget plus SPERR's headers, or less when it is done earlier.
                let budget = bits * v.len() as f64 / 8.0 + 48.0;
                assert!(
                    payload.len() as f64 <= budget,
                    "{shape:?} {bits}: {}",
                    payload.len()
                );
                let psnr = decoded_errors(data, shape, &payload).psnr;
                assert!(
                    psnr >= last_psnr,
                    "{shape:?} {bits}: {psnr} after {last_psnr}"
                );
                last_psnr = psnr;
            }
            assert!(
                last_psnr > 100.0,
                "{shape:?}: {last_psnr} dB at 80 bits per value"
            );
        }
        let row = vec![0.5f32; 4096];
        assert!(Sperr
            .encode_rate(Samples::F32(&row), &[1, 4096], 4.0)
            .is_err());
        assert!(Sperr
            .encode_rate(Samples::F32(&row), &[64, 64], 0.0)
            .is_err());
    }
}
