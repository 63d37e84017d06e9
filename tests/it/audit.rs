//! The audit pinpoints tampering: every single-byte flip in a stored entry or checkpoint is
//! reported at its position, and nothing before it is blamed.

use super::support::*;
use std::sync::Arc;
use zachetka::audit::{audit, Position};
use zachetka::ledger::Limits;
use zachetka::store::sled::SledStore;

/// A ledger of 40 entries in 5 batches (5 checkpoints), closed, returned as its directory.
fn tampering_ground() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open_ledger(new_store(dir.path()), Limits::default());
    for b in 0..5u64 {
        let batch = (0..8u64).map(|i| grade(b * 8 + i, &format!("learner/{}", i % 3), None)).collect();
        assert!(ledger.append_blocking(batch).iter().all(Result::is_ok));
    }
    check_log(&ledger);
    dir
}

fn key(prefix: u8, n: u64) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&n.to_be_bytes());
    k
}

#[test]
fn every_flipped_byte_of_an_entry_is_pinpointed() {
    let dir = tampering_ground();
    let store = SledStore::open(dir.path()).unwrap();
    for seq in [0u64, 13, 39] {
        let k = key(b'e', seq);
        let original = store.raw().get(&k).unwrap().unwrap().to_vec();
        for pos in 0..original.len() {
            let mut bytes = original.clone();
            bytes[pos] ^= 0x01;
            store.raw().insert(&k, bytes).unwrap();
            let report = audit(&store, &|_, _| {}).unwrap();
            assert!(!report.is_clean(), "flip at byte {pos} of entry {seq} went unnoticed");
            let first = &report.violations[0];
            assert_eq!(first.position, Position::Entry { seq }, "flip at byte {pos} of entry {seq}: {:#?}", report.violations);
            for v in &report.violations {
                match &v.position {
                    Position::Entry { seq: s } => assert_eq!(*s, seq, "only the altered entry is blamed: {v:?}"),
                    Position::Checkpoint { tree_size } => assert!(*tree_size > seq, "{v:?}"),
                    Position::Head => {}
                    Position::Stream { .. } => {}
                }
            }
        }
        store.raw().insert(&k, original).unwrap();
    }
    assert!(audit(&store, &|_, _| {}).unwrap().is_clean());
}

#[test]
fn every_flipped_byte_of_a_checkpoint_is_pinpointed() {
    let dir = tampering_ground();
    let store = SledStore::open(dir.path()).unwrap();
    for size in [8u64, 24, 40] {
        let k = key(b'k', size);
        let original = store.raw().get(&k).unwrap().unwrap().to_vec();
        for pos in 0..original.len() {
            let mut bytes = original.clone();
            bytes[pos] ^= 0x01;
            store.raw().insert(&k, bytes).unwrap();
            let report = audit(&store, &|_, _| {}).unwrap();
            assert!(
                report.violations.iter().any(|v| v.position == Position::Checkpoint { tree_size: size }),
                "flip at byte {pos} of checkpoint {size}: {:#?}",
                report.violations
            );
            assert!(report.violations.iter().all(|v| !matches!(v.position, Position::Entry { .. })), "{:#?}", report.violations);
        }
        store.raw().insert(&k, original).unwrap();
    }
    assert!(audit(&store, &|_, _| {}).unwrap().is_clean());
}

#[test]
fn a_missing_entry_and_a_rewritten_history_are_reported() {
    let dir = tampering_ground();
    let store = SledStore::open(dir.path()).unwrap();
    // An operator deletes entry 5.
    let k = key(b'e', 5);
    let original = store.raw().get(&k).unwrap().unwrap();
    store.raw().remove(&k).unwrap();
    let report = audit(&store, &|_, _| {}).unwrap();
    assert_eq!(report.violations[0].position, Position::Entry { seq: 5 });
    assert_eq!(report.violations[0].code, "entry_missing");
    store.raw().insert(&k, original).unwrap();
    // An operator re-signs nothing but swaps two entries' bytes (both signatures stay valid).
    let (a, b) = (key(b'e', 20), key(b'e', 21));
    let (va, vb) = (store.raw().get(&a).unwrap().unwrap(), store.raw().get(&b).unwrap().unwrap());
    store.raw().insert(&a, vb.clone()).unwrap();
    store.raw().insert(&b, va.clone()).unwrap();
    let report = audit(&store, &|_, _| {}).unwrap();
    assert_eq!(report.violations[0].position, Position::Entry { seq: 20 });
    assert!(report.violations.iter().any(|v| v.code == "seq_mismatch"));
}

#[test]
fn audit_agrees_with_a_ledger_reopened_after_tampering_elsewhere() {
    // A clean ledger audits clean through the shared Store trait object as well.
    let dir = tampering_ground();
    let store: Arc<dyn zachetka::store::Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let report = audit(&*store, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    assert_eq!((report.entries_checked, report.signatures_checked, report.checkpoints_checked, report.streams_checked), (40, 40, 5, 3));
}
