//! Fields the project generates itself, deterministic from a seed: for the demo, for tests
//! that must pass without ../shared/data, and (later) for training the surrogate on more
//! variety than the real corpus holds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A family of generated fields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Gaussian-random-field-like: random plane waves whose amplitude falls as
    /// |k|^(−slope/2), i.e. a power spectrum ∝ |k|^−slope. Larger slope = smoother.
    Spectral {
        /// Power-spectrum slope (2 rough … 5 very smooth).
        slope: f64,
    },
    /// Independent uniform noise in [−1, 1]: the incompressible extreme.
    Noise,
    /// Mostly exact zeros with a few smooth Gaussian blobs: sparse fields.
    Sparse {
        /// Fraction of the volume the blobs roughly cover.
        fill: f64,
    },
    /// Turbulence-like intermittent field: the exponential of a Kolmogorov-spectrum
    /// (slope 11/3) field, so a few sharp peaks ride on a smooth background.
    Turbulence {
        /// Intermittency: how strongly the exponential sharpens the peaks (0.5 … 3).
        intermittency: f64,
    },
    /// Gray-Scott reaction-diffusion on the two fastest axes; slower axes are snapshots
    /// in time, like a simulation writing one slice per step. Spots and stripes with
    /// sharp fronts.
    ReactionDiffusion {
        /// Feed rate (0.02 … 0.06) selects spots, stripes or mazes.
        feed: f64,
    },
    /// A smooth spectral field plus white noise, as instruments record: smooth at coarse
    /// bounds, incompressible below the noise level.
    NoisySmooth {
        /// Power-spectrum slope of the smooth part.
        slope: f64,
        /// Noise standard deviation relative to the field's range.
        noise: f64,
    },
    /// High dynamic range: 10^(decades · spectral field), spanning many orders of
    /// magnitude, like densities or emission maps.
    HighDynamicRange {
        /// Orders of magnitude spanned.
        decades: f64,
    },
    /// A spectral field rounded to a few levels, like integer-valued sources or
    /// categorical masks stored as floats.
    Quantized {
        /// Number of distinct levels across the range.
        levels: f64,
    },
}

impl Kind {
    /// Short name for tables.
    pub fn label(&self) -> String {
        match self {
            Kind::Spectral { slope } => format!("spectral-{slope}"),
            Kind::Noise => "noise".into(),
            Kind::Sparse { fill } => format!("sparse-{fill}"),
            Kind::Turbulence { intermittency } => format!("turbulence-{intermittency}"),
            Kind::ReactionDiffusion { feed } => format!("reaction-diffusion-{feed}"),
            Kind::NoisySmooth { slope, noise } => format!("noisy-smooth-{slope}-{noise}"),
            Kind::HighDynamicRange { decades } => format!("hdr-{decades}"),
            Kind::Quantized { levels } => format!("quantized-{levels}"),
        }
    }

    /// The family name without parameters (the "dataset" of generated rows).
    pub fn family(&self) -> &'static str {
        match self {
            Kind::Spectral { .. } => "spectral",
            Kind::Noise => "noise",
            Kind::Sparse { .. } => "sparse",
            Kind::Turbulence { .. } => "turbulence",
            Kind::ReactionDiffusion { .. } => "reaction-diffusion",
            Kind::NoisySmooth { .. } => "noisy-smooth",
            Kind::HighDynamicRange { .. } => "hdr",
            Kind::Quantized { .. } => "quantized",
        }
    }
}

/// Number of plane waves summed for a spectral field.
const WAVES: usize = 48;

/// A grid coordinate of uneven spacing: the sum of one rough profile per axis (steps
/// drawn at random from `seed`), as a stretched grid's coordinates nearly are. SZ3's
/// first-order Lorenzo predicts such a sum exactly; interpolation across the axes does not
/// (plot3d's grids, docs/bench.md "SZ3's two pipelines").
#[cfg(test)]
pub(crate) fn stretched_grid(shape: &[usize; 3], seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut profile = |n: usize| {
        let mut at = 0.0f64;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                at += 0.5 + (state >> 11) as f64 / (1u64 << 53) as f64;
                at
            })
            .collect::<Vec<f64>>()
    };
    let (z, y, x) = (profile(shape[0]), profile(shape[1]), profile(shape[2]));
    let mut out = Vec::with_capacity(shape.iter().product());
    for a in &z {
        for b in &y {
            out.extend(x.iter().map(|c| (a * 0.1 + b * 0.3 + c) as f32));
        }
    }
    out
}

/// A sky whose mean alone meets a low PSNR target: noise of amplitude 0.01 from `seed`,
/// with a point source of 100 at each of `points` (the tests of [`crate::near_mean`]'s path).
#[cfg(test)]
pub(crate) fn faint_sky(shape: &[usize], seed: u64, points: &[usize]) -> Vec<f64> {
    let mut v: Vec<f64> = generate(Kind::Noise, shape, seed)
        .iter()
        .map(|x| 0.01 * x)
        .collect();
    points.iter().for_each(|&i| v[i] = 100.0);
    v
}

/// Generates a field of `kind` with C-order `shape` from `seed`.
pub fn generate(kind: Kind, shape: &[usize], seed: u64) -> Vec<f64> {
    match kind {
        Kind::Turbulence { intermittency } => {
            let base = normalised(generate(Kind::Spectral { slope: 11.0 / 3.0 }, shape, seed));
            base.iter()
                .map(|v| (intermittency * 3.0 * v).exp())
                .collect()
        }
        Kind::NoisySmooth { slope, noise } => {
            let base = normalised(generate(Kind::Spectral { slope }, shape, seed));
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9);
            // Sum of two uniforms: cheap, bell-shaped noise with the requested std.
            let scale = noise * 6f64.sqrt();
            base.iter()
                .map(|v| v + scale * (rng.random_range(-0.5..0.5) + rng.random_range(-0.5..0.5)))
                .collect()
        }
        Kind::HighDynamicRange { decades } => {
            let base = normalised(generate(Kind::Spectral { slope: 3.0 }, shape, seed));
            base.iter().map(|v| 10f64.powf(decades * v)).collect()
        }
        Kind::Quantized { levels } => {
            let base = normalised(generate(Kind::Spectral { slope: 3.0 }, shape, seed));
            base.iter().map(|v| (v * levels).round()).collect()
        }
        Kind::ReactionDiffusion { feed } => gray_scott(shape, feed, seed),
        _ => generate_basic(kind, shape, seed),
    }
}

/// `values` (C order, `shape`) with the `cover` share of them (0–1) set to `fill` where a
/// smooth field from `seed` lies lowest: land in an ocean model, or the ground under an
/// atmosphere, filled with one value. The mask's edges are smooth curves that cut the
/// field anywhere, as coastlines do, so a chunk holds any mix of plateau and field.
pub fn masked(mut values: Vec<f64>, shape: &[usize], seed: u64, cover: f64, fill: f64) -> Vec<f64> {
    let land = generate(Kind::Spectral { slope: 4.0 }, shape, seed);
    let mut sorted = land.clone();
    sorted.sort_by(f64::total_cmp);
    let Some(&shore) = sorted.get((cover.clamp(0.0, 1.0) * sorted.len() as f64) as usize) else {
        return vec![fill; values.len()];
    };
    values
        .iter_mut()
        .zip(&land)
        .filter(|(_, &l)| l < shore)
        .for_each(|(v, _)| *v = fill);
    values
}

/// Rescales to [0, 1] (a constant field becomes all zeros).
fn normalised(v: Vec<f64>) -> Vec<f64> {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    let r = hi - lo;
    if r.is_nan() || r <= 0.0 {
        return vec![0.0; v.len()];
    }
    v.into_iter().map(|x| (x - lo) / r).collect()
}

/// Gray-Scott model (Pearson 1993) on a periodic grid of the two fastest axes (a 1-D
/// shape runs on a 1-row grid). Returns the `v` species; slower axes are snapshots taken
/// every few steps after a spin-up.
fn gray_scott(shape: &[usize], feed: f64, seed: u64) -> Vec<f64> {
    let rank = shape.len();
    let nx = shape.last().copied().unwrap_or(1).max(1);
    let ny = if rank >= 2 { shape[rank - 2].max(1) } else { 1 };
    let frames: usize = shape[..rank.saturating_sub(2)]
        .iter()
        .product::<usize>()
        .max(1);
    let frames = if rank >= 2 { frames } else { 1 };
    let (du, dv, kill) = (0.16, 0.08, 0.062);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut u = vec![1.0f64; nx * ny];
    let mut v = vec![0.0f64; nx * ny];
    for _ in 0..(nx * ny / 200).max(3) {
        let (cx, cy) = (rng.random_range(0..nx), rng.random_range(0..ny));
        for dy in 0..4.min(ny) {
            for dx in 0..4.min(nx) {
                let i = ((cy + dy) % ny) * nx + (cx + dx) % nx;
                u[i] = 0.5;
                v[i] = 0.25 + rng.random_range(0.0..0.05);
            }
        }
    }
    let step = |u: &mut Vec<f64>, v: &mut Vec<f64>| {
        let (u0, v0) = (u.clone(), v.clone());
        for y in 0..ny {
            for x in 0..nx {
                let i = y * nx + x;
                let lap = |f: &[f64]| {
                    let (xl, xr) = ((x + nx - 1) % nx, (x + 1) % nx);
                    let (yu, yd) = ((y + ny - 1) % ny, (y + 1) % ny);
                    let mut s = f[y * nx + xl] + f[y * nx + xr] - 2.0 * f[i];
                    if ny > 1 {
                        s += f[yu * nx + x] + f[yd * nx + x] - 2.0 * f[i];
                    }
                    s
                };
                let uvv = u0[i] * v0[i] * v0[i];
                u[i] = u0[i] + du * lap(&u0) - uvv + feed * (1.0 - u0[i]);
                v[i] = v0[i] + dv * lap(&v0) + uvv - (feed + kill) * v0[i];
            }
        }
    };
    for _ in 0..800 {
        step(&mut u, &mut v);
    }
    let mut out = Vec::with_capacity(frames * nx * ny);
    for _ in 0..frames {
        out.extend_from_slice(&v);
        for _ in 0..8 {
            step(&mut u, &mut v);
        }
    }
    out
}

fn generate_basic(kind: Kind, shape: &[usize], seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let coords = |index: usize| -> Vec<f64> {
        let mut rest = index;
        let mut c = vec![0.0; shape.len()];
        for (axis, &d) in shape.iter().enumerate().rev() {
            c[axis] = (rest % d) as f64 / d.max(1) as f64;
            rest /= d.max(1);
        }
        c
    };
    match kind {
        Kind::Noise => (0..n).map(|_| rng.random_range(-1.0..1.0)).collect(),
        Kind::Spectral { slope } => {
            let waves: Vec<(Vec<f64>, f64, f64)> = (0..WAVES)
                .map(|_| {
                    let k: Vec<f64> = shape
                        .iter()
                        .map(|&d| rng.random_range(-(d as f64) / 4.0..d as f64 / 4.0).round())
                        .collect();
                    let norm = k.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0);
                    let amplitude = norm.powf(-slope / 2.0);
                    let phase = rng.random_range(0.0..std::f64::consts::TAU);
                    (k, amplitude, phase)
                })
                .collect();
            (0..n)
                .map(|i| {
                    let c = coords(i);
                    waves
                        .iter()
                        .map(|(k, a, p)| {
                            let dot: f64 = k.iter().zip(&c).map(|(k, x)| k * x).sum();
                            a * (std::f64::consts::TAU * dot + p).sin()
                        })
                        .sum()
                })
                .collect()
        }
        Kind::Sparse { fill } => {
            let blobs: Vec<(Vec<f64>, f64, f64)> = (0..8)
                .map(|_| {
                    let centre: Vec<f64> =
                        shape.iter().map(|_| rng.random_range(0.0..1.0)).collect();
                    let width = fill.max(1e-3).powf(1.0 / shape.len().max(1) as f64) * 0.3;
                    (centre, width, rng.random_range(0.5..2.0))
                })
                .collect();
            (0..n)
                .map(|i| {
                    let c = coords(i);
                    let v: f64 = blobs
                        .iter()
                        .map(|(centre, w, a)| {
                            let r2: f64 = centre.iter().zip(&c).map(|(m, x)| (m - x).powi(2)).sum();
                            a * (-r2 / (w * w)).exp()
                        })
                        .sum();
                    if v < 1e-2 {
                        0.0
                    } else {
                        v
                    }
                })
                .collect()
        }
        _ => unreachable!("derived kinds are handled by generate"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_seed_dependent() {
        let kind = Kind::Spectral { slope: 3.0 };
        assert_eq!(generate(kind, &[8, 9], 1), generate(kind, &[8, 9], 1));
        assert_ne!(generate(kind, &[8, 9], 1), generate(kind, &[8, 9], 2));
    }

    #[test]
    fn derived_kinds_have_their_character() {
        let shape = [8, 32, 32];
        let hdr = generate(Kind::HighDynamicRange { decades: 4.0 }, &shape, 1);
        let (lo, hi) = hdr
            .iter()
            .fold((f64::INFINITY, 0f64), |(l, h), &x| (l.min(x), h.max(x)));
        assert!(hi / lo > 1e3, "{lo} {hi}");
        let q = generate(Kind::Quantized { levels: 5.0 }, &shape, 1);
        assert!(q
            .iter()
            .all(|v| v.fract() == 0.0 && (0.0..=5.0).contains(v)));
        let rd = generate(Kind::ReactionDiffusion { feed: 0.035 }, &shape, 1);
        assert_eq!(rd.len(), 8 * 32 * 32);
        assert!(rd.iter().all(|v| v.is_finite()));
        let spread =
            rd.iter().cloned().fold(0f64, f64::max) - rd.iter().cloned().fold(1f64, f64::min);
        assert!(spread > 0.05, "{spread}");
        let t = generate(Kind::Turbulence { intermittency: 1.0 }, &shape, 1);
        assert!(t.iter().all(|v| *v > 0.0));
        let n = generate(
            Kind::NoisySmooth {
                slope: 4.0,
                noise: 0.01,
            },
            &shape,
            1,
        );
        assert_eq!(n.len(), t.len());
    }

    #[test]
    fn masks_cover_their_share_with_one_value() {
        let shape = [16, 32, 32];
        let field = generate(Kind::Spectral { slope: 3.0 }, &shape, 4);
        let v = masked(field.clone(), &shape, 9, 0.4, 7.5);
        let filled = v.iter().filter(|x| **x == 7.5).count() as f64 / v.len() as f64;
        assert!((filled - 0.4).abs() < 0.01, "{filled}");
        let kept = v.iter().zip(&field).filter(|(a, b)| a == b).count() as f64;
        assert!((kept / v.len() as f64 - 0.6).abs() < 0.01, "{kept}");
        assert_eq!(
            masked(field.clone(), &shape, 9, 1.0, 2.0),
            vec![2.0; v.len()]
        );
        assert_eq!(masked(field.clone(), &shape, 9, 0.0, 2.0), field);
    }

    #[test]
    fn sparse_fields_hold_exact_zeros() {
        let v = generate(Kind::Sparse { fill: 0.05 }, &[32, 32], 7);
        let zeros = v.iter().filter(|x| **x == 0.0).count();
        assert!(zeros > v.len() / 4 && zeros < v.len(), "{zeros}");
    }
}
