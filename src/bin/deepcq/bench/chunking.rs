//! How an array is cut into chunks for the bench.
//!
//! The default rule is the one of `../shared/tools/folder_peers.py` (halve the largest axis
//! until a chunk holds at most 2^18 values), so that our figures and the peer harness's
//! describe the same chunks. Edge chunks keep their real, smaller extent, as the peer
//! harness and the filter's padding handling both do.

use h5z_deepcq::samples::{Element, SampleBuf};

/// Most values in a default chunk (the peer harness's budget).
pub const DEFAULT_BUDGET: usize = 1 << 18;

/// The peer harness's chunk for `dims`: halve (rounding up) the largest axis, the first
/// one on ties, until the chunk holds at most `budget` values.
pub fn default_chunk(dims: &[usize], budget: usize) -> Vec<usize> {
    let mut chunk = dims.to_vec();
    while chunk.iter().product::<usize>() > budget.max(1) {
        let (axis, _) =
            chunk.iter().enumerate().fold(
                (0, 0),
                |best, (i, &c)| if c > best.1 { (i, c) } else { best },
            );
        chunk[axis] = chunk[axis].div_ceil(2);
    }
    chunk
}

/// One chunk of an array: where it starts and its real extent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// First index along each axis.
    pub origin: Vec<usize>,
    /// Extent along each axis (smaller than the chunk at the array's far edges).
    pub shape: Vec<usize>,
}

/// How many chunks [`blocks`] gives, counted without making them (saturating): an HDF5
/// dataset of 2^62 values, never written, has 2^50 chunks of 64 × 64, which made no list.
pub fn block_count(dims: &[usize], chunk: &[usize]) -> u64 {
    dims.iter()
        .zip(chunk)
        .map(|(&d, &c)| d.div_ceil(c.max(1)) as u64)
        .fold(1u64, |n, c| n.saturating_mul(c))
}

/// Every chunk of an array of `dims` cut by `chunk`, in C order of their origins.
pub fn blocks(dims: &[usize], chunk: &[usize]) -> Vec<Block> {
    let counts: Vec<usize> = dims
        .iter()
        .zip(chunk)
        .map(|(&d, &c)| d.div_ceil(c.max(1)))
        .collect();
    let total: usize = counts.iter().product();
    (0..total)
        .map(|mut k| {
            let mut origin = vec![0; dims.len()];
            for axis in (0..dims.len()).rev() {
                origin[axis] = (k % counts[axis]) * chunk[axis];
                k /= counts[axis];
            }
            let shape = origin
                .iter()
                .zip(dims)
                .zip(chunk)
                .map(|((&o, &d), &c)| c.min(d - o))
                .collect();
            Block { origin, shape }
        })
        .collect()
}

/// Copies `block` out of C-order `values` of `dims`.
pub fn extract(values: &SampleBuf, dims: &[usize], block: &Block) -> SampleBuf {
    match values {
        SampleBuf::F32(v) => SampleBuf::F32(copy_block(v, dims, block)),
        SampleBuf::F64(v) => SampleBuf::F64(copy_block(v, dims, block)),
        SampleBuf::Opaque(v) => SampleBuf::Opaque(v.clone()),
    }
}

fn copy_block<T: Element>(values: &[T], dims: &[usize], block: &Block) -> Vec<T> {
    let rank = dims.len();
    let row = block.shape[rank - 1];
    let rows: usize = block.shape[..rank - 1].iter().product();
    let mut out = Vec::with_capacity(rows * row);
    let mut index = vec![0usize; rank - 1];
    for _ in 0..rows {
        let mut offset = 0;
        for axis in 0..rank {
            let i = if axis + 1 < rank { index[axis] } else { 0 };
            offset = offset * dims[axis] + block.origin[axis] + i;
        }
        out.extend_from_slice(&values[offset..offset + row]);
        // Odometer over the outer axes, fastest last.
        for axis in (0..rank - 1).rev() {
            index[axis] += 1;
            if index[axis] < block.shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunk_follows_the_peer_rule() {
        // Values printed by folder_peers.py's default_chunk for ../shared/data arrays.
        assert_eq!(default_chunk(&[3, 720, 721], DEFAULT_BUDGET), [3, 360, 181]);
        assert_eq!(default_chunk(&[638, 640], DEFAULT_BUDGET), [638, 320]);
        assert_eq!(default_chunk(&[163842], DEFAULT_BUDGET), [163842]);
        assert_eq!(default_chunk(&[100, 64, 128], DEFAULT_BUDGET), [50, 64, 64]);
        assert_eq!(
            default_chunk(&[4, 110, 64, 128], DEFAULT_BUDGET),
            [4, 55, 32, 32]
        );
    }

    #[test]
    fn blocks_tile_the_array_exactly() {
        let dims = [5, 7, 3];
        let bs = blocks(&dims, &[2, 4, 3]);
        assert_eq!(bs.len(), 3 * 2);
        let covered: usize = bs.iter().map(|b| b.shape.iter().product::<usize>()).sum();
        assert_eq!(covered, 5 * 7 * 3);
        assert_eq!(bs.last().unwrap().origin, [4, 4, 0]);
        assert_eq!(bs.last().unwrap().shape, [1, 3, 3]);
    }

    #[test]
    fn extract_copies_the_right_values() {
        let dims = [4, 5, 6];
        let v: Vec<f32> = (0..120).map(|i| i as f32).collect();
        let block = Block {
            origin: vec![1, 2, 3],
            shape: vec![2, 3, 2],
        };
        let SampleBuf::F32(out) = extract(&SampleBuf::F32(v), &dims, &block) else {
            panic!("f32 in, f32 out")
        };
        let at = |i: usize, j: usize, k: usize| (i * 30 + j * 6 + k) as f32;
        let expected: Vec<f32> = (1..3)
            .flat_map(|i| (2..5).flat_map(move |j| (3..5).map(move |k| at(i, j, k))))
            .collect();
        assert_eq!(out, expected);
    }
}
