//! The learner record bundle's figures (issue [record]), one harness-free binary over a
//! demo-region ledger (education rules enforced) where one learner has `--learner-entries`
//! entries (5,000: a pupil's eleven school years of marks is of that order) scattered among
//! `--noise` entries of other learners:
//! - export (`zachetka::record::export_learner`, what `zachetka export` and
//!   `GET /v1/learners/<id>/record` run): < 50 ms, so a server answers it inline;
//! - verify (`zachetka_record::verify`, the CLI's library path: every proof, signature, chain
//!   and the rules replay): < 100 ms, with the machine's threads and with one (the figure
//!   `POST /v1/verify` gets);
//! - bundle bytes per entry, fully disclosed and with grades withheld.
//!
//! Run: `cargo bench --bench record -- [--learner-entries 5000] [--noise 15000] [--rounds 7]`.
//! Medians over rounds; the machine is shared and noisy.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rayon::prelude::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits, RulesMode};
use zachetka::record::{export_learner, verify, Disclosure, Options};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

mod common;
use common::*;

const LEARNER: &str = "47-bench";

fn grade(i: u64, stream: &str, teacher: &KeyPair) -> serde_json::Value {
    let ev = json!({"ledger": ORIGIN, "stream": stream, "type": "journal.grade_recorded",
        "id": zachetka::event::uuid_from_bytes((0xbe00_0000_0000u128 + i as u128).to_be_bytes()),
        "occurred_at": "2026-10-01T09:00:00Z", "author": teacher.did(),
        "data": {"v": 1, "institution": "sch-001", "class": "5А", "subject": "Физика", "mark": 2 + (i % 4) as i64,
                 "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": "2026-10-01"}});
    zachetka::event::sign_event(&ev, teacher).unwrap()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// This thread's time on a CPU so far, in ms (Linux `schedstat`): on a shared, oversubscribed
/// machine the wall clock measures the neighbours; this measures the work.
fn thread_cpu_ms() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).map_or(f64::NAN, |ns| ns / 1e6)
}

fn main() {
    let learner_entries = arg("--learner-entries", 5000);
    let noise = arg("--noise", 15_000);
    let rounds = arg("--rounds", 7) as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 200, teachers: 40, events: 300 });
    let ledger_key = KeyPair::from_seed(&[1; 32]);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let rules = Some(zachetka::rules::default_region());
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key, &region.authority_did(), rules).unwrap();
    let clock = Arc::new(zachetka::time::SystemClock);
    let ledger = Ledger::open_with(store, ledger_key, clock, Limits::default(), RulesMode::Enforce).unwrap();
    loop {
        let batch = region.next_batch(1000);
        if batch.is_empty() {
            break;
        }
        ledger.append_blocking(batch).into_iter().for_each(|r| {
            r.unwrap();
        });
    }
    // Teacher 0 teaches sch-001 (see tests/it/rules.rs). The learner's entries, one in every
    // 1 + noise/learner_entries, the rest on 500 other learners' streams.
    let teacher = zachetka::demo::demo_key(ORIGIN, "teacher/0");
    let every = 1 + noise / learner_entries.max(1);
    let total = learner_entries * every;
    let events: Vec<serde_json::Value> = (0..total)
        .into_par_iter()
        .map(|i| {
            let stream =
                if i % every == 0 { format!("learner/{LEARNER}") } else { format!("learner/47-noise-{}", i % 500) };
            grade(i, &stream, &teacher)
        })
        .collect();
    for chunk in events.chunks(2000) {
        ledger.append_blocking(chunk.to_vec()).into_iter().for_each(|r| {
            r.unwrap();
        });
    }
    let size = ledger.head().0.tree_size;
    ledger.read_side().wait_applied_blocking(size);
    let vkey = ledger.config().verifier_key.clone();
    println!("ledger: {size} entries; learner {LEARNER}: {learner_entries} of them");

    let (mut export_ms, mut verify_ms, mut verify_one_ms, mut selective_ms) = (vec![], vec![], vec![], vec![]);
    let (mut export_cpu, mut verify_one_cpu) = (vec![], vec![]);
    let mut full = Vec::new();
    let mut selective = Vec::new();
    let only = Disclosure::parse("final-results,documents,achievements").unwrap();
    for _ in 0..rounds {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let b = export_learner(&ledger, LEARNER, &Disclosure::All).unwrap();
        export_ms.push(ms(t));
        export_cpu.push(thread_cpu_ms() - c);
        full = b.to_json();
        let t = Instant::now();
        selective = export_learner(&ledger, LEARNER, &only).unwrap().to_json();
        selective_ms.push(ms(t));
        let t = Instant::now();
        let r = verify(&full, &vkey, &Options::default());
        verify_ms.push(ms(t));
        assert!(r.ok && r.entries as u64 >= learner_entries, "{:?}", r.failures);
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let r = verify(&full, &vkey, &Options { threads: 1, ..Default::default() });
        verify_one_ms.push(ms(t));
        verify_one_cpu.push(thread_cpu_ms() - c);
        assert!(r.ok);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let entries = learner_entries as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average while measuring: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!(
        "export, all disclosed:             median {:.1} ms wall, {:.1} ms CPU (target < 50)",
        median(&mut export_ms),
        median(&mut export_cpu)
    );
    println!("export, grades withheld:           median {:.1} ms", median(&mut selective_ms));
    println!("verify, {threads} threads:                 median {:.1} ms (target < 100)", median(&mut verify_ms));
    println!(
        "verify, 1 thread:                  median {:.1} ms wall, {:.1} ms CPU",
        median(&mut verify_one_ms),
        median(&mut verify_one_cpu)
    );
    println!(
        "bundle: {} bytes = {:.0} bytes/entry all disclosed; {} bytes = {:.0} bytes/entry with grades withheld",
        full.len(),
        full.len() as f64 / entries,
        selective.len(),
        selective.len() as f64 / entries
    );
}
