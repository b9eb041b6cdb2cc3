//! What the filter does to one chunk's bytes, free of any HDF5 or C types so it can be
//! tested directly. [`super::plugin`] is the only caller from C.

use crate::chunk::{self, ChunkError, Quality};
use crate::encode;
use crate::learned;
use crate::samples::{element_count, SampleBuf, Samples};
use crate::select::{self, Analytic, Outcome, SelectError};
use crate::settings::{SettingsError, StoredSettings};
use crate::wire::{DType, MAX_ORIGINAL_LEN};

use super::rewrites::Successor;

/// Why a chunk could not be filtered. Mapped to a failed callback (0 bytes) plus a message
/// on the HDF5 error stack at the C boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// cd_values are malformed.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Reading or writing the chunk format failed.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// No payload could be chosen.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The decoded chunk is not the size HDF5 expects.
    #[error("decoded chunk holds {got} bytes, HDF5 expects {expected}")]
    SizeMismatch {
        /// Bytes decoded.
        got: usize,
        /// Bytes expected from the chunk dims.
        expected: usize,
    },
}

/// Compresses one chunk buffer under the stored settings; returns the chunk bytes and what
/// the chooser did (for logs and traces). A big-endian dataset's values are swapped to
/// little-endian first, and the chunk says so ([`chunk::Header::big_endian`]); a buffer
/// that does not hold the chunk's values (another filter ran first) is kept byte for byte
/// as it came.
///
/// A buffer that holds a chunk this process decoded, maybe with the writer's new part
/// added (HDF5 re-reads a chunk written in parts), gets its unchanged values back as they
/// were first written before it is compressed again ([`super::rewrites`]); with nothing
/// added, it is stored as that chunk's bytes, unchanged.
///
/// The chunks of one dataset share what they teach of the surrogate ([`crate::memory`]);
/// datasets are told apart by their stored cd_values alone. [`encode_dataset_chunk`] tells
/// apart open datasets whose cd_values are the same.
pub fn encode_chunk(
    stored: &StoredSettings,
    bytes: &[u8],
) -> Result<(Vec<u8>, Outcome), FilterError> {
    encode_dataset_chunk(0, stored, bytes)
}

/// [`encode_chunk`] for the open dataset `pipeline` identifies: the address HDF5 passes the
/// filter its cd_values at, which is the dataset's own pipeline entry for as long as the
/// dataset is open (HDF5 1.10 to 1.14 pass `dset->shared->dcpl_cache.pline`'s). Variables
/// of one shape and settings written in turn, as a model writes its output each step
/// (temperature, then wind, then pressure), each learn from their own chunks instead of
/// from whichever variable came last: written slab by slab in turn, ../shared/data's ncep
/// (4 variables), plot3d combustor (4) and echam5 (2) fields cost guarantee mode 0.21–0.37
/// more compressions per chunk and fast mode up to 3.5% of its ratio when they shared one
/// memory (docs/bench.md). A closed dataset's address may be reused by the next one
/// created; with the same cd_values, that one starts from what the closed one learned.
pub fn encode_dataset_chunk(
    pipeline: usize,
    stored: &StoredSettings,
    bytes: &[u8],
) -> Result<(Vec<u8>, Outcome), FilterError> {
    let rewrites = &super::rewrites::REWRITES;
    let dataset = stored.to_cd();
    let memory_key = [
        &dataset[..],
        &[pipeline as u32, (pipeline as u64 >> 32) as u32],
    ]
    .concat();
    let decode = |c: &[u8]| decode_quietly(c).ok().map(|(_, values)| values);
    // A chunk read is decoded again as HDF5 got it: in this dataset's byte order.
    let as_read = |c: &[u8]| {
        let (header, out) = decode_native(c, MAX_ORIGINAL_LEN).ok()?;
        Some(in_dataset_order(Some(stored), &header, out))
    };
    // A copy (a chunk read, stored again unchanged) also where it was written in parts
    // and its earlier part came back from what this process wrote.
    let successor = match rewrites.restore(&dataset, bytes, stored.elem_size, decode) {
        Some(Successor::Restored(restored)) => Some(
            match rewrites.read_unchanged(&dataset, &restored, as_read) {
                Some(read) => Successor::Unchanged(read),
                None => Successor::Restored(restored),
            },
        ),
        None => rewrites
            .read_unchanged(&dataset, bytes, as_read)
            .map(Successor::Unchanged),
        unchanged => unchanged,
    };
    let bytes = match &successor {
        Some(Successor::Restored(restored)) => restored,
        Some(Successor::Unchanged(chunk)) => {
            if let Some(outcome) = stored_again(chunk) {
                return Ok((chunk.to_vec(), outcome));
            }
            bytes
        }
        None => bytes,
    };
    let (out, outcome) = encode_in_order(stored, &memory_key, bytes)?;
    if let Ok((header, _)) = chunk::parse(&out) {
        rewrites.written(&dataset, &out, &header, bytes);
    }
    Ok((out, outcome))
}

/// What to report for a stored `chunk` written again unchanged
/// ([`Successor::Unchanged`]): its codec, bound and quality record, no compression.
fn stored_again(chunk: &[u8]) -> Option<Outcome> {
    let (header, _) = chunk::parse(chunk).ok()?;
    let quality = header.quality.as_ref();
    Some(Outcome {
        codec: header.codec,
        bound: header.bound,
        payload: Vec::new(),
        predicted: quality.and_then(|q| q.predicted),
        measured: quality.and_then(|q| q.measured),
        compressions: 0,
        reason: select::STORED_AGAIN,
        runner_up_gap: None,
    })
}

/// [`encode_chunk`] for values in the dataset's byte order. `dataset` keys what the
/// dataset's chunks teach ([`crate::memory`]).
fn encode_in_order(
    stored: &StoredSettings,
    dataset: &[u32],
    bytes: &[u8],
) -> Result<(Vec<u8>, Outcome), FilterError> {
    let values = stored.chunk.iter().product::<usize>() * stored.elem_size;
    if !stored.big_endian || bytes.len() != values {
        return encode_little_endian(stored, dataset, bytes);
    }
    let swapped = swap_bytes(bytes.to_vec(), stored.elem_size);
    let (out, outcome) = encode_little_endian(stored, dataset, &swapped)?;
    Ok((chunk::marked_big_endian(&out)?, outcome))
}

/// [`encode_chunk`] for values in little-endian order.
fn encode_little_endian(
    stored: &StoredSettings,
    dataset: &[u32],
    bytes: &[u8],
) -> Result<(Vec<u8>, Outcome), FilterError> {
    let count: usize = stored.chunk.iter().product();
    let typed = match stored.dtype {
        DType::F32 | DType::F64 if count * stored.elem_size == bytes.len() => {
            SampleBuf::from_bytes(stored.dtype, bytes)
        }
        _ => None,
    };
    let Some(values) = typed else {
        // Not a float chunk of the expected size: keep every byte.
        let elem_size = match stored.elem_size {
            n if n > 0 && bytes.len().is_multiple_of(n) => n,
            _ => 1,
        };
        let data = Samples::Opaque { bytes, elem_size };
        let shape = [bytes.len() / elem_size];
        let outcome = select::compress_to_target(data, &shape, &stored.settings, &Analytic)?;
        let quality = Quality::new(&stored.settings, outcome.predicted, outcome.measured);
        let out = chunk::wrap(
            outcome.codec,
            &data,
            &shape,
            0.0,
            None,
            Some(quality),
            &outcome.payload,
        );
        return Ok((out, outcome));
    };
    let (shape, settings) = (&stored.chunk, &stored.settings);
    let proposer = learned::proposer_for(settings)?;
    // The dataset's fill value marks missing data ([`encode::float_chunk_with_fill`]).
    let fill = stored.fill.as_deref();
    let encode = |proposer: &dyn select::Proposer| match &values {
        SampleBuf::F32(v) => {
            let fill = fill.and_then(|b| Some(f32::from_le_bytes(b.try_into().ok()?)));
            encode::float_chunk_with_fill(v, shape, settings, proposer, fill)
        }
        SampleBuf::F64(v) => {
            let fill = fill.and_then(|b| Some(f64::from_le_bytes(b.try_into().ok()?)));
            encode::float_chunk_with_fill(v, shape, settings, proposer, fill)
        }
        SampleBuf::Opaque(_) => unreachable!("from_bytes of a float dtype"),
    };
    // The chunks of one dataset share what the chunks measured teach ([`crate::memory`]).
    let Some(memory) = crate::memory::for_dataset(dataset, settings) else {
        return Ok(encode(proposer)?);
    };
    let remembering = memory.proposer(proposer);
    let (bytes, outcome) = encode(&remembering)?;
    remembering.learn(&outcome, settings);
    Ok((bytes, outcome))
}

/// Decodes one stored chunk back into the bytes HDF5 wrote, swapped back to big-endian
/// when the chunk says the dataset's values are. Needs no settings, no model.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<u8>, FilterError> {
    decode_chunk_for(None, None, bytes)
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64)
}

/// Refuses a float chunk of `dtype` decoding to `len` bytes that the dataset `stored`
/// describes cannot take: values of another type, or another size than its chunks
/// ([`decode_chunk_for`] reads none such; `deepcq inspect` flags them from the header).
/// Chunks of other values, kept byte for byte, pass.
pub fn fits_dataset(stored: &StoredSettings, dtype: DType, len: usize) -> Result<(), FilterError> {
    if !is_float(dtype) {
        return Ok(());
    }
    if stored.dtype != dtype {
        let dataset = match is_float(stored.dtype) {
            true => format!("{} values", stored.dtype.name()),
            false => format!("values of another type ({} bytes each)", stored.elem_size),
        };
        return Err(FilterError::Chunk(chunk::ChunkError::BadHeader(format!(
            "a chunk of {} values in a dataset of {dataset}",
            dtype.name(),
        ))));
    }
    let expected = element_count(&stored.chunk).and_then(|n| n.checked_mul(stored.elem_size));
    match expected.filter(|&n| n != len) {
        Some(expected) => Err(FilterError::SizeMismatch { got: len, expected }),
        None => Ok(()),
    }
}

/// [`decode_chunk`] for the dataset whose stored cd_values are `stored`: a chunk of float
/// values that does not decode to exactly the dataset's chunk dims × element size, or
/// whose dataset does not hold values of its float type, is an error. HDF5 copies a whole
/// chunk out of what the filter returns, so a chunk made for another shape or type
/// (written with `H5Dwrite_chunk` from an in-situ buffer of the wrong size, or into an
/// integer dataset of the same element size) would be read past its end or as other
/// values, and return garbage. A chunk whose values are in the other byte order than the
/// dataset's (an in-situ buffer compressed with user cd_values, which are native, written
/// into a big-endian dataset) is handed back in the dataset's order: the chunk says which
/// order its values were in. Chunks kept byte for byte (non-float data, or another
/// filter's bytes in a pipeline of an older file) are not checked but for a ceiling of
/// twice the dataset's chunk and a MiB ([`chunk::opaque_limit`]): their size is whatever
/// the bytes were. `room` is the dataset's chunk bytes where `stored` is None because
/// the cd_values do not parse (a file from a newer build): the ceilings hold there too.
pub fn decode_chunk_for(
    stored: Option<&StoredSettings>,
    room: Option<usize>,
    bytes: &[u8],
) -> Result<Vec<u8>, FilterError> {
    // A chunk may declare no more bytes than the dataset's chunk holds (a float chunk) or
    // a little more (others): nothing larger is allocated for a crafted header. The
    // dataset's chunk bytes come from its cd_values, or from their dims slots alone
    // (`room`) where the rest does not parse.
    let expected = stored.and_then(|s| element_count(&s.chunk)?.checked_mul(s.elem_size));
    let limit = expected.or(room).map_or(MAX_ORIGINAL_LEN, |n| n as u64);
    let (header, out) = decode_native(bytes, limit)?;
    if let Some(s) = stored.filter(|_| is_float(header.layout.dtype)) {
        fits_dataset(s, header.layout.dtype, out.len())?;
    }
    let out = in_dataset_order(stored, &header, out);
    let dataset = stored.map(StoredSettings::to_cd);
    super::rewrites::REWRITES.decoded(dataset.as_deref(), bytes, &header, &out);
    Ok(out)
}

/// `out`, decoded from a chunk of `header`, in its dataset's byte order: for float values
/// the dataset's (`stored`) where it is known, else the one the chunk says.
fn in_dataset_order(
    stored: Option<&StoredSettings>,
    header: &chunk::Header,
    out: Vec<u8>,
) -> Vec<u8> {
    let big_endian = match stored.filter(|_| is_float(header.layout.dtype)) {
        Some(s) => s.big_endian,
        None => header.big_endian,
    };
    match big_endian {
        true => swap_bytes(out, header.layout.elem_size),
        false => out,
    }
}

/// [`decode_chunk`] without telling [`super::rewrites`], with the chunk's header.
fn decode_quietly(bytes: &[u8]) -> Result<(chunk::Header, Vec<u8>), FilterError> {
    let (header, out) = decode_native(bytes, MAX_ORIGINAL_LEN)?;
    let out = in_dataset_order(None, &header, out);
    Ok((header, out))
}

/// The chunk's header and its bytes in little-endian order, whatever order it says; a
/// chunk of more than its dataset's chunks of `room` bytes hold is refused before it is
/// decoded ([`chunk::parse_within`]).
fn decode_native(bytes: &[u8], room: u64) -> Result<(chunk::Header, Vec<u8>), FilterError> {
    let (header, values) = chunk::decode_within(bytes, room)?;
    let out = values.into_bytes();
    if out.len() as u64 != header.original_len {
        return Err(FilterError::SizeMismatch {
            got: out.len(),
            expected: header.original_len as usize,
        });
    }
    Ok((header, out))
}

/// Reverses the bytes of each `elem_size`-byte value (a trailing partial value stays):
/// big-endian to little-endian and back.
fn swap_bytes(mut bytes: Vec<u8>, elem_size: usize) -> Vec<u8> {
    bytes
        .chunks_exact_mut(elem_size.max(1))
        .for_each(|value| value.reverse());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;
    use crate::settings::Settings;
    use crate::synth::{generate, Kind};

    fn stored(dtype: DType, elem_size: usize, chunk: &[usize], target: f64) -> StoredSettings {
        StoredSettings {
            settings: Settings::psnr(target).unwrap(),
            dtype,
            big_endian: false,
            elem_size,
            chunk: chunk.to_vec(),
            fill: None,
            fill_named: false,
        }
    }

    #[test]
    fn edge_chunk_meets_the_target_on_its_data_and_keeps_the_padding() {
        let (rows, cols, valid) = (40, 64, (25, 37));
        let field = generate(Kind::Spectral { slope: 3.0 }, &[valid.0, valid.1], 3);
        let mut chunk = vec![0f32; rows * cols];
        for r in 0..valid.0 {
            for c in 0..valid.1 {
                chunk[r * cols + c] = field[r * valid.1 + c] as f32 + 100.0;
            }
        }
        let bytes: Vec<u8> = bytemuck::cast_slice(&chunk).to_vec();
        let (stored_bytes, outcome) =
            encode_chunk(&stored(DType::F32, 4, &[rows, cols], 70.0), &bytes).unwrap();
        assert!(
            stored_bytes.len() < bytes.len() / 2,
            "{}",
            stored_bytes.len()
        );
        let back = match SampleBuf::from_bytes(DType::F32, &decode_chunk(&stored_bytes).unwrap()) {
            Some(SampleBuf::F32(v)) => v,
            other => panic!("not f32: {other:?}"),
        };
        let mut inside = (Vec::new(), Vec::new());
        for r in 0..rows {
            for c in 0..cols {
                let i = r * cols + c;
                if r < valid.0 && c < valid.1 {
                    inside.0.push(chunk[i]);
                    inside.1.push(back[i]);
                } else {
                    assert_eq!(back[i], 0.0, "padding changed at {r},{c}");
                }
            }
        }
        let psnr = metrics::psnr(&inside.0, &inside.1);
        assert!(psnr >= 70.0, "{psnr} via {}", outcome.reason);
    }

    #[test]
    fn float_chunks_of_another_shape_or_type_are_refused_on_read() {
        let values: Vec<u8> = (0..256)
            .flat_map(|i| (i as f32 * 0.1).sin().to_le_bytes())
            .collect();
        let (out, _) = encode_chunk(&stored(DType::F32, 4, &[16, 16], 60.0), &values).unwrap();
        let own = stored(DType::F32, 4, &[16, 16], 60.0);
        assert_eq!(
            decode_chunk_for(Some(&own), None, &out).unwrap().len(),
            1024
        );
        let err = decode_chunk_for(Some(&stored(DType::F32, 4, &[32, 32], 60.0)), None, &out);
        assert!(matches!(
            err,
            Err(FilterError::SizeMismatch { got: 1024, .. })
        ));
        // An f64 dataset whose chunks hold as many bytes: the type says it is not its chunk.
        let wide = stored(DType::F64, 8, &[8, 16], 60.0);
        let err = decode_chunk_for(Some(&wide), None, &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("f32 values in a dataset of f64"), "{err}");
        // An integer dataset of the same element size: float bits read as integers.
        let ints = stored(DType::Opaque, 4, &[16, 16], 60.0);
        let err = decode_chunk_for(Some(&ints), None, &out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f32 values in a dataset of values of another type"),
            "{err}"
        );
        // Bytes kept as they came (non-float data) decode to what they were.
        let ints = vec![3u8; 1000];
        let (out, _) = encode_chunk(&stored(DType::Opaque, 4, &[250], 60.0), &ints).unwrap();
        let other = stored(DType::Opaque, 4, &[500], 60.0);
        assert_eq!(decode_chunk_for(Some(&other), None, &out).unwrap(), ints);
    }

    #[test]
    fn a_header_declaring_more_than_the_datasets_chunk_is_refused_before_decoding() {
        // A checksummed header of f32 values declaring 1 MiB in front of a few bytes:
        // without the dataset it gets as far as the codec; with it, not that far.
        let huge = [512usize, 512];
        let crafted = chunk::wrap(
            crate::wire::CodecId::Lossless,
            &Samples::F32(&[0.0; 4]),
            &huge,
            0.0,
            None,
            None,
            b"not a payload",
        );
        let err = decode_chunk(&crafted).unwrap_err().to_string();
        assert!(!err.contains("declares"), "{err}");
        let own = stored(DType::F32, 4, &[16, 16], 60.0);
        let err = decode_chunk_for(Some(&own), None, &crafted)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("declares 1048576 bytes of f32 values, the dataset's chunks hold 1024"),
            "{err}"
        );
        // The same from the cd_values' dims slots alone, where the rest does not parse.
        let err = decode_chunk_for(None, Some(1024), &crafted)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the dataset's chunks hold 1024"), "{err}");
        // Bytes kept as they came may declare a little more than the chunk, not 4 MiB.
        let opaque = |len: usize| {
            let data = Samples::Opaque {
                bytes: &[0; 4],
                elem_size: 4,
            };
            let codec = crate::wire::CodecId::Lossless;
            chunk::wrap(codec, &data, &[len / 4], 0.0, None, None, b"not a payload")
        };
        let err = decode_chunk_for(Some(&own), None, &opaque(4 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("declares 4194304 bytes of opaque values"),
            "{err}"
        );
        for len in [1024, 1 << 20] {
            let err = decode_chunk_for(Some(&own), None, &opaque(len))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("declares"), "{len}: {err}");
        }
    }

    #[test]
    fn non_float_and_mismatched_chunks_come_back_exact() {
        let ints: Vec<u8> = (0..4000u32).flat_map(|i| (i * 7).to_le_bytes()).collect();
        let (out, _) = encode_chunk(&stored(DType::Opaque, 4, &[1000], 60.0), &ints).unwrap();
        assert_eq!(decode_chunk(&out).unwrap(), ints);
        // Float settings but the wrong byte count: stored exactly rather than guessed at.
        let odd = vec![7u8; 1001];
        let (out, _) = encode_chunk(&stored(DType::F32, 4, &[250], 60.0), &odd).unwrap();
        assert_eq!(decode_chunk(&out).unwrap(), odd);
    }

    #[test]
    fn nan_chunks_are_exact_and_corrupt_chunks_are_errors() {
        let mut values: Vec<f64> = (0..256).map(|i| (i as f64).sin()).collect();
        values[17] = f64::NAN;
        values[99] = f64::INFINITY;
        let bytes: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
        let (out, _) = encode_chunk(&stored(DType::F64, 8, &[16, 16], 60.0), &bytes).unwrap();
        assert_eq!(decode_chunk(&out).unwrap(), bytes);
        let mut corrupt = out.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(decode_chunk(&corrupt).is_err());
        assert!(decode_chunk(&out[..out.len() / 2]).is_err());
        assert!(decode_chunk(&[]).is_err());
    }

    #[test]
    fn big_endian_floats_compress_like_little_endian_ones_and_come_back_big_endian() {
        let shape = [24, 32, 32];
        let field: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 5)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let little: Vec<u8> = field.iter().flat_map(|x| x.to_le_bytes()).collect();
        let big: Vec<u8> = field.iter().flat_map(|x| x.to_be_bytes()).collect();
        let settings = stored(DType::F32, 4, &shape, 60.0);
        let big_settings = StoredSettings {
            big_endian: true,
            ..settings.clone()
        };
        let (from_little, _) = encode_chunk(&settings, &little).unwrap();
        let (from_big, outcome) = encode_chunk(&big_settings, &big).unwrap();
        // The same values: the same chunk but for its flag, not bytes kept exactly
        // (lossless, ~1.2×).
        assert_eq!(from_big.len(), from_little.len(), "{}", outcome.reason);
        assert!(chunk::parse(&from_big).unwrap().0.big_endian);
        assert!(!chunk::parse(&from_little).unwrap().0.big_endian);
        assert_eq!(
            chunk::parse(&from_big).unwrap().1,
            chunk::parse(&from_little).unwrap().1
        );
        let back = decode_chunk(&from_big).unwrap();
        let back: Vec<f32> = back
            .chunks_exact(4)
            .map(|b| f32::from_be_bytes(b.try_into().unwrap()))
            .collect();
        let psnr = metrics::psnr(&field, &back);
        assert!(psnr >= 60.0, "{psnr}");
        // A chunk kept exactly (NaN and +Inf, two values no codec keeps, present) comes back
        // byte for byte too.
        let mut non_finite = big.clone();
        non_finite[..4].copy_from_slice(&f32::INFINITY.to_be_bytes());
        non_finite[4..8].copy_from_slice(&f32::NAN.to_be_bytes());
        let (exact, _) = encode_chunk(&big_settings, &non_finite).unwrap();
        assert_eq!(decode_chunk(&exact).unwrap(), non_finite);
        // So does a buffer of another size (another filter ran first).
        let odd = big[..1001].to_vec();
        let (exact, _) = encode_chunk(&big_settings, &odd).unwrap();
        assert_eq!(decode_chunk(&exact).unwrap(), odd);
        // A chunk in the other byte order than its dataset's (an in-situ buffer compressed
        // with native settings, written into a big-endian dataset, and the reverse) comes
        // back in the dataset's order, the same bytes as the dataset's own chunk gives.
        assert_eq!(
            decode_chunk_for(Some(&big_settings), None, &from_little).unwrap(),
            decode_chunk(&from_big).unwrap()
        );
        assert_eq!(
            decode_chunk_for(Some(&settings), None, &from_big).unwrap(),
            decode_chunk(&from_little).unwrap()
        );
    }

    /// Writes `field` (planes along axis 0) into one chunk a plane at a time, as HDF5 does
    /// when its cache cannot hold the chunk between writes: decode what is stored, add the
    /// next plane (the rest still the fill value 0), compress again; `remembered` through
    /// [`encode_chunk`] and [`decode_chunk`], else through the bare encoder and decoder
    /// (what the filter did before it kept originals). Returns the chunk's PSNR against
    /// `field` at the end.
    fn write_plane_by_plane(field: &[f32], shape: &[usize], target: f64, remembered: bool) -> f64 {
        let settings = stored(DType::F32, 4, shape, target);
        let plane = field.len() / shape[0];
        let mut buffer = vec![0u8; field.len() * 4];
        for k in 0..shape[0] {
            let new: &[u8] = bytemuck::cast_slice(&field[k * plane..(k + 1) * plane]);
            buffer[k * plane * 4..(k + 1) * plane * 4].copy_from_slice(new);
            buffer = match remembered {
                true => decode_chunk(&encode_chunk(&settings, &buffer).unwrap().0).unwrap(),
                false => {
                    let (out, _) = encode_in_order(&settings, &settings.to_cd(), &buffer).unwrap();
                    decode_quietly(&out).unwrap().1
                }
            };
        }
        metrics::psnr(field, bytemuck::cast_slice(&buffer))
    }

    #[test]
    fn a_chunk_written_plane_by_plane_meets_the_target_against_what_was_written() {
        let shape = [8, 32, 48];
        let field: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 11)
            .into_iter()
            .map(|x| (x + 50.0) as f32)
            .collect();
        for target in [40.0, 60.0] {
            let psnr = write_plane_by_plane(&field, &shape, target, true);
            assert!(psnr >= target, "{psnr} dB at a {target} dB target");
            // What it guards against: each compression meets the target against the
            // decoded values it was handed, and the errors of the rounds add up.
            let unremembered = write_plane_by_plane(&field, &shape, target, false);
            assert!(
                unremembered < target - 3.0,
                "{unremembered} dB at {target} dB"
            );
        }
    }
}
