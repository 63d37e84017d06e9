//! The school year's structural records for a sample of learners: term and year grades,
//! intermediate attestation, debts and retakes, promotion, final exams and certificates, a
//! few transfers. Not the streamed journal (`journal`).

use super::day;
use super::instant;
use super::learner_stream;
use super::population::LETTERS;
use super::population::SUBJECTS;
use super::sch;
use super::DemoRegion;
use super::Script;
use serde_json::json;

impl DemoRegion {
    /// For a sample of learners: term grades, year grades, intermediate attestation, debts and
    /// retakes, promotion; final exams and certificates for 9th and 11th years; a few transfers.
    pub(super) fn school_year(&self, s: &mut Script) {
        let c = &self.cast;
        let cfg = zachetka_rules::RegionConfig::default();
        let terms = [day(2026, 10, 30), day(2026, 12, 28), day(2027, 3, 19), day(2027, 5, 26)];
        for n in (0..c.learners).step_by(40) {
            let p = c.pupil(n);
            let (inst, class, stream) = (sch(p.school), p.class(), learner_stream(n));
            let k = n / 40;
            let minute = 6 * 60 + (k % 400) as i64;
            let teacher = c.teacher_of(p.school, k);
            let subject = SUBJECTS[(k % SUBJECTS.len() as u64) as usize];
            let class_authority = c.class_authority(&p);
            let mut debt_open = false;
            if p.year > 1 {
                for (term, d) in terms.iter().enumerate() {
                    let mark = 3 + ((k + term as u64) % 3) as i64;
                    let data = json!({"institution": inst, "class": class, "subject": subject, "academic_year": 2026,
                        "term": term as i64 + 1, "mark": mark, "scale": "five_point"});
                    let set = s.push(instant(*d, minute), &stream, "journal.term_grade_set", teacher, data);
                    // Now and then the second term's grade is revised on the parents' appeal after
                    // the winter holidays: a final result that a record bundle carries corrected.
                    if term == 1 && k % 5 == 1 {
                        let data = json!({"institution": inst, "class": class, "corrected_event_id": set,
                            "mark": if mark == 5 { 4 } else { mark + 1 }, "scale": "five_point",
                            "reason": "пересмотр отметки по заявлению родителей",
                            "authorised_by": self.dids[class_authority]});
                        s.push(instant(day(2027, 1, 13), minute), &stream, "journal.record_corrected", teacher, data);
                    }
                }
                let year_by = if p.letter == 0 { class_authority } else { teacher };
                let data = json!({"institution": inst, "class": class, "subject": subject, "academic_year": 2026,
                    "mark": 3 + (k % 3) as i64, "scale": "five_point"});
                s.push(instant(day(2027, 5, 27), minute), &stream, "journal.year_grade_set", year_by, data);
                let fails = k % 3 == 0 && p.year != 9 && p.year != 11;
                let data = json!({"institution": inst, "class": class, "subject": subject, "academic_year": 2026,
                    "mark": if fails { 2 } else { 3 + (k % 3) as i64 }, "scale": "five_point"});
                let att = s.push(
                    instant(day(2027, 5, 20), minute),
                    &stream,
                    "journal.intermediate_attestation_recorded",
                    teacher,
                    data,
                );
                if fails {
                    let debt = format!("debt-{}-{n}", inst);
                    let data = json!({"debt_id": debt, "institution": inst, "class": class, "subject": subject,
                        "academic_year": 2026, "opened_on": "2027-05-21", "attestation_event_id": att});
                    s.push(
                        instant(day(2027, 5, 21), minute),
                        &stream,
                        "journal.academic_debt_opened",
                        class_authority,
                        data,
                    );
                    debt_open = k % 6 == 0;
                    let data = json!({"debt_id": debt, "institution": inst, "class": class, "held_on": "2027-06-05",
                        "mark": if debt_open { 2 } else { 4 }, "scale": "five_point"});
                    s.push(instant(day(2027, 6, 5), minute), &stream, "journal.retake_recorded", teacher, data);
                }
            }
            if p.year == 9 || p.year == 11 {
                let (exam, level) = if p.year == 9 { ("oge", "basic_general") } else { ("ege", "secondary_general") };
                // Passing scores of the subjects the certificate requires (region data).
                let req = &cfg.certificate_requirements[level];
                for (j, subject) in req.required_subjects.iter().enumerate() {
                    let sc = &req.subjects[subject];
                    let score = sc.pass + ((k * 7 + j as u64 * 13) % (sc.max - sc.pass + 1) as u64) as i64;
                    let data = json!({"institution": inst, "exam": exam, "subject": subject, "academic_year": 2026, "score": score});
                    s.push(
                        instant(day(2027, 6, 15) + j as i64 * 3, minute),
                        &stream,
                        "journal.final_attestation_recorded",
                        c.school_registrar[p.school as usize],
                        data,
                    );
                }
                let data = json!({"institution": inst, "level": level, "number": format!("{inst}-{exam}-{n:06}"),
                    "issued_on": "2027-06-25"});
                s.push(
                    instant(day(2027, 6, 25), minute),
                    &stream,
                    "journal.certificate_issued",
                    c.school_admin[p.school as usize],
                    data,
                );
            } else {
                let data = json!({"institution": inst, "from_class": class, "to_class": format!("{}{}", p.year + 1, LETTERS[p.letter]),
                    "academic_year": 2026, "basis": if debt_open { "conditional" } else { "full" }});
                s.push(instant(day(2027, 6, 10), minute), &stream, "journal.promoted", class_authority, data);
            }
        }
        // A few families move at the end of the year: to another school, or to another region.
        for n in (17..c.learners).step_by(200) {
            let p = c.pupil(n);
            let data = if c.schools > 1 && n % 400 == 17 {
                json!({"from_institution": sch(p.school), "to_institution": sch((p.school + 1) % c.schools),
                    "transferred_on": "2027-06-30"})
            } else {
                json!({"from_institution": sch(p.school), "to_institution": "78-sch-0001", "to_region": "ru-78",
                    "transferred_on": "2027-06-30"})
            };
            let at = instant(day(2027, 6, 30), 6 * 60 + (n % 300) as i64);
            s.push(at, &learner_stream(n), "learner.transferred", c.school_registrar[p.school as usize], data);
        }
    }
}
