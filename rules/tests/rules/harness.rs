//! The test harness: a log in memory that indexes accepted events for `Lookup`, appends through
//! `check` then `apply`, and a standard small region (institutions and staff keys) to start from.
//! Not a ledger: no signatures, no Merkle tree.

use serde_json::{json, Value};
use std::collections::HashMap;
use zachetka_rules::{Envelope, Lookup, LookupError, RegionConfig, RuleError, RuleKind, RuleRefusal, Rules};

/// The origin of the ledger the rules are built for (what `ledger.established` must name).
pub const ORIGIN: &str = "ru-47.edu.example";
pub const AUTH: &str = "did:key:z6MkAuthority";
pub const ADMIN: &str = "did:key:z6MkAdminSch1";
pub const ADMIN2: &str = "did:key:z6MkAdminSch2";
pub const TEACHER: &str = "did:key:z6MkTeacherSch1";
pub const TEACHER_5A: &str = "did:key:z6MkTeacher5A";
pub const CLASS_5A: &str = "did:key:z6MkClassTeacher5A";
pub const TEACHER_1A: &str = "did:key:z6MkTeacher1A";
pub const REGISTRAR: &str = "did:key:z6MkRegistrarSch1";
pub const OPERATOR: &str = "did:key:z6MkOperatorTikhvin";
pub const OPERATOR_LUGA: &str = "did:key:z6MkOperatorLuga";
pub const COL_TEACHER: &str = "did:key:z6MkCollegeTeacher";
pub const COL_REGISTRAR: &str = "did:key:z6MkCollegeRegistrar";
pub const ADO_REGISTRAR: &str = "did:key:z6MkAdoRegistrar";
pub const ISSUER: &str = "did:key:z6MkIssuerAdo";
pub const SECRETARY: &str = "did:key:z6MkCommissionSecretary";
pub const TEACHER2: &str = "did:key:z6MkTeacherSch2";

/// A member of commission com-001 (`i` in 0..9), held by person `m-<i>`.
pub fn member(i: usize) -> String {
    format!("did:key:z6MkMember{i}")
}

/// Refuses keys whose text says "weak" (stands in for the root crate's small-order check).
pub fn toy_key_check(did: &str) -> Result<(), String> {
    if did.contains("Weak") {
        Err("small-order public key".into())
    } else {
        Ok(())
    }
}

#[derive(Default)]
pub struct Index(HashMap<String, (String, String)>);

impl Lookup for Index {
    fn event(&self, id: &str) -> Result<Option<(String, String)>, LookupError> {
        Ok(self.0.get(id).cloned())
    }
}

pub struct Harness {
    pub rules: Rules,
    pub index: Index,
    pub seq: u64,
    /// `occurred_at` of the next events.
    pub now: String,
    /// The ledger's time (`recorded_at`) of the next events; `None`: the same as `now`.
    pub recorded: Option<String>,
}

impl Harness {
    /// Rules with the default region, not yet established.
    pub fn bare() -> Self {
        Self::with_config(RegionConfig::default())
    }

    pub fn with_config(config: RegionConfig) -> Self {
        Self {
            rules: Rules::new(ORIGIN, AUTH, config).with_key_check(toy_key_check),
            index: Index::default(),
            seq: 0,
            now: "2026-09-01T06:00:00Z".into(),
            recorded: None,
        }
    }

    /// Sets `occurred_at` of the next events (and the ledger's time with it, unless `recorded_at`
    /// set one apart).
    pub fn at(&mut self, t: &str) -> &mut Self {
        self.now = t.to_owned();
        self
    }

    /// Sets the ledger's time of the next events apart from their `occurred_at` (`None`: the same).
    pub fn recorded_at(&mut self, t: Option<&str>) -> &mut Self {
        self.recorded = t.map(str::to_owned);
        self
    }

    /// Checks then applies an event; `data` gets the type's schema version as `v` unless it has a
    /// `v`. Returns the id.
    pub fn append(&mut self, author: &str, stream: &str, ty: &str, mut data: Value) -> Result<String, RuleRefusal> {
        if let Some(o) = data.as_object_mut() {
            o.entry("v").or_insert(json!(zachetka_rules::schema_version(ty).unwrap_or(1)));
        }
        let id = format!("00000000-0000-4000-8000-{:012x}", self.seq);
        let recorded = self.recorded.as_deref().unwrap_or(&self.now);
        let recorded_at = zachetka_rules::time::parse_instant(recorded).expect("the harness's times parse");
        let e = Envelope {
            seq: self.seq,
            stream,
            event_type: ty,
            id: &id,
            occurred_at: &self.now,
            recorded_at,
            author,
            data: &data,
        };
        refusal(self.rules.check_and_apply(&e, &self.index))?;
        self.index.0.insert(id.clone(), (stream.to_owned(), ty.to_owned()));
        self.reload();
        self.seq += 1;
        Ok(id)
    }

    /// Replaces the rules by a copy loaded from their saved state. `append` does it after every
    /// accepted event, so each scenario test also checks that saved state answers as live state
    /// does (state.rs tests saving at random cut points of live histories).
    #[track_caller]
    pub fn reload(&mut self) {
        let bytes = self.rules.encode_state();
        let loaded = Rules::load_state(ORIGIN, AUTH, self.rules.config().clone(), &bytes)
            .unwrap_or_else(|e| panic!("saved rule state refused: {e}"))
            .with_key_check(toy_key_check);
        assert_eq!(loaded.encode_state(), bytes, "loaded rule state re-encodes differently");
        self.rules = loaded;
    }

    #[track_caller]
    pub fn ok(&mut self, author: &str, stream: &str, ty: &str, data: Value) -> String {
        match self.append(author, stream, ty, data) {
            Ok(id) => id,
            Err(r) => panic!("{ty} refused: {r}"),
        }
    }

    /// Asserts a refusal with `code` and that nothing changed; returns the message.
    #[track_caller]
    pub fn refused(&mut self, code: &str, author: &str, stream: &str, ty: &str, data: Value) -> String {
        match self.append(author, stream, ty, data) {
            Ok(_) => panic!("{ty} was accepted, expected {code}"),
            Err(r) => {
                assert_eq!(r.code, code, "{ty}: {}", r.message);
                assert!(!r.message.is_empty() && !r.message.ends_with('.'), "message style: {}", r.message);
                assert!(!r.message.starts_with(|c: char| c.is_ascii_uppercase()), "message style: {}", r.message);
                r.message
            }
        }
    }

    /// Admits `learner` to `class` of `institution` from 2026-08-01 (`program`: a curriculum).
    pub fn admit(&mut self, by: &str, learner: &str, institution: &str, class: &str, program: Option<&str>) {
        let mut data = json!({"institution": institution, "class": class, "academic_year": 2026,
            "admitted_on": "2026-08-01", "order_ref": format!("order-{learner}")});
        if let Some(p) = program {
            data["program_id"] = json!(p);
        }
        self.ok(by, learner, "contingent.admitted", data);
    }

    pub fn grant(&mut self, by: &str, key: &str, holder: &str, roles: &[&str], scope: Value) {
        self.ok(
            by,
            "registry",
            "keys.granted",
            json!({"key": key, "holder": holder, "roles": roles, "scope": scope, "valid_from": "2026-01-01T00:00:00Z"}),
        );
    }

    /// The standard region: ledger, institutions of every kind, staff keys.
    pub fn region() -> Self {
        Self::region_with(RegionConfig::default())
    }

    /// The standard region under `config`.
    pub fn region_with(config: RegionConfig) -> Self {
        let mut h = Self::with_config(config);
        h.at("2026-08-01T06:00:00Z");
        h.ok(AUTH, "registry", "ledger.established", json!({"origin": ORIGIN, "authority": AUTH}));
        for (id, kind, terr) in [
            ("sch-001", "school", "tikhvin"),
            ("sch-002", "school", "tikhvin"),
            ("col-001", "college", "tikhvin"),
            ("uni-001", "university", "spb"),
            ("kg-001", "kindergarten", "tikhvin"),
            ("kg-002", "kindergarten", "tikhvin"),
            ("kg-009", "kindergarten", "luga"),
            ("ado-001", "additional_education", "tikhvin"),
            ("com-001", "attestation_commission", "region"),
        ] {
            h.ok(
                AUTH,
                "registry",
                "registry.institution_registered",
                json!({"institution": id, "kind": kind, "territory": terr}),
            );
        }
        h.grant(AUTH, ADMIN, "p-admin1", &["institution_admin"], json!({"institution": "sch-001"}));
        h.grant(AUTH, ADMIN2, "p-admin2", &["institution_admin"], json!({"institution": "sch-002"}));
        h.grant(ADMIN, TEACHER, "t-0001", &["teacher"], json!({"institution": "sch-001"}));
        h.grant(ADMIN, TEACHER_5A, "t-0002", &["teacher"], json!({"institution": "sch-001", "class": "5А"}));
        h.grant(
            ADMIN,
            CLASS_5A,
            "t-0003",
            &["class_teacher", "teacher"],
            json!({"institution": "sch-001", "class": "5А"}),
        );
        h.grant(ADMIN, TEACHER_1A, "t-0004", &["teacher"], json!({"institution": "sch-001", "class": "1А"}));
        h.grant(ADMIN, REGISTRAR, "p-reg1", &["registrar"], json!({"institution": "sch-001"}));
        h.grant(ADMIN2, TEACHER2, "t-0005", &["teacher"], json!({"institution": "sch-002"}));
        h.grant(AUTH, OPERATOR, "p-op1", &["queue_operator"], json!({"territory": "tikhvin"}));
        h.grant(AUTH, OPERATOR_LUGA, "p-op2", &["queue_operator"], json!({"territory": "luga"}));
        h.grant(AUTH, COL_TEACHER, "t-0100", &["teacher"], json!({"institution": "col-001"}));
        h.grant(AUTH, COL_REGISTRAR, "p-reg2", &["registrar"], json!({"institution": "col-001"}));
        h.grant(AUTH, ADO_REGISTRAR, "p-reg3", &["registrar"], json!({"institution": "ado-001"}));
        h.grant(AUTH, ISSUER, "p-iss1", &["achievement_issuer"], json!({"institution": "ado-001"}));
        h.grant(AUTH, SECRETARY, "p-sec", &["commission_secretary"], json!({"institution": "com-001"}));
        for i in 0..9 {
            h.grant(AUTH, &member(i), &format!("m-{i}"), &["commission_member"], json!({"institution": "com-001"}));
        }
        // The contingent: marks and results exist only for enrolled learners.
        h.admit(REGISTRAR, L1, "sch-001", "5А", None);
        h.admit(REGISTRAR, L2, "sch-001", "5А", None);
        h.admit(REGISTRAR, L3, "sch-001", "1А", None);
        h.ok(
            COL_REGISTRAR,
            "institution/col-001",
            "college.curriculum_registered",
            json!({"program_id": "ИС", "level": "secondary_vocational", "courses": ["databases"]}),
        );
        h.admit(COL_REGISTRAR, S1, "col-001", "ИС-21", Some("ИС"));
        h.admit(COL_REGISTRAR, S2, "col-001", "ИС-21", Some("ИС"));
        h.at("2026-09-01T06:00:00Z");
        // Marks and attendance are given at lessons: `grade`'s lesson, and one of the 1st grade.
        h.lesson("sch-001", "5А", "math", "2026-09-01");
        h.lesson("sch-001", "1А", "reading", "2026-09-02");
        h
    }

    /// Records a lesson of `subject` held in `class` of `institution` (a school of `region`) on
    /// `date`, written by a teacher of any class there.
    pub fn lesson(&mut self, institution: &str, class: &str, subject: &str, date: &str) -> String {
        let author = if institution == "sch-002" { TEACHER2 } else { TEACHER };
        let data =
            json!({"lesson_id": format!("l-{}", self.seq), "class": class, "subject": subject, "lesson_date": date});
        self.ok(author, &format!("institution/{institution}"), "journal.lesson_held", data)
    }
}

/// A five-point grade for learner L1 in sch-001, class 5А (fields overridable).
pub fn grade(overrides: Value) -> Value {
    let mut g = json!({"institution": "sch-001", "class": "5А", "subject": "math", "mark": 5, "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": "2026-09-01"});
    merge(&mut g, overrides);
    g
}

/// Shallow merge: keys of `b` replace those of `a`; a `"-"` value deletes the key.
pub fn merge(a: &mut Value, b: Value) {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        for (k, v) in b {
            if v == json!("-") {
                a.remove(&k);
            } else {
                a.insert(k, v);
            }
        }
    }
}

pub const L1: &str = "learner/47-000001";
pub const L2: &str = "learner/47-000002";
/// In sch-001, class 1А.
pub const L3: &str = "learner/47-000003";
/// College students of col-001, group ИС-21, programme ИС (courses: databases).
pub const S1: &str = "learner/47-000101";
pub const S2: &str = "learner/47-000102";

/// The codes that meant HTTP 403 when a hand-kept list in formats/src/refusal.rs decided it;
/// the rules now classify each refusal where they make it, and every refusal of these tests is
/// checked against the old list so the statuses stay the same.
const RIGHTS_CODES: [&str; 8] = [
    "key_unknown",
    "key_revoked",
    "key_expired",
    "key_not_yet_valid",
    "not_authorized",
    "authority_mismatch",
    "authoriser_not_authorized",
    "issuer_not_registered",
];

/// The refusal behind a rule error (the in-memory indexes here always answer, so a lookup
/// failure is a bug of the test), its kind checked against the code.
#[track_caller]
pub fn refusal<T>(r: Result<T, RuleError>) -> Result<T, RuleRefusal> {
    r.map_err(|e| match e {
        RuleError::Refused(r) => {
            let kind = if RIGHTS_CODES.contains(&r.code) { RuleKind::Rights } else { RuleKind::Invariant };
            assert_eq!(r.kind, kind, "{r}");
            r
        }
        RuleError::Lookup(e) => panic!("the test index failed: {e}"),
    })
}
