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
}
