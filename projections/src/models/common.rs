//! What the journal, diary and record-book models share: compact event ids, a record with its
//! correction history and current value, a learner's sheet in one subject of one class (marks,
//! attendance, term, year and attestation grades, the weighted average as integers), and the
//! JSON shapes those render to.
//! Not a read model itself, and no policy on which events go where: each model decides that.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fmt;

/// An event id as state keeps it: a canonical lowercase UUID as its 128 bits (16 bytes instead of
/// a 36-byte string on the heap), any other id as written. Displays exactly as the event gave it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventId {
    Uuid(u128),
    Other(String),
}

impl EventId {
    pub fn of(id: &str) -> Self {
        match parse_uuid(id) {
            Some(bits) => EventId::Uuid(bits),
            None => EventId::Other(id.to_owned()),
        }
    }
}

/// The bits of a lowercase UUID in its canonical 8-4-4-4-12 form; `None` for anything else (so
/// that displaying the bits gives back exactly the same string).
fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if *c != b'-' {
                return None;
            }
            continue;
        }
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        bits = (bits << 4) | u128::from(digit);
    }
    Some(bits)
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventId::Uuid(b) => write!(
                f,
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                b >> 96,
                (b >> 80) & 0xffff,
                (b >> 64) & 0xffff,
                (b >> 48) & 0xffff,
                b & 0xffff_ffff_ffff
            ),
            EventId::Other(s) => f.write_str(s),
        }
    }
}

/// The value under `key`, inserted empty first if absent. Allocates the key only on insertion,
/// so the common case (the key exists) costs two lookups and no allocation.
pub fn slot<'m, V: Default>(map: &'m mut std::collections::BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// One `journal.record_corrected` as applied to the record it (or the correction it names)
/// corrects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub seq: u64,
    pub event: EventId,
    /// The event the correction names: the record itself or an earlier correction of it.
    pub corrects: EventId,
    /// The new value (a mark or an attendance code); `None` annuls the record.
    pub value: Option<String>,
    pub scale: Option<String>,
    pub reason: String,
    pub authorised_by: String,
}

/// A correctable record: its entry, the value it was written with and every correction in log
/// order. The current value is the last correction's (a correction of a correction also sets
/// the record's value: every step names the record's value from then on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corrected {
    pub seq: u64,
    pub event: EventId,
    pub value: String,
    pub corrections: Vec<Correction>,
}

impl Corrected {
    pub fn new(seq: u64, event: &str, value: &str) -> Self {
        Self { seq, event: EventId::of(event), value: value.to_owned(), corrections: Vec::new() }
    }

    /// The value now: the original, or the last correction's; `None` when annulled.
    pub fn current(&self) -> Option<&str> {
        match self.corrections.last() {
            Some(c) => c.value.as_deref(),
            None => Some(&self.value),
        }
    }

    /// Whether `id` is this record's event or one of its corrections.
    pub fn answers_to(&self, id: &EventId) -> bool {
        self.event == *id || self.corrections.iter().any(|c| c.event == *id)
    }

    /// The record's JSON fields: `<field>` (current value or null), `annulled`, `original_<field>`,
    /// `event`, `seq` and `corrections` (each step with its event, seq, value, reason, authoriser
    /// and the event it names).
    pub fn json_into(&self, field: &str, out: &mut Map<String, Value>) {
        out.insert(field.to_owned(), json!(self.current()));
        out.insert("annulled".to_owned(), json!(self.current().is_none()));
        out.insert(format!("original_{field}"), json!(self.value));
        out.insert("event".to_owned(), json!(self.event.to_string()));
        out.insert("seq".to_owned(), json!(self.seq));
        let corrections: Vec<Value> = self
            .corrections
            .iter()
            .map(|c| {
                json!({
                    "event": c.event.to_string(),
                    "seq": c.seq,
                    "corrects": c.corrects.to_string(),
                    field: c.value,
                    "scale": c.scale,
                    "reason": c.reason,
                    "authorised_by": c.authorised_by,
                })
            })
            .collect();
        out.insert("corrections".to_owned(), Value::Array(corrections));
    }
}

/// What a weighted average gets from one mark: (mark x weight, weight) for a numeric current
/// value, nothing for a word mark or an annulled record.
pub fn contribution(value: Option<&str>, weight: i64) -> (i64, i64) {
    match value.and_then(|v| v.parse::<i64>().ok()) {
        Some(m) => (m.saturating_mul(weight), weight),
        None => (0, 0),
    }
}

/// `numerator / denominator` as a decimal string with two digits, rounded half away from zero.
pub fn decimal_2(numerator: i64, denominator: i64) -> String {
    assert!(denominator > 0, "an average over no weight has no value");
    let (n, d) = (i128::from(numerator), i128::from(denominator));
    let hundredths = (n.abs() * 200 + d) / (2 * d);
    let sign = if n < 0 && hundredths != 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The weighted average as JSON: `{"value":"4.33","numerator":13,"denominator":3}`, or null when
/// no numeric mark counts.
pub fn average_json(numerator: i64, denominator: i64) -> Value {
    if denominator == 0 {
        return Value::Null;
    }
    json!({"value": decimal_2(numerator, denominator), "numerator": numerator, "denominator": denominator})
}

/// A mark of the journal (`journal.grade_recorded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRow {
    pub record: Corrected,
    pub kind: String,
    pub weight: i64,
    pub scale: String,
    pub date: String,
}

/// An attendance mark (`journal.attendance_marked`); the value is its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRow {
    pub record: Corrected,
    pub date: String,
}

/// A term, year or intermediate-attestation grade: explicit teacher decisions, not averages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeRow {
    pub record: Corrected,
    pub academic_year: i64,
    /// The term of a term grade; `None` for year and attestation grades.
    pub term: Option<i64>,
    pub scale: String,
}

/// Which list of a sheet a final grade goes to.
#[derive(Debug, Clone, Copy)]
pub enum GradeKind {
    Term,
    Year,
    Attestation,
}

/// One learner in one subject of one class: what the journal's row and the diary's section both
/// hold. The weighted average is kept as integers, updated on every mark and correction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sheet {
    pub marks: Vec<MarkRow>,
    pub attendance: Vec<AttendanceRow>,
    pub term_grades: Vec<GradeRow>,
    pub year_grades: Vec<GradeRow>,
    pub attestations: Vec<GradeRow>,
    /// sum(mark x weight) over numeric current marks.
    pub numerator: i64,
    /// sum(weight) over the same marks.
    pub denominator: i64,
}

impl Sheet {
    pub fn add_mark(&mut self, row: MarkRow) {
        let (n, d) = contribution(row.record.current(), row.weight);
        self.numerator += n;
        self.denominator += d;
        self.marks.push(row);
    }

    pub fn add_grade(&mut self, kind: GradeKind, row: GradeRow) {
        match kind {
            GradeKind::Term => self.term_grades.push(row),
            GradeKind::Year => self.year_grades.push(row),
            GradeKind::Attestation => self.attestations.push(row),
        }
    }

    /// Applies a correction to the record of this sheet that `target` names (the record or one
    /// of its corrections), keeping the average in step; `false` when no record here answers to
    /// `target`. Scans the sheet from the newest record: a sheet is one learner in one subject
    /// of one class, and corrections are rare.
    pub fn correct(&mut self, target: &EventId, c: &Correction) -> bool {
        if let Some(row) = self.marks.iter_mut().rev().find(|r| r.record.answers_to(target)) {
            let (n0, d0) = contribution(row.record.current(), row.weight);
            row.record.corrections.push(c.clone());
            let (n1, d1) = contribution(row.record.current(), row.weight);
            self.numerator += n1 - n0;
            self.denominator += d1 - d0;
            return true;
        }
        let record = self
            .attendance
            .iter_mut()
            .rev()
            .map(|r| &mut r.record)
            .chain(self.term_grades.iter_mut().rev().map(|r| &mut r.record))
            .chain(self.year_grades.iter_mut().rev().map(|r| &mut r.record))
            .chain(self.attestations.iter_mut().rev().map(|r| &mut r.record))
            .find(|r| r.answers_to(target));
        match record {
            Some(r) => {
                r.corrections.push(c.clone());
                true
            }
            None => false,
        }
    }

    /// The record of an intermediate attestation, by event id.
    pub fn attestation(&self, id: &EventId) -> Option<&GradeRow> {
        self.attestations.iter().find(|r| r.record.event == *id)
    }

    pub fn average_json(&self) -> Value {
        average_json(self.numerator, self.denominator)
    }

    /// The sheet as the views show it: marks, attendance, average, term, year and attestation
    /// grades, each item with its entry and corrections.
    pub fn json_into(&self, out: &mut Map<String, Value>) {
        out.insert("marks".to_owned(), Value::Array(self.marks.iter().map(mark_json).collect()));
        out.insert("attendance".to_owned(), Value::Array(self.attendance.iter().map(attendance_json).collect()));
        out.insert("average".to_owned(), self.average_json());
        self.grades_into(out);
    }

    /// Only the term, year and attestation grades.
    pub fn grades_into(&self, out: &mut Map<String, Value>) {
        out.insert("term_grades".to_owned(), Value::Array(self.term_grades.iter().map(grade_json).collect()));
        out.insert("year_grades".to_owned(), Value::Array(self.year_grades.iter().map(grade_json).collect()));
        out.insert(
            "intermediate_attestation".to_owned(),
            Value::Array(self.attestations.iter().map(grade_json).collect()),
        );
    }
}

pub fn mark_json(r: &MarkRow) -> Value {
    let mut o = Map::new();
    r.record.json_into("mark", &mut o);
    o.insert("kind".to_owned(), json!(r.kind));
    o.insert("weight".to_owned(), json!(r.weight));
    o.insert("scale".to_owned(), json!(r.scale));
    o.insert("date".to_owned(), json!(r.date));
    Value::Object(o)
}

pub fn attendance_json(r: &AttendanceRow) -> Value {
    let mut o = Map::new();
    r.record.json_into("code", &mut o);
    o.insert("date".to_owned(), json!(r.date));
    Value::Object(o)
}

pub fn grade_json(r: &GradeRow) -> Value {
    let mut o = Map::new();
    r.record.json_into("mark", &mut o);
    o.insert("academic_year".to_owned(), json!(r.academic_year));
    if let Some(t) = r.term {
        o.insert("term".to_owned(), json!(t));
    }
    o.insert("scale".to_owned(), json!(r.scale));
    Value::Object(o)
}

/// A correction's fields taken from its event, before the model finds the record it targets.
pub fn correction_of(seq: u64, id: &str, d: &crate::vocabulary::RecordCorrected) -> (EventId, Correction) {
    let target = EventId::of(&d.corrected_event_id);
    let value = d.mark.as_ref().map(|m| m.0.clone()).or_else(|| d.code.clone());
    let c = Correction {
        seq,
        event: EventId::of(id),
        corrects: target.clone(),
        value,
        scale: d.scale.clone(),
        reason: d.reason.clone(),
        authorised_by: d.authorised_by.clone(),
    };
    (target, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_display_as_given_and_others_stay_strings() {
        let u = "0193a1d2-7c4e-7b1a-9f00-00000000002a";
        assert!(matches!(EventId::of(u), EventId::Uuid(_)));
        assert_eq!(EventId::of(u).to_string(), u);
        for other in ["0193A1D2-7C4E-7B1A-9F00-00000000002A", "g193a1d2-7c4e-7b1a-9f00-00000000002a", "ev-1", ""] {
            assert_eq!(EventId::of(other), EventId::Other(other.to_owned()));
            assert_eq!(EventId::of(other).to_string(), other);
        }
    }

    #[test]
    fn decimals_round_half_up_with_two_digits() {
        assert_eq!(decimal_2(13, 3), "4.33");
        assert_eq!(decimal_2(14, 3), "4.67");
        assert_eq!(decimal_2(9, 2), "4.50");
        assert_eq!(decimal_2(1, 8), "0.13"); // 0.125 rounds up
        assert_eq!(decimal_2(-1, 8), "-0.13");
        assert_eq!(decimal_2(4, 1), "4.00");
        assert_eq!(average_json(0, 0), Value::Null);
        assert_eq!(contribution(Some("зачтено"), 5), (0, 0));
        assert_eq!(contribution(None, 5), (0, 0));
        assert_eq!(contribution(Some("4"), 3), (12, 3));
    }
}
