//! Personal data (DESIGN 7, 152-FZ): the names, birth dates, SNILS and addresses behind the
//! pseudonymous ids the log uses, kept outside the signed log, sealed per subject and erasable.
//! Not access control: callers decide who may read (it is not exposed over HTTP).
//!
//! Layout of the personal directory (mode 0700; every file 0600):
//! - `keys/<xx>`: the subjects' keys, in 256 small shard files chosen by a hash of the subject;
//! - `records/<xx>`: the sealed records (ChaCha20-Poly1305, a fresh random nonce per seal, the
//!   subject as associated data), sharded the same way, apart from the keys;
//! - `lock`: serializes processes (an advisory `flock`, held for one operation).
//!
//! A shard is never edited in place: every put or erase writes the whole shard to a temporary
//! file, fsyncs it, renames it over the old one and fsyncs the directory, then overwrites the
//! replaced file's bytes through a handle still open on it (best effort against the filesystem
//! keeping them). So once `erase` returns, no file of the project holds the subject's key or
//! record, and a copy of a record made earlier (a backup of `records/`) cannot be read. What the
//! storage below keeps of freed blocks (journals, SSD remapping, snapshots) and copies made
//! outside (backups of `keys/`) are the operator's to handle: README, Operations.
//!
//! **Architecture Invariant:** no file holds a subject's key and its record together, and no
//! file ever holds a record's plaintext.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PersonalError {
    #[error("personal store: couldn't {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("personal store: {} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("subject {0:?} is not a pseudonymous id (a stream name: 1-200 bytes of [A-Za-z0-9._:/-])")]
    BadSubject(String),
    #[error("a personal record is a JSON object of strings, at most {RECORD_BYTES_MAX} bytes")]
    BadRecord,
    #[error("personal store: shard {} holds {SHARD_LEN_MAX} subjects, its limit", path.display())]
    ShardFull { path: PathBuf },
    #[error("the record of {0} does not decrypt (damaged, or its key belongs to another record)")]
    Undecryptable(String),
    #[error("personal store: couldn't migrate the old sled store in {}: {reason}", path.display())]
    Migration { path: PathBuf, reason: String },
}

/// Largest record, as JSON text, before sealing.
pub const RECORD_BYTES_MAX: usize = 16 * 1024;
/// Most subjects one shard holds (256 shards: ~16.7 million subjects in all).
pub const SHARD_LEN_MAX: usize = 65_536;
/// Largest shard file read: the limits above, with room for the framing.
const SHARD_BYTES_MAX: u64 = 256 * 1024 * 1024;
const SHARD_MAGIC: &[u8; 8] = b"ztshard1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Associated data prefix of every seal (then the subject): a record moved under another id, or
/// sealed for another purpose, does not decrypt.
const AAD_PREFIX: &[u8] = b"zachetka/personal/v1\n";

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PersonalError + 'a {
    move |source| PersonalError::Io { what, path: path.to_owned(), source }
}

/// The erasable store of personal records, keyed by pseudonymous subject id (e.g. the learner
/// stream `learner/47-000123`). Durable once a call returns; safe to use from several processes
/// at once (each call takes the store's lock); holds no state between calls.
pub struct PersonalStore {
    dir: PathBuf,
}

impl PersonalStore {
    /// Opens (creating, mode 0700) the store in `dir`. A store of the earlier layout (one sled
    /// database holding keys and records together) is migrated and its files removed.
    pub fn open(dir: &Path) -> Result<Self, PersonalError> {
        let store = Self { dir: dir.to_owned() };
        create_private_dir(dir)?;
        create_private_dir(&store.dir.join("keys"))?;
        create_private_dir(&store.dir.join("records"))?;
        let _lock = store.lock()?;
        for kind in ["keys", "records"] {
            remove_stale_temporaries(&store.dir.join(kind))?;
        }
        if dir.join("db").exists() {
            store.migrate_sled()?;
        }
        Ok(store)
    }

    fn lock(&self) -> Result<std::fs::File, PersonalError> {
        let path = self.dir.join("lock");
        let f = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        // Blocks while another process runs one operation (no timeout needed: operations are short).
        fs2::FileExt::lock_exclusive(&f).map_err(io_err("lock", &path))?;
        Ok(f)
    }

    fn check_subject(subject: &str) -> Result<(), PersonalError> {
        if crate::event::is_stream_name(subject) {
            Ok(())
        } else {
            Err(PersonalError::BadSubject(subject.chars().take(80).collect()))
        }
    }

    /// The shard file of `subject` in `kind` (`keys` or `records`).
    fn shard_path(&self, kind: &str, subject: &str) -> PathBuf {
        let h = Sha256::new().chain_update(b"zachetka/personal/shard\n").chain_update(subject).finalize();
        self.dir.join(kind).join(format!("{:02x}", h[0]))
    }

    /// Stores (or replaces) the record of `subject`: a JSON object of strings.
    pub fn put(&self, subject: &str, record: &Value) -> Result<(), PersonalError> {
        Self::check_subject(subject)?;
        let _lock = self.lock()?;
        self.put_locked(subject, record)
    }

    /// `put`, the store's lock held by the caller.
    fn put_locked(&self, subject: &str, record: &Value) -> Result<(), PersonalError> {
        let fields = record.as_object().ok_or(PersonalError::BadRecord)?;
        if !fields.values().all(Value::is_string) {
            return Err(PersonalError::BadRecord);
        }
        let plaintext = serde_json::to_vec(record).expect("a JSON value serializes");
        if plaintext.len() > RECORD_BYTES_MAX {
            return Err(PersonalError::BadRecord);
        }
        let key_path = self.shard_path("keys", subject);
        let mut keys = read_shard(&key_path)?;
        let key = match keys.get(subject) {
            Some(k) => key_of(&key_path, k)?,
            None => {
                let k: [u8; KEY_LEN] = ChaCha20Poly1305::generate_key(&mut rand_core::OsRng).into();
                keys.insert(subject.to_owned(), k.to_vec());
                write_shard(&key_path, &keys)?;
                // Here the key is durable and the record not yet: a crash leaves a key without a
                // record, which reads as no record and is reused by the next put.
                k
            }
        };
        let record_path = self.shard_path("records", subject);
        let mut records = read_shard(&record_path)?;
        records.insert(subject.to_owned(), seal(&key, subject, &plaintext));
        write_shard(&record_path, &records)
    }

    /// The record of `subject`, or `None` if there is none or it was erased.
    pub fn get(&self, subject: &str) -> Result<Option<Value>, PersonalError> {
        Self::check_subject(subject)?;
        let _lock = self.lock()?;
        let key_path = self.shard_path("keys", subject);
        let (Some(key), Some(sealed)) =
            (read_shard(&key_path)?.remove(subject), read_shard(&self.shard_path("records", subject))?.remove(subject))
        else {
            return Ok(None);
        };
        let plaintext = open_sealed(&key_of(&key_path, &key)?, subject, &sealed)
            .ok_or_else(|| PersonalError::Undecryptable(subject.to_owned()))?;
        serde_json::from_slice(&plaintext).map(Some).map_err(|_| PersonalError::Undecryptable(subject.to_owned()))
    }

    /// Erases `subject`'s personal data: the key first (from then on no copy of the record can
    /// be read), then the sealed record. Returns whether there was anything to erase.
    pub fn erase(&self, subject: &str) -> Result<bool, PersonalError> {
        Self::check_subject(subject)?;
        let _lock = self.lock()?;
        let key_path = self.shard_path("keys", subject);
        let mut keys = read_shard(&key_path)?;
        let had_key = keys.remove(subject).is_some();
        if had_key {
            write_shard(&key_path, &keys)?;
        }
        // Here the key is gone for good; a crash leaves the sealed record, which no one can read
        // and the next erase (or put) of the subject replaces.
        let record_path = self.shard_path("records", subject);
        let mut records = read_shard(&record_path)?;
        let had_record = records.remove(subject).is_some();
        if had_record {
            write_shard(&record_path, &records)?;
        }
        Ok(had_key || had_record)
    }

    /// The sealed bytes stored for `subject` (for tests: ciphertext only).
    #[cfg(feature = "testing")]
    pub fn sealed(&self, subject: &str) -> Result<Option<Vec<u8>>, PersonalError> {
        Self::check_subject(subject)?;
        let _lock = self.lock()?;
        Ok(read_shard(&self.shard_path("records", subject))?.remove(subject))
    }

    /// The key stored for `subject`: for tests that look for it where it must not be.
    #[cfg(feature = "testing")]
    pub fn key_for_tests(&self, subject: &str) -> Result<Option<Vec<u8>>, PersonalError> {
        Self::check_subject(subject)?;
        let _lock = self.lock()?;
        Ok(read_shard(&self.shard_path("keys", subject))?.remove(subject))
    }

    /// Moves the records of the earlier layout (sled's `keys` and `records` trees in this
    /// directory, sealed with the subject alone as associated data) into the shards, then
    /// removes sled's files, which held every key beside its ciphertext.
    fn migrate_sled(&self) -> Result<(), PersonalError> {
        let fail = |reason: String| PersonalError::Migration { path: self.dir.clone(), reason };
        for (subject, key, stored) in crate::store::sled::legacy_personal_records(&self.dir).map_err(fail)? {
            let subject = String::from_utf8(subject).map_err(|_| fail("a subject is not UTF-8".into()))?;
            if key.len() != KEY_LEN || stored.len() < NONCE_LEN {
                return Err(fail(format!("the key or record of {subject} has the wrong length")));
            }
            let plaintext = ChaCha20Poly1305::new(Key::from_slice(&key))
                .decrypt(
                    Nonce::from_slice(&stored[..NONCE_LEN]),
                    Payload { msg: &stored[NONCE_LEN..], aad: subject.as_bytes() },
                )
                .map_err(|_| fail(format!("the record of {subject} does not decrypt")))?;
            let record: Value = serde_json::from_slice(&plaintext).map_err(|e| fail(e.to_string()))?;
            // The store's lock is held by `open`, our caller: put's own lock would wait on it.
            Self::check_subject(&subject)?;
            self.put_locked(&subject, &record)?;
        }
        for entry in std::fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name == "blobs" {
                std::fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
            } else if name == "db" || name == "conf" || name.starts_with("snap.") {
                std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
        sync_dir(&self.dir)
    }
}

fn aad(subject: &str) -> Vec<u8> {
    [AAD_PREFIX, subject.as_bytes()].concat()
}

/// `nonce || ciphertext || tag`, under a fresh random nonce.
fn seal(key: &[u8; KEY_LEN], subject: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let sealed = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad(subject) })
        .expect("ChaCha20-Poly1305 seals any message under 256 GiB");
    [nonce.as_slice(), &sealed].concat()
}

fn open_sealed(key: &[u8; KEY_LEN], subject: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(&sealed[..NONCE_LEN]), Payload { msg: &sealed[NONCE_LEN..], aad: &aad(subject) })
        .ok()
}

fn key_of(path: &Path, stored: &[u8]) -> Result<[u8; KEY_LEN], PersonalError> {
    stored
        .try_into()
        .map_err(|_| PersonalError::Corrupt { path: path.to_owned(), reason: "a key is not 32 bytes".into() })
}

fn private_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts
}

/// Creates `dir` with mode 0700, or narrows an existing one to 0700.
fn create_private_dir(dir: &Path) -> Result<(), PersonalError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_err("create", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("set the mode of", dir))?;
    }
    Ok(())
}

/// Scrubs and removes the temporary shards a crash left behind (they may hold keys erased since).
fn remove_stale_temporaries(dir: &Path) -> Result<(), PersonalError> {
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let path = entry.map_err(io_err("list", dir))?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(io_err("open", &path))?;
            scrub(f, &path)?;
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// Overwrites a file's bytes with zeros and fsyncs it.
fn scrub(mut f: std::fs::File, path: &Path) -> Result<(), PersonalError> {
    let len = f.metadata().map_err(io_err("stat", path))?.len();
    f.rewind().map_err(io_err("scrub", path))?;
    std::io::copy(&mut std::io::repeat(0).take(len), &mut f).map_err(io_err("scrub", path))?;
    f.sync_all().map_err(io_err("scrub", path))
}

fn sync_dir(dir: &Path) -> Result<(), PersonalError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

/// A shard: `ztshard1`, a u32 count, then per subject (sorted) a u8 length and the subject, a
/// u32 length and the value; then SHA-256 of all that. Integers little-endian. A missing file is
/// an empty shard.
fn read_shard(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, PersonalError> {
    let corrupt = |reason: &str| PersonalError::Corrupt { path: path.to_owned(), reason: reason.to_owned() };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let len = f.metadata().map_err(io_err("stat", path))?.len();
    if len > SHARD_BYTES_MAX {
        return Err(corrupt("larger than a shard can be"));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes).map_err(io_err("read", path))?;
    if bytes.len() < SHARD_MAGIC.len() + 4 + 32 || &bytes[..SHARD_MAGIC.len()] != SHARD_MAGIC {
        return Err(corrupt("not a shard file"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(corrupt("checksum mismatch"));
    }
    let mut at = SHARD_MAGIC.len();
    let mut take = |n: usize| -> Result<&[u8], PersonalError> {
        let s = body.get(at..at + n).ok_or_else(|| corrupt("truncated entry"))?;
        at += n;
        Ok(s)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    if count > SHARD_LEN_MAX {
        return Err(corrupt("more subjects than a shard holds"));
    }
    let mut out = BTreeMap::new();
    for i in 0..count {
        let n = take(1)?[0] as usize;
        let subject = std::str::from_utf8(take(n)?).map_err(|_| corrupt(&format!("subject {i} is not UTF-8")))?;
        let subject = subject.to_owned();
        let n = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let value = take(n)?.to_vec();
        if out.insert(subject, value).is_some() {
            return Err(corrupt(&format!("subject {i} appears twice")));
        }
    }
    if at != body.len() {
        return Err(corrupt("bytes after the last entry"));
    }
    Ok(out)
}

/// Replaces the shard at `path` with `entries` (or removes it when empty), durably: temporary
/// file, fsync, rename, fsync of the directory. Then overwrites the bytes of the replaced file
/// through a handle opened before the rename, so that the filesystem is at least asked to drop
/// them (it may keep copies anyway: journals, copy-on-write, flash remapping).
fn write_shard(path: &Path, entries: &BTreeMap<String, Vec<u8>>) -> Result<(), PersonalError> {
    if entries.len() > SHARD_LEN_MAX {
        return Err(PersonalError::ShardFull { path: path.to_owned() });
    }
    let dir = path.parent().expect("a shard lives in a directory");
    let old = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("open", path)(e)),
    };
    if entries.is_empty() {
        if old.is_some() {
            std::fs::remove_file(path).map_err(io_err("remove", path))?;
        }
    } else {
        let mut body = SHARD_MAGIC.to_vec();
        body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (subject, value) in entries {
            assert!(subject.len() <= 255 && value.len() <= u32::MAX as usize, "checked before insertion");
            body.push(subject.len() as u8);
            body.extend_from_slice(subject.as_bytes());
            body.extend_from_slice(&(value.len() as u32).to_le_bytes());
            body.extend_from_slice(value);
        }
        let sum = Sha256::digest(&body);
        body.extend_from_slice(&sum);
        let tmp = path.with_extension("tmp");
        // A temporary a crash left since `open` may hold keys erased since: scrub it, not just
        // truncate it.
        if let Ok(stale) = std::fs::OpenOptions::new().write(true).open(&tmp) {
            scrub(stale, &tmp)?;
        }
        let mut f =
            private_options().write(true).create(true).truncate(true).open(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&body).and_then(|()| f.sync_all()).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err("rename onto", path))?;
    }
    sync_dir(dir)?;
    // The new shard is durable and in place; what follows only scrubs the replaced one, so a
    // crash here loses nothing (the old bytes are then merely freed, not overwritten).
    match old {
        Some(f) => scrub(f, path),
        None => Ok(()),
    }
}
