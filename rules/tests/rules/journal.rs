//! School journal, corrections, debts and retakes, promotion, final attestation, certificates,
//! and the college/university record book.

use crate::harness::*;
use serde_json::json;

#[test]
fn grades_follow_scale_weight_and_year() {
    let mut h = Harness::region();
    for mark in [json!(2), json!(3), json!(4), json!(5), json!("4")] {
        h.ok(TEACHER, L1, "journal.grade_recorded", grade(json!({"mark": mark})));
    }
    h.ok(TEACHER, L1, "journal.grade_recorded", grade(json!({"kind": "homework", "weight": 1})));
    h.ok(TEACHER, L1, "journal.grade_recorded", grade(json!({"kind": "classwork", "weight": 3})));
    assert!(h
        .refused("grade_out_of_scale", TEACHER, L1, "journal.grade_recorded", grade(json!({"mark": 6})))
        .contains("five_point"));
    h.refused("grade_out_of_scale", TEACHER, L1, "journal.grade_recorded", grade(json!({"mark": 1})));
    h.refused("grade_out_of_scale", TEACHER, L1, "journal.grade_recorded", grade(json!({"mark": "отлично"})));
    h.refused(
        "scale_not_allowed",
        TEACHER,
        L1,
        "journal.grade_recorded",
        grade(json!({"mark": "отлично", "scale": "four_level"})),
    );
    h.refused("scale_unknown", TEACHER, L1, "journal.grade_recorded", grade(json!({"scale": "ten_point"})));
    h.refused("grade_weight_mismatch", TEACHER, L1, "journal.grade_recorded", grade(json!({"weight": 3})));
    h.refused("grade_kind_unknown", TEACHER, L1, "journal.grade_recorded", grade(json!({"kind": "essay"})));
    h.refused("no_marks_in_first_grade", TEACHER_1A, L2, "journal.grade_recorded", grade(json!({"class": "1А"})));
    h.refused("no_marks_in_first_grade", TEACHER, L2, "journal.term_grade_set", json!({"institution": "sch-001", "class": "1Б", "subject": "math", "academic_year": 2026, "term": 1, "mark": 5, "scale": "five_point"}));
    h.refused("class_malformed", TEACHER, L1, "journal.grade_recorded", grade(json!({"class": "пятый"})));
    h.refused("class_malformed", TEACHER, L1, "journal.grade_recorded", grade(json!({"class": "12А"})));
    assert!(h
        .refused("event_malformed", TEACHER, L1, "journal.grade_recorded", grade(json!({"mark": "-"})))
        .contains("data.mark"));
    assert!(h
        .refused("event_malformed", TEACHER, L1, "journal.grade_recorded", grade(json!({"lesson_date": "2026-02-30"})))
        .contains("data.lesson_date"));
    h.refused("payload_type_not_allowed", TEACHER, L1, "journal.grade_recorded", grade(json!({"weight": 5.0})));
    h.refused("stream_mismatch", TEACHER, "institution/sch-001", "journal.grade_recorded", grade(json!({})));
}

#[test]
fn attendance_codes_are_data() {
    let mut h = Harness::region();
    let att = |code: &str| json!({"institution": "sch-001", "class": "1А", "lesson_date": "2026-09-02", "code": code});
    for code in ["Н", "Б", "УП", "ОП"] {
        h.ok(TEACHER_1A, L3, "journal.attendance_marked", att(code));
    }
    h.refused("attendance_code_unknown", TEACHER_1A, L3, "journal.attendance_marked", att("X"));
    let mut config = zachetka_rules::RegionConfig::default();
    config.attendance_codes.insert("X".into(), "remote".into());
    let mut h2 = Harness::with_config(config);
    h2.ok(AUTH, "registry", "ledger.established", json!({"origin": ORIGIN, "authority": AUTH}));
    h2.ok(
        AUTH,
        "registry",
        "registry.institution_registered",
        json!({"institution": "sch-001", "kind": "school", "territory": "t"}),
    );
    h2.grant(AUTH, TEACHER, "t-1", &["teacher", "registrar"], json!({"institution": "sch-001"}));
    h2.admit(TEACHER, L2, "sch-001", "1А", None);
    h2.lesson("sch-001", "1А", "reading", "2026-09-02");
    h2.ok(TEACHER, L2, "journal.attendance_marked", att("X"));
}

#[test]
fn lessons_are_held_in_the_teachers_institution() {
    let mut h = Harness::region();
    let lesson = json!({"lesson_id": "l-1", "class": "5А", "subject": "math", "lesson_date": "2026-09-01"});
    h.ok(TEACHER_5A, "institution/sch-001", "journal.lesson_held", lesson.clone());
    h.refused("not_authorized", TEACHER_5A, "institution/sch-002", "journal.lesson_held", lesson.clone());
    h.refused("stream_mismatch", TEACHER_5A, "institution/", "journal.lesson_held", lesson);
}

#[test]
fn lessons_marks_and_attendance_fall_on_school_days() {
    let mut h = Harness::region();
    let lesson =
        |date: &str| json!({"lesson_id": format!("l-{date}"), "class": "5А", "subject": "math", "lesson_date": date});
    let sch1 = "institution/sch-001";
    // 2026-09-06 is a Sunday; 2026-11-04 and 2027-03-08 are public holidays of the region.
    let m = h.refused("not_a_school_day", TEACHER_5A, sch1, "journal.lesson_held", lesson("2026-09-06"));
    assert!(m.contains("2026-09-06") && m.contains("sunday"), "{m}");
    let m = h.refused("not_a_school_day", TEACHER_5A, sch1, "journal.lesson_held", lesson("2026-11-04"));
    assert!(m.contains("2026-11-04") && m.contains("public holiday"), "{m}");
    // The school week has six days: Saturday is a school day.
    h.ok(TEACHER_5A, sch1, "journal.lesson_held", lesson("2026-09-05"));
    h.ok(TEACHER, L1, "journal.grade_recorded", grade(json!({"lesson_date": "2026-09-05"})));
    // Marks and attendance too, whatever lessons the log holds.
    let m = h.refused(
        "not_a_school_day",
        TEACHER,
        L1,
        "journal.grade_recorded",
        grade(json!({"lesson_date": "2026-09-06"})),
    );
    assert!(m.contains("sunday"), "{m}");
    let m = h.refused(
        "not_a_school_day",
        TEACHER,
        L1,
        "journal.grade_recorded",
        grade(json!({"lesson_date": "2027-03-08"})),
    );
    assert!(m.contains("2027-03-08") && m.contains("public holiday"), "{m}");
    let att = |date: &str| json!({"institution": "sch-001", "class": "5А", "lesson_date": date, "code": "Н"});
    h.refused("not_a_school_day", TEACHER, L1, "journal.attendance_marked", att("2026-09-13"));
    h.refused("not_a_school_day", TEACHER, L1, "journal.attendance_marked", att("2026-11-04"));
    // A region with a five-day school week: Saturday is a day off, unless worked by transfer.
    let mut config = zachetka_rules::RegionConfig::default();
    config.calendar.school_days = vec![1, 2, 3, 4, 5];
    config.calendar.working_weekends = vec!["2026-09-12".into()];
    let mut h5 = Harness::with_config(config);
    h5.ok(AUTH, "registry", "ledger.established", json!({"origin": ORIGIN, "authority": AUTH}));
    h5.ok(
        AUTH,
        "registry",
        "registry.institution_registered",
        json!({"institution": "sch-001", "kind": "school", "territory": "t"}),
    );
    h5.grant(AUTH, TEACHER, "t-1", &["teacher"], json!({"institution": "sch-001"}));
    let m = h5.refused("not_a_school_day", TEACHER, sch1, "journal.lesson_held", lesson("2026-09-05"));
    assert!(m.contains("saturday"), "{m}");
    h5.ok(TEACHER, sch1, "journal.lesson_held", lesson("2026-09-12"));
}

#[test]
fn marks_and_attendance_are_given_at_a_lesson_held_that_day() {
    let mut h = Harness::region();
    // 2026-09-03: no lesson of 5А in the log yet.
    let at = |subject: &str| grade(json!({"subject": subject, "lesson_date": "2026-09-03"}));
    let m = h.refused("lesson_not_held", TEACHER, L1, "journal.grade_recorded", at("math"));
    assert!(m.contains("class 5А of sch-001") && m.contains("math") && m.contains("2026-09-03"), "{m}");
    // A lesson of another subject that day: the mark is still not given at a lesson; the refusal
    // names the lessons the class had.
    h.lesson("sch-001", "5А", "history", "2026-09-03");
    let m = h.refused("lesson_not_held", TEACHER, L1, "journal.grade_recorded", at("math"));
    assert!(m.contains("its lessons that day: history"), "{m}");
    // A math lesson of another class, of the same class name in another school, or on another
    // day does not count either.
    h.lesson("sch-001", "5Б", "math", "2026-09-03");
    h.lesson("sch-002", "5А", "math", "2026-09-03");
    h.lesson("sch-001", "5А", "math", "2026-09-04");
    h.refused("lesson_not_held", TEACHER, L1, "journal.grade_recorded", at("math"));
    // Once the lesson is in the log, its marks are.
    h.lesson("sch-001", "5А", "math", "2026-09-03");
    h.ok(TEACHER, L1, "journal.grade_recorded", at("math"));
    h.ok(TEACHER, L1, "journal.grade_recorded", at("history"));
    // Attendance: at a lesson of its subject, or of any subject when it names none.
    let att = |date: &str, subject: Option<&str>| {
        let mut a = json!({"institution": "sch-001", "class": "5А", "lesson_date": date, "code": "Н"});
        if let Some(s) = subject {
            a["subject"] = json!(s);
        }
        a
    };
    let m = h.refused("lesson_not_held", TEACHER, L1, "journal.attendance_marked", att("2026-09-07", None));
    assert!(m.contains("class 5А of sch-001 has no lesson on 2026-09-07"), "{m}");
    h.refused("lesson_not_held", TEACHER, L1, "journal.attendance_marked", att("2026-09-03", Some("physics")));
    h.ok(TEACHER, L1, "journal.attendance_marked", att("2026-09-03", Some("history")));
    h.ok(TEACHER, L1, "journal.attendance_marked", att("2026-09-04", None));
}

#[test]
fn imported_marks_need_a_school_day_but_no_lesson() {
    let mut h = Harness::region();
    let migrator = "did:key:z6MkMigrationBars";
    h.grant(AUTH, migrator, "p-migr", &["migration", "teacher"], json!({"institution": "sch-001"}));
    h.recorded_at(Some("2026-10-20T09:00:00Z")).at("2026-09-03T09:00:00Z");
    let source = |record: &str| json!({"system": "BARS", "record": record});
    // Legacy systems did not always export lessons: an imported mark or attendance mark needs none.
    h.ok(
        migrator,
        L1,
        "journal.grade_recorded",
        grade(json!({"lesson_date": "2026-09-03", "migrated_from": source("m-1")})),
    );
    let att = json!({"institution": "sch-001", "class": "5А", "lesson_date": "2026-09-03", "code": "Н", "migrated_from": source("a-1")});
    h.ok(migrator, L1, "journal.attendance_marked", att);
    // The same mark written here and now needs its lesson.
    h.recorded_at(None);
    h.refused("lesson_not_held", TEACHER, L1, "journal.grade_recorded", grade(json!({"lesson_date": "2026-09-03"})));
    // The calendar holds for imports: no mark, attendance or lesson on a Sunday or a holiday.
    h.recorded_at(Some("2026-10-20T09:00:00Z"));
    let m = h.refused(
        "not_a_school_day",
        migrator,
        L1,
        "journal.grade_recorded",
        grade(json!({"lesson_date": "2026-09-06", "migrated_from": source("m-2")})),
    );
    assert!(m.contains("sunday"), "{m}");
    let lesson = json!({"lesson_id": "l-h", "class": "5А", "subject": "math", "lesson_date": "2026-11-04", "migrated_from": source("l-1")});
    h.refused("not_a_school_day", migrator, "institution/sch-001", "journal.lesson_held", lesson);
}

#[test]
fn corrections_name_an_event_of_the_same_learner() {
    let mut h = Harness::region();
    h.lesson("sch-001", "5А", "math", "2026-09-02");
    let g1 = h.ok(TEACHER, L1, "journal.grade_recorded", grade(json!({"mark": 3})));
    let g2 = h.ok(TEACHER, L2, "journal.grade_recorded", grade(json!({})));
    let a1 = h.ok(
        TEACHER,
        L1,
        "journal.attendance_marked",
        json!({"institution": "sch-001", "class": "5А", "lesson_date": "2026-09-02", "code": "Н"}),
    );
    let ach = h.ok(ISSUER, L1, "portfolio.achievement_attested", json!({"achievement_id": "ac-1", "kind": "olympiad", "level": "school", "date": "2026-08-20", "result": "winner"}));
    let corr = |id: &str, extra: serde_json::Value| {
        let mut c = json!({"institution": "sch-001", "class": "5А", "corrected_event_id": id, "reason": "typo", "authorised_by": ADMIN});
        merge(&mut c, extra);
        c
    };
    h.ok(TEACHER, L1, "journal.record_corrected", corr(&g1, json!({"mark": 4, "scale": "five_point"})));
    h.ok(CLASS_5A, L1, "journal.record_corrected", corr(&a1, json!({"code": "УП", "authorised_by": CLASS_5A})));
    h.ok(TEACHER, L1, "journal.record_corrected", corr(&g1, json!({})));
    h.refused(
        "corrected_event_unknown",
        TEACHER,
        L1,
        "journal.record_corrected",
        corr("00000000-0000-4000-8000-ffffffffffff", json!({})),
    );
    h.refused("corrected_event_other_learner", TEACHER, L1, "journal.record_corrected", corr(&g2, json!({})));
    h.refused("corrected_event_not_correctable", TEACHER, L1, "journal.record_corrected", corr(&ach, json!({})));
    h.refused(
        "authoriser_not_authorized",
        TEACHER,
        L1,
        "journal.record_corrected",
        corr(&g1, json!({"authorised_by": TEACHER})),
    );
    h.refused(
        "authoriser_not_authorized",
        TEACHER,
        L1,
        "journal.record_corrected",
        corr(&g1, json!({"authorised_by": ADMIN2})),
    );
    h.refused(
        "grade_out_of_scale",
        TEACHER,
        L1,
        "journal.record_corrected",
        corr(&g1, json!({"mark": 7, "scale": "five_point"})),
    );
    h.refused("event_malformed", TEACHER, L1, "journal.record_corrected", corr(&g1, json!({"mark": 4})));
    h.refused(
        "event_malformed",
        TEACHER,
        L1,
        "journal.record_corrected",
        corr(&g1, json!({"mark": 4, "scale": "five_point", "code": "Н"})),
    );
    h.refused("attendance_code_unknown", TEACHER, L1, "journal.record_corrected", corr(&a1, json!({"code": "?"})));
    h.refused("not_authorized", TEACHER_5A, L1, "journal.record_corrected", corr(&g1, json!({"class": "6Б"})));
}

#[test]
fn term_year_and_intermediate_grades() {
    let mut h = Harness::region();
    let tg = |term: i64| json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "term": term, "mark": 4, "scale": "five_point"});
    h.ok(CLASS_5A, L1, "journal.term_grade_set", tg(1));
    h.ok(CLASS_5A, L1, "journal.term_grade_set", tg(4));
    h.refused("term_out_of_range", CLASS_5A, L1, "journal.term_grade_set", tg(5));
    h.refused("term_out_of_range", CLASS_5A, L1, "journal.term_grade_set", tg(0));
    let yg = json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "mark": 4, "scale": "five_point"});
    h.ok(TEACHER, L1, "journal.year_grade_set", yg.clone());
    h.ok(TEACHER, L1, "journal.intermediate_attestation_recorded", yg.clone());
    let mut bad = yg;
    bad["mark"] = json!(0);
    h.refused("grade_out_of_scale", TEACHER, L1, "journal.intermediate_attestation_recorded", bad.clone());
    h.refused("grade_out_of_scale", TEACHER, L1, "journal.year_grade_set", bad);
}

fn fail_attestation(h: &mut Harness, stream: &str) -> String {
    h.ok(TEACHER, stream, "journal.intermediate_attestation_recorded", json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "mark": 2, "scale": "five_point"}))
}

fn debt(id: &str, att: &str) -> serde_json::Value {
    json!({"debt_id": id, "institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "opened_on": "2027-05-30", "attestation_event_id": att})
}

fn retake(id: &str, on: &str, mark: i64, commission: &[&str]) -> serde_json::Value {
    let mut r = json!({"debt_id": id, "institution": "sch-001", "class": "5А", "held_on": on, "mark": mark, "scale": "five_point"});
    if !commission.is_empty() {
        r["commission"] = json!(commission);
    }
    r
}

#[test]
fn debts_allow_two_retakes_the_second_before_a_commission() {
    let mut h = Harness::region();
    h.at("2027-05-30T09:00:00Z");
    let att = fail_attestation(&mut h, L1);
    let g = h.ok(TEACHER, L1, "journal.grade_recorded", grade(json!({})));
    h.refused("attestation_event_unknown", CLASS_5A, L1, "journal.academic_debt_opened", debt("d-1", &g));
    h.refused("attestation_event_unknown", CLASS_5A, L1, "journal.academic_debt_opened", debt("d-1", "nope"));
    h.refused("attestation_event_unknown", CLASS_5A, L2, "journal.academic_debt_opened", debt("d-1", &att));
    h.ok(CLASS_5A, L1, "journal.academic_debt_opened", debt("d-1", &att));
    h.refused("debt_already_opened", CLASS_5A, L1, "journal.academic_debt_opened", debt("d-1", &att));
    h.refused("debt_unknown", TEACHER, L2, "journal.retake_recorded", retake("d-1", "2027-06-10", 3, &[]));
    h.refused("retake_before_debt", TEACHER, L1, "journal.retake_recorded", retake("d-1", "2027-05-01", 3, &[]));
    h.refused("retake_after_deadline", TEACHER, L1, "journal.retake_recorded", retake("d-1", "2028-06-10", 3, &[]));
    h.ok(TEACHER, L1, "journal.retake_recorded", retake("d-1", "2027-06-10", 2, &[]));
    h.refused(
        "retake_requires_commission",
        TEACHER,
        L1,
        "journal.retake_recorded",
        retake("d-1", "2027-09-10", 2, &[]),
    );
    // One person named three times, or a stranger, does not make a commission.
    h.refused(
        "retake_requires_commission",
        TEACHER,
        L1,
        "journal.retake_recorded",
        retake("d-1", "2027-09-10", 2, &[TEACHER, TEACHER, TEACHER]),
    );
    h.refused(
        "retake_requires_commission",
        TEACHER,
        L1,
        "journal.retake_recorded",
        retake("d-1", "2027-09-10", 2, &[TEACHER, CLASS_5A, TEACHER2]),
    );
    h.ok(TEACHER, L1, "journal.retake_recorded", retake("d-1", "2027-09-10", 2, &[TEACHER, CLASS_5A, ADMIN]));
    h.refused(
        "retake_limit_reached",
        TEACHER,
        L1,
        "journal.retake_recorded",
        retake("d-1", "2027-10-10", 4, &[TEACHER, CLASS_5A, ADMIN]),
    );
    // A passed retake closes the debt.
    let att2 = fail_attestation(&mut h, L2);
    h.ok(CLASS_5A, L2, "journal.academic_debt_opened", debt("d-2", &att2));
    h.ok(TEACHER, L2, "journal.retake_recorded", retake("d-2", "2027-06-10", 4, &[]));
    h.refused("debt_closed", TEACHER, L2, "journal.retake_recorded", retake("d-2", "2027-06-11", 5, &[]));
}

#[test]
fn promotion_and_documents_depend_on_open_debts() {
    let mut h = Harness::region();
    h.at("2027-05-30T09:00:00Z");
    let promo = |basis: &str| json!({"institution": "sch-001", "from_class": "5А", "to_class": "6А", "academic_year": 2026, "basis": basis});
    let cert =
        |n: &str| json!({"institution": "sch-001", "level": "basic_general", "number": n, "issued_on": "2027-06-25"});
    h.refused("conditional_promotion_without_debt", CLASS_5A, L1, "journal.promoted", promo("conditional"));
    h.refused("promotion_basis_unknown", CLASS_5A, L1, "journal.promoted", promo("sideways"));
    h.refused("not_authorized", TEACHER_5A, L1, "journal.promoted", promo("full"));
    // A promotion from a class the learner is not in (L3 is in 1А).
    h.refused("learner_not_enrolled", CLASS_5A, L3, "journal.promoted", promo("full"));
    h.ok(CLASS_5A, L2, "journal.promoted", promo("full"));
    let att = fail_attestation(&mut h, L1);
    h.ok(CLASS_5A, L1, "journal.academic_debt_opened", debt("d-1", &att));
    h.refused("open_debt_blocks_promotion", CLASS_5A, L1, "journal.promoted", promo("full"));
    h.ok(CLASS_5A, L1, "journal.promoted", promo("conditional"));
    h.refused("open_debt_blocks_certificate", REGISTRAR, L1, "journal.certificate_issued", cert("A-1"));
    let oge = |subject: &str, score: i64| json!({"institution": "sch-001", "exam": "oge", "subject": subject, "academic_year": 2026, "score": score});
    h.ok(REGISTRAR, L2, "journal.final_attestation_recorded", oge("Математика", 8));
    h.ok(REGISTRAR, L2, "journal.final_attestation_recorded", oge("Русский язык", 15));
    h.ok(REGISTRAR, L2, "journal.certificate_issued", cert("A-1"));
    h.refused("document_number_duplicate", REGISTRAR, "learner/47-000003", "journal.certificate_issued", cert("A-1"));
    h.refused(
        "certificate_level_unknown",
        REGISTRAR,
        L2,
        "journal.certificate_issued",
        json!({"institution": "sch-001", "level": "gold", "number": "A-2", "issued_on": "2027-06-25"}),
    );
    h.refused("not_authorized", TEACHER, L2, "journal.certificate_issued", cert("A-3"));
    h.refused(
        "institution_kind_mismatch",
        COL_REGISTRAR,
        L2,
        "journal.certificate_issued",
        json!({"institution": "col-001", "level": "basic_general", "number": "A-2", "issued_on": "2027-06-25"}),
    );
}

#[test]
fn final_attestation_scores() {
    let mut h = Harness::region();
    let fa = |exam: &str, score: i64| json!({"institution": "sch-001", "exam": exam, "subject": "math", "academic_year": 2026, "score": score});
    h.ok(REGISTRAR, L1, "journal.final_attestation_recorded", fa("ege", 87));
    h.ok(ADMIN, L1, "journal.final_attestation_recorded", fa("oge", 0));
    h.refused("score_out_of_range", REGISTRAR, L1, "journal.final_attestation_recorded", fa("ege", 101));
    h.refused("score_out_of_range", REGISTRAR, L1, "journal.final_attestation_recorded", fa("ege", -1));
    h.refused("exam_kind_unknown", REGISTRAR, L1, "journal.final_attestation_recorded", fa("sat", 50));
    h.refused("not_authorized", TEACHER, L1, "journal.final_attestation_recorded", fa("ege", 50));
}

#[test]
fn college_record_book() {
    let mut h = Harness::region();
    let cr = |mark: serde_json::Value, scale: &str| json!({"institution": "col-001", "group": "ИС-21", "course": "databases", "term": 3, "mark": mark, "scale": scale});
    h.ok(COL_TEACHER, S1, "college.course_result_recorded", cr(json!("хорошо"), "four_level"));
    // Each scale the level uses, in another term (one result per course and term).
    let mut five = cr(json!(5), "five_point");
    five["term"] = json!(4);
    h.ok(COL_TEACHER, S1, "college.course_result_recorded", five);
    let mut pass_fail = cr(json!("не зачтено"), "pass_fail");
    pass_fail["term"] = json!(5);
    h.ok(COL_TEACHER, S1, "college.course_result_recorded", pass_fail);
    h.refused(
        "grade_out_of_scale",
        COL_TEACHER,
        S1,
        "college.course_result_recorded",
        cr(json!("отлично"), "pass_fail"),
    );
    h.refused("not_authorized", TEACHER, S1, "college.course_result_recorded", cr(json!(5), "five_point"));
    let mut school = cr(json!(5), "five_point");
    school["institution"] = json!("sch-001");
    h.refused("institution_kind_mismatch", TEACHER, S1, "college.course_result_recorded", school);
    let mut t = cr(json!(5), "five_point");
    t["term"] = json!(13);
    h.refused("term_out_of_range", COL_TEACHER, S1, "college.course_result_recorded", t);
    let ex = |form: &str, mark: &str, scale: &str| json!({"institution": "col-001", "group": "ИС-21", "course": "databases", "term": 3, "form": form, "mark": mark, "scale": scale});
    h.ok(COL_TEACHER, S1, "college.exam_recorded", ex("exam", "отлично", "four_level"));
    let mut credit = ex("credit", "зачтено", "pass_fail");
    credit["term"] = json!(4);
    h.ok(COL_TEACHER, S1, "college.exam_recorded", credit);
    h.refused("scale_not_allowed", COL_TEACHER, S1, "college.exam_recorded", ex("credit", "отлично", "four_level"));
    h.refused("exam_form_unknown", COL_TEACHER, S1, "college.exam_recorded", ex("quiz", "зачтено", "pass_fail"));
    let dip = |level: &str, n: &str| json!({"institution": "col-001", "level": level, "number": n, "issued_on": "2027-06-30"});
    h.ok(COL_REGISTRAR, S1, "college.diploma_issued", dip("secondary_vocational", "D-1"));
    h.refused(
        "document_number_duplicate",
        COL_REGISTRAR,
        S2,
        "college.diploma_issued",
        dip("secondary_vocational", "D-1"),
    );
    h.refused("diploma_level_unknown", COL_REGISTRAR, S2, "college.diploma_issued", dip("phd", "D-2"));
    h.refused("not_authorized", COL_TEACHER, S2, "college.diploma_issued", dip("bachelor", "D-2"));
}

/// A college's institution admin (granted in the tests that need one).
const COL_ADMIN: &str = "did:key:z6MkCollegeAdmin";

#[test]
fn a_course_has_one_result_and_one_exam_per_term_and_a_change_is_a_correction() {
    let mut h = Harness::region();
    h.grant(AUTH, COL_ADMIN, "p-adm-col", &["institution_admin"], json!({"institution": "col-001"}));
    let cr = |term: i64, mark: &str| json!({"institution": "col-001", "group": "ИС-21", "course": "databases", "term": term, "mark": mark, "scale": "four_level"});
    let failed = h.ok(COL_TEACHER, S1, "college.course_result_recorded", cr(3, "неудовлетворительно"));
    // A second result for the course and term, in any scale, is refused and names the first.
    for (mark, scale) in [(json!("отлично"), "four_level"), (json!(5), "five_point"), (json!("зачтено"), "pass_fail")]
    {
        let mut again = cr(3, "-");
        again["mark"] = mark;
        again["scale"] = json!(scale);
        let m = h.refused("result_already_recorded", COL_TEACHER, S1, "college.course_result_recorded", again);
        assert!(m.contains(&failed) && m.contains("journal.record_corrected") && m.contains("databases"), "{m}");
    }
    // Another learner, or another term, is another place.
    h.ok(COL_TEACHER, S2, "college.course_result_recorded", cr(3, "хорошо"));
    let other_term = h.ok(COL_TEACHER, S1, "college.course_result_recorded", cr(4, "неудовлетворительно"));
    let dip = |n: &str| json!({"institution": "col-001", "level": "secondary_vocational", "number": n, "issued_on": "2027-06-30"});
    h.refused("diploma_requirements_unmet", COL_REGISTRAR, S1, "college.diploma_issued", dip("D-1"));
    // The change is a correction; the place stays taken, and "passed" follows the current value.
    let corr = |id: &str, extra: serde_json::Value| {
        let mut c = json!({"institution": "col-001", "class": "ИС-21", "corrected_event_id": id, "reason": "ошибка ввода", "authorised_by": COL_ADMIN});
        merge(&mut c, extra);
        c
    };
    let passed = h.ok(
        COL_TEACHER,
        S1,
        "journal.record_corrected",
        corr(&failed, json!({"mark": "хорошо", "scale": "four_level"})),
    );
    h.refused("result_already_recorded", COL_TEACHER, S1, "college.course_result_recorded", cr(3, "хорошо"));
    // Annulling the passing correction (a correction of the correction): not passed any more.
    h.ok(COL_TEACHER, S1, "journal.record_corrected", corr(&passed, json!({})));
    let m = h.refused("diploma_requirements_unmet", COL_REGISTRAR, S1, "college.diploma_issued", dip("D-1"));
    assert!(m.contains("not passed: databases"), "{m}");
    // A failing correction of the other term's result does not pass either.
    h.ok(
        COL_TEACHER,
        S1,
        "journal.record_corrected",
        corr(&other_term, json!({"mark": "неудовлетворительно", "scale": "four_level"})),
    );
    h.refused("diploma_requirements_unmet", COL_REGISTRAR, S1, "college.diploma_issued", dip("D-1"));
    h.ok(
        COL_TEACHER,
        S1,
        "journal.record_corrected",
        corr(&other_term, json!({"mark": "отлично", "scale": "four_level"})),
    );
    h.ok(COL_REGISTRAR, S1, "college.diploma_issued", dip("D-1"));
}

#[test]
fn an_exam_or_credit_is_recorded_once_per_course_and_term() {
    let mut h = Harness::region();
    h.grant(AUTH, COL_ADMIN, "p-adm-col", &["institution_admin"], json!({"institution": "col-001"}));
    let ex = |term: i64, form: &str, mark: &str, scale: &str| json!({"institution": "col-001", "group": "ИС-21", "course": "databases", "term": term, "form": form, "mark": mark, "scale": scale});
    let exam = h.ok(COL_TEACHER, S1, "college.exam_recorded", ex(3, "exam", "неудовлетворительно", "four_level"));
    for again in [ex(3, "exam", "отлично", "four_level"), ex(3, "credit", "зачтено", "pass_fail")] {
        let m = h.refused("result_already_recorded", COL_TEACHER, S1, "college.exam_recorded", again);
        assert!(m.contains(&exam) && m.contains("exam or credit") && m.contains("journal.record_corrected"), "{m}");
    }
    // A course result is another form of control: it has its own place in the term.
    h.ok(COL_TEACHER, S1, "college.course_result_recorded", json!({"institution": "col-001", "group": "ИС-21", "course": "databases", "term": 3, "mark": "неудовлетворительно", "scale": "four_level"}));
    h.ok(COL_TEACHER, S1, "college.exam_recorded", ex(4, "credit", "не зачтено", "pass_fail"));
    let dip =
        json!({"institution": "col-001", "level": "secondary_vocational", "number": "D-1", "issued_on": "2027-06-30"});
    h.refused("diploma_requirements_unmet", COL_REGISTRAR, S1, "college.diploma_issued", dip.clone());
    let fix = json!({"institution": "col-001", "class": "ИС-21", "corrected_event_id": exam, "reason": "апелляция", "authorised_by": COL_ADMIN, "mark": "удовлетворительно", "scale": "four_level"});
    h.ok(COL_TEACHER, S1, "journal.record_corrected", fix);
    h.refused(
        "result_already_recorded",
        COL_TEACHER,
        S1,
        "college.exam_recorded",
        ex(3, "exam", "отлично", "four_level"),
    );
    h.ok(COL_REGISTRAR, S1, "college.diploma_issued", dip);
}

#[test]
fn a_term_grade_per_subject_term_and_year_and_a_year_grade_per_subject_and_year() {
    let mut h = Harness::region();
    let tg = |subject: &str, year: i64, term: i64, mark: i64| json!({"institution": "sch-001", "class": "5А", "subject": subject, "academic_year": year, "term": term, "mark": mark, "scale": "five_point"});
    let first = h.ok(CLASS_5A, L1, "journal.term_grade_set", tg("math", 2026, 1, 3));
    let m = h.refused("result_already_recorded", CLASS_5A, L1, "journal.term_grade_set", tg("math", 2026, 1, 5));
    assert!(
        m.contains(&first) && m.contains("term grade for math in term 1") && m.contains("journal.record_corrected"),
        "{m}"
    );
    h.refused("result_already_recorded", TEACHER, L1, "journal.term_grade_set", tg("math", 2026, 1, 3));
    // Another term, subject, year or learner is another place.
    h.ok(CLASS_5A, L1, "journal.term_grade_set", tg("math", 2026, 2, 5));
    h.ok(CLASS_5A, L1, "journal.term_grade_set", tg("physics", 2026, 1, 5));
    h.ok(CLASS_5A, L2, "journal.term_grade_set", tg("math", 2026, 1, 5));
    let yg = |subject: &str, mark: i64| json!({"institution": "sch-001", "class": "5А", "subject": subject, "academic_year": 2026, "mark": mark, "scale": "five_point"});
    let year = h.ok(TEACHER, L1, "journal.year_grade_set", yg("math", 4));
    let m = h.refused("result_already_recorded", TEACHER, L1, "journal.year_grade_set", yg("math", 5));
    assert!(m.contains(&year) && m.contains("year grade for math in academic year 2026"), "{m}");
    h.ok(TEACHER, L1, "journal.year_grade_set", yg("physics", 5));
    h.ok(TEACHER, L2, "journal.year_grade_set", yg("math", 5));
    // The change is a correction of the grade, and the place stays taken.
    for id in [&first, &year] {
        let c = json!({"institution": "sch-001", "class": "5А", "corrected_event_id": id, "reason": "ошибка ввода", "authorised_by": ADMIN, "mark": 4, "scale": "five_point"});
        h.ok(TEACHER, L1, "journal.record_corrected", c);
    }
    h.refused("result_already_recorded", CLASS_5A, L1, "journal.term_grade_set", tg("math", 2026, 1, 4));
    h.refused("result_already_recorded", TEACHER, L1, "journal.year_grade_set", yg("math", 4));
}

#[test]
fn a_term_or_year_result_names_the_academic_year_of_its_date() {
    let mut h = Harness::region();
    h.grant(
        AUTH,
        "did:key:z6MkMigrationBars",
        "p-migr",
        &["migration", "teacher", "registrar"],
        json!({"institution": "sch-001"}),
    );
    let tg = |year: i64| json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": year, "term": 1, "mark": 4, "scale": "five_point"});
    let yg = |year: i64| json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": year, "mark": 4, "scale": "five_point"});
    // 2026-09-01 is in academic year 2026 (2026/27): 2017 and 2025 are refused, and a refused
    // year takes no place (the right year is still free afterwards).
    let m = h.refused("academic_year_mismatch", CLASS_5A, L1, "journal.term_grade_set", tg(2017));
    assert!(m.contains("academic_year 2017") && m.contains("2026-09-01") && m.contains("2026/27"), "{m}");
    h.refused("academic_year_mismatch", CLASS_5A, L1, "journal.term_grade_set", tg(2025));
    h.refused("academic_year_mismatch", CLASS_5A, L1, "journal.term_grade_set", tg(2027));
    h.refused("academic_year_mismatch", TEACHER, L1, "journal.year_grade_set", yg(2025));
    h.refused("academic_year_mismatch", TEACHER, L1, "journal.intermediate_attestation_recorded", yg(2025));
    let promo =
        json!({"institution": "sch-001", "from_class": "5А", "to_class": "6А", "academic_year": 2025, "basis": "full"});
    h.refused("academic_year_mismatch", CLASS_5A, L1, "journal.promoted", promo);
    let oge =
        json!({"institution": "sch-001", "exam": "oge", "subject": "Математика", "academic_year": 2027, "score": 20});
    h.refused("academic_year_mismatch", REGISTRAR, L1, "journal.final_attestation_recorded", oge);
    h.ok(CLASS_5A, L1, "journal.term_grade_set", tg(2026));
    h.ok(TEACHER, L1, "journal.year_grade_set", yg(2026));
    // The last day of the academic year still belongs to it; the next day is the next year's.
    h.at("2027-08-31T20:00:00Z");
    h.ok(TEACHER, L1, "journal.intermediate_attestation_recorded", yg(2026));
    h.at("2027-09-01T06:00:00Z");
    h.refused("academic_year_mismatch", TEACHER, L2, "journal.year_grade_set", yg(2026));
    // Imports too: a legacy term grade of 2020 claiming academic year 2017 (review finding 5),
    // for a learner admitted in 2019 and in 2А in 2020.
    let legacy = "learner/47-009001";
    h.recorded_at(Some("2027-09-01T06:00:00Z"));
    let src = |r: &str| json!({"system": "BARS", "record": r});
    h.at("2019-09-01T09:00:00Z");
    h.ok("did:key:z6MkMigrationBars", legacy, "contingent.admitted", json!({"institution": "sch-001", "class": "1А", "academic_year": 2019, "admitted_on": "2019-09-01", "order_ref": "o-9001", "migrated_from": src("adm")}));
    h.at("2020-09-01T09:00:00Z");
    h.ok("did:key:z6MkMigrationBars", legacy, "contingent.class_assigned", json!({"institution": "sch-001", "class": "2А", "academic_year": 2020, "assigned_on": "2020-09-01", "migrated_from": src("cls")}));
    h.at("2020-10-28T09:00:00Z");
    let mut old = json!({"institution": "sch-001", "class": "2А", "subject": "math", "academic_year": 2017, "term": 1, "mark": 4, "scale": "five_point", "migrated_from": src("t1")});
    let m =
        h.refused("academic_year_mismatch", "did:key:z6MkMigrationBars", legacy, "journal.term_grade_set", old.clone());
    assert!(m.contains("2020/21"), "{m}");
    old["academic_year"] = json!(2020);
    h.ok("did:key:z6MkMigrationBars", legacy, "journal.term_grade_set", old);
}
