//! Learner records over HTTP (DESIGN 3.4, 3.5): `GET /v1/learners/<id>/record` exports the
//! bundle to a token that may read the learner (their own token, a parent's, region readers),
//! and `POST /v1/verify` verifies any bundle of this ledger for anyone, answering the report.
//! Not the bundle or its checks (crate `zachetka-record`) nor where entries are found
//! (`crate::record`).

use super::auth::{authorize_view, Authenticated};
use super::error::{read_failed, refusal_response, unavailable, verification_failed};
use super::write::{check_json_content_type, read_body};
use super::{json_response, AppState, P, Q};
use crate::cosignature::WitnessKey;
use crate::record::{BundleAt, Disclosure, RecordError};
use crate::refusal::{Code, Refusal};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

/// Largest bundle `POST /v1/verify` reads (a public endpoint: about 10,000 disclosed entries;
/// larger bundles are verified offline with `zachetka verify` or the library).
pub const VERIFY_BODY_BYTES_MAX: usize = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordQuery {
    /// Disclosure choices, comma-separated (`final-results,documents,achievements`).
    only: Option<String>,
    /// `true`: proved in the newest checkpoint the witnesses cosigned, not the freshest.
    cosigned: Option<bool>,
}

/// `GET /v1/learners/<id>/record[?only=...][&cosigned=true]`: the learner's record bundle.
pub(super) async fn get_record(
    Authenticated(principal): Authenticated,
    State(state): State<AppState>,
    P(learner): P<String>,
    Q(q): Q<RecordQuery>,
) -> Response {
    // A path with no learner id is the client's error, answered as every bad path is.
    if learner.is_empty() {
        let message = "expected a learner id in /v1/learners/<learner>/record";
        return refusal_response(&Refusal::new(Code::BadPath, message));
    }
    // Authorized on the learner's scope before anything is looked up or read.
    if let Err(r) = authorize_view(&principal, &zachetka_projections::Scope::Learner(learner.clone())) {
        return refusal_response(&r);
    }
    let disclosure = match q.only.as_deref().map(Disclosure::parse).transpose() {
        Ok(d) => d.unwrap_or_default(),
        Err(m) => return refusal_response(&Refusal::new(Code::BadQuery, m)),
    };
    let at = if q.cosigned == Some(true) { BundleAt::Cosigned } else { BundleAt::Applied };
    let (ledger, cosigning) = (state.ledger.clone(), state.cosigning.clone());
    let result = tokio::task::spawn_blocking(move || {
        crate::record::export_learner_with(&ledger, &learner, &disclosure, cosigning.as_deref(), at)
    })
    .await;
    match result {
        Ok(Ok(bundle)) => json_response(200, String::from_utf8(bundle.to_json()).expect("JSON is UTF-8")),
        Ok(Err(e)) => export_failed(e),
        Err(e) => unavailable(e),
    }
}

/// Why no bundle was exported, as a refusal. Only a store that could not be read now is
/// `unavailable` (503, retry); the caller's error is 400 or 404, a record larger than a bundle
/// 413, and data of this ledger that does not make a bundle (a missing checkpoint, an entry the
/// exporter cannot parse or prove, a commitment unlike the log) 500 `store_corrupt`, which a
/// retry does not change.
fn export_failed(e: RecordError) -> Response {
    use crate::read::completeness::CompletenessError;
    match e {
        RecordError::UnknownLearner(id) => {
            refusal_response(&Refusal::new(Code::NotFound, format!("no record of learner {id} in this ledger")))
        }
        RecordError::BadLearner(m) => refusal_response(&Refusal::new(Code::BadPath, m)),
        RecordError::Store(e) | RecordError::Completeness(CompletenessError::Store { source: e, .. }) => read_failed(e),
        RecordError::Read(m) => unavailable(m),
        e @ RecordError::NoWitnesses => refusal_response(&Refusal::new(Code::BadQuery, e.to_string())),
        e @ RecordError::NotYetCosigned => refusal_response(&Refusal::new(Code::Unavailable, e.to_string())),
        e @ (RecordError::TooManyEntries { .. } | RecordError::RegistryTooLong) => {
            refusal_response(&Refusal::new(Code::BodyTooLarge, e.to_string()))
        }
        e @ (RecordError::NoCheckpoint(_)
        | RecordError::NoModel(_)
        | RecordError::Export(_)
        | RecordError::Completeness(_)) => {
            let message = crate::store::error_chain(&e);
            tracing::error!(error = %message, "a learner's record could not be exported");
            refusal_response(&Refusal::new(
                Code::StoreCorrupt,
                format!("the ledger's data does not make a bundle: {message}"),
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyQuery {
    /// Refuse a bundle without a completeness member (`completeness_missing`).
    #[serde(default)]
    require_complete: bool,
    /// The most positions the completeness commitment may leave uncovered (default
    /// `zachetka_record::MAX_UNCOVERED_DEFAULT`).
    max_uncovered: Option<u64>,
    /// Witnesses' verifier keys, separated by whitespace (a `+` in a key is sent as `%2B`).
    witnesses: Option<String>,
    /// How many distinct witnesses must have cosigned (default: all given).
    witnesses_required: Option<usize>,
}

/// The witnesses of `?witnesses=` each once, and how many must have cosigned; a bad key, or
/// more required than given, is `bad_query`.
fn witness_demand(q: &VerifyQuery) -> Result<(Vec<WitnessKey>, usize), Refusal> {
    let mut keys: Vec<WitnessKey> = Vec::new();
    for v in q.witnesses.as_deref().unwrap_or("").split_whitespace() {
        let k = WitnessKey::parse(v)
            .map_err(|e| Refusal::new(Code::BadQuery, format!("witnesses: {v:?} is no witness verifier key: {e}")))?;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let required = q.witnesses_required.unwrap_or(keys.len());
    if required > keys.len() {
        return Err(Refusal::new(
            Code::BadQuery,
            format!("witnesses_required {required} is more than the {} distinct witnesses given", keys.len()),
        ));
    }
    Ok((keys, required))
}

/// `POST /v1/verify[?require_complete=true][&max_uncovered=N][&witnesses=K1%20K2][&witnesses_required=k]`:
/// the body is a bundle (JSON, at most [`VERIFY_BODY_BYTES_MAX`]); the answer is the report
/// (200 whatever the verdict: `ok` says it), checked under this ledger's key. A body that is not
/// a record bundle at all is refused 400 `bundle_malformed` (or `bundle_too_many_entries`).
pub(super) async fn post_verify(
    State(state): State<AppState>,
    Q(q): Q<VerifyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = check_json_content_type(&headers) {
        return refusal_response(&r);
    }
    let (witnesses, witnesses_required) = match witness_demand(&q) {
        Ok(d) => d,
        Err(r) => return refusal_response(&r),
    };
    let (bytes, _body_room) = match read_body(body, &headers, VERIFY_BODY_BYTES_MAX, &state.bodies).await {
        Ok(b) => b,
        Err(r) => return refusal_response(&r),
    };
    let vkey = state.ledger.config().verifier_key.clone();
    // The rules replay under this ledger's own region profile.
    let region = state.region.as_deref().cloned();
    let report = tokio::task::spawn_blocking(move || {
        // One thread per request: concurrent requests share the cores, none takes them all.
        let options = crate::record::Options {
            region,
            threads: 1,
            require_complete: q.require_complete,
            max_uncovered: q.max_uncovered,
            witnesses,
            witnesses_required,
            ..Default::default()
        };
        crate::record::verify(&bytes, &vkey, &options)
    })
    .await;
    match report {
        // Bytes that are no bundle at all get no report (it would be about no learner).
        Ok(r) => match r.unreadable() {
            Some(u) => {
                let code = match u.code.as_str() {
                    "bundle_too_many_entries" => Code::BundleTooManyEntries,
                    "bundle_too_large" => Code::BodyTooLarge,
                    _ => Code::BundleMalformed,
                };
                refusal_response(&Refusal::new(code, format!("the body is not a record bundle: {}", u.message)))
            }
            None => json_response(200, r.to_json()),
        },
        Err(e) => verification_failed(e),
    }
}
