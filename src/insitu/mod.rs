//! The in-situ layer behind the C API ([`crate::capi`]): compress, decompress and advise
//! on a caller's buffer, and per-variable [`session::Session`]s that learn across
//! timesteps. Everything here is safe Rust with typed errors; the C boundary only converts
//! pointers and maps [`InsituError`] to status codes.
//!
//! Buffers go through the same path as HDF5 chunks: trailing constant slabs are trimmed
//! ([`crate::padding`]) and the result is the self-describing chunk of [`crate::chunk`], so
//! a buffer compressed here can also be written with `H5Dwrite_chunk` and read back through
//! the filter.

pub mod session;

use crate::chunk::{self, ChunkError};
use crate::encode;
use crate::learned;
use crate::metrics;
use crate::observe;
use crate::padding;
use crate::samples::{Layout, SampleBuf, Samples};
use crate::select::{Outcome, Proposer, SelectError};
use crate::settings::{Settings, SettingsError};
use crate::wire::{CodecId, DType, Mode, TargetKind};

/// Why an in-situ call failed. Each variant is one C status code (see [`crate::capi`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsituError {
    /// A pointer, dtype, rank or length the caller passed makes no sense.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The cd_values (settings) were rejected.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The caller's output buffer is too small; `needed` units are required.
    #[error("output buffer holds {capacity} {unit}, {needed} are needed")]
    BufferTooSmall {
        /// Units required.
        needed: usize,
        /// Units the caller offered (0 for a NULL buffer).
        capacity: usize,
        /// What is counted: "bytes", "words" for cd_values, "dims entries" for a shape.
        unit: &'static str,
    },
    /// Chunk bytes could not be decoded.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// No payload could be produced.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The host's HDF5 could not be found or refused the registration.
    #[error("HDF5: {0}")]
    Hdf5(String),
    /// An output buffer of this many bytes could not be allocated.
    #[error("out of memory allocating {0} bytes")]
    OutOfMemory(usize),
}

/// The chooser the in-situ API uses for first guesses: the same as the filter's
/// ([`learned::proposer_for`]), so a buffer compressed here gets the choice HDF5 would make.
pub fn proposer(settings: &Settings) -> Result<&'static dyn Proposer, InsituError> {
    Ok(learned::proposer_for(settings)?)
}

/// What one compression did, as reported to C.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Codec of the payload.
    pub codec: CodecId,
    /// Absolute bound given to the codec (0 for lossless).
    pub bound: f64,
    /// Compressions spent (guarantee-mode retries included).
    pub compressions: u32,
    /// The target's metric measured on the decoded chunk, over the whole buffer (with a
    /// missing value in the settings, as the chooser measures it: [`verify`]).
    pub metric: f64,
    /// PSNR of the decoded chunk over the whole buffer, or over the values a missing value
    /// does not mark (value-range convention); +∞ when exact.
    pub psnr: f64,
    /// Original bytes / chunk bytes (header included).
    pub ratio: f64,
    /// True when `metric` meets the target.
    pub target_met: bool,
    /// Natural log of the factor the session applied to the proposer's bound (0 = none).
    pub correction: f64,
}

/// Checks that `data` holds exactly the elements `shape` describes.
pub fn check_shape(len: usize, shape: &[usize]) -> Result<(), InsituError> {
    if shape.is_empty() || shape.len() > crate::wire::MAX_RANK || shape.contains(&0) {
        return Err(InsituError::InvalidArgument(format!(
            "dims {shape:?}: rank must be 1..={} and every dim > 0",
            crate::wire::MAX_RANK
        )));
    }
    match crate::samples::element_count(shape) {
        Some(n) if n == len => Ok(()),
        _ => Err(InsituError::InvalidArgument(format!(
            "dims {shape:?} do not describe {len} values"
        ))),
    }
}

/// Compresses `data` to the settings' target with `proposer`, trimming trailing constant
/// slabs like the filter does. Returns the chunk bytes and what the chooser did, which is
/// logged and traced (`H5Z_DEEPCQ_LOG`, `H5Z_DEEPCQ_TRACE`) as the filter's chunks are,
/// with source "insitu".
pub fn encode_with(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
) -> Result<(Vec<u8>, Outcome), InsituError> {
    let started = std::time::Instant::now();
    let (bytes, outcome) = encode_untraced(data, shape, settings, proposer)?;
    let millis = started.elapsed().as_secs_f64() * 1e3;
    trace(data, shape, settings, (&outcome, &bytes), millis, None);
    Ok((bytes, outcome))
}

/// [`encode_with`], then the chunk decoded and measured (a [`Report`]; its
/// correction is 0 for the caller to set). The log and trace record carries that
/// measurement where the chooser took none (predict mode), so a step that missed shows.
pub fn encode_verified(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
) -> Result<(Vec<u8>, Outcome, Report), InsituError> {
    let verified = Verified::encode(data, shape, settings, proposer)?;
    verified.trace(data, shape, settings);
    Ok((verified.bytes, verified.outcome, verified.report))
}

/// A compressed and measured chunk not yet logged or traced: a session that may compress
/// a step again traces only the chunk it returns (one record per call, as documented).
pub struct Verified {
    /// The chunk.
    pub bytes: Vec<u8>,
    /// What the chooser did.
    pub outcome: Outcome,
    /// The chunk decoded and measured; its correction is 0 for the caller to set.
    pub report: Report,
    /// Wall time spent, ms, including earlier compressions of the same step.
    pub millis: f64,
    /// The target's metric over the block the chooser compressed (the report's unless
    /// trailing constant slabs were trimmed off the chunk; for SSIM the lower of the two):
    /// what a session learns from.
    pub aimed: f64,
}

impl Verified {
    /// Compresses `data` with `proposer` and measures the chunk, without logging it.
    pub fn encode(
        data: Samples<'_>,
        shape: &[usize],
        settings: &Settings,
        proposer: &dyn Proposer,
    ) -> Result<Self, InsituError> {
        let started = std::time::Instant::now();
        let (bytes, outcome) = encode_untraced(data, shape, settings, proposer)?;
        let millis = started.elapsed().as_secs_f64() * 1e3;
        let report = Report::verified(data, shape, settings, &bytes, &outcome, 0.0)?;
        let aimed = aimed_metric(data, shape, settings, &bytes, &outcome, report.metric)?;
        Ok(Verified {
            bytes,
            outcome,
            report,
            millis,
            aimed,
        })
    }

    /// Logs and traces the chunk with its measurement.
    pub fn trace(&self, data: Samples<'_>, shape: &[usize], settings: &Settings) {
        let verified = Some(self.report.metric);
        let kept = (&self.outcome, &self.bytes[..]);
        trace(data, shape, settings, kept, self.millis, verified);
    }
}

/// The PSNR (for SSIM, the lower of the block's and `whole`) over the block the chooser
/// compressed and aimed at: `whole`, the buffer's, unless trailing constant slabs were
/// trimmed off the chunk ([`padding`]);
/// stored exactly, they lift the buffer's PSNR over the block's (by 40 dB for rows of
/// 1000 ± 5 ending in rows of 0), so a session learning from the buffer's would loosen
/// its bound by that much and the block would miss. Then the chooser's own measurement of
/// the block where it took one (guarantee and fast mode), else the block decoded and
/// measured. Other targets: `whole`.
fn aimed_metric(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    bytes: &[u8],
    outcome: &Outcome,
    whole: f64,
) -> Result<f64, InsituError> {
    let kind = settings.target.kind;
    if !matches!(kind, TargetKind::Psnr | TargetKind::Ssim) {
        return Ok(whole);
    }
    // The buffer's SSIM, unlike its PSNR, can be the lower (windows reaching into the
    // slabs): a session learns from the lower, so a step the buffer misses is a miss.
    let lower_for_ssim = |block: f64| match kind {
        TargetKind::Ssim => block.min(whole),
        _ => block,
    };
    let (header, _) = chunk::parse(bytes)?;
    let Some(pad) = header.padding else {
        return Ok(whole);
    };
    // Predict mode's measurement of a chunk with missing values is a bound, not the PSNR.
    let measured = outcome.measured.filter(|_| settings.mode != Mode::Predict);
    if let Some(measured) = measured {
        return Ok(lower_for_ssim(measured));
    }
    let (_, back) = chunk::decode(bytes)?;
    let block = |values| padding::extract_samples(values, shape, &pad.inner);
    let (Some(original), Some(back)) = (block(data), block(back.view())) else {
        return Ok(whole);
    };
    let ssim = kind == TargetKind::Ssim;
    let (psnr, ssim) = measure(original.view(), back.view(), &pad.inner, settings, ssim)?;
    Ok(if kind == TargetKind::Ssim {
        lower_for_ssim(ssim)
    } else {
        psnr
    })
}

/// Logs and traces one in-situ compression that took `millis`, with `verified`, the
/// metric of the decoded chunk, where the chooser measured none.
fn trace(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    (outcome, bytes): (&Outcome, &[u8]),
    millis: f64,
    verified: Option<f64>,
) {
    let sizes = (data.byte_len(), bytes.len());
    let mut record = observe::ChunkRecord::new("insitu", shape, settings, outcome, sizes, millis);
    if let (None, false, Some(metric)) = (record.measured, record.exact, verified) {
        record.measured = metric.is_finite().then_some(metric);
        record.exact = metric == f64::INFINITY;
    }
    observe::chunk(&record);
}

/// The compression behind [`encode_with`], not logged.
fn encode_untraced(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
) -> Result<(Vec<u8>, Outcome), InsituError> {
    // The Rust API's callers reach no C entry point, which would install the log.
    observe::init();
    check_shape(data.len(), shape)?;
    // A missing value named in the settings marks missing data as a dataset's fill value
    // does in the filter.
    let (bytes, outcome) = match data {
        Samples::F32(v) => Ok(encode::float_chunk_with_fill(
            v,
            shape,
            settings,
            proposer,
            settings.missing_as()?,
        )?),
        Samples::F64(v) => Ok(encode::float_chunk_with_fill(
            v,
            shape,
            settings,
            proposer,
            settings.missing_as()?,
        )?),
        Samples::Opaque { .. } => Err(InsituError::InvalidArgument(
            "the in-situ API takes f32 or f64 values".into(),
        )),
    }?;
    Ok((bytes, outcome))
}

/// Decodes `bytes` and measures it against `data`: the end-to-end check the reports give.
pub fn verify(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    bytes: &[u8],
) -> Result<(f64, f64), InsituError> {
    let (_, back) = chunk::decode(bytes)?;
    let want_ssim = settings.target.kind == TargetKind::Ssim;
    let (psnr, ssim) = measure(data, back.view(), shape, settings, want_ssim)?;
    let metric = match settings.target.kind {
        TargetKind::Psnr => psnr,
        TargetKind::Ssim => ssim,
        TargetKind::Ratio => metrics::compression_ratio(data.byte_len(), bytes.len()),
        TargetKind::AbsBound => metrics::error_stats_of(data, back.view())
            .map(|s| s.max_abs_error)
            .unwrap_or(f64::NAN),
    };
    Ok((psnr, metric))
}

/// PSNR and (when `want_ssim`, else NaN) SSIM of `back` against `data`, measured like the
/// chooser measures them ([`encode::float_chunk_with_fill`]): with missing values (the
/// settings' where the buffer holds it, [`encode::missing_marker`], and every NaN or ±Inf),
/// the PSNR over the values not missing, and SSIM on the
/// buffer with each missing value replaced, in both, by the last real value before it in
/// the buffer (the chooser replaces them so in the block it compresses, and compares with
/// the codec's reconstruction of those), averaged over the windows that hold no missing
/// value, or mostly clear ([`metrics::SsimReference::clear_of`]).
fn measure(
    data: Samples<'_>,
    back: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    want_ssim: bool,
) -> Result<(f64, f64), InsituError> {
    fn typed<T: bytemuck::Pod + crate::samples::Element>(
        data: &[T],
        back: &[T],
        shape: &[usize],
        missing: Option<T>,
        want_ssim: bool,
    ) -> (f64, f64) {
        let ssim = |a: &[T], b: &[T]| {
            if want_ssim {
                metrics::ssim(a, b, shape)
            } else {
                f64::NAN
            }
        };
        // Exact (every chunk holding two kinds of missing value is stored so): nothing to
        // measure, and NaN would make a mean of windows NaN.
        if bytemuck::cast_slice::<T, u8>(data) == bytemuck::cast_slice::<T, u8>(back) {
            return (f64::INFINITY, if want_ssim { 1.0 } else { f64::NAN });
        }
        // Every value a reader counts as missing: the marker's, then any NaN or ±Inf of
        // another kind the marker left (NaN gaps beside a fill value that trimmed padding
        // held, which the chooser marked instead), each replaced as the chooser does.
        let mut masks: Vec<chunk::Missing> = Vec::new();
        let mut replaced = std::borrow::Cow::Borrowed(data);
        let mut marker = encode::missing_marker(data, missing);
        while let Some((r, mask)) = marker.and_then(|m| encode::replace_missing(&replaced, m)) {
            masks.push(mask);
            replaced = std::borrow::Cow::Owned(r);
            marker = encode::first_non_finite(&replaced);
        }
        if masks.is_empty() {
            return (metrics::error_stats(data, back).psnr, ssim(data, back));
        }
        let is_missing = |i: usize| masks.iter().any(|m| m.is_missing(i));
        let back: Vec<T> = (0..back.len())
            .map(|i| if is_missing(i) { replaced[i] } else { back[i] })
            .collect();
        let real = |v: &[T]| -> Vec<T> {
            (0..v.len())
                .filter(|&i| !is_missing(i))
                .map(|i| v[i])
                .collect()
        };
        let psnr = metrics::error_stats(&real(data), &real(&back)).psnr;
        let ssim = match want_ssim {
            true => metrics::SsimReference::of(&replaced, shape)
                .clear_of(is_missing)
                .ssim(&replaced, &back),
            false => f64::NAN,
        };
        (psnr, ssim)
    }
    match (data, back) {
        (Samples::F32(d), Samples::F32(b)) => {
            Ok(typed(d, b, shape, settings.missing_as()?, want_ssim))
        }
        (Samples::F64(d), Samples::F64(b)) => {
            Ok(typed(d, b, shape, settings.missing_as()?, want_ssim))
        }
        _ => Err(InsituError::InvalidArgument("decoded type differs".into())),
    }
}

/// True when `metric` meets the target (AbsBound: with the codecs' documented 1e-6 slack).
pub fn meets(settings: &Settings, metric: f64) -> bool {
    let t = settings.target.value();
    match settings.target.kind {
        TargetKind::AbsBound => metric <= t * (1.0 + 1e-6),
        _ => metric >= t,
    }
}

/// Compresses once, without a session: the chunk and, when asked for, a verified report.
pub fn compress(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    want_report: bool,
) -> Result<(Vec<u8>, Option<Report>), InsituError> {
    let proposer = proposer(settings)?;
    if !want_report {
        return Ok((encode_with(data, shape, settings, proposer)?.0, None));
    }
    let (bytes, _, report) = encode_verified(data, shape, settings, proposer)?;
    Ok((bytes, Some(report)))
}

impl Report {
    /// The report on `bytes`, the chunk `outcome` produced from `data`; `correction` is
    /// what a session applied. The chunk is decoded and measured ([`verify`]) unless the
    /// chooser already measured exactly that ([`Report::psnr_measured`]).
    fn verified(
        data: Samples<'_>,
        shape: &[usize],
        settings: &Settings,
        bytes: &[u8],
        outcome: &Outcome,
        correction: f64,
    ) -> Result<Report, InsituError> {
        let (psnr, metric) = match Report::psnr_measured(settings, bytes, outcome)? {
            Some(psnr) => (psnr, psnr),
            None => verify(data, shape, settings, bytes)?,
        };
        Ok(Report {
            codec: outcome.codec,
            bound: outcome.bound,
            compressions: outcome.compressions,
            metric,
            psnr,
            ratio: metrics::compression_ratio(data.byte_len(), bytes.len()),
            target_met: meets(settings, metric),
            correction,
        })
    }

    /// The PSNR a measuring mode took of the kept payload, when it is the report's too: a
    /// PSNR target (an SSIM report needs the PSNR besides), and a chunk that holds the
    /// whole buffer (trimmed padding is stored exactly, which changes the PSNR over the
    /// buffer). The chunk wraps that very payload, so decoding it again, as much time as a
    /// compression, would measure the same number.
    fn psnr_measured(
        settings: &Settings,
        bytes: &[u8],
        outcome: &Outcome,
    ) -> Result<Option<f64>, InsituError> {
        let Some(measured) = outcome
            .measured
            .filter(|_| settings.target.kind == TargetKind::Psnr)
        else {
            return Ok(None);
        };
        let (header, _) = chunk::parse(bytes)?;
        // Predict mode measures a chunk with missing values over the values that replaced
        // them too, less the shift its raised target added: a bound on the real values'
        // PSNR, not theirs.
        let a_bound = settings.mode == Mode::Predict && header.missing.is_some();
        Ok((header.padding.is_none() && !a_bound).then_some(measured))
    }
}

/// What [`advise`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    /// Codec the chooser would use.
    pub codec: CodecId,
    /// Absolute bound it would give the codec.
    pub bound: f64,
    /// PSNR (dB, value-range convention) of that choice.
    pub psnr: f64,
    /// SSIM of that choice.
    pub ssim: f64,
    /// Compression ratio of that choice (chunk header included).
    pub ratio: f64,
    /// Where the numbers come from: [`AdviceSource`].
    pub source: AdviceSource,
    /// Compressions spent to produce the advice.
    pub compressions: u32,
}

/// How [`Advice`] numbers were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdviceSource {
    /// Compressed once at the proposed bound and measured: exact, costs one compression.
    Measured = 1,
    /// Predicted by the learned surrogate without compressing.
    Model = 2,
}

/// Predict-only advice: the codec and bound the chooser proposes for `data`, and the
/// PSNR, SSIM and ratio that choice is expected to give. The proposal keeps to the model's
/// calibrated margins: a predict-mode write may aim inside them where that promises far
/// more ratio, and then measures what it stored
/// ([`crate::select::Proposal::needs_look`]); nothing measures advice.
///
/// With the surrogate loaded the numbers are its predictions and nothing is compressed
/// ([`AdviceSource::Model`]); for a buffer ending in constant slabs, which the write trims
/// ([`padding`]), they are for the block before them, which the write aims at (the whole
/// buffer's PSNR is at least the block's). Without it (absolute bounds, NaN/Inf left in
/// the block after trimming, constant buffers, a missing value, or the opted-in analytic
/// fallback), for ratio targets that predict mode meets with SPERR's fixed rate
/// ([`crate::select::fixed_rate_applies`]) and for a PSNR target the buffer's mean meets
/// ([`crate::select::mean_serves`]), where the model plays no part, the proposal is
/// compressed once and measured ([`AdviceSource::Measured`]).
pub fn advise(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
) -> Result<Advice, InsituError> {
    check_shape(data.len(), shape)?;
    let predict = Settings {
        mode: Mode::Predict,
        ..*settings
    };
    // The write trims trailing constant slabs (and a 1-D buffer's last value beyond the
    // others' range) and proposes for the block before them: so does the advice.
    let pad = match data {
        Samples::F32(v) => padding::find(v, shape, None),
        Samples::F64(v) => padding::find(v, shape, None),
        Samples::Opaque { .. } => None,
    };
    let trimmed = pad.and_then(|p| Some((padding::extract_samples(data, shape, &p.inner)?, p)));
    let (block, block_shape) = match &trimmed {
        Some((block, p)) => (block.view(), &p.inner[..]),
        None => (data, shape),
    };
    let extent = crate::features::Extent::of(block);
    let range = extent.range();
    // A missing value needs the chunk's real values first: measured like a compression.
    let modelled = settings.target.kind != TargetKind::AbsBound
        && settings.missing.is_none()
        && !crate::select::fixed_rate_applies(block_shape, &predict)
        && extent.finite == block.len()
        && range > 0.0
        && range.is_finite()
        && !matches!(data, Samples::Opaque { .. })
        && crate::select::mean_serves(block, extent, &predict).is_none();
    if modelled {
        if let Ok(model) = learned::learned() {
            let (proposal, p) = model.advise(block, block_shape, extent, &predict)?;
            // A prediction that is no number (a damaged model, on this chunk) is no advice:
            // the chunk is compressed and measured below instead.
            let numbers = [p.psnr, p.ssim, p.cr].iter().all(|v| v.is_finite()) && p.cr > 0.0;
            if !numbers {
                return measured_advice(data, shape, settings, &predict);
            }
            let payload = (block.byte_len() as f64 / p.cr).round() as usize;
            // The padding record and the whole chunk's dims besides the block's header.
            let record = chunk::padded_header_len(shape, trimmed.as_ref().map(|(_, p)| p))
                - chunk::header_len(block_shape);
            let stored = chunk::stored_len(proposal.codec, block_shape, data.dtype(), payload);
            return Ok(Advice {
                codec: proposal.codec,
                bound: chunk::codec_bound(proposal.bound),
                psnr: p.psnr,
                ssim: p.ssim,
                ratio: data.byte_len() as f64 / (stored + record) as f64,
                source: AdviceSource::Model,
                compressions: 0,
            });
        }
    }
    measured_advice(data, shape, settings, &predict)
}

/// Advice from compressing the chunk and measuring it, where the model gives none.
fn measured_advice(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    predict: &Settings,
) -> Result<Advice, InsituError> {
    // Untraced: advice writes no record (a trace counts the chunks stored).
    let (bytes, outcome) = encode_untraced(data, shape, predict, proposer(predict)?)?;
    let (_, back) = chunk::decode(&bytes)?;
    let (psnr, ssim) = measure(data, back.view(), shape, settings, true)?;
    Ok(Advice {
        codec: outcome.codec,
        bound: outcome.bound,
        psnr,
        ssim,
        ratio: metrics::compression_ratio(data.byte_len(), bytes.len()),
        source: AdviceSource::Measured,
        compressions: outcome.compressions,
    })
}

/// Decodes chunk bytes into values (f32 or f64, per the header) and their C-order dims.
pub fn decompress(bytes: &[u8]) -> Result<(SampleBuf, Layout), InsituError> {
    let (header, values) = chunk::decode(bytes)?;
    if matches!(values, SampleBuf::Opaque(_)) {
        return Err(not_float());
    }
    Ok((values, header.layout))
}

/// The in-situ API's refusal of a chunk of values other than f32 or f64.
fn not_float() -> InsituError {
    InsituError::InvalidArgument(
        "chunk holds non-float data; the in-situ API returns f32 or f64".into(),
    )
}

/// The bytes [`decompress`] gives for a chunk, from its header alone (checksum verified,
/// nothing decoded); a chunk of values other than f32 or f64 is refused, as there.
pub fn decoded_len(bytes: &[u8]) -> Result<usize, InsituError> {
    let (header, _) = chunk::parse(bytes)?;
    if header.layout.dtype == DType::Opaque {
        return Err(not_float());
    }
    Ok(header.original_len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, Kind};

    /// A generated spectral field as f32.
    fn field_f32(shape: &[usize], slope: f64, seed: u64) -> Vec<f32> {
        generate(Kind::Spectral { slope }, shape, seed)
            .into_iter()
            .map(|x| x as f32)
            .collect()
    }

    /// The f32 values a chunk decodes to.
    fn decoded_f32(bytes: &[u8]) -> Vec<f32> {
        match decompress(bytes).unwrap().0 {
            SampleBuf::F32(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compress_reports_a_met_target_and_decompress_restores_the_shape() {
        let shape = [40, 48];
        let v: Vec<f32> = field_f32(&shape, 3.0, 3);
        let settings = Settings::psnr(60.0).unwrap();
        let (bytes, report) = compress(Samples::F32(&v), &shape, &settings, true).unwrap();
        let report = report.unwrap();
        assert!(report.target_met && report.psnr >= 60.0, "{report:?}");
        assert!(report.ratio > 1.0);
        let (back, layout) = decompress(&bytes).unwrap();
        assert_eq!(layout.shape, shape);
        let SampleBuf::F32(back) = back else {
            panic!("f32 in, f32 out")
        };
        // The report's PSNR is the decoded buffer's own.
        let psnr = metrics::psnr(&v, &back);
        assert!(
            psnr >= 60.0 && (psnr - report.psnr).abs() < 1e-9,
            "{psnr} vs {report:?}"
        );
    }

    #[test]
    fn values_near_the_bottom_of_f64_meet_their_target_in_every_mode() {
        // ZFP and SPERR mangled values under about 1e-289 without an error (a chunk near
        // 1e-290 stored at 4 dB by ZFP): refused there, SZ3 or exact storage takes over
        // under an automatic choice, and ZFP named fails the write with that reason (as a
        // named compressor that refuses a chunk does).
        let shape = [48, 40];
        let field = generate(Kind::Spectral { slope: 3.0 }, &shape, 8);
        for scale in [1e-292, 1e-300] {
            let v: Vec<f64> = field.iter().map(|x| x * scale).collect();
            for mode in [Mode::Predict, Mode::Fast, Mode::Guarantee] {
                for compressor in [
                    crate::wire::CompressorChoice::Auto,
                    crate::wire::CompressorChoice::Zfp,
                ] {
                    let settings = Settings {
                        mode,
                        compressor,
                        ..Settings::psnr(60.0).unwrap()
                    };
                    let bytes = match compress(Samples::F64(&v), &shape, &settings, false) {
                        Ok((bytes, _)) => bytes,
                        Err(e) => {
                            let named = compressor == crate::wire::CompressorChoice::Zfp;
                            assert!(named && e.to_string().contains("transform"), "{e}");
                            continue;
                        }
                    };
                    let (back, _) = decompress(&bytes).unwrap();
                    let SampleBuf::F64(back) = back else {
                        panic!("f64 in, f64 out")
                    };
                    let psnr = metrics::psnr(&v, &back);
                    assert!(psnr >= 60.0, "{scale:e} {mode:?} {compressor:?}: {psnr} dB");
                }
            }
        }
    }

    #[test]
    fn advice_on_a_buffer_ending_in_constant_rows_is_for_the_block_the_write_aims_at() {
        // Rows of 1000 ± 5 ending in four rows of 0: the write trims those rows and
        // proposes for the block. Advice on the whole buffer saw a range about 100× the block's
        // and advised a bound about that much looser than the write's.
        let (rows, cols) = (60, 64);
        let field = generate(Kind::Spectral { slope: 3.0 }, &[rows, cols], 31);
        let mut v: Vec<f32> = field.iter().map(|x| (1000.0 + 5.0 * x) as f32).collect();
        v.resize((rows + 4) * cols, 0.0);
        let shape = [rows + 4, cols];
        let settings = Settings {
            mode: Mode::Predict,
            ..Settings::psnr(60.0).unwrap()
        };
        let advice = advise(Samples::F32(&v), &shape, &settings).unwrap();
        let (_, report) = compress(Samples::F32(&v), &shape, &settings, true).unwrap();
        let report = report.unwrap();
        assert_eq!(advice.source, AdviceSource::Model);
        assert_eq!(advice.codec, report.codec, "{advice:?} {report:?}");
        let factor = advice.bound / report.bound;
        assert!((0.5..2.0).contains(&factor), "{advice:?} {report:?}");
        // The block's PSNR, a few dB over the target; the whole buffer's is far higher.
        assert!((60.0..70.0).contains(&advice.psnr), "{advice:?}");
        assert!(report.psnr > advice.psnr + 20.0, "{advice:?} {report:?}");
    }

    #[test]
    fn a_missing_value_in_the_settings_is_kept_and_left_out_of_the_target() {
        let land = |i: usize| i % 48 < 12 && i / 48 < 30;
        // A 1-D buffer too: predict mode measures series (a kind the model misreads) over
        // the replaced values, which the report must not take for the ocean's PSNR.
        for shape in [vec![40, 48], vec![1920]] {
            a_missing_value_is_left_out_of(&shape, land);
        }
    }

    fn a_missing_value_is_left_out_of(shape: &[usize], land: impl Fn(usize) -> bool) {
        let mut v: Vec<f32> = field_f32(shape, 3.0, 5);
        for (i, x) in v.iter_mut().enumerate() {
            if land(i) {
                *x = 1e20;
            }
        }
        let ocean: Vec<usize> = (0..v.len()).filter(|&i| !land(i)).collect();
        for mode in [Mode::Guarantee, Mode::Fast, Mode::Predict] {
            let settings = Settings {
                mode,
                ..Settings::psnr(60.0).unwrap()
            }
            .with_missing(1e20);
            let (bytes, report) = compress(Samples::F32(&v), shape, &settings, true).unwrap();
            let report = report.unwrap();
            let back = decoded_f32(&bytes);
            let (a, b): (Vec<f32>, Vec<f32>) = ocean.iter().map(|&i| (v[i], back[i])).unzip();
            let psnr = metrics::psnr(&a, &b);
            assert!(
                psnr >= 60.0 && report.target_met,
                "{shape:?} {mode:?}: {psnr} {report:?}"
            );
            // The report measures the ocean, in every mode.
            assert!(
                (report.psnr - psnr).abs() < 1e-6,
                "{shape:?} {mode:?}: {report:?} {psnr}"
            );
            assert!((0..v.len()).filter(|&i| land(i)).all(|i| back[i] == 1e20));
            let least = if shape.len() == 1 { 2.0 } else { 4.0 };
            assert!(report.ratio > least, "{shape:?} {mode:?}: {report:?}");
            let advice = advise(Samples::F32(&v), shape, &settings).unwrap();
            assert!(advice.psnr >= 60.0 && advice.psnr < 200.0, "{advice:?}");
        }
        if shape.len() == 1 {
            return;
        }
        let shape = shape.to_vec();
        // Without it the land's 1e20 is the range a PSNR is measured against.
        let (bytes, _) = compress(
            Samples::F32(&v),
            &shape,
            &Settings::psnr(60.0).unwrap(),
            false,
        )
        .unwrap();
        let back = decoded_f32(&bytes);
        let (a, b): (Vec<f32>, Vec<f32>) = ocean.iter().map(|&i| (v[i], back[i])).unzip();
        assert!(metrics::psnr(&a, &b) < 0.0);
        // f32 data cannot hold every missing value.
        let too_big = Settings::psnr(60.0).unwrap().with_missing(1e300);
        let err = compress(Samples::F32(&v), &shape, &too_big, false).unwrap_err();
        assert!(matches!(err, InsituError::Settings(_)), "{err}");
    }

    #[test]
    fn with_a_missing_value_ssim_is_reported_with_the_missing_values_replaced() {
        let shape = [40, 48];
        let mut v: Vec<f32> = field_f32(&shape, 2.0, 6);
        for (i, x) in v.iter_mut().enumerate() {
            if i % 48 < 12 && i / 48 < 30 {
                *x = if i % 2 == 0 { f32::NAN } else { -f32::NAN };
            }
        }
        // NaN named as the missing value, or not named: NaN marks itself.
        for (mode, named) in [Mode::Guarantee, Mode::Predict]
            .into_iter()
            .flat_map(|m| [(m, true), (m, false)])
        {
            let target = crate::settings::Target::from_value(TargetKind::Ssim, 0.99).unwrap();
            let settings = Settings {
                mode,
                target,
                ..Settings::psnr(60.0).unwrap()
            };
            let settings = match named {
                true => settings.with_missing(f64::NAN),
                false => settings,
            };
            let (bytes, report) = compress(Samples::F32(&v), &shape, &settings, true).unwrap();
            let report = report.unwrap();
            // Left in, the NaNs made SSIM NaN (and a 1e20 fill made it 1): a real figure.
            assert!(
                report.metric >= 0.99 && report.metric < 0.99999 && report.target_met,
                "{mode:?}, named {named}: {report:?}"
            );
            assert!(report.psnr.is_finite(), "{report:?}");
            let back = decoded_f32(&bytes);
            assert!(v.iter().zip(&back).all(|(a, b)| a.is_nan() == b.is_nan()));
        }
    }

    #[test]
    fn scattered_gaps_leave_an_ssim_target_measured_over_the_real_values() {
        // A NaN every 6 rows and columns down to row 54 leaves every window there 2–4%
        // missing and only the windows of the last 9 rows clear: measured over the clear
        // ones alone, the bound was set by the rough bottom rows, where SSIM holds up, and
        // the smooth rows above fell short.
        let shape = [64, 64];
        let smooth = field_f32(&shape, 3.0, 11);
        let rough = field_f32(&shape, 0.0, 12);
        let mut v: Vec<f32> = (0..64 * 64)
            .map(|i| if i / 64 < 55 { smooth[i] } else { rough[i] })
            .collect();
        for i in (0..55).step_by(6) {
            for j in (0..64).step_by(6) {
                v[i * 64 + j] = f32::NAN;
            }
        }
        for target in [0.95, 0.99] {
            let settings = Settings {
                target: crate::settings::Target::from_value(TargetKind::Ssim, target).unwrap(),
                ..Settings::psnr(60.0).unwrap()
            };
            let (bytes, _) = compress(Samples::F32(&v), &shape, &settings, false).unwrap();
            let back = decoded_f32(&bytes);
            // Every window, each gap given the value before it in both.
            let mut last = (0.0, 0.0);
            let (a, b): (Vec<f32>, Vec<f32>) = v
                .iter()
                .zip(&back)
                .map(|(&x, &y)| {
                    if !x.is_nan() {
                        last = (x, y);
                    }
                    (last.0, if x.is_nan() { last.0 } else { last.1 })
                })
                .unzip();
            let every_window = metrics::ssim(&a, &b, &shape);
            assert!(every_window >= target - 0.002, "{target}: {every_window}");
        }
    }

    #[test]
    fn nan_beside_the_named_missing_value_is_missing_to_the_report_too() {
        // The report measured with one marker, the named value where the buffer held it,
        // and the NaN it left made SSIM NaN: "missed" for a chunk stored exactly (two kinds
        // of missing value), and for one whose trailing rows of the named value were
        // trimmed and whose NaN gaps the chooser marked instead.
        let ssim = crate::settings::Target::from_value(TargetKind::Ssim, 0.99).unwrap();
        let settings = Settings {
            target: ssim,
            ..Settings::psnr(60.0).unwrap()
        }
        .with_missing(-9999.0);
        let shape = [64, 64];
        let mut both = field_f32(&shape, 2.0, 6);
        both[100..140].fill(-9999.0);
        both[700] = f32::NAN;
        let mut trimmed = field_f32(&shape, 2.0, 6);
        trimmed[48 * 64..].fill(-9999.0);
        for i in (0..48 * 64).step_by(97) {
            trimmed[i] = f32::NAN;
        }
        for (name, v) in [("both kinds", &both), ("trimmed", &trimmed)] {
            let (_, report) = compress(Samples::F32(v), &shape, &settings, true).unwrap();
            let report = report.unwrap();
            assert!(
                report.metric >= 0.99 && report.target_met,
                "{name}: {report:?}"
            );
        }
    }

    #[test]
    fn an_ssim_target_holds_on_the_real_values_beside_a_large_missing_region() {
        // 48 rows of land over 16 of ocean: 72% of the SSIM windows lie in the land's
        // replacement values, which every codec rebuilds almost exactly.
        let shape = [64, 64];
        for (slope, seed) in [(0.5, 1), (1.0, 2), (1.5, 3)] {
            let mut v = field_f32(&shape, slope, seed);
            v[..48 * 64].fill(f32::NAN);
            for target in [0.95, 0.99, 0.999] {
                let target_ssim =
                    crate::settings::Target::from_value(TargetKind::Ssim, target).unwrap();
                for mode in [Mode::Guarantee, Mode::Fast] {
                    let settings = Settings {
                        mode,
                        target: target_ssim,
                        ..Settings::psnr(60.0).unwrap()
                    };
                    let (bytes, report) =
                        compress(Samples::F32(&v), &shape, &settings, true).unwrap();
                    let back = decoded_f32(&bytes);
                    // The ocean alone: its windows are the ones clear of land.
                    let ocean = metrics::ssim(&v[48 * 64..], &back[48 * 64..], &[16, 64]);
                    assert!(
                        ocean >= target,
                        "{slope} {target} {mode:?}: ocean {ocean}, {report:?}"
                    );
                    let reported = report.unwrap().metric;
                    assert!((reported - ocean).abs() < 1e-9, "{reported} vs {ocean}");
                }
            }
        }
    }

    #[test]
    fn a_report_measures_the_whole_buffer_with_or_without_a_decode() {
        let shape = [40, 48];
        let mut v: Vec<f32> = field_f32(&shape, 3.0, 4);
        let settings = Settings::psnr(50.0).unwrap();
        let report = |v: &[f32]| {
            let data = Samples::F32(v);
            let (bytes, outcome) =
                encode_with(data, &shape, &settings, proposer(&settings).unwrap()).unwrap();
            let report = Report::verified(data, &shape, &settings, &bytes, &outcome, 0.0).unwrap();
            let (psnr, _) = verify(data, &shape, &settings, &bytes).unwrap();
            (report, psnr, outcome.measured.unwrap())
        };
        // The chunk holds the whole buffer: the chooser's measurement is the decode's.
        let (whole, decoded, measured) = report(&v);
        assert_eq!((whole.psnr, whole.metric), (decoded, decoded));
        assert_eq!(measured, decoded);
        // The last 10 rows trimmed as padding (stored exactly): the chooser measured the
        // rows it compressed, the report measures the buffer.
        let fill = v[v.len() - 1];
        v[30 * 48..].fill(fill);
        let (padded, decoded, measured) = report(&v);
        assert_eq!((padded.psnr, padded.metric), (decoded, decoded));
        assert!(
            padded.target_met && decoded > measured + 0.5,
            "{decoded} {measured}"
        );
    }

    #[test]
    fn advice_is_predicted_by_the_model_and_matches_the_write() {
        let shape = [32, 32];
        let v = generate(Kind::Spectral { slope: 2.5 }, &shape, 5);
        let data = Samples::F64(&v);
        let settings = Settings::psnr(50.0).unwrap();
        let a = advise(data, &shape, &settings).unwrap();
        assert_eq!(a.source, AdviceSource::Model);
        assert_eq!(a.compressions, 0, "model advice compresses nothing");
        assert!(a.psnr >= 50.0 && a.ratio > 1.0, "{a:?}");
        // A predict-mode write makes the choice the advice announced.
        let predict = Settings {
            mode: Mode::Predict,
            ..settings
        };
        let (_, outcome) =
            encode_with(data, &shape, &predict, proposer(&predict).unwrap()).unwrap();
        assert_eq!((outcome.codec, outcome.bound), (a.codec, a.bound));
    }

    #[test]
    fn advice_without_a_model_is_measured_and_honest() {
        let shape = [32, 32];
        let v = generate(Kind::Spectral { slope: 2.5 }, &shape, 5);
        let data = Samples::F64(&v);
        // Absolute bounds never consult the model: compressed once and measured.
        let settings = Settings::parse(&[1, 3, 3]).unwrap();
        let a = advise(data, &shape, &settings).unwrap();
        assert_eq!(a.source, AdviceSource::Measured);
        assert_eq!(a.compressions, 1);
        let (bytes, _) =
            encode_with(data, &shape, &settings, proposer(&settings).unwrap()).unwrap();
        let (psnr, _) = verify(data, &shape, &settings, &bytes).unwrap();
        assert_eq!(a.psnr, psnr);
        // A ratio target on a 2-D buffer is met by SPERR's fixed rate, not the model: the
        // advice is that write, measured (ratio 8, predict mode).
        let settings = Settings::parse(&[8, 2, 0, 0, 1]).unwrap();
        let a = advise(data, &shape, &settings).unwrap();
        assert_eq!(a.source, AdviceSource::Measured);
        assert_eq!((a.codec, a.bound), (CodecId::Sperr, 0.0));
        let (bytes, _) =
            encode_with(data, &shape, &settings, proposer(&settings).unwrap()).unwrap();
        assert_eq!(
            a.ratio,
            metrics::compression_ratio(data.byte_len(), bytes.len())
        );
        assert!(a.ratio >= 8.0 && a.psnr.is_finite(), "{a:?}");
        // A buffer whose mean meets the target goes to SPERR beyond its range, not to the
        // model: the advice is that write, measured (a point at 100 in 128² of noise at
        // ±0.01: the mean alone is 42 dB).
        let shape = [128, 128];
        let sky = crate::synth::faint_sky(&shape, 5, &[9001]);
        let data = Samples::F64(&sky);
        let settings = Settings::psnr(40.0).unwrap();
        let a = advise(data, &shape, &settings).unwrap();
        assert_eq!(
            (a.source, a.codec, a.compressions),
            (AdviceSource::Measured, CodecId::Sperr, 1)
        );
        assert!(a.psnr >= 40.0 && a.ratio > 1000.0, "{a:?}");
        // Values spanning more than f64 holds (a range of +inf) are stored exactly, so
        // advised so; the model scored them as constant and advised a bound of inf.
        let mut wide = v.clone();
        (wide[0], wide[1]) = (-1e308, 1e308);
        let a = advise(Samples::F64(&wide), &[32, 32], &settings).unwrap();
        assert_eq!(
            (a.source, a.codec, a.bound),
            (AdviceSource::Measured, CodecId::Lossless, 0.0)
        );
    }

    #[test]
    fn chunks_record_what_they_were_written_for() {
        let shape = [32, 40];
        let v = generate(Kind::Spectral { slope: 3.0 }, &shape, 9);
        let settings = Settings::psnr(55.0).unwrap();
        let (bytes, _) = compress(Samples::F64(&v), &shape, &settings, false).unwrap();
        let (header, _) = chunk::parse(&bytes).unwrap();
        let q = header.quality.expect("quality record");
        assert_eq!(
            (q.kind, q.target, q.mode),
            (TargetKind::Psnr, 55.0, Mode::Guarantee)
        );
        assert!(q.measured.is_some_and(|m| m >= 55.0), "{q:?}");
    }

    #[test]
    fn bad_shapes_are_invalid_arguments() {
        let v = vec![1.0f32; 10];
        let s = Settings::psnr(60.0).unwrap();
        for shape in [&[][..], &[0, 10], &[3, 3], &[11]] {
            let err = compress(Samples::F32(&v), shape, &s, false).unwrap_err();
            assert!(matches!(err, InsituError::InvalidArgument(_)), "{shape:?}");
        }
    }
}
