//! Wall-clock time as zachetka writes it: RFC 3339 UTC with second precision, and an injectable
//! clock so tests decide what "now" is. Not a calendar library.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Where `recorded_at` comes from. Injected so tests and vectors are reproducible.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now_unix(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// A clock that stands still until told to move (tests).
#[derive(Clone, Default)]
pub struct FixedClock(pub Arc<AtomicI64>);

impl FixedClock {
    pub fn at(unix: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix)))
    }
    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::SeqCst)
    }
}

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC only, the one form our events carry) into Unix
/// seconds; the fraction is checked and dropped.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || *b.last()? != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &b[r];
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty()
        && (rest[0] != b'.' || rest.len() < 2 || rest.len() > 10 || !rest[1..].iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    i64::from(zachetka_projections::time::days_in_month(y, m as u32))
}

/// Proleptic Gregorian date to days since 1970-01-01 (the one calendar, in `zachetka-projections`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    zachetka_projections::time::days_from_civil(y, m as u32, d as u32)
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let (y, m, d) = zachetka_projections::time::civil_from_days(z);
    (y, i64::from(m), i64::from(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        let t = parse_rfc3339("2026-11-23T08:00:01Z").unwrap();
        assert_eq!(format_rfc3339(t), "2026-11-23T08:00:01Z");
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59.123Z"), Some(parse_rfc3339("2024-02-29T23:59:59Z").unwrap()));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-11-23 08:00:01Z",
            "2026-11-23T08:00:01+03:00",
            "2026-13-01T00:00:00Z",
            "2026-11-23T08:00:01.Z",
            "2026-11-23T24:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for days in [-1000, 0, 1, 19_000, 20_780, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
