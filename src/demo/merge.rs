//! The driver: structural events (sorted by time) merged with the streamed journal by time,
//! and signed on every core in batches. Not the events themselves (the sibling modules).

use super::DemoRegion;
use crate::event::sign_event_owned;
use rayon::prelude::*;
use serde_json::Value;

impl DemoRegion {
    /// The next unsigned event and the index of its signer, or `None` when the demo is complete.
    pub(super) fn next_unsigned(&mut self) -> Option<(Value, usize)> {
        if self.pending.is_none() && self.next < self.size.events {
            self.pending = Some(self.journal_event(self.next));
            self.next += 1;
        }
        let take_script = match (self.script.front(), &self.pending) {
            (Some(s), Some(j)) => s.at <= j.at,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let item = if take_script { self.script.pop_front() } else { self.pending.take() }?;
        Some((item.event, item.signer))
    }

    /// Up to `n` next signed events, signed on every core.
    pub fn next_batch(&mut self, n: usize) -> Vec<Value> {
        let unsigned: Vec<(Value, usize)> = (0..n).map_while(|_| self.next_unsigned()).collect();
        unsigned
            .into_par_iter()
            .map(|(ev, signer)| sign_event_owned(ev, &self.keys[signer]).expect("demo events are canonicalizable"))
            .collect()
    }

    /// Events still to come, the structural ones included.
    pub fn remaining(&self) -> u64 {
        self.script.len() as u64 + u64::from(self.pending.is_some()) + self.size.events - self.next
    }
}
