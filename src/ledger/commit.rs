//! The committer: makes prepared batches durable in order, publishes each head, and answers,
//! receipts only once a batch (and every batch before it) is durable. Not the place for
//! ordering or signing.

use super::*;

/// The committer: makes prepared batches durable in order, publishes the head, answers. The
/// first failure stops writes (one writer cannot tell what a failed write left behind).
pub(super) fn commit_loop(shared: &Shared, rx: Receiver<Prepared>) {
    while let Ok(prepared) = rx.recv() {
        let _ = commit_prepared(shared, prepared, |e| {
            tracing::error!(error = %crate::store::error_chain(e), "commit failed; the ledger stops writing");
            shared.stop_writes(e);
        });
    }
}

/// Commits one prepared batch (or releases the append if it holds nothing new), publishes the
/// head, and answers: receipts only once the batch is durable.
/// `on_failure` runs before anyone is answered, so a client that hears of a failure sees the
/// ledger's state already changed by it.
pub(super) fn commit_prepared(
    shared: &Shared,
    Prepared { batch, replies }: Prepared,
    on_failure: impl FnOnce(&StoreError),
) -> Result<(), StoreError> {
    let stopped = shared.failed.load(Ordering::SeqCst);
    let result = match &batch {
        _ if stopped => {
            shared.store.abort_append();
            Err(StoreError::Stopped)
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
