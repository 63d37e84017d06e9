//! Storage faults in the sled store: what a crash, a flipped bit, a cut, a deleted or an
//! older file leaves, and what opening and auditing make of it. The rule everywhere: an
//! acknowledged entry is never lost nor rewritten, the ledger never signs a second checkpoint for
//! a size it signed, an audit changes no byte, and damage is either refused with its file and
//! position, reported by the audit with its position, or harmless.

use super::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zachetka::audit::{audit, AuditReport, Position};
use zachetka::ledger::Limits;
use zachetka::store::sled::{SledStore, StorePaths};
use zachetka::store::{Store, StoreError};

/// What a store held when it was left: every acknowledged entry and every signed checkpoint.
struct Acked {
    entries: Vec<Vec<u8>>,
    checkpoints: Vec<(u64, Vec<u8>)>,
}

/// Appends `batches` batches of 6 grades (ids from `first`) to the store in `dir`.
fn append(dir: &Path, first: u64, batches: u64) {
    let store = Arc::new(SledStore::open(dir).unwrap());
    let ledger = open_ledger(store, Limits::default());
    for b in 0..batches {
        let events = (0..6).map(|i| grade(first + b * 6 + i, &format!("learner/{}", i % 4), None)).collect();
        assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
    }
}

fn acked(dir: &Path) -> Acked {
    let store = SledStore::open_read_only(dir).unwrap();
    let size = store.head().unwrap().unwrap().0.tree_size;
    Acked { entries: store.entries(0, size).unwrap(), checkpoints: store.checkpoints(0, 1000).unwrap() }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target: PathBuf = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(snapshot(&e.path()));
        } else {
            out.insert(e.path(), std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// The log's files (not the index, which is derived and which sled itself may touch on open).
fn log_snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    // `index`, and the index's sealed tiers `index.<first>`.
    snapshot(dir)
        .into_iter()
        .filter(|(p, _)| !p.strip_prefix(dir).unwrap().to_string_lossy().starts_with("index"))
        .collect()
}

fn audit_dir(dir: &Path) -> AuditReport {
    let before = snapshot(dir);
    let store = SledStore::open_read_only(dir).unwrap();
    let report = audit(&store, &|_, _| {}).unwrap();
    drop(store);
    assert!(snapshot(dir) == before, "the audit changed a byte of {}", dir.display());
    report
}

/// After whatever a fault did, if the store opens: every acknowledged entry reads back as it was
/// or is refused as damaged (never other bytes), every signed checkpoint is still the one for its
/// size, and the next batch takes a size the ledger never signed.
fn check_nothing_lost_or_forked(dir: &Path, acked: &Acked) -> Result<(), String> {
    let store = Arc::new(SledStore::open(dir).map_err(|e| format!("refused: {e}"))?);
    let size = store.head().unwrap().map(|h| h.0.tree_size).unwrap_or(0);
    let want = acked.entries.len() as u64;
    assert!(size >= want, "opened at tree size {size}, but {want} entries were acknowledged");
    for (seq, bytes) in acked.entries.iter().enumerate() {
        match store.entries(seq as u64, 1) {
            Ok(got) => assert_eq!(&got[0], bytes, "entry {seq} reads back other bytes"),
            Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, seq as u64),
            Err(e) => panic!("entry {seq}: {e}"),
        }
    }
    let now: BTreeMap<u64, Vec<u8>> = store.checkpoints(0, 1000).unwrap().into_iter().collect();
    for (size, note) in &acked.checkpoints {
        if let Some(n) = now.get(size) {
            let ok = n == note || zachetka::checkpoint::verify_checkpoint(n, &verifier_key(), ORIGIN).is_err();
            assert!(ok, "a second valid checkpoint was signed for tree size {size}");
        }
    }
    let ledger = open_ledger(store.clone(), Limits::default());
    let r = ledger.append_blocking(vec![grade(9_000, "learner/9", None)]);
    let receipt = r[0].as_ref().map_err(|e| format!("append refused: {e:?}"))?;
    assert!(receipt.tree_size > want, "a checkpoint for an already signed size: {receipt:?}");
    let (head, _) = ledger.head();
    for (size, note) in &acked.checkpoints {
        let v = zachetka::checkpoint::verify_checkpoint(note, &verifier_key(), ORIGIN).unwrap();
        let proof = ledger.prove_consistency(*size, head.tree_size).unwrap();
        zachetka::merkle::verify_consistency(*size, head.tree_size, v.head.root_hash, head.root_hash, &proof)
            .map_err(|e| format!("the new head is not consistent with the checkpoint at {size}: {e}"))?;
    }
    Ok(())
}

fn verifier_key() -> String {
    zachetka::checkpoint::LedgerSigner::new(ORIGIN, ledger_key()).verifier_key()
}

/// A store of 5 batches (30 entries), closed cleanly, and the same store as a crash leaves it:
/// the last 2 batches committed but not in the index's flushed mark.
fn grounds() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let clean = tempfile::tempdir().unwrap();
    drop(new_store(clean.path()));
    append(clean.path(), 0, 3);
    let older = tempfile::tempdir().unwrap();
    copy_dir(clean.path(), older.path());
    let index_before = tempfile::tempdir().unwrap();
    copy_dir(&StorePaths::of(clean.path()).index, index_before.path());
    append(clean.path(), 100, 2);
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(clean.path(), crashed.path());
    let index = StorePaths::of(crashed.path()).index;
    std::fs::remove_dir_all(&index).unwrap();
    copy_dir(index_before.path(), &index);
    (clean, crashed, older)
}

/// A crash after batches committed but before the index was flushed: the index lags. Opening
/// re-derives it from the entries; a retry gets its receipt; the audit is clean.
#[test]
fn an_index_behind_the_log_is_rebuilt_from_the_entries() {
    let (clean, crashed, _) = grounds();
    let expected = acked(clean.path());
    assert_eq!(audit_dir(crashed.path()).violations, vec![]);
    let store = Arc::new(SledStore::open(crashed.path()).unwrap());
    assert_eq!(store.head().unwrap().unwrap().0.tree_size, 30);
    assert_eq!(store.checkpoints(0, 100).unwrap(), expected.checkpoints);
    for n in [0, 17, 100, 111] {
        let want = SledStore::open_read_only(clean.path()).unwrap().id_record(&id(n)).unwrap();
        assert_eq!(store.id_record(&id(n)).unwrap(), want, "id {n}");
    }
    let ledger = open_ledger(store, Limits::default());
    let retry = ledger.append_blocking(vec![grade(111, "learner/1", None)]);
    assert_eq!(retry[0].as_ref().unwrap().seq, 29, "the retried event keeps its receipt");
    check_log(&ledger);
}

/// Review s11 (ops finding 1): `rebuild` on a store a server has open moved the server's index
/// (and sled's lock inside it) aside, and a second server then opened the same log files: two
/// writers, two signed checkpoints of one size, an acknowledged entry lost. The store's lock is
/// a fixed file taken before anything moves: a rebuild and a second writer are refused, and
/// nothing in the store changes.
#[test]
fn a_store_open_for_writing_refuses_a_rebuild_and_a_second_writer() {
    let (clean, _, _) = grounds();
    let dir = clean.path();
    let serving = SledStore::open(dir).unwrap();
    let (before, log_before) = (snapshot(dir), log_snapshot(dir));
    for (what, attempt) in
        [("rebuild", SledStore::rebuild_index(dir).map(drop)), ("a second writer", SledStore::open(dir).map(drop))]
    {
        match attempt {
            Err(StoreError::InUse(m)) => assert!(m.contains("LOCK"), "{what}: {m}"),
            Err(e) => panic!("{what}: wrong error {e}"),
            Ok(()) => panic!("{what} must be refused while the store is open for writing"),
        }
    }
    let after = snapshot(dir);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "nothing moved aside");
    assert_eq!(log_snapshot(dir), log_before, "the log files are untouched");
    // An audit changes nothing and takes no lock: it runs beside the server.
    assert_eq!(audit_dir(dir).violations, vec![]);
    assert_eq!(serving.head().unwrap().unwrap().0.tree_size, acked(dir).entries.len() as u64);
    drop(serving);
    // Once the writer is gone, the rebuild runs.
    SledStore::rebuild_index(dir).unwrap();
}

/// The first case: one flipped byte in sled's index file must not erase the log. The
/// index is derived data: the audit reads the log and is clean or names the index; opening
/// rebuilds the index and serves every entry.
#[test]
fn a_flipped_byte_in_the_index_loses_nothing() {
    let (clean, _, _) = grounds();
    let expected = acked(clean.path());
    let len = std::fs::metadata(StorePaths::of(clean.path()).index.join("db")).unwrap().len();
    flips_lose_nothing(clean.path(), &expected, [0, len / 3, len / 2, len - 1].map(|at| ("index/db".to_owned(), at)));
}

/// Each flip (a file of the store, a byte) on a copy of `clean`: the audit reads every entry
/// and names none, and nothing acknowledged is lost or forked.
fn flips_lose_nothing(clean: &Path, expected: &Acked, flips: impl IntoIterator<Item = (String, u64)>) {
    for (file, at) in flips {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean, dir.path());
        flip(&dir.path().join(&file), at);
        let report = audit_dir(dir.path());
        assert_eq!(report.tree_size, expected.entries.len() as u64, "{file} flipped at {at}: {report:#?}");
        assert!(report.violations.iter().all(|v| !matches!(v.position, Position::Entry { .. })), "{report:#?}");
        check_nothing_lost_or_forked(dir.path(), expected).unwrap();
    }
}

/// The second case: a damaged checkpoint record with whole ones after it is corruption,
/// not a tear: refused with its position, nothing changed, and no second checkpoint is signed.
#[test]
fn a_damaged_record_before_good_ones_is_refused_not_rolled_back() {
    let (_, crashed, _) = grounds();
    let paths = StorePaths::of(crashed.path());
    let records = super::audit::checkpoint_records(&paths.checkpoints);
    // The first record beyond the index's mark (3 batches flushed, 2 committed after).
    let damaged = records[3];
    flip(&paths.checkpoints, damaged.0 + 20);
    let before = log_snapshot(crashed.path());
    match SledStore::open(crashed.path()) {
        Err(StoreError::Corrupt { what: "checkpoints", position, .. }) => assert_eq!(position, damaged.0),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a store whose committed batches lost their record"),
    }
    assert!(log_snapshot(crashed.path()) == before, "a refused open changed the store");
    let report = audit_dir(crashed.path());
    assert_eq!(report.tree_size, 30, "the audit reads past the damage");
    assert!(report.violations.iter().any(|v| v.position == Position::Checkpoint { tree_size: damaged.2 }));
}

/// The last record damaged in place, with head.dat's copy of it damaged too and an index that
/// lags (three faults, found by the random test below): every witness of the last batch is
/// hurt, but a record written whole that fails its checksum is damage, not a tear, so the open
/// is refused with its position (not rolled back to the batch before), and the audit names it.
#[test]
fn a_damaged_last_record_that_head_dat_cannot_restore_is_refused_not_dropped() {
    let (_, crashed, _) = grounds();
    let paths = StorePaths::of(crashed.path());
    let records = super::audit::checkpoint_records(&paths.checkpoints);
    let last = *records.last().unwrap();
    flip(&paths.checkpoints, last.0 + 20);
    for slot in 0..2 {
        flip(&paths.head, slot * zachetka::store::sled::SLOT_LEN as u64 + 23);
    }
    let before = log_snapshot(crashed.path());
    match SledStore::open(crashed.path()) {
        Err(StoreError::Corrupt { what: "checkpoints", position, .. }) => assert_eq!(position, last.0),
        Err(e) => panic!("wrong error: {e}"),
        Ok(s) => panic!(
            "opened at tree size {:?}: an acknowledged batch dropped as a tear",
            s.head().unwrap().map(|h| h.0.tree_size)
        ),
    }
    assert!(log_snapshot(crashed.path()) == before, "a refused open changed the store");
    assert!(!audit_dir(crashed.path()).is_clean(), "the audit missed the damaged record");
}

/// An audit of a store whose last entry is damaged runs and names it (a server refuses to open).
#[test]
fn the_audit_names_damage_in_the_last_entry() {
    let (clean, _, _) = grounds();
    let paths = StorePaths::of(clean.path());
    let len = std::fs::metadata(&paths.entries).unwrap().len();
    flip(&paths.entries, len - 3);
    assert!(matches!(SledStore::open(clean.path()), Err(StoreError::Corrupt { what: "entry", position: 29, .. })));
    let report = audit_dir(clean.path());
    assert_eq!(report.violations[0].position, Position::Entry { seq: 29 }, "{report:#?}");
}

fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, at).unwrap();
}

#[derive(Debug, Clone, Copy)]
enum FileFault {
    /// Flip a bit of the byte at this fraction of the file (0 = first, 1000 = last).
    Flip(u64),
    /// Cut this many bytes off the end (`u64::MAX`: to empty).
    Cut(u64),
    Delete,
    /// Replace the file with its version from an older state of the store (3 batches).
    Older,
    /// Append 100 bytes of garbage.
    Garbage,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// The audit names a position (a file offset, an entry or a checkpoint); a server may open
    /// and then refuses the damaged reads.
    Detected,
    /// A server refuses to open (naming the file and position), and the audit reports it.
    Refused,
    /// A server opens with every acknowledged entry intact.
    Harmless,
}

fn apply(fault: FileFault, file: &Path, older: &Path) {
    match fault {
        FileFault::Flip(per_mille) => {
            let len = std::fs::metadata(file).unwrap().len();
            flip(file, ((len - 1) * per_mille / 1000).min(len - 1));
        }
        FileFault::Cut(n) => {
            let len = std::fs::metadata(file).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(len.saturating_sub(n)).unwrap();
        }
        FileFault::Delete => std::fs::remove_file(file).unwrap(),
        FileFault::Older => {
            std::fs::copy(older, file).unwrap();
        }
        FileFault::Garbage => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
            f.write_all(&[0xA5; 100]).unwrap();
        }
    }
}

/// Every fault of [`FileFault`] in every file of the store, and what becomes of it.
const FAULT_ROWS: &[(&str, FileFault, Outcome)] = {
    use FileFault::*;
    use Outcome::*;
    &[
        ("ledger.json", Flip(500), Refused),
        ("ledger.json", Cut(1), Refused),
        ("ledger.json", Delete, Refused),
        ("entries.dat", Flip(0), Detected),
        ("entries.dat", Flip(500), Detected),
        ("entries.dat", Flip(1000), Refused),
        ("entries.dat", Cut(1), Refused),
        ("entries.dat", Delete, Refused),
        ("entries.dat", Older, Refused),
        ("entries.dat", Garbage, Harmless),
        ("offsets.dat", Flip(0), Detected),
        ("offsets.dat", Flip(1000), Refused),
        ("offsets.dat", Cut(1), Refused),
        ("offsets.dat", Delete, Refused),
        ("offsets.dat", Older, Refused),
        ("offsets.dat", Garbage, Harmless),
        ("hashes.dat", Flip(0), Detected),
        ("hashes.dat", Flip(1000), Refused),
        ("hashes.dat", Cut(32), Refused),
        ("hashes.dat", Delete, Refused),
        ("hashes.dat", Older, Refused),
        ("hashes.dat", Garbage, Harmless),
        ("checkpoints.dat", Flip(0), Detected),
        ("checkpoints.dat", Flip(500), Detected),
        // The last record: head.dat holds it whole, and it is written back.
        ("checkpoints.dat", Flip(1000), Harmless),
        ("checkpoints.dat", Cut(1), Harmless),
        ("checkpoints.dat", Cut(1000), Refused),
        ("checkpoints.dat", Cut(u64::MAX), Refused),
        ("checkpoints.dat", Delete, Refused),
        ("checkpoints.dat", Older, Refused),
        ("checkpoints.dat", Garbage, Harmless),
        ("head.dat", Flip(0), Harmless),
        ("head.dat", Flip(1000), Harmless),
        ("head.dat", Cut(u64::MAX), Harmless),
        ("head.dat", Delete, Harmless),
        ("head.dat", Older, Harmless),
        ("head.dat", Garbage, Harmless),
        ("index/db", Flip(0), Harmless),
        ("index/db", Flip(500), Harmless),
        ("index/db", Flip(1000), Harmless),
        ("index/db", Cut(1000), Harmless),
        ("index/db", Delete, Harmless),
        ("index/db", Older, Harmless),
        ("index/db", Garbage, Harmless),
    ]
};

/// The fault table: every store file, every kind of fault, on a cleanly closed store and on one a
/// crash left (index behind the log). Each row states its outcome.
#[test]
fn every_fault_in_every_store_file_is_refused_reported_or_harmless() {
    use Outcome::*;
    let rows = FAULT_ROWS;
    let (clean, crashed, older) = grounds();
    let expected = acked(clean.path());
    for (state, ground) in [("clean", clean.path()), ("crashed", crashed.path())] {
        for &(file, fault, outcome) in rows {
            let row = format!("{state}: {file} {fault:?}");
            let dir = tempfile::tempdir().unwrap();
            copy_dir(ground, dir.path());
            apply(fault, &dir.path().join(file), &older.path().join(file));
            let report = audit_dir(dir.path());
            let before = log_snapshot(dir.path());
            let opened = check_nothing_lost_or_forked(dir.path(), &expected);
            match outcome {
                Detected => {
                    assert!(!report.is_clean(), "{row}: the audit missed it");
                    if let Err(e) = &opened {
                        assert!(e.starts_with("refused"), "{row}: {e}");
                    }
                }
                Refused => {
                    assert!(!report.is_clean(), "{row}: the audit missed it");
                    let e = opened.expect_err(&format!("{row}: opened"));
                    assert!(e.starts_with("refused"), "{row}: {e}");
                    assert!(log_snapshot(dir.path()) == before, "{row}: a refused open changed the store");
                }
                Harmless => {
                    opened.unwrap_or_else(|e| panic!("{row}: {e}"));
                    let after = audit_dir(dir.path());
                    assert!(after.is_clean(), "{row}: after opening: {:#?}", after.violations);
                }
            }
        }
    }
}

/// Damage only the index's catch-up meets (a crash left the index behind the log, and an entry
/// beyond its mark is damaged, not the head's last one): refused by a full open, and, when the
/// store is opened early (its index opening on its own thread while the ledger loads its
/// snapshots, as the command line does), by the ledger's open, which waits for the index. Every
/// later use of the index fails the same way, and no byte of the log changes.
#[test]
fn damage_the_index_catch_up_meets_is_refused_also_when_the_store_is_opened_early() {
    let (_, crashed, _) = grounds();
    let dir = crashed.path();
    let paths = StorePaths::of(dir);
    let offsets = std::fs::read(&paths.offsets).unwrap();
    let at = u64::from_be_bytes(offsets[20 * 8..21 * 8].try_into().unwrap());
    flip(&paths.entries, at + 40);
    let before = log_snapshot(dir);
    let full = SledStore::open(dir).map(drop).expect_err("a full open refuses it");
    assert!(matches!(full, StoreError::Corrupt { what: "entry", position: 20, .. }), "{full}");
    assert!(log_snapshot(dir) == before, "a refused open changed the log");
    let store = Arc::new(SledStore::open_early(dir).expect("the log's files are whole up to the head"));
    assert_eq!(store.head().unwrap().unwrap().0.tree_size, 30, "the head is served from the files");
    let e = zachetka::ledger::Ledger::open(store.clone(), ledger_key(), test_clock(), Limits::default())
        .err()
        .expect("the ledger's open waits for the index and refuses it");
    assert!(zachetka::store::error_chain(&e).contains(&full.to_string()), "{e}");
    assert_eq!(store.id_record(&id(0)).unwrap_err().to_string(), full.to_string());
    assert_eq!(store.ready().unwrap_err().to_string(), full.to_string());
    drop(store);
    assert!(log_snapshot(dir) == before, "a refused open changed the log");
}

/// Random byte faults in a stopped store: either the audit names a position, or the store opens
/// with every acknowledged entry intact (and never signs a second checkpoint for a size).
#[test]
fn random_byte_faults_are_reported_or_lose_nothing() {
    let (seed, mut rng) = seeded("random_byte_faults_are_reported_or_lose_nothing");
    let (clean, crashed, _) = grounds();
    let expected = acked(clean.path());
    let files = ["entries.dat", "offsets.dat", "hashes.dat", "checkpoints.dat", "head.dat", "ledger.json", "index/db"];
    for round in 0..48 {
        let ground = if round % 2 == 0 { clean.path() } else { crashed.path() };
        let dir = tempfile::tempdir().unwrap();
        copy_dir(ground, dir.path());
        let mut what = Vec::new();
        for _ in 0..1 + rng(3) {
            let file = dir.path().join(files[rng(files.len() as u64) as usize]);
            let len = std::fs::metadata(&file).unwrap().len();
            if len == 0 {
                continue;
            }
            let at = rng(len);
            let byte = rng(256) as u8;
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            f.write_all_at(&[byte], at).unwrap();
            what.push(format!("{}@{at}={byte:#x}", file.display()));
        }
        let report = audit_dir(dir.path());
        let opened = check_nothing_lost_or_forked(dir.path(), &expected);
        assert!(
            !report.is_clean() || opened.is_ok(),
            "seed {seed} round {round} ({what:?}): the audit is clean, yet {}",
            opened.unwrap_err()
        );
    }
}

/// The `audit` command through the real binary: reads only (no byte of the ledger directory
/// changes, index included), exits 0 clean, 1 with violations named in text and JSON (also for
/// damage in the last entry, where a server refuses to open), and a reader that goes away
/// (`zachetka audit | head`) ends it quietly, not with a panic.
#[test]
fn the_audit_command_reads_only_and_reports_damage_anywhere() {
    let (clean, _, _) = grounds();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    copy_dir(clean.path(), &dir.path().join("store"));
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .arg("audit")
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let before = snapshot(dir.path());
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("audited 30 entries"), "{text}");
    // It says what derived state it compared (no snapshots here, no server asked).
    assert!(text.contains("compared with the log: 0 snapshot sections in 0 snapshots\n"), "{text}");
    assert!(snapshot(dir.path()) == before, "the audit changed the ledger directory");

    let entries = StorePaths::of(&dir.path().join("store")).entries;
    let len = std::fs::metadata(&entries).unwrap().len();
    flip(&entries, len - 3);
    let before = snapshot(dir.path());
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["violations"][0]["position"], serde_json::json!({"kind": "entry", "seq": 29}), "{report:#}");
    assert!(snapshot(dir.path()) == before, "the audit changed the ledger directory");

    // Many violations, and a reader that closes the pipe at once.
    flip(&entries, 10);
    flip(&entries, 400);
    // In text: each cause once, what depends on it counted under it, not as violations.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("entry 0: leaf_hash_mismatch: "), "{text}");
    assert!(text.contains("\n  consequence: ") && text.contains(" x checkpoint_root_mismatch: "), "{text}");
    assert!(text.contains("mismatches as their consequences"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("checkpoint at tree size")), "{text}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .arg("audit")
        .arg("--dir")
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "a quiet exit: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `zachetka rebuild`: the index rebuilt from the log alone answers as the old one did, and the
/// old one is gone.
#[test]
fn rebuilding_the_index_from_the_log_answers_the_same() {
    let (clean, _, _) = grounds();
    let view = |store: &SledStore| {
        let ids: Vec<_> = [0, 5, 100, 111].iter().map(|n| store.id_record(&id(*n)).unwrap()).collect();
        let streams: Vec<_> = (0..4).map(|s| store.stream_seqs(&format!("learner/{s}"), 0, 100).unwrap()).collect();
        format!("{ids:?} {streams:?} {:?}", store.checkpoints(0, 100).unwrap())
    };
    let before = view(&SledStore::open(clean.path()).unwrap());
    let rebuilt = SledStore::rebuild_index(clean.path()).unwrap();
    assert_eq!(view(&rebuilt), before);
    drop(rebuilt);
    let dirs: Vec<_> = std::fs::read_dir(clean.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!dirs.iter().any(|d| d.to_string_lossy().starts_with("index.")), "{dirs:?}");
    assert!(audit_dir(clean.path()).is_clean());
}

/// Review s11 (ops finding 3): `audit` panicked (exit 101) on a damaged sled index and left its
/// copy of the index (event ids, streams: learners' ids) in `$TMPDIR`, world-readable. Now an
/// index sled cannot read is a finding naming the index and the audit still checks every entry
/// from a fresh private index; its copy lives in a 0700 directory, removed on every path: a
/// clean audit, a damaged one, and one that cannot run at all.
#[test]
fn an_audit_over_a_damaged_index_reports_it_and_leaves_no_copy_behind() {
    let (clean, _, _) = grounds();
    let ground = tempfile::tempdir().unwrap();
    std::fs::write(ground.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    copy_dir(clean.path(), &ground.path().join("store"));
    let run = |dir: &Path, tmp: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["audit", "--json", "--dir"])
            .arg(dir)
            .env("TMPDIR", tmp)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let db_len = std::fs::metadata(StorePaths::of(&ground.path().join("store")).index.join("db")).unwrap().len();
    // (what is damaged, how, whether the index must be named as unreadable)
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(String, Damage, bool)> = [0, db_len / 7, db_len / 2, db_len - 2]
        .into_iter()
        .map(|at| (format!("db flipped at {at}"), Box::new(move |i: &Path| flip(&i.join("db"), at)) as Damage, false))
        .chain([
            (
                "conf garbage".to_owned(),
                Box::new(|i: &Path| std::fs::write(i.join("conf"), [0xA5u8; 62]).unwrap()) as Damage,
                true,
            ),
            (
                "db replaced by garbage".to_owned(),
                Box::new(|i: &Path| std::fs::write(i.join("db"), vec![0x5Au8; 1 << 16]).unwrap()) as Damage,
                false,
            ),
        ])
        .collect();
    for (what, damage, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(ground.path(), dir.path());
        damage(&StorePaths::of(&dir.path().join("store")).index);
        let tmp = tempfile::tempdir().unwrap();
        let out = run(dir.path(), tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{what}: {:?} {stderr}", out.status);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["tree_size"], 30, "{what}: every entry is audited: {report:#}");
        let violations = report["violations"].as_array().unwrap();
        let index_named = violations.iter().any(|v| {
            v["code"] == "index_unreadable"
                && v["position"] == serde_json::json!({"kind": "file", "file": "index", "offset": 0})
        });
        if named {
            assert!(index_named, "{what}: {report:#}");
        }
        // Whatever the index, the log is intact: nothing else is reported.
        assert!(violations.iter().all(|v| v["code"] == "index_unreadable"), "{what}: {report:#}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{what}: the audit left {left:?} in TMPDIR");
    }

    // An audit that cannot run (a store file it cannot read) exits 2 and still removes its copy.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(ground.path(), dir.path());
    let checkpoints = StorePaths::of(&dir.path().join("store")).checkpoints;
    std::fs::remove_file(&checkpoints).unwrap();
    std::fs::create_dir(&checkpoints).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = run(dir.path(), tmp.path());
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("checkpoints.dat"), "{said}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a failed audit left {left:?} in TMPDIR");

    // While a read-only store is open, its copy is private (0700).
    use std::os::unix::fs::PermissionsExt;
    let store = SledStore::open_read_only(&ground.path().join("store")).unwrap();
    let mine = format!("zachetka-audit-{}-", std::process::id());
    let copies: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&mine))
        .collect();
    assert!(!copies.is_empty(), "no copy of the index found in {}", std::env::temp_dir().display());
    for c in copies {
        // Another test's copy may be removed meanwhile.
        if let Ok(m) = c.metadata() {
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{}", c.path().display());
        }
    }
    drop(store);
}

/// Review s11 (ops finding 7): a flipped byte in either `head.dat` slot (the second copy of the
/// commit point) was invisible: the audit was clean and a server said nothing. Now the audit
/// names the file and the slot's offset; a server opens, logs it and shows it in `/v1/status`;
/// and the next commit rewrites the slot, after which both are clean.
#[test]
fn a_damaged_head_dat_slot_is_reported_and_rewritten_by_the_next_commit() {
    let (clean, _, _) = grounds();
    let slot_len = zachetka::store::sled::SLOT_LEN as u64;
    for slot in 0..2u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        let head = StorePaths::of(dir.path()).head;
        flip(&head, slot * slot_len + 100);
        let report = audit_dir(dir.path());
        let want = Position::File { file: "head.dat".into(), offset: slot * slot_len };
        assert!(
            report.violations.iter().any(|v| v.position == want && v.code == "head_slot_damaged"),
            "slot {slot}: {report:#?}"
        );
        assert_eq!(report.tree_size, 30, "slot {slot}");

        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let findings = store.findings();
        assert_eq!(findings.len(), 1, "slot {slot}: {findings:?}");
        assert_eq!((findings[0].file.as_str(), findings[0].offset), ("head.dat", slot * slot_len));
        let ledger = open_ledger(store.clone(), Limits::default());
        {
            let srv = super::http::serve(ledger.clone());
            let (s, status) = super::http::get_json(&srv.base, "/v1/status");
            assert_eq!(s, 200);
            let warnings = status["warnings"].as_array().unwrap();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.as_str().unwrap().contains(&format!("head.dat at offset {}", slot * slot_len))),
                "slot {slot}: {status:#}"
            );
            // One commit writes the damaged slot (the other holds the head it went on from).
            assert!(ledger.append_blocking(vec![grade(500 + slot, "learner/9", None)]).iter().all(Result::is_ok));
            let (_, status) = super::http::get_json(&srv.base, "/v1/status");
            assert_eq!(status["warnings"], serde_json::json!([]), "slot {slot}: {status:#}");
        }
        drop(ledger);
        drop(store);
        assert!(audit_dir(dir.path()).is_clean(), "slot {slot}: the commit rewrote the slot");
    }
}

/// A log file cut below the head (a partial copy, a full disk) is refused by a server with its
/// file and position, as before; the audit named the cut but then audited nothing (0 entries)
/// and called a snapshot "beyond the log". Now it checks the part of the log the files hold
/// whole, up to the newest checkpoint they cover: a fault below the cut is still found there.
#[test]
fn an_audit_over_a_cut_log_file_checks_the_part_before_the_cut() {
    let (clean, _, _) = grounds();
    let spans: Vec<(u64, u64)> = {
        let store = SledStore::open_read_only(clean.path()).unwrap();
        (0..30).map(|seq| store.entry_span(seq).unwrap()).collect()
    };
    let paths = StorePaths::of(clean.path());
    let records: Vec<u64> = super::audit::checkpoint_records(&paths.checkpoints).iter().map(|r| r.2).collect();
    // Cut inside entry 20: the newest checkpoint whose entries stand whole is the one at or
    // below 20 (counted from checkpoints.dat here, not by the store).
    let cut_at = spans[20].0 + spans[20].1 / 2;
    let readable = records.iter().copied().filter(|&size| size <= 20).max().unwrap();
    assert!(readable > 6, "{records:?}");
    for flip_below in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        let paths = StorePaths::of(dir.path());
        if flip_below {
            flip(&paths.entries, spans[3].0 + spans[3].1 / 2);
        }
        std::fs::OpenOptions::new().write(true).open(&paths.entries).unwrap().set_len(cut_at).unwrap();
        let report = audit_dir(dir.path());
        assert_eq!(report.tree_size, readable);
        let cut = Position::File { file: "entries.dat".into(), offset: cut_at };
        let at_3 = Position::Entry { seq: 3 };
        let codes: Vec<_> = report.violations.iter().map(|v| (&v.position, v.code)).collect();
        // The cut, and (only when flipped) the entry below it; nothing else.
        assert_eq!(codes.iter().filter(|c| c.0 != &at_3).collect::<Vec<_>>(), vec![&(&cut, "store_damaged")]);
        assert_eq!(codes.contains(&(&at_3, "leaf_hash_mismatch")), flip_below, "{report:#?}");
        let message = &report.violations[0].message;
        assert!(message.contains(&format!("up to tree size {readable}")), "{message}");
        match SledStore::open(dir.path()) {
            Err(StoreError::Corrupt { what: "entries.dat", position, .. }) => assert_eq!(position, cut_at),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a server opened over a cut entries.dat"),
        }
    }
}

/// A damaged `ledger.json` is one finding, named by its file: the audit no longer adds
/// "not_initialized", which was only its consequence.
#[test]
fn a_damaged_ledger_config_is_one_finding() {
    let (clean, _, _) = grounds();
    let config = clean.path().join("ledger.json");
    let len = std::fs::metadata(&config).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&config).unwrap().set_len(len / 2).unwrap();
    let report = audit_dir(clean.path());
    let found: Vec<_> = report.violations.iter().map(|v| (&v.position, v.code)).collect();
    assert_eq!(found, vec![(&Position::File { file: "ledger.json".into(), offset: 0 }, "config_damaged")]);
}

/// A `head.dat` cut to one slot, or with a slot zeroed, lost the second copy of the commit point
/// as surely as a flipped byte, and the audit called it clean (both slots are written once the
/// log has more than one commit). Now it is the same finding, and the next commit rewrites it.
#[test]
fn a_head_dat_slot_cut_or_zeroed_is_reported_and_rewritten_by_the_next_commit() {
    let (clean, _, _) = grounds();
    let slot_len = zachetka::store::sled::SLOT_LEN as u64;
    // Slot 1 goes with the cut; slot 0 is zeroed in place.
    let damage = |head: &Path, slot: u64| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(head).unwrap();
        match slot {
            1 => f.set_len(slot_len).unwrap(),
            _ => f.write_all_at(&vec![0u8; slot_len as usize], 0).unwrap(),
        }
    };
    for (what, slot) in [("cut to one slot", 1), ("slot 0 zeroed", 0)] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        damage(&StorePaths::of(dir.path()).head, slot);
        let report = audit_dir(dir.path());
        let want = Position::File { file: "head.dat".into(), offset: slot * slot_len };
        assert!(
            report.violations.iter().any(|v| v.position == want && v.code == "head_slot_damaged"),
            "{what}: {report:#?}"
        );
        assert_eq!(report.tree_size, 30, "{what}");
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let findings = store.findings();
        assert_eq!(findings.len(), 1, "{what}: {findings:?}");
        let ledger = open_ledger(store.clone(), Limits::default());
        assert!(ledger.append_blocking(vec![grade(600 + slot, "learner/9", None)]).iter().all(Result::is_ok));
        assert!(store.findings().is_empty(), "{what}: the commit rewrote the slot: {:?}", store.findings());
        drop(ledger);
        drop(store);
        assert!(audit_dir(dir.path()).is_clean(), "{what}: the commit rewrote the slot");
    }
}

/// Review s11 (ops finding 6): a server opened silently over a damaged record in the middle of
/// `checkpoints.dat` (below the index's mark, so not scanned), as README says it refuses. Every
/// record's frame is now checked at open: refused with the file and the record's offset.
#[test]
fn a_damaged_record_the_index_has_seen_is_refused_at_open() {
    let (clean, _, _) = grounds();
    let paths = StorePaths::of(clean.path());
    let records = super::audit::checkpoint_records(&paths.checkpoints);
    // The second of five records: all five are below the mark of a cleanly closed store.
    let damaged = records[1];
    flip(&paths.checkpoints, damaged.0 + 20);
    let before = log_snapshot(clean.path());
    match SledStore::open(clean.path()) {
        Err(e @ StoreError::Corrupt { what: "checkpoints", position, .. }) => {
            assert_eq!(position, damaged.0);
            assert!(e.to_string().contains(&format!("checkpoints.dat at offset {}", damaged.0)), "{e}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened over a damaged checkpoint record"),
    }
    assert!(log_snapshot(clean.path()) == before, "a refused open changed the store");
}

/// Review s11 (ops finding 6): damage met on read (entries are checked as they are read, not at
/// open) was seen only by the client that got the 500. Every `store_corrupt` answer is counted
/// in `/metrics`, and `/v1/status` shows the latest, with the entry it is about.
#[test]
fn store_corrupt_answers_are_counted_and_the_latest_shown() {
    let (clean, _, _) = grounds();
    let paths = StorePaths::of(clean.path());
    let (offset, _) = SledStore::open_read_only(clean.path()).unwrap().entry_span(10).unwrap();
    flip(&paths.entries, offset + 5);
    let store = Arc::new(SledStore::open(clean.path()).unwrap());
    let ledger = open_ledger(store, Limits::default());
    let srv = super::http::serve(ledger);
    let metric = |srv: &super::http::Server| {
        let (_, text) = super::http::get_text(&srv.base, "/metrics");
        let line =
            text.lines().find(|l| l.starts_with("zachetka_store_corrupt_total ")).unwrap_or_else(|| panic!("{text}"));
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(metric(&srv), 0);
    let (_, status) = super::http::get_json(&srv.base, "/v1/status");
    assert_eq!(status["warnings"], serde_json::json!([]), "{status:#}");
    for _ in 0..2 {
        let (s, body) = super::http::get_json(&srv.base, "/v1/entries?from=8&limit=5");
        assert_eq!((s, body["code"].as_str()), (500, Some("store_corrupt")), "{body}");
    }
    assert_eq!(metric(&srv), 2);
    // A feed that meets the damage ends with a store_corrupt line, counted as a refused read is.
    let feed = ureq::get(&format!("{}/v1/feed?from=8", srv.base)).set("authorization", &auditor_bearer()).call();
    let lines: Vec<serde_json::Value> = std::io::BufRead::lines(std::io::BufReader::new(feed.unwrap().into_reader()))
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap()["code"], "store_corrupt", "{lines:?}");
    assert_eq!(metric(&srv), 3);
    let (_, status) = super::http::get_json(&srv.base, "/v1/status");
    assert_eq!(status["store_corrupt_answers"], 3, "{status:#}");
    let warnings = status["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("store_corrupt") && w.contains("/v1/feed") && w.contains("entry") && w.contains("10")
        }),
        "{status:#}"
    );
}

/// Review s11 (ops finding 3), the reviewer's case: sled panics ("tried to serialize
/// Uninitialized") on a flipped byte in the middle of the index of a store with several sled
/// segments, and the audit died with exit 101. A small demo (5,000 events, ~6 MB of index) has
/// them; flips in its middle made the audit of the earlier build exit 101. Now every flip gives
/// exit 0 or 1, every entry audited, no copy left in `$TMPDIR`, and sled's panic is the finding
/// `index_unreadable`.
#[test]
fn an_audit_over_an_index_sled_panics_on_exits_with_a_finding() {
    let ground = tempfile::tempdir().unwrap();
    let demo = ground.path().join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["demo", "--no-serve", "--learners", "100", "--teachers", "10", "--events", "5000", "--dir"])
        .arg(&demo)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let size = SledStore::open_read_only(&demo.join("store")).unwrap().head().unwrap().unwrap().0.tree_size;
    let len = std::fs::metadata(StorePaths::of(&demo.join("store")).index.join("db")).unwrap().len();
    let mut unreadable = 0;
    for at in [len / 2, len / 2 + 72, len * 3 / 4, len / 4] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&demo, dir.path());
        flip(&StorePaths::of(&dir.path().join("store")).index.join("db"), at);
        let tmp = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["audit", "--json", "--dir"])
            .arg(dir.path())
            .env("TMPDIR", tmp.path())
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(0 | 1)), "flip at {at}: {:?} {stderr}", out.status);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["tree_size"], size, "flip at {at}: every entry is audited");
        let violations = report["violations"].as_array().unwrap();
        assert!(violations.iter().all(|v| v["code"] == "index_unreadable"), "flip at {at}: {report:#}");
        unreadable += violations.len();
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "flip at {at}: the audit left {left:?} in TMPDIR");
    }
    assert!(unreadable > 0, "no flip made sled fail: the case this test is for did not happen");
}

/// The index in tiers (src/store/tiers.rs) answers every lookup as one index does: across its
/// tiers, reopened (the filters read from their files), with a sealed tier lost and a filter
/// damaged (both rebuilt from the log), in the audit's copy, and after a rebuild into one tier.
/// A tier that starts beyond the log is refused, and nothing changes.
/// A store of 12 batches of 4 grades whose index was sealed into a tier every 10 entries or so:
/// learner/0 only in the first batch, learner/1 in every other one, a new stream in the rest.
fn tiered_ground(path: &Path) {
    {
        drop(new_store(path));
        let store = Arc::new(SledStore::open_early_with(path, 10).unwrap());
        store.ready().unwrap();
        let ledger = open_ledger(store.clone(), Limits::default());
        for b in 0..12u64 {
            let stream = match b {
                0 => "learner/0".to_owned(),
                b if b % 2 == 1 => "learner/1".to_owned(),
                b => format!("learner/{}", 100 + b),
            };
            let events = (0..4).map(|i| grade(b * 4 + i, &stream, None)).collect();
            assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
        }
        drop(ledger);
        store.wait_for_index_tiers();
        let tiers = store.index_tiers().unwrap();
        assert!(tiers.len() >= 4, "sealed every 10 entries or so: {tiers:?}");
        assert!(tiers.iter().all(|t| t.end.is_none_or(|end| end - t.first >= 10 && t.filtered)), "{tiers:?}");
    }
}

#[test]
fn index_tiers_answer_as_one_index_and_are_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    tiered_ground(path);
    let view = |store: &SledStore| {
        let ids: Vec<_> = (0..50).map(|n| store.id_record(&id(n)).unwrap()).collect();
        let streams = ["learner/0", "learner/1", "learner/102", "learner/110", "learner/none"];
        let heads: Vec<_> = streams.iter().map(|s| store.stream_head(s).unwrap()).collect();
        let seqs: Vec<_> = streams.iter().map(|s| store.stream_seqs(s, 0, 100).unwrap()).collect();
        let some: Vec<_> = streams.iter().map(|s| store.stream_seqs(s, 2, 5).unwrap()).collect();
        let at: Vec<_> = (0..50).map(|n| store.checkpoint_at(n).unwrap()).collect();
        (ids, heads, seqs, some, store.checkpoints(0, 100).unwrap(), store.checkpoints(17, 3).unwrap(), at)
    };
    // The reference: the same log indexed in one tier.
    let one = tempfile::tempdir().unwrap();
    copy_dir(path, one.path());
    let reference = view(&SledStore::rebuild_index(one.path()).unwrap());
    assert!(reference.0[..48].iter().enumerate().all(|(n, r)| r.as_ref().is_some_and(|r| r.seq == n as u64)));
    assert!(reference.0[48..].iter().all(Option::is_none));
    assert_eq!(reference.2[1].len(), 24, "learner/1 is in every tier");
    {
        // An index of one tier fuller than the tier size (the earlier layout, a rebuild) is
        // sealed whole at the open.
        let store = SledStore::open_early_with(one.path(), 40).unwrap();
        store.ready().unwrap();
        let tiers = store.index_tiers().unwrap();
        assert_eq!(tiers.iter().map(|t| (t.first, t.end)).collect::<Vec<_>>(), [(0, Some(48)), (48, None)]);
        assert_eq!(view(&store), reference, "sealed at the open");
    }
    {
        // An index lost: the catch-up from the log seals tiers as it goes.
        let lost = tempfile::tempdir().unwrap();
        copy_dir(path, lost.path());
        for e in std::fs::read_dir(lost.path()).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with("index") {
                std::fs::remove_dir_all(e.path()).unwrap();
            }
        }
        let store = SledStore::open_early_with(lost.path(), 10).unwrap();
        store.ready().unwrap();
        let tiers = store.index_tiers().unwrap();
        assert!(tiers.len() >= 4, "{tiers:?}");
        assert!(tiers.iter().all(|t| t.end.is_none_or(|end| end - t.first >= 10)), "{tiers:?}");
        assert_eq!(view(&store), reference, "sealed while catching up");
    }
    {
        // A build before tiers opened the store: it knows `index/` alone, and caught it up to the
        // head. The first tier then holds more than its range, which the lookups keep to.
        let older = tempfile::tempdir().unwrap();
        copy_dir(path, older.path());
        let aside = tempfile::tempdir().unwrap();
        let tiers: Vec<_> = std::fs::read_dir(older.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with("index."))
            .collect();
        for n in &tiers {
            std::fs::rename(older.path().join(n), aside.path().join(n)).unwrap();
        }
        let store = SledStore::open_early_with(older.path(), u64::MAX).unwrap();
        store.ready().unwrap();
        assert_eq!(store.index_tiers().unwrap().len(), 1);
        drop(store);
        for n in &tiers {
            std::fs::rename(aside.path().join(n), older.path().join(n)).unwrap();
        }
        assert_eq!(view(&SledStore::open(older.path()).unwrap()), reference, "a tier caught up past its end");
    }
    assert_eq!(view(&SledStore::open(path).unwrap()), reference, "reopened, the filters read from their files");
    {
        let store = SledStore::open(path).unwrap();
        let tiers = store.index_tiers().unwrap();
        assert!(tiers.iter().all(|t| t.end.is_none() || t.filtered), "filters read at the open: {tiers:?}");
    }
    // A sealed tier lost and the first tier's filter damaged: the tier before the lost one is
    // brought up to its new end from the log, and the filter built again.
    let tiers = SledStore::open(path).unwrap().index_tiers().unwrap();
    let lost = &tiers[2];
    std::fs::remove_dir_all(path.join(format!("index.{}", lost.first))).unwrap();
    let filter = path.join("index/zachetka-filter");
    let mut bytes = std::fs::read(&filter).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&filter, bytes).unwrap();
    {
        let store = SledStore::open(path).unwrap();
        assert_eq!(view(&store), reference, "a tier lost, a filter damaged");
        store.wait_for_index_tiers();
        let now = store.index_tiers().unwrap();
        assert_eq!(now.len(), tiers.len() - 1);
        assert!(now[0].filtered, "the damaged filter is built again: {now:?}");
        assert_eq!(now[1].end, lost.end, "the tier before the lost one now ends where it ended");
    }
    // The audit's private copy of every tier.
    assert_eq!(view(&SledStore::open_read_only(path).unwrap()), reference, "the audit's copy");
    assert_eq!(audit_dir(path).violations, vec![]);
    // A tier that starts beyond the log: the log lost entries the index saw. Refused as is.
    std::fs::create_dir(path.join("index.1000")).unwrap();
    let before = log_snapshot(path);
    match SledStore::open(path) {
        Err(StoreError::Corrupt { what, position, detail }) => {
            assert_eq!((what, position), ("checkpoints", 48));
            assert!(detail.contains("index.1000"), "{detail}");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("an index tier beyond the log must be refused"),
    }
    assert!(log_snapshot(path) == before, "the refusal changed the log");
    std::fs::remove_dir_all(path.join("index.1000")).unwrap();
    // A rebuild makes one tier again, and sets the others aside until it is done.
    assert_eq!(view(&SledStore::rebuild_index(path).unwrap()), reference, "rebuilt");
    let dirs: Vec<_> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!dirs.iter().any(|d| d.to_string_lossy().starts_with("index.")), "{dirs:?}");
}

/// A flipped byte in a sealed tier of the index, or in its filter, loses no entry and forks no
/// checkpoint (as in the single index, `a_flipped_byte_in_the_index_loses_nothing`).
#[test]
fn a_flipped_byte_in_a_sealed_index_tier_loses_nothing() {
    let clean = tempfile::tempdir().unwrap();
    tiered_ground(clean.path());
    let expected = acked(clean.path());
    let tiers = SledStore::open(clean.path()).unwrap().index_tiers().unwrap();
    let sealed = format!("index.{}", tiers[1].first);
    let db_len = std::fs::metadata(clean.path().join(&sealed).join("db")).unwrap().len();
    let cases = [0, db_len / 3, db_len / 2, db_len - 1].map(|at| (format!("{sealed}/db"), at));
    flips_lose_nothing(clean.path(), &expected, cases.into_iter().chain([("index/zachetka-filter".to_owned(), 40)]));
}

/// A sealed tier that must be brought up from the log (the tier after it lost) over an entry
/// that no longer parses cannot be used: the lookups that need it fail with the entry's
/// position, `/v1/status`'s findings name the tier, and the lookups it is not needed for answer.
#[test]
fn a_sealed_tier_that_cannot_be_brought_up_is_named_and_fails_only_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    tiered_ground(path);
    let tiers = SledStore::open(path).unwrap().index_tiers().unwrap();
    // The tier after the first is lost: the first must reach over its range, where an entry is
    // damaged (a byte of its JSON, with its stored leaf hash left as it was).
    let (lost, damaged) = (tiers[1].first, tiers[1].first + 1);
    std::fs::remove_dir_all(path.join(format!("index.{lost}"))).unwrap();
    let store = SledStore::open(path).unwrap();
    let (at, _) = store.entry_span(damaged).unwrap();
    drop(store);
    flip(&StorePaths::of(path).entries, at + 2);
    let store = SledStore::open(path).unwrap();
    match store.id_record(&id(0)) {
        Err(StoreError::Corrupt { what, position, .. }) => assert_eq!((what, position), ("entry", damaged)),
        other => panic!("a lookup in the tier must fail with the damaged entry: {other:?}"),
    }
    let finding = store.findings().into_iter().find(|f| f.code == "index_tier_unusable").expect("a finding");
    assert_eq!(finding.file, "index");
    assert!(finding.message.contains("zachetka rebuild"), "{}", finding.message);
    // An id in a later tier is answered (the filters of the later tiers are read first).
    assert_eq!(store.id_record(&id(47)).unwrap().map(|r| r.seq), Some(47));
}
