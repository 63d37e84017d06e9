//! `first-grade`: 1st-grade enrolment per school (`institution/<school>` streams): published
//! places per target year, applications by window and basis, enrolment orders (which
//! applications each order enrolled, its date), and the free places that remain.
//! Not the rules of windows, ages and orders (`zachetka-rules`) and not a ranking of window-1
//! applications: schools issue orders, this model shows them.

use crate::model::{self, segment, DecodeError, Fact, ReadModel, Scope, View, ViewError};
use crate::models::shared::EntryRef;
use crate::vocabulary::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NAME: &str = "first-grade";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Application {
    learner: String,
    target_year: i64,
    window: i64,
    basis: String,
    founder_permission_ref: Option<String>,
    submitted_at: String,
    at: EntryRef,
    /// The order that enrolled it.
    order: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    target_year: i64,
    applications: Vec<String>,
    order_date: String,
    at: EntryRef,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct School {
    /// Target year -> every publication of its places, in log order (the last one is in force).
    places: BTreeMap<i64, Vec<(i64, EntryRef)>>,
    applications: BTreeMap<String, Application>,
    orders: BTreeMap<String, Order>,
}

/// The `first-grade` read model.
#[derive(Debug, Clone, Default)]
pub struct FirstGrade {
    schools: BTreeMap<String, School>,
}

impl ReadModel for FirstGrade {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, fact: &Fact<'_>) {
        let school = match fact.event {
            Event::FirstGradePlacesPublished(_)
            | Event::FirstGradeApplicationSubmitted(_)
            | Event::EnrolmentOrderIssued(_) => self.schools.entry(fact.stream_id().to_owned()).or_default(),
            _ => return,
        };
        let at = EntryRef::of(fact);
        match fact.event {
            Event::FirstGradePlacesPublished(d) => school.places.entry(d.target_year).or_default().push((d.places, at)),
            Event::FirstGradeApplicationSubmitted(d) => {
                school.applications.entry(d.application_id.clone()).or_insert_with(|| Application {
                    learner: d.learner.clone(),
                    target_year: d.target_year,
                    window: d.window,
                    basis: d.basis.clone(),
                    founder_permission_ref: d.founder_permission_ref.clone(),
                    submitted_at: fact.occurred_at.to_owned(),
                    at,
                    order: None,
                });
            }
            Event::EnrolmentOrderIssued(d) => {
                for id in &d.applications {
                    if let Some(a) = school.applications.get_mut(id).filter(|a| a.order.is_none()) {
                        a.order = Some(d.order_id.clone());
                    }
                }
                school.orders.entry(d.order_id.clone()).or_insert_with(|| Order {
                    target_year: d.target_year,
                    applications: d.applications.clone(),
                    order_date: d.order_date.clone(),
                    at,
                });
            }
            _ => {}
        }
    }

    fn encode(&self) -> Vec<u8> {
        model::encode_state(&self.schools)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.schools = model::decode_state(NAME, bytes)?;
        Ok(())
    }

    fn view(&self, path: &[&str]) -> Result<View, ViewError> {
        let institution = segment(path, 0, "an institution id")?;
        let school = self
            .schools
            .get(institution)
            .ok_or_else(|| ViewError::NotFound(format!("{institution} has no 1st-grade enrolment records")))?;
        let scope = Scope::Institution(institution.to_owned());
        match path.len() {
            1 => {
                let years: Vec<Value> = years(school).into_iter().map(|y| year_summary(school, y)).collect();
                Ok(View { scope, body: json!({"institution": institution, "years": years}) })
            }
            2 => {
                let year: i64 = path[1].parse().map_err(|_| {
                    ViewError::BadPath(format!("expected <institution>/<target_year> with a year, not {}", path[1]))
                })?;
                if !years(school).contains(&year) {
                    return Err(ViewError::NotFound(format!("{institution} has no 1st-grade records for {year}")));
                }
                Ok(View { scope, body: year_detail(school, institution, year) })
            }
            _ => Err(ViewError::BadPath("expected <institution> or <institution>/<target_year>".into())),
        }
    }
}

fn years(s: &School) -> Vec<i64> {
    let mut y: Vec<i64> = s
        .places
        .keys()
        .copied()
        .chain(s.applications.values().map(|a| a.target_year))
        .chain(s.orders.values().map(|o| o.target_year))
        .collect();
    y.sort_unstable();
    y.dedup();
    y
}

/// Places in force, enrolled count and free places (`None` where no places were published).
fn counts(s: &School, year: i64) -> (Option<&(i64, EntryRef)>, u64, Option<i64>) {
    let places = s.places.get(&year).and_then(|v| v.last());
    let enrolled = s.applications.values().filter(|a| a.target_year == year && a.order.is_some()).count() as u64;
    (places, enrolled, places.map(|(p, _)| p - enrolled as i64))
}

/// Applications per window and basis: `[{"window": 1, "basis": "sibling", "applications": 2, "enrolled": 1}]`.
fn by_window(s: &School, year: i64) -> Vec<Value> {
    let mut m: BTreeMap<(i64, &str), (u64, u64)> = BTreeMap::new();
    for a in s.applications.values().filter(|a| a.target_year == year) {
        let e = m.entry((a.window, a.basis.as_str())).or_default();
        e.0 += 1;
        e.1 += u64::from(a.order.is_some());
    }
    m.into_iter().map(|((w, b), (n, e))| json!({"window": w, "basis": b, "applications": n, "enrolled": e})).collect()
}

fn year_summary(s: &School, year: i64) -> Value {
    let (places, enrolled, free) = counts(s, year);
    json!({
        "target_year": year,
        "places": places.map(|(p, _)| p),
        "enrolled": enrolled,
        "free": free,
        "applications": s.applications.values().filter(|a| a.target_year == year).count(),
        "orders": s.orders.values().filter(|o| o.target_year == year).count(),
        "by_window": by_window(s, year),
    })
}

fn year_detail(s: &School, institution: &str, year: i64) -> Value {
    let (places, enrolled, free) = counts(s, year);
    let publications: Vec<Value> = s
        .places
        .get(&year)
        .into_iter()
        .flatten()
        .map(|(p, at)| json!({"places": p, "event": at.event, "seq": at.seq}))
        .collect();
    let mut apps: Vec<(&String, &Application)> = s.applications.iter().filter(|(_, a)| a.target_year == year).collect();
    apps.sort_by_key(|(_, a)| a.at.seq);
    let applications: Vec<Value> = apps
        .into_iter()
        .map(|(id, a)| {
            json!({
                "application": id,
                "learner": a.learner,
                "window": a.window,
                "basis": a.basis,
                "founder_permission_ref": a.founder_permission_ref,
                "submitted_at": a.submitted_at,
                "status": if a.order.is_some() { "enrolled" } else { "pending" },
                "order": a.order,
                "event": a.at.event,
                "seq": a.at.seq,
            })
        })
        .collect();
    let mut orders: Vec<(&String, &Order)> = s.orders.iter().filter(|(_, o)| o.target_year == year).collect();
    orders.sort_by_key(|(_, o)| o.at.seq);
    let orders: Vec<Value> = orders
        .into_iter()
        .map(|(id, o)| {
            json!({"order": id, "order_date": o.order_date, "applications": o.applications,
                   "event": o.at.event, "seq": o.at.seq})
        })
        .collect();
    json!({
        "institution": institution,
        "target_year": year,
        "places": places.map(|(p, at)| json!({"places": p, "event": at.event, "seq": at.seq})),
        "places_published": publications,
        "enrolled": enrolled,
        "free": free,
        "by_window": by_window(s, year),
        "applications": applications,
        "orders": orders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::shared::testing::*;

    const S: &str = "institution/sch-1";

    fn history() -> Vec<Row> {
        vec![
            row(0, S, "enrolment.places_published", "2027-03-20T09:00:00Z", json!({"target_year": 2027, "places": 3})),
            row(
                1,
                S,
                "enrolment.application_submitted",
                "2027-04-01T09:00:00Z",
                json!({"application_id": "fa-1", "learner": "47-1", "target_year": 2027, "window": 1, "basis": "sibling", "birth_month": "2020-10"}),
            ),
            row(
                2,
                S,
                "enrolment.application_submitted",
                "2027-04-02T09:00:00Z",
                json!({"application_id": "fa-2", "learner": "47-2", "target_year": 2027, "window": 1, "basis": "territory", "birth_month": "2020-05"}),
            ),
            row(
                3,
                "institution/sch-2",
                "enrolment.places_published",
                "2027-03-20T09:00:00Z",
                json!({"target_year": 2027, "places": 9}),
            ),
            row(4, S, "enrolment.places_published", "2027-03-25T09:00:00Z", json!({"target_year": 2027, "places": 4})),
            row(
                5,
                S,
                "enrolment.order_issued",
                "2027-07-02T09:00:00Z",
                json!({"order_id": "ord-1", "target_year": 2027, "applications": ["fa-1"], "order_date": "2027-07-02"}),
            ),
            row(
                6,
                S,
                "enrolment.application_submitted",
                "2027-07-07T09:00:00Z",
                json!({"application_id": "fa-3", "learner": "47-3", "target_year": 2027, "window": 2, "basis": "general", "birth_month": "2020-01", "founder_permission_ref": "perm-9"}),
            ),
            row(
                7,
                S,
                "enrolment.application_submitted",
                "2027-07-08T09:00:00Z",
                json!({"application_id": "fa-4", "learner": "47-4", "target_year": 2027, "window": 2, "basis": "sibling", "birth_month": "2020-02"}),
            ),
        ]
    }

    #[test]
    fn per_school_and_year() {
        let m: FirstGrade = build(&history());
        let v = m.view(&["sch-1"]).unwrap();
        assert_eq!(v.scope, Scope::Institution("sch-1".into()));
        assert_eq!(
            v.body,
            json!({"institution": "sch-1", "years": [{
            "target_year": 2027, "places": 4, "enrolled": 1, "free": 3, "applications": 4, "orders": 1,
            "by_window": [
                {"window": 1, "basis": "sibling", "applications": 1, "enrolled": 1},
                {"window": 1, "basis": "territory", "applications": 1, "enrolled": 0},
                {"window": 2, "basis": "general", "applications": 1, "enrolled": 0},
                {"window": 2, "basis": "sibling", "applications": 1, "enrolled": 0},
            ]}]})
        );
        let y = m.view(&["sch-1", "2027"]).unwrap().body;
        assert_eq!(y["places"], json!({"places": 4, "event": "e4", "seq": 4}));
        assert_eq!(y["places_published"].as_array().unwrap().len(), 2);
        assert_eq!(y["free"], json!(3));
        assert_eq!(
            y["orders"],
            json!([{"order": "ord-1", "order_date": "2027-07-02", "applications": ["fa-1"], "event": "e5", "seq": 5}])
        );
        let ids: Vec<&str> =
            y["applications"].as_array().unwrap().iter().map(|a| a["application"].as_str().unwrap()).collect();
        assert_eq!(ids, ["fa-1", "fa-2", "fa-3", "fa-4"]);
        assert_eq!(y["applications"][0]["status"], json!("enrolled"));
        assert_eq!(y["applications"][0]["order"], json!("ord-1"));
        assert_eq!(y["applications"][2]["founder_permission_ref"], json!("perm-9"));
        assert_eq!(y["applications"][1]["status"], json!("pending"));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let m: FirstGrade = build(&history());
        assert!(matches!(m.view(&["sch-9"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["sch-1", "2031"]), Err(ViewError::NotFound(_))));
        assert!(matches!(m.view(&["sch-1", "next"]), Err(ViewError::BadPath(_))));
        assert!(matches!(m.view(&["sch-1", "2027", "x"]), Err(ViewError::BadPath(_))));
        assert!(matches!(m.view(&[]), Err(ViewError::BadPath(_))));
    }

    #[test]
    fn deterministic() {
        check_determinism::<FirstGrade>(&history());
    }
}
