//! Shared fixtures: a ledger in a temporary directory with fixed keys and a fixed clock,
//! signed-event builders, and a store wrapper that injects faults.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use zachetka::checkpoint::TreeHead;
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits};
use zachetka::merkle::Hash;
use zachetka::store::sled::SledStore;
use zachetka::store::{CommitBatch, IdRecord, LedgerConfig, RawEntry, Store, StoreError, StoreStats, StreamHead};
use zachetka::time::FixedClock;

pub const ORIGIN: &str = "ru-47.edu.example";

pub fn ledger_key() -> KeyPair {
    KeyPair::from_seed(&[0x11; 32])
}

pub fn teacher() -> KeyPair {
    KeyPair::from_seed(&[0x22; 32])
}

pub fn authority() -> KeyPair {
    KeyPair::from_seed(&[0x33; 32])
}

/// A deterministic event id from a number.
/// The auditor token of the test servers (`http::serve`): a fixed secret, so that the request
/// helpers can send it (`Authorization: <auditor_bearer()>`) wherever they read.
pub fn auditor_secret() -> zachetka::access::TokenSecret {
    zachetka::access::TokenSecret::from_bytes([0xa5; 32])
}

pub fn auditor_bearer() -> String {
    format!("Bearer {}", auditor_secret().expose())
}

pub fn id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A signed grade event for `stream`.
pub fn grade(n: u64, stream: &str, expected_version: Option<u64>) -> Value {
    grade_by(&teacher(), n, stream, expected_version, 5)
}

pub fn grade_by(key: &KeyPair, n: u64, stream: &str, expected_version: Option<u64>, mark: i64) -> Value {
    let mut ev = json!({
        "ledger": ORIGIN, "stream": stream, "type": "journal.grade_recorded", "id": id(n),
        "occurred_at": "2026-11-23T08:00:00Z", "author": key.did(),
        "data": {"subject": "Математика", "mark": mark, "weight": 3}
    });
    if let Some(v) = expected_version {
        ev["expected_version"] = json!(v);
    }
    zachetka::event::sign_event(&ev, key).unwrap()
}

/// Creates an initialized sled store in `dir`.
pub fn new_store(dir: &std::path::Path) -> Arc<SledStore> {
    let store = Arc::new(SledStore::open(dir).unwrap());
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key(), &authority().did(), None).unwrap();
    store
}

thread_local! {
    /// This test's ledger clock: every ledger a test opens through `test_clock` shares it (each
    /// test runs on its own thread), so a test moves the ledgers' time as its history needs.
    static TEST_CLOCK: FixedClock = FixedClock::at(1_795_000_000);
}

/// A clock for a ledger of this test (the test's shared clock, see `pin_clock`).
pub fn test_clock() -> Arc<FixedClock> {
    Arc::new(TEST_CLOCK.with(FixedClock::clone))
}

/// Sets this test's ledger clock to unix time `at`.
pub fn pin_clock(at: i64) {
    TEST_CLOCK.with(|c| c.set(at));
}

/// Sets this test's ledger clock to an RFC 3339 time.
pub fn pin_clock_at(at: &str) {
    pin_clock(zachetka::time::parse_rfc3339(at).expect("an rfc 3339 time"));
}

/// Appends a batch of the demo region recorded as a ledger living through the demo's year would
/// (`DemoRegion::recorded_at_of`); every event must be accepted.
pub fn append_demo_batch(ledger: &Ledger, batch: Vec<Value>) {
    if let Some(at) = zachetka::demo::DemoRegion::recorded_at_of(&batch) {
        pin_clock(at);
    }
    for r in ledger.append_blocking(batch) {
        r.unwrap();
    }
}

/// Appends the rest of `region`, `batch_len` events a batch, each as `append_demo_batch` does.
pub fn append_rest_of(ledger: &Ledger, region: &mut zachetka::demo::DemoRegion, batch_len: usize) {
    loop {
        let batch = region.next_batch(batch_len);
        if batch.is_empty() {
            break;
        }
        append_demo_batch(ledger, batch);
    }
}

pub fn open_ledger(store: Arc<dyn Store>, limits: Limits) -> Ledger {
    Ledger::open(store, ledger_key(), test_clock(), limits).unwrap()
}

/// A fresh ledger in a temporary directory (kept alive by the returned guard).
pub fn temp_ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let ledger = open_ledger(store, Limits::default());
    (dir, ledger)
}

/// What a [`FaultStore`] does on its next commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Refuse before writing anything.
    FailBeforeWrite,
    /// Write the batch durably, then report failure.
    FailAfterWrite,
    /// Write the batch durably, then answer `unavailable` as a shared store whose connection
    /// dropped before the commit's answer: the outcome is unknown to the writer.
    UnavailableAfterWrite,
    /// Block the sequencer's first store read (an id lookup while admitting) until released:
    /// it then holds one submission and pulls no other, so the queue fills deterministically.
    BlockAdmit,
    /// Answer every entry read `unavailable` (commits still succeed): a store lost under readers.
    FailReads,
    /// Refuse, before writing anything, a batch holding a completeness commitment (others commit).
    FailCommitments,
    /// Hang the follower's wait for commits until released, with no error and no answer: a
    /// shared store's connection gone silent (commits still succeed).
    SilentFollow,
}

/// A store that delegates to sled and injects faults into `commit`.
pub struct FaultStore {
    pub inner: Arc<SledStore>,
    pub fault: Mutex<Fault>,
    pub commits: AtomicUsize,
    /// Signals that a commit entered the block; the test sends on `release` to let it go.
    pub entered: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    pub release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Ids whose `id_record` fails as an unavailable database would (`StoreError::Unavailable`).
    pub unavailable_ids: Mutex<Vec<String>>,
    /// Whether the store claims to be shared (as PostgreSQL is), so transient errors resync.
    pub shared: std::sync::atomic::AtomicBool,
    /// The store's own clock (unix milliseconds), as a database's: what a node's clock is
    /// checked against. `None`: a store with one writer, which has none.
    pub clock_ms: Mutex<Option<i64>>,
}

impl FaultStore {
    pub fn new(inner: Arc<SledStore>) -> Self {
        Self {
            inner,
            fault: Mutex::new(Fault::None),
            commits: AtomicUsize::new(0),
            entered: Mutex::new(None),
            release: Mutex::new(None),
            unavailable_ids: Mutex::new(Vec::new()),
            shared: std::sync::atomic::AtomicBool::new(false),
            clock_ms: Mutex::new(None),
        }
    }
    pub fn set(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }

    /// Tells the test a call entered the block, then waits for its release (once).
    fn block_here(&self) {
        if let Some(tx) = self.entered.lock().unwrap().as_ref() {
            let _ = tx.send(());
        }
        let rx = self.release.lock().unwrap().take();
        if let Some(rx) = rx {
            rx.recv().unwrap();
        }
    }
}

impl Store for FaultStore {
    fn config(&self) -> Result<Option<LedgerConfig>, StoreError> {
        self.inner.config()
    }
    fn init(&self, c: &LedgerConfig) -> Result<(), StoreError> {
        self.inner.init(c)
    }
    fn head(&self) -> Result<Option<(TreeHead, Vec<u8>)>, StoreError> {
        self.inner.head()
    }
    fn commit(&self, b: &CommitBatch) -> Result<(), StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        let fault = *self.fault.lock().unwrap();
        match fault {
            Fault::None => self.inner.commit(b),
            Fault::FailBeforeWrite => Err(StoreError::Io {
                action: "write",
                path: "entries.dat".into(),
                source: std::io::Error::new(std::io::ErrorKind::StorageFull, "injected: no space left on device"),
            }),
            Fault::FailAfterWrite => {
                self.inner.commit(b)?;
                Err(StoreError::Io {
                    action: "sync",
                    path: "entries.dat".into(),
                    source: std::io::Error::other("injected: fsync reported failure after write"),
                })
            }
            Fault::UnavailableAfterWrite => {
                self.inner.commit(b)?;
                Err(StoreError::Unavailable("injected: the connection dropped before the commit's answer".into()))
            }
            Fault::FailCommitments
                if b.entries.iter().any(|e| e.stream == zachetka_projections::completeness::STREAM) =>
            {
                Err(StoreError::Unavailable("injected: the database is away for the commitment".into()))
            }
            Fault::BlockAdmit | Fault::FailReads | Fault::FailCommitments | Fault::SilentFollow => self.inner.commit(b),
        }
    }
    fn raw_entries(&self, from: u64, limit: u64) -> Result<Vec<RawEntry>, StoreError> {
        if *self.fault.lock().unwrap() == Fault::FailReads {
            return Err(StoreError::Unavailable("injected: connection lost".into()));
        }
        self.inner.raw_entries(from, limit)
    }
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        self.inner.read_hashes(indexes)
    }
    fn id_record(&self, id: &str) -> Result<Option<IdRecord>, StoreError> {
        if *self.fault.lock().unwrap() == Fault::BlockAdmit {
            self.block_here();
        }
        if self.unavailable_ids.lock().unwrap().iter().any(|u| u == id) {
            return Err(StoreError::Unavailable(format!("injected: the database is away (id {id})")));
        }
        self.inner.id_record(id)
    }
    fn is_shared(&self) -> bool {
        self.shared.load(Ordering::SeqCst)
    }
    fn clock_unix_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(*self.clock_ms.lock().unwrap())
    }
    fn wait_for_commit(&self, tree_size: u64, timeout: std::time::Duration) -> Result<(), StoreError> {
        // The contract allows returning after `timeout`; no other writer ever commits here, so
        // waiting it out is exact (and keeps a shared ledger's follower from spinning).
        let _ = tree_size;
        if *self.fault.lock().unwrap() == Fault::SilentFollow {
            self.block_here();
        }
        std::thread::park_timeout(timeout);
        Ok(())
    }
    fn stream_head(&self, stream: &str) -> Result<Option<StreamHead>, StoreError> {
        self.inner.stream_head(stream)
    }
    fn stream_seqs(&self, stream: &str, from_version: u64, limit: u64) -> Result<Vec<u64>, StoreError> {
        self.inner.stream_seqs(stream, from_version, limit)
    }
    fn checkpoints(&self, from_size: u64, limit: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.checkpoints(from_size, limit)
    }
    fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.checkpoint_at(tree_size)
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats()
    }
}

/// A fault store whose sequencer blocks while admitting its next submission until the returned
/// sender releases it; the receiver hears when it has entered the block.
pub fn blocking_store(
    dir: &std::path::Path,
) -> (Arc<FaultStore>, std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
    let store = Arc::new(FaultStore::new(new_store(dir)));
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    *store.entered.lock().unwrap() = Some(entered_tx);
    *store.release.lock().unwrap() = Some(release_rx);
    store.set(Fault::BlockAdmit);
    (store, entered_rx, release_tx)
}

/// A seeded xorshift generator for randomized tests: the seed comes from `ZACHETKA_SEED` or the
/// clock and is printed, so a failure can be replayed. `next(n)` is uniform enough below `n`.
pub fn seeded(test: &str) -> (u64, impl FnMut(u64) -> u64) {
    let seed: u64 = std::env::var("ZACHETKA_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("{test} seed={seed} (rerun with ZACHETKA_SEED={seed})");
    let mut rng = seed;
    let next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    (seed, next)
}

/// Re-verifies everything after a step (sunlight's CheckLog): the audit is clean, the head
/// checkpoint verifies, and every entry's inclusion proof verifies against it.
pub fn check_log(ledger: &Ledger) {
    let report = zachetka::audit::audit(&**ledger.store(), &|_, _| {}).unwrap();
    assert!(report.is_clean(), "audit found: {:#?}", report.violations);
    let (head, note) = ledger.head();
    let v = zachetka::checkpoint::verify_checkpoint(&note, &ledger.config().verifier_key, ORIGIN).unwrap();
    assert_eq!(v.head, head);
    let entries = ledger.entries(0, head.tree_size).unwrap();
    assert_eq!(entries.len() as u64, head.tree_size);
    for (i, e) in entries.iter().enumerate() {
        let proof = ledger.prove_inclusion(i as u64, head.tree_size).unwrap();
        zachetka::merkle::verify_inclusion(
            i as u64,
            head.tree_size,
            zachetka::merkle::leaf_hash(e),
            &proof,
            head.root_hash,
        )
        .unwrap();
    }
}

/// The PostgreSQL server the tests use (`ZACHETKA_TEST_DATABASE_URL`, set by `scripts/test`,
/// which starts a private cluster). Without it a test says so and does nothing; under CI that is
/// a failure, never a silent skip.
pub fn pg_url() -> Option<String> {
    match std::env::var("ZACHETKA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("ZACHETKA_TEST_DATABASE_URL is not set: run the tests with `bash scripts/test`, which starts PostgreSQL")
        }
        _ => {
            eprintln!("NOT RUN: no PostgreSQL (set ZACHETKA_TEST_DATABASE_URL or run `bash scripts/test`)");
            None
        }
    }
}

/// A connection string for a fresh, empty schema of its own in the test server: one ledger.
pub fn pg_schema(url: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let schema = format!("zt_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("connect to the test PostgreSQL");
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).unwrap();
    with_schema(url, &schema)
}

/// `url` with its search path set to `schema` (both connection-string forms).
pub fn with_schema(url: &str, schema: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-csearch_path%3D{schema}")
    } else {
        format!("{url} options='-c search_path={schema}'")
    }
}

/// A `zachetka append --dir` process (one ledger node) fed on stdin, by a thread, with requests
/// of 10 signed grades (ids from `first_id`, streams `learner/0..12`) until it dies. A receipt
/// on its stdout is an acknowledgement.
pub struct AppendNode {
    child: std::process::Child,
    writer: Option<std::thread::JoinHandle<()>>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl AppendNode {
    pub fn spawn(dir: &std::path::Path, envs: &[(&str, &str)], first_id: u64) -> Self {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["append", "--dir"])
            .arg(dir)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            for line in 0..100_000u64 {
                let batch: Vec<_> = (0..10)
                    .map(|i| grade(first_id + line * 10 + i, &format!("learner/{}", (line + i) % 13), None))
                    .collect();
                let mut text = serde_json::to_string(&batch).unwrap();
                text.push('\n');
                if stdin.write_all(text.as_bytes()).is_err() {
                    return; // the node is gone
                }
            }
        });
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        Self { child, writer: Some(writer), stdout }
    }

    /// Reads `n` receipts into `acked` as (seq, leaf hash); a refusal or an early end fails.
    pub fn read_receipts(&mut self, n: usize, acked: &mut Vec<(u64, Hash)>) {
        use std::io::BufRead;
        use zachetka::merkle::HashB64;
        let mut line = String::new();
        for _ in 0..n {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the node stopped early");
            let receipt: Value = serde_json::from_str(&line).unwrap();
            let seq = receipt["seq"].as_u64().unwrap_or_else(|| panic!("refusal {line}"));
            acked.push((seq, Hash::from_b64(receipt["leaf_hash"].as_str().unwrap()).unwrap()));
        }
    }

    /// SIGKILL: no destructor, no flush; most of the time inside a batch.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let _ = self.writer.take().map(std::thread::JoinHandle::join);
    }
}

/// Every acknowledged (seq, leaf hash) is in `store` with the same leaf, and the audit is clean.
pub fn check_acknowledged(store: &dyn Store, acked: &[(u64, Hash)], context: &str) {
    let (head, _) = store.head().unwrap().unwrap();
    for (seq, leaf) in acked {
        assert!(*seq < head.tree_size, "{context}: acknowledged entry {seq} is beyond the head {}", head.tree_size);
        let entry = &store.entries(*seq, 1).unwrap()[0];
        assert_eq!(zachetka::merkle::leaf_hash(entry), *leaf, "{context}: entry {seq} changed");
    }
    let report = zachetka::audit::audit(store, &|_, _| {}).unwrap();
    assert!(report.is_clean(), "{context}: {:#?}", report.violations);
}

/// Waits (bounded) until `ledger` reports the store unavailable, or available again: a shared
/// store's node refuses appends up front from a failed read of the store until its follower's
/// next read (about a second) succeeds.
pub fn await_store_unavailable(ledger: &zachetka::ledger::Ledger, want: bool, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while ledger.is_store_unavailable() != want {
        assert!(std::time::Instant::now() < deadline, "store_unavailable did not become {want} within {secs} s");
        // A polling interval, not a synchronization: the loop waits on the condition.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
