//! Issue 4's figure: signed appends through two nodes over one local PostgreSQL, >= 15,000
//! events/s (a region's ledger on the database its state systems already run), reported beside
//! the same workload on the embedded sled store and raw batched inserts into PostgreSQL of rows
//! of the same shape (the database's own ceiling for this table), measured in the same run.
//!
//! Run: `cargo bench --bench postgres -- [--events N] [--rounds R]` (defaults 100,000 and 3).
//! Uses `ZACHETKA_BENCH_DATABASE_URL` if set, else starts a private cluster with
//! `scripts/pg-cluster` (default settings: fsync and synchronous_commit on).

mod common;

use common::*;
use std::sync::Arc;
use std::time::Instant;
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits};
use zachetka::store::postgres::PgStore;
use zachetka::store::Store;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SUBMITTERS: usize = 256;
const REQUEST_LEN: usize = 50;

fn ledger_key() -> KeyPair {
    KeyPair::from_seed(&[1; 32])
}

fn open(store: Arc<dyn Store>) -> Ledger {
    Ledger::open(store, ledger_key(), Arc::new(zachetka::time::SystemClock), Limits::default()).unwrap()
}

fn init(store: &dyn Store) {
    zachetka::ledger::init_store(store, ORIGIN, &ledger_key(), &KeyPair::from_seed(&[2; 32]).did(), None).unwrap();
}

/// A fresh schema of its own: one ledger.
fn schema(admin: &mut postgres::Client, url: &str, name: &str) -> String {
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).unwrap();
    format!("{url} options='-c search_path={name}'")
}

/// Rows of the ledger's shape inserted as the store does (one multi-row insert and one commit
/// per batch of `batch_len`), from one connection: the database's rate for this table.
fn raw_insert_rate(url: &str, entries: &[Vec<u8>], batch_len: usize) -> f64 {
    let _ = PgStore::open(url).unwrap(); // the schema, by the migrations
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let insert = c
        .prepare(
            "INSERT INTO zt_entries (seq, bytes, hashes, id, stream, stream_version, tree_size, digest)
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[],
                                  $6::bigint[], $7::bigint[], $8::bytea[])",
        )
        .unwrap();
    let started = Instant::now();
    for (b, chunk) in entries.chunks(batch_len).enumerate() {
        let first = (b * batch_len) as i64;
        let seqs: Vec<i64> = (0..chunk.len() as i64).map(|i| first + i).collect();
        let bytes: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let hashes: Vec<Vec<u8>> =
            seqs.iter().map(|s| vec![*s as u8; 32 * (1 + (s.trailing_ones() as usize))]).collect();
        let ids: Vec<String> =
            seqs.iter().map(|s| zachetka::event::uuid_from_bytes((*s as u128).to_be_bytes())).collect();
        let streams: Vec<String> = seqs.iter().map(|s| format!("learner/47-{:06}", *s as u64 % LEARNERS)).collect();
        let versions: Vec<i64> = seqs.iter().map(|s| s / LEARNERS as i64).collect();
        let sizes: Vec<i64> = vec![first + chunk.len() as i64; chunk.len()];
        let digests: Vec<Vec<u8>> = seqs.iter().map(|s| vec![*s as u8; 32]).collect();
        let mut tx = c.transaction().unwrap();
        tx.execute(&insert, &[&seqs, &bytes, &hashes, &ids, &streams, &versions, &sizes, &digests]).unwrap();
        tx.commit().unwrap();
    }
    entries.len() as f64 / started.elapsed().as_secs_f64()
}

/// A private cluster, stopped when dropped.
struct Cluster(tempfile::TempDir);

impl Cluster {
    fn script(cmd: &str, dir: &std::path::Path) -> String {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
            .arg(cmd)
            .arg(dir)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/pg-cluster {cmd} failed");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        Self::script("stop", self.0.path());
    }
}

fn main() {
    let events = arg("--events", 100_000);
    let rounds = arg("--rounds", 3) as usize;
    let (_cluster, url) = match std::env::var("ZACHETKA_BENCH_DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let dir = tempfile::Builder::new().prefix("zachetka-bench-pg-").tempdir().unwrap();
            let url = Cluster::script("start", dir.path());
            (Some(Cluster(dir)), url)
        }
    };
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let teachers = teachers();
    println!(
        "zachetka postgres bench: {} cores, {events} events per figure (after as many to warm up), {rounds} rounds, {SUBMITTERS} submitters x {REQUEST_LEN}",
        rayon::current_num_threads()
    );
    let (mut sled_rates, mut pg_rates, mut raw_rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut one_rates, mut latencies) = (Vec::new(), Vec::new());
    for round in 0..rounds as u64 {
        let first = 10_000_000 * (round + 1);
        let warmup = signed_events(&teachers, first, events);
        let measured = signed_events(&teachers, first + events, events);

        // The embedded store, one node (`--pg-only` skips it, for profiling).
        if std::env::args().any(|a| a == "--pg-only") {
            let url_round = schema(&mut admin, &url, &format!("bench_{round}"));
            init(&PgStore::open(&url_round).unwrap());
            let nodes: Vec<Ledger> = (0..2).map(|_| open(Arc::new(PgStore::open(&url_round).unwrap()))).collect();
            pipeline_rate(&nodes, warmup, SUBMITTERS, REQUEST_LEN);
            println!("PostgreSQL 2 nodes: {:.0}/s", pipeline_rate(&nodes, measured, SUBMITTERS, REQUEST_LEN));
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(zachetka::store::sled::SledStore::open(dir.path()).unwrap());
        init(&*store);
        let node = open(store);
        pipeline_rate(std::slice::from_ref(&node), warmup.clone(), SUBMITTERS, REQUEST_LEN);
        sled_rates.push(pipeline_rate(std::slice::from_ref(&node), measured.clone(), SUBMITTERS, REQUEST_LEN));
        drop(node);

        // PostgreSQL, one node: how much the second node adds or costs.
        let url_one = schema(&mut admin, &url, &format!("bench_one_{round}"));
        init(&PgStore::open(&url_one).unwrap());
        let one = open(Arc::new(PgStore::open(&url_one).unwrap()));
        pipeline_rate(std::slice::from_ref(&one), warmup.clone(), SUBMITTERS, REQUEST_LEN);
        one_rates.push(pipeline_rate(std::slice::from_ref(&one), measured.clone(), SUBMITTERS, REQUEST_LEN));
        // A teacher's click: one event, one batch transaction.
        for ev in signed_events(&teachers, first + 3 * events, 300) {
            let started = Instant::now();
            one.append_blocking(vec![ev])[0].as_ref().unwrap();
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
        drop(one);

        // PostgreSQL, two nodes (each its own store and connections), submitters split evenly.
        let url_round = schema(&mut admin, &url, &format!("bench_{round}"));
        init(&PgStore::open(&url_round).unwrap());
        let nodes: Vec<Ledger> = (0..2).map(|_| open(Arc::new(PgStore::open(&url_round).unwrap()))).collect();
        pipeline_rate(&nodes, warmup, SUBMITTERS, REQUEST_LEN);
        let rate = pipeline_rate(&nodes, measured, SUBMITTERS, REQUEST_LEN);
        pg_rates.push(rate);
        let size = nodes[0].head().0.tree_size.max(nodes[1].head().0.tree_size);
        assert_eq!(size, 2 * events, "every event is in the log once");
        let checkpoints = nodes[0].store().checkpoints(0, u64::MAX).unwrap().len();
        let canonical = nodes[0].entries(size / 2, 1).unwrap().remove(0);
        drop(nodes);

        // Raw batched inserts of rows of the same shape, batches of the ledger's mean batch.
        let batch_len = (size as usize / checkpoints).max(1);
        let raw_url = schema(&mut admin, &url, &format!("bench_raw_{round}"));
        let rows = vec![canonical; 2 * events as usize];
        raw_rates.push(raw_insert_rate(&raw_url, &rows, batch_len));
        println!(
            "round {round}: sled 1 node {:.0}/s, PostgreSQL 1 node {:.0}/s, 2 nodes {rate:.0}/s (mean batch {batch_len}), raw inserts {:.0} rows/s",
            sled_rates.last().unwrap(),
            one_rates.last().unwrap(),
            raw_rates.last().unwrap()
        );
    }
    let (sled, pg, raw) = (median(&mut sled_rates), median(&mut pg_rates), median(&mut raw_rates));
    println!("signed appends, PostgreSQL, 1 node: {:.0} events/s", median(&mut one_rates));
    println!(
        "single-event durable append on PostgreSQL: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );
    println!(
        "signed appends, PostgreSQL, 2 nodes: {pg:.0} events/s = {:.2} x sled (1 node, {sled:.0}/s) = {:.2} x raw batched inserts ({raw:.0} rows/s)",
        pg / sled,
        pg / raw
    );
}
