//! `deepcq bench`: every method side by side on real arrays, per array and in total.
//!
//! The modules, one job each: [`inputs`] finds the arrays, [`chunking`] cuts them as the
//! peer harness does, [`methods`] runs every method on a chunk (with [`oracle`] for the
//! bisected limits and [`cputime`] for the clock), [`stats`] turns chunk results into
//! figures, [`peers`] reads the peer harness's recorded figures, [`report`] writes Markdown
//! and [`plot`] the rate–distortion PNG. docs/bench.md explains the columns.

pub(crate) mod chunking;
mod cputime;
mod inputs;
mod methods;
mod oracle;
mod peers;
mod plot;
mod report;
mod stats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use h5z_deepcq::learned;
use h5z_deepcq::samples::SampleBuf;
use h5z_deepcq::select::Proposer;
use h5z_deepcq::settings::Settings;
use h5z_deepcq::surrogate;
use rayon::prelude::*;

use crate::raw::{self, RawType};
use methods::{Job, Method};
use stats::{ArrayResult, Tally};

/// Arguments of `deepcq bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// A folder of dataset folders with stats.json manifests (e.g. ../shared/data), one
    /// dataset folder, one raw array file, or an HDF5 file (every f32/f64 dataset, in its
    /// own chunks); HDF5 files in a folder and its subfolders are benched too.
    input: PathBuf,
    /// PSNR targets in dB, comma-separated.
    #[arg(long, default_value = "40,60,80", value_delimiter = ',')]
    targets: Vec<f64>,
    /// Chunk dims for every array (default: the peer harness's rule, halve the largest axis
    /// until a chunk holds at most 2^18 values).
    #[arg(long, value_parser = raw::parse_dims)]
    chunk: Option<raw::Dims>,
    /// Only arrays whose `dataset/file` name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// At most this many arrays (after --filter, in name order).
    #[arg(long)]
    max_arrays: Option<usize>,
    /// Worker threads (the targets of an array run in parallel, its chunks in order).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Real compressions per oracle, compressor and chunk.
    #[arg(long, default_value_t = oracle::DEFAULT_STEPS)]
    oracle_steps: u32,
    /// Write the Markdown report here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the rate–distortion PNG here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Peer-harness figures to print beside ours (default: ../tools/shared_data_peers.jsonl
    /// beside a corpus folder, when present).
    #[arg(long)]
    peers: Option<PathBuf>,
    /// Element type of a bare raw file (with --dims).
    #[arg(long, requires = "dims")]
    dtype: Option<RawType>,
    /// Dims of a bare raw file, slowest first (with --dtype).
    #[arg(long, value_parser = raw::parse_dims, requires = "dtype")]
    dims: Option<raw::Dims>,
    /// Values equal to this are missing data in every array, as the filter's cd_values
    /// name one (`deepcq cdvalues --missing`): kept exactly by every row and left out of
    /// the PSNR. Without it, an HDF5 dataset's user-defined fill value marks missing
    /// data, as it does in the filter; NaN and ±Inf always do.
    #[arg(long, allow_hyphen_values = true)]
    missing: Option<f64>,
}

/// The value that marks `values`' missing data: `named` (`--missing`), else the dataset's
/// `fill` value, in the values' element type (an f32 array's is rounded to the nearest
/// f32, as the filter does with a named missing value; one that no f32 comes near fails).
fn missing_value(values: &SampleBuf, named: Option<f64>, fill: Option<f64>) -> Result<Option<f64>> {
    let Some(value) = named.or(fill) else {
        return Ok(None);
    };
    // Any target: only the missing value is read back.
    let settings = Settings::psnr(60.0)?.with_missing(value);
    Ok(match values {
        SampleBuf::F32(_) => settings.missing_as::<f32>()?.map(f64::from),
        _ => settings.missing_as::<f64>()?,
    })
}

/// What the deepcq rows use to choose a codec and bound: exactly what the filter uses
/// (the learned surrogate; the analytic formula only when the user allowed the fallback).
fn proposer(settings: &Settings) -> Result<&'static dyn Proposer> {
    Ok(learned::proposer_for(settings)?)
}

/// The chooser in words, for the report: which model, or why the fallback ran.
fn chooser_name() -> String {
    match (learned::learned(), surrogate::locate::model()) {
        (Ok(_), Ok((_, source))) => format!("learned surrogate ({source})"),
        (Ok(_), Err(_)) => "learned surrogate".into(),
        (Err(reason), _) => format!(
            "analytic SZ3 formula, because {} is set and the surrogate is unavailable: {reason}",
            learned::FALLBACK_ENV
        ),
    }
}

/// Runs `deepcq bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let start = Instant::now();
    if args.targets.is_empty() || args.targets.iter().any(|t| !(*t > 0.0 && *t <= 400.0)) {
        bail!("--targets must be PSNR values in (0, 400] dB");
    }
    let raw = args
        .dtype
        .zip(args.dims.clone())
        .map(|(t, d)| (t.dtype(), d.0));
    let (mut entries, inputs::LeftOut(mut listing_left_out)) = inputs::arrays(&args.input, raw)?;
    if let Some(f) = &args.filter {
        entries.retain(|e| e.name().contains(f.as_str()));
        listing_left_out.retain(|why| why.split(": ").next().is_some_and(|n| n.contains(f)));
    }
    entries.truncate(args.max_arrays.unwrap_or(usize::MAX));
    if entries.is_empty() {
        bail!("no array of {} matches", args.input.display());
    }
    let chunk_of = |array: &inputs::BenchArray| -> Result<Vec<usize>> {
        let dims = &array.dims;
        match (&args.chunk, &array.stored_chunk) {
            (Some(c), _) if c.0.len() != dims.len() => {
                bail!("--chunk has rank {}, an array has dims {dims:?}", c.0.len())
            }
            (Some(c), _) => Ok(c.0.clone()),
            (None, Some(stored)) if stored.len() == dims.len() => Ok(stored.clone()),
            (None, _) => Ok(chunking::default_chunk(dims, chunking::DEFAULT_BUDGET)),
        }
    };
    // Fails early (before any work) on a target cd_values cannot hold (60.00000000001),
    // any of them, not only the first (a later one failed after the first array), and when
    // the chooser cannot load. Workers fetch it again: a proposer is not Sync, and fetching
    // is a lookup of a process-wide instance.
    for &target in &args.targets {
        Settings::psnr(target)?;
    }
    proposer(&Settings::psnr(args.targets[0])?)?;
    // So are a peer file that cannot be read and a report or plot that cannot be written:
    // found after the run, they would lose all of it.
    let peers = peer_rows(&args)?;
    let input = crate::train::same_file(&args.input);
    if let (Some(out), Some(plot)) = (&args.out, &args.plot) {
        if crate::train::same_file(out) == crate::train::same_file(plot) {
            bail!("--out and --plot name one file, {}", out.display());
        }
    }
    for path in args.out.iter().chain(&args.plot) {
        if crate::train::same_file(path) == input {
            bail!(
                "{} is the input: the report would replace it",
                path.display()
            );
        }
        writable(path)?;
    }
    let chooser_name = chooser_name();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()
        .context("starting worker threads")?;
    let mut total_jobs = 0u64;
    for e in &entries {
        let blocks = chunking::block_count(&e.dims, &chunk_of(e)?);
        total_jobs = total_jobs.saturating_add(blocks.saturating_mul(args.targets.len() as u64));
    }
    let bar = indicatif::ProgressBar::new(total_jobs);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} chunk×targets, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // What the listing left out is named in the report too, not only on stderr.
    let (mut arrays, mut left_out) = (Vec::new(), listing_left_out);
    for (i, entry) in entries.iter().enumerate() {
        bar.set_message(entry.name());
        let chunk = chunk_of(entry)?;
        let block_count = chunking::block_count(&entry.dims, &chunk);
        // An array that cannot be read (a dataset behind a filter that is not installed, a
        // file shorter than its manifest says) is named and left out, as unreadable files
        // are when the folder is listed: it does not lose the rest of the run.
        let (values, fill) = match entry.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                let why = format!("{}: {e:#}", entry.name());
                bar.suspend(|| eprintln!("bench: left out {why}"));
                bar.inc(block_count.saturating_mul(args.targets.len() as u64));
                left_out.push(why);
                continue;
            }
        };
        // Made once the values are in memory: no more chunks than values.
        let blocks = chunking::blocks(&entry.dims, &chunk);
        // An array that fails later (a `--missing` its dtype cannot hold, a chunk a
        // method cannot run) is left out the same way, so that an error hours into a run
        // costs that array, not the report.
        let leave_out = |left_out: &mut Vec<String>, e: anyhow::Error| {
            let why = format!("{}: {e:#}", entry.name());
            bar.suspend(|| eprintln!("bench: left out {why}"));
            left_out.push(why);
        };
        let missing = match missing_value(&values, args.missing, fill) {
            Ok(missing) => missing,
            Err(e) => {
                leave_out(&mut left_out, e.context("its missing value"));
                bar.inc(block_count.saturating_mul(args.targets.len() as u64));
                continue;
            }
        };
        // Each target's chunks run in order through one memory, as the filter receives a
        // dataset's chunks, so that runs repeat exactly; the targets run in parallel.
        let per_target = pool.install(|| {
            (0..args.targets.len())
                .into_par_iter()
                .map(|ti| {
                    let memories = methods::Memories::default();
                    let chooser = Settings::psnr(args.targets[ti])
                        .map_err(anyhow::Error::from)
                        .and_then(|settings| proposer(&settings))?;
                    blocks
                        .iter()
                        .map(|block| {
                            let sub = chunking::extract(&values, &entry.dims, block);
                            let marked = methods::marked(sub.view(), missing);
                            let job = Job {
                                data: marked.as_ref().map_or(sub.view(), |(r, _)| r.view()),
                                original: sub.view(),
                                missing: marked.as_ref().map(|(_, m)| m),
                                fill: missing,
                                shape: &block.shape,
                                target: args.targets[ti],
                            };
                            let real = methods::real_extent(sub.view(), missing).0;
                            let rows = methods::run_all(job, args.oracle_steps, chooser, &memories)
                                .with_context(|| {
                                    format!("{} chunk at {:?}", entry.name(), block.origin)
                                });
                            bar.inc(1);
                            rows.map(|rows| (ti, sub.view().byte_len(), real, rows))
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()
        });
        let per_target = match per_target {
            Ok(per_target) => per_target,
            Err(e) => {
                leave_out(&mut left_out, e);
                continue;
            }
        };
        let results = per_target.into_iter().flatten();
        let mut tallies: HashMap<(usize, Method), Tally> = HashMap::new();
        for (ti, bytes, n, rows) in results {
            for (m, r) in rows {
                tallies
                    .entry((ti, m))
                    .or_default()
                    .add(bytes, n, args.targets[ti], &r);
            }
        }
        arrays.push(ArrayResult {
            name: entry.name(),
            dims: entry.dims.clone(),
            chunk,
            chunks: blocks.len(),
            range: methods::real_extent(values.view(), missing).1,
            missing,
            tallies,
        });
        if bar.is_hidden() {
            // No terminal (a log file, CI): one line per array instead of a bar.
            eprintln!(
                "bench: [{}/{}] {} ({} chunks) done at {:.0} s",
                i + 1,
                entries.len(),
                entry.name(),
                blocks.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    bar.finish_and_clear();
    if arrays.is_empty() {
        bail!("no array could be read: {}", left_out.join("; "));
    }
    if let Some(path) = &args.plot {
        plot::write(path, &rd_series(&arrays, args.targets.len()))?;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let chunk_rule = match &args.chunk {
        Some(c) => format!("--chunk {:?} for every array", c.0),
        None => "HDF5 datasets in their stored chunks; other arrays: halve the largest axis \
                 until a chunk holds ≤ 2^18 values (../shared/tools/folder_peers.py's rule); \
                 edge chunks keep their real extent"
            .into(),
    };
    let text = report::markdown(&report::Run {
        command,
        targets: &args.targets,
        arrays: &arrays,
        left_out: &left_out,
        threads: args.threads.max(1),
        steps: args.oracle_steps,
        proposer: &chooser_name,
        chunk_rule,
        peers,
        wall_seconds: start.elapsed().as_secs_f64(),
        plot: args.plot.as_ref().map(|p| p.display().to_string()),
    });
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("bench: report written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Fails unless `path` can be written, leaving an existing file as it is and none where
/// there was none (a run that fails later leaves no empty report behind).
fn writable(path: &Path) -> Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("{} cannot be written", path.display()))?;
    if !existed {
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The peer figures: `--peers`, or `../tools/shared_data_peers.jsonl` beside a corpus folder.
fn peer_rows(args: &BenchArgs) -> Result<Option<(String, Vec<peers::PeerRow>)>> {
    let path = match &args.peers {
        Some(p) => p.clone(),
        None => {
            let guess = args.input.join("../tools/shared_data_peers.jsonl");
            if !(args.input.is_dir() && guess.is_file()) {
                return Ok(None);
            }
            guess
        }
    };
    let rows = peers::load(&path)?;
    Ok(Some((path.display().to_string(), rows)))
}

/// One rate–distortion series per method over the totals.
fn rd_series(arrays: &[ArrayResult], targets: usize) -> Vec<plot::Series> {
    Method::ALL
        .iter()
        .map(|&method| plot::Series {
            method,
            points: (0..targets)
                .map(|ti| {
                    let f = stats::totals(arrays, ti, method);
                    (f.bits, f.psnr)
                })
                .collect(),
        })
        .collect()
}
