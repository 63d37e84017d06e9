//! Where the read side's rebuild time goes, in instructions (run under callgrind, which counts
//! the same on a loaded machine): reading pages from the store (`read_all`), parsing them into
//! facts (`parse_all`), and folding them into every model (`fold_all`, and each model alone in
//! `fold_one`). Build and run:
//! `cargo build --release --example fold_profile && valgrind --tool=callgrind --fair-sched=yes
//! --collect-atstart=no --toggle-collect='*read_all*' --toggle-collect='*parse_all*'
//! --toggle-collect='*fold_all*' target/release/examples/fold_profile <ledger dir> [entries] [from]`,
//! then `callgrind_annotate --inclusive=yes`. Without valgrind it prints the wall times and
//! the cost of answering views. The ledger dir is one `zachetka demo` or the read bench
//! (`--dir`) left. `fold_profile --rebuild <dir> [rounds]` runs the parallel rebuild alone (for
//! `perf record`, and its CPU an entry beside the bare read+parse's), `fold_profile --parse <dir>
//! <entries> <from>` the parse alone (for callgrind: `--toggle-collect='*parse_all*'`).
//! Not a benchmark of record (that is `benches/read.rs`).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use zachetka::store::sled::SledStore;
use zachetka::store::Store;
use zachetka_projections::model::{self, ParsedFact, ReadModel};

#[inline(never)]
fn read_all(store: &dyn Store, from: u64, n: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n as usize);
    let mut at = from;
    while at < from + n {
        let page = store.raw_entries(at, 4096.min(from + n - at)).unwrap();
        at += page.len() as u64;
        out.extend(page.into_iter().map(|e| e.bytes.to_vec()));
    }
    out
}

#[inline(never)]
fn parse_all(entries: &[Vec<u8>]) -> Vec<ParsedFact> {
    // One leaf hash per entry, as the read side computes it (to check the stored one).
    entries.iter().map(|b| ParsedFact::from_entry(b).unwrap()).collect()
}

#[inline(never)]
fn fold_all(parsed: &[ParsedFact], models: &mut [Box<dyn ReadModel>]) -> Vec<(&'static str, f64)> {
    let mut times = Vec::new();
    for m in models.iter_mut() {
        let t = std::time::Instant::now();
        fold_one(parsed, &mut **m);
        times.push((m.name(), t.elapsed().as_secs_f64()));
    }
    times
}

#[inline(never)]
fn fold_one(parsed: &[ParsedFact], model: &mut dyn ReadModel) {
    for p in parsed {
        if let Some(f) = p.fact() {
            model.apply(&f);
        }
    }
}

/// Every model at `from` entries: loaded from `<dir>/profile-state-<from>` when an earlier run
/// left it there (so a profile of a window in the middle of the log starts from the state a
/// rebuild has there, without folding the prefix under valgrind), else folded and saved.
fn state_at(store: &dyn Store, dir: &std::path::Path, from: u64) -> Vec<Box<dyn ReadModel>> {
    let path = dir.join(format!("profile-state-{from}"));
    let mut models = model::all();
    if let Ok(bytes) = std::fs::read(&path) {
        let saved: Vec<(String, u32, Vec<u8>)> = model::decode_state("profile", &bytes).unwrap();
        for (m, (name, version, state)) in models.iter_mut().zip(&saved) {
            if m.name() == name && m.version() == *version && m.load(state).is_ok() {
                continue;
            }
            panic!("{} is stale: delete it", path.display());
        }
        return models;
    }
    let mut at = 0;
    while at < from {
        let page = store.entries(at, 4096.min(from - at)).unwrap();
        at += page.len() as u64;
        fold_all(&parse_all(&page), &mut models);
    }
    let saved: Vec<(String, u32, Vec<u8>)> =
        models.iter().map(|m| (m.name().to_owned(), m.version(), m.encode())).collect();
    std::fs::write(&path, model::encode_state(&saved)).unwrap();
    models
}

/// Where an open from a snapshot spends its time: reading and verifying the file, then decoding
/// each section alone (one thread), with its size. `fold_profile --snapshot <file> <ledger dir>`.
#[inline(never)]
fn snapshot_profile(file: &std::path::Path, dir: &std::path::Path) {
    let t = std::time::Instant::now();
    let snap = zachetka_snapshots::read(file).unwrap();
    eprintln!("read and verified {:.1} MB in {:.3} s", snap.file_len() as f64 / 1e6, t.elapsed().as_secs_f64());
    let store = SledStore::open_read_only(&dir.join("store")).unwrap();
    let config = store.config().unwrap().unwrap();
    let mut models = model::all();
    for s in snap.sections() {
        let t = std::time::Instant::now();
        let what = if s.name == zachetka_snapshots::RULES_SECTION {
            zachetka::read::snapshot::load_rules(&config, s.values.source(), s.bytes).map(drop)
        } else {
            let m = models.iter_mut().find(|m| m.name() == s.name).unwrap();
            zachetka_projections::lazy::load_apart(s.values.source(), || m.load(s.bytes)).map_err(|e| e.to_string())
        };
        let secs = t.elapsed().as_secs_f64();
        eprintln!("  {}: {:.1} MB decoded in {secs:.3} s ({what:?})", s.name, s.bytes.len() as f64 / 1e6);
    }
    let t = std::time::Instant::now();
    drop(models);
    eprintln!("models dropped in {:.3} s", t.elapsed().as_secs_f64());
}

/// This process's CPU time (user + system) so far, in seconds (`/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The rebuild from zero alone (what `perf record` should see, without the read bench's region
/// generation), alternated with the bare read+parse of the same entries: CPU microseconds an
/// entry and the wall rate of each, round by round. `fold_profile --rebuild <ledger dir> [rounds]`.
fn rebuild_profile(dir: &std::path::Path, rounds: usize) {
    let store = SledStore::open_read_only(&dir.join("store")).unwrap();
    let size = store.head().unwrap().unwrap().0.tree_size;
    for round in 0..rounds {
        let (cpu, t) = (cpu_seconds(), std::time::Instant::now());
        let mut at = 0;
        while at < size {
            at += zachetka::read::read_facts(&store, at, 4096.min(size - at)).unwrap().len() as u64;
        }
        let (parse_cpu, parse_s) = (cpu_seconds() - cpu, t.elapsed().as_secs_f64());
        let (cpu, t) = (cpu_seconds(), std::time::Instant::now());
        let models = zachetka::read::rebuild_from_zero(&store, size, None, |_| {}).unwrap();
        let (rebuild_cpu, rebuild_s) = (cpu_seconds() - cpu, t.elapsed().as_secs_f64());
        drop(models);
        let us = |s: f64| s * 1e6 / size as f64;
        eprintln!(
            "round {round}: rebuild {:.0}/s {:.2} us CPU an entry; read+parse {:.0}/s {:.2} us CPU an entry",
            size as f64 / rebuild_s,
            us(rebuild_cpu),
            size as f64 / parse_s,
            us(parse_cpu)
        );
    }
}

fn main() {
    // `--parse <ledger dir> <entries> <from>`: only read and parse (what callgrind should count
    // of a parse change: `--toggle-collect='*parse_all*'`).
    if std::env::args().nth(1).as_deref() == Some("--parse") {
        let args: Vec<String> = std::env::args().collect();
        let store = SledStore::open_read_only(&std::path::Path::new(&args[2]).join("store")).unwrap();
        let entries = read_all(&store, args[4].parse().unwrap(), args[3].parse().unwrap());
        let t = std::time::Instant::now();
        let parsed = parse_all(&entries);
        let us = t.elapsed().as_secs_f64() * 1e6 / parsed.len() as f64;
        eprintln!("{} entries parsed, one thread: {us:.2} us/entry", parsed.len());
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("--rebuild") {
        let args: Vec<String> = std::env::args().collect();
        return rebuild_profile(args[2].as_ref(), args.get(3).map_or(3, |r| r.parse().unwrap()));
    }
    if std::env::args().nth(1).as_deref() == Some("--snapshot") {
        let args: Vec<String> = std::env::args().collect();
        return snapshot_profile(args[2].as_ref(), args[3].as_ref());
    }
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("a ledger dir"));
    let n: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(50_000);
    // Where the entries start: a log's first entries are mostly the registry and queues, its
    // middle mostly the journal.
    let from: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(0);
    let store = SledStore::open_read_only(&dir.join("store")).unwrap();
    let mut models = model::all();
    if from > 0 {
        models = state_at(&store, &dir, from);
    }
    let t = std::time::Instant::now();
    let entries = read_all(&store, from, n);
    let read_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let parsed = parse_all(&entries);
    let parse_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let times = fold_all(&parsed, &mut models);
    let fold_s = t.elapsed().as_secs_f64();
    let us = |s: f64| s * 1e6 / parsed.len() as f64;
    eprintln!(
        "{} entries, one thread: read {:.2} us/entry, parse {:.2} us/entry, fold {:.2} us/entry",
        parsed.len(),
        us(read_s),
        us(parse_s),
        us(fold_s)
    );
    for (name, s) in times {
        eprintln!("  {name}: {:.2} us/entry", us(s));
    }
    // The cost of answering views (what a read request pays beside HTTP): one path of each kind
    // per learner, class journal and queue application seen in the entries.
    let mut paths: Vec<(&str, Vec<String>)> = Vec::new();
    for p in &parsed {
        let Some(f) = p.fact() else { continue };
        match f.event {
            zachetka_projections::vocabulary::Event::GradeRecorded(d) => {
                paths.push(("diaries", vec![f.stream_id().to_owned()]));
                paths.push(("journals", vec![d.institution.clone(), d.class.clone(), d.subject.clone()]));
            }
            zachetka_projections::vocabulary::Event::QueueApplicationSubmitted(d) => {
                let t = f.stream_id().to_owned();
                paths.push(("kindergarten-queues", vec![t, "applications".into(), d.application_id.clone()]));
            }
            _ => {}
        }
    }
    // Queue applications are filed early in a log: a window in its middle has few or none, so
    // they are taken from the entries before it too (the views answer on the state at the end).
    let mut queue_paths = 0;
    let mut at = 0;
    while at < from && queue_paths < 2000 {
        for bytes in store.entries(at, 4096.min(from - at)).unwrap() {
            let Ok(p) = ParsedFact::from_entry(&bytes) else { continue };
            let Some(f) = p.fact() else { continue };
            if let zachetka_projections::vocabulary::Event::QueueApplicationSubmitted(d) = f.event {
                let t = f.stream_id().to_owned();
                paths.push(("kindergarten-queues", vec![t, "applications".into(), d.application_id.clone()]));
                queue_paths += 1;
            }
        }
        at += 4096;
    }
    // Each path is answered in three rounds, each on the model reloaded from its own state (which
    // empties answer caches), and keeps its fastest time: the least disturbed by a loaded machine.
    for kind in ["diaries", "journals", "kindergarten-queues"] {
        let m = models.iter_mut().find(|m| m.name() == kind).unwrap();
        let chosen: Vec<Vec<&str>> = paths
            .iter()
            .filter(|(k, _)| *k == kind)
            .take(2000)
            .map(|(_, p)| p.iter().map(String::as_str).collect())
            .collect();
        let mut times = vec![f64::MAX; chosen.len()];
        let mut bytes = 0usize;
        let state = m.encode();
        for _round in 0..3 {
            m.load(&state).unwrap();
            bytes = 0;
            for (t, segs) in times.iter_mut().zip(&chosen) {
                let started = std::time::Instant::now();
                let v = m.view(segs).unwrap();
                let body = v.body.to_string();
                *t = t.min(started.elapsed().as_secs_f64() * 1e6);
                bytes += body.len();
            }
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if !times.is_empty() {
            let n = times.len();
            eprintln!(
                "{kind}: {n} views, fastest of 3 each: p50 {:.0} us, p99 {:.0} us, max {:.0} us, mean body {} bytes",
                times[n / 2],
                times[(n - 1) * 99 / 100],
                times[n - 1],
                bytes / n
            );
        }
    }
}
