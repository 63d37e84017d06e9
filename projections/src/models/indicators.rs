//! `indicators`: the region's indicators: institutions by kind and territory, learners seen per
//! institution kind, and the five shares of the federal digital-maturity index (DOMAIN.md), each
//! with its integer numerator and denominator, and the index (their mean).
//! Not a reproduction of published figures: every number is counted from the log.
//!
//! Denominators: school students are the learners seen at a school (below); teachers are the
//! distinct holders of a `teacher` or `class_teacher` grant at a school (not a `migration` key's) (the pseudonymous person
//! of a grant is also the id of their `teacher/<id>` stream); assignments are the
//! `digital.assignment_recorded` entries. Numerators count the members of the denominator's set
//! that have the record: a portfolio achievement not revoked, a `digital.recommendation_offered`,
//! a `digital.learner_content_access_granted`, a `digital.teacher_content_access_granted`; and
//! the assignments checked `automatic`.
//!
//! A learner is "seen" at an institution kind when an entry names both: a learner-stream entry
//! naming an institution (grades, attendance, attestation, certificates, programs, college
//! results, transfers), a kindergarten enrolment or transfer (the learner of the queue
//! application), a 1st-grade enrolment order (the learners of its applications). An entry naming
//! an institution not registered (yet) counts for no kind.

use crate::model::{self, expect_len, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::common::{Keyed, Sym, Symbols};
use crate::models::shared::share;
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const NAME: &str = "indicators";
const SCHOOL: &str = "school";

/// What the shares need of one learner.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Learner {
    /// Bit `i`: seen at an institution of kind `i` (`State::kinds`); kinds past the 64th are
    /// listed in `more_kinds`.
    kinds: u64,
    more_kinds: Vec<u32>,
    /// Achievements attested and not revoked, in order of attestation.
    achievements: Vec<String>,
    /// Offered a recommendation or an individual trajectory.
    recommended: bool,
    /// Given free access to digital content for self-study.
    access: bool,
}

impl Learner {
    fn has_kind(&self, kind: u32) -> bool {
        match 1u64.checked_shl(kind) {
            Some(bit) => self.kinds & bit != 0,
            None => self.more_kinds.contains(&kind),
        }
    }

    fn add_kind(&mut self, kind: u32) {
        match 1u64.checked_shl(kind) {
            Some(bit) => self.kinds |= bit,
            None if !self.more_kinds.contains(&kind) => self.more_kinds.push(kind),
            None => {}
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Institution id -> (kind, territory).
    institutions: BTreeMap<String, (String, String)>,
    /// Institution kinds in order of first registration (a learner's kind bits).
    kinds: Symbols,
    /// Learner id -> what the shares count of them, in order of first appearance.
    learners: Keyed<Learner>,
    /// `<territory>/<application id>` of a kindergarten application -> its learner.
    queue_learners: BTreeMap<String, String>,
    /// `<school>/<application id>` of a 1st-grade application -> its learner.
    first_grade_learners: BTreeMap<String, String>,
    /// Teachers (stream ids) with access to verified digital content.
    teacher_access: BTreeSet<String>,
    /// Holders of a teacher or class-teacher grant at a school.
    school_teachers: BTreeSet<String>,
    /// Electronic assignments recorded, and those checked automatically.
    assignments: u64,
    assignments_automatic: u64,
    /// Institution id -> its kind in `kinds` (not encoded: rebuilt from `institutions`).
    #[serde(skip)]
    kind_of: HashMap<String, u32>,
    /// The last institution looked up and its kind (a lesson's records follow each other).
    #[serde(skip)]
    last_kind: Option<(String, u32)>,
}

/// The `indicators` read model.
#[derive(Debug, Clone, Default)]
pub struct Indicators {
    state: State,
}

impl State {
    fn seen(&mut self, institution: &str, learner: &str) {
        let kind = match &self.last_kind {
            Some((i, k)) if i == institution => *k,
            _ => {
                let Some(kind) = self.kind_of.get(institution) else { return };
                self.last_kind = Some((institution.to_owned(), *kind));
                *kind
            }
        };
        self.learners.slot(learner).add_kind(kind);
    }

    /// Rebuilds `kind_of` after a load.
    fn reindex(&mut self) -> Result<(), String> {
        self.kinds.reindex()?;
        self.learners.reindex()?;
        self.kind_of.clear();
        self.last_kind = None;
        for (institution, (kind, _)) in &self.institutions {
            let k = self.kinds.get(kind).ok_or_else(|| format!("institution kind {kind:?} is not in the table"))?;
            self.kind_of.insert(institution.clone(), k.0);
        }
        Ok(())
    }
}

/// The institution a learner-stream event names, if any.
fn institution_of(event: &Event) -> Option<&str> {
    Some(match event {
        Event::GradeRecorded(d) => &d.institution,
        Event::AttendanceMarked(d) => &d.institution,
        Event::RecordCorrected(d) => &d.institution,
        Event::TermGradeSet(d) => &d.institution,
        Event::YearGradeSet(d) => &d.institution,
        Event::IntermediateAttestationRecorded(d) => &d.institution,
        Event::AcademicDebtOpened(d) => &d.institution,
        Event::RetakeRecorded(d) => &d.institution,
        Event::Promoted(d) => &d.institution,
        Event::FinalAttestationRecorded(d) => &d.institution,
        Event::CertificateIssued(d) => &d.institution,
        Event::AdditionalCertificateIssued(d) => &d.institution,
        Event::ProgramEnrolled(d) => &d.institution,
        Event::ProgramLeft(d) => &d.institution,
        Event::CourseResultRecorded(d) => &d.institution,
        Event::ExamRecorded(d) => &d.institution,
        Event::DiplomaIssued(d) => &d.institution,
        Event::LearnerTransferred(d) => &d.to_institution,
        Event::ContingentAdmitted(d) => &d.institution,
        Event::ClassAssigned(d) => &d.institution,
        Event::ContingentExpelled(d) => &d.institution,
        Event::ContingentGraduated(d) => &d.institution,
        Event::AcademicLeaveGranted(d) => &d.institution,
        Event::RecommendationOffered(d) => &d.institution,
        Event::LearnerContentAccessGranted(d) => &d.institution,
        _ => return None,
    })
}

/// One share of the index: its indicator, what it counts, numerator and denominator.
fn indicator(name: &str, definition: &str, numerator: u64, denominator: u64) -> serde_json::Value {
    let mut v = share(numerator, denominator);
    v["indicator"] = json!(name);
    v["computable"] = json!(true);
    v["definition"] = json!(definition);
    v
}

/// The mean of the shares in percent, one decimal, half up (from exact integers: each share in
/// units of 10^-12, so the rounding of the mean is that of the exact mean for any log size).
fn mean_percent(shares: &[(u64, u64)]) -> Option<String> {
    const UNIT: u128 = 1_000_000_000_000;
    if shares.is_empty() || shares.iter().any(|(_, d)| *d == 0) {
        return None;
    }
    let sum: u128 = shares.iter().map(|(n, d)| u128::from(*n) * UNIT / u128::from(*d)).sum();
    let tenths = (sum * 1000 / shares.len() as u128 + UNIT / 2) / UNIT;
    Some(format!("{}.{}", tenths / 10, tenths % 10))
}

/// The five shares in DOMAIN's order: name and what it counts.
const INDICATORS: [(&str, &str); 5] = [
    (
        "students_with_digital_profile",
        "school students (learners seen at a school) with at least one portfolio achievement attested and not revoked, of all school students",
    ),
    (
        "students_offered_recommendations_or_individual_trajectories",
        "school students offered a recommendation or an individual trajectory from their portfolio (digital.recommendation_offered), of all school students",
    ),
    (
        "teachers_able_to_use_verified_digital_content",
        "school teachers (holders of a teacher or class_teacher grant at a school) with access to a verified digital content service (digital.teacher_content_access_granted), of all school teachers",
    ),
    (
        "students_with_free_access_to_digital_content",
        "school students with free access to digital content for self-study (digital.learner_content_access_granted), of all school students",
    ),
    (
        "electronic_assignments_checked_automatically",
        "electronic assignments (digital.assignment_recorded) checked automatically, of all recorded",
    ),
];

impl ReadModel for Indicators {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 3: one record per learner (kinds seen as bits, achievements, flags), found by hash.
        // 4: a migration key's grant is no school teacher.
        4
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        let s = &mut self.state;
        match fact.event {
            Event::InstitutionRegistered(d) => {
                if !s.institutions.contains_key(&d.institution) {
                    s.institutions.insert(d.institution.clone(), (d.kind.clone(), d.territory.clone()));
                    let kind = s.kinds.intern(&d.kind);
                    s.kind_of.insert(d.institution.clone(), kind.0);
                }
            }
            Event::QueueApplicationSubmitted(d) => {
                s.queue_learners.insert(format!("{}/{}", fact.stream_id(), d.application_id), d.learner.clone());
            }
            Event::KindergartenEnrolled(d) => {
                let key = format!("{}/{}", fact.stream_id(), d.application_id);
                if let Some(l) = s.queue_learners.get(&key).cloned() {
                    s.seen(&d.kindergarten, &l);
                }
            }
            Event::KindergartenTransferred(d) => {
                let key = format!("{}/{}", fact.stream_id(), d.application_id);
                if let Some(l) = s.queue_learners.get(&key).cloned() {
                    s.seen(&d.to_kindergarten, &l);
                }
            }
            Event::FirstGradeApplicationSubmitted(d) => {
                s.first_grade_learners.insert(format!("{}/{}", fact.stream_id(), d.application_id), d.learner.clone());
            }
            Event::EnrolmentOrderIssued(d) => {
                let school = fact.stream_id();
                for app in &d.applications {
                    if let Some(l) = s.first_grade_learners.get(&format!("{school}/{app}")).cloned() {
                        s.seen(school, &l);
                    }
                }
            }
            Event::KeysGranted(d) => {
                // A migration key holds the role its imports need (`teacher`) but is a legacy
                // system's import, not a person who teaches.
                let teaches = d.roles.iter().any(|r| r == "teacher" || r == "class_teacher")
                    && !d.roles.iter().any(|r| r == "migration");
                let at_school = d
                    .scope
                    .institution
                    .as_ref()
                    .and_then(|i| s.institutions.get(i))
                    .is_some_and(|(kind, _)| kind == SCHOOL);
                if teaches && at_school && !s.school_teachers.contains(&d.holder) {
                    s.school_teachers.insert(d.holder.clone());
                }
            }
            Event::RecommendationOffered(_) => s.learners.slot(fact.stream_id()).recommended = true,
            Event::LearnerContentAccessGranted(_) => s.learners.slot(fact.stream_id()).access = true,
            Event::TeacherContentAccessGranted(_) => {
                s.teacher_access.insert(fact.stream_id().to_owned());
            }
            Event::AssignmentRecorded(d) => {
                s.assignments += 1;
                s.assignments_automatic += u64::from(d.checking == "automatic");
            }
            Event::AchievementAttested(d) => {
                let held = &mut s.learners.slot(fact.stream_id()).achievements;
                if !held.contains(&d.achievement_id) {
                    held.push(d.achievement_id.clone());
                }
            }
            Event::AchievementRevoked(d) => {
                if let Some(learner) = s.learners.get_mut(fact.stream_id()) {
                    learner.achievements.retain(|a| *a != d.achievement_id);
                }
            }
            ev => {
                if let Some(inst) = institution_of(ev) {
                    s.seen(inst, fact.stream_id());
                }
            }
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

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        expect_len(path, 0, "no segment after indicators")?;
        let s = &self.state;
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_territory: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for (kind, territory) in s.institutions.values() {
            *by_kind.entry(kind).or_default() += 1;
            *by_territory.entry(territory).or_default().entry(kind).or_default() += 1;
        }
        // Kinds with at least one learner seen there, by name.
        let mut learners: BTreeMap<&str, usize> = BTreeMap::new();
        for k in 0..s.kinds.len() as u32 {
            let n = s.learners.values().iter().filter(|l| l.has_kind(k)).count();
            if n > 0 {
                learners.insert(s.kinds.name(Sym(k)), n);
            }
        }
        let school = s.kinds.get(SCHOOL);
        let students: Vec<&Learner> =
            s.learners.values().iter().filter(|l| school.is_some_and(|k| l.has_kind(k.0))).collect();
        let of_students = |has: &dyn Fn(&Learner) -> bool| students.iter().filter(|l| has(l)).count() as u64;
        let pupils = students.len() as u64;
        let teachers = s.school_teachers.len() as u64;
        let counts = [
            (of_students(&|l| !l.achievements.is_empty()), pupils),
            (of_students(&|l| l.recommended), pupils),
            (s.school_teachers.iter().filter(|t| s.teacher_access.contains(*t)).count() as u64, teachers),
            (of_students(&|l| l.access), pupils),
            (s.assignments_automatic, s.assignments),
        ];
        let shares: Vec<serde_json::Value> = INDICATORS
            .iter()
            .zip(counts)
            .map(|((name, definition), (n, d))| indicator(name, definition, n, d))
            .collect();
        let index = match mean_percent(&counts) {
            Some(p) => json!({"computable": true, "percent": p, "definition": "the mean of the five shares"}),
            None => json!({"computable": false, "reason": "a share has a zero denominator"}),
        };
        let body = json!({
            "institutions": {"total": s.institutions.len(), "by_kind": by_kind, "by_territory": by_territory},
            "learners_by_institution_kind": learners,
            "digital_maturity": {
                "shares": shares,
                "index": index,
                "note": "the published 2021 figures disagree with each other: the mean of the five 2021 shares is 52.3%, while the 2022 report (71%, up 11.8 points) implies 59.2% for 2021, and one denominator is 174,873 where the others are 174,876",
            },
        });
        Ok(View { scope: Scope::Region, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::shared::testing::*;

    const T: &str = "2026-09-01T10:00:00Z";

    fn reg(seq: u64, id: &str, kind: &str, territory: &str) -> Row {
        row(
            seq,
            "registry",
            "registry.institution_registered",
            T,
            json!({"institution": id, "kind": kind, "territory": territory}),
        )
    }

    fn grade(seq: u64, learner: &str, inst: &str) -> Row {
        row(
            seq,
            &format!("learner/{learner}"),
            "journal.grade_recorded",
            T,
            json!({"institution": inst, "class": "5А", "subject": "math", "mark": 5, "scale": "five_point", "weight": 3, "kind": "classwork", "lesson_date": "2026-09-01"}),
        )
    }

    fn history() -> Vec<Row> {
        vec![
            reg(0, "sch-1", "school", "luga"),
            reg(1, "sch-2", "school", "tikhvin"),
            reg(2, "kg-1", "kindergarten", "luga"),
            reg(3, "dod-1", "additional_education", "luga"),
            grade(4, "47-1", "sch-1"),
            grade(5, "47-1", "sch-1"),
            grade(6, "47-2", "sch-2"),
            row(7, "learner/47-2", "additional.enrolled", T, json!({"institution": "dod-1", "program_id": "chess"})),
            row(
                8,
                "queue/kg/luga",
                "queue.application_submitted",
                T,
                json!({"application_id": "a1", "number": "N1", "learner": "47-9", "birth_month": "2023-01", "desired_date": "2026-09-01", "preferred": ["kg-1"], "group_type": "general"}),
            ),
            row(
                9,
                "queue/kg/luga",
                "queue.enrolled",
                T,
                json!({"application_id": "a1", "kindergarten": "kg-1", "order_ref": "p-1"}),
            ),
            row(
                10,
                "institution/sch-1",
                "enrolment.application_submitted",
                T,
                json!({"application_id": "f1", "learner": "47-5", "target_year": 2027, "window": 1, "basis": "sibling", "birth_month": "2020-10"}),
            ),
            row(
                11,
                "institution/sch-1",
                "enrolment.order_issued",
                T,
                json!({"order_id": "o1", "target_year": 2027, "applications": ["f1"], "order_date": "2027-07-02"}),
            ),
            row(
                12,
                "learner/47-1",
                "portfolio.achievement_attested",
                T,
                json!({"achievement_id": "ach-1", "kind": "olympiad", "level": "regional", "date": "2026-05-01", "result": "winner"}),
            ),
            row(
                13,
                "learner/47-2",
                "portfolio.achievement_attested",
                T,
                json!({"achievement_id": "ach-2", "kind": "gto", "level": "school", "date": "2026-05-01", "result": "gold"}),
            ),
            row(
                14,
                "learner/47-2",
                "portfolio.achievement_revoked",
                T,
                json!({"achievement_id": "ach-2", "reason": "error"}),
            ),
            grade(15, "47-3", "sch-unknown"),
            grant(16, "t-1", "teacher", "sch-1"),
            grant(17, "t-2", "class_teacher", "sch-2"),
            // A kindergarten's teacher is not a school teacher; a second key of t-1 counts once.
            grant(18, "t-3", "teacher", "kg-1"),
            grant(19, "t-1", "teacher", "sch-2"),
            // A migration key holding the teacher role for its imports is not a teacher.
            row(
                190,
                "registry",
                "keys.granted",
                T,
                json!({"key": "did:key:z6Mk190", "holder": "p-migration", "roles": ["migration", "teacher"], "scope": {"institution": "sch-1"}, "valid_from": T}),
            ),
            access(20, "teacher/t-2", "digital.teacher_content_access_granted", "sch-2"),
            access(21, "teacher/t-3", "digital.teacher_content_access_granted", "kg-1"),
            row(
                22,
                "learner/47-2",
                "digital.recommendation_offered",
                T,
                json!({"recommendation_id": "r1", "institution": "sch-2", "kind": "individual_trajectory", "offered_on": "2026-09-01"}),
            ),
            // 47-9 attends a kindergarten: not a school student, not counted.
            row(
                23,
                "learner/47-9",
                "digital.recommendation_offered",
                T,
                json!({"recommendation_id": "r2", "institution": "kg-1", "kind": "recommendation", "offered_on": "2026-09-01"}),
            ),
            access(24, "learner/47-1", "digital.learner_content_access_granted", "sch-1"),
            access(25, "learner/47-5", "digital.learner_content_access_granted", "sch-1"),
            assignment(26, "a1", "automatic"),
            assignment(27, "a2", "automatic"),
            assignment(28, "a3", "manual"),
            assignment(29, "a4", "automatic"),
        ]
    }

    fn grant(seq: u64, holder: &str, role: &str, inst: &str) -> Row {
        row(
            seq,
            "registry",
            "keys.granted",
            T,
            json!({"key": format!("did:key:z6Mk{seq}"), "holder": holder, "roles": [role], "scope": {"institution": inst}, "valid_from": T}),
        )
    }

    fn access(seq: u64, stream: &str, ty: &str, inst: &str) -> Row {
        row(
            seq,
            stream,
            ty,
            T,
            json!({"access_id": format!("x{seq}"), "institution": inst, "service": "resh", "granted_on": "2026-09-01"}),
        )
    }

    fn assignment(seq: u64, id: &str, checking: &str) -> Row {
        row(
            seq,
            "institution/sch-1",
            "digital.assignment_recorded",
            T,
            json!({"assignment_id": id, "class": "5А", "subject": "math", "checking": checking, "assigned_on": "2026-09-01"}),
        )
    }

    #[test]
    fn counts_and_shares() {
        let m: Indicators = build(&history());
        let v = m.view(&[]).unwrap();
        assert_eq!(v.scope, Scope::Region);
        let b = v.body;
        assert_eq!(
            b["institutions"],
            json!({"total": 4, "by_kind": {"additional_education": 1, "kindergarten": 1, "school": 2},
                   "by_territory": {"luga": {"additional_education": 1, "kindergarten": 1, "school": 1}, "tikhvin": {"school": 1}}})
        );
        // School: 47-1, 47-2 (grades), 47-5 (1st-grade order); 47-3's school is not registered.
        assert_eq!(
            b["learners_by_institution_kind"],
            json!({"additional_education": 1, "kindergarten": 1, "school": 3})
        );
        let shares = b["digital_maturity"]["shares"].as_array().unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s["computable"] == json!(true) && s["definition"].is_string()));
        let got: Vec<(&str, u64, u64, &str)> = shares
            .iter()
            .map(|s| {
                (
                    s["indicator"].as_str().unwrap(),
                    s["numerator"].as_u64().unwrap(),
                    s["denominator"].as_u64().unwrap(),
                    s["percent"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // Only 47-1 keeps an achievement (47-2's was revoked): 1 of 3 school students.
                ("students_with_digital_profile", 1, 3, "33.3"),
                // 47-2 (47-9 is a kindergarten child).
                ("students_offered_recommendations_or_individual_trajectories", 1, 3, "33.3"),
                // Teachers t-1 and t-2 (t-3 is at a kindergarten); only t-2 has access.
                ("teachers_able_to_use_verified_digital_content", 1, 2, "50.0"),
                // 47-1 and 47-5.
                ("students_with_free_access_to_digital_content", 2, 3, "66.7"),
                ("electronic_assignments_checked_automatically", 3, 4, "75.0"),
            ]
        );
        // (33.33 + 33.33 + 50 + 66.67 + 75) / 5 = 51.67.
        assert_eq!(
            b["digital_maturity"]["index"],
            json!({"computable": true, "percent": "51.7", "definition": "the mean of the five shares"})
        );
        assert!(matches!(m.view(&["x"]), Err(ViewError::BadPath(_))));
    }

    #[test]
    fn the_index_of_the_2021_table() {
        // DOMAIN's 2021 shares: 99.0, 11.8, 27.5, 23.4, 100: their mean is 52.3.
        let table = [(173_171, 174_876), (20_555, 174_873), (3_917, 14_269), (41_007, 174_876), (202_217, 202_217)];
        assert_eq!(mean_percent(&table).as_deref(), Some("52.3"));
        assert_eq!(mean_percent(&[(1, 3), (2, 3)]).as_deref(), Some("50.0"));
        assert_eq!(mean_percent(&[(1, 8), (0, 1)]).as_deref(), Some("6.3"));
        assert_eq!(mean_percent(&[(1, 0)]), None);
        let empty: Indicators = build(&[]);
        assert_eq!(empty.view(&[]).unwrap().body["digital_maturity"]["index"]["computable"], json!(false));
    }

    #[test]
    fn deterministic() {
        check_determinism::<Indicators>(&history());
    }
}
