//! The HTTP client of `append --server`, `import --server`, `checkpoint --server` and `prove --server`: ureq over
//! the stable paths of DESIGN 3.5. Not the server (`zachetka::api`), and it checks nothing a
//! server answers (the audit and a verifier do).

use super::for_each_input;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Events per request (the server's default request limit).
const REQUEST_LEN: usize = 1000;

/// Posts the signed events of `files` (or stdin) in requests of [`REQUEST_LEN`], calling `print`
/// with each receipt or refusal in order. A refused request (a status other than 200) answers
/// one refusal, printed like the others.
pub(super) fn append(
    server: &str,
    files: &[PathBuf],
    print: &mut impl FnMut(serde_json::Value) -> Result<()>,
) -> Result<()> {
    for_each_input(files, |events| {
        for chunk in events.chunks(REQUEST_LEN) {
            post_events(server, chunk.to_vec())?.into_iter().try_for_each(&mut *print)?;
        }
        Ok(())
    })
}

/// Posts one request of signed events; answers its receipts and refusals in order (a refused
/// request, with a status other than 200, answers its one refusal).
pub(super) fn post_events(server: &str, events: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>> {
    let url = format!("{}/v1/events", server.trim_end_matches('/'));
    // send_json sets `Content-Type: application/json`, which the server requires.
    let resp = ureq::post(&url).send_json(serde_json::Value::Array(events));
    let body: serde_json::Value = match resp {
        Ok(r) => r.into_json()?,
        Err(ureq::Error::Status(_, r)) => r.into_json()?,
        Err(e) => bail!("couldn't reach {url}: {e}"),
    };
    Ok(match body {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    })
}

/// The server's latest checkpoint note, as served.
pub(super) fn checkpoint(server: &str) -> Result<String> {
    Ok(ureq::get(&format!("{}/checkpoint", server.trim_end_matches('/'))).call()?.into_string()?)
}

/// A proof's JSON from `/v1/proofs/<kind>?<query>`; a refusal's body becomes the error.
pub(super) fn prove(server: &str, kind: &str, query: &str) -> Result<String> {
    let url = format!("{}/v1/proofs/{kind}?{query}", server.trim_end_matches('/'));
    match ureq::get(&url).call() {
        Ok(r) => Ok(r.into_string()?),
        Err(ureq::Error::Status(_, r)) => bail!("{}", r.into_string()?),
        Err(e) => bail!("couldn't reach {url}: {e}"),
    }
}

/// The read-model digests a server reports (`GET /v1/projections?digests=true`).
pub(super) fn served_digests(server: &str, token: Option<&str>) -> Result<Vec<zachetka::audit::ServedDigest>> {
    let url = format!("{}/v1/projections?digests=true", server.trim_end_matches('/'));
    let mut req = ureq::get(&url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let body: serde_json::Value = match req.call() {
        Ok(r) => r.into_json()?,
        Err(ureq::Error::Status(_, r)) => bail!("{url}: {}", r.into_string()?),
        Err(e) => bail!("couldn't reach {url}: {e}"),
    };
    Ok(serde_json::from_value(body["digests"].clone())?)
}
