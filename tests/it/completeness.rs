//! Completeness commitments (DESIGN 3.7) written by a ledger: they appear where the policy puts
//! them, signed by the ledger key, the audit recomputes them clean, a learner's value computed
//! by hand from their entries (queue and 1st-grade ones included) matches the map proof, a
//! hidden entry does not, the rules take a commitment only from the ledger key, and a forged
//! root written around the rules is reported by the audit.

use super::support::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::ledger::{Ledger, Limits, OpenOptions, RulesMode};
use zachetka::read::{CommitmentDraft, CompletenessPolicy};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;
use zachetka_projections::completeness::{verify_map_proof, LearnerValue, EVENT_TYPE};
use zachetka_projections::model::ParsedFact;
use zachetka_projections::models::concerns::Concerns;

const SMALL: DemoSize = DemoSize { learners: 300, teachers: 60, events: 3000 };
const EVERY: u64 = 500;

fn store_in(dir: &Path, authority: &str) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    if store.config().unwrap().is_none() {
        zachetka::ledger::init_store(
            &*store,
            ORIGIN,
            &ledger_key(),
            authority,
            Some(zachetka::rules::default_region()),
        )
        .unwrap();
    }
    store
}

fn open(store: Arc<dyn Store>, mode: RulesMode, completeness: Option<CompletenessPolicy>) -> Ledger {
    let clock = test_clock();
    let options = OpenOptions { limits: Limits::default(), mode, completeness, ..Default::default() };
    Ledger::open_opts(store, ledger_key(), clock, options).unwrap()
}

/// Waits until the read side has handled the whole log, the commitments it owed included.
fn settle(ledger: &Ledger) -> u64 {
    loop {
        let size = ledger.head().0.tree_size;
        ledger.read_side().wait_settled_blocking(size);
        if ledger.head().0.tree_size == size {
            return size;
        }
    }
}

fn entries(store: &dyn Store) -> Vec<(Vec<u8>, Value)> {
    let size = store.head().unwrap().unwrap().0.tree_size;
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        for bytes in store.entries(out.len() as u64, 4096).unwrap() {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            out.push((bytes, v));
        }
    }
    out
}

fn is_commitment(e: &Value) -> bool {
    e["event"]["type"] == EVENT_TYPE
}

fn append_demo(ledger: &Ledger, region: &mut DemoRegion, limit: usize) {
    let mut n = 0;
    while n < limit {
        let batch = region.next_batch(700.min(limit - n));
        if batch.is_empty() {
            break;
        }
        n += batch.len();
        append_demo_batch(ledger, batch);
    }
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A commitment the ledger cannot append is retried later, and an operator sees it: the read
/// side's status (in `/v1/status` and `/metrics`) counts the refusal and says why, until one
/// lands. Before, only a log line did, and a server that never committed again looked healthy.
#[test]
fn a_commitment_the_ledger_cannot_append_shows_in_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let inner = SledStore::open(dir.path()).map(Arc::new).unwrap();
    zachetka::ledger::init_store(
        &*inner,
        ORIGIN,
        &ledger_key(),
        &region.authority_did(),
        Some(zachetka::rules::default_region()),
    )
    .unwrap();
    let store = Arc::new(FaultStore::new(inner));
    *store.fault.lock().unwrap() = Fault::FailCommitments;
    let ledger =
        open(store.clone(), RulesMode::Enforce, Some(CompletenessPolicy { every_entries: 50, every_seconds: 0 }));
    let before = ledger.read_side().status(0).completeness;
    assert!(before.enabled && before.refusals == 0 && before.refused.is_none(), "{before:?}");
    append_demo(&ledger, &mut region, 60);
    let head = settle(&ledger);
    let status = ledger.read_side().status(head).completeness;
    assert!(status.refusals >= 1, "{status:?}");
    let why = status.refused.expect("the latest refusal is shown");
    assert!(why.contains("commitment up to") && why.contains("database is away"), "{why}");
    assert!(entries(&*store).iter().all(|(_, e)| !is_commitment(e)), "nothing was committed");
}

#[test]
fn commitments_appear_where_the_policy_puts_them_and_prove_each_learners_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let store = store_in(dir.path(), &region.authority_did());
    let ledger =
        open(store.clone(), RulesMode::Enforce, Some(CompletenessPolicy { every_entries: EVERY, every_seconds: 0 }));
    append_demo(&ledger, &mut region, usize::MAX);
    let head = settle(&ledger);
    let log = entries(&*store);
    assert_eq!(log.len() as u64, head);

    // Where they are: each after at least EVERY other entries since the previous one's
    // position, by the ledger key, on their own stream; fewer than EVERY left uncommitted.
    let commitments: Vec<(u64, u64)> = log
        .iter()
        .filter(|(_, e)| is_commitment(e))
        .map(|(_, e)| (e["seq"].as_u64().unwrap(), e["event"]["data"]["up_to"].as_u64().unwrap()))
        .collect();
    let others_in = |from: u64, to: u64| (from..to).filter(|s| !is_commitment(&log[*s as usize].1)).count() as u64;
    let others = others_in(0, head);
    assert!(
        commitments.len() as u64 >= others / (EVERY + 700),
        "{} commitments over {others} entries",
        commitments.len()
    );
    let mut previous = 0;
    for (seq, up_to) in &commitments {
        assert!(up_to <= seq, "a commitment commits to a prefix ending at or before itself");
        assert!(others_in(previous, *up_to) >= EVERY, "commitment at {seq}: {previous}..{up_to}");
        let e = &log[*seq as usize].1["event"];
        assert_eq!(e["author"], ledger_key().did());
        assert_eq!(e["stream"], "completeness");
        previous = *up_to;
    }
    assert!(others_in(previous, head) < EVERY, "nothing owed once settled");

    // The audit recomputes every one of them from the log: clean.
    let report = zachetka::audit::audit(&*store, &|_, _| {}).unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // A learner named by queue and 1st-grade entries as well as by their own stream: their
    // value, computed here by hand from their entries' bytes, matches the map proof.
    let (last_seq, last_up_to) = *commitments.last().unwrap();
    let mut concerns = Concerns::default();
    let mut mine: BTreeMap<String, Vec<([u8; 32], String, u64)>> = BTreeMap::new();
    for (bytes, _) in &log[..last_up_to as usize] {
        let p = ParsedFact::from_entry(bytes).unwrap();
        let Some(f) = p.fact() else { continue };
        concerns.apply(&f);
        for l in concerns.learners_concerned(&f) {
            let leaf = sha(&[&[0], bytes]);
            mine.entry(l.to_owned()).or_default().push((leaf, f.stream.to_owned(), f.seq));
        }
    }
    let kinds = |l: &str| {
        let mut k: Vec<&str> = mine[l].iter().map(|(_, s, _)| s.split('/').next().unwrap()).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    // One learner of each kind of naming (queue, 1st-grade, own stream), the one named in the
    // most kinds first.
    let mut chosen: Vec<String> = Vec::new();
    let most = mine.keys().max_by_key(|l| (kinds(l).len(), mine[*l].len())).unwrap();
    chosen.push(most.clone());
    for kind in ["queue", "institution", "learner"] {
        let l = mine.keys().find(|l| kinds(l).contains(&kind)).unwrap_or_else(|| panic!("no learner named in {kind}/"));
        chosen.push(l.clone());
    }
    eprintln!("learners checked: {:?}", chosen.iter().map(|l| (l, kinds(l), mine[l].len())).collect::<Vec<_>>());
    for learner in &chosen {
        let leaves: Vec<[u8; 32]> = mine[learner].iter().map(|(h, _, _)| *h).collect();
        let mut by_hand = (0u64, [0u8; 32]);
        for leaf in &leaves {
            by_hand = (by_hand.0 + 1, sha(&[b"zachetka/completeness/v1\n", &by_hand.1, leaf]));
        }
        let c = ledger.read_side().completeness_for(learner, head).unwrap().expect("a commitment below the head");
        assert_eq!((c.commitment_seq, c.up_to), (last_seq, last_up_to));
        assert_eq!((c.value.count, c.value.digest), by_hand, "learner {learner} ({:?})", kinds(learner));
        verify_map_proof(&c.map_root, learner, &c.value, &c.map_proof).unwrap();
        let committed: Value = log[last_seq as usize].1["event"]["data"].clone();
        assert_eq!(committed["map_root"], zachetka::keys::b64(&c.map_root));
        // Withheld and then hidden: one entry left out of the chain changes the digest.
        for hidden in [0, leaves.len() / 2, leaves.len() - 1] {
            let mut rest = leaves.clone();
            rest.remove(hidden);
            let v = LearnerValue::of_leaves(rest.iter());
            assert!(verify_map_proof(&c.map_root, learner, &v, &c.map_proof).is_err());
            let v = LearnerValue { count: c.value.count, ..v };
            assert!(verify_map_proof(&c.map_root, learner, &v, &c.map_proof).is_err());
        }
    }
    let learner = &chosen[0];
    // A learner the log never named is proved absent.
    let nobody = ledger.read_side().completeness_for("47-nobody", head).unwrap().unwrap();
    assert_eq!(nobody.value, LearnerValue::EMPTY);
    verify_map_proof(&nobody.map_root, "47-nobody", &LearnerValue::EMPTY, &nobody.map_proof).unwrap();
    // An older checkpoint gets the commitment before it (its map folded again from the log).
    assert!(commitments.len() >= 3, "{commitments:?}");
    let (seq, up_to) = commitments[0];
    let old = ledger.read_side().completeness_for(learner, seq + 1).unwrap().unwrap();
    assert_eq!((old.commitment_seq, old.up_to), (seq, up_to));
    let before: Vec<[u8; 32]> = mine[learner].iter().filter(|(_, _, s)| *s < up_to).map(|(h, _, _)| *h).collect();
    assert_eq!(old.value, LearnerValue::of_leaves(before.iter()));
    verify_map_proof(&old.map_root, learner, &old.value, &old.map_proof).unwrap();
    // Below the first commitment there is none.
    assert!(ledger.read_side().completeness_for(learner, commitments[0].0).unwrap().is_none());

    // The rules: a commitment from another key is refused; from the ledger key, one naming
    // its own future is refused.
    let draft = CommitmentDraft {
        up_to: head,
        map_root: [7; 32],
        learners: 1,
        occurred_at: zachetka::time::Clock::now_unix(&*test_clock()),
    };
    let by_teacher = zachetka::event::sign_event(&draft.event(ORIGIN, &teacher().did()), &teacher()).unwrap();
    let refused = ledger.append_blocking(vec![by_teacher]).pop().unwrap().unwrap_err();
    assert_eq!(refused.code.as_str(), "not_authorized", "{refused}");
    let future = CommitmentDraft { up_to: head + 10, ..draft };
    let ahead = zachetka::event::sign_event(&future.event(ORIGIN, &ledger_key().did()), &ledger_key()).unwrap();
    let refused = ledger.append_blocking(vec![ahead]).pop().unwrap().unwrap_err();
    assert_eq!(refused.code.as_str(), "completeness_up_to_invalid", "{refused}");
    // Its occurred_at is the time of the entry it ends at, however long ago (a quiet ledger, a
    // policy by time): no backdating limit, only the position window.
    let old = CommitmentDraft { occurred_at: draft.occurred_at - 60 * 86_400, ..draft };
    let late = zachetka::event::sign_event(&old.event(ORIGIN, &ledger_key().did()), &ledger_key()).unwrap();
    ledger.append_blocking(vec![late]).pop().unwrap().unwrap();
}

#[test]
fn a_commitment_whose_root_differs_from_the_log_is_reported_by_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let store = store_in(dir.path(), &region.authority_did());
    let (good_seq, bad_seq, foreign_seq);
    {
        // An operator writing around the rules (and with no policy: every commitment is ours).
        let ledger = open(store.clone(), RulesMode::Bypass, None);
        append_demo(&ledger, &mut region, 1200);
        let at = ledger.head().0.tree_size;
        let map = zachetka::read::completeness::fold_to(&*store, at).unwrap().map();
        let sign = |d: &CommitmentDraft| {
            zachetka::event::sign_event(&d.event(ORIGIN, &ledger_key().did()), &ledger_key()).unwrap()
        };
        let good = CommitmentDraft {
            up_to: at,
            map_root: map.root(),
            learners: map.len(),
            occurred_at: zachetka::time::Clock::now_unix(&*test_clock()),
        };
        good_seq = ledger.append_blocking(vec![sign(&good)]).pop().unwrap().unwrap().seq;
        append_demo(&ledger, &mut region, 300);
        // The same root a little later: the entries since are left out of it.
        let stale = CommitmentDraft { up_to: ledger.head().0.tree_size, ..good };
        bad_seq = ledger.append_blocking(vec![sign(&stale)]).pop().unwrap().unwrap().seq;
        // The right root, but signed by a teacher's key.
        let later = ledger.head().0.tree_size;
        let map = zachetka::read::completeness::fold_to(&*store, later).unwrap().map();
        let foreign = CommitmentDraft { up_to: later, map_root: map.root(), learners: map.len(), ..good };
        let ev = zachetka::event::sign_event(&foreign.event(ORIGIN, &teacher().did()), &teacher()).unwrap();
        foreign_seq = ledger.append_blocking(vec![ev]).pop().unwrap().unwrap().seq;
    }
    let report = zachetka::audit::audit(&*store, &|_, _| {}).unwrap();
    let at = |seq: u64| codes_at_entry(&report, seq);
    assert!(at(good_seq).is_empty(), "{:?}", report.violations);
    assert_eq!(at(bad_seq), ["completeness_commitment_differs"], "{:?}", report.violations);
    assert_eq!(at(foreign_seq), ["not_authorized"], "{:?}", report.violations);
    assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
    assert!(report.commitments_recomputed >= 2, "{}", report.commitments_recomputed);

    // A learner's entry before every commitment changes on disk. (The map is folded over the stored leaf
    // hashes, so what the altered entry concerns decides: see `src/audit/projections.rs`.)
    let grade = entries(&*store)
        .iter()
        .position(|(_, e)| e["event"]["stream"].as_str().is_some_and(|s| s.starts_with("learner/")))
        .expect("the demo's learners") as u64;
    drop(store);
    let sled = SledStore::open(dir.path()).unwrap();
    let (start, len) = sled.entry_span(grade).unwrap();
    let path = sled.paths().entries.clone();
    let bytes = std::fs::read(&path).unwrap()[start as usize..(start + len) as usize].to_vec();
    let find = |pattern: &[u8]| start as usize + bytes.windows(pattern.len()).position(|w| w == pattern).unwrap();
    let flip = |at: usize| {
        let mut all = std::fs::read(&path).unwrap();
        all[at] ^= 0x01;
        std::fs::write(&path, all).unwrap();
    };
    let audit = |sled: &SledStore| zachetka::audit::audit(sled, &|_, _| {}).unwrap();
    let codes_at = codes_at_entry;
    // Its recorded_at (outside the signed event): what it concerns is as signed, so the good
    // commitment still holds and the stale one is still a violation of its own.
    let recorded_at = find(b"\",\"seq\":") - 2;
    flip(recorded_at);
    let report = audit(&sled);
    flip(recorded_at);
    assert_eq!(codes_at(&report, grade), ["leaf_hash_mismatch"], "{:#?}", report.violations);
    assert!(codes_at(&report, good_seq).is_empty(), "{:#?}", report.violations);
    assert_eq!(codes_at(&report, bad_seq), ["completeness_commitment_differs"], "{:#?}", report.violations);
    assert!(report.consequences.iter().all(|c| c.code != "completeness_commitment_differs"), "{report:#?}");
    // Its occurred_at (the signed event altered): what it concerns is unknown, so a commitment
    // over it that differs is counted as its consequence.
    let mark = find(b"\"occurred_at\":\"") + 14 + 18;
    flip(mark);
    let report = audit(&sled);
    flip(mark);
    assert_eq!(codes_at(&report, grade), ["leaf_hash_mismatch"], "{:#?}", report.violations);
    assert!(codes_at(&report, good_seq).is_empty() && codes_at(&report, bad_seq).is_empty(), "{report:#?}");
    let differs: Vec<_> = report
        .consequences
        .iter()
        .filter(|c| c.code == "completeness_commitment_differs")
        .map(|c| (c.caused_by, c.count, c.first.clone()))
        .collect();
    assert_eq!(differs, vec![(grade, 1, zachetka::audit::Position::Entry { seq: bad_seq })], "{report:#?}");
    assert!(codes_at(&audit(&sled), grade).is_empty(), "the entry is restored");
}

/// The codes of the audit's violations positioned at entry `seq`.
fn codes_at_entry(report: &zachetka::audit::AuditReport, seq: u64) -> Vec<&'static str> {
    let at_seq =
        |v: &&zachetka::audit::Violation| matches!(v.position, zachetka::audit::Position::Entry { seq: s } if s == seq);
    report.violations.iter().filter(at_seq).map(|v| v.code).collect()
}
