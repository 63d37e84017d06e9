//! College and university: the records of a student's journal slot (lessons, course results,
//! exams and credits in the sessions) and diplomas of final-year students. Not school records.

use super::date;
use super::day;
use super::hex8;
use super::instant;
use super::learner_stream;
use super::population::Student;
use super::DemoRegion;
use super::Item;
use super::Script;
use serde_json::json;

pub(super) const FOUR_LEVEL: [&str; 4] = ["отлично", "хорошо", "удовлетворительно", "неудовлетворительно"];
pub(super) const COLLEGE_COURSES: [&str; 4] =
    ["Базы данных", "Программирование", "Экономика организации", "Техническая механика"];
pub(super) const UNI_COURSES: [&str; 5] =
    ["Математический анализ", "Линейная алгебра", "История России", "Физика", "Философия"];

impl DemoRegion {
    /// Diplomas of final-year college and university students.
    pub(super) fn graduation(&self, s: &mut Script) {
        let c = &self.cast;
        for p in c.learners..c.learners + c.college_students + c.uni_students {
            let st = c.student(p);
            if st.year != 4 {
                continue;
            }
            let inst = st.institution_id();
            let (registrar, level, d) = if st.college {
                (c.college_registrar[st.institution as usize], "secondary_vocational", day(2027, 6, 28))
            } else {
                (c.uni_registrar[st.institution as usize], "bachelor", day(2027, 7, 1))
            };
            let data =
                json!({"institution": inst, "level": level, "number": format!("{inst}-{p:07}"), "issued_on": date(d)});
            s.push(
                instant(d, 6 * 60 + (p % 500) as i64),
                &learner_stream(p),
                "college.diploma_issued",
                registrar,
                data,
            );
        }
    }

    /// A college or university record: a lesson of the group, a course result, or (in the
    /// examination sessions) an exam or credit, on the scales the level uses. A student gets at
    /// most one course result and one exam or credit per course and term (and no course result
    /// in the term the final session of `leaving` writes): a slot whose place is taken holds a
    /// lesson of the group.
    pub(super) fn student_event(&mut self, i: u64, h: [u8; 32], d: i64, at: i64, st: Student) -> Item {
        let c = &self.cast;
        let inst = st.institution_id();
        let staff = &if st.college { &c.college_teachers } else { &c.uni_teachers }[st.institution as usize];
        let teacher = staff[usize::from(h[13]) % staff.len()];
        let courses: &[&'static str] = if st.college { &COLLEGE_COURSES } else { &UNI_COURSES };
        let course = courses[usize::from(h[8]) % courses.len()];
        let term = 2 * st.year as i64 - i64::from(d < day(2027, 2, 1));
        let in_session = (day(2026, 12, 20)..=day(2027, 1, 25)).contains(&d) || d >= day(2027, 5, 20);
        let final_session = st.year == 4 && term == 8 && !in_session;
        if h[10] < 20 || final_session || !self.results_written.insert((st.n, course, term, in_session)) {
            let data = json!({"v": 1, "lesson_id": format!("{inst}-{}", hex8(&h)), "class": st.group(),
                "subject": course, "lesson_date": date(d)});
            return self.item(i, &format!("institution/{inst}"), "journal.lesson_held", at, teacher, data);
        }
        let stream = learner_stream(st.n);
        let four = FOUR_LEVEL[[0, 0, 1, 1, 1, 2, 2, 3][usize::from(h[12] % 8)]];
        let pass = if h[12].is_multiple_of(10) { "не зачтено" } else { "зачтено" };
        let five = json!(3 + i64::from(h[12] % 3));
        let (form, scale, mark) = match (h[11] % 3, st.college) {
            (0, true) => ("exam", "five_point", five),
            (0, false) => ("exam", "four_level", json!(four)),
            (1, _) => ("credit", "pass_fail", json!(pass)),
            (_, true) => ("differentiated_credit", "five_point", five),
            (_, false) => ("differentiated_credit", "four_level", json!(four)),
        };
        let mut data = json!({"v": 1, "institution": inst, "group": st.group(), "course": course, "term": term,
            "mark": mark, "scale": scale});
        if in_session {
            data["form"] = json!(form);
            return self.item(i, &stream, "college.exam_recorded", at, teacher, data);
        }
        if st.college && h[11] % 3 == 2 {
            data["mark"] = json!(four);
            data["scale"] = json!("four_level");
        }
        self.item(i, &stream, "college.course_result_recorded", at, teacher, data)
    }
}
