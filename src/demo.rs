//! The demo region: a synthetic, deterministic set of signed journal events (teachers grading
//! and marking attendance for pseudonymous learners), for the quick start and the benchmarks.
//! Not the education vocabulary (that lives in `zachetka-projections`).

use crate::event::{sign_event, uuid_from_bytes};
use crate::keys::KeyPair;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Sizes of a demo region.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub learners: u64,
    pub teachers: u64,
    pub events: u64,
}

const SUBJECTS: [&str; 6] = ["Математика", "Русский язык", "Физика", "История", "Биология", "Литература"];
const KINDS: [(&str, i64); 3] = [("контрольная", 5), ("классная", 3), ("домашняя", 1)];

/// A deterministic key for demo role `label` (never use demo keys for anything real).
pub fn demo_key(origin: &str, label: &str) -> KeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("zachetka demo key\n{origin}\n{label}")).into();
    KeyPair::from_seed(&seed)
}

/// Generates demo events deterministically; `sink` receives signed events in batches.
pub struct DemoRegion {
    origin: String,
    size: DemoSize,
    teachers: Vec<KeyPair>,
    next: u64,
    day0: i64,
}

impl DemoRegion {
    pub fn new(origin: &str, size: DemoSize) -> Self {
        let teachers = (0..size.teachers.max(1)).map(|i| demo_key(origin, &format!("teacher/{i}"))).collect();
        let day0 = crate::time::days_from_civil(2026, 9, 1);
        Self { origin: origin.to_owned(), size, teachers, next: 0, day0 }
    }

    /// The next signed event, or `None` when the demo is complete.
    pub fn next_signed(&mut self) -> Option<Value> {
        if self.next >= self.size.events {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let h: [u8; 32] = Sha256::digest(format!("{}\n{i}", self.origin)).into();
        let learner = u64::from_be_bytes(h[0..8].try_into().expect("8 bytes")) % self.size.learners.max(1);
        let class = format!("{}{}", 1 + learner % 11, ["А", "Б", "В"][(learner / 11 % 3) as usize]);
        let teacher = &self.teachers[(learner % self.teachers.len() as u64) as usize];
        let day = self.day0 + (i * 86_400 / self.size.events.max(1)) as i64 % 270;
        let (y, m, d) = crate::time::civil_from_days(day);
        let lesson_date = format!("{y:04}-{m:02}-{d:02}");
        let subject = SUBJECTS[(h[8] % SUBJECTS.len() as u8) as usize];
        let occurred_at = crate::time::format_rfc3339(day * 86_400 + 8 * 3600 + i64::from(h[9]) * 60);
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[16..32]);
        let data = if h[10].is_multiple_of(5) {
            json!({"subject": subject, "lesson_date": lesson_date, "class": class, "code": "Н"})
        } else {
            let (kind, weight) = KINDS[(h[11] % 3) as usize];
            json!({"subject": subject, "lesson_date": lesson_date, "class": class, "mark": 2 + i64::from(h[12] % 4), "weight": weight, "kind": kind})
        };
        let event_type =
            if data.get("code").is_some() { "journal.attendance_marked" } else { "journal.grade_recorded" };
        let event = json!({
            "ledger": self.origin,
            "stream": format!("learner/47-{learner:06}"),
            "type": event_type,
            "id": uuid_from_bytes(id),
            "occurred_at": occurred_at,
            "author": teacher.did(),
            "data": data,
        });
        Some(sign_event(&event, teacher).expect("demo events are canonicalizable"))
    }

    /// Up to `n` next signed events.
    pub fn next_batch(&mut self, n: usize) -> Vec<Value> {
        (0..n).map_while(|_| self.next_signed()).collect()
    }
}
