//! Read models over HTTP (`GET /v1/projections/...`, DESIGN 3.5): the list of models with their
//! cursors (and digests on request), and each model's views, answered with the tree size and
//! root they reflect and shown only to a token whose role covers the view's scope (checked on
//! what the path names before any wait or work, on an application's scope before a wait, and on
//! the answer's own scope before it leaves).
//! `?min_tree_size=N` waits (bounded) until the model has applied N entries, so a front end reads
//! its own writes: an append's receipt carries the size to ask for.
//! Not the models (`zachetka-projections`) and not the runner (`crate::read`).

use super::auth::{authorize_view, Authenticated, Principal};
use super::error::refusal_response;
use super::{json_response, AppState, P, Q};
use crate::access::may_read;
use crate::merkle::HashB64;
use crate::read::ReadError;
use crate::refusal::{Code, Refusal};
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use std::time::Duration;
use zachetka_projections::{Scope, ViewError};

/// The longest a read waits for `min_tree_size` before answering `not_yet_applied`.
pub const MIN_TREE_SIZE_WAIT: Duration = Duration::from_secs(2);
/// Largest `min_tree_size` taken (2^53, the largest integer every JSON reader keeps exact): a
/// log grows by appends, and no log reaches this, so a larger value is a client's bug, refused
/// at once instead of waited on and retried. A value above the head but below this is waited
/// on: an append may be in flight (the head of another node may be ahead of this one's).
pub const MIN_TREE_SIZE_MAX: u64 = 1 << 53;
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

/// What a view's path says of the scope of its answer, before the model is asked. The models
/// name each answer's scope; this mirrors their path shapes (`zachetka-projections`'s
/// `models/*.rs`), so that a token is refused before any wait or work, and a missing item in a
/// scope the path names is told apart from one outside it. In debug builds every answer is
/// checked against it.
#[derive(Debug, PartialEq)]
enum PathScope {
    /// Every answer of the path is of this scope (a learner's diary, an institution's journals).
    Named(Scope),
    /// The scope is known only from the answer: a queue application's (its applicant, known
    /// from the answer, and the territory the path names) or an institution's (a teacher: where
    /// they work now).
    ApplicationOfAnswer(String),
    InstitutionOfAnswer,
    /// A path the model refuses (no first segment) or a model this table does not know: nothing
    /// is checked before the model answers.
    Unknown,
}

fn path_scope(model: &str, rest: &[&str]) -> PathScope {
    if model == "indicators" {
        return PathScope::Named(Scope::Region);
    }
    let Some(first) = rest.first().filter(|s| !s.is_empty()) else { return PathScope::Unknown };
    let first = (*first).to_owned();
    match model {
        "completeness" if first == "commitments" => PathScope::Named(Scope::Region),
        "diaries" | "record-books" | "profiles" | "completeness" => PathScope::Named(Scope::Learner(first)),
        "journals" | "first-grade" | "clubs" => PathScope::Named(Scope::Institution(first)),
        "kindergarten-queues" if rest.get(1) == Some(&"applications") => PathScope::ApplicationOfAnswer(first),
        "kindergarten-queues" => PathScope::Named(Scope::Territory(first)),
        "teachers" => PathScope::InstitutionOfAnswer,
        _ => PathScope::Unknown,
    }
}

/// Whether `principal` may read some answer of a path whose scope is `scope`: the refusal it
/// gets otherwise, before the model is asked. For a scope known only from the answer, a token
/// passes if it may read the whole region, holds the territory the path names (an
/// application), or holds a scope of the kind the answer may have (a learner, an institution);
/// the answer's own scope is checked again once it is known.
fn authorize_path(principal: &Principal, scope: &PathScope) -> Result<(), Refusal> {
    let may_read_some = |territory: Option<&str>| match principal {
        Principal::PublicReads => true,
        Principal::Token { scope: held, .. } => {
            may_read(principal, &Scope::Region)
                || match territory {
                    Some(t) => matches!(held, Scope::Learner(_)) || matches!(held, Scope::Territory(h) if h == t),
                    None => matches!(held, Scope::Institution(_)),
                }
        }
    };
    match scope {
        PathScope::Named(s) => authorize_view(principal, s),
        // A token that may read no answer of the path hears what it hears for any scope not its own.
        PathScope::ApplicationOfAnswer(t) if !may_read_some(Some(t)) => authorize_view(principal, &Scope::Region),
        PathScope::InstitutionOfAnswer if !may_read_some(None) => authorize_view(principal, &Scope::Region),
        _ => Ok(()),
    }
}

/// `GET /v1/projections/<model>/<path...>`: one view.
pub(super) async fn view(
    Authenticated(principal): Authenticated,
    State(state): State<AppState>,
    P(path): P<String>,
    Q(q): Q<ViewQuery>,
) -> Response {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > SEGMENTS_MAX + 1 {
        return refusal_response(&Refusal::new(
            Code::BadPath,
            format!("a view path has at most {SEGMENTS_MAX} segments"),
        ));
    }
    if let Some(n) = q.min_tree_size.filter(|n| *n > MIN_TREE_SIZE_MAX) {
        let message = format!("min_tree_size {n} is larger than any log (at most 2^53, {MIN_TREE_SIZE_MAX})");
        return refusal_response(&Refusal::new(Code::BadQuery, message));
    }
    let (name, rest) = segments.split_first().expect("split yields one item at least");
    let read = state.ledger.read_side();
    if !read.names().iter().any(|n| n == name) {
        let message = format!("no read model {name}; the models are {}", read.names().join(", "));
        return refusal_response(&Refusal::new(Code::NotFound, message));
    }
    // Authorized on what the path says of the scope before any wait or work.
    let path_scope = path_scope(name, rest);
    if let Err(r) = authorize_path(&principal, &path_scope) {
        return refusal_response(&r);
    }
    if let Some(n) = q.min_tree_size.filter(|n| read.applied() < *n) {
        // Review s12, H2: a scope known only from the answer is learned before the wait where
        // it cannot change: an application's (its applicant and territory, fixed when it is
        // filed), so a parent asking another child's application is 403 at once, not 503 after
        // the wait. An application not filed yet, and a teacher (whose school the awaited
        // entries may change), are checked only on the answer, after the wait (README).
        if matches!(path_scope, PathScope::ApplicationOfAnswer(_)) {
            match on_read_side(&state.ledger, name, rest, crate::read::ReadSide::scope_of).await {
                Ok(Some(scope)) => {
                    if let Err(r) = authorize_view(&principal, &scope) {
                        return refusal_response(&r);
                    }
                }
                Ok(None) => {}
                Err(e) => return super::error::unavailable(e),
            }
        }
        if !read.wait_applied(n, MIN_TREE_SIZE_WAIT).await {
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
        None => match on_read_side(&state.ledger, name, rest, crate::read::ReadSide::view).await {
            Ok(v) => v,
            Err(e) => return super::error::unavailable(e),
        },
    };
    let answer = match viewed {
        Ok(a) => a,
        Err(ReadError::UnknownModel(m)) => {
            let message = format!("no read model {m}; the models are {}", read.names().join(", "));
            return refusal_response(&Refusal::new(Code::NotFound, message));
        }
        // Whether an id exists is itself personal data: a token learns it only inside the scope
        // the path names, which it holds (checked above: a parent asking a subject of their own
        // child's diary, staff a class of their own school), or as a reader of the whole region;
        // any other token hears what it hears for an id outside its scope.
        Err(ReadError::View(ViewError::NotFound(m))) => {
            let territory;
            let scope = match &path_scope {
                PathScope::Named(s) => s,
                // An application missing from a territory's queue: the territory's to know.
                PathScope::ApplicationOfAnswer(t) => {
                    territory = Scope::Territory(t.clone());
                    &territory
                }
                _ => &Scope::Region,
            };
            return match authorize_view(&principal, scope) {
                Ok(()) => refusal_response(&Refusal::new(Code::NotFound, m)),
                Err(r) => refusal_response(&r),
            };
        }
        Err(ReadError::View(ViewError::BadPath(m))) => return refusal_response(&Refusal::new(Code::BadPath, m)),
        Err(ReadError::Store(m)) => return super::error::unavailable(m),
    };
    debug_assert!(
        match &path_scope {
            PathScope::Named(s) => *s == answer.view.scope,
            PathScope::ApplicationOfAnswer(t) =>
                matches!(&answer.view.scope, Scope::Application { territory, .. } if territory == t),
            PathScope::InstitutionOfAnswer => matches!(answer.view.scope, Scope::Institution(_)),
            PathScope::Unknown => true,
        },
        "{name}/{rest:?}: the path's scope {path_scope:?} differs from the answer's {:?}",
        answer.view.scope
    );
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

/// `f` of the read side for the view `name` at `rest`, on a blocking thread (a fold may hold the
/// model's lock, or the view may be costly), with the name and path owned for it.
async fn on_read_side<T: Send + 'static>(
    ledger: &crate::ledger::Ledger,
    name: &str,
    rest: &[&str],
    f: fn(&crate::read::ReadSide, &str, &[&str]) -> T,
) -> Result<T, tokio::task::JoinError> {
    let (ledger, name, rest) =
        (ledger.clone(), name.to_owned(), rest.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || {
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        f(ledger.read_side(), &name, &rest)
    })
    .await
}
