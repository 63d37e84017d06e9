//! Completeness commitments on the read side (DESIGN 3.7, README "Completeness commitments"):
//! the policy that decides when the ledger commits, the draft the runner hands to the ledger
//! (which signs it with its own key and appends it), the maps kept for recent commitments, and
//! `completeness_for`, what a learner record bundle carries.
//! Not the format (`zachetka_projections::completeness`) nor the fold (`models::completeness`),
//! and not the signing (the ledger's sink, `ledger::commitment_sink`).

use super::{Inner, ReadSide};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zachetka_projections::completeness::{LearnerValue, Map, MapProof};
use zachetka_projections::model::{ParsedFact, ReadModel};
use zachetka_projections::models::completeness::Completeness;

/// When the ledger commits: once `every_entries` entries (other than commitments) came since
/// the last commitment's position, or `every_seconds` passed with at least one (0: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletenessPolicy {
    pub every_entries: u64,
    pub every_seconds: u64,
}

impl Default for CompletenessPolicy {
    fn default() -> Self {
        Self { every_entries: 100_000, every_seconds: 3_600 }
    }
}

impl CompletenessPolicy {
    fn due(&self, uncommitted: u64, since: Duration) -> bool {
        uncommitted > 0
            && ((self.every_entries > 0 && uncommitted >= self.every_entries)
                || (self.every_seconds > 0 && since.as_secs() >= self.every_seconds))
    }
}

/// What the runner asks the ledger to commit: the map over entries with seq < `up_to`.
#[derive(Debug, Clone)]
pub struct CommitmentDraft {
    pub up_to: u64,
    pub map_root: [u8; 32],
    pub learners: u64,
    /// `recorded_at` of entry `up_to - 1` (unix seconds): the event's `occurred_at`, so that the
    /// same draft is the same event whenever it is submitted.
    pub occurred_at: i64,
}

impl CommitmentDraft {
    /// The event id: the first 16 bytes of SHA-256 over the origin, `up_to` and the root, in
    /// UUID form, so a resubmission is the same event (idempotent).
    pub fn event_id(&self, origin: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"zachetka/completeness/id\n");
        h.update(origin.as_bytes());
        h.update(format!("\n{}\n", self.up_to).as_bytes());
        h.update(self.map_root);
        let d = h.finalize();
        crate::event::uuid_from_bytes(d[..16].try_into().expect("16 bytes"))
    }

    /// The unsigned event, authored by `author` (the ledger key's `did:key`).
    pub fn event(&self, origin: &str, author: &str) -> serde_json::Value {
        use zachetka_projections::completeness::{event_data, EVENT_TYPE, STREAM};
        serde_json::json!({
            "ledger": origin,
            "stream": STREAM,
            "type": EVENT_TYPE,
            "id": self.event_id(origin),
            "occurred_at": crate::time::format_rfc3339(self.occurred_at),
            "author": author,
            "data": event_data(self.up_to, &self.map_root, self.learners),
        })
    }
}

/// Signs and appends a draft; blocks until it is durable. Returns the commitment's seq.
pub type CommitmentSink = Box<dyn Fn(&CommitmentDraft) -> Result<u64, String> + Send + Sync>;

/// How long the runner waits before retrying a commitment the ledger refused.
const RETRY_AFTER_REFUSAL: Duration = Duration::from_secs(10);
/// Maps kept for the latest commitments (a bundle is usually made against a recent checkpoint).
const MAPS_KEPT: usize = 2;

pub(super) struct Writer {
    policy: CompletenessPolicy,
    sink: CommitmentSink,
    /// The `up_to` submitted and not yet seen applied, and when the policy's clock started.
    submitted: Option<u64>,
    since: Instant,
    retry_at: Option<Instant>,
    /// Commitments the ledger refused (each retried later), and the latest refusal while no
    /// commitment has landed since: an operator sees it in `/v1/status` and `/metrics`.
    refusals: u64,
    refused: Option<String>,
}

/// A learner's completeness value in one commitment, with its map proof: what a record bundle
/// carries (README "Completeness commitments").
#[derive(Debug, Clone)]
pub struct CompletenessFor {
    /// The commitment entry's seq (`S`); its entry and inclusion proof come from the log.
    pub commitment_seq: u64,
    /// The commitment covers every entry with seq < `up_to`.
    pub up_to: u64,
    pub map_root: [u8; 32],
    pub learners: u64,
    pub value: LearnerValue,
    pub map_proof: MapProof,
}

/// Why `completeness_for` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CompletenessError {
    #[error("the completeness commitment at seq {seq} does not match the log (the audit reports it)")]
    CommitmentDiffers { seq: u64 },
    #[error("couldn't read the ledger config: {0}")]
    Config(String),
    #[error("couldn't fold the log up to {up_to}")]
    Store {
        up_to: u64,
        #[source]
        source: StoreError,
    },
}

impl ReadSide {
    /// Makes the runner commit by `policy` through `sink` (the ledger's, which signs with the
    /// ledger key). Without it the read side never writes.
    pub fn enable_commitments(&self, policy: CompletenessPolicy, sink: CommitmentSink) {
        *self.inner.committer.lock().expect("committer lock") = Some(Writer {
            policy,
            sink,
            submitted: None,
            since: Instant::now(),
            retry_at: None,
            refusals: 0,
            refused: None,
        });
        self.inner.recheck.store(true, std::sync::atomic::Ordering::SeqCst);
        let _g = self.inner.head.lock().expect("read head lock");
        self.inner.wake.notify_all();
    }

    /// The learner's value in the latest completeness commitment whose entry is below
    /// `tree_size` (so it is in the checkpoint of that size), with the map proof against the
    /// commitment's `map_root`. `Ok(None)` when there is none yet (or the read side has not
    /// applied one). A commitment older than the last two takes a fold of the log up to its
    /// position (seconds per million entries) on the calling thread.
    pub fn completeness_for(
        &self,
        learner: &str,
        tree_size: u64,
    ) -> Result<Option<CompletenessFor>, CompletenessError> {
        let ledger_did = self.inner.ledger_did()?;
        let (commitment, map) = {
            let Some(slot) = self.inner.slot("completeness") else { return Ok(None) };
            let slot = slot.read().expect("slot lock");
            let Some(model) = completeness_model(&slot) else { return Ok(None) };
            let latest = model.commitments().iter().rev().find(|c| c.seq < tree_size && c.author == ledger_did);
            let Some(c) = latest.cloned() else {
                return Ok(None);
            };
            if !c.matches() {
                return Err(CompletenessError::CommitmentDiffers { seq: c.seq });
            }
            let cached = self.inner.maps.lock().expect("maps lock").iter().find(|(at, _)| *at == c.up_to).cloned();
            let map = cached.map(|(_, m)| m).or_else(|| model.map_at(c.up_to).map(Arc::new));
            (c, map)
        };
        let map = match map {
            Some(m) => m,
            None => {
                let folded = fold_to(&*self.inner.store, commitment.up_to)
                    .map_err(|source| CompletenessError::Store { up_to: commitment.up_to, source })?;
                Arc::new(folded.map())
            }
        };
        self.inner.keep_map(commitment.up_to, map.clone());
        if Some(map.root()) != commitment.map_root {
            return Err(CompletenessError::CommitmentDiffers { seq: commitment.seq });
        }
        let (value, map_proof) = map.prove(learner);
        Ok(Some(CompletenessFor {
            commitment_seq: commitment.seq,
            up_to: commitment.up_to,
            map_root: map.root(),
            learners: map.len(),
            value,
            map_proof,
        }))
    }

    /// Blocks until the runner has handled `tree_size` entries, commitments it owed included
    /// (for tests and the CLI: the runner must be able to reach it).
    pub fn wait_settled_blocking(&self, tree_size: u64) {
        let (lock, cv) = (&self.inner.head, &self.inner.wake);
        let mut g = lock.lock().expect("read head lock");
        while self.inner.settled.load(std::sync::atomic::Ordering::SeqCst) < tree_size
            && !self.inner.stop.load(std::sync::atomic::Ordering::SeqCst)
        {
            // The runner notifies `wake` when it settles.
            g = cv.wait(g).expect("read head lock");
        }
    }
}

fn completeness_model(slot: &super::Slot) -> Option<&Completeness> {
    slot.model.as_any().and_then(|a| a.downcast_ref::<Completeness>())
}

/// The completeness fold over the log's entries `0..up_to`.
pub fn fold_to(store: &dyn Store, up_to: u64) -> Result<Completeness, StoreError> {
    let mut model = Completeness::default();
    let mut from = 0;
    while from < up_to {
        let page = store.entries(from, super::PAGE_LEN.min(up_to - from))?;
        if page.is_empty() {
            return Err(StoreError::Corrupt { what: "entry", position: from, detail: "missing below the head".into() });
        }
        for bytes in &page {
            if let Ok(p) = ParsedFact::from_entry(bytes) {
                if let Some(f) = p.fact() {
                    model.apply(&f);
                }
            }
        }
        from += page.len() as u64;
    }
    Ok(model)
}

impl Inner {
    /// The ledger key's `did:key`, from the stored config.
    fn ledger_did(&self) -> Result<String, CompletenessError> {
        let config = self
            .store
            .config()
            .map_err(|e| CompletenessError::Config(crate::store::error_chain(&e)))?
            .ok_or_else(|| CompletenessError::Config("the store holds no ledger".into()))?;
        crate::rules::ledger_did(&config).map_err(CompletenessError::Config)
    }

    fn keep_map(&self, up_to: u64, map: Arc<Map>) {
        let mut maps = self.maps.lock().expect("maps lock");
        if maps.iter().any(|(at, _)| *at == up_to) {
            return;
        }
        maps.push((up_to, map));
        if maps.len() > MAPS_KEPT {
            maps.remove(0);
        }
    }

    /// After the runner reached a head: submits a commitment if the policy says one is due.
    /// Runs on the runner thread; blocks while the ledger makes the commitment durable.
    pub(super) fn commit_if_due(&self) {
        let mut committer = self.committer.lock().expect("committer lock");
        let Some(w) = committer.as_mut() else { return };
        if w.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let head = self.head.lock().expect("read head lock").tree_size;
        let draft = {
            let Some(slot) = self.slot("completeness") else { return };
            let slot = slot.read().expect("slot lock");
            let Some(model) = completeness_model(&slot) else { return };
            let cursor = slot.cursor;
            if w.submitted.is_some_and(|p| model.last_up_to() < p) {
                return; // the last one is not applied yet
            }
            if w.submitted.take().is_some() {
                w.since = Instant::now();
            }
            if !w.policy.due(model.uncommitted(cursor), w.since.elapsed()) {
                return;
            }
            // Far behind the head, the commitment would land too far after its position (the
            // rules refuse more than UP_TO_LAG_MAX): catch up first.
            if head.saturating_sub(cursor) > zachetka_projections::completeness::UP_TO_LAG_MAX / 4 {
                return;
            }
            let map = model.map();
            let (map_root, learners) = (map.root(), map.len());
            drop(slot);
            self.keep_map(cursor, Arc::new(map));
            let occurred_at = match self.store.entries(cursor - 1, 1).map(|mut p| p.pop()) {
                Ok(Some(bytes)) => match ParsedFact::from_entry(&bytes) {
                    Ok(p) => p.recorded_at,
                    Err(e) => {
                        tracing::warn!(seq = cursor - 1, error = %e, "couldn't read the entry a commitment ends at");
                        return;
                    }
                },
                Ok(None) | Err(_) => return,
            };
            CommitmentDraft { up_to: cursor, map_root, learners, occurred_at }
        };
        match (w.sink)(&draft) {
            Ok(seq) => {
                tracing::info!(up_to = draft.up_to, seq, learners = draft.learners, "completeness commitment appended");
                w.submitted = Some(draft.up_to);
                w.retry_at = None;
                w.refused = None;
            }
            Err(e) => {
                tracing::warn!(up_to = draft.up_to, error = %e, "couldn't append a completeness commitment; retrying later");
                w.retry_at = Some(Instant::now() + RETRY_AFTER_REFUSAL);
                w.refusals += 1;
                w.refused = Some(format!("the commitment up to {} was refused: {e}", draft.up_to));
            }
        }
    }
}

/// How the completeness commitments fare, for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CommitmentStatus {
    /// Whether this server commits (a policy is set).
    pub enabled: bool,
    /// Commitments the ledger refused since the server started (each is retried).
    pub refusals: u64,
    /// The latest refusal, while no commitment has landed after it.
    pub refused: Option<String>,
}

impl Inner {
    pub(super) fn commitment_status(&self) -> CommitmentStatus {
        match self.committer.lock().expect("committer lock").as_ref() {
            Some(w) => CommitmentStatus { enabled: true, refusals: w.refusals, refused: w.refused.clone() },
            None => CommitmentStatus::default(),
        }
    }

    /// How often an idle runner looks at a time policy (`None`: no time policy).
    pub(super) fn commitment_tick(&self) -> Option<Duration> {
        let committer = self.committer.lock().expect("committer lock");
        let secs = committer.as_ref()?.policy.every_seconds;
        (secs > 0).then(|| Duration::from_secs(secs.min(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_commits_by_count_or_by_time_and_never_over_nothing() {
        let count = CompletenessPolicy { every_entries: 100, every_seconds: 0 };
        assert!(!count.due(99, Duration::from_secs(3600)));
        assert!(count.due(100, Duration::ZERO));
        let time = CompletenessPolicy { every_entries: 0, every_seconds: 60 };
        assert!(!time.due(1_000_000, Duration::from_secs(59)));
        assert!(time.due(1, Duration::from_secs(60)));
        let both = CompletenessPolicy { every_entries: 100, every_seconds: 60 };
        assert!(both.due(100, Duration::ZERO) && both.due(1, Duration::from_secs(60)));
        assert!(!both.due(0, Duration::from_secs(3600)), "nothing new: no commitment");
        assert!(!CompletenessPolicy { every_entries: 0, every_seconds: 0 }.due(u64::MAX, Duration::MAX));
    }

    /// Review s11, finding 1: by default the window a commitment leaves uncovered is bounded in
    /// time too, not only in entries: a quiet ledger still commits within the hour.
    #[test]
    fn the_default_policy_commits_by_count_and_within_an_hour() {
        let d = CompletenessPolicy::default();
        assert_eq!((d.every_entries, d.every_seconds), (100_000, 3_600));
        assert!(d.due(1, Duration::from_secs(3_600)));
        assert!(!d.due(1, Duration::from_secs(3_599)));
    }

    #[test]
    fn a_draft_is_the_same_event_whenever_it_is_made() {
        let d = CommitmentDraft { up_to: 10, map_root: [1; 32], learners: 2, occurred_at: 1_795_000_000 };
        assert_eq!(d.event("o", "did:key:z6Mk"), d.clone().event("o", "did:key:z6Mk"));
        assert!(crate::event::is_uuid(&d.event_id("o")));
        assert_ne!(d.event_id("o"), CommitmentDraft { up_to: 11, ..d.clone() }.event_id("o"));
        assert_ne!(d.event_id("o"), d.event_id("p"));
        assert_eq!(d.event("o", "a")["occurred_at"], "2026-11-18T11:06:40Z");
    }
}
