//! The few HDF5 functions `can_apply` and `set_local` need, resolved at run time from the
//! libhdf5 the host already loaded. The plugin never links libhdf5: a plugin linked to
//! Debian's library inside h5py (which bundles its own HDF5) sees ids that belong to the
//! other copy and fails every write.
//!
//! Lookup order: the global namespace (`dlsym(RTLD_DEFAULT)`, which covers h5repack and
//! C/Fortran programs linked to HDF5), then every loaded object whose name mentions hdf5,
//! re-opened with `RTLD_NOLOAD` (h5py loads its private `libhdf5-*.so` locally). Where
//! several copies are loaded (`import netCDF4, h5py`: each wheel bundles one), a dataset's
//! callbacks ask the copy whose property list holds the filter ([`api_for`]).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

use libloading::os::unix::{Library, Symbol, RTLD_LAZY};
use std::sync::Mutex;

/// HDF5's `hid_t` (64-bit since 1.10).
pub type Hid = i64;
/// HDF5's `herr_t`.
pub type Herr = c_int;

type GetFilterById2 = unsafe extern "C" fn(
    Hid,
    c_int,
    *mut c_uint,
    *mut usize,
    *mut c_uint,
    usize,
    *mut c_char,
    *mut c_uint,
) -> Herr;
type GetFilter2 = unsafe extern "C" fn(
    Hid,
    c_uint,
    *mut c_uint,
    *mut usize,
    *mut c_uint,
    usize,
    *mut c_char,
    *mut c_uint,
) -> c_int;
type ModifyFilter = unsafe extern "C" fn(Hid, c_int, c_uint, usize, *const c_uint) -> Herr;
type GetChunk = unsafe extern "C" fn(Hid, c_int, *mut u64) -> c_int;
type TypeInt = unsafe extern "C" fn(Hid) -> c_int;
type TypeSize = unsafe extern "C" fn(Hid) -> usize;
type Zregister = unsafe extern "C" fn(*const c_void) -> Herr;
type FillValueDefined = unsafe extern "C" fn(Hid, *mut c_int) -> Herr;
type GetFillValue = unsafe extern "C" fn(Hid, Hid, *mut c_void) -> Herr;
type AllocateMemory = unsafe extern "C" fn(usize, bool) -> *mut c_void;
type FreeMemory = unsafe extern "C" fn(*mut c_void) -> Herr;
type ClearErrors = unsafe extern "C" fn(Hid) -> Herr;
type GetFields =
    unsafe extern "C" fn(Hid, *mut usize, *mut usize, *mut usize, *mut usize, *mut usize) -> Herr;
type Push2 = unsafe extern "C" fn(
    Hid,
    *const c_char,
    *const c_char,
    c_uint,
    Hid,
    Hid,
    Hid,
    *const c_char,
    ...
) -> Herr;

/// `H5T_FLOAT` in `H5T_class_t`.
pub const H5T_FLOAT: c_int = 1;
/// `H5T_NORM_IMPLIED` in `H5T_norm_t`: the mantissa's leading 1 is not stored (IEEE).
pub const H5T_NORM_IMPLIED: c_int = 0;
/// `H5T_ORDER_LE` in `H5T_order_t`.
pub const H5T_ORDER_LE: c_int = 0;
/// `H5T_ORDER_BE` in `H5T_order_t`.
pub const H5T_ORDER_BE: c_int = 1;

/// Addresses of HDF5's error-class globals (`H5E_ERR_CLS_g`, ...). They are read at push
/// time, because HDF5 sets them when the library initialises.
struct ErrorIds {
    class: *const Hid,
    major: *const Hid,
    minor: *const Hid,
}

/// Resolved entry points. The library handle stays open as long as the process runs.
pub struct Hdf5Api {
    _library: Library,
    get_filter_by_id2: GetFilterById2,
    get_nfilters: TypeInt,
    get_filter2: GetFilter2,
    modify_filter: ModifyFilter,
    get_chunk: GetChunk,
    get_class: TypeInt,
    get_order: TypeInt,
    get_size: TypeSize,
    push2: Option<Push2>,
    errors: Option<ErrorIds>,
    zregister: Option<Zregister>,
    fill_value_defined: Option<FillValueDefined>,
    get_fill_value: Option<GetFillValue>,
    /// `H5allocate_memory` and `H5free_memory`, together or not at all.
    memory: Option<(AllocateMemory, FreeMemory)>,
    clear_errors: Option<ClearErrors>,
    /// Whether this HDF5 runs callbacks between `H5_user_cb_prepare` and
    /// `H5_user_cb_restore` (HDF5 2.0, h5py's wheels): a filter function's failure then
    /// reaches the caller without the message the filter pushed (checked with h5py's 2.0.0:
    /// a corrupt chunk read back as "filter returned failure during read" alone).
    drops_filter_errors: bool,
    /// `H5Iget_type` and `H5Sget_simple_extent_ndims`: what tells which copy a callback's
    /// ids belong to ([`Hdf5Api::holds_deepcq`]).
    id_checks: Option<(TypeInt, TypeInt)>,
    /// `H5Tget_precision`, `H5Tget_offset`, `H5Tget_fields`, `H5Tget_ebias`,
    /// `H5Tget_norm`: what tells an IEEE float from another float of its size.
    float_layout: Option<(TypeSize, TypeInt, GetFields, TypeSize, TypeInt)>,
}

// SAFETY: the raw pointers address HDF5's process-wide globals, which HDF5 itself reads from
// any thread; function pointers are plain code addresses.
unsafe impl Send for Hdf5Api {}
unsafe impl Sync for Hdf5Api {}

/// Every HDF5 loaded into the process, in the order found: the global namespace first,
/// then each loaded object whose name mentions hdf5. Found again on each call, since a
/// host may load one later (`import h5py` after `h5z_deepcq_register`); what was found
/// is kept, so a library resolved once stays first.
pub fn every_api() -> Result<Vec<&'static Hdf5Api>, String> {
    // Every object examined, with the library it added (None: one already in, or none).
    static SEEN: Mutex<Vec<(String, Option<&'static Hdf5Api>)>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut tried = Vec::new();
    let add = |seen: &mut Vec<(String, Option<&'static Hdf5Api>)>,
               tried: &mut Vec<String>,
               name: String,
               lib| {
        let added = match Hdf5Api::from_library(lib) {
            // The same library through the global namespace and by its path.
            Ok(api)
                if seen
                    .iter()
                    .filter_map(|(_, a)| *a)
                    .any(|a| a.same_library(&api)) =>
            {
                None
            }
            Ok(api) => Some(&*Box::leak(Box::new(api))),
            Err(e) if name.is_empty() => {
                // Not kept: a host may yet load HDF5 into the global namespace.
                tried.push(format!("global namespace: {e}"));
                return;
            }
            Err(e) => {
                tried.push(format!("{name}: {e}"));
                None
            }
        };
        seen.push((name, added));
    };
    let examined =
        |seen: &[(String, Option<&Hdf5Api>)], name: &str| seen.iter().any(|(n, _)| n == name);
    if !examined(&seen, "") {
        // SAFETY: dlopen(NULL) returns the main program's handle; no initialisers run.
        if let Ok(lib) = unsafe { Library::open(None::<&str>, RTLD_LAZY) } {
            add(&mut seen, &mut tried, String::new(), lib);
        }
    }
    for name in loaded_hdf5_objects() {
        if examined(&seen, &name) {
            continue;
        }
        // SAFETY: RTLD_NOLOAD only returns a handle to an object that is already loaded,
        // so no initialiser runs.
        match unsafe { Library::open(Some(&name), RTLD_LAZY | libc::RTLD_NOLOAD) } {
            Ok(lib) => add(&mut seen, &mut tried, name, lib),
            Err(e) => tried.push(format!("{name}: {e:?}")),
        }
    }
    let found: Vec<&'static Hdf5Api> = seen.iter().filter_map(|(_, a)| *a).collect();
    if found.is_empty() {
        return Err(format!(
            "no loaded libhdf5 exports the functions deepcq needs ({})",
            if tried.is_empty() {
                "no libhdf5 is loaded".into()
            } else {
                tried.join("; ")
            }
        ));
    }
    Ok(found)
}

/// The HDF5 loaded into the process when there is exactly one: the filter's buffers pass
/// through its allocator only then, since the filter callback cannot tell which copy
/// called it.
pub fn sole_api() -> Option<&'static Hdf5Api> {
    match every_api().ok()?[..] {
        [only] => Some(only),
        _ => None,
    }
}

std::thread_local! {
    /// The library [`api_for`] chose last on this thread, for [`reporting_api`].
    static CHOSEN: std::cell::Cell<Option<&'static Hdf5Api>> =
        const { std::cell::Cell::new(None) };
}

/// Where an error of this thread's callback goes: the library [`api_for`] chose for it
/// since [`forget_choice`], else the only one loaded. None when several are loaded and
/// none was chosen (the filter function has no ids to ask with): a push onto another copy
/// than the caller's reaches a stack nobody reads, and another copy's lock, its stack
/// shared with its own threads, or a copy not yet initialised make it unsafe; the caller
/// then says the message on stderr.
pub fn reporting_api() -> Option<&'static Hdf5Api> {
    let chosen = CHOSEN.try_with(|c| c.get()).ok().flatten();
    chosen.or_else(sole_api)
}

/// Forgets [`api_for`]'s choice on this thread (at a callback's start).
pub fn forget_choice() {
    let _ = CHOSEN.try_with(|c| c.set(None));
}

/// The HDF5 whose dataset creation property list `dcpl`, datatype `type_id` and
/// dataspace `space_id` (a callback's three ids) hold deepcq's filter. Python wheels each
/// bundle their own libhdf5 (`import netCDF4, h5py` loads two), and an id of one means
/// nothing, or another object, to the other: h5py's `create_dataset` failed with "error
/// during user callback" while the filter asked netCDF4's copy. With one library loaded,
/// that one; an error a probe leaves on another copy's stack is cleared there.
pub fn api_for(dcpl: Hid, type_id: Hid, space_id: Hid) -> Result<&'static Hdf5Api, String> {
    let libraries = every_api()?;
    if let [only] = libraries[..] {
        return Ok(only);
    }
    let chosen = libraries
        .iter()
        .copied()
        .find(|api| api.holds_deepcq(dcpl, type_id, space_id));
    let _ = CHOSEN.try_with(|c| c.set(chosen));
    chosen.ok_or_else(|| {
        format!(
            "none of the {} loaded copies of libhdf5 holds this dataset's filter pipeline",
            libraries.len()
        )
    })
}

/// Paths of every object loaded into the process whose name mentions hdf5 (the filter
/// looks for them on every chunk it writes or reads, so others are not copied).
fn loaded_hdf5_objects() -> Vec<String> {
    unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _: usize, out: *mut c_void) -> c_int {
        // SAFETY: the loader hands a valid info record; `out` is the Vec passed below.
        let names = unsafe { &mut *(out as *mut Vec<String>) };
        let name = unsafe { (*info).dlpi_name };
        if !name.is_null() {
            let name = unsafe { CStr::from_ptr(name) }.to_bytes();
            if name.windows(4).any(|w| w == b"hdf5") {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        0
    }
    let mut names: Vec<String> = Vec::new();
    // SAFETY: the callback only reads the records and pushes into `names`.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut names as *mut Vec<String> as *mut c_void) };
    names
}

impl Hdf5Api {
    fn from_library(library: Library) -> Result<Self, String> {
        /// SAFETY (for every use): the types above are the C prototypes of HDF5 ≥ 1.10.
        unsafe fn get<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
            let sym: Symbol<T> =
                unsafe { lib.get(name.as_bytes()) }.map_err(|_| format!("{name} not found"))?;
            Ok(*sym)
        }
        unsafe fn global(lib: &Library, name: &str) -> Option<*const Hid> {
            let sym: Symbol<*const Hid> = unsafe { lib.get(name.as_bytes()) }.ok()?;
            let ptr = sym.into_raw() as *const Hid;
            (!ptr.is_null()).then_some(ptr)
        }
        // hdf5plugin's plugins export no-op wrappers of the HDF5 functions its filters call
        // (its hdf5_dl.c: H5P*, H5T*, H5Epush2, ...), which it points at a libhdf5 only
        // once that library registers them: taken for a copy of HDF5, one made the filter
        // think several were loaded (errors went to stderr, not the stack) or answer for a
        // property list with zeros. These it does not wrap; a real libhdf5, or an object
        // depending on one (libhdf5_hl, a plugin linked to it), resolves them.
        for name in ["H5get_libversion", "H5Iget_type", "H5Eclear2"] {
            // SAFETY: only looked up, never called through this type.
            unsafe { get::<unsafe extern "C" fn()>(&library, name)? };
        }
        unsafe {
            let errors = (|| {
                Some(ErrorIds {
                    class: global(&library, "H5E_ERR_CLS_g")?,
                    major: global(&library, "H5E_PLINE_g")?,
                    minor: global(&library, "H5E_CANTINIT_g")?,
                })
            })();
            Ok(Hdf5Api {
                get_filter_by_id2: get(&library, "H5Pget_filter_by_id2")?,
                get_nfilters: get(&library, "H5Pget_nfilters")?,
                get_filter2: get(&library, "H5Pget_filter2")?,
                modify_filter: get(&library, "H5Pmodify_filter")?,
                get_chunk: get(&library, "H5Pget_chunk")?,
                get_class: get(&library, "H5Tget_class")?,
                get_order: get(&library, "H5Tget_order")?,
                get_size: get(&library, "H5Tget_size")?,
                push2: get(&library, "H5Epush2").ok(),
                zregister: get(&library, "H5Zregister").ok(),
                fill_value_defined: get(&library, "H5Pfill_value_defined").ok(),
                get_fill_value: get(&library, "H5Pget_fill_value").ok(),
                memory: get(&library, "H5allocate_memory")
                    .and_then(|a| Ok((a, get(&library, "H5free_memory")?)))
                    .ok(),
                clear_errors: get(&library, "H5Eclear2").ok(),
                drops_filter_errors: get::<unsafe extern "C" fn()>(&library, "H5_user_cb_prepare")
                    .is_ok(),
                id_checks: get(&library, "H5Iget_type")
                    .and_then(|t| Ok((t, get(&library, "H5Sget_simple_extent_ndims")?)))
                    .ok(),
                float_layout: (|| {
                    Some((
                        get(&library, "H5Tget_precision").ok()?,
                        get(&library, "H5Tget_offset").ok()?,
                        get(&library, "H5Tget_fields").ok()?,
                        get(&library, "H5Tget_ebias").ok()?,
                        get(&library, "H5Tget_norm").ok()?,
                    ))
                })(),
                errors,
                _library: library,
            })
        }
    }

    /// The cd_values and flags of filter `id` in a dataset creation property list.
    pub fn filter_values(&self, dcpl: Hid, id: u32) -> Result<(u32, Vec<u32>), String> {
        let mut flags: c_uint = 0;
        let mut values = vec![0 as c_uint; 64];
        let mut count = values.len();
        let mut config: c_uint = 0;
        // SAFETY: every out pointer addresses a live buffer of the size passed.
        let status = unsafe {
            (self.get_filter_by_id2)(
                dcpl,
                id as c_int,
                &mut flags,
                &mut count,
                values.as_mut_ptr(),
                0,
                std::ptr::null_mut(),
                &mut config,
            )
        };
        if status < 0 {
            return Err("H5Pget_filter_by_id2 failed".into());
        }
        if count > values.len() {
            return Err(format!(
                "{count} cd_values are more than any deepcq form has"
            ));
        }
        values.truncate(count);
        Ok((flags, values))
    }

    /// The ids of the filters in a dataset creation property list, in pipeline order
    /// (the order they run when writing).
    pub fn filter_ids(&self, dcpl: Hid) -> Result<Vec<u32>, String> {
        // SAFETY: a plain query of a property list id.
        let count = unsafe { (self.get_nfilters)(dcpl) };
        let count = u32::try_from(count).map_err(|_| "H5Pget_nfilters failed".to_string())?;
        (0..count)
            .map(|index| {
                let (mut flags, mut config, mut nelmts) = (0, 0, 0usize);
                // SAFETY: no cd_values or name are asked for (0 elements, 0 bytes).
                let id = unsafe {
                    (self.get_filter2)(
                        dcpl,
                        index,
                        &mut flags,
                        &mut nelmts,
                        std::ptr::null_mut(),
                        0,
                        std::ptr::null_mut(),
                        &mut config,
                    )
                };
                u32::try_from(id).map_err(|_| format!("H5Pget_filter2({index}) failed"))
            })
            .collect()
    }

    /// Replaces the cd_values of filter `id`.
    pub fn set_filter_values(
        &self,
        dcpl: Hid,
        id: u32,
        flags: u32,
        values: &[u32],
    ) -> Result<(), String> {
        // SAFETY: `values` is a live slice of the length passed.
        let status = unsafe {
            (self.modify_filter)(dcpl, id as c_int, flags, values.len(), values.as_ptr())
        };
        if status < 0 {
            Err("H5Pmodify_filter failed".into())
        } else {
            Ok(())
        }
    }

    /// Chunk dims of a dataset creation property list, slowest first.
    pub fn chunk_dims(&self, dcpl: Hid) -> Result<Vec<usize>, String> {
        let mut dims = [0u64; crate::wire::MAX_RANK];
        // SAFETY: `dims` holds MAX_RANK entries, the maximum passed.
        let rank = unsafe { (self.get_chunk)(dcpl, dims.len() as c_int, dims.as_mut_ptr()) };
        if rank <= 0 {
            return Err("the dataset is not chunked (H5Pget_chunk failed)".into());
        }
        Ok(dims[..rank as usize].iter().map(|&d| d as usize).collect())
    }

    /// The dataset's fill value as `size` bytes of `type_id` (the dataset's own type, so in
    /// its byte order), when the user defined one (`H5D_FILL_VALUE_USER_DEFINED`: h5py's
    /// `fillvalue=`, netCDF-4's `_FillValue` or default fill in fill mode); `None` for HDF5's default 0.
    pub fn user_fill_value(&self, dcpl: Hid, type_id: Hid, size: usize) -> Option<Vec<u8>> {
        const USER_DEFINED: c_int = 2;
        let (defined, get) = (self.fill_value_defined?, self.get_fill_value?);
        let mut status: c_int = -1;
        // SAFETY: `status` is a live int; plain query of a property list id.
        if unsafe { defined(dcpl, &mut status) } < 0 || status != USER_DEFINED {
            return None;
        }
        let mut value = vec![0u8; size];
        // SAFETY: `value` holds `size` bytes, the size of `type_id`.
        let ok = unsafe { get(dcpl, type_id, value.as_mut_ptr() as *mut c_void) } >= 0;
        ok.then_some(value)
    }

    /// Whether a float datatype of `size` bytes lays its bits out as IEEE 754 binary32 or
    /// binary64 does (precision, offset, sign, exponent and mantissa fields, exponent bias,
    /// implied leading bit). A float made with `H5Tset_fields` or `H5Tset_ebias` is not
    /// one, and compressing its bits as IEEE values would lose them. True where the
    /// library does not export the queries.
    pub fn is_ieee_float(&self, type_id: Hid, size: usize) -> bool {
        // (precision, sign, exponent position and size, mantissa size, bias)
        let ieee = match size {
            4 => (32, 31, 23, 8, 23, 127),
            8 => (64, 63, 52, 11, 52, 1023),
            _ => return false,
        };
        let Some((precision, offset, fields, ebias, norm)) = self.float_layout else {
            return true;
        };
        let (mut spos, mut epos, mut esize, mut mpos, mut msize) = (0, 0, 0, 0, 0);
        // SAFETY: plain queries on an id HDF5 handed us; the out pointers are live.
        unsafe {
            let got_fields = fields(
                type_id, &mut spos, &mut epos, &mut esize, &mut mpos, &mut msize,
            ) >= 0;
            got_fields
                && offset(type_id) == 0
                && mpos == 0
                && norm(type_id) == H5T_NORM_IMPLIED
                && (precision(type_id), spos, epos, esize, msize, ebias(type_id)) == ieee
        }
    }

    /// (class, size, byte order) of a datatype.
    pub fn type_info(&self, type_id: Hid) -> (c_int, usize, c_int) {
        // SAFETY: plain queries on an id HDF5 handed us.
        unsafe {
            (
                (self.get_class)(type_id),
                (self.get_size)(type_id),
                (self.get_order)(type_id),
            )
        }
    }

    /// Registers a filter class with this HDF5 (`H5Zregister`), for programs that link the
    /// filter instead of loading it from `HDF5_PLUGIN_PATH`.
    ///
    /// # Safety
    /// `class` must point to a valid `H5Z_class2_t` that lives as long as the process.
    pub unsafe fn register_filter(&self, class: *const c_void) -> Result<(), String> {
        let zregister = self.zregister.ok_or("H5Zregister not found")?;
        // SAFETY: the caller vouches for `class`.
        if unsafe { zregister(class) } < 0 {
            Err("H5Zregister failed".into())
        } else {
            Ok(())
        }
    }

    /// Whether both resolve the same library (one entry point at the same address).
    fn same_library(&self, other: &Hdf5Api) -> bool {
        self.get_filter_by_id2 as usize == other.get_filter_by_id2 as usize
    }

    /// Whether, in this library, `dcpl` is a property list that holds deepcq's filter,
    /// `type_id` a datatype and `space_id` a dataspace of the chunks' rank. A property list
    /// alone was not enough: each copy numbers its ids from the same start, and the list
    /// HDF5 hands the callbacks often had the number of a list another copy kept for an
    /// open dataset of deepcq's (netCDF-C keeps its variables open), so the filter set up
    /// that dataset instead and h5py stored 3 of 200 datasets raw (the filter is optional
    /// there). (H5Iis_valid cannot tell: it answers false for the ids H5Dcreate hands the
    /// callbacks, which the application holds no reference to.)
    fn holds_deepcq(&self, dcpl: Hid, type_id: Hid, space_id: Hid) -> bool {
        const H5I_DATATYPE: c_int = 3;
        const H5I_DATASPACE: c_int = 4;
        let ids_fit = |(get_type, ndims): (TypeInt, TypeInt)| {
            // SAFETY: plain queries of ids; an id this copy does not know answers an
            // error value.
            let (kinds, rank) =
                unsafe { ((get_type(type_id), get_type(space_id)), ndims(space_id)) };
            let chunk_rank = self.chunk_dims(dcpl).map(|d| d.len() as c_int);
            kinds == (H5I_DATATYPE, H5I_DATASPACE) && chunk_rank == Ok(rank)
        };
        let holds = self.filter_values(dcpl, crate::wire::FILTER_ID).is_ok()
            && self.id_checks.is_none_or(ids_fit);
        if !holds {
            if let Some(clear) = self.clear_errors {
                // SAFETY: clears this library's default error stack (H5E_DEFAULT).
                unsafe { clear(0) };
            }
        }
        holds
    }

    /// HDF5's own allocator and release for a filter's buffers, where the library has
    /// them: HDF5 frees the buffer a filter returns with its allocator, which a build with
    /// memory sanity checks (or another C runtime) does not share with `malloc`.
    pub fn memory(&self) -> Option<(AllocateMemory, FreeMemory)> {
        self.memory
    }

    /// Whether a message the filter function pushes is lost ([`Hdf5Api`]'s field).
    pub fn drops_filter_errors(&self) -> bool {
        self.drops_filter_errors
    }

    /// Pushes `message` onto the default HDF5 error stack, so that h5repack, h5py and C
    /// programs print it. Does nothing when the error API could not be resolved.
    pub fn push_error(&self, function: &str, message: &str) {
        let (Some(push), Some(ids)) = (self.push2, &self.errors) else {
            return;
        };
        let file = c"h5z-deepcq";
        let function = CString::new(function).unwrap_or_default();
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the globals are initialised once HDF5 is open, which it is whenever it
        // calls a filter callback; the format is a literal "%s".
        unsafe {
            push(
                0, // H5E_DEFAULT
                file.as_ptr(),
                function.as_ptr(),
                line!(),
                *ids.class,
                *ids.major,
                *ids.minor,
                c"%s".as_ptr(),
                message.as_ptr(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library exporting what hdf5plugin's plugins wrap (no-ops until registered), as
    /// its hdf5_dl.c does, is no copy of HDF5.
    #[test]
    fn a_library_wrapping_a_few_hdf5_functions_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("wrappers.c");
        let wrapped = [
            "H5Pget_filter_by_id2",
            "H5Pget_nfilters",
            "H5Pget_filter2",
            "H5Pmodify_filter",
            "H5Pget_chunk",
            "H5Tget_class",
            "H5Tget_order",
            "H5Tget_size",
            "H5Epush2",
            "H5Zregister",
        ];
        let body: String = wrapped
            .iter()
            .map(|f| format!("int {f}(void) {{ return 0; }}\n"))
            .collect();
        std::fs::write(&source, body).unwrap();
        // The path mentions hdf5, as hdf5plugin's do (.../hdf5plugin/plugins/libh5zfp.so).
        let object = dir.path().join("libh5z_hdf5plugin_like.so");
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&object)
            .arg(&source)
            .status()
            .expect("a C compiler");
        assert!(status.success());
        // SAFETY: the object has no initialisers.
        let library = unsafe { Library::open(Some(&object), RTLD_LAZY) }.unwrap();
        let refused = Hdf5Api::from_library(library).map(|_| ()).unwrap_err();
        assert!(refused.contains("H5get_libversion"), "{refused}");
    }
}
