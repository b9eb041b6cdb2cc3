//! Stage 2 of the surrogate: the exported ONNX model, run through onnxruntime.
//!
//! [`Surrogate::load`] opens a model once per process (onnxruntime is loaded at run time
//! from a path the caller chooses, so neither the plugin nor the read path ever links it),
//! checks its metadata against this build's feature schema, and then
//! [`Surrogate::predict`] scores every candidate (compressor × relative bound) of a chunk
//! in one batched inference.
//!
//! The model layout (inputs, outputs, metadata keys) is documented in
//! [`crate::train::onnx`] and docs/surrogate.md.

pub mod locate;
mod metadata;
mod session;

pub use metadata::ModelMetadata;

use once_cell::sync::OnceCell;

use std::path::Path;
use std::sync::Mutex;

use crate::features::{Features, MODEL_FEATURES};
use crate::train::moe::{input_row, n_inputs};
use crate::wire::CodecId;

/// Why the surrogate could not load or predict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SurrogateError {
    /// onnxruntime could not be loaded (the text includes the dlopen cause).
    #[error("cannot load onnxruntime from {path}: {message}")]
    Runtime {
        /// The library path tried.
        path: String,
        /// The loader's error, `{:?}`-formatted because its display hides the cause.
        message: String,
    },
    /// onnxruntime rejected the model or failed to run it.
    #[error("onnxruntime: {0}")]
    Session(String),
    /// The model's metadata is missing, malformed, or made for another feature schema.
    #[error("model metadata: {0}")]
    Metadata(String),
    /// The features or candidates do not fit the model.
    #[error("bad input: {0}")]
    Input(String),
}

/// One option the filter considers: a compressor at a bound relative to the chunk's
/// value range (`abs_bound = rel_bound × (max − min)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The lossy compressor.
    pub codec: CodecId,
    /// Bound relative to the chunk's value range.
    pub rel_bound: f64,
}

/// What the model expects a candidate to achieve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// PSNR in dB, value-range convention (see [`crate::metrics`]).
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Compression ratio for the chunk's dtype (the model predicts it for 32-bit values;
    /// it is scaled by `elem_size / 4`).
    pub cr: f64,
}

impl Prediction {
    /// The model's row (PSNR, SSIM, log10 CR for 32-bit values) for values `scale` times
    /// 4 bytes wide. A head that is not finite (a damaged model on one chunk; the load
    /// check runs one test chunk) reads as the worst it could mean, so no choice rests on
    /// it: PSNR −∞ (never admissible), ratio 0 (never preferred).
    fn of_row(r: [f32; 3], scale: f64) -> Prediction {
        let cr = 10f64.powf(r[2] as f64) * scale;
        Prediction {
            psnr: if r[0].is_finite() {
                r[0] as f64
            } else {
                f64::NEG_INFINITY
            },
            // SSIM cannot exceed 1; the regression head can.
            ssim: if r[1].is_finite() {
                (r[1] as f64).min(1.0)
            } else {
                f64::NEG_INFINITY
            },
            cr: if cr.is_finite() { cr } else { 0.0 },
        }
    }
}

/// A loaded surrogate model. Send + Sync: one instance serves every thread (runs are
/// serialised by a mutex, since an ort session runs through `&mut`; one run is a few µs).
pub struct Surrogate {
    session: Mutex<ort::session::Session>,
    metadata: ModelMetadata,
}

impl std::fmt::Debug for Surrogate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Surrogate")
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl Surrogate {
    /// Loads onnxruntime from `ort_library` (an absolute path to `libonnxruntime.so`; the
    /// first successful load in a process wins, later paths are ignored) and the model from
    /// `model_bytes`. Fails when the model's feature schema or names differ from this
    /// build's.
    pub fn load(ort_library: &Path, model_bytes: &[u8]) -> Result<Surrogate, SurrogateError> {
        let session = session::open(ort_library, model_bytes)?;
        let metadata = ModelMetadata::read(&session)?;
        metadata.check_compatible()?;
        session::check_interface(&session)?;
        let surrogate = Surrogate {
            session: Mutex::new(session),
            metadata,
        };
        surrogate.check_predictions()?;
        Ok(surrogate)
    }

    /// Fails unless the model predicts finite values for a generated smooth chunk at every
    /// candidate. A model whose weights were damaged (NaN) loaded, and predict mode then
    /// chose by the analytic fallback's rules on every chunk without a word (SSIM 0.999
    /// targets stored 0.95).
    fn check_predictions(&self) -> Result<(), SurrogateError> {
        let shape = [16, 16, 16];
        let field = crate::synth::generate(crate::synth::Kind::Spectral { slope: 3.0 }, &shape, 1);
        let features = crate::features::extract(crate::samples::Samples::F64(&field), &shape);
        let rows = self.rows(&features, &self.all_candidates())?;
        let finite = |r: &[f32; 3]| r.iter().all(|x| x.is_finite()) && r[2] < 300.0;
        if rows.is_empty() || !rows.iter().all(finite) {
            return Err(SurrogateError::Metadata(
                "the model predicts NaN or infinity for a generated test chunk: its weights \
                 are damaged; export it again with `deepcq train`"
                    .into(),
            ));
        }
        Ok(())
    }

    /// What the model's metadata says.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The relative bounds the model recommends as candidates.
    pub fn bound_grid(&self) -> &[f64] {
        &self.metadata.bound_grid
    }

    /// The compressors the model knows, in its one-hot order.
    pub fn compressors(&self) -> &[CodecId] {
        &self.metadata.compressors
    }

    /// Every (compressor, bound-grid) pair, compressors outermost.
    pub fn all_candidates(&self) -> Vec<Candidate> {
        self.metadata
            .compressors
            .iter()
            .flat_map(|&codec| {
                self.metadata
                    .bound_grid
                    .iter()
                    .map(move |&rel_bound| Candidate { codec, rel_bound })
            })
            .collect()
    }

    /// Predicts every candidate for a chunk with `features`, in one inference.
    pub fn predict(
        &self,
        features: &Features,
        candidates: &[Candidate],
    ) -> Result<Vec<Prediction>, SurrogateError> {
        let scale = features.elem_size.max(1) as f64 / 4.0;
        Ok(self
            .rows(features, candidates)?
            .into_iter()
            .map(|r| Prediction::of_row(r, scale))
            .collect())
    }

    /// The model's output rows for `candidates`, as it gives them.
    fn rows(
        &self,
        features: &Features,
        candidates: &[Candidate],
    ) -> Result<Vec<[f32; 3]>, SurrogateError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.inputs(features, candidates)?;
        self.run_chunk(&features.values[..MODEL_FEATURES], &x, candidates.len())
    }

    /// Builds the candidates' input rows (everything after the model features).
    fn inputs(
        &self,
        features: &Features,
        candidates: &[Candidate],
    ) -> Result<Vec<f32>, SurrogateError> {
        if features.values.len() != self.metadata.feature_names.len() {
            return Err(SurrogateError::Input(format!(
                "{} features, model expects {}",
                features.values.len(),
                self.metadata.feature_names.len()
            )));
        }
        let mut x = Vec::with_capacity(candidates.len() * (n_inputs() - MODEL_FEATURES));
        for c in candidates {
            if !(c.rel_bound > 0.0 && c.rel_bound.is_finite()) {
                return Err(SurrogateError::Input(format!(
                    "relative bound must be positive and finite, got {}",
                    c.rel_bound
                )));
            }
            let row = input_row(
                &features.values,
                c.codec.name(),
                c.rel_bound,
                features.elem_size,
            )
            .ok_or_else(|| {
                SurrogateError::Input(format!("the model has no compressor {}", c.codec.name()))
            })?;
            x.extend_from_slice(&row[MODEL_FEATURES..]);
        }
        Ok(x)
    }

    /// Runs one chunk: its model features and `n` candidate rows.
    fn run_chunk(
        &self,
        features: &[f32],
        candidates: &[f32],
        n: usize,
    ) -> Result<Vec<[f32; 3]>, SurrogateError> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session::run(&mut session, features, candidates, n)
    }

    /// Runs raw trainer rows (`n` rows of [`n_inputs`]: features, then a candidate's
    /// columns) and returns the raw outputs (PSNR dB, SSIM, log10 CR32). Consecutive rows
    /// with the same features go in one run, as the filter's candidates do. Exposed for
    /// parity tests and tools.
    pub fn run_raw(&self, x: &[f32], n: usize) -> Result<Vec<[f32; 3]>, SurrogateError> {
        let cols = n_inputs();
        if x.len() != n * cols {
            return Err(SurrogateError::Input(format!(
                "{} input values for {n} rows of {cols}",
                x.len()
            )));
        }
        let rows: Vec<&[f32]> = x.chunks_exact(cols).collect();
        let mut out = Vec::with_capacity(n);
        for group in rows.chunk_by(|a, b| a[..MODEL_FEATURES] == b[..MODEL_FEATURES]) {
            let candidates: Vec<f32> = group
                .iter()
                .flat_map(|r| r[MODEL_FEATURES..].iter().copied())
                .collect();
            out.extend(self.run_chunk(&group[0][..MODEL_FEATURES], &candidates, group.len())?);
        }
        Ok(out)
    }
}

/// The process-wide surrogate: onnxruntime and the model found as [`locate`] documents,
/// loaded on first use and shared by every thread. A failure is remembered too, so a
/// missing runtime costs one search per process, not one per chunk; its message says so.
/// A panic while loading (a library that is not onnxruntime) is remembered as a failure.
pub fn shared() -> Result<&'static Surrogate, String> {
    static SHARED: OnceCell<Result<Surrogate, String>> = OnceCell::new();
    SHARED
        .get_or_init(|| {
            let loaded = std::panic::catch_unwind(load_shared).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(format!("loading onnxruntime or the model panicked: {what}"))
            });
            loaded.map_err(|e| {
                format!("{e} (this process does not try again: restart it once that is fixed)")
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn load_shared() -> Result<Surrogate, String> {
    let started = std::time::Instant::now();
    let library = locate::onnxruntime_library()?;
    let (bytes, source) = locate::model()?;
    let named = std::env::var_os(locate::MODEL_ENV).is_some_and(|p| !p.is_empty());
    let surrogate = Surrogate::load(&library, &bytes).map_err(|e| {
        format!(
            "cannot use the surrogate ({source} with {}): {e}; {}",
            library.display(),
            fix_for(&e, named)
        )
    })?;
    log::info!(
        "surrogate: {source} with {} loaded in {:.0} ms",
        library.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(surrogate)
}

/// What to do about a load failure `e`, for a model that `H5Z_DEEPCQ_MODEL` named or the
/// embedded one.
fn fix_for(e: &SurrogateError, named: bool) -> String {
    let runtime = "point ORT_DYLIB_PATH at libonnxruntime.so of onnxruntime 1.17 or later \
                   (scripts/setup.sh unpacks one into third_party/onnxruntime)";
    match (e, named) {
        (SurrogateError::Runtime { .. }, _) => runtime.into(),
        (_, true) => format!(
            "export the model again with this build's `deepcq train`, or unset {} to use \
             the embedded model",
            locate::MODEL_ENV
        ),
        // The embedded model is built with this build's schema: a mismatch is a bug.
        (SurrogateError::Metadata(_), false) => format!(
            "the model built into this deepcq does not match it: rebuild deepcq, or name a \
             model with {}",
            locate::MODEL_ENV
        ),
        (_, false) => format!("the embedded model needs onnxruntime 1.17 or later: {runtime}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_head_that_is_not_finite_reads_as_the_worst() {
        use super::Prediction;
        let p = Prediction::of_row([f32::NAN, f32::NAN, f32::NAN], 1.0);
        assert_eq!(
            (p.psnr, p.ssim, p.cr),
            (f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0)
        );
        let p = Prediction::of_row([f32::INFINITY, f32::INFINITY, 400.0], 2.0);
        assert_eq!(
            (p.psnr, p.ssim, p.cr),
            (f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0)
        );
        assert_eq!(Prediction::of_row([60.0, 1.5, 1.0], 1.0).ssim, 1.0);
        let p = Prediction::of_row([60.0, 0.5, 1.0], 2.0);
        assert_eq!((p.psnr, p.ssim, p.cr), (60.0, 0.5, 20.0));
    }

    use super::*;

    #[test]
    fn surrogate_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Surrogate>();
    }

    #[test]
    fn each_load_failure_names_its_own_fix() {
        let runtime = SurrogateError::Runtime {
            path: "/x".into(),
            message: "no such file".into(),
        };
        assert!(fix_for(&runtime, false).starts_with("point ORT_DYLIB_PATH"));
        let mismatch = SurrogateError::Metadata("feature names differ".into());
        assert!(fix_for(&mismatch, false).contains("rebuild deepcq"));
        assert!(fix_for(&mismatch, true).contains("export the model again"));
        let session = SurrogateError::Session("opset 21".into());
        assert!(fix_for(&session, false).contains("onnxruntime 1.17 or later"));
    }

    #[test]
    fn a_missing_runtime_is_an_error_not_a_panic() {
        let err = Surrogate::load(Path::new("/nonexistent/libonnxruntime.so"), b"")
            .expect_err("no runtime there");
        // If another test already loaded onnxruntime, the empty model fails instead.
        assert!(
            matches!(
                err,
                SurrogateError::Runtime { .. } | SurrogateError::Session(_)
            ),
            "{err:?}"
        );
    }
}
