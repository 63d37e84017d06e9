//! Migration of a legacy system's history (DOMAIN, Migration; `zachetka import`): records
//! exported from BARS or СОЛО, one JSON object a line, become events signed by a key that holds
//! the `migration` role, each naming its source system and record (`data.migrated_from`).
//! Not the rules (they decide whether the key may import and judge every event as any other)
//! and not the transport (the CLI appends to a ledger directory or a server).
//!
//! An import is idempotent: an event's id is derived from (origin, system, record) and its
//! signature is deterministic (Ed25519), so running the same file again, for example after an
//! interruption, gets the receipts of what is already in the log and appends only the rest.

use crate::keys::KeyPair;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::BufRead;

/// Longest input line: an event is at most 32 KiB canonical (DESIGN 3.1), and a line holds a
/// little more (its own keys, escapes); anything longer is refused before it is parsed.
pub const LINE_LEN_MAX: usize = 64 * 1024;

/// Longest source system name and record id.
pub const NAME_LEN_MAX: usize = 128;

/// Why an input line gives no event. `code` is stable; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LineRefusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> LineRefusal {
    LineRefusal { code, message: message.into() }
}

/// The id of the event importing `record` of `system` into the ledger `origin`: the first 16
/// bytes of SHA-256 over the three, in UUID form.
pub fn event_id(origin: &str, system: &str, record: &str) -> String {
    let mut h = Sha256::new();
    for part in ["zachetka/import/id", origin, system, record] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    let d = h.finalize();
    crate::event::uuid_from_bytes(d[..16].try_into().expect("16 bytes"))
}

/// Turns legacy records into signed events of one ledger, one system and one migration key.
pub struct Importer {
    origin: String,
    system: String,
    key: KeyPair,
    did: String,
    /// Record ids seen in this run: a record twice in one input is a mistake of the export.
    seen: HashSet<String>,
}

impl Importer {
    pub fn new(origin: &str, system: &str, key: KeyPair) -> Result<Self, LineRefusal> {
        check_name("the source system", system)?;
        let did = key.did();
        Ok(Self { origin: origin.to_owned(), system: system.to_owned(), key, did, seen: HashSet::new() })
    }

    /// The record id and the signed event of one input line: `{"record", "type", "stream",
    /// "occurred_at", "data"}` (`data.v` filled with the type's schema version when absent).
    /// Nothing is remembered of a refused line.
    pub fn event(&mut self, line: &[u8]) -> Result<(String, Value), LineRefusal> {
        let (record, event) = self.unsigned(line)?;
        if self.seen.contains(&record) {
            return Err(refuse("import_record_repeated", format!("record {record} came earlier in this input")));
        }
        let signed = crate::event::sign_event_owned(event, &self.key)
            .map_err(|e| refuse("import_line_malformed", format!("the event can't be signed: {e}")))?;
        self.seen.insert(record.clone());
        Ok((record, signed))
    }

    fn unsigned(&self, line: &[u8]) -> Result<(String, Value), LineRefusal> {
        let value = crate::jcs::parse_strict(line)
            .map_err(|e| refuse("import_line_malformed", format!("the line is not one JSON value: {e}")))?;
        let Value::Object(mut fields) = value else {
            return Err(refuse("import_line_malformed", "the line is not a JSON object"));
        };
        if let Some(k) =
            fields.keys().find(|k| !["record", "type", "stream", "occurred_at", "data"].contains(&k.as_str()))
        {
            return Err(refuse(
                "import_line_malformed",
                format!("unknown field {k} (a line has record, type, stream, occurred_at and data)"),
            ));
        }
        let mut text = |name: &str| -> Result<String, LineRefusal> {
            match fields.remove(name) {
                Some(Value::String(s)) => Ok(s),
                Some(_) => Err(refuse("import_line_malformed", format!("{name} is not a string"))),
                None => Err(refuse("import_line_malformed", format!("{name} is missing"))),
            }
        };
        let (record, ty, stream, occurred_at) = (text("record")?, text("type")?, text("stream")?, text("occurred_at")?);
        check_name("record", &record)?;
        if !zachetka_projections::vocabulary::MIGRATABLE_TYPES.contains(&ty.as_str()) {
            return Err(refuse(
                "import_type_not_migratable",
                format!(
                    "{ty} is not a type a migration imports ({})",
                    zachetka_projections::vocabulary::MIGRATABLE_TYPES.join(", ")
                ),
            ));
        }
        if crate::time::parse_instant(&occurred_at).is_none() {
            return Err(refuse(
                "import_line_malformed",
                format!("occurred_at {occurred_at:?} is not an RFC 3339 time"),
            ));
        }
        let mut data: Map<String, Value> = match fields.remove("data") {
            Some(Value::Object(d)) => d,
            Some(_) => return Err(refuse("import_line_malformed", "data is not an object")),
            None => return Err(refuse("import_line_malformed", "data is missing")),
        };
        if data.contains_key(zachetka_projections::vocabulary::MIGRATED_FROM) {
            return Err(refuse(
                "import_line_malformed",
                "data.migrated_from is set by the import (from --system and record), not by the input",
            ));
        }
        if !data.contains_key("v") {
            let v = zachetka_projections::vocabulary::schema_version(&ty).expect("a migratable type is known");
            data.insert("v".into(), v.into());
        }
        data.insert(
            zachetka_projections::vocabulary::MIGRATED_FROM.into(),
            json!({"system": self.system, "record": record}),
        );
        let event = json!({
            "ledger": self.origin,
            "stream": stream,
            "type": ty,
            "id": event_id(&self.origin, &self.system, &record),
            "occurred_at": occurred_at,
            "author": self.did,
            "data": data,
        });
        Ok((record, event))
    }
}

fn check_name(what: &str, s: &str) -> Result<(), LineRefusal> {
    if s.is_empty() || s.len() > NAME_LEN_MAX || s.chars().any(char::is_control) {
        return Err(refuse(
            "import_line_malformed",
            format!("{what} must be 1 to {NAME_LEN_MAX} bytes without control characters"),
        ));
    }
    Ok(())
}

/// The non-blank lines of `input` with their 1-based numbers, each at most [`LINE_LEN_MAX`]
/// bytes: a longer line is refused (`import_line_too_long`) after reading at most that much of
/// it into memory, and the rest of it is skipped.
pub struct Lines<R> {
    input: R,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R) -> Self {
        Self { input, number: 0 }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = std::io::Result<(u64, Result<Vec<u8>, LineRefusal>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut line = Vec::new();
            let read = std::io::Read::take(&mut self.input, LINE_LEN_MAX as u64 + 1).read_until(b'\n', &mut line);
            match read {
                Err(e) => return Some(Err(e)),
                Ok(0) => return None,
                Ok(_) => {}
            }
            self.number += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
            } else if line.len() > LINE_LEN_MAX {
                // Skip the rest of the line without holding it.
                loop {
                    let buf = match self.input.fill_buf() {
                        Ok(b) => b,
                        Err(e) => return Some(Err(e)),
                    };
                    if buf.is_empty() {
                        break;
                    }
                    match buf.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            self.input.consume(i + 1);
                            break;
                        }
                        None => {
                            let n = buf.len();
                            self.input.consume(n);
                        }
                    }
                }
                let refusal = refuse("import_line_too_long", format!("the line is longer than {LINE_LEN_MAX} bytes"));
                return Some(Ok((self.number, Err(refusal))));
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok((self.number, Ok(line))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn importer() -> Importer {
        Importer::new("ru-47.edu.example", "BARS", KeyPair::from_seed(&[7; 32])).unwrap()
    }

    const GRADE: &str = r#"{"record":"m-1","type":"journal.grade_recorded","stream":"learner/47-000001","occurred_at":"2019-03-01T09:00:00Z","data":{"institution":"sch-001","class":"5А","subject":"math","lesson_id":"l-1","mark":5,"scale":"five_point","kind":"lesson","weight":1}}"#;

    #[test]
    fn a_line_becomes_a_signed_import_naming_its_source() {
        let mut im = importer();
        let (record, signed) = im.event(GRADE.as_bytes()).unwrap();
        assert_eq!(record, "m-1");
        let ev = &signed["event"];
        assert_eq!(ev["data"]["migrated_from"], json!({"system": "BARS", "record": "m-1"}));
        assert_eq!(ev["data"]["v"], json!(zachetka_projections::vocabulary::schema_version("journal.grade_recorded")));
        assert_eq!(ev["id"], json!(event_id("ru-47.edu.example", "BARS", "m-1")));
        assert_eq!(ev["author"], json!(KeyPair::from_seed(&[7; 32]).did()));
        assert!(crate::event::is_uuid(ev["id"].as_str().unwrap()));
        // The same line in another run is the same signed event (idempotent import).
        assert_eq!(importer().event(GRADE.as_bytes()).unwrap().1, signed);
        // Twice in one run is the export's mistake.
        assert_eq!(im.event(GRADE.as_bytes()).unwrap_err().code, "import_record_repeated");
        // Another system's record of the same id is another event.
        assert_ne!(event_id("ru-47.edu.example", "СОЛО", "m-1"), event_id("ru-47.edu.example", "BARS", "m-1"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_codes() {
        let cases: &[(&str, &str, &str)] = &[
            ("not json", "import_line_malformed", "not one JSON value"),
            ("[1]", "import_line_malformed", "not a JSON object"),
            (
                r#"{"record":"r","type":"journal.grade_recorded","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":{},"x":1}"#,
                "import_line_malformed",
                "unknown field x",
            ),
            (
                r#"{"type":"journal.grade_recorded","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":{}}"#,
                "import_line_malformed",
                "record is missing",
            ),
            (
                r#"{"record":"","type":"journal.grade_recorded","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":{}}"#,
                "import_line_malformed",
                "record must be",
            ),
            (
                r#"{"record":"r","type":"keys.granted","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":{}}"#,
                "import_type_not_migratable",
                "keys.granted is not a type",
            ),
            (
                r#"{"record":"r","type":"journal.grade_recorded","stream":"s","occurred_at":"yesterday","data":{}}"#,
                "import_line_malformed",
                "occurred_at",
            ),
            (
                r#"{"record":"r","type":"journal.grade_recorded","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":[]}"#,
                "import_line_malformed",
                "data is not an object",
            ),
            (
                r#"{"record":"r","type":"journal.grade_recorded","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":{"migrated_from":{}}}"#,
                "import_line_malformed",
                "set by the import",
            ),
            (
                r#"{"record":"r","record":"q","type":"journal.grade_recorded","stream":"s","occurred_at":"2019-03-01T09:00:00Z","data":{}}"#,
                "import_line_malformed",
                "not one JSON value",
            ),
        ];
        for (line, code, says) in cases {
            let mut im = importer();
            let r = im.event(line.as_bytes()).unwrap_err();
            assert_eq!(r.code, *code, "{line}: {r}");
            assert!(r.message.contains(says), "{line}: {r}");
            // Nothing remembered: the record id is still free.
            assert!(im.seen.is_empty());
        }
        assert!(Importer::new("o", "", KeyPair::from_seed(&[1; 32])).is_err());
    }

    #[test]
    fn lines_are_numbered_bounded_and_blank_ones_skipped() {
        let long = "x".repeat(LINE_LEN_MAX + 10);
        let input = format!("a\n\n  \r\nb\r\n{long}\nc");
        let lines: Vec<(u64, Result<Vec<u8>, LineRefusal>)> =
            Lines::new(std::io::BufReader::with_capacity(1024, input.as_bytes())).map(Result::unwrap).collect();
        let shown: Vec<(u64, Result<&[u8], &str>)> =
            lines.iter().map(|(n, r)| (*n, r.as_ref().map(Vec::as_slice).map_err(|e| e.code))).collect();
        assert_eq!(
            shown,
            vec![(1, Ok(&b"a"[..])), (4, Ok(&b"b"[..])), (5, Err("import_line_too_long")), (6, Ok(&b"c"[..])),]
        );
    }
}
