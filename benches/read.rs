//! The read side's figures (issue [read]), one harness-free binary over a demo-region ledger of
//! about `--entries` entries (every subsystem, the education rules enforced):
//! - rebuild of every read model from zero: >= 250,000 entries/s, beside the bare rate of reading
//!   and parsing the same entries (the bound: the ratio says how close the folds come to it);
//! - open of the ledger with rules to accepting appends and serving reads, from a snapshot at
//!   the head: < 1 s, beside the open without snapshots (the whole rules replay);
//! - read-model requests (a diary, a class journal, a queue position) over HTTP on loopback at
//!   `--reads` requests/s (2,000) while appends run at `--appends` events/s (5,000): p50 and
//!   p99 latency measured from each request's scheduled time (no coordinated omission), p99 < 5 ms;
//!   each round is followed by the same reads without appends (the bound, at the same load);
//! - the kindergarten queue's kept group replays once every application was answered once:
//!   applications, moves and bytes, the largest group, and what the default budget drops.
//!
//! Run: `cargo bench --bench read -- [--entries 1000000] [--rounds 3] [--seconds 10] [--dir D]
//! [--phases rebuild,replays,open,reads] [--views diaries,journals,kindergarten-queues]
//! [--learners L --events E]` (the region's size: by default `--entries` x 3/20 learners).
//! Medians over rounds; the machine is shared and noisy.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use zachetka::demo::{DemoRegion, DemoSize};
use zachetka::keys::KeyPair;
use zachetka::ledger::{Ledger, Limits, OpenOptions};
use zachetka::read::{SnapshotOptions, SnapshotPolicy};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;
use zachetka_projections::model::ParsedFact;

mod common;
use common::*;

fn ledger_key() -> KeyPair {
    KeyPair::from_seed(&[1; 32])
}

/// The ledgers' clock: pinned to the day of the demo events being appended (the ledger-time rules
/// see the demo's year as lived; see `DemoRegion::recorded_at_of`).
static CLOCK: std::sync::OnceLock<zachetka::time::FixedClock> = std::sync::OnceLock::new();

fn clock() -> &'static zachetka::time::FixedClock {
    CLOCK.get_or_init(|| zachetka::time::FixedClock::at(0))
}

/// Pins the ledgers' clock to the time a demo batch is recorded at.
fn pin_for(batch: &[Value]) {
    if let Some(at) = DemoRegion::recorded_at_of(batch) {
        clock().set(at);
    }
}

fn open(dir: &Path, snapshots: bool) -> Ledger {
    // Early: the index opens while the ledger loads its snapshot, as the command line opens it.
    let store: Arc<dyn Store> = Arc::new(SledStore::open_early(&dir.join("store")).unwrap());
    let snapshots = snapshots.then(|| SnapshotOptions::load_only(dir));
    let options = OpenOptions { limits: Limits::default(), snapshots, ..Default::default() };
    Ledger::open_opts(store, ledger_key(), Arc::new(clock().clone()), options).unwrap()
}

/// Builds the demo ledger in `dir` from `region`, leaving `held_back` events in the region for
/// the load phase. Returns the events appended.
fn build(dir: &Path, region: &mut DemoRegion, held_back: u64) -> u64 {
    let store = SledStore::open(&dir.join("store")).unwrap();
    zachetka::ledger::init_store(
        &store,
        ORIGIN,
        &ledger_key(),
        &region.authority_did(),
        Some(zachetka::rules::default_region()),
    )
    .unwrap();
    drop(store);
    let ledger = open(dir, false);
    let total = region.remaining().saturating_sub(held_back);
    let mut done = 0u64;
    let started = Instant::now();
    while done < total {
        let batch = region.next_batch((total - done).min(4000) as usize);
        if batch.is_empty() {
            break;
        }
        done += batch.len() as u64;
        pin_for(&batch);
        for r in ledger.append_blocking(batch) {
            r.expect("demo events are valid");
        }
    }
    eprintln!("built {done} entries in {:.1} s", started.elapsed().as_secs_f64());
    done
}

/// The bare rate of reading and parsing every entry, as the rebuild reads them (pages checked
/// against their leaf hashes and parsed on every core), with nothing folded: the rebuild's bound.
fn parse_rate(store: &dyn Store, size: u64) -> f64 {
    let started = Instant::now();
    let mut seen = 0u64;
    let mut at = 0;
    while at < size {
        let page = zachetka::read::read_facts(store, at, 4096.min(size - at)).unwrap();
        seen += page.iter().filter(|p| p.as_ref().and_then(ParsedFact::fact).is_some()).count() as u64;
        at += page.len() as u64;
    }
    assert_eq!(seen, size, "every entry is a fact of the vocabulary");
    size as f64 / started.elapsed().as_secs_f64()
}

/// The folds alone over the whole log, one thread: every page is read and parsed first (not
/// timed), then each model folds it in turn (timed, each model apart). Returns entries/s of all
/// the folds together and each model's microseconds per entry.
fn fold_rate(store: &dyn Store, size: u64) -> (f64, Vec<(&'static str, f64)>) {
    let mut models = zachetka_projections::model::all();
    let mut spent = vec![Duration::ZERO; models.len()];
    let mut at = 0;
    while at < size {
        let page = zachetka::read::read_facts(store, at, 4096.min(size - at)).unwrap();
        for (m, spent) in models.iter_mut().zip(spent.iter_mut()) {
            let started = Instant::now();
            for fact in page.iter().filter_map(|p| p.as_ref().and_then(ParsedFact::fact)) {
                m.apply(&fact);
            }
            *spent += started.elapsed();
        }
        at += page.len() as u64;
    }
    let total: f64 = spent.iter().map(Duration::as_secs_f64).sum();
    let per_model = models.iter().zip(&spent).map(|(m, s)| (m.name(), s.as_secs_f64() * 1e6 / size as f64)).collect();
    (size as f64 / total, per_model)
}

/// Ids a front end would read: (learner, subject) diaries, class journals, queue applications.
struct Targets {
    paths: Vec<String>,
}

fn targets(store: &dyn Store, size: u64) -> Targets {
    let mut diaries = std::collections::BTreeSet::new();
    let mut journals = std::collections::BTreeSet::new();
    let mut queue = std::collections::BTreeSet::new();
    let mut at = 0;
    while at < size && (diaries.len() < 500 || queue.len() < 200) {
        for bytes in store.entries(at, 4096.min(size - at)).unwrap() {
            let e: Value = serde_json::from_slice(&bytes).unwrap();
            let ev = &e["event"];
            let d = &ev["data"];
            match ev["type"].as_str().unwrap() {
                "journal.grade_recorded" if diaries.len() < 500 => {
                    let learner = ev["stream"].as_str().unwrap().trim_start_matches("learner/").to_owned();
                    diaries.insert(learner);
                    journals.insert(format!(
                        "{}/{}/{}",
                        d["institution"].as_str().unwrap(),
                        d["class"].as_str().unwrap(),
                        d["subject"].as_str().unwrap()
                    ));
                }
                "queue.application_submitted" if queue.len() < 200 => {
                    let territory = ev["stream"].as_str().unwrap().trim_start_matches("queue/kg/").to_owned();
                    queue.insert(format!("{territory}/applications/{}", d["application_id"].as_str().unwrap()));
                }
                _ => {}
            }
        }
        at += 4096;
    }
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_./".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let mut paths = Vec::new();
    paths.extend(diaries.iter().map(|l| format!("/v1/projections/diaries/{}", enc(l))));
    paths.extend(journals.iter().map(|j| format!("/v1/projections/journals/{}", enc(j))));
    paths.extend(queue.iter().map(|q| format!("/v1/projections/kindergarten-queues/{}", enc(q))));
    // `--views a,b`: only those read models' paths (which views set the tail, each alone).
    if let Some(views) = std::env::args().skip_while(|a| a != "--views").nth(1) {
        paths.retain(|p| views.split(',').any(|v| kind_of(p) == v));
    }
    assert!(!paths.is_empty());
    Targets { paths }
}

/// The read model a request path names.
fn kind_of(path: &str) -> &'static str {
    ["diaries", "journals", "kindergarten-queues"].into_iter().find(|k| path.contains(k)).unwrap_or("other")
}

/// One GET: the status and the body's length.
async fn get(conn: &mut BufReader<TcpStream>, path: &str, token: &str) -> Option<(u16, usize)> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n");
    conn.get_mut().write_all(head.as_bytes()).await.ok()?;
    read_response(conn).await.map(|(status, body)| (status, body.len()))
}

/// One load round: `reads` requests/s over `connections` keep-alive connections and `appends`
/// events/s submitted in-process, for `seconds`. Returns (p50, p99) in ms, the appends/s reached
/// and the read errors.
#[allow(clippy::too_many_arguments)] // a bench's knobs, each named at the one call
fn load_round(
    ledger: &Ledger,
    addr: &str,
    token: &str,
    targets: &Targets,
    held: &mut DemoRegion,
    reads: u64,
    appends: u64,
    seconds: u64,
) -> (f64, f64, f64, usize) {
    // Events of the region's continuation, signed ahead so the appender only submits; one local
    // day per batch (recorded on its day, see `pin_for`).
    let mut days: Vec<Vec<Value>> = Vec::new();
    let mut held_len = 0u64;
    while held_len < appends * seconds {
        let b = held.next_batch(4000);
        if b.is_empty() {
            break;
        }
        held_len += b.len() as u64;
        days.push(b);
    }
    // Every event prepared is sent (the next round's events may depend on them).
    let appender = {
        let ledger = ledger.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let per_tick = (appends / 100).max(1) as usize;
            let mut sent = 0usize;
            let mut pending: std::collections::VecDeque<zachetka::ledger::Pending> = Default::default();
            let chunks =
                days.iter().flat_map(|day| day.chunks(per_tick).enumerate().map(move |(i, c)| (i == 0, day, c)));
            for (tick, (first_of_day, day, chunk)) in chunks.enumerate() {
                if first_of_day {
                    // The day before is recorded on its own day: let it commit, then move the clock.
                    for p in pending.drain(..) {
                        for r in p.wait_blocking() {
                            r.expect("demo events are valid");
                        }
                    }
                    pin_for(day);
                }
                let due = Duration::from_millis(10 * tick as u64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait); // pacing the load generator, not synchronization
                }
                pending.push_back(ledger.submit(chunk.to_vec()).expect("admitted"));
                sent += chunk.len();
                while pending.len() > 64 {
                    for r in pending.pop_front().unwrap().wait_blocking() {
                        r.expect("demo events are valid");
                    }
                }
            }
            for p in pending {
                for r in p.wait_blocking() {
                    r.expect("demo events are valid");
                }
            }
            sent as f64 / started.elapsed().as_secs_f64()
        })
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let connections = 16u64;
    // The schedule is kept by a thread of its own sleeping to each request's time (to tens of
    // microseconds; tokio's timer rounds up to the next millisecond, which would count its own
    // error as latency), handing each request to its connection in turn. A connection still
    // waiting for its last answer takes the next one late: that wait counts (no coordinated
    // omission), as latency is measured from the scheduled time.
    let (queues, mut receivers): (Vec<_>, Vec<_>) =
        (0..connections).map(|_| tokio::sync::mpsc::unbounded_channel::<std::time::Instant>()).unzip();
    let total = reads * seconds;
    // Every connection open before the schedule starts.
    let conns: Vec<BufReader<TcpStream>> = rt.block_on(async {
        let mut conns = Vec::new();
        for _ in 0..connections {
            conns.push(BufReader::new(TcpStream::connect(addr).await.unwrap()));
        }
        conns
    });
    let ticker = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        for k in 0..total {
            let scheduled = started + Duration::from_secs_f64(k as f64 / reads as f64);
            if let Some(wait) = scheduled.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait); // keeping the load's schedule, not synchronization
            }
            let _ = queues[(k % connections) as usize].send(scheduled);
        }
    });
    let mut conns = conns.into_iter();
    let (latencies, errors) = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let token = token.to_owned();
            let paths: Vec<String> =
                targets.paths.iter().skip(c as usize).step_by(connections as usize).cloned().collect();
            let paths = if paths.is_empty() { targets.paths.clone() } else { paths };
            let (mut schedule, mut conn) = (receivers.remove(0), conns.next().unwrap());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity((total / connections) as usize);
                let mut errors = 0usize;
                let mut i = 0;
                while let Some(scheduled) = schedule.recv().await {
                    let path = &paths[i % paths.len()];
                    i += 1;
                    let sent = std::time::Instant::now();
                    match get(&mut conn, path, &token).await {
                        Some((200, bytes)) => {
                            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                            lat.push((kind_of(path), ms(scheduled.elapsed()), ms(sent.elapsed()), bytes))
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        (all, errors)
    });
    ticker.join().unwrap();
    let rate = appender.join().unwrap();
    // Per read model: the latency from the scheduled time (what counts), and the part of it from
    // the request's sending to its answer (the rest is the request sent late: the connection was
    // still waiting for its previous answer, or the client's runtime was not scheduled).
    for kind in ["diaries", "journals", "kindergarten-queues"] {
        let of_kind = || latencies.iter().filter(|(k, ..)| *k == kind);
        let mut l: Vec<f64> = of_kind().map(|(_, l, ..)| *l).collect();
        let mut served: Vec<f64> = of_kind().map(|(_, _, s, _)| *s).collect();
        let bytes: usize = of_kind().map(|(.., b)| *b).sum();
        if !l.is_empty() {
            let (p50, p99) = (percentile(&mut l, 0.5), percentile(&mut l, 0.99));
            let (s50, s99) = (percentile(&mut served, 0.5), percentile(&mut served, 0.99));
            let mean = bytes / l.len();
            println!(
                "  {kind}: {} requests, p50 {p50:.2} ms, p99 {p99:.2} ms (sent to answered: p50 {s50:.2}, p99 {s99:.2}), mean body {mean} bytes",
                l.len()
            );
        }
    }
    let mut all: Vec<f64> = latencies.iter().map(|(_, l, ..)| *l).collect();
    let p50 = percentile(&mut all, 0.5);
    let p99 = percentile(&mut all, 0.99);
    (p50, p99, rate, errors)
}

/// This process's CPU time (user + system) so far, in seconds (`/proc/self/stat`, 100 ticks/s):
/// beside a wall-clock rate on a shared machine, the CPU a figure cost is what others' load
/// changes least.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1-minute load average (how loaded the shared machine was during a figure).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_owned()
}

/// Whether `--phases` (default every phase: `rebuild,replays,open,reads`) names `phase`.
fn phase(phase: &str) -> bool {
    let phases = std::env::args().skip_while(|a| a != "--phases").nth(1);
    phases.is_none_or(|p| p.split(',').any(|x| x == phase))
}

/// Rebuild from zero against the bare read+parse rate, alternated round by round (so both see
/// the same load), then the folds alone over the whole log, each model apart.
fn rebuild_phase(store: &dyn Store, head: u64, rounds: usize) {
    let mut parse = Vec::new();
    let mut rebuild = Vec::new();
    let mut parse_cpu = Vec::new();
    let mut rebuild_cpu = Vec::new();
    let loads = load();
    for _ in 0..rounds {
        let cpu = cpu_seconds();
        parse.push(parse_rate(store, head));
        parse_cpu.push((cpu_seconds() - cpu) * 1e6 / head as f64);
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let models = zachetka::read::rebuild_from_zero(store, head, None, |_| {}).unwrap();
        rebuild.push(head as f64 / started.elapsed().as_secs_f64());
        rebuild_cpu.push((cpu_seconds() - cpu) * 1e6 / head as f64);
        drop(models);
    }
    let (fold, per_model) = fold_rate(store, head);
    for (name, us) in per_model {
        println!("  {name}: {us:.2} us per entry");
    }
    println!("folds alone (every model, one thread, the whole log parsed ahead page by page): {fold:.0} entries/s");
    let (parse, rebuild) = (median(&mut parse), median(&mut rebuild));
    println!(
        "rebuild of {} read models from {head} entries: {rebuild:.0} entries/s (median of {rounds}); bare read+parse {parse:.0} entries/s; ratio {:.2}x",
        zachetka_projections::model::all().len(),
        rebuild / parse
    );
    println!(
        "  CPU per entry (both cores): rebuild {:.2} us, read+parse {:.2} us (medians); load average {loads} before, {} after",
        median(&mut rebuild_cpu),
        median(&mut parse_cpu),
        load()
    );
}

/// The kindergarten queue's kept group replays (`kindergarten_queues::GroupReplay`) once every
/// application of the log has been answered once, nothing dropped: how many applications and
/// moves they hold, their bytes (the model's estimate), and the largest group; then the same
/// answers under the default budget (what it dropped), and with nothing kept (each answer
/// replays its group from zero: the time an answer of a dropped group costs).
fn replays_phase(store: &dyn Store, head: u64) {
    use zachetka_projections::models::kindergarten_queues::{KindergartenQueues, MOVE_BYTES, REPLAYS_BUDGET};
    use zachetka_projections::vocabulary::Event;
    use zachetka_projections::ReadModel;
    let mut unbounded = KindergartenQueues::with_replay_budget(usize::MAX);
    let mut bounded = KindergartenQueues::with_replay_budget(REPLAYS_BUDGET);
    // Nothing kept: every answer replays its group from zero (what an answer of a dropped group
    // costs).
    let mut none = KindergartenQueues::with_replay_budget(0);
    let mut applications: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    while at < head {
        let page = zachetka::read::read_facts(store, at, 4096.min(head - at)).unwrap();
        for fact in page.iter().filter_map(|p| p.as_ref().and_then(ParsedFact::fact)) {
            if let (Event::QueueApplicationSubmitted(d), true) = (fact.event, fact.stream.starts_with("queue/kg/")) {
                applications.push((fact.stream_id().to_owned(), d.application_id.clone()));
            }
            for m in [&mut unbounded, &mut bounded, &mut none] {
                m.apply(&fact);
            }
        }
        at += page.len() as u64;
    }
    for m in [&unbounded, &bounded, &none] {
        let started = Instant::now();
        for (territory, id) in &applications {
            m.view(&[territory, "applications", id]).unwrap();
        }
        let kept = m.replays_kept();
        let per_move = MOVE_BYTES;
        println!(
            "kindergarten-queue replays, budget {} bytes, after answering {} applications once ({:.2} s): {} groups kept, {} applications, {} moves ({} bytes of moves at {per_move} a move), {} bytes in all (estimate); {} dropped",
            kept.budget,
            applications.len(),
            started.elapsed().as_secs_f64(),
            kept.groups,
            kept.total.tracks,
            kept.total.moves,
            kept.total.moves * per_move,
            kept.total.bytes,
            kept.dropped
        );
        if let Some(((territory, group), size)) = kept.largest {
            println!(
                "  the largest: {territory}/{group}, {} applications, {} moves, {} bytes",
                size.tracks, size.moves, size.bytes
            );
        }
    }
}

/// A snapshot at the head (rebuilt from zero and written), then opens of the ledger from it and
/// without it: when the rules are ready (appends accepted) and when every model is loaded.
fn open_phase(store: Arc<dyn Store>, dir: &Path, head: u64, rounds: usize) {
    let config = store.config().unwrap().unwrap();
    let opts = SnapshotOptions::in_ledger_dir(dir, SnapshotPolicy::default());
    let started = Instant::now();
    // `--keep-snapshot`: a snapshot at the head that this build loads is used as it is (while
    // iterating on the open; the figure rebuilds it).
    let kept = opts.dir.join(zachetka_snapshots::file_name(head));
    let path = if std::env::args().any(|a| a == "--keep-snapshot") && kept.exists() {
        kept
    } else {
        zachetka::read::rebuild_snapshot(&*store, &config, &opts, |_| {}).unwrap().0
    };
    let snap_secs = started.elapsed().as_secs_f64();
    let snap_bytes = std::fs::metadata(&path).unwrap().len();
    // The ledger opens its own store on the directory.
    drop(store);
    println!("snapshot at {head}: {:.1} MB, rebuilt and written in {snap_secs:.2} s", snap_bytes as f64 / 1e6);
    let mut open_ready = Vec::new();
    let mut open_caught_up = Vec::new();
    let mut open_cpu = Vec::new();
    let mut store_alone = Vec::new();
    let mut oldest_lookup = Vec::new();
    // The first event's id: in the oldest sealed tier of the index, which opens in the background
    // once the ledger serves (a retry of it right after the open waits for that tier).
    let first = zachetka::store::sled::SledStore::open_read_only(&dir.join("store")).unwrap().entries(0, 1).unwrap();
    let first_id = zachetka::event::parse_entry(&first[0]).unwrap().id().to_owned();
    for _ in 0..rounds {
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let ledger = open(dir, true);
        open_ready.push(started.elapsed().as_secs_f64());
        // A client's retry of the first event, arriving as the open returns (beside the models'
        // load, as it would).
        let (store, id) = (ledger.store().clone(), first_id.clone());
        let retry = std::thread::spawn(move || {
            let lookup = Instant::now();
            assert!(store.id_record(&id).unwrap().is_some_and(|r| r.seq == 0));
            lookup.elapsed().as_secs_f64()
        });
        ledger.read_side().wait_applied_blocking(head);
        open_caught_up.push(started.elapsed().as_secs_f64());
        oldest_lookup.push(retry.join().unwrap());
        open_cpu.push(cpu_seconds() - cpu);
        assert!(ledger.read_side().status(head).snapshot_tree_size == Some(head), "opened from the snapshot");
    }
    // The store alone, its index included (what the ledger's open overlaps with the snapshot's
    // load): the part of the open that grows with the index (sled reads its page table).
    for _ in 0..rounds {
        let started = Instant::now();
        let store = SledStore::open(&dir.join("store")).unwrap();
        store_alone.push(started.elapsed().as_secs_f64());
        drop(store);
    }
    // `--no-full-open`: not the open without snapshots (a minute of rules replay).
    let (mut full_ready, mut full_caught_up) = (f64::NAN, f64::NAN);
    if !std::env::args().any(|a| a == "--no-full-open") {
        let started = Instant::now();
        let ledger = open(dir, false);
        full_ready = started.elapsed().as_secs_f64();
        ledger.read_side().wait_applied_blocking(head);
        full_caught_up = started.elapsed().as_secs_f64();
    }
    println!(
        "open of {head} entries from the snapshot: rules ready (appends accepted) {:.3} s, read models loaded {:.3} s (median of {rounds}); without snapshots: {full_ready:.2} s and {full_caught_up:.2} s",
        median(&mut open_ready),
        median(&mut open_caught_up)
    );
    println!(
        "  CPU of an open from the snapshot (both cores): {:.2} s (median); load average {}",
        median(&mut open_cpu),
        load()
    );
    println!(
        "  the store's open alone, its index's live tier included: {:.3} s (median; the ledger's open overlaps it with the snapshot's load)",
        median(&mut store_alone)
    );
    let tiers = SledStore::open(&dir.join("store")).unwrap().index_tiers().unwrap();
    println!(
        "  right after the open, a lookup of the first event's id (in the oldest of {} sealed index tiers, opening in the background): {:.3} s (median)",
        tiers.len() - 1,
        median(&mut oldest_lookup)
    );
}

fn main() {
    let entries = arg("--entries", 1_000_000);
    let rounds = arg("--rounds", 3) as usize;
    let seconds = arg("--seconds", 10);
    let reads = arg("--reads", 2000);
    let appends = arg("--appends", 5000);
    // `--dir D` keeps the built ledger in D and reuses it on the next run (the load phase then
    // regenerates the region and skips what D holds).
    let kept = std::env::args().skip_while(|a| a != "--dir").nth(1).map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir_path = kept.clone().unwrap_or_else(|| temp.path().to_owned());
    // The demo region's size for about `entries` events (the demo gives ~1.2 events per journal
    // event at this mix).
    // `--learners L [--teachers T] [--events E]` keeps the region's size and grows its records
    // instead (a region's log grows by years and records, not by learners: the open's figure
    // against the log's size is measured so).
    let learners = arg("--learners", entries * 3 / 20);
    let teachers = arg("--teachers", if learners == entries * 3 / 20 { entries / 80 } else { learners / 12 });
    let size = DemoSize { learners, teachers, events: arg("--events", entries * 17 / 20) };
    let mut region = DemoRegion::new(ORIGIN, size);
    let held_back = appends * seconds * rounds as u64 + 8000;
    let n = if dir_path.join("store").exists() {
        let have = SledStore::open(&dir_path.join("store")).unwrap().head().unwrap().unwrap().0.tree_size;
        // Only the reads phase appends the region's continuation.
        let mut skipped = if phase("reads") { 0 } else { have };
        while skipped < have {
            skipped += region.next_batch((have - skipped).min(4000) as usize).len() as u64;
        }
        eprintln!("reusing {have} entries in {}", dir_path.display());
        have
    } else {
        std::fs::create_dir_all(&dir_path).unwrap();
        build(&dir_path, &mut region, held_back)
    };
    let dir = &dir_path;
    let sled = SledStore::open(&dir.join("store")).unwrap();
    // An index of the earlier single-tier layout was sealed whole by this open: its filter is
    // built before the opens are measured.
    sled.wait_for_index_tiers();
    let store: Arc<dyn Store> = Arc::new(sled);
    let head = store.head().unwrap().unwrap().0.tree_size;
    assert_eq!(head, n);

    if phase("rebuild") {
        rebuild_phase(&*store, head, rounds);
    }
    if phase("replays") {
        replays_phase(&*store, head);
    }
    if !phase("open") && !phase("reads") {
        return;
    }

    // A snapshot at the head, then opens from it and without it.
    if phase("open") {
        open_phase(store, dir, head, rounds);
    } else {
        drop(store);
    }
    if !phase("reads") {
        return;
    }

    // Reads under appends, over HTTP on loopback with an auditor's token, once the read models
    // have caught up with the head (an open without a snapshot rebuilds them from zero on the
    // runner: reads measured during that measure the rebuild's lock holds, not the reads).
    let ledger = open(dir, true);
    let started = Instant::now();
    ledger.read_side().wait_applied_blocking(head);
    eprintln!("read models caught up with {head} entries in {:.1} s after the open", started.elapsed().as_secs_f64());
    let targets = targets(&**ledger.store(), head);
    let tokens = dir.join("tokens.json");
    let secret = zachetka::access::TokenSecret::generate();
    let (role, scope) = (zachetka::access::Role::Auditor, zachetka::access::Scope::Region);
    zachetka::access::create_token(&tokens, &secret, role, scope, "bench", 0).unwrap();
    let token = secret.expose();
    let access = zachetka::access::Access::tokens(&tokens);
    // The server's runtime as `zachetka serve` builds it (a worker per core).
    let rt = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(64).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let router = zachetka::api::router_with(ledger.clone(), access);
    rt.spawn(zachetka::api::server::serve(listener, router, Default::default(), std::future::pending::<()>()));
    // Each round with appends, then the same reads without them (the bound, at the same load).
    let (mut p50s, mut p99s, mut bound50s, mut bound99s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let loads = load();
    for r in 0..rounds {
        let (p50, p99, rate, errors) =
            load_round(&ledger, &addr, &token, &targets, &mut region, reads, appends, seconds);
        println!(
            "round {r}: reads p50 {p50:.2} ms p99 {p99:.2} ms at {reads}/s, appends {rate:.0}/s, {errors} read errors"
        );
        p50s.push(p50);
        p99s.push(p99);
        let (p50, p99, _, errors) = load_round(&ledger, &addr, &token, &targets, &mut region, reads, 0, seconds);
        println!("round {r} without appends: reads p50 {p50:.2} ms p99 {p99:.2} ms, {errors} read errors");
        bound50s.push(p50);
        bound99s.push(p99);
    }
    println!(
        "read-model requests ({} paths: diaries, class journals, queue positions) at {reads}/s with appends at {appends}/s: p50 {:.2} ms, p99 {:.2} ms (median of {rounds}); without appends: p50 {:.2} ms, p99 {:.2} ms; load average {loads} before, {} after",
        targets.paths.len(),
        median(&mut p50s),
        median(&mut p99s),
        median(&mut bound50s),
        median(&mut bound99s),
        load()
    );
}
