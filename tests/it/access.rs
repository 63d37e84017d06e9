//! Reads scoped by role over a real socket: every non-public endpoint answers 401 without a valid
//! token and 403 to a token whose role or scope does not cover it, with nothing of the data;
//! public endpoints answer anyone; a token created or revoked while the server runs (in-process,
//! and through the `zachetka token` binary against a `zachetka serve` process) applies from the
//! next request; an open feed ends when its token is revoked; an unreadable token file fails
//! closed; `--public-reads` and `router` without tokens behave as documented.

use super::http::{serve, serve_access, Server};
use super::support::*;
use serde_json::Value;
use std::io::BufRead;
use zachetka::access::{create_token, revoke_token, Access, Role, Scope, TokenSecret};
use zachetka::api::server::ServerConfig;
use zachetka::ledger::Ledger;

/// (status, `WWW-Authenticate`, body) of a GET with `authorization` (a whole header value).
fn get_as(base: &str, path: &str, authorization: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = ureq::get(&format!("{base}{path}"));
    if let Some(a) = authorization {
        req = req.set("authorization", a);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    let (status, www) = (resp.status(), resp.header("www-authenticate").map(str::to_owned));
    if path.starts_with("/v1/feed") && status == 200 {
        // A feed never ends: its 200 and first line are enough.
        let mut line = String::new();
        std::io::BufReader::new(resp.into_reader()).read_line(&mut line).unwrap();
        return (status, www, line);
    }
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, www, String::from_utf8_lossy(&body).into_owned())
}

fn bearer(secret: &TokenSecret) -> String {
    format!("Bearer {}", secret.expose())
}

/// A refusal body: exactly `{"code","message"}`, with this code.
fn assert_refusal(body: &str, code: &str, context: &str) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{context}: not JSON: {body}"));
    assert_eq!(v["code"].as_str(), Some(code), "{context}: {body}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{context}: a refusal carries code and message only: {body}");
}

/// A ledger with entries on two learner streams.
fn ledger_with_entries() -> (tempfile::TempDir, Ledger) {
    let (d, ledger) = temp_ledger();
    let events = (0..6u64).map(|i| grade(i, if i % 2 == 0 { "learner/a" } else { "learner/b" }, None)).collect();
    assert!(ledger.append_blocking(events).iter().all(Result::is_ok));
    (d, ledger)
}

/// The non-public endpoints that serve raw entries (6 entries in the log).
const ENTRY_PATHS: [&str; 5] = [
    "/v1/entries?from=0&limit=3",
    "/tile/entries/000.p/6",
    "/v1/streams/learner/a",
    "/v1/feed?from=0",
    "/v1/feed?from=4",
];

/// What anyone may read (6 entries in the log).
const PUBLIC_PATHS: [&str; 8] = [
    "/checkpoint",
    "/tile/0/000.p/6",
    "/v1/proofs/inclusion?leaf_index=1&tree_size=6",
    "/v1/proofs/consistency?first=2&second=6",
    "/v1/status",
    "/metrics",
    "/openapi.json",
    "/tile/0/000.p/3",
];

#[test]
fn each_role_reads_exactly_its_scope_and_public_endpoints_stay_public() {
    let (_d, ledger) = ledger_with_entries();
    let srv = serve(ledger);
    let inst = |x: &str| Scope::Institution(x.into());
    let terr = |x: &str| Scope::Territory(x.into());
    // Role, scope, whether it may read raw entries.
    let holders: [(Role, Scope, bool); 7] = [
        (Role::Auditor, Scope::Region, true),
        (Role::ReadService, Scope::Region, true),
        (Role::ReadService, terr("luga"), false),
        (Role::ReadService, inst("sch-001"), false),
        (Role::Staff, inst("sch-001"), false),
        (Role::Staff, terr("luga"), false),
        (Role::Learner, Scope::Learner("a".into()), false),
    ];
    let mut tokens = Vec::new();
    for (i, (role, scope, _)) in holders.iter().enumerate() {
        let secret = TokenSecret::from_bytes([i as u8 + 1; 32]);
        create_token(&srv.tokens, &secret, *role, scope.clone(), "role test", 0).unwrap();
        tokens.push(secret);
    }
    for ((role, scope, entries), secret) in holders.iter().zip(&tokens) {
        for path in ENTRY_PATHS {
            let (status, _, body) = get_as(&srv.base, path, Some(&bearer(secret)));
            let context = format!("{role:?} of {scope:?} on {path}");
            if *entries {
                assert_eq!(status, 200, "{context}: {body}");
                assert!(body.contains("\"event\""), "{context}: entries served: {body}");
            } else {
                assert_eq!(status, 403, "{context}: {body}");
                assert_refusal(&body, "forbidden", &context);
                assert!(!body.contains("learner/"), "{context}: nothing of the data: {body}");
            }
        }
    }
    // Without a token, with another scheme, with a token that is not one, with an unknown one:
    // 401 naming the Bearer scheme, nothing of the data.
    let unknown = bearer(&TokenSecret::from_bytes([0xee; 32]));
    let garbage = format!("Bearer zt_{}", "!".repeat(43));
    for auth in [None, Some("Basic YTpi"), Some("Bearer"), Some(garbage.as_str()), Some(unknown.as_str())] {
        for path in ENTRY_PATHS {
            let (status, www, body) = get_as(&srv.base, path, auth);
            let context = format!("{auth:?} on {path}");
            assert_eq!(status, 401, "{context}: {body}");
            assert!(www.as_deref().is_some_and(|w| w.starts_with("Bearer")), "{context}: {www:?}");
            assert_refusal(&body, "unauthorized", &context);
        }
    }
    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {}", tokens[0].expose());
    assert_eq!(get_as(&srv.base, "/v1/entries", Some(&lower)).0, 200);
    // Public: no token needed, and a token that may read nothing does not spoil them either.
    let learner = bearer(&tokens[6]);
    for path in PUBLIC_PATHS {
        for auth in [None, Some(learner.as_str()), Some("Basic YTpi")] {
            let (status, _, body) = get_as(&srv.base, path, auth);
            assert_eq!(status, 200, "{path} with {auth:?}: {body}");
        }
    }
    let (status, body, _) = {
        let r = ureq::post(&format!("{}/v1/events", srv.base))
            .set("content-type", "application/json")
            .send_string(&grade(100, "learner/c", None).to_string());
        match r {
            Ok(r) => (r.status(), r.into_string().unwrap(), ()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap(), ()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(status, 200, "writes are authenticated by signatures, not tokens: {body}");
}

#[test]
fn a_token_applies_from_the_next_request_after_it_is_created_or_revoked() {
    let (_d, ledger) = ledger_with_entries();
    let srv = serve(ledger);
    let secret = TokenSecret::from_bytes([0x42; 32]);
    let auth = bearer(&secret);
    assert_eq!(get_as(&srv.base, "/v1/entries", Some(&auth)).0, 401, "not created yet");
    let record = create_token(&srv.tokens, &secret, Role::ReadService, Scope::Region, "rs", 0).unwrap();
    assert_eq!(get_as(&srv.base, "/v1/entries", Some(&auth)).0, 200, "created: accepted at once");
    revoke_token(&srv.tokens, &record.id).unwrap();
    let (status, _, body) = get_as(&srv.base, "/v1/entries", Some(&auth));
    assert_eq!(status, 401, "revoked: refused on the very next request: {body}");
    assert_refusal(&body, "unauthorized", "revoked");
    // The other tokens of the file are untouched by the revocation.
    assert_eq!(get_as(&srv.base, "/v1/entries", Some(&auditor_bearer())).0, 200);
}

#[test]
fn a_feed_ends_with_an_unauthorized_line_when_its_token_is_revoked() {
    let (_d, ledger) = ledger_with_entries();
    let writer = ledger.clone();
    let srv = serve(ledger);
    let secret = TokenSecret::from_bytes([0x43; 32]);
    let record = create_token(&srv.tokens, &secret, Role::Auditor, Scope::Region, "feed", 0).unwrap();
    let resp =
        ureq::get(&format!("{}/v1/feed?from=0", srv.base)).set("authorization", &bearer(&secret)).call().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let timeout = std::time::Duration::from_secs(30); // a failure guard, not synchronization
    let line = |rx: &std::sync::mpsc::Receiver<String>| -> Value {
        serde_json::from_str(&rx.recv_timeout(timeout).unwrap()).unwrap()
    };
    for want in 0..6 {
        assert_eq!(line(&rx)["seq"].as_u64(), Some(want));
    }
    revoke_token(&srv.tokens, &record.id).unwrap();
    assert!(writer.append_blocking(vec![grade(50, "learner/a", None)]).iter().all(Result::is_ok));
    let last = line(&rx);
    assert_eq!(last["code"].as_str(), Some("unauthorized"), "no entry after the revocation: {last}");
    assert!(
        matches!(rx.recv_timeout(timeout), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)),
        "the feed ends after its refusal line"
    );
}

/// Review s9, finding 11: an idle feed (nothing new committed) sent heartbeats to a revoked
/// token for as long as it stayed open. Its next line after the revocation, a heartbeat's turn,
/// is the `unauthorized` line, and the feed ends.
#[test]
fn an_idle_feed_ends_with_an_unauthorized_line_when_its_token_is_revoked() {
    let (_d, ledger) = ledger_with_entries();
    let srv = serve(ledger);
    let secret = TokenSecret::from_bytes([0x44; 32]);
    let record = create_token(&srv.tokens, &secret, Role::ReadService, Scope::Region, "idle feed", 0).unwrap();
    // From the head: nothing to send until a heartbeat is due.
    let resp =
        ureq::get(&format!("{}/v1/feed?from=6", srv.base)).set("authorization", &bearer(&secret)).call().unwrap();
    revoke_token(&srv.tokens, &record.id).unwrap();
    let mut lines = std::io::BufReader::new(resp.into_reader()).lines();
    // (The heartbeat comes FEED_HEARTBEAT_INTERVAL after the feed opened; ureq has no read
    // timeout, and a feed that never ends would hang here, so the read is on its own thread.)
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let first = lines.next().map(Result::unwrap);
        let second = lines.next().map(|l| l.map_err(|e| e.to_string()));
        let _ = tx.send((first, second));
    });
    let guard = zachetka::api::FEED_HEARTBEAT_INTERVAL * 3; // a failure guard, not synchronization
    let (first, second) = rx.recv_timeout(guard).expect("the feed ended after its first line");
    let first: Value = serde_json::from_str(&first.expect("a line")).unwrap();
    assert_eq!(first["code"].as_str(), Some("unauthorized"), "no heartbeat to a revoked token: {first}");
    assert!(second.is_none(), "the feed ends after its refusal line: {second:?}");
}

/// Review s9, finding 15: with two `Authorization` headers the first won, so a proxy reading the
/// other one authorized differently. Such a request is refused 401, whichever order.
#[test]
fn a_request_with_two_authorization_headers_is_refused() {
    use std::io::{Read, Write};
    let (_d, ledger) = ledger_with_entries();
    let srv = serve(ledger);
    let learner = TokenSecret::from_bytes([0x45; 32]);
    create_token(&srv.tokens, &learner, Role::Learner, Scope::Learner("a".into()), "learner", 0).unwrap();
    let (a, b) = (bearer(&learner), auditor_bearer());
    let addr = srv.base.trim_start_matches("http://").to_owned();
    for (first, second) in [(&a, &b), (&b, &a), (&b, &b)] {
        for path in ["/v1/entries", "/v1/projections/diaries/a"] {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {first}\r\nAuthorization: {second}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            let status = resp.split(' ').nth(1).unwrap_or_default();
            let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
            assert_eq!(status, "401", "{path}: {resp}");
            assert_refusal(body, "unauthorized", path);
            assert!(body.contains("more than one"), "says why: {body}");
        }
    }
    // One header still works.
    assert_eq!(get_as(&srv.base, "/v1/entries", Some(&b)).0, 200);
}

#[test]
fn an_unreadable_token_file_refuses_reads_and_leaves_public_ones() {
    let (_d, ledger) = ledger_with_entries();
    let srv = serve(ledger);
    assert_eq!(get_as(&srv.base, "/v1/entries", Some(&auditor_bearer())).0, 200);
    std::fs::write(&srv.tokens, b"{\"version\":1,\"tokens\":[").unwrap();
    let (status, _, body) = get_as(&srv.base, "/v1/entries", Some(&auditor_bearer()));
    assert_eq!(status, 503, "fail closed, never on a stale file: {body}");
    assert_refusal(&body, "unavailable", "broken token file");
    assert!(!body.contains("tokens.json"), "the file's path is for the operator's log: {body}");
    assert_eq!(get_as(&srv.base, "/checkpoint", None).0, 200);
}

fn serve_with_access(ledger: Ledger, access: Access) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("unused.json");
    serve_access(ledger, ServerConfig::default(), access, dir, tokens)
}

#[test]
fn public_reads_is_the_old_behaviour_and_no_tokens_refuses_every_entry_read() {
    let (_d, ledger) = ledger_with_entries();
    let open = serve_with_access(ledger.clone(), Access::public_reads());
    for path in ENTRY_PATHS {
        let (status, _, body) = get_as(&open.base, path, None);
        assert_eq!(status, 200, "--public-reads: {path}: {body}");
    }
    let closed = serve_with_access(ledger, Access::no_tokens());
    for path in ENTRY_PATHS {
        assert_eq!(get_as(&closed.base, path, Some(&auditor_bearer())).0, 401, "no tokens: {path}");
    }
    for path in PUBLIC_PATHS {
        assert_eq!(get_as(&closed.base, path, None).0, 200, "no tokens: {path}");
    }
}

/// The operator's path end to end: `zachetka token create` and `token revoke` against the file of
/// a running `zachetka serve` process, which honours both from its next request.
#[test]
fn the_token_cli_manages_a_running_servers_readers() {
    use std::process::{Command, Stdio};
    let exe = env!("CARGO_BIN_EXE_zachetka");
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let zachetka = |args: &[&str]| {
        let out = Command::new(exe).args(args).env("RUST_LOG", "warn").env_remove("ZACHETKA_DATABASE_URL").output();
        out.unwrap()
    };
    let d = ledger_dir.to_str().unwrap();
    let init = zachetka(&["init", "--rules", "none", "--origin", ORIGIN, "--dir", d]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut child = Command::new(exe)
        .args(["serve", "--dir", d, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let _child = Kill(child);
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before serving");
        if let Some(at) = line.find("on http://") {
            break line[at + 3..].split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    assert_eq!(get_as(&base, "/v1/entries", None).0, 401, "no token file yet");
    let out = zachetka(&["token", "create", "--dir", d, "--role", "auditor", "--label", "internal control"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(TokenSecret::parse(&token).is_some(), "{token}");
    let auth = format!("Bearer {token}");
    assert_eq!(get_as(&base, "/v1/entries", Some(&auth)).0, 200, "created while serving");
    let id = zachetka::access::read_tokens(&ledger_dir.join("tokens.json")).unwrap()[0].id.clone();
    let out = zachetka(&["token", "revoke", "--dir", d, &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(get_as(&base, "/v1/entries", Some(&auth)).0, 401, "revoked while serving");
    // The file is the owner's only, and `list` shows the token without its secret or hash.
    let file = ledger_dir.join("tokens.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = zachetka(&["token", "list", "--tokens", file.to_str().unwrap()]);
    let listed = String::from_utf8(out.stdout).unwrap();
    let hash = zachetka::access::read_tokens(&file).unwrap()[0].sha256.clone();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.starts_with(&format!("{id}\tauditor\tregion\t")), "{listed}");
    assert!(listed.trim_end().ends_with("\trevoked\tinternal control"), "{listed}");
    assert!(!listed.contains(&token[3..]) && !listed.contains(&hash), "{listed}");
    // Role and scope combinations a token cannot hold are refused with exit status 2, and
    // nothing is added to the file.
    for args in [
        &["--role", "auditor", "--institution", "sch-001"][..],
        &["--role", "staff"],
        &["--role", "staff", "--learner", "47-000001"],
        &["--role", "learner", "--institution", "sch-001"],
        &["--role", "learner"],
        &["--role", "read-service", "--learner", "47-000001"],
        &["--role", "staff", "--institution", "sch-001", "--territory", "luga"],
        &["--role", "staff", "--institution", "sch 001"],
        &["--role", "janitor"],
    ] {
        let out = zachetka(&[&["token", "create", "--dir", d][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}: no token printed");
        assert!(!out.stderr.is_empty(), "{args:?}: a message says why");
    }
    assert_eq!(zachetka::access::read_tokens(&file).unwrap().len(), 1);
    let out = zachetka(&["token", "revoke", "--dir", d, "000000000000"]);
    assert_eq!(out.status.code(), Some(2), "an unknown id: {}", String::from_utf8_lossy(&out.stderr));
}

/// `openapi.json` says which operations need a bearer token: exactly the raw-entry reads, the read
/// models (and
/// entry bundles under `/tile/{path}`, where the token is optional because hash tiles are public).
#[test]
fn openapi_marks_exactly_the_reads_that_need_a_token() {
    let doc: Value = serde_json::from_str(zachetka::api::OPENAPI).unwrap();
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc.get("security").is_none(), "no document-wide requirement: the public endpoints stay public");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op.get("security").map(|s| s.to_string());
            let want = match path.as_str() {
                "/v1/entries"
                | "/v1/streams/{stream}"
                | "/v1/feed"
                | "/v1/projections"
                | "/v1/projections/{path}"
                | "/v1/learners/{learner}/record" => Some(r#"[{"bearer":[]}]"#),
                "/tile/{path}" => Some(r#"[{},{"bearer":[]}]"#),
                _ => None,
            };
            assert_eq!(security.as_deref(), want, "{method} {path}");
            if want.is_some() {
                assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object(), "{method} {path}");
            }
        }
    }
}

/// `zachetka demo` prints a working token per kind of reader, with curl lines naming real ids of
/// the demo region; a second run revokes the first run's tokens.
#[test]
fn the_demo_prints_a_working_token_per_reader() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let demo = || {
        let out = Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["demo", "--no-serve", "--learners", "300", "--teachers", "60", "--events", "2000", "--dir"])
            .arg(&d)
            .env("RUST_LOG", "warn")
            .env_remove("ZACHETKA_DATABASE_URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let first = demo();
    let tokens_of = |out: &str| -> Vec<(String, String)> {
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("curl -H 'Authorization: Bearer "))
            .map(|l| {
                let (token, rest) = l.split_once("' '").unwrap();
                (token.to_owned(), rest.trim_end_matches('\'').to_owned())
            })
            .collect()
    };
    let printed = tokens_of(&first);
    assert_eq!(printed.len(), 4, "{first}");
    let sample = zachetka::demo::sample(zachetka::demo::DemoSize { learners: 300, teachers: 60, events: 2000 });
    assert_eq!((sample.school.as_str(), sample.class.as_str()), ("sch-001", "5А"));
    assert!(printed[0].1.ends_with("/v1/entries?limit=3"), "{first}");
    assert!(
        printed[1].1.ends_with(
            "/v1/projections/journals/sch-001/5%D0%90/%D0%9C%D0%B0%D1%82%D0%B5%D0%BC%D0%B0%D1%82%D0%B8%D0%BA%D0%B0"
        ),
        "{first}"
    );
    assert!(printed[2].1.ends_with(&format!("/v1/projections/diaries/{}", sample.learner)), "{first}");
    let lifelong = format!("/v1/projections/profiles/{}", sample.lifelong);
    assert!(printed[3].1.ends_with(&lifelong), "{first}");
    let second = demo();
    let file = d.join("tokens.json");
    let records = zachetka::access::read_tokens(&file).unwrap();
    assert_eq!(records.len(), 8);
    assert!(records[..4].iter().all(|t| t.revoked) && records[4..].iter().all(|t| !t.revoked), "{records:?}");
    let roles: Vec<(Role, Scope)> = records[4..].iter().map(|t| (t.role, t.scope.clone())).collect();
    assert_eq!(
        roles,
        [
            (Role::Auditor, Scope::Region),
            (Role::Staff, Scope::Institution(sample.school.clone())),
            (Role::Learner, Scope::Learner(sample.learner.clone())),
            (Role::Learner, Scope::Learner(sample.lifelong.clone())),
        ]
    );
    // Serve the demo ledger with its token file: the auditor's line works, the others may not read
    // entries, and the first run's tokens are refused.
    let key = zachetka::keys::KeyPair::from_key_file(&std::fs::read_to_string(d.join("ledger.key")).unwrap()).unwrap();
    let store = std::sync::Arc::new(zachetka::store::sled::SledStore::open(&d.join("store")).unwrap());
    let clock = std::sync::Arc::new(zachetka::time::SystemClock);
    let ledger = Ledger::open(store, key, clock, zachetka::ledger::Limits::default()).unwrap();
    let srv = serve_access(ledger, ServerConfig::default(), Access::tokens(&file), dir, file.clone());
    let now = tokens_of(&second);
    let (status, _, body) = get_as(&srv.base, "/v1/entries?limit=3", Some(&format!("Bearer {}", now[0].0)));
    assert_eq!(status, 200, "{body}");
    for (token, _) in &now[1..] {
        assert_eq!(get_as(&srv.base, "/v1/entries?limit=3", Some(&format!("Bearer {token}"))).0, 403);
    }
    assert_eq!(get_as(&srv.base, "/v1/entries?limit=3", Some(&format!("Bearer {}", printed[0].0))).0, 401);
    // The lifelong student's token reads their profile: kindergarten to college, imports marked.
    let (status, _, body) = get_as(&srv.base, &lifelong, Some(&format!("Bearer {}", now[3].0)));
    assert_eq!(status, 200, "{body}");
    let profile: Value = serde_json::from_str(&body).unwrap();
    let view = &profile["view"];
    assert_eq!(view["kindergarten"][0]["imported"]["system"], "BARS", "{body}");
    assert!(!view["college"]["groups"].as_array().unwrap().is_empty(), "{body}");
    // The sample learner is real: their stream holds grades of the sample school and class.
    let path = format!("/v1/streams/learner/{}?limit=1000", sample.learner);
    let (status, _, body) = get_as(&srv.base, &path, Some(&format!("Bearer {}", now[0].0)));
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let grades: Vec<&Value> =
        page["entries"].as_array().unwrap().iter().filter(|e| e["event"]["type"] == "journal.grade_recorded").collect();
    assert!(!grades.is_empty(), "{body}");
    for g in grades {
        assert_eq!(g["event"]["data"]["institution"], sample.school.as_str());
        assert_eq!(g["event"]["data"]["class"], sample.class.as_str());
    }
}
