//! Witness cosignatures demanded by the verifier (FORMAT.md section 4, "Witnesses"): k of the n
//! witnesses given must have cosigned the bundle's checkpoint (and the second one); a forged
//! line of a given witness is refused; other lines are ignored.

mod common;

use common::{region, L1};
use zachetka_formats::cosignature::{Witness, WitnessKey};
use zachetka_formats::keys::{self, KeyPair};
use zachetka_record::{verify, Bundle, Disclosure, Options, OtherCheckpoint, Report};

fn witness(n: u8) -> Witness {
    Witness::new(&format!("w{n}.witness.example"), KeyPair::from_seed(&[100 + n; 32])).unwrap()
}

fn with_checkpoint(b: &Bundle, note: &[u8]) -> Vec<u8> {
    let mut b = b.clone();
    b.checkpoint = String::from_utf8(note.to_vec()).unwrap();
    b.to_json()
}

fn demand(k: usize, witnesses: &[&Witness]) -> Options {
    Options {
        witnesses: witnesses.iter().map(|w| w.verifier_key()).collect(),
        witnesses_required: k,
        ..Options::default()
    }
}

fn codes(r: &Report) -> Vec<&str> {
    r.failures.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn k_of_n_cosignatures_verify_and_fewer_are_refused() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let (w1, w2, w3) = (witness(1), witness(2), witness(3));
    let note = w2.cosign(&w1.cosign(b.checkpoint.as_bytes(), 1_764_662_400).unwrap(), 1_764_662_401).unwrap();
    let bundle = with_checkpoint(&b, &note);
    let r = verify(&bundle, &t.vkey, &demand(2, &[&w1, &w2, &w3]));
    assert!(r.ok, "{:?}", r.failures);
    let c = r.cosignatures.as_ref().unwrap();
    assert_eq!((c.required, c.witnesses), (2, 3));
    let got: Vec<(&str, u64)> =
        c.checkpoint.as_ref().unwrap().iter().map(|w| (w.witness.as_str(), w.timestamp)).collect();
    assert_eq!(got, [("w1.witness.example", 1_764_662_400), ("w2.witness.example", 1_764_662_401)]);
    assert!(r.to_text().contains("cosignatures of the checkpoint: 2 of 3 witnesses given (2 required)"));

    let r = verify(&bundle, &t.vkey, &demand(3, &[&w1, &w2, &w3]));
    assert_eq!(codes(&r), ["cosignatures_insufficient"]);
    assert_eq!(
        r.failures[0].message,
        "the bundle's checkpoint carries valid cosignatures of 2 of the 3 witnesses given (w1.witness.example, w2.witness.example), 3 required"
    );
    // A witness given twice counts once.
    let r = verify(&bundle, &t.vkey, &demand(2, &[&w1, &w1, &w3]));
    assert_eq!(codes(&r), ["cosignatures_insufficient"]);
    // The bundle as exported carries none.
    let r = verify(&b.to_json(), &t.vkey, &demand(1, &[&w1]));
    assert_eq!(codes(&r), ["cosignatures_insufficient"]);
    assert!(r.failures[0].message.contains("0 of the 1 witnesses given (none), 1 required"));
    // No witness given: nothing looked for, nothing reported.
    let r = verify(&bundle, &t.vkey, &Options::default());
    assert!(r.ok && r.cosignatures.is_none());
    // k = 0: what is there is reported, nothing demanded.
    let r = verify(&b.to_json(), &t.vkey, &demand(0, &[&w1]));
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!(r.cosignatures.unwrap().checkpoint, Some(vec![]));
}

#[test]
fn a_forged_cosignature_of_a_given_witness_is_refused_and_a_stranger_is_ignored() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let (w1, w2) = (witness(1), witness(2));
    // A line under w2's name and key id, signed by another key.
    let impostor = Witness::new("w2.witness.example", KeyPair::from_seed(&[9; 32])).unwrap();
    let forged_line = impostor.cosignature_line(body(&b), 5).unwrap();
    let (_, b64) = forged_line.trim_end().rsplit_once(' ').unwrap();
    let mut raw = keys::b64_decode(b64).unwrap();
    raw[..4].copy_from_slice(&w2.verifier_key().key_id.to_be_bytes());
    let mut note = w1.cosign(b.checkpoint.as_bytes(), 7).unwrap();
    note.extend_from_slice(format!("— w2.witness.example {}\n", keys::b64(&raw)).as_bytes());
    let r = verify(&with_checkpoint(&b, &note), &t.vkey, &demand(1, &[&w1, &w2]));
    assert_eq!(codes(&r), ["cosignature_invalid"], "{:?}", r.failures);
    assert!(
        r.failures[0].message.starts_with("the cosignature of witness w2.witness.example ("),
        "{}",
        r.failures[0].message
    );
    // The impostor's own line (its own key id) names no given witness: ignored.
    let note = impostor.cosign(&w1.cosign(b.checkpoint.as_bytes(), 7).unwrap(), 5).unwrap();
    let r = verify(&with_checkpoint(&b, &note), &t.vkey, &demand(1, &[&w1, &w2]));
    assert!(r.ok, "{:?}", r.failures);
    // A cosignature of another checkpoint, moved onto this one.
    let other = t.checkpoint_at(5);
    let moved = w1.cosign(&other, 7).unwrap();
    let line = &moved[other.len()..];
    let mut note = b.checkpoint.as_bytes().to_vec();
    note.extend_from_slice(line);
    let r = verify(&with_checkpoint(&b, &note), &t.vkey, &demand(1, &[&w1]));
    assert_eq!(codes(&r), ["cosignature_invalid", "cosignatures_insufficient"]);
}

#[test]
fn the_second_checkpoint_must_be_cosigned_too() {
    let t = region(1);
    let b = t.export(L1, &Disclosure::All);
    let n = t.size();
    let (w1, w2) = (witness(1), witness(2));
    let bundle = with_checkpoint(&b, &w2.cosign(&w1.cosign(b.checkpoint.as_bytes(), 7).unwrap(), 8).unwrap());
    let older = t.checkpoint_at(5);
    let options = |note: Vec<u8>| Options {
        other: Some(OtherCheckpoint { note, proof: t.consistency(5, n) }),
        ..demand(2, &[&w1, &w2])
    };
    let r = verify(&bundle, &t.vkey, &options(w1.cosign(&older, 3).unwrap()));
    assert_eq!(codes(&r), ["cosignatures_insufficient"]);
    assert!(r.failures[0].message.starts_with("the second checkpoint carries valid cosignatures of 1 of the 2"));
    let r = verify(&bundle, &t.vkey, &options(w2.cosign(&w1.cosign(&older, 3).unwrap(), 4).unwrap()));
    assert!(r.ok, "{:?}", r.failures);
    let c = r.cosignatures.unwrap();
    assert_eq!(c.checkpoint.unwrap().len(), 2);
    assert_eq!(c.second_checkpoint.unwrap().iter().map(|w| w.timestamp).collect::<Vec<_>>(), [3, 4]);
}

#[test]
fn a_witness_key_is_parsed_before_the_verifier_runs() {
    let vkey = witness(1).verifier_key().encode();
    assert_eq!(WitnessKey::parse(&vkey).unwrap(), witness(1).verifier_key());
    assert!(WitnessKey::parse(&vkey.replacen('+', "+0", 1)).is_err());
}

fn body(b: &Bundle) -> &[u8] {
    let at = b.checkpoint.find("\n\n").unwrap();
    &b.checkpoint.as_bytes()[..=at]
}
