//! Per-chunk timings of the write path on generated f32 chunks of 64³ and 16×32×32 values:
//! features, surrogate inference, one compression per codec, the lossless estimate, and
//! predict-, fast- and guarantee-mode selections (`select::compress_to_target`: the chunk's
//! codec, bound and payload, without the filter's scan for missing values, header and
//! checksum, which `deepcq bench` times as well).
//!
//! `cargo bench --bench chunk_timings` prints the median of several runs of each step and
//! its ratio to one SZ3 compression at the formula bound (the design's "one compression").
//! Times are CPU seconds of the running thread, so a build running beside it on the same
//! cores does not inflate them.
//! It asserts nothing about speed: timings belong in reports, not in tests that fail on a
//! busy machine. The surrogate is found as the filter finds it (`ORT_DYLIB_PATH`, beside the
//! plugin, the system path); when it cannot load, its row says why and the writes
//! are skipped too, unless `H5Z_DEEPCQ_ALLOW_FALLBACK=1` allows SZ3's formula.

use h5z_deepcq::codec::{codec_for, Lossless, Pipeline, Sz3};
use h5z_deepcq::features;
use h5z_deepcq::learned;
use h5z_deepcq::metrics;
use h5z_deepcq::samples::{Layout, Samples};
use h5z_deepcq::select::{compress_to_target, sz3_formula_bound, value_range, Proposer};
use h5z_deepcq::settings::{Settings, Target};
use h5z_deepcq::surrogate;
use h5z_deepcq::synth::{generate, Kind};
use h5z_deepcq::wire::{CodecId, Mode, TargetKind};

/// Runs of each step; the median is printed.
const RUNS: usize = 15;
/// The PSNR target of the write rows.
const TARGET_DB: f64 = 60.0;

/// deepcq's chooser, as the filter and `deepcq bench` use it.
fn proposer(settings: &Settings) -> Result<&'static dyn Proposer, String> {
    learned::proposer_for(settings).map_err(|e| e.to_string())
}

/// CPU seconds the calling thread has used.
fn thread_cpu() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("Linux has a per-thread CPU clock");
    t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9
}

/// Median CPU seconds of `RUNS` calls of `f`, after one warm-up call.
fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = thread_cpu();
            f();
            thread_cpu() - t
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn row(name: &str, secs: f64, one: f64) {
    println!(
        "{name:<34} {:>10.3} ms {:>8.3}× one SZ3 compression",
        secs * 1e3,
        secs / one
    );
}

/// The chunks timed: 64³ (1 MiB of f32, the size HDF5's guidance and the bench's chunking
/// aim at) and 16×32×32 (64 KiB, what h5py's automatic chunking picks for a mid-size
/// array), where the proposal's fixed cost weighs far more. `DEEPCQ_BENCH_SHAPE=a,b,c`
/// times that shape alone.
fn shapes() -> Vec<Vec<usize>> {
    match std::env::var("DEEPCQ_BENCH_SHAPE") {
        Ok(s) => vec![s
            .split(',')
            .map(|d| {
                d.trim()
                    .parse()
                    .expect("DEEPCQ_BENCH_SHAPE: comma-separated dims")
            })
            .collect()],
        Err(_) => vec![vec![64, 64, 64], vec![16, 32, 32]],
    }
}

fn main() {
    for (i, shape) in shapes().iter().enumerate() {
        if i > 0 {
            println!();
        }
        report(shape);
    }
}

/// Times every step of the write path on a generated chunk of `shape`.
fn report(shape: &[usize]) {
    let values: Vec<f32> = generate(Kind::Spectral { slope: 3.0 }, shape, 1)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let data = Samples::F32(&values);
    let bound = sz3_formula_bound(value_range(data), TARGET_DB);
    let one = median(|| {
        codec_for(CodecId::Sz3).encode(data, shape, bound).unwrap();
    });
    println!("chunk {shape:?} f32 (spectral slope 3), target {TARGET_DB} dB, median of {RUNS} runs, thread CPU time");
    row(
        "features::Extent::of (range)",
        median(|| {
            std::hint::black_box(features::Extent::of(data));
        }),
        one,
    );
    row(
        "features::extract",
        median(|| drop(features::extract(data, shape))),
        one,
    );
    match surrogate::shared() {
        Ok(s) => {
            let f = features::extract(data, shape);
            let candidates = s.all_candidates();
            let name = format!("surrogate ({} candidates)", candidates.len());
            row(
                &name,
                median(|| drop(s.predict(&f, &candidates).unwrap())),
                one,
            );
        }
        Err(e) => println!("surrogate: skipped, {e}"),
    }
    let settings = Settings::psnr(TARGET_DB).unwrap();
    let chooser = proposer(&settings);
    let extent = features::Extent::of(data);
    match chooser {
        Ok(chooser) => row(
            "proposal (features + inference)",
            median(|| {
                let _ = chooser.propose(data, shape, extent, &settings).unwrap();
            }),
            one,
        ),
        Err(ref e) => println!("proposal: skipped, {e}"),
    }
    row("sz3 compression (formula bound)", one, one);
    // The codec runs SZ3's two pipelines and keeps the smaller payload: one of them alone
    // is what SZ3's own filter (H5Z-SZ3) spends on a chunk.
    row(
        "sz3 default pipeline alone",
        median(|| drop(Sz3.encode_with(data, shape, bound, Some(Pipeline::Default)))),
        one,
    );
    let payload = codec_for(CodecId::Sz3).encode(data, shape, bound).unwrap();
    let layout = Layout::of(&data, shape);
    let decode = || {
        codec_for(CodecId::Sz3)
            .decode(&payload, &layout, bound)
            .unwrap()
    };
    // With the checks before SZ3 reads the payload (docs/format.md), its zstd pass among them.
    row("sz3 decode (formula bound)", median(|| drop(decode())), one);
    let back = decode();
    row(
        "metrics::ssim (whole)",
        median(|| {
            std::hint::black_box(metrics::ssim_of(data, back.view(), shape));
        }),
        one,
    );
    let reference = metrics::SsimReference::of(&values, shape);
    row(
        "SSIM target check (per attempt)",
        median(|| {
            std::hint::black_box(reference.ssim_of(data, back.view()));
        }),
        one,
    );
    row(
        "lossless estimate (a sample of runs)",
        median(|| drop(Lossless::estimated_len(data, shape))),
        one,
    );
    row(
        "lossless compression (whole)",
        median(|| drop(codec_for(CodecId::Lossless).encode(data, shape, 0.0))),
        one,
    );
    for codec in [CodecId::Zfp, CodecId::Sperr] {
        let name = format!("{} compression (formula bound)", codec.name());
        let secs = median(|| {
            codec_for(codec).encode(data, shape, bound).unwrap();
        });
        row(&name, secs, one);
    }
    let Ok(chooser) = chooser else {
        println!("predict-, fast- and guarantee-mode writes: skipped, no chooser");
        return;
    };
    for (mode, name) in [
        (Mode::Predict, "predict-mode write"),
        (Mode::Fast, "fast-mode write"),
        (Mode::Guarantee, "guarantee-mode write"),
    ] {
        let mut settings = settings;
        settings.mode = mode;
        let secs = median(|| {
            compress_to_target(data, shape, &settings, chooser).unwrap();
        });
        row(name, secs, one);
    }
    // Ratio targets: predict mode compresses once at SPERR's fixed rate, guarantee mode
    // searches the bound.
    for (kind, value, mode, name) in [
        (
            TargetKind::Ssim,
            0.999,
            Mode::Predict,
            "predict-mode write, SSIM 0.999",
        ),
        (
            TargetKind::Ssim,
            0.999,
            Mode::Guarantee,
            "guarantee-mode write, SSIM 0.999",
        ),
        (
            TargetKind::Ratio,
            16.0,
            Mode::Predict,
            "predict-mode write, ratio 16",
        ),
        (
            TargetKind::Ratio,
            16.0,
            Mode::Guarantee,
            "guarantee-mode write, ratio 16",
        ),
    ] {
        let settings = Settings {
            target: Target::from_value(kind, value).unwrap(),
            mode,
            ..settings
        };
        let secs = median(|| {
            compress_to_target(data, shape, &settings, chooser).unwrap();
        });
        row(name, secs, one);
    }
}
