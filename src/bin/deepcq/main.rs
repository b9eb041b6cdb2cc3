//! `deepcq`: the command line of h5z-deepcq.
//!
//! Every failure prints one clear line on stderr and exits non-zero; no panic traces.

mod bench;
mod cdvalues;
mod codecs;
mod collect;
mod demo;
mod hdf5;
mod inspect;
mod raw;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use h5z_deepcq::wire::CodecId;

#[derive(Parser)]
#[command(
    name = "deepcq",
    version,
    about = "Quality-targeted compression of scientific floating-point data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print version, filter id, compressors, plugin path and model.
    Info {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the cd_values for a target: the h5repack argument, a C array, h5py options.
    Cdvalues(cdvalues::CdArgs),
    /// List, per chunk of each deepcq dataset, the codec, bound, ratio and quality record.
    ///
    /// Loads libhdf5 at run time: set DEEPCQ_HDF5_LIB to choose which one.
    Inspect(inspect::InspectArgs),
    /// Compress a raw little-endian array into a self-describing .dcq chunk.
    Compress {
        /// Element type of the raw file: f32 or f64.
        #[arg(long)]
        dtype: raw::RawType,
        /// Dims, slowest first, e.g. 64x64x64.
        #[arg(long, value_parser = raw::parse_dims)]
        dims: raw::Dims,
        /// sz3, zfp, sperr or lossless.
        #[arg(long, value_parser = parse_codec)]
        codec: CodecId,
        /// Absolute error bound (required for lossy codecs).
        #[arg(long = "abs", allow_negative_numbers = true)]
        bound: Option<f64>,
        /// Raw input file.
        input: PathBuf,
        /// Output .dcq file.
        output: PathBuf,
    },
    /// Decompress a .dcq chunk back into a raw little-endian array.
    Decompress {
        /// Input .dcq file.
        input: PathBuf,
        /// Raw output file.
        output: PathBuf,
    },
    /// Compress a generated field with every codec and print a table (the main demo).
    Demo,
    /// Measure codec throughput (MB/s) and ratio per codec and bound on one field.
    BenchCodecs {
        /// Raw input file; defaults to a generated 64³ f32 field.
        input: Option<PathBuf>,
        /// Element type of the raw file.
        #[arg(long, default_value = "f32")]
        dtype: raw::RawType,
        /// Dims of the raw file, slowest first.
        #[arg(long, value_parser = raw::parse_dims)]
        dims: Option<raw::Dims>,
        /// Bounds relative to the value range, comma-separated.
        #[arg(long, default_value = "1e-2,1e-3,1e-4,1e-5", value_delimiter = ',')]
        rel: Vec<f64>,
        /// Timed repetitions per measurement (the best is kept).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Build a training table: features + measured PSNR/SSIM/CR per chunk, codec and bound.
    Collect(collect::CollectArgs),
    /// Train the mixture-of-experts surrogate on collected tables and export it to ONNX.
    Train(train::TrainArgs),
    /// Run every method (safe bound, SZ3 formula, SPERR PSNR mode, oracles, deepcq predict,
    /// fast and guarantee) side by side on real arrays; Markdown report and rate–distortion
    /// plot.
    Bench(bench::BenchArgs),
    /// Time feature extraction against one SZ3 compression of the same chunk.
    FeaturesBench {
        /// Timed repetitions (the best is kept).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
}

fn parse_codec(name: &str) -> Result<CodecId, String> {
    CodecId::from_name(name)
        .ok_or_else(|| format!("unknown codec '{name}': expected one of sz3, zfp, sperr, lossless"))
}

fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as other command-line tools do, instead of
    // panicking on the closed pipe (Rust programs ignore SIGPIPE unless told otherwise).
    // SAFETY: no other thread runs yet, and SIG_DFL is a valid disposition for SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    // The library's per-chunk log, as the plugin gives it, when H5Z_DEEPCQ_LOG asks.
    h5z_deepcq::observe::init();
    let result = match cli.command {
        Command::Info { json } => codecs::info(json),
        Command::Compress {
            dtype,
            dims,
            codec,
            bound,
            input,
            output,
        } => codecs::compress(dtype, &dims.0, codec, bound, &input, &output),
        Command::Cdvalues(args) => cdvalues::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Decompress { input, output } => codecs::decompress(&input, &output),
        Command::Demo => codecs::demo(),
        Command::BenchCodecs {
            input,
            dtype,
            dims,
            rel,
            repeat,
        } => codecs::bench(
            input.as_deref(),
            dtype,
            dims.as_ref().map(|d| d.0.as_slice()),
            &rel,
            repeat,
        ),
        Command::Collect(args) => collect::run(args),
        Command::FeaturesBench { repeat } => collect::bench(repeat),
        Command::Train(args) => train::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deepcq: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
