//! `deepcq inspect file.h5[/dataset]`: what the filter chose for every chunk, read from
//! the chunk headers alone (codec, bound, ratio, and the quality record: target, mode,
//! predicted and measured metric). Needs neither the model nor the original data, so a
//! data manager can audit an archive after `h5repack`.
//!
//! Chunks are read raw (`H5Dread_chunk`), so the filter plugin is never loaded. A chunk
//! whose header does not parse is reported as corrupt and the run goes on; the exit code is
//! non-zero at the end if any chunk was corrupt or any object could not be opened.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use h5z_deepcq::chunk::{self, Header};
use h5z_deepcq::h5::filter::fits_dataset;
use h5z_deepcq::settings::{kind_name, Settings, StoredSettings};
use h5z_deepcq::wire::{self, TargetKind};
use serde::Serialize;

use crate::hdf5::{ChunkInfo, Dataset, Filter, Hdf5, LIB_ENV};

/// What to inspect and how to print it.
#[derive(Args)]
pub struct InspectArgs {
    /// An HDF5 file, optionally followed by a dataset path: `out.h5` or `out.h5/group/field`.
    target: String,
    /// Print one JSON object per dataset, one per line, instead of tables.
    #[arg(long)]
    json: bool,
}

/// One dataset's report; also the `--json` schema.
#[derive(Serialize)]
struct DatasetReport {
    file: String,
    dataset: String,
    dtype: String,
    dims: Vec<u64>,
    chunk_dims: Option<Vec<u64>>,
    /// True when deepcq (filter 357) is in the pipeline.
    deepcq: bool,
    /// Why the dataset has no chunk table (not chunked, or another pipeline).
    note: Option<String>,
    /// The settings the stored cd_values describe, e.g. "PSNR ≥ 60, guarantee, auto".
    settings: Option<String>,
    cd_values: Vec<u32>,
    /// Bytes of the dataset's values (every element × element size); for deepcq datasets,
    /// of the values its written chunks hold, so that a dataset written in part is not
    /// credited with the chunks it does not have.
    raw_bytes: u64,
    /// Bytes the dataset takes in the file (for deepcq datasets, the sum over its chunks).
    stored_bytes: u64,
    /// raw_bytes / stored_bytes.
    ratio: Option<f64>,
    chunk_count: usize,
    corrupt_chunks: usize,
    chunks: Vec<ChunkReport>,
}

/// How one chunk's bytes could be read.
#[derive(Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Status {
    /// The header parsed and the checksum matched.
    Ok,
    /// The header or checksum is bad; `error` says how.
    Corrupt,
    /// HDF5 skipped the filter for this chunk and stored it raw.
    FilterSkipped,
    /// A later filter in the pipeline changed the bytes, so the header cannot be read raw.
    NotParsed,
}

/// The target in a quality record.
#[derive(Serialize)]
struct TargetReport {
    kind: &'static str,
    value: f64,
}

/// One chunk's line.
#[derive(Serialize)]
struct ChunkReport {
    offset: Vec<u64>,
    stored_bytes: u64,
    status: Status,
    error: Option<String>,
    format_version: Option<u8>,
    codec: Option<&'static str>,
    bound: Option<f64>,
    /// Uncompressed chunk bytes / stored bytes.
    ratio: Option<f64>,
    /// True when the chunk has a padding record: trailing slabs of one repeated value (the
    /// fill of an edge chunk) were trimmed before compressing and restored exactly.
    padding: Option<bool>,
    /// The dims of the block the payload holds (edge chunks).
    valid_dims: Option<Vec<usize>>,
    /// Values of that block that hold the dataset's fill value (missing data), stored
    /// exactly and left out of the target.
    missing: Option<usize>,
    target: Option<TargetReport>,
    mode: Option<&'static str>,
    #[serde(serialize_with = "metric")]
    predicted: Option<f64>,
    /// `"inf"` when the decoded chunk was exact (PSNR of an exact reconstruction).
    #[serde(serialize_with = "metric")]
    measured: Option<f64>,
}

/// A metric for JSON: a number, `"inf"`/`"-inf"` (JSON has no infinity, and serde_json
/// would silently write null, which means "absent" here), or null when absent.
fn metric<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) if v.is_infinite() => s.serialize_str(if *v > 0.0 { "inf" } else { "-inf" }),
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

impl ChunkReport {
    fn empty(info: &ChunkInfo, status: Status, error: Option<String>) -> Self {
        ChunkReport {
            offset: info.offset.clone(),
            stored_bytes: info.size,
            status,
            error,
            format_version: None,
            codec: None,
            bound: None,
            ratio: None,
            padding: None,
            valid_dims: None,
            missing: None,
            target: None,
            mode: None,
            predicted: None,
            measured: None,
        }
    }

    /// A chunk HDF5 stored raw, without running the filter.
    fn skipped(info: &ChunkInfo, chunk_raw: u64) -> Self {
        ChunkReport {
            ratio: ratio(chunk_raw, info.size),
            ..ChunkReport::empty(info, Status::FilterSkipped, None)
        }
    }

    fn from_header(info: &ChunkInfo, header: &Header) -> Self {
        let quality = header.quality.as_ref();
        ChunkReport {
            format_version: Some(header.version),
            codec: Some(header.codec.name()),
            bound: Some(header.bound),
            ratio: ratio(header.original_len, info.size),
            padding: Some(header.padding.is_some()),
            valid_dims: header.padding.as_ref().map(|p| p.inner.clone()),
            missing: header
                .missing
                .as_ref()
                .map(|m| m.bits.iter().map(|b| b.count_ones() as usize).sum()),
            target: quality.map(|q| TargetReport {
                kind: q.kind.name(),
                value: q.target,
            }),
            mode: quality.map(|q| q.mode.name()),
            predicted: quality.and_then(|q| q.predicted),
            measured: quality.and_then(|q| q.measured),
            ..ChunkReport::empty(info, Status::Ok, None)
        }
    }
}

/// HDF5's fletcher32 filter id.
const FLETCHER32: i32 = 3;

fn ratio(raw: u64, stored: u64) -> Option<f64> {
    (stored > 0).then(|| raw as f64 / stored as f64)
}

/// Runs the command; fails after printing everything if any chunk was corrupt.
pub fn run(args: &InspectArgs) -> Result<()> {
    let (file, dataset) = split_target(&args.target)?;
    let h5 = Hdf5::load()?;
    let handle = h5
        .open(&file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let single = dataset
        .as_deref()
        .is_some_and(|path| handle.dataset(path).is_ok());
    // An object the library cannot open may be a dataset: a run that left it out silently
    // would pass an audit of a file it did not read. A dataset named alone needs no walk
    // (which reads every object's header, and fails on one the library cannot read).
    let objects = || handle.objects();
    let cannot_open = |name: &str| {
        format!(
            "libhdf5 {} cannot open {name} (a file written by a newer HDF5 may need a newer \
             library: set {LIB_ENV} to one, such as the libhdf5 h5py's wheel bundles)",
            h5.version()
        )
    };
    let (paths, unopened) = match &dataset {
        Some(path) if single => (vec![path.clone()], Vec::new()),
        // A group: the datasets under it.
        Some(path) => {
            let objects = objects()?;
            let named = format!("/{}", path.trim_matches('/'));
            if objects.unopened.contains(&named) {
                bail!("{}: {}", file.display(), cannot_open(&named));
            }
            let under = format!("{named}/");
            let inside = |paths: Vec<String>| -> Vec<String> {
                paths
                    .into_iter()
                    .filter(|p| p.starts_with(&under))
                    .collect()
            };
            let (paths, unopened) = (inside(objects.datasets), inside(objects.unopened));
            if paths.is_empty() && unopened.is_empty() {
                bail!(
                    "{} has no dataset or group {path} holding datasets",
                    file.display()
                );
            }
            (paths, unopened)
        }
        None => {
            let objects = objects()?;
            (objects.datasets, objects.unopened)
        }
    };
    if paths.is_empty() && unopened.is_empty() && !args.json {
        println!("{}: no datasets", file.display());
    }
    let (mut corrupt, mut unreadable) = (0, 0);
    for name in &unopened {
        eprintln!("deepcq: {}", cannot_open(name));
        unreadable += 1;
    }
    for path in &paths {
        let report = handle
            .dataset(path)
            .with_context(|| format!("{} has no dataset {path}", file.display()))
            .and_then(|ds| inspect_dataset(&file, path, &ds));
        let report = match report {
            Ok(report) => report,
            Err(e) if single => return Err(e),
            // One unreadable dataset must not hide the others.
            Err(e) => {
                eprintln!("deepcq: {path}: {e:#}");
                unreadable += 1;
                continue;
            }
        };
        corrupt += report.corrupt_chunks;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_table(&report);
        }
    }
    match (corrupt, unreadable) {
        (0, 0) => Ok(()),
        (c, 0) => bail!("{c} corrupt chunk(s) in {}", file.display()),
        (c, u) => bail!(
            "{c} corrupt chunk(s) and {u} unreadable dataset(s) in {}",
            file.display()
        ),
    }
}

/// Splits `file.h5/group/dataset` at the file: the one prefix that is a regular file.
fn split_target(target: &str) -> Result<(PathBuf, Option<String>)> {
    let whole = Path::new(target);
    if whole.is_file() {
        return Ok((whole.to_path_buf(), None));
    }
    for (at, _) in target.match_indices('/').filter(|&(at, _)| at > 0) {
        let file = Path::new(&target[..at]);
        if file.is_file() {
            // `file.h5/` names the file, `file.h5/grp/` the group.
            let path = target[at..].trim_end_matches('/');
            return Ok((
                file.to_path_buf(),
                (!path.is_empty()).then(|| path.to_string()),
            ));
        }
    }
    if whole.is_dir() {
        bail!("{target} is a directory, not an HDF5 file");
    }
    bail!("no such file: {target} (expected file.h5 or file.h5/path/to/dataset)")
}

fn inspect_dataset(file: &Path, path: &str, ds: &Dataset<'_>) -> Result<DatasetReport> {
    let dims = ds.dims()?;
    let dtype = ds.dtype()?;
    let chunk_dims = ds.chunk_dims()?;
    let filters = if chunk_dims.is_some() {
        ds.filters()?
    } else {
        Vec::new()
    };
    // Saturating: dims may multiply past u64 (an unwritten dataset of 2^32 × 2^32 × 16).
    let count = dims.iter().fold(1u64, |n, &d| n.saturating_mul(d));
    let mut report = DatasetReport {
        file: file.display().to_string(),
        dataset: path.to_string(),
        dtype: dtype.to_string(),
        dims,
        chunk_dims: chunk_dims.clone(),
        deepcq: false,
        note: None,
        settings: None,
        cd_values: Vec::new(),
        raw_bytes: count.saturating_mul(dtype.size as u64),
        stored_bytes: ds.storage_size(),
        ratio: None,
        chunk_count: 0,
        corrupt_chunks: 0,
        chunks: Vec::new(),
    };
    report.ratio = ratio(report.raw_bytes, report.stored_bytes);
    let Some(chunk_dims) = chunk_dims else {
        report.note = Some("not chunked, so not filtered".into());
        return Ok(report);
    };
    let Some(index) = filters.iter().position(|f| f.id as u32 == wire::FILTER_ID) else {
        report.note = Some(match filters.is_empty() {
            true => "chunked, no filters".into(),
            false => format!("filters {}", describe(&filters)),
        });
        return Ok(report);
    };
    report.deepcq = true;
    report.cd_values = filters[index].cd_values.clone();
    report.settings = Some(describe_settings(&report.cd_values));
    let chunk_values = chunk_dims.iter().product::<u64>();
    let chunk_raw = chunk_values * dtype.size as u64;
    let partial_unfiltered = ds.partial_chunks_unfiltered();
    let stored = StoredSettings::parse(&report.cd_values).ok();
    report.stored_bytes = 0;
    report.raw_bytes = 0;
    for info in ds.chunks()? {
        let inside = values_inside(&info.offset, &chunk_dims, &report.dims);
        let chunk = match partial_unfiltered && inside < chunk_values {
            // HDF5 wrote this edge chunk raw, with a filter mask that says nothing of it.
            true => ChunkReport::skipped(&info, chunk_raw),
            false => inspect_chunk(ds, &info, &filters, index, chunk_raw, stored.as_ref()),
        };
        report.stored_bytes += info.size;
        report.raw_bytes += inside * dtype.size as u64;
        report.corrupt_chunks += usize::from(chunk.status == Status::Corrupt);
        report.chunks.push(chunk);
    }
    report.chunk_count = report.chunks.len();
    report.ratio = ratio(report.raw_bytes, report.stored_bytes);
    Ok(report)
}

/// How many values of the chunk at `offset` lie inside the dataset's `dims` (edge chunks
/// stick out of it).
fn values_inside(offset: &[u64], chunk_dims: &[u64], dims: &[u64]) -> u64 {
    (offset.iter().zip(chunk_dims).zip(dims))
        .map(|((&o, &c), &d)| c.min(d.saturating_sub(o)))
        .product()
}

fn inspect_chunk(
    ds: &Dataset<'_>,
    info: &ChunkInfo,
    filters: &[Filter],
    index: usize,
    chunk_raw: u64,
    stored: Option<&StoredSettings>,
) -> ChunkReport {
    // Chunks looked up by offset come without their filter mask: their read gives it.
    let (mut read, mask) = match info.filter_mask {
        Some(mask) => (None, mask),
        None => match ds.read_chunk(info) {
            Ok((bytes, mask)) => (Some(bytes), mask),
            Err(e) => return ChunkReport::empty(info, Status::Corrupt, Some(e.to_string())),
        },
    };
    let skipped = |i: usize| i < 32 && mask & (1 << i) != 0;
    let later: Vec<&Filter> = (index + 1..filters.len())
        .filter(|&i| !skipped(i))
        .map(|i| &filters[i])
        .collect();
    // Fletcher32, when it ran last, appended a checksum of the bytes before it, and HDF5
    // refuses a chunk that does not match it, whether or not deepcq ran on the chunk.
    if later.last().is_some_and(|f| f.id == FLETCHER32) {
        let bytes = match read
            .take()
            .map_or_else(|| ds.read_chunk(info), |b| Ok((b, mask)))
        {
            Ok((bytes, _)) => bytes,
            Err(e) => return ChunkReport::empty(info, Status::Corrupt, Some(e.to_string())),
        };
        if !ds.fletcher32_holds(&bytes) {
            let why = "fletcher32 checksum mismatch: HDF5 refuses to read this chunk";
            return ChunkReport::empty(info, Status::Corrupt, Some(why.to_string()));
        }
        read = Some(bytes);
    }
    if skipped(index) {
        return ChunkReport::skipped(info, chunk_raw);
    }
    // Fletcher32 only appends its 4-byte checksum: deepcq's header is still in front.
    let appended = 4 * later.iter().filter(|f| f.id == FLETCHER32).count();
    if later.iter().any(|f| f.id != FLETCHER32) {
        let why = format!(
            "filters after deepcq changed the bytes: {}",
            describe_refs(&later)
        );
        return ChunkReport::empty(info, Status::NotParsed, Some(why));
    }
    let bytes = match read
        .take()
        .map_or_else(|| ds.read_chunk(info), |b| Ok((b, mask)))
    {
        Ok((bytes, _)) => bytes,
        Err(e) => return ChunkReport::empty(info, Status::Corrupt, Some(e.to_string())),
    };
    let Some(ours) = bytes.len().checked_sub(appended).map(|n| &bytes[..n]) else {
        let why = format!("{} bytes, shorter than fletcher32's checksum", bytes.len());
        return ChunkReport::empty(info, Status::Corrupt, Some(why));
    };
    match chunk::parse(ours) {
        // A float chunk the dataset cannot take (another type or size, written with
        // H5Dwrite_chunk) parses, but the filter refuses to read it.
        Ok((header, _)) => match stored
            .map(|s| fits_dataset(s, header.layout.dtype, header.original_len as usize))
        {
            Some(Err(e)) => ChunkReport {
                status: Status::Corrupt,
                error: Some(format!("{e}: the filter refuses to read it")),
                ..ChunkReport::from_header(info, &header)
            },
            _ => ChunkReport::from_header(info, &header),
        },
        Err(e) => ChunkReport::empty(info, Status::Corrupt, Some(e.to_string())),
    }
}

fn describe(filters: &[Filter]) -> String {
    describe_refs(&filters.iter().collect::<Vec<_>>())
}

fn describe_refs(filters: &[&Filter]) -> String {
    let names: Vec<String> = filters
        .iter()
        .map(|f| match f.name.is_empty() {
            true => f.id.to_string(),
            false => format!("{} ({})", f.id, f.name),
        })
        .collect();
    names.join(", ")
}

/// "PSNR ≥ 60, guarantee, compressor auto", from the stored (or user) cd_values.
fn describe_settings(cd: &[u32]) -> String {
    let stored = StoredSettings::parse(cd).ok();
    // The dataset's fill value, which marks missing data.
    let fill = stored.as_ref().and_then(|s| match s.fill.as_deref()? {
        &[a, b, c, d] => Some(format!("{:e}", f32::from_le_bytes([a, b, c, d]))),
        bytes => Some(format!("{:e}", f64::from_le_bytes(bytes.try_into().ok()?))),
    });
    let settings = stored
        .map(|s| s.settings)
        .ok_or(())
        .or_else(|_| Settings::parse(cd));
    let missing = fill.map_or(String::new(), |f| format!(", missing where = {f}"));
    match settings {
        Ok(s) => {
            let relation = match s.target.kind {
                TargetKind::Ratio | TargetKind::Psnr | TargetKind::Ssim => "≥",
                TargetKind::AbsBound => "≤",
            };
            format!(
                "{} {relation} {}, {}, compressor {:?}",
                kind_name(s.target.kind),
                s.target.value(),
                s.mode.name(),
                s.compressor
            )
            .to_lowercase()
                + &missing
        }
        Err(e) => format!("unreadable cd_values: {e}"),
    }
}

fn join_dims(dims: &[u64]) -> String {
    if dims.is_empty() {
        return "scalar".into();
    }
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    parts.join("×")
}

fn opt(value: Option<f64>, precision: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.precision$}"),
        Some(v) => v.to_string(),
        None => "-".into(),
    }
}

/// A predicted or measured metric in its target's precision: SSIM targets live in the
/// last decimals (0.9999), absolute bounds span decades, PSNR and ratios need two.
fn metric_text(value: Option<f64>, kind: Option<&str>) -> String {
    match (value, kind) {
        (Some(v), Some(k)) if v.is_finite() && k == TargetKind::AbsBound.name() => {
            format!("{v:.3e}")
        }
        (_, Some(k)) if k == TargetKind::Ssim.name() => opt(value, 6),
        _ => opt(value, 2),
    }
}

fn print_table(r: &DatasetReport) {
    let chunks = r.chunk_dims.as_deref().map_or("-".into(), join_dims);
    println!(
        "{}: {}, dims {}, chunks {}",
        r.dataset,
        r.dtype,
        join_dims(&r.dims),
        chunks
    );
    if !r.deepcq {
        println!(
            "  not compressed with deepcq ({}); stored {} B of {} B raw",
            r.note.as_deref().unwrap_or(""),
            r.stored_bytes,
            r.raw_bytes
        );
        return;
    }
    println!(
        "  deepcq: {}; {} chunks, stored {} B of {} B raw, CR {}",
        r.settings.as_deref().unwrap_or("-"),
        r.chunk_count,
        r.stored_bytes,
        r.raw_bytes,
        opt(r.ratio, 2)
    );
    println!(
        "  {:<16} {:>10} {:<8} {:>10} {:>8}  {:<12} {:<9} {:>9} {:>9}  padded  missing",
        "offset", "stored", "codec", "bound", "CR", "target", "mode", "predicted", "measured"
    );
    for c in &r.chunks {
        let offset = c
            .offset
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let lead = format!("  {offset:<16} {:>10}", c.stored_bytes);
        match c.status {
            Status::Ok => {
                let target = c
                    .target
                    .as_ref()
                    .map_or("-".into(), |t| format!("{} {}", t.kind, t.value));
                let kind = c.target.as_ref().map(|t| t.kind);
                println!(
                    "{lead} {:<8} {:>10} {:>8}  {:<12} {:<9} {:>9} {:>9}  {:<6}  {}",
                    c.codec.unwrap_or("-"),
                    match (c.codec, c.bound) {
                        (Some("lossless"), _) | (_, None) => "-".into(),
                        // No point-wise bound: a fixed-rate payload (ratio targets).
                        (_, Some(0.0)) => "rate".into(),
                        (_, Some(b)) => format!("{b:.3e}"),
                    },
                    opt(c.ratio, 2),
                    target,
                    c.mode.unwrap_or("-"),
                    metric_text(c.predicted, kind),
                    metric_text(c.measured, kind),
                    if c.padding == Some(true) { "yes" } else { "no" },
                    c.missing.map_or("-".into(), |n| n.to_string())
                );
            }
            Status::Corrupt => println!(
                "{lead} CORRUPT: {}",
                c.error.as_deref().unwrap_or("unknown error")
            ),
            Status::FilterSkipped => println!(
                "{lead} filter skipped by HDF5: stored raw (CR {})",
                opt(c.ratio, 2)
            ),
            Status::NotParsed => {
                println!("{lead} not parsed: {}", c.error.as_deref().unwrap_or(""))
            }
        }
    }
    if r.corrupt_chunks > 0 {
        println!("  {} corrupt chunk(s)", r.corrupt_chunks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.h5");
        std::fs::write(&file, b"").unwrap();
        let arg = format!("{}/group/field", file.display());
        let (f, d) = split_target(&arg).unwrap();
        assert_eq!((f, d.as_deref()), (file.clone(), Some("/group/field")));
        let (f, d) = split_target(&file.display().to_string()).unwrap();
        assert_eq!((f, d), (file, None));
        let missing = dir.path().join("nope.h5").display().to_string();
        let err = split_target(&missing).unwrap_err().to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn metrics_in_json_keep_infinity_apart_from_absence() {
        #[derive(Serialize)]
        struct M(#[serde(serialize_with = "metric")] Option<f64>);
        let json = |v| serde_json::to_string(&M(v)).unwrap();
        assert_eq!(json(Some(f64::INFINITY)), "\"inf\"");
        assert_eq!(json(Some(60.5)), "60.5");
        assert_eq!(json(None), "null");
    }

    #[test]
    fn settings_read_from_stored_and_user_cd_values() {
        assert_eq!(
            describe_settings(&[60]),
            "psnr ≥ 60, guarantee, compressor auto"
        );
        assert_eq!(
            describe_settings(&[625, 0, 1, 3, 1]),
            "psnr ≥ 62.5, predict, compressor sperr"
        );
        assert!(describe_settings(&[]).starts_with("unreadable"));
    }
}
