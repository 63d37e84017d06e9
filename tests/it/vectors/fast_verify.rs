//! The faster verification path (per-key precomputed tables, `KeyCache`) accepts exactly the
//! signatures `verify_strict` accepts, and so does the path without a table: every Wycheproof,
//! CCTV and RFC 8032 case goes through each, and through the cache as the append pipeline calls it.

use super::{hex, json};
use ed25519_dalek::Signature;
use zachetka::keys::{
    negated_key_table, verify_strict, verify_strict_with_table, verify_strict_without_table, verifying_key, KeyCache,
    KeyError,
};

/// (public key, message, signature) of every public vector we hold.
fn all_cases() -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let mut cases = Vec::new();
    let w = json("wycheproof/ed25519_test.json");
    for group in w["testGroups"].as_array().unwrap() {
        let pk = hex(group["publicKey"]["pk"].as_str().unwrap());
        for t in group["tests"].as_array().unwrap() {
            cases.push((pk.clone(), hex(t["msg"].as_str().unwrap()), hex(t["sig"].as_str().unwrap())));
        }
    }
    for t in json("cctv-ed25519/ed25519vectors.json").as_array().unwrap() {
        cases.push((
            hex(t["key"].as_str().unwrap()),
            t["msg"].as_str().unwrap().as_bytes().to_vec(),
            hex(t["sig"].as_str().unwrap()),
        ));
    }
    for t in json("rfc8032/rfc8032_ed25519.json")["tests"].as_array().unwrap() {
        cases.push((
            hex(t["public_key"].as_str().unwrap()),
            hex(t["message"].as_str().unwrap()),
            hex(t["signature"].as_str().unwrap()),
        ));
    }
    cases
}

#[test]
fn both_fast_paths_decide_every_vector_as_verify_strict_does() {
    let cases = all_cases();
    assert!(cases.len() > 1000, "{}", cases.len());
    let cache = KeyCache::with_table_after(0);
    let (mut accepted, mut disagreements) = (0, Vec::new());
    for (i, (pk, msg, sig)) in cases.iter().enumerate() {
        let Ok(pk): Result<[u8; 32], _> = pk.as_slice().try_into() else { continue };
        let Ok(sig): Result<[u8; 64], _> = sig.as_slice().try_into() else { continue };
        let sig = Signature::from_bytes(&sig);
        let strict = verifying_key(&pk).map(|k| verify_strict(&k, msg, &sig).is_ok()).unwrap_or(false);
        let table = verifying_key(&pk)
            .map(|k| verify_strict_with_table(&negated_key_table(&k), &k, msg, &sig).is_ok())
            .unwrap_or(false);
        let without = verifying_key(&pk).map(|k| verify_strict_without_table(&k, msg, &sig).is_ok()).unwrap_or(false);
        let cached = match cache.verify(&pk, msg, &sig) {
            Ok(()) => true,
            Err(KeyError::BadSignature | KeyError::WeakKey | KeyError::NotOnCurve) => false,
            Err(e) => panic!("case {i}: {e}"),
        };
        if strict != table || strict != without || strict != cached {
            disagreements.push((i, strict, table, without, cached));
        }
        accepted += usize::from(strict);
    }
    assert!(disagreements.is_empty(), "(case, strict, table, without table, cache): {disagreements:?}");
    assert!(accepted > 100, "{accepted}");
}

#[test]
fn the_cache_switches_to_the_table_and_keeps_refusing_forgeries() {
    let key = zachetka::keys::KeyPair::from_seed(&[9; 32]);
    let cache = KeyCache::with_table_after(3);
    for i in 0..10u8 {
        let msg = [i; 40];
        let sig = key.sign(&msg);
        assert!(cache.verify(&key.public(), &msg, &sig).is_ok(), "use {i}");
        let mut bad = sig.to_bytes();
        bad[i as usize] ^= 1;
        assert!(cache.verify(&key.public(), &msg, &Signature::from_bytes(&bad)).is_err(), "forgery at use {i}");
        let mut other = msg;
        other[0] ^= 1;
        assert!(cache.verify(&key.public(), &other, &sig).is_err(), "other message at use {i}");
    }
}
