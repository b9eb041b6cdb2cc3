//! SZ3 (via the `sz3` crate, SZ3 3.3) in absolute-error mode, with its default pipeline
//! and with first-order Lorenzo alone, keeping the smaller payload ([`LORENZO_ONLY`]).
//!
//! SZ3 takes ranks 1–4 and rejects size-1 dimensions after the first, so shapes are
//! squeezed and folded to at most 4 dims. Its errors land right at the bound
//! (about 0.9999976·eb); on f32 data SZ3 checks each error as an f32 difference, so a
//! value may exceed the bound by that difference's rounding (under 6e-8 of the bound).

use super::{check_lossy_input, library_error, strip_frame, with_frame, Codec, CodecError};
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

/// Which of the two SZ3 pipelines the codec runs coded a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipeline {
    /// SZ3's default, which tunes its interpolation.
    Default,
    /// SZ3's Lorenzo pipeline with its first-order predictor alone.
    FirstOrderLorenzo,
}

impl Pipeline {
    /// The pipeline this one is not.
    pub fn other(self) -> Pipeline {
        match self {
            Pipeline::Default => Pipeline::FirstOrderLorenzo,
            Pipeline::FirstOrderLorenzo => Pipeline::Default,
        }
    }
}

impl Sz3 {
    /// [`Codec::encode`] with both pipelines, keeping the smaller payload, or with `only`
    /// one; and the pipeline that won (None on a tie: both stored the same length, as when
    /// both fell back to zstd alone). A search of one chunk's bounds runs both until one
    /// wins and then that one alone (`select::search`): the winner rarely changes between
    /// neighbouring bounds, and each later SZ3 attempt costs one compression, not two.
    pub fn encode_with(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        bound: f64,
        only: Option<Pipeline>,
    ) -> Result<(Vec<u8>, Option<Pipeline>), CodecError> {
        check_lossy_input(NAME, &data, shape, bound)?;
        let dims = fit_rank(shape, MAX_RANK);
        match data {
            Samples::F32(values) => encode_typed(values, &dims, bound, only),
            Samples::F64(values) => encode_typed(values, &dims, bound, only),
            Samples::Opaque { .. } => unreachable!("rejected by check_lossy_input"),
        }
    }
}

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
        self.encode_with(data, shape, bound, None)
            .map(|(payload, _)| payload)
    }

    fn decode(
        &self,
        payload: &[u8],
        layout: &Layout,
        _bound: f64,
    ) -> Result<SampleBuf, CodecError> {
        if layout.dtype != DType::Opaque && !well_framed(layout, payload) {
            return Err(library_error(
                NAME,
                "the payload's frame, length or configuration does not fit the chunk",
            ));
        }
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

    /// SZ3 3.3.2's payload after its frame is the compressed-data length `S` (u64), the
    /// compressed data, then the configuration (`Config`). Compact, it is a byte saying
    /// which of the fields below were left out, the configuration without its value count
    /// (the chunk's) and absolute bound (the header's), then the compressed data with its
    /// lossless stage's input length as a varint instead of a u64. `S` follows from the
    /// chunk's length. About 28 bytes less per chunk.
    fn compact(&self, layout: &Layout, bound: f64, payload: &[u8]) -> Option<Vec<u8>> {
        let rest = strip_frame(self, layout, payload)?;
        let (size, rest) = rest.split_at_checked(8)?;
        let size = usize::try_from(u64::from_le_bytes(size.try_into().ok()?)).ok()?;
        let (data, config) = rest.split_at_checked(size)?;
        let config = Config::parse(config)?;
        let mut mask = 0;
        if config.count()? == element_count(layout) {
            mask |= LEFT_OUT_COUNT;
        }
        if config.abs_bound() == Some(bound.to_bits()) {
            mask |= LEFT_OUT_BOUND;
        }
        let lossless_len = data
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        if data.get(8..12) == Some(&ZSTD_MAGIC[..]) {
            mask |= VARINT_LOSSLESS_LEN;
        }
        let mut out = vec![mask];
        out.extend(config.without(mask));
        match lossless_len {
            Some(len) if mask & VARINT_LOSSLESS_LEN != 0 => {
                crate::wire::put_varint(&mut out, len);
                out.extend_from_slice(&data[8..]);
            }
            _ => out.extend_from_slice(data),
        }
        Some(out)
    }

    fn expand(&self, layout: &Layout, bound: f64, stored: &[u8]) -> Option<Vec<u8>> {
        let (&mask, rest) = stored.split_first()?;
        if mask & !(LEFT_OUT_COUNT | LEFT_OUT_BOUND | VARINT_LOSSLESS_LEN) != 0 {
            return None;
        }
        let (config, data) = Config::rebuild(rest, mask, element_count(layout), bound)?;
        let data = match mask & VARINT_LOSSLESS_LEN {
            0 => data.to_vec(),
            _ => {
                let (len, used) = crate::wire::read_varint(data).ok()?;
                let mut out = len.to_le_bytes().to_vec();
                out.extend_from_slice(&data[used..]);
                out
            }
        };
        let mut body = (data.len() as u64).to_le_bytes().to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(&config);
        with_frame(self, layout, &body)
    }
}

/// Whether `payload` has the structure SZ3 3.3.2's decoder trusts without checking: its
/// frame, a compressed-data length within the payload, and after that data exactly one
/// configuration for the chunk's value count, naming a pipeline this build writes. SZ3
/// reads its configuration at the offset the length gives, past the payload's end if the
/// length is large, and throws an exception Rust cannot catch (an abort) on a wrong magic
/// number or version; the Lorenzo pipeline's settings must be the ones SZ3 writes
/// ([`Config::pipeline_as_written`]). The compressed data must open with its lossless
/// stage's input length (u64) and one whole zstd frame declaring that length
/// ([`lossless_stage_fits`], [`one_whole_frame`]). The
/// checksum already keeps damaged chunks out; this keeps crafted ones with a bad frame
/// out too, and a lossy pipeline's head that SZ3 would misread ([`stage_head_fits`]).
/// (The coded data after it is not checked: a chunk crafted there can still crash SZ3.)
fn well_framed(layout: &Layout, payload: &[u8]) -> bool {
    let Some(rest) = strip_frame(&Sz3, layout, payload) else {
        return false;
    };
    let Some((size, rest)) = rest.split_at_checked(8) else {
        return false;
    };
    let size = u64::from_le_bytes(size.try_into().unwrap());
    let Some((data, config)) = usize::try_from(size)
        .ok()
        .and_then(|size| rest.split_at_checked(size))
    else {
        return false;
    };
    Config::parse(config).is_some_and(|c| {
        c.count() == Some(element_count(layout))
            && c.pipeline_as_written()
            && lossless_stage_fits(layout, c.algorithm(), data)
            && one_whole_frame(data)
            && stage_head_fits(layout, &c, data)
    })
}

/// The first `len` bytes SZ3's lossless stage decompresses to from `frame`, its zstd
/// frame (decoded that far, not whole); None when it holds fewer.
fn stage_head(frame: &[u8], len: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut head = vec![0u8; len];
    zstd::stream::read::Decoder::with_buffer(frame)
        .ok()?
        .read_exact(&mut head)
        .ok()?;
    Some(head)
}

/// Reads `N` little-endian bytes from `bytes` at `*at`, moving `*at` past them.
fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> [u8; N] {
    let taken = bytes[*at..*at + N].try_into().unwrap();
    *at += N;
    taken
}

/// SZ3 3.3.2's `LinearQuantizer` as it saves itself in a lossy pipeline's stage: its id,
/// its bound (f64), its radius and how many values it stores unpredicted (which SZ3
/// allocates as they come: a crafted count aborted on the allocation).
#[derive(Debug, PartialEq)]
struct QuantizerHead {
    uid: u8,
    radius: i32,
    unpredicted: u64,
}

/// `LinearQuantizer`'s id, which SZ3 throws on (an abort here) when it reads another.
const LINEAR_QUANTIZER_UID: u8 = 0b10;

impl QuantizerHead {
    /// Bytes of the head: id, bound, radius and count.
    const LEN: usize = 1 + 8 + 4 + 8;

    /// The head at `*at` in `bytes` (which hold it), moving `*at` past it.
    fn read(bytes: &[u8], at: &mut usize) -> QuantizerHead {
        let uid = take::<1>(bytes, at)[0];
        take::<8>(bytes, at);
        QuantizerHead {
            uid,
            radius: i32::from_le_bytes(take(bytes, at)),
            unpredicted: u64::from_le_bytes(take(bytes, at)),
        }
    }

    /// Whether SZ3 reads it as it wrote it for a chunk of `count` values of `value_bytes`
    /// each, ending `end` bytes into a stage of `stage_len`: the unpredicted values must
    /// be there after it (SZ3 asserts it: an abort).
    fn fits(&self, count: u64, value_bytes: u64, end: u64, stage_len: u64) -> bool {
        self.uid == LINEAR_QUANTIZER_UID
            && self.radius > 0
            && self.unpredicted <= count
            && self
                .unpredicted
                .saturating_mul(value_bytes)
                .saturating_add(end)
                <= stage_len
    }
}

/// The head of SZ3 3.3.2's interpolation pipeline as it saves it at the start of its
/// lossless stage (`InterpolationDecomposition::save`, then the quantiser's).
#[derive(Debug, PartialEq)]
struct InterpHeader {
    /// The dims it walks when decoding, whatever the configuration says.
    dims: Vec<u64>,
    block_size: u32,
    /// Index into its two interpolators (linear, cubic).
    interpolator: i32,
    /// Index into the N! orders of the dims.
    direction: i32,
    anchor_stride: u64,
    quantizer: QuantizerHead,
}

impl InterpHeader {
    /// Bytes of the header for `rank` dims: the dims, block size, interpolator, direction,
    /// anchor stride and the two error-bound factors (f64), then the quantiser.
    fn len(rank: usize) -> usize {
        8 * rank + 4 + 4 + 4 + 8 + 16 + QuantizerHead::LEN
    }

    /// Reads the header from `frame`, the lossless stage's zstd frame, for `rank` dims;
    /// None when the frame does not hold one.
    fn read(frame: &[u8], rank: usize) -> Option<InterpHeader> {
        let head = stage_head(frame, Self::len(rank))?;
        let at = &mut 0;
        let dims = (0..rank)
            .map(|_| u64::from_le_bytes(take(&head, at)))
            .collect();
        let block_size = u32::from_le_bytes(take(&head, at));
        let interpolator = i32::from_le_bytes(take(&head, at));
        let direction = i32::from_le_bytes(take(&head, at));
        let anchor_stride = u64::from_le_bytes(take(&head, at));
        take::<16>(&head, at);
        Some(InterpHeader {
            dims,
            block_size,
            interpolator,
            direction,
            anchor_stride,
            quantizer: QuantizerHead::read(&head, at),
        })
    }
}

/// The block size SZ3 3.3.2's interpolation pipeline always writes.
const INTERP_BLOCK_SIZE: u32 = 32;

/// The anchor stride SZ3 3.3.2's interpolation pipeline writes for a chunk of `dims` (its
/// default for the rank, or 0 where no dim is longer): anchor points are restored from
/// its unpredicted values without a bound, so a smaller stride read past them.
fn interp_anchor_stride(dims: &[usize]) -> u64 {
    let stride = [4096, 128, 32, 16][dims.len().clamp(1, 4) - 1];
    match dims.iter().any(|&d| d > stride) {
        true => stride as u64,
        false => 0,
    }
}

/// Whether the head of the lossy pipeline's stage in `data` (the stage's length, then its
/// zstd frame) is one SZ3 can decode into a chunk of `layout`. The interpolation pipeline
/// ([`InterpHeader`]) walks the dims saved there, not the configuration's the `sz3` crate
/// checks, and indexes its interpolators and dim orders with the saved ids unchecked: a
/// crafted payload declaring larger dims wrote past the chunk's buffer, which no panic
/// guard sees; its block size and anchor stride must be the ones it writes. First-order
/// Lorenzo alone saves its quantiser first ([`QuantizerHead`]); the series pipeline's
/// predictor selections come before its quantiser, and their count is checked
/// ([`series_head_fits`]); zstd alone's stage (the chunk's values) is not read. Read by
/// decoding the frame's first block, as far as the head.
fn stage_head_fits(layout: &Layout, config: &Config<'_>, data: &[u8]) -> bool {
    let (Some(len), Some(frame), Some(value_bytes)) =
        (data.get(..8), data.get(8..), layout.dtype.natural_size())
    else {
        return false;
    };
    let stage_len = u64::from_le_bytes(len.try_into().unwrap());
    let count = element_count(layout);
    let quantizer_fits =
        |q: &QuantizerHead, end: usize| q.fits(count, value_bytes as u64, end as u64, stage_len);
    match config.algorithm() {
        ALGO_INTERP => {
            let dims = fit_rank(&layout.shape, MAX_RANK);
            let orders: usize = (1..=dims.len()).product();
            InterpHeader::read(frame, dims.len()).is_some_and(|h| {
                h.dims.iter().map(|&d| d as usize).eq(dims.iter().copied())
                    && h.block_size == INTERP_BLOCK_SIZE
                    && (0..2).contains(&h.interpolator)
                    && usize::try_from(h.direction).is_ok_and(|d| d < orders)
                    && h.anchor_stride == interp_anchor_stride(&dims)
                    && quantizer_fits(&h.quantizer, InterpHeader::len(dims.len()))
            })
        }
        ALGO_LORENZO_REG if config.flags() == FIRST_ORDER_LORENZO_FLAGS => {
            stage_head(frame, QuantizerHead::LEN).is_some_and(|head| {
                quantizer_fits(&QuantizerHead::read(&head, &mut 0), QuantizerHead::LEN)
            })
        }
        ALGO_LORENZO_REG => series_head_fits(frame, stage_len, count),
        _ => true,
    }
}

/// Whether the series pipeline's stage opens as SZ3 reads it: the count of its per-block
/// predictor selections (u64), which SZ3 allocates and then indexes once per block of
/// [`lorenzo_block`]`(1)` values unchecked, so it must be exactly one per block (as SZ3
/// writes it: a count of 0 or too few had it read past them); then their Huffman tree,
/// which is not read (as the coded data is not), and the quantiser: the stage must hold
/// the count and a quantiser head at least (an empty stage had SZ3 read both past its
/// buffer).
fn series_head_fits(frame: &[u8], stage_len: u64, count: u64) -> bool {
    const COUNT_LEN: usize = 8;
    let blocks = count.div_ceil(lorenzo_block(1) as u64);
    let end = (COUNT_LEN + QuantizerHead::LEN) as u64;
    stage_len >= end
        && stage_head(frame, COUNT_LEN)
            .is_some_and(|head| u64::from_le_bytes(head.try_into().unwrap()) == blocks)
}

/// The longest lossless-stage input [`lossless_stage_fits`] takes from a lossy pipeline
/// for a chunk of `chunk_bytes`.
fn lossy_stage_limit(chunk_bytes: u64) -> u64 {
    chunk_bytes.saturating_mul(8).saturating_add(16 << 20)
}

/// SZ3 3.3.2's pipelines (`ALGO` in its Config.hpp) that this build writes: its default
/// tunes between interpolation and Lorenzo with regression and stores the one it chose,
/// or stores the values through zstd alone where that is smaller; [`LORENZO_ONLY`] is
/// the Lorenzo pipeline.
const ALGO_LORENZO_REG: u8 = 0;
const ALGO_INTERP: u8 = 2;
const ALGO_LOSSLESS: u8 = 4;

/// Whether `data`, SZ3's compressed data for a chunk of `layout` under pipeline
/// `algorithm`, opens as SZ3's decoder expects to read it: the length of its lossless
/// stage's input (u64, what zstd decodes back), then a zstd frame declaring that length.
/// SZ3 decodes into a buffer of that length, which it allocates for a lossy pipeline (a
/// huge one is a null pointer it writes through) and which is the chunk's own for the
/// lossless one (a longer one overran it): so the length must be the chunk's bytes there,
/// and elsewhere at most 8 times them and 16 MiB, over the buffer SZ3 estimates for a
/// lossy pipeline's input (twice its values, unpredictable ones and coding tables).
fn lossless_stage_fits(layout: &Layout, algorithm: u8, data: &[u8]) -> bool {
    let Some((len, frame)) = data.split_at_checked(8) else {
        return false;
    };
    let len = u64::from_le_bytes(len.try_into().unwrap());
    let Some(value_bytes) = layout.dtype.natural_size() else {
        return false;
    };
    let chunk_bytes = element_count(layout).saturating_mul(value_bytes as u64);
    let fits = match algorithm {
        ALGO_LOSSLESS => len == chunk_bytes,
        ALGO_LORENZO_REG | ALGO_INTERP => len <= lossy_stage_limit(chunk_bytes),
        _ => false,
    };
    fits && matches!(zstd::zstd_safe::get_frame_content_size(frame), Ok(Some(n)) if n == len)
}

/// Whether the zstd frame after the lossless stage's length in `data` is whole and all
/// there is, and decodes without error to exactly that length. SZ3 ignores zstd's errors:
/// a cut frame left a lossy pipeline parsing memory zstd never filled (an exception Rust
/// cannot catch: an abort) and the lossless one returning zeros for the values it lost;
/// so did a whole frame declaring the length whose blocks hold fewer bytes (the blocks'
/// headers add up, their contents do not). Decoded into nothing, a pass of zstd over a
/// stage SZ3 then decodes again (a small share of SZ3's decode).
fn one_whole_frame(data: &[u8]) -> bool {
    let Some((len, frame)) = data.split_at_checked(8) else {
        return false;
    };
    let len = u64::from_le_bytes(len.try_into().unwrap());
    let whole = zstd::zstd_safe::find_frame_compressed_size(frame) == Ok(frame.len());
    whole
        && zstd::stream::read::Decoder::with_buffer(frame).is_ok_and(|decoder| {
            let mut decoded = std::io::Read::take(decoder, len.saturating_add(1));
            std::io::copy(&mut decoded, &mut std::io::sink()).is_ok_and(|n| n == len)
        })
}

/// Compact SZ3 payloads: the configuration's value count was left out.
const LEFT_OUT_COUNT: u8 = 1;
/// The configuration's absolute bound was left out.
const LEFT_OUT_BOUND: u8 = 2;
/// The lossless stage's input length is a varint.
const VARINT_LOSSLESS_LEN: u8 = 4;

/// zstd's frame magic, which follows the lossless stage's u64 input length.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Values in a chunk of `layout`.
fn element_count(layout: &Layout) -> u64 {
    layout.shape.iter().product::<usize>() as u64
}

/// SZ3 3.3.2's serialised configuration (`Config::save`): its length (u8), the rank (u8),
/// the dims' bit width (u8), the dims packed at that width, the value count (u64), the
/// algorithm (u8), the error-bound mode (u8), for absolute mode (0) the bound (f64), then
/// flags and parameters this build keeps as they are.
struct Config<'a> {
    bytes: &'a [u8],
    /// Offset of the value count.
    count_at: usize,
}

/// The error-bound mode of an absolute bound.
const EB_ABS: u8 = 0;

/// The predictor flags of SZ3's Lorenzo pipeline as its default chooses it for series:
/// first- and second-order Lorenzo, no regression.
const LORENZO_FLAGS: u8 = 0xc0;

/// The predictor flags of [`LORENZO_ONLY`]: first-order Lorenzo alone.
const FIRST_ORDER_LORENZO_FLAGS: u8 = 0x80;

/// The block size SZ3's Lorenzo pipeline is given for a rank (the `sz3` crate's default,
/// SZ3's own).
fn lorenzo_block(rank: u8) -> i32 {
    match rank {
        1 => 128,
        2 => 16,
        _ => 6,
    }
}

/// Bytes of an absolute-bound configuration from its value count on: the count (u64),
/// the algorithm and the bound mode (u8 each), the bound (f64), the flags (u8), the data
/// type (u8), the quantisation bins and block size (i32 each) and the prediction dim (u8).
const ABS_CONFIG_TAIL: usize = 8 + 1 + 1 + 8 + 1 + 1 + 4 + 4 + 1;

impl<'a> Config<'a> {
    /// The configuration `bytes` must be exactly, as this build writes it: SZ3 reads the
    /// rank as a signed char and allocates that many dims (a rank byte of 0x80 or more
    /// asked for 2^64 − 128, an exception Rust cannot catch: an abort), and after the
    /// bound mode it reads the bound and the flags whatever the length byte says (a cut
    /// configuration was read past the payload's end). So the rank is 1 to 4, the dims'
    /// width 1 to 64 bits, the mode absolute and the length the fields' sum.
    fn parse(bytes: &'a [u8]) -> Option<Config<'a>> {
        let count_at = Config::count_offset(bytes)?;
        let (rank, width) = (usize::from(bytes[1]), bytes[2]);
        let framed = (1..=MAX_RANK).contains(&rank)
            && (1..=64).contains(&width)
            && bytes.len() == usize::from(bytes[0])
            && bytes.len() == count_at + ABS_CONFIG_TAIL
            && bytes[count_at + 9] == EB_ABS;
        framed.then_some(Config { bytes, count_at })
    }

    /// Offset of the value count: after the length, rank, bit width and packed dims.
    fn count_offset(bytes: &[u8]) -> Option<usize> {
        let (rank, width) = (*bytes.get(1)? as usize, *bytes.get(2)? as usize);
        Some(3 + (rank * width).div_ceil(8))
    }

    fn count(&self) -> Option<u64> {
        let at = self.count_at;
        Some(u64::from_le_bytes(self.bytes[at..at + 8].try_into().ok()?))
    }

    /// The pipeline SZ3 ran (`ALGO_*`).
    fn algorithm(&self) -> u8 {
        self.bytes[self.count_at + 8]
    }

    /// Whether the predictor settings SZ3's Lorenzo pipeline builds its decoder from are
    /// the ones this build writes: SZ3's default chooses that pipeline for series only,
    /// with both Lorenzo predictors (flags 0xc0) in blocks of 128, and [`LORENZO_ONLY`]
    /// runs first-order Lorenzo alone (0x80) in blocks of the size its rank is given
    /// ([`lorenzo_block`]). With every predictor off SZ3 throws (an abort), with a block
    /// size of 0 it loops forever, and with other flags or sizes it reads the predictors'
    /// selections past their end. The other pipelines read none of these fields.
    fn pipeline_as_written(&self) -> bool {
        let at = self.count_at;
        let rank = self.bytes[1];
        let block = i32::from_le_bytes(self.bytes[at + 24..at + 28].try_into().unwrap());
        let flags = self.flags();
        self.algorithm() != ALGO_LORENZO_REG
            || (rank == 1 && flags == LORENZO_FLAGS && block == 128)
            || (flags == FIRST_ORDER_LORENZO_FLAGS && block == lorenzo_block(rank))
    }

    /// The Lorenzo pipeline's predictor flags.
    fn flags(&self) -> u8 {
        self.bytes[self.count_at + 18]
    }

    /// The bound's bits, in absolute-error mode.
    fn abs_bound(&self) -> Option<u64> {
        let at = self.count_at + 10;
        (self.bytes[self.count_at + 9] == EB_ABS)
            .then(|| self.bytes.get(at..at + 8))
            .flatten()
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }

    /// The bytes without the fields `mask` leaves out.
    fn without(&self, mask: u8) -> Vec<u8> {
        let at = self.count_at;
        let mut out = self.bytes[..at].to_vec();
        if mask & LEFT_OUT_COUNT == 0 {
            out.extend_from_slice(&self.bytes[at..at + 8]);
        }
        out.extend_from_slice(&self.bytes[at + 8..at + 10]);
        let rest = &self.bytes[at + 10..];
        out.extend_from_slice(match mask & LEFT_OUT_BOUND {
            0 => rest,
            _ => &rest[8..],
        });
        out
    }

    /// Reverses [`Config::without`] at the front of `stored`: the whole configuration,
    /// and what follows it.
    fn rebuild(stored: &[u8], mask: u8, count: u64, bound: f64) -> Option<(Vec<u8>, &[u8])> {
        let at = Config::count_offset(stored)?;
        let left_out =
            8 * (usize::from(mask & LEFT_OUT_COUNT != 0) + usize::from(mask & LEFT_OUT_BOUND != 0));
        let (kept, after) =
            stored.split_at_checked(usize::from(stored[0]).checked_sub(left_out)?)?;
        let mut config = kept.get(..at)?.to_vec();
        let mut rest = &kept[at..];
        if mask & LEFT_OUT_COUNT != 0 {
            config.extend_from_slice(&count.to_le_bytes());
        } else {
            config.extend_from_slice(rest.get(..8)?);
            rest = &rest[8..];
        }
        config.extend_from_slice(rest.get(..2)?);
        if mask & LEFT_OUT_BOUND != 0 {
            config.extend_from_slice(&bound.to_le_bytes());
        }
        config.extend_from_slice(&rest[2..]);
        Some((config, after))
    }
}

fn encode_typed<T: Element + sz3::SZ3Compressible>(
    values: &[T],
    dims: &[usize],
    bound: f64,
    only: Option<Pipeline>,
) -> Result<(Vec<u8>, Option<Pipeline>), CodecError> {
    let mut builder = sz3::DimensionedData::build(&values);
    for &d in dims {
        builder = builder.dim(d).map_err(|e| library_error(NAME, e))?;
    }
    let view = builder.finish().map_err(|e| library_error(NAME, e))?;
    // Each payload comes in a buffer of SZ3's size bound (more than the chunk's bytes):
    // shrunk, the one kept does not hold that while the other runs, nor after.
    let compress = |pipeline| {
        let algorithm = match pipeline {
            Pipeline::Default => sz3::CompressionAlgorithm::InterpolationLorenzo,
            Pipeline::FirstOrderLorenzo => LORENZO_ONLY,
        };
        let config =
            sz3::Config::new(sz3::ErrorBound::Absolute(bound)).compression_algorithm(algorithm);
        let mut payload =
            sz3::compress_with_config(&view, &config).map_err(|e| library_error(NAME, e))?;
        payload.shrink_to_fit();
        Ok::<_, CodecError>(payload)
    };
    if let Some(pipeline) = only {
        return Ok((compress(pipeline)?, Some(pipeline)));
    }
    let tuned = compress(Pipeline::Default)?;
    let lorenzo = compress(Pipeline::FirstOrderLorenzo)?;
    Ok(match lorenzo.len().cmp(&tuned.len()) {
        std::cmp::Ordering::Less => (lorenzo, Some(Pipeline::FirstOrderLorenzo)),
        std::cmp::Ordering::Equal => (tuned, None),
        std::cmp::Ordering::Greater => (tuned, Some(Pipeline::Default)),
    })
}

/// SZ3's Lorenzo pipeline with its first-order predictor alone, which this codec also
/// runs beside SZ3's default (which tunes its interpolation, and takes Lorenzo with
/// regression for series only), keeping the smaller payload at the same bound. SZ3's
/// default misjudges many fields: over ../shared/data the smaller of the two stored
/// 1.28 / 1.23 / 1.26× less than the default alone at the bound that meets 40 / 60 /
/// 80 dB (geometric mean over 42 arrays; 6–10× on curvilinear grid coordinates, 1.8×
/// on particle positions), for a second SZ3 compression (docs/bench.md, "SZ3's two
/// pipelines").
const LORENZO_ONLY: sz3::CompressionAlgorithm = sz3::CompressionAlgorithm::LorenzoRegression {
    lorenzo: true,
    lorenzo_second_order: false,
    regression: false,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::for_each_case;
    use crate::features::Extent;
    use crate::synth::Kind;

    #[test]
    fn payloads_with_a_bad_frame_are_refused_before_sz3_reads_them() {
        let cases = [(vec![12, 20, 24], Kind::Spectral { slope: 3.0 })];
        for_each_case(&cases, |shape, data, layout, bound| {
            let payload = Sz3.encode(data, shape, bound).unwrap();
            assert!(Sz3.decode(&payload, layout, bound).is_ok());
            let refused = |bytes: &[u8]| Sz3.decode(bytes, layout, bound).is_err();
            // A wrong magic number or version: SZ3 throws, which would abort.
            let mut magic = payload.clone();
            magic[0] ^= 0xff;
            assert!(refused(&magic));
            // A compressed-data length past the payload: SZ3 reads its configuration there.
            for size in [u64::MAX, payload.len() as u64, 0] {
                let mut long = payload.clone();
                long[8..16].copy_from_slice(&size.to_le_bytes());
                assert!(refused(&long), "{size}");
            }
            // Too short to hold a frame, or cut inside the configuration.
            assert!(refused(&payload[..10]));
            assert!(refused(&payload[..payload.len() - 1]));
            // A configuration for another number of values than the chunk holds.
            let smaller = Layout::of(&data, &[6, 20, 24]);
            assert!(Sz3.decode(&payload, &smaller, bound).is_err());
        });
    }

    #[test]
    fn lossless_stages_sz3_would_overrun_are_refused_before_it_reads_them() {
        let cases = [(vec![12, 20, 24], Kind::Noise)];
        for_each_case(&cases, |_, data, layout, bound| {
            let payload = Sz3.encode(data, &layout.shape, bound).unwrap();
            let body = &payload[SZ3_FRAME.len()..];
            let size = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
            let config = &body[8 + size..];
            let count_at = Config::parse(config).unwrap().count_at;
            // The payload with pipeline `algorithm`, whose lossless stage declares `len`
            // bytes and holds `content`.
            let craft = |algorithm: u8, len: usize, content: &[u8]| {
                let mut coded = (len as u64).to_le_bytes().to_vec();
                coded.extend(zstd::bulk::compress(content, 3).unwrap());
                let mut config = config.to_vec();
                config[count_at + 8] = algorithm;
                let mut out = SZ3_FRAME.to_vec();
                out.extend((coded.len() as u64).to_le_bytes());
                out.extend(coded);
                out.extend(config);
                out
            };
            let refused = |bytes: &[u8]| Sz3.decode(bytes, layout, bound).is_err();
            let raw = data.as_bytes();
            // SZ3's lossless pipeline holding the chunk's bytes decodes them.
            let exact = Sz3.decode(&craft(ALGO_LOSSLESS, raw.len(), raw), layout, bound);
            assert_eq!(exact.unwrap().view().as_bytes(), raw);
            // Declaring more than the chunk holds: SZ3 wrote it past the chunk's buffer.
            let longer = [raw, &[0xab; 4096][..]].concat();
            assert!(refused(&craft(ALGO_LOSSLESS, longer.len(), &longer)));
            // A lossy pipeline's stage of another length than its zstd frame's.
            assert!(refused(&craft(ALGO_INTERP, raw.len() + 1, raw)));
            // Or longer than SZ3 writes for one (its buffer is allocated at that length):
            // a frame header declaring `len` bytes (single segment, 8-byte size).
            let declaring = |len: u64| {
                let mut data = len.to_le_bytes().to_vec();
                data.extend([0x28, 0xb5, 0x2f, 0xfd, 0xe0]);
                data.extend(len.to_le_bytes());
                data
            };
            let most = lossy_stage_limit(raw.len() as u64);
            assert!(lossless_stage_fits(layout, ALGO_INTERP, &declaring(most)));
            for len in [most + 1, 1 << 40] {
                assert!(
                    !lossless_stage_fits(layout, ALGO_INTERP, &declaring(len)),
                    "{len}"
                );
            }
            // A pipeline this build never writes.
            for algorithm in [1, 3, 5, 6, 0xff] {
                assert!(refused(&craft(algorithm, raw.len(), raw)), "{algorithm}");
            }
            assert!(Sz3.decode(&payload, layout, bound).is_ok());
        });
    }

    #[test]
    fn configurations_sz3_would_misread_are_refused_before_it_reads_them() {
        let cases = [(vec![12, 20, 24], Kind::Noise), (vec![2000], Kind::Noise)];
        for_each_case(&cases, |_, data, layout, bound| {
            let payload = Sz3.encode(data, &layout.shape, bound).unwrap();
            let body = &payload[SZ3_FRAME.len()..];
            let size = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
            let (head, config) = payload.split_at(SZ3_FRAME.len() + 8 + size);
            let count_at = Config::parse(config).unwrap().count_at;
            let with = |config: Vec<u8>| [head, &config[..]].concat();
            let refused = |bytes: &[u8]| Sz3.decode(bytes, layout, bound).is_err();
            assert!(!refused(&with(config.to_vec())));
            // Rank 200 with zero-bit dims, the count right after: the count and every
            // later field where SZ3 looks for them, and a rank it reads as a negative
            // char (a vector of 2^64 − 56 dims: an abort).
            let mut negative = vec![0, 0xc8, 0];
            negative.extend_from_slice(&config[count_at..]);
            negative[0] = negative.len() as u8;
            assert!(refused(&with(negative)));
            // Rank 128 of one-bit dims, every other field in place: the rank alone is wrong.
            let mut one_bit = vec![0, 0x80, 1];
            one_bit.extend_from_slice(&[0xff; 16]);
            one_bit.extend_from_slice(&config[count_at..]);
            one_bit[0] = one_bit.len() as u8;
            assert!(refused(&with(one_bit)));
            // Other ranks, beyond what this build folds to, or dims of 0 or 65 bits.
            for (at, byte) in [(1, 0x80), (1, 5), (1, 0), (2, 0), (2, 65)] {
                let mut crafted = config.to_vec();
                crafted[at] = byte;
                assert!(refused(&with(crafted)), "byte {at} = {byte:#x}");
            }
            // Cut after the bound mode, the length byte saying so: SZ3 read the bound and
            // the flags past the payload's end.
            let mut cut = config[..count_at + 10].to_vec();
            cut[0] = cut.len() as u8;
            assert!(refused(&with(cut)));
            // Another bound mode (relative, 1), whose fields this build never writes.
            let mut relative = config.to_vec();
            relative[count_at + 9] = 1;
            assert!(refused(&with(relative)));
        });
    }

    /// `payload` (as [`Sz3::encode`] writes it) taken apart: its frame and the lossless
    /// stage's length, the compressed data, and the configuration.
    fn parts(payload: &[u8]) -> (&[u8], &[u8], &[u8]) {
        let body = &payload[SZ3_FRAME.len()..];
        let size = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
        let (data, config) = body[8..].split_at(size);
        (&payload[..SZ3_FRAME.len()], data, config)
    }

    /// `frame`, `data` and `config` put back together as a payload.
    fn joined(frame: &[u8], data: &[u8], config: &[u8]) -> Vec<u8> {
        [frame, &(data.len() as u64).to_le_bytes(), data, config].concat()
    }

    /// `data` through SZ3's `pipeline` at a thousandth of its range, and that bound.
    fn at_a_thousandth(data: Samples<'_>, shape: &[usize], pipeline: Pipeline) -> (Vec<u8>, f64) {
        let bound = crate::chunk::codec_bound(1e-3 * Extent::of(data).range());
        let (payload, _) = Sz3.encode_with(data, shape, bound, Some(pipeline)).unwrap();
        (payload, bound)
    }

    /// The chunk shape the head tests craft payloads for.
    const HEAD_SHAPE: [usize; 3] = [12, 20, 24];

    /// A smooth field of [`HEAD_SHAPE`].
    fn head_field() -> Vec<f64> {
        crate::synth::generate(Kind::Spectral { slope: 3.0 }, &HEAD_SHAPE, 3)
    }

    /// `payload` with its lossless stage's bytes from `at` on replaced by `bytes`.
    fn with_stage_bytes(payload: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
        let (frame, coded, config) = parts(payload);
        let len = u64::from_le_bytes(coded[..8].try_into().unwrap()) as usize;
        let mut stage = zstd::bulk::decompress(&coded[8..], len).unwrap();
        stage[at..at + bytes.len()].copy_from_slice(bytes);
        let mut coded = (stage.len() as u64).to_le_bytes().to_vec();
        coded.extend(zstd::bulk::compress(&stage, 3).unwrap());
        joined(frame, &coded, config)
    }

    #[test]
    fn first_order_lorenzo_heads_sz3_would_misread_are_refused_before_it_reads_them() {
        let values = head_field();
        let data = Samples::F64(&values);
        let layout = Layout::of(&data, &HEAD_SHAPE);
        let (payload, bound) = at_a_thousandth(data, &HEAD_SHAPE, Pipeline::FirstOrderLorenzo);
        let c = Config::parse(parts(&payload).2).unwrap();
        assert_eq!(
            (c.algorithm(), c.flags()),
            (ALGO_LORENZO_REG, FIRST_ORDER_LORENZO_FLAGS)
        );
        assert!(Sz3.decode(&payload, &layout, bound).is_ok());
        let same = with_stage_bytes(&payload, 0, &[LINEAR_QUANTIZER_UID]);
        assert!(well_framed(&layout, &same));
        // Another quantiser (SZ3 throws), no radius, more unpredicted values than the
        // chunk holds or the stage (SZ3 asserts; a huge count aborted on its allocation).
        let bad = [
            (0, vec![0b11]),
            (9, 0i32.to_le_bytes().to_vec()),
            (13, 5761u64.to_le_bytes().to_vec()),
            (13, 5760u64.to_le_bytes().to_vec()),
            (13, u64::MAX.to_le_bytes().to_vec()),
        ];
        for (at, bytes) in bad {
            let crafted = with_stage_bytes(&payload, at, &bytes);
            assert!(!well_framed(&layout, &crafted), "{at}: {bytes:?}");
            assert!(Sz3.decode(&crafted, &layout, bound).is_err());
        }
    }

    #[test]
    fn interpolation_heads_sz3_would_misread_are_refused_before_it_reads_them() {
        let values = head_field();
        let data = Samples::F64(&values);
        let layout = Layout::of(&data, &HEAD_SHAPE);
        let (payload, bound) = at_a_thousandth(data, &HEAD_SHAPE, Pipeline::Default);
        let (_, coded, config) = parts(&payload);
        assert_eq!(Config::parse(config).unwrap().algorithm(), ALGO_INTERP);
        let head = InterpHeader::read(&coded[8..], 3).unwrap();
        assert_eq!(head.dims, [12, 20, 24]);
        assert!(well_framed(&layout, &payload));
        let crafted = |at: usize, bytes: &[u8]| with_stage_bytes(&payload, at, bytes);
        assert!(well_framed(&layout, &crafted(0, &12u64.to_le_bytes())));
        // Larger dims (SZ3 wrote past the chunk's buffer), another block size, an
        // interpolator or order of dims past SZ3's lists, another anchor stride than the
        // 0 it writes for these dims (a smaller one restored anchors past its unpredicted
        // values), another quantiser (SZ3 throws), no radius, more unpredicted values than
        // the chunk holds or the stage (SZ3 asserts).
        let unpredicted = 24 + 4 + 4 + 4 + 8 + 16 + 1 + 8 + 4;
        let bad = [
            (0, 24u64.to_le_bytes().to_vec()),
            (16, 48u64.to_le_bytes().to_vec()),
            (24, 31u32.to_le_bytes().to_vec()),
            (24, 30u32.to_le_bytes().to_vec()),
            (28, 2i32.to_le_bytes().to_vec()),
            (32, 6i32.to_le_bytes().to_vec()),
            (32, (-1i32).to_le_bytes().to_vec()),
            (36, 24u64.to_le_bytes().to_vec()),
            (36, 1u64.to_le_bytes().to_vec()),
            (36, 32u64.to_le_bytes().to_vec()),
            (60, vec![0b11]),
            (unpredicted - 4, 0i32.to_le_bytes().to_vec()),
            (unpredicted, 5761u64.to_le_bytes().to_vec()),
            (unpredicted, 5760u64.to_le_bytes().to_vec()),
        ];
        for (at, bytes) in bad {
            let payload = crafted(at, &bytes);
            assert!(!well_framed(&layout, &payload), "{at}: {bytes:?}");
            assert!(Sz3.decode(&payload, &layout, bound).is_err());
        }
        // Every rank and type SZ3 interpolates reads back through the check: a short series
        // (a long one takes Lorenzo), dims of one, dims past the anchor stride, five dims
        // folded to four.
        let mut interpolated = 0;
        let shapes = [
            vec![200usize],
            vec![70, 90],
            vec![1, 40, 50],
            vec![12, 20, 40],
            vec![6, 7, 40, 50],
            vec![2, 3, 7, 20, 30],
        ];
        for shape in shapes {
            let values = crate::synth::generate(Kind::Spectral { slope: 3.0 }, &shape, 4);
            let narrow: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            for data in [Samples::F64(&values), Samples::F32(&narrow)] {
                let layout = Layout::of(&data, &shape);
                let (payload, bound) = at_a_thousandth(data, &shape, Pipeline::Default);
                let (_, coded, config) = parts(&payload);
                if Config::parse(config).unwrap().algorithm() == ALGO_INTERP {
                    let dims = fit_rank(&shape, MAX_RANK);
                    let head = InterpHeader::read(&coded[8..], dims.len()).unwrap();
                    let expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
                    assert_eq!(head.dims, expected);
                    assert!(Sz3.decode(&payload, &layout, bound).is_ok(), "{shape:?}");
                    interpolated += 1;
                }
            }
        }
        eprintln!("{interpolated} of 12 payloads interpolated");
        assert!(interpolated >= 10, "{interpolated}");
    }

    #[test]
    fn lorenzo_settings_sz3_would_misread_are_refused_before_it_reads_them() {
        let shape = [50_000];
        let values = crate::synth::generate(Kind::Spectral { slope: 1.0 }, &shape, 7);
        let data = Samples::F64(&values);
        let layout = Layout::of(&data, &shape);
        let payload = Sz3
            .encode(data, &shape, crate::chunk::codec_bound(1e-3))
            .unwrap();
        let (frame, coded, config) = parts(&payload);
        let c = Config::parse(config).unwrap();
        assert_eq!(
            c.algorithm(),
            ALGO_LORENZO_REG,
            "SZ3 chose another pipeline"
        );
        assert!(well_framed(&layout, &payload));
        let at = c.count_at;
        // Every predictor off (SZ3 throws), second-order Lorenzo alone or regression too
        // (another decoder), and block sizes other than SZ3's for a series (0 loops
        // forever).
        let flags = [0x00u8, 0x40, 0xe0].map(|f| (at + 18, f.to_le_bytes().to_vec()));
        let blocks = [0i32, 5, 127].map(|b| (at + 24, b.to_le_bytes().to_vec()));
        for (offset, bytes) in flags.into_iter().chain(blocks) {
            let mut crafted = config.to_vec();
            crafted[offset..offset + bytes.len()].copy_from_slice(&bytes);
            let crafted = joined(frame, coded, &crafted);
            assert!(!well_framed(&layout, &crafted), "{offset}: {bytes:?}");
        }
    }

    #[test]
    fn the_smaller_of_sz3s_default_and_first_order_lorenzo_is_kept() {
        let shape = [24, 28, 32];
        let values = crate::synth::stretched_grid(&shape, 7);
        let data = Samples::F32(&values);
        let layout = Layout::of(&data, &shape);
        let (lo, hi) = values
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let range = f64::from(hi - lo);
        let mut kept = std::collections::BTreeSet::new();
        for bound in [1e-2, 1e-4, 1e-6].map(|b| range * b) {
            let payload = Sz3.encode(data, &shape, bound).unwrap();
            let (frame, coded, config) = parts(&payload);
            let c = Config::parse(config).unwrap();
            let flags = config[c.count_at + 18];
            kept.insert((c.algorithm(), flags));
            // No larger than SZ3's default alone.
            let mut builder = sz3::DimensionedData::build(&values);
            for d in shape {
                builder = builder.dim(d).unwrap();
            }
            let view = builder.finish().unwrap();
            let default = sz3::compress(&view, sz3::ErrorBound::Absolute(bound)).unwrap();
            assert!(payload.len() <= default.len(), "{bound}");
            // Compacted as any SZ3 payload, read back within the bound, and refused with
            // other Lorenzo settings.
            let compact = Sz3.compact(&layout, bound, &payload).unwrap();
            assert!(compact.len() < payload.len());
            assert_eq!(Sz3.expand(&layout, bound, &compact).unwrap(), payload);
            let back = Sz3.decode(&payload, &layout, bound).unwrap();
            let SampleBuf::F32(back) = back else {
                panic!("f32 came back as another type")
            };
            let worst = values
                .iter()
                .zip(&back)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .fold(0.0, f64::max);
            assert!(worst <= bound * (1.0 + 1e-6), "{worst} over {bound}");
            if c.algorithm() == ALGO_LORENZO_REG {
                assert_eq!(flags, FIRST_ORDER_LORENZO_FLAGS);
                let at = c.count_at;
                for (offset, byte) in [(at + 18, 0xc0u8), (at + 18, 0xa0), (at + 24, 16)] {
                    let mut crafted = config.to_vec();
                    crafted[offset] = byte;
                    let crafted = joined(frame, coded, &crafted);
                    assert!(!well_framed(&layout, &crafted), "{offset}: {byte:#x}");
                }
            }
        }
        assert!(
            kept.contains(&(ALGO_LORENZO_REG, FIRST_ORDER_LORENZO_FLAGS)),
            "first-order Lorenzo never kept on grid coordinates: {kept:?}"
        );
    }

    #[test]
    fn a_cut_or_padded_zstd_stage_is_refused_before_sz3_reads_it() {
        let cases = [
            (vec![12, 20, 24], Kind::Spectral { slope: 3.0 }),
            (vec![50_000], Kind::Spectral { slope: 1.0 }),
            (vec![48, 40], Kind::Noise),
        ];
        let mut algorithms = std::collections::BTreeSet::new();
        for_each_case(&cases, |shape, data, layout, bound| {
            let payload = Sz3.encode(data, shape, bound).unwrap();
            assert!(well_framed(layout, &payload));
            let (frame, coded, config) = parts(&payload);
            algorithms.insert(Config::parse(config).unwrap().algorithm());
            let (length, zstd) = coded.split_at(8);
            // The zstd frame cut by a byte or by half, or followed by another frame (an
            // empty one): its declared content size is unchanged throughout.
            let empty = zstd::bulk::compress(&[], 1).unwrap();
            for stage in [
                &zstd[..zstd.len() - 1],
                &zstd[..zstd.len() / 2],
                &[zstd, &empty[..]].concat()[..],
            ] {
                let crafted = joined(frame, &[length, stage].concat(), config);
                assert!(!well_framed(layout, &crafted), "{shape:?} {bound}");
                assert!(Sz3.decode(&crafted, layout, bound).is_err());
            }
            // A whole frame declaring the stage's length (single segment, 8-byte size)
            // whose one raw block holds the first half of the stage: the head reads right,
            // the rest SZ3 would parse from memory zstd never filled.
            let len = u64::from_le_bytes(length.try_into().unwrap());
            let stage = zstd::bulk::decompress(zstd, len as usize).unwrap();
            let half = &stage[..stage.len() / 2];
            let mut short = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
            short.extend(len.to_le_bytes());
            short.extend(((half.len() as u32) << 3 | 1).to_le_bytes()[..3].to_vec());
            short.extend(half);
            let crafted = joined(frame, &[length, &short].concat(), config);
            let data = &crafted[SZ3_FRAME.len() + 8..][..8 + short.len()];
            assert_eq!(
                zstd::zstd_safe::find_frame_compressed_size(&data[8..]),
                Ok(short.len())
            );
            assert!(!well_framed(layout, &crafted), "{shape:?} {bound}");
            assert!(Sz3.decode(&crafted, layout, bound).is_err());
        });
        // The lossy pipelines and zstd alone.
        let all = [ALGO_LORENZO_REG, ALGO_INTERP, ALGO_LOSSLESS];
        assert_eq!(algorithms, all.into_iter().collect());
    }

    #[test]
    fn series_heads_sz3_would_misread_are_refused_before_it_reads_them() {
        let shape = [50_000];
        let values = crate::synth::generate(Kind::Spectral { slope: 1.0 }, &shape, 7);
        let data = Samples::F64(&values);
        let layout = Layout::of(&data, &shape);
        // SZ3's default takes Lorenzo for a long series at this bound.
        let bound = crate::chunk::codec_bound(1e-3);
        let (payload, _) = Sz3
            .encode_with(data, &shape, bound, Some(Pipeline::Default))
            .unwrap();
        let (frame, _, config) = parts(&payload);
        let c = Config::parse(config).unwrap();
        let flags = config[c.count_at + 18];
        assert_eq!((c.algorithm(), flags), (ALGO_LORENZO_REG, LORENZO_FLAGS));
        assert!(well_framed(&layout, &payload));
        assert!(Sz3.decode(&payload, &layout, bound).is_ok());
        // SZ3 writes one selection per block of 128 values.
        let (_, coded, _) = parts(&payload);
        let stage = zstd::bulk::decompress(&coded[8..], 1 << 24).unwrap();
        assert_eq!(stage[..8], 391u64.to_le_bytes());
        // An empty stage (SZ3 read its selection count and quantiser past it), no
        // selections or one too few (SZ3 indexed them per block past their end), more
        // than it allocates.
        let mut empty = 0u64.to_le_bytes().to_vec();
        empty.extend(zstd::bulk::compress(&[], 3).unwrap());
        let crafted = [
            joined(frame, &empty, config),
            with_stage_bytes(&payload, 0, &0u64.to_le_bytes()),
            with_stage_bytes(&payload, 0, &390u64.to_le_bytes()),
            with_stage_bytes(&payload, 0, &392u64.to_le_bytes()),
            with_stage_bytes(&payload, 0, &u64::MAX.to_le_bytes()),
        ];
        for (i, crafted) in crafted.iter().enumerate() {
            assert!(!well_framed(&layout, crafted), "{i}");
            assert!(Sz3.decode(crafted, &layout, bound).is_err(), "{i}");
        }
    }

    #[test]
    fn compact_payloads_expand_to_the_payload() {
        let cases = [
            (vec![12, 20, 24], Kind::Spectral { slope: 3.0 }),
            (vec![2, 6, 20, 24], Kind::Noise),
            (vec![48, 40], Kind::Spectral { slope: 2.0 }),
            (vec![2000], Kind::Noise),
        ];
        for_each_case(&cases, |shape, data, layout, bound| {
            let payload = Sz3.encode(data, shape, bound).unwrap();
            let compact = Sz3.compact(layout, bound, &payload).unwrap();
            // The frame, S, the count and the bound go, the lossless length shrinks by at
            // least 4, and the mask byte comes in.
            assert!(
                compact.len() + 8 + 8 + 8 + 8 + 4 - 1 <= payload.len(),
                "{shape:?} {bound}: {} of {}",
                compact.len(),
                payload.len()
            );
            assert_eq!(compact[0], 7, "{shape:?} {bound}");
            assert_eq!(Sz3.expand(layout, bound, &compact).unwrap(), payload);
            // Another bound in the header keeps the configuration's own.
            let other = f64::from((bound as f32) * 2.0);
            let kept = Sz3.compact(layout, other, &payload).unwrap();
            assert_eq!(kept[0], 5);
            assert_eq!(Sz3.expand(layout, other, &kept).unwrap(), payload);
            assert_ne!(Sz3.expand(layout, other, &compact).unwrap(), payload);
            assert!(Sz3.expand(layout, bound, &compact[..2]).is_none());
            assert!(Sz3.compact(layout, bound, &payload[..30]).is_none());
        });
    }
}
