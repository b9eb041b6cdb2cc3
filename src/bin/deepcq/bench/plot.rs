//! The rate–distortion PNG: stored bits per value (x) against mean dataset PSNR (y), one
//! polyline per method through its targets.
//!
//! Like the crate's other plots, it carries no text: the bitmap backend is built without
//! fonts, to keep system font libraries out of the build. The report prints the colour of
//! each method ([`colour_name`]) and the axis ranges.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use super::methods::Method;

/// One method's points, one per target: (bits per value, PSNR dB).
pub struct Series {
    /// The method.
    pub method: Method,
    /// Points in target order.
    pub points: Vec<(f64, f64)>,
}

/// Colour of a method, as RGB and as the word the report prints.
fn colour(method: Method) -> (RGBColor, &'static str) {
    let i = Method::ALL.iter().position(|&m| m == method).unwrap_or(0);
    // One per method, in `Method::ALL`'s order (the length is checked at compile time).
    const COLOURS: [(RGBColor, &str); Method::ALL.len()] = [
        (RGBColor(127, 127, 127), "grey"),
        (RGBColor(31, 119, 180), "blue"),
        (RGBColor(140, 86, 75), "brown"),
        (RGBColor(23, 190, 207), "cyan"),
        (RGBColor(255, 127, 14), "orange"),
        (RGBColor(44, 160, 44), "green"),
        (RGBColor(0, 0, 0), "black"),
        (RGBColor(227, 119, 194), "pink"),
        (RGBColor(148, 103, 189), "purple"),
        (RGBColor(214, 39, 40), "red"),
    ];
    COLOURS[i]
}

/// The colour word of a method in the plot.
pub fn colour_name(method: Method) -> &'static str {
    colour(method).1
}

/// The axis ranges the plot uses: ((x lo, x hi), (y lo, y hi)), padded and rounded to the
/// grid (1 bit per value, 10 dB).
pub fn axes(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x_hi, mut y_lo, mut y_hi) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    if !y_lo.is_finite() {
        (y_lo, y_hi) = (0.0, 100.0);
    }
    (
        (0.0, (x_hi * 1.05).ceil()),
        (
            (y_lo / 10.0).floor() * 10.0 - 10.0,
            (y_hi / 10.0).ceil() * 10.0 + 10.0,
        ),
    )
}

/// Writes the plot to `path`.
pub fn write(path: &Path, series: &[Series]) -> Result<()> {
    let (width, height) = (900u32, 650u32);
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    draw(&mut pixels, (width, height), series).map_err(|e| anyhow!("drawing the plot: {e}"))?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(())
}

fn draw(pixels: &mut [u8], size: (u32, u32), series: &[Series]) -> Result<(), String> {
    let ((x_lo, x_hi), (y_lo, y_hi)) = axes(series);
    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(25)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(|e| e.to_string())?;
    let grid = RGBColor(225, 225, 225);
    let mut x = x_lo;
    while x <= x_hi + 1e-9 {
        chart
            .draw_series(LineSeries::new([(x, y_lo), (x, y_hi)], grid))
            .map_err(|e| e.to_string())?;
        x += 1.0;
    }
    let mut y = y_lo;
    while y <= y_hi + 1e-9 {
        chart
            .draw_series(LineSeries::new([(x_lo, y), (x_hi, y)], grid))
            .map_err(|e| e.to_string())?;
        y += 10.0;
    }
    for s in series {
        let (c, _) = colour(s.method);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(LineSeries::new(
            [
                (x_lo, y_lo),
                (x_hi, y_lo),
                (x_hi, y_hi),
                (x_lo, y_hi),
                (x_lo, y_lo),
            ],
            BLACK,
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_and_pads_axes_to_the_grid() {
        let series = vec![Series {
            method: Method::Guarantee,
            points: vec![(1.2, 41.0), (3.5, 61.0), (6.1, 80.5)],
        }];
        assert_eq!(axes(&series), ((0.0, 7.0), (30.0, 100.0)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rd.png");
        write(&path, &series).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn every_method_has_its_own_colour() {
        let names: std::collections::HashSet<_> =
            Method::ALL.iter().map(|&m| colour_name(m)).collect();
        assert_eq!(names.len(), Method::ALL.len());
    }
}
