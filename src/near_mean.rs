//! Chunks whose mean alone meets a PSNR target: mostly empty sky around a few bright
//! sources, a mask around a small feature. Storing the mean everywhere errs by the
//! chunk's standard deviation, so its PSNR is `20·log10(range) − 10·log10(variance)`; where
//! that clears the target, any bound does, and the loosest stores least.
//!
//! SPERR at a bound beyond the range codes (almost) no wavelet coefficient and decodes to
//! the mean, in about 40 bytes: a coefficient it does code is reconstructed closer than
//! leaving it out would, and its outlier pass only moves values closer, so its PSNR is at
//! least the mean's (measured on ../shared/data's sky images at 0.1–3× the range: SDSS
//! 44.2–46.8 dB, the mean's to 0.01 dB, at 1–3×; ROSAT, Spitzer and Bolocam above the
//! mean's by 0–3 dB). The model was never trained beyond a bound of 0.1 of the range
//! (docs/surrogate.md), so predict mode kept SZ3 or SPERR at ratios of 600–800 on the SDSS
//! and ROSAT images at 40 dB, where SPERR stores 10 000–25 000×.

use crate::features::Extent;
use crate::samples::{Element, Samples};

/// Values the screen samples ([`mean_psnr`]).
const SAMPLE: usize = 4096;

/// How far below the target a sampled estimate may fall and still be checked exactly.
/// A sample misses or catches the few bright values that set a sparse chunk's variance:
/// one value at the range in 4096 samples caps the estimate at 36 dB.
const SCREEN_SLACK_DB: f64 = 10.0;

/// SPERR's bound for a chunk its mean serves, relative to the range: loose enough that
/// it codes next to nothing (at 1× the range SPERR still coded a few coefficients of
/// some sky images, 43–103 bytes; at 3× 36–44 bytes).
pub const LOOSE_BOUND_OVER_RANGE: f64 = 4.0;

/// The PSNR of storing the mean of `data` everywhere, when it is at least `target_db`:
/// none otherwise, for opaque or constant data, or when a strided sample already puts it
/// more than 10 dB below the target (so most chunks pay for a sample, not a pass). A
/// sample that caught one value at the range in 4096 is capped at 36 dB, so at targets of
/// 46 dB and more such a chunk's luck decides whether the exact pass runs. A constant
/// sample (a zero background that missed the few sources) says nothing: the exact pass
/// decides. `extent` is `data`'s ([`Extent::of`]); the data are expected finite.
pub fn mean_psnr(data: Samples<'_>, extent: Extent, target_db: f64) -> Option<f64> {
    let range = extent.range();
    if !(range > 0.0 && range.is_finite()) {
        return None;
    }
    let psnr = |variance: f64| -10.0 * variance.log10();
    let stride = crate::unfamiliar::coprime_stride(data.len(), SAMPLE);
    let sampled = relative_variance(data, stride, range);
    if sampled.is_some_and(|v| psnr(v) < target_db - SCREEN_SLACK_DB) {
        return None;
    }
    let exact = match stride {
        1 => sampled,
        _ => relative_variance(data, 1, range),
    };
    exact.map(psnr).filter(|&db| db >= target_db)
}

/// The variance of every `stride`-th value of `data` over `range`², taken on the values'
/// distances from the first one divided by `range`, so that neither tiny (1e-170) nor huge
/// magnitudes leave f64's range when squared; one pass in four lanes (the whole chunk's
/// pass costs about a tenth of what two iterator passes did). None for opaque or empty
/// data and for a variance of 0: a constant sample (a non-constant chunk's relative
/// variance is at least about 1/(4n), far above what rounding loses here).
fn relative_variance(data: Samples<'_>, stride: usize, range: f64) -> Option<f64> {
    match data {
        Samples::F32(v) => moments(v, stride, range),
        Samples::F64(v) => moments(v, stride, range),
        Samples::Opaque { .. } => None,
    }
}

fn moments<T: Element>(values: &[T], stride: usize, range: f64) -> Option<f64> {
    let shift = values.first()?.to_f64();
    let scale = 1.0 / range;
    let (mut sum, mut squares) = ([0.0f64; 4], [0.0f64; 4]);
    let mut add = |lane: usize, x: T| {
        let d = (x.to_f64() - shift) * scale;
        sum[lane] += d;
        squares[lane] += d * d;
    };
    let mut n = 0usize;
    if stride == 1 {
        let lanes = values.chunks_exact(4);
        let tail = lanes.remainder();
        for four in lanes {
            for (lane, &x) in four.iter().enumerate() {
                add(lane, x);
            }
        }
        tail.iter().for_each(|&x| add(0, x));
        n = values.len();
    } else {
        for &x in values.iter().step_by(stride) {
            add(n % 4, x);
            n += 1;
        }
    }
    let mean = sum.iter().sum::<f64>() / n as f64;
    let variance = squares.iter().sum::<f64>() / n as f64 - mean * mean;
    (variance > 0.0).then_some(variance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sky(n: usize, stars: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32 * 1e-3).collect();
        for k in 0..stars {
            v[(k * 104_729) % n] = 100.0;
        }
        v
    }

    #[test]
    fn the_sample_walks_every_axis() {
        // A 64³ chunk whose x = 0 plane alternates ±1 over a quiet interior: a stride of
        // 64 sampled that plane alone, 6 dB, and screened out a mean that keeps 24.
        let n = 64 * 64 * 64;
        let v: Vec<f32> = (0..n)
            .map(|i| match i % 64 {
                0 => [1.0, -1.0][(i / 64) % 2],
                _ => ((i * 7919) % 101) as f32 * 1e-5,
            })
            .collect();
        let data = Samples::F32(&v);
        let db = mean_psnr(data, Extent::of(data), 20.0);
        assert!(db.is_some_and(|db| (23.0..25.0).contains(&db)), "{db:?}");
    }

    #[test]
    fn the_mean_psnr_is_the_range_over_the_standard_deviation() {
        let v = sky(1 << 16, 3);
        let data = Samples::F32(&v);
        let extent = Extent::of(data);
        let values: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / values.len() as f64;
        let expected = 20.0 * extent.range().log10() - 10.0 * var.log10();
        assert!(expected > 40.0 && expected < 50.0, "{expected}");
        let got = mean_psnr(data, extent, 40.0).unwrap();
        assert!((got - expected).abs() < 1e-6, "{got} {expected}");
        assert_eq!(mean_psnr(data, extent, expected + 0.01), None);
        // The same at magnitudes whose squares leave f64's range.
        for scale in [1e-170, 1e170] {
            let scaled: Vec<f64> = values.iter().map(|x| x * scale).collect();
            let data = Samples::F64(&scaled);
            let got = mean_psnr(data, Extent::of(data), 40.0).unwrap();
            assert!((got - expected).abs() < 1e-6, "{scale}: {got} {expected}");
        }
    }

    #[test]
    fn the_exact_variance_decides_not_the_sample() {
        // 200 stars, none where the 4096-value sample of 2^20 values looks (every 256th):
        // the sample puts the mean far above 40 dB, the whole chunk at 37 dB.
        let mut v = sky(1 << 20, 0);
        for k in 0..200 {
            v[(k * 104_729 + 7) % (1 << 20)] = 100.0;
        }
        let data = Samples::F32(&v);
        let extent = Extent::of(data);
        let sampled = relative_variance(data, 256, extent.range()).unwrap();
        assert!(-10.0 * sampled.log10() > 50.0, "{sampled}");
        assert_eq!(mean_psnr(data, extent, 40.0), None);
        let exact = mean_psnr(data, extent, 30.0).unwrap();
        assert!((36.0..38.0).contains(&exact), "{exact}");
    }

    #[test]
    fn a_constant_sample_of_a_sparse_chunk_leaves_the_decision_to_the_exact_pass() {
        // A 2×2 source of 1 on 256² exact zeros, off every 16th value the sample takes:
        // the sample is constant, the mean is 42 dB from the whole chunk.
        let mut v = vec![0.0f32; 1 << 16];
        for i in [5, 6, 256 + 5, 256 + 6].map(|i| 100 * 256 + i) {
            v[i] = 1.0;
        }
        let data = Samples::F32(&v);
        let extent = Extent::of(data);
        assert_eq!(relative_variance(data, 16, extent.range()), None);
        let db = mean_psnr(data, extent, 40.0).unwrap();
        assert!((42.0..42.2).contains(&db), "{db}");
    }

    #[test]
    fn constant_and_opaque_data_have_no_mean_psnr() {
        let flat = [2.0f64; 64];
        let data = Samples::F64(&flat);
        assert_eq!(mean_psnr(data, Extent::of(data), 10.0), None);
        let bytes = [1u8; 64];
        let opaque = Samples::Opaque {
            bytes: &bytes,
            elem_size: 1,
        };
        assert_eq!(mean_psnr(opaque, Extent::EMPTY, 10.0), None);
    }
}
