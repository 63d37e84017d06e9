//! The education rules of `zachetka-rules` bound to the ledger: built from the ledger's config,
//! fed envelopes of events and entries, answered by lookups over the store's id index, replayed
//! on open. Not the rules themselves (those live in `rules/`, pure), and no second way to run
//! them: append, replay and audit all call `Rules::check_and_apply`.

use crate::keys;
use crate::refusal::{Code, Refusal};
use crate::store::{LedgerConfig, Store, StoreError};
use serde_json::Value;
pub use zachetka_rules::{Envelope, Lookup, LookupError, RegionConfig, RuleError, RuleRefusal, Rules};

pub use crate::keys::strict_key_check;

/// The region config of a ledger with rules, checked; `None` for a bare signed log.
pub fn region_of(config: &LedgerConfig) -> Result<Option<RegionConfig>, String> {
    let Some(v) = &config.rules else { return Ok(None) };
    region_from_json(v.clone()).map(Some)
}

/// A region config from its JSON (as `init --rules` and `verify --region` read it), checked.
pub fn region_from_json(v: Value) -> Result<RegionConfig, String> {
    let region: RegionConfig = serde_json::from_value(v).map_err(|e| format!("region config: {e}"))?;
    region.validate().map_err(|e| format!("region config: {e}"))?;
    Ok(region)
}

/// The rules a ledger enforces, fresh (nothing applied), or `None` for a bare signed log.
pub fn from_config(config: &LedgerConfig) -> Result<Option<Rules>, String> {
    let Some(region) = region_of(config)? else { return Ok(None) };
    Ok(Some(
        Rules::new(&config.origin, &config.authority, region)
            .with_key_check(strict_key_check)
            .with_ledger_key(&ledger_did(config)?),
    ))
}

/// The ledger key as `did:key`, read from the config's checkpoint verifier key: the author of
/// the ledger's own events (completeness commitments).
pub fn ledger_did(config: &LedgerConfig) -> Result<String, String> {
    crate::checkpoint::public_key_of_verifier_key(&config.verifier_key)
        .map(|pk| keys::did_from_public(&pk))
        .ok_or_else(|| format!("verifier key {:?} holds no ed25519 key", config.verifier_key))
}

/// The default region config as the JSON a ledger stores.
pub fn default_region() -> Value {
    serde_json::to_value(RegionConfig::default()).expect("region config serializes")
}

/// An envelope over an event object (as signed, or inside an entry) at position `seq`, recorded
/// by the ledger at `recorded_at_unix` (the entry's `recorded_at`: the time the sequencer writes
/// into the entry when it admits the event, or reads back from it on replay and audit).
pub fn envelope(seq: u64, recorded_at_unix: i64, event: &Value) -> Option<Envelope<'_>> {
    Envelope::of_event(seq, recorded_at_unix, event)
}

/// Stream and type of a committed event by id, from the store's id index alone (the id record
/// keeps them: no entry is read).
pub fn store_lookup(store: &dyn Store, id: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(store.id_record(id)?.map(|rec| (rec.stream, rec.event_type)))
}

/// The rules' lookup over a store. A store error is a `LookupError` carrying it, never "no such
/// event": an outage must not turn into a rule refusal.
pub struct StoreLookup<'a>(pub &'a dyn Store);

impl Lookup for StoreLookup<'_> {
    fn event(&self, id: &str) -> Result<Option<(String, String)>, LookupError> {
        store_lookup(self.0, id).map_err(|e| LookupError::new(id, e))
    }
}

/// The store error behind a failed lookup (the one `StoreLookup` passed in), so that it is
/// classified as any other store error (unavailable, damaged...).
pub fn lookup_store_error(e: LookupError) -> StoreError {
    match e.source.downcast::<StoreError>() {
        Ok(store) => *store,
        Err(other) => StoreError::Rules(format!("couldn't look up event {}: {other}", e.id)),
    }
}

/// A rule refusal as the ledger answers it: the rule's code, with the kind the rules gave it
/// (which decides the HTTP status in `refusal.rs`). The rules' `event_malformed` (a type's data
/// missing a field or of the wrong shape) is the same code as the envelope parser's, so it is
/// that code, with its one status (400), not a rule invariant's 422.
pub fn refusal(r: RuleRefusal) -> Refusal {
    let code = if r.code == Code::EventMalformed.as_str() { Code::EventMalformed } else { Code::Rule(r.code, r.kind) };
    Refusal::new(code, r.message)
}

/// Rebuilds the rule state from the log: every entry in order, applied if its check passes (as
/// the audit does; an entry that fails is counted and left out). Returns the rules and how many
/// entries failed.
pub fn replay(mut rules: Rules, store: &dyn Store) -> Result<(Rules, u64), StoreError> {
    let (_, failed) = replay_from(&mut rules, store, 0)?;
    Ok((rules, failed))
}

/// Applies the entries from `from` to the end of the log to `rules`. Returns the size it reached
/// and how many entries failed their check. A lookup the store could not answer fails the replay
/// (it must not leave an entry out of the rule state as if the rules had refused it).
pub fn replay_from(rules: &mut Rules, store: &dyn Store, from: u64) -> Result<(u64, u64), StoreError> {
    let mut from = from;
    let mut failed = 0u64;
    loop {
        let page = store.entries(from, 4096)?;
        if page.is_empty() {
            return Ok((from, failed));
        }
        for (i, bytes) in page.iter().enumerate() {
            let applied = match crate::event::parse_entry(bytes) {
                Ok(e) => apply_entry(rules, from + i as u64, &e, store)?,
                Err(_) => false,
            };
            failed += u64::from(!applied);
        }
        from += page.len() as u64;
    }
}

/// Applies one committed entry to `rules` (`check_and_apply`); returns whether the rules
/// accepted it, or the store error a lookup met.
pub fn apply_entry(
    rules: &mut Rules,
    seq: u64,
    entry: &crate::event::ParsedEntry,
    store: &dyn Store,
) -> Result<bool, StoreError> {
    let Some(env) = envelope(seq, entry.meta.recorded_at_unix, &entry.event) else { return Ok(false) };
    match rules.check_and_apply(&env, &StoreLookup(store)) {
        Ok(()) => Ok(true),
        Err(RuleError::Refused(_)) => Ok(false),
        Err(RuleError::Lookup(e)) => Err(lookup_store_error(e)),
    }
}
