//! How the read side moves pages of entries through the models on every core: a page is read
//! and its entries checked against their stored leaf hashes and parsed once, in parallel; then
//! every model folds the page as a task of its own (and the rule copy, when kept, as one more),
//! while the next page is read and parsed beside them, so neither core waits on the other's
//! kind of work. The pool's work stealing balances the folds (of unequal cost) and the parse.
//! Not the runner's policy (when to fold, snapshots, commitments: `super`), and not the models.

use super::Slot;
use crate::rules::Rules;
use crate::store::{Store, StoreError};
use rayon::prelude::*;
use serde_json::Value;
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
    let facts = raw
        .par_iter()
        .map(|e| {
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
        })
        .collect::<Result<Vec<_>, _>>()?;
    let events = with_events.then(|| raw.par_iter().map(|e| entry_event(&e.bytes)).collect());
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

/// Folds `page` into every slot whose cursor it reaches (each model a task) and into the rule
/// replay when given, while `beside` runs (the next page's read); returns what `beside` gave
/// and the rules' outcome (a store error a rule lookup met). Each model's task holds its own
/// slot's lock only while it folds; `root` is the root of the tree the page ends, when known
/// (kept with each slot the page brings there).
pub(super) fn fold_page<R: Send>(
    slots: &[std::sync::RwLock<Slot>],
    page: &Page,
    rules: Option<RuleReplay<'_>>,
    store: &dyn Store,
    beside: impl FnOnce() -> R + Send,
    root: Option<crate::merkle::Hash>,
) -> (R, Result<(), StoreError>) {
    let mut ruled = Ok(());
    let mut got = None;
    // Each entry's fact once for every model's task.
    let facts: Vec<Option<Fact<'_>>> = page.facts.iter().map(|p| p.as_ref().and_then(ParsedFact::fact)).collect();
    let facts = &facts;
    rayon::scope(|s| {
        for slot in slots {
            s.spawn(move |_| fold_slot(&mut slot.write().expect("slot lock"), page, facts, root));
        }
        if let Some(replay) = rules {
            let ruled = &mut ruled;
            s.spawn(move |_| *ruled = replay_rules(replay, page, store));
        }
        got = Some(beside());
    });
    (got.expect("the scope ran it"), ruled)
}

/// Folds the page's entries (`facts`) from the slot's cursor on into its model; `root`: the
/// root of the tree the page ends, when known.
fn fold_slot(slot: &mut Slot, page: &Page, facts: &[Option<Fact<'_>>], root: Option<crate::merkle::Hash>) {
    let end = page.end();
    if slot.cursor == end && root.is_some() {
        slot.root = root;
    }
    if slot.cursor < page.from || slot.cursor >= end {
        return;
    }
    let model = &mut *slot.model;
    for fact in facts[(slot.cursor - page.from) as usize..].iter().flatten() {
        model.apply(fact);
    }
    slot.cursor = end;
    slot.root = root;
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
