//! Every constant that ends up on disk or crosses the C boundary lives here, and only here:
//! the HDF5 filter id, the chunk magic and version, the codec and dtype numbers, the
//! extension flags and the quality record layout. docs/format.md is the prose spec.
//!
//! # Chunk layout, format version 7 (8)
//!
//! Integers are little-endian; "varint" is unsigned LEB128 (7 bits per byte, low group
//! first, high bit set on all but the last byte, at most 10 bytes). Offsets are in bytes.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `DQ` ([`MAGIC`]) |
//! | 2 | 1 | format version (7, or 8 for a compact SPERR stream by rate; readers accept 1 to 8) |
//! | 3 | 1 | codec id ([`CodecId`]) in the low nibble, dtype ([`DType`]) in the high one |
//! | 4 | 1 | extension flags ([`ext_flags`]) |
//! | 5 | 1 | rank `r` (at most [`MAX_RANK`]) |
//! | 6 | r varints | dims, slowest first (C order) |
//! | | varint | element size in bytes: opaque chunks only (f32 and f64 imply theirs) |
//! | | 4 | absolute error bound the codec was given, as f32 (writers give codecs f32 bounds; older ones rounded up): lossy codecs only |
//! | | | extension records, in flag-bit order (below) |
//! | | 4 | CRC-32 (IEEE) of every byte above and of the payload |
//! | | rest | codec payload, to the end of the chunk |
//!
//! The decoded length is the product of the dims × the element size. A 64³ f32 chunk's
//! header with a quality record is 26 bytes (version 4 took 32, version 3 47, version 2
//! 90): at 40 dB a chunk's payload can be under a hundred bytes, so the header is part of
//! the ratio. Since version 7 the bound is exactly the one the codec was given (the writer
//! gives codecs the largest f32 at or below the bound it wants), and compact SPERR and SZ3
//! payloads are expanded with it (SPERR's quantisation step, SZ3's configured bound);
//! earlier versions rounded it up, for `deepcq inspect` only.
//!
//! The extension holds, in this order, each record whose flag bit is set:
//! - [`ext_flags::PADDING`]: `r` varints, the dims of the prefix block the payload holds,
//!   then the fill value of the rest (one element; [`crate::padding`]);
//! - [`ext_flags::QUALITY`]: [`quality_record::LEN`] bytes, what the chunk was written for
//!   and what the writer predicted and measured ([`quality_record`]);
//! - [`ext_flags::MISSING`] (version 7 on): the dataset's fill value (one element), the
//!   length of a bitmap of the payload block's missing values and of its zstd frame
//!   (varints), then the frame ([`crate::chunk::Missing`]).
//!
//! - [`ext_flags::COMPACT`] (no record, version 6 on): the payload lacks the codec's
//!   container header, which repeats the dims, dtype and payload length, and from version
//!   7 whatever else [`crate::codec::Codec::compact`] leaves out; the decoder rebuilds it.
//!   Written only when rebuilding gives back exactly the codec's payload.
//!
//! Records delimit themselves, so an unknown flag bit is an error: a reader cannot know how
//! long that record is or whether decoding needs it.
//!
//! Version 6 is version 7 with a compact payload that only lacks the container header;
//! version 5 is version 6 without the flag.
//!
//! Version 4 (still read) began with the 4-byte magic `DCQK` ([`LEGACY_MAGIC`]) and
//! stored the predicted and measured metrics as f32 values
//! ([`quality_record::V4_LEN`] bytes); otherwise it is version 5. Version 3 had, after
//! the magic and version, one byte each for codec, dtype, element size, rank and flags,
//! the bound as f64, varint payload and extension lengths, then the dims and records; its
//! quality record ([`quality_record::V3_LEN`] bytes) held kind and mode in a byte each and
//! an f64 target. Versions 1 and 2 had fixed-width fields: after the flags byte a u16
//! extension length, a u64 original length, the f64 bound, a u64 payload length, then u64
//! dims; u64 padding dims; and f64 predicted/measured metrics in the quality record
//! ([`quality_record::V2_LEN`] bytes). Version 1 had a reserved 0 where the flags are,
//! and flags 0 with extension bytes there means a padding record.
//!
//! The checksum is verified before any codec sees the payload, so a corrupted chunk is an
//! error and never reaches C or C++ code that trusts its input.

/// HDF5 filter id. 256–511 is HDF5's range for testing and unregistered filters; a
/// registered id is to be requested from The HDF Group before the first release.
pub const FILTER_ID: u32 = 357;

/// Name HDF5 tools (h5dump, h5repack -v) show for the filter.
pub const FILTER_NAME: &str = "deepcq: quality-targeted lossy compression";

/// First two bytes of every chunk this crate writes (format version 5 on).
pub const MAGIC: [u8; 2] = *b"DQ";

/// First four bytes of the chunks format versions 1 to 4 wrote; still read.
pub const LEGACY_MAGIC: [u8; 4] = *b"DCQK";

/// Newest chunk format version this build writes ([`written_version`]). Readers accept any
/// version up to this one.
///
/// Version 2 turned the reserved byte into [`ext_flags`] and added the quality record. It
/// was bumped so that a version-1 reader, which would take a quality record for a corrupt
/// padding record, says "newer format" instead. Version 3 halved the header (varint
/// lengths and dims, no stored original length, f32 metrics in the quality record).
/// Version 4 took another third off: no stored lengths at all, codec and dtype share a
/// byte, the element size only where the dtype does not imply it, an f32 bound and target.
/// Version 5 shortened the magic to two bytes and stores the metrics as f16 offsets from
/// the target: 6 bytes less per chunk, 0.9 of a percent of the ratio at 40 dB. Version 6
/// leaves out the container header of SPERR and SZ3 payloads ([`ext_flags::COMPACT`]),
/// which repeats what the chunk header says: 18 bytes less per 3-D SPERR chunk, 8 per SZ3
/// chunk. Version 7 compacts SPERR and SZ3 payloads further under the same flag
/// ([`crate::codec::Codec::compact`]): SPERR's quantisation step as a small count from
/// which it follows with the bound and its bit counts as varints (10–19 bytes less per
/// chunk), SZ3's lengths as varints and its configuration without the value count and
/// the bound (about 28 bytes less). Version 8 compacts SPERR streams by rate too (a chunk
/// whose bound is 0, perhaps a stream cut short: [`crate::codec::Sperr::truncated`]),
/// whose quantisation step follows from no bound, so it stays whole; a build that reads
/// up to 7 would take it for a step count. Only such chunks are written as version 8
/// ([`written_version`]), so that those builds still read every other chunk.
pub const FORMAT_VERSION: u8 = 8;

/// The version every chunk is written as but a compact SPERR stream by rate (version
/// [`FORMAT_VERSION`]).
pub const PLAIN_VERSION: u8 = 7;

/// The version a chunk is written as: [`FORMAT_VERSION`] for a compact SPERR payload with
/// a bound of 0, which readers of version 7 cannot expand, else [`PLAIN_VERSION`].
pub fn written_version(codec: CodecId, bound: f64, compact: bool) -> u8 {
    match codec == CodecId::Sperr && bound == 0.0 && compact {
        true => FORMAT_VERSION,
        false => PLAIN_VERSION,
    }
}

/// Largest rank a chunk header may declare (HDF5's own limit is 32).
pub const MAX_RANK: usize = 32;

/// Byte length of the fixed part of the header, before the dims.
pub const FIXED_HEADER_LEN: usize = 6;

/// Offset of the format version byte.
pub const VERSION_OFFSET: usize = 2;

/// Offset of the byte holding the codec id (low nibble) and dtype (high nibble).
pub const CODEC_DTYPE_OFFSET: usize = 3;

/// Offset of the extension flags byte in the fixed header.
pub const EXT_FLAGS_OFFSET: usize = 4;

/// Offset of the rank byte in the fixed header.
pub const RANK_OFFSET: usize = 5;

/// Bits of the extension flags byte: which records the extension holds.
pub mod ext_flags {
    /// A padding record (edge chunk) is present.
    pub const PADDING: u8 = 1;
    /// A quality record is present.
    pub const QUALITY: u8 = 2;
    /// The payload is stored compact: in version 6 without the codec's container header,
    /// which the decoder rebuilds from the chunk header ([`crate::codec::Codec::frame`]);
    /// from version 7 as [`crate::codec::Codec::compact`] makes it (SPERR leaves out more).
    /// No record. Version 6 on.
    pub const COMPACT: u8 = 4;
    /// The dataset holds these values big-endian: the chunk stores them little-endian, and
    /// the filter swaps each value's bytes back after decoding. No record. Version 7 on;
    /// builds from before it refuse such chunks as unknown rather than misread them.
    pub const BIG_ENDIAN: u8 = 8;
    /// A missing-value record is present: the dataset's fill value and which values of
    /// the payload's block hold it ([`crate::chunk::Missing`]); the codec saw other values
    /// there, and the decoder puts the fill value back. Version 7 on; builds from before
    /// it refuse such chunks as unknown rather than misread them.
    pub const MISSING: u8 = 16;
    /// Every bit this build understands.
    pub const KNOWN: u8 = PADDING | QUALITY | COMPACT | BIG_ENDIAN | MISSING;
    /// The bits format version `version` may set.
    pub const fn known_in(version: u8) -> u8 {
        match version {
            7.. => KNOWN,
            6 => PADDING | QUALITY | COMPACT,
            _ => PADDING | QUALITY,
        }
    }
}

/// Layout of the quality record: offsets inside the record. It says what a chunk was
/// written for, so `deepcq inspect` can report it from the file alone. Decoding never
/// reads it.
pub mod quality_record {
    /// [`super::TargetKind`] in the low nibble, [`super::Mode`] in the high one.
    pub const KIND_MODE: usize = 0;
    /// Target value (f32) in the kind's unit: dB, SSIM, ratio or absolute bound. Read back
    /// as its shortest decimal, so a target typed as 0.999 reads as 0.999.
    pub const TARGET: usize = 1;
    /// Metric the chooser predicted for its first proposal, as an f16 offset from the
    /// target (NaN when none). Half precision keeps 11 significant bits of the offset: a
    /// PSNR 2 dB above its target to 0.001 dB.
    pub const PREDICTED: usize = 5;
    /// Metric measured on the decoded payload that was kept, as an f16 offset from the
    /// target (NaN when not measured).
    pub const MEASURED: usize = 7;
    /// Byte length of the record.
    pub const LEN: usize = 9;
    /// Version 4: offset of the predicted metric (f32).
    pub const V4_PREDICTED: usize = 5;
    /// Version 4: offset of the measured metric (f32).
    pub const V4_MEASURED: usize = 9;
    /// Version 4: byte length of the record.
    pub const V4_LEN: usize = 13;
    /// Versions 1 to 3: offset of the target kind (u8).
    pub const V3_KIND: usize = 0;
    /// Versions 1 to 3: offset of the mode (u8).
    pub const V3_MODE: usize = 1;
    /// Versions 1 to 3: offset of the target (f64).
    pub const V3_TARGET: usize = 2;
    /// Version 3: offset of the predicted metric (f32).
    pub const V3_PREDICTED: usize = 10;
    /// Version 3: offset of the measured metric (f32).
    pub const V3_MEASURED: usize = 14;
    /// Version 3: byte length of the record.
    pub const V3_LEN: usize = 18;
    /// Offset of the predicted metric (f64) in format versions 1 and 2.
    pub const V2_PREDICTED: usize = 10;
    /// Offset of the measured metric (f64) in format versions 1 and 2.
    pub const V2_MEASURED: usize = 18;
    /// Byte length of the record in format versions 1 and 2.
    pub const V2_LEN: usize = 26;
}

/// Largest original length a chunk may declare: HDF5 chunks are limited to 4 GiB.
pub const MAX_ORIGINAL_LEN: u64 = u32::MAX as u64;

/// Which codec produced a chunk's payload. The numbers are on disk: never reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CodecId {
    /// Byte-shuffle + zstd; exact.
    Lossless = 0,
    /// SZ3, absolute error bound.
    Sz3 = 1,
    /// ZFP fixed-accuracy mode.
    Zfp = 2,
    /// SPERR point-wise error mode.
    Sperr = 3,
}

impl CodecId {
    /// Every codec, lossless first.
    pub const ALL: [CodecId; 4] = [
        CodecId::Lossless,
        CodecId::Sz3,
        CodecId::Zfp,
        CodecId::Sperr,
    ];

    /// The lossy codecs, in the order candidates are listed.
    pub const LOSSY: [CodecId; 3] = [CodecId::Sz3, CodecId::Zfp, CodecId::Sperr];

    /// Parses the on-disk number.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u8 == value)
    }

    /// Lower-case name used by the CLI, logs and traces.
    pub fn name(self) -> &'static str {
        match self {
            CodecId::Lossless => "lossless",
            CodecId::Sz3 => "sz3",
            CodecId::Zfp => "zfp",
            CodecId::Sperr => "sperr",
        }
    }

    /// Parses a name as [`CodecId::name`] prints it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Element type of a chunk. The numbers are on disk: never reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    /// IEEE 754 binary32, native (little-endian) order.
    F32 = 1,
    /// IEEE 754 binary64, native (little-endian) order.
    F64 = 2,
    /// Anything else (integers, compounds, strings): stored losslessly as bytes.
    Opaque = 3,
}

impl DType {
    /// Parses the on-disk number.
    pub fn from_u8(value: u8) -> Option<Self> {
        [DType::F32, DType::F64, DType::Opaque]
            .into_iter()
            .find(|d| *d as u8 == value)
    }

    /// The element size the type implies (4, 8), or `None` for opaque data, whose chunks
    /// record their own.
    pub fn natural_size(self) -> Option<usize> {
        match self {
            DType::F32 => Some(4),
            DType::F64 => Some(8),
            DType::Opaque => None,
        }
    }

    /// Lower-case name used by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Opaque => "opaque",
        }
    }
}

/// The cd_values words a user types (`h5repack -f UD=357,0,n,w0,w1,…`). Only the first is
/// required; see docs/cd_values.md for the full spec.
pub mod user_cd {
    /// Target mantissa: the target is `mantissa / 10^decimals`.
    pub const TARGET: usize = 0;
    /// What the target means ([`super::TargetKind`]); default PSNR.
    pub const KIND: usize = 1;
    /// Decimal places of the mantissa (62.5 dB = mantissa 625, decimals 1); default 0.
    pub const DECIMALS: usize = 2;
    /// Compressor restriction ([`super::CompressorChoice`]); default automatic.
    pub const COMPRESSOR: usize = 3;
    /// [`super::Mode`]; default guarantee.
    pub const MODE: usize = 4;
    /// Bit set of [`super::flags`]; default 0.
    pub const FLAGS: usize = 5;
    /// Low word of the missing value's f64 bits, with [`super::flags::MISSING_VALUE`].
    pub const MISSING_LO: usize = 6;
    /// High word of the missing value's f64 bits.
    pub const MISSING_HI: usize = 7;
    /// Number of words without a missing value.
    pub const PLAIN_LEN: usize = 6;
    /// Number of words a user may pass (with a missing value).
    pub const MAX_LEN: usize = 8;
}

/// The cd_values HDF5 stores in the file, written by `set_local`. Slot 0 carries
/// [`STORED_MARKER`] so the stored form is never mistaken for a user's target, and a file
/// can be repacked again with its own values.
pub mod stored_cd {
    /// [`super::STORED_MARKER`] | cd_values version.
    pub const MARKER: usize = 0;
    /// [`super::TargetKind`].
    pub const KIND: usize = 1;
    /// Target mantissa.
    pub const TARGET: usize = 2;
    /// Decimal places of the mantissa.
    pub const DECIMALS: usize = 3;
    /// [`super::CompressorChoice`].
    pub const COMPRESSOR: usize = 4;
    /// [`super::Mode`].
    pub const MODE: usize = 5;
    /// [`super::flags`].
    pub const FLAGS: usize = 6;
    /// [`super::DType`] of the dataset.
    pub const DTYPE: usize = 7;
    /// Element size in bytes.
    pub const ELEM_SIZE: usize = 8;
    /// Chunk rank `r`; the chunk dims (slowest first) follow in slots 10..10+r.
    pub const RANK: usize = 9;
    /// First chunk dim.
    pub const DIMS: usize = 10;
}

/// High 24 bits of stored slot 0 ("DCQ"); the low 8 bits are the cd_values version (1 to
/// [`CD_VERSION`]).
pub const STORED_MARKER: u32 = 0x4443_5100;

/// Newest version of the stored cd_values layout this build reads.
pub const CD_VERSION: u32 = CD_VERSION_SHORT;

/// The version of the long layout ([`stored_cd`]) with a named missing value
/// ([`NAMED_FILL_DTYPE`]).
pub const CD_VERSION_NAMED: u32 = 2;

/// The version of the short layout ([`short_cd`]), written only where the long one would
/// hold more than [`STORED_CD_FITS`] words; builds before it refuse it as newer.
pub const CD_VERSION_SHORT: u32 = 3;

/// Most stored words every reader takes whole: h5py's `get_filter` reads a filter's
/// cd_values into a 16-word array and then copies as many as the filter has, so the words
/// of a longer form after the 16th were read past that array (a 5-D chunk with an f64
/// fill value has 17: its fill value's high word last). HDF5's h5dump up to 1.14 reads 20.
pub const STORED_CD_FITS: usize = 16;

/// The short stored layout (version [`CD_VERSION_SHORT`]): the long one's settings and
/// dataset words packed, 4 + rank + fill words, so that a chunk of rank up to 10 with an
/// f64 fill value fits [`STORED_CD_FITS`]. The chunk dims and then the fill value's words
/// (as in the long form) run from slot 3 with slot [`short_cd::SHAPE`] left out: a short
/// form has at least 11 words, and its slot 9, where the long layout has the rank, holds
/// a number no rank is (at least 2^24), so that builds before version 3, which size a
/// chunk they cannot otherwise read from the long layout's slots 8–10+, find no size
/// there and decode it as they would any newer chunk. A later layout must keep that.
pub mod short_cd {
    /// [`super::STORED_MARKER`] | [`super::CD_VERSION_SHORT`].
    pub const MARKER: usize = 0;
    /// Kind (bits 0–3), decimals (4–7), compressor (8–11), mode (12–15), flags (16–31).
    pub const SETTINGS: usize = 1;
    /// Target mantissa.
    pub const TARGET: usize = 2;
    /// First of the dims-and-fill words.
    pub const WORDS: usize = 3;
    /// The long form's dtype word (bits 0–15), element size (16–23), chunk rank (24–31,
    /// never 0).
    pub const SHAPE: usize = 9;
    /// Fewest words a short form has: it is written only where the long one would have
    /// more than [`super::STORED_CD_FITS`], so rank + fill words ≥ 7.
    pub const MIN_LEN: usize = 11;
}

/// The version stored cd_values carry unless they hold a named missing value
/// ([`NAMED_FILL_DTYPE`], version 2) or need the short layout (version 3): every other
/// dataset's cd_values are those builds before version 2 wrote, and those builds refuse
/// versions 2 and 3 as newer, not as malformed.
pub const CD_VERSION_PLAIN: u32 = 1;

/// Bit of stored slot 7 ([`stored_cd::DTYPE`]; of slot 9 in the short layout,
/// [`short_cd::SHAPE`]) saying the dataset's floats are big-endian
/// in the file, so the filter swaps them before compressing (each chunk says so itself,
/// [`ext_flags::BIG_ENDIAN`]). Only such datasets set it.
pub const BIG_ENDIAN_DTYPE: u32 = 0x100;

/// Bit of stored slot 7 ([`stored_cd::DTYPE`]) saying the dataset has a user-defined fill
/// value, held in the words after the chunk dims: its little-endian bytes, 4 to a word
/// (one word for f32, two for f64). Values equal to it are missing data
/// ([`ext_flags::MISSING`]). Only f32/f64 datasets with such a fill value set it; builds
/// from before it refuse the stored form (an unknown dtype word) when repacking, and read
/// its chunks only if they hold no missing values.
pub const FILL_DTYPE: u32 = 0x200;

/// Bit of stored slot 7, with [`FILL_DTYPE`] only: the fill value is a missing value the
/// user form named ([`flags::MISSING_VALUE`]), not the dataset's own fill value. A stored
/// form passed back in (a second repack) keeps such a value; the dataset's own fill value
/// is read again from the dataset.
pub const NAMED_FILL_DTYPE: u32 = 0x400;

/// Largest number of decimal places a target may have.
pub const MAX_DECIMALS: u32 = 12;

/// What a target number means. The numbers are in cd_values: never reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum TargetKind {
    /// PSNR ≥ target dB on every chunk (value-range convention).
    Psnr = 0,
    /// SSIM ≥ target on every chunk.
    Ssim = 1,
    /// Compression ratio ≥ target on every chunk, at the best quality that reaches it.
    Ratio = 2,
    /// A fixed absolute error bound: |x − x'| ≤ target, no model involved.
    AbsBound = 3,
}

/// Which compressors the chooser may use. The numbers are in cd_values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum CompressorChoice {
    /// Any of SZ3, ZFP, SPERR, per chunk.
    Auto = 0,
    /// SZ3 only.
    Sz3 = 1,
    /// ZFP only.
    Zfp = 2,
    /// SPERR only.
    Sperr = 3,
}

/// How hard the filter checks its choice. The numbers are in cd_values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Mode {
    /// Decode, measure the real metric, and correct a miss: a PSNR, SSIM or absolute target
    /// is always met, a ratio whenever a bound of the codec reaches it. Two compressors are
    /// searched (the model's first two, or the one that won a dataset's last chunk and the
    /// model's first), and all three on chunks of kinds the model misreads
    /// (`crate::unfamiliar`) and where the runner-up won, the first stored over 3× more
    /// than predicted or a compressor's PSNR rose with a looser bound.
    Guarantee = 0,
    /// Trust the prediction: one compression per chunk (two where the first payload stores
    /// under half its predicted ratio at under a bit per value, or from ZFP, and the
    /// model's runner-up compressor promises 1.5× that: the runner-up once, the smaller
    /// payload kept), unless the payload stores more than
    /// 3× from the predicted ratio (the model misread the chunk) or the chunk holds
    /// quantised values, has an axis of 2 or 3 or holds a table's columns (kinds the model
    /// misreads, `crate::unfamiliar`): then it is decoded, measured and, on a PSNR miss,
    /// corrected as in fast mode. A misread payload that clears a PSNR target by more than
    /// 4.5 dB gets one looser try, kept if it meets the target. A chunk of a misread kind
    /// whose bound is at or below the safe bound meets a PSNR target for certain (SZ3,
    /// SPERR) and is not decoded, unless SZ3 stored it finer than a lattice's step (its
    /// decode may be exact and lossless smaller). A ratio target's stored size is checked
    /// and, short of the target or more than 3× past it, searched as in guarantee mode.
    Predict = 1,
    /// Guarantee on a small budget: the model's choice is compressed, decoded and
    /// measured; a miss is corrected and a large overshoot loosened, one more compression
    /// per compressor (the runner-up's only when the first payload was over 3× larger than
    /// predicted or the model ranks the two within a quarter of each other's ratio), then
    /// the safe bound. A PSNR, SSIM or absolute target is always met, in two to four
    /// times the time of one compression.
    Fast = 2,
}

/// Option bits in the flags word.
pub mod flags {
    /// When onnxruntime or the model cannot load, fall back to the analytic chooser instead
    /// of failing the write.
    pub const ALLOW_ANALYTIC_FALLBACK: u32 = 1;
    /// User form only: words 6 and 7 hold a missing value (an f64's bits, low word
    /// first) that marks missing data like a dataset's fill value does, for data whose
    /// missing value is not its HDF5 fill value and for the in-situ API. The stored form
    /// keeps it as the fill value ([`super::FILL_DTYPE`]) and never sets this bit.
    pub const MISSING_VALUE: u32 = 2;
    /// Every bit this build understands.
    pub const KNOWN: u32 = ALLOW_ANALYTIC_FALLBACK | MISSING_VALUE;
}

macro_rules! from_u32 {
    ($ty:ident: $($variant:ident),+) => {
        impl $ty {
            /// Parses the cd_values number.
            pub fn from_u32(value: u32) -> Option<Self> {
                [$($ty::$variant),+].into_iter().find(|v| *v as u32 == value)
            }
        }
    };
}
from_u32!(TargetKind: Psnr, Ssim, Ratio, AbsBound);
from_u32!(CompressorChoice: Auto, Sz3, Zfp, Sperr);
from_u32!(Mode: Guarantee, Predict, Fast);

impl TargetKind {
    /// Lower-case short name used by `deepcq inspect` and traces.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Psnr => "psnr",
            TargetKind::Ssim => "ssim",
            TargetKind::Ratio => "ratio",
            TargetKind::AbsBound => "abs",
        }
    }
}

impl Mode {
    /// Lower-case name, as `deepcq cdvalues --mode` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Guarantee => "guarantee",
            Mode::Predict => "predict",
            Mode::Fast => "fast",
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint: 7 bits per byte, low first, high bit set on
/// every byte but the last. A 64³ chunk's dims take one byte each instead of eight.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes ended inside it.
    Truncated,
    /// It runs past 10 bytes or 64 bits.
    TooLong,
}

/// Reads an unsigned LEB128 varint of at most 10 bytes that fits in 64 bits from the front
/// of `bytes`: its value and its length.
pub fn read_varint(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *bytes.get(i).ok_or(VarintError::Truncated)?;
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            break;
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(VarintError::TooLong)
}
