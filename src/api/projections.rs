//! Read models over HTTP (`GET /v1/projections/...`, DESIGN 3.5): the list of models with their
//! cursors (and digests on request), and each model's views, answered with the tree size and
//! root they reflect and shown only to a token whose role covers the view's scope.
//! `?min_tree_size=N` waits (bounded) until the model has applied N entries, so a front end reads
//! its own writes: an append's receipt carries the size to ask for.
//! Not the models (`zachetka-projections`) and not the runner (`crate::read`).

use super::auth::{authorize_view, Authenticated};
use super::error::refusal_response;
use super::{json_response, AppState, Q};
use crate::merkle::HashB64;
use crate::read::ReadError;
use crate::refusal::{Code, Refusal};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use std::time::Duration;
use zachetka_projections::ViewError;

/// The longest a read waits for `min_tree_size` before answering `not_yet_applied`.
pub const MIN_TREE_SIZE_WAIT: Duration = Duration::from_secs(2);
/// Most path segments a view takes (beyond the model's name).
const SEGMENTS_MAX: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ViewQuery {
    min_tree_size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    digests: bool,
}

/// `GET /v1/projections`: every model with its cursor, lag and (with `?digests=true`, for
/// auditors and read services comparing builds) its digest.
pub(super) async fn list(
    Authenticated(principal): Authenticated,
    State(state): State<AppState>,
    Q(q): Q<ListQuery>,
) -> Response {
    if let Err(r) = authorize_view(&principal, &zachetka_projections::Scope::Region) {
        return refusal_response(&r);
    }
    let head = state.ledger.head().0.tree_size;
    let ledger = state.ledger.clone();
    let result = tokio::task::spawn_blocking(move || {
        let read = ledger.read_side();
        let status = read.status(head);
        let digests = q.digests.then(|| read.digests());
        serde_json::json!({ "tree_size": head, "models": status.models, "digests": digests,
            "snapshot_tree_size": status.snapshot_tree_size, "failing": status.failing, "warnings": status.warnings })
    })
    .await;
    match result {
        Ok(body) => json_response(200, body.to_string()),
        Err(e) => super::error::unavailable(e),
    }
}

/// `GET /v1/projections/<model>/<path...>`: one view.
pub(super) async fn view(
    Authenticated(principal): Authenticated,
    State(state): State<AppState>,
    Path(path): Path<String>,
    Q(q): Q<ViewQuery>,
) -> Response {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > SEGMENTS_MAX + 1 {
        return refusal_response(&Refusal::new(
            Code::BadPath,
            format!("a view path has at most {SEGMENTS_MAX} segments"),
        ));
    }
    let (name, rest) = segments.split_first().expect("split yields one item at least");
    let read = state.ledger.read_side();
    if let Some(n) = q.min_tree_size {
        if read.applied() < n && !read.wait_applied(n, MIN_TREE_SIZE_WAIT).await {
            let message =
                format!("the read models have applied {} entries, not yet {n}; retry shortly", read.applied());
            return refusal_response(&Refusal::new(Code::NotYetApplied, message));
        }
    }
    // A point view (one learner's diary, one class's journal in a subject, one application)
    // whose model is not being folded is answered here, on the request's worker; any other view
    // runs on a blocking thread, so a costly one (a large territory's queue) or a wait for a
    // fold never holds up the cheap reads sharing this worker.
    let viewed = match read.try_view(name, rest) {
        Some(v) => v,
        None => {
            let (ledger, name_owned, rest_owned) =
                (state.ledger.clone(), (*name).to_owned(), rest.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            let viewed = tokio::task::spawn_blocking(move || {
                let rest: Vec<&str> = rest_owned.iter().map(String::as_str).collect();
                ledger.read_side().view(&name_owned, &rest)
            })
            .await;
            match viewed {
                Ok(v) => v,
                Err(e) => return super::error::unavailable(e),
            }
        }
    };
    let answer = match viewed {
        Ok(a) => a,
        Err(ReadError::UnknownModel(m)) => {
            let message = format!("no read model {m}; the models are {}", read.names().join(", "));
            return refusal_response(&Refusal::new(Code::NotFound, message));
        }
        // Whether an id exists is itself personal data: only a reader of the whole region learns
        // it; any other token hears what it hears for an id outside its scope.
        Err(ReadError::View(ViewError::NotFound(m))) => {
            return match authorize_view(&principal, &zachetka_projections::Scope::Region) {
                Ok(()) => refusal_response(&Refusal::new(Code::NotFound, m)),
                Err(r) => refusal_response(&r),
            }
        }
        Err(ReadError::View(ViewError::BadPath(m))) => return refusal_response(&Refusal::new(Code::BadPath, m)),
        Err(ReadError::Store(m)) => return super::error::unavailable(m),
    };
    // Authorized on the answer's scope, before any byte of it leaves: a refusal carries no data.
    if let Err(r) = authorize_view(&principal, &answer.view.scope) {
        return refusal_response(&r);
    }
    let body = serde_json::json!({
        "model": answer.model,
        "tree_size": answer.tree_size,
        "root": answer.root.to_b64(),
        "scope": answer.view.scope,
        "view": answer.view.body,
    });
    json_response(200, body.to_string())
}
