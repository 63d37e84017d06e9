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
pub(super) fn demo_store(dir: &Path, authority: &str) -> Arc<dyn Store> {
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
    let clock = test_clock();
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
    append_demo_batch(ledger, batch);
}

/// Appends what remains of `region`, `batch_len` events at a time.
fn append_whole(ledger: &Ledger, region: &mut DemoRegion, batch_len: usize) {
    loop {
        let batch = region.next_batch(batch_len);
        if batch.is_empty() {
            break;
        }
        append_all(ledger, batch);
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
    let d = &report.derived;
    assert!(d.snapshots > 0 && d.snapshot_sections > d.snapshots && d.not_compared.is_empty(), "{d:#?}");
    drop((ledger, store));
    // The policy wrote snapshots (at the latest when the ledger closed).
    let snapshots = std::fs::read_dir(dir.path().join("snapshots")).unwrap().count();
    assert!(snapshots > 0, "the policy (every {every} entries) wrote snapshots");
    let reopened = open(dir.path(), &authority, None);
    assert_eq!(served(&reopened), followed, "without snapshots, from zero on open");
}

/// CI (session 11's last run): SIGTERM came while the read side was still behind the head, and
/// the stop left no snapshot, so the next open replayed the tail. A clean stop now applies what
/// the log holds before its snapshot: a ledger closed while its models replay from zero leaves a
/// snapshot at the head, whatever the policy.
#[test]
fn a_ledger_closed_while_its_models_replay_leaves_a_snapshot_at_the_head() {
    let (dir, size) = demo_ledger_with_a_snapshot_at_its_head();
    let snapshots: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(snapshots, vec![zachetka_snapshots::file_name(size)]);
}

/// A demo ledger without rules (so that an open has no rule state to replay, and returns while
/// the models still replay theirs), whose snapshot at its head was written by a close that came
/// while the models replayed from zero. Returns the directory and the tree size.
fn demo_ledger_with_a_snapshot_at_its_head() -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 120, teachers: 40, events: 3000 });
    let authority = region.authority_did();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key(), &authority, None).unwrap();
    drop(store);
    let ledger = open(dir.path(), &authority, None);
    append_whole(&ledger, &mut region, 500);
    let size = ledger.head().0.tree_size;
    drop(ledger);
    assert!(!dir.path().join("snapshots").exists(), "no snapshot before snapshots are enabled");
    // Opened with snapshots due only every billion entries, and closed at once: the models are
    // replaying the whole log from zero when the stop comes.
    drop(open(dir.path(), &authority, Some(snapshot_options(dir.path(), 1_000_000_000))));
    (dir, size)
}

/// An audit over a log file cut below the head reads the part before the cut; a snapshot
/// beyond that part is listed as not compared, not reported as "beyond the log" (the cut is
/// the one finding).
#[test]
fn an_audit_of_a_cut_log_does_not_compare_a_snapshot_beyond_the_cut() {
    let (dir, size) = demo_ledger_with_a_snapshot_at_its_head();
    let store_dir = dir.path().join("store");
    let entries = zachetka::store::sled::StorePaths::of(&store_dir).entries;
    let len = std::fs::metadata(&entries).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&entries).unwrap().set_len(len / 2).unwrap();
    let store = SledStore::open_read_only(&store_dir).unwrap();
    let sources = DerivedSources { snapshots: Some(dir.path().join("snapshots")), served: None };
    let report = audit_with(&store, &sources, &|_, _| {}).unwrap();
    let codes: Vec<_> = report.violations.iter().map(|v| v.code).collect();
    assert_eq!(codes, vec!["store_damaged"], "{report:#?}");
    assert!(report.tree_size > 0 && report.tree_size < size, "{}", report.tree_size);
    let snapshot = zachetka_snapshots::file_name(size);
    assert!(report.derived.not_compared.iter().any(|n| n.starts_with(&snapshot)), "{:#?}", report.derived);
}

/// The read side parses entries straight into typed records (`ParsedFact::from_entry_fast`);
/// on every entry of a demo region (most of the vocabulary) that path is taken and reads what
/// the JSON path (`vocabulary::parse` over a `Value`, the audit's) reads.
#[test]
fn demo_entries_read_on_the_fast_path_as_through_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 120, teachers: 40, events: 3000 });
    let authority = region.authority_did();
    let ledger = open(dir.path(), &authority, None);
    append_whole(&ledger, &mut region, 1000);
    let size = ledger.head().0.tree_size;
    let mut types = std::collections::BTreeSet::new();
    for (seq, bytes) in ledger.entries(0, size).unwrap().iter().enumerate() {
        let leaf = zachetka::merkle::leaf_hash(bytes).0;
        let fast =
            model::ParsedFact::from_entry_fast(bytes, leaf).unwrap_or_else(|| panic!("entry {seq} left the fast path"));
        assert_eq!(Ok(&fast), model::ParsedFact::from_entry_json(bytes, leaf).as_ref(), "entry {seq}");
        types.insert(fast.fact().expect("a fact of the vocabulary").event_type.to_owned());
    }
    assert!(types.len() >= 40, "the demo wrote {} types: {types:?}", types.len());
}

/// A snapshot's sections, owned (their values read and checked): (name, version, bytes, values).
pub(super) fn owned_sections(snap: &zachetka_snapshots::Snapshot) -> Vec<(String, u32, Vec<u8>, Vec<u8>)> {
    snap.sections().map(|s| (s.name.to_owned(), s.version, s.bytes.to_vec(), s.values.read_all().unwrap())).collect()
}

/// `owned_sections` as sections to write.
pub(super) fn as_sections(owned: &[(String, u32, Vec<u8>, Vec<u8>)]) -> Vec<zachetka_snapshots::Section<'_>> {
    owned
        .iter()
        .map(|(name, version, bytes, values)| zachetka_snapshots::Section { name, version: *version, bytes, values })
        .collect()
}

/// A small demo ledger with one snapshot at its head; returns the snapshot's path.
pub(super) fn ledger_with_snapshot(dir: &Path) -> (String, std::path::PathBuf) {
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 60, teachers: 30, events: 600 });
    let authority = region.authority_did();
    let ledger = open(dir, &authority, Some(snapshot_options(dir, u64::MAX)));
    append_whole(&ledger, &mut region, 500);
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let path = ledger.read_side().snapshot_now().unwrap().expect("a snapshot is written");
    (authority, path)
}

#[test]
fn a_damaged_snapshot_is_refused_with_a_warning_and_the_models_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, path) = ledger_with_snapshot(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The middle of the largest section (read and checked with the file, unlike the values).
    let snap = zachetka_snapshots::read(&path).unwrap();
    let spans = snap.sections().map(|s| snap.section_span(s.name).unwrap());
    let (start, end) = spans.max_by_key(|(start, end)| end - start).unwrap();
    drop(snap);
    bytes[((start + end) / 2) as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    let status = ledger.read_side().status(ledger.head().0.tree_size);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(status.warnings.iter().any(|w| w.contains(&name)), "a warning names {name}: {:?}", status.warnings);
    assert_eq!(status.snapshot_tree_size, None, "the damaged snapshot was not loaded");
    assert_eq!(served(&ledger), from_zero(&**ledger.store()));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "reading never deletes or repairs a snapshot");
}

/// A ledger opened from a snapshot whose values area `harm` changes on disk after the open (given
/// the file and where its values area starts): a diary read then is not answered (the stopped
/// thread's message holds every one of `said`), the file is set aside as `harm` left it (kept,
/// never repaired), and the next open, without it, rebuilds from the log what it held.
fn values_harmed_after_the_open(harm: impl FnOnce(&Path, u64), said: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (authority, path) = ledger_with_snapshot(dir.path());
    let ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    let size = ledger.head().0.tree_size;
    assert_eq!(ledger.read_side().status(size).snapshot_tree_size, Some(size), "loaded from the snapshot");
    let ids = demo_ids(&ledger);
    let snap = zachetka_snapshots::read(&path).unwrap();
    let values: u64 = snap.sections().map(|s| zachetka_projections::lazy::ValueSource::len(&s.values)).sum();
    let area = snap.file_len() - values;
    drop(snap);
    harm(&path, area);
    let left = std::fs::read(&path).unwrap();
    let read = ledger.read_side();
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read.view("diaries", &[&ids.applicant])));
    let why = answer.expect_err("a diary whose bytes are harmed is not answered");
    let why = why.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(said.iter().all(|s| why.contains(s)), "{why}");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let aside = path.with_file_name(format!("{name}{}", zachetka_snapshots::DAMAGED_SUFFIX));
    assert!(!path.exists() && aside.exists(), "the snapshot is set aside, not deleted");
    assert_eq!(std::fs::read(&aside).unwrap(), left, "and not repaired");
    drop(ledger);
    let reopened = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    let status = reopened.read_side().status(size);
    assert_eq!(status.snapshot_tree_size, None, "the set-aside snapshot is not picked again");
    assert_eq!(served(&reopened), from_zero(&**reopened.store()));
    assert!(reopened.read_side().view("diaries", &[&ids.applicant]).is_ok());
}

/// The values a snapshot's state keeps apart are read, and their chunks checked, only when
/// needed: damage there is found after the open. It is never answered from: the file is set
/// aside (`.damaged`, kept, never picked again) and the thread that needed the value stops (the
/// command line exits instead, for its supervisor to start it again). The next open rebuilds
/// from the log what the snapshot held.
#[test]
fn damage_in_a_snapshots_values_found_after_the_open_sets_it_aside_and_the_next_open_rebuilds() {
    // One flipped byte in every chunk of the values area (the end of the file).
    let flip_every_chunk = |path: &Path, area: u64| {
        use std::os::unix::fs::FileExt;
        let mut bytes = std::fs::read(path).unwrap();
        for at in (area..bytes.len() as u64).step_by(zachetka_snapshots::CHUNK_LEN as usize) {
            bytes[at as usize] ^= 0x08;
        }
        std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(&bytes, 0).unwrap();
    };
    values_harmed_after_the_open(flip_every_chunk, &["checksum mismatch in the values area"]);
}

/// A snapshot whose values can no longer be read after the open (the file cut short under the
/// process: a failed disk, an operator's mistake) is handled as damage; the message says the
/// read failed and why.
#[test]
fn a_snapshot_cut_short_after_the_open_is_set_aside_like_damage() {
    let cut_before_the_values =
        |path: &Path, area: u64| std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(area).unwrap();
    values_harmed_after_the_open(cut_before_the_values, &["couldn't read", "fill whole buffer"]);
}

/// The read side decodes its copy of a snapshot's rule state only when it first needs it (the
/// open decodes the ledger's own): a section that does not decode is then a warning, the copy
/// replays the rules from the log, and the next snapshot carries a rule state that loads.
#[test]
fn a_rule_state_that_does_not_decode_is_replayed_by_the_read_side_when_first_needed() {
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 60, teachers: 30, events: 900 });
    let authority = region.authority_did();
    let ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    while region.remaining() > 300 {
        append_all(&ledger, region.next_batch(200));
    }
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let path = ledger.read_side().snapshot_now().unwrap().expect("a snapshot is written");
    drop(ledger);
    let snap = zachetka_snapshots::read(&path).unwrap();
    let owned = owned_sections(&snap);
    let mut sections = as_sections(&owned);
    for s in sections.iter_mut().filter(|s| s.name == zachetka_snapshots::RULES_SECTION) {
        s.bytes = b"not a rule state";
    }
    let snapshots = dir.path().join("snapshots");
    zachetka_snapshots::write(&snapshots, snap.tree_size(), snap.root_hash(), &sections, 3).unwrap();
    let ledger = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    let size = ledger.head().0.tree_size;
    assert_eq!(ledger.read_side().status(size).snapshot_tree_size, Some(size), "the models load from it");
    let rest = region.next_batch(1000);
    assert!(!rest.is_empty());
    append_all(&ledger, rest);
    let followed = served(&ledger);
    let warnings = ledger.read_side().status(ledger.head().0.tree_size).warnings;
    assert!(warnings.iter().any(|w| w.contains("the read side replays the rules from the log")), "{warnings:?}");
    assert_eq!(followed, from_zero(&**ledger.store()));
    let newer = ledger.read_side().snapshot_now().unwrap().expect("a snapshot is written");
    drop(ledger);
    let snap = zachetka_snapshots::read(&newer).unwrap();
    let config = SledStore::open(&dir.path().join("store")).unwrap().config().unwrap().unwrap();
    let rules = snap.section(zachetka_snapshots::RULES_SECTION).expect("the rule state is written");
    zachetka::read::snapshot::load_rules(&config, rules.values.source(), rules.bytes)
        .expect("the rule state written loads");
    let reopened = open(dir.path(), &authority, Some(snapshot_options(dir.path(), u64::MAX)));
    let warnings = reopened.read_side().status(reopened.head().0.tree_size).warnings;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(served(&reopened), followed);
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
    append_whole(&ledger, &mut region, 500);
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
    let (forged_bytes, forged_values) = zachetka::read::snapshot::encode_apart(|| victim.encode());
    let owned = owned_sections(&snap);
    let sections: Vec<zachetka_snapshots::Section> = as_sections(&owned)
        .into_iter()
        .map(|s| {
            let forged = zachetka_snapshots::Section { bytes: &forged_bytes, values: &forged_values, ..s };
            if s.name == victim.name() {
                forged
            } else {
                s
            }
        })
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
    // The real digests at the server's position pass, and the report says what it compared (a
    // clean report vouches only for that) and what it could not: here a model of another
    // version and one this build does not know.
    let real = rebuild_from_zero(&*store, snap.tree_size() / 2, None, |_| {}).unwrap();
    let mut served_digests: Vec<zachetka::audit::ServedDigest> = real
        .iter()
        .map(|m| zachetka::audit::ServedDigest {
            name: m.name().to_owned(),
            version: m.version(),
            tree_size: snap.tree_size() / 2,
            digest: zachetka::read::hex(&model::digest(&**m)),
        })
        .collect();
    let models = served_digests.len() as u64;
    let mut other_version = served_digests[0].clone();
    other_version.version += 1;
    let unknown = zachetka::audit::ServedDigest { name: "no-such-model".into(), ..served_digests[0].clone() };
    served_digests.extend([other_version, unknown]);
    let sources = DerivedSources { snapshots: None, served: Some(("http://test".into(), served_digests)) };
    let report = audit_with(&*store, &sources, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    let d = &report.derived;
    assert_eq!((d.served_by.as_deref(), d.served_models, d.snapshots), (Some("http://test"), models, 0), "{d:#?}");
    assert_eq!(d.not_compared.len(), 2, "{d:#?}");
    assert!(d.not_compared.iter().any(|n| n.contains("no-such-model") && n.contains("unknown")), "{d:#?}");
}

/// Ids of the demo ledger a front end would read: a school with 1st-grade applications, a queue
/// territory with one application and its learner, and a learner with a diary.
struct DemoIds {
    school: String,
    other_school: String,
    territory: String,
    age_group_path: String,
    application: String,
    applicant: String,
}

fn demo_ids(ledger: &Ledger) -> DemoIds {
    let size = ledger.head().0.tree_size;
    let mut school = None;
    let mut schools = std::collections::BTreeSet::new();
    let mut app = None;
    for bytes in ledger.entries(0, size).unwrap() {
        let e: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let ev = &e["event"];
        let stream = ev["stream"].as_str().unwrap();
        match ev["type"].as_str().unwrap() {
            "enrolment.application_submitted" => {
                let s = stream.trim_start_matches("institution/").to_owned();
                school.get_or_insert(s.clone());
                schools.insert(s);
            }
            "registry.institution_registered" => {
                schools.insert(ev["data"]["institution"].as_str().unwrap().to_owned());
            }
            "queue.application_submitted" if app.is_none() => {
                let d = &ev["data"];
                app = Some((
                    stream.trim_start_matches("queue/kg/").to_owned(),
                    d["application_id"].as_str().unwrap().to_owned(),
                    d["learner"].as_str().unwrap().to_owned(),
                ));
            }
            _ => {}
        }
    }
    let school = school.expect("the demo has 1st-grade applications");
    let other_school = schools.into_iter().find(|s| *s != school).expect("two institutions");
    let (territory, application, applicant) = app.expect("the demo has a queue application");
    DemoIds { age_group_path: String::new(), school, other_school, territory, application, applicant }
}

fn get_with(base: &str, path: &str, token: Option<&zachetka::access::TokenSecret>) -> (u16, serde_json::Value) {
    let mut req = ureq::get(&format!("{base}{path}"));
    if let Some(t) = token {
        req = req.set("authorization", &format!("Bearer {}", t.expose()));
    }
    let (status, text) = match req.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{path}: {e}"),
    };
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The demo ledger of `ledger_with_snapshot`, reopened, its read models caught up.
fn reopened_and_applied(dir: &Path) -> Ledger {
    let (authority, _) = ledger_with_snapshot(dir);
    let ledger = open(dir, &authority, None);
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    ledger
}

#[test]
fn each_role_reads_exactly_the_views_of_its_scope() {
    use zachetka::access::{create_token, Access, Role, Scope, TokenSecret};
    let dir = tempfile::tempdir().unwrap();
    let ledger = reopened_and_applied(dir.path());
    let mut ids = demo_ids(&ledger);
    // The age group of the application, from its own view (read as the auditor below).
    let tokens_dir = tempfile::tempdir().unwrap();
    let tokens = tokens_dir.path().join("tokens.json");
    let mut n = 0u8;
    let mut token = |role: Role, scope: Scope| {
        n += 1;
        let secret = TokenSecret::from_bytes([n; 32]);
        create_token(&tokens, &secret, role, scope, "test", 0).unwrap();
        secret
    };
    let auditor = token(Role::Auditor, Scope::Region);
    let region_service = token(Role::ReadService, Scope::Region);
    let school_service = token(Role::ReadService, Scope::Institution(ids.school.clone()));
    let staff = token(Role::Staff, Scope::Institution(ids.school.clone()));
    let other_staff = token(Role::Staff, Scope::Institution(ids.other_school.clone()));
    let territory_staff = token(Role::Staff, Scope::Territory(ids.territory.clone()));
    let other_territory_staff = token(Role::Staff, Scope::Territory(format!("{}-not", ids.territory)));
    let territory_service = token(Role::ReadService, Scope::Territory(ids.territory.clone()));
    let parent = token(Role::Learner, Scope::Learner(ids.applicant.clone()));
    let other_parent = token(Role::Learner, Scope::Learner(format!("{}-not", ids.applicant)));
    let server = super::http::serve_access(
        ledger.clone(),
        Default::default(),
        Access::tokens(&tokens),
        tokens_dir,
        tokens.clone(),
    );
    let base = &server.base;
    let app_path =
        format!("/v1/projections/kindergarten-queues/{}/applications/{}", enc(&ids.territory), enc(&ids.application));
    let (status, app) = get_with(base, &app_path, Some(&auditor));
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["scope"], serde_json::json!({"kind": "learner", "id": ids.applicant, "territory": ids.territory}));
    assert_eq!(app["tree_size"], ledger.head().0.tree_size);
    // The list the application's position counts in: its next allocation year's age group
    // (`<territory>/<year>/<age_group>`), or, for a child past the oldest group or an application
    // that left the queue in a past year (a legacy placement: no list of a past year is
    // answered), the territory's list of lists; both are the territory's.
    let view = &app["view"];
    ids.age_group_path = match (view["allocation_year"].as_i64(), view["age_group"].as_str(), view["list"].as_str()) {
        (Some(year), Some(group), Some(list)) => {
            assert_eq!(list, format!("{}/{year}/{group}", ids.territory), "{app}");
            format!("/v1/projections/kindergarten-queues/{}/{year}/{}", enc(&ids.territory), enc(group))
        }
        (Some(_), _, None) => {
            let left = view["status"]["state"] != "waiting";
            assert!(view["age_group"].is_null() || left, "{app}");
            format!("/v1/projections/kindergarten-queues/{}", enc(&ids.territory))
        }
        _ => panic!("the application view names its allocation year: {app}"),
    };
    let paths = [
        ("first-grade", format!("/v1/projections/first-grade/{}", enc(&ids.school))),
        ("queue", ids.age_group_path.clone()),
        ("the territory's queue lists", format!("/v1/projections/kindergarten-queues/{}", enc(&ids.territory))),
        ("application", app_path.clone()),
        ("application's moves", format!("{app_path}/moves")),
        ("indicators", "/v1/projections/indicators".to_owned()),
    ];
    // Who reads what (200) and who is refused (403): written out, not derived from the code.
    // Review s12, M3: an application (and its moves) is its applicant's and its territory's:
    // the territory's queue operator answers the applicant's questions (it was 403).
    let table: [(&str, &TokenSecret, [u16; 6]); 10] = [
        ("auditor", &auditor, [200, 200, 200, 200, 200, 200]),
        ("region read service", &region_service, [200, 200, 200, 200, 200, 200]),
        ("the school's read service", &school_service, [200, 403, 403, 403, 403, 403]),
        ("the school's staff", &staff, [200, 403, 403, 403, 403, 403]),
        ("another institution's staff", &other_staff, [403, 403, 403, 403, 403, 403]),
        ("the territory's queue staff", &territory_staff, [403, 200, 200, 200, 200, 403]),
        ("the territory's read service", &territory_service, [403, 200, 200, 200, 200, 403]),
        ("another territory's queue staff", &other_territory_staff, [403, 403, 403, 403, 403, 403]),
        ("the applicant's parent", &parent, [403, 403, 403, 200, 200, 403]),
        ("another parent", &other_parent, [403, 403, 403, 403, 403, 403]),
    ];
    for (who, secret, expected) in table {
        for ((what, path), want) in paths.iter().zip(expected) {
            let (status, body) = get_with(base, path, Some(secret));
            assert_eq!(status, want, "{who} reading {what} ({path}): {body}");
            if want == 403 {
                assert_eq!(body["code"], "forbidden");
                assert_eq!(body.as_object().unwrap().len(), 2, "a refusal carries no data: {body}");
            } else {
                assert!(body["view"].is_object(), "{who} reading {what}: {body}");
            }
        }
    }
    for (what, path) in &paths {
        let (status, body) = get_with(base, path, None);
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "no token on {what}");
    }
    // An unknown id: 404 to a reader of the whole region, 403 to anyone else (existence of an id
    // is not disclosed beyond the scope).
    let unknown = format!("/v1/projections/kindergarten-queues/{}/applications/no-such", enc(&ids.territory));
    assert_eq!(get_with(base, &unknown, Some(&auditor)).0, 404);
    assert_eq!(get_with(base, &unknown, Some(&territory_staff)).0, 404, "the territory's own queue");
    assert_eq!(get_with(base, &unknown, Some(&other_territory_staff)).0, 403);
    assert_eq!(get_with(base, &unknown, Some(&parent)).0, 403);
    // Review s12, H2: with `min_tree_size` above the head, a token that cannot read an existing
    // application is refused before the wait (it waited 2 s for a 503 `not_yet_applied`, which a
    // client retries forever); one that can read it waits, and hears 503 when nothing comes.
    let ahead = format!("{app_path}?min_tree_size={}", ledger.head().0.tree_size + 5);
    for (who, secret) in [("another parent", &other_parent), ("another territory", &other_territory_staff)] {
        let (status, body) = get_with(base, &ahead, Some(secret));
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{who}: {body}");
    }
    let (status, body) = get_with(base, &ahead, Some(&parent));
    assert_eq!((status, body["code"].as_str()), (503, Some("not_yet_applied")), "{body}");
    // Indicators of one academic year: the latest the log holds by default, or the one the path
    // names; a year the log has not reached is not found, a segment that is no year a bad path.
    let (status, latest) = get_with(base, "/v1/projections/indicators", Some(&auditor));
    assert_eq!(status, 200, "{latest}");
    let year = latest["view"]["academic_year"].as_i64().expect("the answer names its academic year");
    let (status, same) = get_with(base, &format!("/v1/projections/indicators/{year}"), Some(&auditor));
    assert_eq!((status, &same["view"]), (200, &latest["view"]));
    let (status, before) = get_with(base, &format!("/v1/projections/indicators/{}", year - 1), Some(&auditor));
    assert_eq!((status, &before["view"]["academic_year"]), (200, &serde_json::json!(year - 1)), "{before}");
    for (path, want, code) in [
        (format!("/v1/projections/indicators/{}", year + 1), 404, "not_found"),
        ("/v1/projections/indicators/1990".to_owned(), 404, "not_found"),
        ("/v1/projections/indicators/26".to_owned(), 400, "bad_path"),
        (format!("/v1/projections/indicators/{year}/x"), 400, "bad_path"),
    ] {
        let (status, body) = get_with(base, &path, Some(&auditor));
        assert_eq!((status, body["code"].as_str()), (want, Some(code)), "{path}: {body}");
    }
    let (status, body) = get_with(base, &format!("/v1/projections/indicators/{year}"), Some(&parent));
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    // Review s9, finding 10: a missing item inside the scope the path names, asked by a token
    // that holds that scope, is 404 (it was 403 "may not read data of this scope"); the same path
    // asked by a token of another scope stays 403.
    let own_missing = [
        ("a subject of the child's diary", &parent, format!("/v1/projections/diaries/{}/Nope", enc(&ids.applicant))),
        ("the child's record book", &parent, format!("/v1/projections/record-books/{}", enc(&ids.applicant))),
        ("a class of the school", &staff, format!("/v1/projections/journals/{}/99Z/Nope", enc(&ids.school))),
        ("a class of the school", &school_service, format!("/v1/projections/journals/{}/99Z/Nope", enc(&ids.school))),
        (
            "an age group of the territory",
            &territory_staff,
            format!("/v1/projections/kindergarten-queues/{}/no-such-group", enc(&ids.territory)),
        ),
    ];
    for (what, holder, path) in &own_missing {
        // The auditor's answer says whether it is missing (a kindergarten child has no record
        // book yet; were there one, its holder reads it as the auditor does).
        let (want, _) = get_with(base, path, Some(&auditor));
        assert!(want == 404 || (want == 200 && what.contains("record book")), "{what} ({path}): {want}");
        let (status, body) = get_with(base, path, Some(holder));
        assert_eq!(status, want, "{what} ({path}): {body}");
        if want == 404 {
            assert_eq!(body["code"].as_str(), Some("not_found"), "{what} ({path}): {body}");
        }
        let (status, body) = get_with(base, path, Some(&other_parent));
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{what} to another parent: {body}");
        let (status, body) = get_with(base, path, Some(&other_staff));
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{what} to other staff: {body}");
    }
    assert_eq!(get_with(base, "/v1/projections/no-such-model/x", Some(&auditor)).0, 404);
    // The list of models with digests: the region's readers only.
    let (status, list) = get_with(base, "/v1/projections?digests=true", Some(&region_service));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["digests"].as_array().unwrap().len(), zachetka_projections::model::all().len());
    assert_eq!(get_with(base, "/v1/projections", Some(&staff)).0, 403);
}

/// Review s12, C1: a teacher's view followed the school of their latest attestation application,
/// so after a later staff record named another school (where the teacher works now), the old
/// school's staff still read it, the record of the new one included, and the new school was
/// refused. The view is the school's where the teacher works now.
#[test]
fn a_teachers_view_is_read_by_the_school_where_they_work_now() {
    use zachetka::access::{create_token, Access, Role, Scope, TokenSecret};
    let dir = tempfile::tempdir().unwrap();
    let ledger = reopened_and_applied(dir.path());
    // A teacher with an attestation application, a staff record of the demo to copy, and the
    // latest time of the log.
    let (mut applied, mut course, mut last) = (None, None, String::new());
    for bytes in ledger.entries(0, ledger.head().0.tree_size).unwrap() {
        let e: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let ev = e["event"].clone();
        last = last.max(ev["occurred_at"].as_str().unwrap().to_owned());
        match ev["type"].as_str().unwrap() {
            "attestation.application_submitted" if applied.is_none() => {
                applied = Some((ev["stream"].as_str().unwrap().to_owned(), ev["data"]["institution"].clone()));
            }
            "staff.course_completed" if course.is_none() => course = Some(ev),
            _ => {}
        }
    }
    let (stream, old_school) = applied.expect("the demo has attestation applications");
    let old_school = old_school.as_str().unwrap().to_owned();
    let ids = demo_ids(&ledger);
    let new_school = if ids.school == old_school { ids.other_school } else { ids.school };
    let tokens_dir = tempfile::tempdir().unwrap();
    let tokens = tokens_dir.path().join("tokens.json");
    let token = |n: u8, role: Role, scope: Scope| {
        let secret = TokenSecret::from_bytes([n; 32]);
        create_token(&tokens, &secret, role, scope, "test", 0).unwrap();
        secret
    };
    let old_staff = token(1, Role::Staff, Scope::Institution(old_school.clone()));
    let new_staff = token(2, Role::Staff, Scope::Institution(new_school.clone()));
    let auditor = token(3, Role::Auditor, Scope::Region);
    let server = super::http::serve_access(
        ledger.clone(),
        Default::default(),
        Access::tokens(&tokens),
        tokens_dir,
        tokens.clone(),
    );
    let path = format!("/v1/projections/{}", stream.replacen("teacher/", "teachers/", 1));
    let (status, body) = get_with(&server.base, &path, Some(&old_staff));
    assert_eq!(status, 200, "the school of the application reads it: {body}");
    assert_eq!(get_with(&server.base, &path, Some(&new_staff)).0, 403);
    // The region's issuer attests a course the teacher completed at the new school, dated the
    // log's latest day: the teacher works there now.
    let mut ev = course.expect("the demo has staff records");
    let issuer = zachetka::demo::demo_key(ORIGIN, "issuer/staff");
    ev["id"] = serde_json::json!(id(0xc1));
    ev["stream"] = serde_json::json!(stream);
    ev["occurred_at"] = serde_json::json!(last);
    ev["author"] = serde_json::json!(issuer.did());
    ev["data"]["record_id"] = serde_json::json!("review-s12-c1");
    ev["data"]["institution"] = serde_json::json!(new_school);
    ev["data"]["completed_on"] = serde_json::json!(last[..10]);
    for r in ledger.append_blocking(vec![zachetka::event::sign_event(&ev, &issuer).unwrap()]) {
        r.unwrap();
    }
    ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
    let (status, body) = get_with(&server.base, &path, Some(&new_staff));
    assert_eq!(status, 200, "the school where the teacher works now reads it: {body}");
    assert_eq!(body["scope"], serde_json::json!({"kind": "institution", "id": new_school}));
    assert_eq!(body["view"]["institution"], serde_json::json!(new_school));
    let (status, body) = get_with(&server.base, &path, Some(&old_staff));
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "the former school no longer: {body}");
    assert_eq!(get_with(&server.base, &path, Some(&auditor)).1["scope"]["id"], serde_json::json!(new_school));
}

/// A point view (one application, one learner's diary, one class's journal in a subject) is
/// answered without waiting, as `view` answers it (an application once its answer is cached);
/// listings and an application's every move are left to `view` (a server runs those on its
/// blocking threads).
#[test]
fn point_views_are_answered_without_waiting_and_listings_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, _) = ledger_with_snapshot(dir.path());
    let ledger = open(dir.path(), &authority, None);
    let head = ledger.head().0;
    ledger.read_side().wait_applied_blocking(head.tree_size);
    let ids = demo_ids(&ledger);
    let read = ledger.read_side();
    let journals = read.view("journals", &[&ids.school]).unwrap().view.body;
    let class = journals["classes"][0]["class"].as_str().expect("a class journal").to_owned();
    // The class's newest year (the one the path without a year answers) and its first subject.
    let newest = journals["classes"][0]["years"].as_array().and_then(|y| y.last()).expect("a year").clone();
    let year = newest["academic_year"].as_i64().expect("an academic year").to_string();
    let subject = newest["subjects"][0]["subject"].as_str().expect("a subject").to_owned();
    let point: [(&str, Vec<&str>); 4] = [
        ("kindergarten-queues", vec![&ids.territory, "applications", &ids.application]),
        ("diaries", vec![&ids.applicant]),
        ("journals", vec![&ids.school, &class, &subject]),
        ("journals", vec![&ids.school, &class, &subject, &year]),
    ];
    let application = [ids.territory.as_str(), "applications", ids.application.as_str()];
    assert!(read.try_view("kindergarten-queues", &application).is_none(), "an application not computed yet");
    let computed = read.view("kindergarten-queues", &application).unwrap().view.body;
    for (model, path) in &point {
        let fast = read.try_view(model, path).unwrap_or_else(|| panic!("{model}/{path:?} is a point view"));
        let (fast, slow) = (fast.map_err(|e| format!("{e:?}")), read.view(model, path).map_err(|e| format!("{e:?}")));
        match (fast, slow) {
            (Ok(a), Ok(b)) => {
                assert_eq!((a.tree_size, a.root, &a.view.body), (b.tree_size, b.root, &b.view.body), "{model}");
                assert_eq!(a.tree_size, head.tree_size, "{model}");
            }
            (Err(e), _) if *model == "journals" => panic!("{path:?}: a journal the listing names: {e}"),
            // The applicant of the demo's first application may have no diary: refused alike.
            (a, b) => assert_eq!(a.map(|_| ()), b.map(|_| ()), "{model}/{path:?}"),
        }
    }
    let cached = read.try_view("kindergarten-queues", &application).unwrap().unwrap();
    assert_eq!(cached.view.body, computed, "from the cache, as computed");
    let listings: [(&str, Vec<&str>); 3] = [
        ("journals", vec![&ids.school]),
        ("kindergarten-queues", vec![&ids.territory, "applications", &ids.application, "moves"]),
        ("indicators", vec![]),
    ];
    for (model, path) in &listings {
        assert!(read.try_view(model, path).is_none(), "{model}/{path:?} is not a point view");
    }
    assert!(matches!(read.try_view("no-such-model", &[]), Some(Err(zachetka::read::ReadError::UnknownModel(_)))));
}

#[test]
fn min_tree_size_reads_ones_own_writes_or_answers_not_yet_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, _) = ledger_with_snapshot(dir.path());
    let ledger = open(dir.path(), &authority, None);
    let server = super::http::serve(ledger.clone());
    let head = ledger.head().0.tree_size;
    let auditor = auditor_secret();
    // Every answer carries the size it reflects; asking for the head waits until it is applied.
    let (status, body) =
        get_with(&server.base, &format!("/v1/projections/indicators?min_tree_size={head}"), Some(&auditor));
    assert_eq!(status, 200, "{body}");
    assert!(body["tree_size"].as_u64().unwrap() >= head);
    assert_eq!(
        body["root"],
        zachetka::merkle::HashB64::to_b64(&ledger.root(body["tree_size"].as_u64().unwrap()).unwrap())
    );
    // Beyond the log: refused after the bounded wait, retryable.
    let path = format!("/v1/projections/indicators?min_tree_size={}", head + 1000);
    let resp = ureq::get(&format!("{}{path}", server.base)).set("authorization", &auditor_bearer()).call();
    let Err(ureq::Error::Status(503, r)) = resp else { panic!("{path}: expected 503") };
    assert!(r.header("retry-after").is_some());
    let body: serde_json::Value = r.into_json().unwrap();
    assert_eq!(body["code"], "not_yet_applied");
    // A bad value is a bad query.
    assert_eq!(get_with(&server.base, "/v1/projections/indicators?min_tree_size=x", Some(&auditor)).0, 400);

    // Review s9, finding 15: a token that may not read the view is refused before any wait (it
    // got 503 `not_yet_applied` after 2 s, and a client retried for ever).
    use zachetka::access::{create_token, Role, Scope, TokenSecret};
    let ids = demo_ids(&ledger);
    let (parent, staff) = (TokenSecret::from_bytes([0x51; 32]), TokenSecret::from_bytes([0x52; 32]));
    create_token(&server.tokens, &parent, Role::Learner, Scope::Learner(ids.applicant.clone()), "p", 0).unwrap();
    create_token(&server.tokens, &staff, Role::Staff, Scope::Institution(ids.school.clone()), "s", 0).unwrap();
    let beyond = head + 1000;
    let refused = [
        (&parent, format!("/v1/projections/diaries/{}-other", enc(&ids.applicant))),
        (&parent, "/v1/projections/indicators".to_owned()),
        (&parent, format!("/v1/projections/journals/{}", enc(&ids.school))),
        (&staff, format!("/v1/projections/diaries/{}", enc(&ids.applicant))),
        (&staff, format!("/v1/projections/journals/{}", enc(&ids.other_school))),
        (&staff, format!("/v1/projections/kindergarten-queues/{}/applications/x", enc(&ids.territory))),
    ];
    for (token, path) in &refused {
        let (status, body) = get_with(&server.base, &format!("{path}?min_tree_size={beyond}"), Some(token));
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{path}: {body}");
    }
    // Within the token's scope the wait is still a wait.
    let own = format!("/v1/projections/diaries/{}?min_tree_size={beyond}", enc(&ids.applicant));
    let (status, body) = get_with(&server.base, &own, Some(&parent));
    assert_eq!((status, body["code"].as_str()), (503, Some("not_yet_applied")), "{body}");
}

/// The demo region's read models against counts made here from the entries themselves, not from
/// the models' code: institutions by kind, 1st-grade applications and enrolments per school and
/// year, the lessons, marks and weighted averages (corrections applied) of the busiest class
/// journal, and each learner's achievements.
#[test]
fn the_demo_regions_read_models_match_counts_made_from_the_entries() {
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    let dir = tempfile::tempdir().unwrap();
    let (authority, _) = ledger_with_snapshot(dir.path());
    let ledger = open(dir.path(), &authority, None);
    let size = ledger.head().0.tree_size;
    ledger.read_side().wait_applied_blocking(size);
    let entries: Vec<Value> = ledger
        .entries(0, size)
        .unwrap()
        .iter()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap()["event"].clone())
        .collect();
    let view = |name: &str, path: &[&str]| ledger.read_side().view(name, path).unwrap().view.body;
    let s = |v: &Value| v.as_str().unwrap().to_owned();

    // Institutions by kind.
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for e in entries.iter().filter(|e| e["type"] == "registry.institution_registered") {
        *kinds.entry(s(&e["data"]["kind"])).or_default() += 1;
    }
    let ind = view("indicators", &[]);
    assert_eq!(ind["institutions"]["total"], kinds.values().sum::<u64>());
    for (kind, n) in &kinds {
        assert_eq!(ind["institutions"]["by_kind"][kind], *n, "institutions of kind {kind}: {}", ind["institutions"]);
    }

    // Digital maturity of the log's latest academic year (the test clock's: ledger time), counted
    // from the entries: school students by their stays (admission or a 1st-grade order's
    // 1 September until graduation, expulsion or transfer), teachers by their grants' validity,
    // records by their dates. Dates compare as text (`YYYY-MM-DD`).
    let now = zachetka::time::Clock::now_unix(&*test_clock()) + 3 * 3600;
    let (y, m, _) = zachetka::time::civil_from_days(now.div_euclid(86_400));
    let year = if m >= 9 { y } else { y - 1 };
    assert_eq!(
        (&ind["academic_year"], &ind["latest_academic_year"]),
        (&serde_json::json!(year), &serde_json::json!(year))
    );
    let (start, end) = (format!("{year}-09-01"), format!("{}-09-01", year + 1));
    let in_year =
        |from: &str, to: Option<&str>| from < end.as_str() && to.is_none_or(|t| t > start.as_str() && t > from);
    let dated_in =
        |e: &Value, field: &str| (start.as_str()..end.as_str()).contains(&e["data"][field].as_str().unwrap());
    let shares = &ind["digital_maturity"]["shares"];
    let of_type = |ty: &'static str| entries.iter().filter(move |e| e["type"] == ty);
    let schools: BTreeSet<String> = of_type("registry.institution_registered")
        .filter(|e| e["data"]["kind"] == "school")
        .map(|e| s(&e["data"]["institution"]))
        .collect();
    // Learner -> stays (school or not, from, to); `<school>/<application>` -> learner.
    type Stays = HashMap<String, Vec<(bool, String, Option<String>)>>;
    let mut stays: Stays = HashMap::new();
    let mut first_graders: BTreeSet<String> = BTreeSet::new();
    let mut applications: HashMap<String, String> = HashMap::new();
    for e in &entries {
        let learner = s(&e["stream"]).trim_start_matches("learner/").to_owned();
        let leave = |stays: &mut Stays, on: &Value| {
            if let Some(open) = stays.get_mut(&learner).and_then(|v| v.last_mut()).filter(|st| st.2.is_none()) {
                open.2 = Some(s(on).max(open.1.clone()));
            }
        };
        match e["type"].as_str().unwrap() {
            "contingent.admitted" => {
                let school = schools.contains(e["data"]["institution"].as_str().unwrap());
                stays.entry(learner.clone()).or_default().push((school, s(&e["data"]["admitted_on"]), None));
            }
            "contingent.graduated" => leave(&mut stays, &e["data"]["graduated_on"]),
            "contingent.expelled" => leave(&mut stays, &e["data"]["expelled_on"]),
            "learner.transferred" => leave(&mut stays, &e["data"]["transferred_on"]),
            "enrolment.application_submitted" => {
                applications
                    .insert(format!("{}/{}", e["stream"], e["data"]["application_id"]), s(&e["data"]["learner"]));
            }
            "enrolment.order_issued" => {
                for app in e["data"]["applications"].as_array().unwrap() {
                    let l = &applications[&format!("{}/{app}", e["stream"])];
                    let v = stays.entry(l.clone()).or_default();
                    if v.last().is_none_or(|st| st.2.is_some()) && first_graders.insert(l.clone()) {
                        v.push((true, format!("{}-09-01", e["data"]["target_year"]), None));
                    }
                }
            }
            _ => {}
        }
    }
    let students: BTreeSet<&String> = stays
        .iter()
        .filter(|(_, v)| v.iter().any(|(school, from, to)| *school && in_year(from, to.as_deref())))
        .map(|(l, _)| l)
        .collect();
    // Someone left school before the year: the denominator is not everyone ever enrolled.
    assert!(stays.values().any(|v| v.iter().any(|(school, _, to)| *school && to.is_some())));
    assert!(students.len() < stays.values().filter(|v| v.iter().any(|st| st.0)).count());
    let learner_of = |e: &Value| s(&e["stream"]).trim_start_matches("learner/").to_owned();
    let count = |set: BTreeSet<String>| set.iter().filter(|l| students.contains(l)).count() as u64;
    let revoked: BTreeSet<String> = of_type("portfolio.achievement_revoked")
        .map(|e| format!("{}/{}", e["stream"], e["data"]["achievement_id"]))
        .collect();
    let profile: BTreeSet<String> = of_type("portfolio.achievement_attested")
        .filter(|e| {
            s(&e["data"]["date"]) < end
                && !revoked.contains(&format!("{}/{}", e["stream"], e["data"]["achievement_id"]))
        })
        .map(learner_of)
        .collect();
    let recommended: BTreeSet<String> =
        of_type("digital.recommendation_offered").filter(|e| dated_in(e, "offered_on")).map(learner_of).collect();
    let access: BTreeSet<String> = of_type("digital.learner_content_access_granted")
        .filter(|e| s(&e["data"]["granted_on"]) < end)
        .map(learner_of)
        .collect();
    let pupils = students.len() as u64;
    let pair = |i: usize| (shares[i]["numerator"].as_u64().unwrap(), shares[i]["denominator"].as_u64().unwrap());
    assert_eq!(ind["digital_maturity"]["denominators"]["school_students"]["count"], pupils);
    assert_eq!(pair(0), (count(profile), pupils));
    assert_eq!(pair(1), (count(recommended), pupils));
    assert!(pair(1).0 > 0);
    assert_eq!(pair(3), (count(access), pupils));
    let assigned = || of_type("digital.assignment_recorded").filter(|e| dated_in(e, "assigned_on"));
    let assignments = assigned().count() as u64;
    let automatic = assigned().filter(|e| e["data"]["checking"] == "automatic").count() as u64;
    assert!(assignments > 0);
    assert_eq!(pair(4), (automatic, assignments));
    // Teachers: a grant holds from `valid_from` to `valid_until`, ended by a revocation or a
    // rotation (whose new key goes on from then); instants as UTC dates (the demo writes them
    // before 21:00 UTC, the same local day).
    let day = |v: &Value| v.as_str().map(|t| t[..10].to_owned());
    let mut grants: HashMap<String, (String, String, Option<String>)> = HashMap::new();
    for e in &entries {
        let d = &e["data"];
        let at = day(&e["occurred_at"]);
        match e["type"].as_str().unwrap() {
            "keys.granted" => {
                let roles = d["roles"].as_array().unwrap();
                if d["scope"]["institution"].as_str().is_some_and(|i| schools.contains(i))
                    && roles.iter().any(|r| r == "teacher" || r == "class_teacher")
                    && !roles.iter().any(|r| r == "migration")
                {
                    grants.insert(
                        s(&d["key"]),
                        (s(&d["holder"]), day(&d["valid_from"]).unwrap(), day(&d["valid_until"])),
                    );
                }
            }
            "keys.revoked" | "keys.rotated" => {
                let old = if e["type"] == "keys.revoked" { s(&d["key"]) } else { s(&d["old_key"]) };
                let on = day(&d["effective_at"]).or(at.clone()).unwrap();
                if let Some(g) = grants.get_mut(&old) {
                    let on = on.max(g.1.clone());
                    let next = (g.0.clone(), on.clone(), g.2.clone());
                    g.2 = Some(g.2.clone().map_or(on.clone(), |t| t.min(on)));
                    if e["type"] == "keys.rotated" {
                        grants.insert(s(&d["new_key"]), next);
                    }
                }
            }
            _ => {}
        }
    }
    let school_teachers: BTreeSet<String> =
        grants.values().filter(|(_, from, to)| in_year(from, to.as_deref())).map(|g| g.0.clone()).collect();
    let with_access: BTreeSet<String> = of_type("digital.teacher_content_access_granted")
        .filter(|e| s(&e["data"]["granted_on"]) < end)
        .map(|e| s(&e["stream"]).trim_start_matches("teacher/").to_owned())
        .collect();
    assert_eq!(pair(2), (school_teachers.intersection(&with_access).count() as u64, school_teachers.len() as u64));
    assert_eq!(ind["digital_maturity"]["index"]["computable"], true);

    // 1st grade: applications and enrolments per school and year.
    let mut apps: BTreeMap<(String, i64), BTreeSet<String>> = BTreeMap::new();
    let mut enrolled: BTreeMap<(String, i64), BTreeSet<String>> = BTreeMap::new();
    for e in &entries {
        let school = s(&e["stream"]).trim_start_matches("institution/").to_owned();
        let year = e["data"]["target_year"].as_i64().unwrap_or(0);
        match e["type"].as_str().unwrap() {
            "enrolment.application_submitted" => {
                apps.entry((school, year)).or_default().insert(s(&e["data"]["application_id"]));
            }
            "enrolment.order_issued" => {
                let set = enrolled.entry((school, year)).or_default();
                set.extend(e["data"]["applications"].as_array().unwrap().iter().map(s));
            }
            _ => {}
        }
    }
    assert!(!apps.is_empty());
    for ((school, year), a) in &apps {
        let v = view("first-grade", &[school, &year.to_string()]);
        assert_eq!(v["applications"].as_array().unwrap().len(), a.len(), "{school} {year}");
        let want = enrolled.get(&(school.clone(), *year)).map_or(0, BTreeSet::len);
        assert_eq!(v["enrolled"], want, "{school} {year}");
    }

    // The busiest class journal (one class in one academic year): lessons, marks per learner,
    // weighted averages with corrections. The academic year of a date: September to August.
    let year_of = |date: &Value| {
        let d = s(date);
        let (y, m): (i64, u32) = (d[..4].parse().unwrap(), d[5..7].parse().unwrap());
        if m >= 9 {
            y
        } else {
            y - 1
        }
    };
    let mut grades: HashMap<(String, String, i64, String), u64> = HashMap::new();
    // Every year a class has any journal record in (lessons, marks, attendance, grades).
    let mut class_years: HashMap<(String, String), BTreeSet<i64>> = HashMap::new();
    let journal_types = [
        "journal.lesson_held",
        "journal.grade_recorded",
        "journal.attendance_marked",
        "journal.term_grade_set",
        "journal.year_grade_set",
        "journal.intermediate_attestation_recorded",
    ];
    for e in entries.iter().filter(|e| journal_types.iter().any(|t| e["type"] == *t)) {
        let d = &e["data"];
        let year = match (d["academic_year"].as_i64(), d.get("lesson_date")) {
            (Some(year), _) => year,
            (None, Some(date)) => year_of(date),
            (None, None) => continue,
        };
        let inst = match d["institution"].as_str() {
            Some(i) => i.to_owned(),
            None => s(&e["stream"]).trim_start_matches("institution/").to_owned(),
        };
        let Some(class) = d["class"].as_str() else { continue };
        if e["type"] == "journal.grade_recorded" {
            *grades.entry((inst.clone(), class.to_owned(), year, s(&d["subject"]))).or_default() += 1;
        }
        class_years.entry((inst, class.to_owned())).or_default().insert(year);
    }
    let lessons_of = |inst: &str, class: &str, year: i64, subject: &str| {
        entries
            .iter()
            .filter(|e| e["type"] == "journal.lesson_held" && e["stream"] == format!("institution/{inst}"))
            .filter(|e| e["data"]["class"] == class && e["data"]["subject"] == subject)
            .filter(|e| year_of(&e["data"]["lesson_date"]) == year)
            .count()
    };
    // The journal with lessons and the most marks.
    let ((inst, class, year, subject), _) = grades
        .iter()
        .max_by_key(|((i, c, y, s), n)| (lessons_of(i, c, *y, s) > 0, **n, (i.clone(), c.clone(), *y, s.clone())))
        .unwrap();
    let lessons = lessons_of(inst, class, *year, subject);
    // Each grade's current mark: the latest correction of it (or of a correction of it) wins; a
    // correction without a mark annuls.
    let mut root: HashMap<String, String> = HashMap::new();
    let mut current: HashMap<String, Option<i64>> = HashMap::new();
    let mut order: Vec<(String, String, i64)> = Vec::new(); // (learner, grade id, weight)
    for e in &entries {
        let d = &e["data"];
        match e["type"].as_str().unwrap() {
            "journal.grade_recorded"
                if d["institution"] == *inst
                    && d["class"] == *class
                    && d["subject"] == *subject
                    && year_of(&d["lesson_date"]) == *year =>
            {
                let id = s(&e["id"]);
                root.insert(id.clone(), id.clone());
                current.insert(id.clone(), d["mark"].as_i64());
                let learner = s(&e["stream"]).trim_start_matches("learner/").to_owned();
                order.push((learner, id, d["weight"].as_i64().unwrap()));
            }
            "journal.record_corrected" => {
                let Some(target) = root.get(&s(&d["corrected_event_id"])).cloned() else { continue };
                root.insert(s(&e["id"]), target.clone());
                let mark = d["mark"].as_i64().or_else(|| d["mark"].as_str().and_then(|m| m.parse().ok()));
                current.insert(target, mark);
            }
            _ => {}
        }
    }
    let journal = view("journals", &[inst, class, subject, &year.to_string()]);
    assert_eq!(journal["academic_year"], *year);
    // Without a year: the newest the class has marks in.
    let newest = *class_years[&(inst.clone(), class.clone())].last().unwrap();
    match ledger.read_side().view("journals", &[inst, class, subject]) {
        Ok(a) => assert_eq!(a.view.body["academic_year"], newest, "{inst} {class} {subject}"),
        // The newest year's journal of the class may lack this subject.
        Err(e) => assert!(format!("{e:?}").contains(&format!("academic year {newest}")), "{e:?}"),
    }
    assert!(lessons > 0 && order.len() > 1, "the busiest journal has lessons and marks");
    assert_eq!(journal["lessons"].as_array().unwrap().len(), lessons);
    let rows: BTreeMap<String, &Value> =
        journal["learners"].as_array().unwrap().iter().map(|r| (s(&r["learner"]), r)).collect();
    let mut per_learner: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
    for (learner, id, weight) in &order {
        let e = per_learner.entry(learner.clone()).or_default();
        e.0 += 1;
        if let Some(Some(mark)) = current.get(id) {
            e.1 += mark * weight;
            e.2 += weight;
        }
    }
    assert!(per_learner.values().any(|(_, _, den)| *den > 0));
    for (learner, (marks, num, den)) in &per_learner {
        let row = rows.get(learner).unwrap_or_else(|| panic!("{learner} has a row in {inst} {class} {subject}"));
        assert_eq!(row["marks"].as_array().unwrap().len() as u64, *marks, "{learner}");
        if *den > 0 {
            assert_eq!(
                (row["average"]["numerator"].as_i64(), row["average"]["denominator"].as_i64()),
                (Some(*num), Some(*den)),
                "{learner}"
            );
        }
    }

    // Achievements, revoked ones included, per learner.
    let mut achievements: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in entries.iter().filter(|e| s(&e["type"]).starts_with("portfolio.achievement_")) {
        let learner = s(&e["stream"]).trim_start_matches("learner/").to_owned();
        achievements.entry(learner).or_default().insert(s(&e["data"]["achievement_id"]));
    }
    assert!(!achievements.is_empty());
    for (learner, ids) in &achievements {
        let profile = view("profiles", &[learner]);
        let shown: BTreeSet<String> =
            profile["achievements"].as_array().unwrap().iter().map(|a| s(&a["achievement_id"])).collect();
        assert_eq!(&shown, ids, "{learner}");
    }
}

/// Through the binary: `rebuild` writes a fresh snapshot from the log alone, the audit checks it
/// (clean), and names a snapshot whose bytes were changed (exit 1), while `rebuild` over it
/// writes a good one again.
#[test]
fn rebuild_writes_a_snapshot_that_the_audit_checks() {
    let zachetka = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"));
        c.env("RUST_LOG", "warn").env_remove("ZACHETKA_DATABASE_URL").stdin(std::process::Stdio::null());
        c
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("region");
    let out = zachetka()
        .args(["demo", "--learners", "60", "--teachers", "30", "--events", "500", "--no-serve", "--dir"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = zachetka().args(["rebuild", "--dir"]).arg(&d).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("read models and the rule state"), "{stderr}");
    let snaps: Vec<_> = std::fs::read_dir(d.join("snapshots")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!snaps.is_empty());
    let audit = zachetka().args(["audit", "--dir"]).arg(&d).output().unwrap();
    assert_eq!(audit.status.code(), Some(0), "{}", String::from_utf8_lossy(&audit.stdout));
    let newest = snaps.iter().max().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    std::fs::write(newest, &bytes).unwrap();
    let audit = zachetka().args(["audit", "--dir"]).arg(&d).output().unwrap();
    let report = String::from_utf8_lossy(&audit.stdout);
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(audit.status.code(), Some(1), "{report}");
    assert!(report.contains(&name), "the report names {name}: {report}");
}

/// Review s12 M3: a snapshot directory that cannot be written made the read side retry a full
/// snapshot (every model serialized under the rule copy's lock) after every batch, with a log
/// line per try and nothing in status. Now a failed write counts as the period's attempt (the
/// next try comes a period later), is counted, and shows as "snapshot write failing: ..." in
/// status until a write succeeds.
#[test]
fn a_snapshot_directory_that_cannot_be_written_is_retried_once_a_period_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    // Tests run as root, whom permissions do not stop: a regular file where the directory goes.
    std::fs::write(&snapshots, b"not a directory").unwrap();
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 40, teachers: 10, events: 400 });
    let every = 10;
    let ledger = open(dir.path(), &region.authority_did(), Some(snapshot_options(dir.path(), every)));
    let read = ledger.read_side();
    // Small batches, each settled (applied, and any snapshot it owed tried) before the next: the
    // policy, counted from the last attempt, owes one try per `every` entries, not one per batch.
    let (mut tries, mut tried_at, mut batches) = (0, 0, 0);
    while batches < 30 {
        let batch = region.next_batch(3);
        assert!(!batch.is_empty());
        append_all(&ledger, batch);
        let size = ledger.head().0.tree_size;
        read.wait_settled_blocking(size);
        if size - tried_at >= every {
            (tries, tried_at) = (tries + 1, size);
        }
        batches += 1;
    }
    let size = ledger.head().0.tree_size;
    let status = read.status(size);
    assert!(tries >= 3 && tries < batches, "{tries} tries in {batches} batches");
    assert_eq!(status.snapshot_failures, tries, "one try a period");
    assert_eq!(status.snapshot_tree_size, None);
    let failing: Vec<_> = status.warnings.iter().filter(|w| w.starts_with("snapshot write failing: ")).collect();
    assert_eq!(failing.len(), 1, "{:?}", status.warnings);
    assert!(read.snapshot_failing().is_some());

    // Fixed: the next period's write succeeds, and the warning goes.
    std::fs::remove_file(&snapshots).unwrap();
    while read.status(ledger.head().0.tree_size).snapshot_tree_size.is_none() {
        let batch = region.next_batch(3);
        assert!(!batch.is_empty(), "the region ran out before a snapshot was written");
        append_all(&ledger, batch);
        read.wait_settled_blocking(ledger.head().0.tree_size);
    }
    let status = read.status(ledger.head().0.tree_size);
    assert_eq!(status.snapshot_failures, tries);
    assert!(!status.warnings.iter().any(|w| w.starts_with("snapshot write failing")), "{:?}", status.warnings);
    assert_eq!(read.snapshot_failing(), None);
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 1);
}
