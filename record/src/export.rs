//! The exporter's pure part: given the entries that concern a learner, the registry and a
//! checkpoint, decide what is disclosed and withheld (FORMAT.md section 7), pick the registry
//! entries that make each disclosed author's authority chain (section 4), and assemble the
//! bundle with one inclusion proof per item and the learner's completeness value (section 6) as
//! the ledger answered it. Not how the entries are found (the root crate reads its store and the
//! `profiles` read model), not which commitment is the latest (the read side), and not the
//! checks (`verify`).

use crate::bundle::{Bundle, CompletenessMember, DisclosureNote, Item, FORMAT, VERSION};
use crate::disclosure::Disclosure;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use zachetka_formats::checkpoint;
use zachetka_formats::event::leaf_hash;

/// What the exporter reads of an entry: its position and event.
struct Parsed {
    seq: u64,
    event: Value,
}
use zachetka_formats::merkle::Hash;
use zachetka_projections::completeness::{LearnerValue, MapProof, ValueJson};

/// What the exporter starts from. Entries are `(seq, canonical entry bytes)`, ascending, all
/// below the checkpoint's tree size.
pub struct ExportInput<'a> {
    pub origin: &'a str,
    pub verifier_key: &'a str,
    pub learner: &'a str,
    /// The signed checkpoint note every proof is against.
    pub checkpoint: &'a [u8],
    /// Every entry that concerns the learner (`Concerns`), ascending by seq.
    pub concerned: &'a [(u64, Vec<u8>)],
    /// The `registry` stream below the checkpoint, ascending (a superset of what is needed).
    pub registry: &'a [(u64, Vec<u8>)],
    pub disclosure: &'a Disclosure,
    /// The learner's value in the latest completeness commitment below the checkpoint, when
    /// the ledger has made one (the bundle's `completeness` is `null` otherwise).
    pub completeness: Option<CompletenessInput<'a>>,
}

/// What the ledger's read side answers for the bundle's `completeness` member
/// (`ReadSide::completeness_for`), with the commitment entry's stored bytes.
pub struct CompletenessInput<'a> {
    /// The commitment entry's seq (`S`, below the checkpoint's tree size).
    pub commitment_seq: u64,
    /// The commitment entry's canonical bytes, as stored.
    pub commitment_entry: &'a [u8],
    /// `P`: the commitment covers every entry with seq < `P`.
    pub up_to: u64,
    pub value: LearnerValue,
    pub map_proof: &'a MapProof,
}

/// Why a bundle could not be made (the store's data is at fault, never the learner's choice).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("couldn't parse entry {seq}: {message}")]
    Entry { seq: u64, message: String },
    #[error("the checkpoint note is not a checkpoint")]
    Checkpoint,
    #[error("entry {seq} is not below the checkpoint's tree size {tree_size}")]
    BeyondCheckpoint { seq: u64, tree_size: u64 },
    #[error("the registry holds no ledger.established at seq 0")]
    NoEstablishment,
    #[error("couldn't prove entry {seq}: {message}")]
    Proof { seq: u64, message: String },
}

fn str_of<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

fn data_str<'v>(e: &'v Parsed, k: &str) -> Option<&'v str> {
    e.event.get("data").and_then(|d| str_of(d, k))
}

fn event_type(e: &Parsed) -> &str {
    str_of(&e.event, "type").unwrap_or("")
}

/// The data fields that name an institution (a school, a kindergarten...).
const INSTITUTION_FIELDS: [&str; 7] = [
    "institution",
    "kindergarten",
    "from_institution",
    "to_institution",
    "from_kindergarten",
    "to_kindergarten",
    "issuer",
];

/// Builds the bundle. `prove(seq, tree_size)` answers the RFC 9162 inclusion proof of `seq`.
pub fn export(
    input: &ExportInput,
    prove: impl Fn(u64, u64) -> Result<Vec<Hash>, String>,
) -> Result<Bundle, ExportError> {
    let (_, head) = checkpoint::parse_unverified(input.checkpoint).ok_or(ExportError::Checkpoint)?;
    let tree_size = head.tree_size;
    // The store checked each entry against its stored leaf hash on read; the canonical form is
    // the verifier's to check, so a plain JSON parse is enough to choose and to close the chain.
    let parse = |(seq, bytes): &(u64, Vec<u8>)| -> Result<Parsed, ExportError> {
        if *seq >= tree_size {
            return Err(ExportError::BeyondCheckpoint { seq: *seq, tree_size });
        }
        let mut v: Value = serde_json::from_slice(bytes)
            .map_err(|e| ExportError::Entry { seq: *seq, message: format!("not JSON: {e}") })?;
        match v.get_mut("event").map(Value::take) {
            Some(event @ Value::Object(_)) => Ok(Parsed { seq: *seq, event }),
            _ => Err(ExportError::Entry { seq: *seq, message: "no event object".into() }),
        }
    };
    let concerned: Vec<Parsed> = input.concerned.iter().map(parse).collect::<Result<_, _>>()?;
    let disclosed = choose(&concerned, input.learner, input.disclosure);

    // The authority chain: every registry entry about a key or institution the disclosed entries
    // need, closed over the authors of those registry entries themselves.
    let registry: Vec<Parsed> = input.registry.iter().map(parse).collect::<Result<_, _>>()?;
    if registry.first().map(|e| (e.seq, event_type(e))) != Some((0, "ledger.established")) {
        return Err(ExportError::NoEstablishment);
    }
    let mut about_key: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut about_institution: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in registry.iter().enumerate() {
        match event_type(e) {
            "keys.granted" | "keys.revoked" => {
                if let Some(k) = data_str(e, "key") {
                    about_key.entry(k).or_default().push(i);
                }
            }
            "keys.rotated" => {
                for f in ["old_key", "new_key"] {
                    if let Some(k) = data_str(e, f) {
                        about_key.entry(k).or_default().push(i);
                    }
                }
            }
            "registry.institution_registered" => {
                if let Some(id) = data_str(e, "institution") {
                    about_institution.entry(id).or_default().push(i);
                }
            }
            _ => {}
        }
    }
    let mut keys: Vec<String> = Vec::new();
    let mut institutions: Vec<String> = Vec::new();
    for (e, _) in concerned.iter().zip(&disclosed).filter(|(_, d)| **d) {
        keys.extend(str_of(&e.event, "author").map(str::to_owned));
        institutions.extend(INSTITUTION_FIELDS.iter().filter_map(|f| data_str(e, f)).map(str::to_owned));
        // A queue application's preferred kindergartens.
        let preferred = e.event.get("data").and_then(|d| d.get("preferred")).and_then(Value::as_array);
        institutions.extend(preferred.into_iter().flatten().filter_map(Value::as_str).map(str::to_owned));
        if let Some(id) = str_of(&e.event, "stream").and_then(|s| s.strip_prefix("institution/")) {
            institutions.push(id.to_owned());
        }
    }
    let mut chosen: BTreeSet<usize> = BTreeSet::from([0]);
    let (mut seen_keys, mut seen_institutions) = (HashSet::new(), HashSet::new());
    while !keys.is_empty() || !institutions.is_empty() {
        while let Some(id) = institutions.pop() {
            if seen_institutions.insert(id.clone()) {
                chosen.extend(about_institution.get(id.as_str()).into_iter().flatten());
            }
        }
        while let Some(k) = keys.pop() {
            if !seen_keys.insert(k.clone()) {
                continue;
            }
            for &i in about_key.get(k.as_str()).into_iter().flatten() {
                if chosen.insert(i) {
                    let e = &registry[i];
                    keys.extend(str_of(&e.event, "author").map(str::to_owned));
                    keys.extend(["old_key", "new_key"].iter().filter_map(|f| data_str(e, f)).map(str::to_owned));
                    let scope = e.event.get("data").and_then(|d| d.get("scope"));
                    institutions.extend(scope.and_then(|s| str_of(s, "institution")).map(str::to_owned));
                }
            }
        }
    }

    let proof = |seq: u64| prove(seq, tree_size).map_err(|message| ExportError::Proof { seq, message });
    let mut entries = Vec::with_capacity(concerned.len());
    for ((seq, bytes), show) in input.concerned.iter().zip(&disclosed) {
        let p = proof(*seq)?;
        entries.push(if *show {
            Item::disclosed(*seq, bytes, &p)
        } else {
            Item::withheld(*seq, &leaf_hash(bytes), &p)
        });
    }
    let mut authority = Vec::with_capacity(chosen.len());
    for i in chosen {
        let (seq, bytes) = &input.registry[i];
        authority.push(Item::disclosed(*seq, bytes, &proof(*seq)?));
    }
    let completeness = match &input.completeness {
        None => None,
        Some(c) => {
            let seq = c.commitment_seq;
            if seq >= tree_size {
                return Err(ExportError::BeyondCheckpoint { seq, tree_size });
            }
            Some(CompletenessMember {
                commitment: Item::disclosed(seq, c.commitment_entry, &proof(seq)?),
                up_to: c.up_to,
                value: ValueJson::from(c.value),
                map_proof: serde_json::to_value(c.map_proof).expect("a map proof serializes"),
            })
        }
    };
    Ok(Bundle {
        format: FORMAT.to_owned(),
        version: VERSION,
        origin: input.origin.to_owned(),
        verifier_key: input.verifier_key.to_owned(),
        learner: input.learner.to_owned(),
        checkpoint: String::from_utf8_lossy(input.checkpoint).into_owned(),
        disclosure: DisclosureNote { only: input.disclosure.choices() },
        entries,
        authority,
        completeness,
    })
}

/// Which of the concerned entries are disclosed: chosen by type; a correction with what it
/// corrects; a queue or 1st-grade application or offer whenever an entry of another stream than
/// the learner's is disclosed (the verifier's `Concerns` needs them to place the rest).
fn choose(concerned: &[Parsed], learner: &str, disclosure: &Disclosure) -> Vec<bool> {
    let own = format!("learner/{learner}");
    let mut shown = vec![false; concerned.len()];
    let mut shown_ids: HashSet<&str> = HashSet::new();
    let mut other_stream_shown = false;
    for (i, e) in concerned.iter().enumerate() {
        let ty = event_type(e);
        let corrects_shown = ty == "journal.record_corrected"
            && data_str(e, "corrected_event_id").is_some_and(|id| shown_ids.contains(id));
        if disclosure.chooses(ty) || corrects_shown {
            shown[i] = true;
            shown_ids.insert(str_of(&e.event, "id").unwrap_or(""));
            other_stream_shown |= str_of(&e.event, "stream") != Some(own.as_str());
        }
    }
    if other_stream_shown {
        for (i, e) in concerned.iter().enumerate() {
            let ty = event_type(e);
            if matches!(ty, "queue.application_submitted" | "enrolment.application_submitted" | "queue.place_offered") {
                shown[i] = true;
            }
        }
    }
    shown
}
