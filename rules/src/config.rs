//! Region-specific lists as data: benefit categories and tiers, attendance codes, grade scales and
//! weights, commission sizes, enrolment windows. `RegionConfig::default()` holds DOMAIN.md's
//! values (the Leningrad oblast profile) and equals `projections/region-default.json`.
//! Not the rules themselves: they live in the subsystem modules and only read this.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A grade scale: its marks (integers are written as their decimal string) and which of them
/// are unsatisfactory (they open an academic debt and fail a retake).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub marks: Vec<String>,
    pub unsatisfactory: Vec<String>,
}

/// Academic debt: how many retakes, within how many days of opening, from which attempt a
/// commission is needed and how many distinct members it has at least.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetakeRules {
    pub retakes_max: i64,
    pub within_days: i64,
    pub commission_from_attempt: i64,
    pub commission_members_min: i64,
}

/// The kindergarten queue's rules live beside the order they define (`zachetka-projections`),
/// so the queue the rules enforce and the queue the read model shows are one definition.
pub use zachetka_projections::queue_order::{AgeGroup, QueueRules};

/// A window of the year as `MM-DD` bounds, both inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub from: String,
    pub to: String,
    /// The bases (grounds) an application may claim in this window.
    pub bases: Vec<String>,
}

/// 1st-grade enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstGradeRules {
    pub window_1: Window,
    pub window_2: Window,
    /// Youngest age on 1 September in whole months (6.5 years = 78).
    pub age_months_min: i64,
    /// The age on 1 September a child must not have reached (8 years = 96).
    pub age_months_limit: i64,
    /// Window-1 applications' enrolment order is issued within this many working days after
    /// the window's last day (`calendar`).
    pub window_1_order_working_days: i64,
}

/// The working-day calendar: weekend days of the week, and per-year exceptions (public holidays
/// and the transfers of a year's government decree) as dates; and the school week, the days of
/// the week lessons are held (schools may work six days while offices work five).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingCalendar {
    /// ISO weekdays that are days off (1 Monday .. 7 Sunday).
    pub weekend_days: Vec<i64>,
    /// Days off that are not weekends (`YYYY-MM-DD`), for every year the region has listed.
    pub holidays: Vec<String>,
    /// Weekend days that are working days by transfer (`YYYY-MM-DD`).
    pub working_weekends: Vec<String>,
    /// ISO weekdays lessons are held on (1 Monday .. 7 Sunday). A school day is one of these
    /// that is not in `holidays`, or a day of `working_weekends`: lessons, marks and attendance
    /// are dated on school days. A region config written before the school week existed (a
    /// ledger initialized by an earlier build) reads as Monday to Saturday.
    #[serde(default = "six_day_school_week")]
    pub school_days: Vec<i64>,
}

fn six_day_school_week() -> Vec<i64> {
    vec![1, 2, 3, 4, 5, 6]
}

impl WorkingCalendar {
    /// The school days from `from` to `to` (day numbers, `to` excluded), in order: what the rules
    /// accept as a lesson's date (for generators and tools; the rules look days up in sets).
    pub fn school_days(&self, from: crate::time::Days, to: crate::time::Days) -> Vec<crate::time::Days> {
        let calendar = crate::calendar::Calendar::new(self);
        (from..to).filter(|d| calendar.school_day(*d).is_ok()).collect()
    }
}

/// One exam subject's scores: the highest (primary) score and the least score that passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectScores {
    pub max: i64,
    pub pass: i64,
}

/// What a school certificate of one level needs: passing results of `exam` in the
/// `required_subjects`; `subjects` bounds and thresholds (primary scores for ОГЭ, 0-100 for ЕГЭ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequirements {
    pub exam: String,
    pub required_subjects: Vec<String>,
    pub subjects: BTreeMap<String, SubjectScores>,
}

/// Digital content services: those verified for teachers, and those for learners' self-study.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitalServices {
    pub verified_for_teachers: Vec<String>,
    pub self_study_for_learners: Vec<String>,
    /// Kinds of `digital.recommendation_offered` (a recommendation, an individual trajectory).
    pub recommendation_kinds: Vec<String>,
}

/// Teacher attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationRules {
    /// Category (including the fitness check) -> minimum distinct commission members voting.
    pub quorum: BTreeMap<String, i64>,
    /// Categories that require a current `highest_category`.
    pub requires_highest: Vec<String>,
    pub highest_category: String,
    /// Categories granted on or after this date (`YYYY-MM-DD`) have no end date.
    pub unlimited_since: String,
    /// The term in years of a category granted before `unlimited_since`, and of a fitness check.
    pub term_years: i64,
    /// The mandatory check of fitness for the post (always `term_years`).
    pub fitness_check: String,
}

/// Ledger time (DOMAIN "Ledger time"): how the author's `occurred_at` may differ from the
/// ledger's `recorded_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerTimeRules {
    /// How many seconds `occurred_at` may be later than `recorded_at` (authors' clock skew).
    pub future_skew_seconds: i64,
    /// Event type -> how many local days before the ledger's date `occurred_at` may lie
    /// (0: the same day, or within the skew). A migration's import is exempt.
    pub backdating_days: BTreeMap<String, i64>,
    /// The limit of a type not listed in `backdating_days`.
    pub backdating_days_default: i64,
}

impl LedgerTimeRules {
    /// DOMAIN.md's values: a queue application is filed the day it is made (the ledger's time of
    /// filing orders the queue) and so is an offer (it follows the order of its day); a lesson,
    /// its marks and attendance within a week; other records within 30 days.
    pub fn region_default() -> Self {
        Self {
            future_skew_seconds: 300,
            backdating_days: map(&[
                ("queue.application_submitted", 0),
                ("queue.place_offered", 0),
                ("journal.lesson_held", 7),
                ("journal.grade_recorded", 7),
                ("journal.attendance_marked", 7),
            ]),
            backdating_days_default: 30,
        }
    }

    /// The backdating limit of `event_type`, in days.
    pub fn backdating_days_of(&self, event_type: &str) -> i64 {
        self.backdating_days.get(event_type).copied().unwrap_or(self.backdating_days_default)
    }
}

/// The whole region profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// The region's clocks, minutes ahead of UTC (dates of windows and ages are local dates).
    pub utc_offset_minutes: i64,
    pub roles: Vec<String>,
    /// Roles an institution admin may grant within its institution.
    pub admin_delegable_roles: Vec<String>,
    pub institution_kinds: Vec<String>,
    pub scales: BTreeMap<String, Scale>,
    /// Institution kind -> scales its grades may use (a kind absent here records no grades).
    pub scales_by_kind: BTreeMap<String, Vec<String>>,
    /// School years (the number in a class name like "1А") in which no marks are given.
    pub years_without_marks: Vec<i64>,
    /// Kind of work -> weight (the weighted average is sum(mark x weight) / sum(weight)).
    pub grade_weights: BTreeMap<String, i64>,
    /// Attendance code -> meaning.
    pub attendance_codes: BTreeMap<String, String>,
    pub terms_max: i64,
    pub retakes: RetakeRules,
    /// College/university assessment form -> allowed scales.
    pub exam_forms: BTreeMap<String, Vec<String>>,
    /// Final attestation exam -> the highest score.
    pub final_exams: BTreeMap<String, i64>,
    pub certificate_levels: Vec<String>,
    pub diploma_levels: Vec<String>,
    pub promotion_bases: Vec<String>,
    pub queue: QueueRules,
    pub first_grade: FirstGradeRules,
    pub attestation: AttestationRules,
    pub achievement_kinds: Vec<String>,
    pub achievement_levels: Vec<String>,
    /// Words that mark a data field as personal data when they appear as a `_`-separated part of
    /// its name (`first_name`, `snils`, `home_address`...). `birth_month` is the one exception.
    pub personal_data_words: Vec<String>,
    /// Ledger time: future skew and backdating limits per event type (a profile written before
    /// these rules existed gets the region default).
    #[serde(default = "LedgerTimeRules::region_default")]
    pub ledger_time: LedgerTimeRules,
    /// Working days (the 1st-grade order deadline counts them).
    pub calendar: WorkingCalendar,
    /// Certificate level -> the final attestation it needs.
    pub certificate_requirements: BTreeMap<String, CertificateRequirements>,
    /// Results a professional competition may record (levels are `achievement_levels`).
    pub competition_results: Vec<String>,
    pub digital_services: DigitalServices,
    /// The migration's cutover (RFC 3339 instant): an import (`data.migrated_from`) recorded by
    /// the ledger at or after it is refused (`migration_closed`), so that once the region runs
    /// live on this ledger no migration key makes or reorders its decisions. `None` (and a
    /// config written before the field existed): imports stay allowed; set it when the
    /// migration ends. Not written when absent, so such a config keeps its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_closes_at: Option<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn map<V: Clone>(items: &[(&str, V)]) -> BTreeMap<String, V> {
    items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            utc_offset_minutes: 180,
            roles: strings(&[
                "authority",
                "institution_admin",
                "teacher",
                "class_teacher",
                "queue_operator",
                "commission_member",
                "commission_secretary",
                "achievement_issuer",
                "registrar",
                "migration",
                "staff_record_issuer",
            ]),
            admin_delegable_roles: strings(&[
                "teacher",
                "class_teacher",
                "commission_member",
                "commission_secretary",
                "achievement_issuer",
                "registrar",
            ]),
            institution_kinds: strings(&[
                "kindergarten",
                "school",
                "college",
                "university",
                "additional_education",
                "attestation_commission",
            ]),
            scales: map(&[
                ("five_point", Scale { marks: strings(&["2", "3", "4", "5"]), unsatisfactory: strings(&["2"]) }),
                (
                    "pass_fail",
                    Scale {
                        marks: strings(&["зачтено", "не зачтено"]), unsatisfactory: strings(&["не зачтено"])
                    },
                ),
                (
                    "four_level",
                    Scale {
                        marks: strings(&["отлично", "хорошо", "удовлетворительно", "неудовлетворительно"]),
                        unsatisfactory: strings(&["неудовлетворительно"]),
                    },
                ),
            ]),
            scales_by_kind: map(&[
                ("school", strings(&["five_point"])),
                ("college", strings(&["five_point", "pass_fail", "four_level"])),
                ("university", strings(&["pass_fail", "four_level"])),
            ]),
            years_without_marks: vec![1],
            grade_weights: map(&[("test", 5), ("classwork", 3), ("homework", 1)]),
            attendance_codes: map(&[
                ("Н", "absent".to_owned()),
                ("Б", "illness".to_owned()),
                ("УП", "valid_reason".to_owned()),
                ("ОП", "late".to_owned()),
            ]),
            terms_max: 4,
            retakes: RetakeRules {
                retakes_max: 2,
                within_days: 365,
                commission_from_attempt: 2,
                commission_members_min: 3,
            },
            exam_forms: map(&[
                ("exam", strings(&["four_level", "five_point"])),
                ("credit", strings(&["pass_fail"])),
                ("differentiated_credit", strings(&["four_level", "five_point"])),
            ]),
            final_exams: map(&[("oge", 100), ("ege", 100), ("gve", 100)]),
            certificate_levels: strings(&["basic_general", "secondary_general"]),
            diploma_levels: strings(&["secondary_vocational", "bachelor", "specialist", "master"]),
            promotion_bases: strings(&["full", "conditional"]),
            queue: QueueRules::region_default(),
            first_grade: FirstGradeRules {
                window_1: Window {
                    from: "04-01".into(),
                    to: "06-30".into(),
                    bases: strings(&["priority", "sibling", "territory"]),
                },
                window_2: Window {
                    from: "07-06".into(),
                    to: "09-05".into(),
                    bases: strings(&["priority", "sibling", "territory", "general"]),
                },
                age_months_min: 78,
                age_months_limit: 96,
                window_1_order_working_days: 3,
            },
            attestation: AttestationRules {
                quorum: map(&[("fitness", 5), ("first", 5), ("highest", 5), ("methodist", 7), ("mentor", 7)]),
                requires_highest: strings(&["methodist", "mentor"]),
                highest_category: "highest".into(),
                unlimited_since: "2023-09-01".into(),
                term_years: 5,
                fitness_check: "fitness".into(),
            },
            achievement_kinds: strings(&[
                "olympiad",
                "competition",
                "sport",
                "gto",
                "volunteering",
                "creative",
                "research",
            ]),
            achievement_levels: strings(&["school", "municipal", "regional", "federal", "international"]),
            personal_data_words: strings(&[
                "name",
                "names",
                "surname",
                "patronymic",
                "fio",
                "birth",
                "birthday",
                "birthdate",
                "dob",
                "snils",
                "address",
                "passport",
                "phone",
                "email",
                "inn",
            ]),
            ledger_time: LedgerTimeRules::region_default(),
            calendar: WorkingCalendar {
                weekend_days: vec![6, 7],
                // The public holidays of the Labour Code (art. 112) for 2026 and 2027; a year's
                // transfers by government decree are added here as they are published.
                holidays: ["2026", "2027"]
                    .iter()
                    .flat_map(|y| {
                        [
                            "01-01", "01-02", "01-03", "01-04", "01-05", "01-06", "01-07", "01-08", "02-23", "03-08",
                            "05-01", "05-09", "06-12", "11-04",
                        ]
                        .iter()
                        .map(move |md| format!("{y}-{md}"))
                    })
                    .collect(),
                working_weekends: Vec::new(),
                // A six-day school week: Saturday is a school day, Sunday is not.
                school_days: six_day_school_week(),
            },
            certificate_requirements: map(&[
                (
                    "basic_general",
                    CertificateRequirements {
                        exam: "oge".into(),
                        required_subjects: strings(&["Математика", "Русский язык"]),
                        // ОГЭ primary scores: the highest and the least for a mark of 3.
                        subjects: map(&[
                            ("Математика", SubjectScores { max: 31, pass: 8 }),
                            ("Русский язык", SubjectScores { max: 33, pass: 15 }),
                            ("Физика", SubjectScores { max: 45, pass: 11 }),
                            ("История", SubjectScores { max: 37, pass: 11 }),
                            ("Биология", SubjectScores { max: 48, pass: 13 }),
                            ("Литература", SubjectScores { max: 37, pass: 16 }),
                        ]),
                    },
                ),
                (
                    "secondary_general",
                    CertificateRequirements {
                        exam: "ege".into(),
                        required_subjects: strings(&["Математика", "Русский язык"]),
                        // ЕГЭ test scores 0-100 and the minimum for the certificate.
                        subjects: map(&[
                            ("Математика", SubjectScores { max: 100, pass: 27 }),
                            ("Русский язык", SubjectScores { max: 100, pass: 24 }),
                            ("Физика", SubjectScores { max: 100, pass: 36 }),
                            ("История", SubjectScores { max: 100, pass: 32 }),
                            ("Биология", SubjectScores { max: 100, pass: 36 }),
                            ("Литература", SubjectScores { max: 100, pass: 32 }),
                        ]),
                    },
                ),
            ]),
            competition_results: strings(&["winner", "prize_winner", "laureate", "participant"]),
            digital_services: DigitalServices {
                verified_for_teachers: strings(&["moya-shkola", "resh", "biblioteka-mesh"]),
                self_study_for_learners: strings(&["moya-shkola", "resh", "sferum-library"]),
                recommendation_kinds: strings(&["recommendation", "individual_trajectory"]),
            },
            migration_closes_at: None,
        }
    }
}

impl RegionConfig {
    /// Reads a region profile from JSON and checks that its lists agree with each other.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let config: Self = serde_json::from_str(text).map_err(|e| format!("region config: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks cross-references (tiers named by categories exist, windows parse, scales exist...).
    pub fn validate(&self) -> Result<(), String> {
        let q = &self.queue;
        if q.tiers.is_empty() {
            return Err("region config: queue.tiers is empty".into());
        }
        for (cat, tier) in q.benefit_categories.iter().chain([(&"sibling".to_owned(), &q.sibling_tier)]) {
            if !q.tiers.contains(tier) {
                return Err(format!("region config: benefit {cat} names unknown tier {tier}"));
            }
        }
        for (kind, scales) in self.scales_by_kind.iter().chain(&self.exam_forms) {
            if let Some(s) = scales.iter().find(|s| !self.scales.contains_key(*s)) {
                return Err(format!("region config: {kind} names unknown scale {s}"));
            }
        }
        for (name, s) in &self.scales {
            if s.unsatisfactory.iter().any(|m| !s.marks.contains(m)) {
                return Err(format!("region config: scale {name} has an unsatisfactory mark outside its marks"));
            }
        }
        if let Some((k, w)) = self.grade_weights.iter().find(|(_, w)| **w <= 0) {
            return Err(format!("region config: grade weight of {k} is {w}, must be positive"));
        }
        for w in [&self.first_grade.window_1, &self.first_grade.window_2] {
            if crate::time::parse_month_day(&w.from).is_none() || crate::time::parse_month_day(&w.to).is_none() {
                return Err(format!("region config: window {}..{} is not MM-DD", w.from, w.to));
            }
        }
        if crate::time::parse_date(&self.attestation.unlimited_since).is_none() {
            return Err("region config: attestation.unlimited_since is not YYYY-MM-DD".into());
        }
        if !self.attestation.quorum.contains_key(&self.attestation.highest_category)
            || !self.attestation.quorum.contains_key(&self.attestation.fitness_check)
        {
            return Err("region config: attestation.quorum lacks the highest category or the fitness check".into());
        }
        if self.calendar.weekend_days.iter().any(|d| !(1..=7).contains(d)) {
            return Err("region config: calendar.weekend_days holds a day outside 1..7".into());
        }
        if self.calendar.school_days.iter().any(|d| !(1..=7).contains(d)) {
            return Err("region config: calendar.school_days holds a day outside 1..7".into());
        }
        if let Some(d) = self
            .calendar
            .holidays
            .iter()
            .chain(&self.calendar.working_weekends)
            .find(|d| crate::time::parse_date(d).is_none())
        {
            return Err(format!("region config: calendar date {d} is not YYYY-MM-DD"));
        }
        if self.first_grade.window_1_order_working_days < 0 {
            return Err("region config: first_grade.window_1_order_working_days is negative".into());
        }
        for (level, req) in &self.certificate_requirements {
            if !self.certificate_levels.contains(level) {
                return Err(format!("region config: certificate_requirements names unknown level {level}"));
            }
            let Some(exam_max) = self.final_exams.get(&req.exam) else {
                return Err(format!("region config: certificate level {level} names unknown exam {}", req.exam));
            };
            if let Some(s) = req.required_subjects.iter().find(|s| !req.subjects.contains_key(*s)) {
                return Err(format!("region config: certificate level {level} requires {s}, which has no scores"));
            }
            if let Some((s, _)) = req
                .subjects
                .iter()
                .find(|(_, sc)| sc.max <= 0 || sc.max > *exam_max || !(0..=sc.max).contains(&sc.pass))
            {
                return Err(format!("region config: scores of {s} for {level} are not 0 <= pass <= max <= {exam_max}"));
            }
        }
        if let Some(r) = self.admin_delegable_roles.iter().find(|r| !self.roles.contains(r) || *r == "authority") {
            return Err(format!("region config: delegable role {r} is unknown or the authority"));
        }
        let lt = &self.ledger_time;
        if lt.future_skew_seconds < 0 || lt.backdating_days_default < 0 {
            return Err("region config: ledger_time limits must not be negative".into());
        }
        if let Some((ty, d)) = lt.backdating_days.iter().find(|(_, d)| **d < 0) {
            return Err(format!("region config: ledger_time.backdating_days of {ty} is {d}, must not be negative"));
        }
        if let Some(ty) = lt.backdating_days.keys().find(|t| crate::vocabulary::type_info(t).is_none()) {
            return Err(format!("region config: ledger_time.backdating_days names unknown event type {ty}"));
        }
        if let Some(at) = self.migration_closes_at.as_deref().filter(|at| crate::time::parse_instant(at).is_none()) {
            return Err(format!("region config: migration_closes_at {at} is not an rfc 3339 time"));
        }
        Ok(())
    }
}
