//! Time, the one implementation: the RFC 3339 grammar of events and entries (`occurred_at`,
//! `recorded_at`: UTC, `Z`), instants with fractions and offsets for the rules, the proleptic
//! Gregorian calendar as integers (no floats), and an injectable clock so tests decide what
//! "now" is. The rules never read the clock: every time they use comes from an event.

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
    let Ok(year @ 0..=9999) = u32::try_from(y) else {
        return format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
    };
    // Four-digit years (every instant an event carries) written digit by digit: the rules, the
    // entries and the demo format one or more per event.
    let secs = secs as u32;
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, n: u32, width: usize| {
        let mut n = n;
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, year, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, secs / 3600, 2);
    put(14, secs / 60 % 60, 2);
    put(17, secs % 60, 2);
    String::from_utf8(b.to_vec()).expect("ascii digits")
}

/// Parses the UTC form our events and entries carry, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, into Unix
/// seconds; the fraction (1 to 9 digits) is checked and dropped. The grammar is
/// [`parse_instant`]'s, with the offset fixed to `Z`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if !s.ends_with('Z') {
        return None;
    }
    Some(parse_instant(s)?.div_euclid(NANOS_PER_SEC) as i64)
}

/// Nanoseconds since the Unix epoch (UTC). `i128` so that fractions up to 9 digits never round.
pub type Nanos = i128;

/// A civil date as days since 1970-01-01.
pub type Days = i64;

const NANOS_PER_SEC: Nanos = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Days {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(z: Days) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Days in a month of a year.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0i64, |acc, c| acc.checked_mul(10)?.checked_add(i64::from(c - b'0')))
}

/// Parses `YYYY-MM-DD` (exactly, a real calendar day) into a day number.
pub fn parse_date(s: &str) -> Option<Days> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (m, d) = (u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `YYYY-MM` into (year, month).
pub fn parse_year_month(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() != 7 || b[4] != b'-' {
        return None;
    }
    let (y, m) = (digits(&b[0..4])?, u32::try_from(digits(&b[5..7])?).ok()?);
    (1..=12).contains(&m).then_some((y, m))
}

/// Parses `MM-DD` (a day of any year, as region configs state windows) into (month, day).
pub fn parse_month_day(s: &str) -> Option<(u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b'-' {
        return None;
    }
    let (m, d) = (u32::try_from(digits(&b[0..2])?).ok()?, u32::try_from(digits(&b[3..5])?).ok()?);
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(2000, m)).then_some((m, d))
}

/// Parses RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into nanoseconds since the epoch.
/// The fraction has 1 to 9 digits; `T` and `Z` are upper case.
pub fn parse_instant(s: &str) -> Option<Nanos> {
    let (secs, nanos) = parse_instant_parts(s)?;
    Some(Nanos::from(secs) * NANOS_PER_SEC + Nanos::from(nanos))
}

/// `parse_instant` in two parts, whole seconds since the epoch and the fraction in nanoseconds,
/// all in 64 bits: for a caller that needs only the second (a local date, on every entry a read
/// model folds), without the 128-bit arithmetic.
pub fn parse_instant_parts(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let day = parse_date(std::str::from_utf8(&b[0..10]).ok()?)?;
    let (h, mi, sec) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let frac = u32::try_from(digits(&rest[1..1 + n])?).ok()?;
        nanos = frac * 10u32.pow(9 - n as u32);
        rest = &rest[1 + n..];
    }
    let offset_secs = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    Some((day * 86_400 + h * 3600 + mi * 60 + sec - offset_secs, nanos))
}

/// The civil date of an instant in a region whose clocks are `offset_minutes` ahead of UTC.
pub fn local_date(at: Nanos, offset_minutes: i64) -> Days {
    let secs = at.div_euclid(NANOS_PER_SEC) + Nanos::from(offset_minutes) * 60;
    secs.div_euclid(86_400) as Days
}

/// Formats a day number as `YYYY-MM-DD`.
pub fn format_date(days: Days) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The same calendar day `years` later (29 February becomes 28 February when needed).
pub fn add_years(days: Days, years: i64) -> Days {
    let (y, m, d) = civil_from_days(days);
    days_from_civil(y + years, m, d.min(days_in_month(y + years, m)))
}

/// The academic year (its starting calendar year) that contains a date: September to August.
pub fn academic_year_of(days: Days) -> i64 {
    let (y, m, _) = civil_from_days(days);
    if m >= 9 {
        y
    } else {
        y - 1
    }
}

/// Age in whole months on 1 September of `year` of a child born in `birth` (year, month), as the
/// bounds (youngest, oldest): the day of birth is not in the log (it is personal data), so the
/// youngest case is a birth on the month's last day and the oldest on its first.
pub fn age_months_on_sept1(birth: (i64, u32), year: i64) -> (i64, i64) {
    let months = (year * 12 + 8) - (birth.0 * 12 + i64::from(birth.1) - 1);
    // Born on the 1st: exactly `months` whole months on 1 September; born later: one fewer.
    (months - 1, months)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting_is_the_padded_civil_form() {
        let reference = |unix: i64| {
            let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
            let s = unix.rem_euclid(86_400);
            format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
        };
        let year_10000 = days_from_civil(10_000, 1, 1) * 86_400;
        let mut cases = vec![0, 1, -1, 86_399, 86_400, -62_167_219_200, -62_167_219_201, year_10000, year_10000 - 1];
        cases.extend((0..2_000).map(|i: i64| i * 7_919_993 - 3_000_000_000));
        for unix in cases {
            assert_eq!(format_rfc3339(unix), reference(unix), "{unix}");
        }
        assert_eq!(format_rfc3339(1_788_220_800), "2026-09-01T00:00:00Z");
        assert_eq!(format_rfc3339(year_10000 - 1), "9999-12-31T23:59:59Z");
    }

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

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 365, 19_000, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2023-13-01").is_none());
        assert!(parse_date("2023-1-01").is_none());
        assert!(parse_year_month("2022-00").is_none());
        assert_eq!(parse_year_month("2022-03"), Some((2022, 3)));
        assert_eq!(parse_month_day("06-30"), Some((6, 30)));
        assert!(parse_month_day("06-31").is_none());
    }

    #[test]
    fn instants_parse_with_fraction_and_offset() {
        let z = parse_instant("2026-11-22T09:10:00Z").unwrap();
        assert_eq!(parse_instant("2026-11-22T12:10:00+03:00"), Some(z));
        assert_eq!(parse_instant("2026-11-22T09:10:00.5Z"), Some(z + 500_000_000));
        assert_eq!(parse_instant("2026-11-22T09:10:00.000000001Z"), Some(z + 1));
        for bad in [
            "2026-11-22T09:10:00",
            "2026-11-22 09:10:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T09:10:00.Z",
            "2026-11-22T09:10:00.1234567890Z",
            "2026-11-22T09:10:00z",
        ] {
            assert!(parse_instant(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn local_dates_and_ages() {
        let at = parse_instant("2026-06-30T22:30:00Z").unwrap();
        assert_eq!(format_date(local_date(at, 0)), "2026-06-30");
        assert_eq!(format_date(local_date(at, 180)), "2026-07-01");
        assert_eq!(age_months_on_sept1((2020, 3), 2026), (77, 78));
        assert_eq!(academic_year_of(parse_date("2027-01-15").unwrap()), 2026);
        assert_eq!(format_date(add_years(parse_date("2024-02-29").unwrap(), 1)), "2025-02-28");
    }
}
