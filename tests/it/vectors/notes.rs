//! Checkpoints as C2SP signed notes (DESIGN 3.3): the zachetka checkpoint made by Go's
//! sumdb/note, and the C2SP spec examples.

use super::{b64d, hash_b64, json, ledger_key, read, str_of, LEDGER};
use signed_note::{Note, StandardVerifier, VerifierList};
use zachetka::checkpoint::{parse_unverified, verify_checkpoint, CheckpointError, LedgerSigner, TreeHead};
use zachetka::keys::{b64, KeyPair};

const NOTE: &str = "zachetka/checkpoint-size10.note";

fn size10_root() -> zachetka::merkle::Hash {
    hash_b64(str_of(&json("zachetka/log.json")["roots_by_tree_size"], "10"))
}

/// Splits a note into its text (ending in "\n") and its signature lines.
fn split(note: &[u8]) -> (usize, usize) {
    let text_end = note.windows(2).position(|w| w == b"\n\n").unwrap() + 1;
    (text_end, text_end + 1)
}

#[test]
fn checkpoint_verifies_and_names_the_log_at_size_10() {
    let (_, vkey) = ledger_key();
    let note = read(NOTE);
    let cp = verify_checkpoint(&note, &vkey, LEDGER).unwrap();
    assert_eq!(cp.origin, LEDGER);
    assert_eq!(cp.head, TreeHead { tree_size: 10, root_hash: size10_root() });
    assert_eq!(cp.note, note);
    assert_eq!(parse_unverified(&note), Some((LEDGER.to_owned(), cp.head)));
}

#[test]
fn ledger_signer_reproduces_vkey_and_note() {
    let (seed, vkey) = ledger_key();
    let signer = LedgerSigner::new(LEDGER, KeyPair::from_seed(&seed));
    assert_eq!(signer.verifier_key(), vkey);
    let note = signer.sign(&TreeHead { tree_size: 10, root_hash: size10_root() });
    assert_eq!(String::from_utf8(note).unwrap(), String::from_utf8(read(NOTE)).unwrap());
}

#[test]
fn tampered_checkpoint_is_refused() {
    let (_, vkey) = ledger_key();
    let note = read(NOTE);
    let (text_end, sigs_start) = split(&note);
    // Every bit 0 of every byte of the body.
    for i in 0..text_end {
        let mut t = note.clone();
        t[i] ^= 1;
        assert!(verify_checkpoint(&t, &vkey, LEDGER).is_err(), "body byte {i}");
    }
    // Every byte of key id || signature, re-encoded as valid base64.
    let line = std::str::from_utf8(&note[sigs_start..]).unwrap();
    let prefix = format!("— {LEDGER} ");
    let b = b64d(line.strip_prefix(&prefix).unwrap().strip_suffix('\n').unwrap());
    assert_eq!(b.len(), 68);
    for i in 0..b.len() {
        for bit in [0u8, 7] {
            let mut s = b.clone();
            s[i] ^= 1 << bit;
            let t = [&note[..sigs_start], format!("{prefix}{}\n", b64(&s)).as_bytes()].concat();
            let err = verify_checkpoint(&t, &vkey, LEDGER).unwrap_err();
            assert!(
                matches!(err, CheckpointError::Unverified(_) | CheckpointError::MalformedNote(_)),
                "sig byte {i} bit {bit}: {err:?}"
            );
        }
    }
    // Without any signature line, or with the signature line cut.
    assert!(verify_checkpoint(&note[..sigs_start], &vkey, LEDGER).is_err());
    assert!(verify_checkpoint(&note[..note.len() - 5], &vkey, LEDGER).is_err());
}

#[test]
fn wrong_origin_is_refused() {
    let (seed, vkey) = ledger_key();
    let note = read(NOTE);
    assert_eq!(
        verify_checkpoint(&note, &vkey, "ru-78.edu.example"),
        Err(CheckpointError::WrongOrigin { got: LEDGER.to_owned(), want: "ru-78.edu.example".to_owned() })
    );
    // The same key signing as another origin: its signature is not by our verifier key.
    let other = LedgerSigner::new("ru-78.edu.example", KeyPair::from_seed(&seed));
    let other_note = other.sign(&TreeHead { tree_size: 10, root_hash: size10_root() });
    assert!(matches!(verify_checkpoint(&other_note, &vkey, LEDGER), Err(CheckpointError::Unverified(_))));
    assert!(matches!(
        verify_checkpoint(&other_note, &other.verifier_key(), LEDGER),
        Err(CheckpointError::WrongOrigin { .. })
    ));
    // Another key under our name.
    let stranger = LedgerSigner::new(LEDGER, KeyPair::from_seed(&[9u8; 32]));
    let stranger_note = stranger.sign(&TreeHead { tree_size: 10, root_hash: size10_root() });
    assert!(matches!(verify_checkpoint(&stranger_note, &vkey, LEDGER), Err(CheckpointError::Unverified(_))));
}

#[test]
fn c2sp_signed_note_example_verifies() {
    let note = read("c2sp-signed-note-example.note");
    let vkey = String::from_utf8(read("c2sp-signed-note-example.vkey")).unwrap();
    let verifier = StandardVerifier::new(vkey.trim_end()).unwrap();
    let list = VerifierList::new(vec![Box::new(verifier.clone())]);
    let parsed = Note::from_bytes(&note).unwrap();
    assert_eq!(parsed.text(), b"This is an example message.\n");
    let (verified, unverified) = parsed.verify(&list).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    assert_eq!(verified[0].name(), "example.com/foo");
    assert_eq!(parsed.to_bytes(), note, "re-encoding is byte exact");
    let (text_end, _) = split(&note);
    for i in 0..text_end {
        let mut t = note.clone();
        t[i] ^= 1;
        let ok =
            Note::from_bytes(&t).is_ok_and(|n| n.verify(&VerifierList::new(vec![Box::new(verifier.clone())])).is_ok());
        assert!(!ok, "text byte {i}");
    }
    // Not a checkpoint body, so our checkpoint verifier refuses it even with the right key.
    assert_eq!(verify_checkpoint(&note, vkey.trim_end(), "example.com/foo"), Err(CheckpointError::MalformedBody));
}

#[test]
fn c2sp_checkpoint_example_body_parses() {
    let note = read("c2sp-checkpoint-example.note");
    let (origin, head) = parse_unverified(&note).unwrap();
    assert_eq!(origin, "example.com/behind-the-sofa");
    assert_eq!(
        head,
        TreeHead { tree_size: 20852163, root_hash: hash_b64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=") }
    );
    // No key is published for it: nothing of ours verifies it.
    let (_, vkey) = ledger_key();
    assert!(verify_checkpoint(&note, &vkey, "example.com/behind-the-sofa").is_err());
}
