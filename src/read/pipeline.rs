//! How the read side moves pages of entries through the models on every core: a page is read
//! and its entries checked against their stored leaf hashes and parsed once, in parallel; then
//! every model folds the page as a task of its own (and the rule copy, when kept, as one more),
//! while the next page is read and parsed beside them, so neither core waits on the other's
//! kind of work. The pool's work stealing balances the folds (of unequal cost) and the parse.
//! A few entries (the runner following appends) are parsed and folded on the calling thread
//! instead, each model under its own lock only while it folds.
//! Not the runner's policy (when to fold, snapshots, commitments: `super`), and not the models.

use super::Slot;
use crate::merkle::Hash;
use crate::rules::Rules;
use crate::store::{Store, StoreError};
use rayon::prelude::*;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use zachetka_projections::model::{Fact, ParsedFact};

/// Entries parsed on every core, from `from` on.
pub(super) struct Page {
    pub from: u64,
    /// Each entry parsed (`None`: its bytes are not an entry the folds read; every model skips it).
    pub facts: Vec<Option<ParsedFact>>,
    /// Each entry's `recorded_at` and event as JSON, when the rules are replayed beside the
    /// models (the rules read the event's JSON; the models do not).
    pub events: Option<Vec<Option<(i64, Value)>>>,
}

impl Page {
    /// One past the page's last entry.
    pub fn end(&self) -> u64 {
        self.from + self.facts.len() as u64
    }
}

/// Reads entries `from..from + n` (all of them: fewer is a damaged store), checks each against
/// its stored leaf hash (damage is an error naming the entry) and parses it, on every core.
pub(super) fn read_page(store: &dyn Store, from: u64, n: u64, with_events: bool) -> Result<Page, StoreError> {
    let raw = store.raw_entries(from, n)?;
    if raw.len() as u64 != n {
        return Err(StoreError::Corrupt {
            what: "entry",
            position: from + raw.len() as u64,
            detail: "missing below the head".into(),
        });
    }
    let check = |e: &crate::store::RawEntry| {
        if let Some(detail) = &e.damaged {
            return Err(StoreError::Corrupt { what: "entry record", position: e.seq, detail: detail.clone() });
        }
        let leaf = crate::merkle::leaf_hash(&e.bytes);
        if e.hashes.first() != Some(&leaf) {
            return Err(StoreError::Corrupt {
                what: "entry",
                position: e.seq,
                detail: "its bytes do not hash to the stored leaf hash".into(),
            });
        }
        Ok(ParsedFact::from_entry_with_leaf(&e.bytes, leaf.0).ok())
    };
    // A few entries (the runner following appends) are parsed on this thread (see `fold_page`).
    let small = raw.len() < PARALLEL_FROM;
    let facts = if small {
        raw.iter().map(check).collect::<Result<Vec<_>, _>>()?
    } else {
        raw.par_iter().map(check).collect::<Result<Vec<_>, _>>()?
    };
    let events = with_events.then(|| {
        if small {
            raw.iter().map(|e| entry_event(&e.bytes)).collect()
        } else {
            raw.par_iter().map(|e| entry_event(&e.bytes)).collect()
        }
    });
    Ok(Page { from, facts, events })
}

/// An entry's `recorded_at` (unix seconds) and event as JSON, read as `ParsedFact` reads them.
fn entry_event(bytes: &[u8]) -> Option<(i64, Value)> {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        // Required, as `ParsedFact` requires it.
        #[serde(rename = "seq")]
        _seq: u64,
        #[serde(borrow)]
        recorded_at: std::borrow::Cow<'a, str>,
        event: Value,
    }
    let e: Stored = serde_json::from_slice(bytes).ok()?;
    Some((zachetka_formats::time::parse_rfc3339(&e.recorded_at)?, e.event))
}

/// The rule state replayed beside the models, at its own cursor.
pub(super) struct RuleReplay<'r> {
    pub rules: &'r mut Rules,
    pub cursor: &'r mut u64,
}

/// Pages shorter than this are folded on the calling thread: spreading a few entries over the
/// pool costs more than it saves, and under appends the pool is busy verifying.
const PARALLEL_FROM: usize = 1024;

/// Folds `page` into every model (each a task when `parallel`) and into the rule replay when
/// given, while `beside` runs (the next page's read); returns what `beside` gave and the rules'
/// outcome (a store error a rule lookup met). Each model's lock is held only while that model
/// folds: a view of one model never waits for another's fold, for the rules or for the next
/// page. `root` is the root of the tree the page ends at, when the caller knows it; each model's
/// entry of `cursors` follows its cursor.
#[allow(clippy::too_many_arguments)] // one call in the runner, one in the rebuild
pub(super) fn fold_page<R: Send>(
    slots: &[RwLock<Slot>],
    cursors: &[AtomicU64],
    page: &Page,
    root: Option<Hash>,
    rules: Option<RuleReplay<'_>>,
    store: &dyn Store,
    parallel: bool,
    beside: impl FnOnce() -> R + Send,
) -> (R, Result<(), StoreError>) {
    let mut ruled = Ok(());
    let mut got = None;
    // Each entry's fact once for every model.
    let facts: Vec<Option<Fact<'_>>> = page.facts.iter().map(|p| p.as_ref().and_then(ParsedFact::fact)).collect();
    let facts = &facts;
    if !parallel || page.facts.len() < PARALLEL_FROM {
        // On this thread: a few entries, or the runner following appends, whose locks must not
        // be held while tasks wait behind other work in the shared pool (the ledger verifies
        // signatures there, in batches of up to a hundred milliseconds).
        slots.iter().zip(cursors).for_each(|(slot, cursor)| fold_slot(slot, cursor, page, facts, root));
        if let Some(replay) = rules {
            ruled = replay_rules(replay, page, store);
        }
        return (beside(), ruled);
    }
    rayon::scope(|s| {
        for (slot, cursor) in slots.iter().zip(cursors) {
            s.spawn(move |_| fold_slot(slot, cursor, page, facts, root));
        }
        if let Some(replay) = rules {
            let ruled = &mut ruled;
            s.spawn(move |_| *ruled = replay_rules(replay, page, store));
        }
        got = Some(beside());
    });
    (got.expect("the scope ran it"), ruled)
}

/// Folds the page's entries (`facts`) from the slot's cursor on into its model, under the slot's
/// lock (and publishes its new cursor); a slot that ends at the page's end learns `root`, the
/// root there.
fn fold_slot(slot: &RwLock<Slot>, cursor: &AtomicU64, page: &Page, facts: &[Option<Fact<'_>>], root: Option<Hash>) {
    let end = page.end();
    let mut slot = slot.write().expect("slot lock");
    if slot.cursor >= page.from && slot.cursor < end {
        let skip = (slot.cursor - page.from) as usize;
        let model = &mut *slot.model;
        for fact in facts[skip..].iter().flatten() {
            model.apply(fact);
        }
        slot.cursor = end;
        slot.root = None;
        cursor.store(end, Ordering::Release);
    }
    if slot.cursor == end && root.is_some() {
        slot.root = root;
    }
}

/// Applies the page's entries from the replay's cursor on to the rule state (an entry the rules
/// refuse is left out, as on the ledger's own replay).
fn replay_rules(replay: RuleReplay<'_>, page: &Page, store: &dyn Store) -> Result<(), StoreError> {
    let RuleReplay { rules, cursor } = replay;
    let end = page.end();
    if *cursor < page.from || *cursor >= end {
        return Ok(());
    }
    let events = page.events.as_ref().expect("a page read for the rules holds the events");
    for (i, event) in events.iter().enumerate().skip((*cursor - page.from) as usize) {
        let seq = page.from + i as u64;
        if let Some((recorded_at, event)) = event {
            if let Some(env) = crate::rules::envelope(seq, *recorded_at, event) {
                match rules.check_and_apply(&env, &crate::rules::StoreLookup(store)) {
                    Ok(()) | Err(crate::rules::RuleError::Refused(_)) => {}
                    Err(crate::rules::RuleError::Lookup(e)) => return Err(crate::rules::lookup_store_error(e)),
                }
            }
        }
        *cursor = seq + 1;
    }
    Ok(())
}
