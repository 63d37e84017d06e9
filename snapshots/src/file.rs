//! One snapshot file: its layout (crate docs, "File format"), building its header, and reading it
//! back with every check. Not the directory (naming, atomic writes, retention, choosing which
//! snapshot to use): that is `dir.rs`.

use crate::error::SnapshotError;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The first bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"ZACHSNAP";
/// The file format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The most sections a file may hold (the rules and every read model, with room to spare).
pub const SECTIONS_MAX: usize = 256;
/// The longest section name, in bytes.
pub const NAME_LEN_MAX: usize = 64;

/// Magic, format, tree size, root hash, section count.
const FIXED_LEN: usize = 8 + 4 + 8 + 32 + 4;
const DIGEST_LEN: usize = 32;

/// One section as written or read: a name, its own layout version and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    pub name: &'a str,
    pub version: u32,
    pub bytes: &'a [u8],
}

/// A section's place in a read file.
#[derive(Debug, Clone)]
struct SectionEntry {
    name: String,
    version: u32,
    range: Range<usize>,
}

/// A verified snapshot: its log position and sections, held in the one buffer the file was read
/// into (sections are slices of it).
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    tree_size: u64,
    root_hash: [u8; 32],
    sections: Vec<SectionEntry>,
    /// Shared: state loaded lazily keeps ranges of it (`zachetka_projections::lazy`).
    bytes: std::sync::Arc<Vec<u8>>,
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
    pub fn section(&self, name: &str) -> Option<Section<'_>> {
        self.sections().find(|s| s.name == name)
    }

    /// Every section, in file order.
    pub fn sections(&self) -> impl Iterator<Item = Section<'_>> {
        self.sections.iter().map(|e| Section { name: &e.name, version: e.version, bytes: &self.bytes[e.range.clone()] })
    }

    /// Where the section named `name` lies in the file: its first byte and the byte after its
    /// last (what a report of a differing section names).
    pub fn section_span(&self, name: &str) -> Option<(u64, u64)> {
        self.sections.iter().find(|e| e.name == name).map(|e| (e.range.start as u64, e.range.end as u64))
    }

    /// The file's bytes, which every section is a slice of: state that keeps parts of a
    /// section encoded until they are needed shares this buffer instead of copying them.
    pub fn buffer(&self) -> &std::sync::Arc<Vec<u8>> {
        &self.bytes
    }

    /// The size of the file, in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
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

/// The header (magic to the end of the section table) for these sections, the section digests
/// computed here (one SHA-256 pass over each section), and the SHA-256 of the header.
/// The caller has checked the names (`dir::write`).
pub(crate) fn header(tree_size: u64, root_hash: &[u8; 32], sections: &[Section]) -> (Vec<u8>, [u8; 32]) {
    assert!(sections.len() <= SECTIONS_MAX);
    let mut h = Vec::with_capacity(FIXED_LEN + sections.len() * (1 + NAME_LEN_MAX + 4 + 8 + 32));
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&FORMAT.to_le_bytes());
    h.extend_from_slice(&tree_size.to_le_bytes());
    h.extend_from_slice(root_hash);
    h.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for s in sections {
        assert!(name_problem(s.name).is_none(), "section name {:?} was not checked", s.name);
        h.push(s.name.len() as u8);
        h.extend_from_slice(s.name.as_bytes());
        h.extend_from_slice(&s.version.to_le_bytes());
        h.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        h.extend_from_slice(&Sha256::digest(s.bytes));
    }
    let digest = Sha256::digest(&h).into();
    (h, digest)
}

/// Reads the snapshot at `path` and verifies it: magic, format, the section table, the file's
/// exact length, the header digest and every section's digest. Refuses with the file and the
/// first reason found.
pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let bytes =
        std::fs::read(path).map_err(|source| SnapshotError::Io { path: path.to_owned(), op: "read", source })?;
    parse(path, bytes)
}

/// The checks of `read`, on the file's bytes.
pub(crate) fn parse(path: &Path, bytes: Vec<u8>) -> Result<Snapshot, SnapshotError> {
    let path = path.to_owned();
    let len = bytes.len() as u64;
    let truncated = |needed: usize| SnapshotError::Truncated { path: path.clone(), len, needed: needed as u64 };
    // The magic first, so a file that is not a snapshot at all says so even when short.
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes[..magic_seen] != MAGIC[..magic_seen] {
        return Err(SnapshotError::BadMagic { path });
    }
    if bytes.len() < FIXED_LEN {
        return Err(truncated(FIXED_LEN));
    }
    let mut r = Reader { bytes: &bytes, at: MAGIC.len() };
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
    let mut table = Vec::with_capacity(count);
    for _ in 0..count {
        let entry_at = r.at;
        let Some(&name_len) = bytes.get(r.at) else { return Err(truncated(r.at + 1)) };
        let name_len = name_len as usize;
        let entry_end = r.at + 1 + name_len + 4 + 8 + 32;
        if bytes.len() < entry_end {
            return Err(truncated(entry_end));
        }
        r.at += 1;
        let name = r.take(name_len);
        let version = r.u32();
        let length = r.u64();
        let digest: [u8; 32] = r.take(32).try_into().expect("32 bytes");
        let malformed =
            |reason: String| SnapshotError::MalformedTable { path: path.clone(), offset: entry_at as u64, reason };
        let name = std::str::from_utf8(name).map_err(|_| malformed("section name is not utf-8".into()))?.to_owned();
        if let Some(problem) = name_problem(&name) {
            return Err(malformed(format!("section name {name:?}: {problem}")));
        }
        if table.iter().any(|(n, ..): &(String, u32, u64, [u8; 32])| *n == name) {
            return Err(malformed(format!("section {name} appears twice")));
        }
        table.push((name, version, length, digest));
    }
    let table_end = r.at;
    // The exact length the table implies: the sections, then the header digest.
    let mut needed = table_end as u64;
    for (_, _, length, _) in &table {
        needed = needed.saturating_add(*length);
    }
    needed = needed.saturating_add(DIGEST_LEN as u64);
    if len < needed {
        return Err(SnapshotError::Truncated { path, len, needed });
    }
    if len > needed {
        return Err(SnapshotError::TrailingBytes { path, extra: len - needed });
    }
    let digest_at = bytes.len() - DIGEST_LEN;
    if Sha256::digest(&bytes[..table_end])[..] != bytes[digest_at..] {
        return Err(SnapshotError::HeaderChecksumMismatch { path });
    }
    let mut ranges = Vec::with_capacity(table.len());
    let mut at = table_end;
    for (_, _, length, _) in &table {
        // Fits in usize: the whole file is in memory and the length was checked above.
        ranges.push(at..at + *length as usize);
        at += *length as usize;
    }
    let digests = digests(&bytes, &ranges);
    let mut sections = Vec::with_capacity(table.len());
    for (((name, version, _, digest), range), computed) in table.into_iter().zip(ranges).zip(digests) {
        if computed != digest {
            return Err(SnapshotError::SectionChecksumMismatch {
                path,
                section: name,
                offset: range.start as u64,
                end: range.end as u64,
            });
        }
        sections.push(SectionEntry { name, version, range });
    }
    assert_eq!(at, digest_at, "the sections end where the header digest starts");
    Ok(Snapshot { path, tree_size, root_hash, sections, bytes: std::sync::Arc::new(bytes) })
}

/// SHA-256 of each range of `bytes`, on every core (the sections of a large snapshot are tens
/// of megabytes each: hashing them is most of reading the file). Each thread takes the largest
/// section left.
fn digests(bytes: &[u8], ranges: &[Range<usize>]) -> Vec<[u8; 32]> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(ranges.len()).max(1);
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ranges[i].len()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(vec![[0u8; 32]; ranges.len()]);
    let work = || loop {
        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(&i) = order.get(k) else { return };
        let d: [u8; 32] = Sha256::digest(&bytes[ranges[i].clone()]).into();
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
