//! The verifier's report (FORMAT.md section 5): what was checked, the record's summary, and
//! every failure with its stable code and the entry it names; as JSON and as readable text.
//! Not the checks (`verify`).

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One reason the bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable snake_case code (FORMAT.md section 4).
    pub code: String,
    /// The entry it concerns, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub message: String,
}

/// An entry whose author's right was checked by the grant only, and the rule's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantOnly {
    pub seq: u64,
    pub reason: String,
}

/// The consistency the verifier checked, between the two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyChecked {
    pub first: u64,
    pub second: u64,
}

/// A witness whose cosignature of a checkpoint verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cosigned {
    /// The witness's name (its verifier key's).
    pub witness: String,
    /// Its key id, 8 hex digits.
    pub key_id: String,
    /// When it cosigned (POSIX seconds), as its cosignature says.
    pub timestamp: u64,
}

/// The witnesses' cosignatures the verifier looked for (FORMAT.md section 4, "Witnesses").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cosignatures {
    /// How many distinct witnesses had to cosign each checkpoint.
    pub required: usize,
    /// How many distinct witnesses were given.
    pub witnesses: usize,
    /// Those whose cosignature of the bundle's checkpoint verified; `null` when the checkpoint
    /// itself did not verify (nothing was looked for).
    pub checkpoint: Option<Vec<Cosigned>>,
    /// The same for the second checkpoint, when one was given and verified.
    pub second_checkpoint: Option<Vec<Cosigned>>,
}

/// What the completeness member proved (FORMAT.md section 6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Completeness {
    /// `complete` (every check of section 6 held and the checkpoint ends at the commitment, which
    /// covers every position before it: nothing is uncovered), `complete_up_to` (every check
    /// held, but positions from `P` on are covered by no commitment: the bundle's entries there,
    /// and any of the learner's it leaves out), `not_present` (no member) or `failed` (the
    /// failures say why).
    pub status: &'static str,
    /// `P`: complete as of this position (every entry with seq < `P`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
    /// The commitment entry's seq.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment_seq: Option<u64>,
    /// The learner's entries the commitment counts (`value.count`), withheld ones included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered: Option<u64>,
    /// Of them, how many the bundle carries withheld.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_withheld: Option<usize>,
    /// Items of `entries` at or after `P`: in the bundle, but not covered by the commitment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
    /// Positions from `P` to the bundle's checkpoint (`N - P`), none of them covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncovered_positions: Option<u64>,
    /// With a newer second checkpoint (consistency checked): its size minus `P`, how far
    /// behind the log the bundle's completeness is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<u64>,
    /// The verifier's bound on uncovered positions (`--max-uncovered`).
    pub max_uncovered: u64,
    /// Why the status is not `complete`, in a few words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An institution the disclosed entries name, with the years they fall in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstitutionYears {
    pub institution: String,
    pub years: Vec<i64>,
}

/// What the disclosed entries say, grouped for a reader. Items are `{"seq","type",...data}`
/// (data without its schema version `v`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordSummary {
    pub institutions: Vec<InstitutionYears>,
    pub results: Vec<Value>,
    pub documents: Vec<Value>,
    pub achievements: Vec<Value>,
}

/// The verifier's answer. `ok` is true exactly when `failures` is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub origin: String,
    pub learner: String,
    pub tree_size: Option<u64>,
    pub root_hash: Option<String>,
    pub entries: usize,
    pub disclosed: usize,
    pub withheld: usize,
    pub authority_entries: usize,
    pub signatures_checked: usize,
    pub proofs_checked: usize,
    pub authority_checked_by_rules: usize,
    pub authority_checked_by_grant_only: Vec<GrantOnly>,
    pub consistency: Option<ConsistencyChecked>,
    /// `null` when no witness was given.
    pub cosignatures: Option<Cosignatures>,
    /// A second checkpoint was given (whether or not the consistency held); the text report
    /// says "none given" only when it was not.
    #[serde(skip)]
    pub(crate) consistency_asked: bool,
    pub completeness: Option<Completeness>,
    pub record: RecordSummary,
    pub failures: Vec<Failure>,
    /// The bytes could not be read as a bundle at all (FORMAT.md section 4, step 1): the code
    /// and what is wrong with them; nothing else was checked.
    #[serde(skip)]
    pub(crate) unreadable: Option<Failure>,
}

impl Completeness {
    /// One line for a person: as of which position, what it covers and what it does not.
    pub fn describe(&self) -> String {
        match (self.status, self.up_to, self.commitment_seq) {
            ("complete", Some(_), Some(seq)) => format!(
                "complete: the checkpoint ends at the commitment (seq {seq}), which covers every position before it: the bundle holds all {} entries of the learner ({} withheld)",
                self.covered.unwrap_or(0),
                self.covered_withheld.unwrap_or(0)
            ),
            ("complete_up_to", Some(p), Some(seq)) => {
                let mut out = format!(
                    "complete up to position {p} (commitment at seq {seq}): covers {} entries of the learner ({} withheld); {} entries of the bundle are after it and not covered by any commitment",
                    self.covered.unwrap_or(0),
                    self.covered_withheld.unwrap_or(0),
                    self.after.unwrap_or(0),
                );
                let _ = write!(
                    out,
                    "; the {} positions from {p} to the checkpoint may hold entries of the learner that this bundle does not show (bound {})",
                    self.uncovered_positions.unwrap_or(0),
                    self.max_uncovered
                );
                if let Some(b) = self.behind {
                    let _ = write!(out, "; the newer checkpoint is {b} positions past {p}");
                }
                out
            }
            ("not_present", ..) => {
                "not present: the bundle proves that what it holds is authentic, not that nothing is missing".into()
            }
            (status, ..) => {
                let reason = self.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
                format!("{}{reason}", status.replace('_', " "))
            }
        }
    }
}

impl Report {
    pub(crate) fn fail(&mut self, code: &str, seq: Option<u64>, message: impl Into<String>) {
        self.failures.push(Failure { code: code.to_owned(), seq, message: message.into() });
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// When the bytes given were not a record bundle at all (not JSON, another JSON document, a
    /// limit exceeded): the code and what is wrong with them. Such a report is about no
    /// learner and no ledger; a caller says so instead of showing it (the CLI names the file,
    /// `POST /v1/verify` refuses the body).
    pub fn unreadable(&self) -> Option<&Failure> {
        self.unreadable.as_ref()
    }

    /// The report for a person: the verdict, each failure, then the record. Of bytes that are
    /// no bundle at all, one line saying so.
    pub fn to_text(&self) -> String {
        if let Some(u) = &self.unreadable {
            return format!("NOT VERIFIED: not a record bundle ({}): {}\n", u.code, u.message);
        }
        let mut s = String::new();
        let verdict = if self.ok { "VERIFIED" } else { "NOT VERIFIED" };
        let _ = writeln!(s, "{verdict}: record of learner {} in ledger {}", self.learner, self.origin);
        if let (Some(n), Some(r)) = (self.tree_size, &self.root_hash) {
            let _ = writeln!(s, "checkpoint: tree size {n}, root {r}");
        }
        for f in &self.failures {
            match f.seq {
                Some(seq) => _ = writeln!(s, "FAILED {} at entry {seq}: {}", f.code, f.message),
                None => _ = writeln!(s, "FAILED {}: {}", f.code, f.message),
            }
        }
        let _ = writeln!(
            s,
            "entries: {} ({} disclosed, {} withheld), authority chain: {} entries",
            self.entries, self.disclosed, self.withheld, self.authority_entries
        );
        let _ = writeln!(
            s,
            "checked: {} signatures, {} inclusion proofs, authority of {} entries by the rules, {} by the grant only",
            self.signatures_checked,
            self.proofs_checked,
            self.authority_checked_by_rules,
            self.authority_checked_by_grant_only.len()
        );
        if !self.authority_checked_by_grant_only.is_empty() {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for g in &self.authority_checked_by_grant_only {
                *reasons.entry(g.reason.as_str()).or_default() += 1;
            }
            let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} x{n}")).collect();
            let _ = writeln!(
                s,
                "  by the grant only (the replay within the bundle refused them: a rule may need entries the bundle does not hold, or the entry broke it; an audit of the log decides which): {}",
                list.join(", ")
            );
        }
        match (&self.consistency, self.consistency_asked) {
            (Some(c), _) => _ = writeln!(s, "consistency: tree {} extends tree {}", c.second, c.first),
            (None, true) => _ = writeln!(s, "consistency: not established, see the failure above"),
            (None, false) => _ = writeln!(s, "consistency: no second checkpoint given"),
        }
        if let Some(c) = &self.cosignatures {
            for (what, list) in [("checkpoint", &c.checkpoint), ("second checkpoint", &c.second_checkpoint)] {
                let Some(list) = list else { continue };
                let who: Vec<String> = list
                    .iter()
                    .map(|w| format!("{} at {}", w.witness, zachetka_formats::time::format_rfc3339(w.timestamp as i64)))
                    .collect();
                let _ = writeln!(
                    s,
                    "cosignatures of the {what}: {} of {} witnesses given ({} required){}{}",
                    list.len(),
                    c.witnesses,
                    c.required,
                    if who.is_empty() { "" } else { ": " },
                    who.join(", ")
                );
            }
        }
        if let Some(c) = &self.completeness {
            let _ = writeln!(s, "completeness: {}", c.describe());
        }
        let has_record = !self.record.institutions.is_empty()
            || !self.record.results.is_empty()
            || !self.record.documents.is_empty()
            || !self.record.achievements.is_empty();
        if !self.ok && has_record {
            let _ =
                writeln!(s, "the record below is what the bundle claims; it is NOT verified (see the failures above)");
        }
        if !self.record.institutions.is_empty() {
            let _ = writeln!(s, "institutions:");
            for i in &self.record.institutions {
                let years: Vec<String> = i.years.iter().map(i64::to_string).collect();
                let _ = writeln!(s, "  {} ({})", i.institution, years.join(", "));
            }
        }
        for (title, items) in [
            ("results", &self.record.results),
            ("documents", &self.record.documents),
            ("achievements", &self.record.achievements),
        ] {
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{title}:");
            for item in items {
                let Some(o) = item.as_object() else { continue };
                // Not revoked or corrected as far as the entries reach that completeness proves.
                let none_after = |what: &str, by: &str| match self.completeness.as_ref().map(|c| (c.status, c.up_to)) {
                    Some(("complete", _)) => format!("{what}=false"),
                    Some(("complete_up_to", Some(p))) => {
                        format!("{what}=false (up to position {p}; a {by} after it is covered by no commitment)")
                    }
                    _ => format!("{what}=false (among the bundle's entries; completeness not proved)"),
                };
                let unknown = |what: &str, why: &str| {
                    format!(
                        "{what}=unknown ({})",
                        o.get(why).and_then(Value::as_str).unwrap_or("withheld entries follow it")
                    )
                };
                // The event's data first, then its status (corrected, revoked).
                let status = |k: &str| k == "corrected" || k == "revoked";
                let shown =
                    |k: &str| !["seq", "type", "revoked_unknown", "corrected_unknown", "corrections"].contains(&k);
                let fields: Vec<String> = (o.iter().filter(|(k, _)| !status(k)))
                    .chain(o.iter().filter(|(k, _)| status(k)))
                    .filter(|(k, _)| shown(k))
                    .map(|(k, v)| match (k.as_str(), v) {
                        // An achievement whose revocation withheld entries may hide.
                        ("revoked", Value::Null) => unknown("revoked", "revoked_unknown"),
                        ("revoked", Value::Bool(false)) => none_after("revoked", "revocation"),
                        // A result: its latest disclosed correction is its current value.
                        ("corrected", Value::Bool(true)) => {
                            let list = o.get("corrections").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                            let latest = list.last().and_then(Value::as_object);
                            let now: Vec<String> = ["mark", "scale", "code", "reason"]
                                .into_iter()
                                .filter_map(|k| Some((k, latest?.get(k)?)))
                                .map(|(k, v)| {
                                    format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                                })
                                .collect();
                            let at = latest.and_then(|c| c.get("seq")).map(Value::to_string).unwrap_or_default();
                            let also = o.get("corrected_unknown").and_then(Value::as_str);
                            format!(
                                "corrected=true ({} correction{}; now, since seq {at}: {}){}",
                                list.len(),
                                if list.len() == 1 { "" } else { "s" },
                                now.join(" "),
                                also.map(|w| format!(" later=unknown ({w})")).unwrap_or_default()
                            )
                        }
                        ("corrected", Value::Null) => unknown("corrected", "corrected_unknown"),
                        ("corrected", Value::Bool(false)) => none_after("corrected", "correction"),
                        (_, Value::String(t)) => format!("{k}={t}"),
                        (_, v) => format!("{k}={v}"),
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "  [{}] {} {}",
                    o.get("seq").map(Value::to_string).unwrap_or_default(),
                    o.get("type").and_then(Value::as_str).unwrap_or(""),
                    fields.join(" ")
                );
            }
        }
        s
    }
}
