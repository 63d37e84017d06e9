//! The demo's contingent: curricula of every college and university programme, the admission
//! of every school learner into their class and of every student into their group (with their
//! programme) before the year starts, final course results of the final-year students (so their
//! diplomas follow the curriculum), next year's classes of the promoted sample, a few expulsions
//! and academic leaves, graduations. Not the 1st-grade orders (`first_grade`: an order enrols its
//! learners itself).

use super::day;
use super::higher::{COLLEGE_COURSES, UNI_COURSES};
use super::instant;
use super::learner_stream;
use super::population::{COLLEGE_PROGRAMS, LETTERS, UNI_PROGRAMS};
use super::sch;
use super::DemoRegion;
use super::Script;
use serde_json::json;

/// Every programme's curriculum in the demo: the courses its slots record.
pub(super) fn curriculum(college: bool) -> &'static [&'static str] {
    if college {
        &COLLEGE_COURSES
    } else {
        &UNI_COURSES
    }
}

impl DemoRegion {
    /// Curricula (on 2 August, before a migration admits students of earlier years), then every
    /// learner's admission on 31 August (from 1 September), before any lesson, grade or
    /// attendance mark; a learner the migration enrolled gets this year's class instead.
    pub(super) fn contingent(&self, s: &mut Script) {
        let c = &self.cast;
        let d = day(2026, 8, 31);
        let registered = day(2026, 8, 2);
        for (college, count, registrars) in
            [(true, c.colleges, &c.college_registrar), (false, c.universities, &c.uni_registrar)]
        {
            let (programs, level) =
                if college { (COLLEGE_PROGRAMS, "secondary_vocational") } else { (UNI_PROGRAMS, "bachelor") };
            for i in 0..count {
                let inst = format!("{}-{:03}", if college { "col" } else { "uni" }, i + 1);
                for program in programs {
                    let data = json!({"program_id": program, "level": level, "courses": curriculum(college)});
                    s.push(
                        instant(registered, 5 * 60),
                        &format!("institution/{inst}"),
                        "college.curriculum_registered",
                        registrars[i as usize],
                        data,
                    );
                }
            }
        }
        for n in 0..c.learners {
            let p = c.pupil(n);
            let at = instant(d, 6 * 60 + (n % 600) as i64);
            let registrar = c.school_registrar[p.school as usize];
            if self.in_school_cohort(n) {
                // Enrolled since the 1st grade (imported): this year's class follows last year's.
                let data = json!({"institution": sch(p.school), "class": p.class(), "academic_year": 2026,
                    "assigned_on": "2026-09-01"});
                s.push(at, &learner_stream(n), "contingent.class_assigned", registrar, data);
                continue;
            }
            let data = json!({"institution": sch(p.school), "class": p.class(), "academic_year": 2026,
                "admitted_on": "2026-09-01", "order_ref": format!("{}-2026-adm-{n:06}", sch(p.school))});
            s.push(at, &learner_stream(n), "contingent.admitted", registrar, data);
        }
        for n in c.learners..c.learners + c.college_students + c.uni_students {
            if self.admitted_by_migration(n) {
                continue; // in their group since an earlier year (imported)
            }
            let st = c.student(n);
            let programs = if st.college { COLLEGE_PROGRAMS } else { UNI_PROGRAMS };
            let registrar = if st.college { &c.college_registrar } else { &c.uni_registrar }[st.institution as usize];
            let data = json!({"institution": st.institution_id(), "class": st.group(), "academic_year": 2026,
                "admitted_on": "2026-09-01", "order_ref": format!("{}-2026-adm-{n:07}", st.institution_id()),
                "program_id": programs[st.program]});
            let at = instant(d, 16 * 60 + (n % 200) as i64);
            s.push(at, &learner_stream(n), "contingent.admitted", registrar, data);
        }
    }

    /// After the year: final-year students' last course results (before their diplomas), the
    /// promoted sample's classes of 2027, some expulsions, academic leaves and graduations.
    pub(super) fn leaving(&self, s: &mut Script) {
        let c = &self.cast;
        for n in c.learners..c.learners + c.college_students + c.uni_students {
            let st = c.student(n);
            let inst = st.institution_id();
            let staff = &if st.college { &c.college_teachers } else { &c.uni_teachers }[st.institution as usize];
            let minute = 6 * 60 + (n % 300) as i64;
            if st.year == 4 {
                // The final session passes every course of the curriculum.
                let (mark, scale) =
                    if st.college { (json!(4), "five_point") } else { (json!("хорошо"), "four_level") };
                for (k, course) in curriculum(st.college).iter().enumerate() {
                    let data = json!({"institution": inst, "group": st.group(), "course": course, "term": 8,
                        "mark": mark, "scale": scale});
                    let at = instant(day(2027, 6, 20), minute + k as i64);
                    s.push(at, &learner_stream(n), "college.course_result_recorded", staff[k % staff.len()], data);
                }
                let registrar =
                    if st.college { &c.college_registrar } else { &c.uni_registrar }[st.institution as usize];
                let data = json!({"institution": inst, "graduated_on": "2027-07-02"});
                s.push(instant(day(2027, 7, 2), minute), &learner_stream(n), "contingent.graduated", registrar, data);
            } else if st.year == 2 && n % 7 == 0 {
                let registrar =
                    if st.college { &c.college_registrar } else { &c.uni_registrar }[st.institution as usize];
                let data = json!({"institution": inst, "starts_on": "2027-06-15", "ends_on": "2028-06-15",
                    "reason": "по медицинским показаниям"});
                s.push(
                    instant(day(2027, 6, 14), minute),
                    &learner_stream(n),
                    "contingent.academic_leave_granted",
                    registrar,
                    data,
                );
            }
        }
        for n in (0..c.learners).step_by(40) {
            let p = c.pupil(n);
            let registrar = c.school_registrar[p.school as usize];
            let minute = 6 * 60 + (n / 40 % 400) as i64;
            if p.year == 11 {
                let data = json!({"institution": sch(p.school), "graduated_on": "2027-06-28"});
                s.push(instant(day(2027, 6, 28), minute), &learner_stream(n), "contingent.graduated", registrar, data);
            } else if p.year != 9 {
                // The promoted sample starts 2027 in its next class.
                let data = json!({"institution": sch(p.school), "class": format!("{}{}", p.year + 1, LETTERS[p.letter]),
                    "academic_year": 2027, "assigned_on": "2027-09-01"});
                s.push(
                    instant(day(2027, 8, 30), minute),
                    &learner_stream(n),
                    "contingent.class_assigned",
                    registrar,
                    data,
                );
            }
        }
        // A few learners leave school before completing it (never one of the samples above).
        for n in (33..c.learners).step_by(500) {
            let p = c.pupil(n);
            let data =
                json!({"institution": sch(p.school), "expelled_on": "2027-06-29", "reason": "выезд за пределы РФ"});
            let at = instant(day(2027, 6, 29), 6 * 60 + (n % 300) as i64);
            s.push(at, &learner_stream(n), "contingent.expelled", c.school_registrar[p.school as usize], data);
        }
    }
}
