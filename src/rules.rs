//! The education rules of `zachetka-projections` bound to the ledger: built from the ledger's
//! config, fed envelopes of events and entries, answered by lookups over the store, replayed on
//! open. Not the rules themselves (those live in `projections/`, pure).

use crate::keys;
use crate::store::{LedgerConfig, Store};
use serde_json::Value;
pub use zachetka_projections::{Envelope, Lookup, RegionConfig, RuleRefusal, Rules};

/// The rules' check for every key a grant names: a `did:key` whose point is on the curve and not
/// of small order (the same check signatures get).
pub fn strict_key_check(did: &str) -> Result<(), String> {
    let public = keys::public_from_did(did).map_err(|e| e.to_string())?;
    keys::verifying_key(&public).map(|_| ()).map_err(|e| e.to_string())
}

/// The rules a ledger enforces, fresh (nothing applied), or `None` for a bare signed log.
pub fn from_config(config: &LedgerConfig) -> Result<Option<Rules>, String> {
    let Some(v) = &config.rules else { return Ok(None) };
    let region: RegionConfig = serde_json::from_value(v.clone()).map_err(|e| format!("region config: {e}"))?;
    region.validate().map_err(|e| format!("region config: {e}"))?;
    Ok(Some(Rules::new(&config.origin, &config.authority, region).with_key_check(strict_key_check)))
}

/// The default region config as the JSON a ledger stores.
pub fn default_region() -> Value {
    serde_json::to_value(RegionConfig::default()).expect("region config serializes")
}

/// An envelope over an event object (as signed, or inside an entry) at position `seq`.
pub fn envelope(seq: u64, event: &Value) -> Option<Envelope<'_>> {
    let s = |k: &str| event.get(k).and_then(Value::as_str);
    Some(Envelope {
        seq,
        stream: s("stream")?,
        event_type: s("type")?,
        id: s("id")?,
        occurred_at: s("occurred_at")?,
        author: s("author")?,
        data: event.get("data")?,
    })
}

/// Stream and type of a committed event by id, through the store's id index.
pub fn store_lookup(store: &dyn Store, id: &str) -> Option<(String, String)> {
    let rec = store.id_record(id).ok()??;
    let bytes = store.entries(rec.seq, 1).ok()?.pop()?;
    let entry = crate::event::parse_entry(&bytes).ok()?;
    let ty = entry.event.get("type")?.as_str()?.to_owned();
    Some((entry.stream().to_owned(), ty))
}

struct StoreLookup<'a>(&'a dyn Store);

impl Lookup for StoreLookup<'_> {
    fn event(&self, id: &str) -> Option<(String, String)> {
        store_lookup(self.0, id)
    }
}

/// Rebuilds the rule state from the log: every entry in order, applied if its check passes (as
/// the audit does; an entry that fails is counted and left out). Returns the rules and how many
/// entries failed.
pub fn replay(mut rules: Rules, store: &dyn Store) -> Result<(Rules, u64), crate::store::StoreError> {
    let (_, failed) = replay_from(&mut rules, store, 0)?;
    Ok((rules, failed))
}

/// Applies the entries from `from` to the end of the log to `rules`. Returns the size it reached
/// and how many entries failed their check.
pub fn replay_from(rules: &mut Rules, store: &dyn Store, from: u64) -> Result<(u64, u64), crate::store::StoreError> {
    let mut from = from;
    let mut failed = 0u64;
    loop {
        let page = store.entries(from, 4096)?;
        if page.is_empty() {
            return Ok((from, failed));
        }
        for (i, bytes) in page.iter().enumerate() {
            let applied =
                crate::event::parse_entry(bytes).is_ok_and(|e| apply_entry(rules, from + i as u64, &e, store));
            failed += u64::from(!applied);
        }
        from += page.len() as u64;
    }
}

/// Applies one committed entry to `rules` if its check passes; returns whether it did.
pub fn apply_entry(rules: &mut Rules, seq: u64, entry: &crate::event::ParsedEntry, store: &dyn Store) -> bool {
    let Some(env) = envelope(seq, &entry.event) else { return false };
    match rules.check(&env, &StoreLookup(store)) {
        Ok(()) => {
            rules.apply(&env);
            true
        }
        Err(_) => false,
    }
}
