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

#[test]
fn sigkill_during_appends_loses_no_acknowledged_entry() {
    let dir = cli_ledger_dir();
    let (seed, mut rng) = seeded("crash test");
    let mut acked: Vec<(u64, Hash)> = Vec::new();
    for round in 0..6u64 {
        // Kill after this many receipts (each line of input is one commit of 10 events).
        let mut node = AppendNode::spawn(dir.path(), &[], (round + 1) * 100_000);
        node.read_receipts(20 + rng(300) as usize, &mut acked);
        node.kill();
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        check_acknowledged(&store, &acked, &format!("round {round} (seed {seed})"));
    }
    assert!(acked.len() >= 6 * 20);
}

/// The same with the index sealed into a new tier every 4 commits, so kills land before, during
/// and after seals: every acknowledged entry is found through the index (the audit looks each
/// one up by id and stream).
#[test]
fn sigkill_while_index_tiers_are_sealed_loses_no_acknowledged_entry() {
    let dir = cli_ledger_dir();
    let (seed, mut rng) = seeded("crash test, index tiers");
    let mut acked: Vec<(u64, Hash)> = Vec::new();
    for round in 0..4u64 {
        let mut node = AppendNode::spawn(dir.path(), &[("ZACHETKA_INDEX_TIER_ENTRIES", "40")], (round + 1) * 100_000);
        node.read_receipts(20 + rng(100) as usize, &mut acked);
        node.kill();
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        check_acknowledged(&store, &acked, &format!("round {round} (seed {seed})"));
        let tiers = store.index_tiers().unwrap();
        assert!(tiers.len() as u64 > acked.len() as u64 / 80, "round {round}: sealed every 40 entries: {tiers:?}");
    }
}
