//! The vocabulary's records read straight from JSON text by serde, with no `serde_json::Value`
//! tree in between: the read side's fast path (`model::ParsedFact::from_entry`). It accepts a
//! subset of what `vocabulary::Record::from_object` accepts and, when it accepts, gives the same
//! record: non-empty strings of at most `STRING_LEN_MAX` bytes, integers that fit an `i64`,
//! marks as integers or strings, lists of at most `LIST_LEN_MAX` items, no unknown field, no
//! `null` for an optional one, and no field twice (a `Value` keeps the last of two; here that is
//! an error, and the caller falls back to the `Value` path, which then decides).
//! Not the judge of what an event may say (the rules), and not the error messages a writer sees
//! (those are `Record::from_object`'s): an error here only says "take the slow path".

use crate::vocabulary::{Mark, MigratedFrom, LIST_LEN_MAX, STRING_LEN_MAX};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A field value read strictly. `absent` is what a missing field is: `None` (an error) for a
/// required field, `Some(None)` for an optional one.
pub trait StrictField: Sized {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;

    fn absent() -> Option<Self> {
        None
    }
}

/// `T` read through `StrictField`, as serde's `Deserialize`.
pub struct Strict<T>(pub T);

impl<'de, T: StrictField> de::Deserialize<'de> for Strict<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::read(d).map(Strict)
    }
}

fn checked<E: de::Error>(s: &str) -> Result<(), E> {
    if s.is_empty() {
        return Err(E::custom("empty string"));
    }
    if s.len() > STRING_LEN_MAX {
        return Err(E::custom("string too long"));
    }
    Ok(())
}

struct StringVisitor;

impl Visitor<'_> for StringVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-empty string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        checked(s)?;
        Ok(s.to_owned())
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        checked(&s)?;
        Ok(s)
    }
}

impl StrictField for String {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StringVisitor)
    }
}

impl StrictField for i64 {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde's own: an integer in range; a float, a string or an u64 above i64::MAX is an
        // error, as `Value::as_i64` gives none for them.
        <i64 as de::Deserialize>::deserialize(d)
    }
}

struct MarkVisitor;

impl Visitor<'_> for MarkVisitor {
    type Value = Mark;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a non-empty string")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Mark, E> {
        Ok(Mark(n.to_string()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Mark, E> {
        Ok(Mark(n.to_string()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Mark, E> {
        StringVisitor.visit_str(s).map(Mark)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Mark, E> {
        StringVisitor.visit_string(s).map(Mark)
    }
}

impl StrictField for Mark {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MarkVisitor)
    }
}

impl<T: StrictField> StrictField for Option<T> {
    /// Present: the value must be a `T` (`null` is not).
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::read(d).map(Some)
    }

    fn absent() -> Option<Self> {
        Some(None)
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: StrictField> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(LIST_LEN_MAX));
        while let Some(Strict(item)) = seq.next_element::<Strict<T>>()? {
            if items.len() == LIST_LEN_MAX {
                return Err(de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

impl<T: StrictField> StrictField for Vec<T> {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// A record's fields read from a JSON object. `top` is the event's `data` object, which may
/// also hold `v` (any value, not kept) and `migrated_from` (returned beside the record).
pub trait StrictRecord: Sized {
    fn from_map<'de, A: MapAccess<'de>>(map: A, top: bool) -> Result<(Self, Option<MigratedFrom>), A::Error>;
}

struct RecordVisitor<R> {
    top: bool,
    record: PhantomData<R>,
}

impl<'de, R: StrictRecord> Visitor<'de> for RecordVisitor<R> {
    type Value = (R, Option<MigratedFrom>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        R::from_map(map, self.top)
    }
}

/// A nested record (`scope`, a row of `places`, `migrated_from`).
pub fn read_nested<'de, R: StrictRecord, D: Deserializer<'de>>(d: D) -> Result<R, D::Error> {
    d.deserialize_map(RecordVisitor { top: false, record: PhantomData }).map(|(r, _)| r)
}

/// An event's `data` object as the record `R`, with its `migrated_from`.
pub fn read_data<'de, R: StrictRecord, D: Deserializer<'de>>(d: D) -> Result<(R, Option<MigratedFrom>), D::Error> {
    d.deserialize_map(RecordVisitor { top: true, record: PhantomData })
}

/// A field name: which of `names` it is (`names.len()` for `v`, `names.len() + 1` for
/// `migrated_from` when `top`), or an error for any other. Borrows the key: no allocation.
pub struct Key<'n> {
    pub names: &'n [&'static str],
    pub top: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<usize, E> {
        if let Some(i) = self.names.iter().position(|n| *n == k) {
            return Ok(i);
        }
        match k {
            "v" if self.top => Ok(self.names.len()),
            crate::vocabulary::MIGRATED_FROM if self.top => Ok(self.names.len() + 1),
            _ => Err(E::custom("not a field of this record")),
        }
    }
}

/// Reads the value of `v` (ignored) or `migrated_from` (kept once) of a top-level record; the
/// index is what `Key` gave past the record's own fields.
pub fn extra<'de, A: MapAccess<'de>>(
    map: &mut A,
    past: usize,
    v_seen: &mut bool,
    migrated: &mut Option<MigratedFrom>,
) -> Result<(), A::Error> {
    if past == 0 {
        if std::mem::replace(v_seen, true) {
            return Err(de::Error::custom("v twice"));
        }
        map.next_value::<IgnoredAny>()?;
    } else {
        if migrated.is_some() {
            return Err(de::Error::custom("migrated_from twice"));
        }
        *migrated = Some(map.next_value::<Strict<MigratedFrom>>()?.0);
    }
    Ok(())
}

/// A required field that was never given.
pub fn missing<E: de::Error>(name: &str) -> E {
    E::custom(format_args!("{name} is missing"))
}

/// A field given twice.
pub fn twice<E: de::Error>(name: &str) -> E {
    E::custom(format_args!("{name} twice"))
}
