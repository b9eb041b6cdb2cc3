//! An in-situ session over the steps of a raw array: each slice along the first axis is one
//! timestep, compressed by one [`Session`] as a simulation would call it, and the session's
//! counters and ratio are printed (docs/insitu.md quotes these runs).
//!
//! ```text
//! cargo run --release --example session_steps -- <file.f32|file.f64> <d0,d1,...> <target dB> \
//!     [guarantee|fast|predict] [adapt|fixed]
//! ```
//!
//! The file holds little-endian values in C order, dims slowest first (../shared/data's
//! layout); `fixed` makes every step independent, for comparison.

use std::process::ExitCode;

use h5z_deepcq::insitu::session::Session;
use h5z_deepcq::samples::Samples;
use h5z_deepcq::settings::Settings;
use h5z_deepcq::wire::Mode;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("session_steps: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<String, Box<dyn std::error::Error>> {
    let [path, dims, target, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: <file.f32|file.f64> <d0,d1,...> <target dB> [mode] [adapt|fixed]".into(),
        );
    };
    let dims: Vec<usize> = dims.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let mut settings = Settings::psnr(target.parse()?)?;
    settings.mode = match rest.first().map(String::as_str) {
        None | Some("guarantee") => Mode::Guarantee,
        Some("fast") => Mode::Fast,
        Some("predict") => Mode::Predict,
        Some(other) => return Err(format!("unknown mode {other}").into()),
    };
    let adapt = rest.get(1).is_none_or(|a| a != "fixed");
    let bytes = std::fs::read(path)?;
    let step_shape = dims
        .get(1..)
        .filter(|s| !s.is_empty())
        .ok_or("need 2 or more dims")?;
    let step_len: usize = step_shape.iter().product();
    let session = Session::new(settings, adapt);
    let mut log_ratio = 0.0;
    let mut stored = 0usize;
    for t in 0..dims[0] {
        let (chunk, report) = if path.ends_with(".f64") {
            let v = values::<8, f64>(&bytes, t, step_len, f64::from_le_bytes)?;
            session.compress(Samples::F64(&v), step_shape)?
        } else {
            let v = values::<4, f32>(&bytes, t, step_len, f32::from_le_bytes)?;
            session.compress(Samples::F32(&v), step_shape)?
        };
        stored += chunk.len();
        log_ratio += report.ratio.ln();
    }
    let stats = session.stats();
    Ok(format!(
        "steps {} compressions/step {:.2} misses {} CR {:.3} geomean CR {:.3}",
        stats.steps,
        stats.compressions as f64 / stats.steps as f64,
        stats.misses,
        (dims[0] * step_len * if path.ends_with(".f64") { 8 } else { 4 }) as f64 / stored as f64,
        (log_ratio / dims[0] as f64).exp()
    ))
}

/// The `step`-th run of `len` values of width `W` bytes.
fn values<const W: usize, T>(
    bytes: &[u8],
    step: usize,
    len: usize,
    from: fn([u8; W]) -> T,
) -> Result<Vec<T>, String> {
    bytes
        .get(step * len * W..(step + 1) * len * W)
        .ok_or_else(|| format!("file too short for step {step}"))
        .map(|b| {
            b.chunks_exact(W)
                .map(|c| from(c.try_into().expect("chunks_exact")))
                .collect()
        })
}
