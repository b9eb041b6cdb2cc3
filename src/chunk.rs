//! The self-describing chunk: header (layout in [`crate::wire`]) + codec payload.
//!
//! [`encode`] and [`decode`] are the only functions that read or write chunk bytes.
//! Decoding needs nothing but the chunk: no model, no onnxruntime, no HDF5 metadata.

use crate::codec::{codec_for, CodecError};
use crate::padding::{self, Padding};
use crate::samples::{Element, Layout, SampleBuf, Samples};
use crate::wire::{self, CodecId, DType};

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
    #[error("chunk format version {0} is newer than this reader ({max})", max = wire::FORMAT_VERSION)]
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
}

/// Compresses `data` with `codec` and wraps the payload in a header.
pub fn encode(
    codec: CodecId,
    data: Samples<'_>,
    shape: &[usize],
    bound: f64,
) -> Result<Vec<u8>, ChunkError> {
    let payload = codec_for(codec).encode(data, shape, bound)?;
    Ok(wrap(codec, &data, shape, bound, None, &payload))
}

/// Compresses the prefix block `inner` (dims `padding.inner`) of a chunk of `shape` whose
/// other values all equal `padding.fill`.
pub fn encode_padded(
    codec: CodecId,
    inner: Samples<'_>,
    shape: &[usize],
    padding: &Padding,
    bound: f64,
) -> Result<Vec<u8>, ChunkError> {
    let payload = codec_for(codec).encode(inner, &padding.inner, bound)?;
    Ok(wrap(
        codec,
        &inner,
        shape,
        bound,
        Some(padding.clone()),
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
    payload: &[u8],
) -> Vec<u8> {
    let layout = Layout::of(data, shape);
    let header = Header {
        version: wire::FORMAT_VERSION,
        codec,
        bound: if codec == CodecId::Lossless {
            0.0
        } else {
            bound
        },
        original_len: layout.byte_len().unwrap_or(0) as u64,
        layout,
        padding,
    };
    assemble(&header, payload)
}

fn extension_bytes(padding: &Option<Padding>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(p) = padding {
        for &d in &p.inner {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&p.fill);
    }
    out
}

/// Writes header, checksum and payload into one buffer.
fn assemble(header: &Header, payload: &[u8]) -> Vec<u8> {
    let rank = header.layout.shape.len();
    let extension = extension_bytes(&header.padding);
    let mut out = Vec::with_capacity(wire::FIXED_HEADER_LEN + 8 * rank + 4 + payload.len());
    out.extend_from_slice(&wire::MAGIC);
    out.push(header.version);
    out.push(header.codec as u8);
    out.push(header.layout.dtype as u8);
    out.push(header.layout.elem_size as u8);
    out.push(rank as u8);
    out.push(0);
    out.extend_from_slice(&(extension.len() as u16).to_le_bytes());
    out.extend_from_slice(&header.original_len.to_le_bytes());
    out.extend_from_slice(&header.bound.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    for &d in &header.layout.shape {
        out.extend_from_slice(&(d as u64).to_le_bytes());
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
}

/// Parses and validates the header, verifies the checksum, and returns the header and the
/// payload. Nothing is allocated from untrusted sizes before the checksum has passed.
pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), ChunkError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4, "magic")? != wire::MAGIC {
        return Err(ChunkError::BadMagic);
    }
    let version = r.u8("version")?;
    if version == 0 || version > wire::FORMAT_VERSION {
        return Err(ChunkError::UnsupportedVersion(version));
    }
    let codec_byte = r.u8("codec")?;
    let dtype_byte = r.u8("dtype")?;
    let elem_size = r.u8("element size")? as usize;
    let rank = r.u8("rank")? as usize;
    let _reserved = r.u8("reserved")?;
    let ext_len = r.u16("extension length")? as usize;
    let original_len = r.u64("original length")?;
    let bound = f64::from_le_bytes(r.take(8, "bound")?.try_into().unwrap());
    let payload_len = r.u64("payload length")?;
    if rank > wire::MAX_RANK {
        return Err(ChunkError::BadHeader(format!("rank {rank}")));
    }
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        shape.push(r.u64("dims")? as usize);
    }
    let extension = r.take(ext_len, "extension")?.to_vec();
    let header_end = r.pos;
    let stored = r.u32("checksum")?;
    let payload_len =
        usize::try_from(payload_len).map_err(|_| ChunkError::BadHeader("payload length".into()))?;
    let payload = r.take(payload_len, "payload")?;
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

    let codec = CodecId::from_u8(codec_byte)
        .ok_or_else(|| ChunkError::BadHeader(format!("codec id {codec_byte}")))?;
    let dtype = DType::from_u8(dtype_byte)
        .ok_or_else(|| ChunkError::BadHeader(format!("dtype {dtype_byte}")))?;
    let natural_size = match dtype {
        DType::F32 => Some(4),
        DType::F64 => Some(8),
        DType::Opaque => None,
    };
    if elem_size == 0 || natural_size.is_some_and(|s| s != elem_size) {
        return Err(ChunkError::BadHeader(format!(
            "element size {elem_size} for {}",
            dtype.name()
        )));
    }
    let layout = Layout {
        dtype,
        elem_size,
        shape,
    };
    match layout.byte_len() {
        Some(n) if n as u64 == original_len && original_len <= wire::MAX_ORIGINAL_LEN => {}
        _ => {
            return Err(ChunkError::BadHeader(format!(
                "shape {:?} × {elem_size} B does not give {original_len} bytes",
                layout.shape
            )))
        }
    }
    let padding = parse_padding(&extension, &layout)?;
    if dtype == DType::Opaque && (codec != CodecId::Lossless || padding.is_some()) {
        return Err(ChunkError::BadHeader(
            "opaque data with a lossy codec".into(),
        ));
    }
    let header = Header {
        version,
        codec,
        layout,
        bound,
        original_len,
        padding,
    };
    Ok((header, payload))
}

/// Reads the padding record: inner dims (u64 each) then one fill element.
fn parse_padding(extension: &[u8], layout: &Layout) -> Result<Option<Padding>, ChunkError> {
    if extension.is_empty() {
        return Ok(None);
    }
    let rank = layout.shape.len();
    if extension.len() != 8 * rank + layout.elem_size {
        return Err(ChunkError::BadHeader(format!(
            "padding record of {} bytes",
            extension.len()
        )));
    }
    let inner: Vec<usize> = extension[..8 * rank]
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
        .collect();
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
    Ok(Some(Padding {
        inner,
        fill: extension[8 * rank..].to_vec(),
    }))
}

/// Decodes a chunk into its values.
pub fn decode(bytes: &[u8]) -> Result<(Header, SampleBuf), ChunkError> {
    let (header, payload) = parse(bytes)?;
    let codec = codec_for(header.codec);
    let values = match &header.padding {
        None => codec.decode(payload, &header.layout, header.bound)?,
        Some(p) => {
            let inner_layout = Layout {
                shape: p.inner.clone(),
                ..header.layout.clone()
            };
            let inner = codec.decode(payload, &inner_layout, header.bound)?;
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
        encode(CodecId::Lossless, Samples::F32(&values), &[4, 16], 0.0).unwrap()
    }

    #[test]
    fn header_round_trips() {
        let bytes = sample_chunk();
        let (header, values) = decode(&bytes).unwrap();
        assert_eq!(header.codec, CodecId::Lossless);
        assert_eq!(header.layout.shape, vec![4, 16]);
        assert_eq!(header.original_len, 256);
        assert_eq!(values.view().len(), 64);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_chunk();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len} decoded");
        }
    }

    #[test]
    fn every_single_byte_flip_is_an_error() {
        let bytes = sample_chunk();
        for i in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 0x5a;
            assert!(decode(&corrupt).is_err(), "flip at {i} decoded");
        }
    }
}
