//! The methods the bench compares, each run on one chunk.
//!
//! Every method compresses through the crate's own codecs, so differences between rows come
//! from the choice of codec and bound alone. Stored sizes are real: the deepcq rows count
//! the self-describing chunk header the filter writes ([`h5z_deepcq::chunk`]); the peers
//! count their codec payload only, as a peer filter would store it (its header is a few
//! bytes too). A peer whose codec refuses a chunk (SPERR on fill values ≥ 1e30) stores it
//! losslessly, and the report counts those chunks.

use anyhow::{Context, Result};
use h5z_deepcq::chunk::{self, Quality};
use h5z_deepcq::codec::{codec_for, CodecError, Sperr};
use h5z_deepcq::memory::Memory;
use h5z_deepcq::metrics;
use h5z_deepcq::samples::{Layout, Samples};
use h5z_deepcq::select::{
    compress_to_target, safe_bound, sz3_formula_bound, value_range, Proposer,
};
use h5z_deepcq::settings::Settings;
use h5z_deepcq::wire::{CodecId, Mode};

use super::cputime::timed;
use super::oracle;

/// One row of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// SZ3 at the safe point-wise bound `R·10^(−T/20)`.
    Safe,
    /// SZ3 at its own PSNR formula's bound (the reference for write time).
    Formula,
    /// SPERR's native target-PSNR mode.
    SperrPsnr,
    /// Bisected bound of one compressor.
    Oracle(CodecId),
    /// Per chunk, the smallest of the three oracles.
    BestOracle,
    /// deepcq, one compression per chunk (measured only where the model misread it).
    Predict,
    /// deepcq, measured, with at most one more compression per compressor before the safe
    /// bound.
    Fast,
    /// deepcq, measured and corrected until the target is met.
    Guarantee,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 10] = [
        Method::Safe,
        Method::Formula,
        Method::SperrPsnr,
        Method::Oracle(CodecId::Sz3),
        Method::Oracle(CodecId::Zfp),
        Method::Oracle(CodecId::Sperr),
        Method::BestOracle,
        Method::Predict,
        Method::Fast,
        Method::Guarantee,
    ];

    /// The row label (tests and readers match on it).
    pub fn name(self) -> &'static str {
        match self {
            Method::Safe => "safe bound (SZ3)",
            Method::Formula => "SZ3 PSNR formula",
            Method::SperrPsnr => "SPERR PSNR mode",
            Method::Oracle(CodecId::Sz3) => "SZ3 oracle",
            Method::Oracle(CodecId::Zfp) => "ZFP oracle",
            Method::Oracle(_) => "SPERR oracle",
            Method::BestOracle => "best oracle",
            Method::Predict => "deepcq predict",
            Method::Fast => "deepcq fast",
            Method::Guarantee => "deepcq guarantee",
        }
    }

    /// The method's name in the peer harness's JSON lines, when it has one.
    pub fn peer_name(self) -> Option<&'static str> {
        Some(match self {
            Method::Safe => "safe-pointwise",
            Method::Formula => "sz3-psnr-formula",
            Method::SperrPsnr => "sperr-psnr-mode",
            Method::Oracle(CodecId::Sz3) => "sz3-oracle",
            Method::Oracle(CodecId::Zfp) => "zfp-oracle",
            Method::Oracle(_) => "sperr-oracle",
            Method::BestOracle => "best-oracle",
            Method::Predict | Method::Fast | Method::Guarantee => return None,
        })
    }
}

/// What one method did to one chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkResult {
    /// Bytes stored.
    pub stored: usize,
    /// CPU seconds spent writing (compressions, and for guarantee-type methods their
    /// decodes; not the bench's own evaluation).
    pub cpu: f64,
    /// PSNR with the chunk's own value range (+∞ when exact).
    pub psnr: f64,
    /// Sum of squared errors, for the dataset PSNR.
    pub sse: f64,
    /// The codec of the stored bytes.
    pub codec: CodecId,
    /// True when the method's codec refused the chunk and it was stored losslessly.
    pub fallback: bool,
    /// Compressions the method spent on the chunk.
    pub compressions: u32,
    /// CPU seconds of one compression with the codec and bound the method stored, timed
    /// apart (deepcq only, NaN elsewhere): what "at the cost of one compression" compares
    /// against, whatever codec was chosen.
    pub own_compression: f64,
    /// CPU seconds to decode what was stored (for deepcq the whole chunk: header, checksum,
    /// payload): what reading it back costs.
    pub read: f64,
}

/// A chunk and the target it is written to.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// The values (finite).
    pub data: Samples<'a>,
    /// Their C-order shape.
    pub shape: &'a [usize],
    /// PSNR target in dB.
    pub target: f64,
}

/// Runs every method on one chunk. `proposer` is deepcq's chooser.
pub fn run_all(
    job: Job<'_>,
    steps: u32,
    proposer: &dyn Proposer,
    memories: &Memories,
) -> Result<Vec<(Method, ChunkResult)>> {
    let range = value_range(job.data);
    let mut out = Vec::with_capacity(Method::ALL.len());
    let (safe, formula) = (
        safe_bound(range, job.target),
        sz3_formula_bound(range, job.target),
    );
    out.push((Method::Safe, fixed_bound(job, CodecId::Sz3, safe, range)?));
    out.push((
        Method::Formula,
        fixed_bound(job, CodecId::Sz3, formula, range)?,
    ));
    out.push((Method::SperrPsnr, sperr_psnr(job, range)?));
    let mut best: Option<ChunkResult> = None;
    let (mut oracle_cpu, mut oracle_compressions) = (0.0, 0);
    for codec in CodecId::LOSSY {
        let r = oracle_of(job, codec, range, steps)?;
        oracle_cpu += r.cpu;
        oracle_compressions += r.compressions;
        if best.map_or(true, |b| r.stored < b.stored) {
            best = Some(r);
        }
        out.push((Method::Oracle(codec), r));
    }
    let best = best.expect("three oracles ran");
    out.push((
        Method::BestOracle,
        ChunkResult {
            cpu: oracle_cpu,
            compressions: oracle_compressions,
            ..best
        },
    ));
    out.push((Method::Predict, deepcq(job, Mode::Predict, proposer, None)?));
    out.push((
        Method::Fast,
        deepcq(job, Mode::Fast, proposer, Some(&memories.fast))?,
    ));
    out.push((
        Method::Guarantee,
        deepcq(job, Mode::Guarantee, proposer, Some(&memories.guarantee))?,
    ));
    Ok(out)
}

/// Measures a payload of `codec` against the original.
fn evaluate(
    job: Job<'_>,
    codec: CodecId,
    payload: &[u8],
    bound: f64,
    cpu: f64,
    fallback: bool,
) -> Result<ChunkResult> {
    let (back, read) =
        timed(|| codec_for(codec).decode(payload, &Layout::of(&job.data, job.shape), bound));
    let back = back.with_context(|| format!("decoding a {} payload", codec.name()))?;
    Ok(ChunkResult {
        read,
        ..measured(job, back.view(), payload.len(), codec, cpu, fallback)
    })
}

fn measured(
    job: Job<'_>,
    back: Samples<'_>,
    stored: usize,
    codec: CodecId,
    cpu: f64,
    fallback: bool,
) -> ChunkResult {
    let stats = metrics::error_stats_of(job.data, back).expect("decoder returns the input type");
    ChunkResult {
        stored,
        cpu,
        psnr: stats.psnr,
        sse: stats.mse * job.data.len() as f64,
        codec,
        fallback,
        compressions: 1,
        own_compression: f64::NAN,
        read: f64::NAN,
    }
}

/// `r` with its compression count set.
fn spent(r: ChunkResult, compressions: u32) -> ChunkResult {
    ChunkResult { compressions, ..r }
}

/// Stores the chunk losslessly after a lossy codec refused it (`fallback`, after `prior`
/// compressions costing `cpu`) or because it is constant.
fn lossless(job: Job<'_>, cpu: f64, fallback: bool, prior: u32) -> Result<ChunkResult> {
    let (payload, secs) = timed(|| codec_for(CodecId::Lossless).encode(job.data, job.shape, 0.0));
    let r = evaluate(job, CodecId::Lossless, &payload?, 0.0, cpu + secs, fallback)?;
    Ok(spent(r, prior + 1))
}

/// A codec refusal the bench turns into lossless storage; other errors are bugs to report.
fn refused(e: &CodecError) -> bool {
    matches!(
        e,
        CodecError::Library { .. } | CodecError::BoundTooFine { .. }
    )
}

fn fixed_bound(job: Job<'_>, codec: CodecId, bound: f64, range: f64) -> Result<ChunkResult> {
    if range == 0.0 {
        return lossless(job, 0.0, false, 0);
    }
    let (payload, cpu) = timed(|| codec_for(codec).encode(job.data, job.shape, bound));
    match payload {
        Ok(p) => evaluate(job, codec, &p, bound, cpu, false),
        Err(e) if refused(&e) => lossless(job, cpu, true, 1),
        Err(e) => Err(e.into()),
    }
}

fn sperr_psnr(job: Job<'_>, range: f64) -> Result<ChunkResult> {
    if range == 0.0 {
        return lossless(job, 0.0, false, 0);
    }
    let (payload, cpu) = timed(|| Sperr.encode_target_psnr(job.data, job.shape, job.target));
    match payload {
        Ok(p) => evaluate(job, CodecId::Sperr, &p, 0.0, cpu, false),
        Err(e) if refused(&e) => lossless(job, cpu, true, 1),
        Err(e) => Err(e.into()),
    }
}

fn oracle_of(job: Job<'_>, codec: CodecId, range: f64, steps: u32) -> Result<ChunkResult> {
    if range == 0.0 {
        return lossless(job, 0.0, false, 0);
    }
    let (found, cpu) =
        timed(|| oracle::search(codec, job.data, job.shape, range, job.target, steps));
    match found {
        Ok(Some(f)) => Ok(spent(
            evaluate(job, codec, &f.payload, f.bound, cpu, false)?,
            f.compressions,
        )),
        Ok(None) => lossless(job, cpu, true, steps),
        // The codec refused the chunk on its first try.
        Err(e) if refused(&e) => lossless(job, cpu, true, 1),
        Err(e) => Err(e.into()),
    }
}

/// What deepcq's measured modes learn across the chunks of one array at one target, as the
/// filter learns across the chunks of one dataset ([`Memory`]).
#[derive(Debug, Default)]
pub struct Memories {
    /// Fast mode's.
    pub fast: Memory,
    /// Guarantee mode's.
    pub guarantee: Memory,
}

fn deepcq(
    job: Job<'_>,
    mode: Mode,
    proposer: &dyn Proposer,
    memory: Option<&Memory>,
) -> Result<ChunkResult> {
    let mut settings = Settings::psnr(job.target)?;
    settings.mode = mode;
    // Timed: what the filter does per chunk, from values to the stored chunk bytes.
    let (bytes, cpu) = timed(|| -> Result<(CodecId, f64, Vec<u8>, u32)> {
        let o = match memory {
            // As the filter does, unless H5Z_DEEPCQ_MEMORY turns it off.
            Some(m) if h5z_deepcq::memory::enabled() => {
                m.compress(job.data, job.shape, &settings, proposer)?
            }
            _ => compress_to_target(job.data, job.shape, &settings, proposer)?,
        };
        // As the filter writes it: header with the quality record, then the payload.
        let quality = Quality::new(&settings, o.predicted, o.measured);
        let bytes = chunk::wrap(
            o.codec,
            &job.data,
            job.shape,
            o.bound,
            None,
            Some(quality),
            &o.payload,
        );
        Ok((o.codec, o.bound, bytes, o.compressions))
    });
    let (codec, bound, bytes, compressions) = bytes?;
    let (again, own_compression) = timed(|| codec_for(codec).encode(job.data, job.shape, bound));
    again.context("compressing the chosen candidate again, for the time reference")?;
    let (decoded, read) = timed(|| chunk::decode(&bytes));
    let (_, back) = decoded.context("decoding a deepcq chunk")?;
    let r = measured(job, back.view(), bytes.len(), codec, cpu, false);
    Ok(ChunkResult {
        own_compression,
        read,
        ..spent(r, compressions)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use h5z_deepcq::select::Analytic;
    use h5z_deepcq::synth::{generate, Kind};

    fn field() -> (Vec<f32>, Vec<usize>) {
        let shape = vec![12, 24, 24];
        let v = generate(Kind::Spectral { slope: 2.5 }, &shape, 5);
        (v.into_iter().map(|x| x as f32).collect(), shape)
    }

    #[test]
    fn every_method_runs_and_the_guaranteed_ones_hit() {
        let (v, shape) = field();
        for target in [40.0, 80.0] {
            let job = Job {
                data: Samples::F32(&v),
                shape: &shape,
                target,
            };
            let rows = run_all(job, 8, &Analytic, &Memories::default()).unwrap();
            let methods: Vec<Method> = rows.iter().map(|r| r.0).collect();
            assert_eq!(methods, Method::ALL);
            let get = |m: Method| rows.iter().find(|r| r.0 == m).unwrap().1;
            for m in [
                Method::Safe,
                Method::Oracle(CodecId::Sz3),
                Method::Oracle(CodecId::Zfp),
                Method::Oracle(CodecId::Sperr),
                Method::BestOracle,
                Method::Fast,
                Method::Guarantee,
            ] {
                assert!(get(m).psnr >= target, "{m:?} at {target}: {}", get(m).psnr);
            }
            let best = get(Method::BestOracle);
            for codec in CodecId::LOSSY {
                assert!(best.stored <= get(Method::Oracle(codec)).stored);
            }
            assert!(best.stored <= get(Method::Safe).stored);
            for m in [Method::Predict, Method::Fast, Method::Guarantee] {
                let own = get(m).own_compression;
                assert!(own > 0.0 && own.is_finite(), "{m:?}: {own}");
            }
            assert!(get(Method::Safe).own_compression.is_nan());
            // The deepcq rows include the chunk header, the peers not.
            let raw_guarantee = get(Method::Guarantee).stored;
            assert!(raw_guarantee > h5z_deepcq::wire::FIXED_HEADER_LEN);
            let mse = get(Method::Safe).sse / v.len() as f64;
            let expect = metrics::psnr_from(value_range(Samples::F32(&v)), mse);
            let got = get(Method::Safe).psnr;
            assert!(
                got == expect || (got - expect).abs() < 1e-9,
                "{got} vs {expect}"
            );
        }
    }

    #[test]
    fn stored_sizes_are_the_bytes_a_writer_stores() {
        let (v, shape) = field();
        let data = Samples::F32(&v);
        let job = Job {
            data,
            shape: &shape,
            target: 60.0,
        };
        let rows = run_all(job, 6, &Analytic, &Memories::default()).unwrap();
        let get = |m: Method| rows.iter().find(|r| r.0 == m).unwrap().1;
        let range = value_range(data);
        let payload = codec_for(CodecId::Sz3)
            .encode(data, &shape, sz3_formula_bound(range, 60.0))
            .unwrap();
        assert_eq!(get(Method::Formula).stored, payload.len());
        // deepcq rows: the whole chunk as the filter writes it, header included.
        let mut settings = Settings::psnr(60.0).unwrap();
        settings.mode = Mode::Predict;
        let o = compress_to_target(data, &shape, &settings, &Analytic).unwrap();
        let quality = Quality::new(&settings, o.predicted, o.measured);
        let chunk = chunk::wrap(
            o.codec,
            &data,
            &shape,
            o.bound,
            None,
            Some(quality),
            &o.payload,
        );
        assert_eq!(get(Method::Predict).stored, chunk.len());
        // The header is counted, and the payload as the chunk stores it (compact).
        let (header, stored) = chunk::parse(&chunk).unwrap();
        assert!(header.quality.is_some());
        let layout = Layout::of(&data, &shape);
        assert_eq!(
            stored.len(),
            chunk::stored_payload_len(o.codec, &layout, o.bound, &o.payload)
        );
        assert!(chunk.len() > stored.len());
    }

    #[test]
    fn constant_chunks_are_exact_everywhere() {
        let v = vec![2.5f64; 64];
        let job = Job {
            data: Samples::F64(&v),
            shape: &[64],
            target: 60.0,
        };
        for (m, r) in run_all(job, 4, &Analytic, &Memories::default()).unwrap() {
            assert_eq!(r.sse, 0.0, "{m:?}");
            assert!(!r.fallback, "{m:?}");
        }
    }

    #[test]
    fn sperr_refusing_fill_values_falls_back_to_lossless() {
        let mut v: Vec<f32> = field().0;
        v[0] = 1e35;
        let shape = [12, 24, 24];
        let job = Job {
            data: Samples::F32(&v),
            shape: &shape,
            target: 60.0,
        };
        let range = value_range(job.data);
        let r = sperr_psnr(job, range).unwrap();
        assert!(r.fallback);
        assert_eq!(r.codec, CodecId::Lossless);
        assert_eq!(r.sse, 0.0);
    }
}
