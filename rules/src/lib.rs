//! zachetka-rules: the rules that decide whether an event may enter the ledger (the authority
//! chain of DESIGN 4 and the domain invariants of DOMAIN.md), as one `Rules::check_and_apply`
//! that append, replay on open and the audit all call.
//! Not the ledger and not the vocabulary: no signatures, no storage, no clock, no I/O (the event
//! types come from `zachetka-projections`, time from `zachetka-formats`). The caller verifies
//! signatures, answers `Lookup` from its index and calls `check_and_apply` for every event in log
//! order. The state can be saved and loaded (`encode_state`, `load_state`, `state_digest`) so a
//! ledger opens from a snapshot; the config and key check are supplied again at load.
#![forbid(unsafe_code)]

mod additional;
mod attestation;
mod authority;
mod calendar;
pub mod config;
mod contingent;
mod digital;
mod enrolment;
mod journal;
mod migration;
mod portfolio;
mod queries;
mod queue;
mod staff;
mod state;
/// The one calendar and RFC 3339 grammar, shared with the formats (events, entries, checkpoints).
pub use zachetka_formats::time;
/// The education event vocabulary the rules judge (it lives in `zachetka-projections`).
pub use zachetka_projections::vocabulary;

pub use attestation::{CategoryHeld, TeacherStatus};
pub use authority::{Grant, Institution};
pub use config::{LedgerTimeRules, RegionConfig};
pub use journal::CORRECTABLE;
pub use state::{StateError, STATE_FORMAT};
pub use vocabulary::{event_types, schema_version, StreamKind};
/// Which kind of rule refused: `Rights` (HTTP 403) or `Invariant` (422); the status itself is
/// mapped in `zachetka_formats::refusal` only.
pub use zachetka_formats::refusal::RuleKind;

use time::{Days, Nanos};
use vocabulary::Event;

/// An event as the rules see it: already signature-checked by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Position in the log (for messages).
    pub seq: u64,
    /// e.g. `learner/47-000123`, `registry`, `institution/sch-001`, `queue/kg/tikhvin`, `teacher/t-0042`.
    pub stream: &'a str,
    /// e.g. `journal.grade_recorded`.
    pub event_type: &'a str,
    /// Lowercase UUID.
    pub id: &'a str,
    /// RFC 3339, `2026-11-22T09:10:00Z` (may carry a fraction or an offset): the author's claim.
    pub occurred_at: &'a str,
    /// The ledger's time of the entry (`recorded_at`, which the leaf hash covers): what the
    /// sequencer writes into the entry when it admits the event; replay and audit read it from
    /// the entry. The fact the author's `occurred_at` is measured against (DOMAIN "Ledger time").
    pub recorded_at: Nanos,
    /// `did:key` of the signer.
    pub author: &'a str,
    /// The event's data object (integers and strings only, objects, arrays).
    pub data: &'a serde_json::Value,
}

impl<'a> Envelope<'a> {
    /// The envelope of an event object (as signed, or inside an entry) at position `seq`,
    /// recorded at `recorded_at_unix` (the entry's `recorded_at`), or `None` when a field the
    /// rules read is missing. The one way the ledger, the audit and a record verifier build it.
    pub fn of_event(seq: u64, recorded_at_unix: i64, event: &'a serde_json::Value) -> Option<Self> {
        let s = |k: &str| event.get(k).and_then(serde_json::Value::as_str);
        Some(Envelope {
            seq,
            stream: s("stream")?,
            event_type: s("type")?,
            id: s("id")?,
            occurred_at: s("occurred_at")?,
            recorded_at: Nanos::from(recorded_at_unix) * 1_000_000_000,
            author: s("author")?,
            data: event.get("data")?,
        })
    }
}

/// Why an event is refused: a stable snake_case code, the kind of rule that refused it (rights
/// or invariant) and a precise lowercase message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RuleRefusal {
    pub code: &'static str,
    pub kind: RuleKind,
    pub message: String,
}

impl RuleRefusal {
    /// A broken domain invariant of a write its author had the right to make.
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, kind: RuleKind::Invariant, message: message.into() }
    }

    /// The author's key has no right to write this event (unknown, revoked, out of scope...).
    pub(crate) fn rights(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, kind: RuleKind::Rights, message: message.into() }
    }
}

/// Refuses for a broken invariant (`RuleKind::Invariant`).
pub(crate) fn refuse<T, E: From<RuleRefusal>>(code: &'static str, message: impl Into<String>) -> Result<T, E> {
    Err(RuleRefusal::new(code, message).into())
}

/// Refuses for a missing right (`RuleKind::Rights`).
pub(crate) fn deny<T, E: From<RuleRefusal>>(code: &'static str, message: impl Into<String>) -> Result<T, E> {
    Err(RuleRefusal::rights(code, message).into())
}

/// The caller's index could not answer a lookup (a store that is unavailable, damaged or failing):
/// the rules could not decide, so this is never a refusal.
#[derive(Debug, thiserror::Error)]
#[error("couldn't look up event {id}")]
pub struct LookupError {
    pub id: String,
    /// The index's own error (the root crate passes its `StoreError` and takes it back).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl LookupError {
    pub fn new(id: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { id: id.to_owned(), source: source.into() }
    }
}

/// Why `check` or `check_and_apply` did not accept an event: the rules refused it (final for
/// this state), or a lookup failed and nothing was decided (the caller may retry).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Refused(#[from] RuleRefusal),
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl RuleError {
    /// The refusal, if the rules decided.
    pub fn refusal(&self) -> Option<&RuleRefusal> {
        match self {
            RuleError::Refused(r) => Some(r),
            RuleError::Lookup(_) => None,
        }
    }
}

/// Facts the rules need from the log that the caller indexes, so the rules hold no per-event
/// history of their own. Contract: answers for every event accepted before the one being
/// checked, and for no other (in particular not for refused entries during an audit); `Ok(None)`
/// means "no such accepted event", and an index that cannot tell answers `Err`, never `None`.
pub trait Lookup {
    /// The stream and type of an earlier accepted event, by id.
    fn event(&self, id: &str) -> Result<Option<(String, String)>, LookupError>;
}

/// A `Lookup` that knows no event (for callers that have no index yet, and for tests).
pub struct NoLookup;

impl Lookup for NoLookup {
    fn event(&self, _id: &str) -> Result<Option<(String, String)>, LookupError> {
        Ok(None)
    }
}

/// A predicate on a granted key's `did:key` (the root crate passes its strict key check, which
/// refuses small-order and non-canonical points); `Err` carries the reason.
pub type KeyCheck = fn(&str) -> Result<(), String>;

/// The whole rule state: the authority chain plus the domain state the invariants need.
/// Deterministic: the same events in the same order give the same state and the same answers.
pub struct Rules {
    config: RegionConfig,
    /// The config's calendar as sets (derived from `config`, never saved).
    calendar: calendar::Calendar,
    key_check: Option<KeyCheck>,
    /// The ledger's own key (`did:key` of its checkpoint key), the only author of completeness
    /// commitments; supplied like the config, never part of the state.
    ledger_key: Option<String>,
    auth: authority::Authority,
    queue: queue::Queues,
    first_grade: enrolment::FirstGrade,
    journal: journal::Journal,
    additional: additional::Additional,
    attestation: attestation::Attestations,
    portfolio: portfolio::Portfolio,
    contingent: contingent::Contingent,
    staff: staff::Staff,
    digital: digital::Digital,
    /// The legacy records imported so far (`data.migrated_from`), each once.
    imports: migration::Imports,
    /// The latest local date of an applied event: "today" for read-side questions such as a
    /// benefit's re-check date (never the wall clock, so replays agree).
    today: Days,
}

/// What a subsystem check sees.
pub(crate) struct Ctx<'a> {
    pub rules: &'a Rules,
    pub e: &'a Envelope<'a>,
    pub lookup: &'a dyn Lookup,
    /// The instant the author's key is judged at: `occurred_at`, or for a record imported by a
    /// migration (`data.migrated_from`) the ledger's `recorded_at` (the legacy time is history,
    /// the key writes now).
    pub at: Nanos,
    /// `occurred_at` as a local date of the region.
    pub date: Days,
    /// Whether the event is a migration's import (`data.migrated_from`, by a migration key).
    pub imported: bool,
    /// The stream's id (after its prefix).
    pub sid: &'a str,
}

impl Ctx<'_> {
    pub fn cfg(&self) -> &RegionConfig {
        &self.rules.config
    }
    pub fn auth(&self) -> &authority::Authority {
        &self.rules.auth
    }
}

/// What a subsystem apply sees.
pub(crate) struct Applied<'a> {
    pub e: &'a Envelope<'a>,
    /// `occurred_at` as an instant.
    pub at: Nanos,
    pub sid: &'a str,
    /// Whether the event is a migration's import (`data.migrated_from`).
    pub imported: bool,
}

/// The role whose keys import a legacy system's history (`data.migrated_from`).
pub const MIGRATION_ROLE: &str = "migration";

impl Rules {
    /// Rules for the ledger named `origin` (its log origin, which `ledger.established` must
    /// name) whose authority key is `authority_did`, with a region profile.
    pub fn new(origin: &str, authority_did: &str, config: RegionConfig) -> Self {
        Self {
            calendar: calendar::Calendar::new(&config.calendar),
            config,
            key_check: None,
            ledger_key: None,
            auth: authority::Authority::new(origin, authority_did),
            queue: Default::default(),
            first_grade: Default::default(),
            journal: Default::default(),
            additional: Default::default(),
            attestation: Default::default(),
            portfolio: Default::default(),
            contingent: Default::default(),
            staff: Default::default(),
            digital: Default::default(),
            imports: Default::default(),
            today: Days::MIN,
        }
    }

    /// Checks every granted or rotated-in key with `f` (refusal `key_weak`). Without it only the
    /// `did:key:z` form is checked.
    pub fn with_key_check(mut self, f: KeyCheck) -> Self {
        self.key_check = Some(f);
        self
    }

    /// Names the ledger's own key (`did:key`), the only author `ledger.completeness_committed`
    /// is accepted from (refusal `not_authorized`). Without it every commitment is refused.
    pub fn with_ledger_key(mut self, did: &str) -> Self {
        self.ledger_key = Some(did.to_owned());
        self
    }

    /// The ledger key named by `with_ledger_key`.
    pub fn ledger_key(&self) -> Option<&str> {
        self.ledger_key.as_deref()
    }

    /// The region profile in force.
    pub fn config(&self) -> &RegionConfig {
        &self.config
    }

    /// The current authority key (it changes only by `keys.rotated`).
    pub fn authority_did(&self) -> &str {
        &self.auth.authority
    }

    /// The canonical bytes of the rule state (everything applied so far, not the config or the
    /// key check): identical rule states give identical bytes. `load_state` reads them back.
    /// How many of the state's lazily loaded values (a learner's results and enrolment history,
    /// an institution's lessons, a stream's digital records) are still encoded, of how many:
    /// what an open from a snapshot has not decoded yet (tests; `lazy::Lazy`).
    #[doc(hidden)]
    pub fn lazy_values(&self) -> (usize, usize) {
        let counts = [self.journal.lazy_values(), self.contingent.lazy_values(), self.digital.lazy_values()];
        counts.iter().fold((0, 0), |(e, n), (e2, n2)| (e + e2, n + n2))
    }

    pub fn encode_state(&self) -> Vec<u8> {
        state::encode(&self.saved())
    }

    /// SHA-256 of `encode_state`: an audit compares the digest of rules replayed from zero with
    /// that of saved state plus the tail.
    pub fn state_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.encode_state()).into()
    }

    /// Rules from state saved by `encode_state`, for the ledger named `origin` created with
    /// `authority_did`, under `config` (then `.with_key_check(f)` as for `new`). Refuses state of
    /// another layout version, another ledger or genesis key, or saved under another config
    /// (the state stores a SHA-256 of the config's canonical JSON).
    pub fn load_state(
        origin: &str,
        authority_did: &str,
        config: RegionConfig,
        bytes: &[u8],
    ) -> Result<Self, StateError> {
        let saved = state::decode(origin, authority_did, &config, bytes)?;
        Ok(Self {
            calendar: calendar::Calendar::new(&config.calendar),
            config,
            key_check: None,
            ledger_key: None,
            auth: saved.auth,
            queue: saved.queue,
            first_grade: saved.first_grade,
            journal: saved.journal,
            additional: saved.additional,
            attestation: saved.attestation,
            portfolio: saved.portfolio,
            contingent: saved.contingent,
            staff: saved.staff,
            digital: saved.digital,
            imports: saved.imports,
            today: saved.today,
        })
    }

    /// The state as saved, borrowed (the config stands in by its digest).
    fn saved(&self) -> state::SavedRef<'_> {
        let Rules {
            config,
            calendar: _,
            key_check: _,
            ledger_key: _,
            auth,
            queue,
            first_grade,
            journal,
            additional,
            attestation,
            portfolio,
            contingent,
            staff,
            digital,
            imports,
            today,
        } = self;
        state::SavedRef {
            config_sha256: state::config_digest(config),
            auth,
            queue,
            first_grade,
            journal,
            additional,
            attestation,
            portfolio,
            contingent,
            staff,
            digital,
            imports,
            today: *today,
        }
    }

    /// Whether `ledger.established` has been applied.
    pub fn is_established(&self) -> bool {
        self.auth.established
    }

    /// The grant of a key (including revoked ones), for authority chains in record bundles.
    pub fn grant(&self, key: &str) -> Option<&Grant> {
        self.auth.grants.get(key)
    }

    /// A registered institution.
    pub fn institution(&self, id: &str) -> Option<&Institution> {
        self.auth.institutions.get(id)
    }

    /// Would this event be accepted now? Pure: no state change. A dry run: the ledger's paths
    /// (append, replay, audit) call `check_and_apply`.
    pub fn check(&self, e: &Envelope, lookup: &dyn Lookup) -> Result<(), RuleError> {
        let (ev, at, sid) = self.read(e)?;
        let imported = self.check_import(e)?;
        self.check_ledger_time(e, at, imported)?;
        self.auth.check_not_revoked_in_log(e.author, e.recorded_at)?;
        let key_at = if imported { e.recorded_at } else { at };
        let date = time::local_date(at, self.config.utc_offset_minutes);
        let ctx = Ctx { rules: self, e, lookup, at: key_at, date, imported, sid };
        match e.event_type.split_once('.').map_or("", |(head, _)| head) {
            "ledger" | "registry" | "keys" => authority::check(&ctx, &ev)?,
            "queue" => queue::check(&ctx, &ev)?,
            "enrolment" => enrolment::check(&ctx, &ev)?,
            "journal" | "college" => journal::check(&ctx, &ev)?,
            "additional" => additional::check(&ctx, &ev)?,
            "attestation" => attestation::check(&ctx, &ev)?,
            "contingent" => contingent::check(&ctx, &ev)?,
            "staff" => staff::check(&ctx, &ev)?,
            "digital" => digital::check(&ctx, &ev)?,
            _ => portfolio::check(&ctx, &ev)?,
        }
        Ok(())
    }

    /// The one entry point of append, replay on open and audit: `check`, and when it passes,
    /// record the event's effects. On `Err` nothing changed (a refused entry is never applied;
    /// an audit reports it and goes on).
    pub fn check_and_apply(&mut self, e: &Envelope, lookup: &dyn Lookup) -> Result<(), RuleError> {
        self.check(e, lookup)?;
        self.apply(e);
        Ok(())
    }

    /// Records an accepted event's effects, right after its passing check (only
    /// `check_and_apply` calls it). A malformed event changes nothing; this never panics on bad
    /// input.
    fn apply(&mut self, e: &Envelope) {
        let Ok((ev, at, sid)) = self.read(e) else {
            return;
        };
        let date = time::local_date(at, self.config.utc_offset_minutes);
        let imported = e.data.get(vocabulary::MIGRATED_FROM).is_some();
        let a = Applied { e, at, sid, imported };
        self.today = self.today.max(date);
        let Rules {
            config,
            calendar: _,
            key_check: _,
            ledger_key: _,
            auth,
            queue,
            first_grade,
            journal,
            additional,
            attestation,
            portfolio,
            contingent,
            staff,
            digital,
            imports,
            today,
        } = self;
        if let Some((system, record)) = migration::source_of(e.data) {
            imports.apply(system, record, e.seq);
        }
        // Admissions, classes, leaving, transfers and 1st-grade orders, whatever their family.
        contingent.apply(&a, &ev);
        match e.event_type.split_once('.').map_or("", |(head, _)| head) {
            "ledger" | "registry" | "keys" => auth.apply(&a, &ev),
            "queue" => queue.apply(config, *today, &a, &ev),
            "enrolment" => first_grade.apply(&a, &ev),
            "journal" | "college" => journal.apply(config, &a, &ev),
            "additional" => additional.apply(&a, &ev),
            "attestation" => attestation.apply(config, auth, &a, &ev),
            "contingent" => {}
            "staff" => staff.apply(&a, &ev),
            "digital" => digital.apply(&a, &ev),
            _ => portfolio.apply(auth, &a, &ev),
        }
    }

    /// Whether the event is an import (`data.migrated_from`, its shape checked by the vocabulary):
    /// then its author holds the migration role, in force at the ledger's time, it is recorded
    /// before the region's migration cutover (`migration_closed`), and it names a legacy record no
    /// earlier import named (`import_record_repeated`).
    fn check_import(&self, e: &Envelope) -> Result<bool, RuleRefusal> {
        if e.data.get(vocabulary::MIGRATED_FROM).is_none() {
            return Ok(false);
        }
        let g = self.auth.valid_grant(e.author, e.recorded_at)?;
        if !g.has_role(MIGRATION_ROLE) {
            return deny(
                "not_authorized",
                format!(
                    "key {} holds [{}]; data.migrated_from is written only by a key with the {MIGRATION_ROLE} role",
                    e.author,
                    g.roles.join(", ")
                ),
            );
        }
        migration::check_open(self.config.migration_closes_at.as_deref(), e.recorded_at)?;
        let Some((system, record)) = migration::source_of(e.data) else {
            return refuse("event_malformed", format!("data.{} names no system and record", vocabulary::MIGRATED_FROM));
        };
        self.imports.check_new(system, record)?;
        Ok(true)
    }

    /// DOMAIN "Ledger time": the author's `occurred_at` against the ledger's `recorded_at`. Never
    /// later than it plus the region's skew (`occurred_at_in_future`); never earlier than the
    /// type's backdating limit in local days (`occurred_at_backdated`; 0 = the same local day, or
    /// within the skew), except for a migration's import.
    fn check_ledger_time(&self, e: &Envelope, at: Nanos, imported: bool) -> Result<(), RuleRefusal> {
        let lt = &self.config.ledger_time;
        let skew = Nanos::from(lt.future_skew_seconds) * 1_000_000_000;
        // Formatted only for a refusal's message: accepted events (nearly all) never need it.
        let recorded = || format_instant(e.recorded_at);
        if at > e.recorded_at.saturating_add(skew) {
            return refuse(
                "occurred_at_in_future",
                format!(
                    "occurred_at {} is later than the ledger's time {} plus {} seconds of skew",
                    e.occurred_at,
                    recorded(),
                    lt.future_skew_seconds
                ),
            );
        }
        // A completeness commitment's occurred_at is no author's claim: it is the recorded_at of
        // the entry its `up_to` ends at (so a resubmission is the same event), and how far it may
        // lag is bounded in positions (`completeness_up_to_invalid`), not in days.
        let derived = e.event_type == zachetka_projections::completeness::EVENT_TYPE;
        if imported || derived || at >= e.recorded_at.saturating_sub(skew) {
            return Ok(());
        }
        let days = lt.backdating_days_of(e.event_type);
        let offset = self.config.utc_offset_minutes;
        let (date, ledger_date) = (time::local_date(at, offset), time::local_date(e.recorded_at, offset));
        if date < ledger_date - days {
            let limit = if days == 0 { "the same day".to_owned() } else { format!("{days} days") };
            return refuse(
                "occurred_at_backdated",
                format!(
                    "occurred_at {} is {} days before the ledger's date {} (recorded {}); {} may be backdated \
                     by at most {limit} (ledger_time.backdating_days)",
                    e.occurred_at,
                    ledger_date - date,
                    time::format_date(ledger_date),
                    recorded(),
                    e.event_type
                ),
            );
        }
        Ok(())
    }

    /// The checks every event passes before its own rule: known type, payload shape, schema
    /// version, no personal data, a readable `occurred_at`, an established ledger, its stream.
    fn read<'e>(&self, e: &Envelope<'e>) -> Result<(Event, Nanos, &'e str), RuleRefusal> {
        let Some(info) = vocabulary::type_info(e.event_type) else {
            return refuse("unknown_event_type", format!("event type {} is not in the vocabulary", e.event_type));
        };
        let Some(obj) = e.data.as_object() else {
            return refuse("event_malformed", "data must be an object");
        };
        let mut path = String::from("data");
        if let Err((code, message)) = vocabulary::scan_payload(e.data, &mut path, 0) {
            return refuse(code, message);
        }
        match obj.get("v").and_then(|v| v.as_i64()) {
            Some(v) if v == info.version => {}
            Some(v) => {
                return refuse(
                    "schema_version_unsupported",
                    format!("{} has schema version {}, not {v}", e.event_type, info.version),
                )
            }
            None => {
                return refuse(
                    "schema_version_unsupported",
                    format!("data.v is missing: {} needs {}", e.event_type, info.version),
                )
            }
        }
        if let Some(message) = vocabulary::find_personal_data(e.data, &self.config.personal_data_words, &mut path) {
            return refuse("personal_data_in_log", message);
        }
        let Some(at) = time::parse_instant(e.occurred_at) else {
            return refuse("event_malformed", format!("occurred_at {} is not an rfc 3339 time", e.occurred_at));
        };
        if !self.auth.established && info.name != "ledger.established" {
            return refuse("ledger_not_established", "the first event of a ledger is ledger.established");
        }
        let Some(sid) = info.stream.id_of(e.stream) else {
            let shape = if info.stream.is_single() {
                info.stream.prefix().to_owned()
            } else {
                format!("{}<id>", info.stream.prefix())
            };
            return refuse("stream_mismatch", format!("{} belongs in stream {shape}, not {}", e.event_type, e.stream));
        };
        match vocabulary::parse(e.event_type, obj) {
            Some(Ok(ev)) => Ok((ev, at, sid)),
            Some(Err(message)) => refuse("event_malformed", message),
            None => refuse("unknown_event_type", format!("event type {} is not in the vocabulary", e.event_type)),
        }
    }
}

/// An instant as RFC 3339 UTC, to the second (for messages).
pub(crate) fn format_instant(at: Nanos) -> String {
    time::format_rfc3339(i64::try_from(at.div_euclid(1_000_000_000)).unwrap_or(i64::MAX))
}

/// Parses a date field or refuses naming it.
pub(crate) fn date_field(value: &str, field: &str) -> Result<Days, RuleRefusal> {
    time::parse_date(value)
        .ok_or_else(|| RuleRefusal::new("event_malformed", format!("data.{field} {value} is not a date (YYYY-MM-DD)")))
}

/// Parses an instant field or refuses naming it.
pub(crate) fn instant_field(value: &str, field: &str) -> Result<Nanos, RuleRefusal> {
    time::parse_instant(value)
        .ok_or_else(|| RuleRefusal::new("event_malformed", format!("data.{field} {value} is not an rfc 3339 time")))
}
