//! Small pieces the read models share: the entry behind a view item, integer shares with their
//! half-up decimal form, the local date of an event. Not a model.

use crate::model::Fact;
use crate::time::{self, Days};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The entry behind an item: its position and its event's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub seq: u64,
    pub event: String,
}

impl EntryRef {
    pub fn of(fact: &Fact<'_>) -> Self {
        Self { seq: fact.seq, event: fact.id.to_owned() }
    }

    /// `{"event": .., "seq": ..}` for a view body.
    pub fn json(&self) -> Value {
        json!({"event": self.event, "seq": self.seq})
    }
}

/// `numerator / denominator` in percent as a decimal string with `decimals` places, rounded half
/// up; `None` when the denominator is zero.
pub fn percent(numerator: u64, denominator: u64, decimals: u32) -> Option<String> {
    if denominator == 0 {
        return None;
    }
    let scale = 10u128.pow(decimals);
    let (n, d) = (u128::from(numerator) * 100 * scale, u128::from(denominator));
    let scaled = (2 * n + d) / (2 * d);
    let (whole, frac) = (scaled / scale, scaled % scale);
    Some(if decimals == 0 { whole.to_string() } else { format!("{whole}.{frac:0w$}", w = decimals as usize) })
}

/// A share for a view: integer numerator and denominator and the percent with one decimal.
pub fn share(numerator: u64, denominator: u64) -> Value {
    json!({"numerator": numerator, "denominator": denominator, "percent": percent(numerator, denominator, 1)})
}

/// The region's local date of the event's `occurred_at` (`None` if it does not parse, which an
/// entry that passed the rules never has).
pub fn local_date(fact: &Fact<'_>, utc_offset_minutes: i64) -> Option<Days> {
    local_date_at(fact.occurred_at, fact.occurred_secs?, utc_offset_minutes)
}

/// `time::local_date(time::parse_instant(s)?, offset)` in whole seconds and `i64`: the same
/// grammar and answer (a fraction of a second cannot move a day boundary, which falls on whole
/// minutes), without the 128-bit divisions, on every entry two models fold.
pub fn local_date_of(s: &str, utc_offset_minutes: i64) -> Option<Days> {
    local_date_at(s, crate::model::occurred_secs(s)?, utc_offset_minutes)
}

/// `local_date_of(s, ..)` of an instant `s` already read as `secs` (`model::occurred_secs`).
fn local_date_at(s: &str, secs: i64, utc_offset_minutes: i64) -> Option<Days> {
    match utc_offset_minutes.checked_mul(60).and_then(|o| secs.checked_add(o)) {
        Some(local) => Some(local.div_euclid(86_400)),
        // An offset no region has: the exact arithmetic.
        None => time::parse_instant(s).map(|at| time::local_date(at, utc_offset_minutes)),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-built histories for the models' tests.
    use crate::model::{self, Fact, ReadModel};
    use crate::vocabulary::{self, Event};
    use serde_json::Value;

    /// One entry of a hand-built history.
    pub struct Row {
        pub seq: u64,
        pub stream: String,
        pub event_type: String,
        pub id: String,
        pub occurred_at: String,
        pub author: String,
        pub event: Event,
        pub imported: Option<vocabulary::MigratedFrom>,
    }

    /// An entry at `seq` in `stream`, its event id `e<seq>`, occurring at `occurred_at`.
    pub fn row(seq: u64, stream: &str, event_type: &str, occurred_at: &str, data: Value) -> Row {
        row_by(seq, stream, event_type, occurred_at, "did:key:z6MkTest", data)
    }

    /// `row` with an author.
    pub fn row_by(seq: u64, stream: &str, event_type: &str, occurred_at: &str, author: &str, data: Value) -> Row {
        let event = vocabulary::parse(event_type, data.as_object().expect("data is an object"))
            .expect("a vocabulary type")
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        let imported = vocabulary::migrated_from(event_type, data.as_object().expect("data is an object"))
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        Row {
            imported,
            seq,
            stream: stream.to_owned(),
            event_type: event_type.to_owned(),
            id: format!("e{seq}"),
            occurred_at: occurred_at.to_owned(),
            author: author.to_owned(),
            event,
        }
    }

    pub fn fact(r: &Row) -> Fact<'_> {
        Fact {
            seq: r.seq,
            // The ledger records each hand-built entry when it occurs.
            recorded_at: crate::time::parse_instant(&r.occurred_at).map_or(0, |n| (n / 1_000_000_000) as i64),
            stream: &r.stream,
            event_type: &r.event_type,
            id: &r.id,
            occurred_at: &r.occurred_at,
            occurred_secs: model::occurred_secs(&r.occurred_at),
            author: &r.author,
            event: &r.event,
            imported: r.imported.as_ref(),
            leaf_hash: &[0; 32],
        }
    }

    pub fn build<M: ReadModel + Default>(rows: &[Row]) -> M {
        let mut m = M::default();
        rows.iter().for_each(|r| m.apply(&fact(r)));
        m
    }

    /// encode → load → encode gives the same bytes, and applying the history in two halves with
    /// an encode/load in between gives the digest of applying it whole, at every split point.
    pub fn check_determinism<M: ReadModel + Default>(rows: &[Row]) {
        let whole: M = build(rows);
        let bytes = whole.encode();
        let mut loaded = M::default();
        loaded.load(&bytes).unwrap();
        assert_eq!(loaded.encode(), bytes, "encode after load differs");
        assert_ne!(M::default().encode(), bytes, "the history changed nothing");
        for split in 0..=rows.len() {
            let first: M = build(&rows[..split]);
            let mut second = M::default();
            second.load(&first.encode()).unwrap();
            rows[split..].iter().for_each(|r| second.apply(&fact(r)));
            assert_eq!(model::digest(&second), model::digest(&whole), "split at {split}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(M::default().load(&trailing).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_are_what_the_instant_gives() {
        let mut cases: Vec<String> = Vec::new();
        for date in ["2026-12-14", "2024-02-29", "2023-02-29", "1970-01-01", "0000-03-01", "2026-13-01", "2026-1-014"] {
            for time in ["00:00:00", "23:59:59", "07:08:00", "24:00:00", "12:60:00", "1a:00:00", "23:59:60"] {
                for frac in ["", ".5", ".123456789", ".1234567890", ".", ".x"] {
                    for zone in ["Z", "+03:00", "-11:45", "+23:59", "+24:00", "-00:60", "z", "+0300", "", "Zx"] {
                        cases.push(format!("{date}T{time}{frac}{zone}"));
                        cases.push(format!("{date}t{time}{frac}{zone}"));
                    }
                }
            }
        }
        cases.extend(
            ["", "2026-12-14", "2026-12-14T07:08Z", "2026-12-1ЖT07:08:00Z", "Ж026-12-14T07:08:00Z"].map(String::from),
        );
        for s in &cases {
            for offset in [0, 180, -660, 1439, -1439, 5 * 1440 + 7, i64::MAX / 2, i64::MIN / 2] {
                let slow = time::parse_instant(s).map(|at| time::local_date(at, offset));
                assert_eq!(local_date_of(s, offset), slow, "{s} at {offset}");
            }
        }
    }

    #[test]
    fn percent_rounds_half_up() {
        assert_eq!(percent(173_171, 174_876, 1).as_deref(), Some("99.0"));
        assert_eq!(percent(20_555, 174_873, 1).as_deref(), Some("11.8"));
        assert_eq!(percent(1, 3, 1).as_deref(), Some("33.3"));
        assert_eq!(percent(2, 3, 1).as_deref(), Some("66.7"));
        assert_eq!(percent(1, 8, 1).as_deref(), Some("12.5"));
        assert_eq!(percent(1, 16, 1).as_deref(), Some("6.3"));
        assert_eq!(percent(1, 0, 1), None);
        assert_eq!(percent(5, 5, 0).as_deref(), Some("100"));
    }
}
