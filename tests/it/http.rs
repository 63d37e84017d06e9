//! The HTTP surface end to end on a real socket: writes with per-event receipts and refusals,
//! saturation, C2SP tlog-tiles read by the generic `tlog_tiles` client, proofs, pages, the feed.

use super::support::*;
use serde_json::{json, Value};
use std::io::BufRead;
use zachetka::api::server::ServerConfig;
use zachetka::ledger::{Ledger, Limits};
use zachetka::merkle::{Hash, HashB64, MemoryTree};

pub(super) struct Server {
    pub(super) base: String,
    _rt: tokio::runtime::Runtime,
    /// Holds the token file (`Server::tokens`).
    _tokens: tempfile::TempDir,
    /// The token file the server checks readers against; it holds the auditor token of
    /// [`auditor_bearer`], which the request helpers send.
    pub(super) tokens: std::path::PathBuf,
}

pub(super) fn serve(ledger: Ledger) -> Server {
    serve_with(ledger, ServerConfig::default())
}

/// The real server loop (src/api/server.rs) on a loopback port, with `config`'s timeouts and cap,
/// its readers checked against a token file holding the tests' auditor token.
pub(super) fn serve_with(ledger: Ledger, config: ServerConfig) -> Server {
    use zachetka::access::{Role, Scope};
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    zachetka::access::create_token(&tokens, &auditor_secret(), Role::Auditor, Scope::Region, "tests", 0).unwrap();
    serve_access(ledger, config, zachetka::access::Access::tokens(&tokens), dir, tokens)
}

/// The real server loop with `access` (the token file `tokens`, kept in `dir`).
pub(super) fn serve_access(
    ledger: Ledger,
    config: ServerConfig,
    access: zachetka::access::Access,
    dir: tempfile::TempDir,
    tokens: std::path::PathBuf,
) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = zachetka::api::router_with(ledger, access);
    rt.spawn(
        async move { zachetka::api::server::serve(listener, router, config, std::future::pending()).await.unwrap() },
    );
    Server { base, _rt: rt, _tokens: dir, tokens }
}

pub(super) fn post(base: &str, body: &str) -> (u16, Value, Option<String>) {
    match ureq::post(&format!("{base}/v1/events")).set("content-type", "application/json").send_string(body) {
        Ok(r) => (r.status(), r.into_json().unwrap(), None),
        Err(ureq::Error::Status(code, r)) => {
            let retry = r.header("retry-after").map(str::to_owned);
            (code, r.into_json().unwrap(), retry)
        }
        Err(e) => panic!("{e}"),
    }
}

/// A GET with the tests' auditor token (public endpoints ignore it).
fn get(base: &str, path: &str) -> (u16, Vec<u8>) {
    match ureq::get(&format!("{base}{path}")).set("authorization", &auditor_bearer()).call() {
        Ok(r) => {
            let status = r.status();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut v).unwrap();
            (status, v)
        }
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap().into_bytes()),
        Err(e) => panic!("{e}"),
    }
}

pub(super) fn get_text(base: &str, path: &str) -> (u16, String) {
    let (s, b) = get(base, path);
    (s, String::from_utf8(b).unwrap())
}

pub(super) fn get_json(base: &str, path: &str) -> (u16, Value) {
    let (s, b) = get(base, path);
    (s, serde_json::from_slice(&b).unwrap_or_else(|_| panic!("{path}: {}", String::from_utf8_lossy(&b))))
}

#[test]
fn writes_answer_receipts_and_refusals_with_their_statuses() {
    let (_d, ledger) = temp_ledger();
    let srv = serve(ledger);
    let (s, r, _) = post(&srv.base, &grade(1, "learner/a", Some(0)).to_string());
    assert_eq!(s, 200);
    assert_eq!((r["seq"].as_u64(), r["stream_version"].as_u64(), r["tree_size"].as_u64()), (Some(0), Some(0), Some(1)));
    let mut bad = grade(2, "learner/a", None);
    bad["event"]["data"]["mark"] = json!(3);
    let (s, r, _) = post(&srv.base, &bad.to_string());
    assert_eq!((s, r["code"].as_str()), (422, Some("signature_invalid")));
    let (s, r, _) = post(&srv.base, &grade(3, "learner/a", Some(0)).to_string());
    assert_eq!((s, r["code"].as_str()), (409, Some("stream_version_conflict")));
    let (s, r, _) = post(&srv.base, "{\"event\":");
    assert_eq!((s, r["code"].as_str()), (400, Some("malformed_json")));
    let (s, r, _) = post(&srv.base, &format!("{{\"event\":{{}},\"event\":{{}},\"sig\":\"{}\"}}", "A".repeat(10)));
    assert_eq!((s, r["code"].as_str()), (400, Some("malformed_json")), "duplicate keys are refused");
    // A batch: one answer per event, in order, HTTP 200.
    let batch = json!([grade(4, "learner/b", None), bad, grade(1, "learner/a", Some(0))]);
    let (s, r, _) = post(&srv.base, &batch.to_string());
    assert_eq!(s, 200);
    let r = r.as_array().unwrap();
    assert_eq!(r[0]["seq"].as_u64(), Some(1));
    assert_eq!(r[1]["code"].as_str(), Some("signature_invalid"));
    assert_eq!(r[2]["seq"].as_u64(), Some(0), "a retried event gets its original receipt");
    let (s, r, _) = post(&srv.base, &" ".repeat(zachetka::api::BODY_BYTES_MAX + 1));
    assert_eq!((s, r["code"].as_str()), (413, Some("body_too_large")));
}

#[test]
fn a_saturated_server_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entered_rx, release_tx) = blocking_store(dir.path());
    let ledger = open_ledger(store.clone(), Limits { queue_depth_max: 1, ..Limits::default() });
    let filler = ledger.clone();
    let srv = serve(ledger);
    let base = srv.base.clone();
    // The first request's event blocks the sequencer while it is admitted; a second fills the
    // queue (depth 1); from then on a request is refused at once.
    let first = std::thread::spawn(move || post(&base, &grade(1, "s/a", None).to_string()));
    entered_rx.recv().unwrap();
    let pending = vec![filler.submit(vec![grade(10, "s/a", None)]).unwrap()];
    let n = 11;
    let (s, r, retry) = post(&srv.base, &grade(3, "s/a", None).to_string());
    assert_eq!((s, r["code"].as_str(), retry.as_deref()), (503, Some("busy"), Some("1")));
    store.set(Fault::None);
    release_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap().0, 200);
    for p in pending {
        assert!(p.wait_blocking()[0].is_ok());
    }
    let (_, m) = get(&srv.base, "/metrics");
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("zachetka_requests_busy_total 1"), "{m}");
    assert!(m.contains(&format!("zachetka_tree_size {}", 1 + n - 10)), "{m}");
    assert!(m.contains("zachetka_writes_stopped 0") && m.contains("zachetka_store_unavailable 0"), "{m}");
}

/// Fetches C2SP tlog-tiles from the server for the generic `tlog_tiles` client.
struct HttpTiles(String);

impl tlog_tiles::TileReader for HttpTiles {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let mut path = format!("/tile/{}/{}", t.level(), zachetka::merkle::tile_index_path(t.level_index()));
                if t.width() < 256 {
                    path.push_str(&format!(".p/{}", t.width()));
                }
                let (s, b) = get(&self.0, &path);
                if s == 200 {
                    Ok(b)
                } else {
                    Err(tlog_tiles::Error::InvalidTile)
                }
            })
            .collect()
    }
    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

#[test]
fn tiles_checkpoint_and_proofs_serve_a_generic_tlog_client() {
    let (_d, ledger) = temp_ledger();
    for b in 0..6u64 {
        let batch = (0..100u64).map(|i| grade(b * 100 + i, &format!("learner/{}", i % 9), None)).collect();
        assert!(ledger.append_blocking(batch).iter().all(Result::is_ok));
    }
    let vkey = ledger.config().verifier_key.clone();
    let srv = serve(ledger);
    let (s, note) = get(&srv.base, "/checkpoint");
    assert_eq!(s, 200);
    let cp = zachetka::checkpoint::verify_checkpoint(&note, &vkey, ORIGIN).unwrap();
    assert_eq!(cp.head.tree_size, 600);
    // The reference: recompute from the entries served by the entry bundles.
    let mut entries = Vec::new();
    for (n, w) in [(0u64, None), (1, None), (2, Some(88u64))] {
        let path = match w {
            None => format!("/tile/entries/{:03}", n),
            Some(w) => format!("/tile/entries/{:03}.p/{w}", n),
        };
        let (s, bundle) = get(&srv.base, &path);
        assert_eq!(s, 200, "{path}");
        let mut rest = &bundle[..];
        while !rest.is_empty() {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            entries.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
    }
    assert_eq!(entries.len(), 600);
    let mut tree = MemoryTree::default();
    for e in &entries {
        tree.push(zachetka::merkle::leaf_hash(e));
    }
    assert_eq!(tree.root(), cp.head.root_hash);
    // A tlog-tiles client authenticates tiles against the checkpoint and proves from them.
    let reader = HttpTiles(srv.base.clone());
    let hashes = tlog_tiles::TileHashReader::new(600, cp.head.root_hash, &reader);
    assert_eq!(tlog_tiles::tree_hash(600, &hashes).unwrap(), cp.head.root_hash);
    let proof = tlog_tiles::prove_record(600, 421, &hashes).unwrap();
    tlog_tiles::check_record(&proof, 600, cp.head.root_hash, 421, zachetka::merkle::leaf_hash(&entries[421])).unwrap();
    // Tiles that do not exist (yet) are 404.
    for path in [
        "/tile/0/003",
        "/tile/0/002.p/89",
        "/tile/0/002",
        "/tile/2/000.p/1",
        "/tile/entries/003",
        "/tile/0/x000/001",
        "/tile/junk",
    ] {
        assert_eq!(get(&srv.base, path).0, 404, "{path}");
    }
    assert_eq!(get(&srv.base, "/tile/1/000.p/2").1.len(), 64);
    // JSON proofs (DESIGN 3.5) verify against the checkpoint.
    let (s, p) = get_json(&srv.base, "/v1/proofs/inclusion?leaf_index=421&tree_size=600");
    assert_eq!(s, 200);
    let p: zachetka::merkle::InclusionProof = serde_json::from_value(p).unwrap();
    let hashes = zachetka::merkle::hashes_from_b64(&p.hashes).unwrap();
    zachetka::merkle::verify_inclusion(
        421,
        600,
        zachetka::merkle::leaf_hash(&entries[421]),
        &hashes,
        cp.head.root_hash,
    )
    .unwrap();
    let (s, p) = get_json(&srv.base, "/v1/proofs/consistency?first=100&second=600");
    assert_eq!(s, 200);
    let p: zachetka::merkle::ConsistencyProof = serde_json::from_value(p).unwrap();
    let hashes = zachetka::merkle::hashes_from_b64(&p.hashes).unwrap();
    zachetka::merkle::verify_consistency(100, 600, tree.root_at(100), cp.head.root_hash, &hashes).unwrap();
    for bad in [
        "/v1/proofs/inclusion?leaf_index=600&tree_size=600",
        "/v1/proofs/inclusion?leaf_index=1&tree_size=601",
        "/v1/proofs/consistency?first=0&second=10",
        "/v1/proofs/consistency?first=10&second=9",
    ] {
        let (s, v) = get_json(&srv.base, bad);
        assert_eq!((s, v["code"].as_str()), (400, Some("proof_out_of_range")), "{bad}");
    }
    // Pages of entries and of a stream.
    let (_, page) = get_json(&srv.base, "/v1/entries?from=590&limit=50");
    assert_eq!(page["tree_size"].as_u64(), Some(600));
    let page = page["entries"].as_array().unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(serde_json::to_vec(&page[0]).unwrap().len(), entries[590].len());
    let (_, stream) = get_json(&srv.base, "/v1/streams/learner/3?from_version=2&limit=5");
    assert_eq!(stream["stream_len"].as_u64(), Some(66));
    let versions: Vec<u64> =
        stream["entries"].as_array().unwrap().iter().map(|e| e["stream_version"].as_u64().unwrap()).collect();
    assert_eq!(versions, vec![2, 3, 4, 5, 6]);
}

#[test]
fn the_feed_catches_up_then_follows_live() {
    let (_d, ledger) = temp_ledger();
    ledger.append_blocking((0..5u64).map(|i| grade(i, "learner/a", None)).collect());
    let writer = ledger.clone();
    let srv = serve(ledger);
    let resp =
        ureq::get(&format!("{}/v1/feed?from=2", srv.base)).set("authorization", &auditor_bearer()).call().unwrap();
    assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let seq_of = |line: String| serde_json::from_str::<Value>(&line).unwrap()["seq"].as_u64().unwrap();
    let timeout = std::time::Duration::from_secs(30); // a failure guard, not synchronization
    for want in 2..5 {
        assert_eq!(seq_of(rx.recv_timeout(timeout).unwrap()), want);
    }
    // Review s9, finding 15: a feed from beyond the head answered heartbeats claiming positions
    // the log does not hold. From the head it follows live; beyond it, it is refused at once.
    let feed = |from: u64| match ureq::get(&format!("{}/v1/feed?from={from}", srv.base))
        .set("authorization", &auditor_bearer())
        .call()
    {
        Ok(r) => (r.status(), None),
        Err(ureq::Error::Status(s, r)) => (s, Some(r.into_json::<Value>().unwrap())),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(feed(5).0, 200, "a feed from the head waits for what comes next");
    let (status, refusal) = feed(6);
    let refusal = refusal.unwrap_or_else(|| panic!("from beyond the head: {status}"));
    assert_eq!((status, refusal["code"].as_str()), (400, Some("bad_query")), "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("head 5"), "names the head: {refusal}");
    writer.append_blocking((5..8u64).map(|i| grade(i, "learner/b", None)).collect());
    for want in 5..8 {
        assert_eq!(seq_of(rx.recv_timeout(timeout).unwrap()), want, "live entries follow the catch-up");
    }
}

/// Issue "[layout]": a feed whose store read failed mid-stream ended silently, like a dropped
/// connection. It now ends with one NDJSON line, the refusal a page read would answer
/// (`{"code","message"}`), after every entry it could serve.
#[test]
fn the_feed_ends_with_an_error_line_when_the_store_fails_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(FaultStore::new(new_store(dir.path())));
    let ledger = open_ledger(store.clone(), Limits::default());
    ledger.append_blocking((0..3u64).map(|i| grade(i, "learner/a", None)).collect());
    let writer = ledger.clone();
    let srv = serve(ledger);
    let resp =
        ureq::get(&format!("{}/v1/feed?from=0", srv.base)).set("authorization", &auditor_bearer()).call().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
        // The end of the body: the sender drops, and the test sees the feed end.
    });
    let timeout = std::time::Duration::from_secs(30); // a failure guard, not synchronization
    let line = |rx: &std::sync::mpsc::Receiver<String>| {
        serde_json::from_str::<Value>(&rx.recv_timeout(timeout).unwrap()).unwrap()
    };
    for want in 0..3 {
        assert_eq!(line(&rx)["seq"].as_u64(), Some(want), "the catch-up is served");
    }
    // The store is lost under the feed: the next entries commit, but cannot be read.
    store.set(Fault::FailReads);
    assert!(writer.append_blocking(vec![grade(3, "learner/a", None)]).iter().all(Result::is_ok));
    let last = line(&rx);
    assert_eq!(last["code"].as_str(), Some("unavailable"), "{last}");
    assert!(last["message"].as_str().unwrap().contains("injected: connection lost"), "{last}");
    assert_eq!(last.as_object().unwrap().len(), 2, "a refusal: code and message only: {last}");
    assert!(
        matches!(rx.recv_timeout(timeout), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)),
        "the feed ends after its error line"
    );
}

/// Issue "[record]: Old receipts stay checkable": a receipt names the tree size of the first
/// checkpoint covering its entry; that checkpoint stays servable after the head moved on, it
/// verifies under the ledger's key, and an inclusion proof of the receipt's entry at that size
/// reaches its root.
#[test]
fn a_receipts_checkpoint_stays_servable_after_the_head_moves_on() {
    let (_d, ledger) = temp_ledger();
    let receipts: Vec<_> = ledger
        .append_blocking((0..3u64).map(|i| grade(i, "learner/a", None)).collect())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let later = ledger.append_blocking((3..6u64).map(|i| grade(i, "learner/b", None)).collect());
    assert!(later.iter().all(Result::is_ok));
    let vkey = ledger.config().verifier_key.clone();
    let head = ledger.head().0.tree_size;
    let srv = serve(ledger);
    assert!(receipts.iter().all(|r| r.tree_size < head), "the head moved on past these receipts");
    for r in &receipts {
        let resp = ureq::get(&format!("{}/v1/checkpoints/{}", srv.base, r.tree_size)).call().unwrap();
        assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
        let note = resp.into_string().unwrap().into_bytes();
        let cp = zachetka::checkpoint::verify_checkpoint(&note, &vkey, ORIGIN).unwrap();
        assert_eq!(cp.head.tree_size, r.tree_size, "the note of exactly the receipt's tree size");
        let (s, p) =
            get_json(&srv.base, &format!("/v1/proofs/inclusion?leaf_index={}&tree_size={}", r.seq, r.tree_size));
        assert_eq!(s, 200);
        let p: zachetka::merkle::InclusionProof = serde_json::from_value(p).unwrap();
        let hashes = zachetka::merkle::hashes_from_b64(&p.hashes).unwrap();
        zachetka::merkle::verify_inclusion(r.seq, r.tree_size, r.leaf_hash, &hashes, cp.head.root_hash).unwrap();
    }
    // A size no batch ended at: a seq whose receipt names a later size sits inside its batch.
    let inside = receipts.iter().find(|r| r.tree_size > r.seq + 1).expect("one batch held several entries").seq + 1;
    for size in [inside, head + 1, u64::MAX] {
        let (s, v) = get_json(&srv.base, &format!("/v1/checkpoints/{size}"));
        assert_eq!((s, v["code"].as_str()), (404, Some("not_found")), "{size}: {v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(&format!("no checkpoint was signed at tree size {size}")), "{message}");
    }
    for bad in ["abc", "-1", "1.5", "18446744073709551616"] {
        let (s, v) = get_json(&srv.base, &format!("/v1/checkpoints/{bad}"));
        assert_eq!((s, v["code"].as_str()), (400, Some("bad_path")), "{bad}: {v}");
    }
}

/// A signed event of `event_type` on `stream` with `data` (a bare ledger judges no payload).
fn event_of(n: u64, stream: &str, event_type: &str, data: Value) -> Value {
    let ev = json!({
        "ledger": ORIGIN, "stream": stream, "type": event_type, "id": id(n),
        "occurred_at": "2026-11-23T08:00:00Z", "author": teacher().did(), "data": data
    });
    zachetka::event::sign_event(&ev, &teacher()).unwrap()
}

/// The lines of a feed, read on a thread; dropping the receiver (and the thread's next send)
/// ends the connection.
fn feed_lines(base: &str, query: &str) -> std::sync::mpsc::Receiver<Value> {
    let resp = ureq::get(&format!("{base}/v1/feed?{query}")).set("authorization", &auditor_bearer()).call().unwrap();
    assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            // A connection that ends (or breaks) ends the lines: the test sees no next line.
            let Ok(line) = line else { return };
            if tx.send(serde_json::from_str::<Value>(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))).is_err() {
                return;
            }
        }
    });
    rx
}

/// What a feed line is: `Entry(seq)`, `Position(n)`; an error line fails the test.
#[derive(Debug, PartialEq)]
enum Line {
    Entry(u64),
    Position(u64),
}

fn next_line(rx: &std::sync::mpsc::Receiver<Value>) -> Line {
    let timeout = std::time::Duration::from_secs(60); // a failure guard, not synchronization
    let v = rx.recv_timeout(timeout).expect("a feed line");
    let o = v.as_object().unwrap();
    if let Some(seq) = o.get("seq") {
        return Line::Entry(seq.as_u64().unwrap());
    }
    assert_eq!(o.len(), 1, "a position line has only its position: {v}");
    Line::Position(o["position"].as_u64().unwrap_or_else(|| panic!("neither entry nor position: {v}")))
}

/// Lines until the feed has looked at everything below `tree_size` (an entry `tree_size - 1` or
/// a position `tree_size`), checking that positions only grow and no entry comes twice.
fn lines_until(rx: &std::sync::mpsc::Receiver<Value>, tree_size: u64) -> Vec<Line> {
    let mut out = Vec::new();
    let mut looked_at = 0;
    loop {
        let line = next_line(rx);
        let reached = match line {
            Line::Entry(seq) => seq + 1,
            Line::Position(n) => n,
        };
        assert!(reached > looked_at, "the feed moves forward: {line:?} after {looked_at}");
        looked_at = reached;
        out.push(line);
        if looked_at >= tree_size {
            assert_eq!(looked_at, tree_size, "the feed looked beyond the head");
            return out;
        }
    }
}

fn entries_of(lines: &[Line]) -> Vec<u64> {
    lines.iter().filter_map(|l| if let Line::Entry(s) = l { Some(*s) } else { None }).collect()
}

/// Filters select what a feed sends, by stream prefix (a plain prefix of the name) and by exact
/// type or type family, values repeatable or comma-separated, prefixes OR types AND'd; while
/// nothing matches the feed still says how far it looked, in catch-up and live.
#[test]
fn the_feed_sends_only_what_its_filters_select_and_says_how_far_it_looked() {
    let (_d, ledger) = temp_ledger();
    let streams = ["learner/a", "learner/b", "institution/sch-001", "institution/sch-0010", "queue/kg/t1"];
    let types = [
        "journal.grade_recorded",
        "journal.attendance_marked",
        "queue.place_offered",
        "portfolio.achievement_attested",
    ];
    let shape = |i: u64| (streams[(i % 5) as usize], types[(i % 4) as usize]);
    let events: Vec<Value> = (0..40u64).map(|i| event_of(i, shape(i).0, shape(i).1, json!({"n": i}))).collect();
    assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
    let writer = ledger.clone();
    let srv = serve(ledger);
    // A query, and which (stream, type) it selects.
    type Case<'a> = (&'a str, &'a dyn Fn(&str, &str) -> bool);
    let cases: [Case; 5] = [
        ("stream_prefix=learner/", &|s, _| s.starts_with("learner/")),
        ("stream_prefix=institution/sch-001", &|s, _| s.starts_with("institution/sch-001")),
        ("type=journal.", &|_, t| t.starts_with("journal.")),
        ("type=queue.place_offered&type=portfolio.achievement_attested", &|_, t| {
            t == "queue.place_offered" || t.starts_with("portfolio.")
        }),
        ("stream_prefix=learner/b,queue/&type=journal.grade_recorded,portfolio.", &|s, t| {
            (s == "learner/b" || s.starts_with("queue/"))
                && (t == "journal.grade_recorded" || t.starts_with("portfolio."))
        }),
    ];
    for (query, selects) in cases {
        let want: Vec<u64> = (0..40).filter(|i| selects(shape(*i).0, shape(*i).1)).collect();
        assert!(!want.is_empty() && want.len() < 40, "{query} selects some entries, not all");
        let lines = lines_until(&feed_lines(&srv.base, &format!("from=0&{query}")), 40);
        assert_eq!(entries_of(&lines), want, "{query}");
        if *want.last().unwrap() != 39 {
            assert_eq!(lines.last(), Some(&Line::Position(40)), "{query}: the scan's end is told");
        }
    }
    // Live: commits that match nothing still move the position; a match then arrives.
    let rx = feed_lines(&srv.base, "from=0&stream_prefix=teacher/");
    assert_eq!(lines_until(&rx, 40), vec![Line::Position(40)], "nothing matches in the catch-up");
    let more: Vec<Value> = (40..43).map(|i| event_of(i, "learner/a", types[0], json!({}))).collect();
    assert!(writer.append_blocking(more).iter().all(Result::is_ok));
    // One position per scan: one or more, as the commits were batched.
    let live = lines_until(&rx, 43);
    assert!(
        live.iter().all(|l| matches!(l, Line::Position(_))),
        "non-matching commits are reported by position: {live:?}"
    );
    let teacher_event = event_of(43, "teacher/t1", "attestation.decision_recorded", json!({}));
    assert!(writer.append_blocking(vec![teacher_event])[0].is_ok());
    assert_eq!(next_line(&rx), Line::Entry(43));
}

/// A follower that drops its connection resumes from its last entry's `seq + 1` or its last
/// position and gets exactly the rest: no gap, no duplicate. Catch-up longer than one scan
/// (PAGE_LEN_MAX entries) reports its position after each scan that ends on unsent entries.
#[test]
fn a_dropped_feed_resumes_from_its_last_line_with_no_gap_and_no_duplicate() {
    let (_d, ledger) = temp_ledger();
    let page = zachetka::api::PAGE_LEN_MAX;
    let size = 2 * page + 100;
    let matching = [5, 6, page + 3, 2 * page + 50];
    let stream = |i: u64| if matching.contains(&i) { "learner/x" } else { "learner/y" };
    let events: Vec<Value> = (0..size).map(|i| grade(i, stream(i), None)).collect();
    for r in ledger.append_blocking(events) {
        r.unwrap();
    }
    let srv = serve(ledger);
    let filter = "stream_prefix=learner/x";
    let all = lines_until(&feed_lines(&srv.base, &format!("from=0&{filter}")), size);
    assert_eq!(
        all,
        vec![
            Line::Entry(5),
            Line::Entry(6),
            Line::Position(page),
            Line::Entry(page + 3),
            Line::Position(2 * page),
            Line::Entry(2 * page + 50),
            Line::Position(size),
        ],
        "entries, and a position after every scan that ended on unsent entries"
    );
    // Drop after each line in turn; resume from it; the rest is exactly what was not yet seen.
    for cut in 0..all.len() - 1 {
        let rx = feed_lines(&srv.base, &format!("from=0&{filter}"));
        let seen: Vec<Line> = (0..=cut).map(|_| next_line(&rx)).collect();
        assert_eq!(seen[..], all[..=cut]);
        drop(rx);
        let from = match seen[cut] {
            Line::Entry(seq) => seq + 1,
            Line::Position(n) => n,
        };
        let rest = lines_until(&feed_lines(&srv.base, &format!("from={from}&{filter}")), size);
        let mut got = entries_of(&seen);
        got.extend(entries_of(&rest));
        assert_eq!(got, matching.to_vec(), "resumed from {from} after line {cut}");
    }
    // Unfiltered, the same: read three entries, drop, resume from the last seq + 1.
    let rx = feed_lines(&srv.base, "from=0");
    let first: Vec<Line> = (0..3).map(|_| next_line(&rx)).collect();
    assert_eq!(first, vec![Line::Entry(0), Line::Entry(1), Line::Entry(2)]);
    drop(rx);
    let rest = lines_until(&feed_lines(&srv.base, "from=3"), size);
    assert_eq!(entries_of(&rest), (3..size).collect::<Vec<_>>(), "an unfiltered feed sends no position line");
    assert_eq!(rest.len() as u64, size - 3);
}

/// The feed's chunks (HTTP/1.1 chunked encoding, one per scan) stay within
/// FEED_CHUNK_BYTES_MAX however many large entries match: what the server holds for a slow
/// reader is bounded by bytes, not only by entry count.
#[test]
fn the_feeds_chunks_are_capped_in_bytes() {
    use std::io::{Read, Write};
    let (_d, ledger) = temp_ledger();
    // ~30 KiB entries: 40 of them are more than a chunk may hold.
    let big = "x".repeat(30_000);
    let n = 40u64;
    let events: Vec<Value> =
        (0..n).map(|i| event_of(i, "learner/a", "journal.grade_recorded", json!({"note": big}))).collect();
    let entries_len: usize = {
        for r in ledger.append_blocking(events) {
            r.unwrap();
        }
        ledger.entries(0, n).unwrap().iter().map(|e| e.len() + 1).sum()
    };
    let cap = zachetka::api::FEED_CHUNK_BYTES_MAX;
    assert!(entries_len > cap, "the entries exceed one chunk: {entries_len}");
    let srv = serve(ledger);
    let addr = srv.base.strip_prefix("http://").unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap(); // a failure guard
    write!(sock, "GET /v1/feed?from=0 HTTP/1.1\r\nhost: {addr}\r\nauthorization: {}\r\n\r\n", auditor_bearer())
        .unwrap();
    let mut r = std::io::BufReader::new(sock);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"), "{head}");
    let mut body = Vec::new();
    let mut chunks = Vec::new();
    while body.iter().filter(|b| **b == b'\n').count() < n as usize {
        let mut size_line = String::new();
        r.read_line(&mut size_line).unwrap();
        let len =
            usize::from_str_radix(size_line.trim_end(), 16).unwrap_or_else(|_| panic!("chunk size {size_line:?}"));
        let mut chunk = vec![0u8; len + 2];
        r.read_exact(&mut chunk).unwrap();
        assert_eq!(&chunk[len..], b"\r\n");
        chunks.push(len);
        body.extend_from_slice(&chunk[..len]);
    }
    assert!(chunks.iter().all(|c| *c <= cap), "every chunk within {cap} bytes: {chunks:?}");
    assert!(chunks.len() >= 2, "the catch-up spans chunks: {chunks:?}");
    let seqs: Vec<u64> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "split across chunks, nothing lost or repeated");
}

/// Review s12, M1: the proofs, checkpoints, tiles, status, metrics, this document and the write
/// endpoint took any query parameter silently (a typo such as `?treesize=10` was ignored). Every
/// endpoint of `openapi.json` is listed here with a request it answers, and is asked it again
/// with an unknown parameter: 400 `bad_query`, where the request alone is not.
#[test]
fn every_endpoint_refuses_an_unknown_query_parameter() {
    let (_d, ledger) = temp_ledger();
    let srv = serve(ledger.clone());
    let events = json!([grade(1, "learner/a", Some(0)), grade(2, "learner/a", Some(1))]).to_string();
    assert_eq!(post(&srv.base, &events).0, 200);
    let size = ledger.head().0.tree_size;
    assert_eq!(size, 2, "one batch, one checkpoint at its end");
    let one_event = grade(1, "learner/a", Some(0)).to_string();
    // (OpenAPI path, method, a request it answers, its body)
    let table: [(&str, &str, &str, &str); 19] = [
        ("/v1/events", "POST", "/v1/events", &one_event),
        ("/checkpoint", "GET", "/checkpoint", ""),
        ("/v1/checkpoints/{tree_size}", "GET", "/v1/checkpoints/2", ""),
        ("/tile/{path}", "GET", "/tile/0/000.p/2", ""),
        ("/tile/{path}", "GET", "/tile/entries/000.p/2", ""),
        ("/v1/proofs/inclusion", "GET", "/v1/proofs/inclusion?leaf_index=0&tree_size=2", ""),
        ("/v1/proofs/consistency", "GET", "/v1/proofs/consistency?first=1&second=2", ""),
        ("/v1/entries", "GET", "/v1/entries?from=0", ""),
        ("/v1/streams/{stream}", "GET", "/v1/streams/learner/a", ""),
        ("/v1/feed", "GET", "/v1/feed?from=0", ""),
        ("/v1/projections", "GET", "/v1/projections", ""),
        ("/v1/projections/{path}", "GET", "/v1/projections/indicators", ""),
        ("/v1/learners/{learner}/record", "GET", "/v1/learners/a/record", ""),
        ("/v1/verify", "POST", "/v1/verify", "{}"),
        ("/v1/status", "GET", "/v1/status", ""),
        ("/metrics", "GET", "/metrics", ""),
        ("/openapi.json", "GET", "/openapi.json", ""),
        ("/verify", "GET", "/verify", ""),
        ("/web/{file}", "GET", "/web/verify.js", ""),
    ];
    let (_, doc) = get_json(&srv.base, "/openapi.json");
    let documented: std::collections::BTreeSet<&str> =
        doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let listed: std::collections::BTreeSet<&str> = table.iter().map(|r| r.0).collect();
    assert_eq!(listed, documented, "every endpoint is in the table");
    let call = |method: &str, path: &str, body: &str| -> (u16, String) {
        let req = ureq::request(method, &format!("{}{path}", srv.base)).set("authorization", &auditor_bearer());
        let resp =
            if method == "POST" { req.set("content-type", "application/json").send_string(body) } else { req.call() };
        match resp {
            // The feed never ends: its status is enough.
            Ok(r) if path.starts_with("/v1/feed") => (r.status(), String::new()),
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    };
    let code =
        |text: &str| serde_json::from_str::<Value>(text).ok().and_then(|v| v["code"].as_str().map(str::to_owned));
    for (_, method, path, body) in table {
        let (status, text) = call(method, path, body);
        assert!(code(&text).as_deref() != Some("bad_query"), "{method} {path} alone: {status} {text}");
        let typo = format!("{path}{}treesize=10", if path.contains('?') { '&' } else { '?' });
        let (status, text) = call(method, &typo, body);
        assert_eq!((status, code(&text).as_deref()), (400, Some("bad_query")), "{method} {typo}: {text}");
        // Review s12, H1: the parameters the refusal names are the ones OpenAPI documents
        // (`/v1/verify` lacked `witnesses` and `witnesses_required`).
        let message = serde_json::from_str::<Value>(&text).unwrap()["message"].as_str().unwrap().to_owned();
        let taken: std::collections::BTreeSet<String> = match message.split_once("expected") {
            Some((_, names)) => names.split('`').skip(1).step_by(2).map(str::to_owned).collect(),
            // The feed's own parser: "the feed takes from, stream_prefix and type".
            None if message.contains(" takes ") && !message.contains("no query") => {
                let names = message.rsplit_once(" takes ").unwrap().1;
                names.replace(" and ", ", ").split(", ").map(str::to_owned).collect()
            }
            None => {
                assert!(message.contains("there are no fields"), "{typo}: {message}");
                Default::default()
            }
        };
        let template = table.iter().find(|r| r.2 == path).unwrap().0;
        let params = &doc["paths"][template][method.to_lowercase()]["parameters"];
        let documented: std::collections::BTreeSet<String> = (params.as_array().into_iter().flatten())
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(taken, documented, "{method} {template}: the query parameters taken and documented");
    }
    assert_eq!(ledger.head().0.tree_size, size, "a refused write changes nothing");
}

/// Where `value` departs from the JSON schema `schema` of `doc` (`$ref`s into it resolved): the
/// members `required` asks for, JSON types, `enum`s, `additionalProperties: false`, `oneOf`,
/// recursively through `properties` and `items`. Enough to hold the documented shapes to the real answers.
fn schema_departures(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let target = r.trim_start_matches("#/").split('/').fold(doc, |v, k| &v[k]);
        assert!(!target.is_null(), "{at}: {r} resolves to nothing");
        return schema_departures(doc, target, value, at, out);
    }
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let fits = |s: &Value| {
            let mut o = Vec::new();
            schema_departures(doc, s, value, at, &mut o);
            o.is_empty()
        };
        if alternatives.iter().filter(|s| fits(s)).count() != 1 {
            out.push(format!("{at}: fits not exactly one of {} alternatives", alternatives.len()));
        }
        return;
    }
    let type_of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let got = type_of(value);
    let fits = allowed.is_empty() || allowed.contains(&got) || (got == "integer" && allowed.contains(&"number"));
    if !fits {
        out.push(format!("{at}: {got}, not {allowed:?}"));
        return;
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(value) {
            out.push(format!("{at}: {value} is not one of {e:?}"));
        }
    }
    if let Value::Object(members) = value {
        for r in schema["required"].as_array().into_iter().flatten() {
            if !members.contains_key(r.as_str().unwrap()) {
                out.push(format!("{at}: no {r}"));
            }
        }
        for (k, v) in members {
            match schema["properties"].get(k) {
                Some(s) => schema_departures(doc, s, v, &format!("{at}.{k}"), out),
                None if schema["additionalProperties"] == json!(false) => {
                    out.push(format!("{at}: {k} is not documented"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            schema_departures(doc, s, v, &format!("{at}[{i}]"), out);
        }
    }
}

/// Review s12, H3: OpenAPI gave most 200 answers no schema, and declared neither Retry-After on
/// 503s nor WWW-Authenticate on 401s. Real answers are held to the documented schemas.
#[test]
fn openapi_schemas_describe_the_real_answers() {
    let (_d, ledger) = temp_ledger();
    let srv = serve(ledger.clone());
    let events = json!([grade(1, "learner/a", Some(0)), grade(2, "learner/a", Some(1))]).to_string();
    let (status, receipts, _) = post(&srv.base, &events);
    assert_eq!(status, 200);
    let size = ledger.head().0.tree_size;
    ledger.read_side().wait_applied_blocking(size);
    let (_, doc) = get_json(&srv.base, "/openapi.json");
    let schema_of = |template: &str, method: &str, code: &str| -> Value {
        let s = doc["paths"][template][method]["responses"][code]["content"]["application/json"]["schema"].clone();
        assert!(s.is_object(), "{method} {template} {code} has a schema");
        s
    };
    let mut answers = vec![
        ("/v1/events", "post", receipts),
        ("/v1/status", "get", get_json(&srv.base, "/v1/status").1),
        ("/v1/entries", "get", get_json(&srv.base, "/v1/entries?from=0").1),
        ("/v1/streams/{stream}", "get", get_json(&srv.base, "/v1/streams/learner/a").1),
        ("/v1/projections", "get", get_json(&srv.base, "/v1/projections?digests=true").1),
        ("/v1/projections", "get", get_json(&srv.base, "/v1/projections").1),
        ("/v1/proofs/inclusion", "get", get_json(&srv.base, "/v1/proofs/inclusion?leaf_index=0&tree_size=2").1),
        ("/v1/proofs/consistency", "get", get_json(&srv.base, "/v1/proofs/consistency?first=1&second=2").1),
    ];
    let (status, view) = get_json(&srv.base, "/v1/projections/indicators");
    assert_eq!(status, 200, "{view}");
    answers.push(("/v1/projections/{path}", "get", view));
    for (template, method, answer) in &answers {
        let schema = schema_of(template, method, "200");
        let mut out = Vec::new();
        schema_departures(&doc, &schema, answer, template, &mut out);
        assert!(out.is_empty(), "{method} {template}: {out:?}\n{answer}");
    }
    // A schema that does not fit is told apart (the check can fail).
    let mut out = Vec::new();
    schema_departures(&doc, &schema_of("/v1/projections/{path}", "get", "200"), &json!({"model": 1}), "x", &mut out);
    assert!(out.len() >= 5, "{out:?}");
    // 401 carries WWW-Authenticate, 503 not_yet_applied Retry-After: both as documented.
    let unauthorized = ureq::get(&format!("{}/v1/entries", srv.base)).call().unwrap_err();
    let ureq::Error::Status(401, r) = unauthorized else { panic!("{unauthorized}") };
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let header_of = |template: &str, code: &str, name: &str| {
        doc["paths"][template]["get"]["responses"][code]["headers"][name]["$ref"].as_str().map(str::to_owned)
    };
    assert_eq!(
        header_of("/v1/entries", "401", "WWW-Authenticate").as_deref(),
        Some("#/components/headers/WWWAuthenticate")
    );
    let ahead = format!("/v1/projections/indicators?min_tree_size={}", size + 1);
    let waited = ureq::get(&format!("{}{ahead}", srv.base)).set("authorization", &auditor_bearer()).call().unwrap_err();
    let ureq::Error::Status(503, r) = waited else { panic!("{waited}") };
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        header_of("/v1/projections/{path}", "503", "Retry-After").as_deref(),
        Some("#/components/headers/RetryAfter")
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (code, resp) in op["responses"].as_object().into_iter().flatten() {
                let wants = match code.as_str() {
                    "401" => "WWW-Authenticate",
                    "503" => "Retry-After",
                    _ => continue,
                };
                assert!(resp["headers"][wants].is_object(), "{method} {path} {code} declares {wants}");
            }
        }
    }
}

#[test]
fn openapi_lists_every_route() {
    let (_d, ledger) = temp_ledger();
    let srv = serve(ledger);
    let (s, doc) = get_json(&srv.base, "/openapi.json");
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/events",
        "/checkpoint",
        "/v1/checkpoints/{tree_size}",
        "/tile/{path}",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency",
        "/v1/entries",
        "/v1/streams/{stream}",
        "/v1/feed",
        "/v1/projections",
        "/v1/projections/{path}",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} missing from openapi.json");
    }
    // And every route the router serves answers something other than 404/405 for a GET of its doc path.
    let src = include_str!("../../src/api/mod.rs");
    let routes = src.matches(".route(\"").count();
    assert_eq!(routes, paths.len(), "routes in src/api/mod.rs and paths in openapi.json differ");
    let _ = Hash([0; 32]).to_b64();
}

#[test]
fn two_nodes_over_postgres_serve_one_log_and_each_feed_follows_the_other() {
    let Some(url) = pg_url() else { return };
    let url = super::postgres::bare_ledger(&url);
    let node_a = super::postgres::node(&url);
    let (a, b) = (serve(node_a.clone()), serve(super::postgres::node(&url)));
    // A feed on node B, opened before anything is written ...
    let resp = ureq::get(&format!("{}/v1/feed?from=0", b.base)).set("authorization", &auditor_bearer()).call().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // ... sees what is appended through node A, live.
    let batch: Vec<Value> = (0..3u64).map(|i| grade(i, "learner/a", Some(i))).collect();
    let (s, r, _) = post(&a.base, &Value::Array(batch).to_string());
    assert_eq!(s, 200, "{r}");
    let timeout = std::time::Duration::from_secs(30); // a failure guard, not synchronization
    for want in 0..3 {
        let line = rx.recv_timeout(timeout).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["seq"].as_u64(), Some(want));
    }
    // Node B decides versions against node A's commits, and both serve the same checkpoint.
    let (s, r, _) = post(&b.base, &grade(10, "learner/a", Some(0)).to_string());
    assert_eq!((s, r["code"].as_str()), (409, Some("stream_version_conflict")));
    let (s, r, _) = post(&b.base, &grade(11, "learner/a", Some(3)).to_string());
    assert_eq!((s, r["seq"].as_u64()), (200, Some(3)));
    let line = rx.recv_timeout(timeout).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["seq"].as_u64(), Some(3));
    super::postgres::await_size(&node_a, 4);
    assert_eq!(get(&a.base, "/checkpoint"), get(&b.base, "/checkpoint"));
    for srv in [&a, &b] {
        let (s, status) = get_json(&srv.base, "/v1/status");
        assert_eq!(s, 200);
        assert_eq!(status["tree_size"], 4);
        assert_eq!(status["accepting_appends"], true, "{status}");
    }
}

/// `GET path` sent byte for byte over a socket: HTTP clients (ureq, curl) normalize `..` and `.`
/// segments away before sending, so only a raw request shows what the server does with them.
fn get_raw(base: &str, path: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = auditor_bearer();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{resp}"));
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_else(|| panic!("{resp}"));
    (status, serde_json::from_str(body).unwrap_or_else(|_| panic!("{path}: {resp}")))
}

/// Dot segments never name a stream: appending to `learner/../admin` is refused
/// (`event_malformed`), and reading it answers 400 `stream_malformed` instead of serving some
/// stream, while a name with dots inside a segment stays valid.
#[test]
fn stream_names_with_dot_segments_are_refused_on_append_and_read() {
    let (_d, ledger) = temp_ledger();
    let srv = serve(ledger);
    let (s, _, _) = post(&srv.base, &grade(1, "admin", None).to_string());
    assert_eq!(s, 200);
    let (s, _, _) = post(&srv.base, &grade(2, "learner/47.000.1", None).to_string());
    assert_eq!(s, 200, "dots inside a segment are fine");
    for (n, stream) in [(3, "learner/../admin"), (4, "learner/./a"), (5, ".."), (6, "./admin"), (7, "learner/..")] {
        let (s, r, _) = post(&srv.base, &grade(n, stream, None).to_string());
        assert_eq!((s, r["code"].as_str()), (400, Some("event_malformed")), "{stream}: {r}");
        assert!(r["message"].as_str().unwrap().contains("'..'"), "{r}");
    }
    let (s, r) = get_raw(&srv.base, "/v1/streams/admin");
    assert_eq!((s, r["stream_len"].as_u64()), (200, Some(1)));
    let (s, r) = get_raw(&srv.base, "/v1/streams/learner/47.000.1");
    assert_eq!((s, r["stream_len"].as_u64()), (200, Some(1)));
    for path in ["learner/../admin", "learner/./admin", "..", "learner/..", "learner//admin", "learner/"] {
        let (s, r) = get_raw(&srv.base, &format!("/v1/streams/{path}"));
        assert_eq!((s, r["code"].as_str()), (400, Some("stream_malformed")), "{path}: {r}");
    }
}

/// Any method and path, with an optional content type; (status, content type, body).
fn request(base: &str, method: &str, path: &str, content_type: Option<&str>, body: &str) -> (u16, String, Value) {
    let mut req = ureq::request(method, &format!("{base}{path}")).set("authorization", &auditor_bearer());
    if let Some(ct) = content_type {
        req = req.set("content-type", ct);
    }
    let resp = match if method == "GET" { req.call() } else { req.send_string(body) } {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let (status, ct) = (resp.status(), resp.content_type().to_owned());
    let text = resp.into_string().unwrap();
    (status, ct, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}")))
}

/// Issue "[reliability]" item 12: bad queries, paths, routes, methods and content types were
/// plain text without a code, and a tile index past any tree was 503.
#[test]
fn every_bad_request_is_refused_as_json_with_a_code() {
    let (_d, ledger) = temp_ledger();
    assert!(ledger.append_blocking(vec![grade(1, "learner/a", None)])[0].is_ok());
    let srv = serve(ledger);
    let event = grade(2, "learner/a", None).to_string();
    // method, path, content type, body, status, code
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, u16, &'a str);
    let rows: [Row; 34] = [
        ("GET", "/v1/entries?from=-1", None, "", 400, "bad_query"),
        // Review s9, finding 15: unknown parameters were ignored (`from` on a stream, whose
        // parameter is `from_version`, served versions 0-99).
        ("GET", "/v1/entries?x=1", None, "", 400, "bad_query"),
        ("GET", "/v1/streams/learner/a?from=5", None, "", 400, "bad_query"),
        // Finding 15: a size no log reaches is refused at once, not waited on and retried.
        ("GET", "/v1/projections/indicators?min_tree_size=9007199254740993", None, "", 400, "bad_query"),
        // Finding 9: a view path that is not UTF-8 was plain text.
        ("GET", "/v1/projections/diaries/x/%FF", None, "", 400, "bad_path"),
        // Finding 8: an empty learner id was 503 `unavailable` with Retry-After.
        ("GET", "/v1/learners//record", None, "", 400, "bad_path"),
        ("GET", "/v1/entries?limit=many", None, "", 400, "bad_query"),
        ("GET", "/v1/proofs/inclusion?leaf_index=x&tree_size=1", None, "", 400, "bad_query"),
        ("GET", "/v1/proofs/inclusion", None, "", 400, "bad_query"),
        ("GET", "/v1/proofs/consistency?first=1", None, "", 400, "bad_query"),
        ("GET", "/v1/proofs/consistency?first=1&second=99999999999999999999999", None, "", 400, "bad_query"),
        ("GET", "/v1/streams/learner/a?from_version=-2", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?from=abc", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?stream_prefix=", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?stream_prefix=learner/,", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?stream_prefix=/learner", None, "", 400, "bad_query"),
        // A whole `..` segment: no stream has one, so the prefix could match nothing (review s12, L5).
        ("GET", "/v1/feed?stream_prefix=learner/../x", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?stream_prefix=learner/./", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?stream_prefix=learner%20a", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?type=nosuch.", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?type=journal.no_such_event", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?type=", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?from=1&from=2", None, "", 400, "bad_query"),
        ("GET", "/v1/feed?stream_prefx=learner/", None, "", 400, "bad_query"),
        ("GET", "/v1/streams/bad%20name", None, "", 400, "stream_malformed"),
        ("GET", "/v1/streams/%FF%FE", None, "", 400, "bad_path"),
        ("GET", "/tile/0/x072/x057/x594/x037/x927/935", None, "", 404, "not_found"),
        ("GET", "/tile/5/x072/x057/x594/x037/x927/935.p/3", None, "", 404, "not_found"),
        ("GET", "/no/such/route", None, "", 404, "not_found"),
        ("DELETE", "/v1/events", None, "", 405, "method_not_allowed"),
        ("GET", "/v1/events", None, "", 405, "method_not_allowed"),
        ("POST", "/v1/events", Some("text/plain"), &event, 415, "unsupported_media_type"),
        ("POST", "/v1/events", None, &event, 415, "unsupported_media_type"),
        ("POST", "/v1/events", Some("application/x-www-form-urlencoded"), &event, 415, "unsupported_media_type"),
    ];
    for (method, path, ct, body, status, code) in rows {
        let (s, got_ct, v) = request(&srv.base, method, path, ct, body);
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{method} {path}: {v}");
        assert_eq!(got_ct, "application/json", "{method} {path}");
        let message = v["message"].as_str().unwrap_or_else(|| panic!("{method} {path}: {v}"));
        assert!(!message.is_empty() && message.starts_with(|c: char| !c.is_uppercase()), "{method} {path}: {message}");
    }
    // JSON with parameters is JSON.
    let (s, _, v) = request(&srv.base, "POST", "/v1/events", Some("application/json; charset=utf-8"), &event);
    assert_eq!((s, v["seq"].as_u64()), (200, Some(1)), "{v}");
}

/// Issue "[reliability]" item 9: a failed commit (the disk full) answered "retry" forever. It
/// answers `writes_stopped` with the store's error and no Retry-After, and /v1/status and
/// /metrics say so and why.
#[test]
fn a_failed_commit_answers_writes_stopped_with_its_reason_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(FaultStore::new(new_store(dir.path())));
    let ledger = open_ledger(store.clone(), Limits::default());
    let srv = serve(ledger);
    let (s, _, _) = post(&srv.base, &grade(1, "learner/a", None).to_string());
    assert_eq!(s, 200);
    store.set(Fault::FailBeforeWrite);
    for n in [2, 3] {
        // The batch whose commit failed, then any later append: the same answer.
        let (s, r, retry) = post(&srv.base, &grade(n, "learner/a", None).to_string());
        assert_eq!((s, r["code"].as_str(), retry), (503, Some("writes_stopped"), None), "{r}");
        let message = r["message"].as_str().unwrap();
        assert!(message.contains("no space left on device") && message.contains("restart"), "{message}");
    }
    let (s, status) = get_json(&srv.base, "/v1/status");
    assert_eq!(s, 200);
    assert_eq!((&status["writes_stopped"], &status["accepting_appends"]), (&json!(true), &json!(false)), "{status}");
    assert!(status["writes_stopped_reason"].as_str().unwrap().contains("no space left on device"), "{status}");
    let (_, m) = get(&srv.base, "/metrics");
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("zachetka_writes_stopped 1"), "{m}");
    assert!(m.contains("zachetka_writes_stopped_reason{reason=\"") && m.contains("no space left on device"), "{m}");
    // Reads continue.
    assert_eq!(get_json(&srv.base, "/v1/entries?from=0").1["tree_size"], 1);
}

/// Issue "[reliability]" item 8: overload was queued without bound and `busy` was decided only
/// after verification. With the sequencer held, the admission bound (requests in flight =
/// the queue depth) fills, and every other submitter hears `busy` with Retry-After at once,
/// before its events are verified (an invalid signature is not even looked at).
#[test]
fn overload_beyond_the_admission_bound_is_refused_busy_before_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entered_rx, release_tx) = blocking_store(dir.path());
    let limits = Limits { queue_depth_max: 2, ..Limits::default() };
    assert_eq!(limits.in_flight_requests_max(), 2);
    let srv = serve(open_ledger(store.clone(), limits));
    let base = srv.base.clone();
    let first = std::thread::spawn(move || post(&base, &grade(1, "s/a", None).to_string()));
    entered_rx.recv().unwrap();
    // 32 concurrent submitters: one more fits the bound and waits; 31 are refused at once.
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..32u64 {
        let (base, tx) = (srv.base.clone(), tx.clone());
        std::thread::spawn(move || tx.send(post(&base, &grade(100 + i, &format!("s/{i}"), None).to_string())));
    }
    let timeout = std::time::Duration::from_secs(60); // a failure guard, not synchronization
    for _ in 0..31 {
        let (s, r, retry) =
            rx.recv_timeout(timeout).expect("a refused submitter is answered while the sequencer is held");
        assert_eq!((s, r["code"].as_str(), retry.as_deref()), (503, Some("busy"), Some("1")), "{r}");
    }
    let mut bad = grade(200, "s/b", None);
    bad["event"]["data"]["mark"] = json!(2);
    let (s, r, _) = post(&srv.base, &bad.to_string());
    assert_eq!((s, r["code"].as_str()), (503, Some("busy")), "refused before verification: {r}");
    store.set(Fault::None);
    release_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap().0, 200);
    let (s, r, _) = rx.recv_timeout(timeout).unwrap();
    assert_eq!(s, 200, "the admitted submitter is answered once the sequencer moves: {r}");
    let (_, m) = get(&srv.base, "/metrics");
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("zachetka_requests_busy_total 32") && m.contains("zachetka_in_flight_events 0"), "{m}");
    assert!(m.contains("zachetka_ledger_time_ahead_of_clock_seconds 0\n"), "{m}");
    // The bound frees with the answers: the refused can retry.
    assert_eq!(post(&srv.base, &grade(100, "s/0", None).to_string()).0, 200);
}

/// Issue "[reliability]" item 4: a damaged entry below the head was served with 200, and an
/// offset splitting a UTF-8 character made the handler panic. Every read checks each entry
/// against its stored leaf hash and answers damage with 500 `store_corrupt` naming the entry;
/// stored bytes that are not UTF-8 (even with a matching stored hash) are refused, not a panic.
#[test]
fn damaged_entries_are_refused_on_read_with_their_position() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let ledger = open_ledger(store.clone(), Limits::default());
    let events: Vec<Value> = (0..8).map(|i| grade(i, "learner/a", None)).collect();
    assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
    let srv = serve(ledger);
    let paths = store.paths();
    let entries = std::fs::OpenOptions::new().read(true).write(true).open(&paths.entries).unwrap();
    let (at, len) = store.entry_span(3).unwrap();
    let mut original = vec![0u8; len as usize];
    entries.read_exact_at(&mut original, at).unwrap();
    let mut damaged = original.clone();
    damaged[40] ^= 0x01;
    entries.write_all_at(&damaged, at).unwrap();
    for path in
        ["/v1/entries?from=0&limit=8", "/v1/entries?from=3&limit=1", "/tile/entries/000.p/8", "/v1/streams/learner/a"]
    {
        let (s, r) = get_json(&srv.base, path);
        assert_eq!((s, r["code"].as_str()), (500, Some("store_corrupt")), "{path}: {r}");
        assert!(r["message"].as_str().unwrap().contains("at 3"), "{path}: {r}");
    }
    let (s, _) = get_json(&srv.base, "/v1/entries?from=4&limit=4");
    assert_eq!(s, 200, "the entries after it are still served");
    // The feed, whose 200 is sent before it reads, ends with the same refusal as its last line.
    let (s, body) = get(&srv.base, "/v1/feed?from=0");
    let body = String::from_utf8(body).unwrap();
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!((s, last["code"].as_str()), (200, Some("store_corrupt")), "{body}");
    assert!(last["message"].as_str().unwrap().contains("at 3"), "{body}");
    // Bytes that are not UTF-8, whose stored leaf hash is made to match: refused, not a panic.
    let mut not_utf8 = original.clone();
    not_utf8[40] = 0xff;
    entries.write_all_at(&not_utf8, at).unwrap();
    let hashes = std::fs::OpenOptions::new().write(true).open(&paths.hashes).unwrap();
    let leaf = zachetka::merkle::leaf_hash(&not_utf8);
    hashes.write_all_at(&leaf.0, zachetka::merkle::stored_hash_index_of_leaf(3) * 32).unwrap();
    let (s, r) = get_json(&srv.base, "/v1/entries?from=3&limit=1");
    assert_eq!((s, r["code"].as_str()), (500, Some("store_corrupt")), "{r}");
    let (s, _) = get_json(&srv.base, "/v1/status");
    assert_eq!(s, 200, "the server is still up");
}
