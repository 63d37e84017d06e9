//! The sled store's journal: the commit point is a journal record, and sled (the index) is
//! flushed only now and then, so a crash leaves an index behind the log. These tests build the
//! exact on-disk states such crashes leave (an index from before a batch, the batch's journal
//! record whole, torn or already applied) and require that opening rebuilds the index, serves
//! every committed entry, drops what never committed, and audits clean.

use super::support::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zachetka::ledger::Limits;
use zachetka::store::sled::{SledStore, StorePaths};
use zachetka::store::Store;

/// Appends `batches` batches of 6 grades (ids from `first`) to the store in `dir`, then closes it
/// cleanly (the index flushed, the journal empty). Returns the journal as it was just before the
/// close: exactly the records of these batches.
fn append_and_close(dir: &Path, first: u64, batches: u64) -> Vec<u8> {
    let store = Arc::new(SledStore::open(dir).unwrap());
    let ledger = open_ledger(store.clone(), Limits::default());
    for b in 0..batches {
        let events = (0..6).map(|i| grade(first + b * 6 + i, &format!("learner/{}", i % 4), None)).collect();
        assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
    }
    let journal = std::fs::read(store.paths().journal).unwrap();
    drop(ledger);
    drop(store);
    assert_eq!(std::fs::metadata(StorePaths::of(dir).journal).unwrap().len(), 0, "a clean close empties the journal");
    journal
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

fn replace_index(dir: &Path, with: &Path) {
    let index = StorePaths::of(dir).index;
    std::fs::remove_dir_all(&index).unwrap();
    copy_dir(with, &index);
}

/// What the index says about entries `from..to` (ids `first..`): each id's record and each
/// stream's head, through the store's read methods.
fn index_view(store: &dyn Store, first_id: u64, n: u64) -> Vec<String> {
    let mut out: Vec<String> = (0..n).map(|i| format!("{:?}", store.id_record(&id(first_id + i)).unwrap())).collect();
    for s in 0..4 {
        let stream = format!("learner/{s}");
        out.push(format!(
            "{:?} {:?}",
            store.stream_head(&stream).unwrap(),
            store.stream_seqs(&stream, 0, 1000).unwrap()
        ));
    }
    out.push(format!("{:?}", store.checkpoints(0, 1000).unwrap()));
    out
}

/// A crash after batches' commit points but before any of their index writes reached sled's disk:
/// the index is from before them, the journal holds them. Opening replays them into the index.
/// Also the crash after an index flush but before the journal was emptied: replaying skips what
/// sled already holds. Either way the store answers exactly as one that never crashed.
#[test]
fn an_index_behind_the_log_is_rebuilt_from_the_journal() {
    for index_lags in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        drop(new_store(dir.path()));
        append_and_close(dir.path(), 0, 2);
        let before = tempfile::tempdir().unwrap();
        copy_dir(&StorePaths::of(dir.path()).index, before.path());
        let journal = append_and_close(dir.path(), 100, 3);
        assert!(!journal.is_empty());
        let expected = {
            let store = SledStore::open(dir.path()).unwrap();
            index_view(&store, 100, 18)
        };
        assert!(expected[..18].iter().all(|r| r.starts_with("Some")), "{expected:?}");
        if index_lags {
            replace_index(dir.path(), before.path());
        }
        std::fs::write(StorePaths::of(dir.path()).journal, &journal).unwrap();

        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        assert_eq!(store.head().unwrap().unwrap().0.tree_size, 30, "index lags: {index_lags}");
        assert_eq!(index_view(&*store, 100, 18), expected, "index lags: {index_lags}");
        // The ledger goes on from there: a retry is recognised, new events chain on.
        let ledger = open_ledger(store, Limits::default());
        let retry = ledger.append_blocking(vec![grade(117, "learner/1", None)]);
        assert_eq!(retry[0].as_ref().unwrap().seq, 29, "the retried event keeps its receipt");
        let next = ledger.append_blocking(vec![grade(200, "learner/0", Some(10))]);
        assert_eq!(next[0].as_ref().unwrap().seq, 30, "{next:?}");
        check_log(&ledger);
    }
}

/// A crash while a journal record was being written: the record is cut short (or its bytes
/// are damaged), so the batch never committed and nobody was told of it. Opening drops the
/// record and the batch's bytes in the log files, serves the head before it, and the next batch
/// takes its place.
#[test]
fn a_torn_journal_record_is_dropped_with_its_batch() {
    for tear in ["cut", "flipped", "garbage after"] {
        let dir = tempfile::tempdir().unwrap();
        drop(new_store(dir.path()));
        append_and_close(dir.path(), 0, 2);
        let before = tempfile::tempdir().unwrap();
        copy_dir(&StorePaths::of(dir.path()).index, before.path());
        let journal = append_and_close(dir.path(), 100, 1);
        replace_index(dir.path(), before.path());
        let torn = match tear {
            "cut" => journal[..journal.len() / 2].to_vec(),
            "flipped" => {
                let mut j = journal.clone();
                j[journal.len() / 2] ^= 1;
                j
            }
            _ => [&journal[..], &[0xAB; 40][..]].concat(),
        };
        let paths = StorePaths::of(dir.path());
        std::fs::write(&paths.journal, &torn).unwrap();

        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let want = if tear == "garbage after" { 18 } else { 12 };
        assert_eq!(store.head().unwrap().unwrap().0.tree_size, want, "{tear}");
        assert_eq!(store.raw_entries(0, 100).unwrap().len() as u64, want, "{tear}");
        let journal_len = std::fs::metadata(&paths.journal).unwrap().len();
        assert_eq!(journal_len, if tear == "garbage after" { journal.len() as u64 } else { 0 }, "{tear}");
        assert_eq!(store.id_record(&id(100)).unwrap().is_some(), tear == "garbage after", "{tear}");
        let ledger = open_ledger(store, Limits::default());
        let next = ledger.append_blocking(vec![grade(300, "learner/0", None)]);
        assert_eq!(next[0].as_ref().unwrap().seq, want, "{tear}: {next:?}");
        check_log(&ledger);
    }
}
