//! Following a shared store: publishing to readers and feeds the heads other nodes commit, once
//! their checkpoints verify under this ledger's key, and, as it reads the head about every
//! second whatever the traffic, telling whether the store can be reached (`store_unavailable`).
//! Not the place for appending.

use super::{Shared, FOLLOW_POLL};
use crate::store::StoreError;
use std::sync::Arc;

impl Shared {
    /// Publishes the store's head if another writer moved it past ours, once its checkpoint
    /// verifies under this ledger's key (a node never serves a head it cannot vouch for).
    pub(super) fn follow(&self) -> Result<(), StoreError> {
        let Some((head, note)) = self.store.head()? else { return Ok(()) };
        if head.tree_size <= self.head.read().expect("head lock").0.tree_size {
            return Ok(());
        }
        match crate::checkpoint::verify_checkpoint(&note, &self.config.verifier_key, &self.config.origin) {
            Ok(v) if v.head == head => {
                self.publish(head, Arc::new(note));
                Ok(())
            }
            _ => Err(StoreError::Corrupt {
                what: "head checkpoint",
                position: head.tree_size,
                detail: "does not verify under the ledger key".into(),
            }),
        }
    }
}

/// Follows commits made by other writers of a shared store until the ledger is dropped.
pub(super) fn follow_loop(shared: std::sync::Weak<Shared>) {
    let mut failing = false;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let (store, known) = (s.store.clone(), s.head.read().expect("head lock").0.tree_size);
        drop(s);
        let result = store.wait_for_commit(known, FOLLOW_POLL).and_then(|()| match shared.upgrade() {
            Some(s) => s.follow(),
            None => Ok(()),
        });
        if let Some(s) = shared.upgrade() {
            s.follower_round(&result);
        }
        match result {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %crate::store::error_chain(&e), "can't follow the store's head; retrying");
                }
                failing = true;
                // Back off before reconnecting (a retry delay, not a synchronization).
                std::thread::sleep(FOLLOW_POLL);
            }
        }
    }
}
