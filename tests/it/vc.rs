//! `zachetka vc issue|verify` through the binary: a learner record credential issued by the
//! ledger key verifies, names the ledger's did:key, and any change to it fails with its code.

use super::support::*;
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn vc(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .arg("vc")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_credential_issued_by_the_ledger_key_verifies_and_any_change_fails() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("ledger.key");
    std::fs::write(&key_file, ledger_key().to_key_file()).unwrap();
    let bundle = json!({"format": "zachetka-record", "version": 1, "learner": "47-000123", "entries": []});
    let summary = json!({"results": [], "withheld": 0});
    let credential =
        zachetka::vc::learner_record_credential(ORIGIN, "47-000123", summary, bundle, "2026-12-01T00:00:00Z");
    let key = key_file.to_str().unwrap();
    let out = vc(&["issue", "--key", key, "--created", "2026-12-01T00:00:00Z"], &credential.to_string());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["issuer"], json!(ledger_key().did()));
    assert_eq!(issued, zachetka::vc::issue(&credential, &ledger_key(), "2026-12-01T00:00:00Z").unwrap());

    let out = vc(&["verify", "--issuer", &ledger_key().did()], &issued.to_string());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, json!({"verified": true, "issuer": ledger_key().did(), "created": "2026-12-01T00:00:00Z"}));

    let mut changed = issued.clone();
    changed["evidence"][0]["bundle"]["learner"] = json!("47-000124");
    let out = vc(&["verify"], &changed.to_string());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"], "signature_invalid");

    // Another issuer demanded: refused even though the proof holds.
    let out = vc(&["verify", "--issuer", &teacher().did()], &issued.to_string());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"], "issuer_mismatch");
}
