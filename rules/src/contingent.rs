//! The contingent: who is in which institution and class (group) on which date. Admissions to a
//! school class of any year or to a college or university group, the class of each academic
//! year and moves between classes, expulsion, graduation, transfers (`learner.transferred`) and
//! academic leave, and the 1st-grade enrolment order (`enrolment.order_issued`), which enrols the
//! learners of its applications into the 1st grade of its school from 1 September of its year,
//! so those learners need no separate admission. Grades, attendance and course results ask
//! `check_enrolled` (`learner_not_enrolled`, `learner_on_academic_leave`); certificates and
//! diplomas ask `check_issued_to_own_learner` (an institution documents only its own learners).
//! An admission or a class names the academic year of its first day (`academic_year_mismatch`).
//! Not the read models (who is in a class today is a projection) and not the 1st-grade
//! applications' own checks (`enrolment`).
//!
//! A learner's enrolment is a list of periods `[from, to)`: a class period ends on the day the
//! next one starts (a new class, an expulsion, a graduation, a transfer), so a mark dated on the
//! day of leaving is refused; a record may be written late, so the date asked is the record's
//! own date (a lesson date) and history is kept, not only the current class.

use crate::authority::Need;
use crate::time::{self, Days};
use crate::vocabulary::{EnrolmentOrderIssued, Event};
use crate::{date_field, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use zachetka_projections::lazy::Lazy;

const REGISTRARS: &[&str] = &["registrar", "institution_admin"];
const YEAR_MIN: i64 = 2000;
const YEAR_MAX: i64 = 2200;

/// One stay in an institution and class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Period {
    institution: String,
    /// `None`: enrolled by a 1st-grade order, in a 1st-grade class not named yet (any class of
    /// school year 1 matches until `contingent.class_assigned` names one).
    class: Option<String>,
    from: Days,
    /// Exclusive end; `None` while it lasts.
    to: Option<Days>,
    program_id: Option<String>,
}

impl Period {
    fn covers(&self, institution: &str, class: &str, date: Days) -> bool {
        self.institution == institution
            && match &self.class {
                Some(c) => c == class,
                None => crate::journal::school_year(class).is_ok_and(|y| y == 1),
            }
            && self.from <= date
            && !matches!(self.to, Some(t) if date >= t)
    }

    fn class_text(&self) -> &str {
        self.class.as_deref().unwrap_or("1st grade (class not assigned yet)")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LearnerRecord {
    periods: Vec<Period>,
    /// Academic leaves: (institution, first day, exclusive end).
    leaves: Vec<(String, Days, Days)>,
    /// The school and year of the 1st-grade order that enrolled the learner.
    first_grade: Option<(String, i64)>,
}

impl LearnerRecord {
    fn open(&self) -> Option<&Period> {
        self.periods.last().filter(|p| p.to.is_none())
    }

    fn open_mut(&mut self) -> Option<&mut Period> {
        self.periods.last_mut().filter(|p| p.to.is_none())
    }
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Contingent {
    /// Learner id (the stream's id) -> enrolment history.
    #[serde(with = "crate::state::sorted_map")]
    learners: HashMap<String, Lazy<LearnerRecord>>,
    /// `<school>/<application id>` of a 1st-grade application -> (learner, window).
    #[serde(with = "crate::state::sorted_map")]
    first_grade_apps: HashMap<String, (String, i64)>,
}

impl Contingent {
    /// The program the learner was admitted to at `institution` (their latest stay there).
    pub fn program_of(&self, learner: &str, institution: &str) -> Option<&str> {
        let r = self.learners.get(learner)?.get();
        r.periods.iter().rev().find(|p| p.institution == institution).and_then(|p| p.program_id.as_deref())
    }

    /// Whether the learner is enrolled at `institution` (any class) on `date`.
    pub fn enrolled_at(&self, learner: &str, institution: &str, date: Days) -> bool {
        self.learners.get(learner).is_some_and(|r| {
            r.get()
                .periods
                .iter()
                .any(|p| p.institution == institution && p.from <= date && !matches!(p.to, Some(t) if date >= t))
        })
    }

    /// (values still encoded, values) of the lazily loaded map.
    pub fn lazy_values(&self) -> (usize, usize) {
        (self.learners.values().filter(|v| v.is_encoded()).count(), self.learners.len())
    }

    fn close(&mut self, learner: &str, on: Days) {
        if let Some(p) = self.learners.get_mut(learner).and_then(|r| r.get_mut().open_mut()) {
            p.to = Some(on.max(p.from));
        }
    }

    pub fn apply(&mut self, a: &Applied, ev: &Event) {
        let day = |s: &str| time::parse_date(s);
        match ev {
            Event::ContingentAdmitted(d) => {
                let Some(from) = day(&d.admitted_on) else { return };
                self.learners.entry(a.sid.to_owned()).or_default().get_mut().periods.push(Period {
                    institution: d.institution.clone(),
                    class: Some(d.class.clone()),
                    from,
                    to: None,
                    program_id: d.program_id.clone(),
                });
            }
            Event::ClassAssigned(d) => {
                let Some(on) = day(&d.assigned_on) else { return };
                let Some(r) = self.learners.get_mut(a.sid).map(Lazy::get_mut) else { return };
                let Some(open) = r.open_mut() else { return };
                open.to = Some(on.max(open.from));
                let (institution, program_id) = (open.institution.clone(), open.program_id.clone());
                r.periods.push(Period { institution, class: Some(d.class.clone()), from: on, to: None, program_id });
            }
            Event::ContingentExpelled(d) => {
                if let Some(on) = day(&d.expelled_on) {
                    self.close(a.sid, on);
                }
            }
            Event::ContingentGraduated(d) => {
                if let Some(on) = day(&d.graduated_on) {
                    self.close(a.sid, on);
                }
            }
            Event::LearnerTransferred(d) => {
                if let Some(on) = day(&d.transferred_on) {
                    self.close(a.sid, on);
                }
            }
            Event::AcademicLeaveGranted(d) => {
                if let (Some(s), Some(e)) = (day(&d.starts_on), day(&d.ends_on)) {
                    let r = self.learners.entry(a.sid.to_owned()).or_default().get_mut();
                    r.leaves.push((d.institution.clone(), s, e));
                }
            }
            Event::FirstGradeApplicationSubmitted(d) => {
                self.first_grade_apps
                    .entry(format!("{}/{}", a.sid, d.application_id))
                    .or_insert_with(|| (d.learner.clone(), d.window));
            }
            Event::EnrolmentOrderIssued(d) => {
                let from = time::days_from_civil(d.target_year, 9, 1);
                for app in &d.applications {
                    let Some((learner, _)) = self.first_grade_apps.get(&format!("{}/{app}", a.sid)) else { continue };
                    let r = self.learners.entry(learner.clone()).or_default().get_mut();
                    if r.first_grade.is_some() || r.open().is_some() {
                        continue;
                    }
                    r.first_grade = Some((a.sid.to_owned(), d.target_year));
                    r.periods.push(Period {
                        institution: a.sid.to_owned(),
                        class: None,
                        from,
                        to: None,
                        program_id: None,
                    });
                }
            }
            _ => {}
        }
    }
}

fn check_year(year: i64) -> Result<(), RuleRefusal> {
    if (YEAR_MIN..=YEAR_MAX).contains(&year) {
        Ok(())
    } else {
        refuse("event_malformed", format!("data.academic_year {year} is not between {YEAR_MIN} and {YEAR_MAX}"))
    }
}

/// DOMAIN "Contingent": class membership is kept per academic year, so an admission or a class
/// names the academic year of its first day `on` (1 September to 31 August, named by its first
/// calendar year), or, for a stay that starts in the summer (June to August), the academic year
/// that begins on the 1 September after it (an order for the coming year); otherwise
/// `academic_year_mismatch`.
fn check_membership_year(year: i64, on: Days, field: &str) -> Result<(), RuleRefusal> {
    let of_date = time::academic_year_of(on);
    let (_, month, _) = time::civil_from_days(on);
    if year == of_date || (year == of_date + 1 && (6..=8).contains(&month)) {
        return Ok(());
    }
    let coming = if (6..=8).contains(&month) { format!(" or the coming {}", of_date + 1) } else { String::new() };
    refuse(
        "academic_year_mismatch",
        format!(
            "data.academic_year {year} is not the academic year of data.{field} {} ({of_date}/{:02}{coming}); \
             class membership is kept per academic year",
            time::format_date(on),
            (of_date + 1).rem_euclid(100)
        ),
    )
}

/// A grade, attendance mark or course result for the stream's learner at `institution`, in
/// `class` (a group at a college or university), dated `date`: refused unless the learner was
/// enrolled there in that class on that date and not on academic leave.
pub(crate) fn check_enrolled(ctx: &Ctx, institution: &str, class: &str, date: Days) -> Result<(), RuleRefusal> {
    let record = ctx.rules.contingent.learners.get(ctx.sid).map(Lazy::get);
    let Some(r) = record.filter(|r| r.periods.iter().any(|p| p.covers(institution, class, date))) else {
        let now = record
            .and_then(|r| r.periods.iter().rev().find(|p| p.from <= date && !matches!(p.to, Some(t) if date >= t)));
        let where_ = match now {
            Some(p) => format!("; on that date they were in {} of {}", p.class_text(), p.institution),
            None => "; on that date they were enrolled nowhere".to_owned(),
        };
        return refuse(
            "learner_not_enrolled",
            format!(
                "learner {} was not enrolled in {class} of {institution} on {}{where_}",
                ctx.sid,
                time::format_date(date)
            ),
        );
    };
    if let Some((_, s, e)) = r.leaves.iter().find(|(i, s, e)| i == institution && *s <= date && date < *e) {
        return refuse(
            "learner_on_academic_leave",
            format!(
                "learner {} is on academic leave from {institution} from {} to {}",
                ctx.sid,
                time::format_date(*s),
                time::format_date(*e)
            ),
        );
    }
    Ok(())
}

/// A document (a school certificate, a diploma) issued by `institution` to the stream's learner
/// on `date`: refused unless the learner was enrolled there on that date. A document is issued
/// as a learner leaves, so the day a stay ends (a graduation dated that day) still counts.
pub(crate) fn check_issued_to_own_learner(
    ctx: &Ctx,
    institution: &str,
    date: Days,
    document: &str,
) -> Result<(), RuleRefusal> {
    let record = ctx.rules.contingent.learners.get(ctx.sid).map(Lazy::get);
    let stayed = |p: &&Period| p.institution == institution && p.from <= date && p.to.is_none_or(|t| date <= t);
    if record.is_some_and(|r| r.periods.iter().any(|p| stayed(&p))) {
        return Ok(());
    }
    let there = record.and_then(|r| r.periods.iter().rev().find(|p| p.institution == institution));
    let detail = match there {
        Some(p) => format!(
            "; their stay there ran from {}{}",
            time::format_date(p.from),
            p.to.map_or_else(String::new, |t| format!(" to {}", time::format_date(t)))
        ),
        None => "; they were never enrolled there".to_owned(),
    };
    refuse(
        "learner_not_enrolled",
        format!(
            "{institution} cannot issue a {document} to learner {} on {}: they were not enrolled there on that date{detail}",
            ctx.sid,
            time::format_date(date)
        ),
    )
}

/// The open stay of the stream's learner at `institution`, or `learner_not_enrolled`.
fn open_at<'c>(ctx: &'c Ctx, institution: &str) -> Result<&'c Period, RuleRefusal> {
    let open = ctx.rules.contingent.learners.get(ctx.sid).map(Lazy::get).and_then(LearnerRecord::open);
    match open {
        Some(p) if p.institution == institution => Ok(p),
        Some(p) => refuse(
            "learner_not_enrolled",
            format!("learner {} is enrolled in {}, not in {institution}", ctx.sid, p.institution),
        ),
        None => refuse("learner_not_enrolled", format!("learner {} is not enrolled in {institution}", ctx.sid)),
    }
}

/// A date that ends or changes a stay: not before the stay began.
fn not_before(p: &Period, on: Days, field: &str) -> Result<(), RuleRefusal> {
    if on < p.from {
        return refuse(
            "contingent_date_out_of_order",
            format!(
                "data.{field} {} precedes the current stay in {} of {} (from {})",
                time::format_date(on),
                p.class_text(),
                p.institution,
                time::format_date(p.from)
            ),
        );
    }
    Ok(())
}

/// `learner.transferred`: the source is where the learner is enrolled (called by `portfolio`).
pub(crate) fn check_transfer(ctx: &Ctx, from_institution: &str, transferred_on: Days) -> Result<(), RuleRefusal> {
    let p = open_at(ctx, from_institution)?;
    not_before(p, transferred_on, "transferred_on")
}

/// `enrolment.order_issued` (called by `enrolment` after its own checks): window-1 orders within
/// the region's working days after the window, and no learner enrolled into a 1st grade twice.
pub(crate) fn check_order(ctx: &Ctx, d: &EnrolmentOrderIssued, order_date: Days) -> Result<(), RuleRefusal> {
    let (cfg, state) = (ctx.cfg(), &ctx.rules.contingent);
    let mut learners = HashSet::new();
    let mut window_1 = false;
    for app in &d.applications {
        let Some((learner, window)) = state.first_grade_apps.get(&format!("{}/{app}", ctx.sid)) else {
            continue;
        };
        window_1 |= *window == 1;
        if !learners.insert(learner.as_str()) {
            return refuse(
                "learner_already_enrolled",
                format!("order {} enrols learner {learner} twice (application {app})", d.order_id),
            );
        }
        let Some(r) = state.learners.get(learner).map(Lazy::get) else { continue };
        if let Some((school, year)) = &r.first_grade {
            return refuse(
                "learner_already_enrolled",
                format!("learner {learner} (application {app}) was already enrolled into the 1st grade of {school} for {year}"),
            );
        }
        if let Some(p) = r.open() {
            return refuse(
                "learner_already_enrolled",
                format!("learner {learner} (application {app}) is enrolled in {} of {}", p.class_text(), p.institution),
            );
        }
    }
    if window_1 {
        let fg = &cfg.first_grade;
        let Some((m, dd)) = time::parse_month_day(&fg.window_1.to) else {
            return refuse("config_invalid", format!("window bound {} is not MM-DD", fg.window_1.to));
        };
        let last = time::days_from_civil(d.target_year, m, dd);
        let deadline = ctx.rules.calendar.add_working_days(last, fg.window_1_order_working_days);
        let issued = order_date.max(ctx.date);
        if issued > deadline {
            return refuse(
                "enrolment_order_late",
                format!(
                    "an order enrolling window-1 applications for {} is due by {} ({} working days after {}); this one is dated {}",
                    d.target_year,
                    time::format_date(deadline),
                    fg.window_1_order_working_days,
                    time::format_date(last),
                    time::format_date(issued)
                ),
            );
        }
    }
    Ok(())
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, who, at, ty) = (ctx.auth(), ctx.e.author, ctx.at, ctx.e.event_type);
    let state = &ctx.rules.contingent;
    let record = state.learners.get(ctx.sid).map(Lazy::get);
    match ev {
        Event::ContingentAdmitted(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            let inst =
                auth.institution_of_kind(&d.institution, &["school", "college", "university"], "an admission")?;
            check_year(d.academic_year)?;
            let on = date_field(&d.admitted_on, "admitted_on")?;
            check_membership_year(d.academic_year, on, "admitted_on")?;
            if inst.kind == "school" {
                crate::journal::school_year(&d.class)?;
                if d.program_id.is_some() {
                    return refuse("event_malformed", "data.program_id names a college or university curriculum");
                }
            } else {
                let Some(program) = &d.program_id else {
                    return refuse(
                        "event_malformed",
                        "data.program_id is missing (required at a college or university)",
                    );
                };
                if !ctx.rules.journal.has_curriculum(&d.institution, program) {
                    return refuse(
                        "program_unknown",
                        format!("{} has registered no curriculum {program}", d.institution),
                    );
                }
            }
            if let Some(p) = record.and_then(LearnerRecord::open) {
                return refuse(
                    "learner_already_enrolled",
                    format!(
                        "learner {} is enrolled in {} of {} since {}: a transfer, expulsion or graduation ends it first",
                        ctx.sid,
                        p.class_text(),
                        p.institution,
                        time::format_date(p.from)
                    ),
                );
            }
            if let Some(ended) = record.and_then(|r| r.periods.last()).and_then(|p| p.to.map(|to| (p, to))) {
                if on < ended.1 {
                    return refuse(
                        "contingent_date_out_of_order",
                        format!(
                            "data.admitted_on {} precedes the end of the learner's last stay ({} of {}, until {})",
                            d.admitted_on,
                            ended.0.class_text(),
                            ended.0.institution,
                            time::format_date(ended.1)
                        ),
                    );
                }
            }
            Ok(())
        }
        Event::ClassAssigned(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            let inst = auth.institution_of_kind(&d.institution, &["school", "college", "university"], "a class")?;
            check_year(d.academic_year)?;
            let on = date_field(&d.assigned_on, "assigned_on")?;
            check_membership_year(d.academic_year, on, "assigned_on")?;
            if inst.kind == "school" {
                crate::journal::school_year(&d.class)?;
            }
            let p = open_at(ctx, &d.institution)?;
            if p.class.as_deref() == Some(d.class.as_str()) {
                return refuse("class_unchanged", format!("learner {} is already in {}", ctx.sid, d.class));
            }
            not_before(p, on, "assigned_on")
        }
        Event::ContingentExpelled(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution(&d.institution)?;
            let on = date_field(&d.expelled_on, "expelled_on")?;
            let p = open_at(ctx, &d.institution)?;
            not_before(p, on, "expelled_on")
        }
        Event::ContingentGraduated(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution(&d.institution)?;
            let on = date_field(&d.graduated_on, "graduated_on")?;
            let p = open_at(ctx, &d.institution)?;
            not_before(p, on, "graduated_on")
        }
        Event::AcademicLeaveGranted(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(REGISTRARS, &d.institution))?;
            auth.institution_of_kind(&d.institution, &["college", "university"], "academic leave")?;
            let (s, e) = (date_field(&d.starts_on, "starts_on")?, date_field(&d.ends_on, "ends_on")?);
            if e <= s {
                return refuse("leave_dates_invalid", format!("academic leave ends on {} before it starts", d.ends_on));
            }
            let p = open_at(ctx, &d.institution)?;
            not_before(p, s, "starts_on")
        }
        _ => Ok(()),
    }
}
