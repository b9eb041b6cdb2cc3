//! Validation with each source held out: for each source of real datasets ([`family`]),
//! train on every other row (other sources and all generated fields) and score the
//! held-out rows, dataset by dataset.
//!
//! Scores, per held-out dataset and pooled:
//! - median and 95th percentile of |ΔPSNR| in dB, over rows whose measured PSNR lies in
//!   [`PSNR_RANGE`] (outside it a PSNR target is not a use case, and +∞ rows have no error);
//! - CR MAPE: mean of |CR̂ − CR| / CR, in percent, over all rows;
//! - mean |ΔSSIM|.

use crate::train::moe::{self, MoeConfig, MoeWeights, TrainError, TrainSet, PSNR_RANGE};
use crate::train::table::Row;

/// One held-out row: what was measured and what the model said.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Index of the row in the table.
    pub row: usize,
    /// Measured PSNR, SSIM, CR32.
    pub actual: [f64; 3],
    /// Predicted PSNR, SSIM, CR32.
    pub predicted: [f64; 3],
}

/// Scores of a set of outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    /// Rows scored.
    pub rows: usize,
    /// Rows in the PSNR range.
    pub psnr_rows: usize,
    /// Median |ΔPSNR| dB.
    pub psnr_median: f64,
    /// 95th percentile |ΔPSNR| dB.
    pub psnr_p95: f64,
    /// CR mean absolute percentage error.
    pub cr_mape: f64,
    /// Median CR absolute percentage error.
    pub cr_median_ape: f64,
    /// Mean |ΔSSIM|.
    pub ssim_mae: f64,
}

/// Percentile (0–100) of unsorted values, by nearest rank; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}

/// Scores outcomes.
pub fn score<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Scores {
    let (mut dpsnr, mut ape, mut dssim) = (Vec::new(), Vec::new(), Vec::new());
    for o in outcomes {
        if (PSNR_RANGE.0..=PSNR_RANGE.1).contains(&o.actual[0]) {
            dpsnr.push((o.predicted[0] - o.actual[0]).abs());
        }
        ape.push(100.0 * (o.predicted[2] - o.actual[2]).abs() / o.actual[2]);
        dssim.push((o.predicted[1] - o.actual[1]).abs());
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Scores {
        rows: ape.len(),
        psnr_rows: dpsnr.len(),
        psnr_median: percentile(&dpsnr, 50.0),
        psnr_p95: percentile(&dpsnr, 95.0),
        cr_mape: mean(&ape),
        cr_median_ape: percentile(&ape, 50.0),
        ssim_mae: mean(&dssim),
    }
}

/// Predicts every row of `set` with `weights` and pairs it with the measurement.
pub fn outcomes(
    weights: &MoeWeights,
    set: &TrainSet,
    rows: &[Row],
) -> Result<Vec<Outcome>, TrainError> {
    let pred = moe::predict(weights, &set.x)?;
    Ok(set
        .source
        .iter()
        .zip(pred)
        .filter_map(|(&i, p)| {
            let m = rows[i].measured?;
            Some(Outcome {
                row: i,
                actual: [m.psnr, m.ssim, 32.0 / m.bits_per_value],
                predicted: [p[0] as f64, p[1] as f64, 10f64.powf(p[2] as f64)],
            })
        })
        .collect())
}

/// True for generated-field rows, which are never held out.
pub fn is_generated(dataset: &str) -> bool {
    dataset.starts_with("synth-")
}

/// The source a dataset's name says it comes from: the name up to its first `_`. Datasets
/// of one source are held out together: ../shared/data's two CCSM temperature fields (TS
/// and TREFHT, one model, one grid) were each other's nearest neighbours, chunk for chunk,
/// and held out alone each was scored, and set the margins, as if seen (CR error 8–10%
/// against 26% pooled); so were the plot3d grids.
pub fn family(dataset: &str) -> &str {
    dataset.split('_').next().unwrap_or(dataset)
}

/// The real datasets of `rows` of the same source as one of `excluded` ([`family`]), in
/// name order: kept in training, they leave the excluded ones seen all the same.
pub fn siblings_kept<'a>(rows: &'a [Row], excluded: &[String]) -> Vec<&'a str> {
    let mut kept: Vec<&str> = rows
        .iter()
        .filter(|r| !is_generated(&r.dataset))
        .filter(|r| excluded.iter().any(|x| family(x) == family(&r.dataset)))
        .map(|r| r.dataset.as_str())
        .collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}

/// The families of the real datasets in `rows`, one fold each, in name order.
fn families(rows: &[Row]) -> Vec<&str> {
    let mut families: Vec<&str> = rows
        .iter()
        .filter(|r| !is_generated(&r.dataset))
        .map(|r| family(&r.dataset))
        .collect();
    families.sort();
    families.dedup();
    families
}

/// Whether `row` is held out in the fold of `family`: real and of that family.
fn held_out(row: &Row, family_name: &str) -> bool {
    !is_generated(&row.dataset) && family(&row.dataset) == family_name
}

/// Runs leave-one-dataset-out over every real dataset in `rows`, holding out each
/// [`family`] of datasets at once, `threads` folds at a time (each fold trains
/// single-threaded; see `deepcq train`), and returns each dataset's held-out outcomes.
/// `log` gets progress.
pub fn leave_one_dataset_out(
    rows: &[Row],
    config: &MoeConfig,
    threads: usize,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(String, Vec<Outcome>)>, TrainError> {
    use rayon::prelude::*;
    let families = families(rows);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| TrainError::Shape(format!("thread pool: {e}")))?;
    let total = families.len();
    let results: Vec<Option<(String, Vec<Outcome>)>> = pool.install(|| {
        families
            .par_iter()
            .map(|&d| {
                let train = moe::prepare(rows, |r| !held_out(r, d));
                let test = moe::prepare(rows, |r| held_out(r, d));
                if test.is_empty() {
                    return Ok(None);
                }
                let start = std::time::Instant::now();
                let weights = moe::train(&train, config, |_| {})?;
                let out = outcomes(&weights, &test, rows)?;
                let s = score(&out);
                log(&format!(
                    "{d} (of {total}): {} rows, median |dPSNR| {:.2} dB, p95 {:.2} dB, CR MAPE {:.1}% ({:.0}s)",
                    s.rows,
                    s.psnr_median,
                    s.psnr_p95,
                    s.cr_mape,
                    start.elapsed().as_secs_f64()
                ));
                Ok(Some((d.to_string(), out)))
            })
            .collect::<Result<Vec<_>, TrainError>>()
    })?;
    // Each dataset's outcomes apart, as the tables and the replay weigh datasets.
    let mut by_dataset: std::collections::BTreeMap<String, Vec<Outcome>> = Default::default();
    for o in results.into_iter().flatten().flat_map(|(_, out)| out) {
        by_dataset
            .entry(rows[o.row].dataset.clone())
            .or_default()
            .push(o);
    }
    Ok(by_dataset.into_iter().collect())
}

/// The Markdown table of per-dataset and pooled scores.
pub fn markdown_table(results: &[(String, Vec<Outcome>)]) -> String {
    let mut s = String::from(
        "| held-out dataset | rows | PSNR rows | median abs dPSNR (dB) | p95 abs dPSNR (dB) | CR MAPE (%) | median CR APE (%) | SSIM MAE |\n|---|---|---|---|---|---|---|---|\n",
    );
    let line = |name: &str, sc: &Scores| {
        format!(
            "| {name} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.4} |\n",
            sc.rows,
            sc.psnr_rows,
            sc.psnr_median,
            sc.psnr_p95,
            sc.cr_mape,
            sc.cr_median_ape,
            sc.ssim_mae
        )
    };
    for (name, out) in results {
        s.push_str(&line(name, &score(out)));
    }
    let all: Vec<&Outcome> = results.iter().flat_map(|(_, o)| o.iter()).collect();
    s.push_str(&line("**all (pooled)**", &score(all)));
    s
}

/// The decade of the breakdown a relative bound falls in: `1e-5` and `3e-5` in −5's, each
/// row in one (the grid's decade points sit on the edges), the loosest, `1e-1`, in −2's.
fn decade_of(rel_bound: f64) -> i32 {
    ((rel_bound.log10() + 1e-9).floor() as i32).clamp(-7, -2)
}

/// Pooled scores broken down by compressor and bound decade: where the model misses.
pub fn breakdown_table(results: &[(String, Vec<Outcome>)], rows: &[Row]) -> String {
    let mut s = String::from(
        "| compressor | rel. bound | rows | median abs dPSNR (dB) | p95 abs dPSNR (dB) | CR MAPE (%) |\n|---|---|---|---|---|---|\n",
    );
    let all: Vec<&Outcome> = results.iter().flat_map(|(_, o)| o.iter()).collect();
    for codec in moe::COMPRESSORS {
        for decade in -7..-1 {
            let sel: Vec<&Outcome> = all
                .iter()
                .copied()
                .filter(|o| {
                    let r = &rows[o.row];
                    r.codec == codec && decade_of(r.rel_bound) == decade
                })
                .collect();
            if sel.is_empty() {
                continue;
            }
            let sc = score(sel);
            s.push_str(&format!(
                "| {codec} | 1e{decade}..1e{} | {} | {:.2} | {:.2} | {:.1} |\n",
                decade + 1,
                sc.rows,
                sc.psnr_median,
                sc.psnr_p95,
                sc.cr_mape
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_of_one_source_are_held_out_together() {
        let named = |dataset: &str| Row {
            dataset: dataset.into(),
            ..crate::train::table::tests::row(true)
        };
        let rows: Vec<Row> = [
            "ccsm_b003_ts",
            "ccsm_trefht",
            "plot3d_fin",
            "synth-3",
            "mpas",
        ]
        .into_iter()
        .map(named)
        .collect();
        assert_eq!(families(&rows), ["ccsm", "mpas", "plot3d"]);
        let fold: Vec<&str> = rows
            .iter()
            .filter(|r| held_out(r, "ccsm"))
            .map(|r| r.dataset.as_str())
            .collect();
        assert_eq!(fold, ["ccsm_b003_ts", "ccsm_trefht"]);
        assert!(!rows.iter().any(|r| held_out(r, "synth-3")));
        // `deepcq train --exclude ccsm_trefht` keeps its twin: said as a warning.
        let kept: Vec<Row> = rows
            .into_iter()
            .filter(|r| r.dataset != "ccsm_trefht")
            .collect();
        let excluded = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            siblings_kept(&kept, &excluded(&["ccsm_trefht"])),
            ["ccsm_b003_ts"]
        );
        assert!(siblings_kept(&kept, &excluded(&["mpas_x", "synth-3"])).len() == 1);
        assert!(siblings_kept(&kept, &excluded(&["lonely"])).is_empty());
    }

    #[test]
    fn scores_follow_their_definitions() {
        let o = |psnr: f64, dp: f64, cr: f64, dcr: f64| Outcome {
            row: 0,
            actual: [psnr, 0.9, cr],
            predicted: [psnr + dp, 0.95, cr + dcr],
        };
        let out = vec![
            o(60.0, 1.0, 10.0, 1.0),
            o(80.0, -3.0, 20.0, -4.0),
            o(300.0, 50.0, 5.0, 0.0),
        ];
        let s = score(&out);
        assert_eq!((s.rows, s.psnr_rows), (3, 2));
        assert!((s.cr_mape - 10.0).abs() < 1e-9, "{}", s.cr_mape);
        assert!((s.ssim_mae - 0.05).abs() < 1e-9);
        assert_eq!(s.psnr_p95, 3.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
    }

    #[test]
    fn each_bound_of_the_training_grid_falls_in_one_decade() {
        // 0.4 decades apart, so that 1e-5 and 1e-3 sit on decade edges (they were counted
        // in two decades).
        let grid = crate::train::default_bound_grid();
        let decades: Vec<i32> = grid.iter().map(|&b| decade_of(b)).collect();
        assert_eq!(
            decades,
            [-7, -7, -7, -6, -6, -5, -5, -5, -4, -4, -3, -3, -3, -2, -2, -2]
        );
        assert_eq!(decade_of(0.999e-5), -6);
    }
}
