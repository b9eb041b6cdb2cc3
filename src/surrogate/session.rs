//! The onnxruntime edge: the process-wide environment and one session per model.
//!
//! ort allows one environment per process and binds the library on the first successful
//! `init_from`, so the environment lives in a lazily filled, lock-guarded global.

use std::path::Path;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use super::SurrogateError;
use crate::features::MODEL_FEATURES;
use crate::train::moe::n_inputs;

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

fn environment(library: &Path) -> Result<Environment, SurrogateError> {
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = env.as_ref() {
        return Ok(e.clone());
    }
    let runtime_error = |message: String| SurrogateError::Runtime {
        path: library.display().to_string(),
        message,
    };
    if !library.is_absolute() {
        return Err(runtime_error("the library path must be absolute".into()));
    }
    if !library.is_file() {
        return Err(runtime_error("no such file".into()));
    }
    // Both forms: the message says what is wrong (a runtime older than ort needs, and
    // which it needs), the debug form why (the loader's own error).
    let built = ort::init_from(library)
        .map_err(|e| runtime_error(format!("{e} ({e:?})")))?
        .with_name("h5z-deepcq")
        .build()
        .map_err(|e| runtime_error(format!("{e} ({e:?})")))?;
    *env = Some(built.clone());
    Ok(built)
}

/// Loads the runtime (once) and a session for `model`.
pub(super) fn open(library: &Path, model: &[u8]) -> Result<Session, SurrogateError> {
    let env = environment(library)?;
    let session_error = |e: ort::Error| SurrogateError::Session(format!("{e:?}"));
    // One intra-op thread: batches are tiny, and the filter already runs chunks in
    // parallel; a thread pool per session would only add wake-up latency.
    Session::builder(&env)
        .map_err(session_error)?
        .with_intra_threads(1)
        .map_err(|e| SurrogateError::Session(format!("{e:?}")))?
        .with_inter_threads(1)
        .map_err(|e| SurrogateError::Session(format!("{e:?}")))?
        .commit_from_memory(model)
        .map_err(session_error)
}

/// Fails unless the model takes this build's inputs (the chunk's features once and one row
/// per candidate; models exported before that split took one input `x` of whole rows) and
/// gives its output: a model whose output had another name loaded, and then every chunk
/// failed inside the run.
pub(super) fn check_interface(session: &Session) -> Result<(), SurrogateError> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let expected = [
        crate::train::onnx::FEATURES_INPUT,
        crate::train::onnx::CANDIDATES_INPUT,
    ];
    let output = crate::train::onnx::OUTPUT_NAME;
    if inputs != expected || !outputs.contains(&output) {
        return Err(SurrogateError::Metadata(format!(
            "model inputs {inputs:?} and outputs {outputs:?}, this build feeds {expected:?} \
             and reads {output:?}: export the model with this build's `deepcq train`"
        )));
    }
    Ok(())
}

/// Runs one chunk's model `features` and `n` candidate rows through the session.
pub(super) fn run(
    session: &mut Session,
    features: &[f32],
    candidates: &[f32],
    n: usize,
) -> Result<Vec<[f32; 3]>, SurrogateError> {
    let cols = n_inputs() - MODEL_FEATURES;
    if features.len() != MODEL_FEATURES || candidates.len() != n * cols {
        return Err(SurrogateError::Input(format!(
            "{} features and {} candidate values for {n} rows, the model takes \
             {MODEL_FEATURES} and {cols} per row",
            features.len(),
            candidates.len()
        )));
    }
    let err = |e: ort::Error| SurrogateError::Session(format!("{e:?}"));
    let features = Tensor::from_array(([1, MODEL_FEATURES], features.to_vec())).map_err(err)?;
    let candidates = Tensor::from_array(([n, cols], candidates.to_vec())).map_err(err)?;
    let outputs = session
        .run(ort::inputs![
            crate::train::onnx::FEATURES_INPUT => features,
            crate::train::onnx::CANDIDATES_INPUT => candidates,
        ])
        .map_err(err)?;
    let output = crate::train::onnx::OUTPUT_NAME;
    let (shape, data) = outputs
        .get(output)
        .ok_or_else(|| SurrogateError::Session(format!("the model gave no output {output:?}")))?
        .try_extract_tensor::<f32>()
        .map_err(err)?;
    if shape.len() != 2 || shape[0] as usize != n || shape[1] != 3 {
        return Err(SurrogateError::Session(format!(
            "model returned shape {shape:?}, expected [{n}, 3]"
        )));
    }
    Ok(data.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect())
}
