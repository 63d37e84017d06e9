//! The log as a transparency log: the checkpoint (`GET /checkpoint`, and every older one at its
//! tree size, `GET /v1/checkpoints/<tree_size>`), C2SP tlog-tiles
//! (`GET /tile/...`, hash and entry tiles) and RFC 9162 proofs (`GET /v1/proofs/...`, DESIGN 3.5
//! shapes). Public, cacheable reads, except entry tiles: they hold entries, so they need a
//! token that may read them (`crate::access::may_read_entries`). Not the place where the tree
//! is hashed (`merkle`, the ledger) or where a failure gets its answer (`error`).

use super::error::{not_found, proof_failed, read_failed, refusal_response, unavailable};
use super::{json_response, AppState, NoQuery, P, Q};
use crate::merkle::{self, TileRequest};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The head's checkpoint, with the witnesses' cosignature lines held for its exact body appended
/// after the ledger's own signature line.
pub(super) async fn get_checkpoint(State(state): State<AppState>, _: NoQuery) -> Response {
    let (head, note) = state.ledger.head();
    let note = match &state.cosigning {
        Some(c) => c.cosigned_head(head.tree_size, &note),
        None => note.as_ref().clone(),
    };
    let mut resp = (StatusCode::OK, note).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The checkpoint signed at exactly `tree_size` (`GET /v1/checkpoints/<tree_size>`): the note
/// that a receipt's `tree_size` names, so an old receipt stays checkable after the head moved on.
/// Public like `/checkpoint`, with the cosignature lines held for it. The ledger's note never
/// changes, but witnesses may still add lines: cached as immutable only where no witness is
/// configured.
pub(super) async fn get_checkpoint_at(State(state): State<AppState>, P(tree_size): P<u64>, _: NoQuery) -> Response {
    let (ledger, cosigning) = (state.ledger.clone(), state.cosigning.clone());
    let found = tokio::task::spawn_blocking(move || {
        let note = ledger.checkpoint_at(tree_size)?;
        Ok::<_, crate::store::StoreError>(note.map(|n| match &cosigning {
            Some(c) => c.cosigned(tree_size, &n),
            None => n,
        }))
    });
    match found.await {
        Ok(Ok(Some(note))) => {
            let mut resp = (StatusCode::OK, note).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            let cache = match state.cosigning {
                Some(_) => "no-cache",
                None => "public, max-age=31536000, immutable",
            };
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            resp
        }
        Ok(Ok(None)) => {
            let head = state.ledger.head().0.tree_size;
            not_found(&format!(
                "no checkpoint was signed at tree size {tree_size}: one is signed per commit batch, at the \
                 tree size the batch ended (a receipt's tree_size); the latest is at tree size {head}"
            ))
        }
        Ok(Err(e)) => read_failed(e),
        Err(e) => unavailable(e),
    }
}

pub(super) async fn get_tile(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(path): P<String>,
    _: NoQuery,
) -> Response {
    let Some(req) = merkle::parse_tile_path(&path) else { return not_found("no such tile path") };
    if let TileRequest::Entries { .. } = req {
        let allowed = super::auth::authenticate(&state, &headers).and_then(|p| crate::access::authorize_entries(&p));
        if let Err(r) = allowed {
            return refusal_response(&r);
        }
    }
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
#[serde(deny_unknown_fields)]
pub(super) struct InclusionQuery {
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
        Ok(Err(e)) => proof_failed(e),
        Err(e) => unavailable(e),
    }
}

pub(super) async fn get_inclusion(State(state): State<AppState>, Q(q): Q<InclusionQuery>) -> Response {
    let ledger = state.ledger.clone();
    proof_response(
        move || ledger.prove_inclusion(q.leaf_index, q.tree_size),
        |hashes| merkle::InclusionProof { leaf_index: q.leaf_index, tree_size: q.tree_size, hashes },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

pub(super) async fn get_consistency(State(state): State<AppState>, Q(q): Q<ConsistencyQuery>) -> Response {
    let ledger = state.ledger.clone();
    proof_response(
        move || ledger.prove_consistency(q.first, q.second),
        |hashes| merkle::ConsistencyProof { first: q.first, second: q.second, hashes },
    )
    .await
}
