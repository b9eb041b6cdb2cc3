//! Chunks that HDF5 compresses more than once because they were written in parts, or
//! written again.
//!
//! HDF5 runs the filter whenever a chunk leaves its chunk cache. A chunk written in parts
//! (a time step at a time into chunks that span several, when the cache cannot hold every
//! chunk one write touches) leaves it half written; the next write reads it back, decoded
//! with the codec's error, adds its part and has it compressed again. Each round adds a
//! new error to the values written before, and the file ends below the target although
//! every compression met it: 16 time steps into 16×64×64 chunks through h5py's default
//! 1 MiB cache held 48.7 dB worst chunk at a 60 dB target, 25.5 dB at 40 dB.
//!
//! Parts need not come in order: a step written as subdomains (tiles that do not line up
//! with the chunks) leaves holes of fill values inside the data, whose range then spans
//! the fill value too, and the chunk's bound with it (2×2 tiles of a field 1000 ± 1 with
//! fill 0 ended at −14 dB for a 40 dB target). A step written twice (a solver's restart)
//! re-reads full chunks.
//!
//! So the filter keeps, for a while, the original bytes of each lossy chunk it wrote, with
//! the chunk as stored. When HDF5 decodes such a chunk, a few of the values the codec
//! changed are noted; when a buffer that holds them comes to be compressed again, the
//! stored chunk is decoded once more (keeping every decode would double the memory) and
//! every value the writer left as it was decoded is put back to its original first; what
//! the writer changed is stored as written. Each value then goes through the codec once,
//! and the target is met against what was written. A buffer that is the decode unchanged
//! (a part that writes over the chunk what it already held, fill values over fill values;
//! a program copying a dataset into another set up alike) is stored as the chunk it was
//! decoded from, bytes unchanged: it decodes to exactly that buffer, with no second
//! codec's error and no compression.
//!
//! A buffer is taken for a kept chunk's successor when it is compressed with the same
//! stored cd_values (the same dataset, or one set up alike), holds, bit for bit, at least 4
//! of the noted decoded values (all of fewer; of the kept chunk whose it holds the largest
//! share), and, decoded again, at least 32 of the values the codec changed (all of fewer);
//! values the codec decoded to zero are neither noted nor counted, and a buffer whose
//! nonzero values take at most two values gets no originals back (`few_values`; it may
//! still be a decode unchanged). A copy stored as the chunk it was read from shares that
//! chunk's originals: rewritten in parts later, it gets them back, within the chunk's bound
//! of what the copy was written with. Wherever a successor came from (HDF5 re-reading a
//! chunk for a partial write, or a program that read the chunk, edited some values and
//! wrote it back), a value still as decoded is an approximation of its original, and the
//! original is both what was written and closer to it. A decode's values identify it only
//! where the codec made them up: values it reproduces exactly in other chunks too (levels
//! of quantised data, a constant a coarse bound collapses a region to; zeros are left out)
//! could make another chunk of the dataset pass for a kept one, which would then get that
//! chunk's originals (see the README's "Chunks written in parts"). Before anything is put
//! back, the originals are checked against the decode: within the chunk's point-wise bound
//! (a chunk coded to a size, bound 0, has none: within the original's range), else they are
//! dropped. What is kept is bounded ([`ENV_KEEP_MB`], 64 MiB by default, oldest first out),
//! and kept per process: a chunk evicted from this memory, or re-filtered by another
//! process or MPI rank, still adds up errors (the README says how to size HDF5's chunk
//! cache instead).
//!
//! A lossy chunk the process reads without having written it (h5repack reading a file to
//! copy it) is kept too, its stored bytes only, within a quarter of the limit
//! ([`Rewrites::read_unchanged`]): a buffer that decodes from it bit for bit, compressed
//! for a dataset set up alike, is stored as those bytes again. Its originals are unknown,
//! so a buffer that differs in any value is compressed as any other.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;

use crate::chunk::Header;
use crate::wire::{CodecId, DType};

/// Environment variable: MiB of originals (and the chunks stored from them) kept per
/// process; 0 keeps none.
pub const ENV_KEEP_MB: &str = "H5Z_DEEPCQ_KEEP_MB";

/// Whether a chunk over the limit was said (once per process: a dataset of such chunks
/// would say it for every chunk).
static OVER_LIMIT_SAID: AtomicBool = AtomicBool::new(false);

/// [`ENV_KEEP_MB`]'s default.
const DEFAULT_KEEP_MB: usize = 64;

/// How many of the values the codec changed identify a kept chunk's decode: spread evenly
/// over them, so that a part of a sixteenth of the chunk left as decoded holds 16.
const PROBES: usize = 256;

/// Probes a buffer must hold, bit for bit, to be taken for a kept chunk's successor (all of
/// them when fewer), and values the codec changed that it must hold once decoded again: so
/// that a write over all but a sixteenth of a chunk still gets that sixteenth's originals
/// back (an eighth of the probes was required, and such a part went through the codec
/// twice: 39.6 dB at a 40 dB target). Values the codec decoded to zero are neither probes
/// nor counted: other chunks of a sparse field hold zeros at the same places (and a zero
/// compressed again stays zero, so nothing is lost by leaving them as they are).
const MATCHING_PROBES: usize = 4;
/// See [`MATCHING_PROBES`].
const MATCHING_VALUES: usize = 32;

/// Whether `value`'s bytes are a zero of either sign, in either byte order (the sign bit
/// alone set in the first or the last byte).
fn is_zero(value: &[u8]) -> bool {
    let mut set = value.iter().enumerate().filter(|(_, &b)| b != 0);
    match (set.next(), set.next()) {
        (None, _) => true,
        (Some((at, &0x80)), None) => at == 0 || at + 1 == value.len(),
        _ => false,
    }
}

/// What [`Rewrites::restore`] found for a buffer about to be compressed.
#[derive(Debug, PartialEq)]
pub enum Successor {
    /// A kept chunk's decode with values the writer changed: the buffer with every value
    /// still as decoded put back to its original.
    Restored(Vec<u8>),
    /// A kept chunk's decode, unchanged (fill values written over fill values, a copy of
    /// what was read into a dataset set up alike): the chunk as stored, which decodes to
    /// exactly that buffer, to store again rather than add a second codec's error.
    Unchanged(Arc<Vec<u8>>),
}

/// Identifies a stored chunk: its length and a 64-bit hash of its bytes.
type Key = (usize, u64);

fn key_of(stored: &[u8]) -> Key {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    stored.hash(&mut h);
    (stored.len(), h.finish())
}

/// A lossy chunk: as stored, and the bytes it was written from.
struct Kept {
    key: Key,
    /// The dataset's stored cd_values: a successor is written to the same dataset.
    dataset: Vec<u32>,
    stored: Arc<Vec<u8>>,
    original: Arc<Vec<u8>>,
    elem_size: usize,
    /// Set once HDF5 decoded the chunk: up to [`PROBES`] values where the decode differs
    /// from the original, as (index, decoded bytes), to recognise its successor by.
    probes: Vec<(usize, Vec<u8>)>,
}

impl Kept {
    /// Bytes held, counted against the limit.
    fn bytes(&self) -> usize {
        let probes = self.probes.len() * (self.elem_size + 32);
        self.stored.len() + self.original.len() + probes + 256
    }
}

/// The kept chunks, oldest first, with what lets a write they have nothing to do with skip
/// walking them: their bytes in all, how many hold each stored key, how many have probes.
/// (Walking thousands of them on every write cost a dataset of 1 KiB chunks 58% of its
/// write time.)
#[derive(Default)]
struct Store {
    entries: VecDeque<Kept>,
    total: usize,
    keys: std::collections::HashMap<Key, usize>,
    probed: usize,
}

impl Store {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the counts are those of the entries.
    #[cfg(test)]
    fn consistent(&self) -> bool {
        let mut keys = std::collections::HashMap::<Key, usize>::new();
        for k in &self.entries {
            *keys.entry(k.key).or_default() += 1;
        }
        let probed = self.entries.iter().filter(|k| !k.probes.is_empty()).count();
        let total: usize = self.entries.iter().map(Kept::bytes).sum();
        (keys, probed, total) == (self.keys.clone(), self.probed, self.total)
    }

    fn holds(&self, key: Key) -> bool {
        self.keys.contains_key(&key)
    }

    fn count(&mut self, k: &Kept) {
        self.total += k.bytes();
        *self.keys.entry(k.key).or_default() += 1;
        self.probed += usize::from(!k.probes.is_empty());
    }

    fn uncount(&mut self, k: &Kept) {
        self.total -= k.bytes();
        if let Some(n) = self.keys.get_mut(&k.key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(&k.key);
            }
        }
        self.probed -= usize::from(!k.probes.is_empty());
    }

    fn push(&mut self, k: Kept) {
        self.count(&k);
        self.entries.push_back(k);
    }

    /// Of the entries of `key`, keeps those `keep` (which may change their probes) returns
    /// true for; the others are not touched.
    fn retain_key(&mut self, key: Key, mut keep: impl FnMut(&mut Kept) -> bool) {
        if !self.holds(key) {
            return;
        }
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain_mut(|k| {
            if k.key != key {
                return true;
            }
            self.uncount(k);
            let kept = keep(k);
            if kept {
                self.count(k);
            }
            kept
        });
        self.entries = entries;
    }

    /// The counts taken again from the entries (after a panic left them unknown).
    fn recount(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        *self = Store::default();
        entries.into_iter().for_each(|k| self.push(k));
    }

    /// Drops the oldest entries until those left hold at most `limit` bytes.
    fn shrink(&mut self, limit: usize) {
        while self.total > limit {
            match self.entries.pop_front() {
                Some(k) => self.uncount(&k),
                None => break,
            }
        }
    }
}

/// A lossy chunk this process decoded but did not write (a copy program, h5repack among
/// them, reading a file written elsewhere): its stored bytes and a fingerprint of its
/// decode, to store those bytes again when the decode comes back unchanged.
struct Read {
    /// The dataset's stored cd_values.
    dataset: Vec<u32>,
    /// The decode's length and [`fingerprint`].
    decode: Key,
    stored: Arc<Vec<u8>>,
}

/// Share of [`ENV_KEEP_MB`] the chunks read ([`Read`]) may hold besides the chunks written:
/// their stored bytes only, so at 64 MiB the compressed chunks of a dataset of a few
/// hundred MB read whole before it is written whole.
const READ_SHARE: usize = 4;

/// The chunks read, oldest first, and by their decode's fingerprint (a write whose buffer
/// holds none of them walks nothing, one that does only those of its fingerprint).
#[derive(Default)]
struct ReadStore {
    order: VecDeque<Arc<Read>>,
    by_decode: std::collections::HashMap<Key, Vec<Arc<Read>>>,
    total: usize,
}

impl ReadStore {
    /// Bytes an entry of `stored` bytes for a dataset of `words` cd_values holds: besides
    /// those, four allocations (the entry, its stored bytes' Arc, its cd_values, its map
    /// bucket's list) and their headers, about 256 bytes as [`Kept::bytes`] counts, so that
    /// many small chunks read stay within the limit too.
    fn cost(stored: usize, words: usize) -> usize {
        stored + words * 4 + 256
    }

    fn bytes(r: &Read) -> usize {
        Self::cost(r.stored.len(), r.dataset.len())
    }

    /// Keeps `r` (once: a chunk read again, through a small chunk cache, is one entry),
    /// then drops the oldest until at most `limit` bytes are held.
    fn push(&mut self, r: Read, limit: usize) {
        let same = self.by_decode.get(&r.decode).is_some_and(|held| {
            held.iter()
                .any(|h| h.dataset == r.dataset && h.stored == r.stored)
        });
        if same {
            return;
        }
        let r = Arc::new(r);
        self.total += Self::bytes(&r);
        self.by_decode.entry(r.decode).or_default().push(r.clone());
        self.order.push_back(r);
        while self.total > limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.total -= Self::bytes(&old);
            if let Some(held) = self.by_decode.get_mut(&old.decode) {
                held.retain(|h| !Arc::ptr_eq(h, &old));
                if held.is_empty() {
                    self.by_decode.remove(&old.decode);
                }
            }
        }
    }
}

/// A fingerprint of `bytes`: their CRC-32 (the chunk checksum's crate, fast beside a
/// decode). It finds which chunk read a buffer may be the decode of, and a decode again
/// confirms it, so it need not resist collisions.
fn fingerprint(bytes: &[u8]) -> u64 {
    u64::from(crc32fast::hash(bytes))
}

/// What one process keeps of the lossy chunks it wrote, oldest first, and of those it read.
pub struct Rewrites {
    kept: Mutex<Store>,
    read: Mutex<ReadStore>,
    limit: usize,
}

/// The process's [`Rewrites`], sized by [`ENV_KEEP_MB`].
pub static REWRITES: Lazy<Rewrites> = Lazy::new(|| {
    let mb = std::env::var(ENV_KEEP_MB)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_KEEP_MB);
    Rewrites::new(mb.saturating_mul(1 << 20))
});

impl Rewrites {
    /// Keeps at most `limit` bytes (originals and the chunks stored from them).
    pub fn new(limit: usize) -> Self {
        Rewrites {
            kept: Mutex::new(Store::default()),
            read: Mutex::new(ReadStore::default()),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.kept.lock().unwrap_or_else(|poisoned| {
            // A panic may have dropped entries mid-walk: counted again, once.
            let mut store = poisoned.into_inner();
            store.recount();
            self.kept.clear_poison();
            store
        })
    }

    /// After `stored` was written for `original` (the bytes HDF5 handed the filter, after
    /// anything [`Rewrites::restore`] put back): keeps both when the chunk is lossy (with
    /// a point-wise bound to check the originals by later, or coded to a size). The oldest
    /// go when the limit is reached.
    pub fn written(&self, dataset: &[u32], stored: &[u8], header: &Header, original: &[u8]) {
        let bytes = stored.len() + original.len() + 256;
        // A bound of 0 is a stream coded to a size (SPERR by rate): lossy too.
        if header.codec == CodecId::Lossless || header.bound < 0.0 || header.bound.is_nan() {
            return;
        }
        if bytes > self.limit {
            if self.limit > 0 && !OVER_LIMIT_SAID.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "a chunk of {:.1} MiB with its stored bytes is over {ENV_KEEP_MB} ({} \
                     MiB): its values are not kept, so a part of it written again later \
                     (a write in parts through too small a chunk cache, a restart) goes \
                     through the codec twice; raise {ENV_KEEP_MB} to keep such chunks \
                     (said once per process)",
                    bytes as f64 / (1024.0 * 1024.0),
                    self.limit / (1024 * 1024)
                );
            }
            return;
        }
        let entry = Kept {
            key: key_of(stored),
            dataset: dataset.to_vec(),
            stored: Arc::new(stored.to_vec()),
            original: Arc::new(original.to_vec()),
            elem_size: header.layout.elem_size,
            probes: Vec::new(),
        };
        let mut kept = self.lock();
        // The same stored bytes from other originals in the same dataset (a chunk written
        // again with values that store alike, at an absolute bound; or two chunks alike): a
        // decode of them cannot tell which originals it came from, so neither is kept.
        let mut conflict = false;
        kept.retain_key(entry.key, |k| {
            let same = k.dataset == entry.dataset;
            conflict |= same && k.original != entry.original;
            !same
        });
        if !conflict {
            kept.push(entry);
        }
        kept.shrink(self.limit);
    }

    /// After `stored` was decoded into `decoded` (the bytes HDF5 gets) for the dataset whose
    /// stored cd_values are `dataset` (None: not known): when it is a kept chunk and its
    /// original lies within the chunk's bound of the decode, notes where the two differ,
    /// for [`Rewrites::restore`] to recognise the chunk's successor by. Originals that do
    /// not match their decode are dropped. A lossy chunk this process did not write is
    /// noted as read ([`Rewrites::read_unchanged`]).
    pub fn decoded(&self, dataset: Option<&[u32]>, stored: &[u8], header: &Header, decoded: &[u8]) {
        if self.limit == 0 {
            return;
        }
        let key = key_of(stored);
        let mut kept = self.lock();
        if !kept.holds(key) {
            drop(kept);
            if let Some(dataset) = dataset {
                self.note_read(dataset, stored, header, decoded);
            }
            return;
        }
        // Every dataset's chunk of these bytes: the decode does not say which was read.
        let size = header.layout.elem_size;
        kept.retain_key(key, |k| {
            match changed_within_bound(&k.original, decoded, header) {
                Some(changed) => {
                    k.probes = changed
                        .into_iter()
                        .map(|i| (i, decoded[i * size..(i + 1) * size].to_vec()))
                        .collect();
                    true
                }
                None => {
                    log::warn!("a kept original does not match its chunk's decode; dropped");
                    false
                }
            }
        });
        kept.shrink(self.limit);
        // Its originals dropped, the chunk is one read like any other.
        let dropped = !kept.holds(key);
        drop(kept);
        if let (true, Some(dataset)) = (dropped, dataset) {
            self.note_read(dataset, stored, header, decoded);
        }
    }

    /// Keeps a lossy chunk read (not written here), within its share of the limit.
    fn note_read(&self, dataset: &[u32], stored: &[u8], header: &Header, decoded: &[u8]) {
        let limit = self.limit / READ_SHARE;
        let lossy = header.codec != CodecId::Lossless && !header.bound.is_nan();
        if !lossy || header.bound < 0.0 || ReadStore::cost(stored.len(), dataset.len()) > limit {
            return;
        }
        let read = Read {
            dataset: dataset.to_vec(),
            decode: (decoded.len(), fingerprint(decoded)),
            stored: Arc::new(stored.to_vec()),
        };
        let mut store = self.read.lock().unwrap_or_else(|p| p.into_inner());
        store.push(read, limit);
    }

    /// Before `input` is compressed for the dataset whose stored cd_values are `dataset`:
    /// a chunk read from a dataset set up alike ([`Rewrites::decoded`]) that decodes to
    /// exactly `input` (`decode` decodes a stored chunk again), to store as it is. A copy
    /// program (h5repack with a filter or layout named for any other dataset, nccopy, a
    /// script reading one dataset into another) then stores the chunks it copies as they
    /// were, rather than a second codec's error on top of the first: under a 60 dB target
    /// a chunk copied by h5repack held 59.6 dB against its original.
    pub fn read_unchanged(
        &self,
        dataset: &[u32],
        input: &[u8],
        decode: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Arc<Vec<u8>>> {
        if self.limit == 0 {
            return None;
        }
        let candidates: Vec<Arc<Vec<u8>>> = {
            let store = self.read.lock().unwrap_or_else(|p| p.into_inner());
            if store.order.is_empty() {
                return None;
            }
            let held = store.by_decode.get(&(input.len(), fingerprint(input)))?;
            held.iter()
                .rev()
                .filter(|r| r.dataset == dataset)
                .map(|r| r.stored.clone())
                .collect()
        };
        // Decoded again, outside the lock: only a decode equal to the buffer bit for bit
        // may be stored for it.
        candidates
            .into_iter()
            .find(|stored| decode(stored).is_some_and(|d| d == input))
    }

    /// Before `input` (a chunk buffer of `elem_size`-byte values) is compressed: whether it
    /// holds a kept chunk's decode ([`Rewrites::decoded`]; `decode` decodes a stored chunk
    /// again), the kept chunk whose probes it holds most of, and what to store for it
    /// ([`Successor`]). `None` for any other buffer.
    pub fn restore(
        &self,
        dataset: &[u32],
        input: &[u8],
        elem_size: usize,
        decode: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Successor> {
        if self.limit == 0 || elem_size == 0 {
            return None;
        }
        let same =
            |a: &[u8], b: &[u8], i: usize| element(a, i, elem_size) == element(b, i, elem_size);
        let (key, stored, original) = {
            let kept = self.lock();
            // Nothing decoded yet (a dataset written and not read): nothing to recognise.
            if kept.probed == 0 {
                return None;
            }
            let matching = |k: &Kept| {
                k.probes
                    .iter()
                    .filter(|(i, v)| element(input, *i, elem_size) == v)
                    .count()
            };
            let need = |k: &Kept| k.probes.len().min(MATCHING_PROBES);
            // The kept chunk whose probes the buffer holds the largest share of, the newest
            // of equals.
            let (_, k) = kept
                .entries
                .iter()
                .filter(|k| {
                    k.elem_size == elem_size
                        && k.dataset == dataset
                        && k.original.len() == input.len()
                        && !k.probes.is_empty()
                })
                .map(|k| (matching(k), k))
                .filter(|(m, k)| *m >= need(k))
                .max_by(|(m, k), (n, l)| {
                    (*m as f64 / k.probes.len() as f64)
                        .total_cmp(&(*n as f64 / l.probes.len() as f64))
                })?;
            (k.key, k.stored.clone(), k.original.clone())
        };
        // Decoded again rather than kept: the originals are what memory must hold.
        let decoded = decode(&stored).filter(|d| d.len() == input.len())?;
        let n = input.len() / elem_size;
        let unchanged = |i: usize| same(input, &decoded, i);
        if (0..n).all(unchanged) {
            return Some(Successor::Unchanged(stored));
        }
        if few_values(input, elem_size) {
            return None;
        }
        // What the probes found, confirmed over the whole chunk: values the codec changed
        // that the buffer holds as decoded.
        let changed_by_codec = (0..n).filter(|&i| {
            !same(&original, &decoded, i) && !is_zero(element(&decoded, i, elem_size))
        });
        let as_decoded = changed_by_codec.clone().filter(|&i| unchanged(i)).count();
        if as_decoded < changed_by_codec.count().min(MATCHING_VALUES) {
            return None;
        }
        let mut restored = input.to_vec();
        for i in (0..n).filter(|&i| unchanged(i)) {
            restored[i * elem_size..(i + 1) * elem_size]
                .copy_from_slice(element(&original, i, elem_size));
        }
        // The stored chunk these came from is being replaced (in this dataset only).
        self.lock().retain_key(key, |k| k.dataset != dataset);
        Some(Successor::Restored(restored))
    }
}

/// Whether the nonzero values of `bytes` take at most two values: such a buffer (a
/// constant, beside a fill value or not) tells no decode from another, being at every
/// place a value the codec repeats over a region (faint values it collapsed to one) of any
/// decode that holds it there. A constant chunk of 3.0 was taken for a decode of a
/// lognormal field in a dataset set up alike whose faint half the codec had collapsed to
/// 3.0, and got that field's faint values back instead of its own. A successor whose new
/// part is itself a constant (a tile of land written as one value beside a tile the codec
/// collapsed) loses its originals with it, and goes through the codec twice.
fn few_values(bytes: &[u8], size: usize) -> bool {
    let mut seen: Vec<&[u8]> = Vec::with_capacity(3);
    for v in bytes.chunks_exact(size).filter(|v| !is_zero(v)) {
        if !seen.contains(&v) {
            seen.push(v);
            if seen.len() > 2 {
                return false;
            }
        }
    }
    true
}

/// The `i`-th value of `size` bytes in `bytes`.
fn element(bytes: &[u8], i: usize, size: usize) -> &[u8] {
    &bytes[i * size..(i + 1) * size]
}

/// Indices of up to [`PROBES`] values where `original` and `decoded` differ (spread over
/// the chunk), or `None` when some value differs by more than the chunk's bound (or the
/// two do not hold the same values of a float type).
fn changed_within_bound(original: &[u8], decoded: &[u8], header: &Header) -> Option<Vec<usize>> {
    let elem_size = header.layout.elem_size;
    if original.len() != decoded.len() || elem_size == 0 {
        return None;
    }
    let value = |bytes: &[u8], i: usize| -> f64 {
        let b = &bytes[i * elem_size..(i + 1) * elem_size];
        match (header.layout.dtype, header.big_endian) {
            (DType::F32, false) => f32::from_le_bytes(b.try_into().unwrap()) as f64,
            (DType::F32, true) => f32::from_be_bytes(b.try_into().unwrap()) as f64,
            (DType::F64, false) => f64::from_le_bytes(b.try_into().unwrap()),
            (DType::F64, true) => f64::from_be_bytes(b.try_into().unwrap()),
            _ => f64::NAN,
        }
    };
    if !matches!(header.layout.dtype, DType::F32 | DType::F64) {
        return None;
    }
    // The header's f32 bound is at or above the codec's; the decode may also round to
    // the nearest value of its type.
    let epsilon = match header.layout.dtype {
        DType::F32 => f32::EPSILON as f64,
        _ => f64::EPSILON,
    };
    let n = original.len() / elem_size;
    // A stream coded to a size (bound 0) keeps no point-wise bound: its decode lies within
    // the original's range of it, and the probes identify it ([`Rewrites::restore`]).
    let bound = match header.bound > 0.0 {
        true => header.bound,
        false => {
            let (lo, hi) = (0..n)
                .map(|i| value(original, i))
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            (hi - lo).max(0.0)
        }
    };
    let mut changed = Vec::new();
    for i in 0..n {
        let (o, d) = (value(original, i), value(decoded, i));
        // Missing values come back bit for bit, but for NaNs, which come back as the
        // chunk's first NaN (`encode::missing_marker`).
        if o.to_bits() == d.to_bits() || o.is_nan() && d.is_nan() {
            continue;
        }
        // A NaN where the decode has a number (or the reverse) fails this too.
        let within = (o - d).abs() <= bound * (1.0 + 1e-6) + o.abs() * epsilon;
        if !within {
            return None;
        }
        // Decoded zeros identify nothing (`MATCHING_PROBES`).
        if d != 0.0 {
            changed.push(i);
        }
    }
    let step = changed.len().div_ceil(PROBES).max(1);
    Some(changed.into_iter().step_by(step).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk;
    use crate::encode;
    use crate::select::Analytic;
    use crate::settings::Settings;

    /// The stored cd_values the tests' chunks belong to.
    const DATASET: &[u32] = &[1, 2, 3];

    /// The restored buffer, if that is what was found.
    fn restored_buffer(found: Successor) -> Option<Vec<u8>> {
        match found {
            Successor::Restored(buffer) => Some(buffer),
            Successor::Unchanged(_) => None,
        }
    }

    fn decode(stored: &[u8]) -> Option<Vec<u8>> {
        Some(chunk::decode(stored).ok()?.1.into_bytes())
    }

    /// A chunk of `shape` whose last `fill_planes` planes hold 0 (a chunk being filled;
    /// all of them: an exact chunk), lossy otherwise: its bytes and its stored bytes.
    fn filling_chunk(shape: &[usize], fill_planes: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
        let mut values: Vec<f32> =
            crate::synth::generate(crate::synth::Kind::Spectral { slope: 3.0 }, shape, seed)
                .into_iter()
                .map(|x| x as f32 + 10.0)
                .collect();
        let plane = values.len() / shape[0];
        let len = values.len();
        values[len - fill_planes * plane..].fill(0.0);
        let settings = Settings::psnr(50.0).unwrap();
        let (stored, _) = encode::float_chunk(&values, shape, &settings, &Analytic).unwrap();
        (bytemuck::cast_slice(&values).to_vec(), stored)
    }

    #[test]
    fn a_chunk_read_but_not_written_is_stored_again_for_its_exact_decode_only() {
        let shape = [4, 16, 16];
        let (_, stored) = filling_chunk(&shape, 0, 31);
        let header = chunk::parse(&stored).unwrap().0;
        let decoded = decode(&stored).unwrap();
        let rewrites = Rewrites::new(1 << 24);
        // Nothing read yet.
        assert!(rewrites.read_unchanged(DATASET, &decoded, decode).is_none());
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let again = rewrites.read_unchanged(DATASET, &decoded, decode);
        assert_eq!(again.as_deref(), Some(&stored));
        // Another dataset's settings, one value changed, or a chunk that does not decode
        // to the buffer although its fingerprint says so: compressed as any buffer.
        assert!(rewrites.read_unchanged(&[9], &decoded, decode).is_none());
        let mut edited = decoded.clone();
        edited[8] ^= 1;
        assert!(rewrites.read_unchanged(DATASET, &edited, decode).is_none());
        let other = |_: &[u8]| Some(edited.clone());
        assert!(rewrites.read_unchanged(DATASET, &decoded, other).is_none());
        // A decode without its dataset, or with nothing kept, is not noted.
        let unknown = Rewrites::new(1 << 24);
        unknown.decoded(None, &stored, &header, &decoded);
        assert!(unknown.read_unchanged(DATASET, &decoded, decode).is_none());
        let none = Rewrites::new(0);
        none.decoded(Some(DATASET), &stored, &header, &decoded);
        assert!(none.read_unchanged(DATASET, &decoded, decode).is_none());
        // Chunks read are bounded by their share of the limit, oldest out.
        let share =
            Rewrites::new(READ_SHARE * 2 * ReadStore::cost(stored.len() + 8, DATASET.len()));
        let mut reads = Vec::new();
        for seed in 40..44 {
            let (_, chunk) = filling_chunk(&shape, 0, seed);
            let values = decode(&chunk).unwrap();
            share.decoded(
                Some(DATASET),
                &chunk,
                &chunk::parse(&chunk).unwrap().0,
                &values,
            );
            reads.push((chunk, values));
        }
        let found = |(chunk, values): &(Vec<u8>, Vec<u8>)| {
            share.read_unchanged(DATASET, values, decode).as_deref() == Some(chunk)
        };
        assert!(!found(&reads[0]) && found(&reads[3]));
        let held = || {
            let store = share.read.lock().unwrap();
            let indexed: usize = store.by_decode.values().map(Vec::len).sum();
            assert_eq!(indexed, store.order.len());
            store.order.len()
        };
        let before = held();
        assert!((1..=2).contains(&before));
        // A chunk read again (a small chunk cache) is one entry, not two.
        let (chunk, values) = &reads[3];
        share.decoded(
            Some(DATASET),
            chunk,
            &chunk::parse(chunk).unwrap().0,
            values,
        );
        assert_eq!(held(), before);
        assert!(found(&reads[3]));
    }

    #[test]
    fn a_decode_gets_its_originals_back_around_the_writers_new_part() {
        let rewrites = Rewrites::new(1 << 24);
        let shape = [4, 16, 16];
        let (original, stored) = filling_chunk(&shape, 2, 3);
        let header = chunk::parse(&stored).unwrap().0;
        rewrites.written(DATASET, &stored, &header, &original);
        let decoded = chunk::decode(&stored).unwrap().1.into_bytes();
        assert_ne!(decoded, original, "the chunk is lossy");
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        // Unrelated values of the same size: not a successor.
        let (other, _) = filling_chunk(&shape, 2, 4);
        assert!(rewrites.restore(DATASET, &other, 4, decode).is_none());
        // The next plane written: the planes before are the originals again, the new one
        // as written, the rest still the fill.
        let mut next = decoded.clone();
        let plane = 16 * 16 * 4;
        next[2 * plane..3 * plane].copy_from_slice(&[0x41; 16 * 16 * 4]);
        let restored = rewrites
            .restore(DATASET, &next, 4, decode)
            .and_then(restored_buffer)
            .expect("a successor");
        assert_eq!(restored[..2 * plane], original[..2 * plane]);
        assert_eq!(restored[2 * plane..3 * plane], next[2 * plane..3 * plane]);
        assert_eq!(restored[3 * plane..], original[3 * plane..]);
        // Used once: the stored chunk it came from is replaced.
        assert!(rewrites.restore(DATASET, &next, 4, decode).is_none());
    }

    /// A restart that writes all but the first of a chunk's 16 steps in one write: the
    /// step left as decoded still gets its originals back (it went through the codec twice
    /// when an eighth of the probes had to survive: 39.6 dB at a 40 dB target).
    #[test]
    fn a_sixteenth_left_as_decoded_gets_its_originals_back() {
        let rewrites = Rewrites::new(1 << 24);
        let shape = [16, 16, 16];
        let (original, stored) = filling_chunk(&shape, 0, 9);
        let header = chunk::parse(&stored).unwrap().0;
        rewrites.written(DATASET, &stored, &header, &original);
        let decoded = decode(&stored).unwrap();
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let plane = 16 * 16 * 4;
        let (rewritten, _) = filling_chunk(&shape, 0, 10);
        let mut next = decoded.clone();
        next[plane..].copy_from_slice(&rewritten[plane..]);
        let restored = rewrites
            .restore(DATASET, &next, 4, decode)
            .and_then(restored_buffer)
            .expect("a successor");
        assert_eq!(restored[..plane], original[..plane]);
        assert_eq!(restored[plane..], rewritten[plane..]);
    }

    /// A sparse field whose small values the codec decoded to zero: another chunk holding
    /// zeros at those places is not taken for it (it would get those small values).
    #[test]
    fn decoded_zeros_do_not_identify_a_chunk() {
        let shape = [4, 16, 16];
        let (original, stored) = filling_chunk(&shape, 0, 11);
        let header = chunk::parse(&stored).unwrap().0;
        let floats = |b: &[u8]| bytemuck::cast_slice::<u8, f32>(b).to_vec();
        let bytes = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
        // Half the chunk drizzle the codec zeroed, within its bound.
        let half = 512;
        let mut values = floats(&original);
        values[..half].fill(0.5 * header.bound as f32);
        let mut decoded = floats(&decode(&stored).unwrap());
        decoded[..half].fill(0.0);
        let (original, decoded) = (bytes(&values), bytes(&decoded));
        let rewrites = Rewrites::new(1 << 24);
        rewrites.written(DATASET, &stored, &header, &original);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        // Another chunk: zeros where the drizzle was, other values elsewhere.
        let mut other = floats(&filling_chunk(&shape, 0, 12).0);
        other[..half].fill(0.0);
        let from = |_: &[u8]| Some(decoded.clone());
        assert!(rewrites.restore(DATASET, &bytes(&other), 4, from).is_none());
        // The chunk's own decode with a value changed still is its successor.
        let mut edited = decoded.clone();
        edited[4 * 600..4 * 601].copy_from_slice(&7.0f32.to_le_bytes());
        let restored = rewrites
            .restore(DATASET, &edited, 4, from)
            .and_then(restored_buffer);
        assert_eq!(
            restored.expect("a successor")[4 * 601..],
            original[4 * 601..]
        );
    }

    /// A field whose small values a coarse bound collapsed to one value (a lognormal
    /// field's faint half decoded to 3.0 at 80 dB, its bound near 30): a constant chunk of
    /// that value in a dataset set up alike holds it at every place the codec made it up,
    /// and is not taken for the decode (it got the field's faint values instead of 3.0, a
    /// chunk of range 0 read back as another dataset's values).
    #[test]
    fn a_value_repeated_by_the_codec_does_not_identify_a_chunk() {
        let shape = [4, 16, 16];
        let (original, stored) = filling_chunk(&shape, 0, 13);
        let header = chunk::parse(&stored).unwrap().0;
        let floats = |b: &[u8]| bytemuck::cast_slice::<u8, f32>(b).to_vec();
        let bytes = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
        let half = 512;
        let collapsed = 0.5 * header.bound as f32;
        let mut values = floats(&original);
        (0..half).for_each(|i| values[i] = collapsed * (i % 7) as f32 / 7.0);
        let mut decoded = floats(&decode(&stored).unwrap());
        decoded[..half].fill(collapsed);
        let (original, decoded) = (bytes(&values), bytes(&decoded));
        let rewrites = Rewrites::new(1 << 24);
        rewrites.written(DATASET, &stored, &header, &original);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let from = |_: &[u8]| Some(decoded.clone());
        let mut constant = vec![collapsed; values.len()];
        assert!(rewrites
            .restore(DATASET, &bytes(&constant), 4, from)
            .is_none());
        // Nor with fill values beside it, zeros (an edge chunk) or another value.
        constant[1000..].fill(0.0);
        assert!(rewrites
            .restore(DATASET, &bytes(&constant), 4, from)
            .is_none());
        constant[1000..].fill(-999.0);
        assert!(rewrites
            .restore(DATASET, &bytes(&constant), 4, from)
            .is_none());
        // The collapsed half written over with new values: the rest, made up by the codec
        // value by value, still identifies the decode.
        let mut next = floats(&decoded);
        next[..half].fill(1.5);
        let restored = rewrites
            .restore(DATASET, &bytes(&next), 4, from)
            .and_then(restored_buffer)
            .expect("a successor");
        assert_eq!(restored[4 * half..], original[4 * half..]);
        assert_eq!(floats(&restored)[..half], next[..half]);
    }

    /// A chunk written in tiles, its first tile among fill values: the bound the fill sets
    /// collapses the tile to one value, which is then all the codec changed, and the next
    /// tile written into the fill still gets the first one's originals back.
    #[test]
    fn a_tile_the_codec_collapsed_to_one_value_gets_its_originals_back() {
        let shape = [4, 16, 16];
        let (_, stored) = filling_chunk(&shape, 0, 14);
        let header = chunk::parse(&stored).unwrap().0;
        let bytes = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
        let tile = 256;
        let level = 1000.0f32;
        let step = 0.5 * header.bound as f32;
        let mut values = vec![0.0f32; 1024];
        (0..tile).for_each(|i| values[i] = level + step * (i % 5) as f32 / 5.0);
        let mut decoded = vec![0.0f32; 1024];
        decoded[..tile].fill(level);
        let (original, decoded) = (bytes(&values), bytes(&decoded));
        let rewrites = Rewrites::new(1 << 24);
        rewrites.written(DATASET, &stored, &header, &original);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let from = |_: &[u8]| Some(decoded.clone());
        let mut next = bytemuck::cast_slice::<u8, f32>(&decoded).to_vec();
        (tile..2 * tile).for_each(|i| next[i] = 7.0 + i as f32 / 64.0);
        let restored = rewrites
            .restore(DATASET, &bytes(&next), 4, from)
            .and_then(restored_buffer)
            .expect("a successor");
        assert_eq!(restored[..4 * tile], original[..4 * tile]);
        assert_eq!(restored[4 * tile..], bytes(&next)[4 * tile..]);
    }

    #[test]
    fn a_chunk_with_nans_of_other_bits_still_gets_its_originals_back() {
        // NaN marks itself and comes back as the chunk's first NaN: the others' payload
        // bits differ from the decode's, yet the decode is the chunk's own.
        let shape = [4, 16, 16];
        let (bytes, _) = filling_chunk(&shape, 0, 8);
        let mut values: Vec<f32> = bytemuck::cast_slice(&bytes).to_vec();
        for (k, i) in (0..values.len()).step_by(37).enumerate() {
            values[i] = f32::from_bits(0x7fc0_0000 | k as u32);
        }
        let original: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
        let settings = Settings::psnr(50.0).unwrap();
        let (stored, outcome) = encode::float_chunk(&values, &shape, &settings, &Analytic).unwrap();
        assert_ne!(outcome.codec, CodecId::Lossless, "{}", outcome.reason);
        let header = chunk::parse(&stored).unwrap().0;
        let rewrites = Rewrites::new(1 << 24);
        rewrites.written(DATASET, &stored, &header, &original);
        let decoded = decode(&stored).unwrap();
        assert_ne!(decoded, original);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let mut edited = decoded.clone();
        edited[4..8].copy_from_slice(&3.5f32.to_le_bytes());
        let restored = rewrites
            .restore(DATASET, &edited, 4, decode)
            .and_then(restored_buffer)
            .expect("a successor");
        assert_eq!(restored[4..8], 3.5f32.to_le_bytes());
        assert_eq!(restored[8..], original[8..]);
    }

    #[test]
    fn a_full_chunk_edited_inside_gets_its_originals_back_in_its_dataset_only() {
        let rewrites = Rewrites::new(1 << 24);
        let shape = [4, 16, 16];
        let (original, stored) = filling_chunk(&shape, 0, 7);
        let header = chunk::parse(&stored).unwrap().0;
        assert!(header.padding.is_none(), "a complete chunk");
        rewrites.written(DATASET, &stored, &header, &original);
        let decoded = chunk::decode(&stored).unwrap().1.into_bytes();
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        // A value changed where the chunk held data (a step written again), most of a
        // plane too: everything else is the original again.
        let mut edited = decoded.clone();
        edited[..4].copy_from_slice(&3.5f32.to_le_bytes());
        edited[4 * 200..4 * 256].copy_from_slice(&[0x41; 4 * 56]);
        // The same buffer for another dataset: not this chunk's successor.
        assert!(rewrites.restore(&[9, 9], &edited, 4, decode).is_none());
        let restored = rewrites
            .restore(DATASET, &edited, 4, decode)
            .and_then(restored_buffer)
            .expect("a successor");
        assert_eq!(restored[..4], 3.5f32.to_le_bytes());
        assert_eq!(restored[4..4 * 200], original[4..4 * 200]);
        assert_eq!(restored[4 * 200..4 * 256], edited[4 * 200..4 * 256]);
        assert_eq!(restored[4 * 256..], original[4 * 256..]);
        // The decode written back unchanged (a copy of what was read) is the stored chunk
        // again, and stays kept.
        rewrites.written(DATASET, &stored, &header, &original);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let again = rewrites.restore(DATASET, &decoded, 4, decode);
        assert_eq!(again, Some(Successor::Unchanged(Arc::new(stored.clone()))));
        assert!(rewrites.restore(DATASET, &edited, 4, decode).is_some());
        // The same stored bytes written from other originals (within the bound of the
        // decode too): which originals a decode comes from is unknown, so none go back.
        rewrites.written(DATASET, &stored, &header, &original);
        let mut other = original.clone();
        let at = (1..256).find(|i| decoded[4 * i..4 * i + 4] != original[4 * i..4 * i + 4]);
        let at = 4 * at.expect("a lossy value");
        other[at..at + 4].copy_from_slice(&decoded[at..at + 4]);
        rewrites.written(DATASET, &stored, &header, &other);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        assert!(rewrites.restore(DATASET, &edited, 4, decode).is_none());
        // The same originals again: kept once, and put back.
        rewrites.written(DATASET, &stored, &header, &original);
        rewrites.written(DATASET, &stored, &header, &original);
        assert_eq!(rewrites.lock().len(), 1);
        // Another dataset's chunk of the same bytes from other originals leaves this one's.
        rewrites.written(&[9, 9], &stored, &header, &other);
        assert_eq!(rewrites.lock().len(), 2);
        assert!(rewrites.lock().consistent());
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        let found = rewrites.restore(DATASET, &edited, 4, decode);
        let restored = found.and_then(restored_buffer).unwrap();
        assert_eq!(restored[4..4 * 200], original[4..4 * 200]);
        // The other dataset's, noted by the same decode, is its own and stays kept.
        let theirs = rewrites.restore(&[9, 9], &edited, 4, decode);
        let theirs = theirs.and_then(restored_buffer).unwrap();
        assert_eq!(theirs[4..4 * 200], other[4..4 * 200]);
        assert!(rewrites.lock().consistent());
    }

    #[test]
    fn originals_that_do_not_match_the_decode_are_dropped_and_memory_is_bounded() {
        let shape = [4, 16, 16];
        let (original, stored) = filling_chunk(&shape, 1, 5);
        let header = chunk::parse(&stored).unwrap().0;
        let decoded = chunk::decode(&stored).unwrap().1.into_bytes();
        let mut next = decoded.clone();
        let last = next.len() - 4;
        next[last..].copy_from_slice(&1.0f32.to_le_bytes());
        // Originals far from what the chunk decodes to (not what it was written from).
        let rewrites = Rewrites::new(1 << 24);
        let mut wrong = original.clone();
        wrong[..4].copy_from_slice(&1e6f32.to_le_bytes());
        rewrites.written(DATASET, &stored, &header, &wrong);
        rewrites.decoded(Some(DATASET), &stored, &header, &decoded);
        assert!(rewrites.restore(DATASET, &next, 4, decode).is_none());
        // A limit below one chunk keeps nothing.
        let small = Rewrites::new(original.len() - 1);
        small.written(DATASET, &stored, &header, &original);
        assert!(
            OVER_LIMIT_SAID.load(Ordering::Relaxed),
            "said once per process"
        );
        small.decoded(Some(DATASET), &stored, &header, &decoded);
        assert!(small.restore(DATASET, &next, 4, decode).is_none());
        // A limit of about two chunks keeps the newest, and counts them right.
        let two = Rewrites::new(2 * (stored.len() + original.len() + 256) + 64);
        let mut newest = None;
        for seed in 20..25 {
            let (values, chunk) = filling_chunk(&shape, 1, seed);
            two.written(DATASET, &chunk, &chunk::parse(&chunk).unwrap().0, &values);
            newest = Some(key_of(&chunk));
        }
        let kept = two.lock();
        assert!((1..=2).contains(&kept.len()) && kept.consistent());
        assert_eq!(kept.entries.back().map(|k| k.key), newest);
        drop(kept);
        // Exact chunks are not kept: nothing to put back.
        let exact = Rewrites::new(1 << 24);
        let (zeros, zeros_stored) = filling_chunk(&shape, 4, 6);
        let zeros_header = chunk::parse(&zeros_stored).unwrap().0;
        assert_eq!(zeros_header.codec, CodecId::Lossless);
        exact.written(DATASET, &zeros_stored, &zeros_header, &zeros);
        assert_eq!(exact.lock().len(), 0);
    }
}
