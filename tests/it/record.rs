//! The learner record bundle end to end over a demo region ledger: the exporter finds exactly
//! the entries `Concerns` says concern a learner (checked against a fold of the whole log), the
//! bundle verifies offline, selective disclosure withholds by hash, a grade written around the
//! rules by a revoked key is refused with `key_revoked`; over HTTP the record is served to the
//! learner's own token only (403 to another learner's, 401 without) and `POST /v1/verify`
//! answers the report, refusing a body over its limit; and through the binary, `export` then
//! `verify` with a consistency proof to a newer checkpoint.

use super::http::{serve_with, Server};
use super::rules::{append_region, grade_event, region, teacher_of_school_1, DEMO_ORIGIN};
use super::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use zachetka::access::{create_token, Role, Scope, TokenSecret};
use zachetka::api::server::ServerConfig;
use zachetka::ledger::{Ledger, Limits, RulesMode};
use zachetka::record::{export_learner, verify, Disclosure, Options, OtherCheckpoint};
use zachetka_projections::model::ParsedFact;
use zachetka_projections::models::concerns::Concerns;

fn ledger(dir: &std::path::Path, mode: RulesMode) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    if store.config().unwrap().is_none() {
        let authority = region().authority_did();
        let rules = Some(zachetka::rules::default_region());
        zachetka::ledger::init_store(&*store, DEMO_ORIGIN, &ledger_key(), &authority, rules).unwrap();
    }
    let clock = test_clock();
    Ledger::open_with(store, ledger_key(), clock, Limits::default(), mode).unwrap()
}

fn vkey(l: &Ledger) -> String {
    l.config().verifier_key.clone()
}

/// Learner -> the seqs that concern them, by a fold of the whole log (the one definition).
fn concerned_by_scan(l: &Ledger) -> BTreeMap<String, Vec<u64>> {
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

fn applied(l: &Ledger) {
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

/// Lays out a ledger directory as `zachetka init` does: the store in `store/`, `ledger.key`.
fn copy_into_ledger_dir(store: &std::path::Path, to: &std::path::Path) {
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
