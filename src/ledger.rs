//! The ledger: the append pipeline and the reads built on one store. Decode and verify run on
//! every core (bounded by the caller's batch and the queue), one sequencer thread orders, group
//! commits (one durable flush per batch) and signs one checkpoint per batch, then acknowledges.
//!
//! Over a store with one writer (sled) admitting batch N+1 overlaps committing batch N. Over a
//! shared store (PostgreSQL, several nodes) every batch begins by taking the store's append lock,
//! catches up with what other nodes committed (stream heads, rule state), and commits before the
//! next batch begins; a follower thread publishes other nodes' commits to readers and feeds.
//! Not the place for HTTP or for the education rules.

use crate::checkpoint::{LedgerSigner, TreeHead};
use crate::event::{self, EntryMeta, VerifiedEvent, ENTRY_BYTES_MAX};
use crate::keys::{KeyCache, KeyPair};
use crate::merkle::{self, Hash, HashB64, HashReader};
use crate::refusal::{Code, Refusal};
use crate::store::{BatchEntry, CommitBatch, IdRecord, LedgerConfig, Store, StoreError, StoreHashes, StreamHead};
use crate::time::Clock;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};

/// What an acknowledged append returns (DESIGN 3.5): the entry's position and the size of the
/// first checkpoint that covers it, so it is provable at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Receipt {
    pub seq: u64,
    #[serde(serialize_with = "ser_hash")]
    pub leaf_hash: Hash,
    pub stream_version: u64,
    pub tree_size: u64,
}

fn ser_hash<S: serde::Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_b64())
}

/// Limits of the pipeline. Every queue and batch is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most events one commit batch holds (one flush, one checkpoint).
    pub batch_len_max: usize,
    /// Most submissions waiting for the sequencer before appends are refused as `busy`.
    pub queue_depth_max: usize,
    /// Most events one request may carry.
    pub request_len_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { batch_len_max: 8192, queue_depth_max: 1024, request_len_max: 10_000 }
    }
}

impl Limits {
    /// Most events admitted (being verified, queued, or waiting for their batch) at once through
    /// [`Ledger::try_admit`]: four batches, about a second of work at the pipeline's rate, so an
    /// admitted event is answered quickly and the rest hear `busy` at once; never less than one
    /// whole request.
    pub fn in_flight_events_max(&self) -> usize {
        self.request_len_max.max(4 * self.batch_len_max)
    }

    /// Most requests admitted at once: the sequencer queue's depth, so admitted submissions never
    /// find it full.
    pub fn in_flight_requests_max(&self) -> usize {
        self.queue_depth_max
    }
}

/// Errors of opening or creating a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store holds no ledger; run `zachetka init` first")]
    NotInitialized,
    #[error("the ledger key does not match the store's verifier key {0}")]
    WrongLedgerKey(String),
    #[error("the head checkpoint does not verify: {0}")]
    BadHead(String),
    #[error("the ledger's rules cannot be built: {0}")]
    Rules(String),
}

/// How long a follower waits for a commit notification before it reads the head anyway: the
/// bound on how stale an idle node's head can be if a notification is lost.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether appends are checked against the ledger's rules. Only tests bypass them, to play an
/// operator who writes around the API (the audit must catch what that lets in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RulesMode {
    #[default]
    Enforce,
    Bypass,
}

type Reply = tokio::sync::oneshot::Sender<Vec<Result<Receipt, Refusal>>>;

struct Submission {
    events: Vec<VerifiedEvent>,
    reply: Reply,
}

struct Shared {
    config: LedgerConfig,
    store: Arc<dyn Store>,
    keys: KeyCache,
    head: RwLock<(TreeHead, Arc<Vec<u8>>)>,
    head_watch: tokio::sync::watch::Sender<u64>,
    /// Set when a commit failed: the ledger stops writing and keeps serving reads.
    failed: AtomicBool,
    /// Why writes stopped (the store's error), set before `failed`.
    stop_reason: Mutex<Option<String>>,
    /// Work admitted by [`Ledger::try_admit`] and not yet answered.
    in_flight_events: AtomicUsize,
    in_flight_requests: AtomicUsize,
    /// Whether the last append found a shared store unreachable (appends answer `unavailable`
    /// until it is back; the node recovers by itself).
    store_unavailable: AtomicBool,
    queued: AtomicU64,
    limits: Limits,
}

impl Shared {
    /// Stops writes for good (until the ledger is reopened) because of `e`; the reason is
    /// recorded before the flag, so whoever sees the flag can say why.
    fn stop_writes(&self, e: &StoreError) {
        self.stop_reason.lock().expect("stop reason lock").get_or_insert_with(|| e.to_string());
        self.failed.store(true, Ordering::SeqCst);
    }

    fn writes_stopped(&self) -> Option<String> {
        if !self.failed.load(Ordering::SeqCst) {
            return None;
        }
        Some(self.stop_reason.lock().expect("stop reason lock").clone().unwrap_or_else(|| "unknown".into()))
    }

    /// The refusal of every append once writes stopped: why, and that only a restart after
    /// fixing the cause helps (not retryable, so no Retry-After).
    fn writes_stopped_refusal(&self) -> Refusal {
        let reason = self.writes_stopped().unwrap_or_else(|| "unknown".into());
        Refusal::new(
            Code::WritesStopped,
            format!(
                "writes stopped after a failed commit ({reason}); reads continue; no retry succeeds until an \
                 operator fixes the cause and restarts the server"
            ),
        )
    }

    /// Publishes a committed head to readers and feeds, unless a newer one is already out.
    fn publish(&self, head: TreeHead, note: Arc<Vec<u8>>) {
        let mut current = self.head.write().expect("head lock");
        if head.tree_size > current.0.tree_size {
            *current = (head, note);
            self.head_watch.send_replace(head.tree_size);
        }
    }

    /// Publishes the store's head if another writer moved it past ours, once its checkpoint
    /// verifies under this ledger's key (a node never serves a head it cannot vouch for).
    fn follow(&self) -> Result<(), StoreError> {
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
fn follow_loop(shared: std::sync::Weak<Shared>) {
    let mut failing = false;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let (store, known) = (s.store.clone(), s.head.read().expect("head lock").0.tree_size);
        drop(s);
        let result = store.wait_for_commit(known, FOLLOW_POLL).and_then(|()| match shared.upgrade() {
            Some(s) => s.follow(),
            None => Ok(()),
        });
        match result {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "can't follow the store's head; retrying");
                }
                failing = true;
                // Back off before reconnecting (a retry delay, not a synchronization).
                std::thread::sleep(FOLLOW_POLL);
            }
        }
    }
}
/// A ledger open for appends and reads. Cheap to clone; all clones share one sequencer.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    tx: SyncSender<Submission>,
    _sequencer: Arc<SequencerHandle>,
}

struct SequencerHandle {
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for SequencerHandle {
    fn drop(&mut self) {
        // The last Ledger clone is gone; its sender dropped first, so the thread drains and ends.
        if let Some(t) = self.thread.lock().expect("sequencer handle lock").take() {
            let _ = t.join();
        }
    }
}

/// Creates a ledger in an empty store and signs the checkpoint of the empty tree.
/// `rules` is the region config (JSON) of the education rules to enforce, or `None` for a bare
/// signed log.
pub fn init_store(
    store: &dyn Store,
    origin: &str,
    ledger_key: &KeyPair,
    authority_did: &str,
    rules: Option<serde_json::Value>,
) -> Result<LedgerConfig, LedgerError> {
    let signer = LedgerSigner::new(origin, ledger_key.clone());
    let config = LedgerConfig {
        origin: origin.to_owned(),
        authority: authority_did.to_owned(),
        verifier_key: signer.verifier_key(),
        rules,
    };
    crate::rules::from_config(&config).map_err(LedgerError::Rules)?;
    store.init(&config)?;
    Ok(config)
}

impl Ledger {
    /// Opens the ledger in `store` with its key; starts the sequencer thread.
    pub fn open(
        store: Arc<dyn Store>,
        ledger_key: KeyPair,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Result<Self, LedgerError> {
        Self::open_with(store, ledger_key, clock, limits, RulesMode::Enforce)
    }

    /// [`Ledger::open`] with the rules mode spelled out. Opening replays the log through the
    /// rules (their state is not stored yet; snapshots will bound this).
    pub fn open_with(
        store: Arc<dyn Store>,
        ledger_key: KeyPair,
        clock: Arc<dyn Clock>,
        limits: Limits,
        mode: RulesMode,
    ) -> Result<Self, LedgerError> {
        assert!(
            limits.batch_len_max as u64 <= crate::store::BATCH_LEN_MAX,
            "a batch may hold at most {} entries (store recovery relies on it)",
            crate::store::BATCH_LEN_MAX
        );
        let config = store.config()?.ok_or(LedgerError::NotInitialized)?;
        let signer = LedgerSigner::new(&config.origin, ledger_key);
        if signer.verifier_key() != config.verifier_key {
            return Err(LedgerError::WrongLedgerKey(config.verifier_key.clone()));
        }
        let head = match store.head()? {
            Some((head, note)) => {
                let v = crate::checkpoint::verify_checkpoint(&note, &config.verifier_key, &config.origin)
                    .map_err(|e| LedgerError::BadHead(e.to_string()))?;
                if v.head != head {
                    return Err(LedgerError::BadHead("checkpoint body differs from the stored head".into()));
                }
                (head, Arc::new(note))
            }
            None => {
                let head = TreeHead { tree_size: 0, root_hash: merkle::EMPTY_ROOT };
                (head, Arc::new(signer.sign(&head)))
            }
        };
        // The sequencer's view starts where the rules' replay ended (on a shared store other
        // nodes may append during it); it catches up from there under the append lock.
        let mut next_seq = head.0.tree_size;
        let rules = match (mode, crate::rules::from_config(&config).map_err(LedgerError::Rules)?) {
            (RulesMode::Enforce, Some(mut rules)) => {
                let (end, failed) = crate::rules::replay_from(&mut rules, &*store, 0)?;
                if failed > 0 {
                    tracing::warn!(failed, "entries in the log fail the rules; run `zachetka audit`");
                }
                next_seq = end;
                Some(rules)
            }
            _ => None,
        };
        let (head_watch, _) = tokio::sync::watch::channel(head.0.tree_size);
        let shared = Arc::new(Shared {
            config,
            store,
            keys: KeyCache::default(),
            head: RwLock::new(head),
            head_watch,
            failed: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
            in_flight_events: AtomicUsize::new(0),
            in_flight_requests: AtomicUsize::new(0),
            store_unavailable: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            limits,
        });
        let (tx, rx) = sync_channel(limits.queue_depth_max);
        let seq_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("zachetka-sequencer".into())
            .spawn(move || Sequencer::new(seq_shared, signer, clock, rules, next_seq).run(rx))
            .expect("spawn sequencer thread");
        if shared.store.is_shared() {
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("zachetka-follower".into())
                .spawn(move || follow_loop(weak))
                .expect("spawn follower thread");
        }
        Ok(Self { shared, tx, _sequencer: Arc::new(SequencerHandle { thread: Mutex::new(Some(thread)) }) })
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.shared.config
    }

    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Whether a failed commit stopped writes.
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Why writes stopped (the store's error, e.g. "no space left on device"), if they did.
    pub fn writes_stopped(&self) -> Option<String> {
        self.shared.writes_stopped()
    }

    /// Refuses appends this node cannot take now, whatever they hold: on a read replica, or
    /// after writes stopped. Cheap; callers check it before admitting work.
    pub fn check_accepting(&self) -> Result<(), Refusal> {
        if self.shared.store.is_read_only() {
            return Err(Refusal::new(
                Code::ReadOnly,
                "this node serves a read-only replica; send appends to a node on the primary",
            ));
        }
        if self.is_failed() {
            return Err(self.shared.writes_stopped_refusal());
        }
        Ok(())
    }

    /// Admits `events` events of one request for verification and appending, or refuses at
    /// once with `busy` when [`Limits::in_flight_events_max`] events or
    /// [`Limits::in_flight_requests_max`] requests are already in flight. Never waits. The
    /// admission lasts until the returned guard is dropped (after the answer).
    pub fn try_admit(&self, events: usize) -> Result<Admitted, Refusal> {
        let limits = self.shared.limits;
        let take = |counter: &AtomicUsize, n: usize, max: usize| {
            counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| (cur + n <= max).then_some(cur + n)).is_ok()
        };
        if !take(&self.shared.in_flight_requests, 1, limits.in_flight_requests_max()) {
            return Err(Refusal::new(
                Code::Busy,
                format!("{} requests are in flight, the limit; retry shortly", limits.in_flight_requests_max()),
            ));
        }
        if !take(&self.shared.in_flight_events, events, limits.in_flight_events_max()) {
            self.shared.in_flight_requests.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::new(
                Code::Busy,
                format!(
                    "{events} more events would exceed the {} in flight; retry shortly",
                    limits.in_flight_events_max()
                ),
            ));
        }
        Ok(Admitted { shared: self.shared.clone(), events })
    }

    /// Events admitted by [`Ledger::try_admit`] and not yet answered.
    pub fn in_flight_events(&self) -> usize {
        self.shared.in_flight_events.load(Ordering::SeqCst)
    }

    /// Whether the last append found the (shared) store unreachable.
    pub fn is_store_unavailable(&self) -> bool {
        self.shared.store_unavailable.load(Ordering::SeqCst)
    }

    /// The latest tree head and its checkpoint note.
    pub fn head(&self) -> (TreeHead, Arc<Vec<u8>>) {
        self.shared.head.read().expect("head lock").clone()
    }

    /// Watches the committed tree size (feeds follow it).
    pub fn watch_tree_size(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.head_watch.subscribe()
    }

    /// Verifies transported signed events on every core; in order.
    pub fn verify(&self, signed: Vec<serde_json::Value>) -> Vec<Result<VerifiedEvent, Refusal>> {
        let origin = self.shared.config.origin.as_str();
        let keys = &self.shared.keys;
        signed.into_par_iter().with_min_len(16).map(|v| event::verify_signed(v, origin, keys)).collect()
    }

    /// Verifies and appends signed events; one receipt or refusal per event, in order. Blocks
    /// until the batch holding them is durable. Call from a blocking context.
    pub fn append_blocking(&self, signed: Vec<serde_json::Value>) -> Vec<Result<Receipt, Refusal>> {
        match self.submit(signed) {
            Ok(pending) => pending.wait_blocking(),
            Err(r) => vec![Err(r)],
        }
    }

    /// Verifies the events (on the calling thread and rayon's pool) and queues the valid ones
    /// for the sequencer. `Err` refuses the whole request (`busy`, `read_only`,
    /// `writes_stopped`, `unavailable`, `batch_too_long`).
    pub fn submit(&self, signed: Vec<serde_json::Value>) -> Result<Pending, Refusal> {
        self.check_request_len(signed.len())?;
        self.check_accepting()?;
        let verified = self.verify(signed);
        self.enqueue(verified)
    }

    /// [`Ledger::submit`] for signed events still as JSON text (one `{"event":..,"sig":..}` per
    /// slice): each is parsed once, strictly, by the core that verifies it, so a request is
    /// never held as values all at once before its length is known.
    pub fn submit_raw(&self, signed: &[&[u8]]) -> Result<Pending, Refusal> {
        self.check_request_len(signed.len())?;
        self.check_accepting()?;
        let origin = self.shared.config.origin.as_str();
        let keys = &self.shared.keys;
        let verified =
            signed.par_iter().with_min_len(16).map(|b| event::verify_signed_bytes(b, origin, keys)).collect();
        self.enqueue(verified)
    }

    fn check_request_len(&self, n: usize) -> Result<(), Refusal> {
        if n > self.shared.limits.request_len_max {
            return Err(Refusal::new(
                Code::BatchTooLong,
                format!("{n} events in one request, the limit is {}", self.shared.limits.request_len_max),
            ));
        }
        Ok(())
    }

    /// Queues the valid ones of verified events for the sequencer, refusals kept in place.
    fn enqueue(&self, verified: Vec<Result<VerifiedEvent, Refusal>>) -> Result<Pending, Refusal> {
        let n = verified.len();
        let mut results: Vec<Option<Result<Receipt, Refusal>>> = Vec::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for v in verified {
            match v {
                Ok(ev) => {
                    valid.push(ev);
                    results.push(None);
                }
                Err(r) => results.push(Some(Err(r))),
            }
        }
        if valid.is_empty() {
            return Ok(Pending { results, rx: None });
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(Submission { events: valid, reply }) {
            Ok(()) => Ok(Pending { results, rx: Some(rx) }),
            Err(TrySendError::Full(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::SeqCst);
                Err(Refusal::new(Code::Busy, "the sequencer queue is full; retry shortly"))
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::SeqCst);
                Err(Refusal::new(Code::Unavailable, "the sequencer stopped"))
            }
        }
    }

    /// Submissions waiting for the sequencer.
    pub fn queue_depth(&self) -> u64 {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Canonical bytes of entries `from..from+limit` (within the committed tree).
    pub fn entries(&self, from: u64, limit: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let size = self.head().0.tree_size;
        if from >= size {
            return Ok(vec![]);
        }
        self.shared.store.entries(from, limit.min(size - from))
    }

    /// Inclusion proof of `leaf_index` in the tree of `tree_size` (at most the current size).
    pub fn prove_inclusion(&self, leaf_index: u64, tree_size: u64) -> Result<Vec<Hash>, merkle::ProofError> {
        self.check_size(tree_size)?;
        merkle::prove_inclusion(leaf_index, tree_size, &StoreHashes(&*self.shared.store))
    }

    /// Consistency proof between two tree sizes (at most the current size).
    pub fn prove_consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, merkle::ProofError> {
        self.check_size(second)?;
        merkle::prove_consistency(first, second, &StoreHashes(&*self.shared.store))
    }

    /// Root hash of the tree of `tree_size` (at most the current size).
    pub fn root(&self, tree_size: u64) -> Result<Hash, merkle::ProofError> {
        self.check_size(tree_size)?;
        merkle::root(tree_size, &StoreHashes(&*self.shared.store))
    }

    fn check_size(&self, tree_size: u64) -> Result<(), merkle::ProofError> {
        let log_size = self.head().0.tree_size;
        if tree_size > log_size {
            return Err(merkle::ProofError::BeyondLog { tree_size, log_size });
        }
        Ok(())
    }

    /// A hash tile of the current tree, or `None` if it does not exist at that width.
    pub fn hash_tile(&self, level: u8, index: u64, width: u64) -> Result<Option<Vec<u8>>, merkle::ProofError> {
        let size = self.head().0.tree_size;
        merkle::read_hash_tile(level, index, width, size, &StoreHashes(&*self.shared.store))
    }

    /// An entry bundle (C2SP tlog-tiles): each entry as a big-endian u16 length and its bytes.
    pub fn entry_bundle(&self, index: u64, width: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let size = self.head().0.tree_size;
        let Some(start) = index.checked_mul(merkle::TILE_WIDTH) else { return Ok(None) };
        if start.checked_add(width).is_none_or(|end| end > size) {
            return Ok(None);
        }
        let entries = self.shared.store.entries(start, width)?;
        let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
        for e in entries {
            assert!(e.len() <= ENTRY_BYTES_MAX, "entries are bounded at append");
            out.extend_from_slice(&(e.len() as u16).to_be_bytes());
            out.extend_from_slice(&e);
        }
        Ok(Some(out))
    }
}

/// Work admitted by [`Ledger::try_admit`]; dropping it ends the admission.
pub struct Admitted {
    shared: Arc<Shared>,
    events: usize,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.shared.in_flight_events.fetch_sub(self.events, Ordering::SeqCst);
        self.shared.in_flight_requests.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Receipts still on their way from the sequencer.
pub struct Pending {
    results: Vec<Option<Result<Receipt, Refusal>>>,
    rx: Option<tokio::sync::oneshot::Receiver<Vec<Result<Receipt, Refusal>>>>,
}

impl Pending {
    fn merge(mut self, got: Option<Vec<Result<Receipt, Refusal>>>) -> Vec<Result<Receipt, Refusal>> {
        let mut got = got.map(|g| g.into_iter());
        self.results
            .drain(..)
            .map(|slot| match slot {
                Some(r) => r,
                None => match got.as_mut().and_then(Iterator::next) {
                    Some(r) => r,
                    None => Err(Refusal::new(Code::Unavailable, "the sequencer stopped before answering")),
                },
            })
            .collect()
    }

    pub fn wait_blocking(mut self) -> Vec<Result<Receipt, Refusal>> {
        let got = self.rx.take().map(|rx| rx.blocking_recv().ok()).unwrap_or(None);
        self.merge(got)
    }

    pub async fn wait(mut self) -> Vec<Result<Receipt, Refusal>> {
        let got = match self.rx.take() {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        self.merge(got)
    }
}

/// The sequencer: one thread that orders and prepares batches (admit), one that makes them
/// durable and answers (commit). Admission of batch N+1 overlaps the fsyncs of batch N; the
/// admit thread sees N's effects through its pending overlay, and answers for N+1 leave only
/// after N+1 (hence N) is durable.
struct Sequencer {
    shared: Arc<Shared>,
    signer: LedgerSigner,
    clock: Arc<dyn Clock>,
    /// Stream heads of committed batches (a bounded cache of the store's).
    stream_cache: HashMap<String, StreamHead>,
    /// Batches prepared but maybe not yet committed, oldest first.
    pending: std::collections::VecDeque<PendingBatch>,
    /// The seq the next admitted entry takes.
    next_seq: u64,
    /// The education rules, when the ledger enforces them; their state includes pending batches.
    rules: Option<crate::rules::Rules>,
    /// Set when a batch on a shared store failed in a way that leaves it unknown whether it was
    /// committed: the next batch rebuilds the rule state and stream heads from the store.
    resync: bool,
}

const STREAM_CACHE_LEN_MAX: usize = 1_000_000;

/// What the admit thread must remember of a batch until the committer has made it durable.
struct PendingBatch {
    end_seq: u64,
    base_index: u64,
    hashes: Vec<Hash>,
    streams: HashMap<String, StreamHead>,
    ids: HashMap<String, IdRecord>,
    /// Stream and type by id, for the rules' lookups.
    kinds: HashMap<String, (String, String)>,
}

/// A batch being assembled.
struct Draft<'a> {
    store: &'a dyn Store,
    pending: &'a std::collections::VecDeque<PendingBatch>,
    first_seq: u64,
    /// Stored hashes of this batch, from `stored_hash_index_of_leaf(first_seq)`.
    hashes: Vec<Hash>,
    base_index: u64,
    entries: Vec<BatchEntry>,
    streams: HashMap<String, StreamHead>,
    ids: HashMap<String, usize>,
    /// Stream and type by id of this batch's entries, for the rules' lookups.
    kinds: HashMap<String, (String, String)>,
    /// Id records and stream heads read for the whole batch in one go (shared stores).
    known_ids: HashMap<String, Option<IdRecord>>,
    known_streams: HashMap<String, Option<StreamHead>>,
    /// The store error behind the last failed hash read (the hash reader's error type cannot
    /// carry it), so that a store that is unavailable is not mistaken for a damaged one.
    read_error: std::cell::RefCell<Option<StoreError>>,
}

impl Draft<'_> {
    fn hash_error(&self, e: merkle::ProofError) -> StoreError {
        self.read_error.borrow_mut().take().unwrap_or_else(|| StoreError::Io(e.to_string()))
    }
}

/// The rules' lookup during admission: this batch, then the pending (uncommitted) batches, then
/// the store's id index. A store error is passed on as an error, never as "no such event".
impl crate::rules::Lookup for Draft<'_> {
    fn event(&self, id: &str) -> Result<Option<(String, String)>, crate::rules::LookupError> {
        if let Some(k) = self.kinds.get(id) {
            return Ok(Some(k.clone()));
        }
        if let Some(k) = self.pending.iter().rev().find_map(|p| p.kinds.get(id)) {
            return Ok(Some(k.clone()));
        }
        crate::rules::Lookup::event(&crate::rules::StoreLookup(self.store), id)
    }
}

impl HashReader for Draft<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let in_pending =
            |i: u64| self.pending.iter().find(|p| i >= p.base_index && i < p.base_index + p.hashes.len() as u64);
        let old: Vec<u64> =
            indexes.iter().copied().filter(|&i| i < self.base_index && in_pending(i).is_none()).collect();
        let mut old = if old.is_empty() {
            Vec::new().into_iter()
        } else {
            self.store
                .read_hashes(&old)
                .map_err(|e| {
                    *self.read_error.borrow_mut() = Some(e);
                    tlog_tiles::Error::IndexesNotInTree
                })?
                .into_iter()
        };
        indexes
            .iter()
            .map(|&i| {
                if i >= self.base_index {
                    self.hashes.get((i - self.base_index) as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)
                } else if let Some(p) = in_pending(i) {
                    Ok(p.hashes[(i - p.base_index) as usize])
                } else {
                    old.next().ok_or(tlog_tiles::Error::IndexesNotInTree)
                }
            })
            .collect()
    }
}

enum Outcome {
    /// Index of the entry (new, or the same event earlier in this batch) in the draft.
    InBatch(usize),
    /// The same event is already in the log (or in a pending batch).
    Existing(Receipt),
    Refused(Refusal),
}

/// A prepared batch on its way to the committer.
struct Prepared {
    /// `None` when nothing new is in it (all refused or already present).
    batch: Option<CommitBatch>,
    replies: Vec<(Reply, Vec<Result<Receipt, Refusal>>)>,
}

impl Sequencer {
    fn new(
        shared: Arc<Shared>,
        signer: LedgerSigner,
        clock: Arc<dyn Clock>,
        rules: Option<crate::rules::Rules>,
        next_seq: u64,
    ) -> Self {
        Self {
            shared,
            signer,
            clock,
            stream_cache: HashMap::new(),
            pending: Default::default(),
            next_seq,
            rules,
            resync: false,
        }
    }

    /// Group commit: the first submission and whatever queued behind it, up to a batch.
    fn gather(&self, rx: &Receiver<Submission>, first: Submission) -> Vec<Submission> {
        let mut n = first.events.len();
        let mut subs = vec![first];
        while n < self.shared.limits.batch_len_max {
            match rx.try_recv() {
                Ok(s) => {
                    n += s.events.len();
                    subs.push(s);
                }
                Err(_) => break,
            }
        }
        self.shared.queued.fetch_sub(subs.len() as u64, Ordering::SeqCst);
        subs
    }

    fn run(self, rx: Receiver<Submission>) {
        if self.shared.store.is_shared() {
            self.run_shared(rx)
        } else {
            self.run_pipelined(rx)
        }
    }

    /// One writer: admit batch N+1 while the committer thread makes batch N durable.
    fn run_pipelined(mut self, rx: Receiver<Submission>) {
        let (to_committer, committed) = sync_channel::<Prepared>(1);
        let shared = self.shared.clone();
        let committer = std::thread::Builder::new()
            .name("zachetka-committer".into())
            .spawn(move || commit_loop(&shared, committed))
            .expect("spawn committer thread");
        while let Ok(first) = rx.recv() {
            let subs = self.gather(&rx, first);
            let prepared = self.prepare(subs);
            if to_committer.send(prepared).is_err() {
                break;
            }
        }
        drop(to_committer);
        let _ = committer.join();
    }

    /// Several writers over one store: each batch takes the store's append lock, catches up with
    /// other writers' commits, is admitted and committed, and releases the lock.
    fn run_shared(mut self, rx: Receiver<Submission>) {
        while let Ok(first) = rx.recv() {
            let subs = self.gather(&rx, first);
            let begun = self.begin_shared();
            self.shared.store_unavailable.store(begun.as_ref().is_err_and(StoreError::is_transient), Ordering::SeqCst);
            if let Err(e) = begun {
                self.shared.store.abort_append();
                let transient = e.is_transient();
                tracing::warn!(error = %e, transient, "couldn't begin an append");
                let refusal = if transient {
                    Refusal::new(Code::Unavailable, format!("the store is unavailable: {e}"))
                } else {
                    self.shared.stop_writes(&e);
                    self.shared.writes_stopped_refusal()
                };
                for sub in subs {
                    let _ = sub.reply.send(sub.events.iter().map(|_| Err(refusal.clone())).collect());
                }
                continue;
            }
            let prepared = self.prepare(subs);
            let shared = self.shared.clone();
            let committed = commit_prepared(&shared, prepared, |e| {
                if e.is_transient() {
                    tracing::warn!(error = %e, "a commit failed; resyncing from the store before the next batch");
                    shared.store_unavailable.store(true, Ordering::SeqCst);
                } else {
                    tracing::error!(error = %e, "commit failed; the ledger stops writing");
                    shared.stop_writes(e);
                }
            });
            match committed {
                Ok(()) => {
                    while let Some(p) = self.pending.pop_front() {
                        self.cache_streams(p.streams);
                    }
                }
                Err(e) => self.resync = e.is_transient(),
            }
            self.pending.clear();
        }
    }

    /// Takes the shared store's append lock and brings this node's view (next seq, stream
    /// heads, rule state) up to the head committed under it.
    fn begin_shared(&mut self) -> Result<(), StoreError> {
        if self.resync {
            // Rules may hold a batch whose commit is unknown: rebuild them from the store.
            self.stream_cache.clear();
            if let Some(rules) = &mut self.rules {
                let fresh = crate::rules::from_config(&self.shared.config)
                    .map_err(|e| StoreError::Io(e.to_string()))?
                    .expect("the ledger has rules");
                *rules = fresh;
                self.next_seq = crate::rules::replay_from(rules, &*self.shared.store, 0)?.0;
            } else {
                self.next_seq = self.shared.store.head()?.map(|h| h.0.tree_size).unwrap_or(0);
            }
            self.resync = false;
        }
        // Catch up with what is committed now before taking the lock, so that the lock is held
        // only for what others commit meanwhile (and a node that was away long does not hold
        // every other node up while it reads).
        if let Some((head, _)) = self.shared.store.head()? {
            if head.tree_size > self.next_seq {
                self.catch_up(head.tree_size)?;
            }
        }
        let head = self.shared.store.begin_append()?;
        let size = head.as_ref().map(|h| h.0.tree_size).unwrap_or(0);
        if size < self.next_seq {
            self.resync = true;
            return Err(StoreError::Corrupt {
                what: "head",
                position: size,
                detail: format!("the store's head went back below the {} entries this node has seen", self.next_seq),
            });
        }
        self.catch_up(size)?;
        if let Some((head, note)) = head {
            self.shared.publish(head, Arc::new(note));
        }
        Ok(())
    }

    /// Applies entries other writers committed, `next_seq..to`, to the stream heads and rules.
    fn catch_up(&mut self, to: u64) -> Result<(), StoreError> {
        let store = self.shared.store.clone();
        while self.next_seq < to {
            let page = store.raw_entries(self.next_seq, (to - self.next_seq).min(4096))?;
            let Some(first) = page.first() else {
                return Err(StoreError::Corrupt {
                    what: "entry",
                    position: self.next_seq,
                    detail: "missing below the head".into(),
                });
            };
            debug_assert_eq!(first.seq, self.next_seq);
            for e in page {
                let entry = event::parse_entry(&e.bytes).map_err(|err| StoreError::Corrupt {
                    what: "entry",
                    position: e.seq,
                    detail: err.to_string(),
                })?;
                let head =
                    StreamHead { len: entry.meta.stream_version + 1, last_leaf_hash: e.hashes[0], last_seq: e.seq };
                self.cache_streams([(entry.stream().to_owned(), head)]);
                if let Some(rules) = &mut self.rules {
                    crate::rules::apply_entry(rules, e.seq, &entry, &*store)?;
                }
                self.next_seq = e.seq + 1;
            }
        }
        Ok(())
    }

    /// Reads the id records and stream heads a batch needs in one round trip each.
    fn prefetch(&self, draft: &mut Draft, subs: &[Submission]) -> Result<(), StoreError> {
        let events = subs.iter().flat_map(|s| s.events.iter());
        let mut ids: Vec<&str> = events.clone().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut streams: Vec<&str> =
            events.map(|e| e.stream.as_str()).filter(|s| !self.stream_cache.contains_key(*s)).collect();
        streams.sort_unstable();
        streams.dedup();
        let recs = self.shared.store.id_records(&ids)?;
        draft.known_ids = ids.iter().map(|s| s.to_string()).zip(recs).collect();
        let heads = self.shared.store.stream_heads(&streams)?;
        draft.known_streams = streams.iter().map(|s| s.to_string()).zip(heads).collect();
        Ok(())
    }

    fn stream_head(&mut self, draft: &Draft, stream: &str) -> Result<Option<StreamHead>, StoreError> {
        if let Some(h) = draft.streams.get(stream) {
            return Ok(Some(*h));
        }
        if let Some(h) = draft.pending.iter().rev().find_map(|p| p.streams.get(stream)) {
            return Ok(Some(*h));
        }
        if let Some(h) = self.stream_cache.get(stream) {
            return Ok(Some(*h));
        }
        let h = match draft.known_streams.get(stream) {
            Some(h) => *h,
            None => self.shared.store.stream_head(stream)?,
        };
        if let Some(h) = h {
            self.cache_streams([(stream.to_owned(), h)]);
        }
        Ok(h)
    }

    /// Remembers committed stream heads, within [`STREAM_CACHE_LEN_MAX`] (it starts over when
    /// full: a bound, not an LRU).
    fn cache_streams(&mut self, heads: impl IntoIterator<Item = (String, StreamHead)>) {
        for (stream, head) in heads {
            if self.stream_cache.len() >= STREAM_CACHE_LEN_MAX {
                self.stream_cache.clear();
            }
            self.stream_cache.insert(stream, head);
        }
    }

    fn admit(&mut self, draft: &mut Draft, ev: VerifiedEvent, recorded_at: i64) -> Result<Outcome, StoreError> {
        let digest = ev.content_digest();
        if let Some(&i) = draft.ids.get(&ev.id) {
            return Ok(if draft.entries[i].id_record.digest == digest {
                Outcome::InBatch(i)
            } else {
                Outcome::Refused(Refusal::new(
                    Code::EventIdConflict,
                    format!("event id {} was used earlier in this batch for other content", ev.id),
                ))
            });
        }
        let known = match draft.pending.iter().rev().find_map(|p| p.ids.get(&ev.id)) {
            Some(rec) => Some(rec.clone()),
            None => match draft.known_ids.get(&ev.id) {
                Some(rec) => rec.clone(),
                None => self.shared.store.id_record(&ev.id)?,
            },
        };
        if let Some(rec) = known {
            return Ok(if rec.digest == digest {
                Outcome::Existing(Receipt {
                    seq: rec.seq,
                    leaf_hash: rec.leaf_hash,
                    stream_version: rec.stream_version,
                    tree_size: rec.tree_size,
                })
            } else {
                Outcome::Refused(Refusal::new(
                    Code::EventIdConflict,
                    format!("event id {} is already entry {} with other content", ev.id, rec.seq),
                ))
            });
        }
        let head = self.stream_head(draft, &ev.stream)?;
        let stream_version = head.map(|h| h.len).unwrap_or(0);
        if let Some(expected) = ev.expected_version {
            if expected != stream_version {
                return Ok(Outcome::Refused(Refusal::new(
                    Code::StreamVersionConflict,
                    format!("stream {} has {stream_version} entries; the event expected {expected}", ev.stream),
                )));
            }
        }
        let seq = draft.first_seq + draft.entries.len() as u64;
        let meta = EntryMeta {
            seq,
            recorded_at_unix: recorded_at,
            stream_version,
            stream_prev: head.map(|h| h.last_leaf_hash),
        };
        let bytes = event::entry_bytes(&meta, &ev.canonical, &ev.sig);
        if bytes.len() > ENTRY_BYTES_MAX {
            return Ok(Outcome::Refused(Refusal::new(
                Code::EntryTooLarge,
                format!("the entry would be {} bytes, the limit is {ENTRY_BYTES_MAX}", bytes.len()),
            )));
        }
        // The rules last: `check_and_apply` changes the rule state when it accepts, so nothing
        // may refuse the event after it. (The size check above cannot fire for an event within
        // EVENT_BYTES_MAX, so running it first changes no answer.) A lookup the store could not
        // answer is a store error (`unavailable` when the store is away), never a rule refusal.
        if let Some(rules) = &mut self.rules {
            let env = crate::rules::envelope(seq, &ev.event).expect("a verified event has every envelope field");
            match rules.check_and_apply(&env, &*draft) {
                Ok(()) => {
                    draft.kinds.insert(ev.id.clone(), (ev.stream.clone(), ev.event_type.clone()));
                }
                Err(crate::rules::RuleError::Refused(r)) => return Ok(Outcome::Refused(crate::rules::refusal(r))),
                Err(crate::rules::RuleError::Lookup(e)) => return Err(crate::rules::lookup_store_error(e)),
            }
        }
        let leaf = merkle::leaf_hash(&bytes);
        let new_hashes = merkle::stored_hashes_for(seq, leaf, &*draft).map_err(|e| draft.hash_error(e))?;
        draft.hashes.extend_from_slice(&new_hashes);
        let i = draft.entries.len();
        draft
            .streams
            .insert(ev.stream.clone(), StreamHead { len: stream_version + 1, last_leaf_hash: leaf, last_seq: seq });
        draft.ids.insert(ev.id.clone(), i);
        draft.entries.push(BatchEntry {
            bytes,
            hashes: new_hashes,
            id: ev.id,
            id_record: IdRecord {
                seq,
                stream_version,
                tree_size: 0,
                leaf_hash: leaf,
                digest,
                stream: ev.stream.clone(),
                event_type: ev.event_type.clone(),
            },
            stream: ev.stream,
        });
        Ok(Outcome::InBatch(i))
    }

    /// Orders a group of submissions into one batch and signs its checkpoint. Nothing is
    /// written here: a crash loses the batch, which nobody has been told about.
    fn prepare(&mut self, subs: Vec<Submission>) -> Prepared {
        // Batches the committer has made durable are in the store now.
        let committed = self.shared.head.read().expect("head lock").0.tree_size;
        while self.pending.front().is_some_and(|p| p.end_seq <= committed) {
            let p = self.pending.pop_front().expect("checked above");
            self.cache_streams(p.streams);
        }
        let store = self.shared.store.clone();
        let pending = std::mem::take(&mut self.pending);
        let first_seq = self.next_seq;
        let mut draft = Draft {
            store: &*store,
            pending: &pending,
            first_seq,
            hashes: Vec::new(),
            base_index: merkle::stored_hash_index_of_leaf(first_seq),
            entries: Vec::new(),
            streams: HashMap::new(),
            ids: HashMap::new(),
            kinds: HashMap::new(),
            read_error: Default::default(),
            known_ids: HashMap::new(),
            known_streams: HashMap::new(),
        };
        let recorded_at = self.clock.now_unix();
        let mut outcomes: Vec<(Reply, Vec<Outcome>)> = Vec::with_capacity(subs.len());
        let mut failure: Option<StoreError> = None;
        if store.is_shared() {
            failure = self.prefetch(&mut draft, &subs).err();
        }
        for sub in subs {
            let mut outs = Vec::with_capacity(sub.events.len());
            for ev in sub.events {
                if failure.is_some() {
                    outs.push(Outcome::Refused(Refusal::new(Code::Unavailable, "the ledger stopped writing")));
                    continue;
                }
                if self.shared.failed.load(Ordering::SeqCst) {
                    outs.push(Outcome::Refused(self.shared.writes_stopped_refusal()));
                    continue;
                }
                // `self.pending` is moved into the draft's view while the batch is assembled.
                match self.admit(&mut draft, ev, recorded_at) {
                    Ok(o) => outs.push(o),
                    Err(e) => {
                        outs.push(Outcome::Refused(Refusal::new(
                            Code::Unavailable,
                            format!("couldn't read the store: {e}"),
                        )));
                        failure = Some(e);
                    }
                }
            }
            outcomes.push((sub.reply, outs));
        }
        let tree_size = first_seq + draft.entries.len() as u64;
        let mut batch = None;
        if failure.is_none() && !draft.entries.is_empty() {
            match merkle::root(tree_size, &draft) {
                Ok(root) => {
                    let head = TreeHead { tree_size, root_hash: root };
                    let checkpoint = self.signer.sign(&head);
                    for e in &mut draft.entries {
                        e.id_record.tree_size = tree_size;
                    }
                    batch = Some(CommitBatch {
                        first_seq,
                        entries: std::mem::take(&mut draft.entries),
                        stream_heads: draft.streams.iter().map(|(s, h)| (s.clone(), *h)).collect(),
                        head,
                        checkpoint,
                    });
                }
                Err(e) => failure = Some(draft.hash_error(e)),
            }
        }
        let entries: &[BatchEntry] = batch.as_ref().map(|b| b.entries.as_slice()).unwrap_or(&[]);
        // A failure stops writes unless it is a shared store's transient one (resynced next).
        let stops = failure.as_ref().is_some_and(|e| !(e.is_transient() && store.is_shared()));
        if let (true, Some(e)) = (stops, &failure) {
            // Recorded before anyone is answered (the committer answers), so a client that hears
            // `writes_stopped` finds the ledger stopped, with the reason.
            self.shared.stop_writes(e);
        }
        let replies = outcomes
            .into_iter()
            .map(|(reply, outs)| {
                let results = outs
                    .into_iter()
                    .map(|o| match o {
                        _ if failure.is_some() => match o {
                            Outcome::Refused(r) if !matches!(r.code, Code::Unavailable | Code::WritesStopped) => Err(r),
                            _ if stops => Err(self.shared.writes_stopped_refusal()),
                            _ => Err(Refusal::new(
                                Code::Unavailable,
                                "the commit failed; nothing of this batch was written",
                            )),
                        },
                        Outcome::InBatch(i) => {
                            let r = &entries[i].id_record;
                            Ok(Receipt {
                                seq: r.seq,
                                leaf_hash: r.leaf_hash,
                                stream_version: r.stream_version,
                                tree_size,
                            })
                        }
                        Outcome::Existing(r) => Ok(r),
                        Outcome::Refused(r) => Err(r),
                    })
                    .collect();
                (reply, results)
            })
            .collect();
        let draft_hashes = std::mem::take(&mut draft.hashes);
        let draft_streams = std::mem::take(&mut draft.streams);
        let draft_kinds = std::mem::take(&mut draft.kinds);
        drop(draft);
        self.pending = pending;
        if let Some(e) = failure {
            if e.is_transient() && store.is_shared() {
                tracing::warn!(error = %e, first_seq, "preparing a batch failed; resyncing before the next");
                self.shared.store_unavailable.store(true, Ordering::SeqCst);
                self.resync = true;
            } else {
                tracing::error!(error = %e, first_seq, "preparing a batch failed; the ledger stops writing");
            }
        } else if let Some(b) = &batch {
            self.next_seq = tree_size;
            self.pending.push_back(PendingBatch {
                end_seq: tree_size,
                base_index: merkle::stored_hash_index_of_leaf(first_seq),
                hashes: draft_hashes,
                streams: draft_streams,
                ids: b.entries.iter().map(|e| (e.id.clone(), e.id_record.clone())).collect(),
                kinds: draft_kinds,
            });
        }
        Prepared { batch, replies }
    }
}

/// The committer: makes prepared batches durable in order, publishes the head, answers. The
/// first failure stops writes (one writer cannot tell what a failed write left behind).
fn commit_loop(shared: &Shared, rx: Receiver<Prepared>) {
    while let Ok(prepared) = rx.recv() {
        let _ = commit_prepared(shared, prepared, |e| {
            tracing::error!(error = %e, "commit failed; the ledger stops writing");
            shared.stop_writes(e);
        });
    }
}

/// Commits one prepared batch (or releases the append if it holds nothing new), publishes the
/// head, and answers: receipts only once the batch is durable.
/// `on_failure` runs before anyone is answered, so a client that hears of a failure sees the
/// ledger's state already changed by it.
fn commit_prepared(
    shared: &Shared,
    Prepared { batch, replies }: Prepared,
    on_failure: impl FnOnce(&StoreError),
) -> Result<(), StoreError> {
    let stopped = shared.failed.load(Ordering::SeqCst);
    let result = match &batch {
        _ if stopped => {
            shared.store.abort_append();
            Err(StoreError::Io("the ledger stopped writing".into()))
        }
        Some(batch) => shared.store.commit(batch).map(|()| {
            // Durable: publish the new head, then acknowledge.
            shared.publish(batch.head, Arc::new(batch.checkpoint.clone()));
        }),
        None => {
            shared.store.abort_append();
            Ok(())
        }
    };
    if let (Err(e), false) = (&result, stopped) {
        on_failure(e);
    }
    // After `on_failure`: a failure that stopped writes says so; a transient one (a shared
    // store's database away) is worth a retry.
    let failed = match &result {
        Ok(()) => None,
        Err(_) if shared.failed.load(Ordering::SeqCst) => Some(shared.writes_stopped_refusal()),
        Err(_) => Some(Refusal::new(
            Code::Unavailable,
            "the commit did not complete; retry: an event that was written returns its receipt",
        )),
    };
    for (reply, results) in replies {
        let results = match &failed {
            None => results,
            Some(refusal) => results
                .into_iter()
                .map(|r| match r {
                    Err(r) if !matches!(r.code, Code::Unavailable | Code::WritesStopped) => Err(r),
                    _ => Err(refusal.clone()),
                })
                .collect(),
        };
        let _ = reply.send(results);
    }
    result
}
