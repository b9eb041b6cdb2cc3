//! The per-compressor oracle: the loosest bound that meets a PSNR target, found with real
//! compressions.
//!
//! It is the limit any selector choosing a bound for that compressor can reach, and the
//! denominator of the bench's "CR / best oracle". The search is a bisection in log space
//! between the safe point-wise bound (`R·10^(−T/20)`, which meets T for any codec that keeps
//! its bound) and the chunk's value range, like the peer harness's 14-compression search;
//! starting from the safe bound spends the steps where the answer lies.

use h5z_deepcq::chunk::Missing;
use h5z_deepcq::codec::{codec_for, CodecError};
use h5z_deepcq::metrics::{self, ErrorStats};
use h5z_deepcq::samples::{Layout, Samples};
use h5z_deepcq::select::safe_bound;
use h5z_deepcq::wire::CodecId;

/// Compressions an oracle spends per chunk by default (the peer harness's figure).
pub const DEFAULT_STEPS: u32 = 14;

/// What the search found.
#[derive(Clone, Debug)]
pub struct Found {
    /// The loosest bound seen that meets the target.
    pub bound: f64,
    /// Its payload.
    pub payload: Vec<u8>,
    /// The tightest bound seen that misses; `None` when every bound tried met the target
    /// (the search reached its upper limit, the value range). Only the tests read it: it
    /// is what shows the bracket around the answer is tight.
    #[allow(dead_code)]
    pub missed_at: Option<f64>,
    /// Compressions spent.
    pub compressions: u32,
}

/// Error statistics of `back` against `data` over the values `missing` does not mark
/// (all of them without it), with the chunk's own range over those values: what the
/// filter's PSNR target measures on a chunk with missing data. `None` without a value to
/// measure.
pub fn real_stats(
    data: Samples<'_>,
    back: Samples<'_>,
    missing: Option<&Missing>,
) -> Option<ErrorStats> {
    match missing {
        None => metrics::error_stats_of(data, back),
        Some(m) => metrics::error_stats_of(m.real_values(data).view(), m.real_values(back).view()),
    }
}

/// PSNR of `payload` against `data` (chunk's own range) over the values `missing` does not
/// mark.
pub fn psnr_of(
    codec: CodecId,
    payload: &[u8],
    data: Samples<'_>,
    shape: &[usize],
    bound: f64,
    missing: Option<&Missing>,
) -> Result<f64, CodecError> {
    let back = codec_for(codec).decode(payload, &Layout::of(&data, shape), bound)?;
    Ok(real_stats(data, back.view(), missing)
        .map(|s| s.psnr)
        .unwrap_or(f64::NEG_INFINITY))
}

/// Bounds tried from the safe one down, each 1000× tighter, before [`search`] gives up:
/// the compressions a `None` spent.
pub const STARTS: u32 = 3;

/// Searches `codec`'s loosest bound meeting `target_db` for finite `data` of value range
/// `range` > 0, in `steps` compressions, the PSNR measured over the values `missing` does
/// not mark. `None` when not even bounds 10⁶× tighter than the safe one meet it (the
/// caller stores the chunk losslessly).
pub fn search(
    codec: CodecId,
    data: Samples<'_>,
    shape: &[usize],
    range: f64,
    target_db: f64,
    steps: u32,
    missing: Option<&Missing>,
) -> Result<Option<Found>, CodecError> {
    let mut compressions = 0;
    let attempt = |bound: f64| -> Result<(Vec<u8>, f64), CodecError> {
        let payload = codec_for(codec).encode(data, shape, bound)?;
        let psnr = psnr_of(codec, &payload, data, shape, bound, missing)?;
        Ok((payload, psnr))
    };
    let (mut lo, mut hi) = (safe_bound(range, target_db), range);
    let mut missed_at = None;
    // The safe bound should pass; a codec that overshoots its bound (f32 rounding) gets
    // tighter starts before the search gives up.
    let mut best = None;
    for _ in 0..STARTS {
        let (payload, psnr) = attempt(lo)?;
        compressions += 1;
        if psnr >= target_db {
            best = Some((lo, payload));
            break;
        }
        missed_at = Some(lo);
        hi = lo;
        lo *= 1e-3;
    }
    let Some(mut best) = best else {
        return Ok(None);
    };
    while compressions < steps.max(1) {
        let mid = lo.sqrt() * hi.sqrt();
        let (payload, psnr) = attempt(mid)?;
        compressions += 1;
        if psnr >= target_db {
            lo = mid;
            best = (mid, payload);
        } else {
            hi = mid;
            missed_at = Some(mid);
        }
    }
    let (bound, payload) = best;
    Ok(Some(Found {
        bound,
        payload,
        missed_at,
        compressions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use h5z_deepcq::synth::{generate, Kind};

    fn field() -> (Vec<f32>, Vec<usize>) {
        let shape = vec![16, 32, 32];
        let v = generate(Kind::Spectral { slope: 3.0 }, &shape, 11);
        (v.into_iter().map(|x| x as f32).collect(), shape)
    }

    #[test]
    fn oracle_bound_meets_the_target_and_a_looser_one_does_not() {
        let (v, shape) = field();
        let data = Samples::F32(&v);
        let range = h5z_deepcq::select::value_range(data);
        for codec in CodecId::LOSSY {
            for target in [40.0, 60.0] {
                let found = search(codec, data, &shape, range, target, DEFAULT_STEPS, None)
                    .unwrap()
                    .expect("the safe bound meets the target");
                assert_eq!(found.compressions, DEFAULT_STEPS);
                let psnr = psnr_of(codec, &found.payload, data, &shape, found.bound, None).unwrap();
                assert!(psnr >= target, "{codec:?} {target}: {psnr}");
                assert!(found.bound >= safe_bound(range, target));
                match found.missed_at {
                    // The bracket is tight: a 5% looser bound was tried, or lies beyond the
                    // bound that missed.
                    Some(miss) => {
                        assert!(miss / found.bound < 1.05, "{codec:?} {target}");
                        let payload = codec_for(codec).encode(data, &shape, miss).unwrap();
                        let missed = psnr_of(codec, &payload, data, &shape, miss, None).unwrap();
                        assert!(missed < target, "{codec:?} {target}: {missed}");
                    }
                    None => assert!(found.bound > range * 0.9, "{codec:?} {target}"),
                }
            }
        }
    }

    #[test]
    fn oracle_beats_the_safe_bound_on_a_smooth_field() {
        let (v, shape) = field();
        let data = Samples::F32(&v);
        let range = h5z_deepcq::select::value_range(data);
        let found = search(CodecId::Sz3, data, &shape, range, 40.0, DEFAULT_STEPS, None)
            .unwrap()
            .unwrap();
        let safe = codec_for(CodecId::Sz3)
            .encode(data, &shape, safe_bound(range, 40.0))
            .unwrap();
        assert!(found.payload.len() < safe.len());
    }
}
