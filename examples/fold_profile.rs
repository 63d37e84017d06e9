//! Where the read models' fold time goes, in instructions (run under callgrind, which counts the
//! same on a loaded machine): `cargo build --release --example fold_profile && valgrind
//! --tool=callgrind --fair-sched=yes --collect-atstart=no --toggle-collect='*fold_all*'
//! target/release/examples/fold_profile <ledger dir> [entries]`, then `callgrind_annotate
//! --inclusive=yes`. The ledger dir is one `zachetka demo` or the read bench (`--dir`) left.

use rayon::prelude::*;
use zachetka::store::sled::SledStore;
use zachetka::store::Store;
use zachetka_projections::model::{self, ParsedFact, ReadModel};

#[inline(never)]
fn fold_all(parsed: &[ParsedFact], models: &mut [Box<dyn ReadModel>]) {
    for p in parsed {
        if let Some(f) = p.fact() {
            for m in models.iter_mut() {
                m.apply(&f);
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("a ledger dir"));
    let n: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(50_000);
    let store = SledStore::open_read_only(&dir.join("store")).unwrap();
    let parsed: Vec<ParsedFact> =
        store.entries(0, n).unwrap().par_iter().map(|b| ParsedFact::from_entry(b).unwrap()).collect();
    let mut models = model::all();
    let started = std::time::Instant::now();
    fold_all(&parsed, &mut models);
    eprintln!("{} entries folded in {:.3} s", parsed.len(), started.elapsed().as_secs_f64());
    // The cost of answering views (what a read request pays beside HTTP): one path of each kind
    // per learner, class journal and queue application seen in the entries.
    let mut paths: Vec<(&str, Vec<String>)> = Vec::new();
    for p in &parsed {
        let e = &p.event;
        let d = &e["data"];
        let stream = e["stream"].as_str().unwrap_or("");
        match e["type"].as_str().unwrap_or("") {
            "journal.grade_recorded" => {
                let learner = stream.trim_start_matches("learner/").to_owned();
                paths.push(("diaries", vec![learner]));
                let j = ["institution", "class", "subject"].map(|k| d[k].as_str().unwrap_or("").to_owned());
                paths.push(("journals", j.to_vec()));
            }
            "queue.application_submitted" => {
                let t = stream.trim_start_matches("queue/kg/").to_owned();
                paths.push((
                    "kindergarten-queues",
                    vec![t, "applications".into(), d["application_id"].as_str().unwrap().into()],
                ));
            }
            _ => {}
        }
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
