//! The server loop (src/api/server.rs) against misbehaving clients: slow headers, slow bodies, idle
//! and kept-alive sockets closed after their timeouts; more connections than the cap still
//! leave `/v1/status` answering (in-process, and in the real binary under a low open-file
//! limit); and a huge array of tiny items refused without the server's memory growing with it.

use super::http::{get_json, serve_with};
use super::support::*;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use zachetka::api::server::ServerConfig;

/// A failure guard on every read: a test that waits this long has failed (no timing asserted).
const GUARD: Duration = Duration::from_secs(30);

fn connect(base: &str) -> TcpStream {
    let s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s
}

/// Reads until the server closes the connection; what it sent. Fails if the guard expires
/// first (the server held the connection).
fn read_until_closed(s: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A close with unread bytes in the server's buffer arrives as a reset: closed too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("{what}: the server did not close the connection ({e})"),
        }
    }
}

/// Issue "[reliability]" item 7: idle, slow-header, kept-alive and slow-body connections were
/// held for as long as the client liked. Each is closed after its (small, configured) timeout.
#[test]
fn slow_header_idle_and_slow_body_connections_are_closed_after_their_timeouts() {
    let (_d, ledger) = temp_ledger();
    let ms = Duration::from_millis;
    let config = ServerConfig {
        header_timeout: ms(300),
        body_timeout: ms(300),
        idle_timeout: ms(300),
        ..ServerConfig::default()
    };
    let srv = serve_with(ledger, config);
    let mut idle = connect(&srv.base);
    let mut slow_header = connect(&srv.base);
    slow_header.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut kept_alive = connect(&srv.base);
    kept_alive.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut slow_body = connect(&srv.base);
    slow_body
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"ev")
        .unwrap();
    assert!(read_until_closed(&mut idle, "idle").is_empty());
    assert!(read_until_closed(&mut slow_header, "slow header").is_empty());
    let answer = String::from_utf8(read_until_closed(&mut kept_alive, "kept alive")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("\"tree_size\":0"), "{answer}");
    let answer = String::from_utf8(read_until_closed(&mut slow_body, "slow body")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("\"code\":\"body_timeout\""), "{answer}");
    // The server still answers.
    assert_eq!(get_json(&srv.base, "/v1/status").0, 200);
}

/// Issue "[reliability]" item 7: at the connection cap a new connection closes the oldest idle
/// one (nginx's reusable connections), so health checks keep answering under idle sockets.
#[test]
fn beyond_the_connection_cap_the_oldest_idle_connections_make_room() {
    let (_d, ledger) = temp_ledger();
    let cap = 8;
    let config = ServerConfig { connections_max: cap, ..ServerConfig::default() };
    let srv = serve_with(ledger, config);
    let mut idle: Vec<TcpStream> = (0..40).map(|_| connect(&srv.base)).collect();
    // Every one is accepted before the health check, which waits its turn in the backlog.
    let (s, status) = get_json(&srv.base, "/v1/status");
    assert_eq!((s, &status["accepting_appends"]), (200, &serde_json::json!(true)));
    assert_eq!(get_json(&srv.base, "/v1/entries?from=0").0, 200);
    // The oldest ones were closed to make room (the newest may still be open).
    for (i, s) in idle.iter_mut().enumerate().take(40 - cap) {
        assert!(read_until_closed(s, &format!("idle connection {i}")).is_empty());
    }
}

/// A `zachetka serve` process over a fresh bare ledger, under `ulimit -n <nofile>`.
struct ChildServer {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    fn spawn(nofile: u32, flags: &str) -> Self {
        let exe = env!("CARGO_BIN_EXE_zachetka");
        let dir = tempfile::tempdir().unwrap();
        let ledger_dir = dir.path().join("ledger");
        let init = std::process::Command::new(exe)
            .args(["init", "--rules", "none", "--origin", ORIGIN, "--dir"])
            .arg(&ledger_dir)
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let script = format!(
            "ulimit -n {nofile} && exec '{exe}' serve --dir '{}' --listen 127.0.0.1:0 {flags}",
            ledger_dir.display()
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before serving");
            if let Some(at) = line.find("on http://") {
                break line[at + 3..].split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining its log, so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self { child, base, _dir: dir }
    }

    /// A field of /proc/<pid>/status in kB (VmHWM: peak resident set).
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue "[reliability]" item 7, as reported: with `ulimit -n 1024`, 1,100 idle sockets made
/// `/checkpoint` time out ("accept error: Too many open files"). Here the real binary runs
/// with 300 descriptors (a cap of 44 connections) against 400 idle sockets.
#[test]
fn under_a_low_open_file_limit_idle_sockets_never_starve_health_checks() {
    let srv = ChildServer::spawn(300, "");
    let idle: Vec<TcpStream> = (0..400).map(|_| connect(&srv.base)).collect();
    for path in ["/v1/status", "/checkpoint", "/v1/status"] {
        let resp = ureq::get(&format!("{}{path}", srv.base)).timeout(GUARD).call();
        assert_eq!(resp.map(|r| r.status()).unwrap_or_else(|e| panic!("{path}: {e}")), 200, "{path}");
    }
    drop(idle);
}

/// Issue "[reliability]" item 6: one 16 MiB body of 2.4M tiny items raised the server from
/// 49 MB to 1.66 GB (four at once: 3.5 GB) before it was refused `batch_too_long`. Measured on
/// the real binary's peak resident set (VmHWM), four at once: bounded by the bodies.
#[test]
fn a_huge_array_of_tiny_items_is_refused_without_memory_growing_with_it() {
    let srv = ChildServer::spawn(1024, "");
    let item = "{\"\":0},";
    let n = (zachetka::api::BODY_BYTES_MAX - 2) / item.len();
    let mut body = String::with_capacity(zachetka::api::BODY_BYTES_MAX);
    body.push('[');
    for _ in 0..n {
        body.push_str(item);
    }
    body.pop();
    body.push(']');
    assert!(body.len() <= zachetka::api::BODY_BYTES_MAX && n > 2_000_000);
    let before_kb = srv.status_kb("VmHWM:");
    let body = std::sync::Arc::new(body);
    let posts: Vec<_> = (0..4)
        .map(|_| {
            let (url, body) = (format!("{}/v1/events", srv.base), body.clone());
            std::thread::spawn(move || {
                match ureq::post(&url).set("content-type", "application/json").timeout(GUARD).send_string(&body) {
                    Err(ureq::Error::Status(s, r)) => (s, r.into_json::<serde_json::Value>().unwrap()),
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    for p in posts {
        let (s, r) = p.join().unwrap();
        assert_eq!((s, r["code"].as_str()), (400, Some("batch_too_long")), "{r}");
    }
    let grown_mb = (srv.status_kb("VmHWM:") - before_kb) / 1024;
    // Four bodies of 16 MiB and their scans: about 70 MB; building values was 1.6 GB each.
    assert!(grown_mb < 200, "peak RSS grew by {grown_mb} MB for four refused 16 MiB requests");
    eprintln!("peak RSS grew by {grown_mb} MB (from {} MB)", before_kb / 1024);
}

/// Issue "[reliability]" item 12: the server now requires `Content-Type: application/json`;
/// the CLI's `append --server` sends it (a receipt, not `unsupported_media_type`).
#[test]
fn the_cli_appends_through_a_server_as_json() {
    let srv = ChildServer::spawn(1024, "");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["append", "--server", &srv.base])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("{}\n{}\n", grade(1, "learner/a", None), grade(2, "learner/a", None));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let seqs: Vec<u64> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1], "{text}");
}

/// A feed whose client stopped reading held its connection (and its place under the cap) for
/// ever: a response write that waits the write timeout ends the connection. The client here
/// reads nothing for a while, then finds the connection closed before the live feed's end
/// (without the timeout the feed stays open, and the read guard fails the test).
#[test]
fn a_client_that_stops_reading_a_feed_is_closed_after_the_write_timeout() {
    let (_d, ledger) = temp_ledger();
    // Enough entries (~14 MB of feed) to fill both sockets' buffers.
    for b in 0..20u64 {
        let events = (0..1000).map(|i| grade(b * 1000 + i, &format!("learner/{}", i % 50), None)).collect();
        assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
    }
    let config = ServerConfig { write_timeout: Duration::from_millis(300), ..ServerConfig::default() };
    let srv = serve_with(ledger, config);
    let mut feed = connect(&srv.base);
    let request = format!("GET /v1/feed?from=0 HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n", auditor_bearer());
    feed.write_all(request.as_bytes()).unwrap();
    // The client stalls (what is under test), long past the write timeout.
    std::thread::sleep(Duration::from_millis(1500));
    let got = read_until_closed(&mut feed, "unread feed");
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got[..got.len().min(200)]));
    let lines = got.split(|b| *b == b'\n').filter(|l| l.starts_with(b"{\"event\"")).count();
    assert!(lines < 20_000, "the whole feed arrived ({lines} entries): the client was never cut off");
    assert_eq!(get_json(&srv.base, "/v1/status").0, 200);
}

/// Request bodies are reserved as their bytes arrive: clients that declare 16 MiB bodies and stall
/// hold none of the budget (review s11: four such sockets used to turn writes off region-wide for
/// the body timeout), while clients that have sent 64 MiB between them hold all of it, and
/// another `POST /v1/events` is then `busy`; when they are gone it is accepted.
#[test]
fn request_bodies_beyond_the_byte_budget_are_busy_and_stalled_declarations_hold_nothing() {
    let (_d, ledger) = temp_ledger();
    let srv = serve_with(ledger, ServerConfig::default());
    let declared = zachetka::api::BODY_BYTES_MAX;
    let holders = zachetka::api::BODY_BYTES_IN_FLIGHT_MAX / declared;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n["
    );
    let reserved = || {
        let (_, m) = super::http::get_text(&srv.base, "/metrics");
        m.lines().find_map(|l| l.strip_prefix("zachetka_request_body_bytes_reserved ")?.parse::<usize>().ok()).unwrap()
    };
    let event = grade(1, "learner/a", None).to_string();
    let post = || {
        ureq::post(&format!("{}/v1/events", srv.base))
            .set("content-type", "application/json")
            .send_string(&event)
            .map_err(Box::new)
    };
    // Declared and stalled: nothing is reserved, and an append goes through.
    let stalled: Vec<TcpStream> = (0..holders)
        .map(|_| {
            let mut s = connect(&srv.base);
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    assert_eq!(post().expect("an append while stalled declarations are open").status(), 200);
    assert!(reserved() < 1 << 20, "stalled declarations hold {} bytes of the budget", reserved());
    drop(stalled);
    // A declared length over the limit, from a client that waits for 100 Continue: refused at
    // once, before any byte of the body.
    let mut s = connect(&srv.base);
    s.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n",
    )
    .unwrap();
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&answer));
    drop(s);
    // Bodies that have arrived all but their last byte: they hold the whole budget.
    let holders: Vec<TcpStream> = (0..holders)
        .map(|_| {
            let mut s = connect(&srv.base);
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&vec![b' '; declared - 2]).unwrap();
            s
        })
        .collect();
    // Their reservations are taken as their bytes arrive: wait (bounded) until the server's
    // gauge shows the whole budget held.
    let deadline = std::time::Instant::now() + GUARD;
    while reserved() < zachetka::api::BODY_BYTES_IN_FLIGHT_MAX {
        assert!(std::time::Instant::now() < deadline, "the holders' bodies were never reserved");
        std::thread::yield_now();
    }
    let refusal = match post() {
        Err(e) => match *e {
            ureq::Error::Status(503, r) => r.into_json::<serde_json::Value>().unwrap(),
            other => panic!("not busy while the budget is held: {other:?}"),
        },
        Ok(r) => panic!("accepted while the budget is held: {}", r.status()),
    };
    assert_eq!(refusal["code"], "busy", "{refusal}");
    drop(holders);
    let deadline = std::time::Instant::now() + GUARD;
    loop {
        match post() {
            Ok(r) => break assert_eq!(r.status(), 200),
            Err(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("still refused after the holders left: {e}"),
        }
    }
}

/// Review s11 (ops finding 4): service managers stop a server with SIGTERM, which used to kill
/// it mid-request with nothing written. Now SIGTERM stops it as Ctrl-C does: it says so, lets
/// requests in progress finish, exits 0, and the read side leaves a snapshot of everything it
/// applied (whatever the policy owed), so the next start replays nothing.
#[test]
fn sigterm_stops_the_server_cleanly_and_leaves_a_snapshot_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    init_ledger(&ledger_dir);
    let server = ServeProcess::start(&ledger_dir);
    let batch = (0..5).map(|i| grade(i, "learner/a", None)).collect();
    assert_eq!(server.post(batch), Some(200));
    let (status, log) = server.stop();
    assert!(status.success(), "exit {status:?} after SIGTERM: {log:#?}");
    assert!(log.iter().any(|l| l.contains("stopping on SIGTERM")), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("stopped serving at tree size 5")), "{log:#?}");
    let snapshots: Vec<String> = std::fs::read_dir(ledger_dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(snapshots.contains(&zachetka_snapshots::file_name(5)), "{snapshots:?}: {log:#?}");
}

/// `zachetka init --rules none` of a ledger in `dir`.
fn init_ledger(dir: &std::path::Path) {
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["init", "--rules", "none", "--origin", ORIGIN, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
}

/// A `zachetka serve` of a ledger on a free port, its base URL, and its log (collected until
/// it exits). Waits for its exit are bounded ([`GUARD`]): a server that does not exit is killed
/// and the test fails rather than hang.
struct ServeProcess {
    pid: u32,
    base: String,
    exited: std::sync::mpsc::Receiver<(std::process::ExitStatus, Vec<String>)>,
}

impl ServeProcess {
    fn start(dir: &std::path::Path) -> Self {
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["serve", "--listen", "127.0.0.1:0", "--snapshot-every-entries", "1000000", "--dir"])
            .arg(dir)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("the server exited before serving").unwrap();
            if let Some(at) = line.find("on http://") {
                break line[at + 3..].split_whitespace().next().unwrap().to_owned();
            }
        };
        let (tx, exited) = std::sync::mpsc::channel();
        let pid = child.id();
        std::thread::spawn(move || {
            let log = lines.map(Result::unwrap).collect::<Vec<_>>();
            let _ = tx.send((child.wait().unwrap(), log));
        });
        ServeProcess { pid, base, exited }
    }

    /// `POST /v1/events` of `events` as one batch: the answer's status, if one came.
    fn post(&self, events: Vec<serde_json::Value>) -> Option<u16> {
        let body = serde_json::Value::Array(events).to_string();
        match ureq::post(&format!("{}/v1/events", self.base)).set("content-type", "application/json").send_string(&body)
        {
            Ok(r) => Some(r.status()),
            Err(ureq::Error::Status(code, _)) => Some(code),
            Err(ureq::Error::Transport(_)) => None,
        }
    }

    /// Its exit status and log, once it exits by itself.
    fn wait(self) -> (std::process::ExitStatus, Vec<String>) {
        match self.exited.recv_timeout(GUARD) {
            Ok(exit) => exit,
            Err(_) => {
                let _ = std::process::Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
                panic!("the server did not exit within {GUARD:?}");
            }
        }
    }

    /// SIGTERM, then [`Self::wait`].
    fn stop(self) -> (std::process::ExitStatus, Vec<String>) {
        let term = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().unwrap();
        assert!(term.success());
        self.wait()
    }
}

/// Damage in a snapshot's values is found after the open, when a value in the damaged chunk is
/// first needed (here: the next grade of the learner whose diary it holds). `serve` then sets
/// the file aside and exits with status 75 (EX_TEMPFAIL) rather than answer from it or stop in
/// a loop: started again, it opens without that snapshot, rebuilds from the log, and nothing
/// acknowledged is missing.
#[test]
fn serve_exits_75_on_damage_found_after_the_open_and_starts_again_without_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    init_ledger(&ledger_dir);
    // A grade the diaries fold (it names its lesson's date, class and institution).
    let grade = |n: u64| {
        let ev = serde_json::json!({
            "ledger": ORIGIN, "stream": "learner/a", "type": "journal.grade_recorded", "id": id(n),
            "occurred_at": "2026-11-23T08:00:00Z", "author": teacher().did(),
            "data": {"institution": "school/1", "class": "5a", "subject": "math", "mark": 5, "scale": "five_point",
                     "weight": 3, "kind": "lesson", "lesson_date": "2026-11-23"}
        });
        zachetka::event::sign_event(&ev, &teacher()).unwrap()
    };
    // A snapshot at 5 entries (the stop writes it), holding learner/a's diary in its values.
    let server = ServeProcess::start(&ledger_dir);
    assert_eq!(server.post((0..5).map(grade).collect()), Some(200));
    let (status, log) = server.stop();
    assert!(status.success(), "{log:#?}");
    let path = ledger_dir.join("snapshots").join(zachetka_snapshots::file_name(5));
    let snap = zachetka_snapshots::read(&path).unwrap();
    let values: u64 = snap.sections().map(|s| zachetka_projections::lazy::ValueSource::len(&s.values)).sum();
    let area = snap.file_len() - values;
    drop(snap);
    let mut bytes = std::fs::read(&path).unwrap();
    for at in (area as usize..bytes.len()).step_by(zachetka_snapshots::CHUNK_LEN as usize) {
        bytes[at] ^= 0x08;
    }
    std::fs::write(&path, &bytes).unwrap();
    // The open reads the header and the sections only: it serves. learner/a's next grade needs
    // the diary: the server exits 75, and the snapshot is set aside.
    let server = ServeProcess::start(&ledger_dir);
    let acknowledged = server.post(vec![grade(5)]) == Some(200);
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(75), "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains("checksum mismatch in the values area") && l.contains("set aside")),
        "{log:#?}"
    );
    assert!(!path.exists(), "{log:#?}");
    let aside =
        path.with_file_name(format!("{}{}", zachetka_snapshots::file_name(5), zachetka_snapshots::DAMAGED_SUFFIX));
    assert_eq!(std::fs::read(aside).unwrap(), bytes, "set aside as it was, not repaired");
    // Started again: no snapshot to take, the models rebuilt from the log, every acknowledged
    // entry there, and appends taken.
    let server = ServeProcess::start(&ledger_dir);
    let head = if acknowledged { 6 } else { 5 };
    let checkpoint = ureq::get(&format!("{}/checkpoint", server.base)).call().unwrap().into_string().unwrap();
    assert_eq!(checkpoint.lines().nth(1), Some(head.to_string().as_str()), "{checkpoint}");
    assert_eq!(server.post(vec![grade(6)]), Some(200));
    let (status, log) = server.stop();
    assert!(status.success(), "{log:#?}");
    assert!(log.iter().any(|l| l.contains(&format!("stopped serving at tree size {}", head + 1))), "{log:#?}");
}

/// Review s11 (ops finding 10): 300 unread feeds held ~830 MB; the connection cap alone allows
/// thousands. Feeds open at once are bounded: beyond the bound a new feed is `busy` with
/// Retry-After, and a closed feed gives its place back.
#[test]
fn open_feeds_are_bounded_and_a_closed_one_gives_its_place_back() {
    let (_d, ledger) = temp_ledger();
    assert!(ledger.append_blocking(vec![grade(1, "learner/a", None)]).iter().all(Result::is_ok));
    let srv = serve_with(ledger, ServerConfig::default());
    let request = format!("GET /v1/feed?from=0 HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n", auditor_bearer());
    let open_feed = || {
        let mut s = connect(&srv.base);
        s.write_all(request.as_bytes()).unwrap();
        let mut reader = std::io::BufReader::new(s);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        (status, reader)
    };
    let mut feeds = Vec::new();
    for i in 0..zachetka::api::FEEDS_OPEN_MAX {
        let (status, reader) = open_feed();
        assert!(status.starts_with("HTTP/1.1 200"), "feed {i}: {status}");
        feeds.push(reader);
    }
    let (status, mut refused) = open_feed();
    assert!(status.starts_with("HTTP/1.1 503"), "a feed beyond the bound: {status}");
    let mut head = String::new();
    while refused.read_line(&mut head).unwrap() > 0 && !head.ends_with("\r\n\r\n") {}
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap();
    let mut body = vec![0u8; length];
    refused.read_exact(&mut body).unwrap();
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["code"], "busy");
    let (_, metrics) = super::http::get_text(&srv.base, "/metrics");
    assert!(metrics.contains(&format!("zachetka_feeds_open {}", zachetka::api::FEEDS_OPEN_MAX)), "{metrics}");
    // One closes: its place comes back once the server sees the connection gone (bounded wait).
    drop(feeds.pop());
    let deadline = std::time::Instant::now() + GUARD;
    loop {
        let (status, reader) = open_feed();
        if status.starts_with("HTTP/1.1 200") {
            feeds.push(reader);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the closed feed's place never came back: {status}");
        std::thread::yield_now();
    }
}
