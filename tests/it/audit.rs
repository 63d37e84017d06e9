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

fn file(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap()
}

fn read_at(path: &std::path::Path, at: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; len as usize];
    file(path).read_exact_at(&mut b, at).unwrap();
    b
}

fn write_at(path: &std::path::Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    file(path).write_all_at(bytes, at).unwrap();
}

/// Every byte an entry occupies: its bytes in entries.dat and its stored hashes in hashes.dat.
fn entry_bytes_on_disk(store: &SledStore, seq: u64) -> Vec<(std::path::PathBuf, u64)> {
    let paths = store.paths();
    let (at, len) = store.entry_span(seq).unwrap();
    let mut out: Vec<_> = (at..at + len).map(|o| (paths.entries.clone(), o)).collect();
    let first = zachetka::merkle::stored_hash_index_of_leaf(seq) * 32;
    let end = zachetka::merkle::stored_hash_index_of_leaf(seq + 1) * 32;
    out.extend((first..end).map(|o| (paths.hashes.clone(), o)));
    out
}

#[test]
fn every_flipped_byte_of_an_entry_is_pinpointed() {
    let dir = tampering_ground();
    let store = SledStore::open(dir.path()).unwrap();
    for seq in [0u64, 13, 39] {
        for (path, pos) in entry_bytes_on_disk(&store, seq) {
            let original = read_at(&path, pos, 1);
            write_at(&path, pos, &[original[0] ^ 0x01]);
            let report = audit(&store, &|_, _| {}).unwrap();
            write_at(&path, pos, &original);
            assert!(!report.is_clean(), "flip at {}:{pos} (entry {seq}) went unnoticed", path.display());
            let first = &report.violations[0];
            assert_eq!(
                first.position,
                Position::Entry { seq },
                "flip at {}:{pos} of entry {seq}: {:#?}",
                path.display(),
                report.violations
            );
            for v in &report.violations {
                match &v.position {
                    Position::Entry { seq: s } => assert_eq!(*s, seq, "only the altered entry is blamed: {v:?}"),
                    Position::Checkpoint { tree_size } => assert!(*tree_size > seq, "{v:?}"),
                    Position::Head => {}
                    Position::Stream { .. } => {}
                    Position::File { .. } => panic!("entry damage is named by its entry: {v:?}"),
                }
            }
        }
    }
    assert!(audit(&store, &|_, _| {}).unwrap().is_clean());
}

/// The records of checkpoints.dat: (offset, length, tree size).
pub fn checkpoint_records(path: &std::path::Path) -> Vec<(u64, u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let (mut out, mut at) = (Vec::new(), 0usize);
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let tree_size = u64::from_be_bytes(bytes[at + 12..at + 20].try_into().unwrap());
        out.push((at as u64, (4 + len + 16) as u64, tree_size));
        at += 4 + len + 16;
    }
    out
}

/// A flipped byte anywhere in a checkpoint's record (its note, its head, its frame) is named by
/// the checkpoint's tree size, also in the last record, which head.dat holds a second copy of.
#[test]
fn every_flipped_byte_of_a_checkpoint_is_pinpointed() {
    let dir = tampering_ground();
    let paths = zachetka::store::sled::StorePaths::of(dir.path());
    let records = checkpoint_records(&paths.checkpoints);
    assert_eq!(records.iter().map(|r| r.2).collect::<Vec<_>>(), vec![8, 16, 24, 32, 40]);
    for &(at, len, size) in records.iter().filter(|r| [8, 24, 40].contains(&r.2)) {
        for pos in at..at + len {
            let original = read_at(&paths.checkpoints, pos, 1);
            write_at(&paths.checkpoints, pos, &[original[0] ^ 0x01]);
            let store = SledStore::open_read_only(dir.path()).unwrap();
            let report = audit(&store, &|_, _| {}).unwrap();
            drop(store);
            write_at(&paths.checkpoints, pos, &original);
            assert!(
                report.violations.iter().any(|v| v.position == Position::Checkpoint { tree_size: size }),
                "flip at byte {} of checkpoint {size}: {:#?}",
                pos - at,
                report.violations
            );
            assert!(
                report.violations.iter().all(|v| !matches!(v.position, Position::Entry { .. })),
                "{:#?}",
                report.violations
            );
        }
    }
    let store = SledStore::open_read_only(dir.path()).unwrap();
    assert!(audit(&store, &|_, _| {}).unwrap().is_clean());
}

#[test]
fn a_missing_entry_and_a_rewritten_history_are_reported() {
    let dir = tampering_ground();
    let store = SledStore::open(dir.path()).unwrap();
    let paths = store.paths();
    // An operator damages the offset of entry 5 so that it points outside the file.
    let original = read_at(&paths.offsets, 5 * 8, 8);
    write_at(&paths.offsets, 5 * 8, &u64::MAX.to_be_bytes());
    let report = audit(&store, &|_, _| {}).unwrap();
    write_at(&paths.offsets, 5 * 8, &original);
    // Entry 5's offset is also entry 4's end: both are unreadable, nothing else is blamed.
    assert_eq!(report.violations[0].position, Position::Entry { seq: 4 }, "{:#?}", report.violations);
    assert_eq!(report.violations[0].code, "record_malformed");
    assert_eq!(report.violations[1].position, Position::Entry { seq: 5 }, "{:#?}", report.violations);
    assert!(
        report.violations.iter().all(|v| !matches!(v.position, Position::Entry { seq } if seq != 4 && seq != 5)),
        "{:#?}",
        report.violations
    );
    // An operator swaps two entries' bytes (both signatures stay valid).
    let (a, la) = store.entry_span(20).unwrap();
    let (b, lb) = store.entry_span(21).unwrap();
    let (va, vb) = (read_at(&paths.entries, a, la), read_at(&paths.entries, b, lb));
    write_at(&paths.entries, a, &[vb.clone(), va.clone()].concat());
    write_at(&paths.offsets, 21 * 8, &(a + lb).to_be_bytes());
    let report = audit(&store, &|_, _| {}).unwrap();
    assert_eq!(report.violations[0].position, Position::Entry { seq: 20 });
    let blamed: Vec<_> = report
        .violations
        .iter()
        .filter(|v| matches!(v.position, Position::Entry { .. }))
        .map(|v| (v.position.clone(), v.code))
        .collect();
    assert_eq!(
        blamed,
        vec![(Position::Entry { seq: 20 }, "leaf_hash_mismatch"), (Position::Entry { seq: 21 }, "leaf_hash_mismatch")]
    );
}

#[test]
fn audit_agrees_with_a_ledger_reopened_after_tampering_elsewhere() {
    // A clean ledger audits clean through the shared Store trait object as well.
    let dir = tampering_ground();
    let store: Arc<dyn zachetka::store::Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let report = audit(&*store, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    assert_eq!(
        (report.entries_checked, report.signatures_checked, report.checkpoints_checked, report.streams_checked),
        (40, 40, 5, 3)
    );
}

/// Commits `event` by hand around the sequencer as entry 1 of a ledger holding one entry, with
/// the given ledger time and stream position (what the sequencer would have decided for it).
fn commit_second_entry_by_hand(
    dir: &std::path::Path,
    event: serde_json::Value,
    recorded_at_unix: i64,
    stream_version: u64,
) {
    use zachetka::store::{BatchEntry, CommitBatch, IdRecord, Store};
    let store = SledStore::open(dir).unwrap();
    // Rebuild the tree from the stored entry, then commit the hand-made second one.
    let mut tree = zachetka::merkle::MemoryTree::default();
    let first = store.entries(0, 1).unwrap().remove(0);
    tree.push(zachetka::merkle::leaf_hash(&first));
    let v = zachetka::event::verify_signed(event, ORIGIN, &Default::default()).unwrap();
    let stream_prev = (stream_version > 0).then(|| zachetka::merkle::leaf_hash(&first));
    let meta = zachetka::event::EntryMeta { seq: 1, recorded_at_unix, stream_version, stream_prev };
    let bytes = zachetka::event::entry_bytes(&meta, &v.canonical, &v.sig);
    let leaf = zachetka::merkle::leaf_hash(&bytes);
    let hashes = tree.push(leaf).to_vec();
    let head = zachetka::checkpoint::TreeHead { tree_size: 2, root_hash: tree.root() };
    let checkpoint = zachetka::checkpoint::LedgerSigner::new(ORIGIN, ledger_key()).sign(&head);
    let id_record = IdRecord {
        seq: 1,
        stream_version,
        tree_size: 2,
        leaf_hash: leaf,
        digest: v.content_digest(),
        stream: v.stream.clone(),
        event_type: v.event_type.clone(),
    };
    let entry = BatchEntry { bytes, hashes, id: v.id.clone(), id_record, stream: v.stream.clone() };
    store.commit(&CommitBatch { first_seq: 1, entries: vec![entry], stream_heads: vec![], head, checkpoint }).unwrap();
}

/// The violations the audit reports on the ledger in `dir`, with their positions.
fn violations(dir: &std::path::Path) -> Vec<(Position, &'static str)> {
    let store = SledStore::open(dir).unwrap();
    let report = audit(&store, &|_, _| {}).unwrap();
    report.violations.iter().map(|v| (v.position.clone(), v.code)).collect()
}

/// An entry written by hand around the sequencer, at a stream version its author did not expect,
/// is reported (the sequencer would have refused it with `stream_version_conflict`).
#[test]
fn an_entry_at_an_unexpected_stream_version_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open_ledger(new_store(dir.path()), Limits::default());
        assert!(ledger.append_blocking(vec![grade(1, "learner/a", Some(0))])[0].is_ok());
    }
    commit_second_entry_by_hand(dir.path(), grade(2, "learner/a", Some(0)), 1_795_000_000, 1);
    assert_eq!(violations(dir.path()), vec![(Position::Entry { seq: 1 }, "stream_version_conflict")]);
}

/// Ledger time never runs backwards along the log: the queue is ordered by it, and grants are
/// judged at it. A clock stepped back (here by an hour, and again after a reopen) stamps the next
/// batches with the latest time already in the log; an entry written by hand around the
/// sequencer with an earlier `recorded_at` is reported by the audit at its position.
#[test]
fn ledger_time_never_runs_backwards() {
    use zachetka::store::Store;
    let t = 1_795_000_000;
    pin_clock(t);
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = open_ledger(new_store(dir.path()), Limits::default());
        assert_eq!(ledger.append_blocking(vec![grade(1, "learner/a", None)])[0].as_ref().unwrap().seq, 0);
        assert_eq!(ledger.ledger_time_ahead_of_clock(), 0);
        pin_clock(t - 3600);
        ledger.append_blocking(vec![grade(2, "learner/b", None)])[0].as_ref().unwrap();
        // The operator sees it (`/v1/status`, `/metrics`).
        assert_eq!(ledger.ledger_time_ahead_of_clock(), 3600);
    }
    {
        // A fresh sequencer learns the latest time from the log itself.
        let ledger = open_ledger(SledStore::open(dir.path()).map(Arc::new).unwrap(), Limits::default());
        ledger.append_blocking(vec![grade(3, "learner/c", None)])[0].as_ref().unwrap();
        pin_clock(t + 60);
        ledger.append_blocking(vec![grade(4, "learner/d", None)])[0].as_ref().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let times: Vec<i64> = store
        .entries(0, 4)
        .unwrap()
        .iter()
        .map(|b| zachetka::event::parse_entry(b).unwrap().meta.recorded_at_unix)
        .collect();
    assert_eq!(times, vec![t, t, t, t + 60]);
    drop(store);
    assert!(violations(dir.path()).is_empty());

    let dir = tempfile::tempdir().unwrap();
    pin_clock(t);
    {
        let ledger = open_ledger(new_store(dir.path()), Limits::default());
        ledger.append_blocking(vec![grade(1, "learner/a", None)])[0].as_ref().unwrap();
    }
    commit_second_entry_by_hand(dir.path(), grade(2, "learner/b", None), t - 1, 0);
    assert_eq!(violations(dir.path()), vec![(Position::Entry { seq: 1 }, "recorded_at_backwards")]);
}
