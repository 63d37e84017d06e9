//! The embedded default store: one sled tree in one directory. Every commit is one
//! `apply_batch` (atomic) followed by one `flush` (fsync), so a batch is durable once `commit`
//! returns. Not a cache and not an index of projections.
//!
//! Keys (one tree, one-byte prefixes, big-endian numbers so order is numeric):
//! - `c` config JSON; `H` head: tree size (8) + root hash (32)
//! - `e` seq -> record: stored-hash count (1) + stored hashes (32 each) + canonical entry bytes
//! - `k` tree size -> checkpoint note
//! - `i` event id -> [`IdRecord`]
//! - `s` stream 0x00 version -> seq (a stream's head is its last key here)

use super::{CommitBatch, IdRecord, RawEntry, LedgerConfig, Store, StoreError, StoreStats, StreamHead};
use crate::checkpoint::TreeHead;
use crate::merkle::{self, Hash};
use std::path::Path;

pub struct SledStore {
    db: sled::Db,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
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

fn encode_head(h: &TreeHead) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&h.tree_size.to_be_bytes());
    b[8..].copy_from_slice(&h.root_hash.0);
    b
}

/// Splits an `e` record into its stored hashes and entry bytes.
pub fn split_record(seq: u64, rec: &[u8]) -> Result<(Vec<Hash>, &[u8]), StoreError> {
    let corrupt = |detail: &str| StoreError::Corrupt { what: "entry record", position: seq, detail: detail.to_owned() };
    let m = *rec.first().ok_or_else(|| corrupt("empty record"))? as usize;
    if m == 0 || m > 64 || rec.len() < 1 + 32 * m {
        return Err(corrupt("bad stored-hash count"));
    }
    let hashes = (0..m).map(|i| Hash(rec[1 + 32 * i..33 + 32 * i].try_into().expect("32 bytes"))).collect();
    Ok((hashes, &rec[1 + 32 * m..]))
}

/// For the audit only: when a record's count byte is damaged, finds the split at which the rest
/// is a well-formed entry, so the fault is reported at this record and the hashes still serve
/// to check the records after it.
fn salvage_record(rec: &[u8]) -> Option<(Vec<Hash>, &[u8])> {
    (1..=64usize).find_map(|m| {
        let body = rec.get(1 + 32 * m..)?;
        if body.first() != Some(&b'{') || crate::event::parse_entry(body).is_err() {
            return None;
        }
        let hashes = (0..m).map(|i| Hash(rec[1 + 32 * i..33 + 32 * i].try_into().expect("32 bytes"))).collect();
        Some((hashes, body))
    })
}

impl SledStore {
    /// Opens (or creates) the store in `dir` and runs recovery (see [`SledStore::recover`]).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 << 20)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(io)?;
        let store = Self { db };
        store.recover()?;
        Ok(store)
    }

    /// The underlying sled handle, for fault-injection tests and the audit's tamper tests.
    pub fn raw(&self) -> &sled::Db {
        &self.db
    }

    /// Recovery on open. sled replays its log to the last whole `apply_batch`, so a torn write
    /// of ours can only be a whole batch missing. We still check, exhaustively for the tail:
    /// entries, checkpoints or ids beyond the head are a torn tail and are dropped; the head's
    /// last entry must exist and match its stored leaf hash; the root recomputed from stored
    /// hashes must equal the head. Damage below the head is an error with its position.
    fn recover(&self) -> Result<(), StoreError> {
        let size = self.head()?.map(|(h, _)| h.tree_size).unwrap_or(0);
        let mut dropped = 0u64;
        for kv in self.db.range(key_u64(b'e', size)..=key_u64(b'e', u64::MAX)) {
            let (k, v) = kv.map_err(io)?;
            let seq = u64::from_be_bytes(k[1..9].try_into().expect("9-byte key"));
            if let Ok((_, bytes)) = split_record(seq, &v) {
                if let Ok(e) = crate::event::parse_entry(bytes) {
                    let _ = self.db.remove(key_str(b'i', e.id()));
                    let _ = self.db.remove(key_stream_version(e.stream(), e.meta.stream_version));
                }
            }
            self.db.remove(k).map_err(io)?;
            dropped += 1;
        }
        for kv in self.db.range(key_u64(b'k', size + 1)..=key_u64(b'k', u64::MAX)) {
            self.db.remove(kv.map_err(io)?.0).map_err(io)?;
        }
        if dropped > 0 {
            tracing::warn!(dropped, tree_size = size, "dropped a torn tail of entries beyond the committed head");
            self.db.flush().map_err(io)?;
        }
        if size == 0 {
            return Ok(());
        }
        let (head, _) = self.head()?.expect("size > 0 means a head exists");
        let last = self.entries(size - 1, 1)?;
        let last = last.first().ok_or(StoreError::Corrupt { what: "log", position: size - 1, detail: "head's last entry is missing".into() })?;
        let stored = self.read_hashes(&[merkle::stored_hash_index_of_leaf(size - 1)])?;
        if merkle::leaf_hash(last) != stored[0] {
            return Err(StoreError::Corrupt { what: "entry", position: size - 1, detail: "leaf hash differs from the stored one".into() });
        }
        let root = merkle::root(size, &super::StoreHashes(self)).map_err(|e| StoreError::Corrupt {
            what: "stored hashes",
            position: size,
            detail: e.to_string(),
        })?;
        if root != head.root_hash {
            return Err(StoreError::Corrupt { what: "tree head", position: size, detail: "root from stored hashes differs from the head".into() });
        }
        Ok(())
    }
}

impl Store for SledStore {
    fn config(&self) -> Result<Option<LedgerConfig>, StoreError> {
        match self.db.get(b"c").map_err(io)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { what: "config", position: 0, detail: e.to_string() }),
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
        let Some(h) = self.db.get(b"H").map_err(io)? else { return Ok(None) };
        if h.len() != 40 {
            return Err(StoreError::Corrupt { what: "head", position: 0, detail: "not 40 bytes".into() });
        }
        let head = TreeHead {
            tree_size: u64::from_be_bytes(h[..8].try_into().expect("8 bytes")),
            root_hash: Hash(h[8..].try_into().expect("32 bytes")),
        };
        let note = self.db.get(key_u64(b'k', head.tree_size)).map_err(io)?.ok_or(StoreError::Corrupt {
            what: "checkpoint",
            position: head.tree_size,
            detail: "the head's checkpoint is missing".into(),
        })?;
        Ok(Some((head, note.to_vec())))
    }

    fn commit(&self, b: &CommitBatch) -> Result<(), StoreError> {
        let size = self.head()?.map(|(h, _)| h.tree_size).unwrap_or(0);
        if b.first_seq != size {
            return Err(StoreError::NotContiguous { got: b.first_seq, want: size });
        }
        assert_eq!(b.head.tree_size, b.first_seq + b.entries.len() as u64, "batch head must cover exactly its entries");
        let mut batch = sled::Batch::default();
        for (i, e) in b.entries.iter().enumerate() {
            let seq = b.first_seq + i as u64;
            assert!(!e.hashes.is_empty() && e.hashes.len() <= 64);
            let mut rec = Vec::with_capacity(1 + 32 * e.hashes.len() + e.bytes.len());
            rec.push(e.hashes.len() as u8);
            for h in &e.hashes {
                rec.extend_from_slice(&h.0);
            }
            rec.extend_from_slice(&e.bytes);
            batch.insert(&key_u64(b'e', seq), rec);
            batch.insert(key_str(b'i', &e.id), &e.id_record.encode()[..]);
            batch.insert(key_stream_version(&e.stream, e.id_record.stream_version), &seq.to_be_bytes());
        }
        // Stream heads are not written: they are the last key of each stream's index (one
        // random-key insert less per entry, the dominant cost of a sled commit).
        batch.insert(&key_u64(b'k', b.head.tree_size), b.checkpoint.as_slice());
        batch.insert(b"H", &encode_head(&b.head)[..]);
        // At this point nothing of the batch is on disk; a crash loses it, and it was never
        // acknowledged.
        self.db.apply_batch(batch).map_err(io)?;
        // The batch is in sled's log but maybe not on disk: a crash here may lose it whole
        // (never part of it); still unacknowledged.
        self.db.flush().map_err(io)?;
        // Durable. The caller may acknowledge now.
        Ok(())
    }

    fn raw_entries(&self, from: u64, limit: u64) -> Result<Vec<RawEntry>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let end = from.saturating_add(limit - 1);
        for kv in self.db.range(key_u64(b'e', from)..=key_u64(b'e', end)) {
            let (k, v) = kv.map_err(io)?;
            let seq = u64::from_be_bytes(k[1..9].try_into().expect("9-byte key"));
            out.push(match split_record(seq, &v) {
                Ok((hashes, bytes)) => RawEntry { seq, bytes: bytes.to_vec(), hashes, damaged: None },
                Err(e) => match salvage_record(&v) {
                    Some((hashes, bytes)) => RawEntry { seq, bytes: bytes.to_vec(), hashes, damaged: Some(e.to_string()) },
                    None => RawEntry { seq, bytes: v.to_vec(), hashes: vec![], damaged: Some(e.to_string()) },
                },
            });
        }
        Ok(out)
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let mut out = Vec::with_capacity(indexes.len());
        let mut cached: Option<(u64, Vec<Hash>)> = None;
        for &index in indexes {
            let (level, n) = tlog_tiles::split_stored_hash_index(index);
            let leaf = ((n + 1) << level) - 1;
            if cached.as_ref().map(|c| c.0) != Some(leaf) {
                let rec = self.db.get(key_u64(b'e', leaf)).map_err(io)?.ok_or(StoreError::Corrupt {
                    what: "stored hash",
                    position: index,
                    detail: format!("entry {leaf} holding it is missing"),
                })?;
                cached = Some((leaf, split_record(leaf, &rec)?.0));
            }
            let hashes = &cached.as_ref().expect("set above").1;
            let h = hashes.get(level as usize).ok_or(StoreError::Corrupt {
                what: "stored hash",
                position: index,
                detail: format!("entry {leaf} holds {} hashes, level {level} wanted", hashes.len()),
            })?;
            out.push(*h);
        }
        Ok(out)
    }

    fn id_record(&self, id: &str) -> Result<Option<IdRecord>, StoreError> {
        match self.db.get(key_str(b'i', id)).map_err(io)? {
            None => Ok(None),
            Some(v) => IdRecord::decode(&v)
                .map(Some)
                .ok_or(StoreError::Corrupt { what: "id record", position: 0, detail: format!("for id {id}") }),
        }
    }

    fn stream_head(&self, stream: &str) -> Result<Option<StreamHead>, StoreError> {
        let mut prefix = key_str(b's', stream);
        prefix.push(0);
        let Some(kv) = self.db.scan_prefix(&prefix).next_back() else { return Ok(None) };
        let (k, v) = kv.map_err(io)?;
        let corrupt = || StoreError::Corrupt { what: "stream index", position: 0, detail: format!("for stream {stream}") };
        let version = u64::from_be_bytes(k[prefix.len()..].try_into().map_err(|_| corrupt())?);
        let seq = u64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt())?);
        let rec = self.db.get(key_u64(b'e', seq)).map_err(io)?.ok_or_else(corrupt)?;
        let (hashes, _) = split_record(seq, &rec)?;
        Ok(Some(StreamHead { len: version + 1, last_leaf_hash: hashes[0], last_seq: seq }))
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
        Ok(out)
    }

    fn checkpoints(&self, from_size: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.range(key_u64(b'k', from_size)..=key_u64(b'k', u64::MAX)).take(limit as usize) {
            let (k, v) = kv.map_err(io)?;
            out.push((u64::from_be_bytes(k[1..9].try_into().expect("9-byte key")), v.to_vec()));
        }
        Ok(out)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats { bytes_on_disk: self.db.size_on_disk().map_err(io)? })
    }
}
