//! The in-situ C API: every `extern "C"` function a simulation calls directly. The
//! header `include/h5z_deepcq.h` is generated from this file by cbindgen (build.rs), and
//! `include/h5z_deepcq.f90` mirrors it for Fortran.
//!
//! # Conventions (repeated in the header)
//! - One prefix: functions `h5z_deepcq_*`, constants `H5Z_DEEPCQ_*`, types `h5z_deepcq_*`.
//! - Every function returning `int` returns a status: [`H5Z_DEEPCQ_OK`] (0) or a negative
//!   code, one per error class. The message of the latest failure on the calling thread is copied
//!   out by [`h5z_deepcq_last_error`]. Nothing panics or aborts across this boundary:
//!   every body runs under `catch_unwind`, and a caught panic is [`H5Z_DEEPCQ_ERR_INTERNAL`].
//! - Arrays are C order: `dims[0]` is the slowest dimension. A Fortran array `a(nx,ny,nz)`
//!   has C dims `{nz, ny, nx}`.
//! - Settings are cd_values, the same words `H5Pset_filter` takes; build them with
//!   [`h5z_deepcq_cd_values`] so nobody packs words by hand.
//! - Output is either written into a caller buffer (`*_into`: capacity in, size out; too
//!   small gives [`H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL`] with the needed size in `*out_len`)
//!   or allocated by the library (release it with [`h5z_deepcq_free`]).
//!
//! This module is the ONE place where [`InsituError`] becomes a status code.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use crate::insitu::session::Session;
use crate::insitu::{self, Advice, InsituError, Report};
use crate::samples::{SampleBuf, Samples};
use crate::settings::{BufferSettings, DatasetType, Settings, SettingsError, Target};
use crate::wire::{self, user_cd, CodecId, CompressorChoice, DType, Mode, TargetKind};

// ---- status codes ---------------------------------------------------------------------

/// Success.
pub const H5Z_DEEPCQ_OK: c_int = 0;
/// A NULL pointer, an unknown dtype, bad dims (a rank outside 1..=32, a dim of 0: empty
/// buffers are refused, so an MPI rank whose part of the domain is empty skips the call), or a
/// buffer of the wrong size or shape.
pub const H5Z_DEEPCQ_ERR_INVALID_ARGUMENT: c_int = -1;
/// The cd_values (or the arguments of `h5z_deepcq_cd_values`) were rejected.
pub const H5Z_DEEPCQ_ERR_SETTINGS: c_int = -2;
/// The caller's output buffer is too small; `*out_len` holds the size needed (`*rank`
/// for `h5z_deepcq_chunk_info`'s dims, `*n` for the `cd_values` calls).
pub const H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL: c_int = -3;
/// The bytes are not a readable deepcq chunk (truncated, corrupt, newer format).
pub const H5Z_DEEPCQ_ERR_CORRUPT: c_int = -4;
/// Compression failed (a codec error no fallback covers, or the proposer could not run).
pub const H5Z_DEEPCQ_ERR_COMPRESS: c_int = -5;
/// No HDF5 library is loaded in the process, or it refused to register the filter.
pub const H5Z_DEEPCQ_ERR_HDF5: c_int = -6;
/// The library could not allocate the output. Running out of memory during the work
/// itself (copies of the values, the codecs' buffers, an SSIM target's windows) aborts
/// the process, as any failed Rust allocation does: budget for the peaks README gives
/// (about eleven times an f32 buffer's bytes in guarantee mode, more for SSIM).
pub const H5Z_DEEPCQ_ERR_OUT_OF_MEMORY: c_int = -7;
/// A bug inside the library (a caught panic). Please report the message.
pub const H5Z_DEEPCQ_ERR_INTERNAL: c_int = -99;

// ---- numbers shared with cd_values and chunk headers (see wire.rs) -------------------

/// The HDF5 filter id to pass to `H5Pset_filter`.
pub const H5Z_DEEPCQ_FILTER_ID: c_uint = 357;
/// Most words of a user's settings array (`h5z_deepcq_cd_values_missing` writes that
/// many; `h5z_deepcq_cd_values` at most 6). Stored cd_values read from a file, which the
/// calls here take too, hold 10 + rank + up to 2 words, packed to 4 + rank + up to 2
/// where that is over 16 (at most 42 words): size a buffer for `H5Pget_filter_by_id2` by
/// that, not by this.
pub const H5Z_DEEPCQ_CD_MAX: usize = 8;
/// Element type: IEEE binary32.
pub const H5Z_DEEPCQ_FLOAT32: c_uint = 1;
/// Element type: IEEE binary64.
pub const H5Z_DEEPCQ_FLOAT64: c_uint = 2;
/// Element type of a chunk of any other type's bytes, which the filter kept exactly
/// (`h5z_deepcq_chunk_info` only: the compress calls take floats).
pub const H5Z_DEEPCQ_OPAQUE: c_uint = 3;
/// Target kind: PSNR in dB (20·log10(value range) − 10·log10(MSE), the SZ convention).
pub const H5Z_DEEPCQ_PSNR: c_uint = 0;
/// Target kind: SSIM.
pub const H5Z_DEEPCQ_SSIM: c_uint = 1;
/// Target kind: compression ratio.
pub const H5Z_DEEPCQ_RATIO: c_uint = 2;
/// Target kind: absolute point-wise error bound.
pub const H5Z_DEEPCQ_ABS: c_uint = 3;
/// Compressor: chosen per chunk.
pub const H5Z_DEEPCQ_AUTO: c_uint = 0;
/// Compressor / codec id: SZ3.
pub const H5Z_DEEPCQ_SZ3: c_uint = 1;
/// Compressor / codec id: ZFP.
pub const H5Z_DEEPCQ_ZFP: c_uint = 2;
/// Compressor / codec id: SPERR.
pub const H5Z_DEEPCQ_SPERR: c_uint = 3;
/// Codec id in reports: stored losslessly (constant, non-finite, or unreachable target).
pub const H5Z_DEEPCQ_LOSSLESS: c_uint = 0;
/// Mode: decode, measure, and correct a miss; a PSNR, SSIM or absolute target is always
/// met, a ratio whenever any bound of the codec reaches it (else the loosest bound tried;
/// a chunk whose headers alone exceed the ratio's budget is stored exactly; the report says
/// it missed).
pub const H5Z_DEEPCQ_GUARANTEE: c_uint = 0;
/// Mode: one compression (two where the first payload stores under half its predicted
/// ratio at under a bit per value, or from ZFP, and the model's runner-up compressor
/// promises 1.5× that: the runner-up once, the smaller kept), trusting the proposal
/// unless the payload stores more than 3× from the predicted ratio, SZ3 stored it under a
/// bit per value, a PSNR choice lies inside the model's calibrated margin (aimed 3 dB
/// above the target where that promises 1.25× the ratio of the calibrated choice), or
/// the chunk is of a kind the model misreads (quantised values, an axis
/// of 2 or 3 values, or of 4–8 once folded to three, a table's columns, a series, four
/// long axes, magnitudes over more than 12 decades, an isolated marker: docs/cd_values.md;
/// then
/// measured and, on a PSNR miss, corrected, unless the bound is at or below the safe
/// bound, certain to meet the target, and not SZ3's finer than a lattice's step, whose
/// decode may be exact); a payload 3× off its predicted ratio
/// that clears a PSNR target by over 4.5 dB is tried once at a looser bound; a ratio
/// target's size is always checked, and searched from when short or more than 3× past it;
/// a ZFP payload for an absolute bound is decoded and checked.
pub const H5Z_DEEPCQ_PREDICT: c_uint = 1;
/// Mode: decode and measure like guarantee, but one more compression per compressor at
/// most before the safe bound, and the runner-up compressor searched only when the first
/// payload stored over 3× more than predicted or the model ranks the two within a
/// quarter of each other's ratio; a PSNR, SSIM or absolute target is always met, in two
/// to four times one compression's time.
pub const H5Z_DEEPCQ_FAST: c_uint = 2;
/// Flag: fall back to the analytic chooser when the surrogate cannot load.
pub const H5Z_DEEPCQ_FLAG_ANALYTIC_FALLBACK: c_uint = 1;
/// Session option: do not learn across steps (every step as `h5z_deepcq_compress`).
pub const H5Z_DEEPCQ_SESSION_NO_ADAPT: c_uint = 1;
/// Advice source: the proposal was compressed once and measured.
pub const H5Z_DEEPCQ_SOURCE_MEASURED: c_uint = 1;
/// Advice source: predicted by the learned surrogate without compressing.
pub const H5Z_DEEPCQ_SOURCE_MODEL: c_uint = 2;

const _: () = {
    assert!(H5Z_DEEPCQ_FILTER_ID == wire::FILTER_ID);
    assert!(H5Z_DEEPCQ_CD_MAX == user_cd::MAX_LEN);
    assert!(H5Z_DEEPCQ_FLOAT32 == DType::F32 as c_uint);
    assert!(H5Z_DEEPCQ_FLOAT64 == DType::F64 as c_uint);
    assert!(H5Z_DEEPCQ_OPAQUE == DType::Opaque as c_uint);
    assert!(H5Z_DEEPCQ_PSNR == TargetKind::Psnr as c_uint);
    assert!(H5Z_DEEPCQ_SSIM == TargetKind::Ssim as c_uint);
    assert!(H5Z_DEEPCQ_RATIO == TargetKind::Ratio as c_uint);
    assert!(H5Z_DEEPCQ_ABS == TargetKind::AbsBound as c_uint);
    assert!(H5Z_DEEPCQ_AUTO == CompressorChoice::Auto as c_uint);
    assert!(H5Z_DEEPCQ_SZ3 == CompressorChoice::Sz3 as c_uint);
    assert!(H5Z_DEEPCQ_SZ3 == CodecId::Sz3 as c_uint);
    assert!(H5Z_DEEPCQ_ZFP == CompressorChoice::Zfp as c_uint);
    assert!(H5Z_DEEPCQ_ZFP == CodecId::Zfp as c_uint);
    assert!(H5Z_DEEPCQ_SPERR == CompressorChoice::Sperr as c_uint);
    assert!(H5Z_DEEPCQ_SPERR == CodecId::Sperr as c_uint);
    assert!(H5Z_DEEPCQ_LOSSLESS == CodecId::Lossless as c_uint);
    assert!(H5Z_DEEPCQ_GUARANTEE == Mode::Guarantee as c_uint);
    assert!(H5Z_DEEPCQ_PREDICT == Mode::Predict as c_uint);
    assert!(H5Z_DEEPCQ_FAST == Mode::Fast as c_uint);
    assert!(H5Z_DEEPCQ_FLAG_ANALYTIC_FALLBACK == wire::flags::ALLOW_ANALYTIC_FALLBACK);
    assert!(H5Z_DEEPCQ_SOURCE_MEASURED == insitu::AdviceSource::Measured as c_uint);
    assert!(H5Z_DEEPCQ_SOURCE_MODEL == insitu::AdviceSource::Model as c_uint);
};

// ---- types ----------------------------------------------------------------------------

/// What one compression did (`h5z_deepcq_report` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct H5zDeepcqReport {
    /// Codec of the payload (`H5Z_DEEPCQ_SZ3`, ..., `H5Z_DEEPCQ_LOSSLESS`).
    pub codec: c_uint,
    /// Compressions spent, guarantee-mode retries included.
    pub compressions: c_uint,
    /// 1 when the decoded chunk meets the target over the whole buffer, else 0. With a
    /// missing value in the settings, PSNR is measured over the values it does not mark and
    /// SSIM on the buffer with each replaced by the last real value before it.
    pub target_met: c_int,
    /// Absolute error bound given to the codec (0 for lossless).
    pub bound: f64,
    /// The target's metric measured on the decoded chunk (dB for PSNR targets).
    pub metric: f64,
    /// PSNR of the decoded chunk in dB (SZ convention; over the real values with a missing
    /// value); +inf when exact.
    pub psnr: f64,
    /// Compression ratio: input bytes / chunk bytes (header included).
    pub ratio: f64,
    /// Natural log of the factor a session applied to the proposer's bound (0 = none).
    pub correction: f64,
}

/// Predict-only advice (`h5z_deepcq_advice` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct H5zDeepcqAdvice {
    /// Codec the chooser proposes.
    pub codec: c_uint,
    /// `H5Z_DEEPCQ_SOURCE_MEASURED` (compressed once and measured) or `_MODEL`.
    pub source: c_uint,
    /// Compressions spent producing the advice.
    pub compressions: c_uint,
    /// Absolute error bound the chooser proposes.
    pub bound: f64,
    /// PSNR in dB of that choice (with a missing value in the settings, measured over the
    /// values it does not mark).
    pub psnr: f64,
    /// SSIM of that choice (with a missing value, on the buffer with each replaced by the
    /// last real value before it).
    pub ssim: f64,
    /// Compression ratio of that choice.
    pub ratio: f64,
}

/// Counters of a session (`h5z_deepcq_session_stats_t` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct H5zDeepcqSessionStats {
    /// Steps compressed.
    pub steps: u64,
    /// Compressions spent over all steps.
    pub compressions: u64,
    /// Steps whose decoded chunk missed the target.
    pub misses: u64,
}

/// A per-variable in-situ session (opaque `h5z_deepcq_session` in C). Thread-safe.
pub struct H5zDeepcqSession {
    inner: Session,
    /// The dataset a stored form names, whose type every step must match.
    dataset: Option<DatasetType>,
}

// The header promises sessions may be shared between threads; C cannot check it, so the
// build does.
const _: () = {
    const fn thread_safe<T: Send + Sync>() {}
    thread_safe::<H5zDeepcqSession>()
};

// ---- the boundary ---------------------------------------------------------------------

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // A thread that is exiting has no message to keep; nothing to report it to either.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = message);
}

/// The status code of each error class.
fn status_of(error: &InsituError) -> c_int {
    match error {
        InsituError::InvalidArgument(_) => H5Z_DEEPCQ_ERR_INVALID_ARGUMENT,
        InsituError::Settings(_) => H5Z_DEEPCQ_ERR_SETTINGS,
        InsituError::BufferTooSmall { .. } => H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL,
        InsituError::Chunk(_) => H5Z_DEEPCQ_ERR_CORRUPT,
        InsituError::Select(_) => H5Z_DEEPCQ_ERR_COMPRESS,
        InsituError::Hdf5(_) => H5Z_DEEPCQ_ERR_HDF5,
        InsituError::OutOfMemory(_) => H5Z_DEEPCQ_ERR_OUT_OF_MEMORY,
    }
}

/// Runs `body` with the last error cleared; maps its error or panic to a status code and
/// the thread's message.
fn guard(body: impl FnOnce() -> Result<(), InsituError>) -> c_int {
    let run = || {
        crate::observe::init();
        set_last_error(String::new());
        body()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => H5Z_DEEPCQ_OK,
        Ok(Err(error)) => {
            set_last_error(error.to_string());
            status_of(&error)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_last_error(format!("internal error (please report): {what}"));
            H5Z_DEEPCQ_ERR_INTERNAL
        }
    }
}

/// [`guard`] for a call that delivers its chunk into memory it allocates
/// ([`deliver_alloc`]): a failure after the chunk was delivered (in what a session does
/// after it, or a caught panic there) releases it, so every failed call leaves `*out` NULL
/// and nothing for the caller to free, as the header promises.
///
/// # Safety
/// `out`, when not NULL, is writable.
unsafe fn guard_delivering(
    out: *mut *mut c_void,
    body: impl FnOnce() -> Result<(), InsituError>,
) -> c_int {
    if out.is_null() {
        return guard(body);
    }
    // SAFETY: not NULL, and the caller passes a writable pointer. Set first, outside the
    // body, so that a pointer found there after a failure can only be the delivered one.
    unsafe { *out = std::ptr::null_mut() };
    let status = guard(body);
    if status != H5Z_DEEPCQ_OK {
        // SAFETY: NULL or deliver_alloc's malloc, which the caller has not seen.
        unsafe {
            libc::free(*out);
            *out = std::ptr::null_mut();
        }
    }
    status
}

fn invalid(message: impl Into<String>) -> InsituError {
    InsituError::InvalidArgument(message.into())
}

/// Sets a non-NULL `*out` to NULL, so that a call that fails leaves the caller no stale
/// pointer to free (a Fortran loop freeing on its error path would free the last step's
/// chunk again); then fails before any work is done when an output pointer is NULL, so a
/// bad call neither costs a compression nor advances a session.
///
/// # Safety
/// `out`, when given and not NULL, is writable.
unsafe fn require_out(
    out_len: *mut usize,
    out: Option<*mut *mut c_void>,
) -> Result<(), InsituError> {
    if let Some(out) = out.filter(|p| !p.is_null()) {
        // SAFETY: not NULL, and the caller passes a writable pointer.
        unsafe { *out = std::ptr::null_mut() };
    }
    if out_len.is_null() || out.is_some_and(|p| p.is_null()) {
        return Err(invalid("out or out_len is NULL"));
    }
    Ok(())
}

/// Borrows `*ptr` for writing, or fails naming the argument.
unsafe fn out_ref<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, InsituError> {
    // SAFETY: a non-NULL pointer from C is taken to point to a writable T.
    unsafe { ptr.as_mut() }.ok_or_else(|| invalid(format!("{name} is NULL")))
}

/// Borrows the caller's chunk bytes `chunk[len]`.
unsafe fn chunk_bytes<'a>(chunk: *const c_void, len: usize) -> Result<&'a [u8], InsituError> {
    if chunk.is_null() {
        return Err(invalid("chunk is NULL"));
    }
    // No buffer is longer: a length above it is a caller's mistake (-1 as size_t).
    if len > isize::MAX as usize {
        return Err(invalid(format!("chunk length {len} is not a buffer's")));
    }
    // SAFETY: the caller passes `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(chunk as *const u8, len) })
}

/// More cd_values than any form of them holds (a user form at most 8 words, a stored
/// form's header, chunk dims and fill value under 50).
const MAX_CD_VALUES: usize = 1024;

/// Reads the caller's settings words.
unsafe fn settings_from(cd: *const c_uint, n: usize) -> Result<BufferSettings, InsituError> {
    if cd.is_null() {
        return Err(invalid("cd_values is NULL"));
    }
    // Far more than any user or stored form holds, and short of a length that no buffer
    // has (-1 as size_t).
    if n > MAX_CD_VALUES {
        return Err(invalid(format!(
            "{n} cd_values: no form of them has more than {MAX_CD_VALUES}"
        )));
    }
    // SAFETY: the caller passes `n` readable words.
    let words = unsafe { std::slice::from_raw_parts(cd, n) };
    Ok(crate::settings::parse_for_buffers(words)?)
}

/// The fix named when a stored form refuses a buffer.
const USER_CD_VALUES: &str = "build user cd_values with h5z_deepcq_cd_values";

/// Refuses the stored form of a dataset of non-float values: the in-situ API compresses
/// f32 and f64 buffers only, so every call with it would fail.
fn check_float_dataset(dataset: Option<&DatasetType>) -> Result<(), InsituError> {
    match dataset {
        Some(d) if d.dtype == DType::Opaque => Err(invalid(format!(
            "cd_values are the stored form of a dataset of non-float values, which the \
             filter stores losslessly: the in-situ API compresses f32 or f64 buffers \
             ({USER_CD_VALUES})"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a buffer whose element type is not that of the dataset a stored form names:
/// its chunk, written with `H5Dwrite_chunk`, would decode to values of the wrong size
/// (which the filter refuses on read).
fn check_dataset_type(dataset: Option<&DatasetType>, samples: &Samples) -> Result<(), InsituError> {
    check_float_dataset(dataset)?;
    match dataset {
        Some(d) if d.dtype != samples.dtype() => Err(invalid(format!(
            "cd_values are the stored form of a dataset of {} values and the buffer holds \
             {}: its chunks would not read back through that dataset (pass buffers of the \
             dataset's type, or {USER_CD_VALUES})",
            d.dtype.name(),
            samples.dtype().name()
        ))),
        _ => Ok(()),
    }
}

/// Compresses `samples` (of C-order `shape`) with `compress` into a chunk for the dataset
/// a stored form names (none for user cd_values): [`check_for`], then [`marked_for`].
fn compress_for<'a, R>(
    dataset: Option<&DatasetType>,
    samples: Samples<'a>,
    shape: &[usize],
    compress: impl FnOnce(Samples<'a>) -> Result<(Vec<u8>, R), InsituError>,
) -> Result<(Vec<u8>, R), InsituError> {
    check_for(dataset, &samples, shape)?;
    let (chunk, r) = compress(samples)?;
    Ok((marked_for(dataset, &chunk)?.unwrap_or(chunk), r))
}

/// The most dims a codec keeps (SZ3 and ZFP; SPERR three): shapes that fold to the same
/// dims ([`crate::samples::fit_rank`]) are compressed alike.
const CODEC_RANK: usize = 4;

/// Refuses, before any work, a buffer of another type, size or shape than the chunks of
/// the dataset a stored form names. Shapes are compared as the codecs fold them (dims of
/// one left out, the slowest merged down to four: a 100 × 100 buffer for chunks of 1 ×
/// 100 × 100 is fine); dims in another order are not (a Fortran caller's, fastest first,
/// would be compressed along the wrong axes).
fn check_for(
    dataset: Option<&DatasetType>,
    samples: &Samples<'_>,
    shape: &[usize],
) -> Result<(), InsituError> {
    check_dataset_type(dataset, samples)?;
    let Some(d) = dataset else {
        return Ok(());
    };
    let chunk_len = crate::samples::element_count(&d.chunk).unwrap_or(usize::MAX);
    if chunk_len != samples.len() {
        return Err(invalid(format!(
            "cd_values are the stored form of a dataset whose chunks hold {chunk_len} values \
             and the buffer holds {}: its chunk would not read back through that dataset \
             (pass whole chunks, edge chunks padded to the chunk dims as H5Dwrite_chunk \
             takes them, or {USER_CD_VALUES})",
            samples.len()
        )));
    }
    let folded = |dims: &[usize]| crate::samples::fit_rank(dims, CODEC_RANK);
    if folded(shape) != folded(&d.chunk) {
        return Err(invalid(format!(
            "dims {shape:?} are not the chunk dims {:?} of the dataset the stored cd_values \
             name: dims go slowest first, as in C (a Fortran caller passes its array's \
             dims reversed), or {USER_CD_VALUES}",
            d.chunk
        )));
    }
    Ok(())
}

/// `chunk` as the dataset a stored form names stores it: a big-endian dataset's chunk says
/// so, as the filter's own do, so that reading swaps the (native, little-endian) values
/// into the file's order. `None` where `chunk` is stored as it is (no copy).
fn marked_for(dataset: Option<&DatasetType>, chunk: &[u8]) -> Result<Option<Vec<u8>>, InsituError> {
    match dataset {
        Some(d) if d.big_endian => Ok(Some(crate::chunk::marked_big_endian(chunk)?)),
        _ => Ok(None),
    }
}

/// Views the caller's values as typed samples of C-order `dims`.
unsafe fn samples_from<'a>(
    data: *const c_void,
    dtype: c_uint,
    dims: *const usize,
    rank: usize,
) -> Result<(Samples<'a>, Vec<usize>), InsituError> {
    if data.is_null() || dims.is_null() {
        return Err(invalid("data or dims is NULL"));
    }
    if rank == 0 || rank > wire::MAX_RANK {
        return Err(invalid(format!(
            "rank {rank} is not in 1..={}",
            wire::MAX_RANK
        )));
    }
    // SAFETY: the caller passes `rank` readable dims.
    let shape = unsafe { std::slice::from_raw_parts(dims, rank) }.to_vec();
    let count = crate::samples::element_count(&shape)
        .filter(|&n| n > 0 && n <= wire::MAX_ORIGINAL_LEN as usize)
        .ok_or_else(|| invalid(format!("dims {shape:?} give no or too many elements")))?;
    let (size, align) = match dtype {
        H5Z_DEEPCQ_FLOAT32 => (4, std::mem::align_of::<f32>()),
        H5Z_DEEPCQ_FLOAT64 => (8, std::mem::align_of::<f64>()),
        other => {
            return Err(invalid(format!(
                "dtype {other}: use H5Z_DEEPCQ_FLOAT32 (1) or H5Z_DEEPCQ_FLOAT64 (2)"
            )))
        }
    };
    let too_big = match count.checked_mul(size) {
        Some(bytes) => bytes > wire::MAX_ORIGINAL_LEN as usize,
        None => true,
    };
    if too_big {
        return Err(invalid(format!("dims {shape:?} exceed 4 GiB")));
    }
    if !(data as usize).is_multiple_of(align) {
        return Err(invalid(format!("data is not aligned to {align} bytes")));
    }
    // SAFETY: the caller passes `count` readable, aligned elements of `dtype`.
    let samples = unsafe {
        if dtype == H5Z_DEEPCQ_FLOAT32 {
            Samples::F32(std::slice::from_raw_parts(data as *const f32, count))
        } else {
            Samples::F64(std::slice::from_raw_parts(data as *const f64, count))
        }
    };
    Ok((samples, shape))
}

/// Copies `bytes` into memory the caller releases with [`h5z_deepcq_free`].
unsafe fn deliver_alloc(
    bytes: &[u8],
    out: *mut *mut c_void,
    out_len: *mut usize,
) -> Result<(), InsituError> {
    let out = out_ref(out, "out")?;
    let out_len = out_ref(out_len, "out_len")?;
    // SAFETY: plain allocation; freed by h5z_deepcq_free (free).
    let fresh = unsafe { libc::malloc(bytes.len().max(1)) };
    if fresh.is_null() {
        return Err(InsituError::OutOfMemory(bytes.len()));
    }
    // SAFETY: `fresh` holds at least `bytes.len()` bytes and does not overlap `bytes`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), fresh as *mut u8, bytes.len()) };
    *out = fresh;
    *out_len = bytes.len();
    Ok(())
}

/// Copies `bytes` into the caller's buffer of `capacity` bytes; `*out_len` always receives
/// the size, so a too-small buffer tells the caller what to allocate.
unsafe fn deliver_into(
    bytes: &[u8],
    out: *mut c_void,
    capacity: usize,
    out_len: *mut usize,
) -> Result<(), InsituError> {
    if out.is_null() || capacity < bytes.len() {
        return deliver_size(bytes.len(), out, capacity, out_len);
    }
    *out_ref(out_len, "out_len")? = bytes.len();
    // SAFETY: the caller's buffer holds `capacity` ≥ `bytes.len()` writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out as *mut u8, bytes.len()) };
    Ok(())
}

/// Tells the caller, whose buffer `out` of `capacity` bytes is NULL or too small, that
/// `needed` bytes are: in `*out_len`, and as the error.
unsafe fn deliver_size(
    needed: usize,
    out: *mut c_void,
    capacity: usize,
    out_len: *mut usize,
) -> Result<(), InsituError> {
    *out_ref(out_len, "out_len")? = needed;
    Err(InsituError::BufferTooSmall {
        needed,
        capacity: if out.is_null() { 0 } else { capacity },
        unit: "bytes",
    })
}

unsafe fn write_report(report: Option<&Report>, out: *mut H5zDeepcqReport) {
    let (Some(r), Some(out)) = (report, unsafe { out.as_mut() }) else {
        return;
    };
    *out = H5zDeepcqReport {
        codec: r.codec as c_uint,
        compressions: r.compressions,
        target_met: c_int::from(r.target_met),
        bound: r.bound,
        metric: r.metric,
        psnr: r.psnr,
        ratio: r.ratio,
        correction: r.correction,
    };
}

unsafe fn session_ref<'a>(
    session: *const H5zDeepcqSession,
) -> Result<&'a H5zDeepcqSession, InsituError> {
    // SAFETY: a non-NULL session comes from h5z_deepcq_session_new and is not yet freed.
    unsafe { session.as_ref() }.ok_or_else(|| invalid("session is NULL"))
}

// ---- functions ------------------------------------------------------------------------

/// The library version, e.g. "0.1.0" (a static string; do not free).
#[no_mangle]
pub extern "C" fn h5z_deepcq_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// The HDF5 filter id (`H5Z_DEEPCQ_FILTER_ID`).
#[no_mangle]
pub extern "C" fn h5z_deepcq_filter_id() -> c_uint {
    wire::FILTER_ID
}

/// Copies the message of the calling thread's latest failed call into `buf` (at most
/// `len` bytes, NUL included) and returns the message's full length. Empty after a call
/// that returns a status and succeeded (`h5z_deepcq_free`, `h5z_deepcq_session_free`,
/// `h5z_deepcq_version` and `h5z_deepcq_filter_id` leave it as it was). `buf` may be NULL
/// to ask for the length.
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let message = e.borrow();
            let bytes = message.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = bytes.len().min(len - 1);
                // SAFETY: the caller's buffer holds `len` > n bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
                    *buf.add(n) = 0;
                }
            }
            bytes.len()
        })
    })
    .unwrap_or(0)
}

/// Registers the filter with the HDF5 library the program is linked to, so it works
/// without `HDF5_PLUGIN_PATH` (like `H5Z_zfp_initialize`); with every copy loaded, where
/// there are several (Python wheels each bundle one). Safe to call more than once: each
/// call registers it with every copy loaded, those loaded since (a host that embeds Python
/// and imports h5py after registering calls it again) and those that forgot it when
/// `H5close` ended them (Fortran codes that call `h5close_f` after each output step call it
/// again after `h5open_f`), and succeeds once any copy has it. A program that links HDF5
/// statically must export its symbols (`-Wl,--export-dynamic`, or `h5cc -shlib`).
#[no_mangle]
pub extern "C" fn h5z_deepcq_register() -> c_int {
    // One registration at a time: HDF5 builds without thread safety (h5py's) must not see
    // two threads changing their filter table at once.
    static REGISTERING: Mutex<()> = Mutex::new(());
    guard(|| {
        let _one = REGISTERING.lock().unwrap_or_else(|e| e.into_inner());
        let class = &crate::h5::plugin::FILTER_CLASS as *const _ as *const c_void;
        let (mut registered, mut failed) = (false, None);
        // HDF5 replaces a filter registered before, so registering anew is harmless.
        for api in crate::h5::api::every_api().map_err(InsituError::Hdf5)? {
            // SAFETY: FILTER_CLASS is a static H5Z_class2_t.
            match unsafe { api.register_filter(class) } {
                Ok(()) => registered = true,
                Err(e) => failed = Some(e),
            }
        }
        match (registered, failed) {
            (false, Some(e)) => Err(InsituError::Hdf5(e)),
            _ => Ok(()),
        }
    })
}

/// Builds the cd_values for `H5Pset_filter` (and for every settings argument here):
/// target `target` of `kind` (`H5Z_DEEPCQ_PSNR`, ...), `compressor` (`H5Z_DEEPCQ_AUTO`,
/// ...), `mode` (`H5Z_DEEPCQ_GUARANTEE`, `_PREDICT` or `_FAST`) and `flags` (bit 0, the
/// analytic fallback; bit 1 is refused: `h5z_deepcq_cd_values_missing` sets it with its
/// value). `*n` holds the capacity of `cd_values` on entry (`H5Z_DEEPCQ_CD_MAX` always
/// suffices) and the number of words written on return.
///
/// # Safety
/// `n` points to a `size_t`; `cd_values` is NULL or holds `*n` words.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_cd_values(
    kind: c_uint,
    target: f64,
    compressor: c_uint,
    mode: c_uint,
    flags: c_uint,
    cd_values: *mut c_uint,
    n: *mut usize,
) -> c_int {
    guard(|| {
        let settings = typed_settings(kind, target, compressor, mode, flags)?;
        write_cd(&settings, cd_values, n)
    })
}

/// [`h5z_deepcq_cd_values`] with `missing` marking missing data: values equal to it (every
/// NaN for a NaN) are stored exactly and left out of a PSNR target, as a dataset's fill
/// value is in the filter (land in an ocean field, gaps in a swath: the README's "Missing
/// values"). For f32 buffers it is rounded to the nearest f32, and a value that rounding
/// moves by more than a millionth (beyond ±3.4e38, or below about 1e-39) is refused when
/// such a buffer is compressed. Writes `H5Z_DEEPCQ_CD_MAX` (8) words: flags bit 1 and the
/// value's bits. Without a missing value, a buffer's NaN (or +Inf, or −Inf) marks itself
/// the same way; a buffer holding two of the missing value, NaN, +Inf and −Inf is stored
/// exactly.
///
/// # Safety
/// As [`h5z_deepcq_cd_values`].
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_cd_values_missing(
    kind: c_uint,
    target: f64,
    compressor: c_uint,
    mode: c_uint,
    flags: c_uint,
    missing: f64,
    cd_values: *mut c_uint,
    n: *mut usize,
) -> c_int {
    guard(|| {
        let flags = flags & !wire::flags::MISSING_VALUE;
        let settings = typed_settings(kind, target, compressor, mode, flags)?;
        write_cd(&settings.with_missing(missing), cd_values, n)
    })
}

/// The settings the arguments of [`h5z_deepcq_cd_values`] name, validated.
fn typed_settings(
    kind: c_uint,
    target: f64,
    compressor: c_uint,
    mode: c_uint,
    flags: c_uint,
) -> Result<Settings, InsituError> {
    let kind = TargetKind::from_u32(kind).ok_or(SettingsError::BadSlot {
        slot: user_cd::KIND,
        what: "kind",
        value: kind,
        hint: "0 = PSNR dB, 1 = SSIM, 2 = compression ratio, 3 = absolute bound",
    })?;
    let t = Target::from_value(kind, target)?;
    let mut words = [0; user_cd::PLAIN_LEN];
    words[user_cd::TARGET] = t.mantissa;
    words[user_cd::KIND] = kind as u32;
    words[user_cd::DECIMALS] = t.decimals;
    words[user_cd::COMPRESSOR] = compressor;
    words[user_cd::MODE] = mode;
    if flags & wire::flags::MISSING_VALUE != 0 {
        return Err(SettingsError::BadSlot {
            slot: user_cd::FLAGS,
            what: "flags",
            value: flags,
            hint: "bit 1 (a missing value) is set by h5z_deepcq_cd_values_missing, which takes the value",
        }
        .into());
    }
    words[user_cd::FLAGS] = flags;
    Ok(Settings::parse(&words)?)
}

/// Writes the user form of `settings` to the caller's `cd_values` of capacity `*n`.
///
/// # Safety
/// `n` points to a `size_t`; `cd_values` is NULL or holds `*n` words.
unsafe fn write_cd(
    settings: &Settings,
    cd_values: *mut c_uint,
    n: *mut usize,
) -> Result<(), InsituError> {
    let n = out_ref(n, "n")?;
    let cd = settings.to_user_cd();
    let capacity = *n;
    *n = cd.len();
    if cd_values.is_null() || capacity < cd.len() {
        return Err(InsituError::BufferTooSmall {
            needed: cd.len(),
            capacity: if cd_values.is_null() { 0 } else { capacity },
            unit: "words",
        });
    }
    // SAFETY: the caller's array holds `capacity` ≥ cd.len() words.
    unsafe { std::ptr::copy_nonoverlapping(cd.as_ptr(), cd_values, cd.len()) };
    Ok(())
}

/// Predict-only advice for `data` (`dtype` values of C-order `dims[rank]`) under the
/// settings `cd_values[n_cd]`: the codec and bound the chooser proposes and the PSNR,
/// SSIM and ratio they are expected to give (within the model's calibrated margins, where
/// a predict-mode write may aim closer and then measure). With the surrogate loaded these
/// are its predictions and nothing is compressed (`source = H5Z_DEEPCQ_SOURCE_MODEL`; for a
/// buffer ending in constant slabs, which the write trims, the predictions are for the
/// block before them, which it aims at); for absolute bounds, NaN/Inf left after trimming
/// or constant buffers, a missing value in the settings, under the opted-in analytic
/// fallback, for ratio targets on 2-D and 3-D buffers (met by
/// SPERR's fixed-rate mode, not by the model) and for a PSNR target the buffer's mean
/// alone meets (stored by SPERR beyond its range, not by the model's choice), the
/// proposal is compressed once and measured
/// (`source = H5Z_DEEPCQ_SOURCE_MEASURED`).
/// Nothing is written anywhere.
///
/// # Safety
/// `data` holds the product of `dims[rank]` aligned elements of `dtype`; `cd_values` holds `n_cd` words; `advice` is writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_advise(
    data: *const c_void,
    dtype: c_uint,
    dims: *const usize,
    rank: usize,
    cd_values: *const c_uint,
    n_cd: usize,
    advice: *mut H5zDeepcqAdvice,
) -> c_int {
    guard(|| {
        let out = out_ref(advice, "advice")?;
        let BufferSettings { settings, dataset } = settings_from(cd_values, n_cd)?;
        let (samples, shape) = samples_from(data, dtype, dims, rank)?;
        check_dataset_type(dataset.as_ref(), &samples)?;
        let a: Advice = insitu::advise(samples, &shape, &settings)?;
        *out = H5zDeepcqAdvice {
            codec: a.codec as c_uint,
            source: a.source as c_uint,
            compressions: a.compressions,
            bound: a.bound,
            psnr: a.psnr,
            ssim: a.ssim,
            ratio: a.ratio,
        };
        Ok(())
    })
}

/// Compresses `data` to the target into a self-describing chunk the library allocates:
/// `*out` (release with `h5z_deepcq_free`) of `*out_len` bytes, NULL when the call fails
/// (a non-NULL `out` is always written). `report` may be NULL;
/// when given, it is measured on the decoded chunk (for a PSNR target in guarantee or
/// fast mode, the chooser's own decode of the payload the chunk holds). With a dataset's
/// stored cd_values (for `H5Dwrite_chunk`), `dtype` must be the dataset's, the buffer must
/// hold a whole chunk of it (edge chunks padded to the chunk dims), and a big-endian
/// dataset's chunk is marked so that HDF5 reads it back in the file's order.
///
/// # Safety
/// as `h5z_deepcq_advise` for the inputs; `out`, `out_len` and (unless NULL) `report` are writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_compress(
    data: *const c_void,
    dtype: c_uint,
    dims: *const usize,
    rank: usize,
    cd_values: *const c_uint,
    n_cd: usize,
    out: *mut *mut c_void,
    out_len: *mut usize,
    report: *mut H5zDeepcqReport,
) -> c_int {
    guard_delivering(out, || {
        require_out(out_len, Some(out))?;
        let BufferSettings { settings, dataset } = settings_from(cd_values, n_cd)?;
        let (samples, shape) = samples_from(data, dtype, dims, rank)?;
        let (bytes, r) = compress_for(dataset.as_ref(), samples, &shape, |s| {
            insitu::compress(s, &shape, &settings, !report.is_null())
        })?;
        deliver_alloc(&bytes, out, out_len)?;
        write_report(r.as_ref(), report);
        Ok(())
    })
}

/// As `h5z_deepcq_compress`, into the caller's buffer `out` of `capacity` bytes. A NULL
/// or too-small buffer gets `H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL` with the size needed in
/// `*out_len` (and the report, as a session's call gives it).
///
/// # Safety
/// as `h5z_deepcq_advise` for the inputs; `out` is NULL or holds `capacity` writable bytes; `out_len` and (unless NULL) `report` are writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_compress_into(
    data: *const c_void,
    dtype: c_uint,
    dims: *const usize,
    rank: usize,
    cd_values: *const c_uint,
    n_cd: usize,
    out: *mut c_void,
    capacity: usize,
    out_len: *mut usize,
    report: *mut H5zDeepcqReport,
) -> c_int {
    guard(|| {
        require_out(out_len, None)?;
        let BufferSettings { settings, dataset } = settings_from(cd_values, n_cd)?;
        let (samples, shape) = samples_from(data, dtype, dims, rank)?;
        let (bytes, r) = compress_for(dataset.as_ref(), samples, &shape, |s| {
            insitu::compress(s, &shape, &settings, !report.is_null())
        })?;
        write_report(r.as_ref(), report);
        deliver_into(&bytes, out, capacity, out_len)
    })
}

/// Reads a chunk's header (checksum verified, nothing decoded): its `*dtype`
/// (`H5Z_DEEPCQ_FLOAT32`, `H5Z_DEEPCQ_FLOAT64`, or `H5Z_DEEPCQ_OPAQUE` for bytes of another
/// type the filter kept exactly), its rank in `*rank` (capacity of `dims` on entry), its
/// C-order `dims`, and the decoded size in `*nbytes`. `dims` NULL or shorter than the rank
/// gives `H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL`, with `*rank`, `*dtype` and `*nbytes` set; a
/// NULL `rank`, `dtype` or `nbytes` gives `H5Z_DEEPCQ_ERR_INVALID_ARGUMENT`, nothing written.
///
/// # Safety
/// `chunk` holds `len` readable bytes; `rank` points to the capacity of `dims`; `dtype`, `nbytes` are writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_chunk_info(
    chunk: *const c_void,
    len: usize,
    dtype: *mut c_uint,
    dims: *mut usize,
    rank: *mut usize,
    nbytes: *mut usize,
) -> c_int {
    guard(|| {
        // Every out-pointer is checked before the chunk is read and any is written, so a
        // refused call leaves them all as they were, and a NULL one is the error whatever
        // the chunk; each is borrowed only while written (a caller may pass one pointer
        // twice).
        for (null, name) in [
            (rank.is_null(), "rank"),
            (dtype.is_null(), "dtype"),
            (nbytes.is_null(), "nbytes"),
        ] {
            if null {
                return Err(invalid(format!("{name} is NULL")));
            }
        }
        let bytes = chunk_bytes(chunk, len)?;
        let (header, _) = crate::chunk::parse(bytes)?;
        let capacity = *out_ref(rank, "rank")?;
        let shape = &header.layout.shape;
        *out_ref(rank, "rank")? = shape.len();
        *out_ref(dtype, "dtype")? = header.layout.dtype as c_uint;
        *out_ref(nbytes, "nbytes")? = header.original_len as usize;
        if dims.is_null() || capacity < shape.len() {
            return Err(InsituError::BufferTooSmall {
                needed: shape.len(),
                capacity: if dims.is_null() { 0 } else { capacity },
                unit: "dims entries",
            });
        }
        // SAFETY: the caller's dims array holds `capacity` ≥ rank entries.
        unsafe { std::ptr::copy_nonoverlapping(shape.as_ptr(), dims, shape.len()) };
        Ok(())
    })
}

/// Decodes chunk bytes `chunk[len]` into the caller's buffer `out` of `capacity` bytes;
/// `*out_len` receives the decoded size (see `h5z_deepcq_chunk_info` to size `out`). A
/// NULL or too small `out` gets `H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL` from the header alone,
/// before anything is decoded or allocated. A chunk of values other than f32 or f64
/// (`H5Z_DEEPCQ_OPAQUE` from `h5z_deepcq_chunk_info`: the filter's lossless copy of a
/// non-float dataset's chunk) gets `H5Z_DEEPCQ_ERR_INVALID_ARGUMENT`; HDF5 reads it.
///
/// # Safety
/// `chunk` holds `len` readable bytes; `out` is NULL or holds `capacity` writable bytes; `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_decompress(
    chunk: *const c_void,
    len: usize,
    out: *mut c_void,
    capacity: usize,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        let bytes = chunk_bytes(chunk, len)?;
        if out_len.is_null() {
            return Err(invalid("out_len is NULL"));
        }
        // The header says the size: a buffer too small for it costs no decode, and a
        // crafted header cannot make this call decode more than the caller holds (the
        // codecs' work buffers scale with it: SZ3's stage may ask for 8 times it and 16
        // MiB, docs/format.md, SPERR's rate mode 8 times an f32 chunk, src/codec/sperr.rs).
        let needed = insitu::decoded_len(bytes)?;
        if out.is_null() || capacity < needed {
            return deliver_size(needed, out, capacity, out_len);
        }
        let (values, _) = insitu::decompress(bytes)?;
        let raw: &[u8] = match &values {
            SampleBuf::F32(v) => bytemuck::cast_slice(v),
            SampleBuf::F64(v) => bytemuck::cast_slice(v),
            SampleBuf::Opaque(b) => b,
        };
        deliver_into(raw, out, capacity, out_len)
    })
}

/// Creates a session for one variable under the settings `cd_values[n_cd]`. `options`:
/// 0, or `H5Z_DEEPCQ_SESSION_NO_ADAPT`. Under a PSNR or SSIM target the session learns
/// from each step's measured error and corrects the next proposal (under ratio and
/// absolute-bound targets every step is independent, as with the option); it may be used
/// from several threads at once.
/// Release it with `h5z_deepcq_session_free`. `*session` is NULL when the call fails,
/// as it does for the stored cd_values of a dataset of non-float values (every step would
/// be refused).
///
/// # Safety
/// `cd_values` holds `n_cd` words; `session` is writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_session_new(
    cd_values: *const c_uint,
    n_cd: usize,
    options: c_uint,
    session: *mut *mut H5zDeepcqSession,
) -> c_int {
    guard(|| {
        let out = out_ref(session, "session")?;
        // NULL unless the session is made: no stale handle for the caller to free.
        *out = std::ptr::null_mut();
        let BufferSettings { settings, dataset } = settings_from(cd_values, n_cd)?;
        if options & !H5Z_DEEPCQ_SESSION_NO_ADAPT != 0 {
            return Err(invalid(format!("unknown session options {options:#x}")));
        }
        let adapt = options & H5Z_DEEPCQ_SESSION_NO_ADAPT == 0;
        // Refused at setup, not at the first output step.
        check_float_dataset(dataset.as_ref())?;
        *out = Box::into_raw(Box::new(H5zDeepcqSession {
            inner: Session::new(settings, adapt),
            dataset,
        }));
        Ok(())
    })
}

/// Compresses one timestep through a session into a library-allocated chunk (release
/// with `h5z_deepcq_free`; `*out` is NULL when the call fails). Every step is measured on
/// its decoded values, as `h5z_deepcq_compress` measures its report; `report` may be
/// NULL. A chunk that cannot be allocated (`H5Z_DEEPCQ_ERR_OUT_OF_MEMORY`) does not count
/// as a step: the session learns nothing from it.
///
/// # Safety
/// `session` comes from `h5z_deepcq_session_new` and is not freed; inputs and outputs as for `h5z_deepcq_compress`.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_session_compress(
    session: *const H5zDeepcqSession,
    data: *const c_void,
    dtype: c_uint,
    dims: *const usize,
    rank: usize,
    out: *mut *mut c_void,
    out_len: *mut usize,
    report: *mut H5zDeepcqReport,
) -> c_int {
    guard_delivering(out, || {
        require_out(out_len, Some(out))?;
        let session = session_ref(session)?;
        let (samples, shape) = samples_from(data, dtype, dims, rank)?;
        check_for(session.dataset.as_ref(), &samples, &shape)?;
        // Delivered before the session counts or learns the step: a chunk the caller
        // never gets (its allocation failed) is no step.
        session
            .inner
            .compress_delivering(samples, &shape, |bytes, r| {
                let marked = marked_for(session.dataset.as_ref(), bytes)?;
                deliver_alloc(marked.as_deref().unwrap_or(bytes), out, out_len)?;
                write_report(Some(r), report);
                Ok(())
            })?;
        Ok(())
    })
}

/// As `h5z_deepcq_session_compress`, into the caller's buffer `out` of `capacity` bytes.
/// A NULL or too-small buffer gets `H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL` with the size needed
/// in `*out_len` (and the report) and does not count as a step: the session learns
/// nothing from it, so the same call with a buffer of that size stores the same chunk
/// (unless another thread's step on the session came in between).
///
/// # Safety
/// `session` comes from `h5z_deepcq_session_new` and is not freed; inputs and outputs as for `h5z_deepcq_compress_into`.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_session_compress_into(
    session: *const H5zDeepcqSession,
    data: *const c_void,
    dtype: c_uint,
    dims: *const usize,
    rank: usize,
    out: *mut c_void,
    capacity: usize,
    out_len: *mut usize,
    report: *mut H5zDeepcqReport,
) -> c_int {
    guard(|| {
        require_out(out_len, None)?;
        let session = session_ref(session)?;
        let (samples, shape) = samples_from(data, dtype, dims, rank)?;
        check_for(session.dataset.as_ref(), &samples, &shape)?;
        session
            .inner
            .compress_delivering(samples, &shape, |bytes, r| {
                let marked = marked_for(session.dataset.as_ref(), bytes)?;
                let bytes = marked.as_deref().unwrap_or(bytes);
                write_report(Some(r), report);
                deliver_into(bytes, out, capacity, out_len)
            })?;
        Ok(())
    })
}

/// The session's counters so far.
///
/// # Safety
/// `session` comes from `h5z_deepcq_session_new` and is not freed; `stats` is writable.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_session_stats(
    session: *const H5zDeepcqSession,
    stats: *mut H5zDeepcqSessionStats,
) -> c_int {
    guard(|| {
        let s = session_ref(session)?.inner.stats();
        *out_ref(stats, "stats")? = H5zDeepcqSessionStats {
            steps: s.steps,
            compressions: s.compressions,
            misses: s.misses,
        };
        Ok(())
    })
}

/// Releases a session. NULL is ignored. No other thread may still be using it.
///
/// # Safety
/// `session` is NULL or comes from `h5z_deepcq_session_new`, is freed once, and no thread uses it any more.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_session_free(session: *mut H5zDeepcqSession) {
    if !session.is_null() {
        // SAFETY: the pointer came from Box::into_raw in h5z_deepcq_session_new.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(session) })));
    }
}

/// Releases memory the library allocated (`h5z_deepcq_compress` output). NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or was returned by this library and is freed once.
#[no_mangle]
pub unsafe extern "C" fn h5z_deepcq_free(ptr: *mut c_void) {
    // SAFETY: the pointer came from malloc in deliver_alloc (or is NULL).
    unsafe { libc::free(ptr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        let mut buf = [0 as c_char; 128];
        // SAFETY: buf holds 128 bytes.
        let n = unsafe { h5z_deepcq_last_error(buf.as_mut_ptr(), buf.len()) };
        let bytes: Vec<u8> = buf[..n.min(127)].iter().map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let status = guard(|| panic!("boom in a codec"));
        assert_eq!(status, H5Z_DEEPCQ_ERR_INTERNAL);
        assert!(message().contains("boom in a codec"), "{}", message());
        assert_eq!(guard(|| Ok(())), H5Z_DEEPCQ_OK);
        assert_eq!(message(), "");
    }

    #[test]
    fn every_error_class_has_its_own_negative_code() {
        let errors = [
            InsituError::InvalidArgument(String::new()),
            InsituError::Settings(SettingsError::WrongCount(0)),
            InsituError::BufferTooSmall {
                needed: 1,
                capacity: 0,
                unit: "bytes",
            },
            InsituError::Chunk(crate::chunk::ChunkError::BadMagic),
            InsituError::Select(crate::select::SelectError::Proposer(String::new())),
            InsituError::Hdf5(String::new()),
            InsituError::OutOfMemory(1),
        ];
        let mut codes: Vec<c_int> = errors.iter().map(status_of).collect();
        assert!(codes.iter().all(|&c| c < 0 && c != H5Z_DEEPCQ_ERR_INTERNAL));
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn a_failed_call_leaves_no_stale_pointer_to_free() {
        let values = [1.0f64, 2.0, 3.0, 4.0];
        let dims = [4usize];
        let data = values.as_ptr() as *const c_void;
        let (bad, cd) = ([c_uint::MAX; 3], [60 as c_uint]);
        // What a caller's variable held from its last step.
        let stale = std::ptr::NonNull::<u8>::dangling().as_ptr() as *mut c_void;
        let (mut out, mut len) = (stale, 0usize);
        let mut session = stale as *mut H5zDeepcqSession;
        // SAFETY: every pointer is valid for what the calls read and write.
        let (compressed, created) = unsafe {
            let compressed = h5z_deepcq_compress(
                data,
                H5Z_DEEPCQ_FLOAT64,
                dims.as_ptr(),
                1,
                bad.as_ptr(),
                bad.len(),
                &mut out,
                &mut len,
                std::ptr::null_mut(),
            );
            let created = h5z_deepcq_session_new(bad.as_ptr(), bad.len(), 0, &mut session);
            (compressed, created)
        };
        assert!(compressed < 0 && created < 0, "{compressed} {created}");
        assert!(out.is_null() && session.is_null());
        out = stale;
        // SAFETY: as above; `out_len` NULL is refused before anything is read.
        let refused = unsafe {
            h5z_deepcq_compress(
                data,
                H5Z_DEEPCQ_FLOAT64,
                dims.as_ptr(),
                1,
                cd.as_ptr(),
                cd.len(),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(refused, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        assert!(out.is_null());
        out = stale;
        // SAFETY: as above; the session is freed once.
        let (created, stepped) = unsafe {
            let created = h5z_deepcq_session_new(cd.as_ptr(), cd.len(), 0, &mut session);
            // Rank 0: refused before anything is read.
            let stepped = h5z_deepcq_session_compress(
                session,
                data,
                H5Z_DEEPCQ_FLOAT64,
                dims.as_ptr(),
                0,
                &mut out,
                &mut len,
                std::ptr::null_mut(),
            );
            h5z_deepcq_session_free(session);
            (created, stepped)
        };
        assert_eq!(
            (created, stepped),
            (H5Z_DEEPCQ_OK, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT)
        );
        assert!(out.is_null());
    }

    #[test]
    fn lengths_no_buffer_has_are_refused_before_they_are_read() {
        // -1 passed as a size_t (a Fortran caller's sentinel) would make a slice that
        // Rust's own checks abort on, across the C boundary.
        let (byte, word) = ([0u8; 8], [60 as c_uint; 2]);
        let mut advice = H5zDeepcqAdvice::default();
        let dims = [2usize];
        let values = [0.0f64; 2];
        // SAFETY: every pointer is valid for what the call may read before it refuses.
        let (info, advise) = unsafe {
            let (mut dtype, mut rank, mut nbytes) = (0, 0, 0);
            let info = h5z_deepcq_chunk_info(
                byte.as_ptr() as *const c_void,
                usize::MAX,
                &mut dtype,
                std::ptr::null_mut(),
                &mut rank,
                &mut nbytes,
            );
            let advise = h5z_deepcq_advise(
                values.as_ptr() as *const c_void,
                H5Z_DEEPCQ_FLOAT64,
                dims.as_ptr(),
                1,
                word.as_ptr(),
                usize::MAX,
                &mut advice,
            );
            (info, advise)
        };
        assert_eq!(
            (info, advise),
            (
                H5Z_DEEPCQ_ERR_INVALID_ARGUMENT,
                H5Z_DEEPCQ_ERR_INVALID_ARGUMENT
            )
        );
        assert!(message().contains("cd_values"), "{}", message());
    }

    #[test]
    fn too_small_buffers_report_the_size_needed() {
        let values: Vec<f64> = (0..600).map(|i| (i as f64 * 0.05).sin()).collect();
        let dims = [20usize, 30];
        let cd = [60 as c_uint];
        let (mut out, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: values holds 600 f64; outputs are writable.
        let status = unsafe {
            h5z_deepcq_compress(
                values.as_ptr() as *const c_void,
                H5Z_DEEPCQ_FLOAT64,
                dims.as_ptr(),
                2,
                cd.as_ptr(),
                1,
                &mut out,
                &mut len,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_OK);
        let mut small = [0u8; 16];
        let mut needed = 0usize;
        // SAFETY: `out` holds `len` bytes from the library; `small` holds 16.
        let status = unsafe {
            h5z_deepcq_decompress(
                out,
                len,
                small.as_mut_ptr() as *mut c_void,
                small.len(),
                &mut needed,
            )
        };
        assert_eq!((status, needed), (H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL, 600 * 8));
        // No place for the size: refused, nothing written.
        let mut room = vec![0u8; 600 * 8];
        // SAFETY: `out` holds `len` bytes; `room` holds 4800.
        let status = unsafe {
            h5z_deepcq_decompress(
                out,
                len,
                room.as_mut_ptr() as *mut c_void,
                room.len(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        assert!(room.iter().all(|&b| b == 0));
        // Compressing into too small a buffer: the size it needs, and the report.
        let mut report = H5zDeepcqReport::default();
        // SAFETY: as above; `small` holds 16 bytes, `report` is writable.
        let status = unsafe {
            h5z_deepcq_compress_into(
                values.as_ptr() as *const c_void,
                H5Z_DEEPCQ_FLOAT64,
                dims.as_ptr(),
                2,
                cd.as_ptr(),
                1,
                small.as_mut_ptr() as *mut c_void,
                small.len(),
                &mut needed,
                &mut report,
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL);
        assert!(needed > small.len(), "{needed}");
        assert!(
            report.compressions >= 1 && report.psnr >= 60.0,
            "{report:?}"
        );
        // A header declaring 4 GiB - 128 KiB before a few bytes: the size, not a decode.
        let crafted = crate::chunk::wrap(
            crate::wire::CodecId::Lossless,
            &crate::samples::Samples::F32(&[0.0; 4]),
            &[1 << 15, (1 << 15) - 1],
            0.0,
            None,
            None,
            b"not a payload",
        );
        // SAFETY: `crafted` holds its length; `small` holds 16 bytes.
        let status = unsafe {
            h5z_deepcq_decompress(
                crafted.as_ptr() as *const c_void,
                crafted.len(),
                small.as_mut_ptr() as *mut c_void,
                small.len(),
                &mut needed,
            )
        };
        assert_eq!(
            (status, needed),
            (H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL, 4294836224)
        );
        // Bytes that are not f32 or f64 are refused at the size query, not after a decode.
        let opaque = crate::chunk::encode(
            crate::wire::CodecId::Lossless,
            crate::samples::Samples::Opaque {
                bytes: &[7u8; 64],
                elem_size: 4,
            },
            &[16],
            0.0,
            None,
        )
        .unwrap();
        // SAFETY: `opaque` holds its length; `out` is NULL, as for a size query.
        let status = unsafe {
            h5z_deepcq_decompress(
                opaque.as_ptr() as *const c_void,
                opaque.len(),
                std::ptr::null_mut(),
                0,
                &mut needed,
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        let (mut dtype, mut shape, mut rank, mut nbytes) = (0, [0usize; 4], 4usize, 0usize);
        // SAFETY: as above; shape holds 4 entries.
        let status = unsafe {
            h5z_deepcq_chunk_info(
                out,
                len,
                &mut dtype,
                shape.as_mut_ptr(),
                &mut rank,
                &mut nbytes,
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_OK);
        assert_eq!(
            (dtype, &shape[..rank], nbytes),
            (H5Z_DEEPCQ_FLOAT64, &dims[..], 4800)
        );
        // No dims array, or one too short: too small, with the rank it needs.
        for (dims_ptr, mut rank) in [(std::ptr::null_mut(), 0usize), (shape.as_mut_ptr(), 1)] {
            // SAFETY: as above; `dims_ptr` is NULL or holds 4 ≥ `rank` entries.
            let status = unsafe {
                h5z_deepcq_chunk_info(out, len, &mut dtype, dims_ptr, &mut rank, &mut nbytes)
            };
            assert_eq!((status, rank), (H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL, 2));
        }
        // A NULL out-pointer is refused before anything is written.
        let (mut rank, mut nbytes) = (4usize, 7usize);
        // SAFETY: as above; dtype is NULL, which the call refuses.
        let status = unsafe {
            h5z_deepcq_chunk_info(
                out,
                len,
                std::ptr::null_mut(),
                shape.as_mut_ptr(),
                &mut rank,
                &mut nbytes,
            )
        };
        assert_eq!(
            (status, rank, nbytes),
            (H5Z_DEEPCQ_ERR_INVALID_ARGUMENT, 4, 7)
        );
        // So it is whatever the chunk holds (the header promises it), a damaged one too.
        let damaged = [0u8; 16];
        // SAFETY: `damaged` holds its length; dtype is NULL, which the call refuses.
        let status = unsafe {
            h5z_deepcq_chunk_info(
                damaged.as_ptr() as *const c_void,
                damaged.len(),
                std::ptr::null_mut(),
                shape.as_mut_ptr(),
                &mut rank,
                &mut nbytes,
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        // SAFETY: `out` came from the library and is freed once.
        unsafe { h5z_deepcq_free(out) };
    }

    /// A big-endian f64 dataset's stored cd_values: f64 buffers give chunks marked
    /// big-endian (the filter swaps them into the file's order when HDF5 reads), which
    /// the in-situ decoder still returns in native order; f32 buffers are refused.
    #[test]
    fn a_session_for_a_non_float_dataset_is_refused_at_setup() {
        let stored = crate::settings::StoredSettings {
            settings: Settings::psnr(60.0).unwrap(),
            dtype: DType::Opaque,
            big_endian: false,
            elem_size: 4,
            chunk: vec![20, 30],
            fill: None,
            fill_named: false,
        }
        .to_cd();
        let mut session = std::ptr::NonNull::<H5zDeepcqSession>::dangling().as_ptr();
        // SAFETY: `stored` holds its length; `session` is writable.
        let status =
            unsafe { h5z_deepcq_session_new(stored.as_ptr(), stored.len(), 0, &mut session) };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        assert!(session.is_null());
        assert!(message().contains("non-float"), "{}", message());
    }

    #[test]
    fn stored_cd_values_fit_chunks_to_their_dataset() {
        let values: Vec<f64> = (0..600).map(|i| (i as f64 * 0.05).sin()).collect();
        let dims = [20usize, 30];
        let stored = crate::settings::StoredSettings {
            settings: Settings::psnr(60.0).unwrap(),
            dtype: DType::F64,
            big_endian: true,
            elem_size: 8,
            chunk: dims.to_vec(),
            fill: None,
            fill_named: false,
        }
        .to_cd();
        let compress = |data: *const c_void, dtype: c_uint, dims: &[usize; 2], out: &mut _| {
            let mut len = 0usize;
            // SAFETY: `data` holds at least `dims` elements of `dtype`; outputs are writable.
            let status = unsafe {
                h5z_deepcq_compress(
                    data,
                    dtype,
                    dims.as_ptr(),
                    2,
                    stored.as_ptr(),
                    stored.len(),
                    out,
                    &mut len,
                    std::ptr::null_mut(),
                )
            };
            (status, len)
        };
        let narrow: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let mut out = std::ptr::null_mut();
        let (status, _) = compress(
            narrow.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT32,
            &dims,
            &mut out,
        );
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        assert!(message().contains("stored form"), "{}", message());
        // Nor does a buffer of the right type and another count: its chunk would decode
        // to fewer bytes than the dataset's chunks hold.
        let half = [10usize, 30];
        let (status, _) = compress(
            values.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT64,
            &half,
            &mut out,
        );
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        assert!(
            message().contains("chunks hold 600 values"),
            "{}",
            message()
        );
        // Nor one of the right count in another order (a Fortran caller's dims), which
        // would be compressed along the wrong axes; dims of one do not count.
        let (status, _) = compress(
            values.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT64,
            &[30, 20],
            &mut out,
        );
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        assert!(message().contains("slowest first"), "{}", message());
        let dataset = crate::settings::parse_for_buffers(&stored).unwrap().dataset;
        let samples = Samples::F64(&values);
        assert!(check_for(dataset.as_ref(), &samples, &[1, 20, 1, 30]).is_ok());
        assert!(check_for(dataset.as_ref(), &samples, &[30, 1, 20]).is_err());
        let deep = DatasetType {
            chunk: vec![2, 2, 5, 3, 10],
            ..dataset.clone().unwrap()
        };
        assert!(check_for(Some(&deep), &samples, &[4, 5, 3, 10]).is_ok());
        assert!(check_for(Some(&deep), &samples, &[4, 5, 10, 3]).is_err());

        let (status, len) = compress(
            values.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT64,
            &dims,
            &mut out,
        );
        assert_eq!(status, H5Z_DEEPCQ_OK, "{}", message());
        // SAFETY: `out` holds `len` bytes from the library.
        let chunk = unsafe { std::slice::from_raw_parts(out as *const u8, len) }.to_vec();
        // SAFETY: `out` came from the library and is freed once.
        unsafe { h5z_deepcq_free(out) };
        assert!(crate::chunk::parse(&chunk).unwrap().0.big_endian);
        let mut back = vec![0f64; values.len()];
        let mut written = 0usize;
        // SAFETY: `chunk` holds `len` bytes; `back` holds 600 f64.
        let status = unsafe {
            h5z_deepcq_decompress(
                chunk.as_ptr() as *const c_void,
                chunk.len(),
                back.as_mut_ptr() as *mut c_void,
                back.len() * 8,
                &mut written,
            )
        };
        assert_eq!((status, written), (H5Z_DEEPCQ_OK, 4800));
        let psnr = crate::metrics::psnr(&values, &back);
        assert!(psnr >= 60.0, "{psnr} dB");

        let mut session = std::ptr::null_mut();
        // SAFETY: `stored` holds its words; `session` is writable.
        let status =
            unsafe { h5z_deepcq_session_new(stored.as_ptr(), stored.len(), 0, &mut session) };
        assert_eq!(status, H5Z_DEEPCQ_OK);
        let mut len = 0usize;
        // SAFETY: the session is live; `narrow` holds 600 f32; outputs are writable.
        let status = unsafe {
            h5z_deepcq_session_compress(
                session,
                narrow.as_ptr() as *const c_void,
                H5Z_DEEPCQ_FLOAT32,
                dims.as_ptr(),
                2,
                &mut out,
                &mut len,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        // SAFETY: the session came from h5z_deepcq_session_new and is freed once.
        unsafe { h5z_deepcq_session_free(session) };
    }

    #[test]
    fn a_call_failing_after_delivery_leaves_nothing_to_free() {
        let mut out: *mut c_void = 8 as *mut c_void;
        // One pointer for the call and its body, as C passes it.
        let out_ptr: *mut *mut c_void = &mut out;
        let mut len = 0usize;
        let len_ptr: *mut usize = &mut len;
        // SAFETY: `out_ptr` and `len_ptr` are writable; the body delivers and then fails.
        let status = unsafe {
            guard_delivering(out_ptr, || {
                deliver_alloc(b"chunk", out_ptr, len_ptr)?;
                Err(invalid("after delivery"))
            })
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
        // SAFETY: `out_ptr` points to `out`, which no reference borrows.
        assert!(unsafe { *out_ptr }.is_null());
        // SAFETY: as above; the body delivers and then panics.
        let status = unsafe {
            guard_delivering(out_ptr, || {
                deliver_alloc(b"chunk", out_ptr, len_ptr)?;
                panic!("after delivery")
            })
        };
        assert_eq!(status, H5Z_DEEPCQ_ERR_INTERNAL);
        // SAFETY: as above.
        assert!(unsafe { *out_ptr }.is_null());
        // SAFETY: as above; a call that succeeds keeps what it delivered.
        let status =
            unsafe { guard_delivering(out_ptr, || deliver_alloc(b"chunk", out_ptr, len_ptr)) };
        // SAFETY: as above.
        assert_eq!((status, unsafe { *len_ptr }), (H5Z_DEEPCQ_OK, 5));
        // SAFETY: `out` came from deliver_alloc and is freed once.
        unsafe { h5z_deepcq_free(*out_ptr) };
    }
}
