//! The exporter's pure part: given the entries that concern a learner, the registry and a
//! checkpoint, decide what is disclosed and withheld (FORMAT.md section 7), pick the registry
//! entries that make each disclosed author's authority chain and the institutions'
//! registrations (curricula, programmes) and lessons the disclosed entries name (section 4), and assemble the
//! bundle with one inclusion proof per item and the learner's completeness value (section 6) as
//! the ledger answered it. Not how the entries are found (the root crate reads its store and the
//! `profiles` read model), not which commitment is the latest (the read side), and not the
//! checks (`verify`).

use crate::bundle::{Bundle, CompletenessMember, DisclosureNote, Item, FORMAT, VERSION};
use crate::disclosure::Disclosure;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use zachetka_formats::checkpoint;
use zachetka_formats::event::leaf_hash;

/// What the exporter reads of an entry: its position and the event's fields it decides by.
struct Parsed<'a> {
    seq: u64,
    event: EventFields<'a>,
}

/// The entry as the exporter reads it, borrowed from its bytes: members it does not read are
/// skipped without being built.
#[derive(Deserialize)]
struct StoredEntry<'a> {
    #[serde(borrow)]
    event: EventFields<'a>,
}

/// The event's names and the data fields that name a key, an institution or another event. A
/// field of another JSON type than a string (an object for `data` and `scope`) reads as absent.
#[derive(Deserialize, Default)]
#[serde(default)]
struct EventFields<'a> {
    #[serde(borrow, rename = "type", deserialize_with = "text")]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    author: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "object")]
    data: DataFields<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DataFields<'a> {
    #[serde(borrow, deserialize_with = "text")]
    institution: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    kindergarten: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    from_institution: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    to_institution: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    from_kindergarten: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    to_kindergarten: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    issuer: Option<Cow<'a, str>>,
    /// A queue application's preferred kindergartens.
    #[serde(borrow, deserialize_with = "texts")]
    preferred: Vec<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    corrected_event_id: Option<Cow<'a, str>>,
    /// The ids a revoking or closing entry names what it revokes or closes by.
    #[serde(borrow, deserialize_with = "text")]
    achievement_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    application_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    debt_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    old_key: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    new_key: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "object")]
    scope: ScopeFields<'a>,
    /// A college curriculum or an additional-education programme.
    #[serde(borrow, deserialize_with = "text")]
    program_id: Option<Cow<'a, str>>,
    /// The key that authorised a correction.
    #[serde(borrow, deserialize_with = "text")]
    authorised_by: Option<Cow<'a, str>>,
    /// The keys of a retake's commission.
    #[serde(borrow, deserialize_with = "texts")]
    commission: Vec<Cow<'a, str>>,
    /// A lesson's, a mark's or an attendance mark's class, subject and date (a mark is given at
    /// the lesson of its class, subject and date).
    #[serde(borrow, deserialize_with = "text")]
    class: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    lesson_date: Option<Cow<'a, str>>,
    /// An allocation run's id (its start and finish).
    #[serde(borrow, deserialize_with = "text")]
    run_id: Option<Cow<'a, str>>,
    /// The kindergartens an allocation run declares places in (`places[].kindergarten`).
    #[serde(deserialize_with = "place_kindergartens")]
    places: Vec<String>,
}

/// `places[].kindergarten` of an allocation run's start; any other shape (a 1st-grade count of
/// places) reads as none.
fn place_kindergartens<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let places = v.as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(places.iter().filter_map(|p| p["kindergarten"].as_str().map(str::to_owned)).collect())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScopeFields<'a> {
    #[serde(borrow, deserialize_with = "text")]
    institution: Option<Cow<'a, str>>,
}

/// A string, borrowed when it has no escapes; any other value reads as `None`.
fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(Text)
}

/// The strings of an array (other elements skipped); any other value reads as empty.
fn texts<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Vec<Cow<'a, str>>, D::Error> {
    struct Texts;
    impl<'de> Visitor<'de> for Texts {
        type Value = Vec<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(t) = seq.next_element::<Lenient<'de>>()? {
                out.extend(t.0);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
        fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Texts)
}

/// One array element read by [`text`].
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d).map(Lenient)
    }
}

/// An object read as `T`; any other value reads as `T::default()`.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    struct Object<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(T::default())
        }
        fn visit_borrowed_str<E>(self, _: &'de str) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_str<E>(self, _: &str) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_bool<E>(self, _: bool) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_u64<E>(self, _: u64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_unit<E>(self) -> Result<T, E> {
            Ok(T::default())
        }
    }
    d.deserialize_any(Object(std::marker::PhantomData))
}
use zachetka_formats::merkle::Hash;
use zachetka_projections::completeness::{LearnerValue, MapProof, ValueJson};

/// What the exporter starts from. Entries are `(seq, canonical entry bytes)`, ascending, all
/// below the checkpoint's tree size.
pub struct ExportInput<'a> {
    pub origin: &'a str,
    pub verifier_key: &'a str,
    pub learner: &'a str,
    /// The signed checkpoint note every proof is against.
    pub checkpoint: &'a [u8],
    /// Every entry that concerns the learner (`Concerns`), ascending by seq, read once
    /// ([`Concerned::parse`]).
    pub concerned: &'a Concerned<'a>,
    /// The `registry` stream below the checkpoint, ascending (a superset of what is needed).
    pub registry: &'a [(u64, Vec<u8>)],
    /// Registrations and lessons on institution streams below the checkpoint, ascending: at
    /// least those [`authority_wanted`] names for `concerned` (others
    /// are ignored).
    pub registrations: &'a [(u64, Vec<u8>)],
    pub disclosure: &'a Disclosure,
    /// The learner's value in the latest completeness commitment below the checkpoint, when
    /// the ledger has made one (the bundle's `completeness` is `null` otherwise).
    pub completeness: Option<CompletenessInput<'a>>,
}

/// What the ledger's read side answers for the bundle's `completeness` member
/// (`ReadSide::completeness_for`), with the commitment entry's stored bytes.
pub struct CompletenessInput<'a> {
    /// The commitment entry's seq (`S`, below the checkpoint's tree size).
    pub commitment_seq: u64,
    /// The commitment entry's canonical bytes, as stored.
    pub commitment_entry: &'a [u8],
    /// `P`: the commitment covers every entry with seq < `P`.
    pub up_to: u64,
    pub value: LearnerValue,
    pub map_proof: &'a MapProof,
}

/// Why a bundle could not be made (the store's data is at fault, never the learner's choice).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("couldn't parse entry {seq}: {message}")]
    Entry { seq: u64, message: String },
    #[error("the checkpoint note is not a checkpoint")]
    Checkpoint,
    #[error("entry {seq} is not below the checkpoint's tree size {tree_size}")]
    BeyondCheckpoint { seq: u64, tree_size: u64 },
    #[error("the registry holds no ledger.established at seq 0")]
    NoEstablishment,
    #[error("couldn't prove entry {seq}: {message}")]
    Proof { seq: u64, message: String },
}

fn name<'v>(field: &'v Option<Cow<'_, str>>) -> Option<&'v str> {
    field.as_deref()
}

fn event_type<'v>(e: &'v Parsed) -> &'v str {
    name(&e.event.ty).unwrap_or("")
}

/// The data fields that name an institution (a school, a kindergarten...).
fn institutions<'v>(d: &'v DataFields) -> impl Iterator<Item = &'v str> {
    [
        &d.institution,
        &d.kindergarten,
        &d.from_institution,
        &d.to_institution,
        &d.from_kindergarten,
        &d.to_kindergarten,
        &d.issuer,
    ]
    .into_iter()
    .filter_map(name)
}

/// The registration on its institution's stream that a learner's entry of type `ty` names by
/// `data.program_id`, which the rules need to judge it: a college admission's curriculum, a club
/// enrolment's (or leaving's) programme.
fn registration_for(ty: &str) -> Option<&'static str> {
    match ty {
        "contingent.admitted" => Some("college.curriculum_registered"),
        "additional.enrolled" | "additional.left" => Some("additional.program_registered"),
        _ => None,
    }
}

/// A registration an entry of the learner names (FORMAT.md section 4, the authority part): on
/// `stream` (`institution/<id>`), of type `ty`, with `data.program_id` equal to `program`, at a
/// seq below `before` (the first entry naming it: the rules accept none naming a programme not
/// registered yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub stream: String,
    pub ty: &'static str,
    pub program: String,
    pub before: u64,
}

fn parse_stored(seq: u64, bytes: &[u8]) -> Result<EventFields<'_>, ExportError> {
    let stored: StoredEntry = serde_json::from_slice(bytes)
        .map_err(|e| ExportError::Entry { seq, message: format!("not an entry with an event object: {e}") })?;
    Ok(stored.event)
}

/// The lesson a learner's mark or attendance mark was given at (FORMAT.md section 4, the
/// authority part): the `journal.lesson_held` on `institution/<institution>` of `class`,
/// `subject` (any subject when `None`: attendance marked for the day) and `date`, at a seq below
/// `before` (the first entry given at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonWanted {
    pub institution: String,
    pub class: String,
    pub subject: Option<String>,
    pub date: String,
    pub before: u64,
}

/// Whether an entry of type `ty` is given at a lesson.
fn given_at_lesson(ty: &str) -> bool {
    matches!(ty, "journal.grade_recorded" | "journal.attendance_marked")
}

/// What the authority part needs besides the registry (FORMAT.md section 4): the registrations
/// and the lessons the entries of `concerned` name, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorityWanted {
    /// The registrations (curricula, programmes), for the caller to find on the institutions'
    /// streams and hand back among [`ExportInput::registrations`].
    pub registrations: Vec<Wanted>,
    /// The lessons the marks and attendance marks were given at, for the caller to find and
    /// hand back among [`ExportInput::registrations`].
    pub lessons: Vec<LessonWanted>,
    /// The allocation runs the learner's offers and transfers were made in, for the caller to
    /// find (the run's start, the last below the decision on its queue stream, and its finish)
    /// and hand back among [`ExportInput::registrations`].
    pub runs: Vec<RunWanted>,
}

/// The allocation run open when a queue decision that takes a place was made (FORMAT.md section
/// 4, the authority part): the last `queue.allocation_started` on `stream` below `decision`, and
/// the `queue.allocation_finished` of the same run after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWanted {
    pub stream: String,
    pub decision: u64,
}

/// Whether an entry of type `ty` takes a place declared by an allocation run (the rules check the
/// run's free places for it).
fn takes_a_place(ty: &str) -> bool {
    matches!(ty, "queue.place_offered" | "queue.transferred")
}

/// Whether `entry` is an allocation run's start or finish, and which: its stream, type and run id.
pub fn run_entry_of(entry: &[u8]) -> Option<(String, &'static str, String)> {
    let e = parse_stored(0, entry).ok()?;
    let ty = ["queue.allocation_started", "queue.allocation_finished"].into_iter().find(|t| name(&e.ty) == Some(*t))?;
    Some((name(&e.stream)?.to_owned(), ty, name(&e.data.run_id)?.to_owned()))
}

/// The entries that concern a learner, as stored, each read once for both the registrations
/// and lessons they name ([`authority_wanted`]) and the bundle ([`export`]): a learner may have
/// thousands of marks.
pub struct Concerned<'a> {
    raw: &'a [(u64, Vec<u8>)],
    parsed: Vec<Parsed<'a>>,
}

impl<'a> Concerned<'a> {
    /// Reads the fields the exporter decides by from each of `raw` (`(seq, canonical entry
    /// bytes)`, ascending).
    pub fn parse(raw: &'a [(u64, Vec<u8>)]) -> Result<Self, ExportError> {
        let parsed = raw
            .iter()
            .map(|(seq, bytes)| Ok(Parsed { seq: *seq, event: parse_stored(*seq, bytes)? }))
            .collect::<Result<_, ExportError>>()?;
        Ok(Concerned { raw, parsed })
    }
}

/// The registrations and lessons the entries of `concerned` name.
pub fn authority_wanted(concerned: &Concerned) -> AuthorityWanted {
    let mut out = AuthorityWanted::default();
    let mut seen_lessons: HashSet<(&str, &str, Option<&str>, &str)> = HashSet::new();
    for Parsed { seq, event: e } in &concerned.parsed {
        let Some(ty) = name(&e.ty) else { continue };
        let d = &e.data;
        if let (Some(ty), Some(institution), Some(program)) =
            (registration_for(ty), name(&d.institution), name(&d.program_id))
        {
            let stream = format!("institution/{institution}");
            if !out.registrations.iter().any(|w| w.stream == stream && w.ty == ty && w.program == program) {
                out.registrations.push(Wanted { stream, ty, program: program.to_owned(), before: *seq });
            }
        }
        if takes_a_place(ty) {
            if let Some(stream) = name(&e.stream) {
                out.runs.push(RunWanted { stream: stream.to_owned(), decision: *seq });
            }
        }
        if !given_at_lesson(ty) {
            continue;
        }
        let (Some(institution), Some(class), Some(date)) = (name(&d.institution), name(&d.class), name(&d.lesson_date))
        else {
            continue;
        };
        let subject = name(&d.subject);
        if seen_lessons.insert((institution, class, subject, date)) {
            out.lessons.push(LessonWanted {
                institution: institution.to_owned(),
                class: class.to_owned(),
                subject: subject.map(str::to_owned),
                date: date.to_owned(),
                before: *seq,
            });
        }
    }
    out
}

/// Whether `entry` is a registration of the kind [`Wanted`] names, and which: its stream, type
/// and `data.program_id`. Anything unreadable is none.
pub fn registration_of(entry: &[u8]) -> Option<(String, &'static str, String)> {
    let e = parse_stored(0, entry).ok()?;
    let ty = ["college.curriculum_registered", "additional.program_registered"]
        .into_iter()
        .find(|t| name(&e.ty) == Some(*t))?;
    Some((name(&e.stream)?.to_owned(), ty, name(&e.data.program_id)?.to_owned()))
}

/// Builds the bundle. `prove(seq, tree_size)` answers the RFC 9162 inclusion proof of `seq`.
pub fn export<'a>(
    input: &'a ExportInput,
    prove: impl Fn(u64, u64) -> Result<Vec<Hash>, String>,
) -> Result<Bundle, ExportError> {
    let (_, head) = checkpoint::parse_unverified(input.checkpoint).ok_or(ExportError::Checkpoint)?;
    let tree_size = head.tree_size;
    // The store checked each entry against its stored leaf hash on read; the canonical form is
    // the verifier's to check, so reading the fields it decides by is enough to choose and to
    // close the chain.
    let parse = |(seq, bytes): &'a (u64, Vec<u8>)| -> Result<Parsed<'a>, ExportError> {
        if *seq >= tree_size {
            return Err(ExportError::BeyondCheckpoint { seq: *seq, tree_size });
        }
        Ok(Parsed { seq: *seq, event: parse_stored(*seq, bytes)? })
    };
    let concerned = &input.concerned.parsed;
    if let Some(e) = concerned.iter().find(|e| e.seq >= tree_size) {
        return Err(ExportError::BeyondCheckpoint { seq: e.seq, tree_size });
    }
    let disclosed = choose(concerned, input.learner, input.disclosure);

    // The authority chain: every registry entry about a key or institution the disclosed entries
    // (and the registrations they name) need, closed over the authors of those entries themselves.
    let registry: Vec<Parsed> = input.registry.iter().map(parse).collect::<Result<_, _>>()?;
    if registry.first().map(|e| (e.seq, event_type(e))) != Some((0, "ledger.established")) {
        return Err(ExportError::NoEstablishment);
    }
    let mut about_key: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut about_institution: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in registry.iter().enumerate() {
        let d = &e.event.data;
        match event_type(e) {
            "keys.granted" | "keys.revoked" => {
                if let Some(k) = name(&d.key) {
                    about_key.entry(k).or_default().push(i);
                }
            }
            "keys.rotated" => {
                for k in [&d.old_key, &d.new_key].into_iter().filter_map(name) {
                    about_key.entry(k).or_default().push(i);
                }
            }
            "registry.institution_registered" => {
                if let Some(id) = name(&d.institution) {
                    about_institution.entry(id).or_default().push(i);
                }
            }
            _ => {}
        }
    }
    // The registrations the disclosed entries name, the first of each (the rules refuse a second).
    let registrations: Vec<Parsed> = input.registrations.iter().map(parse).collect::<Result<_, _>>()?;
    let mut registration: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, e) in registrations.iter().enumerate() {
        if let (Some(stream), Some(program)) = (name(&e.event.stream), name(&e.event.data.program_id)) {
            registration.entry((stream, event_type(e), program)).or_insert(i);
        }
    }
    // The lessons the disclosed marks were given at, the first of each (what the rules find), by
    // the institution whose stream holds them.
    let mut lesson: HashMap<(&str, &str, &str, &str), usize> = HashMap::new();
    let mut lesson_of_day: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, e) in registrations.iter().enumerate().filter(|(_, e)| event_type(e) == "journal.lesson_held") {
        let d = &e.event.data;
        let institution = name(&e.event.stream).and_then(|s| s.strip_prefix("institution/"));
        if let (Some(institution), Some(class), Some(subject), Some(date)) =
            (institution, name(&d.class), name(&d.subject), name(&d.lesson_date))
        {
            lesson.entry((institution, class, subject, date)).or_insert(i);
            lesson_of_day.entry((institution, class, date)).or_insert(i);
        }
    }
    // The allocation runs' starts and finishes, by queue stream, ascending.
    let runs: Vec<(usize, &str, &str, &str)> = registrations
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(event_type(e), "queue.allocation_started" | "queue.allocation_finished"))
        .filter_map(|(i, e)| Some((i, name(&e.event.stream)?, event_type(e), name(&e.event.data.run_id)?)))
        .collect();
    let mut registered: BTreeSet<usize> = BTreeSet::new();
    let mut keys: Vec<String> = Vec::new();
    let mut institutions: Vec<String> = Vec::new();
    for (e, _) in concerned.iter().zip(&disclosed).filter(|(_, d)| **d) {
        let d = &e.event.data;
        if let (Some(ty), Some(institution), Some(program)) =
            (registration_for(event_type(e)), name(&d.institution), name(&d.program_id))
        {
            let stream = format!("institution/{institution}");
            if let Some(&i) = registration.get(&(stream.as_str(), ty, program)) {
                if registered.insert(i) {
                    keys.extend(name(&registrations[i].event.author).map(str::to_owned));
                }
            }
        }
        if let (true, Some(institution), Some(class), Some(date)) =
            (given_at_lesson(event_type(e)), name(&d.institution), name(&d.class), name(&d.lesson_date))
        {
            let found = match name(&d.subject) {
                Some(subject) => lesson.get(&(institution, class, subject, date)),
                None => lesson_of_day.get(&(institution, class, date)),
            };
            if let Some(&i) = found.filter(|&&i| registrations[i].seq < e.seq) {
                if registered.insert(i) {
                    keys.extend(name(&registrations[i].event.author).map(str::to_owned));
                }
            }
        }
        if let (true, Some(stream)) = (takes_a_place(event_type(e)), name(&e.event.stream)) {
            // The run open at the decision: its start (the last below it on the stream) and the
            // finish of that run after it.
            let start = runs.iter().rfind(|(i, s, ty, _)| {
                *s == stream && *ty == "queue.allocation_started" && registrations[*i].seq < e.seq
            });
            if let Some(&(i, _, _, run)) = start {
                let finish = runs.iter().find(|(j, s, ty, r)| {
                    *s == stream && *ty == "queue.allocation_finished" && *r == run && registrations[*j].seq > e.seq
                });
                for k in std::iter::once(i).chain(finish.map(|f| f.0)) {
                    if registered.insert(k) {
                        keys.extend(name(&registrations[k].event.author).map(str::to_owned));
                        institutions.extend(registrations[k].event.data.places.iter().cloned());
                    }
                }
            }
        }
        // Keys the rules judge besides the author's: who authorised a correction, a commission.
        keys.extend(name(&d.authorised_by).map(str::to_owned));
        keys.extend(d.commission.iter().map(|k| k.to_string()));
        keys.extend(name(&e.event.author).map(str::to_owned));
        institutions.extend(self::institutions(&e.event.data).map(str::to_owned));
        institutions.extend(e.event.data.preferred.iter().map(|p| p.to_string()));
        if let Some(id) = name(&e.event.stream).and_then(|s| s.strip_prefix("institution/")) {
            institutions.push(id.to_owned());
        }
    }
    let mut chosen: BTreeSet<usize> = BTreeSet::from([0]);
    let (mut seen_keys, mut seen_institutions) = (HashSet::new(), HashSet::new());
    while !keys.is_empty() || !institutions.is_empty() {
        while let Some(id) = institutions.pop() {
            if seen_institutions.insert(id.clone()) {
                chosen.extend(about_institution.get(id.as_str()).into_iter().flatten());
            }
        }
        while let Some(k) = keys.pop() {
            if !seen_keys.insert(k.clone()) {
                continue;
            }
            for &i in about_key.get(k.as_str()).into_iter().flatten() {
                if chosen.insert(i) {
                    let e = &registry[i];
                    keys.extend(name(&e.event.author).map(str::to_owned));
                    let d = &e.event.data;
                    keys.extend([&d.old_key, &d.new_key].into_iter().filter_map(name).map(str::to_owned));
                    institutions.extend(name(&d.scope.institution).map(str::to_owned));
                }
            }
        }
    }

    let proof = |seq: u64| prove(seq, tree_size).map_err(|message| ExportError::Proof { seq, message });
    let mut entries = Vec::with_capacity(concerned.len());
    for ((seq, bytes), show) in input.concerned.raw.iter().zip(&disclosed) {
        let p = proof(*seq)?;
        entries.push(if *show {
            Item::disclosed(*seq, bytes, &p)
        } else {
            Item::withheld(*seq, &leaf_hash(bytes), &p)
        });
    }
    let mut carried: Vec<&(u64, Vec<u8>)> = chosen.into_iter().map(|i| &input.registry[i]).collect();
    carried.extend(registered.into_iter().map(|i| &input.registrations[i]));
    carried.sort_unstable_by_key(|(seq, _)| *seq);
    carried.dedup_by_key(|(seq, _)| *seq);
    let mut authority = Vec::with_capacity(carried.len());
    for (seq, bytes) in carried {
        authority.push(Item::disclosed(*seq, bytes, &proof(*seq)?));
    }
    let completeness = match &input.completeness {
        None => None,
        Some(c) => {
            let seq = c.commitment_seq;
            if seq >= tree_size {
                return Err(ExportError::BeyondCheckpoint { seq, tree_size });
            }
            Some(CompletenessMember {
                commitment: Item::disclosed(seq, c.commitment_entry, &proof(seq)?),
                up_to: c.up_to,
                value: ValueJson::from(c.value),
                map_proof: serde_json::to_value(c.map_proof).expect("a map proof serializes"),
            })
        }
    };
    Ok(Bundle {
        format: FORMAT.to_owned(),
        version: VERSION,
        origin: input.origin.to_owned(),
        verifier_key: input.verifier_key.to_owned(),
        learner: input.learner.to_owned(),
        checkpoint: String::from_utf8_lossy(input.checkpoint).into_owned(),
        disclosure: DisclosureNote { only: input.disclosure.choices() },
        entries,
        authority,
        completeness,
    })
}

/// Which of the concerned entries are disclosed: chosen by type; a correction with what it
/// corrects, and an entry that revokes, withdraws or closes another with it (`undoes`); a queue
/// or 1st-grade application or offer whenever an entry of another stream than the learner's is
/// disclosed (the verifier's `Concerns` needs them to place the rest).
fn choose(concerned: &[Parsed], learner: &str, disclosure: &Disclosure) -> Vec<bool> {
    let own = format!("learner/{learner}");
    let mut shown = vec![false; concerned.len()];
    let mut shown_ids: HashSet<&str> = HashSet::new();
    // What the disclosed entries are named by when another entry undoes them.
    let mut targets: HashSet<(&'static str, String)> = HashSet::new();
    let mut other_stream_shown = false;
    for (i, e) in concerned.iter().enumerate() {
        let ty = event_type(e);
        let corrects_shown = ty == "journal.record_corrected"
            && name(&e.event.data.corrected_event_id).is_some_and(|id| shown_ids.contains(id));
        let undoes_shown = undoes(e).is_some_and(|t| targets.contains(&t));
        if disclosure.chooses(ty) || corrects_shown || undoes_shown {
            shown[i] = true;
            shown_ids.insert(name(&e.event.id).unwrap_or(""));
            targets.extend(undone_as(e));
            other_stream_shown |= name(&e.event.stream) != Some(own.as_str());
        }
    }
    if other_stream_shown {
        for (i, e) in concerned.iter().enumerate() {
            let ty = event_type(e);
            if matches!(ty, "queue.application_submitted" | "enrolment.application_submitted" | "queue.place_offered") {
                shown[i] = true;
                targets.extend(undone_as(e));
            }
        }
        // The applications just disclosed take their withdrawals with them.
        for (i, e) in concerned.iter().enumerate() {
            if undoes(e).is_some_and(|t| targets.contains(&t)) {
                shown[i] = true;
            }
        }
    }
    shown
}

/// What an entry revokes, withdraws or closes, as `(the target's type, the key naming it)`: an
/// achievement's revocation its attestation, a queue application's withdrawal the application, a
/// retake the academic debt it is for, leaving a club programme the enrolment in it, an
/// expulsion the admission to the institution. The exporter never withholds one of these while
/// it discloses its target (FORMAT.md section 7), as it never withholds a correction.
fn undoes(e: &Parsed) -> Option<(&'static str, String)> {
    let d = &e.event.data;
    let (target, key) = match event_type(e) {
        "portfolio.achievement_revoked" => ("portfolio.achievement_attested", name(&d.achievement_id)?.to_owned()),
        "queue.application_withdrawn" => ("queue.application_submitted", name(&d.application_id)?.to_owned()),
        "journal.retake_recorded" => ("journal.academic_debt_opened", name(&d.debt_id)?.to_owned()),
        "additional.left" => ("additional.enrolled", format!("{}\n{}", name(&d.institution)?, name(&d.program_id)?)),
        "contingent.expelled" => ("contingent.admitted", name(&d.institution)?.to_owned()),
        _ => return None,
    };
    Some((target, key))
}

/// The key an entry is named by when another `undoes` it (the other half of `undoes`).
fn undone_as(e: &Parsed) -> Option<(&'static str, String)> {
    let d = &e.event.data;
    match event_type(e) {
        "portfolio.achievement_attested" => {
            Some(("portfolio.achievement_attested", name(&d.achievement_id)?.to_owned()))
        }
        "queue.application_submitted" => Some(("queue.application_submitted", name(&d.application_id)?.to_owned())),
        "journal.academic_debt_opened" => Some(("journal.academic_debt_opened", name(&d.debt_id)?.to_owned())),
        "additional.enrolled" => {
            Some(("additional.enrolled", format!("{}\n{}", name(&d.institution)?, name(&d.program_id)?)))
        }
        "contingent.admitted" => Some(("contingent.admitted", name(&d.institution)?.to_owned())),
        _ => None,
    }
}
