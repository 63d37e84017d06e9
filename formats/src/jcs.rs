//! RFC 8785 (JCS) canonical JSON for the zachetka profile: objects, arrays, strings, integers
//! within ±(2^53-1), and (in entries only) `null`; W3C credentials (`Profile::Document`) may also
//! hold `true`/`false` and `null`. It is not a general JSON serializer: floats are refused in
//! every profile, because JCS number formatting is the interop trap DESIGN 3.1 rules out.

use serde_json::Value;
use std::fmt::Write as _;

/// The largest integer every JSON implementation (IEEE-754 doubles) represents exactly.
pub const SAFE_INTEGER_MAX: i64 = (1 << 53) - 1;

/// How deep objects and arrays may nest in a canonical document.
pub const DEPTH_MAX: usize = 32;

/// Why a value has no canonical form in our profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    #[error("number {0} is not an integer (signed payloads carry integers and strings only)")]
    NotAnInteger(String),
    #[error("integer {0} is outside ±(2^53-1)")]
    IntegerOutOfRange(String),
    #[error("{0} is not allowed in a signed payload (integers and strings only)")]
    TypeNotAllowed(&'static str),
    #[error("nesting deeper than {DEPTH_MAX} levels")]
    TooDeep,
}

/// What a canonicalization pass admits besides objects, arrays, strings and integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// An event: integers and strings only (DESIGN 3.1).
    Event,
    /// An entry: the event plus log metadata, where `stream_prev` may be `null`.
    Entry,
    /// A document secured by someone else's rules (a W3C credential, `vc.rs`): `null`, `true` and
    /// `false` too, whose JCS forms are fixed literals. Floats stay refused: RFC 8785 formats
    /// them as ECMAScript does, which serde_json's formatting does not match in every case, and
    /// a wrong canonical form would be a wrong answer rather than a refusal.
    Document,
}

/// Appends the canonical form of `value` to `out`.
pub fn write_canonical(value: &Value, profile: Profile, out: &mut String) -> Result<(), CanonError> {
    write_value(value, profile, out, 0)
}

/// The canonical form of `value` as UTF-8 bytes.
pub fn to_canonical(value: &Value, profile: Profile) -> Result<Vec<u8>, CanonError> {
    let mut out = String::with_capacity(512);
    write_canonical(value, profile, &mut out)?;
    Ok(out.into_bytes())
}

fn write_value(v: &Value, profile: Profile, out: &mut String, depth: usize) -> Result<(), CanonError> {
    if depth > DEPTH_MAX {
        return Err(CanonError::TooDeep);
    }
    match v {
        Value::Null => match profile {
            Profile::Entry | Profile::Document => out.push_str("null"),
            Profile::Event => return Err(CanonError::TypeNotAllowed("null")),
        },
        Value::Bool(b) => match profile {
            Profile::Document => out.push_str(if *b { "true" } else { "false" }),
            Profile::Event | Profile::Entry => return Err(CanonError::TypeNotAllowed("a boolean")),
        },
        Value::Number(n) => {
            let i = n.as_i64().ok_or_else(|| match n.as_u64() {
                Some(_) => CanonError::IntegerOutOfRange(n.to_string()),
                None => CanonError::NotAnInteger(n.to_string()),
            })?;
            if !(-SAFE_INTEGER_MAX..=SAFE_INTEGER_MAX).contains(&i) {
                return Err(CanonError::IntegerOutOfRange(n.to_string()));
            }
            write!(out, "{i}").expect("writing to a String cannot fail");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, profile, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, profile, out, depth)?,
    }
    Ok(())
}

/// Appends the canonical form of an object held as a map (no clone into a `Value` needed).
pub fn write_canonical_object(
    map: &serde_json::Map<String, Value>,
    profile: Profile,
    out: &mut String,
) -> Result<(), CanonError> {
    write_object(map, profile, out, 0)
}

fn write_object(
    map: &serde_json::Map<String, Value>,
    profile: Profile,
    out: &mut String,
    depth: usize,
) -> Result<(), CanonError> {
    // RFC 8785 3.2.3: sort by UTF-16 code units, not by UTF-8 bytes or chars.
    let mut keys: Vec<(&String, &Value)> = map.iter().collect();
    if !in_utf16_order(&keys) {
        keys.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    out.push('{');
    for (i, (k, item)) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        write_value(item, profile, out, depth + 1)?;
    }
    out.push('}');
    Ok(())
}

/// Whether keys in the map's order are already in UTF-16 code unit order: they are in strictly
/// increasing byte order (as a `BTreeMap` keeps them) and none holds a character from U+E000 up
/// (UTF-8 lead byte 0xEE or above), below which byte order and UTF-16 order agree. The sort is
/// skipped then (every event's keys are ASCII).
fn in_utf16_order(keys: &[(&String, &Value)]) -> bool {
    keys.windows(2).all(|w| w[0].0.as_bytes() < w[1].0.as_bytes())
        && keys.iter().all(|(k, _)| k.bytes().all(|b| b < 0xEE))
}

/// ECMAScript `JSON.stringify` string escaping (RFC 8785 3.2.2.2). Runs of characters that need
/// no escape are copied whole (a byte below 0x20, `"` or `\\` is always a whole character).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x09 => "\\t",
            0x0A => "\\n",
            0x0C => "\\f",
            0x0D => "\\r",
            0x00..=0x1F => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        match escape {
            "" => write!(out, "\\u{b:04x}").expect("writing to a String cannot fail"),
            e => out.push_str(e),
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc8785_escaping_example() {
        // RFC 8785 3.2.2.2 string example (numbers left out: floats are outside our profile).
        let v: Value = serde_json::from_str(r#"{"escaping":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}"#).unwrap();
        let got = String::from_utf8(to_canonical(&v, Profile::Event).unwrap()).unwrap();
        assert_eq!(got, r#"{"escaping":"€$\u000f\nA'B\"\\\\\"/"}"#);
    }

    /// The escaping as RFC 8785 spells it, one character at a time.
    fn write_string_reference(s: &str) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{08}' => out.push_str("\\b"),
                '\u{09}' => out.push_str("\\t"),
                '\u{0A}' => out.push_str("\\n"),
                '\u{0C}' => out.push_str("\\f"),
                '\u{0D}' => out.push_str("\\r"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn strings_escape_as_the_reference_and_keys_sort_by_utf16() {
        let pieces = [
            "",
            "a",
            "\"",
            "\\",
            "\u{0}",
            "\u{1f}",
            "\u{7f}",
            "\n",
            "\r\t\u{8}\u{c}",
            "€",
            "Ж",
            "\u{e000}",
            "\u{ffff}",
            "😀",
            "/",
        ];
        let mut strings = Vec::new();
        for a in pieces {
            for b in pieces {
                for c in ["", "x", "\u{b}", "ё"] {
                    strings.push(format!("{a}{c}{b}"));
                }
            }
        }
        for s in &strings {
            let mut out = String::new();
            write_string(s, &mut out);
            assert_eq!(out, write_string_reference(s), "{s:?}");
        }
        // Every pair of these as keys of one object: the order is UTF-16's, byte order agreeing or not.
        for a in &strings {
            for b in ["zz", "\u{e000}", "\u{ffff}", "😀", "a😀", "a\u{ffff}"] {
                let mut m = serde_json::Map::new();
                m.insert(a.clone(), json!(1));
                m.insert(b.to_owned(), json!(2));
                let got = String::from_utf8(to_canonical(&Value::Object(m.clone()), Profile::Event).unwrap()).unwrap();
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by(|x, y| x.encode_utf16().cmp(y.encode_utf16()));
                let want: Vec<String> =
                    keys.iter().map(|k| format!("{}:{}", write_string_reference(k), m[k.as_str()])).collect();
                assert_eq!(got, format!("{{{}}}", want.join(",")), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn rfc8785_sorting_example() {
        // RFC 8785 3.2.3: keys sorted by UTF-16 code units.
        let v: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let got = String::from_utf8(to_canonical(&v, Profile::Event).unwrap()).unwrap();
        let order: Vec<&str> = vec!["\r", "1", "\u{80}", "\u{f6}", "\u{20ac}", "\u{1f600}", "\u{fb33}"];
        let mut pos = 0;
        for k in order {
            let needle = serde_json::to_string(k).unwrap();
            let needle = if k == "\r" { "\"\\r\"".to_string() } else { needle };
            let at = got[pos..].find(&needle).unwrap_or_else(|| panic!("{k:?} out of order in {got}"));
            pos += at + needle.len();
        }
    }

    #[test]
    fn refuses_what_the_profile_excludes() {
        assert!(matches!(to_canonical(&json!({"a": 1.5}), Profile::Event), Err(CanonError::NotAnInteger(_))));
        assert!(matches!(
            to_canonical(&json!({"a": 9007199254740992u64}), Profile::Event),
            Err(CanonError::IntegerOutOfRange(_))
        ));
        assert!(matches!(
            to_canonical(&json!({"a": -9007199254740992i64}), Profile::Event),
            Err(CanonError::IntegerOutOfRange(_))
        ));
        assert!(matches!(to_canonical(&json!({"a": true}), Profile::Event), Err(CanonError::TypeNotAllowed(_))));
        assert!(matches!(to_canonical(&json!({"a": null}), Profile::Event), Err(CanonError::TypeNotAllowed(_))));
        assert_eq!(to_canonical(&json!({"a": null}), Profile::Entry).unwrap(), br#"{"a":null}"#);
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert_eq!(to_canonical(&deep, Profile::Event), Err(CanonError::TooDeep));
    }

    #[test]
    fn documents_admit_literals_but_never_floats() {
        assert_eq!(
            to_canonical(&json!({"b": false, "a": true, "n": null}), Profile::Document).unwrap(),
            br#"{"a":true,"b":false,"n":null}"#
        );
        assert!(matches!(to_canonical(&json!({"a": true}), Profile::Entry), Err(CanonError::TypeNotAllowed(_))));
        assert!(matches!(to_canonical(&json!({"a": 0.5}), Profile::Document), Err(CanonError::NotAnInteger(_))));
        assert!(matches!(to_canonical(&json!([1e300]), Profile::Document), Err(CanonError::NotAnInteger(_))));
    }

    #[test]
    fn safe_integer_bounds_are_kept() {
        let v = json!({"z": 9007199254740991i64, "a": -9007199254740991i64});
        assert_eq!(to_canonical(&v, Profile::Event).unwrap(), br#"{"a":-9007199254740991,"z":9007199254740991}"#);
    }
}

/// Parses JSON text, refusing duplicate object keys (two parsers that keep different duplicates
/// would see different signed content) and nesting deeper than [`DEPTH_MAX`].
pub fn parse_strict(text: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = StrictSeed(0).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct StrictSeed(usize);

impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor(self.0))
    }
}

struct StrictVisitor(usize);

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.0 >= DEPTH_MAX {
            return Err(serde::de::Error::custom(format!("nesting deeper than {DEPTH_MAX} levels")));
        }
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed(self.0 + 1))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.0 >= DEPTH_MAX {
            return Err(serde::de::Error::custom(format!("nesting deeper than {DEPTH_MAX} levels")));
        }
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(StrictSeed(self.0 + 1))?;
            if out.insert(k.clone(), v).is_some() {
                return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod strict_tests {
    #[test]
    fn duplicate_keys_are_refused() {
        let e = super::parse_strict(br#"{"a":1,"b":{"c":1,"c":2}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"c\""), "{e}");
        assert!(super::parse_strict(br#"{"a":1} x"#).is_err());
        assert_eq!(super::parse_strict(br#"{"a":[1,"x"]}"#).unwrap(), serde_json::json!({"a":[1,"x"]}));
    }
}
