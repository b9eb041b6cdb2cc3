//! `deepcq collect` and `deepcq features-bench`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use h5z_deepcq::codec::codec_for;
use h5z_deepcq::features;
use h5z_deepcq::samples::Samples;
use h5z_deepcq::synth::{self, Kind};
use h5z_deepcq::train::collect::{collect, CollectConfig};
use h5z_deepcq::train::log_grid;
use h5z_deepcq::wire::CodecId;

/// Arguments of `deepcq collect`.
#[derive(clap::Args)]
pub struct CollectArgs {
    /// Folder of dataset folders with stats.json manifests, or one dataset folder (its own
    /// stats.json) (repeatable), e.g. ../shared/data.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Only these datasets (comma-separated folder names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Number of generated fields to add.
    #[arg(long, default_value_t = 0)]
    synth: usize,
    /// Most chunks per real array.
    #[arg(long, default_value_t = 12)]
    max_chunks: usize,
    /// Number of relative bounds, log-spaced from --min-bound to --max-bound.
    #[arg(
        long,
        default_value_t = 16,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..)
    )]
    bounds: usize,
    /// Smallest relative bound.
    #[arg(long, default_value_t = 1e-7)]
    min_bound: f64,
    /// Largest relative bound.
    #[arg(long, default_value_t = 1e-1)]
    max_bound: f64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seed of chunk and field choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output CSV table (appended to; an interrupted run resumes).
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs `deepcq collect`.
pub fn run(args: CollectArgs) -> Result<()> {
    if !(args.min_bound > 0.0 && args.max_bound > args.min_bound && args.max_bound.is_finite()) {
        anyhow::bail!("need 0 < --min-bound < --max-bound < infinity");
    }
    let config = CollectConfig {
        data_dirs: args.data,
        only_datasets: args.only,
        synth_fields: args.synth,
        max_chunks_per_array: args.max_chunks,
        bounds: log_grid(args.min_bound.log10(), args.max_bound.log10(), args.bounds),
        threads: args.threads,
        seed: args.seed,
        output: args.output.clone(),
        progress: true,
    };
    let start = Instant::now();
    let s =
        collect(&config).with_context(|| format!("collecting into {}", args.output.display()))?;
    eprintln!(
        "collect: {} chunks measured ({} already in the table), {} rows ({} skipped by a codec) in {:.1}s -> {}",
        s.chunks,
        s.resumed,
        s.rows,
        s.skipped_rows,
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}

/// Runs `deepcq features-bench`: feature extraction time vs one SZ3 compression.
pub fn bench(repeat: usize) -> Result<()> {
    println!("| chunk | values | features µs | SZ3 (1e-4 rel) µs | ratio |");
    println!("|---|---|---|---|---|");
    let cases: [(&str, Kind, &[usize]); 5] = [
        ("spectral 64³", Kind::Spectral { slope: 3.0 }, &[64, 64, 64]),
        ("spectral 32³", Kind::Spectral { slope: 3.0 }, &[32, 32, 32]),
        ("noise 64³", Kind::Noise, &[64, 64, 64]),
        ("spectral 512²", Kind::Spectral { slope: 3.0 }, &[512, 512]),
        (
            "spectral 1-D 2^18",
            Kind::Spectral { slope: 3.0 },
            &[262144],
        ),
    ];
    for (name, kind, shape) in cases {
        let v: Vec<f32> = synth::generate(kind, shape, 1)
            .iter()
            .map(|&x| x as f32)
            .collect();
        let data = Samples::F32(&v);
        let best = |f: &mut dyn FnMut()| {
            (0..repeat.max(1))
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e6
                })
                .fold(f64::INFINITY, f64::min)
        };
        let mut range = 0.0;
        let tf = best(&mut || range = features::extract(data, shape).value_range);
        let sz3 = codec_for(CodecId::Sz3);
        let mut err = None;
        let tc = best(&mut || {
            if let Err(e) = sz3.encode(data, shape, range * 1e-4) {
                err = Some(e);
            }
        });
        if let Some(e) = err {
            anyhow::bail!("sz3: {e}");
        }
        println!(
            "| {name} | {} | {tf:.0} | {tc:.0} | {:.1}% |",
            v.len(),
            100.0 * tf / tc
        );
    }
    Ok(())
}
