//! The audit: recompute everything from the raw store and report every violation with its
//! position (DESIGN 6). It trusts nothing the store derived: leaf hashes, stored hashes, roots,
//! stream chains and indexes are recomputed from entry bytes; signatures and checkpoints are
//! re-verified. Not a repair tool: it reads only.

use crate::checkpoint::{self, VerifiedCheckpoint};
use crate::event;
use crate::keys::KeyCache;
use crate::merkle::{self, Hash, HashB64, MemoryTree};
use crate::store::{Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

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
    pub violations: Vec<Violation>,
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

/// Audits the whole store. `progress` is told how many entries are done, out of how many.
pub fn audit(store: &dyn Store, progress: &dyn Fn(u64, u64)) -> Result<AuditReport, StoreError> {
    let mut report = AuditReport::default();
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

    // Checkpoints in ascending order; verified as the recomputed tree reaches their size.
    let mut checkpoints: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let from = checkpoints.last().map(|c| c.0 + 1).unwrap_or(0);
        let page = store.checkpoints(from, 10_000)?;
        if page.is_empty() {
            break;
        }
        checkpoints.extend(page);
    }
    let mut next_checkpoint = 0usize;
    let mut last_good: Option<VerifiedCheckpoint> = None;

    let keys = KeyCache::default();
    // The rules, replayed as the append path runs them: check, then apply only what passes.
    let mut rules = match crate::rules::from_config(&config) {
        Ok(r) => r,
        Err(e) => {
            report.push(Position::Head, "rules_config_invalid", e);
            None
        }
    };
    let mut accepted = Accepted::default();
    report.rules_replayed = rules.is_some();
    let mut tree = MemoryTree::default();
    let mut stored_tree = MemoryTree::default();
    // Stored leaf hashes of entries reported as altered or unreadable.
    let mut altered: std::collections::HashSet<[u8; 32]> = std::collections::HashSet::new();
    let mut streams: HashMap<String, StreamState> = HashMap::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut expected_seq = 0u64;
    let mut from = 0u64;
    loop {
        let raw = store.raw_entries(from, CHUNK_LEN)?;
        if raw.is_empty() {
            break;
        }
        from = raw.last().expect("non-empty").seq + 1;
        let checked: Vec<CheckedEntry> = raw
            .par_iter()
            .map(|r| {
                let leaf = merkle::leaf_hash(&r.bytes);
                let parsed = event::parse_entry(&r.bytes).map_err(|e| e.to_string());
                let signature = match &parsed {
                    Ok(p) => {
                        p.verify_event(&config.origin, &keys).map(|_| ()).map_err(|r| (r.code.as_str(), r.message))
                    }
                    Err(_) => Ok(()),
                };
                CheckedEntry { leaf, parsed, signature }
            })
            .collect();
        for (r, c) in raw.iter().zip(checked) {
            let seq = r.seq;
            let at = Position::Entry { seq };
            if seq >= head_size {
                report.push(
                    at.clone(),
                    "entry_beyond_head",
                    format!("entry {seq} is beyond the head's tree size {head_size}"),
                );
            }
            report_missing(&mut report, [&mut tree, &mut stored_tree], &mut expected_seq, seq);
            expected_seq = seq + 1;
            // Two trees: `tree` from the entries' bytes (checked against the signed checkpoints)
            // and `stored_tree` from the stored leaf hashes. The stored interior hashes (which
            // proofs and tiles are served from) must agree with one of them, so an altered entry
            // or an altered stored hash is blamed at its own position and nowhere else.
            let true_hashes = tree.push(c.leaf).to_vec();
            let stored_leaf = r.hashes.first().copied().unwrap_or(c.leaf);
            let stored_view = stored_tree.push(stored_leaf).to_vec();
            let interior_ok = r.hashes.len() == true_hashes.len()
                && (r.hashes[1..] == true_hashes[1..] || r.hashes[1..] == stored_view[1..]);
            if r.damaged.is_some() || stored_leaf != c.leaf || c.parsed.is_err() {
                altered.insert(stored_leaf.0);
                altered.insert(c.leaf.0);
            }
            if let Some(detail) = &r.damaged {
                report.push(at.clone(), "record_malformed", detail.clone());
            } else if stored_leaf != c.leaf {
                report.push(
                    at.clone(),
                    "leaf_hash_mismatch",
                    "the entry's bytes do not hash to the leaf hash committed for it",
                );
            } else if !interior_ok {
                report.push(
                    at.clone(),
                    "stored_hash_mismatch",
                    "the stored Merkle hashes of this entry differ from the recomputed ones",
                );
            }
            report.entries_checked += 1;
            let bytes_altered = r.damaged.is_some() || stored_leaf != c.leaf;
            match &c.parsed {
                Err(e) if !bytes_altered => report.push(at.clone(), "entry_malformed", e.clone()),
                // Altered bytes are reported once, above; their content is not evidence of
                // anything else (a flipped id would otherwise blame an innocent entry).
                _ if bytes_altered => {}
                Err(_) => unreachable!("handled above"),
                Ok(p) => {
                    if p.meta.seq != seq {
                        report.push(
                            at.clone(),
                            "seq_mismatch",
                            format!("entry stored at {seq} says seq {}", p.meta.seq),
                        );
                    }
                    report.signatures_checked += 1;
                    if let (Some(rules), Ok(())) = (rules.as_mut(), &c.signature) {
                        match crate::rules::envelope(seq, &p.event) {
                            None => report.push(at.clone(), "event_invalid", "the event lacks an envelope field"),
                            Some(env) => match rules.check_and_apply(&env, &accepted) {
                                Ok(()) => {
                                    accepted
                                        .0
                                        .insert(env.id.to_owned(), (env.stream.to_owned(), env.event_type.to_owned()));
                                }
                                Err(crate::rules::RuleError::Refused(r)) => report.push(
                                    at.clone(),
                                    r.code,
                                    format!("the rules refuse this entry: {}", r.message),
                                ),
                                Err(crate::rules::RuleError::Lookup(e)) => {
                                    unreachable!("the audit's lookup is in memory and always answers: {e}")
                                }
                            },
                        }
                    }
                    if let Err((code, msg)) = &c.signature {
                        report.push(
                            at.clone(),
                            if *code == "signature_invalid" { "signature_invalid" } else { "event_invalid" },
                            format!("{code}: {msg}"),
                        );
                    }
                    let st = streams.entry(p.stream().to_owned()).or_insert(StreamState {
                        len: 0,
                        last_leaf: Hash([0; 32]),
                        last_stored_leaf: Hash([0; 32]),
                        last_seq: 0,
                    });
                    let want_prev = if st.len == 0 { None } else { Some(st.last_leaf) };
                    let alt_prev = if st.len == 0 { None } else { Some(st.last_stored_leaf) };
                    let chained = p.meta.stream_version == st.len
                        && (p.meta.stream_prev == want_prev || p.meta.stream_prev == alt_prev);
                    // A predecessor already reported as altered cannot be trusted to say which
                    // stream it was in: resynchronise on it instead of blaming this entry too.
                    let after_altered = p.meta.stream_prev.is_some_and(|h| altered.contains(&h.0));
                    if after_altered && !chained {
                        st.len = p.meta.stream_version;
                    } else if !chained {
                        report.push(
                            at.clone(),
                            "stream_chain_broken",
                            format!(
                                "stream {} expects version {} and prev {}; entry has version {} and prev {}",
                                p.stream(),
                                st.len,
                                want_prev.map(|h| h.to_b64()).unwrap_or_else(|| "null".into()),
                                p.meta.stream_version,
                                p.meta.stream_prev.map(|h| h.to_b64()).unwrap_or_else(|| "null".into())
                            ),
                        );
                    }
                    match store.stream_seqs(p.stream(), p.meta.stream_version, 1)?.first() {
                        Some(s) if *s == seq => {}
                        other => report.push(
                            at.clone(),
                            "stream_index_mismatch",
                            format!("stream index for version {} points to {other:?}", p.meta.stream_version),
                        ),
                    }
                    // An entry the sequencer would have refused: its author expected another
                    // stream length than the one it was written at.
                    let expected = p.event.get("expected_version").and_then(serde_json::Value::as_u64);
                    if expected.is_some_and(|e| e != p.meta.stream_version) {
                        report.push(
                            at.clone(),
                            "stream_version_conflict",
                            format!(
                                "the event expected version {expected:?}, it was written at {}",
                                p.meta.stream_version
                            ),
                        );
                    }
                    st.len += 1;
                    st.last_leaf = c.leaf;
                    st.last_stored_leaf = stored_leaf;
                    st.last_seq = seq;
                    let earlier = ids.insert(p.id().to_owned(), seq);
                    if let Some(first) = earlier {
                        report.push(
                            at.clone(),
                            "duplicate_event_id",
                            format!("event id {} is also entry {first}", p.id()),
                        );
                    }
                    match store.id_record(p.id())? {
                        Some(rec) if rec.seq == seq && rec.leaf_hash == c.leaf => {}
                        // A duplicate's index points at the first occurrence; reported above.
                        Some(rec) if earlier == Some(rec.seq) => {}
                        other => report.push(
                            at.clone(),
                            "id_index_mismatch",
                            format!("the id index holds {:?} for this entry", other.map(|r| r.seq)),
                        ),
                    }
                }
            }
            // Checkpoints whose size the tree has now reached.
            while next_checkpoint < checkpoints.len() && checkpoints[next_checkpoint].0 <= tree.size() {
                let (size, note) = &checkpoints[next_checkpoint];
                check_checkpoint(&mut report, &config, &tree, *size, note, &mut last_good);
                next_checkpoint += 1;
            }
        }
        progress(tree.size(), head_size);
    }
    report_missing(&mut report, [&mut tree, &mut stored_tree], &mut expected_seq, head_size);
    for (size, note) in &checkpoints[next_checkpoint..] {
        if *size <= tree.size() {
            check_checkpoint(&mut report, &config, &tree, *size, note, &mut last_good);
        } else {
            report.push(
                Position::Checkpoint { tree_size: *size },
                "checkpoint_beyond_log",
                format!("checkpoint for size {size}, the log has {}", tree.size()),
            );
        }
    }
    if let Some((h, note)) = &head {
        if h.tree_size != tree.size() {
            report.push(
                Position::Head,
                "head_size_mismatch",
                format!("head says {} entries, the log has {}", h.tree_size, tree.size()),
            );
        } else if h.root_hash != tree.root() {
            report.push(Position::Head, "head_root_mismatch", "the head's root differs from the recomputed root");
        }
        if checkpoints.iter().all(|(s, n)| *s != h.tree_size || n != note) {
            report.push(
                Position::Head,
                "head_checkpoint_missing",
                "the head's checkpoint is not among the stored checkpoints",
            );
        }
    }
    let mut names: Vec<&String> = streams.keys().collect();
    names.sort();
    for name in names {
        let st = &streams[name];
        report.streams_checked += 1;
        match store.stream_head(name)? {
            Some(h)
                if h.len == st.len
                    && (h.last_leaf_hash == st.last_leaf || h.last_leaf_hash == st.last_stored_leaf)
                    && h.last_seq == st.last_seq => {}
            other => report.push(
                Position::Stream { stream: name.clone() },
                "stream_head_mismatch",
                format!(
                    "indexed head {:?} differs from the chain (len {}, last seq {})",
                    other.map(|h| (h.len, h.last_seq)),
                    st.len,
                    st.last_seq
                ),
            ),
        }
    }
    progress(tree.size(), head_size);
    Ok(report)
}

/// Reports entries `*next..end` as missing (seq must be dense). A missing leaf breaks the tree
/// from there on; auditing goes on with placeholders so later positions stay aligned and every
/// other fault is still found.
fn report_missing(report: &mut AuditReport, trees: [&mut MemoryTree; 2], next: &mut u64, end: u64) {
    let [tree, stored_tree] = trees;
    while *next < end {
        report.push(
            Position::Entry { seq: *next },
            "entry_missing",
            format!("entry {next} is missing (seq must be dense)"),
        );
        tree.push(Hash([0u8; 32]));
        stored_tree.push(Hash([0u8; 32]));
        *next += 1;
    }
}

fn check_checkpoint(
    report: &mut AuditReport,
    config: &crate::store::LedgerConfig,
    tree: &MemoryTree,
    size: u64,
    note: &[u8],
    last_good: &mut Option<VerifiedCheckpoint>,
) {
    let at = Position::Checkpoint { tree_size: size };
    report.checkpoints_checked += 1;
    let v = match checkpoint::verify_checkpoint(note, &config.verifier_key, &config.origin) {
        Ok(v) => v,
        Err(e) => {
            report.push(at, "checkpoint_invalid", e.to_string());
            return;
        }
    };
    if v.head.tree_size != size {
        report.push(
            at,
            "checkpoint_size_mismatch",
            format!("stored under size {size}, the note says {}", v.head.tree_size),
        );
        return;
    }
    if v.head.root_hash != tree.root_at(size) {
        report.push(
            at,
            "checkpoint_root_mismatch",
            "the signed root differs from the root recomputed from the entries",
        );
        return;
    }
    if let Some(prev) = last_good.as_ref() {
        let (m, n) = (prev.head.tree_size, size);
        if m > 0 && m < n {
            let ok = merkle::prove_consistency(m, n, tree)
                .and_then(|p| merkle::verify_consistency(m, n, prev.head.root_hash, v.head.root_hash, &p));
            if let Err(e) = ok {
                report.push(at, "checkpoint_inconsistent", format!("not consistent with the checkpoint at {m}: {e}"));
                return;
            }
        }
    }
    *last_good = Some(v);
}
