//! `deepcq cdvalues`: turns a target into the cd_values words, so nobody packs them by hand.

use anyhow::Result;
use clap::{Args, ValueEnum};
use h5z_deepcq::settings::{Settings, Target};
use h5z_deepcq::wire::{self, flags, CompressorChoice, Mode, TargetKind};

/// The target (exactly one) and options.
#[derive(Args)]
#[group(skip)]
pub struct CdArgs {
    /// PSNR ≥ this many dB on every chunk (value-range convention).
    #[arg(long, group = "target", allow_negative_numbers = true)]
    psnr: Option<f64>,
    /// SSIM ≥ this on every chunk.
    #[arg(long, group = "target", allow_negative_numbers = true)]
    ssim: Option<f64>,
    /// Compression ratio ≥ this on every chunk.
    #[arg(long, group = "target", allow_negative_numbers = true)]
    ratio: Option<f64>,
    /// Fixed absolute error bound.
    #[arg(long, group = "target", allow_negative_numbers = true)]
    abs: Option<f64>,
    /// Restrict the compressor.
    #[arg(long, value_enum, default_value = "auto")]
    compressor: Compressor,
    /// guarantee (measure and correct), predict (one compression, now and then the
    /// runner-up's too) or fast (measure, at most one more compression per compressor,
    /// then the safe bound).
    #[arg(long, value_enum, default_value = "guarantee")]
    mode: ModeArg,
    /// Use the analytic chooser when onnxruntime or the model cannot load.
    #[arg(long)]
    allow_analytic_fallback: bool,
    /// Values equal to this (e.g. 1e20, -9999, nan) are missing data: stored exactly and
    /// left out of the target, for data whose missing value is not the dataset's HDF5 fill
    /// value (which marks missing data by itself).
    #[arg(long, allow_hyphen_values = true)]
    missing: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compressor {
    Auto,
    Sz3,
    Zfp,
    Sperr,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Guarantee,
    Predict,
    Fast,
}

pub fn run(args: &CdArgs) -> Result<()> {
    let (kind, value) = match (args.psnr, args.ssim, args.ratio, args.abs) {
        (Some(v), ..) => (TargetKind::Psnr, v),
        (_, Some(v), ..) => (TargetKind::Ssim, v),
        (_, _, Some(v), _) => (TargetKind::Ratio, v),
        (.., Some(v)) => (TargetKind::AbsBound, v),
        _ => anyhow::bail!("name a target: --psnr, --ssim, --ratio or --abs"),
    };
    let settings = Settings {
        target: Target::from_value(kind, value)?,
        compressor: match args.compressor {
            Compressor::Auto => CompressorChoice::Auto,
            Compressor::Sz3 => CompressorChoice::Sz3,
            Compressor::Zfp => CompressorChoice::Zfp,
            Compressor::Sperr => CompressorChoice::Sperr,
        },
        mode: match args.mode {
            ModeArg::Guarantee => Mode::Guarantee,
            ModeArg::Predict => Mode::Predict,
            ModeArg::Fast => Mode::Fast,
        },
        flags: if args.allow_analytic_fallback {
            flags::ALLOW_ANALYTIC_FALLBACK
        } else {
            0
        },
        missing: None,
    };
    let settings = match args.missing {
        Some(value) => settings.with_missing(value),
        None => settings,
    };
    if let Some(advice) = predict_mode_advice(&settings) {
        eprintln!("note: {advice}");
    }
    if let Err(unfit) = settings.missing_as::<f32>() {
        eprintln!("note: {unfit}: these words fail H5Dcreate on f32 datasets (f64 only)");
    }
    let cd = settings.to_user_cd();
    // Read back as the filter reads them: a mantissa that looks like the stored form's
    // marker (114.5262337 dB) packs, but the filter refuses it.
    Settings::parse(&cd)?;
    let words: Vec<String> = cd.iter().map(|w| w.to_string()).collect();
    let id = wire::FILTER_ID;
    println!(
        "h5repack: h5repack -f UD={id},0,{},{} in.h5 out.h5",
        cd.len(),
        words.join(",")
    );
    println!(
        "C:        const unsigned int cd_values[{}] = {{{}}};  /* H5Pset_filter(dcpl, {id}, H5Z_FLAG_MANDATORY, {}, cd_values) */",
        cd.len(),
        words.join(", "),
        cd.len()
    );
    println!(
        "h5py:     compression={id}, compression_opts=({}{})",
        words.join(", "),
        if cd.len() == 1 { "," } else { "" }
    );
    Ok(())
}

/// What predict mode does differently for this target, said where the user picks it. A
/// ratio is met by SPERR's fixed-rate mode on 2-D and 3-D chunks when SPERR may be used;
/// otherwise (1-D chunks, SZ3 or ZFP named, values SPERR refuses) by the model's bound,
/// whose ratio predictions are far less reliable than its PSNR predictions
/// (docs/surrogate.md: held out, about 99% of cases, 85% on the worst dataset), so the
/// stored size is checked and a misread chunk searched: more than one compression there.
/// SSIM targets go through the PSNR they need (`ssim_psnr`), and were met on every chunk of
/// ../shared/data and of 7 datasets a model never saw (docs/surrogate.md).
fn predict_mode_advice(settings: &Settings) -> Option<&'static str> {
    if settings.mode != Mode::Predict {
        return None;
    }
    match settings.target.kind {
        TargetKind::Ratio => Some(
            "predict mode meets a ratio by SPERR's fixed-rate mode on 2-D and 3-D chunks; on \
             1-D chunks, with SZ3 or ZFP named, or with values SPERR refuses it compresses at \
             the model's bound and searches, as guarantee mode (the default) does, only when \
             the stored size is short of the ratio or more than 3x past it",
        ),
        TargetKind::Psnr | TargetKind::Ssim | TargetKind::AbsBound => None,
    }
}
