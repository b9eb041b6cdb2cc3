//! Target → codec and bound, for one chunk; then the predict or guarantee loop.
//!
//! The first proposal comes from a [`Proposer`]: the learned surrogate
//! ([`crate::learned`]) or, for absolute bounds and as an opt-in fallback, [`Analytic`]:
//! SZ3's PSNR formula, `eb = R·10^(−(T + 10·log10(1 − 2/3·0.99))/20)`,
//! about 1.715× the safe point-wise bound. In guarantee mode the chunk is decoded and the
//! real metric measured, and the bound is moved towards the target by secant steps until a
//! kept attempt lands just above it: a ratio within a few percent of an exhaustive search
//! needs that precision, since at 40 dB one dB of overshoot costs 20–40% of the ratio. The
//! model's runner-up compressor gets the same search (unless a dataset's memory expects it
//! to lose by far), and so does the third compressor on chunks of a kind the model
//! misreads ([`crate::unfamiliar`]), where its ranking of compressors fails too, and on
//! chunks where that ranking proved wrong (the runner-up won, the first compressor
//! stored far more than predicted, or a compressor's PSNR rose with a looser bound).
//! SPERR at under a bit per value lands by rate instead: one stream coded past the
//! target, then cut to the byte by decodes alone (`Search::land_rate`). When
//! nothing met the target, the safe bound
//! `R·10^(−T/20)` (MSE ≤ eb², so PSNR ≥ T for any codec that keeps its bound), then
//! lossless. A PSNR target is therefore always met (a ratio whenever a bound reaches it).
//!
//! Predict and fast mode meet a ratio target on 2-D and 3-D chunks without the model:
//! SPERR's fixed-rate mode, at the bits per value the ratio leaves (`fixed_rate`). Every
//! mode meets a PSNR target its chunk's mean alone meets without the model too: SPERR at a
//! bound beyond the range, measured ([`mean_serves`], [`crate::near_mean`]).
//!
//! Fast mode is guarantee mode on a small budget: it measures the model's choice and
//! spends one more compression only on a miss or a large overshoot, and searches the
//! runner-up only when the first compressor's payload was far larger than predicted or
//! the model ranks the two within a quarter of each other's ratio (a close call), for
//! two to four times the time of one compression instead of four to seven. A ratio target
//! SPERR's fixed rate does not serve (1-D chunks, SZ3 or ZFP named) is searched as in
//! guarantee mode, in up to `landing::RATIO_STEPS` (8) compressions.
//!
//! Predict mode compresses its runner-up once, and keeps the smaller payload, when the
//! first payload stored under half its predicted ratio at a low rate
//! (`Search::predict_runner_up`). It keeps its payload unless the payload's size shows the
//! model misread the chunk ([`SURPRISE_FACTOR`]), the chunk is of a kind the model misreads
//! ([`crate::unfamiliar`], series included), SZ3 stored it below [`SZ3_ERRATIC_BITS`] per
//! value or by first-order Lorenzo at a bound whose errors, spread evenly, would miss the
//! target, or the proposal was aimed inside the model's calibrated margin
//! ([`Proposal::needs_look`]): then it measures, and corrects a PSNR miss as fast mode
//! does, unless the bound is at or below the safe bound with a codec that keeps it. A
//! ratio target's size needs no decode: a first payload short of it or more than
//! [`SURPRISE_FACTOR`] past it is searched as in guarantee mode.
//!
//! The search over one chunk is `search`'s; where its next bound lies (the budgets, the
//! bracket of bounds measured and its secant steps, the ratio search's steps) is
//! `landing`'s.

use crate::chunk;
use crate::codec::{codec_for, CodecError, Sperr};
use crate::features::Extent;
use crate::metrics;
use crate::near_mean;
use crate::samples::Samples;
use crate::settings::Settings;
use crate::unfamiliar;
use crate::wire::{CodecId, CompressorChoice, Mode, TargetKind};

mod landing;
mod search;

use landing::Budget;
use search::Search;

/// How far (as a factor, either way) a payload's ratio may lie from the model's prediction
/// before predict mode stops trusting the model's PSNR for that chunk and measures it.
///
/// A model that gets the size that wrong has misread the chunk, and its PSNR prediction
/// came from the same misreading. Replaying predict mode's proposals at 30–100 dB: on
/// ../shared/data (in sample) 44 of 784 (5.6%) were this far off, among them the only
/// miss (the SDSS catalog at 30 dB, by 0.3 dB); on 18 generated arrays unlike the
/// training data (f64 values on a large offset, checkerboards, isolated spikes, Poisson
/// counts, sea-ice-like plateaus) 31 of 272 proposals missed, by up to 41 dB, and 28 of
/// them were this far off (docs/bench.md, "Predict mode's second look").
pub const SURPRISE_FACTOR: f64 = 3.0;

/// Stored bits per value below which predict mode measures an SZ3 payload
/// (`Search::sz3_erratic`). Below a bit per value most of a chunk reconstructs from the
/// interpolation of a few anchor values, and SZ3's PSNR jumps around the bound: on a
/// low-Mach bubble's internal energy (pyro-hydro, 128², f64) it measured 34.6–41.5 dB at
/// bounds within a factor 1.4 of the model's choice, not in their order, and 38.0–38.4 dB where
/// the model predicted 45.0. On a seventh unseen set every chunk predict mode missed was
/// such a payload, at 0.02–0.64 bits per value: two of 72 at 40 dB in the bench's chunks,
/// seven in 64² chunks (shock fronts crossing plateaus, a nearly constant chunk 8.5 dB
/// short at 60 dB); above a bit per value the model's SZ3 errors stayed within its margins
/// there and on ../shared/data, where 5 of the 140 proposals it trusted are SZ3 below it
/// (docs/bench.md, "SZ3 at erratic rates").
pub const SZ3_ERRATIC_BITS: f64 = 1.0;

/// [`Outcome::reason`] of a chunk whose mean alone meets a PSNR target, coded by SPERR at a
/// bound beyond its range without asking the proposer ([`mean_serves`]).
pub const MEAN_SERVES: &str = "mean meets the target";

/// [`Outcome::reason`] of a chunk of values that are not f32 or f64, stored losslessly
/// whatever the target.
pub const NOT_FLOAT: &str = "not f32/f64: lossless";

/// [`Outcome::reason`] of a chunk HDF5 had decoded and handed back unchanged, stored again
/// as it was (`h5::rewrites`).
pub const STORED_AGAIN: &str = "decode written back unchanged: stored as before";

/// [`Outcome::reason`] of a chunk stored losslessly because the compressor the user named
/// cannot resolve the bound proposed for it.
pub const TOO_FINE: &str = "bound finer than the codec resolves: lossless";

/// [`Outcome::reason`] of a chunk whose headers and records alone store more than its
/// ratio target allows: no bound reaches it, so it is stored exactly rather than at the
/// loosest bound (PSNR 0.9 dB for 64 values at 50, still short). Such a chunk holds fewer
/// raw bytes than the target times its headers, so this costs at most that many.
pub const RATIO_UNREACHABLE: &str = "ratio unreachable, headers exceed its budget: lossless";

/// What the chooser did for one chunk.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Codec of the payload.
    pub codec: CodecId,
    /// Absolute bound given to the codec (0 for lossless, and for a SPERR stream coded to
    /// a size: a ratio target's fixed rate, guarantee mode's landing by rate).
    pub bound: f64,
    /// The codec's bytes.
    pub payload: Vec<u8>,
    /// The proposer's predicted metric for the compressor stored, at the bound first
    /// proposed for it, if it predicts one (the first proposal's, the runner-up's or the
    /// third compressor's).
    pub predicted: Option<f64>,
    /// The measured metric of the kept payload (guarantee and fast mode, predict mode's
    /// checked chunks and ratio searches), in the target's unit; none for lossless chunks.
    pub measured: Option<f64>,
    /// Number of compressions spent.
    pub compressions: u32,
    /// Why the chooser ended where it did: "proposal" (the first attempt kept),
    /// "loosened" (the first met the target, a looser one was kept), "corrected" (the first
    /// missed, a tighter one was kept), "runner-up" (another compressor's search, or
    /// predict mode's one compression of it, was kept),
    /// "third compressor" (the last one's, [`Proposal::third`]),
    /// "checked" (predict mode measured a proposal, one the model misread
    /// ([`SURPRISE_FACTOR`]), of a kind it misreads ([`crate::unfamiliar`]), SZ3's below
    /// [`SZ3_ERRATIC_BITS`], one aimed inside the model's calibrated margin
    /// ([`Proposal::needs_look`]) or one whose decode may come back exact, and it met the
    /// target),
    /// "mean meets the target" (SPERR coding next to nothing, [`crate::near_mean`]), "safe
    /// bound", or a lossless reason.
    pub reason: &'static str,
    /// How far the runner-up compressor's first attempt was from beating the kept payload,
    /// when one was searched: the least it could store at the target (its size less the
    /// most a looser bound can save, a bit per value per 6 dB of overshoot) over the kept
    /// payload's size; for a runner-up skipped without an attempt, its floor
    /// ([`crate::codec::Codec::least_stored`]) over that size. Above 1 it could not win; a
    /// dataset's [`crate::memory::Memory`] learns from it when the runner-up is worth
    /// searching.
    pub runner_up_gap: Option<f64>,
}

impl Outcome {
    /// True when the kept payload is the first proposal or a loosening of it, i.e. the
    /// proposal itself was not found to miss (a session learns from that difference).
    pub fn proposal_held(&self) -> bool {
        matches!(self.reason, "proposal" | "loosened" | "checked")
    }
}

/// A first guess for a chunk: codec, absolute bound and, when known, the predicted metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proposal {
    /// Codec to try.
    pub codec: CodecId,
    /// Absolute error bound.
    pub bound: f64,
    /// Predicted value of the target metric.
    pub predicted: Option<f64>,
    /// Predicted compression ratio at this bound, if the proposer predicts one.
    pub predicted_ratio: Option<f64>,
    /// The second choice: another compressor, searched when the mode's budget allows
    /// (guarantee mode; fast mode when the first compressor's payload was far larger than
    /// predicted or the ranking is a close call) and abandoned as soon as it cannot beat
    /// the first; compressed once in predict mode when the first payload was far larger
    /// than predicted at a low rate.
    pub runner_up: Option<Alternative>,
    /// The one compressor left after the first and the runner-up, which guarantee mode
    /// searches too, the same way, on chunks the model is known to misread
    /// ([`crate::unfamiliar`]): there its ranking of compressors fails as well (a 16-bit
    /// MRI slice at 40 dB: the model ranked SZ3 then ZFP, SPERR stored 2.1–2.6× less than
    /// either, docs/bench.md "Unfamiliar data"); and on chunks where the ranking proved
    /// wrong: the runner-up won, or the first compressor stored far more than predicted.
    pub third: Option<Alternative>,
    /// Leave the runner-up unsearched when the first compressor's kept payload stores at
    /// most this many bytes: set by [`crate::memory`] when the runner-up is expected to lose
    /// by far and the first compressor's size shows the chunk is like the ones it lost on.
    pub skip_runner_up_within: Option<usize>,
    /// Predict mode measures this proposal's payload (and corrects a miss): it was aimed
    /// inside the model's calibrated margin for its compressor and band of predicted
    /// excess, where that margin is wider than predict mode aims with there
    /// ([`crate::learned::PREDICT_LOOK_MARGIN_DB`]), or moved by what the dataset's
    /// earlier chunks taught ([`crate::memory`]); or it is SZ3's PSNR formula, without
    /// the model ([`Analytic`]).
    pub needs_look: bool,
}

/// Another compressor's best proposal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alternative {
    /// Codec to try.
    pub codec: CodecId,
    /// Absolute error bound proposed for it.
    pub bound: f64,
    /// Predicted value of the target metric at this bound, if the proposer predicts one:
    /// the chunk's record keeps it where memory puts this compressor first.
    pub predicted: Option<f64>,
    /// Predicted compression ratio at this bound, if the proposer predicts one.
    pub predicted_ratio: Option<f64>,
    /// As [`Proposal::needs_look`], for predict mode's runner-up kept in its place.
    pub needs_look: bool,
}

/// Makes the first proposal for a chunk. The surrogate implements this too.
pub trait Proposer {
    /// Proposes a codec and bound for `data` (all finite, `extent.range()` > 0) to meet
    /// the target.
    fn propose(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        extent: Extent,
        settings: &Settings,
    ) -> Result<Proposal, SelectError>;

    /// Told that `codec`, which this proposer proposed first (and SZ3 is asked for in its
    /// place, a compressor chosen automatically) or as a runner-up or third compressor
    /// (told once the chunk is done), refused the chunk's bound as finer than it resolves:
    /// a proposer that moved `codec`'s bound may have moved it too far. Not told of other
    /// refusals (SPERR and values of 1e30). Nothing by default.
    fn refused(&self, _codec: CodecId) {}
}

/// Why no payload could be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// A codec failed in a way no fallback covers.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The proposer could not run (model or onnxruntime missing, ...).
    #[error("{0}")]
    Proposer(String),
    /// The chunk could not be assembled.
    #[error(transparent)]
    Chunk(#[from] crate::chunk::ChunkError),
}

/// True for a codec's refusal of a bound finer than it resolves
/// ([`CodecError::BoundTooFine`]: SPERR below 2^−48 of the chunk's largest magnitude, zfp
/// below 2^−22 of it on f32), or of a bound that underflowed to 0 (a chunk of f64 values a
/// few subnormal steps apart, or a 400 dB target on values near f64's smallest normal,
/// whose writes failed): a search stops there, and when nothing coarser met the target,
/// SZ3 (for an automatic choice) or exact storage does.
fn too_fine(e: &SelectError) -> bool {
    match e {
        SelectError::Codec(CodecError::BoundTooFine { .. }) => true,
        SelectError::Codec(CodecError::InvalidBound { bound, .. }) => *bound == 0.0,
        _ => false,
    }
}

/// True for any codec's refusal of an attempt after the first ([`too_fine`] or a library
/// error): the search stops there and keeps what it found, as for a bound too fine, rather
/// than failing a write that a bound tried before, the safe bound, SZ3 or exact storage
/// still serves.
fn refused(e: &SelectError) -> bool {
    matches!(e, SelectError::Codec(_))
}

/// SZ3's PSNR formula, for every compressor. No model, no state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Analytic;

/// The bound SZ3's PSNR mode uses for `target` dB over range `range`.
pub fn sz3_formula_bound(range: f64, target_db: f64) -> f64 {
    range * 10f64.powf(-(target_db + 10.0 * (1.0 - 2.0 / 3.0 * 0.99f64).log10()) / 20.0)
}

/// The PSNR over range `range` of errors spread evenly over ±`bound` (MSE bound²/3), as a
/// quantiser's are when the values it rounds are spread wider than its step.
pub fn even_errors_psnr(range: f64, bound: f64) -> f64 {
    20.0 * (range / bound).log10() + 10.0 * 3f64.log10()
}

/// The point-wise bound that guarantees PSNR ≥ `target_db` for any codec that keeps it,
/// with a hair of headroom for the codecs' own rounding.
pub fn safe_bound(range: f64, target_db: f64) -> f64 {
    range * 10f64.powf(-target_db / 20.0) * (1.0 - 1e-5)
}

/// The codec a restriction names, or SZ3 for automatic choice (the formula is SZ3's).
fn restricted_or(choice: CompressorChoice, default: CodecId) -> CodecId {
    match choice {
        CompressorChoice::Auto => default,
        CompressorChoice::Sz3 => CodecId::Sz3,
        CompressorChoice::Zfp => CodecId::Zfp,
        CompressorChoice::Sperr => CodecId::Sperr,
    }
}

impl Proposer for Analytic {
    fn propose(
        &self,
        _data: Samples<'_>,
        _shape: &[usize],
        extent: Extent,
        settings: &Settings,
    ) -> Result<Proposal, SelectError> {
        let range = extent.range();
        let codec = restricted_or(settings.compressor, CodecId::Sz3);
        let t = settings.target.value();
        let bound = match settings.target.kind {
            TargetKind::Psnr => sz3_formula_bound(range, t),
            TargetKind::AbsBound => t,
            // No closed form: start at 60 dB's formula bound and let the search move it.
            TargetKind::Ssim | TargetKind::Ratio => sz3_formula_bound(range, 60.0),
        };
        Ok(Proposal {
            codec,
            bound,
            predicted: None,
            predicted_ratio: None,
            runner_up: None,
            third: None,
            skip_runner_up_within: None,
            // The formula assumes errors spread evenly over ±eb, which SZ3's first-order
            // Lorenzo pipeline does not always give (5% of ../shared/data's chunks fell
            // short, by up to 2 dB): predict mode measures it.
            needs_look: settings.target.kind == TargetKind::Psnr,
        })
    }
}

/// The finite value range of `data`; 0 for constant or empty data.
pub fn value_range(data: Samples<'_>) -> f64 {
    Extent::of(data).range()
}

/// Whole absolute bounds from which one spanning a chunk's range looks like a float's bit
/// pattern ([`say_if_bound_spans_the_range`]): every positive f32 from 1e-30 up has bits
/// over 2^27; a bound of 0.01 on a chunk nearly flat is no mistake.
const BIT_PATTERN_LIKE: u32 = 1 << 23;

/// Says once per process that an absolute bound given as a large whole number is at least a
/// chunk's value range: every value may then become any other, and the chunk is stored as
/// about its mean. Such a bound is most likely a float's bit pattern given where the
/// bound's integer was expected (1e-3f is 981668463), which cd_values cannot tell from a
/// bound that large.
fn say_if_bound_spans_the_range(settings: &Settings, range: f64) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let target = settings.target;
    let bound = target.value();
    let whole_and_large = target.decimals == 0 && target.mantissa >= BIT_PATTERN_LIKE;
    let spans = target.kind == TargetKind::AbsBound && whole_and_large && bound >= range;
    if spans && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::observe::warn(&format!(
            "an absolute bound of {bound:e} is at least a chunk's value range ({range:e}): \
             its values are stored as about their mean. If that bound is a float's bit \
             pattern, give it as mantissa and decimals (`deepcq cdvalues --abs 1e-3`); \
             said once per process"
        ));
    }
}

/// Compresses one chunk to the target. Opaque, non-finite and constant data go to the
/// lossless codec (exact, so every target is met).
pub fn compress_to_target(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
) -> Result<Outcome, SelectError> {
    compress_to_target_where(data, shape, settings, proposer, None)
}

/// [`compress_to_target`] for a block whose `missing` values (the dataset's fill value,
/// replaced by neighbouring real values in `data`, [`crate::encode::float_chunk_with_fill`])
/// the decoder restores exactly: a measured PSNR is measured over the real values only,
/// a measured SSIM over the windows clear of missing values
/// ([`metrics::SsimReference::clear_of`]).
pub fn compress_to_target_where(
    data: Samples<'_>,
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
    missing: Option<&chunk::Missing>,
) -> Result<Outcome, SelectError> {
    let extent = Extent::of(data);
    if let Some(reason) = exact_only(data, extent, settings) {
        return lossless(data, shape, 0, reason);
    }
    say_if_bound_spans_the_range(settings, extent.range());
    if !ratio_reachable(data, shape, settings) {
        return lossless(data, shape, 0, RATIO_UNREACHABLE);
    }
    let spent = match fixed_rate(data, shape, settings) {
        Ok(outcome) => return prefer_exact(data, shape, outcome, None),
        Err(spent) => spent,
    };
    let mut search = Search::new(data, shape, settings);
    search.compressions = spent;
    search.missing = missing;
    let _ = search.extent.set(extent);
    if let Some((outcome, mean_db)) = search.near_mean(extent)? {
        return prefer_exact(data, shape, outcome, Some(mean_db));
    }
    let Some((proposal, first)) = search.first_attempt(proposer, extent)? else {
        return search.lossless(TOO_FINE);
    };
    let range = extent.range();
    // A prediction that is no number (a damaged model, on this chunk) is measured in
    // predict mode too, where it would otherwise be trusted.
    let unfounded = proposal.predicted.is_some_and(|p| !p.is_finite());
    let outcome = match (settings.mode, settings.target.kind) {
        // SZ3 and SPERR keep a point-wise bound; ZFP's tolerance is no promise, so predict
        // mode decodes its payloads too.
        (Mode::Predict, TargetKind::AbsBound) if first.codec != CodecId::Zfp => {
            first.into_outcome("proposal", None)
        }
        (Mode::Predict, TargetKind::Ssim) if !unfounded => first.into_outcome("proposal", None),
        (_, TargetKind::AbsBound) => search.checked_bound(first)?,
        (Mode::Predict, TargetKind::Psnr) => search.predict_psnr(first, &proposal, range)?,
        (Mode::Predict, TargetKind::Ratio) => search.predict_ratio(first)?,
        (_, TargetKind::Psnr | TargetKind::Ssim) => search.guarantee(first, &proposal, range)?,
        (_, TargetKind::Ratio) => search.reach_ratio(first)?,
    };
    for &codec in &search.refused_alternatives {
        proposer.refused(codec);
    }
    let predicted = predicted_for(&proposal, outcome.codec);
    prefer_exact(data, shape, outcome, predicted)
}

/// The model's prediction for the compressor a chunk was stored with, at the bound it was
/// proposed: the first proposal's, the runner-up's or the third compressor's, whichever
/// won; none for lossless storage.
fn predicted_for(proposal: &Proposal, codec: CodecId) -> Option<f64> {
    let first = (proposal.codec, proposal.predicted);
    let others = [proposal.runner_up, proposal.third]
        .into_iter()
        .flatten()
        .map(|alt| (alt.codec, alt.predicted));
    std::iter::once(first)
        .chain(others)
        .find(|&(c, _)| c == codec)
        .and_then(|(_, predicted)| predicted)
}

/// The PSNR of `data`'s mean ([`near_mean::mean_psnr`]) when it meets a PSNR target of
/// `settings` that allows SPERR: such a chunk goes to SPERR at a bound beyond its range,
/// not to the proposer.
pub fn mean_serves(data: Samples<'_>, extent: Extent, settings: &Settings) -> Option<f64> {
    (settings.target.kind == TargetKind::Psnr && sperr_allowed(settings))
        .then(|| near_mean::mean_psnr(data, extent, settings.target.value()))
        .flatten()
}

/// Why `data` can only be stored exactly, whatever the target: values that are not f32
/// or f64, a constant chunk, NaN or ±Inf (no lossy codec bounds them), values spanning
/// more than f64 holds (every bound, a share of the range, would be infinite), an SSIM
/// target of 1 (only an exact copy has it; predict mode would otherwise keep the model's
/// pick).
fn exact_only(data: Samples<'_>, extent: Extent, settings: &Settings) -> Option<&'static str> {
    let range = extent.range();
    if matches!(data, Samples::Opaque { .. }) || extent.finite < data.len() || range == 0.0 {
        return Some(match data {
            Samples::Opaque { .. } => NOT_FLOAT,
            _ if range == 0.0 => "constant: lossless",
            _ => "NaN/Inf present: lossless",
        });
    }
    if range.is_infinite() {
        return Some("range beyond f64: lossless");
    }
    (settings.target.kind == TargetKind::Ssim && settings.target.value() >= 1.0)
        .then_some("SSIM 1: lossless")
}

/// How much larger than the lossy chunk the lossless estimate of a sample
/// ([`crate::codec::Lossless::estimated_len`], which errs large) may come out for exact
/// storage to be tried on the whole chunk.
const LOSSLESS_HOPE: f64 = 2.0;

/// `o` with the metric predicted for the first proposal, or exact storage where that is
/// smaller: tiny or noisy chunks can come out larger than they went in, and a bound at the
/// values' precision decodes exactly (PSNR 400 on f32: SZ3 and SPERR stored 106–119 kB
/// where lossless took 80), so exact storage is then at least as good. So it is on
/// fields zstd takes apart better than any lossy codec's model: a checkerboard mask, 264×
/// exact where SZ3 stored 96× for 40 dB; piecewise constant steps, counts of events, a
/// field half of one value, at 60–80 dB. Where a sample's lossless estimate comes within
/// [`LOSSLESS_HOPE`] of the lossy chunk, the whole chunk is compressed exactly too and the
/// smaller kept.
fn prefer_exact(
    data: Samples<'_>,
    shape: &[usize],
    mut o: Outcome,
    predicted: Option<f64>,
) -> Result<Outcome, SelectError> {
    o.predicted = predicted;
    let exact_decode = o.measured == Some(f64::INFINITY) && o.codec != CodecId::Lossless;
    // Compared as wrapped, header included: on a chunk of a few values the header's share
    // outweighs what a lossy payload saves over the raw values (3 values at an unreachable
    // ratio: 45 bytes from ZFP's loosest bound, 42 exact). Both carry the same quality
    // record, so it is left out of both.
    let stored =
        |o: &Outcome| chunk::wrap(o.codec, &data, shape, o.bound, None, None, &o.payload).len();
    let lossy_len = o.payload.len() + chunk::header_len(shape);
    let near_raw = lossy_len >= data.byte_len();
    // A chunk its mean serves is noise about its mean, stored in about 40 bytes: exact
    // storage never comes near, and the estimate would cost a share of that compression.
    let may_win = || {
        if o.reason == MEAN_SERVES {
            return false;
        }
        let estimate = crate::codec::Lossless::estimated_len(data, shape);
        log::trace!("lossless estimate {estimate:?}, lossy {lossy_len} bytes");
        estimate.is_ok_and(|n| (n as f64) < LOSSLESS_HOPE * lossy_len as f64)
    };
    if o.codec != CodecId::Lossless
        && (exact_decode || near_raw && stored(&o) >= data.byte_len() || may_win())
    {
        let mut exact = lossless(data, shape, o.compressions, "lossless smaller than lossy")?;
        log::debug!(
            "lossless tried: {} bytes, {:?} {} bytes",
            stored(&exact),
            o.codec,
            stored(&o)
        );
        if stored(&exact) < stored(&o) {
            // What the search learned of the runner-up still holds for the next chunk.
            exact.runner_up_gap = o.runner_up_gap;
            return Ok(exact);
        }
    }
    Ok(o)
}

/// Whether `codec` at `bound` may give `data` back exactly, so that a decode may show
/// lossless storing less than the lossy payload ([`prefer_exact`]): SZ3 at a bound below
/// the step of a lattice the values lie on ([`unfamiliar::coarse_lattice_step`]).
///
/// Measured over 11,247 chunks predict mode decoded on four unseen sets of integer-source
/// arrays (docs/bench.md): chunks certain to meet the target came back exact from SZ3 at
/// bounds of 0.002–0.1 steps (374 of 2,138 below a step), never at a step or more (0 of
/// 242), and never from SPERR (0 of 337).
fn may_decode_exactly(codec: CodecId, bound: f64, data: Samples<'_>) -> bool {
    codec == CodecId::Sz3 && unfamiliar::coarse_lattice_step(data).is_some_and(|step| bound < step)
}

/// Bytes SPERR's fixed-rate stream adds to its bit budget (36–44 measured), with room.
const SPERR_RATE_HEADERS: f64 = 48.0;

/// Bytes kept free in a fixed-rate chunk for a padding record the chunk may carry.
const FIXED_RATE_SLACK: usize = 24;

/// True when a chunk of `shape` under `settings` goes to SPERR's fixed-rate mode (a ratio
/// target in predict or fast mode, a 2-D or 3-D chunk, SPERR allowed) rather than to the
/// model, unless SPERR refuses it or the ratio leaves no room for the headers.
pub fn fixed_rate_applies(shape: &[usize], settings: &Settings) -> bool {
    matches!(settings.mode, Mode::Predict | Mode::Fast)
        && settings.target.kind == TargetKind::Ratio
        && sperr_allowed(settings)
        && crate::samples::fit_rank(shape, 3).len() >= 2
}

/// Whether `settings` let SPERR store a chunk: chosen automatically or named.
fn sperr_allowed(settings: &Settings) -> bool {
    matches!(
        settings.compressor,
        CompressorChoice::Auto | CompressorChoice::Sperr
    )
}

/// Predict and fast mode's answer to a ratio target for 2-D and 3-D chunks when SPERR may
/// be used: SPERR's fixed-rate mode at the bits per value that the ratio leaves after the
/// chunk's headers, so the stored chunk (header included) meets the ratio in one
/// compression, without the model, and with the best quality SPERR gets in that size. The
/// model's ratio predictions are too uncertain (its calibrated margin asks for 4.55× the
/// target) to pick a bound that just reaches it; guarantee mode's search reaches 1–4 dB
/// more PSNR at the same size, for 3–4 compressions. The chunk records no point-wise bound
/// (0 in its header), and as measured ratio the one its size gives with the padding slack
/// counted (at most the stored chunk's). An error, with the compressions it spent, when
/// SPERR cannot take the chunk (1-D, fill values), the ratio leaves no room for its headers
/// or two streams came out too large: the model's choice then, counted from there.
fn fixed_rate(data: Samples<'_>, shape: &[usize], settings: &Settings) -> Result<Outcome, u32> {
    if !fixed_rate_applies(shape, settings) {
        return Err(0);
    }
    let chunk_len = |payload: &[u8]| chunk::header_len(shape) + FIXED_RATE_SLACK + payload.len();
    let allowed = data.byte_len() as f64 / settings.target.value();
    let values = data.len() as f64;
    let mut bits = 8.0 * (allowed - chunk_len(&[]) as f64 - SPERR_RATE_HEADERS) / values;
    for compressions in 1..=2 {
        let spent = compressions - 1;
        if bits <= 0.0 {
            return Err(spent);
        }
        let payload = match crate::codec::Sperr.encode_rate(data, shape, bits) {
            Ok(payload) => payload,
            Err(e) => {
                log::info!("{e}; the model's choice instead of SPERR's fixed rate");
                return Err(spent);
            }
        };
        let excess = chunk_len(&payload) as f64 - allowed;
        if excess <= 0.0 {
            let ratio = metrics::compression_ratio(data.byte_len(), chunk_len(&payload));
            return Ok(Outcome {
                codec: CodecId::Sperr,
                bound: 0.0,
                payload,
                predicted: None,
                measured: Some(ratio),
                compressions,
                reason: "fixed rate",
                runner_up_gap: None,
            });
        }
        bits -= 8.0 * (excess + SPERR_RATE_HEADERS) / values;
    }
    Err(2)
}

/// False for a ratio target the chunk's header alone stores more than: no bound reaches it.
fn ratio_reachable(data: Samples<'_>, shape: &[usize], settings: &Settings) -> bool {
    let budget = data.byte_len() as f64 / settings.target.value();
    settings.target.kind != TargetKind::Ratio || (chunk::header_len(shape) as f64) < budget
}

/// `data` stored by the lossless codec for `reason`, after `compressions` others.
pub(crate) fn lossless(
    data: Samples<'_>,
    shape: &[usize],
    compressions: u32,
    reason: &'static str,
) -> Result<Outcome, SelectError> {
    let payload = codec_for(CodecId::Lossless).encode(data, shape, 0.0)?;
    Ok(Outcome {
        codec: CodecId::Lossless,
        bound: 0.0,
        payload,
        predicted: None,
        measured: None,
        compressions: compressions + 1,
        reason,
        runner_up_gap: None,
    })
}

/// Proposers with a known bias, for the tests of the choosers built on [`compress_to_target`].
#[cfg(test)]
pub(crate) mod fixed {
    use super::*;

    /// Proposes `codec` at the formula bound, with SPERR as the runner-up when
    /// `runner_up`.
    #[derive(Clone, Copy)]
    pub(crate) struct Fixed {
        pub(crate) codec: CodecId,
        pub(crate) runner_up: bool,
        /// Factor on SZ3's formula bound: below 1, a model that underrates the chunk.
        pub(crate) scale: f64,
    }

    impl Proposer for Fixed {
        fn propose(
            &self,
            _data: Samples<'_>,
            _shape: &[usize],
            extent: Extent,
            settings: &Settings,
        ) -> Result<Proposal, SelectError> {
            let bound = self.scale * sz3_formula_bound(extent.range(), settings.target.value());
            Ok(Proposal {
                codec: self.codec,
                bound,
                predicted: None,
                predicted_ratio: None,
                runner_up: self.runner_up.then_some(Alternative {
                    codec: CodecId::Sperr,
                    bound,
                    predicted: None,
                    predicted_ratio: None,
                    needs_look: false,
                }),
                third: None,
                skip_runner_up_within: None,
                needs_look: false,
            })
        }
    }

    /// `fixed`'s proposal claiming what a model would: a PSNR `over` dB above the target
    /// for itself and half a dB more for its runner-up (so that a record tells whose
    /// prediction it kept), `ratio` for itself and `runner_up_ratio` for its runner-up,
    /// and flagged for a look or not.
    #[derive(Clone, Copy)]
    pub(crate) struct Claiming {
        pub(crate) fixed: Fixed,
        pub(crate) over: Option<f64>,
        pub(crate) ratio: Option<f64>,
        pub(crate) runner_up_ratio: Option<f64>,
        pub(crate) look: bool,
    }

    impl Proposer for Claiming {
        fn propose(
            &self,
            data: Samples<'_>,
            shape: &[usize],
            extent: Extent,
            settings: &Settings,
        ) -> Result<Proposal, SelectError> {
            let p = self.fixed.propose(data, shape, extent, settings)?;
            let predicted = self.over.map(|over| settings.target.value() + over);
            Ok(Proposal {
                predicted,
                predicted_ratio: self.ratio,
                runner_up: p.runner_up.map(|alt| Alternative {
                    predicted: predicted.map(|db| db + 0.5),
                    predicted_ratio: self.runner_up_ratio,
                    ..alt
                }),
                needs_look: self.look,
                ..p
            })
        }
    }

    /// `first`'s proposals, and `sz3`'s where the settings restrict the choice to SZ3, as
    /// select's fallback does after the first compressor refused a chunk.
    pub(crate) struct Restricted {
        pub(crate) first: Fixed,
        pub(crate) sz3: Fixed,
    }

    impl Proposer for Restricted {
        fn propose(
            &self,
            data: Samples<'_>,
            shape: &[usize],
            extent: Extent,
            settings: &Settings,
        ) -> Result<Proposal, SelectError> {
            match settings.compressor {
                CompressorChoice::Sz3 => self.sz3.propose(data, shape, extent, settings),
                _ => self.first.propose(data, shape, extent, settings),
            }
        }
    }

    /// SZ3 first and ZFP the runner-up (the other way round when `zfp_first`), all at
    /// SZ3's formula bound, with SPERR as the third compressor when `third`; the first is
    /// predicted to store a ratio of a million when `overrated`.
    #[derive(Default)]
    pub(crate) struct ThreeWay {
        pub(crate) third: bool,
        pub(crate) zfp_first: bool,
        pub(crate) overrated: bool,
    }

    impl Proposer for ThreeWay {
        fn propose(
            &self,
            data: Samples<'_>,
            shape: &[usize],
            extent: Extent,
            settings: &Settings,
        ) -> Result<Proposal, SelectError> {
            let (first, second) = match self.zfp_first {
                true => (CodecId::Zfp, CodecId::Sz3),
                false => (CodecId::Sz3, CodecId::Zfp),
            };
            let p = Fixed {
                codec: first,
                runner_up: false,
                scale: 1.0,
            }
            .propose(data, shape, extent, settings)?;
            let alternative = |codec| Alternative {
                codec,
                bound: p.bound,
                predicted: None,
                predicted_ratio: None,
                needs_look: false,
            };
            Ok(Proposal {
                runner_up: Some(alternative(second)),
                third: self.third.then(|| alternative(CodecId::Sperr)),
                predicted_ratio: self.overrated.then_some(1e6),
                ..p
            })
        }
    }
}

#[cfg(test)]
mod tests;
