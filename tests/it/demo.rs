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

const SMALL: DemoSize = DemoSize { learners: 300, teachers: 60, events: 3000 };

/// A ledger enforcing the default education rules, its authority the demo's.
fn education_ledger(dir: &std::path::Path, authority: &str) -> Ledger {
    let store: Arc<dyn zachetka::store::Store> = Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap());
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key(), authority, Some(zachetka::rules::default_region()))
        .unwrap();
    let clock = test_clock();
    Ledger::open_with(store, ledger_key(), clock, Limits::default(), RulesMode::Enforce).unwrap()
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
}

#[test]
fn the_demo_region_covers_every_event_type_it_promises() {
    // Without a ledger: the generator alone, a quick look at the vocabulary it uses.
    let mut region = DemoRegion::new(ORIGIN, SMALL);
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_day = String::new();
    let mut backwards = 0u64;
    loop {
        let batch = region.next_batch(1000);
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            *types.entry(event_type(e).to_owned()).or_default() += 1;
            let day = e["event"]["occurred_at"].as_str().unwrap()[..10].to_owned();
            if day < last_day {
                backwards += 1;
            }
            last_day = last_day.max(day);
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
    ] {
        assert!(types.contains_key(ty), "no {ty}: {types:?}");
    }
    // Time order: the log never goes back a day.
    assert_eq!(backwards, 0, "{types:?}");
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
    loop {
        let batch = region.next_batch(700);
        if batch.is_empty() {
            break;
        }
        append_demo_batch(&ledger, batch);
    }
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
