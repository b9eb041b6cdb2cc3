//! One chunk of float values → its self-describing bytes: trim the padding, choose codec
//! and bound, wrap. The HDF5 filter and the in-situ API both call this, so a buffer
//! compressed in situ is stored exactly as the filter would store it.

use std::borrow::Cow;

use crate::chunk::{self, Quality};
use crate::metrics;
use crate::padding;
use crate::samples::Element;
use crate::select::{self, Outcome, Proposer, SelectError};
use crate::settings::{Settings, Target};
use crate::wire::{Mode, TargetKind};

/// Compresses `values` (a chunk of `shape`) to the settings' target with `proposer`.
/// Trailing constant slabs are trimmed first ([`padding`]): only the prefix block is
/// compressed and the fill value is stored, so edge chunks neither spoil the target nor
/// cost bits.
pub fn float_chunk<T: bytemuck::Pod + Element>(
    values: &[T],
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
) -> Result<(Vec<u8>, Outcome), SelectError> {
    float_chunk_with_fill(values, shape, settings, proposer, None)
}

/// [`float_chunk`] for a dataset whose fill value is `fill`: values equal to it
/// ([`is_missing`]) are missing data (netCDF's `_FillValue`: land in an ocean field, gaps in a satellite
/// swath). Left in, a fill value such as 1e35 sets the value range a PSNR target is
/// measured against, and a 40 dB target then allows errors of 1e33 on the real values:
/// they are lost. Instead the codec gets each missing value replaced by the last real
/// value before it (the first real one for leading ones), which keeps the range the real
/// values' own and costs few bits, and the chunk records which values were missing and
/// writes the fill value back exactly when decoded ([`chunk::Missing`]).
///
/// A PSNR target is then met over the real values: guarantee and fast mode measure it
/// there ([`select::compress_to_target_where`]); predict mode, which measures only the
/// chunks it takes a second look at, and those on the whole block, aims at `T + 10·log10(n / r)` for `n` values of which `r` are real, since the replaced
/// values' errors can only lower the mean square of the whole, so the real values' PSNR is
/// at least the whole block's less that much (the record reports that lower bound; in the
/// measured modes "predicted" is the model's prediction for the whole block). An SSIM
/// target is measured on the block as compressed, over the windows clear of missing
/// values (the replacements' runs of one value score about 1; where too few are clear,
/// [`metrics::SsimReference::clear_of`] widens the set); an absolute bound on the
/// block as compressed. A ratio target counts
/// the record too: the search aims so high that the payload leaves room for it. Predict
/// mode whose raised PSNR target would pass 400 dB measures the chunk after all (its
/// record still says predict mode).
///
/// A chunk that does not hold `fill` but holds NaN or ±Inf has those marked instead
/// ([`missing_marker`]), whether or not the dataset declares a fill value.
pub fn float_chunk_with_fill<T: bytemuck::Pod + Element>(
    values: &[T],
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
    fill: Option<T>,
) -> Result<(Vec<u8>, Outcome), SelectError> {
    // Before the padding search, which indexes the values by the shape's strides.
    crate::codec::check_shape(values.len(), shape)?;
    let marker = missing_marker(values, fill);
    float_chunk_marked(values, shape, settings, proposer, marker)
}

/// The value that marks `values`' missing data: `fill` where they hold it, else the first
/// value they hold that is not finite (NaN, +Inf or −Inf), if any.
///
/// No lossy codec keeps NaN or ±Inf: left unmarked, one sends its whole chunk to the
/// lossless codec (the NaN-holed field of `tests/hosts/missing_values.py` was stored 1.7×
/// instead of 50× at 60 dB), and files written by numpy, xarray or a simulation without a declared fill value
/// mark land, gaps and masked cells with NaN all the same (and the log of a field with
/// zeros holds −Inf). Marked, they come back in place (every NaN as this first NaN, with
/// its sign and payload bits) and the other values are compressed to the target over
/// themselves. So the bits that tell NaNs apart are not kept: R's `NA` is a NaN with
/// payload 1954, and mixed with other NaNs in one chunk all come back as the first
/// (docs/format.md); numpy's NaN and x86's 0/0 differ in sign alone, and matching bit for
/// bit would store such a chunk exactly. A chunk marks one value, so a chunk holding
/// two of `fill`, NaN, +Inf and −Inf is still stored exactly.
pub fn missing_marker<T: bytemuck::Pod + Element>(values: &[T], fill: Option<T>) -> Option<T> {
    match fill {
        Some(f) if holds(values, f) => Some(f),
        _ => first_non_finite(values),
    }
}

/// Whether `values` hold a value missing under `fill` ([`is_missing`]).
fn holds<T: bytemuck::Pod + Element>(values: &[T], fill: T) -> bool {
    any_in_blocks(values, |v| is_missing(v, fill))
}

/// The first value of `values` that is NaN or ±Inf.
pub(crate) fn first_non_finite<T: Element>(values: &[T]) -> Option<T> {
    let not_finite = |v: T| !v.to_f64().is_finite();
    values
        .chunks(BLOCK)
        .find(|block| any_in_blocks(block, not_finite))?
        .iter()
        .copied()
        .find(|&v| not_finite(v))
}

/// Values tested at a time by [`any_in_blocks`].
const BLOCK: usize = 256;

/// Whether `test` holds for some value of `values`. Every chunk written is scanned (for
/// NaN and ±Inf, and for the fill value of a dataset that has one: every netCDF-4 variable
/// in fill mode), so each block is tested without a branch per value, which vectorises:
/// 2^18 f32 values in 0.017 ms on this machine, where a plain search took 0.097 ms (2% of
/// one SZ3 compression).
fn any_in_blocks<T: Element>(values: &[T], test: impl Fn(T) -> bool) -> bool {
    values
        .chunks(BLOCK)
        .any(|block| block.iter().fold(false, |any, &v| any | test(v)))
}

/// [`float_chunk_with_fill`] with the value that marks missing data already chosen.
fn float_chunk_marked<T: bytemuck::Pod + Element>(
    values: &[T],
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
    fill: Option<T>,
) -> Result<(Vec<u8>, Outcome), SelectError> {
    let pad = padding::find(values, shape, fill);
    let declared = fill;
    let inner: Cow<[T]> = match &pad {
        Some(p) => Cow::Owned(padding::extract(values, shape, &p.inner)),
        None => Cow::Borrowed(values),
    };
    let kept_shape = pad.as_ref().map_or(shape, |p| &p.inner[..]);
    // The marker the block kept sees: a fill value held only by the trimmed padding (which
    // its own record restores) leaves the block's NaN or ±Inf to be marked, where it would
    // have sent the chunk to the lossless codec.
    let fill = match fill {
        Some(f) if pad.is_some() && !holds(&inner, f) => first_non_finite(&inner),
        other => other,
    };
    let elem_bytes = std::mem::size_of::<T>() as f64;
    let block_bytes = inner.len() as f64 * elem_bytes;
    // A ratio target counts every byte the chunk stores against the raw bytes of the block
    // it keeps (for an edge chunk, the data inside the dataset: a dataset's ratio then
    // meets the target too). The search sees only the block's payload and header, so it
    // aims so high that the payload leaves room for the rest: the padding record, the
    // whole chunk's dims and the missing-value record (`record`). Without that, trimmed
    // chunks (1 × 4096 rows ending in a repeated value) stored 7 bytes more than their
    // target allowed.
    let unseen = chunk::padded_header_len(shape, pad.as_ref()) - chunk::header_len(kept_shape);
    let ratio_budget = |record: usize| {
        let budget = block_bytes / settings.target.value() - (unseen + record) as f64;
        (budget > 0.0).then(|| block_bytes / budget)
    };
    // Bytes of the missing-value record, which a ratio target counts (0 for others).
    let mut record = 0;
    let (block, missing, raised) = match fill.and_then(|f| replace_missing(&inner, f)) {
        Some((replaced, m)) => {
            // Predict mode does not measure the real values, so for a PSNR target it aims
            // at the bound that holds whatever the replaced values' errors; `None` beyond
            // the 400 dB a target may ask: the chunk is then measured after all.
            let raised = match settings.target.kind {
                TargetKind::Psnr if settings.mode == Mode::Predict => {
                    let real = replaced.len() - m.count();
                    raised_to(
                        settings,
                        settings.target.value() + psnr_shift(&replaced, real),
                    )
                }
                // SSIM has no such shift, and the proposer sees windows in the runs of
                // replaced values, flat, where the real ones are not: measured instead,
                // over the windows clear of missing values.
                TargetKind::Ssim if settings.mode == Mode::Predict => None,
                TargetKind::Ratio => {
                    record = m.record_len();
                    Some(*settings) // raised below, with the record counted
                }
                _ => Some(*settings),
            };
            (Cow::Owned(replaced), Some(m), raised)
        }
        None => (inner, None, Some(*settings)),
    };
    // A ratio target leaves the block's payload and header what the other records do not
    // take. When they take it all (a tiny chunk), no bound reaches the target, and the block
    // is stored exactly (`select::RATIO_UNREACHABLE`).
    let raised_ratio = (settings.target.kind == TargetKind::Ratio && unseen + record > 0)
        .then(|| ratio_budget(record).and_then(|r| raised_to(settings, r)));
    let ratio_unreachable = matches!(raised_ratio, Some(None));
    let raised = raised_ratio.flatten().or(raised);
    let measured = raised.is_none() || settings.mode != Mode::Predict;
    let raised = raised.unwrap_or(Settings {
        mode: Mode::Guarantee,
        ..*settings
    });
    let data = T::samples(&block);
    let over_real = matches!(settings.target.kind, TargetKind::Psnr | TargetKind::Ssim);
    let only_real = missing.as_ref().filter(|_| over_real && measured);
    let mut outcome = match ratio_unreachable {
        true => select::lossless(data, kept_shape, 0, select::RATIO_UNREACHABLE)?,
        false => select::compress_to_target_where(data, kept_shape, &raised, proposer, only_real)?,
    };
    if let Some(p) = pad.as_ref() {
        let block = (&block[..], kept_shape);
        let marked = (declared, fill.zip(only_real));
        outcome = whole_ssim_met(values, shape, p, block, marked, &raised, proposer, outcome)?;
    }
    // The record reports what the user's target measures: the real values' PSNR bound,
    // the ratio with every stored byte counted.
    match (settings.target.kind, &missing) {
        (TargetKind::Psnr, _) => {
            let shift = raised.target.value() - settings.target.value();
            outcome.predicted = outcome.predicted.map(|db| db - shift);
            outcome.measured = outcome.measured.map(|db| db - shift);
        }
        (TargetKind::Ratio, _) => {
            let whole = |r: f64| block_bytes / (block_bytes / r + (unseen + record) as f64);
            outcome.predicted = outcome.predicted.map(whole);
            outcome.measured = outcome.measured.map(whole);
        }
        _ => {}
    }
    let quality = Quality::new(settings, outcome.predicted, outcome.measured);
    let bytes = chunk::wrap(
        outcome.codec,
        &data,
        shape,
        outcome.bound,
        pad,
        Some(quality),
        &outcome.payload,
    );
    let bytes = match missing {
        Some(m) => chunk::marked_missing(&bytes, m)?,
        None => bytes,
    };
    Ok((bytes, outcome))
}

/// How many times an SSIM target the block met but the whole chunk did not is raised
/// before the chunk is stored exactly.
const WHOLE_SSIM_RAISES: u32 = 3;

/// `outcome`, the chooser's for `block` (the prefix block of `values`, a chunk of `shape`
/// whose trailing slabs `pad` trimmed), once it also meets an SSIM target over the whole
/// chunk, the trimmed slabs restored exactly. SSIM is a mean over windows, and the chunk
/// has more windows than the block: those that reach into the slabs, flat there, where
/// the block's small errors weigh more. A measuring mode (guarantee, fast) that met the
/// target on the block is asked again for a higher SSIM while the whole chunk misses, at
/// most [`WHOLE_SSIM_RAISES`] times, then for SSIM 1 (exact storage). Other targets keep
/// `outcome` (a PSNR met on the block is met on the chunk: the range can only grow, the
/// error only shrink), and so does predict mode, but where missing values made it measure
/// an SSIM target (`settings` then says guarantee mode). So does padding that is missing
/// data (NaN, ±Inf or the `declared` fill value), whose windows a reader's SSIM leaves out.
///
/// A block with missing values (`marked`: the value that marks them and the block's
/// record) is measured as the search measures it, over the windows clear of them
/// ([`metrics::SsimReference::clear_of`]), now over the whole chunk: real rows of zeros
/// trimmed from a chunk with NaN gaps are data the reader sees.
#[allow(clippy::too_many_arguments)]
fn whole_ssim_met<T: bytemuck::Pod + Element>(
    values: &[T],
    shape: &[usize],
    pad: &padding::Padding,
    (block, kept_shape): (&[T], &[usize]),
    (declared, marked): (Option<T>, Option<(T, &chunk::Missing)>),
    settings: &Settings,
    proposer: &dyn Proposer,
    mut outcome: Outcome,
) -> Result<Outcome, SelectError> {
    let measuring = matches!(settings.mode, Mode::Guarantee | Mode::Fast);
    if settings.target.kind != TargetKind::Ssim || !measuring {
        return Ok(outcome);
    }
    let target = settings.target.value();
    let fill = *values.last().expect("a trimmed chunk has values");
    if !fill.to_f64().is_finite() || declared.is_some_and(|d| is_missing(fill, d)) {
        return Ok(outcome);
    }
    // With missing values: the block as the search saw it (their stand-ins) with the
    // slabs restored, so a window that still counts holds the same stand-ins on both sides.
    let with_stand_ins = marked.map(|_| padding::expand(block, &pad.inner, shape, fill));
    let (reference_values, reference) = match (&with_stand_ins, marked) {
        (Some(whole), Some((marker, _))) => (
            &whole[..],
            metrics::SsimReference::of(whole, shape).clear_of(|i| is_missing(values[i], marker)),
        ),
        _ => (values, metrics::SsimReference::of(values, shape)),
    };
    let only_real = marked.map(|(_, missing)| missing);
    let data = T::samples(block);
    let layout = crate::samples::Layout::of(&data, kept_shape);
    let mut asked = *settings;
    for raise in 0..=WHOLE_SSIM_RAISES {
        if outcome.codec == crate::wire::CodecId::Lossless {
            return Ok(outcome);
        }
        let back = crate::codec::codec_for(outcome.codec).decode(
            &outcome.payload,
            &layout,
            outcome.bound,
        )?;
        let back: Vec<T> = (back
            .view()
            .as_bytes()
            .chunks_exact(std::mem::size_of::<T>()))
        .map(bytemuck::pod_read_unaligned)
        .collect();
        let restored = padding::expand(&back, &pad.inner, shape, fill);
        let whole = reference.ssim(reference_values, &restored);
        if whole >= target {
            outcome.measured = outcome.measured.map(|m| m.min(whole));
            return Ok(outcome);
        }
        // 1 − SSIM grows about like the error's mean square: ask the block for as much
        // less loss as the whole chunk lacked, and a tenth more; past the raises, SSIM 1.
        let block_loss = 1.0 - asked.target.value();
        // Rounded up to 8 decimals: a target holds at most 9 significant digits.
        let raised = 1.0 - 0.9 * block_loss * (1.0 - target) / (1.0 - whole);
        let raised = (raised * 1e8).ceil() / 1e8;
        let value = match raise < WHOLE_SSIM_RAISES && raised.is_finite() {
            true => raised.clamp(target, 1.0),
            false => 1.0,
        };
        asked.target = Target::from_value(TargetKind::Ssim, value)
            .map_err(|e| SelectError::Proposer(e.to_string()))?;
        let spent = outcome.compressions;
        outcome = select::compress_to_target_where(data, kept_shape, &asked, proposer, only_real)?;
        outcome.compressions += spent;
    }
    Ok(outcome)
}

/// True when `value` is missing data under the fill value `fill`: equal bit for bit (so
/// 0.0 and −0.0 differ), or any NaN for a NaN fill (NaN payloads differ between producers:
/// 0/0 on x86 gives a negative NaN), which comes back as the fill's own NaN.
pub fn is_missing<T: bytemuck::Pod + Element>(value: T, fill: T) -> bool {
    bytemuck::bytes_of(&value) == bytemuck::bytes_of(&fill)
        || fill.to_f64().is_nan() && value.to_f64().is_nan()
}

/// `values` with every missing value ([`is_missing`]) replaced by the last other value
/// before it (the first other one for leading ones), and which were; `None` when none or
/// all are.
pub fn replace_missing<T: bytemuck::Pod + Element>(
    values: &[T],
    fill: T,
) -> Option<(Vec<T>, chunk::Missing)> {
    let fill_bytes = bytemuck::bytes_of(&fill);
    let is_fill = |v: &T| is_missing(*v, fill);
    let first_real = *values.iter().find(|v| !is_fill(v))?;
    let mut bits = vec![0u8; values.len().div_ceil(8)];
    let mut last = first_real;
    let mut replaced = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        if is_fill(v) {
            bits[i / 8] |= 1 << (i % 8);
            replaced.push(last);
        } else {
            last = *v;
            replaced.push(*v);
        }
    }
    bits.iter().any(|&b| b != 0).then(|| {
        (
            replaced,
            chunk::Missing {
                fill: fill_bytes.to_vec(),
                bits,
            },
        )
    })
}

/// `10·log10(n / real)`: how far the whole block's PSNR may lie above the real values'
/// when only `real` of its `n` values count.
fn psnr_shift<T>(block: &[T], real: usize) -> f64 {
    10.0 * (block.len() as f64 / real.max(1) as f64).log10()
}

/// `settings` with its target (PSNR or ratio) raised to `value`, rounded up to a
/// thousandth (to a whole ratio from 2^31 thousandths, as a target holds 9 digits); `None`
/// when that is not a valid target (a PSNR above 400 dB, a ratio above 1e8).
fn raised_to(settings: &Settings, value: f64) -> Option<Settings> {
    let thousandths = (value * 1000.0).ceil();
    let value = match thousandths < i32::MAX as f64 {
        true => thousandths / 1000.0,
        false => value.ceil(),
    };
    let target = Target::from_value(settings.target.kind, value).ok()?;
    Some(Settings {
        target,
        ..*settings
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;
    use crate::select::Analytic;
    use crate::synth::{generate, Kind};
    use crate::wire::CodecId;

    /// A field of `shape` in [-1, 1] with a block of "land" (every value from `land`
    /// on in each plane's rows 0..8) set to `fill`.
    fn ocean(shape: &[usize], fill: f32) -> Vec<f32> {
        let mut v: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, shape, 9)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let (rows, cols) = (shape[1], shape[2]);
        for (i, x) in v.iter_mut().enumerate() {
            let (r, c) = ((i / cols) % rows, i % cols);
            if r < 8 && c >= cols / 3 {
                *x = fill;
            }
        }
        v
    }

    #[test]
    fn a_shape_that_does_not_describe_the_values_is_an_error_not_a_panic() {
        let settings = Settings::psnr(60.0).unwrap();
        // The padding search would read the last row, value 12 of 10.
        for shape in [vec![4, 4], vec![3, 3], vec![1usize << 62, 4], vec![]] {
            let result = float_chunk(&[0.5f32; 10], &shape, &settings, &Analytic);
            assert!(result.is_err(), "{shape:?}");
        }
    }

    /// Decodes `bytes`, a chunk of `values` written with missing value `fill`, and checks
    /// that it holds a missing-value record and gives back every `fill` exactly (there
    /// being some); the decoded values.
    fn missing_kept_exactly(values: &[f32], bytes: &[u8], fill: f32) -> Vec<f32> {
        let (header, back) = chunk::decode(bytes).unwrap();
        assert!(header.missing.is_some());
        let back: Vec<f32> = bytemuck::cast_slice(&back.into_bytes()).to_vec();
        let missing = |x: &f32| x.to_bits() == fill.to_bits();
        let kept: Vec<(&f32, &f32)> = values
            .iter()
            .zip(&back)
            .filter(|(a, _)| missing(a))
            .collect();
        assert!(!kept.is_empty());
        assert!(kept.iter().all(|(_, b)| missing(b)));
        back
    }

    /// PSNR over the values that are not `fill`, with their own range.
    fn real_psnr(original: &[f32], back: &[f32], fill: f32) -> f64 {
        let missing = |x: &f32| x.to_bits() == fill.to_bits();
        let keep: Vec<usize> = (0..original.len())
            .filter(|&i| !missing(&original[i]))
            .collect();
        let a: Vec<f32> = keep.iter().map(|&i| original[i]).collect();
        let b: Vec<f32> = keep.iter().map(|&i| back[i]).collect();
        metrics::psnr(&a, &b)
    }

    /// Chunks whose trailing slabs are trimmed though they are data: short series whose last
    /// 2–5 values repeat (one of them, at 0.99, measured 0.99037 on its block and 0.98997
    /// whole), a field whose last rows are dry (0) after a drizzle.
    fn trimmed_data() -> Vec<(Vec<usize>, Vec<f32>)> {
        let mut chunks = Vec::new();
        for (repeats, slope, seed) in (2..6).flat_map(|k| {
            [1.0, 2.0, 3.0]
                .into_iter()
                .flat_map(move |s| (5..9).map(move |seed| (k, s, seed)))
        }) {
            let mut series: Vec<f32> = generate(Kind::Spectral { slope }, &[64], seed)
                .into_iter()
                .map(|x| x as f32)
                .collect();
            let last = series[64 - repeats];
            series[64 - repeats..].fill(last);
            chunks.push((vec![64], series));
        }
        let mut rain: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &[48, 48], 5)
            .into_iter()
            .map(|x| (x.max(0.0) * 1e-3) as f32)
            .collect();
        rain[44 * 48..].fill(0.0);
        chunks.push((vec![48, 48], rain));
        chunks
    }

    #[test]
    fn an_ssim_target_is_met_over_the_whole_chunk_its_trailing_slabs_were_trimmed_from() {
        for (shape, values) in trimmed_data() {
            for (target, mode, header, back, out) in ssim_writes(&values, &shape) {
                assert!(header.padding.is_some(), "{shape:?}: not trimmed");
                let whole = metrics::ssim(&values, &back, &shape);
                assert_whole_met(whole, target, &out, || format!("{shape:?} {mode:?}"));
            }
        }
        // Rows of NaN at the end (a dataset whose fill value is NaN) are missing data,
        // which SSIM leaves out: the block's SSIM stands (the whole chunk's read NaN, and
        // the chunk was stored exactly after its lossy search).
        let mut nan_tail: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &[48, 48], 5)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        nan_tail[44 * 48..].fill(f32::NAN);
        let settings = Settings {
            target: Target::from_value(TargetKind::Ssim, 0.99).unwrap(),
            ..Settings::psnr(60.0).unwrap()
        };
        let (_, out) = float_chunk(&nan_tail, &[48, 48], &settings, &Analytic).unwrap();
        assert_ne!(out.codec, CodecId::Lossless, "{}", out.reason);
    }

    #[test]
    fn with_nan_gaps_an_ssim_target_is_met_over_the_whole_chunk_its_real_slabs_were_trimmed_from() {
        // The chunks above with a few NaN gaps (missing values) in the block kept: the
        // trailing slabs are still real data (dry rain's zero rows), which the reader sees
        // and a real-value SSIM counts, over the windows clear of the gaps.
        for (shape, mut values) in trimmed_data() {
            let n = values.len();
            for i in [n / 7, n / 3, n / 2] {
                values[i] = f32::NAN;
            }
            let gap = |i: usize| values[i].is_nan();
            let (real, _) = replace_missing(&values, f32::NAN).unwrap();
            let reference = metrics::SsimReference::of(&real, &shape).clear_of(gap);
            for (target, mode, header, back, out) in ssim_writes(&values, &shape) {
                assert!(header.padding.is_some() && header.missing.is_some());
                // The gaps come back as NaN; their windows are left out.
                let back: Vec<f32> = (0..n)
                    .map(|i| if gap(i) { real[i] } else { back[i] })
                    .collect();
                let whole = reference.ssim(&real, &back);
                assert_whole_met(whole, target, &out, || format!("{shape:?} {mode:?}"));
            }
        }
    }

    /// The whole chunk's SSIM `whole` meets `target`, and the chunk's record (`out`) claims
    /// no more than it: the whole chunk's, not the block's.
    fn assert_whole_met(whole: f64, target: f64, out: &Outcome, case: impl Fn() -> String) {
        assert!(
            whole >= target,
            "{} {target}: {whole} ({} {:?})",
            case(),
            out.reason,
            out.measured
        );
        if let Some(measured) = out.measured {
            assert!(measured <= whole + 1e-12, "{}: {measured} {whole}", case());
        }
    }

    /// `values` written at each SSIM target and measuring mode of the trimmed-chunk tests:
    /// the target, the mode, the chunk's header, its decoded values and the outcome.
    fn ssim_writes(
        values: &[f32],
        shape: &[usize],
    ) -> Vec<(f64, Mode, chunk::Header, Vec<f32>, Outcome)> {
        let mut writes = Vec::new();
        for target in [0.99, 0.999, 0.9999] {
            for mode in [Mode::Guarantee, Mode::Fast] {
                let settings = Settings {
                    mode,
                    target: Target::from_value(TargetKind::Ssim, target).unwrap(),
                    ..Settings::psnr(60.0).unwrap()
                };
                let (bytes, out) = float_chunk(values, shape, &settings, &Analytic).unwrap();
                let (header, back) = chunk::decode(&bytes).unwrap();
                let crate::samples::SampleBuf::F32(back) = back else {
                    panic!("f32 in, f32 out")
                };
                writes.push((target, mode, header, back, out));
            }
        }
        writes
    }

    #[test]
    fn missing_values_are_kept_exactly_and_left_out_of_the_target() {
        let shape = [8, 24, 40];
        for fill in [1e35f32, f32::NAN, -999.0] {
            let values = ocean(&shape, fill);
            for target in [40.0, 70.0] {
                let settings = Settings::psnr(target).unwrap();
                let (bytes, outcome) =
                    float_chunk_with_fill(&values, &shape, &settings, &Analytic, Some(fill))
                        .unwrap();
                let (header, back) = chunk::decode(&bytes).unwrap();
                let back = match back {
                    crate::samples::SampleBuf::F32(v) => v,
                    other => panic!("{other:?}"),
                };
                assert!(header.missing.is_some());
                for (a, b) in values.iter().zip(&back) {
                    if a.to_bits() == fill.to_bits() {
                        assert_eq!(b.to_bits(), fill.to_bits(), "a missing value changed");
                    }
                }
                let psnr = real_psnr(&values, &back, fill);
                assert!(psnr >= target, "{psnr} at {target} with fill {fill}");
                // The record reports a lower bound of that PSNR.
                let measured = outcome.measured.unwrap();
                assert!(
                    measured >= target && measured <= psnr + 1e-9,
                    "{measured} vs {psnr}"
                );
                assert!(
                    outcome.codec != CodecId::Lossless,
                    "{fill}: {}",
                    outcome.reason
                );
            }
        }
    }

    /// An SSIM target in predict mode on a chunk with missing values is measured over the
    /// windows clear of them (the replaced runs, flat, made the chunk look easier than
    /// its real values are), and met there.
    #[test]
    fn predict_mode_measures_an_ssim_target_over_real_values() {
        let shape = [8, 24, 40];
        let values = ocean(&shape, -999.0);
        let settings = Settings {
            mode: Mode::Predict,
            target: Target::from_value(TargetKind::Ssim, 0.999).unwrap(),
            ..Settings::psnr(60.0).unwrap()
        };
        let (_, outcome) =
            float_chunk_with_fill(&values, &shape, &settings, &Analytic, Some(-999.0)).unwrap();
        let measured = outcome.measured.expect("measured");
        assert!(measured >= 0.999, "{measured}");
    }

    /// A sky whose mean meets 40 dB (a point at 100 in 128² of noise at ±0.01) with a run of
    /// missing values: in every mode it goes to SPERR in one compression, its missing
    /// values come back exactly and its real values meet the target.
    #[test]
    fn a_chunk_its_mean_serves_keeps_its_missing_values() {
        let shape = [128, 128];
        let fill = -9999.0f32;
        let sky = crate::synth::faint_sky(&shape, 5, &[9001]);
        let mut values: Vec<f32> = sky.iter().map(|&x| x as f32).collect();
        values[..300].fill(fill);
        for mode in [Mode::Predict, Mode::Fast, Mode::Guarantee] {
            let settings = Settings {
                mode,
                ..Settings::psnr(40.0).unwrap()
            };
            let (bytes, outcome) =
                float_chunk_with_fill(&values, &shape, &settings, &Analytic, Some(fill)).unwrap();
            assert_eq!(outcome.reason, "mean meets the target", "{mode:?}");
            assert_eq!((outcome.codec, outcome.compressions), (CodecId::Sperr, 1));
            let (_, back) = chunk::decode(&bytes).unwrap();
            let crate::samples::SampleBuf::F32(back) = back else {
                panic!("not f32")
            };
            assert!(back[..300].iter().all(|b| b.to_bits() == fill.to_bits()));
            let psnr = real_psnr(&values, &back, fill);
            assert!(psnr >= 40.0, "{psnr} {mode:?}");
            assert!(bytes.len() < 200, "{} {mode:?}", bytes.len());
        }
    }

    #[test]
    fn a_nan_fill_marks_every_nan_whatever_its_bits() {
        // 0/0 on x86 gives a negative NaN; other producers set payload bits.
        let shape = [8, 24, 40];
        let mut values = ocean(&shape, f32::NAN);
        let odd_nans = [
            -f32::NAN,
            f32::from_bits(0x7fc0_1234),
            f32::from_bits(0xffa0_0001),
        ];
        let land: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_nan()).collect();
        for (k, &i) in land.iter().enumerate() {
            values[i] = odd_nans[k % odd_nans.len()];
        }
        let settings = Settings::psnr(60.0).unwrap();
        let (bytes, outcome) =
            float_chunk_with_fill(&values, &shape, &settings, &Analytic, Some(f32::NAN)).unwrap();
        assert_ne!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
        let (header, back) = chunk::decode(&bytes).unwrap();
        let back = match back {
            crate::samples::SampleBuf::F32(v) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            header.missing.map(|m| m.fill),
            Some(f32::NAN.to_le_bytes().to_vec())
        );
        for (a, b) in values.iter().zip(&back) {
            assert_eq!(a.is_nan(), b.is_nan(), "NaNs moved");
        }
        let real: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
        let (a, b): (Vec<f32>, Vec<f32>) = real.iter().map(|&i| (values[i], back[i])).unzip();
        let over_real = metrics::psnr(&a, &b);
        assert!(over_real >= 60.0, "{over_real}");
        // Signed zeros are different values: a 0.0 fill leaves −0.0 real.
        assert!(is_missing(0.0f32, 0.0) && !is_missing(-0.0f32, 0.0) && !is_missing(1.0, f32::NAN));
    }

    #[test]
    fn nan_and_inf_are_missing_data_without_a_fill_value_and_where_the_fill_is_absent() {
        let shape = [8, 24, 40];
        // Land as a negative NaN (0/0 on x86): the chunk stores that NaN's own bits.
        let nan = -f32::NAN;
        let values = ocean(&shape, nan);
        let exact_len = {
            let lossless = Settings::psnr(60.0).unwrap();
            let mut with_inf = values.clone();
            with_inf[0] = f32::INFINITY;
            let (bytes, outcome) =
                float_chunk_with_fill(&with_inf, &shape, &lossless, &Analytic, None).unwrap();
            // NaN and ±Inf together: one value is marked, the Inf stays, so exact.
            assert_eq!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
            let (_, back) = chunk::decode(&bytes).unwrap();
            let back: Vec<f32> = bytemuck::cast_slice(&back.into_bytes()).to_vec();
            assert!(with_inf
                .iter()
                .zip(&back)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            bytes.len()
        };
        for (fill, mode) in [(None, Mode::Guarantee), (Some(1e35), Mode::Predict)] {
            let settings = Settings {
                mode,
                ..Settings::psnr(60.0).unwrap()
            };
            let (bytes, outcome) =
                float_chunk_with_fill(&values, &shape, &settings, &Analytic, fill).unwrap();
            assert_ne!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
            assert!(
                bytes.len() * 2 < exact_len,
                "{} vs {exact_len}",
                bytes.len()
            );
            let (header, back) = chunk::decode(&bytes).unwrap();
            assert_eq!(
                header.missing.map(|m| m.fill),
                Some(nan.to_le_bytes().to_vec())
            );
            let back: Vec<f32> = bytemuck::cast_slice(&back.into_bytes()).to_vec();
            for (a, b) in values.iter().zip(&back) {
                assert_eq!(a.is_nan(), b.is_nan(), "NaNs moved");
                if a.is_nan() {
                    assert_eq!(a.to_bits(), b.to_bits(), "the NaN's bits changed");
                }
            }
            let psnr = real_psnr(&values, &back, nan);
            assert!(
                psnr >= 60.0,
                "{psnr} dB over the real values, fill {fill:?}"
            );
        }
        // A chunk holding the fill value marks it, not NaN: the NaN keeps the chunk exact.
        let mut both = ocean(&shape, 1e35);
        both[5] = f32::NAN;
        assert_eq!(missing_marker(&both, Some(1e35)), Some(1e35));
        let settings = Settings::psnr(60.0).unwrap();
        let (_, outcome) =
            float_chunk_with_fill(&both, &shape, &settings, &Analytic, Some(1e35)).unwrap();
        assert_eq!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
        assert_eq!(missing_marker(&values[..0], None), None);
        assert_eq!(missing_marker(&[1.0f32, 2.0], None), None);
        // The block scan keeps is_missing's rules: signed zeros differ, any NaN is NaN.
        for (values, fill) in [
            (vec![1.0f32, -0.0], 0.0),
            (vec![1.0f32, 0.0], 0.0),
            (vec![2.0f32, f32::from_bits(0xffc0_0001)], f32::NAN),
            (vec![2.0f32, 1e35], f32::NAN),
            (vec![2.0f32; 300], 2.0),
        ] {
            let any = values.iter().any(|v| is_missing(*v, fill));
            assert_eq!(holds(&values, fill), any, "{values:?} {fill}");
        }
        // −Inf alone (the log of a field with zeros) marks itself the same way.
        let log_of_zeros = ocean(&shape, f32::NEG_INFINITY);
        let (bytes, outcome) =
            float_chunk_with_fill(&log_of_zeros, &shape, &settings, &Analytic, None).unwrap();
        assert_ne!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
        let (_, back) = chunk::decode(&bytes).unwrap();
        let back: Vec<f32> = bytemuck::cast_slice(&back.into_bytes()).to_vec();
        for (a, b) in log_of_zeros.iter().zip(&back) {
            assert_eq!(
                a.is_infinite(),
                b.to_bits() == a.to_bits() && b.is_infinite()
            );
        }
        let psnr = real_psnr(&log_of_zeros, &back, f32::NEG_INFINITY);
        assert!(psnr >= 60.0, "{psnr} dB over the finite values");
    }

    #[test]
    fn an_edge_chunk_with_missing_values_keeps_both_records() {
        // Land inside, and the last two planes outside the dataset (HDF5's edge fill, here
        // the same fill value, as in a netCDF file): trimmed and recorded as padding.
        let shape = [8, 24, 40];
        let mut values = ocean(&shape, 1e35);
        let plane = 24 * 40;
        values[6 * plane..].fill(1e35);
        let settings = Settings::psnr(50.0).unwrap();
        let (bytes, _) =
            float_chunk_with_fill(&values, &shape, &settings, &Analytic, Some(1e35)).unwrap();
        let (header, back) = chunk::decode(&bytes).unwrap();
        assert_eq!(header.padding.as_ref().unwrap().inner, [6, 24, 40]);
        let missing = header.missing.as_ref().unwrap();
        assert_eq!(missing.bits.len(), (6 * plane).div_ceil(8));
        assert!(header.quality.is_some());
        let back: Vec<f32> = bytemuck::cast_slice(&back.into_bytes()).to_vec();
        assert!(values[6 * plane..] == back[6 * plane..]);
        assert!(real_psnr(&values, &back, 1e35) >= 50.0);
        // The checksum covers the record: a flipped bit in it is an error, not a misread.
        let payload_at = bytes.len() - chunk::parse(&bytes).unwrap().1.len();
        let mut corrupt = bytes.clone();
        corrupt[payload_at - 6] ^= 0x10; // in the records, before the 4-byte checksum

        assert!(chunk::decode(&corrupt).is_err());
    }

    #[test]
    fn nan_holes_of_an_edge_chunk_whose_fill_value_lies_only_in_its_padding_are_marked() {
        // A field with NaN gaps inside the dataset and the dataset's fill value only in
        // HDF5's edge padding: the NaNs are the block's missing data.
        let shape = [8, 24, 40];
        let plane = 24 * 40;
        let mut values: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, &shape, 9)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        for i in (0..6 * plane).step_by(37) {
            values[i] = f32::NAN;
        }
        values[6 * plane..].fill(1e35);
        let settings = Settings::psnr(60.0).unwrap();
        let (bytes, outcome) =
            float_chunk_with_fill(&values, &shape, &settings, &Analytic, Some(1e35)).unwrap();
        assert_ne!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
        let (header, back) = chunk::decode(&bytes).unwrap();
        assert_eq!(header.padding.as_ref().unwrap().inner, [6, 24, 40]);
        let back: Vec<f32> = bytemuck::cast_slice(&back.into_bytes()).to_vec();
        assert!(values[6 * plane..] == back[6 * plane..]);
        assert!(values
            .iter()
            .zip(&back)
            .all(|(a, b)| a.is_nan() == b.is_nan()));
        assert!(real_psnr(&values[..6 * plane], &back[..6 * plane], f32::NAN) >= 60.0);
    }

    #[test]
    fn a_1d_edge_chunk_with_one_fill_value_meets_the_target_on_its_data() {
        // 511 values near 1000, then HDF5's default fill 0 beyond the dataset's end: left
        // in, the 0 would set the range and allow errors 500 times the target's.
        let mut values: Vec<f32> = (0..512).map(|i| 1000.0 + (i as f32 * 0.05).sin()).collect();
        values[511] = 0.0;
        let (bytes, _) =
            float_chunk(&values, &[512], &Settings::psnr(60.0).unwrap(), &Analytic).unwrap();
        let back = chunk::decode(&bytes).unwrap().1.into_bytes();
        let back: &[f32] = bytemuck::cast_slice(&back);
        assert_eq!(back[511], 0.0);
        let psnr = metrics::psnr(&values[..511], &back[..511]);
        assert!(psnr >= 60.0, "{psnr}");
        // Missing data inside do not keep the fill value in: −Inf (the log of a zero) or a
        // declared fill value below it would have let the 0 set the range.
        for (hole, fill) in [(f32::NEG_INFINITY, None), (-9999.0, Some(-9999.0))] {
            let mut holed = values.clone();
            holed[100] = hole;
            let settings = Settings::psnr(60.0).unwrap();
            let (bytes, _) =
                float_chunk_with_fill(&holed, &[512], &settings, &Analytic, fill).unwrap();
            let back = chunk::decode(&bytes).unwrap().1.into_bytes();
            let back: &[f32] = bytemuck::cast_slice(&back);
            assert_eq!((back[100], back[511]), (hole, 0.0));
            let real: Vec<usize> = (0..511).filter(|&i| i != 100).collect();
            let pick = |v: &[f32]| real.iter().map(|&i| v[i]).collect::<Vec<f32>>();
            let psnr = metrics::psnr(&pick(&holed), &pick(back));
            assert!(psnr >= 60.0, "{hole}: {psnr}");
        }
    }

    #[test]
    fn ratio_targets_count_the_padding_record_of_trimmed_chunks() {
        // A row whose last values repeat is trimmed to the block before them: the padding
        // record and the chunk's own dims are stored bytes the ratio counts too.
        let shape = [1, 4096];
        let mut values: Vec<f32> = generate(Kind::Spectral { slope: 2.0 }, &shape, 9)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let last = values[4000];
        values[4000..].fill(last);
        // The modes that measure (predict mode's one try is the model's, not measured).
        for mode in [Mode::Guarantee, Mode::Fast] {
            for target in [4.0, 16.0, 64.0] {
                let settings = Settings {
                    target: Target::from_value(TargetKind::Ratio, target).unwrap(),
                    mode,
                    ..Settings::psnr(40.0).unwrap()
                };
                let (bytes, outcome) = float_chunk(&values, &shape, &settings, &Analytic).unwrap();
                let (header, _) = chunk::decode(&bytes).unwrap();
                assert_eq!(header.padding.as_ref().unwrap().inner, [1, 4000]);
                let ratio = metrics::compression_ratio(4000 * 4, bytes.len());
                assert!(
                    ratio >= target,
                    "{mode:?} {target}: {ratio} ({})",
                    outcome.reason
                );
                // The record keeps the measured ratio as an f16 offset from the target.
                let measured = header.quality.and_then(|q| q.measured);
                let measured = measured.expect("measuring modes record the ratio");
                let precision = 1e-3 * (ratio - target) + 1e-6;
                assert!(
                    (measured - ratio).abs() <= precision,
                    "{measured} vs {ratio}"
                );
            }
        }
    }

    #[test]
    fn ratio_targets_count_the_record_and_predict_mode_aims_higher() {
        // No axis of 8 values or fewer, which predict mode would measure
        // (crate::unfamiliar::thin_axis).
        let shape = [16, 24, 20];
        let values = ocean(&shape, 1e35);
        // A ratio counts every stored byte, the missing-value record too.
        let ratio = Settings {
            target: Target::from_value(TargetKind::Ratio, 8.0).unwrap(),
            ..Settings::psnr(40.0).unwrap()
        };
        let (bytes, outcome) =
            float_chunk_with_fill(&values, &shape, &ratio, &Analytic, Some(1e35)).unwrap();
        let stored = metrics::compression_ratio(values.len() * 4, bytes.len());
        assert!(stored >= 8.0, "{stored}: {}", outcome.reason);
        missing_kept_exactly(&values, &bytes, 1e35);
        // Predict mode does not measure the real values: it aims at the raised target and
        // meets it (with a proposal that asks for no look, as the model's mostly do; SZ3's
        // formula without the model asks for one).
        let predict = Settings {
            mode: Mode::Predict,
            ..Settings::psnr(60.0).unwrap()
        };
        let formula = crate::select::fixed::Fixed {
            codec: CodecId::Sz3,
            runner_up: false,
            scale: 1.0,
        };
        let (bytes, outcome) =
            float_chunk_with_fill(&values, &shape, &predict, &formula, Some(1e35)).unwrap();
        assert!(outcome.measured.is_none());
        let back = chunk::decode(&bytes).unwrap().1.into_bytes();
        let psnr = real_psnr(&values, bytemuck::cast_slice(&back), 1e35);
        assert!(psnr >= 60.0, "{psnr}");
        // A raise beyond 400 dB (5 real values of 7680: 32 dB) is measured instead, and
        // the real values still meet the target.
        let mut sparse = vec![1e35f32; values.len()];
        let n = sparse.len();
        sparse[n - 5..].copy_from_slice(&[1.0, 2.0, 3.0, 2.5, 1.5]);
        let high = Settings {
            mode: Mode::Predict,
            ..Settings::psnr(380.0).unwrap()
        };
        let (bytes, _) =
            float_chunk_with_fill(&sparse, &shape, &high, &Analytic, Some(1e35)).unwrap();
        let back = chunk::decode(&bytes).unwrap().1.into_bytes();
        assert!(real_psnr(&sparse, bytemuck::cast_slice(&back), 1e35) >= 380.0);
    }

    #[test]
    fn a_ratio_the_headers_alone_exceed_stores_the_block_exactly_in_every_mode() {
        // One row of values over 255 rows of zeros, trimmed to the row: 1 KiB at a ratio
        // of 100 leaves 10 bytes, less than the headers. Guarantee and fast mode searched to
        // the loosest bound (PSNR 27 dB, and 0.9 dB for 64 values alone, still short); the
        // row is now kept exactly, and the whole chunk's ratio reaches the target anyway.
        let row = |n: usize| (0..n).map(|i| (i as f32 * 0.1).sin() * 3.0 + 5.0);
        let mut trimmed = vec![0f32; 256 * 256];
        trimmed[..256]
            .iter_mut()
            .zip(row(256))
            .for_each(|(v, x)| *v = x);
        let tiny: Vec<f32> = row(64).collect();
        for (values, shape) in [(&trimmed, &[256, 256][..]), (&tiny, &[64][..])] {
            for mode in [Mode::Guarantee, Mode::Predict, Mode::Fast] {
                let settings = Settings {
                    target: Target::from_value(TargetKind::Ratio, 100.0).unwrap(),
                    mode,
                    ..Settings::psnr(40.0).unwrap()
                };
                let (bytes, outcome) = float_chunk(values, shape, &settings, &Analytic).unwrap();
                assert_eq!(
                    outcome.reason,
                    select::RATIO_UNREACHABLE,
                    "{mode:?} {shape:?}"
                );
                let back = chunk::decode(&bytes).unwrap().1.into_bytes();
                assert_eq!(back, bytemuck::cast_slice::<f32, u8>(values), "{mode:?}");
            }
        }
        let ratio = metrics::compression_ratio(trimmed.len() * 4, {
            let settings = Settings {
                target: Target::from_value(TargetKind::Ratio, 100.0).unwrap(),
                ..Settings::psnr(40.0).unwrap()
            };
            float_chunk(&trimmed, &[256, 256], &settings, &Analytic)
                .unwrap()
                .0
                .len()
        });
        assert!(ratio >= 100.0, "{ratio}");
    }

    #[test]
    fn a_raised_ratio_packs_past_two_million() {
        // 9 digits hold no thousandths there: the raise rounds up to a whole ratio instead
        // of being dropped (the search then left no room for the padding record).
        let settings = Settings {
            target: Target::from_value(TargetKind::Ratio, 3e6).unwrap(),
            ..Settings::psnr(40.0).unwrap()
        };
        let raised = raised_to(&settings, 3_070_000.25).unwrap();
        assert_eq!(raised.target.value(), 3_070_001.0);
        assert_eq!(
            raised_to(&settings, 62.0001).unwrap().target.value(),
            62.001
        );
        assert!(raised_to(&settings, 1.5e8).is_none());
    }

    #[test]
    fn a_ratio_the_missing_value_record_alone_exceeds_keeps_the_missing_values() {
        // 256 values (1 KiB) at a ratio of 100 leave 10 bytes, less than the record of
        // which values are missing: no ratio meets the target, and the fill value must
        // still come back exactly rather than be compressed with the data.
        let shape = [1, 16, 16];
        let values = ocean(&shape, 1e35);
        let ratio = Settings {
            target: Target::from_value(TargetKind::Ratio, 100.0).unwrap(),
            ..Settings::psnr(40.0).unwrap()
        };
        let (bytes, _) =
            float_chunk_with_fill(&values, &shape, &ratio, &Analytic, Some(1e35)).unwrap();
        let back = missing_kept_exactly(&values, &bytes, 1e35);
        // The real values stay within the range of the real values.
        let fill = 1e35f32.to_bits();
        let real = values
            .iter()
            .zip(&back)
            .filter(|(a, _)| a.to_bits() != fill);
        assert!(real.clone().all(|(_, b)| b.abs() < 1e3), "{:?}", back);
    }

    #[test]
    fn without_the_fill_value_a_huge_one_swamps_the_target() {
        // What the test above guards against: 1e35 sets the range, and 40 dB of it allows
        // errors far beyond the real values.
        let shape = [8, 24, 40];
        let values = ocean(&shape, 1e35);
        let settings = Settings::psnr(40.0).unwrap();
        let (bytes, _) = float_chunk(&values, &shape, &settings, &Analytic).unwrap();
        let back = chunk::decode(&bytes).unwrap().1.into_bytes();
        let psnr = real_psnr(&values, bytemuck::cast_slice(&back), 1e35);
        assert!(psnr < 0.0, "{psnr}");
        // A chunk with no missing value, or only missing values, is stored as before.
        let clean = ocean(&shape, 0.5);
        let (with, _) =
            float_chunk_with_fill(&clean, &shape, &settings, &Analytic, Some(1e35)).unwrap();
        let (without, _) = float_chunk(&clean, &shape, &settings, &Analytic).unwrap();
        assert_eq!(with, without);
        let all = vec![1e35f32; values.len()];
        let (bytes, _) =
            float_chunk_with_fill(&all, &shape, &settings, &Analytic, Some(1e35)).unwrap();
        let back = chunk::decode(&bytes).unwrap().1.into_bytes();
        assert_eq!(back, bytemuck::cast_slice::<f32, u8>(&all));
    }
}
