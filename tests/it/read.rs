//! The read side: read models followed incrementally, rebuilt from zero, and loaded from
//! snapshots plus the tail all reach the same digests, at random batch sizes and restart points;
//! a damaged, foreign or forged snapshot is refused or named by the audit, never trusted.

use super::support::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use zachetka::audit::{audit_with, DerivedSources};
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::ledger::{Ledger, Limits, OpenOptions};
use zachetka::read::{rebuild_from_zero, SnapshotOptions, SnapshotPolicy};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;
use zachetka_projections::model;

fn snapshot_options(dir: &Path, every_entries: u64) -> SnapshotOptions {
    let policy = SnapshotPolicy { every_entries, every_seconds: u64::MAX, keep: 3 };
    SnapshotOptions::in_ledger_dir(dir, policy)
}

/// A store in `dir/store` holding the demo's ledger config (created on first use).
fn demo_store(dir: &Path, authority: &str) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
    if store.config().unwrap().is_none() {
        zachetka::ledger::init_store(
            &*store,
            ORIGIN,
            &ledger_key(),
            authority,
            Some(zachetka::rules::default_region()),
        )
        .unwrap();
    }
    store
}

fn open(dir: &Path, authority: &str, snapshots: Option<SnapshotOptions>) -> Ledger {
    let clock = Arc::new(zachetka::time::FixedClock::at(1_795_000_000));
    let options = OpenOptions { limits: Limits::default(), snapshots, ..Default::default() };
    Ledger::open_opts(demo_store(dir, authority), ledger_key(), clock, options).unwrap()
}

/// Digests of the models the ledger serves, once they have applied the whole log.
fn served(ledger: &Ledger) -> BTreeMap<String, String> {
    let size = ledger.head().0.tree_size;
    ledger.read_side().wait_applied_blocking(size);
    let digests = ledger.read_side().digests();
    assert!(digests.iter().all(|d| d.tree_size == size), "every model applied {size}: {digests:?}");
    digests.into_iter().map(|d| (d.name.to_owned(), d.digest)).collect()
}

/// Digests of every model rebuilt from zero over the store.
fn from_zero(store: &dyn Store) -> BTreeMap<String, String> {
    let size = store.head().unwrap().map(|(h, _)| h.tree_size).unwrap_or(0);
    rebuild_from_zero(store, size, None, |_| {})
        .unwrap()
        .iter()
        .map(|m| (m.name().to_owned(), zachetka::read::hex(&model::digest(&**m))))
        .collect()
}

fn append_all(ledger: &Ledger, batch: Vec<serde_json::Value>) {
    for r in ledger.append_blocking(batch) {
        r.unwrap();
    }
}

#[test]
fn models_followed_rebuilt_and_restored_from_snapshots_agree() {
    let (seed, mut next) = seeded("models_followed_rebuilt_and_restored_from_snapshots_agree");
    let size = DemoSize { learners: 80 + next(200), teachers: 30 + next(40), events: 500 + next(2500) };
    eprintln!("seed {seed}: {size:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, size);
    let authority = region.authority_did();
    let every = 50 + next(region.remaining() / 3);
    let mut ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), every)));
    let mut restarts = 0;
    loop {
        let batch = region.next_batch(1 + next(900) as usize);
        if batch.is_empty() {
            break;
        }
        append_all(&ledger, batch);
        if next(4) == 0 {
            // A restart: the models and rules come back from the newest snapshot plus the tail.
            ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
            drop(ledger);
            ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), every)));
            restarts += 1;
        }
    }
    let followed = served(&ledger);
    let store = ledger.store().clone();
    assert!(!followed.is_empty());
    assert_eq!(followed, from_zero(&*store), "followed (with {restarts} restarts) vs rebuilt from zero");
    // The audit rebuilds from zero and compares every snapshot at its own position, and the
    // newest plus the tail at the head.
    let sources = DerivedSources { snapshots: Some(dir.path().join("snapshots")), served: None };
    let report = audit_with(&*store, &sources, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    drop((ledger, store));
    // The policy wrote snapshots (at the latest when the ledger closed).
    let snapshots = std::fs::read_dir(dir.path().join("snapshots")).unwrap().count();
    assert!(snapshots > 0, "the policy (every {every} entries) wrote snapshots");
    let reopened = open(dir.path(), &authority, None);
    assert_eq!(served(&reopened), followed, "without snapshots, from zero on open");
}

/// A small demo ledger with one snapshot at its head; returns the snapshot's path.
fn ledger_with_snapshot(dir: &Path) -> (String, std::path::PathBuf) {
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 60, teachers: 30, events: 600 });
    let authority = region.authority_did();
    let ledger = open(dir, &authority, Some(snapshot_options(dir, u64::MAX)));
    loop {
        let batch = region.next_batch(500);
        if batch.is_empty() {
            break;
        }
        append_all(&ledger, batch);
    }
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let path = ledger.read_side().snapshot_now().unwrap().expect("a snapshot is written");
    (authority, path)
}

#[test]
fn a_damaged_snapshot_is_refused_with_a_warning_and_the_models_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, path) = ledger_with_snapshot(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    let status = ledger.read_side().status(ledger.head().0.tree_size);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(status.warnings.iter().any(|w| w.contains(&name)), "a warning names {name}: {:?}", status.warnings);
    assert_eq!(status.snapshot_tree_size, None, "the damaged snapshot was not loaded");
    assert_eq!(served(&ledger), from_zero(&**ledger.store()));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "reading never deletes or repairs a snapshot");
}

#[test]
fn a_snapshot_of_another_log_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let (_, path) = ledger_with_snapshot(a.path());
    // Another ledger of the same origin and keys with a different history of the same size or
    // more: the snapshot's root is not this log's root at that size.
    let b = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 61, teachers: 30, events: 900 });
    let authority = region.authority_did();
    let ledger = open(b.path(), &authority, None);
    loop {
        let batch = region.next_batch(500);
        if batch.is_empty() {
            break;
        }
        append_all(&ledger, batch);
    }
    drop(ledger);
    std::fs::create_dir_all(b.path().join("snapshots")).unwrap();
    std::fs::copy(&path, b.path().join("snapshots").join(path.file_name().unwrap())).unwrap();
    let ledger = open(b.path(), &authority, Some(snapshot_options(b.path(), u64::MAX)));
    let status = ledger.read_side().status(ledger.head().0.tree_size);
    assert_eq!(status.snapshot_tree_size, None, "a foreign snapshot is not loaded: {:?}", status.warnings);
    assert!(!status.warnings.is_empty());
    assert_eq!(served(&ledger), from_zero(&**ledger.store()));
}

#[test]
fn the_audit_names_a_forged_snapshot_and_a_differing_server() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, path) = ledger_with_snapshot(dir.path());
    let snap = zachetka_snapshots::read(&path).unwrap();
    // A forgery with valid checksums: one model's state taken from an earlier position, at the
    // snapshot's true size and root.
    let store = demo_store(dir.path(), &authority);
    let early = rebuild_from_zero(&*store, snap.tree_size() / 2, None, |_| {}).unwrap();
    let victim =
        early.iter().find(|m| m.encode() != model::all().iter().find(|x| x.name() == m.name()).unwrap().encode());
    let victim = victim.expect("some model has state at half the log");
    let forged_bytes = victim.encode();
    let sections: Vec<zachetka_snapshots::Section> = snap
        .sections()
        .map(|s| if s.name == victim.name() { zachetka_snapshots::Section { bytes: &forged_bytes, ..s } } else { s })
        .collect();
    std::fs::remove_file(&path).unwrap();
    zachetka_snapshots::write(&dir.path().join("snapshots"), snap.tree_size(), snap.root_hash(), &sections, 3).unwrap();
    let served_digests: Vec<zachetka::audit::ServedDigest> = vec![zachetka::audit::ServedDigest {
        name: victim.name().to_owned(),
        version: victim.version(),
        tree_size: snap.tree_size() / 2,
        digest: "00".repeat(32),
    }];
    let sources = DerivedSources {
        snapshots: Some(dir.path().join("snapshots")),
        served: Some(("http://test".into(), served_digests)),
    };
    let report = audit_with(&*store, &sources, &|_, _| {}).unwrap();
    let named: Vec<_> = report.violations.iter().map(|v| (v.code, v.message.clone())).collect();
    assert!(
        named.iter().any(|(c, m)| *c == "snapshot_differs" && m.contains(victim.name())),
        "the forged model is named: {named:#?}"
    );
    assert!(
        named.iter().any(|(c, m)| *c == "served_read_model_differs" && m.contains(victim.name())),
        "the server's differing digest is named: {named:#?}"
    );
    // The real digests at the server's position pass.
    let real = rebuild_from_zero(&*store, snap.tree_size() / 2, None, |_| {}).unwrap();
    let served_digests = real
        .iter()
        .map(|m| zachetka::audit::ServedDigest {
            name: m.name().to_owned(),
            version: m.version(),
            tree_size: snap.tree_size() / 2,
            digest: zachetka::read::hex(&model::digest(&**m)),
        })
        .collect();
    let sources = DerivedSources { snapshots: None, served: Some(("http://test".into(), served_digests)) };
    let report = audit_with(&*store, &sources, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
}
