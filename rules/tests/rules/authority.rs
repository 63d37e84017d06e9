//! Authority chain: genesis, institutions, grants, key validity, revocation, rotation, scope.

use crate::harness::*;
use serde_json::json;

#[test]
fn genesis_is_first_once_and_by_the_authority() {
    let mut h = Harness::bare();
    h.refused(
        "ledger_not_established",
        AUTH,
        "registry",
        "registry.institution_registered",
        json!({"institution": "x", "kind": "school", "territory": "t"}),
    );
    let genesis = |authority: &str| json!({"origin": ORIGIN, "authority": authority});
    h.refused("stream_mismatch", AUTH, "learner/1", "ledger.established", genesis(AUTH));
    h.refused("key_unknown", ADMIN, "registry", "ledger.established", genesis(ADMIN));
    h.refused("authority_mismatch", AUTH, "registry", "ledger.established", genesis(ADMIN));
    h.ok(AUTH, "registry", "ledger.established", genesis(AUTH));
    assert!(h.rules.is_established());
    h.refused("ledger_already_established", AUTH, "registry", "ledger.established", genesis(AUTH));
}

/// A genesis names the ledger it establishes: one signed for another region's ledger (or with
/// a typo in the origin) is refused, and the ledger stays unestablished until its own arrives.
#[test]
fn genesis_names_this_ledgers_origin() {
    let mut h = Harness::bare();
    for other in ["ru-78.edu.example", "ru-47.edu.example.", "RU-47.EDU.EXAMPLE"] {
        let message = h.refused(
            "origin_mismatch",
            AUTH,
            "registry",
            "ledger.established",
            json!({"origin": other, "authority": AUTH}),
        );
        assert!(message.contains(ORIGIN), "{message}");
    }
    assert!(!h.rules.is_established());
    h.ok(AUTH, "registry", "ledger.established", json!({"origin": ORIGIN, "authority": AUTH}));
    assert!(h.rules.is_established());
}

#[test]
fn institutions_are_registered_by_the_authority() {
    let mut h = Harness::region();
    let inst = |id: &str, kind: &str| json!({"institution": id, "kind": kind, "territory": "tikhvin"});
    h.ok(AUTH, "registry", "registry.institution_registered", inst("sch-777", "school"));
    assert_eq!(h.rules.institution("sch-777").unwrap().kind, "school");
    h.refused("not_authorized", ADMIN, "registry", "registry.institution_registered", inst("sch-778", "school"));
    h.refused("institution_kind_unknown", AUTH, "registry", "registry.institution_registered", inst("x-1", "circus"));
    h.refused(
        "institution_already_registered",
        AUTH,
        "registry",
        "registry.institution_registered",
        inst("sch-777", "school"),
    );
}

fn g(key: &str, roles: &[&str], scope: serde_json::Value) -> serde_json::Value {
    json!({"key": key, "holder": "p-new", "roles": roles, "scope": scope, "valid_from": "2026-01-01T00:00:00Z"})
}

#[test]
fn grants_follow_the_chain() {
    let mut h = Harness::region();
    let sch1 = json!({"institution": "sch-001"});
    h.ok(ADMIN, "registry", "keys.granted", g("did:key:z6MkNew1", &["teacher", "registrar"], sch1.clone()));
    assert_eq!(h.rules.grant("did:key:z6MkNew1").unwrap().granted_by, ADMIN);
    h.refused(
        "not_authorized",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["teacher"], json!({"institution": "sch-002"})),
    );
    h.refused(
        "not_authorized",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["institution_admin"], sch1.clone()),
    );
    h.refused(
        "not_authorized",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["queue_operator"], json!({"institution": "sch-001", "territory": "tikhvin"})),
    );
    h.refused(
        "not_authorized",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["teacher"], json!({"institution": "sch-001", "territory": "luga"})),
    );
    h.refused("not_authorized", TEACHER, "registry", "keys.granted", g("did:key:z6MkNew2", &["teacher"], sch1.clone()));
    h.refused("not_authorized", AUTH, "registry", "keys.granted", g("did:key:z6MkNew2", &["authority"], sch1.clone()));
    h.refused(
        "key_already_granted",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew1", &["teacher"], sch1.clone()),
    );
    h.refused("key_already_granted", AUTH, "registry", "keys.granted", g(AUTH, &["teacher"], sch1.clone()));
    h.refused("key_weak", ADMIN, "registry", "keys.granted", g("did:key:z6MkWeakOrder", &["teacher"], sch1.clone()));
    h.refused("key_malformed", ADMIN, "registry", "keys.granted", g("ed25519:abc", &["teacher"], sch1.clone()));
    h.refused("role_unknown", ADMIN, "registry", "keys.granted", g("did:key:z6MkNew2", &["janitor"], sch1.clone()));
    h.refused(
        "institution_unknown",
        AUTH,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["institution_admin"], json!({"institution": "sch-999"})),
    );
    h.refused(
        "scope_invalid",
        AUTH,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["teacher"], json!({"territory": "tikhvin"})),
    );
    h.refused(
        "scope_invalid",
        AUTH,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["queue_operator"], json!({"institution": "sch-001"})),
    );
    h.refused(
        "scope_invalid",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["class_teacher"], sch1.clone()),
    );
    h.refused(
        "scope_invalid",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["commission_member"], sch1.clone()),
    );
    h.refused(
        "scope_invalid",
        AUTH,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["achievement_issuer"], json!({})),
    );
    h.refused(
        "scope_invalid",
        AUTH,
        "registry",
        "keys.granted",
        g("did:key:z6MkNew2", &["achievement_issuer"], json!({"class": "5А", "territory": "t"})),
    );
    h.refused("event_malformed", ADMIN, "registry", "keys.granted", g("did:key:z6MkNew2", &[], sch1.clone()));
    let mut bad = g("did:key:z6MkNew2", &["teacher"], sch1.clone());
    bad["valid_until"] = json!("2025-01-01T00:00:00Z");
    h.refused("validity_invalid", ADMIN, "registry", "keys.granted", bad);
    let mut bad = g("did:key:z6MkNew2", &["teacher"], sch1);
    bad["valid_from"] = json!("yesterday");
    assert!(h.refused("event_malformed", ADMIN, "registry", "keys.granted", bad).contains("data.valid_from"));
}

#[test]
fn keys_act_only_while_valid() {
    let mut h = Harness::region();
    let mut d = g("did:key:z6MkTemp", &["teacher"], json!({"institution": "sch-001"}));
    d["valid_from"] = json!("2026-10-01T00:00:00Z");
    d["valid_until"] = json!("2026-12-01T00:00:00Z");
    h.ok(ADMIN, "registry", "keys.granted", d);
    h.refused("key_unknown", "did:key:z6MkStranger", L1, "journal.grade_recorded", grade(json!({})));
    h.at("2026-09-30T23:59:59Z").refused(
        "key_not_yet_valid",
        "did:key:z6MkTemp",
        L1,
        "journal.grade_recorded",
        grade(json!({})),
    );
    h.at("2026-10-01T00:00:00Z").ok("did:key:z6MkTemp", L1, "journal.grade_recorded", grade(json!({})));
    h.at("2026-12-01T00:00:00Z").refused(
        "key_expired",
        "did:key:z6MkTemp",
        L1,
        "journal.grade_recorded",
        grade(json!({})),
    );
}

#[test]
fn revocation_takes_effect_at_its_time() {
    let mut h = Harness::region();
    h.at("2026-10-01T10:00:00Z");
    h.ok(
        ADMIN,
        "registry",
        "keys.revoked",
        json!({"key": TEACHER, "reason": "left the school", "effective_at": "2026-10-02T00:00:00Z"}),
    );
    h.at("2026-10-01T23:59:59.999Z").ok(TEACHER, L1, "journal.grade_recorded", grade(json!({})));
    h.at("2026-10-02T00:00:00Z").refused("key_revoked", TEACHER, L1, "journal.grade_recorded", grade(json!({})));
    h.refused("key_already_revoked", ADMIN, "registry", "keys.revoked", json!({"key": TEACHER, "reason": "again"}));
    h.refused(
        "revoked_key_unknown",
        ADMIN,
        "registry",
        "keys.revoked",
        json!({"key": "did:key:z6MkNobody", "reason": "x"}),
    );
    h.refused("not_authorized", ADMIN2, "registry", "keys.revoked", json!({"key": TEACHER_5A, "reason": "not mine"}));
    h.refused("not_authorized", ADMIN, "registry", "keys.revoked", json!({"key": ADMIN2, "reason": "not mine"}));
    h.refused("not_authorized", AUTH, "registry", "keys.revoked", json!({"key": AUTH, "reason": "x"}));
    h.refused(
        "event_malformed",
        ADMIN,
        "registry",
        "keys.revoked",
        json!({"key": TEACHER_5A, "reason": "x", "effective_at": "soon"}),
    );
    // A key may revoke itself (lost device); a revoked admin's staff keys stay valid.
    h.ok(TEACHER_5A, "registry", "keys.revoked", json!({"key": TEACHER_5A, "reason": "device lost"}));
    h.ok(AUTH, "registry", "keys.revoked", json!({"key": ADMIN, "reason": "replaced"}));
    h.ok(CLASS_5A, L1, "journal.grade_recorded", grade(json!({})));
    h.refused(
        "key_revoked",
        ADMIN,
        "registry",
        "keys.granted",
        g("did:key:z6MkLate", &["teacher"], json!({"institution": "sch-001"})),
    );
}

#[test]
fn rotation_moves_the_grant() {
    let mut h = Harness::region();
    h.at("2026-10-01T10:00:00Z");
    h.ok(TEACHER_5A, "registry", "keys.rotated", json!({"old_key": TEACHER_5A, "new_key": "did:key:z6MkTeacher5Anew"}));
    let new = h.rules.grant("did:key:z6MkTeacher5Anew").unwrap().clone();
    assert_eq!((new.holder.as_str(), new.class.as_deref()), ("t-0002", Some("5А")));
    h.ok("did:key:z6MkTeacher5Anew", L1, "journal.grade_recorded", grade(json!({})));
    h.refused("key_revoked", TEACHER_5A, L1, "journal.grade_recorded", grade(json!({})));
    h.refused(
        "rotated_key_unknown",
        AUTH,
        "registry",
        "keys.rotated",
        json!({"old_key": "did:key:z6MkNobody", "new_key": "did:key:z6MkX"}),
    );
    h.refused(
        "key_already_revoked",
        AUTH,
        "registry",
        "keys.rotated",
        json!({"old_key": TEACHER_5A, "new_key": "did:key:z6MkX"}),
    );
    h.refused(
        "key_weak",
        TEACHER,
        "registry",
        "keys.rotated",
        json!({"old_key": TEACHER, "new_key": "did:key:z6MkWeak"}),
    );
    h.refused(
        "key_already_granted",
        TEACHER,
        "registry",
        "keys.rotated",
        json!({"old_key": TEACHER, "new_key": CLASS_5A}),
    );
    h.refused(
        "not_authorized",
        TEACHER,
        "registry",
        "keys.rotated",
        json!({"old_key": REGISTRAR, "new_key": "did:key:z6MkX"}),
    );
    h.refused(
        "not_authorized",
        ADMIN,
        "registry",
        "keys.rotated",
        json!({"old_key": AUTH, "new_key": "did:key:z6MkX"}),
    );
    // The authority rotates itself: the new key registers, the old one is revoked.
    h.ok(AUTH, "registry", "keys.rotated", json!({"old_key": AUTH, "new_key": "did:key:z6MkAuthority2"}));
    assert_eq!(h.rules.authority_did(), "did:key:z6MkAuthority2");
    let inst = json!({"institution": "sch-900", "kind": "school", "territory": "t"});
    h.refused("key_revoked", AUTH, "registry", "registry.institution_registered", inst.clone());
    h.ok("did:key:z6MkAuthority2", "registry", "registry.institution_registered", inst);
}

#[test]
fn an_admin_rotation_keeps_the_institution_s_powers_and_the_grants_made_before() {
    let mut h = Harness::region();
    h.at("2026-10-01T10:00:00Z");
    let sch1 = json!({"institution": "sch-001"});
    h.ok(ADMIN, "registry", "keys.granted", g("did:key:z6MkBefore", &["teacher"], sch1.clone()));
    // The authority rotates the school's admin key (a lost laptop): the new key holds the old
    // one's roles and scope, and the old one writes nothing more.
    h.ok(AUTH, "registry", "keys.rotated", json!({"old_key": ADMIN, "new_key": "did:key:z6MkAdminSch1new"}));
    let new = h.rules.grant("did:key:z6MkAdminSch1new").unwrap().clone();
    let old = h.rules.grant(ADMIN).unwrap().clone();
    let what = |g: &zachetka_rules::Grant| (g.holder.clone(), g.roles.clone(), g.institution.clone(), g.class.clone());
    assert_eq!(what(&new), what(&old));
    h.refused("key_revoked", ADMIN, "registry", "keys.granted", g("did:key:z6MkAfter", &["teacher"], sch1.clone()));
    // The new key grants and revokes within the school, and not beyond it.
    h.ok("did:key:z6MkAdminSch1new", "registry", "keys.granted", g("did:key:z6MkAfter", &["teacher"], sch1.clone()));
    let sch2 = json!({"institution": "sch-002"});
    h.refused(
        "not_authorized",
        "did:key:z6MkAdminSch1new",
        "registry",
        "keys.granted",
        g("did:key:z6MkOther", &["teacher"], sch2),
    );
    // Keys the old admin key granted still hold: the grant chain runs through the rotation.
    h.admit(REGISTRAR, "learner/47-000006", "sch-001", "6Б", None);
    h.lesson("sch-001", "6Б", "math", "2026-09-01");
    h.ok("did:key:z6MkBefore", "learner/47-000006", "journal.grade_recorded", grade(json!({"class": "6Б"})));
    h.ok(
        "did:key:z6MkAdminSch1new",
        "registry",
        "keys.revoked",
        json!({"key": "did:key:z6MkBefore", "reason": "left"}),
    );
    h.refused(
        "key_revoked",
        "did:key:z6MkBefore",
        "learner/47-000006",
        "journal.grade_recorded",
        grade(json!({"class": "6Б"})),
    );
}

#[test]
fn scope_limits_institution_class_and_territory() {
    let mut h = Harness::region();
    h.ok(TEACHER_5A, L1, "journal.grade_recorded", grade(json!({})));
    let m = h.refused("not_authorized", TEACHER_5A, L1, "journal.grade_recorded", grade(json!({"class": "6Б"})));
    assert!(m.contains("class 6Б"), "{m}");
    h.admit(REGISTRAR, "learner/47-000006", "sch-001", "6Б", None);
    h.lesson("sch-001", "6Б", "math", "2026-09-01");
    h.ok(TEACHER, "learner/47-000006", "journal.grade_recorded", grade(json!({"class": "6Б"})));
    h.refused("not_authorized", TEACHER2, L1, "journal.grade_recorded", grade(json!({})));
    h.refused("not_authorized", REGISTRAR, L1, "journal.grade_recorded", grade(json!({})));
    h.refused("not_authorized", AUTH, L1, "journal.grade_recorded", grade(json!({})));
    let app = json!({"application_id": "a1", "number": "1", "learner": "47-1", "birth_month": "2023-03", "desired_date": "2026-09-01", "preferred": ["kg-001"], "group_type": "general"});
    h.refused("not_authorized", OPERATOR_LUGA, "queue/kg/tikhvin", "queue.application_submitted", app.clone());
    h.ok(OPERATOR, "queue/kg/tikhvin", "queue.application_submitted", app);
}
