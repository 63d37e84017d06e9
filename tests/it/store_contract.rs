//! The store contract (src/store/mod.rs), run against every backend. A new backend adds one
//! `#[test]` that calls [`run_contract`] with its factory.

use std::path::Path;
use std::sync::Arc;
use zachetka::checkpoint::{LedgerSigner, TreeHead};
use zachetka::merkle::MemoryTree;
use zachetka::store::{BatchEntry, CommitBatch, IdRecord, LedgerConfig, Store, StoreError, StreamHead};

use super::support::{ledger_key, ORIGIN};

/// Opens (or reopens) a backend's store at `dir`.
pub trait Backend {
    fn open(&self, dir: &Path) -> Arc<dyn Store>;
}

struct Sled;

impl Backend for Sled {
    fn open(&self, dir: &Path) -> Arc<dyn Store> {
        Arc::new(zachetka::store::sled::SledStore::open(dir).unwrap())
    }
}

/// The sled store with an index sealed into a new tier every 3 entries (src/store/tiers.rs).
struct SledTiers;

impl Backend for SledTiers {
    fn open(&self, dir: &Path) -> Arc<dyn Store> {
        let store = zachetka::store::sled::SledStore::open_early_with(dir, 3).unwrap();
        store.ready().unwrap();
        Arc::new(store)
    }
}

/// Builds a consistent batch of `n` entries after `tree` (fake but well-formed entries).
fn batch(
    tree: &mut MemoryTree,
    n: u64,
    stream: &str,
    heads: &mut std::collections::HashMap<String, StreamHead>,
) -> CommitBatch {
    let first_seq = tree.size();
    let mut entries = Vec::new();
    for i in 0..n {
        let seq = first_seq + i;
        let bytes = format!("{{\"entry\":{seq}}}").into_bytes();
        let leaf = zachetka::merkle::leaf_hash(&bytes);
        let hashes = tree.push(leaf).to_vec();
        let h = heads.entry(stream.to_owned()).or_insert(StreamHead { len: 0, last_leaf_hash: leaf, last_seq: seq });
        let version = h.len;
        *h = StreamHead { len: version + 1, last_leaf_hash: leaf, last_seq: seq };
        entries.push(BatchEntry {
            bytes,
            hashes,
            id: super::support::id(seq),
            id_record: IdRecord {
                seq,
                stream_version: version,
                tree_size: first_seq + n,
                leaf_hash: leaf,
                digest: [seq as u8; 32],
                stream: stream.to_owned(),
                event_type: format!("test.entry_{seq}"),
            },
            stream: stream.to_owned(),
        });
    }
    let head = TreeHead { tree_size: tree.size(), root_hash: tree.root() };
    let checkpoint = LedgerSigner::new(ORIGIN, ledger_key()).sign(&head);
    CommitBatch { first_seq, entries, stream_heads: vec![(stream.to_owned(), heads[stream])], head, checkpoint }
}

fn config() -> LedgerConfig {
    LedgerConfig {
        origin: ORIGIN.into(),
        authority: "did:key:z6Mk".into(),
        verifier_key: LedgerSigner::new(ORIGIN, ledger_key()).verifier_key(),
        rules: None,
    }
}

/// Every clause of the contract, in order, on a fresh directory.
pub fn run_contract(backend: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = MemoryTree::default();
    let mut heads = std::collections::HashMap::new();
    {
        let store = backend.open(dir.path());
        // Empty.
        assert!(store.config().unwrap().is_none());
        assert!(store.head().unwrap().is_none());
        assert!(store.raw_entries(0, 10).unwrap().is_empty());
        // Init once.
        store.init(&config()).unwrap();
        assert!(matches!(store.init(&config()), Err(StoreError::AlreadyInitialized)));
        assert_eq!(store.config().unwrap(), Some(config()));
        // Ordering: the first batch must start at 0.
        let mut t2 = tree.clone();
        let mut h2 = heads.clone();
        t2.push(zachetka::merkle::leaf_hash(b"skip"));
        let wrong = batch(&mut t2, 2, "s/a", &mut h2);
        assert!(matches!(store.commit(&wrong), Err(StoreError::NotContiguous { got: 1, want: 0 })));
        assert!(store.head().unwrap().is_none(), "a refused batch leaves nothing");
        // Two batches.
        let b1 = batch(&mut tree, 3, "s/a", &mut heads);
        store.commit(&b1).unwrap();
        let b2 = batch(&mut tree, 2, "s/b", &mut heads);
        store.commit(&b2).unwrap();
        assert!(matches!(store.commit(&b1), Err(StoreError::NotContiguous { got: 0, want: 5 })));
        check_state(&*store, &tree, &b2);
    }
    // Durability: everything committed is there after reopening.
    {
        let store = backend.open(dir.path());
        let b2 = batch(&mut tree.clone(), 0, "s/b", &mut heads.clone());
        check_state(&*store, &tree, &b2);
        // Concurrency: readers during commits never see a head without its entries.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || rounds == 0 {
                    if let Some((h, _)) = store.head().unwrap() {
                        assert_eq!(store.raw_entries(0, h.tree_size).unwrap().len() as u64, h.tree_size);
                    }
                    rounds += 1;
                }
                rounds
            })
        };
        for _ in 0..20 {
            let b = batch(&mut tree, 7, "s/c", &mut heads);
            store.commit(&b).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(store.head().unwrap().unwrap().0.tree_size, 145);
        assert_eq!(store.stream_seqs("s/c", 0, 1000).unwrap(), (5..145).collect::<Vec<u64>>());
        // Old checkpoints stay servable by tree size, the newest and the oldest alike.
        for (size, signed) in [(12, true), (13, false), (145, true), (146, false), (3, true)] {
            assert_eq!(store.checkpoint_at(size).unwrap().is_some(), signed, "tree size {size}");
        }
        assert!(store.stats().unwrap().bytes_on_disk > 0);
    }
}

fn check_state(store: &dyn Store, tree: &MemoryTree, last: &CommitBatch) {
    let (head, note) = store.head().unwrap().unwrap();
    assert_eq!(head.tree_size, 5);
    assert_eq!(head.root_hash, tree.root());
    assert_eq!(note, last.checkpoint);
    let raw = store.raw_entries(0, 100).unwrap();
    assert_eq!(raw.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(&raw[3].bytes[..], b"{\"entry\":3}");
    assert_eq!(store.entries(1, 2).unwrap(), vec![b"{\"entry\":1}".to_vec(), b"{\"entry\":2}".to_vec()]);
    // Scattered entries by seq (a learner's record), each checked; a seq beyond the head is an
    // error naming it, never a shorter answer.
    assert_eq!(
        store.entries_at(&[0, 2, 4]).unwrap(),
        [0, 2, 4].map(|i| (i, format!("{{\"entry\":{i}}}").into_bytes())).to_vec()
    );
    assert_eq!(store.entries_at(&[]).unwrap(), vec![]);
    match store.entries_at(&[1, 5]) {
        Err(StoreError::Corrupt { what, position, .. }) => assert_eq!((what, position), ("entry", 5)),
        other => panic!("a seq beyond the head must be refused: {other:?}"),
    }
    // Stored hashes serve roots and proofs exactly as the reference tree.
    let reader = zachetka::store::StoreHashes(store);
    for n in 1..=5 {
        assert_eq!(zachetka::merkle::root(n, &reader).unwrap(), tree.root_at(n));
    }
    assert_eq!(
        zachetka::merkle::prove_inclusion(1, 5, &reader).unwrap(),
        zachetka::merkle::prove_inclusion(1, 5, tree).unwrap()
    );
    let rec = store.id_record(&super::support::id(3)).unwrap().unwrap();
    assert_eq!((rec.seq, rec.stream_version, rec.tree_size), (3, 0, 5));
    // The id record keeps the event's stream and type (the rules' lookups read no entry).
    assert_eq!((rec.stream.as_str(), rec.event_type.as_str()), ("s/b", "test.entry_3"));
    assert!(store.id_record(&super::support::id(99)).unwrap().is_none());
    assert_eq!(store.stream_head("s/a").unwrap().unwrap().len, 3);
    assert_eq!(store.stream_head("s/b").unwrap().unwrap().last_seq, 4);
    assert!(store.stream_head("s/none").unwrap().is_none());
    assert_eq!(store.stream_seqs("s/a", 1, 10).unwrap(), vec![1, 2]);
    assert_eq!(store.stream_seqs("s/a", 0, 1).unwrap(), vec![0]);
    let cps = store.checkpoints(0, 10).unwrap();
    assert_eq!(cps.iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 5]);
    assert_eq!(store.checkpoints(4, 10).unwrap().len(), 1);
    // The note signed at exactly a tree size: each batch's own, none inside a batch or beyond.
    assert_eq!(store.checkpoint_at(5).unwrap(), Some(last.checkpoint.clone()));
    assert_eq!(store.checkpoint_at(3).unwrap().as_ref(), Some(&cps[0].1));
    let body = String::from_utf8(cps[0].1.clone()).unwrap();
    assert_eq!(body.lines().nth(1), Some("3"), "the note at 3 is the checkpoint of tree size 3: {body}");
    for inside_or_beyond in [0, 1, 2, 4, 6, 1000, u64::MAX] {
        assert_eq!(store.checkpoint_at(inside_or_beyond).unwrap(), None, "tree size {inside_or_beyond}");
    }
}

#[test]
fn sled_store_keeps_the_contract() {
    run_contract(&Sled);
}

#[test]
fn sled_store_with_its_index_in_tiers_keeps_the_contract() {
    run_contract(&SledTiers);
}

/// One PostgreSQL schema; reopening connects again to the same schema.
struct Postgres(String);

impl Backend for Postgres {
    fn open(&self, _dir: &Path) -> Arc<dyn Store> {
        Arc::new(zachetka::store::postgres::PgStore::open(&self.0).unwrap())
    }
}

#[test]
fn postgres_store_keeps_the_contract() {
    let Some(url) = super::support::pg_url() else { return };
    run_contract(&Postgres(super::support::pg_schema(&url)));
}

fn flip_byte(path: &std::path::Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 1;
    f.write_all_at(&b, at).unwrap();
}

fn committed_store(dir: &Path, n: u64) -> MemoryTree {
    let store = zachetka::store::sled::SledStore::open(dir).unwrap();
    store.init(&config()).unwrap();
    let mut tree = MemoryTree::default();
    let mut heads = std::collections::HashMap::new();
    store.commit(&batch(&mut tree, n, "s/a", &mut heads)).unwrap();
    tree
}

#[test]
fn sled_recovery_refuses_damage_below_the_head() {
    let dir = tempfile::tempdir().unwrap();
    committed_store(dir.path(), 4);
    let paths = zachetka::store::sled::StorePaths::of(dir.path());
    let len = std::fs::metadata(&paths.entries).unwrap().len();
    flip_byte(&paths.entries, len - 2);
    match zachetka::store::sled::SledStore::open(dir.path()) {
        Err(StoreError::Corrupt { what, position, .. }) => assert_eq!((what, position), ("entry", 3)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a damaged head entry must not be served"),
    }
}

#[test]
fn sled_entries_at_names_an_entry_damaged_under_a_serving_store() {
    let dir = tempfile::tempdir().unwrap();
    committed_store(dir.path(), 4);
    let store = zachetka::store::sled::SledStore::open(dir.path()).unwrap();
    let paths = zachetka::store::sled::StorePaths::of(dir.path());
    // offsets.dat: each entry's offset in entries.dat, 8 bytes big-endian.
    let offsets = std::fs::read(&paths.offsets).unwrap();
    let at = u64::from_be_bytes(offsets[8..16].try_into().unwrap());
    flip_byte(&paths.entries, at + 3);
    assert_eq!(store.entries_at(&[0]).unwrap().len(), 1, "entry 0 is untouched");
    for wanted in [&[1][..], &[0, 1, 3], &[1, 3]] {
        match store.entries_at(wanted) {
            Err(StoreError::Corrupt { what, position, .. }) => assert_eq!((what, position), ("entry", 1), "{wanted:?}"),
            other => panic!("damage must be refused: {other:?}"),
        }
    }
    // An entry read past, not wanted, is not judged: damage in 1 does not refuse 0 and 2.
    assert_eq!(store.entries_at(&[0, 2]).unwrap().iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 2]);
}

#[test]
fn sled_recovery_refuses_files_shorter_than_the_head() {
    let dir = tempfile::tempdir().unwrap();
    committed_store(dir.path(), 4);
    let paths = zachetka::store::sled::StorePaths::of(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&paths.offsets).unwrap();
    f.set_len(3 * 8).unwrap();
    match zachetka::store::sled::SledStore::open(dir.path()) {
        // The file and where it ends (review s11, ops finding 12: not the tree size).
        Err(StoreError::Corrupt { what, position, .. }) => assert_eq!((what, position), ("offsets.dat", 3 * 8)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("lost acknowledged data must not be papered over"),
    }
}

/// A batch whose files were written (even fsynced) but whose index commit never happened is a
/// torn tail: dropped on open, never served, and the next batch takes its place.
#[test]
fn sled_recovery_drops_a_torn_tail() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut tree = committed_store(dir.path(), 4);
    let paths = zachetka::store::sled::StorePaths::of(dir.path());
    let sizes = |p: &zachetka::store::sled::StorePaths| {
        [&p.entries, &p.offsets, &p.hashes].map(|f| std::fs::metadata(f).unwrap().len())
    };
    let before = sizes(&paths);
    for (f, junk) in [(&paths.entries, 700), (&paths.offsets, 13), (&paths.hashes, 64 + 5)] {
        std::fs::OpenOptions::new().append(true).open(f).unwrap().write_all(&vec![0xAB; junk]).unwrap();
    }
    let store = zachetka::store::sled::SledStore::open(dir.path()).unwrap();
    assert_eq!(sizes(&paths), before, "the torn tail is truncated");
    assert_eq!(store.raw_entries(0, 100).unwrap().len(), 4, "and never served");
    let mut heads = std::collections::HashMap::new();
    heads.insert("s/a".to_owned(), store.stream_head("s/a").unwrap().unwrap());
    store.commit(&batch(&mut tree, 2, "s/a", &mut heads)).unwrap();
    assert_eq!(store.head().unwrap().unwrap().0.tree_size, 6);
    assert_eq!(store.entries(4, 2).unwrap(), vec![b"{\"entry\":4}".to_vec(), b"{\"entry\":5}".to_vec()]);
}

/// A served old checkpoint is read by its index entry, and a record damaged under an open store
/// is refused with its tree size, never served (the audit still gets it via `checkpoints`).
#[test]
fn sled_checkpoint_at_refuses_a_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = zachetka::store::sled::SledStore::open(dir.path()).unwrap();
    store.init(&config()).unwrap();
    let mut tree = MemoryTree::default();
    let mut heads = std::collections::HashMap::new();
    let first = batch(&mut tree, 2, "s/a", &mut heads);
    store.commit(&first).unwrap();
    store.commit(&batch(&mut tree, 3, "s/a", &mut heads)).unwrap();
    assert_eq!(store.checkpoint_at(2).unwrap(), Some(first.checkpoint.clone()));
    // The first record starts at offset 0; a byte inside its note.
    flip_byte(&zachetka::store::sled::StorePaths::of(dir.path()).checkpoints, 80);
    match store.checkpoint_at(2) {
        Err(StoreError::Corrupt { what, position, .. }) => assert_eq!((what, position), ("checkpoint", 2)),
        other => panic!("a damaged checkpoint record must be refused, got {other:?}"),
    }
    assert!(store.checkpoint_at(5).unwrap().is_some(), "the other record is intact");
}
