//! What every read model is: a named, versioned, pure fold over the log's entries in log order,
//! whose state has canonical bytes (so two builds compare by digest and a snapshot stores it),
//! answering views that say whose data they are (so the server can scope reads by role).
//! Not the runner that feeds entries (the ledger's, or a read service's over the feed), and not
//! the snapshot files (`zachetka-snapshots`): a model knows nothing of positions it has not seen.

use crate::vocabulary::{self, Event, MigratedFrom};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One entry as every read model sees it: the entry's fields and its event, already parsed and
/// typed once for all models.
#[derive(Debug, Clone, Copy)]
pub struct Fact<'a> {
    /// Position in the log.
    pub seq: u64,
    /// The ledger's time of recording (`recorded_at` of the entry), unix seconds.
    pub recorded_at: i64,
    pub stream: &'a str,
    pub event_type: &'a str,
    /// The event's id (lowercase UUID).
    pub id: &'a str,
    /// The author's time, RFC 3339 as signed.
    pub occurred_at: &'a str,
    /// `did:key` of the signer.
    pub author: &'a str,
    pub event: &'a Event,
    /// Where an imported record comes from (`data.migrated_from`), `None` for a record made here.
    pub imported: Option<&'a MigratedFrom>,
    /// The entry's leaf hash, SHA-256(0x00 || entry bytes) (what completeness chains).
    pub leaf_hash: &'a [u8; 32],
}

impl<'a> Fact<'a> {
    /// The stream's id after its kind's prefix (`learner/47-1` → `47-1`; `""` for the registry).
    pub fn stream_id(&self) -> &'a str {
        match self.stream.split_once('/') {
            Some(("queue", rest)) => rest.strip_prefix("kg/").unwrap_or(rest),
            Some((_, rest)) => rest,
            None => "",
        }
    }
}

/// An event object (as signed, or inside an entry) typed for the folds, or `None` when it is not
/// a well-formed event of the vocabulary (such an entry never passes the rules; a fold skips it).
pub fn typed_event(event: &Value) -> Option<Event> {
    let event_type = event.get("type")?.as_str()?;
    let data = event.get("data")?.as_object()?;
    vocabulary::parse(event_type, data)?.ok()
}

/// `data.migrated_from` of a well-formed event of a type a migration imports, else `None`.
pub fn imported_of(event: &Value) -> Option<MigratedFrom> {
    let event_type = event.get("type")?.as_str()?;
    let data = event.get("data")?.as_object()?;
    vocabulary::migrated_from(event_type, data).ok().flatten()
}

/// Whose data a view shows, which decides who may read it (the server maps roles onto it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// Aggregates of the whole region (indicators): read services and auditors.
    Region,
    /// A kindergarten queue territory (its lists and allocation runs).
    Territory(String),
    /// One institution's records (journals, 1st-grade intake, rosters, its teachers).
    Institution(String),
    /// One learner's records (diary, record book, profile, their queue application).
    Learner(String),
}

/// One answer of a read model, with whose data it is.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub scope: Scope,
    pub body: Value,
}

/// Why a view cannot be answered. Codes are the server's `not_found` and `bad_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// The path is well formed but names nothing this model holds (yet).
    NotFound(String),
    /// The path does not have the shape this model answers (the message says which).
    BadPath(String),
}

/// Why stored model bytes could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read model {model}: {reason}")]
pub struct DecodeError {
    pub model: &'static str,
    pub reason: String,
}

/// A read model: a pure, deterministic fold over entries in log order. Every model starts empty
/// (`Default`), sees every entry whose event is in the vocabulary exactly once and in order, and
/// from the same entries reaches the same canonical bytes, whatever the process or machine.
pub trait ReadModel: Send + Sync + 'static {
    /// Stable name; also the first path segment of its views under `/v1/projections/`.
    fn name(&self) -> &'static str;
    /// Bumped whenever the state's meaning or encoding changes (a snapshot of another version is
    /// not loaded: the model is rebuilt from the log).
    fn version(&self) -> u32;
    /// Folds one entry in.
    fn apply(&mut self, fact: &Fact<'_>);
    /// The state's canonical bytes (use `encode_state`: ordered maps only, no floats).
    fn encode(&self) -> Vec<u8>;
    /// Replaces the state by one decoded from `encode`'s bytes (use `decode_state`).
    fn load(&mut self, bytes: &[u8]) -> Result<(), DecodeError>;
    /// Answers the view at `path` (the segments after the model's name).
    fn view(&self, path: &[&str]) -> Result<View, ViewError>;
    /// The model as `Any`, for a runner that needs one model's own API (the read side asks the
    /// `completeness` model for maps and proofs). `None` by default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Canonical bytes of a model state: postcard over serde, which writes fields in declaration
/// order and maps in iteration order, so states built only of ordered maps (`BTreeMap`), vectors
/// and integers encode identically wherever they are built.
pub fn encode_state<T: Serialize>(state: &T) -> Vec<u8> {
    postcard::to_stdvec(state).expect("a read-model state serializes (no floats, no unsized maps)")
}

/// Reads back `encode_state`'s bytes; trailing bytes are an error.
pub fn decode_state<T: DeserializeOwned>(model: &'static str, bytes: &[u8]) -> Result<T, DecodeError> {
    let (state, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| DecodeError { model, reason: format!("undecodable state: {e}") })?;
    if !rest.is_empty() {
        return Err(DecodeError { model, reason: format!("{} bytes after the state", rest.len()) });
    }
    Ok(state)
}

/// The digest two builds compare: SHA-256 over `zachetka/read-model/v1\n`, the name, the version
/// and the canonical state bytes.
pub fn digest(model: &dyn ReadModel) -> [u8; 32] {
    digest_of(model.name(), model.version(), &model.encode())
}

/// `digest` of already encoded state bytes.
pub fn digest_of(name: &str, version: u32, state: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"zachetka/read-model/v1\n");
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(version.to_string().as_bytes());
    h.update(b"\n");
    h.update(state);
    h.finalize().into()
}

/// Every read model of this build, empty, in a fixed order (the order of status and snapshots).
pub fn all() -> Vec<Box<dyn ReadModel>> {
    use crate::models::{clubs, first_grade, indicators, kindergarten_queues, teachers};
    vec![
        Box::new(kindergarten_queues::KindergartenQueues::default()),
        Box::new(first_grade::FirstGrade::default()),
        Box::new(clubs::Clubs::default()),
        Box::new(teachers::Teachers::default()),
        Box::new(indicators::Indicators::default()),
        Box::<crate::models::journals::Journals>::default(),
        Box::<crate::models::diaries::Diaries>::default(),
        Box::<crate::models::record_books::RecordBooks>::default(),
        Box::<crate::models::profiles::Profiles>::default(),
        Box::<crate::models::completeness::Completeness>::default(),
    ]
}

/// Turns a view's typed answer into its JSON body.
pub fn body<T: Serialize>(answer: &T) -> Value {
    serde_json::to_value(answer).expect("a view serializes")
}

/// One path segment, or a `BadPath` naming what was expected.
pub fn segment<'p>(path: &[&'p str], i: usize, what: &str) -> Result<&'p str, ViewError> {
    match path.get(i) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ViewError::BadPath(format!("expected {what} at segment {}", i + 1))),
    }
}

/// `BadPath` unless the path has exactly `n` segments.
pub fn expect_len(path: &[&str], n: usize, shape: &str) -> Result<(), ViewError> {
    if path.len() == n {
        Ok(())
    } else {
        Err(ViewError::BadPath(format!("expected {shape}")))
    }
}

/// An entry parsed once for every model: the entry's JSON and its typed event.
pub struct ParsedFact {
    pub seq: u64,
    pub recorded_at: i64,
    pub event: Value,
    /// `None` when the event is not a well-formed event of the vocabulary.
    pub typed: Option<Event>,
    /// `data.migrated_from` of a well-formed event.
    pub imported: Option<MigratedFrom>,
    /// SHA-256(0x00 || entry bytes).
    pub leaf_hash: [u8; 32],
}

impl ParsedFact {
    /// Parses stored entry bytes. The read side reads entries that passed their leaf-hash
    /// check, so it takes only what the folds use (`seq`, `recorded_at`, `event`) with serde's
    /// own parser, not the strict one the audit uses to judge an entry (`event::parse_entry`).
    pub fn from_entry(bytes: &[u8]) -> Result<Self, zachetka_formats::event::EntryError> {
        use zachetka_formats::event::EntryError;
        #[derive(serde::Deserialize)]
        struct Stored<'a> {
            seq: u64,
            #[serde(borrow)]
            recorded_at: std::borrow::Cow<'a, str>,
            event: Value,
        }
        let e: Stored = serde_json::from_slice(bytes).map_err(|e| EntryError::NotJson(e.to_string()))?;
        let recorded_at =
            zachetka_formats::time::parse_rfc3339(&e.recorded_at).ok_or(EntryError::Field("recorded_at"))?;
        let typed = typed_event(&e.event);
        let imported = imported_of(&e.event);
        let leaf_hash = zachetka_formats::merkle::leaf_hash(bytes).0;
        Ok(Self { seq: e.seq, recorded_at, event: e.event, typed, imported, leaf_hash })
    }

    /// An entry already parsed whose leaf hash the caller computed from its bytes (the audit's
    /// walk).
    pub fn from_parsed_with_leaf(e: &zachetka_formats::event::ParsedEntry, leaf_hash: [u8; 32]) -> Self {
        Self {
            seq: e.meta.seq,
            recorded_at: e.meta.recorded_at_unix,
            event: e.event.clone(),
            typed: typed_event(&e.event),
            imported: imported_of(&e.event),
            leaf_hash,
        }
    }

    /// The fact the models fold, when the event is in the vocabulary.
    pub fn fact(&self) -> Option<Fact<'_>> {
        let s = |k: &str| self.event.get(k).and_then(Value::as_str);
        Some(Fact {
            seq: self.seq,
            recorded_at: self.recorded_at,
            stream: s("stream")?,
            event_type: s("type")?,
            id: s("id")?,
            occurred_at: s("occurred_at")?,
            author: s("author")?,
            event: self.typed.as_ref()?,
            imported: self.imported.as_ref(),
            leaf_hash: &self.leaf_hash,
        })
    }
}

/// Folds entries (stored bytes, in log order from the models' common position) into every
/// model. An entry that does not parse is skipped by every model alike (the audit reports it).
pub fn fold_entries<'b>(models: &mut [Box<dyn ReadModel>], entries: impl IntoIterator<Item = &'b [u8]>) {
    for bytes in entries {
        let Ok(parsed) = ParsedFact::from_entry(bytes) else { continue };
        if let Some(fact) = parsed.fact() {
            for m in models.iter_mut() {
                m.apply(&fact);
            }
        }
    }
}
