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
//! The ledger commits completeness every `--completeness-every-entries` (10,000), so the bundles
//! carry the completeness member and verify checks it. In every round, right after the work it
//! bounds, the floor verify cannot go below on this machine: the bundle's own signatures checked
//! one after another by the key cache's table path the verifier uses (and by plain
//! `verify_strict`); export and verify are also reported as the median of their per-round
//! ratios to it, which the machine's changing speed moves far less than the times.
//!
//! Run: `cargo bench --bench record -- [--learner-entries 5000] [--noise 15000] [--rounds 7]
//! [--completeness-every-entries 10000] [--write-bundle FILE] [--keep-ledger DIR]`. Medians over
//! rounds; the machine is shared and noisy.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rayon::prelude::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits, OpenOptions, RulesMode};
use zachetka::record::{export_learner, verify, Disclosure, Options};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

mod common;
use common::*;

/// The demo learner enrolled in 5А of sch-001 (learner `n` of the demo is in school `n % 2`,
/// year `1 + n / 2 % 11`, letter `n / 22 % 3`; see tests/it/rules.rs `learner_in`).
const LEARNER: u64 = 8;
/// A school day of the demo's year, when its learners are enrolled (marks need enrolment).
const DAY: &str = "2027-05-20";

/// Learner `n`'s id and class (`<year><letter>`) in the demo region.
fn demo_learner(n: u64) -> (String, String) {
    let letter = ["А", "Б", "В"][(n / 22 % 3) as usize];
    (format!("47-{n:06}"), format!("{}{letter}", 1 + n / 2 % 11))
}

fn grade(i: u64, learner: u64, teacher: &KeyPair) -> serde_json::Value {
    let (id, class) = demo_learner(learner);
    let ev = json!({"ledger": ORIGIN, "stream": format!("learner/{id}"), "type": "journal.grade_recorded",
        "id": zachetka::event::uuid_from_bytes((0xbe00_0000_0000u128 + i as u128).to_be_bytes()),
        "occurred_at": format!("{DAY}T09:00:00Z"), "author": teacher.did(),
        "data": {"v": 1, "institution": "sch-001", "class": class, "subject": "Физика", "mark": 2 + (i % 4) as i64,
                 "scale": "five_point", "weight": 5, "kind": "test", "lesson_date": DAY}});
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

/// Every disclosed entry's (author key, signed message, signature), as the verifier checks them.
fn signatures_of(bundle: &[u8]) -> Vec<([u8; 32], Vec<u8>, ed25519_dalek::Signature)> {
    let b = zachetka::record::Bundle::parse(bundle).unwrap();
    let completeness = b.completeness.iter().map(|c| &c.commitment);
    b.entries
        .iter()
        .chain(&b.authority)
        .chain(completeness)
        .filter_map(|i| i.entry.as_ref())
        .map(|e| {
            let bytes = zachetka::keys::b64_decode(e).unwrap();
            let parsed = zachetka::event::parse_entry(&bytes).unwrap();
            let event = zachetka::event::canonical_event_of_entry(&bytes).unwrap();
            let author = parsed.event["author"].as_str().unwrap();
            let pk = zachetka::keys::public_from_did(author).unwrap();
            let sig = zachetka::keys::decode_signature(&parsed.sig).unwrap();
            (pk, zachetka::event::signing_input(event), sig)
        })
        .collect()
}

fn main() {
    let learner_entries = arg("--learner-entries", 5000);
    let noise = arg("--noise", 15_000);
    let rounds = arg("--rounds", 7) as usize;
    let every = arg("--completeness-every-entries", 10_000);
    // `--keep-ledger DIR`: the ledger laid out as `zachetka init` does (DIR/store, DIR/ledger.key),
    // kept for `zachetka export --dir DIR` under a profiler.
    let kept = std::env::args().skip_while(|a| a != "--keep-ledger").nth(1).map(std::path::PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = kept.as_ref().map_or(dir.path().to_owned(), |d| d.join("store"));
    let mut region = DemoRegion::new(ORIGIN, DemoSize { learners: 200, teachers: 40, events: 300 });
    let ledger_key = KeyPair::from_seed(&[1; 32]);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&store_dir).unwrap());
    if let Some(d) = &kept {
        std::fs::write(d.join("ledger.key"), ledger_key.to_key_file()).unwrap();
    }
    let rules = Some(zachetka::rules::default_region());
    zachetka::ledger::init_store(&*store, ORIGIN, &ledger_key, &region.authority_did(), rules).unwrap();
    // The ledger's clock follows the demo's days (each batch holds one; see `recorded_at_of`).
    let clock = Arc::new(zachetka::time::FixedClock::at(0));
    let completeness = Some(zachetka::read::CompletenessPolicy { every_entries: every, every_seconds: 0 });
    let options =
        OpenOptions { limits: Limits::default(), mode: RulesMode::Enforce, completeness, ..Default::default() };
    let ledger = Ledger::open_opts(store, ledger_key, clock.clone(), options).unwrap();
    // The region as lived up to the learner's day: ledger time never runs backwards, so the
    // learner's marks of that day come after the region's entries of earlier days, not after its
    // whole year.
    let day = zachetka::time::parse_rfc3339(&format!("{DAY}T10:00:00Z")).unwrap();
    loop {
        let batch = region.next_batch(1000);
        match zachetka::demo::DemoRegion::recorded_at_of(&batch) {
            Some(at) if at <= day => clock.set(at),
            _ => break,
        }
        ledger.append_blocking(batch).into_iter().for_each(|r| {
            r.unwrap();
        });
    }
    // Teacher 0 teaches sch-001 (see tests/it/rules.rs). The learner's entries, one in every
    // 1 + noise/learner_entries, the rest on the other learners of sch-001 from the 2nd year up.
    clock.set(zachetka::time::parse_rfc3339(&format!("{DAY}T10:00:00Z")).unwrap());
    let teacher = zachetka::demo::demo_key(ORIGIN, "teacher/0");
    // Marks are given at a lesson: the day's Физика lesson of every class of sch-001 first.
    let lessons: Vec<serde_json::Value> = (1..=11)
        .flat_map(|year| ["А", "Б", "В"].map(|letter| format!("{year}{letter}")))
        .enumerate()
        .map(|(k, class)| {
            let ev = json!({"ledger": ORIGIN, "stream": "institution/sch-001", "type": "journal.lesson_held",
                "id": zachetka::event::uuid_from_bytes((0xbf00_0000_0000u128 + k as u128).to_be_bytes()),
                "occurred_at": format!("{DAY}T09:00:00Z"), "author": teacher.did(),
                "data": {"v": 1, "lesson_id": format!("bench-{k}"), "class": class, "subject": "Физика", "lesson_date": DAY}});
            zachetka::event::sign_event(&ev, &teacher).unwrap()
        })
        .collect();
    ledger.append_blocking(lessons).into_iter().for_each(|r| {
        r.unwrap();
    });
    let others: Vec<u64> = (0..200).step_by(2).filter(|n| n / 2 % 11 != 0 && *n != LEARNER).collect();
    let spacing = 1 + noise / learner_entries.max(1);
    let total = learner_entries * spacing;
    let events: Vec<serde_json::Value> = (0..total)
        .into_par_iter()
        .map(|i| {
            let learner = if i % spacing == 0 { LEARNER } else { others[(i % others.len() as u64) as usize] };
            grade(i, learner, &teacher)
        })
        .collect();
    for chunk in events.chunks(2000) {
        ledger.append_blocking(chunk.to_vec()).into_iter().for_each(|r| {
            r.unwrap();
        });
    }
    // The read side applies everything and appends the commitments the policy owes.
    let size = loop {
        let size = ledger.head().0.tree_size;
        ledger.read_side().wait_settled_blocking(size);
        ledger.read_side().wait_applied_blocking(size);
        if ledger.head().0.tree_size == size {
            break size;
        }
    };
    let vkey = ledger.config().verifier_key.clone();
    let learner = demo_learner(LEARNER).0;
    let learner = learner.as_str();
    println!("ledger: {size} entries; learner {learner}: {learner_entries} of them and the demo's");

    let (mut export_ms, mut verify_ms, mut verify_one_ms, mut selective_ms) = (vec![], vec![], vec![], vec![]);
    let (mut export_cpu, mut verify_one_cpu, mut json_ms) = (vec![], vec![], vec![]);
    let (mut strict_cpu, mut cached_cpu) = (vec![], vec![]);
    // Ratios to the floor, each of one round (the floor measured right after the work it bounds:
    // on this shared machine a core's speed moves by 2x within minutes).
    let (mut verify_ratio, mut verify_two_ratio, mut export_ratio) = (vec![], vec![], vec![]);
    let mut full = Vec::new();
    let mut selective = Vec::new();
    let mut signed = Vec::new();
    let only = Disclosure::parse("final-results,documents,achievements").unwrap();
    for round in 0..rounds {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let b = export_learner(&ledger, learner, &Disclosure::All).unwrap();
        export_ms.push(ms(t));
        export_cpu.push(thread_cpu_ms() - c);
        let t = Instant::now();
        full = b.to_json();
        json_ms.push(ms(t));
        let t = Instant::now();
        selective = export_learner(&ledger, learner, &only).unwrap().to_json();
        selective_ms.push(ms(t));
        let t = Instant::now();
        let r = verify(&full, &vkey, &Options::default());
        verify_ms.push(ms(t));
        assert!(r.ok && r.entries as u64 >= learner_entries, "{:?}", r.failures);
        let status = r.completeness.as_ref().map(|c| c.status);
        assert!(matches!(status, Some("complete" | "complete_up_to")), "the bundle carries a commitment: {status:?}");
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let r = verify(&full, &vkey, &Options { threads: 1, ..Default::default() });
        verify_one_ms.push(ms(t));
        verify_one_cpu.push(thread_cpu_ms() - c);
        assert!(r.ok);
        // The floor: the bundle's signatures, each checked once, one after another.
        if round == 0 {
            signed = signatures_of(&full);
        }
        let c = thread_cpu_ms();
        for (pk, msg, sig) in &signed {
            let key = zachetka::keys::verifying_key(pk).unwrap();
            zachetka::keys::verify_strict(&key, msg, sig).unwrap();
        }
        strict_cpu.push(thread_cpu_ms() - c);
        let cache = zachetka::keys::KeyCache::default();
        let c = thread_cpu_ms();
        for (pk, msg, sig) in &signed {
            cache.verify(pk, msg, sig).unwrap();
        }
        let cached = thread_cpu_ms() - c;
        cached_cpu.push(cached);
        verify_ratio.push(verify_one_cpu[round] / cached);
        verify_two_ratio.push(verify_ms[round] / cached);
        export_ratio.push(export_cpu[round] / cached);
    }
    // For a profiler: `zachetka verify <file> --vkey <key>` on the bundle measured here.
    if let Some(path) = std::env::args().skip_while(|a| a != "--write-bundle").nth(1) {
        std::fs::write(&path, &full).unwrap();
        println!("wrote the bundle to {path}; verifier key {vkey}");
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let (strict, cached) = (median(&mut strict_cpu), median(&mut cached_cpu));
    let entries = learner_entries as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average while measuring: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!(
        "export, all disclosed:             median {:.1} ms wall, {:.1} ms CPU (target < 50); {:.3} x the floor",
        median(&mut export_ms),
        median(&mut export_cpu),
        median(&mut export_ratio)
    );
    println!("  and its JSON bytes (the server writes them): median {:.1} ms more", median(&mut json_ms));
    println!("export, grades withheld, with bytes: median {:.1} ms", median(&mut selective_ms));
    println!(
        "verify, {threads} threads:                 median {:.1} ms wall (target < 100); {:.2} x the floor",
        median(&mut verify_ms),
        median(&mut verify_two_ratio)
    );
    println!(
        "verify, 1 thread:                  median {:.1} ms wall, {:.1} ms CPU; {:.2} x the floor",
        median(&mut verify_one_ms),
        median(&mut verify_one_cpu),
        median(&mut verify_ratio)
    );
    println!(
        "floor, the bundle's {} signatures one after another: key cache (the verifier's path) {cached:.1} ms CPU, verify_strict {strict:.1} ms CPU ({:.1} us each)",
        signed.len(),
        strict * 1e3 / signed.len() as f64
    );
    println!(
        "bundle: {} bytes = {:.0} bytes/entry all disclosed; {} bytes = {:.0} bytes/entry with grades withheld",
        full.len(),
        full.len() as f64 / entries,
        selective.len(),
        selective.len() as f64 / entries
    );
}
