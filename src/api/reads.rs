//! Entry reads: pages of the log (`GET /v1/entries`), a stream's entries (`GET /v1/streams/..`)
//! and the feed (`GET /v1/feed`, catch-up then live, NDJSON). Entries are served byte for byte
//! as stored and checked, only to a reader that may read raw entries ([`EntryReader`]). Not the place where a failed read gets its answer (`error`): a page
//! answers it as its status; the feed, whose 200 is already sent, as its last line.

use super::auth::EntryReader;
use super::error::{self, read_failed, refusal_response, unavailable};
use super::{json_response, AppState, P, Q};
use crate::refusal::{Code, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Most entries one page of `/v1/entries` or `/v1/streams/..` (or one read of the feed) returns.
pub const PAGE_LEN_MAX: u64 = 1000;

#[derive(Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    from: u64,
    limit: Option<u64>,
}

/// `{"tree_size":N,"entries":[<canonical entry>,...]}`, entries embedded byte for byte. Stored
/// bytes that are not UTF-8 (they passed their leaf-hash check, so they were written so) are
/// refused as damage, never a panic.
fn entries_page(tree_size: u64, entries: &[Vec<u8>], extra: &str) -> Response {
    let mut out = format!("{{{extra}\"tree_size\":{tree_size},\"entries\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match std::str::from_utf8(e) {
            Ok(text) => out.push_str(text),
            Err(err) => return error::entry_not_utf8(err),
        }
    }
    out.push_str("]}");
    json_response(200, out)
}

pub(super) async fn get_entries(_: EntryReader, State(state): State<AppState>, Q(q): Q<PageQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(PAGE_LEN_MAX);
    let ledger = state.ledger.clone();
    let size = ledger.head().0.tree_size;
    match tokio::task::spawn_blocking(move || ledger.entries(q.from, limit)).await {
        Ok(Ok(entries)) => entries_page(size, &entries, ""),
        Ok(Err(e)) => read_failed(e),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    #[serde(default)]
    from_version: u64,
    limit: Option<u64>,
}

pub(super) async fn get_stream(
    _: EntryReader,
    State(state): State<AppState>,
    P(stream): P<String>,
    Q(q): Q<StreamQuery>,
) -> Response {
    if !crate::event::is_stream_name(&stream) {
        let message = format!("stream names are {}", crate::event::STREAM_NAME_RULE);
        return refusal_response(&Refusal::new(Code::StreamMalformed, message));
    }
    let limit = q.limit.unwrap_or(100).min(PAGE_LEN_MAX);
    let ledger = state.ledger.clone();
    let size = ledger.head().0.tree_size;
    let result = tokio::task::spawn_blocking(move || -> Result<(u64, Vec<Vec<u8>>), crate::store::StoreError> {
        let store = ledger.store();
        let len = store.stream_head(&stream)?.map(|h| h.len).unwrap_or(0);
        let mut out = Vec::new();
        for seq in store.stream_seqs(&stream, q.from_version, limit)? {
            if seq < size {
                out.extend(store.entries(seq, 1)?);
            }
        }
        Ok((len, out))
    })
    .await;
    match result {
        Ok(Ok((len, entries))) => entries_page(size, &entries, &format!("\"stream_len\":{len},")),
        Ok(Err(e)) => read_failed(e),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
pub(super) struct FeedQuery {
    #[serde(default)]
    from: u64,
}

/// Catch-up then live: newline-delimited canonical entries from `from`, following commits. A
/// read that fails (damage, an unreachable store) ends the feed with one last line, the refusal
/// a page read would have answered (`{"code","message"}`), never silently: a follower tells
/// "the server failed at this position" from "the connection dropped". The token is checked
/// again before each chunk: a revoked token's feed ends with an `unauthorized` line.
pub(super) async fn get_feed(
    EntryReader(reader): EntryReader,
    State(state): State<AppState>,
    Q(q): Q<FeedQuery>,
) -> Response {
    let ledger = state.ledger.clone();
    let watch = ledger.watch_tree_size();
    let access = (state.access.clone(), reader);
    // The state is `None` once the error line is sent: the stream then ends.
    let start = Some((ledger, watch, q.from, access));
    let stream = futures_util::stream::unfold(start, |state| async move {
        let (ledger, mut watch, next, access) = state?;
        loop {
            let size = *watch.borrow_and_update();
            if next < size {
                match access.0.still_valid(&access.1) {
                    Ok(true) => {}
                    Ok(false) => {
                        let r = Refusal::new(Code::Unauthorized, "the bearer token was revoked");
                        return Some((Ok(error::feed_refused(&r)), None));
                    }
                    Err(r) => return Some((Ok(error::feed_refused(&r)), None)),
                }
                let l = ledger.clone();
                let page = tokio::task::spawn_blocking(move || l.entries(next, PAGE_LEN_MAX.min(size - next))).await;
                let entries = match page {
                    Ok(Ok(e)) if !e.is_empty() => e,
                    Ok(Ok(_)) => return Some((Ok(error::feed_entries_missing(next, size)), None)),
                    Ok(Err(e)) => return Some((Ok(error::feed_read_failed(e)), None)),
                    Err(e) => return Some((Ok(error::feed_task_failed(e)), None)),
                };
                let n = entries.len() as u64;
                let mut chunk = Vec::with_capacity(entries.iter().map(|e| e.len() + 1).sum());
                for e in entries {
                    chunk.extend_from_slice(&e);
                    chunk.push(b'\n');
                }
                return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), Some((ledger, watch, next + n, access))));
            }
            if watch.changed().await.is_err() {
                return None;
            }
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    resp
}
