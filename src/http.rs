//! The HTTP surface (DESIGN 3.5): the write endpoint, C2SP tlog-tiles, proofs, paged entries,
//! streams, the feed, metrics and the OpenAPI document. Handlers translate; the ledger decides.
//! Refusal codes become HTTP statuses only through [`crate::refusal::Code::http_status`].

use crate::ledger::{Ledger, Receipt};
use crate::merkle::{self, HashB64, TileRequest};
use crate::refusal::{Code, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
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
    if r.code == Code::Busy {
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

async fn post_events(State(state): State<AppState>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(b) => b,
        Err(_) => {
            return refusal_response(&Refusal::new(
                Code::BodyTooLarge,
                format!("request body exceeds {BODY_BYTES_MAX} bytes"),
            ))
        }
    };
    let parsed = match crate::jcs::parse_strict(&bytes) {
        Ok(v) => v,
        Err(e) => return refusal_response(&Refusal::new(Code::MalformedJson, format!("body is not JSON: {e}"))),
    };
    let (events, single) = match parsed {
        serde_json::Value::Array(items) => (items, false),
        v => (vec![v], true),
    };
    let ledger = state.ledger.clone();
    let pending = match tokio::task::spawn_blocking(move || ledger.submit(events)).await {
        Ok(Ok(p)) => p,
        Ok(Err(r)) => {
            if r.code == Code::Busy {
                state.metrics.busy.fetch_add(1, Ordering::Relaxed);
            }
            return refusal_response(&r);
        }
        Err(e) => return refusal_response(&Refusal::new(Code::Unavailable, format!("verification task failed: {e}"))),
    };
    let results = pending.wait().await;
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
    json_response(404, serde_json::json!({"code": "not_found", "message": what}).to_string())
}

fn bad_request(code: &str, message: String) -> Response {
    json_response(400, serde_json::json!({"code": code, "message": message}).to_string())
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    refusal_response(&Refusal::new(Code::Unavailable, format!("couldn't read the store: {e}")))
}

async fn get_tile(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let Some(req) = merkle::parse_tile_path(&path) else { return not_found("no such tile path") };
    let ledger = state.ledger.clone();
    let result = tokio::task::spawn_blocking(move || match req {
        TileRequest::Hashes { level, index, width } => ledger.hash_tile(level, index, width).map_err(|e| e.to_string()),
        TileRequest::Entries { index, width } => ledger.entry_bundle(index, width).map_err(|e| e.to_string()),
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
        Ok(Err(e)) => unavailable(e),
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
        Ok(Err(e)) => bad_request("proof_out_of_range", e.to_string()),
        Err(e) => unavailable(e),
    }
}

async fn get_inclusion(State(state): State<AppState>, Query(q): Query<InclusionQuery>) -> Response {
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

async fn get_consistency(State(state): State<AppState>, Query(q): Query<ConsistencyQuery>) -> Response {
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

/// `{"tree_size":N,"entries":[<canonical entry>,...]}`, entries embedded byte for byte.
fn entries_page(tree_size: u64, entries: &[Vec<u8>], extra: &str) -> String {
    let mut out = format!("{{{extra}\"tree_size\":{tree_size},\"entries\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(std::str::from_utf8(e).expect("entries are UTF-8 JSON"));
    }
    out.push_str("]}");
    out
}

async fn get_entries(State(state): State<AppState>, Query(q): Query<PageQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(PAGE_LEN_MAX);
    let ledger = state.ledger.clone();
    let size = ledger.head().0.tree_size;
    match tokio::task::spawn_blocking(move || ledger.entries(q.from, limit)).await {
        Ok(Ok(entries)) => json_response(200, entries_page(size, &entries, "")),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct StreamQuery {
    #[serde(default)]
    from_version: u64,
    limit: Option<u64>,
}

async fn get_stream(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(q): Query<StreamQuery>,
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
        Ok(Ok((len, entries))) => json_response(200, entries_page(size, &entries, &format!("\"stream_len\":{len},"))),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    from: u64,
}

/// Catch-up then live: newline-delimited canonical entries from `from`, following commits.
async fn get_feed(State(state): State<AppState>, Query(q): Query<FeedQuery>) -> Response {
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
        (ledger.store().is_read_only(), ledger.is_store_unavailable(), ledger.is_failed());
    let status = serde_json::json!({
        "origin": ledger.config().origin,
        "tree_size": ledger.head().0.tree_size,
        "accepting_appends": !(read_only || unavailable || stopped),
        "read_only": read_only,
        "store_unavailable": unavailable,
        "writes_stopped": stopped,
    });
    json_response(200, status.to_string())
}

async fn get_metrics(State(state): State<AppState>) -> Response {
    let (head, _) = state.ledger.head();
    let m = &state.metrics;
    let body = format!(
        "# TYPE zachetka_tree_size gauge\nzachetka_tree_size {}\n\
         # TYPE zachetka_events_appended_total counter\nzachetka_events_appended_total {}\n\
         # TYPE zachetka_events_refused_total counter\nzachetka_events_refused_total {}\n\
         # TYPE zachetka_requests_busy_total counter\nzachetka_requests_busy_total {}\n\
         # TYPE zachetka_http_requests_total counter\nzachetka_http_requests_total {}\n\
         # TYPE zachetka_sequencer_queue_depth gauge\nzachetka_sequencer_queue_depth {}\n\
         # TYPE zachetka_writes_stopped gauge\nzachetka_writes_stopped {}\n\
         # TYPE zachetka_store_unavailable gauge\nzachetka_store_unavailable {}\n",
        head.tree_size,
        m.appended.load(Ordering::Relaxed),
        m.refused.load(Ordering::Relaxed),
        m.busy.load(Ordering::Relaxed),
        m.requests.load(Ordering::Relaxed),
        state.ledger.queue_depth(),
        u8::from(state.ledger.is_failed()),
        u8::from(state.ledger.is_store_unavailable()),
    );
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
