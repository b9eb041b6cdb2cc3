//! The predicted-vs-actual PNG of a validation run.
//!
//! Two square panels side by side: PSNR (dB, 0–160, grid every 20 dB) and log10 CR
//! (−0.5–4, grid every 0.5). x = measured, y = predicted, the diagonal is perfect
//! prediction. Colours: SZ3 blue, ZFP orange, SPERR green. The plot carries no text (the
//! bitmap backend is built without fonts, to keep system font libraries out of the
//! build); docs/surrogate.md states the axes.

use std::path::Path;

use plotters::prelude::*;

use crate::train::table::Row;
use crate::train::validate::Outcome;

/// Draws `outcomes` (rows indexed into `rows` for the codec) to a PNG at `path`.
pub fn pred_vs_actual(path: &Path, outcomes: &[Outcome], rows: &[Row]) -> Result<(), String> {
    let (width, height) = (1200u32, 600u32);
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    draw(&mut pixels, (width, height), outcomes, rows)?;
    // The bitmap backend draws into RGB memory; the png crate writes the file (plotters'
    // own file encoder would pull in the whole `image` crate).
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

fn draw(
    pixels: &mut [u8],
    size: (u32, u32),
    outcomes: &[Outcome],
    rows: &[Row],
) -> Result<(), String> {
    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, 2));
    let colour = |codec: &str| match codec {
        "sz3" => RGBColor(31, 119, 180),
        "zfp" => RGBColor(255, 127, 14),
        _ => RGBColor(44, 160, 44),
    };
    let specs: [(f64, f64, f64, usize); 2] = [(0.0, 160.0, 20.0, 0), (-0.5, 4.0, 0.5, 2)];
    for (panel, (lo, hi, step, col)) in panels.iter().zip(specs) {
        let mut chart = ChartBuilder::on(panel)
            .margin(20)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(|e| e.to_string())?;
        let grid = RGBColor(220, 220, 220);
        let mut t = lo;
        while t <= hi + 1e-9 {
            chart
                .draw_series(LineSeries::new([(t, lo), (t, hi)], grid))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new([(lo, t), (hi, t)], grid))
                .map_err(|e| e.to_string())?;
            t += step;
        }
        let value = |v: f64| if col == 2 { v.max(1e-9).log10() } else { v };
        chart
            .draw_series(outcomes.iter().filter_map(|o| {
                let (x, y) = (value(o.actual[col]), value(o.predicted[col]));
                (x.is_finite() && y.is_finite() && x >= lo && x <= hi).then(|| {
                    Circle::new(
                        (x, y.clamp(lo, hi)),
                        1,
                        colour(&rows[o.row].codec).mix(0.35).filled(),
                    )
                })
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        // Frame.
        chart
            .draw_series(LineSeries::new(
                [(lo, lo), (hi, lo), (hi, hi), (lo, hi), (lo, lo)],
                BLACK,
            ))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
