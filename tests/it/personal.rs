//! Personal data stays out of the log and is erasable: records are sealed per subject, erasure
//! destroys the key (a restored copy of the ciphertext is unreadable), and the log's audit and
//! proofs are untouched by it.

use super::support::*;
use serde_json::json;
use zachetka::personal::{PersonalError, PersonalStore};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn dir_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(dir_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn records_are_sealed_per_subject_and_erasure_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonalStore::open(dir.path()).unwrap();
    let subject = "learner/47-000123";
    let record = json!({"name": "Иванова Мария Петровна", "birth_date": "2015-03-14", "snils": "112-233-445 95"});
    store.put(subject, &record).unwrap();
    assert_eq!(store.get(subject).unwrap(), Some(record.clone()));
    let sealed = store.sealed(subject).unwrap().unwrap();
    assert!(!contains(&sealed, "Иванова".as_bytes()), "stored sealed, never in clear");
    assert!(!contains(&dir_bytes(dir.path()), "112-233-445 95".as_bytes()), "no plaintext on disk");
    // Refusals.
    assert!(matches!(store.put("learner/../x y", &record), Err(PersonalError::BadSubject(_))));
    assert!(matches!(store.put(subject, &json!({"age": 11})), Err(PersonalError::BadRecord)));
    assert!(matches!(store.put(subject, &json!(["x"])), Err(PersonalError::BadRecord)));
    // A record moved under another subject does not decrypt.
    store.put("learner/47-000124", &json!({"name": "Петров"})).unwrap();
    let other = store.sealed("learner/47-000124").unwrap().unwrap();
    // Erasure: the key goes first; a restored copy of the ciphertext (a backup) is unreadable.
    assert!(store.erase(subject).unwrap());
    assert_eq!(store.get(subject).unwrap(), None);
    assert!(!store.erase(subject).unwrap(), "nothing left to erase");
    drop(store);
    let db = zachetka::store::sled::open_sled(&sled::Config::new().path(dir.path())).unwrap();
    db.open_tree("records").unwrap().insert(subject, sealed).unwrap();
    db.open_tree("records").unwrap().insert("learner/47-000124", other.clone()).unwrap();
    drop(db);
    let store = PersonalStore::open(dir.path()).unwrap();
    assert_eq!(store.get(subject).unwrap(), None, "without its key the old ciphertext reads as nothing");
    assert_eq!(store.get("learner/47-000124").unwrap(), Some(json!({"name": "Петров"})));
}

#[test]
fn erasing_a_learner_leaves_the_log_and_its_proofs_valid() {
    let (dir, ledger) = temp_ledger();
    let learner = "learner/47-000777";
    let receipts = ledger.append_blocking((0..20u64).map(|i| grade(i, learner, None)).collect());
    assert!(receipts.iter().all(Result::is_ok));
    let personal = PersonalStore::open(&dir.path().join("personal")).unwrap();
    personal.put(learner, &json!({"name": "Смирнов Алексей", "birth_date": "2014-01-02"})).unwrap();
    check_log(&ledger);
    let paths = zachetka::store::sled::StorePaths::of(dir.path());
    let log_bytes: Vec<u8> =
        [&paths.entries, &paths.offsets, &paths.hashes].iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!contains(&log_bytes, "Смирнов".as_bytes()), "the log never holds the name");
    let (head_before, note_before) = ledger.head();
    personal.erase(learner).unwrap();
    assert_eq!(personal.get(learner).unwrap(), None);
    // Nothing of the log changed: same head, same checkpoint, every proof and the audit hold.
    let (head_after, note_after) = ledger.head();
    assert_eq!((head_before, note_before), (head_after, note_after));
    check_log(&ledger);
}
