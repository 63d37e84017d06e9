//! The driver: structural events (sorted by time) merged with the streamed journal by time,
//! and signed on every core in batches. Not the events themselves (the sibling modules).

use super::DemoRegion;
use crate::event::sign_event_owned;
use rayon::prelude::*;
use serde_json::Value;

/// The demo region's clocks (the default region profile, UTC+3): batches never cross its midnight.
const REGION_UTC_OFFSET_SECONDS: i64 = 180 * 60;

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

    /// The time of the next event, if any.
    fn next_at(&mut self) -> Option<i64> {
        if self.pending.is_none() && self.next < self.size.events {
            self.pending = Some(self.journal_event(self.next));
            self.next += 1;
        }
        match (self.script.front(), &self.pending) {
            (Some(s), Some(j)) => Some(s.at.min(j.at)),
            (Some(s), None) => Some(s.at),
            (None, Some(j)) => Some(j.at),
            (None, None) => None,
        }
    }

    /// Up to `n` next signed events, signed on every core, all of one local day of the region:
    /// recorded at [`DemoRegion::recorded_at_of`] (as a ledger living through the demo's year
    /// would), each is recorded on the day it occurs and never before it.
    pub fn next_batch(&mut self, n: usize) -> Vec<Value> {
        self.next_batch_recorded(n).0
    }

    /// [`DemoRegion::next_batch`] with the batch's [`DemoRegion::recorded_at_of`], known from the
    /// times the events were generated at (a driver then does not read every event back for it).
    pub fn next_batch_recorded(&mut self, n: usize) -> (Vec<Value>, Option<i64>) {
        let mut unsigned: Vec<(Value, usize)> = Vec::new();
        let mut first_day = None;
        let mut recorded_at = None;
        while unsigned.len() < n {
            let Some(at) = self.next_at() else { break };
            let local_day = Self::local_day(at);
            if *first_day.get_or_insert(local_day) != local_day {
                break;
            }
            recorded_at = recorded_at.max(Some(at));
            unsigned.push(self.next_unsigned().expect("next_at saw an event"));
        }
        let signed = unsigned
            .into_par_iter()
            .map(|(ev, signer)| sign_event_owned(ev, &self.keys[signer]).expect("demo events are canonicalizable"))
            .collect();
        (signed, recorded_at)
    }

    /// The ledger time (unix seconds) at which a driver records a batch of [`DemoRegion::next_batch`]:
    /// the latest time its events were written ([`DemoRegion::written_at`]). A driver sets its
    /// ledger's clock to it before appending the batch (and lets earlier batches be sequenced
    /// first when the day changes), so the ledger-time rules see the demo's year as lived:
    /// nothing in the future, nothing recorded on a later day.
    pub fn recorded_at_of(batch: &[Value]) -> Option<i64> {
        batch.iter().filter_map(|e| Self::written_at(&e["event"])).max()
    }

    /// When the demo writes `event` (unix seconds): its `occurred_at`, or for a migration's import
    /// (`data.migrated_from`, an old `occurred_at`) the time of the import, which the demo mints
    /// into the event's UUIDv7 id (every demo id carries the time its event is written).
    pub fn written_at(event: &Value) -> Option<i64> {
        if event["data"].get(zachetka_projections::vocabulary::MIGRATED_FROM).is_some() {
            let hex: String = event["id"].as_str()?.chars().filter(|c| *c != '-').take(12).collect();
            let ms = i64::from_str_radix(&hex, 16).ok()?;
            return Some(ms.div_euclid(1000));
        }
        event["occurred_at"].as_str().and_then(crate::time::parse_rfc3339)
    }

    /// The demo region's local day (days since 1970-01-01, UTC+3) of unix time `at`: a batch of
    /// `next_batch` holds one.
    pub fn local_day(at: i64) -> i64 {
        (at + REGION_UTC_OFFSET_SECONDS).div_euclid(86_400)
    }

    /// Events still to come, the structural ones included.
    pub fn remaining(&self) -> u64 {
        self.script.len() as u64 + u64::from(self.pending.is_some()) + self.size.events - self.next
    }
}
