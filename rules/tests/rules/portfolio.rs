//! Portfolio achievements, learner transfers and additional education.

use crate::harness::*;
use serde_json::{json, Value};

fn ach(id: &str, extra: Value) -> Value {
    let mut a = json!({"achievement_id": id, "kind": "olympiad", "level": "regional", "date": "2026-08-20", "result": "prize_winner", "contest_ref": "vsosh-2026-math"});
    merge(&mut a, extra);
    a
}

#[test]
fn achievements_are_attested_by_registered_issuers() {
    let mut h = Harness::region();
    h.ok(ISSUER, L1, "portfolio.achievement_attested", ach("ac-1", json!({})));
    h.refused("issuer_not_registered", TEACHER, L1, "portfolio.achievement_attested", ach("ac-2", json!({})));
    h.refused("key_unknown", "did:key:z6MkStranger", L1, "portfolio.achievement_attested", ach("ac-2", json!({})));
    h.refused(
        "achievement_level_unknown",
        ISSUER,
        L1,
        "portfolio.achievement_attested",
        ach("ac-2", json!({"level": "galactic"})),
    );
    h.refused(
        "achievement_kind_unknown",
        ISSUER,
        L1,
        "portfolio.achievement_attested",
        ach("ac-2", json!({"kind": "chess_boxing"})),
    );
    h.refused(
        "achievement_date_in_future",
        ISSUER,
        L1,
        "portfolio.achievement_attested",
        ach("ac-2", json!({"date": "2026-09-02"})),
    );
    h.refused("achievement_duplicate", ISSUER, L2, "portfolio.achievement_attested", ach("ac-1", json!({})));
    h.refused(
        "personal_data_in_log",
        ISSUER,
        L1,
        "portfolio.achievement_attested",
        ach("ac-2", json!({"winner_name": "Иванов"})),
    );
    // Revocation by the issuer (or its institution's issuers) only.
    h.grant(AUTH, "did:key:z6MkIssuer2", "p-iss2", &["achievement_issuer"], json!({"institution": "sch-001"}));
    h.refused(
        "not_authorized",
        "did:key:z6MkIssuer2",
        L1,
        "portfolio.achievement_revoked",
        json!({"achievement_id": "ac-1", "reason": "x"}),
    );
    h.refused(
        "achievement_unknown",
        ISSUER,
        L2,
        "portfolio.achievement_revoked",
        json!({"achievement_id": "ac-1", "reason": "x"}),
    );
    h.ok(ISSUER, L1, "portfolio.achievement_revoked", json!({"achievement_id": "ac-1", "reason": "disqualified"}));
    h.refused(
        "achievement_already_revoked",
        ISSUER,
        L1,
        "portfolio.achievement_revoked",
        json!({"achievement_id": "ac-1", "reason": "again"}),
    );
}

#[test]
fn transfers_between_institutions_and_regions() {
    let mut h = Harness::region();
    let tr = |to: &str, region: Option<&str>| {
        let mut t = json!({"from_institution": "sch-001", "to_institution": to, "transferred_on": "2026-10-01"});
        if let Some(r) = region {
            t["to_region"] = json!(r);
        }
        t
    };
    h.refused("institution_unknown", REGISTRAR, L1, "learner.transferred", tr("sch-404", None));
    h.refused("transfer_to_same_institution", REGISTRAR, L1, "learner.transferred", tr("sch-001", None));
    h.refused("not_authorized", TEACHER, L1, "learner.transferred", tr("sch-002", None));
    h.refused("not_authorized", ADMIN2, L1, "learner.transferred", tr("sch-002", None));
    h.ok(REGISTRAR, L1, "learner.transferred", tr("sch-002", None));
    h.ok(ADMIN, L2, "learner.transferred", tr("78-sch-0500", Some("ru-78")));
    // The transfer ended L1's enrolment at sch-001: it cannot leave sch-001 again.
    let m = h.refused("learner_not_enrolled", ADMIN, L1, "learner.transferred", tr("78-sch-0500", Some("ru-78")));
    assert!(m.contains("not enrolled in sch-001"), "{m}");
}

#[test]
fn additional_education_programs() {
    let mut h = Harness::region();
    let ado = "institution/ado-001";
    h.ok(
        ADO_REGISTRAR,
        L1,
        "additional.certificate_issued",
        json!({"certificate_id": "pfdo-1", "institution": "ado-001", "year": 2026}),
    );
    h.refused(
        "certificate_duplicate",
        ADO_REGISTRAR,
        L2,
        "additional.certificate_issued",
        json!({"certificate_id": "pfdo-1", "institution": "ado-001", "year": 2026}),
    );
    h.ok(
        ADO_REGISTRAR,
        ado,
        "additional.program_registered",
        json!({"program_id": "robotics", "capacity": 1, "focus": "technical"}),
    );
    h.refused(
        "program_already_registered",
        ADO_REGISTRAR,
        ado,
        "additional.program_registered",
        json!({"program_id": "robotics", "capacity": 5}),
    );
    h.refused(
        "capacity_invalid",
        ADO_REGISTRAR,
        ado,
        "additional.program_registered",
        json!({"program_id": "chess", "capacity": 0}),
    );
    h.refused(
        "not_authorized",
        ADO_REGISTRAR,
        "institution/sch-001",
        "additional.program_registered",
        json!({"program_id": "chess", "capacity": 3}),
    );
    h.refused(
        "institution_kind_mismatch",
        COL_REGISTRAR,
        "institution/col-001",
        "additional.program_registered",
        json!({"program_id": "chess", "capacity": 3}),
    );
    let enrol = |cert: Option<&str>| {
        let mut e = json!({"institution": "ado-001", "program_id": "robotics"});
        if let Some(c) = cert {
            e["certificate_id"] = json!(c);
        }
        e
    };
    h.refused("certificate_unknown", ADO_REGISTRAR, L2, "additional.enrolled", enrol(Some("pfdo-1")));
    h.ok(ADO_REGISTRAR, L1, "additional.enrolled", enrol(Some("pfdo-1")));
    h.refused("already_enrolled_in_program", ADO_REGISTRAR, L1, "additional.enrolled", enrol(None));
    h.refused("program_full", ADO_REGISTRAR, L2, "additional.enrolled", enrol(None));
    h.refused(
        "program_unknown",
        ADO_REGISTRAR,
        L2,
        "additional.enrolled",
        json!({"institution": "ado-001", "program_id": "ballet"}),
    );
    let left = json!({"institution": "ado-001", "program_id": "robotics", "reason": "moved"});
    h.refused("not_enrolled_in_program", ADO_REGISTRAR, L2, "additional.left", left.clone());
    h.ok(ADO_REGISTRAR, L1, "additional.left", left);
    h.ok(ADO_REGISTRAR, L2, "additional.enrolled", enrol(None));
}
