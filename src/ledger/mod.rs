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

mod clock;
mod commit;
mod follow;
mod overlay;
mod sequencer;

use clock::ClockCheck;
pub use clock::{StoreClock, CLOCK_SKEW_MAX_SECONDS};
use commit::*;
use follow::*;
use overlay::*;
use sequencer::*;

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

/// How to open a ledger ([`Ledger::open_opts`]).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub limits: Limits,
    pub mode: RulesMode,
    /// Where snapshots of the rule state and read models are loaded from and written to.
    pub snapshots: Option<crate::read::SnapshotOptions>,
    /// When the ledger appends completeness commitments (DESIGN 3.7); `None`: never (short
    /// commands, and tests that count entries).
    pub completeness: Option<crate::read::CompletenessPolicy>,
    /// Whether the ledger's clock is checked against a shared store's before it stamps entries.
    pub store_clock: StoreClock,
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

/// A follower whose round (a head read, at most [`FOLLOW_POLL`] of waiting) has not finished for
/// this long is stuck on a connection that went silent: the node reports the store unavailable
/// and refuses appends. Longer than a round can take while the store answers, a wait for a
/// pooled connection (10 s) included.
const FOLLOW_STALL: std::time::Duration = std::time::Duration::from_secs(15);

/// At most one "couldn't begin an append" warning this often (the others are counted into the
/// next one), so an outage under load logs a line every few seconds, not one per batch.
const BEGIN_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether appends are checked against the ledger's rules. Only tests and benches bypass them
/// (the `testing` feature), to play an operator who writes around the API (the audit must catch
/// what that lets in) or to measure what the rules cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RulesMode {
    #[default]
    Enforce,
    #[cfg(feature = "testing")]
    Bypass,
}

type Reply = tokio::sync::oneshot::Sender<Vec<Result<Receipt, Refusal>>>;

struct Submission {
    events: Vec<VerifiedEvent>,
    reply: Reply,
    /// Told when the sequencer has read the ledger's clock for the batch holding these events
    /// (`Pending::wait_sequenced_blocking`).
    sequenced: Option<tokio::sync::oneshot::Sender<()>>,
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
    /// Whether the latest read of a shared store (the follower's, about every second, or an
    /// append's) found it unreachable: appends are refused `unavailable` up front until a read
    /// succeeds again; the node recovers by itself.
    store_unavailable: AtomicBool,
    /// When this ledger opened, and when (milliseconds after) the follower last finished a
    /// round, so a follower stuck on a silent connection shows as an unavailable store.
    opened_at: std::time::Instant,
    follower_round_ms: AtomicU64,
    /// When a "couldn't begin an append" warning was last logged, and how many were not since.
    begin_warnings: Mutex<(Option<std::time::Instant>, u64)>,
    queued: AtomicU64,
    limits: Limits,
    /// The read models following this ledger's published heads.
    read: crate::read::ReadSide,
    /// Where snapshots are, so a resync after a commit of unknown outcome replays the tail from
    /// the newest snapshot, not the whole log.
    snapshots: Option<crate::read::SnapshotOptions>,
    /// Resyncs of the rule state from the store, and the entries they replayed.
    resyncs: AtomicU64,
    resync_replayed: AtomicU64,
    /// The ledger's clock, and the latest `recorded_at` in the log or admitted (ledger time,
    /// which never runs backwards: the sequencer keeps it).
    clock: Arc<dyn Clock>,
    latest_recorded_at: std::sync::atomic::AtomicI64,
    /// The shared store's clock, which this node's must agree with to stamp entries.
    clock_check: ClockCheck,
}

impl Shared {
    /// Stops writes for good (until the ledger is reopened) because of `e`; the reason is
    /// recorded before the flag, so whoever sees the flag can say why.
    fn stop_writes(&self, e: &StoreError) {
        self.stop_reason.lock().expect("stop reason lock").get_or_insert_with(|| crate::store::error_chain(e));
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Whether the store is known to be unreachable: the latest read of it failed, or the
    /// follower has been stuck in one for [`FOLLOW_STALL`] (a connection gone silent).
    fn store_unavailable(&self) -> bool {
        if self.store_unavailable.load(Ordering::SeqCst) {
            return true;
        }
        let since_round = self
            .opened_at
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(self.follower_round_ms.load(Ordering::SeqCst)));
        self.store.is_shared() && since_round > FOLLOW_STALL
    }

    /// Records the outcome of a follower's round: the store answered, or could not be reached.
    fn follower_round(&self, result: &Result<(), StoreError>) {
        self.store_unavailable.store(result.as_ref().is_err_and(StoreError::is_unreachable), Ordering::SeqCst);
        let now = u64::try_from(self.opened_at.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.follower_round_ms.store(now, Ordering::SeqCst);
    }

    /// Logs that a batch could not begin its append, at most once per [`BEGIN_WARNING_EVERY`]
    /// with the count of failures since the last line.
    fn warn_begin_failed(&self, e: &StoreError) {
        let mut w = self.begin_warnings.lock().expect("warning lock");
        if w.0.is_some_and(|at| at.elapsed() < BEGIN_WARNING_EVERY) {
            w.1 += 1;
            return;
        }
        let unlogged = std::mem::take(&mut w.1);
        w.0 = Some(std::time::Instant::now());
        drop(w);
        tracing::warn!(
            error = %crate::store::error_chain(e),
            transient = e.is_transient(),
            unlogged_since_last = unlogged,
            "couldn't begin an append"
        );
    }

    /// The refusal of appends while the store is known to be unreachable: before any work.
    fn store_unavailable_refusal(&self) -> Refusal {
        Refusal::new(
            Code::Unavailable,
            "the store cannot be reached from this node; retry after the delay (or through another node)",
        )
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
            self.read.offer_head(head);
        }
    }
}

/// The rule state to start from: the snapshot's when one is loaded and its rule section loads
/// under this config (with the tree size it reflects), else a fresh state at 0; `None` when the
/// ledger has no rules. Why a snapshot's state is passed over goes to `warnings`, naming `what`
/// (the ledger, the read side) replays from the log instead.
fn rules_start(
    config: &LedgerConfig,
    loaded: Option<&crate::read::Loaded>,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<(crate::rules::Rules, u64)>, LedgerError> {
    let Some(fresh) = crate::rules::from_config(config).map_err(LedgerError::Rules)? else { return Ok(None) };
    if let Some((l, (bytes, values))) = loaded.and_then(|l| Some((l, l.rules()?))) {
        match crate::read::snapshot::load_rules(config, values, bytes) {
            Ok(r) => return Ok(Some((r, l.tree_size))),
            Err(e) => warnings.push(format!("snapshot at {}: {e}; {what} replays the rules from the log", l.tree_size)),
        }
    }
    Ok(Some((fresh, 0)))
}

/// A ledger open for appends and reads. Cheap to clone; all clones share one sequencer.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    /// Shared by every clone; the commitment sink holds it weakly, so the sequencer still ends
    /// when the last clone is dropped.
    tx: Arc<SyncSender<Submission>>,
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

    /// [`Ledger::open`] with the rules mode spelled out, and no snapshots.
    pub fn open_with(
        store: Arc<dyn Store>,
        ledger_key: KeyPair,
        clock: Arc<dyn Clock>,
        limits: Limits,
        mode: RulesMode,
    ) -> Result<Self, LedgerError> {
        Self::open_opts(store, ledger_key, clock, OpenOptions { limits, mode, ..Default::default() })
    }

    /// Opens the ledger with every option. With snapshots, the rule state and the read models
    /// start from the newest snapshot the log vouches for and replay only the tail; without, or
    /// when none is usable, from the whole log.
    pub fn open_opts(
        store: Arc<dyn Store>,
        ledger_key: KeyPair,
        clock: Arc<dyn Clock>,
        options: OpenOptions,
    ) -> Result<Self, LedgerError> {
        let OpenOptions { limits, mode, snapshots, completeness, store_clock } = options;
        assert!(
            limits.batch_len_max as u64 <= crate::store::BATCH_LEN_MAX,
            "a batch may hold at most {} entries (store recovery relies on it)",
            crate::store::BATCH_LEN_MAX
        );
        let started = std::time::Instant::now();
        let config = store.config()?.ok_or(LedgerError::NotInitialized)?;
        let commitment_key = completeness.is_some().then(|| ledger_key.clone());
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
        let (loaded, warnings) = match &snapshots {
            Some(s) => crate::read::snapshot::load_newest(s, &*store, head.0.tree_size),
            None => (None, Vec::new()),
        };
        let rules_at = |what: &str, warnings: &mut Vec<String>| rules_start(&config, loaded.as_ref(), what, warnings);
        // The ledger's rules (snapshot + tail) and the read side (the rule copy and every model
        // loaded) are independent: both cores load them at once.
        let mut rule_warnings = Vec::new();
        let (rules, read) = rayon::join(
            || -> Result<_, LedgerError> {
                match mode {
                    RulesMode::Enforce => match rules_at("the ledger", &mut rule_warnings)? {
                        Some((mut rules, from)) => {
                            let (end, failed) = crate::rules::replay_from(&mut rules, &*store, from)?;
                            if failed > 0 {
                                tracing::warn!(failed, "entries in the log fail the rules; run `zachetka audit`");
                            }
                            Ok((Some(rules), end))
                        }
                        None => Ok((None, next_seq)),
                    },
                    #[cfg(feature = "testing")]
                    RulesMode::Bypass => Ok((None, next_seq)),
                }
            },
            || -> Result<_, LedgerError> {
                // The read side keeps its own copy of the rule state only to write snapshots;
                // a snapshot's copy is decoded by its runner when first needed, not on the open's
                // path (the other branch decodes the ledger's own).
                let from_snapshot =
                    loaded.as_ref().and_then(|l| Some((l.tree_size, l.rules_range()?, l.buffer(), l.rules()?.1)));
                let rule_copy = match (&snapshots, mode, from_snapshot) {
                    (Some(_), RulesMode::Enforce, Some((at, range, buffer, values))) => {
                        let (c1, c2, buffer) = (config.clone(), config.clone(), buffer.clone());
                        let source = values.clone();
                        Some(crate::read::RuleCopySource::Section {
                            at,
                            bytes: (buffer.clone(), range.clone(), values),
                            decode: Box::new(move || crate::read::snapshot::load_rules(&c1, source, &buffer[range])),
                            fresh: Box::new(move || crate::rules::from_config(&c2).ok().flatten()),
                        })
                    }
                    (Some(_), RulesMode::Enforce, None) => rules_at("the read side", &mut Vec::new())?
                        .map(|(rules, at)| crate::read::RuleCopySource::Ready(Box::new(rules), at)),
                    _ => None,
                };
                Ok(crate::read::ReadSide::start(
                    store.clone(),
                    head.0,
                    snapshots.clone(),
                    rule_copy,
                    loaded.as_ref(),
                    warnings,
                ))
            },
        );
        let (rules, end) = rules?;
        next_seq = end;
        let read = read?;
        for w in rule_warnings {
            read.add_warning(w);
        }
        // The store's index opened beside all of the above; the ledger serves nothing before it.
        let index_wait = std::time::Instant::now();
        store.ready()?;
        let index_wait = index_wait.elapsed();
        let last_recorded_at = last_recorded_at(&*store, next_seq)?;
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
            opened_at: std::time::Instant::now(),
            follower_round_ms: AtomicU64::new(0),
            begin_warnings: Mutex::new((None, 0)),
            queued: AtomicU64::new(0),
            limits,
            read,
            snapshots: snapshots.clone(),
            resyncs: AtomicU64::new(0),
            resync_replayed: AtomicU64::new(0),
            clock: clock.clone(),
            latest_recorded_at: std::sync::atomic::AtomicI64::new(last_recorded_at),
            clock_check: ClockCheck::new(store_clock),
        });
        // Read now, so a node whose clock is off says so from its start, before any append.
        shared.clock_check.refresh(&*shared.store, true);
        let (tx, rx) = sync_channel(limits.queue_depth_max);
        let tx = Arc::new(tx);
        if let (Some(policy), Some(key)) = (completeness, commitment_key) {
            let sink = commitment_sink(Arc::downgrade(&shared), Arc::downgrade(&tx), key);
            shared.read.enable_commitments(policy, sink);
        }
        let seq_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("zachetka-sequencer".into())
            .spawn(move || Sequencer::new(seq_shared, signer, clock, rules, next_seq, last_recorded_at).run(rx))
            .expect("spawn sequencer thread");
        if shared.store.is_shared() {
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("zachetka-follower".into())
                .spawn(move || follow_loop(weak))
                .expect("spawn follower thread");
        }
        tracing::info!(
            tree_size = next_seq,
            snapshot = ?loaded.as_ref().map(|l| l.tree_size),
            seconds = started.elapsed().as_secs_f64(),
            index_wait_seconds = index_wait.as_secs_f64(),
            "ledger open"
        );
        Ok(Self { shared, tx, _sequencer: Arc::new(SequencerHandle { thread: Mutex::new(Some(thread)) }) })
    }

    /// The read models following this ledger.
    pub fn read_side(&self) -> &crate::read::ReadSide {
        &self.shared.read
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

    /// Refuses appends this node cannot take now, whatever they hold: on a read replica, after
    /// writes stopped, or while the store is known to be unreachable (`unavailable`, retryable).
    /// Cheap; callers check it before admitting work.
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
        if self.shared.store_unavailable() {
            return Err(self.shared.store_unavailable_refusal());
        }
        self.shared.clock_check.check_recent(&*self.shared.clock)?;
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

    /// How often the sequencer rebuilt its rule state from the store after a commit of unknown
    /// outcome (shared stores), and how many entries those rebuilds replayed in all: with
    /// snapshots, each replays the tail after the newest one, not the log.
    pub fn resync_stats(&self) -> (u64, u64) {
        (self.shared.resyncs.load(Ordering::Relaxed), self.shared.resync_replayed.load(Ordering::Relaxed))
    }

    /// How many seconds ledger time (the latest `recorded_at`) stands ahead of the ledger's clock,
    /// 0 when it does not: a clock stepped back, a node whose clock lags another's, or a demo
    /// ledger whose history runs past today. While it is ahead, new entries are stamped with
    /// ledger time, not the clock.
    pub fn ledger_time_ahead_of_clock(&self) -> i64 {
        let latest = self.shared.latest_recorded_at.load(Ordering::SeqCst);
        latest.saturating_sub(self.shared.clock.now_unix()).max(0)
    }

    /// Whether the (shared) store is known to be unreachable: the latest read of it (the
    /// follower's, about every second, or an append's) failed to reach it, or the follower has
    /// been stuck in a read for a while (a connection gone silent). Never for sled.
    pub fn is_store_unavailable(&self) -> bool {
        self.shared.store_unavailable()
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
            return Ok(Pending { results, rx: None, sequenced: None });
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let (sequenced, sequenced_rx) = tokio::sync::oneshot::channel();
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(Submission { events: valid, reply, sequenced: Some(sequenced) }) {
            Ok(()) => Ok(Pending { results, rx: Some(rx), sequenced: Some(sequenced_rx) }),
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

    /// The checkpoint note signed at exactly `tree_size` (a receipt's `tree_size` always has one),
    /// or `None` if no commit batch ended at that size. The note is verified before it is
    /// returned, as entries are on read: one that does not verify under the ledger's verifier
    /// key, or whose body names another tree size, is damage at that tree size, never served.
    pub fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(note) = self.shared.store.checkpoint_at(tree_size)? else { return Ok(None) };
        let config = self.config();
        let damaged = |detail: String| StoreError::Corrupt { what: "checkpoint", position: tree_size, detail };
        match crate::checkpoint::verify_checkpoint(&note, &config.verifier_key, &config.origin) {
            Ok(v) if v.head.tree_size == tree_size => Ok(Some(note)),
            Ok(v) => {
                Err(damaged(format!("the note stored for it is the checkpoint of tree size {}", v.head.tree_size)))
            }
            Err(e) => Err(damaged(format!("its stored note does not verify: {e}"))),
        }
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
        for (seq, e) in (start..).zip(entries) {
            // Bounded at append; stored bytes that are longer are damage, reported, not a panic.
            if e.len() > ENTRY_BYTES_MAX {
                let detail = format!("{} bytes, longer than any entry ({ENTRY_BYTES_MAX})", e.len());
                return Err(StoreError::Corrupt { what: "entry", position: seq, detail });
            }
            out.extend_from_slice(&(e.len() as u16).to_be_bytes());
            out.extend_from_slice(&e);
        }
        Ok(Some(out))
    }
}

/// The read side's way to append a completeness commitment (DESIGN 3.7): the draft signed by
/// the ledger key (its `did:key` the author), verified like any event and queued for the
/// sequencer; blocks until it is durable or refused. Holds the ledger weakly: it never keeps a
/// closed ledger's sequencer alive.
fn commitment_sink(
    shared: std::sync::Weak<Shared>,
    tx: std::sync::Weak<SyncSender<Submission>>,
    key: KeyPair,
) -> crate::read::CommitmentSink {
    Box::new(move |draft: &crate::read::CommitmentDraft| {
        let rx = {
            let (Some(shared), Some(tx)) = (shared.upgrade(), tx.upgrade()) else {
                return Err("the ledger is closing".into());
            };
            let origin = shared.config.origin.as_str();
            let signed = event::sign_event_owned(draft.event(origin, &key.did()), &key).map_err(|e| e.to_string())?;
            let verified = event::verify_signed(signed, origin, &shared.keys).map_err(|r| r.to_string())?;
            let (reply, rx) = tokio::sync::oneshot::channel();
            shared.queued.fetch_add(1, Ordering::SeqCst);
            if tx.send(Submission { events: vec![verified], reply, sequenced: None }).is_err() {
                shared.queued.fetch_sub(1, Ordering::SeqCst);
                return Err("the sequencer stopped".into());
            }
            rx
            // `shared` and `tx` are dropped here: waiting holds no strong reference.
        };
        match rx.blocking_recv().map_err(|_| "the sequencer stopped before answering".to_owned())?.pop() {
            Some(Ok(receipt)) => Ok(receipt.seq),
            Some(Err(refusal)) => Err(refusal.to_string()),
            None => Err("no answer".into()),
        }
    })
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
    sequenced: Option<tokio::sync::oneshot::Receiver<()>>,
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

    /// Blocks until the sequencer has taken these events into a batch and read the ledger's
    /// clock for it: their `recorded_at` is then fixed, whatever the clock says afterwards (a
    /// driver that moves a clock it controls, as the demo does, waits for this, not for
    /// durability). Returns at once when nothing was queued, or when the sequencer stopped. The
    /// receipts still come only once the batch is durable ([`Pending::wait_blocking`]).
    pub fn wait_sequenced_blocking(&mut self) {
        if let Some(rx) = self.sequenced.take() {
            let _ = rx.blocking_recv();
        }
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

/// The `recorded_at` of the entry before `next_seq` (unix seconds; `i64::MIN` for an empty log):
/// the earliest ledger time the next batch may carry.
fn last_recorded_at(store: &dyn Store, next_seq: u64) -> Result<i64, StoreError> {
    let Some(last) = next_seq.checked_sub(1) else { return Ok(i64::MIN) };
    let bytes = store.entries(last, 1)?.pop().ok_or(StoreError::Corrupt {
        what: "entry",
        position: last,
        detail: "missing below the head".into(),
    })?;
    let entry = event::parse_entry(&bytes).map_err(|e| StoreError::Corrupt {
        what: "entry",
        position: last,
        detail: e.to_string(),
    })?;
    Ok(entry.meta.recorded_at_unix)
}
