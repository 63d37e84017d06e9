//! The store contract every backend keeps (sled and PostgreSQL), and the records it holds.
//! Not the place for sequencing, signatures or rules: a store keeps bytes durably and in order.
//!
//! **Contract** (tested by `tests/store_contract.rs` against every backend):
//! - *Durability*: once [`Store::commit`] returns `Ok`, the batch survives a crash or power loss.
//! - *Atomicity*: a batch is visible (and survives) whole or not at all; readers never see part.
//! - *Ordering*: batches are committed in `first_seq` order with no gap; `commit` refuses a batch
//!   whose `first_seq` is not the current tree size (`StoreError::NotContiguous`).
//! - *Concurrency*: one writer at a time calls `commit` (the ledger's sequencer); any number of
//!   readers may call the read methods concurrently with it and with each other. A *shared*
//!   store ([`Store::is_shared`], PostgreSQL) also serializes writers in different processes:
//!   between [`Store::begin_append`] and `commit` no other writer commits, and the head that
//!   `begin_append` returns is the one the batch must follow.
//! - *Recovery*: `open` leaves exactly the committed batches; only a torn final batch (one that
//!   never committed) is dropped, and any other damage is an error naming its file and position,
//!   never a panic and never a repair by deleting.
//! - *Reads verify*: [`Store::entries`] checks every entry against its stored leaf hash, so a
//!   damaged entry is an error with its position, never served.

pub mod postgres;
pub mod sled;
mod tiers;

use crate::checkpoint::TreeHead;
use crate::merkle::Hash;

/// The most entries one commit batch may hold, in every store. The sled store's recovery relies
/// on it: entries beyond the head are one torn batch only up to this many; more is corruption.
pub const BATCH_LEN_MAX: u64 = 65_536;

/// The ledger's constants, written once by `init`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerConfig {
    /// The log origin, also the checkpoint key name.
    pub origin: String,
    /// The region authority key (did:key) that established the ledger.
    pub authority: String,
    /// The checkpoint verifier key string.
    pub verifier_key: String,
    /// The education rules this ledger enforces (a `zachetka_rules::RegionConfig` as
    /// JSON), or `None` for a bare signed log. Fixed at init, so append and audit use the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
}

/// What the id index remembers of an appended event, enough to answer a retry with the same
/// receipt, to refuse the same id with other content, and to answer the rules' lookups (stream
/// and type) without reading the entry.
#[derive(Debug, Clone, PartialEq)]
pub struct IdRecord {
    pub seq: u64,
    pub stream_version: u64,
    /// The tree size of the checkpoint that first covered the entry.
    pub tree_size: u64,
    pub leaf_hash: Hash,
    /// SHA-256 of the canonical event.
    pub digest: [u8; 32],
    /// The event's stream and type, as in its entry.
    pub stream: String,
    pub event_type: String,
}

/// The end of one stream's hash chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamHead {
    /// Number of entries in the stream, the `stream_version` the next one takes.
    pub len: u64,
    pub last_leaf_hash: Hash,
    pub last_seq: u64,
}

/// One entry in a commit batch.
#[derive(Debug, Clone)]
pub struct BatchEntry {
    /// Canonical entry bytes.
    pub bytes: Vec<u8>,
    /// The stored hashes this leaf adds (leaf hash first, then completed subtrees, level by level).
    pub hashes: Vec<Hash>,
    pub id: String,
    pub id_record: IdRecord,
    pub stream: String,
}

/// An entry as a store holds it: the key it is stored under, its bytes and its stored hashes.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub seq: u64,
    /// The entry's bytes: a slice of the buffer its page was read into (no copy per entry).
    pub bytes: bytes::Bytes,
    pub hashes: Vec<Hash>,
    /// Set when the store cannot locate the entry's bytes (its offsets are damaged); `bytes` is
    /// then empty. Readers refuse it; the audit reports it.
    pub damaged: Option<String>,
}

impl RawEntry {
    /// The entry's bytes once they hash to its stored leaf hash (what [`Store::entries`] gives);
    /// damage is an error naming the entry.
    pub fn checked(self) -> Result<Vec<u8>, StoreError> {
        match self.damaged {
            None if crate::merkle::leaf_hash(&self.bytes) == self.hashes[0] => Ok(self.bytes.into()),
            None => Err(StoreError::Corrupt {
                what: "entry",
                position: self.seq,
                detail: "its bytes do not hash to the stored leaf hash".into(),
            }),
            Some(detail) => Err(StoreError::Corrupt { what: "entry record", position: self.seq, detail }),
        }
    }
}

/// Everything one group commit writes, atomically.
#[derive(Debug, Clone)]
pub struct CommitBatch {
    pub first_seq: u64,
    pub entries: Vec<BatchEntry>,
    /// New heads of the streams this batch touched (a backend may index them or, like sled,
    /// derive heads from its stream index).
    pub stream_heads: Vec<(String, StreamHead)>,
    /// The tree head after the batch, and its signed checkpoint note.
    pub head: TreeHead,
    pub checkpoint: Vec<u8>,
}

/// Damage found in a store's files, by file and byte offset (or position, where the file is
/// positional by seq or tree size).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreFinding {
    pub file: String,
    pub offset: u64,
    /// The checkpoint the damage belongs to, where that is known.
    pub tree_size: Option<u64>,
    /// A stable snake_case code.
    pub code: &'static str,
    pub message: String,
}

/// Sizes for the "bytes on disk per entry" figure.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StoreStats {
    pub bytes_on_disk: u64,
}

/// What went wrong in a store. The cause, where there is one, is chained (`source()`), not
/// repeated in the message: render a whole chain with [`error_chain`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file of the store could not be opened, read, written or synced.
    #[error("couldn't {action} {path}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The embedded index (sled) failed.
    #[error("the index failed")]
    Index(#[source] ::sled::Error),
    /// The database answered an error that is not about reaching it (a constraint, a syntax
    /// error, a permission): its SQLSTATE and message.
    #[error("PostgreSQL refused: {0}")]
    Database(String),
    /// The store is of another format or schema than this build, or cannot be named as given.
    #[error("{0}")]
    Incompatible(String),
    /// Another process has the store open for writing (its lock is taken).
    #[error("{0}")]
    InUse(String),
    /// A read replica takes no appends.
    #[error("a replica is read-only; append through a node on the primary")]
    ReadOnly,
    /// The ledger stopped writing after a failed commit (see `writes_stopped`).
    #[error("the ledger stopped writing")]
    Stopped,
    /// A checkpoint note too large for a commit record.
    #[error("a checkpoint note of {len} bytes does not fit a commit record")]
    NoteTooLarge { len: usize },
    /// Something the rules need failed outside the store (their config, a lookup).
    #[error("{0}")]
    Rules(String),
    #[error("batch starts at seq {got}, the log has {want} entries")]
    NotContiguous { got: u64, want: u64 },
    #[error("corrupt {what} at {position}: {detail}")]
    Corrupt { what: &'static str, position: u64, detail: String },
    #[error("ledger is already initialized")]
    AlreadyInitialized,
    /// The store cannot be reached now (a database restarting, a lost connection); retry later.
    /// After a failed `commit` with this error the batch may or may not be in the store.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered, but another writer held the append lock longer than this one may
    /// wait (a frozen node): nothing was written; retry later.
    #[error("the append lock is taken: {0}")]
    Contended(String),
}

/// An error and its causes, `outer: inner: innermost`, for messages that leave the process
/// (refusals, status, logs).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl StoreError {
    /// Whether retrying later may succeed (the store itself is not known to be damaged).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Contended(_))
    }

    /// Whether the store could not be reached (what `store_unavailable` reports); a store that
    /// answered that its append lock is taken is reachable.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Seqs at most this far apart are read in one store read by [`Store::entries_at`], the entries
/// between them skipped unchecked (a few KiB read in vain costs less than a read of its own).
pub const ENTRY_READ_GAP: u64 = 16;

/// `seqs` (ascending) cut into runs whose neighbours are at most [`ENTRY_READ_GAP`] apart.
pub(crate) fn gap_runs(seqs: &[u64]) -> impl Iterator<Item = &[u64]> {
    seqs.chunk_by(|a, b| b - a <= ENTRY_READ_GAP)
}

/// [`Store::entries_at`] from [`Store::raw_entries`], one call per run of nearby seqs.
pub(crate) fn entries_at_by_runs<S: Store + ?Sized>(
    store: &S,
    seqs: &[u64],
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut out = Vec::with_capacity(seqs.len());
    for run in gap_runs(seqs) {
        let (first, last) = (run[0], run[run.len() - 1]);
        let mut read = store.raw_entries(first, last - first + 1)?.into_iter();
        for &seq in run {
            match read.find(|e| e.seq == seq) {
                Some(e) => out.push((seq, e.checked()?)),
                None => return Err(missing_entry(seq)),
            }
        }
    }
    Ok(out)
}

/// [`Store::entries_at`]'s refusal of a seq the log does not hold.
pub(crate) fn missing_entry(seq: u64) -> StoreError {
    StoreError::Corrupt { what: "entry", position: seq, detail: "an indexed entry is missing from the log".into() }
}

/// A durable, ordered home for entries, stored hashes, indexes and checkpoints. See the module
/// docs for the contract.
pub trait Store: Send + Sync + 'static {
    fn config(&self) -> Result<Option<LedgerConfig>, StoreError>;
    /// Writes the config once, durably; `AlreadyInitialized` if one exists.
    fn init(&self, config: &LedgerConfig) -> Result<(), StoreError>;
    /// The latest committed tree head and its checkpoint note (`None` before the first commit).
    fn head(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError>;
    /// Commits a batch atomically and durably (see the contract).
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;
    /// Entries `from..from+limit` that exist, with their seq and stored hashes, ascending.
    fn raw_entries(&self, from: u64, limit: u64) -> Result<Vec<RawEntry>, StoreError>;
    /// Canonical bytes of entries `from..from+limit` that exist, each checked against its stored
    /// leaf hash (SHA-256 of ~700 bytes, ~0.5 us): damage is an error naming the entry.
    fn entries(&self, from: u64, limit: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.raw_entries(from, limit)?.into_iter().map(RawEntry::checked).collect()
    }
    /// The entries at `seqs` (ascending, each below the head), as `(seq, canonical bytes)`, each
    /// checked against its stored leaf hash; a seq the log does not hold is an error naming it.
    /// For readers of a few scattered entries (a learner's record): the default reads one run of
    /// seqs at most [`ENTRY_READ_GAP`] apart at a time; a backend may read fewer bytes.
    fn entries_at(&self, seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        entries_at_by_runs(self, seqs)
    }
    /// Stored Merkle hashes by stored-hash index (RFC 9162 tree, Go tlog layout).
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError>;
    fn id_record(&self, id: &str) -> Result<Option<IdRecord>, StoreError>;
    /// [`Store::id_record`] of many ids at once (one round trip where the store is remote).
    fn id_records(&self, ids: &[&str]) -> Result<Vec<Option<IdRecord>>, StoreError> {
        ids.iter().map(|id| self.id_record(id)).collect()
    }
    fn stream_head(&self, stream: &str) -> Result<Option<StreamHead>, StoreError>;
    /// [`Store::stream_head`] of many streams at once.
    fn stream_heads(&self, streams: &[&str]) -> Result<Vec<Option<StreamHead>>, StoreError> {
        streams.iter().map(|s| self.stream_head(s)).collect()
    }
    /// Seqs of a stream's entries from `from_version`, at most `limit`.
    fn stream_seqs(&self, stream: &str, from_version: u64, limit: u64) -> Result<Vec<u64>, StoreError>;
    /// Checkpoint notes with tree size >= `from_size`, ascending, at most `limit`, as stored: the
    /// caller verifies them (their signatures cover them).
    fn checkpoints(&self, from_size: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The checkpoint note signed at exactly `tree_size`, as stored, or `None` if no batch
    /// ended there (a size inside a batch, or beyond the head). Found by key, never by a scan of
    /// every checkpoint: old receipts stay checkable at any age. Unlike [`Store::checkpoints`]
    /// (which hands the audit what it finds), a record whose frame is damaged is an error naming
    /// the tree size, never served. The default asks [`Store::checkpoints`] for one note, which
    /// every backend answers from an index; a backend may answer it more directly.
    fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut found = self.checkpoints(tree_size, 1)?;
        Ok(match found.pop() {
            Some((size, note)) if size == tree_size => Some(note),
            _ => None,
        })
    }
    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Damage an open found and did not refuse. Read-only (the audit), everything it found;
    /// opened to serve, which refuses damage to the log, only what the store goes on without
    /// (the sled store's damaged `head.dat` slot until a commit rewrites it), which
    /// `/v1/status` shows among its warnings.
    fn findings(&self) -> Vec<StoreFinding> {
        Vec::new()
    }

    /// Waits until everything the store opens beside its recovery is open (the sled store's
    /// index, module `sled`), and fails as its first use would. The ledger's open calls it last,
    /// so that an open that would fail still fails there, after loading its snapshots meanwhile.
    fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether writers in other processes may commit to this store (see the contract).
    fn is_shared(&self) -> bool {
        false
    }
    /// Whether this store only reads (a database replica): the ledger refuses appends.
    fn is_read_only(&self) -> bool {
        false
    }
    /// Starts an append: until `commit` or [`Store::abort_append`], no other writer commits.
    /// Returns the committed head under that exclusion. A store with one writer just reads it.
    fn begin_append(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        self.head()
    }
    /// Ends an append begun with `begin_append` without committing anything.
    fn abort_append(&self) {}
    /// The time on the store's own clock, in unix milliseconds, for a store several nodes share
    /// (the database's): what each node's clock is checked against before it stamps entries.
    /// `None` for a store with one writer, which has no clock of its own.
    fn clock_unix_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
    /// Returns when the committed head may have grown beyond `tree_size` (another writer
    /// committed), or after `timeout`. A store with one writer has nothing to wait for.
    fn wait_for_commit(&self, tree_size: u64, timeout: std::time::Duration) -> Result<(), StoreError> {
        let _ = (tree_size, timeout);
        Ok(())
    }
}

/// The ledger directory's lock: an exclusive advisory lock (`flock`) on `<dir>/LOCK`, held by
/// every process that writes in the directory (a server, `rebuild`, `demo`, `init`) whatever its
/// store. Over PostgreSQL the store has no lock of its own (several nodes write it), but one node
/// directory is one node: two processes on it would race on `snapshots/`, whose writer assumes
/// it is alone. Over sled the store's own `store/LOCK` is taken as well. The audit takes none.
/// `InUse` when another process holds it.
pub fn lock_ledger_dir(dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    sled::lock_dir(dir, "the ledger directory")
}

/// A [`tlog_tiles::HashReader`] over a store.
pub struct StoreHashes<'a>(pub &'a dyn Store);

impl tlog_tiles::HashReader for StoreHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.read_hashes(indexes).map_err(|_| tlog_tiles::Error::IndexesNotInTree)
    }
}

impl IdRecord {
    /// Length of the fixed part; the stream (behind its u16 length) and the type follow.
    const FIXED_LEN: usize = 8 * 3 + 32 + 32;

    /// seq, stream_version, tree_size (big-endian u64s), leaf hash, digest, then the stream's
    /// length (big-endian u16), the stream, and the type to the end.
    pub fn encode(&self) -> Vec<u8> {
        let stream_len = u16::try_from(self.stream.len()).expect("a stream name is at most 200 bytes");
        let mut b = Vec::with_capacity(Self::FIXED_LEN + 2 + self.stream.len() + self.event_type.len());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.stream_version.to_be_bytes());
        b.extend_from_slice(&self.tree_size.to_be_bytes());
        b.extend_from_slice(&self.leaf_hash.0);
        b.extend_from_slice(&self.digest);
        b.extend_from_slice(&stream_len.to_be_bytes());
        b.extend_from_slice(self.stream.as_bytes());
        b.extend_from_slice(self.event_type.as_bytes());
        b
    }

    /// The record `encode` wrote, or `None` for anything else (a damaged or older record).
    pub fn decode(b: &[u8]) -> Option<Self> {
        let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
        let len_at = Self::FIXED_LEN;
        let stream_len = u16::from_be_bytes(b.get(len_at..len_at + 2)?.try_into().ok()?) as usize;
        let stream = b.get(len_at + 2..len_at + 2 + stream_len)?;
        let event_type = &b[len_at + 2 + stream_len..];
        Some(Self {
            seq: u(0..8),
            stream_version: u(8..16),
            tree_size: u(16..24),
            leaf_hash: Hash(b[24..56].try_into().ok()?),
            digest: b[56..88].try_into().ok()?,
            stream: String::from_utf8(stream.to_vec()).ok()?,
            event_type: String::from_utf8(event_type.to_vec()).ok()?,
        })
    }
}

impl StreamHead {
    pub const LEN: usize = 8 + 32 + 8;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.len.to_be_bytes());
        b[8..40].copy_from_slice(&self.last_leaf_hash.0);
        b[40..48].copy_from_slice(&self.last_seq.to_be_bytes());
        b
    }
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(Self {
            len: u64::from_be_bytes(b[0..8].try_into().ok()?),
            last_leaf_hash: Hash(b[8..40].try_into().ok()?),
            last_seq: u64::from_be_bytes(b[40..48].try_into().ok()?),
        })
    }
}
