//! Crash tests: a real `zachetka append` process is killed with SIGKILL while appending; after
//! every kill the store must hold every acknowledged entry (a receipt printed on stdout) with the
//! same leaf hash, may hold unacknowledged whole entries, and must audit clean.

use super::support::*;
use zachetka::merkle::Hash;
use zachetka::store::sled::SledStore;

/// Writes a ledger directory the CLI can open (ledger.key beside the store).
fn cli_ledger_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), ledger_key().to_key_file()).unwrap();
    drop(new_store(&dir.path().join("store")));
    dir
}

/// Runs `rounds` of: a `zachetka append` (with `envs`) killed after 20 to 20 + `spread` receipts,
/// then the store opened and every acknowledged entry checked; `after` looks at the store too.
fn kill_rounds(name: &str, rounds: u64, spread: u64, envs: &[(&str, &str)], after: impl Fn(&SledStore, usize, &str)) {
    let dir = cli_ledger_dir();
    let (seed, mut rng) = seeded(name);
    let mut acked: Vec<(u64, Hash)> = Vec::new();
    for round in 0..rounds {
        // Kill after this many receipts (each line of input is one commit of 10 events).
        let mut node = AppendNode::spawn(dir.path(), envs, (round + 1) * 100_000);
        node.read_receipts(20 + rng(spread) as usize, &mut acked);
        node.kill();
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        let context = format!("round {round} (seed {seed})");
        check_acknowledged(&store, &acked, &context);
        after(&store, acked.len(), &context);
    }
    assert!(acked.len() as u64 >= rounds * 20);
}

#[test]
fn sigkill_during_appends_loses_no_acknowledged_entry() {
    kill_rounds("crash test", 6, 300, &[], |_, _, _| {});
}

/// The same with the index sealed into a new tier every 4 commits, so kills land before, during
/// and after seals: every acknowledged entry is found through the index (the audit looks each
/// one up by id and stream).
#[test]
fn sigkill_while_index_tiers_are_sealed_loses_no_acknowledged_entry() {
    kill_rounds(
        "crash test, index tiers",
        4,
        100,
        &[("ZACHETKA_INDEX_TIER_ENTRIES", "40")],
        |store, acked, context| {
            let tiers = store.index_tiers().unwrap();
            assert!(tiers.len() > acked / 80, "{context}: sealed every 40 entries: {tiers:?}");
        },
    );
}
