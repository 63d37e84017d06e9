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

/// An older child (age group 5-6) enrolled in `kg` through an additional run; returns the id of
/// its `queue.enrolled` entry (what a sibling link names).
fn enrol_older(h: &mut Harness, id: &str, kg: &str) -> String {
    h.ok(OPERATOR, Q, "queue.application_submitted", app(id, json!({"birth_month": "2021-03", "preferred": [kg]})));
    let run = format!("run-{id}");
    let places = json!([{"kindergarten": kg, "age_group": "5-6", "group_type": "general", "places": 1}]);
    // The places of academic year 2026 (the application's desired one), allocated early.
    let data = json!({"run_id": run, "kind": "additional", "places": places, "academic_year": 2026});
    h.ok(OPERATOR, Q, "queue.allocation_started", data);
    let offer = format!("offer-{id}");
    h.ok(OPERATOR, Q, "queue.place_offered", json!({"offer_id": offer, "application_id": id, "kindergarten": kg}));
    h.ok(OPERATOR, Q, "queue.offer_accepted", json!({ "offer_id": offer }));
    let enrolled = h.ok(
        OPERATOR,
        Q,
        "queue.enrolled",
        json!({"application_id": id, "kindergarten": kg, "order_ref": format!("ord-{id}")}),
    );
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({ "run_id": run }));
    enrolled
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
    h.at("2026-01-20T09:00:00Z");
    let older = enrol_older(&mut h, "older", "kg-002");
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
        json!({"application_id": "sibling", "kindergarten": "kg-002", "sibling": "47-900", "sibling_enrolment": older}),
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
    // The territory-wide order counts no sibling right (it counts only in kg-002's order).
    assert_eq!(pos(&h, "first").0, 1);
    assert_eq!(pos(&h, "gen-early").0, 2);
    assert_eq!(pos(&h, "unconfirmed").0, 3);
    assert_eq!(pos(&h, "sibling").0, 4);
    assert_eq!(pos(&h, "extra").0, 5);
    let (_, why) = pos(&h, "unconfirmed");
    assert!(why.iter().any(|r| r.contains("police claimed, not yet confirmed")), "{why:?}");
    assert!(why.iter().any(|r| r.contains("ahead: 1 in a higher tier, 1 in the same tier")), "{why:?}");
    assert!(pos(&h, "first").1[0].starts_with("tier first_priority"));
    let (_, why) = pos(&h, "sibling");
    assert!(why.iter().any(|r| r.contains("a sibling's right counts only in its kindergarten's order")), "{why:?}");
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
        json!({"application_id": "a1", "kindergarten": "sch-001", "sibling": "47-9", "sibling_enrolment": "x"}),
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
        json!({"application_id": "a1", "kindergarten": "kg-001", "sibling": "47-9", "sibling_enrolment": "x"}),
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
    // a1 (waiting again since it refused o1, filed before a2, choosing kg-002 too) stands ahead
    // of a2's transfer there until it leaves the queue; a3, filed after a2, does not.
    h.refused("transfer_ahead_of_queue", OPERATOR, Q, "queue.transferred", tr.clone());
    h.ok(OPERATOR, Q, "queue.application_withdrawn", json!({"application_id": "a1", "reason": "moved away"}));
    h.ok(OPERATOR, Q, "queue.transferred", tr);
    // The place a2 left in kg-001 is free again.
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o3", "a3"));
    h.refused("application_not_in_queue", OPERATOR, Q, "queue.place_offered", offer("o4", "a1"));
    h.refused(
        "application_not_in_queue",
        OPERATOR,
        Q,
        "queue.application_withdrawn",
        json!({"application_id": "a1", "reason": "again"}),
    );
}

/// A free place is the queue's first (DOMAIN "Offers follow the order"): a transfer into a
/// kindergarten is refused while a waiting child who chose it and fits the group stands ahead,
/// naming that child; once the place went to them, the next place may take the transfer. (A
/// transferring child who chose that kindergarten too stands by its own application: see
/// `offers_need_a_waiting_application_and_a_free_place`.)
#[test]
fn a_transfer_does_not_take_a_place_ahead_of_the_queue() {
    let mut h = Harness::region();
    h.at("2026-02-01T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("moving", json!({"preferred": ["kg-001"]})));
    h.at("2026-02-02T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("waiting", json!({"preferred": ["kg-002"]})));
    h.at("2026-05-15T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r1", "main", 1));
    h.ok(
        OPERATOR,
        Q,
        "queue.place_offered",
        json!({"offer_id": "o1", "application_id": "moving", "kindergarten": "kg-001"}),
    );
    h.ok(OPERATOR, Q, "queue.offer_accepted", json!({"offer_id": "o1"}));
    h.ok(
        OPERATOR,
        Q,
        "queue.enrolled",
        json!({"application_id": "moving", "kindergarten": "kg-001", "order_ref": "ord-1"}),
    );
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r1"}));
    let place_in_kg2 = |run: &str| {
        json!({"run_id": run, "kind": "additional",
            "places": [{"kindergarten": "kg-002", "age_group": "3-4", "group_type": "general", "places": 1}]})
    };
    let tr = json!({"application_id": "moving", "from_kindergarten": "kg-001", "to_kindergarten": "kg-002"});
    h.ok(OPERATOR, Q, "queue.allocation_started", place_in_kg2("r2"));
    let m = h.refused("transfer_ahead_of_queue", OPERATOR, Q, "queue.transferred", tr.clone());
    assert!(m.contains("beginning with waiting (number 47-2026-waiting"), "{m}");
    h.ok(
        OPERATOR,
        Q,
        "queue.place_offered",
        json!({"offer_id": "o2", "application_id": "waiting", "kindergarten": "kg-002"}),
    );
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r2"}));
    h.ok(OPERATOR, Q, "queue.allocation_started", place_in_kg2("r3"));
    h.ok(OPERATOR, Q, "queue.transferred", tr);
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

#[test]
fn offers_follow_the_order_of_the_kindergarten() {
    let mut h = Harness::region();
    // Filed in this order (the ledger's time), a confirmed benefit for the last one.
    h.at("2026-02-01T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("early", json!({"preferred": ["kg-001"]})));
    h.at("2026-02-02T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("only-kg2", json!({"preferred": ["kg-002"]})));
    h.at("2026-02-03T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("late", json!({"preferred": ["kg-001"]})));
    h.at("2026-02-04T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("benefit", json!({"preferred": ["kg-002", "kg-001"]})));
    h.ok(OPERATOR, Q, "queue.benefit_claimed", claim("benefit", "c1", "police"));
    h.ok(OPERATOR, Q, "queue.benefit_confirmed", json!({"application_id": "benefit", "claim_id": "c1"}));
    h.at("2026-05-15T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r1", "main", 3));
    let offer = |o: &str, a: &str, kg: &str| json!({"offer_id": o, "application_id": a, "kindergarten": kg});
    // Skipping the child with a higher tier: refused, naming who stands ahead.
    let m = h.refused("offer_out_of_order", OPERATOR, Q, "queue.place_offered", offer("o1", "early", "kg-001"));
    assert!(m.contains("benefit (number 47-2026-benefit, tier first_priority"), "{m}");
    assert!(!m.contains("only-kg2"), "an application not preferring kg-001 stands ahead of nobody there: {m}");
    let m = h.refused("offer_out_of_order", OPERATOR, Q, "queue.place_offered", offer("o1", "late", "kg-001"));
    assert!(m.starts_with("2 waiting application(s)") && m.contains("benefit") && m.contains("early"), "{m}");
    // A kindergarten the family did not choose.
    let m =
        h.refused("kindergarten_not_preferred", OPERATOR, Q, "queue.place_offered", offer("o1", "only-kg2", "kg-001"));
    assert!(m.contains("prefers [kg-002]"), "{m}");
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o1", "benefit", "kg-001"));
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o2", "early", "kg-001"));
    // A refused offer: the family no longer stands ahead in that kindergarten's order.
    h.ok(OPERATOR, Q, "queue.offer_refused", json!({"offer_id": "o2", "reason": "too far"}));
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o3", "late", "kg-001"));
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r1"}));
    // With the family's recorded consent, another kindergarten may be offered.
    let consent = json!({"application_id": "only-kg2", "kindergarten": "kg-001"});
    h.ok(OPERATOR, Q, "queue.allocation_started", run("r2", "additional", 1));
    h.refused(
        "application_not_in_queue",
        OPERATOR,
        Q,
        "queue.other_kindergarten_consented",
        json!({"application_id": "late", "kindergarten": "kg-002"}),
    );
    h.ok(OPERATOR, Q, "queue.other_kindergarten_consented", consent.clone());
    h.refused("consent_duplicate", OPERATOR, Q, "queue.other_kindergarten_consented", consent);
    // `early` refused kg-001, so the consenting family is first there now.
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o4", "only-kg2", "kg-001"));
}

#[test]
fn sibling_priority_counts_in_its_kindergarten_only() {
    let mut h = Harness::region();
    h.at("2026-01-20T09:00:00Z");
    let older = enrol_older(&mut h, "older", "kg-002");
    h.at("2026-02-01T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("plain", json!({})));
    h.at("2026-02-02T09:00:00Z");
    h.ok(OPERATOR, Q, "queue.application_submitted", app("sib", json!({})));
    let link = |enrolment: &str, kg: &str| json!({"application_id": "sib", "kindergarten": kg, "sibling": "47-older", "sibling_enrolment": enrolment});
    let m = h.refused("sibling_enrolment_unknown", OPERATOR, Q, "queue.sibling_linked", link("no-such", "kg-002"));
    assert!(m.contains("no-such"), "{m}");
    // An event that exists but is not an enrolment.
    let submitted = h.ok(OPERATOR, Q, "queue.application_submitted", app("other", json!({})));
    h.refused("sibling_enrolment_unknown", OPERATOR, Q, "queue.sibling_linked", link(&submitted, "kg-002"));
    h.refused("sibling_not_in_kindergarten", OPERATOR, Q, "queue.sibling_linked", link(&older, "kg-001"));
    h.ok(OPERATOR, Q, "queue.sibling_linked", link(&older, "kg-002"));
    h.at("2026-05-15T09:00:00Z");
    let places = json!([{"kindergarten": "kg-001", "age_group": "3-4", "group_type": "general", "places": 1},
                        {"kindergarten": "kg-002", "age_group": "3-4", "group_type": "general", "places": 1}]);
    h.ok(OPERATOR, Q, "queue.allocation_started", json!({"run_id": "r1", "kind": "main", "places": places}));
    let offer = |o: &str, a: &str, kg: &str| json!({"offer_id": o, "application_id": a, "kindergarten": kg});
    // In kg-001 the sibling right does not count: `plain` filed first.
    let m = h.refused("offer_out_of_order", OPERATOR, Q, "queue.place_offered", offer("o1", "sib", "kg-001"));
    assert!(m.contains("plain") && m.contains("tier general"), "{m}");
    // In kg-002, the sibling's kindergarten, `sib` is ahead of `plain`.
    let m = h.refused("offer_out_of_order", OPERATOR, Q, "queue.place_offered", offer("o1", "plain", "kg-002"));
    assert!(m.contains("sib (number 47-2026-sib, tier advantage"), "{m}");
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o1", "sib", "kg-002"));
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o2", "plain", "kg-001"));
}

/// DOMAIN "Age group is computed as of 1 September of the target year": a child waiting past its
/// desired year competes in later allocations in the group of its age then, and an allocation
/// offers a place only to children whose desired year has come.
#[test]
fn a_child_waiting_past_its_year_ages_into_the_next_group() {
    let mut h = Harness::region();
    let file_for = |h: &mut Harness, at: &str, id: &str, birth: &str, desired: &str, kg: &str| {
        h.at(at);
        let data = app(id, json!({"birth_month": birth, "desired_date": desired, "preferred": [kg]}));
        h.ok(OPERATOR, Q, "queue.application_submitted", data);
    };
    let file = |h: &mut Harness, at: &str, id: &str, birth: &str, desired: &str| {
        file_for(h, at, id, birth, desired, "kg-001");
    };
    // Born 2024-08: 3-4 on 1 September 2027, 4-5 on 1 September 2028.
    file(&mut h, "2026-10-01T09:00:00Z", "y27", "2024-08", "2027-09-01");
    // Born 2025-02, wants 2028: 3-4 on 1 September 2028.
    file(&mut h, "2026-11-01T09:00:00Z", "y28", "2025-02", "2028-09-01");
    // Born 2024-03, wants 2028: 4-5 on 1 September 2028, filed after y27.
    file(&mut h, "2026-12-01T09:00:00Z", "o28", "2024-03", "2028-09-01");
    let pos = |h: &Harness, group: &str, id: &str| h.rules.queue_position("tikhvin", group, id).map(|p| p.0);
    // Each competes in its own next allocation: y27 in 2027's 3-4, y28 alone in 2028's 3-4
    // (y27, who will be 4-5 then, is not ahead of it), o28 in 2028's 4-5 behind y27 (should it
    // still wait then).
    assert_eq!((pos(&h, "3-4", "y27"), pos(&h, "3-4", "y28"), pos(&h, "4-5", "o28")), (Some(1), Some(1), Some(2)));
    // Two who choose kg-002 only: p27 (3-4 in 2027) and q28 (3-4 in 2028).
    file_for(&mut h, "2027-01-10T09:00:00Z", "p27", "2024-08", "2027-09-01", "kg-002");
    file_for(&mut h, "2027-01-11T09:00:00Z", "q28", "2025-03", "2028-09-01", "kg-002");
    let places =
        |group: &str| json!([{"kindergarten": "kg-001", "age_group": group, "group_type": "general", "places": 1}]);
    let offer = |o: &str, a: &str| json!({"offer_id": o, "application_id": a, "kindergarten": "kg-001"});
    // The 2027 main allocation: no place is offered to a child who wants 2028.
    h.at("2027-05-15T09:00:00Z");
    let mut run27 = json!({"run_id": "r27", "kind": "main", "places": places("3-4")});
    let kg2 = json!({"kindergarten": "kg-002", "age_group": "3-4", "group_type": "general", "places": 1});
    run27["places"].as_array_mut().unwrap().push(kg2);
    h.ok(OPERATOR, Q, "queue.allocation_started", run27);
    // p27 is offered 2027's place at kg-002 (and answers only in 2028).
    let at_kg2 = |o: &str, a: &str| json!({"offer_id": o, "application_id": a, "kindergarten": "kg-002"});
    h.ok(OPERATOR, Q, "queue.place_offered", at_kg2("op", "p27"));
    let m = h.refused("allocation_year_before_desired", OPERATOR, Q, "queue.place_offered", offer("o1", "y28"));
    assert!(m.contains("academic year 2028") && m.contains("allocation of 2027"), "{m}");
    h.ok(OPERATOR, Q, "queue.allocation_finished", json!({"run_id": "r27"}));
    // y27 got no place and still waits: in 2028 it is 4-5, ahead of o28 (filed later), and no
    // longer in 3-4, where y28 is first.
    // ("Today" is the rules' latest date: an entry of April 2028, in another group, brings it.)
    file(&mut h, "2028-04-10T09:00:00Z", "z28", "2026-01", "2028-09-01");
    assert_eq!(pos(&h, "3-4", "y27"), None);
    assert_eq!((pos(&h, "4-5", "y27"), pos(&h, "4-5", "o28"), pos(&h, "3-4", "y28")), (Some(1), Some(2), Some(1)));
    // Outside a run, offers follow today's allocation year: 2027's unoffered 3-4 place at kg-001
    // is no place of 2028's 3-4 group.
    let m = h.refused("no_free_place", OPERATOR, Q, "queue.place_offered", offer("o0", "y28"));
    assert!(m.contains("age group 3-4 (allocation year 2028)"), "{m}");
    // A run states an allocation year of its date's or the next one; earlier only for a migration.
    let mut bad = json!({"run_id": "r28", "kind": "main", "places": places("4-5"), "academic_year": 2030});
    let m = h.refused("allocation_year_invalid", OPERATOR, Q, "queue.allocation_started", bad.clone());
    assert!(m.contains("2028 or 2029, not 2030"), "{m}");
    bad["academic_year"] = json!(2027);
    h.refused("allocation_year_invalid", OPERATOR, Q, "queue.allocation_started", bad.clone());
    bad["academic_year"] = json!(2028);
    h.ok(OPERATOR, Q, "queue.allocation_started", bad);
    // Nor in 2028's run, which declares none of 3-4.
    let m = h.refused("no_free_place", OPERATOR, Q, "queue.place_offered", offer("o5", "y28"));
    assert!(m.contains("age group 3-4 (allocation year 2028)"), "{m}");
    // A 2027 offer refused in 2028 gives its place back to 2027, not to 2028's 3-4 group.
    h.ok(OPERATOR, Q, "queue.offer_refused", json!({"offer_id": "op", "reason": "too far"}));
    h.refused("no_free_place", OPERATOR, Q, "queue.place_offered", at_kg2("oq", "q28"));
    // The 4-5 place: skipping the aged child is refused, following the new order is accepted.
    let m = h.refused("offer_out_of_order", OPERATOR, Q, "queue.place_offered", offer("o2", "o28"));
    assert!(m.contains("y27") && m.contains("allocation year 2028, age group 4-5"), "{m}");
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o3", "y27"));
    h.ok(OPERATOR, Q, "queue.offer_refused", json!({"offer_id": "o3", "reason": "too far"}));
    // The place y27 refused is its 2028 group's (4-5): it goes to o28 next.
    h.ok(OPERATOR, Q, "queue.place_offered", offer("o4", "o28"));
}
