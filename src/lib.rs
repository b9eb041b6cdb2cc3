//! h5z-deepcq: an HDF5 filter that compresses floating-point chunks to a quality target.
//!
//! This crate is both the filter plugin (a `cdylib` HDF5 loads from `HDF5_PLUGIN_PATH`)
//! and a Rust library. The layers, each in its own module:
//!
//! - [`wire`]: every on-disk and cross-boundary constant;
//! - [`samples`]: typed views of chunk values and shape helpers;
//! - [`codec`]: SZ3, ZFP, SPERR and a lossless codec behind one trait;
//! - [`chunk`]: the versioned, self-describing, checksummed chunk format;
//! - [`metrics`]: PSNR (value-range convention), SSIM, CR, max error;
//! - [`corpus`]: raw-array corpora described by `stats.json` manifests;
//! - [`synth`]: generated fields for demos, tests and training;
//! - [`settings`]: the user's target and options, read from HDF5 cd_values;
//! - [`padding`]: edge chunks, whose fill values must not count;
//! - [`select`]: target → codec and bound, predict and guarantee modes;
//! - [`learned`]: the surrogate as the chooser's first proposal, and the fallback policy;
//! - [`observe`]: per-chunk logs and the JSON-lines trace;
//! - [`h5`]: the HDF5 plugin (entry points, callbacks, run-time HDF5 API);
//! - [`insitu`]: compress / advise / sessions on a caller's buffer;
//! - [`capi`]: the in-situ C API (`include/h5z_deepcq.h`);
//! - [`features`]: stage 1 of the surrogate, a cheap scale-free description of a chunk;
//! - [`surrogate`]: stage 2, the ONNX model run through onnxruntime;
//! - [`train`]: training-table collection, the mixture-of-experts trainer and ONNX export.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// Values move between HDF5's buffers, the codecs and the chunk format as native bytes read
// as little-endian (`samples::SampleBuf::into_bytes`, `Samples::from_le_slice`): on a
// big-endian host every decoded value would come back byte-swapped.
#[cfg(target_endian = "big")]
compile_error!("h5z-deepcq supports little-endian hosts only (x86-64, aarch64, ppc64le)");

pub mod capi;
pub mod chunk;
pub mod codec;
pub mod corpus;
pub mod encode;
pub mod features;
pub mod h5;
pub mod insitu;
pub mod learned;
pub mod memory;
pub mod metrics;
pub mod near_mean;
pub mod observe;
pub mod padding;
pub mod samples;
pub mod select;
pub mod settings;
pub mod ssim_psnr;
pub mod surrogate;
pub mod synth;
pub mod train;
pub mod unfamiliar;
pub mod wire;
