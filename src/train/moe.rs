//! The mixture-of-experts surrogate and its trainer (candle, CPU, seeded).
//!
//! **Inputs** (one row per candidate, [`n_inputs`] columns): the chunk's first
//! [`MODEL_FEATURES`] features in [`FEATURE_NAMES`] order, a one-hot of the compressor in [`COMPRESSORS`] order, the
//! bound's headroom over the dtype's precision ([`precision_headroom`]), the features'
//! quantisation-gain estimate at the bound ([`crate::features::quant_gain_at`]), and log10
//! of the relative bound (always the last column).
//!
//! The headroom input is why one dtype-independent feature vector still serves f32 and
//! f64: below about 6e-8 × max|x| an f32 chunk is stored almost exactly, which an f64
//! chunk is not, and the first model (without it) missed SZ3's PSNR by 26 dB there.
//!
//! **Outputs** ([`OUTPUT_NAMES`]): PSNR in dB (value-range convention), SSIM, and log10 of
//! the compression ratio *for 32-bit values* (`32 / bits-per-value`; multiply the ratio by
//! `elem_size / 4` for other dtypes), so one model serves f32 and f64.
//!
//! **Structure.** Inputs are standardised with statistics stored in the model. A gating
//! net (features → hidden → K, softmax) weighs K experts; each expert is an MLP (all
//! inputs → H → H → 3). The experts predict standardised *training targets*:
//! `PSNR + 20·log10(rel_bound)` (the PSNR's offset from the point-wise-bound line, which
//! varies far less across bounds than PSNR itself), SSIM, and log10 CR32. The forward pass
//! then undoes the target standardisation and the offset, so the model's outputs are the
//! quantities the filter wants. [`crate::train::onnx`] writes exactly this graph.
//!
//! Weights are initialised from a ChaCha8 stream and minibatches are drawn from another,
//! so one seed gives one model.
//!
//! **Ensemble.** [`train`] trains [`MoeConfig::members`] such models on the same rows with
//! consecutive seeds and joins them ([`ensemble`]) into one wider mixture whose output is
//! their mean. Models of different seeds err differently on data unlike their training
//! rows, so the mean errs less there: held out, the mean of three seeds' predictions let
//! predict mode keep more of the best ratio at the same hit rate than any one seed
//! (docs/surrogate.md, "Ensemble").

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::features::{FEATURE_NAMES, MODEL_FEATURES};
use crate::train::table::Row;

/// Compressor order of the one-hot inputs.
pub const COMPRESSORS: [&str; 3] = ["sz3", "zfp", "sperr"];

/// Output columns.
pub const OUTPUT_NAMES: [&str; 3] = ["psnr_db", "ssim", "log10_cr32"];

/// Finite PSNR values above this are clamped for training.
pub const PSNR_CAP: f64 = 200.0;

/// PSNR range where the PSNR target matters; rows outside it get a small PSNR weight.
pub const PSNR_RANGE: (f64, f64) = (20.0, 140.0);

/// Number of model inputs: model features, compressor one-hot, and the
/// [`CANDIDATE_INPUTS`].
pub fn n_inputs() -> usize {
    MODEL_FEATURES + COMPRESSORS.len() + CANDIDATE_INPUTS.len()
}

/// Names of the inputs after the features and the one-hot.
pub const CANDIDATE_INPUTS: [&str; 3] = [
    "log10_bound_over_precision",
    "quant_gain_db_at_bound",
    "log10_rel_bound",
];

/// log10 of the absolute bound over the dtype's rounding step near the chunk's largest
/// magnitude (unit roundoff 2^-24 for 4-byte, 2^-53 for 8-byte values), clamped to
/// [−3, 12]: near or below 0 the codec sees values it cannot perturb.
pub fn precision_headroom(features: &[f32], rel_bound: f64, elem_size: usize) -> f64 {
    let eps: f64 = if elem_size <= 4 {
        2f64.powi(-24)
    } else {
        2f64.powi(-53)
    };
    let absmax_over_range = FEATURE_NAMES
        .iter()
        .position(|n| *n == "log10_absmax_over_range")
        .and_then(|i| features.get(i))
        .map_or(0.0, |&v| v as f64);
    (rel_bound.log10() - absmax_over_range - eps.log10()).clamp(-3.0, 12.0)
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// candle reported an error.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// No usable rows.
    #[error("no usable training rows")]
    NoRows,
    /// A weight array has the wrong length.
    #[error("weights: {0}")]
    Shape(String),
}

/// Sizes and optimiser settings. The default is one K = 4, H = 64 model; the committed
/// model is three members of H = 32 (`deepcq train`'s defaults), about the same inference
/// cost.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeConfig {
    /// Number of experts K.
    pub experts: usize,
    /// Hidden width of each expert.
    pub hidden: usize,
    /// Hidden width of the gating net.
    pub gate_hidden: usize,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Peak learning rate (cosine-decayed to 1/20 of it).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of initialisation and minibatch order (member `i` of an ensemble uses
    /// `seed + i`).
    pub seed: u64,
    /// Models trained and averaged ([`ensemble`]).
    pub members: usize,
}

impl Default for MoeConfig {
    fn default() -> Self {
        MoeConfig {
            experts: 4,
            hidden: 64,
            gate_hidden: 32,
            epochs: 60,
            batch: 512,
            lr: 3e-3,
            weight_decay: 1e-4,
            seed: 1,
            members: 1,
        }
    }
}

/// Rows ready for training: inputs, standardised-space targets and per-target weights.
#[derive(Clone, Debug, Default)]
pub struct TrainSet {
    /// Row-major inputs, [`n_inputs`] per row.
    pub x: Vec<f32>,
    /// Row-major raw targets (PSNR offset, SSIM, log10 CR32), 3 per row.
    pub y: Vec<f32>,
    /// Row-major loss weights, 3 per row.
    pub w: Vec<f32>,
    /// Index into the source rows of each sample.
    pub source: Vec<usize>,
}

impl TrainSet {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.source.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }
}

/// One model input row (`elem_size` in bytes: 4 for f32, 8 for f64).
pub fn input_row(
    features: &[f32],
    codec: &str,
    rel_bound: f64,
    elem_size: usize,
) -> Option<Vec<f32>> {
    let slot = COMPRESSORS.iter().position(|c| *c == codec)?;
    let mut x = Vec::with_capacity(n_inputs());
    x.extend_from_slice(features.get(..MODEL_FEATURES)?);
    for i in 0..COMPRESSORS.len() {
        x.push(if i == slot { 1.0 } else { 0.0 });
    }
    x.push(precision_headroom(features, rel_bound, elem_size) as f32);
    // The estimate models a prediction-based quantiser: SZ3's, not the transform coders'.
    let gain = if codec == "sz3" {
        crate::features::quant_gain_at(features, rel_bound)
    } else {
        0.0
    };
    x.push(gain as f32);
    x.push(rel_bound.log10() as f32);
    Some(x)
}

/// Turns table rows into training samples; skipped or malformed rows are left out.
pub fn prepare(rows: &[Row], keep: impl Fn(&Row) -> bool) -> TrainSet {
    let mut s = TrainSet::default();
    for (i, row) in rows.iter().enumerate() {
        let Some(m) = row.measured else { continue };
        if !row.is_ok()
            || !keep(row)
            || row.features.len() != FEATURE_NAMES.len()
            || row.rel_bound.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || m.bits_per_value.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || !m.ssim.is_finite()
            || m.psnr.is_nan()
        {
            continue;
        }
        let elem_size = if row.dtype == "f64" { 8 } else { 4 };
        let rel_bound = row.effective_rel_bound();
        let Some(x) = input_row(&row.features, &row.codec, rel_bound, elem_size) else {
            continue;
        };
        let psnr = m.psnr.min(PSNR_CAP);
        // An exact reconstruction (+∞ dB) says only that the target is met, not by how
        // much. Most are SZ3 storing a chunk losslessly below some bound, one grid step
        // from a lossy row on the point-wise-bound line. Trained as a large finite PSNR,
        // they pulled their lossy neighbours' predictions up by tens of dB, and the margins
        // with them; left out of the PSNR loss, a chunk's prediction follows its lossy
        // rows and errs low where the codec turns exact. Their SSIM and ratio still train.
        let psnr_weight = if m.psnr.is_infinite() {
            0.0
        } else if (PSNR_RANGE.0 - 10.0..=PSNR_RANGE.1 + 10.0).contains(&psnr) {
            1.0
        } else {
            0.1
        };
        s.x.extend(x);
        s.y.extend([
            (psnr + 20.0 * rel_bound.log10()) as f32,
            m.ssim as f32,
            (32.0 / m.bits_per_value).log10() as f32,
        ]);
        s.w.extend([psnr_weight, 1.0, 1.0]);
        s.source.push(i);
    }
    s
}

/// A trained model as plain arrays: what export and inference need, no candle types.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeWeights {
    /// Number of experts K, all members' together.
    pub experts: usize,
    /// Members joined by [`ensemble`]: the experts fall into this many consecutive groups,
    /// each with its own softmax over its group, and the output is the mean of the groups'
    /// mixtures. 1 for a single model.
    pub members: usize,
    /// Expert hidden width H.
    pub hidden: usize,
    /// Gate hidden width G.
    pub gate_hidden: usize,
    /// Input means, [`n_inputs`].
    pub in_mean: Vec<f32>,
    /// Input standard deviations, [`n_inputs`].
    pub in_std: Vec<f32>,
    /// Target means (PSNR offset, SSIM, log10 CR32).
    pub out_mean: [f32; 3],
    /// Target standard deviations.
    pub out_std: [f32; 3],
    /// Gate layer 1, [F, G] row-major, and bias `[G]`.
    pub gate_w1: Vec<f32>,
    /// Gate bias 1.
    pub gate_b1: Vec<f32>,
    /// Gate layer 2, [G, K], and bias `[K]`.
    pub gate_w2: Vec<f32>,
    /// Gate bias 2.
    pub gate_b2: Vec<f32>,
    /// Experts' first layer, all experts side by side: [n_in, K·H], bias [K·H].
    pub w1: Vec<f32>,
    /// Bias of the first layer.
    pub b1: Vec<f32>,
    /// Second layer per expert: [K, H, H], bias [K, 1, H].
    pub w2: Vec<f32>,
    /// Bias of the second layer.
    pub b2: Vec<f32>,
    /// Output layer per expert: [K, H, 3], bias [K, 1, 3].
    pub w3: Vec<f32>,
    /// Bias of the output layer.
    pub b3: Vec<f32>,
}

/// The model as candle variables.
struct Moe {
    k: usize,
    h: usize,
    members: usize,
    in_mean: Tensor,
    in_std: Tensor,
    out_mean: Tensor,
    out_std: Tensor,
    vars: Vec<Var>,
}

const N_OUT: usize = 3;

impl Moe {
    fn new(
        config: &MoeConfig,
        in_mean: Vec<f32>,
        in_std: Vec<f32>,
        out: ([f32; 3], [f32; 3]),
    ) -> Result<Moe, TrainError> {
        let dev = Device::Cpu;
        let (n_in, f) = (n_inputs(), MODEL_FEATURES);
        let (k, h, g) = (
            config.experts.max(1),
            config.hidden.max(1),
            config.gate_hidden.max(1),
        );
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        // Uniform Kaiming-style initialisation, drawn in a fixed order.
        let mut init = |fan_in: usize, dims: &[usize]| -> Result<Var, TrainError> {
            let n: usize = dims.iter().product();
            let bound = (3.0 / fan_in as f64).sqrt();
            let v: Vec<f32> = (0..n)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            Ok(Var::from_tensor(&Tensor::from_vec(v, dims, &dev)?)?)
        };
        let vars = vec![
            init(f, &[f, g])?,
            init(1_000_000, &[g])?,
            init(g, &[g, k])?,
            init(1_000_000, &[k])?,
            init(n_in, &[n_in, k * h])?,
            init(1_000_000, &[k * h])?,
            init(h, &[k, h, h])?,
            init(1_000_000, &[k, 1, h])?,
            init(h, &[k, h, N_OUT])?,
            init(1_000_000, &[k, 1, N_OUT])?,
        ];
        Ok(Moe {
            k,
            h,
            members: 1,
            in_mean: Tensor::from_vec(in_mean, n_in, &dev)?,
            in_std: Tensor::from_vec(in_std, n_in, &dev)?,
            out_mean: Tensor::from_vec(out.0.to_vec(), N_OUT, &dev)?,
            out_std: Tensor::from_vec(out.1.to_vec(), N_OUT, &dev)?,
            vars,
        })
    }

    fn from_weights(w: &MoeWeights) -> Result<Moe, TrainError> {
        let dev = Device::Cpu;
        let (n_in, f, k, h, g) = (
            n_inputs(),
            MODEL_FEATURES,
            w.experts,
            w.hidden,
            w.gate_hidden,
        );
        let t = |v: &Vec<f32>, dims: &[usize]| -> Result<Var, TrainError> {
            if v.len() != dims.iter().product::<usize>() {
                return Err(TrainError::Shape(format!(
                    "{} values for {dims:?}",
                    v.len()
                )));
            }
            Ok(Var::from_tensor(&Tensor::from_vec(v.clone(), dims, &dev)?)?)
        };
        if w.members == 0 || k % w.members != 0 {
            return Err(TrainError::Shape(format!(
                "{k} experts do not split into {} members",
                w.members
            )));
        }
        if w.in_mean.len() != n_in || w.in_std.len() != n_in {
            return Err(TrainError::Shape(format!(
                "standardisation for {} inputs, model needs {n_in}",
                w.in_mean.len()
            )));
        }
        Ok(Moe {
            k,
            h,
            members: w.members,
            in_mean: Tensor::from_vec(w.in_mean.clone(), n_in, &dev)?,
            in_std: Tensor::from_vec(w.in_std.clone(), n_in, &dev)?,
            out_mean: Tensor::from_vec(w.out_mean.to_vec(), N_OUT, &dev)?,
            out_std: Tensor::from_vec(w.out_std.to_vec(), N_OUT, &dev)?,
            vars: vec![
                t(&w.gate_w1, &[f, g])?,
                t(&w.gate_b1, &[g])?,
                t(&w.gate_w2, &[g, k])?,
                t(&w.gate_b2, &[k])?,
                t(&w.w1, &[n_in, k * h])?,
                t(&w.b1, &[k * h])?,
                t(&w.w2, &[k, h, h])?,
                t(&w.b2, &[k, 1, h])?,
                t(&w.w3, &[k, h, N_OUT])?,
                t(&w.b3, &[k, 1, N_OUT])?,
            ],
        })
    }

    fn weights(&self) -> Result<MoeWeights, TrainError> {
        let v = |i: usize| -> Result<Vec<f32>, TrainError> {
            Ok(self.vars[i].as_tensor().flatten_all()?.to_vec1::<f32>()?)
        };
        let arr3 = |t: &Tensor| -> Result<[f32; 3], TrainError> {
            let v = t.to_vec1::<f32>()?;
            Ok([v[0], v[1], v[2]])
        };
        Ok(MoeWeights {
            experts: self.k,
            members: self.members,
            hidden: self.h,
            gate_hidden: self.vars[1].as_tensor().dim(0)?,
            in_mean: self.in_mean.to_vec1()?,
            in_std: self.in_std.to_vec1()?,
            out_mean: arr3(&self.out_mean)?,
            out_std: arr3(&self.out_std)?,
            gate_w1: v(0)?,
            gate_b1: v(1)?,
            gate_w2: v(2)?,
            gate_b2: v(3)?,
            w1: v(4)?,
            b1: v(5)?,
            w2: v(6)?,
            b2: v(7)?,
            w3: v(8)?,
            b3: v(9)?,
        })
    }

    /// Standardised-target predictions [N, 3] for raw inputs [N, n_in].
    fn forward_std(&self, x: &Tensor) -> Result<Tensor, TrainError> {
        let f = MODEL_FEATURES;
        let n = x.dim(0)?;
        let z = x
            .broadcast_sub(&self.in_mean)?
            .broadcast_div(&self.in_std)?;
        let v = |i: usize| self.vars[i].as_tensor();
        let zf = z.narrow(1, 0, f)?;
        let gh = zf.matmul(v(0))?.broadcast_add(v(1))?.silu()?;
        // One softmax per member's group of experts, each group weighing 1 / members.
        let logits = gh.matmul(v(2))?.broadcast_add(v(3))?;
        let m = self.members;
        let gate = (candle_nn::ops::softmax(&logits.reshape((n, m, self.k / m))?, D::Minus1)?
            .reshape((n, self.k))?
            / m as f64)?;
        let h1 = z.matmul(v(4))?.broadcast_add(v(5))?.silu()?;
        let h1 = h1
            .reshape((n, self.k, self.h))?
            .transpose(0, 1)?
            .contiguous()?;
        let h2 = h1.matmul(v(6))?.broadcast_add(v(7))?.silu()?;
        let o = h2.matmul(v(8))?.broadcast_add(v(9))?; // [K, N, 3]
        let g = gate.t()?.unsqueeze(2)?; // [K, N, 1]
        Ok(o.broadcast_mul(&g)?.sum(0)?)
    }

    /// Final outputs (PSNR dB, SSIM, log10 CR32) for raw inputs.
    fn forward(&self, x: &Tensor) -> Result<Tensor, TrainError> {
        let n_in = n_inputs();
        let y = self
            .forward_std(x)?
            .broadcast_mul(&self.out_std)?
            .broadcast_add(&self.out_mean)?;
        let log_bound = x.narrow(1, n_in - 1, 1)?; // [N, 1]
        let offset = Tensor::from_vec(vec![-20f32, 0.0, 0.0], (1, N_OUT), x.device())?;
        Ok(y.broadcast_add(&log_bound.broadcast_mul(&offset)?)?)
    }
}

/// Mean and standard deviation of each column over the entries whose `weights` (same
/// shape, if given) are positive, so that values left out of the loss do not set the scale
/// either; one-hot columns keep (0, 1) so that the exported graph maps them unchanged.
fn column_stats(
    x: &[f32],
    cols: usize,
    skip: std::ops::Range<usize>,
    weights: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let mut n = vec![0f64; cols];
    let mut mean = vec![0f64; cols];
    let mut sq = vec![0f64; cols];
    for (r, row) in x.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            if weights.is_some_and(|w| w[r * cols + c] <= 0.0) {
                continue;
            }
            n[c] += 1.0;
            mean[c] += v as f64;
            sq[c] += (v as f64) * (v as f64);
        }
    }
    let mut m = Vec::with_capacity(cols);
    let mut s = Vec::with_capacity(cols);
    for c in 0..cols {
        if skip.contains(&c) {
            m.push(0.0);
            s.push(1.0);
            continue;
        }
        let mu = mean[c] / n[c].max(1.0);
        let var = (sq[c] / n[c].max(1.0) - mu * mu).max(0.0);
        m.push(mu as f32);
        s.push(var.sqrt().max(1e-3) as f32);
    }
    (m, s)
}

/// Trains [`MoeConfig::members`] models on `data` (seeds `config.seed`, `config.seed + 1`,
/// …) and joins them ([`ensemble`]). `log` receives one line per few epochs.
pub fn train(
    data: &TrainSet,
    config: &MoeConfig,
    mut log: impl FnMut(&str),
) -> Result<MoeWeights, TrainError> {
    let members = (0..config.members.max(1))
        .map(|i| {
            let member = MoeConfig {
                seed: config.seed + i as u64,
                ..config.clone()
            };
            train_member(data, &member, |l| log(&format!("member {i}: {l}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ensemble(&members)
}

/// Joins models trained on the same rows into one whose output is the mean of theirs:
/// their experts side by side, their gates side by side (block-diagonal second layer, one
/// softmax per member). Standardisation comes from the rows, so members of one table share
/// it; members that do not, or differ in size, are refused.
pub fn ensemble(members: &[MoeWeights]) -> Result<MoeWeights, TrainError> {
    let first = members
        .first()
        .ok_or_else(|| TrainError::Shape("an ensemble needs a member".into()))?;
    let alike = |w: &MoeWeights| {
        w.members == 1
            && (w.experts, w.hidden, w.gate_hidden)
                == (first.experts, first.hidden, first.gate_hidden)
            && (&w.in_mean, &w.in_std, w.out_mean, w.out_std)
                == (&first.in_mean, &first.in_std, first.out_mean, first.out_std)
    };
    if !members.iter().all(alike) {
        return Err(TrainError::Shape(
            "ensemble members differ in size or standardisation".into(),
        ));
    }
    // Every weight array the length its sizes say, so the joins below cannot overrun.
    for w in members {
        Moe::from_weights(w)?;
    }
    let (m, k, g) = (members.len(), first.experts, first.gate_hidden);
    // Row-major [rows, cols] matrices side by side: row r of the result is every member's
    // row r in turn.
    let side_by_side = |get: fn(&MoeWeights) -> &Vec<f32>, cols: usize| -> Vec<f32> {
        let rows = get(first).len() / cols;
        (0..rows)
            .flat_map(|r| {
                members
                    .iter()
                    .flat_map(move |w| &get(w)[r * cols..(r + 1) * cols])
            })
            .copied()
            .collect()
    };
    let stacked = |get: fn(&MoeWeights) -> &Vec<f32>| -> Vec<f32> {
        members
            .iter()
            .flat_map(|w| get(w).iter().copied())
            .collect()
    };
    let mut gate_w2 = vec![0f32; m * g * m * k];
    for (j, w) in members.iter().enumerate() {
        for r in 0..g {
            let row = (j * g + r) * m * k + j * k;
            gate_w2[row..row + k].copy_from_slice(&w.gate_w2[r * k..(r + 1) * k]);
        }
    }
    Ok(MoeWeights {
        experts: m * k,
        members: m,
        hidden: first.hidden,
        gate_hidden: m * g,
        in_mean: first.in_mean.clone(),
        in_std: first.in_std.clone(),
        out_mean: first.out_mean,
        out_std: first.out_std,
        gate_w1: side_by_side(|w| &w.gate_w1, g),
        gate_b1: stacked(|w| &w.gate_b1),
        gate_w2,
        gate_b2: stacked(|w| &w.gate_b2),
        w1: side_by_side(|w| &w.w1, k * first.hidden),
        b1: stacked(|w| &w.b1),
        w2: stacked(|w| &w.w2),
        b2: stacked(|w| &w.b2),
        w3: stacked(|w| &w.w3),
        b3: stacked(|w| &w.b3),
    })
}

/// Trains one model on `data`.
fn train_member(
    data: &TrainSet,
    config: &MoeConfig,
    mut log: impl FnMut(&str),
) -> Result<MoeWeights, TrainError> {
    if data.is_empty() {
        return Err(TrainError::NoRows);
    }
    let dev = Device::Cpu;
    let n_in = n_inputs();
    let f = MODEL_FEATURES;
    let n = data.len();
    let (in_mean, in_std) = column_stats(&data.x, n_in, f..f + COMPRESSORS.len(), None);
    let (om, os) = column_stats(&data.y, N_OUT, 0..0, Some(&data.w));
    let out = ([om[0], om[1], om[2]], [os[0], os[1], os[2]]);
    let moe = Moe::new(config, in_mean, in_std, out)?;
    let x_all = Tensor::from_vec(data.x.clone(), (n, n_in), &dev)?;
    let ys: Vec<f32> = data
        .y
        .chunks_exact(N_OUT)
        .flat_map(|r| (0..N_OUT).map(move |c| (r[c] - out.0[c]) / out.1[c]))
        .collect();
    let y_all = Tensor::from_vec(ys, (n, N_OUT), &dev)?;
    let w_all = Tensor::from_vec(data.w.clone(), (n, N_OUT), &dev)?;
    let mut opt = AdamW::new(
        moe.vars.clone(),
        ParamsAdamW {
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..Default::default()
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0ba7_c4e5);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let batch = config.batch.clamp(1, n);
    let steps_per_epoch = n.div_ceil(batch);
    let total = (config.epochs.max(1) * steps_per_epoch) as f64;
    let mut step = 0usize;
    for epoch in 0..config.epochs.max(1) {
        order.shuffle(&mut rng);
        let mut epoch_loss = 0.0;
        for idx in order.chunks(batch) {
            let lr = config.lr
                * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total).cos()));
            opt.set_learning_rate(lr);
            let ids = Tensor::from_slice(idx, idx.len(), &dev)?;
            let xb = x_all.index_select(&ids, 0)?;
            let yb = y_all.index_select(&ids, 0)?;
            let wb = w_all.index_select(&ids, 0)?;
            let pred = moe.forward_std(&xb)?;
            // Huber-like robustness is not needed: targets are clean measurements.
            let loss = ((pred - yb)?.sqr()? * wb)?.mean_all()?;
            opt.backward_step(&loss)?;
            epoch_loss += loss.to_scalar::<f32>()? as f64;
            step += 1;
        }
        if epoch % 10 == 0 || epoch + 1 == config.epochs {
            log(&format!(
                "epoch {epoch}: loss {:.5}",
                epoch_loss / steps_per_epoch as f64
            ));
        }
    }
    moe.weights()
}

/// Runs the trained model (candle forward pass) on row-major inputs; returns
/// (PSNR dB, SSIM, log10 CR32) per row. This is the reference the ONNX export must match.
pub fn predict(weights: &MoeWeights, x: &[f32]) -> Result<Vec<[f32; 3]>, TrainError> {
    let n_in = n_inputs();
    if !x.len().is_multiple_of(n_in) {
        return Err(TrainError::Shape(format!(
            "{} inputs is not a multiple of {n_in}",
            x.len()
        )));
    }
    let moe = Moe::from_weights(weights)?;
    let mut out = Vec::with_capacity(x.len() / n_in);
    for chunk in x.chunks(n_in * 8192) {
        let t = Tensor::from_vec(chunk.to_vec(), (chunk.len() / n_in, n_in), &Device::Cpu)?;
        let y = moe.forward(&t)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        out.extend(y.into_iter().map(|r| [r[0], r[1], r[2]]));
    }
    Ok(out)
}

/// Number of trainable parameters.
pub fn parameter_count(w: &MoeWeights) -> usize {
    parameters(w).map(|v| v.len()).sum()
}

fn parameters(w: &MoeWeights) -> impl Iterator<Item = &Vec<f32>> {
    [
        &w.gate_w1, &w.gate_b1, &w.gate_w2, &w.gate_b2, &w.w1, &w.b1, &w.w2, &w.b2, &w.w3, &w.b3,
    ]
    .into_iter()
}

/// Whether every weight and standardisation constant is finite: a run that diverged is not
/// a model to export.
pub fn all_finite(w: &MoeWeights) -> bool {
    let constants = [&w.in_mean, &w.in_std].into_iter().flatten();
    let outputs = w.out_mean.iter().chain(&w.out_std);
    parameters(w)
        .flatten()
        .chain(constants)
        .chain(outputs)
        .all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic regression the model must learn: outputs are smooth functions of the
    /// first feature, the codec and the bound.
    fn toy(n: usize, seed: u64) -> TrainSet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = TrainSet::default();
        for i in 0..n {
            let mut feats = vec![0f32; FEATURE_NAMES.len()];
            feats[0] = rng.random_range(-1.0..1.0);
            let codec = COMPRESSORS[i % 3];
            let lb = rng.random_range(-7.0..-1.0f64);
            s.x.extend(input_row(&feats, codec, 10f64.powf(lb), 4).unwrap());
            let c = (i % 3) as f32;
            s.y.extend([5.0 + 2.0 * feats[0] + c, 0.9, -0.3 * lb as f32 + feats[0]]);
            s.w.extend([1.0, 1.0, 1.0]);
            s.source.push(i);
        }
        s
    }

    #[test]
    fn an_exact_reconstruction_trains_ssim_and_ratio_but_not_psnr() {
        let row = |psnr: f64, rel_bound: f64| Row {
            dataset: "d".into(),
            source: "a.f32".into(),
            chunk: 0,
            shape: vec![64, 64],
            dtype: "f32".into(),
            codec: "sz3".into(),
            rel_bound,
            abs_bound: rel_bound,
            status: "ok".into(),
            measured: Some(crate::train::table::Measured {
                psnr,
                ssim: 0.99,
                cr: 4.0,
                bits_per_value: 8.0,
                max_err_over_bound: 0.9,
                encode_ms: 1.0,
            }),
            features: vec![0.5; FEATURE_NAMES.len()],
        };
        let data = prepare(&[row(f64::INFINITY, 1e-6), row(66.0, 1e-3)], |_| true);
        assert_eq!(data.len(), 2);
        assert_eq!(data.w, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        // The PSNR column's scale comes from the lossy row alone (excess 66 − 60 dB).
        let (mean, _) = column_stats(&data.y, N_OUT, 0..0, Some(&data.w));
        assert!((mean[0] - 6.0).abs() < 1e-4, "{mean:?}");
        assert!((mean[2] - 4f32.log10()).abs() < 1e-4, "{mean:?}");
    }

    #[test]
    fn training_is_reproducible_and_learns() {
        let data = toy(600, 1);
        let config = MoeConfig {
            experts: 2,
            hidden: 16,
            gate_hidden: 8,
            epochs: 40,
            batch: 64,
            ..Default::default()
        };
        let a = train(&data, &config, |_| {}).unwrap();
        let b = train(&data, &config, |_| {}).unwrap();
        assert_eq!(a, b, "same seed, same model");
        let pred = predict(&a, &data.x).unwrap();
        let mut err = 0.0;
        for (i, p) in pred.iter().enumerate() {
            let lb = data.x[i * n_inputs() + n_inputs() - 1];
            let psnr = data.y[i * 3] - 20.0 * lb;
            err += (p[0] - psnr).abs() / pred.len() as f32;
        }
        assert!(err < 0.5, "mean |ΔPSNR| {err}");
        let c = train(&data, &MoeConfig { seed: 2, ..config }, |_| {}).unwrap();
        assert_ne!(a, c, "another seed, another model");
    }

    #[test]
    fn weights_round_trip_and_bad_inputs_fail() {
        let data = toy(50, 3);
        let config = MoeConfig {
            experts: 2,
            hidden: 4,
            gate_hidden: 4,
            epochs: 1,
            batch: 16,
            ..Default::default()
        };
        let w = train(&data, &config, |_| {}).unwrap();
        assert!(predict(&w, &data.x[..n_inputs() - 1]).is_err());
        let mut broken = w.clone();
        broken.w2.pop();
        assert!(predict(&broken, &data.x).is_err());
        assert!(train(&TrainSet::default(), &config, |_| {}).is_err());
        // A run that diverged is told apart from one that did not.
        assert!(all_finite(&w));
        let mut diverged = w.clone();
        diverged.b3[0] = f32::NAN;
        assert!(!all_finite(&diverged));
        let mut unscaled = w.clone();
        unscaled.out_std[2] = f32::INFINITY;
        assert!(!all_finite(&unscaled));
    }
}
