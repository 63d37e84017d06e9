//! 1st-grade enrolment: windows, bases, the age rule, places and orders.

use crate::harness::*;
use serde_json::{json, Value};

const S: &str = "institution/sch-001";

fn app(id: &str, window: i64, basis: &str, birth: &str) -> Value {
    json!({"application_id": id, "learner": format!("47-{id}"), "target_year": 2027, "window": window, "basis": basis, "birth_month": birth})
}

#[test]
fn windows_and_bases() {
    let mut h = Harness::region();
    h.at("2027-03-31T20:59:59Z").refused(
        "outside_enrolment_window",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a1", 1, "territory", "2020-12"),
    );
    // 21:00 UTC on 31 March is 1 April in the region (UTC+3).
    h.at("2027-03-31T21:00:00Z").ok(
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a1", 1, "territory", "2020-12"),
    );
    h.at("2027-06-30T12:00:00Z").ok(
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a2", 1, "sibling", "2020-12"),
    );
    h.refused(
        "basis_not_allowed_in_window",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a3", 1, "general", "2020-12"),
    );
    h.refused(
        "application_duplicate",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a2", 1, "sibling", "2020-12"),
    );
    h.refused("window_unknown", REGISTRAR, S, "enrolment.application_submitted", app("a3", 3, "general", "2020-12"));
    h.at("2027-07-03T12:00:00Z").refused(
        "outside_enrolment_window",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a3", 1, "territory", "2020-12"),
    );
    h.refused(
        "outside_enrolment_window",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a3", 2, "general", "2020-12"),
    );
    h.at("2027-07-06T09:00:00Z").ok(
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a3", 2, "general", "2020-12"),
    );
    h.at("2027-09-05T20:00:00Z").ok(
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a4", 2, "general", "2020-12"),
    );
    h.at("2027-09-05T21:00:00Z").refused(
        "outside_enrolment_window",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a5", 2, "general", "2020-12"),
    );
    h.refused("not_authorized", TEACHER, S, "enrolment.application_submitted", app("a5", 2, "general", "2020-12"));
    h.refused(
        "not_authorized",
        REGISTRAR,
        "institution/sch-002",
        "enrolment.application_submitted",
        app("a5", 2, "general", "2020-12"),
    );
}

#[test]
fn age_six_and_a_half_to_eight_unless_the_founder_permits() {
    let mut h = Harness::region();
    h.at("2027-05-01T09:00:00Z");
    // Born March 2021: 77 or 78 months on 2027-09-01 (maybe 6.5): accepted.
    h.ok(REGISTRAR, S, "enrolment.application_submitted", app("a1", 1, "territory", "2021-03"));
    // Born April 2021: at most 77 months: too young.
    assert!(h
        .refused(
            "age_out_of_range",
            REGISTRAR,
            S,
            "enrolment.application_submitted",
            app("a2", 1, "territory", "2021-04")
        )
        .contains("76 to 77 months"));
    let mut permitted = app("a2", 1, "territory", "2021-04");
    permitted["founder_permission_ref"] = json!("order-17/2027");
    h.ok(REGISTRAR, S, "enrolment.application_submitted", permitted);
    // Born September 2019: 95 or 96 months: accepted; August 2019: at least 96: too old.
    h.ok(REGISTRAR, S, "enrolment.application_submitted", app("a3", 1, "territory", "2019-09"));
    h.refused(
        "age_out_of_range",
        REGISTRAR,
        S,
        "enrolment.application_submitted",
        app("a4", 1, "territory", "2019-08"),
    );
    h.refused("event_malformed", REGISTRAR, S, "enrolment.application_submitted", app("a4", 1, "territory", "2019"));
}

#[test]
fn orders_enrol_within_published_places() {
    let mut h = Harness::region();
    h.at("2027-05-01T09:00:00Z");
    for id in ["a1", "a2", "a3"] {
        h.ok(REGISTRAR, S, "enrolment.application_submitted", app(id, 1, "territory", "2020-12"));
    }
    let order = |id: &str, apps: &[&str]| json!({"order_id": id, "target_year": 2027, "applications": apps, "order_date": "2027-07-02"});
    h.refused("places_not_published", ADMIN, S, "enrolment.order_issued", order("o1", &["a1"]));
    h.ok(ADMIN, S, "enrolment.places_published", json!({"target_year": 2027, "places": 2}));
    h.refused("no_free_place", ADMIN, S, "enrolment.order_issued", order("o1", &["a1", "a2", "a3"]));
    h.refused("application_unknown", ADMIN, S, "enrolment.order_issued", order("o1", &["a9"]));
    h.refused("event_malformed", ADMIN, S, "enrolment.order_issued", order("o1", &["a1", "a1"]));
    h.refused("event_malformed", ADMIN, S, "enrolment.order_issued", order("o1", &[]));
    h.ok(ADMIN, S, "enrolment.order_issued", order("o1", &["a1", "a2"]));
    h.refused("order_duplicate", ADMIN, S, "enrolment.order_issued", order("o1", &["a3"]));
    h.refused("already_enrolled", ADMIN, S, "enrolment.order_issued", order("o2", &["a1"]));
    h.refused("no_free_place", ADMIN, S, "enrolment.order_issued", order("o2", &["a3"]));
    h.refused("places_invalid", ADMIN, S, "enrolment.places_published", json!({"target_year": 2027, "places": 1}));
    h.ok(ADMIN, S, "enrolment.places_published", json!({"target_year": 2027, "places": 3}));
    h.ok(ADMIN, S, "enrolment.order_issued", order("o2", &["a3"]));
}
