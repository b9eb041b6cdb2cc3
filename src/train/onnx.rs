//! Writes a trained [`MoeWeights`] as an ONNX model that onnxruntime ≥ 1.17 runs.
//!
//! The graph (opset 17, IR version 8: onnxruntime 1.31 rejects IR 14, which Python's onnx
//! 1.23 writes by default) computes [`crate::train::moe`]'s forward pass, input
//! standardisation and output de-standardisation included, so the filter feeds raw inputs
//! and reads final quantities:
//!
//! - input `features`: float32 `[1, MODEL_FEATURES]`, the chunk's model features
//!   ([`crate::features::MODEL_FEATURES`]), once per chunk;
//! - input `candidates`: float32 `[batch, 6]`, one row per candidate: one-hot(sz3, zfp,
//!   sperr) ‖ precision headroom ([`crate::train::moe::precision_headroom`]) ‖
//!   quantisation gain at the bound ([`crate::features::quant_gain_at`]) ‖ log10(relative
//!   bound);
//! - output `y`: float32 `[batch, 3]` = PSNR dB (value-range convention), SSIM,
//!   log10 of the compression ratio for 32-bit values.
//!
//! The trainer's input row is the features followed by a candidate's columns; the graph
//! takes them apart because everything that depends on the features alone (their
//! standardisation, the gate, and the features' share of every expert's first layer,
//! about a quarter of a row's multiply-adds) is the same for all of a chunk's candidates.
//! Computed once per chunk instead of once per candidate, that cut inference over the
//! filter's 72 candidates by about a fifth (0.205 → 0.166 ms of thread CPU time;
//! docs/surrogate.md). This is the two-stage design in the small: what describes the
//! chunk is paid once, only the per-candidate part per candidate.
//!
//! Everything linear beside a matrix product is folded into its weights at export (the
//! inputs' standardisation into the first layers, the outputs' and the members' 1 / m
//! into the last), and the PSNR offset is one product with the candidates: 27 nodes, 18
//! once onnxruntime fuses them, where the graph that ran each step as its own node had 30
//! after fusion. Between two chunks' compressions, which leave onnxruntime's code and
//! buffers out of the caches, each node costs a few µs: a cold inference over 72
//! candidates took 297 µs instead of 320 (median of 6 runs of 100, each after an SZ3
//! compression of a 64³ chunk), with outputs within 2e-6 of the unfolded graph's.
//!
//! Metadata (`metadata_props`, keys in [`meta`]) carries everything a loader must check or
//! needs: feature schema version and names, compressor order, candidate bound grid, input
//! and output layout, and a summary of the training corpus and validation.

use onnx_protobuf::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::features::{FEATURE_NAMES, FEATURE_SCHEMA_VERSION, MODEL_FEATURES};
use crate::train::moe::{n_inputs, MoeWeights, COMPRESSORS, OUTPUT_NAMES};

/// ONNX IR version written (onnxruntime 1.31 accepts up to 13).
pub const IR_VERSION: i64 = 8;

/// Default-domain opset the graph uses.
pub const OPSET: i64 = 17;

/// Name of the per-chunk input tensor: the model features, one row.
pub const FEATURES_INPUT: &str = "features";

/// Name of the per-candidate input tensor: one row per candidate.
pub const CANDIDATES_INPUT: &str = "candidates";

/// Name of the output tensor.
pub const OUTPUT_NAME: &str = "y";

/// Metadata keys.
pub mod meta {
    /// [`crate::features::FEATURE_SCHEMA_VERSION`] the model was trained on.
    pub const SCHEMA_VERSION: &str = "deepcq.feature_schema_version";
    /// Comma-separated feature names, in input order.
    pub const FEATURE_NAMES: &str = "deepcq.feature_names";
    /// Comma-separated compressor names, in one-hot order.
    pub const COMPRESSORS: &str = "deepcq.compressors";
    /// Comma-separated relative bounds the filter should consider.
    pub const BOUND_GRID: &str = "deepcq.bound_grid";
    /// Human-readable input layout.
    pub const INPUTS: &str = "deepcq.inputs";
    /// Number of input columns (features + one-hot + 2).
    pub const N_INPUTS: &str = "deepcq.n_inputs";
    /// Comma-separated output column names.
    pub const OUTPUTS: &str = "deepcq.outputs";
    /// Human-readable output meaning.
    pub const OUTPUTS_DOC: &str = "deepcq.outputs_doc";
    /// Training corpus summary.
    pub const CORPUS: &str = "deepcq.corpus";
    /// Trainer settings.
    pub const TRAINING: &str = "deepcq.training";
    /// Validation summary.
    pub const VALIDATION: &str = "deepcq.validation";
    /// PSNR margins per mode and compressor, calibrated on held-out predictions
    /// ([`crate::train::calibrate::PsnrMargins::to_metadata`]); absent when not validated.
    pub const PSNR_MARGINS: &str = "deepcq.psnr_margins";
    /// Predict mode's SSIM and ratio margins, calibrated on held-out predictions
    /// ([`crate::train::calibrate::MetricMargins::to_metadata`]); absent when not validated.
    pub const METRIC_MARGINS: &str = "deepcq.metric_margins";
}

/// What goes into the metadata beside the fixed layout.
#[derive(Clone, Debug, Default)]
pub struct ExportInfo {
    /// Relative bounds the filter should consider.
    pub bound_grid: Vec<f64>,
    /// Training corpus summary.
    pub corpus: String,
    /// Trainer settings.
    pub training: String,
    /// Validation summary.
    pub validation: String,
    /// Calibrated PSNR margins (only with validation).
    pub psnr_margins: Option<crate::train::calibrate::PsnrMargins>,
    /// Calibrated SSIM and ratio margins (only with validation).
    pub metric_margins: Option<crate::train::calibrate::MetricMargins>,
}

/// Serialises `weights` as ONNX model bytes.
pub fn export(weights: &MoeWeights, info: &ExportInfo) -> Result<Vec<u8>, String> {
    let model = build(weights, info);
    model.write_to_bytes().map_err(|e| e.to_string())
}

fn tensor_f32(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.iter().map(|&d| d as i64).collect();
    t.data_type = DataType::FLOAT as i32;
    t.float_data = values.to_vec();
    t
}

fn tensor_i64(name: &str, values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = vec![values.len() as i64];
    t.data_type = DataType::INT64 as i32;
    t.int64_data = values.to_vec();
    t
}

fn node(op: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = format!("{op}_{output}");
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n.attribute = attributes;
    n
}

fn attr_int(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

fn value_info(name: &str, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|d| {
            let mut dim = tensor_shape_proto::Dimension::new();
            dim.value = Some(match d {
                Ok(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Err(p) => tensor_shape_proto::dimension::Value::DimParam(p.to_string()),
            });
            dim
        })
        .collect();
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DataType::FLOAT as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

fn join<T: ToString>(values: impl IntoIterator<Item = T>) -> String {
    values
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Appends SiLU (`x · sigmoid(x)`) of `input` as `output`.
fn silu(nodes: &mut Vec<NodeProto>, input: &str, output: &str) {
    let sig = format!("{output}_sigmoid");
    nodes.push(node("Sigmoid", &[input], &sig, vec![]));
    nodes.push(node("Mul", &[input, &sig], output, vec![]));
}

/// What the model's inputs hold ([`meta::INPUTS`]): a loading build compares it with its
/// own, so that a model whose candidate columns mean something else (another clamp, the
/// gain on other rows) is refused although its column count matches.
pub fn input_layout() -> String {
    let (f, c) = (MODEL_FEATURES, n_inputs() - MODEL_FEATURES);
    format!(
        "features: float32 [1, {f}] = the first {f} of deepcq.feature_names; \
         candidates: float32 [batch, {c}] = one-hot compressor ({}), \
         log10_bound_over_precision = clamp(log10(rel bound) \
         - log10_absmax_over_range - log10(unit roundoff: 2^-24 f32, 2^-53 f64), -3, 12), \
         quant_gain_db_at_bound = the quant_gain_db_* features interpolated at the \
         relative bound (sz3 rows; 0 for the others), \
         log10(relative bound = abs bound / chunk value range)",
        join(COMPRESSORS.iter())
    )
}

/// A layer `x_std · W + b` on inputs standardised as `(x − mean) / std`, rewritten to take
/// the raw inputs: row `i` of `W` (`cols` wide) divided by `std[i]`, and the means moved
/// into the bias, which is added to `bias` (in f64, rounded once at the end).
fn take_raw_inputs(
    weights: &[f32],
    cols: usize,
    mean: &[f32],
    std: &[f32],
    bias: &mut [f64],
) -> Vec<f32> {
    let mut raw = Vec::with_capacity(weights.len());
    for (row, (&mu, &sigma)) in weights.chunks_exact(cols).zip(mean.iter().zip(std)) {
        for (j, &w) in row.iter().enumerate() {
            // The bias takes the weight as stored, so that the two cancel at the mean.
            let scaled = (w as f64 / sigma as f64) as f32;
            raw.push(scaled);
            bias[j] -= mu as f64 * scaled as f64;
        }
    }
    raw
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

fn build(w: &MoeWeights, info: &ExportInfo) -> ModelProto {
    let (n_in, f, k, h, g, m) = (
        n_inputs(),
        MODEL_FEATURES,
        w.experts,
        w.hidden,
        w.gate_hidden,
        w.members.max(1),
    );
    let c = n_in - f;
    // Everything linear next to a matrix product is folded into it, so the graph runs as
    // few nodes as the forward pass allows: onnxruntime spends a few µs per node when its
    // caches are cold, as they are between two chunks' compressions, which is most of an
    // inference's cost. The inputs' standardisation goes into the first layers; the
    // targets' de-standardisation and the members' 1 / m weight into the output layer (the
    // gate's weights sum to m, so each expert's bias carries mean / m).
    let (mean, std) = (&w.in_mean, &w.in_std);
    let mut gate_b1: Vec<f64> = w.gate_b1.iter().map(|&b| b as f64).collect();
    let gate_w1 = take_raw_inputs(&w.gate_w1, g, &mean[..f], &std[..f], &mut gate_b1);
    let mut b1: Vec<f64> = w.b1.iter().map(|&b| b as f64).collect();
    let w1_feat = take_raw_inputs(&w.w1[..f * k * h], k * h, &mean[..f], &std[..f], &mut b1);
    let w1_cand = take_raw_inputs(&w.w1[f * k * h..], k * h, &mean[f..], &std[f..], &mut b1);
    let per_member = 1.0 / m as f64;
    let w3: Vec<f32> =
        w.w3.iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 * w.out_std[i % 3] as f64 * per_member) as f32)
            .collect();
    let b3: Vec<f32> =
        w.b3.iter()
            .enumerate()
            .map(|(i, &v)| {
                let j = i % 3;
                ((v as f64 * w.out_std[j] as f64 + w.out_mean[j] as f64) * per_member) as f32
            })
            .collect();
    // The experts predict the PSNR's offset from the point-wise-bound line, −20·log10 of
    // the relative bound (the candidates' last column) below the PSNR.
    let mut psnr_offset = vec![0.0f32; c * 3];
    psnr_offset[(c - 1) * 3] = -20.0;
    let inits = vec![
        tensor_f32("gate_w1", &[f, g], &gate_w1),
        tensor_f32("gate_b1", &[g], &to_f32(&gate_b1)),
        tensor_f32("gate_w2", &[g, k], &w.gate_w2),
        tensor_f32("gate_b2", &[k], &w.gate_b2),
        tensor_f32("w1_feat", &[f, k * h], &w1_feat),
        tensor_f32("w1_cand", &[c, k * h], &w1_cand),
        tensor_f32("b1", &[1, k * h], &to_f32(&b1)),
        tensor_f32("w2", &[k, h, h], &w.w2),
        tensor_f32("b2", &[k, 1, h], &w.b2),
        tensor_f32("w3", &[k, h, 3], &w3),
        tensor_f32("b3", &[k, 1, 3], &b3),
        tensor_f32("psnr_offset", &[c, 3], &psnr_offset),
        tensor_i64("axis0", &[0]),
        tensor_i64("expert_shape", &[0, k as i64, h as i64]),
        tensor_i64("member_shape", &[m as i64, (k / m) as i64]),
        tensor_i64("gate_shape", &[k as i64, 1, 1]),
    ];
    // Gating net, once per chunk: one softmax per member's group of experts
    // (`moe::ensemble`), as [K, 1, 1] to weigh the experts' outputs.
    let mut nodes = vec![
        node("MatMul", &[FEATURES_INPUT, "gate_w1"], "g1", vec![]),
        node("Add", &["g1", "gate_b1"], "g1b", vec![]),
    ];
    silu(&mut nodes, "g1b", "g1a");
    nodes.push(node("MatMul", &["g1a", "gate_w2"], "g2", vec![]));
    nodes.push(node("Add", &["g2", "gate_b2"], "g2b", vec![]));
    nodes.push(node("Reshape", &["g2b", "member_shape"], "g2m", vec![]));
    nodes.push(node("Softmax", &["g2m"], "gsm", vec![attr_int("axis", -1)]));
    nodes.push(node("Reshape", &["gsm", "gate_shape"], "gate", vec![]));
    // Experts, all at once: the features' share of layer 1 once ([1, K·H]), broadcast
    // onto every candidate's share ([N, K·H]); then [K, N, H] → batched MatMuls.
    nodes.push(node("MatMul", &[FEATURES_INPUT, "w1_feat"], "h1f", vec![]));
    nodes.push(node("Add", &["h1f", "b1"], "h1fb", vec![]));
    nodes.push(node(
        "MatMul",
        &[CANDIDATES_INPUT, "w1_cand"],
        "h1c",
        vec![],
    ));
    nodes.push(node("Add", &["h1c", "h1fb"], "h1", vec![]));
    silu(&mut nodes, "h1", "h1a");
    nodes.push(node("Reshape", &["h1a", "expert_shape"], "h1r", vec![]));
    nodes.push(node(
        "Transpose",
        &["h1r"],
        "h1t",
        vec![attr_ints("perm", &[1, 0, 2])],
    ));
    nodes.push(node("MatMul", &["h1t", "w2"], "h2", vec![]));
    nodes.push(node("Add", &["h2", "b2"], "h2b", vec![]));
    silu(&mut nodes, "h2b", "h2a");
    nodes.push(node("MatMul", &["h2a", "w3"], "o", vec![]));
    nodes.push(node("Add", &["o", "b3"], "ob", vec![]));
    // Mixture: Σ_k gate[k] · expert_k[n, :], then the PSNR offset added back.
    nodes.push(node("Mul", &["ob", "gate"], "weighted", vec![]));
    nodes.push(node(
        "ReduceSum",
        &["weighted", "axis0"],
        "mixed",
        vec![attr_int("keepdims", 0)],
    ));
    nodes.push(node(
        "MatMul",
        &[CANDIDATES_INPUT, "psnr_offset"],
        "offset",
        vec![],
    ));
    nodes.push(node("Add", &["mixed", "offset"], OUTPUT_NAME, vec![]));

    let mut graph = GraphProto::new();
    graph.name = "deepcq_moe".into();
    graph.node = nodes;
    graph.initializer = inits;
    graph.input = vec![
        value_info(FEATURES_INPUT, &[Ok(1), Ok(f as i64)]),
        value_info(CANDIDATES_INPUT, &[Err("batch"), Ok(c as i64)]),
    ];
    graph.output = vec![value_info(OUTPUT_NAME, &[Err("batch"), Ok(3)])];

    let mut opset = OperatorSetIdProto::new();
    opset.domain = String::new();
    opset.version = OPSET;
    let mut model = ModelProto::new();
    model.ir_version = IR_VERSION;
    model.opset_import = vec![opset];
    model.producer_name = "h5z-deepcq".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    model.doc_string = "h5z-deepcq surrogate: mixture of experts predicting PSNR, SSIM and \
                        log10 CR of a chunk per compressor and relative bound"
        .into();
    model.graph = Some(graph).into();
    let props = [
        (meta::SCHEMA_VERSION, FEATURE_SCHEMA_VERSION.to_string()),
        (meta::FEATURE_NAMES, join(FEATURE_NAMES.iter())),
        (meta::COMPRESSORS, join(COMPRESSORS.iter())),
        (
            meta::BOUND_GRID,
            join(info.bound_grid.iter().map(|b| format!("{b:e}"))),
        ),
        (meta::INPUTS, input_layout()),
        (meta::N_INPUTS, n_in.to_string()),
        (meta::OUTPUTS, join(OUTPUT_NAMES.iter())),
        (
            meta::OUTPUTS_DOC,
            "y: float32 [batch, 3] = PSNR in dB (20·log10(range) − 10·log10(MSE), chunk's own \
             range), mean SSIM (7-wide windows), log10 of the compression ratio for 32-bit \
             values (multiply the ratio by elem_size/4 for other dtypes)"
                .into(),
        ),
        (meta::CORPUS, info.corpus.clone()),
        (meta::TRAINING, info.training.clone()),
        (meta::VALIDATION, info.validation.clone()),
    ];
    let margins = info
        .psnr_margins
        .map(|m| (meta::PSNR_MARGINS, m.to_metadata()))
        .into_iter()
        .chain(
            info.metric_margins
                .map(|m| (meta::METRIC_MARGINS, m.to_metadata())),
        );
    model.metadata_props = props
        .into_iter()
        .chain(margins)
        .map(|(key, value)| {
            let mut e = StringStringEntryProto::new();
            e.key = key.into();
            e.value = value;
            e
        })
        .collect();
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_declares_ir_opset_and_metadata() {
        let w = MoeWeights {
            experts: 1,
            members: 1,
            hidden: 1,
            gate_hidden: 1,
            in_mean: vec![0.0; n_inputs()],
            in_std: vec![1.0; n_inputs()],
            out_mean: [0.0; 3],
            out_std: [1.0; 3],
            gate_w1: vec![0.0; MODEL_FEATURES],
            gate_b1: vec![0.0],
            gate_w2: vec![0.0],
            gate_b2: vec![0.0],
            w1: vec![0.0; n_inputs()],
            b1: vec![0.0],
            w2: vec![0.0],
            b2: vec![0.0],
            w3: vec![0.0; 3],
            b3: vec![0.0; 3],
        };
        let bytes = export(
            &w,
            &ExportInfo {
                bound_grid: vec![1e-3, 1e-2],
                ..Default::default()
            },
        )
        .unwrap();
        let model = ModelProto::parse_from_bytes(&bytes).unwrap();
        assert!(model.ir_version <= 13);
        assert!(model.opset_import[0].version >= 17);
        let get = |k: &str| {
            model
                .metadata_props
                .iter()
                .find(|e| e.key == k)
                .map(|e| e.value.clone())
        };
        assert_eq!(
            get(meta::SCHEMA_VERSION),
            Some(FEATURE_SCHEMA_VERSION.to_string())
        );
        assert_eq!(get(meta::BOUND_GRID), Some("1e-3,1e-2".into()));
        assert_eq!(get(meta::COMPRESSORS), Some("sz3,zfp,sperr".into()));
    }
}
