//! zachetka/events.json: JCS canonical form, signing input, deterministic signatures and the
//! transport form of DESIGN 3.1, produced by an independent implementation (Python `rfc8785`,
//! `cryptography`).

use super::{author_keys, b64d, json, str_of, LEDGER};
use serde_json::Value;
use zachetka::event::{sign_event, signing_input, verify_signed, verify_signed_bytes, EVENT_SIGNING_PREFIX};
use zachetka::jcs::{parse_strict, to_canonical, Profile};
use zachetka::keys::{b64, did_from_public, public_from_did, KeyCache, KeyPair};
use zachetka::refusal::Code;

fn cases() -> Vec<Value> {
    let v = json("zachetka/events.json");
    assert_eq!(str_of(&v, "event_prefix_utf8").as_bytes(), EVENT_SIGNING_PREFIX);
    let cases = v["cases"].as_array().expect("cases").clone();
    assert_eq!(cases.len(), 3, "events.json changed: review this module");
    cases
}

fn key_for(did: &str) -> KeyPair {
    let (_, seed) =
        author_keys().into_iter().find(|(d, _)| d == did).unwrap_or_else(|| panic!("no test key for {did}"));
    KeyPair::from_seed(&seed)
}

#[test]
fn test_keys_have_the_given_did_key() {
    for (did, seed) in author_keys() {
        let key = KeyPair::from_seed(&seed);
        assert_eq!(did_from_public(&key.public()), did);
        assert_eq!(key.did(), did);
        assert_eq!(public_from_did(&did).unwrap(), key.public());
    }
}

#[test]
fn canonical_form_is_byte_exact() {
    for case in cases() {
        let name = str_of(&case, "name");
        let want = str_of(&case, "jcs_utf8").as_bytes();
        assert_eq!(to_canonical(&case["event"], Profile::Event).unwrap(), want, "{name}");
        assert_eq!(to_canonical(&case["signed"]["event"], Profile::Event).unwrap(), want, "{name}");
        // The canonical form is a fixed point.
        assert_eq!(to_canonical(&parse_strict(want).unwrap(), Profile::Event).unwrap(), want, "{name}");
    }
}

#[test]
fn signing_input_is_byte_exact() {
    for case in cases() {
        let canonical = to_canonical(&case["event"], Profile::Event).unwrap();
        assert_eq!(signing_input(&canonical), b64d(str_of(&case, "signing_input_b64")), "{}", str_of(&case, "name"));
    }
}

#[test]
fn signatures_are_reproduced_exactly() {
    for case in cases() {
        let name = str_of(&case, "name");
        let key = key_for(str_of(&case["event"], "author"));
        let want_sig = str_of(&case["signed"], "sig");
        let input = b64d(str_of(&case, "signing_input_b64"));
        assert_eq!(b64(&key.sign(&input).to_bytes()), want_sig, "{name}");
        let signed = sign_event(&case["event"], &key).unwrap();
        assert_eq!(signed, case["signed"], "{name}");
    }
}

#[test]
fn transport_form_verifies() {
    let cache = KeyCache::default();
    for case in cases() {
        let name = str_of(&case, "name");
        let v = verify_signed(case["signed"].clone(), LEDGER, &cache).unwrap_or_else(|r| panic!("{name}: {r}"));
        assert_eq!(v.canonical, str_of(&case, "jcs_utf8").as_bytes(), "{name}");
        assert_eq!(v.sig, str_of(&case["signed"], "sig"), "{name}");
        assert_eq!(v.id, str_of(&case["event"], "id"));
        assert_eq!(v.author, public_from_did(str_of(&case["event"], "author")).unwrap());
        assert_eq!(v.expected_version, case["event"]["expected_version"].as_u64());
        let bytes = serde_json::to_vec(&case["signed"]).unwrap();
        assert!(verify_signed_bytes(&bytes, LEDGER, &cache).is_ok(), "{name}");
    }
}

/// The same 64 bytes spelled with non-zero trailing bits in the last base64 digit (a second
/// spelling of one signature, which strict decoding refuses).
fn non_canonical_trailing_bits(sig: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    assert!(sig.len() == 88 && sig.ends_with("=="));
    let last = sig.as_bytes()[85];
    let v = ALPHABET.iter().position(|c| *c == last).unwrap();
    assert_eq!(v & 0xf, 0, "64 bytes leave four zero bits in the last digit");
    format!("{}{}==", &sig[..85], ALPHABET[v | 1] as char)
}

fn code_of(signed: Value) -> Code {
    verify_signed(signed, LEDGER, &KeyCache::default()).expect_err("tampered event was accepted").code
}

/// The value with one bit of one of its bytes flipped (strings keep valid UTF-8).
fn flip(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::from(n.as_i64().unwrap() ^ 1),
        Value::String(s) => {
            let mut chars: Vec<char> = s.chars().collect();
            let last = chars.last_mut().unwrap();
            *last = char::from_u32(*last as u32 ^ 1).unwrap();
            Value::String(chars.into_iter().collect())
        }
        other => panic!("no flip for {other}"),
    }
}

#[test]
fn tampered_data_is_refused_as_signature_invalid() {
    let mut tried = 0;
    for case in cases() {
        let data = case["signed"]["event"]["data"].as_object().unwrap();
        for field in data.keys() {
            let mut t = case["signed"].clone();
            t["event"]["data"][field] = flip(&t["event"]["data"][field]);
            assert_eq!(code_of(t), Code::SignatureInvalid, "{}: data.{field}", str_of(&case, "name"));
            tried += 1;
        }
        for field in ["id", "occurred_at", "stream", "type"] {
            let mut t = case["signed"].clone();
            let s = str_of(&t["event"], field).to_owned();
            // Keep the field well-formed: change one digit or lowercase letter to a neighbour.
            let pos = s.rfind(|c: char| c.is_ascii_digit() || c.is_ascii_lowercase()).unwrap();
            let c = s.as_bytes()[pos];
            let repl = match c {
                b'0' => b'1',
                b'a'..=b'y' | b'1'..=b'8' => c + 1,
                _ => c - 1,
            };
            let mut b = s.into_bytes();
            b[pos] = repl;
            t["event"][field] = Value::String(String::from_utf8(b).unwrap());
            assert_eq!(code_of(t), Code::SignatureInvalid, "{}: {field}", str_of(&case, "name"));
            tried += 1;
        }
        // Adding or dropping expected_version changes the signed content too.
        let mut t = case["signed"].clone();
        let ev = t["event"].as_object_mut().unwrap();
        if ev.remove("expected_version").is_none() {
            ev.insert("expected_version".into(), Value::from(0));
        }
        assert_eq!(code_of(t), Code::SignatureInvalid, "{}: expected_version", str_of(&case, "name"));
    }
    assert!(tried >= 20, "{tried}");
}

#[test]
fn tampered_signature_is_refused() {
    for case in cases() {
        let name = str_of(&case, "name");
        let sig = b64d(str_of(&case["signed"], "sig"));
        for i in 0..64 {
            for bit in [0u8, 7] {
                let mut s = sig.clone();
                s[i] ^= 1 << bit;
                let mut t = case["signed"].clone();
                t["sig"] = Value::String(b64(&s));
                assert_eq!(code_of(t), Code::SignatureInvalid, "{name}: byte {i} bit {bit}");
            }
        }
        let good = str_of(&case["signed"], "sig").to_owned();
        let malformed = [
            good.trim_end_matches('=').to_owned(),
            format!("!{}", &good[1..]),
            good.replace('+', "-").replace('/', "_").replacen(|c: char| c.is_ascii_alphabetic(), "-", 1),
            format!(" {good}"),
            non_canonical_trailing_bits(&good),
            b64(&sig[..63]),
            b64(&[sig.as_slice(), &[0]].concat()),
            String::new(),
        ];
        for bad in malformed {
            let mut t = case["signed"].clone();
            t["sig"] = Value::String(bad.clone());
            assert_eq!(code_of(t), Code::SignatureMalformed, "{name}: sig {bad:?}");
        }
        let mut t = case["signed"].clone();
        t["sig"] = Value::from(5);
        assert_eq!(code_of(t), Code::SignatureMalformed, "{name}: numeric sig");
    }
}

#[test]
fn another_ledger_is_refused() {
    for case in cases() {
        let name = str_of(&case, "name");
        let refusal = verify_signed(case["signed"].clone(), "ru-78.edu.example", &KeyCache::default()).unwrap_err();
        assert_eq!(refusal.code, Code::WrongLedger, "{name}");
        // Re-signed for another ledger: a valid signature, still not ours.
        let mut ev = case["event"].clone();
        ev["ledger"] = Value::from("ru-78.edu.example");
        let signed = sign_event(&ev, &key_for(str_of(&ev, "author"))).unwrap();
        assert_eq!(code_of(signed.clone()), Code::WrongLedger, "{name}");
        assert!(verify_signed(signed, "ru-78.edu.example", &KeyCache::default()).is_ok(), "{name}");
        // Or the ledger field edited after signing.
        let mut t = case["signed"].clone();
        t["event"]["ledger"] = Value::from("ru-78.edu.example");
        assert_eq!(code_of(t), Code::WrongLedger, "{name}");
    }
}
