//! A witness that keeps state (C2SP `tlog-witness`, DESIGN 3.6): it cosigns a log's checkpoint
//! only if the checkpoint carries the log's valid signature and extends, by a consistency proof,
//! the last checkpoint it cosigned for that log, so it refuses a split view or a rollback. The
//! protocol is pure here ([`AddCheckpoint`], [`check`]); [`WitnessService`] adds the durable
//! state and the cosignature; `crate::api::witness` serves `POST /add-checkpoint`. Not HTTP, not
//! the cosignature format (`cosignature`), and not the log's side of the protocol
//! (`crate::cosigning`).

use crate::checkpoint::{self, CheckpointError};
use crate::cosignature::{self, Witness};
use crate::merkle::{self, Hash, HashB64};
use crate::time::Clock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Most consistency proof lines a request may hold (the spec's limit: a proof within a tree of
/// 2^63 leaves).
pub const PROOF_LINES_MAX: usize = 63;

/// Largest `add-checkpoint` body read: the old size, 63 proof lines, and a checkpoint with room
/// for many signatures.
pub const REQUEST_BYTES_MAX: usize = 16 << 10;

/// The content type of a 409 answer: the witness's latest size for the log, in decimal.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why a witness does not cosign; each has its HTTP status (the spec's) and a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessRefusal {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("the request body exceeds {REQUEST_BYTES_MAX} bytes")]
    TooLarge,
    #[error("old size {old} is beyond the checkpoint's tree size {tree_size}")]
    OldBeyondCheckpoint { old: u64, tree_size: u64 },
    #[error("no log of origin {0:?} is witnessed here")]
    UnknownLog(String),
    #[error("the checkpoint carries no valid signature by the log's key {0}")]
    SignatureInvalid(String),
    #[error("old size {old} is not the tree size last cosigned for this log, {latest}")]
    OldSizeMismatch { old: u64, latest: u64 },
    #[error("the checkpoint is of the tree size last cosigned, {latest}, with another root hash")]
    RootHashMismatch { latest: u64 },
    #[error("the consistency proof from tree size {old} to {tree_size} does not verify")]
    ConsistencyInvalid { old: u64, tree_size: u64 },
    #[error("couldn't make the witness's state durable: {0}")]
    StateUnavailable(String),
}

impl WitnessRefusal {
    /// The HTTP status C2SP `tlog-witness` gives this refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::OldBeyondCheckpoint { .. } => 400,
            Self::SignatureInvalid(_) => 403,
            Self::UnknownLog(_) => 404,
            Self::OldSizeMismatch { .. } | Self::RootHashMismatch { .. } => 409,
            Self::TooLarge => 413,
            Self::ConsistencyInvalid { .. } => 422,
            Self::StateUnavailable(_) => 503,
        }
    }

    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_request",
            Self::TooLarge => "body_too_large",
            Self::OldBeyondCheckpoint { .. } => "old_size_beyond_checkpoint",
            Self::UnknownLog(_) => "unknown_log",
            Self::SignatureInvalid(_) => "signature_invalid",
            Self::OldSizeMismatch { .. } => "old_size_mismatch",
            Self::RootHashMismatch { .. } => "root_hash_mismatch",
            Self::ConsistencyInvalid { .. } => "consistency_invalid",
            Self::StateUnavailable(_) => "state_unavailable",
        }
    }

    /// The witness's latest tree size for the log, which a 409 answer carries.
    pub fn latest_size(&self) -> Option<u64> {
        match self {
            Self::OldSizeMismatch { latest, .. } | Self::RootHashMismatch { latest } => Some(*latest),
            _ => None,
        }
    }
}

/// An `add-checkpoint` request: the size the client believes the witness last cosigned, a
/// consistency proof from it, and the checkpoint note.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// Parses a request body strictly: `old <decimal, no leading zero>\n`, at most 63 lines of
    /// one base64 hash each, an empty line, then the checkpoint note.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessRefusal> {
        let bad = |m: &str| WitnessRefusal::Malformed(m.to_owned());
        let mut rest = body;
        let mut next_line = || -> Result<&[u8], WitnessRefusal> {
            let end = rest.iter().position(|b| *b == b'\n').ok_or_else(|| bad("a line does not end in a newline"))?;
            let line = &rest[..end];
            rest = &rest[end + 1..];
            Ok(line)
        };
        let first = next_line()?;
        let digits = first.strip_prefix(b"old ").ok_or_else(|| bad("the first line is not `old <size>`"))?;
        let canonical =
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) && (digits == b"0" || digits[0] != b'0');
        let old = std::str::from_utf8(digits)
            .ok()
            .filter(|_| canonical)
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| bad("the old size is not a decimal without leading zeroes"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == PROOF_LINES_MAX {
                return Err(bad("more than 63 consistency proof lines"));
            }
            let hash = std::str::from_utf8(line).ok().and_then(Hash::from_b64);
            proof.push(hash.ok_or_else(|| bad("a consistency proof line is not one base64 hash"))?);
        }
        Ok(Self { old, proof, checkpoint: rest.to_vec() })
    }

    /// The request body (the inverse of [`AddCheckpoint::parse`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old).into_bytes();
        for h in &self.proof {
            out.extend_from_slice(h.to_b64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// The logs a witness witnesses: origin to the log's verifier key (whose key name is the origin).
#[derive(Debug, Clone, Default)]
pub struct Logs(BTreeMap<String, String>);

impl Logs {
    /// Each a ledger's verifier key (`<origin>+<hex id>+<base64(0x01 || key)>`); one per origin.
    pub fn parse(vkeys: &[String]) -> Result<Self, String> {
        let mut logs = BTreeMap::new();
        for vkey in vkeys {
            signed_note::StandardVerifier::new(vkey).map_err(|e| format!("{vkey:?} is no ledger verifier key: {e}"))?;
            if checkpoint::public_key_of_verifier_key(vkey).is_none() {
                return Err(format!("{vkey:?} is no ed25519 ledger verifier key"));
            }
            let origin = vkey.split('+').next().expect("split yields one part").to_owned();
            if logs.insert(origin.clone(), vkey.clone()).is_some() {
                return Err(format!("the log {origin} is given twice"));
            }
        }
        Ok(Self(logs))
    }
}

/// What a witness holds of a log: the tree size and root hash it last cosigned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogState {
    pub tree_size: u64,
    pub root_hash: Hash,
}

/// A request that passed every check: the log's origin, its new state, and the body to cosign.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub origin: String,
    pub state: LogState,
}

/// Checks `req` against `logs` and the witness's `state` (origin to the last cosigned state),
/// in the spec's order: a known origin (404), the log's signature (403), the old size within the
/// checkpoint (400) and equal to the size last cosigned (409), then the consistency proof (422;
/// at equal sizes the root hashes must be equal, 409). Pure: the caller persists the new state.
pub fn check(logs: &Logs, state: &BTreeMap<String, LogState>, req: &AddCheckpoint) -> Result<Accepted, WitnessRefusal> {
    let (origin, _) = checkpoint::parse_unverified(&req.checkpoint)
        .ok_or_else(|| WitnessRefusal::Malformed("the checkpoint is no signed checkpoint note".into()))?;
    let vkey = logs.0.get(&origin).ok_or_else(|| WitnessRefusal::UnknownLog(origin.clone()))?;
    let head = match checkpoint::verify_checkpoint(&req.checkpoint, vkey, &origin) {
        Ok(v) => v.head,
        Err(CheckpointError::Unverified(_)) => return Err(WitnessRefusal::SignatureInvalid(vkey.clone())),
        Err(e) => return Err(WitnessRefusal::Malformed(format!("the checkpoint: {e}"))),
    };
    let (old, tree_size) = (req.old, head.tree_size);
    if old > tree_size {
        return Err(WitnessRefusal::OldBeyondCheckpoint { old, tree_size });
    }
    let latest = state.get(&origin).copied();
    let latest_size = latest.map_or(0, |s| s.tree_size);
    if old != latest_size {
        return Err(WitnessRefusal::OldSizeMismatch { old, latest: latest_size });
    }
    let new = LogState { tree_size, root_hash: head.root_hash };
    // An empty tree held is as good as none: every tree extends it, with an empty proof.
    match latest.filter(|s| s.tree_size > 0) {
        None if !req.proof.is_empty() => {
            Err(WitnessRefusal::Malformed("a proof from tree size 0 must be empty".into()))
        }
        None => Ok(Accepted { origin, state: new }),
        Some(s) if s.tree_size == tree_size && s.root_hash != head.root_hash => {
            Err(WitnessRefusal::RootHashMismatch { latest: s.tree_size })
        }
        Some(s) => merkle::verify_consistency(s.tree_size, tree_size, s.root_hash, head.root_hash, &req.proof)
            .map(|()| Accepted { origin, state: new })
            .map_err(|_| WitnessRefusal::ConsistencyInvalid { old, tree_size }),
    }
}

/// Why a witness's state directory cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("couldn't {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is in use by another witness process")]
    Locked(PathBuf),
    #[error("{path} is not a witness state file ({detail}); a witness that forgot what it cosigned could be rolled back, so it does not start")]
    Corrupt { path: PathBuf, detail: String },
}

/// The name of the state file in the witness's directory.
const STATE_FILE: &str = "witness-state.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    logs: BTreeMap<String, StoredLog>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredLog {
    tree_size: u64,
    root_hash: String,
}

/// A witness with its durable state: what it answers `add-checkpoint` with.
///
/// **Contract:** checking a request against the state and making the new state durable happen
/// under one lock, so concurrent submissions are serialized (no request checked against a state
/// that another is replacing, the spec's rollback race); the state file is written to a temporary
/// file, fsynced, renamed over the old one, and the directory fsynced, all before the
/// cosignature is returned. A state that cannot be made durable cosigns nothing.
pub struct WitnessService {
    witness: Witness,
    logs: Logs,
    clock: Arc<dyn Clock>,
    dir: PathBuf,
    state: Mutex<BTreeMap<String, LogState>>,
    _lock: std::fs::File,
}

impl WitnessService {
    /// Opens (creating it if absent) the state directory `dir`, locked for this process.
    pub fn open(dir: &Path, witness: Witness, logs: Logs, clock: Arc<dyn Clock>) -> Result<Self, WitnessError> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| WitnessError::Io { what, path, source }
        };
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(io("create", dir))?;
        let lock_path = dir.join("witness.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        fs2::FileExt::try_lock_exclusive(&lock).map_err(|_| WitnessError::Locked(dir.to_owned()))?;
        let path = dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => parse_state(&bytes).map_err(|detail| WitnessError::Corrupt { path, detail })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        Ok(Self { witness, logs, clock, dir: dir.to_owned(), state: Mutex::new(state), _lock: lock })
    }

    /// The tree size and root hash last cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Option<LogState> {
        self.state.lock().expect("witness state lock").get(origin).copied()
    }

    /// What this witness's verifiers are given.
    pub fn verifier_key(&self) -> cosignature::WitnessKey {
        self.witness.verifier_key()
    }

    /// Answers an `add-checkpoint` body: this witness's cosignature line (timestamped now) once
    /// the new state is durable, or why not (the state then is unchanged).
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<String, WitnessRefusal> {
        if body.len() > REQUEST_BYTES_MAX {
            return Err(WitnessRefusal::TooLarge);
        }
        let req = AddCheckpoint::parse(body)?;
        let mut state = self.state.lock().expect("witness state lock");
        let accepted = check(&self.logs, &state, &req)?;
        if state.get(&accepted.origin) != Some(&accepted.state) {
            let previous = state.get(&accepted.origin).map_or(0, |s| s.tree_size);
            assert!(accepted.state.tree_size >= previous, "a checked checkpoint never rolls a log back");
            let mut next = state.clone();
            next.insert(accepted.origin.clone(), accepted.state);
            self.persist(&next).map_err(|e| WitnessRefusal::StateUnavailable(e.to_string()))?;
            // Durable: a crash from here on keeps the new state, and a retry is cosigned again.
            *state = next;
        }
        drop(state);
        let body = cosignature::note_body(&req.checkpoint).expect("the checkpoint verified as a note");
        let now = u64::try_from(self.clock.now_unix()).unwrap_or(0);
        Ok(self.witness.cosignature_line(body, now).expect("a timestamp of the clock is below 2^63"))
    }

    fn persist(&self, state: &BTreeMap<String, LogState>) -> std::io::Result<()> {
        let file = StateFile {
            logs: (state.iter())
                .map(|(o, s)| (o.clone(), StoredLog { tree_size: s.tree_size, root_hash: s.root_hash.to_b64() }))
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("state serializes");
        write_atomic(&self.dir, STATE_FILE, &bytes)
    }
}

fn parse_state(bytes: &[u8]) -> Result<BTreeMap<String, LogState>, String> {
    let file: StateFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    (file.logs.into_iter())
        .map(|(origin, s)| {
            let root_hash = Hash::from_b64(&s.root_hash).ok_or_else(|| format!("the root hash of {origin}"))?;
            Ok((origin, LogState { tree_size: s.tree_size, root_hash }))
        })
        .collect()
}

/// Writes `dir/name` so that a crash leaves the old file or the new one, never a torn one: a
/// temporary file (mode 0600), fsynced, renamed over `name`, then the directory fsynced.
/// Durable once it returns.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create(true).truncate(true),
            0o600,
        )
        .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    // The temporary file is durable but not yet the file: a crash here leaves the old one.
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}
