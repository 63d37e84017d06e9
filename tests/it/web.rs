//! The record verifier page (`web/`, served at `GET /verify`) in a real browser: `zachetka serve`
//! on a small demo ledger, bundles built from that ledger's entries and proofs exactly as
//! `record/FORMAT.md` lays them out (until the exporter of the `record` branch lands, this file
//! has its own builder), and headless Chromium driven by `tests/web/drive.mjs` (playwright-core)
//! through its states: a real bundle verifies, a tampered one fails naming the entry, a wrong
//! key fails; the exporter's bundle shows the position it is complete up to, the same status and
//! numbers the Rust verifier reports, and a tampered or cut completeness value fails with the Rust
//! verifier's codes; an achievement's revocation travels with it, and withheld shows its status
//! unknown as the Rust verifier does. Also: every Wycheproof and CCTV Ed25519 vector through the page's strict verifier
//! compared with `keys::verify_strict`, and the time to verify a 5,000-entry bundle.
//! Screenshots and the bundles go to `target/web-artifacts/`.
//!
//! Needs Chromium (`/usr/bin/chromium` or `ZACHETKA_CHROMIUM`), Node and `tests/web/node_modules`
//! (`npm ci` there); `scripts/test` installs them when root. Without them the browser test prints
//! NOT RUN; under `CI=true` it fails saying what is missing.

use super::support::*;
use super::vectors::{hex, json, str_of};
use serde_json::{json, Value};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits};
use zachetka::merkle::HashB64 as _;
use zachetka_projections::model::ParsedFact;
use zachetka_projections::models::concerns::Concerns;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

// ---- the routes ---------------------------------------------------------------------------------

#[test]
fn the_page_and_its_files_are_served_with_a_policy_that_forbids_uploads() {
    let (_d, ledger) = temp_ledger();
    let vkey = ledger.config().verifier_key.clone();
    let srv = super::http::serve(ledger);
    let page = ureq::get(&format!("{}/verify", srv.base)).call().unwrap();
    assert_eq!(page.content_type(), "text/html");
    let csp = page.header("content-security-policy").unwrap().to_owned();
    for directive in ["connect-src 'none'", "form-action 'none'", "default-src 'none'", "script-src 'self'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    let html = page.into_string().unwrap();
    assert!(html.contains(&format!("<meta name=\"zachetka-verifier-key\" content=\"{vkey}\">")), "{html}");
    for (file, ty, needle) in [("verify.js", "text/javascript", "verifyBundle"), ("verify.css", "text/css", "#status")]
    {
        let r = ureq::get(&format!("{}/web/{file}", srv.base)).call().unwrap();
        assert_eq!(r.content_type(), ty);
        assert!(r.into_string().unwrap().contains(needle), "{file}");
    }
    for missing in ["/web/nope.js", "/web/..%2FCargo.toml", "/web/"] {
        match ureq::get(&format!("{}{missing}", srv.base)).call() {
            Err(ureq::Error::Status(404, r)) => {
                assert_eq!(r.into_json::<Value>().unwrap()["code"], "not_found", "{missing}")
            }
            other => panic!("{missing}: {:?}", other.map(|r| r.status())),
        }
    }
}

// ---- bundles (record/FORMAT.md) -------------------------------------------------------------------

/// A bundle of `learner` (or the learner with the most entries) from `ledger`, against its
/// latest checkpoint: every entry that concerns the learner (the `Concerns` definition), the
/// `withheld` of them given by leaf hash only, and every registry entry as authority.
fn build_bundle(ledger: &Ledger, learner: Option<&str>, withheld: &[u64]) -> (Value, String) {
    let (head, note) = ledger.head();
    let n = head.tree_size;
    let mut raw: Vec<Vec<u8>> = Vec::new();
    while (raw.len() as u64) < n {
        let page = ledger.entries(raw.len() as u64, 1000).unwrap();
        assert!(!page.is_empty());
        raw.extend(page);
    }
    let mut concerns = Concerns::default();
    let mut by_learner: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    let mut registry = Vec::new();
    for (seq, bytes) in raw.iter().enumerate() {
        let fact = ParsedFact::from_entry(bytes).unwrap();
        let event = serde_json::from_slice::<Value>(bytes).unwrap()["event"].take();
        if event["stream"] == "registry" {
            registry.push(seq as u64);
        }
        // Every entry of `learner/<id>` concerns that learner, in the vocabulary or not.
        let stream = event["stream"].as_str().unwrap();
        let own = zachetka_projections::StreamKind::Learner.id_of(stream).map(|l| vec![l.to_owned()]);
        let concerned = match fact.fact() {
            Some(f) => {
                concerns.apply(&f);
                own.unwrap_or_else(|| concerns.learners_concerned(&f).into_iter().map(str::to_owned).collect())
            }
            None => own.unwrap_or_default(),
        };
        for l in concerned {
            by_learner.entry(l).or_default().push(seq as u64);
        }
    }
    let learner = match learner {
        Some(l) => l.to_owned(),
        // The learner whose record shows the most kinds of entries, then the most entries.
        None => {
            let types = |seqs: &[u64]| -> usize {
                let t: std::collections::BTreeSet<String> = seqs
                    .iter()
                    .map(|&s| serde_json::from_slice::<Value>(&raw[s as usize]).unwrap()["event"]["type"].to_string())
                    .collect();
                t.len()
            };
            by_learner.iter().max_by_key(|(_, seqs)| (types(seqs), seqs.len())).map(|(l, _)| l.clone()).unwrap()
        }
    };
    let item = |seq: u64| -> Value {
        let proof: Vec<String> = ledger.prove_inclusion(seq, n).unwrap().iter().map(|h| h.to_b64()).collect();
        let bytes = &raw[seq as usize];
        if withheld.contains(&seq) {
            let leaf = zachetka::merkle::leaf_hash(bytes);
            json!({"seq": seq, "leaf_hash": leaf.to_b64(), "proof": proof})
        } else {
            json!({"seq": seq, "entry": zachetka::keys::b64(bytes), "proof": proof})
        }
    };
    let bundle = json!({
        "format": "zachetka-record",
        "version": 1,
        "origin": ledger.config().origin,
        "verifier_key": ledger.config().verifier_key,
        "learner": learner,
        "checkpoint": String::from_utf8(note.to_vec()).unwrap(),
        "disclosure": {"only": null},
        "entries": by_learner[&learner].iter().map(|&s| item(s)).collect::<Vec<_>>(),
        "authority": registry.iter().map(|&s| item(s)).collect::<Vec<_>>(),
        "completeness": null,
    });
    (bundle, learner)
}

/// The seq and stream of each entry item of a bundle (disclosed ones).
fn disclosed(bundle: &Value) -> Vec<(u64, Value)> {
    bundle["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|it| {
            let bytes = zachetka::keys::b64_decode(it["entry"].as_str()?).unwrap();
            Some((it["seq"].as_u64().unwrap(), serde_json::from_slice(&bytes).unwrap()))
        })
        .collect()
}

/// The demo ledger's directory and a second ledger's verifier key (same origin, other key).
fn demo_ledger(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["demo", "--no-serve", "--learners", "60", "--teachers", "10", "--events", "1500"])
        .args(["--completeness-every-entries", "500", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("ZACHETKA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "demo: {}", String::from_utf8_lossy(&out.stderr));
}

fn open_dir(dir: &Path) -> Ledger {
    let store = Arc::new(zachetka::store::sled::SledStore::open(&dir.join("store")).unwrap());
    let key = KeyPair::from_key_file(&std::fs::read_to_string(dir.join("ledger.key")).unwrap()).unwrap();
    Ledger::open(store, key, Arc::new(zachetka::time::SystemClock), Limits::default()).unwrap()
}

/// A bare ledger whose learner `perf-1` has `n` grades by one granted teacher, and a
/// completeness commitment after them: the bundle size the page must verify in under 1.5 s.
fn perf_ledger(n: u64) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let policy = zachetka::read::CompletenessPolicy { every_entries: n, every_seconds: 0 };
    let options =
        zachetka::ledger::OpenOptions { limits: Limits::default(), completeness: Some(policy), ..Default::default() };
    let ledger = Ledger::open_opts(new_store(dir.path()), ledger_key(), test_clock(), options).unwrap();
    let sign = |ev: Value, key: &KeyPair| zachetka::event::sign_event(&ev, key).unwrap();
    let head = vec![
        sign(
            json!({"ledger": ORIGIN, "stream": "registry", "type": "ledger.established", "id": id(1_000_001),
                "occurred_at": "2020-01-01T00:00:00Z", "author": authority().did(),
                "data": {"v": 1, "origin": ORIGIN, "authority": authority().did()}}),
            &authority(),
        ),
        sign(
            json!({"ledger": ORIGIN, "stream": "registry", "type": "registry.institution_registered", "id": id(1_000_003),
                "occurred_at": "2020-01-01T00:00:01Z", "author": authority().did(),
                "data": {"v": 1, "institution": "sch-001", "kind": "school", "territory": "luga"}}),
            &authority(),
        ),
        sign(
            json!({"ledger": ORIGIN, "stream": "registry", "type": "keys.granted", "id": id(1_000_002),
                "occurred_at": "2020-01-01T00:00:01Z", "author": authority().did(),
                "data": {"v": 1, "key": teacher().did(), "holder": "t-1", "roles": ["teacher"],
                         "scope": {"institution": "sch-001"}, "valid_from": "2020-01-01T00:00:00Z"}}),
            &authority(),
        ),
    ];
    for r in ledger.append_blocking(head) {
        r.unwrap();
    }
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        // Grades of the vocabulary (so `Concerns`, the profiles and the commitment see them).
        let events: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let ev = json!({"ledger": ORIGIN, "stream": "learner/perf-1", "type": "journal.grade_recorded",
                    "id": id(i), "occurred_at": "2026-11-23T08:00:00Z", "author": teacher().did(), "expected_version": i,
                    "data": {"v": 1, "institution": "sch-001", "class": "5А", "subject": "Математика", "mark": 5,
                             "scale": "five_point", "weight": 3, "kind": "test", "lesson_date": "2026-11-23"}});
                sign(ev, &teacher())
            })
            .collect();
        for r in ledger.append_blocking(events) {
            r.unwrap();
        }
    }
    // The commitment the policy owes, appended and applied.
    loop {
        let size = ledger.head().0.tree_size;
        ledger.read_side().wait_settled_blocking(size);
        ledger.read_side().wait_applied_blocking(size);
        if ledger.head().0.tree_size == size {
            break;
        }
    }
    (dir, ledger)
}

// ---- the browser ----------------------------------------------------------------------------------

/// What the browser test needs, or why it cannot run.
fn browser() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("ZACHETKA_CHROMIUM").map(PathBuf::from).unwrap_or("/usr/bin/chromium".into());
    let runs = |cmd: &Path, arg: &str| Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success());
    if !runs(&chromium, "--version") {
        return Err(format!(
            "{} does not run (apt-get install chromium, or set ZACHETKA_CHROMIUM)",
            chromium.display()
        ));
    }
    if !runs(Path::new("node"), "--version") {
        return Err("node is not installed (apt-get install nodejs)".into());
    }
    if !Path::new(MANIFEST).join("tests/web/node_modules/playwright-core/package.json").exists() {
        return Err("tests/web/node_modules is missing (run `npm ci` in tests/web)".into());
    }
    Ok(chromium)
}

/// `zachetka serve` on `dir`, killed when dropped.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_dir(dir: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("ZACHETKA_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let base = loop {
        let Some(Ok(line)) = lines.next() else { panic!("serve ended before listening: {seen:#?}") };
        // "serving <origin> on http://127.0.0.1:PORT (...)"
        if let Some(rest) = line.split(" on http://").nth(1).filter(|_| line.starts_with("serving ")) {
            break format!("http://{}", rest.split_whitespace().next().unwrap());
        }
        seen.push(line);
    };
    // Keep reading its stderr so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served { child, base }
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or(Path::new(MANIFEST).join("target"));
    target.join("web-artifacts")
}

/// Every Wycheproof and CCTV vector with our decision (`keys::verify_strict` behind the weak-key
/// check), for the page's `verifyStrict` to reproduce.
fn ed25519_vectors() -> (Vec<Value>, Vec<bool>) {
    let accepts = |pk: &[u8], msg: &[u8], sig: &[u8]| -> bool {
        let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(pk), <[u8; 64]>::try_from(sig)) else { return false };
        zachetka::keys::verifying_key(&pk)
            .is_ok_and(|k| zachetka::keys::verify_strict(&k, msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok())
    };
    let to_hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let (mut vectors, mut expected) = (Vec::new(), Vec::new());
    let wycheproof = json("wycheproof/ed25519_test.json");
    for group in wycheproof["testGroups"].as_array().unwrap() {
        let pk = str_of(&group["publicKey"], "pk");
        for t in group["tests"].as_array().unwrap() {
            let (msg, sig) = (str_of(t, "msg"), str_of(t, "sig"));
            expected.push(accepts(&hex(pk), &hex(msg), &hex(sig)));
            vectors.push(json!({"pk": pk, "msg": msg, "sig": sig}));
        }
    }
    for t in json("cctv-ed25519/ed25519vectors.json").as_array().unwrap() {
        let (pk, msg, sig) = (str_of(t, "key"), str_of(t, "msg"), str_of(t, "sig"));
        expected.push(accepts(&hex(pk), msg.as_bytes(), &hex(sig)));
        vectors.push(json!({"pk": pk, "msg": to_hex(msg.as_bytes()), "sig": sig}));
    }
    (vectors, expected)
}

/// Known answers for the page's building blocks, with what each must give: JCS of the zachetka
/// events, leaf hashes of the zachetka entries, every transparency-dev inclusion vector (and
/// ours), and checkpoint notes (ours verifies; a wrong origin, a changed signature or another
/// key does not).
/// transparency-dev's RFC 9162 vectors of one kind (`inclusion`, `consistency`), in path order.
fn transparency_dev(kind: &str) -> Vec<Value> {
    let mut files = Vec::new();
    let mut dirs = vec![super::vectors::path(&format!("transparency-dev-merkle/testdata/{kind}"))];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                dirs.push(e)
            } else {
                files.push(e)
            }
        }
    }
    files.sort();
    files.iter().map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap()).collect()
}

fn known_answers() -> (Value, Value) {
    let events = json("zachetka/events.json");
    let cases = events["cases"].as_array().unwrap();
    let jcs: Vec<&Value> = cases.iter().map(|c| &c["event"]).collect();
    let jcs_want: Vec<&str> = cases.iter().map(|c| str_of(c, "jcs_utf8")).collect();
    let log = json("zachetka/log.json");
    let entries = log["entries"].as_array().unwrap();
    let leaves: Vec<&str> = entries.iter().map(|e| str_of(e, "jcs_utf8")).collect();
    let leaves_want: Vec<&str> = entries.iter().map(|e| str_of(e, "leaf_hash_b64")).collect();
    let (mut inclusion, mut inclusion_want) = (Vec::new(), Vec::new());
    let p = &log["inclusion_proof"];
    inclusion.push(json!({"index": p["leaf_index"], "size": p["tree_size"], "leaf": p["leaf_hash"], "root": p["root_hash"], "proof": p["hashes"]}));
    inclusion_want.push(true);
    for t in transparency_dev("inclusion") {
        inclusion.push(json!({"index": t["leafIdx"], "size": t["treeSize"], "leaf": t["leafHash"], "root": t["root"],
            "proof": if t["proof"].is_null() { json!([]) } else { t["proof"].clone() }}));
        inclusion_want.push(t["wantErr"] == false);
    }
    assert!(inclusion.len() > 90);
    // Consistency proofs: the page must decide each as `merkle::verify_consistency` does (a few
    // vectors carry placeholder roots that are no hashes: both refuse those).
    let (mut consistency, mut consistency_want) = (Vec::new(), Vec::new());
    for t in transparency_dev("consistency") {
        let proof = if t["proof"].is_null() { json!([]) } else { t["proof"].clone() };
        let hash = |v: &Value| v.as_str().and_then(zachetka::merkle::Hash::from_b64);
        let hashes: Option<Vec<_>> = proof.as_array().unwrap().iter().map(hash).collect();
        let rust = match (t["size1"].as_u64(), t["size2"].as_u64(), hash(&t["root1"]), hash(&t["root2"]), hashes) {
            (Some(m), Some(n), Some(r1), Some(r2), Some(p)) => {
                zachetka::merkle::verify_consistency(m, n, r1, r2, &p).is_ok()
            }
            _ => false,
        };
        consistency.push(json!({"size1": t["size1"], "size2": t["size2"], "root1": t["root1"], "root2": t["root2"],
            "proof": proof}));
        consistency_want.push(rust);
    }
    assert!(consistency.len() > 90 && consistency_want.iter().filter(|&&ok| ok).count() >= 5);
    let note = String::from_utf8(super::vectors::read("zachetka/checkpoint-size10.note")).unwrap();
    let vkey = str_of(&events["keys"]["ledger"], "vkey");
    let other_vkey = String::from_utf8(super::vectors::read("c2sp-signed-note-example.vkey")).unwrap();
    let flipped = note.replacen("pF1aQSd7", "pF1aQSd8", 1);
    assert_ne!(flipped, note);
    let notes = json!([
        {"note": note, "vkey": vkey, "origin": ORIGIN},
        {"note": note, "vkey": vkey, "origin": "other.example"},
        {"note": flipped, "vkey": vkey, "origin": ORIGIN},
        {"note": note, "vkey": other_vkey.trim(), "origin": ORIGIN},
    ]);
    let notes_want = json!([
        {"ok": true, "tree_size": 10, "root_hash": "loGdSOHzx2zYtG3H8W2gg1cqifmpygZynLxSXlym6ps="},
        {"ok": false, "code": "checkpoint_invalid"},
        {"ok": false, "code": "checkpoint_invalid"},
        {"ok": false, "code": "checkpoint_invalid"},
    ]);
    // Strict base64 (the page decodes it by hand): what `keys::b64_decode` accepts, byte for byte.
    let b64: Vec<String> = [
        "",
        "AA==",
        "AAA=",
        "AAAA",
        "AQ==",
        "AR==",
        "AQE=",
        "AQF=",
        "/+8=",
        "-_8=",
        "AA=",
        "AA",
        "A===",
        "AA=A",
        "AA==AA==",
        " AA=",
        "AA\n==",
        "Zm9v",
        "Zm9vYg==",
        "Zm9vYmE=",
        "Zm9vYmFy",
        "ЖЖЖЖ",
        "Zm9vYmFyCg==",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([zachetka::keys::b64(&[0xa5; 32]), zachetka::keys::b64(&(0..=255u8).collect::<Vec<_>>())])
    .collect();
    let b64_want: Vec<Value> = b64
        .iter()
        .map(|s| match zachetka::keys::b64_decode(s) {
            Some(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
            None => Value::Null,
        })
        .collect();
    let (map_proofs, map_proofs_want) = map_proof_answers();
    (
        json!({"jcs": jcs, "leaves": leaves, "inclusion": inclusion, "consistency": consistency, "notes": notes,
               "b64": b64, "map_proofs": map_proofs}),
        json!({"jcs": jcs_want, "leaves": leaves_want, "inclusion": inclusion_want, "consistency": consistency_want,
               "notes": notes_want, "b64": b64_want, "map_proofs": map_proofs_want}),
    )
}

/// Completeness map proofs (README "Completeness commitments") for the page's check, with what
/// `verify_map_proof` decides: every learner of a few maps present and absent, and the ways a
/// proof can be wrong (another value, a changed path hash, non-adjacent neighbours, an absent
/// learner with a value, a proof of another learner, both or neither branch, a bad hash).
fn map_proof_answers() -> (Vec<Value>, Vec<Value>) {
    use zachetka_projections::completeness::{verify_map_proof, LearnerValue, Map, ValueJson};
    let (mut cases, mut want) = (Vec::new(), Vec::new());
    let mut push = |root: &[u8; 32], learner: &str, value: &LearnerValue, proof: Value| {
        let decided = match serde_json::from_value(proof.clone()) {
            Ok(p) => verify_map_proof(root, learner, value, &p).map_or_else(|e| e.code(), |()| "ok"),
            Err(_) => "map_proof_malformed",
        };
        cases.push(json!({"root": zachetka::keys::b64(root), "learner": learner,
            "value": ValueJson::from(*value), "proof": proof}));
        want.push(json!(decided));
    };
    for n in [0usize, 1, 2, 5, 9] {
        let learners: Vec<String> = (0..n).map(|i| format!("47-{i:06}")).collect();
        let value = |i: usize| LearnerValue::of_leaves((0..=i as u8).map(|b| [b; 32]).collect::<Vec<_>>().iter());
        let map = Map::from_values(learners.iter().enumerate().map(|(i, l)| (l.as_str(), value(i))));
        let root = map.root();
        for l in learners.iter().map(String::as_str).chain(["nobody", "47-999999", "0"]) {
            let (v, proof) = map.prove(l);
            let proof = serde_json::to_value(&proof).unwrap();
            push(&root, l, &v, proof.clone());
            push(&root, l, &v.chain(&[7; 32]), proof.clone());
            if let Some(h) = proof.pointer("/present/hashes/0") {
                let mut bad = proof.clone();
                let mut bytes = zachetka::keys::b64_decode(h.as_str().unwrap()).unwrap();
                bytes[0] ^= 1;
                *bad.pointer_mut("/present/hashes/0").unwrap() = json!(zachetka::keys::b64(&bytes));
                push(&root, l, &v, bad);
                let mut swapped = proof.clone();
                swapped["present"]["leaf_index"] = json!(proof["present"]["leaf_index"].as_u64().unwrap() ^ 1);
                push(&root, l, &v, swapped);
            }
            if proof.get("absent").is_some() && n >= 3 {
                // Neighbours two apart: a learner hidden between them.
                let (_, first) = map.prove(&learners[0]);
                let mut wide = proof.clone();
                wide["absent"]["left"] = json!(null);
                wide["absent"]["right"] = json!({"leaf_index": 2, "key_hash": zachetka::keys::b64(&zachetka_projections::completeness::key_hash(&learners[0])),
                    "value": ValueJson::from(value(0)), "hashes": serde_json::to_value(&first).unwrap()["present"]["hashes"].clone()});
                push(&root, l, &v, wide);
            }
            let other = learners.iter().find(|o| o.as_str() != l);
            if let Some(o) = other {
                let (ov, op) = map.prove(o);
                push(&root, l, &ov, serde_json::to_value(&op).unwrap());
            }
        }
        push(&root, "x", &LearnerValue::EMPTY, json!({"map_size": n}));
        push(
            &root,
            "x",
            &LearnerValue::EMPTY,
            json!({"map_size": n, "present": {"leaf_index": 0, "hashes": ["AA=="]}}),
        );
        push(
            &root,
            "x",
            &LearnerValue::EMPTY,
            json!({"map_size": n, "present": {"leaf_index": 0, "hashes": []}, "absent": {"left": null, "right": null}}),
        );
    }
    (cases, want)
}

#[test]
fn the_page_verifies_real_tampered_and_wrongly_keyed_bundles_in_chromium() {
    let chromium = match browser() {
        Ok(c) => c,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the browser test cannot run in CI: {why}")
        }
        Err(why) => {
            eprintln!("NOT RUN: the record verifier page in Chromium: {why}");
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    demo_ledger(&demo);

    // The real bundle, two entries of the learner's own stream withheld.
    let (probe, learner) = {
        let ledger = open_dir(&demo);
        build_bundle(&ledger, None, &[])
    };
    let own: Vec<u64> = disclosed(&probe)
        .into_iter()
        .filter(|(_, e)| e["event"]["stream"] == format!("learner/{learner}"))
        .map(|(s, _)| s)
        .collect();
    assert!(own.len() >= 6, "the demo learner {learner} has too few entries: {own:?}");
    let withheld = [own[own.len() / 3], own[2 * own.len() / 3]];
    // An olympiad attested to the learner and then revoked (review s11, finding 2), appended
    // after the demo by its olympiad issuer: the exporter never withholds the revocation of a
    // disclosed attestation, and a revocation its holder withholds leaves the status unknown.
    let (attested_seq, revoked_seq, kept_seq) = {
        let ledger = open_dir(&demo);
        let origin = ledger.config().origin.clone();
        let issuer = zachetka::demo::demo_key(&origin, "issuer/olympiads");
        // The ledger's time: the demo's last entry may be dated after the wall clock.
        let n = ledger.head().0.tree_size;
        let last: Value = serde_json::from_slice(&ledger.entries(n - 1, 1).unwrap()[0]).unwrap();
        let last = zachetka::time::parse_rfc3339(last["recorded_at"].as_str().unwrap()).unwrap();
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let now = zachetka::time::format_rfc3339(last.max(wall));
        let event = |n: u64, ty: &str, data: Value| {
            let ev = json!({"ledger": origin, "stream": format!("learner/{learner}"), "type": ty, "id": id(n),
                "occurred_at": now, "author": issuer.did(), "data": data});
            zachetka::event::sign_event(&ev, &issuer).unwrap()
        };
        let attested = event(
            990_201,
            "portfolio.achievement_attested",
            json!({"v": 1, "achievement_id": "web-olymp-1", "kind": "olympiad", "level": "regional",
                "date": "2026-03-01", "result": "winner"}),
        );
        let revoked = event(
            990_202,
            "portfolio.achievement_revoked",
            json!({"v": 1, "achievement_id": "web-olymp-1", "reason": "disqualified"}),
        );
        // A second one, never revoked, after every withheld entry of the bundles below.
        let kept = event(
            990_203,
            "portfolio.achievement_attested",
            json!({"v": 1, "achievement_id": "web-olymp-2", "kind": "olympiad", "level": "municipal",
                "date": "2026-03-02", "result": "prize"}),
        );
        let seqs: Vec<u64> =
            ledger.append_blocking(vec![attested, revoked, kept]).into_iter().map(|r| r.unwrap().seq).collect();
        (seqs[0], seqs[1], seqs[2])
    };
    let (real, _) = build_bundle(&open_dir(&demo), Some(&learner), &withheld);
    // The same learner as `zachetka export` writes it (the record crate's exporter), with only
    // final results, documents and achievements disclosed: the page verifies what the exporter
    // makes, not only this test's builder.
    let exported: Value = {
        let ledger = open_dir(&demo);
        ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
        let only = zachetka_record::Disclosure::parse("final-results,documents,achievements").unwrap();
        let bundle = zachetka::record::export_learner(&ledger, &learner, &only).unwrap();
        serde_json::from_slice(&bundle.to_json()).unwrap()
    };
    // Only the attestations chosen: the exporter carries the revocation; then its holder turns
    // the revocation into a withheld item.
    let attested_only: Value = {
        let ledger = open_dir(&demo);
        ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
        let only = zachetka_record::Disclosure::parse("portfolio.achievement_attested").unwrap();
        let bundle = zachetka::record::export_learner(&ledger, &learner, &only).unwrap();
        serde_json::from_slice(&bundle.to_json()).unwrap()
    };
    let item_at = |b: &Value, seq: u64| b["entries"].as_array().unwrap().iter().position(|i| i["seq"] == seq).unwrap();
    assert!(
        attested_only["entries"][item_at(&attested_only, revoked_seq)].get("entry").is_some(),
        "revocation carried"
    );
    // The bundle with the entry at `seq` turned into a withheld item by its holder.
    let withhold = |b: &Value, seq: u64| -> Value {
        let mut b = b.clone();
        let at = item_at(&b, seq);
        let bytes = zachetka::keys::b64_decode(b["entries"][at]["entry"].as_str().unwrap()).unwrap();
        b["entries"][at] = json!({"seq": seq,
            "leaf_hash": zachetka::merkle::leaf_hash(&bytes).to_b64(), "proof": b["entries"][at]["proof"]});
        b
    };
    let revocation_withheld = withhold(&attested_only, revoked_seq);
    // The Rust verifier's record summary of a bundle that verifies.
    let rust_record = |b: &Value| -> zachetka_record::RecordSummary {
        let vk = open_dir(&demo).config().verifier_key.clone();
        let r = zachetka_record::verify(&serde_json::to_vec(b).unwrap(), &vk, &Default::default());
        assert!(r.ok, "{:#?}", r.failures);
        r.record
    };
    let rust_attested_only = rust_record(&attested_only).achievements;
    let rust_revocation_withheld = rust_record(&revocation_withheld).achievements;
    let ours = |list: &[Value]| list.iter().find(|a| a["seq"] == attested_seq).unwrap().clone();
    assert_eq!(ours(&rust_attested_only)["revoked"], json!(true));
    assert_eq!(ours(&rust_revocation_withheld)["revoked"], Value::Null);
    // A term grade the demo revised on appeal (found in the log): exported with the final
    // results, it travels with its correction; then its holder withholds the correction.
    let (correction_withheld, corrected, grade_seq, fix_seq) = {
        let ledger = open_dir(&demo);
        ledger.read_side().wait_applied_blocking(ledger.head().0.tree_size);
        let n = ledger.head().0.tree_size;
        let events: Vec<Value> = (ledger.entries(0, n).unwrap().iter())
            .map(|b| serde_json::from_slice::<Value>(b).unwrap()["event"].clone())
            .collect();
        let seq_of = |id: &Value| events.iter().position(|e| e["id"] == *id).unwrap() as u64;
        let fix_seq = (0..n)
            .find(|&s| {
                let e = &events[s as usize];
                e["type"] == "journal.record_corrected"
                    && events[seq_of(&e["data"]["corrected_event_id"]) as usize]["type"] == "journal.term_grade_set"
            })
            .expect("the demo revises a term grade");
        let fix = &events[fix_seq as usize];
        let grade_seq = seq_of(&fix["data"]["corrected_event_id"]);
        let who = fix["stream"].as_str().unwrap().strip_prefix("learner/").unwrap();
        let only = zachetka_record::Disclosure::parse("final-results").unwrap();
        let bundle = zachetka::record::export_learner(&ledger, who, &only).unwrap();
        let corrected: Value = serde_json::from_slice(&bundle.to_json()).unwrap();
        (withhold(&corrected, fix_seq), corrected, grade_seq, fix_seq)
    };
    let rust_corrected = rust_record(&corrected).results;
    let rust_correction_withheld = rust_record(&correction_withheld).results;
    let the_grade = |list: &[Value]| list.iter().find(|x| x["seq"] == grade_seq).unwrap().clone();
    assert_eq!(the_grade(&rust_corrected)["corrected"], json!(true));
    assert_eq!(the_grade(&rust_correction_withheld)["corrected"], Value::Null);
    let entries_total = real["entries"].as_array().unwrap().len();
    // The Rust verifier's report of the exported bundle, for the page to agree with.
    let rust_report = {
        let vk = open_dir(&demo).config().verifier_key.clone();
        zachetka_record::verify(&serde_json::to_vec(&exported).unwrap(), &vk, &Default::default())
    };
    assert!(rust_report.ok, "{:#?}", rust_report.failures);
    // An institution's registration cut out of `authority` while a carried grant is scoped to
    // it: the rules replay refuses the grant (`institution_unknown`), and so must the page's
    // grant check, which replays the registry too.
    let unregistered = {
        let mut b = exported.clone();
        let items = b["authority"].as_array().unwrap().clone();
        let event = |it: &Value| -> Value {
            serde_json::from_slice::<Value>(&zachetka::keys::b64_decode(it["entry"].as_str().unwrap()).unwrap())
                .unwrap()["event"]
                .clone()
        };
        let scoped: Vec<Value> = items
            .iter()
            .map(event)
            .filter(|e| e["type"] == "keys.granted")
            .filter_map(|e| e["data"]["scope"]["institution"].as_str().map(|i| json!(i)))
            .collect();
        let at = items
            .iter()
            .position(|it| {
                let e = event(it);
                e["type"] == "registry.institution_registered" && scoped.contains(&e["data"]["institution"])
            })
            .expect("the exported bundle carries the registration of an institution its grants name");
        b["authority"].as_array_mut().unwrap().remove(at);
        b
    };
    let unregistered_codes: Vec<String> = {
        let vk = open_dir(&demo).config().verifier_key.clone();
        let r = zachetka_record::verify(&serde_json::to_vec(&unregistered).unwrap(), &vk, &Default::default());
        r.failures.iter().map(|f| f.code.clone()).collect()
    };
    assert_eq!(unregistered_codes.first().map(String::as_str), Some("institution_unknown"), "{unregistered_codes:?}");
    let demo_key = open_dir(&demo).config().verifier_key.clone();
    let up_to = exported["completeness"]["up_to"].as_u64().expect("the demo ledger committed");
    // Completeness tampered: the value's count one lower (the items and the map both disagree),
    // and an item below the commitment's position cut out entirely.
    let mut lowered = exported.clone();
    lowered["completeness"]["value"]["count"] = json!(exported["completeness"]["value"]["count"].as_u64().unwrap() - 1);
    let mut cut = exported.clone();
    let items = cut["entries"].as_array_mut().unwrap();
    let at = items.iter().rposition(|it| it["seq"].as_u64().unwrap() < up_to).unwrap();
    items.remove(at);
    let rust_codes = |b: &Value| -> Vec<String> {
        let vk = open_dir(&demo).config().verifier_key.clone();
        let r = zachetka_record::verify(&serde_json::to_vec(b).unwrap(), &vk, &Default::default());
        let mut c: Vec<String> = r.failures.iter().map(|f| f.code.clone()).collect();
        c.sort();
        c
    };
    let (lowered_codes, cut_codes) = (rust_codes(&lowered), rust_codes(&cut));
    assert_eq!(lowered_codes, ["completeness_value_mismatch", "map_proof_invalid"]);
    assert!(cut_codes.contains(&"completeness_value_mismatch".to_owned()), "{cut_codes:?}");

    // Tampered: one disclosed entry's `recorded_at` one second later. Its signature still holds
    // (recorded_at is the ledger's, not the author's), so the inclusion proof must catch it.
    let mut tampered = real.clone();
    let (tampered_seq, item) = tampered["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|it| it.get("entry").is_some())
        .map(|it| (it["seq"].as_u64().unwrap(), it))
        .nth(3)
        .unwrap();
    let mut bytes = zachetka::keys::b64_decode(item["entry"].as_str().unwrap()).unwrap();
    let at = String::from_utf8_lossy(&bytes).find("\"recorded_at\":\"").unwrap() + "\"recorded_at\":\"".len() + 18;
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    item["entry"] = json!(zachetka::keys::b64(&bytes));

    // Dropped: one disclosed entry of the learner's own stream left out, neither disclosed nor
    // withheld, as an exporter hiding a bad mark would. The next entry of the stream names it.
    let mut dropped = real.clone();
    let items = dropped["entries"].as_array_mut().unwrap();
    let at = items.iter().position(|it| it["seq"].as_u64() == Some(own[own.len() / 2])).unwrap();
    assert!(items[at].get("entry").is_some() && !withheld.contains(&own[own.len() / 2]));
    items.remove(at);
    let next_own = own[own.len() / 2 + 1];

    // A second checkpoint: an older one the ledger signed, and the consistency proof from it to
    // the bundle's; then the same with one proof hash replaced (another history's), and the note
    // without its proof. The Rust verifier's decisions, for the page to agree with.
    let bundle_size = real["checkpoint"].as_str().unwrap().lines().nth(1).unwrap().parse::<u64>().unwrap();
    let (older_note, older_proof) = {
        let ledger = open_dir(&demo);
        let (older, note) = (1..bundle_size)
            .rev()
            .skip(50)
            .find_map(|n| ledger.checkpoint_at(n).unwrap().map(|note| (n, note)))
            .expect("the demo ledger signed an older checkpoint");
        let hashes = zachetka::merkle::hashes_to_b64(&ledger.prove_consistency(older, bundle_size).unwrap());
        (note, json!({"first": older, "second": bundle_size, "hashes": hashes}))
    };
    let mut forged_proof = older_proof.clone();
    forged_proof["hashes"][0] = json!(zachetka::keys::b64(&[9; 32]));
    let rust_with_other = |proof: &Value| {
        let vk = open_dir(&demo).config().verifier_key.clone();
        let other = zachetka_record::OtherCheckpoint {
            note: older_note.clone(),
            proof: serde_json::from_value(proof.clone()).unwrap(),
        };
        let options = zachetka_record::Options { other: Some(other), ..Default::default() };
        zachetka_record::verify(&serde_json::to_vec(&real).unwrap(), &vk, &options)
    };
    let rust_consistent = rust_with_other(&older_proof);
    assert!(rust_consistent.ok, "{:?}", rust_consistent.failures);
    let rust_forged = rust_with_other(&forged_proof);
    let rust_forged_codes: Vec<&str> = rust_forged.failures.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(rust_forged_codes, ["consistency_invalid"]);

    // Witnesses (DESIGN 3.6): the bundle's checkpoint cosigned by two of three witnesses; the
    // page asked for 2 of them verifies it, for 3 refuses it, and a line under a given witness's
    // name and key id signed by another key is refused; each as the Rust verifier decides.
    let witness = |n: u8| {
        zachetka::cosignature::Witness::new(
            &format!("w{n}.witness.example"),
            zachetka::keys::KeyPair::from_seed(&[n; 32]),
        )
        .unwrap()
    };
    let (w1, w2, w3) = (witness(1), witness(2), witness(3));
    let witness_keys: Vec<String> = [&w1, &w2, &w3].iter().map(|w| w.verifier_key().encode()).collect();
    let with_note = |note: Vec<u8>| {
        let mut b = real.clone();
        b["checkpoint"] = json!(String::from_utf8(note).unwrap());
        b
    };
    let checkpoint = real["checkpoint"].as_str().unwrap().as_bytes().to_vec();
    let cosigned = with_note(w2.cosign(&w1.cosign(&checkpoint, 1_764_662_400).unwrap(), 1_764_662_460).unwrap());
    let forged = {
        let impostor =
            zachetka::cosignature::Witness::new("w2.witness.example", zachetka::keys::KeyPair::from_seed(&[9; 32]))
                .unwrap();
        let body = &checkpoint[..=checkpoint.windows(2).position(|w| w == b"\n\n").unwrap()];
        let line = impostor.cosignature_line(body, 1_764_662_400).unwrap();
        let mut raw = zachetka::keys::b64_decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        raw[..4].copy_from_slice(&w2.verifier_key().key_id.to_be_bytes());
        let mut note = w1.cosign(&checkpoint, 1_764_662_400).unwrap();
        note.extend_from_slice(format!("— w2.witness.example {}\n", zachetka::keys::b64(&raw)).as_bytes());
        with_note(note)
    };
    let rust_witnessed = |b: &Value, k: usize| {
        let vk = open_dir(&demo).config().verifier_key.clone();
        let options = zachetka_record::Options {
            witnesses: witness_keys.iter().map(|v| zachetka::cosignature::WitnessKey::parse(v).unwrap()).collect(),
            witnesses_required: k,
            ..Default::default()
        };
        zachetka_record::verify(&serde_json::to_vec(b).unwrap(), &vk, &options)
    };
    let rust_enough = rust_witnessed(&cosigned, 2);
    assert!(rust_enough.ok, "{:?}", rust_enough.failures);
    let witness_codes =
        |r: &zachetka_record::Report| -> Vec<String> { r.failures.iter().map(|f| f.code.clone()).collect() };
    let rust_too_few_report = rust_witnessed(&cosigned, 3);
    let rust_too_few = witness_codes(&rust_too_few_report);
    assert_eq!(rust_too_few, ["cosignatures_insufficient"]);
    let rust_forged_witness = witness_codes(&rust_witnessed(&forged, 1));
    assert_eq!(rust_forged_witness, ["cosignature_invalid"]);

    // A wrong key: another ledger of the same name.
    let (_perf_dir, perf) = perf_ledger(5_000);
    let other_key = perf.config().verifier_key.clone();
    let perf_bundle: Value = serde_json::from_slice(
        &zachetka::record::export_learner(&perf, "perf-1", &Default::default()).unwrap().to_json(),
    )
    .unwrap();
    assert_eq!(perf_bundle["entries"].as_array().unwrap().len(), 5_000);
    assert_eq!(perf_bundle["completeness"]["value"]["count"], 5_000, "the commitment covers every grade");
    drop(perf);

    // The bundles stay beside the screenshots, to open in the page by hand.
    let files = artifacts();
    std::fs::create_dir_all(&files).unwrap();
    let write = |name: &str, v: &Value| -> PathBuf {
        let p = files.join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
        p
    };
    let write_text = |name: &str, text: &[u8]| -> PathBuf {
        let p = files.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (vectors, expected) = ed25519_vectors();
    let (known, known_want) = known_answers();
    let served = serve_dir(&demo);
    let config = json!({
        "chromium": chromium,
        "base": served.base,
        "artifacts": artifacts(),
        "cases": [
            {"name": "verified", "bundle": write("real.json", &real)},
            {"name": "exported", "bundle": write("exported.json", &exported)},
            {"name": "tampered", "bundle": write("tampered.json", &tampered)},
            {"name": "wrong-key", "bundle": write("real.json", &real), "key": other_key},
            {"name": "no-key", "bundle": write("real.json", &real), "key": ""},
            {"name": "dropped", "bundle": write("dropped.json", &dropped)},
            {"name": "unregistered-institution", "bundle": write("unregistered-institution.json", &unregistered)},
            {"name": "completeness-lowered", "bundle": write("completeness-lowered.json", &lowered)},
            {"name": "completeness-cut", "bundle": write("completeness-cut.json", &cut)},
            {"name": "completeness-required", "bundle": write("real.json", &real), "require_complete": true},
            {"name": "consistent-older", "bundle": write("real.json", &real),
             "other_note": write_text("older.note", &older_note), "other_proof": write("older-proof.json", &older_proof)},
            {"name": "consistency-forged", "bundle": write("real.json", &real),
             "other_note": write_text("older.note", &older_note), "other_proof": write("forged-proof.json", &forged_proof)},
            {"name": "consistency-proof-missing", "bundle": write("real.json", &real),
             "other_note": write_text("older.note", &older_note)},
            {"name": "witnesses-enough", "bundle": write("cosigned.json", &cosigned),
             "witnesses": witness_keys, "witnesses_required": 2},
            {"name": "witnesses-too-few", "bundle": write("cosigned.json", &cosigned),
             "witnesses": witness_keys, "witnesses_required": 3},
            {"name": "witnesses-all-by-default", "bundle": write("cosigned.json", &cosigned), "witnesses": witness_keys},
            {"name": "witness-forged", "bundle": write("witness-forged.json", &forged),
             "witnesses": witness_keys, "witnesses_required": 1},
            {"name": "witness-key-bad", "bundle": write("cosigned.json", &cosigned),
             "witnesses": [demo_key.clone()]},
            {"name": "perf-5000", "bundle": write("perf.json", &perf_bundle), "key": other_key},
            {"name": "attested-only", "bundle": write("attested-only.json", &attested_only)},
            {"name": "revocation-withheld", "bundle": write("revocation-withheld.json", &revocation_withheld)},
            {"name": "corrected", "bundle": write("corrected.json", &corrected)},
            {"name": "correction-withheld", "bundle": write("correction-withheld.json", &correction_withheld)},
        ],
        "ed25519": vectors,
        "known": known,
        // RFC 8032 TEST 2, for the browser's own Ed25519 speed beside the page's.
        "baseline": {"n": 5_000,
            "pk": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "msg": "72",
            "sig": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    });
    let config_path = write("config.json", &config);
    let out = Command::new("node")
        .arg(Path::new(MANIFEST).join("tests/web/drive.mjs"))
        .arg(&config_path)
        .current_dir(Path::new(MANIFEST).join("tests/web"))
        .output()
        .unwrap();
    assert!(out.status.success(), "drive.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let case = |name: &str| shown["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    let codes = |c: &Value| -> Vec<(String, Option<u64>)> {
        c["report"]["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["code"].as_str().unwrap().to_owned(), f["seq"].as_u64()))
            .collect()
    };
    for c in shown["cases"].as_array().unwrap() {
        // Nothing but the page and its two files was ever requested: the bundle stayed local.
        let mut requests: Vec<&str> = c["requests"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        requests.sort();
        assert_eq!(requests, ["GET /verify", "GET /web/verify.css", "GET /web/verify.js"], "{}", c["name"]);
        assert_eq!(c["errors"], json!([]), "{}: page errors", c["name"]);
        assert!(Path::new(c["screenshot"].as_str().unwrap()).exists());
    }

    let ok = case("verified");
    assert_eq!(ok["state"], "verified", "{:#}", ok["report"]);
    let report = &ok["report"];
    assert_eq!(report["ok"], true);
    assert_eq!(report["learner"], json!(learner));
    assert_eq!(report["withheld"], 2);
    assert_eq!(report["disclosed"].as_u64().unwrap() as usize, entries_total - 2);
    assert_eq!(
        report["signatures_checked"].as_u64().unwrap() as usize,
        entries_total - 2 + real["authority"].as_array().unwrap().len()
    );
    assert_eq!(
        report["proofs_checked"].as_u64().unwrap() as usize,
        entries_total + real["authority"].as_array().unwrap().len()
    );
    assert_eq!(report["completeness"]["status"], "not_present");
    assert!(!report["record"]["institutions"].as_array().unwrap().is_empty(), "{:#}", report["record"]);
    assert!(ok["status"].as_str().unwrap().starts_with("Verified"));

    let exported_case = case("exported");
    assert_eq!(exported_case["state"], "verified", "{:#}", exported_case["report"]["failures"]);
    let withheld_by_exporter =
        exported["entries"].as_array().unwrap().iter().filter(|e| e.get("entry").is_none()).count();
    assert!(withheld_by_exporter > 0, "the disclosure withheld something");
    assert_eq!(exported_case["report"]["withheld"], withheld_by_exporter);
    // Complete as of the commitment's position, with the numbers the Rust verifier reports.
    let page_c = &exported_case["report"]["completeness"];
    let rust_c = serde_json::to_value(rust_report.completeness.as_ref().unwrap()).unwrap();
    // The log went on after the demo's last commitment (the olympiad above at least): complete up
    // to P only, never "complete" (review s11, finding 1), as the Rust verifier says.
    assert_eq!(page_c["status"], "complete_up_to", "{:#}", exported_case["report"]["failures"]);
    for k in [
        "status",
        "up_to",
        "commitment_seq",
        "covered",
        "covered_withheld",
        "after",
        "uncovered_positions",
        "max_uncovered",
    ] {
        assert_eq!(page_c[k], rust_c[k], "{k}: page {page_c:#}, rust {rust_c:#}");
    }
    let said = exported_case["facts"]["Completeness"].as_str().unwrap();
    assert!(
        said.starts_with(&format!("complete up to position {up_to} (commitment at seq {})", page_c["commitment_seq"])),
        "{said}"
    );
    assert!(said.contains("may hold entries of the learner that this bundle does not show"), "{said}");
    // The revocation: shown with its attestation, and unknown once withheld, as in the Rust report.
    for (name, rust) in [("attested-only", &rust_attested_only), ("revocation-withheld", &rust_revocation_withheld)] {
        let c = case(name);
        assert_eq!(c["state"], "verified", "{name}: {:#}", c["report"]["failures"]);
        let page = c["report"]["record"]["achievements"].as_array().unwrap();
        assert_eq!(page.len(), rust.len(), "{name}");
        for (p, r) in page.iter().zip(rust) {
            for k in ["seq", "achievement_id", "revoked", "revoked_unknown"] {
                assert_eq!(p.get(k), r.get(k), "{name} {k}: page {p}, rust {r}");
            }
        }
    }
    assert_eq!(
        ours(case("revocation-withheld")["report"]["record"]["achievements"].as_array().unwrap())["revoked_unknown"],
        json!("1 withheld entry of the learner comes after it; it may revoke it")
    );
    // The status column as a person reads it: revoked; unknown with why; and an achievement not
    // revoked is "in force" only as far as completeness reaches (complete up to P here).
    let status_of = |name: &str, seq: u64| -> String {
        let c = case(name);
        let row = c["achievements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[0].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(seq))
            .cloned();
        row.unwrap_or_else(|| panic!("{name}: no row {seq}: {:#}", c["achievements"]))[5].as_str().unwrap().to_owned()
    };
    assert_eq!(status_of("attested-only", attested_seq), "revoked");
    assert_eq!(
        status_of("revocation-withheld", attested_seq),
        "unknown: 1 withheld entry of the learner comes after it; it may revoke it"
    );
    // A corrected result, as the Rust report has it, and its status as a person reads it.
    for (name, rust) in [("corrected", &rust_corrected), ("correction-withheld", &rust_correction_withheld)] {
        let c = case(name);
        assert_eq!(c["state"], "verified", "{name}: {:#}", c["report"]["failures"]);
        let page = c["report"]["record"]["results"].as_array().unwrap();
        assert_eq!(page.len(), rust.len(), "{name}");
        for (p, r) in page.iter().zip(rust) {
            for k in ["seq", "corrected", "corrected_unknown", "corrections"] {
                assert_eq!(p.get(k), r.get(k), "{name} {k}: page {p}, rust {r}");
            }
        }
    }
    let result_status = |name: &str, seq: u64| -> String {
        let c = case(name);
        let row = c["results"].as_array().unwrap().iter().find(|r| r[0].as_str() == Some(&seq.to_string())).cloned();
        row.unwrap_or_else(|| panic!("{name}: no row {seq}: {:#}", c["results"]))[6].as_str().unwrap().to_owned()
    };
    let fix = the_grade(&rust_corrected)["corrections"][0].clone();
    let now = format!("corrected at seq {fix_seq}: mark {} ({})", fix["mark"], fix["reason"].as_str().unwrap());
    assert!(result_status("corrected", grade_seq).starts_with(&now), "{}", result_status("corrected", grade_seq));
    let why = the_grade(&rust_correction_withheld)["corrected_unknown"].as_str().unwrap().to_owned();
    assert_eq!(result_status("correction-withheld", grade_seq), format!("unknown: {why}"));
    let in_force = format!("in force up to position {up_to} (a revocation after it is covered by no commitment)");
    for name in ["attested-only", "revocation-withheld", "exported"] {
        assert_eq!(status_of(name, kept_seq), in_force, "{name}");
    }
    // Without a commitment in the bundle, only among the entries shown.
    assert_eq!(status_of("verified", attested_seq), "revoked");
    assert_eq!(status_of("verified", kept_seq), "in force among the entries shown (completeness not proved)");
    let page_codes = |name: &str| -> Vec<String> {
        let c = case(name);
        assert_eq!(c["state"], "failed", "{name}");
        let mut got: Vec<String> = codes(&c).into_iter().map(|(code, _)| code).collect();
        got.sort();
        got
    };
    assert_eq!(page_codes("completeness-lowered"), lowered_codes);
    assert_eq!(page_codes("completeness-cut"), cut_codes);
    let lowered_case = case("completeness-lowered");
    assert!(
        lowered_case["status"].as_str().unwrap().contains("completeness_value_mismatch"),
        "{}",
        lowered_case["status"]
    );
    let said = lowered_case["facts"]["Completeness"].as_str().unwrap();
    assert!(said.starts_with("NOT proved (completeness_value_mismatch)"), "{said}");
    assert!(lowered_case["failures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str().unwrap().contains("the commitment counts")));
    assert_eq!(page_codes("completeness-required"), ["completeness_missing"]);

    // The second checkpoint: one history with the older note, as the Rust verifier says; a forged
    // proof and a missing one refused with `consistency_invalid`.
    let consistent = case("consistent-older");
    assert_eq!(consistent["state"], "verified", "{:#}", consistent["report"]["failures"]);
    let checked = rust_consistent.consistency.as_ref().unwrap();
    assert_eq!(consistent["report"]["consistency"], json!({"first": checked.first, "second": checked.second}));
    assert!(consistent["facts"]["History"]
        .as_str()
        .unwrap()
        .contains(&format!("extends the tree of size {}", checked.first)));
    assert_eq!(page_codes("consistency-forged"), rust_forged_codes);
    assert_eq!(page_codes("consistency-proof-missing"), ["consistency_invalid"]);

    // Witnesses: the page decides as the Rust verifier does, and says who cosigned when.
    let enough = case("witnesses-enough");
    assert_eq!(enough["state"], "verified", "{:#}", enough["report"]["failures"]);
    assert_eq!(enough["report"]["cosignatures"], serde_json::to_value(&rust_enough.cosignatures).unwrap());
    let said = enough["facts"]["Witnesses"].as_str().unwrap();
    assert!(
        said.starts_with(
            "cosigned the checkpoint: 2 of 3 witnesses given (2 required): w1.witness.example at 2025-12-02T08:00:00Z"
        ),
        "{said}"
    );
    assert_eq!(page_codes("witnesses-too-few"), rust_too_few);
    assert_eq!(page_codes("witnesses-all-by-default"), rust_too_few);
    assert_eq!(case("witnesses-too-few")["report"]["failures"][0]["message"], rust_too_few_report.failures[0].message);
    assert_eq!(page_codes("witness-forged"), rust_forged_witness);
    // The ledger's own key is no witness key: refused as POST /v1/verify refuses it.
    assert_eq!(page_codes("witness-key-bad"), ["bad_query"]);
    assert!(case("witness-key-bad")["failures"][0].as_str().unwrap().contains("signature type 0x01"));

    // The page lists failures in the order the Rust verifier does (FORMAT.md section 5), so
    // its status line names the same first failure as `zachetka verify`.
    for (name, bundle, key) in [
        ("tampered", &tampered, &demo_key),
        ("dropped", &dropped, &demo_key),
        ("wrong-key", &real, &other_key),
        ("unregistered-institution", &unregistered, &demo_key),
        ("completeness-lowered", &lowered, &demo_key),
        ("completeness-cut", &cut, &demo_key),
    ] {
        let r = zachetka_record::verify(&serde_json::to_vec(bundle).unwrap(), key, &Default::default());
        let rust: Vec<(String, Option<u64>)> = r.failures.iter().map(|f| (f.code.clone(), f.seq)).collect();
        assert!(!rust.is_empty(), "{name}: the Rust verifier refuses it");
        assert_eq!(codes(&case(name)), rust, "{name}: the page's failures in the Rust verifier's order");
        let status = case(name)["status"].as_str().unwrap().to_owned();
        assert!(status.contains(&format!("({})", rust[0].0)), "{name}: {status}");
    }

    let unreg = case("unregistered-institution");
    assert_eq!(unreg["state"], "failed", "the page must refuse what the Rust verifier refuses");
    assert_eq!(codes(&unreg).first().map(|(c, _)| c.as_str()), Some("institution_unknown"), "{:#}", unreg["report"]);

    let bad = case("tampered");
    assert_eq!(bad["state"], "failed");
    let got = codes(&bad);
    assert_eq!(got[0], ("proof_invalid".to_owned(), Some(tampered_seq)), "{got:?}");
    // The next entry of its stream names the original leaf hash: a broken chain, nothing else.
    assert!(got[1..].iter().all(|(c, s)| c == "stream_gap" && s.unwrap() > tampered_seq), "{got:?}");
    assert!(bad["status"].as_str().unwrap().contains("proof_invalid"), "{}", bad["status"]);

    let wrong = case("wrong-key");
    assert_eq!(wrong["state"], "failed");
    let got = codes(&wrong);
    assert_eq!(
        got.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["verifier_key_mismatch", "checkpoint_invalid"],
        "{got:?}"
    );

    // No trusted key: the bundle agrees with itself under the key it names, which anyone can
    // make; never shown as verified.
    let keyless = case("no-key");
    assert_eq!(keyless["state"], "unanchored", "{:#}", keyless["status"]);
    assert!(
        keyless["status"].as_str().unwrap().starts_with("NOT verified against a trusted key"),
        "{}",
        keyless["status"]
    );

    let gone = case("dropped");
    assert_eq!(gone["state"], "failed");
    // Both the link naming nothing and the version nobody accounts for, at the entry above the hole.
    assert_eq!(codes(&gone), vec![("stream_gap".to_owned(), Some(next_own)); 2], "{:#}", gone["report"]["failures"]);

    let perf = case("perf-5000");
    assert_eq!(perf["state"], "verified", "{:#}", perf["report"]["failures"]);
    assert_eq!(perf["report"]["disclosed"], 5_000);
    assert_eq!(perf["report"]["completeness"]["status"], "complete");
    assert_eq!(perf["report"]["completeness"]["covered"], 5_000);
    eprintln!(
        "the page verified a 5,000-entry bundle in {} ms (verifyBundle; phases {}), {} ms from file choice to result",
        perf["report"]["millis"], perf["report"]["phases_ms"], perf["wall_ms"]
    );
    let baseline = &shown["baseline"];
    assert_eq!(baseline["all_valid"], true, "{baseline}");
    eprintln!(
        "the same browser's floor: {} SHA-256 digests in {} ms, {} Ed25519 verifications in {} ms",
        baseline["n"], baseline["digest_ms"], baseline["n"], baseline["verify_ms"]
    );

    let known = &shown["known"];
    assert_eq!(known["jcs"], known_want["jcs"]);
    assert_eq!(known["leaves"], known_want["leaves"]);
    assert_eq!(known["inclusion"], known_want["inclusion"]);
    assert_eq!(known["consistency"], known_want["consistency"]);
    assert_eq!(known["b64"], known_want["b64"]);
    assert_eq!(known["map_proofs"], known_want["map_proofs"]);
    let decided: Vec<&str> = known_want["map_proofs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for code in ["ok", "map_proof_invalid", "map_proof_malformed"] {
        assert!(decided.iter().filter(|d| **d == code).count() >= 3, "{code}: {decided:?}");
    }
    for (got, want) in known["notes"].as_array().unwrap().iter().zip(known_want["notes"].as_array().unwrap()) {
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&got[k], v, "note check: got {got:#}");
        }
    }

    let got: Vec<bool> = serde_json::from_value(shown["ed25519"].clone()).unwrap();
    assert_eq!(got.len(), expected.len());
    let differ: Vec<(usize, &Value, bool)> =
        (0..got.len()).filter(|&i| got[i] != expected[i]).map(|i| (i, &vectors[i], expected[i])).collect();
    assert!(differ.is_empty(), "the page's strict Ed25519 differs from verify_strict on: {differ:#?}");
    assert!(expected.iter().filter(|&&a| a).count() > 50 && expected.iter().filter(|&&a| !a).count() > 500);
}
