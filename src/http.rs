//! The HTTP surface (DESIGN 3.5): the write endpoint, C2SP tlog-tiles, proofs, paged entries,
//! streams, the feed, metrics and the OpenAPI document. Handlers translate; the ledger decides.
//! Refusal codes become HTTP statuses only through [`crate::refusal::Code::http_status`]:
//! every refusal, bad queries and paths and unknown routes included, is `{"code","message"}`.
//! Not the place for connections and their timeouts (`crate::server`).

use crate::ledger::{Ledger, Receipt};
use crate::merkle::{self, HashB64, TileRequest};
use crate::refusal::{Code, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::{DeserializeOwned, DeserializeSeed, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest request body accepted by `POST /v1/events`.
pub const BODY_BYTES_MAX: usize = 16 << 20;
/// Most entries one page of `/v1/entries` or `/v1/streams/..` returns.
pub const PAGE_LEN_MAX: u64 = 1000;
/// Seconds a client is told to wait when the sequencer is saturated.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Default)]
struct Metrics {
    appended: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
    requests: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    ledger: Ledger,
    metrics: Arc<Metrics>,
}

/// The router of a zachetka server over `ledger`.
pub fn router(ledger: Ledger) -> Router {
    let state = AppState { ledger, metrics: Arc::new(Metrics::default()) };
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/checkpoint", get(get_checkpoint))
        .route("/tile/{*path}", get(get_tile))
        .route("/v1/proofs/inclusion", get(get_inclusion))
        .route("/v1/proofs/consistency", get(get_consistency))
        .route("/v1/entries", get(get_entries))
        .route("/v1/streams/{*stream}", get(get_stream))
        .route("/v1/feed", get(get_feed))
        .route("/v1/status", get(get_status))
        .route("/metrics", get(get_metrics))
        .route("/openapi.json", get(get_openapi))
        .fallback(|req: Request| async move {
            refusal_response(&Refusal::new(Code::NotFound, format!("no route for {}", req.uri().path())))
        })
        .method_not_allowed_fallback(|req: Request| async move {
            let msg = format!("method {} is not allowed on {}", req.method(), req.uri().path());
            refusal_response(&Refusal::new(Code::MethodNotAllowed, msg))
        })
        .layer(middleware::from_fn_with_state(state.clone(), log_requests))
        .with_state(state)
}

async fn log_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    tracing::info!(%method, %path, status = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    resp
}

fn json_response(status: u16, body: String) -> Response {
    let mut resp = (StatusCode::from_u16(status).expect("valid status"), body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A refusal as an HTTP response: the one place a code gets its status.
pub fn refusal_response(r: &Refusal) -> Response {
    let mut resp = json_response(r.code.http_status(), serde_json::to_string(r).expect("refusal serializes"));
    // Only an answer that a retry can change says when to retry; `writes_stopped` never does.
    if r.code.retryable() {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    resp
}

fn result_json(r: &Result<Receipt, Refusal>) -> serde_json::Value {
    match r {
        Ok(receipt) => serde_json::to_value(receipt).expect("receipt serializes"),
        Err(refusal) => serde_json::to_value(refusal).expect("refusal serializes"),
    }
}

/// A query string as `T`, refused as `bad_query` (JSON, 400) when it does not parse.
struct Q<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| refusal_response(&Refusal::new(Code::BadQuery, lowercase_first(&e.body_text()))))
    }
}

/// A path parameter as `T`, refused as `bad_path` (JSON, 400) when it does not parse.
struct P<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|e| refusal_response(&Refusal::new(Code::BadPath, lowercase_first(&e.body_text()))))
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// `POST /v1/events` takes JSON only (`application/json`, parameters such as charset allowed).
fn check_json_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(Refusal::new(
        Code::UnsupportedMediaType,
        format!("content-type must be application/json, not {:?}", ct.chars().take(100).collect::<String>()),
    ))
}

/// Reads a request body of at most `max` bytes. It is read up to the limit even when its
/// declared length is larger: a client still sending when the server closes would see a broken
/// pipe instead of the refusal. A body that stalls is cut by the server's body timeout.
async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<Bytes, Refusal> {
    use futures_util::StreamExt;
    let too_large = || Refusal::new(Code::BodyTooLarge, format!("request body exceeds {max} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(max));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::server::is_body_timeout(&e) {
                Refusal::new(Code::BodyTimeout, "the request body did not arrive within the server's body timeout")
            } else {
                Refusal::new(Code::MalformedJson, format!("couldn't read the request body: {e}"))
            }
        })?;
        if out.len() + chunk.len() > max {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// The signed events of a `POST /v1/events` body, as byte ranges of the body (one signed event,
/// or the items of an array), and whether it was a single event. An array is scanned as
/// borrowed raw JSON, its items counted as they come: at `len_max + 1` items the scan stops
/// with `batch_too_long`, so nothing is ever built per item of an oversized request, and an
/// accepted one is parsed into values once, item by item, by the cores that verify it.
fn raw_items(body: &[u8], len_max: usize) -> Result<(Vec<Range<usize>>, bool), Refusal> {
    let malformed = |e: serde_json::Error| Refusal::new(Code::MalformedJson, format!("body is not JSON: {e}"));
    let base = body.as_ptr() as usize;
    let range = |raw: &RawValue| {
        let text = raw.get();
        let start = text.as_ptr() as usize - base;
        start..start + text.len()
    };
    if body.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'[') {
        let raw: &RawValue = serde_json::from_slice(body).map_err(malformed)?;
        return Ok((vec![range(raw)], true));
    }
    let too_long = std::cell::Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = CountedItems { len_max, too_long: &too_long }.deserialize(&mut de).and_then(|items| {
        de.end()?;
        Ok(items)
    });
    match items {
        Ok(items) => Ok((items.into_iter().map(range).collect(), false)),
        Err(_) if too_long.get() => {
            Err(Refusal::new(Code::BatchTooLong, format!("more than {len_max} events in one request, the limit")))
        }
        Err(e) => Err(malformed(e)),
    }
}

/// Collects the items of a JSON array as raw text, stopping past `len_max` of them.
struct CountedItems<'c> {
    len_max: usize,
    too_long: &'c std::cell::Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for CountedItems<'_> {
    type Value = Vec<&'de RawValue>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CountedItems<'_> {
    type Value = Vec<&'de RawValue>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of signed events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.len_max {
                self.too_long.set(true);
                return Err(serde::de::Error::custom("too many events"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

async fn post_events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let busy = |r: &Refusal| {
        if r.code == Code::Busy {
            state.metrics.busy.fetch_add(1, Ordering::Relaxed);
        }
        refusal_response(r)
    };
    if let Err(r) = check_json_content_type(&headers).and_then(|()| state.ledger.check_accepting()) {
        return refusal_response(&r);
    }
    let bytes = match read_body(body, &headers, BODY_BYTES_MAX).await {
        Ok(b) => b,
        Err(r) => return refusal_response(&r),
    };
    let (items, single) = match raw_items(&bytes, state.ledger.limits().request_len_max) {
        Ok(x) => x,
        Err(r) => return refusal_response(&r),
    };
    // Admission before any verification or blocking task: beyond the bound, `busy` at once.
    let admitted = match state.ledger.try_admit(items.len()) {
        Ok(a) => a,
        Err(r) => return busy(&r),
    };
    let ledger = state.ledger.clone();
    let submitted = tokio::task::spawn_blocking(move || {
        let items: Vec<&[u8]> = items.iter().map(|r| &bytes[r.clone()]).collect();
        ledger.submit_raw(&items)
    })
    .await;
    let pending = match submitted {
        Ok(Ok(p)) => p,
        Ok(Err(r)) => return busy(&r),
        Err(e) => return refusal_response(&Refusal::new(Code::Unavailable, format!("verification task failed: {e}"))),
    };
    let results = pending.wait().await;
    drop(admitted);
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    state.metrics.appended.fetch_add(ok, Ordering::Relaxed);
    state.metrics.refused.fetch_add(results.len() as u64 - ok, Ordering::Relaxed);
    if single {
        return match &results[0] {
            Ok(receipt) => json_response(200, serde_json::to_string(receipt).expect("receipt serializes")),
            Err(r) => refusal_response(r),
        };
    }
    let body: Vec<serde_json::Value> = results.iter().map(result_json).collect();
    json_response(200, serde_json::to_string(&body).expect("results serialize"))
}

async fn get_checkpoint(State(state): State<AppState>) -> Response {
    let (_, note) = state.ledger.head();
    let mut resp = (StatusCode::OK, note.as_ref().clone()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn not_found(what: &str) -> Response {
    refusal_response(&Refusal::new(Code::NotFound, what))
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    refusal_response(&Refusal::new(Code::Unavailable, format!("couldn't read the store: {e}")))
}

/// A failed read: damage found in the store (500 `store_corrupt`, naming the position) or a store
/// that cannot be reached now (503 `unavailable`).
fn read_failed(e: crate::store::StoreError) -> Response {
    match e {
        e @ crate::store::StoreError::Corrupt { .. } => {
            tracing::error!(error = %e, "damaged stored data refused on read");
            refusal_response(&Refusal::new(Code::StoreCorrupt, format!("stored data is damaged: {e}")))
        }
        e => unavailable(e),
    }
}

async fn get_tile(State(state): State<AppState>, P(path): P<String>) -> Response {
    let Some(req) = merkle::parse_tile_path(&path) else { return not_found("no such tile path") };
    let ledger = state.ledger.clone();
    let result = tokio::task::spawn_blocking(move || match req {
        TileRequest::Hashes { level, index, width } => match ledger.hash_tile(level, index, width) {
            Ok(tile) => Ok(tile),
            Err(merkle::ProofError::Storage(e)) => Err(Ok(e)),
            // Anything else is a tile the tree does not have (a client's path), never a 503.
            Err(_) => Ok(None),
        },
        TileRequest::Entries { index, width } => ledger.entry_bundle(index, width).map_err(|e| match e {
            e @ crate::store::StoreError::Corrupt { .. } => Err(e),
            e => Ok(e.to_string()),
        }),
    })
    .await;
    let width = match req {
        TileRequest::Hashes { width, .. } | TileRequest::Entries { width, .. } => width,
    };
    match result {
        Ok(Ok(Some(bytes))) => {
            let mut resp = (StatusCode::OK, bytes).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            // Full tiles never change; partial ones are replaced by wider ones.
            let cache = if width == merkle::TILE_WIDTH { "public, max-age=31536000, immutable" } else { "no-cache" };
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            resp
        }
        Ok(Ok(None)) => not_found("tile is not in the tree at that width"),
        Ok(Err(Ok(e))) => unavailable(e),
        Ok(Err(Err(e))) => read_failed(e),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct InclusionQuery {
    leaf_index: u64,
    tree_size: u64,
}

/// Runs a proof off the async workers and answers it as JSON (DESIGN 3.5 shapes).
async fn proof_response<T: serde::Serialize>(
    prove: impl FnOnce() -> Result<Vec<merkle::Hash>, merkle::ProofError> + Send + 'static,
    shape: impl FnOnce(Vec<String>) -> T,
) -> Response {
    match tokio::task::spawn_blocking(prove).await {
        Ok(Ok(hashes)) => {
            json_response(200, serde_json::to_string(&shape(merkle::hashes_to_b64(&hashes))).expect("proof serializes"))
        }
        Ok(Err(e @ merkle::ProofError::Storage(_))) => unavailable(e),
        Ok(Err(e)) => refusal_response(&Refusal::new(Code::ProofOutOfRange, e.to_string())),
        Err(e) => unavailable(e),
    }
}

async fn get_inclusion(State(state): State<AppState>, Q(q): Q<InclusionQuery>) -> Response {
    let ledger = state.ledger.clone();
    proof_response(
        move || ledger.prove_inclusion(q.leaf_index, q.tree_size),
        |hashes| merkle::InclusionProof { leaf_index: q.leaf_index, tree_size: q.tree_size, hashes },
    )
    .await
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

async fn get_consistency(State(state): State<AppState>, Q(q): Q<ConsistencyQuery>) -> Response {
    let ledger = state.ledger.clone();
    proof_response(
        move || ledger.prove_consistency(q.first, q.second),
        |hashes| merkle::ConsistencyProof { first: q.first, second: q.second, hashes },
    )
    .await
}

#[derive(Deserialize)]
struct PageQuery {
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
            Err(err) => {
                let message = format!("a stored entry on this page is not UTF-8 JSON: {err}");
                return refusal_response(&Refusal::new(Code::StoreCorrupt, message));
            }
        }
    }
    out.push_str("]}");
    json_response(200, out)
}

async fn get_entries(State(state): State<AppState>, Q(q): Q<PageQuery>) -> Response {
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
struct StreamQuery {
    #[serde(default)]
    from_version: u64,
    limit: Option<u64>,
}

async fn get_stream(State(state): State<AppState>, P(stream): P<String>, Q(q): Q<StreamQuery>) -> Response {
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
struct FeedQuery {
    #[serde(default)]
    from: u64,
}

/// Catch-up then live: newline-delimited canonical entries from `from`, following commits.
async fn get_feed(State(state): State<AppState>, Q(q): Q<FeedQuery>) -> Response {
    let ledger = state.ledger.clone();
    let watch = ledger.watch_tree_size();
    let stream = futures_util::stream::unfold((ledger, watch, q.from), |(ledger, mut watch, next)| async move {
        loop {
            let size = *watch.borrow_and_update();
            if next < size {
                let l = ledger.clone();
                let page = tokio::task::spawn_blocking(move || l.entries(next, PAGE_LEN_MAX.min(size - next))).await;
                let entries = match page {
                    Ok(Ok(e)) if !e.is_empty() => e,
                    _ => return None,
                };
                let n = entries.len() as u64;
                let mut chunk = Vec::with_capacity(entries.iter().map(|e| e.len() + 1).sum());
                for e in entries {
                    chunk.extend_from_slice(&e);
                    chunk.push(b'\n');
                }
                return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (ledger, watch, next + n)));
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

/// What a load balancer needs to route: whether this node takes appends now, and why not.
async fn get_status(State(state): State<AppState>) -> Response {
    let ledger = &state.ledger;
    let (read_only, unavailable, stopped) =
        (ledger.store().is_read_only(), ledger.is_store_unavailable(), ledger.writes_stopped());
    let status = serde_json::json!({
        "origin": ledger.config().origin,
        "tree_size": ledger.head().0.tree_size,
        "accepting_appends": !(read_only || unavailable || stopped.is_some()),
        "read_only": read_only,
        "store_unavailable": unavailable,
        "writes_stopped": stopped.is_some(),
        // Why (the store's error); the operator fixes the cause and restarts the server.
        "writes_stopped_reason": stopped,
        "in_flight_events": ledger.in_flight_events(),
    });
    json_response(200, status.to_string())
}

async fn get_metrics(State(state): State<AppState>) -> Response {
    let (head, _) = state.ledger.head();
    let m = &state.metrics;
    let stopped = state.ledger.writes_stopped();
    let mut body = format!(
        "# TYPE zachetka_tree_size gauge\nzachetka_tree_size {}\n\
         # TYPE zachetka_events_appended_total counter\nzachetka_events_appended_total {}\n\
         # TYPE zachetka_events_refused_total counter\nzachetka_events_refused_total {}\n\
         # TYPE zachetka_requests_busy_total counter\nzachetka_requests_busy_total {}\n\
         # TYPE zachetka_http_requests_total counter\nzachetka_http_requests_total {}\n\
         # TYPE zachetka_sequencer_queue_depth gauge\nzachetka_sequencer_queue_depth {}\n\
         # TYPE zachetka_writes_stopped gauge\nzachetka_writes_stopped {}\n\
         # TYPE zachetka_store_unavailable gauge\nzachetka_store_unavailable {}\n\
         # TYPE zachetka_in_flight_events gauge\nzachetka_in_flight_events {}\n",
        head.tree_size,
        m.appended.load(Ordering::Relaxed),
        m.refused.load(Ordering::Relaxed),
        m.busy.load(Ordering::Relaxed),
        m.requests.load(Ordering::Relaxed),
        state.ledger.queue_depth(),
        u8::from(stopped.is_some()),
        u8::from(state.ledger.is_store_unavailable()),
        state.ledger.in_flight_events(),
    );
    if let Some(reason) = stopped {
        let label = reason.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        body.push_str(&format!(
            "# TYPE zachetka_writes_stopped_reason gauge\nzachetka_writes_stopped_reason{{reason=\"{label}\"}} 1\n"
        ));
    }
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

/// The OpenAPI document, kept beside the code; a test checks it lists every route.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn get_openapi() -> Response {
    json_response(200, OPENAPI.to_owned())
}

/// The root hash of the served checkpoint, for logs and tests.
pub fn head_summary(ledger: &Ledger) -> String {
    let (h, _) = ledger.head();
    format!("tree_size={} root={}", h.tree_size, h.root_hash.to_b64())
}
