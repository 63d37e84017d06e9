//! The HTTP surface (DESIGN 3.5): the router and its state, split by concern into the write
//! endpoint ([`write`]), C2SP tlog-tiles and proofs ([`tlog`]), entry pages, streams and the
//! feed ([`reads`]), status, metrics and the OpenAPI document ([`ops`]), the record verifier page ([`web`]), bearer tokens
//! ([`auth`]), the one place errors become responses ([`error`]), and the connection loop
//! ([`server`]); beside the ledger's, the router of a witness ([`witness`]). Handlers translate; the
//! ledger decides. Every refusal, bad queries and paths and unknown routes included, is
//! `{"code","message"}` JSON whose status comes from [`crate::refusal::Code::http_status`].
//! Not the CLI (`crate::cli`), and no decision about what is valid.

pub mod auth;
mod error;
mod ops;
mod projections;
mod reads;
mod record;
pub mod server;
mod tlog;
mod web;
pub mod witness;
mod write;

use crate::access::Access;
use crate::ledger::Ledger;
use crate::merkle::HashB64;
use crate::refusal::{Code, Refusal};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::refusal_response;
use serde::de::DeserializeOwned;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use error::RETRY_AFTER_SECS;
pub use ops::OPENAPI;
pub use reads::{
    FEEDS_OPEN_MAX, FEED_CHUNK_BYTES_MAX, FEED_FILTER_VALUES_MAX, FEED_HEARTBEAT_INTERVAL, FEED_READ_LEN, PAGE_LEN_MAX,
};
pub use record::VERIFY_BODY_BYTES_MAX;
pub use write::{BODY_BYTES_IN_FLIGHT_MAX, BODY_BYTES_MAX};

#[derive(Clone)]
struct AppState {
    ledger: Ledger,
    metrics: Arc<ops::Metrics>,
    /// Request bodies being read or held for verification, in KiB (see
    /// [`write::BODY_BYTES_IN_FLIGHT_MAX`]).
    bodies: Arc<tokio::sync::Semaphore>,
    /// Open feeds (see [`reads::FEEDS_OPEN_MAX`]).
    feeds: Arc<tokio::sync::Semaphore>,
    /// Who may read what: the token file, or public reads by the operator's choice.
    access: Access,
    /// The ledger's region profile, read once from its config (`POST /v1/verify` replays the
    /// authors' rights under it); `None` for a bare signed log.
    region: Option<Arc<crate::rules::RegionConfig>>,
    /// Witnesses' cosignatures collected for the checkpoints (`crate::cosigning`), when
    /// witnesses are configured.
    cosigning: Option<Arc<crate::cosigning::Cosigning>>,
}

/// The router of a zachetka server over `ledger` with no token: the public endpoints answer,
/// every read that needs a token is refused (`unauthorized`). [`router_with`] names the tokens.
pub fn router(ledger: Ledger) -> Router {
    router_with(ledger, Access::no_tokens())
}

/// The router of a zachetka server over `ledger`, its readers checked by `access` (the token
/// file, re-read when it changes, or `Access::public_reads()`). Every route is listed here (a
/// test counts the `.route(` calls of this file against `openapi.json`). Public: the write
/// endpoint, the checkpoint, hash tiles, proofs, status, metrics, the OpenAPI document, the
/// verifier page and its files. Raw
/// entries (pages, entry tiles, streams, the feed) need a token that may read them
/// (`crate::access::may_read_entries`).
pub fn router_with(ledger: Ledger, access: Access) -> Router {
    router_with_cosigning(ledger, access, None)
}

/// [`router_with`], serving the checkpoints with the witnesses' cosignatures `cosigning` holds
/// (its collecting task is the caller's to start: `Cosigning::start`).
pub fn router_with_cosigning(
    ledger: Ledger,
    access: Access,
    cosigning: Option<Arc<crate::cosigning::Cosigning>>,
) -> Router {
    let bodies = Arc::new(tokio::sync::Semaphore::new(write::BODY_BYTES_IN_FLIGHT_MAX >> 10));
    // Its config was checked when the ledger opened.
    let region = crate::rules::region_of(ledger.config()).ok().flatten().map(Arc::new);
    let feeds = Arc::new(tokio::sync::Semaphore::new(reads::FEEDS_OPEN_MAX));
    let state =
        AppState { ledger, metrics: Arc::new(ops::Metrics::default()), bodies, feeds, access, region, cosigning };
    Router::new()
        .route("/v1/events", post(write::post_events))
        .route("/checkpoint", get(tlog::get_checkpoint))
        .route("/v1/checkpoints/{tree_size}", get(tlog::get_checkpoint_at))
        .route("/tile/{*path}", get(tlog::get_tile))
        .route("/v1/proofs/inclusion", get(tlog::get_inclusion))
        .route("/v1/proofs/consistency", get(tlog::get_consistency))
        .route("/v1/entries", get(reads::get_entries))
        .route("/v1/streams/{*stream}", get(reads::get_stream))
        .route("/v1/feed", get(reads::get_feed))
        .route("/v1/projections", get(projections::list))
        .route("/v1/projections/{*path}", get(projections::view))
        .route("/v1/learners/{learner}/record", get(record::get_record))
        .route("/v1/verify", post(record::post_verify))
        .route("/v1/status", get(ops::get_status))
        .route("/metrics", get(ops::get_metrics))
        .route("/openapi.json", get(ops::get_openapi))
        .route("/verify", get(web::get_page))
        .route("/web/{file}", get(web::get_file))
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
    if let Some(error::StoreCorruptAnswer(message)) = resp.extensions().get() {
        state.metrics.store_corrupt_seen(&path, message);
    }
    tracing::info!(%method, %path, status = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    resp
}

fn json_response(status: u16, body: String) -> Response {
    let mut resp = (StatusCode::from_u16(status).expect("valid status"), body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
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

/// The query of an endpoint that takes no parameter: refused as `bad_query` (JSON, 400) when it
/// names any, so a misspelt parameter is never silently ignored (review s12, M1). An empty
/// query (`?`) passes: C2SP tlog-tiles clients send none, and a bare `?` names nothing.
struct NoQuery;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        axum::extract::Query::<NoParameters>::try_from_uri(&parts.uri).map(|_| NoQuery).map_err(|e| {
            let message =
                format!("{} takes no query parameters: {}", parts.uri.path(), lowercase_first(&e.body_text()));
            refusal_response(&Refusal::new(Code::BadQuery, message))
        })
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

/// The served checkpoint's size and root hash, for logs and tests.
pub fn head_summary(ledger: &Ledger) -> String {
    let (h, _) = ledger.head();
    format!("tree_size={} root={}", h.tree_size, h.root_hash.to_b64())
}
