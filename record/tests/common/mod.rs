//! A ledger in memory for the record tests: signed events, entries with their stream chains, an
//! RFC 9162 tree, checkpoints signed by the ledger key. No rules run here, so a test can write
//! what the rules would refuse (a grade by a revoked key) and see the verifier catch it.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::HashMap;
use zachetka_formats::checkpoint::{LedgerSigner, TreeHead};
use zachetka_formats::event::{entry_bytes, leaf_hash, sign_event, EntryMeta};
use zachetka_formats::jcs::{self, Profile};
use zachetka_formats::keys::KeyPair;
use zachetka_formats::merkle::{self, Hash, MemoryTree};
use zachetka_projections::completeness::{self as commitment, Map};
use zachetka_projections::model::{ParsedFact, ReadModel};
use zachetka_projections::models::completeness::Completeness;
use zachetka_projections::models::concerns::Concerns;
use zachetka_record::{export, Bundle, CompletenessInput, Concerned, Disclosure, ExportInput};

pub const ORIGIN: &str = "ru-47.edu.example";
pub const L1: &str = "47-000001";
pub const L2: &str = "47-000002";

pub struct TestLedger {
    pub signer: LedgerSigner,
    pub vkey: String,
    pub tree: MemoryTree,
    pub entries: Vec<Vec<u8>>,
    streams: HashMap<String, (u64, Hash)>,
    keys: HashMap<&'static str, KeyPair>,
    ids: u64,
}

/// The named keys of the test region: seed = the name's bytes.
pub fn key(name: &str) -> KeyPair {
    let mut seed = [7u8; 32];
    seed[..name.len()].copy_from_slice(name.as_bytes());
    KeyPair::from_seed(&seed)
}

impl TestLedger {
    pub fn new(ledger_key_seed: u8) -> Self {
        let signer = LedgerSigner::new(ORIGIN, KeyPair::from_seed(&[ledger_key_seed; 32]));
        let vkey = signer.verifier_key();
        let mut keys = HashMap::new();
        for name in ["auth", "admin", "teacher", "teacher2", "registrar", "issuer"] {
            keys.insert(name, key(name));
        }
        // The ledger's own key signs completeness commitments.
        keys.insert("ledger", KeyPair::from_seed(&[ledger_key_seed; 32]));
        Self { signer, vkey, tree: MemoryTree::default(), entries: Vec::new(), streams: HashMap::new(), keys, ids: 0 }
    }

    pub fn did(&self, name: &str) -> String {
        self.keys[name].did()
    }

    /// Signs and appends an event; returns its seq. `data` gets `"v": 1`.
    pub fn append(&mut self, author: &str, stream: &str, ty: &str, at: &str, mut data: Value) -> u64 {
        data.as_object_mut().unwrap().entry("v").or_insert(json!(1));
        self.ids += 1;
        let id = format!("00000000-0000-4000-8000-{:012x}", self.ids);
        let event = json!({"ledger": ORIGIN, "stream": stream, "type": ty, "id": id, "occurred_at": at,
            "author": self.did(author), "data": data});
        let signed = sign_event(&event, &self.keys[author]).unwrap();
        let canonical = jcs::to_canonical(&event, Profile::Event).unwrap();
        let (version, prev) = match self.streams.get(stream) {
            Some((n, h)) => (*n, Some(*h)),
            None => (0, None),
        };
        let seq = self.entries.len() as u64;
        let meta = EntryMeta {
            seq,
            recorded_at_unix: zachetka_formats::time::parse_rfc3339(at).unwrap(),
            stream_version: version,
            stream_prev: prev,
        };
        let bytes = entry_bytes(&meta, &canonical, signed["sig"].as_str().unwrap());
        let leaf = leaf_hash(&bytes);
        self.tree.push(leaf);
        self.streams.insert(stream.to_owned(), (version + 1, leaf));
        self.entries.push(bytes);
        seq
    }

    pub fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn checkpoint_at(&self, tree_size: u64) -> Vec<u8> {
        self.signer.sign(&TreeHead { tree_size, root_hash: self.tree.root_at(tree_size) })
    }

    pub fn consistency(&self, first: u64, second: u64) -> merkle::ConsistencyProof {
        merkle::ConsistencyProof {
            first,
            second,
            hashes: merkle::hashes_to_b64(&merkle::prove_consistency(first, second, &self.tree).unwrap()),
        }
    }

    /// The entries below `tree_size` that concern `learner`, by the one definition (`Concerns`).
    pub fn concerned(&self, learner: &str, tree_size: u64) -> Vec<(u64, Vec<u8>)> {
        let mut c = Concerns::default();
        let mut out = Vec::new();
        for (seq, bytes) in self.entries.iter().enumerate().take(tree_size as usize) {
            let parsed = ParsedFact::from_entry(bytes).unwrap();
            let fact = parsed.fact().unwrap();
            c.apply(&fact);
            if c.learners_concerned(&fact).contains(&learner) {
                out.push((seq as u64, bytes.clone()));
            }
        }
        out
    }

    pub fn registry(&self, tree_size: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for (seq, bytes) in self.entries.iter().enumerate().take(tree_size as usize) {
            let parsed = zachetka_formats::event::parse_entry(bytes).unwrap();
            if parsed.event["stream"] == "registry" {
                out.push((seq as u64, bytes.clone()));
            }
        }
        out
    }

    /// The lessons below `tree_size` (what the exporter's caller finds for the marks).
    pub fn lessons(&self, tree_size: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for (seq, bytes) in self.entries.iter().enumerate().take(tree_size as usize) {
            let parsed = zachetka_formats::event::parse_entry(bytes).unwrap();
            if parsed.event["type"] == "journal.lesson_held" {
                out.push((seq as u64, bytes.clone()));
            }
        }
        out
    }

    /// The completeness map over the entries below `up_to` (the read model's fold).
    pub fn map_at(&self, up_to: u64) -> Map {
        let mut model = Completeness::default();
        for bytes in &self.entries[..up_to as usize] {
            let parsed = ParsedFact::from_entry(bytes).unwrap();
            if let Some(f) = parsed.fact() {
                model.apply(&f);
            }
        }
        model.map()
    }

    /// Appends a completeness commitment over every entry so far, signed by `author` (the
    /// ledger key: `"ledger"`); returns its seq.
    pub fn commit_by(&mut self, author: &str) -> u64 {
        let up_to = self.size();
        let map = self.map_at(up_to);
        let data = commitment::event_data(up_to, &map.root(), map.len());
        self.append(author, commitment::STREAM, commitment::EVENT_TYPE, "2027-06-30T09:00:00Z", data)
    }

    pub fn commit(&mut self) -> u64 {
        self.commit_by("ledger")
    }

    /// The ledger's commitments below `tree_size`: (seq, up_to), by the ledger key only.
    pub fn commitments(&self, tree_size: u64) -> Vec<(u64, u64)> {
        let ledger = self.did("ledger");
        (0..tree_size)
            .filter_map(|seq| {
                let e = zachetka_formats::event::parse_entry(&self.entries[seq as usize]).unwrap().event;
                (e["type"] == commitment::EVENT_TYPE && e["author"] == ledger.as_str())
                    .then(|| (seq, e["data"]["up_to"].as_u64().unwrap()))
            })
            .collect()
    }

    pub fn export_at(&self, learner: &str, disclosure: &Disclosure, tree_size: u64) -> Bundle {
        let latest = self.commitments(tree_size).last().copied();
        self.export_with(learner, disclosure, tree_size, latest)
    }

    /// A bundle at `tree_size` citing the commitment `(seq, up_to)` (the exporter would cite the
    /// latest; a dishonest one may cite another).
    pub fn export_with(
        &self,
        learner: &str,
        disclosure: &Disclosure,
        tree_size: u64,
        commitment: Option<(u64, u64)>,
    ) -> Bundle {
        let note = self.checkpoint_at(tree_size);
        let concerned = self.concerned(learner, tree_size);
        let registry = self.registry(tree_size);
        let lessons = self.lessons(tree_size);
        let proved = commitment.map(|(seq, up_to)| (seq, up_to, self.map_at(up_to).prove(learner)));
        let input = ExportInput {
            origin: ORIGIN,
            verifier_key: &self.vkey,
            learner,
            checkpoint: &note,
            concerned: &Concerned::parse(&concerned).unwrap(),
            registry: &registry,
            registrations: &lessons,
            disclosure,
            completeness: proved.as_ref().map(|(seq, up_to, (value, map_proof))| CompletenessInput {
                commitment_seq: *seq,
                commitment_entry: &self.entries[*seq as usize],
                up_to: *up_to,
                value: *value,
                map_proof,
            }),
        };
        export(&input, |seq, n| merkle::prove_inclusion(seq, n, &self.tree).map_err(|e| e.to_string())).unwrap()
    }

    pub fn export(&self, learner: &str, disclosure: &Disclosure) -> Bundle {
        self.export_at(learner, disclosure, self.size())
    }

    pub fn grant(&mut self, by: &str, who: &str, holder: &str, roles: &[&str], scope: Value) -> u64 {
        let k = self.did(who);
        self.append(
            by,
            "registry",
            "keys.granted",
            "2026-08-01T06:00:00Z",
            json!({"key": k, "holder": holder, "roles": roles, "scope": scope, "valid_from": "2026-01-01T00:00:00Z"}),
        )
    }
}

pub fn grade(mark: i64, date: &str) -> Value {
    json!({"institution": "sch-001", "class": "5А", "subject": "math", "mark": mark, "scale": "five_point",
        "weight": 5, "kind": "test", "lesson_date": date})
}

/// A small region: the registry, a school and an additional-education centre, staff keys; a year
/// of records for L1 (grades, a term and a year grade, a certificate, an achievement) with L2's
/// grades between them.
pub fn region(ledger_key_seed: u8) -> TestLedger {
    let mut t = TestLedger::new(ledger_key_seed);
    let auth = t.did("auth");
    t.append(
        "auth",
        "registry",
        "ledger.established",
        "2026-08-01T06:00:00Z",
        json!({"origin": ORIGIN, "authority": auth}),
    );
    for (id, kind) in [("sch-001", "school"), ("ado-001", "additional_education"), ("sch-002", "school")] {
        t.append(
            "auth",
            "registry",
            "registry.institution_registered",
            "2026-08-01T06:00:00Z",
            json!({"institution": id, "kind": kind, "territory": "tikhvin"}),
        );
    }
    t.grant("auth", "admin", "p-admin", &["institution_admin"], json!({"institution": "sch-001"}));
    t.grant("admin", "teacher", "t-1", &["teacher"], json!({"institution": "sch-001", "class": "5А"}));
    t.grant("admin", "teacher2", "t-2", &["teacher"], json!({"institution": "sch-001"}));
    t.grant("admin", "registrar", "p-reg", &["registrar"], json!({"institution": "sch-001"}));
    t.grant("auth", "issuer", "p-iss", &["achievement_issuer"], json!({"institution": "ado-001"}));
    let (l1, l2) = (format!("learner/{L1}"), format!("learner/{L2}"));
    // Marks need enrolment: both learners are admitted into 5А for the year.
    for l in [&l1, &l2] {
        let admitted = json!({"institution": "sch-001", "class": "5А", "academic_year": 2026,
            "admitted_on": "2026-08-31", "order_ref": "order-1"});
        t.append("registrar", l, "contingent.admitted", "2026-08-31T09:00:00Z", admitted);
    }
    // Nine school days of September (6 September is a Sunday), each with a math lesson of 5А
    // (its marks are given there), the lessons recorded first.
    let days = [1, 2, 3, 4, 5, 7, 8, 9, 10];
    for day in days {
        let date = format!("2026-09-{day:02}");
        let lesson = json!({"lesson_id": format!("l-{day}"), "class": "5А", "subject": "math", "lesson_date": date});
        t.append("teacher", "institution/sch-001", "journal.lesson_held", &format!("{date}T08:00:00Z"), lesson);
    }
    for day in days {
        let date = format!("2026-09-{day:02}");
        let at = format!("{date}T09:00:00Z");
        t.append("teacher", &l1, "journal.grade_recorded", &at, grade(3 + day % 3, &date));
        t.append("teacher2", &l2, "journal.grade_recorded", &at, grade(4, &date));
    }
    let term = json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026, "term": 1,
        "mark": 4, "scale": "five_point"});
    t.append("teacher", &l1, "journal.term_grade_set", "2026-10-30T09:00:00Z", term);
    let year = json!({"institution": "sch-001", "class": "5А", "subject": "math", "academic_year": 2026,
        "mark": 5, "scale": "five_point"});
    t.append("teacher", &l1, "journal.year_grade_set", "2027-05-25T09:00:00Z", year);
    // The certificate follows passing ОГЭ results in the required subjects.
    for (subject, score) in [("Математика", 20), ("Русский язык", 25)] {
        let result = json!({"institution": "sch-001", "exam": "oge", "subject": subject, "academic_year": 2026,
            "score": score});
        t.append("registrar", &l1, "journal.final_attestation_recorded", "2027-06-10T09:00:00Z", result);
    }
    let cert =
        json!({"institution": "sch-001", "level": "basic_general", "number": "047-000001", "issued_on": "2027-06-20"});
    t.append("registrar", &l1, "journal.certificate_issued", "2027-06-20T09:00:00Z", cert);
    let ach = json!({"achievement_id": "ach-1", "kind": "olympiad", "level": "regional", "date": "2027-03-01",
        "result": "winner"});
    t.append("issuer", &l1, "portfolio.achievement_attested", "2027-03-02T09:00:00Z", ach);
    t
}
