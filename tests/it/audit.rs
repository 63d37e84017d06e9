//! The audit pinpoints tampering: every single-byte flip in a stored entry or checkpoint is
//! reported at its position, and nothing before it is blamed.

use super::support::*;
use serde_json::json;
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
                    Position::File { .. } | Position::SnapshotSection { .. } => {
                        panic!("entry damage is named by its entry: {v:?}")
                    }
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
    // What else a clean report vouches for: each checkpoint consistent with the one before it,
    // no completeness commitment to recompute here, no imported entry.
    assert_eq!((report.checkpoint_pairs_checked, report.commitments_recomputed), (4, 0));
    assert_eq!(report.imported.entries, 0);
    assert!(report.imported.by_key.is_empty() && report.warnings.is_empty() && report.consequences.is_empty());
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
        assert_eq!(ledger.clock_warnings(), Vec::<String>::new());
        pin_clock(t - 3600);
        ledger.append_blocking(vec![grade(2, "learner/b", None)])[0].as_ref().unwrap();
        // The operator sees it (`/v1/status`, `/metrics`), as a warning too: sled has no second
        // clock to check this node's against, so ledger time ahead is the one sign.
        assert_eq!(ledger.ledger_time_ahead_of_clock(), 3600);
        assert_eq!(ledger.clock_skew(), None);
        let warnings = ledger.clock_warnings();
        assert!(
            warnings.len() == 1
                && warnings[0].starts_with("ledger_time_ahead:")
                && warnings[0].contains("3600 s ahead"),
            "{warnings:?}"
        );
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

/// Where the digit of `"mark":` lies in entry `seq`'s bytes (inside the signed event).
fn mark_digit(store: &SledStore, seq: u64) -> u64 {
    let (at, len) = store.entry_span(seq).unwrap();
    let bytes = read_at(&store.paths().entries, at, len);
    let pattern = b"\"mark\":";
    let i = bytes.windows(pattern.len()).position(|w| w == pattern).expect("a grade entry");
    at + (i + pattern.len()) as u64
}

/// Where the last digit of entry `seq`'s `recorded_at` seconds lies (outside the signed event).
fn recorded_at_digit(store: &SledStore, seq: u64) -> u64 {
    let (at, len) = store.entry_span(seq).unwrap();
    let bytes = read_at(&store.paths().entries, at, len);
    let pattern = b"\",\"seq\":";
    let i = bytes.windows(pattern.len()).position(|w| w == pattern).expect("an entry");
    // `...:SSZ","seq":`: the digit before the `Z`.
    at + i as u64 - 2
}

/// A consequence as (caused by, code, count, first, last).
fn consequences(report: &zachetka::audit::AuditReport) -> Vec<(u64, &'static str, u64, Position, Position)> {
    report.consequences.iter().map(|c| (c.caused_by, c.code, c.count, c.first.clone(), c.last.clone())).collect()
}

fn blamed(report: &zachetka::audit::AuditReport) -> Vec<(Position, &'static str)> {
    report.violations.iter().map(|v| (v.position.clone(), v.code)).collect()
}

/// One changed entry is one cause: the signed checkpoints and the head after it differ from the
/// recomputed roots only because of it, and are reported as its consequences (counted, with the
/// first and last position), not as violations of their own. The altered entry's signature is
/// checked, and the report says whether the signed event changed or only the bytes around it.
#[test]
fn a_changed_entry_is_one_cause_and_what_depends_on_it_is_marked_as_its_consequence() {
    use zachetka::audit::SignedEvent;
    let dir = tampering_ground();
    let store = SledStore::open(dir.path()).unwrap();
    let entries = store.paths().entries.clone();
    let cp = |tree_size| Position::Checkpoint { tree_size };

    // The mark in entry 13's signed event: 5 becomes 4.
    let at = mark_digit(&store, 13);
    assert_eq!(read_at(&entries, at, 1), b"5");
    write_at(&entries, at, b"4");
    let report = audit(&store, &|_, _| {}).unwrap();
    write_at(&entries, at, b"5");
    assert_eq!(blamed(&report), vec![(Position::Entry { seq: 13 }, "leaf_hash_mismatch")], "{report:#?}");
    assert_eq!(report.violations[0].signed_event, Some(SignedEvent::Altered));
    let message = &report.violations[0].message;
    assert!(message.contains("signature no longer verifies"), "{message}");
    assert!(message.contains("checkpoint at tree size 16 signs the root over its stored leaf hash"), "{message}");
    assert_eq!(
        consequences(&report),
        vec![
            (13, "checkpoint_root_mismatch", 4, cp(16), cp(40)),
            (13, "head_root_mismatch", 1, Position::Head, Position::Head),
        ]
    );
    assert_eq!(report.signatures_checked, 40, "the altered entry's signature is checked too");
    assert!(!report.is_clean());

    // Entry 20's recorded_at (outside the signed event) changes by a second.
    let at = recorded_at_digit(&store, 20);
    let original = read_at(&entries, at, 1);
    write_at(&entries, at, &[original[0] ^ 0x01]);
    let report = audit(&store, &|_, _| {}).unwrap();
    write_at(&entries, at, &original);
    assert_eq!(blamed(&report), vec![(Position::Entry { seq: 20 }, "leaf_hash_mismatch")], "{report:#?}");
    assert_eq!(report.violations[0].signed_event, Some(SignedEvent::Intact));
    assert_eq!(
        consequences(&report),
        vec![
            (20, "checkpoint_root_mismatch", 3, cp(24), cp(40)),
            (20, "head_root_mismatch", 1, Position::Head, Position::Head),
        ]
    );

    // Entry 27's stored leaf hash changes instead: its bytes are as signed, nothing depends on it.
    let hashes = store.paths().hashes.clone();
    let at = zachetka::merkle::stored_hash_index_of_leaf(27) * 32;
    let original = read_at(&hashes, at, 1);
    write_at(&hashes, at, &[original[0] ^ 0x01]);
    let report = audit(&store, &|_, _| {}).unwrap();
    write_at(&hashes, at, &original);
    assert_eq!(blamed(&report), vec![(Position::Entry { seq: 27 }, "leaf_hash_mismatch")], "{report:#?}");
    assert_eq!(report.violations[0].signed_event, Some(SignedEvent::Intact));
    let message = &report.violations[0].message;
    assert!(message.contains("its stored leaf hash was altered, not the entry"), "{message}");
    assert!(report.consequences.is_empty(), "{:#?}", report.consequences);
    assert!(audit(&store, &|_, _| {}).unwrap().is_clean());
}

/// Replaces the note of the checkpoint stored under `tree_size` by one the ledger key signs over
/// another root (and the record's copy of the root with it): a forged checkpoint whose every
/// signature and checksum holds.
fn forge_checkpoint(dir: &std::path::Path, tree_size: u64) {
    use sha2::Digest;
    let paths = zachetka::store::sled::StorePaths::of(dir);
    let (at, len, _) =
        checkpoint_records(&paths.checkpoints).into_iter().find(|r| r.2 == tree_size).expect("a checkpoint");
    let record = read_at(&paths.checkpoints, at, len);
    let root = zachetka::merkle::Hash([0x5a; 32]);
    let head = zachetka::checkpoint::TreeHead { tree_size, root_hash: root };
    let note = zachetka::checkpoint::LedgerSigner::new(ORIGIN, ledger_key()).sign(&head);
    let fixed = 4 + 56;
    assert_eq!(note.len() as u64, len - fixed as u64 - 16, "the forged note has the genuine one's length");
    let mut body = record[4..fixed].to_vec();
    body[16..48].copy_from_slice(&root.0);
    body.extend_from_slice(&note);
    let mut framed = record[..4].to_vec();
    framed.extend_from_slice(&body);
    let mut h = sha2::Sha256::new();
    h.update(&record[..4]);
    h.update(&body);
    framed.extend_from_slice(&h.finalize()[..16]);
    write_at(&paths.checkpoints, at, &framed);
}

/// A checkpoint that differs on its own (forged, before the changed entry or after it) is still
/// its own violation: the changed entry explains only the roots that agree with the stored leaf
/// hashes it was written with.
#[test]
fn a_checkpoint_forged_apart_from_a_changed_entry_is_its_own_violation() {
    let dir = tampering_ground();
    forge_checkpoint(dir.path(), 8);
    forge_checkpoint(dir.path(), 24);
    let store = SledStore::open_read_only(dir.path()).unwrap();
    let report = audit(&store, &|_, _| {}).unwrap();
    assert_eq!(
        blamed(&report),
        vec![
            (Position::Checkpoint { tree_size: 8 }, "checkpoint_root_mismatch"),
            (Position::Checkpoint { tree_size: 24 }, "checkpoint_root_mismatch"),
        ],
        "{report:#?}"
    );
    assert!(report.consequences.is_empty());
    drop(store);

    let store = SledStore::open(dir.path()).unwrap();
    let entries = store.paths().entries.clone();
    let at = mark_digit(&store, 13);
    write_at(&entries, at, b"4");
    let report = audit(&store, &|_, _| {}).unwrap();
    let cp = |tree_size| Position::Checkpoint { tree_size };
    assert_eq!(
        blamed(&report),
        vec![
            (cp(8), "checkpoint_root_mismatch"),
            (Position::Entry { seq: 13 }, "leaf_hash_mismatch"),
            (cp(24), "checkpoint_root_mismatch"),
        ],
        "{report:#?}"
    );
    assert_eq!(
        consequences(&report),
        vec![
            (13, "checkpoint_root_mismatch", 3, cp(16), cp(40)),
            (13, "head_root_mismatch", 1, Position::Head, Position::Head),
        ]
    );
}

/// A flipped byte in a snapshot's section is reported at the section: the file, the section's
/// name and its byte range (not the file's first byte).
#[test]
fn a_flipped_snapshot_section_is_named_with_its_byte_range() {
    use zachetka::audit::{audit_with, DerivedSources};
    let dir = tempfile::tempdir().unwrap();
    let (authority, path) = super::read::ledger_with_snapshot(dir.path());
    let snap = zachetka_snapshots::read(&path).unwrap();
    let name = snap.sections().map(|s| s.name.to_owned()).max_by_key(|n| snap.section(n).unwrap().bytes.len()).unwrap();
    let (start, end) = snap.section_span(&name).unwrap();
    assert!(start > 0 && end > start + 1);
    let at = (start + end) / 2;
    let original = read_at(&path, at, 1);
    write_at(&path, at, &[original[0] ^ 0x01]);
    let store = super::read::demo_store(dir.path(), &authority);
    let sources = DerivedSources { snapshots: Some(dir.path().join("snapshots")), served: None };
    let report = audit_with(&*store, &sources, &|_, _| {}).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        blamed(&report),
        vec![(
            Position::SnapshotSection { file: file.clone(), section: name.clone(), offset: start, end },
            "snapshot_section_checksum_mismatch"
        )],
        "{report:#?}"
    );
    assert_eq!(
        report.violations[0].to_string(),
        format!(
            "snapshot {file}, section {name} (bytes {start}..{end}): snapshot_section_checksum_mismatch: {}",
            report.violations[0].message
        )
    );
}

/// A changed entry before a snapshot: the snapshot's read models differ from the ones rebuilt
/// from the log because of it, and are its consequences, each named at its section.
#[test]
fn a_snapshot_after_a_changed_entry_differs_as_its_consequence() {
    use zachetka::audit::{audit_with, DerivedSources};
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = super::read::ledger_with_snapshot(dir.path());
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    use zachetka::store::Store;
    let size = store.head().unwrap().unwrap().0.tree_size;
    // The first grade in the log: its mark changes by one.
    let seq = (0..size)
        .find(|&s| {
            let e = zachetka::event::parse_entry(&store.entries(s, 1).unwrap()[0]).unwrap();
            e.event["type"] == "journal.grade_recorded"
        })
        .expect("the demo grades");
    let at = mark_digit(&store, seq);
    let original = read_at(&store.paths().entries, at, 1);
    assert!((b'2'..=b'5').contains(&original[0]));
    let changed = if original[0] == b'5' { b'4' } else { original[0] + 1 };
    write_at(&store.paths().entries, at, &[changed]);
    let sources = DerivedSources { snapshots: Some(dir.path().join("snapshots")), served: None };
    let report = audit_with(&store, &sources, &|_, _| {}).unwrap();
    assert_eq!(blamed(&report), vec![(Position::Entry { seq }, "leaf_hash_mismatch")], "{report:#?}");
    let snapshot = consequences(&report).into_iter().find(|c| c.1 == "snapshot_differs").expect("the snapshot differs");
    assert_eq!(snapshot.0, seq);
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(matches!(&snapshot.3, Position::SnapshotSection { file: f, .. } if *f == file), "{snapshot:?}");
    assert!(report.consequences.iter().all(|c| c.caused_by == seq), "{:#?}", report.consequences);
}

/// A key revoked with an `effective_at` earlier than the revocation's own position: the entries
/// it signed from that time until the revocation stay in the log, and the audit names each one
/// (a warning: the log is intact; see README "Audit"), and no other. A revocation without
/// `effective_at` takes effect when its author signed it: an entry recorded meanwhile but signed
/// before is not named.
#[test]
fn entries_signed_after_a_keys_effective_revocation_are_named() {
    use super::rules::{append_region, grade_event, DEMO_ORIGIN};
    use zachetka::ledger::RulesMode;
    let dir = tempfile::tempdir().unwrap();
    let ledger = super::rules::education_ledger(dir.path(), RulesMode::Enforce);
    append_region(&ledger);
    // Not teacher 2, whom the demo's own history revokes.
    let suspect = zachetka::demo::demo_key(DEMO_ORIGIN, "teacher/6");
    let other = zachetka::demo::demo_key(DEMO_ORIGIN, "teacher/4");
    let append = |ev| ledger.append_blocking(vec![ev]).remove(0).unwrap().seq;
    // Before the compromise (recorded at 09:00): not named.
    let before = append(grade_event(960_001, &suspect, "sch-001", "5А", 4));
    pin_clock_at("2027-05-20T10:00:00Z");
    let first = append(grade_event(960_002, &suspect, "sch-001", "5А", 5));
    let innocent = append(grade_event(960_003, &other, "sch-001", "6А", 3));
    let second = append(grade_event(960_004, &suspect, "sch-001", "7А", 2));
    let left = zachetka::demo::demo_key(DEMO_ORIGIN, "teacher/8");
    let in_flight = append(grade_event(960_006, &left, "sch-001", "8А", 4));
    // A rotation from an earlier instant judges the old key's entries the same way.
    let rotated = zachetka::demo::demo_key(DEMO_ORIGIN, "teacher/10");
    let by_rotated = append(grade_event(960_008, &rotated, "sch-001", "9А", 5));
    let authority = zachetka::demo::demo_key(DEMO_ORIGIN, "authority");
    let revocation = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.revoked", "id": id(960_005),
        "occurred_at": "2027-05-20T10:00:00Z", "author": authority.did(),
        "data": {"v": 1, "key": suspect.did(), "reason": "ключ скомпрометирован", "effective_at": "2027-05-20T10:00:00Z"}});
    let revoked_at = append(zachetka::event::sign_event(&revocation, &authority).unwrap());
    let plain = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.revoked", "id": id(960_007),
        "occurred_at": "2027-05-20T10:00:00Z", "author": authority.did(),
        "data": {"v": 1, "key": left.did(), "reason": "уволен"}});
    append(zachetka::event::sign_event(&plain, &authority).unwrap());
    let successor = zachetka::keys::KeyPair::from_seed(&[0x6e; 32]);
    let rotation = json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.rotated", "id": id(960_009),
        "occurred_at": "2027-05-20T10:00:00Z", "author": authority.did(),
        "data": {"v": 1, "old_key": rotated.did(), "new_key": successor.did(), "effective_at": "2027-05-20T09:30:00Z"}});
    append(zachetka::event::sign_event(&rotation, &authority).unwrap());
    let report = audit(&**ledger.store(), &|_, _| {}).unwrap();
    assert!(report.is_clean(), "a warning does not fail the audit: {:#?}", report.violations);
    // The demo's history has its own (a teacher who left, revoked from an earlier date): only
    // the entries written here are looked at.
    let warned: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| matches!(w.position, Position::Entry { seq } if seq >= before))
        .map(|w| (w.position.clone(), w.code))
        .collect();
    assert_eq!(
        warned,
        vec![
            (Position::Entry { seq: first }, "signed_after_effective_revocation"),
            (Position::Entry { seq: second }, "signed_after_effective_revocation"),
            (Position::Entry { seq: by_rotated }, "signed_after_effective_revocation"),
        ],
        "not {before}, {innocent} nor {in_flight}"
    );
    let named = report.warnings.iter().find(|w| w.position == Position::Entry { seq: first }).unwrap();
    assert!(named.message.contains(&format!("entry {revoked_at}")), "{}", named.message);
    assert!(named.message.contains(&suspect.did()), "{}", named.message);
}
