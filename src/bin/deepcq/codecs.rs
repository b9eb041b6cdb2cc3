//! The codec-level commands: info, compress, decompress, demo and bench-codecs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use h5z_deepcq::chunk;
use h5z_deepcq::learned::PREDICT_RATIO_AIM;
use h5z_deepcq::metrics::{compression_ratio, error_stats_of, ssim_of};
use h5z_deepcq::samples::{SampleBuf, Samples};
use h5z_deepcq::synth::{self, Kind};
use h5z_deepcq::wire::{self, CodecId};

use crate::raw::{self, RawType};

/// File name of the built plugin.
const PLUGIN_FILE: &str = "libh5z_deepcq.so";

/// The plugin beside this executable (a build's target/release) or in the `lib` folder
/// beside its `bin` (an installed prefix, as scripts/install.sh lays it out), if any.
fn plugin_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let folder = exe.parent()?;
    [
        folder.join(PLUGIN_FILE),
        folder.join("../lib").join(PLUGIN_FILE),
    ]
    .iter()
    .find_map(|candidate| candidate.canonicalize().ok())
}

/// The onnxruntime and model this process finds, as the filter would from this folder: the
/// model and its metadata, or why not (the plugin searches beside itself, which in a
/// build tree is another folder: the README's "The command line").
fn model_info() -> serde_json::Value {
    use h5z_deepcq::surrogate::{self, locate};
    let runtime = locate::onnxruntime_library();
    let source = locate::model().map(|(_, source)| source);
    match surrogate::shared() {
        Ok(s) => {
            let m = s.metadata();
            serde_json::json!({
                "loaded": true,
                "source": source.ok(),
                "onnxruntime": runtime.ok().map(|p| p.display().to_string()),
                "feature_schema": m.schema_version,
                "features": m.feature_names.len(),
                "compressors": m.compressors.iter().map(|c| c.name()).collect::<Vec<_>>(),
                "bound_grid": [m.bound_grid.first(), m.bound_grid.last()],
                "corpus": m.corpus,
                "validation": m.validation,
                "psnr_margins_db": m.psnr_margins.map(|p| serde_json::json!({
                    "predict": p.predict,
                    "guarantee": p.guarantee,
                })),
                "predict_metric_margins": m.metric_margins.map(|p| serde_json::json!({
                    "ssim_gap": p.ssim_gap,
                    "ratio": p.ratio,
                })),
            })
        }
        Err(error) => serde_json::json!({ "loaded": false, "error": error }),
    }
}

pub fn info(json: bool) -> Result<()> {
    let compressors: Vec<&str> = CodecId::ALL.iter().map(|c| c.name()).collect();
    let plugin = plugin_path().map(|p| p.display().to_string());
    let model = model_info();
    if json {
        let value = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "filter_id": wire::FILTER_ID,
            "filter_name": wire::FILTER_NAME,
            "chunk_format_version": wire::FORMAT_VERSION,
            "compressors": compressors,
            "plugin_path": plugin,
            "model": model,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("deepcq {}", env!("CARGO_PKG_VERSION"));
        println!("filter id:     {}", wire::FILTER_ID);
        println!("chunk format:  v{}", wire::FORMAT_VERSION);
        println!("compressors:   {}", compressors.join(", "));
        println!(
            "plugin:        {}",
            plugin.unwrap_or_else(|| "(not built beside this executable)".into())
        );
        match model["loaded"].as_bool() {
            Some(true) => {
                println!(
                    "model:         {} (feature schema {}), onnxruntime {}",
                    model["source"].as_str().unwrap_or("?"),
                    model["feature_schema"],
                    model["onnxruntime"].as_str().unwrap_or("?")
                );
                let margins = &model["psnr_margins_db"];
                if margins.is_null() {
                    println!("psnr margins:  constant (the model carries no calibration)");
                } else {
                    println!(
                        "psnr margins:  predict {} dB, guarantee {} dB (per sz3, zfp, sperr \
                         and band of predicted excess; calibrated on held-out data)",
                        margins["predict"], margins["guarantee"]
                    );
                }
                let metric = &model["predict_metric_margins"];
                if !metric.is_null() {
                    // Predict mode caps the calibrated ratio margin and checks the stored
                    // size instead (learned::PREDICT_RATIO_AIM): say what it uses.
                    let calibrated = metric["ratio"].as_f64().unwrap_or(f64::NAN);
                    println!(
                        "predict mode:  SSIM keeps {} of 1 - T in reserve (calibrated on \
                         held-out data), ratio aims at {} x T predicted (calibrated {}, \
                         capped at {})",
                        metric["ssim_gap"],
                        calibrated.min(PREDICT_RATIO_AIM),
                        metric["ratio"],
                        PREDICT_RATIO_AIM
                    );
                }
            }
            _ => println!(
                "model:         not loaded: {}",
                model["error"].as_str().unwrap_or("?")
            ),
        }
    }
    Ok(())
}

pub fn compress(
    dtype: RawType,
    dims: &[usize],
    codec: CodecId,
    bound: Option<f64>,
    input: &Path,
    output: &Path,
) -> Result<()> {
    not_the_input(input, output)?;
    let bound = match (codec, bound) {
        (CodecId::Lossless, b) => b.unwrap_or(0.0),
        (_, None) => bail!("--abs <bound> is required for lossy codec {}", codec.name()),
        (_, Some(b)) if !(b.is_finite() && b > 0.0) => {
            bail!("--abs must be a positive finite number, got {b}")
        }
        (_, Some(b)) => b,
    };
    // One chunk's header holds its size in 32 bits: more would be written and never read
    // back. Refused before the file is read.
    let len = raw::expected_len(dtype, dims)?;
    if len as u64 > wire::MAX_ORIGINAL_LEN {
        bail!(
            "{} values of {dtype:?} are {len} bytes; a chunk holds at most {} (4 GiB): \
             compress the array in parts",
            dims.iter().product::<usize>(),
            wire::MAX_ORIGINAL_LEN
        );
    }
    let values = raw::read(input, dtype, dims)?;
    if codec != CodecId::Lossless && !values.view().all_finite() {
        bail!(
            "{} holds NaN or Inf values, which lossy codecs cannot bound; use --codec lossless",
            input.display()
        );
    }
    let start = Instant::now();
    let bytes = chunk::encode(codec, values.view(), dims, bound, None)?;
    let seconds = start.elapsed().as_secs_f64();
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    let original = values.view().byte_len();
    println!(
        "{}: {} -> {} bytes, CR {:.2}, {:.3} s ({:.1} MB/s)",
        codec.name(),
        original,
        bytes.len(),
        compression_ratio(original, bytes.len()),
        seconds,
        original as f64 / 1e6 / seconds.max(1e-9)
    );
    Ok(())
}

/// Fails when `output` names the file `input` does: it would be replaced by what was made
/// from it (the original by its lossy chunk, or the other way round).
fn not_the_input(input: &Path, output: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The same file under another name too (a hard link).
    let inode = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let linked = inode(input).is_some() && inode(input) == inode(output);
    if linked || crate::train::same_file(input) == crate::train::same_file(output) {
        bail!(
            "{} is the input: name another output file",
            output.display()
        );
    }
    Ok(())
}

pub fn decompress(input: &Path, output: &Path) -> Result<()> {
    not_the_input(input, output)?;
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let start = Instant::now();
    // A chunk read from a dataset with fletcher32 after deepcq (h5py's read_direct_chunk)
    // ends with that filter's 4-byte checksum, which deepcq's own then sees as damage.
    let decoded = match chunk::decode(&bytes) {
        Err(chunk::ChunkError::Checksum { .. }) if bytes.len() > 4 => {
            chunk::decode(&bytes[..bytes.len() - 4]).inspect(|_| {
                eprintln!(
                    "deepcq: the last 4 bytes of {} (a fletcher32 checksum) left out",
                    input.display()
                )
            })
        }
        decoded => decoded,
    };
    let (header, values) = decoded.with_context(|| format!("cannot decode {}", input.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let original = header.original_len as usize;
    raw::write(output, values)?;
    let dims: Vec<String> = header.layout.shape.iter().map(|d| d.to_string()).collect();
    println!(
        "{}: {} {} (bound {}) {} -> {} bytes, CR {:.2}, {:.3} s ({:.1} MB/s)",
        header.codec.name(),
        header.layout.dtype.name(),
        dims.join("x"),
        header.bound,
        bytes.len(),
        original,
        compression_ratio(original, bytes.len()),
        seconds,
        original as f64 / 1e6 / seconds.max(1e-9)
    );
    Ok(())
}

/// One compress + decompress, measured.
struct Trial {
    stored: usize,
    encode_s: f64,
    decode_s: f64,
    max_error: f64,
    psnr: f64,
    ssim: f64,
}

/// One trial, or (inner error) the codec's refusal to encode this chunk at this bound;
/// a chunk that fails to decode is the outer error.
fn trial(
    codec: CodecId,
    data: Samples<'_>,
    shape: &[usize],
    bound: f64,
    repeat: usize,
) -> Result<Result<Trial, chunk::ChunkError>> {
    let mut best = (f64::INFINITY, f64::INFINITY);
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let bytes = match chunk::encode(codec, data, shape, bound, None) {
            Ok(bytes) => bytes,
            Err(refused) => return Ok(Err(refused)),
        };
        let encode_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let (_, values) = chunk::decode(&bytes)?;
        let decode_s = start.elapsed().as_secs_f64();
        best = (best.0.min(encode_s), best.1.min(decode_s));
        last = Some((bytes.len(), values));
    }
    let (stored, values): (usize, SampleBuf) = last.expect("at least one repetition");
    let stats = error_stats_of(data, values.view()).context("type mismatch")?;
    Ok(Ok(Trial {
        stored,
        encode_s: best.0,
        decode_s: best.1,
        max_error: stats.max_abs_error,
        psnr: stats.psnr,
        ssim: ssim_of(data, values.view(), shape).unwrap_or(f64::NAN),
    }))
}

/// Value range of finite values.
fn value_range(data: Samples<'_>) -> f64 {
    let it: Box<dyn Iterator<Item = f64>> = match data {
        Samples::F32(v) => Box::new(v.iter().map(|x| *x as f64)),
        Samples::F64(v) => Box::new(v.iter().copied()),
        Samples::Opaque { .. } => Box::new(std::iter::empty()),
    };
    let (lo, hi) = it
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
    if hi >= lo {
        hi - lo
    } else {
        0.0
    }
}

fn print_table(
    name: &str,
    data: Samples<'_>,
    shape: &[usize],
    rel: &[f64],
    repeat: usize,
) -> Result<()> {
    let range = value_range(data);
    let mb = data.byte_len() as f64 / 1e6;
    println!(
        "\nField: {name}, shape {shape:?}, {} MB, value range {range:.4e}\n",
        mb
    );
    println!("| codec | rel bound | abs bound | CR | PSNR dB | SSIM | max err / bound | compress MB/s | decompress MB/s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let lossless = trial(CodecId::Lossless, data, shape, 0.0, repeat)??;
    println!(
        "| lossless | - | - | {:.2} | {} | {:.4} | {:.2e} | {:.0} | {:.0} |",
        compression_ratio(data.byte_len(), lossless.stored),
        if lossless.psnr.is_infinite() {
            "inf".into()
        } else {
            format!("{:.1}", lossless.psnr)
        },
        lossless.ssim,
        lossless.max_error,
        mb / lossless.encode_s,
        mb / lossless.decode_s
    );
    if !(range > 0.0 && range.is_finite()) {
        println!(
            "\nThe value range is {range}: no bound relative to it exists, so the lossy \
             codecs are not run (the filter stores such chunks exactly)."
        );
        return Ok(());
    }
    for codec in CodecId::LOSSY {
        for &r in rel {
            let bound = r * range;
            let t = match trial(codec, data, shape, bound, repeat)? {
                Ok(t) => t,
                // A codec that refuses this chunk at this bound (finer than it resolves,
                // NaN, values SPERR cannot take) gets a row that says so; the table goes on.
                Err(refusal) => {
                    println!(
                        "| {} | {r:.0e} | {bound:.3e} | refused: {refusal} | | | | | |",
                        codec.name()
                    );
                    continue;
                }
            };
            println!(
                "| {} | {:.0e} | {:.3e} | {:.2} | {:.1} | {:.4} | {:.4} | {:.0} | {:.0} |",
                codec.name(),
                r,
                bound,
                compression_ratio(data.byte_len(), t.stored),
                t.psnr,
                t.ssim,
                t.max_error / bound,
                mb / t.encode_s,
                mb / t.decode_s
            );
            if t.max_error > bound * (1.0 + 1e-6) {
                bail!(
                    "{} broke its bound: max error {} > {}",
                    codec.name(),
                    t.max_error,
                    bound
                );
            }
        }
    }
    Ok(())
}

/// Demo: a generated, smooth 64³ float32 field through every codec at three bounds.
pub fn demo() -> Result<()> {
    let shape = [64, 64, 64];
    let field: Vec<f32> = synth::generate(Kind::Spectral { slope: 3.5 }, &shape, 42)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    println!("deepcq {} demo: every codec on a generated field; every lossy result is checked against its bound.", env!("CARGO_PKG_VERSION"));
    println!(
        "PSNR uses the value-range convention (SZ/SDRBench): 20·log10(range) − 10·log10(MSE)."
    );
    print_table(
        "generated spectral field (slope 3.5, seed 42)",
        Samples::F32(&field),
        &shape,
        &[1e-2, 1e-3, 1e-4],
        1,
    )?;
    println!("\nAll lossy results are within their bounds.");
    crate::demo::targets()
}

pub fn bench(
    input: Option<&Path>,
    dtype: RawType,
    dims: Option<&[usize]>,
    rel: &[f64],
    repeat: usize,
) -> Result<()> {
    if rel.is_empty() || rel.iter().any(|r| !(*r > 0.0 && r.is_finite())) {
        bail!("--rel must be positive, finite bounds relative to the value range: {rel:?}");
    }
    match input {
        Some(path) => {
            let dims = dims.context("--dims is required with an input file")?;
            let values = raw::read(path, dtype, dims)?;
            print_table(
                &path.display().to_string(),
                values.view(),
                dims,
                rel,
                repeat,
            )
        }
        None => {
            if dims.is_some() {
                bail!("--dims describes an input file, and none was given");
            }
            let shape = [64, 64, 64];
            let field: Vec<f32> = synth::generate(Kind::Spectral { slope: 3.5 }, &shape, 42)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            print_table(
                "generated spectral field (slope 3.5, seed 42)",
                Samples::F32(&field),
                &shape,
                rel,
                repeat,
            )
        }
    }
}
