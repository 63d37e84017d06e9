//! The PostgreSQL store with several nodes: ledgers in one process (each with its own store and
//! connections, as separate servers would have) or separate `zachetka` processes, all appending
//! to one database. Sequencing is the database's: no gap, no duplicate, every conflict refused,
//! rule state and heads followed across nodes, nothing acknowledged lost to a SIGKILL or to a
//! database restart. The store contract itself runs in `store_contract`.

use super::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use zachetka::ledger::{Ledger, Limits, OpenOptions, Receipt, StoreClock, CLOCK_SKEW_MAX_SECONDS};
use zachetka::refusal::Code;
use zachetka::store::postgres::{PgStore, MIGRATIONS};
use zachetka::store::{Store, StoreError};

/// A node: a ledger over its own connection to the database, on the test's fixed clock, which
/// is not checked against the database's (the clock tests below check it).
pub(super) fn node(url: &str) -> Ledger {
    node_clocked(url, test_clock(), StoreClock::Ignored)
}

/// A node whose entries get their `recorded_at` from `clock`, checked against the database's or not.
fn node_clocked(url: &str, clock: Arc<dyn zachetka::time::Clock>, store_clock: StoreClock) -> Ledger {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(url).unwrap());
    let options = OpenOptions { limits: Limits::default(), store_clock, ..Default::default() };
    Ledger::open_opts(store, ledger_key(), clock, options).unwrap()
}

/// A fresh bare ledger (no education rules) in its own schema; returns its connection string.
pub(super) fn bare_ledger(url: &str) -> String {
    let url = pg_schema(url);
    let store = PgStore::open(&url).unwrap();
    zachetka::ledger::init_store(&store, ORIGIN, &ledger_key(), &authority().did(), None).unwrap();
    url
}

/// A fresh ledger under the default education rules, with the demo region's authority, in its
/// own schema; returns its connection string.
fn education_ledger(url: &str) -> String {
    use super::rules::{region, DEMO_ORIGIN};
    let url = pg_schema(url);
    let store = PgStore::open(&url).unwrap();
    let rules = Some(zachetka::rules::default_region());
    zachetka::ledger::init_store(&store, DEMO_ORIGIN, &ledger_key(), &region().authority_did(), rules).unwrap();
    url
}

/// Waits (bounded) until `ledger` publishes a head of at least `size`.
pub(super) fn await_size(ledger: &Ledger, size: u64) {
    let mut watch = ledger.watch_tree_size();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), watch.wait_for(|s| *s >= size)).await })
        .unwrap_or_else(|_| panic!("the node did not reach size {size} within 10 s (at {})", ledger.head().0.tree_size))
        .unwrap();
}

/// What one submitter thread saw: receipts and refusals by event, in submission order.
type Outcomes = Vec<(Value, Result<Receipt, zachetka::refusal::Refusal>)>;

/// Runs `nodes` nodes with two submitter threads each. Each thread appends to a stream of its
/// own (expected versions, always accepted), to one stream all share with expected versions
/// (conflicts), to one they share without, and events whose ids every thread uses (idempotency).
fn concurrent_nodes(nodes: usize) {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let ledgers: Vec<Ledger> = (0..nodes).map(|_| node(&url)).collect();
    const ROUNDS: u64 = 40;
    let threads: Vec<_> = (0..nodes * 2)
        .map(|t| {
            let ledger = ledgers[t / 2].clone();
            std::thread::spawn(move || {
                let mut seen: Outcomes = Vec::new();
                let mut own_version = 0;
                let mut shared_guess = 0;
                for round in 0..ROUNDS {
                    let base = (t as u64 + 1) * 1_000_000 + round * 100;
                    let mut batch = Vec::new();
                    for k in 0..5 {
                        batch.push(grade(base + k, &format!("own/{t}"), Some(own_version + k)));
                    }
                    batch.push(grade(base + 10, "shared/ordered", Some(shared_guess)));
                    for k in 0..5 {
                        batch.push(grade(base + 20 + k, "shared/unordered", None));
                    }
                    // The same event (same id, same signature) from every thread.
                    batch.push(grade(round, &format!("dup/{}", round % 3), None));
                    let results = ledger.append_blocking(batch.clone());
                    for (signed, r) in batch.into_iter().zip(results) {
                        let ev = signed["event"].clone();
                        if let Ok(receipt) = &r {
                            if ev["stream"] == format!("own/{t}") {
                                own_version = receipt.stream_version + 1;
                            }
                            if ev["stream"] == "shared/ordered" {
                                shared_guess = receipt.stream_version + 1;
                            }
                        } else if ev["stream"] == "shared/ordered" {
                            shared_guess = ledger.store().stream_head("shared/ordered").unwrap().map_or(0, |h| h.len);
                        }
                        seen.push((ev, r));
                    }
                }
                seen
            })
        })
        .collect();
    let outcomes: Vec<Outcomes> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    // Every accepted event has one position; positions are dense; the same id has one receipt.
    let mut by_id: HashMap<String, Receipt> = HashMap::new();
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    let mut ordered_accepted = 0u64;
    let mut conflicts = 0u64;
    for (ev, r) in outcomes.iter().flatten() {
        let id = ev["id"].as_str().unwrap().to_owned();
        match r {
            Ok(receipt) => {
                if let Some(earlier) = by_id.insert(id.clone(), *receipt) {
                    assert_eq!(earlier, *receipt, "event {id} got two different receipts");
                }
                if let Some(other) = by_seq.insert(receipt.seq, id.clone()) {
                    assert_eq!(other, id, "seq {} was given to two events", receipt.seq);
                }
                if let Some(expected) = ev.get("expected_version") {
                    assert_eq!(receipt.stream_version, expected.as_u64().unwrap(), "{id} landed off its version");
                }
                ordered_accepted += u64::from(ev["stream"] == "shared/ordered");
            }
            Err(refusal) => {
                assert_eq!(ev["stream"], "shared/ordered", "only the contended stream may refuse: {refusal}");
                assert_eq!(refusal.code, Code::StreamVersionConflict, "{refusal}");
                conflicts += 1;
            }
        }
    }
    let threads = (nodes * 2) as u64;
    assert_eq!(by_id.len() as u64, threads * ROUNDS * 11 - conflicts + ROUNDS);
    assert_eq!(by_seq.len(), by_id.len());
    assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (0..by_seq.len() as u64).collect::<Vec<_>>(), "a gap");
    eprintln!("{nodes} nodes: {} entries, {conflicts} version conflicts refused", by_seq.len());

    // A conflict across nodes, deterministically: the second node must see the first's append.
    let size = by_seq.len() as u64;
    let first = ledgers[0].append_blocking(vec![grade(900_000_001, "race/0", Some(0))]);
    let second = ledgers[1].append_blocking(vec![grade(900_000_002, "race/0", Some(0))]);
    assert_eq!(first[0].as_ref().unwrap().seq, size);
    assert_eq!(second[0].as_ref().unwrap_err().code, Code::StreamVersionConflict);

    // Every node follows to the final head; the log audits clean and every proof verifies.
    let store = ledgers[0].store();
    assert_eq!(store.stream_head("shared/ordered").unwrap().map_or(0, |h| h.len), ordered_accepted);
    for ledger in &ledgers {
        await_size(ledger, size + 1);
    }
    check_log(&ledgers[nodes - 1]);
}

#[test]
fn two_nodes_append_concurrently_without_gap_or_duplicate() {
    concurrent_nodes(2);
}

#[test]
fn three_nodes_append_concurrently_without_gap_or_duplicate() {
    concurrent_nodes(3);
}

#[test]
fn an_idle_node_follows_commits_made_by_another() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let (writer, idle) = (node(&url), node(&url));
    let feed = idle.watch_tree_size();
    for r in writer.append_blocking((0..20).map(|n| grade(n, "learner/1", None)).collect()) {
        r.unwrap();
    }
    await_size(&idle, 20);
    assert!(feed.has_changed().unwrap(), "the idle node's feed was not woken");
    assert_eq!(idle.head(), writer.head());
    assert_eq!(idle.entries(0, 100).unwrap().len(), 20);
    idle.prove_inclusion(19, 20).unwrap();
}

#[test]
fn rule_state_follows_commits_made_by_other_nodes() {
    use super::rules::{append_region, grade_event, mutations, teacher_of_school_1};
    let Some(url) = pg_url() else { return };
    let url = education_ledger(&url);
    let (a, b) = (node(&url), node(&url));
    // The authority, institutions and staff keys go in through node A ...
    append_region(&a);
    // ... and node B, which has not appended since it opened, honours them at once.
    let ok = b.append_blocking(vec![grade_event(800_001, &teacher_of_school_1(), "sch-001", "5А", 5)]);
    ok[0].as_ref().unwrap();
    for (event, code) in mutations() {
        let r = b.append_blocking(vec![event]);
        assert_eq!(r[0].as_ref().unwrap_err().code.as_str(), code);
    }
    // A node opened later replays the rules from the database.
    let c = node(&url);
    let r = c.append_blocking(vec![grade_event(800_002, &teacher_of_school_1(), "sch-001", "5А", 4)]);
    r[0].as_ref().unwrap();
    await_size(&a, c.head().0.tree_size);
    check_log(&a);
}

#[test]
fn migrations_apply_once_under_concurrent_starts_and_a_newer_database_is_refused() {
    let Some(url) = pg_url() else { return };
    let url = pg_schema(&url);
    // A database at version 1 (an older build) with a ledger in it ...
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    zachetka::store::postgres::migrate(&mut client, &MIGRATIONS[..1]).unwrap();
    let count =
        |c: &mut postgres::Client| -> i64 { c.query_one("SELECT count(*) FROM zt_schema", &[]).unwrap().get(0) };
    assert_eq!(count(&mut client), 1);
    // ... upgraded by four nodes of this build starting at once: each migration applied once.
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::open(&url).map(|s| s.schema_version().unwrap()))
        })
        .collect();
    for s in starts {
        assert_eq!(s.join().unwrap().unwrap(), MIGRATIONS.last().unwrap().0);
    }
    assert_eq!(count(&mut client), MIGRATIONS.len() as i64);
    // The upgraded schema works: init, append, and the head trigger wakes followers.
    let store = PgStore::open(&url).unwrap();
    zachetka::ledger::init_store(&store, ORIGIN, &ledger_key(), &authority().did(), None).unwrap();
    let a = node(&url);
    a.append_blocking(vec![grade(1, "learner/1", None)])[0].as_ref().unwrap();
    // A database migrated by a newer build is refused, not misread.
    client.execute("INSERT INTO zt_schema (version) VALUES (9999)", &[]).unwrap();
    let err = PgStore::open(&url).err().expect("a newer database must be refused");
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[test]
fn many_concurrent_readers_share_a_bounded_number_of_connections() {
    use zachetka::store::postgres::CONNECTIONS_MAX;
    let Some(url) = pg_url() else { return };
    let name = format!("zt_pool_{}", std::process::id());
    let url = format!("{} application_name={name}", bare_ledger(&url));
    let ledger = node(&url);
    for r in ledger.append_blocking((0..50).map(|n| grade(n, "learner/1", None)).collect()) {
        r.unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let monitor = {
        let (stop, url) = (stop.clone(), url.clone());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url.replace(&name, "zt_pool_monitor"), postgres::NoTls).unwrap();
            let mut most = 0i64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let n: i64 = c
                    .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&name])
                    .unwrap()
                    .get(0);
                most = most.max(n);
            }
            most
        })
    };
    std::thread::scope(|s| {
        for t in 0..4 * CONNECTIONS_MAX as u64 {
            let ledger = &ledger;
            s.spawn(move || {
                for k in 0..20 {
                    let i = (t + k) % 50;
                    assert_eq!(ledger.entries(i, 1).unwrap().len(), 1);
                    ledger.prove_inclusion(i, 50).unwrap();
                }
            });
        }
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let most = monitor.join().unwrap();
    assert!(most as usize <= CONNECTIONS_MAX, "{most} connections open, the bound is {CONNECTIONS_MAX}");
    // The follower's listener and at least one reader: the count sees this node's connections.
    assert!(most >= 2, "the monitor should see this node's connections, saw {most}");
}

/// A private PostgreSQL cluster this test may crash and restart (`scripts/pg-cluster`).
struct Cluster(tempfile::TempDir);

impl Cluster {
    fn start() -> (Self, String) {
        let dir = tempfile::Builder::new().prefix("zachetka-pg-").tempdir().unwrap();
        let url = Self::run(&["start"], dir.path());
        (Self(dir), url)
    }

    /// A streaming replica of `primary`, started.
    fn replica(primary: &Cluster) -> (Self, String) {
        let dir = tempfile::Builder::new().prefix("zachetka-pg-replica-").tempdir().unwrap();
        let url = Self::run(&["replica", dir.path().to_str().unwrap()], primary.0.path());
        (Self(dir), url)
    }

    /// `scripts/pg-cluster CMD [DIR] CLUSTER_DIR` (the replica's directory comes before its primary's).
    fn run(args: &[&str], dir: &std::path::Path) -> String {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
            .args(args)
            .arg(dir)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/pg-cluster {args:?} failed");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
            .arg("stop")
            .arg(self.0.path())
            .output();
    }
}

#[test]
fn a_database_restart_under_load_is_reported_and_recovered_without_operator_action() {
    if pg_url().is_none() {
        return;
    }
    let (cluster, url) = Cluster::start();
    let url = bare_ledger(&url);
    let nodes = [node(&url), node(&url)];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ledger = nodes[t % 2].clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut acked, mut unavailable) = (Vec::new(), 0u64);
                let mut n = (t as u64 + 1) << 40;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let batch: Vec<_> =
                        (0..10).map(|k| grade(n + k, &format!("learner/{}", (n + k) % 7), None)).collect();
                    n += 10;
                    for r in ledger.append_blocking(batch) {
                        match r {
                            Ok(receipt) => acked.push(receipt),
                            Err(refusal) => {
                                assert_eq!(refusal.code, Code::Unavailable, "{refusal}");
                                unavailable += 1;
                            }
                        }
                    }
                }
                (acked, unavailable)
            })
        })
        .collect();
    let size_now = || nodes[0].head().0.tree_size;
    let wait_growth = |from: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while size_now() < from + 200 {
            assert!(std::time::Instant::now() < deadline, "appends did not resume (at {})", size_now());
            await_size(&nodes[0], size_now() + 1);
        }
    };
    wait_growth(0);
    // Crash the database (no shutdown checkpoint) under load, then bring it back.
    Cluster::run(&["crash"], cluster.0.path());
    let down_at = size_now();
    let refused = nodes[0].append_blocking(vec![grade(1, "learner/1", None)]);
    assert_eq!(refused[0].as_ref().unwrap_err().code, Code::Unavailable);
    assert!(nodes[0].is_store_unavailable(), "the node reports the database as unavailable");
    Cluster::run(&["start"], cluster.0.path());
    wait_growth(down_at);
    nodes[0].append_blocking(vec![grade(2, "learner/1", None)])[0].as_ref().unwrap();
    assert!(!nodes[0].is_store_unavailable(), "the node recovered by itself");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut acked, mut unavailable) = (Vec::new(), 0);
    for t in threads {
        let (a, u) = t.join().unwrap();
        acked.extend(a);
        unavailable += u;
    }
    eprintln!("{} acknowledged, {unavailable} refused as unavailable", acked.len());
    assert!(unavailable > 0, "appends during the outage must be refused as unavailable");
    assert!(!nodes[0].is_failed() && !nodes[1].is_failed(), "a node stopped writing for good");
    // Nothing acknowledged was lost; the log audits clean.
    let store = PgStore::open(&url).unwrap();
    for r in &acked {
        let entry = &store.entries(r.seq, 1).unwrap()[0];
        assert_eq!(zachetka::merkle::leaf_hash(entry), r.leaf_hash, "entry {} changed", r.seq);
    }
    let report = zachetka::audit::audit(&store, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
}

#[test]
fn sigkill_of_a_node_mid_batch_loses_nothing_acknowledged() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    let (seed, mut rng) = seeded("pg sigkill");
    let env = [("ZACHETKA_DATABASE_URL", url.as_str())];
    let mut acked = Vec::new();
    // One node runs throughout; another is killed and a new one started each round.
    let mut steady = AppendNode::spawn(dir.path(), &env, 1 << 40);
    for round in 0..4u64 {
        let mut victim = AppendNode::spawn(dir.path(), &env, (round + 2) << 40);
        victim.read_receipts(10 + rng(200) as usize, &mut acked);
        steady.read_receipts(5, &mut acked);
        victim.kill();
    }
    steady.read_receipts(20, &mut acked);
    steady.kill();
    check_acknowledged(&PgStore::open(&url).unwrap(), &acked, &format!("seed {seed}"));
}

#[test]
fn a_node_over_a_read_replica_follows_serves_reads_and_refuses_appends() {
    if pg_url().is_none() {
        return;
    }
    let (primary, url) = Cluster::start();
    let schema_url = bare_ledger(&url);
    let (replica, replica_url) = Cluster::replica(&primary);
    let replica_url = schema_url.replace(&url, &replica_url);
    let writer = node(&schema_url);
    let reader = node(&replica_url);
    assert!(reader.store().is_read_only() && !writer.store().is_read_only());
    for r in writer.append_blocking((0..30).map(|n| grade(n, "learner/1", None)).collect()) {
        r.unwrap();
    }
    // The replica node follows the primary's commits, and serves entries and proofs.
    await_size(&reader, 30);
    assert_eq!(reader.head(), writer.head());
    assert_eq!(reader.entries(0, 100).unwrap(), writer.entries(0, 100).unwrap());
    assert_eq!(reader.prove_inclusion(7, 30).unwrap(), writer.prove_inclusion(7, 30).unwrap());
    // Appends are refused whole, with a code that says where to go.
    let refused = reader.append_blocking(vec![grade(99, "learner/1", None)]);
    assert_eq!(refused[0].as_ref().unwrap_err().code, Code::ReadOnly);
    assert!(!reader.is_failed());
    // Its status tells a load balancer not to send it appends.
    let srv = super::http::serve(reader.clone());
    let (_, status) = super::http::get_json(&srv.base, "/v1/status");
    assert_eq!((status["accepting_appends"].as_bool(), status["read_only"].as_bool()), (Some(false), Some(true)));
    let report = zachetka::audit::audit(&**reader.store(), &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    drop((reader, replica));
}

#[test]
fn the_audit_names_rows_altered_or_removed_in_the_database() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let ledger = node(&url);
    for r in ledger.append_blocking((0..40).map(|n| grade(n, &format!("learner/{}", n % 4), None)).collect()) {
        r.unwrap();
    }
    drop(ledger);
    let audit = || {
        let report = zachetka::audit::audit(&PgStore::open_read_only(&url).unwrap(), &|_, _| {}).unwrap();
        report.violations.iter().map(|v| (v.position.to_string(), v.code)).collect::<Vec<_>>()
    };
    assert!(audit().is_empty());
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // An operator changes a mark in place: the entry's bytes no longer hash to its leaf.
    let changed = db
        .execute(
            "UPDATE zt_entries SET bytes = convert_to(replace(convert_from(bytes, 'UTF8'), '\"mark\":5', '\"mark\":2'), 'UTF8')
             WHERE seq = 17",
            &[],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let found = audit();
    assert!(!found.is_empty(), "an altered entry must be reported");
    assert!(found.contains(&("entry 17".to_owned(), "leaf_hash_mismatch")), "{found:?}");
    // Nothing before it is blamed: no other entry, no checkpoint that does not cover it.
    for (pos, _) in &found {
        let blamed_entry = pos.starts_with("entry ") && pos != "entry 17";
        let early_checkpoint =
            pos.strip_prefix("checkpoint at tree size ").is_some_and(|n| n.parse::<u64>().unwrap() <= 17);
        assert!(!blamed_entry && !early_checkpoint, "blamed elsewhere: {found:?}");
    }
    // An operator deletes an entry: the gap is named.
    db.execute("DELETE FROM zt_entries WHERE seq = 30", &[]).unwrap();
    let found = audit();
    assert!(found.iter().any(|(pos, code)| pos.contains("30") && *code == "entry_missing"), "{found:?}");
}

#[test]
fn a_revocation_through_one_node_binds_every_node_from_its_position_on() {
    use super::rules::{append_region, grade_event, region, teacher_of_school_1, DEMO_ORIGIN};
    let Some(url) = pg_url() else { return };
    let url = education_ledger(&url);
    let (a, b) = (node(&url), node(&url));
    append_region(&a);
    let teacher = teacher_of_school_1();
    let authority = zachetka::demo::demo_key(DEMO_ORIGIN, "authority");
    assert_eq!(authority.did(), region().authority_did());
    // A teacher grades through node A, one event per batch, while the authority revokes the
    // teacher's key through node B (effective before the grades' time).
    let (started, grading) = std::sync::mpsc::channel();
    let grader = {
        let (a, teacher) = (a.clone(), teacher.clone());
        std::thread::spawn(move || {
            (0..150u64)
                .map(|n| {
                    let r = a.append_blocking(vec![grade_event(700_000 + n, &teacher, "sch-001", "5А", 4)]).remove(0);
                    if n == 30 {
                        started.send(()).unwrap();
                    }
                    r
                })
                .collect::<Vec<_>>()
        })
    };
    grading.recv().unwrap();
    let revocation = zachetka::event::sign_event(
        &serde_json::json!({"ledger": DEMO_ORIGIN, "stream": "registry", "type": "keys.revoked", "id": id(990_001),
            "occurred_at": "2027-05-20T08:00:00Z", "author": authority.did(),
            "data": {"v": 1, "key": teacher.did(), "reason": "left the school"}}),
        &authority,
    )
    .unwrap();
    let revoked_at = b.append_blocking(vec![revocation]).remove(0).unwrap().seq;
    // Every grade before the revocation's position was accepted, every one after refused.
    let results = grader.join().unwrap();
    for r in &results {
        match r {
            Ok(receipt) => assert!(receipt.seq < revoked_at, "a grade accepted after the revocation"),
            Err(refusal) => assert_eq!(refusal.code.as_str(), "key_revoked", "{refusal}"),
        }
    }
    let refused = results.iter().filter(|r| r.is_err()).count();
    eprintln!("revocation at {revoked_at}: {} grades accepted before it, {refused} refused after", 150 - refused);
    let after = a.append_blocking(vec![grade_event(799_999, &teacher, "sch-001", "5А", 4)]).remove(0);
    assert_eq!(after.unwrap_err().code.as_str(), "key_revoked", "node A must know node B's revocation");
    await_size(&a, revoked_at + 1);
    check_log(&a);
}

/// `init --database-url` into a fresh directory when the database already holds a ledger is
/// refused and leaves that directory without key files (it wrote fresh ones before).
#[test]
fn a_refused_init_over_an_initialized_database_writes_no_key_files() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["init", "--origin", ORIGIN, "--database-url", &url, "--dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already holds ledger"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a refused init left {left:?}");
}

/// The audit over PostgreSQL writes nothing, as over sled: its sessions are read-only, it runs
/// no migration (a database without this build's schema is refused, and no table appears), and
/// the store it opens refuses appends.
#[test]
fn an_audit_over_postgres_writes_nothing() {
    let Some(url) = pg_url() else { return };
    let fresh = pg_schema(&url);
    assert!(matches!(PgStore::open_read_only(&fresh).err(), Some(StoreError::Incompatible(_))));
    let mut db = postgres::Client::connect(&fresh, postgres::NoTls).unwrap();
    let created: bool = db.query_one("SELECT to_regclass('zt_schema') IS NOT NULL", &[]).unwrap().get(0);
    assert!(!created, "a read-only open migrated the database");
    let url = bare_ledger(&url);
    let ledger = node(&url);
    for r in ledger.append_blocking((0..5).map(|n| grade(n, "learner/0", None)).collect()) {
        r.unwrap();
    }
    drop(ledger);
    let store = PgStore::open_read_only(&url).unwrap();
    assert!(store.is_read_only());
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let before: i64 = db.query_one("SELECT count(*) FROM zt_entries", &[]).unwrap().get(0);
    let report = zachetka::audit::audit(&store, &|_, _| {}).unwrap();
    assert!(report.is_clean() && report.tree_size == 5, "{report:?}");
    let after: i64 = db.query_one("SELECT count(*) FROM zt_entries", &[]).unwrap().get(0);
    assert_eq!((before, after), (5, 5));
}

/// Review s12 (PostgreSQL L3): a command pointed at a schema with no ledger (a typo in the
/// connection string's search_path) created the tables there before saying there was no
/// ledger. Every command but `init` now refuses such a schema before creating anything.
#[test]
fn a_command_pointed_at_a_schema_with_no_ledger_creates_nothing_there() {
    let Some(url) = pg_url() else { return };
    let fresh = pg_schema(&url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
        .args(["export", "--learner", "47-000001", "--dir"])
        .arg(dir.path())
        .args(["--database-url", &fresh])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("holds no zachetka ledger"), "{stderr}");
    let mut db = postgres::Client::connect(&fresh, postgres::NoTls).unwrap();
    let created: bool = db.query_one("SELECT to_regclass('zt_schema') IS NOT NULL", &[]).unwrap().get(0);
    assert!(!created, "the refused command created the schema's tables");
    // A ledger made there by init opens as before.
    zachetka::ledger::init_store(&PgStore::open(&fresh).unwrap(), ORIGIN, &ledger_key(), &authority().did(), None)
        .unwrap();
    assert!(PgStore::open_existing(&fresh).is_ok());
}

/// Review s12 (PostgreSQL H3): an audit over the database while nodes append read every entry
/// committed after the head it started from, and reported each as `entry_beyond_head`, plus
/// `head_size_mismatch` (21k to 36k violations, exit 1). It now checks the log up to the head it
/// read first, and says how far the log grew meanwhile.
#[test]
fn an_audit_while_a_node_appends_checks_up_to_its_head_and_says_the_log_grew() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let ledger = node(&url);
    for r in ledger.append_blocking((0..20).map(|n| grade(n, &format!("learner/{}", n % 3), None)).collect()) {
        r.unwrap();
    }
    // The node appends once the audit has read its head and its first entries (the progress
    // callback runs after each page).
    let appended = std::sync::atomic::AtomicBool::new(false);
    let append_meanwhile = |_: u64, _: u64| {
        if !appended.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let more = (100..130).map(|n| grade(n, &format!("learner/{}", n % 3), None)).collect();
            assert!(ledger.append_blocking(more).iter().all(Result::is_ok));
        }
    };
    let report = zachetka::audit::audit(&PgStore::open_read_only(&url).unwrap(), &append_meanwhile).unwrap();
    assert!(appended.load(std::sync::atomic::Ordering::SeqCst));
    assert!(report.is_clean(), "{:#?}", report.violations);
    assert_eq!((report.tree_size, report.entries_checked, report.log_grew_to), (20, 20, Some(50)));
    // The next audit takes it all.
    let report = zachetka::audit::audit(&PgStore::open_read_only(&url).unwrap(), &|_, _| {}).unwrap();
    assert!(report.is_clean() && report.tree_size == 50 && report.log_grew_to.is_none(), "{report:#?}");
}

/// Review s11 (ops finding 14): each node over one database reads its own `<dir>/tokens.json`
/// unless `--tokens` names a shared file, so a revocation on one node left the token live on the
/// others, silently. `serve --database-url` without `--tokens` now warns at start; with
/// `--tokens` it does not.
#[test]
fn serve_over_postgres_warns_that_a_per_directory_token_file_is_per_node() {
    use std::io::BufRead;
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    let shared = dir.path().join("shared-tokens.json");
    let start = |extra: &[&std::ffi::OsStr]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url, "--dir"])
            .arg(dir.path())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Everything the node says up to its "serving" line (it warns before it listens).
        let mut said = Vec::new();
        for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            let serving = line.contains("serving");
            said.push(line);
            if serving {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        said.join("\n")
    };
    let said = start(&[]);
    assert!(said.contains("serving"), "{said}");
    assert!(said.contains("WARN") && said.contains("not on the other nodes") && said.contains("--tokens"), "{said}");
    let said = start(&["--tokens".as_ref(), shared.as_os_str()]);
    assert!(said.contains("serving"), "{said}");
    assert!(!said.contains("not on the other nodes"), "{said}");
}

/// Polls `/v1/status` until `want` holds, at most `secs` seconds (a failure guard): what a load
/// balancer does.
fn await_status(base: &str, what: &str, secs: u64, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, status) = super::http::get_json(base, "/v1/status");
        if want(&status) {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "{what} within {secs} s: {status}");
        // The interval between a balancer's checks, not a synchronization: the loop waits on the
        // condition.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Review s12 H1 and L2: a node's status follows the database whatever the traffic. A node no
/// append reaches says "not accepting" while the database is down and "accepting" again once it
/// is back, by itself (a balancer that took it out puts it back); meanwhile an array of appends
/// is refused whole, 503 with Retry-After, before its signatures are verified.
#[test]
fn an_idle_nodes_status_follows_the_database_down_and_back_and_appends_are_refused_up_front() {
    if pg_url().is_none() {
        return;
    }
    let (cluster, url) = Cluster::start();
    let url = bare_ledger(&url);
    let idle = node(&url);
    let srv = super::http::serve(idle.clone());
    let accepting = |s: &Value| s["accepting_appends"] == true && s["store_unavailable"] == false;
    await_status(&srv.base, "an accepting status", 30, accepting);
    Cluster::run(&["stop"], cluster.0.path());
    await_status(&srv.base, "the idle node reporting the database down", 30, |s| {
        s["accepting_appends"] == false && s["store_unavailable"] == true
    });
    let (_, metrics) = super::http::get_text(&srv.base, "/metrics");
    assert!(metrics.contains("zachetka_store_unavailable 1"), "{metrics}");
    // An array is one refusal, with when to retry; a bad signature in it is not even looked at.
    let mut bad = grade(3, "learner/1", None);
    bad["event"]["data"]["mark"] = serde_json::json!(3);
    let array = Value::Array(vec![grade(1, "learner/1", None), grade(2, "learner/2", None), bad]);
    let (code, body, retry) = super::http::post(&srv.base, &array.to_string());
    assert_eq!((code, body["code"].as_str()), (503, Some("unavailable")), "{body}");
    assert_eq!(retry.as_deref(), Some("1"), "a 503 says when to retry");
    let (code, body, retry) = super::http::post(&srv.base, &grade(1, "learner/1", None).to_string());
    assert_eq!((code, body["code"].as_str(), retry.is_some()), (503, Some("unavailable"), true), "{body}");
    // Back: accepting again with no append through the node, then appends land.
    Cluster::run(&["start"], cluster.0.path());
    await_status(&srv.base, "the idle node accepting again by itself", 30, accepting);
    let (code, body, _) = super::http::post(&srv.base, &array.to_string());
    assert_eq!(code, 200, "{body}");
    assert_eq!(body[0]["seq"].as_u64(), Some(0), "{body}");
    assert_eq!(body[2]["code"].as_str(), Some("signature_invalid"), "{body}");
}

/// Review s12 M1: a writer waiting for the head row lock that another session holds (a frozen
/// node mid-batch) gives up after the lock timeout and answers `unavailable`, instead of holding
/// its clients for as long as the lock is held; the store is reachable, so the node does not
/// report it unavailable, and appends land once the lock is free.
#[test]
fn an_append_behind_a_held_head_lock_answers_unavailable_instead_of_waiting() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let n = node(&url);
    n.append_blocking(vec![grade(1, "learner/1", None)])[0].as_ref().unwrap();
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    holder.batch_execute("BEGIN; SELECT tree_size FROM zt_head WHERE id = 1 FOR UPDATE").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let appender = n.clone();
    let started = std::time::Instant::now();
    std::thread::spawn(move || tx.send(appender.append_blocking(vec![grade(2, "learner/1", None)])));
    // A failure guard: without a lock timeout the append waits as long as the lock is held.
    let answered = rx.recv_timeout(Duration::from_secs(30));
    let waited = started.elapsed();
    drop(holder); // releases the lock whatever happened, so a failing run ends
    let refusal = answered.expect("the append waited on the held lock").remove(0).unwrap_err();
    assert_eq!(refusal.code, Code::Unavailable, "{refusal}");
    assert!(refusal.message.contains("append lock"), "{refusal}");
    assert!(waited >= zachetka::store::postgres::APPEND_LOCK_WAIT, "refused after {waited:?}, before the lock wait");
    assert!(!n.is_store_unavailable(), "a taken lock is not an unreachable store");
    n.append_blocking(vec![grade(2, "learner/1", None)])[0].as_ref().unwrap();
}

/// Review s12 M1: a node that took the head lock and froze (it never commits nor rolls back)
/// holds every other node's appends for at most the writer's idle bound: the server then ends
/// its session and the others append again.
#[test]
fn a_writer_frozen_with_the_head_lock_stalls_other_nodes_only_for_the_idle_bound() {
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let frozen = PgStore::open(&url).unwrap();
    frozen.begin_append().unwrap(); // holds the lock and goes quiet, as a SIGSTOPped node would
    let other = node(&url);
    let started = std::time::Instant::now();
    // A failure guard, not a measurement: with the old 60 s bound no append lands before it.
    let deadline = started + Duration::from_secs(40);
    let mut refusals = 0;
    loop {
        match other.append_blocking(vec![grade(1, "learner/1", None)]).remove(0) {
            Ok(_) => break,
            Err(r) => {
                assert_eq!(r.code, Code::Unavailable, "{r}");
                refusals += 1;
                assert!(std::time::Instant::now() < deadline, "still refused after {:?}: {r}", started.elapsed());
            }
        }
    }
    assert!(refusals >= 1, "the first append came while the lock was held, so it was refused");
    drop(frozen);
}

/// Review s12 M2: connections get TCP keepalives and a TCP user timeout by default, so a peer
/// gone silent (a partition) fails the connection within ~30 s instead of the kernel's 2 h;
/// a connection string that sets its own keeps them. (A unit test of the configuration: a
/// silent TCP peer needs a network this test cannot cut.)
#[test]
fn connections_get_keepalives_and_a_tcp_user_timeout_unless_the_string_sets_them() {
    use zachetka::store::postgres::*;
    let c = connection_config("host=db.example user=zachetka dbname=r47").unwrap();
    assert!(c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), KEEPALIVES_IDLE);
    assert_eq!(c.get_keepalives_interval(), Some(KEEPALIVES_INTERVAL));
    assert_eq!(c.get_keepalives_retries(), Some(KEEPALIVES_RETRIES));
    assert_eq!(c.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
    let detect = KEEPALIVES_IDLE + KEEPALIVES_INTERVAL * KEEPALIVES_RETRIES;
    assert!(detect <= Duration::from_secs(30) && TCP_USER_TIMEOUT <= Duration::from_secs(30), "{detect:?}");
    let c = connection_config(
        "postgres://zachetka@db.example/r47?keepalives_idle=60&keepalives_interval=7&keepalives_retries=2&tcp_user_timeout=90",
    )
    .unwrap();
    assert_eq!(c.get_keepalives_idle(), Duration::from_secs(60));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(7)));
    assert_eq!(c.get_keepalives_retries(), Some(2));
    assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(90)));
    assert!(!connection_config("host=db.example keepalives=0").unwrap().get_keepalives());
}

/// Review s12 M2: a follower stuck in a read of the shared store (a connection gone silent
/// behind a stuck proxy: no error, no answer, so keepalives see a live peer) makes the node
/// report the store unavailable and refuse appends up front instead of a green status; once
/// the read returns, the node accepts again by itself. (A fault-injecting store: no PostgreSQL.)
#[test]
fn a_follower_stuck_on_a_silent_connection_reports_the_store_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultStore::new(Arc::new(zachetka::store::sled::SledStore::open(dir.path()).unwrap())));
    store.shared.store(true, std::sync::atomic::Ordering::SeqCst);
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key(), &authority().did(), None).unwrap();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    *store.entered.lock().unwrap() = Some(entered_tx);
    *store.release.lock().unwrap() = Some(release_rx);
    store.set(Fault::SilentFollow);
    let ledger = open_ledger(store.clone(), Limits::default());
    entered.recv_timeout(Duration::from_secs(30)).expect("the follower waits for commits");
    await_store_unavailable(&ledger, true, 60);
    let refused = ledger.append_blocking(vec![grade(1, "learner/1", None)]).remove(0).unwrap_err();
    assert_eq!(refused.code, Code::Unavailable, "{refused}");
    store.set(Fault::None);
    release.send(()).unwrap();
    await_store_unavailable(&ledger, false, 30);
    ledger.append_blocking(vec![grade(1, "learner/1", None)])[0].as_ref().unwrap();
}

/// The sequencer checks the node's clock against the store's again before it stamps a batch,
/// not only when a request is admitted: a clock that steps ahead between the two (here while
/// the sequencer is held in the batch before) stamps nothing, and the batch is refused
/// `unavailable` naming the skew. (A fault-injecting store with a clock: no PostgreSQL.)
#[test]
fn a_clock_that_steps_ahead_after_admission_is_refused_by_the_sequencer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, entered, release) = blocking_store(dir.path());
    store.shared.store(true, std::sync::atomic::Ordering::SeqCst);
    let now = zachetka::time::Clock::now_unix(&*test_clock());
    *store.clock_ms.lock().unwrap() = Some(now * 1000);
    let ledger = open_ledger(store.clone(), Limits::default());
    assert!(ledger.clock_skew().is_some_and(|s| s.abs() <= CLOCK_SKEW_MAX_SECONDS));
    // The first batch passes both checks and holds the sequencer while it admits.
    let first = ledger.submit(vec![grade(1, "learner/1", None)]).unwrap();
    entered.recv_timeout(Duration::from_secs(30)).expect("the sequencer admits the first batch");
    // The second is admitted while the clock still agrees (the request's own check passes).
    let second = ledger.submit(vec![grade(2, "learner/2", None)]).expect("admitted while the clock agrees");
    pin_clock(now + 60);
    release.send(()).unwrap();
    first.wait_blocking()[0].as_ref().expect("the first batch was checked before the step");
    let refused = second.wait_blocking().remove(0).expect_err("the sequencer's own check refuses");
    assert_eq!(refused.code, Code::Unavailable, "{refused}");
    assert!(refused.message.contains("ahead of the database's clock"), "{refused}");
    assert_eq!(ledger.clock_skew_refusals(), 1);
    assert_eq!(ledger.head().0.tree_size, 1, "nothing of the refused batch was stamped");
}

/// The database's clock now, in unix seconds.
fn database_now(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one("SELECT extract(epoch FROM clock_timestamp())::bigint", &[]).unwrap().get(0)
}

/// Every entry's `recorded_at`, in log order.
fn recorded_ats(ledger: &Ledger) -> Vec<i64> {
    let size = ledger.head().0.tree_size;
    let entries = ledger.entries(0, size).unwrap();
    entries.iter().map(|b| zachetka::event::parse_entry(b).unwrap().meta.recorded_at_unix).collect()
}

/// Review s12 H2: a node whose clock ran a day ahead stamped its entries a day in the future, then
/// every node stamped that time (ledger time never runs backwards), so events signed at the real
/// time were refused as backdated everywhere, and the faulty node showed no skew and no warning.
/// Now a node more than `CLOCK_SKEW_MAX_SECONDS` off the database's clock takes no appends
/// (`unavailable`, with why), says so in status and metrics from its start, and takes appends
/// again once its clock is corrected; no entry goes through it stamped beyond the database's time.
/// A log whose latest time is already in the future (written by a node without the check) keeps
/// ledger time monotonic, and the healthy node says so in its warnings.
#[test]
fn a_node_whose_clock_runs_ahead_of_the_database_takes_no_appends_and_cannot_move_ledger_time() {
    use zachetka::time::{Clock, FixedClock, SystemClock};
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let day = 86_400;
    let system = || SystemClock.now_unix();
    let ahead = FixedClock::at(system() + day);
    let healthy = node_clocked(&url, Arc::new(SystemClock), StoreClock::Checked);
    let faulty = node_clocked(&url, Arc::new(ahead.clone()), StoreClock::Checked);
    let bound = CLOCK_SKEW_MAX_SECONDS;

    // The faulty node says so from its start, before any append.
    let skew = faulty.clock_skew().expect("a node over PostgreSQL knows its skew");
    assert!((day - bound..=day + bound).contains(&skew), "{skew}");
    assert!(faulty.is_clock_skewed());
    let warnings = faulty.clock_warnings();
    assert!(
        warnings.iter().any(|w| w.starts_with("clock_skew:") && w.contains("ahead of the database's clock")),
        "{warnings:?}"
    );
    let srv = super::http::serve(faulty.clone());
    let (_, status) = super::http::get_json(&srv.base, "/v1/status");
    assert_eq!(
        (&status["accepting_appends"], &status["clock_skewed"]),
        (&Value::Bool(false), &Value::Bool(true)),
        "{status}"
    );
    assert!(status["warnings"].to_string().contains("clock_skew:"), "{status}");

    // It refuses appends, retryably, naming the skew.
    let got = faulty.append_blocking(vec![grade(0, "learner/a", None), grade(1, "learner/b", None)]);
    for r in &got {
        let refusal = r.as_ref().expect_err("a node a day ahead takes no appends");
        assert_eq!(refusal.code, Code::Unavailable, "{refusal:?}");
        assert!(
            refusal.message.contains("ahead of the database's clock") && refusal.message.contains("NTP"),
            "{refusal:?}"
        );
    }
    assert!(faulty.clock_skew_refusals() >= 1);
    let (_, metrics) = super::http::get_text(&srv.base, "/metrics");
    assert!(metrics.contains("zachetka_clock_skewed 1\n"), "{metrics}");
    let gauge =
        metrics.lines().find_map(|l| l.strip_prefix("zachetka_clock_skew_seconds ")).map(|v| v.parse::<i64>().unwrap());
    assert!(gauge.is_some_and(|g| (day - bound..=day + bound).contains(&g)), "{metrics}");

    // The healthy node appends, stamped at the database's time, and warns of nothing.
    assert!(healthy.clock_skew().is_some_and(|s| s.abs() <= bound), "{:?}", healthy.clock_skew());
    healthy.append_blocking(vec![grade(2, "learner/c", None)])[0].as_ref().unwrap();
    assert_eq!(healthy.clock_warnings(), Vec::<String>::new());

    // NTP steps the faulty node's clock back: it takes appends again at once.
    ahead.set(system());
    assert!(!faulty.is_clock_skewed());
    faulty.append_blocking(vec![grade(3, "learner/d", None)])[0].as_ref().unwrap();
    let (_, status) = super::http::get_json(&srv.base, "/v1/status");
    assert_eq!(
        (&status["accepting_appends"], &status["warnings"]),
        (&Value::Bool(true), &serde_json::json!([])),
        "{status}"
    );

    // Nothing went into the log beyond the database's time (and the bound).
    await_size(&healthy, 2);
    let now = database_now(&url);
    let times = recorded_ats(&healthy);
    assert_eq!(times.len(), 2);
    assert!(times.iter().all(|&t| t <= now + bound), "recorded_at {times:?}, the database's time {now}");

    // A node without the check (a build before it) writes an entry a day ahead: every node
    // then stamps that time (it never runs backwards), and says so loudly.
    let unchecked = node_clocked(&url, Arc::new(FixedClock::at(system() + day)), StoreClock::Ignored);
    unchecked.append_blocking(vec![grade(4, "learner/e", None)])[0].as_ref().unwrap();
    healthy.append_blocking(vec![grade(5, "learner/f", None)])[0].as_ref().unwrap();
    let times = recorded_ats(&healthy);
    assert_eq!(times[3], times[2], "ledger time stays monotonic: {times:?}");
    let warnings = healthy.clock_warnings();
    assert!(warnings.iter().any(|w| w.starts_with("ledger_time_ahead:")), "{warnings:?}");
}

/// Review s12 L1: over PostgreSQL the store has no lock, so a second `serve` and a `rebuild` on a
/// running node's directory were not refused and raced the first on `snapshots/`. Every writing
/// command takes `<dir>/LOCK`, whatever the store; the audit takes none.
#[test]
fn a_second_writer_on_a_node_directory_over_postgres_is_refused() {
    use std::io::BufRead;
    let Some(url) = pg_url() else { return };
    let url = bare_ledger(&url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    let tokens = dir.path().join("tokens.json");
    let zachetka = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_zachetka"));
        c.args(args).args(["--database-url", &url, "--dir"]).arg(dir.path()).env("RUST_LOG", "info");
        c.stdin(std::process::Stdio::null());
        c
    };
    let tokens = tokens.to_str().unwrap();
    /// The first server, killed however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut first = Running(
        zachetka(&["serve", "--listen", "127.0.0.1:0", "--tokens", tokens])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Up to its "serving" line (it holds the lock from before it opens the ledger); the rest of
    // what it says is drained, so it never writes to a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = first.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    while !said.last().is_some_and(|l: &String| l.contains("serving")) {
        // A failure guard, not synchronization.
        let line = rx.recv_timeout(Duration::from_secs(60));
        said.push(line.unwrap_or_else(|_| panic!("the first server did not start: {said:?}")));
    }
    let refused = |out: std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("is open in another process") && stderr.contains("LOCK"), "{stderr}");
    };
    // A second server: refused, or (the bug) serving, which the test ends rather than waits for.
    let mut second = Running(
        zachetka(&["serve", "--listen", "127.0.0.1:0", "--tokens", tokens])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut said = String::new();
    for line in std::io::BufReader::new(second.0.stderr.take().unwrap()).lines().map_while(Result::ok) {
        assert!(!line.contains("serving"), "a second server started on the directory: {said}{line}");
        said.push_str(&line);
        said.push('\n');
    }
    assert!(!second.0.wait().unwrap().success(), "{said}");
    assert!(said.contains("is open in another process") && said.contains("LOCK"), "{said}");
    refused(zachetka(&["rebuild"]).output().unwrap());
    let snaps = std::fs::read_dir(dir.path().join("snapshots")).into_iter().flatten().count();
    assert_eq!(snaps, 0, "a refused rebuild wrote no snapshot");
    // The audit changes nothing and takes no lock.
    let audit = zachetka(&["audit"]).output().unwrap();
    assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stderr));
    drop(first);
    // Once the server is gone, a rebuild runs.
    let rebuild = zachetka(&["rebuild"]).output().unwrap();
    assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
}
