//! The sled store's index in tiers, so that opening it costs the same at any log size.
//!
//! sled's open reads its whole page table, a time that grows with the index (0.32 to 0.40 s at
//! 5.15M entries, README). So the index is not one sled but several, each named by the first
//! seq it indexes: `index` (from 0), `index.<first>`. The newest is the **live** tier: it takes
//! every commit and is opened before the store serves. Each older one is **sealed**: it indexes
//! the entries `first..end` (`end` the next tier's first) and the checkpoints of tree sizes
//! `first+1..=end`, is never written again, and opens on a background thread once the store
//! serves. A sealed tier carries a filter of the ids and streams it holds (`zachetka-filter` in
//! its directory), read with the live tier, so that a lookup waits for a sealed tier still
//! opening only when the key may be there: an event retried, a stream not written since its
//! tier was sealed.
//!
//! A tier is sealed at a batch boundary once the live tier holds [`TIER_ENTRIES`] entries: the
//! live tier is flushed (its mark at the head), and only then is the next tier's directory
//! made. A crash before that leaves the old live tier live; after it, the new tier is live with
//! no mark, and the open brings it up from its first seq. Everything here is derived from the
//! log: a tier that cannot be read is rebuilt from the entries of its range, a filter that is
//! missing, damaged or of another range is rebuilt from its tier.

use super::StoreError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The live tier is sealed once it indexes this many entries: an index of ~1M entries opens in
/// ~0.07 s (README, Figures).
pub const TIER_ENTRIES: u64 = 1 << 20;

/// The filter's file in a sealed tier's directory.
const FILTER_FILE: &str = "zachetka-filter";
const FILTER_MAGIC: &[u8; 8] = b"ZFILTER1";
/// Bits per key and probes: a false positive in ~1% of lookups.
const FILTER_BITS_PER_KEY: u64 = 10;
const FILTER_PROBES: u32 = 7;

/// The directory of the tier whose first seq is `first`.
pub(crate) fn tier_path(dir: &Path, first: u64) -> PathBuf {
    match first {
        0 => dir.join("index"),
        n => dir.join(format!("index.{n}")),
    }
}

/// The first seqs of the tiers in `dir`, ascending; the tier from 0 is always one (an empty
/// store has only it). Directories set aside (`index.replaced-...`) are not tiers.
pub(crate) fn list_tiers(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut firsts = vec![0];
    let list = std::fs::read_dir(dir).map_err(|e| super::sled::fio(&format!("list {}", dir.display()), e))?;
    for e in list {
        let e = e.map_err(|e| super::sled::fio(&format!("list {}", dir.display()), e))?;
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|n| n.strip_prefix("index.")) else { continue };
        if n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0') && e.path().is_dir() {
            if let Ok(first) = n.parse::<u64>() {
                firsts.push(first);
            }
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Where a key's filter probes start: two 64-bit hashes from its SHA-256 (a hash that stays the
/// same across builds, since filters are kept on disk).
#[derive(Clone, Copy)]
pub(crate) struct Probe(u64, u64);

impl Probe {
    pub(crate) fn of(key: &[u8]) -> Self {
        let d = Sha256::digest(key);
        let u = |at: usize| u64::from_be_bytes(d[at..at + 8].try_into().expect("8 bytes"));
        Probe(u(0), u(8) | 1)
    }
}

/// A Bloom filter of the keys (`i` id, `s` stream) a sealed tier holds, for its range.
#[derive(Debug)]
pub(crate) struct Filter {
    first: u64,
    end: u64,
    words: Vec<u64>,
}

impl Filter {
    fn build(first: u64, end: u64, probes: &[Probe]) -> Self {
        let bits = (probes.len() as u64 * FILTER_BITS_PER_KEY).max(64);
        let mut f = Self { first, end, words: vec![0; bits.div_ceil(64) as usize] };
        for p in probes {
            f.each_bit(*p, |words, w, b| words[w] |= b);
        }
        f
    }

    fn each_bit(&mut self, Probe(h1, h2): Probe, mut at: impl FnMut(&mut [u64], usize, u64)) {
        let bits = self.words.len() as u64 * 64;
        for i in 0..FILTER_PROBES as u64 {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            at(&mut self.words, (bit / 64) as usize, 1 << (bit % 64));
        }
    }

    /// False only if the key is certainly not in the tier.
    pub(crate) fn may_hold(&self, Probe(h1, h2): Probe) -> bool {
        let bits = self.words.len() as u64 * 64;
        (0..FILTER_PROBES as u64).all(|i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }

    /// magic, first, end, probes (u32), word count (u64), the words, then the first 16 bytes of
    /// SHA-256 of all before: big-endian.
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(36 + self.words.len() * 8 + 16);
        b.extend_from_slice(FILTER_MAGIC);
        b.extend_from_slice(&self.first.to_be_bytes());
        b.extend_from_slice(&self.end.to_be_bytes());
        b.extend_from_slice(&FILTER_PROBES.to_be_bytes());
        b.extend_from_slice(&(self.words.len() as u64).to_be_bytes());
        for w in &self.words {
            b.extend_from_slice(&w.to_be_bytes());
        }
        let sum = Sha256::digest(&b);
        b.extend_from_slice(&sum[..16]);
        b
    }

    fn decode(b: &[u8]) -> Result<Self, &'static str> {
        let body = b.len().checked_sub(16).map(|n| &b[..n]).ok_or("too short")?;
        if Sha256::digest(body)[..16] != b[body.len()..] {
            return Err("checksum differs");
        }
        if body.len() < 36 || &body[..8] != FILTER_MAGIC {
            return Err("not a filter of this format");
        }
        let u = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let probes = u32::from_be_bytes(body[24..28].try_into().expect("4 bytes"));
        let n = u(28);
        if probes != FILTER_PROBES || n == 0 || Some(body.len() as u64) != n.checked_mul(8).map(|l| l + 36) {
            return Err("its parameters or length differ");
        }
        let words = body[36..].chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes"))).collect();
        Ok(Self { first: u(8), end: u(16), words })
    }

    /// The filter kept in the tier's directory, if it is whole and of that tier's range.
    fn read(path: &Path, first: u64, end: u64) -> Option<Self> {
        let bytes = match std::fs::read(path.join(FILTER_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(tier = %path.display(), error = %e, "the tier's filter cannot be read; rebuilding it");
                return None;
            }
        };
        match Self::decode(&bytes) {
            Ok(f) if (f.first, f.end) == (first, end) => Some(f),
            Ok(f) => {
                tracing::warn!(tier = %path.display(), range = ?(f.first, f.end), "the tier's filter is of another range; rebuilding it");
                None
            }
            Err(why) => {
                tracing::warn!(tier = %path.display(), why, "the tier's filter is damaged; rebuilding it");
                None
            }
        }
    }

    /// Writes the filter into the tier's directory: a temporary file, synced, then renamed.
    fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.join(format!("{FILTER_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path.join(FILTER_FILE))?;
        std::fs::File::open(path)?.sync_all()
    }
}

/// Why a sealed tier cannot be used, kept for every later use (as the live tier's).
pub(crate) type TierResult<T> = Result<T, super::sled::IndexFailure>;

/// A sealed tier: its range, its sled (opened once, by the background opener or by the first
/// lookup that needs it), whether its mark was checked (and the tier brought up to its end),
/// and its filter.
pub(crate) struct Sealed {
    pub(crate) first: u64,
    pub(crate) end: u64,
    pub(crate) path: PathBuf,
    pub(crate) db: OnceLock<TierResult<sled::Db>>,
    pub(crate) checked: OnceLock<TierResult<()>>,
    pub(crate) filter: OnceLock<Filter>,
}

impl Sealed {
    /// A tier on disk, not open yet; its filter read if it has a good one.
    pub(crate) fn on_disk(dir: &Path, first: u64, end: u64) -> Self {
        let path = tier_path(dir, first);
        let filter = OnceLock::new();
        if let Some(f) = Filter::read(&path, first, end) {
            filter.set(f).expect("new");
        }
        Self { first, end, path, db: OnceLock::new(), checked: OnceLock::new(), filter }
    }

    /// The live tier just sealed: open, whole up to its end, its filter still to build.
    pub(crate) fn just_sealed(path: PathBuf, first: u64, end: u64, db: sled::Db) -> Self {
        Self { first, end, path, db: OnceLock::from(Ok(db)), checked: OnceLock::from(Ok(())), filter: OnceLock::new() }
    }

    /// False only if the key is certainly not here (no filter yet: it may be).
    pub(crate) fn may_hold(&self, p: Probe) -> bool {
        self.filter.get().is_none_or(|f| f.may_hold(p))
    }

    /// Builds the filter from the tier's keys, if it has none and its mark says it is whole
    /// (its `tree_size` at least the tier's end: a tier an older build caught up further holds
    /// more keys, which only adds false positives), and keeps it on disk. Stops early when
    /// `stop` is set.
    pub(crate) fn build_filter(&self, db: &sled::Db, mark_size: Option<u64>, stop: &AtomicBool) {
        if self.filter.get().is_some() || mark_size.is_none_or(|m| m < self.end) {
            return;
        }
        let started = std::time::Instant::now();
        let mut probes = Vec::with_capacity((self.end - self.first) as usize * 5 / 4);
        for kv in db.scan_prefix(b"i") {
            if probes.len() % 65_536 == 0 && stop.load(Ordering::Relaxed) {
                return;
            }
            match kv {
                Ok((k, _)) => probes.push(Probe::of(&k)),
                Err(e) => {
                    return tracing::warn!(tier = %self.path.display(), error = %e, "couldn't read the tier for its filter")
                }
            }
        }
        // Stream keys are `s` stream 0x00 version: one probe per stream, from `s` stream.
        let mut last: Option<sled::IVec> = None;
        for kv in db.scan_prefix(b"s") {
            if probes.len() % 65_536 == 0 && stop.load(Ordering::Relaxed) {
                return;
            }
            let k = match kv {
                Ok((k, _)) => k,
                Err(e) => {
                    return tracing::warn!(tier = %self.path.display(), error = %e, "couldn't read the tier for its filter")
                }
            };
            let Some(stream) = k.len().checked_sub(9).map(|n| &k[..n]) else { continue };
            if last.as_deref() != Some(stream) {
                probes.push(Probe::of(stream));
                last = Some(stream.into());
            }
        }
        let filter = Filter::build(self.first, self.end, &probes);
        if let Err(e) = filter.write(&self.path) {
            tracing::warn!(tier = %self.path.display(), error = %e, "couldn't keep the tier's filter; the next open rebuilds it");
        }
        tracing::info!(
            tier = %self.path.display(),
            keys = probes.len(),
            seconds = started.elapsed().as_secs_f64(),
            "built the sealed index tier's filter"
        );
        let _ = self.filter.set(filter);
    }
}

/// The index as the store uses it: the live tier and the sealed ones, oldest first. Replaced
/// whole when the live tier is sealed, so a reader keeps the one it took.
pub(crate) struct Layers {
    pub(crate) live: sled::Db,
    pub(crate) live_first: u64,
    pub(crate) sealed: Vec<Arc<Sealed>>,
}

/// The background work on sealed tiers: open them (newest first) and build the filters they
/// lack. Joined when the store closes; `stop` cuts a long filter build short.
pub(crate) struct Warmer {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) threads: Vec<std::thread::JoinHandle<()>>,
}

impl Warmer {
    pub(crate) fn new() -> Self {
        Self { stop: Arc::new(AtomicBool::new(false)), threads: Vec::new() }
    }

    /// Opens `tiers` (newest first) on a thread of their own and builds any filter missing.
    pub(crate) fn warm(&mut self, tiers: Vec<Arc<Sealed>>) {
        if tiers.is_empty() {
            return;
        }
        self.threads.retain(|t| !t.is_finished());
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new().name("zachetka-index-tiers".into()).spawn(move || {
            for t in tiers.iter().rev() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(db) = t.db.get_or_init(|| super::sled::open_tier(&t.path)) else { continue };
                let mark = super::sled::mark_size(db);
                t.build_filter(db, mark, &stop);
            }
        });
        match thread {
            Ok(t) => self.threads.push(t),
            Err(e) => tracing::warn!(error = %e, "couldn't start the index tiers' opener; lookups open them"),
        }
    }

    pub(crate) fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            drop(t.join());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_holds_what_it_was_built_of_and_little_else() {
        let keys: Vec<Vec<u8>> = (0..10_000).map(|i| format!("i{i}").into_bytes()).collect();
        let probes: Vec<Probe> = keys.iter().map(|k| Probe::of(k)).collect();
        let f = Filter::build(5, 10_005, &probes);
        assert!(probes.iter().all(|p| f.may_hold(*p)));
        let false_positives = (0..10_000).filter(|i| f.may_hold(Probe::of(format!("x{i}").as_bytes()))).count();
        assert!(false_positives < 300, "{false_positives} of 10,000 (~1% expected)");
        let back = Filter::decode(&f.encode()).unwrap();
        assert_eq!((back.first, back.end, &back.words), (5, 10_005, &f.words));
    }

    #[test]
    fn a_damaged_or_misplaced_filter_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let f = Filter::build(0, 100, &[Probe::of(b"ia")]);
        f.write(dir.path()).unwrap();
        assert!(Filter::read(dir.path(), 0, 100).is_some());
        assert!(Filter::read(dir.path(), 0, 101).is_none(), "another range");
        let mut bytes = f.encode();
        for at in [0, 20, 40, bytes.len() - 1] {
            bytes[at] ^= 1;
            std::fs::write(dir.path().join(FILTER_FILE), &bytes).unwrap();
            assert!(Filter::read(dir.path(), 0, 100).is_none(), "a flipped bit at {at}");
            bytes[at] ^= 1;
        }
        std::fs::write(dir.path().join(FILTER_FILE), &bytes[..bytes.len() - 3]).unwrap();
        assert!(Filter::read(dir.path(), 0, 100).is_none(), "cut short");
    }

    #[test]
    fn tiers_are_named_by_their_first_seq_and_set_aside_ones_are_not_tiers() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["index.2048", "index.1024", "index.replaced-17", "index.0100", "index.1024.replaced-3"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("index.4096"), b"a file").unwrap();
        assert_eq!(list_tiers(dir.path()).unwrap(), vec![0, 1024, 2048]);
        assert_eq!(tier_path(dir.path(), 0), dir.path().join("index"));
        assert_eq!(tier_path(dir.path(), 1024), dir.path().join("index.1024"));
    }
}
