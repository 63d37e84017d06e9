//! The embedded default store, one directory: the log itself in append-only files, and sled for
//! what must be found by key. Not a cache and not an index of projections.
//!
//! - `entries.dat`: canonical entry bytes, concatenated in seq order;
//! - `offsets.dat`: where entry `seq` starts in `entries.dat` (big-endian u64 per entry);
//! - `hashes.dat`: the stored Merkle hashes, 32 bytes at `32 * stored_hash_index` (Go tlog
//!   layout), so proofs and tiles are positional reads;
//! - `journal.dat`: one checksummed record per batch committed since the index was last flushed:
//!   the batch's index writes, its head (tree size, root hash, bytes in `entries.dat`) and its
//!   checkpoint note. Emptied after each index flush;
//! - `index/` (sled, one tree, one-byte prefixes, big-endian numbers): `c` config, `H` head as of
//!   the last index flush, `k` tree size -> checkpoint note, `i` event id -> [`IdRecord`],
//!   `s` stream 0x00 version -> seq (a stream's head is its last key there).
//!
//! **Commit order** (the crash states are narrated in [`SledStore::commit`]): the log files,
//! fsynced; then the batch's journal record, fsynced: **the journal record is the commit point**.
//! The index is then updated in sled without a flush; sled is flushed (and the journal emptied)
//! only every [`JOURNAL_BYTES_FLUSH`] bytes of journal. On open, journal records beyond sled's
//! head are replayed into the index (writes are idempotent), a torn last record is dropped, and
//! log file bytes beyond the head are a torn tail, truncated and never served.
//!
//! Why not entries in sled too: a sled insert costs ~5-9 us and every one lands on the single
//! committer thread; the files cost ~1 us per entry (README, Decisions). Why not one atomic sled
//! batch per commit, flushed: it was the commit point before, and a batch applies its writes in
//! hash order, which also leaves the tree slow to read; sorted single inserts, unflushed, cost
//! about a third less per entry (two inserts and the sequencer's lookup: ~23 us -> ~16 us here),
//! and sled was ~20% of a demo run's CPU.

use super::{CommitBatch, IdRecord, LedgerConfig, RawEntry, Store, StoreError, StoreStats, StreamHead};
use crate::checkpoint::TreeHead;
use crate::merkle::{self, Hash};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// The journal is emptied (after a sled flush) once it holds this many bytes: ~50,000 entries,
/// which bounds what an open after a crash replays into the index (well under a second).
pub const JOURNAL_BYTES_FLUSH: u64 = 8 << 20;

/// The committed extent: what readers may see. Published only once a batch is durable and
/// indexed, so a reader never sees a position the index does not cover yet.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Extent {
    tree_size: u64,
    data_len: u64,
    root_hash: Hash,
}

impl Default for Extent {
    fn default() -> Self {
        Self { tree_size: 0, data_len: 0, root_hash: merkle::EMPTY_ROOT }
    }
}

pub struct SledStore {
    db: sled::Db,
    dir: PathBuf,
    entries: File,
    offsets: File,
    hashes: File,
    journal: File,
    committed: RwLock<Extent>,
    /// Buffers reused by every commit (entry bytes, offsets, hashes, journal record), and the
    /// journal's length: a batch is megabytes, and fresh buffers cost a page fault per 4 KiB.
    writer: Mutex<Writer>,
}

#[derive(Default)]
struct Writer {
    data: Vec<u8>,
    offsets: Vec<u8>,
    hashes: Vec<u8>,
    record: Vec<u8>,
    journal_len: u64,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn fio(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what}: {e}"))
}

fn key_u64(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

fn key_str(prefix: u8, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + s.len());
    k.push(prefix);
    k.extend_from_slice(s.as_bytes());
    k
}

fn key_stream_version(stream: &str, version: u64) -> Vec<u8> {
    let mut k = key_str(b's', stream);
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

const HEAD_LEN: usize = 48;

fn encode_head(h: &TreeHead, data_len: u64) -> [u8; HEAD_LEN] {
    let mut b = [0u8; HEAD_LEN];
    b[..8].copy_from_slice(&h.tree_size.to_be_bytes());
    b[8..40].copy_from_slice(&h.root_hash.0);
    b[40..].copy_from_slice(&data_len.to_be_bytes());
    b
}

fn decode_head(b: &[u8]) -> Result<(TreeHead, u64), StoreError> {
    if b.len() != HEAD_LEN {
        return Err(StoreError::Corrupt {
            what: "head",
            position: 0,
            detail: format!("{} bytes, want {HEAD_LEN}", b.len()),
        });
    }
    let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
    Ok((TreeHead { tree_size: u(0..8), root_hash: Hash(b[8..40].try_into().expect("32 bytes")) }, u(40..48)))
}

fn open_file(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| fio(&path.display().to_string(), e))
}

/// One sled write of the index: key and value.
type IndexWrite = (Vec<u8>, Vec<u8>);

/// A journal record: everything one batch adds to the index, with the head it commits.
///
/// Layout (big-endian): `len` u64 (bytes after it, checksum included), then the body: the
/// batch's first seq (u64), the head (48 bytes, as in `H`), the note's length (u32) and bytes,
/// the number of index writes (u32), each as key length (u32), key, value length (u32), value;
/// then the first 16 bytes of the body's SHA-256. A record that is short or whose checksum
/// differs is torn; one whose checksum holds but whose body does not parse is corrupt.
#[derive(Debug)]
struct JournalRecord {
    first_seq: u64,
    head: TreeHead,
    data_len: u64,
    note: Vec<u8>,
    writes: Vec<IndexWrite>,
}

const CHECKSUM_LEN: usize = 16;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(u32::try_from(b.len()).expect("index writes are small")).to_be_bytes());
    out.extend_from_slice(b);
}

/// Encodes a record into `out` (cleared first).
fn encode_record(out: &mut Vec<u8>, b: &CommitBatch, data_len: u64, writes: &[IndexWrite]) {
    out.clear();
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&b.first_seq.to_be_bytes());
    out.extend_from_slice(&encode_head(&b.head, data_len));
    put_bytes(out, &b.checkpoint);
    out.extend_from_slice(&(u32::try_from(writes.len()).expect("batches are bounded")).to_be_bytes());
    for (k, v) in writes {
        put_bytes(out, k);
        put_bytes(out, v);
    }
    let sum = Sha256::digest(&out[8..]);
    out.extend_from_slice(&sum[..CHECKSUM_LEN]);
    let len = (out.len() - 8) as u64;
    out[..8].copy_from_slice(&len.to_be_bytes());
}

/// Reads a journal record's body front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn take_u32(&mut self) -> Option<usize> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn take_bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.take_u32()?;
        Some(self.take(n)?.to_vec())
    }
}

/// Reads the body of a record whose checksum has been checked; `None` if it does not parse.
fn decode_body(body: &[u8]) -> Option<JournalRecord> {
    let mut c = Cursor(body);
    let first_seq = u64::from_be_bytes(c.take(8)?.try_into().ok()?);
    let (head, data_len) = decode_head(c.take(HEAD_LEN)?).ok()?;
    let note = c.take_bytes()?;
    let count = c.take_u32()?;
    let mut writes = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        writes.push((c.take_bytes()?, c.take_bytes()?));
    }
    c.0.is_empty().then_some(JournalRecord { first_seq, head, data_len, note, writes })
}

/// The records of a journal's bytes, in order, and where the whole ones end: the rest (a record
/// cut short by a crash, or garbage after it) is a torn tail. A record whose checksum holds but
/// whose body does not parse was written whole by a different encoder: an error, not a tear.
fn decode_journal(bytes: &[u8]) -> Result<(Vec<JournalRecord>, u64), StoreError> {
    let (mut records, mut at) = (Vec::new(), 0usize);
    while let Some(len) = bytes.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes"))) {
        let end = match usize::try_from(len).ok().and_then(|l| (at + 8).checked_add(l)) {
            Some(end) if end <= bytes.len() && len as usize >= CHECKSUM_LEN => end,
            _ => break,
        };
        let (body, sum) = bytes[at + 8..end].split_at(len as usize - CHECKSUM_LEN);
        if Sha256::digest(body)[..CHECKSUM_LEN] != *sum {
            break;
        }
        let record = decode_body(body).ok_or_else(|| StoreError::Corrupt {
            what: "journal record",
            position: at as u64,
            detail: "the checksum holds but the record does not parse".into(),
        })?;
        records.push(record);
        at = end;
    }
    Ok((records, at as u64))
}

/// Opens a sled database, waiting up to ~5 s for its file lock. sled releases the lock of a
/// dropped database from its I/O threads a moment after the drop, so a process that closes and
/// reopens a store (a restart in place, the tests) may find it still held; another process that
/// really holds it makes this fail after the wait, with sled's "could not acquire lock" error.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let mut wait = std::time::Duration::from_millis(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match config.open() {
            // sled reports the lock as ErrorKind::Other with this text (sled 0.34 config.rs).
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// The files of a store directory (for tests that play the attacker, and for operators).
#[derive(Debug, Clone)]
pub struct StorePaths {
    pub entries: PathBuf,
    pub offsets: PathBuf,
    pub hashes: PathBuf,
    pub journal: PathBuf,
    pub index: PathBuf,
}

impl StorePaths {
    pub fn of(dir: &Path) -> Self {
        Self {
            entries: dir.join("entries.dat"),
            offsets: dir.join("offsets.dat"),
            hashes: dir.join("hashes.dat"),
            journal: dir.join("journal.dat"),
            index: dir.join("index"),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir` and runs recovery (see [`SledStore::recover`]).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| fio(&dir.display().to_string(), e))?;
        let paths = StorePaths::of(dir);
        let config = sled::Config::new().path(&paths.index).cache_capacity(256 << 20).mode(sled::Mode::HighThroughput);
        let db = open_sled(&config).map_err(io)?;
        let store = Self {
            db,
            dir: dir.to_owned(),
            entries: open_file(&paths.entries)?,
            offsets: open_file(&paths.offsets)?,
            hashes: open_file(&paths.hashes)?,
            journal: open_file(&paths.journal)?,
            committed: RwLock::new(Extent::default()),
            writer: Default::default(),
        };
        store.recover()?;
        Ok(store)
    }

    /// The underlying sled index, for fault-injection tests.
    pub fn raw(&self) -> &sled::Db {
        &self.db
    }

    pub fn paths(&self) -> StorePaths {
        StorePaths::of(&self.dir)
    }

    /// Where entry `seq` lies in `entries.dat`: (offset, length).
    pub fn entry_span(&self, seq: u64) -> Result<(u64, u64), StoreError> {
        let ext = *self.committed.read().expect("extent lock");
        if seq >= ext.tree_size {
            return Err(StoreError::Corrupt { what: "entry", position: seq, detail: "beyond the head".into() });
        }
        let offs = self.read_offsets(seq, 1, ext)?;
        Ok((offs[0], offs[1] - offs[0]))
    }

    /// Makes the index durable up to the committed head and empties the journal. Runs on its
    /// own every [`JOURNAL_BYTES_FLUSH`] bytes of journal, and when the store is dropped.
    pub fn flush_index(&self) -> Result<(), StoreError> {
        let mut w = self.writer.lock().expect("one writer at a time");
        self.flush_index_locked(&mut w)
    }

    fn flush_index_locked(&self, w: &mut Writer) -> Result<(), StoreError> {
        let ext = *self.committed.read().expect("extent lock");
        let head = TreeHead { tree_size: ext.tree_size, root_hash: ext.root_hash };
        if ext.tree_size > 0 || w.journal_len > 0 {
            self.db.insert(b"H", &encode_head(&head, ext.data_len)[..]).map_err(io)?;
        }
        self.db.flush().map_err(io)?;
        // sled holds every index write up to the head, durably: the journal is no longer needed.
        // A crash before the truncation is durable replays records sled already holds.
        if w.journal_len > 0 {
            self.journal.set_len(0).map_err(|e| fio("journal.dat", e))?;
            // The next record goes at 0 even if the sync below fails (never after a hole).
            w.journal_len = 0;
            self.journal.sync_all().map_err(|e| fio("journal.dat", e))?;
        }
        Ok(())
    }

    /// Offsets of entries `from..from+n`, plus the end of the last one (n + 1 values).
    fn read_offsets(&self, from: u64, n: u64, ext: Extent) -> Result<Vec<u64>, StoreError> {
        let mut buf = vec![0u8; (n * 8) as usize];
        self.offsets.read_exact_at(&mut buf, from * 8).map_err(|e| fio("offsets.dat", e))?;
        let mut out: Vec<u64> =
            buf.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes"))).collect();
        out.push(if from + n == ext.tree_size {
            ext.data_len
        } else {
            let mut b = [0u8; 8];
            self.offsets.read_exact_at(&mut b, (from + n) * 8).map_err(|e| fio("offsets.dat", e))?;
            u64::from_be_bytes(b)
        });
        Ok(out)
    }

    /// Applies index writes to sled in key order (neighbouring keys land in the same leaves).
    fn apply_index(&self, writes: &mut [IndexWrite]) -> Result<(), StoreError> {
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in writes.iter() {
            self.db.insert(&k[..], &v[..]).map_err(io)?;
        }
        Ok(())
    }

    /// Replays the journal into the index: the head is sled's `H` (as of the last index flush),
    /// advanced by every whole journal record after it. A record cut short or failing its
    /// checksum was never committed: it and anything after it are dropped. Returns the head.
    fn replay_journal(&self) -> Result<(TreeHead, u64), StoreError> {
        let (mut head, mut data_len) = match self.db.get(b"H").map_err(io)? {
            Some(h) => decode_head(&h)?,
            None => (TreeHead { tree_size: 0, root_hash: merkle::EMPTY_ROOT }, 0),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &self.journal, &mut bytes).map_err(|e| fio("journal.dat", e))?;
        let (records, valid_len) = decode_journal(&bytes)?;
        if valid_len < bytes.len() as u64 {
            tracing::warn!(
                dropped_bytes = bytes.len() as u64 - valid_len,
                "dropping a torn journal record (a batch that never committed)"
            );
            self.journal.set_len(valid_len).map_err(|e| fio("journal.dat", e))?;
            self.journal.sync_all().map_err(|e| fio("journal.dat", e))?;
        }
        for mut r in records {
            // Records sled already holds (an index flush whose journal truncation did not land)
            // are skipped; a later one must start where the head ends.
            if r.head.tree_size <= head.tree_size {
                continue;
            }
            if r.first_seq != head.tree_size {
                return Err(StoreError::Corrupt {
                    what: "journal",
                    position: r.first_seq,
                    detail: format!("a record starts at {}, the index head is {}", r.first_seq, head.tree_size),
                });
            }
            r.writes.push((key_u64(b'k', r.head.tree_size).to_vec(), r.note));
            self.apply_index(&mut r.writes)?;
            (head, data_len) = (r.head, r.data_len);
        }
        self.writer.lock().expect("one writer at a time").journal_len = valid_len;
        Ok((head, data_len))
    }

    /// Recovery on open. The head is the last whole journal record, or sled's head if the
    /// journal is empty; the journal is replayed into the index first ([`Self::replay_journal`]).
    /// File bytes beyond what the head covers were written by a batch that never committed (a
    /// torn tail): they are truncated. Files shorter than the head says would mean acknowledged
    /// data is gone: an error. Then the head's last entry must hash to its stored leaf hash and
    /// the stored hashes must give the head's root; damage below the head is an error with its
    /// position, never served.
    fn recover(&self) -> Result<(), StoreError> {
        let (head, data_len) = self.replay_journal()?;
        let size = head.tree_size;
        let want = [
            (&self.entries, "entries.dat", data_len),
            (&self.offsets, "offsets.dat", size * 8),
            (&self.hashes, "hashes.dat", merkle::stored_hash_count(size) * 32),
        ];
        for (file, name, len) in want {
            let have = file.metadata().map_err(|e| fio(name, e))?.len();
            if have < len {
                return Err(StoreError::Corrupt {
                    what: "log file",
                    position: size,
                    detail: format!("{name} has {have} bytes, the head needs {len}"),
                });
            }
            if have > len {
                tracing::warn!(
                    file = name,
                    dropped_bytes = have - len,
                    tree_size = size,
                    "dropping a torn tail beyond the committed head"
                );
                file.set_len(len).map_err(|e| fio(name, e))?;
                file.sync_all().map_err(|e| fio(name, e))?;
            }
        }
        *self.committed.write().expect("extent lock") = Extent { tree_size: size, data_len, root_hash: head.root_hash };
        if size == 0 {
            return Ok(());
        }
        let last = self.raw_entries(size - 1, 1)?.pop().ok_or(StoreError::Corrupt {
            what: "log",
            position: size - 1,
            detail: "head's last entry is missing".into(),
        })?;
        if last.damaged.is_some() || merkle::leaf_hash(&last.bytes) != last.hashes[0] {
            return Err(StoreError::Corrupt {
                what: "entry",
                position: size - 1,
                detail: "leaf hash differs from the stored one".into(),
            });
        }
        let root = merkle::root(size, &super::StoreHashes(self)).map_err(|e| StoreError::Corrupt {
            what: "stored hashes",
            position: size,
            detail: e.to_string(),
        })?;
        if root != head.root_hash {
            return Err(StoreError::Corrupt {
                what: "tree head",
                position: size,
                detail: "root from stored hashes differs from the head".into(),
            });
        }
        Ok(())
    }
}

impl Drop for SledStore {
    /// A clean close leaves an empty journal, so the next open replays nothing. Best effort: a
    /// failure here leaves the journal, which the next open replays.
    fn drop(&mut self) {
        if let Err(e) = self.flush_index() {
            tracing::warn!(error = %e, "couldn't flush the index on close; the next open replays the journal");
        }
    }
}

impl Store for SledStore {
    fn config(&self) -> Result<Option<LedgerConfig>, StoreError> {
        match self.db.get(b"c").map_err(io)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| StoreError::Corrupt {
                what: "config",
                position: 0,
                detail: e.to_string(),
            }),
        }
    }

    fn init(&self, config: &LedgerConfig) -> Result<(), StoreError> {
        let v = serde_json::to_vec(config).expect("config serializes");
        self.db
            .compare_and_swap(b"c", None as Option<&[u8]>, Some(v))
            .map_err(io)?
            .map_err(|_| StoreError::AlreadyInitialized)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    fn head(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        let ext = *self.committed.read().expect("extent lock");
        let note = self.db.get(key_u64(b'k', ext.tree_size)).map_err(io)?;
        if ext.tree_size == 0 && note.is_none() {
            return Ok(None);
        }
        let note = note.ok_or(StoreError::Corrupt {
            what: "checkpoint",
            position: ext.tree_size,
            detail: "the head's checkpoint is missing".into(),
        })?;
        Ok(Some((TreeHead { tree_size: ext.tree_size, root_hash: ext.root_hash }, note.to_vec())))
    }

    fn commit(&self, b: &CommitBatch) -> Result<(), StoreError> {
        let ext = *self.committed.read().expect("extent lock");
        if b.first_seq != ext.tree_size {
            return Err(StoreError::NotContiguous { got: b.first_seq, want: ext.tree_size });
        }
        assert_eq!(b.head.tree_size, b.first_seq + b.entries.len() as u64, "batch head must cover exactly its entries");
        let mut w = self.writer.lock().expect("one committer at a time");
        let Writer { data, offsets, hashes, record, journal_len } = &mut *w;
        data.clear();
        offsets.clear();
        hashes.clear();
        let mut index: Vec<IndexWrite> = Vec::with_capacity(2 * b.entries.len() + 1);
        for (i, e) in b.entries.iter().enumerate() {
            let seq = b.first_seq + i as u64;
            assert!(!e.hashes.is_empty(), "every leaf stores at least its own hash");
            offsets.extend_from_slice(&(ext.data_len + data.len() as u64).to_be_bytes());
            data.extend_from_slice(&e.bytes);
            for h in &e.hashes {
                hashes.extend_from_slice(&h.0);
            }
            index.push((key_str(b'i', &e.id), e.id_record.encode().to_vec()));
            index.push((key_stream_version(&e.stream, e.id_record.stream_version), seq.to_be_bytes().to_vec()));
        }
        let hashes_at = merkle::stored_hash_count(b.first_seq) * 32;
        assert_eq!(
            hashes_at + hashes.len() as u64,
            merkle::stored_hash_count(b.head.tree_size) * 32,
            "batch must carry exactly its stored hashes"
        );
        let data_len = ext.data_len + data.len() as u64;
        encode_record(record, b, data_len, &index);
        // Nothing of the batch is written yet; a crash loses it, and it was never acknowledged.
        self.entries.write_all_at(data, ext.data_len).map_err(|e| fio("entries.dat", e))?;
        self.offsets.write_all_at(offsets, b.first_seq * 8).map_err(|e| fio("offsets.dat", e))?;
        self.hashes.write_all_at(hashes, hashes_at).map_err(|e| fio("hashes.dat", e))?;
        self.entries.sync_data().map_err(|e| fio("entries.dat", e))?;
        self.offsets.sync_data().map_err(|e| fio("offsets.dat", e))?;
        self.hashes.sync_data().map_err(|e| fio("hashes.dat", e))?;
        // The bytes are durable but beyond the head: a crash here leaves a torn tail that the
        // next open truncates. Still unacknowledged.
        self.journal.write_all_at(record, *journal_len).map_err(|e| fio("journal.dat", e))?;
        self.journal.sync_data().map_err(|e| fio("journal.dat", e))?;
        *journal_len += record.len() as u64;
        // Committed: a crash from here on replays the journal record into the index on open.
        // Not yet acknowledged, and not yet visible: readers would miss it in the index.
        index.push((key_u64(b'k', b.head.tree_size).to_vec(), b.checkpoint.clone()));
        self.apply_index(&mut index)?;
        *self.committed.write().expect("extent lock") =
            Extent { tree_size: b.head.tree_size, data_len, root_hash: b.head.root_hash };
        // Published; the caller may acknowledge once this returns. The index is durable only up
        // to sled's last flush, the journal holds the rest. A failed flush fails no commit (the
        // batch is durable): the journal keeps growing, and the next commit tries again.
        if *journal_len >= JOURNAL_BYTES_FLUSH {
            if let Err(e) = self.flush_index_locked(&mut w) {
                tracing::error!(error = %e, "couldn't flush the index; the journal keeps every batch since");
            }
        }
        Ok(())
    }

    fn raw_entries(&self, from: u64, limit: u64) -> Result<Vec<RawEntry>, StoreError> {
        let ext = *self.committed.read().expect("extent lock");
        if from >= ext.tree_size || limit == 0 {
            return Ok(vec![]);
        }
        let n = limit.min(ext.tree_size - from);
        let offs = self.read_offsets(from, n, ext)?;
        let (start, end) = (offs[0], offs[n as usize]);
        let sane = offs.windows(2).all(|w| w[0] <= w[1]) && end <= ext.data_len;
        let data = if sane {
            let mut data = vec![0u8; (end - start) as usize];
            self.entries.read_exact_at(&mut data, start).map_err(|e| fio("entries.dat", e))?;
            data
        } else {
            Vec::new()
        };
        let first_index = merkle::stored_hash_index_of_leaf(from);
        let last_index = merkle::stored_hash_count(from + n);
        let mut hash_bytes = vec![0u8; ((last_index - first_index) * 32) as usize];
        self.hashes.read_exact_at(&mut hash_bytes, first_index * 32).map_err(|e| fio("hashes.dat", e))?;
        let mut out = Vec::with_capacity(n as usize);
        let mut h = 0usize;
        for i in 0..n {
            let seq = from + i;
            let m = merkle::stored_hash_index_of_leaf(seq + 1) - merkle::stored_hash_index_of_leaf(seq);
            let hashes = (0..m as usize)
                .map(|j| Hash(hash_bytes[(h + j) * 32..(h + j + 1) * 32].try_into().expect("32 bytes")))
                .collect();
            h += m as usize;
            let (a, z) = (offs[i as usize], offs[i as usize + 1]);
            out.push(if sane {
                RawEntry {
                    seq,
                    bytes: data[(a - start) as usize..(z - start) as usize].to_vec(),
                    hashes,
                    damaged: None,
                }
            } else if a <= z && z <= ext.data_len {
                let mut bytes = vec![0u8; (z - a) as usize];
                self.entries.read_exact_at(&mut bytes, a).map_err(|e| fio("entries.dat", e))?;
                RawEntry { seq, bytes, hashes, damaged: None }
            } else {
                RawEntry {
                    seq,
                    bytes: vec![],
                    hashes,
                    damaged: Some(format!("offsets {a}..{z} are outside entries.dat (0..{})", ext.data_len)),
                }
            });
        }
        Ok(out)
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let count = merkle::stored_hash_count(self.committed.read().expect("extent lock").tree_size);
        indexes
            .iter()
            .map(|&index| {
                if index >= count {
                    return Err(StoreError::Corrupt {
                        what: "stored hash",
                        position: index,
                        detail: format!("beyond the {count} committed hashes"),
                    });
                }
                let mut h = [0u8; 32];
                self.hashes.read_exact_at(&mut h, index * 32).map_err(|e| fio("hashes.dat", e))?;
                Ok(Hash(h))
            })
            .collect()
    }

    fn id_record(&self, id: &str) -> Result<Option<IdRecord>, StoreError> {
        let size = self.committed.read().expect("extent lock").tree_size;
        match self.db.get(key_str(b'i', id)).map_err(io)? {
            None => Ok(None),
            Some(v) => {
                let rec = IdRecord::decode(&v).ok_or(StoreError::Corrupt {
                    what: "id record",
                    position: 0,
                    detail: format!("for id {id}"),
                })?;
                Ok((rec.seq < size).then_some(rec))
            }
        }
    }

    fn stream_head(&self, stream: &str) -> Result<Option<StreamHead>, StoreError> {
        let mut prefix = key_str(b's', stream);
        prefix.push(0);
        let size = self.committed.read().expect("extent lock").tree_size;
        let corrupt =
            || StoreError::Corrupt { what: "stream index", position: 0, detail: format!("for stream {stream}") };
        // The last committed key: a commit in flight may have indexed later ones already.
        let mut last = None;
        for kv in self.db.scan_prefix(&prefix).rev() {
            let (k, v) = kv.map_err(io)?;
            let seq = u64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt())?);
            if seq < size {
                last = Some((u64::from_be_bytes(k[prefix.len()..].try_into().map_err(|_| corrupt())?), seq));
                break;
            }
        }
        let Some((version, seq)) = last else { return Ok(None) };
        let leaf = self.read_hashes(&[merkle::stored_hash_index_of_leaf(seq)])?[0];
        Ok(Some(StreamHead { len: version + 1, last_leaf_hash: leaf, last_seq: seq }))
    }

    fn stream_seqs(&self, stream: &str, from_version: u64, limit: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let end = key_stream_version(stream, u64::MAX);
        for kv in self.db.range(key_stream_version(stream, from_version)..=end).take(limit as usize) {
            let (_, v) = kv.map_err(io)?;
            let seq: [u8; 8] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                what: "stream index",
                position: 0,
                detail: format!("for stream {stream}"),
            })?;
            out.push(u64::from_be_bytes(seq));
        }
        let size = self.committed.read().expect("extent lock").tree_size;
        out.retain(|seq| *seq < size);
        Ok(out)
    }

    fn checkpoints(&self, from_size: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let size = self.committed.read().expect("extent lock").tree_size;
        for kv in self.db.range(key_u64(b'k', from_size)..=key_u64(b'k', size)).take(limit as usize) {
            let (k, v) = kv.map_err(io)?;
            out.push((u64::from_be_bytes(k[1..9].try_into().expect("9-byte key")), v.to_vec()));
        }
        Ok(out)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let files: u64 = [&self.entries, &self.offsets, &self.hashes, &self.journal]
            .iter()
            .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        Ok(StoreStats { bytes_on_disk: files + self.db.size_on_disk().map_err(io)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(first_seq: u64, writes: &[IndexWrite]) -> Vec<u8> {
        let batch = CommitBatch {
            first_seq,
            entries: vec![],
            stream_heads: vec![],
            head: TreeHead { tree_size: first_seq + 2, root_hash: Hash([first_seq as u8; 32]) },
            checkpoint: format!("note {first_seq}\n").into_bytes(),
        };
        let mut out = Vec::new();
        encode_record(&mut out, &batch, 100 * first_seq, writes);
        out
    }

    #[test]
    fn journal_records_round_trip_and_a_tear_ends_them() {
        let writes = vec![(b"ia".to_vec(), vec![1u8; 88]), (b"sa\0".to_vec(), vec![])];
        let (a, b) = (record(4, &writes), record(6, &[]));
        let both = [a.clone(), b.clone()].concat();
        let (records, end) = decode_journal(&both).unwrap();
        assert_eq!(end, both.len() as u64);
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].first_seq, records[0].head.tree_size, records[0].data_len), (4, 6, 400));
        assert_eq!((records[0].note.as_slice(), &records[0].writes), (&b"note 4\n"[..], &writes));
        assert_eq!((records[1].first_seq, records[1].writes.len()), (6, 0));
        for cut in [1, 8, b.len() / 2, b.len() - 1] {
            let (records, end) = decode_journal(&both[..both.len() - cut]).unwrap();
            assert_eq!((records.len(), end), (1, a.len() as u64), "cut {cut}");
        }
        let mut flipped = both.clone();
        flipped[a.len() + 20] ^= 1;
        assert_eq!(decode_journal(&flipped).unwrap().1, a.len() as u64);
    }

    #[test]
    fn a_whole_record_that_does_not_parse_is_corrupt_not_torn() {
        let mut bad = record(4, &[]);
        // Claim one more index write than the record holds, and make the checksum agree.
        let count_at = 8 + 8 + HEAD_LEN + 4 + b"note 4\n".len();
        bad[count_at + 3] = 1;
        let body_end = bad.len() - CHECKSUM_LEN;
        let sum = Sha256::digest(&bad[8..body_end]);
        bad[body_end..].copy_from_slice(&sum[..CHECKSUM_LEN]);
        assert!(matches!(decode_journal(&bad), Err(StoreError::Corrupt { what: "journal record", position: 0, .. })));
    }
}
