//! The region's calendar as the rules consult it: working days (1st-grade order deadlines) and
//! school days (lessons, marks and attendance), answered by lookups in sets built once from the
//! region config (`calendar`), never by scanning its date lists per event.
//! Not the config itself (`config::WorkingCalendar`) and not a rule: callers refuse.

use crate::config::WorkingCalendar;
use crate::time::{self, Days};
use std::collections::HashSet;

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// Why a day is not a school day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DayOff {
    /// A day of the week lessons are not held on (`calendar.school_days`), e.g. "sunday".
    Weekday(&'static str),
    /// A public holiday of the region (`calendar.holidays`).
    Holiday,
}

/// The region's calendar with its dates parsed into sets (built from a validated config; a date
/// that does not parse is left out, as `validate` refuses such a config).
#[derive(Debug, Clone, Default)]
pub(crate) struct Calendar {
    /// Indexed by ISO weekday (1..=7).
    weekend: [bool; 8],
    school: [bool; 8],
    holidays: HashSet<Days>,
    working_weekends: HashSet<Days>,
}

/// ISO weekday of a day number (1 Monday .. 7 Sunday; day 0, 1970-01-01, was a Thursday).
pub(crate) fn iso_weekday(day: Days) -> i64 {
    (day + 3).rem_euclid(7) + 1
}

fn weekday_flags(days: &[i64]) -> [bool; 8] {
    let mut flags = [false; 8];
    for d in days {
        if let Ok(i) = usize::try_from(*d) {
            if let Some(f) = flags.get_mut(i) {
                *f = true;
            }
        }
    }
    flags
}

impl Calendar {
    pub(crate) fn new(c: &WorkingCalendar) -> Self {
        let dates = |list: &[String]| list.iter().filter_map(|s| time::parse_date(s)).collect::<HashSet<Days>>();
        Calendar {
            weekend: weekday_flags(&c.weekend_days),
            school: weekday_flags(&c.school_days),
            holidays: dates(&c.holidays),
            working_weekends: dates(&c.working_weekends),
        }
    }

    /// Whether `day` is a working day: not a weekend unless worked by transfer, not a holiday.
    pub(crate) fn is_working_day(&self, day: Days) -> bool {
        // iso_weekday is 1..=7, always an index of the 8-slot tables.
        if self.weekend[iso_weekday(day) as usize] {
            self.working_weekends.contains(&day)
        } else {
            !self.holidays.contains(&day)
        }
    }

    /// The `n`-th working day after `day` (`day` itself when `n` is 0).
    pub(crate) fn add_working_days(&self, day: Days, n: i64) -> Days {
        let (mut d, mut left) = (day, n);
        // A calendar with every day off would never end: 400 days bound the walk per working day.
        let mut guard = 0;
        while left > 0 && guard < 400 * (n + 1) {
            d += 1;
            guard += 1;
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Whether lessons are held on `day`: a day of the school week that is not a holiday, or a
    /// weekend day worked by transfer; else why not.
    pub(crate) fn school_day(&self, day: Days) -> Result<(), DayOff> {
        if self.working_weekends.contains(&day) {
            return Ok(());
        }
        if self.holidays.contains(&day) {
            return Err(DayOff::Holiday);
        }
        let wd = iso_weekday(day);
        if !self.school[wd as usize] {
            return Err(DayOff::Weekday(WEEKDAYS[(wd - 1) as usize]));
        }
        Ok(())
    }
}
