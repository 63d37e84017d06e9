//! The records the digital-maturity indicators count (DOMAIN's 2021 table): recommendations and
//! individual trajectories offered to a learner from their portfolio, a teacher's access to
//! verified digital content, a learner's free access to digital content for self-study, and
//! electronic assignments with their checking method.
//! Not the indicators themselves (the `indicators` read model computes the shares).

use crate::authority::Need;
use crate::time;
use crate::vocabulary::Event;
use crate::{date_field, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use zachetka_projections::lazy::Lazy;

const TEACHERS_ADMIN: &[&str] = &["teacher", "class_teacher", "institution_admin"];
const ADMINS: &[&str] = &["institution_admin"];
const TEACHERS: &[&str] = &["teacher", "class_teacher"];
/// How an electronic assignment is checked: the federal indicator counts the automatic ones.
pub(crate) const CHECKING_METHODS: &[&str] = &["automatic", "manual"];

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Digital {
    /// Stream -> the ids of every record accepted on it (ids are unique per stream); a stream's
    /// ids stay encoded after an open from a snapshot until that stream gets a record.
    #[serde(with = "crate::state::sorted_map")]
    records: HashMap<String, Lazy<BTreeSet<String>>>,
}

fn record_id(ev: &Event) -> Option<&str> {
    Some(match ev {
        Event::RecommendationOffered(d) => &d.recommendation_id,
        Event::TeacherContentAccessGranted(d) => &d.access_id,
        Event::LearnerContentAccessGranted(d) => &d.access_id,
        Event::AssignmentRecorded(d) => &d.assignment_id,
        _ => return None,
    })
}

impl Digital {
    /// (values still encoded, values) of the lazily loaded map.
    pub fn lazy_values(&self) -> (usize, usize) {
        (self.records.values().filter(|v| v.is_encoded()).count(), self.records.len())
    }

    pub fn apply(&mut self, a: &Applied, ev: &Event) {
        if let Some(id) = record_id(ev) {
            self.records.entry(a.e.stream.to_owned()).or_default().get_mut().insert(id.to_owned());
        }
    }
}

/// The stream's learner is enrolled at `institution` on `date`.
fn enrolled(ctx: &Ctx, institution: &str, date: time::Days) -> Result<(), RuleRefusal> {
    if ctx.rules.contingent.enrolled_at(ctx.sid, institution, date) {
        return Ok(());
    }
    refuse(
        "learner_not_enrolled",
        format!("learner {} was not enrolled in {institution} on {}", ctx.sid, time::format_date(date)),
    )
}

fn service_listed(service: &str, list: &[String], whose: &str) -> Result<(), RuleRefusal> {
    if list.iter().any(|s| s == service) {
        return Ok(());
    }
    refuse(
        "digital_service_not_verified",
        format!("service {service} is not one of the region's {whose} services ({})", list.join(", ")),
    )
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, cfg, who, at, ty) = (ctx.auth(), ctx.cfg(), ctx.e.author, ctx.at, ctx.e.event_type);
    let services = &cfg.digital_services;
    match ev {
        Event::RecommendationOffered(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(TEACHERS_ADMIN, &d.institution))?;
            auth.institution(&d.institution)?;
            if !services.recommendation_kinds.contains(&d.kind) {
                return refuse(
                    "recommendation_kind_unknown",
                    format!("kind {} is not one of {}", d.kind, services.recommendation_kinds.join(", ")),
                );
            }
            enrolled(ctx, &d.institution, date_field(&d.offered_on, "offered_on")?)?;
        }
        Event::TeacherContentAccessGranted(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(ADMINS, &d.institution))?;
            auth.institution(&d.institution)?;
            date_field(&d.granted_on, "granted_on")?;
            service_listed(&d.service, &services.verified_for_teachers, "verified teacher")?;
        }
        Event::LearnerContentAccessGranted(d) => {
            auth.authorize(who, at, ty, &Need::in_institution(ADMINS, &d.institution))?;
            auth.institution(&d.institution)?;
            service_listed(&d.service, &services.self_study_for_learners, "self-study")?;
            enrolled(ctx, &d.institution, date_field(&d.granted_on, "granted_on")?)?;
        }
        Event::AssignmentRecorded(d) => {
            auth.authorize(who, at, ty, &Need::in_class(TEACHERS, ctx.sid, &d.class))?;
            auth.institution_of_kind(ctx.sid, &["school", "college", "university"], "an electronic assignment")?;
            date_field(&d.assigned_on, "assigned_on")?;
            if !CHECKING_METHODS.contains(&d.checking.as_str()) {
                return refuse(
                    "checking_method_unknown",
                    format!("checking method {} is not one of {}", d.checking, CHECKING_METHODS.join(", ")),
                );
            }
        }
        _ => return Ok(()),
    }
    let id = record_id(ev).unwrap_or_default();
    if ctx.rules.digital.records.get(ctx.e.stream).is_some_and(|ids| ids.get().contains(id)) {
        return refuse("digital_record_duplicate", format!("{} already has a record {id}", ctx.e.stream));
    }
    Ok(())
}
