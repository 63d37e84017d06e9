//! The demo region generator: every event of a small region is accepted by a ledger enforcing the
//! default education rules, every event family appears, the audit replays it clean, and the same
//! size gives the same signed events.

use super::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use zachetka::audit::audit;
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::ledger::{Ledger, Limits, RulesMode};
use zachetka::record::{export_learner, verify, Disclosure, Options};

const SMALL: DemoSize = DemoSize { learners: 300, teachers: 60, events: 3000 };

/// A ledger enforcing the demo region's config (the default education rules and the demo's
/// migration cutover), its authority the demo's.
fn education_ledger(dir: &std::path::Path, authority: &str) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key(), authority, Some(zachetka::demo::region_config()))
        .unwrap();
    let clock = test_clock();
    Ledger::open_with(store, ledger_key(), clock, Limits::default(), RulesMode::Enforce).unwrap()
}

/// The demo region at 300 learners with its whole history appended and the read models caught
/// up (the directory is kept with it).
fn small_lifelong_region() -> (DemoSize, tempfile::TempDir, Ledger) {
    let size = DemoSize { learners: 300, teachers: 60, events: 500 };
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, size);
    let ledger = education_ledger(dir.path(), &region.authority_did());
    append_rest_of(&ledger, &mut region, 700);
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    (size, dir, ledger)
}

fn event_type(signed: &Value) -> &str {
    signed["event"]["type"].as_str().unwrap()
}

#[test]
fn the_demo_region_covers_every_subsystem_and_passes_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let ledger = education_ledger(dir.path(), &region.authority_did());
    let total = region.remaining();
    let mut families: BTreeMap<String, u64> = BTreeMap::new();
    let mut appended = 0u64;
    loop {
        let batch = region.next_batch(700);
        if batch.is_empty() {
            break;
        }
        let types: Vec<String> = batch.iter().map(|e| event_type(e).to_owned()).collect();
        // Recorded on the day the batch occurs, as a ledger living through the demo's year.
        pin_clock(DemoRegion::recorded_at_of(&batch).expect("a batch has events"));
        for (r, ty) in ledger.append_blocking(batch).into_iter().zip(&types) {
            if let Err(refusal) = r {
                panic!("demo event {appended} ({ty}) refused: {refusal}");
            }
            appended += 1;
            *families.entry(ty.split_once('.').unwrap().0.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(appended, total, "remaining() counted every event");
    assert_eq!(region.remaining(), 0);
    eprintln!("demo families: {families:?}");
    for family in [
        "ledger",
        "registry",
        "keys",
        "journal",
        "queue",
        "enrolment",
        "additional",
        "college",
        "attestation",
        "portfolio",
        "contingent",
        "staff",
        "digital",
    ] {
        assert!(families.get(family).copied().unwrap_or(0) > 0, "no {family}.* events: {families:?}");
    }
    assert_eq!(families["ledger"], 1);
    let report = audit(&**ledger.store(), &|_, _| {}).unwrap();
    assert!(report.rules_replayed);
    assert!(report.is_clean(), "{:#?}", report.violations);
    // Its revocations (a teacher's lost key, the migration keys once the migration is over) are
    // none retroactive: no entry is named as signed after one took effect.
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
}

#[test]
fn the_demo_region_covers_every_event_type_it_promises() {
    // Without a ledger: the generator alone, a quick look at the vocabulary it uses.
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_day = i64::MIN;
    let mut backwards = 0u64;
    let mut imported: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let (batch, recorded_at) = region.next_batch_recorded(1000);
        if batch.is_empty() {
            assert_eq!(recorded_at, None);
            break;
        }
        // The time the driver pins its clock to, known without reading the events back, is the
        // one read back from them.
        assert_eq!(recorded_at, DemoRegion::recorded_at_of(&batch));
        let batch_day = DemoRegion::local_day(recorded_at.unwrap());
        for e in &batch {
            *types.entry(event_type(e).to_owned()).or_default() += 1;
            let written = DemoRegion::local_day(DemoRegion::written_at(&e["event"]).unwrap());
            assert_eq!(written, batch_day, "a batch holds the events written on one day");
            if written < last_day {
                backwards += 1;
            }
            last_day = last_day.max(written);
            if let Some(from) = e["event"]["data"].get("migrated_from") {
                *imported.entry(from["system"].as_str().unwrap().to_owned()).or_default() += 1;
                // An import occurred before it is written: the migration runs before the live year.
                let occurred = zachetka::time::parse_rfc3339(e["event"]["occurred_at"].as_str().unwrap()).unwrap();
                assert!(occurred < zachetka::time::parse_rfc3339("2026-08-01T00:00:00Z").unwrap(), "{e}");
                // And written before the demo region's migration cutover, which the rules enforce.
                let cutover = zachetka_rules::time::parse_instant(zachetka::demo::MIGRATION_CLOSES_AT).unwrap();
                let written = i128::from(DemoRegion::written_at(&e["event"]).unwrap()) * 1_000_000_000;
                assert!(written < cutover, "{e}");
            }
        }
    }
    for ty in [
        "keys.granted",
        "journal.lesson_held",
        "journal.grade_recorded",
        "journal.attendance_marked",
        "journal.record_corrected",
        "journal.term_grade_set",
        "journal.year_grade_set",
        "queue.application_submitted",
        "queue.benefit_claimed",
        "queue.benefit_confirmed",
        "queue.sibling_linked",
        "queue.allocation_started",
        "queue.place_offered",
        "queue.offer_accepted",
        "queue.allocation_finished",
        "queue.enrolled",
        "enrolment.places_published",
        "enrolment.application_submitted",
        "enrolment.order_issued",
        "additional.program_registered",
        "additional.certificate_issued",
        "additional.enrolled",
        "college.course_result_recorded",
        "college.exam_recorded",
        "attestation.application_submitted",
        "attestation.vote_cast",
        "attestation.decision_recorded",
        "portfolio.achievement_attested",
        "journal.final_attestation_recorded",
        "journal.certificate_issued",
        "college.diploma_issued",
        "college.curriculum_registered",
        "contingent.admitted",
        "contingent.class_assigned",
        "contingent.expelled",
        "contingent.graduated",
        "contingent.academic_leave_granted",
        "learner.transferred",
        "staff.course_completed",
        "staff.competition_result_recorded",
        "digital.recommendation_offered",
        "digital.teacher_content_access_granted",
        "digital.learner_content_access_granted",
        "digital.assignment_recorded",
        "portfolio.achievement_revoked",
        "keys.revoked",
        "keys.rotated",
    ] {
        assert!(types.contains_key(ty), "no {ty}: {types:?}");
    }
    // Time order: the log never goes back a day (an import is written when the migration runs).
    assert_eq!(backwards, 0, "{types:?}");
    // The migration imports the region's own legacy system and another region's.
    assert!(imported.get("BARS").copied().unwrap_or(0) > 1000, "{imported:?}");
    assert!(imported.get("СОЛО").copied().unwrap_or(0) > 0, "{imported:?}");
}

#[test]
fn the_demo_journal_gives_marks_at_its_lessons_on_school_days() {
    // Review finding 13: a teacher, a parent and an inspector read a mark as given at a lesson.
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let config = zachetka_rules::RegionConfig::default();
    let (from, to) = (zachetka::time::days_from_civil(2018, 1, 1), zachetka::time::days_from_civil(2028, 1, 1));
    let school_days: std::collections::HashSet<i64> = config.calendar.school_days(from, to).into_iter().collect();
    let mut lessons = std::collections::HashSet::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let batch = region.next_batch(1000);
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            let (ty, d) = (event_type(e), &e["event"]["data"]);
            if !matches!(ty, "journal.lesson_held" | "journal.grade_recorded" | "journal.attendance_marked") {
                continue;
            }
            let date = d["lesson_date"].as_str().unwrap();
            let day = zachetka::time::parse_date(date).unwrap();
            assert!(school_days.contains(&day), "{ty} on {date}, not a school day: {e}");
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            if ty == "journal.lesson_held" {
                let inst = e["event"]["stream"].as_str().unwrap().trim_start_matches("institution/").to_owned();
                lessons.insert((inst, s("class"), s("subject"), s("lesson_date")));
            } else if d.get("migrated_from").is_none() {
                let key = (s("institution"), s("class"), s("subject"), s("lesson_date"));
                assert!(lessons.contains(&key), "{ty} at no lesson recorded before it: {e}");
            }
            *counts.entry(ty.to_owned()).or_default() += 1;
        }
    }
    eprintln!("journal records: {counts:?}");
    // Marks remain the bulk of the journal: the lessons they need are a fraction of them.
    let (held, grades) = (counts["journal.lesson_held"], counts["journal.grade_recorded"]);
    assert!(grades > 2 * held && counts["journal.attendance_marked"] > 0, "{counts:?}");
}

#[test]
fn the_demo_region_is_deterministic() {
    let mut a = DemoRegion::new(ORIGIN, SMALL);
    let mut b = DemoRegion::new(ORIGIN, SMALL);
    assert_eq!(a.authority_did(), b.authority_did());
    assert_eq!(a.remaining(), b.remaining());
    for _ in 0..3 {
        assert_eq!(a.next_batch(1500), b.next_batch(1500));
    }
    assert_eq!(a.remaining(), b.remaining());
}

#[test]
fn a_region_with_indicator_targets_reproduces_them_from_the_log() {
    // `zachetka demo --region leningrad-2021` at a size a test can build: every numerator is the
    // target, every denominator the region's students, teachers or assignments.
    use zachetka::demo::IndicatorTargets;
    let size = DemoSize { learners: 300, teachers: 60, events: 1500 };
    let targets = IndicatorTargets {
        students_with_profile: 297,
        students_recommended: 35,
        teachers_with_verified_content: 17,
        students_with_free_access: 70,
        assignments: 347,
        assignments_automatic: 340,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::with_targets(ORIGIN, size, targets);
    let ledger = education_ledger(dir.path(), &region.authority_did());
    append_rest_of(&ledger, &mut region, 700);
    let tree_size = ledger.head().0.tree_size;
    ledger.read_side().wait_applied_blocking(tree_size);
    let body = ledger.read_side().view("indicators", &[]).unwrap().view.body;
    let shares: Vec<(u64, u64)> = body["digital_maturity"]["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["numerator"].as_u64().unwrap(), s["denominator"].as_u64().unwrap()))
        .collect();
    assert_eq!(shares, vec![(297, 300), (35, 300), (17, 60), (70, 300), (340, 347)], "{body:#}");
    // Of the one academic year the region's records fall in (its graduations and expulsions of
    // June 2027 leave the denominator only in 2027/28, which the log has not reached).
    assert_eq!(body["academic_year"], 2026, "{body:#}");
    let den = &body["digital_maturity"]["denominators"];
    let counts: Vec<u64> = ["school_students", "school_teachers", "electronic_assignments"]
        .iter()
        .map(|d| den[d]["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![300, 60, 347], "{den:#}");
    // (99.0 + 11.667 + 28.333 + 23.333 + 97.983) / 5 = 52.06.
    assert_eq!(body["digital_maturity"]["index"]["percent"], "52.1");
    // The published figures: the same numerators, and the students, teachers and assignments.
    let (size, t) = zachetka::demo::leningrad_2021(0);
    assert_eq!((size.learners, size.teachers, t.assignments), (174_876, 14_269, 202_217));
    assert_eq!(
        (
            t.students_with_profile,
            t.students_recommended,
            t.teachers_with_verified_content,
            t.students_with_free_access
        ),
        (173_171, 20_555, 3_917, 41_007)
    );
}

#[test]
fn a_lifelong_profile_runs_from_the_queue_to_college_with_imports_marked_and_its_bundle_verifies() {
    let (size, _dir, ledger) = small_lifelong_region();
    let learner = zachetka::demo::sample(size).lifelong;
    let p = ledger.read_side().view("profiles", &[&learner]).unwrap().view.body;
    let items = |v: &Value| v.as_array().unwrap().clone();
    let of_type = |v: &Value, ty: &str| -> Vec<Value> { items(v).into_iter().filter(|i| i["type"] == ty).collect() };
    let imported_from = |i: &Value| i["imported"]["system"].as_str().map(str::to_owned);
    // The kindergarten queue: the application imported from the legacy system (with its source
    // record), and so is the placement the legacy queue made, dated in the year the child entered
    // (review s9, finding 14: it was re-entered as decided now, for a child then 19).
    let apps = of_type(&p["kindergarten"], "queue.application_submitted");
    assert_eq!(apps.len(), 1, "{p:#}");
    assert_eq!(imported_from(&apps[0]).as_deref(), Some("BARS"));
    assert!(apps[0]["imported"]["record"].as_str().is_some_and(|r| !r.is_empty()));
    let enrolled = of_type(&p["kindergarten"], "queue.enrolled");
    assert_eq!(enrolled.len(), 1, "{p:#}");
    assert_eq!(imported_from(&enrolled[0]).as_deref(), Some("BARS"), "{:#}", enrolled[0]);
    let entered = apps[0]["summary"]["desired_date"].as_str().map(|d| d[..4].to_owned()).expect("a desired date");
    let seq = enrolled[0]["seq"].as_u64().unwrap();
    let entry: Value = serde_json::from_slice(&ledger.store().entries(seq, 1).unwrap()[0]).unwrap();
    let occurred = entry["event"]["occurred_at"].as_str().unwrap();
    assert!(occurred.starts_with(&entered), "enrolled at {occurred}, entered in {entered}");
    // School: nine years of classes (grades from the 2nd), each with records and its academic year.
    let classes = items(&p["school"]["classes"]);
    let years: Vec<i64> =
        classes.iter().flat_map(|c| items(&c["academic_years"])).map(|y| y.as_i64().unwrap()).collect();
    assert_eq!(classes.len(), 8, "{p:#}");
    assert_eq!(years.len(), 8, "{p:#}");
    // Final attestation (ОГЭ) and the certificate: imported.
    let finals = of_type(&p["school"]["events"], "journal.final_attestation_recorded");
    assert!(!finals.is_empty(), "{p:#}");
    assert!(finals.iter().all(|i| i["summary"]["exam"] == "oge" && imported_from(i).as_deref() == Some("BARS")));
    let certificates = of_type(&p["documents"], "journal.certificate_issued");
    assert_eq!(certificates.len(), 1, "{p:#}");
    assert_eq!(imported_from(&certificates[0]).as_deref(), Some("BARS"));
    // The contingent of the earlier years is imported too: the 1st-grade admission, each year's
    // class, the graduation from school. College: admitted in an earlier year (imported),
    // results of earlier terms (imported) and of this year, and the diploma written live.
    let admitted = of_type(&p["contingent"], "contingent.admitted");
    let first_grade = admitted.iter().find(|i| i["summary"]["class"].as_str().unwrap().starts_with('1'));
    assert!(first_grade.is_some_and(|i| i["summary"]["academic_year"].as_i64().unwrap() < 2017), "{p:#}");
    assert_eq!(imported_from(first_grade.unwrap()).as_deref(), Some("BARS"));
    let moved_up = of_type(&p["contingent"], "contingent.class_assigned");
    assert_eq!(moved_up.len(), 8, "{p:#}");
    assert!(moved_up.iter().all(|i| imported_from(i).as_deref() == Some("BARS")), "{p:#}");
    // Graduated from school (imported), and from college this year (live).
    let graduated = of_type(&p["contingent"], "contingent.graduated");
    let from = |i: &Value| (i["summary"]["institution"].as_str().unwrap().to_owned(), imported_from(i));
    let graduated: Vec<_> = graduated.iter().map(from).collect();
    assert_eq!(graduated.len(), 2, "{p:#}");
    assert!(graduated[0].0.starts_with("sch-") && graduated[0].1.as_deref() == Some("BARS"), "{graduated:?}");
    assert_eq!(graduated[1], ("col-001".to_owned(), None), "{graduated:?}");
    let college: Vec<&Value> = admitted.iter().filter(|i| i["summary"]["institution"] == "col-001").collect();
    assert_eq!(college.len(), 1, "{p:#}");
    assert!(college[0]["summary"]["academic_year"].as_i64().unwrap() < 2026);
    assert_eq!(imported_from(college[0]).as_deref(), Some("BARS"));
    let groups = items(&p["college"]["groups"]);
    assert_eq!(groups.len(), 1, "{p:#}");
    let terms: Vec<i64> = items(&groups[0]["terms"]).iter().map(|t| t.as_i64().unwrap()).collect();
    assert!(terms.contains(&1) && terms.contains(&8), "{terms:?}");
    let diplomas = of_type(&p["documents"], "college.diploma_issued");
    assert_eq!(diplomas.len(), 1, "{p:#}");
    assert_eq!(diplomas[0].get("imported"), None);
    // An olympiad imported from school years, revoked in the live year.
    let achievements = items(&p["achievements"]);
    let revoked: Vec<&Value> = achievements.iter().filter(|a| !a["revoked"].is_null()).collect();
    assert_eq!(revoked.len(), 1, "{p:#}");
    assert_eq!(imported_from(&revoked[0]["attested"]).as_deref(), Some("BARS"));
    assert_eq!(revoked[0]["revoked"].get("imported"), None);
    // The learner's record bundle verifies offline.
    let bundle = export_learner(&ledger, &learner, &Disclosure::All).unwrap();
    let report = verify(&bundle.to_json(), &ledger.config().verifier_key, &Options::default());
    assert!(report.ok, "{:#?}", report.failures);
    assert_eq!(report.disclosed, bundle.entries.len());
}

/// Review finding 12: the demo's younger siblings apply for 2028; in the list a family reads for
/// the current allocation (2027's) none of them stands behind the 2027 children, and each is in
/// its own year's list, first among the children of its age group then.
#[test]
fn the_demo_queue_lists_each_allocation_year_apart() {
    let (_, _dir, ledger) = small_lifelong_region();
    let view = |path: &[&str]| ledger.read_side().view("kindergarten-queues", path).unwrap().view.body;
    let mut territories = std::collections::BTreeSet::new();
    for bytes in ledger.entries(0, ledger.head().0.tree_size).unwrap() {
        let e: Value = serde_json::from_slice(&bytes).unwrap();
        if let Some(t) = e["event"]["stream"].as_str().and_then(|s| s.strip_prefix("queue/kg/")) {
            territories.insert(t.to_owned());
        }
    }
    assert!(!territories.is_empty());
    let mut seen_2028 = 0;
    for territory in territories.iter().map(String::as_str) {
        let lists = view(&[territory]);
        assert_eq!(lists["allocation_year"], 2027, "{lists}");
        for list in lists["lists"].as_array().unwrap() {
            let (year, group) = (list["year"].as_i64().unwrap(), list["age_group"].as_str().unwrap());
            let body = view(&[territory, &year.to_string(), group]);
            let apps = body["applications"].as_array().unwrap();
            let waiting: Vec<&Value> = apps.iter().filter(|a| a["position"].is_number()).collect();
            assert_eq!(list["waiting"], waiting.len(), "{body}");
            if year == 2027 {
                // 2027's list: nobody who wants 2028; it is what `<territory>/<age_group>` answers.
                assert!(apps.iter().all(|a| !a["application"].as_str().unwrap().contains("-2028-")), "{body}");
                assert_eq!(view(&[territory, group]), body);
            }
            for a in apps.iter().filter(|a| a["application"].as_str().unwrap().contains("-2028-")) {
                seen_2028 += 1;
                let id = a["application"].as_str().unwrap();
                let own = view(&[territory, "applications", id]);
                assert_eq!((own["allocation_year"].as_i64(), own["age_group"].as_str()), (Some(2028), Some(group)));
                assert_eq!(own["position"], a["position"], "{own}");
            }
        }
    }
    assert!(seen_2028 > 0, "the demo has 2028 applicants");
}

/// Review (queue views of imported history): a legacy application placed by BARS answers the
/// allocation year it left the queue in (not the current one), lists only the runs of its own
/// years between its filing and its offer, in date order (not log order: the imports are
/// appended in 2026), `filed_at` is the original time the order uses, and its history and runs
/// name the legacy dates beside the ledger's.
#[test]
fn a_legacy_application_answers_its_own_year_runs_and_filing_time() {
    let (_, _dir, ledger) = small_lifelong_region();
    let view = |path: &[&str]| ledger.read_side().view("kindergarten-queues", path).unwrap().view.body;
    let mut checked = 0;
    for bytes in ledger.entries(0, ledger.head().0.tree_size).unwrap() {
        let e: Value = serde_json::from_slice(&bytes).unwrap();
        let ev = &e["event"];
        if event_type(&e) != "queue.application_submitted" || ev["data"]["migrated_from"].is_null() {
            continue;
        }
        let territory = ev["stream"].as_str().unwrap().strip_prefix("queue/kg/").unwrap();
        let id = ev["data"]["application_id"].as_str().unwrap();
        let b = view(&[territory, "applications", id]);
        assert_eq!(b["status"]["state"], "enrolled", "{b:#}");
        let entered: i64 = ev["data"]["desired_date"].as_str().unwrap()[..4].parse().unwrap();
        assert_eq!(b["allocation_year"], entered, "{b:#}");
        assert_eq!(b["list"], Value::Null, "a past year's list is not answered: {b:#}");
        // The order's time of filing: the legacy system's, not the import's.
        assert_eq!(b["filed_at"], ev["occurred_at"], "{b:#}");
        let recorded = &e["recorded_at"];
        assert!(recorded.is_string(), "{e}");
        assert_eq!(&b["recorded_at"], recorded);
        assert_ne!(b["filed_at"], b["recorded_at"]);
        // Runs: the one of its year that placed it (the others are of other years).
        let runs = b["allocation_runs_since_applied"].as_array().unwrap();
        assert!(!runs.is_empty(), "{b:#}");
        let dates: Vec<&str> = runs.iter().map(|r| r["date"].as_str().unwrap()).collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
        for r in runs {
            assert_eq!(r["allocation_year"], entered, "{r:#}");
            assert!(r["date"].as_str().unwrap() >= b["filed_at"].as_str().unwrap(), "{r:#}");
            assert!(r["date"].as_str().unwrap().starts_with(&entered.to_string()), "{r:#}");
        }
        // The history: each entry with the legacy record's own date, in its years.
        for h in b["history"].as_array().unwrap() {
            assert_eq!(&h["recorded_at"], recorded, "{h:#}");
            assert!(h["date_from"].as_str().unwrap().starts_with("occurred_at"), "{h:#}");
            assert_eq!(h["date"], h["occurred_at"], "{h:#}");
        }
        let offer = b["history"].as_array().unwrap().iter().find(|h| h["type"] == "queue.place_offered").unwrap();
        assert!(offer["date"].as_str().unwrap().starts_with(&entered.to_string()), "{offer:#}");
        // The run that placed it names its legacy dates too.
        let run = view(&[territory, "runs", offer["run"].as_str().unwrap()]);
        assert_eq!(run["allocation_year"], entered);
        assert!(run["started"]["date"].as_str().unwrap().starts_with(&entered.to_string()), "{run:#}");
        assert!(run["started"]["occurred_at"].is_string(), "{run:#}");
        checked += 1;
    }
    assert!(checked > 0, "the small region imports legacy applications");
}

/// Review s11 finding 3: once the demo region is live (its migration cutover passed), a migration
/// key granted later cannot import a backdated queue application ahead of live ones, nor an
/// allocation decision; the same application before the cutover would have been an import.
#[test]
fn after_the_demo_regions_migration_cutover_no_import_is_accepted() {
    let (_, _dir, ledger) = small_lifelong_region();
    assert_eq!(ledger.config().rules.as_ref().unwrap()["migration_closes_at"], zachetka::demo::MIGRATION_CLOSES_AT);
    let authority = zachetka::demo::demo_key(ORIGIN, "authority");
    let migrator = zachetka::demo::demo_key(ORIGIN, "test/late-migration");
    let sign = |key: &zachetka::keys::KeyPair, n: u64, stream: &str, ty: &str, at: &str, data: Value| {
        let mut data = data;
        data["v"] = serde_json::json!(zachetka_rules::schema_version(ty).unwrap());
        let ev = serde_json::json!({"ledger": ORIGIN, "stream": stream, "type": ty, "id": id(0x5e11_0000 + n),
            "occurred_at": at, "author": key.did(), "data": data});
        zachetka::event::sign_event(&ev, key).unwrap()
    };
    pin_clock_at("2027-08-31T09:00:00Z");
    let grant = sign(
        &authority,
        1,
        "registry",
        "keys.granted",
        "2027-08-31T09:00:00Z",
        serde_json::json!({"key": migrator.did(), "holder": "p-late-migration", "roles": ["migration", "queue_operator"],
            "scope": {"territory": "tikhvin"}, "valid_from": "2027-08-31T00:00:00Z"}),
    );
    let r = ledger.append_blocking(vec![grant]);
    assert!(r[0].is_ok(), "{r:?}");
    let app = sign(
        &migrator,
        2,
        "queue/kg/tikhvin",
        "queue.application_submitted",
        "2023-02-01T09:00:00Z",
        serde_json::json!({"application_id": "late-legacy-1", "number": "nl-1", "learner": "47-099001",
            "birth_month": "2022-03", "desired_date": "2027-09-01", "preferred": ["kg-001"], "group_type": "general",
            "migrated_from": {"system": "BARS", "record": "late-q-1"}}),
    );
    let size = ledger.head().0.tree_size;
    let r = ledger.append_blocking(vec![app]);
    let refusal = r[0].as_ref().expect_err("an import after the cutover is refused");
    assert_eq!(refusal.code.as_str(), "migration_closed", "{refusal}");
    assert!(refusal.message.contains(zachetka::demo::MIGRATION_CLOSES_AT), "{refusal}");
    assert_eq!(ledger.head().0.tree_size, size, "nothing was appended");
}
