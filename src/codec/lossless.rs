//! Exact storage: byte-shuffle, then zstd. Used for non-float data, for chunks holding
//! NaN/Inf, and wherever a lossy codec cannot help. Shuffling groups the i-th byte of every
//! element together, which is what makes float and integer data compress under zstd.

use super::{check_shape, library_error, Codec, CodecError};
use crate::samples::{Layout, SampleBuf, Samples};
use crate::wire::CodecId;

/// zstd level: 3 is zstd's default and close to its best speed/ratio trade.
const ZSTD_LEVEL: i32 = 3;

/// Shuffle + zstd lossless codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lossless;

impl Codec for Lossless {
    fn id(&self) -> CodecId {
        CodecId::Lossless
    }

    fn encode(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        _bound: f64,
    ) -> Result<Vec<u8>, CodecError> {
        if !matches!(data, Samples::Opaque { .. }) {
            check_shape(data.len(), shape)?;
        }
        let shuffled = shuffle(data.as_bytes(), data.elem_size());
        zstd::bulk::compress(&shuffled, ZSTD_LEVEL).map_err(|e| library_error("lossless", e))
    }

    fn decode(
        &self,
        payload: &[u8],
        layout: &Layout,
        _bound: f64,
    ) -> Result<SampleBuf, CodecError> {
        let elem_size = layout.elem_size;
        let expected = layout
            .byte_len()
            .ok_or_else(|| library_error("lossless", "shape overflows"))?;
        let shuffled =
            zstd::bulk::decompress(payload, expected).map_err(|e| library_error("lossless", e))?;
        if shuffled.len() != expected {
            return Err(library_error(
                "lossless",
                format!(
                    "payload holds {} bytes, expected {expected}",
                    shuffled.len()
                ),
            ));
        }
        let bytes = unshuffle(&shuffled, elem_size);
        SampleBuf::from_bytes(layout.dtype, &bytes)
            .ok_or_else(|| library_error("lossless", "payload length is not whole elements"))
    }
}

/// Byte `b` of element `i` moves to `b * n + i`.
fn shuffle(bytes: &[u8], elem_size: usize) -> Vec<u8> {
    if elem_size <= 1 || bytes.len() % elem_size != 0 {
        return bytes.to_vec();
    }
    let n = bytes.len() / elem_size;
    let mut out = vec![0u8; bytes.len()];
    for (i, element) in bytes.chunks_exact(elem_size).enumerate() {
        for (b, &byte) in element.iter().enumerate() {
            out[b * n + i] = byte;
        }
    }
    out
}

/// Inverse of [`shuffle`].
fn unshuffle(bytes: &[u8], elem_size: usize) -> Vec<u8> {
    if elem_size <= 1 || bytes.len() % elem_size != 0 {
        return bytes.to_vec();
    }
    let n = bytes.len() / elem_size;
    let mut out = vec![0u8; bytes.len()];
    for (i, element) in out.chunks_exact_mut(elem_size).enumerate() {
        for (b, byte) in element.iter_mut().enumerate() {
            *byte = bytes[b * n + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trips() {
        let bytes: Vec<u8> = (0..24).collect();
        assert_eq!(shuffle(&bytes, 4)[..6], [0, 4, 8, 12, 16, 20]);
        assert_eq!(unshuffle(&shuffle(&bytes, 4), 4), bytes);
        assert_eq!(unshuffle(&shuffle(&bytes, 8), 8), bytes);
    }
}
