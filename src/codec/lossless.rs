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
        // The chunk header holds the size in 32 bits, as HDF5 does a chunk's: a larger
        // payload would be stored and never read back.
        if data.byte_len() as u64 > crate::wire::MAX_ORIGINAL_LEN {
            return Err(library_error(
                "lossless",
                "a chunk of 4 GiB or more (HDF5's chunks are smaller) cannot be stored",
            ));
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
        let shuffled = decompress(payload, expected)?;
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

/// Values in each run of [`Lossless::estimated_len`]'s sample: long enough for zstd to
/// find a field's repeats (a mask's, a lattice's) within a run.
const SAMPLE_RUN: usize = 256;

/// The share of a chunk [`Lossless::estimated_len`] compresses (one value in this many), at
/// least two runs: 2.0–3.5% of an SZ3 compression's time (`cargo bench --bench
/// chunk_timings`).
const SAMPLE_SHARE: usize = 32;

impl Lossless {
    /// The payload this codec would store for `data` (a chunk of `shape`), estimated from
    /// runs of 256 values spread over it, a thirty-second of it in all (at least two runs;
    /// the whole of a chunk of up to 512 values, exactly). The first half of the runs is
    /// compressed alone and then with the second: the first half's bytes pay zstd's frame
    /// and what it learns of the field, and every value past it is counted at what the
    /// second half added, which could match the first. Scaled from the whole sample
    /// instead, a checkerboard in 128² chunks was estimated over 8× its exact size (the
    /// frame's fixed bytes, 32 times over), and cut in two zstd blocks (a flush between the
    /// halves) the second block's own fixed bytes did the same. The estimate still errs
    /// large on patterns zstd matches better over the whole chunk (that checkerboard: 349
    /// bytes for 56). It serves to tell the chunks on which exact storage may beat a lossy
    /// payload (masks, coarse lattices, fields mostly of one value) from the many on which
    /// it stores several times more.
    pub fn estimated_len(data: Samples<'_>, shape: &[usize]) -> Result<usize, CodecError> {
        /// Starts of the runs, at the fractional parts of k·φ, each moved back to the start
        /// of its row (of `row` values) where a run holds whole rows: evenly spread over
        /// the rows and planes, unlike a fixed stride (a multiple of the row length in a
        /// chunk of powers of two, which put every run on the same rows of a 64³ chunk's
        /// planes), and in step with the rows, so that runs of a pattern line up as the
        /// whole chunk's rows do (a checkerboard's runs cut mid-row were estimated 12× its
        /// exact size in 128² chunks). `None` when the sample would be the whole of `n`
        /// values.
        fn starts(n: usize, row: usize) -> Option<Vec<usize>> {
            let count = (n / SAMPLE_SHARE / SAMPLE_RUN).max(2);
            if n <= count * SAMPLE_RUN {
                return None;
            }
            let golden = (5f64.sqrt() - 1.0) / 2.0;
            let span = (n - SAMPLE_RUN) as f64;
            let align = if row <= SAMPLE_RUN { row.max(1) } else { 1 };
            Some(
                (0..count)
                    .map(|k| ((k as f64 * golden).fract() * span) as usize / align * align)
                    .collect(),
            )
        }
        let (bytes, elem) = match data {
            Samples::F32(_) | Samples::F64(_) => (data.as_bytes(), data.elem_size()),
            // Stored exactly whatever this says.
            Samples::Opaque { bytes, .. } => return Ok(bytes.len()),
        };
        let row = shape.last().copied().unwrap_or(1);
        let Some(starts) = starts(data.len(), row) else {
            return Ok(Lossless.encode(data, &[data.len()], 0.0)?.len());
        };
        let run_bytes = SAMPLE_RUN * elem;
        let compressed_len = |runs: &[usize]| -> Result<usize, CodecError> {
            let picked: Vec<u8> = runs
                .iter()
                .flat_map(|&start| &bytes[start * elem..start * elem + run_bytes])
                .copied()
                .collect();
            zstd::bulk::compress(&shuffle(&picked, elem), ZSTD_LEVEL)
                .map(|payload| payload.len())
                .map_err(|e| library_error("lossless", e))
        };
        let first = &starts[..starts.len() / 2];
        let first_len = compressed_len(first)?;
        let rest_len = compressed_len(&starts)?.saturating_sub(first_len);
        let per_value = rest_len as f64 / ((starts.len() - first.len()) * SAMPLE_RUN) as f64;
        let past_first = (data.len() - first.len() * SAMPLE_RUN) as f64;
        Ok((first_len as f64 + per_value * past_first).ceil() as usize)
    }
}

/// Up to this many bytes (or [`BULK_RATIO`] times the payload, if that is more) zstd's
/// bulk decoder, which reserves the whole size it is told first, decodes a payload; a
/// larger one is read as a stream, so that the buffer grows only as decoded bytes arrive.
const BULK_BYTES: usize = 64 << 20;
/// The ratio of decoded bytes to payload bytes beyond which, over [`BULK_BYTES`], a
/// payload is read as a stream: more than lossless zstd plausibly reaches on values.
const BULK_RATIO: usize = 64;

/// The `expected` bytes of a zstd `payload`. A frame that declares another size than the
/// chunk's header is refused before anything is allocated, and a header declaring far
/// more than a payload of its length plausibly holds (a crafted one: opaque chunks may
/// declare up to 4 GiB) costs no more memory than the frame decodes to.
fn decompress(payload: &[u8], expected: usize) -> Result<Vec<u8>, CodecError> {
    match zstd::zstd_safe::get_frame_content_size(payload) {
        Ok(Some(n)) if n == expected as u64 => {}
        Ok(Some(n)) => {
            return Err(library_error(
                "lossless",
                format!("the zstd frame holds {n} bytes, the chunk {expected}"),
            ))
        }
        _ => return Err(library_error("lossless", "no zstd frame with its size")),
    }
    if expected <= BULK_BYTES.max(BULK_RATIO.saturating_mul(payload.len())) {
        return zstd::bulk::decompress(payload, expected).map_err(|e| library_error("lossless", e));
    }
    let mut out = Vec::new();
    let decoder =
        zstd::stream::read::Decoder::new(payload).map_err(|e| library_error("lossless", e))?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(decoder, expected as u64 + 1),
        &mut out,
    )
    .map_err(|e| library_error("lossless", e))?;
    Ok(out)
}

/// Byte `b` of element `i` moves to `b * n + i`.
fn shuffle(bytes: &[u8], elem_size: usize) -> Vec<u8> {
    if elem_size <= 1 || !bytes.len().is_multiple_of(elem_size) {
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
    if elem_size <= 1 || !bytes.len().is_multiple_of(elem_size) {
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
    use crate::wire::DType;

    #[test]
    fn a_chunk_of_4_gib_or_more_is_refused_before_it_is_read() {
        // Zeroed on allocation, so its pages stay unmapped while nothing reads them.
        let big = vec![0u8; (1 << 32) + 8];
        let data = Samples::Opaque {
            bytes: &big,
            elem_size: 8,
        };
        let err = Lossless.encode(data, &[big.len() / 8], 0.0).unwrap_err();
        assert!(err.to_string().contains("4 GiB"), "{err}");
    }

    #[test]
    fn shuffle_round_trips() {
        let bytes: Vec<u8> = (0..24).collect();
        assert_eq!(shuffle(&bytes, 4)[..6], [0, 4, 8, 12, 16, 20]);
        assert_eq!(unshuffle(&shuffle(&bytes, 4), 4), bytes);
        assert_eq!(unshuffle(&shuffle(&bytes, 8), 8), bytes);
    }

    #[test]
    fn a_frame_of_another_size_than_the_header_declares_is_refused_before_decoding() {
        let opaque = |len: usize| Layout {
            dtype: DType::Opaque,
            elem_size: 1,
            shape: vec![len],
        };
        let payload = zstd::bulk::compress(&[7u8; 1000], 3).unwrap();
        assert!(Lossless.decode(&payload, &opaque(1000), 0.0).is_ok());
        let err = Lossless
            .decode(&payload, &opaque(3 << 30), 0.0)
            .unwrap_err();
        assert!(err.to_string().contains("frame holds 1000 bytes"), "{err}");
        // A 17-byte frame that declares 3 GiB and holds one RLE block of 10 bytes: read
        // as a stream, it fails after 10 bytes.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        frame.extend_from_slice(&(3u64 << 30).to_le_bytes());
        // Last block (bit 0), RLE (type 1 in bits 1–2), 10 bytes regenerated (bits 3–23).
        let block: u32 = 1 | (1 << 1) | (10 << 3);
        frame.extend_from_slice(&block.to_le_bytes()[..3]);
        frame.push(7);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
            Some(3 << 30)
        );
        assert!(Lossless.decode(&frame, &opaque(3 << 30), 0.0).is_err());
        // Without a size in its frame, a payload is refused too.
        assert!(Lossless.decode(&payload[..3], &opaque(1000), 0.0).is_err());
    }
}
