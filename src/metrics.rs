//! Quality metrics between an original chunk and its reconstruction.
//!
//! **PSNR convention.** `PSNR = 20·log10(R) − 10·log10(MSE)`, where `R = max − min` of the
//! *original* values. This is the SZ / SDRBench / Z-checker convention. zfp's tools report
//! a PSNR about 6 dB lower (they use `R/2` as the peak), so compare figures with care.
//! The filter sees one chunk at a time and uses the chunk's own range; since a chunk's
//! range never exceeds the dataset's, a target met by every chunk is met by the dataset.
//!
//! Values that are NaN or ±Inf in the original are left out of the range, the MSE and the
//! maximum error: such chunks are stored losslessly, so those positions come back exact.

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

/// Computes [`ErrorStats`] in one pass. Panics if the lengths differ (a programming error).
pub fn error_stats<T: Element>(original: &[T], reconstructed: &[T]) -> ErrorStats {
    assert_eq!(original.len(), reconstructed.len(), "length mismatch");
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut max_err, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0usize);
    for (&a, &b) in original.iter().zip(reconstructed) {
        let (a, b) = (a.to_f64(), b.to_f64());
        if !a.is_finite() {
            continue;
        }
        lo = lo.min(a);
        hi = hi.max(a);
        let e = (a - b).abs();
        max_err = max_err.max(if e.is_nan() { f64::INFINITY } else { e });
        sum_sq += e * e;
        n += 1;
    }
    let value_range = if n == 0 { 0.0 } else { hi - lo };
    let mse = if n == 0 { 0.0 } else { sum_sq / n as f64 };
    ErrorStats {
        max_abs_error: max_err,
        mse,
        value_range,
        psnr: psnr_from(value_range, mse),
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
/// reconstruction equals it and 0 otherwise. Non-finite values are not supported here.
pub fn ssim<T: Element>(original: &[T], reconstructed: &[T], shape: &[usize]) -> f64 {
    assert_eq!(original.len(), reconstructed.len(), "length mismatch");
    if original.is_empty() {
        return 1.0;
    }
    let (lo, hi) = original
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            let v = v.to_f64();
            (l.min(v), h.max(v))
        });
    let range = hi - lo;
    if range == 0.0 {
        let same = original
            .iter()
            .zip(reconstructed)
            .all(|(a, b)| a.to_f64() == b.to_f64());
        return if same { 1.0 } else { 0.0 };
    }
    // Shifting by the original's mean keeps E[x²] − E[x]² from cancelling catastrophically;
    // the luminance term uses the unshifted means.
    let c = original.iter().map(|v| v.to_f64()).sum::<f64>() / original.len() as f64;
    let dims = fit_rank(shape, 3);
    // The five window means (x, y, x², y², xy), one field at a time through two reused
    // buffers: a 64³ chunk's fields are 2 MB each, and fresh buffers for every field and
    // axis cost more in page faults than the sums themselves.
    let mut buffers = (Vec::new(), Vec::new());
    let means: Vec<Vec<f64>> = (0..5)
        .map(|field| {
            let (values, spare) = &mut buffers;
            values.clear();
            values.extend(original.iter().zip(reconstructed).map(|(x, y)| {
                let (a, b) = (x.to_f64() - c, y.to_f64() - c);
                match field {
                    0 => a,
                    1 => b,
                    2 => a * a,
                    3 => b * b,
                    _ => a * b,
                }
            }));
            window_means(values, spare, &dims);
            values.clone()
        })
        .collect();
    let [mean_x, mean_y, mean_xx, mean_yy, mean_xy] =
        <[Vec<f64>; 5]>::try_from(means).expect("five fields");
    let count = mean_x.len();
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let total: f64 = mean_x
        .iter()
        .zip(&mean_y)
        .zip(mean_xx.iter().zip(&mean_yy).zip(&mean_xy))
        .map(|((&mx, &my), ((&xx, &yy), &xy))| {
            let vx = (xx - mx * mx).max(0.0);
            let vy = (yy - my * my).max(0.0);
            let cov = xy - mx * my;
            let (ux, uy) = (mx + c, my + c);
            ((2.0 * ux * uy + c1) * (2.0 * cov + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
        .sum();
    total / count as f64
}

/// Replaces `field` by its means over every window position ("valid" box filter,
/// separable along each axis), using `spare` as the other buffer of each pass.
fn window_means(field: &mut Vec<f64>, spare: &mut Vec<f64>, dims: &[usize]) {
    let mut dims = dims.to_vec();
    let mut volume = 1usize;
    for axis in 0..dims.len() {
        let w = SSIM_WINDOW.min(dims[axis]);
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let (n, m) = (dims[axis], dims[axis] - w + 1);
        spare.clear();
        spare.resize(outer * m * inner, 0.0);
        for o in 0..outer {
            if inner == 1 {
                // The contiguous axis: one sum per window (slices of one value per step
                // would cost more than the additions), in the same order as below.
                let row = &field[o * n..(o + 1) * n];
                for (j, dst) in spare[o * m..(o + 1) * m].iter_mut().enumerate() {
                    *dst = row[j..j + w].iter().sum();
                }
                continue;
            }
            for j in 0..m {
                let dst = &mut spare[(o * m + j) * inner..(o * m + j + 1) * inner];
                for k in 0..w {
                    let src = &field[(o * n + j + k) * inner..(o * n + j + k + 1) * inner];
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                }
            }
        }
        std::mem::swap(field, spare);
        dims[axis] = m;
        volume *= w;
    }
    field.iter_mut().for_each(|v| *v /= volume as f64);
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
    }

    #[test]
    fn window_means_counts_valid_positions() {
        let (mut means, mut spare) = (vec![1.0; 10 * 9 * 8], Vec::new());
        window_means(&mut means, &mut spare, &[10, 9, 8]);
        assert_eq!(means.len(), 4 * 3 * 2);
        assert!(means.iter().all(|m| (m - 1.0).abs() < 1e-12));
        // A ramp along the contiguous axis: each window's mean is its middle value.
        let mut ramp: Vec<f64> = (0..9).map(f64::from).collect();
        window_means(&mut ramp, &mut spare, &[1, 9]);
        assert_eq!(ramp, vec![3.0, 4.0, 5.0]);
    }
}
