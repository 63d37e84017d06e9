//! The class journal (электронный журнал): per institution, class, academic year and subject,
//! the lessons held and one row per learner with marks (current value, kind, weight, date,
//! correction history), attendance, the weighted average and the term, year and
//! intermediate-attestation grades. A class name recurs every year with another cohort, so a
//! journal is one class in one academic year: a record's own `academic_year`, else the year its
//! date falls in (September to August).
//! Not the learner's side (that is `diaries`), not debts or documents, and no judgement of whether
//! a record was allowed (the rules decided that before it entered the log).

use super::common::{
    academic_year_of_date, academic_year_segment, attendance_json, correction_of, mark_row, AttendanceRow, Corrected,
    Correction, EventId, GradeKind, GradeRow, Sheet, Sym, Symbols,
};
use crate::lazy::Lazy;
use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::vocabulary::{Event, StreamKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const NAME: &str = "journals";
const SHAPE: &str = "journals/<institution> or journals/<institution>/<class>/<subject>[/<academic_year>[/lessons]] \
                     (a year as 2023 for 2023/24)";

/// A lesson held (`journal.lesson_held` on the institution's stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lesson {
    seq: u64,
    event: EventId,
    lesson_id: String,
    date: Sym,
    /// Interned: a class's topics repeat across its subjects and years.
    topic: Option<Sym>,
}

/// One subject of one class: its name, and its records kept as bytes until first needed (an
/// open from a snapshot decodes only the journals the entries after it touch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SubjectJournal {
    subject: Sym,
    records: Lazy<SubjectRecords>,
}

/// A subject journal's lessons and one row per learner (learner ids beside their sheets, so
/// finding a learner scans a few integers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SubjectRecords {
    lessons: Vec<Lesson>,
    learners: Vec<Sym>,
    sheets: Vec<Sheet>,
}

/// Attendance marked for the whole day (no subject) in one class: learners beside their marks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DayAttendance {
    learners: Vec<Sym>,
    rows: Vec<Vec<AttendanceRow>>,
}

/// One class of one institution in one academic year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClassJournal {
    institution: Sym,
    class: Sym,
    /// The academic year's starting calendar year (2026 for 2026/27).
    academic_year: i64,
    subjects: Vec<SubjectJournal>,
    day: Lazy<DayAttendance>,
}

/// Lists are in order of first appearance (the log's order, so canonical); views sort by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Marks, codes, kinds of work, scales, dates, institutions, classes and subjects the rows
    /// name.
    symbols: Symbols,
    /// Learner ids (a table of their own: one per learner of the region).
    learners: Symbols,
    classes: Vec<ClassJournal>,
    /// (institution, class) -> its journals' indexes in `classes`, one per academic year (a
    /// handful); (institution, class, year, subject) -> the class's index and the subject's in
    /// it. Not encoded: rebuilt after a load.
    #[serde(skip)]
    by_class: HashMap<(Sym, Sym), Vec<u32>>,
    /// Institution -> its classes' indexes in `classes` (for the institution's view).
    #[serde(skip)]
    by_institution: HashMap<Sym, Vec<u32>>,
    #[serde(skip)]
    subject_index: HashMap<SubjectKey, (u32, u32)>,
    /// The last subject found (the records of one lesson follow each other): not encoded.
    #[serde(skip)]
    last_subject: Option<SubjectAt>,
}

/// (institution, class, academic year, subject).
type SubjectKey = (Sym, Sym, i64, Sym);

/// A subject's key and where its journal is: (class, subject in the class).
type SubjectAt = (SubjectKey, (u32, u32));

/// Where a record goes: (institution, class, academic year, subject).
type At<'a> = (&'a str, &'a str, i64, &'a str);

/// The `journals` read model.
#[derive(Debug, Default)]
pub struct Journals {
    state: State,
}

/// The learner's row in `learners`/`rows`, added empty if absent.
fn row_of<'r, T: Default>(learners: &mut Vec<Sym>, rows: &'r mut Vec<T>, learner: Sym) -> &'r mut T {
    let at = learners.iter().position(|l| *l == learner).unwrap_or_else(|| {
        learners.push(learner);
        rows.push(T::default());
        rows.len() - 1
    });
    &mut rows[at]
}

/// Applies a correction to the record of `learner` in `class` it names; `false` if none does.
/// (Corrections are rare: the class's journals are decoded for good.)
fn correct_in_class(class: &mut ClassJournal, learner: Sym, target: &EventId, c: &Correction, syms: &Symbols) -> bool {
    for subject in class.subjects.iter_mut() {
        let records = subject.records.get_mut();
        let Some(at) = records.learners.iter().position(|l| *l == learner) else { continue };
        if records.sheets[at].correct(target, c, syms) {
            return true;
        }
    }
    let day = class.day.get_mut();
    let Some(at) = day.learners.iter().position(|l| *l == learner) else { return false };
    match day.rows[at].iter_mut().rev().find(|r| r.record.answers_to(target)) {
        Some(row) => {
            row.record.corrections.push(c.clone());
            true
        }
        None => false,
    }
}

impl State {
    /// The journal of a class in an academic year, created empty on its first record.
    fn class_of(&mut self, institution: &str, class: &str, academic_year: i64) -> u32 {
        let key = (self.symbols.intern(institution), self.symbols.intern(class));
        let years = self.by_class.entry(key).or_default();
        if let Some(at) = years.iter().find(|c| self.classes[**c as usize].academic_year == academic_year) {
            return *at;
        }
        self.classes.push(ClassJournal {
            institution: key.0,
            class: key.1,
            academic_year,
            subjects: Vec::new(),
            day: Lazy::default(),
        });
        let at = u32::try_from(self.classes.len() - 1).expect("fewer than 2^32 classes");
        years.push(at);
        self.by_institution.entry(key.0).or_default().push(at);
        at
    }

    /// The journal of a subject of a class in an academic year, created empty on its first
    /// record.
    fn subject_of(&mut self, (institution, class, year, subject): At<'_>) -> &mut SubjectRecords {
        let key = (self.symbols.intern(institution), self.symbols.intern(class), year, self.symbols.intern(subject));
        let found = match self.last_subject {
            Some((k, at)) if k == key => Some(at),
            _ => self.subject_index.get(&key).copied(),
        };
        let (c, j) = match found {
            Some(at) => at,
            None => {
                let c = self.class_of(institution, class, year);
                let subjects = &mut self.classes[c as usize].subjects;
                subjects.push(SubjectJournal { subject: key.3, records: Lazy::default() });
                let at = (c, u32::try_from(subjects.len() - 1).expect("fewer than 2^32 subjects"));
                self.subject_index.insert(key, at);
                at
            }
        };
        self.last_subject = Some((key, (c, j)));
        self.classes[c as usize].subjects[j as usize].records.get_mut()
    }

    fn sheet_of(&mut self, at: At<'_>, learner: &str) -> &mut Sheet {
        let learner = self.learners.intern_id(learner);
        let j = self.subject_of(at);
        row_of(&mut j.learners, &mut j.sheets, learner)
    }

    /// A term, year or attestation grade, in the academic year it names.
    fn grade(&mut self, f: &Fact<'_>, at: At<'_>, kind: GradeKind, row: (Option<i64>, &str, &str)) {
        let Some(learner) = StreamKind::Learner.id_of(f.stream) else { return };
        let (term, mark, scale) = row;
        let record = Corrected::new(f.seq, f.id, self.symbols.intern(mark)).imported(f.imported);
        let row = GradeRow { record, academic_year: at.2, term, scale: self.symbols.intern(scale) };
        self.sheet_of(at, learner).add_grade(kind, row);
    }

    /// Rebuilds the indexes after a load; a class or subject listed twice is refused.
    fn reindex(&mut self) -> Result<(), String> {
        self.symbols.reindex()?;
        self.learners.reindex()?;
        self.by_class.clear();
        self.by_institution.clear();
        self.subject_index.clear();
        self.last_subject = None;
        for (c, class) in self.classes.iter().enumerate() {
            let key = (class.institution, class.class);
            let years = self.by_class.entry(key).or_default();
            if years.iter().any(|y| self.classes[*y as usize].academic_year == class.academic_year) {
                return Err(format!(
                    "class {} listed twice in academic year {}",
                    self.symbols.name(key.1),
                    class.academic_year
                ));
            }
            years.push(c as u32);
            self.by_institution.entry(key.0).or_default().push(c as u32);
            for (j, subject) in class.subjects.iter().enumerate() {
                let at = (key.0, key.1, class.academic_year, subject.subject);
                if self.subject_index.insert(at, (c as u32, j as u32)).is_some() {
                    return Err(format!("subject {} listed twice", self.symbols.name(subject.subject)));
                }
            }
        }
        Ok(())
    }
}

impl ReadModel for Journals {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 2: records carry `imported` (a migration\'s source system and record).
        // 3: flat lists of classes and subjects, learners, names and topics interned, found by
        //    hash; event ids as byte strings; a sheet's term, year and attestation grades boxed.
        // 4: a class journal is one class in one academic year (`academic_year` in its key).
        // 5: a subject's records and a class's day attendance each as their own byte string,
        //    decoded when first needed (`Lazy`).
        5
    }

    fn apply(&mut self, f: &Fact<'_>) {
        let s = &mut self.state;
        match f.event {
            Event::LessonHeld(d) => {
                let Some(institution) = StreamKind::Institution.id_of(f.stream) else { return };
                let Some(year) = academic_year_of_date(&d.lesson_date) else { return };
                let lesson = Lesson {
                    seq: f.seq,
                    event: EventId::of(f.id),
                    lesson_id: d.lesson_id.clone(),
                    date: s.symbols.intern(&d.lesson_date),
                    topic: d.topic.as_deref().map(|t| s.symbols.intern(t)),
                };
                s.subject_of((institution, &d.class, year, &d.subject)).lessons.push(lesson);
            }
            Event::GradeRecorded(d) => {
                let Some(learner) = StreamKind::Learner.id_of(f.stream) else { return };
                let Some(year) = academic_year_of_date(&d.lesson_date) else { return };
                let row = mark_row(&mut s.symbols, f, d);
                let (n, w) = row.contribution(&s.symbols);
                s.sheet_of((&d.institution, &d.class, year, &d.subject), learner).add_mark_counted(row, n, w);
            }
            Event::AttendanceMarked(d) => {
                let Some(learner) = StreamKind::Learner.id_of(f.stream) else { return };
                let Some(year) = academic_year_of_date(&d.lesson_date) else { return };
                let record = Corrected::new(f.seq, f.id, s.symbols.intern(&d.code)).imported(f.imported);
                let row = AttendanceRow { record, date: s.symbols.intern(&d.lesson_date) };
                match &d.subject {
                    Some(subject) => {
                        s.sheet_of((&d.institution, &d.class, year, subject), learner).attendance.push(row)
                    }
                    None => {
                        let learner = s.learners.intern_id(learner);
                        let at = s.class_of(&d.institution, &d.class, year) as usize;
                        let day = s.classes[at].day.get_mut();
                        row_of(&mut day.learners, &mut day.rows, learner).push(row)
                    }
                }
            }
            Event::TermGradeSet(d) => s.grade(
                f,
                (&d.institution, &d.class, d.academic_year, &d.subject),
                GradeKind::Term,
                (Some(d.term), &d.mark.0, &d.scale),
            ),
            Event::YearGradeSet(d) => s.grade(
                f,
                (&d.institution, &d.class, d.academic_year, &d.subject),
                GradeKind::Year,
                (None, &d.mark.0, &d.scale),
            ),
            Event::IntermediateAttestationRecorded(d) => s.grade(
                f,
                (&d.institution, &d.class, d.academic_year, &d.subject),
                GradeKind::Attestation,
                (None, &d.mark.0, &d.scale),
            ),
            Event::RecordCorrected(d) => {
                // The correction names the institution and class, not the year; the record is
                // one of this learner's in some subject of that class in some year (or a
                // whole-day attendance mark), looked for from the newest year back. The rules
                // check the record's stream, not its class: a correction naming another class of
                // the institution is looked for there too (rare, so the wider scan is).
                let Some(learner) = StreamKind::Learner.id_of(f.stream) else { return };
                let (target, c) = correction_of(&mut s.symbols, f.seq, f.id, d);
                let (Some(learner), Some(institution)) = (s.learners.get(learner), s.symbols.get(&d.institution))
                else {
                    return;
                };
                let newest_first =
                    |classes: &[ClassJournal], at: &u32| std::cmp::Reverse(classes[*at as usize].academic_year);
                let mut named: Vec<u32> = (s.symbols.get(&d.class))
                    .and_then(|class| s.by_class.get(&(institution, class)))
                    .cloned()
                    .unwrap_or_default();
                named.sort_by_key(|at| newest_first(&s.classes, at));
                for &at in &named {
                    if correct_in_class(&mut s.classes[at as usize], learner, &target, &c, &s.symbols) {
                        return;
                    }
                }
                // The institution's other classes, by name, newest year first (the order is a
                // function of the state, so every build corrects alike).
                let mut others: Vec<u32> = s.by_institution.get(&institution).cloned().unwrap_or_default();
                others.retain(|i| !named.contains(i));
                others.sort_by_key(|at| (s.symbols.name(s.classes[*at as usize].class), newest_first(&s.classes, at)));
                for i in others {
                    if correct_in_class(&mut s.classes[i as usize], learner, &target, &c, &s.symbols) {
                        return;
                    }
                }
            }
            _ => {}
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(&self.state)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut state: State = model::decode_state(NAME, bytes)?;
        state.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        self.state = state;
        Ok(())
    }

    /// One class's journal in one subject, of its newest or a given academic year (not the
    /// institution's list of classes).
    fn view_now(&self, path: &[&str]) -> Option<Result<View, ViewError>> {
        matches!(path.len(), 3..=5).then(|| self.view(path))
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        // The path's shape first, so that a malformed one is refused alike whatever ids exist.
        let institution = model::segment(path, 0, "an institution id")?;
        // (class, subject, year) of one journal; `None` for the institution's listing. A fifth
        // segment `lessons` asks for the journal's lessons alone (what a record bundle needs).
        let lessons_only = match path.get(4) {
            None => false,
            Some(&"lessons") => true,
            Some(other) => return Err(ViewError::BadPath(format!("expected {SHAPE}, not .../{other}"))),
        };
        let point = match path.len() {
            1 => None,
            3..=5 => {
                let year = match path.get(3) {
                    Some(y) => Some(academic_year_segment(y).ok_or_else(|| {
                        ViewError::BadPath(format!(
                            "expected an academic year as four digits (2023 for 2023/24), not {y}"
                        ))
                    })?),
                    None => None,
                };
                Some((model::segment(path, 1, "a class")?, model::segment(path, 2, "a subject")?, year))
            }
            _ => return Err(ViewError::BadPath(format!("expected {SHAPE}"))),
        };
        let s = &self.state;
        let no_journal = || ViewError::NotFound(format!("no journal of institution {institution}"));
        let inst = s.symbols.get(institution).ok_or_else(no_journal)?;
        let classes = s.by_institution.get(&inst).ok_or_else(no_journal)?;
        let scope = Scope::Institution(institution.to_owned());
        match point {
            None => {
                let mut classes: Vec<&ClassJournal> = classes.iter().map(|c| &s.classes[*c as usize]).collect();
                classes.sort_by_key(|c| (s.symbols.name(c.class), c.academic_year));
                Ok(View { scope, body: institution_json(&s.symbols, institution, &classes) })
            }
            Some((class_id, subject_id, year)) => {
                let years = s.symbols.get(class_id).and_then(|c| s.by_class.get(&(inst, c)));
                let mut years = years.map(|at| at.iter().map(|c| &s.classes[*c as usize])).ok_or_else(|| {
                    ViewError::NotFound(format!("institution {institution} has no journal of class {class_id}"))
                })?;
                // The given year, or the newest the class has records in.
                let class = match year {
                    Some(year) => years.find(|c| c.academic_year == year).ok_or_else(|| {
                        ViewError::NotFound(format!(
                            "class {class_id} of institution {institution} has no journal in academic year {year}"
                        ))
                    })?,
                    None => years.max_by_key(|c| c.academic_year).expect("a class listed has a journal"),
                };
                let subject =
                    class.subjects.iter().find(|j| s.symbols.name(j.subject) == subject_id).ok_or_else(|| {
                        ViewError::NotFound(format!(
                            "class {class_id} of institution {institution} has no journal of subject {subject_id} in \
                             academic year {}",
                            class.academic_year
                        ))
                    })?;
                let records = subject.records.get();
                let body = if lessons_only {
                    json!({"institution": institution, "class": class_id, "academic_year": class.academic_year,
                        "subject": subject_id, "lessons": lessons_json(&s.symbols, records)})
                } else {
                    journal_json(s, institution, class_id, subject_id, class, records)
                };
                Ok(View { scope, body })
            }
        }
    }
}

/// The institution's classes (sorted by name, then year), each with its academic years and
/// their subjects.
fn institution_json(syms: &Symbols, institution: &str, classes: &[&ClassJournal]) -> Value {
    let classes: Vec<Value> = classes
        .chunk_by(|a, b| a.class == b.class)
        .map(|journals| {
            let years: Vec<Value> = journals
                .iter()
                .map(|j| {
                    let mut subjects: Vec<&SubjectJournal> = j.subjects.iter().collect();
                    subjects.sort_by_key(|s| syms.name(s.subject));
                    let subjects: Vec<Value> = subjects
                        .iter()
                        .map(|s| {
                            let r = s.records.get();
                            json!({"subject": syms.name(s.subject), "lessons": r.lessons.len(), "learners": r.learners.len()})
                        })
                        .collect();
                    json!({"academic_year": j.academic_year, "subjects": subjects})
                })
                .collect();
            json!({"class": syms.name(journals[0].class), "years": years})
        })
        .collect();
    json!({"institution": institution, "classes": classes})
}

/// A subject journal's lessons, in log order.
fn lessons_json(syms: &Symbols, j: &SubjectRecords) -> Vec<Value> {
    j.lessons
        .iter()
        .map(|l| {
            let topic = l.topic.map(|t| syms.name(t));
            json!({"lesson_id": l.lesson_id, "date": syms.name(l.date), "topic": topic, "event": l.event.to_string(), "seq": l.seq})
        })
        .collect()
}

fn journal_json(
    s: &State,
    institution: &str,
    class_id: &str,
    subject_id: &str,
    class: &ClassJournal,
    j: &SubjectRecords,
) -> Value {
    let syms = &s.symbols;
    let class_day = class.day.get();
    let lessons = lessons_json(syms, j);
    let mut rows: Vec<(&str, &Sheet, Sym)> =
        j.learners.iter().zip(&j.sheets).map(|(l, sheet)| (s.learners.name(*l), sheet, *l)).collect();
    rows.sort_by_key(|(name, _, _)| *name);
    let learners: Vec<Value> = rows
        .into_iter()
        .map(|(learner, sheet, sym)| {
            let mut row = Map::new();
            row.insert("learner".to_owned(), json!(learner));
            sheet.json_into(syms, &mut row);
            let day_rows = class_day.learners.iter().position(|l| *l == sym).map(|at| &class_day.rows[at]);
            let day: Vec<Value> = day_rows.into_iter().flatten().map(|r| attendance_json(r, syms)).collect();
            row.insert("day_attendance".to_owned(), Value::Array(day));
            Value::Object(row)
        })
        .collect();
    json!({
        "institution": institution, "class": class_id, "academic_year": class.academic_year, "subject": subject_id,
        "lessons": lessons, "learners": learners,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testkit::{check_reload, load_shared, History};

    const L1: &str = "learner/47-1";
    const L2: &str = "learner/47-2";

    fn grade(h: &mut History, stream: &str, subject: &str, mark: i64, kind: &str, weight: i64, date: &str) -> String {
        h.push(
            stream,
            "journal.grade_recorded",
            json!({"institution": "sch-1", "class": "5А", "subject": subject, "mark": mark, "scale": "five_point",
                   "weight": weight, "kind": kind, "lesson_date": date}),
        )
    }

    fn correct(h: &mut History, stream: &str, target: &str, mark: Option<i64>) -> String {
        correct_in_class(h, "5А", stream, target, mark)
    }

    /// A correction of `target` (to `mark`, or annulled) naming class `class` of sch-1.
    fn correct_in_class(h: &mut History, class: &str, stream: &str, target: &str, mark: Option<i64>) -> String {
        let mut data = json!({"institution": "sch-1", "class": class, "corrected_event_id": target,
                              "reason": "typo", "authorised_by": "did:key:z6MkAdmin"});
        if let Some(m) = mark {
            data["mark"] = json!(m);
            data["scale"] = json!("five_point");
        }
        h.push(stream, "journal.record_corrected", data)
    }

    /// Learner 1 in maths: 5 (test, 5), 3 (classwork, 3), 4 (homework, 1), 2 (homework, 1), so
    /// (25 + 9 + 4 + 2) / 10 = 4.00; one mark in russian; learner 2: one 4 (test).
    fn history() -> (History, Vec<String>) {
        let mut h = History::default();
        let mut ids = vec![];
        ids.push(h.push(
            "institution/sch-1",
            "journal.lesson_held",
            json!({"lesson_id": "les-1", "class": "5А", "subject": "math", "lesson_date": "2026-09-01", "topic": "fractions"}),
        ));
        ids.push(grade(&mut h, L1, "math", 5, "test", 5, "2026-09-01")); // 1
        ids.push(grade(&mut h, L1, "math", 3, "classwork", 3, "2026-09-01")); // 2
        ids.push(grade(&mut h, L1, "math", 4, "homework", 1, "2026-09-02")); // 3
        ids.push(grade(&mut h, L2, "math", 4, "test", 5, "2026-09-01")); // 4
        ids.push(grade(&mut h, L1, "russian", 5, "test", 5, "2026-09-01")); // 5
        ids.push(h.push(
            L1,
            "journal.attendance_marked",
            json!({"institution": "sch-1", "class": "5А", "subject": "math", "lesson_date": "2026-09-03", "code": "Н"}),
        )); // 6
        ids.push(h.push(
            L1,
            "journal.attendance_marked",
            json!({"institution": "sch-1", "class": "5А", "lesson_date": "2026-09-04", "code": "Б"}),
        )); // 7
        ids.push(grade(&mut h, L1, "math", 2, "homework", 1, "2026-09-05")); // 8
        ids.push(h.push(
            L1,
            "journal.term_grade_set",
            json!({"institution": "sch-1", "class": "5А", "subject": "math", "academic_year": 2026, "term": 1,
                   "mark": 4, "scale": "five_point"}),
        )); // 9
        (h, ids)
    }

    fn math_row(model: &Journals, learner: &str) -> Value {
        let v = model.view(&["sch-1", "5А", "math"]).unwrap();
        assert_eq!(v.scope, Scope::Institution("sch-1".into()));
        v.body["learners"].as_array().unwrap().iter().find(|r| r["learner"] == learner).unwrap().clone()
    }

    #[test]
    fn journal_shows_lessons_marks_attendance_and_averages() {
        let (h, ids) = history();
        let mut m = Journals::default();
        h.fold(&mut m);
        let v = m.view(&["sch-1", "5А", "math"]).unwrap().body;
        assert_eq!(
            v["lessons"],
            json!([{"lesson_id": "les-1", "date": "2026-09-01", "topic": "fractions", "event": ids[0], "seq": 0}])
        );
        let row = math_row(&m, "47-1");
        // (25 + 9 + 4 + 2) / 10 = 40/10
        assert_eq!(row["average"], json!({"value": "4.00", "numerator": 40, "denominator": 10}));
        assert_eq!(row["marks"].as_array().unwrap().len(), 4);
        assert_eq!(
            row["marks"][0],
            json!({"mark": "5", "annulled": false, "original_mark": "5", "event": ids[1], "seq": 1, "corrections": [],
                   "kind": "test", "weight": 5, "scale": "five_point", "date": "2026-09-01"})
        );
        assert_eq!(row["attendance"][0]["code"], "Н");
        assert_eq!(row["day_attendance"][0]["code"], "Б");
        assert_eq!(row["term_grades"][0]["mark"], "4");
        assert_eq!(row["term_grades"][0]["term"], 1);
        let row2 = math_row(&m, "47-2");
        assert_eq!(row2["average"], json!({"value": "4.00", "numerator": 20, "denominator": 5}));
        assert_eq!(row2["day_attendance"], json!([]));

        // The lessons alone, as a record bundle's exporter asks for them.
        let lessons = m.view(&["sch-1", "5А", "math", "2026", "lessons"]).unwrap().body;
        assert_eq!(
            lessons,
            json!({"institution": "sch-1", "class": "5А", "academic_year": 2026, "subject": "math",
                   "lessons": v["lessons"].clone()})
        );
        assert!(matches!(m.view(&["sch-1", "5А", "math", "2026", "lessons", "x"]), Err(ViewError::BadPath(_))));

        let list = m.view(&["sch-1"]).unwrap().body;
        assert_eq!(
            list,
            json!({"institution": "sch-1", "classes": [{"class": "5А", "years": [{"academic_year": 2026, "subjects": [
                {"subject": "math", "lessons": 1, "learners": 2},
                {"subject": "russian", "lessons": 0, "learners": 1}]}]}]})
        );
    }

    #[test]
    fn a_loaded_journal_is_decoded_when_first_read_or_changed_and_answers_the_same() {
        let (mut h, ids) = history();
        let mut whole = Journals::default();
        h.fold(&mut whole);
        let (mut loaded, source) = load_shared(&whole);
        let encoded = |m: &Journals| {
            let c = &m.state.classes;
            let subjects = c.iter().flat_map(|c| &c.subjects).filter(|s| s.records.is_encoded()).count();
            (subjects, c.iter().filter(|c| c.day.is_encoded()).count())
        };
        let (subjects, days) = encoded(&loaded);
        assert!(subjects >= 2 && days >= 1, "nothing is decoded by the load: {subjects} subjects, {days} days");
        assert_eq!(loaded.view(&["sch-1", "5А", "math"]).unwrap(), whole.view(&["sch-1", "5А", "math"]).unwrap());
        assert_eq!(encoded(&loaded), (subjects - 1, days - 1), "a view decodes its subject and the day marks alone");
        assert_eq!(crate::lazy::encode_apart(|| loaded.encode()), source, "decoded or not, the same bytes");
        assert_eq!(loaded.encode(), whole.encode(), "and the same inline");
        let before = h.entries.len();
        correct(&mut h, L1, &ids[3], Some(2));
        for e in &h.entries[before..] {
            loaded.apply(&e.fact());
            whole.apply(&e.fact());
        }
        assert_eq!(model::digest(&loaded), model::digest(&whole));
        assert_eq!(loaded.view(&["sch-1", "5А", "math"]).unwrap(), whole.view(&["sch-1", "5А", "math"]).unwrap());
    }

    #[test]
    fn corrections_change_the_average_annulments_drop_the_mark_history_is_kept() {
        let (mut h, ids) = history();
        let c1 = correct(&mut h, L1, &ids[3], Some(2)); // homework 4 -> 2
        let c2 = correct(&mut h, L1, &ids[8], None); // annul the homework 2
        let c3 = correct(&mut h, L1, &c1, Some(3)); // correct the correction: -> 3
        correct(&mut h, L1, &ids[7], None); // annul the whole-day attendance
        correct(&mut h, L1, &ids[9], Some(5)); // the term grade 4 becomes 5
        let mut m = Journals::default();
        h.fold(&mut m);
        let row = math_row(&m, "47-1");
        // 5x5 + 3x3 + 3x1 = 37 over 9 = 4.11 (the annulled 2 counts nothing)
        assert_eq!(row["average"], json!({"value": "4.11", "numerator": 37, "denominator": 9}));
        let corrected = &row["marks"][2];
        assert_eq!(corrected["mark"], "3");
        assert_eq!(corrected["original_mark"], "4");
        let steps = corrected["corrections"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0]["event"], c1);
        assert_eq!(steps[0]["corrects"], ids[3]);
        assert_eq!(steps[0]["mark"], "2");
        assert_eq!(steps[0]["reason"], "typo");
        assert_eq!(steps[1]["event"], c3);
        assert_eq!(steps[1]["corrects"], c1);
        let annulled = &row["marks"][3];
        assert_eq!(annulled["mark"], Value::Null);
        assert_eq!(annulled["annulled"], true);
        assert_eq!(annulled["corrections"][0]["event"], c2);
        assert_eq!(row["day_attendance"][0]["annulled"], true);
        assert_eq!(row["term_grades"][0]["mark"], "5");
        assert_eq!(row["term_grades"][0]["original_mark"], "4");
        // Term grades are decisions, not marks: the average is unchanged by them.
        assert_eq!(row["average"]["denominator"], 9);
        // Learner 2 is untouched by learner 1's corrections.
        assert_eq!(math_row(&m, "47-2")["average"]["numerator"], 20);
    }

    #[test]
    fn a_correction_naming_another_class_of_the_institution_still_finds_the_record() {
        let (mut h, ids) = history();
        h.push(
            L1,
            "journal.record_corrected",
            json!({"institution": "sch-1", "class": "6Б", "corrected_event_id": ids[1], "reason": "typo",
                   "authorised_by": "did:key:z6MkAdmin", "mark": 4, "scale": "five_point"}),
        );
        h.push(
            L1,
            "journal.grade_recorded",
            json!({"institution": "sch-1", "class": "6Б", "subject": "art", "mark": 5, "scale": "five_point",
                   "weight": 1, "kind": "homework", "lesson_date": "2026-09-09"}),
        );
        let mut m = Journals::default();
        h.fold(&mut m);
        // 4x5 + 9 + 4 + 2 = 35 over 10
        assert_eq!(math_row(&m, "47-1")["average"]["value"], "3.50");
    }

    #[test]
    fn a_correction_from_another_learner_changes_nothing() {
        let (mut h, ids) = history();
        correct(&mut h, L2, &ids[1], Some(2));
        let mut m = Journals::default();
        h.fold(&mut m);
        assert_eq!(math_row(&m, "47-1")["average"]["numerator"], 40);
    }

    #[test]
    fn unknown_ids_and_bad_paths_are_refused_precisely() {
        let (h, _) = history();
        let mut m = Journals::default();
        h.fold(&mut m);
        assert_eq!(m.view(&["sch-9"]), Err(ViewError::NotFound("no journal of institution sch-9".into())));
        assert_eq!(
            m.view(&["sch-1", "6Б", "math"]),
            Err(ViewError::NotFound("institution sch-1 has no journal of class 6Б".into()))
        );
        assert_eq!(
            m.view(&["sch-1", "5А", "chemistry"]),
            Err(ViewError::NotFound(
                "class 5А of institution sch-1 has no journal of subject chemistry in academic year 2026".into()
            ))
        );
        assert_eq!(m.view(&["sch-1", "5А"]), Err(ViewError::BadPath(format!("expected {SHAPE}"))));
        assert!(matches!(m.view(&[]), Err(ViewError::BadPath(_))));
    }

    /// One class name (10В) in two academic years: 2023/24 (imported history) and 2026/27. A
    /// record's year is its own `academic_year` or the year its date falls in (September to
    /// August); learner 47-3 repeats the year and so is in both.
    fn two_years() -> (History, Vec<String>) {
        let mut h = History::default();
        let mut ids = vec![];
        let at = |extra: Value| {
            let mut v = json!({"institution": "sch-1", "class": "10В", "subject": "history"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let mark = |mark: i64, weight: i64, date: &str| {
            at(json!({"mark": mark, "scale": "five_point", "weight": weight, "kind": "test", "lesson_date": date}))
        };
        let lesson =
            |id: &str, date: &str| json!({"lesson_id": id, "class": "10В", "subject": "history", "lesson_date": date});
        ids.push(h.push("institution/sch-1", "journal.lesson_held", lesson("les-23", "2023-10-02"))); // 0
        ids.push(h.push("learner/47-1", "journal.grade_recorded", mark(3, 5, "2023-10-02"))); // 1
        ids.push(h.push("learner/47-3", "journal.grade_recorded", mark(4, 5, "2024-08-31"))); // 2: still 2023/24
        ids.push(h.push(
            "learner/47-1",
            "journal.term_grade_set",
            at(json!({"academic_year": 2023, "term": 1, "mark": 3, "scale": "five_point"})),
        )); // 3
        ids.push(h.push(
            "learner/47-1",
            "journal.attendance_marked",
            json!({"institution": "sch-1", "class": "10В", "lesson_date": "2024-03-01", "code": "Б"}),
        )); // 4
        ids.push(h.push("institution/sch-1", "journal.lesson_held", lesson("les-26", "2026-09-01"))); // 5
        ids.push(h.push("learner/47-2", "journal.grade_recorded", mark(5, 5, "2026-09-01"))); // 6
        ids.push(h.push("learner/47-3", "journal.grade_recorded", mark(2, 5, "2026-09-01"))); // 7
        ids.push(h.push("learner/47-3", "journal.grade_recorded", mark(4, 5, "2027-08-31"))); // 8: still 2026/27
        ids.push(h.push(
            "learner/47-2",
            "journal.year_grade_set",
            at(json!({"academic_year": 2026, "mark": 5, "scale": "five_point"})),
        )); // 9
        ids.push(h.push(
            "learner/47-3",
            "journal.attendance_marked",
            json!({"institution": "sch-1", "class": "10В", "lesson_date": "2026-09-02", "code": "Н"}),
        )); // 10
        (h, ids)
    }

    fn rows(body: &Value) -> Vec<(String, Value)> {
        let learners = body["learners"].as_array().unwrap();
        learners.iter().map(|r| (r["learner"].as_str().unwrap().to_owned(), r["average"]["value"].clone())).collect()
    }

    #[test]
    fn a_class_journal_is_one_class_in_one_academic_year() {
        let (mut h, ids) = two_years();
        let mut m = Journals::default();
        h.fold(&mut m);
        // The default: the newest year the class has records in, only its learners and marks.
        let now = m.view(&["sch-1", "10В", "history"]).unwrap();
        assert_eq!(now.scope, Scope::Institution("sch-1".into()));
        let now = now.body;
        assert_eq!(now["academic_year"], 2026);
        assert_eq!(rows(&now), vec![("47-2".into(), json!("5.00")), ("47-3".into(), json!("3.00"))]);
        assert_eq!(now["lessons"].as_array().unwrap().len(), 1);
        assert_eq!(now["lessons"][0]["lesson_id"], "les-26");
        assert_eq!(now["learners"][0]["year_grades"][0]["event"], ids[9]);
        assert_eq!(now["learners"][1]["term_grades"], json!([]));
        assert_eq!(now["learners"][1]["day_attendance"][0]["code"], "Н");
        assert_eq!(m.view(&["sch-1", "10В", "history", "2026"]).unwrap().body, now);
        // The older year by its number: the cohort of then, its term grade and day attendance.
        let then = m.view(&["sch-1", "10В", "history", "2023"]).unwrap().body;
        assert_eq!(then["academic_year"], 2023);
        assert_eq!(rows(&then), vec![("47-1".into(), json!("3.00")), ("47-3".into(), json!("4.00"))]);
        assert_eq!(then["lessons"][0]["lesson_id"], "les-23");
        assert_eq!(then["learners"][0]["term_grades"][0]["event"], ids[3]);
        assert_eq!(then["learners"][0]["day_attendance"][0]["code"], "Б");
        assert_eq!(then["learners"][1]["day_attendance"], json!([]));
        // The listing: each class with its years, in order.
        let list = m.view(&["sch-1"]).unwrap().body;
        assert_eq!(
            list,
            json!({"institution": "sch-1", "classes": [{"class": "10В", "years": [
                {"academic_year": 2023, "subjects": [{"subject": "history", "lessons": 1, "learners": 2}]},
                {"academic_year": 2026, "subjects": [{"subject": "history", "lessons": 1, "learners": 2}]}]}]})
        );
        // A year the class has no journal in; years that are not years.
        assert_eq!(
            m.view(&["sch-1", "10В", "history", "2025"]),
            Err(ViewError::NotFound("class 10В of institution sch-1 has no journal in academic year 2025".into()))
        );
        for bad in ["23", "+2023", "2023a", "２０２３"] {
            assert!(matches!(m.view(&["sch-1", "10В", "history", bad]), Err(ViewError::BadPath(_))), "{bad}");
        }
        assert!(matches!(m.view(&["sch-1", "10В", "history", "2026", "x"]), Err(ViewError::BadPath(_))));
        // A malformed path is refused alike whether its ids exist or not (no id is disclosed).
        for bad in [vec!["sch-1", "10В", "history", "23"], vec!["sch-1", "10В"]] {
            let mut unknown = bad.clone();
            unknown[0] = "sch-9";
            assert_eq!(m.view(&bad), m.view(&unknown), "{bad:?}");
        }
        // Point views, with or without the year, are answered inline; the listing is not.
        assert!(m.view_now(&["sch-1", "10В", "history", "2023"]).is_some());
        assert!(m.view_now(&["sch-1", "10В", "history"]).is_some());
        assert!(m.view_now(&["sch-1"]).is_none());

        // Corrections find their record in its own year, whichever year they are written in.
        correct_in(&mut h, "learner/47-1", &ids[1], Some(5)); // 2023's 3 becomes 5
        correct_in(&mut h, "learner/47-3", &ids[7], None); // 2026's 2 annulled
        correct_in(&mut h, "learner/47-1", &ids[4], None); // 2023's day attendance annulled
        let mut m = Journals::default();
        h.fold(&mut m);
        let then = m.view(&["sch-1", "10В", "history", "2023"]).unwrap().body;
        assert_eq!(rows(&then), vec![("47-1".into(), json!("5.00")), ("47-3".into(), json!("4.00"))]);
        assert_eq!(then["learners"][0]["day_attendance"][0]["annulled"], true);
        let now = m.view(&["sch-1", "10В", "history"]).unwrap().body;
        assert_eq!(rows(&now), vec![("47-2".into(), json!("5.00")), ("47-3".into(), json!("4.00"))]);
        assert_eq!(now["learners"][1]["marks"][0]["annulled"], true);
        check_reload(&h, || Box::<Journals>::default());
    }

    fn correct_in(h: &mut History, stream: &str, target: &str, mark: Option<i64>) -> String {
        correct_in_class(h, "10В", stream, target, mark)
    }

    #[test]
    fn reload_and_halves_equal_the_whole() {
        let (mut h, ids) = history();
        correct(&mut h, L1, &ids[3], Some(2));
        check_reload(&h, || Box::<Journals>::default());
    }
}
