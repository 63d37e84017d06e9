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
    /// `occurred_at` in whole unix seconds (`occurred_secs`), read once for every model.
    pub occurred_secs: Option<i64>,
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

/// An event's `occurred_at` in whole unix seconds (`time::parse_instant_parts`, the fraction
/// dropped), `None` when it is not an instant.
pub fn occurred_secs(occurred_at: &str) -> Option<i64> {
    zachetka_formats::time::parse_instant_parts(occurred_at).map(|(secs, _)| secs)
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
/// On the wire (an answer's `scope`): `{"kind":"region"}` (no id: there is one region),
/// `{"kind":"territory"|"institution"|"learner","id":..}`, and for an application
/// `{"kind":"learner","id":<learner>,"territory":<territory>}` (the learner's data, which the
/// territory's queue operator reads too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Aggregates of the whole region (indicators): read services and auditors.
    Region,
    /// A kindergarten queue territory (its lists and allocation runs).
    Territory(String),
    /// One institution's records (journals, 1st-grade intake, rosters, its teachers).
    Institution(String),
    /// One learner's records (diary, record book, profile).
    Learner(String),
    /// A learner's application on a territory's kindergarten queue (its position, why, moves):
    /// the learner's data, read by that learner and by the territory (its queue operator answers
    /// the applicant's questions). A view's scope only: no token holds it.
    Application { learner: String, territory: String },
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (kind, id, territory) = match self {
            Scope::Region => ("region", None, None),
            Scope::Territory(t) => ("territory", Some(t), None),
            Scope::Institution(i) => ("institution", Some(i), None),
            Scope::Learner(l) => ("learner", Some(l), None),
            Scope::Application { learner, territory } => ("learner", Some(learner), Some(territory)),
        };
        let mut m = s.serialize_map(Some(1 + usize::from(id.is_some()) + usize::from(territory.is_some())))?;
        m.serialize_entry("kind", kind)?;
        if let Some(id) = id {
            m.serialize_entry("id", id)?;
        }
        if let Some(t) = territory {
            m.serialize_entry("territory", t)?;
        }
        m.end()
    }
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
    /// Answers `path` at once when it is a point view (the records of one learner, of one class
    /// in one subject, or one application: bounded by one person's or one class's records) that
    /// needs no long work and no wait for another view's work; `None` otherwise, and the caller
    /// asks [`Self::view`] on a thread kept for blocking work. A server answers these on its
    /// request threads, so a costly listing never holds up a parent's diary. `None` by default;
    /// an answer is the one `view` gives.
    fn view_now(&self, path: &[&str]) -> Option<Result<View, ViewError>> {
        let _ = path;
        None
    }
    /// The scope `path`'s answer would have now, told without answering it, for a path whose
    /// scope only the answer tells and stays the same once the item exists (a queue
    /// application: its applicant and territory): the server refuses a token outside it before
    /// waiting for `min_tree_size`. `None` when the path names nothing yet or its scope may
    /// change with later entries (the default).
    fn scope_of(&self, path: &[&str]) -> Option<Scope> {
        let _ = path;
        None
    }
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

/// An entry parsed once for every model: its position, time and leaf hash, and, when it is a
/// well-formed event of the vocabulary with every envelope field a string, what `fact` lends
/// out. Owned, so pages of them move between threads; the event's JSON is not kept (a caller
/// that needs it, the rules' replay, reads it from the entry's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFact {
    pub seq: u64,
    pub recorded_at: i64,
    /// SHA-256(0x00 || entry bytes).
    pub leaf_hash: [u8; 32],
    typed: Option<Typed>,
}

/// The parts of a fact past the entry's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Typed {
    /// The type's name as the vocabulary's table has it.
    event_type: &'static str,
    /// `stream`, `id`, `occurred_at` and `author` one after the other (one allocation), each
    /// ending where `ends` says.
    text: String,
    ends: [u32; 4],
    /// `occurred_secs` of the envelope's `occurred_at`.
    occurred_secs: Option<i64>,
    event: Event,
    imported: Option<MigratedFrom>,
}

impl Typed {
    fn new(event_type: &'static str, envelope: [&str; 4], event: Event, imported: Option<MigratedFrom>) -> Self {
        let mut text = String::with_capacity(envelope.iter().map(|s| s.len()).sum());
        let mut ends = [0u32; 4];
        for (end, part) in ends.iter_mut().zip(envelope) {
            text.push_str(part);
            *end = u32::try_from(text.len()).expect("an entry is far shorter than 4 GiB");
        }
        Self { event_type, text, ends, occurred_secs: occurred_secs(envelope[2]), event, imported }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// Where the first `"`, `\\` or control character of `b` is, eight bytes at a time (the
/// strings of an entry are most of its bytes).
fn special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // A byte below 0x20 (its high bit clear), or equal to `"` or `\\`: the lowest flag is
        // exact (a borrow only flags bytes above a true one).
        let found = zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder().iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(at + tail)
}

/// The fields of a stored entry the fast path takes, borrowed from its text (`Scan::entry`).
struct Scanned<'a> {
    seq: u64,
    recorded_at: &'a str,
    /// `stream`, `id`, `occurred_at`, `author`, in `Typed`'s order.
    envelope: [&'a str; 4],
    event_type: &'a str,
    /// The event's `data` object, as text (checked as JSON when it is read as its type's record).
    data: &'a str,
}

/// The fast path's reader of an entry's text: the stored form as the ledger writes it (compact,
/// no whitespace), its envelope fields strings with no escape, numbers plain integers. Anything
/// else is `None` (then the `Value` path decides), so every entry it reads is JSON that the
/// `Value` path reads alike: the fields it takes are the ones that path takes, none twice, and
/// every field it skips is a plain string, integer or `null`, so valid JSON too. The event's
/// `data` is only delimited here; serde reads it as its record afterwards, which checks it.
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.byte()? == c).then(|| self.at += 1)
    }

    /// A string with no escape and no control character: its text.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = &self.text.as_bytes()[start..];
        let len = special(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&self.text[start..start + len])
    }

    /// An integer as JSON writes one (no sign, no leading zero, no fraction) that fits a `u64`.
    fn integer(&mut self) -> Option<u64> {
        let b = self.text.as_bytes();
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d) = b.get(self.at).filter(|c| c.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let len = self.at - start;
        (len > 0 && (len == 1 || b[start] != b'0')).then_some(n)
    }

    /// A value the fast path skips: a plain string, an integer or `null`.
    fn skip(&mut self) -> Option<()> {
        match self.byte()? {
            b'"' => self.string().map(drop),
            b'n' if self.text[self.at..].starts_with("null") => {
                self.at += 4;
                Some(())
            }
            _ => self.integer().map(drop),
        }
    }

    /// An object's text, delimited by its brackets outside strings (serde checks it later).
    fn object(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let start = self.at;
        if self.byte()? != b'{' {
            return None;
        }
        let mut depth = 0usize;
        let mut i = start;
        loop {
            match *b.get(i)? {
                b'"' => loop {
                    // A control character in a string is not JSON: that entry is not read here.
                    i += 1 + special(b.get(i + 1..)?)?;
                    match b[i] {
                        b'\\' => i += 1,
                        b'"' => break,
                        _ => return None,
                    }
                },
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at = i + 1;
                        return Some(&self.text[start..self.at]);
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// The members of an object, each key handed to `member` (which reads its value and says
    /// whether it took it); `None` when the object is not of the plain form.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.byte()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A whole stored entry.
    fn entry(text: &'a str) -> Option<Scanned<'a>> {
        let mut s = Scan { text, at: 0 };
        let (mut seq, mut recorded_at, mut event) = (None, None, None);
        s.members(|s, key| match key {
            "seq" if seq.is_none() => s.integer().map(|n| seq = Some(n)),
            "recorded_at" if recorded_at.is_none() => s.string().map(|r| recorded_at = Some(r)),
            "event" if event.is_none() => Scan::event(s).map(|e| event = Some(e)),
            "seq" | "recorded_at" | "event" => None,
            _ => s.skip(),
        })?;
        if s.at != text.len() {
            return None;
        }
        let (envelope, event_type, data) = event?;
        Some(Scanned { seq: seq?, recorded_at: recorded_at?, envelope, event_type, data })
    }

    /// The event object: its envelope strings, its type and its `data` object.
    fn event(s: &mut Self) -> Option<([&'a str; 4], &'a str, &'a str)> {
        // stream, id, occurred_at, author, type, data
        let mut fields: [Option<&'a str>; 6] = [None; 6];
        s.members(|s, key| {
            let i = match key {
                "stream" => 0,
                "id" => 1,
                "occurred_at" => 2,
                "author" => 3,
                "type" => 4,
                "data" => 5,
                _ => return s.skip(),
            };
            if fields[i].is_some() {
                return None;
            }
            fields[i] = Some(if i == 5 { s.object()? } else { s.string()? });
            Some(())
        })?;
        let [stream, id, occurred_at, author, event_type, data] = fields;
        Some(([stream?, id?, occurred_at?, author?], event_type?, data?))
    }
}

impl ParsedFact {
    /// Parses stored entry bytes. The read side reads entries that passed their leaf-hash
    /// check, so it takes only what the folds use (`seq`, `recorded_at`, `event`) with serde's
    /// own parser, not the strict one the audit uses to judge an entry (`event::parse_entry`).
    pub fn from_entry(bytes: &[u8]) -> Result<Self, zachetka_formats::event::EntryError> {
        Self::from_entry_with_leaf(bytes, zachetka_formats::merkle::leaf_hash(bytes).0)
    }

    /// `from_entry` of bytes whose leaf hash the caller has computed (checking them against the
    /// stored hash). Reads the entry straight into typed records (`crate::strict`); anything
    /// that path does not accept goes through the `Value` path (`from_value`), which decides.
    pub fn from_entry_with_leaf(
        bytes: &[u8],
        leaf_hash: [u8; 32],
    ) -> Result<Self, zachetka_formats::event::EntryError> {
        match Self::from_entry_fast(bytes, leaf_hash) {
            Some(p) => Ok(p),
            None => Self::from_entry_json(bytes, leaf_hash),
        }
    }

    /// The fast path alone: `None` for anything it does not accept (then `from_entry_json`
    /// decides). Public so that tests can hold it to the `Value` path.
    pub fn from_entry_fast(bytes: &[u8], leaf_hash: [u8; 32]) -> Option<Self> {
        // The whole entry checked as UTF-8 once (std's check runs a word at a time over ASCII):
        // the scan then slices it as text, and serde reads `data` as text, without checking
        // each string again.
        let e = Scan::entry(std::str::from_utf8(bytes).ok()?)?;
        let recorded_at = zachetka_formats::time::parse_rfc3339(e.recorded_at)?;
        let mut data = serde_json::Deserializer::from_str(e.data);
        let (event_type, parsed) = vocabulary::parse_strict(e.event_type, &mut data)?;
        let (event, imported) = parsed.ok()?;
        data.end().ok()?;
        if imported.is_some() && !vocabulary::MIGRATABLE_TYPES.contains(&event_type) {
            return None;
        }
        let typed = Some(Typed::new(event_type, e.envelope, event, imported));
        Some(Self { seq: e.seq, recorded_at, leaf_hash, typed })
    }

    /// The `Value` path alone: the entry as JSON, its event typed by `vocabulary::parse`.
    pub fn from_entry_json(bytes: &[u8], leaf_hash: [u8; 32]) -> Result<Self, zachetka_formats::event::EntryError> {
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
        Ok(Self::from_value(e.seq, recorded_at, &e.event, leaf_hash))
    }

    /// An entry whose event is `event` (JSON as signed), at `seq`, recorded at `recorded_at`.
    pub fn from_value(seq: u64, recorded_at: i64, event: &Value, leaf_hash: [u8; 32]) -> Self {
        let typed = (|| {
            let s = |k: &str| event.get(k).and_then(Value::as_str);
            let typed = typed_event(event)?;
            let event_type = vocabulary::type_info(s("type")?)?.name;
            let envelope = [s("stream")?, s("id")?, s("occurred_at")?, s("author")?];
            Some(Typed::new(event_type, envelope, typed, imported_of(event)))
        })();
        Self { seq, recorded_at, leaf_hash, typed }
    }

    /// An entry already parsed whose leaf hash the caller computed from its bytes (the audit's
    /// walk).
    pub fn from_parsed_with_leaf(e: &zachetka_formats::event::ParsedEntry, leaf_hash: [u8; 32]) -> Self {
        Self::from_value(e.meta.seq, e.meta.recorded_at_unix, &e.event, leaf_hash)
    }

    /// The fact the models fold, when the event is in the vocabulary.
    pub fn fact(&self) -> Option<Fact<'_>> {
        let t = self.typed.as_ref()?;
        Some(Fact {
            seq: self.seq,
            recorded_at: self.recorded_at,
            stream: t.part(0),
            event_type: t.event_type,
            id: t.part(1),
            occurred_at: t.part(2),
            occurred_secs: t.occurred_secs,
            author: t.part(3),
            event: &t.event,
            imported: t.imported.as_ref(),
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

#[cfg(test)]
mod tests {
    use super::ParsedFact;
    use serde_json::{json, Value};

    /// Well-formed entries whose data exercise every kind of field: strings (one escaped, one
    /// Cyrillic), integers, marks as integers and words, optional fields present and absent,
    /// lists, nested records, a list of records, `migrated_from` and `v`.
    fn valid() -> Vec<(String, &'static str, Value)> {
        let l = "learner/47-1".to_owned();
        let q = "queue/kg/t-1".to_owned();
        vec![
            (
                l.clone(),
                "journal.grade_recorded",
                json!({"institution": "sch-1", "class": "5А", "subject": "Физика",
                "mark": 5, "scale": "five_point", "weight": 3, "kind": "test", "lesson_date": "2026-11-02", "v": 1}),
            ),
            (
                l.clone(),
                "journal.grade_recorded",
                json!({"institution": "sch-1", "class": "5\"А", "subject": "m",
                "mark": "зачтено", "scale": "pass_fail", "weight": 1, "kind": "t", "lesson_date": "2026-11-02",
                "migrated_from": {"system": "BARS", "record": "r-1"}, "v": {"any": [1, 2.5, null]}}),
            ),
            (
                l.clone(),
                "journal.attendance_marked",
                json!({"institution": "sch-1", "class": "5А",
                "lesson_date": "2026-11-02", "code": "Н"}),
            ),
            (
                l.clone(),
                "journal.record_corrected",
                json!({"institution": "sch-1", "class": "5А",
                "corrected_event_id": "e-1", "reason": "typo", "authorised_by": "did:key:z", "mark": 4,
                "scale": "five_point"}),
            ),
            (
                l.clone(),
                "journal.retake_recorded",
                json!({"debt_id": "d", "institution": "i", "class": "c",
                "held_on": "2026-01-01", "mark": -3, "scale": "s", "commission": ["k1", "k2"]}),
            ),
            (
                q.clone(),
                "queue.application_submitted",
                json!({"application_id": "a", "number": "N", "learner": "47-1",
                "birth_month": "2023-02", "desired_date": "2026-09-01", "preferred": ["kg-1", "kg-2"],
                "group_type": "general"}),
            ),
            (
                q.clone(),
                "queue.allocation_started",
                json!({"run_id": "r", "kind": "main", "places": [
                {"kindergarten": "kg-1", "age_group": "3-4", "group_type": "general", "places": 12}]}),
            ),
            (
                "registry".to_owned(),
                "keys.granted",
                json!({"key": "did:key:z", "holder": "p", "roles": ["teacher"],
                "scope": {"institution": "sch-1", "class": "5А"}, "valid_from": "2026-01-01T00:00:00Z"}),
            ),
            (
                "completeness".to_owned(),
                "ledger.completeness_committed",
                json!({"up_to": 9_223_372_036_854_775_807i64,
                "map_root": "AAAA", "learners": 0}),
            ),
        ]
    }

    fn entry(stream: &str, event_type: &str, data: &Value) -> String {
        let event = json!({"author": "did:key:z6Mk", "data": data, "id": "0193a1d2-7c4e-7b1a-9f00-00000000002a",
            "ledger": "x", "occurred_at": "2026-11-02T09:00:00Z", "stream": stream, "type": event_type});
        json!({"event": event, "recorded_at": "2026-11-02T09:00:01Z", "seq": 7, "sig": "s"}).to_string()
    }

    /// Every way `data` can be bent: each field removed, set to null, a float, an empty string,
    /// an overlong string, a huge integer, an object, a long list; an unknown field added.
    fn mutations(data: &Value) -> Vec<Value> {
        let o = data.as_object().unwrap();
        let mut out = Vec::new();
        let values = [
            Value::Null,
            json!(2.5),
            json!(""),
            json!("x".repeat(513)),
            json!("x".repeat(512)),
            json!(u64::MAX),
            json!(-1),
            json!({"system": "S", "record": "R"}),
            json!(vec!["k"; 257]),
            json!(vec!["k"; 256]),
            json!([]),
            json!(["k", 1]),
            json!("ok"),
        ];
        for k in o.keys() {
            let mut m = o.clone();
            m.remove(k);
            out.push(Value::Object(m));
            for v in &values {
                let mut m = o.clone();
                m.insert(k.clone(), v.clone());
                out.push(Value::Object(m));
            }
        }
        for k in ["unknown", "migrated_from", "v"] {
            for v in &values {
                let mut m = o.clone();
                m.insert(k.to_owned(), v.clone());
                out.push(Value::Object(m));
            }
        }
        out
    }

    fn same_or_refused(bytes: &str) {
        let leaf = [7; 32];
        let json = ParsedFact::from_entry_json(bytes.as_bytes(), leaf);
        if let Some(fast) = ParsedFact::from_entry_fast(bytes.as_bytes(), leaf) {
            assert_eq!(Ok(&fast), json.as_ref(), "{bytes}");
        }
        assert_eq!(ParsedFact::from_entry(bytes.as_bytes()).ok().map(|p| p.typed), json.ok().map(|p| p.typed));
    }

    #[test]
    fn the_fast_path_reads_what_the_json_path_reads_or_leaves_it_to_it() {
        let mut checked = 0;
        for (stream, event_type, data) in valid() {
            let bytes = entry(&stream, event_type, &data);
            let fast = ParsedFact::from_entry_fast(bytes.as_bytes(), [7; 32]).unwrap_or_else(|| panic!("{bytes}"));
            assert!(fast.fact().is_some(), "{bytes}");
            same_or_refused(&bytes);
            for m in mutations(&data) {
                same_or_refused(&entry(&stream, event_type, &m));
                checked += 1;
            }
            // A field twice: the JSON path keeps the last; the fast path leaves it to it.
            let twice = bytes.replacen("\"data\":{", "\"data\":{\"v\":1,\"v\":2,", 1);
            same_or_refused(&twice);
            let twice = bytes.replacen("\"stream\":", "\"stream\":\"x\",\"stream\":", 1);
            same_or_refused(&twice);
            // Escapes in the envelope and in the data.
            same_or_refused(&bytes.replace("did:key:z6Mk", "did:key:\\u007a6Mk"));
            same_or_refused(&bytes.replace("sch-1", "sch\\u002d1"));
            // The type unknown, or not a string; the envelope without a field.
            same_or_refused(&bytes.replace(event_type, "no.such_type"));
            same_or_refused(&bytes.replace("\"author\":\"did:key:z6Mk\"", "\"author\":5"));
            same_or_refused(&bytes.replace("\"author\":\"did:key:z6Mk\",", ""));
            // The stored form as the ledger writes it (the stream's chain after `sig`), read on
            // the fast path.
            for tail in [r#""stream_prev":null,"stream_version":0}"#, r#""stream_prev":"LTSR+/=","stream_version":12}"#]
            {
                let stored = format!("{},{tail}", bytes.strip_suffix('}').unwrap());
                assert!(ParsedFact::from_entry_fast(stored.as_bytes(), [7; 32]).is_some(), "{stored}");
                same_or_refused(&stored);
                for bent in envelope_bends(&stored) {
                    same_or_refused(&bent);
                }
                // A byte that is not UTF-8 in a skipped field: not read on the fast path (serde's
                // `Value` path, which does not look inside the fields it skips, decides).
                let mut bytes = stored.replacen("\"sig\":\"s\"", "\"sig\":\"s~\"", 1).into_bytes();
                let tilde = bytes.iter().position(|b| *b == b'~').unwrap();
                bytes[tilde] = 0xff;
                assert!(ParsedFact::from_entry_fast(&bytes, [7; 32]).is_none());
                let json = ParsedFact::from_entry_json(&bytes, [7; 32]);
                assert_eq!(ParsedFact::from_entry_with_leaf(&bytes, [7; 32]), json);
            }
        }
        assert!(checked > 500, "{checked}");
    }

    /// The entry's text bent where the fast path's scanner reads it: whitespace, numbers JSON
    /// writes otherwise or not at all, skipped fields of every kind of value, a field twice,
    /// escapes and brackets inside strings, control characters, bytes after the end, cut short.
    fn envelope_bends(stored: &str) -> Vec<String> {
        let mut out = vec![
            stored.replacen("\"seq\":7", "\"seq\": 7", 1),
            stored.replacen("\"seq\":7", "\"seq\":07", 1),
            stored.replacen("\"seq\":7", "\"seq\":7.0", 1),
            stored.replacen("\"seq\":7", "\"seq\":-7", 1),
            stored.replacen("\"seq\":7", "\"seq\":18446744073709551616", 1),
            stored.replacen("\"seq\":7", "\"seq\":18446744073709551615", 1),
            stored.replacen("\"seq\":7", "\"seq\":0", 1),
            stored.replacen("\"seq\":7", "\"seq\":\"7\"", 1),
            stored.replacen("\"seq\":7,", "", 1),
            stored.replacen("\"seq\":7", "\"seq\":7,\"seq\":8", 1),
            stored.replacen("\"recorded_at\":", "\"recorded_at\":\"x\",\"recorded_at\":", 1),
            stored.replacen("\"event\":{", "\"event\":{\"id\":\"x\",", 1),
            stored.replacen("\"event\":{", "\"event\":{\"data\":{},", 1),
            stored.replacen("\"event\":{", "\"event\":{\"extra\":[1,{\"a\":\"}\"}],", 1),
            stored.replacen("\"event\":{", "\"event\":{\"extra\":true,", 1),
            stored.replacen("\"event\":{", "\"event\":{\"extra\":nul,", 1),
            stored.replacen("\"sig\":\"s\"", "\"sig\":{\"s\":1}", 1),
            stored.replacen("\"sig\":\"s\"", "\"sig\":\"s\\\"\"", 1),
            stored.replacen("\"sig\":\"s\"", "\"sig\":\"s\u{1}\"", 1),
            stored.replacen("\"sig\":\"s\"", "\"sig\":\"s\u{7f}\u{410}\"", 1),
            stored.replacen("\"sig\":\"s\"", "\"sig\":null", 1),
            stored.replacen("\"sig\":\"s\"", "\"sig\":5e3", 1),
            stored.replacen("\"stream\":\"", "\"stream\":\"\\u0041", 1),
            stored.replacen("\"stream\":\"", "\"stream\":\"\u{1}", 1),
            stored.replacen("\"data\":{", "\"data\":{\"v\":\"}{]\\\"\",", 1),
            stored.replacen("\"data\":{", "\"data\":{\"v\":\"\u{1}\",", 1),
            stored.replacen("\"data\":{", "\"data\":{\"v\":[}],", 1),
            stored.replacen("\"data\":{", "\"data\":[{", 1),
            stored.replacen("\"data\":{", "\"data\":\"x\",\"y\":{", 1),
            format!("{stored} "),
            format!("{stored}}}"),
            format!(" {stored}"),
            stored[..stored.len() - 1].to_owned(),
            stored[..stored.len() / 2].to_owned(),
            "{}".to_owned(),
            "{\"seq\":1}".to_owned(),
        ];
        out.retain(|b| b != stored);
        out
    }

    #[test]
    fn an_entry_that_is_not_json_or_has_no_time_is_an_error() {
        assert!(ParsedFact::from_entry(b"{").is_err());
        let bytes = entry("registry", "keys.revoked", &json!({"key": "k", "reason": "r"}));
        assert!(ParsedFact::from_entry(bytes.replace("2026-11-02T09:00:01Z", "yesterday").as_bytes()).is_err());
        let p = ParsedFact::from_entry(bytes.as_bytes()).unwrap();
        let f = p.fact().unwrap();
        assert_eq!((f.seq, f.stream, f.event_type, f.author), (7, "registry", "keys.revoked", "did:key:z6Mk"));
        assert_eq!(f.id, "0193a1d2-7c4e-7b1a-9f00-00000000002a");
        assert_eq!(f.occurred_at, "2026-11-02T09:00:00Z");
        assert_eq!(p.leaf_hash, zachetka_formats::merkle::leaf_hash(bytes.as_bytes()).0);
    }
}
