//! The school journal and the college/university record book: lessons, grades on the scale of
//! the level, attendance codes, corrections, term/year grades, intermediate attestation,
//! academic debt and retakes, promotion, final attestation, certificates and diplomas.
//! Not the read models (journal, diary, weighted averages): only what may be written.

use crate::authority::{Institution, Need};
use crate::calendar::DayOff;
use crate::config::RegionConfig;
use crate::contingent::check_enrolled;
use crate::time::Days;
use crate::vocabulary::{Event, Mark};
use crate::{date_field, deny, refuse, Applied, Ctx, RuleError, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use zachetka_projections::lazy::Lazy;
use zachetka_projections::models::common::EventId;

/// Semesters a college or university programme may have at most.
const SEMESTERS_MAX: i64 = 12;

/// Event types a correction may name.
pub const CORRECTABLE: &[&str] = &[
    "journal.grade_recorded",
    "journal.attendance_marked",
    "journal.term_grade_set",
    "journal.year_grade_set",
    "journal.intermediate_attestation_recorded",
    "journal.retake_recorded",
    "journal.record_corrected",
    "college.course_result_recorded",
    "college.exam_recorded",
];

const TEACHERS: &[&str] = &["teacher", "class_teacher"];
const TEACHERS_ADMIN: &[&str] = &["teacher", "class_teacher", "institution_admin"];
const REGISTRARS: &[&str] = &["registrar", "institution_admin"];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Debt {
    stream: String,
    opened_on: i64,
    retakes: i64,
    closed: bool,
}

/// Where a learner's final result stands: a learner has at most one result per place (DOMAIN
/// "Journal", "Corrections": a change is a `journal.record_corrected`, never a second result).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Place {
    /// `college.course_result_recorded`: institution, course, term.
    Course(String, String, i64),
    /// `college.exam_recorded` (an exam or a credit, whatever its form): institution, course, term.
    Exam(String, String, i64),
    /// `journal.term_grade_set`: institution, subject, academic year, term.
    Term(String, String, i64, i64),
    /// `journal.year_grade_set`: subject, academic year.
    Year(String, i64),
}

impl Place {
    /// The institution and course of a college or university result.
    fn course(&self) -> Option<(&str, &str)> {
        match self {
            Place::Course(i, c, _) | Place::Exam(i, c, _) => Some((i, c)),
            Place::Term(..) | Place::Year(..) => None,
        }
    }

    /// The refusal of a second result at this place; `event` recorded the first.
    fn taken(&self, event: &EventId) -> RuleRefusal {
        let what = match self {
            Place::Course(i, c, t) => format!("a course result for {c} in term {t} at {i}"),
            Place::Exam(i, c, t) => format!("an exam or credit for {c} in term {t} at {i}"),
            Place::Term(i, s, y, t) => format!("a term grade for {s} in term {t} of academic year {y} at {i}"),
            Place::Year(s, y) => format!("a year grade for {s} in academic year {y}"),
        };
        RuleRefusal::new(
            "result_already_recorded",
            format!("{what} is already recorded by event {event}; a change is a journal.record_corrected naming it"),
        )
    }
}

/// The result at a place: the event that recorded it, the corrections naming it (or one
/// another), and for a course result or an exam whether its current value passes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Standing {
    event: EventId,
    corrections: Vec<EventId>,
    passes: bool,
}

/// One institution's lessons: class or group -> day -> the subjects of the lessons held that day.
type ClassLessons = BTreeMap<String, BTreeMap<Days, BTreeSet<String>>>;

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Journal {
    #[serde(with = "crate::state::sorted_map")]
    debts: HashMap<String, Debt>,
    #[serde(with = "crate::state::sorted_map")]
    open_debts: HashMap<String, i64>,
    #[serde(with = "crate::state::sorted_set")]
    documents: HashSet<(String, String)>,
    /// Learner stream -> (exam, subject) of final attestation results that pass.
    #[serde(with = "crate::state::sorted_map")]
    exams_passed: HashMap<String, BTreeSet<(String, String)>>,
    /// Learner stream -> their term and year grades and college and university results, one per
    /// place. Corrections are followed for college and university results only (whether a course
    /// is passed is read from them).
    #[serde(with = "crate::state::sorted_map")]
    results: HashMap<String, Lazy<BTreeMap<Place, Standing>>>,
    /// `<institution>/<program id>` -> the curriculum's courses.
    #[serde(with = "crate::state::sorted_map")]
    curricula: HashMap<String, Vec<String>>,
    /// Institution -> class or group -> day -> the subjects of the lessons held that day
    /// (`journal.lesson_held`, imported ones included): a mark or an attendance mark is given at
    /// one of them, found by lookups that allocate nothing.
    #[serde(with = "crate::state::sorted_map")]
    lessons: HashMap<String, Lazy<ClassLessons>>,
}

/// The school year of a class name such as `1А` or `10Б` (1 to 11).
pub(crate) fn school_year(class: &str) -> Result<i64, RuleRefusal> {
    let digits: String = class.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<i64>() {
        Ok(y) if (1..=11).contains(&y) => Ok(y),
        _ => refuse("class_malformed", format!("class {class} does not start with a school year 1 to 11")),
    }
}

/// A mark is on a scale the institution's kind uses, and the class may receive marks.
fn check_mark(
    cfg: &RegionConfig,
    inst: &Institution,
    class: Option<&str>,
    scale: &str,
    mark: &Mark,
) -> Result<(), RuleRefusal> {
    let Some(allowed) = cfg.scales_by_kind.get(&inst.kind) else {
        return refuse(
            "institution_kind_mismatch",
            format!("institution {} is a {}, which records no marks", inst.id, inst.kind),
        );
    };
    let Some(s) = cfg.scales.get(scale) else {
        return refuse("scale_unknown", format!("scale {scale} is not a scale of this region"));
    };
    if !allowed.iter().any(|a| a == scale) {
        return refuse(
            "scale_not_allowed",
            format!("scale {scale} is not used in a {} (allowed: {})", inst.kind, allowed.join(", ")),
        );
    }
    if inst.kind == "school" {
        if let Some(class) = class {
            let year = school_year(class)?;
            if cfg.years_without_marks.contains(&year) {
                return refuse(
                    "no_marks_in_first_grade",
                    format!("class {class} is in school year {year}, which receives no marks"),
                );
            }
        }
    }
    if !s.marks.contains(&mark.0) {
        return refuse(
            "grade_out_of_scale",
            format!("mark {} is not on scale {scale} ({})", mark.0, s.marks.join(", ")),
        );
    }
    Ok(())
}

/// A lesson, a mark or an attendance mark is dated on a school day of the region's calendar:
/// a day of its school week (`calendar.school_days`) that is not a public holiday.
fn check_school_day(ctx: &Ctx, value: &str, day: Days) -> Result<(), RuleRefusal> {
    match ctx.rules.calendar.school_day(day) {
        Ok(()) => Ok(()),
        Err(DayOff::Weekday(name)) => refuse(
            "not_a_school_day",
            format!("lesson_date {value} is a {name}, which is not a day of the region's school week (calendar.school_days)"),
        ),
        Err(DayOff::Holiday) => refuse(
            "not_a_school_day",
            format!("lesson_date {value} is a public holiday of the region's calendar (calendar.holidays), not a school day"),
        ),
    }
}

/// A result of an academic year (a term or year grade, an intermediate or final attestation, an
/// academic debt, a promotion) names the academic year of its own date (`occurred_at`, the
/// local date the rules judge): 1 September to 31 August, named by its first calendar year
/// (`academic_year_mismatch`). Decided from DOMAIN: its academic year runs to 31 August, so the
/// summer after the last term (year grades, attestation, debts and their retakes, promotion, final
/// attestation) is still in it, and no rule lets a year's results be set once it has ended; no
/// grace period after it. With `check_enrolled` on that date (the learner was in that class then,
/// a membership the contingent records per academic year), this keeps a result in the class and
/// year the learner was in, and the one-result-per-place rule keyed by a year that is true.
fn check_academic_year(ctx: &Ctx, year: i64) -> Result<(), RuleRefusal> {
    let of_date = crate::time::academic_year_of(ctx.date);
    if year == of_date {
        return Ok(());
    }
    refuse(
        "academic_year_mismatch",
        format!(
            "data.academic_year {year} is not the academic year of the record's date {} ({of_date}/{:02}, from \
             {of_date}-09-01 to {}-08-31); a result names the academic year it was given in",
            crate::time::format_date(ctx.date),
            (of_date + 1).rem_euclid(100),
            of_date + 1
        ),
    )
}

fn check_term(term: i64, max: i64) -> Result<(), RuleRefusal> {
    if (1..=max).contains(&term) {
        Ok(())
    } else {
        refuse("term_out_of_range", format!("term {term} is not between 1 and {max}"))
    }
}

/// The scores of `subject` in `exam`, if a certificate level lists them.
fn subject_scores<'c>(cfg: &'c RegionConfig, exam: &str, subject: &str) -> Option<&'c crate::config::SubjectScores> {
    cfg.certificate_requirements.values().filter(|r| r.exam == exam).find_map(|r| r.subjects.get(subject))
}

/// Whether a mark passes (a mark on no known scale does not).
fn passes(cfg: &RegionConfig, scale: &str, mark: &Mark) -> bool {
    cfg.scales.get(scale).is_some_and(|s| !s.unsatisfactory.contains(&mark.0))
}

impl Journal {
    /// Whether `institution` registered curriculum `program`.
    pub fn has_curriculum(&self, institution: &str, program: &str) -> bool {
        self.curricula.contains_key(&format!("{institution}/{program}"))
    }

    /// (values still encoded, values) of the lazily loaded maps.
    pub fn lazy_values(&self) -> (usize, usize) {
        let results = self.results.values().filter(|v| v.is_encoded()).count();
        let lessons = self.lessons.values().filter(|v| v.is_encoded()).count();
        (results + lessons, self.results.len() + self.lessons.len())
    }

    /// Records the result at `place` of the event's learner (the check refused a second one).
    fn record(&mut self, a: &Applied, place: Place, passes: bool) {
        let results = self.results.entry(a.e.stream.to_owned()).or_default().get_mut();
        results.entry(place).or_insert_with(|| Standing {
            event: EventId::of(a.e.id),
            corrections: Vec::new(),
            passes,
        });
    }

    /// Refuses a second result at `place` for the learner of `stream`.
    fn check_place(&self, stream: &str, place: &Place) -> Result<(), RuleRefusal> {
        match self.results.get(stream).and_then(|r| r.get().get(place)) {
            Some(standing) => Err(place.taken(&standing.event)),
            None => Ok(()),
        }
    }

    /// Whether the learner of `stream` passed `course` at `institution`: one of their course
    /// results or exams there whose current value (after corrections) passes.
    fn course_passed(&self, stream: &str, institution: &str, course: &str) -> bool {
        self.results.get(stream).is_some_and(|r| {
            r.get().iter().any(|(place, standing)| standing.passes && place.course() == Some((institution, course)))
        })
    }

    /// A mark or an attendance mark is given at a lesson: `class` of `institution` had a lesson
    /// of `subject` (of any subject when `None`) on `day` in the log. `what` says the record in
    /// the message ("a mark is given", "attendance is marked").
    fn check_lesson_held(
        &self,
        (institution, class): (&str, &str),
        subject: Option<&str>,
        (day, value): (Days, &str),
        what: &str,
    ) -> Result<(), RuleRefusal> {
        let held =
            self.lessons.get(institution).and_then(|classes| classes.get().get(class)).and_then(|days| days.get(&day));
        match (subject, held) {
            (None, Some(_)) => Ok(()),
            (Some(s), Some(subjects)) if subjects.contains(s) => Ok(()),
            (None, None) => refuse(
                "lesson_not_held",
                format!(
                    "class {class} of {institution} has no lesson on {value} in the log (journal.lesson_held); \
                     {what} at a lesson"
                ),
            ),
            (Some(s), held) => {
                let others = match held {
                    Some(subjects) => {
                        let list: Vec<&str> = subjects.iter().map(String::as_str).collect();
                        format!("; its lessons that day: {}", list.join(", "))
                    }
                    None => String::new(),
                };
                refuse(
                    "lesson_not_held",
                    format!(
                        "class {class} of {institution} has no lesson of {s} on {value} in the log \
                         (journal.lesson_held); {what} at a lesson{others}"
                    ),
                )
            }
        }
    }

    fn open_debts_of(&self, stream: &str) -> i64 {
        self.open_debts.get(stream).copied().unwrap_or(0)
    }

    pub fn apply(&mut self, cfg: &RegionConfig, a: &Applied, ev: &Event) {
        match ev {
            Event::AcademicDebtOpened(d) => {
                let Some(opened_on) = crate::time::parse_date(&d.opened_on) else {
                    return;
                };
                if self.debts.contains_key(&d.debt_id) {
                    return;
                }
                self.debts.insert(
                    d.debt_id.clone(),
                    Debt { stream: a.e.stream.to_owned(), opened_on, retakes: 0, closed: false },
                );
                *self.open_debts.entry(a.e.stream.to_owned()).or_default() += 1;
            }
            Event::RetakeRecorded(d) => {
                let Some(debt) = self.debts.get_mut(&d.debt_id) else {
                    return;
                };
                debt.retakes += 1;
                let failed = match cfg.scales.get(&d.scale) {
                    Some(s) => s.unsatisfactory.contains(&d.mark.0),
                    None => true,
                };
                if !failed && !debt.closed {
                    debt.closed = true;
                    if let Some(n) = self.open_debts.get_mut(&debt.stream) {
                        *n -= 1;
                    }
                }
            }
            Event::CertificateIssued(d) => {
                self.documents.insert((d.institution.clone(), d.number.clone()));
            }
            Event::FinalAttestationRecorded(d)
                if subject_scores(cfg, &d.exam, &d.subject).is_some_and(|sc| d.score >= sc.pass) =>
            {
                self.exams_passed.entry(a.e.stream.to_owned()).or_default().insert((d.exam.clone(), d.subject.clone()));
            }
            Event::CourseResultRecorded(d) => {
                self.record(
                    a,
                    Place::Course(d.institution.clone(), d.course.clone(), d.term),
                    passes(cfg, &d.scale, &d.mark),
                );
            }
            Event::ExamRecorded(d) => {
                self.record(
                    a,
                    Place::Exam(d.institution.clone(), d.course.clone(), d.term),
                    passes(cfg, &d.scale, &d.mark),
                );
            }
            Event::TermGradeSet(d) => {
                let place = Place::Term(d.institution.clone(), d.subject.clone(), d.academic_year, d.term);
                self.record(a, place, false);
            }
            Event::YearGradeSet(d) => self.record(a, Place::Year(d.subject.clone(), d.academic_year), false),
            Event::RecordCorrected(d) => {
                let Some(results) = self.results.get_mut(a.e.stream).map(Lazy::get_mut) else {
                    return;
                };
                let target = EventId::of(&d.corrected_event_id);
                let named = results
                    .iter_mut()
                    .filter(|(place, _)| place.course().is_some())
                    .map(|(_, standing)| standing)
                    .find(|s| s.event == target || s.corrections.contains(&target));
                if let Some(standing) = named {
                    standing.corrections.push(EventId::of(a.e.id));
                    // No mark (an annulment, or an attendance code) does not pass.
                    standing.passes = match (&d.mark, &d.scale) {
                        (Some(mark), Some(scale)) => passes(cfg, scale, mark),
                        _ => false,
                    };
                }
            }
            Event::LessonHeld(d) => {
                let Some(day) = crate::time::parse_date(&d.lesson_date) else {
                    return;
                };
                let classes = self.lessons.entry(a.sid.to_owned()).or_default().get_mut();
                let days = classes.entry(d.class.clone()).or_default();
                days.entry(day).or_default().insert(d.subject.clone());
            }
            Event::CurriculumRegistered(d) => {
                self.curricula.entry(format!("{}/{}", a.sid, d.program_id)).or_insert_with(|| d.courses.clone());
            }
            Event::DiplomaIssued(d) => {
                self.documents.insert((d.institution.clone(), d.number.clone()));
            }
            _ => {}
        }
    }
}

/// `RuleError` rather than a refusal: corrections and debts look earlier events up, and a lookup
/// that fails decides nothing.
pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleError> {
    let (auth, cfg, who, at, ty) = (ctx.auth(), ctx.cfg(), ctx.e.author, ctx.at, ctx.e.event_type);
    let journal = &ctx.rules.journal;
    match ev {
        Event::LessonHeld(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, ctx.sid, &d.class))?;
            auth.institution_of_kind(ctx.sid, &["school", "college", "university"], "a lesson")?;
            let on = date_field(&d.lesson_date, "lesson_date")?;
            Ok(check_school_day(ctx, &d.lesson_date, on)?)
        }
        Event::GradeRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.class))?;
            let inst = auth.institution(&d.institution)?;
            check_mark(cfg, inst, Some(&d.class), &d.scale, &d.mark)?;
            let Some(weight) = cfg.grade_weights.get(&d.kind) else {
                let kinds: Vec<&str> = cfg.grade_weights.keys().map(String::as_str).collect();
                return refuse(
                    "grade_kind_unknown",
                    format!("kind of work {} is not one of {}", d.kind, kinds.join(", ")),
                );
            };
            if d.weight != *weight {
                return refuse("grade_weight_mismatch", format!("a {} weighs {weight}, not {}", d.kind, d.weight));
            }
            let on = date_field(&d.lesson_date, "lesson_date")?;
            check_school_day(ctx, &d.lesson_date, on)?;
            check_enrolled(ctx, &d.institution, &d.class, on)?;
            // A migration's import is exempt: legacy systems did not always export lessons.
            if !ctx.imported {
                let (class, date) = ((d.institution.as_str(), d.class.as_str()), (on, d.lesson_date.as_str()));
                journal.check_lesson_held(class, Some(&d.subject), date, "a mark is given")?;
            }
            Ok(())
        }
        Event::AttendanceMarked(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.class))?;
            auth.institution(&d.institution)?;
            if !cfg.attendance_codes.contains_key(&d.code) {
                let codes: Vec<&str> = cfg.attendance_codes.keys().map(String::as_str).collect();
                return refuse(
                    "attendance_code_unknown",
                    format!("attendance code {} is not one of {}", d.code, codes.join(", ")),
                );
            }
            let on = date_field(&d.lesson_date, "lesson_date")?;
            check_school_day(ctx, &d.lesson_date, on)?;
            check_enrolled(ctx, &d.institution, &d.class, on)?;
            if !ctx.imported {
                let (class, date) = ((d.institution.as_str(), d.class.as_str()), (on, d.lesson_date.as_str()));
                journal.check_lesson_held(class, d.subject.as_deref(), date, "attendance is marked")?;
            }
            Ok(())
        }
        Event::RecordCorrected(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS_ADMIN, &d.institution, &d.class))?;
            let inst = auth.institution(&d.institution)?;
            let Some((stream, kind)) = ctx.lookup.event(&d.corrected_event_id)? else {
                return refuse("corrected_event_unknown", format!("no event {} in the log", d.corrected_event_id));
            };
            if stream != ctx.e.stream {
                return refuse(
                    "corrected_event_other_learner",
                    format!("event {} is in stream {stream}, not {}", d.corrected_event_id, ctx.e.stream),
                );
            }
            if !CORRECTABLE.contains(&kind.as_str()) {
                return refuse(
                    "corrected_event_not_correctable",
                    format!("event {} is a {kind}, which a correction does not change", d.corrected_event_id),
                );
            }
            let authoriser = Need::in_class(&["institution_admin", "class_teacher"], &d.institution, &d.class);
            if auth.holds(&d.authorised_by, at, &authoriser).is_none() {
                return deny(
                    "authoriser_not_authorized",
                    format!(
                        "{} is not an institution admin or the class teacher of {} in {} at this time",
                        d.authorised_by, d.class, d.institution
                    ),
                );
            }
            match (&d.mark, &d.scale, &d.code) {
                (Some(_), _, Some(_)) => refuse("event_malformed", "data.mark and data.code exclude each other"),
                (Some(_), None, None) => refuse("event_malformed", "data.scale is missing (required with data.mark)"),
                (Some(mark), Some(scale), None) => Ok(check_mark(cfg, inst, Some(&d.class), scale, mark)?),
                (None, _, Some(code)) if !cfg.attendance_codes.contains_key(code) => {
                    refuse("attendance_code_unknown", format!("attendance code {code} is not a code of this region"))
                }
                _ => Ok(()),
            }
        }
        Event::TermGradeSet(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.class))?;
            let inst = auth.institution(&d.institution)?;
            check_term(d.term, cfg.terms_max)?;
            check_mark(cfg, inst, Some(&d.class), &d.scale, &d.mark)?;
            check_academic_year(ctx, d.academic_year)?;
            check_enrolled(ctx, &d.institution, &d.class, ctx.date)?;
            let place = Place::Term(d.institution.clone(), d.subject.clone(), d.academic_year, d.term);
            Ok(journal.check_place(ctx.e.stream, &place)?)
        }
        Event::YearGradeSet(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.class))?;
            let inst = auth.institution(&d.institution)?;
            check_mark(cfg, inst, Some(&d.class), &d.scale, &d.mark)?;
            check_academic_year(ctx, d.academic_year)?;
            check_enrolled(ctx, &d.institution, &d.class, ctx.date)?;
            Ok(journal.check_place(ctx.e.stream, &Place::Year(d.subject.clone(), d.academic_year))?)
        }
        Event::IntermediateAttestationRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.class))?;
            let inst = auth.institution(&d.institution)?;
            check_mark(cfg, inst, Some(&d.class), &d.scale, &d.mark)?;
            check_academic_year(ctx, d.academic_year)?;
            Ok(check_enrolled(ctx, &d.institution, &d.class, ctx.date)?)
        }
        Event::AcademicDebtOpened(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS_ADMIN, &d.institution, &d.class))?;
            auth.institution(&d.institution)?;
            date_field(&d.opened_on, "opened_on")?;
            check_academic_year(ctx, d.academic_year)?;
            match ctx.lookup.event(&d.attestation_event_id)? {
                Some((stream, kind))
                    if stream == ctx.e.stream && kind == "journal.intermediate_attestation_recorded" => {}
                Some((stream, kind)) => {
                    return refuse(
                        "attestation_event_unknown",
                        format!(
                            "event {} is a {kind} in {stream}, not an intermediate attestation of this learner",
                            d.attestation_event_id
                        ),
                    )
                }
                None => {
                    return refuse(
                        "attestation_event_unknown",
                        format!("no event {} in the log", d.attestation_event_id),
                    )
                }
            }
            if journal.debts.contains_key(&d.debt_id) {
                return refuse("debt_already_opened", format!("debt {} is already open", d.debt_id));
            }
            Ok(())
        }
        Event::RetakeRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS_ADMIN, &d.institution, &d.class))?;
            let inst = auth.institution(&d.institution)?;
            let Some(debt) = journal.debts.get(&d.debt_id).filter(|debt| debt.stream == ctx.e.stream) else {
                return refuse("debt_unknown", format!("learner stream {} has no debt {}", ctx.e.stream, d.debt_id));
            };
            if debt.closed {
                return refuse("debt_closed", format!("debt {} was already closed by a passed retake", d.debt_id));
            }
            let rules = &cfg.retakes;
            if debt.retakes >= rules.retakes_max {
                return refuse(
                    "retake_limit_reached",
                    format!("debt {} already had {} retakes (at most {})", d.debt_id, debt.retakes, rules.retakes_max),
                );
            }
            let held_on = date_field(&d.held_on, "held_on")?;
            if held_on < debt.opened_on {
                return refuse("retake_before_debt", format!("a retake on {} precedes the debt it retakes", d.held_on));
            }
            if held_on > debt.opened_on.saturating_add(rules.within_days) {
                return refuse(
                    "retake_after_deadline",
                    format!("retakes are held within {} days of the debt", rules.within_days),
                );
            }
            check_mark(cfg, inst, Some(&d.class), &d.scale, &d.mark)?;
            let attempt = debt.retakes + 1;
            if attempt >= rules.commission_from_attempt {
                let mut holders: Vec<&str> = d
                    .commission
                    .iter()
                    .flatten()
                    .filter_map(|k| auth.holds(k, at, &Need::in_institution(TEACHERS_ADMIN, &d.institution)))
                    .map(|g| g.holder.as_str())
                    .collect();
                holders.sort_unstable();
                holders.dedup();
                if (holders.len() as i64) < rules.commission_members_min {
                    return refuse(
                        "retake_requires_commission",
                        format!(
                            "retake {attempt} is held before a commission of at least {} staff of {}; {} named",
                            rules.commission_members_min,
                            d.institution,
                            holders.len()
                        ),
                    );
                }
            }
            Ok(())
        }
        Event::Promoted(d) => {
            auth.authorize(
                who,
                at,
                ty,
                &Need::in_class(&["class_teacher", "institution_admin"], &d.institution, &d.from_class),
            )?;
            auth.institution_of_kind(&d.institution, &["school"], "a promotion")?;
            check_academic_year(ctx, d.academic_year)?;
            // Promoted from the class the learner is in on the promotion's date.
            check_enrolled(ctx, &d.institution, &d.from_class, ctx.date)?;
            let open = journal.open_debts_of(ctx.e.stream);
            match d.basis.as_str() {
                b if !cfg.promotion_bases.iter().any(|p| p == b) => refuse(
                    "promotion_basis_unknown",
                    format!("promotion basis {b} is not one of {}", cfg.promotion_bases.join(", ")),
                ),
                "conditional" if open == 0 => {
                    refuse("conditional_promotion_without_debt", "a conditional promotion needs an open academic debt")
                }
                "full" if open > 0 => {
                    refuse("open_debt_blocks_promotion", format!("the learner has {open} open academic debts"))
                }
                _ => Ok(()),
            }
        }
        Event::FinalAttestationRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution_of_kind(&d.institution, &["school"], "a final attestation")?;
            let Some(max) = cfg.final_exams.get(&d.exam) else {
                return refuse(
                    "exam_kind_unknown",
                    format!(
                        "final exam {} is not one of {}",
                        d.exam,
                        cfg.final_exams.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            };
            if !(0..=*max).contains(&d.score) {
                return refuse("score_out_of_range", format!("score {} is not between 0 and {max}", d.score));
            }
            if let Some(sc) = subject_scores(cfg, &d.exam, &d.subject) {
                if d.score > sc.max {
                    return refuse(
                        "score_out_of_range",
                        format!("a {} score in {} is at most {}, not {}", d.exam, d.subject, sc.max, d.score),
                    );
                }
            }
            Ok(check_academic_year(ctx, d.academic_year)?)
        }
        Event::CertificateIssued(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution_of_kind(&d.institution, &["school"], "a school certificate")?;
            if !cfg.certificate_levels.contains(&d.level) {
                return refuse(
                    "certificate_level_unknown",
                    format!("certificate level {} is not one of {}", d.level, cfg.certificate_levels.join(", ")),
                );
            }
            check_document(ctx, journal, &d.institution, &d.number, &d.issued_on, "school certificate")?;
            if let Some(req) = cfg.certificate_requirements.get(&d.level) {
                let passed = journal.exams_passed.get(ctx.e.stream);
                let missing: Vec<String> = req
                    .required_subjects
                    .iter()
                    .filter(|s| !passed.is_some_and(|p| p.contains(&(req.exam.clone(), (*s).clone()))))
                    .map(|s| {
                        let pass = req.subjects.get(s).map_or(0, |sc| sc.pass);
                        format!("{s} (at least {pass})")
                    })
                    .collect();
                if !missing.is_empty() {
                    return refuse(
                        "certificate_requirements_unmet",
                        format!(
                            "a {} certificate needs passing {} results; missing: {}",
                            d.level,
                            req.exam,
                            missing.join(", ")
                        ),
                    );
                }
            }
            Ok(())
        }
        Event::CourseResultRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.group))?;
            let inst = auth.institution_of_kind(&d.institution, &["college", "university"], "a course result")?;
            check_term(d.term, SEMESTERS_MAX)?;
            check_mark(cfg, inst, None, &d.scale, &d.mark)?;
            check_enrolled(ctx, &d.institution, &d.group, ctx.date)?;
            let place = Place::Course(d.institution.clone(), d.course.clone(), d.term);
            Ok(journal.check_place(ctx.e.stream, &place)?)
        }
        Event::ExamRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, &d.institution, &d.group))?;
            let inst = auth.institution_of_kind(&d.institution, &["college", "university"], "an exam or credit")?;
            check_term(d.term, SEMESTERS_MAX)?;
            let Some(scales) = cfg.exam_forms.get(&d.form) else {
                return refuse(
                    "exam_form_unknown",
                    format!(
                        "assessment form {} is not one of {}",
                        d.form,
                        cfg.exam_forms.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            };
            if !scales.contains(&d.scale) {
                return refuse(
                    "scale_not_allowed",
                    format!("a {} is marked on {}, not {}", d.form, scales.join(" or "), d.scale),
                );
            }
            check_mark(cfg, inst, None, &d.scale, &d.mark)?;
            check_enrolled(ctx, &d.institution, &d.group, ctx.date)?;
            Ok(journal.check_place(ctx.e.stream, &Place::Exam(d.institution.clone(), d.course.clone(), d.term))?)
        }
        Event::DiplomaIssued(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution_of_kind(&d.institution, &["college", "university"], "a diploma")?;
            if !cfg.diploma_levels.contains(&d.level) {
                return refuse(
                    "diploma_level_unknown",
                    format!("diploma level {} is not one of {}", d.level, cfg.diploma_levels.join(", ")),
                );
            }
            check_document(ctx, journal, &d.institution, &d.number, &d.issued_on, "diploma")?;
            let Some(program) = ctx.rules.contingent.program_of(ctx.sid, &d.institution) else {
                return refuse(
                    "diploma_requirements_unmet",
                    format!("learner {} was never admitted to a programme of {}", ctx.sid, d.institution),
                );
            };
            let courses = journal.curricula.get(&format!("{}/{program}", d.institution)).map_or(&[][..], Vec::as_slice);
            let missing: Vec<&str> = courses
                .iter()
                .map(String::as_str)
                .filter(|c| !journal.course_passed(ctx.e.stream, &d.institution, c))
                .collect();
            if !missing.is_empty() {
                return refuse(
                    "diploma_requirements_unmet",
                    format!("programme {program} of {} has courses not passed: {}", d.institution, missing.join(", ")),
                );
            }
            Ok(())
        }
        Event::CurriculumRegistered(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, ctx.sid))?;
            auth.institution_of_kind(ctx.sid, &["college", "university"], "a curriculum")?;
            if !cfg.diploma_levels.contains(&d.level) {
                return refuse(
                    "diploma_level_unknown",
                    format!("diploma level {} is not one of {}", d.level, cfg.diploma_levels.join(", ")),
                );
            }
            if d.courses.is_empty() {
                return refuse("event_malformed", "data.courses is empty");
            }
            let mut seen = HashSet::new();
            if let Some(c) = d.courses.iter().find(|c| !seen.insert(c.as_str())) {
                return refuse("event_malformed", format!("data.courses lists {c} twice"));
            }
            if journal.has_curriculum(ctx.sid, &d.program_id) {
                return refuse(
                    "curriculum_already_registered",
                    format!("{} already registered curriculum {}", ctx.sid, d.program_id),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A certificate or diploma: no open debt, a fresh number, a real date, a learner of the
/// institution on that date.
fn check_document(
    ctx: &Ctx,
    journal: &Journal,
    institution: &str,
    number: &str,
    issued_on: &str,
    document: &str,
) -> Result<(), RuleRefusal> {
    let open = journal.open_debts_of(ctx.e.stream);
    if open > 0 {
        return refuse("open_debt_blocks_certificate", format!("the learner has {open} open academic debts"));
    }
    if journal.documents.contains(&(institution.to_owned(), number.to_owned())) {
        return refuse("document_number_duplicate", format!("{institution} already issued document number {number}"));
    }
    let on = date_field(issued_on, "issued_on")?;
    crate::contingent::check_issued_to_own_learner(ctx, institution, on, document)
}
