//! `indicators`: the region's indicators: institutions by kind and territory, learners seen per
//! institution kind, and the shares of the federal digital-maturity index (DOMAIN.md) that the
//! current vocabulary can count, each with its integer numerator and denominator.
//! Not the shares the vocabulary cannot count yet: the view lists them with `"computable": false`
//! and the reason (the event types they need come later), and the index (the mean of all five)
//! is therefore not computed either.
//!
//! A learner is "seen" at an institution kind when an entry names both: a learner-stream entry
//! naming an institution (grades, attendance, attestation, certificates, programs, college
//! results, transfers), a kindergarten enrolment or transfer (the learner of the queue
//! application), a 1st-grade enrolment order (the learners of its applications). An entry naming
//! an institution not registered (yet) counts for no kind.

use crate::model::{self, expect_len, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::shared::share;
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const NAME: &str = "indicators";
const SCHOOL: &str = "school";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Institution id -> (kind, territory).
    institutions: BTreeMap<String, (String, String)>,
    /// Institution kind -> learners seen there.
    learners_by_kind: BTreeMap<String, BTreeSet<String>>,
    /// `<territory>/<application id>` of a kindergarten application -> its learner.
    queue_learners: BTreeMap<String, String>,
    /// `<school>/<application id>` of a 1st-grade application -> its learner.
    first_grade_learners: BTreeMap<String, String>,
    /// Learner -> achievements attested and not revoked.
    achievements: BTreeMap<String, BTreeSet<String>>,
}

/// The `indicators` read model.
#[derive(Debug, Clone, Default)]
pub struct Indicators {
    state: State,
}

impl State {
    fn seen(&mut self, institution: &str, learner: &str) {
        // Allocates only for a learner not seen at that kind before (most entries repeat one).
        let Some((kind, _)) = self.institutions.get(institution) else { return };
        match self.learners_by_kind.get_mut(kind.as_str()) {
            Some(set) if set.contains(learner) => {}
            Some(set) => {
                set.insert(learner.to_owned());
            }
            None => {
                self.learners_by_kind.insert(kind.clone(), BTreeSet::from([learner.to_owned()]));
            }
        }
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
        _ => return None,
    })
}

/// The digital-maturity shares the current vocabulary cannot count, with why.
const NOT_COMPUTABLE: &[(&str, &str)] = &[
    (
        "students_offered_recommendations_or_individual_trajectories",
        "no event type records a recommendation or an individual trajectory offered to a learner from their portfolio",
    ),
    (
        "teachers_able_to_use_verified_digital_content",
        "no event type records a teacher's use of, or training in, verified digital content and services; teachers appear only as attestation applicants",
    ),
    (
        "students_with_free_access_to_digital_content",
        "no event type records a learner's access to digital content for self-study",
    ),
    (
        "electronic_assignments_checked_automatically",
        "no event type records an electronic assignment or how it was checked",
    ),
];

impl ReadModel for Indicators {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        let s = &mut self.state;
        match fact.event {
            Event::InstitutionRegistered(d) => {
                s.institutions.entry(d.institution.clone()).or_insert((d.kind.clone(), d.territory.clone()));
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
            Event::AchievementAttested(d) => {
                s.achievements.entry(fact.stream_id().to_owned()).or_default().insert(d.achievement_id.clone());
            }
            Event::AchievementRevoked(d) => {
                if let Some(set) = s.achievements.get_mut(fact.stream_id()) {
                    set.remove(&d.achievement_id);
                    if set.is_empty() {
                        s.achievements.remove(fact.stream_id());
                    }
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
        self.state = model::decode_state(NAME, bytes)?;
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
        let learners: BTreeMap<&str, usize> = s.learners_by_kind.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        let students = s.learners_by_kind.get(SCHOOL);
        let denominator = students.map_or(0, |v| v.len() as u64);
        let with_profile = students.map_or(0, |v| v.iter().filter(|l| s.achievements.contains_key(*l)).count() as u64);
        let mut profile = share(with_profile, denominator);
        profile["indicator"] = json!("students_with_digital_profile");
        profile["computable"] = json!(true);
        profile["definition"] = json!(
            "school students (learners seen at a school) with at least one portfolio achievement attested and not revoked, of all school students"
        );
        let mut shares = vec![profile];
        shares
            .extend(NOT_COMPUTABLE.iter().map(|(i, why)| json!({"indicator": i, "computable": false, "reason": why})));
        let body = json!({
            "institutions": {"total": s.institutions.len(), "by_kind": by_kind, "by_territory": by_territory},
            "learners_by_institution_kind": learners,
            "digital_maturity": {
                "shares": shares,
                "index": {"computable": false, "reason": "the index is the mean of five shares and four are not computable from the current vocabulary"},
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
        ]
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
        let profile = &b["digital_maturity"]["shares"][0];
        // Only 47-1 keeps an achievement (47-2's was revoked): 1 of 3 school students.
        assert_eq!(profile["numerator"], json!(1));
        assert_eq!(profile["denominator"], json!(3));
        assert_eq!(profile["percent"], json!("33.3"));
        let shares = b["digital_maturity"]["shares"].as_array().unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares[1..].iter().all(|s| s["computable"] == json!(false) && s["reason"].is_string()));
        assert!(matches!(m.view(&["x"]), Err(ViewError::BadPath(_))));
    }

    #[test]
    fn deterministic() {
        check_determinism::<Indicators>(&history());
    }
}
