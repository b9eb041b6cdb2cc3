//! Per-array and total figures from per-chunk results.
//!
//! Definitions (also in docs/bench.md):
//! - CR = raw bytes / stored bytes, summed over the chunks;
//! - hit rate = fraction of chunks whose PSNR (chunk's own range) is ≥ T;
//! - dataset PSNR uses the array's global range and the MSE over its real values (fill
//!   values and non-finite values left out);
//! - overshoot = chunk PSNR − T, averaged over chunks not stored exactly (+∞ dB says
//!   nothing about the bound choice);
//! - write time × = the method's CPU seconds / the SZ3-formula row's CPU seconds on the same
//!   chunks (that row is one SZ3 compression per chunk, except for chunks stored exactly:
//!   constant ones, those the filter stores exactly, and SZ3's refusals, which cost a
//!   lossless encode instead);
//! - time / own = deepcq's CPU seconds / the CPU seconds of one compression with the codec
//!   and bound it stored (timed apart): the overhead of choosing and checking, whichever
//!   codec was chosen;
//! - CAQ = CR / (CPU seconds + 1);
//! - read MB/s = raw MB / CPU seconds to decode what was stored.
//!
//! Totals follow the peer harness's README: geometric means over arrays of ratios, plain
//! means over arrays of hit rates.

use std::collections::HashMap;

use h5z_deepcq::metrics;
use h5z_deepcq::wire::CodecId;

use super::methods::{ChunkResult, Method};

/// Sums over the chunks of one array, target and method.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Raw bytes of the chunks.
    pub raw_bytes: usize,
    /// Stored bytes.
    pub stored: usize,
    /// Bytes in the filter's chunk format ([`ChunkResult::in_filter`]).
    pub in_filter: usize,
    /// Values.
    pub values: usize,
    /// Chunks.
    pub chunks: usize,
    /// Chunks meeting the target.
    pub hits: usize,
    /// Sum and count of finite overshoots.
    pub overshoot: (f64, usize),
    /// Lowest chunk PSNR.
    pub worst: Option<f64>,
    /// Sum of squared errors.
    pub sse: f64,
    /// CPU seconds.
    pub cpu: f64,
    /// Chunks stored losslessly because the method's codec refused them.
    pub fallbacks: usize,
    /// Chunks per codec, in [`CodecId::ALL`] order.
    pub codecs: [usize; 4],
    /// Compressions spent.
    pub compressions: u64,
    /// CPU seconds of one compression with what was stored (NaN for methods that do not
    /// time it).
    pub own_compression: f64,
    /// CPU seconds of the chooser's proposals, over the chunks it proposed for, and those
    /// chunks' [`Tally::own_compression`] (deepcq only).
    pub choose: (f64, f64),
    /// CPU seconds to decode what was stored.
    pub read: f64,
}

/// Tolerance of a hit, as in the peer harness (PSNR ≥ T − 1e-9).
pub const HIT_TOLERANCE: f64 = 1e-9;

impl Tally {
    /// Adds one chunk of `raw_bytes` holding `values` values, written to `target` dB.
    pub fn add(&mut self, raw_bytes: usize, values: usize, target: f64, r: &ChunkResult) {
        self.raw_bytes += raw_bytes;
        self.stored += r.stored;
        self.in_filter += r.in_filter;
        self.values += values;
        self.chunks += 1;
        self.hits += usize::from(r.psnr >= target - HIT_TOLERANCE);
        if r.psnr.is_finite() {
            self.overshoot.0 += r.psnr - target;
            self.overshoot.1 += 1;
        }
        self.worst = Some(self.worst.map_or(r.psnr, |w| w.min(r.psnr)));
        self.sse += r.sse;
        self.cpu += r.cpu;
        self.fallbacks += usize::from(r.fallback);
        let slot = CodecId::ALL.iter().position(|&c| c == r.codec).unwrap_or(0);
        self.codecs[slot] += 1;
        self.compressions += u64::from(r.compressions);
        self.own_compression += r.own_compression;
        if r.choose.is_finite() {
            self.choose.0 += r.choose;
            self.choose.1 += r.own_compression;
        }
        self.read += r.read;
    }

    /// Raw over stored bytes.
    pub fn cr(&self) -> f64 {
        metrics::compression_ratio(self.raw_bytes, self.stored)
    }

    /// Raw over stored bytes in the filter's chunk format ([`Tally::in_filter`]).
    pub fn cr_in_filter(&self) -> f64 {
        metrics::compression_ratio(self.raw_bytes, self.in_filter)
    }

    /// Fraction of chunks meeting the target.
    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.chunks.max(1) as f64
    }

    /// Mean finite overshoot in dB (NaN when every chunk is exact).
    pub fn mean_overshoot(&self) -> f64 {
        self.overshoot.0 / self.overshoot.1 as f64
    }

    /// PSNR of the whole array with its global value range.
    pub fn dataset_psnr(&self, global_range: f64) -> f64 {
        metrics::psnr_from(global_range, self.sse / self.values.max(1) as f64)
    }

    /// Stored bits per value.
    pub fn bits_per_value(&self) -> f64 {
        8.0 * self.stored as f64 / self.values.max(1) as f64
    }

    /// The chooser's CPU time over that of one compression with what was stored, on the
    /// chunks it proposed for (NaN when none: not a deepcq row).
    pub fn choose_own(&self) -> f64 {
        match self.choose.1 > 0.0 {
            true => self.choose.0 / self.choose.1,
            false => f64::NAN,
        }
    }

    /// CR / (CPU seconds + 1).
    pub fn caq(&self) -> f64 {
        self.cr() / (self.cpu + 1.0)
    }

    /// Raw MB decoded per CPU second of reading back what was stored.
    pub fn read_mbps(&self) -> f64 {
        self.raw_bytes as f64 / 1e6 / self.read
    }

    /// Adds another tally (for totals over arrays).
    pub fn merge(&mut self, other: &Tally) {
        self.raw_bytes += other.raw_bytes;
        self.stored += other.stored;
        self.in_filter += other.in_filter;
        self.values += other.values;
        self.chunks += other.chunks;
        self.hits += other.hits;
        self.overshoot.0 += other.overshoot.0;
        self.overshoot.1 += other.overshoot.1;
        self.worst = match (self.worst, other.worst) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.sse += other.sse;
        self.cpu += other.cpu;
        self.fallbacks += other.fallbacks;
        for (a, b) in self.codecs.iter_mut().zip(other.codecs) {
            *a += b;
        }
        self.compressions += other.compressions;
        self.own_compression += other.own_compression;
        self.choose.0 += other.choose.0;
        self.choose.1 += other.choose.1;
        self.read += other.read;
    }
}

/// Everything measured on one array.
#[derive(Clone, Debug)]
pub struct ArrayResult {
    /// `dataset/file`.
    pub name: String,
    /// Array dims.
    pub dims: Vec<usize>,
    /// Chunk dims.
    pub chunk: Vec<usize>,
    /// Number of chunks.
    pub chunks: usize,
    /// Global finite value range over the real values (missing ones left out).
    pub range: f64,
    /// The value marking missing data (`--missing` or the dataset's fill value), if any.
    pub missing: Option<f64>,
    /// Per (target index, method).
    pub tallies: HashMap<(usize, Method), Tally>,
}

/// One row of figures for one array (or the totals), target and method.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    /// Compression ratio.
    pub cr: f64,
    /// CR / best-oracle CR.
    pub vs_best: f64,
    /// CR / best-oracle CR with every payload counted as the filter stores it
    /// ([`Tally::in_filter`]): like for like, where `vs_best` counts the oracles' codec
    /// payloads as a peer filter stores them and deepcq's chunks with their header.
    pub vs_best_in_filter: f64,
    /// Chunk hit rate (per array; in totals the mean over arrays).
    pub hit: f64,
    /// Fraction of all chunks meeting the target (equals `hit` for one array).
    pub chunk_hit: f64,
    /// Dataset PSNR (per array) or mean dataset PSNR over arrays (totals).
    pub psnr: f64,
    /// Lowest chunk PSNR.
    pub worst: f64,
    /// Mean overshoot, dB.
    pub overshoot: f64,
    /// CPU time / SZ3-formula CPU time.
    pub time_ratio: f64,
    /// CPU time / CPU time of one compression with what was stored (NaN unless timed).
    pub time_own: f64,
    /// CPU time of the chooser's proposals / CPU time of one compression with what was
    /// stored, over the chunks it proposed for (NaN unless timed).
    pub choose_own: f64,
    /// CPU seconds.
    pub cpu: f64,
    /// CR / (CPU s + 1) (geometric mean over arrays in totals).
    pub caq: f64,
    /// Bits per value.
    pub bits: f64,
    /// Chunks refused by the method's codec.
    pub fallbacks: usize,
    /// Chunks per codec, [`CodecId::ALL`] order.
    pub codecs: [usize; 4],
    /// Mean compressions per chunk.
    pub compressions: f64,
    /// Raw MB decoded per CPU second.
    pub read_mbps: f64,
}

impl ArrayResult {
    /// The tally of a target and method (empty when missing).
    pub fn tally(&self, target: usize, method: Method) -> Tally {
        self.tallies
            .get(&(target, method))
            .cloned()
            .unwrap_or_default()
    }

    /// Figures of one target and method.
    pub fn figures(&self, target: usize, method: Method) -> Figures {
        let t = self.tally(target, method);
        let best = self.tally(target, Method::BestOracle);
        let formula = self.tally(target, Method::Formula);
        Figures {
            cr: t.cr(),
            vs_best: t.cr() / best.cr(),
            vs_best_in_filter: t.cr_in_filter() / best.cr_in_filter(),
            hit: t.hit_rate(),
            chunk_hit: t.hit_rate(),
            psnr: t.dataset_psnr(self.range),
            worst: t.worst.unwrap_or(f64::NAN),
            overshoot: t.mean_overshoot(),
            time_ratio: t.cpu / formula.cpu,
            time_own: t.cpu / t.own_compression,
            choose_own: t.choose_own(),
            cpu: t.cpu,
            caq: t.caq(),
            bits: t.bits_per_value(),
            fallbacks: t.fallbacks,
            codecs: t.codecs,
            compressions: t.compressions as f64 / t.chunks.max(1) as f64,
            read_mbps: t.read_mbps(),
        }
    }
}

/// Geometric mean of the positive finite values (NaN when none).
pub fn geomean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (sum / n as f64).exp()
}

/// Mean of the finite values (NaN when none): an array stored exactly has an infinite PSNR,
/// which would hide every other array's.
pub fn mean_finite(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

/// Totals over arrays for one target and method. CR is total raw / total stored, `vs_best`
/// and CAQ are geometric means over arrays, hit rate and PSNR plain means over arrays (PSNR
/// over arrays not stored exactly),
/// overshoot a mean over all chunks, write time total CPU / total SZ3-formula CPU.
pub fn totals(arrays: &[ArrayResult], target: usize, method: Method) -> Figures {
    let mut sum = Tally::default();
    let mut formula = Tally::default();
    for a in arrays {
        sum.merge(&a.tally(target, method));
        formula.merge(&a.tally(target, Method::Formula));
    }
    let per: Vec<Figures> = arrays.iter().map(|a| a.figures(target, method)).collect();
    let mean = |f: fn(&Figures) -> f64| per.iter().map(f).sum::<f64>() / per.len().max(1) as f64;
    Figures {
        cr: sum.cr(),
        vs_best: geomean(per.iter().map(|f| f.vs_best)),
        vs_best_in_filter: geomean(per.iter().map(|f| f.vs_best_in_filter)),
        hit: mean(|f| f.hit),
        chunk_hit: sum.hit_rate(),
        psnr: mean_finite(per.iter().map(|f| f.psnr)),
        worst: sum.worst.unwrap_or(f64::NAN),
        overshoot: sum.mean_overshoot(),
        time_ratio: sum.cpu / formula.cpu,
        time_own: sum.cpu / sum.own_compression,
        choose_own: sum.choose_own(),
        cpu: sum.cpu,
        caq: geomean(per.iter().map(|f| f.caq)),
        bits: sum.bits_per_value(),
        fallbacks: sum.fallbacks,
        codecs: sum.codecs,
        compressions: sum.compressions as f64 / sum.chunks.max(1) as f64,
        read_mbps: sum.read_mbps(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(stored: usize, psnr: f64, cpu: f64) -> ChunkResult {
        ChunkResult {
            stored,
            in_filter: stored,
            cpu,
            psnr,
            sse: 1.0,
            codec: CodecId::Sz3,
            fallback: false,
            compressions: 1,
            own_compression: f64::NAN,
            choose: f64::NAN,
            read: cpu / 2.0,
        }
    }

    #[test]
    fn cr_is_total_raw_over_total_stored() {
        let mut t = Tally::default();
        t.add(4000, 1000, 60.0, &result(100, 61.0, 0.1));
        t.add(4000, 1000, 60.0, &result(300, 59.0, 0.3));
        assert_eq!(t.cr(), 8000.0 / 400.0);
        assert_eq!(t.hit_rate(), 0.5);
        assert_eq!(t.mean_overshoot(), 0.0);
        assert_eq!(t.worst, Some(59.0));
        assert!((t.caq() - 20.0 / 1.4).abs() < 1e-12);
        assert_eq!(t.bits_per_value(), 8.0 * 400.0 / 2000.0);
        assert!((t.read_mbps() - 8000.0 / 1e6 / 0.2).abs() < 1e-9);
    }

    #[test]
    fn the_choosers_share_counts_only_chunks_it_proposed_for() {
        let timed = |choose: f64, own: f64| ChunkResult {
            choose,
            own_compression: own,
            ..result(100, 61.0, 0.1)
        };
        let mut t = Tally::default();
        assert!(t.choose_own().is_nan());
        t.add(4000, 1000, 60.0, &timed(0.002, 0.05));
        // A constant chunk: one compression, no proposal.
        t.add(4000, 1000, 60.0, &timed(f64::NAN, 0.01));
        let mut u = Tally::default();
        u.add(4000, 1000, 60.0, &timed(0.001, 0.03));
        t.merge(&u);
        assert!((t.choose_own() - 0.003 / 0.08).abs() < 1e-12);
    }

    #[test]
    fn exact_chunks_count_as_hits_but_not_in_overshoot() {
        let mut t = Tally::default();
        t.add(400, 100, 60.0, &result(10, f64::INFINITY, 0.0));
        t.add(400, 100, 60.0, &result(10, 62.0, 0.0));
        assert_eq!(t.hit_rate(), 1.0);
        assert_eq!(t.mean_overshoot(), 2.0);
    }

    #[test]
    fn totals_use_geometric_means_and_time_relative_to_the_formula() {
        let mk = |best: usize, formula: usize| {
            let mut tallies = HashMap::new();
            for (m, stored, cpu) in [
                (Method::BestOracle, best, 2.0),
                (Method::Formula, formula, 1.0),
            ] {
                let mut t = Tally::default();
                t.add(4000, 1000, 60.0, &result(stored, 61.0, cpu));
                tallies.insert((0, m), t);
            }
            ArrayResult {
                name: "a/b".into(),
                dims: vec![1000],
                chunk: vec![1000],
                chunks: 1,
                range: 1.0,
                missing: None,
                tallies,
            }
        };
        // CR / best: 0.5 and 0.125 → geometric mean 0.25.
        let arrays = [mk(100, 200), mk(100, 800)];
        let f = totals(&arrays, 0, Method::Formula);
        assert!((f.vs_best - 0.25).abs() < 1e-12, "{}", f.vs_best);
        assert_eq!(f.time_ratio, 1.0);
        assert_eq!(f.chunk_hit, 1.0);
        assert_eq!(totals(&arrays, 0, Method::BestOracle).time_ratio, 2.0);
        assert_eq!(f.cr, 8000.0 / 1000.0);
        assert_eq!(mean_finite([1.0, f64::INFINITY, 3.0]), 2.0);
    }
}
