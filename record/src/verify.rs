//! The offline verifier (FORMAT.md section 4): every check in the order the format lists, each
//! failure with its stable code and the entry it names. Needs the bundle's bytes and the
//! verifier key the caller trusts, nothing else: no network, no store. The completeness member
//! (section 6) is checked here too: the commitment entry, the learner's value recomputed from
//! the bundle's items, the map proof, and the freshness bound.
//! Not the exporter, and not the commitment format (`zachetka_projections::completeness`).

use crate::bundle::CompletenessMember;
use crate::bundle::{Bundle, Content, Decoded, FORMAT, NOTE_BYTES_MAX, VERSION};
use crate::disclosure::preset;
use crate::report::{
    Completeness, ConsistencyChecked, Cosignatures, Cosigned, Failure, GrantOnly, InstitutionYears, RecordSummary,
    Report,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use zachetka_formats::checkpoint::{self, TreeHead};
use zachetka_formats::cosignature::{self, WitnessKey};
use zachetka_formats::event::{canonical_event_of_entry, parse_entry, signing_input, ParsedEntry};
use zachetka_formats::keys::{self, KeyCache};
use zachetka_formats::merkle::{self, ConsistencyProof, Hash, HashB64};
use zachetka_projections::completeness::{self as commitment, LearnerValue, MapProof};
use zachetka_projections::model::ParsedFact;
use zachetka_projections::models::concerns::Concerns;
use zachetka_rules::{Envelope, Lookup, LookupError, RegionConfig, RuleError, RuleKind, Rules};

/// A second checkpoint of the same ledger (older or newer than the bundle's) and the RFC 9162
/// consistency proof between the two sizes.
#[derive(Debug, Clone)]
pub struct OtherCheckpoint {
    pub note: Vec<u8>,
    pub proof: ConsistencyProof,
}

/// What the caller adds to the bundle.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Check that the bundle's checkpoint and this one are one history.
    pub other: Option<OtherCheckpoint>,
    /// The region profile the rules replay under (default: `RegionConfig::default()`).
    pub region: Option<RegionConfig>,
    /// Threads for the per-entry checks (0: the machine's parallelism, at most 8).
    pub threads: usize,
    /// Refuse a bundle that carries no completeness member (`completeness_missing`); without
    /// it such a bundle is reported `not_present`, which is no failure.
    pub require_complete: bool,
    /// The most positions the completeness commitment may leave uncovered: from its `up_to` to
    /// the bundle's checkpoint, and to the second checkpoint when that one is newer
    /// (`completeness_stale` beyond). `None`: [`MAX_UNCOVERED_DEFAULT`].
    pub max_uncovered: Option<u64>,
    /// Witnesses whose cosignatures the caller looks for (C2SP `tlog-cosignature`, DESIGN 3.6).
    /// A key given twice counts once.
    pub witnesses: Vec<WitnessKey>,
    /// How many distinct witnesses of `witnesses` must have cosigned the bundle's checkpoint
    /// (and the second checkpoint, when one is given): `cosignatures_insufficient` below that.
    /// 0 demands none (the cosignatures found are still checked and reported).
    pub witnesses_required: usize,
}

/// The default bound on positions a bundle's completeness commitment leaves uncovered
/// (FORMAT.md section 6, "Freshness"): twice the ledger's default commitment spacing of
/// 100,000 entries. Under that policy the latest commitment below any checkpoint covers all but
/// at most about 100,000 + 65,536 positions (the spacing, plus how far the read side may lag
/// when it commits), so an honest bundle of such a ledger is never refused, while a bundle that
/// cites a commitment older than the two latest is. A ledger run with another policy publishes
/// its spacing; its verifiers pass twice that.
pub const MAX_UNCOVERED_DEFAULT: u64 = 200_000;

/// One item after its own checks.
struct Checked {
    seq: u64,
    in_authority: bool,
    /// Carried as `seq` + leaf hash.
    withheld: bool,
    leaf: Option<Hash>,
    entry: Option<ParsedEntry>,
    failures: Vec<(&'static str, String)>,
    signature_checked: bool,
    proof_checked: bool,
    /// The signature to check, taken out to be checked on every thread.
    signature: Option<SignatureJob>,
}

/// A disclosed entry's signature as the strict rule checks it: the author's key, the signed
/// bytes and the signature; or why it cannot be checked at all.
type SignatureJob = Result<([u8; 32], Vec<u8>, keys::Signature), String>;

/// Verifies a bundle under `verifier_key` (the ledger's note verifier key, as the caller trusts
/// it). Never panics on bad input; every problem is a failure in the report.
pub fn verify(bundle_bytes: &[u8], verifier_key: &str, options: &Options) -> Report {
    let mut r = Report::default();
    let b = match Bundle::parse(bundle_bytes) {
        Ok(b) => b,
        Err(e) => {
            let message = match e.code {
                "bundle_malformed" => format!("the bundle is not a record bundle: {}", e.message),
                _ => e.message.clone(),
            };
            r.fail(e.code, None, message);
            r.unreadable = Some(Failure { code: e.code.to_owned(), seq: None, message: e.message });
            return r;
        }
    };
    r.origin = b.origin.clone();
    r.learner = b.learner.clone();
    if b.format != FORMAT || b.version != VERSION {
        r.fail(
            "bundle_format_unsupported",
            None,
            format!("format {:?} version {} is not {FORMAT} version {VERSION}", b.format, b.version),
        );
        return r;
    }
    if b.verifier_key != verifier_key {
        r.fail(
            "verifier_key_mismatch",
            None,
            format!("the bundle names verifier key {:?}, the key given is {verifier_key:?}", b.verifier_key),
        );
    }
    let head = check_checkpoint(&mut r, b.checkpoint.as_bytes(), verifier_key, &b.origin, "the bundle's checkpoint");
    if let Some(h) = &head {
        r.tree_size = Some(h.tree_size);
        r.root_hash = Some(h.root_hash.to_b64());
    }
    let witnesses = distinct(&options.witnesses);
    if !witnesses.is_empty() {
        let checkpoint = head.as_ref().map(|_| {
            check_cosignatures(&mut r, b.checkpoint.as_bytes(), &witnesses, options, "the bundle's checkpoint")
        });
        r.cosignatures = Some(Cosignatures {
            required: options.witnesses_required,
            witnesses: witnesses.len(),
            checkpoint,
            second_checkpoint: None,
        });
    }
    check_order(&mut r, &b);

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(8),
        n => n,
    };
    // Each item alone (proof, bytes, fields), then the signatures on every thread while this one
    // runs the checks over several entries, which need no signature: the signatures are most of
    // the work, and these checks are done by the time they are.
    let mut checked = check_items(&b, head.as_ref(), threads);
    let jobs: Vec<(usize, SignatureJob)> =
        checked.iter_mut().enumerate().filter_map(|(i, c)| c.signature.take().map(|j| (i, j))).collect();
    let cache = KeyCache::default();
    let (verdicts, later) = check_signatures_beside(&jobs, threads, &cache, || {
        let mut later = Report::default();
        // Ordered by seq (both arrays), each seq once, for the checks over several entries.
        let mut by_seq: BTreeMap<u64, &Checked> = BTreeMap::new();
        for c in &checked {
            by_seq.entry(c.seq).or_insert(c);
        }
        check_concerns(&mut later, &b.learner, &by_seq);
        check_chains(&mut later, &b.learner, &by_seq);
        check_authority(&mut later, &b.origin, options.region.clone().unwrap_or_default(), &by_seq);
        if let (Some(other), Some(head)) = (&options.other, &head) {
            check_consistency(&mut later, other, head, verifier_key, &b.origin, &witnesses, options);
        } else if options.other.is_some() {
            later.fail("consistency_invalid", None, "consistency not checked: the bundle's checkpoint did not verify");
        }
        later.completeness =
            Some(check_completeness(&mut later, &b, head.as_ref(), &checked, verifier_key, options, &cache));
        later.record = summarize(&by_seq);
        later
    });
    drop(jobs);
    for (i, verdict) in verdicts {
        if let Err(m) = verdict {
            let seq = checked[i].seq;
            checked[i].failures.push(("signature_invalid", format!("entry {seq}: {m}")));
        }
    }
    r.entries = b.entries.len();
    r.authority_entries = b.authority.len();
    for c in &checked {
        r.signatures_checked += usize::from(c.signature_checked);
        r.proofs_checked += usize::from(c.proof_checked);
        for (code, message) in &c.failures {
            r.fail(code, Some(c.seq), message.clone());
        }
        if !c.in_authority {
            if c.withheld {
                r.withheld += 1;
            } else {
                r.disclosed += 1;
            }
        }
    }
    // Their failures follow the items' own, in the order the checks run (FORMAT.md section 4).
    r.failures.extend(later.failures);
    r.signatures_checked += later.signatures_checked;
    r.proofs_checked += later.proofs_checked;
    r.authority_checked_by_rules = later.authority_checked_by_rules;
    r.authority_checked_by_grant_only = later.authority_checked_by_grant_only;
    r.consistency = later.consistency;
    r.consistency_asked = options.other.is_some();
    if let (Some(c), Some(second)) = (r.cosignatures.as_mut(), later.cosignatures) {
        c.second_checkpoint = second.second_checkpoint;
    }
    r.completeness = later.completeness;
    r.record = later.record;
    r.ok = r.failures.is_empty();
    r
}

/// Each signature's verdict, by the index of its item.
type Verdicts = Vec<(usize, Result<(), String>)>;

/// Runs `work` on this thread while `threads - 1` others check the signatures of `jobs`, then
/// checks what is left with them: each thread takes the next few jobs until none is left.
/// Returns each job's verdict by its item index, and what `work` returned. With one thread, or
/// few jobs, no thread is spawned (the CPU time is then the work's alone).
fn check_signatures_beside<R>(
    jobs: &[(usize, SignatureJob)],
    threads: usize,
    cache: &KeyCache,
    work: impl FnOnce() -> R,
) -> (Verdicts, R) {
    const TAKE: usize = 16;
    let next = AtomicUsize::new(0);
    let take = || {
        let mut out = Vec::new();
        loop {
            let from = next.fetch_add(TAKE, Ordering::Relaxed);
            if from >= jobs.len() {
                return out;
            }
            for (i, job) in &jobs[from..(from + TAKE).min(jobs.len())] {
                out.push((*i, check_signature(job, cache)));
            }
        }
    };
    if threads <= 1 || jobs.len() <= 64 {
        let done = work();
        return (take(), done);
    }
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(take)).collect();
        let done = work();
        let mut verdicts = take();
        for h in helpers {
            verdicts.extend(h.join().expect("a signature check never panics"));
        }
        (verdicts, done)
    })
}

fn check_checkpoint(r: &mut Report, note: &[u8], vkey: &str, origin: &str, what: &str) -> Option<TreeHead> {
    if note.len() > NOTE_BYTES_MAX {
        r.fail("checkpoint_invalid", None, format!("{what} is {} bytes, the limit is {NOTE_BYTES_MAX}", note.len()));
        return None;
    }
    match checkpoint::verify_checkpoint(note, vkey, origin) {
        Ok(c) => Some(c.head),
        Err(e) => {
            r.fail("checkpoint_invalid", None, format!("{what} does not verify: {e}"));
            None
        }
    }
}

fn check_order(r: &mut Report, b: &Bundle) {
    for (name, items) in [("entries", &b.entries), ("authority", &b.authority)] {
        for w in items.windows(2) {
            if w[0].seq >= w[1].seq {
                r.fail(
                    "entries_out_of_order",
                    Some(w[1].seq),
                    format!("{name}: entry {} follows entry {}; seq must ascend strictly", w[1].seq, w[0].seq),
                );
            }
        }
    }
    let in_entries: HashSet<u64> = b.entries.iter().map(|i| i.seq).collect();
    for i in b.authority.iter().filter(|i| in_entries.contains(&i.seq)) {
        r.fail("entries_out_of_order", Some(i.seq), format!("entry {} is in both entries and authority", i.seq));
    }
}

/// The checks of one item alone (FORMAT.md section 4, steps 1 to 4) but its signature, on
/// `threads` threads (this one among them).
fn check_items(b: &Bundle, head: Option<&TreeHead>, threads: usize) -> Vec<Checked> {
    let items: Vec<(bool, &crate::Item)> =
        b.entries.iter().map(|i| (false, i)).chain(b.authority.iter().map(|i| (true, i))).collect();
    if threads <= 1 || items.len() <= 64 {
        return items.iter().map(|(a, i)| check_item(b, *a, i, head)).collect();
    }
    let chunk = items.len().div_ceil(threads).max(64);
    let mut parts = items.chunks(chunk);
    let mine = parts.next().unwrap_or_default();
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .map(|part| s.spawn(move || part.iter().map(|(a, i)| check_item(b, *a, i, head)).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<Checked> = mine.iter().map(|(a, i)| check_item(b, *a, i, head)).collect();
        for h in handles {
            out.extend(h.join().expect("an item check never panics"));
        }
        out
    })
}

fn check_item(b: &Bundle, in_authority: bool, item: &crate::Item, head: Option<&TreeHead>) -> Checked {
    let mut c = Checked {
        seq: item.seq,
        in_authority,
        withheld: item.leaf_hash.is_some() && item.entry.is_none(),
        leaf: None,
        entry: None,
        failures: Vec::new(),
        signature_checked: false,
        proof_checked: false,
        signature: None,
    };
    let Decoded { seq, content, leaf, proof } = match item.decode() {
        Ok(d) => d,
        Err(m) => {
            c.failures.push(("bundle_malformed", format!("entry {}: {m}", item.seq)));
            return c;
        }
    };
    c.leaf = Some(leaf);
    if let Some(h) = head {
        c.proof_checked = true;
        if let Err(e) = merkle::verify_inclusion(seq, h.tree_size, leaf, &proof, h.root_hash) {
            c.failures.push((
                "proof_invalid",
                format!(
                    "the inclusion proof of entry {seq} does not lead to the checkpoint's root at tree size {}: {e}",
                    h.tree_size
                ),
            ));
        }
    }
    let bytes = match content {
        Content::Withheld if in_authority => {
            c.failures
                .push(("authority_entry_invalid", format!("authority entry {seq} is withheld; the chain needs it")));
            return c;
        }
        Content::Withheld => return c,
        Content::Disclosed(bytes) => bytes,
    };
    let e = match parse_entry(&bytes) {
        Ok(e) => e,
        Err(err) => {
            c.failures.push(("entry_not_canonical", format!("entry {seq} is not a canonical entry: {err}")));
            return c;
        }
    };
    if e.meta.seq != seq {
        c.failures.push(("entry_seq_mismatch", format!("the item says seq {seq}, its entry says {}", e.meta.seq)));
    }
    let s = |k: &str| e.event.get(k).and_then(Value::as_str).unwrap_or("");
    if s("ledger") != b.origin {
        c.failures.push((
            "wrong_ledger",
            format!("entry {seq} is for ledger {:?}, the bundle's is {:?}", s("ledger"), b.origin),
        ));
    }
    let registration = (s("stream").starts_with("institution/")
        && matches!(
            s("type"),
            "college.curriculum_registered" | "additional.program_registered" | "journal.lesson_held"
        ))
        || (s("stream").starts_with("queue/kg/")
            && matches!(s("type"), "queue.allocation_started" | "queue.allocation_finished"));
    if in_authority && s("stream") != "registry" && !registration {
        c.failures.push((
            "authority_entry_invalid",
            format!(
                "authority entry {seq} is a {} on stream {:?}: neither a registry entry nor an institution's curriculum, programme or lesson, nor a queue's allocation run",
                s("type"),
                s("stream")
            ),
        ));
    }
    c.signature_checked = true;
    c.signature = Some(signature_job(&bytes, &e));
    c.entry = Some(e);
    c
}

/// What the author signed: `zachetka/event/v1\n || JCS(event)`, the event's canonical bytes
/// taken from the (canonical) entry bytes; with the author's key and the signature.
fn signature_job(bytes: &[u8], e: &ParsedEntry) -> SignatureJob {
    let canonical = canonical_event_of_entry(bytes).ok_or("the entry's event cannot be located")?;
    let author = e.event.get("author").and_then(Value::as_str).ok_or("event.author is missing")?;
    let public = keys::public_from_did(author).map_err(|err| format!("author {author}: {err}"))?;
    let sig = keys::decode_signature(&e.sig).map_err(|err| err.to_string())?;
    Ok((public, signing_input(canonical), sig))
}

/// The signature under the strict rule.
fn check_signature(job: &SignatureJob, cache: &KeyCache) -> Result<(), String> {
    let (public, message, sig) = job.as_ref().map_err(String::clone)?;
    cache
        .verify(public, message, sig)
        .map_err(|err| format!("the signature does not verify for author {}: {err}", keys::did_from_public(public)))
}

/// Every disclosed item of `entries` concerns the learner (FORMAT.md section 3), by `Concerns`
/// fed the bundle's disclosed entries in log order.
fn check_concerns(r: &mut Report, learner: &str, by_seq: &BTreeMap<u64, &Checked>) {
    let mut concerns = Concerns::default();
    for c in by_seq.values() {
        let Some(e) = &c.entry else { continue };
        let parsed = ParsedFact::from_parsed_with_leaf(e, c.leaf.map_or([0; 32], |l| l.0));
        let Some(fact) = parsed.fact() else {
            if !c.in_authority {
                r.fail(
                    "entry_not_concerning_learner",
                    Some(c.seq),
                    format!("entry {} is not an event of the vocabulary", c.seq),
                );
            }
            continue;
        };
        concerns.apply(&fact);
        if !c.in_authority && !concerns.learners_concerned(&fact).contains(&learner) {
            r.fail(
                "entry_not_concerning_learner",
                Some(c.seq),
                format!("entry {} ({} on {}) does not concern learner {learner}", c.seq, fact.event_type, fact.stream),
            );
        }
    }
}

/// Stream chains (FORMAT.md section 4, step 5).
fn check_chains(r: &mut Report, learner: &str, by_seq: &BTreeMap<u64, &Checked>) {
    let own = format!("learner/{learner}");
    let stream = |e: &ParsedEntry| e.event.get("stream").and_then(Value::as_str).unwrap_or("").to_owned();
    let mut versions: HashMap<(String, u64), (u64, Hash)> = HashMap::new();
    for c in by_seq.values() {
        if let (Some(e), Some(leaf)) = (&c.entry, c.leaf) {
            let key = (stream(e), e.meta.stream_version);
            if let Some((other, _)) = versions.insert(key.clone(), (c.seq, leaf)) {
                r.fail(
                    "stream_gap",
                    Some(c.seq),
                    format!("entries {other} and {} both claim version {} of stream {}", c.seq, key.1, key.0),
                );
            }
        }
    }
    let withheld: HashMap<[u8; 32], u64> = by_seq
        .values()
        .filter(|c| !c.in_authority && c.withheld && c.failures.is_empty())
        .filter_map(|c| c.leaf.map(|l| (l.0, c.seq)))
        .collect();
    let mut placed: HashSet<[u8; 32]> = HashSet::new();
    // Version of the learner's own stream -> the seq that accounts for it.
    let mut own_versions: BTreeMap<u64, u64> = BTreeMap::new();
    for c in by_seq.values() {
        let Some(e) = &c.entry else { continue };
        let (s, v) = (stream(e), e.meta.stream_version);
        let is_own = !c.in_authority && s == own;
        if is_own {
            own_versions.insert(v, c.seq);
        }
        if v == 0 {
            if e.meta.stream_prev.is_some() {
                r.fail(
                    "stream_gap",
                    Some(c.seq),
                    format!("entry {} is version 0 of {s} but names a previous entry", c.seq),
                );
            }
            continue;
        }
        let Some(prev) = e.meta.stream_prev else {
            r.fail(
                "stream_gap",
                Some(c.seq),
                format!("entry {} is version {v} of {s} but names no previous entry", c.seq),
            );
            continue;
        };
        if let Some((pseq, pleaf)) = versions.get(&(s.clone(), v - 1)) {
            if *pleaf != prev || *pseq >= c.seq {
                r.fail(
                    "stream_gap",
                    Some(c.seq),
                    format!("entry {} of {s} does not chain to entry {pseq}, version {} of its stream", c.seq, v - 1),
                );
            }
        } else if is_own {
            match withheld.get(&prev.0) {
                Some(wseq) if *wseq < c.seq => {
                    if !placed.insert(prev.0) {
                        r.fail(
                            "stream_gap",
                            Some(c.seq),
                            format!("two entries of {s} name withheld entry {wseq} as their previous"),
                        );
                    }
                    own_versions.insert(v - 1, *wseq);
                }
                _ => r.fail(
                    "stream_gap",
                    Some(c.seq),
                    format!(
                        "entry {} (version {v} of {s}) names a previous entry {} that is not in the bundle",
                        c.seq,
                        prev.to_b64()
                    ),
                ),
            }
        }
    }
    // Versions nobody accounts for, between two that are accounted for: the withheld items not
    // placed whose seq lies between must be at least as many (versions ascend with seq).
    let unplaced: BTreeSet<u64> =
        withheld.iter().filter(|(leaf, _)| !placed.contains(*leaf)).map(|(_, seq)| *seq).collect();
    let mut below: Option<(u64, u64)> = None;
    for (&v, &seq) in &own_versions {
        let (missing, from) = match below {
            None => (v, 0),
            Some((pv, pseq)) => (v - pv - 1, pseq + 1),
        };
        let available = unplaced.range(from..seq).count() as u64;
        if missing > available {
            r.fail(
                "stream_gap",
                Some(seq),
                format!(
                    "{missing} versions of {own} before entry {seq} (version {v}) are neither disclosed nor withheld in the bundle (only {available} withheld entries could stand for them)"
                ),
            );
        }
        below = Some((v, seq));
    }
}

/// The bundle's disclosed entries by id, as the rules' `Lookup`: ids outside the bundle cannot
/// be told, which is never "no such event".
struct BundleLookup(HashMap<String, (String, String)>);

impl Lookup for BundleLookup {
    fn event(&self, id: &str) -> Result<Option<(String, String)>, LookupError> {
        match self.0.get(id) {
            Some(found) => Ok(Some(found.clone())),
            None => Err(LookupError::new(id, "the event is not disclosed in the bundle")),
        }
    }
}

/// Authority (FORMAT.md section 4, step 6): the registry entries and the disclosed entries
/// replayed in log order through the rules; a rule that needs entries outside the bundle falls
/// back to the grant check.
fn check_authority(r: &mut Report, origin: &str, region: RegionConfig, by_seq: &BTreeMap<u64, &Checked>) {
    let genesis = by_seq.get(&0).filter(|c| c.in_authority).and_then(|c| c.entry.as_ref()).and_then(|e| {
        let d = e.event.get("data")?;
        (e.event.get("type")?.as_str()? == "ledger.established" && d.get("origin")?.as_str()? == origin)
            .then(|| d.get("authority")?.as_str().map(str::to_owned))?
    });
    let Some(genesis) = genesis else {
        r.fail(
            "authority_chain_incomplete",
            None,
            format!("authority does not start with ledger.established of {origin} at seq 0; no author's right can be decided"),
        );
        return;
    };
    let mut rules = Rules::new(origin, &genesis, region).with_key_check(keys::strict_key_check);
    let mut lookup = BundleLookup(HashMap::new());
    for c in by_seq.values() {
        let Some(e) = &c.entry else { continue };
        let Some(env) = Envelope::of_event(c.seq, e.meta.recorded_at_unix, &e.event) else {
            r.fail(
                "authority_entry_invalid",
                Some(c.seq),
                format!("entry {} lacks an event field the rules need", c.seq),
            );
            continue;
        };
        match rules.check_and_apply(&env, &lookup) {
            Ok(()) => r.authority_checked_by_rules += usize::from(!c.in_authority),
            Err(RuleError::Refused(refusal)) if c.in_authority || refusal.kind == RuleKind::Rights => {
                r.fail(refusal.code, Some(c.seq), format!("entry {} ({}): {}", c.seq, env.event_type, refusal.message));
            }
            Err(RuleError::Lookup(err)) if c.in_authority => {
                r.fail("authority_chain_incomplete", Some(c.seq), format!("entry {}: {err}", c.seq));
            }
            Err(err) => {
                let reason = match &err {
                    RuleError::Refused(refusal) => refusal.code.to_owned(),
                    RuleError::Lookup(_) => "lookup_outside_bundle".to_owned(),
                };
                match grant_check(&rules, &env) {
                    Ok(()) => r.authority_checked_by_grant_only.push(GrantOnly { seq: c.seq, reason }),
                    Err((code, message)) => r.fail(code, Some(c.seq), format!("entry {}: {message}", c.seq)),
                }
            }
        }
        lookup.0.insert(env.id.to_owned(), (env.stream.to_owned(), env.event_type.to_owned()));
    }
}

/// The author's grant exists and is in force at `occurred_at` (the rules' `valid_grant`); for a
/// migration's import (`data.migrated_from`), as the rules judge it, at the entry's `recorded_at`
/// (the old `occurred_at` is the legacy system's; the key wrote it then) and with the migration role.
fn grant_check(rules: &Rules, env: &Envelope) -> Result<(), (&'static str, String)> {
    let key = env.author;
    let occurred = zachetka_rules::time::parse_instant(env.occurred_at)
        .ok_or(("event_malformed", format!("occurred_at {} is not an rfc 3339 time", env.occurred_at)))?;
    let imported = env.data.get(zachetka_projections::vocabulary::MIGRATED_FROM).is_some();
    let at = if imported { env.recorded_at } else { occurred };
    let g = rules
        .grant(key)
        .ok_or(("key_unknown", format!("key {key} was never granted in the bundle's authority chain")))?;
    if g.revoked_at.is_some_and(|t| t <= at) {
        return Err(("key_revoked", format!("key {key} was revoked before this event")));
    }
    if at < g.valid_from {
        return Err(("key_not_yet_valid", format!("key {key} is not valid yet at this time")));
    }
    if g.valid_until.is_some_and(|u| at >= u) {
        return Err(("key_expired", format!("key {key} expired before this event")));
    }
    if imported && !g.has_role(zachetka_rules::MIGRATION_ROLE) {
        return Err((
            "not_authorized",
            format!(
                "key {key} holds no {} role; data.migrated_from is written only by one",
                zachetka_rules::MIGRATION_ROLE
            ),
        ));
    }
    Ok(())
}

/// The witnesses given, each once (by name, key id and key), in the order given.
fn distinct(witnesses: &[WitnessKey]) -> Vec<WitnessKey> {
    let mut out: Vec<WitnessKey> = Vec::new();
    for w in witnesses {
        if !out.contains(w) {
            out.push(w.clone());
        }
    }
    out
}

/// Step 2 (and 7, for the second checkpoint), witnesses (FORMAT.md section 4, "Witnesses"): a
/// verified checkpoint's cosignature lines that name a given witness each verify
/// (`cosignature_invalid`), and at least `witnesses_required` distinct witnesses cosigned it
/// (`cosignatures_insufficient`). Returns the witnesses whose cosignature verified, each once
/// (its first valid line), in the order given.
fn check_cosignatures(
    r: &mut Report,
    note: &[u8],
    witnesses: &[WitnessKey],
    options: &Options,
    what: &str,
) -> Vec<Cosigned> {
    // The note verified as a checkpoint, so it parses as a signed note.
    let lines = cosignature::check_cosignatures(note, witnesses).unwrap_or_default();
    let mut valid: Vec<Option<u64>> = vec![None; witnesses.len()];
    for l in &lines {
        let w = &witnesses[l.witness];
        match &l.verdict {
            Ok(()) => {
                valid[l.witness].get_or_insert(l.timestamp.unwrap_or(0));
            }
            Err(why) => r.fail(
                "cosignature_invalid",
                None,
                format!("the cosignature of witness {} ({:08x}) on {what} does not verify: {why}", w.name, w.key_id),
            ),
        }
    }
    let cosigned: Vec<Cosigned> = witnesses
        .iter()
        .zip(&valid)
        .filter_map(|(w, t)| {
            t.map(|timestamp| Cosigned { witness: w.name.clone(), key_id: format!("{:08x}", w.key_id), timestamp })
        })
        .collect();
    if cosigned.len() < options.witnesses_required {
        let names: Vec<&str> = cosigned.iter().map(|c| c.witness.as_str()).collect();
        r.fail(
            "cosignatures_insufficient",
            None,
            format!(
                "{what} carries valid cosignatures of {} of the {} witnesses given ({}), {} required",
                cosigned.len(),
                witnesses.len(),
                if names.is_empty() { "none".to_owned() } else { names.join(", ") },
                options.witnesses_required
            ),
        );
    }
    cosigned
}

/// Step 7: the other checkpoint and the bundle's are one history (and it carries the
/// cosignatures demanded, when witnesses are given).
fn check_consistency(
    r: &mut Report,
    other: &OtherCheckpoint,
    head: &TreeHead,
    vkey: &str,
    origin: &str,
    witnesses: &[WitnessKey],
    options: &Options,
) {
    let Some(o) = check_checkpoint(r, &other.note, vkey, origin, "the second checkpoint") else { return };
    if !witnesses.is_empty() {
        let second = check_cosignatures(r, &other.note, witnesses, options, "the second checkpoint");
        r.cosignatures = Some(Cosignatures { second_checkpoint: Some(second), ..Default::default() });
    }
    let (small, large) = if o.tree_size <= head.tree_size { (o, *head) } else { (*head, o) };
    let p = &other.proof;
    if (p.first, p.second) != (small.tree_size, large.tree_size) {
        r.fail(
            "consistency_invalid",
            None,
            format!(
                "the consistency proof is from {} to {}, the checkpoints are of sizes {} and {}",
                p.first, p.second, small.tree_size, large.tree_size
            ),
        );
        return;
    }
    let hashes = match merkle::hashes_from_b64(&p.hashes) {
        Ok(h) => h,
        Err(e) => {
            r.fail("consistency_invalid", None, format!("the consistency proof is malformed: {e}"));
            return;
        }
    };
    match merkle::verify_consistency(small.tree_size, large.tree_size, small.root_hash, large.root_hash, &hashes) {
        Ok(()) => r.consistency = Some(ConsistencyChecked { first: small.tree_size, second: large.tree_size }),
        Err(e) => r.fail(
            "consistency_invalid",
            None,
            format!(
                "the tree of size {} does not extend the tree of size {} (a rewritten history?): {e}",
                large.tree_size, small.tree_size
            ),
        ),
    }
}

/// The commitment's `data`: `{"v": 1, "up_to", "map_root", "learners"}`, exactly.
struct CommitmentData {
    up_to: u64,
    map_root: [u8; 32],
    learners: u64,
}

/// The commitment event's own checks (FORMAT.md section 6): stream, type, author the trusted
/// ledger key, data in shape; each problem a message for `completeness_commitment_invalid`.
fn commitment_data(e: &ParsedEntry, vkey: &str) -> Result<CommitmentData, Vec<String>> {
    let s = |k: &str| e.event.get(k).and_then(Value::as_str).unwrap_or("");
    let mut problems = Vec::new();
    if s("stream") != commitment::STREAM || s("type") != commitment::EVENT_TYPE {
        problems.push(format!(
            "it is {} on stream {:?}, not {} on stream {:?}",
            s("type"),
            s("stream"),
            commitment::EVENT_TYPE,
            commitment::STREAM
        ));
    }
    match checkpoint::public_key_of_verifier_key(vkey).map(|pk| keys::did_from_public(&pk)) {
        Some(ledger) if ledger == s("author") => {}
        Some(ledger) => problems
            .push(format!("its author {} is not the ledger key {ledger} of the verifier key you trust", s("author"))),
        None => problems.push("the verifier key you gave names no ed25519 key".into()),
    }
    let data = e.event.get("data").and_then(Value::as_object);
    let int = |k: &str| data.and_then(|d| d.get(k)).and_then(Value::as_u64);
    let root = data.and_then(|d| d.get("map_root")).and_then(Value::as_str).and_then(Hash::from_b64);
    let shape = data.is_some_and(|d| d.len() == 4) && int("v") == Some(1);
    match (shape, int("up_to"), root, int("learners")) {
        (true, Some(up_to), Some(root), Some(learners)) if problems.is_empty() => {
            Ok(CommitmentData { up_to, map_root: root.0, learners })
        }
        (true, Some(_), Some(_), Some(_)) => Err(problems),
        _ => {
            problems
                .push("its data is not {\"v\": 1, \"up_to\", \"map_root\": <base64 of 32 bytes>, \"learners\"}".into());
            Err(problems)
        }
    }
}

/// Step 8, the completeness member (FORMAT.md section 6): the commitment entry is in the
/// checkpoint, signed by the ledger key the caller trusts and says what the member says; the
/// learner's value recomputed from the bundle's items below its position equals the member's
/// value, which the map proof shows is the learner's in the committed map; and the commitment
/// leaves at most `max_uncovered` positions uncovered.
fn check_completeness(
    r: &mut Report,
    b: &Bundle,
    head: Option<&TreeHead>,
    checked: &[Checked],
    vkey: &str,
    options: &Options,
    cache: &KeyCache,
) -> Completeness {
    let max_uncovered = options.max_uncovered.unwrap_or(MAX_UNCOVERED_DEFAULT);
    let mut out = Completeness { status: "failed", max_uncovered, ..Default::default() };
    let Some(c) = &b.completeness else {
        out.status = "not_present";
        if options.require_complete {
            r.fail(
                "completeness_missing",
                None,
                "the bundle carries no completeness commitment, and this verification requires one",
            );
        }
        return out;
    };
    let before = r.failures.len();
    if head.is_none() {
        // Nothing of the bundle is proved in the log: its checks still run (their failures say
        // more), but completeness is not claimed.
        out.reason = Some("checkpoint_invalid".into());
    }
    let CompletenessMember { commitment: item, up_to, value, map_proof } = c;
    let (seq, up_to) = (item.seq, *up_to);
    (out.up_to, out.commitment_seq) = (Some(up_to), Some(seq));

    // The commitment entry, as any item: proof, canonical bytes, ledger, signature.
    let mut entry = check_item(b, false, item, head);
    if let Some(Err(m)) = entry.signature.take().map(|job| check_signature(&job, cache)) {
        entry.failures.push(("signature_invalid", format!("entry {seq}: {m}")));
    }
    r.signatures_checked += usize::from(entry.signature_checked);
    r.proofs_checked += usize::from(entry.proof_checked);
    for (code, message) in &entry.failures {
        r.fail(code, Some(seq), format!("the completeness commitment: {message}"));
    }
    if entry.withheld {
        r.fail("bundle_malformed", Some(seq), "the completeness commitment is withheld; it must be disclosed");
    }
    let data = match entry.entry.as_ref().map(|e| commitment_data(e, vkey)) {
        Some(Ok(d)) => Some(d),
        Some(Err(problems)) => {
            for p in problems {
                r.fail(
                    "completeness_commitment_invalid",
                    Some(seq),
                    format!("entry {seq} is no completeness commitment of this ledger: {p}"),
                );
            }
            None
        }
        None => None,
    };
    if let Some(d) = &data {
        if d.up_to != up_to {
            r.fail(
                "completeness_commitment_invalid",
                Some(seq),
                format!("the commitment at seq {seq} covers positions below {}, the bundle says {up_to}", d.up_to),
            );
        } else if up_to > seq {
            r.fail(
                "completeness_commitment_invalid",
                Some(seq),
                format!("the commitment at seq {seq} claims to cover positions up to {up_to}, after itself"),
            );
        }
    }

    // The learner's value from the bundle's items below P, in seq order (withheld by leaf hash).
    let claimed = match value.decode() {
        Ok(v) => Some(v),
        Err(_) => {
            r.fail("bundle_malformed", None, "completeness.value.digest is not base64 of 32 bytes");
            None
        }
    };
    let mut items: Vec<&Checked> = checked.iter().filter(|c| !c.in_authority).collect();
    items.sort_by_key(|c| c.seq);
    let below: Vec<&Checked> = items.iter().copied().filter(|c| c.seq < up_to).collect();
    out.after = Some(items.len() - below.len());
    out.covered_withheld = Some(below.iter().filter(|c| c.withheld).count());
    let recomputed = below
        .iter()
        .map(|c| c.leaf.map(|l| l.0))
        .collect::<Option<Vec<[u8; 32]>>>()
        .map(|leaves| LearnerValue::of_leaves(leaves.iter()));
    if let (Some(claimed), Some(got)) = (claimed, recomputed) {
        out.covered = Some(claimed.count);
        if got != claimed {
            let why = match got.count.cmp(&claimed.count) {
                std::cmp::Ordering::Less => format!(
                    "the commitment counts {} entries of learner {} below position {up_to}, the bundle holds {}: {} left out",
                    claimed.count,
                    b.learner,
                    got.count,
                    claimed.count - got.count
                ),
                std::cmp::Ordering::Greater => format!(
                    "the bundle holds {} entries below position {up_to}, the commitment counts {} of learner {}: the bundle holds entries the commitment does not",
                    got.count, claimed.count, b.learner
                ),
                std::cmp::Ordering::Equal => format!(
                    "the bundle's {} entries below position {up_to} chain to another digest than the commitment's: an entry was replaced, or one left out and another added",
                    got.count
                ),
            };
            r.fail("completeness_value_mismatch", None, why);
        }
    } else if claimed.is_some() {
        out.reason = Some("an item below the commitment's position could not be read".into());
    }

    // The value is the learner's in the committed map.
    match serde_json::from_value::<MapProof>(map_proof.clone()) {
        Err(e) => r.fail("map_proof_malformed", None, format!("the completeness map proof is not a map proof: {e}")),
        Ok(proof) => {
            if let (Some(d), Some(claimed)) = (&data, claimed) {
                if proof.map_size != d.learners {
                    r.fail(
                        "map_proof_invalid",
                        None,
                        format!(
                            "the map proof is for a map of {} learners, the commitment's holds {}",
                            proof.map_size, d.learners
                        ),
                    );
                } else if let Err(e) = commitment::verify_map_proof(&d.map_root, &b.learner, &claimed, &proof) {
                    r.fail(
                        e.code(),
                        None,
                        format!(
                            "the value {{count {}}} of learner {} is not proved in the commitment's map: {e}",
                            claimed.count, b.learner
                        ),
                    );
                }
            }
        }
    }

    // Freshness: how far the commitment is behind the newest checkpoint the verifier knows.
    if let Some(h) = head {
        let uncovered = h.tree_size.saturating_sub(up_to);
        out.uncovered_positions = Some(uncovered);
        if uncovered > max_uncovered {
            r.fail(
                "completeness_stale",
                None,
                format!(
                    "the commitment covers positions below {up_to}, the bundle's checkpoint is at {}: {uncovered} positions are not covered, more than the bound {max_uncovered}; an entry among them (a revocation, a correction) could be left out: ask for a bundle exported against the latest commitment",
                    h.tree_size
                ),
            );
        }
        if let Some(newer) = r.consistency.as_ref().map(|c| c.second).filter(|s| *s > h.tree_size) {
            let behind = newer.saturating_sub(up_to);
            out.behind = Some(behind);
            if behind > max_uncovered {
                r.fail(
                    "completeness_stale",
                    None,
                    format!(
                        "the commitment covers positions below {up_to}, the newer checkpoint you gave is at {newer}: {behind} positions since are not covered, more than the bound {max_uncovered}; ask for a bundle exported now"
                    ),
                );
            }
        }
    }
    if r.failures.len() == before && out.reason.is_none() {
        // Complete only when no position but the commitment's own is left uncovered, up to the
        // bundle's checkpoint and to a newer one given: else entries of the learner after P (in
        // the bundle, or cut off from its end, which no check can see) are covered by nothing.
        let newest = head.map(|h| h.tree_size).into_iter().chain(r.consistency.as_ref().map(|c| c.second)).max();
        let nothing_after = out.after == Some(0) && newest.is_some_and(|n| n.saturating_sub(up_to) <= 1);
        out.status = if nothing_after { "complete" } else { "complete_up_to" };
    } else if out.reason.is_none() {
        out.reason = r.failures[before..].first().map(|f| f.code.clone());
    }
    out
}

/// The record's summary from the disclosed entries of `entries`.
fn summarize(by_seq: &BTreeMap<u64, &Checked>) -> RecordSummary {
    let mut s = RecordSummary::default();
    let mut institutions: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut revoked: HashSet<String> = HashSet::new();
    // The event ids a correction may name, and the result each stands for: the result's own,
    // and its corrections' (a correction may correct a correction).
    let mut correctable: HashMap<String, usize> = HashMap::new();
    let mut corrections: Vec<Vec<Value>> = Vec::new();
    for c in by_seq.values().filter(|c| !c.in_authority) {
        let Some(e) = &c.entry else { continue };
        let (Some(ty), Some(Value::Object(data))) = (e.event.get("type").and_then(Value::as_str), e.event.get("data"))
        else {
            continue;
        };
        let year = data.get("academic_year").and_then(Value::as_i64).or_else(|| {
            e.event.get("occurred_at").and_then(Value::as_str).and_then(|t| t.get(..4)).and_then(|y| y.parse().ok())
        });
        for f in ["institution", "kindergarten"] {
            if let Some(i) = data.get(f).and_then(Value::as_str) {
                institutions.entry(i.to_owned()).or_default().extend(year);
            }
        }
        let item = || {
            let mut o = serde_json::Map::new();
            o.insert("seq".into(), c.seq.into());
            o.insert("type".into(), ty.into());
            o.extend(data.iter().filter(|(k, _)| *k != "v").map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(o)
        };
        let id = e.event.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
        if preset("final-results").contains(&ty) {
            // Only what a correction may name gets a correction status (not a promotion, nor a
            // final attestation result).
            if zachetka_rules::CORRECTABLE.contains(&ty) {
                correctable.insert(id, s.results.len());
            }
            s.results.push(item());
            corrections.push(Vec::new());
        } else if ty == "journal.record_corrected" {
            let named =
                data.get("corrected_event_id").and_then(Value::as_str).and_then(|n| correctable.get(n)).copied();
            if let Some(at) = named {
                let mut o = serde_json::Map::new();
                o.insert("seq".into(), c.seq.into());
                for k in ["mark", "scale", "code", "reason"] {
                    if let Some(v) = data.get(k).filter(|v| !v.is_null()) {
                        o.insert(k.into(), v.clone());
                    }
                }
                corrections[at].push(Value::Object(o));
                correctable.insert(id, at);
            }
        } else if preset("documents").contains(&ty) {
            s.documents.push(item());
        } else if ty == "portfolio.achievement_attested" {
            s.achievements.push(item());
        } else if ty == "portfolio.achievement_revoked" {
            revoked.extend(data.get("achievement_id").and_then(Value::as_str).map(str::to_owned));
        }
    }
    // A revocation is a later entry of the learner's stream: one withheld after the attestation
    // may be it (a withheld item says nothing of its type), so "not revoked" is then no fact.
    let withheld: Vec<u64> = by_seq.values().filter(|c| !c.in_authority && c.withheld).map(|c| c.seq).collect();
    // A result is corrected when a disclosed correction names it; a withheld entry after its
    // latest value may be a further correction (a withheld item says nothing of its type).
    for (r, list) in s.results.iter_mut().zip(corrections) {
        if !r.get("type").and_then(Value::as_str).is_some_and(|t| zachetka_rules::CORRECTABLE.contains(&t)) {
            continue;
        }
        let seq = r.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let latest = list.last().and_then(|c| c.get("seq")).and_then(Value::as_u64).unwrap_or(seq);
        let later = withheld.iter().filter(|w| **w > latest).count();
        r["corrected"] = match (list.is_empty(), later) {
            (false, _) => Value::Bool(true),
            (true, 0) => Value::Bool(false),
            (true, _) => Value::Null,
        };
        if later > 0 {
            r["corrected_unknown"] = Value::String(correction_unknown(later, (latest != seq).then_some(latest)));
        }
        if !list.is_empty() {
            r["corrections"] = Value::Array(list);
        }
    }
    for a in &mut s.achievements {
        let id = a.get("achievement_id").and_then(Value::as_str).unwrap_or("").to_owned();
        let seq = a.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let later = withheld.iter().filter(|w| **w > seq).count();
        if revoked.contains(&id) {
            a["revoked"] = Value::Bool(true);
        } else if later > 0 {
            a["revoked"] = Value::Null;
            a["revoked_unknown"] = Value::String(revocation_unknown(later));
        } else {
            a["revoked"] = Value::Bool(false);
        }
    }
    s.institutions = institutions
        .into_iter()
        .map(|(institution, years)| InstitutionYears { institution, years: years.into_iter().collect() })
        .collect();
    s
}

/// Why a result's current value is unknown: `later` withheld entries follow it, or follow its
/// latest disclosed correction (at `corrected_at`).
fn correction_unknown(later: usize, corrected_at: Option<u64>) -> String {
    let after = match corrected_at {
        Some(at) => format!("its latest correction (seq {at})"),
        None => "it".to_owned(),
    };
    match later {
        1 => format!("1 withheld entry of the learner comes after {after}; it may correct it"),
        n => format!("{n} withheld entries of the learner come after {after}; one of them may correct it"),
    }
}

/// Why an attestation's revocation status is unknown: `later` withheld entries follow it.
fn revocation_unknown(later: usize) -> String {
    match later {
        1 => "1 withheld entry of the learner comes after it; it may revoke it".to_owned(),
        n => format!("{n} withheld entries of the learner come after it; one of them may revoke it"),
    }
}
