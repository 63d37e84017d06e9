//! Known-answer vectors (../shared/testdata copied into tests/vectors, provenance and licences in
//! tests/vectors/SOURCES.md): the formats of DESIGN 3.1-3.3 checked against independent
//! implementations and public test suites.

mod ed25519;
mod fast_verify;
mod jcs;
mod log;
mod merkle;
mod notes;

use serde_json::Value;
use std::path::PathBuf;
use zachetka::merkle::Hash;

/// The origin (ledger name) the zachetka vectors were made for.
pub const LEDGER: &str = "ru-47.edu.example";

pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors")).join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("parsing {rel}: {e}"))
}

pub fn hex(s: &str) -> Vec<u8> {
    let digits = s.as_bytes().chunks_exact(2);
    assert!(digits.remainder().is_empty() && s.is_ascii(), "odd or non-ASCII hex {s:?}");
    digits
        .map(|d| u8::from_str_radix(std::str::from_utf8(d).unwrap(), 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

pub fn hex32(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap_or_else(|_| panic!("{s:?} is not 32 bytes"))
}

pub fn b64d(s: &str) -> Vec<u8> {
    zachetka::keys::b64_decode(s).unwrap_or_else(|| panic!("bad base64 {s:?}"))
}

pub fn hash_b64(s: &str) -> Hash {
    Hash(b64d(s).try_into().unwrap_or_else(|_| panic!("{s:?} is not a 32-byte hash")))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// The test keys of zachetka/events.json: (did, seed) of the authority and the teacher.
pub fn author_keys() -> Vec<(String, [u8; 32])> {
    let v = json("zachetka/events.json");
    ["authority", "teacher"]
        .iter()
        .map(|who| {
            let k = &v["keys"][who];
            (str_of(k, "did").to_owned(), hex32(str_of(k, "seed_hex")))
        })
        .collect()
}

/// The ledger's note key of zachetka/events.json: (seed, verifier key string).
pub fn ledger_key() -> ([u8; 32], String) {
    let v = json("zachetka/events.json");
    let k = &v["keys"]["ledger"];
    assert_eq!(str_of(k, "key_name"), LEDGER);
    (hex32(str_of(k, "seed_hex")), str_of(k, "vkey").to_owned())
}
