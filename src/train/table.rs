//! The training table: one CSV row per (chunk, codec, relative bound).
//!
//! CSV because it is greppable, diffable and appendable (collection resumes by appending),
//! and every tool reads it. The columns, in order (documented in docs/surrogate.md):
//!
//! | column | meaning |
//! |---|---|
//! | `dataset` | dataset folder, or `synth-<family>` for generated fields |
//! | `source` | array file or generated-field label |
//! | `chunk` | chunk index within the source |
//! | `shape` | chunk dims, slowest first, `x`-separated |
//! | `dtype` | `f32` or `f64` |
//! | `codec` | `sz3`, `zfp` or `sperr` |
//! | `rel_bound` | absolute bound ÷ chunk value range |
//! | `abs_bound` | absolute bound given to the codec |
//! | `status` | `ok`, or `skip:<reason>` when the codec refused the chunk |
//! | `psnr` | dB, value-range convention (`inf` when exact) |
//! | `ssim` | mean SSIM (see [`crate::metrics::ssim`]) |
//! | `cr` | original bytes ÷ payload bytes, for the chunk's own dtype |
//! | `bits_per_value` | 8 × payload bytes ÷ values (dtype-independent) |
//! | `max_err_over_bound` | max abs error ÷ abs bound (≤ 1 when the codec kept its bound) |
//! | `encode_ms` | wall time of the encode call |
//! | features | one column per [`crate::features::FEATURE_NAMES`] entry |
//!
//! Skipped rows leave the measured columns empty.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::codec::effective_bound;
use crate::features::FEATURE_NAMES;
use crate::wire::CodecId;

/// Why a table could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The file could not be read or written.
    // The cause is the error's source: anyhow's `{:#}` prints it after the path, and
    // naming it here too printed it twice.
    #[error("{}", path.display())]
    Io {
        /// The table file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The header names other features than this build computes.
    #[error("{path}: header does not match this build's feature schema (re-collect the table): {detail}")]
    Schema {
        /// The table file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// A row could not be parsed.
    #[error("{path}:{line}: {detail}")]
    Row {
        /// The table file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        detail: String,
    },
}

/// Columns before the features.
pub const FIXED_COLUMNS: &[&str] = &[
    "dataset",
    "source",
    "chunk",
    "shape",
    "dtype",
    "codec",
    "rel_bound",
    "abs_bound",
    "status",
    "psnr",
    "ssim",
    "cr",
    "bits_per_value",
    "max_err_over_bound",
    "encode_ms",
];

/// One measured (chunk, codec, bound).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Dataset name (the unit left out in validation).
    pub dataset: String,
    /// Array or generated-field label.
    pub source: String,
    /// Chunk index within the source.
    pub chunk: usize,
    /// Chunk dims, slowest first.
    pub shape: Vec<usize>,
    /// `f32` or `f64`.
    pub dtype: String,
    /// Codec name.
    pub codec: String,
    /// Bound relative to the chunk's value range.
    pub rel_bound: f64,
    /// Absolute bound.
    pub abs_bound: f64,
    /// `ok` or `skip:<reason>`.
    pub status: String,
    /// Measured quality and ratio; `None` for skipped rows.
    pub measured: Option<Measured>,
    /// Features in [`FEATURE_NAMES`] order.
    pub features: Vec<f32>,
}

/// What a successful compression measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// PSNR in dB (value-range convention); +∞ when exact.
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Compression ratio for the chunk's dtype.
    pub cr: f64,
    /// Payload bits per value.
    pub bits_per_value: f64,
    /// Max abs error ÷ abs bound.
    pub max_err_over_bound: f64,
    /// Encode time in ms.
    pub encode_ms: f64,
}

impl Row {
    /// `dataset/source/chunk`: the unit collection resumes by.
    pub fn chunk_key(&self) -> String {
        chunk_key(&self.dataset, &self.source, self.chunk)
    }

    /// The relative bound the codec actually worked to ([`effective_bound`]): ZFP's error
    /// moves in 6 dB stairs between powers of two of the absolute bound, so the nominal
    /// bound places a ZFP row anywhere on its stair and the model could only blur them.
    pub fn effective_rel_bound(&self) -> f64 {
        match CodecId::from_name(&self.codec) {
            Some(id) if self.abs_bound > 0.0 && self.abs_bound.is_finite() => {
                self.rel_bound * effective_bound(id, self.abs_bound) / self.abs_bound
            }
            _ => self.rel_bound,
        }
    }

    /// True for a usable training row.
    pub fn is_ok(&self) -> bool {
        self.status == "ok" && self.measured.is_some()
    }
}

/// The resume key of one chunk.
pub fn chunk_key(dataset: &str, source: &str, chunk: usize) -> String {
    // As the table stores the names, so that a name holding a comma matches its rows.
    format!("{}/{}/{chunk}", clean(dataset), clean(source))
}

/// The header line (no newline).
pub fn header() -> String {
    FIXED_COLUMNS
        .iter()
        .chain(FEATURE_NAMES.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// Keeps free text out of the CSV structure.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ',' || c == '\n' || c == '\r' {
                ';'
            } else {
                c
            }
        })
        .collect()
}

/// Formats one row (no newline).
pub fn format_row(row: &Row) -> String {
    let shape = row
        .shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let mut cols = vec![
        clean(&row.dataset),
        clean(&row.source),
        row.chunk.to_string(),
        shape,
        clean(&row.dtype),
        clean(&row.codec),
        format!("{:e}", row.rel_bound),
        format!("{:e}", row.abs_bound),
        clean(&row.status),
    ];
    match &row.measured {
        Some(m) => cols.extend([
            format!("{}", m.psnr),
            format!("{}", m.ssim),
            format!("{}", m.cr),
            format!("{}", m.bits_per_value),
            format!("{}", m.max_err_over_bound),
            format!("{:.3}", m.encode_ms),
        ]),
        None => cols.extend(std::iter::repeat_n(String::new(), 6)),
    }
    cols.extend(row.features.iter().map(|f| format!("{f}")));
    cols.join(",")
}

/// Writes the header when `path` is new or empty; returns an appending writer.
pub fn open_append(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, TableError> {
    let io = |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    };
    let fresh = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    if !fresh {
        check_header(path)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    if fresh {
        writeln!(w, "{}", header()).map_err(io)?;
        w.flush().map_err(io)?;
    }
    Ok(w)
}

/// Cuts an interrupted run's last chunk off the table at `path`: a table that does not end
/// with a newline was cut inside a row, and the rows of the chunk written before the cut
/// may be incomplete too (a chunk's rows are written together, so they are the last
/// complete lines sharing its key). Collection then redoes that chunk, instead of
/// appending to the torn line or taking the chunk as done. Returns the bytes cut.
pub fn drop_torn_chunk(path: &Path) -> Result<usize, TableError> {
    let io = |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        read => read.map_err(io)?,
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(0);
    }
    // Only a table is cut: any other file named by mistake is left whole, for the header
    // check to refuse (a text file lost its last line, a binary one all of it).
    let header = header();
    let is_table = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => bytes[..end] == *header.as_bytes(),
        // Cut while its header was written.
        None => header.as_bytes().starts_with(&bytes),
    };
    if !is_table {
        return Ok(0);
    }
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines: Vec<&[u8]> = bytes[..whole].split_inclusive(|&b| b == b'\n').collect();
    // The key columns, with the comma after them: rows of one chunk share them.
    let key = |line: &[u8]| -> Vec<u8> {
        let mut commas = 0;
        let end = line.iter().position(|&b| {
            commas += usize::from(b == b',');
            commas == 3
        });
        line[..end.unwrap_or(line.len())].to_vec()
    };
    let mut keep = lines.len();
    // The header (line 1) always stays.
    if keep > 1 {
        let last = key(lines[keep - 1]);
        while keep > 1 && key(lines[keep - 1]) == last {
            keep -= 1;
        }
    }
    let len: usize = lines[..keep].iter().map(|l| l.len()).sum();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io)?;
    file.set_len(len as u64).map_err(io)?;
    Ok(bytes.len() - len)
}

fn check_header(path: &Path) -> Result<(), TableError> {
    let file = std::fs::File::open(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut first = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut first)
        .map_err(|source| TableError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if first.trim_end() != header() {
        return Err(TableError::Schema {
            path: path.to_path_buf(),
            detail: format!("found '{}'", first.trim_end()),
        });
    }
    Ok(())
}

/// Reads every row of a table.
pub fn read(path: &Path) -> Result<Vec<Row>, TableError> {
    let text = std::fs::read_to_string(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses table text; `path` only labels errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Row>, TableError> {
    // A last line with no newline is torn (an interrupted or still running collection)
    // whatever it holds: cut inside a number it can still have every column.
    let last_line = if text.ends_with('\n') {
        usize::MAX
    } else {
        text.lines().count()
    };
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    if first != header() {
        return Err(TableError::Schema {
            path: path.to_path_buf(),
            detail: format!("found '{first}'"),
        });
    }
    let width = FIXED_COLUMNS.len() + FEATURE_NAMES.len();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        if line.is_empty() {
            continue;
        }
        let err = |detail: String| TableError::Row {
            path: path.to_path_buf(),
            line: line_no,
            detail,
        };
        // A torn last line from an interrupted run: ignore it, collection redoes it.
        if line_no == last_line {
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() != width {
            return Err(err(format!("{} columns, expected {width}", cols.len())));
        }
        let num = |k: usize| -> Result<f64, TableError> {
            cols[k]
                .parse::<f64>()
                .map_err(|_| err(format!("column {} = '{}'", FIXED_COLUMNS[k], cols[k])))
        };
        let shape = cols[3]
            .split('x')
            .map(|d| d.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| err(format!("shape '{}'", cols[3])))?;
        let measured = if cols[9].is_empty() {
            None
        } else {
            Some(Measured {
                psnr: num(9)?,
                ssim: num(10)?,
                cr: num(11)?,
                bits_per_value: num(12)?,
                max_err_over_bound: num(13)?,
                encode_ms: num(14)?,
            })
        };
        // As the collector writes them: a PSNR of −∞ or NaN (weight 0 times an infinite
        // target is NaN in the loss) or a bound that is not finite (infinite input
        // statistics) would make every prediction NaN; another dtype is no type at all.
        if let Some(m) = &measured {
            if m.psnr.is_nan() || m.psnr == f64::NEG_INFINITY {
                return Err(err(format!("measured PSNR {}", m.psnr)));
            }
            if !(m.cr > 0.0 && m.cr.is_finite()) {
                return Err(err(format!("measured CR {}", m.cr)));
            }
        }
        let bound = num(6)?;
        if !(bound > 0.0 && bound.is_finite()) {
            return Err(err(format!("rel_bound {bound}")));
        }
        if !matches!(cols[4], "f32" | "f64") {
            return Err(err(format!("dtype '{}'", cols[4])));
        }
        // Finite, as the collector writes them: one NaN would make a column's mean, and
        // so every prediction of a model trained on it, NaN.
        let features = cols[FIXED_COLUMNS.len()..]
            .iter()
            .map(|c| c.parse::<f32>().ok().filter(|v| v.is_finite()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| err("a feature value that is not a finite number".into()))?;
        rows.push(Row {
            dataset: cols[0].to_string(),
            source: cols[1].to_string(),
            chunk: cols[2]
                .parse()
                .map_err(|_| err(format!("chunk '{}'", cols[2])))?,
            shape,
            dtype: cols[4].to_string(),
            codec: cols[5].to_string(),
            rel_bound: bound,
            abs_bound: num(7)?,
            status: cols[8].to_string(),
            measured,
            features,
        });
    }
    Ok(rows)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(measured: bool) -> Row {
        Row {
            dataset: "d".into(),
            source: "a,b.f32".into(),
            chunk: 3,
            shape: vec![4, 5],
            dtype: "f32".into(),
            codec: "sz3".into(),
            rel_bound: 1e-3,
            abs_bound: 2e-3,
            status: if measured {
                "ok".into()
            } else {
                "skip:x".into()
            },
            measured: measured.then_some(Measured {
                psnr: f64::INFINITY,
                ssim: 0.99,
                cr: 12.5,
                bits_per_value: 2.56,
                max_err_over_bound: 0.9,
                encode_ms: 1.0,
            }),
            features: vec![0.5; FEATURE_NAMES.len()],
        }
    }

    #[test]
    fn a_zfp_row_is_placed_at_the_power_of_two_it_worked_to() {
        let mut r = row(true);
        // Range 2: the absolute bound 2e-3 acts as 2^-9 for ZFP, as itself for SZ3.
        assert_eq!(r.effective_rel_bound(), 1e-3);
        r.codec = "zfp".into();
        assert!((r.effective_rel_bound() - 2f64.powi(-9) / 2.0).abs() < 1e-15);
    }

    #[test]
    fn rows_round_trip_through_text() {
        let text = format!(
            "{}\n{}\n{}\n",
            header(),
            format_row(&row(true)),
            format_row(&row(false))
        );
        let rows = parse(&text, Path::new("t.csv")).unwrap();
        assert_eq!(rows.len(), 2);
        let mut expected = row(true);
        expected.source = "a;b.f32".into();
        assert_eq!(rows[0], expected);
        assert!(rows[0].is_ok() && !rows[1].is_ok());
    }

    #[test]
    fn a_last_line_cut_inside_its_last_number_is_left_out_and_a_complete_one_kept() {
        let complete = format_row(&row(true));
        // Cut inside the last feature: every column is there, "0." parses as 0 and "0.5e"
        // does not parse at all.
        let mut long = complete.clone();
        long.push('e');
        for torn in [&complete[..complete.len() - 1], &long[..]] {
            let text = format!("{}\n{complete}\n{torn}", header());
            let rows = parse(&text, Path::new("t.csv")).unwrap();
            assert_eq!(rows.len(), 1, "{torn}");
        }
        // The same line with its newline is a row like any other.
        let text = format!("{}\n{complete}\n{complete}\n", header());
        assert_eq!(parse(&text, Path::new("t.csv")).unwrap().len(), 2);
    }

    #[test]
    fn a_torn_chunk_is_cut_from_a_table_and_nothing_from_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let complete = format_row(&row(true));
        let table = format!("{}\n{complete}\n", header());
        std::fs::write(&path, format!("{table}{}", &complete[..10])).unwrap();
        // The torn line and the complete row of the same chunk before it.
        assert_eq!(drop_torn_chunk(&path).unwrap(), complete.len() + 1 + 10);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", header())
        );
        // A header cut while it was written.
        std::fs::write(&path, &header()[..20]).unwrap();
        assert_eq!(drop_torn_chunk(&path).unwrap(), 20);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // Files `-o` may name by mistake: notes without a final newline, binary data.
        for other in [
            &b"line one\nline two\nline three"[..],
            &[0x7f, b'E', b'L', b'F', 2, 1],
        ] {
            std::fs::write(&path, other).unwrap();
            assert_eq!(drop_torn_chunk(&path).unwrap(), 0);
            assert_eq!(std::fs::read(&path).unwrap(), other);
        }
    }

    #[test]
    fn a_feature_that_is_not_finite_is_an_error_naming_its_line() {
        let complete = format_row(&row(true));
        for bad in ["NaN", "inf"] {
            let (head, _) = complete.rsplit_once(',').unwrap();
            let text = format!("{}\n{complete}\n{head},{bad}\n", header());
            let err = parse(&text, Path::new("t.csv")).unwrap_err();
            assert!(
                matches!(err, TableError::Row { line: 3, .. })
                    && err.to_string().contains("finite"),
                "{err}"
            );
        }
    }

    #[test]
    fn labels_bounds_and_dtypes_the_collector_never_writes_are_errors_naming_their_line() {
        let complete = format_row(&row(true));
        let cols: Vec<&str> = complete.split(',').collect();
        for (k, bad, says) in [
            (9, "-inf", "PSNR"),
            (9, "NaN", "PSNR"),
            (11, "inf", "CR"),
            (11, "0", "CR"),
            (6, "inf", "rel_bound"),
            (6, "0", "rel_bound"),
            (4, "float", "dtype"),
        ] {
            let mut edited = cols.clone();
            edited[k] = bad;
            let text = format!("{}\n{complete}\n{}\n", header(), edited.join(","));
            let err = parse(&text, Path::new("t.csv")).unwrap_err();
            assert!(
                matches!(err, TableError::Row { line: 3, .. }) && err.to_string().contains(says),
                "{k} = {bad}: {err}"
            );
        }
        // An exact chunk's PSNR is +∞, which the collector writes.
        let mut exact = cols.clone();
        exact[9] = "inf";
        let text = format!("{}\n{}\n", header(), exact.join(","));
        assert_eq!(
            parse(&text, Path::new("t.csv")).unwrap()[0]
                .measured
                .unwrap()
                .psnr,
            f64::INFINITY
        );
    }

    #[test]
    fn a_foreign_header_is_a_schema_error() {
        let err = parse("dataset,foo\n", Path::new("t.csv")).unwrap_err();
        assert!(matches!(err, TableError::Schema { .. }), "{err}");
    }
}
