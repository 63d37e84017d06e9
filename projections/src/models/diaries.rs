//! The learner diary (электронный дневник): one learner's school record from their side. Per
//! subject and class in an academic year (a class journal's year, as `journals` keys it): marks (current values with their corrections), attendance, the weighted
//! average, term, year and intermediate-attestation grades; and for the learner: whole-day
//! attendance, academic debts with their retakes (open or closed, attempts), promotions, final
//! attestation results and certificates.
//! Not the class's view (`journals`), not college or university results (`record-books`), and
//! not a judge of what may be written (the rules). State is per learner only: it repeats the
//! marks the journal also holds, because a view may only read its own model's state, and keeps
//! them compact (event ids as 16 bytes, marks, codes, kinds, scales and dates as interned
//! symbols, about 26 bytes a mark; no JSON until a view is asked for).

use super::common::{
    academic_year_of_date, attendance_json, correction_of, mark_row, AttendanceRow, Corrected, Correction, EventId,
    GradeKind, GradeRow, Keyed, Sheet, Sym, Symbols,
};
use crate::lazy::Lazy;
use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::vocabulary::{Event, StreamKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

const NAME: &str = "diaries";
const SHAPE: &str = "diaries/<learner> or diaries/<learner>/<subject>";

/// The unsatisfactory marks of the region profile's scales (`RegionConfig::default()` in
/// `zachetka-rules`, which this crate may not depend on): a retake with any other mark on a known
/// scale passes and closes its debt; a mark on an unknown scale fails, as the rules count it.
/// A region whose profile changes these lists needs this model's version bumped with them.
const UNSATISFACTORY: &[(&str, &str)] =
    &[("five_point", "2"), ("pass_fail", "не зачтено"), ("four_level", "неудовлетворительно")];

fn passes(scale: &str, mark: &str) -> bool {
    let known = UNSATISFACTORY.iter().any(|(s, _)| *s == scale);
    known && !UNSATISFACTORY.iter().any(|(s, m)| *s == scale && *m == mark)
}

/// One retake of a debt; its value is the mark (correctable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Retake {
    record: Corrected,
    held_on: Sym,
    scale: Sym,
    /// How many commission member keys the retake names.
    commission_members: u64,
}

impl Retake {
    fn passed(&self, syms: &Symbols) -> bool {
        let scale = syms.name(self.record.current_scale(self.scale));
        self.record.current().is_some_and(|m| passes(scale, syms.name(m)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Debt {
    seq: u64,
    event: EventId,
    debt_id: String,
    institution: Sym,
    class: Sym,
    subject: Sym,
    academic_year: i64,
    opened_on: Sym,
    attestation_event: EventId,
    retakes: Vec<Retake>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Promotion {
    seq: u64,
    event: EventId,
    institution: Sym,
    from_class: Sym,
    to_class: Sym,
    academic_year: i64,
    basis: Sym,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FinalResult {
    seq: u64,
    event: EventId,
    institution: Sym,
    exam: Sym,
    subject: Sym,
    academic_year: i64,
    score: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Certificate {
    seq: u64,
    event: EventId,
    institution: Sym,
    level: Sym,
    number: String,
    issued_on: Sym,
}

/// The learner's sheet in one subject of one class of one institution in one academic year (a
/// class name recurs every year: a learner who repeats a year has two sheets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClassSheet {
    subject: Sym,
    institution: Sym,
    class: Sym,
    /// The academic year's starting calendar year (2026 for 2026/27).
    academic_year: i64,
    sheet: Sheet,
}

/// The learner's whole-day attendance marks in one class of one institution in one academic
/// year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DayRows {
    institution: Sym,
    class: Sym,
    academic_year: i64,
    rows: Vec<AttendanceRow>,
}

/// Where a sheet is: (subject, institution, class, academic year).
type SheetAt = (Sym, Sym, Sym, i64);

/// One learner's diary. Sheets and day rows are in order of first appearance (the log's order,
/// so canonical); views sort them by name. A learner has a few of each, so finding one is a
/// scan of a few integers, and loading a diary allocates a handful of vectors, not a tree of
/// maps keyed by strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Diary {
    sheets: Vec<ClassSheet>,
    day_attendance: Vec<DayRows>,
    debts: Vec<Debt>,
    promotions: Vec<Promotion>,
    final_attestation: Vec<FinalResult>,
    certificates: Vec<Certificate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Marks, codes, kinds of work, scales, dates, institutions, classes and subjects the rows
    /// name.
    symbols: Symbols,
    /// Learner id -> their diary.
    learners: Keyed<Lazy<Diary>>,
}

/// The `diaries` read model.
#[derive(Debug, Default)]
pub struct Diaries {
    state: State,
}

impl Diary {
    fn sheet(&mut self, (subject, institution, class, academic_year): SheetAt) -> &mut Sheet {
        let at = self.sheets.iter().position(|s| {
            s.subject == subject && s.institution == institution && s.class == class && s.academic_year == academic_year
        });
        let at = at.unwrap_or_else(|| {
            self.sheets.push(ClassSheet { subject, institution, class, academic_year, sheet: Sheet::default() });
            self.sheets.len() - 1
        });
        &mut self.sheets[at].sheet
    }

    fn day_rows(&mut self, institution: Sym, class: Sym, academic_year: i64) -> &mut Vec<AttendanceRow> {
        let at = self
            .day_attendance
            .iter()
            .position(|d| d.institution == institution && d.class == class && d.academic_year == academic_year);
        let at = at.unwrap_or_else(|| {
            self.day_attendance.push(DayRows { institution, class, academic_year, rows: Vec::new() });
            self.day_attendance.len() - 1
        });
        &mut self.day_attendance[at].rows
    }

    /// Applies a correction to the record it names among this learner's records: first those
    /// of the institution and class it names (in any academic year) (a sheet's record or a whole-day attendance mark),
    /// then any other (the rules check the record's stream, not its class), then the retakes.
    /// `here` is the named (institution, class), `None` when this model never saw those names.
    fn correct(&mut self, here: Option<(Sym, Sym)>, target: &EventId, c: Correction, syms: &Symbols) {
        for named in [true, false] {
            let at = |i: Sym, k: Sym| (Some((i, k)) == here) == named;
            for s in self.sheets.iter_mut() {
                if at(s.institution, s.class) && s.sheet.correct(target, &c, syms) {
                    return;
                }
            }
            for d in self.day_attendance.iter_mut().filter(|d| at(d.institution, d.class)) {
                if let Some(row) = d.rows.iter_mut().rev().find(|r| r.record.answers_to(target)) {
                    row.record.corrections.push(c);
                    return;
                }
            }
        }
        let retakes = self.debts.iter_mut().rev().flat_map(|d| d.retakes.iter_mut());
        if let Some(r) = retakes.into_iter().find(|r| r.record.answers_to(target)) {
            r.record.corrections.push(c);
        }
    }
}

impl ReadModel for Diaries {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 2: records carry `imported` (a migration\'s source system and record).
        // 3: sheets and day rows in flat lists, institutions, classes, subjects and dates
        //    interned; event ids as byte strings; a sheet's term, year and attestation grades
        //    boxed.
        // 4: sheets and day rows per academic year (a class name recurs every year).
        // 5: each diary as its own byte string, decoded when first needed (`Lazy`).
        5
    }

    fn apply(&mut self, f: &Fact<'_>) {
        let Some(learner) = StreamKind::Learner.id_of(f.stream) else { return };
        let State { symbols, learners } = &mut self.state;
        let mut grade =
            |kind, (subject, institution, class): (&str, &str, &str), mark: &str, year, term, scale: &str| {
                let row = GradeRow {
                    record: Corrected::new(f.seq, f.id, symbols.intern(mark)).imported(f.imported),
                    academic_year: year,
                    term,
                    scale: symbols.intern(scale),
                };
                let at = (symbols.intern(subject), symbols.intern(institution), symbols.intern(class), year);
                learners.slot(learner).get_mut().sheet(at).add_grade(kind, row);
            };
        let event = || EventId::of(f.id);
        match f.event {
            Event::TermGradeSet(d) => grade(
                GradeKind::Term,
                (&d.subject, &d.institution, &d.class),
                &d.mark.0,
                d.academic_year,
                Some(d.term),
                &d.scale,
            ),
            Event::YearGradeSet(d) => grade(
                GradeKind::Year,
                (&d.subject, &d.institution, &d.class),
                &d.mark.0,
                d.academic_year,
                None,
                &d.scale,
            ),
            Event::IntermediateAttestationRecorded(d) => grade(
                GradeKind::Attestation,
                (&d.subject, &d.institution, &d.class),
                &d.mark.0,
                d.academic_year,
                None,
                &d.scale,
            ),
            Event::GradeRecorded(d) => {
                let Some(year) = academic_year_of_date(&d.lesson_date) else { return };
                let row = mark_row(symbols, f, d);
                let at = (symbols.intern(&d.subject), symbols.intern(&d.institution), symbols.intern(&d.class), year);
                learners.slot(learner).get_mut().sheet(at).add_mark(row, symbols);
            }
            Event::AttendanceMarked(d) => {
                let Some(year) = academic_year_of_date(&d.lesson_date) else { return };
                let record = Corrected::new(f.seq, f.id, symbols.intern(&d.code)).imported(f.imported);
                let row = AttendanceRow { record, date: symbols.intern(&d.lesson_date) };
                let (institution, class) = (symbols.intern(&d.institution), symbols.intern(&d.class));
                let diary = learners.slot(learner).get_mut();
                match &d.subject {
                    Some(subject) => {
                        diary.sheet((symbols.intern(subject), institution, class, year)).attendance.push(row)
                    }
                    None => diary.day_rows(institution, class, year).push(row),
                }
            }
            Event::RecordCorrected(d) => {
                let Some(diary) = learners.get_mut(learner).map(Lazy::get_mut) else { return };
                let (target, c) = correction_of(symbols, f.seq, f.id, d);
                let here = symbols.get(&d.institution).zip(symbols.get(&d.class));
                diary.correct(here, &target, c, symbols);
            }
            Event::AcademicDebtOpened(d) => {
                let debt = Debt {
                    seq: f.seq,
                    event: event(),
                    debt_id: d.debt_id.clone(),
                    institution: symbols.intern(&d.institution),
                    class: symbols.intern(&d.class),
                    subject: symbols.intern(&d.subject),
                    academic_year: d.academic_year,
                    opened_on: symbols.intern(&d.opened_on),
                    attestation_event: EventId::of(&d.attestation_event_id),
                    retakes: Vec::new(),
                };
                learners.slot(learner).get_mut().debts.push(debt)
            }
            Event::RetakeRecorded(d) => {
                let Some(diary) = learners.get_mut(learner).map(Lazy::get_mut) else { return };
                let Some(debt) = diary.debts.iter_mut().rev().find(|x| x.debt_id == d.debt_id) else { return };
                debt.retakes.push(Retake {
                    record: Corrected::new(f.seq, f.id, symbols.intern(&d.mark.0)).imported(f.imported),
                    held_on: symbols.intern(&d.held_on),
                    scale: symbols.intern(&d.scale),
                    commission_members: d.commission.as_ref().map_or(0, |c| c.len() as u64),
                });
            }
            Event::Promoted(d) => {
                let promotion = Promotion {
                    seq: f.seq,
                    event: event(),
                    institution: symbols.intern(&d.institution),
                    from_class: symbols.intern(&d.from_class),
                    to_class: symbols.intern(&d.to_class),
                    academic_year: d.academic_year,
                    basis: symbols.intern(&d.basis),
                };
                learners.slot(learner).get_mut().promotions.push(promotion)
            }
            Event::FinalAttestationRecorded(d) => {
                let result = FinalResult {
                    seq: f.seq,
                    event: event(),
                    institution: symbols.intern(&d.institution),
                    exam: symbols.intern(&d.exam),
                    subject: symbols.intern(&d.subject),
                    academic_year: d.academic_year,
                    score: d.score,
                };
                learners.slot(learner).get_mut().final_attestation.push(result)
            }
            Event::CertificateIssued(d) => {
                let certificate = Certificate {
                    seq: f.seq,
                    event: event(),
                    institution: symbols.intern(&d.institution),
                    level: symbols.intern(&d.level),
                    number: d.number.clone(),
                    issued_on: symbols.intern(&d.issued_on),
                };
                learners.slot(learner).get_mut().certificates.push(certificate)
            }
            _ => {}
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(&self.state)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut state: State = model::decode_state(NAME, bytes)?;
        state.symbols.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        state.learners.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        self.state = state;
        Ok(())
    }

    /// One learner's diary, or one subject of it.
    fn view_now(&self, path: &[&str]) -> Option<Result<View, ViewError>> {
        matches!(path.len(), 1 | 2).then(|| self.view(path))
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let learner = model::segment(path, 0, "a learner id")?;
        let diary = self
            .state
            .learners
            .get(learner)
            .map(Lazy::get)
            .ok_or_else(|| ViewError::NotFound(format!("no diary of learner {learner}")))?;
        let scope = Scope::Learner(learner.to_owned());
        let syms = &self.state.symbols;
        match path.len() {
            1 => Ok(View { scope, body: summary_json(syms, learner, diary) }),
            2 => {
                let subject = model::segment(path, 1, "a subject")?;
                let sheets: Vec<&ClassSheet> =
                    sorted_sheets(syms, diary).into_iter().filter(|s| syms.name(s.subject) == subject).collect();
                if sheets.is_empty() {
                    return Err(ViewError::NotFound(format!("learner {learner} has no record in subject {subject}")));
                }
                Ok(View { scope, body: subject_json(syms, learner, subject, &sheets, diary) })
            }
            _ => Err(ViewError::BadPath(format!("expected {SHAPE}"))),
        }
    }
}

/// The diary's sheets by subject name, then academic year, institution and class names (the
/// order views list them in).
fn sorted_sheets<'d>(syms: &Symbols, d: &'d Diary) -> Vec<&'d ClassSheet> {
    let mut sheets: Vec<&ClassSheet> = d.sheets.iter().collect();
    sheets.sort_by(|a, b| {
        let key =
            |s: &ClassSheet| (syms.name(s.subject), s.academic_year, syms.name(s.institution), syms.name(s.class));
        key(a).cmp(&key(b))
    });
    sheets
}

fn summary_json(syms: &Symbols, learner: &str, d: &Diary) -> Value {
    let sheets = sorted_sheets(syms, d);
    let subjects: Vec<Value> = sheets
        .chunk_by(|a, b| a.subject == b.subject)
        .map(|group| {
            let classes: Vec<Value> = group
                .iter()
                .map(|s| {
                    let mut o = Map::new();
                    o.insert("institution".to_owned(), json!(syms.name(s.institution)));
                    o.insert("class".to_owned(), json!(syms.name(s.class)));
                    o.insert("academic_year".to_owned(), json!(s.academic_year));
                    o.insert("marks".to_owned(), json!(s.sheet.marks.len()));
                    o.insert("attendance_marks".to_owned(), json!(s.sheet.attendance.len()));
                    o.insert("average".to_owned(), s.sheet.average_json());
                    s.sheet.grades_into(syms, &mut o);
                    Value::Object(o)
                })
                .collect();
            json!({"subject": syms.name(group[0].subject), "classes": classes})
        })
        .collect();
    let mut days: Vec<&DayRows> = d.day_attendance.iter().collect();
    days.sort_by(|a, b| {
        let key = |d: &DayRows| (d.academic_year, syms.name(d.institution), syms.name(d.class));
        key(a).cmp(&key(b))
    });
    let day: Vec<Value> = days
        .iter()
        .flat_map(|d| {
            d.rows.iter().map(move |r| {
                let mut v = attendance_json(r, syms);
                v["institution"] = json!(syms.name(d.institution));
                v["class"] = json!(syms.name(d.class));
                v["academic_year"] = json!(d.academic_year);
                v
            })
        })
        .collect();
    let n = |s: Sym| syms.name(s);
    json!({
        "learner": learner,
        "subjects": subjects,
        "day_attendance": day,
        "debts": d.debts.iter().map(|x| debt_json(x, syms)).collect::<Vec<_>>(),
        "promotions": d.promotions.iter().map(|p| json!({
            "institution": n(p.institution), "from_class": n(p.from_class), "to_class": n(p.to_class),
            "academic_year": p.academic_year, "basis": n(p.basis), "event": p.event.to_string(), "seq": p.seq,
        })).collect::<Vec<_>>(),
        "final_attestation": d.final_attestation.iter().map(|r| json!({
            "institution": n(r.institution), "exam": n(r.exam), "subject": n(r.subject),
            "academic_year": r.academic_year, "score": r.score, "event": r.event.to_string(), "seq": r.seq,
        })).collect::<Vec<_>>(),
        "certificates": d.certificates.iter().map(|c| json!({
            "institution": n(c.institution), "level": n(c.level), "number": c.number, "issued_on": n(c.issued_on),
            "event": c.event.to_string(), "seq": c.seq,
        })).collect::<Vec<_>>(),
    })
}

fn subject_json(syms: &Symbols, learner: &str, subject: &str, sheets: &[&ClassSheet], d: &Diary) -> Value {
    let classes: Vec<Value> = sheets
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("institution".to_owned(), json!(syms.name(s.institution)));
            o.insert("class".to_owned(), json!(syms.name(s.class)));
            o.insert("academic_year".to_owned(), json!(s.academic_year));
            s.sheet.json_into(syms, &mut o);
            Value::Object(o)
        })
        .collect();
    let debts: Vec<Value> =
        d.debts.iter().filter(|x| syms.name(x.subject) == subject).map(|x| debt_json(x, syms)).collect();
    json!({"learner": learner, "subject": subject, "classes": classes, "debts": debts})
}

fn debt_json(d: &Debt, syms: &Symbols) -> Value {
    let closed = d.retakes.iter().any(|r| r.passed(syms));
    let retakes: Vec<Value> = d
        .retakes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = Value::Object(Map::new());
            r.record.json_into("mark", syms, v.as_object_mut().expect("an object"));
            v["scale"] = json!(syms.name(r.record.current_scale(r.scale)));
            v["attempt"] = json!(i + 1);
            v["held_on"] = json!(syms.name(r.held_on));
            v["passed"] = json!(r.passed(syms));
            v["commission_members"] = json!(r.commission_members);
            v
        })
        .collect();
    let n = |s: Sym| syms.name(s);
    json!({
        "debt_id": d.debt_id, "institution": n(d.institution), "class": n(d.class), "subject": n(d.subject),
        "academic_year": d.academic_year, "opened_on": n(d.opened_on),
        "attestation_event": d.attestation_event.to_string(),
        "event": d.event.to_string(), "seq": d.seq,
        "status": if closed { "closed" } else { "open" }, "attempts": d.retakes.len(), "retakes": retakes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testkit::{check_reload, load_shared, History};

    const L1: &str = "learner/47-1";

    fn school(extra: Value) -> Value {
        let mut v = json!({"institution": "sch-1", "class": "5А"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    }

    /// Learner 47-1: maths 5 (test 5) and 4 (classwork 3) -> (25 + 12) / 8 = 4.625 -> "4.63";
    /// an attestation 2 in physics opens a debt; retake 1 fails (2), retake 2 passes (3).
    fn history() -> (History, Vec<String>) {
        let mut h = History::default();
        let g = |mark: i64, kind: &str, weight: i64| {
            school(json!({"subject": "math", "mark": mark, "scale": "five_point", "weight": weight, "kind": kind,
                          "lesson_date": "2026-09-01"}))
        };
        let mut ids = vec![];
        ids.push(h.push(L1, "journal.grade_recorded", g(5, "test", 5))); // 0
        ids.push(h.push(L1, "journal.grade_recorded", g(4, "classwork", 3))); // 1
        ids.push(h.push(
            L1,
            "journal.attendance_marked",
            school(json!({"subject": "math", "lesson_date": "2026-09-02", "code": "Н"})),
        )); // 2
        ids.push(h.push(
            L1,
            "journal.intermediate_attestation_recorded",
            school(json!({"subject": "physics", "academic_year": 2026, "mark": 2, "scale": "five_point"})),
        )); // 3
        ids.push(h.push(
            L1,
            "journal.academic_debt_opened",
            school(json!({"debt_id": "d-1", "subject": "physics", "academic_year": 2026, "opened_on": "2027-05-30",
                          "attestation_event_id": ids[3]})),
        )); // 4
        ids.push(h.push(
            L1,
            "journal.retake_recorded",
            school(json!({"debt_id": "d-1", "held_on": "2027-06-10", "mark": 2, "scale": "five_point"})),
        )); // 5
            // A different learner's grade must not appear in 47-1's diary.
        ids.push(h.push("learner/47-2", "journal.grade_recorded", g(2, "test", 5))); // 6
        (h, ids)
    }

    fn finish(h: &mut History) -> Vec<String> {
        vec![
            h.push(
                L1,
                "journal.retake_recorded",
                school(json!({"debt_id": "d-1", "held_on": "2027-06-20", "mark": 3, "scale": "five_point",
                          "commission": ["did:key:a", "did:key:b", "did:key:c"]})),
            ),
            h.push(
                L1,
                "journal.promoted",
                json!({"institution": "sch-1", "from_class": "5А", "to_class": "6А", "academic_year": 2026,
                       "basis": "full"}),
            ),
            h.push(
                L1,
                "journal.final_attestation_recorded",
                json!({"institution": "sch-1", "exam": "oge", "subject": "math", "academic_year": 2031, "score": 27}),
            ),
            h.push(
                L1,
                "journal.certificate_issued",
                json!({"institution": "sch-1", "level": "basic_general", "number": "47-0001", "issued_on": "2031-06-25"}),
            ),
        ]
    }

    #[test]
    fn diary_shows_marks_averages_debts_and_documents() {
        let (mut h, ids) = history();
        let mut m = Diaries::default();
        h.fold(&mut m);
        let v = m.view(&["47-1"]).unwrap();
        assert_eq!(v.scope, Scope::Learner("47-1".into()));
        let debt = &v.body["debts"][0];
        assert_eq!(debt["status"], "open");
        assert_eq!(debt["attempts"], 1);
        assert_eq!(debt["retakes"][0]["passed"], false);
        assert_eq!(debt["attestation_event"], ids[3]);

        let more = finish(&mut h);
        let mut m = Diaries::default();
        h.fold(&mut m);
        let body = m.view(&["47-1"]).unwrap().body;
        let math = &body["subjects"][0];
        assert_eq!(math["subject"], "math");
        assert_eq!(math["classes"][0]["average"], json!({"value": "4.63", "numerator": 37, "denominator": 8}));
        assert_eq!(math["classes"][0]["marks"], 2);
        assert_eq!(body["subjects"][1]["classes"][0]["intermediate_attestation"][0]["mark"], "2");
        let debt = &body["debts"][0];
        assert_eq!(debt["status"], "closed");
        assert_eq!(debt["attempts"], 2);
        assert_eq!(debt["retakes"][1]["passed"], true);
        assert_eq!(debt["retakes"][1]["commission_members"], 3);
        assert_eq!(debt["retakes"][1]["event"], more[0]);
        assert_eq!(
            body["promotions"],
            json!([{"institution": "sch-1", "from_class": "5А", "to_class": "6А", "academic_year": 2026,
                    "basis": "full", "event": more[1], "seq": 8}])
        );
        assert_eq!(body["final_attestation"][0]["score"], 27);
        assert_eq!(body["certificates"][0]["number"], "47-0001");

        let sub = m.view(&["47-1", "math"]).unwrap().body;
        assert_eq!(sub["classes"][0]["marks"][1]["mark"], "4");
        assert_eq!(sub["classes"][0]["marks"][1]["event"], ids[1]);
        assert_eq!(sub["classes"][0]["attendance"][0]["code"], "Н");
        assert_eq!(sub["debts"], json!([]));
        assert_eq!(m.view(&["47-1", "physics"]).unwrap().body["debts"][0]["debt_id"], "d-1");
        let other = m.view(&["47-2", "math"]).unwrap().body;
        assert_eq!(other["classes"][0]["average"]["value"], "2.00");
    }

    #[test]
    fn a_loaded_diary_is_decoded_when_first_read_or_changed_and_answers_the_same() {
        let (mut h, _) = history();
        let mut whole = Diaries::default();
        h.fold(&mut whole);
        let (mut loaded, source) = load_shared(&whole);
        let encoded = |m: &Diaries| m.state.learners.values().iter().filter(|d| d.is_encoded()).count();
        assert_eq!(encoded(&loaded), 2, "no diary is decoded by the load");
        assert_eq!(loaded.view(&["47-2"]).unwrap(), whole.view(&["47-2"]).unwrap());
        assert_eq!(encoded(&loaded), 1, "a view decodes its learner's diary alone");
        assert_eq!(crate::lazy::encode_apart(|| loaded.encode()), source, "decoded or not, the same bytes");
        assert_eq!(loaded.encode(), whole.encode(), "and the same inline");
        let before = h.entries.len();
        finish(&mut h);
        for e in &h.entries[before..] {
            loaded.apply(&e.fact());
            whole.apply(&e.fact());
        }
        assert_eq!(encoded(&loaded), 0, "47-1's diary is decoded to change it");
        assert_eq!(model::digest(&loaded), model::digest(&whole));
    }

    #[test]
    fn corrections_reach_marks_and_retakes() {
        let (mut h, ids) = history();
        let correct = |h: &mut History, target: &str, mark: Option<i64>| {
            let mut d =
                school(json!({"corrected_event_id": target, "reason": "appeal", "authorised_by": "did:key:adm"}));
            if let Some(m) = mark {
                d["mark"] = json!(m);
                d["scale"] = json!("five_point");
            }
            h.push(L1, "journal.record_corrected", d)
        };
        correct(&mut h, &ids[1], Some(5)); // classwork 4 -> 5: (25 + 15) / 8 = 5.00
        correct(&mut h, &ids[5], Some(4)); // the failed retake becomes a pass
        let mut m = Diaries::default();
        h.fold(&mut m);
        let body = m.view(&["47-1"]).unwrap().body;
        assert_eq!(body["subjects"][0]["classes"][0]["average"]["value"], "5.00");
        assert_eq!(body["debts"][0]["status"], "closed");
        assert_eq!(body["debts"][0]["retakes"][0]["original_mark"], "2");
        correct(&mut h, &ids[0], None); // annul the test 5: 15 / 3 = 5.00, numerator 15
                                        // A correction naming another class still reaches the record (attendance Н -> ОП).
        h.push(
            L1,
            "journal.record_corrected",
            json!({"institution": "sch-1", "class": "9В", "corrected_event_id": ids[2], "reason": "late, not absent",
                   "authorised_by": "did:key:adm", "code": "ОП"}),
        );
        let mut m = Diaries::default();
        h.fold(&mut m);
        let body = m.view(&["47-1", "math"]).unwrap().body;
        assert_eq!(body["classes"][0]["average"], json!({"value": "5.00", "numerator": 15, "denominator": 3}));
        assert_eq!(body["classes"][0]["marks"][0]["annulled"], true);
        assert_eq!(body["classes"][0]["attendance"][0]["code"], "ОП");
        assert_eq!(body["classes"][0]["attendance"][0]["original_code"], "Н");
    }

    /// A learner who repeats 10В: the same class name in 2023/24 and 2026/27 is two sheets, each
    /// with its own year and average, and so are the whole-day marks; a correction finds its
    /// record in its own year.
    #[test]
    fn the_same_class_in_two_academic_years_keeps_two_sheets() {
        let mut h = History::default();
        let at = |extra: Value| {
            let mut v = json!({"institution": "sch-1", "class": "10В"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let mark = |mark: i64, date: &str| {
            at(json!({"subject": "history", "mark": mark, "scale": "five_point", "weight": 5, "kind": "test",
                      "lesson_date": date}))
        };
        let old = h.push(L1, "journal.grade_recorded", mark(3, "2024-05-20")); // 2023/24
        h.push(
            L1,
            "journal.year_grade_set",
            at(json!({"subject": "history", "academic_year": 2023, "mark": 3, "scale": "five_point"})),
        );
        h.push(L1, "journal.attendance_marked", at(json!({"lesson_date": "2024-03-01", "code": "Б"})));
        h.push(L1, "journal.grade_recorded", mark(5, "2026-09-01")); // 2026/27
        h.push(L1, "journal.attendance_marked", at(json!({"lesson_date": "2026-09-02", "code": "Н"})));
        h.push(
            L1,
            "journal.record_corrected",
            at(json!({"corrected_event_id": old, "reason": "appeal", "authorised_by": "did:key:adm", "mark": 4,
                      "scale": "five_point"})),
        );
        let mut m = Diaries::default();
        h.fold(&mut m);
        let body = m.view(&["47-1"]).unwrap().body;
        let classes = body["subjects"][0]["classes"].as_array().unwrap();
        let years: Vec<(Value, Value, Value)> = classes
            .iter()
            .map(|c| (c["academic_year"].clone(), c["average"]["value"].clone(), c["marks"].clone()))
            .collect();
        assert_eq!(years, vec![(json!(2023), json!("4.00"), json!(1)), (json!(2026), json!("5.00"), json!(1))]);
        assert_eq!(classes[0]["year_grades"][0]["mark"], "3");
        assert_eq!(classes[1]["year_grades"], json!([]));
        let day: Vec<(Value, Value)> = body["day_attendance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["academic_year"].clone(), d["code"].clone()))
            .collect();
        assert_eq!(day, vec![(json!(2023), json!("Б")), (json!(2026), json!("Н"))]);
        let sub = m.view(&["47-1", "history"]).unwrap().body;
        let years: Vec<&Value> = sub["classes"].as_array().unwrap().iter().map(|c| &c["academic_year"]).collect();
        assert_eq!(years, vec![2023, 2026]);
        assert_eq!(sub["classes"][0]["marks"][0]["original_mark"], "3");
        assert_eq!(sub["classes"][0]["marks"][0]["mark"], "4");
        check_reload(&h, || Box::<Diaries>::default());
    }

    #[test]
    fn unknown_and_malformed_paths() {
        let (h, _) = history();
        let mut m = Diaries::default();
        h.fold(&mut m);
        assert_eq!(m.view(&["47-9"]), Err(ViewError::NotFound("no diary of learner 47-9".into())));
        assert_eq!(
            m.view(&["47-1", "art"]),
            Err(ViewError::NotFound("learner 47-1 has no record in subject art".into()))
        );
        assert_eq!(m.view(&["47-1", "math", "x"]), Err(ViewError::BadPath(format!("expected {SHAPE}"))));
        assert!(matches!(m.view(&[]), Err(ViewError::BadPath(_))));
    }

    #[test]
    fn scales_decide_whether_a_retake_passes() {
        assert!(passes("five_point", "3"));
        assert!(!passes("five_point", "2"));
        assert!(passes("pass_fail", "зачтено"));
        assert!(!passes("pass_fail", "не зачтено"));
        assert!(!passes("four_level", "неудовлетворительно"));
        assert!(!passes("unknown_scale", "5"));
    }

    #[test]
    fn reload_and_halves_equal_the_whole() {
        let (mut h, _) = history();
        finish(&mut h);
        check_reload(&h, || Box::<Diaries>::default());
    }
}
