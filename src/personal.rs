//! Personal data (DESIGN 7, 152-FZ): the names, birth dates, SNILS and addresses behind the
//! pseudonymous ids the log uses, kept outside the signed log. Each subject's record is encrypted
//! (ChaCha20-Poly1305) under a key of its own; erasure destroys the key and the ciphertext, so
//! copies of the ciphertext (backups) become unreadable while every hash and proof of the log
//! stays valid, since the log never held the data. Not access control: callers decide who may
//! read (it is not exposed over HTTP).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::Value;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PersonalError {
    #[error("personal store I/O failed: {0}")]
    Io(String),
    #[error("subject {0:?} is not a pseudonymous id (1-200 bytes of [A-Za-z0-9._:/-])")]
    BadSubject(String),
    #[error("a personal record is a JSON object of strings")]
    BadRecord,
    #[error("the record of {0} does not decrypt (damaged, or its key belongs to another record)")]
    Undecryptable(String),
}

fn io(e: sled::Error) -> PersonalError {
    PersonalError::Io(e.to_string())
}

/// The erasable store of personal records, keyed by pseudonymous subject id (e.g. the learner
/// stream `learner/47-000123`). Durable once a call returns.
pub struct PersonalStore {
    db: sled::Db,
    keys: sled::Tree,
    records: sled::Tree,
}

const NONCE_LEN: usize = 12;

impl PersonalStore {
    pub fn open(dir: &Path) -> Result<Self, PersonalError> {
        let db = crate::store::sled::open_sled(&sled::Config::new().path(dir)).map_err(io)?;
        let keys = db.open_tree("keys").map_err(io)?;
        let records = db.open_tree("records").map_err(io)?;
        Ok(Self { db, keys, records })
    }

    fn check_subject(subject: &str) -> Result<(), PersonalError> {
        if crate::event::is_stream_name(subject) {
            Ok(())
        } else {
            Err(PersonalError::BadSubject(subject.chars().take(80).collect()))
        }
    }

    /// Stores (or replaces) the record of `subject`: a JSON object of strings.
    pub fn put(&self, subject: &str, record: &Value) -> Result<(), PersonalError> {
        Self::check_subject(subject)?;
        let fields = record.as_object().ok_or(PersonalError::BadRecord)?;
        if !fields.values().all(Value::is_string) {
            return Err(PersonalError::BadRecord);
        }
        let key = match self.keys.get(subject).map_err(io)? {
            Some(k) => k.to_vec(),
            None => {
                let k = ChaCha20Poly1305::generate_key(&mut rand_core::OsRng).to_vec();
                self.keys.insert(subject, k.as_slice()).map_err(io)?;
                k
            }
        };
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let plaintext = serde_json::to_vec(record).expect("a JSON value serializes");
        // The subject is the associated data: a record moved under another id does not decrypt.
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: subject.as_bytes() })
            .map_err(|_| PersonalError::Io("encryption failed".into()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        self.records.insert(subject, stored).map_err(io)?;
        self.db.flush().map_err(io)?;
        Ok(())
    }

    /// The record of `subject`, or `None` if there is none or it was erased.
    pub fn get(&self, subject: &str) -> Result<Option<Value>, PersonalError> {
        Self::check_subject(subject)?;
        let (Some(key), Some(stored)) = (self.keys.get(subject).map_err(io)?, self.records.get(subject).map_err(io)?)
        else {
            return Ok(None);
        };
        if stored.len() < NONCE_LEN {
            return Err(PersonalError::Undecryptable(subject.to_owned()));
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&stored[..NONCE_LEN]),
                Payload { msg: &stored[NONCE_LEN..], aad: subject.as_bytes() },
            )
            .map_err(|_| PersonalError::Undecryptable(subject.to_owned()))?;
        serde_json::from_slice(&plaintext).map(Some).map_err(|_| PersonalError::Undecryptable(subject.to_owned()))
    }

    /// Erases `subject`'s personal data: the key first (from then on no copy of the ciphertext
    /// can be read), then the ciphertext. Returns whether there was anything to erase.
    pub fn erase(&self, subject: &str) -> Result<bool, PersonalError> {
        Self::check_subject(subject)?;
        let had_key = self.keys.remove(subject).map_err(io)?.is_some();
        self.db.flush().map_err(io)?;
        let had_record = self.records.remove(subject).map_err(io)?.is_some();
        self.db.flush().map_err(io)?;
        Ok(had_key || had_record)
    }

    /// The sealed bytes stored for `subject` (for tests and backups: ciphertext only).
    pub fn sealed(&self, subject: &str) -> Result<Option<Vec<u8>>, PersonalError> {
        Ok(self.records.get(subject).map_err(io)?.map(|v| v.to_vec()))
    }
}
