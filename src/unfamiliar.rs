//! Chunks the surrogate is known to misread although it reads their size right, which
//! predict mode therefore decodes and measures (and corrects on a miss) like a chunk the
//! model misread by its size ([`crate::select::SURPRISE_FACTOR`]), and on which guarantee
//! mode searches every compressor, not only the model's first two
//! ([`crate::select::Proposal::third`]).
//!
//! On 34 real arrays from outside ../shared/data (images, seismograms, radar, medical and
//! solar data bundled with Python packages; docs/bench.md, "Unfamiliar data"), predict mode
//! met only 79–97% of the chunks of some runs, against its promise of 99%, where guarantee
//! and fast mode met every one. The misses fell on two kinds of chunk:
//! - values on a coarse lattice: integer-valued sources stored as floats (8-bit images,
//!   16-bit MRI and radar, digitiser counts), up to 3 dB below a PSNR the model predicted
//!   (the quantiser's error is not uniform once the input is itself quantised);
//! - a chunk with an axis of two or three values (RGB planes, channel pairs), where the
//!   codecs' predictors and transforms barely work along that axis: up to 8 dB.
//!
//! On 45 more (docs/bench.md, "Unfamiliar data"), in 128×128 chunks, predict mode met 0.906
//! of the chunks at 40 dB: tables stored as 2-D arrays (survey records, CMB power spectra,
//! tumour measurements) missed by up to 5.6 dB. Their fastest axis holds columns, each its
//! own quantity on its own scale in no order ([`table_columns`]); no chunk of
//! ../shared/data looks like that.
//!
//! On the next 46, a table of elliptic integrals (9993 × 4 arguments and values spread
//! over 60 decades) in 128 × 4 chunks passed the column test (the few largest values
//! swamp the columns' statistics) and predict mode's ZFP choice met 60 dB on 59% of the
//! chunks of its f64 copy, 87% of its f32 one: magnitudes spread over more decades than
//! any float keeps relative to the largest ([`wide_magnitudes`]). Generated tables of 4–8
//! columns of noise missed too, by up to 3.9 dB, where 10 columns and more met every
//! chunk ([`thin_axis`]), and so did small chunks of a field holding an undeclared fill
//! value far from its values, by up to 7 dB ([`isolated_markers`]).
//!
//! Series (chunks with one non-singleton axis, [`one_dimensional`]) are misread for their
//! PSNR alone, and chunks of four long axes ([`four_long_axes`]) no training chunk had:
//! predict mode measures them too ([`measured_in_predict_mode`]), guarantee mode searches
//! them as usual.

use crate::features::Extent;
use crate::samples::{element_count, fit_rank, gcd, Samples};

/// Values sampled for the lattice test.
const SAMPLE: usize = 4096;

/// A lattice with more steps than this across the range is no coarser than a continuous
/// field's sample (f32 values of one magnitude are themselves multiples of one ulp, 2^-23
/// of it); 16-bit sources have up to 65536 steps, digitisers a few more.
const MAX_STEPS: f64 = 131072.0;

/// How far from a whole number of steps a sampled difference may lie: integers scaled by a
/// float factor (radar's 16-bit gates) carry the rounding of the scaling.
const STEP_TOLERANCE: f64 = 0.05;

/// Differences of up to this many steps refine the step's estimate.
const FEW_STEPS: f64 = 16.0;

/// The largest number of steps the smallest sampled difference may span: readings
/// converted between units and rounded (whole °F as °C to 0.1: differences of 0.5 and 0.6
/// on a lattice of 0.1) leave no two values one step apart.
const MAX_DIVISOR: u32 = 10;

/// Fewer distinct sampled values than this are tested against their smallest difference
/// only.
const FEW_VALUES: usize = 8;

/// The longest non-singleton axis that counts as short.
const SHORT_AXIS: usize = 3;

/// The longest axis that counts as thin ([`thin_axis`]). Tables of 4, 5, 6 and 8 columns
/// of noise in 128-row chunks (Gaussian, and log-uniform over 6–11 decades) missed 30–60
/// dB in predict mode, at 30 dB on most of their chunks, by up to 3.9 dB, with SPERR
/// predicted at its smallest margin; with 10, 12 and 16 columns every chunk met 30–80 dB.
/// Images in strips of 4–8 rows missed as well (a generated sky of point sources met 40
/// dB on 25–47% of them, worst 33.0 dB; ../shared/data's sky images on 87–99%), strips of
/// 16 and 32 rows did not.
const THIN_AXIS: usize = 8;

/// The fewest and most columns a table's fastest axis is tested for.
const TABLE_COLUMNS: std::ops::RangeInclusive<usize> = 4..=64;

/// Column means spreading at least this much (a variance, against the mean variance within
/// a column) are each column's own level: 0.9–150 on tables, at most 0.03 on fields whose
/// neighbouring columns differ as much as any two (white noise, sky surveys); medians per
/// array of chunks.
const COLUMN_LEVELS: f64 = 0.25;

/// Neighbouring columns whose means differ at least this fraction of what any two differ
/// are in no order: 0.59–1.7 on tables, 0.04–0.38 on the fields of ../shared/data whose
/// column means spread as much (a smooth field's columns change gradually). A few columns
/// of a gradient reach it too (3/(n + 1) for n evenly spaced levels), so monotone means
/// count only when the columns' scales differ as well ([`OWN_SCALES`]).
const UNORDERED: f64 = 0.5;

/// Columns whose standard deviations differ by this factor are each on their own scale
/// (CMB spectra: TT, EE, BB, TE, their means falling monotonically), unlike a gradient
/// field's.
const OWN_SCALES: f64 = 10.0;

/// The fewest sampled rows the column test trusts: from 4–5 rows of noise, column means
/// spread as much as a table's by chance.
const TABLE_ROWS: usize = 16;

/// Decades between the largest magnitude and the smaller ones beyond which a chunk's
/// values are on no common scale ([`wide_magnitudes`]). f32 keeps 7 decades relative to a
/// chunk's largest value and f64 16, so past 12 most values are noise to the PSNR. The
/// widest of ../shared/data's bench chunks spans 5.4 (between the largest and the tenth
/// percentile of the nonzero magnitudes), leaving out an array whose 1e35 fill values
/// the bench stores as data (38.9); the elliptic-integral table's chunks at least 43 (median 49).
const WIDE_DECADES: f64 = 12.0;

/// The share of a sample's nonzero magnitudes [`wide_magnitudes`] measures from the
/// smallest: the tenth percentile, so that a few tiny values (a field's zero crossings)
/// do not count, only values spread over many decades throughout.
const SMALL_SHARE: f64 = 0.1;

/// An extreme value set apart from every other value of a chunk by more than this share
/// of the range is a marker or a glitch ([`isolated_markers`]).
const MARKER_GAP: f64 = 0.5;

/// Whether the model is known to misread this chunk (predict mode measures it, guarantee
/// mode searches every compressor): its values lie on a coarse lattice
/// ([`on_coarse_lattice`]), its shape has a short or a thin axis ([`thin_axis`]),
/// its fastest axis holds a table's columns ([`table_columns`]), its magnitudes spread
/// over too many decades ([`wide_magnitudes`]), or it holds markers far from its values
/// ([`isolated_markers`]).
///
/// `extent` is the chunk's ([`Extent::of`]), which the caller has already taken.
pub fn unfamiliar(data: Samples<'_>, shape: &[usize], extent: Extent) -> bool {
    // Cheapest first: the lattice test sorts its sample.
    shape.iter().any(|&n| (2..=SHORT_AXIS).contains(&n))
        || thin_axis(shape)
        || table_columns(data, shape, extent)
        || wide_magnitudes_within(data, extent)
        || isolated_markers_within(data, extent)
        || on_coarse_lattice(data)
}

/// True when four or more axes of `shape` hold more than one value: no training chunk had
/// them (the collection's templates are at most 3-D), and SZ3 and ZFP code them in 4-D
/// where the features fold them to three axes as SPERR does (climate output chunked as
/// time × level × lat × lon).
///
/// Only predict mode measures such chunks, as it does series ([`one_dimensional`]): the
/// measurements also teach the dataset's memory its offset. On CCSM's 4-member TREFHT
/// ensemble (16 chunks) predict mode then stored 0.694 / 0.886 / 0.955 of the best oracle's
/// ratio at 40 / 60 / 80 dB where it stored 0.325 / 0.664 / 0.839 unmeasured, every chunk
/// met; guarantee
/// mode, which measures anyway, gained nothing from searching all three compressors there
/// (0.17 more compressions per chunk over ../shared/data), so [`unfamiliar`] leaves them out.
pub fn four_long_axes(shape: &[usize]) -> bool {
    shape.iter().filter(|&&n| n > 1).count() >= 4
}

/// Whether predict mode measures a chunk of this kind whatever its bound: one the model
/// misreads ([`unfamiliar`]), a series ([`one_dimensional`]) or one of four long axes
/// ([`four_long_axes`]). Shape tests first: the chunk scan runs only where they pass.
pub fn measured_in_predict_mode(data: Samples<'_>, shape: &[usize], extent: Extent) -> bool {
    one_dimensional(shape) || four_long_axes(shape) || unfamiliar(data, shape, extent)
}

/// True when every value of a sample of `data` but the chunk's smallest lies more than
/// `MARKER_GAP` of the range above it, or every one but its largest that far below it (the
/// extremes are the chunk's own, so a sharp peak whose neighbours the sample steps over
/// counts too: predict mode then measures a chunk whose range a few values set): an
/// undeclared fill value (-9999 among temperatures near 280 K) or a glitch, which sets the
/// range and leaves the field a sliver of it. A field of 280 ± 10 with 2% of its values
/// at -9999 in 32×32 chunks met 40 dB in predict mode on none of them (worst 34.0 dB) and
/// 60 / 80 dB on 50% / 22% (worst 53.1 / 74.3); a random walk with a rare spike of 1000 in
/// 1024-value chunks met 40 dB on 64% (worst 35.4). Of ../shared/data's bench chunks
/// those of the arrays holding such markers as data count (nmc_storm's -9999, foam V's
/// 1e35) and 4 of sky images whose brightest source stands alone (rosat, SDSS, Spitzer); a
/// plateau at a clipped edge (sea ice at 0) lies next to the other values.
pub fn isolated_markers(data: Samples<'_>) -> bool {
    isolated_markers_within(data, Extent::of(data))
}

/// [`isolated_markers`] of `data` whose finite values span `extent`. The extremes are the
/// chunk's own, not its sample's: a lone glitch the stride steps over (3 in 4 of them in a
/// 128² chunk, 63 in 64 in a 64³ one) sets the range all the same.
fn isolated_markers_within(data: Samples<'_>, extent: Extent) -> bool {
    let Some(values) = finite_sample(data) else {
        return false;
    };
    let (lo, hi) = (extent.min, extent.max);
    let range = hi - lo;
    if !(range > 0.0 && range.is_finite()) {
        return false;
    }
    // The nearest other value to each extreme.
    let (above_lo, below_hi) = values.iter().fold((hi, lo), |(above, below), &x| {
        (
            if x > lo { above.min(x) } else { above },
            if x < hi { below.max(x) } else { below },
        )
    });
    let apart = |gap: f64| gap > MARKER_GAP * range;
    apart(above_lo - lo) || apart(hi - below_hi)
}

/// True when the chunk's largest magnitude exceeds the tenth percentile of the nonzero
/// magnitudes of a sample of `data` by more than `WIDE_DECADES` decades: tables of
/// test arguments over the whole float range, or huge markers among ordinary values.
/// The model learned from fields whose values share a scale; on the elliptic-integral
/// table its ZFP predictions were 3–7 dB too high.
pub fn wide_magnitudes(data: Samples<'_>) -> bool {
    wide_magnitudes_within(data, Extent::of(data))
}

/// [`wide_magnitudes`] of `data` whose finite values span `extent`: the largest magnitude
/// is the chunk's own (a lone 1e35 the sample's stride steps over counts).
fn wide_magnitudes_within(data: Samples<'_>, extent: Extent) -> bool {
    let Some(sample) = finite_sample(data) else {
        return false;
    };
    let mut magnitudes: Vec<f64> = sample
        .into_iter()
        .map(f64::abs)
        .filter(|&x| x > 0.0)
        .collect();
    let largest = extent.min.abs().max(extent.max.abs());
    if magnitudes.is_empty() || largest <= 0.0 {
        return false;
    }
    let k = (magnitudes.len() as f64 * SMALL_SHARE) as usize;
    let (_, &mut small, _) = magnitudes.select_nth_unstable_by(k, f64::total_cmp);
    largest > small * 10f64.powf(WIDE_DECADES)
}

/// The finite values among about `SAMPLE` of `data`'s, evenly strided, as f64: what the
/// value tests here look at (None for opaque data).
fn finite_sample(data: Samples<'_>) -> Option<Vec<f64>> {
    let stride = coprime_stride(data.len(), SAMPLE);
    let values: Vec<f64> = match data {
        Samples::F32(v) => v.iter().step_by(stride).map(|&x| x as f64).collect(),
        Samples::F64(v) => v.iter().step_by(stride).copied().collect(),
        Samples::Opaque { .. } => return None,
    };
    Some(values.into_iter().filter(|x| x.is_finite()).collect())
}

/// The smallest stride of at least `len / sample` that shares no factor with `len`. Every
/// axis's extent and every run of fastest axes divides `len`, so such a stride walks
/// through all of each axis's positions; `len / sample` itself is often a multiple of the
/// fastest axis (64 in a 64³ chunk), and then every sampled value lay in one plane: a
/// gradient along that axis sampled as a constant, its far end an isolated marker.
pub(crate) fn coprime_stride(len: usize, sample: usize) -> usize {
    let least = (len / sample).max(1);
    (least..).find(|&s| gcd(s, len) == 1).unwrap_or(least)
}

/// True when an axis of `shape`, folded as the codecs fold it (at most three axes, the
/// slowest merged), holds 4–`THIN_AXIS` values: rows of a few columns, like a table's, or
/// strips of a few rows of an image or planes of a volume, along which the codecs have
/// little to work with. Fields chunked for HDF5 have axes of tens to thousands of values;
/// of ../shared/data's bench chunks only the seismic shot gathers' (8 shots) and the
/// galaxy catalog's (4 columns, stored as rows) have such an axis, besides the
/// 3-component arrays (`SHORT_AXIS` counts those). The 4 members of CCSM's ensemble fold
/// into the time axis.
pub fn thin_axis(shape: &[usize]) -> bool {
    fit_rank(shape, 3)
        .iter()
        .any(|&n| (SHORT_AXIS + 1..=THIN_AXIS).contains(&n))
}

/// True when `shape` has a single non-singleton axis: a series, a column or a flattened
/// mesh. The corpus holds few such chunks (60 of 766, from five sources), and the model
/// reads them worse than fields: held out, it over-predicted the PSNR of mpas's and
/// geoflow's 1-D chunks by a median 0.4–2.6 dB (up to 3.5) where its median error on
/// 2-D and 3-D chunks was 0.7–0.9 dB either way; on generated series (random walks,
/// AR(1), Gaussian, Student-t and log-uniform noise) in chunks of 1024–16384 values
/// predict mode missed 30–60 dB on up to all of an array's chunks, by up to 2.3 dB.
///
/// Only predict mode measures such chunks ([`crate::select`]): the model misreads their
/// PSNR, not its ranking of compressors, so [`unfamiliar`] leaves them out and guarantee
/// mode does not search the third compressor on them (on those series it raised the
/// ratio by at most 0.4%, for 0.7–2.5 more compressions per chunk).
pub fn one_dimensional(shape: &[usize]) -> bool {
    shape.iter().filter(|&&n| n > 1).count() == 1
}

/// True when the fastest axis of `shape` holds the columns of a table rather than samples
/// of one field: over a sample of at least 16 rows, the variance of the columns' means is
/// at least a quarter of the mean variance within a column, and neighbouring columns'
/// means differ by at least half of what any two columns' differ, either not monotonically
/// or with the columns' spreads 10× apart. `extent` is the chunk's ([`Extent::of`]).
pub fn table_columns(data: Samples<'_>, shape: &[usize], extent: Extent) -> bool {
    let Some(&columns) = shape.iter().rev().find(|&&n| n > 1) else {
        return false;
    };
    let rows = data.len() / columns.max(1);
    if !TABLE_COLUMNS.contains(&columns) || element_count(shape) != Some(data.len()) {
        return false;
    }
    // Rows a stride coprime with their count apart: a stride of the chunk's own period
    // (every 16th row of 16-row records) sampled one phase of it alone, such as the
    // blank rows between records, which hid the columns.
    let row_stride = coprime_stride(rows, SAMPLE / columns);
    let sampled: Vec<usize> = (0..rows).step_by(row_stride).collect();
    if sampled.len() < TABLE_ROWS {
        return false;
    }
    // Every test compares spreads with spreads, so the values are scaled by a power of two
    // (exactly) to near 1 first: squares of values past 1e154 overflowed to inf, and noise
    // of 1e160 passed `inf >= inf` as a table (those of values under 1e-162 underflow).
    let peak = extent.min.abs().max(extent.max.abs());
    let scale = match peak.is_finite() && peak > 0.0 {
        true => 2f64.powi((-peak.log2().floor()).clamp(-1000.0, 1000.0) as i32),
        false => 1.0,
    };
    let value = |i: usize| data.value(i).map_or(f64::NAN, |x| x * scale);
    let n = sampled.len() as f64;
    let mut means = Vec::with_capacity(columns);
    let mut within = 0.0;
    let (mut least_spread, mut most_spread) = (f64::INFINITY, 0.0f64);
    for column in 0..columns {
        let values: Vec<f64> = sampled
            .iter()
            .map(|&r| value(r * columns + column))
            .collect();
        if !values.iter().all(|x| x.is_finite()) {
            return false;
        }
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        within += variance;
        least_spread = least_spread.min(variance.sqrt());
        most_spread = most_spread.max(variance.sqrt());
        means.push(mean);
    }
    let columns = columns as f64;
    within /= columns;
    let grand = means.iter().sum::<f64>() / columns;
    let between = means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / columns;
    let neighbours = means.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (columns - 1.0);
    let any_two = means
        .iter()
        .map(|a| means.iter().map(|b| (a - b).abs()).sum::<f64>())
        .sum::<f64>()
        / (columns * (columns - 1.0));
    let monotone = means.windows(2).all(|w| w[1] >= w[0]) || means.windows(2).all(|w| w[1] <= w[0]);
    let own_scales = most_spread > OWN_SCALES * least_spread;
    between > 0.0
        && between >= COLUMN_LEVELS * within
        && neighbours >= UNORDERED * any_two
        && (own_scales || !monotone)
}

/// True when a sample of `data`'s finite values are all whole multiples of one step, their
/// smallest difference or a fraction of it down to `MAX_DIVISOR`, with at most
/// `MAX_STEPS` steps across their range: values that were integers (times a scale, plus an
/// offset) before they became floats.
pub fn on_coarse_lattice(data: Samples<'_>) -> bool {
    coarse_lattice_step(data).is_some()
}

/// The step of the coarse lattice `data`'s values lie on ([`on_coarse_lattice`]), as its
/// sample shows it (a multiple of the true step where the sample skips every other level),
/// or None.
pub fn coarse_lattice_step(data: Samples<'_>) -> Option<f64> {
    let mut values = finite_sample(data)?;
    values.sort_unstable_by(f64::total_cmp);
    values.dedup();
    let steps: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let smallest = steps.iter().copied().min_by(f64::total_cmp)?;
    let range = values[values.len() - 1] - values[0];
    // Every divisor's step below is at most 1.5× the smallest difference (each difference
    // rounds to its nearest multiple, at least 1): a range of more than MAX_STEPS such
    // steps, as a continuous field's sample always has, ends the test here.
    if range > MAX_STEPS * 1.5 * smallest {
        return None;
    }
    // A handful of continuous values fits a fine enough step by chance (3 values almost
    // always, 4 about half the time), so a step below the smallest difference needs more.
    let divisors = match values.len() < FEW_VALUES {
        true => 1,
        false => MAX_DIVISOR,
    };
    (1..=divisors).find_map(|divisor| {
        let guess = smallest / divisor as f64;
        let few = FEW_STEPS * divisor as f64;
        // The smallest difference carries the rounding of two values; the step is refined
        // over the differences of a few steps, so that one of hundreds still counts whole.
        let (sum, count) = steps
            .iter()
            .map(|&d| (d, (d / guess).round()))
            .filter(|&(_, k)| k <= few)
            .fold((0.0, 0.0), |(s, n), (d, k)| (s + d, n + k));
        let step = sum / count;
        let on_it = step > 0.0
            && range / step <= MAX_STEPS
            && steps.iter().all(|d| {
                let k = d / step;
                (k - k.round()).abs() <= STEP_TOLERANCE
            });
        on_it.then_some(step)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, Kind};

    /// [`super::unfamiliar`] with the chunk's extent taken here.
    fn unfamiliar(data: Samples<'_>, shape: &[usize]) -> bool {
        super::unfamiliar(data, shape, Extent::of(data))
    }

    #[test]
    fn integer_valued_sources_are_on_a_coarse_lattice_and_fields_are_not() {
        let field: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[64, 64], 1);
        let (lo, hi) = field
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let scaled = |levels: f64| -> Vec<f32> {
            field
                .iter()
                .map(|&x| ((x - lo) / (hi - lo) * levels).round() as f32)
                .collect()
        };
        // 8-bit and 16-bit images; 16-bit gates scaled to physical units with an offset.
        assert!(on_coarse_lattice(Samples::F32(&scaled(255.0))));
        assert!(on_coarse_lattice(Samples::F32(&scaled(65535.0))));
        let radar: Vec<f32> = scaled(30000.0).iter().map(|&k| 0.0033 * k - 32.0).collect();
        assert!(on_coarse_lattice(Samples::F32(&radar)));
        // Whole degrees Fahrenheit as Celsius rounded to 0.1: no two values 0.1 apart.
        let celsius: Vec<f64> = scaled(90.0)
            .iter()
            .map(|&f| ((f as f64 - 32.0) * 5.0 / 9.0 * 10.0).round() / 10.0)
            .collect();
        assert!(on_coarse_lattice(Samples::F64(&celsius)));
        // The continuous field, in f64 and in f32.
        assert!(!on_coarse_lattice(Samples::F64(&field)));
        let f32s: Vec<f32> = field.iter().map(|&x| x as f32).collect();
        assert!(!on_coarse_lattice(Samples::F32(&f32s)));
        // The same on an offset a thousand times its range sits on f32's own lattice (ulps
        // of 2^-14 over a range of a few units), as quantised as an integer source.
        let offset: Vec<f32> = field
            .iter()
            .map(|&x| 1000.0 * (hi - lo) as f32 + x as f32)
            .collect();
        assert!(on_coarse_lattice(Samples::F32(&offset)));
        // Four values 0.5, 0.6 and 0.5 apart fit a step of a fifth of their smallest
        // difference, as a handful of continuous values often fits some fine step by
        // chance: too few to tell, they are tested against that difference alone.
        assert!(!on_coarse_lattice(Samples::F64(&[0.0, 0.5, 1.1, 1.6])));
        // A constant has no step to measure.
        assert!(!on_coarse_lattice(Samples::F32(&[2.5; 100])));
    }

    /// The value tests' sample walks through every axis: in a 64³ chunk every 64th value
    /// is one plane, where a field varying along the fastest axis looked constant and its
    /// far end an isolated marker.
    #[test]
    fn a_gradient_along_the_fastest_axis_of_a_cube_is_familiar() {
        let shape = [64, 64, 64];
        let ramp: Vec<f32> = (0..64 * 64 * 64).map(|i| (i % 64) as f32 * 0.37).collect();
        let sample = finite_sample(Samples::F32(&ramp)).unwrap();
        let (lo, hi) = sample
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(hi - lo > 0.9 * 63.0 * 0.37, "sample spans {lo}..{hi}");
        assert!(!isolated_markers(Samples::F32(&ramp)));
        let bumpy: Vec<f32> = ramp
            .iter()
            .enumerate()
            .map(|(i, &x)| x + 0.01 * ((i * 7919) % 101) as f32)
            .collect();
        assert!(!unfamiliar(Samples::F32(&bumpy), &shape));
    }

    fn is_table(data: Samples<'_>, shape: &[usize]) -> bool {
        table_columns(data, shape, Extent::of(data))
    }

    #[test]
    fn the_columns_of_a_table_are_unfamiliar_and_a_field_is_not() {
        // 500 records of 10 quantities, each on its own scale and level, like the survey
        // tables and spectra predict mode missed on by up to 5.6 dB.
        let noise: Vec<f64> = generate(Kind::Noise, &[500, 10], 3);
        let scales = [1.0, 300.0, 0.01, 40.0, 2.0, 0.5, 7000.0, 3.0, 0.1, 90.0];
        let table: Vec<f64> = noise
            .iter()
            .enumerate()
            .map(|(i, &x)| scales[i % 10] * (2.0 + x))
            .collect();
        assert!(is_table(Samples::F64(&table), &[500, 10]));
        assert!(unfamiliar(Samples::F64(&table), &[500, 10]));
        // Singleton axes do not hide the columns.
        assert!(is_table(Samples::F64(&table), &[500, 10, 1]));
        // The same values as one field: a smooth field whose columns change gradually,
        // noise whose columns share one level, or an axis too long to be a table's.
        let smooth: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[64, 64], 4);
        assert!(!is_table(Samples::F64(&smooth), &[64, 64]));
        assert!(!is_table(Samples::F64(&noise), &[500, 10]));
        assert!(!is_table(Samples::F64(&table), &[50, 100]));
        // On any scale f64 holds: squares of 1e160 overflowed, and noise passed.
        for scale in [1e160, 1e-200] {
            let scaled = |v: &[f64]| v.iter().map(|x| x * scale).collect::<Vec<f64>>();
            assert!(!is_table(Samples::F64(&scaled(&noise)), &[500, 10]));
            assert!(is_table(Samples::F64(&scaled(&table)), &[500, 10]));
        }
        // A gradient across the columns is ordered, however far apart their levels and
        // however few the columns (four evenly spaced levels pass the neighbours' test).
        for columns in [4, 5, 10] {
            let ramp: Vec<f64> = noise
                .iter()
                .take(500 * columns)
                .enumerate()
                .map(|(i, &x)| 100.0 * (i % columns) as f64 + x)
                .collect();
            assert!(!is_table(Samples::F64(&ramp), &[500, columns]));
        }
        // The table's first four columns, out of order, are still a table, in f32 too, and
        // so are columns in monotone order on scales 10× apart.
        let four: Vec<f32> = table
            .chunks(10)
            .flat_map(|row| row[..4].iter().map(|&x| x as f32))
            .collect();
        assert!(is_table(Samples::F32(&four), &[500, 4]));
        let falling: Vec<f64> = noise
            .iter()
            .take(2000)
            .enumerate()
            .map(|(i, &x)| [1000.0, 10.0, 0.01, -1.0][i % 4] * (1.0 + x.abs()))
            .collect();
        assert!(is_table(Samples::F64(&falling), &[500, 4]));
        // Records of 16 rows whose first is blank, in 16 columns: the 4096-value sample's
        // stride of 16 rows saw the blanks alone.
        let records: Vec<f64> = generate(Kind::Noise, &[4096, 16], 5)
            .iter()
            .enumerate()
            .map(|(i, &x)| match (i / 16) % 16 {
                0 => 0.0,
                _ => scales[i % 16 % 10] * (1 + i % 16 / 10) as f64 * (2.0 + x),
            })
            .collect();
        assert!(is_table(Samples::F64(&records), &[4096, 16]));
        // Too few rows to tell a table from noise, or values that do not fill the shape.
        assert!(!is_table(Samples::F64(&table[..100]), &[10, 10]));
        assert!(!is_table(Samples::F64(&table[..4990]), &[500, 10]));
    }

    #[test]
    fn magnitudes_over_many_decades_are_unfamiliar_and_a_field_is_not() {
        // A table of test arguments drawn log-uniformly over 60 decades, like the
        // elliptic integrals predict mode missed 60 dB on.
        let noise: Vec<f64> = generate(Kind::Noise, &[512, 4], 5);
        let table: Vec<f64> = noise.iter().map(|&x| 10f64.powf(30.0 * x)).collect();
        let (lo, hi) = table
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(hi / lo > 1e40, "the table spans {lo:e}..{hi:e}");
        assert!(wide_magnitudes(Samples::F64(&table)));
        assert!(unfamiliar(Samples::F64(&table), &[512, 4]));
        let f32s: Vec<f32> = table.iter().map(|&x| x as f32).collect();
        assert!(wide_magnitudes(Samples::F32(&f32s)));
        // A field crossing zero and one whose background is exactly zero: their
        // magnitudes share a scale. A huge marker among them (an undeclared fill value)
        // does not, and its range is the marker's.
        let field: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[64, 64], 6);
        assert!(!wide_magnitudes(Samples::F64(&field)));
        let sparse: Vec<f64> = field.iter().map(|&x| x.max(0.0)).collect();
        assert!(!wide_magnitudes(Samples::F64(&sparse)));
        let mut marked = field.clone();
        marked[0] = 1e20;
        assert!(wide_magnitudes(Samples::F64(&marked)));
        // Nothing nonzero or finite to measure.
        assert!(!wide_magnitudes(Samples::F32(&[0.0; 64])));
        assert!(!wide_magnitudes(Samples::F64(&[f64::NAN; 8])));
    }

    #[test]
    fn markers_far_from_the_values_are_unfamiliar_and_a_plateau_is_not() {
        // Temperatures near 280 K with every 50th value at -9999 (or 1e20 above them).
        let field: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[64, 64], 9);
        let kelvin: Vec<f64> = field.iter().map(|&x| 280.0 + 10.0 * x).collect();
        let marked = |marker: f64| -> Vec<f64> {
            kelvin
                .iter()
                .enumerate()
                .map(|(i, &x)| if i % 50 == 7 { marker } else { x })
                .collect()
        };
        for marker in [-9999.0, 1e20] {
            let v = marked(marker);
            assert!(isolated_markers(Samples::F64(&v)), "{marker}");
            assert!(unfamiliar(Samples::F64(&v), &[64, 64]), "{marker}");
            let f32s: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            assert!(isolated_markers(Samples::F32(&f32s)), "{marker}");
        }
        // A single glitch counts too; the field alone, clipped to a plateau at its low
        // edge (sea ice at 0), evenly spaced levels, and a constant do not.
        let mut glitch = kelvin.clone();
        glitch[100] = 1280.0;
        assert!(isolated_markers(Samples::F64(&glitch)));
        assert!(!isolated_markers(Samples::F64(&kelvin)));
        let clipped: Vec<f64> = kelvin.iter().map(|&x| x.max(280.0)).collect();
        assert!(!isolated_markers(Samples::F64(&clipped)));
        assert!(!isolated_markers(Samples::F64(&[0.0, 1.0, 2.0, 1.0])));
        assert!(!isolated_markers(Samples::F64(&[2.5; 16])));
    }

    #[test]
    fn a_lone_marker_the_sample_steps_over_still_counts() {
        // 280 ± 10 K in 128² values (sampled every 4th) and 64³ (every 64th), with one
        // glitch off the sample's stride: it sets the range, and the chunk is unfamiliar.
        for n in [128 * 128, 64 * 64 * 64] {
            let mut v: Vec<f32> = (0..n)
                .map(|i| 280.0 + 10.0 * (i as f32 * 0.01).sin())
                .collect();
            assert!(!isolated_markers(Samples::F32(&v)) && !wide_magnitudes(Samples::F32(&v)));
            v[4097] = 1280.0;
            assert!(isolated_markers(Samples::F32(&v)), "{n}");
            assert!(unfamiliar(Samples::F32(&v), &[n]), "{n}");
            v[4097] = 1e35;
            assert!(wide_magnitudes(Samples::F32(&v)), "{n}");
        }
    }

    #[test]
    fn thin_axes_are_unfamiliar_and_longer_ones_are_not() {
        let v: Vec<f64> = generate(Kind::Noise, &[128, 16], 7);
        for columns in [4, 5, 8] {
            let shape = [128 * 16 / columns, columns];
            assert!(thin_axis(&shape), "{shape:?}");
            assert!(unfamiliar(Samples::F64(&v), &shape), "{shape:?}");
        }
        // Singleton axes do not count; ten columns and more are rows a codec works along.
        assert!(thin_axis(&[256, 8, 1]));
        for shape in [[128, 16, 1], [16, 128, 1], [1, 32, 64]] {
            assert!(!thin_axis(&shape), "{shape:?}");
        }
        assert!(!thin_axis(&[1, 1, 1]));
        assert!(!thin_axis(&[]));
        // Strips of a few rows and slabs of a few planes, as the codecs fold them: four
        // ensemble members merge into the time axis.
        for shape in [&[4, 480][..], &[6, 96, 128], &[64, 64, 8, 32]] {
            assert!(thin_axis(shape), "{shape:?}");
        }
        for shape in [&[16, 480][..], &[4, 55, 32, 32], &[3, 16, 64, 64]] {
            assert!(!thin_axis(shape), "{shape:?}");
        }
        let field: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[205, 10], 8);
        assert!(!unfamiliar(Samples::F64(&field), &[205, 10]));
    }

    #[test]
    fn short_axes_are_unfamiliar() {
        let v: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[3, 64, 64], 2);
        assert!(unfamiliar(Samples::F64(&v), &[3, 64, 64]));
        assert!(unfamiliar(Samples::F64(&v), &[64, 2, 32, 3]));
        assert!(!unfamiliar(Samples::F64(&v), &[1, 192, 64]));
        assert!(!unfamiliar(Samples::F64(&v), &[12, 32, 32]));
    }

    #[test]
    fn four_long_axes_are_measured_in_predict_mode_only() {
        for shape in [&[4, 12, 64, 64][..], &[2, 9, 9, 9, 1], &[5, 1, 6, 7, 8]] {
            assert!(four_long_axes(shape), "{shape:?}");
        }
        for shape in [&[1, 12, 64, 64][..], &[64, 64, 64], &[1, 1, 1, 1]] {
            assert!(!four_long_axes(shape), "{shape:?}");
        }
        // Guarantee mode gains nothing from searching every compressor on them.
        let shape = [4, 16, 16, 16];
        let field: Vec<f64> = generate(Kind::Spectral { slope: 2.0 }, &shape, 3);
        let data = Samples::F64(&field);
        assert!(!unfamiliar(data, &shape));
        assert!(measured_in_predict_mode(data, &shape, Extent::of(data)));
    }

    #[test]
    fn series_are_one_dimensional_and_fields_are_not() {
        for shape in [&[4096][..], &[1, 4096], &[1, 65536, 1], &[2]] {
            assert!(one_dimensional(shape), "{shape:?}");
        }
        for shape in [&[64, 64][..], &[2, 4096], &[1, 1, 1], &[1], &[]] {
            assert!(!one_dimensional(shape), "{shape:?}");
        }
        // A series is not a kind whose compressors the model ranks wrong: guarantee mode
        // does not search the third compressor on it.
        let walk: Vec<f64> = generate(Kind::Spectral { slope: 2.0 }, &[4096], 3);
        assert!(!unfamiliar(Samples::F64(&walk), &[4096]));
    }
}
