//! The HTTP side of read access: the `Authorization: Bearer <token>` extractors that turn a
//! request into a [`Principal`] (401 `unauthorized` without a valid token) and, for the raw log,
//! check that it may read entries (403 `forbidden`). Which endpoints are public is decided by
//! which handlers take these extractors; the decisions themselves are `crate::access`'s pure
//! functions. Not the token file (`crate::access`).

use super::error::refusal_response;
use super::AppState;
use crate::refusal::{Code, Refusal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;

pub use crate::access::{authorize_entries, authorize_view, Principal, Scope};

/// The principal of a request's `Authorization` header, or the refusal: `unauthorized` (no
/// token, not a bearer token, unknown or revoked, or more than one `Authorization` header) or
/// `unavailable` (the token file is unreadable).
pub(super) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Refusal> {
    // Two headers are ambiguous: a proxy in front may read the other one and authorize the
    // request differently. Refused whatever they hold (even under `--public-reads`).
    let mut given = headers.get_all(header::AUTHORIZATION).iter();
    let first = given.next();
    if given.next().is_some() {
        let message = "the request has more than one Authorization header; send exactly one";
        return Err(Refusal::new(Code::Unauthorized, message));
    }
    state.access.authenticate(first.map(|v| v.as_bytes()))
}

/// A request with a valid token (or any request under `--public-reads`); rejected with 401
/// before any other extractor runs when it is the first argument of a handler. A view handler
/// then calls [`authorize_view`] with the view's scope before answering its body.
pub(super) struct Authenticated(pub(super) Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        authenticate(state, &parts.headers).map(Authenticated).map_err(|r| refusal_response(&r))
    }
}

/// A request that may read raw entries (`/v1/entries`, `/v1/streams/..`, `/v1/feed`): an
/// auditor or a region read service. 401 without a valid token, 403 with another; both before
/// the query is parsed or anything is read.
pub(super) struct EntryReader(pub(super) Principal);

impl FromRequestParts<AppState> for EntryReader {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let principal = authenticate(state, &parts.headers).map_err(|r| refusal_response(&r))?;
        authorize_entries(&principal).map_err(|r| refusal_response(&r))?;
        Ok(EntryReader(principal))
    }
}
