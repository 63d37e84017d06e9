//! `indicators`: the region's indicators of one academic year: institutions by kind and
//! territory, learners seen per institution kind, and the five shares of the federal
//! digital-maturity index (DOMAIN.md), each with its integer numerator and denominator, and the
//! index (their mean). Not a reproduction of published figures: every number is counted from the
//! log.
//!
//! The academic year: `indicators` answers the latest academic year of the log, the one holding
//! the region's local date of the latest entry's ledger time (`recorded_at`, which never runs
//! backwards), so the answer follows the log, not the clock of the reader; `indicators/<year>`
//! (four digits, 2026 for 2026/27) answers an earlier one. A year after the latest is not found:
//! the log has not reached it (its contingent is not recorded yet). An academic year runs from
//! 1 September to 31 August (`time::academic_year_of`).
//!
//! Denominators of a year:
//! - school students: the learners enrolled at a school of the region on at least one day of the
//!   year, by the contingent: a stay begins on `admitted_on` (`contingent.admitted`) or on
//!   1 September of an `enrolment.order_issued`'s target year (a 1st-grader enrolled for
//!   September counts from that year, not in the year the order is issued) and ends on the day
//!   of `contingent.graduated`, `contingent.expelled` or `learner.transferred` (a class change,
//!   `contingent.class_assigned`, continues it). A learner who leaves during a year counts in that
//!   year and leaves the denominator from the next one; a learner who left before the year began
//!   (an alumnus of the year before) is not counted;
//! - school teachers: the distinct holders of a `teacher` or `class_teacher` grant at a school
//!   (not a `migration` key's) valid on at least one day of the year: from `valid_from` to
//!   `valid_until`, ended earlier by the key's revocation, continued by its rotation (the
//!   pseudonymous person of a grant is also the id of their `teacher/<id>` stream); a grant
//!   given in August for the coming year is valid on a day of the year ending then, too;
//! - electronic assignments: the `digital.assignment_recorded` entries assigned in the year
//!   (`assigned_on`).
//!
//! Numerators count the members of the year's denominator that have the record. A state that no
//! event ends counts from its date on; an act counts in its year:
//! - a digital profile: a portfolio achievement dated (`date`) on or before the year's last day
//!   and not revoked (the profile exists and is kept, whichever year it began);
//! - a recommendation or individual trajectory offered in the year
//!   (`digital.recommendation_offered`, `offered_on`): an offer is advice for the year it is made;
//! - free access to digital content for self-study (`digital.learner_content_access_granted`) and a
//!   teacher's access to verified digital content (`digital.teacher_content_access_granted`)
//!   granted on or before the year's last day (the vocabulary has no event ending an access);
//! - the assignments of the year checked `automatic`.
//!
//! `learners_by_institution_kind` is not per year: the learners ever seen at an institution of
//! each kind, where an entry names both: a learner-stream entry naming an institution (grades,
//! attendance, attestation, certificates, programs, college results, transfers, contingent), a
//! kindergarten enrolment or transfer (the learner of the queue application), a 1st-grade
//! enrolment order (the learners of its applications). `institutions` lists those registered.
//! An entry naming an institution not registered (yet) counts for no kind.

use crate::model::{self, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::common::{academic_year_segment, Keyed, Sym, Symbols};
use crate::models::shared::{local_date, local_date_of, share};
use crate::region::RegionProfile;
use crate::time::{self, Days};
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const NAME: &str = "indicators";
const SCHOOL: &str = "school";

/// One stay of a learner at an institution, `[from, to)` in days.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stay {
    /// The institution's kind in `State::kinds`.
    kind: u32,
    from: Days,
    /// Exclusive end; `None` while it lasts.
    to: Option<Days>,
}

/// Whether `[from, to)` holds at least one day of `[start, end)`.
fn overlaps(from: Days, to: Option<Days>, start: Days, end: Days) -> bool {
    from < end && to.is_none_or(|t| t > start && t > from)
}

/// What the shares need of one learner.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Learner {
    /// Bit `i`: seen at an institution of kind `i` (`State::kinds`); kinds past the 64th are
    /// listed in `more_kinds`.
    kinds: u64,
    more_kinds: Vec<u32>,
    /// Stays by the contingent, in order (the last one open while it lasts).
    stays: Vec<Stay>,
    /// Enrolled into a 1st grade by an order (an order enrols a learner once).
    first_grade: bool,
    /// Achievements attested and not revoked, with their dates, in order of attestation.
    achievements: Vec<(String, Days)>,
    /// Academic years in which a recommendation or individual trajectory was offered, ascending.
    recommended: Vec<i64>,
    /// The first date of free access to digital content for self-study.
    access: Option<Days>,
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

    /// Ends the open stay on `on` (not before it began).
    fn leave(&mut self, on: Days) {
        if let Some(stay) = self.stays.last_mut().filter(|s| s.to.is_none()) {
            stay.to = Some(on.max(stay.from));
        }
    }

    /// Whether a stay at an institution of kind `kind` holds a day of `[start, end)`.
    fn enrolled(&self, kind: u32, start: Days, end: Days) -> bool {
        self.stays.iter().any(|s| s.kind == kind && overlaps(s.from, s.to, start, end))
    }
}

/// A teaching grant at a school: its holder and the days it is valid, `[from, to)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    holder: String,
    from: Days,
    to: Option<Days>,
}

impl Grant {
    fn end_by(&mut self, on: Days) {
        let on = on.max(self.from);
        self.to = Some(self.to.map_or(on, |t| t.min(on)));
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
    /// Teachers (stream ids) with access to verified digital content -> the first date.
    teacher_access: BTreeMap<String, Days>,
    /// Key -> its teacher or class-teacher grant at a school.
    school_grants: BTreeMap<String, Grant>,
    /// Academic year -> electronic assignments recorded, and those checked automatically.
    assignments: BTreeMap<i64, (u64, u64)>,
    /// The latest ledger time (`recorded_at`) of an entry seen, unix seconds.
    latest_recorded: Option<i64>,
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
    fn kind(&mut self, institution: &str) -> Option<u32> {
        match &self.last_kind {
            Some((i, k)) if i == institution => Some(*k),
            _ => {
                let kind = *self.kind_of.get(institution)?;
                self.last_kind = Some((institution.to_owned(), kind));
                Some(kind)
            }
        }
    }

    fn seen(&mut self, institution: &str, learner: &str) {
        if let Some(kind) = self.kind(institution) {
            self.learners.slot(learner).add_kind(kind);
        }
    }

    /// A stay of `learner` at `institution` from `from`; an open one ends there first (the rules
    /// refuse an admission over an open stay, so this only keeps the list in order).
    fn admit(&mut self, institution: &str, learner: &str, from: Days) {
        let Some(kind) = self.kind(institution) else { return };
        let l = self.learners.slot(learner);
        l.leave(from);
        l.stays.push(Stay { kind, from, to: None });
    }

    /// What the contingent says of the stream's learner: stays begin and end.
    fn contingent(&mut self, fact: &Fact<'_>) {
        let learner = fact.stream_id();
        let leave = |s: &mut Self, on: &str| {
            if let (Some(on), Some(l)) = (time::parse_date(on), s.learners.get_mut(learner)) {
                l.leave(on);
            }
        };
        match fact.event {
            Event::ContingentAdmitted(d) => {
                if let Some(from) = time::parse_date(&d.admitted_on) {
                    self.admit(&d.institution, learner, from);
                }
            }
            Event::ContingentExpelled(d) => leave(self, &d.expelled_on),
            Event::ContingentGraduated(d) => leave(self, &d.graduated_on),
            Event::LearnerTransferred(d) => leave(self, &d.transferred_on),
            _ => {}
        }
    }

    /// The latest academic year of the log (of its latest entry's ledger time, the region's
    /// local date), `None` for an empty log.
    fn latest_year(&self) -> Option<i64> {
        let offset = RegionProfile::region_default().utc_offset_minutes;
        self.latest_recorded.map(|at| time::academic_year_of((at + offset * 60).div_euclid(86_400)))
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

/// One share of the index: its indicator, what it counts, numerator and denominator; not
/// computable (no percent) over a zero denominator.
fn indicator(name: &str, definition: &str, numerator: u64, denominator: u64) -> serde_json::Value {
    let mut v = share(numerator, denominator);
    v["indicator"] = json!(name);
    v["computable"] = json!(denominator != 0);
    if denominator == 0 {
        v["reason"] = json!("a zero denominator: the log records none of what it divides by in this academic year");
    }
    v["definition"] = json!(definition);
    v
}

/// An academic year as people write it in full: `2026/2027` (a short `/27` would read `2099/00`).
fn year_label(year: i64) -> String {
    format!("{year}/{}", year + 1)
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

/// The three denominators: name and whom they count.
const DENOMINATORS: [(&str, &str); 3] = [
    (
        "school_students",
        "learners enrolled at a school of the region on at least one day of the academic year (from contingent.admitted or 1 September of a 1st-grade order's year until contingent.graduated, contingent.expelled or learner.transferred): a learner who left counts in the year of leaving, not after",
    ),
    (
        "school_teachers",
        "distinct holders of a teacher or class_teacher grant at a school (not a migration key's) valid on at least one day of the academic year (until valid_until or the key's revocation)",
    ),
    ("electronic_assignments", "digital.assignment_recorded entries assigned in the academic year (assigned_on)"),
];

/// The five shares in DOMAIN's order: name and what it counts.
const INDICATORS: [(&str, &str); 5] = [
    (
        "students_with_digital_profile",
        "school students of the year with a portfolio achievement dated on or before the year's last day and not revoked, of the year's school students",
    ),
    (
        "students_offered_recommendations_or_individual_trajectories",
        "school students of the year offered a recommendation or an individual trajectory from their portfolio in the year (digital.recommendation_offered, offered_on), of the year's school students",
    ),
    (
        "teachers_able_to_use_verified_digital_content",
        "school teachers of the year with access to a verified digital content service granted on or before the year's last day (digital.teacher_content_access_granted), of the year's school teachers",
    ),
    (
        "students_with_free_access_to_digital_content",
        "school students of the year with free access to digital content for self-study granted on or before the year's last day (digital.learner_content_access_granted), of the year's school students",
    ),
    (
        "electronic_assignments_checked_automatically",
        "electronic assignments of the year checked automatically, of the year's electronic assignments",
    ),
];

/// The counts of one academic year: the three denominators and the five (numerator,
/// denominator) pairs.
fn counts_of(s: &State, year: i64) -> ([u64; 3], [(u64, u64); 5]) {
    let (start, end) = (time::days_from_civil(year, 9, 1), time::days_from_civil(year + 1, 9, 1));
    let school = s.kinds.get(SCHOOL).map(|k| k.0);
    let students: Vec<&Learner> =
        s.learners.values().iter().filter(|l| school.is_some_and(|k| l.enrolled(k, start, end))).collect();
    let of_students = |has: &dyn Fn(&Learner) -> bool| students.iter().filter(|l| has(l)).count() as u64;
    let pupils = students.len() as u64;
    let teachers: BTreeSet<&str> =
        s.school_grants.values().filter(|g| overlaps(g.from, g.to, start, end)).map(|g| g.holder.as_str()).collect();
    let with_access = teachers.iter().filter(|t| s.teacher_access.get(**t).is_some_and(|d| *d < end)).count();
    let (assignments, automatic) = s.assignments.get(&year).copied().unwrap_or_default();
    let staff = teachers.len() as u64;
    (
        [pupils, staff, assignments],
        [
            (of_students(&|l| l.achievements.iter().any(|(_, d)| *d < end)), pupils),
            (of_students(&|l| l.recommended.binary_search(&year).is_ok()), pupils),
            (with_access as u64, staff),
            (of_students(&|l| l.access.is_some_and(|d| d < end)), pupils),
            (automatic, assignments),
        ],
    )
}

/// The date of a record (`YYYY-MM-DD`), or the region's local date of the entry when it does not
/// parse (the rules refuse such a record, so only a hand-built history reaches this).
fn date_or_entry(date: &str, fact: &Fact<'_>) -> Option<Days> {
    time::parse_date(date).or_else(|| local_date(fact, RegionProfile::region_default().utc_offset_minutes))
}

/// The region's local date of an instant (`valid_from`, `effective_at`), else of the entry.
fn day_of_instant(instant: Option<&str>, fact: &Fact<'_>) -> Option<Days> {
    let offset = RegionProfile::region_default().utc_offset_minutes;
    instant.and_then(|s| local_date_of(s, offset)).or_else(|| local_date(fact, offset))
}

impl ReadModel for Indicators {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        // 3: one record per learner (kinds seen as bits, achievements, flags), found by hash.
        // 4: a migration key's grant is no school teacher.
        // 5: per academic year: school stays by the contingent, grants' validity, dated records.
        // 6: a share over a zero denominator is not computable; a year with no denominator is
        // not found.
        6
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        let s = &mut self.state;
        s.latest_recorded = Some(s.latest_recorded.map_or(fact.recorded_at, |t| t.max(fact.recorded_at)));
        s.contingent(fact);
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
                let from = time::days_from_civil(d.target_year, 9, 1);
                for app in &d.applications {
                    let Some(l) = s.first_grade_learners.get(&format!("{school}/{app}")).cloned() else { continue };
                    s.seen(school, &l);
                    // As the rules: an order enrols a learner once, and not one enrolled elsewhere.
                    let learner = s.learners.slot(&l);
                    let open = learner.stays.last().is_some_and(|st| st.to.is_none());
                    if !learner.first_grade && !open {
                        learner.first_grade = true;
                        s.admit(school, &l, from);
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
                if teaches && at_school {
                    let offset = RegionProfile::region_default().utc_offset_minutes;
                    if let Some(from) = day_of_instant(Some(&d.valid_from), fact) {
                        let to = d.valid_until.as_deref().and_then(|u| local_date_of(u, offset));
                        s.school_grants.insert(d.key.clone(), Grant { holder: d.holder.clone(), from, to });
                    }
                }
            }
            Event::KeysRevoked(d) => {
                if let (Some(on), Some(g)) =
                    (day_of_instant(d.effective_at.as_deref(), fact), s.school_grants.get_mut(&d.key))
                {
                    g.end_by(on);
                }
            }
            Event::KeysRotated(d) => {
                // The holder goes on with the new key: the grant moves to it from the rotation.
                if let (Some(on), Some(g)) =
                    (day_of_instant(d.effective_at.as_deref(), fact), s.school_grants.get_mut(&d.old_key))
                {
                    let next = Grant { holder: g.holder.clone(), from: on.max(g.from), to: g.to };
                    g.end_by(on);
                    s.school_grants.insert(d.new_key.clone(), next);
                }
            }
            Event::RecommendationOffered(d) => {
                if let Some(on) = date_or_entry(&d.offered_on, fact) {
                    let year = time::academic_year_of(on);
                    let years = &mut s.learners.slot(fact.stream_id()).recommended;
                    if let Err(i) = years.binary_search(&year) {
                        years.insert(i, year);
                    }
                }
            }
            Event::LearnerContentAccessGranted(d) => {
                if let Some(on) = date_or_entry(&d.granted_on, fact) {
                    let access = &mut s.learners.slot(fact.stream_id()).access;
                    *access = Some(access.map_or(on, |a| a.min(on)));
                }
            }
            Event::TeacherContentAccessGranted(d) => {
                if let Some(on) = date_or_entry(&d.granted_on, fact) {
                    let first = s.teacher_access.entry(fact.stream_id().to_owned()).or_insert(on);
                    *first = (*first).min(on);
                }
            }
            Event::AssignmentRecorded(d) => {
                if let Some(on) = date_or_entry(&d.assigned_on, fact) {
                    let year = s.assignments.entry(time::academic_year_of(on)).or_default();
                    year.0 += 1;
                    year.1 += u64::from(d.checking == "automatic");
                }
            }
            Event::AchievementAttested(d) => {
                if let Some(on) = date_or_entry(&d.date, fact) {
                    let held = &mut s.learners.slot(fact.stream_id()).achievements;
                    if !held.iter().any(|(a, _)| *a == d.achievement_id) {
                        held.push((d.achievement_id.clone(), on));
                    }
                }
            }
            Event::AchievementRevoked(d) => {
                if let Some(learner) = s.learners.get_mut(fact.stream_id()) {
                    learner.achievements.retain(|(a, _)| *a != d.achievement_id);
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
        let s = &self.state;
        let latest = s.latest_year();
        let year = match path {
            [] => latest,
            [y] => {
                let year = academic_year_segment(y).ok_or_else(|| {
                    ViewError::BadPath(format!("expected an academic year as four digits (2023 for 2023/24), not {y}"))
                })?;
                match latest {
                    Some(l) if year <= l => Some(year),
                    Some(l) => {
                        return Err(ViewError::NotFound(format!(
                            "the log's latest academic year is {}: it has not reached {}",
                            year_label(l),
                            year_label(year)
                        )))
                    }
                    None => return Err(ViewError::NotFound("the log holds no entry: no academic year yet".into())),
                }
            }
            _ => return Err(ViewError::BadPath("expected indicators or indicators/<academic year>".into())),
        };
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
        let (denominators, counts) = year.map_or(([0; 3], [(0, 0); 5]), |y| counts_of(s, y));
        // A year the path names in which the log records nothing the shares divide by (before
        // its history begins, such as 1990): not found, as a year after the latest is, rather
        // than an answer of zeros (review s12, L1).
        if let ([_], Some(y), Some(l)) = (path, year, latest) {
            if denominators == [0; 3] {
                return Err(ViewError::NotFound(format!(
                    "the log records no school students, teachers or electronic assignments in {}: it has no \
                     indicators for that year (its latest academic year is {})",
                    year_label(y),
                    year_label(l)
                )));
            }
        }
        let shares: Vec<serde_json::Value> = INDICATORS
            .iter()
            .zip(counts)
            .map(|((name, definition), (n, d))| indicator(name, definition, n, d))
            .collect();
        let denominators: serde_json::Map<String, serde_json::Value> = DENOMINATORS
            .iter()
            .zip(denominators)
            .map(|((name, definition), count)| ((*name).to_owned(), json!({"count": count, "definition": definition})))
            .collect();
        let index = match mean_percent(&counts) {
            Some(p) => json!({"computable": true, "percent": p, "definition": "the mean of the five shares"}),
            None => json!({"computable": false, "reason": "a share has a zero denominator"}),
        };
        let period = year.map(|y| {
            json!({"from": time::format_date(time::days_from_civil(y, 9, 1)),
                   "to": time::format_date(time::days_from_civil(y + 1, 9, 1) - 1)})
        });
        let body = json!({
            "academic_year": year,
            "academic_year_period": period,
            "latest_academic_year": latest,
            "institutions": {"total": s.institutions.len(), "by_kind": by_kind, "by_territory": by_territory},
            "learners_by_institution_kind": learners,
            "learners_by_institution_kind_definition": "learners ever seen at an institution of each kind, over the whole log up to this answer's tree size: not per academic year, alumni included",
            "digital_maturity": {
                "denominators": denominators,
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
    use serde_json::Value;

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
            admitted(40, "47-1", "sch-1", "2026-09-01"),
            admitted(41, "47-2", "sch-2", "2026-09-01"),
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
                json!({"application_id": "f1", "learner": "47-5", "target_year": 2026, "window": 1, "basis": "sibling", "birth_month": "2019-10"}),
            ),
            row(
                11,
                "institution/sch-1",
                "enrolment.order_issued",
                T,
                json!({"order_id": "o1", "target_year": 2026, "applications": ["f1"], "order_date": "2026-07-02"}),
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

    fn admitted(seq: u64, learner: &str, inst: &str, on: &str) -> Row {
        row(
            seq,
            &format!("learner/{learner}"),
            "contingent.admitted",
            &format!("{on}T06:00:00Z"),
            json!({"institution": inst, "class": "5А", "academic_year": 2026, "admitted_on": on,
                   "order_ref": format!("adm-{seq}")}),
        )
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
        assert_eq!(b["academic_year"], json!(2026));
        assert_eq!(b["latest_academic_year"], json!(2026));
        assert_eq!(b["academic_year_period"], json!({"from": "2026-09-01", "to": "2027-08-31"}));
        // School students of 2026: 47-1, 47-2 (admitted), 47-5 (a 1st-grade order for 2026); 47-3
        // has grades at a school not registered, and no admission.
        let den = &b["digital_maturity"]["denominators"];
        assert_eq!(
            (
                &den["school_students"]["count"],
                &den["school_teachers"]["count"],
                &den["electronic_assignments"]["count"]
            ),
            (&json!(3), &json!(2), &json!(4))
        );
        assert!(den
            .as_object()
            .unwrap()
            .values()
            .all(|d| d["definition"].as_str().is_some_and(|t| t.contains("academic year"))));
        // Seen (all years): 47-1, 47-2 (grades), 47-5 (1st-grade order).
        assert_eq!(
            b["learners_by_institution_kind"],
            json!({"additional_education": 1, "kindergarten": 1, "school": 3})
        );
        assert!(b["learners_by_institution_kind_definition"]
            .as_str()
            .is_some_and(|d| d.contains("not per academic year")));
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

    /// Three academic years of one school, recorded as they happen (the last entry in July 2027).
    fn years() -> Vec<Row> {
        let at = |d: &str| format!("{d}T07:00:00Z");
        let learner =
            |seq: u64, l: &str, ty: &str, d: &str, data: Value| row(seq, &format!("learner/{l}"), ty, &at(d), data);
        let left = |seq: u64, l: &str, ty: &str, field: &str, d: &str| {
            let mut data = json!({"institution": "sch-1", field: d});
            match ty {
                "contingent.expelled" => data["reason"] = json!("выезд за пределы РФ"),
                "learner.transferred" => {
                    data = json!({"from_institution": "sch-1", "to_institution": "sch-9", "to_region": "78", field: d})
                }
                _ => {}
            }
            learner(seq, l, ty, d, data)
        };
        let key = |seq: u64, holder: &str, from: &str| {
            row(
                seq,
                "registry",
                "keys.granted",
                &at(from),
                json!({"key": format!("did:key:z6Mk{holder}"), "holder": holder, "roles": ["teacher"],
                       "scope": {"institution": "sch-1"}, "valid_from": at(from)}),
            )
        };
        let first_grade = |seq: u64, l: &str, year: i64, issued: &str| {
            let app = format!("f-{l}");
            vec![
                row(
                    seq,
                    "institution/sch-1",
                    "enrolment.application_submitted",
                    &at(issued),
                    json!({"application_id": app, "learner": l, "target_year": year, "window": 1, "basis": "none",
                           "birth_month": format!("{}-01", year - 7)}),
                ),
                row(
                    seq + 1,
                    "institution/sch-1",
                    "enrolment.order_issued",
                    &at(issued),
                    json!({"order_id": format!("o-{l}"), "target_year": year, "applications": [app], "order_date": issued}),
                ),
            ]
        };
        let achievement = |seq: u64, l: &str, date: &str| {
            learner(
                seq,
                l,
                "portfolio.achievement_attested",
                date,
                json!({"achievement_id": format!("ach-{seq}"), "kind": "olympiad", "level": "school", "date": date, "result": "winner"}),
            )
        };
        let job = |seq: u64, checking: &str, on: &str| {
            row(
                seq,
                "institution/sch-1",
                "digital.assignment_recorded",
                &at(on),
                json!({"assignment_id": format!("as-{seq}"), "class": "5А", "subject": "math", "checking": checking, "assigned_on": on}),
            )
        };
        let mut rows = vec![
            row(
                0,
                "registry",
                "registry.institution_registered",
                &at("2024-08-01"),
                json!({"institution": "sch-1", "kind": "school", "territory": "luga"}),
            ),
            key(1, "t-1", "2024-08-01"),
            admitted(2, "47-1", "sch-1", "2024-09-01"),
            achievement(3, "47-1", "2025-05-01"),
            // 47-1 graduates in June 2025: an alumnus in 2025/26.
            left(4, "47-1", "contingent.graduated", "graduated_on", "2025-06-28"),
            job(5, "automatic", "2025-05-02"),
            key(6, "t-2", "2025-09-01"),
            admitted(7, "47-2", "sch-1", "2025-09-01"),
            admitted(8, "47-3", "sch-1", "2025-09-01"),
            admitted(9, "47-4", "sch-1", "2025-09-01"),
            row(
                10,
                "teacher/t-1",
                "digital.teacher_content_access_granted",
                &at("2025-09-10"),
                json!({"access_id": "x10", "institution": "sch-1", "service": "resh", "granted_on": "2025-09-10"}),
            ),
            learner(
                11,
                "47-2",
                "digital.learner_content_access_granted",
                "2025-09-14",
                json!({"access_id": "x11", "institution": "sch-1", "service": "resh", "granted_on": "2025-09-14"}),
            ),
            learner(
                12,
                "47-3",
                "digital.recommendation_offered",
                "2025-11-01",
                json!({"recommendation_id": "r12", "institution": "sch-1", "kind": "recommendation", "offered_on": "2025-11-01"}),
            ),
            achievement(13, "47-3", "2026-02-01"),
            job(14, "automatic", "2026-02-02"),
            // 47-2 is expelled in March 2026.
            left(15, "47-2", "contingent.expelled", "expelled_on", "2026-03-10"),
            row(
                16,
                "registry",
                "keys.revoked",
                &at("2026-06-30"),
                json!({"key": "did:key:z6Mkt-2", "reason": "left the school", "effective_at": at("2026-06-30")}),
            ),
            // 47-4 leaves the region on the first day of 2026/27: not a student of that year.
            left(19, "47-4", "learner.transferred", "transferred_on", "2026-09-01"),
            learner(
                20,
                "47-3",
                "contingent.class_assigned",
                "2026-08-30",
                json!({"institution": "sch-1", "class": "6А", "academic_year": 2026, "assigned_on": "2026-09-01"}),
            ),
            learner(
                21,
                "47-5",
                "digital.learner_content_access_granted",
                "2026-09-14",
                json!({"access_id": "x21", "institution": "sch-1", "service": "resh", "granted_on": "2026-09-14"}),
            ),
            job(22, "automatic", "2026-10-02"),
            job(23, "manual", "2026-10-03"),
        ];
        // 47-5: a 1st-grader for September 2026; 47-6: for September 2027, ordered in July 2027.
        rows.splice(15..15, first_grade(17, "47-5", 2026, "2026-07-02"));
        rows.extend(first_grade(24, "47-6", 2027, "2027-07-01"));
        rows
    }

    /// (numerator, denominator) of the five shares of a view.
    fn pairs(body: &Value) -> Vec<(u64, u64)> {
        body["digital_maturity"]["shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["numerator"].as_u64().unwrap(), s["denominator"].as_u64().unwrap()))
            .collect()
    }

    #[test]
    fn each_academic_year_counts_its_own_students_teachers_and_records() {
        let m: Indicators = build(&years());
        // The latest academic year of the log: its last entry (July 2027) is in 2026/27.
        let now = m.view(&[]).unwrap().body;
        assert_eq!((&now["academic_year"], &now["latest_academic_year"]), (&json!(2026), &json!(2026)));
        // 2026/27: 47-3 (still enrolled) and the 1st-grader 47-5; not the alumnus 47-1, not 47-2
        // (expelled in March), not 47-4 (left on 1 September), not 47-6 (a 1st-grader of 2027).
        // Profile: 47-3's achievement of February; access: 47-5's; teachers: t-1 (t-2's key is
        // revoked in June), with access since 2025.
        assert_eq!(pairs(&now), vec![(1, 2), (0, 2), (1, 1), (1, 2), (1, 2)], "{now:#}");
        assert_eq!(m.view(&["2026"]).unwrap().body, now);
        // 2025/26: 47-2, 47-3, 47-4 (47-1 graduated before it began); 47-3 was recommended that
        // year; 47-2 had access; t-1 and t-2 taught.
        let y2025 = m.view(&["2025"]).unwrap().body;
        assert_eq!(y2025["academic_year"], json!(2025));
        assert_eq!(y2025["academic_year_period"], json!({"from": "2025-09-01", "to": "2026-08-31"}));
        assert_eq!(pairs(&y2025), vec![(1, 3), (1, 3), (1, 2), (1, 3), (1, 1)], "{y2025:#}");
        // 2024/25: 47-1 alone, with an achievement; t-1's access came later; one assignment.
        let y2024 = m.view(&["2024"]).unwrap().body;
        assert_eq!(pairs(&y2024), vec![(1, 1), (0, 1), (0, 1), (0, 1), (1, 1)], "{y2024:#}");
        // A year the log has not reached, and paths that name no year.
        assert!(matches!(m.view(&["2027"]), Err(ViewError::NotFound(_))));
        // Review s12, L1: a year before the log's history answered zeros marked computable; the
        // message of a year past 2099 read "2099/00".
        match m.view(&["1990"]) {
            Err(ViewError::NotFound(msg)) => assert!(msg.contains("1990/1991"), "{msg}"),
            other => panic!("1990: {other:?}"),
        }
        match m.view(&["2099"]) {
            Err(ViewError::NotFound(msg)) => assert!(msg.contains("2099/2100"), "{msg}"),
            other => panic!("2099: {other:?}"),
        }
        assert!(matches!(m.view(&["26"]), Err(ViewError::BadPath(_))));
        assert!(matches!(m.view(&["2026", "x"]), Err(ViewError::BadPath(_))));
        let empty: Indicators = build(&[]);
        assert!(matches!(empty.view(&["2026"]), Err(ViewError::NotFound(_))));
        assert_eq!(empty.view(&[]).unwrap().body["academic_year"], json!(null));
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
        let b = empty.view(&[]).unwrap().body;
        assert_eq!(b["digital_maturity"]["index"]["computable"], json!(false));
        let shares = b["digital_maturity"]["shares"].as_array().unwrap();
        assert!(shares.iter().all(|s| s["computable"] == json!(false) && s["percent"].is_null()), "{b:#}");
    }

    #[test]
    fn deterministic() {
        check_determinism::<Indicators>(&history());
        check_determinism::<Indicators>(&years());
    }
}
