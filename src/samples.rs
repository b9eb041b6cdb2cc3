//! Typed views of a chunk's values, so codecs and metrics can be written once for f32 and
//! f64 and dispatched on one enum at the edge.

use crate::wire::DType;

/// A floating-point element type the lossy codecs accept.
pub trait Element:
    Copy
    + Send
    + Sync
    + PartialEq
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::fmt::Debug
    + 'static
{
    /// The on-disk dtype of this element.
    const DTYPE: DType;
    /// Widens to f64 for metrics.
    fn to_f64(self) -> f64;
    /// Narrows from f64 (generated fields, tests).
    fn from_f64(value: f64) -> Self;
    /// Reads one element from little-endian bytes.
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// Appends the little-endian bytes of this element.
    fn extend_le(self, out: &mut Vec<u8>);
    /// Views a slice as type-erased samples.
    fn samples(values: &[Self]) -> Samples<'_>;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn from_le_slice(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn samples(values: &[Self]) -> Samples<'_> {
        Samples::F32(values)
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(value: f64) -> Self {
        value
    }
    fn from_le_slice(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }
    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn samples(values: &[Self]) -> Samples<'_> {
        Samples::F64(values)
    }
}

/// Borrowed chunk values.
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a> {
    /// binary32 values.
    F32(&'a [f32]),
    /// binary64 values.
    F64(&'a [f64]),
    /// Bytes of some other type, with its element size (used to shuffle before zstd).
    Opaque {
        /// The raw bytes.
        bytes: &'a [u8],
        /// Size of one element; 1 when unknown.
        elem_size: usize,
    },
}

/// Owned chunk values, as a decoder returns them.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleBuf {
    /// binary32 values.
    F32(Vec<f32>),
    /// binary64 values.
    F64(Vec<f64>),
    /// Bytes of some other type.
    Opaque(Vec<u8>),
}

impl Samples<'_> {
    /// The dtype written into the chunk header.
    pub fn dtype(&self) -> DType {
        match self {
            Samples::F32(_) => DType::F32,
            Samples::F64(_) => DType::F64,
            Samples::Opaque { .. } => DType::Opaque,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(v) => v.len(),
            Samples::F64(v) => v.len(),
            Samples::Opaque { bytes, elem_size } => bytes.len() / (*elem_size).max(1),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of one element in bytes.
    pub fn elem_size(&self) -> usize {
        match self {
            Samples::F32(_) => 4,
            Samples::F64(_) => 8,
            Samples::Opaque { elem_size, .. } => (*elem_size).max(1),
        }
    }

    /// Size of the values in bytes.
    pub fn byte_len(&self) -> usize {
        match self {
            Samples::Opaque { bytes, .. } => bytes.len(),
            _ => self.len() * self.elem_size(),
        }
    }

    /// The values as native-endian bytes (no copy).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Samples::F32(v) => bytemuck::cast_slice(v),
            Samples::F64(v) => bytemuck::cast_slice(v),
            Samples::Opaque { bytes, .. } => bytes,
        }
    }

    /// The values at the indices `keep` accepts, in order (opaque data as bytes of
    /// one-byte elements).
    pub fn filtered(&self, keep: impl Fn(usize) -> bool) -> SampleBuf {
        fn pick<T: Copy>(v: &[T], keep: impl Fn(usize) -> bool) -> Vec<T> {
            v.iter()
                .enumerate()
                .filter(|&(i, _)| keep(i))
                .map(|(_, x)| *x)
                .collect()
        }
        match self {
            Samples::F32(v) => SampleBuf::F32(pick(v, keep)),
            Samples::F64(v) => SampleBuf::F64(pick(v, keep)),
            Samples::Opaque { bytes, .. } => SampleBuf::Opaque(pick(bytes, keep)),
        }
    }

    /// True when every value is finite (always true for opaque data).
    pub fn all_finite(&self) -> bool {
        self.finite_max_abs().is_some()
    }

    /// The value at `i` widened to f64; None past the end and for opaque bytes.
    pub fn value(&self, i: usize) -> Option<f64> {
        match self {
            Samples::F32(v) => v.get(i).map(|&x| f64::from(x)),
            Samples::F64(v) => v.get(i).copied(),
            Samples::Opaque { .. } => None,
        }
    }

    /// The largest magnitude, or `None` when a value is not finite (0 for opaque data).
    /// Every lossy codec asks before compressing (SPERR and zfp refuse bounds too fine for
    /// the magnitude), so it runs branch-free over blocks (which vectorises) and stops at
    /// the first block holding a non-finite value.
    pub fn finite_max_abs(&self) -> Option<f64> {
        fn blocks<T: Element>(v: &[T]) -> Option<f64> {
            const BLOCK: usize = 1024;
            v.chunks(BLOCK).try_fold(0.0f64, |largest, c| {
                let (finite, block_max) = c.iter().fold((true, 0.0f64), |(ok, m), x| {
                    let a = x.to_f64().abs();
                    (ok & x.to_f64().is_finite(), if a > m { a } else { m })
                });
                finite.then_some(largest.max(block_max))
            })
        }
        match self {
            Samples::F32(v) => blocks(v),
            Samples::F64(v) => blocks(v),
            Samples::Opaque { .. } => Some(0.0),
        }
    }
}

impl SampleBuf {
    /// Borrows the values.
    pub fn view(&self) -> Samples<'_> {
        match self {
            SampleBuf::F32(v) => Samples::F32(v),
            SampleBuf::F64(v) => Samples::F64(v),
            SampleBuf::Opaque(bytes) => Samples::Opaque {
                bytes,
                elem_size: 1,
            },
        }
    }

    /// Consumes the buffer into native-endian bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            SampleBuf::F32(v) => bytemuck::cast_slice(&v).to_vec(),
            SampleBuf::F64(v) => bytemuck::cast_slice(&v).to_vec(),
            SampleBuf::Opaque(bytes) => bytes,
        }
    }

    /// Reads little-endian bytes (the chunk format's order) as `dtype`. Fails when the
    /// length is not a whole number of elements.
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Option<Self> {
        match dtype {
            DType::F32 if bytes.len().is_multiple_of(4) => Some(SampleBuf::F32(
                bytes.chunks_exact(4).map(f32::from_le_slice).collect(),
            )),
            DType::F64 if bytes.len().is_multiple_of(8) => Some(SampleBuf::F64(
                bytes.chunks_exact(8).map(f64::from_le_slice).collect(),
            )),
            DType::Opaque => Some(SampleBuf::Opaque(bytes.to_vec())),
            _ => None,
        }
    }
}

/// What a decoder must know to rebuild a chunk's values: type, element size and C-order
/// shape. For opaque data the shape is the element count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Element type.
    pub dtype: DType,
    /// Size of one element in bytes.
    pub elem_size: usize,
    /// Dims, slowest first.
    pub shape: Vec<usize>,
}

impl Layout {
    /// The layout of `data` with `shape`.
    pub fn of(data: &Samples<'_>, shape: &[usize]) -> Self {
        Layout {
            dtype: data.dtype(),
            elem_size: data.elem_size(),
            shape: shape.to_vec(),
        }
    }

    /// Number of elements, or `None` on overflow.
    pub fn count(&self) -> Option<usize> {
        element_count(&self.shape)
    }

    /// Number of bytes, or `None` on overflow.
    pub fn byte_len(&self) -> Option<usize> {
        self.count()?.checked_mul(self.elem_size)
    }
}

/// Number of elements of a shape, or `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Greatest common divisor: a stride coprime with a count walks through every residue
/// (the value samples of `crate::unfamiliar`, ZFP's sampled blocks).
pub fn gcd(a: usize, b: usize) -> usize {
    match b {
        0 => a,
        _ => gcd(b, a % b),
    }
}

/// Drops size-1 dimensions, which no codec needs and SZ3 rejects. A shape of only 1s
/// becomes `[1]`; an empty shape (a scalar) too.
pub fn squeeze(shape: &[usize]) -> Vec<usize> {
    let kept: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
    if kept.is_empty() && !shape.contains(&0) {
        vec![1]
    } else {
        kept
    }
}

/// Squeezes, then merges the slowest dimensions until at most `max_rank` remain. Merging
/// the slowest axes keeps the fastest (most correlated) ones intact.
pub fn fit_rank(shape: &[usize], max_rank: usize) -> Vec<usize> {
    let mut dims = squeeze(shape);
    while dims.len() > max_rank.max(1) {
        let merged = dims[0] * dims[1];
        dims.splice(0..2, [merged]);
    }
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_a_non_finite_value_in_any_block() {
        let mut v = vec![1.0f32; 2500];
        assert!(Samples::F32(&v).all_finite());
        for (i, bad) in [
            (0, f32::NAN),
            (1500, f32::INFINITY),
            (2499, f32::NEG_INFINITY),
        ] {
            let keep = v[i];
            v[i] = bad;
            assert!(!Samples::F32(&v).all_finite(), "{bad} at {i}");
            v[i] = keep;
        }
        let mut w = vec![0.5f64; 1025];
        w[1024] = f64::NAN;
        assert!(!Samples::F64(&w).all_finite());
    }

    #[test]
    fn squeeze_drops_unit_dims_but_keeps_one() {
        assert_eq!(squeeze(&[1, 5, 1, 7]), vec![5, 7]);
        assert_eq!(squeeze(&[1, 1]), vec![1]);
        assert_eq!(squeeze(&[]), vec![1]);
    }

    #[test]
    fn fit_rank_merges_slowest_axes() {
        assert_eq!(fit_rank(&[2, 3, 4, 5, 6], 3), vec![24, 5, 6]);
        assert_eq!(fit_rank(&[2, 1, 4], 3), vec![2, 4]);
        assert_eq!(fit_rank(&[7], 3), vec![7]);
    }

    #[test]
    fn bytes_round_trip_through_dtype() {
        let values = [1.5f32, -2.25, 3e30];
        let bytes = Samples::F32(&values).as_bytes().to_vec();
        assert_eq!(
            SampleBuf::from_bytes(DType::F32, &bytes),
            Some(SampleBuf::F32(values.to_vec()))
        );
        assert_eq!(SampleBuf::from_bytes(DType::F64, &bytes[..4]), None);
    }
}
