//! The second half of the main demo: quality targets met by the learned chooser, next to
//! SZ3's PSNR formula on the same chunks.

use anyhow::Result;
use h5z_deepcq::codec::codec_for;
use h5z_deepcq::metrics::{compression_ratio, error_stats_of};
use h5z_deepcq::samples::{Layout, Samples};
use h5z_deepcq::select::{compress_to_target, Analytic, Outcome, Proposer};
use h5z_deepcq::settings::Settings;
use h5z_deepcq::synth::{self, Kind};
use h5z_deepcq::{learned, wire::Mode};

/// Compresses generated chunks of different character to 40, 60 and 80 dB and prints what
/// was chosen, predicted and measured.
pub fn targets() -> Result<()> {
    let shape = [48, 48, 48];
    let fields = [
        ("smooth (spectral 4.5)", Kind::Spectral { slope: 4.5 }),
        ("rough (spectral 1.5)", Kind::Spectral { slope: 1.5 }),
        ("turbulence", Kind::Turbulence { intermittency: 1.5 }),
        (
            "noisy smooth",
            Kind::NoisySmooth {
                slope: 4.0,
                noise: 1e-3,
            },
        ),
    ];
    println!("\nQuality targets: the learned chooser (guarantee mode) vs SZ3's PSNR formula, per 48³ f32 chunk.");
    println!(
        "| field | target dB | codec | rel. bound | predicted dB | measured dB | CR | SZ3-formula CR | compressions |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let (mut ours, mut formula) = (Vec::new(), Vec::new());
    for (i, (name, kind)) in fields.into_iter().enumerate() {
        let v: Vec<f32> = synth::generate(kind, &shape, 100 + i as u64)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let data = Samples::F32(&v);
        let range = h5z_deepcq::select::value_range(data);
        for t in [40.0, 60.0, 80.0] {
            let settings = Settings::psnr(t)?;
            let chosen =
                compress_to_target(data, &shape, &settings, learned::proposer_for(&settings)?)?;
            let predict = Settings {
                mode: Mode::Predict,
                ..settings
            };
            let analytic = compress_to_target(data, &shape, &predict, &Analytic as &dyn Proposer)?;
            let measured = psnr_of(data, &shape, &chosen)?;
            anyhow::ensure!(measured >= t, "{name}: {measured} dB misses {t} dB");
            let cr = compression_ratio(data.byte_len(), chosen.payload.len());
            let cr_formula = compression_ratio(data.byte_len(), analytic.payload.len());
            ours.push(cr.ln());
            formula.push(cr_formula.ln());
            // A chunk SPERR stored cut to a size has no point-wise bound (as `deepcq
            // inspect` shows it).
            let bound = if chosen.bound == 0.0 {
                "rate".to_string()
            } else {
                format!("{:.2e}", chosen.bound / range)
            };
            println!(
                "| {name} | {t} | {} | {bound} | {} | {measured:.2} | {cr:.1} | \
                 {cr_formula:.1} | {} |",
                chosen.codec.name(),
                chosen
                    .predicted
                    .map_or_else(|| "-".into(), |p| format!("{p:.2}")),
                chosen.compressions
            );
        }
    }
    let gmean = |v: &[f64]| (v.iter().sum::<f64>() / v.len() as f64).exp();
    println!(
        "\nEvery chunk met its target. Geometric-mean CR: deepcq {:.2}, SZ3 formula {:.2}.",
        gmean(&ours),
        gmean(&formula)
    );
    Ok(())
}

fn psnr_of(data: Samples<'_>, shape: &[usize], out: &Outcome) -> Result<f64> {
    let back = codec_for(out.codec).decode(&out.payload, &Layout::of(&data, shape), out.bound)?;
    Ok(error_stats_of(data, back.view()).map_or(f64::INFINITY, |s| s.psnr))
}
