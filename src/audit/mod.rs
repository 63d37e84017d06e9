//! The audit: recompute everything from the raw store and report every violation with its
//! position (DESIGN 6). It trusts nothing the store derived: leaf hashes, stored hashes, roots,
//! stream chains and indexes are recomputed from entry bytes; signatures and checkpoints are
//! re-verified. Not a repair tool: it reads only.
//!
//! `mod.rs` walks the log in chunks (verifying each chunk's entries on every core) and keeps the
//! state of the walk in an [`Auditor`]; `entry.rs` checks one entry (its bytes, stored hashes,
//! signature, the rules, its stream chain and its index records), `checkpoints.rs` the signed
//! checkpoints as the recomputed tree reaches them, `indexes.rs` what is left at the end (the
//! head, each stream's indexed head), `projections.rs` derived state (snapshots, a server's
//! digests, completeness commitments), `revocations.rs` entries signed after their key's
//! effective revocation (warnings).
//!
//! An altered, unreadable or missing entry is a cause, reported once at its seq; a root, a
//! commitment, a snapshot section or a rule refusal that differs only because of it is counted
//! under it as a [`Consequence`], and anything it does not explain is a violation of its own.

use crate::checkpoint::VerifiedCheckpoint;
use crate::event;
use crate::keys::KeyCache;
use crate::merkle::{self, Hash, HashB64, MemoryTree};
use crate::store::{LedgerConfig, Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use zachetka_projections::model::ParsedFact;

mod checkpoints;
mod entry;
mod indexes;
mod projections;
mod revocations;

pub use projections::{DerivedSources, ServedDigest};
pub use revocations::SIGNED_AFTER_EFFECTIVE_REVOCATION;

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
    /// A section of a snapshot file: its name and its bytes `offset..end` in the file.
    SnapshotSection { file: String, section: String, offset: u64, end: u64 },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Entry { seq } => write!(f, "entry {seq}"),
            Position::Checkpoint { tree_size } => write!(f, "checkpoint at tree size {tree_size}"),
            Position::Head => write!(f, "head"),
            Position::Stream { stream } => write!(f, "stream {stream}"),
            Position::File { file, offset } => write!(f, "{file} at offset {offset}"),
            Position::SnapshotSection { file, section, offset, end } => {
                write!(f, "snapshot {file}, section {section} (bytes {offset}..{end})")
            }
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
    /// For an entry whose bytes changed (`leaf_hash_mismatch`, `record_malformed`): whether the
    /// signed event inside it is still as its author signed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_event: Option<SignedEvent>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.position, self.code, self.message)
    }
}

/// What the signature of an entry with changed bytes says about its signed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedEvent {
    /// The signature still verifies: what changed lies outside the signed event (the entry's
    /// seq, `recorded_at`, stream position or signature field) or in the stored leaf hash.
    Intact,
    /// The signature no longer verifies: the signed event itself was changed.
    Altered,
    /// The bytes no longer read as an entry: its signature cannot be checked.
    Unreadable,
}

/// Mismatches that one altered entry explains (DESIGN 6: the cause is reported at its own
/// position, once): everything of one kind that depends on the entry, counted, with the first
/// and the last position. A mismatch the entry does not explain is a violation of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consequence {
    /// The seq of the altered entry (the earliest one before these positions).
    pub caused_by: u64,
    /// The code each of them would have had as a violation of its own.
    pub code: &'static str,
    pub count: u64,
    pub first: Position,
    pub last: Position,
    pub message: String,
}

/// Entries imported from a legacy system (`data.migrated_from`): how many, and by the key that
/// wrote them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    pub entries: u64,
    pub by_key: Vec<ImportedByKey>,
}

/// One key's imports: how many, the first and last seq, and their ledger times (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedByKey {
    pub key: String,
    pub entries: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_recorded_at: String,
    pub last_recorded_at: String,
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
    /// Consecutive pairs of good checkpoints whose consistency proof was verified.
    pub checkpoint_pairs_checked: u64,
    /// Completeness commitments recomputed from the log (DESIGN 3.7).
    pub commitments_recomputed: u64,
    /// Whether the ledger's education rules were replayed over every entry.
    pub rules_replayed: bool,
    /// Entries imported from a legacy system.
    pub imported: Imported,
    /// What derived state (snapshots, a server's digests) was compared with the log.
    pub derived: DerivedCompared,
    pub violations: Vec<Violation>,
    /// Mismatches an altered entry explains, marked as its consequences.
    pub consequences: Vec<Consequence>,
    /// What an auditor must see but which does not by itself fail the audit (the log is as it
    /// must be): entries signed by a key at or after its effective revocation, written before the
    /// revocation was.
    pub warnings: Vec<Violation>,
    /// The tree size the log had grown to by the audit's end, when servers appended while it
    /// ran (PostgreSQL): the audit checks the log up to `tree_size`, the head it read first;
    /// what came after is for the next audit.
    pub log_grew_to: Option<u64>,
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
    /// No violation (a consequence always has its cause among them); warnings do not count.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.consequences.is_empty()
    }
    fn push(&mut self, position: Position, code: &'static str, message: impl Into<String>) {
        self.violations.push(Violation { position, code, message: message.into(), signed_event: None });
    }
    fn warn(&mut self, position: Position, code: &'static str, message: impl Into<String>) {
        self.warnings.push(Violation { position, code, message: message.into(), signed_event: None });
    }
    /// A mismatch at `position` explained by the altered entry `caused_by`, or, when nothing
    /// explains it, a violation of its own.
    fn push_or_consequence(
        &mut self,
        caused_by: Option<u64>,
        position: Position,
        code: &'static str,
        message: impl Into<String>,
    ) {
        let Some(caused_by) = caused_by else { return self.push(position, code, message) };
        match self.consequences.iter_mut().find(|c| c.caused_by == caused_by && c.code == code) {
            Some(c) => {
                c.count += 1;
                c.last = position;
            }
            None => self.consequences.push(Consequence {
                caused_by,
                code,
                count: 1,
                first: position.clone(),
                last: position,
                message: String::new(),
            }),
        }
    }
    /// Words each consequence once it is counted.
    fn word_consequences(&mut self) {
        for c in &mut self.consequences {
            let (n, seq) = (c.count, c.caused_by);
            let span = if n == 1 { format!("at {}", c.first) } else { format!("from {} to {}", c.first, c.last) };
            c.message = match c.code {
                "checkpoint_root_mismatch" => format!(
                    "{n} signed checkpoint roots ({span}) agree with the leaf hashes stored when the entries were \
                     written, and differ from the roots recomputed from the entries' bytes only because entry {seq} \
                     was altered"
                ),
                "head_root_mismatch" => format!(
                    "the head's root agrees with the stored leaf hashes, and differs from the recomputed root only \
                     because entry {seq} was altered"
                ),
                "completeness_commitment_differs" => format!(
                    "{n} completeness commitments ({span}) cover entry {seq}: the map recomputed over its altered \
                     content differs"
                ),
                "snapshot_differs" => format!(
                    "{n} snapshot sections ({span}) hold state folded over entry {seq} as it was written: the state \
                     rebuilt over its altered content differs"
                ),
                "served_read_model_differs" => format!(
                    "{n} read models served ({span}) were folded over entry {seq} as it was written: the models \
                     rebuilt over its altered content differ"
                ),
                _ if matches!(c.first, Position::Entry { .. }) => format!(
                    "the rules refuse {n} entries ({span}) with {}: they name the event of entry {seq}, which is \
                     not accepted once altered",
                    c.code
                ),
                _ => format!("{n} mismatches ({span}) follow from the alteration of entry {seq}"),
            };
        }
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

/// One key's imported entries so far: how many, the first and the last (seq, `recorded_at`).
struct ImportedRun {
    entries: u64,
    first: (u64, i64),
    last: (u64, i64),
}

/// The earliest altered entry before tree size `size`, if any: what explains a root, a
/// commitment or a snapshot over the first `size` entries that differs.
fn cause_before(causes: &BTreeSet<u64>, size: u64) -> Option<u64> {
    causes.first().copied().filter(|&seq| seq < size)
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
    /// Entries whose bytes changed, were unreadable or are missing (by seq): the causes the
    /// mismatches depending on them are reported as consequences of; `missing` those of them
    /// with no stored leaf hash either (a root over them cannot be checked another way).
    causes: BTreeSet<u64>,
    missing: BTreeSet<u64>,
    /// Causes whose signed event still verifies: what they concern (the learners a commitment
    /// covers) is as signed.
    intact: BTreeSet<u64>,
    /// Event ids of altered entries that still parse, by seq.
    altered_ids: HashMap<String, u64>,
    imported: BTreeMap<String, ImportedRun>,
    signed_over: checkpoints::SignedOver,
    revocations: revocations::Revocations,
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

impl Auditor<'_> {
    /// The imports by key, and the consequences worded once counted.
    fn finish_report(&mut self) {
        let time = crate::time::format_rfc3339;
        self.report.imported.by_key = std::mem::take(&mut self.imported)
            .into_iter()
            .map(|(key, run)| ImportedByKey {
                key,
                entries: run.entries,
                first_seq: run.first.0,
                last_seq: run.last.0,
                first_recorded_at: time(run.first.1),
                last_recorded_at: time(run.last.1),
            })
            .collect();
        self.report.word_consequences();
        for v in &mut self.report.violations {
            if let (Position::Entry { seq }, "leaf_hash_mismatch") = (&v.position, v.code) {
                if let Some(said) = self.signed_over.about(*seq) {
                    v.message = format!("{}; {said}", v.message);
                }
            }
        }
    }
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
        // A damaged ledger.json is already named; "not initialized" would be its consequence.
        if !report.violations.iter().any(|v| v.code == "config_damaged") {
            report.push(Position::Head, "not_initialized", "the store holds no ledger config");
        }
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
    // A server may append while the audit runs (several PostgreSQL nodes; the audit takes no
    // lock): the audit checks the log up to the head it read first. Checkpoints committed since
    // come with a newer head, read after them, which covers them; one beyond even that is not a
    // concurrent commit and stays to be reported.
    let later = store.head()?.map(|(h, _)| h.tree_size).unwrap_or(0).max(head_size);
    checkpoints.retain(|(size, _)| *size <= head_size || *size > later);
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
        causes: BTreeSet::new(),
        missing: BTreeSet::new(),
        intact: BTreeSet::new(),
        altered_ids: HashMap::new(),
        imported: BTreeMap::new(),
        signed_over: checkpoints::SignedOver::default(),
        revocations: revocations::Revocations::default(),
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
        // Up to the head read first (see `later` above), then whatever lies beyond the head.
        let raw = match head_size.saturating_sub(from) {
            0 => a.entries_beyond_head(from)?,
            n => store.raw_entries(from, CHUNK_LEN.min(n))?,
        };
        if raw.is_empty() {
            break;
        }
        from = raw.last().expect("non-empty").seq + 1;
        let checked: Vec<CheckedEntry> = raw.par_iter().map(|r| a.verify(r)).collect();
        for (r, c) in raw.iter().zip(checked) {
            derived.at(r.seq, a.rules.as_ref(), &mut a.report, &a.causes);
            if let Ok(p) = &c.parsed {
                // The leaf hash as stored (the one the ledger committed to when it wrote the
                // entry; the same unless the entry was altered): a commitment over an entry whose
                // signed event is intact still recomputes to what was committed.
                let leaf = r.hashes.first().map_or(c.leaf.0, |h| h.0);
                derived.fold(&ParsedFact::from_parsed_with_leaf(p, leaf));
            }
            a.check_entry(r, c)?;
            a.check_reached_checkpoints();
        }
        progress(a.tree.size(), head_size);
    }
    let grown = store.head()?.map(|(h, _)| h.tree_size).unwrap_or(0);
    a.report.log_grew_to = (grown > head_size).then_some(grown);
    a.report_missing(head_size);
    a.check_remaining_checkpoints();
    a.check_head(head.as_ref());
    a.check_stream_heads()?;
    let content_unknown = &a.causes - &a.intact;
    derived.finish(a.tree.size(), a.rules.as_ref(), &mut a.report, &a.causes, &content_unknown);
    a.finish_report();
    progress(a.tree.size(), head_size);
    Ok(a.report)
}
