//! The learner record bundle end to end over a demo region ledger: the exporter finds exactly
//! the entries `Concerns` says concern a learner (checked against a fold of the whole log), the
//! bundle verifies offline, selective disclosure withholds by hash, a grade written around the
//! rules by a revoked key is refused with `key_revoked`; over HTTP the record is served to the
//! learner's own token only (403 to another learner's, 401 without) and `POST /v1/verify`
//! answers the report, refusing a body over its limit; and through the binary, `export` then
//! `verify` with a consistency proof to a newer checkpoint. Completeness (DESIGN 3.7) through
//! the exporter of a ledger that commits: a bundle is complete up to the latest commitment's
//! position, withheld entries counted; an entry left out, a changed value, a forged map proof,
//! a commitment by another key or of another ledger, and an old commitment hiding a later
//! revocation are each refused with their code, in the library and through the binary. The
//! served record of an attestation carries its revocation; withheld by hand, the achievement's
//! revocation status is unknown.

use super::http::{serve_with, Server};
use super::rules::{append_region, grade_event, region, teacher_of_school_1, DEMO_ORIGIN};
use super::support::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use zachetka::access::{create_token, Role, Scope, TokenSecret};
use zachetka::api::server::ServerConfig;
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits, OpenOptions, RulesMode};
use zachetka::read::CompletenessPolicy;
use zachetka::record::{export_learner, verify, Bundle, Disclosure, Options, OtherCheckpoint, Report};
use zachetka_projections::completeness::{self as commitment, LearnerValue, Map};
use zachetka_projections::model::ParsedFact;
use zachetka_projections::models::concerns::Concerns;

pub(super) fn ledger(dir: &std::path::Path, mode: RulesMode) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    if store.config().unwrap().is_none() {
        let authority = region().authority_did();
        let rules = Some(zachetka::rules::default_region());
        zachetka::ledger::init_store(&*store, DEMO_ORIGIN, &ledger_key(), &authority, rules).unwrap();
    }
    let clock = test_clock();
    Ledger::open_with(store, ledger_key(), clock, Limits::default(), mode).unwrap()
}

/// A ledger keyed by `key` that commits completeness every `every` entries.
fn committing_ledger(dir: &std::path::Path, key: &KeyPair, mode: RulesMode, every: Option<u64>) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    if store.config().unwrap().is_none() {
        let authority = region().authority_did();
        let rules = Some(zachetka::rules::default_region());
        zachetka::ledger::init_store(&*store, DEMO_ORIGIN, key, &authority, rules).unwrap();
    }
    let completeness = every.map(|n| CompletenessPolicy { every_entries: n, every_seconds: 0 });
    let options = OpenOptions { limits: Limits::default(), mode, completeness, ..Default::default() };
    Ledger::open_opts(store, key.clone(), test_clock(), options).unwrap()
}

/// Waits until the read side has handled the whole log, the commitments it owed included.
fn settle(l: &Ledger) -> u64 {
    loop {
        let size = l.head().0.tree_size;
        l.read_side().wait_settled_blocking(size);
        l.read_side().wait_applied_blocking(size);
        if l.head().0.tree_size == size {
            return size;
        }
    }
}

fn codes(r: &Report) -> Vec<(&str, Option<u64>)> {
    r.failures.iter().map(|f| (f.code.as_str(), f.seq)).collect()
}

fn has(r: &Report, code: &str) -> bool {
    r.failures.iter().any(|f| f.code == code)
}

pub(super) fn vkey(l: &Ledger) -> String {
    l.config().verifier_key.clone()
}

/// Learner -> the seqs that concern them, by a fold of the whole log (the one definition).
pub(super) fn concerned_by_scan(l: &Ledger) -> BTreeMap<String, Vec<u64>> {
    let size = l.head().0.tree_size;
    let mut c = Concerns::default();
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for bytes in l.entries(0, size).unwrap() {
        let parsed = ParsedFact::from_entry(&bytes).unwrap();
        let Some(fact) = parsed.fact() else { continue };
        c.apply(&fact);
        for learner in c.learners_concerned(&fact) {
            out.entry(learner.to_owned()).or_default().push(fact.seq);
        }
    }
    out
}

pub(super) fn applied(l: &Ledger) {
    l.read_side().wait_applied_blocking(l.head().0.tree_size);
}

#[test]
fn demo_bundles_hold_exactly_what_concerns_the_learner_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    append_region(&l);
    applied(&l);
    let truth = concerned_by_scan(&l);
    let own = |learner: &str, seqs: &[u64]| {
        let stream = format!("learner/{learner}");
        seqs.iter()
            .filter(|s| l.entries(**s, 1).unwrap()[0].windows(stream.len()).any(|w| w == stream.as_bytes()))
            .count()
    };
    // Learners with queue or 1st-grade entries (other streams), and the busiest learners.
    let mut others: Vec<(&String, &Vec<u64>)> = truth.iter().filter(|(l, s)| own(l, s) < s.len()).collect();
    assert!(others.len() >= 3, "the demo has queue and 1st-grade learners");
    others.truncate(6);
    let mut busiest: Vec<(&String, &Vec<u64>)> = truth.iter().collect();
    busiest.sort_by_key(|(_, s)| std::cmp::Reverse(s.len()));
    let mut by_rules = 0;
    let mut grant_only: BTreeMap<String, usize> = BTreeMap::new();
    for (learner, seqs) in others.into_iter().chain(busiest.into_iter().take(4)) {
        let b = export_learner(&l, learner, &Disclosure::All).unwrap();
        let got: Vec<u64> = b.entries.iter().map(|i| i.seq).collect();
        assert_eq!(&got, seqs, "learner {learner}: the bundle holds exactly what concerns them");
        let r = verify(&b.to_json(), &vkey(&l), &Options::default());
        assert!(r.ok, "learner {learner}: {:#?}", r.failures);
        assert_eq!(r.disclosed, seqs.len());
        assert_eq!(r.authority_checked_by_rules + r.authority_checked_by_grant_only.len(), seqs.len());
        by_rules += r.authority_checked_by_rules;
        for g in &r.authority_checked_by_grant_only {
            *grant_only.entry(g.reason.clone()).or_default() += 1;
        }
        // Withholding all but documents and results keeps it verifiable and says only counts.
        let d = Disclosure::parse("final-results,documents,achievements").unwrap();
        let s = export_learner(&l, learner, &d).unwrap();
        let r = verify(&s.to_json(), &vkey(&l), &Options::default());
        assert!(r.ok, "learner {learner}, selective: {:#?}", r.failures);
        assert_eq!(r.disclosed + r.withheld, seqs.len());
    }
    eprintln!("authority by the rules: {by_rules}; by the grant only: {grant_only:?}");
    assert!(by_rules > 0);
    // Marks are given at lessons: the bundle carries the lessons, so the rules judge the marks.
    assert!(!grant_only.contains_key("lesson_not_held"), "{grant_only:?}");
    assert_eq!(
        export_learner(&l, "no-such-learner", &Disclosure::All).unwrap_err().to_string(),
        "no record of learner no-such-learner in this ledger"
    );
}

#[test]
fn a_grade_by_a_revoked_key_written_around_the_rules_is_refused_in_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let authority = zachetka::demo::demo_key(DEMO_ORIGIN, "authority");
    let teacher = teacher_of_school_1();
    let revocation = {
        let ev = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.revoked", "id": id(970_001),
            "occurred_at": "2027-05-20T08:00:00Z", "author": authority.did(),
            "data": {"v": 1, "key": teacher.did(), "reason": "left the school"}});
        zachetka::event::sign_event(&ev, &authority).unwrap()
    };
    let before = grade_event(970_002, &teacher, "sch-001", "5А", 5);
    let mut late = grade_event(970_003, &teacher, "sch-001", "5А", 4);
    late = {
        let mut ev = late["event"].clone();
        ev["occurred_at"] = json!("2027-05-20T09:00:00Z");
        ev["stream"] = before["event"]["stream"].clone();
        zachetka::event::sign_event(&ev, &teacher).unwrap()
    };
    let late_seq;
    {
        let l = ledger(dir.path(), RulesMode::Enforce);
        append_region(&l);
        // The grade before the revocation is by a key that held the right then.
        let mut early = before["event"].clone();
        early["occurred_at"] = json!("2027-05-19T09:00:00Z");
        assert!(l.append_blocking(vec![zachetka::event::sign_event(&early, &teacher).unwrap()])[0].is_ok());
        assert!(l.append_blocking(vec![revocation])[0].is_ok());
        assert_eq!(l.append_blocking(vec![late.clone()])[0].as_ref().unwrap_err().code.as_str(), "key_revoked");
    }
    {
        let l = ledger(dir.path(), RulesMode::Bypass);
        late_seq = l.append_blocking(vec![late])[0].as_ref().unwrap().seq;
    }
    let l = ledger(dir.path(), RulesMode::Bypass);
    applied(&l);
    let learner = before["event"]["stream"].as_str().unwrap().strip_prefix("learner/").unwrap();
    let b = export_learner(&l, learner, &Disclosure::All).unwrap();
    let r = verify(&b.to_json(), &vkey(&l), &Options::default());
    assert!(!r.ok);
    let failures: Vec<(&str, Option<u64>)> = r.failures.iter().map(|f| (f.code.as_str(), f.seq)).collect();
    assert_eq!(failures, vec![("key_revoked", Some(late_seq))], "{:#?}", r.failures);
    assert!(r.to_text().contains(&format!("FAILED key_revoked at entry {late_seq}")));
}

/// The disclosed events of a bundle's items, by seq: `(type, stream, event)`.
fn events_of(items: &[zachetka_record::Item]) -> BTreeMap<u64, (String, String, Value)> {
    items
        .iter()
        .filter_map(|i| {
            let bytes = zachetka::keys::b64_decode(i.entry.as_ref()?).unwrap();
            let e: Value = serde_json::from_slice(&bytes).unwrap();
            let ev = e["event"].clone();
            Some((i.seq, (ev["type"].as_str()?.to_owned(), ev["stream"].as_str()?.to_owned(), ev)))
        })
        .collect()
}

/// Review s10: a child's kindergarten offer is judged by the rules against the run it was made
/// in (its declared places and allocation year), so the bundle carries that run's start and
/// finish from the territory's queue stream: every learner placed by a run, the legacy
/// placements of 2010-2016 included, gets their offer, acceptance and enrolment checked by the
/// rules, not by the grant only.
#[test]
fn a_kindergarten_placement_travels_with_its_allocation_run() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    append_rest_of(&l, &mut region(), 700);
    applied(&l);
    let truth = concerned_by_scan(&l);
    let (mut placed, mut legacy) = (0, 0);
    for (learner, seqs) in &truth {
        let offered = seqs.iter().any(|s| {
            let e: Value = serde_json::from_slice(&l.entries(*s, 1).unwrap()[0]).unwrap();
            e["event"]["type"] == "queue.place_offered"
        });
        if !offered {
            continue;
        }
        let b = export_learner(&l, learner, &Disclosure::All).unwrap();
        let r = verify(&b.to_json(), &vkey(&l), &Options::default());
        assert!(r.ok, "learner {learner}: {:#?}", r.failures);
        let entries = events_of(&b.entries);
        let queue_by_grant: Vec<(u64, &str, &str)> = r
            .authority_checked_by_grant_only
            .iter()
            .filter(|g| entries[&g.seq].0.starts_with("queue."))
            .map(|g| (g.seq, entries[&g.seq].0.as_str(), g.reason.as_str()))
            .collect();
        assert_eq!(queue_by_grant, vec![], "learner {learner}: the placement is checked by the rules");
        let authority = events_of(&b.authority);
        let runs = authority.values().filter(|(ty, _, _)| ty == "queue.allocation_started").count();
        assert!(runs >= 1, "learner {learner}: the bundle carries the run its offer was made in");
        placed += 1;
        legacy += usize::from(entries.values().any(|(_, _, ev)| ev["data"]["migrated_from"].is_object()));
    }
    assert!(placed >= 3 && legacy >= 1, "placed {placed}, of them imported {legacy}");
}

/// What the rules replay needs of an institution travels with the authority chain: the
/// lifelong learner's college admission names a programme whose curriculum is registered on the
/// college's stream, and the bundle carries that registration, so the admission, every course
/// result, exam and the diploma are checked by the rules, not by the grant only; a club
/// enrolment's programme registration likewise; and a correction authorised by another key than
/// its author's carries that key's grant, so the bundle verifies.
#[test]
fn a_college_record_travels_with_its_curriculum_and_is_checked_by_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    // The whole region: the diploma is issued at the end of the live year.
    append_rest_of(&l, &mut region(), 700);
    applied(&l);
    let size = zachetka::demo::DemoSize { learners: 200, teachers: 40, events: 300 };
    let learner = zachetka::demo::sample(size).lifelong;
    let b = export_learner(&l, &learner, &Disclosure::All).unwrap();
    let r = verify(&b.to_json(), &vkey(&l), &Options::default());
    assert!(r.ok, "{:#?}", r.failures);
    let entries = events_of(&b.entries);
    let college: Vec<u64> = entries
        .iter()
        .filter(|(_, (ty, _, ev))| ty.starts_with("college.") || (ev["data"]["program_id"].is_string()))
        .map(|(seq, _)| *seq)
        .collect();
    let types: BTreeSet<&str> = college.iter().map(|s| entries[s].0.as_str()).collect();
    for ty in ["contingent.admitted", "college.course_result_recorded", "college.diploma_issued"] {
        assert!(types.contains(ty), "the lifelong learner's college record has a {ty}: {types:?}");
    }
    let grant_only: BTreeMap<u64, &str> =
        r.authority_checked_by_grant_only.iter().map(|g| (g.seq, g.reason.as_str())).collect();
    let by_grant: Vec<(u64, &str, &str)> =
        college.iter().filter_map(|s| grant_only.get(s).map(|why| (*s, entries[s].0.as_str(), *why))).collect();
    assert_eq!(by_grant, vec![], "the college record is checked by the rules");
    // The curriculum the admission names is in the authority part, from the college's stream.
    let admission = college.iter().map(|s| &entries[s]).find(|(ty, _, _)| ty == "contingent.admitted").unwrap();
    let (institution, program) = (&admission.2["data"]["institution"], &admission.2["data"]["program_id"]);
    let authority = events_of(&b.authority);
    assert!(
        authority.values().any(|(ty, stream, ev)| ty == "college.curriculum_registered"
            && *stream == format!("institution/{}", institution.as_str().unwrap())
            && ev["data"]["program_id"] == *program),
        "the bundle carries the curriculum of {institution}/{program}"
    );

    // Every learner of the region with a club enrolment or a correction authorised by another
    // key: the bundle verifies, and the enrolment is checked by the rules.
    let truth = concerned_by_scan(&l);
    let (mut clubs, mut corrections) = (0, 0);
    for (learner, seqs) in &truth {
        let wanted = seqs.iter().any(|s| {
            let e: Value = serde_json::from_slice(&l.entries(*s, 1).unwrap()[0]).unwrap();
            let ev = &e["event"];
            (ev["type"] == "additional.enrolled" && clubs < 3)
                || (ev["type"] == "journal.record_corrected" && ev["data"]["authorised_by"] != ev["author"])
        });
        if !wanted {
            continue;
        }
        let b = export_learner(&l, learner, &Disclosure::All).unwrap();
        let r = verify(&b.to_json(), &vkey(&l), &Options::default());
        assert!(r.ok, "learner {learner}: {:#?}", r.failures);
        let entries = events_of(&b.entries);
        for g in &r.authority_checked_by_grant_only {
            let ty = entries[&g.seq].0.as_str();
            assert!(
                !ty.starts_with("additional."),
                "learner {learner}: {ty} at {} by the grant only ({})",
                g.seq,
                g.reason
            );
        }
        clubs += usize::from(entries.values().any(|(ty, _, _)| ty == "additional.enrolled"));
        corrections += entries
            .values()
            .filter(|(ty, _, ev)| ty == "journal.record_corrected" && ev["data"]["authorised_by"] != ev["author"])
            .count();
    }
    assert!(clubs > 0 && corrections > 0, "the region has club enrolments ({clubs}) and corrections ({corrections})");
}

fn call(req: ureq::Request, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let resp = match body {
        Some(b) => req.set("content-type", "application/json").send_bytes(b),
        None => req.call(),
    };
    let r = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = r.status();
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut v).unwrap();
    (status, v)
}

fn learner_token(srv: &Server, learner: &str, byte: u8) -> String {
    let secret = TokenSecret::from_bytes([byte; 32]);
    create_token(&srv.tokens, &secret, Role::Learner, Scope::Learner(learner.to_owned()), "learner", 0).unwrap();
    format!("Bearer {}", secret.expose())
}

#[test]
fn the_record_is_served_to_its_learner_and_verified_by_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    append_region(&l);
    applied(&l);
    let truth = concerned_by_scan(&l);
    let mut learners = truth.keys();
    let (a, b) = (learners.next().unwrap().clone(), learners.next().unwrap().clone());
    let srv = serve_with(l.clone(), ServerConfig::default());
    let (ta, tb) = (learner_token(&srv, &a, 0x41), learner_token(&srv, &b, 0x42));
    let path = format!("{}/v1/learners/{a}/record", srv.base);

    let (s, body) = call(ureq::get(&path).set("authorization", &ta), None);
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let bundle: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(bundle["learner"], json!(a));
    assert_eq!(bundle["entries"].as_array().unwrap().len(), truth[&a].len());
    // Another learner's token, and no token: nothing of it.
    let (s, other) = call(ureq::get(&path).set("authorization", &tb), None);
    assert_eq!((s, serde_json::from_slice::<Value>(&other).unwrap()["code"].clone()), (403, json!("forbidden")));
    assert_eq!(call(ureq::get(&path), None).0, 401);
    // Review s9, finding 8: a malformed learner id is the client's error (400 `bad_path`, no
    // Retry-After), for the learner's own token as for the auditor, never 503 `unavailable`.
    for token in [&ta, &auditor_bearer()] {
        let r = ureq::get(&format!("{}/v1/learners//record", srv.base)).set("authorization", token).call();
        let Err(ureq::Error::Status(s, r)) = r else { panic!("an empty learner id is refused") };
        assert!(r.header("retry-after").is_none(), "nothing to retry");
        let v: Value = r.into_json().unwrap();
        assert_eq!((s, v["code"].as_str()), (400, Some("bad_path")), "{v}");
    }
    // The auditor reads it too; an unknown disclosure choice is a bad query.
    assert_eq!(call(ureq::get(&path).set("authorization", &auditor_bearer()), None).0, 200);
    let (s, bad) = call(ureq::get(&format!("{path}?only=grades")).set("authorization", &ta), None);
    assert_eq!((s, serde_json::from_slice::<Value>(&bad).unwrap()["code"].clone()), (400, json!("bad_query")));
    let (s, sel) = call(ureq::get(&format!("{path}?only=documents")).set("authorization", &ta), None);
    assert_eq!(s, 200);

    // POST /v1/verify: public, the report whatever the verdict.
    let verify_url = format!("{}/v1/verify", srv.base);
    for bytes in [&body, &sel] {
        let (s, report) = call(ureq::post(&verify_url), Some(bytes));
        let report: Value = serde_json::from_slice(&report).unwrap();
        assert_eq!((s, report["ok"].clone()), (200, json!(true)), "{report}");
        assert_eq!(report["completeness"]["status"], json!("not_present"));
    }
    // This ledger commits nothing: a verifier that requires completeness refuses its bundles.
    let (s, report) = call(ureq::post(&format!("{verify_url}?require_complete=true")), Some(&body));
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((s, report["ok"].clone()), (200, json!(false)));
    assert_eq!(
        report["failures"],
        json!([{"code": "completeness_missing",
        "message": "the bundle carries no completeness commitment, and this verification requires one"}])
    );
    // (A small body: the query is refused before the body is read.)
    for bad in ["max_uncovered=many", "require_complete=yes", "strict=true"] {
        let (s, r) = call(ureq::post(&format!("{verify_url}?{bad}")), Some(b"{}"));
        assert_eq!(
            (s, serde_json::from_slice::<Value>(&r).unwrap()["code"].clone()),
            (400, json!("bad_query")),
            "{bad}"
        );
    }
    // Witnesses (DESIGN 3.6) as query parameters: whitespace-separated keys, `+` as %2B.
    let witness = |n: u8| {
        zachetka::cosignature::Witness::new(&format!("w{n}.witness.example"), KeyPair::from_seed(&[n; 32])).unwrap()
    };
    let (w1, w2) = (witness(1), witness(2));
    let mut cosigned = bundle.clone();
    let note = w1.cosign(bundle["checkpoint"].as_str().unwrap().as_bytes(), 1_764_662_400).unwrap();
    cosigned["checkpoint"] = json!(String::from_utf8(note).unwrap());
    let cosigned = serde_json::to_vec(&cosigned).unwrap();
    let q = |w: &[&zachetka::cosignature::Witness]| {
        w.iter().map(|w| w.verifier_key().encode().replace('+', "%2B")).collect::<Vec<_>>().join("%20")
    };
    let (s, report) =
        call(ureq::post(&format!("{verify_url}?witnesses={}&witnesses_required=1", q(&[&w1, &w2]))), Some(&cosigned));
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((s, report["ok"].clone()), (200, json!(true)), "{report}");
    assert_eq!(
        report["cosignatures"],
        json!({"required": 1, "witnesses": 2, "second_checkpoint": null,
               "checkpoint": [{"witness": "w1.witness.example", "key_id": format!("{:08x}", w1.verifier_key().key_id), "timestamp": 1_764_662_400}]})
    );
    let (s, report) = call(ureq::post(&format!("{verify_url}?witnesses={}", q(&[&w1, &w2]))), Some(&cosigned));
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((s, report["failures"][0]["code"].clone()), (200, json!("cosignatures_insufficient")), "{report}");
    for bad in
        [format!("witnesses={}", vkey(&l).replace('+', "%2B")), format!("witnesses={}&witnesses_required=2", q(&[&w1]))]
    {
        let (s, r) = call(ureq::post(&format!("{verify_url}?{bad}")), Some(b"{}"));
        assert_eq!(
            (s, serde_json::from_slice::<Value>(&r).unwrap()["code"].clone()),
            (400, json!("bad_query")),
            "{bad}"
        );
    }
    let mut tampered = bundle.clone();
    let first = tampered["entries"][0]["entry"].as_str().unwrap();
    let mut raw = zachetka::keys::b64_decode(first).unwrap();
    let at = raw.len() / 2;
    raw[at] ^= 0x02;
    tampered["entries"][0]["entry"] = json!(zachetka::keys::b64(&raw));
    let (s, report) = call(ureq::post(&verify_url), Some(&serde_json::to_vec(&tampered).unwrap()));
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((s, report["ok"].clone()), (200, json!(false)));
    assert_eq!(report["failures"][0]["seq"], bundle["entries"][0]["seq"], "{report}");
    let huge = vec![b' '; zachetka::api::VERIFY_BODY_BYTES_MAX + 1];
    let (s, r) = call(ureq::post(&verify_url), Some(&huge));
    assert_eq!((s, serde_json::from_slice::<Value>(&r).unwrap()["code"].clone()), (413, json!("body_too_large")));
}

/// Review s9, finding 15: `POST /v1/verify` with a body that is not a record bundle at all is
/// a 400 refusal `bundle_malformed` (`{"code","message"}`), not a 200 report about a learner
/// with no name; a bundle that parses but fails its checks is still a 200 report.
#[test]
fn posting_what_is_not_a_bundle_to_verify_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    let srv = serve_with(l.clone(), ServerConfig::default());
    let url = format!("{}/v1/verify", srv.base);
    let deep = "[".repeat(100_000);
    for body in ["null", "[[[[[[[[", deep.as_str(), "{}", "\"bundle\"", "{\"format\":\"zachetka-record\"}"] {
        let (s, answer) = call(ureq::post(&url), Some(body.as_bytes()));
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!((s, v["code"].as_str()), (400, Some("bundle_malformed")), "{}: {v}", &body[..body.len().min(40)]);
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with("the body is not a record bundle: "), "{message}");
        assert_eq!(v.as_object().unwrap().len(), 2, "a refusal, not a report: {v}");
    }
}

/// The binary: `export` writes the bundle, `verify` checks it (exit 0), with a consistency proof
/// to a newer checkpoint; against a checkpoint of another history it exits 1 with the reason.
#[test]
fn the_cli_exports_and_verifies_with_a_newer_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let learner;
    let (first, vk);
    {
        let l = ledger(dir.path(), RulesMode::Enforce);
        append_region(&l);
        applied(&l);
        learner = concerned_by_scan(&l).into_iter().max_by_key(|(_, s)| s.len()).unwrap().0;
        first = l.head().0.tree_size;
        vk = vkey(&l);
    }
    // `zachetka export --dir` needs the ledger directory layout of `init` (ledger.key, store/).
    let ledger_dir = tempfile::tempdir().unwrap();
    copy_into_ledger_dir(dir.path(), ledger_dir.path());
    let bin = env!("CARGO_BIN_EXE_zachetka");
    let out = ledger_dir.path().join("bundle.json");
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();
    let o = run(&[
        "export",
        "--dir",
        ledger_dir.path().to_str().unwrap(),
        "--learner",
        &learner,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["verify", out.to_str().unwrap(), "--vkey", &vk]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("VERIFIED"));
    // The same record as a W3C VC: issued by the ledger's did:key, verified by `vc verify`, its
    // evidence the bundle itself (which verifies as one).
    let vc_out = ledger_dir.path().join("record.vc.json");
    let dir_arg = ledger_dir.path().to_str().unwrap();
    let o = run(&["export", "--dir", dir_arg, "--learner", &learner, "--vc", "--out", vc_out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let credential: Value = serde_json::from_slice(&std::fs::read(&vc_out).unwrap()).unwrap();
    assert_eq!(credential["issuer"], json!(ledger_key().did()));
    assert_eq!(credential["proof"]["cryptosuite"], json!("eddsa-jcs-2022"));
    let o = run(&["vc", "verify", "--issuer", &ledger_key().did(), vc_out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let evidence = serde_json::to_vec(&credential["evidence"][0]["bundle"]).unwrap();
    assert!(verify(&evidence, &vk, &Options::default()).ok, "the evidence is the bundle, and it verifies");
    // More entries, a newer checkpoint and the consistency proof to it.
    let (note, proof) = {
        let l = ledger(&ledger_dir.path().join("store"), RulesMode::Enforce);
        assert!(l.append_blocking(vec![grade_event(980_001, &teacher_of_school_1(), "sch-001", "5А", 5)])[0].is_ok());
        let n = l.head().0.tree_size;
        let proof = json!({"first": first, "second": n, "hashes": zachetka::merkle::hashes_to_b64(&l.prove_consistency(first, n).unwrap())});
        (l.checkpoint_at(n).unwrap().unwrap(), proof)
    };
    let (cp, pf) = (ledger_dir.path().join("newer.note"), ledger_dir.path().join("proof.json"));
    std::fs::write(&cp, &note).unwrap();
    std::fs::write(&pf, proof.to_string()).unwrap();
    let args = [
        "verify",
        out.to_str().unwrap(),
        "--vkey",
        &vk,
        "--json",
        "--checkpoint",
        cp.to_str().unwrap(),
        "--consistency",
        pf.to_str().unwrap(),
    ];
    let o = run(&args);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((o.status.code(), report["ok"].clone()), (Some(0), json!(true)), "{report}");
    assert_eq!(report["consistency"]["first"], json!(first));
    // A proof that does not hold (another history's hashes) exits 1 naming the reason.
    let mut forged = proof.clone();
    forged["hashes"][0] = json!(zachetka::keys::b64(&[9; 32]));
    std::fs::write(&pf, forged.to_string()).unwrap();
    let o = run(&args);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(report["failures"][0]["code"], json!("consistency_invalid"));
    // The library path agrees.
    let bytes = std::fs::read(&out).unwrap();
    let other = OtherCheckpoint { note, proof: serde_json::from_value(proof).unwrap() };
    assert!(verify(&bytes, &vk, &Options { other: Some(other), ..Default::default() }).ok);
}

/// A bundle is judged by its ledger's own region profile: the server verifies under its config,
/// the CLI under `--region`. Here a region whose schools give no marks in any year (written with
/// the rules bypassed): its grades break its rules, so they are checked by the grant only, where
/// the default lists would pass them through the rules.
#[test]
fn a_bundle_is_verified_under_its_ledger_s_region() {
    let mut strict = zachetka::rules::default_region();
    strict["years_without_marks"] = json!((1..=11).collect::<Vec<i64>>());
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir.path()).unwrap());
    let authority = region().authority_did();
    zachetka::ledger::init_store(&*store, DEMO_ORIGIN, &ledger_key(), &authority, Some(strict.clone())).unwrap();
    let l = Ledger::open_with(store, ledger_key(), test_clock(), Limits::default(), RulesMode::Bypass).unwrap();
    append_region(&l);
    applied(&l);
    let (learner, _) = busiest(&l);
    let bytes = export_learner(&l, &learner, &Disclosure::All).unwrap().to_json();
    let no_marks =
        |r: &Report| r.authority_checked_by_grant_only.iter().filter(|g| g.reason == "no_marks_in_first_grade").count();
    let by_default = verify(&bytes, &vkey(&l), &Options::default());
    let region = zachetka::rules::region_from_json(strict.clone()).unwrap();
    let by_own = verify(&bytes, &vkey(&l), &Options { region: Some(region), ..Default::default() });
    assert!(by_default.ok && by_own.ok, "{:?} {:?}", by_default.failures, by_own.failures);
    assert_eq!(no_marks(&by_default), 0);
    assert!(no_marks(&by_own) > 0, "the learner's grades break this region's rules");
    // The server answers under its own config.
    let srv = serve_with(l.clone(), ServerConfig::default());
    let (s, served) = call(ureq::post(&format!("{}/v1/verify", srv.base)), Some(&bytes));
    let served: Value = serde_json::from_slice(&served).unwrap();
    assert_eq!((s, served), (200, serde_json::from_str::<Value>(&by_own.to_json()).unwrap()));
    // The CLI, with --region and without.
    let files = tempfile::tempdir().unwrap();
    let (bundle, region_file) = (files.path().join("bundle.json"), files.path().join("region.json"));
    std::fs::write(&bundle, &bytes).unwrap();
    std::fs::write(&region_file, strict.to_string()).unwrap();
    let run = |extra: &[&str]| {
        let vk = vkey(&l);
        let mut args = vec!["verify", bundle.to_str().unwrap(), "--vkey", &vk, "--json"];
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka")).args(&args).output().unwrap();
        (o.status.code(), serde_json::from_slice::<Value>(&o.stdout).unwrap_or(Value::Null), o.stderr)
    };
    let (code, report, _) = run(&["--region", region_file.to_str().unwrap()]);
    assert_eq!((code, report), (Some(0), serde_json::from_str::<Value>(&by_own.to_json()).unwrap()));
    let (code, report, _) = run(&[]);
    assert_eq!((code, report), (Some(0), serde_json::from_str::<Value>(&by_default.to_json()).unwrap()));
    // A region file that is not a region config is refused, naming it.
    std::fs::write(&region_file, "{\"roles\": 7}").unwrap();
    let (code, _, stderr) = run(&["--region", region_file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(code == Some(2) && stderr.contains("region.json") && stderr.contains("region config"), "{code:?} {stderr}");
}

/// The learner with the most entries, and those entries' seqs.
fn busiest(l: &Ledger) -> (String, Vec<u64>) {
    concerned_by_scan(l).into_iter().max_by_key(|(_, s)| s.len()).unwrap()
}

/// The seqs of the ledger's own completeness commitments, with their `up_to`.
fn commitments(l: &Ledger) -> Vec<(u64, u64)> {
    let did = zachetka::rules::ledger_did(l.config()).unwrap();
    let size = l.head().0.tree_size;
    let mut out = Vec::new();
    for (seq, bytes) in l.entries(0, size).unwrap().iter().enumerate() {
        let e: Value = serde_json::from_slice(bytes).unwrap();
        if e["event"]["type"] == commitment::EVENT_TYPE && e["event"]["author"] == json!(did) {
            out.push((seq as u64, e["event"]["data"]["up_to"].as_u64().unwrap()));
        }
    }
    out
}

#[test]
fn a_bundle_of_a_committing_ledger_is_complete_and_every_way_to_cut_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = committing_ledger(dir.path(), &ledger_key(), RulesMode::Enforce, Some(200));
    append_region(&l);
    settle(&l);
    let (learner, seqs) = busiest(&l);
    let (s, p) = *commitments(&l).last().expect("the policy committed");
    let b = export_learner(&l, &learner, &Disclosure::All).unwrap();
    let member = b.completeness.as_ref().expect("a commitment below the checkpoint");
    assert_eq!((member.commitment.seq, member.up_to), (s, p), "the latest commitment");
    let r = verify(&b.to_json(), &vkey(&l), &Options::default());
    assert!(r.ok, "{:#?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    let below = seqs.iter().filter(|q| **q < p).count();
    assert!(below > 3, "the learner has entries the commitment covers");
    // The region's last entries came after the commitment: complete up to P only.
    assert!(r.tree_size.unwrap() > p + 1);
    assert_eq!((c.status, c.up_to, c.commitment_seq), ("complete_up_to", Some(p), Some(s)));
    assert_eq!((c.covered, c.covered_withheld, c.after), (Some(below as u64), Some(0), Some(seqs.len() - below)));
    assert_eq!(c.uncovered_positions, Some(r.tree_size.unwrap() - p));
    assert!(r.to_text().contains(&format!(
        "completeness: complete up to position {p} (commitment at seq {s}): covers {below} entries"
    )));

    // Withheld entries count: the same value, from their leaf hashes.
    let d = Disclosure::parse("final-results,documents,achievements").unwrap();
    let sel = export_learner(&l, &learner, &d).unwrap();
    let r = verify(&sel.to_json(), &vkey(&l), &Options::default());
    assert!(r.ok, "{:#?}", r.failures);
    let c = r.completeness.as_ref().unwrap();
    let withheld_below = sel.entries.iter().filter(|i| i.leaf_hash.is_some() && i.seq < p).count();
    assert!(withheld_below > 0);
    assert_eq!((c.status, c.covered, c.covered_withheld), ("complete_up_to", Some(below as u64), Some(withheld_below)));

    let refuse = |b: &Bundle| verify(&b.to_json(), &vkey(&l), &Options::default());
    // An entry below P dropped entirely (no leaf hash left): the value does not match.
    for at in [0, below / 2, below - 1] {
        let mut cut = b.clone();
        let gone = cut.entries.remove(at).seq;
        let r = refuse(&cut);
        assert!(has(&r, "completeness_value_mismatch"), "entry {gone}: {:#?}", r.failures);
    }
    // A changed value: neither the items nor the map proof agree with it.
    let mut v = b.clone();
    v.completeness.as_mut().unwrap().value.count -= 1;
    let r = refuse(&v);
    assert_eq!(codes(&r), vec![("completeness_value_mismatch", None), ("map_proof_invalid", None)]);
    // A forged map proof: one path hash changed.
    let mut m = b.clone();
    m.completeness.as_mut().unwrap().map_proof["present"]["hashes"][0] = json!(zachetka::keys::b64(&[7; 32]));
    let r = refuse(&m);
    assert_eq!(codes(&r), vec![("map_proof_invalid", None)]);
    assert_eq!(r.completeness.as_ref().unwrap().status, "failed");

    // Through the binary: the report as JSON, and the freshness bound as a flag.
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, b.to_json()).unwrap();
    let bin = env!("CARGO_BIN_EXE_zachetka");
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(bin)
            .args(["verify", file.to_str().unwrap(), "--vkey", &vkey(&l), "--json"])
            .args(extra)
            .output()
            .unwrap();
        (o.status.code(), serde_json::from_slice::<Value>(&o.stdout).unwrap())
    };
    let (status, report) = run(&["--require-complete"]);
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(report["completeness"]["status"], "complete_up_to");
    assert_eq!(report["completeness"]["up_to"], json!(p));
    assert_eq!(report["completeness"]["commitment_seq"], json!(s));
    assert_eq!(report["completeness"]["covered"], json!(below));
    assert_eq!(report["completeness"]["max_uncovered"], json!(zachetka_record::MAX_UNCOVERED_DEFAULT));
    let n = report["tree_size"].as_u64().unwrap();
    let (status, report) = run(&["--max-uncovered", &(n - p - 1).to_string()]);
    assert_eq!(status, Some(1), "{report}");
    assert_eq!(report["failures"][0]["code"], "completeness_stale");
    std::fs::write(&file, v.to_json()).unwrap();
    let (status, report) = run(&[]);
    assert_eq!((status, report["failures"][0]["code"].clone()), (Some(1), json!("completeness_value_mismatch")));
}

/// A learner of 5А at sch-001, and a maker of events on their stream signed by sch-001's
/// portfolio issuer after the demo region's setup: `event(n, type, data)`.
fn issuer_events() -> (String, impl Fn(u64, &str, Value) -> Value) {
    let issuer = zachetka::demo::demo_key(DEMO_ORIGIN, "issuer/sch-001");
    let stream = super::rules::learner_in("sch-001", "5А");
    let learner = stream.strip_prefix("learner/").unwrap().to_owned();
    let event = move |n: u64, ty: &str, data: Value| {
        let ev = json!({"ledger": DEMO_ORIGIN, "stream": stream, "type": ty, "id": id(n),
            "occurred_at": super::rules::AFTER_REGION, "author": issuer.did(), "data": data});
        zachetka::event::sign_event(&ev, &issuer).unwrap()
    };
    (learner, event)
}

#[test]
fn an_old_commitment_hiding_a_later_revocation_is_refused_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let l = committing_ledger(dir.path(), &ledger_key(), RulesMode::Enforce, Some(200));
    append_region(&l);
    let (learner, event) = issuer_events();
    let attested = event(
        990_001,
        "portfolio.achievement_attested",
        json!({"v": 1, "achievement_id": "sch-001-ach-x", "kind": "sport", "level": "school", "date": "2027-05-19", "result": "winner"}),
    );
    assert!(l.append_blocking(vec![attested])[0].is_ok());
    // Enough after it for a commitment that covers the attestation.
    let noise = |from: u64, n: u64| -> Vec<Value> {
        (0..n).map(|i| grade_event(from + i, &teacher_of_school_1(), "sch-001", "6А", 4)).collect()
    };
    for r in l.append_blocking(noise(991_000, 250)) {
        r.unwrap();
    }
    settle(&l);
    let (old_s, old_p) = *commitments(&l).last().unwrap();
    let revoked = event(
        990_002,
        "portfolio.achievement_revoked",
        json!({"v": 1, "achievement_id": "sch-001-ach-x", "reason": "disqualified"}),
    );
    let revoked_seq = l.append_blocking(vec![revoked])[0].as_ref().unwrap().seq;
    assert!(revoked_seq >= old_p);
    for r in l.append_blocking(noise(992_000, 500)) {
        r.unwrap();
    }
    settle(&l);
    let bound = Options { max_uncovered: Some(400), ..Default::default() };

    // The honest bundle: the latest commitment covers the revocation; the achievement shows revoked.
    let honest = export_learner(&l, &learner, &Disclosure::All).unwrap();
    assert!(honest.completeness.as_ref().unwrap().up_to > revoked_seq);
    let r = verify(&honest.to_json(), &vkey(&l), &bound);
    assert!(r.ok, "{:#?}", r.failures);
    let ach = r.record.achievements.iter().find(|a| a["achievement_id"] == "sch-001-ach-x").unwrap();
    assert_eq!(ach["revoked"], json!(true));

    // The dishonest exporter: the commitment before the revocation (proved in the same
    // checkpoint, its value and map proof from the read side), the revocation left out.
    let n = r.tree_size.unwrap();
    let old = l.read_side().completeness_for(&learner, old_s + 1).unwrap().unwrap();
    assert_eq!((old.commitment_seq, old.up_to), (old_s, old_p));
    let mut hidden = honest.clone();
    hidden.entries.retain(|i| i.seq != revoked_seq);
    hidden.completeness = Some(zachetka_record::CompletenessMember {
        commitment: zachetka_record::Item::disclosed(
            old_s,
            &l.entries(old_s, 1).unwrap()[0],
            &l.prove_inclusion(old_s, n).unwrap(),
        ),
        up_to: old_p,
        value: old.value.into(),
        map_proof: serde_json::to_value(&old.map_proof).unwrap(),
    });
    let r = verify(&hidden.to_json(), &vkey(&l), &bound);
    assert_eq!(codes(&r), vec![("completeness_stale", None)], "{:#?}", r.failures);
    assert!(r.failures[0]
        .message
        .contains(&format!("{} positions are not covered, more than the bound 400", n - old_p)));
    let ach = r.record.achievements.iter().find(|a| a["achievement_id"] == "sch-001-ach-x").unwrap();
    assert_eq!(ach["revoked"], json!(false), "what the stale bundle would have shown");
    // Everything else about it holds: under a bound that lets it through, it verifies.
    assert!(verify(&hidden.to_json(), &vkey(&l), &Options { max_uncovered: Some(n), ..Default::default() }).ok);
    // The default bound is documented as twice the default policy.
    assert_eq!(zachetka_record::MAX_UNCOVERED_DEFAULT, 2 * CompletenessPolicy::default().every_entries);
}

#[test]
fn a_commitment_by_another_key_or_of_another_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (learner, b, vk);
    {
        let l = committing_ledger(dir.path(), &ledger_key(), RulesMode::Enforce, Some(200));
        append_region(&l);
        settle(&l);
        learner = busiest(&l).0;
        b = export_learner(&l, &learner, &Disclosure::All).unwrap();
        vk = vkey(&l);
        assert!(verify(&b.to_json(), &vk, &Options::default()).ok);
    }
    // Written around the rules: a commitment by another key whose map leaves out the learner's
    // last entry, and a bundle without it that cites that commitment. Every other check holds.
    let l = committing_ledger(dir.path(), &ledger_key(), RulesMode::Bypass, None);
    let forger = KeyPair::from_seed(&[0x66; 32]);
    let mut cut = b.clone();
    let last = cut.entries.pop().unwrap();
    assert!(last.seq < l.head().0.tree_size);
    let leaves: Vec<[u8; 32]> = cut
        .entries
        .iter()
        .map(|i| zachetka::merkle::leaf_hash(&zachetka::keys::b64_decode(i.entry.as_ref().unwrap()).unwrap()).0)
        .collect();
    let value = LearnerValue::of_leaves(leaves.iter());
    let map = Map::from_values([(learner.as_str(), value)]);
    let up_to = l.head().0.tree_size;
    let forged = json!({"ledger": DEMO_ORIGIN, "stream": commitment::STREAM, "type": commitment::EVENT_TYPE,
        "id": id(995_001), "occurred_at": super::rules::AFTER_REGION, "author": forger.did(),
        "data": commitment::event_data(up_to, &map.root(), map.len())});
    let s = l.append_blocking(vec![zachetka::event::sign_event(&forged, &forger).unwrap()])[0].as_ref().unwrap().seq;
    settle(&l);
    let n = l.head().0.tree_size;
    let fresh = export_learner(&l, &learner, &Disclosure::All).unwrap();
    assert_ne!(fresh.completeness.as_ref().unwrap().commitment.seq, s, "the exporter offers only the ledger key's");
    let mut forged_bundle = fresh.clone();
    forged_bundle.entries.retain(|i| i.seq != last.seq);
    forged_bundle.completeness = Some(zachetka_record::CompletenessMember {
        commitment: zachetka_record::Item::disclosed(
            s,
            &l.entries(s, 1).unwrap()[0],
            &l.prove_inclusion(s, n).unwrap(),
        ),
        up_to,
        value: value.into(),
        map_proof: serde_json::to_value(map.prove(&learner).1).unwrap(),
    });
    let r = verify(&forged_bundle.to_json(), &vk, &Options::default());
    assert_eq!(codes(&r), vec![("completeness_commitment_invalid", Some(s))], "{:#?}", r.failures);
    assert!(r.failures[0].message.contains(&format!("its author {} is not the ledger key", forger.did())));

    // Another ledger (same origin and region, its own key): its commitment, with its proof in
    // its own checkpoint, in this ledger's bundle.
    let other_dir = tempfile::tempdir().unwrap();
    let other_key = KeyPair::from_seed(&[0x55; 32]);
    let other = committing_ledger(other_dir.path(), &other_key, RulesMode::Enforce, Some(200));
    append_region(&other);
    settle(&other);
    let theirs = export_learner(&other, &learner, &Disclosure::All).unwrap().completeness.unwrap();
    let mut mixed = fresh.clone();
    let theirs_seq = theirs.commitment.seq;
    mixed.completeness = Some(theirs);
    let r = verify(&mixed.to_json(), &vk, &Options::default());
    assert!(!r.ok);
    assert!(r.failures.iter().any(|f| f.code == "proof_invalid" && f.seq == Some(theirs_seq)), "{:#?}", r.failures);
    assert!(r.failures.iter().any(|f| f.code == "completeness_commitment_invalid" && f.seq == Some(theirs_seq)));
}

/// Lays out a ledger directory as `zachetka init` does: the store in `store/`, `ledger.key`.
pub(super) fn copy_into_ledger_dir(store: &std::path::Path, to: &std::path::Path) {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    copy(store, &to.join("store"));
    std::fs::write(to.join("ledger.key"), ledger_key().to_key_file()).unwrap();
}

/// Review s11, finding 2: the record the server exports with only the attestations chosen
/// carries the revocation of a disclosed one, and `POST /v1/verify` shows it revoked; the same
/// bundle with the revocation turned into a withheld item by its holder verifies, but the
/// achievement's revocation status is then unknown, never "not revoked".
#[test]
fn the_served_record_of_an_attestation_carries_its_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    append_region(&l);
    let (learner, event) = issuer_events();
    let attested = event(
        990_101,
        "portfolio.achievement_attested",
        json!({"v": 1, "achievement_id": "sch-001-ach-r", "kind": "sport", "level": "school", "date": "2027-05-19", "result": "winner"}),
    );
    let revoked = event(
        990_102,
        "portfolio.achievement_revoked",
        json!({"v": 1, "achievement_id": "sch-001-ach-r", "reason": "disqualified"}),
    );
    let seqs: Vec<u64> = l.append_blocking(vec![attested, revoked]).into_iter().map(|r| r.unwrap().seq).collect();
    applied(&l);
    let srv = serve_with(l.clone(), ServerConfig::default());
    let token = learner_token(&srv, &learner, 0x43);
    let url = format!("{}/v1/learners/{learner}/record?only=portfolio.achievement_attested", srv.base);
    let (s, body) = call(ureq::get(&url).set("authorization", &token), None);
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let bundle: Value = serde_json::from_slice(&body).unwrap();
    let items = bundle["entries"].as_array().unwrap();
    let item = |seq: u64| items.iter().find(|i| i["seq"] == seq).unwrap().clone();
    assert!(item(seqs[0]).get("entry").is_some(), "the attestation is disclosed");
    assert!(item(seqs[1]).get("entry").is_some(), "the revocation is withheld: {}", item(seqs[1]));
    assert!(items.iter().any(|i| i.get("leaf_hash").is_some()), "the rest is withheld");
    let verify_url = format!("{}/v1/verify", srv.base);
    let achievement = |report: &Value| -> Value {
        let all = report["record"]["achievements"].as_array().unwrap();
        all.iter().find(|a| a["achievement_id"] == "sch-001-ach-r").unwrap().clone()
    };
    let (s, report) = call(ureq::post(&verify_url), Some(&body));
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((s, report["ok"].clone()), (200, json!(true)), "{report}");
    let ach = achievement(&report);
    assert_eq!(ach["revoked"], json!(true), "{ach}");

    // The holder withholds the revocation: it still verifies, the status is unknown.
    let mut held = bundle.clone();
    let at = held["entries"].as_array().unwrap().iter().position(|i| i["seq"] == seqs[1]).unwrap();
    let bytes = zachetka::keys::b64_decode(held["entries"][at]["entry"].as_str().unwrap()).unwrap();
    let leaf = zachetka::event::leaf_hash(&bytes);
    held["entries"][at] =
        json!({"seq": seqs[1], "leaf_hash": zachetka::keys::b64(&leaf.0), "proof": held["entries"][at]["proof"]});
    let (s, report) = call(ureq::post(&verify_url), Some(&serde_json::to_vec(&held).unwrap()));
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((s, report["ok"].clone()), (200, json!(true)), "{report}");
    let ach = achievement(&report);
    assert_eq!(ach["revoked"], Value::Null, "{ach}");
    assert!(ach["revoked_unknown"].as_str().unwrap().contains("may revoke it"), "{ach}");
}

/// A result revised by a correction (the demo revises some second-term grades on appeal): the
/// report carried the result as first recorded, and nothing said it had been corrected. Now a
/// result a correction may name carries `corrected` and its disclosed corrections, the latest
/// being its current value; withheld by its holder, the correction leaves the status unknown.
#[test]
fn a_corrected_result_is_reported_with_its_correction_and_unknown_when_it_is_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path(), RulesMode::Enforce);
    append_region(&l);
    applied(&l);
    // A correction of a term grade, found in the log (not by the exporter or the verifier).
    let n = l.head().0.tree_size;
    let events: Vec<(u64, Value)> = (l.entries(0, n).unwrap().iter().enumerate())
        .map(|(seq, b)| (seq as u64, serde_json::from_slice::<Value>(b).unwrap()["event"].clone()))
        .collect();
    let by_id: BTreeMap<&str, (u64, &Value)> =
        events.iter().map(|(s, e)| (e["id"].as_str().unwrap(), (*s, e))).collect();
    let (fix_seq, fix, (grade_seq, grade)) = events
        .iter()
        .filter(|(_, e)| e["type"] == "journal.record_corrected")
        .find_map(|(s, e)| {
            let target = by_id[e["data"]["corrected_event_id"].as_str().unwrap()];
            (target.1["type"] == "journal.term_grade_set").then_some((*s, e, target))
        })
        .expect("the demo region revises a term grade");
    let learner = grade["stream"].as_str().unwrap().strip_prefix("learner/").unwrap().to_owned();
    let only = Disclosure::parse("final-results").unwrap();
    let bundle = export_learner(&l, &learner, &only).unwrap();
    let result_of = |b: &Bundle| -> (Report, Value) {
        let r = verify(&b.to_json(), &vkey(&l), &Options::default());
        assert!(r.ok, "{:#?}", r.failures);
        let item = r.record.results.iter().find(|x| x["seq"] == grade_seq).cloned().unwrap();
        (r, item)
    };
    let (r, item) = result_of(&bundle);
    assert_eq!(item["corrected"], json!(true), "{item:#}");
    let want =
        json!([{"seq": fix_seq, "mark": fix["data"]["mark"], "scale": "five_point", "reason": fix["data"]["reason"]}]);
    assert_eq!(item["corrections"], want, "{item:#}");
    assert_eq!(item["mark"], grade["data"]["mark"], "the result as recorded stays beside it");
    let text = r.to_text();
    assert!(
        text.contains(&format!(
            "corrected=true (1 correction; now, since seq {fix_seq}: mark={} scale=five_point reason=",
            fix["data"]["mark"]
        )),
        "{text}"
    );
    // Not correctable: a promotion has no correction status.
    assert!(r.record.results.iter().filter(|x| x["type"] == "journal.promoted").all(|x| x.get("corrected").is_none()));

    // The holder withholds the correction: it still verifies; the value is unknown.
    let mut held = bundle.clone();
    let at = held.entries.iter().position(|i| i.seq == fix_seq).unwrap();
    let leaf = zachetka::merkle::leaf_hash(&l.entries(fix_seq, 1).unwrap()[0]);
    let proof = l.prove_inclusion(fix_seq, r.tree_size.unwrap()).unwrap();
    held.entries[at] = zachetka_record::Item::withheld(fix_seq, &leaf, &proof);
    let (r, item) = result_of(&held);
    assert_eq!(item["corrected"], Value::Null, "{item:#}");
    let later = held.entries.iter().filter(|i| i.seq > grade_seq && i.entry.is_none()).count();
    let why = match later {
        1 => "1 withheld entry of the learner comes after it; it may correct it".to_owned(),
        n => format!("{n} withheld entries of the learner come after it; one of them may correct it"),
    };
    assert_eq!(item["corrected_unknown"], json!(why));
    assert!(r.to_text().contains(&format!("corrected=unknown ({why})")));

    // Everything disclosed: the other correctable results are "not corrected".
    let (r, _) = result_of(&export_learner(&l, &learner, &Disclosure::All).unwrap());
    let others: Vec<&Value> =
        r.record.results.iter().filter(|x| x["seq"] != grade_seq && x.get("corrected").is_some()).collect();
    assert!(!others.is_empty());
    assert!(
        others.iter().all(|x| x["corrected"] == json!(false) && x.get("corrected_unknown").is_none()),
        "{others:#?}"
    );
}
