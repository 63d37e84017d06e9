//! 1st-grade enrolment (Электронная запись в школу): published places, applications in window 1
//! (priority rights, siblings, territory) and window 2, the age rule, enrolment orders.
//! Not the schools' ranking of window-1 applications: orders are checked, not computed.

use crate::authority::Need;
use crate::time;
use crate::vocabulary::Event;
use crate::{date_field, refuse, Applied, Ctx, RuleRefusal};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

const REGISTRARS: &[&str] = &["registrar", "institution_admin"];
const YEAR_MIN: i64 = 2000;
const YEAR_MAX: i64 = 2200;

#[derive(Default, Serialize, Deserialize)]
struct School {
    #[serde(with = "crate::state::sorted_map")]
    places: HashMap<i64, i64>,
    #[serde(with = "crate::state::sorted_map")]
    enrolled: HashMap<i64, i64>,
    /// Application id -> (target year, enrolled).
    #[serde(with = "crate::state::sorted_map")]
    apps: HashMap<String, (i64, bool)>,
    #[serde(with = "crate::state::sorted_set")]
    orders: HashSet<String>,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct FirstGrade {
    #[serde(with = "crate::state::sorted_map")]
    schools: HashMap<String, School>,
}

impl FirstGrade {
    pub fn apply(&mut self, a: &Applied, ev: &Event) {
        let school = self.schools.entry(a.sid.to_owned()).or_default();
        match ev {
            Event::FirstGradePlacesPublished(d) => {
                school.places.insert(d.target_year, d.places);
            }
            Event::FirstGradeApplicationSubmitted(d) => {
                school.apps.entry(d.application_id.clone()).or_insert((d.target_year, false));
            }
            Event::EnrolmentOrderIssued(d) => {
                school.orders.insert(d.order_id.clone());
                for id in &d.applications {
                    if let Some(app) = school.apps.get_mut(id).filter(|app| !app.1) {
                        app.1 = true;
                        *school.enrolled.entry(app.0).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn check(ctx: &Ctx, ev: &Event) -> Result<(), RuleRefusal> {
    let (auth, cfg, sid) = (ctx.auth(), ctx.cfg(), ctx.sid);
    auth.authorize(ctx.e.author, ctx.at, ctx.e.event_type, &Need::in_institution(REGISTRARS, sid))?;
    auth.institution_of_kind(sid, &["school"], "1st-grade enrolment")?;
    let empty = School::default();
    let school = ctx.rules.first_grade.schools.get(sid).unwrap_or(&empty);
    let year = match ev {
        Event::FirstGradePlacesPublished(d) => d.target_year,
        Event::FirstGradeApplicationSubmitted(d) => d.target_year,
        Event::EnrolmentOrderIssued(d) => d.target_year,
        _ => 2000,
    };
    if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
        return refuse("event_malformed", format!("data.target_year {year} is not between {YEAR_MIN} and {YEAR_MAX}"));
    }
    match ev {
        Event::FirstGradePlacesPublished(d) => {
            if d.places > crate::queue::PLACES_MAX {
                return refuse("places_invalid", format!("{} places is more than one school declares", d.places));
            }
            let enrolled = school.enrolled.get(&d.target_year).copied().unwrap_or(0);
            if d.places < enrolled {
                return refuse(
                    "places_invalid",
                    format!("{} places for {}, but {enrolled} already enrolled", d.places, d.target_year),
                );
            }
            Ok(())
        }
        Event::FirstGradeApplicationSubmitted(d) => {
            if school.apps.contains_key(&d.application_id) {
                return refuse(
                    "application_duplicate",
                    format!("application {} already exists at {sid}", d.application_id),
                );
            }
            let fg = &cfg.first_grade;
            let window = match d.window {
                1 => &fg.window_1,
                2 => &fg.window_2,
                w => return refuse("window_unknown", format!("enrolment window {w} is not 1 or 2")),
            };
            let bound = |md: &str| {
                time::parse_month_day(md)
                    .map(|(m, dd)| time::days_from_civil(d.target_year, m, dd))
                    .ok_or_else(|| RuleRefusal::new("config_invalid", format!("window bound {md} is not MM-DD")))
            };
            let (from, to) = (bound(&window.from)?, bound(&window.to)?);
            if ctx.date < from || ctx.date > to {
                return refuse(
                    "outside_enrolment_window",
                    format!(
                        "window {} for {} runs {}..{}; this application is dated {}",
                        d.window,
                        d.target_year,
                        time::format_date(from),
                        time::format_date(to),
                        time::format_date(ctx.date)
                    ),
                );
            }
            if !window.bases.contains(&d.basis) {
                return refuse(
                    "basis_not_allowed_in_window",
                    format!("basis {} is not accepted in window {} ({})", d.basis, d.window, window.bases.join(", ")),
                );
            }
            let Some(birth) = time::parse_year_month(&d.birth_month) else {
                return refuse("event_malformed", format!("data.birth_month {} is not YYYY-MM", d.birth_month));
            };
            let (young, old) = time::age_months_on_sept1(birth, d.target_year);
            // The birth day is not in the log: refuse only an age certainly out of range.
            if d.founder_permission_ref.is_none() && (old < fg.age_months_min || young >= fg.age_months_limit) {
                return refuse(
                    "age_out_of_range",
                    format!(
                        "a child born {} is {young} to {old} months old on 1 september {}: {} to under {} months needs the founder's permission",
                        d.birth_month, d.target_year, fg.age_months_min, fg.age_months_limit
                    ),
                );
            }
            Ok(())
        }
        Event::EnrolmentOrderIssued(d) => {
            let order_date = date_field(&d.order_date, "order_date")?;
            if school.orders.contains(&d.order_id) {
                return refuse("order_duplicate", format!("order {} was already issued", d.order_id));
            }
            if d.applications.is_empty() {
                return refuse("event_malformed", "data.applications is empty");
            }
            let mut seen = HashSet::new();
            for id in &d.applications {
                if !seen.insert(id) {
                    return refuse("event_malformed", format!("data.applications lists {id} twice"));
                }
                match school.apps.get(id) {
                    Some((year, _)) if *year != d.target_year => {
                        return refuse(
                            "application_unknown",
                            format!("application {id} is for {year}, not {}", d.target_year),
                        )
                    }
                    Some((_, true)) => {
                        return refuse("already_enrolled", format!("application {id} is already enrolled"))
                    }
                    Some(_) => {}
                    None => return refuse("application_unknown", format!("{sid} has no application {id}")),
                }
            }
            let Some(places) = school.places.get(&d.target_year) else {
                return refuse(
                    "places_not_published",
                    format!("{sid} has not published its places for {}", d.target_year),
                );
            };
            let enrolled = school.enrolled.get(&d.target_year).copied().unwrap_or(0);
            if enrolled + d.applications.len() as i64 > *places {
                return refuse(
                    "no_free_place",
                    format!(
                        "{sid} has {} free places for {}, the order enrols {}",
                        places - enrolled,
                        d.target_year,
                        d.applications.len()
                    ),
                );
            }
            crate::contingent::check_order(ctx, d, order_date)
        }
        _ => Ok(()),
    }
}
