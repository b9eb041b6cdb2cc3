//! Quality metrics between an original chunk and its reconstruction.
//!
//! **PSNR convention.** `PSNR = 20·log10(R) − 10·log10(MSE)`, where `R = max − min` of the
//! *original* values. This is the SZ / SDRBench / Z-checker convention. zfp's tools report
//! a PSNR about 6 dB lower (they use `R/2` as the peak), so compare figures with care.
//! The filter sees one chunk at a time and uses the chunk's own range; since a chunk's
//! range never exceeds the dataset's, a target met by every chunk is met by the dataset.
//!
//! Values that are NaN or ±Inf in the original are left out of the range, the MSE and the
//! maximum error: the filter marks them as missing and restores them exactly
//! ([`crate::encode`]), so they never count as error.

use crate::samples::{fit_rank, Element, Samples};

/// Summary of how far a reconstruction is from its original.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorStats {
    /// Largest |x − x'| over finite originals.
    pub max_abs_error: f64,
    /// Mean squared error over finite originals.
    pub mse: f64,
    /// max − min of the finite original values.
    pub value_range: f64,
    /// PSNR in dB (value-range convention, see the module docs); +∞ when exact.
    pub psnr: f64,
}

/// Computes [`ErrorStats`]. Panics if the lengths differ (a programming error).
///
/// One pass in plain f64 serves largest errors between 1e−135 and 1e135. f64 data far
/// outside that (values near 1e−170 or 1e160) would square its errors into 0 or ∞, and a
/// PSNR of +∞ from errors that underflowed would pass any target: such data gets a second
/// pass with the errors scaled by a power of two (exact), and its PSNR from the scaled
/// sums. `mse` and `value_range` stay in the data's units, where they may round to 0 or ∞.
pub fn error_stats<T: Element>(original: &[T], reconstructed: &[T]) -> ErrorStats {
    assert_eq!(original.len(), reconstructed.len(), "length mismatch");
    let plain = ErrorSums::of(original, reconstructed, 1.0);
    let (lo, hi) = UNSCALED_ERRORS;
    let unscaled = (lo..=hi).contains(&plain.max_err) && (plain.hi - plain.lo).is_finite();
    let sums = if plain.max_err > 0.0 && plain.max_err.is_finite() && !unscaled {
        let exponent = (plain.max_err.log2().floor() as i32).clamp(-1000, 1000);
        ErrorSums::of(original, reconstructed, 2f64.powi(-exponent))
    } else {
        plain
    };
    sums.stats()
}

/// The largest absolute errors whose squares f64 sums without loss: squared, they lie well
/// inside f64's normal range, and so does their sum over up to 2^40 values (smaller errors,
/// squared, are too small to matter next to the largest).
const UNSCALED_ERRORS: (f64, f64) = (1e-135, 1e135);

/// Independent partial sums in [`ErrorSums::of`].
const LANES: usize = 16;

/// One pass of [`error_stats`], with the errors multiplied by `scale` (a power of two).
struct ErrorSums {
    lo: f64,
    hi: f64,
    /// Largest |x − x'| in the data's units.
    max_err: f64,
    /// Sum of (scale·|x − x'|)².
    sum_sq: f64,
    n: usize,
    scale: f64,
}

impl ErrorSums {
    fn of<T: Element>(original: &[T], reconstructed: &[T], scale: f64) -> ErrorSums {
        Self::of_finite(original, reconstructed, scale)
            .unwrap_or_else(|| Self::of_any(original, reconstructed, scale))
    }

    /// The sums where every original value is finite and no reconstructed one is NaN,
    /// else None. Running sums, minima and maxima chain every value to the one before;
    /// [`LANES`] independent ones, joined at the end, let the compiler vectorise the pass,
    /// which a guarantee-mode search makes on every attempt (a fifth of one compression's
    /// time before, on ../shared/data at 40 dB). Branch-free, so the exceptions are found
    /// afterwards: a non-finite original makes `a · 0` NaN, a NaN reconstruction the sum.
    fn of_finite<T: Element>(original: &[T], reconstructed: &[T], scale: f64) -> Option<ErrorSums> {
        let mut lo = [f64::INFINITY; LANES];
        let mut hi = [f64::NEG_INFINITY; LANES];
        let mut max_err = [0.0f64; LANES];
        let mut sum_sq = [0.0f64; LANES];
        let mut finite = [0.0f64; LANES];
        let whole = original.len() / LANES * LANES;
        for (a, b) in original[..whole]
            .chunks_exact(LANES)
            .zip(reconstructed[..whole].chunks_exact(LANES))
        {
            for l in 0..LANES {
                let (a, b) = (a[l].to_f64(), b[l].to_f64());
                let e = (a - b).abs();
                lo[l] = if a < lo[l] { a } else { lo[l] };
                hi[l] = if a > hi[l] { a } else { hi[l] };
                max_err[l] = if e > max_err[l] { e } else { max_err[l] };
                let scaled = e * scale;
                sum_sq[l] += scaled * scaled;
                finite[l] += a * 0.0;
            }
        }
        let mut s = ErrorSums {
            lo: lo.into_iter().fold(f64::INFINITY, f64::min),
            hi: hi.into_iter().fold(f64::NEG_INFINITY, f64::max),
            max_err: max_err.into_iter().fold(0.0, f64::max),
            sum_sq: sum_sq.into_iter().sum(),
            n: whole,
            scale,
        };
        let tail = Self::of_any(&original[whole..], &reconstructed[whole..], scale);
        let every_tail_value_finite = tail.n == original.len() - whole;
        s.lo = s.lo.min(tail.lo);
        s.hi = s.hi.max(tail.hi);
        s.max_err = s.max_err.max(tail.max_err);
        s.sum_sq += tail.sum_sq;
        s.n += tail.n;
        let all_finite = !finite.into_iter().sum::<f64>().is_nan() && every_tail_value_finite;
        (all_finite && !s.sum_sq.is_nan()).then_some(s)
    }

    /// The sums over the finite original values, whatever the data hold.
    fn of_any<T: Element>(original: &[T], reconstructed: &[T], scale: f64) -> ErrorSums {
        let mut s = ErrorSums {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            max_err: 0.0,
            sum_sq: 0.0,
            n: 0,
            scale,
        };
        for (&a, &b) in original.iter().zip(reconstructed) {
            let (a, b) = (a.to_f64(), b.to_f64());
            if !a.is_finite() {
                continue;
            }
            s.lo = s.lo.min(a);
            s.hi = s.hi.max(a);
            let e = (a - b).abs();
            s.max_err = s.max_err.max(if e.is_nan() { f64::INFINITY } else { e });
            let scaled = e * scale;
            s.sum_sq += scaled * scaled;
            s.n += 1;
        }
        s
    }

    fn stats(&self) -> ErrorStats {
        if self.n == 0 {
            return ErrorStats {
                max_abs_error: self.max_err,
                mse: 0.0,
                value_range: 0.0,
                psnr: psnr_from(0.0, 0.0),
            };
        }
        let scaled_mse = self.sum_sq / self.n as f64;
        // The range in the scaled units too (each end scaled first: hi − lo may overflow).
        let scaled_range = self.hi * self.scale - self.lo * self.scale;
        ErrorStats {
            max_abs_error: self.max_err,
            mse: scaled_mse / (self.scale * self.scale),
            value_range: self.hi - self.lo,
            psnr: psnr_from(scaled_range, scaled_mse),
        }
    }
}

/// [`error_stats`] for type-erased values; `None` when the types differ or are opaque.
pub fn error_stats_of(original: Samples<'_>, reconstructed: Samples<'_>) -> Option<ErrorStats> {
    match (original, reconstructed) {
        (Samples::F32(a), Samples::F32(b)) if a.len() == b.len() => Some(error_stats(a, b)),
        (Samples::F64(a), Samples::F64(b)) if a.len() == b.len() => Some(error_stats(a, b)),
        _ => None,
    }
}

/// [`ssim`] for type-erased values; `None` when the types differ or are opaque.
pub fn ssim_of(original: Samples<'_>, reconstructed: Samples<'_>, shape: &[usize]) -> Option<f64> {
    match (original, reconstructed) {
        (Samples::F32(a), Samples::F32(b)) if a.len() == b.len() => Some(ssim(a, b, shape)),
        (Samples::F64(a), Samples::F64(b)) if a.len() == b.len() => Some(ssim(a, b, shape)),
        _ => None,
    }
}

/// PSNR from a value range and an MSE: +∞ when the MSE is 0.
pub fn psnr_from(value_range: f64, mse: f64) -> f64 {
    if mse == 0.0 {
        f64::INFINITY
    } else {
        20.0 * value_range.log10() - 10.0 * mse.log10()
    }
}

/// PSNR of `reconstructed` against `original` (value-range convention).
pub fn psnr<T: Element>(original: &[T], reconstructed: &[T]) -> f64 {
    error_stats(original, reconstructed).psnr
}

/// Largest absolute difference.
pub fn max_abs_error<T: Element>(original: &[T], reconstructed: &[T]) -> f64 {
    error_stats(original, reconstructed).max_abs_error
}

/// Compression ratio: original bytes over stored bytes.
pub fn compression_ratio(original_bytes: usize, stored_bytes: usize) -> f64 {
    original_bytes as f64 / stored_bytes.max(1) as f64
}

/// Side of the SSIM window along each axis (capped by the axis length).
pub const SSIM_WINDOW: usize = 7;

/// Mean structural similarity over all windows.
///
/// Windowing: the shape is squeezed and folded to at most 3 dims (slowest axes merged).
/// Windows are boxes of [`SSIM_WINDOW`] samples per axis (the whole axis when shorter),
/// placed at every position where they fit (stride 1): a 7-sample segment in 1-D, a 7×7
/// square in 2-D, a 7×7×7 cube in 3-D. Each window uses uniform weights and population
/// (co)variances; `C1 = (0.01·R)²`, `C2 = (0.03·R)²` with `R` the original's value range.
/// The result is the mean over windows. A constant original gives 1 when the
/// reconstruction equals it and 0 otherwise. A reconstruction with a value over a
/// thousand ranges from the original's mean gives NaN, a miss ([`SsimReference::ssim`]).
/// Non-finite values are not supported here.
pub fn ssim<T: Element>(original: &[T], reconstructed: &[T], shape: &[usize]) -> f64 {
    SsimReference::of(original, shape).ssim(original, reconstructed)
}

/// The original's share of [`ssim`]: its range, its mean and its window means of x and
/// x², computed once per chunk, so that checking several reconstructions of one chunk
/// (guarantee mode's landing search) costs three window passes each instead of five.
pub struct SsimReference {
    /// The folded dims the windows run over.
    dims: Vec<usize>,
    /// The power of two every value is multiplied by first, so that `R` lies in [1, 2):
    /// SSIM does not change with the data's scale, but f64 data near 1e−170 or 1e160 would
    /// square into 0 or ∞ unscaled (and scaling by a power of two changes no other digit).
    scale: f64,
    /// The original's value range `R`, scaled (0 for a constant or empty original).
    range: f64,
    /// The original's mean, subtracted from every value: it keeps E\[x²\] − E\[x\]² from
    /// cancelling catastrophically (the luminance term adds it back).
    shift: f64,
    /// Window means of the shifted original and of its square.
    mean_x: Vec<f64>,
    mean_xx: Vec<f64>,
    /// The windows the mean runs over, where some are left out ([`SsimReference::clear_of`]:
    /// those holding a missing value); None for all.
    windows: Option<Vec<bool>>,
    /// Buffers reused by every check: a 64³ chunk's fields are 2 MB each, and fresh ones
    /// per check cost more in page faults than the sums themselves.
    scratch: std::sync::Mutex<Scratch>,
}

/// [`SsimReference`]'s working buffers: the field being summed, the other buffer of each
/// pass, and the reconstruction's window means of y, y² and xy.
#[derive(Default)]
struct Scratch {
    values: Vec<f64>,
    spare: Vec<f64>,
    means: [Vec<f64>; 3],
}

/// The largest share of missing values a window may hold and still count towards an SSIM
/// where too few windows are clear of them ([`SsimReference::clear_of`]).
pub const MOSTLY_CLEAR: f64 = 0.1;

impl SsimReference {
    /// The reference of `original`, a chunk of `shape`.
    pub fn of<T: Element>(original: &[T], shape: &[usize]) -> SsimReference {
        let dims = fit_rank(shape, 3);
        let (lo, hi) = original
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                let v = v.to_f64();
                (l.min(v), h.max(v))
            });
        // Half the range, which cannot overflow where the range can.
        let half = hi * 0.5 - lo * 0.5;
        let scale = if half > 0.0 && half.is_finite() {
            2f64.powi(-(half.log2().floor() as i32 + 1).clamp(-1000, 1000))
        } else {
            1.0
        };
        let range = if original.is_empty() {
            0.0
        } else {
            hi * scale - lo * scale
        };
        let mut reference = SsimReference {
            dims,
            scale,
            range,
            shift: 0.0,
            mean_x: Vec::new(),
            mean_xx: Vec::new(),
            windows: None,
            scratch: Default::default(),
        };
        if range == 0.0 {
            return reference;
        }
        let shift =
            original.iter().map(|v| v.to_f64() * scale).sum::<f64>() / original.len() as f64;
        let spare = &mut reference.scratch.get_mut().unwrap().spare;
        let shifted = |square: bool| {
            original.iter().map(move |v| {
                let a = v.to_f64() * scale - shift;
                if square {
                    a * a
                } else {
                    a
                }
            })
        };
        reference.shift = shift;
        reference.mean_x = window_means(shifted(false).collect(), spare, &reference.dims);
        reference.mean_xx = window_means(shifted(true).collect(), spare, &reference.dims);
        reference
    }

    /// This reference with the mean over the windows that hold no value `missing` marks
    /// (when they are at least half of the windows mostly of real values; else over those
    /// at most [`MOSTLY_CLEAR`] missing, when any is; else over those mostly of real values,
    /// when some are and some are not; else over all).
    ///
    /// A chunk's missing values (land, gaps) reach the codec replaced by the last real
    /// value before each ([`crate::encode::float_chunk_with_fill`]): runs of one value that
    /// any codec rebuilds almost exactly, so windows inside them score about 1 and a mean
    /// over every window passed chunks whose real values missed the target (72% of a
    /// 64×64 chunk's windows lie in 48 rows of land).
    pub fn clear_of(mut self, missing: impl Fn(usize) -> bool) -> SsimReference {
        if self.range == 0.0 || self.mean_x.is_empty() {
            return self;
        }
        let n: usize = self.dims.iter().product();
        let marks: Vec<f64> = (0..n).map(|i| f64::from(u8::from(missing(i)))).collect();
        let spare = &mut self
            .scratch
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .spare;
        // Sums of zeros and ones are exact: a clear window's mean is exactly 0.
        let shares = window_means(marks, spare, &self.dims);
        let share_at_most =
            |most: f64| -> Vec<bool> { shares.iter().map(|&m| m <= most).collect() };
        let count = |keep: &[bool]| keep.iter().filter(|&&k| k).count();
        let (clear, mostly_real) = (
            share_at_most(0.0),
            shares.iter().filter(|&&m| m < 0.5).count(),
        );
        // Where the clear windows are under half of those mostly of real values (gaps every
        // few values: only a corner's windows were clear, and set an SSIM target's bound
        // for the whole chunk, whose gapped rows scored 0.62 for 0.95), windows at most a
        // tenth missing join them; where none is, the windows mostly of real values (clouds
        // scattered over an ocean beside land, whose windows still score about 1).
        let keep = match 2 * count(&clear) >= mostly_real && count(&clear) > 0 {
            true => clear,
            false => match share_at_most(MOSTLY_CLEAR) {
                near if count(&near) > 0 => near,
                _ => shares.iter().map(|&m| m < 0.5).collect(),
            },
        };
        if keep.contains(&true) && keep.contains(&false) {
            self.windows = Some(keep);
        }
        self
    }

    /// [`SsimReference::of`] for type-erased values; `None` for opaque ones.
    pub fn of_samples(original: Samples<'_>, shape: &[usize]) -> Option<SsimReference> {
        match original {
            Samples::F32(a) => Some(SsimReference::of(a, shape)),
            Samples::F64(a) => Some(SsimReference::of(a, shape)),
            _ => None,
        }
    }

    /// The mean SSIM of `reconstructed` against `original`, the values this reference was
    /// made of; NaN, a miss, when a reconstructed value lies over a thousand ranges from
    /// the original's mean. Panics if the lengths differ (a programming error).
    pub fn ssim<T: Element>(&self, original: &[T], reconstructed: &[T]) -> f64 {
        assert_eq!(original.len(), reconstructed.len(), "length mismatch");
        if original.is_empty() {
            return 1.0;
        }
        if self.range == 0.0 {
            let same = original
                .iter()
                .zip(reconstructed)
                .all(|(a, b)| a.to_f64() == b.to_f64());
            return if same { 1.0 } else { 0.0 };
        }
        // A reconstruction a thousand ranges off anywhere reads NaN, a miss: the sliding
        // window sums below cannot hold such a value's square without rounding away the
        // rest, which then leaks into every later window along the axis and overstates
        // it (values 1e8 ranges off read 0.851 on a chunk whose SSIM is 0.832).
        let far = 1e3 * self.range;
        let within = |y: &T| (y.to_f64() * self.scale - self.shift).abs() <= far;
        if !reconstructed.iter().all(within) {
            return f64::NAN;
        }
        // The reconstruction's three window means (y, y², xy), one field at a time.
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let Scratch {
            values,
            spare,
            means,
        } = &mut *scratch;
        let [mean_y, mean_yy, mean_xy] = means;
        let mut buffers = (values, spare);
        self.field(original, reconstructed, &mut buffers, mean_y, |_, b| b);
        self.field(original, reconstructed, &mut buffers, mean_yy, |_, b| b * b);
        self.field(original, reconstructed, &mut buffers, mean_xy, |a, b| a * b);
        let c = self.shift;
        let count = match &self.windows {
            Some(w) => w.iter().filter(|&&kept| kept).count(),
            None => mean_y.len(),
        };
        let kept = |i: usize| self.windows.as_ref().is_none_or(|w| w[i]);
        let (c1, c2) = ((0.01 * self.range).powi(2), (0.03 * self.range).powi(2));
        let total: f64 = self
            .mean_x
            .iter()
            .zip(mean_y.iter())
            .zip(self.mean_xx.iter().zip(mean_yy.iter()).zip(mean_xy.iter()))
            .enumerate()
            .filter(|&(i, _)| kept(i))
            .map(|(_, ((&mx, &my), ((&xx, &yy), &xy)))| {
                let vx = (xx - mx * mx).max(0.0);
                let vy = (yy - my * my).max(0.0);
                let cov = xy - mx * my;
                let (ux, uy) = (mx + c, my + c);
                ((2.0 * ux * uy + c1) * (2.0 * cov + c2))
                    / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
            })
            .sum();
        total / count as f64
    }

    /// Fills `means` with the window means of `f(x − shift, y − shift)` (x and y scaled),
    /// summed in `buffers`.
    fn field<T: Element>(
        &self,
        original: &[T],
        reconstructed: &[T],
        (values, spare): &mut (&mut Vec<f64>, &mut Vec<f64>),
        means: &mut Vec<f64>,
        f: impl Fn(f64, f64) -> f64,
    ) {
        let (c, scale) = (self.shift, self.scale);
        values.clear();
        values.extend(
            original
                .iter()
                .zip(reconstructed)
                .map(|(x, y)| f(x.to_f64() * scale - c, y.to_f64() * scale - c)),
        );
        **values = window_means(std::mem::take(*values), spare, &self.dims);
        means.clear();
        means.extend_from_slice(values);
    }

    /// [`SsimReference::ssim`] for type-erased values; `None` when the types differ from
    /// each other or are opaque.
    pub fn ssim_of(&self, original: Samples<'_>, reconstructed: Samples<'_>) -> Option<f64> {
        match (original, reconstructed) {
            (Samples::F32(a), Samples::F32(b)) if a.len() == b.len() => Some(self.ssim(a, b)),
            (Samples::F64(a), Samples::F64(b)) if a.len() == b.len() => Some(self.ssim(a, b)),
            _ => None,
        }
    }
}

/// Replaces `field` by its means over every window position ("valid" box filter,
/// separable along each axis), using `spare` as the other buffer of each pass.
fn window_means(mut field: Vec<f64>, spare: &mut Vec<f64>, dims: &[usize]) -> Vec<f64> {
    let mut dims = dims.to_vec();
    let mut volume = 1usize;
    for axis in 0..dims.len() {
        let w = SSIM_WINDOW.min(dims[axis]);
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let (n, m) = (dims[axis], dims[axis] - w + 1);
        // Every value is written below, so only a longer buffer's new tail is zeroed.
        spare.resize(outer * m * inner, 0.0);
        for o in 0..outer {
            if inner == 1 {
                // The contiguous axis: one sum per window (a sliding sum along it would
                // chain every addition on the one before).
                let row = &field[o * n..(o + 1) * n];
                for (j, dst) in spare[o * m..(o + 1) * m].iter_mut().enumerate() {
                    *dst = row[j..j + w].iter().sum();
                }
                continue;
            }
            // Other axes slide: each window's sums are the previous window's, plus the
            // row entering and minus the row leaving (two additions per value, not w).
            let src = |r: usize| &field[(o * n + r) * inner..(o * n + r + 1) * inner];
            let out = &mut spare[o * m * inner..(o + 1) * m * inner];
            let (first, _) = out.split_at_mut(inner);
            first.fill(0.0);
            for k in 0..w {
                first.iter_mut().zip(src(k)).for_each(|(d, s)| *d += s);
            }
            for j in 1..m {
                let (done, rest) = out.split_at_mut(j * inner);
                let previous = &done[(j - 1) * inner..];
                let (entering, leaving) = (src(j + w - 1), src(j - 1));
                for (((d, &p), &e), &l) in rest[..inner]
                    .iter_mut()
                    .zip(previous)
                    .zip(entering)
                    .zip(leaving)
                {
                    *d = p + e - l;
                }
            }
        }
        std::mem::swap(&mut field, spare);
        dims[axis] = m;
        volume *= w;
    }
    field.iter_mut().for_each(|v| *v /= volume as f64);
    field
}

/// SSIM's loss in dB, `−10·log10(1 − SSIM)`: +∞ for an exact copy. The loss is close to
/// proportional to the error's mean square, so on this scale SSIM moves with the bound
/// as PSNR does, and the PSNR search serves SSIM targets too.
pub fn ssim_loss_db(ssim: f64) -> f64 {
    if ssim >= 1.0 {
        f64::INFINITY
    } else {
        -10.0 * (1.0 - ssim).log10()
    }
}

/// A PSNR difference in dB as a ln factor of the error bound: MSE ∝ bound², so 20 dB is
/// a factor 10. Sessions and memory use it to turn a measured excess into a bound move.
pub(crate) fn db_to_ln(db: f64) -> f64 {
    db * std::f64::consts::LN_10 / 20.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssim_loss_db_is_ten_log_of_the_gap() {
        assert!((ssim_loss_db(0.99) - 20.0).abs() < 1e-9);
        assert!((ssim_loss_db(0.9999) - 40.0).abs() < 1e-6);
        assert_eq!(ssim_loss_db(1.0), f64::INFINITY);
        assert_eq!(ssim_loss_db(f64::NEG_INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn psnr_matches_hand_computation() {
        // range 4, errors (0.1, -0.1, 0, 0.2): MSE = 0.06/4 = 0.015.
        let a = [0.0f64, 1.0, 2.0, 4.0];
        let b = [0.1f64, 0.9, 2.0, 4.2];
        let s = error_stats(&a, &b);
        assert!((s.mse - 0.015).abs() < 1e-12);
        assert!((s.max_abs_error - 0.2).abs() < 1e-12);
        let expected = 20.0 * 4f64.log10() - 10.0 * 0.015f64.log10();
        assert!((s.psnr - expected).abs() < 1e-9, "{} vs {expected}", s.psnr);
    }

    #[test]
    fn psnr_is_infinite_when_exact_and_ignores_non_finite() {
        let a = [1.0f32, f32::NAN, 3.0];
        assert_eq!(psnr(&a, &a), f64::INFINITY);
        let s = error_stats(&a, &[1.5f32, 7.0, 3.0]);
        assert_eq!(s.value_range, 2.0);
        assert!((s.mse - 0.125).abs() < 1e-12);
    }

    #[test]
    fn the_lane_pass_agrees_with_the_plain_one_and_hands_exceptions_back() {
        // Lengths around the lane count: whole lanes, a tail, a tail alone.
        for n in [1, LANES - 1, LANES, 5 * LANES + 3, 4099] {
            let a: Vec<f32> = (0..n)
                .map(|i| (i as f32 * 0.37).sin() * 50.0 + 7.0)
                .collect();
            let b: Vec<f32> = a
                .iter()
                .enumerate()
                .map(|(i, x)| x + ((i * 7919 % 101) as f32 - 50.0) * 1e-3)
                .collect();
            let lanes = ErrorSums::of_finite(&a, &b, 1.0).expect("finite data");
            let plain = ErrorSums::of_any(&a, &b, 1.0);
            assert_eq!(lanes.n, n);
            assert_eq!((lanes.lo, lanes.hi), (plain.lo, plain.hi));
            assert_eq!(lanes.max_err, plain.max_err);
            assert!((lanes.sum_sq / plain.sum_sq - 1.0).abs() < 1e-12, "{n}");
            // Anywhere, a non-finite original or a NaN reconstruction leaves the lanes.
            for at in [0, n / 2, n - 1] {
                for (x, y) in [(f32::NAN, 1.0), (f32::INFINITY, 1.0), (1.0, f32::NAN)] {
                    let (mut a, mut b) = (a.clone(), b.clone());
                    (a[at], b[at]) = (x, y);
                    assert!(
                        ErrorSums::of_finite(&a, &b, 1.0).is_none(),
                        "{n} {at} {x} {y}"
                    );
                }
            }
        }
        // What the plain pass then gives: a NaN reconstruction is an error without bound.
        let s = error_stats(
            &[1.0f32; 40],
            &[[1.0f32; 39].as_slice(), &[f32::NAN]].concat(),
        );
        assert_eq!(s.max_abs_error, f64::INFINITY);
        assert!(s.psnr.is_nan() || s.psnr == f64::NEG_INFINITY, "{}", s.psnr);
    }

    #[test]
    fn compression_ratio_is_original_over_stored() {
        assert_eq!(compression_ratio(1000, 250), 4.0);
    }

    #[test]
    fn ssim_is_one_for_identical_and_drops_with_noise() {
        let shape = [16, 16];
        let a: Vec<f64> = (0..256)
            .map(|i| ((i % 16) as f64 * 0.3).sin() + (i / 16) as f64 * 0.1)
            .collect();
        assert!((ssim(&a, &a, &shape) - 1.0).abs() < 1e-12);
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        let s = ssim(&a, &b, &shape);
        assert!(s < 0.9 && s > -1.0, "{s}");
    }

    #[test]
    fn psnr_and_ssim_do_not_change_with_the_data_s_magnitude() {
        // f64 data near 1e−170 squares its errors below f64's range and data near 1e160
        // above it: unscaled, the first measured +∞ dB (any bound passed) and the second
        // −∞ (every bound failed).
        let shape = [12, 16, 16];
        let a: Vec<f64> = (0..12 * 16 * 16)
            .map(|i| (i as f64 * 0.037).sin() + (i / 16) as f64 * 0.01)
            .collect();
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, v)| v + 1e-3 * ((i * 7919) % 13) as f64 / 13.0)
            .collect();
        let plain = error_stats(&a, &b);
        let plain_ssim = ssim(&a, &b, &shape);
        assert!(plain.psnr > 50.0 && plain.psnr < 80.0, "{}", plain.psnr);
        for scale in [1e-170, 1e-300, 1e160, 1e300] {
            let (sa, sb): (Vec<f64>, Vec<f64>) = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x * scale, y * scale))
                .unzip();
            let scaled = error_stats(&sa, &sb);
            assert!(
                (scaled.psnr - plain.psnr).abs() < 1e-6,
                "{scale:e}: {}",
                scaled.psnr
            );
            let max = scaled.max_abs_error / scale;
            assert!(
                (max / plain.max_abs_error - 1.0).abs() < 1e-9,
                "{scale:e}: {max}"
            );
            let s = ssim(&sa, &sb, &shape);
            assert!(
                (s - plain_ssim).abs() < 1e-9,
                "{scale:e}: {s} against {plain_ssim}"
            );
        }
        // Data of ordinary magnitude: the mean of the squared errors (summed in lanes, so
        // to rounding).
        let sum_sq: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let mse = sum_sq / a.len() as f64;
        assert!(
            (plain.mse / mse - 1.0).abs() < 1e-13,
            "{} against {mse}",
            plain.mse
        );
    }

    #[test]
    fn ssim_matches_hand_computation_for_one_window() {
        // 1-D, 7 samples: exactly one window.
        let x = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0];
        let mean = |v: &[f64]| v.iter().sum::<f64>() / 7.0;
        let (mx, my) = (mean(&x), mean(&y));
        let vx = x.iter().map(|v| (v - mx).powi(2)).sum::<f64>() / 7.0;
        let vy = y.iter().map(|v| (v - my).powi(2)).sum::<f64>() / 7.0;
        let cov = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - mx) * (b - my))
            .sum::<f64>()
            / 7.0;
        let (c1, c2) = (0.06f64.powi(2), 0.18f64.powi(2));
        let expected =
            ((2.0 * mx * my + c1) * (2.0 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        assert!((ssim(&x, &y, &[7]) - expected).abs() < 1e-12);
    }

    #[test]
    fn ssim_matches_a_window_by_window_computation_in_3d() {
        let dims = [9usize, 10, 11];
        let x: Vec<f64> = (0..990)
            .map(|i| ((i * 37 % 101) as f64).sin() * 3.0 + 5.0)
            .collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.05 * ((i % 7) as f64 - 3.0))
            .collect();
        let (lo, hi) = x
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let range = hi - lo;
        let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
        let mut total = 0.0;
        let mut windows = 0;
        for i in 0..3 {
            for j in 0..4 {
                for k in 0..5 {
                    let at = |v: &[f64], a: usize, b: usize, c: usize| {
                        v[((i + a) * 10 + j + b) * 11 + k + c]
                    };
                    let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                    for a in 0..7 {
                        for b in 0..7 {
                            for c in 0..7 {
                                let (p, q) = (at(&x, a, b, c), at(&y, a, b, c));
                                (sx, sy, sxx, syy, sxy) =
                                    (sx + p, sy + q, sxx + p * p, syy + q * q, sxy + p * q);
                            }
                        }
                    }
                    let n = 343.0;
                    let (mx, my) = (sx / n, sy / n);
                    let (vx, vy, cov) = (sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my);
                    total += ((2.0 * mx * my + c1) * (2.0 * cov + c2))
                        / ((mx * mx + my * my + c1) * (vx + vy + c2));
                    windows += 1;
                }
            }
        }
        let direct = total / windows as f64;
        let got = ssim(&x, &y, &dims);
        assert!((got - direct).abs() < 1e-9, "{got} vs {direct}");
        assert!(got < 1.0 && got > 0.5);
        // One reference serves every reconstruction of the chunk.
        let reference = SsimReference::of(&x, &dims);
        assert!((reference.ssim(&x, &x) - 1.0).abs() < 1e-12);
        assert_eq!(reference.ssim(&x, &y), got);
        let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let reference = SsimReference::of_samples(Samples::F32(&f32s(&x)), &dims).unwrap();
        let narrow = reference.ssim_of(Samples::F32(&f32s(&x)), Samples::F32(&f32s(&y)));
        assert!((narrow.unwrap() - direct).abs() < 1e-6);
        assert_eq!(
            reference.ssim_of(Samples::F32(&f32s(&x)), Samples::F64(&y)),
            None
        );
    }

    #[test]
    fn reconstructions_too_far_off_for_the_window_sums_read_nan() {
        let dims = [64usize, 64];
        let mut x: Vec<f64> = (0..64 * 64)
            .map(|i| 0.01 * ((i / 64) as f64 * 0.1).sin() * ((i % 64) as f64 * 0.13).cos())
            .collect();
        (x[0], x[1]) = (1.0, 0.0);
        let noisy: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.01 * ((i * 7919 % 211) as f64 / 105.0 - 1.0))
            .collect();
        let reference = SsimReference::of(&x, &dims);
        let plain = reference.ssim(&x, &noisy);
        assert!(plain > 0.0 && plain < 1.0, "{plain}");
        // Nine values in one row this far off: the sliding sums lost the windows after
        // them to rounding, which read above their SSIM.
        for off in [1e2, 1e8] {
            let mut y = noisy.clone();
            (0..64).step_by(7).for_each(|c| y[3 * 64 + c] += off);
            let got = reference.ssim(&x, &y);
            match off > 1e3 {
                true => assert!(got.is_nan(), "{off}: {got}"),
                false => assert!(got < plain, "{off}: {got} vs {plain}"),
            }
        }
    }

    #[test]
    fn with_no_window_clear_of_missing_values_the_mostly_real_ones_count() {
        // 48 rows of land, then an ocean with every fifth column clouded: every 7×7 window
        // holds a missing value. Missing values are replaced by the last real one before
        // them, in the original and in the reconstruction alike (as the encoder does), so
        // the land's windows are flat and exact and score 1.
        let shape = [64, 64];
        let missing = |i: usize| i / 64 < 48 || i.is_multiple_of(5);
        let field: Vec<f64> = crate::synth::generate(crate::synth::Kind::Noise, &shape, 9);
        let mut x = Vec::with_capacity(field.len());
        let mut y = Vec::with_capacity(field.len());
        let mut last = (field[48 * 64 + 1], field[48 * 64 + 1]);
        for (i, &v) in field.iter().enumerate() {
            if !missing(i) {
                last = (v, v + 2.0 * ((i * 7919 % 13) as f64 / 13.0 - 0.5));
            }
            x.push(last.0);
            y.push(last.1);
        }
        let plain = ssim(&x, &y, &shape);
        let real = SsimReference::of(&x, &shape).clear_of(missing).ssim(&x, &y);
        // Over every window the land lifts the mean toward 1 (about 80% of them).
        assert!(plain > 0.8 && real < plain - 0.1, "{real} vs {plain}");
    }

    #[test]
    fn window_means_counts_valid_positions() {
        let mut spare = Vec::new();
        let means = window_means(vec![1.0; 10 * 9 * 8], &mut spare, &[10, 9, 8]);
        assert_eq!(means.len(), 4 * 3 * 2);
        assert!(means.iter().all(|m| (m - 1.0).abs() < 1e-12));
        // A ramp along the contiguous axis: each window's mean is its middle value.
        let ramp = window_means((0..9).map(f64::from).collect(), &mut spare, &[1, 9]);
        assert_eq!(ramp, vec![3.0, 4.0, 5.0]);
    }
}
