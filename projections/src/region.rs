//! The region profile as the read models need it: the queue rules (the very type the rules
//! enforce, `queue_order::QueueRules`), the region's UTC offset and the attestation terms, with
//! DOMAIN.md's values (the Leningrad oblast profile of `rules/region-default.json`).
//! Not the profile the ledger loads: `zachetka-rules`' `RegionConfig` is; a rules test asserts
//! that its default agrees with `RegionProfile::region_default()` field by field.

use crate::queue_order::QueueRules;
use crate::time::{self, Days};

/// The terms of attestation decisions (`attestation` in the region profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationTerms {
    /// Categories granted on or after this date (`YYYY-MM-DD`) have no end date.
    pub unlimited_since: String,
    /// The term in years of a category granted before `unlimited_since`, and of a fitness check.
    pub term_years: i64,
    /// The mandatory check of fitness for the post.
    pub fitness_check: String,
    pub highest_category: String,
    /// Categories that require a current `highest_category`.
    pub requires_highest: Vec<String>,
}

impl AttestationTerms {
    /// The last day after which a grant of `category` decided on `decided_on` is no longer in
    /// force (exclusive end), or `None` when it has no end date. The rules' `CategoryHeld` term.
    pub fn valid_until(&self, category: &str, decided_on: Days) -> Option<Days> {
        let unlimited = time::parse_date(&self.unlimited_since).is_some_and(|since| decided_on >= since);
        (category == self.fitness_check || !unlimited).then(|| time::add_years(decided_on, self.term_years))
    }
}

/// What the read models read of the region profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionProfile {
    /// The region's clocks, minutes ahead of UTC (local dates such as "today").
    pub utc_offset_minutes: i64,
    pub queue: QueueRules,
    pub attestation: AttestationTerms,
}

impl RegionProfile {
    /// DOMAIN.md's values, as `rules/region-default.json`.
    pub fn region_default() -> Self {
        Self {
            utc_offset_minutes: 180,
            queue: QueueRules::region_default(),
            attestation: AttestationTerms {
                unlimited_since: "2023-09-01".into(),
                term_years: 5,
                fitness_check: "fitness".into(),
                highest_category: "highest".into(),
                requires_highest: vec!["methodist".into(), "mentor".into()],
            },
        }
    }
}
