//! The verifier against bundles exported from a ledger in memory: a real bundle verifies, and
//! every way a bundle can be wrong is refused with its code and the entry it names.

mod common;

use common::{region, L1, L2, ORIGIN};
use serde_json::{json, Value};
use zachetka_formats::keys;
use zachetka_record::{verify, Bundle, Disclosure, Options, OtherCheckpoint, Report};

fn check(b: &Bundle, vkey: &str) -> Report {
    verify(&b.to_json(), vkey, &Options::default())
}

fn codes(r: &Report) -> Vec<(String, Option<u64>)> {
    r.failures.iter().map(|f| (f.code.clone(), f.seq)).collect()
}

#[track_caller]
fn refused(r: &Report, code: &str, seq: Option<u64>) {
    assert!(!r.ok, "accepted, expected {code}");
    assert!(
        r.failures.iter().any(|f| f.code == code && (seq.is_none() || f.seq == seq)),
        "expected {code} at {seq:?}, got {:?}",
        r.failures
    );
    for f in &r.failures {
        assert!(!f.message.is_empty() && !f.message.ends_with('.'), "message style: {}", f.message);
    }
}

#[test]
fn a_full_bundle_verifies_with_every_check_counted() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!((r.entries, r.disclosed, r.withheld), (16, 16, 0));
    // The chain: genesis, the two institutions named (sch-001 by the grades and the teacher's
    // scope, ado-001 by the issuer's), and the grants of admin, teacher, registrar, issuer; not
    // teacher2's (only L2's grades) nor sch-002's registration. Then the nine lessons L1's
    // grades were given at (11 to 19), from the school's stream.
    let authority_seqs: Vec<u64> = b.authority.iter().map(|i| i.seq).collect();
    assert_eq!(authority_seqs, [0, 1, 2, 4, 5, 7, 8].into_iter().chain(11..=19).collect::<Vec<u64>>());
    assert_eq!(r.signatures_checked, 16 + 7 + 9);
    assert_eq!(r.proofs_checked, 16 + 7 + 9);
    assert_eq!(r.authority_checked_by_rules, 16, "{:?}", r.authority_checked_by_grant_only);
    assert!(r.authority_checked_by_grant_only.is_empty());
    assert_eq!(r.tree_size, Some(t.size()));
    assert_eq!(r.completeness.as_ref().unwrap().status, "not_present");
    assert_eq!(r.record.results.len(), 4);
    assert_eq!(r.record.documents.len(), 1);
    assert_eq!(r.record.achievements.len(), 1);
    assert_eq!(r.record.institutions[0].institution, "sch-001");
    assert_eq!(r.record.institutions[0].years, vec![2026, 2027]);
    let text = r.to_text();
    assert!(text.starts_with("VERIFIED: record of learner 47-000001"), "{text}");
    assert!(text.contains("completeness: not present"), "{text}");
    let json: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["completeness"]["status"], "not_present");
    // A bundle parses back to itself.
    assert_eq!(Bundle::parse(&b.to_json()).unwrap(), b);
}

#[test]
fn withheld_entries_are_counted_and_nothing_else_is_said() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::parse("final-results,documents").unwrap());
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!((r.disclosed, r.withheld), (5, 11));
    assert!(r.record.achievements.is_empty());
    assert_eq!(r.record.results.len(), 4);
    for item in &b.entries {
        assert!(item.entry.is_some() != item.leaf_hash.is_some());
    }
    // The authority chain names only the disclosed entries' authors: teacher, registrar.
    let authority_seqs: Vec<u64> = b.authority.iter().map(|i| i.seq).collect();
    assert_eq!(authority_seqs, vec![0, 1, 4, 5, 7]);
    assert_eq!(b.disclosure.only.as_deref(), Some(&["final-results".to_owned(), "documents".to_owned()][..]));
    // Nothing of a withheld entry travels but its position, hash and proof; no disclosed entry
    // is one of the grades.
    let v: Value = serde_json::from_slice(&b.to_json()).unwrap();
    for item in v["entries"].as_array().unwrap() {
        let o = item.as_object().unwrap();
        if let Some(e) = o.get("entry") {
            let bytes = keys::b64_decode(e.as_str().unwrap()).unwrap();
            let entry: Value = serde_json::from_slice(&bytes).unwrap();
            assert_ne!(entry["event"]["type"], "journal.grade_recorded");
        } else {
            let mut names: Vec<&str> = o.keys().map(String::as_str).collect();
            names.sort_unstable();
            assert_eq!(names, ["leaf_hash", "proof", "seq"]);
        }
    }
}

/// Re-encodes the entry of item `i` after `f` changes its bytes.
fn tamper(b: &mut Bundle, i: usize, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = keys::b64_decode(b.entries[i].entry.as_ref().unwrap()).unwrap();
    f(&mut bytes);
    b.entries[i].entry = Some(keys::b64(&bytes));
}

#[test]
fn a_changed_byte_anywhere_in_an_entry_is_refused_naming_it() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let seq = b.entries[3].seq;
    let len = keys::b64_decode(b.entries[3].entry.as_ref().unwrap()).unwrap().len();
    for pos in (0..len).step_by(7).chain([len - 1]) {
        let mut bad = b.clone();
        tamper(&mut bad, 3, |bytes| bytes[pos] ^= 0x01);
        let r = check(&bad, &t.vkey);
        refused(&r, "proof_invalid", Some(seq));
        assert!(
            r.failures.iter().all(|f| f.seq == Some(seq) || f.seq.is_none() || f.code == "stream_gap"),
            "{:?}",
            codes(&r)
        );
    }
    // A changed leaf hash of a withheld entry too.
    let mut w = t.export(L1, &Disclosure::parse("documents").unwrap());
    let h = w.entries[0].leaf_hash.clone().unwrap();
    let mut raw = keys::b64_decode(&h).unwrap();
    raw[0] ^= 1;
    w.entries[0].leaf_hash = Some(keys::b64(&raw));
    refused(&check(&w, &t.vkey), "proof_invalid", Some(w.entries[0].seq));
}

#[test]
fn reordered_missing_and_dropped_entries_are_refused() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let mut reordered = b.clone();
    reordered.entries.swap(2, 3);
    refused(&check(&reordered, &t.vkey), "entries_out_of_order", Some(reordered.entries[3].seq));

    // A disclosed entry left out: its successor's stream_prev names nothing in the bundle.
    let mut missing = b.clone();
    let gone = missing.entries.remove(4);
    let r = check(&missing, &t.vkey);
    refused(&r, "stream_gap", Some(missing.entries[4].seq));
    assert!(r.failures.iter().all(|f| f.seq != Some(gone.seq)));

    // A withheld entry dropped without its hash.
    let mut w = t.export(L1, &Disclosure::parse("final-results").unwrap());
    let i = w.entries.iter().position(|x| x.entry.is_some()).unwrap();
    let dropped = w.entries.remove(i - 1);
    assert!(dropped.leaf_hash.is_some());
    refused(&check(&w, &t.vkey), "stream_gap", Some(w.entries[i - 1].seq));

    // Two withheld in a row dropped before a disclosed entry whose previous is withheld too:
    // the version count gives it away.
    let mut w = t.export(L1, &Disclosure::parse("final-results").unwrap());
    w.entries.remove(3);
    // Judged at the last withheld item before the next disclosed one (the interval that lacks
    // versions).
    let k = 3 + w.entries.iter().skip(3).position(|x| x.entry.is_some()).unwrap();
    refused(&check(&w, &t.vkey), "stream_gap", Some(w.entries[k - 1].seq));

    // The first entry of the stream dropped (nothing points at version 0 from a disclosed one).
    let mut first = b.clone();
    first.entries.remove(0);
    refused(&check(&first, &t.vkey), "stream_gap", Some(first.entries[0].seq));
}

#[test]
fn an_entry_that_does_not_concern_the_learner_is_refused() {
    let t = region(1);
    let mut b = t.export(L1, &Disclosure::All);
    let other = t.export(L2, &Disclosure::All);
    let foreign = other.entries[5].clone();
    let at = b.entries.iter().position(|i| i.seq > foreign.seq).unwrap();
    b.entries.insert(at, foreign.clone());
    refused(&check(&b, &t.vkey), "entry_not_concerning_learner", Some(foreign.seq));
}

#[test]
fn a_proof_for_another_tree_is_refused() {
    let mut t = region(1);
    let b = t.export(L1, &Disclosure::All);
    t.append(
        "teacher",
        &format!("learner/{L1}"),
        "journal.grade_recorded",
        "2027-09-02T09:00:00Z",
        common::grade(5, "2027-09-02"),
    );
    // The same items against the newer checkpoint: the proofs are for the older tree.
    let mut bad = b.clone();
    bad.checkpoint = String::from_utf8(t.checkpoint_at(t.size())).unwrap();
    let r = check(&bad, &t.vkey);
    refused(&r, "proof_invalid", Some(b.entries[0].seq));
    // One item's proof taken from a bundle of another size.
    let newer = t.export(L1, &Disclosure::All);
    let mut mixed = b.clone();
    mixed.entries[2].proof = newer.entries[2].proof.clone();
    let r = check(&mixed, &t.vkey);
    refused(&r, "proof_invalid", Some(b.entries[2].seq));
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let t = region(1);
    let impostor = region(2);
    let b = t.export(L1, &Disclosure::All);
    let mut bad = b.clone();
    bad.checkpoint = String::from_utf8(impostor.checkpoint_at(t.size())).unwrap();
    refused(&check(&bad, &t.vkey), "checkpoint_invalid", None);
    // The whole bundle by the impostor, checked with the key the receiver trusts.
    let forged = impostor.export(L1, &Disclosure::All);
    let r = check(&forged, &t.vkey);
    refused(&r, "verifier_key_mismatch", None);
    refused(&r, "checkpoint_invalid", None);
    // ... and the same bundle with its own key names the right one: fine.
    assert!(check(&forged, &impostor.vkey).ok);
}

#[test]
fn a_grade_by_a_revoked_key_is_refused_with_key_revoked() {
    let mut t = region(1);
    let teacher = t.did("teacher");
    t.append(
        "admin",
        "registry",
        "keys.revoked",
        "2027-06-01T00:00:00Z",
        json!({"key": teacher, "reason": "left the school"}),
    );
    let late = t.append(
        "teacher",
        &format!("learner/{L1}"),
        "journal.grade_recorded",
        "2027-06-05T09:00:00Z",
        common::grade(5, "2027-06-05"),
    );
    let b = t.export(L1, &Disclosure::All);
    let r = check(&b, &t.vkey);
    refused(&r, "key_revoked", Some(late));
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    // The revocation travels in the chain even though the grant it ends was found by the key.
    assert!(b.authority.iter().any(|i| i.seq == late - 1));
    // Without the revocation in the chain, the entry would pass: the exporter must include it,
    // and a bundle that leaves it out is caught only by completeness (DESIGN 3.7), as FORMAT.md says.
    let mut cut = b.clone();
    cut.authority.retain(|i| i.seq != late - 1);
    assert!(check(&cut, &t.vkey).ok);
}

#[test]
fn a_grade_by_a_key_out_of_scope_or_unknown_is_refused() {
    let mut t = region(1);
    // teacher2 holds sch-001 with no class restriction; a grade in sch-002 is out of scope.
    let mut g = common::grade(4, "2026-09-10");
    g["institution"] = json!("sch-002");
    let s = t.append("teacher2", &format!("learner/{L1}"), "journal.grade_recorded", "2026-09-10T09:00:00Z", g);
    let r = check(&t.export(L1, &Disclosure::All), &t.vkey);
    refused(&r, "not_authorized", Some(s));
}

#[test]
fn a_forked_history_is_refused_against_a_second_checkpoint() {
    let mut honest = region(1);
    let n = honest.size();
    let b = honest.export(L1, &Disclosure::All);
    honest.append(
        "teacher",
        &format!("learner/{L1}"),
        "journal.grade_recorded",
        "2027-09-02T09:00:00Z",
        common::grade(5, "2027-09-02"),
    );
    let rewritten = region_with_change();
    let newer = honest.size();
    let ok = Options {
        other: Some(OtherCheckpoint { note: honest.checkpoint_at(newer), proof: honest.consistency(n, newer) }),
        ..Options::default()
    };
    let r = verify(&b.to_json(), &honest.vkey, &ok);
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!(r.consistency.as_ref().map(|c| (c.first, c.second)), Some((n, newer)));
    // The fork's newer checkpoint, signed by the same ledger key, with the fork's own proof.
    let forked = Options {
        other: Some(OtherCheckpoint {
            note: rewritten.checkpoint_at(rewritten.size()),
            proof: rewritten.consistency(n, rewritten.size()),
        }),
        ..Options::default()
    };
    refused(&verify(&b.to_json(), &honest.vkey, &forked), "consistency_invalid", None);
    // An older checkpoint works as the second one as well (sizes decide the direction).
    let older = Options {
        other: Some(OtherCheckpoint { note: honest.checkpoint_at(5), proof: honest.consistency(5, n) }),
        ..Options::default()
    };
    let r = verify(&b.to_json(), &honest.vkey, &older);
    assert!(r.ok, "{:?}", r.failures);
    // A proof between other sizes is refused.
    let wrong = Options {
        other: Some(OtherCheckpoint { note: honest.checkpoint_at(newer), proof: honest.consistency(5, newer) }),
        ..Options::default()
    };
    refused(&verify(&b.to_json(), &honest.vkey, &wrong), "consistency_invalid", None);
}

/// The region rewritten by the same ledger key: one of L2's grades (seq 10) changed, the rest
/// replayed, then one more entry.
fn region_with_change() -> common::TestLedger {
    let t = region(1);
    let mut f = common::TestLedger::new(1);
    for seq in 0..t.size() {
        let parsed = zachetka_formats::event::parse_entry(&t.entries[seq as usize]).unwrap();
        let e = &parsed.event;
        let author = ["auth", "admin", "teacher", "teacher2", "registrar", "issuer"]
            .into_iter()
            .find(|k| f.did(k) == e["author"].as_str().unwrap())
            .unwrap();
        let mut data = e["data"].clone();
        if seq == 10 {
            data["mark"] = json!(2);
        }
        f.append(
            author,
            e["stream"].as_str().unwrap(),
            e["type"].as_str().unwrap(),
            e["occurred_at"].as_str().unwrap(),
            data,
        );
    }
    f.append(
        "teacher",
        &format!("learner/{L1}"),
        "journal.grade_recorded",
        "2027-09-02T09:00:00Z",
        common::grade(5, "2027-09-02"),
    );
    f
}

#[test]
fn limits_apply_while_parsing_and_malformed_bundles_are_refused() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let too_large = vec![b' '; zachetka_record::BUNDLE_BYTES_MAX + 1];
    refused(&verify(&too_large, &t.vkey, &Options::default()), "bundle_too_large", None);

    let mut v: Value = serde_json::from_slice(&b.to_json()).unwrap();
    let item = json!({"seq": 0, "leaf_hash": keys::b64(&[0; 32]), "proof": []});
    v["entries"] = Value::Array(vec![item; zachetka_record::ITEMS_MAX + 1]);
    let r = verify(&serde_json::to_vec(&v).unwrap(), &t.vkey, &Options::default());
    refused(&r, "bundle_too_many_entries", None);

    for (path, value) in [("/version", json!(2)), ("/format", json!("zachetka-bundle"))] {
        let mut v: Value = serde_json::from_slice(&b.to_json()).unwrap();
        *v.pointer_mut(path).unwrap() = value;
        refused(
            &verify(&serde_json::to_vec(&v).unwrap(), &t.vkey, &Options::default()),
            "bundle_format_unsupported",
            None,
        );
    }
    let mut v: Value = serde_json::from_slice(&b.to_json()).unwrap();
    v["entries"][0]["note"] = json!("x");
    refused(&verify(&serde_json::to_vec(&v).unwrap(), &t.vkey, &Options::default()), "bundle_malformed", None);
    let mut v: Value = serde_json::from_slice(&b.to_json()).unwrap();
    v["entries"][1]["leaf_hash"] = json!("AAAA");
    refused(
        &verify(&serde_json::to_vec(&v).unwrap(), &t.vkey, &Options::default()),
        "bundle_malformed",
        Some(b.entries[1].seq),
    );
    let dup = String::from_utf8(b.to_json()).unwrap().replacen("{\"format\"", "{\"learner\":\"x\",\"format\"", 1);
    refused(&verify(dup.as_bytes(), &t.vkey, &Options::default()), "bundle_malformed", None);
    refused(&verify(b"not json", &t.vkey, &Options::default()), "bundle_malformed", None);
}

/// Options with a bound on uncovered positions.
fn bound(max_uncovered: u64) -> Options {
    Options { max_uncovered: Some(max_uncovered), ..Default::default() }
}

#[test]
fn a_bundle_with_the_latest_commitment_is_complete_as_of_its_position() {
    let mut t = region(1);
    let p = t.size();
    let s = t.commit();
    // After the commitment: one more grade of L1, in the bundle but not covered.
    let late = t.append(
        "teacher",
        &format!("learner/{L1}"),
        "journal.grade_recorded",
        "2027-06-30T10:00:00Z",
        common::grade(4, "2027-05-20"),
    );
    let b = t.export(L1, &Disclosure::All);
    let member = b.completeness.as_ref().unwrap();
    assert_eq!((member.commitment.seq, member.up_to), (s, p));
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    // An entry after P: complete up to P only (finding 1 of review s11).
    assert_eq!(c.status, "complete_up_to");
    assert_eq!((c.up_to, c.commitment_seq, c.covered, c.covered_withheld), (Some(p), Some(s), Some(16), Some(0)));
    assert_eq!((c.after, c.uncovered_positions, c.behind), (Some(1), Some(t.size() - p), None));
    assert_eq!(c.max_uncovered, zachetka_record::MAX_UNCOVERED_DEFAULT);
    assert!(b.entries.iter().any(|i| i.seq == late));
    // The commitment's signature and proof are checked and counted with the others'.
    assert_eq!(r.signatures_checked, 17 + 7 + 9 + 1);
    let text = r.to_text();
    assert!(
        text.contains(&format!("completeness: complete up to position {p} (commitment at seq {s}): covers 16 entries of the learner (0 withheld); 1 entries of the bundle are after it")),
        "{text}"
    );
    let json: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["completeness"]["status"], "complete_up_to");
    assert_eq!(json["completeness"]["up_to"], p);
    assert_eq!(Bundle::parse(&b.to_json()).unwrap(), b);
    // A learner no entry concerns: proved absent, nothing covered; up to P only, since an entry
    // of theirs could follow it.
    let r = check(&t.export("47-nobody", &Disclosure::All), &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!((c.status, c.covered), ("complete_up_to", Some(0)));
}

#[test]
fn withheld_entries_count_towards_completeness() {
    let mut t = region(1);
    t.commit();
    let b = t.export(L1, &Disclosure::parse("documents").unwrap());
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!((c.status, c.covered, c.covered_withheld), ("complete", Some(16), Some(r.withheld)));
    assert!(r.withheld > 10);
}

#[test]
fn an_entry_left_out_entirely_is_caught_by_completeness_alone() {
    let mut t = region(1);
    t.commit();
    let b = t.export(L1, &Disclosure::All);
    // The learner's last entry below the commitment: nothing later names it, so without the
    // commitment the bundle would verify.
    let mut cut = b.clone();
    let last = cut.entries.pop().unwrap().seq;
    let r = check(&cut, &t.vkey);
    refused(&r, "completeness_value_mismatch", None);
    assert_eq!(codes(&r), vec![("completeness_value_mismatch".to_owned(), None)]);
    assert!(
        r.failures[0].message.contains("the commitment counts 16 entries of learner 47-000001"),
        "{}",
        r.failures[0].message
    );
    assert_eq!(r.completeness.as_ref().unwrap().status, "failed");
    cut.completeness = None;
    assert!(check(&cut, &t.vkey).ok, "entry {last}: only completeness tells");
    // Nor can it be replaced: another entry's leaf hash in its place keeps the count.
    let mut swapped = b.clone();
    let n = swapped.entries.len();
    swapped.entries[n - 1] = zachetka_record::Item::withheld(last, &zachetka_formats::merkle::Hash([3; 32]), &[]);
    let r = check(&swapped, &t.vkey);
    refused(&r, "completeness_value_mismatch", None);
    assert!(r.failures.iter().any(|f| f.message.contains("another digest")), "{:?}", r.failures);
}

#[test]
fn a_changed_value_or_a_forged_map_proof_is_refused() {
    let mut t = region(1);
    t.commit();
    let b = t.export(L1, &Disclosure::All);
    // The value of a bundle cut short, claimed: it matches the items but not the map.
    let mut cut = b.clone();
    cut.entries.pop();
    let leaves: Vec<[u8; 32]> = cut
        .entries
        .iter()
        .map(|i| zachetka_formats::event::leaf_hash(&keys::b64_decode(i.entry.as_ref().unwrap()).unwrap()).0)
        .collect();
    let forged = zachetka_projections::completeness::LearnerValue::of_leaves(leaves.iter());
    cut.completeness.as_mut().unwrap().value = forged.into();
    let r = check(&cut, &t.vkey);
    assert_eq!(codes(&r), vec![("map_proof_invalid".to_owned(), None)], "{:?}", r.failures);
    // A changed count: neither the items nor the map agree.
    let mut v = b.clone();
    v.completeness.as_mut().unwrap().value.count += 1;
    let r = check(&v, &t.vkey);
    assert_eq!(
        codes(&r),
        vec![("completeness_value_mismatch".to_owned(), None), ("map_proof_invalid".to_owned(), None)]
    );
    // A path hash changed.
    let mut m = b.clone();
    let proof = &mut m.completeness.as_mut().unwrap().map_proof;
    proof["present"]["hashes"][0] = json!(keys::b64(&[9; 32]));
    refused(&check(&m, &t.vkey), "map_proof_invalid", None);
    // A proof for a map of another size than the commitment's.
    let mut m = b.clone();
    m.completeness.as_mut().unwrap().map_proof["map_size"] = json!(1);
    let r = check(&m, &t.vkey);
    refused(&r, "map_proof_invalid", None);
    assert!(r.failures[0].message.contains("map of 1 learners"), "{:?}", r.failures);
    // Not a map proof: both or neither of present and absent, a bad hash.
    for bad in [json!({"map_size": 2}), json!({"map_size": 2, "present": {"leaf_index": 0, "hashes": ["x"]}})] {
        let mut m = b.clone();
        m.completeness.as_mut().unwrap().map_proof = bad;
        refused(&check(&m, &t.vkey), "map_proof_malformed", None);
    }
    // Claiming the learner absent: the value must be empty, and then it no longer matches.
    let mut a = b.clone();
    a.completeness.as_mut().unwrap().map_proof =
        serde_json::to_value(t.map_at(t.size() - 1).prove("47-nobody").1).unwrap();
    refused(&check(&a, &t.vkey), "map_proof_invalid", None);
}

#[test]
fn a_commitment_not_by_the_ledger_key_or_not_saying_what_the_member_says_is_refused() {
    let mut t = region(1);
    t.commit();
    // A commitment by another key, in the log: proof and signature hold, the author does not.
    let forged = t.commit_by("auth");
    let b = t.export_with(L1, &Disclosure::All, t.size(), Some((forged, forged)));
    let r = check(&b, &t.vkey);
    refused(&r, "completeness_commitment_invalid", Some(forged));
    assert!(r.failures[0].message.contains("is not the ledger key"), "{:?}", r.failures);
    // A commitment of another ledger (another key, same origin) cannot be proved here, and its
    // author is not this ledger's.
    let mut other = region(2);
    let other_s = other.commit();
    let mut b = t.export(L1, &Disclosure::All);
    let theirs = other.export(L1, &Disclosure::All).completeness.unwrap();
    assert_eq!(theirs.commitment.seq, other_s);
    b.completeness = Some(theirs);
    let r = check(&b, &t.vkey);
    refused(&r, "proof_invalid", Some(other_s));
    refused(&r, "completeness_commitment_invalid", Some(other_s));
    // A grade in place of the commitment.
    let mut g = t.export(L1, &Disclosure::All);
    let grade = g.entries[3].clone();
    g.completeness.as_mut().unwrap().commitment = grade.clone();
    let r = check(&g, &t.vkey);
    refused(&r, "completeness_commitment_invalid", Some(grade.seq));
    assert!(r.failures.iter().any(|f| f.message.contains("not ledger.completeness_committed")), "{:?}", r.failures);
    // The member's position differs from the commitment's.
    let mut u = t.export(L1, &Disclosure::All);
    u.completeness.as_mut().unwrap().up_to -= 1;
    refused(&check(&u, &t.vkey), "completeness_commitment_invalid", None);
    // A commitment entry changed after signing.
    let mut c = t.export(L1, &Disclosure::All);
    let item = &mut c.completeness.as_mut().unwrap().commitment;
    let text = String::from_utf8(keys::b64_decode(item.entry.as_ref().unwrap()).unwrap()).unwrap();
    item.entry = Some(keys::b64(text.replacen("\"learners\":", "\"learners\":1", 1).as_bytes()));
    let s = item.seq;
    let r = check(&c, &t.vkey);
    refused(&r, "proof_invalid", Some(s));
    refused(&r, "signature_invalid", Some(s));
    // Withheld.
    let mut w = t.export(L1, &Disclosure::All);
    let item = &mut w.completeness.as_mut().unwrap().commitment;
    item.leaf_hash = Some(keys::b64(&[1; 32]));
    item.entry = None;
    let s = item.seq;
    refused(&check(&w, &t.vkey), "bundle_malformed", Some(s));
}

#[test]
fn an_old_commitment_hiding_a_later_revocation_is_stale() {
    let mut t = region(1);
    let old = t.commit();
    let old_up_to = old;
    let revoked = t.append(
        "issuer",
        &format!("learner/{L1}"),
        "portfolio.achievement_revoked",
        "2027-07-01T09:00:00Z",
        json!({"achievement_id": "ach-1", "reason": "disqualified"}),
    );
    for day in 1..=9 {
        let date = format!("2026-09-1{day}");
        t.append(
            "teacher2",
            &format!("learner/{L2}"),
            "journal.grade_recorded",
            &format!("{date}T09:00:00Z"),
            common::grade(4, &date),
        );
    }
    let new = t.commit();
    // The honest bundle has the revocation and the latest commitment.
    let honest = t.export(L1, &Disclosure::All);
    let r = verify(&honest.to_json(), &t.vkey, &bound(5));
    assert!(r.ok, "{:?}", r.failures);
    assert!(r.record.achievements[0]["revoked"] == json!(true));
    assert_eq!(r.completeness.as_ref().unwrap().commitment_seq, Some(new));
    // The exporter cites the old commitment and leaves the revocation out: every check of the
    // entries holds (nothing later in the learner's stream names it) and the value matches the
    // old commitment, so only the distance to the checkpoint tells.
    let mut hidden = t.export_with(L1, &Disclosure::All, t.size(), Some((old, old_up_to)));
    hidden.entries.retain(|i| i.seq != revoked);
    let r = verify(&hidden.to_json(), &t.vkey, &bound(5));
    assert_eq!(codes(&r), vec![("completeness_stale".to_owned(), None)], "{:?}", r.failures);
    assert!(r.failures[0]
        .message
        .contains(&format!("{} positions are not covered, more than the bound 5", t.size() - old_up_to)));
    assert_eq!(r.record.achievements[0]["revoked"], json!(false));
    // Under a looser bound the same bundle passes: the bound is the verifier's policy.
    assert!(verify(&hidden.to_json(), &t.vkey, &bound(100)).ok);
    // A second, newer checkpoint: how far behind, and stale against it.
    let n = t.size();
    let honest_at_n = t.export_at(L1, &Disclosure::All, n);
    for _ in 0..6 {
        t.append(
            "teacher2",
            &format!("learner/{L2}"),
            "journal.grade_recorded",
            "2026-09-20T09:00:00Z",
            common::grade(4, "2026-09-20"),
        );
    }
    let other = OtherCheckpoint { note: t.checkpoint_at(t.size()), proof: t.consistency(n, t.size()) };
    let options = Options { other: Some(other), max_uncovered: Some(5), ..Default::default() };
    let r = verify(&honest_at_n.to_json(), &t.vkey, &options);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!(c.behind, Some(t.size() - new));
    assert_eq!(codes(&r), vec![("completeness_stale".to_owned(), None)], "{:?}", r.failures);
    assert!(r.failures[0].message.contains("the newer checkpoint you gave"), "{}", r.failures[0].message);
}

#[test]
fn without_a_commitment_completeness_is_not_present_unless_required() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    assert!(b.completeness.is_none());
    let r = check(&b, &t.vkey);
    assert!(r.ok);
    assert_eq!(r.completeness.as_ref().unwrap().status, "not_present");
    let r = verify(&b.to_json(), &t.vkey, &Options { require_complete: true, ..Default::default() });
    assert_eq!(codes(&r), vec![("completeness_missing".to_owned(), None)]);
    // An unknown member in it: the bundle is malformed, as anywhere.
    let mut t = t;
    t.commit();
    let mut v: Value = serde_json::from_slice(&t.export(L1, &Disclosure::All).to_json()).unwrap();
    v["completeness"]["extra"] = json!(1);
    refused(&verify(&serde_json::to_vec(&v).unwrap(), &t.vkey, &Options::default()), "bundle_malformed", None);
}

#[test]
fn each_item_reassembles_as_a_c2sp_tlog_proof() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let item = &b.entries[4];
    let text = b.tlog_proof(item.seq).unwrap();
    let (proof, note) = text.split_once("\n\n").unwrap();
    let mut lines = proof.lines();
    assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
    assert_eq!(lines.next(), Some(format!("index {}", item.seq).as_str()));
    let hashes: Vec<String> = lines.map(str::to_owned).collect();
    assert_eq!(hashes, item.proof);
    assert_eq!(note, b.checkpoint);
    // Folding it from the leaf reaches the note's root.
    let head = zachetka_formats::checkpoint::verify_checkpoint(note.as_bytes(), &t.vkey, ORIGIN).unwrap().head;
    let leaf = zachetka_formats::event::leaf_hash(&keys::b64_decode(item.entry.as_ref().unwrap()).unwrap());
    let hashes = zachetka_formats::merkle::hashes_from_b64(&hashes).unwrap();
    zachetka_formats::merkle::verify_inclusion(item.seq, head.tree_size, leaf, &hashes, head.root_hash).unwrap();
    assert!(b.tlog_proof(9999).is_none());
}

/// Review s9, finding 15: the text report never says two contradicting things. A consistency
/// check that failed is reported as failed, not as "no second checkpoint given"; completeness
/// is not claimed when the bundle's own checkpoint did not verify.
#[test]
fn the_text_report_does_not_contradict_its_failures() {
    let mut t = region(1);
    t.commit();
    let b = t.export(L1, &Disclosure::All);
    assert_eq!(check(&b, &t.vkey).completeness.unwrap().status, "complete");
    // Without a second checkpoint, the report says none was given.
    let text = check(&b, &t.vkey).to_text();
    assert!(text.contains("consistency: no second checkpoint given"), "{text}");
    // A forged consistency proof: failed once, and the consistency line does not deny it was given.
    let mut proof = t.consistency(5, t.size());
    proof.hashes[0] = keys::b64(&[9; 32]);
    let forged = Options { other: Some(OtherCheckpoint { note: t.checkpoint_at(5), proof }), ..Options::default() };
    let r = verify(&b.to_json(), &t.vkey, &forged);
    refused(&r, "consistency_invalid", None);
    let text = r.to_text();
    assert!(!text.contains("no second checkpoint given"), "{text}");
    assert_eq!(text.matches("consistency_invalid").count(), 1, "{text}");
    assert!(text.contains("consistency: not established, see the failure above"), "{text}");
    // A second checkpoint that does not verify: the same.
    let unsigned = Options {
        other: Some(OtherCheckpoint { note: region(2).checkpoint_at(5), proof: t.consistency(5, t.size()) }),
        ..Options::default()
    };
    let r = verify(&b.to_json(), &t.vkey, &unsigned);
    refused(&r, "checkpoint_invalid", None);
    assert!(r.to_text().contains("consistency: not established, see the failure above"), "{}", r.to_text());
    // The bundle's checkpoint tampered with: no completeness claimed, and no "0 positions past it".
    let mut bad = b.clone();
    bad.checkpoint = bad.checkpoint.replacen(&format!("\n{}\n", t.size()), &format!("\n{}\n", t.size() + 1), 1);
    assert_ne!(bad.checkpoint, b.checkpoint);
    let r = check(&bad, &t.vkey);
    refused(&r, "checkpoint_invalid", None);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!((c.status, c.reason.as_deref()), ("failed", Some("checkpoint_invalid")));
    let text = r.to_text();
    assert!(!text.contains("completeness: complete"), "{text}");
    assert!(!text.contains("positions past it"), "{text}");
    assert!(text.contains("completeness: failed (checkpoint_invalid)"), "{text}");
}

/// Review s10: a bundle that does not verify still shows what it claims (to diagnose it), but
/// says the record is not verified before listing it; a verified one does not say so.
#[test]
fn a_record_that_does_not_verify_is_shown_as_claimed_only() {
    let t = region(1);
    let mut b = t.export(L1, &Disclosure::All);
    let ok = check(&b, &t.vkey).to_text();
    assert!(ok.starts_with("VERIFIED") && !ok.contains("NOT verified"), "{ok}");
    let moved = b.entries.pop().unwrap();
    b.authority.push(moved);
    let text = check(&b, &t.vkey).to_text();
    assert!(text.starts_with("NOT VERIFIED"), "{text}");
    let warning = text.find("the record below is what the bundle claims; it is NOT verified").expect("the warning");
    let record = ["institutions:", "results:", "documents:", "achievements:"]
        .iter()
        .filter_map(|h| text.find(h))
        .min()
        .expect("the claimed record is shown");
    assert!(warning < record, "{text}");
}

/// The authority part holds registry entries and the registrations entries name (a curriculum,
/// a club programme); a learner's grade carried there is refused, naming it.
#[test]
fn an_authority_item_that_is_neither_registry_nor_registration_is_refused() {
    let t = region(1);
    let mut b = t.export(L1, &Disclosure::All);
    let moved = b.entries.pop().unwrap();
    assert!(b.authority.iter().all(|i| i.seq < moved.seq));
    let seq = moved.seq;
    b.authority.push(moved);
    let r = check(&b, &t.vkey);
    refused(&r, "authority_entry_invalid", Some(seq));
    let f = r.failures.iter().find(|f| f.code == "authority_entry_invalid").unwrap();
    assert!(
        f.message.contains("neither a registry entry nor an institution's curriculum, programme or lesson"),
        "{}",
        f.message
    );
}

/// Review s11, finding 1: entries after the commitment's position are in the bundle but no
/// commitment covers them, and more of the learner's could follow unseen: the record is then
/// "complete up to P", never "complete". Only a checkpoint that ends at the commitment, which
/// covers every position before it, leaves nothing uncovered.
#[test]
fn a_bundle_with_entries_after_the_commitment_is_complete_only_up_to_its_position() {
    let mut t = region(1);
    let p = t.size();
    let s = t.commit();
    assert_eq!(s, p, "the test ledger commits at its head");
    // At the commitment: the checkpoint ends right after it, nothing is uncovered.
    let at_p = t.export(L1, &Disclosure::All);
    let r = check(&at_p, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!((c.status, c.after, c.uncovered_positions), ("complete", Some(0), Some(1)));
    let text = r.to_text();
    assert!(text.contains(&format!("completeness: complete: the checkpoint ends at the commitment (seq {s}), which covers every position before it")), "{text}");
    // Two later entries of the learner: in the bundle, covered by no commitment.
    for (mark, day) in [(4, 20), (2, 21)] {
        t.append(
            "teacher",
            &format!("learner/{L1}"),
            "journal.grade_recorded",
            &format!("2027-06-30T1{}:00:00Z", day - 20),
            common::grade(mark, &format!("2027-05-{day}")),
        );
    }
    let b = t.export(L1, &Disclosure::All);
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!(c.status, "complete_up_to");
    assert_eq!((c.up_to, c.after, c.uncovered_positions, c.reason.as_deref()), (Some(p), Some(2), Some(3), None));
    let text = r.to_text();
    assert!(!text.contains("completeness: complete as of"), "{text}");
    assert!(
        text.contains(&format!("completeness: complete up to position {p} (commitment at seq {s}): covers 16 entries of the learner (0 withheld); 2 entries of the bundle are after it and not covered by any commitment")),
        "{text}"
    );
    let json: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["completeness"]["status"], "complete_up_to");
    // The same cut short of its last two entries (the tail no chain can miss): still verifies,
    // still only "up to P", and it says that the positions after P may hold more.
    let mut cut = b.clone();
    cut.entries.truncate(cut.entries.len() - 2);
    let r = check(&cut, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!((c.status, c.after), ("complete_up_to", Some(0)));
    assert!(r.to_text().contains("may hold entries of the learner that this bundle does not show"), "{}", r.to_text());
    // A bundle at P read against a newer checkpoint: the log went on past P, so only up to P.
    let other = OtherCheckpoint { note: t.checkpoint_at(t.size()), proof: t.consistency(p + 1, t.size()) };
    let options = Options { other: Some(other), ..Default::default() };
    let r = verify(&at_p.to_json(), &t.vkey, &options);
    assert!(r.ok, "{:?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    assert_eq!((c.status, c.behind), ("complete_up_to", Some(3)));
}

/// Review s11, finding 2: the exporter never withholds a revocation while it discloses what it
/// revokes, as it never withholds a correction.
#[test]
fn an_achievement_disclosed_alone_travels_with_its_revocation() {
    let mut t = region(1);
    let revoked = t.append(
        "issuer",
        &format!("learner/{L1}"),
        "portfolio.achievement_revoked",
        "2027-07-01T09:00:00Z",
        json!({"achievement_id": "ach-1", "reason": "disqualified"}),
    );
    // Another attestation, never revoked; and a revocation naming an achievement not disclosed.
    t.append(
        "issuer",
        &format!("learner/{L1}"),
        "portfolio.achievement_attested",
        "2027-07-02T09:00:00Z",
        json!({"achievement_id": "ach-2", "kind": "competition", "level": "municipal", "date": "2027-07-01", "result": "prize"}),
    );
    t.commit();
    let b = t.export(L1, &Disclosure::parse("portfolio.achievement_attested").unwrap());
    let shown: Vec<u64> = b.entries.iter().filter(|i| i.entry.is_some()).map(|i| i.seq).collect();
    assert!(shown.contains(&revoked), "the revocation is withheld: {shown:?}");
    assert_eq!(shown.len(), 3, "{shown:?}");
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    let by_id = |id: &str| r.record.achievements.iter().find(|a| a["achievement_id"] == id).unwrap().clone();
    assert_eq!(by_id("ach-1")["revoked"], json!(true));
    // ach-2 comes after every withheld entry: its status is known.
    assert_eq!(by_id("ach-2")["revoked"], json!(false));
    // Nothing disclosed, nothing followed: the revocation is withheld with its attestation.
    let b = t.export(L1, &Disclosure::parse("documents").unwrap());
    assert!(b.entries.iter().any(|i| i.seq == revoked && i.entry.is_none()));
}

/// Review s11, finding 2: a disclosed attestation followed by withheld entries of the learner
/// may have been revoked by one of them: the report says the revocation status is unknown, and
/// why, instead of "not revoked".
#[test]
fn an_attestation_followed_by_withheld_entries_has_an_unknown_revocation_status() {
    let mut t = region(1);
    let revoked = t.append(
        "issuer",
        &format!("learner/{L1}"),
        "portfolio.achievement_revoked",
        "2027-07-01T09:00:00Z",
        json!({"achievement_id": "ach-1", "reason": "disqualified"}),
    );
    t.commit();
    let mut b = t.export(L1, &Disclosure::All);
    let item = b.entries.iter_mut().find(|i| i.seq == revoked).unwrap();
    let bytes = keys::b64_decode(item.entry.as_ref().unwrap()).unwrap();
    item.leaf_hash = Some(keys::b64(&zachetka_formats::event::leaf_hash(&bytes).0));
    item.entry = None;
    let r = check(&b, &t.vkey);
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!(r.completeness.as_ref().unwrap().status, "complete");
    let a = &r.record.achievements[0];
    assert_eq!(a["revoked"], Value::Null, "{a}");
    assert_eq!(a["revoked_unknown"], json!("1 withheld entry of the learner comes after it; it may revoke it"), "{a}");
    let text = r.to_text();
    assert!(
        text.contains("revoked=unknown (1 withheld entry of the learner comes after it; it may revoke it)"),
        "{text}"
    );
    assert!(!text.contains("revoked=false"), "{text}");
    // With nothing withheld after it, the status is a fact again.
    let r = check(&t.export(L1, &Disclosure::All), &t.vkey);
    assert_eq!(r.record.achievements[0]["revoked"], json!(true));
    assert!(r.record.achievements[0].get("revoked_unknown").is_none());
}

/// FORMAT.md section 7: every entry that withdraws, closes or ends another travels with it, as a
/// revocation does: a queue application's withdrawal, a debt's retake, leaving a club programme,
/// an expulsion; none of them while what it undoes is withheld.
#[test]
fn what_withdraws_closes_or_ends_a_disclosed_entry_is_disclosed_with_it() {
    let mut t = region(1);
    let own = format!("learner/{L1}");
    let application = json!({"application_id": "app-1", "number": "47-KG-1", "learner": L1, "birth_month": "2020-05",
        "desired_date": "2023-09-01", "preferred": ["sch-001"], "group_type": "general"});
    t.append("registrar", "queue/kg/tikhvin", "queue.application_submitted", "2026-09-11T09:00:00Z", application);
    let debt = json!({"debt_id": "debt-1", "institution": "sch-001", "class": "5А", "subject": "math",
        "academic_year": 2026, "opened_on": "2026-09-11", "attestation_event_id": "00000000-0000-4000-8000-000000000001"});
    t.append("teacher", &own, "journal.academic_debt_opened", "2026-09-11T10:00:00Z", debt);
    let enrolled = json!({"institution": "ado-001", "program_id": "prog-1"});
    t.append("registrar", &own, "additional.enrolled", "2026-09-11T11:00:00Z", enrolled);
    let undoing = [
        t.append(
            "registrar",
            "queue/kg/tikhvin",
            "queue.application_withdrawn",
            "2026-09-12T09:00:00Z",
            json!({"application_id": "app-1", "reason": "moved"}),
        ),
        t.append(
            "teacher",
            &own,
            "journal.retake_recorded",
            "2026-09-12T10:00:00Z",
            json!({"debt_id": "debt-1", "institution": "sch-001", "class": "5А", "held_on": "2026-09-12", "mark": 4, "scale": "five_point"}),
        ),
        t.append(
            "registrar",
            &own,
            "additional.left",
            "2026-09-12T11:00:00Z",
            json!({"institution": "ado-001", "program_id": "prog-1", "reason": "moved"}),
        ),
        t.append(
            "registrar",
            &own,
            "contingent.expelled",
            "2026-09-12T12:00:00Z",
            json!({"institution": "sch-001", "expelled_on": "2026-09-12", "reason": "moved"}),
        ),
    ];
    let shown = |b: &Bundle| -> Vec<u64> { b.entries.iter().filter(|i| i.entry.is_some()).map(|i| i.seq).collect() };
    let only = "queue.application_submitted,journal.academic_debt_opened,additional.enrolled,contingent.admitted";
    let b = t.export(L1, &Disclosure::parse(only).unwrap());
    for seq in undoing {
        assert!(shown(&b).contains(&seq), "entry {seq} is withheld: {:?}", shown(&b));
    }
    // The bundle holds together (concerns, chains, proofs); this fixture's registrar holds no
    // right at the queue or the club, which is all the verifier finds.
    let r = check(&b, &t.vkey);
    assert!(r.failures.iter().all(|f| f.code == "not_authorized"), "{:?}", r.failures);
    // What they undo withheld: they are withheld too.
    let b = t.export(L1, &Disclosure::parse("final-results").unwrap());
    for seq in undoing {
        assert!(!shown(&b).contains(&seq), "entry {seq} is disclosed alone");
    }
}

/// Review s11, finding 1: "not revoked" is said only as far as the completeness reaches: a
/// revocation after the commitment's position could be cut off the bundle's end unseen.
#[test]
fn not_revoked_is_said_only_as_far_as_completeness_reaches() {
    let mut t = region(1);
    let p = t.size();
    t.commit();
    let at_p = check(&t.export(L1, &Disclosure::All), &t.vkey).to_text();
    assert!(at_p.contains("revoked=false\n"), "{at_p}");
    t.append(
        "teacher2",
        &format!("learner/{L2}"),
        "journal.grade_recorded",
        "2027-06-30T10:00:00Z",
        common::grade(4, "2027-05-20"),
    );
    let r = check(&t.export(L1, &Disclosure::All), &t.vkey);
    assert_eq!(r.completeness.as_ref().unwrap().status, "complete_up_to");
    assert_eq!(r.record.achievements[0]["revoked"], json!(false), "the JSON says what the entries show");
    let text = r.to_text();
    assert!(
        text.contains(&format!(
            "revoked=false (up to position {p}; a revocation after it is covered by no commitment)"
        )),
        "{text}"
    );
    let none = check(&region(1).export(L1, &Disclosure::All), &t.vkey);
    let text = none.to_text();
    assert!(text.contains("revoked=false (among the bundle's entries; completeness not proved)"), "{text}");
}
