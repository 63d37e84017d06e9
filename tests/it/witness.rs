//! Witnesses (DESIGN 3.6, C2SP `tlog-witness`): the stateful witness's protocol without HTTP
//! (what it cosigns, what it refuses and with which status, its state unchanged by a refusal and
//! kept across a restart, a forked ledger refused), then end to end on loopback: a ledger server
//! that collects two witnesses' cosignatures and serves them with its checkpoints and bundles,
//! which `zachetka verify --witnesses-required 2` accepts; a witness that is down fails nothing.

use super::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zachetka::checkpoint::{LedgerSigner, TreeHead};
use zachetka::cosignature::{check_cosignatures, Witness, WitnessKey};
use zachetka::cosigning::{Cosigning, CosigningConfig, WitnessTarget};
use zachetka::keys::KeyPair;
use zachetka::ledger::Ledger;
use zachetka::merkle::{self, leaf_hash, Hash, MemoryTree};
use zachetka::time::FixedClock;
use zachetka::witness::{AddCheckpoint, LogState, Logs, WitnessError, WitnessRefusal, WitnessService};

fn witness(n: u8) -> Witness {
    Witness::new(&format!("w{n}.witness.example"), KeyPair::from_seed(&[0x70 + n; 32])).unwrap()
}

fn signer() -> LedgerSigner {
    LedgerSigner::new(ORIGIN, ledger_key())
}

fn open_witness(dir: &std::path::Path, n: u8) -> Result<WitnessService, WitnessError> {
    let logs = Logs::parse(&[signer().verifier_key()]).unwrap();
    WitnessService::open(dir, witness(n), logs, Arc::new(FixedClock::at(1_795_000_000)))
}

/// A tree of leaves `0..n` named by `prefix` from leaf `fork_at` on (a shared history before it).
fn tree(n: u64, fork_at: u64, prefix: &str) -> MemoryTree {
    let mut t = MemoryTree::default();
    for i in 0..n {
        let leaf = if i < fork_at { format!("leaf {i}") } else { format!("{prefix} {i}") };
        t.push(leaf_hash(leaf.as_bytes()));
    }
    t
}

fn note_of(signer: &LedgerSigner, t: &MemoryTree, size: u64) -> Vec<u8> {
    signer.sign(&TreeHead { tree_size: size, root_hash: t.root_at(size) })
}

fn request(old: u64, proof: Vec<Hash>, checkpoint: Vec<u8>) -> Vec<u8> {
    AddCheckpoint { old, proof, checkpoint }.to_bytes()
}

/// `old` to `size` of `t`, with the proof from `old` (none from 0).
fn extend(t: &MemoryTree, old: u64, size: u64) -> Vec<u8> {
    let proof = if old == 0 { vec![] } else { merkle::prove_consistency(old, size, t).unwrap() };
    request(old, proof, note_of(&signer(), t, size))
}

fn cosigns(note: &[u8], line: &str, key: &WitnessKey) -> bool {
    let mut cosigned = note.to_vec();
    cosigned.extend_from_slice(line.as_bytes());
    let lines = check_cosignatures(&cosigned, std::slice::from_ref(key)).unwrap();
    lines.len() == 1 && lines[0].verdict.is_ok()
}

#[test]
fn a_first_checkpoint_and_a_consistent_next_one_are_cosigned() {
    let dir = tempfile::tempdir().unwrap();
    let w = open_witness(dir.path(), 1).unwrap();
    let t = tree(9, 9, "");
    let line = w.add_checkpoint(&extend(&t, 0, 5)).unwrap();
    assert!(cosigns(&note_of(&signer(), &t, 5), &line, &witness(1).verifier_key()), "{line}");
    assert_eq!(w.latest(ORIGIN), Some(LogState { tree_size: 5, root_hash: t.root_at(5) }));
    let line = w.add_checkpoint(&extend(&t, 5, 9)).unwrap();
    assert!(cosigns(&note_of(&signer(), &t, 9), &line, &witness(1).verifier_key()));
    // The same checkpoint again (a log that lost the answer) is cosigned again.
    assert!(w.add_checkpoint(&extend(&t, 9, 9)).is_ok());
    assert_eq!(w.latest(ORIGIN), Some(LogState { tree_size: 9, root_hash: t.root_at(9) }));
    // A log first seen empty goes on from there (a proof from size 0 is empty).
    let dir = tempfile::tempdir().unwrap();
    let w = open_witness(dir.path(), 1).unwrap();
    w.add_checkpoint(&extend(&t, 0, 0)).unwrap();
    w.add_checkpoint(&extend(&t, 0, 4)).unwrap();
    assert_eq!(w.latest(ORIGIN).map(|s| s.tree_size), Some(4));
}

/// Every refusal of the spec with its status; after each the witness still holds size 9, in
/// memory and on disk.
#[test]
fn refusals_have_the_specs_status_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let w = open_witness(dir.path(), 1).unwrap();
    let t = tree(12, 12, "");
    w.add_checkpoint(&extend(&t, 0, 9)).unwrap();
    let held = Some(LogState { tree_size: 9, root_hash: t.root_at(9) });
    let fork = tree(12, 5, "fork");
    let other_key = LedgerSigner::new(ORIGIN, KeyPair::from_seed(&[0x99; 32]));
    let other_origin = LedgerSigner::new("ru-78.edu.example", ledger_key());
    let mut long_proof = merkle::prove_consistency(9, 12, &t).unwrap();
    long_proof.resize(64, Hash([0; 32]));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("a rollback below the held size", extend(&t, 0, 5), 409, "old_size_mismatch"),
        (
            "a rollback naming the held size",
            request(9, vec![], note_of(&signer(), &t, 5)),
            400,
            "old_size_beyond_checkpoint",
        ),
        ("a wrong old size", extend(&t, 7, 12), 409, "old_size_mismatch"),
        (
            "a forked history",
            request(9, merkle::prove_consistency(9, 12, &fork).unwrap(), note_of(&signer(), &fork, 12)),
            422,
            "consistency_invalid",
        ),
        (
            "a proof that is not of these trees",
            request(9, merkle::prove_consistency(9, 11, &t).unwrap(), note_of(&signer(), &t, 12)),
            422,
            "consistency_invalid",
        ),
        ("another root at the held size", request(9, vec![], note_of(&signer(), &fork, 9)), 409, "root_hash_mismatch"),
        (
            "a signature by another key",
            request(9, merkle::prove_consistency(9, 12, &t).unwrap(), note_of(&other_key, &t, 12)),
            403,
            "signature_invalid",
        ),
        ("an unknown origin", request(0, vec![], note_of(&other_origin, &t, 12)), 404, "unknown_log"),
        ("no old line", b"\nru-47.edu.example\n".to_vec(), 400, "malformed_request"),
        ("a leading zero", [&b"old 09\n\n"[..], &note_of(&signer(), &t, 9)].concat(), 400, "malformed_request"),
        ("64 proof lines", request(9, long_proof, note_of(&signer(), &t, 12)), 400, "malformed_request"),
        ("a body that is no note", b"old 9\n\nnot a note\n".to_vec(), 400, "malformed_request"),
    ];
    for (what, body, status, code) in cases {
        let r = w.add_checkpoint(&body).expect_err(what);
        assert_eq!((r.http_status(), r.code()), (status, code), "{what}: {r}");
        if status == 409 {
            assert_eq!(r.latest_size(), Some(9), "{what}: a 409 names the held size");
        }
        assert_eq!(w.latest(ORIGIN), held, "{what}: the state is unchanged");
    }
    // A proof from size 0 must be empty (a log the witness does not hold yet).
    let dir2 = tempfile::tempdir().unwrap();
    let fresh = open_witness(dir2.path(), 1).unwrap();
    let r = fresh.add_checkpoint(&request(0, vec![Hash([1; 32])], note_of(&signer(), &t, 3))).unwrap_err();
    assert_eq!(r.http_status(), 400);
    assert_eq!(fresh.latest(ORIGIN), None);
    drop(w);
    assert_eq!(open_witness(dir.path(), 1).unwrap().latest(ORIGIN), held, "nothing reached the disk");
}

/// Submissions from one held size race: exactly one is cosigned, the others are told the new
/// size (409), and the held state is the cosigned one's (the spec's rollback race).
#[test]
fn concurrent_submissions_for_one_log_are_serialized() {
    let dir = tempfile::tempdir().unwrap();
    let w = open_witness(dir.path(), 1).unwrap();
    let t = tree(16, 16, "");
    w.add_checkpoint(&extend(&t, 0, 5)).unwrap();
    let bodies: Vec<Vec<u8>> = (6..=16).map(|size| extend(&t, 5, size)).collect();
    let answers: Vec<Result<String, WitnessRefusal>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies.iter().map(|b| scope.spawn(|| w.add_checkpoint(b))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<u64> = (6..=16).zip(&answers).filter(|(_, a)| a.is_ok()).map(|(size, _)| size).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for a in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!((a.http_status(), a.latest_size()), (409, Some(won[0])));
    }
    assert_eq!(w.latest(ORIGIN).unwrap().tree_size, won[0]);
}

#[test]
fn a_restarted_witness_keeps_refusing_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let t = tree(9, 9, "");
    {
        let w = open_witness(dir.path(), 1).unwrap();
        w.add_checkpoint(&extend(&t, 0, 9)).unwrap();
        // One process at a time holds the state.
        assert!(matches!(open_witness(dir.path(), 1), Err(WitnessError::Locked(_))));
    }
    let w = open_witness(dir.path(), 1).unwrap();
    assert_eq!(w.latest(ORIGIN), Some(LogState { tree_size: 9, root_hash: t.root_at(9) }));
    let r = w.add_checkpoint(&extend(&t, 0, 5)).unwrap_err();
    assert_eq!((r.http_status(), r.latest_size()), (409, Some(9)));
    // A state file it cannot read stops the witness instead of starting it from nothing.
    drop(w);
    std::fs::write(dir.path().join("witness-state.json"), b"{\"logs\":").unwrap();
    assert!(matches!(open_witness(dir.path(), 1), Err(WitnessError::Corrupt { .. })));
}

#[test]
fn add_checkpoint_bodies_round_trip() {
    let t = tree(9, 9, "");
    let req = AddCheckpoint {
        old: 5,
        proof: merkle::prove_consistency(5, 9, &t).unwrap(),
        checkpoint: note_of(&signer(), &t, 9),
    };
    let bytes = req.to_bytes();
    assert!(bytes.starts_with(b"old 5\n"));
    assert_eq!(AddCheckpoint::parse(&bytes).unwrap(), req);
    for bad in [&b"old 5"[..], b"old -1\n\n", b"old 5\nnot a hash\n\n", b"old 5\n", b"new 5\n\n"] {
        assert!(matches!(AddCheckpoint::parse(bad), Err(WitnessRefusal::Malformed(_))), "{bad:?}");
    }
}

/// Two real ledgers with the same origin and key share their first entries, then differ: a
/// witness that cosigned one refuses the other's checkpoints, at a larger size (422) and at the
/// size it holds (409), and cosigns nothing.
#[test]
fn a_witness_that_saw_one_history_refuses_a_fork() {
    let (_a_dir, a) = temp_ledger();
    let (_b_dir, b) = temp_ledger();
    for (l, ns) in [(&a, [1, 2, 3, 4]), (&b, [1, 2, 5, 6])] {
        for n in ns {
            l.append_blocking(vec![grade(n, "learner/fork", None)]).pop().unwrap().unwrap();
        }
    }
    let at = |l: &Ledger, size: u64| l.checkpoint_at(size).unwrap().unwrap();
    assert_eq!(at(&a, 2), at(&b, 2), "a shared history");
    assert_ne!(at(&a, 3), at(&b, 3), "then a fork");
    let dir = tempfile::tempdir().unwrap();
    let w = open_witness(dir.path(), 1).unwrap();
    w.add_checkpoint(&request(0, vec![], at(&a, 3))).unwrap();
    let r = w.add_checkpoint(&request(3, b.prove_consistency(3, 4).unwrap(), at(&b, 4))).unwrap_err();
    assert_eq!(r.http_status(), 422, "{r}");
    let r = w.add_checkpoint(&request(3, vec![], at(&b, 3))).unwrap_err();
    assert_eq!(r.http_status(), 409, "{r}");
    // Ledger A's own next checkpoint is still cosigned: the refusals changed nothing.
    assert_eq!(w.latest(ORIGIN).unwrap().tree_size, 3);
    w.add_checkpoint(&request(3, a.prove_consistency(3, 4).unwrap(), at(&a, 4))).unwrap();
}

/// A witness served on loopback by the real server loop.
struct WitnessServer {
    url: String,
    vkey: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn serve_witness(n: u8) -> WitnessServer {
    let dir = tempfile::tempdir().unwrap();
    let service = Arc::new(open_witness(dir.path(), n).unwrap());
    let vkey = service.verifier_key().encode();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = zachetka::api::witness::router(service);
    let config = zachetka::api::server::ServerConfig::default();
    rt.spawn(async move { zachetka::api::server::serve(listener, router, config, std::future::pending()).await });
    WitnessServer { url, vkey, _rt: rt, _dir: dir }
}

/// The HTTP answers of the spec: 200 with the line, 409 with the held size as
/// `text/x.tlog.size`, other refusals as `{"code","message"}` with their status, and a body
/// beyond the cap refused as it arrives.
#[test]
fn the_witness_answers_over_http_as_the_spec_says() {
    let w = serve_witness(1);
    let t = tree(9, 9, "");
    let post = |body: &[u8]| match ureq::post(&format!("{}/add-checkpoint", w.url)).send_bytes(body) {
        Ok(r) => (r.status(), r.content_type().to_owned(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.content_type().to_owned(), r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let (s, _, line) = post(&extend(&t, 0, 5));
    assert_eq!(s, 200);
    assert!(cosigns(&note_of(&signer(), &t, 5), &line, &witness(1).verifier_key()), "{line}");
    assert_eq!(post(&extend(&t, 0, 9)), (409, "text/x.tlog.size".into(), "5\n".into()));
    let (s, ct, body) = post(&request(5, vec![], note_of(&signer(), &t, 3)));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, ct.as_str(), v["code"].as_str()), (400, "application/json", Some("old_size_beyond_checkpoint")));
    let mut big = extend(&t, 5, 9);
    big.resize(zachetka::witness::REQUEST_BYTES_MAX + 1, b'\n');
    assert_eq!(post(&big).0, 413);
    assert_eq!(post(&extend(&t, 5, 9)).0, 200, "the refusals changed nothing");
}

/// A URL where nothing listens (a port bound, then released).
fn down_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

struct LedgerServer {
    base: String,
    _rt: tokio::runtime::Runtime,
}

/// The ledger's server with `cosigning` collecting (its task started on the server's runtime),
/// readers checked against the tests' auditor token in `dir`.
fn serve_ledger(ledger: &Ledger, cosigning: Arc<Cosigning>, dir: &std::path::Path) -> LedgerServer {
    use zachetka::access::{Role, Scope};
    let tokens = dir.join("tokens.json");
    if !tokens.exists() {
        zachetka::access::create_token(&tokens, &auditor_secret(), Role::Auditor, Scope::Region, "tests", 0).unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.block_on(async { cosigning.start() });
    let access = zachetka::access::Access::tokens(&tokens);
    let router = zachetka::api::router_with_cosigning(ledger.clone(), access, Some(cosigning));
    let config = zachetka::api::server::ServerConfig::default();
    rt.spawn(async move { zachetka::api::server::serve(listener, router, config, std::future::pending()).await });
    LedgerServer { base, _rt: rt }
}

fn config(witnesses: &[(&str, &str)]) -> CosigningConfig {
    CosigningConfig {
        witnesses: witnesses
            .iter()
            .map(|(url, vkey)| WitnessTarget::parse(&format!("{url}={vkey}")).unwrap())
            .collect(),
        interval: Duration::from_millis(20),
        request_timeout: Duration::from_secs(5),
        keep: zachetka::cosigning::COSIGNED_KEEP,
    }
}

fn get(base: &str, path: &str) -> Vec<u8> {
    let r = ureq::get(&format!("{base}{path}")).set("authorization", &auditor_bearer()).call().unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut out).unwrap();
    out
}

fn status(base: &str) -> Value {
    serde_json::from_slice(&get(base, "/v1/status")).unwrap()
}

/// Polls `/v1/status` until `done` holds of it, for at most a minute.
fn wait_status(base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(base);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} within a minute: {s}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lines of `note` after the ledger's note `ours`.
fn lines_after<'a>(note: &'a [u8], ours: &[u8]) -> Vec<&'a str> {
    assert!(note.starts_with(ours), "the ledger's note comes first, unchanged");
    std::str::from_utf8(&note[ours.len()..]).unwrap().lines().collect()
}

#[test]
fn the_ledger_collects_two_witnesses_and_its_bundles_verify_with_both() {
    use super::record::{applied, concerned_by_scan, ledger, vkey};
    let (wa, wb) = (serve_witness(1), serve_witness(2));
    let store = tempfile::tempdir().unwrap();
    let l = ledger(store.path(), zachetka::ledger::RulesMode::Enforce);
    let cosigning =
        Cosigning::open(l.clone(), store.path(), config(&[(&wa.url, &wa.vkey), (&wb.url, &wb.vkey)])).unwrap();
    let srv = serve_ledger(&l, cosigning, store.path());
    // Appends while the witnesses are asked.
    super::rules::append_region(&l);
    applied(&l);
    let size = l.head().0.tree_size;
    wait_status(&srv.base, "both witnesses cosign the head", |s| {
        s["witnesses"].as_array().unwrap().iter().all(|w| w["last_cosigned_size"] == size)
    });
    let ours = l.checkpoint_at(size).unwrap().unwrap();
    let served = get(&srv.base, "/checkpoint");
    let lines = lines_after(&served, &ours);
    assert_eq!(lines.len(), 2, "{}", String::from_utf8_lossy(&served));
    assert!(lines[0].starts_with("— w1.witness.example ") && lines[1].starts_with("— w2.witness.example "));
    assert_eq!(get(&srv.base, &format!("/v1/checkpoints/{size}")), served);
    let keys = [WitnessKey::parse(&wa.vkey).unwrap(), WitnessKey::parse(&wb.vkey).unwrap()];
    assert!(check_cosignatures(&served, &keys).unwrap().iter().all(|c| c.verdict.is_ok()));

    // A bundle served now carries both; the verifier demanding both accepts it.
    let learner = concerned_by_scan(&l).into_iter().max_by_key(|(_, s)| s.len()).unwrap().0;
    let bundle = get(&srv.base, &format!("/v1/learners/{learner}/record"));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.json");
    std::fs::write(&path, &bundle).unwrap();
    let vk = vkey(&l);
    let verify = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["verify", path.to_str().unwrap(), "--vkey", &vk, "--json"])
            .args(["--witness", &wa.vkey, "--witness", &wb.vkey, "--witnesses-required", "2"])
            .output()
            .unwrap()
    };
    let o = verify(&path);
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let metrics = String::from_utf8(get(&srv.base, "/metrics")).unwrap();
    assert!(
        metrics.contains("zachetka_witness_submissions_total{witness=\"w1.witness.example\",result=\"cosigned\"}"),
        "{metrics}"
    );
    drop(srv);

    // After a restart the cosigned notes are read back and checked again: served as before with
    // the witnesses gone, a line by a key no longer configured is not served, and a damaged
    // file is ignored.
    let (down1, down2) = (down_url(), down_url());
    let reopened = Cosigning::open(l.clone(), store.path(), config(&[(&down1, &wa.vkey), (&down2, &wb.vkey)])).unwrap();
    assert_eq!(reopened.cosigned(size, &ours), served);
    assert_eq!(reopened.cosigned_head(size, &ours), served);
    let only_b = Cosigning::open(l.clone(), store.path(), config(&[(&down2, &wb.vkey)])).unwrap();
    assert_eq!(lines_after(&only_b.cosigned(size, &ours), &ours), [lines[1]]);
    // `zachetka export --dir` adds them too, given the witnesses' keys (none without them).
    drop((reopened, only_b, l));
    let copy = tmp.path().join("ledger");
    super::record::copy_into_ledger_dir(store.path(), &copy);
    std::fs::rename(copy.join("store").join("cosignatures"), copy.join("cosignatures")).unwrap();
    let export = |witnesses: &[&str], out: &std::path::Path| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"));
        c.args(["export", "--dir", copy.to_str().unwrap(), "--learner", &learner, "--out", out.to_str().unwrap()]);
        for w in witnesses {
            c.args(["--witness", w]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        verify(out).status.code()
    };
    assert_eq!(export(&[&wa.vkey, &wb.vkey], &tmp.path().join("exported.json")), Some(0));
    assert_eq!(export(&[], &tmp.path().join("bare.json")), Some(1), "without the keys, no cosignature");
    let l = ledger(store.path(), zachetka::ledger::RulesMode::Enforce);

    let file = store.path().join("cosignatures").join(format!("{size}.note"));
    let mut damaged = std::fs::read(&file).unwrap();
    let at = damaged.len() - 10;
    damaged[at] ^= 1;
    std::fs::write(&file, &damaged).unwrap();
    let reopened = Cosigning::open(l.clone(), store.path(), config(&[(&down1, &wa.vkey), (&down2, &wb.vkey)])).unwrap();
    assert_eq!(lines_after(&reopened.cosigned(size, &ours), &ours), [lines[0]], "the damaged line is dropped");
}

/// A witness that is down fails no append and shows in `/v1/status` and `/metrics`; the other
/// witness's cosignature is served alone.
#[test]
fn a_witness_that_is_down_fails_no_append_and_shows_in_the_status() {
    let wa = serve_witness(1);
    let down = down_url();
    let (dir, l) = temp_ledger();
    let wd = witness(4).verifier_key().encode();
    let cosigning = Cosigning::open(l.clone(), dir.path(), config(&[(&wa.url, &wa.vkey), (&down, &wd)])).unwrap();
    let srv = serve_ledger(&l, cosigning, dir.path());
    for n in 1..=5 {
        let body = serde_json::to_string(&vec![grade(n, "learner/w", None)]).unwrap();
        let r = ureq::post(&format!("{}/v1/events", srv.base)).set("content-type", "application/json");
        let receipts: Value = r.send_string(&body).unwrap().into_json().unwrap();
        assert_eq!(receipts[0]["tree_size"], n, "acknowledged: {receipts}");
    }
    let s = wait_status(&srv.base, "the live witness cosigns the head and the down one fails", |s| {
        s["witnesses"][0]["last_cosigned_size"] == 5 && s["witnesses"][1]["last_error"].is_string()
    });
    assert_eq!(s["witnesses"][1]["last_cosigned_size"], Value::Null, "{s}");
    assert!(s["witnesses"][1]["last_error"].as_str().unwrap().contains("no answer"), "{s}");
    assert_eq!(s["accepting_appends"], true);
    let ours = l.checkpoint_at(5).unwrap().unwrap();
    let lines = lines_after(&get(&srv.base, "/checkpoint"), &ours).len();
    assert_eq!(lines, 1);
    let metrics = String::from_utf8(get(&srv.base, "/metrics")).unwrap();
    let unreachable: BTreeMap<&str, u64> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("zachetka_witness_submissions_total{witness=\""))
        .filter_map(|l| l.split_once("\",result=\"unreachable\"} "))
        .map(|(w, n)| (w, n.parse().unwrap()))
        .collect();
    assert_eq!(unreachable["w1.witness.example"], 0);
    assert!(unreachable["w4.witness.example"] > 0, "{metrics}");
    drop(srv);

    // A restarted ledger does not know what the witness holds: it learns it from the 409
    // answer to `old 0`, as the spec intends, and goes on with a proof from there.
    let cosigning = Cosigning::open(l.clone(), dir.path(), config(&[(&wa.url, &wa.vkey)])).unwrap();
    let srv = serve_ledger(&l, cosigning, dir.path());
    l.append_blocking(vec![grade(6, "learner/w", None)]).pop().unwrap().unwrap();
    wait_status(&srv.base, "the witness cosigns tree size 6", |s| s["witnesses"][0]["last_cosigned_size"] == 6);
    let metrics = String::from_utf8(get(&srv.base, "/metrics")).unwrap();
    assert!(
        metrics.contains("zachetka_witness_submissions_total{witness=\"w1.witness.example\",result=\"conflict\"} 1\n"),
        "{metrics}"
    );
}

/// `zachetka witness` serves the protocol: it prints where it listens and its verifier key, and
/// cosigns a checkpoint of a ledger given by `--log` with a line that key verifies.
#[test]
fn the_witness_command_serves_add_checkpoint() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("w.key");
    std::fs::write(&key, KeyPair::from_seed(&[0x75; 32]).to_key_file()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["witness", "--key", key.to_str().unwrap(), "--name", "w5.witness.example"])
        .args(["--state", dir.path().join("state").to_str().unwrap(), "--log", &signer().verifier_key()])
        .args(["--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let (first, second) = (next(), next());
    let url = first.split(" on ").nth(1).unwrap().trim_end_matches("/add-checkpoint").to_owned();
    let vkey = second.strip_prefix("witness verifier key: ").unwrap().to_owned();
    assert_eq!(
        vkey,
        Witness::new("w5.witness.example", KeyPair::from_seed(&[0x75; 32])).unwrap().verifier_key().encode()
    );
    let t = tree(4, 4, "");
    let answer = ureq::post(&format!("{url}/add-checkpoint")).send_bytes(&extend(&t, 0, 4));
    let line = answer.unwrap().into_string().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(cosigns(&note_of(&signer(), &t, 4), &line, &WitnessKey::parse(&vkey).unwrap()), "{line}");
    // What it cosigned was durable before it answered.
    let state = std::fs::read_to_string(dir.path().join("state/witness-state.json")).unwrap();
    assert!(state.contains("\"tree_size\": 4"), "{state}");
}

/// On a ledger written all the time the head moves on before the witnesses answer, so a bundle
/// at the freshest checkpoint is rarely cosigned. `?cosigned=true` (and `export --cosigned`)
/// proves it in the newest cosigned checkpoint instead, which a verifier demanding both
/// witnesses accepts; old cosigned notes are pruned to the newest `keep`.
#[test]
fn a_bundle_asked_cosigned_is_proved_in_the_newest_cosigned_checkpoint_and_old_notes_are_pruned() {
    use super::record::{concerned_by_scan, ledger, vkey};
    use super::rules::{grade_event, teacher_of_school_1};
    let (wa, wb) = (serve_witness(1), serve_witness(2));
    let store = tempfile::tempdir().unwrap();
    let l = ledger(store.path(), zachetka::ledger::RulesMode::Enforce);
    super::rules::append_region(&l);
    let both = [(wa.url.as_str(), wa.vkey.as_str()), (wb.url.as_str(), wb.vkey.as_str())];
    let cosigning = Cosigning::open(l.clone(), store.path(), CosigningConfig { keep: 2, ..config(&both) }).unwrap();
    let srv = serve_ledger(&l, cosigning, store.path());
    let cosigned_head = |l: &Ledger| {
        let size = l.head().0.tree_size;
        wait_status(&srv.base, "both witnesses cosign the head", |s| {
            s["witnesses"].as_array().unwrap().iter().all(|w| w["last_cosigned_size"] == size)
        });
        size
    };
    let mut sizes = vec![cosigned_head(&l)];
    for n in 0..3 {
        let event = grade_event(990_700 + n, &teacher_of_school_1(), "sch-001", "6А", 4);
        l.append_blocking(vec![event])[0].as_ref().unwrap();
        sizes.push(cosigned_head(&l));
    }
    let on_disk: Vec<String> = std::fs::read_dir(store.path().join("cosignatures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".note"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let newest: Vec<String> = sizes[2..].iter().map(|s| format!("{s}.note")).collect();
    assert_eq!(on_disk, newest, "the newest two of {sizes:?} are kept");
    drop(srv);

    // The witnesses are gone; the head moves on past the newest cosigned size.
    let cosigned = *sizes.last().unwrap();
    for n in 0..2 {
        let event = grade_event(990_710 + n, &teacher_of_school_1(), "sch-001", "6А", 5);
        l.append_blocking(vec![event])[0].as_ref().unwrap();
    }
    let head = l.head().0.tree_size;
    let down = [(down_url(), wa.vkey.clone()), (down_url(), wb.vkey.clone())];
    let down: Vec<(&str, &str)> = down.iter().map(|(u, k)| (u.as_str(), k.as_str())).collect();
    let srv = serve_ledger(&l, Cosigning::open(l.clone(), store.path(), config(&down)).unwrap(), store.path());
    let learner = concerned_by_scan(&l).into_iter().max_by_key(|(_, s)| s.len()).unwrap().0;
    let tmp = tempfile::tempdir().unwrap();
    let vk = vkey(&l);
    let verified = |query: &str| -> (u64, Option<i32>) {
        let bundle = get(&srv.base, &format!("/v1/learners/{learner}/record{query}"));
        let b: Value = serde_json::from_slice(&bundle).unwrap();
        let (_, head) = zachetka::checkpoint::parse_unverified(b["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
        let path = tmp.path().join("bundle.json");
        std::fs::write(&path, &bundle).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["verify", path.to_str().unwrap(), "--vkey", &vk])
            .args(["--witness", &wa.vkey, "--witness", &wb.vkey, "--witnesses-required", "2"])
            .output()
            .unwrap();
        (head.tree_size, o.status.code())
    };
    assert_eq!(verified("?cosigned=true"), (cosigned, Some(0)), "the newest cosigned checkpoint, accepted");
    assert_eq!(verified(""), (head, Some(1)), "the freshest, not cosigned: refused by this verifier");
    drop(srv);

    // Without witnesses there is no cosigned checkpoint to ask for: the client's error.
    let plain = super::http::serve_with(l.clone(), zachetka::api::server::ServerConfig::default());
    let url = format!("{}/v1/learners/{learner}/record?cosigned=true", plain.base);
    match ureq::get(&url).set("authorization", &auditor_bearer()).call() {
        Err(ureq::Error::Status(400, r)) => {
            let v: Value = r.into_json().unwrap();
            assert_eq!(v["code"], "bad_query", "{v}");
        }
        other => panic!("expected 400 bad_query: {:?}", other.map(|r| r.status())),
    }
    // `zachetka export --cosigned` does the same offline, from the notes `serve` kept.
    drop((plain, l));
    let copy = tmp.path().join("ledger");
    super::record::copy_into_ledger_dir(store.path(), &copy);
    std::fs::rename(copy.join("store").join("cosignatures"), copy.join("cosignatures")).unwrap();
    let out = tmp.path().join("exported.json");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["export", "--dir", copy.to_str().unwrap(), "--learner", &learner, "--out", out.to_str().unwrap()])
        .args(["--witness", &wa.vkey, "--witness", &wb.vkey, "--cosigned"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let (_, at) = zachetka::checkpoint::parse_unverified(b["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(at.tree_size, cosigned);
}
