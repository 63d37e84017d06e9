//! The read models: one file per model, each a `model::ReadModel` registered in `model::all()`.
//! Not the contract (`model.rs`) and not the runner that feeds them.

pub mod clubs;
pub mod first_grade;
pub mod indicators;
pub mod kindergarten_queues;
pub mod shared;
pub mod teachers;
