//! What the filter tells the user about its choices: `log` records behind
//! `H5Z_DEEPCQ_LOG`, and a JSON-lines trace in the file `H5Z_DEEPCQ_TRACE` names.
//!
//! A plugin lives in someone else's process, so it never writes to stdout, installs its
//! logger only when asked (and only if the host has none), and treats a trace file it
//! cannot write as a warning (once on stderr: it was asked for), never as a failed write.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use once_cell::sync::OnceCell;
use serde::Serialize;

use crate::select::Outcome;
use crate::settings::Settings;
use crate::wire::{CodecId, TargetKind};

/// Log filter for the plugin's own logger (`error`, `warn`, `info`, `debug`, `trace`, or
/// env_logger directives such as `h5z_deepcq=debug`).
pub const LOG_ENV: &str = "H5Z_DEEPCQ_LOG";
/// File that receives one JSON object per written chunk.
pub const TRACE_ENV: &str = "H5Z_DEEPCQ_TRACE";

/// Installs the stderr logger if `H5Z_DEEPCQ_LOG` is set. Cheap after the first call.
///
/// Never panics: env_filter warns of a directive it cannot parse with `eprintln!`, which
/// panics when stderr is a pipe nobody reads (h5py's output piped into `head`); the log
/// then stays off rather than failing the chunk it was asked for.
pub fn init() {
    static INIT: OnceCell<()> = OnceCell::new();
    INIT.get_or_init(|| {
        // Empty counts as unset, as for the other variables (env_filter reads it as "error").
        if let Some(filter) = std::env::var(LOG_ENV).ok().filter(|f| !f.is_empty()) {
            let _ = std::panic::catch_unwind(|| {
                env_logger::Builder::new()
                    .parse_filters(&filter)
                    .target(env_logger::Target::Stderr)
                    .try_init()
            });
        }
    });
}

/// One chunk's record in the trace.
#[derive(Debug, Serialize)]
pub struct ChunkRecord<'a> {
    /// Which path wrote it: "hdf5" (the filter) or "insitu".
    pub source: &'a str,
    /// The writing process: MPI ranks may share one trace.
    pub pid: u32,
    /// Chunk dims.
    pub shape: &'a [usize],
    /// Target kind name.
    pub target_kind: &'a str,
    /// Target value.
    pub target: f64,
    /// "guarantee" or "predict".
    pub mode: &'a str,
    /// Codec kept.
    pub codec: &'a str,
    /// Absolute bound kept.
    pub bound: f64,
    /// Predicted metric of the first proposal.
    pub predicted: Option<f64>,
    /// Measured metric of the kept payload (null when not measured or infinite).
    pub measured: Option<f64>,
    /// True when the kept payload decodes exactly: stored losslessly (whose chunks are not
    /// measured), or a lossy payload measured at PSNR +∞, which JSON cannot hold.
    pub exact: bool,
    /// Compressions spent.
    pub compressions: u32,
    /// Why the chooser ended where it did.
    pub reason: &'a str,
    /// Bytes in.
    pub bytes_in: usize,
    /// Bytes out (header included).
    pub bytes_out: usize,
    /// Wall time for the chunk, ms.
    pub millis: f64,
}

impl<'a> ChunkRecord<'a> {
    /// The record of one chunk written under `settings`.
    pub fn new(
        source: &'a str,
        shape: &'a [usize],
        settings: &Settings,
        outcome: &'a Outcome,
        bytes: (usize, usize),
        millis: f64,
    ) -> Self {
        ChunkRecord {
            source,
            pid: std::process::id(),
            shape,
            target_kind: settings.target.kind.name(),
            target: settings.target.value(),
            mode: settings.mode.name(),
            codec: outcome.codec.name(),
            bound: outcome.bound,
            predicted: outcome.predicted,
            measured: outcome.measured.filter(|m| m.is_finite()),
            exact: outcome.codec == CodecId::Lossless || outcome.measured == Some(f64::INFINITY),
            compressions: outcome.compressions,
            reason: outcome.reason,
            bytes_in: bytes.0,
            bytes_out: bytes.1,
            millis,
        }
    }
}

impl ChunkRecord<'_> {
    fn is_ratio(&self) -> bool {
        self.target_kind == TargetKind::Ratio.name()
    }

    /// What the chunk reached when that is short of its target: the stored ratio for a
    /// ratio target (which the chooser gives up on when even its loosest bound stores
    /// more, or stores exactly when its headers alone do), the measured PSNR or SSIM
    /// otherwise (never short in guarantee and fast mode, and unmeasured in predict mode
    /// unless checked).
    fn short_of_target(&self) -> Option<f64> {
        if self.reason == crate::select::NOT_FLOAT {
            // Integers, compounds: stored exactly whatever the target, as documented.
            return None;
        }
        let reached = if self.is_ratio() {
            self.bytes_in as f64 / self.bytes_out.max(1) as f64
        } else if self.target_kind == TargetKind::AbsBound.name() {
            return None;
        } else {
            self.measured?
        };
        (reached < self.target).then_some(reached)
    }

    /// Why a chunk can fall short of its target ([`Self::short_of_target`]).
    fn why_short(&self) -> &'static str {
        if self.exact {
            "a chunk stored exactly reaches only the ratio lossless coding gives it"
        } else if self.is_ratio() {
            "small chunks cannot reach high ratios: each carries a header of about 26 bytes \
             and every codec has a smallest stream"
        } else {
            "predict mode trusts the model; guarantee mode measures every chunk"
        }
    }
}

/// Logs the chunk and, when tracing, appends it to the trace file; says once per process
/// on stderr (or as a warning when logging) that a chunk fell short of its target, which
/// must not pass unsaid.
pub fn chunk(record: &ChunkRecord<'_>) {
    log::info!(
        "{} chunk {:?}: {} bound {:.3e}, {} {} predicted {} measured {} ({} compression{}, {}), \
         {} -> {} bytes in {:.2} ms",
        record.source,
        record.shape,
        record.codec,
        record.bound,
        record.target_kind,
        record.target,
        fmt_opt(record.predicted),
        fmt_opt(record.measured),
        record.compressions,
        if record.compressions == 1 { "" } else { "s" },
        record.reason,
        record.bytes_in,
        record.bytes_out,
        record.millis
    );
    if let Some(reached) = record.short_of_target() {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            let why = record.why_short();
            warn(&format!(
                "a {:?} chunk was stored at {} {reached:.4} for a target of {} ({}); {why}; \
                 later chunks short of their target are not reported here ({LOG_ENV}=info \
                 logs every chunk)",
                record.shape, record.target_kind, record.target, record.reason
            ));
        }
    }
    if let Some(trace) = trace() {
        let mut file = trace.lock().unwrap_or_else(|p| p.into_inner());
        // A record cut short by a failed write (a full disk) ends the line it started, so
        // that the next record does not run on from it.
        static TORN: AtomicBool = AtomicBool::new(false);
        let mut line = String::from(if TORN.load(Ordering::Relaxed) {
            "\n"
        } else {
            ""
        });
        line += &serde_json::to_string(record).unwrap_or_default();
        // One write of the line and its newline: O_APPEND keeps a single write whole when
        // several processes (MPI ranks, forked workers) share the trace, not two writes.
        line.push('\n');
        let written = file.write_all(line.as_bytes());
        TORN.store(written.is_err(), Ordering::Relaxed);
        if let Err(e) = written {
            static SAID: AtomicBool = AtomicBool::new(false);
            if !SAID.swap(true, Ordering::Relaxed) {
                warn(&format!(
                    "{TRACE_ENV}: cannot append: {e}; records of later chunks that fail \
                     to append are lost unsaid"
                ));
            }
        }
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

/// Says `why` through the logger when one would show a warning, else on stderr: for what
/// the user asked for and did not get, which must not pass unsaid. Not `eprintln!`, which
/// panics when stderr cannot be written (a closed pipe, a full disk) and would fail the
/// write of a chunk that compressed well.
pub fn warn(why: &str) {
    if log::log_enabled!(log::Level::Warn) {
        log::warn!("{why}");
    } else {
        let _ = writeln!(std::io::stderr(), "h5z-deepcq: {why}");
    }
}

/// The trace file, opened for appending on first use (None when unset or unwritable).
fn trace() -> Option<&'static Mutex<File>> {
    static TRACE: OnceCell<Option<Mutex<File>>> = OnceCell::new();
    TRACE
        .get_or_init(|| {
            let path = std::env::var_os(TRACE_ENV).filter(|p| !p.is_empty())?;
            let opened = open_for_trace(std::path::Path::new(&path));
            match opened {
                Ok(file) => Some(Mutex::new(file)),
                Err(e) => {
                    // Asked for and not written: said once, on stderr when no logger
                    // would tell.
                    warn(&format!(
                        "{TRACE_ENV}={}: {e}; no trace is written",
                        path.to_string_lossy()
                    ));
                    None
                }
            }
        })
        .as_ref()
}

/// Opens `path` for appending trace records. Opened non-blocking, a FIFO nobody reads is
/// refused (ENXIO) rather than blocking the first chunk's write for good (regular files
/// ignore the flag); written blocking, a reader slower than the writer (a pipe's 64 KiB
/// full) holds the write back instead of losing the record.
#[allow(unsafe_code)] // fcntl: std sets no file status flags after opening.
fn open_for_trace(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace FIFO with a reader is written blocking: non-blocking, a reader slower than
    /// the writer lost every record once the pipe held 64 KiB (and the next began with an
    /// empty line).
    #[test]
    #[allow(unsafe_code)] // fcntl's F_GETFL reads the flags.
    fn a_trace_fifo_with_a_reader_is_written_blocking() {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("trace.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let trace = open_for_trace(&fifo).unwrap();
        // SAFETY: F_GETFL on an open descriptor.
        let flags = unsafe { libc::fcntl(trace.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0 && flags & libc::O_NONBLOCK == 0, "{flags:#x}");
        drop(reader);
    }

    fn record_of(outcome: &Outcome, settings: &Settings, bytes: (usize, usize)) -> String {
        let record = ChunkRecord::new("hdf5", &[4, 4], settings, outcome, bytes, 1.0);
        let short = record.short_of_target().map(|_| record.why_short());
        format!(
            "{} {}",
            serde_json::to_string(&record).unwrap(),
            short.unwrap_or("-")
        )
    }

    /// A chunk stored losslessly (NaN present, constant, lossless smaller) decodes exactly
    /// though it is never measured, and one short of a ratio target is said to be so for
    /// being stored exactly, not for being small.
    #[test]
    fn a_lossless_chunk_is_traced_as_exact() {
        let settings = Settings {
            target: crate::settings::Target::from_value(TargetKind::Ratio, 20.0).unwrap(),
            ..Settings::psnr(60.0).unwrap()
        };
        let mut outcome = Outcome {
            codec: CodecId::Lossless,
            bound: 0.0,
            payload: vec![0; 40],
            predicted: None,
            measured: None,
            compressions: 0,
            reason: "NaN/Inf present: lossless",
            runner_up_gap: None,
        };
        let lossless = record_of(&outcome, &settings, (64, 40));
        assert!(lossless.contains("\"exact\":true"), "{lossless}");
        assert!(lossless.ends_with("lossless coding gives it"), "{lossless}");
        outcome.codec = CodecId::Sz3;
        let lossy = record_of(&outcome, &settings, (64, 40));
        assert!(lossy.contains("\"exact\":false"), "{lossy}");
        assert!(lossy.ends_with("smallest stream"), "{lossy}");
        outcome.measured = Some(f64::INFINITY);
        let exact = record_of(&outcome, &Settings::psnr(60.0).unwrap(), (64, 40));
        assert!(exact.contains("\"exact\":true,"), "{exact}");
        assert!(exact.contains("\"measured\":null"), "{exact}");
        let pid = format!("\"pid\":{},", std::process::id());
        assert!(exact.contains(&pid), "{exact}");
    }
}
