//! The embedded default store, one directory: the log in append-only files, and sled for what
//! must be found by key. The files are the truth; sled is an index derived from them, rebuilt
//! from the files whenever it lags, is unreadable, or is asked to (`zachetka rebuild`). Not a
//! cache of projections, and never the judge of what the log holds.
//!
//! - `ledger.json`: the ledger's config, written once by `init`, with its checksum;
//! - `entries.dat`: canonical entry bytes, concatenated in seq order;
//! - `offsets.dat`: where entry `seq` starts in `entries.dat` (big-endian u64 per entry);
//! - `hashes.dat`: the stored Merkle hashes, 32 bytes at `32 * stored_hash_index` (Go tlog
//!   layout), so proofs and tiles are positional reads;
//! - `checkpoints.dat`: one framed record per committed batch, append-only and never emptied:
//!   the batch's first seq, the tree head after it, the length of `entries.dat` it covers, and
//!   its signed checkpoint note. **A batch is committed once its record is durable.**
//! - `head.dat`: two slots of [`SLOT_LEN`] bytes written in turn, each a copy of one record with
//!   its offset in `checkpoints.dat`: a second home of the latest commit, so that a damaged,
//!   truncated or deleted `checkpoints.dat` cannot make the store forget a checkpoint it signed;
//! - `index/`, `index.<first>/`: the index in tiers (module [`super::tiers`]), each a sled (one
//!   tree, one-byte prefixes, big-endian numbers) of the entries from its first seq to the next
//!   tier's: `H2` how far the tier is durable (flushed), `k` tree size -> record offset in
//!   `checkpoints.dat`, `i` event id -> [`IdRecord`] (with the event's stream and type), `s`
//!   stream 0x00 version -> seq (a stream's head is its last key in the newest tier that holds
//!   it). The newest tier is live (every commit writes it); the older ones are sealed, each with
//!   a filter of its ids and streams. An index of the earlier format (its mark under `H`, id
//!   records without stream and type) has no `H2`, so it is re-derived from the entries on open.
//!
//! A frame is `len` (u32, the body's bytes), the body, then the first 16 bytes of
//! SHA-256(len || body).
//!
//! **Commit order** (the crash states are narrated in [`SledStore::commit`]): the log files,
//! fsynced; then the record in `checkpoints.dat` and in a `head.dat` slot, fsynced; then the
//! index in sled, unflushed. sled is flushed every [`INDEX_FLUSH_BYTES`] of entries.
//!
//! **Recovery** ([`SledStore::open`]) never repairs by deleting what was committed. The head is
//! the last whole record of `checkpoints.dat`, checked against `head.dat`: a final record that is
//! cut short (or zeros, or a length no record has), with no whole record after it, is a torn
//! batch (dropped, unless `head.dat` holds it whole, when it is written back from there); a
//! final record written whole that fails its checksum and that `head.dat` cannot restore (no
//! crash leaves one: damage), a bad record followed by a good one, a `head.dat` that names a
//! checkpoint `checkpoints.dat` does not hold, an index that
//! has seen more than the log holds, log files shorter than the head, or more bytes beyond the
//! head than one batch writes: corruption, refused with its file and position, and nothing is
//! changed. The index is then brought up to the head from the entries themselves.
//!
//! **The index opens beside the log.** sled's open reads its whole page table (a time that
//! grows with the index: 0.32 to 0.40 s at 5.15M entries in one sled), so the index is kept in
//! tiers and only the live one (at most [`TIER_ENTRIES`] entries) is opened before the store
//! serves; the sealed ones open in the background (module [`super::tiers`]). Nothing in the
//! log's recovery needs the index; so an open for writing starts the live tier's sled on its own
//! thread and returns once the log's files are recovered, and the first use of the index (a
//! lookup, a commit, or [`Store::ready`], which the ledger's open calls last) waits for it,
//! checks its mark against the recovered head (and that no tier starts beyond it) and brings it
//! up to the head. Meanwhile the caller loads its snapshots. An index that fails to open or
//! to catch up fails that first use, and every later one, with the same error. A recovery that
//! repairs the log (after a crash) waits for the index before it changes anything, so that an
//! index that has seen more than the log is refused first, as before.
//!
//! Why not entries in sled too: a sled insert costs ~5-9 us and every one lands on the single
//! committer thread; the files cost ~1 us per entry (README, Decisions). Why sled is flushed only
//! now and then: a flushed sled batch per commit was ~20% of a demo run's CPU.

pub use super::tiers::TIER_ENTRIES;
use super::tiers::{self, Layers, Probe, Sealed, Warmer};
use super::{
    CommitBatch, IdRecord, LedgerConfig, RawEntry, Store, StoreError, StoreFinding, StoreStats, StreamHead,
    BATCH_LEN_MAX,
};
use crate::checkpoint::TreeHead;
use crate::merkle::{self, Hash};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// sled is flushed (its `H` advanced) once this many bytes of entries were committed since the
/// last flush: ~45,000 entries, which bounds what an open after a crash re-indexes from the
/// entries (a few hundred milliseconds).
pub const INDEX_FLUSH_BYTES: u64 = 32 << 20;

/// The size of a `head.dat` slot, and so the largest record (a note with ~40 cosignatures fits).
pub const SLOT_LEN: usize = 4096;

const CHECKSUM_LEN: usize = 16;
/// A record's fixed part: first seq, tree size, root hash, data length.
const RECORD_FIXED_LEN: usize = 8 + 8 + 32 + 8;
/// The most body bytes of a record frame (so a whole frame fits a slot with its offset).
const RECORD_BODY_MAX: usize = SLOT_LEN - 4 - CHECKSUM_LEN - 8;

/// How a store is opened: to serve and append, or to audit (nothing in the directory changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReadWrite,
    ReadOnly,
}

/// One committed batch, as `checkpoints.dat` and `head.dat` hold it.
#[derive(Debug, Clone, PartialEq)]
struct CommitRecord {
    first_seq: u64,
    head: TreeHead,
    /// Length of `entries.dat` once the batch is in.
    data_len: u64,
    note: Vec<u8>,
}

impl CommitRecord {
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(&self.head.tree_size.to_be_bytes());
        out.extend_from_slice(&self.head.root_hash.0);
        out.extend_from_slice(&self.data_len.to_be_bytes());
        out.extend_from_slice(&self.note);
    }

    fn decode_body(b: &[u8]) -> Option<Self> {
        if b.len() < RECORD_FIXED_LEN {
            return None;
        }
        let u = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let record = Self {
            first_seq: u(0),
            head: TreeHead { tree_size: u(8), root_hash: Hash(b[16..48].try_into().expect("32 bytes")) },
            data_len: u(48),
            note: b[RECORD_FIXED_LEN..].to_vec(),
        };
        (record.first_seq < record.head.tree_size).then_some(record)
    }

    fn frame(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(RECORD_FIXED_LEN + self.note.len());
        self.encode_body(&mut body);
        frame(&body)
    }
}

/// `len || body || checksum`.
fn frame(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("frames are small").to_be_bytes();
    let mut out = Vec::with_capacity(4 + body.len() + CHECKSUM_LEN);
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    out.extend_from_slice(&checksum(&len, body));
    out
}

fn checksum(len: &[u8; 4], body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = Sha256::new();
    h.update(len);
    h.update(body);
    h.finalize()[..CHECKSUM_LEN].try_into().expect("16 bytes")
}

/// The body of the frame at the start of `bytes`, and the frame's length; `None` if `bytes` does
/// not start with a whole frame of at most `body_max` body bytes whose checksum holds.
fn unframe(bytes: &[u8], body_max: usize) -> Option<(&[u8], usize)> {
    let len: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let n = u32::from_be_bytes(len) as usize;
    if n > body_max {
        return None;
    }
    let body = bytes.get(4..4 + n)?;
    let sum = bytes.get(4 + n..4 + n + CHECKSUM_LEN)?;
    (checksum(&len, body) == sum).then_some((body, 4 + n + CHECKSUM_LEN))
}

/// A `head.dat` slot: a record and where it stands in `checkpoints.dat`.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    offset: u64,
    record: CommitRecord,
}

impl Slot {
    fn encode(&self) -> Vec<u8> {
        let mut body = self.offset.to_be_bytes().to_vec();
        self.record.encode_body(&mut body);
        let mut out = frame(&body);
        assert!(out.len() <= SLOT_LEN, "a record fits a slot (checked at commit)");
        out.resize(SLOT_LEN, 0);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, _) = unframe(bytes, SLOT_LEN - 4 - CHECKSUM_LEN)?;
        let offset = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
        Some(Self { offset, record: CommitRecord::decode_body(&body[8..])? })
    }
}

/// What the index holds durably (`H`): the head as of the last flush, and where its record is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IndexMark {
    head: TreeHead,
    data_len: u64,
    /// Offset of the head's record in `checkpoints.dat`, and the offset just after it.
    record_at: u64,
    records_end: u64,
}

const MARK_LEN: usize = 8 + 32 + 8 + 8 + 8;

/// The key of the index's mark, and so the index format's version: an index without it (the
/// earlier format kept its mark under `H`, with id records lacking stream and type) is
/// re-derived from the entries, which rewrites every id record.
const MARK_KEY: &[u8] = b"H2";

impl IndexMark {
    fn encode(&self) -> [u8; MARK_LEN] {
        let mut b = [0u8; MARK_LEN];
        b[..8].copy_from_slice(&self.head.tree_size.to_be_bytes());
        b[8..40].copy_from_slice(&self.head.root_hash.0);
        b[40..48].copy_from_slice(&self.data_len.to_be_bytes());
        b[48..56].copy_from_slice(&self.record_at.to_be_bytes());
        b[56..64].copy_from_slice(&self.records_end.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != MARK_LEN {
            return None;
        }
        let u = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        Some(Self {
            head: TreeHead { tree_size: u(0), root_hash: Hash(b[8..40].try_into().ok()?) },
            data_len: u(40),
            record_at: u(48),
            records_end: u(56),
        })
    }
}

/// The committed extent: what readers may see. Published only once a batch is durable and
/// indexed, so a reader never sees a position the index does not cover yet.
#[derive(Debug, Clone, PartialEq)]
struct Extent {
    tree_size: u64,
    data_len: u64,
    root_hash: Hash,
    note: Arc<Vec<u8>>,
    /// The head's record in `checkpoints.dat`, and the file's length after it.
    record_at: u64,
    records_end: u64,
}

impl Default for Extent {
    fn default() -> Self {
        Self {
            tree_size: 0,
            data_len: 0,
            root_hash: merkle::EMPTY_ROOT,
            note: Arc::default(),
            record_at: 0,
            records_end: 0,
        }
    }
}

pub struct SledStore {
    index: Index,
    /// The sealed tiers' background opener, joined before the store closes.
    warmer: Mutex<Warmer>,
    /// The live tier is sealed once it holds this many entries ([`tiers::TIER_ENTRIES`]).
    tier_entries: u64,
    mode: Mode,
    dir: PathBuf,
    config: RwLock<Option<LedgerConfig>>,
    entries: File,
    offsets: File,
    hashes: File,
    records: File,
    head_slots: File,
    committed: RwLock<Extent>,
    /// Buffers reused by every commit, and what the next commit needs to know.
    writer: Mutex<Writer>,
    /// Damage an open found and did not refuse: read-only, everything it found (the audit
    /// reports it); read-write, only what the store goes on without (a damaged `head.dat`
    /// slot, until a commit rewrites it), shown by `/v1/status`.
    findings: Mutex<Vec<StoreFinding>>,
    /// The private copy of the index a read-only open works on, removed on drop (after `db`,
    /// declared before it, is closed).
    _scratch: Option<ScratchDir>,
    /// The store's lock (`LOCK`), held while the store is open for writing: see [`take_lock`].
    _lock: Option<File>,
}

/// One tier of the index as [`SledStore::index_tiers`] shows it: its first seq, its end (none
/// for the live tier), whether it is open and whether it has its filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTier {
    pub first: u64,
    pub end: Option<u64>,
    pub open: bool,
    pub filtered: bool,
}

/// The index: opening on its own thread (a read-write open, until its first use) or open.
struct Index {
    open: OnceLock<Result<RwLock<Arc<Layers>>, IndexFailure>>,
    pending: Mutex<Option<PendingIndex>>,
}

/// The tiers in `dir` (module [`tiers`]), as the opener thread gives them: the newest opened
/// as the live one, the filters of the others read. For an index of the earlier, single-tier
/// layout, `index` is the live tier.
fn open_layers(dir: &Path) -> Result<Layers, StoreError> {
    let firsts = tiers::list_tiers(dir)?;
    let live_first = *firsts.last().expect("the tier from 0 is always listed");
    let path = tiers::tier_path(dir, live_first);
    let live = open_index(&path, sled_config)?;
    make_private(&path)?;
    let sealed = firsts.windows(2).map(|w| Arc::new(Sealed::on_disk(dir, w[0], w[1]))).collect();
    Ok(Layers { live, live_first, sealed })
}

/// What the first use of an index still opening does: wait for sled, then check the index's
/// mark against the log recovered meanwhile (of `tree_size` entries, batches at `positions`)
/// and bring it up to the head.
struct PendingIndex {
    opener: Opener,
    tree_size: u64,
    positions: Vec<(u64, u64, u64)>,
}

/// sled opening on its thread, open (waited for already: a recovery that repairs the log checks
/// the index's mark first), or failed (the open was refused then).
enum Opener {
    Thread(std::thread::JoinHandle<Result<Layers, StoreError>>),
    Open(Layers),
    Failed,
}

impl Opener {
    /// The index, waiting for its thread if it is still opening.
    fn wait(&mut self) -> Result<&Layers, StoreError> {
        if let Opener::Thread(_) = self {
            let Opener::Thread(thread) = std::mem::replace(self, Opener::Failed) else { unreachable!() };
            *self = Opener::Open(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        match self {
            Opener::Open(opened) => Ok(opened),
            _ => Err(StoreError::Io {
                action: "open the index",
                path: "index".into(),
                source: std::io::Error::other("its open failed before"),
            }),
        }
    }
}

/// Why the index could not be used: the error its first use met, kept for every later use.
#[derive(Debug, Clone)]
pub(crate) enum IndexFailure {
    Corrupt { what: &'static str, position: u64, detail: String },
    Other { kind: std::io::ErrorKind, message: String },
}

impl IndexFailure {
    pub(crate) fn of(e: &StoreError) -> Self {
        match e {
            StoreError::Corrupt { what, position, detail } => {
                Self::Corrupt { what, position: *position, detail: detail.clone() }
            }
            StoreError::Io { source, .. } => Self::Other { kind: source.kind(), message: super::error_chain(e) },
            e => Self::Other { kind: std::io::ErrorKind::Other, message: super::error_chain(e) },
        }
    }

    fn error(&self, index: &Path) -> StoreError {
        match self {
            Self::Corrupt { what, position, detail } => corrupt(what, *position, detail.clone()),
            Self::Other { kind, message } => StoreError::Io {
                action: "open the index",
                path: index.display().to_string(),
                source: std::io::Error::new(*kind, message.clone()),
            },
        }
    }
}

impl Index {
    fn ready(layers: Layers) -> Self {
        Self { open: OnceLock::from(Ok(RwLock::new(Arc::new(layers)))), pending: Mutex::new(None) }
    }

    /// An index opening on its own thread; the store's recovery says what its first use does.
    fn opening(dir: &Path) -> Self {
        let dir = dir.to_owned();
        let opener = std::thread::Builder::new()
            .name("zachetka-index-open".into())
            .spawn(move || open_layers(&dir))
            .expect("spawn the index's opener");
        let pending = PendingIndex { opener: Opener::Thread(opener), tree_size: 0, positions: Vec::new() };
        Self { open: OnceLock::new(), pending: Mutex::new(Some(pending)) }
    }
}

#[derive(Default)]
struct Writer {
    data: Vec<u8>,
    offsets: Vec<u8>,
    hashes: Vec<u8>,
    /// The `head.dat` slot the next commit writes (the one not holding the head).
    next_slot: u64,
    /// Entry bytes committed since the index was last flushed.
    unflushed: u64,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Index(e)
}

/// An I/O error on a store file: `fio("write entries.dat", e)` names the action and the file.
pub(crate) fn fio(what: &str, e: std::io::Error) -> StoreError {
    let (action, path) = what.split_once(' ').filter(|(a, _)| FILE_ACTIONS.contains(a)).unwrap_or(("access", what));
    let action = FILE_ACTIONS.iter().find(|a| **a == action).copied().unwrap_or("access");
    StoreError::Io { action, path: path.to_owned(), source: e }
}

const FILE_ACTIONS: [&str; 9] = ["access", "open", "read", "write", "sync", "truncate", "list", "remove", "lock"];

/// Stored hashes at most this many apart are read in one read (64 hashes: 2 KiB).
const HASH_READ_GAP: u64 = 64;

fn corrupt(what: &'static str, position: u64, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what, position, detail: detail.into() }
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

/// Opens a store file; `create` only for a new store (and for `head.dat`, a copy that may be
/// rebuilt), so an open of a damaged store that then refuses adds no file.
fn open_file(path: &Path, mode: Mode, create: bool) -> Result<File, StoreError> {
    let mut o = OpenOptions::new();
    o.read(true);
    if mode == Mode::ReadWrite {
        o.write(true).create(create).truncate(false);
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    }
    match o.open(path) {
        // A read-only open of a store with no such file yet sees an empty one.
        Err(e) if mode == Mode::ReadOnly && e.kind() == std::io::ErrorKind::NotFound => {
            File::open("/dev/null").map_err(|e| fio("open /dev/null", e))
        }
        other => other.map_err(|e| fio(&path.display().to_string(), e)),
    }
}

fn file_len(file: &File, name: &str) -> Result<u64, StoreError> {
    Ok(file.metadata().map_err(|e| fio(name, e))?.len())
}

/// One sled write of the index: key and value.
type IndexWrite = (Vec<u8>, Vec<u8>);

/// Opens a sled database, waiting up to ~5 s for its file lock. sled releases the lock of a
/// dropped database from its I/O threads a moment after the drop, so a process that closes and
/// reopens a store (a restart in place, the tests) may find it still held; another process that
/// really holds it makes this fail after the wait, with sled's "could not acquire lock" error.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let mut wait = std::time::Duration::from_millis(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match config.open() {
            Err(e) if is_lock_error(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// sled reports its lock as ErrorKind::Other with this text (sled 0.34 config.rs).
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(e) if e.to_string().starts_with("could not acquire lock"))
}

fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new().path(path).cache_capacity(256 << 20).mode(sled::Mode::HighThroughput)
}

/// A sealed index tier: written only if it must be brought up to its end (flushed then by
/// hand), so no flusher thread (a region's log has tens of tiers). Its cache is the live tier's:
/// the newest sealed tiers answer the heads of every stream not written since they were sealed,
/// and a 32 MiB cache there cost the read bench's p99 under appends (README, Figures). A cache
/// holds only what was read: tiers nobody reads cost nothing.
fn sealed_config(path: &Path) -> sled::Config {
    sled_config(path).flush_every_ms(None)
}

/// (subject, key, sealed record) of the personal-data store's earlier layout.
pub type LegacyPersonal = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The (subject, key, sealed record) pairs of the personal-data store's earlier layout, one sled
/// database in `dir` (for its migration in `personal.rs`; only the store modules know sled).
pub fn legacy_personal_records(dir: &Path) -> Result<Vec<LegacyPersonal>, String> {
    let db = open_sled(&sled::Config::new().path(dir)).map_err(|e| e.to_string())?;
    let keys = db.open_tree("keys").map_err(|e| e.to_string())?;
    let records = db.open_tree("records").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for item in keys.iter() {
        let (subject, key) = item.map_err(|e| e.to_string())?;
        if let Some(stored) = records.get(&subject).map_err(|e| e.to_string())? {
            out.push((subject.to_vec(), key.to_vec(), stored.to_vec()));
        }
    }
    Ok(out)
}

/// The files of a store directory (for tests that play the attacker, and for operators).
#[derive(Debug, Clone)]
pub struct StorePaths {
    pub config: PathBuf,
    pub entries: PathBuf,
    pub offsets: PathBuf,
    pub hashes: PathBuf,
    pub checkpoints: PathBuf,
    pub head: PathBuf,
    pub index: PathBuf,
}

impl StorePaths {
    pub fn of(dir: &Path) -> Self {
        Self {
            config: dir.join("ledger.json"),
            entries: dir.join("entries.dat"),
            offsets: dir.join("offsets.dat"),
            hashes: dir.join("hashes.dat"),
            checkpoints: dir.join("checkpoints.dat"),
            head: dir.join("head.dat"),
            index: dir.join("index"),
        }
    }

    /// Every file of the log (not the index), with its name.
    pub fn log_files(&self) -> [(&'static str, &Path); 6] {
        [
            ("ledger.json", &self.config),
            ("entries.dat", &self.entries),
            ("offsets.dat", &self.offsets),
            ("hashes.dat", &self.hashes),
            ("checkpoints.dat", &self.checkpoints),
            ("head.dat", &self.head),
        ]
    }
}

/// `ledger.json`: the config and the SHA-256 of its serialized form.
#[derive(serde::Serialize, serde::Deserialize)]
struct ConfigFile {
    config: LedgerConfig,
    sha256: String,
}

fn config_digest(config: &LedgerConfig) -> String {
    let bytes = serde_json::to_vec(config).expect("config serializes");
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn read_config(path: &Path) -> Result<Option<LedgerConfig>, StoreError> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(|e| fio("read ledger.json", e))?,
    };
    let file: ConfigFile =
        serde_json::from_slice(&bytes).map_err(|e| corrupt("config", 0, format!("ledger.json does not parse: {e}")))?;
    if config_digest(&file.config) != file.sha256 {
        return Err(corrupt("config", 0, "ledger.json: the checksum does not match the config"));
    }
    Ok(Some(file.config))
}

/// Syncs a directory, so a file created or renamed in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fio(&dir.display().to_string(), e))
}

/// The records of `checkpoints.dat` from some offset on.
#[derive(Debug, Default)]
struct Scan {
    /// (offset, first seq, tree size) of every whole record read.
    positions: Vec<(u64, u64, u64)>,
    /// The last whole record read, with its offset.
    last: Option<Slot>,
    /// Where the whole records end.
    end: u64,
    file_len: u64,
    /// The first frame that is not a whole record: its offset and why. With resync, the last
    /// such frame, and only if no whole record follows it.
    bad: Option<(u64, String)>,
    /// With resync: damaged frames that whole records follow (offset, why).
    damaged: Vec<(u64, String)>,
    /// Whether a whole record stands anywhere after `bad` (then it is not a tear).
    good_after_bad: bool,
    /// Whether `bad` is a whole frame (a non-zero length and every byte it claims present) that
    /// fails its checksum or decoding. No crash leaves one: the frame is one write, a process
    /// dies between writes, not inside one, and a file a power cut extended reads as zeros (a
    /// zero length). So it is damage to a record that was written whole, not a tear.
    bad_whole: bool,
}

/// Scans `checkpoints.dat` from `from`. Without `resync` it stops at the first frame that is
/// not a whole record; with it (the audit), it looks for the next whole record after such a
/// frame and goes on, listing the damage.
fn scan_records(file: &File, from: u64, resync: bool) -> Result<Scan, StoreError> {
    let mut scan = scan_from(file, from)?;
    while resync && scan.good_after_bad {
        let (at, why) = scan.bad.take().expect("good after bad");
        let window = (scan.file_len - at).min(3 * SLOT_LEN as u64) as usize;
        let mut tail = vec![0u8; window];
        file.read_exact_at(&mut tail, at).map_err(|e| fio("read checkpoints.dat", e))?;
        let next = (1..tail.len())
            .find(|&i| unframe(&tail[i..], RECORD_BODY_MAX).and_then(|(b, _)| CommitRecord::decode_body(b)).is_some());
        let Some(next) = next else {
            scan.damaged.push((at, format!("{why}; no whole record in the {window} bytes after it")));
            break;
        };
        scan.damaged.push((at, why));
        let rest = scan_from(file, at + next as u64)?;
        scan.positions.extend(rest.positions);
        scan.last = rest.last.or(scan.last);
        scan.end = rest.end;
        scan.bad = rest.bad;
        scan.good_after_bad = rest.good_after_bad;
        scan.bad_whole = rest.bad_whole;
    }
    Ok(scan)
}

fn scan_from(file: &File, from: u64) -> Result<Scan, StoreError> {
    let file_len = file_len(file, "checkpoints.dat")?;
    let mut scan = Scan { end: from, file_len, ..Default::default() };
    if from > file_len {
        scan.bad = Some((file_len, format!("the index expects records up to offset {from}")));
        return Ok(scan);
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(from)).map_err(|e| fio("read checkpoints.dat", e))?;
    let mut at = from;
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                if at < file_len {
                    scan.bad = Some((at, "a record cut short".into()));
                }
                break;
            }
            Err(e) => return Err(fio("read checkpoints.dat", e)),
        }
        let n = u32::from_be_bytes(len) as usize;
        let why = if n > RECORD_BODY_MAX {
            Some(format!("a record claims {n} bytes"))
        } else {
            buf.clear();
            buf.extend_from_slice(&len);
            buf.resize(4 + n + CHECKSUM_LEN, 0);
            match reader.read_exact(&mut buf[4..]) {
                Ok(()) => match unframe(&buf, RECORD_BODY_MAX).and_then(|(b, _)| CommitRecord::decode_body(b)) {
                    Some(record) => {
                        scan.positions.push((at, record.first_seq, record.head.tree_size));
                        scan.last = Some(Slot { offset: at, record });
                        at += buf.len() as u64;
                        scan.end = at;
                        continue;
                    }
                    None => {
                        scan.bad_whole = n > 0;
                        Some("the record's checksum does not hold".to_owned())
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Some("a record cut short".to_owned()),
                Err(e) => return Err(fio("read checkpoints.dat", e)),
            }
        };
        scan.bad = why.map(|w| (at, w));
        break;
    }
    if let Some((bad_at, _)) = scan.bad {
        // A tear is the last thing in the file: no whole record may follow the bad one. Only a
        // record's worth of bytes is looked through: more than that after a bad frame is
        // corruption anyway.
        let rest = file_len - bad_at;
        scan.good_after_bad = rest > SLOT_LEN as u64 || {
            let mut tail = vec![0u8; rest as usize];
            file.read_exact_at(&mut tail, bad_at).map_err(|e| fio("read checkpoints.dat", e))?;
            (1..tail.len())
                .any(|i| unframe(&tail[i..], RECORD_BODY_MAX).and_then(|(b, _)| CommitRecord::decode_body(b)).is_some())
        };
    }
    Ok(scan)
}

/// What recovery decided the head is, and what (in read-write mode) it must write to get there.
#[derive(Debug, Default)]
struct Plan {
    head: Option<Slot>,
    /// `checkpoints.dat` is cut back to this length (a torn final record).
    truncate_records_to: Option<u64>,
    /// The head's record is written back from `head.dat` at this offset.
    restore: bool,
}

/// Decides the head from the records of `checkpoints.dat` (every one, scanned from its start)
/// and the newest `head.dat` slot. Pure, so every case is a test.
fn plan_head(scan: &Scan, slot: Option<&Slot>) -> Result<Plan, StoreError> {
    let last = scan.last.clone();
    let size = last.as_ref().map(|s| s.record.head.tree_size).unwrap_or(0);
    let next_is = |s: &Slot, at: u64| s.offset == at && s.record.first_seq == size && s.record.head.tree_size > size;
    match (&scan.bad, slot) {
        (Some((at, why)), _) if scan.good_after_bad => {
            Err(corrupt("checkpoints", *at, format!("checkpoints.dat at offset {at}: {why}, and whole records follow")))
        }
        (Some((at, _)), Some(s)) if s.record.head.tree_size > size => {
            let end = at + s.record.frame().len() as u64;
            if !next_is(s, *at) {
                Err(missing_slot_record(s, *at))
            } else if scan.file_len > end {
                // A tear of the head's record ends within it; bytes after it are a later record,
                // written only once this one was durable in both files: that record is damaged
                // too (with its copy in head.dat), and it was committed. Never dropped.
                Err(corrupt(
                    "checkpoints",
                    end,
                    format!(
                        "checkpoints.dat holds {} bytes after the record at offset {at} that head.dat restores (tree \
                         size {}): a later committed record, damaged, whose copy in head.dat is damaged too",
                        scan.file_len - end,
                        s.record.head.tree_size
                    ),
                ))
            } else {
                Ok(Plan { head: Some(s.clone()), truncate_records_to: Some(*at), restore: true })
            }
        }
        (Some((at, why)), _) if scan.bad_whole => Err(corrupt(
            "checkpoints",
            *at,
            format!(
                "checkpoints.dat at offset {at}: {why}, in a record written whole (not a tear), and head.dat does not hold it"
            ),
        )),
        (Some((at, _)), _) => Ok(Plan { head: last, truncate_records_to: Some(*at), restore: false }),
        (None, Some(s)) if s.record.head.tree_size > size => {
            if next_is(s, scan.end) {
                Ok(Plan { head: Some(s.clone()), truncate_records_to: None, restore: true })
            } else {
                Err(missing_slot_record(s, scan.end))
            }
        }
        (None, Some(s)) if s.record.head.tree_size == size && last.as_ref().map(|l| &l.record) != Some(&s.record) => {
            Err(corrupt(
                "checkpoints",
                s.offset,
                format!("head.dat and checkpoints.dat hold different checkpoints for tree size {size}"),
            ))
        }
        (None, _) => Ok(Plan { head: last, truncate_records_to: None, restore: false }),
    }
}

fn missing_slot_record(s: &Slot, records_end: u64) -> StoreError {
    corrupt(
        "checkpoints",
        records_end,
        format!(
            "head.dat holds the checkpoint for tree size {} (record at offset {}), which checkpoints.dat \
             (whole records up to offset {records_end}) does not",
            s.record.head.tree_size, s.offset
        ),
    )
}

impl SledStore {
    /// Opens (or creates) the store in `dir` to serve and append, and runs recovery (module
    /// docs). Damage is refused with its file and position, and nothing is changed then.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let store = Self::open_early(dir)?;
        store.ready()?;
        Ok(store)
    }

    /// [`SledStore::open`] that returns once the log's files are recovered, while the index
    /// opens on its own thread (module docs): for a caller with work of its own to do meanwhile
    /// (the ledger loads its snapshots), which then calls [`Store::ready`]. Until then damage
    /// the index's catch-up finds (an entry beyond its mark that does not parse, a mark beyond
    /// the log) is not yet refused; every use of the index waits for it and fails with it.
    pub fn open_early(dir: &Path) -> Result<Self, StoreError> {
        Self::open_early_with(dir, tiers::TIER_ENTRIES)
    }

    /// [`SledStore::open_early`] with the index's live tier sealed once it holds `tier_entries`
    /// entries (module [`tiers`]; tests seal tiers of a few entries).
    pub fn open_early_with(dir: &Path, tier_entries: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| fio(&dir.display().to_string(), e))?;
        let lock = take_lock(dir)?;
        Self::open_locked(dir, Mode::ReadWrite, Some(lock), tier_entries.max(1))
    }

    /// Opens the store in `dir` for an audit: no byte in `dir` changes, a torn tail is not
    /// dropped but left unserved, damage is listed in [`Store::findings`] instead of refused, and
    /// the index is a private copy brought up to the head from the entries.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        if !dir.is_dir() {
            return Err(fio(&dir.display().to_string(), std::io::ErrorKind::NotFound.into()));
        }
        Self::open_locked(dir, Mode::ReadOnly, None, tiers::TIER_ENTRIES)
    }

    fn open_locked(dir: &Path, mode: Mode, lock: Option<File>, tier_entries: u64) -> Result<Self, StoreError> {
        let paths = StorePaths::of(dir);
        if dir.join("journal.dat").exists() {
            return Err(StoreError::Incompatible(format!(
                "{} is a store of an earlier format (journal.dat); this build cannot open it",
                dir.display()
            )));
        }
        let mut findings = Vec::new();
        let (index, scratch) = match mode {
            Mode::ReadWrite => {
                // The log's files are 0600, sled's own 0644: a private directory keeps the index
                // (event ids, streams, learners' ids) from other local users too.
                make_private(dir)?;
                (Index::opening(dir), None)
            }
            Mode::ReadOnly => {
                // Removed when dropped: on a refusal, an error or a panic below as on a clean close.
                let scratch = ScratchDir::create()?;
                let layers = match copy_tiers(dir, scratch.path()) {
                    Ok(layers) => layers,
                    Err(e) => {
                        findings.push(StoreFinding {
                            file: "index".into(),
                            offset: 0,
                            tree_size: None,
                            code: "index_unreadable",
                            message: format!(
                                "the index cannot be read ({e}); the audit indexed every entry afresh, and a \
                                 server's open rebuilds it from the log"
                            ),
                        });
                        let fresh = sled_config(&scratch.path().join("fresh")).open().map_err(io)?;
                        Layers { live: fresh, live_first: 0, sealed: Vec::new() }
                    }
                };
                (Index::ready(layers), Some(scratch))
            }
        };
        let config = match read_config(&paths.config) {
            Ok(c) => c,
            Err(e) if mode == Mode::ReadOnly => {
                findings.push(StoreFinding {
                    file: "ledger.json".into(),
                    offset: 0,
                    tree_size: None,
                    code: "config_damaged",
                    message: e.to_string(),
                });
                None
            }
            Err(e) => return Err(e),
        };
        let fresh = !paths.config.exists() && !paths.checkpoints.exists();
        let mut store = Self {
            index,
            warmer: Mutex::new(Warmer::new()),
            tier_entries,
            mode,
            dir: dir.to_owned(),
            config: RwLock::new(config),
            entries: open_file(&paths.entries, mode, fresh)?,
            offsets: open_file(&paths.offsets, mode, fresh)?,
            hashes: open_file(&paths.hashes, mode, fresh)?,
            records: open_file(&paths.checkpoints, mode, fresh)?,
            head_slots: open_file(&paths.head, mode, true)?,
            committed: RwLock::new(Extent::default()),
            writer: Default::default(),
            findings: Mutex::new(findings),
            _scratch: scratch,
            _lock: lock,
        };
        if let Err(e) = store.recover() {
            match (mode, e) {
                (Mode::ReadOnly, StoreError::Corrupt { what, position, detail }) => {
                    store.findings_mut().push(StoreFinding {
                        file: file_of(what).into(),
                        offset: position,
                        tree_size: None,
                        code: "store_damaged",
                        message: format!("corrupt {what} at {position}: {detail}"),
                    })
                }
                (_, e) => return Err(e),
            }
        }
        Ok(store)
    }

    pub fn paths(&self) -> StorePaths {
        StorePaths::of(&self.dir)
    }

    /// Where entry `seq` lies in `entries.dat`: (offset, length).
    pub fn entry_span(&self, seq: u64) -> Result<(u64, u64), StoreError> {
        let ext = self.extent();
        if seq >= ext.tree_size {
            return Err(corrupt("entry", seq, "beyond the head"));
        }
        let offs = self.read_offsets(seq, 1, &ext)?;
        Ok((offs[0], offs[1] - offs[0]))
    }

    /// Rebuilds the index of the store in `dir` from the log files: the old index is moved aside
    /// (to `index.replaced-<unix seconds>`, removed once the new one is built), and a new one is
    /// built from every entry. For an index an operator no longer trusts; one that cannot be
    /// read at all is rebuilt by [`SledStore::open`] by itself.
    pub fn rebuild_index(dir: &Path) -> Result<Self, StoreError> {
        // The lock first: the index of a store another process has open is never moved.
        let lock = take_lock(dir)?;
        let mut aside = Vec::new();
        for first in tiers::list_tiers(dir)? {
            aside.extend(set_index_aside(&tiers::tier_path(dir, first), "replaced")?);
        }
        let store = Self::open_locked(dir, Mode::ReadWrite, Some(lock), tiers::TIER_ENTRIES)?;
        // The new index is built by its first use: now, before the old one goes; it is sealed
        // whole if it holds a tier's worth, and its filter built before the rebuild returns.
        store.ready()?;
        store.wait_for_index_tiers();
        for aside in aside {
            std::fs::remove_dir_all(&aside).map_err(|e| fio(&aside.display().to_string(), e))?;
        }
        Ok(store)
    }

    /// Waits until every sealed index tier is open and has its filter (the background opener
    /// done): for tests and benchmarks that measure a store at rest.
    pub fn wait_for_index_tiers(&self) {
        let threads = std::mem::take(&mut self.warmer.lock().expect("warmer lock").threads);
        for t in threads {
            drop(t.join());
        }
    }

    /// The index's tiers, oldest first, the live one last: for tests.
    pub fn index_tiers(&self) -> Result<Vec<IndexTier>, StoreError> {
        let layers = self.layers()?;
        let sealed = layers.sealed.iter().map(|t| IndexTier {
            first: t.first,
            end: Some(t.end),
            open: t.db.get().is_some(),
            filtered: t.filter.get().is_some(),
        });
        let live = IndexTier { first: layers.live_first, end: None, open: true, filtered: false };
        Ok(sealed.chain(std::iter::once(live)).collect())
    }

    fn extent(&self) -> Extent {
        self.committed.read().expect("extent lock").clone()
    }

    /// Makes the index durable up to the committed head. Runs on its own every
    /// [`INDEX_FLUSH_BYTES`] of entries, and when the store is dropped.
    pub fn flush_index(&self) -> Result<(), StoreError> {
        self.layers()?;
        let mut w = self.writer.lock().expect("one writer at a time");
        // Taken under the writer's lock: a commit seals the live tier only while holding it.
        self.flush_index_locked(&self.layers()?.live, &mut w)
    }

    fn flush_index_locked(&self, db: &sled::Db, w: &mut Writer) -> Result<(), StoreError> {
        let ext = self.extent();
        if ext.tree_size > 0 {
            let mark = IndexMark {
                head: TreeHead { tree_size: ext.tree_size, root_hash: ext.root_hash },
                data_len: ext.data_len,
                record_at: ext.record_at,
                records_end: ext.records_end,
            };
            db.insert(MARK_KEY, &mark.encode()[..]).map_err(io)?;
        }
        db.flush().map_err(io)?;
        w.unflushed = 0;
        Ok(())
    }

    /// Offsets of entries `from..from+n`, plus the end of the last one (n + 1 values).
    fn read_offsets(&self, from: u64, n: u64, ext: &Extent) -> Result<Vec<u64>, StoreError> {
        let mut buf = vec![0u8; (n * 8) as usize];
        self.offsets.read_exact_at(&mut buf, from * 8).map_err(|e| fio("read offsets.dat", e))?;
        let mut out: Vec<u64> =
            buf.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes"))).collect();
        out.push(if from + n == ext.tree_size {
            ext.data_len
        } else {
            let mut b = [0u8; 8];
            self.offsets.read_exact_at(&mut b, (from + n) * 8).map_err(|e| fio("read offsets.dat", e))?;
            u64::from_be_bytes(b)
        });
        Ok(out)
    }

    fn findings_mut(&mut self) -> &mut Vec<StoreFinding> {
        self.findings.get_mut().expect("findings lock")
    }

    /// The newest whole `head.dat` slot, and which slot it is. A slot that holds bytes but no
    /// whole record (never a crash's doing: a slot is one write, and a file a power cut extended
    /// reads as zeros) is damage: the store goes on with the other copy of its commit point, and
    /// says so (a finding for the audit; for a server a warning in its log and in `/v1/status`,
    /// until the next commit, which writes that slot, rewrites it).
    fn newest_slot(&mut self) -> Result<Option<(u64, Slot)>, StoreError> {
        let mut bytes = Vec::new();
        (&self.head_slots).take(2 * SLOT_LEN as u64).read_to_end(&mut bytes).map_err(|e| fio("read head.dat", e))?;
        let mut newest: Option<(u64, Slot)> = None;
        for (i, b) in bytes.chunks(SLOT_LEN).enumerate() {
            let i = i as u64;
            match Slot::decode(b) {
                Some(s) if newest.as_ref().is_none_or(|(_, n)| s.record.head.tree_size > n.record.head.tree_size) => {
                    newest = Some((i, s));
                }
                Some(_) => {}
                None if b.iter().all(|&x| x == 0) => {}
                None => {
                    let finding = head_slot_damaged(i);
                    if self.mode == Mode::ReadWrite {
                        tracing::warn!(file = "head.dat", offset = finding.offset, "{}", finding.message);
                    }
                    self.findings_mut().push(finding);
                }
            }
        }
        // The first commit writes slot 0 and each later one the other slot, so once the newest
        // record is not the log's first, both slots were written: one missing (the file cut, or
        // a slot zeroed) is the same loss as one damaged.
        if let Some((i, s)) = &newest {
            let other = 1 - i;
            let present = bytes.chunks(SLOT_LEN).nth(other as usize).is_some_and(|b| b.len() == SLOT_LEN);
            let zeroed = bytes.chunks(SLOT_LEN).nth(other as usize).is_some_and(|b| b.iter().all(|&x| x == 0));
            if s.offset > 0 && (!present || zeroed) {
                let finding = head_slot_damaged(other);
                if self.mode == Mode::ReadWrite {
                    tracing::warn!(file = "head.dat", offset = finding.offset, "{}", finding.message);
                }
                self.findings_mut().push(finding);
            }
        }
        Ok(newest)
    }

    /// The index's mark, if it names a record that `checkpoints.dat` holds as the mark says;
    /// otherwise the index is re-derived from the first record.
    fn index_mark(&self, db: &sled::Db) -> Result<Option<(IndexMark, Slot)>, StoreError> {
        let Some(mark) = db.get(MARK_KEY).map_err(io)? else { return Ok(None) };
        let mark = IndexMark::decode(&mark);
        let record = mark.and_then(|m| {
            let len = m.records_end.checked_sub(m.record_at)? as usize;
            if len > SLOT_LEN {
                return None;
            }
            let mut b = vec![0u8; len];
            self.records.read_exact_at(&mut b, m.record_at).ok()?;
            let (body, n) = unframe(&b, RECORD_BODY_MAX)?;
            let record = CommitRecord::decode_body(body).filter(|_| n == len)?;
            (record.head == m.head && record.data_len == m.data_len).then_some(Slot { offset: m.record_at, record })
        });
        match (mark, record) {
            (Some(m), Some(s)) => Ok(Some((m, s))),
            (m, _) => {
                tracing::warn!(
                    mark = ?m.map(|m| m.head.tree_size),
                    "the index's mark does not match checkpoints.dat; re-indexing every entry"
                );
                Ok(None)
            }
        }
    }

    /// Recovery (module docs). In read-only mode nothing is written: the torn tail stays on
    /// disk, unserved.
    fn recover(&mut self) -> Result<(), StoreError> {
        // The audit's copy of the index is at hand; a server's is opening, and its mark is
        // checked when it is first used ([`SledStore::finish_index`]).
        let (mut marked, mut live_first) = match self.mode {
            Mode::ReadOnly => {
                let layers = self.layers()?;
                (self.index_mark(&layers.live)?, layers.live_first)
            }
            Mode::ReadWrite => (None, 0),
        };
        // Every record's frame is checked, also those the index has seen: one record per batch
        // (~10,000 records, ~1 MB, for 1.35M entries: milliseconds), and a damaged record before
        // good ones is refused here rather than found by a reader asking for its checkpoint.
        // The audit goes on past damage (resync); a server refuses it.
        let mut scan = scan_records(&self.records, 0, self.mode == Mode::ReadOnly)?;
        for (offset, why) in &scan.damaged {
            // The damaged record's batch ends where the next whole record's begins.
            let next = scan.positions.iter().find(|p| p.0 > *offset).map(|p| p.1);
            self.findings_mut().push(StoreFinding {
                file: "checkpoints.dat".into(),
                offset: *offset,
                tree_size: next,
                code: "checkpoint_record_damaged",
                message: format!("a record of checkpoints.dat is damaged: {why}"),
            });
        }
        let slot = self.newest_slot()?;
        let plan = plan_head(&scan, slot.as_ref().map(|(_, s)| s))?;
        if let (Some((at, why)), true, Mode::ReadOnly) = (&scan.bad, plan.restore, self.mode) {
            self.findings_mut().push(StoreFinding {
                file: "checkpoints.dat".into(),
                offset: *at,
                tree_size: plan.head.as_ref().map(|s| s.record.head.tree_size),
                code: "checkpoint_record_damaged",
                message: format!("the last record of checkpoints.dat is damaged ({why}); head.dat holds it whole, and an open writes it back"),
            });
        }
        let mut head = plan.head.clone();
        let mut size = head.as_ref().map(|s| s.record.head.tree_size).unwrap_or(0);
        if let Some((m, _)) = &marked {
            if m.head.tree_size > size {
                return Err(corrupt(
                    "checkpoints",
                    size,
                    format!("the index was flushed at tree size {}, the log holds {size}", m.head.tree_size),
                ));
            }
        }
        if live_first > size {
            return Err(tier_beyond(live_first, size));
        }
        if size > 0
            && self.config.read().expect("config lock").is_none()
            && !self.findings_mut().iter().any(|f| f.file == "ledger.json")
        {
            return Err(corrupt("config", 0, format!("ledger.json is missing, and the log holds {size} entries")));
        }
        let mut data_len = head.as_ref().map(|s| s.record.data_len).unwrap_or(0);
        let lens = [
            file_len(&self.entries, "entries.dat")?,
            file_len(&self.offsets, "offsets.dat")?,
            file_len(&self.hashes, "hashes.dat")?,
        ];
        let needs = |size: u64, data_len: u64| [data_len, size * 8, merkle::stored_hash_count(size) * 32];
        let short = ["entries.dat", "offsets.dat", "hashes.dat"]
            .into_iter()
            .zip(lens.into_iter().zip(needs(size, data_len)))
            .find(|(_, (have, need))| have < need);
        let mut salvaged = false;
        if let (Some((name, (have, need))), Mode::ReadOnly) = (short, self.mode) {
            // A file cut below the head (a partial copy, a full disk): refused by a server. The
            // audit names the cut and still checks the part of the log the files hold whole, up
            // to the newest checkpoint whose entries, offsets and hashes are all there.
            let fits = |size: u64, data_len: u64| needs(size, data_len).iter().zip(lens).all(|(n, h)| *n <= h);
            let whole = (scan.positions.iter().rev()).filter(|p| p.2 < size).find_map(|&(offset, _, _)| {
                self.read_slot(offset).filter(|s| fits(s.record.head.tree_size, s.record.data_len))
            });
            let readable = whole.as_ref().map(|s| s.record.head.tree_size).unwrap_or(0);
            self.findings_mut().push(StoreFinding {
                file: name.into(),
                offset: have,
                tree_size: None,
                code: "store_damaged",
                message: format!(
                    "corrupt {name} at {have}: the file ends at byte {have}, the head (tree size {size}) needs {need} \
                     bytes; the audit checks the log up to tree size {readable}, the newest checkpoint the files hold \
                     whole, and not the {} entries after it",
                    size - readable
                ),
            });
            scan.positions.retain(|p| p.2 <= readable);
            head = whole;
            size = readable;
            data_len = head.as_ref().map(|s| s.record.data_len).unwrap_or(0);
            salvaged = true;
            if marked.as_ref().is_some_and(|(m, _)| m.head.tree_size > size) || live_first > size {
                // The private copy of the index holds entries beyond what is read: a fresh one.
                let scratch = self._scratch.as_ref().expect("a read-only store has a scratch copy").path();
                let fresh = sled_config(&scratch.join("salvaged")).open().map_err(io)?;
                self.index = Index::ready(Layers { live: fresh, live_first: 0, sealed: Vec::new() });
                marked = None;
                live_first = 0;
            }
        }
        let want = [
            (&self.entries, "entries.dat", data_len),
            (&self.offsets, "offsets.dat", size * 8),
            (&self.hashes, "hashes.dat", merkle::stored_hash_count(size) * 32),
        ];
        let mut tails = Vec::new();
        for (file, name, len) in want {
            let have = file_len(file, name)?;
            if salvaged {
                continue;
            }
            if have < len {
                return Err(corrupt(
                    name,
                    have,
                    format!("the file ends at byte {have}, the head (tree size {size}) needs {len} bytes"),
                ));
            }
            tails.push((file, name, len, have - len));
        }
        // A torn batch writes at most BATCH_LEN_MAX offsets beyond the head; more was committed
        // by checkpoints that are gone: refuse rather than drop them.
        // (Not checked when the audit reads only a part of the log: the rest is beyond it.)
        let torn_entries = tails.get(1).map_or(0, |t| t.3.div_ceil(8));
        let torn_bytes = tails.first().map_or(0, |t| t.3);
        if torn_entries > BATCH_LEN_MAX || torn_bytes > BATCH_LEN_MAX * crate::event::ENTRY_BYTES_MAX as u64 {
            return Err(corrupt(
                "offsets.dat",
                size * 8,
                format!(
                    "the file holds {torn_entries} entries beyond the head at tree size {size} (and entries.dat \
                     {torn_bytes} bytes), more than one batch writes; their checkpoints are missing"
                ),
            ));
        }
        let records_end = match (&plan.truncate_records_to, plan.restore) {
            _ if salvaged => head.as_ref().map_or(0, |s| s.offset + s.record.frame().len() as u64),
            (_, true) => head.as_ref().map(|s| s.offset + s.record.frame().len() as u64).expect("restore has a head"),
            (Some(at), false) => *at,
            (None, false) => scan.end,
        };
        let repairs = plan.truncate_records_to.is_some()
            || plan.restore
            || tails.iter().any(|t| t.3 > 0)
            || (slot.is_none() && plan.head.is_some());
        if self.mode == Mode::ReadWrite && repairs {
            // The index's mark is evidence of commits: one beyond this head means the log lost
            // committed entries, refused before anything is changed. So a recovery that repairs
            // (after a crash) waits for the index here; a clean open does not.
            let mut pending = self.index.pending.lock().expect("index lock");
            let pending = pending.as_mut().expect("a read-write open's index is opening");
            let opened = pending.opener.wait()?;
            self.live_within(&opened.live, opened.live_first, size)?;
        }
        if self.mode == Mode::ReadWrite {
            if let Some(at) = plan.truncate_records_to {
                tracing::warn!(
                    offset = at,
                    dropped_bytes = scan.file_len - at,
                    "dropping a torn record of checkpoints.dat"
                );
                self.records.set_len(at).map_err(|e| fio("truncate checkpoints.dat", e))?;
            }
            if plan.restore {
                let s = head.as_ref().expect("restore has a head");
                tracing::warn!(tree_size = size, "writing the head's record back into checkpoints.dat from head.dat");
                self.records.write_all_at(&s.record.frame(), s.offset).map_err(|e| fio("write checkpoints.dat", e))?;
            }
            if plan.truncate_records_to.is_some() || plan.restore {
                self.records.sync_all().map_err(|e| fio("sync checkpoints.dat", e))?;
            }
            for (file, name, len, extra) in tails {
                if extra > 0 {
                    tracing::warn!(
                        file = name,
                        dropped_bytes = extra,
                        tree_size = size,
                        "dropping a torn batch beyond the head"
                    );
                    file.set_len(len).map_err(|e| fio(name, e))?;
                    file.sync_all().map_err(|e| fio(name, e))?;
                }
            }
        }
        if plan.restore && !salvaged {
            let s = head.as_ref().expect("restore has a head");
            scan.positions.push((s.offset, s.record.first_seq, s.record.head.tree_size));
        }
        let root_hash = head.as_ref().map(|s| s.record.head.root_hash).unwrap_or(merkle::EMPTY_ROOT);
        let (record_at, note) = head.map(|s| (s.offset, s.record.note)).unwrap_or_default();
        *self.committed.write().expect("extent lock") =
            Extent { tree_size: size, data_len, root_hash, note: Arc::new(note), record_at, records_end };
        let mut next_slot = slot.as_ref().map(|(i, _)| 1 - i).unwrap_or(0);
        if let (None, Some(s), Mode::ReadWrite) = (&slot, &plan.head, self.mode) {
            // head.dat holds no copy of the commit point at all (lost or emptied): the head's
            // record, checked above, goes back into slot 0 now, so the next commit writes slot 1
            // and both copies stand again (a later open then knows both were written).
            tracing::warn!(
                tree_size = size,
                "head.dat holds no copy of the head; writing it back from checkpoints.dat"
            );
            self.head_slots.write_all_at(&s.encode(), 0).map_err(|e| fio("write head.dat", e))?;
            self.head_slots.sync_all().map_err(|e| fio("sync head.dat", e))?;
            next_slot = 1;
        }
        self.writer.get_mut().expect("writer lock").next_slot = next_slot;
        if size > 0 && self.mode == Mode::ReadWrite {
            self.check_head(size)?;
        }
        match self.mode {
            Mode::ReadOnly => {
                let indexed = marked.map(|(m, _)| m.head.tree_size).unwrap_or(0).max(live_first);
                self.reindex(&self.layers()?.live, indexed, &scan.positions, u64::MAX)?;
            }
            Mode::ReadWrite => {
                let mut pending = self.index.pending.lock().expect("index lock");
                let pending = pending.as_mut().expect("a read-write open's index is opening");
                pending.tree_size = size;
                pending.positions = scan.positions;
            }
        }
        Ok(())
    }

    /// The index, once open and its live tier up to the head (module docs: the first use waits
    /// for it).
    fn layers_lock(&self) -> Result<&RwLock<Arc<Layers>>, StoreError> {
        match self.index.open.get_or_init(|| self.finish_index().map_err(|e| IndexFailure::of(&e))) {
            Ok(layers) => Ok(layers),
            Err(failure) => Err(failure.error(&self.paths().index)),
        }
    }

    /// The index's tiers as they are now; a reader keeps them while the live tier is sealed.
    fn layers(&self) -> Result<Arc<Layers>, StoreError> {
        Ok(self.layers_lock()?.read().expect("layers lock").clone())
    }

    /// The committed tree size, then the index: everything below that size is in these tiers
    /// (a seal after the size was read only moves the live tier among the sealed ones).
    fn view(&self) -> Result<(u64, Arc<Layers>), StoreError> {
        let size = self.committed.read().expect("extent lock").tree_size;
        Ok((size, self.layers()?))
    }

    /// The first use of an index opened on its own thread: waits for it, refuses an index that
    /// has seen more than the log holds, brings its live tier up to the head, and starts opening
    /// the sealed tiers in the background.
    fn finish_index(&self) -> Result<RwLock<Arc<Layers>>, StoreError> {
        let PendingIndex { mut opener, tree_size, positions } =
            self.index.pending.lock().expect("index lock").take().expect("an index not open is opening");
        opener.wait()?;
        let Opener::Open(Layers { mut live, mut live_first, mut sealed }) = opener else { unreachable!("waited for") };
        let mut indexed = self.live_within(&live, live_first, tree_size)?;
        let mut warm = sealed.clone();
        // A long catch-up (a rebuild, an index lost) seals tiers as it goes, each at the first
        // batch boundary where it holds a tier's worth, as commits seal them.
        let boundaries: Vec<u64> = positions.iter().map(|p| p.2).filter(|&size| size > indexed).collect();
        for size in boundaries {
            if size - live_first >= self.tier_entries {
                self.reindex(&live, indexed, &positions, size)?;
                let next = self.new_tier(size)?;
                let old = tiers::tier_path(&self.dir, live_first);
                let tier = Arc::new(Sealed::just_sealed(old, live_first, size, std::mem::replace(&mut live, next)));
                tracing::info!(first = live_first, end = size, "sealed an index tier while catching up");
                sealed.push(tier.clone());
                warm.push(tier);
                (live_first, indexed) = (size, size);
            }
        }
        self.reindex(&live, indexed, &positions, u64::MAX)?;
        let mut layers = Layers { live, live_first, sealed };
        if self.live_is_full(&layers) {
            let mut w = self.writer.lock().expect("one writer at a time");
            match self.seal(&layers, &mut w) {
                Ok((sealed, tier)) => {
                    layers = sealed;
                    warm.push(tier);
                }
                Err(e) => tracing::error!(error = %e, "couldn't seal the live index tier; the next commit tries again"),
            }
        }
        self.warmer.lock().expect("warmer lock").warm(warm);
        Ok(RwLock::new(Arc::new(layers)))
    }

    /// How far the live tier is durable (its mark, or its first seq without one), refusing an
    /// index that has seen more than the log's `tree_size` entries.
    fn live_within(&self, live: &sled::Db, live_first: u64, tree_size: u64) -> Result<u64, StoreError> {
        if live_first > tree_size {
            return Err(tier_beyond(live_first, tree_size));
        }
        Ok(self.mark_within(live, tree_size)?.max(live_first))
    }

    /// A sealed tier, open and checked against the log: the first use waits for its open (if
    /// the background opener has not done it) and brings it up to its end if it lags (a tier
    /// rebuilt because it could not be read).
    fn sealed_db<'a>(&self, t: &'a Sealed) -> Result<&'a sled::Db, StoreError> {
        let db = t.db.get_or_init(|| open_tier(&t.path)).as_ref().map_err(|f| f.error(&t.path))?;
        let checked = t.checked.get_or_init(|| self.complete_tier(t, db).map_err(|e| IndexFailure::of(&e)));
        checked.as_ref().map_err(|f| f.error(&t.path))?;
        Ok(db)
    }

    fn complete_tier(&self, t: &Sealed, db: &sled::Db) -> Result<(), StoreError> {
        // A mark beyond the log is refused (the log lost entries the tier saw). One past the
        // tier's end (a build before tiers kept `index/` up to the head) holds more than the
        // tier's range, which lookups keep to: whole.
        let marked = self.mark_within(db, self.extent().tree_size)?;
        if marked >= t.end {
            return Ok(());
        }
        let indexed = marked.max(t.first);
        tracing::warn!(tier = %t.path.display(), indexed, end = t.end, "bringing a sealed index tier up to its end");
        let scan = scan_records(&self.records, 0, self.mode == Mode::ReadOnly)?;
        self.reindex(db, indexed, &scan.positions, t.end)
    }

    /// Seals the live tier at the head (module [`tiers`]): flushed first, then the next tier's
    /// directory made; the caller sends the commits there, and starts building the filter.
    fn seal(&self, layers: &Layers, w: &mut Writer) -> Result<(Layers, Arc<Sealed>), StoreError> {
        let end = self.extent().tree_size;
        self.flush_index_locked(&layers.live, w)?;
        let live = self.new_tier(end)?;
        let old = tiers::tier_path(&self.dir, layers.live_first);
        let sealed_tier = Arc::new(Sealed::just_sealed(old, layers.live_first, end, layers.live.clone()));
        let mut sealed = layers.sealed.clone();
        sealed.push(sealed_tier.clone());
        tracing::info!(first = layers.live_first, end, "sealed the live index tier");
        Ok((Layers { live, live_first: end, sealed }, sealed_tier))
    }

    /// The directory of a new live tier from `first`, made once the tier before it is flushed.
    fn new_tier(&self, first: u64) -> Result<sled::Db, StoreError> {
        let path = tiers::tier_path(&self.dir, first);
        let live = open_sled(&sled_config(&path)).map_err(io)?;
        make_private(&path)?;
        sync_dir(&self.dir)?;
        Ok(live)
    }

    /// Whether the live tier is full: sealed after a commit, or at the open (an index of the
    /// earlier single-tier layout, or one just rebuilt, is sealed whole).
    fn live_is_full(&self, layers: &Layers) -> bool {
        let size = self.committed.read().expect("extent lock").tree_size;
        self.mode == Mode::ReadWrite && size - layers.live_first >= self.tier_entries
    }

    /// How far the index's mark says it is durable (0 without a usable mark), refusing an index
    /// that has seen more than the log's `tree_size` entries (the log lost committed entries).
    fn mark_within(&self, db: &sled::Db, tree_size: u64) -> Result<u64, StoreError> {
        match self.index_mark(db)? {
            Some((m, _)) if m.head.tree_size > tree_size => Err(corrupt(
                "checkpoints",
                tree_size,
                format!("the index was flushed at tree size {}, the log holds {tree_size}", m.head.tree_size),
            )),
            marked => Ok(marked.map(|(m, _)| m.head.tree_size).unwrap_or(0)),
        }
    }

    /// The head's last entry must hash to its stored leaf hash and the stored hashes must give
    /// the head's root: a read-write open serves nothing else.
    fn check_head(&self, size: u64) -> Result<(), StoreError> {
        let ext = self.extent();
        let last =
            self.raw_entries(size - 1, 1)?.pop().ok_or(corrupt("log", size - 1, "head's last entry is missing"))?;
        if last.damaged.is_some() || merkle::leaf_hash(&last.bytes) != last.hashes[0] {
            return Err(corrupt("entry", size - 1, "leaf hash differs from the stored one"));
        }
        let root =
            merkle::root(size, &super::StoreHashes(self)).map_err(|e| corrupt("stored hashes", size, e.to_string()))?;
        if root != ext.root_hash {
            return Err(corrupt("tree head", size, "root from stored hashes differs from the head"));
        }
        Ok(())
    }

    /// Brings the index from `indexed` entries up to the head, from the entries themselves and
    /// the records' positions. Writes are idempotent, so entries the index already holds do no
    /// harm. A read-write open refuses an entry that does not parse (committed history is
    /// damaged); a read-only open leaves it out of its copy for the audit to report.
    /// `upto`: the end of a sealed tier (its mark is then the record of that tree size), or
    /// `u64::MAX` for the live tier.
    fn reindex(&self, db: &sled::Db, indexed: u64, positions: &[(u64, u64, u64)], upto: u64) -> Result<(), StoreError> {
        let todo: Vec<&(u64, u64, u64)> = positions.iter().filter(|p| p.2 > indexed && p.2 <= upto).collect();
        if todo.is_empty() {
            return Ok(());
        }
        let total = todo.last().expect("non-empty").2 - indexed;
        if total > 100_000 {
            tracing::info!(entries = total, "re-indexing entries beyond the index's mark");
        }
        let mut writes: Vec<IndexWrite> = Vec::new();
        for &&(offset, first_seq, tree_size) in &todo {
            writes.push((key_u64(b'k', tree_size).to_vec(), offset.to_be_bytes().to_vec()));
            let mut seq = first_seq.max(indexed);
            while seq < tree_size {
                for raw in self.raw_entries(seq, (tree_size - seq).min(4096))? {
                    seq = raw.seq + 1;
                    match index_writes(&raw, tree_size) {
                        Ok(w) => writes.extend(w),
                        Err(detail) if self.mode == Mode::ReadWrite => return Err(corrupt("entry", raw.seq, detail)),
                        Err(_) => {}
                    }
                }
            }
            if writes.len() > 100_000 {
                apply_index(db, &mut writes)?;
                writes.clear();
            }
        }
        apply_index(db, &mut writes)?;
        match (self.mode, upto) {
            (Mode::ReadOnly, _) => {}
            (Mode::ReadWrite, u64::MAX) => {
                let mut w = self.writer.lock().expect("one writer at a time");
                self.flush_index_locked(db, &mut w)?;
            }
            (Mode::ReadWrite, _) => {
                let &&(offset, _, tree_size) = todo.last().expect("non-empty");
                let slot = self.read_slot(offset).filter(|s| s.record.head.tree_size == tree_size);
                let s = slot.ok_or_else(|| corrupt("checkpoints", offset, "the record a sealed index tier ends at"))?;
                let mark = IndexMark {
                    head: s.record.head,
                    data_len: s.record.data_len,
                    record_at: s.offset,
                    records_end: s.offset + s.record.frame().len() as u64,
                };
                db.insert(MARK_KEY, &mark.encode()[..]).map_err(io)?;
                db.flush().map_err(io)?;
            }
        }
        Ok(())
    }

    /// The whole record at `offset` of `checkpoints.dat`, if it is one.
    fn read_slot(&self, offset: u64) -> Option<Slot> {
        let mut b = vec![0u8; SLOT_LEN];
        let n = self.records.read_at(&mut b, offset).ok()?;
        let (body, _) = unframe(&b[..n], RECORD_BODY_MAX)?;
        Some(Slot { offset, record: CommitRecord::decode_body(body)? })
    }

    /// The note of the record at `offset` of `checkpoints.dat`, as stored: a record whose frame
    /// is damaged still gives its note bytes (or none, if its length is unreadable), so that the
    /// one who reads it (the audit) finds the note's signature broken and names its tree size.
    fn read_note(&self, offset: u64, tree_size: u64) -> Result<Vec<u8>, StoreError> {
        let mut b = vec![0u8; SLOT_LEN];
        let n = self.records.read_at(&mut b, offset).map_err(|e| fio("read checkpoints.dat", e))?;
        if let Some(record) = unframe(&b[..n], RECORD_BODY_MAX).and_then(|(body, _)| CommitRecord::decode_body(body)) {
            if record.head.tree_size == tree_size {
                return Ok(record.note);
            }
        }
        tracing::warn!(tree_size, offset, "the record of a checkpoint in checkpoints.dat is damaged");
        let len = b.get(..4).map(|l| u32::from_be_bytes(l.try_into().expect("4 bytes")) as usize).unwrap_or(0);
        Ok(b.get(4 + RECORD_FIXED_LEN..(4 + len).min(n)).map(<[u8]>::to_vec).unwrap_or_default())
    }
}

/// Applies index writes to sled in key order (neighbouring keys land in the same leaves).
fn apply_index(db: &sled::Db, writes: &mut [IndexWrite]) -> Result<(), StoreError> {
    writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in writes.iter() {
        db.insert(&k[..], &v[..]).map_err(io)?;
    }
    Ok(())
}

/// The index writes of one entry, from its bytes: its id record and its stream position.
fn index_writes(raw: &RawEntry, tree_size: u64) -> Result<[IndexWrite; 2], String> {
    if let Some(d) = &raw.damaged {
        return Err(d.clone());
    }
    let leaf = merkle::leaf_hash(&raw.bytes);
    if leaf != raw.hashes[0] {
        return Err("leaf hash differs from the stored one".into());
    }
    let parsed = crate::event::parse_entry(&raw.bytes).map_err(|e| e.to_string())?;
    let digest = crate::event::canonical_event_of_entry(&raw.bytes).map(|e| Sha256::digest(e).into());
    let digest = digest.ok_or("the entry does not start with its event")?;
    let event_type = parsed.event.get("type").and_then(serde_json::Value::as_str).ok_or("the event has no type")?;
    let record = IdRecord {
        seq: raw.seq,
        stream_version: parsed.meta.stream_version,
        tree_size,
        leaf_hash: leaf,
        digest,
        stream: parsed.stream().to_owned(),
        event_type: event_type.to_owned(),
    };
    Ok([
        (key_str(b'i', parsed.id()), record.encode()),
        (key_stream_version(parsed.stream(), parsed.meta.stream_version), raw.seq.to_be_bytes().to_vec()),
    ])
}

/// The finding of a `head.dat` slot that holds no whole record.
fn head_slot_damaged(slot: u64) -> StoreFinding {
    let offset = slot * SLOT_LEN as u64;
    StoreFinding {
        file: "head.dat".into(),
        offset,
        tree_size: None,
        code: "head_slot_damaged",
        message: format!(
            "slot {slot} of head.dat (offset {offset}) holds no whole record: the second copy of the commit point \
             is lost until the next commit rewrites the slot"
        ),
    }
}

/// The file a corrupt-store error is about, for findings.
fn file_of(what: &str) -> &'static str {
    match what {
        "checkpoints" | "checkpoint" => "checkpoints.dat",
        "entry" | "log" => "entries.dat",
        "stored hashes" | "stored hash" => "hashes.dat",
        "config" => "ledger.json",
        "entries.dat" => "entries.dat",
        "offsets.dat" => "offsets.dat",
        "hashes.dat" => "hashes.dat",
        _ => "store",
    }
}

/// A sealed index tier's sled, opened as the live one is (one that cannot be read is rebuilt).
pub(crate) fn open_tier(path: &Path) -> tiers::TierResult<sled::Db> {
    let opened = open_index(path, sealed_config).and_then(|db| make_private(path).map(|()| db));
    opened.map_err(|e| IndexFailure::of(&e))
}

/// The tree size an index tier's mark names, if it has one.
pub(crate) fn mark_size(db: &sled::Db) -> Option<u64> {
    db.get(MARK_KEY).ok().flatten().and_then(|m| IndexMark::decode(&m)).map(|m| m.head.tree_size)
}

/// An index tier that starts beyond the log's head: the log lost entries the index saw.
fn tier_beyond(first: u64, tree_size: u64) -> StoreError {
    corrupt(
        "checkpoints",
        tree_size,
        format!("the index has a tier from entry {first} (index.{first}), the log holds {tree_size}"),
    )
}

/// Opens the index in `path`; one that cannot be read (not one locked by another process) is
/// moved aside and rebuilt from the log by the recovery that follows.
fn open_index(path: &Path, config: fn(&Path) -> sled::Config) -> Result<sled::Db, StoreError> {
    let opened = std::panic::catch_unwind(|| open_sled(&config(path)));
    match opened {
        Ok(Ok(db)) => return Ok(db),
        Ok(Err(e)) if is_lock_error(&e) => return Err(io(e)),
        Ok(Err(e)) => tracing::error!(error = %e, "the index cannot be read; rebuilding it from the log"),
        Err(_) => tracing::error!("the index cannot be read (sled panicked); rebuilding it from the log"),
    }
    set_index_aside(path, "unreadable")?;
    open_sled(&config(path)).map_err(io)
}

/// Makes the directory `path` private (0700), as every open for writing leaves the store and
/// its index; a directory already so is not touched.
pub fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| fio(&path.display().to_string(), e))?.permissions().mode();
    if mode & 0o777 != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fio(&path.display().to_string(), e))?;
    }
    Ok(())
}

/// The store's lock: an exclusive advisory lock (`flock`) on `<store>/LOCK`, a file that is
/// never renamed or removed, taken before anything in the store is opened, moved or written, and
/// held while the store is open for writing (a server, `rebuild`, `init`). sled's own lock lives
/// inside `index/`, which a rebuild moves aside: a lock there alone let a rebuild move a running
/// server's index away and a second server open the same log files (two writers, two signed
/// checkpoints of one size). The audit takes no lock: it changes nothing.
fn take_lock(dir: &Path) -> Result<File, StoreError> {
    lock_dir(dir, "the store in")
}

/// An exclusive `flock` on `<dir>/LOCK` (made if missing, never removed), or `InUse` naming
/// `what` (`"the store in"`) and `dir` when another process holds it.
pub(crate) fn lock_dir(dir: &Path, what: &str) -> Result<File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| fio(&path.display().to_string(), e))?;
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => Ok(file),
        Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => Err(StoreError::InUse(format!(
            "{what} {} is open in another process (a server, a rebuild): {} is locked; stop it first",
            dir.display(),
            path.display()
        ))),
        Err(e) => Err(fio(&format!("lock {}", path.display()), e)),
    }
}

/// Moves the index directory aside, to `<index>.<why>-<unix seconds>`; returns where.
fn set_index_aside(path: &Path, why: &str) -> Result<Option<PathBuf>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside = path.with_file_name(format!("{name}.{why}-{secs}"));
    std::fs::rename(path, &aside).map_err(|e| fio(&path.display().to_string(), e))?;
    tracing::warn!(moved_to = %aside.display(), "the index was moved aside");
    Ok(Some(aside))
}

/// A read-only open's private directory for its copy of the index (which holds every event id
/// and stream, learners' ids among them): `$TMPDIR/zachetka-audit-<pid>-<n>`, mode 0700 (sled's
/// own files in it are 0644), removed with everything in it when the guard is dropped: on a
/// clean close, on an error and while a panic unwinds.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zachetka-audit-{}-{n}", std::process::id()));
        // Not `create_dir_all`: a directory of that name left by another process is not reused.
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| fio(&dir.display().to_string(), e))?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "couldn't remove the audit's copy of the index");
        }
    }
}

/// The audit's private copy of every index tier of the store in `dir`, each opened (sealed ones
/// are checked against the log at their first use, as a server's).
fn copy_tiers(dir: &Path, scratch: &Path) -> Result<Layers, String> {
    let firsts = tiers::list_tiers(dir).map_err(|e| e.to_string())?;
    let mut opened = Vec::new();
    for &first in &firsts {
        let from = tiers::tier_path(dir, first);
        let copy = tiers::tier_path(scratch, first);
        match copy_dir(&from, &copy) {
            Ok(true) => {}
            Ok(false) => return Err(format!("there is no {}", from.display())),
            Err(e) => return Err(format!("{}: {e}", from.display())),
        }
        // sled panics on some damaged files (as `open_index` knows): a finding, not a crash.
        match std::panic::catch_unwind(|| sled_config(&copy).open()) {
            Ok(Ok(db)) => opened.push(db),
            Ok(Err(e)) => return Err(format!("{}: {e}", from.display())),
            Err(_) => return Err(format!("{}: sled panicked reading it", from.display())),
        }
    }
    let live = opened.pop().expect("the tier from 0 is always listed");
    let sealed = (firsts.windows(2).zip(opened))
        .map(|(w, db)| {
            let t = Sealed::on_disk(scratch, w[0], w[1]);
            t.db.set(Ok(db)).unwrap_or_else(|_| unreachable!("new"));
            Arc::new(t)
        })
        .collect();
    Ok(Layers { live, live_first: *firsts.last().expect("listed"), sealed })
}

/// Copies a directory tree; `false` if `from` does not exist.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<bool> {
    if !from.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(true)
}

impl Drop for SledStore {
    /// A clean close flushes the index, so the next open re-indexes nothing. Best effort: a
    /// failure here leaves the index behind, which the next open brings up to the head.
    fn drop(&mut self) {
        self.warmer.get_mut().expect("warmer lock").join();
        // An index never used is closed as it opened: its mark is where it was, and the next open
        // brings it up to the head. Joined here, so sled closes before the store's lock is let go.
        if let Some(pending) = self.index.pending.get_mut().expect("index lock").take() {
            if let Opener::Thread(thread) = pending.opener {
                drop(thread.join());
            }
            return;
        }
        // An index that failed its first use was refused then; nothing to flush.
        if self.mode == Mode::ReadWrite && matches!(self.index.open.get(), Some(Ok(_))) {
            if let Err(e) = self.flush_index() {
                tracing::warn!(error = %e, "couldn't flush the index on close; the next open re-indexes");
            }
        }
    }
}

impl Store for SledStore {
    fn config(&self) -> Result<Option<LedgerConfig>, StoreError> {
        Ok(self.config.read().expect("config lock").clone())
    }

    fn init(&self, config: &LedgerConfig) -> Result<(), StoreError> {
        let path = self.paths().config;
        let mut current = self.config.write().expect("config lock");
        if current.is_some() || path.exists() {
            return Err(StoreError::AlreadyInitialized);
        }
        let file = ConfigFile { config: config.clone(), sha256: config_digest(config) };
        let tmp = path.with_extension("json.tmp");
        let mut f = open_file(&tmp, Mode::ReadWrite, true)?;
        f.set_len(0).map_err(|e| fio("truncate ledger.json.tmp", e))?;
        std::io::Write::write_all(&mut f, &serde_json::to_vec_pretty(&file).expect("config serializes"))
            .and_then(|()| f.sync_all())
            .map_err(|e| fio("write ledger.json.tmp", e))?;
        // A hard link creates the name only if it does not exist: two inits cannot both win.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(StoreError::AlreadyInitialized),
            other => other.map_err(|e| fio("write ledger.json", e))?,
        }
        sync_dir(&self.dir)?;
        *current = Some(config.clone());
        Ok(())
    }

    fn head(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        let ext = self.extent();
        if ext.tree_size == 0 {
            return Ok(None);
        }
        Ok(Some((TreeHead { tree_size: ext.tree_size, root_hash: ext.root_hash }, ext.note.to_vec())))
    }

    fn commit(&self, b: &CommitBatch) -> Result<(), StoreError> {
        assert_eq!(self.mode, Mode::ReadWrite, "a read-only store never commits");
        let ext = self.extent();
        if b.first_seq != ext.tree_size {
            return Err(StoreError::NotContiguous { got: b.first_seq, want: ext.tree_size });
        }
        assert_eq!(b.head.tree_size, b.first_seq + b.entries.len() as u64, "batch head must cover exactly its entries");
        assert!(b.entries.len() as u64 <= BATCH_LEN_MAX, "batches are bounded (recovery relies on it)");
        // Before anything is written: an index that cannot be used fails the commit unwritten.
        self.layers()?;
        let mut w = self.writer.lock().expect("one committer at a time");
        let layers = self.layers()?;
        let db = &layers.live;
        let Writer { data, offsets, hashes, next_slot, unflushed } = &mut *w;
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
            index.push((key_str(b'i', &e.id), e.id_record.encode()));
            index.push((key_stream_version(&e.stream, e.id_record.stream_version), seq.to_be_bytes().to_vec()));
        }
        let hashes_at = merkle::stored_hash_count(b.first_seq) * 32;
        assert_eq!(
            hashes_at + hashes.len() as u64,
            merkle::stored_hash_count(b.head.tree_size) * 32,
            "batch must carry exactly its stored hashes"
        );
        let data_len = ext.data_len + data.len() as u64;
        let record = CommitRecord { first_seq: b.first_seq, head: b.head, data_len, note: b.checkpoint.clone() };
        let framed = record.frame();
        if framed.len() - 4 - CHECKSUM_LEN > RECORD_BODY_MAX {
            return Err(StoreError::NoteTooLarge { len: b.checkpoint.len() });
        }
        let slot = Slot { offset: ext.records_end, record }.encode();
        // Nothing of the batch is written yet; a crash loses it, and it was never acknowledged.
        self.entries.write_all_at(data, ext.data_len).map_err(|e| fio("write entries.dat", e))?;
        self.offsets.write_all_at(offsets, b.first_seq * 8).map_err(|e| fio("write offsets.dat", e))?;
        self.hashes.write_all_at(hashes, hashes_at).map_err(|e| fio("write hashes.dat", e))?;
        self.entries.sync_data().map_err(|e| fio("sync entries.dat", e))?;
        self.offsets.sync_data().map_err(|e| fio("sync offsets.dat", e))?;
        self.hashes.sync_data().map_err(|e| fio("sync hashes.dat", e))?;
        // The bytes are durable but beyond the head: a crash here leaves a torn batch, which the
        // next open drops (at most BATCH_LEN_MAX entries). Still unacknowledged.
        self.records.write_all_at(&framed, ext.records_end).map_err(|e| fio("write checkpoints.dat", e))?;
        self.head_slots.write_all_at(&slot, *next_slot * SLOT_LEN as u64).map_err(|e| fio("write head.dat", e))?;
        self.records.sync_data().map_err(|e| fio("sync checkpoints.dat", e))?;
        self.head_slots.sync_data().map_err(|e| fio("sync head.dat", e))?;
        // Committed: the record is durable in both files (a crash between the two syncs leaves it
        // in one, and the next open takes it from there). Not yet acknowledged, and not yet
        // visible: readers would miss it in the index.
        let written = *next_slot;
        *next_slot = 1 - *next_slot;
        // The slot just written is whole again: a damage an open found there is repaired.
        self.findings
            .lock()
            .expect("findings lock")
            .retain(|f| f.code != "head_slot_damaged" || f.offset != written * SLOT_LEN as u64);
        index.push((key_u64(b'k', b.head.tree_size).to_vec(), ext.records_end.to_be_bytes().to_vec()));
        apply_index(db, &mut index)?;
        *self.committed.write().expect("extent lock") = Extent {
            tree_size: b.head.tree_size,
            data_len,
            root_hash: b.head.root_hash,
            note: Arc::new(b.checkpoint.clone()),
            record_at: ext.records_end,
            records_end: ext.records_end + framed.len() as u64,
        };
        // Published; the caller may acknowledge once this returns. The index is durable only up
        // to sled's last flush; the next open re-derives the rest from the entries. A failed
        // flush fails no commit (the batch is durable), and the next commit tries again.
        *unflushed += data.len() as u64;
        if self.live_is_full(&layers) {
            // A seal that fails leaves the live tier live (the batch is durable either way), and
            // the next commit tries again.
            match self.seal(&layers, &mut w) {
                Ok((sealed, tier)) => {
                    *self.layers_lock()?.write().expect("layers lock") = Arc::new(sealed);
                    self.warmer.lock().expect("warmer lock").warm(vec![tier]);
                }
                Err(e) => tracing::error!(error = %e, "couldn't seal the live index tier; the next commit tries again"),
            }
        } else if *unflushed >= INDEX_FLUSH_BYTES {
            if let Err(e) = self.flush_index_locked(db, &mut w) {
                tracing::error!(error = %e, "couldn't flush the index; the next open re-indexes from the entries");
            }
        }
        Ok(())
    }

    fn raw_entries(&self, from: u64, limit: u64) -> Result<Vec<RawEntry>, StoreError> {
        let ext = self.extent();
        if from >= ext.tree_size || limit == 0 {
            return Ok(vec![]);
        }
        let n = limit.min(ext.tree_size - from);
        let offs = self.read_offsets(from, n, &ext)?;
        let (start, end) = (offs[0], offs[n as usize]);
        let sane = offs.windows(2).all(|w| w[0] <= w[1]) && end <= ext.data_len;
        let data = if sane {
            let mut data = vec![0u8; (end - start) as usize];
            self.entries.read_exact_at(&mut data, start).map_err(|e| fio("read entries.dat", e))?;
            bytes::Bytes::from(data)
        } else {
            bytes::Bytes::new()
        };
        let first_index = merkle::stored_hash_index_of_leaf(from);
        let last_index = merkle::stored_hash_count(from + n);
        let mut hash_bytes = vec![0u8; ((last_index - first_index) * 32) as usize];
        self.hashes.read_exact_at(&mut hash_bytes, first_index * 32).map_err(|e| fio("read hashes.dat", e))?;
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
                RawEntry { seq, bytes: data.slice((a - start) as usize..(z - start) as usize), hashes, damaged: None }
            } else if a <= z && z <= ext.data_len && z - a <= crate::event::ENTRY_BYTES_MAX as u64 {
                let mut bytes = vec![0u8; (z - a) as usize];
                self.entries.read_exact_at(&mut bytes, a).map_err(|e| fio("read entries.dat", e))?;
                RawEntry { seq, bytes: bytes.into(), hashes, damaged: None }
            } else {
                RawEntry {
                    seq,
                    bytes: bytes::Bytes::new(),
                    hashes,
                    damaged: Some(format!(
                        "offsets.dat at offset {} gives entry {seq} the bytes {a}..{z} of entries.dat, which is \
                         no entry's span (entries.dat holds {} bytes, an entry at most {})",
                        seq * 8,
                        ext.data_len,
                        crate::event::ENTRY_BYTES_MAX
                    )),
                }
            });
        }
        Ok(out)
    }

    /// One read of `entries.dat` per run of nearby seqs, like the default, but only the entries
    /// wanted are copied out, and their leaf hashes come in one [`Store::read_hashes`].
    fn entries_at(&self, seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let ext = self.extent();
        if let Some(&seq) = seqs.iter().find(|&&s| s >= ext.tree_size) {
            return Err(super::missing_entry(seq));
        }
        let leaves: Vec<u64> = seqs.iter().map(|&s| merkle::stored_hash_index_of_leaf(s)).collect();
        let mut leaves = self.read_hashes(&leaves)?.into_iter();
        let mut out = Vec::with_capacity(seqs.len());
        for run in super::gap_runs(seqs) {
            let (first, n) = (run[0], run[run.len() - 1] - run[0] + 1);
            let offs = self.read_offsets(first, n, &ext)?;
            let (start, end) = (offs[0], offs[n as usize]);
            if !(offs.windows(2).all(|w| w[0] <= w[1]) && end <= ext.data_len) {
                // Damaged offsets: the general path names the entry they make unreadable.
                out.extend(super::entries_at_by_runs(self, run)?);
                leaves.nth(run.len() - 1);
                continue;
            }
            let mut data = vec![0u8; (end - start) as usize];
            self.entries.read_exact_at(&mut data, start).map_err(|e| fio("read entries.dat", e))?;
            for &seq in run {
                let i = (seq - first) as usize;
                let bytes = &data[(offs[i] - start) as usize..(offs[i + 1] - start) as usize];
                if Some(merkle::leaf_hash(bytes)) != leaves.next() {
                    return Err(StoreError::Corrupt {
                        what: "entry",
                        position: seq,
                        detail: "its bytes do not hash to the stored leaf hash".into(),
                    });
                }
                out.push((seq, bytes.to_vec()));
            }
        }
        Ok(out)
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let count = merkle::stored_hash_count(self.committed.read().expect("extent lock").tree_size);
        if let Some(&index) = indexes.iter().find(|i| **i >= count) {
            return Err(corrupt("stored hash", index, format!("beyond the {count} committed hashes")));
        }
        // One read per run of indexes at most HASH_READ_GAP apart (a record bundle's proofs ask
        // for tens of thousands, many of them near each other), not one per hash.
        let mut sorted: Vec<u64> = indexes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut found: std::collections::HashMap<u64, Hash> = std::collections::HashMap::with_capacity(sorted.len());
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i + 1;
            while j < sorted.len() && sorted[j] - sorted[j - 1] <= HASH_READ_GAP {
                j += 1;
            }
            let (first, last) = (sorted[i], sorted[j - 1]);
            let mut bytes = vec![0u8; ((last - first + 1) * 32) as usize];
            self.hashes.read_exact_at(&mut bytes, first * 32).map_err(|e| fio("read hashes.dat", e))?;
            for &index in &sorted[i..j] {
                let at = ((index - first) * 32) as usize;
                found.insert(index, Hash(bytes[at..at + 32].try_into().expect("32 bytes")));
            }
            i = j;
        }
        Ok(indexes.iter().map(|i| found[i]).collect())
    }

    /// The live tier, then the sealed ones newest first, each only if its filter says it may
    /// hold the id (an id is in one tier at most: the sequencer admits it once).
    fn id_record(&self, id: &str) -> Result<Option<IdRecord>, StoreError> {
        let (size, layers) = self.view()?;
        let key = key_str(b'i', id);
        let mut found = layers.live.get(&key).map_err(io)?;
        if found.is_none() {
            let probe = Probe::of(&key);
            for t in layers.sealed.iter().rev().filter(|t| t.may_hold(probe)) {
                found = self.sealed_db(t)?.get(&key).map_err(io)?;
                if found.is_some() {
                    break;
                }
            }
        }
        match found {
            None => Ok(None),
            Some(v) => {
                let rec = IdRecord::decode(&v).ok_or(corrupt("id record", 0, format!("for id {id}")))?;
                Ok((rec.seq < size).then_some(rec))
            }
        }
    }

    /// The stream's last committed key: in the live tier if the stream was written since the
    /// last seal, else in the newest sealed tier that holds it.
    fn stream_head(&self, stream: &str) -> Result<Option<StreamHead>, StoreError> {
        let mut prefix = key_str(b's', stream);
        let probe = Probe::of(&prefix);
        prefix.push(0);
        let (size, layers) = self.view()?;
        let bad = || corrupt("stream index", 0, format!("for stream {stream}"));
        // The last committed key: a commit in flight may have indexed later ones already.
        let mut last = None;
        let sealed = layers.sealed.iter().rev().filter(|t| t.may_hold(probe));
        let tiers = std::iter::once(Ok((&layers.live, size)))
            .chain(sealed.map(|t| self.sealed_db(t).map(|db| (db, t.end.min(size)))));
        for tier in tiers {
            let (db, below) = tier?;
            for kv in db.scan_prefix(&prefix).rev() {
                let (k, v) = kv.map_err(io)?;
                let seq = u64::from_be_bytes(v.as_ref().try_into().map_err(|_| bad())?);
                if seq < below {
                    last = Some((u64::from_be_bytes(k[prefix.len()..].try_into().map_err(|_| bad())?), seq));
                    break;
                }
            }
            if last.is_some() {
                break;
            }
        }
        let Some((version, seq)) = last else { return Ok(None) };
        let leaf = self.read_hashes(&[merkle::stored_hash_index_of_leaf(seq)])?[0];
        Ok(Some(StreamHead { len: version + 1, last_leaf_hash: leaf, last_seq: seq }))
    }

    /// The tiers in log order (a stream's versions grow with seq), those that may hold it.
    fn stream_seqs(&self, stream: &str, from_version: u64, limit: u64) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let (size, layers) = self.view()?;
        let probe = Probe::of(&key_str(b's', stream));
        let end = key_stream_version(stream, u64::MAX);
        let sealed =
            layers.sealed.iter().filter(|t| t.may_hold(probe)).map(|t| self.sealed_db(t).map(|db| (db, t.end)));
        for tier in sealed.chain(std::iter::once(Ok((&layers.live, u64::MAX)))) {
            let (db, below) = tier?;
            let want = limit.saturating_sub(out.len() as u64) as usize;
            if want == 0 {
                break;
            }
            // Versions from `from_version`, or past those the tiers before gave.
            let from = from_version + out.len() as u64;
            for kv in db.range(key_stream_version(stream, from)..=end.clone()) {
                let (_, v) = kv.map_err(io)?;
                let seq: [u8; 8] =
                    v.as_ref().try_into().map_err(|_| corrupt("stream index", 0, format!("for stream {stream}")))?;
                let seq = u64::from_be_bytes(seq);
                if seq >= below || out.len() >= limit as usize {
                    break;
                }
                out.push(seq);
            }
        }
        out.retain(|seq| *seq < size);
        Ok(out)
    }

    /// A tier holds the checkpoints of tree sizes `first+1..=end`: those from `from_size` on.
    fn checkpoints(&self, from_size: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let (size, layers) = self.view()?;
        let sealed =
            layers.sealed.iter().filter(|t| t.end >= from_size).map(|t| self.sealed_db(t).map(|db| (db, t.end)));
        for tier in sealed.chain(std::iter::once(Ok((&layers.live, size)))) {
            let (db, through) = tier?;
            let want = limit.saturating_sub(out.len() as u64) as usize;
            if want == 0 {
                break;
            }
            let from = out.last().map_or(from_size, |(t, _)| t + 1);
            for kv in db.range(key_u64(b'k', from)..=key_u64(b'k', through.min(size))).take(want) {
                let (k, v) = kv.map_err(io)?;
                let tree_size = u64::from_be_bytes(k[1..9].try_into().expect("9-byte key"));
                let offset: [u8; 8] =
                    v.as_ref().try_into().map_err(|_| corrupt("checkpoint index", tree_size, "not an offset"))?;
                out.push((tree_size, self.read_note(u64::from_be_bytes(offset), tree_size)?));
            }
        }
        Ok(out)
    }

    /// One lookup of `k` (tree size -> record offset) in the tier that holds it, and one read of
    /// that record.
    fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let (size, layers) = self.view()?;
        if tree_size > size {
            return Ok(None);
        }
        let db = match layers.sealed.iter().find(|t| t.first < tree_size && tree_size <= t.end) {
            Some(t) => self.sealed_db(t)?,
            None => &layers.live,
        };
        let Some(v) = db.get(key_u64(b'k', tree_size)).map_err(io)? else { return Ok(None) };
        let offset: [u8; 8] =
            v.as_ref().try_into().map_err(|_| corrupt("checkpoint index", tree_size, "not an offset"))?;
        let offset = u64::from_be_bytes(offset);
        let mut b = vec![0u8; SLOT_LEN];
        let n = self.records.read_at(&mut b, offset).map_err(|e| fio("read checkpoints.dat", e))?;
        match unframe(&b[..n], RECORD_BODY_MAX).and_then(|(body, _)| CommitRecord::decode_body(body)) {
            Some(record) if record.head.tree_size == tree_size => Ok(Some(record.note)),
            _ => Err(corrupt(
                "checkpoint",
                tree_size,
                format!("its record at offset {offset} of checkpoints.dat is damaged or names another tree size"),
            )),
        }
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let files: u64 = [&self.entries, &self.offsets, &self.hashes, &self.records, &self.head_slots]
            .iter()
            .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        let layers = self.layers()?;
        let mut index = layers.live.size_on_disk().map_err(io)?;
        for t in &layers.sealed {
            index += self.sealed_db(t)?.size_on_disk().map_err(io)?;
        }
        Ok(StoreStats { bytes_on_disk: files + index })
    }

    /// What the open found, and every sealed index tier that cannot be used (a lookup that
    /// needs it fails): shown by `/v1/status` until a rebuild.
    fn findings(&self) -> Vec<StoreFinding> {
        let mut out = self.findings.lock().expect("findings lock").clone();
        if let Some(Ok(layers)) = self.index.open.get() {
            for t in &layers.read().expect("layers lock").sealed {
                let failure = match (t.db.get(), t.checked.get()) {
                    (Some(Err(f)), _) | (_, Some(Err(f))) => f.error(&t.path),
                    _ => continue,
                };
                let name = t.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                out.push(StoreFinding {
                    file: name.clone(),
                    offset: 0,
                    tree_size: Some(t.end),
                    code: "index_tier_unusable",
                    message: format!(
                        "the index tier {name} (entries {} to {}) cannot be used: {failure}; lookups that need it \
                         fail until `zachetka rebuild` rebuilds the index from the log",
                        t.first,
                        t.end - 1
                    ),
                });
            }
        }
        out
    }

    fn ready(&self) -> Result<(), StoreError> {
        self.layers().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(first_seq: u64, tree_size: u64) -> CommitRecord {
        CommitRecord {
            first_seq,
            head: TreeHead { tree_size, root_hash: Hash([tree_size as u8; 32]) },
            data_len: 100 * tree_size,
            note: format!("note {tree_size}\n").into_bytes(),
        }
    }

    /// `checkpoints.dat` holding records for these tree sizes (each batch after the last).
    fn file_of_records(sizes: &[u64]) -> (Vec<u8>, Vec<Slot>) {
        let (mut bytes, mut slots, mut prev) = (Vec::new(), Vec::new(), 0);
        for &s in sizes {
            let record = rec(prev, s);
            slots.push(Slot { offset: bytes.len() as u64, record: record.clone() });
            bytes.extend(record.frame());
            prev = s;
        }
        (bytes, slots)
    }

    fn scan_of(bytes: &[u8]) -> Scan {
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(bytes, 0).unwrap();
        scan_records(&f, 0, false).unwrap()
    }

    fn head_size(p: &Plan) -> u64 {
        p.head.as_ref().map(|s| s.record.head.tree_size).unwrap_or(0)
    }

    #[test]
    fn frames_round_trip_and_refuse_any_flipped_bit() {
        let r = rec(4, 9);
        let f = r.frame();
        let (body, n) = unframe(&f, RECORD_BODY_MAX).unwrap();
        assert_eq!((CommitRecord::decode_body(body).unwrap(), n), (r.clone(), f.len()));
        for i in 0..f.len() * 8 {
            let mut g = f.clone();
            g[i / 8] ^= 1 << (i % 8);
            assert!(
                unframe(&g, RECORD_BODY_MAX).is_none_or(|(b, _)| CommitRecord::decode_body(b).is_none()),
                "bit {i}"
            );
        }
        let s = Slot { offset: 77, record: r };
        assert_eq!(Slot::decode(&s.encode()), Some(s));
    }

    #[test]
    fn the_head_is_the_last_record_when_head_dat_agrees_or_lags() {
        let (bytes, slots) = file_of_records(&[3, 5, 9]);
        let scan = scan_of(&bytes);
        assert_eq!((scan.positions.len(), scan.end, scan.bad.is_none()), (3, bytes.len() as u64, true));
        for slot in [None, Some(&slots[2]), Some(&slots[1]), Some(&slots[0])] {
            let plan = plan_head(&scan, slot).unwrap();
            assert_eq!((head_size(&plan), plan.truncate_records_to, plan.restore), (9, None, false));
        }
    }

    #[test]
    fn a_torn_final_record_is_dropped_unless_head_dat_holds_it() {
        let (bytes, slots) = file_of_records(&[3, 5, 9]);
        let last_at = slots[2].offset;
        for cut in [1, 10, bytes.len() as u64 - last_at - 1] {
            let scan = scan_of(&bytes[..bytes.len() - cut as usize]);
            assert_eq!(scan.bad.as_ref().map(|b| b.0), Some(last_at), "cut {cut}");
            let dropped = plan_head(&scan, Some(&slots[1])).unwrap();
            assert_eq!((head_size(&dropped), dropped.truncate_records_to, dropped.restore), (5, Some(last_at), false));
            let restored = plan_head(&scan, Some(&slots[2])).unwrap();
            assert_eq!(
                (head_size(&restored), restored.truncate_records_to, restored.restore),
                (9, Some(last_at), true)
            );
        }
        // The whole last record gone (a crash before it was written, or a file cut back):
        // head.dat proves it was committed, and it is written back.
        let scan = scan_of(&bytes[..last_at as usize]);
        let restored = plan_head(&scan, Some(&slots[2])).unwrap();
        assert_eq!((head_size(&restored), restored.truncate_records_to, restored.restore), (9, None, true));
    }

    #[test]
    fn damage_that_is_not_a_final_tear_is_corruption() {
        let (bytes, slots) = file_of_records(&[3, 5, 9]);
        // A flipped bit in the middle record: whole records follow it.
        let mut flipped = bytes.clone();
        flipped[slots[1].offset as usize + 10] ^= 4;
        let scan = scan_of(&flipped);
        assert!(scan.good_after_bad);
        for slot in [None, Some(&slots[2])] {
            let e = plan_head(&scan, slot).unwrap_err();
            assert!(
                matches!(e, StoreError::Corrupt { what: "checkpoints", position, .. } if position == slots[1].offset)
            );
        }
        // Two records gone, head.dat knows the last: not one torn batch.
        let scan = scan_of(&bytes[..slots[1].offset as usize]);
        assert!(plan_head(&scan, Some(&slots[2])).is_err());
        // head.dat and checkpoints.dat disagree on the same size.
        let scan = scan_of(&bytes);
        let mut other = slots[2].clone();
        other.record.head.root_hash = Hash([1; 32]);
        assert!(plan_head(&scan, Some(&other)).is_err());
        // A flipped byte in the last record, written whole: damage, not a tear, unless head.dat
        // holds it (then it is written back); a last frame of zeros is a tear.
        let mut last = bytes.clone();
        last[slots[2].offset as usize + 10] ^= 4;
        let scan = scan_of(&last);
        assert!(!scan.good_after_bad && scan.bad_whole);
        let e = plan_head(&scan, Some(&slots[1])).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { what: "checkpoints", position, .. } if position == slots[2].offset));
        assert!(plan_head(&scan, Some(&slots[2])).unwrap().restore);
        // The last two records damaged and head.dat's copy of the last too (its other slot
        // holds the one before): that one may be written back, but the bytes after it are the
        // last committed record, never a tear (found by the random fault test, seed
        // 1796287623618083441: the open dropped the last batch).
        let mut two = last.clone();
        two[slots[1].offset as usize + 10] ^= 4;
        let scan = scan_of(&two);
        assert!(!scan.good_after_bad && scan.bad.as_ref().map(|b| b.0) == Some(slots[1].offset));
        let e = plan_head(&scan, Some(&slots[1])).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { what: "checkpoints", position, .. } if position == slots[2].offset));
        let mut zeros = bytes[..slots[2].offset as usize].to_vec();
        zeros.extend(vec![0u8; 200]);
        let scan = scan_of(&zeros);
        assert!(!scan.bad_whole);
        assert_eq!(plan_head(&scan, Some(&slots[1])).unwrap().truncate_records_to, Some(slots[2].offset));
        // A damaged length that claims more than a record: corruption, whatever follows.
        let mut long = bytes.clone();
        long[slots[2].offset as usize] = 0xff;
        let scan = scan_of(&long);
        assert!(plan_head(&scan, Some(&slots[1])).unwrap().truncate_records_to.is_some(), "a final tear");
        let mut longer = long.clone();
        longer.extend(vec![7u8; SLOT_LEN + 1]);
        assert!(plan_head(&scan_of(&longer), Some(&slots[1])).is_err(), "more than a record after it");
    }
}
