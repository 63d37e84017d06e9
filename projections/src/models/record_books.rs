//! The record book (зачётная книжка) of a college or university learner: course results, exams
//! and credits by institution and term, each with its current mark and correction history, and
//! the diplomas issued.
//! Not the school journal or diary, and no check that a diploma's courses were passed (the rules
//! and the issuer decide that).

use super::common::{correction_of, slot, Corrected, EventId, Keyed, Sym, Symbols};
use crate::lazy::Lazy;
use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::vocabulary::{Event, StreamKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const NAME: &str = "record-books";
const SHAPE: &str = "record-books/<learner>";

/// A course result (`college.course_result_recorded`, `form` none) or an exam or credit
/// (`college.exam_recorded`, `form` as written: exam, credit, differentiated_credit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Assessment {
    record: Corrected,
    group: Sym,
    course: Sym,
    form: Option<Sym>,
    scale: Sym,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Diploma {
    seq: u64,
    event: EventId,
    institution: String,
    level: String,
    number: String,
    issued_on: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Book {
    /// Institution -> term -> results in log order.
    terms: BTreeMap<String, BTreeMap<i64, Vec<Assessment>>>,
    diplomas: Vec<Diploma>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Marks, scales, groups, courses and forms the results name.
    symbols: Symbols,
    /// Learner id -> their book.
    learners: Keyed<Lazy<Book>>,
}

/// The `record-books` read model.
#[derive(Debug, Default)]
pub struct RecordBooks {
    state: State,
}

impl RecordBooks {
    fn push(&mut self, learner: &str, institution: &str, term: i64, r: Assessment) {
        let book = self.state.learners.slot(learner).get_mut();
        slot(&mut book.terms, institution).entry(term).or_default().push(r);
    }
}

impl ReadModel for RecordBooks {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 2: records carry `imported` (a migration\'s source system and record).
        // 3: event ids as byte strings.
        // 4: each learner's book as its own byte string, decoded when first needed (`Lazy`).
        4
    }

    fn apply(&mut self, f: &Fact<'_>) {
        let Some(learner) = StreamKind::Learner.id_of(f.stream) else { return };
        match f.event {
            Event::CourseResultRecorded(d) => {
                let syms = &mut self.state.symbols;
                let r = Assessment {
                    record: Corrected::new(f.seq, f.id, syms.intern(&d.mark.0)).imported(f.imported),
                    group: syms.intern(&d.group),
                    course: syms.intern(&d.course),
                    form: None,
                    scale: syms.intern(&d.scale),
                };
                self.push(learner, &d.institution, d.term, r);
            }
            Event::ExamRecorded(d) => {
                let syms = &mut self.state.symbols;
                let r = Assessment {
                    record: Corrected::new(f.seq, f.id, syms.intern(&d.mark.0)).imported(f.imported),
                    group: syms.intern(&d.group),
                    course: syms.intern(&d.course),
                    form: Some(syms.intern(&d.form)),
                    scale: syms.intern(&d.scale),
                };
                self.push(learner, &d.institution, d.term, r);
            }
            Event::DiplomaIssued(d) => self.state.learners.slot(learner).get_mut().diplomas.push(Diploma {
                seq: f.seq,
                event: EventId::of(f.id),
                institution: d.institution.clone(),
                level: d.level.clone(),
                number: d.number.clone(),
                issued_on: d.issued_on.clone(),
            }),
            Event::RecordCorrected(d) => {
                // A correction names the institution (and the group as its class); the record is
                // one of this learner's results, looked for in that institution first (the rules
                // check only the record's stream, so any of the learner's results may be meant).
                let State { symbols, learners } = &mut self.state;
                let Some(book) = learners.get_mut(learner).map(Lazy::get_mut) else { return };
                let (target, c) = correction_of(symbols, f.seq, f.id, d);
                for named in [true, false] {
                    let mut results = (book.terms.iter_mut())
                        .filter(|(i, _)| (**i == d.institution) == named)
                        .flat_map(|(_, terms)| terms.values_mut().rev().flat_map(|rs| rs.iter_mut().rev()));
                    if let Some(r) = results.find(|r| r.record.answers_to(&target)) {
                        r.record.corrections.push(c);
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
        state.symbols.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        state.learners.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        self.state = state;
        Ok(())
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let learner = model::segment(path, 0, "a learner id")?;
        model::expect_len(path, 1, SHAPE)?;
        let book = self
            .state
            .learners
            .get(learner)
            .map(Lazy::get)
            .ok_or_else(|| ViewError::NotFound(format!("no record book of learner {learner}")))?;
        Ok(View { scope: Scope::Learner(learner.to_owned()), body: book_json(&self.state.symbols, learner, book) })
    }
}

fn book_json(syms: &Symbols, learner: &str, b: &Book) -> Value {
    let terms: Vec<Value> = b
        .terms
        .iter()
        .flat_map(|(inst, terms)| {
            terms.iter().map(move |(term, results)| {
                let results: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        let mut o = Map::new();
                        o.insert("course".to_owned(), json!(syms.name(r.course)));
                        o.insert(
                            "type".to_owned(),
                            json!(if r.form.is_some() {
                                "college.exam_recorded"
                            } else {
                                "college.course_result_recorded"
                            }),
                        );
                        o.insert("form".to_owned(), json!(r.form.map(|f| syms.name(f))));
                        o.insert("group".to_owned(), json!(syms.name(r.group)));
                        o.insert("scale".to_owned(), json!(syms.name(r.record.current_scale(r.scale))));
                        r.record.json_into("mark", syms, &mut o);
                        Value::Object(o)
                    })
                    .collect();
                json!({"institution": inst, "term": term, "results": results})
            })
        })
        .collect();
    let diplomas: Vec<Value> = b
        .diplomas
        .iter()
        .map(|d| {
            json!({"institution": d.institution, "level": d.level, "number": d.number, "issued_on": d.issued_on,
                   "event": d.event.to_string(), "seq": d.seq})
        })
        .collect();
    json!({"learner": learner, "terms": terms, "diplomas": diplomas})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testkit::{check_reload, History};

    const L: &str = "learner/47-5";

    fn history() -> (History, Vec<String>) {
        let mut h = History::default();
        let ids = vec![
            h.push(
                L,
                "college.course_result_recorded",
                json!({"institution": "col-1", "group": "ИС-21", "course": "algebra",
                "term": 1, "mark": "зачтено", "scale": "pass_fail"}),
            ),
            h.push(
                L,
                "college.exam_recorded",
                json!({"institution": "col-1", "group": "ИС-21", "course": "programming",
                "term": 1, "form": "exam", "mark": "хорошо", "scale": "four_level"}),
            ),
            h.push(
                L,
                "college.exam_recorded",
                json!({"institution": "col-1", "group": "ИС-21", "course": "databases",
                "term": 2, "form": "differentiated_credit", "mark": 5, "scale": "five_point"}),
            ),
            h.push(
                L,
                "journal.grade_recorded",
                json!({"institution": "sch-1", "class": "9А", "subject": "math", "mark": 5,
                "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": "2026-09-01"}),
            ),
            h.push(
                L,
                "college.diploma_issued",
                json!({"institution": "col-1", "level": "secondary_vocational",
                "number": "D-1", "issued_on": "2029-06-30"}),
            ),
        ];
        (h, ids)
    }

    #[test]
    fn record_book_lists_results_by_term_and_diplomas() {
        let (mut h, ids) = history();
        let c = h.push(
            L,
            "journal.record_corrected",
            json!({"institution": "col-1", "class": "ИС-21",
            "corrected_event_id": ids[1], "reason": "appeal", "authorised_by": "did:key:adm", "mark": "отлично",
            "scale": "four_level"}),
        );
        // A correction naming another institution still reaches the learner's result.
        h.push(
            L,
            "journal.record_corrected",
            json!({"institution": "uni-2", "class": "Г-1", "corrected_event_id": ids[2], "reason": "appeal",
                   "authorised_by": "did:key:adm", "mark": 4, "scale": "five_point"}),
        );
        let mut m = RecordBooks::default();
        h.fold(&mut m);
        let v = m.view(&["47-5"]).unwrap();
        assert_eq!(v.scope, Scope::Learner("47-5".into()));
        let terms = v.body["terms"].as_array().unwrap();
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0]["institution"], "col-1");
        assert_eq!(terms[0]["term"], 1);
        assert_eq!(
            terms[0]["results"][0],
            json!({"course": "algebra", "type": "college.course_result_recorded", "form": null, "group": "ИС-21",
                   "scale": "pass_fail", "mark": "зачтено", "annulled": false, "original_mark": "зачтено",
                   "event": ids[0], "seq": 0, "corrections": []})
        );
        let exam = &terms[0]["results"][1];
        assert_eq!(exam["mark"], "отлично");
        assert_eq!(exam["original_mark"], "хорошо");
        assert_eq!(exam["corrections"][0]["event"], c);
        assert_eq!(terms[1]["results"][0]["form"], "differentiated_credit");
        assert_eq!(terms[1]["results"][0]["mark"], "4");
        assert_eq!(terms[1]["results"][0]["original_mark"], "5");
        assert_eq!(
            v.body["diplomas"],
            json!([{"institution": "col-1", "level": "secondary_vocational", "number": "D-1",
                    "issued_on": "2029-06-30", "event": ids[4], "seq": 4}])
        );
    }

    #[test]
    fn school_only_learners_have_no_record_book_and_paths_are_checked() {
        let (mut h, _) = history();
        h.push(
            "learner/47-6",
            "journal.grade_recorded",
            json!({"institution": "sch-1", "class": "9А", "subject": "math",
            "mark": 5, "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": "2026-09-01"}),
        );
        let mut m = RecordBooks::default();
        h.fold(&mut m);
        assert_eq!(m.view(&["47-6"]), Err(ViewError::NotFound("no record book of learner 47-6".into())));
        assert_eq!(m.view(&["47-5", "x"]), Err(ViewError::BadPath(format!("expected {SHAPE}"))));
        assert!(matches!(m.view(&[]), Err(ViewError::BadPath(_))));
    }

    #[test]
    fn reload_and_halves_equal_the_whole() {
        let (h, _) = history();
        check_reload(&h, || Box::<RecordBooks>::default());
    }
}
