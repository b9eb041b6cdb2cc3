//! Everything that builds a surrogate model, as opposed to running one:
//!
//! - [`collect`]: cut a corpus into chunks, compress each with every codec over a grid of
//!   bounds, and write the measured quality and ratio next to the chunk's features;
//! - [`table`]: the CSV training table both sides agree on;
//! - [`moe`]: the mixture-of-experts model and its seeded trainer (candle);
//! - [`validate`]: leave-one-dataset-out validation and its Markdown table;
//! - [`calibrate`]: the filter's PSNR margins, calibrated on the held-out predictions;
//! - [`onnx`]: export of a trained model, standardisation included, to ONNX;
//! - [`plot`]: the predicted-vs-actual PNG.
//!
//! None of this runs inside the HDF5 filter; the filter only loads the exported model.

pub mod calibrate;
pub mod collect;
pub mod moe;
pub mod onnx;
pub mod plot;
pub mod table;
pub mod validate;

/// The relative bounds (× chunk value range) the collector measures by default: 16
/// log-spaced points from 1e-7 to 1e-1.
pub fn default_bound_grid() -> Vec<f64> {
    log_grid(-7.0, -1.0, 16)
}

/// `points` log-spaced values from 10^lo to 10^hi inclusive.
pub fn log_grid(lo: f64, hi: f64, points: usize) -> Vec<f64> {
    let points = points.max(2);
    (0..points)
        .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (points - 1) as f64))
        .collect()
}
