//! Stage 1 of the surrogate: a short, versioned, scale-free description of one chunk.
//!
//! The model sees chunks of every dtype, rank and magnitude, so each feature is built to be
//! independent of those: statistics are normalised by the chunk's value range `R`
//! (`max − min` of the finite values, the same `R` the PSNR convention uses), sizes enter
//! as logarithms, and the shape is first folded to at most three dims as SPERR folds it
//! ([`crate::samples::fit_rank`]; SZ3 and ZFP keep four, so a 4-D chunk's features see its
//! two slowest axes merged where those codecs do not).
//!
//! **Cost.** The exact range (which the filter needs anyway to turn a relative bound into
//! an absolute one) and the non-finite count take one pass over the whole chunk. Everything
//! else is computed on a sample of at most [`SAMPLE_BLOCKS`] strided blocks (8³ in 3-D,
//! 24² in 2-D, 512 in 1-D), so the cost stays flat however big the chunk is. `deepcq
//! features-bench` measures it against one SZ3 compression.
//!
//! **Non-finite values** (NaN, ±Inf) are left out of every statistic; their fraction is a
//! feature. **Constant chunks** (`R = 0`, or no finite value) get a fixed vector: every
//! normalised statistic 0, every log-scale residual at its floor, every entropy 0.
//!
//! Bump [`FEATURE_SCHEMA_VERSION`] whenever a definition changes: a model trained on one
//! schema must refuse features of another ([`crate::surrogate`] checks it on load).

use crate::samples::{fit_rank, Element, Samples};

/// Version of the feature definitions below. Stored in every exported model.
pub const FEATURE_SCHEMA_VERSION: u32 = 2;

/// Names of the features, in the order of [`Features::values`].
pub const FEATURE_NAMES: &[&str] = &[
    "log10_count",
    "rank",
    "log2_min_dim",
    "nonfinite_frac",
    "log10_absmax_over_range",
    "mean_norm",
    "std_norm",
    "var_norm",
    "skewness",
    "kurtosis",
    "zero_frac",
    "repeat_frac",
    "extreme_frac",
    "log10_lorenzo_mae",
    "log10_lorenzo_rms",
    "log10_lorenzo_over_std",
    "log10_interp_mae",
    "log10_diff1_mae",
    "smoothness_exponent",
    "entropy_1e-2",
    "entropy_1e-3",
    "entropy_1e-4",
    "entropy_1e-5",
    "entropy_1e-6",
    "quant_gain_db_1e-0.5",
    "quant_gain_db_1e-1.0",
    "quant_gain_db_1e-1.5",
    "quant_gain_db_1e-2.0",
    "quant_gain_db_1e-2.5",
    "quant_gain_db_1e-3.0",
    "quant_gain_db_1e-3.5",
    "quant_gain_db_1e-4.0",
    "quant_gain_db_1e-4.5",
    "quant_gain_db_1e-5.0",
    "quant_gain_db_1e-5.5",
    "quant_gain_db_1e-6.0",
    "quant_gain_db_1e-6.5",
    "quant_gain_db_1e-7.0",
];

/// Relative bounds (× `R`) at which the entropy features quantise Lorenzo residuals.
pub const ENTROPY_BOUNDS: [f64; 5] = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];

/// Relative bounds (× `R`) at which the quantisation-gain features estimate how far a
/// prediction-based quantiser's PSNR lies above the point-wise-bound line: 10^-0.5 … 10^-7
/// in half decades. [`quant_gain_at`] interpolates between them.
pub const GAIN_BOUNDS_LOG10: [f64; 14] = [
    -0.5, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0, -4.5, -5.0, -5.5, -6.0, -6.5, -7.0,
];

/// Range of the quantisation-gain features in dB. A gain of g dB means about 10^(−g/10) of
/// the residuals exceed the bound; the sample holds a few thousand residuals, so beyond
/// 30 dB it cannot tell gains apart, and the model extrapolated wildly from larger values.
const GAIN_CLAMP_DB: (f64, f64) = (-5.0, 30.0);

/// Quarter-octave bins of |Lorenzo residual| / R from 2^-48 up (smaller values share bin 0).
const RESIDUAL_BINS: usize = 4 * 52;

/// Most blocks sampled per chunk (each 8³, 24² or 512 values: at most 9216 values).
pub const SAMPLE_BLOCKS: usize = 16;

/// Floor of every log10 feature, so constant chunks and exact predictions stay finite.
const LOG_FLOOR: f64 = -12.0;

/// Quantisation codes kept in the entropy histogram; larger ones count as escapes.
const HIST_HALF: i64 = 512;

/// The features of one chunk plus what the filter needs beside them.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Feature values in [`FEATURE_NAMES`] order.
    pub values: Vec<f32>,
    /// `max − min` of the finite values (0 when constant or all non-finite).
    pub value_range: f64,
    /// Smallest finite value (0 when there is none).
    pub min: f64,
    /// Largest finite value (0 when there is none).
    pub max: f64,
    /// Element size in bytes (4 or 8); CR predictions are scaled by it, since the model
    /// predicts bits per value, which do not depend on the dtype.
    pub elem_size: usize,
}

impl Features {
    /// The value of the named feature, if the schema has it.
    pub fn get(&self, name: &str) -> Option<f32> {
        FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }
}

/// Computes the features of `data` laid out in C-order `shape`.
///
/// A shape that does not hold `data.len()` values is treated as 1-D, and opaque data as
/// an empty chunk: this function never fails, because the filter must be able to describe
/// any buffer HDF5 hands it.
pub fn extract(data: Samples<'_>, shape: &[usize]) -> Features {
    extract_with(data, shape, Extent::of(data))
}

/// [`extract`] for a caller that already has the chunk's [`Extent`] (the filter takes it
/// before choosing), so the chunk is not scanned twice.
pub fn extract_with(data: Samples<'_>, shape: &[usize], extent: Extent) -> Features {
    match data {
        Samples::F32(v) => extract_typed(v, shape, 4, extent),
        Samples::F64(v) => match power_of_two_scale(extent) {
            Some((a, b)) => {
                let scaled: Vec<f64> = v.iter().map(|x| x * a * b).collect();
                // Scaling by a power of two keeps the order: the extent scales with it.
                let scaled_extent = Extent {
                    min: extent.min * a * b,
                    max: extent.max * a * b,
                    ..extent
                };
                Features {
                    value_range: extent.range(),
                    min: extent.min,
                    max: extent.max,
                    ..extract_typed(&scaled, shape, 8, scaled_extent)
                }
            }
            None => extract_typed(v, shape, 8, extent),
        },
        Samples::Opaque { .. } => extract_typed::<f64>(&[], shape, data.elem_size(), Extent::EMPTY),
    }
}

/// For f64 values at either end of the exponent range (a range under 1e-290, magnitudes
/// over 1e290), two powers of two whose product brings the largest magnitude near 1.
/// There the normalisation by the range overflows (1 / 1e-309 is infinite: NaN moments)
/// and so do the predictors' sums (seven values near 1e308: every residual skipped, as if
/// the chunk were perfectly predictable); every feature is scale-free, and scaling by a
/// power of two is exact wherever the result is a normal number.
fn power_of_two_scale(extent: Extent) -> Option<(f64, f64)> {
    let range = extent.range();
    let magnitude = extent.min.abs().max(extent.max.abs());
    let extreme = range > 0.0 && range.is_finite() && (range < 1e-290 || magnitude > 1e290);
    extreme.then(|| {
        let k = -(magnitude.log2().floor() as i32);
        (2f64.powi(k / 2), 2f64.powi(k - k / 2))
    })
}

fn extract_typed<T: Element>(
    data: &[T],
    shape: &[usize],
    elem_size: usize,
    extent: Extent,
) -> Features {
    let n = data.len();
    let dims = match crate::samples::element_count(shape) {
        Some(count) if count == n && n > 0 => fit_rank(shape, 3),
        _ => vec![n.max(1)],
    };
    let mut f = vec![0.0f64; FEATURE_NAMES.len()];
    f[0] = (n.max(1) as f64).log10();
    f[1] = dims.len() as f64;
    f[2] = (*dims.iter().min().unwrap_or(&1) as f64).log2();

    // The full pass (exact range and non-finite count) is the caller's.
    let Extent {
        min: lo,
        max: hi,
        finite,
    } = extent;
    f[3] = if n == 0 {
        0.0
    } else {
        (n - finite) as f64 / n as f64
    };
    let range = hi - lo;
    let features = |values: Vec<f64>| Features {
        values: values.into_iter().map(|v| v as f32).collect(),
        value_range: range,
        min: lo,
        max: hi,
        elem_size,
    };
    if !(range > 0.0 && range.is_finite()) {
        f[13..=17].fill(LOG_FLOOR);
        f[11] = 1.0;
        f[12] = 1.0;
        f[10] = if finite > 0 && lo == 0.0 { 1.0 } else { 0.0 };
        return features(f);
    }
    f[4] = clamp_log10(lo.abs().max(hi.abs()) / range);

    let sample = Sample::gather(data, &dims);
    let inv_r = 1.0 / range;

    // Moments of the normalised sample values (two passes over the small sample, so a
    // tiny variance around a large mean does not cancel).
    let (mut cnt, mut sum, mut zeros, mut extremes) = (0usize, 0.0f64, 0usize, 0usize);
    for &v in &sample.values {
        if v.is_finite() {
            cnt += 1;
            sum += (v - lo) * inv_r;
            zeros += usize::from(v == 0.0);
            extremes += usize::from(v == lo || v == hi);
        }
    }
    if cnt > 0 {
        let n = cnt as f64;
        let mean = sum / n;
        let (mut m2, mut m3, mut m4) = (0.0f64, 0.0f64, 0.0f64);
        for &v in &sample.values {
            if v.is_finite() {
                let d = (v - lo) * inv_r - mean;
                let d2 = d * d;
                m2 += d2;
                m3 += d2 * d;
                m4 += d2 * d2;
            }
        }
        let var = m2 / n;
        f[5] = mean;
        f[6] = var.sqrt();
        f[7] = var;
        if var > 1e-24 {
            f[8] = squash((m3 / n) / var.powf(1.5));
            f[9] = squash((m4 / n) / (var * var) - 3.0);
        }
        f[10] = zeros as f64 / n;
        f[12] = extremes as f64 / n;
    }

    // Residuals and differences inside each sampled block.
    let res = sample.residuals(inv_r);
    f[11] = res.repeat_frac;
    f[13] = clamp_log10(res.lorenzo_abs_sum / res.lorenzo_n.max(1) as f64);
    f[14] = clamp_log10((res.lorenzo_sq_sum / res.lorenzo_n.max(1) as f64).sqrt());
    f[15] = clamp_log10(
        (res.lorenzo_abs_sum / res.lorenzo_n.max(1) as f64) / f[6].max(10f64.powf(LOG_FLOOR)),
    );
    f[16] = clamp_log10(res.interp_abs_sum / res.interp_n.max(1) as f64);
    let d1 = res.diff_abs_sum[0] / res.diff_n[0].max(1) as f64;
    let d4 = res.diff_abs_sum[1] / res.diff_n[1].max(1) as f64;
    f[17] = clamp_log10(d1);
    // Increments of a field with Hurst exponent H grow as lag^H: 0 for noise, 1 for a
    // smooth (differentiable) field. A spectral-slope proxy that costs two sums.
    f[18] = if d1 > 0.0 && d4 > 0.0 {
        ((d4 / d1).log2() / 2.0).clamp(-1.0, 2.0)
    } else {
        0.0
    };
    for (i, e) in res.entropy_bits.iter().enumerate() {
        f[19 + i] = *e;
    }
    for (i, t) in GAIN_BOUNDS_LOG10.iter().enumerate() {
        f[GAIN_START + i] = res.quant_gain_db(10f64.powf(*t));
    }
    features(f)
}

/// Index of the first quantisation-gain feature in [`FEATURE_NAMES`].
const GAIN_START: usize = 24;

/// How many features (the first ones) enter the model as inputs. The quantisation-gain
/// features after them enter only through [`quant_gain_at`], one value per candidate:
/// fourteen raw curve points gave the model more room to overfit than to learn.
pub const MODEL_FEATURES: usize = GAIN_START;

/// The quantisation gain at `rel_bound`, interpolated (linearly in log10 of the bound,
/// clamped to the ends) from the `quant_gain_db_*` features of one chunk: how many dB a
/// quantiser with this bound is expected to land above the point-wise-bound line. The
/// model gets it as a per-candidate input, so it learns corrections to an estimate
/// rather than the whole curve.
pub fn quant_gain_at(features: &[f32], rel_bound: f64) -> f64 {
    let Some(gains) = features.get(GAIN_START..GAIN_START + GAIN_BOUNDS_LOG10.len()) else {
        return 0.0;
    };
    let x = rel_bound.log10();
    let (first, last) = (
        GAIN_BOUNDS_LOG10[0],
        GAIN_BOUNDS_LOG10[GAIN_BOUNDS_LOG10.len() - 1],
    );
    if x.is_nan() || x >= first {
        return gains[0] as f64;
    }
    if x <= last {
        return gains[gains.len() - 1] as f64;
    }
    // The bounds descend in equal steps.
    let step = GAIN_BOUNDS_LOG10[0] - GAIN_BOUNDS_LOG10[1];
    let pos = (first - x) / step;
    let i = (pos as usize).min(gains.len() - 2);
    let w = pos - i as f64;
    gains[i] as f64 * (1.0 - w) + gains[i + 1] as f64 * w
}

/// The extent of a chunk's finite values, from one vectorised pass: what the filter needs
/// before choosing, and what the features are normalised by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Extent {
    /// Smallest finite value (0 when there is none).
    pub min: f64,
    /// Largest finite value (0 when there is none).
    pub max: f64,
    /// How many values are finite (opaque data counts as all finite).
    pub finite: usize,
}

impl Extent {
    /// The extent of no values at all.
    pub const EMPTY: Extent = Extent {
        min: 0.0,
        max: 0.0,
        finite: 0,
    };

    /// Takes the extent of `data` in one pass.
    pub fn of(data: Samples<'_>) -> Extent {
        let (min, max, finite) = match data {
            Samples::F32(v) => finite_range(v),
            Samples::F64(v) => finite_range(v),
            Samples::Opaque { .. } => (0.0, 0.0, data.len()),
        };
        match finite {
            0 => Extent::EMPTY,
            _ => Extent { min, max, finite },
        }
    }

    /// `max − min` (0 for constant, empty or all-non-finite data, and for opaque data).
    pub fn range(&self) -> f64 {
        self.max - self.min
    }
}

/// Min, max and count of the finite values.
///
/// The common case, all values finite, takes one pass that vectorises: per-lane minima and
/// maxima in the element's own type (NaN fails every comparison, so it never becomes an
/// extreme) and a per-lane sum of `v − v`, which stays 0 for finite values and turns NaN
/// at the first NaN or ±Inf. Only a chunk that has such values pays a second, exact pass.
fn finite_range<T: Element>(data: &[T]) -> (f64, f64, usize) {
    const LANES: usize = 16;
    let zero = T::from_f64(0.0);
    let mut lo = [T::from_f64(f64::INFINITY); LANES];
    let mut hi = [T::from_f64(f64::NEG_INFINITY); LANES];
    let mut poison = [zero; LANES];
    let chunks = data.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            let v = c[k];
            lo[k] = if v < lo[k] { v } else { lo[k] };
            hi[k] = if v > hi[k] { v } else { hi[k] };
            // Deliberately v − v: 0 for finite v, NaN for NaN and ±Inf.
            #[allow(clippy::eq_op)]
            let p = v - v;
            poison[k] = poison[k] + p;
        }
    }
    let tail_ok = tail.iter().all(|v| v.to_f64().is_finite());
    if !tail_ok || poison.iter().any(|&p| p != zero) {
        return finite_range_exact(data);
    }
    let (mut l, mut h) = (f64::INFINITY, f64::NEG_INFINITY);
    for k in 0..LANES {
        l = l.min(lo[k].to_f64());
        h = h.max(hi[k].to_f64());
    }
    for v in tail {
        l = l.min(v.to_f64());
        h = h.max(v.to_f64());
    }
    (l, h, data.len())
}

/// The scalar pass [`finite_range`] falls back to when some value is NaN or ±Inf.
fn finite_range_exact<T: Element>(data: &[T]) -> (f64, f64, usize) {
    let (mut l, mut h, mut finite) = (f64::INFINITY, f64::NEG_INFINITY, 0usize);
    for v in data {
        let v = v.to_f64();
        if v.is_finite() {
            l = l.min(v);
            h = h.max(v);
            finite += 1;
        }
    }
    (l, h, finite)
}

/// Clamped log10 so that zeros and tiny values stay finite.
fn clamp_log10(v: f64) -> f64 {
    if v > 0.0 && v.is_finite() {
        v.log10().max(LOG_FLOOR)
    } else {
        LOG_FLOOR
    }
}

/// Signed log compression of heavy-tailed moments (skewness, kurtosis of fill-value
/// chunks reach 10⁴), so they neither dominate standardisation nor lose their sign.
fn squash(v: f64) -> f64 {
    if v.is_finite() {
        v.asinh()
    } else {
        0.0
    }
}

/// Values of up to [`SAMPLE_BLOCKS`] blocks, each stored contiguously in C order.
struct Sample {
    values: Vec<f64>,
    /// Dims of each block (all blocks have the same dims).
    block: Vec<usize>,
}

impl Sample {
    /// Picks blocks on an even grid across the chunk.
    fn gather<T: Element>(data: &[T], dims: &[usize]) -> Sample {
        let side = match dims.len() {
            1 => 512,
            2 => 24,
            _ => 8,
        };
        let block: Vec<usize> = dims.iter().map(|&d| d.min(side)).collect();
        // Blocks per axis: enough that their product reaches SAMPLE_BLOCKS where the chunk
        // has room, spread so the grid covers the whole chunk.
        let mut per_axis: Vec<usize> = vec![1; dims.len()];
        loop {
            let total: usize = per_axis.iter().product();
            let grow = (0..dims.len())
                .filter(|&a| (per_axis[a] + 1) * block[a] <= dims[a])
                .max_by_key(|&a| (dims[a] / block[a]) / per_axis[a]);
            match grow {
                Some(a) if total / per_axis[a] * (per_axis[a] + 1) <= SAMPLE_BLOCKS => {
                    per_axis[a] += 1
                }
                _ => break,
            }
        }
        let starts: Vec<Vec<usize>> = (0..dims.len())
            .map(|a| {
                let k = per_axis[a];
                let free = dims[a] - block[a];
                (0..k)
                    .map(|i| if k == 1 { free / 2 } else { i * free / (k - 1) })
                    .collect()
            })
            .collect();
        let strides: Vec<usize> = (0..dims.len())
            .map(|a| dims[a + 1..].iter().product())
            .collect();
        let block_len: usize = block.iter().product();
        let total: usize = per_axis.iter().product();
        let mut values = Vec::with_capacity(block_len * total);
        let mut which = vec![0usize; dims.len()];
        for _ in 0..total {
            let origin: Vec<usize> = (0..dims.len()).map(|a| starts[a][which[a]]).collect();
            copy_block(data, &strides, &origin, &block, &mut values);
            for a in (0..dims.len()).rev() {
                which[a] += 1;
                if which[a] < per_axis[a] {
                    break;
                }
                which[a] = 0;
            }
        }
        Sample { values, block }
    }

    /// Lorenzo and interpolation residuals, lagged differences and quantised entropies,
    /// all in units of the value range.
    fn residuals(&self, inv_r: f64) -> Residuals {
        let mut r = Residuals {
            bin_count: vec![0; RESIDUAL_BINS],
            bin_sq_sum: vec![0.0; RESIDUAL_BINS],
            ..Residuals::default()
        };
        let b = &self.block;
        let block_len: usize = b.iter().product();
        let fast = *b.last().unwrap_or(&1);
        let (s1, s0) = match b.len() {
            3 => (b[2], b[1] * b[2]),
            2 => (b[1], 0),
            _ => (0, 0),
        };
        let mut hist = vec![[0u32; (2 * HIST_HALF + 1) as usize]; ENTROPY_BOUNDS.len()];
        let mut escapes = vec![(0usize, 0.0f64); ENTROPY_BOUNDS.len()];
        let inv_q: Vec<f64> = ENTROPY_BOUNDS.iter().map(|e| inv_r / (2.0 * e)).collect();
        let (mut repeats, mut pairs) = (0usize, 0usize);
        let (nz, ny) = match b.len() {
            3 => (b[0], b[1]),
            2 => (1, b[0]),
            _ => (1, 1),
        };
        for blk in self.values.chunks_exact(block_len) {
            for z in 0..nz {
                for y in 0..ny {
                    let base = z * s0 + y * s1;
                    let line = &blk[base..base + fast];
                    for x in 1..fast {
                        let (v, prev) = (line[x], line[x - 1]);
                        pairs += 1;
                        repeats += usize::from(v == prev);
                        push_diff(&mut r, 0, v, prev, inv_r);
                        if x >= 4 {
                            push_diff(&mut r, 1, v, line[x - 4], inv_r);
                        }
                        if x + 1 < fast {
                            let d = (v - 0.5 * (prev + line[x + 1])) * inv_r;
                            if d.is_finite() {
                                r.interp_abs_sum += d.abs();
                                r.interp_n += 1;
                            }
                        }
                        // Lorenzo predictor of the block's rank, interior points only.
                        let i = base + x;
                        let pred = match b.len() {
                            1 => prev,
                            2 if y >= 1 => prev + blk[i - s1] - blk[i - s1 - 1],
                            3 if y >= 1 && z >= 1 => {
                                prev + blk[i - s1] + blk[i - s0]
                                    - blk[i - s1 - 1]
                                    - blk[i - s0 - 1]
                                    - blk[i - s0 - s1]
                                    + blk[i - s0 - s1 - 1]
                            }
                            _ => continue,
                        };
                        let d = v - pred;
                        if !d.is_finite() {
                            continue;
                        }
                        let dn = d * inv_r;
                        r.bin(dn);
                        r.lorenzo_abs_sum += dn.abs();
                        r.lorenzo_sq_sum += dn * dn;
                        r.lorenzo_n += 1;
                        let da = d.abs();
                        for (k, q) in inv_q.iter().enumerate() {
                            // Round half away from zero with a saturating cast: libm's
                            // round() is a call on baseline x86-64 and dominated the cost.
                            let m = (da * q + 0.5) as i64;
                            if m <= HIST_HALF {
                                let code = if d < 0.0 { -m } else { m };
                                hist[k][(code + HIST_HALF) as usize] += 1;
                            } else {
                                escapes[k].0 += 1;
                                escapes[k].1 += (65 - m.leading_zeros()) as f64;
                            }
                        }
                    }
                }
            }
        }
        r.repeat_frac = if pairs == 0 {
            0.0
        } else {
            repeats as f64 / pairs as f64
        };
        let total = r.lorenzo_n as f64;
        r.entropy_bits = hist
            .iter()
            .zip(&escapes)
            .map(|(h, &(esc, esc_bits))| {
                if total == 0.0 {
                    return 0.0;
                }
                // Escapes count as one more symbol plus the bits of their magnitude.
                let mut bits = 0.0;
                for &c in h.iter().chain(std::iter::once(&(esc as u32))) {
                    if c > 0 {
                        let p = c as f64 / total;
                        bits -= p * p.log2();
                    }
                }
                bits + esc_bits / total
            })
            .collect();
        r
    }
}

fn push_diff(r: &mut Residuals, lag: usize, a: f64, b: f64, inv_r: f64) {
    let d = (a - b) * inv_r;
    if d.is_finite() {
        r.diff_abs_sum[lag] += d.abs();
        r.diff_n[lag] += 1;
    }
}

/// Copies one block starting at `origin` into `out`, widening to f64.
fn copy_block<T: Element>(
    data: &[T],
    strides: &[usize],
    origin: &[usize],
    block: &[usize],
    out: &mut Vec<f64>,
) {
    let rank = block.len();
    let fast = block[rank - 1];
    let rows: usize = block[..rank - 1].iter().product();
    let mut idx = vec![0usize; rank - 1];
    for _ in 0..rows {
        let start: usize = (0..rank - 1)
            .map(|a| (origin[a] + idx[a]) * strides[a])
            .sum::<usize>()
            + origin[rank - 1];
        out.extend(data[start..start + fast].iter().map(|v| v.to_f64()));
        for a in (0..rank - 1).rev() {
            idx[a] += 1;
            if idx[a] < block[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// The quarter-octave bin of |x|: the f64 exponent and the top two mantissa bits, from
/// 2^-48 up (bin 0 also takes anything smaller, the last bin anything larger).
#[inline]
fn bin_of(x: f64) -> usize {
    const FIRST: u64 = (1023 - 48) << 2;
    ((x.abs().to_bits() >> 50).saturating_sub(FIRST) as usize).min(RESIDUAL_BINS - 1)
}

#[derive(Default)]
struct Residuals {
    lorenzo_abs_sum: f64,
    lorenzo_sq_sum: f64,
    lorenzo_n: usize,
    interp_abs_sum: f64,
    interp_n: usize,
    diff_abs_sum: [f64; 2],
    diff_n: [usize; 2],
    repeat_frac: f64,
    entropy_bits: Vec<f64>,
    /// Per quarter-octave bin of |Lorenzo residual| / R: count and sum of squares.
    bin_count: Vec<u32>,
    bin_sq_sum: Vec<f64>,
}

impl Residuals {
    /// Files one normalised Lorenzo residual into its quarter-octave bin ([`bin_of`]), so
    /// a gain at any bound costs one pass over the bins.
    #[inline]
    fn bin(&mut self, dn: f64) {
        let k = bin_of(dn);
        self.bin_count[k] += 1;
        self.bin_sq_sum[k] += dn * dn;
    }

    /// 10·log10((t²/3) / MSE) for a quantiser with relative bound `t` fed these residuals:
    /// a residual below `t` is reconstructed as the prediction (its error is itself), any
    /// larger one gets an error uniform in ±t. The bin holding `t` counts as larger.
    fn quant_gain_db(&self, t: f64) -> f64 {
        // Every residual counted in lorenzo_n was binned.
        let n = self.lorenzo_n;
        if n == 0 {
            return 0.0;
        }
        // The bins below t's own bin hold only residuals smaller than t.
        let below = ..bin_of(t);
        let below_n: usize = self.bin_count[below].iter().map(|&c| c as usize).sum();
        let below_sq: f64 = self.bin_sq_sum[below].iter().sum();
        let uniform = t * t / 3.0;
        let mse = (below_sq + (n - below_n) as f64 * uniform) / n as f64;
        let gain = if mse > 0.0 {
            10.0 * (uniform / mse).log10()
        } else {
            GAIN_CLAMP_DB.1
        };
        gain.clamp(GAIN_CLAMP_DB.0, GAIN_CLAMP_DB.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, Kind};

    fn feats(v: &[f64], shape: &[usize]) -> Features {
        extract(Samples::F64(v), shape)
    }

    #[test]
    fn names_match_values_and_entropy_bounds() {
        let v = generate(Kind::Spectral { slope: 3.0 }, &[20, 20, 20], 1);
        let f = feats(&v, &[20, 20, 20]);
        assert_eq!(f.values.len(), FEATURE_NAMES.len());
        assert_eq!(
            FEATURE_NAMES
                .iter()
                .filter(|n| n.starts_with("entropy"))
                .count(),
            ENTROPY_BOUNDS.len()
        );
        assert!(f.values.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn gain_features_follow_their_bounds() {
        assert_eq!(FEATURE_NAMES[GAIN_START], "quant_gain_db_1e-0.5");
        assert_eq!(
            FEATURE_NAMES[GAIN_START..]
                .iter()
                .filter(|n| n.starts_with("quant_gain_db_"))
                .count(),
            GAIN_BOUNDS_LOG10.len()
        );
    }

    #[test]
    fn quant_gain_separates_sparse_from_noisy_chunks() {
        let shape = [32, 32, 32];
        // White noise: every residual is far above a tight bound (uniform error, gain ~0)
        // and comparable to a loose one.
        let noise = generate(Kind::Noise, &shape, 3);
        let f = feats(&noise, &shape);
        let tight = quant_gain_at(&f.values, 1e-5);
        assert!(tight.abs() < 0.5, "noise at 1e-5: {tight} dB");
        // Mostly exact zeros with a few spikes: at a loose bound nearly every residual is
        // reconstructed exactly, far above the line (each spike spoils up to 8 residuals).
        let mut sparse = vec![0.0f64; 32 * 32 * 32];
        for i in (0..sparse.len()).step_by(997) {
            sparse[i] = 1.0 + (i % 7) as f64;
        }
        let g = feats(&sparse, &shape);
        let loose = quant_gain_at(&g.values, 1e-2);
        assert!(loose > 15.0, "sparse at 1e-2: {loose} dB");
        // Interpolation hits the stored points and clamps beyond the ends.
        let at = |k: usize| g.values[GAIN_START + k] as f64;
        assert!((quant_gain_at(&g.values, 10f64.powf(-2.0)) - at(3)).abs() < 1e-4);
        let mid = quant_gain_at(&g.values, 10f64.powf(-2.25));
        assert!((mid - 0.5 * (at(3) + at(4))).abs() < 1e-3);
        assert_eq!(quant_gain_at(&g.values, 1e-9), at(13));
        assert_eq!(quant_gain_at(&g.values, 0.9), at(0));
    }

    #[test]
    fn deterministic_and_independent_of_scale_offset_and_dtype() {
        let v = generate(Kind::Spectral { slope: 3.0 }, &[16, 64], 4);
        let a = feats(&v, &[16, 64]);
        assert_eq!(a, feats(&v, &[16, 64]));
        // Scaling by a power of two and shifting keeps the normalised features.
        let w: Vec<f64> = v.iter().map(|x| x * 8.0).collect();
        let b = feats(&w, &[16, 64]);
        for (name, (x, y)) in FEATURE_NAMES.iter().zip(a.values.iter().zip(&b.values)) {
            if *name != "log10_absmax_over_range" {
                assert!((x - y).abs() < 1e-4, "{name}: {x} vs {y}");
            }
        }
        let f32s: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let c = extract(Samples::F32(&f32s), &[16, 64]);
        for (name, (x, y)) in FEATURE_NAMES.iter().zip(a.values.iter().zip(&c.values)) {
            assert!((x - y).abs() < 2e-2, "{name}: {x} vs {y}");
        }
        assert_eq!(c.elem_size, 4);
    }

    #[test]
    fn rank_is_folded_like_the_codecs() {
        let v = generate(Kind::Noise, &[2, 3, 4, 50], 1);
        let f = feats(&v, &[2, 3, 4, 50]);
        assert_eq!(f.get("rank"), Some(3.0));
        let g = feats(&v, &[1, 1200]);
        assert_eq!(g.get("rank"), Some(1.0));
        // A shape that does not match the length falls back to 1-D rather than failing.
        assert_eq!(feats(&v, &[7, 7]).get("rank"), Some(1.0));
    }

    #[test]
    fn smooth_fields_score_smoother_than_noise() {
        let shape = [32, 32, 32];
        let smooth = feats(&generate(Kind::Spectral { slope: 4.0 }, &shape, 2), &shape);
        let noise = feats(&generate(Kind::Noise, &shape, 2), &shape);
        let get = |f: &Features, n| f.get(n).unwrap();
        assert!(get(&smooth, "log10_lorenzo_mae") < get(&noise, "log10_lorenzo_mae") - 1.0);
        assert!(get(&smooth, "smoothness_exponent") > 0.7);
        assert!(get(&noise, "smoothness_exponent").abs() < 0.2);
        assert!(get(&smooth, "entropy_1e-3") < get(&noise, "entropy_1e-3"));
        // Entropy grows as the reference bound tightens.
        assert!(get(&noise, "entropy_1e-5") > get(&noise, "entropy_1e-2") + 5.0);
    }

    #[test]
    fn constant_and_all_nan_chunks_are_defined() {
        let c = feats(&[3.5; 1000], &[10, 100]);
        assert_eq!(c.value_range, 0.0);
        assert!(c.values.iter().all(|v| v.is_finite()));
        assert_eq!(c.get("log10_lorenzo_mae"), Some(LOG_FLOOR as f32));
        let nan = feats(&[f64::NAN; 64], &[64]);
        assert_eq!(nan.get("nonfinite_frac"), Some(1.0));
        assert!(nan.values.iter().all(|v| v.is_finite()));
        let empty = feats(&[], &[0]);
        assert!(empty.values.iter().all(|v| v.is_finite()));
        let opaque = extract(
            Samples::Opaque {
                bytes: &[1, 2, 3],
                elem_size: 1,
            },
            &[3],
        );
        assert_eq!(opaque.values.len(), FEATURE_NAMES.len());
    }

    #[test]
    fn extent_is_the_range_and_count_of_finite_values() {
        let extent = |d: Samples<'_>| {
            let e = Extent::of(d);
            (e.range(), e.finite)
        };
        let v = [2.0f32, f32::NAN, -1.0, 5.5, f32::INFINITY];
        assert_eq!(extent(Samples::F32(&v)), (6.5, 3));
        assert_eq!(extent(Samples::F64(&[3.0; 9])), (0.0, 9));
        assert_eq!(extent(Samples::F64(&[f64::NAN; 4])), (0.0, 0));
        assert_eq!(extent(Samples::F32(&[])), (0.0, 0));
        // Long enough for the vectorised pass: a NaN or Inf in its lanes or in the tail
        // sends it to the exact pass, and neither becomes an extreme.
        let mut long: Vec<f64> = (0..100).map(|i| i as f64).collect();
        assert_eq!(extent(Samples::F64(&long)), (99.0, 100));
        long[17] = f64::NEG_INFINITY;
        long[40] = f64::NAN;
        long[99] = f64::INFINITY;
        assert_eq!(extent(Samples::F64(&long)), (98.0, 97));
        let mut tail_nan: Vec<f32> = (0..35).map(|i| -(i as f32)).collect();
        tail_nan[34] = f32::NAN;
        assert_eq!(extent(Samples::F32(&tail_nan)), (33.0, 34));
    }

    #[test]
    fn non_finite_values_are_counted_and_ignored() {
        let mut v = generate(Kind::Spectral { slope: 3.0 }, &[4096], 3);
        let clean = feats(&v, &[4096]);
        for i in (0..4096).step_by(64) {
            v[i] = f64::NAN;
        }
        v[5] = f64::INFINITY;
        let dirty = feats(&v, &[4096]);
        let frac = dirty.get("nonfinite_frac").unwrap();
        assert!((frac - 65.0 / 4096.0).abs() < 1e-6, "{frac}");
        assert!(dirty.values.iter().all(|v| v.is_finite()));
        let (a, b) = (
            clean.get("log10_lorenzo_mae").unwrap(),
            dirty.get("log10_lorenzo_mae").unwrap(),
        );
        assert!((a - b).abs() < 0.1, "{a} vs {b}");
    }

    #[test]
    fn f64_chunks_at_either_end_of_the_exponent_range_describe_their_shape() {
        // A range of 1e-310 made the moments NaN (1 / range is infinite), and values near
        // 1e308 overflowed the Lorenzo sums (the chunk looked perfectly predictable).
        let shape = [16, 16, 16];
        let field = generate(Kind::Spectral { slope: 3.0 }, &shape, 5);
        let peak = field.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let unit: Vec<f64> = field.iter().map(|x| x / peak).collect();
        let base = feats(&unit, &shape);
        for scale in [1e-310, 1e-300, 1e300, 5e307] {
            let scaled: Vec<f64> = unit.iter().map(|x| x * scale).collect();
            let f = feats(&scaled, &shape);
            assert_eq!(f.value_range, Extent::of(Samples::F64(&scaled)).range());
            for (i, (a, b)) in base.values.iter().zip(&f.values).enumerate() {
                assert!((a - b).abs() < 0.02, "{scale:e}: feature {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn big_chunks_are_sampled_not_scanned() {
        let shape = [64, 64, 64];
        let v = generate(Kind::Noise, &shape, 5);
        let sample = Sample::gather(&v, &fit_rank(&shape, 3));
        assert!(sample.values.len() <= SAMPLE_BLOCKS * 512);
        assert!(sample.values.len() >= 8 * 512);
    }
}
