//! Where a search's next bound lies: budgets, the PSNR bracket and its secant steps,
//! and the ratio search's steps.

use super::*;
use crate::codec::HIGH_RATE_PSNR_SLOPE;

/// How many compressions a PSNR search may spend on one compressor, and where it stops.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    /// Compressions while the kept attempt is within [`Budget::far_db`] of the target.
    pub(super) near: usize,
    /// Compressions while it is further above, or none met the target.
    pub(super) far: usize,
    /// The overshoot above which [`Budget::far`] applies.
    pub(super) far_db: f64,
    /// A kept attempt this close above the target ends the search whatever its size.
    pub(super) close_min_db: f64,
    /// A kept attempt further above the target is worth another step whatever its size.
    pub(super) close_max_db: f64,
    /// Between those two, the search goes on while another step is expected to save at
    /// least this share of the kept payload ([`Budget::close_db`]).
    pub(super) step_saves: f64,
    /// Where above the target a step aims, so that it lands on the right side.
    pub(super) aim_db: f64,
    /// Whether the proposer's runner-up compressor is searched too, and its third on
    /// chunks the model misread ([`Proposal::third`]).
    pub(super) runner_up: bool,
}

impl Budget {
    /// Guarantee mode lands within a few tenths of a dB: at 40 dB one dB of overshoot
    /// costs 20–40% of the ratio, and a ratio within a few percent of an exhaustive search
    /// needs that precision. Three compressions, five while missing or more than a dB
    /// over. Stopping within 0.2 dB (aiming 0.08 above, plus [`AIM_PER_DB`]) instead of
    /// 0.4 (0.15) raised the ratio by 0.006–0.007 of the best oracle's on ../shared/data
    /// without its non-monotone nmc_storm arrays and by 0.003–0.011 on datasets the model
    /// never saw, for 0.16–0.40 more compressions per chunk (docs/bench.md, "Landing
    /// closer").
    ///
    /// At a high rate those tenths are worth little: at 5 bits per value 0.6 dB is 2% of
    /// the payload. So the search stops once another step is expected to save less than
    /// 2% ([`Budget::close_db`]): within 0.2 dB up to about a bit per value, 0.68 dB at 5
    /// bits. On ../shared/data that saved 0.15 / 0.28 compressions per chunk at 60 / 80 dB
    /// for 0.001 / 0.003 of the best oracle's ratio (docs/bench.md, "Steps worth their
    /// time").
    pub(super) const THOROUGH: Budget = Budget {
        near: 3,
        far: 5,
        far_db: 1.0,
        close_min_db: 0.2,
        close_max_db: f64::INFINITY,
        step_saves: 0.02,
        aim_db: 0.08,
        runner_up: true,
    };

    /// Fast mode spends at most one more compression per compressor (then the safe bound):
    /// on a miss, or on an overshoot large enough to be worth the time. It searches the
    /// runner-up compressor only when the first payload was far larger than predicted
    /// ([`SURPRISE_FACTOR`]) or the model's ranking is a close call (`search::close_call`).
    /// Its step aims
    /// higher above the target, since a second miss costs the safe bound's ratio. On
    /// ../shared/data, loosening only above 6 dB instead of 4.5 saved 0.1–0.4 of one
    /// compression's time and cost 0.02–0.03 of the best oracle's ratio; above 3 dB it
    /// cost up to 0.2 more for 0.01–0.03 (docs/bench.md).
    ///
    /// Below 4.5 dB it loosens where the step is expected to save a quarter of the
    /// payload ([`Budget::close_db`]): over 1.75 dB up to half a bit per value, where a dB
    /// is worth the most. On ../shared/data that raised fast mode's ratio from 0.728 /
    /// 0.815 / 0.890 of the best oracle's to 0.818 / 0.857 / 0.895 at 40 / 60 / 80 dB for
    /// 0.37 / 0.17 / 0.05 more compressions per chunk (docs/bench.md, "Steps worth their
    /// time").
    pub(super) const FAST: Budget = Budget {
        near: 2,
        far: 2,
        far_db: f64::INFINITY,
        // Never reached: a step aims 1 dB above the target, so the stop is 1.75 dB or more.
        close_min_db: 0.0,
        close_max_db: 4.5,
        step_saves: 0.25,
        aim_db: 1.0,
        runner_up: false,
    };

    /// The overshoot (dB) at which a kept attempt of `bits_per_value` ends the search: where
    /// a step to [`Budget::aim_db`] above the target is expected to save
    /// [`Budget::step_saves`] of the payload, within the budget's two limits.
    ///
    /// A dB is worth 1/6.02 of a bit per value at a high rate, so a step of Δ dB saves a
    /// share Δ / (6.02 · bits) of the payload. Below half a bit per value that rule
    /// overstates the saving, promising more than the whole payload for a dB or two
    /// (bolocam's SPERR chunks at 40 dB saved 78% of it for 3.6 dB, where it promises five
    /// times the payload), so a step is taken to save at most Δ / [`LOW_RATE_DB`].
    pub(super) fn close_db(&self, bits_per_value: f64) -> f64 {
        let db_per_payload = (DB_PER_BIT * bits_per_value).max(LOW_RATE_DB);
        (self.aim_db + self.step_saves * db_per_payload).clamp(self.close_min_db, self.close_max_db)
    }
}

/// The fewest dB a step is taken to need to save the whole payload ([`Budget::close_db`]):
/// 6.02 dB a bit at half a bit per value.
const LOW_RATE_DB: f64 = 3.0;

/// PSNR a uniform quantiser gains per bit per value at high rate: the most a dB of
/// overshoot can be worth when judging whether a runner-up is hopeless.
pub(super) const DB_PER_BIT: f64 = 6.02;

/// How much further above the target a step aims per dB it extrapolates, up to 1 dB: a
/// step from 20 dB over (a far first guess) aims 0.6 dB higher, one from 1 dB over 0.03.
const AIM_PER_DB: f64 = 0.03;

/// The PSNR a bracket records for an exact decode (+∞): above the highest target a
/// setting takes (400 dB) and a step's aim over it (at most 1 dB), so that an exact decode
/// meets every aim.
const EXACT_DB: f64 = 402.0;

/// The bounds seen to meet and to miss a PSNR target, and the points measured.
#[derive(Debug, Default)]
pub(super) struct Bracket {
    /// (ln bound, PSNR, the codec's slope at that point's rate) of every attempt.
    pub(super) points: Vec<(f64, f64, f64)>,
    /// Loosest bound that met the target.
    pub(super) met: Option<f64>,
    /// Tightest bound that missed it.
    pub(super) missed: Option<f64>,
}

/// How far from a step's aim (dB) the nearest point must lie for a flat secant to halve
/// the bracket ([`Bracket::next_bound`]). Nearer, a step by the codec's slope moves the
/// bound by about a percent and usually lands: on a compressible flow's momentum at 40 dB
/// two misses at 39.99 and 40.00 dB gave a flat secant, and halving the bracket kept 40.71
/// dB instead of landing at the target (0.968 → 0.909 of the best oracle's ratio).
const PLATEAU_GAP_DB: f64 = 0.15;

/// How many times the span of a plateau's two points a step from it may reach, following
/// their secant, while the bracket is open on the step's side ([`Bracket::next_bound`]):
/// the bracket expands geometrically until the plateau ends.
const PLATEAU_REACH: f64 = 2.0;

/// PSNR (dB) a looser bound must gain over a tighter one for [`Bracket::erratic`].
const ERRATIC_DB: f64 = 0.5;

impl Bracket {
    /// Records an attempt; `slope` is what the codec's PSNR is expected to do per unit of
    /// ln bound near it ([`crate::codec::Codec::psnr_slope`]), the step's slope while no
    /// second bound has been measured.
    pub(super) fn record(&mut self, bound: f64, psnr: f64, met: bool, slope: f64) {
        // A decode that is not even comparable (NaN) counts as the worst PSNR; an exact
        // one (+∞) as a finite PSNR far above any target, so that secants stay finite.
        let psnr = if psnr.is_nan() {
            f64::NEG_INFINITY
        } else {
            psnr.min(EXACT_DB)
        };
        self.points.push((bound.ln(), psnr, slope));
        if met {
            self.met = Some(self.met.map_or(bound, |b| b.max(bound)));
        } else {
            self.missed = Some(self.missed.map_or(bound, |b| b.min(bound)));
        }
    }

    /// True when a looser bound measured more than [`ERRATIC_DB`] more PSNR than a tighter
    /// one: the codec is not monotone in its bound here (SZ3 at a few hundred bytes per
    /// chunk, where its predictor flips), so the model, which learned monotone curves,
    /// misread this chunk for it.
    pub(super) fn erratic(&self) -> bool {
        let points = &self.points;
        points
            .iter()
            .any(|a| points.iter().any(|b| b.0 > a.0 && b.1 > a.1 + ERRATIC_DB))
    }

    /// The bound expected to give `aim` dB, plus [`AIM_PER_DB`] of the distance from the
    /// nearest point (a long extrapolation errs by more): a secant through the two points
    /// nearest the aim (one point: the codec's slope at its rate), kept inside the bracket
    /// by [`inside_bracket`]; the bracket's geometric middle when that secant is flat or
    /// rising short of the aim ([`PLATEAU_GAP_DB`]) and the bracket is closed, and a step
    /// along the secant of up to [`PLATEAU_REACH`] times the two points' span when it is
    /// open.
    pub(super) fn next_bound(&self, aim: f64) -> Option<f64> {
        let mut near = self.points.clone();
        // Nearest the aim first; among equally near (exact) points, the loosest bound.
        near.sort_by(|a, b| {
            (a.1 - aim)
                .abs()
                .total_cmp(&(b.1 - aim).abs())
                .then(b.0.total_cmp(&a.0))
        });
        let (x0, y0, own) = *near.first()?;
        let aim = aim + (AIM_PER_DB * (y0 - aim).abs()).min(1.0);
        let (lo, hi) = (
            self.met.unwrap_or(0.0),
            self.missed.unwrap_or(f64::INFINITY),
        );
        // A measured secant counts while it lies between a quarter and three times the
        // high-rate slope; a steeper one is a cliff, and a flatter one a plateau (below)
        // or noise.
        let partner = near.iter().skip(1).find(|(x, _, _)| (x - x0).abs() > 1e-9);
        let secant = partner.map(|&(x1, y1, _)| (y1 - y0) / (x1 - x0));
        let flat = secant.is_some_and(|s| s.is_finite() && s >= HIGH_RATE_PSNR_SLOPE * 0.25);
        let plateau = flat && (aim - y0).abs() >= PLATEAU_GAP_DB;
        if plateau && lo > 0.0 && hi.is_finite() {
            // The two points nearest the aim lie on a plateau, or rise with the bound,
            // short of the aim (SPERR's PSNR held 39.83–39.87 dB over 10% of bound on a
            // vortex street, 4.5 dB more at a bound 1.7× tighter): a step by the codec's
            // slope from there moves a few percent and lands on the plateau again, so the
            // bracket is halved instead.
            return inside_bracket(f64::NAN, lo, hi);
        }
        let slope = secant
            .filter(|s| s.is_finite() && *s < HIGH_RATE_PSNR_SLOPE * 0.25)
            .unwrap_or(own)
            .max(HIGH_RATE_PSNR_SLOPE * 3.0);
        let mut step = (aim - y0) / slope;
        if let (true, Some(&(x1, _, _)), Some(s)) = (plateau, partner, secant) {
            // On a plateau with one side of the bracket open, the step follows the flat
            // secant up to [`PLATEAU_REACH`] times the plateau's span: SPERR's PSNR on a
            // Poisson-noise galaxy field crept from 38.7 to 39.6 dB over a bound 2.7×
            // tighter, then rose 0.9 dB over 1.6×, and the codec's slope, 15–30% a step,
            // spent the budget on the plateau. (A rising secant says nothing of the way.)
            let along = if s < 0.0 {
                (aim - y0) / s
            } else {
                f64::INFINITY
            };
            // At most 60× in bound, as a loosening step is at most.
            let reach = along
                .abs()
                .min(PLATEAU_REACH * (x1 - x0).abs())
                .min(60.0f64.ln());
            step = step.signum() * step.abs().max(reach);
        }
        let guess = (x0 + step).min(x0 + 60.0f64.ln()).exp();
        inside_bracket(guess, lo, hi)
    }

    /// [`Bracket::next_bound`], but not under `floor`, a PSNR target's safe bound
    /// (`Search::safe_floor`, 0 for other targets), which meets the target: the floor
    /// itself where the step would go under it (from a tighter bound decoded exactly, too),
    /// unless a bound at or under the floor missed (a codec that broke its bound), where
    /// the bracket's own step stands. Where a codec's PSNR jumps about with its bound, the
    /// secant through a run of misses pointed far under it: SZ3 on an ocean current whose
    /// undeclared 1e35 land cells make the range (foam V at 80 dB) missed four times
    /// between 2.2e31 and 8.5e31, then met at 1.8e30, 5.5× under the safe bound, storing
    /// 2.7× the safe bound's bytes. (ZFP's stairs may still step under it:
    /// [`untried_stair`] moves a step off a stair already tried.)
    pub(super) fn next_bound_above(&self, aim: f64, floor: f64) -> Option<f64> {
        let bound = self.next_bound(aim)?;
        let disproven = self.missed.is_some_and(|m| m <= floor);
        Some(if bound > floor || disproven {
            bound
        } else {
            floor
        })
    }
}

/// `bound`, or, for a codec whose bounds come in stairs
/// ([`Codec::alike_bounds`](crate::codec::Codec::alike_bounds)) when `bound` lies on a
/// stair already tried, the nearest bound on the stair above it (`up` of that stair) or
/// below it; None when that stair was tried too or lies outside the bracket `(lo, hi)`
/// (the search has learned all it can).
fn off_known_stair(
    codec: CodecId,
    bound: f64,
    tried: &[f64],
    up: impl FnOnce((f64, f64)) -> bool,
    (lo, hi): (f64, f64),
) -> Option<f64> {
    let codec = codec_for(codec);
    let stair = |b: f64| codec.alike_bounds(b);
    let known = |b: f64| stair(b).is_some() && tried.iter().any(|&t| stair(t) == stair(b));
    if !known(bound) {
        return Some(bound);
    }
    let (low, high) = stair(bound)?;
    let next = match up((low, high)) {
        true => high,
        false => f64::from_bits(low.to_bits() - 1),
    };
    (next > lo && next < hi && !known(next)).then_some(next)
}

/// [`off_known_stair`] for a PSNR search, inside its bracket (the loosest bound that met,
/// the tightest that missed): off the met bound's stair it steps up, off any other down.
/// ZFP's landing after a loosening that missed used to spend a third compression on a
/// stair it knew; stepping by the side of the last attempt instead, a guess on the met
/// stair after a miss stepped below the bracket and ended the search with the stairs
/// between untried.
pub(super) fn untried_stair(
    codec: CodecId,
    bound: f64,
    tried: &[f64],
    bracket: &Bracket,
) -> Option<f64> {
    let met_stair = bracket.met.and_then(|m| codec_for(codec).alike_bounds(m));
    let span = (
        bracket.met.unwrap_or(0.0),
        bracket.missed.unwrap_or(f64::INFINITY),
    );
    off_known_stair(codec, bound, tried, |stair| met_stair == Some(stair), span)
}

/// [`off_known_stair`] for a ratio search, whose bracket runs from the loosest bound that
/// missed the ratio (`missed`, tighter) to the tightest that reached it (`reached`): off
/// the reached bound's stair it steps down, off any other up. A ZFP ratio search repeated
/// payloads it had until its 8 compressions ran out.
pub(super) fn untried_ratio_stair(
    codec: CodecId,
    bound: f64,
    tried: &[f64],
    (missed, reached): (Option<f64>, Option<f64>),
) -> Option<f64> {
    let reached_stair = reached.and_then(|r| codec_for(codec).alike_bounds(r));
    let bracket = (missed.unwrap_or(0.0), reached.unwrap_or(f64::INFINITY));
    off_known_stair(
        codec,
        bound,
        tried,
        |stair| reached_stair != Some(stair),
        bracket,
    )
}

/// `guess` when it lies strictly inside the bracket `(lo, hi)` of bounds (0 and ∞ for an
/// open side), else the bracket's geometric middle, or a step of 1.5× beyond its one known
/// side. `None` when the bracket is narrower than 2%: not worth another compression.
fn inside_bracket(guess: f64, lo: f64, hi: f64) -> Option<f64> {
    if hi.is_finite() && lo > 0.0 && hi / lo < 1.02 {
        return None;
    }
    let inside = |b: f64| b.is_finite() && b > lo * 1.005 && b < hi / 1.005;
    Some(if inside(guess) {
        guess
    } else if lo > 0.0 && hi.is_finite() {
        lo.sqrt() * hi.sqrt()
    } else if lo > 0.0 {
        lo * 1.5
    } else {
        hi / 1.5
    })
}

/// Compressions a ratio target's search may spend on one chunk.
pub(super) const RATIO_STEPS: usize = 8;

/// The next bound of a ratio search: a secant through the two points (ln bound, ln ratio)
/// nearest `aim` (one point, or a flat pair: the slope `ratio / (bits·ln 2)`, at most 1),
/// at most 1000× from the nearest, kept inside the bracket (loosest bound that missed,
/// tightest that reached) by [`inside_bracket`].
pub(super) fn next_ratio_bound(
    points: &[(f64, f64)],
    aim: f64,
    value_bits: f64,
    (missed, reached): (Option<f64>, Option<f64>),
) -> Option<f64> {
    let mut near = points.to_vec();
    near.sort_by(|a, b| (a.1 - aim).abs().total_cmp(&(b.1 - aim).abs()));
    let (x0, y0) = *near.first()?;
    // Below about a bit per value the codecs' ratio saturates (a chunk collapsed to one
    // bin stores its header and little else), so the slope is capped at 1.
    let own = (y0.exp() / (value_bits * std::f64::consts::LN_2)).min(1.0);
    let slope = near
        .iter()
        .skip(1)
        .find(|(x, _)| (x - x0).abs() > 1e-9)
        .map(|&(x1, y1)| (y1 - y0) / (x1 - x0))
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(own)
        .clamp(0.02, 20.0);
    let step = ((aim - y0) / slope).clamp(-1000f64.ln(), 1000f64.ln());
    let guess = (x0 + step).exp();
    inside_bracket(
        guess,
        missed.unwrap_or(0.0),
        reached.unwrap_or(f64::INFINITY),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_takes_no_step_onto_a_zfp_stair_it_knows() {
        // ZFP compresses every bound in [2^k, 2^(k+1)) alike.
        let mut bracket = Bracket::default();
        bracket.record(0.3, 63.0, true, HIGH_RATE_PSNR_SLOPE);
        // A loosening step that stays on the kept stair moves to the next stair up.
        assert_eq!(
            untried_stair(CodecId::Zfp, 0.4, &[0.3], &bracket),
            Some(0.5)
        );
        // An untried stair, and any bound of a codec without stairs, are left as they are.
        assert_eq!(
            untried_stair(CodecId::Zfp, 0.6, &[0.3], &bracket),
            Some(0.6)
        );
        assert_eq!(
            untried_stair(CodecId::Sz3, 0.4, &[0.3], &bracket),
            Some(0.4)
        );
        // Once the next stair up missed, every bound between is known: nothing to try.
        bracket.record(0.6, 57.0, false, HIGH_RATE_PSNR_SLOPE);
        for b in [0.35, 0.45, 0.55] {
            assert_eq!(untried_stair(CodecId::Zfp, b, &[0.3, 0.6], &bracket), None);
        }
        // A tightening step from a miss may go to the stair below, not past a bound that met.
        let mut missed = Bracket::default();
        missed.record(0.6, 57.0, false, HIGH_RATE_PSNR_SLOPE);
        let below = untried_stair(CodecId::Zfp, 0.55, &[0.6], &missed).unwrap();
        assert!(below < 0.5 && below > 0.49, "{below}");
        // A step from a miss far above onto the stair that met goes up to the untried
        // stairs between, not below the bound that met.
        let mut wide = Bracket::default();
        wide.record(0.3, 63.0, true, HIGH_RATE_PSNR_SLOPE);
        wide.record(1.5, 50.0, false, HIGH_RATE_PSNR_SLOPE);
        assert_eq!(
            untried_stair(CodecId::Zfp, 0.45, &[0.3, 1.5], &wide),
            Some(0.5)
        );
        // And one onto the stair that missed goes down, to the untried stair below it.
        assert_eq!(
            untried_stair(CodecId::Zfp, 1.2, &[0.3, 1.5], &wide),
            Some(f64::from_bits(1.0f64.to_bits() - 1))
        );
    }

    #[test]
    fn a_bracket_is_erratic_only_where_a_looser_bound_measured_clearly_more() {
        let mut b = Bracket::default();
        b.record(1e-3, 50.0, true, HIGH_RATE_PSNR_SLOPE);
        b.record(2e-3, 45.0, true, HIGH_RATE_PSNR_SLOPE);
        assert!(!b.erratic());
        // Within ERRATIC_DB of the tighter bound's PSNR: measurement noise on a plateau.
        b.record(4e-3, 45.4, true, HIGH_RATE_PSNR_SLOPE);
        assert!(!b.erratic());
        b.record(8e-3, 45.6, true, HIGH_RATE_PSNR_SLOPE);
        assert!(b.erratic());
    }

    #[test]
    fn a_bracket_is_halved_from_a_plateau() {
        // The vortex street's SPERR search: met at 7.34e-3, then misses at 38.74 and
        // 39.85–39.87 dB. From the two misses nearest the aim the codec's slope asks for a
        // step of a few percent; the bracket's geometric middle is taken instead.
        let sperr = codec_for(CodecId::Sperr).psnr_slope(0.05);
        let mut b = Bracket::default();
        b.record(7.34e-3, 44.32, true, sperr);
        b.record(1.71e-2, 38.74, false, sperr);
        b.record(1.387e-2, 39.85, false, sperr);
        b.record(1.327e-2, 39.87, false, sperr);
        let next = b.next_bound(40.08).unwrap();
        assert!(
            (next / (7.34e-3f64 * 1.327e-2).sqrt() - 1.0).abs() < 1e-9,
            "{next}"
        );
        // Without a bound that met, a step from the plateau reaches twice its span.
        let mut open = Bracket::default();
        open.record(1.387e-2, 39.85, false, sperr);
        open.record(1.327e-2, 39.87, false, sperr);
        let step = open.next_bound(40.08).unwrap();
        let reach = 1.327e-2 * (1.327e-2f64 / 1.387e-2).powf(PLATEAU_REACH);
        assert!(step <= reach * (1.0 + 1e-9) && step > 1.1e-2, "{step}");
        // The galaxy field's SPERR search: misses creeping up a plateau at 38.74 and 38.85
        // dB, where the codec's slope steps by 15%; the step reaches twice the plateau.
        let mut galaxy = Bracket::default();
        galaxy.record(104.51, 38.74, false, sperr);
        galaxy.record(73.72, 38.85, false, sperr);
        let step = galaxy.next_bound(40.08).unwrap();
        let reach = 73.72 * (73.72f64 / 104.51).powf(PLATEAU_REACH);
        assert!((step / reach - 1.0).abs() < 1e-9, "{step} {reach}");
        // Where the secant rises faster, it reaches less far than twice the span: from 87.1
        // (38.49 dB) to 34.36 (39.77 dB), the step follows the secant to about 27.
        let mut cliff = Bracket::default();
        cliff.record(87.10, 38.49, false, sperr);
        cliff.record(34.36, 39.77, false, sperr);
        let step = cliff.next_bound(40.08).unwrap();
        assert!(step > 25.0 && step < 29.0, "{step}");
        // Nor does a flat pair within PLATEAU_GAP_DB of the aim (a momentum field's
        // misses at 39.99 and 40.00 dB): a step of about a percent finishes there.
        let mut near = Bracket::default();
        near.record(1.9469e-1, 42.22, true, sperr);
        near.record(2.8358e-1, 39.99, false, sperr);
        near.record(2.7927e-1, 40.00, false, sperr);
        let step = near.next_bound(40.08).unwrap();
        assert!(step < 2.7927e-1 && step > 2.7e-1, "{step}");
    }

    #[test]
    fn bracket_steps_by_the_secant_and_stays_inside() {
        let mut b = Bracket::default();
        b.record(1e-3, 50.0, true, HIGH_RATE_PSNR_SLOPE);
        // One point: −20 dB a decade, so 9.85 dB of excess, less the 3% of it the step
        // keeps as extra aim, is a bound 10^(0.97·9.85/20) looser.
        let one = b.next_bound(40.15).unwrap();
        assert!((one / (1e-3 * 10f64.powf(0.97 * 9.85 / 20.0)) - 1.0).abs() < 1e-9);
        // A point recorded with the codec's slope at its rate (SPERR at a tenth of a bit
        // per value, ~13 dB a decade) steps by that slope.
        let sperr = codec_for(CodecId::Sperr).psnr_slope(0.1);
        let mut low_rate = Bracket::default();
        low_rate.record(1e-3, 50.0, true, sperr);
        let step = low_rate.next_bound(40.15).unwrap();
        let expected = 1e-3 * (0.97 * -9.85 / sperr).exp();
        assert!(
            (step / expected - 1.0).abs() < 1e-9 && step > one * 1.3,
            "{step}"
        );
        // Two points: their own slope (here −10 dB a decade).
        b.record(1e-2, 40.0, true, HIGH_RATE_PSNR_SLOPE);
        let two = b.next_bound(39.0).unwrap();
        assert!((two / (1e-2 * 10f64.powf(0.097)) - 1.0).abs() < 1e-9);
        // A guess beyond a bound that missed falls back to the bracket's middle.
        b.record(1.05e-2, 10.0, false, HIGH_RATE_PSNR_SLOPE);
        let mid = b.next_bound(35.0).unwrap();
        assert!(mid > 1e-2 && mid < 1.05e-2);
        // A bracket narrower than 2% is not worth another compression.
        b.record(1.04e-2, 39.0, true, HIGH_RATE_PSNR_SLOPE);
        assert_eq!(b.next_bound(39.5), None);
    }
}
