//! Kindergarten queue: applications, benefits and tiers, freezing, offers and places, positions.

use crate::harness::*;
use serde_json::{json, Value};

const Q: &str = "queue/kg/tikhvin";

fn app(id: &str, extra: Value) -> Value {
    let mut a = json!({"application_id": id, "number": format!("47-2026-{id}"), "learner": format!("47-{id}"), "birth_month": "2023-03", "desired_date": "2026-09-01", "preferred": ["kg-001", "kg-002"], "group_type": "general"});
    merge(&mut a, extra);
    a
}

fn claim(app: &str, claim: &str, category: &str) -> Value {
    json!({"application_id": app, "claim_id": claim, "category": category, "evidence_ref": "doc-store:ref-1", "recheck_on": "2027-03-01"})
}

fn run(id: &str, kind: &str, places: i64) -> Value {
    json!({"run_id": id, "kind": kind, "places": [{"kindergarten": "kg-001", "age_group": "3-4", "group_type": "general", "places": places}]})
}

#[test]
fn applications_are_checked() {
    let mut h = Harness::region();
    h.ok(OPERATOR, Q, "queue.application_submitted", app("a1", json!({})));
    h.refused("application_duplicate", OPERATOR, Q, "queue.application_submitted", app("a1", json!({})));
    h.refused("preferred_invalid", OPERATOR, Q, "queue.application_submitted", app("a2", json!({"preferred": []})));
    h.refused(
        "preferred_invalid",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"preferred": vec!["kg-001"; 6]})),
    );
    h.refused(
        "kindergarten_other_territory",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"preferred": ["kg-009"]})),
    );
    h.refused(
        "institution_kind_mismatch",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"preferred": ["sch-001"]})),
    );
    h.refused(
        "institution_unknown",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"preferred": ["kg-404"]})),
    );
    h.refused(
        "group_type_unknown",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"group_type": "night"})),
    );
    h.refused(
        "age_out_of_range",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"birth_month": "2015-01"})),
    );
    h.refused(
        "age_out_of_range",
        OPERATOR,
        Q,
        "queue.application_submitted",
        app("a2", json!({"birth_month": "2026-08"})),
    );
    assert!(h
        .refused(
            "event_malformed",
            OPERATOR,
            Q,
            "queue.application_submitted",
            app("a2", json!({"birth_month": "2023-3"}))
        )
        .contains("birth_month"));
    assert!(h
        .refused(
            "personal_data_in_log",
            OPERATOR,
            Q,
            "queue.application_submitted",
            app("a2", json!({"birth_date": "2023-03-05"}))
        )
        .contains("birth_date"));
    h.refused("stream_mismatch", OPERATOR, "queue/tikhvin", "queue.application_submitted", app("a2", json!({})));
    // Age group on 1 September of the desired academic year: born March 2023, on 2026-09-01 is 41 months.
    assert!(h.rules.queue_position("tikhvin", "3-4", "a1").is_some());
    assert!(h.rules.queue_position("tikhvin", "2-3", "a1").is_none());
}

#[test]
fn tiers_order_the_queue_and_reasons_explain_it() {
    let mut h = Harness::region();
    h.at("2026-02-01T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("gen-early", json!({})));
    h.at("2026-02-02T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("unconfirmed", json!({})));
    h.ok(OPERATOR, Q, "queue.benefit_claimed", claim("unconfirmed", "c1", "police"));
    h.at("2026-02-03T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("sibling", json!({})));
    h.ok(
        OPERATOR,
        Q,
        "queue.sibling_linked",
        json!({"application_id": "sibling", "kindergarten": "kg-002", "sibling": "47-900"}),
    );
    h.at("2026-02-04T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("first", json!({})));
    h.ok(OPERATOR, Q, "queue.benefit_claimed", claim("first", "c2", "large_family"));
    h.ok(OPERATOR, Q, "queue.benefit_confirmed", json!({"application_id": "first", "claim_id": "c2"}));
    h.at("2026-02-05T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("extra", json!({})));
    h.ok(OPERATOR, Q, "queue.benefit_claimed", claim("extra", "c3", "judge"));
    h.ok(
        OPERATOR,
        Q,
        "queue.benefit_rejected",
        json!({"application_id": "extra", "claim_id": "c3", "reason": "evidence expired"}),
    );
    let pos = |h: &Harness, id: &str| h.rules.queue_position("tikhvin", "3-4", id).unwrap();
    assert_eq!(pos(&h, "first").0, 1);
    assert_eq!(pos(&h, "sibling").0, 2);
    assert_eq!(pos(&h, "gen-early").0, 3);
    assert_eq!(pos(&h, "unconfirmed").0, 4);
    assert_eq!(pos(&h, "extra").0, 5);
    let (_, why) = pos(&h, "unconfirmed");
    assert!(why.iter().any(|r| r.contains("police claimed, not yet confirmed")), "{why:?}");
    assert!(why.iter().any(|r| r.contains("ahead: 2 in a higher tier, 1 in the same tier")), "{why:?}");
    assert!(pos(&h, "first").1[0].starts_with("tier first_priority"));
    assert!(pos(&h, "sibling").1.iter().any(|r| r.contains("sibling attends preferred kindergarten kg-002")));
    // After the re-check date the confirmed benefit counts as general.
    h.at("2027-03-02T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("late", json!({})));
    assert_eq!(pos(&h, "first").0, 4);
    assert!(pos(&h, "first").1.iter().any(|r| r.contains("re-check date 2027-03-01 has passed")));
}

#[test]
fn benefit_claims_are_checked() {
    let mut h = Harness::region();
    h.ok(OPERATOR, Q, "queue.application_submitted", app("a1", json!({})));
    h.refused("benefit_category_unknown", OPERATOR, Q, "queue.benefit_claimed", claim("a1", "c1", "celebrity"));
    h.refused("application_unknown", OPERATOR, Q, "queue.benefit_claimed", claim("a9", "c1", "police"));
    let mut past = claim("a1", "c1", "police");
    past["recheck_on"] = json!("2026-08-01");
    h.refused("recheck_date_past", OPERATOR, Q, "queue.benefit_claimed", past);
    h.ok(OPERATOR, Q, "queue.benefit_claimed", claim("a1", "c1", "police"));
    h.refused("claim_duplicate", OPERATOR, Q, "queue.benefit_claimed", claim("a1", "c1", "police"));
    h.refused(
        "claim_unknown",
        OPERATOR,
        Q,
        "queue.benefit_confirmed",
        json!({"application_id": "a1", "claim_id": "c9"}),
    );
    h.ok(OPERATOR, Q, "queue.benefit_confirmed", json!({"application_id": "a1", "claim_id": "c1"}));
    h.refused(
        "claim_already_decided",
        OPERATOR,
        Q,
        "queue.benefit_rejected",
        json!({"application_id": "a1", "claim_id": "c1", "reason": "x"}),
    );
    h.refused(
        "institution_kind_mismatch",
        OPERATOR,
        Q,
        "queue.sibling_linked",
        json!({"application_id": "a1", "kindergarten": "sch-001", "sibling": "47-9"}),
    );
}

#[test]
fn main_allocation_freezes_the_queue() {
    let mut h = Harness::region();
    h.ok(OPERATOR, Q, "queue.application_submitted", app("a1", json!({})));
    h.ok(OPERATOR, Q, "queue.benefit_claimed", claim("a1", "c1", "police"));
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r1", "main", 1));
    h.refused("queue_frozen", OPERATOR, Q, "queue.application_submitted", app("a2", json!({})));
    h.refused("queue_frozen", OPERATOR, Q, "queue.benefit_claimed", claim("a1", "c2", "police"));
    h.refused(
        "queue_frozen",
        OPERATOR,
        Q,
        "queue.benefit_confirmed",
        json!({"application_id": "a1", "claim_id": "c1"}),
    );
    h.refused(
        "queue_frozen",
        OPERATOR,
        Q,
        "queue.sibling_linked",
        json!({"application_id": "a1", "kindergarten": "kg-001", "sibling": "47-9"}),
    );
    h.refused(
        "queue_frozen",
        OPERATOR,
        Q,
        "queue.application_withdrawn",
        json!({"application_id": "a1", "reason": "moved"}),
    );
    h.refused("allocation_already_running", OPERATOR, Q, "queue.allocation_started", run("r2", "main", 1));
    // Another territory is not frozen.
    h.ok(OPERATOR_LUGA, "queue/kg/luga", "queue.application_submitted", app("b1", json!({"preferred": ["kg-009"]})));
    h.ok(
        OPERATOR,
        Q,
        "queue.place_offered",
        json!({"offer_id": "o1", "application_id": "a1", "kindergarten": "kg-001"}),
    );
    h.refused("allocation_run_unknown", OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r9"}));
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r1"}));
    h.refused("allocation_run_unknown", OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r1"}));
    h.ok(OPERATOR, Q, "queue.application_submitted", app("a2", json!({})));
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r3", "additional", 0));
    h.ok(OPERATOR, Q, "queue.application_submitted", app("a3", json!({})));
    h.refused(
        "allocation_kind_unknown",
        OPERATOR_LUGA,
        "queue/kg/luga",
        "queue.allocation_started",
        run("r4", "secret", 1),
    );
    let mut bad = run("r4", "main", -1);
    h.refused("kindergarten_other_territory", OPERATOR_LUGA, "queue/kg/luga", "queue.allocation_started", bad.clone());
    bad["places"][0]["kindergarten"] = json!("kg-009");
    h.refused("places_invalid", OPERATOR_LUGA, "queue/kg/luga", "queue.allocation_started", bad.clone());
    bad["places"][0]["age_group"] = json!("9-10");
    h.refused("age_group_unknown", OPERATOR_LUGA, "queue/kg/luga", "queue.allocation_started", bad);
}

#[test]
fn offers_need_a_waiting_application_and_a_free_place() {
    let mut h = Harness::region();
    for id in ["a1", "a2", "a3"] {
        h.ok(OPERATOR, Q, "queue.application_submitted", app(id, json!({})));
    }
    let offer = |o: &str, a: &str| json!({"offer_id": o, "application_id": a, "kindergarten": "kg-001"});
    h.refused("no_free_place", OPERATOR, Q, "queue.place_offered", offer("o1", "a1"));
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r1", "main", 1));
    h.refused("application_not_in_queue", OPERATOR, Q, "queue.place_offered", offer("o1", "a9"));
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o1", "a1"));
    assert!(h.rules.queue_position("tikhvin", "3-4", "a1").is_none());
    h.refused("offer_duplicate", OPERATOR, Q, "queue.place_offered", offer("o1", "a2"));
    h.refused("no_free_place", OPERATOR, Q, "queue.place_offered", offer("o2", "a2"));
    h.refused("application_not_in_queue", OPERATOR, Q, "queue.place_offered", offer("o2", "a1"));
    // Refusing an offer frees its place and puts the application back in the queue.
    h.ok(OPERATOR, Q, "queue.offer_refused", json!({"offer_id": "o1", "reason": "too far"}));
    h.refused("offer_not_pending", OPERATOR, Q, "queue.offer_accepted", json!({"offer_id": "o1"}));
    h.refused("offer_unknown", OPERATOR, Q, "queue.offer_accepted", json!({"offer_id": "o9"}));
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o2", "a2"));
    h.refused(
        "offer_not_accepted",
        OPERATOR,
        Q,
        "queue.enrolled",
        json!({"application_id": "a2", "kindergarten": "kg-001", "order_ref": "ord-1"}),
    );
    h.ok(OPERATOR, Q, "queue.offer_accepted", json!({"offer_id": "o2"}));
    h.refused(
        "offer_not_accepted",
        OPERATOR,
        Q,
        "queue.enrolled",
        json!({"application_id": "a2", "kindergarten": "kg-002", "order_ref": "ord-1"}),
    );
    h.ok(
        OPERATOR,
        Q,
        "queue.enrolled",
        json!({"application_id": "a2", "kindergarten": "kg-001", "order_ref": "ord-1"}),
    );
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r1"}));
    // Transfers need an enrolment and a free place where the child goes.
    let tr = json!({"application_id": "a2", "from_kindergarten": "kg-001", "to_kindergarten": "kg-002"});
    h.refused("no_free_place", OPERATOR, Q, "queue.transferred", tr.clone());
    h.refused(
        "not_enrolled",
        OPERATOR,
        Q,
        "queue.transferred",
        json!({"application_id": "a1", "from_kindergarten": "kg-001", "to_kindergarten": "kg-002"}),
    );
    h.ok(OPERATOR, Q, "queue.allocation_started", json!({"run_id": "r2", "kind": "additional", "places": [{"kindergarten": "kg-002", "age_group": "3-4", "group_type": "general", "places": 1}]}));
    h.ok(OPERATOR, Q, "queue.transferred", tr);
    // The place a2 left in kg-001 is free again.
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o3", "a3"));
    h.ok(OPERATOR, Q, "queue.application_withdrawn", json!({"application_id": "a1", "reason": "moved away"}));
    h.refused("application_not_in_queue", OPERATOR, Q, "queue.place_offered", offer("o4", "a1"));
    h.refused(
        "application_not_in_queue",
        OPERATOR,
        Q,
        "queue.application_withdrawn",
        json!({"application_id": "a1", "reason": "again"}),
    );
}

#[test]
fn admission_is_refused_only_for_lack_of_places() {
    let mut h = Harness::region();
    h.ok(OPERATOR, Q, "queue.application_submitted", app("a1", json!({})));
    let refusal = |reason: &str| json!({"application_id": "a1", "kindergarten": "kg-001", "reason": reason});
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r1", "main", 1));
    h.refused("refusal_with_free_places", OPERATOR, Q, "queue.admission_refused", refusal("no_free_places"));
    h.refused("refusal_reason_not_allowed", OPERATOR, Q, "queue.admission_refused", refusal("no_documents"));
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r1"}));
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r2", "additional", 0));
    h.ok(OPERATOR, Q, "queue.admission_refused", refusal("no_free_places"));
    // The application stays in the queue.
    assert_eq!(h.rules.queue_position("tikhvin", "3-4", "a1").unwrap().0, 1);
}
