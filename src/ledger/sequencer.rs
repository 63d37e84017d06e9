//! The sequencer's admit thread: orders verified events into batches (idempotency by id,
//! `expected_version`, stream chains, the rules), signs one checkpoint per batch, and hands the
//! prepared batch to the committer. Not the place for durability (`commit.rs`) or for what a
//! batch in flight looks like to lookups (`overlay.rs`).

use super::*;

/// The sequencer: one thread that orders and prepares batches (admit), one that makes them
/// durable and answers (commit). Admission of batch N+1 overlaps the fsyncs of batch N; the
/// admit thread sees N's effects through its pending overlay, and answers for N+1 leave only
/// after N+1 (hence N) is durable.
pub(super) struct Sequencer {
    pub(super) shared: Arc<Shared>,
    pub(super) signer: LedgerSigner,
    pub(super) clock: Arc<dyn Clock>,
    /// Stream heads of committed batches (a bounded cache of the store's).
    pub(super) stream_cache: HashMap<String, StreamHead>,
    /// Batches prepared but maybe not yet committed, oldest first.
    pub(super) pending: std::collections::VecDeque<PendingBatch>,
    /// The seq the next admitted entry takes.
    pub(super) next_seq: u64,
    /// The education rules, when the ledger enforces them; their state includes pending batches.
    pub(super) rules: Option<crate::rules::Rules>,
    /// Set when a batch on a shared store failed in a way that leaves it unknown whether it was
    /// committed: the next batch rebuilds the rule state and stream heads from the store.
    pub(super) resync: bool,
    /// The latest `recorded_at` in the log (or admitted): ledger time never runs backwards, so a
    /// clock stepped back (or another node's clock ahead of this one's) stamps a batch with this
    /// instead of an earlier time.
    pub(super) last_recorded_at: i64,
}

pub(super) const STREAM_CACHE_LEN_MAX: usize = 1_000_000;

pub(super) enum Outcome {
    /// Index of the entry (new, or the same event earlier in this batch) in the draft.
    InBatch(usize),
    /// The same event is already in the log (or in a pending batch).
    Existing(Receipt),
    Refused(Refusal),
}

/// A prepared batch on its way to the committer.
pub(super) struct Prepared {
    /// `None` when nothing new is in it (all refused or already present).
    pub(super) batch: Option<Arc<CommitBatch>>,
    pub(super) replies: Vec<(Reply, Vec<Result<Receipt, Refusal>>)>,
}

impl Sequencer {
    pub(super) fn new(
        shared: Arc<Shared>,
        signer: LedgerSigner,
        clock: Arc<dyn Clock>,
        rules: Option<crate::rules::Rules>,
        next_seq: u64,
        last_recorded_at: i64,
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
            last_recorded_at,
        }
    }

    /// Group commit: the first submission and whatever queued behind it, up to a batch.
    pub(super) fn gather(&self, rx: &Receiver<Submission>, first: Submission) -> Vec<Submission> {
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

    pub(super) fn run(self, rx: Receiver<Submission>) {
        if self.shared.store.is_shared() {
            self.run_shared(rx)
        } else {
            self.run_pipelined(rx)
        }
    }

    /// One writer: admit batch N+1 while the committer thread makes batch N durable.
    pub(super) fn run_pipelined(mut self, rx: Receiver<Submission>) {
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
    pub(super) fn run_shared(mut self, rx: Receiver<Submission>) {
        while let Ok(first) = rx.recv() {
            let subs = self.gather(&rx, first);
            // Outside the append lock: at most one query a second.
            self.shared.clock_check.refresh(&*self.shared.store, false);
            let begun = self.begin_shared();
            self.shared
                .store_unavailable
                .store(begun.as_ref().is_err_and(StoreError::is_unreachable), Ordering::SeqCst);
            if let Err(e) = begun {
                self.shared.store.abort_append();
                let transient = e.is_transient();
                self.shared.warn_begin_failed(&e);
                let refusal = if transient {
                    Refusal::new(
                        Code::Unavailable,
                        format!("the store is unavailable: {}", crate::store::error_chain(&e)),
                    )
                } else {
                    self.shared.stop_writes(&e);
                    self.shared.writes_stopped_refusal()
                };
                for sub in subs {
                    let _ = sub.reply.send(sub.events.iter().map(|_| Err(refusal.clone())).collect());
                }
                continue;
            }
            // This node's clock gives the batch's ledger time (`prepare`): one off the store's
            // (the other nodes') beyond the bound stamps nothing, so it cannot move ledger time.
            if let Err(refusal) = self.shared.clock_check.check(&*self.clock) {
                self.shared.store.abort_append();
                for sub in subs {
                    let _ = sub.reply.send(sub.events.iter().map(|_| Err(refusal.clone())).collect());
                }
                continue;
            }
            let prepared = self.prepare(subs);
            let shared = self.shared.clone();
            let committed = commit_prepared(&shared, prepared, |e| {
                if e.is_transient() {
                    tracing::warn!(error = %crate::store::error_chain(e), "a commit failed; resyncing from the store before the next batch");
                    shared.store_unavailable.store(e.is_unreachable(), Ordering::SeqCst);
                } else {
                    tracing::error!(error = %crate::store::error_chain(e), "commit failed; the ledger stops writing");
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
    pub(super) fn begin_shared(&mut self) -> Result<(), StoreError> {
        if self.resync {
            // Rules may hold a batch whose commit is unknown: rebuild them from the store.
            self.stream_cache.clear();
            if let Some(rules) = &mut self.rules {
                // From the newest snapshot the store's tree vouches for, so the rebuild costs the
                // tail after it, not the log.
                let store = &*self.shared.store;
                let mut warnings = Vec::new();
                let loaded = match &self.shared.snapshots {
                    Some(opts) => {
                        let head = store.head()?.map(|h| h.0.tree_size).unwrap_or(0);
                        let (loaded, w) = crate::read::snapshot::load_newest(opts, store, head);
                        warnings.extend(w);
                        loaded
                    }
                    None => None,
                };
                let (fresh, from) = rules_start(&self.shared.config, loaded.as_ref(), "the resync", &mut warnings)
                    .map_err(|e| StoreError::Rules(e.to_string()))?
                    .expect("the ledger has rules");
                for w in warnings {
                    tracing::warn!("{w}");
                }
                *rules = fresh;
                self.next_seq = crate::rules::replay_from(rules, store, from)?.0;
                self.shared.resyncs.fetch_add(1, Ordering::Relaxed);
                self.shared.resync_replayed.fetch_add(self.next_seq - from, Ordering::Relaxed);
                tracing::info!(from, to = self.next_seq, "rebuilt the rule state from the store");
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
    pub(super) fn catch_up(&mut self, to: u64) -> Result<(), StoreError> {
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
                self.last_recorded_at = self.last_recorded_at.max(entry.meta.recorded_at_unix);
                self.shared.latest_recorded_at.fetch_max(self.last_recorded_at, Ordering::SeqCst);
                if let Some(rules) = &mut self.rules {
                    crate::rules::apply_entry(rules, e.seq, &entry, &*store)?;
                }
                self.next_seq = e.seq + 1;
            }
        }
        Ok(())
    }

    /// Reads the id records and stream heads a batch needs in one round trip each.
    pub(super) fn prefetch(&self, draft: &mut Draft, subs: &[Submission]) -> Result<(), StoreError> {
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

    pub(super) fn stream_head(&mut self, draft: &Draft, stream: &str) -> Result<Option<StreamHead>, StoreError> {
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
    pub(super) fn cache_streams(&mut self, heads: impl IntoIterator<Item = (String, StreamHead)>) {
        for (stream, head) in heads {
            if self.stream_cache.len() >= STREAM_CACHE_LEN_MAX {
                self.stream_cache.clear();
            }
            self.stream_cache.insert(stream, head);
        }
    }

    pub(super) fn admit(
        &mut self,
        draft: &mut Draft,
        ev: VerifiedEvent,
        recorded_at: i64,
    ) -> Result<Outcome, StoreError> {
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
        let known = match draft.pending.iter().rev().find_map(|p| p.id_record(&ev.id)) {
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
            let env =
                crate::rules::envelope(seq, recorded_at, &ev.event).expect("a verified event has every envelope field");
            match rules.check_and_apply(&env, &*draft) {
                Ok(()) => {}
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
    pub(super) fn prepare(&mut self, mut subs: Vec<Submission>) -> Prepared {
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
            read_error: Default::default(),
            known_ids: HashMap::new(),
            known_streams: HashMap::new(),
        };
        // Ledger time is monotonic along the log: never before the latest entry's.
        let recorded_at = self.clock.now_unix().max(self.last_recorded_at);
        self.last_recorded_at = recorded_at;
        self.shared.latest_recorded_at.fetch_max(recorded_at, Ordering::SeqCst);
        // The batch's ledger time is fixed: whoever waits for that may move a clock it controls.
        for sub in &mut subs {
            if let Some(tx) = sub.sequenced.take() {
                let _ = tx.send(());
            }
        }
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
                    batch = Some(Arc::new(CommitBatch {
                        first_seq,
                        entries: std::mem::take(&mut draft.entries),
                        stream_heads: draft.streams.iter().map(|(s, h)| (s.clone(), *h)).collect(),
                        head,
                        checkpoint,
                    }));
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
        let draft_ids = std::mem::take(&mut draft.ids);
        drop(draft);
        self.pending = pending;
        if let Some(e) = failure {
            if e.is_transient() && store.is_shared() {
                tracing::warn!(error = %crate::store::error_chain(&e), first_seq, "preparing a batch failed; resyncing before the next");
                self.shared.store_unavailable.store(e.is_unreachable(), Ordering::SeqCst);
                self.resync = true;
            } else {
                tracing::error!(error = %crate::store::error_chain(&e), first_seq, "preparing a batch failed; the ledger stops writing");
            }
        } else if let Some(b) = &batch {
            self.next_seq = tree_size;
            self.pending.push_back(PendingBatch {
                end_seq: tree_size,
                base_index: merkle::stored_hash_index_of_leaf(first_seq),
                hashes: draft_hashes,
                streams: draft_streams,
                ids: draft_ids,
                batch: b.clone(),
            });
        }
        Prepared { batch, replies }
    }
}
