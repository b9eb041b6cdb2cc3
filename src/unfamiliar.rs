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

use crate::samples::Samples;

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

/// Whether the model is known to misread this chunk (predict mode measures it, guarantee
/// mode searches every compressor): its values lie on a coarse lattice
/// ([`on_coarse_lattice`]) or its shape has a short axis.
pub fn unfamiliar(data: Samples<'_>, shape: &[usize]) -> bool {
    shape.iter().any(|&n| (2..=SHORT_AXIS).contains(&n)) || on_coarse_lattice(data)
}

/// True when a sample of `data`'s finite values are all whole multiples of one step, their
/// smallest difference or a fraction of it down to `MAX_DIVISOR`, with at most
/// `MAX_STEPS` steps across their range: values that were integers (times a scale, plus an
/// offset) before they became floats.
pub fn on_coarse_lattice(data: Samples<'_>) -> bool {
    let stride = (data.len() / SAMPLE).max(1);
    let mut values: Vec<f64> = match data {
        Samples::F32(v) => v.iter().step_by(stride).map(|&x| x as f64).collect(),
        Samples::F64(v) => v.iter().step_by(stride).copied().collect(),
        Samples::Opaque { .. } => return false,
    };
    values.retain(|x| x.is_finite());
    values.sort_by(f64::total_cmp);
    values.dedup();
    let steps: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let Some(smallest) = steps.iter().copied().min_by(f64::total_cmp) else {
        return false;
    };
    let range = values[values.len() - 1] - values[0];
    // A handful of continuous values fits a fine enough step by chance (3 values almost
    // always, 4 about half the time), so a step below the smallest difference needs more.
    let divisors = match values.len() < FEW_VALUES {
        true => 1,
        false => MAX_DIVISOR,
    };
    (1..=divisors).any(|divisor| {
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
        step > 0.0
            && range / step <= MAX_STEPS
            && steps.iter().all(|d| {
                let k = d / step;
                (k - k.round()).abs() <= STEP_TOLERANCE
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, Kind};

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

    #[test]
    fn short_axes_are_unfamiliar() {
        let v: Vec<f64> = generate(Kind::Spectral { slope: 3.0 }, &[3, 64, 64], 2);
        assert!(unfamiliar(Samples::F64(&v), &[3, 64, 64]));
        assert!(unfamiliar(Samples::F64(&v), &[64, 2, 32, 3]));
        assert!(!unfamiliar(Samples::F64(&v), &[1, 192, 64]));
        assert!(!unfamiliar(Samples::F64(&v), &[12, 32, 32]));
    }
}
