//! The record verifier page (`web/`, README "The verifier page"): `GET /verify` serves the page
//! with this ledger's verifier key filled in, `GET /web/<file>` its script and style sheet, all
//! embedded in the binary at build time. The page verifies a bundle entirely in the browser:
//! **no route here receives a bundle, and the page's Content-Security-Policy forbids it any
//! connection (`connect-src 'none'`, `form-action 'none'`), so nothing dropped on it can be
//! uploaded.** Not a file server: only the files listed in [`FILES`] exist.

use super::error::not_found;
use super::{AppState, P};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../web/verify.html");

/// The page's assets: name, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    ("verify.js", "text/javascript; charset=utf-8", include_str!("../../web/verify.js")),
    ("verify.css", "text/css; charset=utf-8", include_str!("../../web/verify.css")),
];

/// Where the page carries the key the server vouches for (`<meta name="zachetka-verifier-key">`).
const KEY_PLACEHOLDER: &str = "{{VERIFIER_KEY}}";

/// Same-origin scripts and styles only; no connection, form, frame or base URL of any kind.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

fn with_headers(content_type: &'static str, body: String) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The page, with the ledger's verifier key (HTML-escaped) as the key it trusts by default.
pub(super) async fn get_page(State(state): State<AppState>, _: super::NoQuery) -> Response {
    let key = html_escape(&state.ledger.config().verifier_key);
    with_headers("text/html; charset=utf-8", PAGE.replace(KEY_PLACEHOLDER, &key))
}

pub(super) async fn get_file(P(name): P<String>, _: super::NoQuery) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => with_headers(content_type, (*body).to_owned()),
        None => not_found(&format!("no file {name:?} in web/")),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_has_one_key_placeholder_and_loads_only_embedded_files() {
        assert_eq!(super::PAGE.matches(super::KEY_PLACEHOLDER).count(), 1);
        for src in ["/web/verify.js", "/web/verify.css"] {
            assert!(super::PAGE.contains(src), "{src}");
        }
        assert!(!super::PAGE.contains("http://") && !super::PAGE.contains("https://"), "no external resource");
        assert_eq!(super::html_escape("a\"<b>&"), "a&quot;&lt;b&gt;&amp;");
    }
}
