//! The Markdown report: totals per target, the peer harness beside ours, then every array.
//!
//! Row labels are [`Method::name`]; column meanings are in the report's own preamble and in
//! docs/bench.md, so a report read alone still says what it measured.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::methods::Method;
use super::peers::{self, PeerRow};
use super::plot;
use super::stats::{geomean, totals, ArrayResult, Figures};

/// Everything the report states about a run.
pub struct Run<'a> {
    /// The command line, as typed.
    pub command: String,
    /// Targets in dB.
    pub targets: &'a [f64],
    /// Measured arrays.
    pub arrays: &'a [ArrayResult],
    /// Arrays that could not be read, with why.
    pub left_out: &'a [String],
    /// Worker threads.
    pub threads: usize,
    /// Compressions per oracle per chunk.
    pub steps: u32,
    /// What deepcq's chooser was.
    pub proposer: &'a str,
    /// How chunks were cut.
    pub chunk_rule: String,
    /// The peer file and its rows, when present.
    pub peers: Option<(String, Vec<PeerRow>)>,
    /// Wall seconds of the whole run.
    pub wall_seconds: f64,
    /// Where the plot went.
    pub plot: Option<String>,
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.is_infinite() {
        if v > 0.0 { "∞" } else { "−∞" }.into()
    } else {
        format!("{v:.decimals$}")
    }
}

fn codecs(c: [usize; 4]) -> String {
    format!("{}/{}/{}/{}", c[1], c[2], c[3], c[0])
}

/// The Markdown text.
pub fn markdown(run: &Run) -> String {
    let mut s = String::new();
    let chunks: usize = run.arrays.iter().map(|a| a.chunks).sum();
    let _ = writeln!(s, "# deepcq bench\n");
    let _ = writeln!(s, "    {}\n", run.command);
    let _ = writeln!(
        s,
        "- {} arrays, {} chunks, targets {} dB (PSNR, value-range convention: \
         20·log10(max − min) − 10·log10(MSE); per chunk with the chunk's own range).",
        run.arrays.len(),
        chunks,
        run.targets
            .iter()
            .map(|t| num(*t, 1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !run.left_out.is_empty() {
        let _ = writeln!(s, "- Left out: {}.", run.left_out.join("; "));
    }
    let _ = writeln!(s, "- Chunks: {}.", run.chunk_rule);
    let _ = writeln!(
        s,
        "- deepcq chooser: {}. Oracles: {} real compressions per compressor and chunk; \
         SZ3's also tries the formula's bound (one more).",
        run.proposer, run.steps
    );
    let _ = writeln!(
        s,
        "- deepcq predict, fast and guarantee: {}.",
        if h5z_deepcq::memory::enabled() {
            "each chunk starts from what the array's earlier chunks taught at that target \
             (predict mode: a chunk it measures anyway), as the filter's do within a dataset \
             (H5Z_DEEPCQ_MEMORY=0 turns it off); an array's chunks run in order at each \
             target, so runs repeat"
        } else {
            "every chunk searched alone (H5Z_DEEPCQ_MEMORY=0)"
        }
    );
    let _ = writeln!(
        s,
        "- {} worker threads; {:.0} s wall in all. Times are per-thread CPU seconds.",
        run.threads, run.wall_seconds
    );
    let _ = writeln!(
        s,
        "- Stored sizes: deepcq rows count the chunk the filter writes, its self-describing \
         header and its payload, SZ3's and SPERR's stored compact (a few bytes under their \
         codec's payload all told, so deepcq's /best can pass 1 with an oracle's codec and \
         bound; so can what no oracle searches: SPERR cut to a size, a bound beyond the \
         range where the mean serves); peer rows count the codec payload only, and under \
         each target's totals deepcq is also set against the oracles stored as it stores \
         its own chunks (like for like). A chunk a peer's codec refuses is \
         stored losslessly (column *refused*). NaN, ±Inf and an array's missing value \
         (`--missing`, else an HDF5 dataset's fill value; named per array below) are missing \
         values, as in the filter: kept exactly, left out of the PSNR (and of bits per value \
         and the dataset PSNR) in every row; the peers compress the chunk with them replaced \
         and also count the filter's missing-value record."
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Columns: **CR** total raw / total stored bytes; **/best** geometric mean over arrays of \
         CR / best-oracle CR; **hit** mean over arrays of the fraction of chunks with PSNR ≥ T; \
         **chunks hit** fraction of all chunks with PSNR ≥ T; \
         **worst** lowest chunk PSNR; **PSNR** mean over arrays of the dataset PSNR (global \
         range; arrays stored exactly left out); **over** mean chunk PSNR − T (dB, exact chunks \
         left out); **time×** CPU time / CPU time of one SZ3 compression per chunk at the \
         formula bound; **time/own** (deepcq) CPU time / CPU time of one compression with the \
         codec and bound deepcq stored, i.e. the cost of choosing and checking whatever the \
         codec; **choose/own** (deepcq) CPU time of the chooser's proposal alone \
         (features, inference, the choice among candidates; timed inside the write, where \
         the filter asks for it) / CPU time of that compression, over the chunks it \
         proposed for; \
         **compr.** mean compressions per chunk; **CPU s** total; **CAQ** \
         geometric mean over arrays of CR / (CPU s + 1); **read MB/s** raw MB per CPU \
         second of decoding what was stored (deepcq: the whole chunk, header and checksum \
         included); **bits** stored bits per value; \
         **codecs** chunks stored by SZ3/ZFP/SPERR/lossless.\n"
    );
    totals_section(&mut s, run);
    peers_section(&mut s, run);
    plot_section(&mut s, run);
    arrays_section(&mut s, run);
    s
}

fn totals_section(s: &mut String, run: &Run) {
    let _ = writeln!(s, "## Totals\n");
    for (ti, t) in run.targets.iter().enumerate() {
        let _ = writeln!(s, "### {} dB\n", num(*t, 1));
        let _ = writeln!(
            s,
            "| method | CR | /best | hit | chunks hit | worst | PSNR | over | time× | time/own | choose/own | compr. | CPU s | CAQ | read MB/s | bits | codecs | refused |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for m in Method::ALL {
            let f = totals(run.arrays, ti, m);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.name(),
                num(f.cr, 2),
                num(f.vs_best, 3),
                num(f.hit, 2),
                num(f.chunk_hit, 3),
                num(f.worst, 2),
                num(f.psnr, 2),
                num(f.overshoot, 2),
                num(f.time_ratio, 2),
                num(f.time_own, 2),
                num(f.choose_own, 3),
                num(f.compressions, 2),
                num(f.cpu, 1),
                num(f.caq, 3),
                num(f.read_mbps, 0),
                num(f.bits, 3),
                codecs(f.codecs),
                f.fallbacks
            );
        }
        let like = |m| num(totals(run.arrays, ti, m).vs_best_in_filter, 3);
        let _ = writeln!(
            s,
            "\nLike for like, every oracle's payload stored as the filter stores its own chunks \
             (header with its quality record, SZ3 and SPERR payloads compact; /best above \
             counts the oracles' codec payloads, as a peer filter stores them), CR / best \
             oracle: deepcq predict {}, fast {}, guarantee {}.",
            like(Method::Predict),
            like(Method::Fast),
            like(Method::Guarantee)
        );
        let _ = writeln!(s);
    }
}

fn peers_section(s: &mut String, run: &Run) {
    let Some((path, rows)) = &run.peers else {
        return;
    };
    let arrays = run
        .arrays
        .iter()
        .map(|a| (a.name.as_str(), a.chunk.as_slice()));
    let files = peers::same_chunks(rows, arrays);
    let _ = writeln!(s, "## Beside the peer harness\n");
    let _ = writeln!(
        s,
        "Geometric mean over arrays of CR / best-oracle CR, with the mean chunk hit rate. *peers* \
         is `{path}` (hdf5plugin's HDF5 filters), over the arrays of this run it has figures \
         for in the same chunks ({} of {}); *ours* is this run over the same arrays (all of \
         them where the peer has none). The peer harness runs no SPERR on 1-D and 4-D chunks, \
         so its best oracle there is over SZ3 and ZFP only, ours over all three.\n",
        files.len(),
        run.arrays.len()
    );
    let mut head = "| method |".to_string();
    let mut rule = "|---|".to_string();
    for t in run.targets {
        let _ = write!(head, " {} dB ours | {} dB peers |", num(*t, 0), num(*t, 0));
        rule.push_str("---|---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for m in Method::ALL {
        let mut line = format!("| {} |", m.name());
        for (ti, t) in run.targets.iter().enumerate() {
            let peer = m
                .peer_name()
                .and_then(|name| peers::summary(rows, &files, *t, name));
            let covered: Cow<[ArrayResult]> = match &peer {
                Some((_, _, covered)) => {
                    let covers = |a: &&ArrayResult| covered.contains(&a.name);
                    Cow::Owned(run.arrays.iter().filter(covers).cloned().collect())
                }
                None => Cow::Borrowed(run.arrays),
            };
            let f: Figures = totals(&covered, ti, m);
            let ours = format!("{} (hit {})", num(f.vs_best, 3), num(f.hit, 2));
            let theirs = peer
                .map(|(r, h, covered)| {
                    let n = covered.len();
                    format!("{} (hit {}, {n} arrays)", num(r, 3), num(h, 2))
                })
                .unwrap_or_else(|| "–".into());
            let _ = write!(line, " {ours} | {theirs} |");
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(
        s,
        "\nSame method, same chunks, our codec build against the peer's: geometric mean over \
         arrays of our CR / the peer's CR (number of arrays in brackets). Near 1 where both \
         harnesses agree; the peer's sizes include its filter's own small header.\n"
    );
    let mut head = "| method |".to_string();
    let mut rule = "|---|".to_string();
    for t in run.targets {
        let _ = write!(head, " {} dB |", num(*t, 0));
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for m in Method::ALL {
        let Some(name) = m.peer_name() else {
            continue;
        };
        let mut line = format!("| {} |", m.name());
        for (ti, t) in run.targets.iter().enumerate() {
            let theirs = peers::crs(rows, *t, name);
            let ratios: Vec<f64> = run
                .arrays
                .iter()
                .filter(|a| files.contains(&a.name))
                .filter_map(|a| theirs.get(&a.name).map(|p| a.figures(ti, m).cr / p))
                .collect();
            let cell = if ratios.is_empty() {
                "–".to_string()
            } else {
                format!(
                    "{} ({})",
                    num(geomean(ratios.iter().copied()), 3),
                    ratios.len()
                )
            };
            let _ = write!(line, " {cell} |");
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s);
}

fn plot_section(s: &mut String, run: &Run) {
    let Some(path) = &run.plot else {
        return;
    };
    let _ = writeln!(s, "## Rate–distortion plot\n");
    let _ = writeln!(
        s,
        "`{path}`: x = stored bits per value over all arrays (grid every 1), y = mean dataset \
         PSNR over arrays (grid every 10 dB); one point per target. Colours: {}.\n",
        Method::ALL
            .iter()
            .map(|&m| format!("{} {}", m.name(), plot::colour_name(m)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn arrays_section(s: &mut String, run: &Run) {
    let _ = writeln!(s, "## Per array\n");
    for a in run.arrays {
        let dims = |d: &[usize]| {
            d.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("x")
        };
        let _ = writeln!(
            s,
            "### {}\n\ndims {}, chunk {}, {} chunks, value range {:.6e}{}\n",
            a.name,
            dims(&a.dims),
            dims(&a.chunk),
            a.chunks,
            a.range,
            a.missing
                .map(|m| format!(", missing value {m:.6e}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "| T | method | CR | /best | hit | PSNR | worst | over | time× | CAQ | codecs |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        for (ti, t) in run.targets.iter().enumerate() {
            for m in Method::ALL {
                let f = a.figures(ti, m);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    num(*t, 0),
                    m.name(),
                    num(f.cr, 2),
                    num(f.vs_best, 3),
                    num(f.hit, 2),
                    num(f.psnr, 2),
                    num(f.worst, 2),
                    num(f.overshoot, 2),
                    num(f.time_ratio, 2),
                    num(f.caq, 3),
                    codecs(f.codecs)
                );
            }
        }
        let _ = writeln!(s);
    }
}
