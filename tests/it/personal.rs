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
    // A fresh nonce per seal: the same record sealed twice differs.
    store.put(subject, &record).unwrap();
    assert_ne!(store.sealed(subject).unwrap().unwrap()[..12], sealed[..12]);
    // Refusals.
    assert!(matches!(store.put("learner/../x", &record), Err(PersonalError::BadSubject(_))));
    assert!(matches!(store.put("learner/x y", &record), Err(PersonalError::BadSubject(_))));
    assert!(matches!(store.put(subject, &json!({"age": 11})), Err(PersonalError::BadRecord)));
    assert!(matches!(store.put(subject, &json!(["x"])), Err(PersonalError::BadRecord)));
    let huge = "я".repeat(zachetka::personal::RECORD_BYTES_MAX);
    assert!(matches!(store.put(subject, &json!({"name": huge})), Err(PersonalError::BadRecord)));
    store.put("learner/47-000124", &json!({"name": "Петров"})).unwrap();
    // A backup of the sealed records, taken before the erasure...
    let backup = tempfile::tempdir().unwrap();
    copy_tree(&dir.path().join("records"), backup.path());
    // Erasure: the key goes first; a restored copy of the records (a backup) is unreadable.
    assert!(store.erase(subject).unwrap());
    assert_eq!(store.get(subject).unwrap(), None);
    assert_eq!(store.sealed(subject).unwrap(), None);
    assert!(!store.erase(subject).unwrap(), "nothing left to erase");
    drop(store);
    copy_tree(backup.path(), &dir.path().join("records"));
    let store = PersonalStore::open(dir.path()).unwrap();
    assert!(store.sealed(subject).unwrap().is_some(), "the backup is restored");
    assert_eq!(store.get(subject).unwrap(), None, "without its key the old ciphertext reads as nothing");
    assert_eq!(store.get("learner/47-000124").unwrap(), Some(json!({"name": "Петров"})));
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// Put several subjects, erase one, put more (and replace others), close: no file of the ledger
/// directory (log, store, personal keys and records) holds the erased subject's key in any
/// encoding, its plaintext (name, birth date, SNILS) or its sealed record, while every other
/// subject still decrypts. The earlier sled layout failed this: sled is log-structured, and its
/// `db` file kept the erased key beside its ciphertext.
#[test]
fn erasure_leaves_no_copy_of_the_key_or_the_data_in_any_file() {
    use base64::Engine;
    let (dir, ledger) = temp_ledger();
    let erased = "learner/47-000500";
    assert!(ledger.append_blocking(vec![grade(1, erased, None)])[0].is_ok());
    let personal_dir = dir.path().join("personal");
    let store = PersonalStore::open(&personal_dir).unwrap();
    let person = |i: u64| {
        json!({"name": format!("Кузнецова-{i} Анна Сергеевна"), "birth_date": format!("2013-0{}-1{}", 1 + i % 9, i % 10),
               "snils": format!("987-654-{i:03} 1{}", i % 10)})
    };
    let subject = |i: u64| format!("learner/47-{:06}", 500 + i);
    // 300 subjects over 256 shards: `subject(266)` shares the erased one's key and record
    // shards (the hash is fixed), so erasure rewrites a shard that keeps another key.
    for i in 0..300 {
        store.put(&subject(i), &person(i)).unwrap();
    }
    let secret = person(0);
    let key = store.key_for_tests(erased).unwrap().unwrap();
    let sealed = store.sealed(erased).unwrap().unwrap();
    assert_eq!(key.len(), 32);
    assert!(store.erase(erased).unwrap());
    for i in 300..360 {
        store.put(&subject(i), &person(i)).unwrap();
    }
    for i in (1..360).step_by(7) {
        store.put(&subject(i), &person(i + 1000)).unwrap();
    }
    drop(store);
    drop(ledger);
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("the key", key.clone()),
        ("the key in hex", hex.clone().into_bytes()),
        ("the key in HEX", hex.to_uppercase().into_bytes()),
        ("the key in base64", b64.encode(&key).trim_end_matches('=').as_bytes().to_vec()),
        ("the key in base64url", b64url.encode(&key).into_bytes()),
        ("the name", secret["name"].as_str().unwrap().as_bytes().to_vec()),
        ("the birth date", secret["birth_date"].as_str().unwrap().as_bytes().to_vec()),
        ("the SNILS", secret["snils"].as_str().unwrap().as_bytes().to_vec()),
        ("the sealed record", sealed[12..44].to_vec()),
    ];
    let files = files_under(dir.path());
    for (path, bytes) in &files {
        for (what, needle) in &needles {
            assert!(!contains(bytes, needle), "{what} of the erased subject is still in {}", path.display());
        }
    }
    assert!(files.iter().any(|(p, _)| p.starts_with(personal_dir.join("keys"))), "the scan saw the key store");
    let store = PersonalStore::open(&personal_dir).unwrap();
    assert_eq!(store.get(erased).unwrap(), None);
    assert!(store.key_for_tests(&subject(266)).unwrap().is_some());
    for i in 1..360 {
        let want = if i % 7 == 1 { person(i + 1000) } else { person(i) };
        assert_eq!(store.get(&subject(i)).unwrap(), Some(want), "{}", subject(i));
    }
}

/// Keys and records are readable by the owner alone: every directory 0700, every file 0600,
/// even when the personal directory already existed with a wider mode.
#[cfg(unix)]
#[test]
fn personal_files_and_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let personal = dir.path().join("personal");
    std::fs::create_dir(&personal).unwrap();
    std::fs::set_permissions(&personal, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = PersonalStore::open(&personal).unwrap();
    for i in 0..20 {
        store.put(&format!("learner/{i}"), &json!({"name": format!("Орлов {i}")})).unwrap();
    }
    store.erase("learner/3").unwrap();
    let mut seen = (0, 0);
    let mut stack = vec![personal.clone()];
    while let Some(d) = stack.pop() {
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        seen.0 += 1;
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
                seen.1 += 1;
            }
        }
    }
    assert!(seen.0 >= 3 && seen.1 >= 20, "{seen:?}");
}

/// A damaged shard is an error naming the file, never a panic or a silently empty record.
#[test]
fn a_damaged_shard_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = PersonalStore::open(dir.path()).unwrap();
    store.put("learner/1", &json!({"name": "Волков"})).unwrap();
    let (path, mut bytes) = files_under(&dir.path().join("keys")).pop().unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    match store.get("learner/1") {
        Err(e @ PersonalError::Corrupt { .. }) => assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// A store of the earlier layout (one sled database holding each key beside its ciphertext) is
/// migrated on open: the records read back, and sled's files, with every old key, are gone.
#[test]
fn the_sled_layout_is_migrated_and_its_files_removed() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let dir = tempfile::tempdir().unwrap();
    let subject = "learner/47-000321";
    let key = [0x42u8; 32];
    let nonce = [7u8; 12];
    {
        let db = zachetka::store::sled::open_sled(&sled::Config::new().path(dir.path())).unwrap();
        let cipher = chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key));
        let sealed = cipher
            .encrypt(
                chacha20poly1305::Nonce::from_slice(&nonce),
                Payload { msg: r#"{"name":"Соколова"}"#.as_bytes(), aad: subject.as_bytes() },
            )
            .unwrap();
        db.open_tree("keys").unwrap().insert(subject, &key[..]).unwrap();
        db.open_tree("records").unwrap().insert(subject, [&nonce[..], &sealed].concat()).unwrap();
        db.flush().unwrap();
    }
    assert!(dir.path().join("db").exists());
    let store = PersonalStore::open(dir.path()).unwrap();
    assert_eq!(store.get(subject).unwrap(), Some(json!({"name": "Соколова"})));
    assert!(!dir.path().join("db").exists() && !dir.path().join("conf").exists());
    for (path, bytes) in files_under(dir.path()) {
        assert!(!contains(&bytes, &key), "the old key is still in {}", path.display());
    }
    assert!(store.erase(subject).unwrap());
    assert_eq!(store.get(subject).unwrap(), None);
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
