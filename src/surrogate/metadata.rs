//! The model's metadata: read from the ONNX `metadata_props`, checked against this build.

use ort::session::Session;

use super::SurrogateError;
use crate::features::{FEATURE_NAMES, FEATURE_SCHEMA_VERSION};
use crate::train::calibrate::{MetricMargins, PsnrMargins};
use crate::train::onnx::meta;
use crate::wire::CodecId;

/// What an exported model declares about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMetadata {
    /// Feature schema version the model was trained on.
    pub schema_version: u32,
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Compressors, in one-hot order.
    pub compressors: Vec<CodecId>,
    /// Relative bounds the filter should consider.
    pub bound_grid: Vec<f64>,
    /// Number of input columns.
    pub n_inputs: usize,
    /// What the input columns hold ([`crate::train::onnx::input_layout`]): compared with
    /// this build's, since a model of the same column count may mean other things by them
    /// (another clamp, the gain on other rows) and would mispredict without an error.
    pub inputs: String,
    /// Output column names.
    pub outputs: Vec<String>,
    /// Training corpus summary.
    pub corpus: String,
    /// Validation summary.
    pub validation: String,
    /// PSNR margins calibrated on held-out predictions; `None` for a model exported
    /// without validation (the chooser then uses its constant margins).
    pub psnr_margins: Option<PsnrMargins>,
    /// Predict mode's SSIM and ratio margins calibrated the same way; `None` for models
    /// exported without validation or before they were calibrated (constants then).
    pub metric_margins: Option<MetricMargins>,
}

impl ModelMetadata {
    /// Reads the metadata of an open session.
    pub(super) fn read(session: &Session) -> Result<ModelMetadata, SurrogateError> {
        let md = session
            .metadata()
            .map_err(|e| SurrogateError::Session(format!("{e:?}")))?;
        let get = |key: &str| {
            md.custom(key)
                .ok_or_else(|| SurrogateError::Metadata(format!("missing key {key}")))
        };
        let list = |text: String| -> Vec<String> {
            text.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let schema = get(meta::SCHEMA_VERSION)?;
        let schema_version = schema
            .trim()
            .parse()
            .map_err(|_| SurrogateError::Metadata(format!("schema version '{schema}'")))?;
        let compressors = list(get(meta::COMPRESSORS)?)
            .iter()
            .map(|n| {
                CodecId::from_name(n)
                    .ok_or_else(|| SurrogateError::Metadata(format!("unknown compressor '{n}'")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bound_grid = list(get(meta::BOUND_GRID)?)
            .iter()
            .map(|b| match b.parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
                _ => Err(SurrogateError::Metadata(format!("bound grid entry '{b}'"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ModelMetadata {
            schema_version,
            feature_names: list(get(meta::FEATURE_NAMES)?),
            compressors,
            bound_grid,
            n_inputs: {
                let n = get(meta::N_INPUTS)?;
                n.trim()
                    .parse()
                    .map_err(|_| SurrogateError::Metadata(format!("n_inputs '{n}'")))?
            },
            inputs: get(meta::INPUTS)?,
            outputs: list(get(meta::OUTPUTS)?),
            corpus: md.custom(meta::CORPUS).unwrap_or_default(),
            validation: md.custom(meta::VALIDATION).unwrap_or_default(),
            psnr_margins: md
                .custom(meta::PSNR_MARGINS)
                .map(|text| PsnrMargins::from_metadata(&text))
                .transpose()
                .map_err(|e| SurrogateError::Metadata(format!("{}: {e}", meta::PSNR_MARGINS)))?,
            metric_margins: md
                .custom(meta::METRIC_MARGINS)
                .map(|text| MetricMargins::from_metadata(&text))
                .transpose()
                .map_err(|e| SurrogateError::Metadata(format!("{}: {e}", meta::METRIC_MARGINS)))?,
        })
    }

    /// Fails unless this build computes exactly the features the model was trained on and
    /// the input layout matches.
    pub fn check_compatible(&self) -> Result<(), SurrogateError> {
        if self.schema_version != FEATURE_SCHEMA_VERSION {
            return Err(SurrogateError::Metadata(format!(
                "model trained on feature schema {}, this build computes schema {}; retrain or \
                 use a matching build",
                self.schema_version, FEATURE_SCHEMA_VERSION
            )));
        }
        if self.feature_names != FEATURE_NAMES {
            return Err(SurrogateError::Metadata(format!(
                "feature names differ from this build's: model has {:?}",
                self.feature_names
            )));
        }
        let expected: Vec<String> = crate::train::moe::COMPRESSORS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let names: Vec<String> = self
            .compressors
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        if names != expected {
            return Err(SurrogateError::Metadata(format!(
                "compressor order {names:?}, this build expects {expected:?}"
            )));
        }
        if self.n_inputs != crate::train::moe::n_inputs() {
            return Err(SurrogateError::Metadata(format!(
                "model takes {} inputs, this build builds {}",
                self.n_inputs,
                crate::train::moe::n_inputs()
            )));
        }
        // The count alone passes a model whose candidate columns mean something else.
        if self.inputs != crate::train::onnx::input_layout() {
            return Err(SurrogateError::Metadata(format!(
                "model's inputs hold \"{}\", this build's \"{}\"",
                self.inputs,
                crate::train::onnx::input_layout()
            )));
        }
        if self.bound_grid.is_empty() {
            return Err(SurrogateError::Metadata("empty bound grid".into()));
        }
        if self.outputs != crate::train::moe::OUTPUT_NAMES {
            return Err(SurrogateError::Metadata(format!(
                "outputs {:?}, this build reads {:?}",
                self.outputs,
                crate::train::moe::OUTPUT_NAMES
            )));
        }
        Ok(())
    }
}
