//! Ledger time (DOMAIN "Ledger time"): the author's `occurred_at` against the ledger's
//! `recorded_at`: future skew, backdating limits per type, the queue ordered by the ledger's time
//! of filing, revocation by log position, and a migration's imports.

use crate::harness::*;
use serde_json::{json, Value};

const Q: &str = "queue/kg/tikhvin";

fn app(id: &str) -> Value {
    json!({"application_id": id, "number": format!("47-2026-{id}"), "learner": format!("47-{id}"), "birth_month": "2023-03", "desired_date": "2026-09-01", "preferred": ["kg-001"], "group_type": "general"})
}

#[test]
fn occurred_at_is_not_later_than_the_ledgers_time_plus_skew() {
    let mut h = Harness::region();
    h.recorded_at(Some("2026-09-10T09:00:00Z"));
    // Within the region's 300 seconds of skew.
    h.at("2026-09-10T09:05:00Z").ok(TEACHER, L1, "journal.grade_recorded", grade(json!({})));
    let m = h.at("2026-09-10T09:05:01Z").refused(
        "occurred_at_in_future",
        TEACHER,
        L1,
        "journal.grade_recorded",
        grade(json!({})),
    );
    assert!(m.contains("2026-09-10T09:00:00Z") && m.contains("300 seconds"), "{m}");
}

#[test]
fn backdating_is_bounded_per_event_type() {
    let mut h = Harness::region();
    h.recorded_at(Some("2026-09-10T09:00:00Z"));
    // A mark for a past lesson: within 7 days (local dates, UTC+3).
    h.at("2026-09-03T06:00:00Z").ok(TEACHER, L1, "journal.grade_recorded", grade(json!({})));
    let m = h.at("2026-09-02T20:59:59Z").refused(
        "occurred_at_backdated",
        TEACHER,
        L1,
        "journal.grade_recorded",
        grade(json!({})),
    );
    assert!(m.contains("8 days before the ledger's date 2026-09-10") && m.contains("at most 7 days"), "{m}");
    // A queue application is filed the day it is made: the same local day, or within the skew.
    h.at("2026-09-10T00:00:00Z").ok(OPERATOR, Q, "queue.application_submitted", app("a1"));
    let m = h.at("2026-09-09T20:59:00Z").refused(
        "occurred_at_backdated",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2"),
    );
    assert!(m.contains("queue.application_submitted may be backdated by at most the same day"), "{m}");
    h.recorded_at(Some("2026-09-10T21:02:00Z"));
    h.at("2026-09-10T20:58:00Z").ok(OPERATOR, Q, "queue.application_submitted", app("a3"));
    // A type not listed: the default, 30 days.
    h.recorded_at(Some("2026-10-20T09:00:00Z"));
    h.at("2026-09-20T09:00:00Z").ok(TEACHER, L1, "journal.term_grade_set", term_grade());
    h.at("2026-09-19T09:00:00Z").refused("occurred_at_backdated", TEACHER, L1, "journal.term_grade_set", term_grade());
}

fn term_grade() -> Value {
    json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "term": 1, "mark": 5, "scale": "five_point"})
}

#[test]
fn the_queue_is_ordered_by_the_ledgers_time_of_filing() {
    let mut h = Harness::region();
    // `late` claims an earlier occurred_at (within the skew), but the ledger received it later.
    h.recorded_at(Some("2026-09-10T09:00:00Z")).at("2026-09-10T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("early"));
    h.recorded_at(Some("2026-09-10T09:04:00Z")).at("2026-09-10T08:59:30Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("late"));
    let pos = |h: &Harness, id: &str| h.rules.queue_position("tikhvin", "3-4", id).unwrap();
    assert_eq!(pos(&h, "early").0, 1);
    assert_eq!(pos(&h, "late").0, 2);
    assert!(pos(&h, "late").1.iter().any(|r| r.contains("filed at 2026-09-10T09:04:00Z")), "{:?}", pos(&h, "late").1);
    h.recorded_at(Some("2026-09-10T10:00:00Z")).at("2026-09-10T10:00:00Z");
    h.ok(OPERATOR, Q, "queue.allocation_started", json!({"run_id": "r1", "kind": "main", "places": [{"kindergarten": "kg-001", "age_group": "3-4", "group_type": "general", "places": 1}]}));
    let m = h.refused(
        "offer_out_of_order",
        OPERATOR,
        Q,
        "queue.place_offered",
        json!({"offer_id": "o1", "application_id": "late", "kindergarten": "kg-001"}),
    );
    assert!(m.contains("early"), "{m}");
}

#[test]
fn a_revoked_key_writes_nothing_after_its_revocation_whatever_its_occurred_at() {
    let mut h = Harness::region();
    h.at("2026-10-01T10:00:00Z");
    h.ok(ADMIN, "registry", "keys.revoked", json!({"key": TEACHER, "reason": "left the school"}));
    // Dated before the revocation (within the backdating limit), recorded after it: refused.
    let m = h.at("2026-09-30T10:00:00Z").recorded_at(Some("2026-10-01T10:01:00Z")).refused(
        "key_revoked",
        TEACHER,
        L1,
        "journal.grade_recorded",
        grade(json!({})),
    );
    assert!(m.contains("no later entry signed by it is accepted"), "{m}");
    // A rotation too.
    h.recorded_at(None).at("2026-10-02T10:00:00Z");
    h.ok(
        CLASS_5A,
        "registry",
        "keys.rotated",
        json!({"old_key": CLASS_5A, "new_key": "did:key:z6MkClassTeacher5ANew"}),
    );
    h.at("2026-10-01T10:00:00Z").recorded_at(Some("2026-10-02T10:00:01Z"));
    h.refused("key_revoked", CLASS_5A, L1, "journal.grade_recorded", grade(json!({})));
    h.recorded_at(None).at("2026-10-02T11:00:00Z");
    let lesson = json!({"lesson_id": "l-oct", "class": "5А", "subject": "math", "lesson_date": "2026-10-01"});
    h.ok("did:key:z6MkClassTeacher5ANew", "institution/sch-001", "journal.lesson_held", lesson);
    h.ok("did:key:z6MkClassTeacher5ANew", L1, "journal.grade_recorded", grade(json!({"lesson_date": "2026-10-01"})));
    // A revocation scheduled for later takes effect when the ledger's time reaches it.
    h.recorded_at(None).at("2026-10-03T10:00:00Z");
    h.ok(
        ADMIN,
        "registry",
        "keys.revoked",
        json!({"key": TEACHER_5A, "reason": "leaves", "effective_at": "2026-10-05T00:00:00Z"}),
    );
    h.at("2026-10-04T10:00:00Z").ok(TEACHER_5A, L1, "journal.grade_recorded", grade(json!({})));
    h.at("2026-10-04T23:00:00Z").recorded_at(Some("2026-10-05T00:00:00Z"));
    h.refused("key_revoked", TEACHER_5A, L1, "journal.grade_recorded", grade(json!({})));
}

const MIGRATOR: &str = "did:key:z6MkMigrationBars";
const MIGRATOR_TEACHER_ONLY: &str = "did:key:z6MkMigrationNoRole";

fn imported(record: &str) -> Value {
    json!({"migrated_from": {"system": "BARS", "record": record}})
}

#[test]
fn a_migration_imports_history_naming_its_source() {
    let mut h = Harness::region();
    h.grant(AUTH, MIGRATOR, "p-migr", &["migration", "teacher"], json!({"institution": "sch-001"}));
    h.grant(ADMIN, MIGRATOR_TEACHER_ONLY, "p-t9", &["teacher"], json!({"institution": "sch-001"}));
    h.grant(
        AUTH,
        "did:key:z6MkMigrationQueue",
        "p-migq",
        &["migration", "queue_operator"],
        json!({"territory": "tikhvin"}),
    );
    h.recorded_at(Some("2026-10-20T09:00:00Z"));
    // A mark of 2019 from BARS: the key is judged at the ledger's time, the date stays 2019's.
    h.at("2019-03-01T09:00:00Z");
    let old = grade(imported("bars-mark-1"));
    h.ok(MIGRATOR, L1, "journal.grade_recorded", old.clone());
    // Without the migration role an import is not authorized; without the source it is backdated.
    let m = h.refused("not_authorized", MIGRATOR_TEACHER_ONLY, L1, "journal.grade_recorded", old);
    assert!(m.contains("migration role"), "{m}");
    h.refused("occurred_at_backdated", MIGRATOR, L1, "journal.grade_recorded", grade(json!({})));
    // The future-skew rule still applies to imports.
    h.at("2026-10-21T09:00:00Z").refused(
        "occurred_at_in_future",
        MIGRATOR,
        L1,
        "journal.grade_recorded",
        grade(imported("bars-mark-2")),
    );
    // Only types a migration imports carry a source; the source names system and record.
    h.at("2019-03-01T09:00:00Z");
    let m = h.refused(
        "event_malformed",
        MIGRATOR,
        L1,
        "journal.promoted",
        json!({"institution": "sch-001", "from_class": "5А", "to_class": "6А", "academic_year": 2019, "basis": "full", "migrated_from": {"system": "BARS", "record": "x"}}),
    );
    assert!(m.contains("data.migrated_from"), "{m}");
    let m = h.refused(
        "event_malformed",
        MIGRATOR,
        L1,
        "journal.grade_recorded",
        grade(json!({"migrated_from": {"system": "BARS"}})),
    );
    assert!(m.contains("data.migrated_from.record is missing"), "{m}");
    // An imported queue application keeps its original filing time in the order.
    h.recorded_at(Some("2026-10-20T09:00:00Z")).at("2026-10-20T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("live"));
    h.at("2024-05-01T09:00:00Z");
    let mut legacy = app("legacy");
    legacy["migrated_from"] = json!({"system": "СОЛО", "record": "q-77"});
    h.ok("did:key:z6MkMigrationQueue", Q, "queue.application_submitted", legacy);
    assert_eq!(h.rules.queue_position("tikhvin", "3-4", "legacy").unwrap().0, 1);
    assert_eq!(h.rules.queue_position("tikhvin", "3-4", "live").unwrap().0, 2);
}
