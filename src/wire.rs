//! Every constant that ends up on disk or crosses the C boundary lives here, and only here:
//! the HDF5 filter id, the chunk magic and version, the codec and dtype numbers.
//!
//! # Chunk layout, format version 1
//!
//! All integers are little-endian. Offsets are in bytes.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `DCQK` |
//! | 4 | 1 | format version (1) |
//! | 5 | 1 | codec id ([`CodecId`]) |
//! | 6 | 1 | dtype ([`DType`]) |
//! | 7 | 1 | element size in bytes |
//! | 8 | 1 | rank `r` (at most [`MAX_RANK`]) |
//! | 9 | 1 | reserved, 0 |
//! | 10 | 2 | extension length `e` |
//! | 12 | 8 | original byte length (what the decoder must hand back) |
//! | 20 | 8 | absolute error bound the codec was given (f64; 0 for lossless) |
//! | 28 | 8 | payload length `p` |
//! | 36 | 8·r | dims, slowest first (C order) |
//! | 36+8r | e | extension records, which a version-1 reader skips |
//! | 36+8r+e | 4 | CRC-32 (IEEE) of every byte above and of the payload |
//! | 40+8r+e | p | codec payload |
//!
//! The checksum is verified before any codec sees the payload, so a corrupted chunk is an
//! error and never reaches C or C++ code that trusts its input.

/// HDF5 filter id. 256–511 is HDF5's range for testing and unregistered filters; a
/// registered id is to be requested from The HDF Group before the first release.
pub const FILTER_ID: u32 = 357;

/// Name HDF5 tools (h5dump, h5repack -v) show for the filter.
pub const FILTER_NAME: &str = "deepcq: quality-targeted lossy compression";

/// First four bytes of every chunk this crate writes.
pub const MAGIC: [u8; 4] = *b"DCQK";

/// Chunk format version written by this build. Readers accept any version up to this one.
pub const FORMAT_VERSION: u8 = 1;

/// Largest rank a chunk header may declare (HDF5's own limit is 32).
pub const MAX_RANK: usize = 32;

/// Byte length of the fixed part of the header, before the dims.
pub const FIXED_HEADER_LEN: usize = 36;

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

    /// Lower-case name used by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Opaque => "opaque",
        }
    }
}
