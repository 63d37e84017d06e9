//! `teachers`: a teacher's attestation (`teacher/<id>` streams): the categories in force and
//! their terms, the fitness check and when the next one is due, and the history of every
//! application with each commission member's vote and the decision; and the staff records an
//! attestation commission reads: professional development courses completed and results of
//! professional competitions, each with the key that attested it.
//! Not the quorum and majority checks (`zachetka-rules` refuses a decision without them, so every
//! decision here passed them) and not the voters' persons: votes show the voting key.
//!
//! Terms follow the region profile (`region::AttestationTerms::valid_until`, the rules'
//! `CategoryHeld` term): a category granted before `unlimited_since` and every fitness check hold
//! for `term_years`; a category granted since has no end date. "In force" is judged on "today",
//! the latest local date of any entry, as the rules judge it.
//!
//! The view's scope is the institution where the teacher works now: the institution named by
//! the teacher's record of the latest date (an application's submission, a course's completion, a
//! competition's date; of one date, the later in the log), since each of these names the school
//! the teacher worked at on that date. Staff of that school read the whole view (the teacher's
//! history follows them, as a category granted at a former school is held at the new one); staff
//! of a former school no longer do (review s12, C1: the view followed the latest application even
//! after a later record named another school, and the new school was refused).

use crate::model::{self, expect_len, segment, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::shared::{local_date, EntryRef};
use crate::region::RegionProfile;
use crate::time::{self, Days};
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NAME: &str = "teachers";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Vote {
    voter: String,
    vote: String,
    at: EntryRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decision {
    decision: String,
    decided_on: String,
    at: EntryRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Application {
    commission: String,
    institution: String,
    category: String,
    submitted_at: String,
    at: EntryRef,
    votes: Vec<Vote>,
    decision: Option<Decision>,
}

/// A staff record (a course or a competition result) as attested.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StaffRecord {
    record_id: String,
    institution: String,
    /// `course` or `competition`.
    title: String,
    /// The course's provider and hours, or the competition's level and result.
    detail: BTreeMap<String, Detail>,
    date: String,
    issuer: String,
    at: EntryRef,
}

/// A field of a staff record's detail (no `serde_json::Value` in postcard state).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Detail {
    Int(i64),
    Text(String),
}

impl Detail {
    fn json(&self) -> Value {
        match self {
            Detail::Int(i) => json!(i),
            Detail::Text(t) => json!(t),
        }
    }
}

impl StaffRecord {
    fn json(&self, title_field: &str, date_field: &str) -> Value {
        let mut v = json!({"record_id": self.record_id, "institution": self.institution, title_field: self.title,
            date_field: self.date, "issuer": self.issuer, "event": self.at.event, "seq": self.at.seq});
        for (k, x) in &self.detail {
            v[k] = x.json();
        }
        v
    }
}

/// Where a teacher worked on a date, as one of their records says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Workplace {
    on: Days,
    seq: u64,
    institution: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Teacher {
    applications: BTreeMap<String, Application>,
    courses: Vec<StaffRecord>,
    competitions: Vec<StaffRecord>,
    /// Where the teacher works now: the workplace of their record of the latest date (of one
    /// date, the later in the log). It scopes the view.
    current: Option<Workplace>,
}

impl Teacher {
    /// Notes that the teacher worked at `institution` on `on` (a record at `seq`).
    fn worked_at(&mut self, on: Option<Days>, seq: u64, institution: &str) {
        let on = on.unwrap_or(Days::MIN);
        if self.current.as_ref().is_none_or(|c| (on, seq) >= (c.on, c.seq)) {
            self.current = Some(Workplace { on, seq, institution: institution.to_owned() });
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    today: Option<Days>,
    teachers: BTreeMap<String, Teacher>,
}

/// The `teachers` read model (region profile: `RegionProfile::region_default()`).
pub struct Teachers {
    profile: RegionProfile,
    state: State,
}

impl Default for Teachers {
    fn default() -> Self {
        Self { profile: RegionProfile::region_default(), state: State::default() }
    }
}

/// A granted category with its term.
struct Held<'a> {
    application: &'a str,
    category: &'a str,
    granted_on: Days,
    valid_until: Option<Days>,
    at: &'a EntryRef,
}

impl Held<'_> {
    fn in_force(&self, today: Days) -> bool {
        self.granted_on <= today && self.valid_until.is_none_or(|u| today < u)
    }

    fn json(&self, today: Days) -> Value {
        json!({
            "category": self.category,
            "granted_on": time::format_date(self.granted_on),
            "valid_until": self.valid_until.map(time::format_date),
            "in_force": self.in_force(today),
            "application": self.application,
            "event": self.at.event,
            "seq": self.at.seq,
        })
    }
}

impl ReadModel for Teachers {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 3: scoped to the institution of the latest record by date, not of the latest application.
        3
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        let local = local_date(fact, self.profile.utc_offset_minutes);
        if let Some(d) = local {
            self.state.today = Some(self.state.today.map_or(d, |t| t.max(d)));
        }
        let at = || EntryRef::of(fact);
        match fact.event {
            Event::AttestationApplicationSubmitted(d) => {
                let t = self.state.teachers.entry(fact.stream_id().to_owned()).or_default();
                if t.applications.contains_key(&d.application_id) {
                    return;
                }
                t.applications.insert(
                    d.application_id.clone(),
                    Application {
                        commission: d.commission.clone(),
                        institution: d.institution.clone(),
                        category: d.category.clone(),
                        submitted_at: fact.occurred_at.to_owned(),
                        at: at(),
                        votes: Vec::new(),
                        decision: None,
                    },
                );
                t.worked_at(local, fact.seq, &d.institution);
            }
            Event::StaffCourseCompleted(d) => {
                let t = self.state.teachers.entry(fact.stream_id().to_owned()).or_default();
                t.worked_at(time::parse_date(&d.completed_on).or(local), fact.seq, &d.institution);
                t.courses.push(StaffRecord {
                    record_id: d.record_id.clone(),
                    institution: d.institution.clone(),
                    title: d.course.clone(),
                    detail: BTreeMap::from([
                        ("provider".to_owned(), Detail::Text(d.provider.clone())),
                        ("hours".to_owned(), Detail::Int(d.hours)),
                    ]),
                    date: d.completed_on.clone(),
                    issuer: fact.author.to_owned(),
                    at: at(),
                });
            }
            Event::StaffCompetitionResult(d) => {
                let t = self.state.teachers.entry(fact.stream_id().to_owned()).or_default();
                t.worked_at(time::parse_date(&d.date).or(local), fact.seq, &d.institution);
                t.competitions.push(StaffRecord {
                    record_id: d.record_id.clone(),
                    institution: d.institution.clone(),
                    title: d.competition.clone(),
                    detail: BTreeMap::from([
                        ("level".to_owned(), Detail::Text(d.level.clone())),
                        ("result".to_owned(), Detail::Text(d.result.clone())),
                    ]),
                    date: d.date.clone(),
                    issuer: fact.author.to_owned(),
                    at: at(),
                });
            }
            Event::VoteCast(d) => {
                if let Some(a) = self.application(fact.stream_id(), &d.application_id) {
                    a.votes.push(Vote { voter: fact.author.to_owned(), vote: d.vote.clone(), at: at() });
                }
            }
            Event::DecisionRecorded(d) => {
                if let Some(a) = self.application(fact.stream_id(), &d.application_id) {
                    if a.decision.is_none() {
                        a.decision =
                            Some(Decision { decision: d.decision.clone(), decided_on: d.decided_on.clone(), at: at() });
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
        self.state = model::decode_state(NAME, bytes)?;
        Ok(())
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        expect_len(path, 1, "<teacher>")?;
        let id = segment(path, 0, "a teacher id")?;
        let t = self
            .state
            .teachers
            .get(id)
            .ok_or_else(|| ViewError::NotFound(format!("teacher {id} has no attestation or staff records")))?;
        let institution = t.current.as_ref().map_or("", |c| c.institution.as_str()).to_owned();
        Ok(View { scope: Scope::Institution(institution.clone()), body: self.body(id, &institution, t) })
    }
}

impl Teachers {
    fn application(&mut self, teacher: &str, id: &str) -> Option<&mut Application> {
        self.state.teachers.get_mut(teacher)?.applications.get_mut(id)
    }

    fn body(&self, id: &str, institution: &str, t: &Teacher) -> Value {
        let terms = &self.profile.attestation;
        let today = self.state.today.unwrap_or(Days::MIN);
        let mut apps: Vec<(&String, &Application)> = t.applications.iter().collect();
        apps.sort_by_key(|(_, a)| a.at.seq);
        let mut held: Vec<Held> = apps
            .iter()
            .filter_map(|(aid, a)| {
                let d = a.decision.as_ref().filter(|d| d.decision == "granted")?;
                let on = time::parse_date(&d.decided_on)?;
                Some(Held {
                    application: aid,
                    category: &a.category,
                    granted_on: on,
                    valid_until: terms.valid_until(&a.category, on),
                    at: &d.at,
                })
            })
            .collect();
        held.sort_by_key(|h| h.at.seq);
        let (fitness, categories): (Vec<&Held>, Vec<&Held>) =
            held.iter().partition(|h| h.category == terms.fitness_check);
        // A teacher holds one qualification category: the highest, once in force, replaces a lower
        // one still in its term (the categories that require the highest are held beside it).
        let highest = categories.iter().any(|h| h.in_force(today) && h.category == terms.highest_category);
        let superseded = |h: &Held| {
            highest && h.category != terms.highest_category && !terms.requires_highest.iter().any(|c| c == h.category)
        };
        let current: Vec<Value> =
            categories.iter().filter(|h| h.in_force(today) && !superseded(h)).map(|h| h.json(today)).collect();
        let last_fitness = fitness.last();
        let due_on = last_fitness.and_then(|h| h.valid_until);
        let history: Vec<Value> = apps
            .iter()
            .map(|(aid, a)| {
                let votes: Vec<Value> = a
                    .votes
                    .iter()
                    .map(|v| json!({"voter": v.voter, "vote": v.vote, "event": v.at.event, "seq": v.at.seq}))
                    .collect();
                let granted = a.votes.iter().filter(|v| v.vote == "granted").count();
                let decision = a.decision.as_ref().map(|d| {
                    let until = (d.decision == "granted")
                        .then(|| time::parse_date(&d.decided_on).and_then(|on| terms.valid_until(&a.category, on)))
                        .flatten();
                    json!({"decision": d.decision, "decided_on": d.decided_on, "valid_until": until.map(time::format_date),
                           "event": d.at.event, "seq": d.at.seq})
                });
                json!({
                    "application": aid,
                    "category": a.category,
                    "commission": a.commission,
                    "institution": a.institution,
                    "submitted_at": a.submitted_at,
                    "event": a.at.event,
                    "seq": a.at.seq,
                    "votes": votes,
                    "votes_granted": granted,
                    "votes_refused": a.votes.len() - granted,
                    "decision": decision,
                })
            })
            .collect();
        let pending: Vec<&str> =
            apps.iter().filter(|(_, a)| a.decision.is_none()).map(|(aid, _)| aid.as_str()).collect();
        json!({
            "teacher": id,
            "institution": institution,
            "today": self.state.today.map(time::format_date),
            "current": current,
            "granted": categories.iter().map(|h| h.json(today)).collect::<Vec<_>>(),
            "fitness_check": {
                "last": last_fitness.map(|h| h.json(today)),
                "due_on": due_on.map(time::format_date),
                "overdue": due_on.is_some_and(|d| today >= d),
            },
            "pending": pending,
            "history": history,
            "professional_development": {
                "courses": t.courses.iter().map(|c| c.json("course", "completed_on")).collect::<Vec<_>>(),
                "hours_total": t.courses.iter().map(|c| match c.detail.get("hours") { Some(Detail::Int(h)) => *h, _ => 0 }).sum::<i64>(),
            },
            "competitions": t.competitions.iter().map(|c| c.json("competition", "date")).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::shared::testing::*;

    const TS: &str = "teacher/t-1";

    fn submit(seq: u64, app: &str, inst: &str, cat: &str, at: &str) -> Row {
        row(
            seq,
            TS,
            "attestation.application_submitted",
            at,
            json!({"application_id": app, "commission": "ak-1", "institution": inst, "category": cat}),
        )
    }

    fn vote(seq: u64, app: &str, member: u64, v: &str, at: &str) -> Row {
        row_by(
            seq,
            TS,
            "attestation.vote_cast",
            at,
            &format!("did:key:m{member}"),
            json!({"application_id": app, "vote": v}),
        )
    }

    fn history() -> Vec<Row> {
        let mut rows = vec![submit(0, "ap-1", "sch-1", "first", "2022-03-01T09:00:00Z")];
        rows.extend((1..=5).map(|m| vote(m, "ap-1", m, "granted", "2022-03-10T09:00:00Z")));
        rows.push(row(
            6,
            TS,
            "attestation.decision_recorded",
            "2022-03-10T12:00:00Z",
            json!({"application_id": "ap-1", "decision": "granted", "decided_on": "2022-03-10"}),
        ));
        rows.push(submit(7, "ap-2", "sch-1", "fitness", "2022-04-01T09:00:00Z"));
        rows.extend((8..=12).map(|s| vote(s, "ap-2", s, "granted", "2022-04-05T09:00:00Z")));
        rows.push(row(
            13,
            TS,
            "attestation.decision_recorded",
            "2022-04-05T12:00:00Z",
            json!({"application_id": "ap-2", "decision": "granted", "decided_on": "2022-04-05"}),
        ));
        rows.push(submit(14, "ap-3", "sch-2", "highest", "2024-01-10T09:00:00Z"));
        rows.extend(
            (15..=19).map(|s| vote(s, "ap-3", s, if s == 15 { "refused" } else { "granted" }, "2024-02-01T09:00:00Z")),
        );
        rows.push(row(
            20,
            TS,
            "attestation.decision_recorded",
            "2024-02-01T12:00:00Z",
            json!({"application_id": "ap-3", "decision": "granted", "decided_on": "2024-02-01"}),
        ));
        rows.push(submit(21, "ap-4", "sch-2", "methodist", "2027-05-01T09:00:00Z"));
        rows.push(row_by(22, TS, "staff.course_completed", "2026-12-01T09:00:00Z", "did:key:loiro",
            json!({"record_id": "c-1", "institution": "sch-2", "course": "ФГОС", "provider": "loiro", "hours": 72, "completed_on": "2026-11-30"})));
        rows.push(row_by(23, TS, "staff.course_completed", "2027-02-01T09:00:00Z", "did:key:loiro",
            json!({"record_id": "c-2", "institution": "sch-2", "course": "ИКТ", "provider": "loiro", "hours": 36, "completed_on": "2027-01-30"})));
        rows.push(row_by(24, TS, "staff.competition_result_recorded", "2027-03-01T09:00:00Z", "did:key:org",
            json!({"record_id": "k-1", "institution": "sch-2", "competition": "Учитель года", "level": "regional", "result": "laureate", "date": "2027-02-20"})));
        // A teacher with staff records only.
        rows.push(row_by(25, "teacher/t-7", "staff.course_completed", "2027-03-02T09:00:00Z", "did:key:loiro",
            json!({"record_id": "c-9", "institution": "sch-9", "course": "ФГОС", "provider": "loiro", "hours": 18, "completed_on": "2027-03-01"})));
        rows
    }

    /// Review s9, finding 15: `first` (granted 2022, in its term until 2027-03-10) and `highest`
    /// (granted 2024-02-01) were both listed as current. The highest replaces the lower one.
    #[test]
    fn the_highest_category_replaces_a_lower_one_still_in_its_term() {
        let rows = history();
        let upto = rows.iter().position(|r| r.seq == 20).map_or(rows.len(), |i| i + 1);
        let m: Teachers = build(&rows[..upto]);
        let b = m.view(&["t-1"]).unwrap().body;
        let current: Vec<&str> =
            b["current"].as_array().unwrap().iter().map(|c| c["category"].as_str().unwrap()).collect();
        assert_eq!(current, ["highest"], "{b:#}");
        let granted: Vec<&str> =
            b["granted"].as_array().unwrap().iter().map(|c| c["category"].as_str().unwrap()).collect();
        assert_eq!(granted, ["first", "highest"], "the history keeps both: {b:#}");
    }

    #[test]
    fn categories_terms_and_history() {
        let m: Teachers = build(&history());
        let v = m.view(&["t-1"]).unwrap();
        assert_eq!(v.scope, Scope::Institution("sch-2".into()));
        let b = v.body;
        assert_eq!(b["today"], json!("2027-05-01"));
        // ap-1 (first, 2022-03-10) ran out on 2027-03-10: before 1 Sep 2023, a 5-year term.
        assert_eq!(
            b["granted"][0],
            json!({"category": "first", "granted_on": "2022-03-10", "valid_until": "2027-03-10", "in_force": false,
                   "application": "ap-1", "event": "e6", "seq": 6})
        );
        // ap-3 (highest, 2024-02-01): granted since 1 Sep 2023, no end date.
        assert_eq!(
            b["current"],
            json!([{"category": "highest", "granted_on": "2024-02-01", "valid_until": null, "in_force": true,
                    "application": "ap-3", "event": "e20", "seq": 20}])
        );
        assert_eq!(b["fitness_check"]["due_on"], json!("2027-04-05"));
        assert_eq!(b["fitness_check"]["overdue"], json!(true));
        assert_eq!(b["fitness_check"]["last"]["application"], json!("ap-2"));
        assert_eq!(b["pending"], json!(["ap-4"]));
        let h = &b["history"];
        assert_eq!(h.as_array().unwrap().len(), 4);
        assert_eq!(h[2]["votes_granted"], json!(4));
        assert_eq!(h[2]["votes_refused"], json!(1));
        assert_eq!(h[2]["votes"][0], json!({"voter": "did:key:m15", "vote": "refused", "event": "e15", "seq": 15}));
        assert_eq!(
            h[2]["decision"],
            json!({"decision": "granted", "decided_on": "2024-02-01", "valid_until": null, "event": "e20", "seq": 20})
        );
        assert_eq!(h[3]["decision"], Value::Null);
        assert_eq!(b["professional_development"]["hours_total"], json!(108));
        assert_eq!(
            b["professional_development"]["courses"][0],
            json!({"record_id": "c-1", "institution": "sch-2", "course": "ФГОС", "provider": "loiro", "hours": 72,
                   "completed_on": "2026-11-30", "issuer": "did:key:loiro", "event": "e22", "seq": 22})
        );
        assert_eq!(
            b["competitions"],
            json!([{"record_id": "k-1", "institution": "sch-2", "competition": "Учитель года", "level": "regional",
                    "result": "laureate", "date": "2027-02-20", "issuer": "did:key:org", "event": "e24", "seq": 24}])
        );
        let only_staff = m.view(&["t-7"]).unwrap();
        assert_eq!(only_staff.scope, Scope::Institution("sch-9".into()));
        assert_eq!(only_staff.body["professional_development"]["hours_total"], json!(18));
        assert_eq!(only_staff.body["history"], json!([]));
        assert!(matches!(m.view(&["t-9"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["t-1", "x"]), Err(ViewError::BadPath(_))));
    }

    /// Review s12, C1: the view followed the latest application (sch-1) although a later course
    /// names sch-2, where the teacher works now; a record dated before it, logged after, does not
    /// move the view back.
    #[test]
    fn the_view_is_scoped_to_the_school_of_the_latest_record_by_date() {
        let course = |seq: u64, id: &str, inst: &str, on: &str| {
            row_by(
                seq,
                TS,
                "staff.course_completed",
                "2027-09-01T09:00:00Z",
                "did:key:loiro",
                json!({"record_id": id, "institution": inst, "course": "ФГОС", "provider": "loiro", "hours": 36, "completed_on": on}),
            )
        };
        let mut rows = vec![submit(0, "ap-1", "sch-1", "first", "2026-03-01T09:00:00Z")];
        let m: Teachers = build(&rows);
        assert_eq!(m.view(&["t-1"]).unwrap().scope, Scope::Institution("sch-1".into()));
        rows.push(course(1, "c-1", "sch-2", "2027-08-30"));
        let m: Teachers = build(&rows);
        let v = m.view(&["t-1"]).unwrap();
        assert_eq!(v.scope, Scope::Institution("sch-2".into()));
        assert_eq!(v.body["institution"], json!("sch-2"));
        assert_eq!(v.body["history"][0]["institution"], json!("sch-1"), "the history follows the teacher");
        rows.push(course(2, "c-0", "sch-1", "2026-05-01"));
        let m: Teachers = build(&rows);
        assert_eq!(
            m.view(&["t-1"]).unwrap().scope,
            Scope::Institution("sch-2".into()),
            "an older record, logged later"
        );
    }

    #[test]
    fn deterministic() {
        check_determinism::<Teachers>(&history());
    }
}
