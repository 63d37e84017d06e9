//! The contingent (admissions, classes per year, leaving, transfers, academic leave), 1st-grade
//! orders (they enrol, once, and window 1's is due within 3 working days after 30 June),
//! documents that follow results, staff records and the records the indicators count: an
//! accepted case and each refusal with its code.

use crate::harness::*;
use serde_json::{json, Value};

const SCH1: &str = "institution/sch-001";
const SCH2: &str = "institution/sch-002";
const ISSUER_STAFF: &str = "did:key:z6MkStaffIssuer";
const L9: &str = "learner/47-000009";

fn admitted(inst: &str, class: &str, on: &str) -> Value {
    json!({"institution": inst, "class": class, "academic_year": 2026, "admitted_on": on, "order_ref": "pr-1"})
}

fn merged(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

fn at_date(date: &str) -> Value {
    grade(json!({"lesson_date": date}))
}

#[test]
fn marks_need_enrolment_in_that_class_on_that_date() {
    let mut h = Harness::region();
    for (inst, class, date) in [
        ("sch-001", "5А", "2026-09-10"),
        ("sch-001", "5А", "2026-09-30"),
        ("sch-001", "5Б", "2026-10-01"),
        ("sch-001", "5Б", "2026-11-30"),
        ("sch-002", "5А", "2026-12-05"),
    ] {
        h.lesson(inst, class, "math", date);
    }
    // Never admitted.
    let m = h.refused("learner_not_enrolled", TEACHER, L9, "journal.grade_recorded", grade(json!({})));
    assert!(m.contains("enrolled nowhere"), "{m}");
    h.refused(
        "learner_not_enrolled",
        TEACHER,
        L9,
        "journal.attendance_marked",
        json!({"institution": "sch-001", "class": "5А", "lesson_date": "2026-09-02", "code": "Н"}),
    );
    h.ok(REGISTRAR, L9, "contingent.admitted", admitted("sch-001", "5А", "2026-09-10"));
    // Before the admission date; then on it.
    h.refused("learner_not_enrolled", TEACHER, L9, "journal.grade_recorded", at_date("2026-09-09"));
    h.ok(TEACHER, L9, "journal.grade_recorded", at_date("2026-09-10"));
    // Another class of the same school.
    let m = h.refused(
        "learner_not_enrolled",
        TEACHER,
        L9,
        "journal.grade_recorded",
        grade(json!({"class": "5Б", "lesson_date": "2026-09-10"})),
    );
    assert!(m.contains("they were in 5А of sch-001"), "{m}");
    // Admission needs the institution's registrar or admin, and one enrolment at a time.
    h.refused("not_authorized", TEACHER, L9, "contingent.admitted", admitted("sch-001", "5А", "2026-09-10"));
    h.refused("not_authorized", ADMIN2, L9, "contingent.admitted", admitted("sch-001", "5А", "2026-09-10"));
    h.refused("learner_already_enrolled", ADMIN2, L9, "contingent.admitted", admitted("sch-002", "5А", "2026-09-10"));
    h.refused("class_malformed", REGISTRAR, L1, "contingent.admitted", admitted("sch-001", "13А", "2026-09-10"));
    h.grant(AUTH, "did:key:z6MkKgAdmin", "p-kg", &["institution_admin"], json!({"institution": "kg-001"}));
    h.refused(
        "institution_kind_mismatch",
        "did:key:z6MkKgAdmin",
        L9,
        "contingent.admitted",
        admitted("kg-001", "5А", "2026-09-10"),
    );
    // A move to 5Б from 1 October: marks before it stay in 5А, after it in 5Б.
    let move_ = json!({"institution": "sch-001", "class": "5Б", "academic_year": 2026, "assigned_on": "2026-10-01"});
    h.refused(
        "class_unchanged",
        REGISTRAR,
        L9,
        "contingent.class_assigned",
        json!({"institution": "sch-001", "class": "5А", "academic_year": 2026, "assigned_on": "2026-10-01"}),
    );
    h.refused(
        "contingent_date_out_of_order",
        REGISTRAR,
        L9,
        "contingent.class_assigned",
        json!({"institution": "sch-001", "class": "5Б", "academic_year": 2026, "assigned_on": "2026-09-01"}),
    );
    h.refused(
        "learner_not_enrolled",
        ADMIN2,
        L9,
        "contingent.class_assigned",
        json!({"institution": "sch-002", "class": "5Б", "academic_year": 2026, "assigned_on": "2026-10-01"}),
    );
    h.ok(REGISTRAR, L9, "contingent.class_assigned", move_);
    h.ok(TEACHER, L9, "journal.grade_recorded", at_date("2026-09-30"));
    h.refused("learner_not_enrolled", TEACHER, L9, "journal.grade_recorded", at_date("2026-10-01"));
    h.ok(TEACHER, L9, "journal.grade_recorded", grade(json!({"class": "5Б", "lesson_date": "2026-10-01"})));
    // Expelled on 1 December: no mark from that day; leaving twice is refused.
    let expel = |on: &str| json!({"institution": "sch-001", "expelled_on": on, "reason": "family moved abroad"});
    h.refused("contingent_date_out_of_order", REGISTRAR, L9, "contingent.expelled", expel("2026-09-30"));
    h.ok(REGISTRAR, L9, "contingent.expelled", expel("2026-12-01"));
    h.refused(
        "learner_not_enrolled",
        TEACHER,
        L9,
        "journal.grade_recorded",
        grade(json!({"class": "5Б", "lesson_date": "2026-12-01"})),
    );
    h.ok(TEACHER, L9, "journal.grade_recorded", grade(json!({"class": "5Б", "lesson_date": "2026-11-30"})));
    h.refused("learner_not_enrolled", REGISTRAR, L9, "contingent.expelled", expel("2026-12-02"));
    h.refused(
        "learner_not_enrolled",
        REGISTRAR,
        L9,
        "contingent.graduated",
        json!({"institution": "sch-001", "graduated_on": "2027-06-30"}),
    );
    // Readmitted elsewhere, before the last stay ended: out of order; after: accepted.
    h.refused(
        "contingent_date_out_of_order",
        ADMIN2,
        L9,
        "contingent.admitted",
        admitted("sch-002", "5А", "2026-11-01"),
    );
    h.ok(ADMIN2, L9, "contingent.admitted", admitted("sch-002", "5А", "2026-12-05"));
    h.ok(TEACHER2, L9, "journal.grade_recorded", grade(json!({"institution": "sch-002", "lesson_date": "2026-12-05"})));
    // Graduation ends the stay too.
    h.ok(ADMIN2, L9, "contingent.graduated", json!({"institution": "sch-002", "graduated_on": "2027-06-30"}));
    h.refused(
        "learner_not_enrolled",
        TEACHER2,
        L9,
        "journal.grade_recorded",
        grade(json!({"institution": "sch-002", "lesson_date": "2027-07-01"})),
    );
    // Term grades ask the event's date.
    let tg = json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "term": 1, "mark": 4, "scale": "five_point"});
    h.refused("learner_not_enrolled", CLASS_5A, L9, "journal.term_grade_set", tg.clone());
    h.ok(CLASS_5A, L1, "journal.term_grade_set", tg);
}

#[test]
fn transfers_leave_the_source_school() {
    let mut h = Harness::region();
    h.lesson("sch-002", "5А", "math", "2026-10-02");
    h.lesson("sch-001", "5А", "math", "2026-09-30");
    let tr = json!({"from_institution": "sch-002", "to_institution": "sch-001", "transferred_on": "2026-10-01"});
    let m = h.refused("learner_not_enrolled", ADMIN2, L1, "learner.transferred", tr);
    assert!(m.contains("enrolled in sch-001, not in sch-002"), "{m}");
    let tr = json!({"from_institution": "sch-001", "to_institution": "sch-002", "transferred_on": "2026-07-01"});
    h.refused("contingent_date_out_of_order", REGISTRAR, L1, "learner.transferred", tr);
    let tr = json!({"from_institution": "sch-001", "to_institution": "sch-002", "transferred_on": "2026-10-01"});
    h.ok(REGISTRAR, L1, "learner.transferred", tr);
    // The receiving school admits the learner into its class.
    h.refused(
        "learner_not_enrolled",
        TEACHER2,
        L1,
        "journal.grade_recorded",
        grade(json!({"institution": "sch-002", "lesson_date": "2026-10-02"})),
    );
    h.ok(ADMIN2, L1, "contingent.admitted", admitted("sch-002", "5А", "2026-10-02"));
    h.ok(TEACHER2, L1, "journal.grade_recorded", grade(json!({"institution": "sch-002", "lesson_date": "2026-10-02"})));
    h.ok(TEACHER, L1, "journal.grade_recorded", at_date("2026-09-30"));
}

#[test]
fn college_admission_leave_and_diploma() {
    let mut h = Harness::region();
    let col = "institution/col-001";
    let cur = json!({"program_id": "ЭК", "level": "secondary_vocational", "courses": ["economics", "law"]});
    h.refused("not_authorized", COL_TEACHER, col, "college.curriculum_registered", cur.clone());
    h.refused("institution_kind_mismatch", REGISTRAR, SCH1, "college.curriculum_registered", cur.clone());
    h.ok(COL_REGISTRAR, col, "college.curriculum_registered", cur.clone());
    h.refused("curriculum_already_registered", COL_REGISTRAR, col, "college.curriculum_registered", cur);
    h.refused(
        "event_malformed",
        COL_REGISTRAR,
        col,
        "college.curriculum_registered",
        json!({"program_id": "X", "level": "secondary_vocational", "courses": ["a", "a"]}),
    );
    h.refused(
        "diploma_level_unknown",
        COL_REGISTRAR,
        col,
        "college.curriculum_registered",
        json!({"program_id": "X", "level": "phd", "courses": ["a"]}),
    );
    let mut adm = admitted("col-001", "ЭК-21", "2026-09-01");
    h.refused("event_malformed", COL_REGISTRAR, L9, "contingent.admitted", adm.clone());
    adm["program_id"] = json!("ЮР");
    h.refused("program_unknown", COL_REGISTRAR, L9, "contingent.admitted", adm.clone());
    adm["program_id"] = json!("ЭК");
    h.ok(COL_REGISTRAR, L9, "contingent.admitted", adm);
    let cr = |course: &str, mark: &str| json!({"institution": "col-001", "group": "ЭК-21", "course": course, "term": 1, "mark": mark, "scale": "four_level"});
    h.at("2026-10-01T09:00:00Z");
    h.refused("learner_not_enrolled", COL_TEACHER, S1, "college.course_result_recorded", cr("economics", "хорошо"));
    h.ok(COL_TEACHER, L9, "college.course_result_recorded", cr("economics", "хорошо"));
    h.ok(COL_TEACHER, L9, "college.course_result_recorded", cr("law", "неудовлетворительно"));
    // Academic leave from November to March: no results then.
    let leave = |s: &str, e: &str| json!({"institution": "col-001", "starts_on": s, "ends_on": e, "reason": "health"});
    h.refused(
        "leave_dates_invalid",
        COL_REGISTRAR,
        L9,
        "contingent.academic_leave_granted",
        leave("2026-11-01", "2026-11-01"),
    );
    h.refused(
        "institution_kind_mismatch",
        REGISTRAR,
        L1,
        "contingent.academic_leave_granted",
        json!({"institution": "sch-001", "starts_on": "2026-11-01", "ends_on": "2027-03-01", "reason": "health"}),
    );
    h.refused(
        "learner_not_enrolled",
        COL_REGISTRAR,
        L1,
        "contingent.academic_leave_granted",
        leave("2026-11-01", "2027-03-01"),
    );
    h.ok(COL_REGISTRAR, L9, "contingent.academic_leave_granted", leave("2026-11-01", "2027-03-01"));
    h.at("2026-12-01T09:00:00Z");
    h.refused("learner_on_academic_leave", COL_TEACHER, L9, "college.course_result_recorded", cr("law", "хорошо"));
    let ex = json!({"institution": "col-001", "group": "ЭК-21", "course": "law", "term": 1, "form": "credit", "mark": "зачтено", "scale": "pass_fail"});
    h.refused("learner_on_academic_leave", COL_TEACHER, L9, "college.exam_recorded", ex.clone());
    // The diploma needs every course of the curriculum passed.
    let dip = |n: &str| json!({"institution": "col-001", "level": "secondary_vocational", "number": n, "issued_on": "2027-06-30"});
    h.at("2027-06-30T09:00:00Z");
    let m = h.refused("diploma_requirements_unmet", COL_REGISTRAR, L9, "college.diploma_issued", dip("D-9"));
    assert!(m.contains("not passed: law") && !m.contains("economics"), "{m}");
    // A diploma only for the college's own learner.
    let m = h.refused("learner_not_enrolled", COL_REGISTRAR, L1, "college.diploma_issued", dip("D-9"));
    assert!(m.contains("never enrolled there"), "{m}");
    h.ok(COL_TEACHER, L9, "college.exam_recorded", ex);
    h.ok(COL_REGISTRAR, L9, "college.diploma_issued", dip("D-9"));
    h.ok(COL_REGISTRAR, L9, "contingent.graduated", json!({"institution": "col-001", "graduated_on": "2027-07-01"}));
}

#[test]
fn certificates_need_passing_final_attestation() {
    let mut h = Harness::region();
    h.at("2027-06-20T09:00:00Z");
    let fa = |exam: &str, subject: &str, score: i64| json!({"institution": "sch-001", "exam": exam, "subject": subject, "academic_year": 2026, "score": score});
    // ОГЭ primary scores are bounded per subject (mathematics: 31).
    h.refused("score_out_of_range", REGISTRAR, L1, "journal.final_attestation_recorded", fa("oge", "Математика", 32));
    h.ok(REGISTRAR, L1, "journal.final_attestation_recorded", fa("oge", "Математика", 7));
    h.ok(REGISTRAR, L1, "journal.final_attestation_recorded", fa("oge", "Русский язык", 20));
    let cert = |level: &str, n: &str| json!({"institution": "sch-001", "level": level, "number": n, "issued_on": "2027-06-25"});
    let m = h.refused(
        "certificate_requirements_unmet",
        REGISTRAR,
        L1,
        "journal.certificate_issued",
        cert("basic_general", "A-1"),
    );
    assert!(m.contains("Математика (at least 8)") && !m.contains("Русский"), "{m}");
    // A retake that passes.
    h.ok(REGISTRAR, L1, "journal.final_attestation_recorded", fa("oge", "Математика", 8));
    h.ok(REGISTRAR, L1, "journal.certificate_issued", cert("basic_general", "A-1"));
    // ЕГЭ: 0-100 with minimum scores; an ОГЭ pass does not count for it.
    h.ok(REGISTRAR, L2, "journal.final_attestation_recorded", fa("ege", "Русский язык", 24));
    h.ok(REGISTRAR, L2, "journal.final_attestation_recorded", fa("ege", "Математика", 26));
    h.ok(REGISTRAR, L2, "journal.final_attestation_recorded", fa("oge", "Математика", 30));
    let m = h.refused(
        "certificate_requirements_unmet",
        REGISTRAR,
        L2,
        "journal.certificate_issued",
        cert("secondary_general", "A-2"),
    );
    assert!(m.contains("Математика (at least 27)"), "{m}");
    h.ok(REGISTRAR, L2, "journal.final_attestation_recorded", fa("ege", "Математика", 27));
    h.ok(REGISTRAR, L2, "journal.certificate_issued", cert("secondary_general", "A-2"));
}

/// A school issues its certificate only to its own learner: enrolled there on the issue date,
/// the day of leaving included (a certificate is handed over as a learner graduates), not after.
#[test]
fn a_certificate_is_issued_only_to_the_school_s_own_learner() {
    let mut h = Harness::region();
    h.at("2027-06-20T09:00:00Z");
    let fa = |inst: &str, subject: &str, score: i64| json!({"institution": inst, "exam": "oge", "subject": subject, "academic_year": 2026, "score": score});
    let cert = |inst: &str, n: &str, on: &str| json!({"institution": inst, "level": "basic_general", "number": n, "issued_on": on});
    for (who, learner) in [(REGISTRAR, L1), (REGISTRAR, L2)] {
        h.ok(who, learner, "journal.final_attestation_recorded", fa("sch-001", "Математика", 20));
        h.ok(who, learner, "journal.final_attestation_recorded", fa("sch-001", "Русский язык", 20));
    }
    // Another school's registrar, for a learner of sch-001.
    let (other_school, ty) = (cert("sch-002", "B-1", "2027-06-25"), "journal.certificate_issued");
    let m = h.refused("learner_not_enrolled", ADMIN2, L1, ty, other_school);
    assert!(m.contains("sch-002 cannot issue a school certificate") && m.contains("never enrolled there"), "{m}");
    // Graduated on 25 June: a certificate dated that day is the school's; one dated later is not.
    let grad = json!({"institution": "sch-001", "graduated_on": "2027-06-25"});
    h.ok(REGISTRAR, L1, "contingent.graduated", grad.clone());
    h.ok(REGISTRAR, L1, "journal.certificate_issued", cert("sch-001", "A-1", "2027-06-25"));
    h.ok(REGISTRAR, L2, "contingent.graduated", grad);
    let m = h.refused("learner_not_enrolled", REGISTRAR, L2, ty, cert("sch-001", "A-2", "2027-06-26"));
    assert!(m.contains("on 2027-06-26") && m.contains("to 2027-06-25"), "{m}");
}

#[test]
fn first_grade_orders_enrol_once_and_on_time() {
    let mut h = Harness::region();
    let app = |id: &str, learner: &str, window: i64| json!({"application_id": id, "learner": learner, "target_year": 2027, "window": window, "basis": if window == 1 { "territory" } else { "general" }, "birth_month": "2020-12"});
    let order = |id: &str, apps: &[&str], date: &str| json!({"order_id": id, "target_year": 2027, "applications": apps, "order_date": date});
    h.at("2027-05-01T09:00:00Z");
    h.ok(REGISTRAR, SCH1, "enrolment.application_submitted", app("a1", "47-100001", 1));
    h.ok(REGISTRAR, SCH1, "enrolment.application_submitted", app("a2", "47-100002", 1));
    h.ok(REGISTRAR, SCH1, "enrolment.application_submitted", app("a3", "47-100002", 1));
    h.ok(ADMIN2, SCH2, "enrolment.application_submitted", app("b1", "47-100001", 1));
    for s in [SCH1, SCH2] {
        let admin = if s == SCH1 { ADMIN } else { ADMIN2 };
        h.ok(admin, s, "enrolment.places_published", json!({"target_year": 2027, "places": 10}));
    }
    // 30 June 2027 is a Wednesday: 1, 2 and 5 July are the three working days after it.
    h.at("2027-07-05T09:00:00Z");
    let m =
        h.refused("enrolment_order_late", ADMIN, SCH1, "enrolment.order_issued", order("o1", &["a1"], "2027-07-06"));
    assert!(m.contains("due by 2027-07-05"), "{m}");
    // A backdated order date does not hide a late event.
    h.at("2027-07-06T09:00:00Z");
    h.refused("enrolment_order_late", ADMIN, SCH1, "enrolment.order_issued", order("o1", &["a1"], "2027-07-02"));
    h.at("2027-07-05T09:00:00Z");
    h.refused(
        "learner_already_enrolled",
        ADMIN,
        SCH1,
        "enrolment.order_issued",
        order("o1", &["a2", "a3"], "2027-07-05"),
    );
    h.ok(ADMIN, SCH1, "enrolment.order_issued", order("o1", &["a1", "a2"], "2027-07-05"));
    // The same learner, enrolled by sch-001's order, applied to sch-002 too.
    let m = h.refused(
        "learner_already_enrolled",
        ADMIN2,
        SCH2,
        "enrolment.order_issued",
        order("o2", &["b1"], "2027-07-05"),
    );
    assert!(m.contains("1st grade of sch-001 for 2027"), "{m}");
    // The order enrolled them into the 1st grade from 1 September: attendance in any 1st-grade
    // class, none before, no other admission.
    let att = |d: &str| json!({"institution": "sch-001", "class": "1А", "lesson_date": d, "code": "Н"});
    h.at("2027-09-02T09:00:00Z");
    h.lesson("sch-001", "1А", "reading", "2027-09-01");
    h.refused("learner_not_enrolled", TEACHER_1A, "learner/47-100001", "journal.attendance_marked", att("2027-08-31"));
    h.ok(TEACHER_1A, "learner/47-100001", "journal.attendance_marked", att("2027-09-01"));
    h.refused(
        "learner_already_enrolled",
        ADMIN2,
        "learner/47-100001",
        "contingent.admitted",
        merged(admitted("sch-002", "1А", "2027-09-01"), json!({"academic_year": 2027})),
    );
    h.ok(
        REGISTRAR,
        "learner/47-100001",
        "contingent.class_assigned",
        json!({"institution": "sch-001", "class": "1Б", "academic_year": 2027, "assigned_on": "2027-09-02"}),
    );
    h.refused("learner_not_enrolled", TEACHER_1A, "learner/47-100001", "journal.attendance_marked", att("2027-09-02"));
}

#[test]
fn working_days_are_region_data() {
    let mut config = zachetka_rules::RegionConfig::default();
    // 1 July 2027 declared a holiday: the deadline moves to 6 July.
    config.calendar.holidays.push("2027-07-01".into());
    let mut h = Harness::with_config(config);
    h.ok(AUTH, "registry", "ledger.established", json!({"origin": ORIGIN, "authority": AUTH}));
    h.ok(
        AUTH,
        "registry",
        "registry.institution_registered",
        json!({"institution": "sch-001", "kind": "school", "territory": "t"}),
    );
    h.grant(AUTH, ADMIN, "p-a", &["institution_admin"], json!({"institution": "sch-001"}));
    h.at("2027-05-01T09:00:00Z");
    h.ok(ADMIN, SCH1, "enrolment.application_submitted", json!({"application_id": "a1", "learner": "47-1", "target_year": 2027, "window": 1, "basis": "territory", "birth_month": "2020-12"}));
    h.ok(ADMIN, SCH1, "enrolment.places_published", json!({"target_year": 2027, "places": 1}));
    h.at("2027-07-06T09:00:00Z");
    h.ok(
        ADMIN,
        SCH1,
        "enrolment.order_issued",
        json!({"order_id": "o1", "target_year": 2027, "applications": ["a1"], "order_date": "2027-07-06"}),
    );
}

#[test]
fn staff_records_are_attested_by_their_issuers() {
    let mut h = Harness::region();
    h.grant(AUTH, ISSUER_STAFF, "p-loiro", &["staff_record_issuer"], json!({"territory": "region"}));
    // An institution admin may not delegate the issuer role.
    h.refused("not_authorized", ADMIN, "registry", "keys.granted", json!({"key": "did:key:z6MkX1", "holder": "p", "roles": ["staff_record_issuer"], "scope": {"institution": "sch-001"}, "valid_from": "2026-01-01T00:00:00Z"}));
    let t = "teacher/t-0001";
    let course = |id: &str, hours: i64, on: &str| json!({"record_id": id, "institution": "sch-001", "course": "ФГОС-2021: обновлённые стандарты", "provider": "loiro", "hours": hours, "completed_on": on});
    h.ok(ISSUER_STAFF, t, "staff.course_completed", course("c-1", 72, "2026-08-20"));
    h.refused("not_authorized", ADMIN, t, "staff.course_completed", course("c-2", 72, "2026-08-20"));
    h.refused("not_authorized", ISSUER, t, "staff.course_completed", course("c-2", 72, "2026-08-20"));
    h.refused("staff_record_duplicate", ISSUER_STAFF, t, "staff.course_completed", course("c-1", 72, "2026-08-20"));
    h.refused("course_hours_invalid", ISSUER_STAFF, t, "staff.course_completed", course("c-2", 0, "2026-08-20"));
    h.refused("record_date_in_future", ISSUER_STAFF, t, "staff.course_completed", course("c-2", 36, "2026-09-02"));
    let mut other = course("c-2", 36, "2026-08-20");
    other["institution"] = json!("sch-404");
    h.refused("institution_unknown", ISSUER_STAFF, t, "staff.course_completed", other);
    let comp = |level: &str, result: &str| json!({"record_id": "k-1", "institution": "sch-001", "competition": "Учитель года", "level": level, "result": result, "date": "2026-05-15"});
    h.refused(
        "competition_level_unknown",
        ISSUER_STAFF,
        t,
        "staff.competition_result_recorded",
        comp("galactic", "winner"),
    );
    h.refused(
        "competition_result_unknown",
        ISSUER_STAFF,
        t,
        "staff.competition_result_recorded",
        comp("regional", "champion"),
    );
    h.ok(ISSUER_STAFF, t, "staff.competition_result_recorded", comp("regional", "laureate"));
    h.refused("stream_mismatch", ISSUER_STAFF, L1, "staff.competition_result_recorded", comp("regional", "winner"));
}

#[test]
fn indicator_records() {
    let mut h = Harness::region();
    let rec = |id: &str, kind: &str| json!({"recommendation_id": id, "institution": "sch-001", "kind": kind, "offered_on": "2026-09-01"});
    h.ok(CLASS_5A, L1, "digital.recommendation_offered", rec("r-1", "individual_trajectory"));
    h.refused("digital_record_duplicate", CLASS_5A, L1, "digital.recommendation_offered", rec("r-1", "recommendation"));
    h.refused("recommendation_kind_unknown", CLASS_5A, L1, "digital.recommendation_offered", rec("r-2", "horoscope"));
    h.refused("learner_not_enrolled", CLASS_5A, L9, "digital.recommendation_offered", rec("r-2", "recommendation"));
    h.refused("not_authorized", TEACHER2, L1, "digital.recommendation_offered", rec("r-2", "recommendation"));
    let tacc = |id: &str, service: &str| json!({"access_id": id, "institution": "sch-001", "service": service, "granted_on": "2026-09-01"});
    h.ok(ADMIN, "teacher/t-0001", "digital.teacher_content_access_granted", tacc("ta-1", "resh"));
    h.refused(
        "digital_service_not_verified",
        ADMIN,
        "teacher/t-0001",
        "digital.teacher_content_access_granted",
        tacc("ta-2", "sferum-library"),
    );
    h.refused(
        "not_authorized",
        TEACHER,
        "teacher/t-0001",
        "digital.teacher_content_access_granted",
        tacc("ta-2", "resh"),
    );
    h.ok(ADMIN, L1, "digital.learner_content_access_granted", tacc("la-1", "sferum-library"));
    h.refused(
        "digital_service_not_verified",
        ADMIN,
        L1,
        "digital.learner_content_access_granted",
        tacc("la-2", "biblioteka-mesh"),
    );
    h.refused("learner_not_enrolled", ADMIN, L9, "digital.learner_content_access_granted", tacc("la-2", "resh"));
    let asg = |id: &str, class: &str, checking: &str| json!({"assignment_id": id, "class": class, "subject": "math", "checking": checking, "assigned_on": "2026-09-01"});
    h.ok(TEACHER_5A, SCH1, "digital.assignment_recorded", asg("as-1", "5А", "automatic"));
    h.ok(TEACHER_5A, SCH1, "digital.assignment_recorded", asg("as-2", "5А", "manual"));
    h.refused("digital_record_duplicate", TEACHER_5A, SCH1, "digital.assignment_recorded", asg("as-1", "5А", "manual"));
    h.refused("checking_method_unknown", TEACHER_5A, SCH1, "digital.assignment_recorded", asg("as-3", "5А", "peer"));
    h.refused("not_authorized", TEACHER_5A, SCH1, "digital.assignment_recorded", asg("as-3", "6А", "manual"));
}

#[test]
fn the_region_config_checks_the_new_lists() {
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut v = serde_json::to_value(zachetka_rules::RegionConfig::default()).unwrap();
        f(&mut v);
        zachetka_rules::RegionConfig::from_json(&v.to_string()).unwrap_err()
    };
    assert!(bad(&|v| v["calendar"]["weekend_days"] = json!([0])).contains("weekend_days"));
    assert!(bad(&|v| v["calendar"]["school_days"] = json!([1, 8])).contains("school_days"));
    assert!(bad(&|v| v["calendar"]["holidays"] = json!(["2027-13-01"])).contains("2027-13-01"));
    assert!(
        bad(&|v| v["certificate_requirements"]["basic_general"]["exam"] = json!("sat")).contains("unknown exam sat")
    );
    assert!(bad(&|v| v["certificate_requirements"]["basic_general"]["subjects"]["Математика"]["pass"] = json!(40))
        .contains("Математика"));
    assert!(bad(&|v| v["certificate_requirements"]["basic_general"]["required_subjects"] = json!(["Химия"]))
        .contains("Химия"));
}

#[test]
fn class_membership_names_the_academic_year_it_starts_in() {
    // Review s11 finding 5: the contingent keeps class membership per academic year, so an
    // admission or a class names the academic year of its first day, or, for a stay that starts
    // in the summer (June to August), the year that begins on 1 September after it.
    let mut h = Harness::region();
    let class = |year: i64, on: &str| json!({"institution": "sch-001", "class": "5Б", "academic_year": year, "assigned_on": on});
    let m = h.refused("academic_year_mismatch", REGISTRAR, L1, "contingent.class_assigned", class(2017, "2026-10-01"));
    assert!(m.contains("academic_year 2017") && m.contains("2026-10-01") && m.contains("2026/27"), "{m}");
    h.refused("academic_year_mismatch", REGISTRAR, L1, "contingent.class_assigned", class(2027, "2026-10-01"));
    h.refused("academic_year_mismatch", REGISTRAR, L1, "contingent.class_assigned", class(2025, "2026-10-01"));
    h.ok(REGISTRAR, L1, "contingent.class_assigned", class(2026, "2026-10-01"));
    let mut adm = admitted("sch-001", "7А", "2026-08-20");
    adm["academic_year"] = json!(2024);
    h.refused("academic_year_mismatch", REGISTRAR, L9, "contingent.admitted", adm.clone());
    // A summer admission names the coming year or the one ending.
    adm["academic_year"] = json!(2026);
    h.ok(REGISTRAR, L9, "contingent.admitted", adm);
}
