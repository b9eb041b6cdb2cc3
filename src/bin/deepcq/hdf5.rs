//! The few HDF5 calls `deepcq inspect` and `deepcq bench` make, resolved at run time from
//! a libhdf5 found with `dlopen`.
//!
//! The CLI does not link libhdf5, for the same reason the plugin does not: it shares the
//! crate with the plugin, which must not link it (h5py bundles its own HDF5), and every
//! other command works without HDF5 installed. Only `inspect` and `bench` on HDF5 input
//! need the library, and they say which names were tried and how to fix a miss.
//!
//! Everything unsafe in the CLI lives here. Each HDF5 id is owned by a [`Handle`] that
//! closes it on drop.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::fmt;
use std::path::Path;

use h5z_deepcq::samples::SampleBuf;
use libloading::Library;

/// HDF5's `hid_t` (64-bit since 1.10).
type Hid = i64;
/// HDF5's `herr_t`.
type Herr = c_int;
/// HDF5's `hsize_t` and `haddr_t`.
type Hsize = u64;

/// `H5P_DEFAULT`, `H5S_ALL` and `H5E_DEFAULT` are all id 0.
const DEFAULT: Hid = 0;
/// `H5F_ACC_RDONLY`.
const ACC_RDONLY: c_uint = 0;
/// `H5I_DATASET` in `H5I_type_t` (the same in 1.10 through 2.0).
const ID_DATASET: c_int = 5;
/// `H5T_FLOAT` in `H5T_class_t`.
const CLASS_FLOAT: c_int = 1;
/// `H5T_ORDER_LE` in `H5T_order_t`.
const ORDER_LE: c_int = 0;
/// `H5D_CHUNKED` in `H5D_layout_t`.
const LAYOUT_CHUNKED: c_int = 2;
/// `H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`, a flag of `H5Pset_chunk_opts`.
const DONT_FILTER_PARTIAL_CHUNKS: c_uint = 0x0002;
/// `H5D_FILL_VALUE_USER_DEFINED` in `H5D_fill_value_t`.
const FILL_USER_DEFINED: c_int = 2;
/// `H5L_TYPE_HARD` in `H5L_type_t`.
const LINK_HARD: c_int = 0;
/// `H5_INDEX_NAME` and `H5_ITER_INC`.
const INDEX_NAME: c_int = 0;
const ITER_INC: c_int = 0;
/// Largest rank HDF5 allows.
const MAX_RANK: usize = 32;

/// Where `DEEPCQ_HDF5_LIB` points, when set, replaces the search.
pub const LIB_ENV: &str = "DEEPCQ_HDF5_LIB";

/// Library names tried in order: Debian's serial 1.10 first (what hdf5-tools uses), then
/// the upstream names of 1.10, 1.12, 1.14 and 2.0, then Debian's MPI build.
const CANDIDATES: &[&str] = &[
    "libhdf5_serial.so.103",
    "libhdf5_serial.so",
    "libhdf5.so.103",
    "libhdf5.so",
    "libhdf5.so.200",
    "libhdf5.so.310",
    "libhdf5.so.320",
    "libhdf5_openmpi.so.103",
];

/// Why an HDF5 call could not be made or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Hdf5Error {
    /// No usable libhdf5 was found.
    #[error(
        "cannot load libhdf5 ≥ 1.10.5, which `deepcq inspect` and `deepcq bench` on HDF5 input \
         need at run time; tried: {tried}. \
         Install it (Debian/Ubuntu: `apt install libhdf5-103-1`) or set {LIB_ENV} to the \
         path of a libhdf5.so"
    )]
    NotFound {
        /// Each name tried and why it failed.
        tried: String,
    },
    /// A call returned HDF5's failure value.
    #[error("{0} failed")]
    Call(String),
    /// A name holds a NUL byte.
    #[error("name {0:?} holds a NUL byte")]
    BadName(String),
}

type VisitCallback = unsafe extern "C" fn(Hid, *const c_char, *const c_void, *mut c_void) -> Herr;

/// Declares the function table and its resolver. Each entry lists the symbol names to try,
/// newest API first where HDF5 renamed a function.
macro_rules! api {
    ($($field:ident [$($symbol:literal),+]: fn($($arg:ty),*) -> $ret:ty;)+) => {
        struct Api {
            $($field: unsafe extern "C" fn($($arg),*) -> $ret,)+
        }

        impl Api {
            /// Resolves every entry, or names the first one missing.
            fn resolve(lib: &Library) -> Result<Self, &'static str> {
                Ok(Api {
                    $($field: {
                        type F = unsafe extern "C" fn($($arg),*) -> $ret;
                        let names: &[&'static str] = &[$($symbol),+];
                        names
                            .iter()
                            // SAFETY: F is the C prototype of this symbol in HDF5 ≥ 1.10.5.
                            .find_map(|n| unsafe { lib.get::<F>(n.as_bytes()) }.ok().map(|s| *s))
                            .ok_or(names[0])?
                    },)+
                })
            }
        }
    };
}

api! {
    open ["H5open"]: fn() -> Herr;
    get_libversion ["H5get_libversion"]: fn(*mut c_uint, *mut c_uint, *mut c_uint) -> Herr;
    checksum_fletcher32 ["H5_checksum_fletcher32"]: fn(*const c_void, usize) -> u32;
    set_auto ["H5Eset_auto2"]: fn(Hid, *const c_void, *mut c_void) -> Herr;
    fopen ["H5Fopen"]: fn(*const c_char, c_uint, Hid) -> Hid;
    fclose ["H5Fclose"]: fn(Hid) -> Herr;
    oopen ["H5Oopen"]: fn(Hid, *const c_char, Hid) -> Hid;
    oclose ["H5Oclose"]: fn(Hid) -> Herr;
    iget_type ["H5Iget_type"]: fn(Hid) -> c_int;
    lvisit ["H5Lvisit2", "H5Lvisit"]: fn(Hid, c_int, c_int, VisitCallback, *mut c_void) -> Herr;
    dopen ["H5Dopen2"]: fn(Hid, *const c_char, Hid) -> Hid;
    dclose ["H5Dclose"]: fn(Hid) -> Herr;
    dget_space ["H5Dget_space"]: fn(Hid) -> Hid;
    dget_type ["H5Dget_type"]: fn(Hid) -> Hid;
    dget_create_plist ["H5Dget_create_plist"]: fn(Hid) -> Hid;
    dget_storage_size ["H5Dget_storage_size"]: fn(Hid) -> Hsize;
    dget_num_chunks ["H5Dget_num_chunks"]: fn(Hid, Hid, *mut Hsize) -> Herr;
    dget_chunk_info ["H5Dget_chunk_info"]:
        fn(Hid, Hid, Hsize, *mut Hsize, *mut c_uint, *mut Hsize, *mut Hsize) -> Herr;
    dget_chunk_storage_size ["H5Dget_chunk_storage_size"]:
        fn(Hid, *const Hsize, *mut Hsize) -> Herr;
    dread ["H5Dread"]: fn(Hid, Hid, Hid, Hid, Hid, *mut c_void) -> Herr;
    dread_chunk ["H5Dread_chunk", "H5Dread_chunk1"]:
        fn(Hid, Hid, *const Hsize, *mut u32, *mut c_void) -> Herr;
    sget_ndims ["H5Sget_simple_extent_ndims"]: fn(Hid) -> c_int;
    sget_dims ["H5Sget_simple_extent_dims"]: fn(Hid, *mut Hsize, *mut Hsize) -> c_int;
    sclose ["H5Sclose"]: fn(Hid) -> Herr;
    pget_layout ["H5Pget_layout"]: fn(Hid) -> c_int;
    pget_chunk ["H5Pget_chunk"]: fn(Hid, c_int, *mut Hsize) -> c_int;
    pget_chunk_opts ["H5Pget_chunk_opts"]: fn(Hid, *mut c_uint) -> Herr;
    pget_nfilters ["H5Pget_nfilters"]: fn(Hid) -> c_int;
    pget_filter ["H5Pget_filter2"]:
        fn(Hid, c_uint, *mut c_uint, *mut usize, *mut c_uint, usize, *mut c_char, *mut c_uint)
            -> c_int;
    pclose ["H5Pclose"]: fn(Hid) -> Herr;
    pfill_value_defined ["H5Pfill_value_defined"]: fn(Hid, *mut c_int) -> Herr;
    pget_fill_value ["H5Pget_fill_value"]: fn(Hid, Hid, *mut c_void) -> Herr;
    tget_class ["H5Tget_class"]: fn(Hid) -> c_int;
    tget_size ["H5Tget_size"]: fn(Hid) -> usize;
    tget_sign ["H5Tget_sign"]: fn(Hid) -> c_int;
    tclose ["H5Tclose"]: fn(Hid) -> Herr;
    tcopy ["H5Tcopy"]: fn(Hid) -> Hid;
    tset_order ["H5Tset_order"]: fn(Hid, c_int) -> Herr;
}

/// A loaded libhdf5 and its resolved functions.
pub struct Hdf5 {
    api: Api,
    // Declared last: the function pointers above must not outlive the library.
    _library: Library,
}

impl Hdf5 {
    /// Loads libhdf5 from `DEEPCQ_HDF5_LIB` or the usual names, and turns off HDF5's own
    /// error printing (failures are reported by the caller, once, in its own words).
    pub fn load() -> Result<Self, Hdf5Error> {
        let names: Vec<String> = match std::env::var(LIB_ENV) {
            Ok(path) if !path.is_empty() => vec![path],
            _ => CANDIDATES.iter().map(|s| s.to_string()).collect(),
        };
        let mut tried = Vec::new();
        for name in names {
            // SAFETY: loading libhdf5 runs its initialisers, which have no preconditions.
            let library = match unsafe { Library::new(&name) } {
                Ok(lib) => lib,
                Err(e) => {
                    tried.push(format!("{name} ({})", short_dlerror(&e)));
                    continue;
                }
            };
            match Api::resolve(&library) {
                Ok(api) => {
                    // SAFETY: H5open and H5Eset_auto2 with a null handler take no pointers
                    // HDF5 keeps.
                    unsafe {
                        (api.open)();
                        (api.set_auto)(DEFAULT, std::ptr::null(), std::ptr::null_mut());
                    }
                    return Ok(Hdf5 {
                        api,
                        _library: library,
                    });
                }
                Err(symbol) => tried.push(format!("{name} (lacks {symbol}: older than 1.10.5)")),
            }
        }
        Err(Hdf5Error::NotFound {
            tried: tried.join(", "),
        })
    }

    /// The library's version, "major.minor.release".
    pub fn version(&self) -> String {
        let (mut major, mut minor, mut release) = (0, 0, 0);
        // SAFETY: three out values.
        unsafe { (self.api.get_libversion)(&mut major, &mut minor, &mut release) };
        format!("{major}.{minor}.{release}")
    }

    /// Opens a file read-only.
    pub fn open(&self, path: &Path) -> Result<File<'_>, Hdf5Error> {
        let c_path = cstring(&path.to_string_lossy())?;
        // SAFETY: a NUL-terminated path and constant flags.
        let id = unsafe { (self.api.fopen)(c_path.as_ptr(), ACC_RDONLY, DEFAULT) };
        let handle = self.handle(id, self.api.fclose, || {
            // HDF5's own stack is silenced: say what the system says of the file, else the
            // usual causes (on Lustre and GPFS, HDF5's file locking itself).
            let why = match std::fs::File::open(path) {
                Err(e) => e.to_string(),
                Ok(_) => "not an HDF5 file, or locked by a writer; where the file system \
                          does not support HDF5's file locks (some Lustre or GPFS mounts), \
                          set HDF5_USE_FILE_LOCKING=FALSE"
                    .into(),
            };
            format!("H5Fopen({}) ({why})", path.display())
        })?;
        Ok(File { h5: self, handle })
    }

    fn handle(
        &self,
        id: Hid,
        close: unsafe extern "C" fn(Hid) -> Herr,
        what: impl FnOnce() -> String,
    ) -> Result<Handle, Hdf5Error> {
        if id < 0 {
            return Err(Hdf5Error::Call(what()));
        }
        Ok(Handle { id, close })
    }
}

/// The first line of a dlopen error, without libloading's prefix.
fn short_dlerror(e: &libloading::Error) -> String {
    let text = e.to_string();
    text.rsplit(": ").next().unwrap_or(&text).to_string()
}

fn cstring(s: &str) -> Result<CString, Hdf5Error> {
    CString::new(s).map_err(|_| Hdf5Error::BadName(s.to_string()))
}

/// An open HDF5 id, closed on drop.
struct Handle {
    id: Hid,
    close: unsafe extern "C" fn(Hid) -> Herr,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `id` is open and owned by this handle alone. The handle cannot outlive
        // the library because every owner borrows the `Hdf5` it came from.
        unsafe { (self.close)(self.id) };
    }
}

/// An open file.
pub struct File<'a> {
    h5: &'a Hdf5,
    handle: Handle,
}

/// What a file's hard links lead to, as far as inspect and bench care.
pub struct Objects {
    /// Paths of the datasets, in name order.
    pub datasets: Vec<String>,
    /// Paths of the objects this libhdf5 could not open (a file written by a newer HDF5
    /// may hold objects an older library cannot read): each may be a dataset.
    pub unopened: Vec<String>,
}

impl<'a> File<'a> {
    /// Every object reachable through hard links from the root group, in name order.
    /// Soft and external links are skipped: they would list a dataset twice, or one in
    /// another file, and may dangle.
    pub fn objects(&self) -> Result<Objects, Hdf5Error> {
        unsafe extern "C" fn collect(
            _group: Hid,
            name: *const c_char,
            info: *const c_void,
            out: *mut c_void,
        ) -> Herr {
            // SAFETY: HDF5 passes a NUL-terminated name and a link info record whose first
            // field is the link type (H5L_info_t in 1.10, H5L_info2_t since 1.12); `out`
            // is the Vec given below.
            let names = unsafe { &mut *(out as *mut Vec<String>) };
            let hard = !info.is_null() && unsafe { *(info as *const c_int) } == LINK_HARD;
            if hard && !name.is_null() {
                names.push(
                    unsafe { CStr::from_ptr(name) }
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            0
        }
        let api = &self.h5.api;
        let mut names: Vec<String> = Vec::new();
        // SAFETY: the callback only pushes into `names`, which outlives the call.
        let status = unsafe {
            (api.lvisit)(
                self.handle.id,
                INDEX_NAME,
                ITER_INC,
                collect,
                &mut names as *mut Vec<String> as *mut c_void,
            )
        };
        if status < 0 {
            return Err(Hdf5Error::Call(
                "H5Lvisit (listing the file's links)".into(),
            ));
        }
        let (mut datasets, mut unopened) = (Vec::new(), Vec::new());
        for name in names {
            let c_name = cstring(&name)?;
            // SAFETY: an open file id and a NUL-terminated link name.
            let id = unsafe { (api.oopen)(self.handle.id, c_name.as_ptr(), DEFAULT) };
            let Ok(object) = self.h5.handle(id, api.oclose, String::new) else {
                unopened.push(format!("/{name}"));
                continue;
            };
            // SAFETY: an open object id.
            if unsafe { (api.iget_type)(object.id) } == ID_DATASET {
                datasets.push(format!("/{name}"));
            }
        }
        Ok(Objects { datasets, unopened })
    }

    /// Opens the dataset at `path`.
    pub fn dataset(&self, path: &str) -> Result<Dataset<'a>, Hdf5Error> {
        let api = &self.h5.api;
        let c_path = cstring(path)?;
        // SAFETY: an open file id and a NUL-terminated path.
        let id = unsafe { (api.dopen)(self.handle.id, c_path.as_ptr(), DEFAULT) };
        let handle = self.h5.handle(id, api.dclose, || {
            format!("H5Dopen2({path}) (no such dataset)")
        })?;
        // SAFETY: an open dataset id.
        let space = unsafe { (api.dget_space)(handle.id) };
        let space = self
            .h5
            .handle(space, api.sclose, || format!("H5Dget_space({path})"))?;
        // SAFETY: an open dataset id.
        let dcpl = unsafe { (api.dget_create_plist)(handle.id) };
        let dcpl = self
            .h5
            .handle(dcpl, api.pclose, || format!("H5Dget_create_plist({path})"))?;
        Ok(Dataset {
            h5: self.h5,
            path: path.to_string(),
            handle,
            space,
            dcpl,
        })
    }
}

/// The class of an HDF5 datatype, as far as inspect cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    /// `H5T_class_t`.
    pub class: c_int,
    /// Size in bytes.
    pub size: usize,
    /// True for signed integers.
    pub signed: bool,
}

impl TypeInfo {
    /// A 32- or 64-bit float: what the filter compresses and the bench reads.
    pub fn is_f32_or_f64(&self) -> bool {
        self.class == CLASS_FLOAT && (self.size == 4 || self.size == 8)
    }
}

impl fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.size * 8;
        match self.class {
            0 if self.signed => write!(f, "i{bits}"),
            0 => write!(f, "u{bits}"),
            1 => write!(f, "f{bits}"),
            c => {
                let name = match c {
                    2 => "time",
                    3 => "string",
                    4 => "bitfield",
                    5 => "opaque",
                    6 => "compound",
                    7 => "reference",
                    8 => "enum",
                    9 => "vlen",
                    10 => "array",
                    _ => "unknown",
                };
                write!(f, "{name} ({} B)", self.size)
            }
        }
    }
}

/// One filter in a dataset's pipeline.
#[derive(Clone, Debug)]
pub struct Filter {
    /// Filter id.
    pub id: i32,
    /// The name HDF5 records for it.
    pub name: String,
    /// The cd_values stored in the file.
    pub cd_values: Vec<u32>,
}

/// Where one chunk is and how it was filtered.
#[derive(Clone, Debug)]
pub struct ChunkInfo {
    /// Logical offset of the chunk's first element, in elements.
    pub offset: Vec<u64>,
    /// Bit `i` set: filter `i` of the pipeline was skipped for this chunk. None for chunks
    /// looked up by offset, whose read gives it ([`Dataset::read_chunk`]).
    pub filter_mask: Option<u32>,
    /// Bytes stored.
    pub size: u64,
}

/// An open dataset with its dataspace and creation property list.
pub struct Dataset<'a> {
    h5: &'a Hdf5,
    path: String,
    handle: Handle,
    space: Handle,
    dcpl: Handle,
}

impl Dataset<'_> {
    fn call_failed(&self, what: &str) -> Hdf5Error {
        Hdf5Error::Call(format!("{what}({})", self.path))
    }

    /// Dims, slowest first.
    pub fn dims(&self) -> Result<Vec<u64>, Hdf5Error> {
        let api = &self.h5.api;
        // SAFETY: an open dataspace id.
        let rank = unsafe { (api.sget_ndims)(self.space.id) };
        let rank = usize::try_from(rank)
            .ok()
            .filter(|&r| r <= MAX_RANK)
            .ok_or_else(|| self.call_failed("H5Sget_simple_extent_ndims"))?;
        let mut dims = vec![0; rank];
        // SAFETY: `dims` holds `rank` entries; maxdims may be null.
        let got =
            unsafe { (api.sget_dims)(self.space.id, dims.as_mut_ptr(), std::ptr::null_mut()) };
        if got < 0 {
            return Err(self.call_failed("H5Sget_simple_extent_dims"));
        }
        Ok(dims)
    }

    /// The element type.
    pub fn dtype(&self) -> Result<TypeInfo, Hdf5Error> {
        let api = &self.h5.api;
        // SAFETY: an open dataset id.
        let id = unsafe { (api.dget_type)(self.handle.id) };
        let ty = self
            .h5
            .handle(id, api.tclose, || format!("H5Dget_type({})", self.path))?;
        // SAFETY: an open datatype id.
        let (class, size) = unsafe { ((api.tget_class)(ty.id), (api.tget_size)(ty.id)) };
        if class < 0 || size == 0 {
            return Err(self.call_failed("H5Tget_class"));
        }
        // SAFETY: as above; H5Tget_sign is only asked about integers.
        let signed = class == 0 && unsafe { (api.tget_sign)(ty.id) } == 1;
        Ok(TypeInfo {
            class,
            size,
            signed,
        })
    }

    /// Bytes the dataset's values take in the file (0 when none are allocated).
    pub fn storage_size(&self) -> u64 {
        // SAFETY: an open dataset id.
        unsafe { (self.h5.api.dget_storage_size)(self.handle.id) }
    }

    /// Chunk dims, or `None` for contiguous and compact datasets.
    pub fn chunk_dims(&self) -> Result<Option<Vec<u64>>, Hdf5Error> {
        let api = &self.h5.api;
        // SAFETY: an open property list id.
        if unsafe { (api.pget_layout)(self.dcpl.id) } != LAYOUT_CHUNKED {
            return Ok(None);
        }
        let mut dims = vec![0; MAX_RANK];
        // SAFETY: `dims` holds MAX_RANK entries.
        let rank = unsafe { (api.pget_chunk)(self.dcpl.id, MAX_RANK as c_int, dims.as_mut_ptr()) };
        let rank = usize::try_from(rank).map_err(|_| self.call_failed("H5Pget_chunk"))?;
        dims.truncate(rank.min(MAX_RANK));
        Ok(Some(dims))
    }

    /// Whether `stored` (a chunk as read raw) ends with the fletcher32 checksum of the bytes
    /// before it, as HDF5's fletcher32 filter appends it (or in the byte order libraries
    /// before 1.6.3 wrote, which HDF5 still accepts).
    pub fn fletcher32_holds(&self, stored: &[u8]) -> bool {
        let Some(split) = stored.len().checked_sub(4) else {
            return false;
        };
        let (body, sum) = stored.split_at(split);
        // SAFETY: `body` is `body.len()` readable bytes.
        let computed =
            unsafe { (self.h5.api.checksum_fletcher32)(body.as_ptr().cast(), body.len()) };
        let c = computed.to_le_bytes();
        // HDF5's legacy form swaps the bytes inside each 16-bit half.
        let reversed = u32::from_le_bytes([c[1], c[0], c[3], c[2]]);
        let sum = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        sum == computed || sum == reversed
    }

    /// Whether HDF5 stores this dataset's partial edge chunks without running the filter
    /// pipeline (`H5Pset_chunk_opts` with `H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`): their
    /// filter mask then says nothing of it.
    pub fn partial_chunks_unfiltered(&self) -> bool {
        let mut opts: c_uint = 0;
        // SAFETY: an open property list id and one out value.
        let status = unsafe { (self.h5.api.pget_chunk_opts)(self.dcpl.id, &mut opts) };
        status >= 0 && opts & DONT_FILTER_PARTIAL_CHUNKS != 0
    }

    /// The filter pipeline, in the order HDF5 applies it when writing.
    pub fn filters(&self) -> Result<Vec<Filter>, Hdf5Error> {
        let api = &self.h5.api;
        // SAFETY: an open property list id.
        let count = unsafe { (api.pget_nfilters)(self.dcpl.id) };
        let count = c_uint::try_from(count).map_err(|_| self.call_failed("H5Pget_nfilters"))?;
        let mut filters = Vec::new();
        for index in 0..count {
            let mut flags: c_uint = 0;
            let mut cd = vec![0 as c_uint; 64];
            let mut cd_len = cd.len();
            let mut name = [0 as c_char; 256];
            let mut config: c_uint = 0;
            // SAFETY: every out pointer addresses a buffer of the size passed with it.
            let id = unsafe {
                (api.pget_filter)(
                    self.dcpl.id,
                    index,
                    &mut flags,
                    &mut cd_len,
                    cd.as_mut_ptr(),
                    name.len(),
                    name.as_mut_ptr(),
                    &mut config,
                )
            };
            if id < 0 {
                return Err(self.call_failed("H5Pget_filter2"));
            }
            cd.truncate(cd_len.min(cd.len()));
            name[name.len() - 1] = 0;
            // SAFETY: the buffer is NUL-terminated (forced just above).
            let name = unsafe { CStr::from_ptr(name.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            filters.push(Filter {
                id,
                name,
                cd_values: cd,
            });
        }
        Ok(filters)
    }

    /// Every allocated chunk: in C order of their offsets where every chunk of the extent
    /// is allocated, else in HDF5's index order.
    pub fn chunks(&self) -> Result<Vec<ChunkInfo>, Hdf5Error> {
        let api = &self.h5.api;
        let dims = self.dims()?;
        let rank = dims.len();
        let mut count: Hsize = 0;
        // SAFETY: open dataset and dataspace ids. The dataspace is passed instead of
        // H5S_ALL, which HDF5 1.10 mishandles here.
        if unsafe { (api.dget_num_chunks)(self.handle.id, self.space.id, &mut count) } < 0 {
            return Err(self.call_failed("H5Dget_num_chunks"));
        }
        // H5Dget_chunk_info (and in HDF5 1.10 H5Dget_chunk_info_by_coord) walks the index
        // from its start on every call: a dataset of 25 600 chunks took 5 s that way, one
        // of 262 144 would take minutes. Where every chunk of the extent is allocated
        // (written whole), each one's size is looked up by its offset instead.
        if let Some(chunk_dims) = self.chunk_dims()?.filter(|c| c.len() == rank && rank > 0) {
            let grid: Vec<u64> = dims
                .iter()
                .zip(&chunk_dims)
                .map(|(&d, &c)| d.div_ceil(c.max(1)))
                .collect();
            if grid.iter().try_fold(1u64, |n, &g| n.checked_mul(g)) == Some(count) {
                return self.chunks_by_offset(&dims, &chunk_dims);
            }
        }
        let mut chunks = Vec::new();
        for index in 0..count {
            let mut offset = vec![0; rank.max(1)];
            let (mut mask, mut addr, mut size) = (0 as c_uint, 0 as Hsize, 0 as Hsize);
            // SAFETY: `offset` holds `rank` entries; the rest are single out values.
            let status = unsafe {
                (api.dget_chunk_info)(
                    self.handle.id,
                    self.space.id,
                    index,
                    offset.as_mut_ptr(),
                    &mut mask,
                    &mut addr,
                    &mut size,
                )
            };
            if status < 0 {
                return Err(self.call_failed("H5Dget_chunk_info"));
            }
            offset.truncate(rank);
            chunks.push(ChunkInfo {
                offset,
                filter_mask: Some(mask),
                size,
            });
        }
        Ok(chunks)
    }

    /// The chunks of `chunk_dims` that tile an extent of `dims`, every one allocated, in C
    /// order of their offsets.
    fn chunks_by_offset(
        &self,
        dims: &[u64],
        chunk_dims: &[u64],
    ) -> Result<Vec<ChunkInfo>, Hdf5Error> {
        let api = &self.h5.api;
        let sizes = |v: &[u64]| -> Vec<usize> {
            v.iter()
                .map(|&n| usize::try_from(n).unwrap_or(usize::MAX))
                .collect()
        };
        let blocks = crate::bench::chunking::blocks(&sizes(dims), &sizes(chunk_dims));
        blocks
            .into_iter()
            .map(|block| {
                let offset: Vec<u64> = block.origin.iter().map(|&o| o as u64).collect();
                let mut size: Hsize = 0;
                // SAFETY: `offset` holds one entry per dimension; `size` is an out value.
                let status = unsafe {
                    (api.dget_chunk_storage_size)(self.handle.id, offset.as_ptr(), &mut size)
                };
                if status < 0 {
                    return Err(self.call_failed("H5Dget_chunk_storage_size"));
                }
                Ok(ChunkInfo {
                    offset,
                    filter_mask: None,
                    size,
                })
            })
            .collect()
    }

    /// The dataset's own type in little-endian byte order: what values are read as.
    fn little_endian_type(&self) -> Result<Handle, Hdf5Error> {
        let api = &self.h5.api;
        // SAFETY: an open dataset id.
        let file_type = unsafe { (api.dget_type)(self.handle.id) };
        let file_type = self.h5.handle(file_type, api.tclose, || {
            format!("H5Dget_type({})", self.path)
        })?;
        // SAFETY: an open datatype id; the copy is ours to change.
        let mem_type = unsafe { (api.tcopy)(file_type.id) };
        let mem_type = self
            .h5
            .handle(mem_type, api.tclose, || format!("H5Tcopy({})", self.path))?;
        // SAFETY: an open, modifiable datatype id.
        if unsafe { (api.tset_order)(mem_type.id, ORDER_LE) } < 0 {
            return Err(self.call_failed("H5Tset_order"));
        }
        Ok(mem_type)
    }

    /// The fill value of a 32- or 64-bit float dataset, when its creator defined one
    /// (h5py's `fillvalue=`, netCDF-4's `_FillValue` or default fill): the value the
    /// filter treats as missing data in that dataset's chunks. `None` for HDF5's default
    /// 0, which marks nothing, for other types, and, as in the filter
    /// (`h5z_deepcq::h5::api`), when HDF5 cannot tell.
    pub fn user_fill_value(&self) -> Result<Option<f64>, Hdf5Error> {
        let api = &self.h5.api;
        let info = self.dtype()?;
        if !info.is_f32_or_f64() {
            return Ok(None);
        }
        let mut status: c_int = -1;
        // SAFETY: an open property list id and a live int.
        let defined = unsafe { (api.pfill_value_defined)(self.dcpl.id, &mut status) } >= 0;
        if !defined || status != FILL_USER_DEFINED {
            return Ok(None);
        }
        let mem_type = self.little_endian_type()?;
        let mut bytes = [0u8; 8];
        // SAFETY: `bytes` holds 8 bytes, at least the memory type's size (4 or 8).
        let got = unsafe {
            (api.pget_fill_value)(self.dcpl.id, mem_type.id, bytes.as_mut_ptr() as *mut c_void)
        };
        if got < 0 {
            return Ok(None);
        }
        Ok(Some(if info.size == 4 {
            f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f64
        } else {
            f64::from_le_bytes(bytes)
        }))
    }

    /// Every value of a 32- or 64-bit float dataset, converted to little-endian by HDF5
    /// (through the dataset's filters, so a filtered dataset needs its plugins found).
    pub fn read_floats(&self) -> Result<SampleBuf, Hdf5Error> {
        let api = &self.h5.api;
        let info = self.dtype()?;
        if !info.is_f32_or_f64() {
            return Err(Hdf5Error::Call(format!(
                "reading {} as f32/f64 (its type is {info})",
                self.path
            )));
        }
        let count = self.dims()?.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
        });
        // Checked in full, as `bytes` is HDF5's to fill (a size that wrapped to 0 let it
        // write past the buffer), and allocated fallibly: a dataset larger than memory is
        // an array left out, not the end of the run.
        let len = count
            .and_then(|n| n.checked_mul(info.size))
            .ok_or_else(|| self.call_failed("dataset size"))?;
        let mem_type = self.little_endian_type()?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| Hdf5Error::Call(format!("{} needs {len} bytes in memory", self.path)))?;
        bytes.resize(len, 0u8);
        // SAFETY: `bytes` holds every element of the dataset in the memory type's size;
        // H5S_ALL selects the whole dataset in memory and in the file.
        let status = unsafe {
            (api.dread)(
                self.handle.id,
                mem_type.id,
                DEFAULT,
                DEFAULT,
                DEFAULT,
                bytes.as_mut_ptr() as *mut c_void,
            )
        };
        if status < 0 {
            return Err(Hdf5Error::Call(format!(
                "H5Dread({}) (a filter it needs may be missing, see HDF5_PLUGIN_PATH, or a \
                 chunk is damaged, see `deepcq inspect`)",
                self.path
            )));
        }
        Ok(if info.size == 4 {
            SampleBuf::F32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        } else {
            SampleBuf::F64(
                bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
            )
        })
    }

    /// The stored bytes of one chunk, exactly as the filter pipeline left them.
    pub fn read_chunk(&self, chunk: &ChunkInfo) -> Result<(Vec<u8>, u32), Hdf5Error> {
        let size = usize::try_from(chunk.size).map_err(|_| self.call_failed("chunk size"))?;
        let mut buf = vec![0u8; size];
        let mut mask: u32 = 0;
        // SAFETY: `offset` has the dataset's rank and `buf` the chunk's stored size, which
        // is what H5Dread_chunk writes.
        let status = unsafe {
            (self.h5.api.dread_chunk)(
                self.handle.id,
                DEFAULT,
                chunk.offset.as_ptr(),
                &mut mask,
                buf.as_mut_ptr() as *mut c_void,
            )
        };
        if status < 0 {
            return Err(Hdf5Error::Call(format!(
                "H5Dread_chunk({} at {:?})",
                self.path, chunk.offset
            )));
        }
        Ok((buf, mask))
    }
}
