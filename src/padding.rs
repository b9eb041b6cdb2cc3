//! Edge chunks: HDF5 hands a filter the full chunk buffer even where the chunk sticks out of
//! the dataset, and fills the outside with the fill value. Those values must neither spoil
//! the quality target (the range and MSE would include them) nor cost bits.
//!
//! The filter cannot tell an edge chunk from an interior one, so it does not need to: it
//! trims every trailing slab, axis by axis, whose values are all bit-identical to the
//! chunk's last value, compresses only the remaining prefix block, and stores the fill
//! value so the decoder restores the trimmed part **exactly**. Because the trimmed part is
//! exact, a PSNR met on the prefix block is met on every larger block that contains it:
//! the range can only grow and the MSE only shrink. The dataset's valid part of an edge
//! chunk is such a block, so edge chunks meet the target on the data the user wrote. An
//! SSIM, a mean over windows, has no such order: the encoder checks it over the whole
//! chunk too (`encode::whole_ssim_met`).

use bytemuck::Pod;

use crate::samples::{Element, SampleBuf, Samples};

/// The prefix block that holds the data, and the value everything outside it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Padding {
    /// Dims of the kept prefix block, slowest first; each ≤ the chunk's dim.
    pub inner: Vec<usize>,
    /// Little-endian bytes of the fill value (one element).
    pub fill: Vec<u8>,
}

/// Finds the smallest prefix block outside of which every value equals the last one,
/// bit for bit. `None` when nothing can be trimmed, when the whole chunk is that one value
/// (a constant chunk needs no block), or when only the last value itself would go and it
/// lies within the range of the kept values that are real (finite, and not `missing`, the
/// value that marks the chunk's missing data, which must not stretch that range any more
/// than they stretch the target's). In a 1-D chunk (or N × 1 × 1) the last value alone
/// always qualifies; trimming an ordinary one saved nothing, cost a padding record, and
/// moved SSIM, which is measured on the block the codec gets, away from the whole chunk's
/// (a 512-value column met SSIM 0.9999 on its first 511 values and stored 0.999898). A
/// last value outside that range (an edge chunk's one fill value, 0 after data near 1000)
/// is still trimmed: left in, it would set the range the target is measured against. So is
/// a last value of +0.0, HDF5's default fill, whatever the range: where it lies outside the
/// dataset (a 1-D dataset one value short of a whole chunk), a PSNR met over the whole
/// chunk could fall short over the values inside it (by up to 10·log10(n/(n−1)) dB, 0.07 dB
/// for 64 values) when that value's error is below the others'.
pub fn find<T: Pod + Element>(data: &[T], shape: &[usize], missing: Option<T>) -> Option<Padding> {
    let fill = *data.last()?;
    let same = |x: &T| bytemuck::bytes_of(x) == bytemuck::bytes_of(&fill);
    let mut inner = shape.to_vec();
    for axis in 0..shape.len() {
        while inner[axis] > 0 && slab_all(data, shape, &inner, axis, inner[axis] - 1, &same) {
            inner[axis] -= 1;
        }
        if inner[axis] == 0 {
            return None;
        }
    }
    let kept: usize = inner.iter().product();
    // Missing data (non-finite, or `missing`) neither stretch the range a last value must
    // lie in, nor is a last value trimmed that is missing data the kept values hold too:
    // the missing-value record marks it with them.
    let is_missing = |x: &T| {
        !x.to_f64().is_finite()
            || missing.is_some_and(|m| bytemuck::bytes_of(x) == bytemuck::bytes_of(&m))
    };
    let kept_values = &data[..kept];
    let held = || is_missing(&fill) && kept_values.iter().any(same);
    let default_fill = bytemuck::bytes_of(&fill).iter().all(|&b| b == 0);
    let harmless = kept + 1 == data.len()
        && !default_fill
        && (within_range(kept_values, fill.to_f64(), is_missing) || held());
    (kept < data.len() && !harmless).then(|| Padding {
        inner,
        fill: bytemuck::bytes_of(&fill).to_vec(),
    })
}

/// True when `value` lies within the min..max of the `values` that are not `missing`
/// (never for NaN).
fn within_range<T: Element>(values: &[T], value: f64, missing: impl Fn(&T) -> bool) -> bool {
    let real = values.iter().filter(|v| !missing(v)).map(|v| v.to_f64());
    real.clone().any(|v| v <= value) && real.clone().any(|v| v >= value)
}

/// True when every value of the block `block` with `axis` fixed at `index` passes `test`.
fn slab_all<T>(
    data: &[T],
    shape: &[usize],
    block: &[usize],
    axis: usize,
    index: usize,
    test: &impl Fn(&T) -> bool,
) -> bool {
    let mut fixed = block.to_vec();
    fixed[axis] = 1;
    let step = index * stride(shape, axis);
    every_offset(shape, &fixed, |offset| test(&data[offset + step]))
}

/// Distance in elements between neighbours along `axis` (C order).
fn stride(shape: &[usize], axis: usize) -> usize {
    shape[axis + 1..].iter().product()
}

/// Calls `visit` with the flat offset of every element of the prefix block `block` of an
/// array of `shape`, in C order, one contiguous run of the fastest axis at a time.
fn for_each_offset(shape: &[usize], block: &[usize], mut visit: impl FnMut(usize)) {
    every_offset(shape, block, |offset| {
        visit(offset);
        true
    });
}

/// True when `test` holds for the flat offset of every element of the prefix block `block`
/// of an array of `shape`, tried in C order and stopping at the first that fails: the
/// padding search tries the last slab of every axis of every chunk, and on an interior
/// chunk its first value already differs (a walk over the whole slab, one value per row
/// for the fastest axis, cost 2% of one compression).
fn every_offset(shape: &[usize], block: &[usize], mut test: impl FnMut(usize) -> bool) -> bool {
    if block.contains(&0) {
        return true;
    }
    let rank = shape.len();
    if rank == 0 {
        return test(0);
    }
    let mut index = vec![0usize; rank];
    loop {
        let base: usize = (0..rank - 1).map(|a| index[a] * stride(shape, a)).sum();
        if !(0..block[rank - 1]).all(|i| test(base + i)) {
            return false;
        }
        // Odometer over the slower axes.
        let mut axis = rank - 1;
        loop {
            if axis == 0 {
                return true;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < block[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

/// Copies the prefix block `inner` out of `data` of `shape`.
pub fn extract<T: Copy>(data: &[T], shape: &[usize], inner: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(inner.iter().product());
    for_each_offset(shape, inner, |offset| out.push(data[offset]));
    out
}

/// [`extract`] for borrowed chunk values of either float type; `None` for opaque bytes.
pub fn extract_samples(data: Samples<'_>, shape: &[usize], inner: &[usize]) -> Option<SampleBuf> {
    match data {
        Samples::F32(v) => Some(SampleBuf::F32(extract(v, shape, inner))),
        Samples::F64(v) => Some(SampleBuf::F64(extract(v, shape, inner))),
        Samples::Opaque { .. } => None,
    }
}

/// Rebuilds a chunk of `shape` from its prefix block `inner` and the fill value.
pub fn expand<T: Copy>(values: &[T], inner: &[usize], shape: &[usize], fill: T) -> Vec<T> {
    let mut out = vec![fill; shape.iter().product()];
    let mut source = values.iter();
    for_each_offset(shape, inner, |offset| {
        if let Some(&v) = source.next() {
            out[offset] = v;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_chunk_padding_is_found_and_restored() {
        // A 4×5 chunk whose valid part is 3×2; the rest holds the fill 0.
        let shape = [4, 5];
        let mut data = vec![0.0f32; 20];
        for r in 0..3 {
            for c in 0..2 {
                data[r * 5 + c] = 1.0 + (r * 2 + c) as f32;
            }
        }
        let padding = find(&data, &shape, None).unwrap();
        assert_eq!(padding.inner, vec![3, 2]);
        let inner = extract(&data, &shape, &padding.inner);
        assert_eq!(inner, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(expand(&inner, &padding.inner, &shape, 0.0), data);
    }

    #[test]
    fn nan_fill_is_trimmed_bitwise() {
        let data = [1.0f64, 2.0, f64::NAN, 3.0, 4.0, f64::NAN];
        let padding = find(&data, &[2, 3], None).unwrap();
        assert_eq!(padding.inner, vec![2, 2]);
    }

    #[test]
    fn nothing_to_trim_or_all_constant_gives_none() {
        assert_eq!(find(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2], None), None);
        assert_eq!(find(&[7.0f32; 8], &[2, 4], None), None);
        assert_eq!(find::<f32>(&[], &[0], None), None);
        // The last value alone is not padding when it lies within the others' range;
        // outside it (an edge chunk's one fill value) it is, and so are two equal ones.
        assert_eq!(find(&[1.0f32, 4.0, 3.0, 2.0], &[4], None), None);
        assert_eq!(find(&[1.0f32, 4.0, 3.0, 2.0], &[4, 1, 1], None), None);
        assert_eq!(
            find(&[1000.0f32, 1001.0, 999.0, 0.0], &[4], None)
                .unwrap()
                .inner,
            [3]
        );
        assert_eq!(
            find(&[1.0f32, 2.0, 3.0, f32::NAN], &[4], None)
                .unwrap()
                .inner,
            [3]
        );
        assert_eq!(
            find(&[1.0f32, 2.0, 3.0, 3.0], &[4], None).unwrap().inner,
            [2]
        );
        // Missing data do not stretch the range a last value must lie in: −Inf (the log
        // of a zero), or the value marking the chunk's missing data.
        let with_inf = [2.0f32, f32::NEG_INFINITY, 3.0, 0.0];
        assert_eq!(find(&with_inf, &[4], None).unwrap().inner, [3]);
        let with_marker = [1000.0f32, -9999.0, 1001.0, 1.0];
        assert_eq!(find(&with_marker, &[4], None), None);
        assert_eq!(find(&with_marker, &[4], Some(-9999.0)).unwrap().inner, [3]);
        // A last +0.0 (HDF5's default fill) is trimmed within the range too: it may lie
        // outside the dataset, and the target must hold over the values inside it. −0.0
        // (no fill HDF5 writes) is not.
        assert_eq!(
            find(&[-1.0f32, 2.0, 1.0, 0.0], &[4], None).unwrap().inner,
            [3]
        );
        assert_eq!(
            find(&[-1.0f32, 2.0, 1.0, 0.0], &[4, 1, 1], None)
                .unwrap()
                .inner,
            [3, 1, 1]
        );
        assert_eq!(find(&[-1.0f32, 2.0, 1.0, -0.0], &[4], None), None);
        // Nor is a last value trimmed that is missing data the kept values hold too: the
        // missing-value record marks it with them.
        assert_eq!(
            find(
                &[2.0f32, f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY],
                &[4],
                None
            ),
            None
        );
        assert_eq!(
            find(&[1000.0f32, -9999.0, 1001.0, -9999.0], &[4], Some(-9999.0)),
            None
        );
    }

    #[test]
    fn three_d_round_trip() {
        let shape = [3, 4, 5];
        let inner = [2, 3, 4];
        let mut data = vec![-1.0f32; 60];
        let mut next = 0.5f32;
        for_each_offset(&shape, &inner, |o| {
            data[o] = next;
            next += 1.0;
        });
        let padding = find(&data, &shape, None).unwrap();
        assert_eq!(padding.inner, inner.to_vec());
        let kept = extract(&data, &shape, &inner);
        assert_eq!(kept.len(), 24);
        assert_eq!(expand(&kept, &inner, &shape, -1.0), data);
    }

    proptest::proptest! {
        /// Any rank the chunk format takes (the codecs fold 4-D and more, the padding
        /// does not): an edge block of distinct values in a fill is found whole and
        /// restored exactly.
        #[test]
        fn edge_blocks_of_every_rank_round_trip(
            dims in proptest::collection::vec((1usize..5, 0usize..3), 1..6)
        ) {
            let shape: Vec<usize> = dims.iter().map(|&(inner, pad)| inner + pad).collect();
            let inner: Vec<usize> = dims.iter().map(|&(inner, _)| inner).collect();
            let mut data = vec![-1.0f32; shape.iter().product()];
            let mut offsets = Vec::new();
            for_each_offset(&shape, &inner, |o| offsets.push(o));
            for (i, &o) in offsets.iter().enumerate() {
                data[o] = 0.5 + i as f32;
            }
            // The block's last value within the others' range, or it alone would pass for
            // a fill value (`nothing_to_trim_or_all_constant_gives_none`).
            data[offsets[0]] = 1e6;
            let found = find(&data, &shape, None).map_or(shape.clone(), |p| p.inner);
            if offsets.len() >= 3 {
                proptest::prop_assert_eq!(&found, &inner);
            }
            // What the chunk records: the value outside the kept block, its last.
            let fill = data[data.len() - 1];
            let kept = extract(&data, &shape, &found);
            proptest::prop_assert_eq!(expand(&kept, &found, &shape, fill), data);
        }
    }
}
