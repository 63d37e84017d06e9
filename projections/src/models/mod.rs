//! The read models, one file each, and the helpers they share (`common`, `concerns`, `shared`).
//! Not the contract they implement (`crate::model`) nor the runner that feeds them.

pub mod clubs;
pub mod common;
pub mod completeness;
pub mod concerns;
pub mod diaries;
pub mod first_grade;
pub mod indicators;
pub mod journals;
pub mod kindergarten_queues;
pub mod profiles;
pub mod record_books;
pub mod shared;
pub mod teachers;
#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use crate::model;

    #[test]
    fn every_model_has_a_distinct_name_and_an_empty_state_that_round_trips() {
        let models = model::all();
        assert!(models.len() >= 4);
        let mut names: Vec<&str> = models.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), models.len(), "duplicate read-model names");
        // The learner- and institution-keyed models of this folder (others may answer any path).
        let keyed = ["journals", "diaries", "record-books", "profiles"];
        for mut m in model::all().into_iter().filter(|m| keyed.contains(&m.name())) {
            let empty = m.encode();
            m.load(&empty).unwrap();
            assert_eq!(m.encode(), empty, "{}", m.name());
            assert!(matches!(m.view(&["nobody"]), Err(model::ViewError::NotFound(_))), "{}", m.name());
        }
    }
}
