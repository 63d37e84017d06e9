//! The learner diary (электронный дневник): one learner's school record from their side. Per
//! subject and class: marks (current values with their corrections), attendance, the weighted
//! average, term, year and intermediate-attestation grades; and for the learner: whole-day
//! attendance, academic debts with their retakes (open or closed, attempts), promotions, final
//! attestation results and certificates.
//! Not the class's view (`journals`), not college or university results (`record-books`), and
//! not a judge of what may be written (the rules). State is per learner only: it repeats the
//! marks the journal also holds, because a view may only read its own model's state, and keeps
//! them compact (event ids as 16 bytes, marks, codes, kinds, scales and dates as interned
//! symbols, about 26 bytes a mark; no JSON until a view is asked for).

use super::common::{
    attendance_json, correction_of, mark_row, slot, AttendanceRow, Corrected, Correction, EventId, GradeKind, GradeRow,
    Keyed, Sheet, Sym, Symbols,
};
use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::vocabulary::{Event, StreamKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

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
    held_on: String,
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
    institution: String,
    class: String,
    subject: String,
    academic_year: i64,
    opened_on: String,
    attestation_event: EventId,
    retakes: Vec<Retake>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Promotion {
    seq: u64,
    event: EventId,
    institution: String,
    from_class: String,
    to_class: String,
    academic_year: i64,
    basis: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FinalResult {
    seq: u64,
    event: EventId,
    institution: String,
    exam: String,
    subject: String,
    academic_year: i64,
    score: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Certificate {
    seq: u64,
    event: EventId,
    institution: String,
    level: String,
    number: String,
    issued_on: String,
}

/// Institution -> class -> value.
type ByClass<V> = BTreeMap<String, BTreeMap<String, V>>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Diary {
    /// Subject -> institution -> class -> sheet (a learner moves up a class every year).
    subjects: BTreeMap<String, ByClass<Sheet>>,
    day_attendance: ByClass<Vec<AttendanceRow>>,
    debts: Vec<Debt>,
    promotions: Vec<Promotion>,
    final_attestation: Vec<FinalResult>,
    certificates: Vec<Certificate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Marks, codes, kinds of work, scales and dates the rows name.
    symbols: Symbols,
    /// Learner id -> their diary.
    learners: Keyed<Diary>,
}

/// The `diaries` read model.
#[derive(Debug, Default)]
pub struct Diaries {
    state: State,
}

impl Diary {
    fn sheet(&mut self, subject: &str, institution: &str, class: &str) -> &mut Sheet {
        slot(slot(slot(&mut self.subjects, subject), institution), class)
    }

    /// Applies a correction to the record it names among this learner's records: first those
    /// of the institution and class it names (a sheet's record or a whole-day attendance mark),
    /// then any other (the rules check the record's stream, not its class), then the retakes.
    fn correct(&mut self, institution: &str, class: &str, target: &EventId, c: Correction, syms: &Symbols) {
        for named in [true, false] {
            let here = |i: &str, k: &str| (i == institution && k == class) == named;
            for by_inst in self.subjects.values_mut() {
                for (i, classes) in by_inst.iter_mut() {
                    for (k, sheet) in classes.iter_mut() {
                        if here(i, k) && sheet.correct(target, &c, syms) {
                            return;
                        }
                    }
                }
            }
            for (i, classes) in self.day_attendance.iter_mut() {
                for (k, rows) in classes.iter_mut() {
                    if !here(i, k) {
                        continue;
                    }
                    if let Some(row) = rows.iter_mut().rev().find(|r| r.record.answers_to(target)) {
                        row.record.corrections.push(c);
                        return;
                    }
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
        2
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
                learners.slot(learner).sheet(subject, institution, class).add_grade(kind, row);
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
                let row = mark_row(symbols, f, d);
                learners.slot(learner).sheet(&d.subject, &d.institution, &d.class).add_mark(row, symbols);
            }
            Event::AttendanceMarked(d) => {
                let record = Corrected::new(f.seq, f.id, symbols.intern(&d.code)).imported(f.imported);
                let row = AttendanceRow { record, date: symbols.intern(&d.lesson_date) };
                let diary = learners.slot(learner);
                match &d.subject {
                    Some(subject) => diary.sheet(subject, &d.institution, &d.class).attendance.push(row),
                    None => slot(slot(&mut diary.day_attendance, &d.institution), &d.class).push(row),
                }
            }
            Event::RecordCorrected(d) => {
                let Some(diary) = learners.get_mut(learner) else { return };
                let (target, c) = correction_of(symbols, f.seq, f.id, d);
                diary.correct(&d.institution, &d.class, &target, c, symbols);
            }
            Event::AcademicDebtOpened(d) => learners.slot(learner).debts.push(Debt {
                seq: f.seq,
                event: event(),
                debt_id: d.debt_id.clone(),
                institution: d.institution.clone(),
                class: d.class.clone(),
                subject: d.subject.clone(),
                academic_year: d.academic_year,
                opened_on: d.opened_on.clone(),
                attestation_event: EventId::of(&d.attestation_event_id),
                retakes: Vec::new(),
            }),
            Event::RetakeRecorded(d) => {
                let Some(diary) = learners.get_mut(learner) else { return };
                let Some(debt) = diary.debts.iter_mut().rev().find(|x| x.debt_id == d.debt_id) else { return };
                debt.retakes.push(Retake {
                    record: Corrected::new(f.seq, f.id, symbols.intern(&d.mark.0)).imported(f.imported),
                    held_on: d.held_on.clone(),
                    scale: symbols.intern(&d.scale),
                    commission_members: d.commission.as_ref().map_or(0, |c| c.len() as u64),
                });
            }
            Event::Promoted(d) => learners.slot(learner).promotions.push(Promotion {
                seq: f.seq,
                event: event(),
                institution: d.institution.clone(),
                from_class: d.from_class.clone(),
                to_class: d.to_class.clone(),
                academic_year: d.academic_year,
                basis: d.basis.clone(),
            }),
            Event::FinalAttestationRecorded(d) => learners.slot(learner).final_attestation.push(FinalResult {
                seq: f.seq,
                event: event(),
                institution: d.institution.clone(),
                exam: d.exam.clone(),
                subject: d.subject.clone(),
                academic_year: d.academic_year,
                score: d.score,
            }),
            Event::CertificateIssued(d) => learners.slot(learner).certificates.push(Certificate {
                seq: f.seq,
                event: event(),
                institution: d.institution.clone(),
                level: d.level.clone(),
                number: d.number.clone(),
                issued_on: d.issued_on.clone(),
            }),
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

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let learner = model::segment(path, 0, "a learner id")?;
        let diary = self
            .state
            .learners
            .get(learner)
            .ok_or_else(|| ViewError::NotFound(format!("no diary of learner {learner}")))?;
        let scope = Scope::Learner(learner.to_owned());
        match path.len() {
            1 => Ok(View { scope, body: summary_json(&self.state.symbols, learner, diary) }),
            2 => {
                let subject = model::segment(path, 1, "a subject")?;
                let classes = diary.subjects.get(subject).ok_or_else(|| {
                    ViewError::NotFound(format!("learner {learner} has no record in subject {subject}"))
                })?;
                Ok(View { scope, body: subject_json(&self.state.symbols, learner, subject, classes, diary) })
            }
            _ => Err(ViewError::BadPath(format!("expected {SHAPE}"))),
        }
    }
}

fn by_class<V>(m: &ByClass<V>) -> impl Iterator<Item = (&String, &String, &V)> {
    m.iter().flat_map(|(inst, classes)| classes.iter().map(move |(class, v)| (inst, class, v)))
}

fn summary_json(syms: &Symbols, learner: &str, d: &Diary) -> Value {
    let subjects: Vec<Value> = d
        .subjects
        .iter()
        .map(|(subject, classes)| {
            let classes: Vec<Value> = by_class(classes)
                .map(|(inst, class, sheet)| {
                    let mut o = Map::new();
                    o.insert("institution".to_owned(), json!(inst));
                    o.insert("class".to_owned(), json!(class));
                    o.insert("marks".to_owned(), json!(sheet.marks.len()));
                    o.insert("attendance_marks".to_owned(), json!(sheet.attendance.len()));
                    o.insert("average".to_owned(), sheet.average_json());
                    sheet.grades_into(syms, &mut o);
                    Value::Object(o)
                })
                .collect();
            json!({"subject": subject, "classes": classes})
        })
        .collect();
    let day: Vec<Value> = by_class(&d.day_attendance)
        .flat_map(|(inst, class, rows)| {
            rows.iter().map(move |r| {
                let mut v = attendance_json(r, syms);
                v["institution"] = json!(inst);
                v["class"] = json!(class);
                v
            })
        })
        .collect();
    json!({
        "learner": learner,
        "subjects": subjects,
        "day_attendance": day,
        "debts": d.debts.iter().map(|x| debt_json(x, syms)).collect::<Vec<_>>(),
        "promotions": d.promotions.iter().map(|p| json!({
            "institution": p.institution, "from_class": p.from_class, "to_class": p.to_class,
            "academic_year": p.academic_year, "basis": p.basis, "event": p.event.to_string(), "seq": p.seq,
        })).collect::<Vec<_>>(),
        "final_attestation": d.final_attestation.iter().map(|r| json!({
            "institution": r.institution, "exam": r.exam, "subject": r.subject, "academic_year": r.academic_year,
            "score": r.score, "event": r.event.to_string(), "seq": r.seq,
        })).collect::<Vec<_>>(),
        "certificates": d.certificates.iter().map(|c| json!({
            "institution": c.institution, "level": c.level, "number": c.number, "issued_on": c.issued_on,
            "event": c.event.to_string(), "seq": c.seq,
        })).collect::<Vec<_>>(),
    })
}

fn subject_json(syms: &Symbols, learner: &str, subject: &str, classes: &ByClass<Sheet>, d: &Diary) -> Value {
    let classes: Vec<Value> = by_class(classes)
        .map(|(inst, class, sheet)| {
            let mut o = Map::new();
            o.insert("institution".to_owned(), json!(inst));
            o.insert("class".to_owned(), json!(class));
            sheet.json_into(syms, &mut o);
            Value::Object(o)
        })
        .collect();
    let debts: Vec<Value> = d.debts.iter().filter(|x| x.subject == subject).map(|x| debt_json(x, syms)).collect();
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
            v["held_on"] = json!(r.held_on);
            v["passed"] = json!(r.passed(syms));
            v["commission_members"] = json!(r.commission_members);
            v
        })
        .collect();
    json!({
        "debt_id": d.debt_id, "institution": d.institution, "class": d.class, "subject": d.subject,
        "academic_year": d.academic_year, "opened_on": d.opened_on, "attestation_event": d.attestation_event.to_string(),
        "event": d.event.to_string(), "seq": d.seq,
        "status": if closed { "closed" } else { "open" }, "attempts": d.retakes.len(), "retakes": retakes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testkit::{check_reload, History};

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
