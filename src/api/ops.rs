//! What operators and load balancers read: `GET /v1/status` (whether this node takes appends,
//! and why not), `GET /metrics` (Prometheus text) and `GET /openapi.json`. Not the place for
//! the log's contents (`reads`, `tlog`).

use super::{json_response, AppState};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of this server process, shown by `/metrics`.
#[derive(Default)]
pub(super) struct Metrics {
    pub(super) appended: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) busy: AtomicU64,
    pub(super) requests: AtomicU64,
    /// Reads refused as `store_corrupt` (damage met on read, a feed's last line included; the
    /// open checks only the head, the audit checks everything), and the latest one, so an
    /// operator sees damage at once.
    pub(super) store_corrupt: AtomicU64,
    pub(super) store_corrupt_latest: std::sync::Mutex<Option<String>>,
}

impl Metrics {
    pub(super) fn store_corrupt_seen(&self, path: &str, message: &str) {
        self.store_corrupt.fetch_add(1, Ordering::Relaxed);
        *self.store_corrupt_latest.lock().expect("metrics lock") = Some(format!("{path}: {message}"));
    }
}

/// What a load balancer needs to route: whether this node takes appends now, and why not.
pub(super) async fn get_status(State(state): State<AppState>, _: super::NoQuery) -> Response {
    let ledger = &state.ledger;
    let (read_only, unavailable, stopped) =
        (ledger.store().is_read_only(), ledger.is_store_unavailable(), ledger.writes_stopped());
    let clock_skewed = ledger.is_clock_skewed();
    let status = serde_json::json!({
        "origin": ledger.config().origin,
        "tree_size": ledger.head().0.tree_size,
        "accepting_appends": !(read_only || unavailable || stopped.is_some() || clock_skewed),
        "read_only": read_only,
        "store_unavailable": unavailable,
        "writes_stopped": stopped.is_some(),
        // Why (the store's error); the operator fixes the cause and restarts the server.
        "writes_stopped_reason": stopped,
        "in_flight_events": ledger.in_flight_events(),
        // Ledger time never runs backwards: while the clock is behind it, new entries carry it.
        "ledger_time_ahead_of_clock_seconds": ledger.ledger_time_ahead_of_clock(),
        // This node's clock minus the database's (null over sled); beyond the bound either way
        // (`clock_skewed`) the node takes no appends.
        "clock_skew_seconds": ledger.clock_skew(),
        "clock_skewed": clock_skewed,
        // Each read model's cursor (the tree size it has applied), lag and whether it caught up.
        "read_models": ledger.read_side().status(ledger.head().0.tree_size),
        // Damage this server met and goes on with: what the store's open found and did not
        // refuse (a damaged head.dat slot), and the latest read refused as store_corrupt.
        "warnings": warnings(&state),
        "store_corrupt_answers": state.metrics.store_corrupt.load(Ordering::Relaxed),
        // Each configured witness: the newest tree size it cosigned, and its last failure.
        "witnesses": state.cosigning.as_ref().map(|c| c.status_json()).unwrap_or_else(|| serde_json::json!([])),
    });
    json_response(200, status.to_string())
}

fn warnings(state: &AppState) -> Vec<String> {
    let mut out: Vec<String> = (state.ledger.store().findings().into_iter())
        .map(|f| format!("{}: {} at offset {}: {}", f.code, f.file, f.offset, f.message))
        .collect();
    if let Some(latest) = state.metrics.store_corrupt_latest.lock().expect("metrics lock").clone() {
        let n = state.metrics.store_corrupt.load(Ordering::Relaxed);
        out.push(format!("store_corrupt: {n} reads refused as damaged, the latest {latest}"));
    }
    out.extend(state.ledger.clock_warnings());
    if let Some(e) = state.ledger.read_side().snapshot_failing() {
        out.push(format!("snapshot write failing: {e}"));
    }
    out
}

pub(super) async fn get_metrics(State(state): State<AppState>, _: super::NoQuery) -> Response {
    let (head, _) = state.ledger.head();
    let m = &state.metrics;
    let stopped = state.ledger.writes_stopped();
    let mut body = format!(
        "# TYPE zachetka_tree_size gauge\nzachetka_tree_size {}\n\
         # TYPE zachetka_events_appended_total counter\nzachetka_events_appended_total {}\n\
         # TYPE zachetka_events_refused_total counter\nzachetka_events_refused_total {}\n\
         # TYPE zachetka_requests_busy_total counter\nzachetka_requests_busy_total {}\n\
         # TYPE zachetka_http_requests_total counter\nzachetka_http_requests_total {}\n\
         # TYPE zachetka_store_corrupt_total counter\nzachetka_store_corrupt_total {}\n\
         # TYPE zachetka_sequencer_queue_depth gauge\nzachetka_sequencer_queue_depth {}\n\
         # TYPE zachetka_writes_stopped gauge\nzachetka_writes_stopped {}\n\
         # TYPE zachetka_store_unavailable gauge\nzachetka_store_unavailable {}\n\
         # TYPE zachetka_in_flight_events gauge\nzachetka_in_flight_events {}\n\
         # TYPE zachetka_request_body_bytes_reserved gauge\nzachetka_request_body_bytes_reserved {}\n\
         # TYPE zachetka_rules_resyncs_total counter\nzachetka_rules_resyncs_total {}\n\
         # TYPE zachetka_rules_resync_replayed_entries_total counter\nzachetka_rules_resync_replayed_entries_total {}\n\
         # TYPE zachetka_ledger_time_ahead_of_clock_seconds gauge\nzachetka_ledger_time_ahead_of_clock_seconds {}\n\
         # TYPE zachetka_clock_skew_seconds gauge\nzachetka_clock_skew_seconds {}\n\
         # TYPE zachetka_clock_skewed gauge\nzachetka_clock_skewed {}\n\
         # TYPE zachetka_clock_skew_refusals_total counter\nzachetka_clock_skew_refusals_total {}\n",
        head.tree_size,
        m.appended.load(Ordering::Relaxed),
        m.refused.load(Ordering::Relaxed),
        m.busy.load(Ordering::Relaxed),
        m.requests.load(Ordering::Relaxed),
        m.store_corrupt.load(Ordering::Relaxed),
        state.ledger.queue_depth(),
        u8::from(stopped.is_some()),
        u8::from(state.ledger.is_store_unavailable()),
        state.ledger.in_flight_events(),
        super::write::BODY_BYTES_IN_FLIGHT_MAX - (state.bodies.available_permits() << 10),
        state.ledger.resync_stats().0,
        state.ledger.resync_stats().1,
        state.ledger.ledger_time_ahead_of_clock(),
        state.ledger.clock_skew().unwrap_or(0),
        u8::from(state.ledger.is_clock_skewed()),
        state.ledger.clock_skew_refusals(),
    );
    body.push_str(&format!(
        "# TYPE zachetka_feeds_open gauge\nzachetka_feeds_open {}\n",
        super::reads::FEEDS_OPEN_MAX - state.feeds.available_permits()
    ));
    let read = state.ledger.read_side().status(head.tree_size);
    body.push_str("# TYPE zachetka_read_model_cursor gauge\n# TYPE zachetka_read_model_lag gauge\n");
    for m in &read.models {
        body.push_str(&format!(
            "zachetka_read_model_cursor{{model=\"{0}\"}} {1}\nzachetka_read_model_lag{{model=\"{0}\"}} {2}\n",
            m.name, m.cursor, m.lag
        ));
    }
    body.push_str(&format!(
        "# TYPE zachetka_completeness_commitment_refusals_total counter\nzachetka_completeness_commitment_refusals_total {}\n\
         # TYPE zachetka_completeness_commitment_refused gauge\nzachetka_completeness_commitment_refused {}\n",
        read.completeness.refusals,
        u8::from(read.completeness.refused.is_some()),
    ));
    // Always exported (0 before any snapshot), so an alert on a stale value also fires when
    // no snapshot was ever written.
    body.push_str(&format!(
        "# TYPE zachetka_snapshot_tree_size gauge\nzachetka_snapshot_tree_size {}\n\
         # TYPE zachetka_snapshot_failures_total counter\nzachetka_snapshot_failures_total {}\n",
        read.snapshot_tree_size.unwrap_or(0),
        read.snapshot_failures,
    ));
    if let Some(reason) = stopped {
        let label = reason.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        body.push_str(&format!(
            "# TYPE zachetka_writes_stopped_reason gauge\nzachetka_writes_stopped_reason{{reason=\"{label}\"}} 1\n"
        ));
    }
    if let Some(c) = &state.cosigning {
        body.push_str(&c.metrics_text());
    }
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

/// The OpenAPI document, kept beside the code; a test checks it lists every route.
pub const OPENAPI: &str = include_str!("openapi.json");

pub(super) async fn get_openapi(_: super::NoQuery) -> Response {
    json_response(200, OPENAPI.to_owned())
}
