//! The audit's check of derived state (DESIGN 6: "projections rebuilt from zero equal the served
//! ones"): every read model is rebuilt from zero during the walk, and compared, by digest, with
//! each snapshot at the snapshot's own position (its rule state too), with the newest snapshot
//! plus the tail at the head, and with the digests a running server reports at its positions.
//! Every difference names the read model and the snapshot file or server. Reads only.

use super::{cause_before, AuditReport, Position};
use crate::read::hex;
use crate::read::snapshot::{file_name, RULES_SECTION};
use crate::rules::Rules;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use zachetka_projections::model::{self, ParsedFact, ReadModel};
use zachetka_projections::models::completeness::Completeness;

/// What the audit compares derived state against.
#[derive(Debug, Clone, Default)]
pub struct DerivedSources {
    /// A directory of snapshots (`<ledger dir>/snapshots`).
    pub snapshots: Option<PathBuf>,
    /// Digests a server reported (`GET /v1/projections?digests=true`), and where from.
    pub served: Option<(String, Vec<ServedDigest>)>,
}

/// One model's digest as a server reported it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServedDigest {
    pub name: String,
    pub version: u32,
    pub tree_size: u64,
    pub digest: String,
}

/// A snapshot waiting for the walk to reach its position.
struct Pending {
    file: String,
    tree_size: u64,
    /// Section digests by name (the rule state under `rules`).
    sections: BTreeMap<String, (u32, [u8; 32])>,
    /// Where each section lies in the file.
    spans: BTreeMap<String, (u64, u64)>,
}

impl Pending {
    /// The position of section `name` (the file's start if the section is not there).
    fn at(&self, name: &str) -> Position {
        section_position(&self.file, &self.spans, name)
    }
}

fn section_position(file: &str, spans: &BTreeMap<String, (u64, u64)>, name: &str) -> Position {
    match spans.get(name) {
        Some(&(offset, end)) => {
            Position::SnapshotSection { file: file.to_owned(), section: name.to_owned(), offset, end }
        }
        None => Position::File { file: file.to_owned(), offset: 0 },
    }
}

/// Where a snapshot that cannot be read is damaged: the section (name and bytes) or the byte
/// the reader names, else the file's start.
fn read_error_position(file: String, e: &zachetka_snapshots::SnapshotError) -> Position {
    use zachetka_snapshots::SnapshotError as E;
    match e {
        E::SectionChecksumMismatch { section, offset, end, .. } => {
            Position::SnapshotSection { file, section: section.clone(), offset: *offset, end: *end }
        }
        E::MalformedTable { offset, .. } | E::ValuesChecksumMismatch { offset, .. } => {
            Position::File { file, offset: *offset }
        }
        E::Truncated { len, .. } => Position::File { file, offset: *len },
        _ => Position::File { file, offset: 0 },
    }
}

/// The digest of a section as a snapshot holds it: its bytes and, apart, its values. Both are
/// canonical (`zachetka_projections::lazy`), so state rebuilt from the log and encoded the same
/// way has the same digest exactly when it is the same state.
fn apart_digest(bytes: &[u8], values: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
    h.update(values);
    h.finalize().into()
}

/// [`apart_digest`] of state encoded by `encode` (a model's `encode`, the rules' `encode_state`).
fn encoded_digest(encode: impl FnOnce() -> Vec<u8>) -> [u8; 32] {
    let (bytes, values) = crate::read::snapshot::encode_apart(encode);
    apart_digest(&bytes, &values)
}

/// The newest snapshot: its file, its tree size, its models and where its sections lie.
type Newest = (String, u64, Vec<Box<dyn ReadModel>>, BTreeMap<String, (u64, u64)>);

/// The walk's side of the check.
pub(super) struct DerivedCheck {
    models: Vec<Box<dyn ReadModel>>,
    /// Snapshots by tree size, checked when the walk reaches it.
    pending: Vec<Pending>,
    /// The newest snapshot's models, loaded and folded over the tail.
    newest: Option<Newest>,
    served: Option<(String, BTreeMap<u64, Vec<ServedDigest>>)>,
}

impl DerivedCheck {
    pub(super) fn new(sources: &DerivedSources, report: &mut AuditReport) -> Self {
        let mut pending = Vec::new();
        let mut newest = None;
        if let Some(dir) = &sources.snapshots {
            let listed = match zachetka_snapshots::list(dir) {
                Ok(l) => l,
                Err(e) => {
                    report.push(Position::File { file: dir.display().to_string(), offset: 0 }, e.code(), e.to_string());
                    Vec::new()
                }
            };
            for (_, path) in listed {
                let file = file_name(&path);
                // Every chunk of the values checked first: nothing below reads a value the
                // checks have not passed.
                let snap = match zachetka_snapshots::read(&path).and_then(|s| s.verify_values().map(|()| s)) {
                    Ok(s) => s,
                    Err(e) => {
                        report.push(read_error_position(file, &e), e.code(), e.to_string());
                        continue;
                    }
                };
                let mut sections = BTreeMap::new();
                let mut spans = BTreeMap::new();
                for s in snap.sections() {
                    if let Some(span) = snap.section_span(s.name) {
                        spans.insert(s.name.to_owned(), span);
                    }
                    let digest = match s.values.read_all() {
                        Ok(values) => apart_digest(s.bytes, &values),
                        Err(e) => {
                            report.push(read_error_position(file.clone(), &e), e.code(), e.to_string());
                            continue;
                        }
                    };
                    sections.insert(s.name.to_owned(), (s.version, digest));
                }
                let tree_size = snap.tree_size();
                if newest.as_ref().is_none_or(|(_, n, _, _)| tree_size > *n) {
                    let mut models = model::all();
                    for m in &mut models {
                        if let Some(s) = snap.section(m.name()).filter(|s| s.version == m.version()) {
                            if let Err(e) =
                                zachetka_projections::lazy::load_apart(s.values.source(), || m.load(s.bytes))
                            {
                                let at = section_position(&file, &spans, m.name());
                                report.push(at, "snapshot_unreadable", e.to_string());
                            }
                        }
                    }
                    newest = Some((file.clone(), tree_size, models, spans.clone()));
                }
                pending.push(Pending { file, tree_size, sections, spans });
            }
        }
        let served = sources.served.as_ref().map(|(from, list)| {
            let mut by_size: BTreeMap<u64, Vec<ServedDigest>> = BTreeMap::new();
            for d in list {
                by_size.entry(d.tree_size).or_default().push(d.clone());
            }
            (from.clone(), by_size)
        });
        Self { models: model::all(), pending, newest, served }
    }

    /// Compares whatever is due at position `seq` (the state of entries `0..seq`), before entry
    /// `seq` is folded in; `rules` is the audit's replayed rule state at the same position. A
    /// difference an altered entry before `seq` (in `causes`) explains is its consequence.
    pub(super) fn at(&mut self, seq: u64, rules: Option<&Rules>, report: &mut AuditReport, causes: &BTreeSet<u64>) {
        let caused_by = cause_before(causes, seq);
        let due: Vec<Pending> = {
            let (due, rest) = std::mem::take(&mut self.pending).into_iter().partition(|p| p.tree_size == seq);
            self.pending = rest;
            due
        };
        for p in due {
            report.derived.snapshots += 1;
            for m in &self.models {
                let position = p.at(m.name());
                match p.sections.get(m.name()) {
                    Some((v, _)) if *v != m.version() => report.derived.not_compared.push(format!(
                        "read model {} in {} (version {v}; this build's is {})",
                        m.name(),
                        p.file,
                        m.version()
                    )),
                    Some((_, d)) if *d == encoded_digest(|| m.encode()) => report.derived.snapshot_sections += 1,
                    Some(_) => report.push_or_consequence(
                        caused_by,
                        position,
                        "snapshot_differs",
                        format!(
                            "read model {} in the snapshot at {seq} differs from the model rebuilt from the log",
                            m.name()
                        ),
                    ),
                    None => {}
                }
            }
            if let (Some(rules), Some((_, d))) = (rules, p.sections.get(RULES_SECTION)) {
                report.derived.snapshot_sections += 1;
                if encoded_digest(|| rules.encode_state()) != *d {
                    report.push_or_consequence(
                        caused_by,
                        p.at(RULES_SECTION),
                        "snapshot_differs",
                        format!("the rule state in the snapshot at {seq} differs from the rules replayed from the log"),
                    );
                }
            }
        }
        if let Some((from, by_size)) = &mut self.served {
            if let Some(list) = by_size.remove(&seq) {
                for d in list {
                    let Some(m) = self.models.iter().find(|m| m.name() == d.name) else {
                        report
                            .derived
                            .not_compared
                            .push(format!("read model {} served by {from}: unknown to this build", d.name));
                        continue;
                    };
                    if m.version() != d.version {
                        report.derived.not_compared.push(format!(
                            "read model {} served by {from} (version {}; this build's is {})",
                            d.name,
                            d.version,
                            m.version()
                        ));
                        continue;
                    }
                    report.derived.served_models += 1;
                    if hex(&model::digest(&**m)) != d.digest {
                        report.push_or_consequence(
                            caused_by,
                            Position::Entry { seq },
                            "served_read_model_differs",
                            format!("read model {} served by {from} at tree size {seq} differs from the model rebuilt from the log", d.name),
                        );
                    }
                }
            }
        }
    }

    /// Folds entry `seq` into the models rebuilt from zero and, past its position, the newest
    /// snapshot's.
    pub(super) fn fold(&mut self, fact: &ParsedFact) {
        let Some(f) = fact.fact() else { return };
        for m in &mut self.models {
            m.apply(&f);
        }
        if let Some((_, at, models, _)) = &mut self.newest {
            if fact.seq >= *at {
                for m in models.iter_mut() {
                    m.apply(&f);
                }
            }
        }
    }

    /// Every completeness commitment (DESIGN 3.7) against the map the rebuilt model recomputed
    /// from the log at the commitment's `up_to`. The map is folded over the stored leaf hashes,
    /// so an altered entry whose signed event is intact leaves it as committed; one that covers
    /// an entry whose content is unknown (`unknown`: its signed event altered, unreadable or
    /// missing), or is one, differs as its consequence.
    fn check_commitments(&self, report: &mut AuditReport, unknown: &BTreeSet<u64>) {
        let Some(m) = self.models.iter().find(|m| m.name() == "completeness") else { return };
        let model = match Completeness::decode(&m.encode()) {
            Ok(model) => model,
            Err(e) => {
                report.push(Position::Head, "completeness_unchecked", e.to_string());
                return;
            }
        };
        report.commitments_recomputed = model.commitments().len() as u64;
        for c in model.commitments().iter().filter(|c| !c.matches()) {
            // The map covers the entries before `up_to`; the commitment's own entry says it.
            let caused_by = cause_before(unknown, c.up_to).or_else(|| unknown.contains(&c.seq).then_some(c.seq));
            let b64 = |r: &[u8; 32]| crate::keys::b64(r);
            let message = match (&c.recomputed, &c.map_root) {
                (Ok((root, n)), Some(claimed)) => format!(
                    "the completeness commitment up to {} names map root {} over {} learners; the log gives {} over {n}",
                    c.up_to,
                    b64(claimed),
                    c.learners,
                    b64(root)
                ),
                (Ok(_), None) => format!("the completeness commitment up to {} has no readable map root", c.up_to),
                (Err(why), _) => format!("the completeness commitment up to {} cannot be recomputed: {why}", c.up_to),
            };
            report.push_or_consequence(
                caused_by,
                Position::Entry { seq: c.seq },
                "completeness_commitment_differs",
                message,
            );
        }
    }

    /// At the head: the newest snapshot plus the tail equals the rebuild from zero; positions a
    /// server reported beyond the audited log are named.
    /// `causes` as for [`Self::at`]; `unknown` those of them whose content is unknown.
    pub(super) fn finish(
        mut self,
        head: u64,
        rules: Option<&Rules>,
        report: &mut AuditReport,
        causes: &BTreeSet<u64>,
        unknown: &BTreeSet<u64>,
    ) {
        self.at(head, rules, report, causes);
        self.check_commitments(report, unknown);
        if let Some((file, at, models, spans)) = &self.newest {
            if *at <= head {
                for (a, b) in models.iter().zip(&self.models) {
                    if model::digest(&**a) != model::digest(&**b) {
                        report.push_or_consequence(
                            cause_before(causes, *at),
                            section_position(file, spans, a.name()),
                            "snapshot_differs",
                            format!("read model {}: the snapshot at {at} plus the tail differs from the model rebuilt from the log", a.name()),
                        );
                    }
                }
            }
        }
        // When damage cut the part of the log the audit could read, what stands beyond it is
        // not compared (the store finding names the cut), rather than called beyond the log.
        let cut = report.violations.iter().any(|v| v.code == "store_damaged");
        for p in &self.pending {
            if cut {
                report.derived.not_compared.push(format!(
                    "{}: at tree size {}, beyond the part of the log the damage left readable ({head})",
                    p.file, p.tree_size
                ));
                continue;
            }
            report.push(
                Position::File { file: p.file.clone(), offset: 0 },
                "snapshot_beyond_log",
                format!("the snapshot is at tree size {}, beyond the log's {head}", p.tree_size),
            );
        }
        if let Some((from, by_size)) = &self.served {
            for size in by_size.keys() {
                if cut {
                    report.derived.not_compared.push(format!(
                        "{from} at tree size {size}: beyond the part of the log the damage left readable ({head})"
                    ));
                    continue;
                }
                report.push(
                    Position::Head,
                    "served_beyond_log",
                    format!("{from} serves read models at tree size {size}, beyond the audited log's {head}"),
                );
            }
        }
    }
}
