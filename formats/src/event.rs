//! Events (what an author signs, DESIGN 3.1) and entries (an event as the log stores it, one
//! Merkle leaf, DESIGN 3.2): parsing with precise refusals, canonical bytes, signing input, leaf
//! hashes. Not the place for sequencing or authority.

use crate::jcs::{self, CanonError, Profile};
use crate::keys::{self, KeyCache, KeyError, KeyPair};
use crate::merkle::{Hash, HashB64};
use crate::refusal::{Code, Refusal};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Domain separation prefix of every event signature.
pub const EVENT_SIGNING_PREFIX: &[u8] = b"zachetka/event/v1\n";

/// Largest canonical event (DESIGN 3.1), so that its entry fits a tlog-tiles bundle slot.
pub const EVENT_BYTES_MAX: usize = 32 * 1024;

/// Largest canonical entry: an entry bundle prefixes each entry with a big-endian u16 length.
pub const ENTRY_BYTES_MAX: usize = 65_535;

const STREAM_BYTES_MAX: usize = 200;
const TYPE_BYTES_MAX: usize = 100;

const EVENT_FIELDS: [&str; 8] = ["ledger", "stream", "type", "id", "occurred_at", "author", "expected_version", "data"];

/// An event whose shape, canonical form and signature have been checked.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    pub ledger: String,
    pub stream: String,
    pub event_type: String,
    pub id: String,
    pub occurred_at_unix: i64,
    pub author: [u8; 32],
    pub expected_version: Option<u64>,
    /// The whole event object, as parsed.
    pub event: Value,
    /// JCS of the event object.
    pub canonical: Vec<u8>,
    /// The signature as transported (standard padded base64).
    pub sig: String,
}

impl VerifiedEvent {
    /// SHA-256 of the canonical event: what "same content" means for idempotency.
    pub fn content_digest(&self) -> [u8; 32] {
        Sha256::digest(&self.canonical).into()
    }

    pub fn data(&self) -> &Value {
        &self.event["data"]
    }
}

/// The bytes an author signs: the prefix, then the event's canonical form.
pub fn signing_input(canonical_event: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(EVENT_SIGNING_PREFIX.len() + canonical_event.len());
    m.extend_from_slice(EVENT_SIGNING_PREFIX);
    m.extend_from_slice(canonical_event);
    m
}

/// Signs an event object; returns the transport form `{"event":..,"sig":..}`.
pub fn sign_event(event: &Value, key: &KeyPair) -> Result<Value, CanonError> {
    sign_event_owned(event.clone(), key)
}

/// [`sign_event`] for an event the caller has no further use for: it moves into the transport
/// form instead of being copied (the demo signs ~100,000 of them).
pub fn sign_event_owned(event: Value, key: &KeyPair) -> Result<Value, CanonError> {
    let canonical = jcs::to_canonical(&event, Profile::Event)?;
    let sig = key.sign(&signing_input(&canonical));
    let mut signed = Map::new();
    signed.insert("event".into(), event);
    signed.insert("sig".into(), Value::String(keys::b64(&sig.to_bytes())));
    Ok(Value::Object(signed))
}

fn refuse(code: Code, msg: impl Into<String>) -> Refusal {
    Refusal::new(code, msg)
}

fn canon_refusal(e: CanonError) -> Refusal {
    match e {
        CanonError::TooDeep => refuse(Code::EventMalformed, e.to_string()),
        _ => refuse(Code::PayloadTypeNotAllowed, e.to_string()),
    }
}

fn str_field<'a>(ev: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refusal> {
    match ev.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(refuse(Code::EventMalformed, format!("event.{name} must be a string"))),
        None => Err(refuse(Code::EventMalformed, format!("event.{name} is missing"))),
    }
}

/// A UUID in its canonical lowercase 8-4-4-4-12 form.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// What a stream name is, for messages (README, Formats, says the same).
pub const STREAM_NAME_RULE: &str = "1-200 bytes of [A-Za-z0-9._:/-] in '/'-separated segments, none empty, '.' or '..'";

/// A stream name: 1-200 bytes of `[A-Za-z0-9._:/-]`, split by `/` into segments none of which is
/// empty, `.` or `..`. Stream names appear in URL paths (`/v1/streams/<stream>`), where an empty
/// or dot segment would be normalized by clients and proxies into another stream's path, so
/// `learner/../admin` must never name a stream of its own.
pub fn is_stream_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= STREAM_BYTES_MAX
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:/-".contains(&c))
        && !s.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..")
}

fn is_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= TYPE_BYTES_MAX
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.')
}

/// Checks one transported signed event `{"event":..,"sig":..}` for `ledger`: shape, canonical
/// form, size, and the strict signature rule. Pure and thread-safe: the pipeline runs it on
/// every core.
pub fn verify_signed(signed: Value, ledger: &str, cache: &KeyCache) -> Result<VerifiedEvent, Refusal> {
    let Value::Object(mut outer) = signed else {
        return Err(refuse(Code::MalformedJson, "a signed event is an object {\"event\":..,\"sig\":..}"));
    };
    if let Some(k) = outer.keys().find(|k| *k != "event" && *k != "sig") {
        return Err(refuse(Code::MalformedJson, format!("unknown field {k:?} beside event and sig")));
    }
    let sig = match outer.remove("sig") {
        Some(Value::String(s)) => s,
        _ => return Err(refuse(Code::SignatureMalformed, "sig is missing or not a string")),
    };
    let event = outer.remove("event").ok_or_else(|| refuse(Code::EventMalformed, "event is missing"))?;
    let Value::Object(ev) = &event else {
        return Err(refuse(Code::EventMalformed, "event must be an object"));
    };
    if let Some(k) = ev.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(refuse(Code::EventMalformed, format!("unknown field event.{k}")));
    }
    let event_ledger = str_field(ev, "ledger")?;
    if event_ledger != ledger {
        return Err(refuse(Code::WrongLedger, format!("event is for ledger {event_ledger:?}, this is {ledger:?}")));
    }
    let stream = str_field(ev, "stream")?;
    if !is_stream_name(stream) {
        return Err(refuse(Code::EventMalformed, format!("event.stream must be {STREAM_NAME_RULE}")));
    }
    let event_type = str_field(ev, "type")?;
    if !is_type_name(event_type) {
        return Err(refuse(Code::EventMalformed, "event.type must be 1-100 bytes of [a-z0-9_.]"));
    }
    let id = str_field(ev, "id")?;
    if !is_uuid(id) {
        return Err(refuse(
            Code::EventIdMalformed,
            format!("event.id {:?} is not a lowercase UUID", id.chars().take(40).collect::<String>()),
        ));
    }
    let occurred_at = str_field(ev, "occurred_at")?;
    let occurred_at_unix = crate::time::parse_rfc3339(occurred_at).ok_or_else(|| {
        refuse(Code::EventMalformed, "event.occurred_at must be RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.f]Z)")
    })?;
    let author_did = str_field(ev, "author")?;
    let author = keys::public_from_did(author_did).map_err(|e| refuse(Code::AuthorMalformed, e.to_string()))?;
    let expected_version =
        match ev.get("expected_version") {
            None => None,
            Some(v) => Some(v.as_u64().filter(|n| *n <= jcs::SAFE_INTEGER_MAX as u64).ok_or_else(|| {
                refuse(Code::EventMalformed, "event.expected_version must be a non-negative integer")
            })?),
        };
    match ev.get("data") {
        Some(Value::Object(_)) => {}
        Some(_) => return Err(refuse(Code::EventMalformed, "event.data must be an object")),
        None => return Err(refuse(Code::EventMalformed, "event.data is missing")),
    }
    let canonical = jcs::to_canonical(&event, Profile::Event).map_err(canon_refusal)?;
    if canonical.len() > EVENT_BYTES_MAX {
        return Err(refuse(
            Code::EventTooLarge,
            format!("canonical event is {} bytes, the limit is {EVENT_BYTES_MAX}", canonical.len()),
        ));
    }
    let signature = keys::decode_signature(&sig).map_err(|e| refuse(Code::SignatureMalformed, e.to_string()))?;
    cache.verify(&author, &signing_input(&canonical), &signature).map_err(|e| match e {
        KeyError::WeakKey => refuse(Code::KeyWeak, e.to_string()),
        KeyError::BadSignature => {
            refuse(Code::SignatureInvalid, format!("signature of event {id} does not verify for its author"))
        }
        _ => refuse(Code::AuthorMalformed, e.to_string()),
    })?;
    let (ledger, stream, event_type, id) =
        (event_ledger.to_owned(), stream.to_owned(), event_type.to_owned(), id.to_owned());
    Ok(VerifiedEvent {
        ledger,
        stream,
        event_type,
        id,
        occurred_at_unix,
        author,
        expected_version,
        event,
        canonical,
        sig,
    })
}

/// Parses and verifies transported bytes of one signed event.
pub fn verify_signed_bytes(bytes: &[u8], ledger: &str, cache: &KeyCache) -> Result<VerifiedEvent, Refusal> {
    let v =
        jcs::parse_strict(bytes).map_err(|e| refuse(Code::MalformedJson, format!("signed event is not JSON: {e}")))?;
    verify_signed(v, ledger, cache)
}

/// The log metadata of an entry (DESIGN 3.2), beside its event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntryMeta {
    pub seq: u64,
    pub recorded_at_unix: i64,
    pub stream_version: u64,
    pub stream_prev: Option<Hash>,
}

/// The canonical bytes of an entry, built around an already canonical event. Every key and
/// every non-event value is ASCII without characters JCS escapes, so concatenation in sorted
/// key order is the JCS form; `canonical_entry_agrees` in the tests holds us to that.
pub fn entry_bytes(meta: &EntryMeta, canonical_event: &[u8], sig: &str) -> Vec<u8> {
    debug_assert!(sig.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='));
    // Appended piece by piece (no formatting machinery): the sequencer builds one per event.
    let mut out = Vec::with_capacity(canonical_event.len() + 200);
    out.extend_from_slice(b"{\"event\":");
    out.extend_from_slice(canonical_event);
    out.extend_from_slice(b",\"recorded_at\":\"");
    out.extend_from_slice(crate::time::format_rfc3339(meta.recorded_at_unix).as_bytes());
    out.extend_from_slice(b"\",\"seq\":");
    push_decimal(&mut out, meta.seq);
    out.extend_from_slice(b",\"sig\":\"");
    out.extend_from_slice(sig.as_bytes());
    out.extend_from_slice(b"\",\"stream_prev\":");
    match &meta.stream_prev {
        Some(h) => {
            out.push(b'"');
            out.extend_from_slice(keys::b64(&h.0).as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"stream_version\":");
    push_decimal(&mut out, meta.stream_version);
    out.push(b'}');
    out
}

/// Appends `n` in decimal (as JCS writes an integer: no sign, no leading zeros).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The canonical event inside canonical entry bytes: `event` sorts first in JCS, and nothing
/// after the event holds `,"recorded_at":"`, so the event is the bytes between. `None` if the
/// bytes are not shaped so (they are then not a canonical entry).
pub fn canonical_event_of_entry(entry: &[u8]) -> Option<&[u8]> {
    const HEAD: &[u8] = b"{\"event\":";
    const TAIL: &[u8] = b",\"recorded_at\":\"";
    let end = entry.windows(TAIL.len()).rposition(|w| w == TAIL)?;
    (entry.starts_with(HEAD) && end >= HEAD.len()).then(|| &entry[HEAD.len()..end])
}

/// RFC 9162 leaf hash of an entry: SHA-256(0x00 || JCS(entry)).
pub fn leaf_hash(entry_bytes: &[u8]) -> Hash {
    crate::merkle::leaf_hash(entry_bytes)
}

/// An entry read back from storage or an export, parsed and checked for canonical form.
#[derive(Debug, Clone)]
pub struct ParsedEntry {
    pub meta: EntryMeta,
    pub event: Value,
    pub sig: String,
}

/// Why stored bytes are not a well-formed entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("field {0} is missing or malformed")]
    Field(&'static str),
    #[error("bytes are not the canonical (JCS) form of the entry")]
    NotCanonical,
}

/// Parses stored entry bytes and checks that they are exactly the canonical form.
pub fn parse_entry(bytes: &[u8]) -> Result<ParsedEntry, EntryError> {
    let v = jcs::parse_strict(bytes).map_err(|e| EntryError::NotJson(e.to_string()))?;
    let Value::Object(ref o) = v else { return Err(EntryError::Field("entry")) };
    if o.len() != 6 {
        return Err(EntryError::Field("entry (exactly six fields)"));
    }
    let seq = o.get("seq").and_then(Value::as_u64).ok_or(EntryError::Field("seq"))?;
    let stream_version = o.get("stream_version").and_then(Value::as_u64).ok_or(EntryError::Field("stream_version"))?;
    let recorded_at_unix = o
        .get("recorded_at")
        .and_then(Value::as_str)
        .and_then(crate::time::parse_rfc3339)
        .ok_or(EntryError::Field("recorded_at"))?;
    let stream_prev = match o.get("stream_prev") {
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Hash::from_b64(s).ok_or(EntryError::Field("stream_prev"))?),
        _ => return Err(EntryError::Field("stream_prev")),
    };
    let sig = o.get("sig").and_then(Value::as_str).ok_or(EntryError::Field("sig"))?.to_owned();
    if !o.get("event").is_some_and(Value::is_object) {
        return Err(EntryError::Field("event"));
    }
    let canon = jcs::to_canonical(&v, Profile::Entry).map_err(|_| EntryError::NotCanonical)?;
    if canon != bytes {
        return Err(EntryError::NotCanonical);
    }
    // The event moved out, not copied (a verifier parses thousands of entries).
    let Value::Object(mut o) = v else { unreachable!("matched as an object above") };
    let event = o.remove("event").expect("checked above");
    Ok(ParsedEntry { meta: EntryMeta { seq, recorded_at_unix, stream_version, stream_prev }, event, sig })
}

impl ParsedEntry {
    pub fn stream(&self) -> &str {
        self.event.get("stream").and_then(Value::as_str).unwrap_or("")
    }
    pub fn id(&self) -> &str {
        self.event.get("id").and_then(Value::as_str).unwrap_or("")
    }

    /// Re-verifies the event inside the entry exactly as the append path did.
    pub fn verify_event(&self, ledger: &str, cache: &KeyCache) -> Result<VerifiedEvent, Refusal> {
        verify_signed(serde_json::json!({"event": self.event, "sig": self.sig}), ledger, cache)
    }
}

/// A fresh event id: a UUIDv7 of the current time (milliseconds) and random bits.
pub fn new_event_id() -> String {
    let mut rand = [0u8; 10];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rand);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // UUIDv7, as README recommends: time-ordered ids keep the id index append-friendly.
    uuid_v7((now.as_millis() as u64).min((1 << 48) - 1), rand)
}

/// Formats 16 bytes as a version-4 UUID (sets the version and variant bits).
pub fn uuid_from_bytes(b: [u8; 16]) -> String {
    uuid_with_version(b, 4)
}

/// A version-7 UUID (RFC 9562): `unix_ms` in the first 48 bits, then `rand` (the version and
/// variant bits overwrite 6 of its 80 bits). Ids made this way sort by time, which keeps the id
/// index append-friendly.
pub fn uuid_v7(unix_ms: u64, rand: [u8; 10]) -> String {
    assert!(unix_ms < 1 << 48, "a UUIDv7 holds 48 bits of milliseconds");
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&rand);
    uuid_with_version(b, 7)
}

fn uuid_with_version(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    // Written digit by digit: every event id the demo and the clients mint comes through here.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_have_no_empty_or_dot_segments() {
        for ok in ["admin", "learner/47-000123", "queue/kg/tikhvin", "a.b/..c/c..", "x:.y", "...", "a/.b"] {
            assert!(is_stream_name(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", ".", "..", "a/.", "a/..", "./a", "../a", "learner/../admin", "a/./b", "a b"]
        {
            assert!(!is_stream_name(bad), "{bad}");
        }
        assert!(is_stream_name(&"a".repeat(STREAM_BYTES_MAX)) && !is_stream_name(&"a".repeat(STREAM_BYTES_MAX + 1)));
    }

    #[test]
    fn uuids_are_the_hex_of_their_bytes_in_groups() {
        let b: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0x9c));
        let mut v = b;
        v[6] = (v[6] & 0x0f) | 0x40;
        v[8] = (v[8] & 0x3f) | 0x80;
        let h: String = v.iter().map(|x| format!("{x:02x}")).collect();
        let want = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
        assert_eq!(uuid_from_bytes(b), want);
        assert!(is_uuid(&want));
    }

    #[test]
    fn fresh_ids_are_uuid_v7_of_now() {
        let (a, b) = (new_event_id(), new_event_id());
        assert_ne!(a, b);
        assert_eq!((&a[14..15], a.len()), ("7", 36), "{a}");
        let ms = u64::from_str_radix(&format!("{}{}", &a[..8], &a[9..13]), 16).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(ms <= now && now - ms < 60_000, "{a}: {ms} vs {now}");
    }

    #[test]
    fn uuid_v7_is_a_uuid_that_sorts_by_time() {
        let a = uuid_v7(1_790_000_000_000, [0xff; 10]);
        let b = uuid_v7(1_790_000_000_001, [0; 10]);
        assert!(is_uuid(&a) && is_uuid(&b), "{a} {b}");
        assert!(a < b, "{a} {b}");
        assert_eq!(&a[14..15], "7", "version nibble of {a}");
        assert_eq!(&a[19..20], "b", "variant bits of {a}");
        assert_eq!(&uuid_from_bytes([0; 16])[14..15], "4");
    }

    #[test]
    fn signing_an_owned_event_signs_the_same_bytes() {
        let key = KeyPair::from_seed(&[4u8; 32]);
        let ev = serde_json::json!({"ledger":"l","stream":"s/1","type":"t","id":"0193a1d2-7c4e-7a10-9f00-000000000001",
            "occurred_at":"2026-11-22T09:10:00Z","author":key.did(),"data":{"a":1}});
        let signed = sign_event(&ev, &key).unwrap();
        assert_eq!(sign_event_owned(ev, &key).unwrap(), signed);
        assert!(verify_signed(signed, "l", &KeyCache::default()).is_ok());
    }

    #[test]
    fn canonical_entry_agrees() {
        let key = KeyPair::from_seed(&[3u8; 32]);
        let ev = serde_json::json!({"ledger":"l","stream":"s/1","type":"t","id":"0193a1d2-7c4e-7a10-9f00-000000000001",
            "occurred_at":"2026-11-22T09:10:00Z","author":key.did(),"data":{"б":"в","a":1}});
        let signed = sign_event(&ev, &key).unwrap();
        let v = verify_signed(signed, "l", &KeyCache::default()).unwrap();
        for prev in [None, Some(Hash([9u8; 32]))] {
            for (seq, stream_version) in [(5, 2), (0, 0), (10, 9), (9_007_199_254_740_991, 1_000_000)] {
                let meta = EntryMeta { seq, recorded_at_unix: 1_790_000_000, stream_version, stream_prev: prev };
                let bytes = entry_bytes(&meta, &v.canonical, &v.sig);
                let parsed = parse_entry(&bytes).unwrap();
                assert_eq!(parsed.meta, meta);
            }
        }
    }
}
