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
    /// An authority or domain rule of `zachetka-rules` refused the event; the code is the
    /// rule's own stable code (`key_unknown`, `not_authorized`, `grade_out_of_scale`, ...; the
    /// list is in rules/README.md) and the kind is the rules' own classification of it.
    Rule(&'static str, RuleKind),
    /// The sequencer queue is full: retry after the given delay (retryable).
    Busy,
    /// The store could not be reached or read just now (a shared store's database is away):
    /// retry after the given delay (retryable).
    Unavailable,
    /// Stored data failed its check when read (an entry that does not hash to its stored leaf
    /// hash, an offset outside the log): the message names the position. Not retryable; the
    /// operator restores the damaged file (README, Operations) and runs the audit.
    StoreCorrupt,
    /// This node serves a read replica: send appends to a node on the primary.
    ReadOnly,
    /// A commit failed (the message says why, e.g. no space left on device): the ledger stopped
    /// writing and keeps serving reads. No retry succeeds until an operator fixes the cause and
    /// restarts the server (not retryable).
    WritesStopped,
    /// The request body did not arrive within the server's body timeout.
    BodyTimeout,
    /// `POST /v1/events` without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// A query parameter is missing, unknown in shape, or out of its type's range.
    BadQuery,
    /// A path parameter is malformed (not UTF-8, not a number where one is expected).
    BadPath,
    /// A proof asked for leaves or tree sizes outside the log.
    ProofOutOfRange,
    /// `POST /v1/verify` with a body that is not a record bundle at all (`record/FORMAT.md`).
    BundleMalformed,
    /// `POST /v1/verify` with a bundle of more items than the format's limit.
    BundleTooManyEntries,
    /// No such route, tile or resource.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// A read that needs a bearer token came without one, or with a token that is unknown or
    /// revoked (HTTP 401 with `WWW-Authenticate: Bearer`).
    Unauthorized,
    /// A valid token whose role and scope do not cover what was asked (HTTP 403).
    Forbidden,
    /// A read asked for `min_tree_size` N and the read model had not applied N entries within
    /// the wait the server allows: retry after the given delay (retryable).
    NotYetApplied,
}

/// What kind of rule refused an event, as the rules crate (`zachetka-rules`) classifies each
/// refusal where it is made: the one fact the HTTP status of a rule refusal depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// The author's key has no right to write this (unknown, revoked, expired, out of scope,
    /// not the authority): HTTP 403.
    Rights,
    /// A domain invariant of a write its author had the right to make (grade scale, queue
    /// tiers, commission quorum...): HTTP 422.
    Invariant,
}

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
            | BatchTooLong
            | BadQuery
            | BadPath
            | StreamMalformed
            | ProofOutOfRange
            | BundleMalformed
            | BundleTooManyEntries => 400,
            Unauthorized => 401,
            NotFound => 404,
            MethodNotAllowed => 405,
            BodyTimeout => 408,
            UnsupportedMediaType => 415,
            BodyTooLarge | EventTooLarge | EntryTooLarge => 413,
            Rule(_, RuleKind::Rights) | Forbidden => 403,
            EventIdConflict | StreamVersionConflict => 409,
            WrongLedger | KeyWeak | SignatureInvalid | Rule(_, RuleKind::Invariant) => 422,
            StoreCorrupt => 500,
            Busy | Unavailable | ReadOnly | WritesStopped | NotYetApplied => 503,
        }
    }

    /// Whether the same request may succeed later unchanged, without an operator's step: only
    /// these answers carry `Retry-After`.
    pub fn retryable(self) -> bool {
        matches!(self, Code::Busy | Code::Unavailable | Code::NotYetApplied)
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
            Rule(code, _) => code,
            Busy => "busy",
            Unavailable => "unavailable",
            StoreCorrupt => "store_corrupt",
            ReadOnly => "read_only",
            WritesStopped => "writes_stopped",
            BodyTimeout => "body_timeout",
            UnsupportedMediaType => "unsupported_media_type",
            BadQuery => "bad_query",
            BadPath => "bad_path",
            ProofOutOfRange => "proof_out_of_range",
            BundleMalformed => "bundle_malformed",
            BundleTooManyEntries => "bundle_too_many_entries",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotYetApplied => "not_yet_applied",
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
