//! A migration's imports bounded to the migration (DOMAIN "Migration", "Ledger time"): an import
//! (`data.migrated_from`) is written by a key of the migration role, before the region's
//! migration cutover (`RegionConfig::migration_closes_at`, refusal `migration_closed`), and names
//! a legacy record no earlier import named (`import_record_repeated`).
//! Not the shape of `data.migrated_from` or the types a migration imports (the vocabulary) and
//! not the exemption of imports from the backdating limit (`Rules::check_ledger_time`).
//!
//! The state keeps one compact digest per imported record, not its strings: a region imports
//! millions of records, and 16 bytes of SHA-256 plus the entry's position stay small.

use crate::time::Nanos;
use crate::{refuse, RuleRefusal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The first 16 bytes of the SHA-256 of a (system, record) pair.
pub(crate) type RecordDigest = [u8; 16];

/// The legacy records imported so far.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Imports {
    /// Digest of (source system, source record id) -> the log position of the entry that imported it.
    #[serde(with = "crate::state::sorted_map")]
    records: HashMap<RecordDigest, u64>,
}

/// The digest of a legacy record's source: the system's name case-folded (`BARS` and `bars` name
/// one system) and the record id as written, each length-prefixed under a domain tag so that no
/// two pairs share an input.
pub(crate) fn record_digest(system: &str, record: &str) -> RecordDigest {
    let system = system.to_lowercase();
    let mut h = Sha256::new();
    h.update(b"zachetka/migrated-from/v1\n");
    for part in [system.as_bytes(), record.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let full: [u8; 32] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The source system and record id of an import (its shape already checked by the vocabulary).
pub(crate) fn source_of(data: &serde_json::Value) -> Option<(&str, &str)> {
    let from = data.get(crate::vocabulary::MIGRATED_FROM)?;
    Some((from.get("system")?.as_str()?, from.get("record")?.as_str()?))
}

impl Imports {
    /// Refuses an import of a record an earlier entry imported.
    pub fn check_new(&self, system: &str, record: &str) -> Result<(), RuleRefusal> {
        match self.records.get(&record_digest(system, record)) {
            None => Ok(()),
            Some(seq) => refuse(
                "import_record_repeated",
                format!(
                    "record {record} of legacy system {system} was already imported by entry {seq}; a legacy \
                     record is imported once (a change to it is a correction of that entry)"
                ),
            ),
        }
    }

    /// Records an accepted import at log position `seq` (the first one keeps the record).
    pub fn apply(&mut self, system: &str, record: &str, seq: u64) {
        self.records.entry(record_digest(system, record)).or_insert(seq);
    }
}

/// Refuses an import recorded at `recorded_at` (the ledger's time) at or after the region's
/// migration cutover `closes_at` (its text as the config gives it); a config without one keeps
/// imports open.
pub(crate) fn check_open(closes_at: Option<&str>, recorded_at: Nanos) -> Result<(), RuleRefusal> {
    let Some(text) = closes_at else { return Ok(()) };
    let Some(cutover) = crate::time::parse_instant(text) else {
        return refuse("config_invalid", format!("migration_closes_at {text} is not an rfc 3339 time"));
    };
    if recorded_at >= cutover {
        return refuse(
            "migration_closed",
            format!(
                "the region's migration closed at {text} (migration_closes_at) and this import is recorded at \
                 {}: after the cutover the ledger takes live records only",
                crate::format_instant(recorded_at)
            ),
        );
    }
    Ok(())
}
