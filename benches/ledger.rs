//! The ledger core's figures (issue 2), one harness-free binary. Figures it is meant to reach on
//! the 2-core reference machine, and why:
//! - signed, verified, durably committed appends through the library pipeline: >= 25,000
//!   events/s with ~500-byte payloads (a region's school day in minutes), reported beside the
//!   machine's strict-verify rate on both cores and raw sled group-commit inserts/s; measured
//!   with 256 concurrent submitters (a region's clients), cold and warm (see `pipeline_round`);
//! - durable single-event append latency (one event, one flush): p50 < 2 ms (a teacher's click);
//! - audit of a 1,000,000-entry ledger: >= 25,000 entries/s (an auditor's run in under a minute);
//! - inclusion and consistency proofs on 1,000,000 entries: p99 < 1 ms;
//! - bytes on disk per entry against the entry's canonical size;
//! - issue 3: the education rules add at most 20% to the append cost measured without them;
//! - [record] part 3: completeness commitments (`--completeness-every-entries N`, the pipeline
//!   ledger commits every N entries; 0, the default, never) cost at most 10% of the pipeline
//!   figure; compare the pipeline's ratio to verify_strict between runs with and without.
//!
//! Run: `cargo bench --bench ledger -- [--entries N] [--rounds R]` (defaults 1,000,000 and 5).
//! Reports medians over rounds and ratios; the machine is shared and noisy.

use rayon::prelude::*;

// The allocator the `zachetka` binary uses, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use zachetka::keys::{KeyCache, KeyPair};
use zachetka::ledger::{Ledger, Limits};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

mod common;
use common::*;

fn new_ledger(dir: &std::path::Path) -> Ledger {
    new_ledger_committing(dir, None)
}

fn new_ledger_committing(dir: &std::path::Path, completeness: Option<zachetka::read::CompletenessPolicy>) -> Ledger {
    let store = Arc::new(SledStore::open(dir).unwrap());
    let key = KeyPair::from_seed(&[1; 32]);
    zachetka::ledger::init_store(&*store, ORIGIN, &key, &KeyPair::from_seed(&[2; 32]).did(), None).unwrap();
    let options = zachetka::ledger::OpenOptions { completeness, ..Default::default() };
    Ledger::open_opts(store, key, Arc::new(zachetka::time::SystemClock), options).unwrap()
}

/// The commitment policy of the pipeline figure (`--completeness-every-entries N`; 0: none).
fn completeness_policy() -> Option<zachetka::read::CompletenessPolicy> {
    let every_entries = arg("--completeness-every-entries", 0);
    (every_entries > 0).then_some(zachetka::read::CompletenessPolicy { every_entries, every_seconds: 0 })
}

/// One pipeline figure on a fresh ledger: `cold`, the first 100,000 events (every author key
/// and learner stream new to the process), then `warm`, the next 100,000 (steady state: keys
/// and streams already seen, as in a server that has run for a day).
fn pipeline_round(teachers: &[KeyPair], round: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = new_ledger_committing(dir.path(), completeness_policy());
    let first = 1_000_000 * (round + 1);
    let cold = pipeline_rate(std::slice::from_ref(&ledger), signed_events(teachers, first, 100_000), 256, 50);
    let warm = pipeline_rate(std::slice::from_ref(&ledger), signed_events(teachers, first + 100_000, 100_000), 256, 50);
    if completeness_policy().is_some() {
        let store = ledger.store().clone();
        let size = ledger.head().0.tree_size;
        let commitments = (0..size)
            .step_by(4096)
            .flat_map(|from| store.entries(from, 4096).unwrap())
            .filter(|b| std::str::from_utf8(b).unwrap().contains("\"ledger.completeness_committed\""))
            .count();
        println!("  round {round}: {commitments} completeness commitments in {size} entries");
    }
    (cold, warm)
}

/// Appends pre-signed demo-region events in order (one submitter, requests of 2000) into a fresh
/// ledger whose config carries the education rules, enforced or bypassed; returns events/s.
fn rules_round(origin_authority: &str, days: &[Vec<Value>], mode: zachetka::ledger::RulesMode) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let key = KeyPair::from_seed(&[1; 32]);
    zachetka::ledger::init_store(&*store, ORIGIN, &key, origin_authority, Some(zachetka::rules::default_region()))
        .unwrap();
    // The ledger's clock follows the demo's days (each batch holds one; see `recorded_at_of`).
    let clock = Arc::new(zachetka::time::FixedClock::at(0));
    let ledger = Ledger::open_with(store, key, clock.clone(), Limits::default(), mode).unwrap();
    let started = Instant::now();
    let mut n = 0usize;
    for day in days {
        clock.set(zachetka::demo::DemoRegion::recorded_at_of(day).expect("a batch has events"));
        for chunk in day.chunks(2000) {
            for r in ledger.append_blocking(chunk.to_vec()) {
                r.expect("demo events are valid under the rules");
            }
        }
        n += day.len();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// What the education rules add: the demo region's events (authority chain, grades, attendance,
/// every subsystem), appended with the rules enforced and bypassed.
fn rules_figure(rounds: usize) {
    let mut region = zachetka::demo::DemoRegion::new(
        ORIGIN,
        zachetka::demo::DemoSize { learners: 50_000, teachers: 500, events: 100_000 },
    );
    let authority = region.authority_did();
    let mut demo_events: Vec<Vec<Value>> = Vec::new();
    loop {
        let b = region.next_batch(10_000);
        if b.is_empty() {
            break;
        }
        demo_events.push(b);
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        with.push(rules_round(&authority, &demo_events, zachetka::ledger::RulesMode::Enforce));
        without.push(rules_round(&authority, &demo_events, zachetka::ledger::RulesMode::Bypass));
    }
    let (with, without) = (median(&mut with), median(&mut without));
    println!(
        "education rules on {} demo events (one submitter, in order): {with:.0} events/s enforced, {without:.0} without = {:.1}% added cost",
        demo_events.iter().map(Vec::len).sum::<usize>(),
        (without / with - 1.0) * 100.0
    );
}

fn main() {
    let entries = arg("--entries", 1_000_000);
    let rounds = arg("--rounds", 5) as usize;
    // `--pipeline-only` runs just the pipeline figure (for profiling).
    let pipeline_only = std::env::args().any(|a| a == "--pipeline-only");
    // `--rules-only` runs just the rules' added-cost figure.
    let rules_only = std::env::args().any(|a| a == "--rules-only");
    let teachers = teachers();
    println!(
        "zachetka ledger bench: {} cores, {entries} entries for the audit/proof figures, {rounds} rounds",
        rayon::current_num_threads()
    );

    if pipeline_only {
        let (cold, warm) = pipeline_round(&teachers, 0);
        println!("pipeline appends: cold {cold:.0} events/s, warm {warm:.0} events/s");
        return;
    }
    if rules_only {
        rules_figure(rounds);
        return;
    }
    // 1. The machine's strict-verify rate: ed25519-dalek verify_strict on both cores (messages
    //    and keys decoded beforehand), and our verification path (decode + JCS + strict rule
    //    through the key cache) on the same events.
    let sample = signed_events(&teachers, 0, 40_000);
    let canonical_len =
        zachetka::event::verify_signed(sample[0].clone(), ORIGIN, &KeyCache::default()).unwrap().canonical.len();
    let decoded: Vec<(ed25519_dalek::VerifyingKey, Vec<u8>, ed25519_dalek::Signature)> = sample
        .iter()
        .map(|v| {
            let e = zachetka::event::verify_signed(v.clone(), ORIGIN, &KeyCache::default()).unwrap();
            let key = zachetka::keys::verifying_key(&e.author).unwrap();
            (key, zachetka::event::signing_input(&e.canonical), zachetka::keys::decode_signature(&e.sig).unwrap())
        })
        .collect();
    let mut strict_rates = Vec::new();
    let mut path_rates = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        assert!(decoded.par_iter().all(|(k, m, s)| k.verify_strict(m, s).is_ok()));
        strict_rates.push(decoded.len() as f64 / started.elapsed().as_secs_f64());
        let cache = KeyCache::default();
        // Warm: every key seen often enough to have its table (a server that has run a while).
        sample.par_iter().for_each(|v| drop(zachetka::event::verify_signed(v.clone(), ORIGIN, &cache)));
        sample.par_iter().for_each(|v| drop(zachetka::event::verify_signed(v.clone(), ORIGIN, &cache)));
        let started = Instant::now();
        let ok =
            sample.par_iter().filter(|v| zachetka::event::verify_signed((*v).clone(), ORIGIN, &cache).is_ok()).count();
        assert_eq!(ok, sample.len());
        path_rates.push(sample.len() as f64 / started.elapsed().as_secs_f64());
    }
    let verify_rate = median(&mut strict_rates);
    let path_rate = median(&mut path_rates);
    println!("verify_strict, both cores: {verify_rate:.0} signatures/s");
    println!("our verification path (decode + JCS + strict rule, key tables warm), both cores: {path_rate:.0} events/s (canonical event {canonical_len} bytes)");

    // 2. Raw sled group commit: one insert per entry of the entry's size, one flush per 4096.
    let mut raw_rates = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).mode(sled::Mode::HighThroughput).open().unwrap();
        let record = vec![7u8; canonical_len + 200];
        let started = Instant::now();
        for b in 0..10u64 {
            let mut batch = sled::Batch::default();
            for i in 0..4096u64 {
                batch.insert(&(b * 4096 + i).to_be_bytes(), record.clone());
            }
            db.apply_batch(batch).unwrap();
            db.flush().unwrap();
        }
        raw_rates.push(40_960.0 / started.elapsed().as_secs_f64());
    }
    let raw_rate = median(&mut raw_rates);
    println!("raw sled group-commit inserts (one key per entry, flush per 4096): {raw_rate:.0} entries/s");

    // 3. The pipeline: signed events in, durable receipts out.
    let mut cold_rates = Vec::new();
    let mut warm_rates = Vec::new();
    for r in 0..rounds {
        let (cold, warm) = pipeline_round(&teachers, r as u64 + 1);
        cold_rates.push(cold);
        warm_rates.push(warm);
    }
    let (cold, warm) = (median(&mut cold_rates), median(&mut warm_rates));
    println!(
        "pipeline appends (verify + sequence + group commit + checkpoint per batch), 256 submitters x 50: cold {cold:.0} events/s, warm {warm:.0} events/s = {:.2} x verify_strict, {:.2} x raw sled",
        warm / verify_rate,
        warm / raw_rate
    );

    // 3b. What the education rules add.
    rules_figure(rounds);

    // 4. Durable single-event latency: one event, one batch, one flush, sequentially.
    let dir = tempfile::tempdir().unwrap();
    let ledger = new_ledger(dir.path());
    let singles = signed_events(&teachers, 50_000_000, 2000);
    let mut lat = Vec::with_capacity(singles.len());
    for ev in singles {
        let started = Instant::now();
        ledger.append_blocking(vec![ev])[0].as_ref().unwrap();
        lat.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "single-event durable append latency: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    drop(ledger);

    // 5. A large ledger: build, then bytes per entry, proofs, audit.
    let dir = tempfile::tempdir().unwrap();
    let ledger = new_ledger(dir.path());
    let started = Instant::now();
    let mut done = 0u64;
    while done < entries {
        let n = (entries - done).min(200_000);
        let events = signed_events(&teachers, 100_000_000 + done, n);
        pipeline_rate(std::slice::from_ref(&ledger), events, 64, 500);
        done += n;
    }
    println!("built {entries} entries in {:.1} s (signing included)", started.elapsed().as_secs_f64());
    let size = ledger.head().0.tree_size;
    assert_eq!(size, entries);
    let canonical_entry: f64 =
        ledger.entries(size / 2, 1000).unwrap().iter().map(|e| e.len() as f64).sum::<f64>() / 1000.0;
    ledger.store().stats().unwrap();
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut incl = Vec::new();
    let mut cons = Vec::new();
    for _ in 0..20_000 {
        let i = next(size);
        let started = Instant::now();
        ledger.prove_inclusion(i, size).unwrap();
        incl.push(started.elapsed().as_secs_f64() * 1e3);
        let m = 1 + next(size - 1);
        let started = Instant::now();
        ledger.prove_consistency(m, size).unwrap();
        cons.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "inclusion proof on {size} entries: p50 {:.4} ms, p99 {:.4} ms; consistency: p50 {:.4} ms, p99 {:.4} ms",
        percentile(&mut incl, 0.5),
        percentile(&mut incl, 0.99),
        percentile(&mut cons, 0.5),
        percentile(&mut cons, 0.99)
    );
    let store: Arc<dyn Store> = ledger.store().clone();
    drop(ledger);
    // sled compacts lazily; flush so the figure is what a restart would find.
    let bytes = store.stats().unwrap().bytes_on_disk as f64;
    println!(
        "bytes on disk per entry: {:.0} (canonical entry {:.0} bytes, ratio {:.2})",
        bytes / size as f64,
        canonical_entry,
        bytes / size as f64 / canonical_entry
    );
    let started = Instant::now();
    let report = zachetka::audit::audit(&*store, &|_, _| {}).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(report.is_clean(), "{:?}", &report.violations[..report.violations.len().min(5)]);
    println!(
        "audit of {size} entries: {secs:.1} s = {:.0} entries/s = {:.2} x strict verify",
        size as f64 / secs,
        size as f64 / secs / verify_rate
    );
}
