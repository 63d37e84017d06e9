//! Teacher attestation (Аттестация педагогов): applications to a commission, each member's signed
//! vote, the secretary's decision with its quorum over distinct authorised members, categories
//! that require a current высшая, and the terms of what was granted.
//! Not the commission's deliberation: only what the ledger can verify from signed events.

use crate::authority::{Authority, Need};
use crate::config::RegionConfig;
use crate::time::{self, Days};
use crate::vocabulary::Event;
use crate::{date_field, deny, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A category (or fitness check) a teacher was granted, with its term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryHeld {
    /// `fitness`, `first`, `highest`, `methodist`, `mentor` (the region's codes).
    pub category: String,
    pub granted_on: String,
    /// `None`: no end date (granted on or after the config's `unlimited_since`).
    pub valid_until: Option<String>,
    pub application_id: String,
}

impl CategoryHeld {
    /// Whether it is in force on `date` (`YYYY-MM-DD`).
    pub fn is_current(&self, date: &str) -> bool {
        let (Some(d), Some(from)) = (time::parse_date(date), time::parse_date(&self.granted_on)) else {
            return false;
        };
        from <= d
            && self.valid_until.as_deref().and_then(time::parse_date).map_or(self.valid_until.is_none(), |u| d < u)
    }
}

/// A teacher's attestation status: everything granted (with terms), applications pending and refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TeacherStatus {
    pub held: Vec<CategoryHeld>,
    pub pending: Vec<String>,
    pub refused: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Application {
    commission: String,
    category: String,
    /// (holder, voted to grant) per distinct member.
    votes: Vec<(String, bool)>,
    decided: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct Teacher {
    #[serde(with = "crate::state::sorted_map")]
    apps: HashMap<String, Application>,
    status: TeacherStatus,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Attestations {
    #[serde(with = "crate::state::sorted_map")]
    teachers: HashMap<String, Teacher>,
}

fn has_current(teacher: Option<&Teacher>, category: &str, on: Days) -> bool {
    let date = time::format_date(on);
    teacher.is_some_and(|t| t.status.held.iter().any(|h| h.category == category && h.is_current(&date)))
}

impl Attestations {
    pub fn status(&self, teacher: &str) -> Option<TeacherStatus> {
        self.teachers.get(teacher).map(|t| t.status.clone())
    }

    pub fn apply(&mut self, cfg: &RegionConfig, auth: &Authority, a: &Applied, ev: &Event) {
        let teacher = self.teachers.entry(a.sid.to_owned()).or_default();
        match ev {
            Event::AttestationApplicationSubmitted(d) => {
                if teacher.apps.contains_key(&d.application_id) {
                    return;
                }
                let app = Application {
                    commission: d.commission.clone(),
                    category: d.category.clone(),
                    votes: Vec::new(),
                    decided: false,
                };
                teacher.apps.insert(d.application_id.clone(), app);
                teacher.status.pending.push(d.application_id.clone());
            }
            Event::VoteCast(d) => {
                let Some(holder) = auth.grants.get(a.e.author).map(|g| g.holder.clone()) else {
                    return;
                };
                if let Some(app) = teacher.apps.get_mut(&d.application_id) {
                    if !app.votes.iter().any(|(h, _)| *h == holder) {
                        app.votes.push((holder, d.vote == "granted"));
                    }
                }
            }
            Event::DecisionRecorded(d) => {
                let Some(app) = teacher.apps.get_mut(&d.application_id) else {
                    return;
                };
                let Some(on) = time::parse_date(&d.decided_on) else {
                    return;
                };
                app.decided = true;
                teacher.status.pending.retain(|id| *id != d.application_id);
                if d.decision != "granted" {
                    teacher.status.refused.push(d.application_id.clone());
                    return;
                }
                let rules = &cfg.attestation;
                let unlimited = time::parse_date(&rules.unlimited_since).is_some_and(|since| on >= since);
                let valid_until = (app.category == rules.fitness_check || !unlimited)
                    .then(|| time::format_date(time::add_years(on, rules.term_years)));
                teacher.status.held.push(CategoryHeld {
                    category: app.category.clone(),
                    granted_on: d.decided_on.clone(),
                    valid_until,
                    application_id: d.application_id.clone(),
                });
            }
            _ => {}
        }
    }
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, cfg, sid, who, at, ty) = (ctx.auth(), ctx.cfg(), ctx.sid, ctx.e.author, ctx.at, ctx.e.event_type);
    let rules = &cfg.attestation;
    let teacher = ctx.rules.attestation.teachers.get(sid);
    let application = |id: &str| {
        let app = teacher.and_then(|t| t.apps.get(id));
        match app {
            None => {
                refuse("attestation_application_unknown", format!("teacher {sid} has no attestation application {id}"))
            }
            Some(a) if a.decided => {
                refuse("attestation_already_decided", format!("application {id} was already decided"))
            }
            Some(a) => Ok(a),
        }
    };
    match ev {
        Event::AttestationApplicationSubmitted(d) => {
            let g = auth.authorize(
                who,
                at,
                ty,
                &Need::in_institution(&["teacher", "class_teacher", "institution_admin"], &d.institution),
            )?;
            if !g.has_role("institution_admin") && g.holder != sid {
                return deny("not_authorized", format!("key {who} belongs to {}, not to teacher {sid}", g.holder));
            }
            auth.institution_of_kind(&d.commission, &["attestation_commission"], "an attestation application")?;
            if !rules.quorum.contains_key(&d.category) {
                let known: Vec<&str> = rules.quorum.keys().map(String::as_str).collect();
                return refuse(
                    "category_unknown",
                    format!("category {} is not one of {}", d.category, known.join(", ")),
                );
            }
            if teacher.is_some_and(|t| t.apps.contains_key(&d.application_id)) {
                return refuse("application_duplicate", format!("application {} already exists", d.application_id));
            }
            if rules.requires_highest.contains(&d.category) && !has_current(teacher, &rules.highest_category, ctx.date)
            {
                return refuse(
                    "requires_highest_category",
                    format!("category {} requires a current {} category", d.category, rules.highest_category),
                );
            }
            Ok(())
        }
        Event::VoteCast(d) => {
            let app = application(&d.application_id)?;
            let g = auth.authorize(who, at, ty, &Need::in_institution(&["commission_member"], &app.commission))?;
            if d.vote != "granted" && d.vote != "refused" {
                return refuse("vote_invalid", format!("vote {} is not granted or refused", d.vote));
            }
            if app.votes.iter().any(|(h, _)| *h == g.holder) {
                return refuse(
                    "vote_already_cast",
                    format!("member {} already voted on {}", g.holder, d.application_id),
                );
            }
            Ok(())
        }
        Event::DecisionRecorded(d) => {
            let app = application(&d.application_id)?;
            auth.authorize(who, at, ty, &Need::in_institution(&["commission_secretary"], &app.commission))?;
            if d.decision != "granted" && d.decision != "refused" {
                return refuse("decision_invalid", format!("decision {} is not granted or refused", d.decision));
            }
            let on = date_field(&d.decided_on, "decided_on")?;
            let quorum = rules.quorum.get(&app.category).copied().unwrap_or(i64::MAX);
            let votes = app.votes.len() as i64;
            if votes < quorum {
                return refuse(
                    "quorum_not_met",
                    format!(
                        "{votes} distinct authorised members of {} voted; category {} needs at least {quorum}",
                        app.commission, app.category
                    ),
                );
            }
            let yes = app.votes.iter().filter(|(_, v)| *v).count() as i64;
            let majority = if 2 * yes > votes { "granted" } else { "refused" };
            if d.decision != majority {
                return refuse(
                    "decision_contradicts_votes",
                    format!("{yes} of {votes} members voted to grant: the decision is {majority}"),
                );
            }
            if d.decision == "granted"
                && rules.requires_highest.contains(&app.category)
                && !has_current(teacher, &rules.highest_category, on)
            {
                return refuse(
                    "requires_highest_category",
                    format!("category {} requires a current {} category", app.category, rules.highest_category),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
