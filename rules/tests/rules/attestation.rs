//! Teacher attestation: applications, votes, quorum, the высшая prerequisite, terms.

use crate::harness::*;
use serde_json::{json, Value};

const T1: &str = "teacher/t-0001";

fn apply_for(h: &mut Harness, id: &str, category: &str) {
    h.ok(
        TEACHER,
        T1,
        "attestation.application_submitted",
        json!({"application_id": id, "commission": "com-001", "institution": "sch-001", "category": category}),
    );
}

fn vote(h: &mut Harness, id: &str, members: std::ops::Range<usize>, v: &str) {
    for i in members {
        h.ok(&member(i), T1, "attestation.vote_cast", json!({"application_id": id, "vote": v}));
    }
}

fn decision(id: &str, d: &str, on: &str) -> Value {
    json!({"application_id": id, "decision": d, "decided_on": on})
}

#[test]
fn applications_are_made_by_the_teacher_or_an_admin() {
    let mut h = Harness::region();
    apply_for(&mut h, "ap-1", "first");
    let ap = |id: &str, commission: &str, category: &str| json!({"application_id": id, "commission": commission, "institution": "sch-001", "category": category});
    h.refused(
        "application_duplicate",
        TEACHER,
        T1,
        "attestation.application_submitted",
        ap("ap-1", "com-001", "first"),
    );
    h.refused(
        "not_authorized",
        TEACHER,
        "teacher/t-0002",
        "attestation.application_submitted",
        ap("ap-2", "com-001", "first"),
    );
    h.ok(ADMIN, "teacher/t-0002", "attestation.application_submitted", ap("ap-2", "com-001", "first"));
    h.refused(
        "institution_kind_mismatch",
        TEACHER,
        T1,
        "attestation.application_submitted",
        ap("ap-3", "sch-001", "first"),
    );
    h.refused("category_unknown", TEACHER, T1, "attestation.application_submitted", ap("ap-3", "com-001", "genius"));
    h.refused(
        "requires_highest_category",
        TEACHER,
        T1,
        "attestation.application_submitted",
        ap("ap-3", "com-001", "methodist"),
    );
    h.refused("not_authorized", TEACHER2, T1, "attestation.application_submitted", ap("ap-3", "com-001", "first"));
    assert_eq!(h.rules.teacher_status("t-0001").unwrap().pending, vec!["ap-1".to_owned()]);
}

#[test]
fn decisions_need_a_quorum_of_distinct_members() {
    let mut h = Harness::region();
    apply_for(&mut h, "ap-1", "first");
    vote(&mut h, "ap-1", 0..4, "granted");
    h.refused(
        "vote_already_cast",
        &member(0),
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "granted"}),
    );
    // A second key of the same person does not add a vote.
    h.grant(AUTH, "did:key:z6MkMember0b", "m-0", &["commission_member"], json!({"institution": "com-001"}));
    h.refused(
        "vote_already_cast",
        "did:key:z6MkMember0b",
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "granted"}),
    );
    h.refused(
        "not_authorized",
        TEACHER,
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "granted"}),
    );
    h.refused(
        "not_authorized",
        SECRETARY,
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "granted"}),
    );
    h.refused(
        "vote_invalid",
        &member(5),
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "maybe"}),
    );
    h.refused(
        "attestation_application_unknown",
        &member(5),
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-9", "vote": "granted"}),
    );
    let m = h.refused(
        "quorum_not_met",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-1", "granted", "2026-10-01"),
    );
    assert!(m.contains("4 distinct authorised members"), "{m}");
    h.ok(AUTH, "registry", "keys.revoked", json!({"key": member(4), "reason": "left the commission"}));
    h.refused(
        "key_revoked",
        &member(4),
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "granted"}),
    );
    vote(&mut h, "ap-1", 5..6, "refused");
    h.refused(
        "not_authorized",
        &member(6),
        T1,
        "attestation.decision_recorded",
        decision("ap-1", "granted", "2026-10-01"),
    );
    h.refused(
        "decision_invalid",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-1", "perhaps", "2026-10-01"),
    );
    h.refused(
        "decision_contradicts_votes",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-1", "refused", "2026-10-01"),
    );
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-1", "granted", "2026-10-01"));
    h.refused(
        "attestation_already_decided",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-1", "granted", "2026-10-01"),
    );
    h.refused(
        "attestation_already_decided",
        &member(6),
        T1,
        "attestation.vote_cast",
        json!({"application_id": "ap-1", "vote": "granted"}),
    );
    let st = h.rules.teacher_status("t-0001").unwrap();
    assert_eq!(st.held.len(), 1);
    assert_eq!((st.held[0].category.as_str(), st.held[0].valid_until.as_deref()), ("first", None));
    assert!(st.pending.is_empty());
}

#[test]
fn methodist_and_mentor_need_a_current_highest_and_seven_members() {
    let mut h = Harness::region();
    apply_for(&mut h, "ap-h", "highest");
    vote(&mut h, "ap-h", 0..5, "granted");
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-h", "granted", "2026-09-01"));
    apply_for(&mut h, "ap-m", "methodist");
    vote(&mut h, "ap-m", 0..6, "granted");
    h.refused(
        "quorum_not_met",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-m", "granted", "2026-10-01"),
    );
    vote(&mut h, "ap-m", 6..7, "refused");
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-m", "granted", "2026-10-01"));
    // Refused decisions grant nothing.
    apply_for(&mut h, "ap-n", "mentor");
    vote(&mut h, "ap-n", 0..7, "refused");
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-n", "refused", "2026-10-02"));
    let st = h.rules.teacher_status("t-0001").unwrap();
    assert_eq!(st.held.iter().map(|c| c.category.as_str()).collect::<Vec<_>>(), ["highest", "methodist"]);
    assert_eq!(st.refused, vec!["ap-n".to_owned()]);
}

#[test]
fn categories_before_september_2023_keep_a_five_year_term() {
    let mut h = Harness::region();
    // A decision from before the ledger, recorded now: highest granted 2020-01-10, expired 2025-01-10.
    apply_for(&mut h, "ap-old", "highest");
    vote(&mut h, "ap-old", 0..5, "granted");
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-old", "granted", "2020-01-10"));
    let held = h.rules.teacher_status("t-0001").unwrap().held;
    assert_eq!(held[0].valid_until.as_deref(), Some("2025-01-10"));
    assert!(held[0].is_current("2025-01-09") && !held[0].is_current("2025-01-10"));
    // Applying for methodist in 2026 needs a current highest: the 2020 one has expired.
    h.refused(
        "requires_highest_category",
        TEACHER,
        T1,
        "attestation.application_submitted",
        json!({"application_id": "ap-m", "commission": "com-001", "institution": "sch-001", "category": "methodist"}),
    );
    // The decision date decides too: applied while highest was current, decided after it ended.
    let mut h = Harness::region();
    apply_for(&mut h, "ap-h", "highest");
    vote(&mut h, "ap-h", 0..5, "granted");
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-h", "granted", "2022-01-10"));
    apply_for(&mut h, "ap-m", "mentor");
    vote(&mut h, "ap-m", 0..7, "granted");
    h.refused(
        "requires_highest_category",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-m", "granted", "2027-01-10"),
    );
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-m", "granted", "2026-10-10"));
    // The fitness check always has its 5-year term.
    apply_for(&mut h, "ap-f", "fitness");
    vote(&mut h, "ap-f", 0..5, "granted");
    h.ok(SECRETARY, T1, "attestation.decision_recorded", decision("ap-f", "granted", "2026-10-11"));
    let held = h.rules.teacher_status("t-0001").unwrap().held;
    let until: Vec<_> = held.iter().map(|c| (c.category.as_str(), c.valid_until.as_deref())).collect();
    assert_eq!(until, [("highest", Some("2027-01-10")), ("mentor", None), ("fitness", Some("2031-10-11"))]);
    apply_for(&mut h, "ap-z", "first");
    vote(&mut h, "ap-z", 0..5, "granted");
    h.refused(
        "event_malformed",
        SECRETARY,
        T1,
        "attestation.decision_recorded",
        decision("ap-z", "granted", "10.10.2026"),
    );
}
