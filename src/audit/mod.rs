//! The audit: recompute everything from the raw store and report every violation with its
//! position (DESIGN 6). It trusts nothing the store derived: leaf hashes, stored hashes, roots,
//! stream chains and indexes are recomputed from entry bytes; signatures and checkpoints are
//! re-verified. Not a repair tool: it reads only.
//!
//! `mod.rs` walks the log in chunks (verifying each chunk's entries on every core) and keeps the
//! state of the walk in an [`Auditor`]; `entry.rs` checks one entry (its bytes, stored hashes,
//! signature, the rules, its stream chain and its index records), `checkpoints.rs` the signed
//! checkpoints as the recomputed tree reaches them, `indexes.rs` what is left at the end (the
//! head, each stream's indexed head).

use crate::checkpoint::VerifiedCheckpoint;
use crate::event;
use crate::keys::KeyCache;
use crate::merkle::{self, Hash, HashB64, MemoryTree};
use crate::store::{LedgerConfig, Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use zachetka_projections::model::ParsedFact;

mod checkpoints;
mod entry;
mod indexes;
mod projections;

pub use projections::{DerivedSources, ServedDigest};

/// Where a violation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// An entry, by seq (its leaf index).
    Entry { seq: u64 },
    /// A checkpoint, by the tree size it is stored under.
    Checkpoint { tree_size: u64 },
    /// The store's head record.
    Head,
    /// The head of a stream's chain, as indexed.
    Stream { stream: String },
    /// A byte offset in one of the store's files.
    File { file: String, offset: u64 },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Entry { seq } => write!(f, "entry {seq}"),
            Position::Checkpoint { tree_size } => write!(f, "checkpoint at tree size {tree_size}"),
            Position::Head => write!(f, "head"),
            Position::Stream { stream } => write!(f, "stream {stream}"),
            Position::File { file, offset } => write!(f, "{file} at offset {offset}"),
        }
    }
}

/// One thing that is not as it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub position: Position,
    /// A stable snake_case code.
    pub code: &'static str,
    pub message: String,
}

/// What an audit found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    pub origin: String,
    pub tree_size: u64,
    pub entries_checked: u64,
    pub signatures_checked: u64,
    pub checkpoints_checked: u64,
    pub streams_checked: u64,
    /// Whether the ledger's education rules were replayed over every entry.
    pub rules_replayed: bool,
    /// What derived state (snapshots, a server's digests) was compared with the log.
    pub derived: DerivedCompared,
    pub violations: Vec<Violation>,
}

/// What derived state the audit compared with the state rebuilt from the log, and what it could
/// not compare (a section or a served model of another version than this build's, or a model
/// this build does not know): a clean report says what it vouches for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DerivedCompared {
    /// Snapshot files compared at their positions.
    pub snapshots: u64,
    /// Read-model sections and rule states compared in them.
    pub snapshot_sections: u64,
    /// The server whose digests were compared (`--served-by`).
    pub served_by: Option<String>,
    /// Read models of that server compared.
    pub served_models: u64,
    /// What was not compared, and why.
    pub not_compared: Vec<String>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
    fn push(&mut self, position: Position, code: &'static str, message: impl Into<String>) {
        self.violations.push(Violation { position, code, message: message.into() });
    }
}

/// Entries read and verified per round.
const CHUNK_LEN: u64 = 4096;

/// Stream and type of the entries the rules accepted so far, by event id.
#[derive(Default)]
struct Accepted(HashMap<String, (String, String)>);

impl crate::rules::Lookup for Accepted {
    fn event(&self, id: &str) -> Result<Option<(String, String)>, crate::rules::LookupError> {
        Ok(self.0.get(id).cloned())
    }
}

struct StreamState {
    len: u64,
    /// The predecessor's leaf hash from its bytes, and as stored (equal unless one was altered;
    /// the chain may name either, so an alteration is blamed once, at its own entry).
    last_leaf: Hash,
    last_stored_leaf: Hash,
    last_seq: u64,
}

struct CheckedEntry {
    leaf: Hash,
    parsed: Result<event::ParsedEntry, String>,
    signature: Result<(), (&'static str, String)>,
}

/// The state of one audit's walk over the log.
struct Auditor<'s> {
    store: &'s dyn Store,
    config: LedgerConfig,
    report: AuditReport,
    head_size: u64,
    keys: KeyCache,
    /// The rules, replayed as the append path runs them (`check_and_apply`), and the kinds of
    /// the events they accepted so far (their lookup).
    rules: Option<crate::rules::Rules>,
    accepted: Accepted,
    /// Two trees: `tree` from the entries' bytes (checked against the signed checkpoints) and
    /// `stored_tree` from the stored leaf hashes. The stored interior hashes (which proofs and
    /// tiles are served from) must agree with one of them, so an altered entry or an altered
    /// stored hash is blamed at its own position and nowhere else.
    tree: MemoryTree,
    stored_tree: MemoryTree,
    /// Stored leaf hashes of entries reported as altered or unreadable.
    altered: HashSet<[u8; 32]>,
    streams: HashMap<String, StreamState>,
    ids: HashMap<String, u64>,
    expected_seq: u64,
    /// The latest `recorded_at` seen so far (ledger time never runs backwards along the log).
    last_recorded_at: Option<(u64, i64)>,
    /// Checkpoints in ascending order, verified as the recomputed tree reaches their size.
    checkpoints: Vec<(u64, Vec<u8>)>,
    next_checkpoint: usize,
    last_good: Option<VerifiedCheckpoint>,
}

/// Audits the whole store. `progress` is told how many entries are done, out of how many.
pub fn audit(store: &dyn Store, progress: &dyn Fn(u64, u64)) -> Result<AuditReport, StoreError> {
    audit_with(store, &DerivedSources::default(), progress)
}

/// [`audit`], also rebuilding every read model from zero and comparing it with the snapshots
/// and the server digests in `derived`.
pub fn audit_with(
    store: &dyn Store,
    derived: &DerivedSources,
    progress: &dyn Fn(u64, u64),
) -> Result<AuditReport, StoreError> {
    let mut report = AuditReport::default();
    report.derived.served_by = derived.served.as_ref().map(|(from, _)| from.clone());
    for f in store.findings() {
        let position = match f.tree_size {
            Some(tree_size) => Position::Checkpoint { tree_size },
            None => Position::File { file: f.file, offset: f.offset },
        };
        report.push(position, f.code, f.message);
    }
    let Some(config) = store.config()? else {
        report.push(Position::Head, "not_initialized", "the store holds no ledger config");
        return Ok(report);
    };
    report.origin = config.origin.clone();
    let head = store.head()?;
    let head_size = head.as_ref().map(|(h, _)| h.tree_size).unwrap_or(0);
    report.tree_size = head_size;
    let mut checkpoints: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let from = checkpoints.last().map(|c| c.0 + 1).unwrap_or(0);
        let page = store.checkpoints(from, 10_000)?;
        if page.is_empty() {
            break;
        }
        checkpoints.extend(page);
    }
    let rules = match crate::rules::from_config(&config) {
        Ok(r) => r,
        Err(e) => {
            report.push(Position::Head, "rules_config_invalid", e);
            None
        }
    };
    report.rules_replayed = rules.is_some();
    let mut derived = projections::DerivedCheck::new(derived, &mut report);
    let mut a = Auditor {
        store,
        config,
        report,
        head_size,
        keys: KeyCache::default(),
        rules,
        accepted: Accepted::default(),
        tree: MemoryTree::default(),
        stored_tree: MemoryTree::default(),
        altered: HashSet::new(),
        streams: HashMap::new(),
        ids: HashMap::new(),
        expected_seq: 0,
        last_recorded_at: None,
        checkpoints,
        next_checkpoint: 0,
        last_good: None,
    };
    let mut from = 0u64;
    loop {
        let raw = store.raw_entries(from, CHUNK_LEN)?;
        if raw.is_empty() {
            break;
        }
        from = raw.last().expect("non-empty").seq + 1;
        let checked: Vec<CheckedEntry> = raw.par_iter().map(|r| a.verify(r)).collect();
        for (r, c) in raw.iter().zip(checked) {
            derived.at(r.seq, a.rules.as_ref(), &mut a.report);
            if let Ok(p) = &c.parsed {
                derived.fold(&ParsedFact::from_parsed_with_leaf(p, c.leaf.0));
            }
            a.check_entry(r, c)?;
            a.check_reached_checkpoints();
        }
        progress(a.tree.size(), head_size);
    }
    a.report_missing(head_size);
    a.check_remaining_checkpoints();
    a.check_head(head.as_ref());
    a.check_stream_heads()?;
    derived.finish(a.tree.size(), a.rules.as_ref(), &mut a.report);
    progress(a.tree.size(), head_size);
    Ok(a.report)
}
