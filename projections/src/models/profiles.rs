//! The learner profile (цифровой профиль): one learner's lifelong record, kindergarten to
//! university, across every stream that concerns them (`concerns::Concerns` decides which):
//! the kindergarten queue application and what became of it, the 1st-grade application and the
//! order that enrolled them, a summary of the school journal (institutions, classes, dates and
//! academic years seen) and of college or university groups, promotions and final attestation,
//! documents, achievements (revoked ones shown as revoked), transfers and additional education,
//! the contingent (admissions, classes, leaving, academic leave), recommendations offered and
//! access to digital content.
//! Each item links to its entry (seq, event id, stream, type).
//! Not the marks themselves (those are `diaries` and `record-books`): the profile holds per
//! learner a short summary per item and counts per class, so it stays small beside them.

use super::common::{EventId, Keyed, Sym, Symbols};
use super::concerns::Concerns;
use crate::lazy::Lazy;
use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::vocabulary::{Event, StreamKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const NAME: &str = "profiles";
const SHAPE: &str = "profiles/<learner>";

/// One value of an item's summary, as the event gave it: an integer, a string the profiles
/// repeat (institutions, classes, kinds, dates: interned), or one they do not (ids, numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Detail {
    Int(i64),
    Text(String),
    Sym(Sym),
}

/// One entry in the profile: where it is and a short summary of what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    seq: u64,
    event: EventId,
    /// The entry's stream when it is not the learner's own (`queue/kg/..`, `institution/..`).
    stream: Option<Sym>,
    event_type: Sym,
    /// Field name -> value, in the order `summary` lists them.
    summary: Vec<(Sym, Detail)>,
    /// The legacy record an imported entry comes from (`data.migrated_from`): (system, record).
    imported: Option<Box<(String, String)>>,
    /// The signer, the entry's `occurred_at` (nanoseconds; `i64::MIN` when it is no instant)
    /// and `recorded_at` (seconds): what a later revocation of the key is judged against.
    author: Sym,
    occurred: i64,
    recorded: i64,
    /// Set when the key that signed it was revoked (or rotated) by a later entry with an
    /// `effective_at` at or before this entry's `occurred_at` or `recorded_at`: (the
    /// revocation's seq, its `effective_at`). The audit warns of the same entries.
    signed_after_revocation: Option<Box<(u64, String)>>,
}

impl Item {
    /// The text value of a summary field.
    fn text<'a>(&'a self, syms: &'a Symbols, key: &str) -> Option<&'a str> {
        self.summary.iter().find_map(|(k, v)| match v {
            Detail::Text(t) if syms.name(*k) == key => Some(t.as_str()),
            Detail::Sym(t) if syms.name(*k) == key => Some(syms.name(*t)),
            _ => None,
        })
    }
}

/// A class (or a college group) the learner has records in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    first_seq: u64,
    last_seq: u64,
    records: u64,
    first_date: Option<Sym>,
    last_date: Option<Sym>,
    /// Academic years named by the school records (a college group: the terms), ascending.
    years: Vec<i64>,
}

impl Seen {
    fn record(&mut self, syms: &mut Symbols, seq: u64, date: Option<&str>, year: Option<i64>) {
        if self.records == 0 {
            self.first_seq = seq;
        }
        self.records += 1;
        self.last_seq = seq;
        if let Some(date) = date {
            let earlier = self.first_date.is_none_or(|d| date < syms.name(d));
            let later = self.last_date.is_none_or(|d| date > syms.name(d));
            if earlier || later {
                let d = syms.intern(date);
                if earlier {
                    self.first_date = Some(d);
                }
                if later {
                    self.last_date = Some(d);
                }
            }
        }
        // A record without an academic year of its own (a mark, an attendance mark) counts in
        // the year its date falls in: a class's years are known from its first mark on.
        if let Some(y) = year.or_else(|| date.and_then(crate::models::common::academic_year_of_date)) {
            if let Err(at) = self.years.binary_search(&y) {
                self.years.insert(at, y);
            }
        }
    }
}

/// A `Seen` in one class (or group) of one institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SeenAt {
    institution: Sym,
    unit: Sym,
    seen: Seen,
}

/// The `Seen` of (institution, unit) in `list`, added empty on its first record.
fn seen_at(list: &mut Vec<SeenAt>, institution: Sym, unit: Sym) -> &mut Seen {
    let at = list.iter().position(|s| s.institution == institution && s.unit == unit).unwrap_or_else(|| {
        list.push(SeenAt { institution, unit, seen: Seen::default() });
        list.len() - 1
    });
    &mut list[at].seen
}

/// A learner's profile; classes and groups in order of first record (views sort them by name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Profile {
    items: Vec<Item>,
    /// (institution, class) -> what the journal holds there.
    school: Vec<SeenAt>,
    /// (institution, group) -> course results, exams and credits there.
    college: Vec<SeenAt>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    concerns: Concerns,
    /// Streams, event types, summary field names, and the values the summaries repeat.
    symbols: Symbols,
    /// Learner id -> their profile.
    learners: Keyed<Lazy<Profile>>,
}

/// The `profiles` read model.
#[derive(Debug, Default)]
pub struct Profiles {
    state: State,
}

/// A summary value before it is kept: borrowed from the event where it can be.
enum Val<'e> {
    Int(i64),
    Str(&'e str),
    Owned(String),
}

fn text<'e>(k: &'static str, v: &'e str) -> (&'static str, Val<'e>) {
    (k, Val::Str(v))
}

fn int(k: &'static str, v: i64) -> (&'static str, Val<'static>) {
    (k, Val::Int(v))
}

/// Summary fields whose values are ids or numbers of one record (kept as text); every other
/// text field repeats across profiles (institutions, classes, kinds, levels, dates) and is
/// interned.
const UNIQUE: &[&str] = &[
    "application_id",
    "number",
    "claim_id",
    "offer_id",
    "order_id",
    "order_ref",
    "certificate_id",
    "achievement_id",
    "recommendation_id",
    "contest_ref",
    "preferred",
    "reason",
];

/// The summary an item keeps of its event; `None` for events the profile only counts (journal
/// and college records) or does not show.
fn summary(event: &Event) -> Option<Vec<(&'static str, Val<'_>)>> {
    use Event as E;
    fn opt<'e>(k: &'static str, v: &'e Option<String>) -> Option<(&'static str, Val<'e>)> {
        v.as_ref().map(|v| text(k, v))
    }
    Some(match event {
        E::QueueApplicationSubmitted(d) => vec![
            text("application_id", &d.application_id),
            text("number", &d.number),
            text("desired_date", &d.desired_date),
            ("preferred", Val::Owned(d.preferred.join(","))),
            text("group_type", &d.group_type),
        ],
        E::BenefitClaimed(d) => vec![
            text("application_id", &d.application_id),
            text("claim_id", &d.claim_id),
            text("category", &d.category),
            text("recheck_on", &d.recheck_on),
        ],
        E::BenefitConfirmed(d) => vec![text("application_id", &d.application_id), text("claim_id", &d.claim_id)],
        E::BenefitRejected(d) => {
            vec![text("application_id", &d.application_id), text("claim_id", &d.claim_id), text("reason", &d.reason)]
        }
        E::SiblingLinked(d) => {
            vec![text("application_id", &d.application_id), text("kindergarten", &d.kindergarten)]
        }
        E::QueueApplicationWithdrawn(d) => vec![text("application_id", &d.application_id), text("reason", &d.reason)],
        E::PlaceOffered(d) => vec![
            text("offer_id", &d.offer_id),
            text("application_id", &d.application_id),
            text("kindergarten", &d.kindergarten),
        ],
        E::OfferAccepted(d) => vec![text("offer_id", &d.offer_id)],
        E::OfferRefused(d) => vec![text("offer_id", &d.offer_id), text("reason", &d.reason)],
        E::AdmissionRefused(d) => vec![
            text("application_id", &d.application_id),
            text("kindergarten", &d.kindergarten),
            text("reason", &d.reason),
        ],
        E::KindergartenEnrolled(d) => vec![
            text("application_id", &d.application_id),
            text("kindergarten", &d.kindergarten),
            text("order_ref", &d.order_ref),
        ],
        E::KindergartenTransferred(d) => vec![
            text("application_id", &d.application_id),
            text("from_kindergarten", &d.from_kindergarten),
            text("to_kindergarten", &d.to_kindergarten),
        ],
        E::FirstGradeApplicationSubmitted(d) => vec![
            text("application_id", &d.application_id),
            int("target_year", d.target_year),
            int("window", d.window),
            text("basis", &d.basis),
        ],
        E::EnrolmentOrderIssued(d) => {
            vec![text("order_id", &d.order_id), int("target_year", d.target_year), text("order_date", &d.order_date)]
        }
        E::Promoted(d) => vec![
            text("institution", &d.institution),
            text("from_class", &d.from_class),
            text("to_class", &d.to_class),
            int("academic_year", d.academic_year),
            text("basis", &d.basis),
        ],
        E::FinalAttestationRecorded(d) => vec![
            text("institution", &d.institution),
            text("exam", &d.exam),
            text("subject", &d.subject),
            int("academic_year", d.academic_year),
            int("score", d.score),
        ],
        E::CertificateIssued(d) => vec![
            text("institution", &d.institution),
            text("level", &d.level),
            text("number", &d.number),
            text("issued_on", &d.issued_on),
        ],
        E::DiplomaIssued(d) => vec![
            text("institution", &d.institution),
            text("level", &d.level),
            text("number", &d.number),
            text("issued_on", &d.issued_on),
        ],
        E::AdditionalCertificateIssued(d) => {
            vec![text("certificate_id", &d.certificate_id), text("institution", &d.institution), int("year", d.year)]
        }
        E::ProgramEnrolled(d) => [
            Some(text("institution", &d.institution)),
            Some(text("program_id", &d.program_id)),
            opt("certificate_id", &d.certificate_id),
        ]
        .into_iter()
        .flatten()
        .collect(),
        E::ProgramLeft(d) => {
            vec![text("institution", &d.institution), text("program_id", &d.program_id), text("reason", &d.reason)]
        }
        E::AchievementAttested(d) => [
            Some(text("achievement_id", &d.achievement_id)),
            Some(text("kind", &d.kind)),
            Some(text("level", &d.level)),
            Some(text("date", &d.date)),
            Some(text("result", &d.result)),
            opt("contest_ref", &d.contest_ref),
        ]
        .into_iter()
        .flatten()
        .collect(),
        E::AchievementRevoked(d) => vec![text("achievement_id", &d.achievement_id), text("reason", &d.reason)],
        E::LearnerTransferred(d) => [
            Some(text("from_institution", &d.from_institution)),
            Some(text("to_institution", &d.to_institution)),
            opt("to_region", &d.to_region),
            Some(text("transferred_on", &d.transferred_on)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        E::ContingentAdmitted(d) => [
            Some(text("institution", &d.institution)),
            Some(text("class", &d.class)),
            Some(int("academic_year", d.academic_year)),
            Some(text("admitted_on", &d.admitted_on)),
            Some(text("order_ref", &d.order_ref)),
            opt("program_id", &d.program_id),
        ]
        .into_iter()
        .flatten()
        .collect(),
        E::ClassAssigned(d) => vec![
            text("institution", &d.institution),
            text("class", &d.class),
            int("academic_year", d.academic_year),
            text("assigned_on", &d.assigned_on),
        ],
        E::ContingentExpelled(d) => {
            vec![text("institution", &d.institution), text("expelled_on", &d.expelled_on), text("reason", &d.reason)]
        }
        E::ContingentGraduated(d) => vec![text("institution", &d.institution), text("graduated_on", &d.graduated_on)],
        E::AcademicLeaveGranted(d) => {
            vec![text("institution", &d.institution), text("starts_on", &d.starts_on), text("ends_on", &d.ends_on)]
        }
        E::RecommendationOffered(d) => vec![
            text("recommendation_id", &d.recommendation_id),
            text("institution", &d.institution),
            text("kind", &d.kind),
            text("offered_on", &d.offered_on),
        ],
        E::LearnerContentAccessGranted(d) => {
            vec![text("institution", &d.institution), text("service", &d.service), text("granted_on", &d.granted_on)]
        }
        _ => return None,
    })
}

/// Where a school journal record counts: (institution, class, date, academic year).
fn school_record(event: &Event) -> Option<(&str, &str, Option<&str>, Option<i64>)> {
    use Event as E;
    Some(match event {
        E::GradeRecorded(d) => (&d.institution, &d.class, Some(&d.lesson_date), None),
        E::AttendanceMarked(d) => (&d.institution, &d.class, Some(&d.lesson_date), None),
        E::RecordCorrected(d) => (&d.institution, &d.class, None, None),
        E::TermGradeSet(d) => (&d.institution, &d.class, None, Some(d.academic_year)),
        E::YearGradeSet(d) => (&d.institution, &d.class, None, Some(d.academic_year)),
        E::IntermediateAttestationRecorded(d) => (&d.institution, &d.class, None, Some(d.academic_year)),
        E::AcademicDebtOpened(d) => (&d.institution, &d.class, Some(&d.opened_on), Some(d.academic_year)),
        E::RetakeRecorded(d) => (&d.institution, &d.class, Some(&d.held_on), None),
        E::Promoted(d) => (&d.institution, &d.from_class, None, Some(d.academic_year)),
        _ => return None,
    })
}

impl ReadModel for Profiles {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 2: items carry `imported` (a migration\'s source system and record).
        // 3: the contingent and digital records in their own sections.
        // 4: classes and groups in flat lists, repeated summary values and dates interned;
        //    event ids as byte strings.
        // 5: a class's academic years also from its records' dates (marks, attendance).
        // 6: items carry their signer and time, and are marked when signed at or after the
        //    key's effective revocation.
        // 7: each profile as its own byte string, decoded when first needed (`Lazy`).
        7
    }

    fn apply(&mut self, f: &Fact<'_>) {
        let State { concerns, symbols, learners } = &mut self.state;
        concerns.apply(f);
        mark_signed_after_revocation(f, symbols, learners);
        let school = school_record(f.event);
        let college = match f.event {
            Event::CourseResultRecorded(d) => Some((&d.institution, &d.group, d.term)),
            Event::ExamRecorded(d) => Some((&d.institution, &d.group, d.term)),
            _ => None,
        };
        let summary = summary(f.event);
        for learner in concerns.concerned(f) {
            let own = StreamKind::Learner.id_of(f.stream) == Some(learner);
            let profile = learners.slot(learner).get_mut();
            if let Some((institution, class, date, year)) = school {
                let (i, c) = (symbols.intern(institution), symbols.intern(class));
                seen_at(&mut profile.school, i, c).record(symbols, f.seq, date, year);
            }
            if let Some((institution, group, term)) = college {
                let (i, g) = (symbols.intern(institution), symbols.intern(group));
                seen_at(&mut profile.college, i, g).record(symbols, f.seq, None, Some(term));
            }
            if let Some(summary) = &summary {
                let summary = summary
                    .iter()
                    .map(|(k, v)| {
                        let detail = match v {
                            Val::Int(i) => Detail::Int(*i),
                            Val::Str(t) if UNIQUE.contains(k) => Detail::Text((*t).to_owned()),
                            Val::Str(t) => Detail::Sym(symbols.intern(t)),
                            Val::Owned(t) => Detail::Text(t.clone()),
                        };
                        (symbols.intern(k), detail)
                    })
                    .collect();
                profile.items.push(Item {
                    seq: f.seq,
                    event: EventId::of(f.id),
                    stream: (!own).then(|| symbols.intern(f.stream)),
                    event_type: symbols.intern(f.event_type),
                    summary,
                    imported: f.imported.map(|m| Box::new((m.system.clone(), m.record.clone()))),
                    author: symbols.intern(f.author),
                    occurred: occurred_nanos(f.occurred_at),
                    recorded: f.recorded_at,
                    signed_after_revocation: None,
                });
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(&self.state)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut state: State = model::decode_state(NAME, bytes)?;
        state.symbols.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        state.learners.reindex().map_err(|reason| DecodeError { model: NAME, reason })?;
        self.state = state;
        Ok(())
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let learner = model::segment(path, 0, "a learner id")?;
        model::expect_len(path, 1, SHAPE)?;
        let profile = self
            .state
            .learners
            .get(learner)
            .map(Lazy::get)
            .ok_or_else(|| ViewError::NotFound(format!("no profile of learner {learner}")))?;
        Ok(View {
            scope: Scope::Learner(learner.to_owned()),
            body: profile_json(&self.state.symbols, learner, profile),
        })
    }
}

/// An `occurred_at` in nanoseconds, `i64::MIN` when it is no instant.
fn occurred_nanos(occurred_at: &str) -> i64 {
    zachetka_formats::time::parse_instant(occurred_at).map_or(i64::MIN, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// A key revoked (or rotated) from an `effective_at` (default: the event's `occurred_at`, as the
/// rules read it): every item it signed before this entry whose `occurred_at` is at or after
/// that instant, or, for an explicit `effective_at`, whose `recorded_at` is, is marked (the
/// audit's `signed_after_effective_revocation` warnings: `src/audit/revocations.rs`).
fn mark_signed_after_revocation(f: &Fact<'_>, symbols: &Symbols, learners: &mut Keyed<Lazy<Profile>>) {
    let (key, effective_at) = match f.event {
        Event::KeysRevoked(d) => (&d.key, &d.effective_at),
        Event::KeysRotated(d) => (&d.old_key, &d.effective_at),
        _ => return,
    };
    let Some(author) = symbols.get(key) else { return };
    let effective_text = effective_at.as_deref().unwrap_or(f.occurred_at);
    let Some(effective) = zachetka_formats::time::parse_instant(effective_text) else { return };
    let explicit = effective_at.is_some();
    let after = |i: &Item| {
        i128::from(i.occurred) >= effective || (explicit && i128::from(i.recorded) * 1_000_000_000 >= effective)
    };
    // Every profile is decoded for good here (the first revocation after an open from a snapshot
    // pays what an eager load would have; revocations are a few a day).
    for profile in learners.values_mut().iter_mut().map(Lazy::get_mut) {
        for item in profile.items.iter_mut().filter(|i| i.author == author && after(i)) {
            if item.signed_after_revocation.is_none() {
                item.signed_after_revocation = Some(Box::new((f.seq, effective_text.to_owned())));
            }
        }
    }
}

/// The section of the profile an item belongs to.
fn section(event_type: &str) -> &'static str {
    match event_type {
        "journal.certificate_issued" | "college.diploma_issued" => "documents",
        "portfolio.achievement_attested" | "portfolio.achievement_revoked" => "achievements",
        "learner.transferred" => "transfers",
        t if t.starts_with("queue.") => "kindergarten",
        t if t.starts_with("enrolment.") => "first_grade",
        t if t.starts_with("additional.") => "additional_education",
        t if t.starts_with("contingent.") => "contingent",
        t if t.starts_with("digital.") => "digital",
        _ => "school",
    }
}

fn item_json(syms: &Symbols, learner: &str, item: &Item) -> Value {
    let summary: Map<String, Value> = item
        .summary
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Detail::Int(i) => json!(i),
                Detail::Text(s) => json!(s),
                Detail::Sym(s) => json!(syms.name(*s)),
            };
            (syms.name(*k).to_owned(), v)
        })
        .collect();
    let stream = match item.stream {
        Some(s) => syms.name(s).to_owned(),
        None => format!("{}{learner}", StreamKind::Learner.prefix()),
    };
    let mut v = json!({"seq": item.seq, "event": item.event.to_string(), "stream": stream,
                       "type": syms.name(item.event_type), "summary": summary});
    if let Some(imported) = &item.imported {
        let (system, record) = &**imported;
        v["imported"] = json!({"system": system, "record": record});
    }
    if let Some(revoked) = &item.signed_after_revocation {
        let (seq, effective_at) = &**revoked;
        v["signed_after_revocation"] = json!({"revocation_seq": seq, "effective_at": effective_at});
    }
    v
}

fn seen_json(syms: &Symbols, key: &str, years: &str, s: &SeenAt) -> Value {
    let (at, seen) = ((syms.name(s.institution), syms.name(s.unit)), &s.seen);
    let date = |d: Option<Sym>| d.map(|d| syms.name(d));
    json!({"institution": at.0, key: at.1, "records": seen.records, "first_seq": seen.first_seq,
           "last_seq": seen.last_seq, "first_date": date(seen.first_date), "last_date": date(seen.last_date),
           years: seen.years})
}

/// Classes (or groups) by institution and name, as views list them.
fn by_name<'p>(syms: &Symbols, list: &'p [SeenAt]) -> Vec<&'p SeenAt> {
    let mut sorted: Vec<&SeenAt> = list.iter().collect();
    sorted.sort_by(|a, b| {
        (syms.name(a.institution), syms.name(a.unit)).cmp(&(syms.name(b.institution), syms.name(b.unit)))
    });
    sorted
}

const ATTESTED: &str = "portfolio.achievement_attested";
const REVOKED: &str = "portfolio.achievement_revoked";

fn profile_json(syms: &Symbols, learner: &str, p: &Profile) -> Value {
    let mut sections: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    // Achievement id -> (attestation, revocation), in order of first mention. A revocation
    // whose attestation is not in this log (a migration gap) still shows, with no attestation.
    let mut achievements: Vec<(&str, Option<&Item>, Option<&Item>)> = Vec::new();
    for item in &p.items {
        let event_type = syms.name(item.event_type);
        if event_type == ATTESTED || event_type == REVOKED {
            let id = item.text(syms, "achievement_id").unwrap_or("");
            let at = match achievements.iter().position(|(a, _, _)| *a == id) {
                Some(at) => at,
                None => {
                    achievements.push((id, None, None));
                    achievements.len() - 1
                }
            };
            let entry = &mut achievements[at];
            if event_type == ATTESTED {
                entry.1 = entry.1.or(Some(item));
            } else {
                entry.2 = entry.2.or(Some(item));
            }
        } else {
            sections.entry(section(event_type)).or_default().push(item_json(syms, learner, item));
        }
    }
    let item = |i: Option<&Item>| i.map_or(Value::Null, |i| item_json(syms, learner, i));
    let achievements: Vec<Value> = achievements
        .into_iter()
        .map(|(id, attested, revoked)| {
            json!({"achievement_id": id, "attested": item(attested), "revoked": item(revoked)})
        })
        .collect();
    let classes: Vec<Value> =
        by_name(syms, &p.school).into_iter().map(|s| seen_json(syms, "class", "academic_years", s)).collect();
    let groups: Vec<Value> =
        by_name(syms, &p.college).into_iter().map(|s| seen_json(syms, "group", "terms", s)).collect();
    let mut take = |name: &str| Value::Array(sections.remove(name).unwrap_or_default());
    json!({
        "learner": learner,
        "kindergarten": take("kindergarten"),
        "first_grade": take("first_grade"),
        "school": {"classes": classes, "events": take("school")},
        "college": {"groups": groups},
        "documents": take("documents"),
        "achievements": achievements,
        "transfers": take("transfers"),
        "additional_education": take("additional_education"),
        "contingent": take("contingent"),
        "digital": take("digital"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testkit::{check_reload, History};

    const L: &str = "learner/47-1";

    fn history() -> (History, Vec<String>) {
        let mut h = History::default();
        let q = "queue/kg/terr-1";
        let s = "institution/sch-1";
        let ids = vec![
            h.push(q, "queue.application_submitted", json!({"application_id": "a-1", "number": "N-1", "learner": "47-1",
                "birth_month": "2023-02", "desired_date": "2026-09-01", "preferred": ["kg-1", "kg-2"], "group_type": "general"})), // 0
            h.push(q, "queue.application_submitted", json!({"application_id": "a-2", "number": "N-2", "learner": "47-2",
                "birth_month": "2023-03", "desired_date": "2026-09-01", "preferred": ["kg-1"], "group_type": "general"})), // 1
            h.push(q, "queue.place_offered", json!({"offer_id": "o-1", "application_id": "a-1", "kindergarten": "kg-2"})), // 2
            h.push(q, "queue.offer_accepted", json!({"offer_id": "o-1"})), // 3
            h.push(q, "queue.enrolled", json!({"application_id": "a-1", "kindergarten": "kg-2", "order_ref": "ord-5"})), // 4
            h.push(s, "enrolment.application_submitted", json!({"application_id": "fa-1", "learner": "47-1",
                "target_year": 2030, "window": 1, "basis": "territory", "birth_month": "2023-02"})), // 5
            h.push(s, "enrolment.order_issued", json!({"order_id": "ord-1", "target_year": 2030,
                "applications": ["fa-1"], "order_date": "2030-07-02"})), // 6
            h.push(L, "journal.grade_recorded", json!({"institution": "sch-1", "class": "2А", "subject": "math",
                "mark": 5, "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": "2031-10-01"})), // 7
            h.push(L, "journal.attendance_marked", json!({"institution": "sch-1", "class": "2А",
                "lesson_date": "2031-09-15", "code": "Н"})), // 8
            h.push(L, "journal.year_grade_set", json!({"institution": "sch-1", "class": "2А", "subject": "math",
                "academic_year": 2031, "mark": 5, "scale": "five_point"})), // 9
            h.push(L, "portfolio.achievement_attested", json!({"achievement_id": "ach-1", "kind": "olympiad",
                "level": "regional", "date": "2032-03-01", "result": "winner"})), // 10
            h.push(L, "portfolio.achievement_attested", json!({"achievement_id": "ach-2", "kind": "gto",
                "level": "federal", "date": "2032-04-01", "result": "gold"})), // 11
            h.push(L, "portfolio.achievement_revoked", json!({"achievement_id": "ach-1", "reason": "annulled by organiser"})), // 12
            h.push(L, "learner.transferred", json!({"from_institution": "sch-1", "to_institution": "sch-2",
                "transferred_on": "2032-09-01"})), // 13
            h.push(L, "additional.enrolled", json!({"institution": "club-1", "program_id": "chess"})), // 14
            h.push(L, "college.exam_recorded", json!({"institution": "col-1", "group": "ИС-41", "course": "db",
                "term": 2, "form": "exam", "mark": "хорошо", "scale": "four_level"})), // 15
            h.push(L, "college.diploma_issued", json!({"institution": "col-1", "level": "secondary_vocational",
                "number": "D-1", "issued_on": "2042-06-30"})), // 16
            h.push(L, "contingent.admitted", json!({"institution": "sch-2", "class": "3Б", "academic_year": 2032,
                "admitted_on": "2032-09-02", "order_ref": "pr-7"})), // 17
            h.push(L, "digital.recommendation_offered", json!({"recommendation_id": "r-1", "institution": "sch-2",
                "kind": "individual_trajectory", "offered_on": "2032-10-01"})), // 18
        ];
        (h, ids)
    }

    /// Review s9, finding 15: a live learner with marks but no term grade yet showed a class
    /// with `academic_years: []`. A class's years come from its records' dates too.
    #[test]
    fn a_class_with_marks_only_shows_the_academic_years_of_their_dates() {
        let mut h = History::default();
        let grade = |date: &str| {
            json!({"institution": "sch-1", "class": "5А", "subject": "math", "mark": 4, "scale": "five_point",
                   "weight": 3, "kind": "classwork", "lesson_date": date})
        };
        h.push(L, "journal.grade_recorded", grade("2026-10-05"));
        h.push(
            L,
            "journal.attendance_marked",
            json!({"institution": "sch-1", "class": "5А",
            "lesson_date": "2027-08-31", "code": "Н"}),
        );
        h.push(L, "journal.grade_recorded", grade("2027-09-01"));
        let mut m = Profiles::default();
        h.fold(&mut m);
        let b = m.view(&["47-1"]).unwrap().body;
        assert_eq!(b["school"]["classes"][0]["academic_years"], json!([2026, 2027]), "{b:#}");
        check_reload(&h, || Box::new(Profiles::default()));
    }

    #[test]
    fn profile_gathers_every_stream_that_concerns_the_learner() {
        let (h, ids) = history();
        let mut m = Profiles::default();
        h.fold(&mut m);
        let v = m.view(&["47-1"]).unwrap();
        assert_eq!(v.scope, Scope::Learner("47-1".into()));
        let b = &v.body;
        let seqs = |section: &Value| -> Vec<u64> {
            section.as_array().unwrap().iter().map(|i| i["seq"].as_u64().unwrap()).collect()
        };
        // Queue entries of 47-2's application do not appear.
        assert_eq!(seqs(&b["kindergarten"]), vec![0, 2, 3, 4]);
        assert_eq!(
            b["kindergarten"][0],
            json!({"seq": 0, "event": ids[0], "stream": "queue/kg/terr-1", "type": "queue.application_submitted",
                   "summary": {"application_id": "a-1", "number": "N-1", "desired_date": "2026-09-01",
                               "preferred": "kg-1,kg-2", "group_type": "general"}})
        );
        assert_eq!(seqs(&b["first_grade"]), vec![5, 6]);
        assert_eq!(b["first_grade"][1]["stream"], "institution/sch-1");
        assert_eq!(
            b["school"]["classes"],
            json!([{"institution": "sch-1", "class": "2А", "records": 3, "first_seq": 7, "last_seq": 9,
                    "first_date": "2031-09-15", "last_date": "2031-10-01", "academic_years": [2031]}])
        );
        assert_eq!(b["college"]["groups"][0]["terms"], json!([2]));
        assert_eq!(seqs(&b["documents"]), vec![16]);
        assert_eq!(b["documents"][0]["stream"], "learner/47-1");
        let ach = b["achievements"].as_array().unwrap();
        assert_eq!(ach.len(), 2);
        assert_eq!(ach[0]["achievement_id"], "ach-1");
        assert_eq!(ach[0]["attested"]["event"], ids[10]);
        assert_eq!(ach[0]["attested"]["summary"]["result"], "winner");
        assert_eq!(ach[0]["revoked"]["event"], ids[12]);
        assert_eq!(ach[0]["revoked"]["summary"]["reason"], "annulled by organiser");
        assert_eq!(ach[1]["achievement_id"], "ach-2");
        assert_eq!(ach[1]["revoked"], Value::Null);
        assert_eq!(seqs(&b["transfers"]), vec![13]);
        assert_eq!(seqs(&b["additional_education"]), vec![14]);
        assert_eq!(
            b["contingent"],
            json!([{"seq": 17, "event": ids[17], "stream": "learner/47-1", "type": "contingent.admitted",
                    "summary": {"institution": "sch-2", "class": "3Б", "academic_year": 2032,
                                "admitted_on": "2032-09-02", "order_ref": "pr-7"}}])
        );
        assert_eq!(seqs(&b["digital"]), vec![18]);
        assert_eq!(b["digital"][0]["summary"]["kind"], "individual_trajectory");

        let other = m.view(&["47-2"]).unwrap().body;
        assert_eq!(seqs(&other["kindergarten"]), vec![1]);
        assert_eq!(other["achievements"], json!([]));
    }

    /// Review s11, finding 4: a key revoked from an earlier `effective_at` ("compromised since")
    /// marks what it signed at or after that instant, written before the revocation; not what it
    /// signed before, nor another key's items.
    #[test]
    fn items_signed_after_their_keys_effective_revocation_are_marked() {
        let mut h = History::default();
        let (stolen, other) = ("did:key:z6MkStolen", "did:key:z6MkOther");
        let achievement = |id: &str| {
            json!({"achievement_id": id, "kind": "olympiad", "level": "regional", "date": "2026-11-20",
                   "result": "winner"})
        };
        h.push_by(stolen, "2026-11-20T10:00:00Z", L, "portfolio.achievement_attested", achievement("ach-1"));
        h.push_by(stolen, "2026-11-22T10:00:00Z", L, "portfolio.achievement_attested", achievement("ach-2"));
        h.push_by(other, "2026-11-22T10:00:00Z", L, "portfolio.achievement_attested", achievement("ach-3"));
        h.push_by(
            stolen,
            "2026-11-22T11:00:00Z",
            L,
            "learner.transferred",
            json!({"from_institution": "sch-1",
            "to_institution": "sch-2", "transferred_on": "2026-11-22"}),
        );
        // Signed in January, recorded (testkit: 2026-09-21) after its key's plain revocation was
        // signed (2026-09-01) but before it was recorded: not marked.
        let left = "did:key:z6MkLeft";
        let club = json!({"institution": "club-1", "program_id": "chess"});
        h.push_by(left, "2026-01-10T09:00:00Z", L, "additional.enrolled", club);
        h.push(
            "registry",
            "keys.revoked",
            json!({"key": stolen, "reason": "ключ скомпрометирован", "effective_at": "2026-11-21T00:00:00Z"}),
        );
        let plain = json!({"key": left, "reason": "уволен"});
        h.push_by("did:key:z6MkAdmin", "2026-09-01T00:00:00Z", "registry", "keys.revoked", plain);
        let mut m = Profiles::default();
        h.fold(&mut m);
        let b = m.view(&["47-1"]).unwrap().body;
        let mark = json!({"revocation_seq": 5, "effective_at": "2026-11-21T00:00:00Z"});
        let marks: Vec<&Value> =
            b["achievements"].as_array().unwrap().iter().map(|a| &a["attested"]["signed_after_revocation"]).collect();
        assert_eq!(marks, vec![&Value::Null, &mark, &Value::Null], "{b:#}");
        assert_eq!(b["transfers"][0]["signed_after_revocation"], mark);
        assert_eq!(b["additional_education"][0]["signed_after_revocation"], Value::Null, "{b:#}");
        check_reload(&h, || Box::new(Profiles::default()));
    }

    #[test]
    fn unknown_learners_and_bad_paths() {
        let (h, _) = history();
        let mut m = Profiles::default();
        h.fold(&mut m);
        assert_eq!(m.view(&["47-9"]), Err(ViewError::NotFound("no profile of learner 47-9".into())));
        assert_eq!(m.view(&["47-1", "x"]), Err(ViewError::BadPath(format!("expected {SHAPE}"))));
    }

    #[test]
    fn reload_and_halves_equal_the_whole() {
        let (h, _) = history();
        check_reload(&h, || Box::<Profiles>::default());
    }
}
