//! Refusals are data: one stable snake_case code per reason an append is refused, and the one
//! place where a code becomes an HTTP status. Not the place for the reasons' logic.

use serde::Serialize;

/// Every reason zachetka refuses an event or a request. The code strings are a stable contract:
/// clients branch on them. Add codes; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The body is not JSON, or not a signed event / array of them.
    MalformedJson,
    /// The request body exceeds the byte limit.
    BodyTooLarge,
    /// More events in one request than the batch limit.
    BatchTooLong,
    /// The event object lacks a field, has an unknown one, or a field has the wrong shape.
    EventMalformed,
    /// A signed payload carries a float, boolean or null (integers and strings only).
    PayloadTypeNotAllowed,
    /// The event's canonical form exceeds 32 KiB.
    EventTooLarge,
    /// The stored entry would exceed what one tlog-tiles entry bundle slot holds.
    EntryTooLarge,
    /// The event names another ledger (no cross-ledger replay).
    WrongLedger,
    /// `author` is not an Ed25519 `did:key`, or not a point on the curve.
    AuthorMalformed,
    /// The author key has small order.
    KeyWeak,
    /// A stream name in a request path (`/v1/streams/<stream>`) is not a stream name: the rule
    /// of `event::is_stream_name` (an event's own `stream` is refused as `event_malformed`).
    StreamMalformed,
    /// `sig` is not 64 bytes of standard padded base64.
    SignatureMalformed,
    /// The signature does not verify under the strict rule.
    SignatureInvalid,
    /// The event id is not a lowercase UUID.
    EventIdMalformed,
    /// The event id was already used for different content.
    EventIdConflict,
    /// `expected_version` does not match the stream's length.
    StreamVersionConflict,
    /// An authority or domain rule of `zachetka-projections` refused the event; the code is the
    /// rule's own stable code (`key_unknown`, `not_authorized`, `grade_out_of_scale`, ...; the
    /// list is in projections/README.md).
    Rule(&'static str),
    /// The sequencer queue is full: retry after the given delay (retryable).
    Busy,
    /// The store failed; the ledger stopped writing and keeps serving reads.
    Unavailable,
    /// This node serves a read replica: send appends to a node on the primary.
    ReadOnly,
}

/// Rule codes that mean "this key has no right to write this": HTTP 403; other rule codes are
/// broken invariants of well-authorised writes: 422.
const RIGHTS_CODES: [&str; 8] = [
    "key_unknown",
    "key_revoked",
    "key_expired",
    "key_not_yet_valid",
    "not_authorized",
    "authority_mismatch",
    "authoriser_not_authorized",
    "issuer_not_registered",
];

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Code {
    /// The HTTP status for this code: the only mapping in the code base.
    pub fn http_status(self) -> u16 {
        use Code::*;
        match self {
            MalformedJson
            | EventMalformed
            | PayloadTypeNotAllowed
            | EventIdMalformed
            | AuthorMalformed
            | SignatureMalformed
            | StreamMalformed
            | BatchTooLong => 400,
            BodyTooLarge | EventTooLarge | EntryTooLarge => 413,
            Rule(code) if RIGHTS_CODES.contains(&code) => 403,
            EventIdConflict | StreamVersionConflict => 409,
            WrongLedger | KeyWeak | SignatureInvalid | Rule(_) => 422,
            Busy | Unavailable | ReadOnly => 503,
        }
    }

    /// Whether the same request may succeed later unchanged.
    pub fn retryable(self) -> bool {
        matches!(self, Code::Busy | Code::Unavailable)
    }

    /// The stable code string (the same one serde writes).
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            MalformedJson => "malformed_json",
            BodyTooLarge => "body_too_large",
            BatchTooLong => "batch_too_long",
            EventMalformed => "event_malformed",
            PayloadTypeNotAllowed => "payload_type_not_allowed",
            EventTooLarge => "event_too_large",
            EntryTooLarge => "entry_too_large",
            WrongLedger => "wrong_ledger",
            AuthorMalformed => "author_malformed",
            KeyWeak => "key_weak",
            SignatureMalformed => "signature_malformed",
            StreamMalformed => "stream_malformed",
            SignatureInvalid => "signature_invalid",
            EventIdMalformed => "event_id_malformed",
            EventIdConflict => "event_id_conflict",
            StreamVersionConflict => "stream_version_conflict",
            Rule(code) => code,
            Busy => "busy",
            Unavailable => "unavailable",
            ReadOnly => "read_only",
        }
    }
}

/// A refusal: a stable code and a precise, human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Refusal {}
