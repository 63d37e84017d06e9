//! The demo region: a synthetic, deterministic region that the education rules accept. The
//! authority establishes the ledger, registers institutions of every kind and grants keys; then
//! teachers grade and mark attendance for pseudonymous learners and an issuer attests portfolio
//! achievements. Signing runs on every core. Not the vocabulary (that is `zachetka-projections`).

use crate::event::{sign_event, uuid_from_bytes};
use crate::keys::KeyPair;
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Sizes of a demo region.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub learners: u64,
    pub teachers: u64,
    /// Journal and portfolio events after the set-up (the authority's own events come first).
    pub events: u64,
}

const SUBJECTS: [&str; 6] = ["Математика", "Русский язык", "Физика", "История", "Биология", "Литература"];
/// Grade kinds and their weights, as in the default region config.
const KINDS: [(&str, i64); 3] = [("test", 5), ("classwork", 3), ("homework", 1)];
const LETTERS: [&str; 3] = ["А", "Б", "В"];
const GRANTS_VALID_FROM: &str = "2026-08-01T00:00:00Z";

/// A deterministic key for demo role `label` (never use demo keys for anything real).
pub fn demo_key(origin: &str, label: &str) -> KeyPair {
    let seed: [u8; 32] = Sha256::digest(format!("zachetka demo key\n{origin}\n{label}")).into();
    KeyPair::from_seed(&seed)
}

/// Generates the demo region's signed events, in log order.
pub struct DemoRegion {
    origin: String,
    size: DemoSize,
    authority: KeyPair,
    issuer: KeyPair,
    teachers: Vec<KeyPair>,
    schools: u64,
    setup: Vec<(Value, usize)>,
    next: u64,
    day0: i64,
}

/// Who signs an event of the set-up: the authority.
const BY_AUTHORITY: usize = usize::MAX;
const BY_ISSUER: usize = usize::MAX - 1;

impl DemoRegion {
    pub fn new(origin: &str, size: DemoSize) -> Self {
        let teachers: Vec<KeyPair> =
            (0..size.teachers.max(1)).map(|i| demo_key(origin, &format!("teacher/{i}"))).collect();
        let schools = (teachers.len() as u64).div_ceil(30).max(1);
        let authority = demo_key(origin, "authority");
        let issuer = demo_key(origin, "issuer/olympiads");
        let mut region = Self {
            origin: origin.to_owned(),
            size,
            authority,
            issuer,
            teachers,
            schools,
            setup: Vec::new(),
            next: 0,
            day0: crate::time::days_from_civil(2026, 9, 1),
        };
        region.setup = region.setup_events();
        region
    }

    /// The authority key's did (the ledger must be initialized with it).
    pub fn authority_did(&self) -> String {
        self.authority.did()
    }

    fn event(&self, n: u64, stream: &str, ty: &str, occurred_at: &str, author: &KeyPair, data: Value) -> Value {
        let h: [u8; 32] = Sha256::digest(format!("{}\nid\n{n}", self.origin)).into();
        json!({
            "ledger": self.origin, "stream": stream, "type": ty,
            "id": uuid_from_bytes(h[..16].try_into().expect("16 bytes")),
            "occurred_at": occurred_at, "author": author.did(), "data": data,
        })
    }

    fn setup_events(&self) -> Vec<(Value, usize)> {
        let a = &self.authority;
        let at = GRANTS_VALID_FROM;
        let mut n = 1u64 << 40;
        let mut next_n = || {
            n += 1;
            n
        };
        let mut out = vec![(
            self.event(
                next_n(),
                "registry",
                "ledger.established",
                at,
                a,
                json!({"v": 1, "origin": self.origin, "authority": a.did()}),
            ),
            BY_AUTHORITY,
        )];
        let mut institutions: Vec<(String, &str, &str)> =
            (0..self.schools).map(|s| (format!("sch-{:03}", s + 1), "school", "tikhvin")).collect();
        institutions.extend([
            ("kg-001".to_owned(), "kindergarten", "tikhvin"),
            ("kg-002".to_owned(), "kindergarten", "luga"),
            ("col-001".to_owned(), "college", "tikhvin"),
            ("uni-001".to_owned(), "university", "spb"),
            ("ado-001".to_owned(), "additional_education", "tikhvin"),
            ("com-001".to_owned(), "attestation_commission", "region"),
        ]);
        for (id, kind, territory) in institutions {
            let data = json!({"v": 1, "institution": id, "kind": kind, "territory": territory});
            out.push((self.event(next_n(), "registry", "registry.institution_registered", at, a, data), BY_AUTHORITY));
        }
        for (i, t) in self.teachers.iter().enumerate() {
            let data = json!({"v": 1, "key": t.did(), "holder": format!("t-{i:05}"), "roles": ["teacher"],
                "scope": {"institution": format!("sch-{:03}", i as u64 % self.schools + 1)}, "valid_from": at});
            out.push((self.event(next_n(), "registry", "keys.granted", at, a, data), BY_AUTHORITY));
        }
        let data = json!({"v": 1, "key": self.issuer.did(), "holder": "p-olymp", "roles": ["achievement_issuer"],
            "scope": {"institution": "ado-001"}, "valid_from": at});
        out.push((self.event(next_n(), "registry", "keys.granted", at, a, data), BY_AUTHORITY));
        out
    }

    /// The next unsigned event and the index of its signer, or `None` when the demo is complete.
    fn next_unsigned(&mut self) -> Option<(Value, usize)> {
        if !self.setup.is_empty() {
            return Some(self.setup.remove(0));
        }
        if self.next >= self.size.events {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let h: [u8; 32] = Sha256::digest(format!("{}\n{i}", self.origin)).into();
        let learner = u64::from_be_bytes(h[0..8].try_into().expect("8 bytes")) % self.size.learners.max(1);
        let school = learner % self.schools;
        let grade_year = 1 + (learner / self.schools) % 11;
        let class = format!("{grade_year}{}", LETTERS[(learner / self.schools / 11 % 3) as usize]);
        let per_school = (self.teachers.len() as u64).div_ceil(self.schools);
        let mut teacher = (school + self.schools * (u64::from(h[13]) % per_school)) as usize;
        if teacher >= self.teachers.len() {
            teacher = school as usize;
        }
        let day = self.day0 + (i * 270 / self.size.events.max(1)) as i64;
        let (y, m, d) = crate::time::civil_from_days(day);
        let date = format!("{y:04}-{m:02}-{d:02}");
        let occurred_at = crate::time::format_rfc3339(day * 86_400 + 6 * 3600 + i64::from(h[9]) * 60);
        let institution = format!("sch-{:03}", school + 1);
        let subject = SUBJECTS[(h[8] % SUBJECTS.len() as u8) as usize];
        let stream = format!("learner/47-{learner:06}");
        if h[10] == 0 {
            let data = json!({"v": 1, "achievement_id": format!("ach-{i}"), "kind": "olympiad", "level": "municipal",
                "date": date, "result": "призёр"});
            return Some((
                self.event(i, &stream, "portfolio.achievement_attested", &occurred_at, &self.issuer, data),
                BY_ISSUER,
            ));
        }
        let author = &self.teachers[teacher];
        // No marks in 1st grade: attendance only there.
        let (ty, data) = if grade_year == 1 || h[10].is_multiple_of(5) {
            (
                "journal.attendance_marked",
                json!({"v": 1, "institution": institution, "class": class, "subject": subject,
                "lesson_date": date, "code": "Н"}),
            )
        } else {
            let (kind, weight) = KINDS[(h[11] % 3) as usize];
            (
                "journal.grade_recorded",
                json!({"v": 1, "institution": institution, "class": class, "subject": subject,
                "mark": 2 + i64::from(h[12] % 4), "scale": "five_point", "weight": weight, "kind": kind, "lesson_date": date}),
            )
        };
        Some((self.event(i, &stream, ty, &occurred_at, author, data), teacher))
    }

    /// Up to `n` next signed events, signed on every core.
    pub fn next_batch(&mut self, n: usize) -> Vec<Value> {
        let unsigned: Vec<(Value, usize)> = (0..n).map_while(|_| self.next_unsigned()).collect();
        unsigned
            .into_par_iter()
            .map(|(ev, signer)| {
                let key = match signer {
                    BY_AUTHORITY => &self.authority,
                    BY_ISSUER => &self.issuer,
                    t => &self.teachers[t],
                };
                sign_event(&ev, key).expect("demo events are canonicalizable")
            })
            .collect()
    }

    /// Events still to come, the set-up included.
    pub fn remaining(&self) -> u64 {
        self.setup.len() as u64 + self.size.events - self.next
    }
}
