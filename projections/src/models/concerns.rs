//! Which learners an entry concerns: the one definition that the learner profile, the learner
//! record bundle (DESIGN 3.4) and the completeness commitments (DESIGN 3.7) share.
//! An entry concerns learner `L` when it is on the stream `learner/L`; when it is a kindergarten
//! queue application naming `L`, or a later queue event about that application (benefits,
//! sibling links, withdrawal, offers and their answers, admission refusal, enrolment, transfer);
//! when it is a 1st-grade application naming `L`, or an enrolment order listing that application.
//! Not who may read an entry (scopes), and nothing else: an allocation run, a lesson, a program,
//! a sibling named by `queue.sibling_linked` (the entry is about the applicant's application,
//! not about the sibling's record) concern no learner here.

use super::common::slot;
use crate::model::Fact;
use crate::vocabulary::{Event, StreamKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The indexes the definition needs, built by feeding every entry in log order: queue
/// applications and offers to their learner (per territory), 1st-grade applications to their
/// learner (per school). Canonical state: ordered maps of strings only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concerns {
    /// Territory -> queue application id -> learner.
    queue_applications: BTreeMap<String, BTreeMap<String, String>>,
    /// Territory -> offer id -> learner (offers are answered by offer id only).
    queue_offers: BTreeMap<String, BTreeMap<String, String>>,
    /// School -> 1st-grade application id -> learner.
    first_grade_applications: BTreeMap<String, BTreeMap<String, String>>,
}

impl Concerns {
    /// Folds one entry into the indexes. Call it for every entry, in log order, before asking
    /// `learners_concerned` about the same entry.
    pub fn apply(&mut self, f: &Fact<'_>) {
        match f.event {
            Event::QueueApplicationSubmitted(d) => {
                let Some(territory) = StreamKind::Queue.id_of(f.stream) else { return };
                let apps = slot(&mut self.queue_applications, territory);
                // The first application with an id keeps it (the rules refuse a reused id).
                apps.entry(d.application_id.clone()).or_insert_with(|| d.learner.clone());
            }
            Event::PlaceOffered(d) => {
                let Some(territory) = StreamKind::Queue.id_of(f.stream) else { return };
                let Some(learner) = self.queue_applications.get(territory).and_then(|a| a.get(&d.application_id))
                else {
                    return;
                };
                let learner = learner.clone();
                slot(&mut self.queue_offers, territory).entry(d.offer_id.clone()).or_insert(learner);
            }
            Event::FirstGradeApplicationSubmitted(d) => {
                let Some(school) = StreamKind::Institution.id_of(f.stream) else { return };
                let apps = slot(&mut self.first_grade_applications, school);
                apps.entry(d.application_id.clone()).or_insert_with(|| d.learner.clone());
            }
            _ => {}
        }
    }

    /// The learner ids `f` concerns, each once, in the order the entry names them (an enrolment
    /// order: the order of its application list). Empty for an entry that concerns no learner.
    pub fn learners_concerned<'a>(&'a self, f: &Fact<'a>) -> Vec<&'a str> {
        self.concerned(f).collect()
    }

    /// `learners_concerned` without a vector for the usual case of one learner (what the folds
    /// call on every entry).
    pub fn concerned<'a>(&'a self, f: &Fact<'a>) -> Concerned<'a> {
        let one = |l: Option<&'a str>| Concerned::One(l.into_iter());
        if let Some(learner) = StreamKind::Learner.id_of(f.stream) {
            return one(Some(learner));
        }
        let queue = |application_id: &str| -> Concerned<'a> {
            one(StreamKind::Queue
                .id_of(f.stream)
                .and_then(|t| self.queue_applications.get(t))
                .and_then(|apps| apps.get(application_id))
                .map(String::as_str))
        };
        match f.event {
            Event::QueueApplicationSubmitted(d) => one(StreamKind::Queue.id_of(f.stream).map(|_| d.learner.as_str())),
            Event::BenefitClaimed(d) => queue(&d.application_id),
            Event::BenefitConfirmed(d) => queue(&d.application_id),
            Event::BenefitRejected(d) => queue(&d.application_id),
            Event::SiblingLinked(d) => queue(&d.application_id),
            Event::QueueApplicationWithdrawn(d) => queue(&d.application_id),
            Event::PlaceOffered(d) => queue(&d.application_id),
            Event::AdmissionRefused(d) => queue(&d.application_id),
            Event::KindergartenEnrolled(d) => queue(&d.application_id),
            Event::KindergartenTransferred(d) => queue(&d.application_id),
            Event::OfferAccepted(_) | Event::OfferRefused(_) => {
                let offer_id = match f.event {
                    Event::OfferAccepted(d) => &d.offer_id,
                    Event::OfferRefused(d) => &d.offer_id,
                    _ => unreachable!("matched above"),
                };
                one(StreamKind::Queue
                    .id_of(f.stream)
                    .and_then(|t| self.queue_offers.get(t))
                    .and_then(|offers| offers.get(offer_id))
                    .map(String::as_str))
            }
            Event::FirstGradeApplicationSubmitted(d) => {
                one(StreamKind::Institution.id_of(f.stream).map(|_| d.learner.as_str()))
            }
            Event::EnrolmentOrderIssued(d) => {
                let Some(apps) =
                    StreamKind::Institution.id_of(f.stream).and_then(|s| self.first_grade_applications.get(s))
                else {
                    return one(None);
                };
                let mut learners: Vec<&'a str> = Vec::new();
                for learner in d.applications.iter().filter_map(|a| apps.get(a)) {
                    if !learners.contains(&learner.as_str()) {
                        learners.push(learner);
                    }
                }
                Concerned::Many(learners.into_iter())
            }
            _ => one(None),
        }
    }
}

/// The learners an entry concerns (`Concerns::concerned`), in order.
pub enum Concerned<'a> {
    One(std::option::IntoIter<&'a str>),
    Many(std::vec::IntoIter<&'a str>),
}

impl<'a> Iterator for Concerned<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Concerned::One(l) => l.next(),
            Concerned::Many(l) => l.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use crate::models::testkit::History;
    use serde_json::json;

    fn concerned(h: &History) -> Vec<Vec<String>> {
        let mut c = Concerns::default();
        h.entries
            .iter()
            .map(|e| {
                let f = e.fact();
                c.apply(&f);
                c.learners_concerned(&f).into_iter().map(String::from).collect()
            })
            .collect()
    }

    #[test]
    fn queue_and_first_grade_entries_concern_the_learner_they_name() {
        let mut h = History::default();
        let q = "queue/kg/terr-1";
        h.push(
            q,
            "queue.application_submitted",
            json!({"application_id": "a-1", "number": "N-1", "learner": "47-1",
            "birth_month": "2023-02", "desired_date": "2026-09-01", "preferred": ["kg-1"], "group_type": "general"}),
        );
        h.push(
            q,
            "queue.application_submitted",
            json!({"application_id": "a-2", "number": "N-2", "learner": "47-2",
            "birth_month": "2023-03", "desired_date": "2026-09-01", "preferred": ["kg-1"], "group_type": "general"}),
        );
        h.push(
            q,
            "queue.benefit_claimed",
            json!({"application_id": "a-1", "claim_id": "c-1", "category": "police",
            "evidence_ref": "ev-1", "recheck_on": "2027-01-01"}),
        );
        h.push(q, "queue.allocation_started", json!({"run_id": "r-1", "kind": "main", "places": []}));
        h.push(q, "queue.place_offered", json!({"offer_id": "o-1", "application_id": "a-2", "kindergarten": "kg-1"}));
        h.push(q, "queue.offer_accepted", json!({"offer_id": "o-1"}));
        h.push(q, "queue.enrolled", json!({"application_id": "a-2", "kindergarten": "kg-1", "order_ref": "ord-7"}));
        // The same application id in another territory is another application.
        h.push("queue/kg/terr-2", "queue.benefit_confirmed", json!({"application_id": "a-1", "claim_id": "c-1"}));
        h.push("queue/kg/terr-1", "queue.offer_refused", json!({"offer_id": "o-9", "reason": "x"}));
        let s = "institution/sch-1";
        h.push(
            s,
            "enrolment.application_submitted",
            json!({"application_id": "fa-1", "learner": "47-1",
            "target_year": 2030, "window": 1, "basis": "territory", "birth_month": "2023-02"}),
        );
        h.push(
            s,
            "enrolment.application_submitted",
            json!({"application_id": "fa-2", "learner": "47-2",
            "target_year": 2030, "window": 1, "basis": "sibling", "birth_month": "2023-03"}),
        );
        h.push(
            s,
            "enrolment.order_issued",
            json!({"order_id": "ord-1", "target_year": 2030,
            "applications": ["fa-2", "fa-unknown", "fa-1", "fa-2"], "order_date": "2030-07-02"}),
        );
        h.push(
            "institution/sch-2",
            "enrolment.order_issued",
            json!({"order_id": "ord-2", "target_year": 2030,
            "applications": ["fa-1"], "order_date": "2030-07-02"}),
        );
        h.push("learner/47-3", "portfolio.achievement_revoked", json!({"achievement_id": "x", "reason": "y"}));
        h.push(
            s,
            "journal.lesson_held",
            json!({"lesson_id": "l", "class": "5А", "subject": "m", "lesson_date": "2030-09-01"}),
        );
        let one = |s: &str| vec![s.to_owned()];
        assert_eq!(
            concerned(&h),
            vec![
                one("47-1"),
                one("47-2"),
                one("47-1"),
                vec![],
                one("47-2"),
                one("47-2"),
                one("47-2"),
                vec![],
                vec![],
                one("47-1"),
                one("47-2"),
                vec!["47-2".to_owned(), "47-1".to_owned()],
                vec![],
                one("47-3"),
                vec![],
            ]
        );
    }

    #[test]
    fn the_indexes_round_trip_canonically() {
        let mut h = History::default();
        h.push(
            "queue/kg/t",
            "queue.application_submitted",
            json!({"application_id": "a", "number": "1", "learner": "47-1",
            "birth_month": "2023-02", "desired_date": "2026-09-01", "preferred": ["kg-1"], "group_type": "general"}),
        );
        let mut c = Concerns::default();
        for e in &h.entries {
            c.apply(&e.fact());
        }
        let bytes = model::encode_state(&c);
        let back: Concerns = model::decode_state("concerns", &bytes).unwrap();
        assert_eq!(back, c);
        assert_ne!(bytes, model::encode_state(&Concerns::default()));
    }
}
