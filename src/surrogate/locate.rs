//! Where the filter finds onnxruntime and the model, in the documented order.
//!
//! onnxruntime: `ORT_DYLIB_PATH`, then beside the plugin (the folder users point
//! `HDF5_PLUGIN_PATH` at), then the system library folders, then the dynamic loader's own
//! search. The model: the file `H5Z_DEEPCQ_MODEL` names, else the default model compiled
//! into the plugin, so a plugin file alone (plus onnxruntime) is a complete install.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// Environment variable naming libonnxruntime (the same one ort's own loader reads).
pub const ORT_ENV: &str = "ORT_DYLIB_PATH";
/// Environment variable naming a model file to use instead of the embedded default.
pub const MODEL_ENV: &str = "H5Z_DEEPCQ_MODEL";

/// The default surrogate, trained by `deepcq train` (reproduction in docs/surrogate.md).
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../models/default.onnx");

/// File names onnxruntime is published under, most specific last.
const ORT_NAMES: [&str; 2] = ["libonnxruntime.so", "libonnxruntime.so.1"];

/// Folders searched after the plugin's own, like the dynamic loader's defaults.
const SYSTEM_DIRS: [&str; 5] = [
    "/usr/local/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
];

/// Finds libonnxruntime, or says every place it looked and how to fix it.
pub fn onnxruntime_library() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(ORT_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(std::path::absolute(&path).unwrap_or(path))
        } else {
            Err(format!(
                "{ORT_ENV}={} is not a file; point it at libonnxruntime.so",
                path.display()
            ))
        };
    }
    let mut dirs: Vec<PathBuf> = own_folders();
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&paths).filter(|p| p.is_absolute()));
    }
    dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    for dir in &dirs {
        if let Some(found) = find_in(dir) {
            return Ok(found);
        }
    }
    // Then wherever the dynamic loader finds it: a folder registered in ld.so.cache
    // (/etc/ld.so.conf.d) is on no fixed list.
    for name in [c"libonnxruntime.so.1", c"libonnxruntime.so"] {
        if let Some(found) = loader_path(name, c"OrtGetApiBase") {
            return Ok(found);
        }
    }
    Err(format!(
        "onnxruntime not found: {ORT_ENV} is unset and no libonnxruntime.so is in {} nor on \
         the dynamic loader's path. Install it (the onnxruntime wheel from PyPI ships \
         onnxruntime/capi/libonnxruntime.so.*; scripts/setup.sh fetches it), then set \
         {ORT_ENV} to the file or copy it beside the plugin",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The file the dynamic loader finds for the library `name` on its own search (run paths,
/// LD_LIBRARY_PATH as the process started with it, ld.so.cache, /lib and /usr/lib): the
/// one holding its `symbol`. The library is opened and closed again; onnxruntime's own
/// loader opens the file it is given.
fn loader_path(name: &CStr, symbol: &CStr) -> Option<PathBuf> {
    // SAFETY: opening a library runs its initialisers, as loading it for use does; the
    // handle is closed once, after dladdr has read the loader's tables into `info`, whose
    // file name is copied before that.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            return None;
        }
        let address = libc::dlsym(handle, symbol.as_ptr());
        let mut info: libc::Dl_info = std::mem::zeroed();
        let path = (!address.is_null()
            && libc::dladdr(address, &mut info) != 0
            && !info.dli_fname.is_null())
        .then(|| {
            PathBuf::from(
                CStr::from_ptr(info.dli_fname)
                    .to_string_lossy()
                    .into_owned(),
            )
        });
        libc::dlclose(handle);
        path.filter(|p| p.is_absolute() && p.is_file())
    }
}

/// The first onnxruntime library file in `dir`: the plain names, then any versioned one.
fn find_in(dir: &Path) -> Option<PathBuf> {
    for name in ORT_NAMES {
        let path = dir.join(name);
        if path.is_file() {
            return Some(path);
        }
    }
    // The newest by version number (1.31.1 over 1.9.0), names like a backup's left out.
    let version = |p: &Path| -> Option<Vec<u32>> {
        let name = p.file_name()?.to_str()?;
        let numbers = name.strip_prefix("libonnxruntime.so.")?;
        numbers.split('.').map(|n| n.parse().ok()).collect()
    };
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter_map(|p| Some((version(&p)?, p)))
        .max()
        .map(|(_, p)| p)
}

/// The folder of the shared object holding this code (the plugin, or the executable when
/// the crate is linked statically), both as loaded and with symlinks resolved, so a plugin
/// folder of symlinks finds an onnxruntime placed next to either; for an executable in a
/// `bin` folder also its sibling `lib` (`PREFIX/bin/deepcq` finds `PREFIX/lib`, where
/// scripts/install.sh puts onnxruntime).
fn own_folders() -> Vec<PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let here = own_folders as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    let found = unsafe { libc::dladdr(here, &mut info) } != 0 && !info.dli_fname.is_null();
    if !found {
        return Vec::new();
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let mut path = PathBuf::from(name.to_string_lossy().into_owned());
    // For code in the executable the loader gives argv[0], a bare "deepcq" when run
    // through PATH, which names no folder: the executable's own path does. A library
    // opened by a relative path (HDF5_PLUGIN_PATH=plugin/) keeps its slash and is taken
    // from the working directory.
    if !path.is_absolute() {
        let bare = !name.to_bytes().contains(&b'/');
        let resolved = if bare {
            std::env::current_exe().ok()
        } else {
            std::path::absolute(&path).ok()
        };
        if let Some(resolved) = resolved {
            path = resolved;
        }
    }
    let mut dirs = Vec::new();
    if let Some(dir) = path.parent().filter(|d| d.is_absolute()) {
        dirs.push(dir.to_path_buf());
    }
    if let Some(dir) = std::fs::canonicalize(&path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let siblings: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| d.file_name().is_some_and(|n| n == "bin"))
        .filter_map(|d| Some(d.parent()?.join("lib")))
        .collect();
    dirs.extend(siblings);
    dirs
}

/// More than any surrogate this crate trains (the embedded one is under 2 MiB).
const MAX_MODEL_BYTES: u64 = 256 << 20;

/// A model file's bytes: a regular file of at most [`MAX_MODEL_BYTES`], so that a FIFO or
/// a device named by mistake fails instead of blocking the write that loads it.
fn read_model(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() || meta.len() > MAX_MODEL_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not an ONNX model file (a regular file of at most {MAX_MODEL_BYTES} bytes)"),
        ));
    }
    std::fs::read(path)
}

/// The model bytes and where they came from.
pub fn model() -> Result<(Cow<'static, [u8]>, String), String> {
    match std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        Some(path) => read_model(Path::new(&path))
            .map(|bytes| {
                (
                    Cow::Owned(bytes),
                    PathBuf::from(&path).display().to_string(),
                )
            })
            .map_err(|e| format!("{MODEL_ENV}={}: {e}", PathBuf::from(&path).display())),
        None => Ok((
            Cow::Borrowed(DEFAULT_MODEL),
            "embedded default model".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_is_an_onnx_file() {
        // ONNX is a protobuf whose first field (ir_version, tag 0x08) comes first.
        assert_eq!(DEFAULT_MODEL.first(), Some(&0x08));
        assert!(DEFAULT_MODEL.len() > 10_000 && DEFAULT_MODEL.len() <= 2 << 20);
    }

    #[test]
    fn the_loader_names_the_file_it_finds_a_library_in() {
        let libc = loader_path(c"libc.so.6", c"malloc").unwrap();
        assert!(libc.is_absolute() && libc.is_file(), "{}", libc.display());
        assert_eq!(loader_path(c"libc.so.6", c"no_such_symbol_here"), None);
        assert_eq!(loader_path(c"libno-such-library.so", c"malloc"), None);
    }

    #[test]
    fn own_folder_is_found_and_absolute() {
        let dirs = own_folders();
        assert!(!dirs.is_empty());
        assert!(
            dirs.iter().all(|d| d.is_absolute() && d.is_dir()),
            "{dirs:?}"
        );
    }

    #[test]
    fn the_newest_version_is_found_and_other_names_are_not() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1.9.0", "1.31.1", "1.31.1.bak", "old"] {
            std::fs::write(dir.path().join(format!("libonnxruntime.so.{name}")), b"x").unwrap();
        }
        assert_eq!(
            find_in(dir.path()),
            Some(dir.path().join("libonnxruntime.so.1.31.1"))
        );
    }

    #[test]
    fn a_model_path_that_is_not_a_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_model(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not an ONNX model file"), "{e}");
        assert!(read_model(&dir.path().join("missing.onnx")).is_err());
    }

    #[test]
    fn versioned_names_are_found() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_in(dir.path()), None);
        std::fs::write(dir.path().join("libonnxruntime.so.1.31.1"), b"x").unwrap();
        assert_eq!(
            find_in(dir.path()),
            Some(dir.path().join("libonnxruntime.so.1.31.1"))
        );
        std::fs::write(dir.path().join("libonnxruntime.so"), b"x").unwrap();
        assert_eq!(
            find_in(dir.path()),
            Some(dir.path().join("libonnxruntime.so"))
        );
    }
}
