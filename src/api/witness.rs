//! The witness over HTTP (C2SP `tlog-witness`): `POST /add-checkpoint`, its body bounded and
//! counted as it arrives, answered by [`WitnessService`] off the async workers (its answer
//! waits on an fsync). 200 is the cosignature line; a 409 is the witness's latest size as
//! `text/x.tlog.size`; every other refusal is `{"code","message"}` JSON with the spec's status.
//! A router of its own, not the ledger's (`super::router_with`). Not the protocol's checks
//! (`crate::witness`), nor the connection loop (`super::server`).

use crate::witness::{WitnessRefusal, WitnessService, REQUEST_BYTES_MAX, SIZE_CONTENT_TYPE};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use std::sync::Arc;

/// The witness's router: `POST /add-checkpoint`.
pub fn router(service: Arc<WitnessService>) -> Router {
    Router::new().route("/add-checkpoint", post(add_checkpoint)).with_state(service)
}

async fn add_checkpoint(State(service): State<Arc<WitnessService>>, body: Body) -> Response {
    let bytes = match read_bounded(body).await {
        Ok(b) => b,
        Err(r) => return refused(&r),
    };
    match tokio::task::spawn_blocking(move || service.add_checkpoint(&bytes)).await {
        Ok(Ok(line)) => text(StatusCode::OK, "text/plain; charset=utf-8", line),
        Ok(Err(r)) => refused(&r),
        Err(e) => refused(&WitnessRefusal::StateUnavailable(e.to_string())),
    }
}

/// The body, refused as soon as more than [`REQUEST_BYTES_MAX`] bytes arrived.
async fn read_bounded(body: Body) -> Result<Vec<u8>, WitnessRefusal> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| WitnessRefusal::Malformed(format!("couldn't read the request body: {e}")))?;
        if out.len() + chunk.len() > REQUEST_BYTES_MAX {
            return Err(WitnessRefusal::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn refused(r: &WitnessRefusal) -> Response {
    let status = StatusCode::from_u16(r.http_status()).expect("a valid status");
    match r.latest_size() {
        Some(latest) => text(status, SIZE_CONTENT_TYPE, format!("{latest}\n")),
        None => {
            let body = serde_json::json!({"code": r.code(), "message": r.to_string()}).to_string();
            text(status, "application/json", body)
        }
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
