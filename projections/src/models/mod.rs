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
    use serde_json::{json, Value};

    /// Whether `v` holds, at any depth, an object whose `imported` is `want`.
    fn holds_imported(v: &Value, want: &Value) -> bool {
        match v {
            Value::Object(o) => o.get("imported") == Some(want) || o.values().any(|x| holds_imported(x, want)),
            Value::Array(items) => items.iter().any(|x| holds_imported(x, want)),
            _ => false,
        }
    }

    #[test]
    fn imported_records_say_so_in_journals_diaries_and_profiles() {
        let mut h = super::testkit::History::default();
        let school = |extra: Value| {
            let mut v = json!({"institution": "sch-1", "class": "5А", "subject": "math", "lesson_date": "2019-03-01"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let from = json!({"system": "BARS", "record": "m-1"});
        h.push(
            "learner/47-1",
            "journal.grade_recorded",
            school(json!({"mark": 5, "scale": "five_point", "weight": 5, "kind": "test", "migrated_from": from})),
        );
        h.push("learner/47-1", "journal.attendance_marked", school(json!({"code": "Н"})));
        // The profile lists achievements (not marks): an imported one.
        h.push(
            "learner/47-1",
            "portfolio.achievement_attested",
            json!({"achievement_id": "a-1", "kind": "olympiad", "level": "regional", "date": "2019-03-01",
                   "result": "winner", "migrated_from": from}),
        );
        for (name, path) in
            [("journals", vec!["sch-1", "5А", "math"]), ("diaries", vec!["47-1", "math"]), ("profiles", vec!["47-1"])]
        {
            let mut m = model::all().into_iter().find(|m| m.name() == name).unwrap();
            h.fold(&mut *m);
            let body = m.view(&path).unwrap().body;
            assert!(holds_imported(&body, &from), "{name}: {body}");
            let n = body.to_string().matches("\"imported\"").count();
            assert_eq!(n, 1, "{name}: only the imported record says so: {body}");
        }
    }

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
