//! The C boundary HDF5 calls: the two `H5PL*` discovery functions and the three callbacks
//! of `H5Z_class2_t`. Every function here catches panics, turns errors into HDF5's failure
//! values, and pushes the message onto the HDF5 error stack. Nothing else in the crate
//! knows about C return codes.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use super::api::{self, Hid, H5T_FLOAT, H5T_ORDER_BE, H5T_ORDER_LE};
use super::filter;
use crate::observe;
use crate::settings::{self, Settings, StoredSettings};
use crate::wire::TargetKind;
use crate::wire::{self, DType};

/// `H5Z_FLAG_REVERSE`: the callback is asked to decode.
const H5Z_FLAG_REVERSE: c_uint = 0x0100;

/// `H5Z_FLAG_OPTIONAL`: the dataset's pipeline may skip the filter (h5py sets every filter
/// so): HDF5 then stores a chunk the filter failed raw and clears its error stack.
const H5Z_FLAG_OPTIONAL: c_uint = 0x0001;

/// Why a dataset whose cd_values lack the stored form's marker is neither read nor written.
const NEVER_COMPLETED: &str = "the dataset's filter parameters are not in the form the \
     filter completes them to when the dataset is created (it was created where the filter \
     was not found): recreate it with the filter available";

/// Which callback [`guarded`] runs, for where its failure could go unheard.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Callback {
    /// `can_apply` or `set_local`, whose failures HDF5 keeps on its stack.
    Setup,
    /// The filter function, encoding for an optional filter or not.
    Filter { optional_encode: bool },
}

type CanApply = extern "C" fn(Hid, Hid, Hid) -> c_int;
type SetLocal = extern "C" fn(Hid, Hid, Hid) -> c_int;
type FilterFn =
    extern "C" fn(c_uint, usize, *const c_uint, usize, *mut usize, *mut *mut c_void) -> usize;

/// HDF5's `H5Z_class2_t`, field for field.
#[repr(C)]
pub struct H5ZClass2 {
    version: c_int,
    id: c_int,
    encoder_present: c_uint,
    decoder_present: c_uint,
    name: *const c_char,
    can_apply: Option<CanApply>,
    set_local: Option<SetLocal>,
    filter: Option<FilterFn>,
}

// SAFETY: the struct is immutable and its name points to a static C string.
unsafe impl Sync for H5ZClass2 {}

/// NUL-terminated copy of [`wire::FILTER_NAME`] for HDF5.
const NAME: &[u8] = b"deepcq: quality-targeted lossy compression\0";
const _: () = assert!(NAME.len() == wire::FILTER_NAME.len() + 1);

/// The filter class HDF5 registers.
pub static FILTER_CLASS: H5ZClass2 = H5ZClass2 {
    version: 1, // H5Z_CLASS_T_VERS
    id: wire::FILTER_ID as c_int,
    encoder_present: 1,
    decoder_present: 1,
    name: NAME.as_ptr() as *const c_char,
    can_apply: Some(can_apply),
    set_local: Some(set_local),
    filter: Some(filter_callback),
};

/// Tells HDF5's plugin loader that this library holds a filter (`H5PL_TYPE_FILTER`).
#[no_mangle]
pub extern "C" fn H5PLget_plugin_type() -> c_int {
    0
}

/// Hands HDF5's plugin loader the filter class.
#[no_mangle]
pub extern "C" fn H5PLget_plugin_info() -> *const c_void {
    &FILTER_CLASS as *const H5ZClass2 as *const c_void
}

/// Runs `body`, turning an error or a panic into `failure` plus a message on the calling
/// HDF5's error stack (the log too; stderr where no copy is known to have called, with
/// several loaded, and where HDF5 drops or clears the filter function's message:
/// [`say_dropped_failure`]).
fn guarded<T>(
    function: &str,
    callback: Callback,
    failure: T,
    body: impl FnOnce() -> Result<T, String>,
) -> T {
    // Inside the unwind guard: even setting up the log may panic (env_filter warns of a
    // bad `H5Z_DEEPCQ_LOG` directive with eprintln!, which panics on a broken stderr).
    let run = || {
        observe::init();
        api::forget_choice();
        body()
    };
    let message = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(value)) => return value,
        Ok(Err(message)) => message,
        Err(panic) => format!(
            "internal error (please report): {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        ),
    };
    log::error!("{function}: {message}");
    match api::reporting_api() {
        Some(api) => {
            api.push_error(function, &message);
            match callback {
                Callback::Filter {
                    optional_encode: true,
                } => say_stored_raw(function, &message),
                Callback::Filter { .. } if api.drops_filter_errors() => {
                    say_dropped_failure(function, &message, DROPPED_BY_HDF5)
                }
                _ => {}
            }
        }
        None if api::every_api().is_err() => say_dropped_failure(function, &message, NO_HDF5),
        None => say_dropped_failure(function, &message, NO_CALLER_KNOWN),
    }
    failure
}

/// Why [`say_dropped_failure`] speaks: the HDF5 that called drops the filter's messages.
const DROPPED_BY_HDF5: &str = "this HDF5 drops a filter's messages from its error stack";

/// Why [`say_dropped_failure`] speaks: the filter is optional in the dataset's pipeline,
/// so HDF5 stores the chunk raw and clears the message.
const CLEARED_AS_OPTIONAL: &str = "the filter is optional in this dataset (as h5py sets \
     every filter), so HDF5 stores the chunk raw, uncompressed, and clears the message";

/// Why [`say_dropped_failure`] speaks: several copies of libhdf5 are loaded and the filter
/// function cannot tell which one called it ([`api::reporting_api`]).
const NO_CALLER_KNOWN: &str =
    "several copies of libhdf5 are loaded and the filter cannot tell which one called it";

/// Why [`say_dropped_failure`] speaks: no loaded object exports HDF5's functions to the
/// filter (a program linked statically to HDF5 without `-Wl,--export-dynamic`).
const NO_HDF5: &str = "no loaded libhdf5 exports its functions to the filter (a program \
     linked statically to HDF5 needs h5cc -shlib or -Wl,--export-dynamic)";

/// Says a failure on stderr, once per process, where the message pushed onto an HDF5 error
/// stack would be lost (`why`) and the log (`H5Z_DEEPCQ_LOG`) is off: a user of h5py (HDF5
/// 2.0), or of h5py beside netCDF4, would otherwise learn only that a "filter returned
/// failure during read", not that the chunk is corrupt or which setting refused it.
fn say_dropped_failure(function: &str, message: &str, why: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    say_once(&SAID, function, message, why);
}

/// [`say_dropped_failure`] for a write HDF5 stored raw ([`CLEARED_AS_OPTIONAL`]), once per
/// process on its own: an earlier failure said for another reason (a corrupt chunk read)
/// must not leave a dataset stored uncompressed without a word.
fn say_stored_raw(function: &str, message: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    say_once(&SAID, function, message, CLEARED_AS_OPTIONAL);
}

/// Writes the failure on stderr unless `said` already was or the log is on.
fn say_once(said: &AtomicBool, function: &str, message: &str, why: &str) {
    use std::io::Write;
    if log::log_enabled!(log::Level::Error) || said.swap(true, Ordering::Relaxed) {
        return;
    }
    // Not eprintln!, which panics when stderr is closed: nothing may unwind into HDF5.
    let _ = writeln!(
        std::io::stderr(),
        "h5z-deepcq: {function}: {message} ({why}, so only the first failure is said \
         here; H5Z_DEEPCQ_LOG=error prints every one)"
    );
}

/// Filters that read a chunk as the dataset's values, by id: HDF5's own, bitshuffle
/// (it transposes the bits of whole elements and fails on a buffer that is not a whole
/// number of them, as most of deepcq's chunks are not), then the registered third-party
/// lossy compressors (The HDF Group's list of filter plugins; hdf5plugin ships ZFP, SZ,
/// SZ3, SPERR and FCIDECOMP for h5py).
const VALUE_FILTERS: [(u32, &str); 13] = [
    (4, "szip"),
    (5, "nbit"),
    (6, "scaleoffset"),
    (32008, "bitshuffle"),
    (32013, "H5Z-ZFP"),
    (32014, "fpzip"),
    (32017, "SZ"),
    (32018, "FCIDECOMP"),
    (32019, "JPEG"),
    (32022, "BitGroom"),
    (32023, "Granular BitRound"),
    (32024, "SZ3"),
    (32028, "SPERR"),
];

/// Why deepcq cannot run where `pipeline` (filter ids in the order they run when writing)
/// puts it. Any filter before it hands it that filter's bytes instead of the dataset's
/// values (shuffle's byte planes, read as floats, would be compressed lossily into
/// garbage). After it, a filter that reads the dataset's values ([`VALUE_FILTERS`]) would
/// get deepcq's bytes, a buffer far shorter than the chunk it counts values in: nbit wrote
/// past it and the process aborted, scaleoffset wrote a dataset that no read could decode,
/// and a lossy compressor would damage deepcq's stream. Nor may deepcq run twice: HDF5
/// keeps the id twice, `set_local` rewrites the first entry's cd_values only, and the second
/// entry failed on every chunk the first had compressed. `None` when the pipeline is one
/// deepcq can run in.
fn misplaced_filters(pipeline: &[u32]) -> Option<String> {
    let position = pipeline.iter().position(|&id| id == wire::FILTER_ID)?;
    if pipeline[position + 1..].contains(&wire::FILTER_ID) {
        return Some(
            "deepcq is in the pipeline twice: add it once (a second pass would get its own \
             compressed bytes)"
                .to_string(),
        );
    }
    let value_filter = |id: &u32| VALUE_FILTERS.iter().find(|(known, _)| known == id);
    let name = |id: &u32| match (id, value_filter(id)) {
        (_, Some((_, name))) => format!("{name} ({id})"),
        (1, _) => "deflate (1)".to_string(),
        (2, _) => "shuffle (2)".to_string(),
        (3, _) => "fletcher32 (3)".to_string(),
        _ => format!("filter {id}"),
    };
    let names = |ids: Vec<&u32>| ids.into_iter().map(name).collect::<Vec<_>>().join(", ");
    let reading_values: Vec<&u32> = pipeline[position + 1..]
        .iter()
        .filter(|id| value_filter(id).is_some())
        .collect();
    if position > 0 {
        Some(format!(
            "{} runs before deepcq, which would get its bytes instead of the dataset's values: \
             add deepcq first (byte filters such as deflate and fletcher32 may follow it)",
            names(pipeline[..position].iter().collect())
        ))
    } else if !reading_values.is_empty() {
        Some(format!(
            "{} runs after deepcq and reads the dataset's values, which deepcq has already \
             compressed: leave it out (byte filters such as deflate may follow deepcq)",
            names(reading_values)
        ))
    } else {
        None
    }
}

/// Checks the user's cd_values before the dataset exists, so bad values fail
/// `H5Dcreate` with a message instead of failing the first write. Every datatype is
/// accepted: non-float data is stored losslessly.
extern "C" fn can_apply(dcpl: Hid, type_id: Hid, space_id: Hid) -> c_int {
    guarded("deepcq can_apply", Callback::Setup, -1, || {
        let api = api::api_for(dcpl, type_id, space_id)?;
        let (_, cd) = api.filter_values(dcpl, wire::FILTER_ID)?;
        Settings::parse(&cd).map_err(|e| e.to_string())?;
        api.chunk_dims(dcpl)?;
        Ok(1)
    })
}

/// Rewrites the user's cd_values into the stored form: settings + dtype + chunk dims.
extern "C" fn set_local(dcpl: Hid, type_id: Hid, space_id: Hid) -> c_int {
    guarded("deepcq set_local", Callback::Setup, -1, || {
        let api = api::api_for(dcpl, type_id, space_id)?;
        let (flags, cd) = api.filter_values(dcpl, wire::FILTER_ID)?;
        let settings = Settings::parse(&cd).map_err(|e| e.to_string())?;
        let chunk = api.chunk_dims(dcpl)?;
        let pipeline = api.filter_ids(dcpl)?;
        if let Some(misplaced) = misplaced_filters(&pipeline) {
            return Err(misplaced);
        }
        let (class, size, order) = api.type_info(type_id);
        // Floats of another layout than IEEE's are other values: stored exactly.
        let ieee = class == H5T_FLOAT && api.is_ieee_float(type_id, size);
        let dtype = match (ieee, size, order) {
            (true, 4, H5T_ORDER_LE | H5T_ORDER_BE) => DType::F32,
            (true, 8, H5T_ORDER_LE | H5T_ORDER_BE) => DType::F64,
            _ => DType::Opaque,
        };
        if dtype != DType::Opaque && settings.target.kind != TargetKind::AbsBound {
            // Load the surrogate now, so a missing onnxruntime or model fails H5Dcreate
            // with the fix, not the first H5Dwrite.
            crate::learned::proposer_for(&settings).map_err(|e| e.to_string())?;
        }
        let big_endian = dtype != DType::Opaque && order == H5T_ORDER_BE;
        // Values equal to the missing value the cd_values name, else to a user-defined
        // fill value, are missing data: stored exactly and left out of the target
        // (`encode::float_chunk_with_fill`).
        let named = settings::named_missing(&cd, dtype).map_err(|e| e.to_string())?;
        let fill_named = named.is_some();
        let fill = match dtype {
            DType::Opaque => None,
            _ => named.or_else(|| {
                api.user_fill_value(dcpl, type_id, size).map(|mut bytes| {
                    if big_endian {
                        bytes.reverse();
                    }
                    bytes
                })
            }),
        };
        let stored = StoredSettings {
            // The stored form keeps the missing value as the fill value.
            settings: Settings {
                missing: None,
                ..settings
            },
            dtype,
            big_endian,
            elem_size: size.max(1),
            chunk,
            fill,
            fill_named,
        };
        api.set_filter_values(dcpl, wire::FILTER_ID, flags, &stored.to_cd())?;
        Ok(0)
    })
}

/// Encodes or decodes one chunk in place: HDF5 owns `*buf` (from its allocator), and we
/// replace it with a buffer of the result from the same allocator (`H5allocate_memory`, or
/// malloc where several copies of HDF5 are loaded). Returns the new length, or 0 on failure (HDF5's
/// convention), leaving `*buf` untouched.
extern "C" fn filter_callback(
    flags: c_uint,
    cd_nelmts: usize,
    cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut c_void,
) -> usize {
    let decode = flags & H5Z_FLAG_REVERSE != 0;
    let function = if decode {
        "deepcq decode"
    } else {
        "deepcq encode"
    };
    let optional_encode = !decode && flags & H5Z_FLAG_OPTIONAL != 0;
    guarded(function, Callback::Filter { optional_encode }, 0, || {
        if buf.is_null() || buf_size.is_null() || unsafe { (*buf).is_null() } {
            return Err("HDF5 passed a null buffer".into());
        }
        // SAFETY: HDF5 passes `nbytes` valid bytes at `*buf` and `cd_nelmts` cd_values.
        let input = unsafe { std::slice::from_raw_parts(*buf as *const u8, nbytes) };
        let cd = if cd_values.is_null() {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(cd_values, cd_nelmts) }
        };
        // HDF5 copies a whole chunk out of a decoded buffer: one that came back shorter
        // (a chunk of non-float values made for a smaller dataset chunk, or one whose
        // cd_values this version does not read) is given zeros to the chunk's size rather
        // than be read past its end. The length returned stays what was decoded.
        let mut room = 0;
        let output = if decode {
            // Files whose stored cd_values this version does not read still decode,
            // unchecked but for the chunk-size ceilings.
            let stored = StoredSettings::parse(cd).ok();
            // Without the stored form's marker (a user form: the dataset was created where
            // the filter was not found, so set_local never completed its cd_values, and a
            // chunk was written directly) nothing tells how many bytes HDF5 will copy out:
            // a chunk made for a smaller block would be read past its end, so it is
            // refused. With it, the same slots parse reads the chunk dims from size even
            // a stored form this version does not read (none, or 0 from a slot of 0: no
            // ceiling then, as docs/cd_values.md promises later layouts).
            if !settings::is_stored(cd) {
                return Err(format!(
                    "{NEVER_COMPLETED}; its chunk size is unknown, so HDF5 is not given the \
                     chunk: read its bytes with H5Dread_chunk and decode them with \
                     h5z_deepcq_decompress"
                ));
            }
            let dataset_chunk = settings::stored_chunk_bytes(cd);
            room = dataset_chunk.unwrap_or(0);
            let ceiling = dataset_chunk.filter(|&n| n > 0);
            filter::decode_chunk_for(stored.as_ref(), ceiling, input).map_err(|e| e.to_string())?
        } else {
            if !settings::is_stored(cd) {
                return Err(format!("{NEVER_COMPLETED}, so it cannot write either"));
            }
            let stored = StoredSettings::parse(cd).map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            // The address of the cd_values is the open dataset's own pipeline entry.
            let (bytes, outcome) = filter::encode_dataset_chunk(cd_values as usize, &stored, input)
                .map_err(|e| e.to_string())?;
            observe::chunk(&observe::ChunkRecord::new(
                "hdf5",
                &stored.chunk,
                &stored.settings,
                &outcome,
                (nbytes, bytes.len()),
                started.elapsed().as_secs_f64() * 1e3,
            ));
            bytes
        };
        let size = output.len().max(room).max(1);
        // SAFETY: the buffer comes from and goes back to HDF5's allocator (malloc where
        // several copies of HDF5 are loaded and none is known to own the buffer).
        unsafe {
            let memory = api::sole_api().and_then(|a| a.memory());
            let fresh = match memory {
                Some((allocate, _)) => allocate(size, false),
                None => libc::malloc(size),
            };
            if fresh.is_null() {
                return Err(format!("out of memory for a {} byte chunk", output.len()));
            }
            std::ptr::copy_nonoverlapping(output.as_ptr(), fresh as *mut u8, output.len());
            let tail = (fresh as *mut u8).add(output.len());
            std::ptr::write_bytes(tail, 0, size - output.len());
            match memory {
                Some((_, free)) => {
                    free(*buf);
                }
                None => libc::free(*buf),
            }
            *buf = fresh;
            *buf_size = size;
        }
        Ok(output.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepcq_must_run_first_and_no_value_reading_filter_after_it() {
        assert_eq!(misplaced_filters(&[wire::FILTER_ID]), None);
        assert_eq!(misplaced_filters(&[wire::FILTER_ID, 1, 2, 3, 32001]), None);
        let twice = misplaced_filters(&[wire::FILTER_ID, 1, wire::FILTER_ID]).unwrap();
        assert!(twice.contains("twice"), "{twice}");
        let shuffled = misplaced_filters(&[2, wire::FILTER_ID]).unwrap();
        assert!(
            shuffled.starts_with("shuffle (2) runs before deepcq"),
            "{shuffled}"
        );
        let two = misplaced_filters(&[2, 32001, wire::FILTER_ID]).unwrap();
        assert!(two.starts_with("shuffle (2), filter 32001 runs"), "{two}");
        let known = [
            (4, "szip (4)"),
            (5, "nbit (5)"),
            (6, "scaleoffset (6)"),
            (32008, "bitshuffle (32008)"),
            (32013, "H5Z-ZFP (32013)"),
            (32024, "SZ3 (32024)"),
        ];
        for (id, name) in known {
            let after = misplaced_filters(&[wire::FILTER_ID, 1, id]).unwrap();
            assert!(
                after.starts_with(&format!("{name} runs after deepcq")),
                "{after}"
            );
        }
    }
}
