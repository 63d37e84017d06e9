//! The education rules on the append path and in the audit: the same decisions, with the same
//! codes. An operator who writes around the rules (here: a ledger opened in bypass mode) gets
//! exactly the refused events in, and the audit names each one with the code the API gave.

use super::support::*;
use serde_json::{json, Value};
use std::sync::Arc;
use zachetka::audit::{audit, Position};
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::ledger::{Ledger, Limits, RulesMode};
use zachetka::refusal::{Code, RuleKind};

pub(super) const DEMO_ORIGIN: &str = ORIGIN;

pub(super) fn region() -> DemoRegion {
    DemoRegion::new(DEMO_ORIGIN, DemoSize { learners: 200, teachers: 40, events: 300 })
}

/// A ledger enforcing the default education rules, with the demo region's set-up and journal.
pub(super) fn education_ledger(dir: &std::path::Path, mode: RulesMode) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    if store.config().unwrap().is_none() {
        let authority = region().authority_did();
        zachetka::ledger::init_store(
            &*store,
            DEMO_ORIGIN,
            &ledger_key(),
            &authority,
            Some(zachetka::rules::default_region()),
        )
        .unwrap();
    }
    Ledger::open_with(store, ledger_key(), test_clock(), Limits::default(), mode).unwrap()
}

/// The audit's violations of the ledger in `dir`, as (seq, code); any other position fails.
fn entry_violations(dir: &std::path::Path) -> Vec<(u64, &'static str)> {
    let store = zachetka::store::sled::SledStore::open(dir).unwrap();
    let report = audit(&store, &|_, _| {}).unwrap();
    report
        .violations
        .iter()
        .map(|v| match v.position {
            Position::Entry { seq } => (seq, v.code),
            ref other => panic!("unexpected violation at {other}: {v:?}"),
        })
        .collect()
}

/// The time of the events a test writes after the demo region is appended (the ledger's clock is
/// set to it): a school day of the region's year, when the demo's learners are enrolled in their
/// classes (marks need enrolment; the demo's year ends in June).
pub(super) const AFTER_REGION: &str = "2027-05-20T09:00:00Z";

/// A time after the demo region's whole year (its main kindergarten allocation is over, so the
/// queue is not frozen), for tests that append all of it (`append_region_until`).
pub(super) const AFTER_YEAR: &str = "2027-09-01T09:00:00Z";

/// Appends the demo region as a ledger living through its year holds it at `AFTER_REGION`
/// (recorded as lived, see `append_demo_batch`: every day before that time), then sets the test's
/// ledger clock to `AFTER_REGION`; every event must be accepted. Ledger time never runs
/// backwards, so what a test writes "after the region" must come after everything appended.
pub(super) fn append_region(ledger: &Ledger) {
    append_region_until(ledger, AFTER_REGION);
}

/// `append_region` with another time than `AFTER_REGION` (the region's days up to `at`, then the
/// clock at `at`).
pub(super) fn append_region_until(ledger: &Ledger, at: &str) {
    let until = zachetka::time::parse_rfc3339(at).unwrap();
    let mut region = region();
    loop {
        let batch = region.next_batch(500);
        match zachetka::demo::DemoRegion::recorded_at_of(&batch) {
            Some(at) if at <= until => append_demo_batch(ledger, batch),
            _ => break,
        }
    }
    pin_clock_at(at);
    // Marks are given at a lesson: the lesson `grade_event`'s marks are given at, in every class.
    let lessons = lessons_of_grade_events(at);
    for r in ledger.append_blocking(lessons) {
        r.expect("a lesson after the region is accepted");
    }
}

/// The Физика lesson of 2027-05-20 (`grade_event`'s lesson) in every class of both schools of
/// `region()`, written by a teacher of each school at `at`.
pub(super) fn lessons_of_grade_events(at: &str) -> Vec<Value> {
    let mut events = Vec::new();
    for school in 0..2u64 {
        // Teacher `school` works in school `school` (teacher i is in school i % 2).
        let key = zachetka::demo::demo_key(DEMO_ORIGIN, &format!("teacher/{school}"));
        for year in 1..=11 {
            for letter in ["А", "Б", "В"] {
                let n = 940_000 + events.len() as u64;
                let ev = json!({"ledger": DEMO_ORIGIN, "stream": format!("institution/sch-00{}", school + 1),
                    "type": "journal.lesson_held", "id": id(n), "occurred_at": at, "author": key.did(),
                    "data": {"v": 1, "lesson_id": format!("after-{n}"), "class": format!("{year}{letter}"),
                             "subject": "Физика", "lesson_date": "2027-05-20"}});
                events.push(zachetka::event::sign_event(&ev, &key).unwrap());
            }
        }
    }
    events
}

pub(super) fn teacher_of_school_1() -> zachetka::keys::KeyPair {
    // Teacher 0 is granted in sch-001 (teacher i is in school i % schools + 1; 40 teachers, 2 schools).
    zachetka::demo::demo_key(DEMO_ORIGIN, "teacher/0")
}

/// The stream of the demo learner enrolled in `class` (`<year><letter>`) of `institution`
/// (`sch-00<s>`) in `region()`: learner `n` is in school `n % 2`, year `1 + n / 2 % 11`, letter
/// `n / 22 % 3` (the demo's `Pupil::of` with 2 schools). Marks need enrolment.
pub(super) fn learner_in(institution: &str, class: &str) -> String {
    let school: u64 = institution[4..].parse::<u64>().unwrap() - 1;
    let digits: String = class.chars().take_while(char::is_ascii_digit).collect();
    let year: u64 = digits.parse().unwrap();
    let letter = ["А", "Б", "В"].iter().position(|l| class.ends_with(l)).unwrap() as u64;
    format!("learner/47-{:06}", school + 2 * ((year - 1) + 11 * letter))
}

pub(super) fn grade_event(n: u64, key: &zachetka::keys::KeyPair, institution: &str, class: &str, mark: i64) -> Value {
    grade_event_in(n, key, institution, class, mark, &learner_in(institution, class))
}

/// `grade_event` in the stream of `learner`, enrolled there or not.
pub(super) fn grade_event_in(
    n: u64,
    key: &zachetka::keys::KeyPair,
    institution: &str,
    class: &str,
    mark: i64,
    learner: &str,
) -> Value {
    let ev = json!({"ledger": DEMO_ORIGIN, "stream": learner, "type": "journal.grade_recorded", "id": id(n),
        "occurred_at": AFTER_REGION, "author": key.did(),
        "data": {"v": 1, "institution": institution, "class": class, "subject": "Физика", "mark": mark,
                 "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": "2027-05-20"}});
    zachetka::event::sign_event(&ev, key).unwrap()
}

/// Events the rules refuse, each with the code the API must give.
pub(super) fn mutations() -> Vec<(Value, &'static str)> {
    let t = teacher_of_school_1();
    let stranger = zachetka::keys::KeyPair::from_seed(&[0x77; 32]);
    vec![
        (grade_event(900_001, &stranger, "sch-001", "5А", 5), "key_unknown"),
        (grade_event(900_002, &t, "sch-002", "5А", 5), "not_authorized"),
        (grade_event(900_003, &t, "sch-001", "5А", 7), "grade_out_of_scale"),
        (grade_event(900_004, &t, "sch-001", "1А", 4), "no_marks_in_first_grade"),
        (grade_event_in(900_005, &t, "sch-001", "5А", 4, &learner_in("sch-001", "6А")), "learner_not_enrolled"),
    ]
}

#[test]
fn the_demo_region_passes_the_rules_and_refusals_carry_rule_codes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = education_ledger(dir.path(), RulesMode::Enforce);
    append_region(&ledger);
    assert!(ledger.append_blocking(vec![grade_event(1, &teacher_of_school_1(), "sch-001", "5А", 5)])[0].is_ok());
    for (ev, code) in mutations() {
        let r = ledger.append_blocking(vec![ev]);
        let refusal = r[0].as_ref().unwrap_err();
        assert!(matches!(refusal.code, Code::Rule(c, _) if c == code), "{refusal}");
        assert_eq!(refusal.code.as_str(), code);
        let status = refusal.code.http_status();
        assert_eq!(status, if code == "key_unknown" || code == "not_authorized" { 403 } else { 422 }, "{code}");
        assert_eq!(serde_json::to_value(refusal).unwrap()["code"], json!(code));
    }
    // A type's data missing a field is the envelope parser's `event_malformed`, with its one
    // status (400), not a rule invariant's 422.
    let mut ev = grade_event(900_006, &teacher_of_school_1(), "sch-001", "5А", 5)["event"].clone();
    ev["data"].as_object_mut().unwrap().remove("institution");
    let ev = zachetka::event::sign_event(&ev, &teacher_of_school_1()).unwrap();
    let refusal = ledger.append_blocking(vec![ev]).remove(0).unwrap_err();
    assert_eq!((refusal.code, refusal.code.http_status()), (Code::EventMalformed, 400), "{refusal}");
    let report = audit(&**ledger.store(), &|_, _| {}).unwrap();
    assert!(report.rules_replayed);
    assert!(report.is_clean(), "{:#?}", report.violations);
}

#[test]
fn the_audit_catches_what_an_operator_writes_around_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let ledger = education_ledger(dir.path(), RulesMode::Enforce);
        append_region(&ledger);
        // The API refuses each mutation...
        for (ev, code) in mutations() {
            assert_eq!(ledger.append_blocking(vec![ev])[0].as_ref().unwrap_err().code.as_str(), code);
        }
    }
    {
        // ...an operator bypassing the rules gets them in, between valid entries...
        let ledger = education_ledger(dir.path(), RulesMode::Bypass);
        for (i, (ev, code)) in mutations().into_iter().enumerate() {
            let seq = ledger.append_blocking(vec![ev])[0].as_ref().unwrap().seq;
            expected.push((seq, code));
            let ok = grade_event(800_000 + i as u64, &teacher_of_school_1(), "sch-001", "5А", 4);
            assert!(ledger.append_blocking(vec![ok])[0].is_ok());
        }
    }
    // ...and the audit names each one, at its position, with the code the API gave.
    assert_eq!(entry_violations(dir.path()), expected);
    // A ledger reopened with the rules on still opens (and the replay leaves the bad ones out).
    let ledger = education_ledger(dir.path(), RulesMode::Enforce);
    assert!(ledger.append_blocking(vec![grade_event(5, &teacher_of_school_1(), "sch-001", "5А", 3)])[0].is_ok());
}

/// Randomized histories: valid grades interleaved with mutations of five kinds (unknown key,
/// revoked key, another school, off-scale mark, a mark in 1st grade). The API refuses exactly
/// the mutations, each with its code; written around the API, the audit names exactly them, at
/// their positions, with the same codes. A failure prints its seed.
#[test]
fn randomized_mutations_append_and_audit_agree() {
    let (seed, mut next) = seeded("randomized_mutations_append_and_audit_agree");
    // 40 teachers over 2 schools: teacher i teaches in sch-00{i % 2 + 1}.
    let teacher = |i: u64| zachetka::demo::demo_key(DEMO_ORIGIN, &format!("teacher/{i}"));
    let school = |i: u64| format!("sch-{:03}", i % 2 + 1);
    let revoked = 5u64;
    let stranger = zachetka::keys::KeyPair::from_seed(&[0x5a; 32]);
    let dir = tempfile::tempdir().unwrap();
    let mut history: Vec<(Value, Option<&'static str>)> = Vec::new();
    for n in 0..80u64 {
        // Not the key this test revokes, nor the one the demo's own history revokes in December.
        let t = loop {
            let t = next(40);
            if t != revoked && t != zachetka::demo::REVOKED_TEACHER as u64 {
                break t;
            }
        };
        let class = format!("{}А", 2 + next(10));
        let event = match next(8) {
            0 => (grade_event(700_000 + n, &stranger, &school(t), &class, 4), Some("key_unknown")),
            1 => (grade_event(700_000 + n, &teacher(revoked), &school(revoked), &class, 4), Some("key_revoked")),
            2 => (grade_event(700_000 + n, &teacher(t), &school(t + 1), &class, 4), Some("not_authorized")),
            3 => (
                grade_event(700_000 + n, &teacher(t), &school(t), &class, 1 + 5 * (next(2) as i64)),
                Some("grade_out_of_scale"),
            ),
            4 => (grade_event(700_000 + n, &teacher(t), &school(t), "1Б", 3), Some("no_marks_in_first_grade")),
            _ => (grade_event(700_000 + n, &teacher(t), &school(t), &class, 2 + next(4) as i64), None),
        };
        history.push(event);
    }
    let revocation = {
        let authority = zachetka::demo::demo_key(DEMO_ORIGIN, "authority");
        let ev = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.revoked", "id": id(699_999),
            "occurred_at": "2027-05-19T00:00:00Z", "author": authority.did(),
            "data": {"v": 1, "key": teacher(revoked).did(), "reason": "уволен", "effective_at": "2027-05-19T00:00:00Z"}});
        zachetka::event::sign_event(&ev, &authority).unwrap()
    };
    // Through the API: exactly the mutations are refused, with their codes.
    {
        let ledger = education_ledger(dir.path(), RulesMode::Enforce);
        append_region(&ledger);
        assert!(ledger.append_blocking(vec![revocation])[0].is_ok());
        for (i, (ev, want)) in history.iter().enumerate() {
            let refusal = ledger.append_blocking(vec![ev.clone()]).remove(0).err();
            let got = refusal.as_ref().map(|r| r.code.as_str());
            assert_eq!(got, *want, "seed {seed}, event {i}: {refusal:?}");
        }
    }
    // Around the API: the refused ones get in too, and the audit names exactly them.
    let mut expected = Vec::new();
    {
        let ledger = education_ledger(dir.path(), RulesMode::Bypass);
        for (ev, want) in history.iter().filter(|(_, want)| want.is_some()) {
            let seq = ledger.append_blocking(vec![ev.clone()]).remove(0).unwrap().seq;
            expected.push((seq, want.unwrap()));
        }
    }
    assert_eq!(entry_violations(dir.path()), expected, "seed {seed}");
}

/// `ledger.established` must name this ledger's origin in `data.origin` (a genesis signed for
/// another region's ledger is refused, `origin_mismatch`, 422); written around the API as the
/// first entry, the audit names it, and the ledger's own genesis after it still establishes.
#[test]
fn a_genesis_naming_another_origin_is_refused_and_audited() {
    let authority = zachetka::demo::demo_key(DEMO_ORIGIN, "authority");
    let foreign = {
        let ev = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "ledger.established", "id": id(990_001),
            "occurred_at": "2026-08-01T00:00:00Z", "author": authority.did(),
            "data": {"v": 1, "origin": "ru-78.edu.example", "authority": authority.did()}});
        zachetka::event::sign_event(&ev, &authority).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    pin_clock_at("2026-08-01T00:00:00Z");
    {
        let ledger = education_ledger(dir.path(), RulesMode::Enforce);
        let refusal = ledger.append_blocking(vec![foreign.clone()]).remove(0).unwrap_err();
        assert_eq!(
            (refusal.code, refusal.code.http_status()),
            (Code::Rule("origin_mismatch", RuleKind::Invariant), 422),
            "{refusal}"
        );
        assert_eq!(ledger.head().0.tree_size, 0);
    }
    {
        let ledger = education_ledger(dir.path(), RulesMode::Bypass);
        assert_eq!(ledger.append_blocking(vec![foreign]).remove(0).unwrap().seq, 0);
        append_region(&ledger);
    }
    assert_eq!(entry_violations(dir.path()), vec![(0, "origin_mismatch")]);
}

/// A rule lookup that meets a store error decides nothing: the append answers `unavailable`
/// (503, retryable), never a rule refusal such as `corrected_event_unknown`, and once the store
/// answers again the same event is judged by the rules.
#[test]
fn a_lookup_the_store_cannot_answer_is_unavailable_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultStore::new(Arc::new(zachetka::store::sled::SledStore::open(dir.path()).unwrap())));
    store.shared.store(true, std::sync::atomic::Ordering::SeqCst);
    let authority = region().authority_did();
    let rules = Some(zachetka::rules::default_region());
    zachetka::ledger::init_store(&*store, DEMO_ORIGIN, &ledger_key(), &authority, rules).unwrap();
    let ledger =
        Ledger::open_with(store.clone(), ledger_key(), test_clock(), Limits::default(), RulesMode::Enforce).unwrap();
    append_region(&ledger);
    let t = teacher_of_school_1();
    ledger.append_blocking(vec![grade_event(1, &t, "sch-001", "5А", 5)])[0].as_ref().unwrap();
    let correction = {
        let ev = json!({"ledger": DEMO_ORIGIN, "stream": learner_in("sch-001", "5А"), "type": "journal.record_corrected",
            "id": id(2), "occurred_at": AFTER_REGION, "author": t.did(),
            "data": {"v": 1, "institution": "sch-001", "class": "5А", "corrected_event_id": id(1),
                     "reason": "typo", "authorised_by": t.did(), "mark": 4, "scale": "five_point"}});
        zachetka::event::sign_event(&ev, &t).unwrap()
    };
    // The grade is committed, so the correction's lookup goes to the store, which is away.
    store.unavailable_ids.lock().unwrap().push(id(1));
    let refusal = ledger.append_blocking(vec![correction.clone()]).remove(0).unwrap_err();
    assert_eq!((refusal.code, refusal.code.http_status()), (Code::Unavailable, 503), "{refusal}");
    assert!(refusal.code.retryable());
    // Back: the rules judge it (accepted, or refused for the authoriser; never an unknown event).
    store.unavailable_ids.lock().unwrap().clear();
    await_store_unavailable(&ledger, false, 30);
    match ledger.append_blocking(vec![correction]).remove(0) {
        Ok(_) => {}
        Err(r) => assert_eq!(r.code.as_str(), "authoriser_not_authorized", "{r}"),
    }
}

/// A commit of unknown outcome on a shared store (written, but the answer lost) makes the
/// sequencer rebuild its rule state from the store before the next batch. With snapshots it
/// starts from the newest one the store's tree vouches for and replays only the tail after it,
/// not the log; the event whose commit was unknown is then found in the log (its receipt, not a
/// second entry) and the rules go on judging.
#[test]
fn a_resync_after_a_commit_of_unknown_outcome_replays_only_the_tail_after_a_snapshot() {
    use zachetka::read::{SnapshotOptions, SnapshotPolicy};
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(FaultStore::new(Arc::new(zachetka::store::sled::SledStore::open(&dir.path().join("store")).unwrap())));
    store.shared.store(true, std::sync::atomic::Ordering::SeqCst);
    let authority = region().authority_did();
    let rules = Some(zachetka::rules::default_region());
    zachetka::ledger::init_store(&*store, DEMO_ORIGIN, &ledger_key(), &authority, rules).unwrap();
    let policy = SnapshotPolicy { every_entries: u64::MAX, every_seconds: u64::MAX, keep: 3 };
    let options = zachetka::ledger::OpenOptions {
        snapshots: Some(SnapshotOptions::in_ledger_dir(dir.path(), policy)),
        ..Default::default()
    };
    let ledger = Ledger::open_opts(store.clone(), ledger_key(), test_clock(), options).unwrap();
    append_region(&ledger);
    let at = ledger.head().0.tree_size;
    ledger.read_side().wait_applied_blocking(at);
    ledger.read_side().snapshot_now().unwrap().expect("a snapshot at the head");
    let t = teacher_of_school_1();
    for n in 1..=3 {
        ledger.append_blocking(vec![grade_event(n, &t, "sch-001", "5А", 5)])[0].as_ref().unwrap();
    }
    store.set(Fault::UnavailableAfterWrite);
    let lost = grade_event(4, &t, "sch-001", "5А", 4);
    let refusal = ledger.append_blocking(vec![lost.clone()]).remove(0).unwrap_err();
    assert_eq!(refusal.code, Code::Unavailable, "{refusal}");
    store.set(Fault::None);
    assert_eq!(ledger.resync_stats(), (0, 0), "nothing rebuilt before the next batch");
    await_store_unavailable(&ledger, false, 30);
    // The next batch resyncs: the lost answer's event is in the log (written), so it gets its
    // receipt at the position it took.
    let receipt = ledger.append_blocking(vec![lost]).remove(0).unwrap();
    assert_eq!(receipt.seq, at + 3);
    let (resyncs, replayed) = ledger.resync_stats();
    assert_eq!(resyncs, 1);
    assert_eq!(replayed, 4, "the tail after the snapshot at {at} (three grades and the lost one), not the log");
    // The rebuilt state goes on: the next grade takes the next position.
    let next = ledger.append_blocking(vec![grade_event(5, &t, "sch-001", "5А", 3)]).remove(0).unwrap();
    assert_eq!(next.seq, at + 4);
    // Without snapshots the same rebuild replays the whole log (what the snapshot saves).
    drop(ledger);
    let ledger =
        Ledger::open_with(store.clone(), ledger_key(), test_clock(), Limits::default(), RulesMode::Enforce).unwrap();
    store.set(Fault::UnavailableAfterWrite);
    let lost = grade_event(6, &t, "sch-001", "5А", 5);
    assert_eq!(ledger.append_blocking(vec![lost.clone()]).remove(0).unwrap_err().code, Code::Unavailable);
    store.set(Fault::None);
    await_store_unavailable(&ledger, false, 30);
    ledger.append_blocking(vec![lost]).remove(0).unwrap();
    assert_eq!(ledger.resync_stats(), (1, at + 6));
}

/// Ledger time and queue order, written around the API: a queue application backdated by a
/// month (the ledger orders the queue by its own time of filing, so an old `occurred_at` must
/// not get in) and a place offered to the second child in the order of a kindergarten. The API
/// refuses each with its code (`occurred_at_backdated`, `offer_out_of_order`); written with the
/// rules bypassed, the audit names each at its position with the same code.
#[test]
fn the_audit_flags_a_backdated_application_and_an_offer_out_of_order() {
    // Territory tikhvin holds kg-001 in the demo region; its operator's key.
    let operator = zachetka::demo::demo_key(DEMO_ORIGIN, "operator/tikhvin");
    let q = "queue/kg/tikhvin";
    let event = |n: u64, ty: &str, at: &str, data: Value| {
        let mut data = data;
        data["v"] = json!(zachetka_rules::schema_version(ty).unwrap());
        let ev = json!({"ledger": DEMO_ORIGIN, "stream": q, "type": ty, "id": id(n), "occurred_at": at,
            "author": operator.did(), "data": data});
        zachetka::event::sign_event(&ev, &operator).unwrap()
    };
    // Two applications of a group type nobody else waits for, filed in this order, and a place
    // of their desired year (2028: a run in September 2027 names it, the next allocation year).
    let application = |n: u64, app: &str| {
        event(
            n,
            "queue.application_submitted",
            AFTER_YEAR,
            json!({"application_id": app,
            "number": format!("47-99-{app}"), "learner": format!("47-9{n}"), "birth_month": "2025-02",
            "desired_date": "2028-09-01", "preferred": ["kg-001"], "group_type": "health"}),
        )
    };
    let setup = vec![
        application(960_001, "first"),
        application(960_002, "second"),
        event(
            960_003,
            "queue.allocation_started",
            AFTER_YEAR,
            json!({"run_id": "extra-1", "kind": "additional", "academic_year": 2028,
            "places": [{"kindergarten": "kg-001", "age_group": "3-4", "group_type": "health", "places": 1}]}),
        ),
    ];
    let skipping = event(
        960_004,
        "queue.place_offered",
        AFTER_YEAR,
        json!({"offer_id": "o-skip", "application_id": "second", "kindergarten": "kg-001"}),
    );
    let mut backdated = application(960_005, "backdated");
    backdated["event"]["occurred_at"] = json!("2027-05-01T09:00:00Z");
    let backdated = zachetka::event::sign_event(&backdated["event"], &operator).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = education_ledger(dir.path(), RulesMode::Enforce);
        append_region_until(&ledger, AFTER_YEAR);
        for ev in setup {
            ledger.append_blocking(vec![ev])[0].as_ref().unwrap();
        }
        let r = ledger.append_blocking(vec![skipping.clone()]).remove(0).unwrap_err();
        assert_eq!(r.code.as_str(), "offer_out_of_order", "{r}");
        assert!(r.message.contains("first"), "the refusal names who stands ahead: {r}");
        let r = ledger.append_blocking(vec![backdated.clone()]).remove(0).unwrap_err();
        assert_eq!(r.code.as_str(), "occurred_at_backdated", "{r}");
    }
    let mut expected = Vec::new();
    {
        let ledger = education_ledger(dir.path(), RulesMode::Bypass);
        for (ev, code) in [(skipping, "offer_out_of_order"), (backdated, "occurred_at_backdated")] {
            expected.push((ledger.append_blocking(vec![ev]).remove(0).unwrap().seq, code));
        }
    }
    assert_eq!(entry_violations(dir.path()), expected);
}
