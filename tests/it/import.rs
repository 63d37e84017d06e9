//! A migration's import (`zachetka import`, `zachetka::import`): legacy records become events
//! that only a key with the migration role may write, naming their source; an import run again
//! appends nothing new; bad lines are refused with their codes and the rest goes in.

use super::rules::{append_region_until, region, AFTER_REGION, AFTER_YEAR, DEMO_ORIGIN};
use super::support::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::Arc;
use zachetka::import::Importer;
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits, RulesMode};

fn migrator() -> KeyPair {
    KeyPair::from_seed(&[0x4d; 32])
}

/// A legacy kindergarten application of territory tikhvin, filed in 2024 in the old system.
fn application_line(record: &str, app: &str) -> String {
    json!({"record": record, "type": "queue.application_submitted", "stream": "queue/kg/tikhvin",
        "occurred_at": "2024-05-01T09:00:00Z",
        "data": {"application_id": app, "number": format!("47-2024-{app}"), "learner": format!("47-{app}"),
                 "birth_month": "2024-03", "desired_date": "2027-09-01", "preferred": ["kg-001"],
                 "group_type": "general"}})
    .to_string()
}

/// The demo region's ledger in `dir` as lived up to `at` (its clock then), and the migration key
/// granted `roles` within `scope` by the authority at that time.
fn region_with_migrator(dir: &std::path::Path, at: &str, roles: &[&str], scope: Value) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    let authority = zachetka::demo::demo_key(DEMO_ORIGIN, "authority");
    zachetka::ledger::init_store(
        &*store,
        DEMO_ORIGIN,
        &ledger_key(),
        &region().authority_did(),
        Some(zachetka::rules::default_region()),
    )
    .unwrap();
    let ledger = Ledger::open_with(store, ledger_key(), test_clock(), Limits::default(), RulesMode::Enforce).unwrap();
    append_region_until(&ledger, at);
    let grant = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.granted", "id": id(9_000_001),
        "occurred_at": at, "author": authority.did(),
        "data": {"v": 1, "key": migrator().did(), "holder": "p-migration", "roles": roles, "scope": scope,
                 "valid_from": "2026-08-01T00:00:00Z"}});
    ledger.append_blocking(vec![zachetka::event::sign_event(&grant, &authority).unwrap()])[0].as_ref().unwrap();
    ledger
}

fn import_all(ledger: &Ledger, key: KeyPair, lines: &[String]) -> Vec<Result<u64, String>> {
    let mut importer = Importer::new(DEMO_ORIGIN, "СОЛО", key).unwrap();
    let events: Vec<Value> = lines.iter().map(|l| importer.event(l.as_bytes()).unwrap().1).collect();
    ledger
        .append_blocking(events)
        .into_iter()
        .map(|r| r.map(|r| r.seq).map_err(|e| e.code.as_str().to_owned()))
        .collect()
}

#[test]
fn imports_need_the_migration_role_keep_their_source_and_run_again_appending_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        region_with_migrator(dir.path(), AFTER_YEAR, &["migration", "queue_operator"], json!({"territory": "tikhvin"}));
    let lines = [application_line("solo-q-1", "legacy-1"), application_line("solo-q-2", "legacy-2")];

    // A queue operator without the migration role may not write history.
    let operator = zachetka::demo::demo_key(DEMO_ORIGIN, "operator/tikhvin");
    assert_eq!(import_all(&ledger, operator, &lines), vec![Err("not_authorized".into()), Err("not_authorized".into())]);

    let first = import_all(&ledger, migrator(), &lines);
    let seqs: Vec<u64> = first.iter().map(|r| *r.as_ref().unwrap()).collect();
    let size = ledger.head().0.tree_size;
    // Again (an interrupted import restarted): the same events, their receipts, nothing appended.
    assert_eq!(import_all(&ledger, migrator(), &lines), first);
    assert_eq!(ledger.head().0.tree_size, size);
    // The same records under the system's name in another case derive other event ids, yet name
    // the same legacy records: the rules refuse them (review s11 finding 10), nothing appended.
    let mut other = Importer::new(DEMO_ORIGIN, "соло", migrator()).unwrap();
    let events: Vec<Value> = lines.iter().map(|l| other.event(l.as_bytes()).unwrap().1).collect();
    let again: Vec<Result<u64, String>> = ledger
        .append_blocking(events)
        .into_iter()
        .map(|r| r.map(|r| r.seq).map_err(|e| e.code.as_str().to_owned()))
        .collect();
    assert_eq!(again, vec![Err("import_record_repeated".into()), Err("import_record_repeated".into())]);
    assert_eq!(ledger.head().0.tree_size, size);

    // The entry names its source; the queue shows the application as imported, filed in 2024.
    let entry = zachetka::event::parse_entry(&ledger.store().entries(seqs[0], 1).unwrap()[0]).unwrap();
    assert_eq!(entry.event["data"]["migrated_from"], json!({"system": "СОЛО", "record": "solo-q-1"}));
    ledger.read_side().wait_applied_blocking(size);
    let view = ledger.read_side().view("kindergarten-queues", &["tikhvin", "applications", "legacy-1"]).unwrap().view;
    assert_eq!(view.body["imported"], json!({"system": "СОЛО", "record": "solo-q-1"}), "{}", view.body);
    assert_eq!(view.body["applied_at"], json!("2024-05-01T09:00:00Z"));
    // The audit counts the imported entries, by the key that wrote them and when.
    let report = zachetka::audit::audit(&**ledger.store(), &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    // (The demo region's history holds imports of its own, by other keys.)
    let total: u64 = report.imported.by_key.iter().map(|k| k.entries).sum();
    assert_eq!(report.imported.entries, total);
    let ours = report.imported.by_key.iter().find(|k| k.key == migrator().did()).expect("the migration key's imports");
    assert_eq!(
        (ours.entries, ours.first_seq, ours.last_seq, ours.first_recorded_at.as_str()),
        (2, seqs[0], seqs[1], AFTER_YEAR)
    );
}

/// A learner's past in a school, as the legacy system holds it: admitted to 5А in 2025, moved
/// up to 6А in 2026.
fn contingent_lines(learner: &str) -> [String; 2] {
    let stream = format!("learner/{learner}");
    [
        json!({"record": "solo-adm-1", "type": "contingent.admitted", "stream": stream,
            "occurred_at": "2025-09-01T09:00:00Z",
            "data": {"institution": "sch-001", "class": "5А", "academic_year": 2025, "admitted_on": "2025-09-01",
                     "order_ref": "sch-001-2025-adm-1"}})
        .to_string(),
        json!({"record": "solo-cls-1", "type": "contingent.class_assigned", "stream": stream,
            "occurred_at": "2026-09-01T09:00:00Z",
            "data": {"institution": "sch-001", "class": "6А", "academic_year": 2026, "assigned_on": "2026-09-01"}})
        .to_string(),
    ]
}

/// The contingent is history a migration brings too: imported admissions and classes enrol the
/// learner for the rules (a live grade in that class is accepted once they are in, refused as
/// `learner_not_enrolled` before), and the profile shows them as imported, with their source.
#[test]
fn an_imported_contingent_enrols_the_learner_and_shows_as_imported() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        region_with_migrator(dir.path(), AFTER_REGION, &["migration", "registrar"], json!({"institution": "sch-001"}));
    let learner = "47-900001";
    let grade = |n: u64| {
        super::rules::grade_event_in(
            n,
            &super::rules::teacher_of_school_1(),
            "sch-001",
            "6А",
            5,
            &format!("learner/{learner}"),
        )
    };
    let refused = ledger.append_blocking(vec![grade(9_000_003)]).remove(0).unwrap_err();
    assert_eq!(refused.code.as_str(), "learner_not_enrolled", "{refused}");

    let imported = import_all(&ledger, migrator(), &contingent_lines(learner));
    assert!(imported.iter().all(Result::is_ok), "{imported:?}");
    let accepted = ledger.append_blocking(vec![grade(9_000_004)]).remove(0);
    assert!(accepted.is_ok(), "{accepted:?}");

    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let p = ledger.read_side().view("profiles", &[learner]).unwrap().view.body;
    let contingent = p["contingent"].as_array().unwrap_or_else(|| panic!("{p:#}"));
    let sources: Vec<(&str, &Value)> =
        contingent.iter().map(|i| (i["type"].as_str().unwrap(), &i["imported"])).collect();
    assert_eq!(
        sources,
        vec![
            ("contingent.admitted", &json!({"system": "СОЛО", "record": "solo-adm-1"})),
            ("contingent.class_assigned", &json!({"system": "СОЛО", "record": "solo-cls-1"})),
        ],
        "{p:#}"
    );
}

fn zachetka() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zachetka"));
    c.env("RUST_LOG", "warn").env_remove("ZACHETKA_DATABASE_URL").stdin(Stdio::null());
    c
}

/// The binary over a ledger directory: one result line per input line in order, a bad line
/// refused with its code while the others go in (exit 1), and a second run appending nothing.
#[test]
fn the_import_command_answers_each_line_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let out = zachetka()
        .args(["init", "--rules", "none", "--origin", ORIGIN, "--authority-did", &authority().did(), "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = tmp.path().join("migration.key");
    std::fs::write(&key, migrator().to_key_file()).unwrap();
    let grade = |record: &str, learner: &str| {
        json!({"record": record, "type": "journal.grade_recorded", "stream": format!("learner/{learner}"),
            "occurred_at": "2019-03-01T09:00:00Z",
            "data": {"institution": "sch-001", "class": "5А", "subject": "math", "lesson_id": "l-1", "mark": 5,
                     "scale": "five_point", "kind": "lesson", "weight": 1}})
        .to_string()
    };
    let input = tmp.path().join("bars.jsonl");
    let text = [grade("m-1", "47-1"), "{\"record\": \"m-2\"".into(), String::new(), grade("m-3", "47-2")].join("\n");
    std::fs::write(&input, text).unwrap();
    let run = || {
        let out = zachetka()
            .args(["import", "--system", "BARS", "--key"])
            .arg(&key)
            .arg("--dir")
            .arg(&dir)
            .arg(&input)
            .output()
            .unwrap();
        let lines: Vec<Value> =
            String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (out.status.code(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, first, stderr) = run();
    assert_eq!(code, Some(1), "a refused line: exit 1 ({stderr})");
    // (line, record, seq, code) of each result line.
    type Brief<'a> = (u64, Option<&'a str>, Option<u64>, Option<&'a str>);
    let brief: Vec<Brief> = first
        .iter()
        .map(|v| (v["line"].as_u64().unwrap(), v["record"].as_str(), v["seq"].as_u64(), v["code"].as_str()))
        .collect();
    assert_eq!(
        brief,
        vec![
            (1, Some("m-1"), Some(0), None),
            (2, None, None, Some("import_line_malformed")),
            (4, Some("m-3"), Some(1), None)
        ]
    );
    assert!(stderr.contains("3 lines, 2 appended or already in the log, 1 refused"), "{stderr}");
    let (code, again, _) = run();
    assert_eq!(code, Some(1));
    assert_eq!(again, first, "the same receipts: nothing appended twice");
    let note = zachetka().args(["checkpoint", "--dir"]).arg(&dir).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&note.stdout).lines().nth(1), Some("2"), "two entries in the log");
}
