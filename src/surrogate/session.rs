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
    let built = ort::init_from(library)
        .map_err(|e| runtime_error(format!("{e:?}")))?
        .with_name("h5z-deepcq")
        .build()
        .map_err(|e| runtime_error(format!("{e:?}")))?;
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

/// Runs `n` input rows through the session.
pub(super) fn run(
    session: &mut Session,
    x: &[f32],
    n: usize,
) -> Result<Vec<[f32; 3]>, SurrogateError> {
    let cols = n_inputs();
    if x.len() != n * cols {
        return Err(SurrogateError::Input(format!(
            "{} input values for {n} rows of {cols}",
            x.len()
        )));
    }
    let err = |e: ort::Error| SurrogateError::Session(format!("{e:?}"));
    let input = Tensor::from_array(([n, cols], x.to_vec())).map_err(err)?;
    let outputs = session
        .run(ort::inputs![crate::train::onnx::INPUT_NAME => input])
        .map_err(err)?;
    let (shape, data) = outputs[crate::train::onnx::OUTPUT_NAME]
        .try_extract_tensor::<f32>()
        .map_err(err)?;
    if shape.len() != 2 || shape[0] as usize != n || shape[1] != 3 {
        return Err(SurrogateError::Session(format!(
            "model returned shape {shape:?}, expected [{n}, 3]"
        )));
    }
    Ok(data.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect())
}
