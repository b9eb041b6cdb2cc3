//! One chunk's search: attempts, measurements, and the predict, fast and guarantee
//! loops over them.

use super::landing::{
    next_ratio_bound, untried_ratio_stair, untried_stair, Bracket, DB_PER_BIT, RATIO_STEPS,
};
use super::*;
use crate::codec::{Pipeline, Sz3, Zfp};
use crate::samples::Layout;
use once_cell::unsync::OnceCell;
use std::cell::Cell;

/// How much more than the model's predicted size a first SPERR stream by rate is coded
/// to ([`Search::land_rate`]): its ratio errs by about 30% held out, and a stream too
/// short costs another compression, one too long only the cuts' decodes.
const RATE_HEADROOM: f64 = 1.5;

/// How far above what the chunk's last SZ3 compression foretells an SZ3 payload from the
/// remembered pipeline may grow before the other pipeline is run at its bound too
/// ([`Search::sz3_spiked`]).
pub(super) const SZ3_SPIKE: f64 = 1.1;

/// The most bits per value a SPERR search lands by rate at ([`Search::lands_by_rate`]):
/// the size the model predicts at the target, or the size to beat. Higher, where SPERR's
/// point-wise mode lands in one or two compressions along its predictable slope, a stream
/// by rate needed 3–6 cuts, each a decode of a long stream: at 80 dB on ../shared/data
/// guarantee mode took 1.4× the time for 0.003 of the best ratio.
const RATE_LANDING_MAX_BITS: f64 = 1.0;

/// The fewest bytes a SPERR search lands by rate at ([`Search::lands_by_rate`]). Its
/// compact stream keeps SPERR's quantisation step whole, 7 bytes more than a point-wise
/// stream's, and on payloads of tens of bytes each byte cut moves the PSNR by tenths of a
/// dB: on the eighth set at 40 dB a shot record's 66-byte chunk stored 0.85 → 0.73 of the
/// best oracle's ratio by rate.
const RATE_LANDING_MIN_BYTES: f64 = 512.0;

/// The fewest bits per value a SPERR stream by rate is coded to.
const MIN_RATE_BITS: f64 = 1e-3;

/// Compressions a landing by rate may add when its stream falls short of the target.
const RATE_RETRIES: usize = 2;

/// Cuts (decodes) a landing by rate may measure.
const RATE_CUTS: usize = 7;

/// The furthest a landing by rate's first cut reaches below its stream, in ln of the
/// size: a sixteenth of it.
const RATE_CUT_REACH: f64 = 2.772_588_722_239_781;

/// Overshoot in dB a ZFP estimate from sampled blocks ([`Search::zfp_sample_gap`]) is
/// credited beyond what it shows. On the first chunk of each array of ../shared/data and
/// of two unseen sets (127 arrays) at the safe bounds of 40, 60 and 80 dB, its PSNR came
/// within 0.72 dB of the chunk's, 0.31 dB on ../shared/data (docs/bench.md, "ZFP from a
/// sample of its blocks").
const ZFP_SAMPLE_SLACK_DB: f64 = 1.0;

/// Share of a ZFP estimate's size ([`Search::zfp_sample_gap`]) taken as what it may
/// store: on the same chunks the estimates ran 0.97–1.10× the chunk's payload.
const ZFP_SAMPLE_SIZE_SHARE: f64 = 0.9;

/// The ratio `payload`, the codec's bytes for `data`, stores over the one the proposal
/// predicted (the model's ratios are the codec payload's, as here), if it predicted one.
fn ratio_vs_predicted(proposal: &Proposal, data: Samples<'_>, payload: &[u8]) -> Option<f64> {
    let predicted = proposal.predicted_ratio.filter(|r| *r > 0.0)?;
    Some(metrics::compression_ratio(data.byte_len(), payload.len()) / predicted)
}

/// True when `payload` stores a ratio more than [`SURPRISE_FACTOR`] from the predicted
/// one, either way: the model misread the chunk.
fn surprised(proposal: &Proposal, data: Samples<'_>, payload: &[u8]) -> bool {
    ratio_vs_predicted(proposal, data, payload).is_some_and(|r| r.ln().abs() > SURPRISE_FACTOR.ln())
}

/// Share of its predicted ratio under which predict mode's first payload makes it try
/// the runner-up ([`Search::predict_runner_up`]). Half: a third
/// ([`SURPRISE_FACTOR`]) missed a grid's coordinates at 2.8×.
const RUNNER_UP_OFF: f64 = 0.5;

/// How many times the first payload's ratio predict mode's runner-up must be predicted to
/// store before it is tried ([`Search::predict_runner_up`]). At 2 (before
/// [`RUNNER_UP_MAX_BITS`]), a run on ../shared/data and two unseen sets kept 0–0.038 less
/// of the best oracle's ratio than at 1.5 and spent up to 0.21 fewer compressions per
/// chunk (docs/bench.md, "Close calls").
const RUNNER_UP_GAIN: f64 = 1.5;

/// Stored bits per value below which an overrated first payload makes predict mode try
/// its runner-up ([`Search::predict_runner_up`]); beyond, only a ZFP payload does, or one
/// under a third of its predicted ratio ([`SURPRISE_FACTOR`], a chunk measured anyway).
/// Over ../shared/data and two unseen sets at 40 / 60 / 80 dB, of the 16 runner-ups tried
/// below a bit per value 10 stored less (0.19–0.48 of the first payload on 7), of the 49
/// tried above it (SZ3 or SPERR first) 15 did, by more than half twice; ZFP first, both
/// tries stored a third of its payload. At low rates the model's ratio errors are largest
/// (35–50% at relative bounds 1e-2–1e-1, docs/surrogate.md) and SZ3's size stalls where
/// SPERR's drops. Far overrated at any rate: a grid's coordinates at 80 dB, SZ3 13.3× at
/// 2.4 bits per value where 45.8× was predicted; SPERR stored half as much.
const RUNNER_UP_MAX_BITS: f64 = 1.0;

/// Share of the first choice's predicted ratio from which the runner-up's (and up to
/// whose inverse) makes the model's ranking a close call: within the model's ratio error
/// (25% mean absolute, leaving one dataset out, docs/surrogate.md), so fast mode searches
/// the runner-up too ([`close_call`]).
const CLOSE_CALL: f64 = 0.75;

/// True when the model predicts the runner-up to store within [`CLOSE_CALL`] of the first
/// choice's ratio, either way (a dataset's memory may put first the compressor the model
/// rated second, with its ratio corrected by what the dataset stored). On a seventh
/// unseen set fast mode kept 0.667 / 0.678 / 0.785 of the best oracle's ratio at 40 / 60 /
/// 80 dB, and the compressor it chose alone cost 0.715 / 0.735 / 0.840 (SZ3 on flows
/// where SPERR, at the bound the model admitted, stored 1.25–2.7× less with a predicted
/// ratio within a quarter of SZ3's); searching the runner-up on close calls kept 0.831 /
/// 0.820 / 0.878 (docs/bench.md, "Close calls").
fn close_call(proposal: &Proposal) -> bool {
    proposal
        .runner_up
        .and_then(|alt| Some(alt.predicted_ratio? / proposal.predicted_ratio?))
        .is_some_and(|r| (CLOSE_CALL..=1.0 / CLOSE_CALL).contains(&r))
}

/// The attempt a landing search keeps, its measured quality in dB ([`Search::quality`])
/// and in the target's unit, and how it was reached.
pub(super) struct Landed {
    pub(super) attempt: Attempt,
    pub(super) db: f64,
    pub(super) measured: f64,
    pub(super) reason: &'static str,
}

impl Landed {
    pub(super) fn into_outcome(self, compressions: u32) -> Outcome {
        let mut outcome = self.attempt.into_outcome(self.reason, Some(self.measured));
        outcome.compressions = compressions;
        outcome
    }
}

/// One compression attempt and its payload.
pub(super) struct Attempt {
    pub(super) codec: CodecId,
    pub(super) bound: f64,
    pub(super) payload: Vec<u8>,
    /// Payload bytes the chunk stores: the compact payload ([`chunk::stored_payload_len`]),
    /// so compressors compare as stored.
    pub(super) stored: usize,
    pub(super) compressions: u32,
}

impl Attempt {
    /// True when this payload stores smaller than the one kept so far (or nothing is kept).
    pub(super) fn smaller_than(&self, kept: &Option<Landed>) -> bool {
        kept.as_ref().is_none_or(|k| self.stored < k.attempt.stored)
    }

    pub(super) fn into_outcome(self, reason: &'static str, measured: Option<f64>) -> Outcome {
        Outcome {
            codec: self.codec,
            bound: self.bound,
            payload: self.payload,
            predicted: None,
            measured,
            compressions: self.compressions,
            reason,
            runner_up_gap: None,
        }
    }
}

/// The state of a guarantee search over one chunk.
pub(super) struct Search<'a> {
    pub(super) data: Samples<'a>,
    pub(super) shape: &'a [usize],
    pub(super) settings: &'a Settings,
    pub(super) compressions: u32,
    /// The original's share of every SSIM check, made at the first one.
    pub(super) ssim_reference: OnceCell<Option<metrics::SsimReference>>,
    /// [`Outcome::runner_up_gap`], set by the first attempt of a search with a ceiling, or
    /// by a compressor skipped for its floor
    /// ([`Codec::least_stored`](crate::codec::Codec::least_stored)).
    pub(super) runner_up_gap: Option<f64>,
    /// Values the decoder restores exactly, left out of the PSNR.
    pub(super) missing: Option<&'a chunk::Missing>,
    /// The chunk's extent: [`compress_to_target_where`] sets the one it took, so the chunk
    /// is not scanned again.
    pub(super) extent: OnceCell<Extent>,
    /// The original's other (real) values, gathered at the first PSNR check.
    pub(super) real_original: OnceCell<crate::samples::SampleBuf>,
    /// What the search may spend: the mode's ([`Budget::THOROUGH`] for guarantee mode,
    /// [`Budget::FAST`] for fast mode and predict mode's [`Search::check_surprise`]).
    pub(super) budget: Budget,
    /// Whether a landing measured a codec whose PSNR rose with a looser bound
    /// ([`Bracket::erratic`]).
    pub(super) erratic: bool,
    /// The last attempt measured ([`Attempt::compressions`] names it) and its quality, so
    /// that a search handed an attempt already measured does not decode it again.
    pub(super) last_quality: Cell<Option<(u32, (f64, f64))>>,
    /// The payload lengths and PSNRs the last landing by rate measured
    /// ([`Search::land_rate`]), for [`Search::rate_shift`].
    pub(super) rate_points: Vec<(usize, f64)>,
    /// The SZ3 pipeline that won the chunk's first SZ3 compression it did not tie, which
    /// later ones run alone ([`Sz3::encode_with`]).
    pub(super) sz3_pipeline: Option<Pipeline>,
    /// The bound and payload length of the chunk's last SZ3 compression, which tell when a
    /// later one's remembered pipeline spiked ([`Search::sz3_spiked`]).
    pub(super) sz3_last: Option<(f64, usize)>,
    /// Compressors after the first that refused their bound as finer than they resolve,
    /// told to the proposer once the chunk is done ([`Proposer::refused`]).
    pub(super) refused_alternatives: Vec<CodecId>,
}

impl<'a> Search<'a> {
    /// The chunk's extent ([`Search::extent`](field@Search::extent)).
    fn extent(&self) -> Extent {
        *self.extent.get_or_init(|| Extent::of(self.data))
    }

    pub(super) fn new(data: Samples<'a>, shape: &'a [usize], settings: &'a Settings) -> Self {
        Search {
            data,
            shape,
            settings,
            compressions: 0,
            ssim_reference: OnceCell::new(),
            runner_up_gap: None,
            missing: None,
            extent: OnceCell::new(),
            real_original: OnceCell::new(),
            budget: match settings.mode {
                Mode::Fast => Budget::FAST,
                Mode::Guarantee | Mode::Predict => Budget::THOROUGH,
            },
            erratic: false,
            last_quality: Cell::new(None),
            rate_points: Vec::new(),
            sz3_pipeline: None,
            sz3_last: None,
            refused_alternatives: Vec::new(),
        }
    }

    /// The first compression, at the proposer's choice: with the proposal, or None when a
    /// codec the user named cannot resolve the bound (only exact storage is finer).
    pub(super) fn first_attempt(
        &mut self,
        proposer: &dyn Proposer,
        extent: Extent,
    ) -> Result<Option<(Proposal, Attempt)>, SelectError> {
        let (data, shape, settings) = (self.data, self.shape, self.settings);
        let proposal = proposer.propose(data, shape, extent, settings)?;
        let first = match proposal.predicted_ratio.map(|r| self.bits_at_ratio(r)) {
            Some(bits) if self.lands_by_rate(proposal.codec, bits) => {
                self.try_rate(RATE_HEADROOM * bits)
            }
            _ => self.try_bound(proposal.codec, proposal.bound),
        };
        match first {
            // A compressor chosen automatically may refuse a chunk (SPERR and values ≥
            // 1e30): SZ3 takes any finite values, at the bound proposed for SZ3 (on a
            // generated field SPERR's bound gave SZ3 3 dB less PSNR, and predict mode would
            // keep it). A compressor the user named keeps its error.
            Err(SelectError::Codec(e))
                if settings.compressor == CompressorChoice::Auto
                    && proposal.codec != CodecId::Sz3 =>
            {
                log::info!("{e}; SZ3 instead");
                // Only a bound the codec could not resolve can be the proposer's doing;
                // SPERR refusing values of 1e30 says nothing of its correction.
                if too_fine(&SelectError::Codec(e)) {
                    proposer.refused(proposal.codec);
                }
                let sz3_only = Settings {
                    compressor: CompressorChoice::Sz3,
                    ..*settings
                };
                // The first proposal's other compressor that is neither SZ3 nor the one
                // that refused.
                let runner_up = [proposal.runner_up, proposal.third]
                    .into_iter()
                    .flatten()
                    .find(|a| a.codec != CodecId::Sz3 && a.codec != proposal.codec);
                let proposal = Proposal {
                    codec: CodecId::Sz3,
                    runner_up,
                    ..proposer.propose(data, shape, extent, &sz3_only)?
                };
                match self.try_bound(CodecId::Sz3, proposal.bound) {
                    Err(e) if too_fine(&e) => {
                        log::info!("{e}; lossless instead");
                        Ok(None)
                    }
                    first => Ok(Some((proposal, first?))),
                }
            }
            // A compressor the user named that cannot keep the values at any bound (too
            // fine a bound, values too small or too large for its transform): exact
            // storage, where SZ3 would store them at such bounds too.
            Err(e)
                if too_fine(&e)
                    || matches!(
                        e,
                        SelectError::Codec(
                            CodecError::TooSmall { .. } | CodecError::TooLarge { .. }
                        )
                    ) =>
            {
                log::info!("{e}; lossless instead");
                Ok(None)
            }
            other => Ok(Some((proposal, other?))),
        }
    }

    /// Predict mode's PSNR target: the first compression (or the runner-up's, where
    /// [`Search::predict_runner_up`] tried it and it stored less), looked at
    /// ([`Search::check_surprise`]) when the model misread the chunk ([`surprised`]) or is
    /// known to misread its kind or its PSNR
    /// ([`unfamiliar::measured_in_predict_mode`]), when SZ3 stored it below
    /// [`SZ3_ERRATIC_BITS`] per value ([`Search::sz3_erratic`]), or when the proposal was
    /// aimed inside the model's calibrated margin ([`Proposal::needs_look`]). A chunk
    /// certain to meet the target ([`Search::certain_to_meet`]) is looked at only where the
    /// look may store it smaller: where the model misread it (a large overshoot is
    /// loosened), or where a decode may come back exact, so that lossless may store less
    /// ([`prefer_exact`]): SZ3 at a bound finer than the step of a lattice the values lie
    /// on ([`may_decode_exactly`]).
    pub(super) fn predict_psnr(
        &mut self,
        first: Attempt,
        proposal: &Proposal,
        range: f64,
    ) -> Result<Outcome, SelectError> {
        let original = proposal;
        let (first, switched) = match self.predict_runner_up(&first, proposal)? {
            Some((attempt, alone)) => (attempt, alone),
            None => (first, *proposal),
        };
        let proposal = &switched;
        let surprise = surprised(proposal, self.data, &first.payload);
        let why = if surprise {
            Some(format!(
                "the payload stored more than {SURPRISE_FACTOR}x from the predicted ratio"
            ))
        } else if self.certain_to_meet(&first, range) {
            may_decode_exactly(first.codec, first.bound, self.data)
                .then(|| "may decode exactly".to_string())
        } else if unfamiliar::measured_in_predict_mode(self.data, self.shape, self.extent()) {
            Some("a kind of chunk the model misreads (crate::unfamiliar)".to_string())
        } else if self.sz3_erratic(&first) {
            Some(format!(
                "SZ3 below {SZ3_ERRATIC_BITS} bits per value, where its PSNR is erratic"
            ))
        } else if self.lorenzo_short(&first, range) {
            Some("SZ3's first-order Lorenzo short of the target by even errors".to_string())
        } else if proposal.needs_look {
            Some(
                "aimed inside the model's margin, or by SZ3's formula (Proposal::needs_look)"
                    .to_string(),
            )
        } else {
            None
        };
        let Some(why) = why else {
            let reason = match first.codec == original.codec {
                true => "proposal",
                false => "runner-up",
            };
            // A runner-up that stored no less was a compression too.
            let mut outcome = first.into_outcome(reason, None);
            outcome.compressions = self.compressions;
            return Ok(outcome);
        };
        let outcome = self.check_surprise(first, proposal, range, surprise)?;
        log::info!(
            "{why}: measured ({}: {:?} at {:.2} dB, {:.2} predicted, ratio {:.3} predicted, \
             target {})",
            outcome.reason,
            outcome.codec,
            outcome.measured.unwrap_or(f64::NAN),
            proposal.predicted.unwrap_or(f64::NAN),
            proposal.predicted_ratio.unwrap_or(f64::NAN),
            self.settings.target.value()
        );
        Ok(outcome)
    }

    /// Predict mode's runner-up ([`Proposal::runner_up`], at the bound the model admits
    /// for it, as trusted as the first choice's): compressed once when the first payload
    /// stores under [`RUNNER_UP_OFF`] of its predicted ratio and under
    /// [`RUNNER_UP_MAX_BITS`] per value (any ZFP payload, any payload under a third of its
    /// predicted ratio), and the runner-up is predicted to store [`RUNNER_UP_GAIN`] times
    /// what that payload did; kept, with a proposal of its own, when it stores less, and
    /// looked at like a first payload (always, in place of one under a third of its
    /// predicted ratio, which would have been). The payload's size is what predict mode
    /// learns for free, and a first compressor this overrated is the model's ranking
    /// proved doubtful (a grid's coordinates at 40 dB: SZ3 stored 139× for the 393×
    /// predicted, SPERR 539× at the bound the model admitted).
    fn predict_runner_up(
        &mut self,
        first: &Attempt,
        proposal: &Proposal,
    ) -> Result<Option<(Attempt, Proposal)>, SelectError> {
        let Some(alt) = proposal.runner_up else {
            return Ok(None);
        };
        let off = ratio_vs_predicted(proposal, self.data, &first.payload);
        let overrated = off.is_some_and(|r| r < RUNNER_UP_OFF);
        // Under a third of its predicted ratio the chunk is measured anyway ([`surprised`];
        // a runner-up kept instead is too) and the model's ranking is in doubt at any rate.
        let far_off = off.is_some_and(|r| r * SURPRISE_FACTOR < 1.0);
        let reached = metrics::compression_ratio(self.data.byte_len(), first.payload.len());
        let promising = alt
            .predicted_ratio
            .is_some_and(|r| r > reached * RUNNER_UP_GAIN);
        let doubtful = far_off
            || first.codec == CodecId::Zfp
            || self.bits_per_value(first.stored) < RUNNER_UP_MAX_BITS;
        if !(overrated && promising && doubtful) {
            return Ok(None);
        }
        let attempt = match self.try_bound(alt.codec, alt.bound) {
            Err(e) if refused(&e) => {
                if too_fine(&e) {
                    self.refused_alternatives.push(alt.codec);
                }
                return Ok(None);
            }
            attempt => attempt?,
        };
        log::debug!(
            "predict mode's runner-up {:?}: {} bytes against {:?}'s {}",
            alt.codec,
            attempt.stored,
            first.codec,
            first.stored
        );
        if attempt.stored >= first.stored {
            return Ok(None);
        }
        let alone = Proposal {
            codec: alt.codec,
            bound: alt.bound,
            predicted: alt.predicted,
            predicted_ratio: alt.predicted_ratio,
            runner_up: None,
            third: None,
            skip_runner_up_within: None,
            // A first payload this far off was to be measured ([`surprised`]): so is the
            // runner-up that replaces it, whose own prediction the model made alike.
            needs_look: alt.needs_look || far_off,
        };
        Ok(Some((attempt, alone)))
    }

    /// Guarantee and fast mode's absolute bound: the first payload decoded, its largest
    /// error (over the block as compressed) recorded as the measured metric, and kept when
    /// within the bound up to the codecs' documented 1e-6 slack (SZ3 rounds f32 values
    /// after its check; the in-situ verify allows the same); else, or when it does not
    /// decode, the chunk is stored exactly. Unmeasured, the quality record said nothing,
    /// and guarantee mode promises every lossy chunk measured.
    pub(super) fn checked_bound(&mut self, first: Attempt) -> Result<Outcome, SelectError> {
        let bound = self.settings.target.value();
        let error = self
            .decoded_or_miss(&first)
            .and_then(|back| metrics::error_stats_of(self.data, back.view()))
            .map(|s| s.max_abs_error);
        match error {
            Some(e) if e <= bound * (1.0 + 1e-6) => Ok(first.into_outcome("checked", Some(e))),
            _ => self.lossless("bound exceeded: lossless"),
        }
    }

    /// Predict mode's ratio target. A ratio needs no decode to be known: the payload's size
    /// tells it. The first compression is kept unless its size shows the model misread
    /// the chunk, short of the target or more than [`SURPRISE_FACTOR`] past it (quality
    /// thrown away: ratios 78–149 stored for 8 on 1-D chunks, PSNR 25 dB where 47 met the
    /// target); then the bound is searched as in guarantee mode.
    pub(super) fn predict_ratio(&mut self, first: Attempt) -> Result<Outcome, SelectError> {
        let (reached, target) = (self.chunk_ratio(&first), self.settings.target.value());
        match reached < target || reached > target * SURPRISE_FACTOR {
            true => self.reach_ratio(first),
            false => Ok(first.into_outcome("proposal", None)),
        }
    }

    /// True when `first` meets a PSNR target whatever a decode would show, so predict
    /// mode need not look for a miss (on ../shared/data at 80 dB, 9 of the 21 chunks it
    /// measured, short axes not on a lattice): a bound at or below the safe bound
    /// ([`safe_bound`]: MSE ≤ bound², so PSNR ≥ T) with a codec that never exceeds its
    /// bound (SZ3, SPERR; ZFP's tolerance is not a promise). Not with missing values,
    /// whose PSNR is taken over the real values alone, nor for a SPERR stream coded to a
    /// rate ([`Search::try_rate`]), whose bound of 0 promises nothing (predict mode, the
    /// only caller, codes none today: a guard for later).
    fn certain_to_meet(&self, first: &Attempt, range: f64) -> bool {
        self.missing.is_none()
            && first.bound > 0.0
            && matches!(first.codec, CodecId::Sz3 | CodecId::Sperr)
            && first.bound <= safe_bound(range, self.settings.target.value())
    }

    /// True when `first` is an SZ3 payload below [`SZ3_ERRATIC_BITS`] per value, where
    /// predict mode measures it: there SZ3's PSNR swings by several dB between
    /// neighbouring bounds and the model cannot follow it.
    fn sz3_erratic(&self, first: &Attempt) -> bool {
        first.codec == CodecId::Sz3 && self.bits_per_value(first.stored) < SZ3_ERRATIC_BITS
    }

    /// True when `first` is an SZ3 payload coded by first-order Lorenzo
    /// ([`Pipeline::FirstOrderLorenzo`]) at a bound whose errors, spread evenly over ±bound
    /// as that pipeline's mostly are, would fall short of a PSNR target: the model, which
    /// learned SZ3 from both pipelines, rates such a payload as the default pipeline's,
    /// whose interpolation leaves smaller errors (plot3d LOX post's momentum_x at 80 dB:
    /// 82.6 predicted, 79.75 dB stored; 79.55 by even errors).
    fn lorenzo_short(&self, first: &Attempt, range: f64) -> bool {
        first.codec == CodecId::Sz3
            && self.sz3_pipeline == Some(Pipeline::FirstOrderLorenzo)
            && self.settings.target.kind == TargetKind::Psnr
            && even_errors_psnr(range, first.bound) < self.settings.target.value()
    }

    /// Predict mode's look at a chunk the model misread (`surprise`, [`surprised`]), is
    /// known to misread ([`unfamiliar::measured_in_predict_mode`]), SZ3 stored at an
    /// erratic rate ([`Search::sz3_erratic`]) or was proposed inside the model's calibrated
    /// margin ([`Proposal::needs_look`]): measures the PSNR of `first` and
    /// keeps it when it meets the target ("checked"), else searches as fast mode does,
    /// never the runner-up: one more compression aimed above the target, then the safe
    /// bound, then lossless.
    ///
    /// A surprise that overshoots by more than [`Budget::FAST`]'s 4.5 dB gets one looser
    /// try the same way, kept if it meets the target: the model misread its ratio, so its
    /// margin means nothing there. On ../shared/data it loosened 12 of 294 chunks; the
    /// SDSS sky image's at 40 dB, mostly empty sky whose ratio the model put at 70–90,
    /// cleared the target by 19–21 dB and then stored 3–45× less. Chunks known to be
    /// misread but not surprising keep their first payload: the same loosening there cost
    /// 0.25 of one compression's time at 40 dB, and on 4 of 13 chunks its try missed.
    /// When the looser try misses, the first payload is kept, as "checked".
    fn check_surprise(
        &mut self,
        first: Attempt,
        proposal: &Proposal,
        range: f64,
        surprise: bool,
    ) -> Result<Outcome, SelectError> {
        let (db, measured) = self.quality(&first)?;
        let target = self.settings.target.value();
        let worth_loosening = surprise && db - target > Budget::FAST.close_max_db;
        if db >= target && !worth_loosening {
            let mut outcome = first.into_outcome("checked", Some(measured));
            outcome.compressions = self.compressions;
            return Ok(outcome);
        }
        self.budget = Budget::FAST;
        let alone = Proposal {
            runner_up: None,
            third: None,
            ..*proposal
        };
        let mut outcome = self.guarantee(first, &alone, range)?;
        // A looser try that missed leaves the first payload, measured: checked, not an
        // unmeasured proposal.
        if outcome.reason == "proposal" {
            outcome.reason = "checked";
        }
        Ok(outcome)
    }

    /// A PSNR target the chunk's mean alone meets ([`near_mean`]): SPERR at a bound
    /// beyond the range, measured in every mode and kept when it meets the target, with
    /// the mean's PSNR as the prediction. No runner-up: nothing stores much less than
    /// SPERR's 40 bytes. None where SPERR is not allowed, refuses the chunk, cannot decode
    /// its payload or (never seen) misses; the search then goes on from the proposer as for
    /// any chunk.
    pub(super) fn near_mean(
        &mut self,
        extent: Extent,
    ) -> Result<Option<(Outcome, f64)>, SelectError> {
        let target = self.settings.target.value();
        let Some(mean_db) = mean_serves(self.data, extent, self.settings) else {
            return Ok(None);
        };
        let bound = (near_mean::LOOSE_BOUND_OVER_RANGE * extent.range()).min(Sperr::COARSEST_BOUND);
        let tried = self
            .try_bound(CodecId::Sperr, bound)
            .and_then(|attempt| Ok((self.quality(&attempt)?, attempt)));
        let ((db, measured), attempt) = match tried {
            Err(SelectError::Codec(e)) => {
                log::info!("the mean meets {target} dB, but SPERR: {e}");
                return Ok(None);
            }
            other => other?,
        };
        // Kept on `>=`, like every other measurement: a NaN is a miss.
        if db >= target {
            return Ok(Some((
                attempt.into_outcome(MEAN_SERVES, Some(measured)),
                mean_db,
            )));
        }
        log::warn!(
            "the mean meets {target} dB ({mean_db:.2}), SPERR at {bound:e} measured {db:.2}"
        );
        Ok(None)
    }

    /// For a first compressor landed by rate, the factor its landing would have moved the
    /// proposed bound (what the runner-up's start is moved by, as after a landing by
    /// bound): the PSNR its stream measured at the size the model predicted for its
    /// proposal (interpolated in the log of the size between the lengths measured, or
    /// from the nearest two), −20 dB a decade from the target. None without a prediction
    /// or two lengths measured.
    fn rate_shift(&self, proposal: &Proposal, target: f64) -> Option<f64> {
        let ratio = proposal.predicted_ratio?;
        let predicted = (self.data.byte_len() as f64 / ratio).max(1.0).ln();
        let mut points: Vec<(f64, f64)> = self
            .rate_points
            .iter()
            .map(|&(k, db)| ((k.max(1) as f64).ln(), db))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.dedup_by(|a, b| a.0 == b.0);
        if points.len() < 2 {
            return None;
        }
        let at = points
            .partition_point(|p| p.0 < predicted)
            .clamp(1, points.len() - 1);
        let ((x0, y0), (x1, y1)) = (points[at - 1], points[at]);
        let db = y0 + (y1 - y0) * (predicted - x0) / (x1 - x0);
        Some(10f64.powf(((db - target) / 20.0).clamp(-1.2, 1.2)))
    }

    /// Whether a SPERR search lands by rate ([`Search::land_rate`]): guarantee mode's own
    /// PSNR search (not predict mode's look, not fast mode), on a chunk SPERR codes in 2-D
    /// or 3-D with its wavelet ([`Sperr::transforms`]: never a series), where its fixed-rate
    /// mode works.
    pub(super) fn lands_by_rate(&self, codec: CodecId, bits_per_value: f64) -> bool {
        let bytes = bits_per_value * self.data.len() as f64 / 8.0;
        codec == CodecId::Sperr
            && bits_per_value <= RATE_LANDING_MAX_BITS
            && bytes >= RATE_LANDING_MIN_BYTES
            && self.budget.runner_up
            && self.settings.mode == Mode::Guarantee
            && self.settings.target.kind == TargetKind::Psnr
            && Sperr::transforms(self.shape)
    }

    /// Bits of one raw value (32 or 64).
    fn value_bits(&self) -> f64 {
        8.0 * self.data.byte_len() as f64 / self.data.len().max(1) as f64
    }

    /// Bits per value of a payload at `ratio` (the codec's ratio: raw bytes over payload).
    fn bits_at_ratio(&self, ratio: f64) -> f64 {
        self.value_bits() / ratio.max(f64::MIN_POSITIVE)
    }

    /// SPERR coded to `bits_per_value` ([`Sperr::encode_rate`]): an attempt of bound 0.
    pub(super) fn try_rate(&mut self, bits_per_value: f64) -> Result<Attempt, SelectError> {
        let bits = bits_per_value.min(self.value_bits()).max(MIN_RATE_BITS);
        let payload = Sperr.encode_rate(self.data, self.shape, bits)?;
        Ok(self.counted(CodecId::Sperr, 0.0, payload))
    }

    /// SPERR's landing by rate, from `first`, a fixed-rate attempt ([`Search::try_rate`]).
    /// A stream coded to more bytes than the target needs is cut ([`Sperr::truncated`]):
    /// each cut costs a decode, not a compression, and lands to the byte. A first stream
    /// short of the target is coded again with more bits (the miss at 6.02 dB a bit per
    /// value, and half again), at most [`RATE_RETRIES`] times; with a `ceiling`, a stream
    /// that size or more that misses ends the search, as nothing shorter can meet. The
    /// cuts step by regula falsi in the log of the size between the shortest cut that met
    /// and the longest that missed (Illinois style: a side that stays put twice counts
    /// half), from one point by 2.5 + 2.5 · bits per value dB a doubling (at most 6.02,
    /// and at most 16× shorter), towards the budget's aim, and stop within its
    /// [`Budget::close_db`] or after [`RATE_CUTS`] decodes. A PSNR that is not a number
    /// (a decode holding NaN) is a miss.
    ///
    /// At the same size SPERR's fixed-rate streams met 40 / 60 / 80 dB with 2.4 / 1.0 /
    /// 0.2% fewer bytes than its point-wise mode on ../shared/data (geometric mean of the
    /// first chunks' sizes at the target, each mode bisected), and a decode costs about a
    /// third of a compression and decode in point-wise mode (docs/bench.md, "SPERR by
    /// rate").
    pub(super) fn land_rate(
        &mut self,
        first: Attempt,
        target: f64,
        ceiling: Option<usize>,
    ) -> Result<Option<Landed>, SelectError> {
        let mut full = first;
        let mut db = self.psnr(&full)?;
        if let Some(c) = ceiling {
            self.runner_up_gap = Some(self.least_size(full.stored, db - target) / c as f64);
        }
        let mut reason = "proposal";
        for _ in 0..RATE_RETRIES {
            if db >= target || ceiling.is_some_and(|c| full.stored >= c) {
                break;
            }
            let more = (target + self.budget.aim_db - db) / DB_PER_BIT;
            full = match self.try_rate(1.5 * (self.bits_per_value(full.stored) + more)) {
                Err(e) if refused(&e) => break,
                next => next?,
            };
            db = self.psnr(&full)?;
            reason = "corrected";
        }
        log::debug!(
            "sperr by rate: {db:.2} dB for {target:.2}, {} bytes",
            full.stored
        );
        if db.is_nan() || db < target {
            return Ok(None);
        }
        let layout = Layout::of(&self.data, self.shape);
        let Some(coded) = Sperr::coded_bytes(&full.payload, &layout) else {
            return Ok(Some(Landed {
                attempt: full,
                db,
                measured: db,
                reason,
            }));
        };
        let headers = full.stored - coded;
        let aim = target + self.budget.aim_db;
        // The shortest cut that met (bytes, dB, payload) and the longest that missed.
        // Lengths as whole payloads, as the model predicts them.
        let framing = full.payload.len() - coded;
        self.rate_points = vec![(full.payload.len(), db)];
        let mut met = (coded, db, full.payload.clone());
        let mut missed: Option<(usize, f64)> = None;
        // Regula falsi, Illinois style: when a side of the bracket stays put twice, its
        // excess counts half, so a curved stretch does not pin the steps to one end.
        let (mut met_weight, mut missed_weight, mut last_met) = (1.0, 1.0, None);
        for _ in 0..RATE_CUTS {
            let bits = self.bits_per_value(headers + met.0);
            if met.1 - target <= self.budget.close_db(bits) {
                break;
            }
            let floor = missed.map_or(0, |m| m.0);
            // PSNR is closer to linear in the log of the size than in the size: at low
            // rates each doubling of the stream adds 2–3 dB, at high rates 6.02 dB a bit.
            let (hi, hi_excess) = ((met.0 as f64).ln(), met_weight * (met.1 - aim));
            let guess = match missed {
                Some((k, d)) => {
                    let (lo, lo_short) = ((k.max(1) as f64).ln(), missed_weight * (aim - d));
                    lo + (hi - lo) * lo_short / (lo_short + hi_excess)
                }
                None => {
                    let per_doubling = (2.5 + 2.5 * bits).clamp(2.5, DB_PER_BIT);
                    hi - ((met.1 - aim) / per_doubling * std::f64::consts::LN_2).min(RATE_CUT_REACH)
                }
            };
            // Nothing left between the cuts that missed and met.
            if met.0 <= floor + 1 {
                break;
            }
            let keep = (guess.exp().round() as usize).clamp(floor + 1, met.0 - 1);
            let Some(payload) = Sperr.truncated(&full.payload, &layout, keep) else {
                break;
            };
            let cut = Attempt {
                codec: CodecId::Sperr,
                bound: 0.0,
                payload,
                stored: 0,
                compressions: full.compressions,
            };
            let cut_db = self.psnr(&cut)?;
            log::debug!("sperr cut to {keep} bytes: {cut_db:.2} dB for {target:.2}");
            self.rate_points.push((framing + keep, cut_db));
            let now_met = cut_db >= target;
            // The side that moved keeps its full weight; the one that stayed put twice
            // running counts half.
            if last_met == Some(now_met) {
                match now_met {
                    true => missed_weight *= 0.5,
                    false => met_weight *= 0.5,
                }
            } else {
                (met_weight, missed_weight) = (1.0, 1.0);
            }
            last_met = Some(now_met);
            if now_met {
                met = (keep, cut_db, cut.payload);
                if reason == "proposal" {
                    reason = "loosened";
                }
            } else {
                missed = Some((keep, cut_db));
            }
        }
        let (_, db, payload) = met;
        let stored = chunk::stored_payload_len(CodecId::Sperr, &layout, 0.0, &payload);
        Ok(Some(Landed {
            attempt: Attempt {
                payload,
                stored,
                ..full
            },
            db,
            measured: db,
            reason,
        }))
    }

    pub(super) fn try_bound(&mut self, codec: CodecId, bound: f64) -> Result<Attempt, SelectError> {
        let bound = chunk::codec_bound(bound);
        let payload = match codec {
            CodecId::Sz3 => self.sz3_payload(bound)?,
            _ => codec_for(codec).encode(self.data, self.shape, bound)?,
        };
        Ok(self.counted(codec, bound, payload))
    }

    /// An SZ3 payload at `bound`: both pipelines at the chunk's first SZ3 compression, the
    /// one that won alone after it ([`Search::sz3_pipeline`](field@Search::sz3_pipeline)),
    /// and the other too where that one's payload spiked ([`Search::sz3_spiked`]; the
    /// extra compression counted), the smaller kept.
    fn sz3_payload(&mut self, bound: f64) -> Result<Vec<u8>, SelectError> {
        let remembered = self.sz3_pipeline;
        let (mut payload, mut won) = Sz3.encode_with(self.data, self.shape, bound, remembered)?;
        let spiked = remembered
            .map(Pipeline::other)
            .filter(|_| self.sz3_spiked(bound, payload.len()));
        if let Some(other) = spiked {
            self.compressions += 1;
            let (alternative, alternative_won) =
                Sz3.encode_with(self.data, self.shape, bound, Some(other))?;
            log::debug!(
                "sz3 bound {bound:.4e}: {remembered:?} spiked to {} bytes, {other:?} {}",
                payload.len(),
                alternative.len()
            );
            if alternative.len() < payload.len() {
                (payload, won) = (alternative, alternative_won);
            }
        }
        self.sz3_last = Some((bound, payload.len()));
        self.sz3_pipeline = won;
        Ok(payload)
    }

    /// Whether an SZ3 payload of `len` bytes at `bound`, from the pipeline the search
    /// remembered, is larger than the chunk's last SZ3 compression foretells by more than
    /// [`SZ3_SPIKE`]: at most a bit per value more per halving of the bound (the high-rate
    /// slope), none at a looser one. SZ3's default pipeline tunes itself per compression,
    /// and on a sea-ice field (fice, 60×49×50) it stored 115.6k, 129.2k, 134.6k and 115.6k
    /// bytes at 2.18, 2.195, 2.207 and 2.21e-4 of the range while first-order Lorenzo
    /// stored 110–112k at all four: a search that kept to the default from its first
    /// attempt landed on its spike, 24% over Lorenzo at the kept bound.
    fn sz3_spiked(&self, bound: f64, len: usize) -> bool {
        let Some((last_bound, last_len)) = self.sz3_last else {
            return false;
        };
        let halvings = (last_bound / bound).log2().max(0.0);
        let foretold = last_len as f64 + halvings * self.data.len() as f64 / 8.0;
        len as f64 > SZ3_SPIKE * foretold
    }

    /// A compression just made, counted, with the size its chunk stores.
    fn counted(&mut self, codec: CodecId, bound: f64, payload: Vec<u8>) -> Attempt {
        self.compressions += 1;
        let layout = Layout::of(&self.data, self.shape);
        let stored = chunk::stored_payload_len(codec, &layout, bound, &payload);
        Attempt {
            codec,
            bound,
            payload,
            stored,
            compressions: self.compressions,
        }
    }

    pub(super) fn decoded(
        &self,
        attempt: &Attempt,
    ) -> Result<crate::samples::SampleBuf, SelectError> {
        let layout = Layout::of(&self.data, self.shape);
        Ok(codec_for(attempt.codec).decode(&attempt.payload, &layout, attempt.bound)?)
    }

    /// The decode of `attempt`, or None (logged) when its own codec cannot read it back: a
    /// miss, so that the payload is never kept and the search goes on to what serves (a
    /// bound tried before, the safe bound, SZ3 or exact storage) instead of failing the
    /// write.
    fn decoded_or_miss(&self, attempt: &Attempt) -> Option<crate::samples::SampleBuf> {
        self.decoded(attempt)
            .inspect_err(|e| {
                log::warn!(
                    "{} at bound {:e} does not decode ({e}): a miss",
                    attempt.codec.name(),
                    attempt.bound
                )
            })
            .ok()
    }

    pub(super) fn psnr(&self, attempt: &Attempt) -> Result<f64, SelectError> {
        let Some(back) = self.decoded_or_miss(attempt) else {
            return Ok(f64::NEG_INFINITY);
        };
        let stats = match self.missing {
            None => metrics::error_stats_of(self.data, back.view()),
            Some(m) => {
                let original = self.real_original.get_or_init(|| m.real_values(self.data));
                metrics::error_stats_of(original.view(), m.real_values(back.view()).view())
            }
        };
        Ok(stats.map(|s| s.psnr).unwrap_or(f64::NEG_INFINITY))
    }

    pub(super) fn ssim(&self, attempt: &Attempt) -> Result<f64, SelectError> {
        let Some(back) = self.decoded_or_miss(attempt) else {
            return Ok(f64::NEG_INFINITY);
        };
        // Over the windows clear of missing values: their replacements are runs of one
        // value that score about 1 ([`metrics::SsimReference::clear_of`]).
        let reference = self.ssim_reference.get_or_init(|| {
            let reference = metrics::SsimReference::of_samples(self.data, self.shape)?;
            Some(match self.missing {
                Some(m) => reference.clear_of(|i| m.is_missing(i)),
                None => reference,
            })
        });
        Ok(reference
            .as_ref()
            .and_then(|r| r.ssim_of(self.data, back.view()))
            .unwrap_or(f64::NEG_INFINITY))
    }

    /// The measured quality in dB, the scale the landing search steps on, and in the
    /// target's unit: PSNR, or for an SSIM target SSIM's loss in dB
    /// ([`metrics::ssim_loss_db`]), which like PSNR moves about 20 dB a decade of bound.
    pub(super) fn quality(&self, attempt: &Attempt) -> Result<(f64, f64), SelectError> {
        if let Some((made, quality)) = self.last_quality.get() {
            if made == attempt.compressions {
                return Ok(quality);
            }
        }
        let quality = match self.settings.target.kind {
            TargetKind::Ssim => {
                let ssim = self.ssim(attempt)?;
                (metrics::ssim_loss_db(ssim), ssim)
            }
            _ => self.psnr(attempt).map(|psnr| (psnr, psnr))?,
        };
        self.last_quality.set(Some((attempt.compressions, quality)));
        Ok(quality)
    }

    /// Stored bits per value of a payload of `stored` bytes for this chunk.
    pub(super) fn bits_per_value(&self, stored: usize) -> f64 {
        8.0 * stored as f64 / self.data.len().max(1) as f64
    }

    /// True when a payload of `len` bytes, `over_db` above the target (below when
    /// negative), cannot be brought to the target in fewer than `ceiling` bytes: a tighter
    /// bound never stores less, and a looser one saves at most 1/6.02 bits per value per
    /// dB (the slope of a uniform quantiser; real codecs at low rates save less).
    pub(super) fn hopeless(&self, len: usize, over_db: f64, ceiling: usize) -> bool {
        self.least_size(len, over_db) >= ceiling as f64
    }

    /// The fewest bytes a payload of `len` bytes, `over_db` above the target, could shrink
    /// to at the target ([`Search::hopeless`]).
    fn least_size(&self, len: usize, over_db: f64) -> f64 {
        let saving = over_db.max(0.0) / DB_PER_BIT * self.data.len() as f64 / 8.0;
        len as f64 - saving
    }

    pub(super) fn lossless(&self, reason: &'static str) -> Result<Outcome, SelectError> {
        lossless(self.data, self.shape, self.compressions, reason)
    }

    /// For a PSNR or SSIM target: measures, then searches the bound that lands just above
    /// the target (see [`Search::land`]). Then searches the proposer's runner-up compressor too and
    /// keeps the smaller payload: the model's ratio error (about 30% held out) makes its
    /// ranking of compressors unreliable, and on sparse sky images it underrated SPERR by
    /// 5×. The runner-up starts from its proposed bound moved by the factor the landing
    /// moved the first one (the model's error on one compressor is the best guess of its
    /// error on the other), and is abandoned as soon as it cannot beat the kept payload
    /// ([`Search::hopeless`]), which usually costs one compression, or skipped when the
    /// first compressor met the target within [`Proposal::skip_runner_up_within`] or when
    /// it cannot store less than the kept payload at any bound
    /// ([`Codec::least_stored`](crate::codec::Codec::least_stored)). On a
    /// chunk the model misread (one of a kind it misreads, [`unfamiliar::unfamiliar`], one
    /// whose size it overrated, one where the runner-up won, which it does by default
    /// when the first compressor landed nothing, or one where a compressor proved not
    /// monotone in its bound, [`Bracket::erratic`]) the third compressor
    /// ([`Proposal::third`]) is searched the same way after it. When no
    /// attempt meets a PSNR target, the safe bound, then lossless ([`Search::tighten_ssim`]
    /// for SSIM).
    pub(super) fn guarantee(
        &mut self,
        first: Attempt,
        proposal: &Proposal,
        range: f64,
    ) -> Result<Outcome, SelectError> {
        let kind = self.settings.target.kind;
        let value = self.settings.target.value();
        let target = match kind {
            TargetKind::Ssim => metrics::ssim_loss_db(value),
            _ => value,
        };
        let codec = first.codec;
        let first_bound = first.bound;
        // A payload far larger than predicted: the model overrated this compressor, so its
        // ranking is worth a check even where the budget does not search the runner-up.
        let data = self.data;
        let overrated_by = |payload: &[u8]| {
            ratio_vs_predicted(proposal, data, payload).is_some_and(|r| r * SURPRISE_FACTOR < 1.0)
        };
        // A stream by rate is as long as it was asked to be: its landing tells instead,
        // and so does its missing the target at all.
        let by_rate = first.bound == 0.0 && codec == CodecId::Sperr;
        let first_overrated = overrated_by(&first.payload);
        let mut kept = self.land(first, target, None)?;
        let overrated = match by_rate {
            true => kept
                .as_ref()
                .is_none_or(|k| overrated_by(&k.attempt.payload)),
            false => first_overrated,
        };
        let as_expected = proposal
            .skip_runner_up_within
            .is_some_and(|limit| kept.as_ref().is_some_and(|k| k.attempt.stored <= limit));
        let compares = self.budget.runner_up || overrated || close_call(proposal);
        let shift = match by_rate {
            true => self.rate_shift(proposal, target),
            false => kept.as_ref().map(|k| k.attempt.bound / first_bound),
        }
        .filter(|s| s.is_normal())
        .unwrap_or(1.0);
        let runner_up = proposal.runner_up.filter(|_| compares && !as_expected);
        let runner_up_won = match runner_up {
            Some(alt) => {
                self.search_alternative(alt, "runner-up", shift, (target, range), &mut kept)?
            }
            None => false,
        };
        // The third compressor in guarantee mode only (fast mode keeps to its time), on a
        // chunk the model misread, whatever memory expects of the runner-up: one of a kind it
        // is known to misread, one whose size it overrated, one where its runner-up beat
        // its first choice, so that its ranking of compressors proved wrong (HEALPix ring
        // weights at 60 dB: ZFP then SZ3, where SPERR's oracle stored 3.7× less than SZ3's;
        // a table of indicators and decimals at 80 dB: SPERR then ZFP, where SZ3 stored 1.5×
        // less), or one where a compressor's PSNR rose with a looser bound, which the model
        // never learned ([`Bracket::erratic`]).
        let misread = self.budget.runner_up
            && proposal.third.is_some()
            && (overrated
                || runner_up_won
                || self.erratic
                || unfamiliar::unfamiliar(self.data, self.shape, self.extent()));
        if let Some(alt) = proposal.third.filter(|_| misread) {
            // Memory learns from the runner-up's gap alone.
            let learned_gap = self.runner_up_gap;
            self.search_alternative(alt, "third compressor", shift, (target, range), &mut kept)?;
            self.runner_up_gap = learned_gap;
        }
        if let Some(k) = kept {
            let mut outcome = k.into_outcome(self.compressions);
            outcome.runner_up_gap = self.runner_up_gap;
            return Ok(outcome);
        }
        if kind == TargetKind::Ssim {
            return self.tighten_ssim(codec, first_bound, value);
        }
        let safe = safe_bound(range, target);
        if safe > 0.0 && safe.is_finite() {
            // SZ3 keeps any bound: it takes over from a codec too coarse for the safe bound
            // when the choice is automatic.
            let attempt = match self.try_bound(codec, safe) {
                Err(e) if refused(&e) && self.settings.compressor == CompressorChoice::Auto => {
                    match self.try_bound(CodecId::Sz3, safe) {
                        Err(e) if refused(&e) => None,
                        attempt => Some(attempt?),
                    }
                }
                Err(e) if refused(&e) => None,
                attempt => Some(attempt?),
            };
            if let Some(attempt) = attempt {
                let psnr = self.psnr(&attempt)?;
                if psnr >= target {
                    return Ok(attempt.into_outcome("safe bound", Some(psnr)));
                }
            }
        }
        self.lossless("target unreachable with a lossy codec: lossless")
    }

    /// Searches another compressor from its proposed bound moved by `shift` (the factor the
    /// first compressor's landing moved its own) and keeps its landing in `kept` under
    /// `reason` when it stores less; whether it did. A compressor that refuses the chunk is
    /// simply not an alternative.
    ///
    /// ZFP, with a payload to beat, is first estimated from a sample of its blocks
    /// ([`Search::zfp_sample_gap`]) and not searched when the sample shows it cannot win.
    pub(super) fn search_alternative(
        &mut self,
        alt: Alternative,
        reason: &'static str,
        shift: f64,
        (target, range): (f64, f64),
        kept: &mut Option<Landed>,
    ) -> Result<bool, SelectError> {
        let ceiling = kept.as_ref().map(|k| k.attempt.stored);
        let floor = codec_for(alt.codec).least_stored(self.shape);
        if let Some(c) = ceiling.filter(|&c| floor >= c) {
            // No bound brings it under the kept payload (zfp's bit per block at 40 dB on
            // smooth chunks): memory hears it as a runner-up that stored at least that.
            log::debug!(
                "{reason} {} skipped: it stores at least {floor} bytes here, {c} kept",
                alt.codec.name()
            );
            self.runner_up_gap = Some(floor as f64 / c as f64);
            return Ok(false);
        }
        let start_bound = alt.bound * shift;
        if let Some(c) = ceiling.filter(|_| alt.codec == CodecId::Zfp) {
            if let Some(gap) = self.zfp_sample_gap(start_bound, target, range, c) {
                log::debug!("{reason} zfp skipped: a sample of its blocks stores {gap:.2}x {c}");
                self.runner_up_gap = Some(gap);
                return Ok(false);
            }
        }
        log::debug!("{reason} {} searched", alt.codec.name());
        // By rate, the first attempt is coded to the size to beat: what it misses there,
        // no cut of it can meet.
        // The size judged is the one expected at the target, as for a first compressor.
        let bits = match (ceiling, alt.predicted_ratio) {
            (Some(c), _) => Some((self.bits_per_value(c), 1.0)),
            (None, ratio) => ratio.map(|r| (self.bits_at_ratio(r), RATE_HEADROOM)),
        };
        let start = match bits {
            Some((bits, headroom)) if self.lands_by_rate(alt.codec, bits) => {
                self.try_rate(headroom * bits)
            }
            _ => self.try_bound(alt.codec, start_bound),
        };
        let start = match start {
            Ok(start) => start,
            Err(e) => {
                if too_fine(&e) {
                    self.refused_alternatives.push(alt.codec);
                }
                return Ok(false);
            }
        };
        match self.land(start, target, ceiling)? {
            Some(other) if other.attempt.smaller_than(kept) => {
                *kept = Some(Landed { reason, ..other });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The least ZFP could store at a PSNR `target` over `ceiling`, estimated from a sample
    /// of its blocks at `bound` ([`Zfp::estimate`]) by the test a first attempt gets
    /// ([`Search::hopeless`]), when that shows it cannot store less than `ceiling` bytes;
    /// None when it may, or when no sample applies (a chunk with few blocks, missing
    /// values, an SSIM target). The sample costs about a fifth of a ZFP compression and
    /// decode; a ZFP search as third compressor almost never wins (docs/bench.md, "ZFP
    /// from a sample of its blocks"). The estimate is given room for its sampling error:
    /// [`ZFP_SAMPLE_SIZE_SHARE`] of its size and [`ZFP_SAMPLE_SLACK_DB`] more overshoot
    /// than it shows.
    pub(super) fn zfp_sample_gap(
        &self,
        bound: f64,
        target: f64,
        range: f64,
        ceiling: usize,
    ) -> Option<f64> {
        if self.missing.is_some() || self.settings.target.kind != TargetKind::Psnr {
            return None;
        }
        let estimate = Zfp
            .estimate(self.data, self.shape, chunk::codec_bound(bound))
            .ok()??;
        let db = metrics::psnr_from(range, estimate.mse);
        let least = self.least_size(
            (ZFP_SAMPLE_SIZE_SHARE * estimate.bytes) as usize,
            db - target + ZFP_SAMPLE_SLACK_DB,
        );
        (least >= ceiling as f64).then(|| least / ceiling as f64)
    }

    /// Secant steps in (log bound, quality dB) from `first`, inside the bracket of bounds
    /// seen to meet and to miss `target` dB ([`Search::quality`]), within the mode's
    /// [`Budget`] (and no more once a step repeats the last result, unless it missed and
    /// another bound met: then the bracket between is halved); the smallest payload that
    /// met the target, if any did.
    ///
    /// With a `ceiling` (the payload size to beat), the search gives up as soon as an
    /// attempt shows it cannot beat it ([`Search::hopeless`]).
    pub(super) fn land(
        &mut self,
        first: Attempt,
        target: f64,
        ceiling: Option<usize>,
    ) -> Result<Option<Landed>, SelectError> {
        if first.codec == CodecId::Sperr && first.bound == 0.0 {
            return self.land_rate(first, target, ceiling);
        }
        let codec = first.codec;
        let mut bracket = Bracket::default();
        let mut kept: Option<Landed> = None;
        let mut first_met = false;
        let mut previous = None;
        let mut tried_bounds = vec![first.bound];
        let mut attempt = first;
        let budget = self.budget;
        let floor = self.safe_floor(target);
        for tried in 0..budget.far.max(budget.near) {
            let (db, measured) = self.quality(&attempt)?;
            let met = db >= target;
            log::debug!(
                "{} bound {:.4e}: {db:.2} dB for {target:.2}, {} bytes",
                codec.name(),
                attempt.bound,
                attempt.stored
            );
            // The same size and lossy PSNR from another bound: the codec is on a floor or
            // plateau (SPERR's smallest stream, a chunk collapsed to one bin) where steps
            // in that direction only repeat the result. Exact decodes repeat too, but only
            // until a looser bound leaves the precision floor.
            let plateau = db.is_finite() && previous == Some((attempt.payload.len(), db.to_bits()));
            previous = Some((attempt.payload.len(), db.to_bits()));
            if let (0, Some(c)) = (tried, ceiling) {
                self.runner_up_gap = Some(self.least_size(attempt.stored, db - target) / c as f64);
            }
            if ceiling.is_some_and(|c| self.hopeless(attempt.stored, db - target, c)) {
                break;
            }
            first_met |= tried == 0 && met;
            let bits = self.bits_per_value(attempt.stored);
            bracket.record(attempt.bound, db, met, codec_for(codec).psnr_slope(bits));
            if met && attempt.smaller_than(&kept) {
                let reason = match (tried, first_met) {
                    (0, _) => "proposal",
                    (_, true) => "loosened",
                    _ => "corrected",
                };
                kept = Some(Landed {
                    attempt,
                    db,
                    measured,
                    reason,
                });
            }
            let overshoot = kept.as_ref().map_or(f64::INFINITY, |k| k.db - target);
            let limit = if overshoot > budget.far_db {
                budget.far
            } else {
                budget.near
            };
            let close_enough = kept.as_ref().is_some_and(|k| {
                overshoot <= budget.close_db(self.bits_per_value(k.attempt.stored))
            });
            // A plateau of misses above a bound that met still has the bracket between
            // them to halve ([`Bracket::next_bound`]): SPERR's smallest stream at 39.87 dB
            // twice, after 49.78 dB at a bound 12× tighter (a telescope's PSF at 40 dB).
            let plateau = plateau && (met || bracket.met.is_none());
            if close_enough || tried + 1 >= limit || plateau {
                break;
            }
            let Some(bound) = bracket
                .next_bound_above(target + budget.aim_db, floor)
                .and_then(|b| untried_stair(codec, b, &tried_bounds, &bracket))
            else {
                break;
            };
            attempt = match self.try_bound(codec, bound) {
                Err(e) if refused(&e) => break,
                attempt => attempt?,
            };
            tried_bounds.push(bound);
        }
        self.erratic |= bracket.erratic();
        Ok(kept)
    }

    /// The tightest bound a search for `target` dB tries ([`Bracket::next_bound_above`]):
    /// a PSNR target's safe bound, which meets it whatever the values (MSE ≤ bound²), so a
    /// tighter one only stores more; 0 for other targets.
    fn safe_floor(&self, target: f64) -> f64 {
        match self.settings.target.kind {
            TargetKind::Psnr => {
                let safe = safe_bound(self.extent().range(), target);
                if safe.is_finite() {
                    safe
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    }

    /// SSIM has no safe bound: when no search met the target, tightens `bound` by 4× at a
    /// time until SSIM meets it, then lossless.
    fn tighten_ssim(
        &mut self,
        codec: CodecId,
        mut bound: f64,
        target: f64,
    ) -> Result<Outcome, SelectError> {
        for _ in 0..8 {
            bound /= 4.0;
            let attempt = match self.try_bound(codec, bound) {
                Err(e) if refused(&e) => break,
                attempt => attempt?,
            };
            let ssim = self.ssim(&attempt)?;
            if ssim >= target {
                return Ok(attempt.into_outcome("corrected", Some(ssim)));
            }
        }
        self.lossless("SSIM target unreachable with a lossy codec: lossless")
    }

    /// The chunk's ratio with `attempt`'s payload, as a user measures it (raw bytes over
    /// stored bytes, header included).
    fn chunk_ratio(&self, attempt: &Attempt) -> f64 {
        let header = chunk::header_len(self.shape);
        metrics::compression_ratio(self.data.byte_len(), header + attempt.stored)
    }

    /// The tightest bound whose ratio reaches the target (the best quality at that size),
    /// by secant steps in (ln bound, ln ratio) inside the bracket of bounds seen to reach
    /// and to miss it. One point gives its own slope: at `B` bits per value a codec saves
    /// about one bit per halving of precision, so d ln ratio / d ln bound ≈ ratio / (B·ln 2).
    /// Steps aim 1% above the target and stop once an attempt lands within 3% above it,
    /// when the bracket is narrower than 2%, or after [`RATIO_STEPS`] compressions. On
    /// ../shared/data, ratios 4, 16 and 64 took 3.3 / 3.3 / 4.1 compressions per chunk
    /// where bisecting 12 decades of bound to 5% took 9, for a PSNR 0.2 dB below the
    /// bisection's at 16 and 64; stopping within 1.5% cost 0.1–0.3 more compressions to
    /// gain 0.1–0.2 dB, and chased the noise of a ratio that is not smooth in the bound.
    /// When no bound reaches it, keeps the loosest tried (the ratio closest to it).
    ///
    /// The ratio is the chunk's, as a user measures it (raw bytes over stored bytes): the
    /// header, checksum and quality record count too (26 bytes of a 1.5 kB ZFP chunk met
    /// 50 on its payload and stored 49.4).
    pub(super) fn reach_ratio(&mut self, first: Attempt) -> Result<Outcome, SelectError> {
        let target = self.settings.target.value();
        let value_bits = self.value_bits();
        let (codec, first_bound) = (first.codec, first.bound);
        let mut reached: Option<Attempt> = None;
        let mut loosest_miss: Option<Attempt> = None;
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut tried: Vec<f64> = Vec::new();
        let mut attempt = first;
        for step in 1..=RATIO_STEPS {
            let r = self.chunk_ratio(&attempt);
            points.push((attempt.bound.ln(), r.ln()));
            tried.push(attempt.bound);
            let close = r >= target && r <= target * 1.03;
            if r >= target {
                if reached.as_ref().is_none_or(|k| attempt.bound < k.bound) {
                    reached = Some(attempt);
                }
            } else if loosest_miss
                .as_ref()
                .is_none_or(|m| attempt.bound > m.bound)
            {
                loosest_miss = Some(attempt);
            }
            if close || step == RATIO_STEPS {
                break;
            }
            let bracket = (
                loosest_miss.as_ref().map(|m| m.bound),
                reached.as_ref().map(|k| k.bound),
            );
            let Some(bound) = next_ratio_bound(&points, (target * 1.01).ln(), value_bits, bracket)
                .and_then(|bound| untried_ratio_stair(codec, bound, &tried, bracket))
            else {
                break;
            };
            attempt = match self.try_bound(codec, bound) {
                Err(e) if refused(&e) => break,
                attempt => attempt?,
            };
        }
        let (attempt, reason) = match (reached, loosest_miss) {
            (Some(a), _) if a.bound == first_bound => (a, "proposal"),
            (Some(a), _) if a.bound > first_bound => (a, "loosened"),
            (Some(a), _) => (a, "corrected"),
            (None, Some(m)) => (m, "ratio unreachable: loosest bound tried"),
            (None, None) => unreachable!("every attempt reaches the target or misses it"),
        };
        let r = self.chunk_ratio(&attempt);
        let mut outcome = attempt.into_outcome(reason, Some(r));
        outcome.compressions = self.compressions;
        Ok(outcome)
    }
}
