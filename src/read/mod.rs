//! The read side bound to the ledger: every read model of `zachetka-projections` following the
//! committed log with a cursor each (the tree size it has applied: the log has no gaps, so a
//! cursor is the whole position, with no high-water mark to guess and no event to skip), a copy
//! of the rule state at the same cursor (so a snapshot binds both to one position), snapshots
//! written by policy and loaded on open ([`snapshot`]), and views answered with the tree size and
//! root they reflect. A runner thread wakes on every published head.
//! Not the models (pure folds in `projections/`), not the snapshot file format
//! (`zachetka-snapshots`), and not HTTP (`api::projections`).

pub mod completeness;
mod pipeline;
pub mod snapshot;

use crate::checkpoint::TreeHead;
use crate::merkle::{self, Hash};
use crate::rules::Rules;
use crate::store::{Store, StoreError, StoreHashes};
use pipeline::{fold_page, read_page, Page, RuleReplay};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};
use zachetka_projections::lazy;
use zachetka_projections::model::{self, ReadModel, View, ViewError};

pub use completeness::{CommitmentDraft, CommitmentSink, CompletenessFor, CompletenessPolicy};
pub use snapshot::{SnapshotOptions, SnapshotPolicy};

/// Entries one step of the runner reads and parses (on every core) while the models fold the
/// page before (each under its own lock).
const PAGE_LEN: u64 = 4096;
/// How long the runner waits before retrying after a failed read (the store may come back).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// One read model and the tree size it has applied.
struct Slot {
    model: Box<dyn ReadModel>,
    cursor: u64,
    /// The root of the tree of `cursor` entries, when the runner knows it without a store read
    /// (it reached a published head); otherwise computed on demand.
    root: Option<Hash>,
    /// The digest at `cursor`, computed once when asked.
    digest: Option<(u64, [u8; 32])>,
}

/// The rule state at its own cursor (only kept when snapshots are written).
struct RuleCopy {
    state: RuleState,
    cursor: u64,
}

/// A snapshot section as the read side keeps it undecoded: the snapshot's buffer, where the
/// section lies in it, and the section's values.
pub type SectionBytes = (Arc<Vec<u8>>, std::ops::Range<usize>, Arc<dyn lazy::ValueSource>);

/// Turns a snapshot's rule-state section into the state, or says why not.
pub type DecodeRules = Box<dyn FnOnce() -> Result<Rules, String> + Send>;
/// A rule state from zero, when the ledger has rules.
pub type FreshRules = Box<dyn FnOnce() -> Option<Rules> + Send>;

enum RuleState {
    Ready(Box<Rules>),
    /// A snapshot's section not decoded yet (`RuleCopySource::Section`).
    Pending {
        /// The section: the snapshot's buffer, where the section lies in it, and its values.
        bytes: SectionBytes,
        decode: DecodeRules,
        fresh: FreshRules,
    },
    /// Neither the section nor a fresh state could be had: the copy is dropped.
    Gone,
}

impl RuleCopy {
    fn of(source: RuleCopySource) -> Self {
        match source {
            RuleCopySource::Ready(rules, cursor) => Self { state: RuleState::Ready(rules), cursor },
            RuleCopySource::Section { at, bytes, decode, fresh } => {
                Self { state: RuleState::Pending { bytes, decode, fresh }, cursor: at }
            }
        }
    }

    /// The state, decoding a pending section first; a warning when it had to start from zero.
    fn ready(&mut self) -> (Option<&mut Rules>, Option<String>) {
        let mut warning = None;
        if matches!(self.state, RuleState::Pending { .. }) {
            let RuleState::Pending { decode, fresh, .. } = std::mem::replace(&mut self.state, RuleState::Gone) else {
                unreachable!("matched above")
            };
            self.state = match decode() {
                Ok(rules) => RuleState::Ready(Box::new(rules)),
                Err(e) => {
                    warning =
                        Some(format!("snapshot at {}: {e}; the read side replays the rules from the log", self.cursor));
                    self.cursor = 0;
                    fresh().map_or(RuleState::Gone, |r| RuleState::Ready(Box::new(r)))
                }
            };
        }
        match &mut self.state {
            RuleState::Ready(rules) => (Some(&mut **rules), warning),
            _ => (None, warning),
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    /// Every model behind a lock of its own: a view waits only for its own model's fold (and
    /// the runner's fold of one model only for that model's views), not for the whole page's
    /// folds and the rule copy's replay beside them.
    slots: Vec<RwLock<Slot>>,
    /// The models' names, in order (fixed at the start).
    names: Vec<&'static str>,
    rules: Mutex<Option<RuleCopy>>,
    /// The newest head published by the ledger, and the runner's wake-up.
    head: Mutex<TreeHead>,
    wake: Condvar,
    stop: AtomicBool,
    /// The smallest cursor over all models (what `min_tree_size` waits on).
    applied: tokio::sync::watch::Sender<u64>,
    snapshots: Option<SnapshotOptions>,
    /// The last snapshot written or loaded: its tree size (`None` before any), and since when
    /// the policy counts (then, or the start).
    last_snapshot: Mutex<(Option<u64>, Instant)>,
    /// The last snapshot *attempt* by the policy, written or failed: its tree size and when. The
    /// policy counts from it, so a write that fails is retried at the next period, not after
    /// every batch (each try serializes every model under the rule copy's lock).
    last_attempt: Mutex<(u64, Instant)>,
    /// Why the last write failed (`None` once one succeeds), for status; and writes failed in all.
    snapshot_failing: Mutex<Option<String>>,
    snapshot_failures: AtomicU64,
    /// The last error of the runner, cleared when it reads again.
    failing: Mutex<Option<String>>,
    /// Warnings from open (a snapshot refused, a model rebuilt from zero), for status.
    warnings: Mutex<Vec<String>>,
    /// Completeness commitments: the policy and the ledger's sink, once enabled.
    committer: Mutex<Option<completeness::Writer>>,
    /// Set when the runner should look at the commitment policy without a new head.
    recheck: AtomicBool,
    /// Maps of the latest commitments (by `up_to`), for `completeness_for`.
    maps: Mutex<Vec<(u64, Arc<zachetka_projections::completeness::Map>)>>,
    /// The tree size the runner has fully handled (applied, and any commitment it owed
    /// submitted and durable).
    settled: AtomicU64,
}

/// The read side of one ledger. Dropping it stops the runner and waits for it.
pub struct ReadSide {
    inner: Arc<Inner>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the ledger's open loaded from a snapshot for the read side: the verified file, whose
/// sections are decoded straight from its one buffer (no copies).
pub struct Loaded {
    pub tree_size: u64,
    pub root: Hash,
    /// The snapshot's file name, for messages.
    pub file: String,
    /// Whether the rule-state section has the current version.
    rules_current: bool,
    snapshot: zachetka_snapshots::Snapshot,
}

impl Loaded {
    /// The rule-state section's bytes (`Rules::encode_state`, values apart) and its values, when
    /// it has the current version.
    pub fn rules(&self) -> Option<(&[u8], Arc<dyn lazy::ValueSource>)> {
        if !self.rules_current {
            return None;
        }
        self.snapshot.section(snapshot::RULES_SECTION).map(|s| (s.bytes, s.values.source()))
    }

    /// The sections' buffer, which every section's bytes are a slice of.
    pub fn buffer(&self) -> &Arc<Vec<u8>> {
        self.snapshot.buffer()
    }

    /// Where the rule-state section lies in `buffer`, when it has the current version.
    pub fn rules_range(&self) -> Option<std::ops::Range<usize>> {
        self.snapshot.section_range(snapshot::RULES_SECTION).filter(|_| self.rules_current)
    }

    /// The model sections: (name, version, bytes, values).
    pub fn models(&self) -> impl Iterator<Item = SnapshotModel<'_>> {
        (self.snapshot.sections().filter(|s| s.name != snapshot::RULES_SECTION))
            .map(|s| (s.name, s.version, s.bytes, s.values.source()))
    }
}

/// A read model's section of a snapshot: its name, version, bytes, and the values they refer to.
pub type SnapshotModel<'a> = (&'a str, u32, &'a [u8], Arc<dyn lazy::ValueSource>);

/// The rule copy the read side keeps (to write snapshots with the rule state at the models'
/// position), as the ledger's open hands it over.
pub enum RuleCopySource {
    /// A rule state and the tree size it has applied.
    Ready(Box<Rules>, u64),
    /// A snapshot's rule-state section at tree size `at`, decoded by the runner when it first
    /// needs the state (the ledger's open decodes its own rules; it need not wait for a second
    /// decode). When `decode` refuses the bytes, the copy starts from `fresh` at zero, with a
    /// warning, as an open would.
    Section { at: u64, bytes: SectionBytes, decode: DecodeRules, fresh: FreshRules },
}

/// A view's answer with the log position it reflects.
#[derive(Debug, Clone)]
pub struct Answer {
    pub model: &'static str,
    pub tree_size: u64,
    pub root: Hash,
    pub view: View,
}

/// Why a view could not be answered.
#[derive(Debug)]
pub enum ReadError {
    /// No read model of that name.
    UnknownModel(String),
    View(ViewError),
    /// Computing the root at the model's position failed.
    Store(String),
}

/// Status of one read model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelStatus {
    pub name: &'static str,
    pub version: u32,
    /// The tree size it has applied.
    pub cursor: u64,
    /// Entries committed and not yet applied.
    pub lag: u64,
    pub caught_up: bool,
}

/// Status of the read side, for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub models: Vec<ModelStatus>,
    /// The tree size of the last snapshot written or loaded.
    pub snapshot_tree_size: Option<u64>,
    /// Snapshot writes that failed since the start (each retried at the policy's next period).
    pub snapshot_failures: u64,
    pub failing: Option<String>,
    /// Warnings from open, and "snapshot write failing: ..." while the last write failed.
    pub warnings: Vec<String>,
    /// Completeness commitments: whether this server makes them, and refusals.
    pub completeness: completeness::CommitmentStatus,
}

/// A model's digest at its cursor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelDigest {
    pub name: &'static str,
    pub version: u32,
    pub tree_size: u64,
    /// Lowercase hex SHA-256 (`zachetka_projections::model::digest`).
    pub digest: String,
}

impl ReadSide {
    /// Starts the read side of a ledger whose committed head is `head`: every model from the
    /// snapshot in `loaded` when it carries the model at the same version (else from zero), the
    /// rule copy (kept for snapshots) at its position, and the runner thread, which catches up
    /// and then follows every published head.
    pub fn start(
        store: Arc<dyn Store>,
        head: TreeHead,
        snapshots: Option<SnapshotOptions>,
        rules: Option<RuleCopySource>,
        loaded: Option<&Loaded>,
        mut warnings: Vec<String>,
    ) -> Self {
        let mut slots: Vec<Slot> =
            model::all().into_iter().map(|model| Slot { model, cursor: 0, root: None, digest: None }).collect();
        let rule_copy = rules.map(RuleCopy::of);
        let mut last_snapshot = (None, Instant::now());
        if let Some(loaded) = loaded {
            // Models load on every core (decoding is most of an open from a snapshot).
            let sections: Vec<SnapshotModel> = loaded.models().collect();
            let loads: Vec<Option<String>> = slots
                .par_iter_mut()
                .with_max_len(1)
                .map(|slot| {
                    let (name, version) = (slot.model.name(), slot.model.version());
                    match sections.iter().find(|(n, ..)| *n == name) {
                        Some((_, v, bytes, values)) if *v == version => match lazy::load_apart(values.clone(), || {
                            slot.model.load(bytes)
                        }) {
                            Ok(()) => {
                                slot.cursor = loaded.tree_size;
                                slot.root = Some(loaded.root);
                                None
                            }
                            Err(e) => Some(format!("{e}; rebuilding it from the log")),
                        },
                        Some((_, v, ..)) => Some(format!(
                            "read model {name}: the snapshot holds version {v}, this build {version}; rebuilding it from the log"
                        )),
                        None => Some(format!("read model {name}: not in the snapshot; rebuilding it from the log")),
                    }
                })
                .collect();
            warnings.extend(loads.into_iter().flatten());
            last_snapshot.0 = Some(loaded.tree_size);
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let min = slots.iter().map(|s| s.cursor).min().unwrap_or(head.tree_size);
        let (applied, _) = tokio::sync::watch::channel(min);
        let names = slots.iter().map(|s| s.model.name()).collect();
        let inner = Arc::new(Inner {
            store,
            slots: slots.into_iter().map(RwLock::new).collect(),
            names,
            rules: Mutex::new(rule_copy),
            head: Mutex::new(head),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            applied,
            snapshots,
            last_attempt: Mutex::new((last_snapshot.0.unwrap_or(0), last_snapshot.1)),
            last_snapshot: Mutex::new(last_snapshot),
            snapshot_failing: Mutex::new(None),
            snapshot_failures: AtomicU64::new(0),
            failing: Mutex::new(None),
            warnings: Mutex::new(warnings),
            committer: Mutex::new(None),
            recheck: AtomicBool::new(false),
            maps: Mutex::new(Vec::new()),
            settled: AtomicU64::new(0),
        });
        let runner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("zachetka-read-models".into())
            .spawn(move || runner.run())
            .expect("spawn the read-model runner");
        Self { inner, thread: Mutex::new(Some(thread)) }
    }

    /// Adds a warning for status (and the log).
    pub fn add_warning(&self, warning: String) {
        tracing::warn!("{warning}");
        self.inner.warnings.lock().expect("warnings lock").push(warning);
    }

    /// Tells the runner that `head` is committed and published.
    pub fn offer_head(&self, head: TreeHead) {
        let mut h = self.inner.head.lock().expect("read head lock");
        if head.tree_size > h.tree_size {
            *h = head;
            self.inner.wake.notify_all();
        }
    }

    /// The smallest tree size every model has applied.
    pub fn applied(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// Waits until every model has applied `tree_size` entries, at most `timeout`; returns
    /// whether they have.
    pub async fn wait_applied(&self, tree_size: u64, timeout: Duration) -> bool {
        let mut rx = self.inner.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n >= tree_size)).await.is_ok_and(|r| r.is_ok())
    }

    /// Blocks until every model has applied `tree_size` entries (for the CLI and tests; the
    /// runner must be able to reach it).
    pub fn wait_applied_blocking(&self, tree_size: u64) {
        let mut rx = self.inner.applied.subscribe();
        while *rx.borrow_and_update() < tree_size {
            if self.inner.stop.load(Ordering::SeqCst) {
                return;
            }
            let (lock, cv) = (&self.inner.head, &self.inner.wake);
            let g = lock.lock().expect("read head lock");
            // The runner notifies `wake` after every applied page, so this wait ends with it.
            let _ = cv.wait_timeout(g, Duration::from_millis(100)).expect("read head lock");
        }
    }

    /// The names of every read model, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.inner.names.clone()
    }

    /// Answers `path` of the model `name`, with the position it reflects. May wait for the
    /// model's fold of a page, and read the store for the root: call it where blocking is fine.
    pub fn view(&self, name: &str, path: &[&str]) -> Result<Answer, ReadError> {
        let (model, tree_size, root, view) = {
            let slot = self.inner.slot(name).ok_or_else(|| ReadError::UnknownModel(name.to_owned()))?;
            let slot = slot.read().expect("slot lock");
            let view = slot.model.view(path).map_err(ReadError::View)?;
            (slot.model.name(), slot.cursor, slot.root, view)
        };
        let root = match root {
            Some(r) => r,
            None => self.inner.root_at(tree_size).map_err(ReadError::Store)?,
        };
        Ok(Answer { model, tree_size, root, view })
    }

    /// The scope `path` of the model `name` answers with now, when the model tells it without
    /// answering ([`ReadModel::scope_of`]); `None` otherwise. May wait for the model's fold of a
    /// page: call it where blocking is fine.
    pub fn scope_of(&self, name: &str, path: &[&str]) -> Option<zachetka_projections::Scope> {
        self.inner.slot(name)?.read().expect("slot lock").model.scope_of(path)
    }

    /// Answers a point view at once ([`ReadModel::view_now`]): `None` when the model does not
    /// answer `path` at once, when it is being folded (its lock is held or asked for), or when
    /// the root of its position would have to be read from the store. Then ask [`Self::view`]
    /// where blocking is fine. An answer is the one `view` gives.
    pub fn try_view(&self, name: &str, path: &[&str]) -> Option<Result<Answer, ReadError>> {
        let Some(slot) = self.inner.slot(name) else { return Some(Err(ReadError::UnknownModel(name.to_owned()))) };
        let slot = slot.try_read().ok()?;
        let root = slot.root?;
        Some(match slot.model.view_now(path)? {
            Ok(view) => Ok(Answer { model: slot.model.name(), tree_size: slot.cursor, root, view }),
            Err(e) => Err(ReadError::View(e)),
        })
    }

    /// Why the last snapshot write failed, until one succeeds.
    pub fn snapshot_failing(&self) -> Option<String> {
        self.inner.snapshot_failing.lock().expect("snapshot lock").clone()
    }

    /// Cursors, lags and the snapshot state.
    pub fn status(&self, head_size: u64) -> Status {
        let models = (self.inner.slots.iter())
            .map(|s| s.read().expect("slot lock"))
            .map(|s| ModelStatus {
                name: s.model.name(),
                version: s.model.version(),
                cursor: s.cursor,
                lag: head_size.saturating_sub(s.cursor),
                caught_up: s.cursor >= head_size,
            })
            .collect();
        let mut warnings = self.inner.warnings.lock().expect("warnings lock").clone();
        if let Some(e) = self.inner.snapshot_failing.lock().expect("snapshot lock").clone() {
            warnings.push(format!("snapshot write failing: {e}"));
        }
        Status {
            models,
            snapshot_tree_size: self.inner.last_snapshot.lock().expect("snapshot lock").0,
            snapshot_failures: self.inner.snapshot_failures.load(Ordering::Relaxed),
            failing: self.inner.failing.lock().expect("failing lock").clone(),
            warnings,
            completeness: self.inner.commitment_status(),
        }
    }

    /// Every model's digest at its cursor (computed once per cursor: encoding a large state
    /// takes a while, so ask when comparing, not on every status).
    pub fn digests(&self) -> Vec<ModelDigest> {
        // Every model locked at once: the digests of one moment.
        let mut slots: Vec<_> = self.inner.slots.iter().map(|s| s.write().expect("slot lock")).collect();
        slots
            .iter_mut()
            .map(|s| {
                let digest = match s.digest {
                    Some((at, d)) if at == s.cursor => d,
                    _ => {
                        let d = model::digest(&*s.model);
                        s.digest = Some((s.cursor, d));
                        d
                    }
                };
                ModelDigest {
                    name: s.model.name(),
                    version: s.model.version(),
                    tree_size: s.cursor,
                    digest: hex(&digest),
                }
            })
            .collect()
    }

    /// Writes a snapshot now, if snapshots are configured and every model and the rule state
    /// stand at one position (the runner does this by policy; the CLI after a rebuild).
    pub fn snapshot_now(&self) -> Result<Option<std::path::PathBuf>, String> {
        self.inner.write_snapshot()
    }
}

impl Drop for ReadSide {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        {
            let _g = self.inner.head.lock().expect("read head lock");
            self.inner.wake.notify_all();
        }
        if let Some(t) = self.thread.lock().expect("runner handle lock").take() {
            let _ = t.join();
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far `catch_up` goes when the read side is asked to stop meanwhile.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// To the target, or the stop, whichever comes first (the runner's normal pace).
    Stopped,
    /// To the target (a clean stop's last catch-up before its snapshot).
    Target,
}

impl Inner {
    fn run(self: Arc<Self>) {
        loop {
            // Either entries to apply up to a head, or only the commitment policy to look at
            // (nothing settled at this head yet, commitments just enabled, or a time policy's
            // tick: the only timed wait, a clock for the policy, not a synchronization).
            let (target, apply) = {
                let mut head = self.head.lock().expect("read head lock");
                loop {
                    if self.stop.load(Ordering::SeqCst) {
                        let target = *head;
                        drop(head);
                        // A clean stop first applies what the log already holds (it is durable:
                        // replaying it at the next open would cost the same), then leaves a
                        // snapshot of everything applied since the last one, whatever the policy
                        // owes, so the next open replays nothing.
                        if self.snapshots.as_ref().is_some_and(|o| o.write) {
                            if let Err(e) = self.catch_up(target, Until::Target) {
                                let message = crate::store::error_chain(&e);
                                tracing::warn!(error = %message, "couldn't apply the log's tail at shutdown");
                            }
                        }
                        if self.snapshot_behind(self.low_cursor()) {
                            match self.write_snapshot() {
                                Ok(Some(path)) => {
                                    tracing::info!(path = %path.display(), "wrote a snapshot at shutdown")
                                }
                                Ok(None) => {}
                                Err(_) => {} // logged and counted by `write_snapshot`
                            }
                        }
                        return;
                    }
                    if head.tree_size > self.low_cursor() {
                        break (*head, true);
                    }
                    if self.settled.load(Ordering::SeqCst) < head.tree_size
                        || self.recheck.swap(false, Ordering::SeqCst)
                    {
                        break (*head, false);
                    }
                    let tick = self.commitment_tick();
                    head = match tick {
                        Some(t) => {
                            let (h, timeout) = self.wake.wait_timeout(head, t).expect("read head lock");
                            if timeout.timed_out() {
                                self.recheck.store(true, Ordering::SeqCst);
                            }
                            h
                        }
                        None => self.wake.wait(head).expect("read head lock"),
                    };
                }
            };
            let caught_up = if apply { self.catch_up(target, Until::Stopped) } else { Ok(()) };
            match caught_up {
                Ok(()) => {
                    *self.failing.lock().expect("failing lock") = None;
                    if apply && self.snapshot_due(target.tree_size) {
                        // A failure is logged and counted by `write_snapshot`, and counts as the
                        // period's attempt: the next try is at the next period.
                        let _ = self.write_snapshot();
                    }
                    if self.low_cursor() >= target.tree_size {
                        self.commit_if_due();
                        self.settled.fetch_max(target.tree_size, Ordering::SeqCst);
                        let _g = self.head.lock().expect("read head lock");
                        self.wake.notify_all();
                    }
                }
                Err(e) => {
                    let message = crate::store::error_chain(&e);
                    let first = self.failing.lock().expect("failing lock").replace(message.clone()).is_none();
                    if first {
                        tracing::warn!(error = %message, "read models can't read the log; retrying");
                    }
                    let head = self.head.lock().expect("read head lock");
                    // A retry delay after a failure, not a synchronization.
                    let _ = self.wake.wait_timeout(head, RETRY_AFTER_FAILURE).expect("read head lock");
                }
            }
        }
    }

    /// The smallest position of any model, and of the rule copy when it is kept.
    fn low_cursor(&self) -> u64 {
        let models = self.slots.iter().map(|s| s.read().expect("slot lock").cursor).min().unwrap_or(u64::MAX);
        let rules = self.rules.lock().expect("rules lock").as_ref().map_or(u64::MAX, |r| r.cursor);
        models.min(rules)
    }

    /// Applies entries up to `target` to every model and the rule copy behind it, a page at a
    /// time: each page is folded (every model a task, under its own lock) while the next one is
    /// read and parsed beside it (`pipeline`).
    fn catch_up(&self, target: TreeHead, until: Until) -> Result<(), StoreError> {
        let from = self.low_cursor();
        if from >= target.tree_size {
            return Ok(());
        }
        let store = &*self.store;
        // The rule copy decoded now if the open left its snapshot section pending (or dropped,
        // when neither that nor a fresh state can be had).
        let with_events = {
            let mut rules = self.rules.lock().expect("rules lock");
            let (ready, warning) = match rules.as_mut().filter(|r| r.cursor < target.tree_size) {
                Some(copy) => {
                    let (ready, warning) = copy.ready();
                    (Some(ready.is_some()), warning)
                }
                None => (None, None),
            };
            if let Some(w) = warning {
                tracing::warn!("{w}");
                self.warnings.lock().expect("warnings lock").push(w);
            }
            if ready == Some(false) {
                *rules = None;
            }
            ready == Some(true)
        };
        let from = self.low_cursor();
        let page_at = |at: u64| read_page(store, at, PAGE_LEN.min(target.tree_size - at), with_events);
        let mut page = page_at(from)?;
        loop {
            if until == Until::Stopped && self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let end = page.end();
            let next = || (end < target.tree_size).then(|| page_at(end));
            let root = (end == target.tree_size).then_some(target.root_hash);
            let (next, ruled) = {
                // The rule copy's lock before the models' (as `write_snapshot` takes them).
                let mut rules = self.rules.lock().expect("rules lock");
                let replay = rules.as_mut().and_then(|c| match &mut c.state {
                    RuleState::Ready(rules) => Some(RuleReplay { rules, cursor: &mut c.cursor }),
                    _ => None,
                });
                // Each model's task locks its own slot while it folds (`pipeline`).
                let folded = fold_page(&self.slots, &page, replay, store, next, root);
                let low = self.slots.iter().map(|s| s.read().expect("slot lock").cursor).min().unwrap_or(end);
                self.applied.send_if_modified(|a| {
                    let moved = *a != low;
                    *a = low;
                    moved
                });
                folded
            };
            ruled?;
            {
                let _g = self.head.lock().expect("read head lock");
                self.wake.notify_all();
            }
            match next {
                Some(next) => page = next?,
                None => return Ok(()),
            }
        }
    }

    /// The model of that name, behind its lock.
    fn slot(&self, name: &str) -> Option<&RwLock<Slot>> {
        self.names.iter().position(|n| *n == name).map(|i| &self.slots[i])
    }

    fn root_at(&self, tree_size: u64) -> Result<Hash, String> {
        merkle::root(tree_size, &StoreHashes(&*self.store)).map_err(|e| e.to_string())
    }

    /// Whether the policy owes a snapshot at `tree_size`, counted from the last attempt (a
    /// failed one included: see `last_attempt`).
    fn snapshot_due(&self, tree_size: u64) -> bool {
        let Some(opts) = self.snapshots.as_ref().filter(|o| o.write) else { return false };
        let (size, since) = *self.last_attempt.lock().expect("snapshot lock");
        let since_entries = tree_size.saturating_sub(size);
        since_entries > 0 && opts.policy.due(since_entries, since.elapsed().as_secs())
    }

    /// Whether snapshots are written and entries below `tree_size` were applied since the last.
    fn snapshot_behind(&self, tree_size: u64) -> bool {
        self.snapshots.as_ref().is_some_and(|o| o.write)
            && tree_size > self.last_snapshot.lock().expect("snapshot lock").0.unwrap_or(0)
    }

    /// Writes a snapshot at the models' common position (`Ok(None)`: not at one position, or
    /// snapshots off) and records the outcome: a success clears the failure warning; a failure
    /// counts as the policy's attempt, is counted, shown in status, and logged once per kind of
    /// failure (its message without the numbers, which name tree sizes and change every try).
    fn write_snapshot(&self) -> Result<Option<std::path::PathBuf>, String> {
        let written = self.try_write_snapshot();
        match &written {
            Ok(Some((at, path))) => {
                let now = Instant::now();
                *self.last_snapshot.lock().expect("snapshot lock") = (Some(*at), now);
                *self.last_attempt.lock().expect("snapshot lock") = (*at, now);
                if self.snapshot_failing.lock().expect("snapshot lock").take().is_some() {
                    tracing::info!(tree_size = at, "snapshot writes work again");
                }
                tracing::info!(tree_size = at, path = %path.display(), "snapshot written");
            }
            Ok(None) => {}
            Err((at, e)) => {
                *self.last_attempt.lock().expect("snapshot lock") = (*at, Instant::now());
                self.snapshot_failures.fetch_add(1, Ordering::Relaxed);
                let kind = |m: &str| m.chars().filter(|c| !c.is_ascii_digit()).collect::<String>();
                let before = self.snapshot_failing.lock().expect("snapshot lock").replace(e.clone());
                if before.is_none_or(|b| kind(&b) != kind(e)) {
                    tracing::warn!(error = %e, tree_size = at, "couldn't write a snapshot; the log is unaffected; retrying at the policy's next period");
                }
            }
        }
        written.map(|w| w.map(|(_, path)| path)).map_err(|(_, e)| e)
    }

    /// [`Inner::write_snapshot`] without the bookkeeping: the position and path written, or the
    /// position tried and the error.
    fn try_write_snapshot(&self) -> Result<Option<(u64, std::path::PathBuf)>, (u64, String)> {
        let Some(opts) = &self.snapshots else { return Ok(None) };
        let rules_guard = self.rules.lock().expect("rules lock");
        // Every model locked at once (the runner holds at most one at a time): one position.
        let slots: Vec<_> = self.slots.iter().map(|s| s.read().expect("slot lock")).collect();
        let Some(first) = slots.first() else { return Ok(None) };
        let at = first.cursor;
        if slots.iter().any(|s| s.cursor != at) || rules_guard.as_ref().is_some_and(|r| r.cursor != at) {
            return Ok(None);
        }
        let root = match first.root {
            Some(r) => r,
            None => self.root_at(at).map_err(|e| (at, e))?,
        };
        let models: Vec<(String, u32, snapshot::Encoded)> = (slots.iter())
            .map(|s| (s.model.name().to_owned(), s.model.version(), snapshot::encode_apart(|| s.model.encode())))
            .collect();
        // A copy still pending is at the position (checked above): its section is what a
        // decode and encode would give back.
        let rules = match rules_guard.as_ref().map(|r| &r.state) {
            Some(RuleState::Ready(rules)) => Some(snapshot::encode_apart(|| rules.encode_state())),
            Some(RuleState::Pending { bytes: (buffer, range, values), .. }) => {
                let values = values.read(0, values.len()).map_err(|e| (at, e))?;
                Some((buffer[range.clone()].to_vec(), values.to_vec()))
            }
            Some(RuleState::Gone) | None => None,
        };
        drop(slots);
        drop(rules_guard);
        let path = snapshot::write(opts, at, root, rules, models).map_err(|e| (at, e))?;
        Ok(Some((at, path)))
    }
}

/// Every read model rebuilt from zero over `store`'s entries `0..tree_size` (and `rules`, when
/// given, replayed beside them), with `progress` called after each page (entries applied so far).
/// Uses no snapshot: what `zachetka rebuild` writes a fresh snapshot from. Pages go through
/// `pipeline`: each folded, every model a task, while the next is read and parsed.
pub fn rebuild_from_zero(
    store: &dyn Store,
    tree_size: u64,
    mut rules: Option<&mut Rules>,
    mut progress: impl FnMut(u64),
) -> Result<Vec<Box<dyn ReadModel>>, StoreError> {
    let slots: Vec<RwLock<Slot>> = (model::all().into_iter())
        .map(|model| RwLock::new(Slot { model, cursor: 0, root: None, digest: None }))
        .collect();
    let with_events = rules.is_some();
    let page_at = |at: u64| read_page(store, at, PAGE_LEN.min(tree_size - at), with_events);
    let mut rules_cursor = 0;
    let mut page: Option<Page> = (tree_size > 0).then(|| page_at(0)).transpose()?;
    while let Some(current) = page {
        let end = current.end();
        let next = || (end < tree_size).then(|| page_at(end));
        let replay = rules.as_deref_mut().map(|rules| RuleReplay { rules, cursor: &mut rules_cursor });
        let (next, ruled) = fold_page(&slots, &current, replay, store, next, None);
        ruled?;
        progress(end);
        // The page is dropped on the pool (its facts were allocated there), not on this thread.
        rayon::spawn(move || drop(current));
        page = next.transpose()?;
    }
    Ok(slots.into_iter().map(|s| s.into_inner().expect("slot lock").model).collect())
}

/// Entries `from..from + n` read, checked against their stored leaf hashes and parsed on every
/// core, as the runner and `rebuild_from_zero` read them (the bound the read bench sets the
/// rebuild's rate beside).
pub fn read_facts(
    store: &dyn Store,
    from: u64,
    n: u64,
) -> Result<Vec<Option<zachetka_projections::model::ParsedFact>>, StoreError> {
    read_page(store, from, n, false).map(|p| p.facts)
}

/// Rebuilds every read model and the rule state from zero up to the store's head and writes
/// them as a fresh snapshot. Returns the snapshot's path and the models' digests.
pub fn rebuild_snapshot(
    store: &dyn Store,
    config: &crate::store::LedgerConfig,
    opts: &SnapshotOptions,
    progress: impl FnMut(u64),
) -> Result<(std::path::PathBuf, Vec<ModelDigest>), String> {
    let head = store.head().map_err(|e| crate::store::error_chain(&e))?.map(|(h, _)| h);
    let head = head.unwrap_or(TreeHead { tree_size: 0, root_hash: merkle::EMPTY_ROOT });
    let mut rules = crate::rules::from_config(config)?;
    let models = rebuild_from_zero(store, head.tree_size, rules.as_mut(), progress)
        .map_err(|e| crate::store::error_chain(&e))?;
    let digests = models
        .iter()
        .map(|m| ModelDigest {
            name: m.name(),
            version: m.version(),
            tree_size: head.tree_size,
            digest: hex(&model::digest(&**m)),
        })
        .collect();
    let sections =
        models.iter().map(|m| (m.name().to_owned(), m.version(), snapshot::encode_apart(|| m.encode()))).collect();
    let rules = rules.map(|r| snapshot::encode_apart(|| r.encode_state()));
    let path = snapshot::write(opts, head.tree_size, head.root_hash, rules, sections)?;
    Ok((path, digests))
}
