//! When to take a snapshot and how many to keep: a config value and one pure decision. Not the
//! scheduling (the ledger counts entries and seconds since its last snapshot and asks `due`).

use serde::{Deserialize, Serialize};

/// When the ledger writes a snapshot, and how many it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotPolicy {
    /// Take one after this many new entries; 0 turns this trigger off.
    pub every_entries: u64,
    /// Take one after this many seconds if at least one entry is new; 0 turns this trigger off.
    pub every_seconds: u64,
    /// Snapshots kept after each write (the newest ones; at least 1).
    pub keep: usize,
}

impl Default for SnapshotPolicy {
    /// Every 100,000 entries (a replay of that many takes about 0.5 s at ~5 us an entry) or every
    /// hour with new entries; keep 2 (the newest, and one to fall back on if it is damaged).
    fn default() -> Self {
        Self { every_entries: 100_000, every_seconds: 3600, keep: 2 }
    }
}

impl SnapshotPolicy {
    /// Whether a snapshot is due, `entries_since` entries and `seconds_since` seconds after the
    /// last one. Never due without a new entry: the state would be the same.
    pub fn due(&self, entries_since: u64, seconds_since: u64) -> bool {
        if entries_since == 0 {
            return false;
        }
        (self.every_entries > 0 && entries_since >= self.every_entries)
            || (self.every_seconds > 0 && seconds_since >= self.every_seconds)
    }

    /// Checks the values a config may hold (`keep` at least 1).
    pub fn validate(&self) -> Result<(), String> {
        if self.keep == 0 {
            return Err("snapshots.keep must be at least 1".into());
        }
        Ok(())
    }
}
