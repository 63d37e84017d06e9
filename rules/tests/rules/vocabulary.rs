//! The region profile, the type table and the checks every event passes before its own rule.

use crate::harness::*;
use serde_json::{json, Value};
use zachetka_rules::{event_types, schema_version, Envelope, RegionConfig};

#[test]
fn region_default_json_equals_the_default() {
    let text = include_str!("../../region-default.json");
    assert_eq!(RegionConfig::from_json(text).unwrap(), RegionConfig::default());
    RegionConfig::default().validate().unwrap();
}

/// The read models read the region profile from `zachetka-projections` (they cannot depend on
/// the rules): its mirror must agree with the profile the rules enforce.
#[test]
fn the_read_models_profile_agrees_with_the_default() {
    let cfg = RegionConfig::default();
    let p = zachetka_projections::region::RegionProfile::region_default();
    assert_eq!(p.utc_offset_minutes, cfg.utc_offset_minutes);
    assert_eq!(p.queue, cfg.queue);
    let a = &cfg.attestation;
    assert_eq!(p.attestation.unlimited_since, a.unlimited_since);
    assert_eq!(p.attestation.term_years, a.term_years);
    assert_eq!(p.attestation.fitness_check, a.fitness_check);
    assert_eq!(p.attestation.highest_category, a.highest_category);
    assert_eq!(p.attestation.requires_highest, a.requires_highest);
}

/// A ledger initialized before the school week was region data keeps its config: it opens, with
/// lessons on Monday to Saturday.
#[test]
fn a_region_config_without_a_school_week_reads_as_six_days() {
    let mut v: Value = serde_json::to_value(RegionConfig::default()).unwrap();
    v["calendar"].as_object_mut().unwrap().remove("school_days").expect("the default names its school week");
    let cfg = RegionConfig::from_json(&v.to_string()).unwrap();
    assert_eq!(cfg.calendar.school_days, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(cfg, RegionConfig::default());
}

#[test]
fn region_profiles_are_validated() {
    let base: Value = serde_json::to_value(RegionConfig::default()).unwrap();
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        RegionConfig::from_json(&v.to_string()).unwrap_err()
    };
    assert!(bad(&|v| v["queue"]["benefit_categories"]["x"] = json!("vip")).contains("unknown tier vip"));
    assert!(bad(&|v| v["scales_by_kind"]["school"] = json!(["ten_point"])).contains("unknown scale"));
    assert!(bad(&|v| v["first_grade"]["window_1"]["to"] = json!("06-31")).contains("window"));
    assert!(bad(&|v| v["grade_weights"]["test"] = json!(0)).contains("must be positive"));
    assert!(bad(&|v| v["colour"] = json!("red")).contains("unknown field"));
    assert!(bad(&|v| v["admin_delegable_roles"] = json!(["institution_admin", "authority"]))
        .contains("delegable role authority"));
}

#[test]
fn the_vocabulary_covers_every_subsystem() {
    let types = event_types();
    assert_eq!(types.len(), 61, "the education types and the ledger's completeness commitment");
    for prefix in [
        "ledger.",
        "registry.",
        "keys.",
        "queue.",
        "enrolment.",
        "journal.",
        "additional.",
        "college.",
        "attestation.",
        "contingent.",
        "staff.",
        "digital.",
        "portfolio.",
        "learner.",
    ] {
        assert!(types.iter().any(|t| t.starts_with(prefix)), "{prefix}");
    }
    // Version 2 of queue.sibling_linked names the sibling's enrolment (the right is per kindergarten).
    assert!(types.iter().all(|t| schema_version(t) == Some(if *t == "queue.sibling_linked" { 2 } else { 1 })));
    assert_eq!(schema_version("journal.grade_deleted"), None);
}

#[test]
fn every_event_passes_the_common_checks() {
    let mut h = Harness::region();
    h.refused("unknown_event_type", TEACHER, L1, "journal.grade_deleted", json!({}));
    h.refused("schema_version_unsupported", TEACHER, L1, "journal.grade_recorded", grade(json!({"v": 2})));
    h.refused("schema_version_unsupported", TEACHER, L1, "journal.grade_recorded", grade(json!({"v": "1"})));
    h.refused("payload_type_not_allowed", TEACHER, L1, "journal.grade_recorded", grade(json!({"extra": true})));
    h.refused("payload_type_not_allowed", TEACHER, L1, "journal.grade_recorded", grade(json!({"extra": null})));
    assert!(h
        .refused(
            "personal_data_in_log",
            TEACHER,
            L1,
            "journal.grade_recorded",
            grade(json!({"note": "123-456-789 01"}))
        )
        .contains("data.note"));
    h.refused("personal_data_in_log", TEACHER, L1, "journal.grade_recorded", grade(json!({"Surname": "x"})));
    assert!(h
        .refused("event_malformed", TEACHER, L1, "journal.grade_recorded", grade(json!({"extra": "x"})))
        .contains("data.extra"));
    h.refused("stream_mismatch", TEACHER, "learner/a/b", "journal.grade_recorded", grade(json!({})));
    h.refused("stream_mismatch", TEACHER, "registry", "journal.grade_recorded", grade(json!({})));
    // Without the helper's `v`: a missing version, a data value that is not an object, a bad time.
    let check = |h: &Harness, data: &Value, at: &str| {
        let e = Envelope {
            seq: 99,
            stream: L1,
            event_type: "journal.grade_recorded",
            id: "x",
            occurred_at: at,
            recorded_at: zachetka_rules::time::parse_instant(at).unwrap_or(0),
            author: TEACHER,
            data,
        };
        refusal(h.rules.check(&e, &h.index)).map_err(|r| r.code)
    };
    let mut no_v = grade(json!({}));
    no_v.as_object_mut().unwrap().remove("v");
    assert_eq!(check(&h, &no_v, "2026-09-01T09:00:00Z"), Err("schema_version_unsupported"));
    assert_eq!(check(&h, &json!([1]), "2026-09-01T09:00:00Z"), Err("event_malformed"));
    let mut ok = grade(json!({}));
    ok["v"] = json!(1);
    assert_eq!(check(&h, &ok, "2026-09-01T09:00:00Z"), Ok(()));
    assert_eq!(check(&h, &ok, "2026-09-01 09:00:00"), Err("event_malformed"));
}

#[test]
fn check_is_pure_and_a_malformed_event_changes_nothing() {
    let mut h = Harness::region();
    let data = json!({"v": 1, "key": "did:key:z6MkPure", "holder": "p", "roles": ["teacher"], "scope": {"institution": "sch-001"}, "valid_from": "2026-01-01T00:00:00Z"});
    let e = Envelope {
        seq: 1,
        stream: "registry",
        event_type: "keys.granted",
        id: "x",
        occurred_at: "2026-09-01T09:00:00Z",
        recorded_at: zachetka_rules::time::parse_instant("2026-09-01T09:00:00Z").unwrap_or(0),
        author: ADMIN,
        data: &data,
    };
    assert!(h.rules.check(&e, &h.index).is_ok());
    assert!(h.rules.check(&e, &h.index).is_ok());
    assert!(h.rules.grant("did:key:z6MkPure").is_none());
    let bad = json!({"v": 1, "key": "did:key:z6MkPure", "roles": ["teacher"]});
    assert_eq!(
        refusal(h.rules.check_and_apply(&Envelope { data: &bad, ..e }, &h.index)).unwrap_err().code,
        "event_malformed"
    );
    assert!(h.rules.grant("did:key:z6MkPure").is_none());
    h.rules.check_and_apply(&e, &h.index).unwrap();
    assert!(h.rules.grant("did:key:z6MkPure").is_some());
    assert_eq!(refusal(h.rules.check_and_apply(&e, &h.index)).unwrap_err().code, "key_already_granted");
}
