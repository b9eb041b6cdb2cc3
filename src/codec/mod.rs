//! The compressors behind one small trait. Each codec takes a chunk's values, its C-order
//! shape and an absolute error bound, and returns an opaque payload; the chunk header
//! ([`crate::chunk`]) records everything the decoder needs.
//!
//! Codecs hold no state, so one instance serves every thread and every HDF5 callback.
//! No codec rejects a shape: each maps the rank it is given onto the ranks its library
//! accepts ([`crate::samples::fit_rank`]).

mod lossless;
mod sperr;
mod sz3;
mod zfp;

pub use lossless::Lossless;
pub use sperr::Sperr;
pub use sz3::{Pipeline, Sz3};
pub use zfp::{BlockEstimate, Zfp};

use crate::samples::{Layout, SampleBuf, Samples};
use crate::wire::{CodecId, DType};

/// Why a codec could not encode or decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bound is not a positive finite number.
    #[error("{codec}: error bound must be positive and finite, got {bound}")]
    InvalidBound {
        /// Codec name.
        codec: &'static str,
        /// The rejected bound.
        bound: f64,
    },
    /// A lossy codec was handed NaN or ±Inf, which none of them can bound.
    #[error("{codec}: chunk holds NaN or Inf values; lossy codecs cannot bound their error")]
    NonFinite {
        /// Codec name.
        codec: &'static str,
    },
    /// A lossy codec was handed a non-float type.
    #[error("{codec}: only f32 and f64 data can be compressed lossily, got {dtype:?}")]
    UnsupportedType {
        /// Codec name.
        codec: &'static str,
        /// The rejected type.
        dtype: DType,
    },
    /// A chunk of values has 1 to [`crate::wire::MAX_RANK`] axes: its header has no room
    /// for more, and a reader refuses none.
    #[error("shape {shape:?}: a chunk of values has 1 to {max} axes", max = crate::wire::MAX_RANK)]
    BadRank {
        /// The shape.
        shape: Vec<usize>,
    },
    /// The shape does not describe the number of values given.
    #[error("shape {shape:?} does not hold {len} values")]
    ShapeMismatch {
        /// The shape.
        shape: Vec<usize>,
        /// The number of values.
        len: usize,
    },
    /// The bound is finer than the codec resolves for these values (SPERR crashes on it):
    /// no lossy payload of this codec can keep it.
    #[error("{codec}: error bound {bound:e} is finer than it resolves for values up to {max_abs:e} (finest {finest:e})")]
    BoundTooFine {
        /// Codec name.
        codec: &'static str,
        /// The rejected bound.
        bound: f64,
        /// The largest magnitude in the chunk.
        max_abs: f64,
        /// The finest bound the codec takes for these values.
        finest: f64,
    },
    /// Values under 1e-286, too small for the codec's transform: at any bound
    /// its payload would not keep them, as for a bound too fine.
    #[error("{codec}: values up to {max_abs:e} are below what its transform keeps (1e-286)")]
    TooSmall {
        /// Codec name.
        codec: &'static str,
        /// The largest magnitude in the chunk.
        max_abs: f64,
    },
    /// Values at or above half the largest power of two of their type (2^127 in f32,
    /// 2^1023 in f64), where ZFP's decoder scales a block's integers back past the type's
    /// largest value: f32 values near 3.4e38 came back as +Inf at any bound.
    #[error("{codec}: values up to {max_abs:e} are beyond what its decoder keeps finite")]
    TooLarge {
        /// Codec name.
        codec: &'static str,
        /// The largest magnitude in the chunk.
        max_abs: f64,
    },
    /// The underlying library reported a failure.
    #[error("{codec}: {message}")]
    Library {
        /// Codec name.
        codec: &'static str,
        /// What the library said.
        message: String,
    },
}

/// A compressor. Implementations are stateless and thread-safe.
pub trait Codec: Send + Sync {
    /// The id written into the chunk header.
    fn id(&self) -> CodecId;

    /// Compresses `data` of C-order `shape` so that every value is within `bound` of the
    /// original (ignored by the lossless codec).
    fn encode(&self, data: Samples<'_>, shape: &[usize], bound: f64)
        -> Result<Vec<u8>, CodecError>;

    /// Reverses [`Codec::encode`]; the layout and bound come from the chunk header.
    fn decode(&self, payload: &[u8], layout: &Layout, bound: f64) -> Result<SampleBuf, CodecError>;

    /// The container header this codec's payload for `layout` starts with when `body_len`
    /// bytes follow it, if the chunk header already says everything in it (dims, dtype,
    /// length). The chunk format leaves such a frame out and rebuilds it to decode
    /// ([`crate::chunk`]): SPERR's is 18 bytes of a 3-D payload, 10 of a 2-D one, SZ3's 8,
    /// and at 40 dB a whole chunk can be a few hundred bytes. None for codecs without one.
    fn frame(&self, _layout: &Layout, _body_len: usize) -> Option<Vec<u8>> {
        None
    }

    /// The payload as a chunk stores it (format version 7): without what the chunk header
    /// already says. By default that is the container header ([`Codec::frame`]) when the
    /// payload starts with exactly the one [`Codec::expand`] rebuilds. None when there is
    /// nothing to leave out or the payload is not laid out as this build expects; the
    /// chunk then stores it whole. `bound` is the one the chunk header holds.
    fn compact(&self, layout: &Layout, _bound: f64, payload: &[u8]) -> Option<Vec<u8>> {
        strip_frame(self, layout, payload).map(<[u8]>::to_vec)
    }

    /// Reverses [`Codec::compact`]; None when `stored` cannot have come from it.
    fn expand(&self, layout: &Layout, _bound: f64, stored: &[u8]) -> Option<Vec<u8>> {
        with_frame(self, layout, stored)
    }

    /// The bounds `[low, high)` that give the same stream as `bound`, for a codec that uses
    /// only part of its bound (ZFP keeps only the power of two at or below its tolerance),
    /// so that a search does not spend a compression to learn what it already knows. None
    /// when any change of bound may change the stream.
    fn alike_bounds(&self, _bound: f64) -> Option<(f64, f64)> {
        None
    }

    /// The fewest bytes any payload of this codec stores for a chunk of `shape`, at any
    /// bound (as stored: [`Codec::compact`]): a search need not try a codec whose floor
    /// is already no smaller than a payload it has. None known by default.
    fn least_stored(&self, _shape: &[usize]) -> usize {
        0
    }

    /// How PSNR moves with ln bound (dB per unit, negative) near a stream of
    /// `bits_per_value`: the step a search takes from a single measured point. By default
    /// MSE ∝ bound², the high-rate behaviour of a uniform quantiser.
    fn psnr_slope(&self, _bits_per_value: f64) -> f64 {
        HIGH_RATE_PSNR_SLOPE
    }
}

/// −20 dB a decade of bound, in dB per unit of ln bound: MSE ∝ bound².
pub const HIGH_RATE_PSNR_SLOPE: f64 = -20.0 / std::f64::consts::LN_10;

/// What follows `codec`'s container header ([`Codec::frame`]) in `payload`, when the payload
/// starts with exactly the frame the body after it would be given.
pub(crate) fn strip_frame<'a, C: Codec + ?Sized>(
    codec: &C,
    layout: &Layout,
    payload: &'a [u8],
) -> Option<&'a [u8]> {
    let len = codec.frame(layout, 0)?.len();
    let body = payload.get(len..)?;
    (codec.frame(layout, body.len())?[..] == payload[..len]).then_some(body)
}

/// `body` behind `codec`'s container header ([`Codec::frame`]): the reverse of
/// [`strip_frame`], and all that version-6 chunks left out.
pub(crate) fn with_frame<C: Codec + ?Sized>(
    codec: &C,
    layout: &Layout,
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut payload = codec.frame(layout, body.len())?;
    payload.extend_from_slice(body);
    Some(payload)
}

/// The bound `codec` actually works to when given `bound`: the low end of its
/// [`Codec::alike_bounds`] (ZFP: the power of two at or below it), else `bound` itself.
pub fn effective_bound(codec: CodecId, bound: f64) -> f64 {
    codec_for(codec)
        .alike_bounds(bound)
        .map_or(bound, |(low, _)| low)
}

/// The codec for an id. Every id has one.
pub fn codec_for(id: CodecId) -> &'static dyn Codec {
    match id {
        CodecId::Lossless => &Lossless,
        CodecId::Sz3 => &Sz3,
        CodecId::Zfp => &Zfp,
        CodecId::Sperr => &Sperr,
    }
}

/// Checks what every lossy codec requires of its input, so each one need not; returns the
/// largest magnitude, found in the same pass.
pub(crate) fn check_lossy_input(
    codec: &'static str,
    data: &Samples<'_>,
    shape: &[usize],
    bound: f64,
) -> Result<f64, CodecError> {
    if !(bound.is_finite() && bound > 0.0) {
        return Err(CodecError::InvalidBound { codec, bound });
    }
    if let Samples::Opaque { .. } = data {
        return Err(CodecError::UnsupportedType {
            codec,
            dtype: DType::Opaque,
        });
    }
    check_shape(data.len(), shape)?;
    // HDF5's largest chunk, which the chunk format also keeps to: zfp's 1-D path masks a
    // count of 2^32 values or more to 32 bits and overruns a block on the stack, and SZ3
    // reads back a 1-D dim of 2^31 or more wrong. Callers of the Rust API may pass more.
    if data.byte_len() as u64 > crate::wire::MAX_ORIGINAL_LEN {
        return Err(library_error(
            codec,
            "a chunk of 4 GiB or more (HDF5's chunks are smaller) cannot be compressed",
        ));
    }
    // zfp read past its function table on a field of no dims, and SZ3 divided by a dim
    // of 0; the filter never passes an empty chunk, the library's callers may.
    if data.is_empty() {
        return Err(library_error(
            codec,
            "an empty chunk has nothing to compress",
        ));
    }
    data.finite_max_abs().ok_or(CodecError::NonFinite { codec })
}

/// Refuses a `bound` finer than `relative` × `max_abs`, the finest `codec` keeps
/// ([`CodecError::BoundTooFine`]).
pub(crate) fn check_resolvable(
    codec: &'static str,
    bound: f64,
    max_abs: f64,
    relative: f64,
) -> Result<(), CodecError> {
    let finest = max_abs * relative;
    if bound < finest {
        return Err(CodecError::BoundTooFine {
            codec,
            bound,
            max_abs,
            finest,
        });
    }
    Ok(())
}

/// Fails unless `shape` has 1 to [`crate::wire::MAX_RANK`] axes (what a chunk header
/// holds).
pub(crate) fn check_rank(shape: &[usize]) -> Result<(), CodecError> {
    match shape.len() {
        1..=crate::wire::MAX_RANK => Ok(()),
        _ => Err(CodecError::BadRank {
            shape: shape.to_vec(),
        }),
    }
}

/// Fails unless `shape` has 1 to [`crate::wire::MAX_RANK`] axes and holds exactly `len`
/// values.
pub(crate) fn check_shape(len: usize, shape: &[usize]) -> Result<(), CodecError> {
    check_rank(shape)?;
    match crate::samples::element_count(shape) {
        Some(n) if n == len => Ok(()),
        _ => Err(CodecError::ShapeMismatch {
            shape: shape.to_vec(),
            len,
        }),
    }
}

/// The smallest largest magnitude ZFP and SPERR take, 1e-286 (about 2^-950). Their
/// transforms scale values by 2 to the power of their exponent's distance from the
/// codec's precision, which for values under about 2^-960 leaves f64's range: ZFP stored
/// a chunk of values near 1e-290 at 4 dB for a 100 dB bound, SPERR's fixed rate one near
/// 1e-300 at −63 dB, and SPERR at a bound in the subnormals 45 bytes for 14 dB, all
/// without an error. SZ3 keeps such chunks (exactly, at bounds that fine).
pub(crate) const SMALLEST_TRANSFORMED: f64 = 1e-286;

/// `max_abs`, the chunk's largest magnitude, refused by `codec` (ZFP, SPERR) under
/// [`SMALLEST_TRANSFORMED`] but for 0.
pub(crate) fn check_transformable(codec: &'static str, max_abs: f64) -> Result<f64, CodecError> {
    // All zeros (a block of exponent zero) are what every transform keeps exactly.
    if max_abs > 0.0 && max_abs < SMALLEST_TRANSFORMED {
        return Err(CodecError::TooSmall { codec, max_abs });
    }
    Ok(max_abs)
}

/// Wraps a library error message.
pub(crate) fn library_error(codec: &'static str, message: impl ToString) -> CodecError {
    CodecError::Library {
        codec,
        message: message.to_string(),
    }
}

/// Runs `check` on generated chunks of each shape (the field `kind` makes) as f32 and as
/// f64, at relative bounds 1e-1, 1e-3 and 1e-6 as the filter gives them to codecs:
/// the shape, the values, their layout and the bound.
#[cfg(test)]
pub(crate) fn for_each_case(
    cases: &[(Vec<usize>, crate::synth::Kind)],
    mut check: impl FnMut(&[usize], Samples<'_>, &Layout, f64),
) {
    for (shape, kind) in cases {
        let f64s = crate::synth::generate(*kind, shape, 7);
        let f32s: Vec<f32> = f64s.iter().map(|&x| x as f32).collect();
        for data in [Samples::F32(&f32s), Samples::F64(&f64s)] {
            let layout = Layout::of(&data, shape);
            for rel in [1e-1, 1e-3, 1e-6] {
                check(shape, data, &layout, crate::chunk::codec_bound(rel));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A compact payload of `codec` for a small generated chunk, and its layout and bound.
    fn compact_example(codec: CodecId) -> (Vec<u8>, Layout, f64) {
        let shape = [6, 10, 12];
        let values = crate::synth::generate(crate::synth::Kind::Spectral { slope: 2.5 }, &shape, 3);
        let data = Samples::F64(&values);
        let layout = Layout::of(&data, &shape);
        let bound = crate::chunk::codec_bound(1e-3);
        let payload = codec_for(codec).encode(data, &shape, bound).unwrap();
        let compact = codec_for(codec).compact(&layout, bound, &payload).unwrap();
        (compact, layout, bound)
    }

    #[test]
    fn values_too_small_for_a_transform_are_refused_and_kept_by_sz3() {
        // Near 1e-290 ZFP stored 4 dB for a 100 dB bound and SPERR's fixed rate near 1e-300
        // −63 dB, without an error; at 1e-280 both keep their bounds.
        let shape = [24, 32];
        let field = crate::synth::generate(crate::synth::Kind::Spectral { slope: 3.0 }, &shape, 3);
        for scale in [1e-280, 1e-290, 1e-300, 1e-307] {
            let values: Vec<f64> = field.iter().map(|x| x * scale).collect();
            let data = Samples::F64(&values);
            let layout = Layout::of(&data, &shape);
            let max_abs = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let bound = 1e-5 * max_abs;
            let transformable = max_abs >= SMALLEST_TRANSFORMED;
            for codec in [CodecId::Zfp, CodecId::Sperr, CodecId::Sz3] {
                let kept = codec == CodecId::Sz3 || transformable;
                match codec_for(codec).encode(data, &shape, bound) {
                    Ok(payload) => {
                        assert!(kept, "{codec:?} {scale:e}: not refused");
                        let back = codec_for(codec).decode(&payload, &layout, bound).unwrap();
                        let stats = crate::metrics::error_stats_of(data, back.view()).unwrap();
                        assert!(
                            stats.max_abs_error <= bound * (1.0 + 1e-6),
                            "{codec:?} {scale:e}: {} of {bound:e}",
                            stats.max_abs_error
                        );
                    }
                    Err(e) => assert!(!kept, "{codec:?} {scale:e}: {e}"),
                }
            }
            let rate = Sperr.encode_rate(data, &shape, 4.0);
            assert_eq!(rate.is_ok(), transformable, "{scale:e}");
        }
    }

    #[test]
    fn an_empty_chunk_is_refused_by_every_lossy_codec() {
        for id in [CodecId::Sz3, CodecId::Zfp, CodecId::Sperr] {
            for shape in [&[0][..], &[0, 5], &[3, 0, 2]] {
                let err = codec_for(id).encode(Samples::F32(&[]), shape, 0.1);
                assert!(
                    matches!(err, Err(CodecError::Library { .. })),
                    "{id:?} {shape:?}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn a_shape_the_chunk_header_cannot_hold_is_refused_by_every_codec() {
        // 33 axes (the header holds 32, and the reader refuses more), or none: a chunk
        // written so could not be read back.
        let values = [1.0f32, 2.0];
        let mut long = vec![1; crate::wire::MAX_RANK];
        long.push(2);
        for id in [
            CodecId::Lossless,
            CodecId::Sz3,
            CodecId::Zfp,
            CodecId::Sperr,
        ] {
            for shape in [&long[..], &[]] {
                let err = codec_for(id).encode(Samples::F32(&values), shape, 0.1);
                assert!(
                    matches!(err, Err(CodecError::BadRank { .. })),
                    "{id:?} {} axes: {err:?}",
                    shape.len()
                );
            }
            let fits = codec_for(id).encode(Samples::F32(&values), &long[1..], 0.1);
            assert!(fits.is_ok(), "{id:?}: {fits:?}");
        }
    }

    #[test]
    fn bounds_finer_than_a_codec_keeps_are_refused_and_the_finest_taken_is_kept() {
        // SPERR 0.8.5 segfaulted at 2^-60 of the largest magnitude; zfp's f32 output missed
        // a tolerance of 2^-26 of it 3.8×. SZ3 stores what it cannot predict exactly.
        let shape = [16, 24, 24];
        let f64s = crate::synth::generate(crate::synth::Kind::Spectral { slope: 3.0 }, &shape, 9);
        let f32s: Vec<f32> = f64s.iter().map(|&x| x as f32).collect();
        for data in [Samples::F32(&f32s), Samples::F64(&f64s)] {
            let layout = Layout::of(&data, &shape);
            let largest = data.finite_max_abs().unwrap();
            let kept_within = |codec: CodecId, bound: f64| {
                let payload = codec_for(codec).encode(data, &shape, bound).unwrap();
                let back = codec_for(codec).decode(&payload, &layout, bound).unwrap();
                let error = crate::metrics::error_stats_of(data, back.view()).unwrap();
                error.max_abs_error / bound
            };
            let too_fine = largest * 2f64.powi(-60);
            for codec in [CodecId::Sperr, CodecId::Zfp] {
                let refused = codec_for(codec).encode(data, &shape, too_fine).unwrap_err();
                assert!(
                    matches!(refused, CodecError::BoundTooFine { .. }),
                    "{codec:?}: {refused}"
                );
                let finest = match refused {
                    CodecError::BoundTooFine { finest, .. } => finest,
                    _ => unreachable!(),
                };
                let within = kept_within(codec, finest);
                assert!(
                    within <= 1.0,
                    "{codec:?} {:?}: {within}× the bound",
                    layout.dtype
                );
            }
            let within = kept_within(CodecId::Sz3, too_fine);
            assert!(within <= 1.0, "sz3 {:?}: {within}× the bound", layout.dtype);
        }
    }

    proptest! {
        /// A checksum guards stored payloads, but expanding must not panic on any bytes.
        #[test]
        fn expanding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            rank in 1usize..5,
            bound in 1e-12f64..1e6,
        ) {
            let layout = Layout { dtype: DType::F32, elem_size: 4, shape: vec![7; rank] };
            for codec in [CodecId::Sperr, CodecId::Sz3, CodecId::Zfp, CodecId::Lossless] {
                let _ = codec_for(codec).expand(&layout, bound, &bytes);
            }
        }

        /// One changed byte of a compact payload expands to another payload or to nothing.
        #[test]
        fn a_changed_compact_byte_never_expands_to_the_original(
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            for codec in [CodecId::Sperr, CodecId::Sz3] {
                let (compact, layout, bound) = compact_example(codec);
                let original = codec_for(codec).expand(&layout, bound, &compact).unwrap();
                let mut changed = compact.clone();
                changed[at.index(compact.len())] ^= xor;
                let expanded = codec_for(codec).expand(&layout, bound, &changed);
                prop_assert_ne!(expanded, Some(original));
            }
        }
    }
}
