//! The overlay a batch is assembled on: the store as committed plus every batch prepared but
//! maybe not yet durable, so lookups (ids, stream heads, stored hashes, the rules' event kinds)
//! see pending batches. Not the place for ordering decisions.

use super::*;

/// What the admit thread must remember of a batch until the committer has made it durable.
pub(super) struct PendingBatch {
    pub(super) end_seq: u64,
    pub(super) base_index: u64,
    pub(super) hashes: Vec<Hash>,
    pub(super) streams: HashMap<String, StreamHead>,
    /// The batch's entries by id (their id records answer retries and the rules' lookups), and
    /// the batch itself, shared with the committer rather than copied.
    pub(super) ids: HashMap<String, usize>,
    pub(super) batch: Arc<CommitBatch>,
}

impl PendingBatch {
    pub(super) fn id_record(&self, id: &str) -> Option<&IdRecord> {
        self.ids.get(id).map(|&i| &self.batch.entries[i].id_record)
    }
}

/// A batch being assembled.
pub(super) struct Draft<'a> {
    pub(super) store: &'a dyn Store,
    pub(super) pending: &'a std::collections::VecDeque<PendingBatch>,
    pub(super) first_seq: u64,
    /// Stored hashes of this batch, from `stored_hash_index_of_leaf(first_seq)`.
    pub(super) hashes: Vec<Hash>,
    pub(super) base_index: u64,
    pub(super) entries: Vec<BatchEntry>,
    pub(super) streams: HashMap<String, StreamHead>,
    /// Index in `entries` by id (whose id records give the rules' lookups stream and type).
    pub(super) ids: HashMap<String, usize>,
    /// Id records and stream heads read for the whole batch in one go (shared stores).
    pub(super) known_ids: HashMap<String, Option<IdRecord>>,
    pub(super) known_streams: HashMap<String, Option<StreamHead>>,
    /// The store error behind the last failed hash read (the hash reader's error type cannot
    /// carry it), so that a store that is unavailable is not mistaken for a damaged one.
    pub(super) read_error: std::cell::RefCell<Option<StoreError>>,
}

impl Draft<'_> {
    pub(super) fn hash_error(&self, e: merkle::ProofError) -> StoreError {
        self.read_error.borrow_mut().take().unwrap_or_else(|| StoreError::Corrupt {
            what: "stored hashes",
            position: self.first_seq,
            detail: e.to_string(),
        })
    }
}

/// The rules' lookup during admission: this batch, then the pending (uncommitted) batches, then
/// the store's id index. A store error is passed on as an error, never as "no such event".
impl crate::rules::Lookup for Draft<'_> {
    fn event(&self, id: &str) -> Result<Option<(String, String)>, crate::rules::LookupError> {
        let kind = |r: &IdRecord| Some((r.stream.clone(), r.event_type.clone()));
        if let Some(&i) = self.ids.get(id) {
            return Ok(kind(&self.entries[i].id_record));
        }
        if let Some(r) = self.pending.iter().rev().find_map(|p| p.id_record(id)) {
            return Ok(kind(r));
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
