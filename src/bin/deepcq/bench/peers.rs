//! The peer harness's recorded figures (`../shared/tools/shared_data_peers.jsonl`), so the
//! report can print them beside ours.
//!
//! The harness writes through hdf5plugin's real HDF5 filters, a different build of the same
//! compressors; agreement between its rows and ours checks both. Its figures are summarised
//! exactly as its README does: geometric mean over arrays of CR / best-oracle CR, and the
//! mean chunk hit rate, over the arrays this run measured.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::stats::geomean;

/// One recorded (file, target, method) line; lines carrying an `error` are skipped.
#[derive(Clone, Debug, Deserialize)]
pub struct PeerRow {
    /// Method name, e.g. `sz3-oracle`.
    pub method: String,
    /// `dataset/file`.
    pub file: String,
    /// Target in dB.
    pub target: f64,
    /// Compression ratio.
    pub cr: f64,
    /// Fraction of chunks meeting the target.
    pub chunk_hit_rate: f64,
    /// The chunk dims it wrote, `AxBxC` (slowest first); absent in older files.
    #[serde(default)]
    pub chunk: Option<String>,
}

/// The arrays (name, chunk dims) the peer rows measured in the same chunks: an array this
/// run chunked otherwise (`--chunk`, or an HDF5 input's stored chunks) is not compared.
/// Rows without chunk dims are taken to match.
pub fn same_chunks<'a>(
    rows: &[PeerRow],
    arrays: impl Iterator<Item = (&'a str, &'a [usize])>,
) -> HashSet<String> {
    let written: HashMap<&str, Option<&str>> = rows
        .iter()
        .map(|r| (r.file.as_str(), r.chunk.as_deref()))
        .collect();
    arrays
        .filter(|(name, chunk)| match written.get(name) {
            Some(Some(theirs)) => {
                let ours: Vec<String> = chunk.iter().map(|d| d.to_string()).collect();
                *theirs == ours.join("x")
            }
            Some(None) => true,
            None => false,
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Reads a peer JSON-lines file.
pub fn load(path: &Path) -> Result<Vec<PeerRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.contains("\"error\"") {
            continue;
        }
        let row: PeerRow = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

/// The peer summary of one method at one target over `files`: (geometric mean of CR /
/// best-oracle CR, mean hit rate, the arrays it covers). `None` when no array has both
/// rows.
pub fn summary(
    rows: &[PeerRow],
    files: &HashSet<String>,
    target: f64,
    method: &str,
) -> Option<(f64, f64, HashSet<String>)> {
    let at = |name: &str| -> HashMap<&str, &PeerRow> {
        rows.iter()
            .filter(|r| r.method == name && (r.target - target).abs() < 1e-9)
            .filter(|r| files.contains(&r.file))
            .map(|r| (r.file.as_str(), r))
            .collect()
    };
    let (mine, best) = (at(method), at("best-oracle"));
    let pairs: Vec<(&str, f64, f64)> = mine
        .iter()
        .filter_map(|(&file, r)| {
            best.get(file)
                .map(|b| (file, r.cr / b.cr, r.chunk_hit_rate))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let hit = pairs.iter().map(|p| p.2).sum::<f64>() / pairs.len() as f64;
    let covered = pairs.iter().map(|p| p.0.to_string()).collect();
    Some((geomean(pairs.iter().map(|p| p.1)), hit, covered))
}

/// The peer's CR for each file, for one method at one target.
pub fn crs(rows: &[PeerRow], target: f64, method: &str) -> HashMap<String, f64> {
    rows.iter()
        .filter(|r| r.method == method && (r.target - target).abs() < 1e-9)
        .map(|r| (r.file.clone(), r.cr))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_pairs_each_file_with_its_best_oracle() {
        let text = [
            r#"{"method": "sz3-oracle", "cr": 10.0, "chunk_hit_rate": 1.0, "file": "a/x.f32", "target": 40.0, "psnr": 40.1}"#,
            r#"{"method": "best-oracle", "cr": 20.0, "chunk_hit_rate": 1.0, "file": "a/x.f32", "target": 40.0}"#,
            r#"{"method": "sz3-oracle", "cr": 5.0, "chunk_hit_rate": 0.5, "file": "a/y.f32", "target": 40.0}"#,
            r#"{"method": "best-oracle", "cr": 40.0, "chunk_hit_rate": 1.0, "file": "a/y.f32", "target": 40.0}"#,
            r#"{"method": "sperr-psnr-mode", "error": "skipped"}"#,
            r#"{"method": "sz3-oracle", "cr": 1.0, "chunk_hit_rate": 0.0, "file": "b/z.f32", "target": 40.0}"#,
        ]
        .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(&path, text).unwrap();
        let rows = load(&path).unwrap();
        assert_eq!(rows.len(), 5);
        let files: HashSet<String> = ["a/x.f32", "a/y.f32", "b/z.f32"].map(String::from).into();
        // b/z has no best-oracle row: left out. Ratios 0.5 and 0.125 → 0.25.
        let (ratio, hit, covered) = summary(&rows, &files, 40.0, "sz3-oracle").unwrap();
        assert!((ratio - 0.25).abs() < 1e-12);
        assert_eq!(hit, 0.75);
        assert_eq!(covered, ["a/x.f32", "a/y.f32"].map(String::from).into());
        assert!(summary(&rows, &files, 60.0, "sz3-oracle").is_none());
        let crs = crs(&rows, 40.0, "sz3-oracle");
        assert_eq!(crs.len(), 3);
        assert_eq!(crs["a/y.f32"], 5.0);
    }

    #[test]
    fn only_arrays_in_the_peers_chunks_are_compared() {
        let row = |file: &str, chunk: Option<&str>| PeerRow {
            method: "sz3-oracle".into(),
            file: file.into(),
            target: 40.0,
            cr: 10.0,
            chunk_hit_rate: 1.0,
            chunk: chunk.map(String::from),
        };
        let rows = [
            row("a", Some("4x64x64")),
            row("b", Some("8x8")),
            row("c", None),
        ];
        let arrays: [(&str, &[usize]); 4] = [
            ("a", &[4, 64, 64]),
            ("b", &[16, 16]),
            ("c", &[5]),
            ("d", &[5]),
        ];
        let compared = same_chunks(&rows, arrays.into_iter());
        assert_eq!(compared, ["a", "c"].map(String::from).into());
    }
}
