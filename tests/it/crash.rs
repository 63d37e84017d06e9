//! Crash tests: a real `zachetka append` process is killed with SIGKILL while appending; after
//! every kill the store must hold every acknowledged entry (a receipt printed on stdout) with the
//! same leaf hash, may hold unacknowledged whole entries, and must audit clean.

use super::support::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use zachetka::merkle::{Hash, HashB64};
use zachetka::store::sled::SledStore;
use zachetka::store::Store;

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
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("crash test seed={seed}");
    let mut rng = seed;
    let mut next_id = 0u64;
    let mut acked: Vec<(u64, Hash)> = Vec::new();
    for round in 0..6 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill after this many receipts (each line of input is one commit of 10 events).
        let kill_after = 20 + (rng % 300) as usize;
        let mut child = Command::new(env!("CARGO_BIN_EXE_zachetka"))
            .args(["append", "--dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let first = next_id;
        next_id += 100_000;
        let writer = std::thread::spawn(move || {
            for line in 0..10_000u64 {
                let batch: Vec<_> = (0..10)
                    .map(|i| grade(first + line * 10 + i, &format!("learner/{}", (line + i) % 13), None))
                    .collect();
                let mut text = serde_json::to_string(&batch).unwrap();
                text.push('\n');
                if stdin.write_all(text.as_bytes()).is_err() {
                    return; // the child is gone
                }
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut got = 0;
        while got < kill_after {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "round {round}: the child stopped early");
            let receipt: serde_json::Value = serde_json::from_str(&line).unwrap();
            let seq = receipt["seq"].as_u64().unwrap_or_else(|| panic!("round {round}: refusal {line}"));
            acked.push((seq, Hash::from_b64(receipt["leaf_hash"].as_str().unwrap()).unwrap()));
            got += 1;
        }
        // SIGKILL: no destructor, no flush, mid-batch most of the time.
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = writer.join();

        let store = SledStore::open(&dir.path().join("store")).unwrap();
        let (head, _) = store.head().unwrap().unwrap();
        for (seq, leaf) in &acked {
            assert!(
                *seq < head.tree_size,
                "round {round}: acknowledged entry {seq} is beyond the head {}",
                head.tree_size
            );
            let entry = &store.entries(*seq, 1).unwrap()[0];
            assert_eq!(zachetka::merkle::leaf_hash(entry), *leaf, "round {round}: entry {seq} changed");
        }
        let report = zachetka::audit::audit(&store, &|_, _| {}).unwrap();
        assert!(report.is_clean(), "round {round} (seed {seed}): {:#?}", report.violations);
    }
    assert!(acked.len() >= 6 * 20);
}
