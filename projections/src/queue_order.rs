//! The kindergarten queue's order, defined once: the region's queue rules (tiers, benefit
//! categories, age groups), a child's age group on 1 September of each allocation year (a child
//! still waiting after its desired year ages into the next group), which allocation year a day
//! or a run belongs to, an application's tier with the reasons behind it, and the sort key of
//! allocation order. `zachetka-rules` enforces the queue
//! with these functions and the `kindergarten-queues` read model shows it with them, so the queue
//! shown and the queue enforced cannot diverge.
//! Not the queue's state (each side folds its own) and not the allocation algorithm.

use crate::time::{self, Days, Nanos};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A kindergarten age group: whole months of age on 1 September of the target year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeGroup {
    pub code: String,
    pub months_min: i64,
    pub months_max: i64,
}

/// The kindergarten queue's part of the region profile (`queue` in `region-default.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRules {
    /// Tiers in allocation order; the last one is the general tier.
    pub tiers: Vec<String>,
    /// Benefit category -> tier.
    pub benefit_categories: BTreeMap<String, String>,
    /// The tier of a sibling already attending a preferred kindergarten (преимущественное право).
    pub sibling_tier: String,
    pub age_groups: Vec<AgeGroup>,
    pub group_types: Vec<String>,
    pub preferred_max: i64,
    /// The only reasons admission may be refused (DOMAIN: only for lack of places).
    pub admission_refusal_reasons: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl QueueRules {
    /// DOMAIN.md's values (the Leningrad oblast profile), as in `rules/region-default.json`.
    pub fn region_default() -> Self {
        let age = |code: &str, months_min, months_max| AgeGroup { code: code.into(), months_min, months_max };
        let tier = |c: &str, t: &str| (c.to_owned(), t.to_owned());
        Self {
            tiers: strings(&["extraordinary", "first_priority", "advantage", "general"]),
            benefit_categories: BTreeMap::from([
                tier("prosecutor", "extraordinary"),
                tier("judge", "extraordinary"),
                tier("investigative_committee", "extraordinary"),
                tier("chernobyl", "extraordinary"),
                tier("special_military_operation", "extraordinary"),
                tier("military", "first_priority"),
                tier("police", "first_priority"),
                tier("large_family", "first_priority"),
                tier("disabled_child", "first_priority"),
                tier("disabled_parent", "first_priority"),
            ]),
            sibling_tier: "advantage".into(),
            age_groups: vec![
                age("0-1", 2, 11),
                age("1-2", 12, 23),
                age("2-3", 24, 35),
                age("3-4", 36, 47),
                age("4-5", 48, 59),
                age("5-6", 60, 71),
                age("6-7", 72, 95),
            ],
            group_types: strings(&["general", "compensating", "combined", "health", "short_stay"]),
            preferred_max: 5,
            admission_refusal_reasons: strings(&["no_free_places"]),
        }
    }

    /// The index of the general (last) tier.
    pub fn general_tier(&self) -> usize {
        self.tiers.len().saturating_sub(1)
    }

    /// A tier's name by index (`general` past the end).
    pub fn tier_name(&self, index: usize) -> &str {
        self.tiers.get(index).map_or("general", String::as_str)
    }

    fn tier_index(&self, tier: &str) -> usize {
        self.tiers.iter().position(|x| x == tier).unwrap_or(self.general_tier())
    }
}

/// Why no age group could be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgeGroupError {
    /// `birth_month` is not `YYYY-MM`.
    BirthMonthMalformed,
    /// `desired_date` is not `YYYY-MM-DD`.
    DesiredDateMalformed,
    /// No group holds a child of `months` whole months on 1 September `year`.
    OutOfRange { months: i64, year: i64 },
}

/// The age group on 1 September of the academic year of `desired_date`, from the birth month.
/// The youngest bound is used (birth on the month's last day): the ledger never overstates age.
pub fn age_group_of(rules: &QueueRules, birth_month: &str, desired_date: &str) -> Result<String, AgeGroupError> {
    let birth = time::parse_year_month(birth_month).ok_or(AgeGroupError::BirthMonthMalformed)?;
    let desired = time::parse_date(desired_date).ok_or(AgeGroupError::DesiredDateMalformed)?;
    let year = time::academic_year_of(desired);
    let (young, _) = time::age_months_on_sept1(birth, year);
    rules
        .age_groups
        .iter()
        .find(|g| (g.months_min..=g.months_max).contains(&young))
        .map(|g| g.code.clone())
        .ok_or(AgeGroupError::OutOfRange { months: young, year })
}

/// The first allocation year an application competes in: the academic year (named by the year
/// of its 1 September) of its desired date. `None` if `desired_date` is not `YYYY-MM-DD`.
pub fn target_year(desired_date: &str) -> Option<i64> {
    time::parse_date(desired_date).map(time::academic_year_of)
}

/// The age group, in allocation year `year`, of a child born in `birth` (year, month): its age
/// on 1 September of `year`, the youngest bound as in [`age_group_of`]. `None` when no group
/// holds it (too young, or grown past the oldest group). A child still waiting after its target
/// year ages: each later allocation places it in the group of its age on that year's 1 September.
pub fn age_group_in(rules: &QueueRules, birth: (i64, u32), year: i64) -> Option<&str> {
    let (young, _) = time::age_months_on_sept1(birth, year);
    rules.age_groups.iter().find(|g| (g.months_min..=g.months_max).contains(&young)).map(|g| g.code.as_str())
}

/// The allocation year an application competes in next during allocation year `current`: its
/// target year until that comes, then the current one (before its target year it competes in
/// none: [`competes_in`] gives `None` for earlier years).
pub fn next_allocation_year(target_year: i64, current: i64) -> i64 {
    target_year.max(current)
}

/// The age group an application competes with in allocation year `year`, if it competes in it:
/// `year` is not before its target year and the child has an age group on 1 September of `year`.
pub fn competes_in(rules: &QueueRules, birth: (i64, u32), target_year: i64, year: i64) -> Option<&str> {
    if year < target_year {
        return None;
    }
    age_group_in(rules, birth, year)
}

/// The allocation year of a day when no run names one: from 1 April, the year of the coming
/// 1 September (the season of the main allocation, комплектование, for it); before 1 April, the
/// current academic year's (its additional allocations of places freed during the year).
pub fn allocation_year_on(day: Days) -> i64 {
    let (y, m, _) = time::civil_from_days(day);
    if m >= 4 {
        y
    } else {
        y - 1
    }
}

/// Where a benefit claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimState {
    Claimed,
    Confirmed,
    Rejected,
}

/// A benefit claim as the tier needs it.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRef<'a> {
    pub category: &'a str,
    pub recheck_on: Days,
    pub state: ClaimState,
}

/// One reason behind a tier; `claim` and `sibling` index the slices given to `tier_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierReason {
    /// A confirmed benefit whose re-check date has not passed: it puts the application in `tier`.
    BenefitConfirmed {
        claim: usize,
        tier: String,
    },
    /// A confirmed benefit whose re-check date has passed: counts as general until confirmed again.
    BenefitLapsed {
        claim: usize,
    },
    /// A claimed benefit not yet confirmed: counts as general.
    BenefitUnconfirmed {
        claim: usize,
    },
    BenefitRejected {
        claim: usize,
    },
    /// A sibling attends the kindergarten the order is computed for (and the application prefers
    /// it): the sibling tier there, and only there.
    SiblingAttends {
        sibling: usize,
        tier: String,
    },
}

/// The tier index (into `rules.tiers`) of an application on `today` (the latest local date the
/// fold has seen, never the wall clock) in the order of `kindergarten`, with every reason in claim
/// order then sibling order. Benefits count in every kindergarten; a sibling (преимущественное
/// право) counts only in the order of the kindergarten the sibling attends, and only if the
/// application prefers it. `kindergarten: None` is the territory-wide order, where no sibling counts.
pub fn tier_of(
    rules: &QueueRules,
    claims: &[ClaimRef<'_>],
    sibling_kindergartens: &[&str],
    preferred: &[String],
    kindergarten: Option<&str>,
    today: Days,
) -> (usize, Vec<TierReason>) {
    let mut why = Vec::new();
    let best = tier_walk(
        rules,
        claims.iter().copied(),
        sibling_kindergartens.iter().copied(),
        preferred,
        kindergarten,
        today,
        |r| why.push(r()),
    );
    (best, why)
}

/// The tier index alone, as [`tier_of`] has it, without building the reasons: what an order
/// compares for every application, so it allocates nothing.
pub fn tier_rank<'c>(
    rules: &QueueRules,
    claims: impl IntoIterator<Item = ClaimRef<'c>>,
    sibling_kindergartens: impl IntoIterator<Item = &'c str>,
    preferred: &[String],
    kindergarten: Option<&str>,
    today: Days,
) -> usize {
    tier_walk(rules, claims, sibling_kindergartens, preferred, kindergarten, today, |_| {})
}

/// The one definition of the tier: [`tier_of`] and [`tier_rank`] both walk it, so the reasons
/// shown and the rank compared cannot differ. `why` gets each reason lazily, in claim order then
/// sibling order.
fn tier_walk<'c>(
    rules: &QueueRules,
    claims: impl IntoIterator<Item = ClaimRef<'c>>,
    sibling_kindergartens: impl IntoIterator<Item = &'c str>,
    preferred: &[String],
    kindergarten: Option<&str>,
    today: Days,
    mut why: impl FnMut(&dyn Fn() -> TierReason),
) -> usize {
    let mut best = rules.general_tier();
    for (i, c) in claims.into_iter().enumerate() {
        match c.state {
            ClaimState::Confirmed if c.recheck_on >= today => {
                let tier = rules.benefit_categories.get(c.category).map_or("general", String::as_str);
                best = best.min(rules.tier_index(tier));
                why(&|| TierReason::BenefitConfirmed { claim: i, tier: tier.to_owned() });
            }
            ClaimState::Confirmed => why(&|| TierReason::BenefitLapsed { claim: i }),
            ClaimState::Claimed => why(&|| TierReason::BenefitUnconfirmed { claim: i }),
            ClaimState::Rejected => why(&|| TierReason::BenefitRejected { claim: i }),
        }
    }
    for (i, kg) in sibling_kindergartens.into_iter().enumerate() {
        if kindergarten == Some(kg) && preferred.iter().any(|p| p == kg) {
            best = best.min(rules.tier_index(&rules.sibling_tier));
            why(&|| TierReason::SiblingAttends { sibling: i, tier: rules.sibling_tier.clone() });
        }
    }
    best
}

pub type OrderKey<'a> = (usize, Nanos, &'a str);

/// The allocation order's sort key: tier, then the time of filing, then application number.
/// The time of filing is the ledger's (`filed_at`), never the author's claim.
pub fn order_key(tier: usize, filed_at: Nanos, number: &str) -> OrderKey<'_> {
    (tier, filed_at, number)
}

/// When an application was filed, for the order: the ledger's `recorded_at` of its
/// `queue.application_submitted` entry (DOMAIN "Ledger time": `occurred_at` is a claim). An
/// application imported from a legacy system (`data.migrated_from`, written by a migration key)
/// keeps its original filing time, its `occurred_at`.
pub fn filed_at(recorded_at: Nanos, occurred_at: Nanos, imported: bool) -> Nanos {
    if imported {
        occurred_at
    } else {
        recorded_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_groups_and_tiers() {
        let r = QueueRules::region_default();
        // Born January 2023: at least 43 whole months on 1 September 2026.
        assert_eq!(age_group_of(&r, "2023-01", "2026-09-01").unwrap(), "3-4");
        assert_eq!(age_group_of(&r, "2026-08", "2026-09-01"), Err(AgeGroupError::OutOfRange { months: 0, year: 2026 }));
        assert_eq!(age_group_of(&r, "2023-13", "2026-09-01"), Err(AgeGroupError::BirthMonthMalformed));
        let day = time::parse_date("2026-10-01").unwrap();
        let claims = [
            ClaimRef { category: "police", recheck_on: day, state: ClaimState::Confirmed },
            ClaimRef { category: "judge", recheck_on: day - 1, state: ClaimState::Confirmed },
        ];
        let pref = vec!["kg-1".to_owned()];
        let (tier, why) = tier_of(&r, &claims, &["kg-2", "kg-1"], &pref, Some("kg-1"), day);
        assert_eq!(r.tier_name(tier), "first_priority");
        assert_eq!(
            why,
            vec![
                TierReason::BenefitConfirmed { claim: 0, tier: "first_priority".into() },
                TierReason::BenefitLapsed { claim: 1 },
                TierReason::SiblingAttends { sibling: 1, tier: "advantage".into() },
            ]
        );
        let (tier, _) = tier_of(&r, &claims, &[], &pref, Some("kg-1"), day + 1);
        assert_eq!(r.tier_name(tier), "general");
        // The sibling right counts only in its own kindergarten's order.
        let none: [ClaimRef; 0] = [];
        let (tier, _) = tier_of(&r, &none, &["kg-1"], &pref, Some("kg-1"), day);
        assert_eq!(r.tier_name(tier), "advantage");
        let pref2 = vec!["kg-1".to_owned(), "kg-2".to_owned()];
        let (tier, why) = tier_of(&r, &none, &["kg-1"], &pref2, Some("kg-2"), day);
        assert_eq!((r.tier_name(tier), why.len()), ("general", 0));
        let (tier, _) = tier_of(&r, &none, &["kg-1"], &pref2, None, day);
        assert_eq!(r.tier_name(tier), "general");
        assert!(order_key(1, 5, "b") < order_key(1, 5, "c") && order_key(0, 9, "z") < order_key(1, 0, "a"));
    }

    #[test]
    fn a_waiting_child_ages_from_one_allocation_year_to_the_next() {
        let r = QueueRules::region_default();
        // Wants 2027-09-01 (academic year 2027), born August 2024: 3-4 then, 4-5 a year later.
        assert_eq!(target_year("2027-09-01"), Some(2027));
        assert_eq!(target_year("2028-03-01"), Some(2027));
        assert_eq!(target_year("2027-9-1"), None);
        let birth = (2024, 8);
        assert_eq!(competes_in(&r, birth, 2027, 2026), None, "not before its target year");
        assert_eq!(competes_in(&r, birth, 2027, 2027), Some("3-4"));
        assert_eq!(competes_in(&r, birth, 2027, 2028), Some("4-5"));
        assert_eq!(competes_in(&r, birth, 2027, 2032), None, "past the oldest group");
        assert_eq!((next_allocation_year(2028, 2027), next_allocation_year(2027, 2029)), (2028, 2029));
        // From 1 April the coming 1 September's year, before it the current academic year's.
        let day = |s: &str| time::parse_date(s).unwrap();
        assert_eq!(allocation_year_on(day("2027-03-31")), 2026);
        assert_eq!(allocation_year_on(day("2027-04-01")), 2027);
        assert_eq!(allocation_year_on(day("2027-12-31")), 2027);
    }
}
