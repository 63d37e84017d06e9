//! One snapshot file: its layout (crate docs, "File format"), building its header, and reading it
//! back with every check: the header and every section when read, each chunk of the values
//! area when first needed. Not the directory (naming, atomic writes, retention, choosing which
//! snapshot to use): that is `dir.rs`.

use crate::error::SnapshotError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use zachetka_projections::lazy::{Held, ValueSource};

/// The first bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"ZACHSNAP";
/// The file format this build writes and reads.
pub const FORMAT: u32 = 2;
/// The most sections a file may hold (the rules and every read model, with room to spare).
pub const SECTIONS_MAX: usize = 256;
/// The longest section name, in bytes.
pub const NAME_LEN_MAX: usize = 64;
/// The values area's chunk, each checked by its own SHA-256 when first read: 64 KiB, so a
/// value's first read costs one chunk's read and hash (~40 us), and the chunk table of a
/// 400 MB area is 200 KB.
pub const CHUNK_LEN: u32 = 64 << 10;
/// The chunk lengths a reader accepts.
const CHUNK_LEN_RANGE: std::ops::RangeInclusive<u32> = 4096..=(16 << 20);

/// Magic, format, tree size, root hash, section count.
const FIXED_LEN: usize = 8 + 4 + 8 + 32 + 4;
/// A table entry after its name: version, length, digest, values length.
const ENTRY_TAIL: usize = 4 + 8 + 32 + 8;
const DIGEST_LEN: usize = 32;

/// One section as written: a name, its own layout version, its bytes and its values (the bytes
/// of the values its state holds apart: `zachetka_projections::lazy::encode_apart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    pub name: &'a str,
    pub version: u32,
    pub bytes: &'a [u8],
    pub values: &'a [u8],
}

/// One section of a read file: its bytes (checked when the file was read) and its values
/// (checked chunk by chunk when read).
#[derive(Clone)]
pub struct SectionRef<'a> {
    pub name: &'a str,
    pub version: u32,
    pub bytes: &'a [u8],
    pub values: SectionValues,
}

/// A section's place in a read file.
#[derive(Debug, Clone)]
struct SectionEntry {
    name: String,
    version: u32,
    /// Where its bytes lie in the snapshot's buffer.
    range: Range<usize>,
    /// Where its values lie in the values area.
    values: Range<u64>,
}

/// A verified snapshot: its log position, its sections (read and checked, in one buffer) and its
/// values area (read and checked chunk by chunk when needed; the most recently used kept, up to
/// [`VALUES_CACHE_BYTES`]).
pub struct Snapshot {
    path: PathBuf,
    tree_size: u64,
    root_hash: [u8; 32],
    sections: Vec<SectionEntry>,
    /// The sections' bytes, back to back, from file offset `bytes_at`.
    bytes: Arc<Vec<u8>>,
    bytes_at: u64,
    values: Arc<ValuesFile>,
    file_len: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("path", &self.path).field("tree_size", &self.tree_size).finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many log entries the state reflects.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// The log's root hash at `tree_size`, as the writer saw it.
    pub fn root_hash(&self) -> &[u8; 32] {
        &self.root_hash
    }

    /// The section named `name`, if the snapshot has one.
    pub fn section(&self, name: &str) -> Option<SectionRef<'_>> {
        self.sections().find(|s| s.name == name)
    }

    /// Every section, in file order.
    pub fn sections(&self) -> impl Iterator<Item = SectionRef<'_>> {
        self.sections.iter().map(|e| SectionRef {
            name: &e.name,
            version: e.version,
            bytes: &self.bytes[e.range.clone()],
            values: SectionValues { file: self.values.clone(), range: e.values.clone() },
        })
    }

    /// Where the section named `name` lies in the file: its first byte and the byte after its
    /// last (what a report of a differing section names). Its values lie in the values area.
    pub fn section_span(&self, name: &str) -> Option<(u64, u64)> {
        let e = self.sections.iter().find(|e| e.name == name)?;
        Some((self.bytes_at + e.range.start as u64, self.bytes_at + e.range.end as u64))
    }

    /// The sections' bytes, which every section's `bytes` is a slice of.
    pub fn buffer(&self) -> &Arc<Vec<u8>> {
        &self.bytes
    }

    /// Where the section named `name` lies in `buffer`.
    pub fn section_range(&self, name: &str) -> Option<Range<usize>> {
        self.sections.iter().find(|e| e.name == name).map(|e| e.range.clone())
    }

    /// The size of the file, in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Reads and checks every chunk of the values area not read yet (an audit does, before it
    /// trusts any of them); the first that fails is the error, naming its bytes in the file.
    pub fn verify_values(&self) -> Result<(), SnapshotError> {
        (0..self.values.digests.len()).try_for_each(|i| self.values.chunk(i).map(drop))
    }

    /// What to do when a chunk of the values area is found damaged (or cannot be read) after
    /// the open, before the value that needed it fails: the ledger takes the file out of use so
    /// the next open does not pick it again. Set once; later calls are ignored.
    pub fn on_damage(&self, f: impl Fn(&SnapshotError) + Send + Sync + 'static) {
        let _ = self.values.on_damage.set(Box::new(f));
    }

    /// Keeps at most `bytes` of checked chunks of the values area in memory (default
    /// [`VALUES_CACHE_BYTES`]); the least recently used go first, and are read and checked again
    /// when next needed. At least one chunk is always kept.
    pub fn limit_values_cache(&self, bytes: u64) {
        let mut cache = self.values.cache.lock().expect("values cache lock");
        cache.limit = bytes;
        cache.evict(0);
    }

    /// The bytes of checked chunks of the values area held in memory now.
    pub fn values_cached(&self) -> u64 {
        self.values.cache.lock().expect("values cache lock").bytes
    }
}

/// How many bytes of a snapshot's values area a reader keeps in memory by default (1,024 chunks
/// of 64 KiB). A value decoded from them is kept by its owner; the chunks are needed again only
/// for values not decoded yet, and when the state is written to the next snapshot (a value no
/// entry touched is copied as its bytes): without a bound, that copy alone kept the whole area
/// (431.5 MB at 5.15M entries) in memory for the process's life.
pub const VALUES_CACHE_BYTES: u64 = 64 << 20;

/// The checked chunks a reader keeps: chunk number -> (bytes, when last used).
struct ChunkCache {
    held: HashMap<usize, (Arc<[u8]>, u64)>,
    bytes: u64,
    limit: u64,
    clock: u64,
}

impl ChunkCache {
    fn get(&mut self, i: usize) -> Option<Arc<[u8]>> {
        self.clock += 1;
        let clock = self.clock;
        self.held.get_mut(&i).map(|(c, used)| {
            *used = clock;
            c.clone()
        })
    }

    /// Drops the least recently used chunks until `room` more bytes fit (keeping none only
    /// when nothing else fits).
    fn evict(&mut self, room: u64) {
        while self.bytes + room > self.limit && !self.held.is_empty() {
            let oldest = *self.held.iter().min_by_key(|(_, (_, used))| *used).expect("not empty").0;
            let (c, _) = self.held.remove(&oldest).expect("present");
            self.bytes -= c.len() as u64;
        }
    }

    fn insert(&mut self, i: usize, chunk: Arc<[u8]>) {
        if self.held.contains_key(&i) {
            return;
        }
        self.evict(chunk.len() as u64);
        self.clock += 1;
        self.bytes += chunk.len() as u64;
        self.held.insert(i, (chunk, self.clock));
    }
}

/// What a snapshot's owner does when damage is found in its values area (after the open).
type DamageHandler = Box<dyn Fn(&SnapshotError) + Send + Sync>;

/// The values area of a read snapshot file: the file stays open, and each chunk is read and
/// checked against its SHA-256 in the header when needed; the most recently used chunks are kept
/// in memory, up to a limit.
struct ValuesFile {
    path: PathBuf,
    file: File,
    /// Where the area starts in the file, and its length.
    at: u64,
    len: u64,
    chunk_len: u64,
    digests: Vec<[u8; 32]>,
    cache: Mutex<ChunkCache>,
    on_damage: OnceLock<DamageHandler>,
}

impl ValuesFile {
    /// Chunk `i`, from the cache or read and checked. Read outside the cache's lock, so that
    /// threads reading other chunks do not wait (two reading the same chunk both check it).
    fn chunk(&self, i: usize) -> Result<Arc<[u8]>, SnapshotError> {
        if let Some(c) = self.cache.lock().expect("values cache lock").get(i) {
            return Ok(c);
        }
        let start = i as u64 * self.chunk_len;
        let end = (start + self.chunk_len).min(self.len);
        let mut buf = vec![0; (end - start) as usize];
        let checked = match self.file.read_exact_at(&mut buf, self.at + start) {
            Err(source) => Err(SnapshotError::Io { path: self.path.clone(), op: "read", source }),
            Ok(()) if Sha256::digest(&buf)[..] != self.digests[i] => Err(SnapshotError::ValuesChecksumMismatch {
                path: self.path.clone(),
                offset: self.at + start,
                end: self.at + end,
            }),
            Ok(()) => Ok(()),
        };
        if let Err(e) = checked {
            if let Some(f) = self.on_damage.get() {
                f(&e);
            }
            return Err(e);
        }
        let chunk: Arc<[u8]> = buf.into();
        self.cache.lock().expect("values cache lock").insert(i, chunk.clone());
        Ok(chunk)
    }

    /// The bytes at `range` of the area (within it), checked.
    fn read(&self, range: Range<u64>) -> Result<Held, SnapshotError> {
        if range.is_empty() {
            return Ok(Held::Own(Vec::new()));
        }
        let (first, last) = ((range.start / self.chunk_len) as usize, ((range.end - 1) / self.chunk_len) as usize);
        if first == last {
            let start = (range.start - first as u64 * self.chunk_len) as usize;
            return Ok(Held::Shared(self.chunk(first)?, start..start + (range.end - range.start) as usize));
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        for i in first..=last {
            let chunk_start = i as u64 * self.chunk_len;
            let c = self.chunk(i)?;
            let from = range.start.max(chunk_start) - chunk_start;
            let to = range.end.min(chunk_start + c.len() as u64) - chunk_start;
            out.extend_from_slice(&c[from as usize..to as usize]);
        }
        Ok(Held::Own(out))
    }
}

/// One section's values: the part of the file's values area its state refers into.
#[derive(Clone)]
pub struct SectionValues {
    file: Arc<ValuesFile>,
    range: Range<u64>,
}

impl SectionValues {
    /// Every byte of them, checked.
    pub fn read_all(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(self.file.read(self.range.clone())?.to_vec())
    }

    /// As a source that state loaded apart refers to.
    pub fn source(&self) -> Arc<dyn ValueSource> {
        Arc::new(self.clone())
    }
}

impl ValueSource for SectionValues {
    fn len(&self) -> u64 {
        self.range.end - self.range.start
    }

    fn read(&self, at: u64, len: u64) -> Result<Held, String> {
        let start = self.range.start + at;
        assert!(start + len <= self.range.end, "a place the load checked lies within the section's values");
        self.file.read(start..start + len).map_err(|e| e.with_causes())
    }
}

/// Why a section name is not allowed, if it is not.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > NAME_LEN_MAX {
        return Some(format!("a name is 1 to {NAME_LEN_MAX} bytes, this one {}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-')) {
        return Some(format!("character {c:?} is not one of a-z 0-9 _ . -"));
    }
    None
}

/// The header (magic to the end of the chunk table) for these sections, with the section and
/// chunk digests computed here, followed by its own SHA-256. The caller has checked the names
/// (`dir::write`).
pub(crate) fn header(tree_size: u64, root_hash: &[u8; 32], sections: &[Section]) -> Vec<u8> {
    assert!(sections.len() <= SECTIONS_MAX);
    let mut h = Vec::with_capacity(FIXED_LEN + sections.len() * (1 + NAME_LEN_MAX + ENTRY_TAIL));
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&FORMAT.to_le_bytes());
    h.extend_from_slice(&tree_size.to_le_bytes());
    h.extend_from_slice(root_hash);
    h.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    let digests = digests(sections.iter().map(|s| s.bytes).collect());
    for (s, digest) in sections.iter().zip(digests) {
        assert!(name_problem(s.name).is_none(), "section name {:?} was not checked", s.name);
        h.push(s.name.len() as u8);
        h.extend_from_slice(s.name.as_bytes());
        h.extend_from_slice(&s.version.to_le_bytes());
        h.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        h.extend_from_slice(&digest);
        h.extend_from_slice(&(s.values.len() as u64).to_le_bytes());
    }
    h.extend_from_slice(&CHUNK_LEN.to_le_bytes());
    for digest in chunk_digests(sections.iter().map(|s| s.values), CHUNK_LEN as usize) {
        h.extend_from_slice(&digest);
    }
    let digest = Sha256::digest(&h);
    h.extend_from_slice(&digest);
    h
}

/// SHA-256 of each `chunk_len` bytes of the concatenation of `parts` (the last chunk may be
/// shorter), without concatenating them.
fn chunk_digests<'a>(parts: impl Iterator<Item = &'a [u8]>, chunk_len: usize) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut hasher = Sha256::new();
    let mut filled = 0;
    for mut part in parts {
        while !part.is_empty() {
            let take = (chunk_len - filled).min(part.len());
            hasher.update(&part[..take]);
            filled += take;
            part = &part[take..];
            if filled == chunk_len {
                out.push(hasher.finalize_reset().into());
                filled = 0;
            }
        }
    }
    if filled > 0 {
        out.push(hasher.finalize().into());
    }
    out
}

/// Reads the snapshot at `path` and verifies it: magic, format, the section table, the file's
/// exact length, the header digest and every section's digest. The values area is not read:
/// each chunk is checked when first needed ([`Snapshot::verify_values`] checks them all).
/// Refuses with the file and the first reason found.
pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let io = |op: &'static str| {
        let path = path.to_owned();
        move |source| SnapshotError::Io { path, op, source }
    };
    let file = File::open(path).map_err(io("read"))?;
    let len = file.metadata().map_err(io("read"))?.len();
    // The header's largest fixed part: the table of the most sections, and the chunk length.
    let most = FIXED_LEN + SECTIONS_MAX * (1 + NAME_LEN_MAX + ENTRY_TAIL) + 4;
    let mut head = vec![0; (len as usize).min(most)];
    file.read_exact_at(&mut head, 0).map_err(io("read"))?;
    let table = parse_table(path, len, &head)?;
    let Table { tree_size, root_hash, entries, table_end, chunk_len } = table;
    let path = path.to_owned();
    let values_len = entries.iter().fold(0u64, |n, e| n.saturating_add(e.3));
    let bytes_len = entries.iter().fold(0u64, |n, e| n.saturating_add(e.2));
    let chunks = values_len.div_ceil(chunk_len as u64);
    let digests_end = (table_end as u64 + 4).saturating_add(chunks.saturating_mul(DIGEST_LEN as u64));
    let header_end = digests_end.saturating_add(DIGEST_LEN as u64);
    // The exact length the table implies: the header and its digest, the sections, the values.
    let needed = header_end.saturating_add(bytes_len).saturating_add(values_len);
    if len < needed {
        return Err(SnapshotError::Truncated { path, len, needed });
    }
    if len > needed {
        return Err(SnapshotError::TrailingBytes { path, extra: len - needed });
    }
    // Within the file's length, so within memory's: the file was a write of this size.
    let mut header = vec![0; header_end as usize];
    file.read_exact_at(&mut header, 0).map_err(io("read"))?;
    let (covered, digest) = header.split_at(digests_end as usize);
    if Sha256::digest(covered)[..] != *digest {
        return Err(SnapshotError::HeaderChecksumMismatch { path });
    }
    let chunk_table = &covered[table_end + 4..];
    let digests: Vec<[u8; 32]> =
        chunk_table.chunks_exact(DIGEST_LEN).map(|d| d.try_into().expect("32 bytes")).collect();
    let mut bytes = vec![0; bytes_len as usize];
    file.read_exact_at(&mut bytes, header_end).map_err(io("read"))?;
    let mut sections = Vec::with_capacity(entries.len());
    let (mut at, mut values_at) = (0usize, 0u64);
    for (name, version, length, values, _) in &entries {
        sections.push(SectionEntry {
            name: name.clone(),
            version: *version,
            range: at..at + *length as usize,
            values: values_at..values_at + values,
        });
        at += *length as usize;
        values_at += values;
    }
    let computed = digests_of(&bytes, &sections.iter().map(|s| s.range.clone()).collect::<Vec<_>>());
    for ((s, (.., digest)), computed) in sections.iter().zip(&entries).zip(computed) {
        if computed != *digest {
            return Err(SnapshotError::SectionChecksumMismatch {
                path,
                section: s.name.clone(),
                offset: header_end + s.range.start as u64,
                end: header_end + s.range.end as u64,
            });
        }
    }
    let values = ValuesFile {
        path: path.clone(),
        file,
        at: header_end + bytes_len,
        len: values_len,
        chunk_len: chunk_len as u64,
        digests,
        cache: Mutex::new(ChunkCache { held: HashMap::new(), bytes: 0, limit: VALUES_CACHE_BYTES, clock: 0 }),
        on_damage: OnceLock::new(),
    };
    Ok(Snapshot {
        path,
        tree_size,
        root_hash,
        sections,
        bytes: Arc::new(bytes),
        bytes_at: header_end,
        values: Arc::new(values),
        file_len: len,
    })
}

/// The header's table, as read: (name, version, length, values length, digest) per section.
struct Table {
    tree_size: u64,
    root_hash: [u8; 32],
    entries: Vec<(String, u32, u64, u64, [u8; 32])>,
    table_end: usize,
    chunk_len: u32,
}

/// Parses the header's fixed part and table from `head` (the file's first bytes, all of it when
/// the file is shorter than the largest header; the file is `len` bytes).
fn parse_table(path: &Path, len: u64, head: &[u8]) -> Result<Table, SnapshotError> {
    let path = path.to_owned();
    let truncated = |needed: usize| SnapshotError::Truncated { path: path.clone(), len, needed: needed as u64 };
    // The magic first, so a file that is not a snapshot at all says so even when short.
    let magic_seen = head.len().min(MAGIC.len());
    if head[..magic_seen] != MAGIC[..magic_seen] {
        return Err(SnapshotError::BadMagic { path });
    }
    if head.len() < FIXED_LEN {
        return Err(truncated(FIXED_LEN));
    }
    let mut r = Reader { bytes: head, at: MAGIC.len() };
    let format = r.u32();
    if format != FORMAT {
        return Err(SnapshotError::UnsupportedFormat { path, found: format, supported: FORMAT });
    }
    let tree_size = r.u64();
    let root_hash: [u8; 32] = r.take(32).try_into().expect("32 bytes");
    let count = r.u32() as usize;
    if count > SECTIONS_MAX {
        return Err(SnapshotError::MalformedTable {
            path,
            offset: (r.at - 4) as u64,
            reason: format!("{count} sections, at most {SECTIONS_MAX}"),
        });
    }
    let mut entries: Vec<(String, u32, u64, u64, [u8; 32])> = Vec::with_capacity(count);
    for _ in 0..count {
        let entry_at = r.at;
        let Some(&name_len) = head.get(r.at) else { return Err(truncated(r.at + 1)) };
        let name_len = name_len as usize;
        let entry_end = r.at + 1 + name_len + ENTRY_TAIL;
        if head.len() < entry_end {
            return Err(truncated(entry_end));
        }
        r.at += 1;
        let name = r.take(name_len);
        let version = r.u32();
        let length = r.u64();
        let digest: [u8; 32] = r.take(32).try_into().expect("32 bytes");
        let values = r.u64();
        let malformed =
            |reason: String| SnapshotError::MalformedTable { path: path.clone(), offset: entry_at as u64, reason };
        let name = std::str::from_utf8(name).map_err(|_| malformed("section name is not utf-8".into()))?.to_owned();
        if let Some(problem) = name_problem(&name) {
            return Err(malformed(format!("section name {name:?}: {problem}")));
        }
        if entries.iter().any(|e| e.0 == name) {
            return Err(malformed(format!("section {name} appears twice")));
        }
        entries.push((name, version, length, values, digest));
    }
    let table_end = r.at;
    if head.len() < table_end + 4 {
        return Err(truncated(table_end + 4));
    }
    let chunk_len = r.u32();
    if !CHUNK_LEN_RANGE.contains(&chunk_len) {
        return Err(SnapshotError::MalformedTable {
            path,
            offset: table_end as u64,
            reason: format!("chunk length {chunk_len}, not within {CHUNK_LEN_RANGE:?}"),
        });
    }
    Ok(Table { tree_size, root_hash, entries, table_end, chunk_len })
}

/// SHA-256 of each part, on every core (a large snapshot's sections are megabytes each).
fn digests(parts: Vec<&[u8]>) -> Vec<[u8; 32]> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(parts.len()).max(1);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].len()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(vec![[0u8; 32]; parts.len()]);
    let work = || loop {
        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(&i) = order.get(k) else { return };
        let d: [u8; 32] = Sha256::digest(parts[i]).into();
        out.lock().expect("digests lock")[i] = d;
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    out.into_inner().expect("digests lock")
}

/// SHA-256 of each range of `bytes` (each thread takes the largest range left).
fn digests_of(bytes: &[u8], ranges: &[Range<usize>]) -> Vec<[u8; 32]> {
    digests(ranges.iter().map(|r| &bytes[r.clone()]).collect())
}

/// Reads little-endian fields whose bounds the caller has checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }
}
