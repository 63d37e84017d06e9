//! What the journal, diary and record-book models share: compact event ids, a record with its
//! correction history and current value, a learner's sheet in one subject of one class (marks,
//! attendance, term, year and attestation grades, the weighted average as integers), the
//! academic year a dated record counts in, and the JSON shapes those render to.
//! Not a read model itself, and no policy on which events go where: each model decides that.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fmt;
use std::hash::BuildHasher;

/// An event id as state keeps it: a canonical lowercase UUID as its 16 bytes (fixed width in
/// postcard, no heap allocation on load, instead of a 36-byte string), any other id as written.
/// Displays exactly as the event gave it.
/// (`Other` holds a `Box<str>`, which encodes as a `String` does: 24 bytes in memory, not 32.
/// The UUID's bytes encode as one byte string, which loads as one copy, not sixteen fields.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventId {
    Uuid(#[serde(with = "bytes16")] [u8; 16]),
    Other(Box<str>),
}

/// Sixteen bytes as a serde byte string (postcard: a length byte and the bytes).
mod bytes16 {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        struct Sixteen;
        impl Visitor<'_> for Sixteen {
            type Value = [u8; 16];

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("16 bytes")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; 16], E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Sixteen)
    }
}

impl EventId {
    pub fn of(id: &str) -> Self {
        match parse_uuid(id) {
            Some(bits) => EventId::Uuid(bits.to_be_bytes()),
            None => EventId::Other(id.into()),
        }
    }
}

/// The bits of a lowercase UUID in its canonical 8-4-4-4-12 form; `None` for anything else (so
/// that displaying the bits gives back exactly the same string).
fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if *c != b'-' {
                return None;
            }
            continue;
        }
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        bits = (bits << 4) | u128::from(digit);
    }
    Some(bits)
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventId::Uuid(bytes) => {
                let b = u128::from_be_bytes(*bytes);
                write!(
                    f,
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    b >> 96,
                    (b >> 80) & 0xffff,
                    (b >> 64) & 0xffff,
                    (b >> 48) & 0xffff,
                    b & 0xffff_ffff_ffff
                )
            }
            EventId::Other(s) => f.write_str(s),
        }
    }
}

/// The value under `key`, inserted empty first if absent. Allocates the key only on insertion,
/// so the common case (the key exists) costs two lookups and no allocation.
pub fn slot<'m, V: Default>(map: &'m mut std::collections::BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// A short string interned in a model's `Symbols` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sym(pub u32);

/// A list of names held in one string (each name where `ends` says), so a table of 200,000
/// learner ids is two allocations, not 200,000. Encodes as a sequence of strings, exactly as a
/// `Vec<String>` does, and loads from one without a string allocated per name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    text: String,
    ends: Vec<u32>,
}

impl Names {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..end])
    }

    pub fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(u32::try_from(self.text.len()).expect("names fit in 4 GiB"));
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i).expect("in range"))
    }
}

impl Serialize for Names {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq;
        impl<'de> serde::de::Visitor<'de> for Seq {
            type Value = Names;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of strings")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Names::default();
                names.ends.reserve(seq.size_hint().unwrap_or(0));
                while let Some(Name(n)) = seq.next_element::<Name<'de>>()? {
                    names.push(&n);
                }
                Ok(names)
            }
        }
        d.deserialize_seq(Seq)
    }
}

/// One name as serde gives it: borrowed from the input when it can be (postcard's always is).
struct Name<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> serde::de::Visitor<'de> for Str {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Str)
    }
}

/// Where each of a list of names sits in it, found by hash: the table keeps positions, and a
/// name of up to 15 bytes (a learner id, a date) inline beside its position, so finding it is one
/// probe of the table, not a probe and two reads of the list (a miss each, in a table of every
/// learner); a longer name is compared against the list. A name is held once in the list (a
/// map keyed by it would hold a second copy). Hashed with std's keyed SipHash: names come from
/// the log, and a fixed hash would let crafted ids collide.
#[derive(Debug, Clone, Default)]
struct Positions {
    table: hashbrown::HashTable<Slot>,
    hasher: std::hash::RandomState,
}

/// A position in the list, with its name inline when it is short.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: u32,
    /// The name's length when it is inline (at most `INLINE`), else `u8::MAX`.
    len: u8,
    bytes: [u8; INLINE],
}

const INLINE: usize = 15;

impl Slot {
    fn new(at: u32, name: &str) -> Self {
        let mut bytes = [0u8; INLINE];
        let len = if name.len() <= INLINE {
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            name.len() as u8
        } else {
            u8::MAX
        };
        Slot { at, len, bytes }
    }

    fn is(&self, names: &Names, name: &str) -> bool {
        if self.len != u8::MAX {
            return name.len() == self.len as usize && &self.bytes[..name.len()] == name.as_bytes();
        }
        name.len() > INLINE && names.get(self.at as usize) == Some(name)
    }
}

impl Positions {
    fn find(&self, names: &Names, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.table.find(hash, |s| s.is(names, name)).map(|s| s.at)
    }

    /// Adds `names[i]`, which must not be in the table yet.
    fn insert(&mut self, names: &Names, i: u32) {
        let Positions { table, hasher } = self;
        let name = |j: u32| names.get(j as usize).expect("a listed name");
        let slot = Slot::new(i, name(i));
        table.insert_unique(hasher.hash_one(name(i)), slot, |s| hasher.hash_one(name(s.at)));
    }

    /// Indexes every name of `names`; a name listed twice is refused.
    fn rebuild(&mut self, names: &Names) -> Result<(), String> {
        self.table.clear();
        self.table.reserve(names.len(), |_| 0);
        for (i, n) in names.iter().enumerate() {
            if self.find(names, n).is_some() {
                return Err(format!("{n:?} is listed twice"));
            }
            self.insert(names, i as u32);
        }
        Ok(())
    }
}

/// A model's table of the short strings its records repeat (marks, attendance codes, kinds of
/// work, scales, dates): each row keeps a small integer instead of four heap strings, so state
/// is a fraction of the size and loads without an allocation per field. Names are kept in order
/// of first appearance (so two builds from the same entries encode the same); the index is not
/// encoded (nor iterated: its order reaches no state bytes and no view) and is rebuilt by
/// `reindex` after a load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Symbols {
    names: Names,
    #[serde(skip)]
    index: Positions,
    #[serde(skip)]
    recent: Recent,
}

/// The symbols last interned, by a cheap mix of a name's length and its first and last bytes:
/// the records of one lesson repeat their institution, class, subject, scale, kind and date, and
/// a hit is one comparison where a lookup in the index is a keyed hash of the name. A miss (or a
/// stale slot) falls through to the index, so the cache changes no answer; it is not encoded.
#[derive(Debug, Clone)]
struct Recent([u32; RECENT]);

const RECENT: usize = 64;

impl Default for Recent {
    fn default() -> Self {
        Recent([0; RECENT])
    }
}

impl Recent {
    fn slot(name: &str) -> usize {
        let b = name.as_bytes();
        let word = |part: &[u8]| {
            let mut w = [0u8; 8];
            w[..part.len()].copy_from_slice(part);
            u64::from_le_bytes(w)
        };
        let (head, tail) = (word(&b[..b.len().min(8)]), word(&b[b.len().saturating_sub(8)..]));
        let mixed = (head ^ tail.rotate_left(29) ^ b.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 58) as usize
    }
}

impl PartialEq for Symbols {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

impl Eq for Symbols {}

impl Symbols {
    /// The symbol of `name`, if interned.
    pub fn get(&self, name: &str) -> Option<Sym> {
        self.index.find(&self.names, name).map(Sym)
    }

    pub fn intern(&mut self, name: &str) -> Sym {
        let slot = Recent::slot(name);
        let seen = self.recent.0[slot];
        if seen != 0 && self.names.get(seen as usize - 1) == Some(name) {
            return Sym(seen - 1);
        }
        let i = self.intern_id(name);
        self.recent.0[slot] = i.0.checked_add(1).unwrap_or(0);
        i
    }

    /// `intern` without the cache of recent symbols: for a table of ids that seldom come back
    /// to back (learner ids, one per mark of a lesson's class), where a look at the cache is a
    /// read of the list (a miss, in a table of every learner) that almost never hits.
    pub fn intern_id(&mut self, name: &str) -> Sym {
        match self.index.find(&self.names, name) {
            Some(i) => Sym(i),
            None => {
                let i = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct short strings");
                self.names.push(name);
                self.index.insert(&self.names, i);
                Sym(i)
            }
        }
    }

    /// The string of `s`; `?` for a symbol outside the table, which only bytes this model did
    /// not build can hold (a view of such state shows it rather than panicking).
    pub fn name(&self, s: Sym) -> &str {
        self.names.get(s.0 as usize).unwrap_or("?")
    }

    /// How many names the table holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Rebuilds the reverse index after a load; a table naming one string twice is refused, as
    /// `intern` never builds one.
    pub fn reindex(&mut self) -> Result<(), String> {
        self.index.rebuild(&self.names).map_err(|e| format!("symbol table: {e}"))
    }
}

/// Values keyed by a string id (a learner id), stored in a vector in order of the ids' first
/// appearance: a lookup is one hash of the id and an index, not a walk down an ordered map of
/// every learner, and the encoded bytes are the ids then the values, canonical like any vector.
/// The index (`Positions`) is rebuilt by `reindex` after a load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keyed<V> {
    ids: Names,
    values: Vec<V>,
    #[serde(skip)]
    index: Positions,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Self { ids: Names::default(), values: Vec::new(), index: Positions::default() }
    }
}

impl<V: PartialEq> PartialEq for Keyed<V> {
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids && self.values == other.values
    }
}

impl<V: Eq> Eq for Keyed<V> {}

impl<V: Default> Keyed<V> {
    /// The value of `id`, created empty on its first appearance.
    pub fn slot(&mut self, id: &str) -> &mut V {
        self.slot_at(id).1
    }

    /// `slot`, with the id's position (its index in order of first appearance).
    pub fn slot_at(&mut self, id: &str) -> (u32, &mut V) {
        let i = match self.index.find(&self.ids, id) {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.values.len()).expect("fewer than 2^32 ids");
                self.ids.push(id);
                self.values.push(V::default());
                self.index.insert(&self.ids, i);
                i
            }
        };
        (i, &mut self.values[i as usize])
    }
}

impl<V> Keyed<V> {
    /// How many ids the table holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Ids and values in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.ids.iter().zip(&self.values)
    }

    /// The values, by position.
    pub fn values(&self) -> &[V] {
        &self.values
    }

    /// The values, by position, to change in place.
    pub fn values_mut(&mut self) -> &mut [V] {
        &mut self.values
    }

    pub fn get(&self, id: &str) -> Option<&V> {
        self.index.find(&self.ids, id).map(|i| &self.values[i as usize])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        self.index.find(&self.ids, id).map(|i| &mut self.values[i as usize])
    }

    /// Rebuilds the id index after a load and checks that ids and values pair up, each id once.
    pub fn reindex(&mut self) -> Result<(), String> {
        if self.ids.len() != self.values.len() {
            return Err(format!("{} ids for {} values", self.ids.len(), self.values.len()));
        }
        self.index.rebuild(&self.ids).map_err(|e| format!("id {e}"))
    }
}

/// One `journal.record_corrected` as applied to the record it (or the correction it names)
/// corrects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub seq: u64,
    pub event: EventId,
    /// The event the correction names: the record itself or an earlier correction of it.
    pub corrects: EventId,
    /// The new value (a mark or an attendance code); `None` annuls the record.
    pub value: Option<Sym>,
    pub scale: Option<Sym>,
    pub reason: String,
    pub authorised_by: String,
}

/// A record's corrections in log order: boxed and absent until the first (most records have
/// none, and a row is one of hundreds of thousands), encoded as the list itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corrections(Option<Box<[Correction]>>);

impl Corrections {
    /// Appends (a new slice each time: corrections are rare, and this keeps a record small).
    pub fn push(&mut self, c: Correction) {
        let mut list = self.0.take().map(Vec::from).unwrap_or_default();
        list.push(c);
        self.0 = Some(list.into_boxed_slice());
    }
}

impl std::ops::Deref for Corrections {
    type Target = [Correction];

    fn deref(&self) -> &[Correction] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl Serialize for Corrections {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Corrections {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Correction>::deserialize(d)?;
        Ok(Corrections((!list.is_empty()).then(|| list.into_boxed_slice())))
    }
}

/// A correctable record: its entry, the value it was written with and every correction in log
/// order. The current value is the last correction's (a correction of a correction also sets
/// the record's value: every step names the record's value from then on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corrected {
    pub seq: u64,
    pub event: EventId,
    pub value: Sym,
    pub corrections: Corrections,
    /// The legacy record an imported record comes from (`data.migrated_from`): (system, record).
    /// Boxed (encoded as the pair itself): most records are not imported, and a row is one of
    /// hundreds of thousands.
    pub imported: Option<Box<(String, String)>>,
}

impl Corrected {
    pub fn new(seq: u64, event: &str, value: Sym) -> Self {
        Self { seq, event: EventId::of(event), value, corrections: Corrections::default(), imported: None }
    }

    /// The record as imported from `from` (a migration's `data.migrated_from`), if it was.
    pub fn imported(mut self, from: Option<&crate::vocabulary::MigratedFrom>) -> Self {
        self.imported = from.map(|m| Box::new((m.system.clone(), m.record.clone())));
        self
    }

    /// The value now: the original, or the last correction's; `None` when annulled.
    pub fn current(&self) -> Option<Sym> {
        match self.corrections.last() {
            Some(c) => c.value,
            None => Some(self.value),
        }
    }

    /// The scale of the current value: the last correction that named one, else `written`.
    pub fn current_scale(&self, written: Sym) -> Sym {
        self.corrections.iter().rev().find_map(|c| c.scale).unwrap_or(written)
    }

    /// Whether `id` is this record's event or one of its corrections.
    pub fn answers_to(&self, id: &EventId) -> bool {
        self.event == *id || self.corrections.iter().any(|c| c.event == *id)
    }

    /// The record's JSON fields: `<field>` (current value or null), `annulled`, `original_<field>`,
    /// `event`, `seq` and `corrections` (each step with its event, seq, value, scale, reason,
    /// authoriser and the event it names).
    pub fn json_into(&self, field: &str, syms: &Symbols, out: &mut Map<String, Value>) {
        let name = |s: Option<Sym>| s.map(|s| syms.name(s));
        out.insert(field.to_owned(), json!(name(self.current())));
        out.insert("annulled".to_owned(), json!(self.current().is_none()));
        out.insert(format!("original_{field}"), json!(syms.name(self.value)));
        out.insert("event".to_owned(), json!(self.event.to_string()));
        out.insert("seq".to_owned(), json!(self.seq));
        if let Some(imported) = &self.imported {
            let (system, record) = &**imported;
            out.insert("imported".to_owned(), json!({"system": system, "record": record}));
        }
        let corrections: Vec<Value> = self
            .corrections
            .iter()
            .map(|c| {
                json!({
                    "event": c.event.to_string(),
                    "seq": c.seq,
                    "corrects": c.corrects.to_string(),
                    field: name(c.value),
                    "scale": name(c.scale),
                    "reason": c.reason,
                    "authorised_by": c.authorised_by,
                })
            })
            .collect();
        out.insert("corrections".to_owned(), Value::Array(corrections));
    }
}

/// What a weighted average gets from one mark: (mark x weight, weight) for a numeric current
/// value, nothing for a word mark or an annulled record.
pub fn contribution(value: Option<&str>, weight: i64) -> (i64, i64) {
    match value.and_then(|v| v.parse::<i64>().ok()) {
        Some(m) => (m.saturating_mul(weight), weight),
        None => (0, 0),
    }
}

/// `numerator / denominator` as a decimal string with two digits, rounded half away from zero.
pub fn decimal_2(numerator: i64, denominator: i64) -> String {
    assert!(denominator > 0, "an average over no weight has no value");
    let (n, d) = (i128::from(numerator), i128::from(denominator));
    let hundredths = (n.abs() * 200 + d) / (2 * d);
    let sign = if n < 0 && hundredths != 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The weighted average as JSON: `{"value":"4.33","numerator":13,"denominator":3}`, or null when
/// no numeric mark counts.
pub fn average_json(numerator: i64, denominator: i64) -> Value {
    if denominator == 0 {
        return Value::Null;
    }
    json!({"value": decimal_2(numerator, denominator), "numerator": numerator, "denominator": denominator})
}

/// A mark of the journal (`journal.grade_recorded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRow {
    pub record: Corrected,
    pub kind: Sym,
    pub weight: i64,
    pub scale: Sym,
    pub date: Sym,
}

/// An attendance mark (`journal.attendance_marked`); the value is its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRow {
    pub record: Corrected,
    pub date: Sym,
}

/// A term, year or intermediate-attestation grade: explicit teacher decisions, not averages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeRow {
    pub record: Corrected,
    pub academic_year: i64,
    /// The term of a term grade; `None` for year and attestation grades.
    pub term: Option<i64>,
    pub scale: Sym,
}

/// Which list of a sheet a final grade goes to.
#[derive(Debug, Clone, Copy)]
pub enum GradeKind {
    Term,
    Year,
    Attestation,
}

/// One learner in one subject of one class: what the journal's row and the diary's section both
/// hold. The weighted average is kept as integers, updated on every mark and correction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sheet {
    pub marks: Vec<MarkRow>,
    pub attendance: Vec<AttendanceRow>,
    /// Term, year and attestation grades: a few a year beside hundreds of marks, so boxed and
    /// absent until the first.
    pub grades: Option<Box<Grades>>,
    /// sum(mark x weight) over numeric current marks.
    pub numerator: i64,
    /// sum(weight) over the same marks.
    pub denominator: i64,
}

/// A sheet's term, year and intermediate-attestation grades.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grades {
    pub term: Vec<GradeRow>,
    pub year: Vec<GradeRow>,
    pub attestations: Vec<GradeRow>,
}

/// The academic year (its starting calendar year) a school record dated `date` (`YYYY-MM-DD`)
/// counts in: September to August, by the one calendar rule the queue's age groups use too
/// (`time::academic_year_of`). `None` for a date that is not one (the rules refuse those).
pub fn academic_year_of_date(date: &str) -> Option<i64> {
    crate::time::parse_date(date).map(crate::time::academic_year_of)
}

/// An academic year as a view path gives it: four ASCII digits (`2023` for 2023/24).
pub fn academic_year_segment(segment: &str) -> Option<i64> {
    (segment.len() == 4 && segment.bytes().all(|b| b.is_ascii_digit())).then(|| segment.parse().ok()).flatten()
}

/// A mark row from its event, interning its short strings.
pub fn mark_row(syms: &mut Symbols, f: &crate::model::Fact<'_>, d: &crate::vocabulary::GradeRecorded) -> MarkRow {
    MarkRow {
        record: Corrected::new(f.seq, f.id, syms.intern(&d.mark.0)).imported(f.imported),
        kind: syms.intern(&d.kind),
        weight: d.weight,
        scale: syms.intern(&d.scale),
        date: syms.intern(&d.lesson_date),
    }
}

impl MarkRow {
    /// What the row adds to its sheet's weighted average (`contribution`).
    pub fn contribution(&self, syms: &Symbols) -> (i64, i64) {
        contribution(self.record.current().map(|s| syms.name(s)), self.weight)
    }
}

impl Sheet {
    pub fn add_mark(&mut self, row: MarkRow, syms: &Symbols) {
        let (n, d) = row.contribution(syms);
        self.add_mark_counted(row, n, d);
    }

    /// `add_mark` with the row's contribution already computed (when the symbols and the sheet
    /// are borrowed from one state).
    pub fn add_mark_counted(&mut self, row: MarkRow, numerator: i64, denominator: i64) {
        self.numerator += numerator;
        self.denominator += denominator;
        self.marks.push(row);
    }

    pub fn add_grade(&mut self, kind: GradeKind, row: GradeRow) {
        let grades = self.grades.get_or_insert_with(Default::default);
        match kind {
            GradeKind::Term => grades.term.push(row),
            GradeKind::Year => grades.year.push(row),
            GradeKind::Attestation => grades.attestations.push(row),
        }
    }

    /// Applies a correction to the record of this sheet that `target` names (the record or one
    /// of its corrections), keeping the average in step; `false` when no record here answers to
    /// `target`. Scans the sheet from the newest record: a sheet is one learner in one subject
    /// of one class, and corrections are rare.
    pub fn correct(&mut self, target: &EventId, c: &Correction, syms: &Symbols) -> bool {
        if let Some(row) = self.marks.iter_mut().rev().find(|r| r.record.answers_to(target)) {
            let value = |r: &Corrected| r.current().map(|s| syms.name(s));
            let (n0, d0) = contribution(value(&row.record), row.weight);
            row.record.corrections.push(c.clone());
            let (n1, d1) = contribution(value(&row.record), row.weight);
            self.numerator += n1 - n0;
            self.denominator += d1 - d0;
            return true;
        }
        let grades = self.grades.as_deref_mut().into_iter().flat_map(|g| {
            let term = g.term.iter_mut().rev();
            term.chain(g.year.iter_mut().rev()).chain(g.attestations.iter_mut().rev())
        });
        let record = self
            .attendance
            .iter_mut()
            .rev()
            .map(|r| &mut r.record)
            .chain(grades.map(|r| &mut r.record))
            .find(|r| r.answers_to(target));
        match record {
            Some(r) => {
                r.corrections.push(c.clone());
                true
            }
            None => false,
        }
    }

    pub fn average_json(&self) -> Value {
        average_json(self.numerator, self.denominator)
    }

    /// The sheet as the views show it: marks, attendance, average, term, year and attestation
    /// grades, each item with its entry and corrections.
    pub fn json_into(&self, syms: &Symbols, out: &mut Map<String, Value>) {
        out.insert("marks".to_owned(), Value::Array(self.marks.iter().map(|r| mark_json(r, syms)).collect()));
        let attendance = self.attendance.iter().map(|r| attendance_json(r, syms)).collect();
        out.insert("attendance".to_owned(), Value::Array(attendance));
        out.insert("average".to_owned(), self.average_json());
        self.grades_into(syms, out);
    }

    /// Only the term, year and attestation grades.
    pub fn grades_into(&self, syms: &Symbols, out: &mut Map<String, Value>) {
        let list = |rows: &[GradeRow]| Value::Array(rows.iter().map(|r| grade_json(r, syms)).collect());
        let g = self.grades.as_deref();
        out.insert("term_grades".to_owned(), list(g.map_or(&[], |g| &g.term)));
        out.insert("year_grades".to_owned(), list(g.map_or(&[], |g| &g.year)));
        out.insert("intermediate_attestation".to_owned(), list(g.map_or(&[], |g| &g.attestations)));
    }
}

pub fn mark_json(r: &MarkRow, syms: &Symbols) -> Value {
    let mut o = Map::new();
    r.record.json_into("mark", syms, &mut o);
    o.insert("kind".to_owned(), json!(syms.name(r.kind)));
    o.insert("weight".to_owned(), json!(r.weight));
    o.insert("scale".to_owned(), json!(syms.name(r.record.current_scale(r.scale))));
    o.insert("date".to_owned(), json!(syms.name(r.date)));
    Value::Object(o)
}

pub fn attendance_json(r: &AttendanceRow, syms: &Symbols) -> Value {
    let mut o = Map::new();
    r.record.json_into("code", syms, &mut o);
    o.insert("date".to_owned(), json!(syms.name(r.date)));
    Value::Object(o)
}

pub fn grade_json(r: &GradeRow, syms: &Symbols) -> Value {
    let mut o = Map::new();
    r.record.json_into("mark", syms, &mut o);
    o.insert("academic_year".to_owned(), json!(r.academic_year));
    if let Some(t) = r.term {
        o.insert("term".to_owned(), json!(t));
    }
    o.insert("scale".to_owned(), json!(syms.name(r.record.current_scale(r.scale))));
    Value::Object(o)
}

/// A correction's fields taken from its event, before the model finds the record it targets.
pub fn correction_of(
    syms: &mut Symbols,
    seq: u64,
    id: &str,
    d: &crate::vocabulary::RecordCorrected,
) -> (EventId, Correction) {
    let target = EventId::of(&d.corrected_event_id);
    let value = d.mark.as_ref().map(|m| m.0.as_str()).or(d.code.as_deref()).map(|v| syms.intern(v));
    let c = Correction {
        seq,
        event: EventId::of(id),
        corrects: target.clone(),
        value,
        scale: d.scale.as_deref().map(|s| syms.intern(s)),
        reason: d.reason.clone(),
        authorised_by: d.authorised_by.clone(),
    };
    (target, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_display_as_given_and_others_stay_strings() {
        let u = "0193a1d2-7c4e-7b1a-9f00-00000000002a";
        assert!(matches!(EventId::of(u), EventId::Uuid(_)));
        assert_eq!(EventId::of(u).to_string(), u);
        for other in ["0193A1D2-7C4E-7B1A-9F00-00000000002A", "g193a1d2-7c4e-7b1a-9f00-00000000002a", "ev-1", ""] {
            assert_eq!(EventId::of(other), EventId::Other(other.into()));
            assert_eq!(EventId::of(other).to_string(), other);
        }
    }

    #[test]
    fn decimals_round_half_up_with_two_digits() {
        assert_eq!(decimal_2(13, 3), "4.33");
        assert_eq!(decimal_2(14, 3), "4.67");
        assert_eq!(decimal_2(9, 2), "4.50");
        assert_eq!(decimal_2(1, 8), "0.13"); // 0.125 rounds up
        assert_eq!(decimal_2(-1, 8), "-0.13");
        assert_eq!(decimal_2(4, 1), "4.00");
        assert_eq!(average_json(0, 0), Value::Null);
        assert_eq!(contribution(Some("зачтено"), 5), (0, 0));
        assert_eq!(contribution(None, 5), (0, 0));
        assert_eq!(contribution(Some("4"), 3), (12, 3));
    }

    #[test]
    fn names_encode_as_a_vector_of_strings_and_load_back() {
        let list = ["47-1", "", "Физика", "47-026018"];
        let mut names = Names::default();
        list.iter().for_each(|n| names.push(n));
        let as_vec: Vec<String> = list.iter().map(|n| n.to_string()).collect();
        let bytes = crate::model::encode_state(&names);
        assert_eq!(bytes, crate::model::encode_state(&as_vec));
        let back: Names = crate::model::decode_state("t", &bytes).unwrap();
        assert_eq!(back, names);
        assert_eq!(back.iter().collect::<Vec<_>>(), list);
        assert_eq!((back.get(2), back.get(4)), (Some("Физика"), None));
    }

    #[test]
    fn short_and_long_names_are_found_and_only_they() {
        let names =
            ["", "a", "47-026018", "fifteen-bytes-x", "sixteen-bytes-xx", "a long name of forty bytes, give or take"];
        let mut t = Symbols::default();
        let syms: Vec<Sym> = names.iter().map(|n| t.intern(n)).collect();
        let mut back: Symbols = crate::model::decode_state("t", &crate::model::encode_state(&t)).unwrap();
        back.reindex().unwrap();
        for table in [&t, &back] {
            for (n, s) in names.iter().zip(&syms) {
                assert_eq!(table.get(n), Some(*s), "{n:?}");
                assert_eq!(table.name(*s), *n);
            }
            for absent in [
                "b",
                "47-02601",
                "47-0260188",
                "fifteen-bytes-y",
                "sixteen-bytes-xy",
                "a long name of forty bytes, give or tak",
            ] {
                assert_eq!(table.get(absent), None, "{absent:?}");
            }
        }
        let mut k: Keyed<u32> = Keyed::default();
        for (i, n) in names.iter().enumerate() {
            *k.slot(n) = i as u32;
        }
        assert_eq!(names.iter().map(|n| k.get(n).copied()).collect::<Vec<_>>(), (0..6).map(Some).collect::<Vec<_>>());
        assert_eq!(k.get("sixteen-bytes-xy"), None);
    }

    #[test]
    fn symbols_intern_once_and_reindex_after_load() {
        let mut t = Symbols::default();
        let (a, b) = (t.intern("5"), t.intern("test"));
        assert_eq!(t.intern("5"), a);
        assert_ne!(a, b);
        assert_eq!(t.name(b), "test");
        let mut back: Symbols = crate::model::decode_state("t", &crate::model::encode_state(&t)).unwrap();
        back.reindex().unwrap();
        assert_eq!(back.intern("test"), b);
        assert_eq!(back, t);
        let mut names = Names::default();
        names.push("x");
        names.push("x");
        let twice = Symbols { names, ..Symbols::default() };
        let mut twice: Symbols = crate::model::decode_state("t", &crate::model::encode_state(&twice)).unwrap();
        assert!(twice.reindex().is_err());
    }
}
