//! The self-describing chunk: header (layout in [`crate::wire`]) + codec payload.
//!
//! [`encode`] and [`decode`] are the only functions that read or write chunk bytes.
//! Decoding needs nothing but the chunk: no model, no onnxruntime, no HDF5 metadata.

use half::f16;

use crate::codec::{codec_for, CodecError};
use crate::padding::{self, Padding};
use crate::samples::{Element, Layout, SampleBuf, Samples};
use crate::settings::Settings;
use crate::wire::{
    self, ext_flags, put_varint, quality_record, CodecId, DType, Mode, TargetKind, VarintError,
};

/// Why a chunk could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// Shorter than its header says.
    #[error("chunk is truncated: {0}")]
    Truncated(&'static str),
    /// Does not start with the magic bytes.
    #[error("not a deepcq chunk (bad magic)")]
    BadMagic,
    /// Written by a newer format version.
    #[error(
        "chunk format version {0} is newer than this reader ({max}), or the chunk is damaged",
        max = wire::FORMAT_VERSION
    )]
    UnsupportedVersion(u8),
    /// A header field holds a value no writer produces.
    #[error("corrupt chunk header: {0}")]
    BadHeader(String),
    /// The checksum does not match: the bytes changed after writing.
    #[error("chunk checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
    /// The codec failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// What a chunk header says about its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Format version the chunk was written with.
    pub version: u8,
    /// Codec that produced the payload.
    pub codec: CodecId,
    /// Type, element size and shape of the values.
    pub layout: Layout,
    /// Absolute error bound given to the codec (0 for lossless).
    pub bound: f64,
    /// Byte length of the values the decoder hands back.
    pub original_len: u64,
    /// For edge chunks: the prefix block the payload holds and the value of the rest
    /// ([`crate::padding`]). Stored in the header's extension bytes.
    pub padding: Option<Padding>,
    /// What the chunk was written for, when the writer said so. Stored in the extension
    /// bytes; decoding never needs it.
    pub quality: Option<Quality>,
    /// The payload is stored compact: without the codec's container header (version 6,
    /// [`Codec::frame`](crate::codec::Codec::frame)), or as
    /// [`Codec::compact`](crate::codec::Codec::compact) makes it (version 7; version 8 for a
    /// SPERR stream coded to a size); decoding rebuilds the codec's payload.
    pub compact: bool,
    /// The dataset holds these values big-endian; the chunk holds them little-endian
    /// ([`ext_flags::BIG_ENDIAN`]).
    pub big_endian: bool,
    /// Values of the payload's block that hold the value marking missing data (the
    /// dataset's fill value, or the chunk's NaN or ±Inf, [`crate::encode::missing_marker`]),
    /// stored exactly beside the payload ([`ext_flags::MISSING`]).
    pub missing: Option<Missing>,
}

/// Which values of a chunk's payload block are missing data: they hold the dataset's fill
/// value, which the codec never saw (it got neighbouring values there, so that the fill
/// value neither widened the range the target is measured against nor cost bits), and the
/// decoder writes it back exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    /// Native (little-endian) bytes of the fill value.
    pub fill: Vec<u8>,
    /// One bit per value of the payload block, C order, lowest bit first: set where the
    /// value is missing.
    pub bits: Vec<u8>,
}

impl Missing {
    /// True when value `i` of the block is missing.
    pub fn is_missing(&self, i: usize) -> bool {
        self.bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
    }

    /// How many values of the block are missing.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The values of `block` that are not missing, in order: what a target over the real
    /// values measures.
    pub fn real_values(&self, block: Samples<'_>) -> SampleBuf {
        block.filtered(|i| !self.is_missing(i))
    }

    /// Bytes the record takes in a chunk header: the fill value, two varints and the
    /// bitmap's zstd frame.
    pub fn record_len(&self) -> usize {
        let mut varints = Vec::new();
        let packed = self.packed();
        put_varint(&mut varints, self.bits.len() as u64);
        put_varint(&mut varints, packed.len() as u64);
        self.fill.len() + varints.len() + packed.len()
    }

    /// The bitmap's zstd frame. The bitmap is mostly long runs (land, gaps): zstd takes it
    /// to a few bytes. It cannot fail on a buffer in memory; an empty frame would fail
    /// [`marked_missing`]'s read-back.
    fn packed(&self) -> Vec<u8> {
        zstd::bulk::compress(&self.bits, 3).unwrap_or_default()
    }

    /// Writes the fill value into every missing value of `values` (the decoded block).
    fn restore<T: Element>(&self, values: &mut [T]) {
        let fill = T::from_le_slice(&self.fill);
        for (i, v) in values.iter_mut().enumerate() {
            if self.is_missing(i) {
                *v = fill;
            }
        }
    }
}

/// The quality record: the target a chunk was written for and what the writer predicted
/// and measured. It lets `deepcq inspect` audit a file without the original data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// What the target means.
    pub kind: TargetKind,
    /// The target value, in the kind's unit.
    pub target: f64,
    /// Predict or guarantee.
    pub mode: Mode,
    /// The metric the chooser predicted for its first proposal (none from the analytic
    /// proposer).
    pub predicted: Option<f64>,
    /// The metric measured on the kept payload (none in predict mode or for lossless).
    pub measured: Option<f64>,
}

impl Quality {
    /// The record for a chunk written under `settings`. NaN metrics count as absent,
    /// because NaN is how the record stores "absent".
    pub fn new(settings: &Settings, predicted: Option<f64>, measured: Option<f64>) -> Self {
        Quality {
            kind: settings.target.kind,
            target: settings.target.value(),
            mode: settings.mode,
            predicted: predicted.filter(|v| !v.is_nan()),
            measured: measured.filter(|v| !v.is_nan()),
        }
    }

    /// The record as this version writes it: the target as f32 (~7 significant digits)
    /// and both metrics as f16 offsets from it. A metric sits close to its target, so the
    /// offset's 11 significant bits keep a PSNR 2 dB over to 0.001 dB in 2 bytes, where
    /// an f32 metric took 4. Offsets beyond f16's range (65504) are stored as its largest
    /// finite value, which reads back as unknown; +∞ (an exact decode) stays +∞. An offset
    /// is rounded down, never up: a record never reads above what was measured (a PSNR
    /// 2.0015 dB over its target read 0.00045 dB more), and one that met its target still
    /// reads as met (0 is an offset).
    fn to_bytes(self) -> [u8; quality_record::LEN] {
        use quality_record as q;
        let mut out = [0u8; q::LEN];
        out[q::KIND_MODE] = self.kind as u8 | (self.mode as u8) << 4;
        // Settings keep targets within f32's range; clamping anyway means no record can
        // come out infinite and make its chunk unreadable.
        let mut target = (self.target as f32).clamp(-f32::MAX, f32::MAX);
        // An SSIM target within 3e-8 of 1 rounds to 1 in f32, and a lossy chunk's SSIM
        // with it: the record would read as an exact decode. It keeps the f32 below 1.
        if self.kind == TargetKind::Ssim && self.target < 1.0 && target >= 1.0 {
            target = f32::from_bits(1f32.to_bits() - 1);
        }
        let stored_target = shortest_decimal(target);
        let offset = |v: Option<f64>| {
            let d = v.map_or(f64::NAN, |v| v - stored_target);
            let d = if d.is_finite() {
                d.clamp(-f64::from(f16::MAX), f64::from(f16::MAX))
            } else {
                d
            };
            f16_at_most(d).to_le_bytes()
        };
        out[q::TARGET..q::TARGET + 4].copy_from_slice(&target.to_le_bytes());
        out[q::PREDICTED..q::PREDICTED + 2].copy_from_slice(&offset(self.predicted));
        out[q::MEASURED..q::MEASURED + 2].copy_from_slice(&offset(self.measured));
        out
    }

    /// Reads the record of a chunk of format `version`: the metrics are f16 offsets from
    /// the target since version 5, kind and mode share a byte and the target is f32 since
    /// version 4, the metrics are f32 in versions 3 and 4.
    fn from_bytes(record: &[u8], version: u8) -> Result<Self, ChunkError> {
        use quality_record as q;
        let len = match version {
            5.. => q::LEN,
            4 => q::V4_LEN,
            3 => q::V3_LEN,
            _ => q::V2_LEN,
        };
        if record.len() != len {
            return Err(ChunkError::BadHeader(format!(
                "quality record of {} bytes",
                record.len()
            )));
        }
        let f16_at = |at: usize| f16::from_le_bytes(record[at..at + 2].try_into().unwrap());
        // An offset at f16's largest finite value stands for any beyond it: unknown (a
        // ratio 143.7 stored for a target of 100000 would read back as 34496).
        let metric_at = |target: f64, at: usize| match f16_at(at) {
            d if d == f16::MAX || d == f16::MIN => f64::NAN,
            d => target + f64::from(d),
        };
        let f32_at = |at: usize| f32::from_le_bytes(record[at..at + 4].try_into().unwrap());
        let f64_at = |at: usize| f64::from_le_bytes(record[at..at + 8].try_into().unwrap());
        let (kind, mode, target, predicted, measured) = match version {
            5.. => {
                let target = shortest_decimal(f32_at(q::TARGET));
                (
                    record[q::KIND_MODE] & 0x0f,
                    record[q::KIND_MODE] >> 4,
                    target,
                    metric_at(target, q::PREDICTED),
                    metric_at(target, q::MEASURED),
                )
            }
            4 => (
                record[q::KIND_MODE] & 0x0f,
                record[q::KIND_MODE] >> 4,
                shortest_decimal(f32_at(q::TARGET)),
                f64::from(f32_at(q::V4_PREDICTED)),
                f64::from(f32_at(q::V4_MEASURED)),
            ),
            3 => (
                record[q::V3_KIND],
                record[q::V3_MODE],
                f64_at(q::V3_TARGET),
                f64::from(f32_at(q::V3_PREDICTED)),
                f64::from(f32_at(q::V3_MEASURED)),
            ),
            _ => (
                record[q::V3_KIND],
                record[q::V3_MODE],
                f64_at(q::V3_TARGET),
                f64_at(q::V2_PREDICTED),
                f64_at(q::V2_MEASURED),
            ),
        };
        let kind = TargetKind::from_u32(kind.into())
            .ok_or_else(|| ChunkError::BadHeader(format!("quality record target kind {kind}")))?;
        let mode = Mode::from_u32(mode.into())
            .ok_or_else(|| ChunkError::BadHeader(format!("quality record mode {mode}")))?;
        if !target.is_finite() {
            return Err(ChunkError::BadHeader(format!(
                "quality record target {target}"
            )));
        }
        let present = |v: f64| (!v.is_nan()).then_some(v);
        Ok(Quality {
            kind,
            target,
            mode,
            predicted: present(predicted),
            measured: present(measured),
        })
    }
}

/// The f16 nearest `d` at or below it (NaN stays NaN): f16's rounding to nearest took a
/// measured metric's offset half a step above what was measured.
fn f16_at_most(d: f64) -> f16 {
    let h = f16::from_f64(d);
    if f64::from(h) <= d || d.is_nan() {
        return h;
    }
    let bits = h.to_bits();
    f16::from_bits(match bits {
        0 => 0x8001,
        b if b & 0x8000 == 0 => b - 1,
        b => b + 1,
    })
}

/// The f64 with the shortest decimal that rounds to `v`: a target typed as 0.999 and
/// stored as f32 reads back as 0.999, not 0.99900001.
pub(crate) fn shortest_decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::NAN)
}

/// The smallest f32 at or above `v` (≥ 0): a stored bound must still bound the error.
fn f32_at_least(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) < v {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}

/// The bound to give a lossy codec for a wanted `bound`: the largest f32 at or below it,
/// so the header's f32 holds exactly the bound the codec was given and what a codec derives
/// from it need not be stored ([`Codec::compact`](crate::codec::Codec::compact)). It moves
/// the bound by less than one part in 8 million (2^−23), and never above what was asked. A
/// bound outside f32's normal range (f64 data of magnitude below 1e−30 or above 1e38) goes to the
/// codec as it is, the header holding the f32 just above it (+∞ beyond f32's range): f32's
/// largest value as the bound would store data near 1e160 almost exactly.
pub fn codec_bound(bound: f64) -> f64 {
    let f = bound as f32;
    if !f.is_normal() {
        return bound;
    }
    let f = if f64::from(f) > bound {
        f32::from_bits(f.to_bits() - 1)
    } else {
        f
    };
    if f.is_normal() && f > 0.0 {
        f64::from(f)
    } else {
        bound
    }
}

/// Compresses `data` with `codec` and wraps the payload in a header.
pub fn encode(
    codec: CodecId,
    data: Samples<'_>,
    shape: &[usize],
    bound: f64,
    quality: Option<Quality>,
) -> Result<Vec<u8>, ChunkError> {
    let bound = codec_bound(bound);
    let payload = codec_for(codec).encode(data, shape, bound)?;
    Ok(wrap(codec, &data, shape, bound, None, quality, &payload))
}

/// Compresses the prefix block `inner` (dims `padding.inner`) of a chunk of `shape` whose
/// other values all equal `padding.fill`.
pub fn encode_padded(
    codec: CodecId,
    inner: Samples<'_>,
    shape: &[usize],
    padding: &Padding,
    bound: f64,
    quality: Option<Quality>,
) -> Result<Vec<u8>, ChunkError> {
    let bound = codec_bound(bound);
    let payload = codec_for(codec).encode(inner, &padding.inner, bound)?;
    Ok(wrap(
        codec,
        &inner,
        shape,
        bound,
        Some(padding.clone()),
        quality,
        &payload,
    ))
}

/// Puts a header in front of a payload the codec made.
pub fn wrap(
    codec: CodecId,
    data: &Samples<'_>,
    shape: &[usize],
    bound: f64,
    padding: Option<Padding>,
    quality: Option<Quality>,
    payload: &[u8],
) -> Vec<u8> {
    let layout = Layout::of(data, shape);
    let bound = header_bound(codec, bound);
    let compact = compact_payload(
        codec,
        &payload_layout(&layout, padding.as_ref()),
        bound,
        payload,
    );
    let header = Header {
        version: wire::written_version(codec, bound, compact.is_some()),
        codec,
        bound,
        original_len: layout.byte_len().unwrap_or(0) as u64,
        layout,
        padding,
        quality,
        compact: compact.is_some(),
        big_endian: false,
        missing: None,
    };
    assemble(&header, compact.as_deref().unwrap_or(payload))
}

/// The layout of the values a payload holds: the chunk's, or its padding block's.
fn payload_layout(layout: &Layout, padding: Option<&Padding>) -> Layout {
    match padding {
        Some(p) => Layout {
            shape: p.inner.clone(),
            ..layout.clone()
        },
        None => layout.clone(),
    }
}

/// `payload` as a chunk stores it when its header holds `bound`
/// ([`Codec::compact`](crate::codec::Codec::compact)), if the codec can leave anything out
/// and rebuilding gives back exactly `payload`. Checking the round trip rather than
/// trusting the layout keeps a codec build that lays payloads out otherwise readable: its
/// payloads are simply stored whole.
pub(crate) fn compact_payload(
    codec: CodecId,
    layout: &Layout,
    bound: f64,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let codec = codec_for(codec);
    codec
        .compact(layout, bound, payload)
        .filter(|c| codec.expand(layout, bound, c).as_deref() == Some(payload))
}

/// Bytes of `payload` a chunk whose header holds `bound` stores: the compact payload when
/// the codec has one that rebuilds exactly, else the whole payload.
pub fn stored_payload_len(codec: CodecId, layout: &Layout, bound: f64, payload: &[u8]) -> usize {
    compact_payload(codec, layout, header_bound(codec, bound), payload)
        .map_or(payload.len(), |c| c.len())
}

/// The bound a chunk header holds for a payload made with `bound`: 0 for the lossless
/// codec, else the smallest f32 at or above it (the bound itself when the codec was given
/// [`codec_bound`]).
fn header_bound(codec: CodecId, bound: f64) -> f64 {
    match codec {
        CodecId::Lossless => 0.0,
        _ => f64::from(f32_at_least(bound)),
    }
}

/// About the bytes a lossy f32 or f64 chunk of `shape` with a quality record (and no
/// padding) stores for a `payload_len`-byte payload of `codec`, for estimates made before
/// there is a payload: header and checksum added, the codec's container header left out
/// ([`Codec::frame`](crate::codec::Codec::frame)). Compact SPERR and SZ3 payloads save
/// 10–28 bytes more ([`stored_payload_len`] counts them).
pub fn stored_len(codec: CodecId, shape: &[usize], dtype: DType, payload_len: usize) -> usize {
    let layout = Layout {
        dtype,
        elem_size: dtype.natural_size().unwrap_or(1),
        shape: shape.to_vec(),
    };
    let frame = codec_for(codec).frame(&layout, 0).map_or(0, |f| f.len());
    header_len(shape) + payload_len.saturating_sub(frame)
}

/// The extension flags byte and the records it announces, in flag-bit order.
fn extension_bytes(header: &Header) -> (u8, Vec<u8>) {
    let (mut flags, mut out) = (0, Vec::new());
    if let Some(p) = &header.padding {
        flags |= ext_flags::PADDING;
        for &d in &p.inner {
            put_varint(&mut out, d as u64);
        }
        out.extend_from_slice(&p.fill);
    }
    if let Some(q) = header.quality {
        flags |= ext_flags::QUALITY;
        out.extend_from_slice(&q.to_bytes());
    }
    if let Some(m) = &header.missing {
        flags |= ext_flags::MISSING;
        out.extend_from_slice(&m.fill);
        let packed = m.packed();
        put_varint(&mut out, m.bits.len() as u64);
        put_varint(&mut out, packed.len() as u64);
        out.extend_from_slice(&packed);
    }
    if header.compact {
        flags |= ext_flags::COMPACT;
    }
    if header.big_endian {
        flags |= ext_flags::BIG_ENDIAN;
    }
    (flags, out)
}

/// Bytes a lossy f32 or f64 chunk of `shape` with a quality record (and no padding) puts
/// around its payload.
pub fn header_len(shape: &[usize]) -> usize {
    wire::FIXED_HEADER_LEN
        + shape.iter().map(|&d| varint_len(d)).sum::<usize>()
        + 4
        + quality_record::LEN
        + 4
}

/// [`header_len`] for a chunk of `shape` that stores only the block `padding` keeps: its
/// padding record (the block's dims and the fill value) counts too.
pub(crate) fn padded_header_len(shape: &[usize], padding: Option<&Padding>) -> usize {
    header_len(shape)
        + padding.map_or(0, |p| {
            p.inner.iter().map(|&d| varint_len(d)).sum::<usize>() + p.fill.len()
        })
}

/// Bytes of `v` as a LEB128 varint ([`put_varint`]).
fn varint_len(v: usize) -> usize {
    (usize::BITS - v.leading_zeros()).max(1).div_ceil(7) as usize
}

/// Writes header, checksum and payload into one buffer, in the version the chunk needs
/// ([`wire::written_version`]).
fn assemble(header: &Header, payload: &[u8]) -> Vec<u8> {
    let rank = header.layout.shape.len();
    let (flags, extension) = extension_bytes(header);
    let mut out = Vec::with_capacity(wire::FIXED_HEADER_LEN + 10 * (rank + 1) + 8 + payload.len());
    out.extend_from_slice(&wire::MAGIC);
    debug_assert_eq!(out.len(), wire::VERSION_OFFSET);
    out.push(wire::written_version(
        header.codec,
        header.bound,
        header.compact,
    ));
    debug_assert_eq!(out.len(), wire::CODEC_DTYPE_OFFSET);
    out.push(header.codec as u8 | (header.layout.dtype as u8) << 4);
    debug_assert_eq!(out.len(), wire::EXT_FLAGS_OFFSET);
    out.push(flags);
    debug_assert_eq!(out.len(), wire::RANK_OFFSET);
    out.push(rank as u8);
    debug_assert_eq!(out.len(), wire::FIXED_HEADER_LEN);
    for &d in &header.layout.shape {
        put_varint(&mut out, d as u64);
    }
    if header.layout.dtype.natural_size().is_none() {
        put_varint(&mut out, header.layout.elem_size as u64);
    }
    if header.codec != CodecId::Lossless {
        out.extend_from_slice(&f32_at_least(header.bound).to_le_bytes());
    }
    out.extend_from_slice(&extension);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    crc.update(payload);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Little-endian cursor that reports truncation instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ChunkError> {
        let end = self.pos.checked_add(n).ok_or(ChunkError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(ChunkError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ChunkError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ChunkError> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ChunkError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ChunkError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn f64(&mut self, what: &'static str) -> Result<f64, ChunkError> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// An unsigned LEB128 varint of at most 10 bytes that fits in 64 bits.
    fn varint(&mut self, what: &'static str) -> Result<u64, ChunkError> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        match wire::read_varint(rest) {
            Ok((v, len)) => {
                self.pos += len;
                Ok(v)
            }
            Err(VarintError::Truncated) => Err(ChunkError::Truncated(what)),
            Err(VarintError::TooLong) => Err(ChunkError::BadHeader(format!(
                "{what}: varint longer than 64 bits"
            ))),
        }
    }
    /// A varint that must fit in `usize`.
    fn size(&mut self, what: &'static str) -> Result<usize, ChunkError> {
        usize::try_from(self.varint(what)?).map_err(|_| ChunkError::BadHeader(what.into()))
    }
}

/// The header fields as read, before they are checked against each other.
struct RawHeader<'a> {
    version: u8,
    codec: u8,
    dtype: u8,
    elem_size: usize,
    flags: u8,
    bound: f64,
    /// Version 1 and 2 store it; version 3 derives it from the dims.
    original_len: Option<u64>,
    shape: Vec<usize>,
    extension: &'a [u8],
    /// Versions 1 to 3 store it; from version 4 the payload runs to the end of the chunk.
    payload_len: Option<usize>,
}

/// Reads the header fields of format versions 1 and 2 (fixed-width integers).
fn read_v2<'a>(r: &mut Reader<'a>, version: u8) -> Result<RawHeader<'a>, ChunkError> {
    let codec = r.u8("codec")?;
    let dtype = r.u8("dtype")?;
    let elem_size = r.u8("element size")? as usize;
    let rank = r.u8("rank")? as usize;
    let flags = r.u8("extension flags")?;
    let ext_len = r.u16("extension length")? as usize;
    let original_len = r.u64("original length")?;
    let bound = r.f64("bound")?;
    let payload_len = r.u64("payload length")?;
    if rank > wire::MAX_RANK {
        return Err(ChunkError::BadHeader(format!("rank {rank}")));
    }
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        shape.push(r.u64("dims")? as usize);
    }
    Ok(RawHeader {
        version,
        codec,
        dtype,
        elem_size,
        flags,
        bound,
        original_len: Some(original_len),
        shape,
        extension: r.take(ext_len, "extension")?,
        payload_len: Some(
            usize::try_from(payload_len)
                .map_err(|_| ChunkError::BadHeader("payload length".into()))?,
        ),
    })
}

/// Reads the header fields of format version 3 (varint lengths and dims).
fn read_v3<'a>(r: &mut Reader<'a>) -> Result<RawHeader<'a>, ChunkError> {
    let codec = r.u8("codec")?;
    let dtype = r.u8("dtype")?;
    let elem_size = r.u8("element size")? as usize;
    let rank = r.u8("rank")? as usize;
    let flags = r.u8("extension flags")?;
    let bound = r.f64("bound")?;
    let payload_len = r.size("payload length")?;
    let ext_len = r.size("extension length")?;
    let shape = varint_dims(r, rank)?;
    Ok(RawHeader {
        version: 3,
        codec,
        dtype,
        elem_size,
        flags,
        bound,
        original_len: None,
        shape,
        extension: r.take(ext_len, "extension")?,
        payload_len: Some(payload_len),
    })
}

/// Reads `rank` varint dims (versions 3 and 4), refusing a rank no writer produces.
fn varint_dims(r: &mut Reader<'_>, rank: usize) -> Result<Vec<usize>, ChunkError> {
    if rank > wire::MAX_RANK {
        return Err(ChunkError::BadHeader(format!("rank {rank}")));
    }
    (0..rank).map(|_| r.size("dims")).collect()
}

/// Reads the header fields of format versions 4 and 5 (they differ only in the magic
/// before them and the quality record's length): no stored lengths, so the extension is
/// measured by walking the records its flags announce.
fn read_v4<'a>(r: &mut Reader<'a>, version: u8) -> Result<RawHeader<'a>, ChunkError> {
    let codec_dtype = r.u8("codec and dtype")?;
    let (codec, dtype) = (codec_dtype & 0x0f, codec_dtype >> 4);
    let flags = r.u8("extension flags")?;
    let rank = r.u8("rank")? as usize;
    if flags & !ext_flags::known_in(version) != 0 {
        return Err(ChunkError::BadHeader(format!(
            "unknown extension flags {flags:#04x}"
        )));
    }
    let shape = varint_dims(r, rank)?;
    let elem_size = match DType::from_u8(dtype).and_then(DType::natural_size) {
        Some(size) => size,
        None => r.size("element size")?,
    };
    let bound = if codec == CodecId::Lossless as u8 {
        0.0
    } else {
        f64::from(f32::from_bits(r.u32("bound")?))
    };
    let start = r.pos;
    if flags & ext_flags::PADDING != 0 {
        for _ in 0..rank {
            r.size("padding dims")?;
        }
        r.take(elem_size, "fill value")?;
    }
    if flags & ext_flags::QUALITY != 0 {
        let len = match version {
            4 => quality_record::V4_LEN,
            _ => quality_record::LEN,
        };
        r.take(len, "quality record")?;
    }
    if flags & ext_flags::MISSING != 0 {
        r.take(elem_size, "missing-value fill")?;
        r.size("missing-value bitmap length")?;
        let packed = r.size("missing-value bitmap frame length")?;
        r.take(packed, "missing-value bitmap")?;
    }
    Ok(RawHeader {
        version,
        codec,
        dtype,
        elem_size,
        flags,
        bound,
        original_len: None,
        shape,
        extension: &r.bytes[start..r.pos],
        payload_len: None,
    })
}

/// Parses and validates the header, verifies the checksum, and returns the header and the
/// payload. Nothing is allocated from untrusted sizes before the checksum has passed.
pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), ChunkError> {
    parse_within(bytes, wire::MAX_ORIGINAL_LEN)
}

/// [`parse`] for a reader that knows how many bytes its dataset's chunks hold (`room`):
/// a header of float values declaring more, or of other bytes declaring more than
/// [`opaque_limit`], is refused before anything is allocated from its sizes. A checksum
/// does not stop a crafted header from asking for up to 4 GiB, and an allocation that
/// fails aborts the process.
pub fn parse_within(bytes: &[u8], room: u64) -> Result<(Header, &[u8]), ChunkError> {
    let mut r = Reader { bytes, pos: 0 };
    let raw = if bytes.starts_with(&wire::LEGACY_MAGIC) {
        r.take(wire::LEGACY_MAGIC.len(), "magic")?;
        match r.u8("version")? {
            v @ (1 | 2) => read_v2(&mut r, v)?,
            3 => read_v3(&mut r)?,
            4 => read_v4(&mut r, 4)?,
            v => {
                return Err(ChunkError::BadHeader(format!(
                    "version {v} after a version-4 magic"
                )))
            }
        }
    } else if r.take(wire::MAGIC.len(), "magic")? == wire::MAGIC {
        match r.u8("version")? {
            v @ (5..=wire::FORMAT_VERSION) => read_v4(&mut r, v)?,
            v if v > wire::FORMAT_VERSION => return Err(ChunkError::UnsupportedVersion(v)),
            v => {
                return Err(ChunkError::BadHeader(format!(
                    "version {v} after a version-5 magic"
                )))
            }
        }
    } else {
        return Err(ChunkError::BadMagic);
    };
    let header_end = r.pos;
    let stored = r.u32("checksum")?;
    let payload = r.take(raw.payload_len.unwrap_or(bytes.len() - r.pos), "payload")?;
    if r.pos != bytes.len() {
        return Err(ChunkError::BadHeader(format!(
            "{} trailing bytes after the payload",
            bytes.len() - r.pos
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..header_end]);
    crc.update(payload);
    let computed = crc.finalize();
    if computed != stored {
        return Err(ChunkError::Checksum { stored, computed });
    }
    Ok((validate(raw, room)?, payload))
}

/// The most bytes a chunk kept byte for byte may declare in a dataset whose chunks hold
/// `room` bytes: non-float values fill the chunk exactly, but another filter ahead of
/// this one in an older file's pipeline (deflate, a checksum) may have handed over a
/// little more than the chunk, so twice the chunk and a MiB.
pub fn opaque_limit(room: u64) -> u64 {
    room.saturating_mul(2).saturating_add(1 << 20)
}

/// Checks the fields of a header whose checksum passed against each other, and its size
/// against `room`, the bytes of the dataset's chunk ([`parse_within`]).
fn validate(raw: RawHeader<'_>, room: u64) -> Result<Header, ChunkError> {
    let codec = CodecId::from_u8(raw.codec)
        .ok_or_else(|| ChunkError::BadHeader(format!("codec id {}", raw.codec)))?;
    let dtype = DType::from_u8(raw.dtype)
        .ok_or_else(|| ChunkError::BadHeader(format!("dtype {}", raw.dtype)))?;
    let elem_size = raw.elem_size;
    if elem_size == 0 || dtype.natural_size().is_some_and(|s| s != elem_size) {
        return Err(ChunkError::BadHeader(format!(
            "element size {elem_size} for {}",
            dtype.name()
        )));
    }
    // No writer makes a chunk of values without an axis or with an empty one (a codec
    // handed one fails inside its library); chunks kept byte for byte stay as they were.
    let floats = matches!(dtype, DType::F32 | DType::F64);
    if floats && (raw.shape.is_empty() || raw.shape.contains(&0)) {
        return Err(ChunkError::BadHeader(format!(
            "shape {:?}: a chunk of values has 1 to {} axes, none empty",
            raw.shape,
            wire::MAX_RANK
        )));
    }
    let layout = Layout {
        dtype,
        elem_size,
        shape: raw.shape,
    };
    let original_len = match (layout.byte_len(), raw.original_len) {
        (Some(n), stored)
            if stored.is_none_or(|s| s == n as u64) && n as u64 <= wire::MAX_ORIGINAL_LEN =>
        {
            n as u64
        }
        _ => {
            return Err(ChunkError::BadHeader(format!(
                "shape {:?} × {elem_size} B does not give {} bytes (at most {})",
                layout.shape,
                raw.original_len
                    .map_or("a valid number of".into(), |n| n.to_string()),
                wire::MAX_ORIGINAL_LEN
            )))
        }
    };
    let limit = match dtype {
        DType::F32 | DType::F64 => room,
        DType::Opaque => opaque_limit(room),
    };
    if original_len > limit {
        let kept = match dtype {
            DType::Opaque => format!(" (and at most {limit} kept as they came)"),
            _ => String::new(),
        };
        return Err(ChunkError::BadHeader(format!(
            "the header declares {original_len} bytes of {} values, the dataset's chunks \
             hold {room}{kept}",
            dtype.name()
        )));
    }
    // Refused before the extension's records are read: a missing-value bitmap is sized by
    // the header.
    let lossy_records = raw.flags & (ext_flags::PADDING | ext_flags::MISSING) != 0;
    if dtype == DType::Opaque && (codec != CodecId::Lossless || lossy_records) {
        return Err(ChunkError::BadHeader(
            "opaque data with a lossy codec".into(),
        ));
    }
    let (padding, missing, quality) =
        parse_extension(raw.version, raw.flags, raw.extension, &layout)?;
    // Version 1 wrote its padding record with no flag (and versions up to 2 read one so),
    // which the check above cannot see.
    if dtype == DType::Opaque && padding.is_some() {
        return Err(ChunkError::BadHeader(
            "opaque data with a padding record".into(),
        ));
    }
    // A lossy codec decodes with the bound (SZ3's and SPERR's compact payloads take it from
    // here): NaN or a negative one decoded to NaN or sign-flipped values.
    if codec != CodecId::Lossless && (raw.bound.is_nan() || raw.bound < 0.0) {
        return Err(ChunkError::BadHeader(format!(
            "a {} chunk with bound {}",
            codec.name(),
            raw.bound
        )));
    }
    let compact = raw.flags & ext_flags::COMPACT != 0;
    if compact && codec_for(codec).frame(&layout, 0).is_none() {
        return Err(ChunkError::BadHeader(format!(
            "{} payloads have no container header to rebuild",
            codec.name()
        )));
    }
    Ok(Header {
        version: raw.version,
        codec,
        layout,
        bound: raw.bound,
        original_len,
        padding,
        quality,
        compact,
        big_endian: raw.flags & ext_flags::BIG_ENDIAN != 0,
        missing,
    })
}

/// `bytes`, a chunk this build wrote, marked as holding the values of a big-endian dataset
/// ([`Header::big_endian`]).
pub fn marked_big_endian(bytes: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let (header, payload) = parse(bytes)?;
    let header = Header {
        big_endian: true,
        ..header
    };
    Ok(assemble(&header, payload))
}

/// `bytes`, a chunk this build wrote for the values of its payload block with the missing
/// ones replaced, with the record of which were missing ([`Header::missing`]).
pub fn marked_missing(bytes: &[u8], missing: Missing) -> Result<Vec<u8>, ChunkError> {
    let (header, payload) = parse(bytes)?;
    let header = Header {
        missing: Some(missing),
        ..header
    };
    let out = assemble(&header, payload);
    // The bitmap went through zstd: read the record back now rather than at decode time.
    parse(&out)?;
    Ok(out)
}

/// The extension's records: padding, missing values, quality.
type Records = (Option<Padding>, Option<Missing>, Option<Quality>);

/// Splits the extension into the records `flags` announces. Flags 0 with extension bytes
/// is how format version 1 wrote a padding record (version 2 read it so, too).
fn parse_extension(
    version: u8,
    flags: u8,
    extension: &[u8],
    layout: &Layout,
) -> Result<Records, ChunkError> {
    if flags & !ext_flags::known_in(version) != 0 {
        return Err(ChunkError::BadHeader(format!(
            "unknown extension flags {flags:#04x}"
        )));
    }
    let flags = match flags {
        0 if version <= 2 && !extension.is_empty() => ext_flags::PADDING,
        f => f,
    };
    let mut r = Reader {
        bytes: extension,
        pos: 0,
    };
    let padding = match flags & ext_flags::PADDING {
        0 => None,
        _ => Some(read_padding(&mut r, version, layout)?),
    };
    // The missing-value record comes last (version 7, whose quality record has one
    // length).
    let rest = &extension[r.pos..];
    let (rest, missing) = match flags & ext_flags::MISSING {
        0 => (rest, None),
        _ => {
            let quality_len = match flags & ext_flags::QUALITY {
                0 => 0,
                _ => quality_record::LEN,
            };
            if rest.len() < quality_len {
                return Err(ChunkError::BadHeader("extension too short".into()));
            }
            let (quality, record) = rest.split_at(quality_len);
            let mut m = Reader {
                bytes: record,
                pos: 0,
            };
            let missing = read_missing(&mut m, layout, padding.as_ref())?;
            if m.pos != record.len() {
                return Err(ChunkError::BadHeader(format!(
                    "{} extension bytes no flag announces",
                    record.len() - m.pos
                )));
            }
            (quality, Some(missing))
        }
    };
    let quality = match flags & ext_flags::QUALITY {
        0 if rest.is_empty() => None,
        0 => {
            return Err(ChunkError::BadHeader(format!(
                "{} extension bytes no flag announces",
                rest.len()
            )))
        }
        _ => Some(Quality::from_bytes(rest, version)?),
    };
    Ok((padding, missing, quality))
}

/// Reads the missing-value record: the fill value, then the bitmap's length and its zstd
/// frame's length as varints, then the frame. The bitmap covers the payload block.
fn read_missing(
    r: &mut Reader<'_>,
    layout: &Layout,
    padding: Option<&Padding>,
) -> Result<Missing, ChunkError> {
    let bad = |what: &str| ChunkError::BadHeader(format!("missing-value record: {what}"));
    let short = |e: ChunkError| match e {
        ChunkError::Truncated(what) => bad(what),
        other => other,
    };
    let fill = r
        .take(layout.elem_size, "fill value")
        .map_err(short)?
        .to_vec();
    let len = r.size("bitmap length").map_err(short)?;
    let packed_len = r.size("bitmap frame length").map_err(short)?;
    let packed = r.take(packed_len, "bitmap").map_err(short)?;
    let values: usize = payload_layout(layout, padding).shape.iter().product();
    if len != values.div_ceil(8) {
        return Err(bad("bitmap of the wrong length"));
    }
    let bits =
        zstd::bulk::decompress(packed, len).map_err(|_| bad("bitmap does not decompress"))?;
    if bits.len() != len {
        return Err(bad("bitmap of the wrong length"));
    }
    Ok(Missing { fill, bits })
}

/// Reads the padding record: inner dims (u64 each before version 3, varints since) then
/// one fill element.
fn read_padding(r: &mut Reader<'_>, version: u8, layout: &Layout) -> Result<Padding, ChunkError> {
    // Running out of extension is a header error: the length field was checksummed.
    let short = |e: ChunkError| match e {
        ChunkError::Truncated(_) => {
            ChunkError::BadHeader("extension cannot hold a padding record".into())
        }
        other => other,
    };
    let mut inner = Vec::with_capacity(layout.shape.len());
    for _ in &layout.shape {
        let d = match version {
            1 | 2 => r.u64("padding dims").map_err(short)? as usize,
            _ => r.size("padding dims").map_err(short)?,
        };
        inner.push(d);
    }
    let fill = r
        .take(layout.elem_size, "fill value")
        .map_err(short)?
        .to_vec();
    if inner
        .iter()
        .zip(&layout.shape)
        .any(|(&i, &d)| i == 0 || i > d)
    {
        return Err(ChunkError::BadHeader(format!(
            "padding block {inner:?} outside chunk {:?}",
            layout.shape
        )));
    }
    Ok(Padding { inner, fill })
}

/// Decodes a chunk into its values.
pub fn decode(bytes: &[u8]) -> Result<(Header, SampleBuf), ChunkError> {
    decode_within(bytes, wire::MAX_ORIGINAL_LEN)
}

/// [`decode`] refusing, before it allocates, a chunk of more than its dataset's chunks
/// of `room` bytes hold ([`parse_within`]).
pub fn decode_within(bytes: &[u8], room: u64) -> Result<(Header, SampleBuf), ChunkError> {
    let (header, payload) = parse_within(bytes, room)?;
    let codec = codec_for(header.codec);
    let layout = payload_layout(&header.layout, header.padding.as_ref());
    let expanded;
    let payload = match header.compact {
        false => payload,
        true => {
            // Version 6 left out the container header only.
            let rebuilt = match header.version {
                6 => crate::codec::with_frame(codec, &layout, payload),
                _ => codec.expand(&layout, header.bound, payload),
            };
            expanded = rebuilt.ok_or_else(|| {
                ChunkError::BadHeader(format!(
                    "the compact {} payload does not expand",
                    codec.id().name()
                ))
            })?;
            &expanded
        }
    };
    let mut block = codec.decode(payload, &layout, header.bound)?;
    if let Some(m) = &header.missing {
        match &mut block {
            SampleBuf::F32(v) => m.restore(v),
            SampleBuf::F64(v) => m.restore(v),
            SampleBuf::Opaque(_) => {
                return Err(ChunkError::BadHeader(
                    "missing values in opaque data".into(),
                ))
            }
        }
    }
    let values = match &header.padding {
        None => block,
        Some(p) => {
            let inner = block;
            let shape = &header.layout.shape;
            match inner {
                SampleBuf::F32(v) => SampleBuf::F32(padding::expand(
                    &v,
                    &p.inner,
                    shape,
                    f32::from_le_slice(&p.fill),
                )),
                SampleBuf::F64(v) => SampleBuf::F64(padding::expand(
                    &v,
                    &p.inner,
                    shape,
                    f64::from_le_slice(&p.fill),
                )),
                SampleBuf::Opaque(_) => {
                    return Err(ChunkError::BadHeader("padded opaque chunk".into()))
                }
            }
        }
    };
    let got = values.view().byte_len() as u64;
    if got != header.original_len {
        return Err(ChunkError::BadHeader(format!(
            "codec returned {got} bytes, header says {}",
            header.original_len
        )));
    }
    Ok((header, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_chunk() -> Vec<u8> {
        let values: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
        encode(
            CodecId::Lossless,
            Samples::F32(&values),
            &[4, 16],
            0.0,
            None,
        )
        .unwrap()
    }

    fn quality() -> Quality {
        Quality {
            kind: TargetKind::Psnr,
            target: 62.5,
            mode: Mode::Guarantee,
            predicted: None,
            measured: Some(64.25),
        }
    }

    /// A 6×10 f64 chunk whose last two rows and columns hold the fill value 0, written
    /// with the padding record and optionally the quality record.
    fn padded_chunk(quality: Option<Quality>) -> (Vec<u8>, Padding) {
        let inner: Vec<f64> = (0..32).map(|i| (i as f64 * 0.3).cos()).collect();
        let pad = Padding {
            inner: vec![4, 8],
            fill: 0f64.to_le_bytes().to_vec(),
        };
        let bytes = encode_padded(
            CodecId::Lossless,
            Samples::F64(&inner),
            &[6, 10],
            &pad,
            0.0,
            quality,
        )
        .unwrap();
        (bytes, pad)
    }

    /// Where the header ends (the checksum starts), read the way the parser reads it.
    fn header_end(bytes: &[u8]) -> usize {
        let mut r = Reader {
            bytes,
            pos: wire::CODEC_DTYPE_OFFSET,
        };
        read_v4(&mut r, wire::FORMAT_VERSION).unwrap();
        r.pos
    }

    /// Recomputes the checksum after a test edited header bytes in place, so the edit
    /// reaches the field checks instead of stopping at the CRC.
    fn reseal(bytes: &mut [u8]) {
        let header_end = header_end(bytes);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[..header_end]);
        crc.update(&bytes[header_end + 4..]);
        bytes[header_end..header_end + 4].copy_from_slice(&crc.finalize().to_le_bytes());
    }

    #[test]
    fn header_round_trips() {
        let bytes = sample_chunk();
        let (header, values) = decode(&bytes).unwrap();
        assert_eq!(header.version, wire::PLAIN_VERSION);
        assert_eq!(header.codec, CodecId::Lossless);
        assert_eq!(header.layout.shape, vec![4, 16]);
        assert_eq!(header.original_len, 256);
        assert_eq!(header.padding, None);
        assert_eq!(header.quality, None);
        assert_eq!(bytes[wire::EXT_FLAGS_OFFSET], 0);
        assert_eq!(values.view().len(), 64);
    }

    #[test]
    fn quality_and_padding_round_trip_in_every_combination() {
        let values: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
        let plain = encode(
            CodecId::Sz3,
            Samples::F32(&values),
            &[4, 16],
            1e-3,
            Some(quality()),
        )
        .unwrap();
        let (header, _) = decode(&plain).unwrap();
        assert_eq!(header.quality, Some(quality()));
        assert_eq!(header.padding, None);
        assert_eq!(
            plain[wire::EXT_FLAGS_OFFSET],
            ext_flags::QUALITY | ext_flags::COMPACT
        );

        for q in [None, Some(quality())] {
            let (bytes, pad) = padded_chunk(q);
            let (header, back) = decode(&bytes).unwrap();
            assert_eq!(header.quality, q);
            assert_eq!(header.padding.as_ref(), Some(&pad));
            let flags = ext_flags::PADDING | if q.is_some() { ext_flags::QUALITY } else { 0 };
            assert_eq!(bytes[wire::EXT_FLAGS_OFFSET], flags);
            let SampleBuf::F64(back) = back else {
                panic!("not f64")
            };
            assert_eq!(back.len(), 60);
            assert_eq!(back[59], 0.0);
        }
    }

    #[test]
    fn absent_and_infinite_metrics_survive_the_record() {
        let settings = Settings::psnr(60.0).unwrap();
        let q = Quality::new(&settings, Some(f64::NAN), Some(f64::INFINITY));
        assert_eq!(q.predicted, None);
        assert_eq!(q.target, 60.0);
        assert_eq!(q.kind, TargetKind::Psnr);
        let (bytes, _) = padded_chunk(Some(q));
        let (header, _) = parse(&bytes).unwrap();
        assert_eq!(header.quality.unwrap().measured, Some(f64::INFINITY));
        assert_eq!(header.quality.unwrap().predicted, None);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for bytes in [sample_chunk(), padded_chunk(Some(quality())).0] {
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len]).is_err(), "truncated to {len} decoded");
            }
        }
    }

    #[test]
    fn every_single_byte_flip_is_an_error() {
        for bytes in [sample_chunk(), padded_chunk(Some(quality())).0] {
            for i in 0..bytes.len() {
                let mut corrupt = bytes.clone();
                corrupt[i] ^= 0x5a;
                assert!(decode(&corrupt).is_err(), "flip at {i} decoded");
            }
        }
    }

    #[test]
    fn bad_records_with_a_valid_checksum_are_header_errors() {
        let bad_header = |bytes: &[u8], what: &str| match parse(bytes) {
            Err(ChunkError::BadHeader(msg)) => msg,
            other => panic!("{what}: expected a header error, got {other:?}"),
        };
        let (good, _) = padded_chunk(Some(quality()));
        // The record ends the header, right before the checksum.
        let record_at = header_end(&good) - quality_record::LEN;
        let kind_mode = good[record_at + quality_record::KIND_MODE];
        let edits: [(&str, usize, u8); 3] = [
            ("kind", record_at + quality_record::KIND_MODE, kind_mode | 9),
            (
                "mode",
                record_at + quality_record::KIND_MODE,
                kind_mode | 0x70,
            ),
            (
                "codec",
                wire::CODEC_DTYPE_OFFSET,
                good[wire::CODEC_DTYPE_OFFSET] | 7,
            ),
        ];
        for (what, at, value) in edits {
            let mut bytes = good.clone();
            bytes[at] = value;
            reseal(&mut bytes);
            bad_header(&bytes, what);
        }
        let mut nan_target = good.clone();
        let at = record_at + quality_record::TARGET;
        nan_target[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        reseal(&mut nan_target);
        bad_header(&nan_target, "NaN target");
        // A flag this reader does not know: it cannot tell how long that record is.
        let mut unknown = good.clone();
        unknown[wire::EXT_FLAGS_OFFSET] |= 0x80;
        bad_header(&unknown, "unknown flag");
    }

    #[test]
    fn a_chunk_of_values_without_an_axis_or_with_an_empty_one_is_a_header_error() {
        // The sz3 crate panics on a zero dimension; a header must say what is wrong first.
        for shape in [&[4, 0][..], &[]] {
            let bytes = wrap(
                CodecId::Sz3,
                &Samples::F32(&[]),
                shape,
                1e-3,
                None,
                None,
                b"no payload",
            );
            match parse(&bytes) {
                Err(ChunkError::BadHeader(msg)) => assert!(msg.contains("none empty"), "{msg}"),
                other => panic!("{shape:?}: expected a header error, got {other:?}"),
            }
        }
    }

    /// The 2×2 chunk of f32 values 1.5, −2, 3.25, 8 the hand-made old-version chunks hold,
    /// and its lossless payload.
    const OLD_VALUES: [f32; 4] = [1.5, -2.0, 3.25, 8.0];

    fn old_values_payload() -> Vec<u8> {
        codec_for(CodecId::Lossless)
            .encode(Samples::F32(&OLD_VALUES), &[2, 2], 0.0)
            .unwrap()
    }

    /// A hand-made header followed by its checksum (of header and payload) and the payload.
    fn sealed(mut header: Vec<u8>, payload: &[u8]) -> Vec<u8> {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(payload);
        header.extend_from_slice(&crc.finalize().to_le_bytes());
        header.extend_from_slice(payload);
        header
    }

    /// A version-3 chunk laid out by hand (varint lengths, one byte each for codec, dtype,
    /// element size, rank and flags, an f64 bound): the f32 values 1.5, −2, 3.25, 8
    /// stored losslessly with an 18-byte quality record.
    fn version_3_chunk() -> Vec<u8> {
        let payload = old_values_payload();
        let mut record = vec![TargetKind::Ssim as u8, Mode::Predict as u8];
        record.extend_from_slice(&0.999f64.to_le_bytes());
        record.extend_from_slice(&0.9995f32.to_le_bytes());
        record.extend_from_slice(&f32::NAN.to_le_bytes());
        let mut bytes = b"DCQK".to_vec();
        bytes.extend_from_slice(&[3, CodecId::Lossless as u8, DType::F32 as u8, 4, 2]);
        bytes.push(ext_flags::QUALITY);
        bytes.extend_from_slice(&0f64.to_le_bytes());
        put_varint(&mut bytes, payload.len() as u64);
        put_varint(&mut bytes, record.len() as u64);
        bytes.extend_from_slice(&[2, 2]);
        bytes.extend_from_slice(&record);
        sealed(bytes, &payload)
    }

    #[test]
    fn version_3_chunks_still_decode() {
        let (header, values) = decode(&version_3_chunk()).unwrap();
        assert_eq!(header.version, 3);
        assert_eq!(header.layout.shape, vec![2, 2]);
        assert_eq!(values, SampleBuf::F32(OLD_VALUES.to_vec()));
        let q = header.quality.unwrap();
        assert_eq!(
            (q.kind, q.mode, q.target),
            (TargetKind::Ssim, Mode::Predict, 0.999)
        );
        assert_eq!((q.predicted, q.measured), (Some(0.9995f32 as f64), None));
    }

    /// A version-4 chunk laid out by hand (magic `DCQK`, f32 metrics in a 13-byte quality
    /// record): the f32 values 1.5, −2, 3.25, 8 stored losslessly as a 2×2 chunk.
    fn version_4_chunk() -> Vec<u8> {
        let mut bytes = b"DCQK".to_vec();
        bytes.push(4);
        bytes.push(CodecId::Lossless as u8 | (DType::F32 as u8) << 4);
        bytes.extend_from_slice(&[ext_flags::QUALITY, 2, 2, 2]);
        bytes.push(TargetKind::Psnr as u8 | (Mode::Guarantee as u8) << 4);
        for v in [62.5f32, 70.125, 64.0625] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        sealed(bytes, &old_values_payload())
    }

    #[test]
    fn version_4_chunks_still_decode() {
        let (header, values) = decode(&version_4_chunk()).unwrap();
        assert_eq!(header.version, 4);
        assert_eq!(header.layout.shape, vec![2, 2]);
        assert_eq!(values, SampleBuf::F32(OLD_VALUES.to_vec()));
        let q = header.quality.unwrap();
        assert_eq!(
            (q.kind, q.mode, q.target),
            (TargetKind::Psnr, Mode::Guarantee, 62.5)
        );
        assert_eq!((q.predicted, q.measured), (Some(70.125), Some(64.0625)));
    }

    #[test]
    fn a_magic_and_version_that_do_not_belong_together_are_header_errors() {
        let mut legacy = version_4_chunk();
        legacy[4] = wire::FORMAT_VERSION;
        assert!(matches!(parse(&legacy), Err(ChunkError::BadHeader(_))));
        let mut current = sample_chunk();
        current[wire::VERSION_OFFSET] = 4;
        assert!(matches!(parse(&current), Err(ChunkError::BadHeader(_))));
        assert!(matches!(parse(b"DCQX\x05"), Err(ChunkError::BadMagic)));
    }

    #[test]
    fn metrics_keep_their_offset_from_the_target_to_half_precision() {
        let record = |target: f64, predicted: Option<f64>, measured: Option<f64>| {
            let q = Quality {
                target,
                predicted,
                measured,
                ..quality()
            };
            let (bytes, _) = padded_chunk(Some(q));
            parse(&bytes).unwrap().0.quality.unwrap()
        };
        // A PSNR a few dB from its target keeps about a thousandth of a dB.
        let q = record(40.0, Some(43.217), Some(40.123456));
        assert!((q.predicted.unwrap() - 43.217).abs() < 2e-3, "{q:?}");
        assert!((q.measured.unwrap() - 40.123456).abs() < 1e-4, "{q:?}");
        // A met target reads back as met, however small the excess.
        let q = record(60.0, None, Some(60.0 + 1e-9));
        assert!(q.measured.unwrap() >= 60.0, "{q:?}");
        // An SSIM near 1 keeps its distance from the target to a few parts in 10^4.
        let q = record(0.999, Some(0.99953), Some(0.99931));
        assert!((q.predicted.unwrap() - 0.99953).abs() < 1e-6, "{q:?}");
        assert!((q.measured.unwrap() - 0.99931).abs() < 1e-6, "{q:?}");
        // Offsets beyond f16's range read back as unknown, either way; infinities stay
        // infinite.
        let q = record(10.0, Some(1e6), Some(f64::INFINITY));
        assert_eq!(q.predicted, None);
        assert_eq!(q.measured, Some(f64::INFINITY));
        let q = record(1e5, Some(143.7), Some(143.7));
        assert_eq!((q.predicted, q.measured), (None, None));
        // Never above what was measured: f16's nearest offset to 2.0015 was 2.00195.
        for m in [42.0015, 39.9985, 40.0 + 3e-8] {
            let q = record(40.0, Some(m), Some(m));
            assert!(
                q.measured.unwrap() <= m && m - q.measured.unwrap() < 2e-3,
                "{q:?}"
            );
            assert!(q.predicted.unwrap() <= m, "{q:?}");
        }
        // An SSIM target within 3e-8 of 1 is no exact decode: it reads below 1, and a
        // measured SSIM under 1 with it.
        let mut q = quality();
        q.kind = TargetKind::Ssim;
        q.target = 0.999999999;
        q.measured = Some(0.9999999995);
        let (bytes, _) = padded_chunk(Some(q));
        let q = parse(&bytes).unwrap().0.quality.unwrap();
        assert!(
            q.target < 1.0 && q.measured.unwrap() <= 0.9999999995,
            "{q:?}"
        );
    }

    /// A chunk laid out by hand as format versions 1 and 2 wrote it (fixed-width fields,
    /// u64 padding dims): the f32 values 1.5, −2, 3.25, 8, 0.5 in a chunk of 8 whose other
    /// values are the fill 7, with `quality` (a version-2 record) appended to the extension.
    fn fixed_width_chunk(version: u8, flags: u8, quality: &[u8]) -> Vec<u8> {
        fixed_width_chunk_of(DType::F32, version, flags, quality)
    }

    /// [`fixed_width_chunk`] with another dtype byte.
    fn fixed_width_chunk_of(dtype: DType, version: u8, flags: u8, quality: &[u8]) -> Vec<u8> {
        let inner: Vec<f32> = vec![1.5, -2.0, 3.25, 8.0, 0.5];
        let payload = codec_for(CodecId::Lossless)
            .encode(Samples::F32(&inner), &[5], 0.0)
            .unwrap();
        let mut ext = Vec::new();
        ext.extend_from_slice(&5u64.to_le_bytes());
        ext.extend_from_slice(&7.0f32.to_le_bytes());
        ext.extend_from_slice(quality);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"DCQK");
        bytes.extend_from_slice(&[version, CodecId::Lossless as u8, dtype as u8, 4, 1]);
        bytes.push(flags);
        bytes.extend_from_slice(&(ext.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&32u64.to_le_bytes());
        bytes.extend_from_slice(&0f64.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&8u64.to_le_bytes());
        bytes.extend_from_slice(&ext);
        sealed(bytes, &payload)
    }

    /// Decodes a [`fixed_width_chunk`] and checks its values.
    fn decode_fixed_width(bytes: &[u8]) -> Header {
        let (header, values) = decode(bytes).unwrap();
        assert_eq!(header.padding.as_ref().unwrap().inner, vec![5]);
        let SampleBuf::F32(values) = values else {
            panic!("not f32")
        };
        assert_eq!(values, vec![1.5, -2.0, 3.25, 8.0, 0.5, 7.0, 7.0, 7.0]);
        header
    }

    #[test]
    fn version_1_chunks_with_a_padding_record_still_decode() {
        // Version 1: reserved byte 0, the extension holding only the padding record.
        let header = decode_fixed_width(&fixed_width_chunk(1, 0, &[]));
        assert_eq!(header.version, 1);
        assert_eq!(header.quality, None);
    }

    #[test]
    fn an_old_opaque_chunk_with_a_padding_record_is_a_header_error() {
        // Versions 1 and 2 flagged no padding record: it is known once the extension is read.
        for (version, flags) in [(1, 0), (2, ext_flags::PADDING)] {
            match parse(&fixed_width_chunk_of(DType::Opaque, version, flags, &[])) {
                Err(ChunkError::BadHeader(msg)) => assert!(msg.contains("opaque data"), "{msg}"),
                other => panic!("version {version}: expected a header error, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_lossy_chunk_whose_bound_is_nan_or_negative_is_a_header_error() {
        let values = [0.5f32; 16];
        let good = wrap(
            CodecId::Sz3,
            &Samples::F32(&values),
            &[4, 4],
            1e-3,
            None,
            None,
            b"x",
        );
        // The bound follows the rank and the two one-byte dims.
        let at = wire::CODEC_DTYPE_OFFSET + 5;
        assert_eq!(good[at..at + 4], (1e-3f32).to_le_bytes());
        assert!(parse(&good).is_ok());
        for bound in [f32::NAN, -1e-3] {
            let mut bytes = good.clone();
            bytes[at..at + 4].copy_from_slice(&bound.to_le_bytes());
            reseal(&mut bytes);
            match parse(&bytes) {
                Err(ChunkError::BadHeader(msg)) => assert!(msg.contains("bound"), "{msg}"),
                other => panic!("{bound}: expected a header error, got {other:?}"),
            }
        }
    }

    #[test]
    fn version_2_chunks_with_padding_and_quality_still_decode() {
        // Version 2: flags, and f64 metrics in a 26-byte quality record.
        let mut record = vec![TargetKind::Psnr as u8, Mode::Guarantee as u8];
        for v in [62.5f64, f64::NAN, 64.123456789] {
            record.extend_from_slice(&v.to_le_bytes());
        }
        let flags = ext_flags::PADDING | ext_flags::QUALITY;
        let header = decode_fixed_width(&fixed_width_chunk(2, flags, &record));
        assert_eq!(header.version, 2);
        let q = header.quality.unwrap();
        assert_eq!(
            (q.target, q.predicted, q.measured),
            (62.5, None, Some(64.123456789))
        );
    }

    #[test]
    fn a_64_cubed_header_with_quality_record_takes_26_bytes() {
        let values: Vec<f32> = (0..1 << 18).map(|i| (i as f32 * 1e-3).sin()).collect();
        let q = Some(quality());
        let bytes = encode(CodecId::Sz3, Samples::F32(&values), &[64; 3], 1e-3, q).unwrap();
        let (header, payload) = parse(&bytes).unwrap();
        let header_bytes = bytes.len() - payload.len();
        assert_eq!(header_bytes, 26);
        assert_eq!(header_bytes, header_len(&[64; 3]));
        assert_eq!(header_len(&[200, 3]), 6 + 2 + 1 + 4 + 9 + 4);
        assert_eq!(header.original_len, 4 << 18);
        // Metrics are stored as f16 offsets from the target: 1.75 dB over is exact.
        let measured = header.quality.unwrap().measured.unwrap();
        assert_eq!(measured, 64.25);
        // The codec is given the largest f32 at or below the bound, which the header holds.
        assert_eq!(
            header.bound,
            f64::from(f32::from_bits(1e-3f32.to_bits() - 1))
        );
        assert!(header.bound <= 1e-3 && header.bound > 1e-3 * (1.0 - 1e-7));
    }

    #[test]
    fn targets_read_back_as_typed() {
        for target in [0.999, 62.5, 1e-7, 123456.7] {
            let q = Quality {
                target,
                ..quality()
            };
            let (bytes, _) = padded_chunk(Some(q));
            assert_eq!(parse(&bytes).unwrap().0.quality.unwrap().target, target);
        }
        // Beyond f32's range the record keeps f32's largest value: still a readable chunk.
        let q = Quality {
            target: 1e300,
            ..quality()
        };
        let (bytes, _) = padded_chunk(Some(q));
        let read = decode(&bytes).unwrap().0.quality.unwrap().target;
        assert!(read.is_finite() && read > 3e38, "{read}");
    }

    #[test]
    fn opaque_chunks_keep_their_element_size() {
        let bytes: Vec<u8> = (0..60).collect();
        let data = Samples::Opaque {
            bytes: &bytes,
            elem_size: 6,
        };
        let chunk = encode(CodecId::Lossless, data, &[10], 0.0, None).unwrap();
        let (header, values) = decode(&chunk).unwrap();
        assert_eq!(header.layout.elem_size, 6);
        assert_eq!(values, SampleBuf::Opaque(bytes));
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_header_errors() {
        for v in [0u64, 1, 127, 128, 300, 1 << 32, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader {
                bytes: &out,
                pos: 0,
            };
            assert_eq!(r.varint("v").unwrap(), v);
            assert_eq!(r.pos, out.len());
        }
        let overlong = [0xffu8; 11];
        let mut r = Reader {
            bytes: &overlong,
            pos: 0,
        };
        assert!(matches!(r.varint("v"), Err(ChunkError::BadHeader(_))));
    }

    #[test]
    fn newer_versions_are_refused_by_name() {
        let mut bytes = sample_chunk();
        bytes[wire::VERSION_OFFSET] = wire::FORMAT_VERSION + 1;
        reseal(&mut bytes);
        assert!(matches!(
            parse(&bytes),
            Err(ChunkError::UnsupportedVersion(v)) if v == wire::FORMAT_VERSION + 1
        ));
    }

    fn wave<T: crate::samples::Element>(n: usize, f: impl Fn(f64) -> T) -> Vec<T> {
        (0..n)
            .map(|i| f((i as f64 * 0.37).sin() + (i as f64 * 0.011).cos()))
            .collect()
    }

    #[test]
    fn sperr_and_sz3_chunks_are_stored_compact_and_decode_the_same() {
        let q = Some(quality());
        // Bytes a compact payload saves at least: the container header, and for SPERR
        // also most of the quantisation step (8 bytes, now 1–3) and of the SPECK stream's
        // u64 bit count.
        for (codec, shape, saved) in [
            (CodecId::Sperr, vec![6, 20, 36], 18 + 11),
            (CodecId::Sperr, vec![40, 56], 10 + 11),
            (CodecId::Sperr, vec![1000], 10 + 11),
            (CodecId::Sz3, vec![6, 20, 36], 8 + 20),
            (CodecId::Sz3, vec![1000], 8 + 20),
        ] {
            let n: usize = shape.iter().product();
            let f32s = wave(n, |x| x as f32);
            let f64s = wave(n, |x| x);
            for data in [Samples::F32(&f32s), Samples::F64(&f64s)] {
                let bound = codec_bound(1e-3);
                assert!(bound <= 1e-3 && bound > 1e-3 * (1.0 - 1e-7));
                let full = codec_for(codec).encode(data, &shape, bound).unwrap();
                let bytes = encode(codec, data, &shape, 1e-3, q).unwrap();
                assert!(
                    bytes.len() <= header_len(&shape) + full.len() - saved,
                    "{codec:?} {shape:?}: {} bytes for a {}-byte payload",
                    bytes.len(),
                    full.len()
                );
                let layout = Layout::of(&data, &shape);
                assert_eq!(
                    bytes.len(),
                    header_len(&shape) + stored_payload_len(codec, &layout, bound, &full)
                );
                assert_eq!(bytes[wire::VERSION_OFFSET], 7);
                assert_eq!(
                    bytes[wire::EXT_FLAGS_OFFSET],
                    ext_flags::QUALITY | ext_flags::COMPACT
                );
                let (header, back) = decode(&bytes).unwrap();
                assert!(header.compact);
                assert_eq!(header.bound, bound);
                let direct = codec_for(codec).decode(&full, &layout, bound).unwrap();
                assert_eq!(back.view().as_bytes(), direct.view().as_bytes());
            }
        }
    }

    #[test]
    fn version_6_chunks_rebuild_only_the_container_header() {
        let values = wave(6 * 20 * 36, |x| x as f32);
        let data = Samples::F32(&values);
        let shape = [6, 20, 36];
        let bound = codec_bound(1e-3);
        let full = codec_for(CodecId::Sperr)
            .encode(data, &shape, bound)
            .unwrap();
        // What a version-6 writer stored: the payload after SPERR's 18-byte frame.
        let header = Header {
            version: 6,
            codec: CodecId::Sperr,
            layout: Layout::of(&data, &shape),
            bound,
            original_len: data.byte_len() as u64,
            padding: None,
            quality: None,
            compact: true,
            big_endian: false,
            missing: None,
        };
        let mut bytes = assemble(&header, &full[18..]);
        bytes[wire::VERSION_OFFSET] = 6;
        reseal(&mut bytes);
        let (read, back) = decode(&bytes).unwrap();
        assert_eq!(read.version, 6);
        let direct = codec_for(CodecId::Sperr)
            .decode(&full, &header.layout, bound)
            .unwrap();
        assert_eq!(back.view().as_bytes(), direct.view().as_bytes());
        // Read as version 7, the same bytes are not a compact stream.
        bytes[wire::VERSION_OFFSET] = 7;
        reseal(&mut bytes);
        assert!(matches!(decode(&bytes), Err(ChunkError::BadHeader(m)) if m.contains("expand")));
    }

    #[test]
    fn padded_sperr_chunks_rebuild_the_frame_of_their_block() {
        let inner = wave(4 * 24, |x| x as f32);
        let pad = Padding {
            inner: vec![4, 24],
            fill: 0f32.to_le_bytes().to_vec(),
        };
        let data = Samples::F32(&inner);
        let bytes = encode_padded(CodecId::Sperr, data, &[6, 32], &pad, 1e-4, None).unwrap();
        let full = codec_for(CodecId::Sperr)
            .encode(data, &pad.inner, codec_bound(1e-4))
            .unwrap();
        let layout = Layout::of(&data, &pad.inner);
        let stored = stored_payload_len(CodecId::Sperr, &layout, codec_bound(1e-4), &full);
        assert!(stored <= full.len() - 10 - 11, "{stored} of {}", full.len());
        assert_eq!(
            bytes.len(),
            header_len(&[6, 32]) - quality_record::LEN + 6 + stored
        );
        let (header, back) = decode(&bytes).unwrap();
        assert!(header.compact);
        let back = match back {
            SampleBuf::F32(v) => v,
            other => panic!("{other:?}"),
        };
        for (row, chunk_row) in back.chunks(32).enumerate() {
            for (col, &v) in chunk_row.iter().enumerate() {
                let expected = if row < 4 && col < 24 {
                    inner[row * 24 + col]
                } else {
                    0.0
                };
                assert!(
                    (v - expected).abs() <= 1e-4,
                    "({row}, {col}): {v} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn a_payload_that_does_not_rebuild_exactly_is_stored_whole() {
        let layout = Layout {
            dtype: DType::F32,
            elem_size: 4,
            shape: vec![6, 20, 36],
        };
        let values = wave(6 * 20 * 36, |x| x as f32);
        let bound = codec_bound(1e-3);
        let payload = codec_for(CodecId::Sperr)
            .encode(Samples::F32(&values), &layout.shape, bound)
            .unwrap();
        let compact = |p: &[u8], b| compact_payload(CodecId::Sperr, &layout, b, p);
        assert!(compact(&payload, bound).is_some());
        // Another quantisation step than the bound gives (a bound the header cannot hold).
        assert_eq!(compact(&payload, bound * (1.0 + 1e-12)), None);
        let mut other = payload.clone();
        other[0] = 1; // another SPERR major version
        assert_eq!(compact(&other, bound), None);
        assert_eq!(compact(&payload[..payload.len() - 1], bound), None);
        let mut longer = payload.clone();
        longer.push(0);
        assert_eq!(compact(&longer, bound), None);
        assert_eq!(
            compact_payload(CodecId::Zfp, &layout, bound, &payload),
            None
        );
        assert_eq!(
            stored_payload_len(CodecId::Zfp, &layout, bound, &payload),
            payload.len()
        );
    }

    #[test]
    fn the_frame_flag_is_an_error_without_a_frame_or_before_version_6() {
        let values = wave(64, |x| x as f32);
        let mut zfp = encode(CodecId::Zfp, Samples::F32(&values), &[64], 1e-3, None).unwrap();
        zfp[wire::EXT_FLAGS_OFFSET] |= ext_flags::COMPACT;
        reseal(&mut zfp);
        assert!(matches!(parse(&zfp), Err(ChunkError::BadHeader(m)) if m.contains("container")));
        let mut sperr = encode(CodecId::Sperr, Samples::F32(&values), &[64], 1e-3, None).unwrap();
        sperr[wire::VERSION_OFFSET] = 5;
        reseal(&mut sperr);
        assert!(matches!(parse(&sperr), Err(ChunkError::BadHeader(m)) if m.contains("flags")));
        // A version-5 chunk (no frame flag) still decodes.
        let mut plain = encode(CodecId::Zfp, Samples::F32(&values), &[64], 1e-3, None).unwrap();
        plain[wire::VERSION_OFFSET] = 5;
        reseal(&mut plain);
        assert_eq!(decode(&plain).unwrap().0.version, 5);
    }
}
