//! `deepcq train`: fit the mixture of experts on a collected table, validate it by
//! leaving one dataset out, and export it to ONNX.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use h5z_deepcq::train::moe::{self, MoeConfig};
use h5z_deepcq::train::onnx::{self, ExportInfo};
use h5z_deepcq::train::{calibrate, log_grid, plot, table, validate};

/// A count of at least one: clap refuses 0 by name instead of the trainer raising it.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// Arguments of `deepcq train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Training table(s) written by `deepcq collect`.
    #[arg(long = "table", required = true)]
    tables: Vec<PathBuf>,
    /// Output ONNX model.
    #[arg(short, long)]
    output: PathBuf,
    /// Number of experts K.
    #[arg(long, default_value_t = 4, value_parser = at_least_one())]
    experts: usize,
    /// Hidden width of each expert.
    #[arg(long, default_value_t = 32, value_parser = at_least_one())]
    hidden: usize,
    /// Hidden width of the gating net.
    #[arg(long, default_value_t = 32, value_parser = at_least_one())]
    gate_hidden: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 60, value_parser = at_least_one())]
    epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 512, value_parser = at_least_one())]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Seed (of the first member; member i uses seed + i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Models trained with consecutive seeds and averaged into one: the mean errs less
    /// on data unlike the training rows (docs/surrogate.md, "Ensemble"). Each costs one
    /// training, in validation too, and one model's inference in the filter.
    #[arg(long, default_value_t = 3, value_parser = at_least_one())]
    members: usize,
    /// Validate first, each source's datasets held out together, and print the table.
    #[arg(long)]
    lodo: bool,
    /// Write the validation tables (Markdown) here (needs --lodo).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the predicted-vs-actual PNG here (needs --lodo).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write every held-out prediction next to its measurement here (CSV, needs --lodo).
    #[arg(long)]
    held_out: Option<PathBuf>,
    /// Validation folds trained at once.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Points of the bound grid stored in the model (log-spaced 1e-7..1e-1), for tools
    /// that list the model's candidates; the filter scores its own finer grid.
    #[arg(long, default_value_t = 31)]
    grid_points: usize,
    /// Leave this dataset (a table's `dataset` column) out of training entirely; may be
    /// repeated. A model trained without some datasets can then be benchmarked on them as
    /// on data it has never seen (docs/bench.md, "Out of sample").
    #[arg(long = "exclude", value_name = "DATASET")]
    exclude: Vec<String>,
}

/// Runs `deepcq train`.
pub fn run(args: TrainArgs) -> Result<()> {
    // candle's CPU pool spin-waits between the many tiny ops of this model: on 2 cores it
    // made training 30× slower than one thread. Parallelism comes from --threads folds.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    anyhow::ensure!(
        args.lodo || (args.plot.is_none() && args.held_out.is_none() && args.report.is_none()),
        "--report, --plot and --held-out need --lodo (they show held-out predictions)"
    );
    anyhow::ensure!(
        args.lr > 0.0 && args.lr.is_finite(),
        "--lr must be a positive, finite learning rate, got {}",
        args.lr
    );
    // Outputs are written after minutes of training: a folder that is not there is said
    // now, not then.
    let outputs = [
        Some(&args.output),
        args.report.as_ref(),
        args.plot.as_ref(),
        args.held_out.as_ref(),
    ];
    for path in outputs.into_iter().flatten() {
        anyhow::ensure!(
            !path.is_dir(),
            "cannot write {}: it is a folder",
            path.display()
        );
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|f| !f.is_dir()) {
            anyhow::bail!(
                "cannot write {}: no folder {}",
                path.display(),
                folder.display()
            );
        }
    }
    // An output naming a table (or another output) would replace it after the training,
    // and the table is what took hours to collect.
    let mut written: Vec<std::path::PathBuf> = args.tables.iter().map(|t| same_file(t)).collect();
    for path in outputs.into_iter().flatten() {
        // Devices (two reports sent to /dev/null) are not files to keep.
        if path.exists() && !path.is_file() {
            continue;
        }
        let resolved = same_file(path);
        anyhow::ensure!(
            !written.contains(&resolved),
            "{} is named twice (as a table or another output): refusing to overwrite it",
            path.display()
        );
        written.push(resolved);
    }
    let mut rows = Vec::new();
    for t in &args.tables {
        let schema = h5z_deepcq::features::FEATURE_SCHEMA_VERSION;
        match h5z_deepcq::train::collect::recorded_schema(t) {
            Some(Some(found)) => anyhow::ensure!(
                found == schema,
                "{} was collected with feature schema {found}, this build computes schema \
                 {schema}: a model trained on it would read features it never saw; collect \
                 the table again",
                t.display()
            ),
            _ => eprintln!(
                "train: warning: {} does not record its feature schema (collected before \
                 tables kept it, or its .options file is gone): it must be schema {schema}",
                t.display()
            ),
        }
        rows.extend(table::read(t).with_context(|| format!("reading {}", t.display()))?);
    }
    for name in &args.exclude {
        let before = rows.len();
        rows.retain(|r| &r.dataset != name);
        anyhow::ensure!(
            rows.len() < before,
            "--exclude {name}: no such dataset in the table"
        );
    }
    // A dataset held out while another of its source stays in is not unseen: validation
    // holds a source's datasets out together for that reason (ccsm's TS and TREFHT were
    // each other's nearest neighbours chunk for chunk).
    let kept_siblings = validate::siblings_kept(&rows, &args.exclude);
    if !kept_siblings.is_empty() {
        eprintln!(
            "train: warning: --exclude leaves datasets of the same source in the training set \
             ({}): the excluded ones are not unseen; exclude these too for an out-of-sample model",
            kept_siblings.join(", ")
        );
    }
    // Collection appends chunks in completion order, which varies between runs: sort so
    // that one table content and one seed always give one model.
    rows.sort_by(|a, b| {
        (&a.dataset, &a.source, a.chunk, &a.codec)
            .cmp(&(&b.dataset, &b.source, b.chunk, &b.codec))
            .then(a.rel_bound.total_cmp(&b.rel_bound))
    });
    let config = MoeConfig {
        experts: args.experts,
        hidden: args.hidden,
        gate_hidden: args.gate_hidden,
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        members: args.members,
        ..Default::default()
    };
    let mut per_dataset: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &rows {
        let e = per_dataset.entry(r.dataset.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(r.is_ok());
    }
    let real = per_dataset
        .keys()
        .filter(|d| !validate::is_generated(d))
        .count();
    let chunks: std::collections::HashSet<String> = rows.iter().map(|r| r.chunk_key()).collect();
    let corpus = format!(
        "{} rows ({} ok) from {} chunks; {} real datasets + {} generated families: {}",
        rows.len(),
        rows.iter().filter(|r| r.is_ok()).count(),
        chunks.len(),
        real,
        per_dataset.len() - real,
        per_dataset
            .iter()
            .map(|(d, (n, _))| format!("{d}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("train: {corpus}");
    // Each fold holds one real dataset out and trains on the rest: with no real dataset
    // there is nothing to hold out, and with nothing else there is nothing to train on
    // (both used to report a median error of 0.00 dB).
    // Held out a source at a time (`validate::family`): two datasets of one source leave
    // nothing to train on.
    let sources: std::collections::BTreeSet<&str> =
        per_dataset.keys().map(|d| validate::family(d)).collect();
    anyhow::ensure!(
        !args.lodo || (real >= 1 && sources.len() >= 2),
        "--lodo holds out one real (non-generated) source at a time (datasets named alike up \
         to their first `_`) and trains on the others: it needs at least one real dataset \
         and one dataset of another source in the table ({real} real of {} datasets, {} \
         sources)",
        per_dataset.len(),
        sources.len()
    );
    // The model scores every compressor it declares: one with no row would be scored by
    // extrapolation alone, and trusted.
    let all_ok = rows.iter().filter(|r| r.is_ok()).count();
    for codec in moe::COMPRESSORS {
        let ok = rows
            .iter()
            .filter(|r| r.is_ok() && r.codec == codec)
            .count();
        anyhow::ensure!(
            ok > 0,
            "no usable row of {codec} in the table (every one skipped): the model would score \
             {codec} without having seen it; collect chunks {codec} compresses"
        );
        if ok * 100 < all_ok {
            eprintln!(
                "train: warning: {codec} has {ok} usable rows of {all_ok}: its predictions \
                 rest on little evidence"
            );
        }
    }

    let mut validation = String::from("not run");
    let mut psnr_margins = None;
    let mut metric_margins = None;
    if args.lodo {
        let start = Instant::now();
        let results = validate::leave_one_dataset_out(&rows, &config, args.threads, &|l| {
            eprintln!("lodo {l}")
        })?;
        // A fold whose dataset has no usable rows is left out: with none left, the margins
        // would be calibrated on nothing (40 dB everywhere, the smallest metric margins).
        anyhow::ensure!(
            !results.is_empty(),
            "--lodo: no held-out dataset has a usable row (every real chunk skipped)"
        );
        let all: Vec<&validate::Outcome> = results.iter().flat_map(|(_, o)| o.iter()).collect();
        let s = validate::score(all);
        let mut sources: Vec<&str> = results.iter().map(|(d, _)| validate::family(d)).collect();
        sources.sort_unstable();
        sources.dedup();
        validation = format!(
            "held out by source ({} sources, {} datasets): median |dPSNR| {:.2} dB, \
             p95 {:.2} dB (PSNR in 20..140 dB), CR MAPE {:.1}%, SSIM MAE {:.4}",
            sources.len(),
            results.len(),
            s.psnr_median,
            s.psnr_p95,
            s.cr_mape,
            s.ssim_mae
        );
        let groups: Vec<&str> = results.iter().map(|(d, _)| validate::family(d)).collect();
        let (margins, metrics, calibration) =
            calibrate::calibrate_modes(&calibrate::held_out_chunks(&results, &rows), &groups);
        psnr_margins = Some(margins);
        metric_margins = Some(metrics);
        let text = format!(
            "{}\n\nBy compressor and bound (pooled held-out rows):\n\n{}\n{}",
            validate::markdown_table(&results),
            validate::breakdown_table(&results, &rows),
            calibration
        );
        println!("{text}");
        eprintln!("lodo: {:.0}s", start.elapsed().as_secs_f64());
        if let Some(path) = &args.report {
            std::fs::write(path, format!("{text}\n{validation}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = &args.held_out {
            write_held_out(path, &results, &rows)?;
        }
        if let Some(path) = &args.plot {
            let outs: Vec<validate::Outcome> = results
                .iter()
                .flat_map(|(_, o)| o.iter().copied())
                .collect();
            plot::pred_vs_actual(path, &outs, &rows).map_err(anyhow::Error::msg)?;
        }
    }

    let start = Instant::now();
    let data = moe::prepare(&rows, |_| true);
    let weights = moe::train(&data, &config, |l| eprintln!("train {l}"))?;
    let train_secs = start.elapsed().as_secs_f64();
    // A run that diverged (too large a --lr) is not written: the filter would refuse the
    // model at its first chunk, or, over models/default.onnx, every build would embed it.
    anyhow::ensure!(
        moe::all_finite(&weights),
        "training diverged (weights not finite): nothing written; try a smaller --lr"
    );
    let training = format!(
        "members={} experts={} hidden={} gate_hidden={} epochs={} batch={} lr={} seed={} params={} rows={} time={:.0}s",
        config.members,
        config.experts,
        config.hidden,
        config.gate_hidden,
        config.epochs,
        config.batch,
        config.lr,
        config.seed,
        moe::parameter_count(&weights),
        data.len(),
        train_secs
    );
    let bytes = onnx::export(
        &weights,
        &ExportInfo {
            bound_grid: log_grid(-7.0, -1.0, args.grid_points),
            corpus,
            training: training.clone(),
            validation: validation.clone(),
            psnr_margins,
            metric_margins,
        },
    )
    .map_err(anyhow::Error::msg)?;
    // Written beside it and renamed: a run stopped mid-write (a full disk, a job's time
    // limit) leaves the model it replaces (models/default.onnx in docs/surrogate.md's
    // commands) whole.
    let mut partial = args.output.clone().into_os_string();
    partial.push(".partial");
    std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, &args.output))
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "train: {training}; wrote {} ({} bytes); {validation}",
        args.output.display(),
        bytes.len()
    );
    Ok(())
}

/// Writes the held-out predictions as CSV: one line per measured row of a held-out dataset.
fn write_held_out(
    path: &std::path::Path,
    results: &[(String, Vec<validate::Outcome>)],
    rows: &[table::Row],
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(
        out,
        "dataset,source,chunk,codec,rel_bound,effective_rel_bound,psnr,predicted_psnr,ssim,\
         predicted_ssim,cr32,predicted_cr32"
    )?;
    for o in results.iter().flat_map(|(_, outs)| outs) {
        let r = &rows[o.row];
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            r.dataset,
            r.source,
            r.chunk,
            r.codec,
            r.rel_bound,
            // The bound the model was scored at: ZFP's power of two at or below rel_bound.
            r.effective_rel_bound(),
            o.actual[0],
            o.predicted[0],
            o.actual[1],
            o.predicted[1],
            o.actual[2],
            o.predicted[2]
        )?;
    }
    out.flush()?;
    Ok(())
}

/// `path` as the file it names, links and `..` resolved (of its folder when it does not
/// exist yet), so two spellings of one file compare equal.
pub(crate) fn same_file(path: &std::path::Path) -> std::path::PathBuf {
    if let Ok(file) = path.canonicalize() {
        return file;
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let folder = folder.unwrap_or(std::path::Path::new("."));
    match (folder.canonicalize(), path.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => path.to_path_buf(),
    }
}
