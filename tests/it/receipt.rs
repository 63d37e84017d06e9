//! Old receipts stay checkable offline: a receipt, the checkpoint of its size (served after the
//! head moved on) and its inclusion proof verify under the ledger's verifier key; each way they
//! can disagree is refused with its code.

use super::support::*;
use serde_json::{json, Value};
use zachetka::merkle::{hashes_to_b64, HashB64, InclusionProof};
use zachetka_record::verify_receipt;

#[test]
fn an_old_receipt_with_its_checkpoint_and_proof_verifies_and_each_mismatch_is_named() {
    let (_dir, ledger) = temp_ledger();
    let receipt = ledger.append_blocking(vec![grade(1, "learner/a", None)]).remove(0).unwrap();
    for n in 2..40 {
        ledger.append_blocking(vec![grade(n, "learner/a", None)]).remove(0).unwrap();
    }
    assert!(ledger.head().0.tree_size > receipt.tree_size, "the head moved on");
    let vkey = ledger.config().verifier_key.clone();
    let receipt_json = serde_json::to_vec(&receipt).unwrap();
    let note = ledger.checkpoint_at(receipt.tree_size).unwrap().expect("the checkpoint of the receipt's size");
    let proof_of = |seq: u64, size: u64| {
        let hashes = ledger.prove_inclusion(seq, size).unwrap();
        serde_json::to_vec(&InclusionProof { leaf_index: seq, tree_size: size, hashes: hashes_to_b64(&hashes) })
            .unwrap()
    };
    let proof = proof_of(receipt.seq, receipt.tree_size);
    let entry = ledger.store().entries(receipt.seq, 1).unwrap().remove(0);

    let report = verify_receipt(&receipt_json, &note, &proof, Some(&entry), &vkey).unwrap();
    assert_eq!((report.seq, report.tree_size, report.entry_checked), (receipt.seq, receipt.tree_size, true));
    assert_eq!(report.origin, ORIGIN);

    let code = |receipt: &[u8], note: &[u8], proof: &[u8], entry: Option<&[u8]>, vkey: &str| {
        verify_receipt(receipt, note, proof, entry, vkey).unwrap_err().code()
    };
    // The latest checkpoint is not the receipt's.
    let (_, latest) = ledger.head();
    assert_eq!(code(&receipt_json, &latest, &proof, None, &vkey), "checkpoint_size_mismatch");
    // Another ledger's key.
    let other = zachetka::checkpoint::LedgerSigner::new(ORIGIN, zachetka::keys::KeyPair::from_seed(&[0x99; 32]));
    assert_eq!(code(&receipt_json, &note, &proof, None, &other.verifier_key()), "checkpoint_invalid");
    // A receipt whose leaf hash was changed.
    let mut forged: Value = serde_json::from_slice(&receipt_json).unwrap();
    forged["leaf_hash"] = json!(zachetka::merkle::leaf_hash(b"another entry").to_b64());
    assert_eq!(code(&serde_json::to_vec(&forged).unwrap(), &note, &proof, None, &vkey), "inclusion_invalid");
    // A proof for another entry or size.
    let other_proof = proof_of(receipt.seq + 1, receipt.tree_size + 1);
    assert_eq!(code(&receipt_json, &note, &other_proof, None, &vkey), "proof_mismatch");
    // Entry bytes that are not the receipt's entry.
    let mut changed = entry.clone();
    *changed.last_mut().unwrap() ^= 1;
    assert_eq!(code(&receipt_json, &note, &proof, Some(&changed), &vkey), "entry_hash_mismatch");
    // Not a receipt at all.
    assert_eq!(code(b"{\"seq\": 1}", &note, &proof, None, &vkey), "receipt_malformed");
    assert_eq!(code(&receipt_json, &note, b"[]", None, &vkey), "proof_malformed");

    // The same through the binary: `zachetka verify --receipt`.
    let files = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let (r, c, p, e, latest) = (
        put("r.json", &receipt_json),
        put("c.note", &note),
        put("p.json", &proof),
        put("e.bin", &entry),
        put("l.note", &latest),
    );
    let run = |checkpoint: &std::path::Path, json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"));
        cmd.args(["verify", "--vkey", &vkey, "--receipt"]).arg(&r).arg("--receipt-checkpoint").arg(checkpoint);
        cmd.arg("--proof").arg(&p).arg("--entry").arg(&e).env("RUST_LOG", "warn");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (status, text) = run(&c, false);
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains(&format!("entry {} is in the log", receipt.seq)) && text.contains("leaf hash"), "{text}");
    let (status, text) = run(&latest, true);
    assert_eq!(status, Some(1), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((v["ok"].clone(), v["code"].clone()), (json!(false), json!("checkpoint_size_mismatch")), "{text}");
}
