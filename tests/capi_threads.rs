//! Thread safety of the C API, driven through the `extern "C"` functions themselves.
//!
//! What "identical to a serial run" means:
//! - separate sessions (one per thread): every chunk is byte-identical to the same session
//!   run serially, because a session's state depends only on its own steps;
//! - one shared session *without* adaptation: byte-identical to serial, since no state
//!   feeds into the choice;
//! - one shared *adaptive* session: the state evolves in whatever order the threads'
//!   observations land, so bytes may differ from any serial order. What must hold: every
//!   chunk decodes, meets the target on re-measurement, and the counters add up.

use std::ffi::{c_uint, c_void};
use std::ptr;

use h5z_deepcq::capi::*;
use h5z_deepcq::metrics;
use h5z_deepcq::synth::{generate, Kind};

const THREADS: usize = 8;
const STEPS: usize = 4;
const SHAPE: [usize; 3] = [16, 32, 32];
const TARGET: f64 = 55.0;

/// Timestep `t` of variable `v`: a spectral field that drifts with t.
fn field(v: usize, t: usize) -> Vec<f32> {
    let base = generate(
        Kind::Spectral {
            slope: 2.5 + 0.2 * v as f64,
        },
        &SHAPE,
        v as u64,
    );
    let next = generate(Kind::Spectral { slope: 3.0 }, &SHAPE, 100 + v as u64);
    base.iter()
        .zip(&next)
        .map(|(a, b)| (a + 0.1 * t as f64 * b) as f32)
        .collect()
}

fn cd() -> Vec<c_uint> {
    let mut cd = [0 as c_uint; H5Z_DEEPCQ_CD_MAX];
    let mut n = cd.len();
    // SAFETY: cd holds n words; n is writable.
    let status =
        unsafe { h5z_deepcq_cd_values(H5Z_DEEPCQ_PSNR, TARGET, 0, 0, 0, cd.as_mut_ptr(), &mut n) };
    assert_eq!(status, H5Z_DEEPCQ_OK);
    cd[..n].to_vec()
}

/// A session pointer that may cross threads (the session is internally synchronised).
#[derive(Clone, Copy)]
struct Shared(*const H5zDeepcqSession);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn new_session(options: c_uint) -> *mut H5zDeepcqSession {
    let cd = cd();
    let mut s = ptr::null_mut();
    // SAFETY: cd holds cd.len() words; s is writable.
    let status = unsafe { h5z_deepcq_session_new(cd.as_ptr(), cd.len(), options, &mut s) };
    assert_eq!(status, H5Z_DEEPCQ_OK);
    s
}

fn take(out: *mut c_void, len: usize) -> Vec<u8> {
    // SAFETY: the library allocated `len` bytes at `out`; we copy then free them once.
    unsafe {
        let bytes = std::slice::from_raw_parts(out as *const u8, len).to_vec();
        h5z_deepcq_free(out);
        bytes
    }
}

fn session_compress(s: Shared, data: &[f32]) -> (Vec<u8>, H5zDeepcqReport) {
    let (mut out, mut len, mut report) = (ptr::null_mut(), 0usize, H5zDeepcqReport::default());
    // SAFETY: data holds the product of SHAPE f32 values; the outputs are writable.
    let status = unsafe {
        h5z_deepcq_session_compress(
            s.0,
            data.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT32,
            SHAPE.as_ptr(),
            SHAPE.len(),
            &mut out,
            &mut len,
            &mut report,
        )
    };
    assert_eq!(status, H5Z_DEEPCQ_OK);
    (take(out, len), report)
}

fn plain_compress(data: &[f32]) -> Vec<u8> {
    let cd = cd();
    let (mut out, mut len) = (ptr::null_mut(), 0usize);
    // SAFETY: as in session_compress; report may be NULL.
    let status = unsafe {
        h5z_deepcq_compress(
            data.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT32,
            SHAPE.as_ptr(),
            SHAPE.len(),
            cd.as_ptr(),
            cd.len(),
            &mut out,
            &mut len,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, H5Z_DEEPCQ_OK);
    take(out, len)
}

fn decompress(chunk: &[u8]) -> Vec<f32> {
    let mut back = vec![0f32; SHAPE.iter().product()];
    let mut len = 0usize;
    // SAFETY: chunk holds chunk.len() bytes; back holds its byte length.
    let status = unsafe {
        h5z_deepcq_decompress(
            chunk.as_ptr() as *const c_void,
            chunk.len(),
            back.as_mut_ptr() as *mut c_void,
            back.len() * 4,
            &mut len,
        )
    };
    assert_eq!(status, H5Z_DEEPCQ_OK);
    assert_eq!(len, back.len() * 4);
    back
}

fn free_session(s: *mut H5zDeepcqSession) {
    // SAFETY: s came from new_session and no thread uses it any more.
    unsafe { h5z_deepcq_session_free(s) }
}

fn stats(s: *const H5zDeepcqSession) -> H5zDeepcqSessionStats {
    let mut st = H5zDeepcqSessionStats::default();
    // SAFETY: s is live; st is writable.
    assert_eq!(
        unsafe { h5z_deepcq_session_stats(s, &mut st) },
        H5Z_DEEPCQ_OK
    );
    st
}

#[test]
fn separate_sessions_in_threads_equal_a_serial_run() {
    let fields: Vec<Vec<Vec<f32>>> = (0..THREADS)
        .map(|v| (0..STEPS).map(|t| field(v, t)).collect())
        .collect();
    let run = |v: usize| -> Vec<Vec<u8>> {
        let s = new_session(0);
        let out = fields[v]
            .iter()
            .map(|f| session_compress(Shared(s), f).0)
            .collect();
        free_session(s);
        out
    };
    let serial: Vec<Vec<Vec<u8>>> = (0..THREADS).map(run).collect();
    let parallel: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS).map(|v| scope.spawn(move || run(v))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(serial, parallel);
    for (f, bytes) in fields.iter().flatten().zip(parallel.iter().flatten()) {
        let psnr = metrics::psnr(f, &decompress(bytes));
        assert!(psnr >= TARGET, "psnr {psnr} < {TARGET}");
    }
}

#[test]
fn a_shared_session_without_adaptation_equals_a_serial_run() {
    let fields: Vec<Vec<f32>> = (0..THREADS).map(|v| field(v, 1)).collect();
    let serial: Vec<Vec<u8>> = fields.iter().map(|f| plain_compress(f)).collect();
    let s = new_session(H5Z_DEEPCQ_SESSION_NO_ADAPT);
    let shared = Shared(s);
    let parallel: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = fields
            .iter()
            .map(|f| scope.spawn(move || session_compress(shared, f).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(serial, parallel);
    for (f, bytes) in fields.iter().zip(&parallel) {
        let psnr = metrics::psnr(f, &decompress(bytes));
        assert!(psnr >= TARGET, "psnr {psnr} < {TARGET}");
    }
    assert_eq!(stats(s).steps, THREADS as u64);
    free_session(s);
}

#[test]
fn a_shared_adaptive_session_meets_the_target_from_every_thread() {
    let s = new_session(0);
    let shared = Shared(s);
    let results: Vec<(Vec<f32>, Vec<u8>, H5zDeepcqReport)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|v| {
                scope.spawn(move || {
                    (0..STEPS)
                        .map(|t| {
                            let f = field(v, t);
                            let (bytes, report) = session_compress(shared, &f);
                            (f, bytes, report)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut compressions = 0u64;
    for (f, bytes, report) in &results {
        let back = decompress(bytes);
        let psnr = metrics::psnr(f, &back);
        assert!(psnr >= TARGET, "psnr {psnr} < {TARGET}: {report:?}");
        assert_eq!(report.target_met, 1);
        assert!((report.psnr - psnr).abs() < 1e-9, "{report:?} vs {psnr}");
        compressions += u64::from(report.compressions);
    }
    let st = stats(s);
    assert_eq!(st.steps, (THREADS * STEPS) as u64);
    assert_eq!(st.compressions, compressions);
    assert_eq!(st.misses, 0);
    free_session(s);
}

#[test]
fn errors_come_back_as_codes_and_messages() {
    let message = || {
        let mut buf = vec![0u8; 256];
        // SAFETY: buf holds 256 bytes.
        let n = unsafe { h5z_deepcq_last_error(buf.as_mut_ptr() as *mut _, buf.len()) };
        String::from_utf8_lossy(&buf[..n.min(255)]).into_owned()
    };
    let (mut cd, mut n) = ([0 as c_uint; 6], 6usize);
    // SAFETY: valid pointers; the arguments themselves are wrong.
    let status = unsafe { h5z_deepcq_cd_values(9, 60.0, 0, 0, 0, cd.as_mut_ptr(), &mut n) };
    assert_eq!(status, H5Z_DEEPCQ_ERR_SETTINGS);
    assert!(message().contains("kind"), "{}", message());
    // SAFETY: as above.
    let status = unsafe { h5z_deepcq_cd_values(0, 500.0, 0, 0, 0, cd.as_mut_ptr(), &mut n) };
    assert_eq!(status, H5Z_DEEPCQ_ERR_SETTINGS);
    // A success clears the message.
    n = 6;
    // SAFETY: as above.
    let status = unsafe { h5z_deepcq_cd_values(0, 62.5, 0, 0, 0, cd.as_mut_ptr(), &mut n) };
    assert_eq!(status, H5Z_DEEPCQ_OK);
    assert_eq!(&cd[..n], &[625, 0, 1]);
    assert_eq!(message(), "");
    // Too small a buffer reports the size needed.
    n = 1;
    // SAFETY: cd holds 6 ≥ 1 words.
    let status = unsafe { h5z_deepcq_cd_values(0, 62.5, 0, 0, 0, cd.as_mut_ptr(), &mut n) };
    assert_eq!((status, n), (H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL, 3));
    // NULL pointers and corrupt chunks are codes, not crashes.
    let mut s = ptr::null_mut();
    // SAFETY: a NULL cd_values is what is being tested.
    let status = unsafe { h5z_deepcq_session_new(ptr::null(), 1, 0, &mut s) };
    assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
    let garbage = [0u8; 64];
    let mut out = [0u8; 64];
    let mut len = 0;
    // SAFETY: valid buffers holding garbage.
    let status = unsafe {
        h5z_deepcq_decompress(
            garbage.as_ptr() as *const c_void,
            garbage.len(),
            out.as_mut_ptr() as *mut c_void,
            out.len(),
            &mut len,
        )
    };
    assert_eq!(status, H5Z_DEEPCQ_ERR_CORRUPT);
    assert!(message().contains("magic"), "{}", message());
    // Wrong dims for the data.
    let data = [1.0f32; 8];
    let dims = [3usize, 0];
    // SAFETY: data holds 8 values; dims is wrong on purpose (a zero dim).
    let status = unsafe {
        h5z_deepcq_compress(
            data.as_ptr() as *const c_void,
            H5Z_DEEPCQ_FLOAT32,
            dims.as_ptr(),
            2,
            cd.as_ptr(),
            3,
            &mut ptr::null_mut(),
            &mut len,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, H5Z_DEEPCQ_ERR_INVALID_ARGUMENT);
}
