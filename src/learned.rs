//! The learned chooser: the surrogate as a [`Proposer`].
//!
//! For each chunk it extracts the features (stage 1), scores every candidate
//! (compressor × a fine grid of relative bounds) in one batched inference (stage 2), and
//! proposes the candidate with the highest predicted ratio whose predicted metric clears
//! the target by a margin. For PSNR the grid starts at the safe bound, whose PSNR is
//! certain, so the proposal is never worse than the safe choice by the model's own ratio
//! estimate, and the model only has to rank the looser bounds where it earns its keep.
//!
//! [`proposer_for`] decides which chooser a write uses: the surrogate when it loads, the
//! analytic SZ3 formula only for absolute bounds or when the user opted in to the fallback.

use crate::codec::{codec_for, effective_bound, Sperr};
use crate::features::{self, Extent};
use crate::samples::Samples;
use crate::select::{
    safe_bound, Alternative, Analytic, Proposal, Proposer, SelectError, SZ3_ERRATIC_BITS,
};
use crate::settings::Settings;
use crate::ssim_psnr::{SsimAsPsnr, WindowVariances};
use crate::surrogate::{self, Candidate, Prediction, Surrogate};
use crate::train::calibrate::{MetricMargins, PsnrMargins, Table, BANDS};
use crate::train::moe::COMPRESSORS;
use crate::wire::{flags, CodecId, CompressorChoice, Mode, TargetKind};

/// Environment switch that allows the analytic fallback for every write in the process.
pub const FALLBACK_ENV: &str = "H5Z_DEEPCQ_ALLOW_FALLBACK";

/// Relative bounds per compressor scored for one chunk. Inference time grows with the
/// grid; guarantee mode's PSNR choice interpolates between grid points ([`crossings`]),
/// and with 24 points it kept as much of the best ratio as 64 points without interpolation
/// did, at a third of the inference.
const GRID_POINTS: usize = 24;

/// Loosest relative bound considered (the training grid's upper end).
const LOOSEST: f64 = 1e-1;

/// Loosest relative bound a ratio target may be given when the grid cannot reach it
/// ([`beyond_the_grid`]): the whole value range, where every value may become any other.
const LOOSEST_EXTRAPOLATED: f64 = 1.0;

/// Exponent of the ratio's growth with the bound assumed beyond [`LOOSEST`].
const LOW_RATE_EXPONENT: f64 = 0.5;

/// Tightest relative bound considered for SSIM and ratio targets.
const TIGHTEST: f64 = 1e-7;

/// Fast mode's PSNR margin (dB), the same for every model, in all but SPERR's lower bands
/// ([`FAST_PSNR_MARGINS`]), and the most it aims above the target. A miss costs it a second
/// compression and decode, and a second miss the safe bound, so it aims higher than guarantee
/// mode (whose calibrated margin lets half the first tries miss in-sample). Before memory
/// and the margins by band, flat margins of 0.25, 1.5 and 3 dB on every compressor kept the
/// same ratio on ../shared/data within 0.03 of the best oracle's, while the compressions per
/// chunk fell from 1.7–1.8 to 1.3–1.65 (docs/bench.md).
pub const FAST_PSNR_MARGIN_DB: f64 = 3.0;

/// Fast mode's PSNR margins (dB) per compressor (sz3, zfp, sperr) and band of predicted
/// excess ([`crate::train::calibrate::excess_band`]): [`FAST_PSNR_MARGIN_DB`] but for
/// SPERR's two lower bands, where the model errs least. Held out (`deepcq train --lodo
/// --held-out`), SPERR's predictions in band 0 fell more than 0.25 dB short on 0.4% of the
/// rows and in band 1 more than 1.5 dB short on a fifth (each dataset weighing the same),
/// so 3 dB there mostly bought overshoot: on ../shared/data fast mode kept 0.665 / 0.768 /
/// 0.858 of the best oracle's ratio at 40 / 60 / 80 dB with 3 dB and 0.700 / 0.801 / 0.881
/// with these, and out of sample (docs/bench.md) 0.693 / 0.753 / 0.913 → 0.758 / 0.772 /
/// 0.948, both at 1.8–1.9× one compression. Lowering SZ3's and ZFP's margins to their own
/// held-out error the same way lost ratio instead (0.632 at 40 dB): fast mode searches no
/// runner-up, and SZ3, ranked first more often, lost to SPERR on the smooth fields.
pub const FAST_PSNR_MARGINS: Table = [
    [FAST_PSNR_MARGIN_DB; BANDS],
    [FAST_PSNR_MARGIN_DB; BANDS],
    [0.25, 1.5, FAST_PSNR_MARGIN_DB, FAST_PSNR_MARGIN_DB],
];

/// The widest PSNR margin (dB) predict mode aims with where it pays for a look (fast mode's
/// margin). Where the model's calibrated margin for the compressor and band of predicted
/// excess is wider (its held-out error there is large: on the committed model SZ3 4.5 dB in
/// its second band, ZFP 3.5 in its fourth, SPERR 5 and 9 dB in its second and third, and
/// 40, the search's ceiling, which only a prediction 40 dB above the target clears without
/// a look, in the bands with too few held-out chunks to calibrate:
/// SZ3's two upper, ZFP's two lower and SPERR's top one), predict mode may aim this far
/// above the target and then measures the payload
/// ([`crate::select::Proposal::needs_look`]), correcting a miss as fast mode does. Those
/// bands hold the smooth chunks whose PSNR lies far above the bound's, where SPERR stores
/// most: with the calibrated margins alone predict mode left SPERR out of them and kept
/// 0.447 / 0.624 / 0.776 of the best oracle's ratio on ../shared/data at 40 / 60 / 80 dB,
/// 0.545 / 0.655 / 0.776 with these looks, at the same time (docs/bench.md, "Predict
/// mode's capped margins").
pub const PREDICT_LOOK_MARGIN_DB: f64 = FAST_PSNR_MARGIN_DB;

/// How many times the calibrated choice's predicted ratio the choice within
/// [`PREDICT_LOOK_MARGIN_DB`] must promise before predict mode takes it and pays for the
/// look. Any gain: 0.579 / 0.752 / 0.835 of the best oracle's ratio on ../shared/data for
/// 1.54 / 1.61 / 1.69× one compression's time, looking at 54 / 55 / 52 of 98 chunks (every
/// choice in a band whose margin is wider, within it or not); 1.1: 0.602 /
/// 0.683 / 0.801 for 1.53 / 1.42 / 1.48×; 1.25: 0.545 / 0.655 / 0.776 for 1.42 / 1.25 /
/// 1.26×, where the calibrated margins alone gave 0.447 / 0.624 / 0.776 for 1.40 / 1.25 /
/// 1.25×.
pub const PREDICT_LOOK_GAIN: f64 = 1.25;

/// The most predict mode aims above a ratio target. Its calibrated margin (4.55× on the
/// committed model, for 99.5% of held-out choices with no second look) now lands past
/// [`crate::select::SURPRISE_FACTOR`] × the target on most chunks, which predict mode
/// checks by the stored size and searches from; so it aims where a first payload usually
/// lands between the target and that factor (the held-out ratio error is about 30%).
pub const PREDICT_RATIO_AIM: f64 = 1.5;

/// How far a prediction must clear the target before it is trusted.
///
/// PSNR margins come from the model's metadata when it has them: calibrated on its
/// leave-one-dataset-out predictions (`train::calibrate`). Predict mode's are per compressor
/// and band of predicted excess over the point-wise-bound line, so that its choices meet the
/// target in 99.5% of held-out cases, each held-out dataset weighing the same, without a
/// look (predict mode looks where it aims inside them, [`PREDICT_LOOK_MARGIN_DB`]);
/// guarantee mode's are one flat
/// margin reaching 70% (it measures and corrects, so its margin only trades an extra
/// compression against ratio). Predict mode's SSIM and ratio margins are calibrated the same
/// way, to the same 99.5%, where the model carries them (the ratio's at most
/// [`PREDICT_RATIO_AIM`]: its size is checked); guarantee mode's are constants (it
/// measures SSIM and ratio too, and corrects a miss). Fast mode's are constants:
/// [`FAST_PSNR_MARGINS`] and guarantee mode's SSIM and ratio margins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Margins {
    /// dB added to a PSNR target, per compressor in the model's one-hot order and band of
    /// predicted excess ([`crate::train::calibrate::excess_band`]).
    pub psnr_db: Table,
    /// Fraction of the SSIM target's gap `1 − T` that a prediction must keep in reserve.
    pub ssim_gap: f64,
    /// Factor on a ratio target the predicted ratio must reach.
    pub ratio: f64,
}

impl Margins {
    /// The margins a mode uses with a model that carries no calibrated PSNR margins (the
    /// constants used before calibration; the median held-out |ΔPSNR| was 1.7 dB).
    pub fn for_mode(mode: Mode) -> Margins {
        match mode {
            Mode::Guarantee => Margins {
                psnr_db: [[1.0; BANDS]; 3],
                ssim_gap: 0.3,
                ratio: 1.05,
            },
            Mode::Fast => Margins {
                psnr_db: FAST_PSNR_MARGINS,
                ..Margins::for_mode(Mode::Guarantee)
            },
            Mode::Predict => Margins {
                psnr_db: [[4.0; BANDS]; 3],
                ssim_gap: 0.6,
                ratio: 1.3,
            },
        }
    }

    /// The margins a mode uses with the calibrated PSNR margins and predict mode's SSIM and
    /// ratio margins, where the model has them.
    pub fn calibrated(
        mode: Mode,
        psnr: Option<&PsnrMargins>,
        metrics: Option<&MetricMargins>,
    ) -> Margins {
        let mut margins = Margins::for_mode(mode);
        if let Some(c) = psnr {
            margins.psnr_db = match mode {
                Mode::Guarantee => c.guarantee,
                Mode::Predict => c.predict,
                Mode::Fast => margins.psnr_db,
            };
        }
        if let (Mode::Predict, Some(m)) = (mode, metrics) {
            margins.ssim_gap = m.ssim_gap;
            margins.ratio = m.ratio.min(PREDICT_RATIO_AIM);
        }
        margins
    }

    /// These margins with no PSNR margin wider than `cap_db`.
    fn capped(&self, cap_db: f64) -> Margins {
        let mut capped = *self;
        for margin in capped.psnr_db.iter_mut().flatten() {
            *margin = margin.min(cap_db);
        }
        capped
    }

    /// The PSNR margin for a candidate predicted to reach `psnr` (the largest margin for a
    /// compressor the table does not know).
    fn psnr_for(&self, candidate: &Candidate, psnr: f64) -> f64 {
        match COMPRESSORS
            .iter()
            .position(|&n| n == candidate.codec.name())
        {
            Some(i) => PsnrMargins::lookup(&self.psnr_db, i, psnr, candidate.rel_bound),
            None => self.psnr_db.iter().flatten().copied().fold(0.0, f64::max),
        }
    }
}

/// The surrogate-backed proposer.
#[derive(Debug)]
pub struct Learned {
    surrogate: &'static Surrogate,
}

impl Learned {
    /// Wraps a loaded surrogate.
    pub fn new(surrogate: &'static Surrogate) -> Learned {
        Learned { surrogate }
    }

    /// The candidates for one chunk: the allowed compressors × a log grid of relative
    /// bounds from `tightest` to [`LOOSEST`], or `tightest` alone when it is looser (the
    /// safe bound of a PSNR target under 20 dB, certain whatever the model says; the grid's
    /// end instead overshot such targets by 5 dB and more).
    fn candidates(&self, compressor: CompressorChoice, tightest: f64) -> Vec<Candidate> {
        let codecs: Vec<CodecId> = self
            .surrogate
            .compressors()
            .iter()
            .copied()
            .filter(|&c| allowed(compressor, c))
            .collect();
        let steps = if tightest < LOOSEST { GRID_POINTS } else { 1 };
        let step = (LOOSEST / tightest).ln() / (steps.max(2) - 1) as f64;
        codecs
            .iter()
            .flat_map(|&codec| {
                (0..steps).map(move |i| Candidate {
                    codec,
                    rel_bound: tightest * (step * i as f64).exp(),
                })
            })
            .collect()
    }
}

/// The absolute bound of candidate `c` for a chunk of value range `range`. A ZFP candidate
/// of the grid is the power of two zfp works to over the range; multiplied back, it may
/// come out an ulp under that power (1/49 × 49 < 1), whose exponent zfp takes one lower,
/// working to half the bound the model scored: about one ZFP proposal in seven was a
/// stair (6 dB, a bit a value) tighter than chosen. Nudged up by a few ulps first, it
/// comes back to its power of two; a bound off the grid (extrapolated for a ratio) still
/// goes down to the power zfp works to, never up.
fn absolute_bound(c: Candidate, range: f64) -> f64 {
    let bound = c.rel_bound * range;
    match c.codec {
        CodecId::Zfp if bound > 0.0 && bound.is_finite() => {
            effective_bound(CodecId::Zfp, bound * (1.0 + 4.0 * f64::EPSILON))
        }
        _ => bound,
    }
}

/// Values a chunk SPERR cannot transform must hold before predict and fast mode leave SPERR
/// out: on a few dozen values (a 2 × 16 edge block) the codecs' headers, not their coding,
/// decide, and SZ3's are the largest.
const SZ3_ONLY_MIN_VALUES: usize = 4096;

/// Lag-1 correlation along the long axis above which a chunk counts as smooth there.
const SMOOTH_LAG1: f64 = 0.5;

/// Whether the values of a series or of a 2-D chunk follow on from each other along its
/// longer axis: the mean lag-1 correlation of up to 16 of its lines, each over up to 1024
/// neighbouring pairs from its middle, is at least [`SMOOTH_LAG1`]. Noise scores about 0,
/// a smooth series about 1.
fn smooth_along_long_axis(data: Samples<'_>, shape: &[usize]) -> bool {
    // At most two dims: a series is one column.
    let dims = crate::samples::fit_rank(shape, 2);
    let (rows, cols) = (dims[0], dims.get(1).copied().unwrap_or(1));
    // A line runs along the longer axis: `len` values `step` apart, `lines` of them
    // `across` apart.
    let (len, step, lines, across) = if rows >= cols {
        (rows, cols, cols, 1)
    } else {
        (cols, 1, rows, cols)
    };
    let pairs = len.saturating_sub(1).min(1024);
    let start = (len.saturating_sub(1) - pairs) / 2;
    let picked = lines.min(16);
    let mut sum = 0.0;
    let mut counted = 0;
    for l in 0..picked {
        let line = l * lines / picked;
        let at = |i: usize| data.value(line * across + (start + i) * step);
        let values: Vec<f64> = (0..=pairs)
            .filter_map(at)
            .filter(|x| x.is_finite())
            .collect();
        if values.len() < 3 {
            continue;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var: f64 = values.iter().map(|x| (x - mean).powi(2)).sum();
        let cov: f64 = values
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum();
        if var > 0.0 {
            sum += cov / var;
            counted += 1;
        }
    }
    counted > 0 && sum / counted as f64 >= SMOOTH_LAG1
}

fn allowed(choice: CompressorChoice, codec: CodecId) -> bool {
    match choice {
        CompressorChoice::Auto => true,
        CompressorChoice::Sz3 => codec == CodecId::Sz3,
        CompressorChoice::Zfp => codec == CodecId::Zfp,
        CompressorChoice::Sperr => codec == CodecId::Sperr,
    }
}

impl Proposer for Learned {
    fn propose(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        extent: Extent,
        settings: &Settings,
    ) -> Result<Proposal, SelectError> {
        if settings.target.kind == TargetKind::AbsBound {
            return Analytic.propose(data, shape, extent, settings);
        }
        Ok(self.choose_scored(data, shape, extent, settings, true)?.0)
    }
}

impl Learned {
    /// The learned proposal for a metric target and the model's full prediction for it,
    /// from one feature extraction and one inference. Predict mode's PSNR choice inside the
    /// model's calibrated margin ([`PREDICT_LOOK_MARGIN_DB`]) is open to it only where
    /// `may_look` (a write, which looks at it; not advice, which is not looked at).
    fn choose_scored(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        extent: Extent,
        settings: &Settings,
        may_look: bool,
    ) -> Result<(Proposal, Prediction), SelectError> {
        let kind = settings.target.kind;
        let target = settings.target.value();
        let safe_rel = safe_bound(1.0, target);
        let tightest = match kind {
            TargetKind::Psnr => safe_rel,
            _ => TIGHTEST,
        };
        let mut candidates = self.candidates(settings.compressor, tightest);
        if settings.compressor == CompressorChoice::Auto {
            candidates.retain(|c| {
                c.codec != CodecId::Sperr || c.rel_bound * extent.range() <= Sperr::COARSEST_BOUND
            });
            // A series, or a 2-D chunk with an axis of under 9 values (a table's few
            // columns), gets no wavelet from SPERR ([`Sperr::transforms`]), and ZFP's
            // 4-value blocks do little along a single long axis: SZ3 stored least on 59 of
            // 63 such (array, target) pairs of ../shared/data and the fifth unseen set
            // (docs/bench.md, "Chunks SPERR cannot transform"), where the model, which saw
            // few of them, often ranked SPERR or ZFP first. Predict and fast mode, which
            // search another compressor only now and then, propose SZ3 there when the values
            // follow on from each other along the long axis; guarantee mode still searches
            // all three. On noise (an EMG, generated noise series at 80–90 dB) SZ3 predicts
            // nothing and SPERR's bit planes stored less.
            if settings.mode != Mode::Guarantee
                && data.len() >= SZ3_ONLY_MIN_VALUES
                && !Sperr::transforms(shape)
                && smooth_along_long_axis(data, shape)
            {
                candidates.retain(|c| c.codec == CodecId::Sz3);
            }
        }
        // ZFP works to the power of two at or below its bound, and the model learned its
        // PSNR at those (`Row::effective_rel_bound`): a candidate is scored, and proposed,
        // at the bound the codec will use; candidates on one stair become one.
        let range = extent.range();
        for c in &mut candidates {
            let bound = c.rel_bound * range;
            if bound > 0.0 && bound.is_finite() {
                c.rel_bound = effective_bound(c.codec, bound) / range;
            }
        }
        candidates.dedup_by(|a, b| a.codec == b.codec && a.rel_bound == b.rel_bound);
        if candidates.is_empty() {
            return Err(SelectError::Proposer(
                "the model knows none of the allowed compressors".into(),
            ));
        }
        let features = features::extract_with(data, shape, extent);
        let predictions = self
            .surrogate
            .predict(&features, &candidates)
            .map_err(|e| SelectError::Proposer(e.to_string()))?;
        let metadata = self.surrogate.metadata();
        let calibrated = Margins::calibrated(
            settings.mode,
            metadata.psnr_margins.as_ref(),
            metadata.metric_margins.as_ref(),
        );
        let to_the_edge = settings.mode != Mode::Predict;
        // An SSIM target goes through the PSNR it needs on this chunk, which the model
        // predicts far better than SSIM near 1 (crate::ssim_psnr).
        let ssim_as_psnr = (kind == TargetKind::Ssim)
            .then(|| WindowVariances::sample(data, shape, extent.range()))
            .flatten()
            .map(|windows| SsimAsPsnr::new(windows, target));
        let rule = Rule {
            kind,
            target,
            safe_rel,
            margins: &calibrated,
            to_the_edge,
            ssim_as_psnr: ssim_as_psnr.as_ref(),
        };
        let trusted = choose(&rule, &candidates, &predictions);
        let capped = calibrated.capped(PREDICT_LOOK_MARGIN_DB);
        let looked_at = (may_look && settings.mode == Mode::Predict && kind == TargetKind::Psnr)
            .then(|| {
                let value_bits = 8.0 * data.byte_len() as f64 / data.len().max(1) as f64;
                let measured = measured_anyway(&trusted.0, trusted.1.cr, value_bits, safe_rel);
                let trusted = (trusted.1.cr, measured);
                choice_to_look_at(&rule, &capped, trusted, &candidates, &predictions)
            })
            .flatten();
        let (rule, (best, mut prediction, predicted)) = match looked_at {
            Some((bold, choice)) => (bold, choice),
            None => (rule, trusted),
        };
        let needs_look = |c: &Candidate, p: &Prediction| {
            looked_at.is_some() && short_of_calibrated(target, safe_rel, &calibrated, c, p)
        };
        if kind == TargetKind::Psnr {
            // At or below the safe bound the PSNR is certain, whatever the model says.
            prediction.psnr = predicted;
        }
        let searched = matches!(kind, TargetKind::Psnr | TargetKind::Ssim);
        let alternative = |passed: &[CodecId]| {
            searched
                .then(|| runner_up(&rule, passed, &candidates, &predictions))
                .flatten()
                .map(|(c, p, predicted)| Alternative {
                    codec: c.codec,
                    bound: absolute_bound(c, extent.range()),
                    predicted: Some(predicted),
                    predicted_ratio: Some(p.cr),
                    needs_look: needs_look(&c, &p),
                })
        };
        let runner_up = alternative(&[best.codec]);
        let third = runner_up
            .filter(|_| settings.mode != Mode::Predict)
            .and_then(|r| alternative(&[best.codec, r.codec]));
        let proposal = Proposal {
            codec: best.codec,
            bound: absolute_bound(best, extent.range()),
            predicted: Some(predicted),
            predicted_ratio: Some(prediction.cr),
            skip_runner_up_within: None,
            runner_up,
            third,
            needs_look: needs_look(&best, &prediction),
        };
        Ok((proposal, prediction))
    }

    /// The proposal for finite, non-constant `data` and every metric the model predicts
    /// for it, without compressing: the in-situ API's advice.
    pub fn advise(
        &self,
        data: Samples<'_>,
        shape: &[usize],
        extent: Extent,
        settings: &Settings,
    ) -> Result<(Proposal, Prediction), SelectError> {
        if settings.target.kind != TargetKind::AbsBound {
            let (proposal, prediction) =
                self.choose_scored(data, shape, extent, settings, false)?;
            let prediction = match settings.target.kind {
                TargetKind::Ratio => beyond_the_grid_prediction(&proposal, prediction),
                _ => prediction,
            };
            return Ok((proposal, prediction));
        }
        // An absolute bound is SZ3's formula; the model only predicts what it will reach.
        let proposal = self.propose(data, shape, extent, settings)?;
        let candidate = Candidate {
            codec: proposal.codec,
            rel_bound: effective_bound(proposal.codec, proposal.bound) / extent.range(),
        };
        let features = features::extract_with(data, shape, extent);
        let prediction = self
            .surrogate
            .predict(&features, &[candidate])
            .map_err(|e| SelectError::Proposer(e.to_string()))?
            .pop()
            .ok_or_else(|| SelectError::Proposer("the model returned no prediction".into()))?;
        Ok((proposal, prediction))
    }
}

/// What a choice is judged by: the target, the margins it must clear and, for SSIM, the
/// PSNR each compressor needs on this chunk ([`crate::ssim_psnr`]).
#[derive(Clone, Copy)]
struct Rule<'a> {
    kind: TargetKind,
    target: f64,
    /// The safe bound relative to the range (PSNR targets are certain at or below it).
    safe_rel: f64,
    margins: &'a Margins,
    /// Whether a PSNR pick may lie between grid rows ([`crossings`]).
    to_the_edge: bool,
    ssim_as_psnr: Option<&'a SsimAsPsnr>,
}

/// Predict mode's choice within `capped` margins ([`PREDICT_LOOK_MARGIN_DB`]) and the rule
/// it was made by, when it is predicted to store [`PREDICT_LOOK_GAIN`] times
/// `trusted_cr`, the predicted ratio of `calibrated`'s choice; None when it is not, and
/// the calibrated choice, which needs no look, stands.
///
/// With `trusted_measured` (the calibrated choice is measured anyway: SZ3 below
/// [`SZ3_ERRATIC_BITS`] per value) a choice of another compressor needs only to promise
/// `trusted_cr`: its look costs no decode the trusted choice would not have.
/// Not a bolder SZ3: at those rates its PSNR is erratic, and its misses, corrected, stored
/// more than the trusted bound (nmc's storm T, U, V at 40 dB: 1.02 → 0.60–0.75 of the best
/// oracle's ratio).
fn choice_to_look_at<'a>(
    calibrated: &Rule<'a>,
    capped: &'a Margins,
    (trusted_cr, trusted_measured): (f64, bool),
    candidates: &[Candidate],
    predictions: &[Prediction],
) -> Option<(Rule<'a>, (Candidate, Prediction, f64))> {
    let bold = Rule {
        margins: capped,
        ..*calibrated
    };
    let choice = choose(&bold, candidates, predictions);
    let gain = match trusted_measured && choice.0.codec != CodecId::Sz3 {
        true => 1.0,
        false => PREDICT_LOOK_GAIN,
    };
    (choice.1.cr >= gain * trusted_cr).then_some((bold, choice))
}

/// Whether predict mode will decode and measure `choice`, predicted to store `cr` of raw
/// values of `value_bits`, whatever the model says of its PSNR: SZ3 predicted below
/// [`SZ3_ERRATIC_BITS`] per value (`crate::select::search`'s erratic rates) at a bound
/// looser than the safe one, `safe_rel` of the range (a bound at or below it meets the
/// target unmeasured).
fn measured_anyway(choice: &Candidate, cr: f64, value_bits: f64, safe_rel: f64) -> bool {
    choice.codec == CodecId::Sz3
        && choice.rel_bound > safe_rel * (1.0 + 1e-9)
        && value_bits / cr < SZ3_ERRATIC_BITS
}

/// True when candidate `c`, predicted `p`, is not certain to meet a PSNR `target` (its
/// bound is looser than the safe one, `safe_rel` of the range, or it is ZFP's, whose
/// tolerance is no promise, as [`choose`] has it) and its predicted PSNR falls short of the
/// target plus its `calibrated` margin: a choice predict mode must look at.
fn short_of_calibrated(
    target: f64,
    safe_rel: f64,
    calibrated: &Margins,
    c: &Candidate,
    p: &Prediction,
) -> bool {
    !certain(c, safe_rel) && p.psnr < target + calibrated.psnr_for(c, p.psnr)
}

/// True when candidate `c` meets any PSNR target whose safe bound is `safe_rel` of the
/// range, whatever the model says: at or under that bound, with a codec that keeps its
/// bound (ZFP's tolerance is no promise: its rows are admitted by their prediction, as
/// `Search::certain_to_meet` measures them).
fn certain(c: &Candidate, safe_rel: f64) -> bool {
    c.codec != CodecId::Zfp && c.rel_bound <= safe_rel * (1.0 + 1e-9)
}

/// Picks a candidate, the model's prediction for it, and the target metric it is expected
/// to reach (for PSNR at the safe bound: at least the target, whatever the model says).
///
/// With `to_the_edge` (guarantee mode) a PSNR pick may lie between grid rows, where the
/// predicted PSNR crosses target + margin ([`crossings`]): a miss there costs one more
/// compression. Predict mode gets no second look and keeps the last grid row before the
/// crossing; the grid step is its extra safety. On ../shared/data that met the target on
/// every chunk at 80 dB, against 93% when predict mode interpolated too.
fn choose(
    rule: &Rule<'_>,
    candidates: &[Candidate],
    predictions: &[Prediction],
) -> (Candidate, Prediction, f64) {
    let Rule {
        kind,
        target,
        safe_rel,
        margins,
        to_the_edge,
        ssim_as_psnr,
    } = *rule;
    let scored = candidates.iter().zip(predictions);
    let pick = |ok: &dyn Fn(&Candidate, &Prediction) -> bool,
                score: &dyn Fn(&Prediction) -> f64| {
        scored
            .clone()
            .filter(|(c, p)| ok(c, p))
            .max_by(|a, b| score(a.1).total_cmp(&score(b.1)))
            .map(|(c, p)| (*c, *p))
    };
    // Where nothing is predicted to reach the target: the best by `score`, of equals the
    // tightest (a model that gave no number on the chunk scores every candidate alike).
    let fallback = |score: &dyn Fn(&Candidate, &Prediction) -> f64| {
        scored
            .clone()
            .max_by(|a, b| {
                let better = score(a.0, a.1).total_cmp(&score(b.0, b.1));
                better.then(b.0.rel_bound.total_cmp(&a.0.rel_bound))
            })
            .map(|(c, p)| (*c, *p))
            .expect("candidates")
    };
    match (kind, ssim_as_psnr) {
        (TargetKind::Psnr, _) => {
            // The safe bound meets the target whatever the model says ([`certain`]).
            let admissible =
                |c: &Candidate, p: &Prediction| p.psnr >= target + margins.psnr_for(c, p.psnr);
            let on_grid = pick(&|c, p| certain(c, safe_rel) || admissible(c, p), &|p| p.cr)
                // A safe bound in the subnormals rounds to its codec's effective bound by
                // up to a few parts in 10^5, which can land it a hair over: the tightest.
                .or_else(|| {
                    scored
                        .clone()
                        .min_by(|a, b| a.0.rel_bound.total_cmp(&b.0.rel_bound))
                        .map(|(c, p)| (*c, *p))
                })
                .expect("candidates");
            let crossings = to_the_edge
                .then(|| crossings(target, margins, candidates, predictions))
                .into_iter()
                .flatten();
            let (c, p) = crossings
                .chain(std::iter::once(on_grid))
                .max_by(|a, b| a.1.cr.total_cmp(&b.1.cr))
                .expect("the grid pick");
            let predicted = if certain(&c, safe_rel) {
                p.psnr.max(target)
            } else {
                p.psnr
            };
            (c, p, predicted)
        }
        (TargetKind::Ssim, Some(needs)) => {
            let clearance = |c: &Candidate, p: &Prediction| {
                p.psnr - needs.need(c.codec) - margins.psnr_for(c, p.psnr)
            };
            let (c, p) = pick(&|c, p| clearance(c, p) >= 0.0, &|p| p.cr)
                // Nothing is predicted to reach it: the candidate that comes closest.
                .unwrap_or_else(|| fallback(&clearance));
            // What the choice relied on: the SSIM expected at the model's PSNR (the model's
            // own SSIM output exceeds 1 on many chunks).
            (c, p, needs.expected_ssim(p.psnr, c.codec))
        }
        (TargetKind::Ssim, None) => {
            let need = 1.0 - (1.0 - target) * (1.0 - margins.ssim_gap);
            match pick(&|_, p| p.ssim >= need, &|p| p.cr) {
                Some((c, p)) => (c, p, p.ssim),
                // Nothing is predicted to reach it: the most faithful candidate.
                None => {
                    let (c, p) = fallback(&|_, p| p.ssim);
                    (c, p, p.ssim)
                }
            }
        }
        (TargetKind::Ratio, _) => {
            let need = target * margins.ratio;
            match pick(&|_, p| p.cr >= need, &|p| p.psnr) {
                Some((c, p)) => (c, p, p.cr),
                None => {
                    let (c, p) = pick(&|_, _| true, &|p| p.cr).expect("candidates");
                    let (c, cr) = beyond_the_grid(c, p.cr, need);
                    (c, p, cr)
                }
            }
        }
        (TargetKind::AbsBound, _) => unreachable!("absolute bounds never reach the model"),
    }
}

/// For a ratio `need` no candidate is predicted to reach: `candidate` (the one predicted
/// to compress most, `cr`) with its bound loosened from the grid's end, [`LOOSEST`], as far
/// as the ratio is expected to need, and the ratio expected there. Beyond the grid the
/// model has not been trained, so the growth is a measured rule: at under a bit per value
/// the codecs' ratios grew 1.35–4× per doubling of the bound on ../shared/data (1.5× at
/// the median), and √2 per doubling, `ratio ∝ bound^0.5`, rarely falls short of what is
/// needed. Capped at [`LOOSEST_EXTRAPOLATED`].
fn beyond_the_grid(candidate: Candidate, cr: f64, need: f64) -> (Candidate, f64) {
    if !(cr > 0.0 && cr < need) {
        return (candidate, cr);
    }
    let start = candidate.rel_bound.max(LOOSEST);
    let wanted = start * (need / cr).powf(1.0 / LOW_RATE_EXPONENT);
    let rel_bound = wanted.clamp(start, LOOSEST_EXTRAPOLATED.max(start));
    let expected = cr * (rel_bound / start).powf(LOW_RATE_EXPONENT);
    (
        Candidate {
            rel_bound,
            ..candidate
        },
        expected,
    )
}

/// What the model's `prediction` for the grid row becomes at a ratio `proposal` loosened
/// beyond the grid ([`beyond_the_grid`]): the ratio expected there, and the PSNR down the
/// point-wise line by the bound's factor (SSIM's loss up by its square), as the
/// in-situ advice reports them. The grid row's own figures described a bound up to 10×
/// tighter: 40 dB and ratio 40 advised for a write of about 100 at some 23 dB.
fn beyond_the_grid_prediction(proposal: &Proposal, prediction: Prediction) -> Prediction {
    let Some(expected) = proposal.predicted.filter(|&r| r > prediction.cr) else {
        return prediction;
    };
    let loosened = (expected / prediction.cr).powf(1.0 / LOW_RATE_EXPONENT);
    Prediction {
        psnr: prediction.psnr - 20.0 * loosened.log10(),
        ssim: 1.0 - (1.0 - prediction.ssim) * loosened * loosened,
        cr: expected,
    }
}

/// For a PSNR target, the points between grid neighbours of one compressor where the
/// predicted PSNR crosses the target plus margin, found by linear interpolation in the log
/// of the bound (PSNR is close to linear there, about −20 dB per decade).
///
/// This is why a coarse grid suffices: the pick lands on the crossing instead of the last
/// grid point before it, at a third of the inference cost of a grid fine enough to do
/// as well. The margin of a crossing is the larger of its neighbours' margins, so a band
/// edge between them never lowers it; the CR is interpolated geometrically.
fn crossings<'a>(
    target: f64,
    margins: &'a Margins,
    candidates: &'a [Candidate],
    predictions: &'a [Prediction],
) -> impl Iterator<Item = (Candidate, Prediction)> + 'a {
    let rows = candidates.windows(2).zip(predictions.windows(2));
    rows.filter_map(move |(c, p)| {
        let (ca, cb, pa, pb) = (c[0], c[1], p[0], p[1]);
        // Between two stairs of a codec whose bounds come in stairs (ZFP's powers of two),
        // the codec works to the lower one: the crossing would be `ca` itself.
        let stairs = codec_for(ca.codec).alike_bounds(ca.rel_bound).is_some();
        if ca.codec != cb.codec || cb.rel_bound <= ca.rel_bound || stairs {
            return None;
        }
        let margin = margins
            .psnr_for(&ca, pa.psnr)
            .max(margins.psnr_for(&cb, pb.psnr));
        let (sa, sb) = (pa.psnr - target - margin, pb.psnr - target - margin);
        // A ratio the model gave no number for (0, `of_row`) has no logarithm to
        // interpolate: the crossing's would be NaN, which ranks above every ratio.
        let ratios = [pa.cr, pb.cr].iter().all(|r| r.is_finite() && *r > 0.0);
        if !(sa >= 0.0 && sb < 0.0 && ratios) {
            return None;
        }
        let t = sa / (sa - sb);
        let between = |a: f64, b: f64| a + t * (b - a);
        let candidate = Candidate {
            codec: ca.codec,
            rel_bound: between(ca.rel_bound.ln(), cb.rel_bound.ln()).exp(),
        };
        let prediction = Prediction {
            psnr: between(pa.psnr, pb.psnr),
            ssim: between(pa.ssim, pb.ssim),
            cr: between(pa.cr.ln(), pb.cr.ln()).exp(),
        };
        Some((candidate, prediction))
    })
}

/// For a PSNR or SSIM target, the best candidate of any compressor but those `passed`, by
/// the same rule, its prediction and its predicted metric: what guarantee mode searches
/// after its first choice.
fn runner_up(
    rule: &Rule<'_>,
    passed: &[CodecId],
    candidates: &[Candidate],
    predictions: &[Prediction],
) -> Option<(Candidate, Prediction, f64)> {
    let (others, predicted): (Vec<Candidate>, Vec<Prediction>) = candidates
        .iter()
        .zip(predictions)
        .filter(|(c, _)| !passed.contains(&c.codec))
        .unzip();
    if others.is_empty() {
        return None;
    }
    Some(choose(rule, &others, &predicted))
}

/// The chooser for a write under `settings`.
///
/// Absolute bounds need no model. Otherwise the surrogate is loaded (once per process); if
/// it cannot be, the write fails with the reason and the fix, unless the user allowed the
/// analytic fallback in cd_values (flags = 1) or with [`FALLBACK_ENV`]`=1`, in which case
/// that is said once (log or stderr) and SZ3's formula is used: quality is still measured and met in
/// guarantee mode, only the ratio may be lower.
pub fn proposer_for(settings: &Settings) -> Result<&'static dyn Proposer, SelectError> {
    static ANALYTIC: Analytic = Analytic;
    if settings.target.kind == TargetKind::AbsBound {
        return Ok(&ANALYTIC);
    }
    match learned() {
        Ok(learned) => Ok(learned),
        Err(reason) if fallback_allowed(settings) => {
            // Allowed, not silent: said once per process, on stderr when no logger would.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                crate::observe::warn(&format!(
                    "using the analytic fallback chooser (SZ3's PSNR formula): {reason}"
                ))
            });
            Ok(&ANALYTIC)
        }
        Err(reason) => Err(SelectError::Proposer(format!(
            "{reason}. To write with SZ3's PSNR formula instead, set cd_values flags = 1 \
             (deepcq cdvalues --allow-analytic-fallback) or {FALLBACK_ENV}=1"
        ))),
    }
}

/// The process-wide learned proposer.
pub fn learned() -> Result<&'static Learned, String> {
    static LEARNED: once_cell::sync::OnceCell<Learned> = once_cell::sync::OnceCell::new();
    let surrogate = surrogate::shared()?;
    Ok(LEARNED.get_or_init(|| Learned::new(surrogate)))
}

fn fallback_allowed(settings: &Settings) -> bool {
    settings.flags & flags::ALLOW_ANALYTIC_FALLBACK != 0
        || std::env::var(FALLBACK_ENV).is_ok_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psnr_case(preds: &[(f64, f64, f64)]) -> Vec<(Candidate, Prediction)> {
        preds
            .iter()
            .map(|&(rel, psnr, cr)| {
                (
                    Candidate {
                        codec: CodecId::Sz3,
                        rel_bound: rel,
                    },
                    Prediction {
                        psnr,
                        ssim: 0.99,
                        cr,
                    },
                )
            })
            .collect()
    }

    fn rule(
        kind: TargetKind,
        target: f64,
        safe_rel: f64,
        margins: &Margins,
        to_the_edge: bool,
    ) -> Rule<'_> {
        Rule {
            kind,
            target,
            safe_rel,
            margins,
            to_the_edge,
            ssim_as_psnr: None,
        }
    }

    /// Predict mode takes the choice within capped margins only where it promises
    /// [`PREDICT_LOOK_GAIN`] times the calibrated choice's ratio.
    #[test]
    fn predict_mode_aims_inside_a_wide_margin_only_where_it_pays() {
        let wide = Margins {
            psnr_db: [[9.0; BANDS]; 3],
            ..Margins::for_mode(Mode::Predict)
        };
        let capped = wide.capped(PREDICT_LOOK_MARGIN_DB);
        assert_eq!(capped.psnr_db, [[PREDICT_LOOK_MARGIN_DB; BANDS]; 3]);
        let case = |looser_cr| {
            // 40 dB: the calibrated margin admits 0.02 (50 dB), the capped one 0.04 (45).
            psnr_case(&[
                (0.01, 50.0, 10.0),
                (0.02, 50.0, 20.0),
                (0.04, 45.0, looser_cr),
                (0.08, 41.0, 80.0),
            ])
        };
        let calibrated = rule(TargetKind::Psnr, 40.0, 0.01, &wide, false);
        let pick = |looser_cr| {
            let (c, p): (Vec<_>, Vec<_>) = case(looser_cr).into_iter().unzip();
            let (_, trusted, _) = choose(&calibrated, &c, &p);
            choice_to_look_at(&calibrated, &capped, (trusted.cr, false), &c, &p)
                .map(|(rule, (c, _, _))| (rule.margins.psnr_db[0][0], c.rel_bound))
        };
        assert_eq!(pick(40.0), Some((PREDICT_LOOK_MARGIN_DB, 0.04)));
        // The capped choice is looked at, the calibrated one and the safe bound are not.
        let short = |(c, p): &(Candidate, Prediction)| short_of_calibrated(40.0, 0.01, &wide, c, p);
        let rows = case(40.0);
        assert_eq!(
            rows.iter().map(short).collect::<Vec<_>>(),
            [false, false, true, true]
        );
        assert_eq!(
            pick(20.0 * PREDICT_LOOK_GAIN),
            Some((PREDICT_LOOK_MARGIN_DB, 0.04))
        );
        assert_eq!(pick(24.0), None);
    }

    /// Where the calibrated choice is measured anyway (SZ3 at an erratic rate), another
    /// compressor's bolder choice is looked at for any predicted gain; a bolder SZ3 still
    /// needs [`PREDICT_LOOK_GAIN`].
    #[test]
    fn a_look_off_a_measured_sz3_choice_needs_no_gain_but_for_sz3() {
        let wide = Margins {
            psnr_db: [[9.0; BANDS]; 3],
            ..Margins::for_mode(Mode::Predict)
        };
        let capped = wide.capped(PREDICT_LOOK_MARGIN_DB);
        let row = |codec, rel_bound, psnr, cr| {
            let p = Prediction {
                psnr,
                ssim: 0.99,
                cr,
            };
            (Candidate { codec, rel_bound }, p)
        };
        // 40 dB: the calibrated margin admits SZ3 at 0.02 (50 dB), the capped one a bold
        // choice at 0.04 (45 dB) predicted to store 1.1 times as much.
        let case = |bold| {
            let (c, p): (Vec<_>, Vec<_>) = [
                row(CodecId::Sz3, 0.01, 55.0, 10.0),
                row(CodecId::Sz3, 0.02, 50.0, 20.0),
                row(bold, 0.04, 45.0, 22.0),
            ]
            .into_iter()
            .unzip();
            (c, p)
        };
        let calibrated = rule(TargetKind::Psnr, 40.0, 0.01, &wide, false);
        let pick = |bold, measured| {
            let (c, p) = case(bold);
            let (trusted, prediction, _) = choose(&calibrated, &c, &p);
            assert_eq!((trusted.codec, trusted.rel_bound), (CodecId::Sz3, 0.02));
            choice_to_look_at(&calibrated, &capped, (prediction.cr, measured), &c, &p)
                .map(|(_, (c, _, _))| (c.codec, c.rel_bound))
        };
        assert_eq!(pick(CodecId::Sperr, true), Some((CodecId::Sperr, 0.04)));
        assert_eq!(pick(CodecId::Sperr, false), None);
        assert_eq!(pick(CodecId::Sz3, true), None);
    }

    /// SZ3 is measured anyway below a bit per value of its raw values (32 or 64), looser
    /// than the safe bound; another compressor, or SZ3 at the safe bound, is not.
    #[test]
    fn sz3_below_a_bit_per_value_looser_than_the_safe_bound_is_measured_anyway() {
        let at = |codec, rel_bound| Candidate { codec, rel_bound };
        let sz3 = at(CodecId::Sz3, 0.02);
        assert!(measured_anyway(&sz3, 33.0, 32.0, 0.01));
        assert!(!measured_anyway(&sz3, 31.0, 32.0, 0.01));
        assert!(measured_anyway(&sz3, 65.0, 64.0, 0.01));
        assert!(!measured_anyway(&sz3, 63.0, 64.0, 0.01));
        assert!(!measured_anyway(
            &at(CodecId::Sperr, 0.02),
            100.0,
            32.0,
            0.01
        ));
        assert!(!measured_anyway(&at(CodecId::Sz3, 0.01), 100.0, 32.0, 0.01));
    }

    #[test]
    fn an_ssim_target_is_chosen_through_the_psnr_each_compressor_needs() {
        let v: Vec<f64> = (0..32 * 32)
            .map(|i| ((i / 32) as f64 / 5.0).sin() + ((i % 32) as f64 / 7.0).cos())
            .collect();
        let range = v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x))
            - v.iter().fold(f64::INFINITY, |m, &x| m.min(x));
        let windows = WindowVariances::sample(Samples::F64(&v), &[32, 32], range).unwrap();
        let target = 0.999;
        let sperr_db = windows.psnr_for(target, CodecId::Sperr);
        assert!(windows.psnr_for(target, CodecId::Sz3) > sperr_db + 4.0);
        // Both compressors predicted alike, 1 dB a row, SZ3 storing 10% less on every row.
        let rows: Vec<(Candidate, Prediction)> = [CodecId::Sz3, CodecId::Sperr]
            .iter()
            .flat_map(|&codec| {
                (0..40).map(move |k| {
                    let k = k as f64;
                    let candidate = Candidate {
                        codec,
                        rel_bound: 1e-2 * 10f64.powf(-k / 20.0),
                    };
                    let cr = 2f64.powf(-k / 6.0) * if codec == CodecId::Sz3 { 1.1 } else { 1.0 };
                    let psnr = sperr_db - 9.5 + k;
                    (
                        candidate,
                        Prediction {
                            psnr,
                            ssim: 2.0,
                            cr,
                        },
                    )
                })
            })
            .collect();
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let margins = Margins::for_mode(Mode::Predict);
        let needs = SsimAsPsnr::new(windows, target);
        let rule = Rule {
            ssim_as_psnr: Some(&needs),
            ..rule(TargetKind::Ssim, target, 1e-3, &margins, false)
        };
        let (chosen, prediction, predicted) = choose(&rule, &c, &p);
        // SZ3's 10% does not pay for the 4.8 dB more it needs; the model's SSIM (2, i.e.
        // every row "meets" it) is not what decides, nor what is reported.
        assert_eq!(chosen.codec, CodecId::Sperr);
        assert!(predicted > target && predicted < 1.0, "{predicted}");
        let margin = margins.psnr_db[0][0];
        let over = prediction.psnr - sperr_db - margin;
        assert!((0.0..1.0).contains(&over), "{over} dB over need + margin");
    }

    fn run(kind: TargetKind, target: f64, rows: &[(Candidate, Prediction)]) -> (Candidate, f64) {
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let margins = Margins::for_mode(Mode::Guarantee);
        let judged = rule(kind, target, safe_bound(1.0, target), &margins, true);
        let (chosen, prediction, reached) = choose(&judged, &c, &p);
        if let Some(row) = rows.iter().find(|r| r.0 == chosen) {
            assert_eq!(prediction, row.1, "the chosen row's own prediction");
        }
        (chosen, reached)
    }

    #[test]
    fn psnr_picks_the_crossing_of_target_plus_margin_between_grid_points() {
        let rows = psnr_case(&[(1e-3, 61.5, 10.0), (4e-3, 60.5, 40.0), (8e-3, 59.0, 80.0)]);
        let (c, predicted) = run(TargetKind::Psnr, 60.0, &rows);
        // 61 dB (target + 1 dB margin) lies halfway between the first two rows in dB, so
        // halfway in log bound, with the ratio halfway in log ratio.
        assert!((c.rel_bound - 2e-3).abs() < 1e-12, "{}", c.rel_bound);
        assert!((predicted - 61.0).abs() < 1e-12, "{predicted}");
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let margins = Margins::for_mode(Mode::Guarantee);
        let edge = rule(TargetKind::Psnr, 60.0, 1e-3, &margins, true);
        let (_, prediction, _) = choose(&edge, &c, &p);
        assert!((prediction.cr - 20.0).abs() < 1e-9, "{}", prediction.cr);
        // Predict mode gets no second look: it keeps the last grid row before the edge.
        let on_grid = rule(TargetKind::Psnr, 60.0, 1e-3, &margins, false);
        let (grid, _, _) = choose(&on_grid, &c, &p);
        assert_eq!(grid.rel_bound, 1e-3);
    }

    /// A model that gives no number on a chunk (`of_row`: PSNR and SSIM −∞, ratio 0) leaves
    /// an SSIM target at the tightest candidate, not the loosest, and no crossing with a
    /// NaN ratio (which would rank above every ratio).
    #[test]
    fn predictions_that_are_no_number_choose_the_tightest_and_no_nan() {
        let blank = Prediction {
            psnr: f64::NEG_INFINITY,
            ssim: f64::NEG_INFINITY,
            cr: 0.0,
        };
        let rows: Vec<(Candidate, Prediction)> = [CodecId::Sz3, CodecId::Sperr]
            .iter()
            .flat_map(|&codec| {
                [1e-6, 1e-4, 1e-1].map(|rel_bound| (Candidate { codec, rel_bound }, blank))
            })
            .collect();
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let margins = Margins::for_mode(Mode::Predict);
        let ssim = rule(TargetKind::Ssim, 0.99, 1e-3, &margins, false);
        let (chosen, _, _) = choose(&ssim, &c, &p);
        assert_eq!(chosen.rel_bound, 1e-6);
        let v: Vec<f64> = (0..32 * 32).map(|i| (i as f64 / 9.0).sin()).collect();
        let windows = WindowVariances::sample(Samples::F64(&v), &[32, 32], 2.0).unwrap();
        let needs = SsimAsPsnr::new(windows, 0.99);
        let through_psnr = Rule {
            ssim_as_psnr: Some(&needs),
            ..ssim
        };
        let (chosen, _, _) = choose(&through_psnr, &c, &p);
        assert_eq!(chosen.rel_bound, 1e-6);
        // A row whose ratio is no number, beside the crossing of 61 dB.
        let rows = psnr_case(&[(1e-3, 61.5, 10.0), (4e-3, 60.5, 0.0), (8e-3, 59.0, 80.0)]);
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let margins = Margins::for_mode(Mode::Guarantee);
        let edge = rule(TargetKind::Psnr, 60.0, 1e-4, &margins, true);
        let (chosen, prediction, _) = choose(&edge, &c, &p);
        assert!(prediction.cr.is_finite(), "{prediction:?}");
        assert_eq!(chosen.rel_bound, 1e-3);
        let between: Vec<_> = crossings(60.0, &margins, &c, &p).collect();
        assert!(between.is_empty(), "{between:?}");
    }

    #[test]
    fn crossings_stay_between_neighbours_of_one_compressor() {
        let mut rows = psnr_case(&[(1e-3, 70.0, 10.0), (2e-3, 50.0, 40.0)]);
        rows[1].0.codec = CodecId::Zfp;
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let margins = Margins::for_mode(Mode::Guarantee);
        assert_eq!(crossings(60.0, &margins, &c, &p).count(), 0);
        rows[1].0.codec = CodecId::Sz3;
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        let found: Vec<_> = crossings(60.0, &margins, &c, &p).collect();
        assert_eq!(found.len(), 1);
        assert!((found[0].1.psnr - 61.0).abs() < 1e-12);
        // Between two of ZFP's stairs it works to the lower one: no crossing.
        for row in &mut rows {
            row.0.codec = CodecId::Zfp;
        }
        let (c, p): (Vec<_>, Vec<_>) = rows.iter().copied().unzip();
        assert_eq!(crossings(60.0, &margins, &c, &p).count(), 0);
    }

    #[test]
    fn calibrated_margins_depend_on_compressor_and_predicted_excess() {
        // At rel. bound 1e-3 the point-wise-bound line is 60 dB: 66 dB is 6 dB above it
        // (band 0), 80 dB is 20 dB above it (band 2).
        let mut table = [[1.0; BANDS]; 3];
        table[0][2] = 15.0; // SZ3 predictions far above the line are not trusted
        let calibrated = PsnrMargins {
            predict: table,
            guarantee: [[0.0; BANDS]; 3],
        };
        let metrics = MetricMargins {
            ssim_gap: 0.45,
            ratio: 1.2,
        };
        let margins = Margins::calibrated(Mode::Predict, Some(&calibrated), Some(&metrics));
        assert_eq!((margins.ssim_gap, margins.ratio), (0.45, 1.2));
        // A ratio margin past what the size check makes worth aiming for is capped.
        let wide = MetricMargins {
            ratio: 6.4,
            ..metrics
        };
        let capped = Margins::calibrated(Mode::Predict, Some(&calibrated), Some(&wide));
        assert_eq!(capped.ratio, PREDICT_RATIO_AIM);
        let at = |codec, psnr| {
            let c = Candidate {
                codec,
                rel_bound: 1e-3,
            };
            margins.psnr_for(&c, psnr)
        };
        assert_eq!(at(CodecId::Sz3, 66.0), 1.0);
        assert_eq!(at(CodecId::Sz3, 80.0), 15.0);
        assert_eq!(at(CodecId::Zfp, 80.0), 1.0);
        let guarantee = Margins::calibrated(Mode::Guarantee, Some(&calibrated), Some(&metrics));
        assert_eq!(guarantee.psnr_db, [[0.0; BANDS]; 3]);
        let constants = Margins::for_mode(Mode::Guarantee);
        assert_eq!(
            (guarantee.ssim_gap, guarantee.ratio),
            (constants.ssim_gap, constants.ratio),
            "guarantee mode keeps constant SSIM and ratio margins"
        );
        assert_eq!(
            Margins::calibrated(Mode::Predict, None, None),
            Margins::for_mode(Mode::Predict),
            "a model without calibration keeps the constants"
        );
        assert_eq!(
            Margins::calibrated(Mode::Fast, Some(&calibrated), Some(&metrics)),
            Margins::for_mode(Mode::Fast),
            "fast mode's margins are constants"
        );
    }

    #[test]
    fn psnr_falls_back_to_the_safe_bound_when_nothing_clears() {
        let safe = safe_bound(1.0, 60.0);
        let rows = psnr_case(&[(safe, 55.0, 5.0), (1e-2, 40.0, 50.0)]);
        let (c, predicted) = run(TargetKind::Psnr, 60.0, &rows);
        assert_eq!(c.rel_bound, safe);
        assert_eq!(predicted, 60.0, "the safe bound's PSNR is certain");
    }

    #[test]
    fn ratio_prefers_quality_among_candidates_that_reach_it() {
        let rows = psnr_case(&[(1e-4, 80.0, 8.0), (1e-3, 70.0, 12.0), (1e-2, 50.0, 40.0)]);
        let (c, _) = run(TargetKind::Ratio, 10.0, &rows);
        assert_eq!(c.rel_bound, 1e-3);
    }

    #[test]
    fn an_unreachable_ratio_loosens_the_best_candidate_beyond_the_grid() {
        let rows = psnr_case(&[(1e-2, 60.0, 20.0), (LOOSEST, 40.0, 40.0)]);
        let need = 100.0 * Margins::for_mode(Mode::Guarantee).ratio;
        let (c, expected) = run(TargetKind::Ratio, 100.0, &rows);
        // 2.6× short: the bound grows by that squared, and the ratio is expected to reach it.
        let factor = (need / 40.0f64).powi(2);
        assert!(
            (c.rel_bound / (LOOSEST * factor) - 1.0).abs() < 1e-12,
            "{c:?}"
        );
        assert!((expected / need - 1.0).abs() < 1e-9, "{expected}");
        // Far short: capped at the whole range, and the expected ratio says it falls short.
        let (c, expected) = run(TargetKind::Ratio, 1000.0, &rows);
        assert_eq!(c.rel_bound, LOOSEST_EXTRAPOLATED);
        assert!(expected < 1000.0 && expected > 40.0, "{expected}");
        // A model whose ratio peaks inside the grid: extrapolated from the grid's end.
        let peaked = psnr_case(&[(1e-2, 50.0, 40.0), (LOOSEST, 40.0, 30.0)]);
        let (c, _) = run(TargetKind::Ratio, 100.0, &peaked);
        assert!(c.rel_bound > LOOSEST && c.rel_bound <= LOOSEST_EXTRAPOLATED);
    }

    /// The advice for a ratio loosened beyond the grid describes the loosened bound, not
    /// the grid row's.
    #[test]
    fn advice_beyond_the_grid_expects_the_ratio_and_less_quality() {
        let row = Prediction {
            psnr: 40.0,
            ssim: 0.99,
            cr: 40.0,
        };
        let proposal = |predicted: f64| Proposal {
            codec: CodecId::Sz3,
            bound: 1.0,
            predicted: Some(predicted),
            predicted_ratio: Some(40.0),
            skip_runner_up_within: None,
            runner_up: None,
            third: None,
            needs_look: false,
        };
        let p = beyond_the_grid_prediction(&proposal(100.0), row);
        // 2.5× the ratio: a bound 6.25× looser, 15.9 dB down, 39× the SSIM loss.
        assert!((p.cr - 100.0).abs() < 1e-9, "{p:?}");
        assert!(
            (p.psnr - (40.0 - 20.0 * 6.25f64.log10())).abs() < 1e-9,
            "{p:?}"
        );
        assert!((p.ssim - (1.0 - 0.01 * 39.0625)).abs() < 1e-9, "{p:?}");
        // A ratio the grid reaches keeps its row's figures.
        let same = beyond_the_grid_prediction(&proposal(40.0), row);
        assert_eq!((same.psnr, same.ssim, same.cr), (40.0, 0.99, 40.0));
    }

    /// The shared surrogate, or None (with a note) when this run has no onnxruntime.
    /// scripts/test.sh always provides one, so there a load failure fails the test.
    fn loaded() -> Option<&'static Learned> {
        match learned() {
            Ok(l) => Some(l),
            Err(e) if std::env::var_os("ORT_DYLIB_PATH").is_some() => panic!("{e}"),
            Err(e) => {
                eprintln!("skipped: no surrogate here ({e}); scripts/test.sh provides one");
                None
            }
        }
    }

    #[test]
    fn surrogate_choices_meet_every_target_in_guarantee_mode() {
        use crate::codec::codec_for;
        use crate::metrics;
        use crate::samples::Layout;
        use crate::select::compress_to_target;
        use crate::synth::{generate, Kind};
        let Some(model) = loaded() else { return };
        let shape = [32, 48, 40];
        for (i, kind) in [Kind::Spectral { slope: 3.0 }, Kind::Spectral { slope: 1.0 }]
            .into_iter()
            .enumerate()
        {
            let v: Vec<f32> = generate(kind, &shape, 11 + i as u64)
                .into_iter()
                .map(|x| x as f32)
                .collect();
            let data = Samples::F32(&v);
            for t in [40.0, 60.0, 80.0] {
                let settings = Settings::psnr(t).unwrap();
                let out = compress_to_target(data, &shape, &settings, model).unwrap();
                let back = codec_for(out.codec)
                    .decode(&out.payload, &Layout::of(&data, &shape), out.bound)
                    .unwrap();
                let psnr = metrics::error_stats_of(data, back.view()).unwrap().psnr;
                assert!(
                    psnr >= t,
                    "{t} dB: {psnr} via {} ({})",
                    out.reason,
                    out.codec.name()
                );
                let predicted = out.predicted.expect("the surrogate predicts");
                assert!(predicted >= t, "proposals clear the target: {predicted}");
            }
        }
    }

    /// A bound in the subnormals rounds (to SZ3's, ZFP's or SPERR's effective bound) by up
    /// to a few parts in 10^5, so the safe candidate can land a hair over the safe bound and
    /// no longer count as certain: with the model admitting nothing, the chooser panicked
    /// (the write failed as an internal error). It takes the tightest candidate instead.
    #[test]
    fn a_safe_candidate_rounded_over_the_safe_bound_is_still_chosen() {
        use crate::synth::{generate, Kind};
        let Some(model) = loaded() else { return };
        let shape = [16, 16];
        let v: Vec<f64> = generate(Kind::Spectral { slope: 2.0 }, &shape, 3)
            .into_iter()
            .map(|x| x * 1e-300)
            .collect();
        let data = Samples::F64(&v);
        for t in [320.0, 350.0, 380.0] {
            let mut settings = Settings::psnr(t).unwrap();
            for mode in [Mode::Predict, Mode::Guarantee] {
                settings.mode = mode;
                let chosen = model.choose_scored(data, &shape, Extent::of(data), &settings, true);
                assert!(chosen.is_ok(), "{t} dB {mode:?}: {chosen:?}");
            }
        }
        let rows = psnr_case(&[(safe_bound(1.0, 60.0) * (1.0 + 4e-7), 50.0, 5.0)]);
        let (c, predicted) = run(TargetKind::Psnr, 60.0, &rows);
        assert_eq!((c, predicted), (rows[0].0, 50.0));
    }

    /// On log-normal fields (a cosmological density's kind: exp(a·z) of a smooth z) the
    /// committed model's predict-mode choice at 40 dB lies inside its calibrated margin on
    /// some chunks: the write's proposal is then flagged for a look, aimed closer to the
    /// target than the advice's (which keeps to the margin) and promising 1.25× its ratio;
    /// where the two agree, nothing is flagged.
    #[test]
    fn zfp_at_the_safe_bound_short_of_its_margin_is_looked_at() {
        // 40 dB: the safe bound is 1e-2 of the range. SZ3 and SPERR there are certain,
        // whatever the model says; ZFP's tolerance is no promise (as `choose` has it), so
        // a ZFP choice there predicted inside its calibrated margin is measured.
        let margins = Margins {
            psnr_db: [[1.0; 4], [40.0; 4], [1.0; 4]],
            ..Margins::for_mode(Mode::Predict)
        };
        let p = Prediction {
            psnr: 45.0,
            ssim: 0.99,
            cr: 10.0,
        };
        let at = |codec, rel_bound| Candidate { codec, rel_bound };
        assert!(short_of_calibrated(
            40.0,
            0.01,
            &margins,
            &at(CodecId::Zfp, 0.0078),
            &p
        ));
        assert!(!short_of_calibrated(
            40.0,
            0.01,
            &margins,
            &at(CodecId::Sz3, 0.0078),
            &p
        ));
        assert!(!short_of_calibrated(
            40.0,
            0.01,
            &margins,
            &at(CodecId::Sperr, 0.01),
            &p
        ));
        // Looser than the safe bound: short where its prediction falls under its margin.
        let loose = at(CodecId::Sz3, 0.02);
        assert!(!short_of_calibrated(40.0, 0.01, &margins, &loose, &p));
        let low = Prediction { psnr: 40.5, ..p };
        assert!(short_of_calibrated(40.0, 0.01, &margins, &loose, &low));
    }

    #[test]
    fn a_predict_choice_inside_the_calibrated_margin_is_flagged_for_a_look() {
        use crate::synth::{generate, Kind};
        let Some(model) = loaded() else { return };
        let mut settings = Settings::psnr(40.0).unwrap();
        settings.mode = Mode::Predict;
        let mut flagged = 0;
        let cases = [2.5, 3.5]
            .into_iter()
            .flat_map(|a| [vec![128, 128], vec![32, 32, 32]].map(|shape| (a, shape)));
        for (a, shape) in cases {
            for seed in 1..4 {
                let z = generate(Kind::Spectral { slope: 3.0 }, &shape, seed);
                let n = z.len() as f64;
                let mean = z.iter().sum::<f64>() / n;
                let sd = (z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                let v: Vec<f64> = z.iter().map(|x| (a * (x - mean) / sd).exp()).collect();
                let data = Samples::F64(&v);
                let extent = Extent::of(data);
                let choose = |may_look| {
                    model
                        .choose_scored(data, &shape, extent, &settings, may_look)
                        .unwrap()
                        .0
                };
                let (write, advice) = (choose(true), choose(false));
                assert!(!advice.needs_look, "{advice:?}");
                if write == advice {
                    continue;
                }
                flagged += 1;
                assert!(write.needs_look, "{write:?} {advice:?}");
                let gain = write.predicted_ratio.unwrap() / advice.predicted_ratio.unwrap();
                assert!(gain >= PREDICT_LOOK_GAIN, "{write:?} {advice:?}");
                assert!(write.predicted.unwrap() < advice.predicted.unwrap());
            }
        }
        assert!(
            flagged > 0,
            "no choice inside the margin: the fields no longer test it"
        );
    }

    /// A PSNR target under 20 dB has a safe bound looser than the grid's end: proposed
    /// there, certain, rather than at the grid's end.
    #[test]
    fn a_low_target_is_proposed_at_its_safe_bound() {
        use crate::synth::{generate, Kind};
        let Some(model) = loaded() else { return };
        let shape = [32, 32];
        let v = generate(Kind::Spectral { slope: 2.0 }, &shape, 3);
        let data = Samples::F64(&v);
        let extent = Extent::of(data);
        let mut settings = Settings::psnr(12.0).unwrap();
        settings.compressor = CompressorChoice::Sz3;
        let (proposal, _) = model
            .choose_scored(data, &shape, extent, &settings, true)
            .unwrap();
        let safe = safe_bound(extent.range(), 12.0);
        assert!(
            proposal.bound <= safe && proposal.bound > safe * (1.0 - 1e-12),
            "{} for a safe bound of {safe}",
            proposal.bound
        );
    }

    #[test]
    fn zfp_is_proposed_at_the_power_of_two_it_works_to() {
        let Some(learned) = loaded() else { return };
        let shape = [24, 40, 40];
        let v: Vec<f32> =
            crate::synth::generate(crate::synth::Kind::Spectral { slope: 2.0 }, &shape, 5)
                .into_iter()
                .map(|x| 3.7 * x as f32)
                .collect();
        // Ranges of exactly 49 and 6.125, over which a power of two multiplied back comes
        // out an ulp under it, and the field's own.
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        for range in [49.0f32, 6.125, hi - lo] {
            let v: Vec<f32> = v.iter().map(|x| (x - lo) / (hi - lo) * range).collect();
            let (lo, hi) = v
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
            assert_eq!(hi - lo, range, "the case needs its exact range");
            let data = Samples::F32(&v);
            for t in [40.0, 60.0, 80.0] {
                let mut settings = Settings::psnr(t).unwrap();
                settings.compressor = CompressorChoice::Zfp;
                let (proposal, _) = learned
                    .advise(data, &shape, Extent::of(data), &settings)
                    .unwrap();
                assert_eq!(proposal.codec, CodecId::Zfp);
                // Exactly a power of two, as the stored (f32) bound too.
                let power = proposal.bound.log2().round().exp2();
                assert_eq!(proposal.bound, power, "{range} {t} dB");
                assert_eq!(crate::chunk::codec_bound(proposal.bound), power);
            }
        }
    }

    #[test]
    fn candidate_grid_spans_safe_to_loosest_per_allowed_codec() {
        let Some(learned) = loaded() else { return };
        let all = learned.candidates(CompressorChoice::Auto, 1e-3);
        assert_eq!(all.len(), 3 * GRID_POINTS);
        let zfp = learned.candidates(CompressorChoice::Zfp, 1e-3);
        assert!(zfp.iter().all(|c| c.codec == CodecId::Zfp));
        assert!((zfp[0].rel_bound - 1e-3).abs() < 1e-15);
        assert!((zfp.last().unwrap().rel_bound - LOOSEST).abs() < 1e-12);
    }

    /// A table of three smooth columns on their own levels (`n × 3`): SPERR has no wavelet
    /// for it, yet the model ranks SPERR first (on columns of spectral slope 2; the model
    /// trained with masks ranks SZ3 first on slope 3). Guarantee mode, searching all three,
    /// keeps SZ3; predict and fast mode propose SZ3 from the start and meet the target.
    #[test]
    fn predict_and_fast_mode_propose_sz3_where_sperr_cannot_transform() {
        use crate::select::compress_to_target;
        use crate::synth::{generate, Kind};
        let Some(model) = loaded() else { return };
        let (n, k) = (4096, 3);
        let mut v = vec![0f32; n * k];
        for j in 0..k {
            let column = generate(Kind::Spectral { slope: 2.0 }, &[n], j as u64 + 1);
            for (i, x) in column.into_iter().enumerate() {
                v[i * k + j] = x as f32 * (1.0 + j as f32) + 3.0 * j as f32;
            }
        }
        let (data, shape) = (Samples::F32(&v), [n, k]);
        assert!(!Sperr::transforms(&shape) && Sperr::transforms(&[n, 9]));
        let settings = Settings::psnr(60.0).unwrap();
        let ranked = model
            .propose(data, &shape, Extent::of(data), &settings)
            .unwrap();
        assert_eq!(ranked.codec, CodecId::Sperr, "the model's own ranking");
        let kept = compress_to_target(data, &shape, &settings, model).unwrap();
        assert_eq!(kept.codec, CodecId::Sz3, "guarantee mode: {}", kept.reason);
        for mode in [Mode::Predict, Mode::Fast] {
            let settings = Settings { mode, ..settings };
            let proposal = model
                .propose(data, &shape, Extent::of(data), &settings)
                .unwrap();
            assert_eq!(proposal.codec, CodecId::Sz3, "{mode:?}");
            let out = compress_to_target(data, &shape, &settings, model).unwrap();
            assert_eq!(out.codec, CodecId::Sz3, "{mode:?}");
            assert!(out.measured.unwrap() >= 60.0, "{mode:?}: {out:?}");
        }
    }

    #[test]
    fn smoothness_along_the_long_axis_tells_series_from_noise() {
        use crate::synth::{generate, Kind};
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let smooth = f32s(generate(Kind::Spectral { slope: 3.0 }, &[8192], 3));
        let noise = f32s(generate(Kind::Noise, &[8192], 3));
        for (shape, smooth_expected) in
            [([8192usize, 1], true), ([2048, 4], true), ([4, 2048], true)]
        {
            assert_eq!(
                smooth_along_long_axis(Samples::F32(&smooth), &shape),
                smooth_expected,
                "{shape:?}"
            );
            assert!(
                !smooth_along_long_axis(Samples::F32(&noise), &shape),
                "{shape:?}"
            );
        }
    }
}
