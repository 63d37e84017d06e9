//! A migration's imports bounded to the migration: each legacy record is imported once
//! (`import_record_repeated`), and no import is recorded at or after the region's migration
//! cutover (`migration_closed`); a config without a cutover keeps imports open.
//! Not the ledger-time rules of imports (`ledger_time.rs`) or the import tool (root crate).

use crate::harness::*;
use serde_json::{json, Value};
use zachetka_rules::RegionConfig;

const MIGRATOR: &str = "did:key:z6MkMigrationBarsSch1";
const MIGRATOR_SCH2: &str = "did:key:z6MkMigrationBarsSch2";
const QUEUE_MIGRATOR: &str = "did:key:z6MkMigrationQueueTikhvin";

fn source(system: &str, record: &str) -> Value {
    json!({"migrated_from": {"system": system, "record": record}})
}

/// The standard region under `config`, with migration keys for both schools.
fn migrating(config: RegionConfig) -> Harness {
    let mut h = Harness::region_with(config);
    h.grant(AUTH, MIGRATOR, "p-migr1", &["migration", "teacher"], json!({"institution": "sch-001"}));
    h.grant(AUTH, MIGRATOR_SCH2, "p-migr2", &["migration", "registrar"], json!({"institution": "sch-002"}));
    h
}

#[test]
fn a_legacy_record_is_imported_once() {
    let mut h = migrating(RegionConfig::default());
    h.recorded_at(Some("2026-10-20T09:00:00Z")).at("2026-09-01T09:00:00Z");
    let first = h.ok(MIGRATOR, L1, "journal.grade_recorded", grade(source("BARS", "sch-005/000014/2025/0/t1")));
    let seq = h.seq - 1;
    // The same record again, for another learner with another mark: refused, naming the entry.
    let m = h.refused(
        "import_record_repeated",
        MIGRATOR,
        L2,
        "journal.grade_recorded",
        grade(merge_into(source("BARS", "sch-005/000014/2025/0/t1"), json!({"mark": 3}))),
    );
    assert!(m.contains("sch-005/000014/2025/0/t1") && m.contains(&format!("entry {seq}")), "{m}");
    assert!(!first.is_empty());
    // The system's name in another case is the same system.
    h.refused(
        "import_record_repeated",
        MIGRATOR,
        L2,
        "journal.grade_recorded",
        grade(source("bars", "sch-005/000014/2025/0/t1")),
    );
    // Another record, or the same record id of another system, is another record.
    h.ok(MIGRATOR, L2, "journal.grade_recorded", grade(source("BARS", "sch-005/000014/2025/0/t2")));
    h.ok(
        MIGRATOR,
        L2,
        "journal.attendance_marked",
        merge_into(
            source("СОЛО", "sch-005/000014/2025/0/t1"),
            json!({"institution": "sch-001", "class": "5А", "lesson_date": "2026-09-01", "code": "Н"}),
        ),
    );
    // Across event types and keys too: a record names one entry whatever it became.
    let admission = merge_into(
        source("BARS", "sch-005/000014/2025/0/t2"),
        json!({"institution": "sch-002", "class": "7Б", "academic_year": 2025, "admitted_on": "2025-09-01", "order_ref": "o-1"}),
    );
    h.refused("import_record_repeated", MIGRATOR_SCH2, "learner/47-000077", "contingent.admitted", admission);
    // A refused repeat changed nothing: the record is still held by its first entry after a
    // reload of the saved state (the harness reloads after every accepted event).
    h.reload();
    h.refused(
        "import_record_repeated",
        MIGRATOR,
        L2,
        "journal.grade_recorded",
        grade(source("BARS", "sch-005/000014/2025/0/t1")),
    );
}

fn merge_into(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

#[test]
fn imports_close_at_the_regions_migration_cutover() {
    let config =
        RegionConfig { migration_closes_at: Some("2026-10-01T00:00:00+03:00".to_owned()), ..RegionConfig::default() };
    config.validate().unwrap();
    let mut h = migrating(config);
    h.grant(AUTH, QUEUE_MIGRATOR, "p-migq", &["migration", "queue_operator"], json!({"territory": "tikhvin"}));
    h.at("2026-09-01T09:00:00Z");
    // Recorded before the cutover: an import.
    h.recorded_at(Some("2026-09-30T20:59:59Z"));
    h.ok(MIGRATOR, L1, "journal.grade_recorded", grade(source("BARS", "m-1")));
    // Recorded at the cutover or after it: refused, whatever it claims and whoever signs it.
    h.recorded_at(Some("2026-09-30T21:00:00Z"));
    let m = h.refused("migration_closed", MIGRATOR, L1, "journal.grade_recorded", grade(source("BARS", "m-2")));
    assert!(m.contains("2026-10-01T00:00:00+03:00") && m.contains("migration_closes_at"), "{m}");
    h.recorded_at(Some("2027-08-31T09:00:00Z")).at("2023-02-01T09:00:00Z");
    let app = json!({"application_id": "legacy-q", "number": "n-q", "learner": "47-qq", "birth_month": "2022-03",
        "desired_date": "2027-09-01", "preferred": ["kg-001"], "group_type": "general",
        "migrated_from": {"system": "BARS", "record": "q-1"}});
    h.refused("migration_closed", QUEUE_MIGRATOR, "queue/kg/tikhvin", "queue.application_submitted", app);
    // Live records are not imports: the cutover does not touch them.
    h.recorded_at(None).at("2026-10-05T09:00:00Z");
    h.ok(
        TEACHER,
        "institution/sch-001",
        "journal.lesson_held",
        json!({"lesson_id": "l-live", "class": "5А", "subject": "math", "lesson_date": "2026-10-05"}),
    );
}

#[test]
fn a_config_without_a_cutover_keeps_imports_open_and_a_bad_one_is_refused() {
    // A config written before the field existed reads as no cutover.
    let mut v = serde_json::to_value(RegionConfig::default()).unwrap();
    assert!(v.get("migration_closes_at").is_none(), "an absent cutover is not written: {v}");
    let text = v.to_string();
    let config = RegionConfig::from_json(&text).unwrap();
    assert_eq!(config.migration_closes_at, None);
    let mut h = migrating(config);
    h.recorded_at(Some("2040-01-01T00:00:00Z")).at("2026-09-01T09:00:00Z");
    h.ok(MIGRATOR, L1, "journal.grade_recorded", grade(source("BARS", "late-but-allowed")));
    // A cutover that is no RFC 3339 instant is refused by the config check.
    v["migration_closes_at"] = json!("2026-10-01");
    let e = RegionConfig::from_json(&v.to_string()).unwrap_err();
    assert!(e.contains("migration_closes_at"), "{e}");
}
