//! zachetka/log.json: ten entries as the log stores them (DESIGN 3.2), their leaf hashes, the
//! roots for sizes 1-10 and two proofs in the JSON shape of DESIGN 3.5, computed independently
//! (Python `rfc8785`, Go sumdb/tlog).

use super::{hash_b64, json, str_of, LEDGER};
use serde_json::Value;
use std::collections::HashMap;
use zachetka::event::{entry_bytes, leaf_hash, parse_entry, EntryError, EntryMeta};
use zachetka::jcs::{self, to_canonical, Profile};
use zachetka::keys::KeyCache;
use zachetka::merkle::{
    hashes_from_b64, hashes_to_b64, prove_consistency, prove_inclusion, verify_consistency, verify_inclusion,
    ConsistencyProof, Hash, HashB64, InclusionProof, MemoryTree,
};

fn log() -> Value {
    let v = json("zachetka/log.json");
    assert_eq!(v["entries"].as_array().unwrap().len(), 10);
    v
}

fn entries(v: &Value) -> &Vec<Value> {
    v["entries"].as_array().unwrap()
}

fn tree(v: &Value) -> MemoryTree {
    let mut t = MemoryTree::default();
    for e in entries(v) {
        t.push(leaf_hash(str_of(e, "jcs_utf8").as_bytes()));
    }
    t
}

fn root(v: &Value, size: u64) -> Hash {
    hash_b64(str_of(&v["roots_by_tree_size"], &size.to_string()))
}

#[test]
fn entries_parse_and_rebuild_byte_exact() {
    let v = log();
    let cache = KeyCache::default();
    for (i, e) in entries(&v).iter().enumerate() {
        let bytes = str_of(e, "jcs_utf8").as_bytes();
        let entry = &e["entry"];
        let parsed = parse_entry(bytes).unwrap_or_else(|err| panic!("entry {i}: {err}"));
        // The metadata, read independently of parse_entry.
        let meta = EntryMeta {
            seq: entry["seq"].as_u64().unwrap(),
            recorded_at_unix: zachetka::time::parse_rfc3339(str_of(entry, "recorded_at")).unwrap(),
            stream_version: entry["stream_version"].as_u64().unwrap(),
            stream_prev: entry["stream_prev"].as_str().map(hash_b64),
        };
        assert_eq!(meta.seq, i as u64, "seq is dense from 0");
        assert_eq!(parsed.meta, meta, "entry {i}");
        assert_eq!(parsed.event, entry["event"], "entry {i}");
        assert_eq!(parsed.sig, str_of(entry, "sig"), "entry {i}");
        let canonical_event = to_canonical(&entry["event"], Profile::Event).unwrap();
        assert_eq!(entry_bytes(&meta, &canonical_event, str_of(entry, "sig")), bytes, "entry {i}");
        assert_eq!(to_canonical(entry, Profile::Entry).unwrap(), bytes, "entry {i}");
        let verified = parsed.verify_event(LEDGER, &cache).unwrap_or_else(|r| panic!("entry {i}: {r}"));
        assert_eq!(verified.canonical, canonical_event);
        // The same JSON value in a non-canonical spelling is refused: a space, a trailing
        // newline, a character written as a \u escape.
        let text = str_of(e, "jcs_utf8");
        assert!(parse_entry(text.replacen(',', ", ", 1).as_bytes()).is_err(), "entry {i}");
        assert!(parse_entry(format!("{text}\n").as_bytes()).is_err(), "entry {i}");
        let c = text.chars().find(|c| !c.is_ascii()).expect("every vector entry has Cyrillic text");
        let escaped = text.replacen(c, &format!("\\u{:04x}", c as u32), 1);
        assert_eq!(jcs::parse_strict(escaped.as_bytes()).unwrap(), jcs::parse_strict(bytes).unwrap());
        assert_eq!(parse_entry(escaped.as_bytes()).unwrap_err(), EntryError::NotCanonical, "entry {i}");
    }
}

#[test]
fn leaf_hashes_and_stream_chains() {
    let v = log();
    let mut last: HashMap<String, (Hash, u64)> = HashMap::new();
    for (i, e) in entries(&v).iter().enumerate() {
        let leaf = leaf_hash(str_of(e, "jcs_utf8").as_bytes());
        assert_eq!(leaf.to_b64(), str_of(e, "leaf_hash_b64"), "entry {i}");
        let entry = &e["entry"];
        let stream = str_of(&entry["event"], "stream").to_owned();
        let (prev, version) = match last.get(&stream) {
            Some((h, ver)) => (Value::from(h.to_b64()), ver + 1),
            None => (Value::Null, 0),
        };
        assert_eq!(
            entry["stream_prev"], prev,
            "entry {i}: stream_prev is the leaf hash of the stream's previous entry"
        );
        assert_eq!(entry["stream_version"].as_u64(), Some(version), "entry {i}");
        last.insert(stream, (leaf, version));
    }
    assert_eq!(last.len(), 2);
}

#[test]
fn roots_by_tree_size() {
    let v = log();
    let t = tree(&v);
    assert_eq!(v["roots_by_tree_size"].as_object().unwrap().len(), 10);
    for n in 1..=10 {
        assert_eq!(t.root_at(n), root(&v, n), "size {n}");
    }
}

#[test]
fn inclusion_proof_leaf_3_size_10() {
    let v = log();
    let t = tree(&v);
    let p = &v["inclusion_proof"];
    let want: InclusionProof = serde_json::from_value(p.clone()).unwrap();
    assert_eq!((want.leaf_index, want.tree_size), (3, 10));
    let ours = prove_inclusion(3, 10, &t).unwrap();
    let got = InclusionProof { leaf_index: 3, tree_size: 10, hashes: hashes_to_b64(&ours) };
    assert_eq!(got, want);
    // Our JSON is the vector's object without its extra fields.
    let mut shape = p.clone();
    shape.as_object_mut().unwrap().retain(|k, _| ["leaf_index", "tree_size", "hashes"].contains(&k.as_str()));
    assert_eq!(serde_json::to_value(&got).unwrap(), shape);
    assert_eq!(serde_json::from_str::<InclusionProof>(&serde_json::to_string(&got).unwrap()).unwrap(), got);
    let leaf = hash_b64(str_of(p, "leaf_hash"));
    assert_eq!(leaf.to_b64(), str_of(&entries(&v)[3], "leaf_hash_b64"));
    assert_eq!(hash_b64(str_of(p, "root_hash")), root(&v, 10));
    let hashes = hashes_from_b64(&want.hashes).unwrap();
    assert_eq!(hashes, ours);
    assert_eq!(verify_inclusion(3, 10, leaf, &hashes, root(&v, 10)), Ok(()));
    assert!(verify_inclusion(3, 10, leaf, &hashes, root(&v, 9)).is_err());
    assert!(verify_inclusion(2, 10, leaf, &hashes, root(&v, 10)).is_err());
}

#[test]
fn consistency_proof_4_to_10() {
    let v = log();
    let t = tree(&v);
    let p = &v["consistency_proof"];
    let want: ConsistencyProof = serde_json::from_value(p.clone()).unwrap();
    assert_eq!((want.first, want.second), (4, 10));
    let ours = prove_consistency(4, 10, &t).unwrap();
    let got = ConsistencyProof { first: 4, second: 10, hashes: hashes_to_b64(&ours) };
    assert_eq!(got, want);
    let mut shape = p.clone();
    shape.as_object_mut().unwrap().retain(|k, _| ["first", "second", "hashes"].contains(&k.as_str()));
    assert_eq!(serde_json::to_value(&got).unwrap(), shape);
    assert_eq!(serde_json::from_str::<ConsistencyProof>(&serde_json::to_string(&got).unwrap()).unwrap(), got);
    let (r1, r2) = (hash_b64(str_of(p, "first_root")), hash_b64(str_of(p, "second_root")));
    assert_eq!((r1, r2), (root(&v, 4), root(&v, 10)));
    let hashes = hashes_from_b64(&want.hashes).unwrap();
    assert_eq!(verify_consistency(4, 10, r1, r2, &hashes), Ok(()));
    assert!(verify_consistency(4, 10, root(&v, 5), r2, &hashes).is_err());
    assert!(verify_consistency(5, 10, r1, r2, &hashes).is_err());
}
