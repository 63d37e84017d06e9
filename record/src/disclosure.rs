//! The learner's disclosure choice (FORMAT.md section 7): which entry types travel as entries;
//! the others travel as `seq` + leaf hash. Not the rule that discloses a correction with what it
//! corrects, or an application with what is about it (`export` applies those).

use zachetka_projections::vocabulary::event_types;

/// The named choices and their types.
const PRESETS: [(&str, &[&str]); 4] = [
    (
        "final-results",
        &[
            "journal.term_grade_set",
            "journal.year_grade_set",
            "journal.intermediate_attestation_recorded",
            "journal.final_attestation_recorded",
            "journal.promoted",
            "college.course_result_recorded",
            "college.exam_recorded",
        ],
    ),
    ("documents", &["journal.certificate_issued", "additional.certificate_issued", "college.diploma_issued"]),
    ("achievements", &["portfolio.achievement_attested", "portfolio.achievement_revoked"]),
    ("enrolments", &["queue.", "enrolment.", "additional.enrolled", "additional.left", "learner.transferred"]),
];

/// The types of a named choice (`final-results`, `documents`...); the report groups by them.
pub(crate) fn preset(name: &str) -> &'static [&'static str] {
    PRESETS.iter().find(|(n, _)| *n == name).map_or(&[], |(_, types)| *types)
}

/// Which entries to disclose.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Disclosure {
    /// Every entry.
    #[default]
    All,
    /// Entries whose type one of these selects: exact types and families (`journal.`), the
    /// presets expanded. The choices as given are kept for the bundle's `disclosure` member.
    Only { choices: Vec<String>, selectors: Vec<String> },
}

impl Disclosure {
    /// Parses `final-results,documents,journal.,portfolio.achievement_attested`. An unknown
    /// choice is refused with the list of valid ones.
    pub fn parse(list: &str) -> Result<Disclosure, String> {
        let mut choices = Vec::new();
        let mut selectors = Vec::new();
        for choice in list.split(',').map(str::trim) {
            if choice.is_empty() {
                return Err("an empty disclosure choice (say e.g. final-results,documents,achievements)".into());
            }
            if let Some((_, types)) = PRESETS.iter().find(|(name, _)| *name == choice) {
                selectors.extend(types.iter().map(|t| (*t).to_owned()));
            } else if event_types().iter().any(|t| *t == choice || (choice.ends_with('.') && t.starts_with(choice))) {
                selectors.push(choice.to_owned());
            } else {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown disclosure choice {choice:?}: say one of {}, an event family with its dot (journal.) or an event type",
                    names.join(", ")
                ));
            }
            choices.push(choice.to_owned());
        }
        Ok(Disclosure::Only { choices, selectors })
    }

    /// Whether an entry of `event_type` is chosen by itself.
    pub fn chooses(&self, event_type: &str) -> bool {
        match self {
            Disclosure::All => true,
            Disclosure::Only { selectors, .. } => {
                selectors.iter().any(|s| s == event_type || (s.ends_with('.') && event_type.starts_with(s.as_str())))
            }
        }
    }

    /// The choices as given (`None`: everything), for the bundle's `disclosure` member.
    pub fn choices(&self) -> Option<Vec<String>> {
        match self {
            Disclosure::All => None,
            Disclosure::Only { choices, .. } => Some(choices.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_families_and_types_select_and_unknown_choices_are_refused() {
        let d = Disclosure::parse("final-results,documents,portfolio.").unwrap();
        assert!(d.chooses("journal.year_grade_set"));
        assert!(d.chooses("college.diploma_issued"));
        assert!(d.chooses("portfolio.achievement_revoked"));
        assert!(!d.chooses("journal.grade_recorded"));
        assert!(!d.chooses("queue.place_offered"));
        assert!(Disclosure::parse("enrolments").unwrap().chooses("queue.place_offered"));
        assert!(Disclosure::parse("journal.grade_recorded").unwrap().chooses("journal.grade_recorded"));
        assert!(Disclosure::parse("grades").unwrap_err().contains("unknown disclosure choice \"grades\""));
        assert!(Disclosure::parse("nosuch.").is_err());
        assert!(Disclosure::parse("documents,").is_err());
        assert_eq!(d.choices().unwrap(), vec!["final-results", "documents", "portfolio."]);
        assert!(Disclosure::All.chooses("journal.grade_recorded"));
        // Every preset names only types of the vocabulary (or families of it).
        for (_, types) in PRESETS {
            for t in types {
                assert!(event_types().iter().any(|e| e == t || (t.ends_with('.') && e.starts_with(t))), "{t}");
            }
        }
    }
}
