//! `clubs`: additional education per institution: programs with their capacity, the current
//! roster of each (learner ids with the enrolment entry and the certificate used), who left and
//! why, free places, and the additional-education certificates the institution issued.
//! Not a waitlist: the vocabulary records no waitlist event (enrolment is refused when a program
//! is full), so views say so and show capacity and enrolled count only.

use crate::model::{self, segment, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::shared::EntryRef;
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NAME: &str = "clubs";
const NO_WAITLIST: &str =
    "the vocabulary records no waitlist event: an enrolment into a full program is refused, so only capacity and enrolled count are known";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    certificate: Option<String>,
    enrolled: EntryRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Left {
    learner: String,
    reason: String,
    enrolled: EntryRef,
    left: EntryRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Program {
    capacity: i64,
    focus: Option<String>,
    registered: EntryRef,
    /// Learner id -> current enrolment.
    roster: BTreeMap<String, Member>,
    left: Vec<Left>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Certificate {
    learner: String,
    year: i64,
    issued: EntryRef,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Institution {
    programs: BTreeMap<String, Program>,
    certificates: BTreeMap<String, Certificate>,
}

/// The `clubs` read model.
#[derive(Debug, Clone, Default)]
pub struct Clubs {
    institutions: BTreeMap<String, Institution>,
}

impl ReadModel for Clubs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        let at = || EntryRef::of(fact);
        match fact.event {
            Event::ProgramRegistered(d) => {
                let inst = self.institutions.entry(fact.stream_id().to_owned()).or_default();
                inst.programs.entry(d.program_id.clone()).or_insert_with(|| Program {
                    capacity: d.capacity,
                    focus: d.focus.clone(),
                    registered: at(),
                    roster: BTreeMap::new(),
                    left: Vec::new(),
                });
            }
            Event::AdditionalCertificateIssued(d) => {
                let inst = self.institutions.entry(d.institution.clone()).or_default();
                let c = Certificate { learner: fact.stream_id().to_owned(), year: d.year, issued: at() };
                inst.certificates.entry(d.certificate_id.clone()).or_insert(c);
            }
            Event::ProgramEnrolled(d) => {
                let Some(p) = self.program(&d.institution, &d.program_id) else { return };
                let learner = fact.stream_id();
                if !p.roster.contains_key(learner) {
                    p.roster
                        .insert(learner.to_owned(), Member { certificate: d.certificate_id.clone(), enrolled: at() });
                }
            }
            Event::ProgramLeft(d) => {
                let Some(p) = self.program(&d.institution, &d.program_id) else { return };
                if let Some(m) = p.roster.remove(fact.stream_id()) {
                    p.left.push(Left {
                        learner: fact.stream_id().to_owned(),
                        reason: d.reason.clone(),
                        enrolled: m.enrolled,
                        left: at(),
                    });
                }
            }
            _ => {}
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(&self.institutions)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.institutions = model::decode_state(NAME, bytes)?;
        Ok(())
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let id = segment(path, 0, "an institution id")?;
        let inst = self
            .institutions
            .get(id)
            .ok_or_else(|| ViewError::NotFound(format!("{id} has no additional-education records")))?;
        let scope = Scope::Institution(id.to_owned());
        match path.len() {
            1 => {
                let programs: Vec<Value> = inst.programs.iter().map(|(pid, p)| summary(pid, p)).collect();
                let mut by_year: BTreeMap<i64, u64> = BTreeMap::new();
                inst.certificates.values().for_each(|c| *by_year.entry(c.year).or_default() += 1);
                let certificates: Vec<Value> =
                    by_year.into_iter().map(|(y, n)| json!({"year": y, "issued": n})).collect();
                let body = json!({
                    "institution": id,
                    "programs": programs,
                    "certificates_issued": certificates,
                    "waitlist": {"recorded": false, "reason": NO_WAITLIST},
                });
                Ok(View { scope, body })
            }
            2 => {
                let pid = segment(path, 1, "a program id")?;
                let p =
                    inst.programs.get(pid).ok_or_else(|| ViewError::NotFound(format!("{id} has no program {pid}")))?;
                let mut body = summary(pid, p);
                let roster: Vec<Value> = p
                    .roster
                    .iter()
                    .map(|(l, m)| json!({"learner": l, "certificate": m.certificate, "event": m.enrolled.event, "seq": m.enrolled.seq}))
                    .collect();
                let left: Vec<Value> = p
                    .left
                    .iter()
                    .map(|l| json!({"learner": l.learner, "reason": l.reason, "enrolled": l.enrolled.json(), "event": l.left.event, "seq": l.left.seq}))
                    .collect();
                body["institution"] = json!(id);
                body["registered"] = p.registered.json();
                body["roster"] = json!(roster);
                body["left"] = json!(left);
                body["waitlist"] = json!({"recorded": false, "reason": NO_WAITLIST});
                Ok(View { scope, body })
            }
            _ => Err(ViewError::BadPath("expected <institution> or <institution>/<program_id>".into())),
        }
    }
}

impl Clubs {
    fn program(&mut self, institution: &str, program: &str) -> Option<&mut Program> {
        self.institutions.get_mut(institution)?.programs.get_mut(program)
    }
}

fn summary(id: &str, p: &Program) -> Value {
    let enrolled = p.roster.len() as i64;
    json!({
        "program": id,
        "focus": p.focus,
        "capacity": p.capacity,
        "enrolled": enrolled,
        "free": (p.capacity - enrolled).max(0),
        "event": p.registered.event,
        "seq": p.registered.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::shared::testing::*;

    const T: &str = "2026-09-01T10:00:00Z";

    fn history() -> Vec<Row> {
        vec![
            row(
                0,
                "institution/dod-1",
                "additional.program_registered",
                T,
                json!({"program_id": "chess", "capacity": 2, "focus": "intellectual"}),
            ),
            row(
                1,
                "institution/dod-1",
                "additional.program_registered",
                T,
                json!({"program_id": "robots", "capacity": 10}),
            ),
            row(
                2,
                "learner/47-1",
                "additional.certificate_issued",
                T,
                json!({"certificate_id": "c-1", "institution": "dod-1", "year": 2026}),
            ),
            row(
                3,
                "learner/47-1",
                "additional.enrolled",
                T,
                json!({"institution": "dod-1", "program_id": "chess", "certificate_id": "c-1"}),
            ),
            row(4, "learner/47-2", "additional.enrolled", T, json!({"institution": "dod-1", "program_id": "chess"})),
            row(
                5,
                "learner/47-2",
                "additional.left",
                T,
                json!({"institution": "dod-1", "program_id": "chess", "reason": "moved"}),
            ),
            row(6, "learner/47-3", "additional.enrolled", T, json!({"institution": "dod-1", "program_id": "chess"})),
            row(7, "learner/47-3", "additional.enrolled", T, json!({"institution": "dod-1", "program_id": "robots"})),
        ]
    }

    #[test]
    fn programs_and_rosters() {
        let m: Clubs = build(&history());
        let v = m.view(&["dod-1"]).unwrap();
        assert_eq!(v.scope, Scope::Institution("dod-1".into()));
        assert_eq!(
            v.body["programs"],
            json!([
                {"program": "chess", "focus": "intellectual", "capacity": 2, "enrolled": 2, "free": 0, "event": "e0", "seq": 0},
                {"program": "robots", "focus": null, "capacity": 10, "enrolled": 1, "free": 9, "event": "e1", "seq": 1},
            ])
        );
        assert_eq!(v.body["certificates_issued"], json!([{"year": 2026, "issued": 1}]));
        assert_eq!(v.body["waitlist"]["recorded"], json!(false));
        let p = m.view(&["dod-1", "chess"]).unwrap().body;
        assert_eq!(
            p["roster"],
            json!([
                {"learner": "47-1", "certificate": "c-1", "event": "e3", "seq": 3},
                {"learner": "47-3", "certificate": null, "event": "e6", "seq": 6},
            ])
        );
        assert_eq!(
            p["left"],
            json!([{"learner": "47-2", "reason": "moved", "enrolled": {"event": "e4", "seq": 4}, "event": "e5", "seq": 5}])
        );
        assert!(matches!(m.view(&["dod-1", "dance"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["dod-2"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["dod-1", "chess", "x"]), Err(ViewError::BadPath(_))));
    }

    #[test]
    fn deterministic() {
        check_determinism::<Clubs>(&history());
    }
}
