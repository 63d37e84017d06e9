//! Where failures become HTTP answers: refusals, store errors (damage or an unreachable store),
//! failed blocking tasks and failed proofs. The one place the API turns an error into a
//! response or a feed's closing line; a refusal's status still comes only from
//! [`crate::refusal::Code::http_status`]. Not the place that decides what is refused (the
//! ledger, the rules, and the handlers' parsing do).

use super::json_response;
use crate::merkle::ProofError;
use crate::refusal::{Code, Refusal};
use crate::store::StoreError;
use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::Response;

/// Seconds a client is told to wait when the sequencer is saturated.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Marks a response that refuses a read as `store_corrupt`, with its message (naming the file
/// or entry and the position), so the request layer counts it for `/metrics` and `/v1/status`.
#[derive(Debug, Clone)]
pub(super) struct StoreCorruptAnswer(pub(super) String);

/// A refusal as an HTTP response: the one place a code gets its status.
pub(super) fn refusal_response(r: &Refusal) -> Response {
    let mut resp = json_response(r.code.http_status(), serde_json::to_string(r).expect("refusal serializes"));
    if r.code == Code::StoreCorrupt {
        resp.extensions_mut().insert(StoreCorruptAnswer(r.message.clone()));
    }
    // Only an answer that a retry can change says when to retry; `writes_stopped` never does.
    if r.code.retryable() {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    // RFC 6750: a 401 names the scheme that would be accepted.
    if r.code == Code::Unauthorized {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"zachetka\""));
    }
    resp
}

pub(super) fn not_found(what: &str) -> Response {
    refusal_response(&Refusal::new(Code::NotFound, what))
}

/// A store that could not be read now, or a read task that did not finish: 503 `unavailable`.
pub(super) fn unavailable(e: impl std::fmt::Display) -> Response {
    refusal_response(&unavailable_refusal(e))
}

fn unavailable_refusal(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(Code::Unavailable, format!("couldn't read the store: {e}"))
}

/// A failed read as a refusal: damage found in the store (`store_corrupt`, naming the position)
/// or a store that cannot be reached now (`unavailable`).
fn read_refusal(e: StoreError) -> Refusal {
    match e {
        e @ StoreError::Corrupt { .. } => {
            tracing::error!(error = %e, "damaged stored data refused on read");
            Refusal::new(Code::StoreCorrupt, format!("stored data is damaged: {e}"))
        }
        e => unavailable_refusal(crate::store::error_chain(&e)),
    }
}

/// A failed read: 500 `store_corrupt` naming the position, or 503 `unavailable`.
pub(super) fn read_failed(e: StoreError) -> Response {
    refusal_response(&read_refusal(e))
}

/// Stored entry bytes that are not UTF-8 (they passed their leaf-hash check, so they were
/// written so): damage, refused, never a panic.
pub(super) fn entry_not_utf8(e: std::str::Utf8Error) -> Response {
    let message = format!("a stored entry on this page is not UTF-8 JSON: {e}");
    refusal_response(&Refusal::new(Code::StoreCorrupt, message))
}

/// The verification task of a write did not finish (it panicked or the runtime is stopping).
pub(super) fn verification_failed(e: tokio::task::JoinError) -> Response {
    refusal_response(&Refusal::new(Code::Unavailable, format!("verification task failed: {e}")))
}

/// A proof that could not be made: the store failed (503), or the sizes are not in the tree.
pub(super) fn proof_failed(e: ProofError) -> Response {
    match e {
        e @ ProofError::Storage(_) => unavailable(e),
        e => refusal_response(&Refusal::new(Code::ProofOutOfRange, e.to_string())),
    }
}

/// The last line of a feed whose read failed after its 200 was sent: the refusal a page read
/// would have answered, as one NDJSON object (`{"code","message"}`), so a follower can tell an
/// error from the end of a connection.
pub(super) fn feed_read_failed(e: StoreError) -> Refusal {
    read_refusal(e)
}

/// The last line of a feed whose read task did not finish.
pub(super) fn feed_task_failed(e: tokio::task::JoinError) -> Bytes {
    feed_error_line(&unavailable_refusal(e))
}

/// The last line of a feed when the store holds fewer entries than its head says.
pub(super) fn feed_entries_missing(from: u64, tree_size: u64) -> Refusal {
    let message = format!("the store returned no entries from {from} below tree_size {tree_size}");
    Refusal::new(Code::StoreCorrupt, message)
}

/// The last line of a feed whose token was revoked (or whose token file became unreadable)
/// while it was open.
pub(super) fn feed_refused(r: &Refusal) -> Bytes {
    feed_error_line(r)
}

fn feed_error_line(r: &Refusal) -> Bytes {
    let mut line = serde_json::to_vec(r).expect("refusal serializes");
    line.push(b'\n');
    Bytes::from(line)
}
