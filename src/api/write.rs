//! `POST /v1/events`: content type, a bounded body, the array scanned as borrowed raw JSON and
//! counted before any item is parsed, admission (`Ledger::try_admit`) before verification, then
//! one receipt or refusal per event, in order. Not the place that verifies or decides (the
//! ledger does), nor where a refusal gets its status (`error`).

use super::error::{refusal_response, verification_failed};
use super::{json_response, AppState};
use crate::ledger::Receipt;
use crate::refusal::{Code, Refusal};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Largest request body accepted by `POST /v1/events`.
pub const BODY_BYTES_MAX: usize = 16 << 20;

/// Most request-body bytes the server reads and holds at once, across requests. A body's bytes
/// are reserved as they arrive (in steps of [`BODY_RESERVE_STEP`]) and held until its events
/// are verified; when the budget is spent a request is `busy`. So memory for bodies is bounded by
/// this, not by connections x 16 MiB, and a client holds only what it has sent: headers that
/// declare a large body and then stall reserve nothing.
pub const BODY_BYTES_IN_FLIGHT_MAX: usize = 64 << 20;

/// The budget is taken in steps of this many bytes (fewer semaphore operations per body).
const BODY_RESERVE_STEP: usize = 64 << 10;

/// The part of the body budget a request holds (dropped with the request).
pub(super) struct BodyRoom(Option<OwnedSemaphorePermit>);

fn busy_bodies() -> Refusal {
    Refusal::new(Code::Busy, "the server holds as many request bodies as it may; retry after the delay")
}

fn result_json(r: &Result<Receipt, Refusal>) -> serde_json::Value {
    match r {
        Ok(receipt) => serde_json::to_value(receipt).expect("receipt serializes"),
        Err(refusal) => serde_json::to_value(refusal).expect("refusal serializes"),
    }
}

/// `POST /v1/events` takes JSON only (`application/json`, parameters such as charset allowed).
pub(super) fn check_json_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(Refusal::new(
        Code::UnsupportedMediaType,
        format!("content-type must be application/json, not {:?}", ct.chars().take(100).collect::<String>()),
    ))
}

/// Reads a request body of at most `max` bytes, reserving its bytes from the server's body
/// budget (`bodies`, in KiB) as they arrive: `busy` when the budget is spent. A body over `max`
/// (declared or read) is `body_too_large`; one whose declared length is over it holds none of the
/// budget. A body that stalls is cut by the server's body timeout.
pub(super) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    max: usize,
    bodies: &Arc<tokio::sync::Semaphore>,
) -> Result<(Bytes, BodyRoom), Refusal> {
    use futures_util::StreamExt;
    let too_large = || Refusal::new(Code::BodyTooLarge, format!("request body exceeds {max} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let read_error = |e: axum::Error| {
        if super::server::is_body_timeout(&e) {
            Refusal::new(Code::BodyTimeout, "the request body did not arrive within the server's body timeout")
        } else {
            Refusal::new(Code::MalformedJson, format!("couldn't read the request body: {e}"))
        }
    };
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|d| d > max) {
        // Refused without holding any of the budget. A client that waits for `100 Continue`
        // gets the refusal at once; one that sends anyway has up to `max` bytes read and dropped
        // first, so that it reads the refusal instead of a broken pipe.
        let expects = headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut seen = 0usize;
        while !expects && seen <= max {
            match stream.next().await {
                Some(chunk) => seen += chunk.map_err(read_error)?.len(),
                None => break,
            }
        }
        return Err(too_large());
    }
    let mut room = BodyRoom(None);
    let mut reserved = 0usize;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_error)?;
        let len = out.len() + chunk.len();
        if len > max {
            return Err(too_large());
        }
        if len > reserved {
            let to = len.next_multiple_of(BODY_RESERVE_STEP).min(max.next_multiple_of(1024));
            let more =
                bodies.clone().try_acquire_many_owned(((to - reserved) >> 10) as u32).map_err(|_| busy_bodies())?;
            match &mut room.0 {
                Some(held) => held.merge(more),
                None => room.0 = Some(more),
            }
            reserved = to;
        }
        out.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(out), room))
}

/// The signed events of a `POST /v1/events` body, as byte ranges of the body (one signed event,
/// or the items of an array), and whether it was a single event. An array is scanned as
/// borrowed raw JSON, its items counted as they come: at `len_max + 1` items the scan stops
/// with `batch_too_long`, so nothing is ever built per item of an oversized request, and an
/// accepted one is parsed into values once, item by item, by the cores that verify it.
fn raw_items(body: &[u8], len_max: usize) -> Result<(Vec<Range<usize>>, bool), Refusal> {
    let malformed = |e: serde_json::Error| Refusal::new(Code::MalformedJson, format!("body is not JSON: {e}"));
    let base = body.as_ptr() as usize;
    let range = |raw: &RawValue| {
        let text = raw.get();
        let start = text.as_ptr() as usize - base;
        start..start + text.len()
    };
    if body.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'[') {
        let raw: &RawValue = serde_json::from_slice(body).map_err(malformed)?;
        return Ok((vec![range(raw)], true));
    }
    let too_long = std::cell::Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = CountedItems { len_max, too_long: &too_long }.deserialize(&mut de).and_then(|items| {
        de.end()?;
        Ok(items)
    });
    match items {
        Ok(items) => Ok((items.into_iter().map(range).collect(), false)),
        Err(_) if too_long.get() => {
            Err(Refusal::new(Code::BatchTooLong, format!("more than {len_max} events in one request, the limit")))
        }
        Err(e) => Err(malformed(e)),
    }
}

/// Collects the items of a JSON array as raw text, stopping past `len_max` of them.
struct CountedItems<'c> {
    len_max: usize,
    too_long: &'c std::cell::Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for CountedItems<'_> {
    type Value = Vec<&'de RawValue>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CountedItems<'_> {
    type Value = Vec<&'de RawValue>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of signed events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.len_max {
                self.too_long.set(true);
                return Err(serde::de::Error::custom("too many events"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

pub(super) async fn post_events(
    State(state): State<AppState>,
    _: super::NoQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let busy = |r: &Refusal| {
        if r.code == Code::Busy {
            state.metrics.busy.fetch_add(1, Ordering::Relaxed);
        }
        refusal_response(r)
    };
    if let Err(r) = check_json_content_type(&headers).and_then(|()| state.ledger.check_accepting()) {
        return refusal_response(&r);
    }
    // The body's bytes are reserved as they arrive, and held until its events are verified.
    let (bytes, _body_room) = match read_body(body, &headers, BODY_BYTES_MAX, &state.bodies).await {
        Ok(b) => b,
        Err(r) => return busy(&r),
    };
    let (items, single) = match raw_items(&bytes, state.ledger.limits().request_len_max) {
        Ok(x) => x,
        Err(r) => return refusal_response(&r),
    };
    // Admission before any verification or blocking task: beyond the bound, `busy` at once.
    let admitted = match state.ledger.try_admit(items.len()) {
        Ok(a) => a,
        Err(r) => return busy(&r),
    };
    let ledger = state.ledger.clone();
    let submitted = tokio::task::spawn_blocking(move || {
        let items: Vec<&[u8]> = items.iter().map(|r| &bytes[r.clone()]).collect();
        ledger.submit_raw(&items)
    })
    .await;
    let pending = match submitted {
        Ok(Ok(p)) => p,
        Ok(Err(r)) => return busy(&r),
        Err(e) => return verification_failed(e),
    };
    let results = pending.wait().await;
    drop(admitted);
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    state.metrics.appended.fetch_add(ok, Ordering::Relaxed);
    state.metrics.refused.fetch_add(results.len() as u64 - ok, Ordering::Relaxed);
    if single {
        return match &results[0] {
            Ok(receipt) => json_response(200, serde_json::to_string(receipt).expect("receipt serializes")),
            Err(r) => refusal_response(r),
        };
    }
    let body: Vec<serde_json::Value> = results.iter().map(result_json).collect();
    json_response(200, serde_json::to_string(&body).expect("results serialize"))
}
