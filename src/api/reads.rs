//! Entry reads: pages of the log (`GET /v1/entries`), a stream's entries (`GET /v1/streams/..`)
//! and the feed (`GET /v1/feed`, catch-up then live, NDJSON, filtered by stream prefix and type,
//! with position lines to resume from; see [`get_feed`]). Entries are served byte for byte
//! as stored and checked, only to a reader that may read raw entries ([`EntryReader`]). Not the
//! place where a failed read gets its answer (`error`): a page
//! answers it as its status; the feed, whose 200 is already sent, as its last line.

use super::auth::EntryReader;
use super::error::{self, read_failed, refusal_response, unavailable};
use super::{json_response, AppState, P, Q};
use crate::ledger::Ledger;
use crate::refusal::{Code, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Most entries one page of `/v1/entries` or `/v1/streams/..` returns, and one scan of the feed
/// looks at.
pub const PAGE_LEN_MAX: u64 = 1000;

/// Unknown parameters are refused (`bad_query`), as the feed's and the views' are: a misspelt
/// `from` would otherwise serve the first page as if it had been asked for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Unknown parameters are refused (`bad_query`): `from` here, where the parameter is
/// `from_version`, served versions from 0.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Most bytes one chunk of the feed holds (its entry lines and a position line). One entry line
/// always fits (entries are at most [`crate::event::ENTRY_BYTES_MAX`] bytes).
pub const FEED_CHUNK_BYTES_MAX: usize = 1 << 20;

/// Entries the feed reads from the store at a time while it fills a chunk: bounds what one read
/// holds to `FEED_READ_LEN * ENTRY_BYTES_MAX` (2 MiB), ~22 KiB for typical 700-byte entries.
pub const FEED_READ_LEN: u64 = 32;

/// Feeds open at once on a server. A feed holds up to ~3.4 MiB while its reader is slow (see
/// [`get_feed`]); this bounds all of them together (~430 MiB) where the connection cap alone
/// would allow thousands. Beyond it a new feed is `busy` (503, Retry-After).
pub const FEEDS_OPEN_MAX: usize = 128;

/// How often an idle feed sends `{"position":N}`: the follower learns the server is alive and
/// how far it has looked, and the connection stays under proxies' and our write timeouts.
pub const FEED_HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Most values of `stream_prefix`, and of `type`, one feed may give (comma lists counted).
pub const FEED_FILTER_VALUES_MAX: usize = 32;

/// Longest stream prefix: a stream name's longest (`STREAM_NAME_RULE`).
const STREAM_PREFIX_BYTES_MAX: usize = 200;

/// `{"position":` + 20 digits + `}\n`: room kept in every chunk for its closing position line.
const POSITION_LINE_LEN_MAX: usize = 12 + 20 + 2;

const _: () = assert!(crate::event::ENTRY_BYTES_MAX + 1 + POSITION_LINE_LEN_MAX <= FEED_CHUNK_BYTES_MAX);

/// What a feed sends: entries whose stream starts with one of `stream_prefixes` (any, if none)
/// and whose type is one of `types` or in one of `families` (any, if neither).
#[derive(Debug, Default)]
struct FeedFilter {
    stream_prefixes: Vec<String>,
    types: Vec<String>,
    /// Type families with their dot (`journal.`).
    families: Vec<String>,
}

/// The stream and type of an entry, borrowed from its bytes (JCS puts `data` before `stream`
/// and `type`, so the parser skims `data` without building it; `Cow` for names with escapes).
/// Measured: ~2.6 us for a 700-byte entry, beside the ~1.4 us of its leaf-hash check on read.
/// The id index (`IdRecord`) also keeps stream and type, but by event id, not by seq: reaching it
/// would take this parse (for the id) and an index lookup more.
#[derive(Deserialize)]
struct EntryHead<'a> {
    #[serde(borrow)]
    event: EventHead<'a>,
}

#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    event_type: std::borrow::Cow<'a, str>,
}

impl FeedFilter {
    fn is_everything(&self) -> bool {
        self.stream_prefixes.is_empty() && self.types.is_empty() && self.families.is_empty()
    }

    /// Whether the entry at `seq` is sent. Without a filter its bytes are not even parsed; with
    /// one, the parse skims the entry once ([`EntryHead`]). An entry
    /// that does not parse passed its leaf-hash check, so it was stored so: damage at `seq`.
    fn sends(&self, entry: &[u8], seq: u64) -> Result<bool, crate::store::StoreError> {
        if self.is_everything() {
            return Ok(true);
        }
        let head: EntryHead = serde_json::from_slice(entry).map_err(|e| crate::store::StoreError::Corrupt {
            what: "entry",
            position: seq,
            detail: format!("its stored bytes have no event stream and type: {e}"),
        })?;
        let EventHead { stream, event_type } = head.event;
        let stream_ok =
            self.stream_prefixes.is_empty() || self.stream_prefixes.iter().any(|p| stream.starts_with(p.as_str()));
        let type_ok = (self.types.is_empty() && self.families.is_empty())
            || self.types.iter().any(|t| *t == event_type)
            || self.families.iter().any(|f| event_type.starts_with(f.as_str()));
        Ok(stream_ok && type_ok)
    }
}

/// The feed's query: `from`, and `stream_prefix` and `type`, each repeatable and each value a
/// comma list (stream names and types hold no comma). Anything else is refused: a misspelt filter
/// would otherwise send the whole log to a read service that asked for part of it.
fn parse_feed_query(pairs: Vec<(String, String)>) -> Result<(u64, FeedFilter), Refusal> {
    let bad = |m: String| Refusal::new(Code::BadQuery, m);
    let mut from = None;
    let mut filter = FeedFilter::default();
    for (key, value) in pairs {
        match key.as_str() {
            "from" => {
                if from.is_some() {
                    return Err(bad("from is given more than once".into()));
                }
                let n = value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("from must be a position (an integer from 0), not {value:?}")))?;
                from = Some(n);
            }
            "stream_prefix" => {
                for p in value.split(',') {
                    if filter.stream_prefixes.len() == FEED_FILTER_VALUES_MAX {
                        return Err(bad(format!("at most {FEED_FILTER_VALUES_MAX} stream_prefix values")));
                    }
                    if !is_stream_prefix(p) {
                        return Err(bad(format!(
                            "stream_prefix {:?} is not the start of a stream name ({}); an empty prefix is refused, leave the parameter out to follow every stream",
                            p.chars().take(40).collect::<String>(),
                            crate::event::STREAM_NAME_RULE
                        )));
                    }
                    filter.stream_prefixes.push(p.to_owned());
                }
            }
            "type" => {
                for t in value.split(',') {
                    if filter.types.len() + filter.families.len() == FEED_FILTER_VALUES_MAX {
                        return Err(bad(format!("at most {FEED_FILTER_VALUES_MAX} type values")));
                    }
                    let known = zachetka_projections::vocabulary::event_types();
                    if let Some(family) = t.strip_suffix('.') {
                        if !known.iter().any(|k| k.split_once('.').is_some_and(|(f, _)| f == family)) {
                            return Err(bad(format!(
                                "type family {:?} is unknown; the families are {}",
                                t.chars().take(40).collect::<String>(),
                                type_families().join(", ")
                            )));
                        }
                        filter.families.push(t.to_owned());
                    } else if known.contains(&t) {
                        filter.types.push(t.to_owned());
                    } else {
                        return Err(bad(format!(
                            "type {:?} is not an event type; give an exact type (journal.grade_recorded) or a family with its dot ({})",
                            t.chars().take(40).collect::<String>(),
                            type_families().join(", ")
                        )));
                    }
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown parameter {:?}; the feed takes from, stream_prefix and type",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    Ok((from.unwrap_or(0), filter))
}

/// A prefix some stream name may start with: 1-200 bytes of the stream name alphabet, no empty
/// segment (but for a trailing `/`, as in `learner/`).
fn is_stream_prefix(p: &str) -> bool {
    let body = p.strip_suffix('/').unwrap_or(p);
    // Every segment but a last one left open (no '/' after it) is whole, so it is one a stream
    // name may have: not `.` or `..` (the open one may still begin a segment like `..x`).
    let whole = if p.ends_with('/') { body.split('/').count() } else { body.split('/').count() - 1 };
    !body.is_empty()
        && p.len() <= STREAM_PREFIX_BYTES_MAX
        && p.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:/-".contains(&c))
        && !body.split('/').any(str::is_empty)
        && !body.split('/').take(whole).any(|seg| seg == "." || seg == "..")
}

/// The type families of the vocabulary, with their dot, for messages.
fn type_families() -> Vec<String> {
    let mut families: Vec<String> = zachetka_projections::vocabulary::event_types()
        .iter()
        .filter_map(|t| t.split_once('.').map(|(f, _)| format!("{f}.")))
        .collect();
    families.sort();
    families.dedup();
    families
}

fn position_line(position: u64) -> String {
    format!("{{\"position\":{position}}}\n")
}

/// One scan of the feed, run off the async workers: what it sends and how far it looked.
struct Scanned {
    /// Entry lines, then a position line if entries were looked at after the last one sent
    /// (or none was sent); then, if a read failed, the error line.
    chunk: Vec<u8>,
    /// The next position to look at.
    next: u64,
    /// Whether the feed ends after this chunk (its last line is an error line).
    ends: bool,
    /// The error line's message when it is `store_corrupt` (damage met on read, counted for
    /// `/metrics` and `/v1/status` as a refused read is).
    corrupt: Option<String>,
}

/// Looks at entries `next..size`, at most [`PAGE_LEN_MAX`] of them, reading
/// [`FEED_READ_LEN`] at a time, and fills one chunk of at most `chunk_bytes_max` bytes with the
/// ones `filter` sends. An entry that would not fit is left for the next scan (it is read
/// again then). A chunk is never empty: a scan that sends no entry sends its position.
fn scan(
    read: impl Fn(u64, u64) -> Result<Vec<Vec<u8>>, crate::store::StoreError>,
    mut next: u64,
    size: u64,
    filter: &FeedFilter,
    chunk_bytes_max: usize,
) -> Scanned {
    assert!(next < size, "a scan looks at entries the tree holds");
    let start = next;
    let end = size.min(next.saturating_add(PAGE_LEN_MAX));
    let mut chunk = Vec::new();
    // The position after the last entry line; where a follower would resume without a position line.
    let mut sent_to = None;
    let mut failure = None;
    'reads: while next < end {
        let want = FEED_READ_LEN.min(end - next);
        let entries = match read(next, want) {
            Ok(e) if e.len() as u64 == want => e,
            Ok(e) => {
                failure = Some(error::feed_entries_missing(next + e.len() as u64, size));
                break;
            }
            Err(e) => {
                failure = Some(error::feed_read_failed(e));
                break;
            }
        };
        for e in entries {
            match filter.sends(&e, next) {
                Ok(false) => {}
                Ok(true) => {
                    if chunk.len() + e.len() + 1 + POSITION_LINE_LEN_MAX > chunk_bytes_max {
                        // Full: this entry opens the next chunk.
                        break 'reads;
                    }
                    chunk.extend_from_slice(&e);
                    chunk.push(b'\n');
                    sent_to = Some(next + 1);
                }
                Err(e) => {
                    failure = Some(error::feed_read_failed(e));
                    break 'reads;
                }
            }
            next += 1;
        }
    }
    if next > sent_to.unwrap_or(start) {
        chunk.extend_from_slice(position_line(next).as_bytes());
    }
    let ends = failure.is_some();
    let corrupt = failure.as_ref().filter(|r| r.code == Code::StoreCorrupt).map(|r| r.message.clone());
    if let Some(refusal) = failure {
        chunk.extend_from_slice(&error::feed_refused(&refusal));
    }
    assert!(!chunk.is_empty(), "a scan always sends something");
    Scanned { chunk, next, ends, corrupt }
}

/// Catch-up then live (`GET /v1/feed`): NDJSON, one JSON object per line, of three kinds a
/// follower tells apart by their keys:
/// - an **entry** (has `seq`): the canonical entry, byte for byte as stored and checked;
/// - a **position** `{"position":N}` (its only key): every entry before `N` was looked at and
///   those not sent did not match the filter. Sent after a scan that ends on entries that were
///   not sent (at most every [`PAGE_LEN_MAX`] entries looked at), and every
///   [`FEED_HEARTBEAT_INTERVAL`] while nothing is committed (a keep-alive);
/// - an **error** (has `code`): `{"code","message"}`, the refusal a page read would have
///   answered (damage, an unreachable store), always the last line: the feed ends after it, so a
///   follower tells "the server failed at this position" from "the connection dropped".
///
/// A follower resumes with `from` = the last entry's `seq + 1` or the last position's `N`,
/// whichever came later: no entry is sent twice, none is skipped. Filters (`stream_prefix`,
/// `type`) select what is sent, never what is looked at.
///
/// **Bounded per connection.** Hyper pulls the body: it asks for the next chunk only while its
/// write buffer holds less than its `max_buf_size` (~408 KiB by default) and, with a slow reader,
/// waits (up to the server's write timeout) instead. The stream holds no queue: one scan at a
/// time, one chunk of at most [`FEED_CHUNK_BYTES_MAX`] (1 MiB), built from reads of at most
/// [`FEED_READ_LEN`] entries (at most 2 MiB). So a feed holds at most ~408 KiB + 1 MiB in hyper's
/// buffer plus, while a scan runs, 1 MiB + 2 MiB, whatever its reader's pace.
pub(super) async fn get_feed(
    EntryReader(reader): EntryReader,
    State(state): State<AppState>,
    Q(query): Q<Vec<(String, String)>>,
) -> Response {
    let (from, filter) = match parse_feed_query(query) {
        Ok(q) => q,
        Err(r) => return refusal_response(&r),
    };
    // A follower resumes from a position it was sent, never beyond the head; a `from` beyond it
    // would be answered with position lines claiming entries the log does not hold. This node's
    // head may trail the store's (another node appended): the store's own is read before refusing.
    let head = state.ledger.head().0.tree_size;
    if from > head {
        let ledger = state.ledger.clone();
        let stored = match tokio::task::spawn_blocking(move || ledger.store().head()).await {
            Ok(Ok(h)) => h.map_or(0, |(h, _)| h.tree_size).max(head),
            Ok(Err(e)) => return read_failed(e),
            Err(e) => return unavailable(e),
        };
        if from > stored {
            let message = format!(
                "from {from} is beyond the head {stored} of the log; a feed resumes from a position it was sent, at most the head"
            );
            return refusal_response(&Refusal::new(Code::BadQuery, message));
        }
    }
    let Ok(open) = state.feeds.clone().try_acquire_owned() else {
        state.metrics.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let message = format!("{FEEDS_OPEN_MAX} feeds are open, as many as this server keeps; retry after the delay");
        return refusal_response(&Refusal::new(Code::Busy, message));
    };
    let access = std::sync::Arc::new((state.access.clone(), reader));
    let metrics = state.metrics.clone();
    let feed = FeedWatch { heartbeat: FEED_HEARTBEAT_INTERVAL, access, open, metrics };
    feed_response(state.ledger.clone(), from, std::sync::Arc::new(filter), feed)
}

/// What a feed carries besides its position and filter: its heartbeat interval, its reader (whose
/// token is checked again before each chunk), its place among the open feeds, and the metrics
/// its damage is counted in.
struct FeedWatch {
    heartbeat: std::time::Duration,
    access: std::sync::Arc<(crate::access::Access, crate::access::Principal)>,
    open: tokio::sync::OwnedSemaphorePermit,
    metrics: std::sync::Arc<super::ops::Metrics>,
}

/// The token is checked again before each chunk and each heartbeat: a revoked token's feed ends
/// with an `unauthorized` line, whether entries are coming or not.
fn feed_response(ledger: Ledger, from: u64, filter: std::sync::Arc<FeedFilter>, feed: FeedWatch) -> Response {
    let FeedWatch { heartbeat, access, open, metrics } = feed;
    let watch = ledger.watch_tree_size();
    // The state is `None` once the error line is sent: the stream then ends.
    let start = Some((ledger, watch, from));
    let stream = futures_util::stream::unfold(start, move |state| {
        // The feed's place among the open ones, held by the stream until the connection drops it.
        let _open = &open;
        let filter = filter.clone();
        let access = access.clone();
        let metrics = metrics.clone();
        async move {
            let (ledger, mut watch, next) = state?;
            // The refusal line that ends the feed, if its token no longer reads it.
            let revoked = || match access.0.still_valid(&access.1) {
                Ok(true) => None,
                Ok(false) => {
                    Some(error::feed_refused(&Refusal::new(Code::Unauthorized, "the bearer token was revoked")))
                }
                Err(r) => Some(error::feed_refused(&r)),
            };
            loop {
                let size = *watch.borrow_and_update();
                if next < size {
                    if let Some(line) = revoked() {
                        return Some((Ok(line), None));
                    }
                    let l = ledger.clone();
                    let f = filter.clone();
                    let scanned = tokio::task::spawn_blocking(move || {
                        scan(|from, len| l.entries(from, len), next, size, &f, FEED_CHUNK_BYTES_MAX)
                    })
                    .await;
                    return match scanned {
                        Ok(s) if s.ends => {
                            if let Some(message) = &s.corrupt {
                                metrics.store_corrupt_seen("/v1/feed", message);
                            }
                            Some((Ok(Bytes::from(s.chunk)), None))
                        }
                        Ok(s) => Some((Ok::<_, std::io::Error>(Bytes::from(s.chunk)), Some((ledger, watch, s.next)))),
                        Err(e) => Some((Ok(error::feed_task_failed(e)), None)),
                    };
                }
                match tokio::time::timeout(heartbeat, watch.changed()).await {
                    Err(_idle) => {
                        if let Some(line) = revoked() {
                            return Some((Ok(line), None));
                        }
                        return Some((Ok(Bytes::from(position_line(next))), Some((ledger, watch, next))));
                    }
                    Ok(Err(_closed)) => return None,
                    Ok(Ok(())) => {}
                }
            }
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    resp
}
