//! The read models over the rules' randomized histories: for each seed, the events the rules
//! accept (`randomized::accepted_history`) become real log entries (canonical JCS, stream
//! versions and previous-leaf links, leaf hashes), and every read model must reach the same
//! digest followed entry by entry (the read side's parse), rebuilt from zero (the audit's strict
//! parse), and restored from its snapshot section at random positions (0 and the head among
//! them) then fed the tail. Prints the seed on failure; `ZACHETKA_SEED` reruns one.
//! Not a test of the snapshot files (zachetka-snapshots' own tests) nor of signatures: the
//! generator's keys are made-up DIDs, so entries carry a placeholder signature no fold reads.

use crate::harness::ORIGIN;
use crate::randomized::{accepted_history, Rng, Step};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use zachetka_formats::event::{entry_bytes, parse_entry, EntryMeta};
use zachetka_formats::jcs::{to_canonical, Profile};
use zachetka_formats::merkle::{leaf_hash, Hash};
use zachetka_projections::model::{self, ParsedFact, ReadModel};

/// 64 zero bytes in standard padded base64: the shape of a signature, checked by nobody here.
fn placeholder_sig() -> String {
    format!("{}==", "A".repeat(86))
}

/// The accepted history as the log would store it: entry `seq` holds event `seq`, each stream's
/// entries numbered from 0 and linked to the previous entry of the stream by its leaf hash.
fn entries(history: &[(String, Step)]) -> Result<Vec<Vec<u8>>, String> {
    let sig = placeholder_sig();
    let mut streams: HashMap<&str, (u64, Hash)> = HashMap::new();
    let mut out = Vec::with_capacity(history.len());
    for (seq, (id, s)) in history.iter().enumerate() {
        let (stream_version, stream_prev) = match streams.get(s.stream.as_str()) {
            Some((n, prev)) => (*n, Some(*prev)),
            None => (0, None),
        };
        let event = json!({"ledger": ORIGIN, "stream": s.stream, "type": s.ty, "id": id, "occurred_at": s.at,
            "author": s.author, "expected_version": stream_version, "data": s.data});
        let canonical = to_canonical(&event, Profile::Event).map_err(|e| format!("event {seq} ({}): {e}", s.ty))?;
        let recorded = s.recorded.as_deref().unwrap_or(&s.at);
        let recorded_at_unix = zachetka_formats::time::parse_rfc3339(recorded)
            .ok_or_else(|| format!("event {seq}: recorded at {recorded:?}"))?;
        let meta = EntryMeta { seq: seq as u64, recorded_at_unix, stream_version, stream_prev };
        let bytes = entry_bytes(&meta, &canonical, &sig);
        streams.insert(&s.stream, (stream_version + 1, leaf_hash(&bytes)));
        out.push(bytes);
    }
    Ok(out)
}

/// Every model's (name, version, state bytes), as a snapshot stores its sections.
type Sections = Vec<(&'static str, u32, Vec<u8>)>;

fn sections(models: &[Box<dyn ReadModel>]) -> Sections {
    models.iter().map(|m| (m.name(), m.version(), m.encode())).collect()
}

/// Fresh models loaded from `sections` the way the read side opens a snapshot: by name, at the
/// same version, `load` of the section's bytes (which must re-encode to the same bytes).
fn restore(sections: &Sections) -> Result<Vec<Box<dyn ReadModel>>, String> {
    let mut models = model::all();
    for m in &mut models {
        let (name, version) = (m.name(), m.version());
        let (_, v, bytes) =
            sections.iter().find(|(n, _, _)| *n == name).ok_or_else(|| format!("{name}: no section"))?;
        if *v != version {
            return Err(format!("{name}: section version {v}, model {version}"));
        }
        m.load(bytes).map_err(|e| format!("{name}: its own bytes refused: {e}"))?;
        if m.encode() != *bytes {
            return Err(format!("{name}: loaded state re-encodes differently"));
        }
    }
    Ok(models)
}

fn fold(models: &mut [Box<dyn ReadModel>], facts: &[ParsedFact]) {
    for p in facts {
        if let Some(f) = p.fact() {
            for m in models.iter_mut() {
                m.apply(&f);
            }
        }
    }
}

fn digests(models: &[Box<dyn ReadModel>]) -> Vec<(&'static str, [u8; 32])> {
    models.iter().map(|m| (m.name(), model::digest(m.as_ref()))).collect()
}

/// The first model whose digest differs between `a` and `b`, named.
fn same(what: &str, a: &[(&'static str, [u8; 32])], b: &[(&'static str, [u8; 32])]) -> Result<(), String> {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        if x != y {
            return Err(format!("{name}: {what}"));
        }
    }
    Ok(())
}

/// One seed's history through every model; returns the names of the models it left non-empty
/// and the number of entries.
fn check(seed: u64) -> Result<(BTreeSet<&'static str>, usize), String> {
    let mut rng = Rng(seed ^ 0x5eed_0f4e_ad00);
    let rounds = 60 + rng.below(240);
    let (history, _) = accepted_history(seed, rounds)?;
    let bytes = entries(&history)?;
    let n = bytes.len();
    // The read side's parse (fast path, its JSON fallback) and the audit's (strict canonical
    // entry, then the event as a value) must read the same facts.
    let mut followed_facts = Vec::with_capacity(n);
    let mut audit_facts = Vec::with_capacity(n);
    for (seq, b) in bytes.iter().enumerate() {
        let ty = history[seq].1.ty;
        let read = ParsedFact::from_entry(b).map_err(|e| format!("entry {seq} ({ty}): {e}"))?;
        let strict = parse_entry(b).map_err(|e| format!("entry {seq} ({ty}) is not a canonical entry: {e}"))?;
        let audit = ParsedFact::from_parsed_with_leaf(&strict, leaf_hash(b).0);
        if read != audit {
            return Err(format!("entry {seq} ({ty}): the read side and the audit parse it differently"));
        }
        if read.fact().is_none() {
            return Err(format!("entry {seq} ({ty}) accepted by the rules is not a fact of the vocabulary"));
        }
        followed_facts.push(read);
        audit_facts.push(audit);
    }
    // Snapshot points: 0, the head and a few in between.
    let mut points = BTreeSet::from([0, n]);
    for _ in 0..4 {
        points.insert(rng.below(n + 1));
    }
    // Followed: entry by entry, a snapshot's sections taken at each point.
    let mut followed = model::all();
    let mut taken: BTreeMap<usize, Sections> = BTreeMap::new();
    for (k, p) in followed_facts.iter().enumerate() {
        if points.contains(&k) {
            taken.insert(k, sections(&followed));
        }
        fold(&mut followed, std::slice::from_ref(p));
    }
    taken.insert(n, sections(&followed));
    let head = digests(&followed);
    // Rebuilt from zero over the audit's facts.
    let mut rebuilt = model::all();
    fold(&mut rebuilt, &audit_facts);
    same("followed and rebuilt from zero differ", &head, &digests(&rebuilt))?;
    // Restored at each point, then the tail; and the state at the point equals a rebuild of
    // the prefix.
    for (k, s) in &taken {
        let mut prefix = model::all();
        fold(&mut prefix, &audit_facts[..*k]);
        let at_k: Vec<_> = s.iter().map(|(name, v, b)| (*name, model::digest_of(name, *v, b))).collect();
        same(&format!("the snapshot at {k} of {n} differs from a rebuild of its prefix"), &at_k, &digests(&prefix))?;
        let mut restored = restore(s).map_err(|e| format!("snapshot at {k} of {n}: {e}"))?;
        fold(&mut restored, &followed_facts[*k..]);
        same(&format!("restored at {k} of {n} plus the tail differs from followed"), &digests(&restored), &head)?;
    }
    let empty = digests(&model::all());
    let touched = head.iter().zip(&empty).filter(|((_, a), (_, b))| a != b).map(|((name, _), _)| *name).collect();
    Ok((touched, n))
}

#[test]
fn every_read_model_followed_rebuilt_and_restored_agrees_over_randomized_histories() {
    let base = std::env::var("ZACHETKA_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut touched = BTreeSet::new();
    let mut entries = 0;
    for i in 0..16 {
        let seed = base.wrapping_add(i);
        match check(seed) {
            Ok((t, n)) => {
                touched.extend(t);
                entries += n;
            }
            Err(e) => panic!("seed {seed} (rerun with ZACHETKA_SEED={seed}): {e}"),
        }
    }
    // The histories reach every model (else its agreement would be the empty state's).
    let untouched: Vec<_> = model::all().iter().map(|m| m.name()).filter(|n| !touched.contains(n)).collect();
    assert!(untouched.is_empty(), "models no history changed (base seed {base}, {entries} entries): {untouched:?}");
}
